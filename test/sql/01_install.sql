-- Installation: schema, roles, privileges, GUCs.
BEGIN;
CREATE EXTENSION connector;
SELECT plan(13);

SELECT has_schema('connector');
SELECT has_role('connector_admin');
SELECT has_role('connector_platform');
SELECT ok(NOT rolcanlogin, 'connector_admin is NOLOGIN') FROM pg_roles WHERE rolname = 'connector_admin';
SELECT ok(NOT rolcanlogin, 'connector_platform is NOLOGIN') FROM pg_roles WHERE rolname = 'connector_platform';

SELECT is(
	(SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	  WHERE n.nspname = 'connector' AND has_function_privilege('public', p.oid, 'EXECUTE')
		AND p.oid <> 'connector.capture()'::regprocedure),
	0::bigint, 'PUBLIC can execute no connector function but the capture trigger''s');
SELECT ok(has_function_privilege('public', 'connector.capture()', 'EXECUTE'),
		  'table owners can add partitions to mapped tables (the capture trigger is cloned)');

SELECT is(
	(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE n.nspname = 'connector' AND c.relkind IN ('r', 'v', 'p', 'S')
		AND (has_table_privilege('public', c.oid, 'SELECT')
			 OR has_table_privilege('public', c.oid, 'INSERT'))),
	0::bigint, 'PUBLIC can read or write no connector table or view');

-- Every function executable by a connector role is SECURITY DEFINER with a pinned search_path.
SELECT is(
	(SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	  WHERE n.nspname = 'connector'
		AND (has_function_privilege('connector_admin', p.oid, 'EXECUTE')
			 OR has_function_privilege('connector_platform', p.oid, 'EXECUTE'))
		AND p.oid <> 'connector.capture()'::regprocedure
		AND NOT (p.prosecdef AND 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig))),
	NULL, 'every API function is SECURITY DEFINER with search_path = pg_catalog, pg_temp');

SELECT is(
	(SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	  WHERE n.nspname = 'connector' AND p.proname LIKE '\_%'
		AND (has_function_privilege('connector_admin', p.oid, 'EXECUTE')
			 OR has_function_privilege('connector_platform', p.oid, 'EXECUTE'))),
	0::bigint, 'internal functions are not executable by the connector roles');

SELECT is(current_setting('connector.databases'), '*', 'connector.databases defaults to *');
SELECT is(
	(SELECT array_agg(name || '=' || setting || coalesce(unit, '') ORDER BY name) FROM pg_settings
	  WHERE name IN ('connector.naptime', 'connector.max_in_flight', 'connector.http_timeout',
					 'connector.retry_base', 'connector.retry_max', 'connector.max_attempts',
					 'connector.retention', 'connector.allow_private_targets')),
	ARRAY['connector.allow_private_targets=off', 'connector.http_timeout=15000ms',
		  'connector.max_attempts=10', 'connector.max_in_flight=16', 'connector.naptime=1000ms',
		  'connector.retention=604800s', 'connector.retry_base=1000ms', 'connector.retry_max=600000ms'],
	'GUC defaults and units are those of the spec');
SELECT throws_ok($$SET connector.no_such_setting = 1$$, '42602', NULL,
				 'the connector.* prefix is reserved');

SELECT * FROM finish();
ROLLBACK;
