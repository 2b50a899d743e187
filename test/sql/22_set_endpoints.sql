-- Endpoints of format set (spec section 12, RFC 8935 push): add_endpoint's
-- options format, issuer, audience, batch_size and types with SET event
-- URIs, each bad input with its SQLSTATE and message, and what is stored.
-- Delivery itself is in test/t/032_set_push.pl.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(18);

CREATE FUNCTION pg_temp.add(opts text) RETURNS text LANGUAGE sql AS $$
	SELECT format('SELECT connector.add_endpoint(%L, %L, %L, NULL, %L)', 'crm', 'rx',
				  'https://rx.example.com/push', opts)
$$;
CREATE FUNCTION pg_temp.setopts(extra text DEFAULT '') RETURNS text LANGUAGE sql AS $$
	SELECT '{"format": "set", "issuer": "https://tx.example/ssf/crm", "audience": "rx"' || extra || '}'
$$;

SELECT throws_ok(pg_temp.add('{"format": "jwt"}'), '22023',
	'endpoint option "format" must be "webhook" or "set"', 'an unknown format');
SELECT throws_ok(pg_temp.add('{"format": 1}'), '22023',
	'endpoint option "format" must be "webhook" or "set", not number', 'a format that is not a string');
SELECT throws_ok(pg_temp.add('{"format": "set", "audience": "rx"}'), '22023',
	'endpoint option "issuer" is required with format "set": a string of 1 to 1024 bytes', 'format set needs an issuer');
SELECT throws_ok(pg_temp.add('{"format": "set", "issuer": "i"}'), '22023',
	'endpoint option "audience" is required with format "set": a string of 1 to 1024 bytes', 'and an audience');
SELECT throws_ok(pg_temp.add('{"format": "set", "issuer": "", "audience": "rx"}'), '22023',
	'endpoint option "issuer" is required with format "set": a string of 1 to 1024 bytes', 'an empty issuer');
SELECT throws_ok(pg_temp.add(pg_temp.setopts(', "batch_size": 2')), '22023',
	'endpoint option "batch_size" must be 1 with format "set"', 'batch_size above 1 with format set');
SELECT throws_ok(pg_temp.add('{"issuer": "i"}'), '22023',
	'endpoint option "issuer" is for endpoints of format "set"', 'issuer on a webhook endpoint');
SELECT throws_ok(pg_temp.add('{"types": ["https://schemas.openid.net/secevent/risc/event-type/account-disabled"]}'), '22023',
	'endpoint option "types" contains unknown event type "https://schemas.openid.net/secevent/risc/event-type/account-disabled"',
	'a SET URI in the types of a webhook endpoint');
SELECT throws_ok(pg_temp.add(pg_temp.setopts(', "types": ["urn:example:nope"]')), '22023',
	'endpoint option "types" contains unknown event type "urn:example:nope"', 'an unknown URI');
SELECT throws_ok(pg_temp.add(pg_temp.setopts(', "types": ["capture.tampered"]')), '22023',
	'endpoint option "types" names no event that gives a SET', 'only events without SETs');

SELECT throws_ok(pg_temp.add(pg_temp.setopts(', "headers": {"Accept": "text/plain"}')), '22023',
	'endpoint option "headers": header "accept" is set by the connector for format "set"', 'Accept is the connector''s');
SELECT lives_ok(pg_temp.add(pg_temp.setopts(', "batch_size": 1, "headers": {"Authorization": "Bearer t"}')),
	'a set endpoint with batch_size 1 and an Authorization header');
SELECT is((SELECT row(format, issuer, audience, batch_size, types, set_types)::text
			 FROM connector.endpoint WHERE name = 'rx'),
		  '(set,https://tx.example/ssf/crm,rx,1,,)', 'stored: format, issuer, audience; every event and SET');
SELECT connector.remove_endpoint('crm', 'rx');

SELECT lives_ok(pg_temp.add(pg_temp.setopts(
	', "types": ["https://schemas.openid.net/secevent/caep/event-type/session-revoked", "credential.revoked"]')),
	'types with a SET URI and an event');
SELECT is((SELECT types FROM connector.endpoint WHERE name = 'rx'),
		  '{account.disabled,credential.revoked}'::text[],
		  'the events filter: the event named and those giving the URI named');
SELECT is((SELECT set_types FROM connector.endpoint WHERE name = 'rx'),
		  '{https://schemas.openid.net/secevent/caep/event-type/credential-change,https://schemas.openid.net/secevent/caep/event-type/session-revoked}'::text[],
		  'the SETs wanted: the URI named and those of the event named');
SELECT is((SELECT types FROM connector.status WHERE endpoint = 'rx'),
		  '{account.disabled,credential.revoked}'::text[],
		  'status shows the events filter');
SELECT connector.remove_endpoint('crm', 'rx');
SELECT is((SELECT count(*) FROM connector.ssf_set), 0::bigint, 'nothing waits for a removed endpoint');

SELECT * FROM finish();
ROLLBACK;
