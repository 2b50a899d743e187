-- The SQL side of the SCIM gateway (spec section 11): the mapping's "scim"
-- key, tokens, scim_session and origin.client, scim_mapping, the filter
-- compiler, scim_accounts, scim_entitlements, and the entitlement writes.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SET LOCAL TimeZone = 'UTC';
ALTER TABLE "Crm App".users ADD COLUMN given text, ADD COLUMN family text, ADD COLUMN score int,
	ADD COLUMN created_at timestamptz, ADD COLUMN modified_at timestamp, ADD COLUMN nick text;
UPDATE "Crm App".users SET given = v.g, family = v.f, score = v.s, created_at = v.c, modified_at = v.m
  FROM (VALUES (1, 'Alice', 'Liddell', 10, timestamptz '2026-01-01Z', timestamp '2026-03-01'),
			   (2, 'Bob', 'Builder', 20, '2026-02-01Z', NULL),
			   (9, 'Carol', NULL, NULL, '2026-03-01Z', '2026-03-02'),
			   (10, NULL, NULL, 5, '2026-04-01Z', NULL)) v(id, g, f, s, c, m)
 WHERE users.id = v.id;
INSERT INTO "Crm App".users (id, login, active, account_type, given, created_at, password_hash)
VALUES (11, 'Dave_X%', true, 'human', 'Dave', '2026-05-01Z', 'secret-hash-1');

