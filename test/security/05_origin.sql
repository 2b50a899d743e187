-- Attack 5 of issue 13: the owner's trigger forges the origin of its own
-- writes.  Only rows written by the extension's own statement are "platform";
-- what the application's code writes during the call is "direct", by the
-- role that ran it, with no request_id, and shows as a shadow_grant.
-- Foreign-key cascades of a platform delete stay the platform's.
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
SELECT plan(9);

-- During any grant, the owner's trigger grants db-admin to mallory (42).
SET ROLE regress_owner;
CREATE FUNCTION crm.piggyback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.user_id <> 42 THEN
		INSERT INTO crm.user_roles (user_id, role_id) VALUES (42, 7);
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER piggyback AFTER INSERT ON crm.user_roles FOR EACH ROW EXECUTE FUNCTION crm.piggyback();
RESET ROLE;
CREATE TEMP TABLE mark AS SELECT coalesce(max(position), 0) AS p FROM connector.changes('crm', 0, 100000);
-- The origin of the latest access event of (account, entitlement) since the mark.
CREATE FUNCTION pg_temp.origin_of(type text, acc text, ent text) RETURNS text LANGUAGE sql AS $$
	SELECT concat_ws(' ', event #>> '{data,origin,via}', coalesce(event #>> '{data,origin,request_id}', 'no request_id'))
	  FROM connector.changes('crm', (SELECT p FROM mark), 100000)
	 WHERE event->>'type' = type AND event #>> '{data,account,id}' = acc
	   AND event #>> '{data,entitlement,id}' = ent
	 ORDER BY position DESC LIMIT 1
$$;

SET ROLE regress_platform;
SELECT is(connector.grant('crm', '2', '1', request_id => 'req-123'), 'granted', 'the platform grants viewer to bob');
RESET ROLE;
SELECT is((SELECT count(*) FROM crm.user_roles WHERE user_id = 42 AND role_id = 7), 1::bigint,
		  'the owner''s trigger granted db-admin to mallory meanwhile');
SELECT is(pg_temp.origin_of('access.granted', '2', '1'), 'platform req-123',
		  'the platform''s grant: via platform, with its request_id');
SELECT is(pg_temp.origin_of('access.granted', '42', '7'), 'direct no request_id',
		  'the trigger''s grant: via direct, without the platform''s request_id');
SELECT is((SELECT event #>> '{data,origin,db_user}' FROM connector.changes('crm', (SELECT p FROM mark), 100000)
			WHERE event->>'type' = 'access.granted' AND event #>> '{data,account,id}' = '42'),
		  'regress_owner', 'the trigger''s grant: db_user is the table owner, whose code wrote it');
SELECT is((SELECT string_agg(concat_ws(' ', account, detail->>'entitlement', severity), ', ')
			 FROM connector.findings('crm') WHERE code = 'shadow_grant'),
		  '42 7 high', 'findings: the trigger''s grant is a shadow_grant, the platform''s is not');
SELECT pg_temp.evil_reset();

-- delete_account: the account's key goes by the foreign key's ON DELETE
-- CASCADE; every event of it is the platform's.
DROP TRIGGER piggyback ON crm.user_roles;
UPDATE mark SET p = (SELECT coalesce(max(position), 0) FROM connector.changes('crm', 0, 100000));
SET ROLE regress_platform;
SELECT is(connector.delete_account('crm', '10', 'req-456'), 'deleted', 'the platform deletes svc-backup');
RESET ROLE;
SELECT is((SELECT string_agg(DISTINCT event->>'type', ', ')
			 FROM connector.changes('crm', (SELECT p FROM mark), 100000)
			WHERE event #>> '{data,account,id}' = '10'),
		  'access.revoked, account.deleted, credential.deleted, credential.revoked',
		  'delete_account: revoked, key stamped then deleted by the cascade, account deleted');
SELECT is((SELECT string_agg(DISTINCT concat_ws(' ', event #>> '{data,origin,via}', event #>> '{data,origin,request_id}'), ', ')
			 FROM connector.changes('crm', (SELECT p FROM mark), 100000)
			WHERE event #>> '{data,account,id}' = '10'),
		  'platform req-456', 'delete_account: every event, the cascade''s too, is the platform''s');

SELECT * FROM finish();
ROLLBACK;
