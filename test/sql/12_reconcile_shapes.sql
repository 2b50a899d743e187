-- reconcile() on every mapping shape: array and scalar grants columns, text
-- and timestamp status; reconcile_table() and its bad inputs.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(33);

-- Array grants, text status.
CREATE SCHEMA arr;
CREATE TABLE arr.users (id bigint PRIMARY KEY, login text NOT NULL, state text NOT NULL, roles text[]);
INSERT INTO arr.users VALUES (1, 'ann', 'active', '{admin,dev}'), (2, 'ben', 'active', '{dev}'),
							 (3, 'cid', 'locked', NULL);
SELECT connector.register_app('arr', '{"accounts": {"table": "arr.users", "id": "id", "name": "login",
	"status": {"column": "state", "enabled": "active", "disabled": "locked"}},
	"grants": {"column": "roles"}}');
SELECT is((SELECT string_agg(concat_ws(' ', action, account, entitlement, detail), ', ')
			 FROM connector.reconcile('arr', '{"accounts": [{"id": "1", "entitlements": ["dev", "ops"]},
				{"id": "2", "enabled": false}, {"id": "3", "enabled": true, "entitlements": ["dev"]}]}')),
		  'grant 1 ops {"actual": false, "desired": true}, revoke 1 admin {"actual": true, "desired": false}, '
		  'disable 2 {"actual": true, "desired": false}, enable 3 {"actual": false, "desired": true}, grant 3 dev {"actual": false, "desired": true}',
		  'array grants, text status: report');
SELECT is((SELECT string_agg(action || ':' || (detail->>'outcome'), ',') FROM connector.reconcile('arr',
			 '{"accounts": [{"id": "1", "entitlements": ["dev", "ops"]}, {"id": "2", "enabled": false}, {"id": "3", "enabled": true, "entitlements": ["dev"]}]}', true)),
		  'grant:granted,revoke:revoked,disable:disabled,enable:enabled,grant:granted', 'array grants, text status: enforce');
SELECT is((SELECT string_agg(format('%s %s %s', id, state, roles), ', ' ORDER BY id) FROM arr.users),
		  '1 active {dev,ops}, 2 locked {dev}, 3 active {dev}', 'the array column and the text status are as desired');
SELECT is((SELECT count(*) FROM connector.reconcile('arr', '{"accounts": [{"id": "1", "entitlements": ["dev", "ops"]}, {"id": "2", "enabled": false}, {"id": "3", "enabled": true, "entitlements": ["dev"]}]}')),
		  0::bigint, 'no drift after enforce');
