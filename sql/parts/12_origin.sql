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
