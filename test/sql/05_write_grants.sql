-- grant and revoke on every grants shape, expiries, and their bad inputs.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SET LOCAL TimeZone = 'UTC';
SELECT plan(66);

-- The grants of the crm fixture, to prove that a failed call changed nothing.
CREATE FUNCTION pg_temp.crm_grants() RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(format('%s:%s:%s', user_id, role_id, valid_until), ' ' ORDER BY user_id, role_id, valid_until)
	  FROM "Crm App".user_roles
$$;

-- Membership table with a mapped expires column.
SELECT is(connector.grant('crm', '2', '7'), 'granted', 'grant adds a membership row');
SELECT is((SELECT count(*) FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 7), 1::bigint,
		  'one row for the new grant');
SELECT is(connector.grant('crm', '2', '7'), 'unchanged', 'granting again changes nothing');
SELECT is((SELECT count(*) FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 7), 1::bigint,
		  'still one row');
SELECT is(connector.grant('crm', '2', '7', NULL, '2030-01-01 00:00:00+00'), 'granted',
		  're-granting with a new expiry is a change');
SELECT is((SELECT valid_until FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 7),
		  '2030-01-01 00:00:00+00'::timestamptz, 'the expiry is stored in the mapped column');
SELECT is(connector.grant('crm', '2', '7', NULL, '2030-01-01 00:00:00+00'), 'unchanged',
		  'the same expiry again: unchanged');
SELECT is(connector.grant('crm', '2', '7'), 'granted', 'a grant without expiry makes it permanent');
SELECT is((SELECT valid_until FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 7), NULL,
		  'the expiry is cleared');
SELECT is((SELECT count(*) FROM connector.grant_expiry), 0::bigint,
		  'a mapped expires column leaves grant_expiry empty');
SELECT ok((SELECT 'connector.grant_expiry'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'connector'),
		  'grant_expiry survives pg_dump (extension configuration)');
SELECT is(connector.revoke('crm', '2', '7'), 'revoked', 'revoke removes the grant');
SELECT is((SELECT count(*) FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 7), 0::bigint,
		  'the row is gone');
SELECT is(connector.revoke('crm', '2', '7'), 'unchanged', 'revoking again changes nothing');
SELECT is((SELECT entitlements FROM connector.accounts('crm') WHERE id = '2'), ARRAY['2'],
		  'enumeration sees the result');

-- Duplicate rows made by direct DML: a grant sees them, a revoke removes them all.
INSERT INTO "Crm App".user_roles VALUES (2, 1, NULL), (2, 1, NULL);
SELECT is(connector.grant('crm', '2', '1'), 'unchanged', 'an existing (duplicated) grant is unchanged');
SELECT is(connector.revoke('crm', '2', '1'), 'revoked', 'revoke of a duplicated grant');
SELECT is((SELECT count(*) FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 1), 0::bigint,
		  'every duplicate row is removed');

-- Bad inputs: the exact error, and nothing changed.
CREATE TEMP TABLE before AS SELECT pg_temp.crm_grants() AS g;
SELECT throws_ok($$SELECT connector.grant('nope', '2', '7')$$, '42704',
				 'application "nope" is not registered', 'unknown app');
SELECT throws_ok($$SELECT connector.grant(NULL, '2', '7')$$, '22004', 'app must not be null', 'NULL app');
SELECT throws_ok($$SELECT connector.grant('crm', NULL, '7')$$, '22004', 'account must not be null', 'NULL account');
SELECT throws_ok($$SELECT connector.grant('crm', '2', NULL)$$, '22004', 'entitlement must not be null',
				 'NULL entitlement');
SELECT throws_ok($$SELECT connector.grant('crm', '99', '7')$$, 'P0002',
				 'account "99" not found in application "crm"', 'unknown account');
SELECT throws_ok($$SELECT connector.grant('crm', '2', '99')$$, 'P0002',
				 'entitlement "99" not found in application "crm"', 'unknown entitlement');
SELECT throws_ok($$SELECT connector.grant('crm', 'abc', '7')$$, '22P02',
				 'account "abc" is not a valid integer in application "crm"', 'account id that does not parse');
SELECT throws_ok($$SELECT connector.grant('crm', '2', '7x')$$, '22P02',
				 'entitlement "7x" is not a valid integer in application "crm"', 'entitlement id that does not parse');
