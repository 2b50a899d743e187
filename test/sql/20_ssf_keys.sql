-- SET signing keys (spec section 12): the key life cycle, the JWK Set, every
-- bad input with its SQLSTATE, and that no role reads a private key.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
CREATE TABLE public.other_users (id int PRIMARY KEY, name text NOT NULL);
SELECT connector.register_app('other', '{"accounts": {"table": "public.other_users", "id": "id", "name": "name"}}');
SELECT plan(79);

CREATE ROLE regress_admin IN ROLE connector_admin;
CREATE ROLE regress_platform IN ROLE connector_platform;
CREATE ROLE regress_reader IN ROLE pg_read_all_data;
CREATE ROLE regress_nobody;

-- base64url to bytes, and a JWS part to jsonb
CREATE FUNCTION pg_temp.b64url(t text) RETURNS bytea LANGUAGE sql AS $$
	SELECT decode(translate(t, '-_', '+/') || repeat('=', (4 - length(t) % 4) % 4), 'base64')
$$;
CREATE FUNCTION pg_temp.part(jws text, n int) RETURNS jsonb LANGUAGE sql AS $$
	SELECT convert_from(pg_temp.b64url(split_part(jws, '.', n)), 'UTF8')::jsonb
$$;
-- RFC 7638 thumbprint of a public JWK
CREATE FUNCTION pg_temp.thumbprint(j jsonb) RETURNS text LANGUAGE sql AS $$
	SELECT rtrim(translate(encode(sha256(convert_to(
		CASE j->>'kty'
			WHEN 'RSA' THEN format('{"e":"%s","kty":"RSA","n":"%s"}', j->>'e', j->>'n')
			ELSE format('{"crv":"%s","kty":"EC","x":"%s","y":"%s"}', j->>'crv', j->>'x', j->>'y') END,
		'UTF8')), 'base64'), '+/', '-_'), '=')
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;

-- no key yet: nothing can be signed
SELECT throws_ok($$SELECT connector._sets('crm', '{"id": "evt_1_0", "type": "account.enabled", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "crm", "account": {"id": "1"}}}', 'https://i', 'a')$$,
				 '55000', 'application "crm" has no active signing key', 'no active key: nothing is signed');
SELECT is(connector.jwks('crm'), '{"keys": []}'::jsonb, 'an application without keys has an empty key set');

-- add keys as connector_admin
SET ROLE regress_admin;
SELECT connector.add_signing_key('crm') AS rs1 \gset
SELECT connector.add_signing_key('crm', 'ES256') AS es1 \gset
SELECT connector.add_signing_key('crm', 'RS256') AS rs2 \gset
RESET ROLE;
SELECT ok(:'rs1' ~ '^[A-Za-z0-9_-]{43}$' AND :'es1' ~ '^[A-Za-z0-9_-]{43}$', 'a kid is 43 base64url characters');
SELECT is((SELECT count(DISTINCT kid) FROM connector.signing_key), 3::bigint, 'every key is new');

SELECT is((SELECT array_agg(k->>'kid') FROM jsonb_array_elements(connector.jwks('crm')->'keys') k),
		  ARRAY[:'rs2', :'es1', :'rs1'], 'jwks lists the active keys, newest first');
SELECT is((SELECT k - 'n' FROM jsonb_array_elements(connector.jwks('crm')->'keys') k WHERE k->>'kid' = :'rs1'),
		  jsonb_build_object('kty', 'RSA', 'e', 'AQAB', 'kid', :'rs1', 'alg', 'RS256', 'use', 'sig'),
		  'an RS256 key: kty, e, kid, alg, use sig (and n)');
SELECT is((SELECT octet_length(pg_temp.b64url(k->>'n')) FROM jsonb_array_elements(connector.jwks('crm')->'keys') k
			WHERE k->>'kid' = :'rs1'), 256, 'an RSA modulus of 2048 bits');
SELECT is((SELECT get_byte(pg_temp.b64url(k->>'n'), 0) >= 128 FROM jsonb_array_elements(connector.jwks('crm')->'keys') k
			WHERE k->>'kid' = :'rs1'), true, 'the modulus has no leading zero byte (RFC 7518 6.3.1.1)');
