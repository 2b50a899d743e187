-- Endpoints: every bad input, with its exact error; secrets never in an error.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(188);

\set s1 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
-- add_endpoint('crm', 'hook', url, s1, options) as SQL text
CREATE FUNCTION pg_temp.add(url text, opts text DEFAULT '{}', secret text DEFAULT 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
							name text DEFAULT 'hook') RETURNS text LANGUAGE sql AS $$
	SELECT format('SELECT connector.add_endpoint(''crm'', %L, %L, %L, %L)', name, url, secret, opts)
$$;
CREATE FUNCTION pg_temp.opt(opts text) RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.add('https://hooks.example.com/x', opts)
$$;
-- What an error says: message, detail and hint.  (Its context quotes the
-- caller's own statement, which holds whatever the caller wrote.)
CREATE FUNCTION pg_temp.error_text(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE m text; d text; h text;
BEGIN
	EXECUTE q;
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	RETURN concat_ws(' | ', m, d, h);
END $$;
\set private_msg 'endpoint URL host "%s" is a loopback, private or link-local address'

-- URLs.
SELECT throws_ok(pg_temp.add('ftp://hooks.example.com/x'), '22023', 'endpoint URL scheme "ftp" is not allowed', 'ftp:// refused');
SELECT throws_ok(pg_temp.add('file:///etc/passwd'), '22023', 'endpoint URL scheme "file" is not allowed', 'file:// refused');
SELECT throws_ok(pg_temp.add('javascript:alert(1)'), '22023', 'endpoint URL scheme "javascript" is not allowed', 'javascript: refused');
SELECT throws_ok(pg_temp.add('http://hooks.example.com/x'), '22023', 'endpoint URL scheme "http" is not allowed',
				 'http:// refused while private targets are not allowed');
SELECT throws_ok(pg_temp.add('hooks.example.com/x'), '22023', 'endpoint URL must be an absolute https:// URL', 'no scheme');
SELECT throws_ok(pg_temp.add('https://user:pw@hooks.example.com/x'), '22023', 'endpoint URL must not contain credentials',
				 'user and password refused');
SELECT throws_ok(pg_temp.add('https://token@hooks.example.com/x'), '22023', 'endpoint URL must not contain credentials',
				 'a user name alone refused');
SELECT is(position('pw' IN pg_temp.error_text(pg_temp.add('https://user:pw@hooks.example.com/x'))), 0,
		  'the credentials are not repeated in the error');
SELECT throws_ok(pg_temp.add('https:///x'), '22023', 'endpoint URL must have a host', 'empty host');
SELECT throws_ok(pg_temp.add('https:hooks.example.com'), '22023', 'endpoint URL must have a host', 'no //');
SELECT throws_ok(pg_temp.add('https://:443/x'), '22023', 'endpoint URL must have a host', 'a port without host');
SELECT throws_ok(pg_temp.add('https://hooks.example.com/' || repeat('a', 2048)), '22023',
				 'endpoint URL must not be longer than 2048 bytes', 'over-long URL');
SELECT lives_ok(pg_temp.add('https://hooks.example.com/' || repeat('a', 2048 - 26), '{}', :'s1', 'long'),
				'a URL of exactly 2048 bytes is fine');
SELECT throws_ok(pg_temp.add('https://hooks.example.com/a b'), '22023',
				 'endpoint URL must not contain whitespace or control characters', 'space');
SELECT throws_ok(pg_temp.add(E'https://hooks.example.com/a\nHost: evil'), '22023',
				 'endpoint URL must not contain whitespace or control characters', 'line break');
SELECT throws_ok(pg_temp.add(E'https://hooks.example.com/\x01'), '22023',
				 'endpoint URL must not contain whitespace or control characters', 'control character');
SELECT throws_ok(pg_temp.add('https://bücher.example/x'), '22023', 'endpoint URL must contain only ASCII characters', 'non-ASCII');
SELECT throws_ok(pg_temp.add('https://hooks.example.com:0/x'), '22023', 'endpoint URL port must be a number between 1 and 65535', 'port 0');
SELECT throws_ok(pg_temp.add('https://hooks.example.com:65536/x'), '22023', 'endpoint URL port must be a number between 1 and 65535', 'port 65536');
SELECT throws_ok(pg_temp.add('https://hooks.example.com:x/x'), '22023', 'endpoint URL port must be a number between 1 and 65535', 'port x');
SELECT throws_ok(pg_temp.add('https://hooks!.example.com/x'), '22023', 'endpoint URL host "hooks!.example.com" is not a valid host name', 'bad host');
SELECT throws_ok(pg_temp.add('https://[::zz]/x'), '22023', 'endpoint URL host "[::zz]" is not a valid IPv6 address', 'bad IPv6');
SELECT throws_ok(pg_temp.add('https://[fe80::1%25eth0]/x'), '22023', 'endpoint URL host "[fe80::1%25eth0]" is not a valid IPv6 address', 'IPv6 zone');

-- Private, loopback, link-local: refused, also in the spellings resolvers accept.
SELECT throws_ok(pg_temp.add('https://' || h || '/x'), '22023', format(:'private_msg', h), h || ' refused')
  FROM unnest(ARRAY['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254',
					'100.64.0.1', '0.0.0.0', 'localhost', 'LocalHost.', 'api.localhost']) h;
SELECT throws_ok(pg_temp.add('https://[' || h || ']/x'), '22023', format(:'private_msg', h), '[' || h || '] refused')
  FROM unnest(ARRAY['::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) h;
SELECT throws_ok(pg_temp.add('https://' || h || '/x'), '22023', format('endpoint URL host "%s" is not a valid IPv4 address', h),
				 h || ': a numeric host that is no dotted quad')
  FROM unnest(ARRAY['127.1', '2130706433', '0x7f.0.0.1', '0177.0.0.1', '256.0.0.1', '127.0.0.1.']) h;
-- The other special-purpose ranges (RFC 6890, IANA registries): documentation,
-- benchmarking, protocol assignments, broadcast; and IPv6 outside global
-- unicast 2000::/3, whatever form it takes.  IPv6 forms that carry an IPv4
-- address to an IPv4 host (mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) are
-- refused when the IPv4 address is; the other embedding forms always.
SELECT throws_ok(pg_temp.add('https://' || h || '/x'), '22023', format(:'private_msg', h), h || ' refused')
  FROM unnest(ARRAY['192.0.0.8', '192.0.2.1', '198.51.100.7', '203.0.113.9', '198.18.0.1', '198.19.255.255',
					'192.88.99.1', '239.255.255.250', '240.0.0.1', '255.255.255.255', '0.1.2.3']) h;
SELECT throws_ok(pg_temp.add('https://[' || h || ']/x'), '22023', format(:'private_msg', h), '[' || h || '] refused')
  FROM unnest(ARRAY['::ffff:192.168.0.1', '::ffff:100.64.0.1', '::ffff:198.18.0.1',
					'64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b::c000:201',
					'64:ff9b:1::7f00:1', '64:ff9b:1:ffff::808:808',
					'::ffff:0:7f00:1', '::ffff:0:808:808', '::7f00:1', '::808:808',
					'2002:7f00:1::1', '2002:a9fe:a9fe::', '2002:c0a8:101:1::1', '2002:a00:1::', '2002:c612:1::1',
					'2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001:2::1', '2001:20::1', '2001:1ff::1',
					'2001:db8::1', '3fff::1', '3fff:fff::1', '100::1', 'fec0::1', 'ff02::1', 'e000::1', '4000::1',
					'1fff::1', 'fbff::1']) h;
SELECT is(pg_temp.error_text(pg_temp.add('https://[' || h || ']/x')),
		  format('endpoint URL host "%s" is a loopback, private or link-local address | %s | A superuser can allow such targets with connector.allow_private_targets = on.', h, d),
		  '[' || h || ']: the detail says which range')
  FROM (VALUES
	('2002:a9fe:a9fe::', 'Address 2002:a9fe:a9fe:: carries IPv4 address 169.254.169.254, which is in 169.254.0.0/16 (link-local).'),
	('64:ff9b::7f00:1', 'Address 64:ff9b::7f00:1 carries IPv4 address 127.0.0.1, which is in 127.0.0.0/8 (loopback).'),
	('::ffff:10.0.0.1', 'Address ::ffff:10.0.0.1 carries IPv4 address 10.0.0.1, which is in 10.0.0.0/8 (private).'),
	('::ffff:0:7f00:1', 'Address ::ffff:0:7f00:1 is in ::ffff:0:0:0/96 (IPv4-translated).'),
	('::7f00:1', 'Address ::127.0.0.1 is in ::/96 (IPv4-compatible, deprecated).'),
	('64:ff9b:1::808:808', 'Address 64:ff9b:1::808:808 is in 64:ff9b:1::/48 (local-use IPv4/IPv6 translation).'),
	('2001::1', 'Address 2001::1 is in 2001::/32 (Teredo).'),
	('2001:db8::1', 'Address 2001:db8::1 is in 2001:db8::/32 (documentation).'),
	('fec0::1', 'Address fec0::1 is in fec0::/10 (site-local, deprecated).'),
	('4000::1', 'Address 4000::1 is in 4000::/2 (reserved, not global unicast).')
  ) t(h, d);
SELECT is(pg_temp.error_text(pg_temp.add('https://198.18.0.1/x')),
		  'endpoint URL host "198.18.0.1" is a loopback, private or link-local address | Address 198.18.0.1 is in 198.18.0.0/15 (benchmarking). | A superuser can allow such targets with connector.allow_private_targets = on.',
		  'an IPv4 range beyond the private ones is named too');
SELECT lives_ok(pg_temp.add('https://[' || h || ']/x', '{}', :'s1', h), '[' || h || '] is public')
  FROM unnest(ARRAY['2606:4700:4700::1111', '64:ff9b::808:808', '::ffff:8.8.8.8', '2002:808:808::1',
					'2001:200::1', '2001:db9::1', '3fff:1000::1', '2c0f::1']) h;
SELECT lives_ok(pg_temp.add('https://' || h || '/x', '{}', :'s1', h), h || ' is public')
  FROM unnest(ARRAY['192.0.1.1', '192.0.3.1', '198.17.255.255', '198.20.0.1', '192.88.98.1', '223.255.255.255']) h;
SELECT is(pg_temp.error_text(pg_temp.add('https://169.254.169.254/latest')),
		  'endpoint URL host "169.254.169.254" is a loopback, private or link-local address | Address 169.254.169.254 is in 169.254.0.0/16 (link-local). | A superuser can allow such targets with connector.allow_private_targets = on.',
		  'the detail names the range, the hint the setting');
SELECT lives_ok(pg_temp.add('https://' || h || '/x', '{}', :'s1', h), h || ' is public')
  FROM unnest(ARRAY['172.32.0.1', '100.128.0.1', '8.8.8.8', '1.2.3.4.nip.example', 'localhost.example.com']) h;

SET LOCAL connector.allow_private_targets = on;
SELECT lives_ok(pg_temp.add(u, '{}', :'s1', u), u || ' allowed with allow_private_targets')
  FROM unnest(ARRAY['http://127.0.0.1:8080/hook', 'https://localhost/x', 'https://[::1]:8443/x', 'http://10.0.0.5/x']) u;
SELECT throws_ok(pg_temp.add('ftp://127.0.0.1/x'), '22023', 'endpoint URL scheme "ftp" is not allowed',
				 'other schemes stay refused');
SELECT throws_ok(pg_temp.add('http://u:p@127.0.0.1/x'), '22023', 'endpoint URL must not contain credentials',
				 'and so do credentials');
RESET connector.allow_private_targets;

-- Secrets.
SELECT throws_ok(pg_temp.add('https://hooks.example.com/x', '{}', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), '22023',
				 'secret must start with "whsec_"', 'secret without whsec_');
SELECT throws_ok(pg_temp.add('https://hooks.example.com/x', '{}', 'whsec_MfKQ9r8GKYqrTwjUPD8I!PZIo2LaLaSw'), '22023',
				 'secret is not valid base64 after "whsec_"', 'invalid base64');
SELECT throws_ok(pg_temp.add('https://hooks.example.com/x', '{}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS'), '22023',
				 'secret is not valid base64 after "whsec_"', 'base64 of a wrong length');
SELECT throws_ok(pg_temp.add('https://hooks.example.com/x', '{}', 'whsec_'), '22023',
				 'secret is not valid base64 after "whsec_"', 'nothing after whsec_');
SELECT throws_ok(pg_temp.add('https://hooks.example.com/x', '{}', 'whsec_' || encode(decode(repeat('11', 23), 'hex'), 'base64')),
				 '22023', 'secret must decode to 24 to 64 bytes', '23 bytes');
SELECT throws_ok(pg_temp.add('https://hooks.example.com/x', '{}',
							 'whsec_' || replace(encode(decode(repeat('11', 65), 'hex'), 'base64'), E'\n', '')),
				 '22023', 'secret must decode to 24 to 64 bytes', '65 bytes');
SELECT lives_ok(pg_temp.add('https://hooks.example.com/x', '{}',
							'whsec_' || replace(encode(decode(repeat('11', 64), 'hex'), 'base64'), E'\n', ''), 'k64'), '64 bytes');
SELECT throws_ok(pg_temp.add('https://hooks.example.com/x', '{}', 'whsec_' || encode(decode(repeat('11', 64), 'hex'), 'base64')),
				 '22023', 'secret is not valid base64 after "whsec_"', 'a line break inside');
SELECT is(count(*), 0::bigint, 'no error about a bad secret contains it')
  FROM unnest(ARRAY['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_MfKQ9r8GKYqrTwjUPD8I!PZIo2LaLaSw',
					'whsec_' || encode(decode(repeat('1a', 23), 'hex'), 'base64'), 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS ']) s
 WHERE position(substr(s, 7, 12) IN pg_temp.error_text(pg_temp.add('https://hooks.example.com/x', '{}', s))) > 0;
SELECT is(position('MfKQ9r8GKYqr' IN pg_temp.error_text(pg_temp.add('https://hooks.example.com/x', '{}', :'s1', 'k64'))), 0,
		  'nor does any other error of add_endpoint');
-- a NULL secret is no error: one is generated (test/t/030_log_secrets.pl signs with it)
SELECT matches(connector.add_endpoint('crm', 'gen', 'https://hooks.example.com/x', NULL), '^whsec_[A-Za-z0-9+/]{43}=$',
			   'NULL secret: one is generated and returned');
SELECT lives_ok($$SELECT connector.remove_endpoint('crm', 'gen')$$, 'remove the endpoint with a generated secret');

-- Options.
SELECT throws_ok(pg_temp.opt('{"batch_size": 0}'), '22023', 'endpoint option "batch_size" must be between 1 and 1000', 'batch_size 0');
SELECT throws_ok(pg_temp.opt('{"batch_size": 1001}'), '22023', 'endpoint option "batch_size" must be between 1 and 1000', 'batch_size 1001');
SELECT throws_ok(pg_temp.opt('{"batch_size": 1e30}'), '22023', 'endpoint option "batch_size" must be between 1 and 1000', 'batch_size 1e30');
SELECT throws_ok(pg_temp.opt('{"batch_size": "ten"}'), '22023', 'endpoint option "batch_size" must be an integer, not string', 'batch_size "ten"');
SELECT throws_ok(pg_temp.opt('{"batch_size": 2.5}'), '22023', 'endpoint option "batch_size" must be an integer, not a fractional number', 'batch_size 2.5');
SELECT throws_ok(pg_temp.opt('{"batchsize": 10}'), '22023', 'unknown endpoint option "batchsize"', 'unknown option key');
SELECT throws_ok(pg_temp.opt('[]'), '22023', 'endpoint options must be a JSON object, not array', 'options not an object');
SELECT throws_ok($$SELECT connector.add_endpoint('crm', 'hook', 'https://hooks.example.com/x', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', NULL)$$,
				 '22004', 'options must not be null', 'NULL options');
SELECT throws_ok(pg_temp.opt('{"timeout": 5}'), '22023', 'endpoint option "timeout" must be an interval string such as "5s", not number', 'timeout a number');
SELECT throws_ok(pg_temp.opt('{"timeout": "soon"}'), '22023', 'endpoint option "timeout" is not a valid interval', 'timeout not an interval');
SELECT throws_ok(pg_temp.opt('{"timeout": "-5s"}'), '22023', 'endpoint option "timeout" must be between 100 ms and 1 hour', 'negative timeout');
SELECT throws_ok(pg_temp.opt('{"timeout": "0"}'), '22023', 'endpoint option "timeout" must be between 100 ms and 1 hour', 'zero timeout');
SELECT throws_ok(pg_temp.opt('{"timeout": "2 hours"}'), '22023', 'endpoint option "timeout" must be between 100 ms and 1 hour', 'timeout too long');
SELECT throws_ok(pg_temp.opt('{"headers": ["X-A: 1"]}'), '22023', 'endpoint option "headers" must be a JSON object, not array', 'headers not an object');
SELECT throws_ok(pg_temp.opt('{"headers": {"X-A": 1}}'), '22023', 'endpoint option "headers": the value of header "X-A" must be a string, not number', 'header value not a string');
SELECT throws_ok(pg_temp.opt('{"headers": {"X A": "1"}}'), '22023', 'endpoint option "headers": "X A" is not a valid header name', 'header name not a token');
SELECT throws_ok(pg_temp.opt('{"headers": {"X-A": "1\r\nX-B: 2"}}'), '22023',
				 'endpoint option "headers": the value of header "X-A" must not contain line breaks or control characters', 'header injection');
SELECT throws_ok(pg_temp.opt(format('{"headers": {"%s": "x"}}', h)), '22023',
				 format('endpoint option "headers": header "%s" is set by the connector', h), h || ' is the connector''s')
  FROM unnest(ARRAY['Content-Type', 'user-agent', 'Webhook-Id', 'webhook-timestamp', 'WEBHOOK-SIGNATURE', 'content-length', 'Host']) h;
SELECT throws_ok(pg_temp.opt('{"types": "access.granted"}'), '22023', 'endpoint option "types" must be a JSON array of event types, not string', 'types not an array');
SELECT throws_ok(pg_temp.opt('{"types": ["access.granted", "access.grantd"]}'), '22023', 'endpoint option "types" contains unknown event type "access.grantd"', 'unknown event type');
SELECT throws_ok(pg_temp.opt('{"types": [1]}'), '22023', 'endpoint option "types" contains unknown event type 1', 'event type not a string');
SELECT throws_ok(pg_temp.opt('{"types": []}'), '22023', 'endpoint option "types" must name at least one event type', 'no event type');
SELECT throws_ok(pg_temp.opt('{"ordered": "yes"}'), '22023', 'endpoint option "ordered" must be a boolean, not string', 'ordered not a boolean');
SELECT throws_ok(pg_temp.opt('{"from_position": "0"}'), '22023', 'endpoint option "from_position" must be an integer, not string', 'from_position a string');
SELECT throws_ok(pg_temp.opt('{"from_position": -1}'), '22023', 'endpoint option "from_position" must not be negative', 'from_position negative');
SELECT throws_ok(pg_temp.opt('{"from_position": 5}'), '22023', 'position 5 is beyond the end of the stream', 'from_position beyond the end');

-- Names and applications.
SELECT throws_ok(pg_temp.add('https://hooks.example.com/x', '{}', :'s1', ''), '42602', 'endpoint name must be 1 to 63 bytes long', 'empty name');
SELECT throws_ok(pg_temp.add('https://hooks.example.com/x', '{}', :'s1', repeat('é', 32)), '42602', 'endpoint name must be 1 to 63 bytes long', '64-byte name');
SELECT throws_ok($$SELECT connector.add_endpoint('nope', 'hook', 'https://hooks.example.com/x', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')$$,
				 '42704', 'application "nope" is not registered', 'unknown application');
SELECT lives_ok(pg_temp.add('https://hooks.example.com/x'), 'add hook');
SELECT throws_ok(pg_temp.add('https://other.example.com/x'), '42710', 'endpoint "hook" of application "crm" already exists', 'duplicate name');

-- The other functions.
SELECT throws_ok($$SELECT connector.remove_endpoint('crm', 'nohook')$$, '42704', 'endpoint "nohook" of application "crm" does not exist', 'remove unknown endpoint');
SELECT throws_ok($$SELECT connector.enable_endpoint('crm', 'nohook')$$, '42704', 'endpoint "nohook" of application "crm" does not exist', 'enable unknown endpoint');
SELECT throws_ok($$SELECT connector.redeliver('nope', 'hook', 1)$$, '42704', 'application "nope" is not registered', 'redeliver, unknown application');
SELECT throws_ok(format($$SELECT connector.rotate_secret('crm', 'nohook', %L)$$, :'s1'), '42704',
				 'endpoint "nohook" of application "crm" does not exist', 'rotate unknown endpoint');
SELECT throws_ok($$SELECT connector.rotate_secret('crm', 'hook', 'whsec_c2hvcnQ=')$$, '22023', 'new secret must decode to 24 to 64 bytes', 'rotate to a bad secret');
SELECT throws_ok(format($$SELECT connector.rotate_secret('crm', 'hook', %L, '-1 minute')$$, :'s1'), '22023',
				 'overlap must not be negative', 'negative overlap');
SELECT throws_ok($$SELECT connector.redeliver('crm', 'hook', -1)$$, '22023', 'position -1 is out of range', 'redeliver from a negative position');
SELECT throws_ok($$SELECT connector.redeliver('crm', 'hook', 2)$$, '22023', 'position 2 is beyond the end of the stream', 'redeliver beyond the end');
SELECT throws_ok($$SELECT connector.redeliver('crm', 'hook', NULL)$$, '22004', 'from_position must not be null', 'redeliver from NULL');
INSERT INTO "Crm App".user_roles VALUES (2, 7, NULL), (9, 7, NULL);
SELECT is((SELECT count(*) FROM connector.changes('crm')), 2::bigint, 'two events sealed');
UPDATE connector.seal_state SET purged_through = 1;
SELECT throws_ok($$SELECT connector.redeliver('crm', 'hook', 1)$$, '55000', 'position 1 is older than the retained history', 'redeliver from a purged position');
SELECT throws_ok(pg_temp.opt('{"from_position": 0}'), '55000', 'position 0 is older than the retained history', 'from_position purged');

SELECT * FROM finish();
ROLLBACK;
