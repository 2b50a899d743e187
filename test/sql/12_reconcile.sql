-- reconcile(): report and enforce on the crm fixture (membership table,
-- boolean status), idempotency, the allowlist, and every bad input.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(44);

-- The fixture: alice(1) viewer+db-admin, bob(2) editor, carol(9) disabled,
-- svc-backup(10) db-admin.  The platform wants alice viewer+editor, bob
-- disabled with nothing, carol enabled (entitlements not managed), and an
-- account that does not exist.
CREATE TEMP TABLE want AS SELECT '{"accounts": [
	{"id": "1", "enabled": true, "entitlements": ["1", "2"]},
	{"id": 2, "enabled": false, "entitlements": []},
	{"id": "9", "enabled": true},
	{"id": "55", "entitlements": ["1"]}], "complete": true}'::jsonb AS d;
CREATE TEMP TABLE before AS SELECT pg_temp.crm_state() AS s;
CREATE FUNCTION pg_temp.rc(d jsonb) RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(concat_ws(' ', action, account, entitlement), ', ')
	  FROM connector.reconcile('crm', d)
$$;

SELECT is(pg_temp.rc((SELECT d FROM want)),
		  'grant 1 2, revoke 1 7, disable 2, revoke 2 2, enable 9, unmanaged_account 10, unknown_account 55',
		  'report: every difference, by account');
SELECT is((SELECT detail FROM connector.reconcile('crm', (SELECT d FROM want)) WHERE action = 'grant'),
		  '{"desired": true, "actual": false}', 'a grant says why');
SELECT is((SELECT detail FROM connector.reconcile('crm', (SELECT d FROM want)) WHERE action = 'revoke' AND account = '1'),
		  '{"desired": false, "actual": true}', 'a revoke says why');
SELECT is((SELECT detail FROM connector.reconcile('crm', (SELECT d FROM want)) WHERE action = 'disable'),
		  '{"desired": false, "actual": true}', 'a disable says why');
SELECT is((SELECT detail FROM connector.reconcile('crm', (SELECT d FROM want)) WHERE action = 'unknown_account'),
		  '{"reason": "the account does not exist", "desired": {"entitlements": ["1"]}}', 'an unknown account says why');
SELECT is((SELECT detail FROM connector.reconcile('crm', (SELECT d FROM want)) WHERE action = 'unmanaged_account'),
		  '{"reason": "the account is absent from a complete desired state", "actual": {"enabled": true, "entitlements": ["7"]}}',
		  'an unmanaged account shows what it holds');
SELECT is(pg_temp.rc((SELECT d - 'complete' FROM want)),
		  'grant 1 2, revoke 1 7, disable 2, revoke 2 2, enable 9, unknown_account 55',
		  '"complete" missing means false: no unmanaged_account');
SELECT is(pg_temp.rc('{"accounts": [{"id": "1", "entitlements": ["1", "7"]}, {"id": "10", "enabled": true, "entitlements": ["7"]}]}'),
		  NULL, 'no drift: no rows');
SELECT is(pg_temp.rc('{"accounts": [{"id": "1", "entitlements": ["1", "7", "1", "01"]}]}'),
		  NULL, 'duplicate entitlements and non-canonical ids compare by value');
SELECT is((SELECT detail FROM connector.reconcile('crm', '{"accounts": [{"id": "1", "entitlements": ["1", "7", "99"]}]}')),
		  '{"desired": true, "actual": false, "reason": "the entitlement does not exist; never applied", "unknown_entitlement": true}',
		  'an unknown entitlement is reported as a grant that is never applied');
SELECT is(pg_temp.crm_state(), (SELECT s FROM before), 'reports change nothing');
SELECT is((SELECT count(*) FROM connector.changes('crm')), 0::bigint, 'a report writes no event');

-- enforce
SELECT is((SELECT string_agg(concat_ws(' ', action, account, entitlement, detail->>'outcome'), ', ')
			 FROM connector.reconcile('crm', (SELECT d FROM want), true)),
		  'grant 1 2 granted, revoke 1 7 revoked, disable 2 disabled, revoke 2 2 revoked, enable 9 enabled, unmanaged_account 10, unknown_account 55',
		  'enforce applies grant, revoke, disable, enable and says the outcome');
SELECT is((SELECT string_agg(format('%s:%s', user_id, role_id), ' ' ORDER BY user_id, role_id) FROM "Crm App".user_roles),
		  '1:1 1:2 10:7', 'the grants are as desired; the unmanaged account keeps its grant');
SELECT is((SELECT string_agg(format('%s:%s', id, active), ' ' ORDER BY id) FROM "Crm App".users),
		  '1:t 2:f 9:t 10:t', 'the statuses are as desired');
