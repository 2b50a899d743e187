-- Enumeration: keyset-paged reads of accounts, entitlements and credentials.
-- Pages follow the id column's own order (numbers sort numerically) and use
-- its unique index, so the last page costs what the first does.  Each page
-- is read as the owner of the application's tables (_owner_query), so a
-- cast or operator the owner defined never runs with more than its rights.

-- SQL expression (over alias t) for the account's entitlement ids.
CREATE FUNCTION @extschema@._entitlements_expr(m jsonb) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	g jsonb := m->'grants';
BEGIN
	IF g IS NULL THEN
		RETURN '''{}''::text[]';
	ELSIF g ? 'column' THEN
		IF (SELECT t.typsubscript = 'array_subscript_handler'::regproc FROM pg_catalog.pg_type t
			 WHERE t.oid = @extschema@._coltype((m->'accounts'->>'relid')::oid, g->>'column')) THEN
			RETURN format('ARRAY(SELECT s.e::text FROM (SELECT DISTINCT e FROM pg_catalog.unnest(t.%I) e'
						  ' WHERE e IS NOT NULL ORDER BY e) s)', g->>'column');
		END IF;
		RETURN format('CASE WHEN t.%1$I IS NULL THEN ''{}''::text[] ELSE ARRAY[t.%1$I::text] END',
					  g->>'column');
	END IF;
	RETURN format('ARRAY(SELECT s.e::text FROM (SELECT DISTINCT g.%I AS e FROM %s g'
				  ' WHERE g.%I = t.%I ORDER BY 1) s)',
				  g->>'entitlement', ((g->>'relid')::oid)::regclass,
				  g->>'account', m->'accounts'->>'id');
END
$$;

-- SQL expression over alias for "the account is enabled" (true without a
-- status mapping).  The enabled value is parameter $3, or with inline written
-- into the expression as a literal.
CREATE FUNCTION @extschema@._enabled_expr(m jsonb, alias text DEFAULT 't', inline boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	st jsonb := m->'accounts'->'status';
BEGIN
	IF st IS NULL THEN
		RETURN 'true';
	ELSIF st->>'disabled' = 'timestamp' AND NOT st ? 'enabled' THEN
		RETURN format('(%s.%I IS NULL)', alias, st->>'column');
	END IF;
	RETURN format('(%s.%I::text = %s) IS TRUE', alias, st->>'column',
				  CASE WHEN inline THEN quote_nullable(st->>'enabled') ELSE '$3' END);
END
$$;

-- jsonb_build_object(...) over the allowlisted columns of a section.
CREATE FUNCTION @extschema@._attributes_expr(section jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT COALESCE('pg_catalog.jsonb_build_object(' ||
					string_agg(format('%L, t.%I', c, c), ', ' ORDER BY o) || ')',
					'''{}''::jsonb')
	  FROM jsonb_array_elements_text(COALESCE(section->'attributes', '[]')) WITH ORDINALITY x(c, o)
$$;

-- Keyset page: "WHERE id > after ORDER BY id LIMIT n" over table rel.
CREATE FUNCTION @extschema@._page_sql(select_list text, rel oid, idcol text, has_after boolean)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT format('SELECT %s FROM %s t %s ORDER BY t.%I LIMIT $2',
				  select_list, rel::regclass,
				  CASE WHEN has_after
					   THEN format('WHERE t.%I > $1::%s', idcol, @extschema@._coltype(rel, idcol))
					   ELSE '' END,
				  idcol)
$$;

