-- Tamper detection: DDL that weakens capture is refused for non-admins and
-- recorded as capture.tampered for admins and superusers.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(16);

CREATE ROLE regress_owner;
CREATE ROLE regress_dba IN ROLE connector_admin, regress_owner;
ALTER SCHEMA "Crm App" OWNER TO regress_owner;
ALTER TABLE "Crm App".users OWNER TO regress_owner;
ALTER TABLE "Crm App".user_roles OWNER TO regress_owner;
ALTER TABLE "Crm App".roles OWNER TO regress_owner;
ALTER TABLE "Crm App".api_keys OWNER TO regress_owner;
CREATE FUNCTION pg_temp.tampered() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM connector.changes('crm', 0, 100000) WHERE event->>'type' = 'capture.tampered'
$$;

-- The table owner is refused.
SET ROLE regress_owner;
SELECT throws_ok($$ALTER TABLE "Crm App".user_roles DISABLE TRIGGER connector_capture$$, '42501',
	'permission denied to weaken change capture of table ""Crm App".user_roles"', 'owner cannot disable the capture trigger');
SELECT throws_ok($$ALTER TABLE "Crm App".user_roles DISABLE TRIGGER ALL$$, '42501', NULL, 'nor every trigger at once');
SELECT throws_ok($$DROP TRIGGER connector_capture ON "Crm App".user_roles$$, '42501', NULL, 'nor drop it');
SELECT throws_ok($$ALTER TABLE "Crm App".users DROP COLUMN email$$, '42501', NULL, 'nor drop a mapped column');
SELECT throws_ok($$ALTER TABLE "Crm App".users RENAME COLUMN login TO username$$, '42501', NULL, 'nor rename a mapped column');
SELECT throws_ok($$ALTER TABLE "Crm App".users RENAME TO people$$, '42501', NULL, 'nor rename a mapped table');
SELECT throws_ok($$DROP TABLE "Crm App".api_keys$$, '42501', NULL, 'nor drop a mapped table');
SELECT lives_ok($$ALTER TABLE "Crm App".users DROP COLUMN password_hash$$, 'unmapped columns stay the owner''s business');
SELECT lives_ok($$ALTER TABLE "Crm App".users ADD COLUMN phone text$$, 'adding a column is fine');
RESET ROLE;
SELECT is(pg_temp.tampered(), 0::bigint, 'refused DDL leaves no event');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'connector_capture%' AND tgenabled = 'A'), 8::bigint,
		  'capture is intact');

-- An admin goes through, and it is recorded once.
SET ROLE regress_dba;
SELECT lives_ok($$ALTER TABLE "Crm App".user_roles DISABLE TRIGGER connector_capture$$, 'an admin can disable capture');
RESET ROLE;
SELECT is((SELECT event->'data'->'after' FROM connector.changes('crm', 0, 100000) WHERE event->>'type' = 'capture.tampered'),
		  '{"table": "\"Crm App\".user_roles", "problem": "trigger connector_capture disabled", "by": "regress_dba"}'::jsonb,
		  'capture.tampered names the table, the problem and who');
CREATE TABLE public.unrelated (x int);
SELECT is(pg_temp.tampered(), 1::bigint, 'a known weakness is reported once');

-- A superuser too; renaming a mapped table is recorded.
ALTER TABLE "Crm App".roles RENAME TO groups;
SELECT is(pg_temp.tampered(), 2::bigint, 'a superuser''s rename is recorded');

-- Registering again repairs capture.
SELECT connector.register_app('crm', pg_temp.crm_spec() - 'entitlements' - 'grants');
SELECT is((SELECT count(*) FROM connector.capture_gap), 0::bigint, 're-registering clears known weaknesses');

SELECT * FROM finish();
ROLLBACK;
