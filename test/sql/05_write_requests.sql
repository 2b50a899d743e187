-- Idempotency keys, the operations allowlist, privileges and retention.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(45);

-- The hint of the error a statement raises.
CREATE FUNCTION pg_temp.hint_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	h text;
BEGIN
	EXECUTE q;
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
	RETURN h;
END
$$;

-- A retry returns the first outcome and changes nothing, even after the state changed.
SELECT is(connector.grant('crm', '2', '7', 'r1'), 'granted', 'first call');
SELECT is((SELECT row(operation, args, outcome)::text FROM connector.request WHERE app = 'crm' AND request_id = 'r1'),
		  row('grant', '{"account": "2", "entitlement": "7"}'::jsonb, '"granted"'::jsonb)::text,
		  'the request is recorded');
DELETE FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 7;
SELECT is(connector.grant('crm', '2', '7', 'r1'), 'granted', 'a retry returns the first outcome');
SELECT is((SELECT count(*) FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 7), 0::bigint,
		  'and changes nothing, although the grant is gone');
SELECT throws_ok($$SELECT connector.grant('crm', '2', '1', 'r1')$$, '23505',
				 'request "r1" of application "crm" was already made with other arguments',
				 'the same key with other arguments');
SELECT throws_ok($$SELECT connector.revoke('crm', '2', '7', 'r1')$$, '23505',
				 'request "r1" of application "crm" was already made with other arguments',
				 'the same key for another operation');
SELECT is(connector.grant('crm', '2', '1', 'r2', '2031-01-01 00:00:00+00'), 'granted', 'time-bound grant with a key');
SET LOCAL TimeZone = 'Asia/Kolkata';
SELECT is(connector.grant('crm', '2', '1', 'r2', '2031-01-01 05:30:00+05:30'), 'granted',
		  'the same instant written in another time zone is the same request');
RESET TimeZone;
SELECT is(connector.disable('crm', '2', 'r3'), 'disabled', 'disable with a key');
SELECT is(connector.disable('crm', '2', 'r3'), 'disabled', 'its retry');
SELECT is(connector.disable('crm', '2', 'r4'), 'unchanged', 'a new key runs again');
SELECT is(connector.create_account('crm', 'erin', '{"id": 60}', 'r5'), '60', 'create with a key');
SELECT is(connector.create_account('crm', 'erin', '{"id": 60}', 'r5'), '60', 'its retry returns the same id');
SELECT is((SELECT count(*) FROM "Crm App".users WHERE login = 'erin'), 1::bigint, 'one account created');
SELECT is(connector.offboard('crm', '10', 'r6'), connector.offboard('crm', '10', 'r6'),
		  'an offboard retry returns the first summary');
SELECT is(connector.offboard('crm', '10', 'r6')->'revoked', '["7"]', 'the first summary, not a new one');
SELECT throws_ok($$SELECT connector.grant('crm', '2', '7', '')$$, '22023',
				 'request_id must be 1 to 255 bytes long', 'an empty request_id');
SELECT throws_ok($$SELECT connector.grant('crm', '2', '7', repeat('r', 256))$$, '22023',
				 'request_id must be 1 to 255 bytes long', 'a request_id too long');
-- A failed call leaves no record: the key can be used again.
SELECT throws_ok($$SELECT connector.grant('crm', '99', '7', 'r7')$$, 'P0002', NULL, 'a failing call with a key');
SELECT is((SELECT count(*) FROM connector.request WHERE request_id = 'r7'), 0::bigint, 'leaves no record');
SELECT is(connector.grant('crm', '1', '2', 'r7'), 'granted', 'the key is free for another call');

-- Retention.
UPDATE connector.request SET created_at = now() - interval '8 days' WHERE request_id IN ('r1', 'r2');
SELECT is(connector.purge_requests(), 2::bigint, 'purge_requests removes records older than connector.retention');
SELECT is((SELECT count(*) FROM connector.request WHERE request_id IN ('r1', 'r2')), 0::bigint, 'they are gone');
SELECT is(connector.grant('crm', '2', '7', 'r1'), 'granted', 'a purged key runs again');

-- The operations allowlist: read-only and deprovision-only applications.
CREATE TABLE public.racc (id int PRIMARY KEY, n text NOT NULL, on_ boolean NOT NULL DEFAULT true, role int);
INSERT INTO public.racc VALUES (1, 'a', true, 5);
SELECT connector.register_app('ro', '{"accounts": {"table": "public.racc", "id": "id", "name": "n",
	"status": {"column": "on_", "enabled": true, "disabled": false}}, "grants": {"column": "role"}, "operations": []}');
