-- apply: batches of writes, all or nothing, errors naming the operation.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(22);

SELECT is(connector.apply('crm', '[]'), '[]', 'an empty batch');
SELECT is(connector.apply('crm', '[
	{"op": "grant", "account": "2", "entitlement": "7", "request_id": "a1"},
	{"op": "grant", "account": 2, "entitlement": 7},
	{"op": "revoke", "account": "1", "entitlement": "1"},
	{"op": "disable", "account": "9"},
	{"op": "enable", "account": "9"},
	{"op": "create_account", "name": "erin", "attributes": {"id": 70, "email": "e@example.com"}},
	{"op": "update_account", "account": "70", "attributes": {"email": "erin@example.com"}},
	{"op": "grant", "account": "70", "entitlement": "1", "expires_at": "2031-01-01T00:00:00Z"},
	{"op": "revoke_credential", "credential": "101"},
	{"op": "offboard", "account": "10"},
	{"op": "delete_account", "account": "70"}
]'), '["granted", "unchanged", "revoked", "unchanged", "enabled", "70", "updated", "granted", "revoked",
	   {"account": "10", "disabled": true, "revoked": ["7"], "credentials_revoked": ["100"]}, "deleted"]',
	'every operation, outcomes in order');
SELECT is((SELECT entitlements FROM connector.accounts('crm') WHERE id = '2'), ARRAY['2', '7'], 'the grant is there');
SELECT is((SELECT count(*) FROM "Crm App".users WHERE id = 70), 0::bigint, 'the created account was deleted again');
SELECT is(connector.apply('crm', '[{"op": "grant", "account": "2", "entitlement": "7", "request_id": "a1"}]'),
		  '["granted"]', 'request ids work inside apply');

-- All or nothing.
CREATE TEMP TABLE before AS SELECT pg_temp.crm_state() AS s;
SELECT throws_ok($$SELECT connector.apply('crm', '[
	{"op": "grant", "account": "2", "entitlement": "1"},
	{"op": "disable", "account": "2"},
	{"op": "revoke_credential", "credential": "101"},
	{"op": "grant", "account": "99", "entitlement": "7"}]')$$, 'P0002',
	'operation 3 (grant): account "99" not found in application "crm"',
	'the error names the failing operation and keeps its SQLSTATE');
SELECT is(pg_temp.crm_state(), (SELECT s FROM before), 'operations 0..2 are rolled back');
SELECT throws_ok($$SELECT connector.apply('crm', '{"op": "grant"}')$$, '22023',
				 'operations must be a JSON array, not object', 'not an array');
SELECT throws_ok($$SELECT connector.apply('crm', NULL)$$, '22004', 'operations must not be null', 'NULL operations');
SELECT throws_ok($$SELECT connector.apply('nope', '[]')$$, '42704', 'application "nope" is not registered',
				 'unknown app');
SELECT throws_ok($$SELECT connector.apply('crm', '[1]')$$, '22023',
				 'operation 0: must be a JSON object, not number', 'an element that is not an object');
SELECT throws_ok($$SELECT connector.apply('crm', '[{"account": "2"}]')$$, '22023',
				 'operation 0: missing field "op"', 'no op');
SELECT throws_ok($$SELECT connector.apply('crm', '[{"op": "disable", "account": "2"}, {"op": "frobnicate"}]')$$, '22023',
				 'operation 1: unknown op "frobnicate"', 'unknown op');
SELECT throws_ok($$SELECT connector.apply('crm', '[{"op": "apply"}]')$$, '22023',
				 'operation 0: unknown op "apply"', 'apply is not an op');
SELECT throws_ok($$SELECT connector.apply('crm', '[{"op": "grant", "account": "2"}]')$$, '22023',
				 'operation 0 (grant): missing field "entitlement"', 'missing field');
SELECT throws_ok($$SELECT connector.apply('crm', '[{"op": "grant", "account": "2", "entitlment": "7"}]')$$, '22023',
				 'operation 0 (grant): unknown field "entitlment"', 'a misspelt field is not ignored');
SELECT throws_ok($$SELECT connector.apply('crm', '[{"op": "revoke", "account": null, "entitlement": "7"}]')$$, '22004',
				 'operation 0 (revoke): account must not be null', 'null field');
SELECT throws_ok($$SELECT connector.apply('crm', '[{"op": "revoke", "account": ["2"], "entitlement": "7"}]')$$, '22023',
				 'operation 0 (revoke): account must be a string, not array', 'field of the wrong JSON type');
SELECT throws_ok($$SELECT connector.apply('crm', '[{"op": "grant", "account": "2", "entitlement": "7", "expires_at": "soon"}]')$$,
				 '22P02', 'operation 0 (grant): expires_at "soon" is not a valid timestamp with time zone in application "crm"',
				 'an expires_at that does not parse');
SELECT throws_ok($$SELECT connector.apply('crm', '[{"op": "grant", "account": "2", "entitlement": "7", "request_id": "a1"}, {"op": "revoke", "account": "2", "entitlement": "7", "request_id": "a1"}]')$$,
				 '23505', 'operation 1 (revoke): request "a1" of application "crm" was already made with other arguments',
				 'a reused key inside a batch');
SELECT throws_ok($$SELECT connector.apply('crm', '[{"op": "update_account", "account": "2", "attributes": {"password_hash": "x"}}]')$$,
				 '42703', 'operation 0 (update_account): attribute "password_hash" is not a writable account column in application "crm"',
				 'a bad attribute inside a batch');
SELECT is(pg_temp.crm_state(), (SELECT s FROM before), 'no failed batch changed anything');

SELECT * FROM finish();
ROLLBACK;
