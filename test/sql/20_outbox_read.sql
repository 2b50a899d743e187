-- The outbox read in C (src/outbox_read.c) and the dispatcher's SQL around
-- it: event text and jsonb byte for byte as the SQL expansion wrote them
-- (types written as text, escapes, several statements per transaction),
-- message bodies and their checks, 2xx answers recorded together, and
-- retention that looks no further than the first young row.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
\ir ../fixtures/render_check.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(19);

-- Shapes the other suites make less of: a type stored as text (not in the
-- list), strings with escapes and control characters, events of several
-- statements in one row (their own timestamps), a platform origin.
SELECT connector._emit('crm', 'x.custom', '{"k": "a\"b\\c\u0001\n", "n": 1.50, "e": 1e2, "z": null}');
SELECT connector._emit('crm', 'account.updated', '{"deep": {"b": [1, {"a": true}], "a": "é"}}');
INSERT INTO "Crm App".users (id, login, email) VALUES (20, E'q"uote\\', E'tab\there');
SELECT pg_sleep(0.002);
UPDATE "Crm App".users SET "Department Name" = 'R&D' WHERE id = 20;
INSERT INTO "Crm App".user_roles VALUES (20, 2, '2030-01-02 03:04:05.678+00');
SELECT connector.revoke('crm', '20', '2', request_id => 'r-7');
SELECT is(pg_temp.render_mismatches(), 0::bigint, 'every event and body is rendered as the SQL expansion did');

SELECT is((SELECT count(*) FROM connector._events('crm', 0, 1000, ARRAY['x.custom'])), 1::bigint,
		  'a type stored as text passes its filter');
SELECT is((SELECT type FROM connector._render_events('crm', 0, 1000) ORDER BY position LIMIT 1), 'x.custom',
		  'and reads back as that text');
SELECT is((SELECT event->'data'->'origin'->>'request_id' FROM connector._events('crm', 0, 1000) ORDER BY position DESC LIMIT 1),
		  'r-7', 'a platform origin carries its request id');
SELECT ok((SELECT count(DISTINCT event->>'timestamp') FROM connector._events('crm', 0, 1000)) > 1,
		  'the events of later statements of the transaction carry their own timestamps');

-- Limits and positions: lim counts events, after skips into a row.
SELECT is((SELECT array_agg(position ORDER BY position) FROM connector._render_events('crm', 2, 2)),
		  ARRAY[3, 4]::bigint[], 'after 2, limit 2: positions 3 and 4');
SELECT is((SELECT array_agg(id ORDER BY position) FROM connector._event_refs('crm', 2, 2)),
		  (SELECT array_agg(event->>'id' ORDER BY position) FROM connector._events_sql('crm', 2, 2)),
		  '_event_refs gives the same ids without rendering');
SELECT is((SELECT count(*) FROM connector._render_events('crm', 1000000, 10)), 0::bigint, 'nothing after the end');
SELECT is((SELECT count(*) FROM connector._render_events('nope', 0, 10)), 0::bigint, 'nothing of another application');

-- _message_bodies: ranges in order and apart, arrays of one length.
SELECT throws_ok($$SELECT connector._message_bodies('crm', NULL, false, '{3,1}', '{3,1}', '{a,b}')$$,
				 '22023', 'message ranges must be given in position order, apart', 'ranges out of order refused');
SELECT throws_ok($$SELECT connector._message_bodies('crm', NULL, true, '{1,2}', '{2,3}', '{a,b}')$$,
				 '22023', 'message ranges must be given in position order, apart', 'overlapping ranges refused');
SELECT throws_ok($$SELECT connector._message_bodies('crm', NULL, false, '{1}', '{1,2}', '{a}')$$,
				 '22023', 'firsts, lasts and ids must have as many elements', 'arrays of different lengths refused');
SELECT is(connector._message_bodies('crm', NULL, true, '{1000000}', '{1000001}', '{b}'),
		  ARRAY['{"id": "b", "data": {"events": null}, "type": "event.batch", "timestamp": null}'],
		  'a batch with no event left: null events, as jsonb_agg over nothing gave');
SELECT is(connector._message_bodies('crm', NULL, false, '{1000000}', '{1000000}', '{b}'), ARRAY[NULL::text],
		  'a single message with no event left: NULL');

-- 2xx answers of one endpoint recorded together.
SELECT connector.add_endpoint('crm', 'hook', 'https://hooks.example.com/a', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
							  '{"from_position": 0}');
INSERT INTO connector.pending (endpoint_id, first_position, last_position, message_id, n_events)
SELECT e.id, p, p, 'm' || p, 1 FROM connector.endpoint e, generate_series(1, 4) p;
SELECT ok(connector._dispatch_delivered((SELECT id FROM connector.endpoint), '{1,2,4}', 204), 'three answers in one call');
SELECT is((SELECT ROW(cursor, delivered, last_status, consecutive_failures)::text FROM connector.endpoint),
		  ROW(2, 3, 204, 0)::text, 'counted; the cursor stops before message 3, still pending');
SELECT is((SELECT array_agg(first_position) FROM connector.pending), '{3}'::bigint[], 'only message 3 is left');

-- Retention looks no further than the first young row: an old row after it waits.
DELETE FROM connector.endpoint;
SELECT connector._seal();
UPDATE connector.outbox SET occurred_at = now() - interval '30 days';
SELECT last_position AS lp FROM connector.seal_state \gset
INSERT INTO connector.outbox (position, txid, seq, n, app, occurred_at, origin, events) VALUES
	(:lp + 1, '5', 0, 1, 'crm', now(), '["direct",null,null,null,null]', '[[1]]'),
	(:lp + 2, '6', 0, 1, 'crm', now() - interval '30 days', '["direct",null,null,null,null]', '[[1]]');
UPDATE connector.seal_state SET last_position = :lp + 2;
SELECT is(connector.purge_events(), :lp::bigint, 'every old event before the young one is removed');
SELECT is((SELECT array_agg(position ORDER BY position) FROM connector.outbox), ARRAY[:lp + 1, :lp + 2]::bigint[],
		  'the young one, and the old one after it, stay');

SELECT * FROM finish();
ROLLBACK;
