-- The SCIM reads and the entitlement writes over the other grant shapes (an
-- array column, a scalar column) and other id types (uuid, text, identity).
BEGIN;
CREATE EXTENSION connector;
SELECT plan(29);

-- Array grants, uuid account ids, identity entitlement ids.
CREATE SCHEMA arr;
CREATE TABLE arr.users (id uuid PRIMARY KEY, login text NOT NULL, roles int[], nick text);
CREATE TABLE arr.roles (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
INSERT INTO arr.roles (name) VALUES ('r1'), ('r2'), ('r3');
INSERT INTO arr.users VALUES
	('00000000-0000-0000-0000-000000000001', 'ann', '{2,1}', 'A'),
	('00000000-0000-0000-0000-000000000002', 'ben', '{}', NULL),
	('00000000-0000-0000-0000-000000000003', 'cat', '{2,NULL,2}', 'C');
SELECT connector.register_app('arr', '{"accounts": {"table": "arr.users", "id": "id", "name": "login",
	"attributes": ["nick"]}, "entitlements": {"table": "arr.roles", "id": "id", "name": "name"},
	"grants": {"column": "roles"}, "scim": {"attributes": {"nickName": "nick"}, "user_grants": "roles"}}');

SELECT is((SELECT array_agg(row(right(id, 1), entitlements)::text ORDER BY id) FROM connector.scim_accounts('arr')),
		  ARRAY['(1,"[{""id"": ""1"", ""name"": ""r1""}, {""id"": ""2"", ""name"": ""r2""}]")',
				'(2,[])', '(3,"[{""id"": ""2"", ""name"": ""r2""}]")'],
		  'array grants: each entitlement once, in id order, NULLs left out');
SELECT is((SELECT string_agg(right(id, 1), ' ' ORDER BY id) FROM connector.scim_accounts('arr',
			'{"attr": "member", "op": "eq", "value": 2}')), '1 3', 'array grants: member eq');
SELECT is((SELECT string_agg(right(id, 1), ' ' ORDER BY id) FROM connector.scim_accounts('arr',
			'{"attr": "member", "op": "pr"}')), '1 3', 'array grants: member pr');
SELECT is((SELECT string_agg(right(id, 1), ' ' ORDER BY id) FROM connector.scim_accounts('arr',
			'{"not": {"attr": "member", "op": "pr"}}')), '2', 'array grants: not member pr');
SELECT is((SELECT array_agg(row(id, members)::text ORDER BY id::int) FROM connector.scim_entitlements('arr')),
		  ARRAY['(1,"[{""value"": ""00000000-0000-0000-0000-000000000001"", ""display"": ""ann""}]")',
				'(2,"[{""value"": ""00000000-0000-0000-0000-000000000001"", ""display"": ""ann""}, {""value"": ""00000000-0000-0000-0000-000000000003"", ""display"": ""cat""}]")',
				'(3,[])'],
		  'array grants: members in account id order');
SELECT is((SELECT string_agg(id, ' ' ORDER BY id::int) FROM connector.scim_entitlements('arr',
			'{"attr": "member", "op": "eq", "value": "00000000-0000-0000-0000-000000000003"}')), '2',
		  'array grants: groups of a member');
SELECT is((SELECT string_agg(id, ' ' ORDER BY id::int) FROM connector.scim_entitlements('arr',
			'{"attr": "member", "op": "pr"}')), '1 2', 'array grants: groups with members');
SELECT is((SELECT string_agg(right(id, 1), ' ' ORDER BY id) FROM connector.scim_accounts('arr',
			after => '00000000-0000-0000-0000-000000000001')), '2 3', 'a uuid cursor');
SELECT is((SELECT string_agg(right(id, 1), ' ' ORDER BY id) FROM connector.scim_accounts('arr',
			'{"attr": "id", "op": "eq", "value": "00000000-0000-0000-0000-000000000002"}')), '2', 'uuid eq');
SELECT throws_ok($$SELECT * FROM connector.scim_accounts('arr', '{"attr": "id", "op": "eq", "value": "nope"}')$$,
				 '22P02', 'invalid filter: value "nope" is not a valid uuid for attribute "id"', 'a value that is not a uuid');
SELECT throws_ok($$SELECT * FROM connector.scim_accounts('arr', after => 'nope')$$,
				 '22P02', 'after "nope" is not a valid uuid in application "arr"', 'a cursor that is not a uuid');
SELECT is(connector.scim_mapping('arr')->>'account_id_type', 'uuid', 'scim_mapping: uuid account ids');
SELECT is(connector.scim_mapping('arr')->>'user_grants', 'roles', 'scim_mapping: user_grants');
SELECT is(connector.scim_mapping('arr')->>'has_status', 'false', 'scim_mapping: no status');

