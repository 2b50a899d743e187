-- The API acts on an application's tables as their owner, never as the
-- superuser that owns the extension: the owner's own code (triggers,
-- defaults, domain checks) runs with the owner's rights; origin names the
-- API's own statement only; mapping needs ownership.
BEGIN;
CREATE EXTENSION connector;
SELECT plan(25);

CREATE ROLE regress_crm_owner;
CREATE ROLE regress_platform IN ROLE connector_platform;
CREATE ROLE regress_admin IN ROLE connector_admin;
CREATE SCHEMA crm AUTHORIZATION regress_crm_owner;
SET ROLE regress_crm_owner;
CREATE TABLE crm.users (id int PRIMARY KEY, login text NOT NULL, active boolean NOT NULL DEFAULT true,
						manager int REFERENCES crm.users ON DELETE CASCADE);
CREATE TABLE crm.roles (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE crm.user_roles (user_id int NOT NULL REFERENCES crm.users ON DELETE CASCADE,
							 role_id int NOT NULL REFERENCES crm.roles);
INSERT INTO crm.users VALUES (1, 'alice', true, NULL), (2, 'bob', true, NULL), (42, 'mallory', true, NULL),
	(3, 'svc-bob', true, 2);
INSERT INTO crm.roles VALUES (1, 'viewer'), (7, 'db-admin');
-- bob's service account goes with bob (a foreign-key cascade), and its grant with it
INSERT INTO crm.user_roles VALUES (3, 7);
-- Who the owner's code ran as, and an attempt to use a superuser's rights.
CREATE TABLE crm.evil_log (who name, super boolean, tag text);
CREATE FUNCTION crm.evil() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO crm.evil_log SELECT current_user, r.rolsuper, TG_OP || ' ' || TG_TABLE_NAME
	  FROM pg_roles r WHERE r.rolname = current_user;
	IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
		ALTER ROLE regress_crm_owner SUPERUSER;
	END IF;
	-- during a grant of role 1, slip in db-admin for mallory
	IF TG_TABLE_NAME = 'user_roles' AND TG_OP = 'INSERT' THEN
		IF NEW.role_id = 1 THEN
			INSERT INTO crm.user_roles VALUES (42, 7);
		END IF;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER evil AFTER INSERT OR UPDATE OR DELETE ON crm.user_roles
	FOR EACH ROW EXECUTE FUNCTION crm.evil();
CREATE TRIGGER evil AFTER INSERT OR UPDATE OR DELETE ON crm.users
	FOR EACH ROW EXECUTE FUNCTION crm.evil();
RESET ROLE;

CREATE FUNCTION pg_temp.spec() RETURNS jsonb LANGUAGE sql AS $$
SELECT '{"accounts": {"table": "crm.users", "id": "id", "name": "login",
					  "status": {"column": "active", "enabled": true, "disabled": false}},
		 "entitlements": {"table": "crm.roles", "id": "id", "name": "name"},
		 "grants": {"table": "crm.user_roles", "account": "user_id", "entitlement": "role_id"}}'::jsonb
$$;

-- Mapping needs the tables' ownership.
SET ROLE regress_admin;
SELECT throws_ok($$SELECT connector.register_app('crm', pg_temp.spec())$$, '42501',
				 'permission denied to map table crm.users',
				 'a connector admin that does not own the tables cannot map them');
RESET ROLE;
GRANT regress_crm_owner TO regress_admin;
SET ROLE regress_admin;
SELECT lives_ok($$SELECT connector.register_app('crm', pg_temp.spec())$$,
				'a member of the owning role maps them');
RESET ROLE;
REVOKE regress_crm_owner FROM regress_admin;
SET ROLE regress_admin;
SELECT throws_ok($$SELECT connector.unregister_app('crm')$$, '42501',
				 'permission denied to map table crm.users',
				 'nor can it unmap them once it is no longer a member');
RESET ROLE;

-- One owner for an application's tables: the role everything runs as.
CREATE TABLE public.other_roles (id int PRIMARY KEY, name text NOT NULL);
SELECT throws_ok($$SELECT connector.register_app('mixed', '{
	"accounts": {"table": "crm.users", "id": "id", "name": "login"},
	"entitlements": {"table": "public.other_roles", "id": "id", "name": "name"}}')$$, '22023',
				 'tables of application "mixed" have different owners',
				 'tables of two owners cannot make one application');

-- Platform writes run the owner's trigger as the owner.
SET ROLE regress_platform;
SELECT is(connector.grant('crm', '2', '1', request_id => 'req-123'), 'granted', 'grant');
SELECT is(connector.disable('crm', '1'), 'disabled', 'disable');
SELECT is(connector.delete_account('crm', '2'), 'deleted', 'delete_account');
RESET ROLE;
SELECT is((SELECT array_agg(DISTINCT who::text) FROM crm.evil_log), ARRAY['regress_crm_owner'],
		  'the owner''s trigger ran as the owner');
