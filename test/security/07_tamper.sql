-- Attack 7 (and 2) of issue 13: capture silenced by DDL that tamper detection
-- did not see.  Each weakening below is refused to the table owner (no
-- connector_admin) with insufficient_privilege; a superuser may do it, and it
-- is then recorded as a capture.tampered event and listed by findings() as a
-- capture_gap until the application is registered again.  And a BEFORE
-- trigger that suppresses the platform's delete makes the call fail instead
-- of reporting a revocation that did not happen.
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
\ir fixtures/partitioned.sql
SELECT plan(44);

-- Run DDL as the current role, look, and undo it: [outcome ('done' or the
-- error), the capture.tampered events it recorded as "table: problem", the
-- capture_gap findings of the application then].
CREATE FUNCTION pg_temp.tamper(app text, sql text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	mark bigint := (SELECT coalesce(max(position), 0) FROM connector.changes(app, 0, 100000));
	r text[];
BEGIN
	BEGIN
		r[1] := pg_temp.outcome(sql);
		r[2] := (SELECT string_agg(concat(event #>> '{data,after,table}', ': ', event #>> '{data,after,problem}'),
								   '; ' ORDER BY position)
				   FROM connector.changes(app, mark, 100000) WHERE event->>'type' = 'capture.tampered');
		r[3] := (SELECT string_agg(concat(detail->>'table', ': ', detail->>'problem'), '; ' ORDER BY 1)
				   FROM connector.findings(app) WHERE code = 'capture_gap');
		RAISE EXCEPTION USING ERRCODE = 'ZZ999';
	EXCEPTION WHEN SQLSTATE 'ZZ999' THEN
		RETURN r;
	END;
END
$$;

CREATE TEMP TABLE ddl (n int, app text, what text, sql text);
INSERT INTO ddl VALUES
	(1, 'crm', 'ALTER COLUMN TYPE of a mapped grants column',
	 $$ALTER TABLE crm.user_roles ALTER COLUMN user_id TYPE bigint USING user_id$$),
	(2, 'crm', 'ALTER COLUMN TYPE ... USING rewriting a mapped grants column in place',
	 $$ALTER TABLE crm.user_roles ALTER COLUMN role_id TYPE crm.id_t USING 7$$),
	(3, 'crm', 'ALTER COLUMN TYPE of the mapped status column',
	 $$ALTER TABLE crm.users ALTER COLUMN status DROP DEFAULT,
		 ALTER COLUMN status TYPE text USING pg_catalog.format('%s', status)$$),
	(4, 'crm', 'ALTER COLUMN TYPE ... USING swapping the mapped status values in place',
	 $$ALTER TABLE crm.users ALTER COLUMN status TYPE crm.status_t
		 USING CASE WHEN status = 'active' THEN 'suspended' ELSE 'active' END::crm.status_t$$),
	(5, 'crm', 'ALTER TYPE ... RENAME VALUE of the mapped status enum',
	 $$ALTER TYPE crm.status_t RENAME VALUE 'active' TO 'was_active'$$),
	(6, 'crm', 'a child table INHERITS the mapped grants table',
	 $$CREATE TABLE crm.user_roles_more () INHERITS (crm.user_roles)$$),
	(7, 'part', 'DISABLE TRIGGER connector_capture on one partition',
	 $$ALTER TABLE part.members_a DISABLE TRIGGER connector_capture$$),
	(8, 'part', 'DETACH PARTITION of the mapped grants table',
	 $$ALTER TABLE part.members DETACH PARTITION part.members_b$$),
	(9, 'crm', 'ALTER TABLE ... INHERIT makes a table holding rows a child of the mapped grants table',
	 $$CREATE TABLE crm.user_roles_old (LIKE crm.user_roles INCLUDING CONSTRAINTS);
	   INSERT INTO crm.user_roles_old (user_id, role_id) VALUES (42, 7);
	   ALTER TABLE crm.user_roles_old INHERIT crm.user_roles$$);

-- The owner, who is no connector_admin: refused, whatever it is.
GRANT SELECT ON ddl TO PUBLIC;
SET ROLE regress_owner;
CREATE TEMP TABLE by_owner AS SELECT n, pg_temp.undone(sql) AS r FROM ddl;
RESET ROLE;
SELECT matches(o.r, '^42501: ', 'the owner: ' || d.what || ' is refused (insufficient_privilege)')
  FROM ddl d JOIN by_owner o USING (n) ORDER BY n;

-- A superuser: allowed, recorded, and a capture_gap.
SELECT pg_temp.evil_reset();
CREATE TEMP TABLE by_super AS SELECT n, pg_temp.tamper(app, sql) AS r FROM ddl;
SELECT pg_temp.evil_reset();
SELECT is(s.r[1], 'done', 'a superuser: ' || d.what || ' is allowed')
  FROM ddl d JOIN by_super s USING (n) ORDER BY n;
SELECT isnt(s.r[2], NULL, 'a superuser: ' || d.what || ' is recorded as capture.tampered')
  FROM ddl d JOIN by_super s USING (n) ORDER BY n;
SELECT isnt(s.r[3], NULL, 'a superuser: ' || d.what || ' shows as a capture_gap finding')
  FROM ddl d JOIN by_super s USING (n) ORDER BY n;
SELECT matches((SELECT r[2] FROM by_super WHERE n = 1), '^crm\.user_roles: mapped column "user_id" changed type',
			   'the capture.tampered event of a grants column''s new type says so');
SELECT matches((SELECT r[2] FROM by_super WHERE n = 3), '^crm\.users: mapped column "status" changed type',
			   'the capture.tampered event of the status column''s new type says so');

-- Kept this time: the gap stays until register_app repairs capture.
SELECT is(pg_temp.outcome($$ALTER TABLE crm.users ALTER COLUMN status DROP DEFAULT,
		 ALTER COLUMN status TYPE text USING pg_catalog.format('%s', status)$$),
		  'done', 'a superuser changes the type of the mapped status column');
SELECT pg_temp.evil_reset();
ALTER TABLE crm.users ADD COLUMN phone text;
SELECT matches((SELECT string_agg(detail->>'problem', '; ') FROM connector.findings('crm') WHERE code = 'capture_gap'),
			   '^mapped column "status" changed type', 'after more DDL, the capture_gap is still listed');
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT is((SELECT count(*) FROM connector.findings('crm') WHERE code = 'capture_gap'), 0::bigint,
		  'register_app again clears the capture_gap');
SELECT pg_temp.evil_reset();

-- A BEFORE DELETE trigger of the owner that suppresses every delete.
SET ROLE regress_owner;
CREATE FUNCTION crm.keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER keep BEFORE DELETE ON crm.user_roles FOR EACH ROW EXECUTE FUNCTION crm.keep();
RESET ROLE;
CREATE FUNCTION pg_temp.crm_state() RETURNS text LANGUAGE sql AS $$
	SELECT (SELECT string_agg(concat_ws(':', id, login, pg_catalog.format('%s', status)), ' ' ORDER BY id) FROM crm.users) || ' | ' ||
		   (SELECT string_agg(concat_ws(':', user_id, role_id), ' ' ORDER BY user_id, role_id) FROM crm.user_roles) || ' | ' ||
		   (SELECT string_agg(concat_ws(':', id, revoked_at IS NULL), ' ' ORDER BY id) FROM crm.api_keys)
$$;
CREATE TEMP TABLE before AS SELECT pg_temp.crm_state() AS s;
SET ROLE regress_platform;
SELECT matches(pg_temp.outcome($$SELECT connector.revoke('crm', '1', '7')$$), '^09000: ',
			   'revoke suppressed by the owner''s BEFORE trigger fails (triggered_action_exception)');
SELECT matches(pg_temp.outcome($$SELECT connector.offboard('crm', '10')$$), '^09000: ',
			   'offboard whose revocation is suppressed fails (triggered_action_exception)');
RESET ROLE;
SELECT is(pg_temp.crm_state(), (SELECT s FROM before), 'the suppressed calls changed nothing');

SELECT * FROM finish();
ROLLBACK;
