-- expire_grants(): time-bound grants end by themselves, through the write
-- path with origin "expiry", on a mapped expires column and on grant_expiry.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SELECT plan(16);

-- now() is the transaction's start: expiries "in the past" are written
-- directly, as the application (or time) would leave them.
INSERT INTO "Crm App".user_roles VALUES (2, 1, now() - interval '1 minute'),	-- expired
										(2, 7, now() + interval '1 hour');		-- not yet
SELECT is(connector.expire_grants('crm'), 1, 'one expired grant is revoked');
SELECT is((SELECT string_agg(format('%s:%s', user_id, role_id), ' ' ORDER BY user_id, role_id) FROM "Crm App".user_roles WHERE user_id = 2),
		  '2:2 2:7', 'the expired grant is gone, the others stay');
SELECT is((SELECT concat_ws(' ', event->>'type', event #>> '{data,account,id}', event #>> '{data,entitlement,id}',
							event #>> '{data,origin,via}', event #>> '{data,origin,operation}')
			 FROM connector.changes('crm') ORDER BY position DESC LIMIT 1),
		  'access.revoked 2 1 expiry revoke', 'an access.revoked event with origin.via = expiry');
SELECT is(connector.expire_grants(), 0, 'nothing left to expire');

-- A grant renewed before its expiry keeps the new expiry.
UPDATE "Crm App".user_roles SET valid_until = now() - interval '1 second' WHERE user_id = 2 AND role_id = 7;
SELECT is(connector.grant('crm', '2', '7', expires_at => now() + interval '1 day'), 'granted', 'the platform renews the grant');
SELECT is(connector.expire_grants(), 0, 'a renewed grant is not revoked');
SELECT is((SELECT valid_until FROM "Crm App".user_roles WHERE user_id = 2 AND role_id = 7), now() + interval '1 day',
		  'it keeps its new expiry');

-- Expiry runs whatever the operations allowlist says: it is the owner's own policy.
UPDATE connector.app SET spec = spec || '{"operations": []}' WHERE app = 'crm';
UPDATE "Crm App".user_roles SET valid_until = now() - interval '1 second' WHERE user_id = 2 AND role_id = 7;
SELECT is(connector.expire_grants('crm'), 1, 'a read-only app still expires grants');
UPDATE connector.app SET spec = spec - 'operations' WHERE app = 'crm';

-- An application without an expires column: connector.grant_expiry.
CREATE SCHEMA arr;
CREATE TABLE arr.users (id int PRIMARY KEY, login text NOT NULL, roles text[]);
INSERT INTO arr.users VALUES (1, 'ann', '{dev}');
SELECT connector.register_app('arr', '{"accounts": {"table": "arr.users", "id": "id", "name": "login"},
	"grants": {"column": "roles"}}');
SELECT is(connector.grant('arr', '1', 'ops', expires_at => now() + interval '1 hour'), 'granted', 'a time-bound grant on an array column');
SELECT is((SELECT count(*) FROM connector.grant_expiry WHERE app = 'arr'), 1::bigint, 'its expiry is in grant_expiry');
UPDATE connector.grant_expiry SET expires_at = now() - interval '1 second' WHERE app = 'arr';
SELECT is(connector.expire_grants('arr'), 1, 'expired through grant_expiry');
SELECT is((SELECT roles FROM arr.users WHERE id = 1), '{dev}', 'the array lost the expired entitlement only');
SELECT is((SELECT count(*) FROM connector.grant_expiry WHERE app = 'arr'), 0::bigint, 'and its expiry record');

SELECT throws_ok($$SELECT connector.expire_grants('nope')$$, '42704', 'application "nope" is not registered', 'unknown app');
SELECT ok(has_function_privilege('connector_platform', 'connector.expire_grants(text)', 'EXECUTE')
		  AND has_function_privilege('connector_admin', 'connector.expire_grants(text)', 'EXECUTE')
		  AND NOT has_function_privilege('public', 'connector.expire_grants(text)', 'EXECUTE'),
		  'expire_grants is for connector_admin and connector_platform only');

\ir ../fixtures/render_check.sql
SELECT is(pg_temp.render_mismatches(), 0::bigint, 'the C reader renders every event and body as the SQL expansion did');
SELECT * FROM finish();
ROLLBACK;
