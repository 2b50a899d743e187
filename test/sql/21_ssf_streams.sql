-- SSF streams, SQL side (spec section 12, sql/parts/78_ssf_streams.sql):
-- the functions act only for the receiver whose token scim_session checked
-- in the same transaction, on that receiver's streams; the tables and the
-- C helper are out of every role's reach; exact SQLSTATEs of bad inputs.
-- The HTTP side and the poll protocol are in test/ssf/gateway_test.py.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
CREATE TABLE public.other_users (id int PRIMARY KEY, name text NOT NULL);
SELECT connector.register_app('other', '{"accounts": {"table": "public.other_users", "id": "id", "name": "name"}}');
SELECT connector.add_signing_key('crm', 'ES256');
SELECT plan(24);

CREATE ROLE regress_platform IN ROLE connector_platform;
CREATE ROLE regress_admin IN ROLE connector_admin;
SELECT connector.add_token('crm', 'okta') AS okta \gset
SELECT connector.add_token('crm', 'sgnl') AS sgnl \gset
SELECT connector.add_token('other', 'okta-other') AS other \gset

SET ROLE regress_platform;
-- no scim_session: no receiver
SELECT throws_ok($$SELECT connector.ssf_stream_get('crm')$$, '28000',
				 'no bearer token of application "crm" was checked in this transaction',
				 'without scim_session in the transaction: 28000');
SELECT throws_ok($$SELECT connector._ssf_receiver('x')$$, '42501', NULL,
				 'the platform role cannot read the client mark');
SELECT throws_ok($$SELECT * FROM connector.ssf_set$$, '42501', NULL, 'nor the waiting SETs');
SELECT throws_ok($$SELECT * FROM connector.ssf_stream$$, '42501', NULL, 'nor the streams table');

SELECT connector.scim_session('crm', :'okta');
SELECT connector.ssf_stream_create('crm', '{}', 'https://gw.example.com/ssf/crm') AS s1 \gset
SELECT is((:'s1'::jsonb)->'delivery'->>'method', 'urn:ietf:rfc:8936', 'no delivery: poll');
SELECT is((:'s1'::jsonb)->>'aud', 'okta', 'aud is the token name');
SELECT (:'s1'::jsonb)->>'stream_id' AS sid \gset
SELECT is(jsonb_array_length(connector.ssf_stream_get('crm')), 1, 'the receiver lists its stream');

-- a token of another application does not open this one's streams
SELECT connector.scim_session('other', :'other');
SELECT throws_ok($$SELECT connector.ssf_stream_get('crm')$$, '28000', NULL,
				 'a session of another application''s token: 28000');
SELECT connector.scim_session('crm', :'sgnl');
SELECT is(connector.ssf_stream_get('crm'), '[]'::jsonb, 'another receiver sees no stream');
SELECT throws_ok(format($$SELECT connector.ssf_stream_status('crm', %L)$$, :'sid'), '42704',
				 format('stream "%s" does not exist', :'sid'), 'nor reads its status: 42704');
SELECT connector.scim_session('crm', :'okta');

-- bad inputs
SELECT throws_ok($$SELECT connector.ssf_stream_create('crm', '{"delivery": {"method": "urn:x"}}', 'https://gw/ssf/crm')$$,
				 '0A000', 'unsupported delivery method "urn:x"', 'unsupported delivery method: 0A000');
SELECT throws_ok($$SELECT connector.ssf_stream_create('crm', '{"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://192.168.1.1/x"}}', 'https://gw/ssf/crm')$$,
				 '22023', 'endpoint URL host "192.168.1.1" is a loopback, private or link-local address',
				 'push URL to a private address: 22023');
SELECT throws_ok($$SELECT connector.ssf_stream_create('crm', '{"events_requested": ["urn:x"]}', 'https://gw/ssf/crm')$$,
				 '22023', 'stream configuration "events_requested" names no supported event type',
				 'no supported event requested: 22023');
SELECT throws_ok($$SELECT connector.ssf_stream_create('crm', '[]', 'https://gw/ssf/crm')$$,
				 '22023', 'a stream configuration must be a JSON object, not array', 'configuration not an object: 22023');
SELECT throws_ok($$SELECT connector.ssf_stream_create('crm', '{}', 'ftp://gw/ssf/crm')$$,
				 '22023', 'issuer must be an http(s) URL without query or fragment', 'bad issuer: 22023');
SELECT throws_ok(format($$SELECT connector.ssf_poll('crm', %L, -1)$$, :'sid'),
				 '22023', 'maxEvents must not be negative', 'negative maxEvents: 22023');
SELECT throws_ok(format($$SELECT connector.ssf_poll('crm', %L, 10, true, NULL, '{"j": {"description": "x"}}')$$, :'sid'),
				 '22023', 'setErrs entry "j" must be an object with a string "err" and an optional string "description"',
				 'malformed setErrs: 22023');
SELECT throws_ok($$SELECT connector.ssf_verify('crm', 'nosuch', 's')$$,
				 '42704', 'stream "nosuch" does not exist', 'verification of an unknown stream: 42704');
SELECT throws_ok(format($$SELECT connector.ssf_stream_status('crm', %L, 'off', NULL)$$, :'sid'),
				 '22023', 'stream status must be "enabled", "paused" or "disabled", not "off"', 'bad status: 22023');
SELECT throws_ok(format($$SELECT connector.ssf_subject_add('crm', %L, '{"format": "complex", "user": {}}')$$, :'sid'),
				 '0A000', 'complex subjects are not supported', 'complex subject: 0A000');

-- poll: acknowledging an unknown jti is no error; the verification SET
SELECT connector.ssf_verify('crm', :'sid', 'abc');
SELECT is((SELECT count(*) FROM jsonb_object_keys(connector.ssf_poll('crm', :'sid', 10, true, '{evt_nope.0}', NULL)->'sets')),
		  1::bigint, 'an unknown jti in ack is ignored; the verification SET waits');
SELECT is(connector.ssf_poll('crm', :'sid', 0, true,
							 ARRAY(SELECT jsonb_object_keys(connector.ssf_poll('crm', :'sid')->'sets')), NULL),
		  '{"sets": {}, "moreAvailable": false}', 'acknowledged: gone');

RESET ROLE;
SET ROLE regress_admin;
SELECT is((SELECT state FROM connector.status WHERE endpoint = 'ssf-' || :'sid'), 'polled',
		  'connector.status shows the stream, polled');
RESET ROLE;
-- an admin removing the endpoint removes the stream
SELECT connector.remove_endpoint('crm', 'ssf-' || :'sid');
SELECT is((SELECT count(*) FROM connector.ssf_stream), 0::bigint, 'remove_endpoint deletes the stream');

SELECT * FROM finish();
ROLLBACK;