SELECT is((SELECT k - 'x' - 'y' FROM jsonb_array_elements(connector.jwks('crm')->'keys') k WHERE k->>'kid' = :'es1'),
		  jsonb_build_object('kty', 'EC', 'crv', 'P-256', 'kid', :'es1', 'alg', 'ES256', 'use', 'sig'),
		  'an ES256 key: kty, crv P-256, kid, alg, use sig (and x, y)');
SELECT is((SELECT array[octet_length(pg_temp.b64url(k->>'x')), octet_length(pg_temp.b64url(k->>'y'))]
			 FROM jsonb_array_elements(connector.jwks('crm')->'keys') k WHERE k->>'kid' = :'es1'),
		  ARRAY[32, 32], 'P-256 coordinates are 32 bytes each');
SELECT ok((SELECT bool_and(pg_temp.thumbprint(k) = k->>'kid') FROM jsonb_array_elements(connector.jwks('crm')->'keys') k),
		  'each kid is the RFC 7638 thumbprint of its key');
SELECT is((SELECT count(*) FROM connector.signing_key_secret), 3::bigint, 'each key has a private half');
SELECT is((SELECT count(*) FROM connector.signing_key_secret
			WHERE get_byte(private_key, 0) = 48), 3::bigint, 'stored as DER (PKCS#8)');

-- the newest active key signs
SELECT is(pg_temp.part(s, 1), jsonb_build_object('typ', 'secevent+jwt', 'alg', 'RS256', 'kid', :'rs2'),
		  'the newest active key signs: its kid and alg in the header')
  FROM connector._sets('crm', '{"id": "evt_1_0", "type": "account.enabled", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "crm", "txid": "1", "account": {"id": "1"}}}', 'https://i', 'a') s;

-- the subject and attribute names follow the mapping's scim key (as register_app
-- stores it once the SCIM gateway's key is in; set here directly)
UPDATE connector.app SET spec = spec || '{"scim": {"attributes": {"externalId": "login",
	"emails[type eq \"home\"].value": "Department Name", "emails[type eq \"work\"].value": "email"}}}'
 WHERE app = 'crm';
SELECT is(pg_temp.part(s, 2)->'sub_id',
		  '{"format": "aliases", "identifiers": [{"format": "opaque", "id": "1"},
			{"format": "scim", "uri": "/Users/1", "externalId": "alice"},
			{"format": "email", "email": "alice@example.com"}]}'::jsonb,
		  'sub_id: externalId and the work e-mail from the scim mapping')
  FROM connector._sets('crm', '{"id": "evt_1_0", "type": "account.enabled", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "crm", "account": {"id": "1"},
		"after": {"id": 1, "login": "alice", "active": true, "email": "alice@example.com", "Department Name": "IT"}}}', 'https://i', 'a') s;
SELECT is(pg_temp.part(s, 2)->'events', '{"urn:ietf:params:scim:event:prov:patch:notice": {"attributes": ["userName", "emails[type eq \"work\"].value"]}}'::jsonb,
		  'a patch notice names changed columns by their SCIM paths')
  FROM connector._sets('crm', '{"id": "evt_1_0", "type": "account.updated", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "crm", "account": {"id": "1"},
		"before": {"id": 1, "login": "alice", "active": true, "email": "a@example.com", "Department Name": "IT"},
		"after": {"id": 1, "login": "alice2", "active": true, "email": "b@example.com", "Department Name": "IT"}}}', 'https://i', 'a') s
 LIMIT 1;
SELECT is(pg_temp.part(s, 2)->'sub_id', '{"format": "aliases", "identifiers": [{"format": "opaque", "id": "a/b c"}, {"format": "scim", "uri": "/Users/a%2Fb%20c"}]}'::jsonb,
		  'an id is percent-encoded in the SCIM path; a value that is no address gives no email subject')
  FROM connector._sets('crm', '{"id": "evt_1_0", "type": "account.enabled", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "crm", "account": {"id": "a/b c"},
		"after": {"email": "not an address"}}}', 'https://i', 'a') s;
