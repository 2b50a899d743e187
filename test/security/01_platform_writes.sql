-- Attack 1 of issue 13: a table owner becomes superuser through the
-- platform's writes.  The owner's triggers, defaults, checks, domain, cast and
-- operator (fixtures/hostile.sql) run during every write API call, made by
-- the platform's login: they must run as the owner, never as the extension's
-- superuser owner.
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
SELECT plan(40);

SET ROLE regress_platform;
SELECT is(connector.grant('crm', '2', '1'), 'granted', 'grant: granted');
RESET ROLE;
SELECT pg_temp.after_call('grant');

SET ROLE regress_platform;
SELECT is(connector.grant('crm', '2', '7', NULL, now() + interval '1 day'), 'granted', 'grant with an expiry: granted');
RESET ROLE;
SELECT pg_temp.after_call('grant with an expiry');

SET ROLE regress_platform;
SELECT is(connector.revoke('crm', '1', '1'), 'revoked', 'revoke: revoked');
RESET ROLE;
SELECT pg_temp.after_call('revoke');

SET ROLE regress_platform;
SELECT is(connector.disable('crm', '2'), 'disabled', 'disable: disabled');
RESET ROLE;
SELECT pg_temp.after_call('disable');

SET ROLE regress_platform;
SELECT is(connector.enable('crm', '2'), 'enabled', 'enable: enabled');
RESET ROLE;
SELECT pg_temp.after_call('enable');

SET ROLE regress_platform;
SELECT is(connector.create_account('crm', 'dave', '{"email": "dave@example.com"}'), '100',
		  'create_account: the id from the owner''s sequence');
RESET ROLE;
SELECT pg_temp.after_call('create_account');

SET ROLE regress_platform;
SELECT is(connector.update_account('crm', '2', '{"email": "bob@new.example.com"}'), 'updated',
		  'update_account: updated');
RESET ROLE;
SELECT pg_temp.after_call('update_account');

SET ROLE regress_platform;
SELECT is(connector.revoke_credential('crm', '101'), 'revoked', 'revoke_credential: revoked');
RESET ROLE;
SELECT pg_temp.after_call('revoke_credential');

SET ROLE regress_platform;
SELECT is(connector.offboard('crm', '10'),
		  '{"account": "10", "disabled": true, "revoked": ["7"], "credentials_revoked": ["100"]}',
		  'offboard: disabled, grant and credential revoked');
RESET ROLE;
SELECT pg_temp.after_call('offboard');

SET ROLE regress_platform;
SELECT is(connector.delete_account('crm', '2'), 'deleted', 'delete_account: deleted');
RESET ROLE;
SELECT pg_temp.after_call('delete_account');

SET ROLE regress_platform;
SELECT is(connector.apply('crm', '[{"op": "grant", "account": "1", "entitlement": "2"},
								   {"op": "disable", "account": "1"}]'),
		  '["granted", "disabled"]', 'apply: both operations done');
RESET ROLE;
SELECT pg_temp.after_call('apply');

SET ROLE regress_platform;
SELECT is((SELECT string_agg(concat_ws(' ', action, account, entitlement, detail->>'outcome'), ', '
							 ORDER BY action, entitlement)
			 FROM connector.reconcile('crm', '{"accounts": [{"id": "1", "enabled": true, "entitlements": ["1", "7"]}]}',
									  enforce => true)),
		  'enable 1 enabled, grant 1 1 granted, revoke 1 2 revoked',
		  'reconcile(enforce => true): enabled, granted, revoked');
RESET ROLE;
SELECT pg_temp.after_call('reconcile(enforce => true)');

-- Expiry: the owner inserts a grant that has already expired; the platform
-- (connector_platform may call expire_grants) removes it.  The dispatcher
-- doing it by itself is test/t/030_security_expiry.pl.
SET ROLE regress_owner;
INSERT INTO crm.user_roles (user_id, role_id, valid_until) VALUES (9, 2, now() - interval '1 second');
SELECT throws_ok($$SELECT connector.expire_grants('crm')$$, '42501',
				 'permission denied for schema connector',
				 'the table owner cannot call expire_grants (it is no connector role)');
RESET ROLE;
SELECT pg_temp.evil_reset();
SET ROLE regress_platform;
SELECT is(connector.expire_grants('crm'), 1, 'expire_grants: the expired grant is revoked');
RESET ROLE;
SELECT pg_temp.after_call('expire_grants');

SELECT * FROM finish();
ROLLBACK;