CREATE FUNCTION pg_temp.spec(scim jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_set(pg_temp.crm_spec(), '{accounts,attributes}',
					 '["email", "Department Name", "given", "family", "score"]')
		   || jsonb_build_object('scim', scim)
$$;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	s text;
	m text;
	d text;
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
	RETURN s || ' ' || m || COALESCE(NULLIF(' / ' || d, ' / '), '');
END
$$;
CREATE FUNCTION pg_temp.reg(scim text) RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.err(format('SELECT connector.register_app(%L, pg_temp.spec(%L))', 'bad', scim))
$$;

SELECT plan(215);

-- The "scim" key of the mapping.
SELECT is(pg_temp.reg('[]'), '22023 mapping key "scim" must be a JSON object, not array', 'scim must be an object');
SELECT is(pg_temp.reg('{"groups": 1}'), '22023 unknown key "scim.groups" in mapping', 'unknown key in scim');
SELECT is(pg_temp.reg('{"attributes": []}'), '22023 mapping key "scim.attributes" must be a JSON object, not array',
		  'attributes must be an object');
SELECT is(pg_temp.reg('{"attributes": {"name.foo": "given"}}'),
		  '22023 mapping key scim.attributes."name.foo" names an unknown SCIM attribute', 'unknown SCIM path');
SELECT is(pg_temp.reg('{"attributes": {"userName": "given"}}'),
		  '22023 mapping key scim.attributes."userName" names an unknown SCIM attribute',
		  'userName comes from accounts.name, not from scim.attributes');
SELECT is(pg_temp.reg('{"attributes": {"emails[type eq \"spam\"].value": "email"}}'),
		  '22023 mapping key scim.attributes."emails[type eq "spam"].value" names an unknown SCIM attribute',
		  'an email type outside the list');
SELECT is(pg_temp.reg('{"attributes": {"title": 3}}'),
		  '22023 mapping key scim.attributes."title" must be a column name, not number', 'a column must be a string');
SELECT is(pg_temp.reg('{"attributes": {"title": ""}}'),
		  '22023 mapping key scim.attributes."title" must be a column name, not an empty string', 'an empty column name');
SELECT is(pg_temp.reg('{"attributes": {"title": "password_hash"}}'),
		  '22023 mapping key scim.attributes."title" names column "password_hash", which is not in accounts.attributes',
		  'a column outside the allowlist (a password hash) cannot be exposed');
SELECT is(pg_temp.reg('{"attributes": {"title": "no such"}}'),
		  '22023 mapping key scim.attributes."title" names column "no such", which is not in accounts.attributes',
		  'an unknown column');
SELECT is(pg_temp.reg('{"attributes": {"displayName": "given", "DISPLAYNAME": "family"}}'),
		  '22023 mapping key scim.attributes."displayName" names a SCIM attribute twice / Attribute names are case-insensitive: "displayName" is "displayName".',
		  'one path twice in two spellings');
SELECT is(pg_temp.reg('{"user_grants": "teams"}'),
		  '22023 mapping key "scim.user_grants" must be "groups", "roles" or "entitlements", not "teams"',
		  'user_grants value');
SELECT is(pg_temp.reg('{"user_grants": 1}'), '22023 mapping key "scim.user_grants" must be a string, not number',
		  'user_grants type');
SELECT is(pg_temp.err($$SELECT connector.register_app('bad', '{"accounts": {"table": "\"Crm App\".users", "id": "id",
		  "name": "login"}, "scim": {"user_grants": "roles"}}')$$),
		  '22023 mapping key "scim.user_grants" is "roles", but the mapping has no "grants" section',
		  'writable grants need a grants section');
SELECT is(pg_temp.reg('{"created": "nope"}'),
		  '42703 column "nope" of table ""Crm App".users" does not exist / Named by mapping key "scim.created".',
		  'created: unknown column');
SELECT is(pg_temp.reg('{"lastModified": "given"}'),
		  '42804 mapping key "scim.lastModified" names a column of type text, not a timestamp',
		  'lastModified: not a timestamp');
SELECT is(pg_temp.reg('{"created": 5}'), '22023 mapping key "scim.created" must be a string, not number',
		  'created: not a string');
SELECT is((SELECT count(*) FROM connector.app), 0::bigint, 'no bad mapping was stored');

SELECT lives_ok($$SELECT connector.register_app('scim', pg_temp.spec('{
	"attributes": {"NAME.GIVENNAME": "given", "name.familyName": "family",
				   "EMAILS[TYPE EQ \"WORK\"].VALUE": "email",
				   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Department Name",
				   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:EMPLOYEENUMBER": "score"},
	"created": "created_at", "lastModified": "modified_at"}'))$$, 'a scim mapping registers');
SELECT is((SELECT spec->'scim'->'attributes' FROM connector.app WHERE app = 'scim'),
		  '{"name.givenName": "given", "name.familyName": "family", "emails[type eq \"work\"].value": "email",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Department Name",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "score"}'::jsonb,
		  'paths are case-insensitive and stored in their canonical spelling');
SELECT is(connector.scim_mapping('scim'),
		  '{"app": "scim", "attributes": {"name.givenName": "given", "name.familyName": "family",
			"emails[type eq \"work\"].value": "email",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Department Name",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "score"},
			"user_grants": "groups", "created": "created_at", "lastModified": "modified_at",
			"has_status": true, "has_kind": true, "has_grants": true, "has_entitlements": true,
			"operations": ["grant", "revoke", "disable", "enable", "create_account", "update_account",
						   "delete_account", "offboard", "revoke_credential", "create_entitlement",
						   "update_entitlement", "delete_entitlement"],
			"account_id_type": "integer", "entitlement_id_type": "integer",
			"name_column": "login", "kind_column": "account_type", "entitlement_name_column": "name",
			"writable": ["Department Name", "account_type", "active", "email", "family", "given", "login",
						 "owner_id", "score"],
			"entitlement_writable": ["description", "is_admin", "name"],
			"name_column": "login", "kind_column": "account_type", "entitlement_name_column": "name"}'::jsonb,
		  'scim_mapping: what the gateway needs');
SELECT is(pg_temp.err($$SELECT connector.scim_mapping('nope')$$), '42704 application "nope" is not registered',
		  'scim_mapping: unknown app');
SELECT ok(NOT connector._scim_name_indexed('"Crm App".users'::regclass, 'login'),
		  'no lower(login) index yet (register_app said so in a NOTICE)');
CREATE INDEX users_lower_login ON "Crm App".users (lower(login));
SELECT ok(connector._scim_name_indexed('"Crm App".users'::regclass, 'login'), 'a lower(login) index is recognised');
CREATE TABLE public.vc (id int PRIMARY KEY, n varchar(40) NOT NULL);
CREATE INDEX ON public.vc (lower(n));
SELECT ok(connector._scim_name_indexed('public.vc'::regclass, 'n'), 'so is one on a varchar column');
SELECT ok(NOT connector._scim_name_indexed('public.vc'::regclass, 'id'), 'an index on another column is not');
SELECT is(connector.scim_mapping('scim')->>'user_grants', 'groups', 'user_grants defaults to groups');

-- Retyping a created/lastModified column weakens what the gateway relies on: tamper.
SAVEPOINT retype;
ALTER TABLE "Crm App".users ALTER COLUMN modified_at TYPE timestamptz;
SELECT is((SELECT array_agg(problem) FROM connector.capture_gap WHERE app = 'scim'),
		  ARRAY['mapped column "modified_at" changed type from timestamp without time zone to timestamp with time zone'],
		  'retyping the lastModified column is recorded as tamper');
ROLLBACK TO retype;

-- Tokens.
SELECT connector.add_token('scim', 'okta') AS tok \gset
SELECT ok(:'tok' ~ '^ctk_[A-Za-z0-9_-]{43}$', 'a token is ctk_ and base64url of 32 bytes, without padding');
SELECT isnt(connector.add_token('scim', 'entra', now() + interval '1 day'), :'tok', 'each token is new');
SELECT is((SELECT array_agg(name ORDER BY name) FROM connector.tokens WHERE app = 'scim' AND revoked IS NULL),
		  ARRAY['entra', 'okta'], 'the tokens view lists them');
SELECT is((SELECT array_agg(column_name::text ORDER BY ordinal_position) FROM information_schema.columns
			WHERE table_schema = 'connector' AND table_name = 'tokens'),
		  ARRAY['app', 'name', 'created', 'expires', 'last_used', 'revoked'], 'the view has no token or hash column');
SELECT ok(NOT EXISTS (SELECT 1 FROM connector.tokens t WHERE t::text LIKE '%' || substr(:'tok', 5, 20) || '%'),
		  'no row of the view shows the token');
SELECT is((SELECT hash FROM connector.token WHERE name = 'okta'), sha256(convert_to(:'tok', 'UTF8')),
		  'only the SHA-256 of the token is stored');
SELECT is(pg_temp.err($$SELECT connector.add_token('scim', 'okta')$$),
		  '42710 token "okta" of application "scim" already exists', 'a live name cannot be reused');
SELECT is(pg_temp.err($$SELECT connector.add_token(NULL, 'x')$$), '22004 app must not be null', 'NULL app');
SELECT is(pg_temp.err($$SELECT connector.add_token('scim', NULL)$$), '22004 name must not be null', 'NULL name');
SELECT is(pg_temp.err($$SELECT connector.add_token('nope', 'x')$$), '42704 application "nope" is not registered',
		  'unknown app');
SELECT is(pg_temp.err($$SELECT connector.add_token('scim', '')$$),
		  '22023 token name must be 1 to 200 characters long / The name given is 0 characters long.', 'empty name');
SELECT is(pg_temp.err(format('SELECT connector.add_token(%L, %L)', 'scim', repeat('é', 201))),
		  '22023 token name must be 1 to 200 characters long / The name given is 201 characters long.', 'long name');
SELECT lives_ok(format('SELECT connector.add_token(%L, %L)', 'scim', repeat('é', 200)), '200 characters will do');
SELECT matches(pg_temp.err($$SELECT connector.add_token('scim', 'x', now() - interval '1 second')$$),
			   '^22023 expires_at .* is in the past$', 'an expiry in the past');
SELECT is(pg_temp.err($$SELECT connector.revoke_token('nope', 'x')$$), '42704 application "nope" is not registered',
		  'revoke_token: unknown app');
SELECT is(pg_temp.err($$SELECT connector.revoke_token('scim', 'x')$$),
		  '42704 token "x" of application "scim" does not exist', 'revoke_token: unknown token');
SELECT is(pg_temp.err($$SELECT connector.revoke_token('scim', NULL)$$), '22004 name must not be null',
		  'revoke_token: NULL name');

-- scim_session
SELECT is(connector.scim_session('scim', :'tok'), 'okta', 'scim_session returns the token name');
SELECT isnt((SELECT last_used FROM connector.tokens WHERE name = 'okta'), NULL, 'and stamps last_used');
UPDATE connector.token SET last_used = now() - interval '30 seconds' WHERE name = 'okta';
SELECT connector.scim_session('scim', :'tok');
SELECT is((SELECT last_used FROM connector.tokens WHERE name = 'okta'), now() - interval '30 seconds',
		  'last_used is not written again within a minute');
UPDATE connector.token SET last_used = now() - interval '61 seconds' WHERE name = 'okta';
SELECT connector.scim_session('scim', :'tok');
SELECT is((SELECT last_used FROM connector.tokens WHERE name = 'okta'), now(), 'but is after a minute');
UPDATE connector.token SET last_used = now() - interval '61 seconds' WHERE name = 'okta';
SAVEPOINT ro;
SET LOCAL transaction_read_only = on;
SELECT is(connector.scim_session('scim', :'tok'), 'okta', 'a read-only transaction (a hot standby) opens a session');
SELECT is((SELECT last_used FROM connector.tokens WHERE name = 'okta'), now() - interval '61 seconds',
		  'without writing last_used');
ROLLBACK TO ro;
SELECT is(pg_temp.err($$SELECT connector.scim_session('scim', 'ctk_wrong')$$), '28000 invalid bearer token',
		  'a wrong token: 28000, no detail');
SELECT is(pg_temp.err($$SELECT connector.scim_session('scim', NULL)$$), '28000 invalid bearer token', 'no token');
SELECT is(pg_temp.err(format('SELECT connector.scim_session(%L, %L)', 'nope', :'tok')),
		  '42704 application "nope" is not registered', 'unknown app');
SELECT connector.register_app('other', '{"accounts": {"table": "public.vc", "id": "id", "name": "n"}}');
SELECT is(pg_temp.err(format('SELECT connector.scim_session(%L, %L)', 'other', :'tok')),
		  '28000 invalid bearer token / the token belongs to another application', 'another app''s token');
SELECT connector.add_token('scim', 'old') AS oldtok \gset
UPDATE connector.token SET expires = now() - interval '1 second' WHERE name = 'old';
SELECT is(pg_temp.err(format('SELECT connector.scim_session(%L, %L)', 'scim', :'oldtok')),
		  '28000 invalid bearer token / the token has expired', 'an expired token');
SELECT lives_ok($$SELECT connector.revoke_token('scim', 'old')$$, 'revoke_token');
SELECT is(pg_temp.err(format('SELECT connector.scim_session(%L, %L)', 'scim', :'oldtok')),
		  '28000 invalid bearer token / the token was revoked', 'a revoked token');
SELECT revoked AS revoked_at FROM connector.tokens WHERE name = 'old' \gset
SELECT lives_ok($$SELECT connector.revoke_token('scim', 'old')$$, 'revoking again is a no-op');
SELECT is((SELECT revoked FROM connector.tokens WHERE name = 'old'), :'revoked_at'::timestamptz,
		  'and keeps the first revocation time');
SELECT connector.add_token('scim', 'old') AS newtok \gset
SELECT is(connector.scim_session('scim', :'newtok'), 'old', 'a revoked name can be reused');
SELECT is(pg_temp.err(format('SELECT connector.scim_session(%L, %L)', 'scim', :'oldtok')),
		  '28000 invalid bearer token', 'the replaced token is unknown');

-- origin.client: every event of a marked transaction, none elsewhere.  This
-- test's transaction is marked since the scim_session calls above only if
-- those subtransactions committed: pg_temp.err's block rolled back the
-- failing ones; the successful calls above ran at top level, so the mark is
-- set.  Check each case in its own savepoint.
SAVEPOINT marked;
SELECT coalesce(max(position), 0) AS p FROM connector.changes('scim', 0, 100000) \gset
SELECT connector."grant"('scim', '2', '7', 'r-1');
UPDATE "Crm App".users SET email = 'b@example.com' WHERE id = 2;
SELECT is((SELECT array_agg((event->'data'->'origin') - 'db_user'::text - 'session_user'::text - 'application_name'::text - 'client_addr'::text
							ORDER BY position)
			 FROM connector.changes('scim', :p)),
		  ARRAY['{"via": "platform", "operation": "grant", "request_id": "r-1", "client": "scim:old"}',
				'{"via": "direct", "client": "scim:old"}']::jsonb[],
		  'a platform call and direct DML in a marked transaction both name the client');
SELECT coalesce(max(position), 0) AS po FROM connector.changes('other', 0, 100000) \gset
INSERT INTO public.vc (id, n) VALUES (9001, 'elsewhere');
SELECT is((SELECT array_agg(event->'data'->'origin' ? 'client') FROM connector.changes('other', :po)),
		  ARRAY[false], 'a change to another application in the marked transaction does not name the client (its token is of "scim")');
UPDATE "Crm App".users SET email = 'c@example.com' WHERE id = 2;
SELECT is((SELECT event->'data'->'origin'->>'client' FROM connector.changes('scim', :p) ORDER BY position DESC LIMIT 1),
		  'scim:old', 'and the token''s own application still does, right after');
ROLLBACK TO marked;
SELECT is(pg_temp.err($$SELECT connector._origin_client(NULL)$$), 'no error', 'the mark can be dropped (superuser)');
SELECT coalesce(max(position), 0) AS p FROM connector.changes('scim', 0, 100000) \gset
SAVEPOINT inner_mark;
SELECT connector.scim_session('scim', :'tok');
ROLLBACK TO inner_mark;
UPDATE "Crm App".users SET email = 'b2@example.com' WHERE id = 2;
SELECT connector."grant"('scim', '2', '7');
SELECT is((SELECT array_agg(event->'data'->'origin' ? 'client' ORDER BY position) FROM connector.changes('scim', :p)),
		  ARRAY[false, false], 'no client key without the mark (a rolled-back subtransaction drops it)');
SELECT is((SELECT event->'data'->'origin'->>'operation' FROM connector.changes('scim', :p) ORDER BY position DESC LIMIT 1),
		  'grant', 'platform events keep their shape');
SELECT connector.scim_session('scim', :'tok');
SAVEPOINT released;
SELECT connector.scim_session('scim', :'newtok');
RELEASE released;
SELECT coalesce(max(position), 0) AS p FROM connector.changes('scim', 0, 100000) \gset
SELECT connector.revoke('scim', '2', '7');
SELECT is((SELECT event->'data'->'origin'->>'client' FROM connector.changes('scim', :p)), 'scim:old',
		  'a released subtransaction''s mark stays, the later call replacing the earlier');
SELECT connector._origin_client(NULL);

-- Filters over Users (accounts 1 alice, 2 bob, 9 carol (disabled), 10 svc-backup, 11 Dave_X%).
CREATE FUNCTION pg_temp.ids(f text) RETURNS text LANGUAGE sql AS $$
	SELECT COALESCE(string_agg(id, ' ' ORDER BY id::int), '') FROM connector.scim_accounts('scim', f::jsonb)
$$;
CREATE FUNCTION pg_temp.ferr(f text) RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.err(format('SELECT * FROM connector.scim_accounts(%L, %L)', 'scim', f))
$$;
SELECT is(pg_temp.ids(NULL), '1 2 9 10 11', 'no filter: every account');
SELECT is(pg_temp.ids('null'), '1 2 9 10 11', 'a JSON null filter: every account');
SELECT is(pg_temp.ids('{"attr": "id", "op": "eq", "value": "2"}'), '2', 'id eq (string)');
SELECT is(pg_temp.ids('{"attr": "id", "op": "eq", "value": 2}'), '2', 'id eq (number)');
SELECT is(pg_temp.ids('{"attr": "id", "op": "ne", "value": "2"}'), '1 9 10 11', 'id ne');
SELECT is(pg_temp.ids('{"attr": "id", "op": "gt", "value": "2"}'), '9 10 11', 'id gt compares as integers');
SELECT is(pg_temp.ids('{"attr": "id", "op": "ge", "value": "9"}'), '9 10 11', 'id ge');
SELECT is(pg_temp.ids('{"attr": "id", "op": "lt", "value": "9"}'), '1 2', 'id lt');
SELECT is(pg_temp.ids('{"attr": "id", "op": "le", "value": "9"}'), '1 2 9', 'id le');
SELECT is(pg_temp.ids('{"attr": "id", "op": "pr"}'), '1 2 9 10 11', 'id pr');
SELECT is(pg_temp.ids('{"attr": "name", "op": "eq", "value": "ALICE", "ci": true}'), '1', 'name eq, ci');
SELECT is(pg_temp.ids('{"attr": "name", "op": "eq", "value": "ALICE"}'), '', 'name eq, case-sensitive');
SELECT is(pg_temp.ids('{"attr": "name", "op": "eq", "value": "alice", "ci": false}'), '1', 'name eq, ci false');
SELECT is(pg_temp.ids('{"attr": "name", "op": "co", "value": "_X%"}'), '11', 'co escapes _ and %');
SELECT is(pg_temp.ids('{"attr": "name", "op": "co", "value": "a"}'), '1 9 10 11', 'co');
SELECT is(pg_temp.ids('{"attr": "name", "op": "co", "value": "A"}'), '', 'co, case-sensitive');
SELECT is(pg_temp.ids('{"attr": "name", "op": "co", "value": "A", "ci": true}'), '1 9 10 11', 'co, ci');
SELECT is(pg_temp.ids('{"attr": "name", "op": "sw", "value": "b"}'), '2', 'sw');
SELECT is(pg_temp.ids('{"attr": "name", "op": "ew", "value": "p"}'), '10', 'ew');
SELECT is(pg_temp.ids('{"attr": "name", "op": "ew", "value": "X%", "ci": true}'), '11', 'ew, ci, escaped');
SELECT is(pg_temp.ids('{"attr": "name", "op": "sw", "value": "\\"}'), '', 'a backslash is literal');
SELECT is(pg_temp.ids('{"attr": "name", "op": "gt", "value": "c", "ci": true}'), '9 10 11', 'gt, ci compares lower-case text');
SELECT is(pg_temp.ids('{"attr": "enabled", "op": "eq", "value": true}'), '1 2 10 11', 'enabled eq true');
SELECT is(pg_temp.ids('{"attr": "enabled", "op": "eq", "value": "False"}'), '9', 'enabled eq "False"');
SELECT is(pg_temp.ids('{"attr": "enabled", "op": "ne", "value": true}'), '9', 'enabled ne');
SELECT is(pg_temp.ids('{"attr": "enabled", "op": "pr"}'), '1 2 9 10 11', 'enabled pr');
SELECT is(pg_temp.ids('{"attr": "kind", "op": "eq", "value": "service"}'), '10', 'kind eq');
SELECT is(pg_temp.ids('{"attr": "member", "op": "eq", "value": "7"}'), '1 10', 'member eq: holders of 7');
SELECT is(pg_temp.ids('{"attr": "member", "op": "eq", "value": 1}'), '1', 'member eq (number)');
SELECT is(pg_temp.ids('{"attr": "member", "op": "pr"}'), '1 2 10', 'member pr: holders of anything');
SELECT is(pg_temp.ids('{"attr": "created", "op": "gt", "value": "2026-02-15T00:00:00Z"}'), '9 10 11', 'created gt');
SELECT is(pg_temp.ids('{"attr": "lastModified", "op": "ge", "value": "2026-03-01T00:00:00"}'), '1 9', 'lastModified ge');
SELECT is(pg_temp.ids('{"attr": "lastModified", "op": "pr"}'), '1 9', 'lastModified pr');
SELECT is(pg_temp.ids('{"attr": "lastModified", "op": "eq", "value": null}'), '2 10 11', 'eq null: no value');
SELECT is(pg_temp.ids('{"attr": "lastModified", "op": "ne", "value": null}'), '1 9', 'ne null: a value');
SELECT is(pg_temp.ids('{"attr": "col:given", "op": "eq", "value": "Bob"}'), '2', 'a mapped column');
SELECT is(pg_temp.ids('{"attr": "col:given", "op": "pr"}'), '1 2 9 11', 'pr of a mapped column');
SELECT is(pg_temp.ids('{"attr": "col:family", "op": "ne", "value": "Builder"}'), '1 9 10 11',
		  'ne also matches an attribute without a value');
SELECT is(pg_temp.ids('{"attr": "col:score", "op": "gt", "value": 7}'), '1 2', 'gt on an integer column');
SELECT is(pg_temp.ids('{"attr": "col:Department Name", "op": "eq", "value": "it", "ci": true}'), '1 10',
		  'a column name with a space');
SELECT is(pg_temp.ids('{"and": [{"attr": "id", "op": "gt", "value": 1},
								{"or": [{"attr": "name", "op": "sw", "value": "b"},
										{"not": {"attr": "enabled", "op": "eq", "value": true}}]}]}'),
		  '2 9', 'and / or / not nested');
SELECT is(pg_temp.ids('{"not": {"not": {"attr": "id", "op": "eq", "value": 1}}}'), '1', 'not not');
SELECT is(pg_temp.ids('{"or": [{"attr": "id", "op": "eq", "value": 1}]}'), '1', 'a one-element or');
SELECT is(pg_temp.ids('{"and": [{"attr": "id", "op": "eq", "value": 1}, {"attr": "id", "op": "eq", "value": 2}]}'),
		  '', 'and of disjoint conditions');
SELECT is(pg_temp.ids(repeat('{"not": ', 63) || '{"attr": "id", "op": "eq", "value": 1}' || repeat('}', 63)),
		  '2 9 10 11', '64 levels deep is allowed');
SELECT is(pg_temp.ferr(repeat('{"not": ', 64) || '{"attr": "id", "op": "eq", "value": 1}' || repeat('}', 64)),
		  '54001 invalid filter: nested more than 64 levels deep', '65 levels deep is not');
SELECT is(pg_temp.ids($f${"attr": "name", "op": "eq", "value": "x'); DROP TABLE \"Crm App\".users; --"}$f$), '',
		  'a value is a value');

-- Bad filters.
SELECT is(pg_temp.ferr('[]'), '22023 invalid filter: a filter must be a JSON object, not array', 'not an object');
SELECT is(pg_temp.ferr('{"and": []}'), '22023 invalid filter: "and" must be a non-empty array of filters', 'empty and');
SELECT is(pg_temp.ferr('{"or": {}}'), '22023 invalid filter: "or" must be a non-empty array of filters', 'or of an object');
SELECT is(pg_temp.ferr('{"not": [1]}'), '22023 invalid filter: a filter must be a JSON object, not array', 'not of an array');
SELECT is(pg_temp.ferr('{"and": [{"attr": "id", "op": "pr"}], "attr": "id"}'),
		  '22023 invalid filter: "and" must be the only key of its object', 'and beside other keys');
SELECT is(pg_temp.ferr('{"attr": "id", "op": "pr", "x": 1}'), '22023 invalid filter: unknown key "x"', 'unknown key');
SELECT is(pg_temp.ferr('{"attr": 1, "op": "pr"}'), '22023 invalid filter: "attr" must be a string', 'attr not a string');
SELECT is(pg_temp.ferr('{"attr": "id", "op": "xx", "value": 1}'), '22023 invalid filter: unknown operator "xx"',
		  'unknown operator');
SELECT is(pg_temp.ferr('{"attr": "id", "value": 1}'), '22023 invalid filter: unknown operator nothing', 'no operator');
SELECT is(pg_temp.ferr('{"attr": "id", "op": "eq"}'), '22023 invalid filter: operator "eq" needs a value', 'no value');
SELECT is(pg_temp.ferr('{"attr": "id", "op": "pr", "value": 1}'), '22023 invalid filter: operator "pr" takes no value',
		  'pr with a value');
SELECT is(pg_temp.ferr('{"attr": "id", "op": "eq", "value": [1]}'),
		  '22023 invalid filter: the value of "id" must be a string, number, boolean or null', 'an array value');
SELECT is(pg_temp.ferr('{"attr": "id", "op": "gt", "value": null}'),
		  '22023 invalid filter: operator "gt" cannot compare with null', 'gt null');
SELECT is(pg_temp.ferr('{"attr": "id", "op": "eq", "value": 1, "ci": "yes"}'),
		  '22023 invalid filter: "ci" must be true or false', 'ci not a boolean');
SELECT is(pg_temp.ferr('{"attr": "password_hash", "op": "pr"}'),
		  '22023 invalid filter: attribute "password_hash" cannot be filtered on in application "scim"', 'an unknown attribute');
SELECT is(pg_temp.ferr('{"attr": "col:password_hash", "op": "pr"}'),
		  '22023 invalid filter: attribute "col:password_hash" cannot be filtered on in application "scim"',
		  'an unmapped column');
SELECT is(pg_temp.ferr('{"attr": "col:owner_id", "op": "pr"}'),
		  '22023 invalid filter: attribute "col:owner_id" cannot be filtered on in application "scim"',
		  'a mapped column that scim.attributes does not name');
SELECT is(pg_temp.ferr('{"attr": "member", "op": "co", "value": "7"}'),
		  '22023 invalid filter: attribute "member" supports "eq" with a value and "pr", not "co"', 'member co');
SELECT is(pg_temp.ferr('{"attr": "enabled", "op": "gt", "value": true}'),
		  '22023 invalid filter: attribute "enabled" supports "eq", "ne" and "pr", not "gt"', 'enabled gt');
SELECT is(pg_temp.ferr('{"attr": "id", "op": "eq", "value": "abc"}'),
		  '22P02 invalid filter: value "abc" is not a valid integer for attribute "id" / invalid input syntax for type integer: "abc"',
		  'a value that is not an integer: 22P02');
SELECT is(pg_temp.ferr('{"attr": "col:score", "op": "lt", "value": "99999999999"}'),
		  '22003 invalid filter: value "99999999999" is not a valid integer for attribute "col:score" / value "99999999999" is out of range for type integer',
		  'an integer out of range: 22003');
SELECT is(pg_temp.ferr('{"attr": "created", "op": "gt", "value": "yesterday-ish"}'),
		  '22007 invalid filter: value "yesterday-ish" is not a valid timestamp with time zone for attribute "created" / invalid input syntax for type timestamp with time zone: "yesterday-ish"',
		  'a value that is not a timestamp: 22007');
SELECT is(pg_temp.ferr('{"attr": "lastModified", "op": "gt", "value": "2026-13-45T00:00:00"}'),
		  '22008 invalid filter: value "2026-13-45T00:00:00" is not a valid timestamp without time zone for attribute "lastModified" / date/time field value out of range: "2026-13-45T00:00:00"',
		  'a date out of range: 22008');
SELECT is(pg_temp.ferr('{"attr": "member", "op": "eq", "value": "x"}'),
		  '22P02 invalid filter: value "x" is not a valid integer for attribute "member" / invalid input syntax for type integer: "x"',
		  'member: an entitlement id that does not parse');
SELECT is(pg_temp.ferr('{"attr": "enabled", "op": "eq", "value": "maybe"}'),
		  '22P02 invalid filter: value "maybe" is not a valid boolean for attribute "enabled"', 'enabled: not a boolean');

-- Rows and paging.
SELECT is((SELECT row(total, id, name, enabled, kind, attributes, entitlements)::text
			 FROM connector.scim_accounts('scim', '{"attr": "id", "op": "eq", "value": 1}')),
		  row(1::bigint, '1', 'alice', true, 'human',
			  '{"email": "alice@example.com", "Department Name": "IT", "given": "Alice", "family": "Liddell",
				"score": 10, "created_at": "2026-01-01T00:00:00+00:00", "modified_at": "2026-03-01T00:00:00"}'::jsonb,
			  '[{"id": "1", "name": "viewer"}, {"id": "7", "name": "db-admin"}]'::jsonb)::text,
		  'a User row: the SCIM-mapped columns by name, the grants with their names');
SELECT is((SELECT array_agg(row(total, id)::text ORDER BY id::int) FROM connector.scim_accounts('scim', "limit" => 2)),
		  ARRAY['(5,1)', '(5,2)'], 'limit: the first page, the total on each row');
SELECT is((SELECT array_agg(id ORDER BY id::int) FROM connector.scim_accounts('scim', after => '2', "limit" => 2)),
		  ARRAY['9', '10'], 'after: keyset cursor');
SELECT is((SELECT array_agg(id ORDER BY id::int) FROM connector.scim_accounts('scim', skip => 1, "limit" => 2)),
		  ARRAY['2', '9'], 'skip: offset (startIndex - 1)');
SELECT is((SELECT array_agg(id ORDER BY id::int) FROM connector.scim_accounts('scim', after => '9', skip => 1)),
		  ARRAY['11'], 'after and skip together');
SELECT is((SELECT array_agg(row(total, id)::text) FROM connector.scim_accounts('scim', "limit" => 0)),
		  ARRAY['(5,)'], 'limit 0: totals only, one row with no id');
SELECT is((SELECT array_agg(row(total, id)::text) FROM connector.scim_accounts('scim',
			'{"attr": "name", "op": "co", "value": "a"}', "limit" => 0)),
		  ARRAY['(4,)'], 'the total counts the filter');
SELECT is((SELECT array_agg(row(total, id)::text ORDER BY id::int) FROM connector.scim_accounts('scim',
			'{"attr": "name", "op": "co", "value": "a"}', after => '9', count_total => false)),
		  ARRAY['(,10)', '(,11)'], 'count_total false: no total');
SELECT is((SELECT count(*) FROM connector.scim_accounts('scim', skip => 10)), 0::bigint, 'skip past the end');
SELECT is(pg_temp.err($$SELECT * FROM connector.scim_accounts('scim', "limit" => 1001)$$),
		  '22023 limit 1001 is out of range', 'limit over 1000');
SELECT is(pg_temp.err($$SELECT * FROM connector.scim_accounts('scim', "limit" => -1)$$),
		  '22023 limit -1 is out of range', 'negative limit');
SELECT is(pg_temp.err($$SELECT * FROM connector.scim_accounts('scim', skip => -1)$$),
		  '22023 skip -1 is out of range', 'negative skip');
SELECT is(pg_temp.err($$SELECT * FROM connector.scim_accounts('scim', skip => NULL)$$),
		  '22004 skip must not be null', 'NULL skip');
SELECT is(pg_temp.err($$SELECT * FROM connector.scim_accounts('scim', after => 'x')$$),
		  '22P02 after "x" is not a valid integer in application "scim" / invalid input syntax for type integer: "x"',
		  'an after that does not parse');
SELECT is(pg_temp.err($$SELECT * FROM connector.scim_accounts('nope')$$), '42704 application "nope" is not registered',
		  'scim_accounts: unknown app');
SELECT is((SELECT array_agg(row(id, name, attributes, entitlements)::text) FROM connector.scim_accounts('other')),
		  NULL, 'an app without scim key or rows: no rows');
INSERT INTO public.vc VALUES (1, 'x');
SELECT is((SELECT row(id, name, enabled, kind, attributes, entitlements)::text FROM connector.scim_accounts('other')),
		  '(1,x,t,,{},[])', 'a minimal mapping: enabled, no kind, no attributes, no grants');

-- Groups.
CREATE FUNCTION pg_temp.gids(f text) RETURNS text LANGUAGE sql AS $$
	SELECT COALESCE(string_agg(id, ' ' ORDER BY id::int), '') FROM connector.scim_entitlements('scim', f::jsonb)
$$;
SELECT is((SELECT array_agg(row(total, id, name, attributes, members)::text ORDER BY id::int)
			 FROM connector.scim_entitlements('scim')),
		  ARRAY[row(3::bigint, '1', 'viewer', '{"description": "read only"}'::jsonb,
					'[{"value": "1", "display": "alice"}]'::jsonb)::text,
				row(3::bigint, '2', 'editor', '{"description": "edit records"}'::jsonb,
					'[{"value": "2", "display": "bob"}]'::jsonb)::text,
				row(3::bigint, '7', 'db-admin', '{"description": "full control"}'::jsonb,
					'[{"value": "1", "display": "alice"}, {"value": "10", "display": "svc-backup"}]'::jsonb)::text],
		  'Groups: names, attributes, members in account id order');
SELECT is((SELECT array_agg(members) FROM connector.scim_entitlements('scim', members => false)),
		  ARRAY[NULL, NULL, NULL]::jsonb[], 'members false: no member lists');
SELECT is(pg_temp.gids('{"attr": "name", "op": "eq", "value": "DB-ADMIN", "ci": true}'), '7', 'group name eq, ci');
SELECT is(pg_temp.gids('{"attr": "member", "op": "eq", "value": "1"}'), '1 7', 'groups with member 1');
SELECT is(pg_temp.gids('{"attr": "member", "op": "pr"}'), '1 2 7', 'groups with members');
SELECT is(pg_temp.gids('{"attr": "col:description", "op": "co", "value": "edit"}'), '2', 'a group attribute');
SELECT is(pg_temp.gids('{"not": {"attr": "id", "op": "eq", "value": 7}}'), '1 2', 'not, for groups');
SELECT is(pg_temp.err($$SELECT * FROM connector.scim_entitlements('scim', '{"attr": "enabled", "op": "pr"}')$$),
		  '22023 invalid filter: attribute "enabled" cannot be filtered on in application "scim"',
		  'groups have no enabled attribute');
SELECT is(pg_temp.err($$SELECT * FROM connector.scim_entitlements('scim', '{"attr": "col:given", "op": "pr"}')$$),
		  '22023 invalid filter: attribute "col:given" cannot be filtered on in application "scim"',
		  'nor the Users'' columns');
SELECT is((SELECT array_agg(row(total, id)::text) FROM connector.scim_entitlements('scim', "limit" => 0)),
		  ARRAY['(3,)'], 'groups: limit 0');
SELECT is((SELECT array_agg(id) FROM connector.scim_entitlements('scim', after => '1', skip => 1, "limit" => 1)),
		  ARRAY['7'], 'groups: after, skip, limit');
SELECT is(pg_temp.err($$SELECT * FROM connector.scim_entitlements('other')$$),
		  '0A000 application "other" maps no entitlements table', 'an app without entitlements');

-- Entitlement writes.
SELECT coalesce(max(position), 0) AS p FROM connector.changes('scim', 0, 100000) \gset
SELECT is(connector.create_entitlement('scim', 'auditor', '{"id": 20, "description": "reads logs"}', 'c-1'), '20',
		  'create_entitlement returns the new id');
SELECT is(connector.create_entitlement('scim', 'auditor', '{"id": 20, "description": "reads logs"}', 'c-1'), '20',
		  'a retry with the request id returns the first outcome');
SELECT is((SELECT row(name, is_admin, description)::text FROM "Crm App".roles WHERE id = 20),
		  '(auditor,f,"reads logs")', 'the entitlement is stored');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', 'auditor2', '{"id": 21}', 'c-1')$$),
		  '23505 request "c-1" of application "scim" was already made with other arguments / The first call was create_entitlement {"name": "auditor", "attributes": {"id": 20, "description": "reads logs"}}; this call is create_entitlement {"name": "auditor2", "attributes": {"id": 21}}.',
		  'the request id with other arguments');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', 'VIEWER', '{"id": 21}')$$), 'no error',
		  'names are compared exactly');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', 'viewer', '{"id": 22}')$$),
		  '23505 entitlement "viewer" already exists in application "scim" / Entitlement id 1 has that name.',
		  'a duplicate name');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', 'x', '{"id": 1}')$$),
		  '23505 entitlement "1" already exists in application "scim"', 'a duplicate id');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', 'x')$$),
		  '22004 attribute "id" is required in application "scim" / The entitlement id column has no default.',
		  'an id without default must be given');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', 'x', '{"id": 23, "secret": 1}')$$),
		  '42703 attribute "secret" is not a writable entitlement column in application "scim" / Only columns the mapping names can be written.',
		  'an unmapped column');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', 'x', '{"id": 23, "name": "y"}')$$),
		  '42703 attribute "name" is not a writable entitlement column in application "scim" / The name is given as the name argument.',
		  'the name goes in the name argument');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', 'x', '{"id": "abc"}')$$),
		  '22P02 attribute "id" value "abc" is not a valid integer in application "scim" / invalid input syntax for type integer: "abc"',
		  'an id that does not parse');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', NULL, '{"id": 23}')$$),
		  '22004 name must not be null', 'NULL name');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('nope', 'x')$$),
		  '42704 application "nope" is not registered', 'unknown app');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('other', 'x')$$),
		  '0A000 application "other" maps no entitlements table', 'no entitlements table');