SELECT throws_ok($$SELECT connector.grant('ro', '1', '6')$$, '42501',
				 'operation "grant" is not allowed in application "ro"', 'read-only: grant refused');
SELECT throws_ok($$SELECT connector.disable('ro', '1')$$, '42501',
				 'operation "disable" is not allowed in application "ro"', 'read-only: disable refused');
SELECT throws_ok($$SELECT connector.offboard('ro', '1')$$, '42501',
				 'operation "offboard" is not allowed in application "ro"', 'read-only: offboard refused');
SELECT throws_ok($$SELECT connector.delete_account('ro', '1')$$, '42501',
				 'operation "delete_account" is not allowed in application "ro"', 'read-only: delete refused');
SELECT throws_ok($$SELECT connector.apply('ro', '[{"op": "revoke", "account": "1", "entitlement": "5"}]')$$, '42501',
				 'operation 0 (revoke): operation "revoke" is not allowed in application "ro"', 'read-only: apply refused');
SELECT alike(pg_temp.hint_of($$SELECT connector.grant('ro', '1', '6')$$), '%mapping key "operations"%',
			'the hint names the mapping key');
SELECT is((SELECT row(on_, role)::text FROM public.racc), '(t,5)', 'nothing changed');
SELECT connector.register_app('ro', '{"accounts": {"table": "public.racc", "id": "id", "name": "n",
	"status": {"column": "on_", "enabled": true, "disabled": false}}, "grants": {"column": "role"},
	"operations": ["revoke", "disable", "offboard", "revoke_credential"]}');
SELECT throws_ok($$SELECT connector.grant('ro', '1', '6')$$, '42501',
				 'operation "grant" is not allowed in application "ro"', 'deprovision-only: grant refused');
SELECT throws_ok($$SELECT connector.enable('ro', '1')$$, '42501',
				 'operation "enable" is not allowed in application "ro"', 'deprovision-only: enable refused');
SELECT throws_ok($$SELECT connector.create_account('ro', 'b', '{"id": 2}')$$, '42501',
				 'operation "create_account" is not allowed in application "ro"', 'deprovision-only: create refused');
SELECT throws_ok($$SELECT connector.update_account('ro', '1', '{}')$$, '42501',
				 'operation "update_account" is not allowed in application "ro"', 'deprovision-only: update refused');
SELECT throws_ok($$SELECT connector.apply('ro', '[{"op": "disable", "account": "1"}, {"op": "grant", "account": "1", "entitlement": "6"}]')$$,
				 '42501', 'operation 1 (grant): operation "grant" is not allowed in application "ro"',
				 'deprovision-only: a grant inside apply is refused');
SELECT is((SELECT row(on_, role)::text FROM public.racc), '(t,5)', 'and the disable before it is undone');
SELECT is(connector.offboard('ro', '1'), '{"account": "1", "disabled": true, "revoked": ["5"], "credentials_revoked": []}',
		  'deprovision-only: offboard works');

-- Privileges.
CREATE ROLE regress_platform IN ROLE connector_platform;
CREATE ROLE regress_admin IN ROLE connector_admin;
CREATE ROLE regress_nobody;
SET LOCAL ROLE regress_platform;
SELECT is(connector.grant('crm', '2', '2', 'p1'), 'unchanged', 'connector_platform may write');
SELECT throws_ok($$SELECT * FROM connector.request$$, '42501', NULL, 'but not read the request records');
SELECT throws_ok($$SELECT connector.purge_requests()$$, '42501', NULL, 'nor purge them');
SET LOCAL ROLE regress_admin;
SELECT throws_ok($$SELECT connector.grant('crm', '2', '2')$$, '42501', NULL, 'connector_admin may not write');
SELECT lives_ok($$SELECT connector.purge_requests()$$, 'connector_admin may purge');
SET LOCAL ROLE regress_nobody;
SELECT throws_ok($$SELECT connector.revoke('crm', '2', '2')$$, '42501', NULL, 'others may not write');
SELECT throws_ok($$SELECT connector._write('{}', 'grant', '{}', 'platform')$$, '42501', NULL,
				 'nor call the dispatcher');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
