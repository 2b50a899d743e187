-- Endpoints: add, options, status view, enable, rotate, redeliver, remove,
-- dead letters, signing keys, retention that waits for delivery.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(56);

-- The test vector secret of Standard Webhooks (24 bytes) and a 32-byte one.
\set s1 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
SELECT 'whsec_' || encode(decode(repeat('a5', 32), 'hex'), 'base64') AS s2 \gset
CREATE FUNCTION pg_temp.st(col text, ep text DEFAULT 'hook') RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
	EXECUTE format('SELECT %I::text FROM connector.status WHERE app = ''crm'' AND endpoint = $1', col) INTO r USING ep;
	RETURN r;
END $$;
CREATE FUNCTION pg_temp.ep(ep text DEFAULT 'hook') RETURNS connector.endpoint LANGUAGE sql AS $$
	SELECT * FROM connector.endpoint WHERE app = 'crm' AND name = ep
$$;
CREATE FUNCTION pg_temp.end_pos() RETURNS bigint LANGUAGE sql AS $$
	SELECT last_position FROM connector.seal_state
$$;

-- Events before the endpoint exists, not yet sealed: the new endpoint skips them.
INSERT INTO "Crm App".user_roles VALUES (2, 7, NULL);
SELECT lives_ok(format($$SELECT connector.add_endpoint('crm', 'hook', 'https://hooks.example.com/crm', %L)$$, :'s1'),
				'add_endpoint with defaults');
SELECT is((pg_temp.ep()).cursor, pg_temp.end_pos(), 'a new endpoint starts at the end of the stream');
SELECT is(pg_temp.end_pos(), 1::bigint, 'add_endpoint sealed the committed events first');
SELECT is(pg_temp.st('pending_events'), '0', 'so nothing earlier is pending');
SELECT is(ROW((pg_temp.ep()).batch_size, (pg_temp.ep()).timeout_ms, (pg_temp.ep()).headers, (pg_temp.ep()).types,
			  (pg_temp.ep()).ordered, (pg_temp.ep()).state, (pg_temp.ep()).consecutive_failures)::text,
		  ROW(1, NULL::int, '{}'::jsonb, NULL::text[], true, 'active', 0)::text,
		  'defaults: batch_size 1, http_timeout, no headers, every type, ordered, active');
SELECT is((SELECT secret FROM connector.endpoint_secret WHERE endpoint_id = (pg_temp.ep()).id), :'s1',
		  'the secret is stored as given');