SELECT is(connector.update_entitlement('scim', '20', '{"name": "auditors", "description": null}'), 'updated',
		  'update_entitlement renames and changes attributes');
SELECT is(connector.update_entitlement('scim', '20', '{"name": "auditors", "description": null}'), 'unchanged',
		  'the same values again: unchanged');
SELECT is(connector.update_entitlement('scim', '20', '{}'), 'unchanged', 'nothing to change');
SELECT is(pg_temp.err($$SELECT connector.update_entitlement('scim', '20', '{"name": "editor"}')$$),
		  '23505 entitlement "editor" already exists in application "scim" / Entitlement id 2 has that name.',
		  'a rename onto another name');
SELECT is(pg_temp.err($$SELECT connector.update_entitlement('scim', '20', '{"name": null}')$$),
		  '22004 attribute "name" must not be null', 'a NULL name');
SELECT is(pg_temp.err($$SELECT connector.update_entitlement('scim', '20', '{"id": 30}')$$),
		  '42703 attribute "id" is not a writable entitlement column in application "scim" / The id column cannot be set here.',
		  'the id cannot change');
SELECT is(pg_temp.err($$SELECT connector.update_entitlement('scim', '99', '{}')$$),
		  'P0002 entitlement "99" not found in application "scim"', 'unknown entitlement');
