-- register_app / unregister_app: every bad input of the mapping, each with its
-- exact error and a check that the catalog is exactly as before the call.
-- Most bad specs re-register the existing application "crm", so a failure
-- must also leave its previous mapping in place.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());

-- Everything register_app stores, as one value.
CREATE FUNCTION pg_temp.catalog_state() RETURNS text LANGUAGE sql AS $$
	SELECT COALESCE((SELECT string_agg(format('%s|%s|%s|%s', app, spec, registered_at, updated_at), ';' ORDER BY app)
					   FROM connector.app), '') || '/' ||
		   COALESCE((SELECT string_agg(format('%s|%s|%s', app, role, relid::oid), ';' ORDER BY app, role)
					   FROM connector.app_table), '')
$$;

-- Two tests per bad input: the exact error, and nothing stored.
CREATE FUNCTION pg_temp.refused(q text, state text, msg text, descr text)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	before text := pg_temp.catalog_state();
BEGIN
	RETURN NEXT throws_ok(q, state, msg, descr);
	RETURN NEXT is(pg_temp.catalog_state(), before, descr || ': nothing stored');
END
$$;

-- The crm spec with one value set (path as text[], value as jsonb) or removed.
CREATE FUNCTION pg_temp.spec_with(path text[], val jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_set(pg_temp.crm_spec(), path, val)
$$;
CREATE FUNCTION pg_temp.spec_without(path text[]) RETURNS jsonb LANGUAGE sql AS $$
	SELECT pg_temp.crm_spec() #- path
$$;

-- Tables of the wrong kind or shape.
CREATE VIEW public.v_users AS SELECT * FROM "Crm App".users;
CREATE MATERIALIZED VIEW public.mv_users AS SELECT * FROM "Crm App".users;
CREATE FOREIGN DATA WRAPPER regress_dummy_fdw;
CREATE SERVER regress_dummy_srv FOREIGN DATA WRAPPER regress_dummy_fdw;
CREATE FOREIGN TABLE public.f_users (id int NOT NULL, login text) SERVER regress_dummy_srv;
CREATE TEMPORARY TABLE tmp_users (id int PRIMARY KEY, login text);
CREATE SEQUENCE public.s_users;
CREATE TABLE public.acc_nullable (id int UNIQUE, n text);
CREATE TABLE public.acc_nounique (id int NOT NULL, n text);
CREATE TABLE public.acc_composite (id int NOT NULL, k int NOT NULL, n text, UNIQUE (id, k));
CREATE TABLE public.acc_partial (id int NOT NULL, n text);
CREATE UNIQUE INDEX ON public.acc_partial (id) WHERE id > 0;
CREATE TABLE public.acc_expr (id int NOT NULL, n text);
CREATE UNIQUE INDEX ON public.acc_expr ((id + 0));
CREATE TABLE public.acc_deferrable (id int NOT NULL UNIQUE DEFERRABLE, n text);
CREATE TYPE public.state AS ENUM ('on', 'off');
CREATE TABLE public.acc_ts (id int PRIMARY KEY, n text, disabled_at timestamptz, s public.state);
CREATE TABLE public.grants_text (user_id text NOT NULL, role_id int NOT NULL);

SELECT plan(218);

-- Arguments.
SELECT pg_temp.refused($$SELECT connector.register_app(NULL, pg_temp.crm_spec())$$, '22004',
	'app must not be null', 'NULL app');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', NULL)$$, '22004',
	'spec must not be null', 'NULL spec');
SELECT pg_temp.refused($$SELECT connector.register_app('', pg_temp.crm_spec())$$, '42602',
	'application name must be 1 to 63 bytes long', 'empty app name');
SELECT pg_temp.refused($$SELECT connector.register_app(repeat('a', 64), '{}')$$, '42602',
	'application name must be 1 to 63 bytes long', 'app name of 64 bytes');
SELECT pg_temp.refused($$SELECT connector.register_app(repeat('é', 32), '{}')$$, '42602',
	'application name must be 1 to 63 bytes long', 'app name of 32 characters but 64 bytes');
SELECT pg_temp.refused($$SELECT connector.unregister_app(NULL)$$, '22004',
	'app must not be null', 'unregister_app(NULL)');
SELECT pg_temp.refused($$SELECT connector.unregister_app('nope')$$, '42704',
	'application "nope" is not registered', 'unregister_app of an unknown app');

