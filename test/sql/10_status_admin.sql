-- connector.status as a role that is only a member of connector_admin: the
-- README and spec section 5 let it read the view; an endpoint with a types
-- filter once made it fail with "permission denied for function _events".
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(10);

CREATE ROLE regress_status_admin IN ROLE connector_admin;
CREATE ROLE regress_nobody;
SELECT connector.add_endpoint('crm', 'all', 'https://hooks.example.com/a', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT connector.add_endpoint('crm', 'grants', 'https://hooks.example.com/g', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
							  '{"types": ["access.granted"], "batch_size": 10}');
INSERT INTO "Crm App".user_roles VALUES (2, 1, NULL), (2, 7, NULL);
-- an endpoint whose cursor is inside an outbox row (the row holds both grants)
SELECT connector._seal();
SELECT connector.add_endpoint('crm', 'late', 'https://hooks.example.com/l', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
							  jsonb_build_object('types', '["access.granted"]'::jsonb,
												 'from_position', (SELECT last_position - 1 FROM connector.seal_state)));
UPDATE "Crm App".users SET email = 'bob@example.org' WHERE id = 2;
SELECT connector._seal();

SET ROLE regress_status_admin;
SELECT lives_ok($$SELECT * FROM connector.status$$, 'connector_admin reads every column of connector.status');
SELECT is((SELECT array_agg(endpoint || ':' || pending_events ORDER BY endpoint) FROM connector.status),
		  ARRAY['all:3', 'grants:2', 'late:1'], 'pending_events counts the events a types filter lets through');
SELECT ok((SELECT bool_and(oldest_pending_age IS NOT NULL) FROM connector.status), 'and their age');
SELECT lives_ok($$SELECT * FROM connector.dead_letters$$, 'connector_admin reads connector.dead_letters');
SELECT throws_ok($$SELECT * FROM connector.outbox$$, '42501', NULL, 'but not the outbox itself');
SELECT throws_ok($$SELECT * FROM connector._events('crm', 0, 10)$$, '42501', NULL, 'nor the internal reader');
RESET ROLE;

SET ROLE regress_nobody;
SELECT throws_ok($$SELECT * FROM connector.status$$, '42501', NULL,
				 'a role outside connector_admin cannot read the view');
RESET ROLE;

-- least privilege: PUBLIC gains nothing, connector_admin no internal function
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')
			  AND p.oid <> 'connector.capture()'::regprocedure),
		  NULL, 'PUBLIC executes no function of the extension but the capture trigger''s');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
			WHERE c.relnamespace = 'connector'::regnamespace AND c.relkind IN ('r', 'v', 'p')
			  AND has_table_privilege('public', c.oid, 'SELECT')),
		  NULL, 'PUBLIC reads no table or view of the extension');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace AND p.proname LIKE '\_%'
			  AND has_function_privilege('connector_admin', p.oid, 'EXECUTE')),
		  NULL, 'connector_admin executes no internal function');

SELECT * FROM finish();
ROLLBACK;