SELECT is(pg_temp.err($$SELECT connector.update_entitlement('scim', 'x', '{}')$$),
		  '22P02 entitlement "x" is not a valid integer in application "scim" / invalid input syntax for type integer: "x"',
		  'an entitlement id that does not parse');
SELECT is(pg_temp.err($$SELECT connector.update_entitlement('scim', '20', NULL)$$),
		  '22004 attributes must not be null', 'NULL attributes');
SELECT connector."grant"('scim', '2', '20');
SELECT connector."grant"('scim', '9', '20');
SELECT is(connector.delete_entitlement('scim', '20', 'd-1'), 'deleted', 'delete_entitlement');
SELECT is(connector.delete_entitlement('scim', '20', 'd-1'), 'deleted', 'a retry returns the first outcome');
SELECT is((SELECT count(*) FROM "Crm App".roles WHERE id = 20), 0::bigint, 'the entitlement is gone');
SELECT is((SELECT array_agg(row(event->>'type', event->'data'->'account'->>'id', event->'data'->'origin'->>'operation')::text
							ORDER BY position)
			 FROM connector.changes('scim', :p) WHERE event->'data'->'entitlement'->>'id' = '20'),
		  ARRAY['(entitlement.created,,create_entitlement)', '(entitlement.updated,,update_entitlement)',
				'(access.granted,2,grant)', '(access.granted,9,grant)',
				'(access.revoked,2,delete_entitlement)', '(access.revoked,9,delete_entitlement)',
				'(entitlement.deleted,,delete_entitlement)'],
		  'events: created, updated, each grant revoked before the entitlement is deleted');