-- The spec is not an object.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', '[]')$$, '22023',
	'mapping of application "crm" must be a JSON object, not array', 'spec is an array');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', '"accounts"')$$, '22023',
	'mapping of application "crm" must be a JSON object, not string', 'spec is a string');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', '42')$$, '22023',
	'mapping of application "crm" must be a JSON object, not number', 'spec is a number');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', 'null')$$, '22023',
	'mapping of application "crm" must be a JSON object, not null', 'spec is JSON null');

-- Unknown keys, at every level.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.crm_spec() || '{"acounts": {}}')$$, '22023',
	'unknown key "acounts" in mapping', 'unknown top-level key');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,email}', '"email"'))$$, '22023',
	'unknown key "accounts.email" in mapping', 'unknown key in accounts');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,status,default}', 'true'))$$, '22023',
	'unknown key "accounts.status.default" in mapping', 'unknown key in accounts.status');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{entitlements,owner}', '"id"'))$$, '22023',
	'unknown key "entitlements.owner" in mapping', 'unknown key in entitlements');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants,valid_until}', '"valid_until"'))$$, '22023',
	'unknown key "grants.valid_until" in mapping', 'unknown key in membership grants');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants}', '{"column": "login", "expires": "x"}'))$$, '22023',
	'unknown key "grants.expires" in mapping', 'unknown key in column grants');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{credentials,secret}', '"key_hash"'))$$, '22023',
	'unknown key "credentials.secret" in mapping', 'unknown key in credentials');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{policy,max_age}', '"1 day"'))$$, '22023',
	'unknown key "policy.max_age" in mapping', 'unknown key in policy');

-- Values of the wrong JSON type.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', '{"accounts": "\"Crm App\".users"}')$$, '22023',
	'mapping key "accounts" must be a JSON object, not string', 'accounts is a string');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '7'))$$, '22023',
	'mapping key "accounts.table" must be a string, not number', 'accounts.table is a number');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,id}', '["id"]'))$$, '22023',
	'mapping key "accounts.id" must be a string, not array', 'accounts.id is an array');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,name}', '""'))$$, '22023',
	'mapping key "accounts.name" must not be empty', 'accounts.name is empty');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,status}', '"active"'))$$, '22023',
	'mapping key "accounts.status" must be a JSON object, not string', 'accounts.status is a string');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,kind}', 'null'))$$, '22023',
	'mapping key "accounts.kind" must be a string, not null', 'accounts.kind is null');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,attributes}', '"email"'))$$, '22023',
	'mapping key "accounts.attributes" must be an array of column names', 'accounts.attributes is a string');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,attributes}', '["email", 3]'))$$, '22023',
	'mapping key "accounts.attributes" must be an array of column names, found 3', 'accounts.attributes holds a number');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,attributes}', '["email", "email"]'))$$, '22023',
	'mapping key "accounts.attributes" names a column twice', 'accounts.attributes names a column twice');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{entitlements}', '[]'))$$, '22023',
	'mapping key "entitlements" must be a JSON object, not array', 'entitlements is an array');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{entitlements,privileged}', 'true'))$$, '22023',
	'mapping key "entitlements.privileged" must be a string, not boolean', 'entitlements.privileged is a boolean');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants}', '"user_roles"'))$$, '22023',
	'mapping key "grants" must be a JSON object, not string', 'grants is a string');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants}', '{"column": false}'))$$, '22023',
	'mapping key "grants.column" must be a string, not boolean', 'grants.column is a boolean');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{credentials,account}', 'null'))$$, '22023',
	'mapping key "credentials.account" must be a string, not null', 'credentials.account is null');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{policy}', '"strict"'))$$, '22023',
	'mapping key "policy" must be a JSON object, not string', 'policy is a string');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{policy,stale_after}', '30'))$$, '22023',
	'mapping key "policy.stale_after" must be a string, not number', 'policy.stale_after is a number');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.crm_spec() || '{"operations": "grant"}')$$, '22023',
	'mapping key "operations" must be an array of operation names', 'operations is a string');