UPDATE connector.app SET spec = spec - 'scim' WHERE app = 'crm';

-- bad inputs of the internal renderer
SELECT throws_ok($$SELECT connector._sets(NULL, '{}', 'i', 'a')$$, '22004', 'app must not be null', '_sets: NULL app');
SELECT throws_ok($$SELECT connector._sets('crm', NULL, 'i', 'a')$$, '22004', 'event must not be null', '_sets: NULL event');
SELECT throws_ok($$SELECT connector._sets('crm', '{}', NULL, 'a')$$, '22004', 'issuer must not be null', '_sets: NULL issuer');
SELECT throws_ok($$SELECT connector._sets('crm', '{}', 'i', NULL)$$, '22004', 'audience must not be null', '_sets: NULL audience');
SELECT throws_ok($$SELECT connector._sets('nope', '{}', 'i', 'a')$$, '42704', 'application "nope" is not registered', '_sets: unknown app');
SELECT throws_ok($$SELECT connector._sets('crm', '[]', 'i', 'a')$$, '22023', 'event must be a JSON object', '_sets: not an object');
SELECT throws_ok($$SELECT connector._sets('crm', '{"id": "evt_1_0", "type": "account.enabled"}', 'i', 'a')$$, '22023',
				 'event must have string members id, type and timestamp and an object data', '_sets: not an event');
SELECT throws_ok($$SELECT connector._sets('crm', '{"id": "evt_1_0", "type": "account.enabled", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "other", "account": {"id": "1"}}}', 'i', 'a')$$,
				 '22023', 'event "evt_1_0" is not an event of application "crm"', '_sets: another application''s event');
SELECT throws_ok($$SELECT connector._sets('crm', '{"id": "evt_1_0", "type": "account.frozen", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "crm", "account": {"id": "1"}}}', 'i', 'a')$$,
				 '22023', 'unknown event type "account.frozen"', '_sets: unknown event type');
SELECT throws_ok($$SELECT connector._sets('crm', '{"id": "evt_1_0", "type": "account.enabled", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "crm"}}', 'i', 'a')$$,
				 '22023', 'event "evt_1_0" of type account.enabled has no account id', '_sets: an account event without its account');
SELECT is((SELECT count(*) FROM connector._sets('crm', '{"id": "evt_1_0", "type": "capture.tampered", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "crm"}}', 'i', 'a')),
		  0::bigint, '_sets: capture.tampered gives no SET');

-- bad inputs
SELECT throws_ok($$SELECT connector.add_signing_key(NULL)$$, '22004', 'app must not be null', 'add: NULL app');
SELECT throws_ok($$SELECT connector.add_signing_key('crm', NULL)$$, '22004', 'alg must not be null', 'add: NULL alg');
SELECT throws_ok($$SELECT connector.add_signing_key('nope')$$, '42704', 'application "nope" is not registered', 'add: unknown app');
SELECT throws_ok($$SELECT connector.add_signing_key('crm', 'HS256')$$, '22023', 'unsupported signing algorithm "HS256"', 'add: HS256 is refused');
SELECT throws_ok($$SELECT connector.add_signing_key('crm', 'rs256')$$, '22023', 'unsupported signing algorithm "rs256"', 'add: algorithm names are case-sensitive');
SELECT throws_ok($$SELECT connector.add_signing_key('crm', 'none')$$, '22023', 'unsupported signing algorithm "none"', 'add: none is refused');
SELECT throws_ok($$SELECT connector.retire_signing_key(NULL, 'x')$$, '22004', 'app must not be null', 'retire: NULL app');
SELECT throws_ok($$SELECT connector.retire_signing_key('crm', NULL)$$, '22004', 'kid must not be null', 'retire: NULL kid');
SELECT throws_ok($$SELECT connector.retire_signing_key('nope', 'x')$$, '42704', 'application "nope" is not registered', 'retire: unknown app');
SELECT throws_ok($$SELECT connector.retire_signing_key('crm', 'no-such-kid')$$, '42704',
				 'signing key "no-such-kid" of application "crm" does not exist', 'retire: unknown kid');