SELECT throws_ok($$SELECT connector.grant('crm', '2', '7', NULL, '2020-01-01 00:00:00+00')$$, '22023',
				 'expires_at 2020-01-01 00:00:00+00 is in the past', 'expiry in the past');
SELECT throws_ok($$SELECT connector.grant('crm', '2', '7', NULL, now())$$, '22023', NULL,
				 'expiry now is in the past too');
SELECT throws_ok($$SELECT connector.revoke('crm', '99', '7')$$, 'P0002',
				 'account "99" not found in application "crm"', 'revoke: unknown account');
SELECT throws_ok($$SELECT connector.revoke('crm', '2', '99')$$, 'P0002',
				 'entitlement "99" not found in application "crm"', 'revoke: unknown entitlement');
SELECT throws_ok($$SELECT connector.revoke('crm', '2', NULL)$$, '22004', 'entitlement must not be null',
				 'revoke: NULL entitlement');
SELECT throws_ok($q$SELECT connector.grant('crm', '1''); DROP TABLE "Crm App".users; --', '7')$q$, '22P02',
				 'account "1''); DROP TABLE "Crm App".users; --" is not a valid integer in application "crm"',
				 'SQL in an id is refused as data');
SELECT throws_ok($$SELECT connector.grant('crm', '2', repeat('9', 10240))$$, '22P02', NULL,
				 'a 10 kB id is refused cleanly');
SELECT is(pg_temp.crm_grants(), (SELECT g FROM before), 'the failed calls changed no grant');
SELECT has_table('Crm App', 'users', 'the accounts table is still there');

-- Membership table without an expires column and without any constraint:
-- the expiry goes to connector.grant_expiry; no entitlements section.
CREATE TABLE public.macc (id int PRIMARY KEY, n text NOT NULL);
CREATE TABLE public.memb (acc int NOT NULL, role int NOT NULL);
INSERT INTO public.macc VALUES (1, 'a'), (2, 'b');
SELECT connector.register_app('memb', '{"accounts": {"table": "public.macc", "id": "id", "name": "n"},
	"grants": {"table": "public.memb", "account": "acc", "entitlement": "role"}}');
SELECT is(connector.grant('memb', '1', '5', NULL, '2031-01-01 00:00:00+00'), 'granted', 'time-bound grant');
SELECT is((SELECT expires_at FROM connector.grant_expiry WHERE app = 'memb' AND account = '1' AND entitlement = '5'),
		  '2031-01-01 00:00:00+00'::timestamptz, 'the expiry is kept in connector.grant_expiry');
SELECT is(connector.grant('memb', '1', '5', NULL, '2031-01-01 00:00:00+00'), 'unchanged', 'same expiry: unchanged');
SELECT is(connector.grant('memb', '1', '5', NULL, '2032-01-01 00:00:00+00'), 'granted', 'new expiry: granted');
SELECT is((SELECT expires_at FROM connector.grant_expiry WHERE app = 'memb'), '2032-01-01 00:00:00+00'::timestamptz,
		  'the expiry is updated');
SELECT is(connector.grant('memb', '1', '5'), 'granted', 'a permanent grant replaces the time-bound one');
SELECT is((SELECT count(*) FROM connector.grant_expiry WHERE app = 'memb'), 0::bigint, 'the expiry is cleared');
SELECT is((SELECT count(*) FROM public.memb), 1::bigint, 'one membership row all along');
SELECT connector.grant('memb', '1', '5', NULL, '2031-01-01 00:00:00+00');
SELECT is(connector.revoke('memb', '1', '5'), 'revoked', 'revoke a time-bound grant');
SELECT is((SELECT count(*) FROM connector.grant_expiry WHERE app = 'memb'), 0::bigint, 'revoke drops the expiry');
SELECT throws_ok($$SELECT connector.grant('memb', '1', 'x')$$, '22P02',
				 'entitlement "x" is not a valid integer in application "memb"',
				 'without an entitlements section the grants column type checks ids');

