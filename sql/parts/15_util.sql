-- Internal helpers shared by the mapping, the platform API and enumeration.
-- None is executable by PUBLIC; the SECURITY DEFINER API calls them as owner.

CREATE FUNCTION @extschema@._all_operations() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT ARRAY['grant', 'revoke', 'disable', 'enable', 'create_account',
				 'update_account', 'delete_account', 'offboard', 'revoke_credential',
				 'create_entitlement', 'update_entitlement', 'delete_entitlement']
$$;

-- Raise null_value_not_allowed when a required argument is NULL.
CREATE FUNCTION @extschema@._require(val anyelement, what text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF val IS NULL THEN
		RAISE EXCEPTION '% must not be null', what
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
END
$$;

-- The mapping of a registered application: its spec, with the OID of each
-- mapped table under "<section>"->"relid" and, under "owner", the role that
-- owns the accounts table: every statement on the application's tables runs
-- as that role (_owner_*).  Unknown app: undefined_object.
CREATE FUNCTION @extschema@._mapping(p_app text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb;
BEGIN
	PERFORM @extschema@._require(p_app, 'app');
	SELECT a.spec INTO m FROM @extschema@.app a WHERE a.app = p_app;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'application "%" is not registered', p_app
			USING ERRCODE = 'undefined_object',
				  HINT = 'Register it with connector.register_app().';
	END IF;
	SELECT m || jsonb_object_agg(t.role,
								 m->t.role || jsonb_build_object('relid', t.relid::oid))
	  INTO m
	  FROM @extschema@.app_table t WHERE t.app = p_app;
	RETURN m || jsonb_build_object('app', p_app, 'owner',
		(SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = (m->'accounts'->>'relid')::oid));
END
$$;

-- The type of a column, as a regtype.
CREATE FUNCTION @extschema@._coltype(rel oid, col text) RETURNS regtype
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT a.atttypid::regtype FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- Parse text as a value of type typ and return its canonical text form.
-- Text that does not parse raises invalid_text_representation naming what.
-- val cast to typ and back to text.  A type that is not built in (a domain,
-- an enum, ...) may run the application's code (a domain's CHECK, a cast):
-- its cast runs as owner.
CREATE FUNCTION @extschema@._cast_text(val text, typ regtype, owner oid)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r text;
BEGIN
	IF typ::oid < 16384 THEN	-- FirstNormalObjectId: built in
		EXECUTE format('SELECT $1::%s::text', typ) INTO r USING val;
		RETURN r;
	END IF;
	RETURN @extschema@._owner_value(owner, format('SELECT $1::%s::text', typ), val);
END
$$;

-- Parse val as typ for p_app (_cast_text; the owner is by default the owner
-- of p_app's tables), with an error naming what it is.
CREATE FUNCTION @extschema@._parse(val text, typ regtype, what text, p_app text,
								   owner oid DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF typ::oid >= 16384 THEN
		owner := COALESCE(owner, (@extschema@._mapping(p_app)->>'owner')::oid);
	END IF;
	RETURN @extschema@._cast_text(val, typ, owner);
EXCEPTION WHEN data_exception THEN
	RAISE EXCEPTION '% "%" is not a valid % in application "%"', what,
		left(val, 200), typ, p_app
		USING ERRCODE = 'invalid_text_representation',
			  DETAIL = SQLERRM;
END
$$;

-- Validate the "after" and "limit" arguments of the enumeration functions.
CREATE FUNCTION @extschema@._check_limit(lim int) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM @extschema@._require(lim, 'limit');
	IF lim < 1 OR lim > 100000 THEN
		RAISE EXCEPTION 'limit % is out of range', lim
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a limit between 1 and 100000.';
	END IF;
END
$$;

-- A connector.* setting in its base unit (ms, s or a plain number):
-- current_setting() would format it with a unit ('1s', '7d').
CREATE FUNCTION @extschema@._setting(name text) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT s.setting::bigint FROM pg_catalog.pg_settings s WHERE s.name = _setting.name
$$;