SELECT is((SELECT string_agg(DISTINCT event #>> '{data,origin,via}', ',') FROM connector.changes('crm')),
		  'reconcile', 'every event has origin.via = reconcile');
SELECT is((SELECT string_agg(format('%s %s %s', event->>'type', event #>> '{data,account,id}', event #>> '{data,origin,operation}'), ', ' ORDER BY position)
			 FROM connector.changes('crm')),
		  'access.revoked 1 revoke, access.revoked 2 revoke, account.disabled 2 disable, account.enabled 9 enable, access.granted 1 grant',
		  'revokes, then disables, enables and grants are applied, one event each');
SELECT is(pg_temp.rc((SELECT d FROM want)), 'unmanaged_account 10, unknown_account 55', 'after enforce only what cannot be applied remains');
SELECT is((SELECT string_agg(action, ',') FROM connector.reconcile('crm', '{"accounts": [{"id": "1", "entitlements": ["1", "2", "99"]}]}', true)),
		  'grant', 'enforce with an unknown entitlement succeeds');
SELECT is((SELECT count(*) FROM "Crm App".user_roles WHERE role_id = 99), 0::bigint, 'and never applies it');

-- idempotency
SELECT is((SELECT string_agg(concat_ws(' ', action, account, entitlement, detail->>'outcome'), ', ')
			 FROM connector.reconcile('crm', '{"accounts": [{"id": "2", "entitlements": ["1"]}]}', true, 'rc-1')),
		  'grant 2 1 granted', 'enforce with a request id');
SELECT is((SELECT string_agg(concat_ws(' ', action, account, entitlement, detail->>'outcome'), ', ')
			 FROM connector.reconcile('crm', '{"accounts": [{"id": 2, "entitlements": [1, "1"]}]}', true, 'rc-1')),
		  'grant 2 1 granted', 'a retry (same desired state, other spelling) returns the first outcome');
SELECT is((SELECT count(*) FROM connector.changes('crm') WHERE event #>> '{data,account,id}' = '2' AND event->>'type' = 'access.granted'),
		  1::bigint, 'and changes nothing');
CREATE TEMP TABLE before2 AS SELECT pg_temp.crm_state() AS s;
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": [{"id": "2", "entitlements": []}]}', true, 'rc-1')$$,
				 '23505', 'request "rc-1" of application "crm" was already made with other arguments',
				 'the request id with another desired state');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": []}', true, '')$$,
				 '22023', 'request_id must be 1 to 255 bytes long', 'an empty request id');

-- the operations allowlist
UPDATE connector.app SET spec = spec || '{"operations": []}' WHERE app = 'crm';
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": []}', true)$$,
				 '42501', 'reconciliation cannot be enforced in application "crm"', 'a read-only app refuses enforce');
SELECT is(pg_temp.rc('{"accounts": [{"id": "2", "entitlements": []}]}'), 'revoke 2 1', 'but reports');
UPDATE connector.app SET spec = spec || '{"operations": ["revoke", "disable"]}' WHERE app = 'crm';
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": [{"id": "2", "entitlements": ["2"]}]}', true)$$,
				 '42501', 'operation "grant" is not allowed in application "crm"', 'a deprovision-only app refuses a grant');
SELECT is(pg_temp.crm_state(), (SELECT s FROM before2), 'the refused enforce changed nothing (not even its revoke)');
SELECT is((SELECT string_agg(action || ' ' || (detail->>'outcome'), ',') FROM connector.reconcile('crm', '{"accounts": [{"id": "2", "entitlements": []}]}', true)),
		  'revoke revoked', 'a deprovision-only app enforces a revoke');
UPDATE connector.app SET spec = spec - 'operations' WHERE app = 'crm';

-- bad inputs: the exact error, nothing changed
CREATE TEMP TABLE before3 AS SELECT pg_temp.crm_state() AS s, (SELECT count(*) FROM connector.changes('crm')) AS n;
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '[]', true)$$, '22023',
				 'desired state must be a JSON object, not array', 'desired not an object');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": {}}', true)$$, '22023',
				 'desired "accounts" must be a JSON array, not object', 'accounts not an array');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"complete": true}', true)$$, '22023',
				 'desired state has no "accounts"', 'accounts missing');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": [], "complete": "yes"}', true)$$, '22023',
				 'desired "complete" must be a boolean, not string', 'complete not a boolean');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": [{"id": "1"}, {"enabled": true}]}', true)$$, '22023',
				 'desired account 1 has no "id"', 'an entry without id');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": [{"id": "1", "entitlements": []}, {"id": "abc"}]}', true)$$, '22P02',
				 'account "abc" is not a valid integer in application "crm"', 'an id that does not parse');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": [{"id": "2", "entitlements": ["x7"]}]}', true)$$, '22P02',
				 'entitlement "x7" is not a valid integer in application "crm"', 'an entitlement id that does not parse');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": [{"id": "2", "entitlements": []}, {"id": "1"}, {"id": "02"}]}', true)$$, '22023',
				 'account "2" appears more than once in the desired state', 'duplicate account entries');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": [{"id": "2", "enabled": "no"}]}', true)$$, '22023',
				 'desired account 0: "enabled" must be a boolean, not string', 'enabled of the wrong type');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', '{"accounts": [{"id": "2", "entitlements": "7"}]}', true)$$, '22023',
				 'desired account 0: "entitlements" must be a JSON array, not string', 'entitlements not an array');
SELECT throws_ok($$SELECT * FROM connector.reconcile('crm', NULL)$$, '22004', 'desired must not be null', 'NULL desired');
SELECT throws_ok($$SELECT * FROM connector.reconcile(NULL, '{"accounts": []}')$$, '22004', 'app must not be null', 'NULL app');
SELECT throws_ok($$SELECT * FROM connector.reconcile('nope', '{"accounts": []}')$$, '42704',
				 'application "nope" is not registered', 'unknown app');
SELECT is(pg_temp.crm_state() || (SELECT count(*) FROM connector.changes('crm')), (SELECT s || n FROM before3),
		  'the failed calls changed nothing and wrote no event');

SELECT * FROM finish();
ROLLBACK;
