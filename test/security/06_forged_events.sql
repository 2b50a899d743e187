-- Events can only come from the mapped tables: a role that may name the
-- capture trigger function (connector_platform and connector_admin have
-- USAGE on schema connector; PUBLIC may execute connector.capture() so that
-- owners can add partitions) cannot attach it to a table of its own and
-- write events into an application's stream (say, an access.revoked that
-- hides a shadow grant).
BEGIN;
CREATE EXTENSION connector;
\ir fixtures/hostile.sql
SELECT plan(6);

CREATE TEMP TABLE mark AS SELECT coalesce(max(position), 0) AS p FROM connector.changes('crm', 0, 100000);
CREATE FUNCTION pg_temp.new_events() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM connector.changes('crm', (SELECT p FROM mark), 100000)
$$;

SET ROLE regress_platform;
SELECT matches(pg_temp.outcome($$
	CREATE TEMP TABLE fake (user_id int, role_id int, valid_until timestamptz);
	CREATE TRIGGER fake AFTER INSERT OR DELETE ON fake FOR EACH ROW EXECUTE FUNCTION connector.capture('crm', 'grants');
	INSERT INTO fake VALUES (42, 7, NULL);
	DELETE FROM fake$$), '^42501: ',
	'the platform''s own table with the capture trigger writes no event for crm (insufficient_privilege)');
RESET ROLE;
SELECT is(pg_temp.new_events(), 0::bigint, 'no event was written for the platform''s table');

SET ROLE regress_admin;
SELECT matches(pg_temp.outcome($$
	CREATE TEMP TABLE fake2 (id int, login text, status text);
	CREATE TRIGGER fake2 AFTER INSERT ON fake2 FOR EACH ROW EXECUTE FUNCTION connector.capture('crm', 'accounts');
	INSERT INTO fake2 VALUES (77, 'ghost', 'active')$$), '^42501: ',
	'a connector_admin''s own table with the capture trigger writes no event for crm (insufficient_privilege)');
RESET ROLE;
SELECT is(pg_temp.new_events(), 0::bigint, 'no event was written for the admin''s table');

-- The owner's own unmapped table, in the application's schema.
SET ROLE regress_owner;
SELECT matches(pg_temp.outcome($$
	CREATE TABLE crm.user_roles_shadow (user_id int, role_id int, valid_until timestamptz);
	CREATE TRIGGER shadow AFTER INSERT ON crm.user_roles_shadow FOR EACH ROW EXECUTE FUNCTION connector.capture('crm', 'grants');
	INSERT INTO crm.user_roles_shadow VALUES (42, 7, NULL)$$), '^42501: ',
	'the owner''s unmapped table with the capture trigger writes no event for crm (insufficient_privilege)');
RESET ROLE;
SELECT is(pg_temp.new_events(), 0::bigint, 'no event was written for the owner''s unmapped table');

SELECT * FROM finish();
ROLLBACK;