SELECT throws_ok(format('SELECT connector.retire_signing_key(%L, %L)', 'other', :'rs1'), '42704',
				 format('signing key "%s" of application "other" does not exist', :'rs1'),
				 'retire: another application''s kid is unknown');
SELECT throws_ok($$SELECT connector.jwks(NULL)$$, '22004', 'app must not be null', 'jwks: NULL app');
SELECT throws_ok($$SELECT connector.jwks('nope')$$, '42704', 'application "nope" is not registered', 'jwks: unknown app');

-- retirement
SELECT lives_ok(format('SELECT connector.retire_signing_key(%L, %L)', 'crm', :'rs2'), 'retire the newest key');
SELECT is((SELECT state FROM connector.signing_keys WHERE kid = :'rs2'), 'retired', 'it shows as retired');
SELECT is((SELECT published_until - retired FROM connector.signing_keys WHERE kid = :'rs2'), interval '7 days',
		  'published for connector.retention (7 days) after retirement');
SELECT is((SELECT count(*) FROM connector.signing_key_secret WHERE kid = :'rs2'), 0::bigint, 'its private half is destroyed');
SELECT ok(connector.jwks('crm')->'keys' @> jsonb_build_array(jsonb_build_object('kid', :'rs2')),
		  'a retired key stays in the key set during its publication period');
SELECT is(pg_temp.part(s, 1)->>'kid', :'es1', 'the newest active key signs now')
  FROM connector._sets('crm', '{"id": "evt_1_0", "type": "account.enabled", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "crm", "account": {"id": "1"}}}', 'https://i', 'a') s;
SELECT is(pg_temp.part(s, 1)->>'alg', 'ES256', 'with its own algorithm')
  FROM connector._sets('crm', '{"id": "evt_1_0", "type": "account.enabled", "timestamp": "2026-01-01T00:00:00Z", "data": {"app": "crm", "account": {"id": "1"}}}', 'https://i', 'a') s;
SELECT published_until AS until FROM connector.signing_key WHERE kid = :'rs2' \gset
SELECT lives_ok(format('SELECT connector.retire_signing_key(%L, %L)', 'crm', :'rs2'), 'retiring a retired key again does nothing');
SELECT is((SELECT published_until FROM connector.signing_key WHERE kid = :'rs2'), :'until'::timestamptz,
		  'and keeps its publication period');
SELECT lives_ok(format('SELECT connector.retire_signing_key(%L, %L)', 'crm', :'es1'), 'retire the ES256 key');
SELECT throws_ok(format('SELECT connector.retire_signing_key(%L, %L)', 'crm', :'rs1'), '55000',
				 'cannot retire the only active signing key of application "crm"', 'the last active key cannot be retired');