SELECT is(pg_temp.err($$SELECT connector.delete_entitlement('scim', '20')$$),
		  'P0002 entitlement "20" not found in application "scim"', 'deleting it again');
SELECT is(connector.apply('scim', '[{"op": "create_entitlement", "name": "ops", "attributes": {"id": 30}},
									{"op": "grant", "account": "1", "entitlement": "30"},
									{"op": "update_entitlement", "entitlement": "30", "attributes": {"is_admin": true}},
									{"op": "delete_entitlement", "entitlement": "30"}]'),
		  '["30", "granted", "updated", "deleted"]'::jsonb, 'apply runs the entitlement operations');
SELECT is(pg_temp.err($$SELECT connector.apply('scim', '[{"op": "delete_entitlement", "entitlement": "7", "x": 1}]')$$),
		  '22023 operation 0 (delete_entitlement): unknown field "x"', 'apply checks their fields');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', 'x', '"a"')$$),
		  '22023 attributes must be a JSON object, not string', 'attributes must be an object');
SELECT is(connector.create_entitlement('scim', 'vc1', '{"id": "40"}'::varchar), '40',
		  'create_entitlement with attributes bound as a string');
SELECT is(connector.update_entitlement('scim', '40', '{"description": "d"}'::varchar, 'u-9'), 'updated',
		  'update_entitlement with attributes bound as a string');