SELECT is((SELECT string_agg(DISTINCT event #>> '{data,origin,via}', ',') FROM connector.changes('arr')), 'reconcile',
		  'array grants: events have origin reconcile');

-- Scalar grants, timestamp status, uuid ids.
CREATE SCHEMA sca;
CREATE TABLE sca.users (id uuid PRIMARY KEY, login text NOT NULL, disabled_at timestamptz, role text);
INSERT INTO sca.users VALUES ('00000000-0000-0000-0000-000000000001', 'ann', NULL, 'admin'),
							 ('00000000-0000-0000-0000-000000000002', 'ben', now() - interval '1 day', NULL);
SELECT connector.register_app('sca', '{"accounts": {"table": "sca.users", "id": "id", "name": "login",
	"status": {"column": "disabled_at", "disabled": "timestamp"}}, "grants": {"column": "role"}}');
SELECT is((SELECT string_agg(concat_ws(' ', action, right(account, 1), entitlement), ', ')
			 FROM connector.reconcile('sca', '{"accounts": [{"id": "00000000-0000-0000-0000-000000000001", "enabled": false, "entitlements": ["dev"]},
				{"id": "00000000-0000-0000-0000-000000000002", "enabled": true, "entitlements": []}]}')),
		  'disable 1, grant 1 dev, revoke 1 admin, enable 2', 'scalar grants, timestamp status: report');
SELECT is((SELECT string_agg(action || ':' || (detail->>'outcome'), ',') FROM connector.reconcile('sca',
			 '{"accounts": [{"id": "00000000-0000-0000-0000-000000000001", "enabled": false, "entitlements": ["dev"]},
			   {"id": "00000000-0000-0000-0000-000000000002", "enabled": true, "entitlements": []}]}', true)),
		  'disable:disabled,grant:granted,revoke:revoked,enable:enabled', 'scalar grants, timestamp status: enforce');
SELECT is((SELECT string_agg(format('%s %s %s', login, disabled_at IS NULL, role), ', ' ORDER BY id) FROM sca.users),
		  'ann f dev, ben t ', 'the scalar column and the timestamp status are as desired');
SELECT is((SELECT string_agg(event->>'type', ',' ORDER BY position) FROM connector.changes('sca')),
		  'access.revoked,account.disabled,account.enabled,access.granted', 'one event per change');
SELECT throws_ok($$SELECT * FROM connector.reconcile('sca', '{"accounts": [{"id": "00000000-0000-0000-0000-000000000002", "entitlements": ["a", "b"]}]}')$$,
				 '22023', 'account "00000000-0000-0000-0000-000000000002" has 2 entitlements in the desired state, but application "sca" holds one per account',
				 'scalar grants: two desired entitlements');
SELECT throws_ok($$SELECT * FROM connector.reconcile('sca', '{"accounts": [{"id": "42"}]}')$$,
				 '22P02', 'account "42" is not a valid uuid in application "sca"', 'uuid ids that do not parse');

-- reconcile_table: the same comparison from a table; always complete.
CREATE TABLE public.desired_crm (account text, entitlement text, enabled boolean);
INSERT INTO public.desired_crm VALUES ('1', '1', true), ('1', '2', true), ('2', NULL, false), ('9', NULL, NULL), ('10', '7', NULL), ('77', '1', NULL);
SELECT is((SELECT string_agg(concat_ws(' ', action, account, entitlement), ', ')
			 FROM connector.reconcile_table('crm', 'public.desired_crm')),
		  'grant 1 2, revoke 1 7, disable 2, revoke 2 2, unknown_account 77', 'reconcile_table: report');
SELECT is((SELECT string_agg(concat_ws(' ', action, account, entitlement), ', ')
			 FROM connector.reconcile('crm', '{"accounts": [{"id": "1", "enabled": true, "entitlements": ["1", "2"]},
				{"id": "2", "enabled": false, "entitlements": []}, {"id": "9", "entitlements": []},
				{"id": "10", "entitlements": ["7"]}, {"id": "77", "entitlements": ["1"]}], "complete": true}')),
		  'grant 1 2, revoke 1 7, disable 2, revoke 2 2, unknown_account 77', 'the same as reconcile with the equivalent jsonb');
DELETE FROM public.desired_crm WHERE account = '10';
SELECT is((SELECT string_agg(concat_ws(' ', action, account), ', ') FROM connector.reconcile_table('crm', 'public.desired_crm') WHERE action LIKE 'un%'),
		  'unmanaged_account 10, unknown_account 77', 'an account absent from the table is unmanaged (complete)');
SELECT is((SELECT string_agg(action || ':' || coalesce(detail->>'outcome', '-'), ',') FROM connector.reconcile_table('crm', 'public.desired_crm', true, 'tab-1')),
		  'grant:granted,revoke:revoked,disable:disabled,revoke:revoked,unmanaged_account:-,unknown_account:-', 'reconcile_table: enforce');
SELECT is((SELECT string_agg(format('%s:%s', user_id, role_id), ' ' ORDER BY user_id, role_id) FROM "Crm App".user_roles),
		  '1:1 1:2 10:7', 'the unmanaged account keeps its grant');
SELECT is((SELECT count(*) FROM connector.reconcile_table('crm', 'public.desired_crm', true, 'tab-1')), 6::bigint,
		  'a retry returns the first outcome');
INSERT INTO public.desired_crm VALUES ('2', '1', false);
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('crm', 'public.desired_crm', true, 'tab-1')$$, '23505',
				 'request "tab-1" of application "crm" was already made with other arguments', 'the request id with another table content');
CREATE TEMP TABLE before AS SELECT pg_temp.crm_state() AS s;
CREATE TABLE public.no_ent (account text, enabled boolean);
CREATE TABLE public.int_acc (account int, entitlement text);
CREATE TABLE public.extra (account text, entitlement text, note text);
CREATE TABLE public.bad_ids (account text, entitlement text);
INSERT INTO public.bad_ids VALUES ('1', '1'), ('x', '1');
CREATE TABLE public.null_acc (account text, entitlement text);
INSERT INTO public.null_acc VALUES (NULL, '1');
CREATE TABLE public.conflict (account text, entitlement text, enabled boolean);
INSERT INTO public.conflict VALUES ('1', '1', true), ('1', '2', false);
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('crm', 'public.no_ent', true)$$, '42703',
				 'desired table public.no_ent has no column "entitlement"', 'a desired table without entitlement');
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('crm', 'public.int_acc', true)$$, '42804',
				 'column "account" of desired table public.int_acc has type integer, not text', 'a desired table with a wrong type');
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('crm', 'public.extra', true)$$, '42P10',
				 'desired table public.extra has unexpected column "note"', 'a desired table with another column');
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('crm', 'public.bad_ids', true)$$, '22P02',
				 'account "x" is not a valid integer in application "crm"', 'a desired table with an id that does not parse');
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('crm', 'public.null_acc', true)$$, '22004',
				 'desired table public.null_acc has a row with a null account', 'a desired table with a null account');
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('crm', 'public.conflict', true)$$, '22023',
				 'account "1" has conflicting enabled values in desired table public.conflict', 'conflicting enabled values');
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('crm', NULL)$$, '22004', 'desired must not be null', 'NULL table');
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('crm', 'public.extra', NULL)$$, '22004', 'enforce must not be null', 'NULL enforce');
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('nope', 'public.extra')$$, '42704', 'application "nope" is not registered', 'unknown app');

