-- register_app / unregister_app on every mapping shape.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT plan(16);

SELECT lives_ok($$SELECT connector.register_app('crm', pg_temp.crm_spec())$$, 'full mapping registers');
SELECT is((SELECT tables FROM connector.apps WHERE app = 'crm'),
		  '{"accounts": "\"Crm App\".users", "entitlements": "\"Crm App\".roles", "grants": "\"Crm App\".user_roles", "credentials": "\"Crm App\".api_keys"}'::jsonb,
		  'apps lists the mapped tables');
SELECT is((SELECT operations FROM connector.apps WHERE app = 'crm'),
		  ARRAY['grant', 'revoke', 'disable', 'enable', 'create_account', 'update_account',
				'delete_account', 'offboard', 'revoke_credential', 'create_entitlement',
				'update_entitlement', 'delete_entitlement'],
		  'operations default to all');

-- Re-registering replaces the mapping.
SELECT lives_ok($$SELECT connector.register_app('crm', pg_temp.crm_spec() - 'credentials' || '{"operations": []}')$$,
				're-registering replaces the mapping');
SELECT is((SELECT tables ? 'credentials' FROM connector.apps WHERE app = 'crm'), false, 'the old table set is replaced');
SELECT is((SELECT operations FROM connector.apps WHERE app = 'crm'), '{}'::text[], 'read-only mapping');

-- Text/enum status, nullable timestamp status, array and scalar grant columns.
CREATE TYPE public.state AS ENUM ('on', 'off');
CREATE TABLE public.arr_acc (id uuid PRIMARY KEY, "User Name" text, st text, roles text[]);
CREATE TABLE public."Ünïcode Tåble" (id bigint PRIMARY KEY, n text, disabled_at timestamptz, role text);
CREATE TABLE public.enum_acc (id text PRIMARY KEY, n text, s public.state);
SELECT lives_ok($$SELECT connector.register_app('arr', '{"accounts": {"table": "public.arr_acc", "id": "id", "name": "User Name",
	"status": {"column": "st", "enabled": "active", "disabled": "locked"}}, "grants": {"column": "roles"}}')$$,
	'text status and array grants');
SELECT lives_ok($$SELECT connector.register_app('ts', '{"accounts": {"table": "public.\"Ünïcode Tåble\"", "id": "id", "name": "n",
	"status": {"column": "disabled_at", "disabled": "timestamp"}}, "grants": {"column": "role"}}')$$,
	'timestamp status, scalar grants, non-ASCII table name');
SELECT lives_ok($$SELECT connector.register_app('en', '{"accounts": {"table": "public.enum_acc", "id": "id", "name": "n",
	"status": {"column": "s", "enabled": "on", "disabled": "off"}}}')$$,
	'enum status');
SELECT is((SELECT grants_shape FROM connector.apps WHERE app = 'arr'), 'column', 'array grants are column-shaped');

-- Partitioned tables are accepted.
CREATE TABLE public.part_acc (id int PRIMARY KEY, n text) PARTITION BY RANGE (id);
CREATE TABLE public.part_acc_1 PARTITION OF public.part_acc FOR VALUES FROM (0) TO (1000);
SELECT lives_ok($$SELECT connector.register_app('part', '{"accounts": {"table": "public.part_acc", "id": "id", "name": "n"}}')$$,
	'partitioned table');

-- unregister_app removes the mapping.
SELECT lives_ok($$SELECT connector.unregister_app('part')$$, 'unregister');
SELECT is((SELECT count(*) FROM connector.apps WHERE app = 'part'), 0::bigint, 'the mapping is gone');
SELECT is((SELECT count(*) FROM connector.app_table WHERE app = 'part'), 0::bigint, 'its tables are gone');
SELECT throws_ok($$SELECT connector.unregister_app('part')$$, '42704',
				 'application "part" is not registered', 'unregister twice: undefined_object');

-- The catalog survives pg_dump: both tables are extension configuration.
SELECT is((SELECT array_length(extconfig, 1) FROM pg_extension WHERE extname = 'connector') >= 2, true,
		  'catalog tables are marked for pg_dump');

SELECT * FROM finish();
ROLLBACK;