SELECT connector.unregister_app('scim');
SELECT connector.register_app('scim', pg_temp.spec('{}') || '{"operations": ["grant", "revoke"]}');
SELECT is(pg_temp.err($$SELECT connector.create_entitlement('scim', 'x', '{"id": 50}')$$),
		  '42501 operation "create_entitlement" is not allowed in application "scim" / Allowed operations: grant, revoke.',
		  'the operations allowlist covers create_entitlement');
SELECT is(pg_temp.err($$SELECT connector.delete_entitlement('scim', '7')$$),
		  '42501 operation "delete_entitlement" is not allowed in application "scim" / Allowed operations: grant, revoke.',
		  'and delete_entitlement');
SELECT is(connector.scim_mapping('scim')->'operations', '["grant", "revoke"]', 'scim_mapping shows the allowlist');
SELECT is(pg_temp.err($$SELECT connector.register_app('scim', pg_temp.crm_spec() || '{"operations": ["delete_entitlement", "x"]}')$$),
		  '22023 mapping key "operations" contains unknown operation "x"', 'the new operations are known to the allowlist');
SELECT is((SELECT operations FROM connector.apps WHERE app = 'other'),
		  ARRAY['grant', 'revoke', 'disable', 'enable', 'create_account', 'update_account', 'delete_account', 'offboard',
				'revoke_credential', 'create_entitlement', 'update_entitlement', 'delete_entitlement'],
		  'the apps view lists them by default');