-- A larger state, given in another order than the tables keep it: account
-- u holds roles 1 .. u % 13 (up to 12); every 7th should lose role 1 and
-- gain role 20.  The jsonb lists the accounts by descending id.
CREATE SCHEMA big;
CREATE TABLE big.users (id int PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO big.users SELECT g FROM generate_series(1, 3000) g;
CREATE TABLE big.roles (id int PRIMARY KEY);
INSERT INTO big.roles SELECT g FROM generate_series(1, 20) g;
CREATE TABLE big.m (uid int NOT NULL, rid int NOT NULL, PRIMARY KEY (uid, rid));
INSERT INTO big.m SELECT u, r FROM generate_series(1, 3000) u, generate_series(1, 12) r WHERE r <= u % 13;
SELECT connector.register_app('big', '{"accounts": {"table": "big.users", "id": "id", "name": "id",
	"status": {"column": "active", "enabled": true, "disabled": false}},
	"entitlements": {"table": "big.roles", "id": "id", "name": "id"},
	"grants": {"table": "big.m", "account": "uid", "entitlement": "rid"}}');
CREATE TABLE public.desired_big (account text, entitlement text);
INSERT INTO public.desired_big
SELECT u::text, NULL FROM generate_series(1, 3000) u
UNION ALL SELECT m.uid::text, m.rid::text FROM big.m m WHERE m.uid % 7 <> 0 OR m.rid <> 1
UNION ALL SELECT u::text, '20' FROM generate_series(7, 3000, 7) u;
CREATE TEMP TABLE want_big AS
SELECT jsonb_build_object('complete', true, 'accounts', jsonb_agg(a ORDER BY id DESC)) AS d
  FROM (SELECT u AS id, jsonb_build_object('id', u::text, 'entitlements',
				COALESCE((SELECT jsonb_agg(b.entitlement ORDER BY b.entitlement DESC) FROM public.desired_big b
						   WHERE b.account = u::text AND b.entitlement IS NOT NULL), '[]')) AS a
		  FROM generate_series(1, 3000) u) s;
SELECT is((SELECT string_agg(format('%s:%s', action, n), ',' ORDER BY action)
			 FROM (SELECT action, count(*) AS n FROM connector.reconcile('big', (SELECT d FROM want_big)) GROUP BY action) x),
		  'grant:428,revoke:396', 'a larger state in another order: exactly the drift');
SELECT is((SELECT jsonb_agg(to_jsonb(r)) FROM connector.reconcile('big', (SELECT d FROM want_big)) r),
		  (SELECT jsonb_agg(to_jsonb(r)) FROM connector.reconcile_table('big', 'public.desired_big') r),
		  'a larger state: reconcile and reconcile_table agree row for row');

-- The desired table is read with the caller's privileges.
CREATE ROLE regress_rc_platform;
GRANT connector_platform TO regress_rc_platform;
SET LOCAL ROLE regress_rc_platform;
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('crm', 'public.desired_crm')$$, '42501',
				 'permission denied for table public.desired_crm', 'a table the caller cannot read is refused');
RESET ROLE;
SELECT is(pg_temp.crm_state(), (SELECT s FROM before), 'the failed calls changed nothing');

-- An id type reconciliation cannot hash: refused by name, nothing read.
CREATE SCHEMA bt;
CREATE TABLE bt.users (id bit(4) PRIMARY KEY, login text NOT NULL);
INSERT INTO bt.users VALUES (B'0001', 'ann');
SELECT connector.register_app('bt', '{"accounts": {"table": "bt.users", "id": "id", "name": "login"}}');
SELECT throws_ok($$SELECT * FROM connector.reconcile('bt', '{"accounts": [{"id": "0001"}]}')$$,
				 '0A000', 'reconciliation does not support ids of type bit', 'reconcile: an id type without a hash opclass');
CREATE TABLE bt.desired (account text, entitlement text);
SELECT throws_ok($$SELECT * FROM connector.reconcile_table('bt', 'bt.desired')$$,
				 '0A000', 'reconciliation does not support ids of type bit', 'reconcile_table: the same');

SELECT * FROM finish();
ROLLBACK;
