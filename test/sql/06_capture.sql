-- Change capture: events for every change to mapped tables, origin, cursor.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(40);

-- Triggers are installed, ENABLE ALWAYS.
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'connector_capture%' AND tgenabled = 'A'),
		  8::bigint, 'two capture triggers on each of the four tables, enabled always');

CREATE FUNCTION pg_temp.types(after bigint) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(event->>'type' ORDER BY position), '{}') FROM connector.changes('crm', after)
$$;
CREATE FUNCTION pg_temp.last_pos() RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce(max(position), 0) FROM connector.changes('crm', 0, 100000)
$$;
SELECT is(pg_temp.types(0), '{}', 'registering produces no event');

-- Membership insert/delete/move.
INSERT INTO "Crm App".user_roles VALUES (2, 7, NULL);
SELECT is(pg_temp.types(0), ARRAY['access.granted'], 'membership insert: access.granted');
SELECT is((SELECT (event #> '{data}') - 'position'::text - 'txid'::text - 'origin'::text FROM connector.changes('crm') LIMIT 1),
		  '{"app": "crm", "account": {"id": "2", "name": "bob", "kind": "human"},
			"entitlement": {"id": "7", "name": "db-admin"},
			"before": null, "after": {"user_id": 2, "role_id": 7, "valid_until": null}, "expires_at": null}'::jsonb,
		  'access.granted payload: account and entitlement named, mapped columns only');
SELECT is((SELECT event #>> '{data,origin,via}' FROM connector.changes('crm') LIMIT 1), 'direct',
		  'direct DML has origin.via = direct');
SELECT is((SELECT event #>> '{data,origin,db_user}' FROM connector.changes('crm') LIMIT 1), current_user::text,
		  'origin names the database user');
SELECT ok((SELECT event->>'id' FROM connector.changes('crm') LIMIT 1) ~ '^evt_[0-9]+_[0-9]+$', 'event id');
SELECT ok((SELECT event->>'timestamp' FROM connector.changes('crm') LIMIT 1) ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$',
		  'timestamp in RFC 3339 UTC with microseconds');

-- Two statements, one outbox row: each event has its own statement's time
-- (the outbox stores the first as the row's occurred_at).
SELECT pg_temp.last_pos() AS p \gset
INSERT INTO "Crm App".user_roles VALUES (9, 1, NULL)
RETURNING to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t1 \gset
SELECT pg_sleep(0.001);
INSERT INTO "Crm App".user_roles VALUES (9, 2, NULL)
RETURNING to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t2 \gset
SELECT is(ARRAY(SELECT event->>'timestamp' FROM connector.changes('crm', :p) ORDER BY position),
		  ARRAY[:'t1', :'t2'], 'each event carries the time of its own statement');
SELECT is((SELECT n FROM connector.outbox WHERE position = :p + 1), 2, 'both events are in one outbox row');
DELETE FROM "Crm App".user_roles WHERE user_id = 9;

SELECT pg_temp.last_pos() AS p \gset
UPDATE "Crm App".user_roles SET role_id = 2 WHERE user_id = 2 AND role_id = 7;
SELECT is(pg_temp.types(:p), ARRAY['access.revoked', 'access.granted'], 'moving a membership row: revoke plus grant');
SELECT pg_temp.last_pos() AS p \gset
DELETE FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 2 AND ctid = (SELECT min(ctid) FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 2);
SELECT is(pg_temp.types(:p), ARRAY['access.revoked'], 'membership delete: access.revoked');

-- Accounts: status, attributes, unmapped columns.
SELECT pg_temp.last_pos() AS p \gset
UPDATE "Crm App".users SET active = false WHERE id = 2;
SELECT is(pg_temp.types(:p), ARRAY['account.disabled'], 'status change: account.disabled');
SELECT pg_temp.last_pos() AS p \gset
UPDATE "Crm App".users SET active = true, email = 'b@example.com' WHERE id = 2;
SELECT is(pg_temp.types(:p), ARRAY['account.enabled', 'account.updated'], 'enable plus attribute change');
SELECT pg_temp.last_pos() AS p \gset
UPDATE "Crm App".users SET password_hash = 'new' WHERE id = 2;
SELECT is(pg_temp.types(:p), '{}', 'an update of unmapped columns only: no event');
SELECT ok(NOT EXISTS (SELECT 1 FROM connector.outbox WHERE events LIKE '%password%'
					  OR events LIKE '%key_hash%' OR events LIKE '%h1%'),
		  'unmapped columns are never read into events');
SELECT pg_temp.last_pos() AS p \gset
INSERT INTO "Crm App".users (id, login, email, "Department Name") VALUES (20, 'dave "the \ quoter" ''ü''', 'd@example.com', repeat('x', 10000));
SELECT is(pg_temp.types(:p), ARRAY['account.created'], 'insert: account.created');
SELECT is((SELECT event #>> '{data,after,login}' FROM connector.changes('crm', :p)), 'dave "the \ quoter" ''ü''',
		  'quotes, backslashes and non-ASCII survive');
SELECT is((SELECT length(event #>> '{data,after,Department Name}') FROM connector.changes('crm', :p)), 10000,
		  'a 10 kB attribute is carried whole');

-- Cascaded deletes produce their own events.
SELECT pg_temp.last_pos() AS p \gset
DELETE FROM "Crm App".users WHERE id = 10;
SELECT is(pg_temp.types(:p), ARRAY['account.deleted', 'access.revoked', 'credential.deleted'],
		  'deleting an account: its cascaded memberships and keys have their own events');

-- Credentials.
SELECT pg_temp.last_pos() AS p \gset
UPDATE "Crm App".api_keys SET last_used_at = now() WHERE id = 101;
SELECT is(pg_temp.types(:p), '{}', 'last use alone is telemetry, not an event');
UPDATE "Crm App".api_keys SET revoked_at = now() WHERE id = 101;
SELECT is(pg_temp.types(:p), ARRAY['credential.revoked'], 'credential.revoked');

-- Entitlements.
SELECT pg_temp.last_pos() AS p \gset
INSERT INTO "Crm App".roles VALUES (8, 'auditor', false, NULL);
UPDATE "Crm App".roles SET description = 'reads logs' WHERE id = 8;
SELECT is(pg_temp.types(:p), ARRAY['entitlement.created', 'entitlement.updated'], 'entitlement events');

-- Rolled back work leaves no event, also in a subtransaction.
SELECT pg_temp.last_pos() AS p \gset
SAVEPOINT s1;
INSERT INTO "Crm App".user_roles VALUES (1, 2, NULL);
ROLLBACK TO SAVEPOINT s1;
SELECT is(pg_temp.types(:p), '{}', 'a rolled-back subtransaction leaves no event');

-- TRUNCATE: the same events as deleting every row.
SELECT pg_temp.last_pos() AS p \gset
TRUNCATE "Crm App".user_roles;
SELECT is(pg_temp.types(:p), ARRAY['access.revoked', 'access.revoked', 'access.revoked'], 'TRUNCATE revokes every membership');

-- session_replication_role = replica does not bypass capture.
SELECT pg_temp.last_pos() AS p \gset
SET LOCAL session_replication_role = replica;
INSERT INTO "Crm App".user_roles VALUES (1, 2, NULL);
RESET session_replication_role;
SELECT is(pg_temp.types(:p), ARRAY['access.granted'], 'replica mode is captured');

-- COPY and multi-row statements.
SELECT pg_temp.last_pos() AS p \gset
COPY "Crm App".user_roles FROM stdin;
2	1	\N
2	2	2030-01-01 00:00:00+00
\.
SELECT is(pg_temp.types(:p), ARRAY['access.granted', 'access.granted'], 'COPY is captured row by row');
SELECT is((SELECT (event #>> '{data,expires_at}')::timestamptz FROM connector.changes('crm', :p) ORDER BY position DESC LIMIT 1),
		  '2030-01-01 00:00:00+00'::timestamptz, 'expires_at is carried');

-- Origin cannot be forged by a GUC or by calling the internal function.
CREATE ROLE regress_app;
GRANT USAGE ON SCHEMA "Crm App" TO regress_app;
GRANT ALL ON ALL TABLES IN SCHEMA "Crm App" TO regress_app;
SET ROLE regress_app;
SELECT throws_ok($$SELECT connector._origin_begin('platform', 'grant', 'r1')$$, '42501', NULL,
				 'the internal origin function is not callable');
SELECT throws_ok($$SET connector.origin = 'platform'$$, '42602', NULL, 'no connector.* GUC can be invented');
INSERT INTO "Crm App".user_roles VALUES (9, 1, NULL);
SELECT throws_ok($$SELECT * FROM connector.outbox$$, '42501', NULL, 'the application cannot read the outbox');
SELECT throws_ok($$INSERT INTO connector.outbox (txid, seq, app, type, occurred_at, origin) VALUES ('1', 1, 'crm', 'access.granted', now(), '{}')$$,
				 '42501', NULL, 'the application cannot write the outbox');
RESET ROLE;
SELECT is((SELECT event #>> '{data,origin,via}' || '/' || (event #>> '{data,origin,db_user}')
			 FROM connector.changes('crm', 0, 100000) ORDER BY position DESC LIMIT 1),
		  'direct/regress_app', 'the application''s DML is direct, under its own user');

-- Platform writes are marked as such; a failed platform call leaves no mark.
CREATE ROLE regress_okta IN ROLE connector_platform;
SET ROLE regress_okta;
SELECT pg_temp.last_pos() AS p \gset
SELECT is(connector.grant('crm', '2', '8', 'req-42'), 'granted', 'the platform grants');
RESET ROLE;
SELECT is((SELECT (event->'data'->'origin') - 'session_user'::text - 'application_name'::text - 'client_addr'::text
			 FROM connector.changes('crm', :p)),
		  '{"via": "platform", "operation": "grant", "request_id": "req-42", "db_user": "regress_okta"}'::jsonb,
		  'a platform grant: via platform, with operation, request id and the calling role');
SELECT pg_temp.last_pos() AS p \gset
SELECT throws_ok($$SELECT connector.grant('crm', '2', '999')$$, 'P0002', NULL, 'a platform call fails half-way');
INSERT INTO "Crm App".user_roles VALUES (1, 1, NULL);
SELECT is((SELECT string_agg(event #>> '{data,origin,via}', ',') FROM connector.changes('crm', :p)), 'direct',
		  'after a failed platform call, direct DML is still direct');

-- The outbox stores a type as its number in a list that src/capture_outbox.c and
-- connector._event_type share: each type of spec section 6 reads back as
-- written, and so does one not in the list.
SELECT pg_temp.last_pos() AS p \gset
SELECT connector._emit('crm', t, '{}') FROM unnest(ARRAY[
	'account.created', 'account.updated', 'account.disabled', 'account.enabled', 'account.deleted',
	'access.granted', 'access.revoked', 'entitlement.created', 'entitlement.updated',
	'entitlement.deleted', 'credential.created', 'credential.updated', 'credential.revoked',
	'credential.deleted', 'capture.tampered', 'some.future_type']) t;
SELECT is(pg_temp.types(:p), ARRAY[
	'account.created', 'account.updated', 'account.disabled', 'account.enabled', 'account.deleted',
	'access.granted', 'access.revoked', 'entitlement.created', 'entitlement.updated',
	'entitlement.deleted', 'credential.created', 'credential.updated', 'credential.revoked',
	'credential.deleted', 'capture.tampered', 'some.future_type'], 'every event type reads back as written');

-- unregister_app removes the triggers and keeps history.
SELECT connector.unregister_app('crm');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'connector_capture%'), 0::bigint,
		  'unregister removes every capture trigger');

\ir ../fixtures/render_check.sql
SELECT is(pg_temp.render_mismatches(), 0::bigint, 'the C reader renders every event and body as the SQL expansion did');
SELECT * FROM finish();
ROLLBACK;