-- Privileges.
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace
			  AND p.proname IN ('add_token', 'revoke_token', 'scim_session', 'scim_mapping', 'scim_accounts',
								'scim_entitlements', '_origin_client', '_filter_compile', '_filter_sql')
			  AND has_function_privilege('connector_platform', p.oid, 'EXECUTE')),
		  ARRAY['connector.scim_accounts(text,jsonb,text,bigint,integer,boolean)',
				'connector.scim_entitlements(text,jsonb,text,bigint,integer,boolean,boolean)',
				'connector.scim_mapping(text)', 'connector.scim_session(text,text)'],
		  'connector_platform: scim_session and the readers');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname::text) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace
			  AND p.proname IN ('add_token', 'revoke_token', 'scim_session', 'scim_mapping', 'scim_accounts',
								'scim_entitlements', '_origin_client', '_filter_compile', '_filter_sql')
			  AND has_function_privilege('connector_admin', p.oid, 'EXECUTE')),
		  ARRAY['add_token', 'revoke_token'], 'connector_admin: the token administration');
SELECT ok(NOT has_function_privilege('public', 'connector._origin_client(text,text)', 'EXECUTE'),
		  'no role may set the client mark');
SELECT ok(NOT has_table_privilege('connector_admin', 'connector.token', 'SELECT')
		  AND NOT has_table_privilege('connector_platform', 'connector.token', 'SELECT'), 'no role reads the token table');
SELECT ok(has_table_privilege('connector_admin', 'connector.tokens', 'SELECT')
		  AND NOT has_table_privilege('connector_platform', 'connector.tokens', 'SELECT'), 'connector_admin reads the view');
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
			WHERE p.pronamespace = 'connector'::regnamespace AND p.proname ~ '_entitlement$' AND p.proname !~ '^_'
			  AND has_function_privilege('connector_platform', p.oid, 'EXECUTE')),
		  ARRAY['connector.create_entitlement(text,text,character varying)',
				'connector.create_entitlement(text,text,character varying,text)',
				'connector.create_entitlement(text,text,jsonb,text)',
				'connector.delete_entitlement(text,text,text)',
				'connector.update_entitlement(text,text,character varying)',
				'connector.update_entitlement(text,text,character varying,text)',
				'connector.update_entitlement(text,text,jsonb,text)'],
		  'connector_platform: the entitlement writes');

\ir ../fixtures/render_check.sql
SELECT is(pg_temp.render_mismatches(), 0::bigint,
		  'the C reader renders origin.client (and a direct change''s padded origin) as the SQL expansion did');
SELECT * FROM finish();
ROLLBACK;