CREATE FUNCTION @extschema@.accounts(app text, after text DEFAULT NULL, "limit" int DEFAULT 1000)
RETURNS TABLE (id text, name text, enabled boolean, kind text, owner text,
			   attributes jsonb, entitlements text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._mapping(app);
	a jsonb := m->'accounts';
	rel oid := (a->>'relid')::oid;
BEGIN
	PERFORM @extschema@._check_limit("limit");
	IF after IS NOT NULL THEN
		after := @extschema@._parse(after, @extschema@._coltype(rel, a->>'id'), 'after', app);
	END IF;
	RETURN QUERY SELECT * FROM @extschema@._owner_query((m->>'owner')::oid,
		@extschema@._page_sql(format(
		't.%I::text, t.%I::text, %s, %s, %s, %s, %s',
		a->>'id', a->>'name', @extschema@._enabled_expr(m),
		CASE WHEN a ? 'kind' THEN format('t.%I::text', a->>'kind') ELSE 'NULL::text' END,
		CASE WHEN a ? 'owner' THEN format('t.%I::text', a->>'owner') ELSE 'NULL::text' END,
		@extschema@._attributes_expr(a), @extschema@._entitlements_expr(m)),
		rel, a->>'id', after IS NOT NULL),
		after, "limit", a->'status'->>'enabled')
		AS x(id text, name text, enabled boolean, kind text, owner text,
			 attributes jsonb, entitlements text[]);
END
$$;
COMMENT ON FUNCTION @extschema@.accounts(text, text, int) IS
	'Page through an application''s accounts in id order, with their entitlements.';

CREATE FUNCTION @extschema@.entitlements(app text, after text DEFAULT NULL, "limit" int DEFAULT 1000)
RETURNS TABLE (id text, name text, privileged boolean, attributes jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._mapping(app);
	e jsonb := m->'entitlements';
	rel oid := (e->>'relid')::oid;
BEGIN
	PERFORM @extschema@._check_limit("limit");
	IF e IS NULL THEN
		RAISE EXCEPTION 'application "%" maps no entitlements table', app
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Add an "entitlements" section to the mapping.';
	END IF;
	IF after IS NOT NULL THEN
		after := @extschema@._parse(after, @extschema@._coltype(rel, e->>'id'), 'after', app);
	END IF;
	RETURN QUERY SELECT * FROM @extschema@._owner_query((m->>'owner')::oid,
		@extschema@._page_sql(format(
		't.%I::text, t.%I::text, %s, %s',
		e->>'id', e->>'name',
		CASE WHEN e ? 'privileged' THEN format('COALESCE(t.%I, false)', e->>'privileged')
			 ELSE 'false' END,
		@extschema@._attributes_expr(e)),
		rel, e->>'id', after IS NOT NULL),
		after, "limit")
		AS x(id text, name text, privileged boolean, attributes jsonb);
END
$$;
COMMENT ON FUNCTION @extschema@.entitlements(text, text, int) IS
	'Page through an application''s entitlements (roles, groups) in id order.';

CREATE FUNCTION @extschema@.credentials(app text, after text DEFAULT NULL, "limit" int DEFAULT 1000)
RETURNS TABLE (id text, account text, created timestamptz, expires timestamptz,
			   last_used timestamptz, revoked timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._mapping(app);
	c jsonb := m->'credentials';
	rel oid := (c->>'relid')::oid;
BEGIN
	PERFORM @extschema@._check_limit("limit");
	IF c IS NULL THEN
		RAISE EXCEPTION 'application "%" maps no credentials table', app
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Add a "credentials" section to the mapping.';
	END IF;
	IF after IS NOT NULL THEN
		after := @extschema@._parse(after, @extschema@._coltype(rel, c->>'id'), 'after', app);
	END IF;
	RETURN QUERY SELECT * FROM @extschema@._owner_query((m->>'owner')::oid,
		@extschema@._page_sql(format(
		't.%I::text, t.%I::text, %s, %s, %s, %s',
		c->>'id', c->>'account',
		CASE WHEN c ? 'created' THEN format('t.%I::timestamptz', c->>'created') ELSE 'NULL::timestamptz' END,
		CASE WHEN c ? 'expires' THEN format('t.%I::timestamptz', c->>'expires') ELSE 'NULL::timestamptz' END,
		CASE WHEN c ? 'last_used' THEN format('t.%I::timestamptz', c->>'last_used') ELSE 'NULL::timestamptz' END,
		CASE WHEN c ? 'revoked' THEN format('t.%I::timestamptz', c->>'revoked') ELSE 'NULL::timestamptz' END),
		rel, c->>'id', after IS NOT NULL),
		after, "limit")
		AS x(id text, account text, created timestamptz, expires timestamptz,
			 last_used timestamptz, revoked timestamptz);
END
$$;
COMMENT ON FUNCTION @extschema@.credentials(text, text, int) IS
	'Page through an application''s NHI credentials (API keys) in id order.';
