-- findings(): every code on the crm fixture, severities, references, policy
-- defaults, and a healthy human account with no finding.
BEGIN;
CREATE EXTENSION connector;
\ir ../fixtures/crm.sql
SELECT connector.register_app('crm', pg_temp.crm_spec());
SET LOCAL TimeZone = 'UTC';
SELECT plan(17);

CREATE FUNCTION pg_temp.f(p_app text DEFAULT 'crm') RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(concat_ws(' ', code, severity, account, reference), ', ' ORDER BY code, account, detail::text)
	  FROM connector.findings(p_app)
$$;

-- The fixture as registered: svc-backup (10) holds db-admin and a key that
-- never expires; bob's key was never used (5 days old); carol (9) is
-- disabled with nothing.
SELECT is(pg_temp.f(),
		  'long_lived_credential high 10 NHI7:2025, privileged_nhi high 10 NHI5:2025, stale_credential low 2 NHI7:2025',
		  'the fixture: a never-expiring key, a privileged NHI, a new key never used');
SELECT is((SELECT detail FROM connector.findings('crm') WHERE code = 'privileged_nhi'),
		  '{"kind": "service", "reason": "a non-human identity holds a privileged entitlement", "entitlement": "7", "entitlement_name": "db-admin"}',
		  'privileged_nhi says why');
SELECT is((SELECT detail - 'created' FROM connector.findings('crm') WHERE code = 'long_lived_credential'),
		  '{"reason": "the credential never expires", "expires": null, "credential": "100", "max_credential_age": "90 days"}',
		  'long_lived_credential says why');
SELECT is((SELECT count(*) FROM connector.findings('crm') WHERE account = '1'), 0::bigint,
		  'alice, a healthy human with a privileged role, has no finding');

-- Make every other risk.
UPDATE "Crm App".users SET active = false WHERE id = 1;					-- alice leaves, still holds roles
INSERT INTO "Crm App".users VALUES (11, 'svc-etl', true, 'service', 1, NULL, 'IT', 'x'),	-- owner disabled
	(12, 'svc-old', true, 'bot', 99, NULL, 'IT', 'x'),											-- owner does not exist
	(13, 'svc-nobody', true, 'service', NULL, NULL, 'IT', 'x'),								-- no owner
	(14, 'svc-off', false, 'service', NULL, NULL, 'IT', 'x');									-- disabled, no access
INSERT INTO "Crm App".api_keys (id, user_id, key_hash, created_at, expires_at, last_used_at) VALUES
	(102, 11, 'h3', now() - interval '120 days', now() + interval '10 days', now() - interval '40 days'),
	(103, 11, 'h4', now() - interval '1 day', now() + interval '10 days', now()),
	(104, 12, 'h5', now() - interval '400 days', now() - interval '1 day', NULL);			-- expired: not live
INSERT INTO "Crm App".user_roles VALUES (2, 1, NULL);											-- direct: shadow grant
SELECT is(pg_temp.f(),
		  'disabled_with_access high 1 NHI1:2025, '
		  'long_lived_credential high 10 NHI7:2025, long_lived_credential medium 11 NHI7:2025, '
		  'orphaned_account high 10 NHI1:2025, orphaned_account high 11 NHI1:2025, orphaned_account high 12 NHI1:2025, orphaned_account high 13 NHI1:2025, '
		  'privileged_nhi high 10 NHI5:2025, '
		  'shadow_grant medium 2 NHI5:2025, '
		  'stale_credential medium 11 NHI7:2025, stale_credential low 2 NHI7:2025',
		  'every risk is found, with its severity and OWASP NHI reference');
SELECT is((SELECT string_agg(detail->>'reason', ', ' ORDER BY account::int) FROM connector.findings('crm') WHERE code = 'orphaned_account'),
		  'the owner is disabled, the owner is disabled, the owner does not exist, no owner', 'orphaned_account says why');
SELECT is((SELECT detail FROM connector.findings('crm') WHERE code = 'disabled_with_access'),
		  '{"reason": "the account is disabled but still holds access", "credentials": [], "entitlements": ["1", "7"]}',
		  'disabled_with_access lists the access');
SELECT is((SELECT detail - 'granted_at' - 'position' - 'application_name' FROM connector.findings('crm') WHERE code = 'shadow_grant'),
		  jsonb_build_object('reason', 'the grant was made by direct DML, not through the platform', 'db_user', current_user,
							 'privileged', false, 'entitlement', '1'),
		  'shadow_grant names who made it');
SELECT is((SELECT detail->>'reason' FROM connector.findings('crm') WHERE code = 'stale_credential' AND account = '11'),
		  'the credential was not used within stale_after', 'stale_credential says why');

-- A grant re-made through the platform is no longer a shadow grant; one
-- revoked is gone; a privileged one made directly is high.
SELECT connector.revoke('crm', '2', '1');
SELECT connector.grant('crm', '2', '1');
SELECT is((SELECT count(*) FROM connector.findings('crm') WHERE code = 'shadow_grant'), 0::bigint,
		  'the latest event decides: a platform grant is not a shadow grant');
INSERT INTO "Crm App".user_roles VALUES (13, 7, NULL);
SELECT is((SELECT severity || ' ' || account FROM connector.findings('crm') WHERE code = 'shadow_grant'), 'high 13',
		  'a privileged shadow grant is high');

-- Disabled account with a live credential.
UPDATE "Crm App".users SET active = false WHERE id = 10;
SELECT is((SELECT detail->'credentials' FROM connector.findings('crm') WHERE code = 'disabled_with_access' AND account = '10'),
		  '["100"]', 'a disabled account with a live credential');

-- Policy: shorter thresholds from the mapping; defaults without policy.
SELECT connector.register_app('crm', pg_temp.crm_spec() || '{"policy": {"max_credential_age": "2 days", "stale_after": "1 hour"}}');
SELECT is((SELECT count(*) FROM connector.findings('crm') WHERE code = 'long_lived_credential'), 3::bigint,
		  'policy.max_credential_age from the mapping');
SELECT connector.register_app('crm', pg_temp.crm_spec() - 'policy');
SELECT is((SELECT string_agg(account || ' ' || (detail->>'max_credential_age') || ' ' || (detail->>'reason'), ', ' ORDER BY account)
			 FROM connector.findings('crm') WHERE code = 'long_lived_credential'),
		  '10 90 days the credential never expires, 11 90 days the credential is older than the policy allows',
		  'without policy: 90 days');

-- capture_gap
ALTER TABLE "Crm App".user_roles DISABLE TRIGGER connector_capture;
SELECT is((SELECT concat_ws(' ', severity, detail->>'table', detail->>'problem', reference) FROM connector.findings('crm') WHERE code = 'capture_gap'),
		  'critical "Crm App".user_roles trigger connector_capture disabled NIST CSF 2.0 DE.CM-09', 'capture_gap');

-- Errors.
SELECT throws_ok($$SELECT * FROM connector.findings('nope')$$, '42704', 'application "nope" is not registered', 'unknown app');
SELECT throws_ok($$SELECT * FROM connector.findings(NULL)$$, '22004', 'app must not be null', 'NULL app');

SELECT * FROM finish();
ROLLBACK;
