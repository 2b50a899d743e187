-- unregister_app and DROP EXTENSION leave nothing behind.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT plan(14);

SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT connector.unregister_app('crm');
SELECT is((SELECT count(*) FROM connector.app), 0::bigint, 'unregister_app leaves no app row');
SELECT is((SELECT count(*) FROM connector.app_table), 0::bigint, 'unregister_app leaves no app_table row');
SELECT is((SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal
			AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = '"Crm App"'::regnamespace)),
		  0::bigint, 'unregister_app leaves no trigger on the application tables');
SELECT lives_ok($$SELECT connector.register_app('crm', pg_temp.crm_spec())$$, 'the app can be registered again');

-- DROP EXTENSION with an application still registered, as a DBA would.
SELECT lives_ok($$DROP EXTENSION connector$$, 'DROP EXTENSION succeeds with an application registered');
-- PostgreSQL creates the control file's schema before the extension exists, so
-- it is not a member: DROP EXTENSION leaves it, empty (documented, with
-- DROP SCHEMA connector to finish the job).
SELECT has_schema('connector', 'the control file''s schema stays, as documented');
SELECT is((SELECT count(*) FROM pg_extension WHERE extname = 'connector'), 0::bigint, 'the extension is gone');
SELECT is((SELECT count(*) FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'connector')),
		  0::bigint, 'no table, view or sequence is left in schema connector');
SELECT is((SELECT count(*) FROM pg_proc WHERE pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'connector')),
		  0::bigint, 'no function is left in schema connector');
SELECT is((SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal
			AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = '"Crm App"'::regnamespace)),
		  0::bigint, 'no trigger is left on the application tables');
SELECT is((SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'connector%'), 0::bigint,
		  'no event trigger is left');
SELECT lives_ok($$DROP SCHEMA connector$$, 'the schema is empty: DROP SCHEMA without CASCADE removes it');
SELECT is((SELECT count(*) FROM "Crm App".users), 4::bigint, 'the application data is untouched');
-- Roles are cluster-wide and documented to stay (other databases may use them).
SELECT has_role('connector_platform', 'the roles stay, as documented');

SELECT * FROM finish();
ROLLBACK;