SELECT is((SELECT count(*) FROM crm.evil_log WHERE super), 0::bigint, 'never as a superuser');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_crm_owner'), false,
		  'the owner gained nothing');

-- Origin: the API's row is the platform's, the trigger's row is direct.
SELECT is((SELECT event#>>'{data,origin,via}' || ' ' || COALESCE(event#>>'{data,origin,request_id}', '-')
			 FROM connector.changes('crm') WHERE event->>'type' = 'access.granted'
			  AND event#>>'{data,account,id}' = '2'),
		  'platform req-123', 'the grant the platform asked for is the platform''s');
SELECT is((SELECT event#>>'{data,origin,via}' || ' ' || (event#>>'{data,origin,db_user}') || ' ' ||
				  COALESCE(event#>>'{data,origin,request_id}', '-')
			 FROM connector.changes('crm') WHERE event->>'type' = 'access.granted'
			  AND event#>>'{data,account,id}' = '42'),
		  'direct regress_crm_owner -', 'the grant the owner''s trigger slipped in is direct, by the owner');
SELECT is((SELECT count(*) FROM connector.findings('crm') WHERE code = 'shadow_grant' AND account = '42'),
		  1::bigint, 'and shows as a shadow grant');
SELECT is((SELECT string_agg(DISTINCT event#>>'{data,origin,via}', ',')
			 FROM connector.changes('crm') WHERE event->>'type' = 'access.revoked'
			  AND event#>>'{data,account,id}' = '2'),
		  'platform', 'the revocations of delete_account are the platform''s');
SELECT is((SELECT string_agg(event->>'type' || ' ' || (event#>>'{data,origin,via}') || ' ' ||
							 (event#>>'{data,origin,operation}'), ', ' ORDER BY position)
			 FROM connector.changes('crm') WHERE event#>>'{data,account,id}' = '3'),
		  'account.deleted platform delete_account, access.revoked platform delete_account',
		  'the foreign-key cascade of delete_account (the account bob manages, and its grant) is the platform''s');
SELECT is((SELECT count(*) FROM crm.users WHERE id = 3), 0::bigint, 'the cascade ran');

-- A write the application's own trigger suppresses fails; nothing changes.
SET ROLE regress_crm_owner;
CREATE FUNCTION crm.keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER keep BEFORE INSERT OR UPDATE OR DELETE ON crm.user_roles
	FOR EACH ROW EXECUTE FUNCTION crm.keep();
CREATE TRIGGER keep BEFORE UPDATE ON crm.users FOR EACH ROW EXECUTE FUNCTION crm.keep();
RESET ROLE;
SET ROLE regress_platform;
SELECT throws_ok($$SELECT connector.revoke('crm', '42', '7')$$, '09000',
				 'revoke in application "crm" had no effect on table crm.user_roles',
				 'a revoke a BEFORE trigger suppressed fails');
SELECT throws_ok($$SELECT connector.offboard('crm', '42')$$, '09000', NULL,
				 'so does offboard, instead of reporting revocations that did not happen');
SELECT throws_ok($$SELECT connector.grant('crm', '1', '7')$$, '09000',
				 'grant in application "crm" had no effect on table crm.user_roles', 'and a grant');
SELECT throws_ok($$SELECT connector.enable('crm', '1')$$, '09000',
				 'enable in application "crm" had no effect on table crm.users', 'and a status change');
SELECT is(connector.disable('crm', '1'), 'unchanged', 'a status already set is still unchanged');
RESET ROLE;
SELECT is((SELECT count(*) FROM crm.user_roles WHERE user_id = 42), 1::bigint, 'nothing was revoked');

-- The capture trigger after a mapped column changed type: no crash, no
-- key of the wrong type handed to the id index.
CREATE TABLE public.tacc (id text PRIMARY KEY, n text NOT NULL);
CREATE TABLE public.tgr (a text NOT NULL, e text NOT NULL);
INSERT INTO public.tacc VALUES ('0', 'zero');
SELECT connector.register_app('t', '{"accounts": {"table": "public.tacc", "id": "id", "name": "n"},
	"grants": {"table": "public.tgr", "account": "a", "entitlement": "e"}}');
ALTER TABLE public.tgr ALTER COLUMN a TYPE int USING 0;
SELECT lives_ok($$INSERT INTO public.tgr VALUES (0, 'x')$$, 'a write after the type change works');
SELECT is((SELECT event#>>'{data,account,id}' FROM connector.changes('t') WHERE event->>'type' = 'access.granted'),
		  '0', 'and is captured');
SELECT is((SELECT count(*) FROM connector.changes('t') WHERE event->>'type' = 'capture.tampered'
			  AND event#>>'{data,after,problem}' LIKE 'mapped column "a" changed type%'),
		  1::bigint, 'the type change is reported as tampering');

SELECT * FROM finish();
ROLLBACK;
