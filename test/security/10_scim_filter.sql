-- The SCIM gateway's reads as an attacker holding the platform's login: a
-- filter is an oracle on any column it may compare (sw "$2b$..." one
-- character at a time reads a password hash), so the filter tree may name
-- only the columns the mapping exposes to SCIM; values are parameters; the
-- owner's code (domain checks of the ids) runs as the owner; the internal
-- functions and the token table are out of reach.
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
SELECT plan(38);

SET ROLE regress_owner;
ALTER TABLE crm.users ADD COLUMN password_hash text, ADD COLUMN given text;
UPDATE crm.users SET password_hash = '$2b$hash-of-' || login, given = initcap(login);
RESET ROLE;
SELECT connector.register_app('crm', jsonb_set(pg_temp.crm_spec(), '{accounts,attributes}', '["email", "given"]')
	|| '{"scim": {"attributes": {"name.givenName": "given", "emails[type eq \"work\"].value": "email"}}}');
SELECT pg_temp.evil_reset();
SELECT connector.add_token('crm', 'gw') AS tok \gset

CREATE FUNCTION pg_temp.users(f text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	SELECT COALESCE(string_agg(id, ' ' ORDER BY id::int), '') INTO r FROM connector.scim_accounts('crm', f::jsonb);
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE FUNCTION pg_temp.groups(f text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	SELECT COALESCE(string_agg(id, ' ' ORDER BY id::int), '') INTO r FROM connector.scim_entitlements('crm', f::jsonb);
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SET ROLE regress_platform;
SELECT is(connector.scim_session('crm', :'tok'), 'gw', 'the platform''s login opens a SCIM session');
SELECT is(pg_temp.users('{"attr": "col:given", "op": "sw", "value": "A"}'), '1', 'a SCIM-mapped column can be filtered on');
SELECT is(pg_temp.users('{"attr": "col:password_hash", "op": "sw", "value": "$2b$hash-of-a"}'),
		  '22023: invalid filter: attribute "col:password_hash" cannot be filtered on in application "crm"',
		  'the password hash cannot be compared');
SELECT is(pg_temp.users('{"attr": "password_hash", "op": "pr"}'),
		  '22023: invalid filter: attribute "password_hash" cannot be filtered on in application "crm"',
		  'nor named bare');
SELECT is(pg_temp.users('{"attr": "col:Password_Hash", "op": "pr"}'),
		  '22023: invalid filter: attribute "col:Password_Hash" cannot be filtered on in application "crm"',
		  'nor in another letter case');
SELECT is(pg_temp.users('{"or": [{"attr": "id", "op": "pr"}, {"attr": "col:password_hash", "op": "sw", "value": "$"}]}'),
		  '22023: invalid filter: attribute "col:password_hash" cannot be filtered on in application "crm"',
		  'nor inside an or');
SELECT is(pg_temp.users('{"not": {"and": [{"attr": "id", "op": "pr"}, {"not": {"attr": "col:password_hash", "op": "pr"}}]}}'),
		  '22023: invalid filter: attribute "col:password_hash" cannot be filtered on in application "crm"',
		  'nor under nested nots');
SELECT is(pg_temp.users('{"attr": "col:note", "op": "pr"}'),
		  '22023: invalid filter: attribute "col:note" cannot be filtered on in application "crm"', 'an unmapped column');
SELECT is(pg_temp.users('{"attr": "col:owner_id", "op": "pr"}'),
		  '22023: invalid filter: attribute "col:owner_id" cannot be filtered on in application "crm"',
		  'a mapped column that the scim key does not expose');
SELECT is(pg_temp.users('{"attr": "col:email\" IS NOT NULL OR true --", "op": "pr"}'),
		  '22023: invalid filter: attribute "col:email" IS NOT NULL OR true --" cannot be filtered on in application "crm"',
		  'an attribute is never SQL');
SELECT is(pg_temp.users($f${"attr": "name", "op": "eq", "value": "x' OR '1'='1"}$f$), '', 'a value is never SQL');
SELECT is(pg_temp.users($f${"attr": "name", "op": "co", "value": "%"}$f$), '', 'nor a LIKE pattern');
SELECT is(pg_temp.groups('{"attr": "col:is_admin", "op": "eq", "value": true}'),
		  '22023: invalid filter: attribute "col:is_admin" cannot be filtered on in application "crm"',
		  'groups: only entitlements.attributes');
SELECT is(pg_temp.groups('{"attr": "col:password_hash", "op": "pr"}'),
		  '22023: invalid filter: attribute "col:password_hash" cannot be filtered on in application "crm"',
		  'groups: not the Users'' hash either');
SELECT is(pg_temp.groups('{"attr": "member", "op": "eq", "value": "10"}'), '7', 'groups: member filter');
SELECT ok(NOT EXISTS (SELECT 1 FROM connector.scim_accounts('crm') a WHERE a::text LIKE '%$2b$%'),
		  'no User row shows the hash');
SELECT is(pg_temp.outcome($$SELECT connector._filter_compile('{}', 'accounts', '{"attr": "col:password_hash", "op": "pr"}')$$),
		  '42501: permission denied for function _filter_compile', 'the compiler is internal');
SELECT is(pg_temp.outcome($$SELECT connector._origin_client('scim:forged')$$),
		  '42501: permission denied for function _origin_client', 'the client mark cannot be set directly');
SELECT is(pg_temp.outcome($$SELECT * FROM connector.token$$), '42501: permission denied for table token',
		  'the token table is unreadable');
SELECT is(pg_temp.outcome($$SELECT * FROM connector.tokens$$), '42501: permission denied for view tokens',
		  'so is the tokens view, for the platform');
SELECT is(pg_temp.outcome($$SELECT connector.add_token('crm', 'mine')$$),
		  '42501: permission denied for function add_token', 'the platform cannot mint tokens');
SELECT is(pg_temp.outcome($$SELECT connector.revoke_token('crm', 'gw')$$),
		  '42501: permission denied for function revoke_token', 'nor revoke them');
RESET ROLE;

-- The owner's code: ids are of the owner's domain, status is the owner's
-- enum with the owner's cast; filters and pages run them as the owner.
SET ROLE regress_platform;
SELECT is(pg_temp.users('{"and": [{"attr": "id", "op": "gt", "value": 1}, {"attr": "enabled", "op": "eq", "value": true}]}'),
		  '2 10 42', 'a filter on the owner''s id domain and enum status');
RESET ROLE;
SELECT pg_temp.after_call('scim_accounts filter', may_skip => true);
SET ROLE regress_platform;
SELECT is((SELECT count(*) FROM connector.scim_accounts('crm', after => '2', skip => 1)), 2::bigint, 'a page after an id');
RESET ROLE;
SELECT pg_temp.after_call('scim_accounts page', may_skip => true);
SET ROLE regress_platform;
SELECT is(pg_temp.groups('{"attr": "member", "op": "eq", "value": "1"}'), '1 7', 'a member filter');
RESET ROLE;
SELECT pg_temp.after_call('scim_entitlements filter', may_skip => true);
SET ROLE regress_platform;
SELECT is(connector.create_entitlement('crm', 'auditor', '{"id": 20}'), '20', 'create_entitlement');
SELECT is(connector.update_entitlement('crm', '20', '{"name": "auditors"}'), 'updated', 'update_entitlement');
SELECT is(connector."grant"('crm', '2', '20'), 'granted', 'a grant of it');
SELECT is(connector.delete_entitlement('crm', '20'), 'deleted', 'delete_entitlement');
RESET ROLE;
SELECT pg_temp.after_call('entitlement writes');
SELECT is((SELECT array_agg(DISTINCT event->'data'->'origin'->>'client') FROM connector.changes('crm')),
		  ARRAY['scim:gw'], 'every event of the SCIM session names its client');

SELECT * FROM finish();
ROLLBACK;