-- Missing required keys.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{accounts}'))$$, '22023',
	'mapping key "accounts" is required', 'no accounts');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{accounts,table}'))$$, '22023',
	'mapping key "accounts.table" is required', 'no accounts.table');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{accounts,id}'))$$, '22023',
	'mapping key "accounts.id" is required', 'no accounts.id');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{accounts,name}'))$$, '22023',
	'mapping key "accounts.name" is required', 'no accounts.name');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{accounts,status,column}'))$$, '22023',
	'mapping key "accounts.status.column" is required', 'no accounts.status.column');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{accounts,status,disabled}'))$$, '22023',
	'mapping key "accounts.status.disabled" is required', 'no accounts.status.disabled');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{entitlements,table}'))$$, '22023',
	'mapping key "entitlements.table" is required', 'no entitlements.table');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{entitlements,id}'))$$, '22023',
	'mapping key "entitlements.id" is required', 'no entitlements.id');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{entitlements,name}'))$$, '22023',
	'mapping key "entitlements.name" is required', 'no entitlements.name');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants}', '{}'))$$, '22023',
	'mapping key "grants.table" is required', 'grants with neither table nor column');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{grants,account}'))$$, '22023',
	'mapping key "grants.account" is required', 'no grants.account');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{grants,entitlement}'))$$, '22023',
	'mapping key "grants.entitlement" is required', 'no grants.entitlement');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{credentials,id}'))$$, '22023',
	'mapping key "credentials.id" is required', 'no credentials.id');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_without('{credentials,account}'))$$, '22023',
	'mapping key "credentials.account" is required', 'no credentials.account');

-- Tables that do not exist, are not named right, or are not ordinary tables.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"\"Crm App\".nope"'))$$, '42P01',
	'table ""Crm App".nope" does not exist', 'table does not exist');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"nope.users"'))$$, '42P01',
	'table "nope.users" does not exist', 'schema does not exist');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"\"crm app\".users"'))$$, '42P01',
	'table ""crm app".users" does not exist', 'quoted identifiers are case-sensitive');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"CRM_APP.USERS"'))$$, '42P01',
	'table "CRM_APP.USERS" does not exist', 'unquoted identifiers are case-folded as in a regclass literal');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"Crm App.users"'))$$, '42602',
	'mapping key "accounts.table": "Crm App.users" is not a valid table name', 'unquoted space in a table name');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"users"'))$$, '42602',
	'mapping key "accounts.table": table name "users" is not schema-qualified', 'unqualified table name');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"pg_class"'))$$, '42602',
	'mapping key "accounts.table": table name "pg_class" is not schema-qualified', 'unqualified name of a catalog table');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"\"Crm App.users"'))$$, '42602',
	'mapping key "accounts.table": ""Crm App.users" is not a valid table name', 'unclosed double quote');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"otherdb.\"Crm App\".users"'))$$, '42602',
	'mapping key "accounts.table": "otherdb."Crm App".users" is not a valid table name', 'three-part name');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"public.v_users"'))$$, '42809',
	'"public.v_users" is not a table', 'a view');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"public.mv_users"'))$$, '42809',
	'"public.mv_users" is not a table', 'a materialized view');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"public.f_users"'))$$, '42809',
	'"public.f_users" is not a table', 'a foreign table');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"public.s_users"'))$$, '42809',
	'"public.s_users" is not a table', 'a sequence');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"pg_temp.tmp_users"'))$$, '42809',
	'"pg_temp.tmp_users" is a temporary table', 'a temporary table');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"pg_catalog.pg_authid"'))$$, '42809',
	'"pg_catalog.pg_authid" is a system table', 'a system catalog');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,table}', '"connector.app"'))$$, '42809',
	'"connector.app" is a system table', 'the connector''s own catalog');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants,table}', '"public.v_users"'))$$, '42809',
	'"public.v_users" is not a table', 'a view as the grants table');

-- Columns that do not exist.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,name}', '"Login"'))$$, '42703',
	'column "Login" of table ""Crm App".users" does not exist', 'column names are not case-folded');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,attributes}', '["email", "department name"]'))$$, '42703',
	'column "department name" of table ""Crm App".users" does not exist', 'attribute column does not exist');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,status,column}', '"enabled"'))$$, '42703',
	'column "enabled" of table ""Crm App".users" does not exist', 'status column does not exist');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{entitlements,name}', '"title"'))$$, '42703',
	'column "title" of table ""Crm App".roles" does not exist', 'entitlements.name does not exist');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants,expires}', '"expires_at"'))$$, '42703',
	'column "expires_at" of table ""Crm App".user_roles" does not exist', 'grants.expires does not exist');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants}', '{"column": "roles"}'))$$, '42703',
	'column "roles" of table ""Crm App".users" does not exist', 'grants.column does not exist');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{credentials,last_used}', '"used_at"'))$$, '42703',
	'column "used_at" of table ""Crm App".api_keys" does not exist', 'credentials.last_used does not exist');

