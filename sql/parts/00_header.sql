-- connector 0.1 install script.  Assembled from sql/parts/*.sql by the Makefile.

\echo Use "CREATE EXTENSION connector" to load this file. \quit

-- Roles are cluster-wide: create them once, keep them across DROP EXTENSION
-- (other databases may use them, and DBAs grant them to logins).
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'connector_admin') THEN
		CREATE ROLE connector_admin NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'connector_platform') THEN
		CREATE ROLE connector_platform NOLOGIN;
	END IF;
END
$roles$;

REVOKE ALL ON SCHEMA @extschema@ FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO connector_admin, connector_platform;
