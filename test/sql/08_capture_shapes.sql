-- Capture on the other mapping shapes: array and scalar grant columns,
-- text and timestamp status, partitioned tables, id changes, NULLs.
BEGIN;
CREATE EXTENSION connector;
SELECT plan(18);

CREATE SCHEMA app;
CREATE TABLE app.roles (code text PRIMARY KEY, label text NOT NULL);
INSERT INTO app.roles VALUES ('r', 'reader'), ('w', 'writer'), ('a', 'admin');
CREATE TABLE app.people (id uuid PRIMARY KEY, "Full Name" text NOT NULL, state text, roles text[]);
SELECT connector.register_app('arr', '{
	"accounts": {"table": "app.people", "id": "id", "name": "Full Name",
				 "status": {"column": "state", "enabled": "active", "disabled": "locked"}},
	"entitlements": {"table": "app.roles", "id": "code", "name": "label"},
	"grants": {"column": "roles"}}');
CREATE FUNCTION pg_temp.events(p_app text, after bigint) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(concat_ws(':', event->>'type', event #>> '{data,entitlement,id}', event #>> '{data,entitlement,name}')
							  ORDER BY position), '{}')
	  FROM connector.changes(p_app, after, 100000)
$$;
-- The highest position sealed so far, over every application.
CREATE FUNCTION pg_temp.last_pos() RETURNS bigint LANGUAGE sql AS $$
	SELECT connector._seal();
	SELECT last_position FROM connector.seal_state;
$$;

INSERT INTO app.people VALUES ('00000000-0000-0000-0000-000000000001', 'Ann', 'active', '{r,w}');
SELECT is(pg_temp.events('arr', 0), ARRAY['account.created', 'access.granted:r:reader', 'access.granted:w:writer'],
		  'array column: one access.granted per element, entitlement named');
SELECT pg_temp.last_pos() AS p \gset
UPDATE app.people SET roles = '{w,a,a}' WHERE "Full Name" = 'Ann';
SELECT is(pg_temp.events('arr', :p), ARRAY['access.revoked:r:reader', 'access.granted:a:admin'],
		  'array change: revoke removed elements, grant added ones, duplicates once');