-- id columns that cannot identify rows.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,id}', '"email"'))$$, '42P16',
	'column "email" of table ""Crm App".users" cannot identify rows', 'id neither unique nor not null');
SELECT pg_temp.refused($$SELECT connector.register_app('x', '{"accounts": {"table": "public.acc_nullable", "id": "id", "name": "n"}}')$$, '42P16',
	'column "id" of table "public.acc_nullable" cannot identify rows', 'id unique but nullable');
SELECT pg_temp.refused($$SELECT connector.register_app('x', '{"accounts": {"table": "public.acc_nounique", "id": "id", "name": "n"}}')$$, '42P16',
	'column "id" of table "public.acc_nounique" cannot identify rows', 'id not null but not unique');
SELECT pg_temp.refused($$SELECT connector.register_app('x', '{"accounts": {"table": "public.acc_composite", "id": "id", "name": "n"}}')$$, '42P16',
	'column "id" of table "public.acc_composite" cannot identify rows', 'id only part of a composite unique index');
SELECT pg_temp.refused($$SELECT connector.register_app('x', '{"accounts": {"table": "public.acc_partial", "id": "id", "name": "n"}}')$$, '42P16',
	'column "id" of table "public.acc_partial" cannot identify rows', 'id under a partial unique index only');
SELECT pg_temp.refused($$SELECT connector.register_app('x', '{"accounts": {"table": "public.acc_expr", "id": "id", "name": "n"}}')$$, '42P16',
	'column "id" of table "public.acc_expr" cannot identify rows', 'id under an expression unique index only');
SELECT pg_temp.refused($$SELECT connector.register_app('x', '{"accounts": {"table": "public.acc_deferrable", "id": "id", "name": "n"}}')$$, '42P16',
	'column "id" of table "public.acc_deferrable" cannot identify rows', 'id under a deferrable unique constraint only');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{entitlements,id}', '"description"'))$$, '42P16',
	'column "description" of table ""Crm App".roles" cannot identify rows', 'entitlements.id not unique');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{credentials,id}', '"user_id"'))$$, '42P16',
	'column "user_id" of table ""Crm App".api_keys" cannot identify rows', 'credentials.id not unique');

-- Columns whose types do not fit.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants,table}', '"public.grants_text"'))$$, '42804',
	'mapping key "grants.account" has type text, but "accounts.id" has type integer', 'grants.account type differs from accounts.id');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants,entitlement}', '"valid_until"'))$$, '42804',
	'mapping key "grants.entitlement" has type timestamp with time zone, but "entitlements.id" has type integer', 'grants.entitlement type differs from entitlements.id');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{credentials,account}', '"key_hash"'))$$, '42804',
	'mapping key "credentials.account" has type text, but "accounts.id" has type integer', 'credentials.account type differs from accounts.id');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,owner}', '"email"'))$$, '42804',
	'mapping key "accounts.owner" has type text, but "accounts.id" has type integer', 'owner type differs from accounts.id');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants}', '{"column": "login"}'))$$, '42804',
	'mapping key "grants.column" has type text, but "entitlements.id" has type integer', 'grants.column type differs from entitlements.id');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{entitlements,privileged}', '"description"'))$$, '42804',
	'mapping key "entitlements.privileged" names a column of type text, not boolean', 'privileged not boolean');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{grants,expires}', '"role_id"'))$$, '42804',
	'mapping key "grants.expires" names a column of type integer, not a timestamp', 'grants.expires not a timestamp');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{credentials,created}', '"key_hash"'))$$, '42804',
	'mapping key "credentials.created" names a column of type text, not a timestamp', 'credentials.created not a timestamp');

