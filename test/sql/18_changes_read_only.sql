-- changes() in a read-only transaction (JDBC setReadOnly, readOnly=true,
-- default_transaction_read_only): it returns the events already sealed and
-- never fails because unsealed ones exist, where sealing (a write, under
-- SELECT ... FOR UPDATE of seal_state) would be refused with 25006.  The hot
-- standby case is test/t/028_standby.pl.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(9);

-- Sealed: the events of two writes.
DO $$ BEGIN PERFORM connector.disable('crm', '2'); PERFORM connector.grant('crm', '2', '1'); END $$;
SELECT is((SELECT array_agg(c.position ORDER BY c.position) FROM connector.changes('crm', 0) c),
		  ARRAY[1, 2]::bigint[], 'a read-write changes() seals and returns the events');
-- Unsealed: two more, written to the outbox but without a position.
DO $$ BEGIN PERFORM connector.enable('crm', '2'); PERFORM connector.revoke('crm', '2', '1'); PERFORM connector._flush(); END $$;
SELECT is((SELECT sum(n) FROM connector.outbox WHERE position IS NULL), 2::bigint, 'two events are not sealed yet');

SAVEPOINT ro;
SET TRANSACTION READ ONLY;
SELECT is(current_setting('transaction_read_only'), 'on', 'the transaction is read-only');
SELECT throws_ok($$SELECT connector._seal()$$, '25006', NULL,
				 'sealing is refused here (what changes() used to try)');
SELECT is((SELECT array_agg(c.position ORDER BY c.position) FROM connector.changes('crm', 0) c),
		  ARRAY[1, 2]::bigint[], 'a read-only changes() returns the sealed events, without error');
SELECT is((SELECT array_agg(c.event->>'type' ORDER BY c.position) FROM connector.changes('crm', '1'::varchar, 10) c),
		  ARRAY['access.granted'], 'from a position, bound as a string too');
SELECT is((SELECT count(*) FROM connector.changes('crm', 2) c), 0::bigint,
		  'after the last sealed position: nothing, the same every time');
ROLLBACK TO SAVEPOINT ro;

SELECT is(current_setting('transaction_read_only'), 'off', 'read-write again');
SELECT is((SELECT array_agg(c.event->>'type' ORDER BY c.position) FROM connector.changes('crm', 2) c),
		  ARRAY['account.enabled', 'access.revoked'], 'a read-write changes() seals the rest, in order');

SELECT * FROM finish();
ROLLBACK;
