-- accounts(), entitlements(), credentials(): content, keyset paging, errors.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(14);

SELECT results_eq(
	$$SELECT id, name, enabled, kind, owner, attributes, entitlements FROM connector.accounts('crm')$$,
	$$VALUES ('1', 'alice', true, 'human', NULL::text, '{"email": "alice@example.com", "Department Name": "IT"}'::jsonb, ARRAY['1', '7']),
			 ('2', 'bob', true, 'human', NULL, '{"email": "bob@example.com", "Department Name": "Sales"}', ARRAY['2']),
			 ('9', 'carol', false, 'human', NULL, '{"email": "carol@example.com", "Department Name": "HR"}', '{}'),
			 ('10', 'svc-backup', true, 'service', '1', '{"email": null, "Department Name": "IT"}', ARRAY['7'])$$,
	'accounts in numeric id order, mapped attributes only, with entitlements');
SELECT results_eq($$SELECT id FROM connector.accounts('crm', '2', 2)$$, $$VALUES ('9'), ('10')$$,
				  'keyset page after 2 (numeric order, not text order)');
SELECT is_empty($$SELECT * FROM connector.accounts('crm', '10')$$, 'nothing after the last id');
SELECT results_eq($$SELECT id, name, privileged, attributes FROM connector.entitlements('crm', NULL, 2)$$,
	$$VALUES ('1', 'viewer', false, '{"description": "read only"}'::jsonb), ('2', 'editor', false, '{"description": "edit records"}')$$,
	'entitlements page');
SELECT results_eq($$SELECT id, account, expires IS NULL, revoked FROM connector.credentials('crm')$$,
	$$VALUES ('100', '10', true, NULL::timestamptz), ('101', '2', false, NULL)$$, 'credentials');
SELECT ok(NOT EXISTS (SELECT 1 FROM connector.accounts('crm') WHERE attributes::text LIKE '%password%'
					  OR attributes ? 'password_hash'), 'unmapped columns are never exposed');

-- Bad inputs.
SELECT throws_ok($$SELECT * FROM connector.accounts('nope')$$, '42704', 'application "nope" is not registered', 'unknown app');
SELECT throws_ok($$SELECT * FROM connector.accounts(NULL)$$, '22004', 'app must not be null', 'NULL app');
SELECT throws_ok($$SELECT * FROM connector.accounts('crm', 'abc')$$, '22P02',
				 'after "abc" is not a valid integer in application "crm"', 'after that does not parse');
SELECT throws_ok($$SELECT * FROM connector.accounts('crm', NULL, 0)$$, '22023', 'limit 0 is out of range', 'limit 0');
SELECT throws_ok($$SELECT * FROM connector.accounts('crm', NULL, NULL)$$, '22004', 'limit must not be null', 'NULL limit');

-- Privileges: the platform role may enumerate, others may not.
CREATE ROLE regress_platform IN ROLE connector_platform;
CREATE ROLE regress_nobody;
SET ROLE regress_platform;
SELECT is((SELECT count(*) FROM connector.accounts('crm')), 4::bigint, 'connector_platform enumerates');
RESET ROLE;
SET ROLE regress_nobody;
SELECT throws_ok($$SELECT * FROM connector.accounts('crm')$$, '42501', NULL, 'a role without connector_platform is refused');
SELECT throws_ok($$SELECT connector.register_app('x', '{}')$$, '42501', NULL, 'register_app needs connector_admin');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