-- Status shapes that do not fit the column.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,status}', '{"column": "active", "enabled": "yes", "disabled": "no"}'))$$, '22023',
	'mapping keys "accounts.status.enabled" and "accounts.status.disabled" must be opposite booleans for boolean column "active"', 'boolean column, string values');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,status}', '{"column": "active", "enabled": true, "disabled": true}'))$$, '22023',
	'mapping keys "accounts.status.enabled" and "accounts.status.disabled" must be opposite booleans for boolean column "active"', 'boolean column, equal values');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,status}', '{"column": "active", "disabled": false}'))$$, '22023',
	'mapping keys "accounts.status.enabled" and "accounts.status.disabled" must be opposite booleans for boolean column "active"', 'boolean column, no enabled value');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,status}', '{"column": "account_type", "enabled": "human", "disabled": "human"}'))$$, '22023',
	'mapping keys "accounts.status.enabled" and "accounts.status.disabled" must be two different strings for text column "account_type"', 'text column, equal values');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,status}', '{"column": "account_type", "enabled": true, "disabled": false}'))$$, '22023',
	'mapping keys "accounts.status.enabled" and "accounts.status.disabled" must be two different strings for text column "account_type"', 'text column, boolean values');
SELECT pg_temp.refused($$SELECT connector.register_app('x', '{"accounts": {"table": "public.acc_ts", "id": "id", "name": "n", "status": {"column": "disabled_at", "enabled": "enabled", "disabled": "timestamp"}}}')$$, '22023',
	'mapping key "accounts.status.disabled" must be "timestamp" (and "enabled" absent) for timestamp column "disabled_at"', 'timestamp column with an enabled value');
SELECT pg_temp.refused($$SELECT connector.register_app('x', '{"accounts": {"table": "public.acc_ts", "id": "id", "name": "n", "status": {"column": "disabled_at", "disabled": "now"}}}')$$, '22023',
	'mapping key "accounts.status.disabled" must be "timestamp" (and "enabled" absent) for timestamp column "disabled_at"', 'timestamp column, disabled not "timestamp"');
SELECT pg_temp.refused($$SELECT connector.register_app('x', '{"accounts": {"table": "public.acc_ts", "id": "id", "name": "n", "status": {"column": "s", "enabled": "on", "disabled": "paused"}}}')$$, '22023',
	'mapping key "accounts.status.disabled": "paused" is not a valid public.state', 'enum column, value not in the enum');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{accounts,status}', '{"column": "id", "enabled": "1", "disabled": "0"}'))$$, '42804',
	'mapping key "accounts.status.column" names a column of type integer', 'status column of an unsupported type');

-- Policy and operations.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{policy,stale_after}', '"a month or so"'))$$, '22023',
	'mapping key "policy.stale_after": "a month or so" is not a valid interval', 'policy interval does not parse');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{policy,max_credential_age}', '"-90 days"'))$$, '22023',
	'mapping key "policy.max_credential_age" must be a positive interval', 'negative policy interval');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.crm_spec() || '{"operations": ["grant", "drop_table"]}')$$, '22023',
	'mapping key "operations" contains unknown operation "drop_table"', 'unknown operation');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.crm_spec() || '{"operations": [1]}')$$, '22023',
	'mapping key "operations" contains unknown operation 1', 'operation that is not a string');

-- One table in two sections; a table of another application.
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{entitlements}', '{"table": "\"Crm App\".users", "id": "id", "name": "login"}'))$$, '22023',
	'table ""Crm App".users" is mapped by both "accounts.table" and "entitlements.table"', 'accounts table also as entitlements');
SELECT pg_temp.refused($$SELECT connector.register_app('crm', pg_temp.spec_with('{credentials}', '{"table": "\"Crm App\".roles", "id": "id", "account": "id"}'))$$, '22023',
	'table ""Crm App".roles" is mapped by both "entitlements.table" and "credentials.table"', 'entitlements table also as credentials');
SELECT pg_temp.refused($$SELECT connector.register_app('other', '{"accounts": {"table": "\"Crm App\".users", "id": "id", "name": "login"}}')$$, '42710',
	'table ""Crm App".users" is already mapped by application "crm"', 'table already mapped by another application');
SELECT pg_temp.refused($$SELECT connector.register_app('other', '{"accounts": {"table": "public.acc_ts", "id": "id", "name": "n"}, "grants": {"table": "\"Crm App\".user_roles", "account": "user_id", "entitlement": "role_id"}}')$$, '42710',
	'table ""Crm App".user_roles" is already mapped by application "crm"', 'grants table already mapped by another application');

-- The failures above left crm's mapping exactly as registered.
SELECT is((SELECT spec FROM connector.app WHERE app = 'crm'), pg_temp.crm_spec(), 'crm keeps its mapping');
SELECT is((SELECT count(*) FROM connector.app), 1::bigint, 'no other application was stored');

SELECT * FROM finish();
ROLLBACK;
