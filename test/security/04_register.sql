-- Attack 4 of issue 13: a connector_admin maps tables it has no right to, or
-- becomes superuser inside register_app.  Mapping installs triggers and hands
-- the platform read and write access: it needs membership in the owning role
-- of every mapped table (or superuser).  Whoever registers, the owner's code
-- never runs as a superuser.  Also: connector_admin reads connector.status.
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
SELECT plan(24);

-- The superuser mapped the hostile application in the fixture: the owner's
-- status cast and domain check ran then, as the owner at most.
SELECT is((SELECT CASE seen WHEN 'nothing' THEN 'regress_owner' ELSE seen END FROM fixture_registration),
		  'regress_owner', 'a superuser registering the owner''s tables: the owner''s code never ran as a superuser');
SELECT is((SELECT owner_super FROM fixture_registration), false,
		  'a superuser registering the owner''s tables: regress_owner did not become a superuser');

-- Schema hr belongs to another role; regress_admin has no right on it.
CREATE ROLE regress_hr;
CREATE SCHEMA hr AUTHORIZATION regress_hr;
SET ROLE regress_hr;
CREATE TABLE hr.salaries (id int PRIMARY KEY, name text NOT NULL, salary numeric, ssn text);
CREATE TABLE hr.payments (employee_id int NOT NULL REFERENCES hr.salaries, kind int NOT NULL,
						  due timestamptz);
INSERT INTO hr.salaries VALUES (1, 'ann', 98000, '078-05-1120'), (2, 'ben', 87000, '219-09-9999');
INSERT INTO hr.payments VALUES (1, 1, now() - interval '1 day'), (2, 1, now() - interval '1 day');
RESET ROLE;
CREATE FUNCTION pg_temp.hr_spec() RETURNS jsonb LANGUAGE sql AS $$
SELECT '{"accounts": {"table": "hr.salaries", "id": "id", "name": "name", "attributes": ["salary", "ssn"]},
		 "grants": {"table": "hr.payments", "account": "employee_id", "entitlement": "kind", "expires": "due"}}'::jsonb
$$;
CREATE TEMP TABLE apps_before AS SELECT array_agg(app ORDER BY app) AS apps FROM connector.apps;
CREATE FUNCTION pg_temp.hr_triggers() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('hr.salaries'::regclass, 'hr.payments'::regclass)
	   AND NOT tgisinternal		-- the foreign key's own triggers are internal
$$;

SET ROLE regress_admin;
SELECT matches(pg_temp.outcome($$SELECT connector.register_app('hr', pg_temp.hr_spec())$$),
			   '^42501: permission denied to map table ',
			   'register_app: a connector_admin cannot map tables of a role it is not a member of');
RESET ROLE;
SELECT is(pg_temp.hr_triggers(), 0::bigint, 'register_app refused: no trigger was installed on the hr tables');
SELECT is((SELECT array_agg(app ORDER BY app) FROM connector.apps), (SELECT apps FROM apps_before),
		  'register_app refused: connector.apps is unchanged');
SELECT is((SELECT count(*) FROM hr.payments), 2::bigint,
		  'register_app refused: no hr.payments row was expired');

-- Its own accounts table, with someone else's grants table: refused too.
CREATE SCHEMA adm AUTHORIZATION regress_admin;
SET ROLE regress_admin;
CREATE TABLE adm.people (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO adm.people VALUES (1, 'ann'), (2, 'ben');
SELECT matches(pg_temp.outcome($$SELECT connector.register_app('mixed', '{
		"accounts": {"table": "adm.people", "id": "id", "name": "name"},
		"grants": {"table": "hr.payments", "account": "employee_id", "entitlement": "kind", "expires": "due"}}')$$),
			   '^42501: permission denied to map table ',
			   'register_app: every mapped table must be the caller''s, not only the accounts table');
RESET ROLE;
SELECT is(pg_temp.hr_triggers(), 0::bigint, 'the mixed mapping installed nothing on hr.payments');
SELECT is((SELECT count(*) FROM connector.apps WHERE app = 'mixed'), 0::bigint, 'no application "mixed"');

-- A superuser can map anything; a member of the owning role can too.
SELECT is(pg_temp.outcome($$SELECT connector.register_app('hr', pg_temp.hr_spec())$$), 'done',
		  'a superuser maps the hr tables');
CREATE ROLE regress_hr_dba IN ROLE connector_admin, regress_hr;
SET ROLE regress_hr_dba;
SELECT is(pg_temp.outcome($$SELECT connector.register_app('hr', pg_temp.hr_spec() - 'grants')$$), 'done',
		  'a connector_admin that is a member of the owning role maps them');
RESET ROLE;
SELECT is(pg_temp.outcome($$SELECT connector.register_app('hr', pg_temp.hr_spec())$$), 'done',
		  'the superuser maps them again');

-- Unmapping removes capture: the same right is needed.
SET ROLE regress_admin;
SELECT matches(pg_temp.outcome($$SELECT connector.unregister_app('hr')$$),
			   '^42501: ',
			   'unregister_app: a connector_admin cannot unmap tables of a role it is not a member of');
RESET ROLE;
SELECT is((SELECT count(*) FROM connector.apps WHERE app = 'hr'), 1::bigint, 'unregister_app refused: hr is still mapped');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'hr.salaries'::regclass AND tgname LIKE 'connector_capture%'),
		  2::bigint, 'unregister_app refused: capture of hr.salaries is intact');
SET ROLE regress_hr_dba;
SELECT is(pg_temp.outcome($$SELECT connector.unregister_app('hr')$$), 'done',
		  'a member of the owning role unmaps it');
RESET ROLE;

-- regress_admin maps its own table, whose status column is a domain with a
-- hostile CHECK: the check runs as regress_admin, never as a superuser.
SET ROLE regress_admin;
CREATE DOMAIN adm.state_t AS text CHECK (VALUE IN ('on', 'off') AND crm.evil('admin''s domain check'));
ALTER TABLE adm.people ADD COLUMN state adm.state_t NOT NULL DEFAULT 'on';
RESET ROLE;
SELECT pg_temp.evil_reset();
SET ROLE regress_admin;
SELECT is(pg_temp.outcome($$SELECT connector.register_app('adm', '{
		"accounts": {"table": "adm.people", "id": "id", "name": "name",
					 "status": {"column": "state", "enabled": "on", "disabled": "off"}}}')$$), 'done',
		  'a connector_admin maps its own table');
RESET ROLE;
SELECT pg_temp.after_call('register_app of the admin''s own table', 'regress_admin', may_skip => true);
SET ROLE regress_admin;
SELECT is(pg_temp.outcome($$SELECT connector.unregister_app('adm')$$), 'done',
		  'and unmaps it');
RESET ROLE;

-- connector_admin reads connector.status (README, reference.md).
SET ROLE regress_admin;
SELECT is(pg_temp.outcome($$SELECT * FROM connector.status$$), 'done',
		  'connector_admin can SELECT * FROM connector.status');
SELECT is(pg_temp.outcome($$SELECT * FROM connector.apps$$), 'done',
		  'connector_admin can SELECT * FROM connector.apps');
SELECT is(pg_temp.outcome($$SELECT * FROM connector.dead_letters$$), 'done',
		  'connector_admin can SELECT * FROM connector.dead_letters');
RESET ROLE;
SET ROLE regress_owner;
SELECT is(pg_temp.outcome($$SELECT connector.register_app('crm2', pg_temp.crm_spec())$$),
		  '42501: permission denied for schema connector',
		  'a table owner that is no connector_admin cannot register at all');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
