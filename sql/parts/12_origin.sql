-- Origin marks (src/origin.c): the platform API brackets its writes with
-- _origin_begin/_origin_end so capture can tell them from direct DML.
-- Superuser-only in C as well as by privilege: no session can forge them.

CREATE FUNCTION @extschema@._origin_begin(via text, operation text, request_id text)
RETURNS void
AS 'MODULE_PATHNAME', 'connector_origin_begin'
LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@._origin_end()
RETURNS void
AS 'MODULE_PATHNAME', 'connector_origin_end'
LANGUAGE C VOLATILE;

-- Statements on application tables (src/owner.c): planned and run as the
-- owner of the application's tables in a security-restricted operation, so
-- the application's own code never runs with the extension owner's rights.
-- Values are parameters.  Superuser-only in C as well as by privilege.
CREATE FUNCTION @extschema@._owner_query(owner oid, sql text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'connector_owner_query'
LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@._owner_query(owner oid, sql text, VARIADIC args "any")
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'connector_owner_query'
LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@._owner_value(owner oid, sql text)
RETURNS text
AS 'MODULE_PATHNAME', 'connector_owner_value'
LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@._owner_value(owner oid, sql text, VARIADIC args "any")
RETURNS text
AS 'MODULE_PATHNAME', 'connector_owner_value'
LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@._owner_exec(owner oid, sql text, VARIADIC args "any")
RETURNS bigint
AS 'MODULE_PATHNAME', 'connector_owner_exec'
LANGUAGE C VOLATILE;

-- The client mark of a transaction (src/origin.c): scim_session sets it once
-- it has checked a bearer token, and every event captured until the
-- transaction ends carries origin.client.  Superuser-only in C as well as by
-- privilege.
CREATE FUNCTION @extschema@._origin_client(client text, app text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'connector_origin_client'
LANGUAGE C VOLATILE;
