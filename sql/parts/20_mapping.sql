-- Mapping an application: register_app, unregister_app and the apps view.

-- Fail on keys of obj that are not in allowed; path names the object.
CREATE FUNCTION @extschema@._spec_keys(obj jsonb, path text, allowed text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	k text;
BEGIN
	FOR k IN SELECT jsonb_object_keys(obj) ORDER BY 1 LOOP
		IF NOT k = ANY (allowed) THEN
			RAISE EXCEPTION 'unknown key "%" in mapping', path || k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = format('Allowed keys here: %s.', array_to_string(allowed, ', '));
		END IF;
	END LOOP;
END
$$;

-- The JSON object at obj->key; NULL when absent and optional.
CREATE FUNCTION @extschema@._spec_object(obj jsonb, key text, path text, required boolean)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT obj ? key THEN
		IF required THEN
			RAISE EXCEPTION 'mapping key "%" is required', path || key
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		RETURN NULL;
	END IF;
	IF jsonb_typeof(obj->key) <> 'object' THEN
		RAISE EXCEPTION 'mapping key "%" must be a JSON object, not %', path || key,
			jsonb_typeof(obj->key)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN obj->key;
END
$$;

-- The string at obj->key; NULL when absent and optional.
CREATE FUNCTION @extschema@._spec_string(obj jsonb, key text, path text, required boolean)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT obj ? key THEN
		IF required THEN
			RAISE EXCEPTION 'mapping key "%" is required', path || key
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		RETURN NULL;
	END IF;
	IF jsonb_typeof(obj->key) <> 'string' THEN
		RAISE EXCEPTION 'mapping key "%" must be a string, not %', path || key,
			jsonb_typeof(obj->key)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF obj->>key = '' THEN
		RAISE EXCEPTION 'mapping key "%" must not be empty', path || key
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN obj->>key;
END
$$;

-- Resolve section.table: an existing ordinary or partitioned, non-temporary
-- table of an application schema.  The name must be schema-qualified: the
-- API runs with search_path = pg_catalog, pg_temp, so a bare name would find
-- a system catalog or a temporary table, never the application's table.
CREATE FUNCTION @extschema@._spec_table(section jsonb, path text) RETURNS oid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	name text := @extschema@._spec_string(section, 'table', path, true);
	parts text[];
	rel oid;
	c pg_catalog.pg_class;
	nsp name;
BEGIN
	BEGIN
		parts := parse_ident(name);
		rel := to_regclass(name);
	EXCEPTION WHEN OTHERS THEN
		RAISE EXCEPTION 'mapping key "%": "%" is not a valid table name', path || 'table', name
			USING ERRCODE = 'invalid_name', DETAIL = SQLERRM,
				  HINT = 'Write the name as in a regclass literal: schema.table, with double quotes where needed.';
	END;
	IF array_length(parts, 1) <> 2 THEN
		RAISE EXCEPTION 'mapping key "%": table name "%" is not schema-qualified', path || 'table', name
			USING ERRCODE = 'invalid_name',
				  HINT = 'Write the name as in a regclass literal: schema.table, with double quotes where needed.';
	END IF;
	IF rel IS NULL THEN
		RAISE EXCEPTION 'table "%" does not exist', name
			USING ERRCODE = 'undefined_table',
				  DETAIL = format('Named by mapping key "%s".', path || 'table');
	END IF;
	SELECT * INTO c FROM pg_catalog.pg_class WHERE oid = rel;
	IF c.relkind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '"%" is not a table', name
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = format('Mapping key "%s" names a %s; only ordinary and partitioned tables can be mapped.',
								  path || 'table',
								  CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
									   WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence'
									   WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
									   ELSE 'relation of kind ' || c.relkind::text END);
	END IF;
	IF c.relpersistence = 't' THEN
		RAISE EXCEPTION '"%" is a temporary table', name
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = format('Named by mapping key "%s"; temporary tables cannot be mapped.', path || 'table');
	END IF;
	SELECT n.nspname INTO nsp FROM pg_catalog.pg_namespace n WHERE n.oid = c.relnamespace;
	IF nsp IN ('pg_catalog', 'information_schema', '@extschema@') OR nsp LIKE 'pg\_toast%' THEN
		RAISE EXCEPTION '"%" is a system table', name
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = format('Mapping key "%s" names a table of schema "%s"; only application tables can be mapped.',
								  path || 'table', nsp);
	END IF;
	RETURN rel;
END
$$;

-- Parse the string at a mapping key as a value of type typ; a value that does
-- not parse is a bad mapping (invalid_parameter_value), not bad API input.
CREATE FUNCTION @extschema@._spec_value(val text, typ regtype, key text, owner oid DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	why text;
BEGIN
	RETURN @extschema@._parse(val, typ, key, '', owner);
EXCEPTION WHEN invalid_text_representation THEN
	GET STACKED DIAGNOSTICS why = PG_EXCEPTION_DETAIL;
	RAISE EXCEPTION 'mapping key "%": "%" is not a valid %', key, left(val, 200), typ
		USING ERRCODE = 'invalid_parameter_value', DETAIL = why;
END
$$;

-- Resolve section.key as a column of rel and return its type.
CREATE FUNCTION @extschema@._spec_column(rel oid, section jsonb, key text, path text,
										 required boolean)
RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	col text := @extschema@._spec_string(section, key, path, required);
	typ regtype;
BEGIN
	IF col IS NULL THEN
		RETURN NULL;
	END IF;
	typ := @extschema@._coltype(rel, col);
	IF typ IS NULL THEN
		RAISE EXCEPTION 'column "%" of table "%" does not exist', col, rel::regclass
			USING ERRCODE = 'undefined_column',
				  DETAIL = format('Named by mapping key "%s".', path || key);
	END IF;
	RETURN typ;
END
$$;

-- The id column must identify rows: NOT NULL and alone under a unique index.
CREATE FUNCTION @extschema@._spec_id(rel oid, section jsonb, path text) RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	typ regtype := @extschema@._spec_column(rel, section, 'id', path, true);
	col text := section->>'id';
	att int2;
BEGIN
	SELECT a.attnum INTO att FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid = rel AND a.attname = col AND a.attnotnull;
	IF att IS NULL OR NOT EXISTS (
		SELECT 1 FROM pg_catalog.pg_index i
		 WHERE i.indrelid = rel AND i.indisunique AND i.indimmediate
		   AND i.indnkeyatts = 1 AND i.indkey[0] = att
		   AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
		RAISE EXCEPTION 'column "%" of table "%" cannot identify rows', col, rel::regclass
			USING ERRCODE = 'invalid_table_definition',
				  DETAIL = format('Mapping key "%s" must name a NOT NULL column with a unique index of its own.', path || 'id'),
				  HINT = 'Map the primary key column, or add a NOT NULL constraint and a unique index.';
	END IF;
	RETURN typ;
END
$$;

-- Two columns that must hold the same kind of id.
CREATE FUNCTION @extschema@._spec_same_type(got regtype, want regtype, key text, wantkey text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF got IS DISTINCT FROM want THEN
		RAISE EXCEPTION 'mapping key "%" has type %, but "%" has type %', key, got, wantkey, want
			USING ERRCODE = 'datatype_mismatch',
				  HINT = 'Both columns must hold the same kind of id.';
	END IF;
END
$$;

-- A column that must be of one of the given type categories.
CREATE FUNCTION @extschema@._spec_type_in(got regtype, allowed regtype[], key text, what text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF got IS NOT NULL AND NOT got = ANY (allowed) THEN
		RAISE EXCEPTION 'mapping key "%" names a column of type %, not %', key, got, what
			USING ERRCODE = 'datatype_mismatch';
	END IF;
END
$$;

-- Validate the status sub-object: boolean, two-value text/enum, or timestamp.
CREATE FUNCTION @extschema@._spec_status(rel oid, st jsonb) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	typ regtype;
	cat "char";
	owner oid;
BEGIN
	PERFORM @extschema@._spec_keys(st, 'accounts.status.', ARRAY['column', 'enabled', 'disabled']);
	typ := @extschema@._spec_column(rel, st, 'column', 'accounts.status.', true);
	SELECT t.typcategory INTO cat FROM pg_catalog.pg_type t WHERE t.oid = typ;
	IF NOT st ? 'disabled' THEN
		RAISE EXCEPTION 'mapping key "accounts.status.disabled" is required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF typ = 'boolean'::regtype THEN
		IF jsonb_typeof(st->'enabled') IS DISTINCT FROM 'boolean'
		   OR jsonb_typeof(st->'disabled') <> 'boolean'
		   OR st->'enabled' = st->'disabled' THEN
			RAISE EXCEPTION 'mapping keys "accounts.status.enabled" and "accounts.status.disabled" must be opposite booleans for boolean column "%"', st->>'column'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	ELSIF cat = 'D' THEN
		IF st->'disabled' <> '"timestamp"' OR st ? 'enabled' THEN
			RAISE EXCEPTION 'mapping key "accounts.status.disabled" must be "timestamp" (and "enabled" absent) for timestamp column "%"', st->>'column'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'NULL means enabled; disabling stores now().';
		END IF;
	ELSIF cat IN ('S', 'E') THEN
		IF jsonb_typeof(st->'enabled') IS DISTINCT FROM 'string'
		   OR jsonb_typeof(st->'disabled') <> 'string'
		   OR st->'enabled' = st->'disabled' THEN
			RAISE EXCEPTION 'mapping keys "accounts.status.enabled" and "accounts.status.disabled" must be two different strings for % column "%"', typ, st->>'column'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		-- an enum's or domain's input runs as the table's owner
		owner := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = rel);
		PERFORM @extschema@._spec_value(st->>'enabled', typ, 'accounts.status.enabled', owner);
		PERFORM @extschema@._spec_value(st->>'disabled', typ, 'accounts.status.disabled', owner);
	ELSE
		RAISE EXCEPTION 'mapping key "accounts.status.column" names a column of type %', typ
			USING ERRCODE = 'datatype_mismatch',
				  HINT = 'Use a boolean, text, enum or timestamp column.';
	END IF;
END
$$;

-- Validate "attributes": an array of existing, distinct column names.
CREATE FUNCTION @extschema@._spec_attributes(rel oid, section jsonb, path text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e jsonb;
BEGIN
	IF NOT section ? 'attributes' THEN
		RETURN;
	END IF;
	IF jsonb_typeof(section->'attributes') <> 'array' THEN
		RAISE EXCEPTION 'mapping key "%" must be an array of column names', path || 'attributes'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR e IN SELECT jsonb_array_elements(section->'attributes') LOOP
		IF jsonb_typeof(e) <> 'string' THEN
			RAISE EXCEPTION 'mapping key "%" must be an array of column names, found %',
				path || 'attributes', e
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		PERFORM @extschema@._spec_column(rel, jsonb_build_object('attributes', e #>> '{}'),
										 'attributes', path, true);
	END LOOP;
	IF (SELECT count(*) <> count(DISTINCT x) FROM jsonb_array_elements_text(section->'attributes') x) THEN
		RAISE EXCEPTION 'mapping key "%" names a column twice', path || 'attributes'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;

-- The SCIM attribute paths a mapping's "scim.attributes" may name, in their
-- canonical spelling (spec section 11): the core User schema's simple and
-- name sub-attributes, the typed values of emails, phoneNumbers and
-- addresses, and the enterprise extension.  userName, active, userType and
-- groups are not here: they come from accounts.name, status, kind and grants.
CREATE FUNCTION @extschema@._scim_paths() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT ARRAY['externalId', 'displayName', 'nickName', 'profileUrl', 'title',
				 'preferredLanguage', 'locale', 'timezone', 'name.formatted',
				 'name.familyName', 'name.givenName', 'name.middleName',
				 'name.honorificPrefix', 'name.honorificSuffix']
		|| ARRAY(SELECT format('emails[type eq "%s"].value', t)
				   FROM unnest(ARRAY['work', 'home', 'other']) t)
		|| ARRAY(SELECT format('phoneNumbers[type eq "%s"].value', t)
				   FROM unnest(ARRAY['work', 'mobile', 'home', 'fax', 'pager', 'other']) t)
		|| ARRAY(SELECT format('addresses[type eq "%s"].%s', t, a)
				   FROM unnest(ARRAY['work', 'home', 'other']) t,
						unnest(ARRAY['streetAddress', 'locality', 'region', 'postalCode',
									 'country', 'formatted']) a)
		|| ARRAY(SELECT 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:' || a
				   FROM unnest(ARRAY['employeeNumber', 'costCenter', 'organization',
									 'division', 'department', 'manager.value']) a)
$$;

-- The spec with the paths of "scim.attributes" in their canonical spelling
-- (they are case-insensitive on input, as SCIM attribute names are).  A
-- path that is not known, or is named twice, is left for _spec_scim to
-- report.
CREATE FUNCTION @extschema@._scim_canonical(spec jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	attrs jsonb := spec->'scim'->'attributes';
	r jsonb := '{}';
	k text;
	v jsonb;
	c text;
BEGIN
	IF jsonb_typeof(spec) IS DISTINCT FROM 'object' OR jsonb_typeof(spec->'scim') IS DISTINCT FROM 'object'
	   OR jsonb_typeof(attrs) IS DISTINCT FROM 'object' THEN
		RETURN spec;
	END IF;
	FOR k, v IN SELECT e.key, e.value FROM jsonb_each(attrs) e LOOP
		SELECT p INTO c FROM unnest(@extschema@._scim_paths()) p WHERE lower(p) = lower(k);
		c := COALESCE(c, k);
		IF r ? c THEN
			RAISE EXCEPTION 'mapping key scim.attributes."%" names a SCIM attribute twice', left(k, 200)
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Attribute names are case-insensitive: "%s" is "%s".', left(k, 200), c);
		END IF;
		r := r || jsonb_build_object(c, v);
	END LOOP;
	RETURN jsonb_set(spec, '{scim,attributes}', r);
END
$$;

-- Validate the "scim" section (spec section 11): attribute paths mapped to
-- columns of the accounts.attributes allowlist, the attribute a User's grants
-- appear in, and the timestamp columns of meta.created/lastModified.
CREATE FUNCTION @extschema@._spec_scim(acc_rel oid, spec jsonb) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	sc jsonb := @extschema@._spec_object(spec, 'scim', '', true);
	allow jsonb := COALESCE(spec->'accounts'->'attributes', '[]');
	k text;
	v jsonb;
	ug text;
BEGIN
	PERFORM @extschema@._spec_keys(sc, 'scim.', ARRAY['attributes', 'user_grants', 'created',
		'lastModified']);
	IF sc ? 'attributes' THEN
		PERFORM @extschema@._spec_object(sc, 'attributes', 'scim.', true);
		FOR k, v IN SELECT e.key, e.value FROM jsonb_each(sc->'attributes') e ORDER BY e.key LOOP
			IF NOT k = ANY (@extschema@._scim_paths()) THEN
				RAISE EXCEPTION 'mapping key scim.attributes."%" names an unknown SCIM attribute', left(k, 200)
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'Map attributes of the core User schema (such as name.givenName, emails[type eq "work"].value) or of the enterprise extension; userName, active, userType and groups come from accounts.name, status, kind and grants.';
			END IF;
			IF jsonb_typeof(v) <> 'string' OR v #>> '{}' = '' THEN
				RAISE EXCEPTION 'mapping key scim.attributes."%" must be a column name, not %', k,
					CASE WHEN jsonb_typeof(v) = 'string' THEN 'an empty string' ELSE jsonb_typeof(v) END
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF NOT allow ? (v #>> '{}') THEN
				RAISE EXCEPTION 'mapping key scim.attributes."%" names column "%", which is not in accounts.attributes',
					k, left(v #>> '{}', 200)
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'SCIM attributes expose allowlisted columns only: add the column to accounts.attributes.';
			END IF;
		END LOOP;
	END IF;
	ug := @extschema@._spec_string(sc, 'user_grants', 'scim.', false);
	IF ug IS NOT NULL AND NOT ug = ANY (ARRAY['groups', 'roles', 'entitlements']) THEN
		RAISE EXCEPTION 'mapping key "scim.user_grants" must be "groups", "roles" or "entitlements", not "%"', left(ug, 200)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF ug IN ('roles', 'entitlements') AND NOT spec ? 'grants' THEN
		RAISE EXCEPTION 'mapping key "scim.user_grants" is "%", but the mapping has no "grants" section', ug
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A User''s grants can be written only where the mapping says how grants are stored.';
	END IF;
	FOREACH k IN ARRAY ARRAY['created', 'lastModified'] LOOP
		PERFORM @extschema@._spec_type_in(
			@extschema@._spec_column(acc_rel, sc, k, 'scim.', false),
			ARRAY['timestamptz', 'timestamp']::regtype[], 'scim.' || k, 'a timestamp');
	END LOOP;
END
$$;

-- Whether the accounts table has an index that a case-insensitive lookup by
-- name (SCIM's userName eq, lower(name) = lower($1)) can use.
CREATE FUNCTION @extschema@._scim_name_indexed(rel oid, col text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (
		SELECT 1 FROM pg_catalog.pg_index i
		  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
		 WHERE i.indrelid = rel AND i.indpred IS NULL AND i.indexprs IS NOT NULL
		   AND i.indkey[0] = 0 AND am.amname = 'btree'
		   AND pg_catalog.pg_get_indexdef(i.indexrelid, 1, false)
			   IN (format('lower(%I)', col), format('lower((%I)::text)', col)))
$$;

-- Validate a whole spec and return the tables it maps, by section.
CREATE FUNCTION @extschema@._spec_validate(p_app text, spec jsonb)
RETURNS TABLE (role text, relid oid)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	acc jsonb;
	ent jsonb;
	gr jsonb;
	cr jsonb;
	pol jsonb;
	acc_rel oid;
	ent_rel oid;
	gr_rel oid;
	cr_rel oid;
	acc_id regtype;
	ent_id regtype;
	typ regtype;
	ts regtype[] := ARRAY['timestamptz', 'timestamp', 'date']::regtype[];
	k text;
	e jsonb;
	sec1 text;
	sec2 text;
	dup oid;
BEGIN
	IF jsonb_typeof(spec) <> 'object' THEN
		RAISE EXCEPTION 'mapping of application "%" must be a JSON object, not %', p_app,
			jsonb_typeof(spec)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM @extschema@._spec_keys(spec, '', ARRAY['accounts', 'entitlements', 'grants',
		'credentials', 'policy', 'operations', 'scim']);

	-- accounts
	acc := @extschema@._spec_object(spec, 'accounts', '', true);
	PERFORM @extschema@._spec_keys(acc, 'accounts.', ARRAY['table', 'id', 'name', 'status',
		'kind', 'owner', 'attributes']);
	acc_rel := @extschema@._spec_table(acc, 'accounts.');
	acc_id := @extschema@._spec_id(acc_rel, acc, 'accounts.');
	PERFORM @extschema@._spec_column(acc_rel, acc, 'name', 'accounts.', true);
	IF acc ? 'status' THEN
		PERFORM @extschema@._spec_status(acc_rel,
			@extschema@._spec_object(acc, 'status', 'accounts.', true));
	END IF;
	PERFORM @extschema@._spec_column(acc_rel, acc, 'kind', 'accounts.', false);
	typ := @extschema@._spec_column(acc_rel, acc, 'owner', 'accounts.', false);
	IF typ IS NOT NULL THEN
		PERFORM @extschema@._spec_same_type(typ, acc_id, 'accounts.owner', 'accounts.id');
	END IF;
	PERFORM @extschema@._spec_attributes(acc_rel, acc, 'accounts.');
	role := 'accounts'; relid := acc_rel; RETURN NEXT;

	-- entitlements
	ent := @extschema@._spec_object(spec, 'entitlements', '', false);
	IF ent IS NOT NULL THEN
		PERFORM @extschema@._spec_keys(ent, 'entitlements.', ARRAY['table', 'id', 'name',
			'privileged', 'attributes']);
		ent_rel := @extschema@._spec_table(ent, 'entitlements.');
		ent_id := @extschema@._spec_id(ent_rel, ent, 'entitlements.');
		PERFORM @extschema@._spec_column(ent_rel, ent, 'name', 'entitlements.', true);
		PERFORM @extschema@._spec_type_in(
			@extschema@._spec_column(ent_rel, ent, 'privileged', 'entitlements.', false),
			ARRAY['boolean']::regtype[], 'entitlements.privileged', 'boolean');
		PERFORM @extschema@._spec_attributes(ent_rel, ent, 'entitlements.');
		role := 'entitlements'; relid := ent_rel; RETURN NEXT;
	END IF;

	-- grants: a membership table, or an array or scalar column of the accounts table
	gr := @extschema@._spec_object(spec, 'grants', '', false);
	IF gr IS NOT NULL THEN
		IF gr ? 'column' THEN
			PERFORM @extschema@._spec_keys(gr, 'grants.', ARRAY['column']);
			typ := @extschema@._spec_column(acc_rel, gr, 'column', 'grants.', true);
			IF ent_id IS NOT NULL THEN
				IF (SELECT t.typelem <> 0 AND t.typsubscript = 'array_subscript_handler'::regproc
					  FROM pg_catalog.pg_type t WHERE t.oid = typ) THEN
					PERFORM @extschema@._spec_same_type(
						(SELECT t.typelem::regtype FROM pg_catalog.pg_type t WHERE t.oid = typ),
						ent_id, 'grants.column (element)', 'entitlements.id');
				ELSE
					PERFORM @extschema@._spec_same_type(typ, ent_id, 'grants.column',
														'entitlements.id');
				END IF;
			END IF;
		ELSE
			PERFORM @extschema@._spec_keys(gr, 'grants.', ARRAY['table', 'account',
				'entitlement', 'expires']);
			gr_rel := @extschema@._spec_table(gr, 'grants.');
			PERFORM @extschema@._spec_same_type(
				@extschema@._spec_column(gr_rel, gr, 'account', 'grants.', true),
				acc_id, 'grants.account', 'accounts.id');
			typ := @extschema@._spec_column(gr_rel, gr, 'entitlement', 'grants.', true);
			IF ent_id IS NOT NULL THEN
				PERFORM @extschema@._spec_same_type(typ, ent_id, 'grants.entitlement',
													'entitlements.id');
			END IF;
			PERFORM @extschema@._spec_type_in(
				@extschema@._spec_column(gr_rel, gr, 'expires', 'grants.', false),
				ts, 'grants.expires', 'a timestamp');
			role := 'grants'; relid := gr_rel; RETURN NEXT;
		END IF;
	END IF;

	-- credentials of non-human identities
	cr := @extschema@._spec_object(spec, 'credentials', '', false);
	IF cr IS NOT NULL THEN
		PERFORM @extschema@._spec_keys(cr, 'credentials.', ARRAY['table', 'id', 'account',
			'created', 'expires', 'last_used', 'revoked']);
		cr_rel := @extschema@._spec_table(cr, 'credentials.');
		PERFORM @extschema@._spec_id(cr_rel, cr, 'credentials.');
		PERFORM @extschema@._spec_same_type(
			@extschema@._spec_column(cr_rel, cr, 'account', 'credentials.', true),
			acc_id, 'credentials.account', 'accounts.id');
		FOREACH k IN ARRAY ARRAY['created', 'expires', 'last_used', 'revoked'] LOOP
			PERFORM @extschema@._spec_type_in(
				@extschema@._spec_column(cr_rel, cr, k, 'credentials.', false),
				ts, 'credentials.' || k, 'a timestamp');
		END LOOP;
		role := 'credentials'; relid := cr_rel; RETURN NEXT;
	END IF;

	-- policy thresholds for findings
	pol := @extschema@._spec_object(spec, 'policy', '', false);
	IF pol IS NOT NULL THEN
		PERFORM @extschema@._spec_keys(pol, 'policy.', ARRAY['max_credential_age', 'stale_after']);
		FOREACH k IN ARRAY ARRAY['max_credential_age', 'stale_after'] LOOP
			IF pol ? k AND @extschema@._spec_value(@extschema@._spec_string(pol, k, 'policy.', true),
												   'interval', 'policy.' || k)::interval <= interval '0' THEN
				RAISE EXCEPTION 'mapping key "%" must be a positive interval', 'policy.' || k
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		END LOOP;
	END IF;

	-- operations allowlist
	IF spec ? 'operations' THEN
		IF jsonb_typeof(spec->'operations') <> 'array' THEN
			RAISE EXCEPTION 'mapping key "operations" must be an array of operation names'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		FOR e IN SELECT jsonb_array_elements(spec->'operations') LOOP
			IF jsonb_typeof(e) <> 'string' OR NOT (e #>> '{}') = ANY (@extschema@._all_operations()) THEN
				RAISE EXCEPTION 'mapping key "operations" contains unknown operation %', e
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = format('Operations: %s.', array_to_string(@extschema@._all_operations(), ', '));
			END IF;
		END LOOP;
	END IF;

	-- SCIM attributes of Users (connector-gateway)
	IF spec ? 'scim' THEN
		PERFORM @extschema@._spec_scim(acc_rel, spec);
	END IF;

	-- A table plays one part only: its rows are accounts, or roles, or grants.
	SELECT a.s, b.s, a.r INTO sec1, sec2, dup
	  FROM (VALUES (1, 'accounts', acc_rel), (2, 'entitlements', ent_rel),
				   (3, 'grants', gr_rel), (4, 'credentials', cr_rel)) a(o, s, r)
	  JOIN (VALUES (1, 'accounts', acc_rel), (2, 'entitlements', ent_rel),
				   (3, 'grants', gr_rel), (4, 'credentials', cr_rel)) b(o, s, r)
		ON a.r = b.r AND a.o < b.o
	 ORDER BY a.o, b.o LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'table "%" is mapped by both "%.table" and "%.table"',
			dup::regclass, sec1, sec2
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Each section must name its own table.';
	END IF;
END
$$;

-- Check the name of an application.
CREATE FUNCTION @extschema@._check_app_name(p_app text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM @extschema@._require(p_app, 'app');
	IF p_app = '' OR octet_length(p_app) > 63 THEN
		RAISE EXCEPTION 'application name must be 1 to 63 bytes long'
			USING ERRCODE = 'invalid_name',
				  DETAIL = format('The name given is %s bytes long.', octet_length(p_app));
	END IF;
END
$$;

-- Mapping a table installs capture triggers on it and lets the platform
-- write to it as its owner: only a member of the owning role may do that
-- (or a superuser).  The tables of one application have one owner, the
-- role every statement on them runs as.
CREATE FUNCTION @extschema@._check_owner(p_app text, rels oid[]) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	who oid := @extschema@._outer_user();
	t record;
	first oid;
BEGIN
	FOR t IN SELECT c.oid, c.relowner FROM unnest(rels) WITH ORDINALITY r(relid, o)
			   JOIN pg_catalog.pg_class c ON c.oid = r.relid ORDER BY r.o LOOP
		IF NOT pg_has_role(who, t.relowner, 'USAGE') THEN
			RAISE EXCEPTION 'permission denied to map table %', t.oid::regclass
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = format('Table %s is owned by role %s.', t.oid::regclass, t.relowner::regrole),
					  HINT = 'Only a member of the table''s owning role can map it, or unmap it.';
		END IF;
		first := COALESCE(first, t.relowner);
		IF t.relowner <> first THEN
			RAISE EXCEPTION 'tables of application "%" have different owners', p_app
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Table %s is owned by role %s, the accounts table by role %s.',
									  t.oid::regclass, t.relowner::regrole, first::regrole),
					  HINT = 'The connector acts on an application''s tables as their one owner; give them one.';
		END IF;
	END LOOP;
END
$$;

CREATE FUNCTION @extschema@.register_app(app text, spec jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
	p_spec ALIAS FOR $2;
	roles text[];
	rels oid[];
	other record;
BEGIN
	PERFORM @extschema@._check_app_name(p_app);
	PERFORM @extschema@._require(p_spec, 'spec');
	p_spec := @extschema@._scim_canonical(p_spec);

	-- Serialize registrations of one app, then validate everything before storing.
	PERFORM pg_advisory_xact_lock('@extschema@.app'::regclass::oid::int, hashtext(p_app));
	SELECT array_agg(v.role), array_agg(v.relid) INTO roles, rels
	  FROM @extschema@._spec_validate(p_app, p_spec) v;

	PERFORM @extschema@._check_owner(p_app, rels);
	SELECT at.app, at.relid INTO other FROM @extschema@.app_table at
	 WHERE at.relid = ANY (rels) AND at.app <> p_app LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'table "%" is already mapped by application "%"', other.relid, other.app
			USING ERRCODE = 'duplicate_object',
				  HINT = 'A table can belong to one application only; unregister the other first.';
	END IF;

	INSERT INTO @extschema@.app AS a (app, spec) VALUES (p_app, p_spec)
	ON CONFLICT ON CONSTRAINT app_pkey
	DO UPDATE SET spec = EXCLUDED.spec, updated_at = now();
	PERFORM @extschema@._capture_uninstall(p_app);
	PERFORM @extschema@._capture_install(p_app, roles, rels);
	INSERT INTO @extschema@.app_table (app, role, relid, state)
	SELECT p_app, r.role, r.relid, @extschema@._table_state(p_spec, r.role, r.relid)
	  FROM unnest(roles, rels) AS r(role, relid);

	-- SCIM clients look Users up by userName, case-insensitively
	IF p_spec ? 'scim' AND NOT @extschema@._scim_name_indexed(rels[1], p_spec->'accounts'->>'name') THEN
		RAISE NOTICE 'application "%" is mapped for SCIM, but table % has no index on lower(%)',
			p_app, rels[1]::regclass, quote_ident(p_spec->'accounts'->>'name')
			USING HINT = format('A userName filter reads the whole table without one: CREATE INDEX ON %s (lower(%I));',
								rels[1]::regclass, p_spec->'accounts'->>'name');
	END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.register_app(text, jsonb) IS
	'Map (or remap) an application''s access tables; validates the whole spec first.';

CREATE FUNCTION @extschema@.unregister_app(app text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
BEGIN
	PERFORM @extschema@._mapping(p_app);	-- undefined_object when unknown
	PERFORM pg_advisory_xact_lock('@extschema@.app'::regclass::oid::int, hashtext(p_app));
	PERFORM @extschema@._check_owner(p_app, ARRAY(
		SELECT t.relid::oid FROM @extschema@.app_table t WHERE t.app = p_app
		 ORDER BY t.role <> 'accounts', t.role));
	PERFORM @extschema@._capture_uninstall(p_app);
	DELETE FROM @extschema@.app a WHERE a.app = p_app;
END
$$;
COMMENT ON FUNCTION @extschema@.unregister_app(text) IS
	'Remove an application''s mapping and capture triggers; its event history is kept.';
CREATE VIEW @extschema@.apps AS
SELECT a.app,
	   (SELECT pg_catalog.jsonb_object_agg(t.role, t.relid::text ORDER BY t.role)
		  FROM @extschema@.app_table t WHERE t.app = a.app) AS tables,
	   CASE WHEN a.spec ? 'grants' THEN
			CASE WHEN a.spec->'grants' ? 'table' THEN 'membership'
				 ELSE 'column' END
	   END AS grants_shape,
	   CASE WHEN a.spec ? 'operations'
			THEN ARRAY(SELECT pg_catalog.jsonb_array_elements_text(a.spec->'operations'))
			-- _all_operations() inline: a view's function calls are checked as its
			-- reader, and connector_admin executes no internal function
			ELSE ARRAY['grant', 'revoke', 'disable', 'enable', 'create_account', 'update_account',
					   'delete_account', 'offboard', 'revoke_credential', 'create_entitlement',
					   'update_entitlement', 'delete_entitlement'] END AS operations,
	   a.spec,
	   a.registered_at,
	   a.updated_at
  FROM @extschema@.app a;
COMMENT ON VIEW @extschema@.apps IS 'Registered applications, their tables and allowed operations.';
