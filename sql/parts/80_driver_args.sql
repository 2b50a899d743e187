-- Arguments bound as strings (docs/integrations.md, "Drivers").
--
-- JDBC's setString binds a parameter as character varying (so does Groovy's
-- groovy.sql.Sql for a String), and character varying has no implicit cast
-- to jsonb, timestamptz, bigint or interval: a call binding JSON, a
-- timestamp or a position as a string found no function (42883).  Each
-- function of the API with such an argument therefore has overloads that
-- take character varying in its place, one per number of arguments a call
-- can pass from that argument on.  Each only parses the string and calls
-- the original, so both behave the same.
--
-- Why this cannot change the meaning of an existing call:
--   - an overload has no defaults, so a call that leaves out an optional
--     argument matches the original only;
--   - a typed argument (jsonb, timestamptz, bigint, integer, interval)
--     matches the original only: no such type casts implicitly to varchar;
--   - a call with an untyped literal, or an untyped parameter (psycopg2 and
--     node-postgres send those), matched the original before and matches
--     the overload now (the parser prefers the string category for an
--     unknown argument), which parses it as the original's argument would
--     have been parsed;
--   - every overload keeps the positions and names of the original's
--     arguments, so a string bound at a position means what it meant.
-- Parameter names are those of the originals, so named notation works too.

-- Parse a string argument as the type of typ (NULL stays NULL), as its input
-- function does in the session's settings (TimeZone, DateStyle,
-- IntervalStyle), the way a literal argument of the original is parsed.  A
-- value that does not parse fails with the SQLSTATE the input function gives
-- a literal (22P02 for JSON and integers, 22007 for timestamps and intervals,
-- 22003 or 22008 out of range), and a message naming the argument, the input
-- function's message as detail; echo false keeps the value out of the
-- message and the detail (endpoint options may hold credentials).
CREATE FUNCTION @extschema@._arg(val text, what text, typ anyelement, echo boolean DEFAULT true)
RETURNS anyelement
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r ALIAS FOR $0;
	state text;
	detail text;
BEGIN
	-- PL/pgSQL assigns text to another type through its input function
	r := val;
	RETURN r;
EXCEPTION WHEN data_exception THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL;
	IF NOT echo THEN
		RAISE EXCEPTION '% is not a valid %', what, pg_typeof(typ)
			USING ERRCODE = state;
	END IF;
	RAISE EXCEPTION '% "%" is not a valid %', what, left(val, 200), pg_typeof(typ)
		USING ERRCODE = state,
			  DETAIL = SQLERRM || COALESCE(NULLIF(': ' || detail, ': '), '');
END
$$;

-- Platform writes (40_write.sql).

CREATE FUNCTION @extschema@."grant"(app text, account text, entitlement text,
									request_id text, expires_at character varying)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@."grant"(app, account, entitlement, request_id,
		@extschema@._arg(expires_at, 'expires_at', NULL::timestamptz))
$$;
COMMENT ON FUNCTION @extschema@."grant"(text, text, text, text, character varying) IS
	'grant() with expires_at bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.create_account(app text, name text, attributes character varying)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.create_account(app, name,
		@extschema@._arg(attributes, 'attributes', NULL::jsonb))
$$;
COMMENT ON FUNCTION @extschema@.create_account(text, text, character varying) IS
	'create_account() with attributes bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.create_account(app text, name text, attributes character varying,
										   request_id text)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.create_account(app, name,
		@extschema@._arg(attributes, 'attributes', NULL::jsonb), request_id)
$$;
COMMENT ON FUNCTION @extschema@.create_account(text, text, character varying, text) IS
	'create_account() with attributes bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.update_account(app text, account text, attributes character varying)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.update_account(app, account,
		@extschema@._arg(attributes, 'attributes', NULL::jsonb))
$$;
COMMENT ON FUNCTION @extschema@.update_account(text, text, character varying) IS
	'update_account() with attributes bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.update_account(app text, account text, attributes character varying,
										   request_id text)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.update_account(app, account,
		@extschema@._arg(attributes, 'attributes', NULL::jsonb), request_id)
$$;
COMMENT ON FUNCTION @extschema@.update_account(text, text, character varying, text) IS
	'update_account() with attributes bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.create_entitlement(app text, name text, attributes character varying)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.create_entitlement(app, name,
		@extschema@._arg(attributes, 'attributes', NULL::jsonb))
$$;
COMMENT ON FUNCTION @extschema@.create_entitlement(text, text, character varying) IS
	'create_entitlement() with attributes bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.create_entitlement(app text, name text, attributes character varying,
											   request_id text)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.create_entitlement(app, name,
		@extschema@._arg(attributes, 'attributes', NULL::jsonb), request_id)
$$;
COMMENT ON FUNCTION @extschema@.create_entitlement(text, text, character varying, text) IS
	'create_entitlement() with attributes bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.update_entitlement(app text, entitlement text, attributes character varying)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.update_entitlement(app, entitlement,
		@extschema@._arg(attributes, 'attributes', NULL::jsonb))
$$;
COMMENT ON FUNCTION @extschema@.update_entitlement(text, text, character varying) IS
	'update_entitlement() with attributes bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.update_entitlement(app text, entitlement text, attributes character varying,
											   request_id text)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.update_entitlement(app, entitlement,
		@extschema@._arg(attributes, 'attributes', NULL::jsonb), request_id)
$$;
COMMENT ON FUNCTION @extschema@.update_entitlement(text, text, character varying, text) IS
	'update_entitlement() with attributes bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.apply(app text, operations character varying)