-- Every option.
SELECT lives_ok(format($$SELECT connector.add_endpoint('crm', 'all', 'HTTPS://Hooks.Example.com:8443/a/b?x=1#f', %L,
	'{"batch_size": 100, "timeout": "500ms", "headers": {"Authorization": "Bearer t0k", "X-Tenant": "acme"},
	  "types": ["access.revoked", "access.granted", "access.granted"], "ordered": false, "from_position": 0}')$$, :'s2'),
	'add_endpoint with every option');
SELECT is(ROW((pg_temp.ep('all')).batch_size, (pg_temp.ep('all')).timeout_ms, (pg_temp.ep('all')).headers,
			  (pg_temp.ep('all')).types, (pg_temp.ep('all')).ordered, (pg_temp.ep('all')).cursor)::text,
		  ROW(100, 500, '{"Authorization": "Bearer t0k", "X-Tenant": "acme"}'::jsonb,
			  ARRAY['access.granted', 'access.revoked'], false, 0::bigint)::text,
		  'options stored: timeout in ms, types sorted and distinct, cursor at from_position');
SELECT lives_ok(format($$SELECT connector.add_endpoint('crm', 'slow', 'https://[2606:4700:4700::1111]/x', %L,
	'{"timeout": "1 hour", "batch_size": 1000, "types": ["capture.tampered"], "ordered": true}')$$, :'s1'),
	'an IPv6 literal of a public range, the largest batch and timeout');
SELECT is((pg_temp.ep('slow')).timeout_ms, 3600000, 'timeout "1 hour" is 3600000 ms');
SELECT lives_ok(format($$SELECT connector.add_endpoint('crm', repeat('n', 63), 'https://9.9.9.9/x', %L,
	'{"from_position": 1, "timeout": "100ms", "batch_size": 1}')$$, :'s1'),
	'a 63-byte name, a public IPv4 literal, the smallest timeout');
SELECT is((pg_temp.ep(repeat('n', 63))).cursor, 1::bigint, 'from_position is the cursor: events after it are sent');
SELECT is((SELECT octet_length(decode(substr(secret, 7), 'base64')) FROM connector.endpoint_secret
			WHERE endpoint_id = (pg_temp.ep('all')).id), 32, 'a 32-byte secret');

-- The status view follows the stream.
SELECT is(pg_temp.st('pending_events', 'all'), '1', 'from_position 0: the earlier event is pending');
INSERT INTO "Crm App".user_roles VALUES (2, 1, NULL), (9, 1, NULL);
SELECT is(pg_temp.st('pending_events'), '0', 'unsealed events are not counted yet');
SELECT is((SELECT count(*) FROM connector.changes('crm')), 3::bigint, 'changes() seals them');
SELECT is(pg_temp.st('pending_events'), '2', 'two events pending for the new endpoint');
SELECT is(pg_temp.st('pending_events', 'all'), '3', 'three for the one that started at 0');
SELECT is(pg_temp.st('pending_events', 'slow'), '0', 'none for one that wants capture.tampered only');
SELECT isnt(pg_temp.st('oldest_pending_age'), NULL, 'oldest_pending_age is set');
SELECT is(pg_temp.st('oldest_pending_age', 'slow'), NULL, 'and NULL with nothing pending');
UPDATE "Crm App".users SET active = false WHERE id = 2;
SELECT is((SELECT count(*) FROM connector.changes('crm')), 4::bigint, 'seal');
SELECT is(pg_temp.st('pending_events', 'all'), '3', 'types filter: account.disabled is not pending for "all"');
SELECT is(pg_temp.st('pending_events'), '3', 'but is for an endpoint of every type');
SELECT is((SELECT array_agg(endpoint ORDER BY endpoint) FROM connector.status),
		  ARRAY['all', 'hook', repeat('n', 63), 'slow'], 'one status row per endpoint');

-- The worker's updates show; enable_endpoint clears a disabled state.
UPDATE connector.endpoint SET cursor = cursor + 2, delivered = 2, last_success = now(), state = 'disabled',
	disabled_reason = 'endpoint answered 410 Gone', consecutive_failures = 3, last_status = 410,
	last_error = 'HTTP 410', next_attempt = now() + interval '1 hour'
 WHERE name = 'hook';
INSERT INTO connector.pending (endpoint_id, first_position, last_position, message_id, attempts, next_attempt)
VALUES ((pg_temp.ep()).id, 4, 4, 'evt_1_1', 3, now() + interval '1 hour');
SELECT is(ROW(pg_temp.st('state'), pg_temp.st('disabled_reason'), pg_temp.st('pending_events'), pg_temp.st('delivered'),
			  pg_temp.st('last_status'), pg_temp.st('consecutive_failures'))::text,
		  ROW('disabled', 'endpoint answered 410 Gone', '1', '2', '410', '3')::text, 'status shows the worker''s state');
SELECT lives_ok($$SELECT connector.enable_endpoint('crm', 'hook')$$, 'enable_endpoint');
SELECT is(ROW((pg_temp.ep()).state, (pg_temp.ep()).disabled_reason, (pg_temp.ep()).consecutive_failures,
			  (pg_temp.ep()).next_attempt)::text, ROW('active', NULL::text, 0, NULL::timestamptz)::text,
		  'active again: reason, failures and next attempt cleared');
SELECT ok((SELECT next_attempt <= now() FROM connector.pending WHERE endpoint_id = (pg_temp.ep()).id),
		  'the waiting message is due at once');
SELECT is((pg_temp.ep()).last_error, 'HTTP 410', 'the last error stays for the record');

-- redeliver moves the cursor back and drops messages in flight.
SELECT lives_ok($$SELECT connector.redeliver('crm', 'hook', 2)$$, 'redeliver from position 2');
SELECT is((pg_temp.ep()).cursor, 1::bigint, 'cursor is from_position - 1');
SELECT is((SELECT count(*) FROM connector.pending WHERE endpoint_id = (pg_temp.ep()).id), 0::bigint,
		  'pending messages are dropped');
SELECT is(pg_temp.st('pending_events'), '3', 'the events from position 2 are pending again');
SELECT lives_ok(format($$SELECT connector.redeliver('crm', 'hook', %s)$$, pg_temp.end_pos() + 1),
				'redeliver from the next position skips to the end');
SELECT is(pg_temp.st('pending_events'), '0', 'nothing pending then');

-- Secrets and rotation.
SELECT is(connector._endpoint_signing_keys((pg_temp.ep()).id), ARRAY[decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64')],
		  'signing keys: the decoded secret');
SELECT lives_ok(format($$SELECT connector.rotate_secret('crm', 'hook', %L)$$, :'s2'), 'rotate_secret');
SELECT is((SELECT ROW(secret, previous, previous_until = now() + interval '1 day')::text FROM connector.endpoint_secret
			WHERE endpoint_id = (pg_temp.ep()).id),
		  ROW(:'s2', :'s1', true)::text, 'the old secret stays valid for the overlap, a day by default');
SELECT is(connector._endpoint_signing_keys((pg_temp.ep()).id),
		  ARRAY[decode(repeat('a5', 32), 'hex'), decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64')],
		  'during the overlap: the new key, then the old one');
SELECT is(pg_temp.st('rotation_ends')::timestamptz, now() + interval '1 day', 'status shows when the rotation ends');
SELECT lives_ok(format($$SELECT connector.rotate_secret('crm', 'hook', %L, '0')$$, :'s1'), 'rotate with no overlap');
SELECT is(connector._endpoint_signing_keys((pg_temp.ep()).id), ARRAY[decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64')],
		  'no overlap: the new key only');
DELETE FROM connector.endpoint_secret WHERE endpoint_id = (pg_temp.ep()).id;
SELECT is(connector._endpoint_signing_keys((pg_temp.ep()).id), NULL, 'no secret (dump restored without it): NULL');
SELECT lives_ok(format($$SELECT connector.rotate_secret('crm', 'hook', %L)$$, :'s2'), 'rotate_secret sets a missing secret');

-- Dead letters.
INSERT INTO connector.dead_letter (endpoint_id, message_id, first_position, last_position, attempts, last_status, last_error)
VALUES ((pg_temp.ep()).id, 'evt_9_1', 2, 2, 10, 400, 'HTTP 400');
SELECT is((SELECT ROW(app, endpoint, message_id, first_position, last_position, attempts, last_status, last_error)::text
			 FROM connector.dead_letters),
		  ROW('crm', 'hook', 'evt_9_1', 2, 2, 10, 400, 'HTTP 400')::text, 'dead_letters names app and endpoint');

-- Retention keeps what an endpoint has not delivered.
UPDATE connector.outbox SET occurred_at = now() - interval '30 days';
UPDATE connector.dead_letter SET dead_at = now() - interval '30 days';
UPDATE connector.endpoint SET cursor = 1 WHERE app = 'crm';
SELECT is(connector.purge_events(), 1::bigint, 'purge removes old events up to the lowest cursor of the app''s endpoints');
SELECT is((SELECT min(position) FROM connector.outbox), 2::bigint, 'undelivered events stay');
SELECT is((SELECT count(*) FROM connector.dead_letter), 0::bigint, 'expired dead letters are removed');
UPDATE connector.endpoint SET cursor = 3 WHERE app = 'crm';
SELECT count(*) AS outbox_rows FROM connector.outbox \gset
SELECT ok(connector.purge_events(1) > 0, 'purge removes more');
SELECT is((SELECT count(*) FROM connector.outbox), (:outbox_rows - 1)::bigint,
		  'in bounded batches: max_rows counts outbox rows');
SELECT lives_ok($$SELECT connector.remove_endpoint('crm', 'hook')$$, 'remove_endpoint');
SELECT is((SELECT count(*) FROM connector.endpoint_secret s WHERE NOT EXISTS (SELECT 1 FROM connector.endpoint e WHERE e.id = s.endpoint_id)),
		  0::bigint, 'its secret went with it');
SELECT connector.unregister_app('crm');
SELECT is((SELECT count(*) FROM connector.endpoint), 0::bigint, 'unregister_app removes the endpoints');
SELECT ok(connector.purge_events() > 0, 'purge goes on');
SELECT is((SELECT count(*) FROM connector.outbox), 0::bigint, 'without endpoints every old event goes');

SELECT * FROM finish();
ROLLBACK;