SELECT is(connector.create_entitlement('arr', 'r4'), '4', 'create_entitlement: an identity id is generated');
SELECT throws_ok($$SELECT connector.create_entitlement('arr', 'r5', '{"id": 9}')$$, '42703',
				 'attribute "id" is not a writable entitlement column in application "arr"', 'and cannot be given');
SELECT coalesce(max(position), 0) AS p FROM connector.changes('arr', 0, 100000) \gset
SELECT is(connector.delete_entitlement('arr', '2'), 'deleted', 'delete_entitlement with array grants');
SELECT is((SELECT array_agg(roles::text ORDER BY id) FROM arr.users), ARRAY['{1}', '{}', '{NULL}'],
		  'it is removed from every array');
SELECT is((SELECT array_agg(row(event->>'type', right(event->'data'->'account'->>'id', 1))::text ORDER BY position)
			 FROM connector.changes('arr', :p)),
		  ARRAY['(access.revoked,1)', '(access.revoked,3)', '(entitlement.deleted,)'],
		  'one access.revoked per holder, then entitlement.deleted');

-- Scalar grants, text ids, entitlements without attributes.
CREATE SCHEMA sca;
CREATE TABLE sca.users (id text PRIMARY KEY, login text NOT NULL, role text, off timestamptz);
CREATE TABLE sca.groups (id text PRIMARY KEY, name text NOT NULL, info text);
INSERT INTO sca.groups VALUES ('g-a', 'A', 'first'), ('g-b', 'B', NULL);
INSERT INTO sca.users VALUES ('u1', 'x', 'g-a', NULL), ('u2', 'y', NULL, now()), ('u3', 'z', 'g-a', NULL);
SELECT connector.register_app('sca', '{"accounts": {"table": "sca.users", "id": "id", "name": "login",
	"status": {"column": "off", "disabled": "timestamp"}},
	"entitlements": {"table": "sca.groups", "id": "id", "name": "name", "attributes": ["info"]},
	"grants": {"column": "role"}, "scim": {}}');
SELECT is((SELECT array_agg(row(id, enabled, entitlements)::text ORDER BY id) FROM connector.scim_accounts('sca')),
		  ARRAY['(u1,t,"[{""id"": ""g-a"", ""name"": ""A""}]")', '(u2,f,[])', '(u3,t,"[{""id"": ""g-a"", ""name"": ""A""}]")'],
		  'scalar grants and a timestamp status');
SELECT is((SELECT string_agg(id, ' ' ORDER BY id) FROM connector.scim_accounts('sca',
			'{"attr": "enabled", "op": "eq", "value": false}')), 'u2', 'enabled over a timestamp status');
SELECT is((SELECT string_agg(id, ' ' ORDER BY id) FROM connector.scim_accounts('sca',
			'{"attr": "member", "op": "eq", "value": "g-a"}')), 'u1 u3', 'scalar grants: member eq');
SELECT is((SELECT string_agg(id, ' ' ORDER BY id) FROM connector.scim_accounts('sca',
			'{"attr": "member", "op": "pr"}')), 'u1 u3', 'scalar grants: member pr');
SELECT is((SELECT string_agg(id, ' ' ORDER BY id) FROM connector.scim_entitlements('sca',
			'{"attr": "member", "op": "eq", "value": "u3"}')), 'g-a', 'scalar grants: groups of a member');
SELECT is((SELECT array_agg(row(id, attributes, members)::text ORDER BY id) FROM connector.scim_entitlements('sca')),
		  ARRAY['(g-a,"{""info"": ""first""}","[{""value"": ""u1"", ""display"": ""x""}, {""value"": ""u3"", ""display"": ""z""}]")',
				'(g-b,"{""info"": null}",[])'],
		  'scalar grants: members');
SELECT is((SELECT string_agg(id, ' ' ORDER BY id) FROM connector.scim_accounts('sca',
			'{"attr": "id", "op": "gt", "value": "u1"}')), 'u2 u3', 'text ids compare as text');
SELECT is(connector.create_entitlement('sca', 'C', '{"id": "g-c", "info": "third"}'), 'g-c', 'text ids are given');
SELECT is(connector.delete_entitlement('sca', 'g-a'), 'deleted', 'delete_entitlement with scalar grants');
SELECT is((SELECT array_agg(row(id, role)::text ORDER BY id) FROM sca.users), ARRAY['(u1,)', '(u2,)', '(u3,)'],
		  'the scalar column is cleared for every holder');

SELECT * FROM finish();
ROLLBACK;
