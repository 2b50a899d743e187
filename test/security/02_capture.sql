-- Attack 2 of issue 13: a table owner becomes superuser through capture.
-- Capture evaluates the status column's type when it builds a table's map
-- (once per backend and mapping): with a status column of the owner's domain
-- whose CHECK is hostile, the first UPDATE by the application must run that
-- check as the owner at most, never as a superuser.  The same in new
-- backends, after commit: test/t/030_security_capture.pl.  And the owner
-- cannot retype a mapped column (07_tamper.sql has every variant).
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
SELECT plan(8);

-- The owner, made a connector_admin for this, maps its own table whose
-- status column is of a hostile domain.
GRANT connector_admin TO regress_owner;
SET ROLE regress_owner;
CREATE DOMAIN crm.state_d AS text CHECK (VALUE IN ('on', 'off') AND crm.evil('status domain check'));
CREATE TABLE crm.staff (id int PRIMARY KEY, name text NOT NULL, state crm.state_d NOT NULL);
INSERT INTO crm.staff VALUES (1, 'ann', 'on'), (2, 'ben', 'off');
GRANT SELECT, UPDATE ON crm.staff TO regress_app;
RESET ROLE;
SELECT pg_temp.evil_reset();
SET ROLE regress_owner;
SELECT is(pg_temp.outcome($$SELECT connector.register_app('staff', '{"accounts": {"table": "crm.staff", "id": "id",
		"name": "name", "status": {"column": "state", "enabled": "on", "disabled": "off"}}}')$$), 'done',
		  'the owner (a connector_admin) maps its own table');
RESET ROLE;
SELECT pg_temp.after_call('register_app by the owner', may_skip => true);
REVOKE connector_admin FROM regress_owner;

-- The application's first write to it in this backend builds its map.
SET ROLE regress_app;
UPDATE crm.staff SET name = 'ann b.' WHERE id = 1;
UPDATE crm.staff SET state = 'off' WHERE id = 1;
RESET ROLE;
SELECT is((SELECT string_agg(event->>'type', ', ' ORDER BY position) FROM connector.changes('staff')),
		  'account.updated, account.disabled', 'the application''s writes are captured');
SELECT is((SELECT count(*) FROM crm.evil_log WHERE is_super), 0::bigint,
		  'capture: the owner''s domain check never ran as a superuser');
SELECT ok(pg_temp.evil_seen() ~ '^regress_app(, regress_owner)?$',
		  'capture: it ran as the application (its own UPDATE) and the owner at most');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_owner'), false,
		  'capture: regress_owner did not become a superuser');
SELECT pg_temp.evil_reset();

-- The original attack: the owner retypes the mapped status column to its
-- hostile domain.  Refused, since it changes what capture reads.
SET ROLE regress_owner;
CREATE DOMAIN crm.status_d AS crm.status_t CHECK (crm.evil('status domain check'));
SELECT matches(pg_temp.undone($$ALTER TABLE crm.users ALTER COLUMN status TYPE crm.status_d$$), '^42501: ',
			   'the owner cannot retype the mapped status column to its own domain');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