SELECT pg_temp.last_pos() AS p \gset
UPDATE app.people SET state = 'locked' WHERE "Full Name" = 'Ann';
SELECT is(pg_temp.events('arr', :p), ARRAY['account.disabled'], 'text status: account.disabled');
SELECT pg_temp.last_pos() AS p \gset
UPDATE app.people SET state = NULL WHERE "Full Name" = 'Ann';
SELECT is(pg_temp.events('arr', :p), ARRAY['account.updated'], 'NULL status stays disabled; the change is an update');
SELECT is((SELECT event #> '{data,after,state}' FROM connector.changes('arr', :p)), 'null'::jsonb, 'NULL is carried as JSON null');
SELECT pg_temp.last_pos() AS p \gset
UPDATE app.people SET id = '00000000-0000-0000-0000-000000000002' WHERE "Full Name" = 'Ann';
SELECT is((SELECT event #>> '{data,before,id}' || ' -> ' || (event #>> '{data,after,id}') FROM connector.changes('arr', :p)),
		  '00000000-0000-0000-0000-000000000001 -> 00000000-0000-0000-0000-000000000002',
		  'an id change is an account.updated with both ids');
SELECT pg_temp.last_pos() AS p \gset
DELETE FROM app.people;
SELECT is(pg_temp.events('arr', :p), ARRAY['access.revoked:w:writer', 'access.revoked:a:admin', 'account.deleted'],
		  'deleting the account revokes what the row held, then deletes');

-- Scalar column, timestamp status, partitioned accounts table.
CREATE TABLE app.staff (id bigint PRIMARY KEY, login text NOT NULL, disabled_at timestamptz, role text)
	PARTITION BY RANGE (id);
CREATE TABLE app.staff_low PARTITION OF app.staff FOR VALUES FROM (0) TO (1000);
CREATE TABLE app.staff_high PARTITION OF app.staff FOR VALUES FROM (1000) TO (MAXVALUE);
SELECT connector.register_app('sc', '{
	"accounts": {"table": "app.staff", "id": "id", "name": "login",
				 "status": {"column": "disabled_at", "disabled": "timestamp"}},
	"grants": {"column": "role"}}');
INSERT INTO app.staff VALUES (1, 'low', NULL, 'r'), (5000, 'high', NULL, NULL);
SELECT is(pg_temp.events('sc', 0), ARRAY['account.created', 'access.granted:r', 'account.created'],
		  'partitioned table: rows in every partition are captured');
SELECT pg_temp.last_pos() AS p \gset
UPDATE app.staff SET role = 'w' WHERE id = 1;
SELECT is((SELECT array_agg(event->>'type' || ':' || (event #>> '{data,entitlement,id}') ORDER BY position) FROM connector.changes('sc', :p)),
		  ARRAY['access.revoked:r', 'access.granted:w'], 'scalar column: a grant replaces the previous value');
SELECT pg_temp.last_pos() AS p \gset
UPDATE app.staff SET disabled_at = now() WHERE id = 5000;
UPDATE app.staff SET id = 7 WHERE id = 5000;
SELECT is((SELECT array_agg(event->>'type' ORDER BY position) FROM connector.changes('sc', :p)),
		  ARRAY['account.disabled', 'account.deleted', 'account.created'],
		  'timestamp status disables; moving a row across partitions is a delete plus an insert');
SELECT pg_temp.last_pos() AS p \gset
TRUNCATE app.staff;
SELECT is((SELECT count(*) FROM connector.changes('sc', :p) WHERE event->>'type' = 'account.deleted'), 2::bigint,
		  'TRUNCATE of a partitioned table deletes the rows of every partition');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgname = 'connector_capture' AND tgenabled = 'A'
			 AND tgrelid IN ('app.staff_low'::regclass, 'app.staff_high'::regclass)), 2::bigint,
		  'partitions inherit the capture trigger, enabled always');

-- Partitioned accounts and entitlements tables, named through a membership
-- table, for a role that may not read them.
CREATE TABLE app.pusers (id int PRIMARY KEY, login text NOT NULL, kind text) PARTITION BY RANGE (id);
CREATE TABLE app.pusers_1 PARTITION OF app.pusers FOR VALUES FROM (0) TO (100);
CREATE TABLE app.pusers_2 PARTITION OF app.pusers FOR VALUES FROM (100) TO (MAXVALUE);
CREATE TABLE app.proles (code text PRIMARY KEY, label text NOT NULL) PARTITION BY LIST (code);
CREATE TABLE app.proles_a PARTITION OF app.proles FOR VALUES IN ('a');
CREATE TABLE app.proles_b PARTITION OF app.proles DEFAULT;
CREATE TABLE app.pmemb (user_id int NOT NULL, role text NOT NULL);
INSERT INTO app.pusers VALUES (1, 'one', 'human'), (150, 'one-fifty', 'service');
INSERT INTO app.proles VALUES ('a', 'Admin'), ('b', 'Reader');
SELECT connector.register_app('pn', '{
	"accounts": {"table": "app.pusers", "id": "id", "name": "login", "kind": "kind"},
	"entitlements": {"table": "app.proles", "id": "code", "name": "label"},
	"grants": {"table": "app.pmemb", "account": "user_id", "entitlement": "role"}}');
CREATE ROLE regress_pn_app;
GRANT USAGE ON SCHEMA app TO regress_pn_app;
GRANT INSERT ON app.pmemb TO regress_pn_app;
SET ROLE regress_pn_app;
INSERT INTO app.pmemb VALUES (1, 'a'), (150, 'b'), (999, 'zz');
RESET ROLE;
SELECT is((SELECT array_agg(concat_ws(':', event #>> '{data,account,id}', event #>> '{data,account,name}',
									   event #>> '{data,account,kind}', event #>> '{data,entitlement,name}')
							ORDER BY position) FROM connector.changes('pn', 0)),
		  ARRAY['1:one:human:Admin', '150:one-fifty:service:Reader', '999'],
		  'partitioned name tables: each grant names its account and entitlement from their partitions');

-- A remapping takes effect for the next statement of the same session.
SELECT pg_temp.last_pos() AS p \gset
SELECT connector.register_app('sc', '{
	"accounts": {"table": "app.staff", "id": "id", "name": "login", "kind": "role"}}');
INSERT INTO app.staff VALUES (2, 'svc', NULL, 'service');
SELECT is((SELECT event #>> '{data,account,kind}' FROM connector.changes('sc', :p)), 'service',
		  'a new mapping is used at once (cached mapping invalidated)');
SELECT is((SELECT event #>> '{data,origin,via}' FROM connector.changes('sc', :p)), 'direct', 'origin is direct');

-- Another application's events in between do not hide the next one.
SELECT pg_temp.last_pos() AS p \gset
INSERT INTO app.staff SELECT g, 'bulk-' || g, NULL, NULL FROM generate_series(100, 104) g;
SELECT pg_temp.last_pos() AS q \gset
INSERT INTO app.people VALUES ('00000000-0000-0000-0000-000000000009', 'Zoe', 'active', '{}');
SELECT is((SELECT event #>> '{data,account,name}' FROM connector.changes('arr', :p, 1)), 'Zoe',
		  'a page of one skips the positions of another application');
SELECT ok((SELECT min(position) FROM connector.changes('arr', :p, 1)) > :q, 'at its own position');

\ir ../fixtures/render_check.sql
SELECT is(pg_temp.render_mismatches(), 0::bigint, 'the C reader renders every event and body as the SQL expansion did');
SELECT * FROM finish();
ROLLBACK;