SELECT is((SELECT state FROM connector.signing_keys WHERE kid = :'rs1'), 'active', 'and stays active');
CREATE FUNCTION pg_temp.hint(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE h text;
BEGIN
	EXECUTE q;
	RETURN NULL;
EXCEPTION WHEN object_not_in_prerequisite_state THEN
	GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
	RETURN h;
END
$$;
SELECT is(pg_temp.hint(format('SELECT connector.retire_signing_key(%L, %L)', 'crm', :'rs1')),
		  'Add another key with connector.add_signing_key() first.', 'the hint says to add another key first');
UPDATE connector.signing_key SET retired_at = retired_at - interval '8 days',
	   published_until = published_until - interval '8 days' WHERE kid = :'rs2';
SELECT is((SELECT array_agg(k->>'kid') FROM jsonb_array_elements(connector.jwks('crm')->'keys') k),
		  ARRAY[:'es1', :'rs1'], 'once its publication period is over, a retired key leaves the key set');
SELECT is((SELECT state FROM connector.signing_keys WHERE kid = :'rs2'), 'expired', 'and shows as expired');

-- privileges: nobody reads a private key
SET ROLE regress_admin;
SELECT throws_ok($$SELECT * FROM connector.signing_key_secret$$, '42501', NULL, 'connector_admin cannot read private keys');
SELECT throws_ok($$SELECT * FROM connector.signing_key$$, '42501', NULL, 'nor the key table');
SELECT throws_ok($$SELECT connector._sets('crm', '{}', 'i', 'a')$$, '42501', NULL, 'nor sign with _sets');
SELECT throws_ok($$SELECT connector._verification_set('crm', 's', 'x', 'i', 'a')$$, '42501', NULL, 'nor with _verification_set');
SELECT throws_ok($$SELECT connector._generate_signing_key('crm', 'RS256')$$, '42501', NULL, 'nor call the key generator');
SELECT is((SELECT count(*) FROM connector.signing_keys WHERE app = 'crm'), 3::bigint, 'connector_admin reads connector.signing_keys');
SELECT ok(connector.jwks('crm') ? 'keys', 'and the key set');
RESET ROLE;

SET ROLE regress_platform;
SELECT ok(connector.jwks('crm') ? 'keys', 'connector_platform reads the key set');
SELECT throws_ok($$SELECT connector.add_signing_key('crm')$$, '42501', NULL, 'connector_platform cannot add keys');
SELECT throws_ok(format('SELECT connector.retire_signing_key(%L, %L)', 'crm', :'rs1'), '42501', NULL, 'nor retire them');
SELECT throws_ok($$SELECT * FROM connector.signing_keys$$, '42501', NULL, 'nor list them');
SELECT throws_ok($$SELECT * FROM connector.signing_key_secret$$, '42501', NULL, 'nor read private keys');
RESET ROLE;

SET ROLE regress_nobody;
SELECT throws_ok($$SELECT connector.jwks('crm')$$, '42501', NULL, 'PUBLIC cannot read the key set');
RESET ROLE;

SET ROLE regress_reader;
SELECT is((SELECT count(*) FROM connector.signing_key_secret), 0::bigint,
		  'a role that reads all data sees no private key (row-level security without a policy)');
RESET ROLE;

SELECT is((SELECT array_agg(a.grantee::regrole::text) FROM pg_class c, aclexplode(c.relacl) a
			WHERE c.oid = 'connector.signing_key_secret'::regclass AND a.grantee <> c.relowner), NULL,
		  'no role but the owner holds a privilege on the private keys');
SELECT is((SELECT array_agg(column_name::text ORDER BY ordinal_position) FROM information_schema.columns
			WHERE table_schema = 'connector' AND table_name = 'signing_keys'),
		  ARRAY['app', 'kid', 'alg', 'state', 'created', 'retired', 'published_until'],
		  'the view has no private column');
SELECT ok(NOT EXISTS (SELECT 1 FROM connector.signing_keys s, connector.signing_key_secret p
					   WHERE position(encode(p.private_key, 'hex') IN encode(convert_to(s::text, 'UTF8'), 'hex')) > 0),
		  'no view row holds a private key');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname::text) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace
			  AND (p.proname ~ 'sign|jwks|_sets' OR p.proname = '_verification_set')
			  AND has_function_privilege('connector_admin', p.oid, 'EXECUTE')),
		  ARRAY['add_signing_key', 'jwks', 'retire_signing_key'],
		  'connector_admin executes the key API and nothing internal');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname::text) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace
			  AND (p.proname ~ 'sign|jwks|_sets' OR p.proname = '_verification_set')
			  AND has_function_privilege('connector_platform', p.oid, 'EXECUTE')),
		  ARRAY['jwks'], 'connector_platform executes jwks only');

-- unregistering an application removes its keys
SELECT lives_ok($$SELECT connector.add_signing_key('other', 'ES256')$$, 'another application gets a key');
SELECT lives_ok($$SELECT connector.unregister_app('other')$$, 'and is unregistered');
SELECT is((SELECT count(*) FROM connector.signing_key WHERE app = 'other'), 0::bigint, 'its keys are gone');
SELECT is((SELECT count(*) FROM connector.signing_key_secret s WHERE NOT EXISTS
			 (SELECT 1 FROM connector.signing_key k WHERE k.kid = s.kid)), 0::bigint, 'with their private halves');

SELECT * FROM finish();
ROLLBACK;
