-- Attack 9 of issue 13 (item 13, suspected): the platform's reads run the
-- owner's code as a superuser.  The accounts' status is the owner's enum with
-- the owner's cast to text, every id is of the owner's domain with a hostile
-- CHECK: enumeration and findings, called by the platform's login, run that
-- code as the owner or not at all, never as a superuser.
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
SELECT plan(26);

SET ROLE regress_platform;
SELECT is((SELECT string_agg(id || ':' || enabled, ' ' ORDER BY id::int) FROM connector.accounts('crm')),
		  '1:true 2:true 9:false 10:true 42:true', 'accounts: every account, enabled through the status mapping');
RESET ROLE;
SELECT pg_temp.after_call('accounts', may_skip => true);

SET ROLE regress_platform;
SELECT is((SELECT string_agg(id, ' ' ORDER BY id::int) FROM connector.accounts('crm', after => '2')),
		  '9 10 42', 'accounts after an id: the next page');
RESET ROLE;
SELECT pg_temp.after_call('accounts after an id', may_skip => true);

SET ROLE regress_platform;
SELECT is((SELECT string_agg(id || ' ' || name, ', ' ORDER BY id::int) FROM connector.entitlements('crm')),
		  '1 viewer, 2 editor, 7 db-admin', 'entitlements: every role');
RESET ROLE;
SELECT pg_temp.after_call('entitlements', may_skip => true);

SET ROLE regress_platform;
SELECT is((SELECT string_agg(id, ' ' ORDER BY id::int) FROM connector.entitlements('crm', after => '1')),
		  '2 7', 'entitlements after an id: the next page');
RESET ROLE;
SELECT pg_temp.after_call('entitlements after an id', may_skip => true);

SET ROLE regress_platform;
SELECT is((SELECT string_agg(id || ' of ' || account, ', ' ORDER BY id::int) FROM connector.credentials('crm')),
		  '100 of 10, 101 of 2', 'credentials: every key');
RESET ROLE;
SELECT pg_temp.after_call('credentials', may_skip => true);

SET ROLE regress_platform;
SELECT is((SELECT string_agg(id, ' ' ORDER BY id::int) FROM connector.credentials('crm', after => '100')),
		  '101', 'credentials after an id: the next page');
RESET ROLE;
SELECT pg_temp.after_call('credentials after an id', may_skip => true);

SET ROLE regress_platform;
SELECT is((SELECT string_agg(DISTINCT code || ' ' || account, ', ') FROM connector.findings('crm')
			WHERE code IN ('privileged_nhi', 'disabled_with_access', 'long_lived_credential')),
		  'long_lived_credential 10, long_lived_credential 2, privileged_nhi 10',
		  'findings: the NHI risks of the application');
RESET ROLE;
SELECT pg_temp.after_call('findings', may_skip => true);

SET ROLE regress_platform;
SELECT is((SELECT string_agg(concat_ws(' ', action, account, entitlement), ', ' ORDER BY action, entitlement)
			 FROM connector.reconcile('crm', '{"accounts": [{"id": "9", "enabled": true, "entitlements": ["1"]}]}')),
		  'enable 9, grant 9 1', 'reconcile (report only): the differences');
RESET ROLE;
SELECT pg_temp.after_call('reconcile (report only)', may_skip => true);

-- The platform's reads of the change stream touch no application object.
SET ROLE regress_platform;
SELECT is((SELECT count(*) FROM connector.changes('crm')), 0::bigint, 'changes: the reads above wrote no event');
RESET ROLE;
SELECT is(pg_temp.evil_seen(), 'nothing', 'changes: ran none of the owner''s code');

SELECT * FROM finish();
ROLLBACK;
