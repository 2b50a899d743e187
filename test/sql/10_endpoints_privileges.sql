-- Endpoints: who may manage them, and that no one but a superuser reads a secret.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(20);

CREATE ROLE regress_admin IN ROLE connector_admin;
CREATE ROLE regress_platform IN ROLE connector_platform;
CREATE ROLE regress_reader IN ROLE pg_read_all_data;

SET ROLE regress_admin;
SELECT lives_ok($$SELECT connector.add_endpoint('crm', 'hook', 'https://hooks.example.com/x', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')$$,
				'connector_admin adds an endpoint');
SELECT lives_ok($$SELECT connector.rotate_secret('crm', 'hook', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '1 hour')$$, 'rotates its secret');
SELECT lives_ok($$SELECT connector.enable_endpoint('crm', 'hook')$$, 'enables it');
SELECT lives_ok($$SELECT connector.redeliver('crm', 'hook', 1)$$, 'redelivers');
SELECT is((SELECT count(*) FROM connector.status), 1::bigint, 'reads connector.status');
SELECT is((SELECT count(*) FROM connector.dead_letters), 0::bigint, 'reads connector.dead_letters');
SELECT throws_ok($$SELECT * FROM connector.endpoint_secret$$, '42501', NULL, 'connector_admin cannot read the secrets');
SELECT throws_ok($$SELECT * FROM connector.endpoint$$, '42501', NULL, 'nor the endpoint table (headers may hold tokens)');
SELECT throws_ok($$SELECT connector._endpoint_signing_keys(1)$$, '42501', NULL, 'nor call the worker''s key function');
SELECT throws_ok($$UPDATE connector.endpoint SET cursor = 0$$, '42501', NULL, 'nor move a cursor by hand');
SELECT lives_ok($$SELECT connector.remove_endpoint('crm', 'hook')$$, 'removes it');
RESET ROLE;

SET ROLE regress_platform;
SELECT throws_ok($$SELECT connector.add_endpoint('crm', 'hook', 'https://hooks.example.com/x', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')$$,
				 '42501', NULL, 'connector_platform cannot add endpoints');
SELECT throws_ok($$SELECT * FROM connector.status$$, '42501', NULL, 'nor read the status view');
RESET ROLE;

SELECT connector.add_endpoint('crm', 'hook', 'https://hooks.example.com/x', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SET ROLE regress_reader;
SELECT is((SELECT count(*) FROM connector.endpoint_secret), 0::bigint,
		  'a role that reads all data sees no secret (row-level security without a policy)');
RESET ROLE;
SELECT is((SELECT count(*) FROM connector.endpoint_secret), 1::bigint, 'a superuser does');

SELECT is((SELECT array_agg(a.grantee::regrole::text) FROM pg_class c, aclexplode(c.relacl) a
			WHERE c.oid = 'connector.endpoint_secret'::regclass AND a.grantee <> c.relowner), NULL,
		  'no role but the owner holds a privilege on the secrets');
SELECT is((SELECT count(*) FROM information_schema.columns WHERE table_schema = 'connector'
			  AND table_name IN ('status', 'dead_letters') AND column_name LIKE '%secret%'), 0::bigint,
		  'the views have no secret column');
SELECT ok(NOT EXISTS (SELECT 1 FROM connector.status s WHERE s::text LIKE '%MfKQ9r8GKYqr%'), 'no status row shows the secret');
SELECT is((SELECT array_agg(DISTINCT p.proname::text ORDER BY p.proname::text) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace AND 'log_min_error_statement=panic' = ANY (p.proconfig)),
		  ARRAY['add_endpoint', 'rotate_secret', 'scim_session'],
		  'the functions taking a secret or a bearer token keep failing statements out of the server log');
SELECT is((SELECT array_agg(DISTINCT p.proname::text ORDER BY p.proname::text) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace AND has_function_privilege('connector_admin', p.oid, 'EXECUTE')
			  AND p.proname ~ 'endpoint|secret|redeliver'),
		  ARRAY['add_endpoint', 'enable_endpoint', 'endpoint_backlog', 'redeliver', 'remove_endpoint', 'rotate_secret'],
		  'connector_admin executes the endpoint API and nothing internal');

SELECT * FROM finish();
ROLLBACK;