RETURNS jsonb
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.apply(app, @extschema@._arg(operations, 'operations', NULL::jsonb))
$$;
COMMENT ON FUNCTION @extschema@.apply(text, character varying) IS
	'apply() with operations bound as a string (JDBC setString): the same call.';

-- The cursor (50_capture.sql).

CREATE FUNCTION @extschema@.changes(app text, after character varying)
RETURNS TABLE ("position" bigint, event jsonb)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT c.position, c.event
	  FROM @extschema@.changes(app, @extschema@._arg(after, 'after', NULL::bigint)) c
$$;
COMMENT ON FUNCTION @extschema@.changes(text, character varying) IS
	'changes() with the position bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.changes(app text, after character varying, "limit" int)
RETURNS TABLE ("position" bigint, event jsonb)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT c.position, c.event
	  FROM @extschema@.changes(app, @extschema@._arg(after, 'after', NULL::bigint), "limit") c
$$;
COMMENT ON FUNCTION @extschema@.changes(text, character varying, int) IS
	'changes() with the position bound as a string (JDBC setString): the same call.';

-- Reconciliation (70_governance.sql).

CREATE FUNCTION @extschema@.reconcile(app text, desired character varying)
RETURNS TABLE (action text, account text, entitlement text, detail jsonb)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT r.action, r.account, r.entitlement, r.detail
	  FROM @extschema@.reconcile(app, @extschema@._arg(desired, 'desired', NULL::jsonb)) r
$$;
COMMENT ON FUNCTION @extschema@.reconcile(text, character varying) IS
	'reconcile() with the desired state bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.reconcile(app text, desired character varying, enforce boolean)
RETURNS TABLE (action text, account text, entitlement text, detail jsonb)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT r.action, r.account, r.entitlement, r.detail
	  FROM @extschema@.reconcile(app, @extschema@._arg(desired, 'desired', NULL::jsonb), enforce) r
$$;
COMMENT ON FUNCTION @extschema@.reconcile(text, character varying, boolean) IS
	'reconcile() with the desired state bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.reconcile(app text, desired character varying, enforce boolean,
									  request_id text)
RETURNS TABLE (action text, account text, entitlement text, detail jsonb)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT r.action, r.account, r.entitlement, r.detail
	  FROM @extschema@.reconcile(app, @extschema@._arg(desired, 'desired', NULL::jsonb),
								 enforce, request_id) r
$$;
COMMENT ON FUNCTION @extschema@.reconcile(text, character varying, boolean, text) IS
	'reconcile() with the desired state bound as a string (JDBC setString): the same call.';

-- Administration (20_mapping.sql, 60_endpoints.sql).  The functions taking
-- a secret keep failing statements out of the server log, as theirs do.

CREATE FUNCTION @extschema@.register_app(app text, spec character varying)
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.register_app(app, @extschema@._arg(spec, 'spec', NULL::jsonb))
$$;
COMMENT ON FUNCTION @extschema@.register_app(text, character varying) IS
	'register_app() with the spec bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.add_endpoint(app text, name text, url text, secret text,
										 options character varying)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET log_min_error_statement = panic AS $$
	SELECT @extschema@.add_endpoint(app, name, url, secret,
		@extschema@._arg(options, 'endpoint options', NULL::jsonb, false))
$$;
COMMENT ON FUNCTION @extschema@.add_endpoint(text, text, text, text, character varying) IS
	'add_endpoint() with the options bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.rotate_secret(app text, name text, new_secret text,
										  overlap character varying)
RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET log_min_error_statement = panic AS $$
	SELECT @extschema@.rotate_secret(app, name, new_secret,
		@extschema@._arg(overlap, 'overlap', NULL::interval))
$$;
COMMENT ON FUNCTION @extschema@.rotate_secret(text, text, text, character varying) IS
	'rotate_secret() with the overlap bound as a string (JDBC setString): the same call.';

CREATE FUNCTION @extschema@.redeliver(app text, name text, from_position character varying)
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.redeliver(app, name,
		@extschema@._arg(from_position, 'from_position', NULL::bigint))
$$;
COMMENT ON FUNCTION @extschema@.redeliver(text, text, character varying) IS
	'redeliver() with the position bound as a string (JDBC setString): the same call.';

GRANT EXECUTE ON FUNCTION
	@extschema@."grant"(text, text, text, text, character varying),
	@extschema@.create_account(text, text, character varying),
	@extschema@.create_account(text, text, character varying, text),
	@extschema@.update_account(text, text, character varying),
	@extschema@.update_account(text, text, character varying, text),
	@extschema@.create_entitlement(text, text, character varying),
	@extschema@.create_entitlement(text, text, character varying, text),
	@extschema@.update_entitlement(text, text, character varying),
	@extschema@.update_entitlement(text, text, character varying, text),
	@extschema@.apply(text, character varying),
	@extschema@.reconcile(text, character varying),
	@extschema@.reconcile(text, character varying, boolean),
	@extschema@.reconcile(text, character varying, boolean, text)
TO connector_platform;

GRANT EXECUTE ON FUNCTION
	@extschema@.changes(text, character varying),
	@extschema@.changes(text, character varying, int)
TO connector_platform, connector_admin;

GRANT EXECUTE ON FUNCTION
	@extschema@.register_app(text, character varying),
	@extschema@.add_endpoint(text, text, text, text, character varying),
	@extschema@.rotate_secret(text, text, text, character varying),
	@extschema@.redeliver(text, text, character varying)
TO connector_admin;
