-- Attack 3 of issue 13: a platform login becomes superuser through
-- reconcile_table.  The desired state is a relation the caller names: it is
-- read with the caller's rights, so a temporary view calling the caller's
-- own function runs that function as the caller, never as the extension's
-- superuser owner.  Report-only mode is enough to be attacked.
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
SELECT plan(8);

SET ROLE regress_platform;
CREATE FUNCTION pg_temp.sneaky() RETURNS boolean LANGUAGE sql
	AS $$ SELECT crm.evil('platform view') $$;
CREATE TEMP VIEW desired AS
	SELECT d.account, d.entitlement FROM (VALUES ('1', '1'), ('1', '7'), ('2', '2'), ('10', '7')) d(account, entitlement)
	 WHERE pg_temp.sneaky();
SELECT is((SELECT string_agg(concat_ws(' ', action, account, entitlement), ', ' ORDER BY account, action)
			 FROM connector.reconcile_table('crm', 'pg_temp.desired'::regclass)),
		  'unmanaged_account 42, unmanaged_account 9',
		  'reconcile_table (report only) on the platform''s temporary view: the report');
RESET ROLE;
SELECT is(pg_temp.evil_seen('platform view'), 'regress_platform',
		  'reconcile_table: the view''s function ran as the platform''s login (current_user), never as a superuser');
SELECT is((SELECT count(*) FROM crm.evil_log WHERE is_super), 0::bigint,
		  'reconcile_table: no hostile code ran as a superuser');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_owner'), false,
		  'reconcile_table: regress_owner did not become a superuser');
SELECT pg_temp.evil_reset();

-- The same view, enforced: what is read is still read as the caller.
SET ROLE regress_platform;
CREATE OR REPLACE TEMP VIEW desired AS
	SELECT d.account, d.entitlement FROM (VALUES ('1', '1'), ('2', '2'), ('2', '7'), ('10', '7')) d(account, entitlement)
	 WHERE pg_temp.sneaky();
SELECT is((SELECT string_agg(concat_ws(' ', action, account, entitlement, detail->>'outcome'), ', ' ORDER BY account, action)
			 FROM connector.reconcile_table('crm', 'pg_temp.desired'::regclass, true)
			WHERE action IN ('grant', 'revoke')),
		  'revoke 1 7 revoked, grant 2 7 granted',
		  'reconcile_table (enforce) on the platform''s temporary view: applied');
RESET ROLE;
SELECT is(pg_temp.evil_seen('platform view'), 'regress_platform',
		  'reconcile_table (enforce): the view''s function ran as the platform''s login, never as a superuser');
SELECT is((SELECT count(*) FROM crm.evil_log WHERE is_super), 0::bigint,
		  'reconcile_table (enforce): no hostile code ran as a superuser');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_owner'), false,
		  'reconcile_table (enforce): regress_owner did not become a superuser');

SELECT * FROM finish();
ROLLBACK;