-- Array column on the accounts table.
CREATE TABLE public.aacc (id uuid PRIMARY KEY, n text NOT NULL, roles text[]);
CREATE TABLE public.aroles (id text PRIMARY KEY, n text NOT NULL);
INSERT INTO public.aacc VALUES ('00000000-0000-0000-0000-000000000001', 'a', NULL);
INSERT INTO public.aroles VALUES ('admin', 'Admin'), ('viewer', 'Viewer'), ('a"b''c\d', 'odd');
SELECT connector.register_app('arr', '{"accounts": {"table": "public.aacc", "id": "id", "name": "n"},
	"entitlements": {"table": "public.aroles", "id": "id", "name": "n"}, "grants": {"column": "roles"}}');
SELECT is(connector.grant('arr', '00000000-0000-0000-0000-000000000001', 'admin'), 'granted', 'array: grant into NULL');
SELECT is(connector.grant('arr', '00000000-0000-0000-0000-000000000001', 'admin'), 'unchanged', 'array: grant again');
SELECT is(connector.grant('arr', '00000000-0000-0000-0000-000000000001', 'a"b''c\d'), 'granted',
		  'array: an id with quotes and a backslash');
SELECT is((SELECT roles FROM public.aacc), ARRAY['admin', 'a"b''c\d'], 'array: values stored literally');
SELECT is(connector.revoke('arr', '00000000-0000-0000-0000-000000000001', 'admin'), 'revoked', 'array: revoke');
SELECT is(connector.revoke('arr', '00000000-0000-0000-0000-000000000001', 'admin'), 'unchanged', 'array: revoke again');
SELECT is((SELECT roles FROM public.aacc), ARRAY['a"b''c\d'], 'array: the other element is kept');
SELECT is(connector.grant('arr', '00000000-0000-0000-0000-000000000001', 'viewer', NULL, '2031-01-01 00:00:00+00'),
		  'granted', 'array: time-bound grant');
SELECT is((SELECT expires_at FROM connector.grant_expiry WHERE app = 'arr' AND entitlement = 'viewer'),
		  '2031-01-01 00:00:00+00'::timestamptz, 'array: expiry in grant_expiry');
SELECT throws_ok($$SELECT connector.grant('arr', 'not-a-uuid', 'admin')$$, '22P02',
				 'account "not-a-uuid" is not a valid uuid in application "arr"', 'array: bad uuid');
SELECT throws_ok($$SELECT connector.grant('arr', '00000000-0000-0000-0000-000000000001', 'nope')$$, 'P0002',
				 'entitlement "nope" not found in application "arr"', 'array: unknown entitlement');

-- Scalar column: one entitlement per account, a grant replaces the previous one.
CREATE TABLE public.sacc (id bigint PRIMARY KEY, n text NOT NULL, role text);
INSERT INTO public.sacc VALUES (1, 'a', NULL);
SELECT connector.register_app('scal', '{"accounts": {"table": "public.sacc", "id": "id", "name": "n"},
	"grants": {"column": "role"}}');
SELECT is(connector.grant('scal', '1', 'editor', NULL, '2031-01-01 00:00:00+00'), 'granted', 'scalar: grant');
SELECT is(connector.grant('scal', '1', 'admin'), 'granted', 'scalar: a second grant');
SELECT is((SELECT role FROM public.sacc), 'admin', 'scalar: it replaced the first');
SELECT is((SELECT count(*) FROM connector.grant_expiry WHERE app = 'scal'), 0::bigint,
		  'scalar: the replaced grant''s expiry is gone');
SELECT is(connector.revoke('scal', '1', 'editor'), 'unchanged', 'scalar: revoking what is not held');
SELECT is(connector.revoke('scal', '1', 'admin'), 'revoked', 'scalar: revoke');
SELECT is((SELECT role FROM public.sacc), NULL, 'scalar: the column is NULL');

-- No grants section.
SELECT throws_ok($$SELECT connector.grant('scal2', '1', 'x')$$, '42704', 'application "scal2" is not registered',
				 'unregistered app');
CREATE TABLE public.nacc (id int PRIMARY KEY, n text NOT NULL);
SELECT connector.register_app('nog', '{"accounts": {"table": "public.nacc", "id": "id", "name": "n"}}');
SELECT throws_ok($$SELECT connector.grant('nog', '1', 'x')$$, '0A000', 'application "nog" maps no grants',
				 'an app without grants cannot grant');

SELECT * FROM finish();
ROLLBACK;
