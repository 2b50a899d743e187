-- The SQL side of the SCIM gateway (spec section 11, connector-gateway):
-- bearer tokens, the session check that marks a transaction with its SCIM
-- client, and the reads the gateway serves Users and Groups from.
--
-- The gateway logs in as a role granted connector_platform and keeps no
-- state: every rule is here.  Filters arrive as a JSON syntax tree that is
-- validated and compiled into SQL here; the tree names attributes, never
-- columns, so a filter can only compare what the mapping exposes (never a
-- password hash), and its values reach the query as parameters only.

-- Bearer tokens.  Only the SHA-256 of a token is kept; no role can read the
-- table (the tokens view shows everything else).
CREATE TABLE @extschema@.token (
	app			text NOT NULL REFERENCES @extschema@.app ON DELETE CASCADE,
	name		text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
	hash		bytea NOT NULL UNIQUE,
	created		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires		timestamptz,
	last_used	timestamptz,
	revoked		timestamptz,
	PRIMARY KEY (app, name)
);
COMMENT ON TABLE @extschema@.token IS
	'Bearer tokens of the SCIM gateway, by application: the SHA-256 of each, never the token.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.token', '');
REVOKE ALL ON @extschema@.token FROM PUBLIC;

CREATE VIEW @extschema@.tokens AS
SELECT t.app, t.name, t.created, t.expires, t.last_used, t.revoked
  FROM @extschema@.token t;
COMMENT ON VIEW @extschema@.tokens IS
	'Bearer tokens of the SCIM gateway (never the token or its hash).';

-- Check a token name: 1 to 200 characters.
CREATE FUNCTION @extschema@._check_token_name(name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM @extschema@._require(name, 'name');
	IF name = '' OR char_length(name) > 200 THEN
		RAISE EXCEPTION 'token name must be 1 to 200 characters long'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The name given is %s characters long.', char_length(name));
	END IF;
END
$$;

-- A new token is returned once: ctk_ and the base64url (no padding) of 32
-- random bytes, the SHA-256 of three version-4 UUIDs (366 bits from
-- pg_strong_random, as _new_secret).  A revoked token's name may be reused;
-- the new token replaces the old row.
CREATE FUNCTION @extschema@.add_token(app text, name text, expires_at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
	p_name ALIAS FOR $2;
	tok text;
BEGIN
	PERFORM @extschema@._require(p_app, 'app');
	PERFORM @extschema@._require(p_name, 'name');
	PERFORM @extschema@._mapping(p_app);
	PERFORM @extschema@._check_token_name(p_name);
	IF expires_at <= now() THEN
		RAISE EXCEPTION 'expires_at % is in the past', expires_at
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	tok := 'ctk_' || translate(rtrim(encode(sha256(uuid_send(gen_random_uuid())
		|| uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())), 'base64'), '='),
		'+/', '-_');
	INSERT INTO @extschema@.token AS t (app, name, hash, expires)
	VALUES (p_app, p_name, sha256(convert_to(tok, 'UTF8')), expires_at)
	ON CONFLICT ON CONSTRAINT token_pkey DO UPDATE
	   SET hash = EXCLUDED.hash, created = EXCLUDED.created, expires = EXCLUDED.expires,
		   last_used = NULL, revoked = NULL
	 WHERE t.revoked IS NOT NULL;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'token "%" of application "%" already exists', p_name, p_app
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Revoke it first, or choose another name.';
	END IF;
	RETURN tok;
END
$$;
COMMENT ON FUNCTION @extschema@.add_token(text, text, timestamptz) IS
	'Create a SCIM bearer token for an application; returns the token, the only time it can be read.';

CREATE FUNCTION @extschema@.revoke_token(app text, name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
	p_name ALIAS FOR $2;
BEGIN
	PERFORM @extschema@._require(p_app, 'app');
	PERFORM @extschema@._require(p_name, 'name');
	PERFORM @extschema@._mapping(p_app);
	UPDATE @extschema@.token t SET revoked = COALESCE(t.revoked, now())
	 WHERE t.app = p_app AND t.name = p_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'token "%" of application "%" does not exist', left(p_name, 200), p_app
			USING ERRCODE = 'undefined_object';
	END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.revoke_token(text, text) IS
	'Revoke a SCIM bearer token (at once: every request checks it); a revoked token stays listed.';

-- The gateway's first call in each request's transaction.  A token that does
-- not authenticate fails with invalid_authorization_specification (401),
-- and, when it is a real token, a detail saying why; the token is never
-- echoed, and log_min_error_statement keeps the statement out of the log.
CREATE FUNCTION @extschema@.scim_session(app text, token text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET log_min_error_statement = panic AS $$
DECLARE
	p_app ALIAS FOR $1;
	t @extschema@.token;
	why text;
BEGIN
	PERFORM @extschema@._mapping(p_app);
	IF token IS NOT NULL THEN
		SELECT * INTO t FROM @extschema@.token k WHERE k.hash = sha256(convert_to(token, 'UTF8'));
	END IF;
	why := CASE WHEN t.app IS NULL THEN NULL
				WHEN t.app <> p_app THEN 'the token belongs to another application'
				WHEN t.revoked IS NOT NULL THEN 'the token was revoked'
				WHEN t.expires <= now() THEN 'the token has expired' END;
	IF t.app IS NULL THEN
		RAISE EXCEPTION 'invalid bearer token'
			USING ERRCODE = 'invalid_authorization_specification';
	ELSIF why IS NOT NULL THEN
		RAISE EXCEPTION 'invalid bearer token'
			USING ERRCODE = 'invalid_authorization_specification', DETAIL = why;
	END IF;
	PERFORM @extschema@._origin_client('scim:' || t.name, t.app);
	-- at most once a minute, never waiting for another request's update,
	-- and not in a read-only transaction (a hot standby serves reads too)
	IF NOT current_setting('transaction_read_only')::boolean THEN
		UPDATE @extschema@.token k SET last_used = now()
		 WHERE (k.app, k.name) = (SELECT l.app, l.name FROM @extschema@.token l
								   WHERE l.app = t.app AND l.name = t.name
									 AND (l.last_used IS NULL OR l.last_used < now() - interval '1 minute')
									 FOR NO KEY UPDATE SKIP LOCKED);
	END IF;
	RETURN t.name;
END
$$;
COMMENT ON FUNCTION @extschema@.scim_session(text, text) IS
	'Check a SCIM bearer token for an application and mark the transaction''s events with origin.client "scim:<token name>"; returns the token name.';

-- The "scim" section of a mapping as the gateway needs it.
CREATE FUNCTION @extschema@._scim_info(m jsonb) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT jsonb_build_object(
		'app', m->>'app',
		'attributes', COALESCE(m->'scim'->'attributes', '{}'),
		'user_grants', COALESCE(m->'scim'->>'user_grants', 'groups'),
		'created', m->'scim'->'created',
		'lastModified', m->'scim'->'lastModified',
		'has_status', m->'accounts' ? 'status',
		'has_kind', m->'accounts' ? 'kind',
		'has_grants', m ? 'grants',
		'has_entitlements', m ? 'entitlements',
		'operations', COALESCE(m->'operations', to_jsonb(@extschema@._all_operations())),
		'account_id_type', @extschema@._coltype((m->'accounts'->>'relid')::oid, m->'accounts'->>'id')::text,
		'entitlement_id_type', CASE WHEN m ? 'grants' OR m ? 'entitlements'
									THEN @extschema@._entitlement_type(m)::text END,
		-- the keys update_account/update_entitlement take for userName,
		-- userType and a Group's displayName
		'name_column', m->'accounts'->'name',
		'kind_column', m->'accounts'->'kind',
		'entitlement_name_column', m->'entitlements'->'name',
		'writable', to_jsonb(@extschema@._writable_columns(m, false)),
		'entitlement_writable', CASE WHEN m ? 'entitlements'
									 THEN to_jsonb(@extschema@._entitlement_writable(m, false)) END,
		-- the columns update_account/update_entitlement take for a rename
		-- (userName, displayName) and a userType change
		'name_column', m->'accounts'->>'name',
		'kind_column', m->'accounts'->>'kind',
		'entitlement_name_column', m->'entitlements'->>'name')
$$;

CREATE FUNCTION @extschema@.scim_mapping(app text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@._scim_info(@extschema@._mapping(app))
$$;
COMMENT ON FUNCTION @extschema@.scim_mapping(text) IS
	'What the SCIM gateway needs of an application''s mapping: attribute paths, id types, operations, writable columns.';

-- Raise invalid_parameter_value "invalid filter: ...".
CREATE FUNCTION @extschema@._filter_error(msg text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION 'invalid filter: %', msg
		USING ERRCODE = 'invalid_parameter_value';
END
$$;

-- Parse a filter value as type typ and return its canonical text.  A value
-- that does not parse fails with the input function's SQLSTATE (22P02,
-- 22007, 22008, ...) and a message naming the attribute.  Types that are
-- not built in are parsed as the owner of the application's tables.
CREATE FUNCTION @extschema@._filter_value(val text, typ regtype, attr text, owner oid)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	state text;
BEGIN
	IF typ IN ('text'::regtype, 'character varying'::regtype) THEN
		RETURN val;
	END IF;
	RETURN @extschema@._cast_text(val, typ, owner);
EXCEPTION WHEN data_exception THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
	RAISE EXCEPTION 'invalid filter: value "%" is not a valid % for attribute "%"',
		left(val, 200), typ, attr
		USING ERRCODE = state, DETAIL = SQLERRM;
END
$$;

-- Compile one node of a filter tree into a boolean SQL expression over the
-- row alias t.  ctx holds the mapping (m), the resource ("accounts" or
-- "entitlements") and the values collected so far ("vals"): each value is
-- appended there and referenced as ($1)[i]::type, so only identifiers from
-- the mapping and the catalog are ever written into the SQL text.
CREATE FUNCTION @extschema@._filter_sql(INOUT ctx jsonb, f jsonb, depth int, OUT sql text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := ctx->'m';
	res text := ctx->>'resource';
	a jsonb := m->'accounts';
	e jsonb := m->'entitlements';
	g jsonb := m->'grants';
	sec jsonb := m->res;
	rel oid := (sec->>'relid')::oid;
	owner oid := (m->>'owner')::oid;
	k text;
	parts text[] := '{}';
	sub text;
	x jsonb;
	attr text;
	op text;
	ci boolean;
	val jsonb;
	col text;
	typ regtype;
	expr text;
	p text;
	txt text;
	shape text;
	other_typ regtype;
BEGIN
	IF depth > 64 THEN
		RAISE EXCEPTION 'invalid filter: nested more than 64 levels deep'
			USING ERRCODE = 'statement_too_complex';
	END IF;
	IF jsonb_typeof(f) IS DISTINCT FROM 'object' THEN
		PERFORM @extschema@._filter_error(format('a filter must be a JSON object, not %s',
												 COALESCE(jsonb_typeof(f), 'nothing')));
	END IF;

	-- and, or, not
	IF f ? 'and' OR f ? 'or' OR f ? 'not' THEN
		k := CASE WHEN f ? 'and' THEN 'and' WHEN f ? 'or' THEN 'or' ELSE 'not' END;
		IF (SELECT count(*) FROM jsonb_object_keys(f)) <> 1 THEN
			PERFORM @extschema@._filter_error(format('"%s" must be the only key of its object', k));
		END IF;
		IF k = 'not' THEN
			SELECT r.ctx, r.sql INTO ctx, sub FROM @extschema@._filter_sql(ctx, f->'not', depth + 1) r;
			sql := format('(NOT %s)', sub);
			RETURN;
		END IF;
		IF jsonb_typeof(f->k) <> 'array' OR jsonb_array_length(f->k) = 0 THEN
			PERFORM @extschema@._filter_error(format('"%s" must be a non-empty array of filters', k));
		END IF;
		FOR x IN SELECT y FROM jsonb_array_elements(f->k) y LOOP
			SELECT r.ctx, r.sql INTO ctx, sub FROM @extschema@._filter_sql(ctx, x, depth + 1) r;
			parts := parts || sub;
		END LOOP;
		sql := '(' || array_to_string(parts, CASE k WHEN 'and' THEN ' AND ' ELSE ' OR ' END) || ')';
		RETURN;
	END IF;

	-- a comparison
	FOR k IN SELECT y FROM jsonb_object_keys(f) y ORDER BY 1 LOOP
		IF NOT k = ANY (ARRAY['attr', 'op', 'value', 'ci']) THEN
			PERFORM @extschema@._filter_error(format('unknown key "%s"', left(k, 100)));
		END IF;
	END LOOP;
	IF jsonb_typeof(f->'attr') IS DISTINCT FROM 'string' THEN
		PERFORM @extschema@._filter_error('"attr" must be a string');
	END IF;
	attr := f->>'attr';
	op := f->>'op';
	IF jsonb_typeof(f->'op') IS DISTINCT FROM 'string'
	   OR NOT op = ANY (ARRAY['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'pr']) THEN
		PERFORM @extschema@._filter_error(format('unknown operator %s', COALESCE(left((f->'op')::text, 100), 'nothing')));
	END IF;
	IF f ? 'ci' AND jsonb_typeof(f->'ci') <> 'boolean' THEN
		PERFORM @extschema@._filter_error('"ci" must be true or false');
	END IF;
	ci := COALESCE((f->>'ci')::boolean, false);
	IF op = 'pr' AND f ? 'value' THEN
		PERFORM @extschema@._filter_error('operator "pr" takes no value');
	ELSIF op <> 'pr' AND NOT f ? 'value' THEN
		PERFORM @extschema@._filter_error(format('operator "%s" needs a value', op));
	END IF;
	val := f->'value';
	IF jsonb_typeof(val) IN ('object', 'array') THEN
		PERFORM @extschema@._filter_error(format('the value of "%s" must be a string, number, boolean or null', left(attr, 100)));
	ELSIF jsonb_typeof(val) = 'null' AND op NOT IN ('eq', 'ne') THEN
		PERFORM @extschema@._filter_error(format('operator "%s" cannot compare with null', op));
	END IF;
	txt := val #>> '{}';

	-- member: accounts holding an entitlement, entitlements held by an account
	IF attr = 'member' THEN
		IF g IS NULL THEN
			PERFORM @extschema@._filter_error(format('attribute "member" is not mapped in application "%s"', m->>'app'));
		ELSIF op NOT IN ('eq', 'pr') OR txt IS NULL AND op = 'eq' THEN
			PERFORM @extschema@._filter_error(format('attribute "member" supports "eq" with a value and "pr", not "%s"', op));
		END IF;
		shape := @extschema@._grant_shape(m);
		other_typ := CASE res WHEN 'accounts' THEN @extschema@._entitlement_type(m)
							  ELSE @extschema@._coltype((a->>'relid')::oid, a->>'id') END;
		IF op = 'eq' THEN
			ctx := jsonb_set(ctx, '{vals}', (ctx->'vals') || to_jsonb(@extschema@._filter_value(txt, other_typ, attr, owner)));
			p := format('($1)[%s]::%s', jsonb_array_length(ctx->'vals'), other_typ);
		END IF;
		IF shape = 'table' THEN
			sql := format('EXISTS (SELECT 1 FROM %s g WHERE g.%I = t.%I%s)',
						  ((g->>'relid')::oid)::regclass,
						  CASE res WHEN 'accounts' THEN g->>'account' ELSE g->>'entitlement' END,
						  sec->>'id',
						  CASE WHEN op = 'eq' THEN format(' AND g.%I = %s',
								CASE res WHEN 'accounts' THEN g->>'entitlement' ELSE g->>'account' END, p)
							   ELSE '' END);
		ELSIF res = 'accounts' THEN
			sql := CASE WHEN shape = 'array' AND op = 'eq' THEN format('(%s = ANY (t.%I))', p, g->>'column')
						WHEN shape = 'array' THEN format('EXISTS (SELECT 1 FROM pg_catalog.unnest(t.%I) x WHERE x IS NOT NULL)', g->>'column')
						WHEN op = 'eq' THEN format('(t.%I = %s)', g->>'column', p)
						ELSE format('(t.%I IS NOT NULL)', g->>'column') END;
		ELSE
			sql := format('EXISTS (SELECT 1 FROM %s a WHERE %s%s)', ((a->>'relid')::oid)::regclass,
						  CASE shape WHEN 'array' THEN format('t.%I = ANY (a.%I)', e->>'id', g->>'column')
									 ELSE format('a.%I = t.%I', g->>'column', e->>'id') END,
						  CASE WHEN op = 'eq' THEN format(' AND a.%I = %s', a->>'id', p) ELSE '' END);
		END IF;
		RETURN;
	END IF;

	-- enabled: the account's status
	IF attr = 'enabled' AND res = 'accounts' THEN
		IF op NOT IN ('eq', 'ne', 'pr') THEN
			PERFORM @extschema@._filter_error(format('attribute "enabled" supports "eq", "ne" and "pr", not "%s"', op));
		ELSIF op <> 'pr' AND txt IS NULL THEN
			PERFORM @extschema@._filter_error('attribute "enabled" cannot be compared with null');
		ELSIF op <> 'pr' AND jsonb_typeof(val) <> 'boolean' AND lower(txt) NOT IN ('true', 'false') THEN
			RAISE EXCEPTION 'invalid filter: value "%" is not a valid boolean for attribute "enabled"', left(txt, 200)
				USING ERRCODE = 'invalid_text_representation';
		END IF;
		IF NOT a ? 'status' THEN
			expr := 'true';
		ELSIF a->'status'->>'disabled' = 'timestamp' AND NOT a->'status' ? 'enabled' THEN
			expr := format('(t.%I IS NULL)', a->'status'->>'column');
		ELSE
			ctx := jsonb_set(ctx, '{vals}', (ctx->'vals') || to_jsonb(a->'status'->>'enabled'));
			expr := format('(t.%I::text = ($1)[%s]) IS TRUE', a->'status'->>'column', jsonb_array_length(ctx->'vals'));
		END IF;
		IF op = 'pr' THEN
			sql := 'true';
			RETURN;
		END IF;
		ctx := jsonb_set(ctx, '{vals}', (ctx->'vals') || to_jsonb(lower(txt)));
		sql := format('(%s %s ($1)[%s]::boolean)', expr, CASE op WHEN 'eq' THEN '=' ELSE '<>' END,
					  jsonb_array_length(ctx->'vals'));
		RETURN;
	END IF;

	-- a column
	col := CASE
		WHEN attr = 'id' THEN sec->>'id'
		WHEN attr = 'name' THEN sec->>'name'
		WHEN attr = 'kind' AND res = 'accounts' THEN a->>'kind'
		WHEN attr IN ('created', 'lastModified') AND res = 'accounts' THEN m->'scim'->>attr
		WHEN attr LIKE 'col:%' AND res = 'accounts'
			 AND EXISTS (SELECT 1 FROM jsonb_each_text(COALESCE(m->'scim'->'attributes', '{}')) s
						  WHERE s.value = substr(attr, 5)) THEN substr(attr, 5)
		WHEN attr LIKE 'col:%' AND res = 'entitlements'
			 AND COALESCE(e->'attributes', '[]') ? substr(attr, 5) THEN substr(attr, 5) END;
	IF col IS NULL THEN
		PERFORM @extschema@._filter_error(format('attribute "%s" cannot be filtered on in application "%s"',
												 left(attr, 200), m->>'app'));
	END IF;
	typ := @extschema@._coltype(rel, col);
	IF op = 'pr' THEN
		sql := format('(t.%1$I IS NOT NULL AND t.%1$I::text <> %2$L)', col, '');
		RETURN;
	ELSIF txt IS NULL THEN
		sql := format('(t.%I IS %s NULL)', col, CASE op WHEN 'eq' THEN '' ELSE 'NOT' END);
		RETURN;
	END IF;

	IF op IN ('co', 'sw', 'ew') THEN
		-- a LIKE pattern with the value's own wildcards escaped
		txt := replace(replace(replace(txt, '\', '\\'), '%', '\%'), '_', '\_');
		txt := CASE op WHEN 'co' THEN '%' || txt || '%' WHEN 'sw' THEN txt || '%' ELSE '%' || txt END;
		ctx := jsonb_set(ctx, '{vals}', (ctx->'vals') || to_jsonb(txt));
		p := format('($1)[%s]', jsonb_array_length(ctx->'vals'));
		sql := CASE WHEN ci THEN format('(pg_catalog.lower(t.%I::text) LIKE pg_catalog.lower(%s))', col, p)
					ELSE format('(t.%I::text LIKE %s)', col, p) END;
		RETURN;
	END IF;

	op := CASE op WHEN 'eq' THEN '=' WHEN 'ne' THEN '<>' WHEN 'gt' THEN '>' WHEN 'ge' THEN '>='
				  WHEN 'lt' THEN '<' ELSE '<=' END;
	IF ci THEN
		ctx := jsonb_set(ctx, '{vals}', (ctx->'vals') || to_jsonb(txt));
		p := format('pg_catalog.lower(($1)[%s])', jsonb_array_length(ctx->'vals'));
		expr := format('pg_catalog.lower(t.%I::text)', col);
	ELSE
		ctx := jsonb_set(ctx, '{vals}', (ctx->'vals')
						 || to_jsonb(@extschema@._filter_value(txt, typ, attr, owner)));
		p := format('($1)[%s]::%s', jsonb_array_length(ctx->'vals'), typ);
		expr := format('t.%I', col);
	END IF;
	-- ne also matches an attribute without a value
	sql := CASE WHEN op = '<>' THEN format('(%s IS DISTINCT FROM %s)', expr, p)
				ELSE format('(%s %s %s)', expr, op, p) END;
END
$$;

-- Compile a whole filter (NULL: every row) for the resource; returns the
-- WHERE condition and the values array it reads as $1.
CREATE FUNCTION @extschema@._filter_compile(m jsonb, resource text, f jsonb,
											OUT cond text, OUT vals text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ctx jsonb := jsonb_build_object('m', m, 'resource', resource, 'vals', '[]'::jsonb);
BEGIN
	IF f IS NULL OR jsonb_typeof(f) = 'null' THEN
		cond := 'true';
		vals := '{}';
		RETURN;
	END IF;
	SELECT r.ctx, r.sql INTO ctx, cond FROM @extschema@._filter_sql(ctx, f, 1) r;
	vals := ARRAY(SELECT jsonb_array_elements_text(ctx->'vals'));
END
$$;

-- Check the paging arguments of the SCIM reads.
CREATE FUNCTION @extschema@._scim_paging(skip bigint, lim int) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM @extschema@._require(skip, 'skip');
	PERFORM @extschema@._require(lim, 'limit');
	IF lim < 0 OR lim > 1000 THEN
		RAISE EXCEPTION 'limit % is out of range', lim
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a limit between 0 and 1000.';
	ELSIF skip < 0 THEN
		RAISE EXCEPTION 'skip % is out of range', skip
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'skip counts rows to leave out, from 0.';
	END IF;
END
$$;

-- jsonb_build_object over columns of alias t by name, in chunks of 50 pairs
-- (a function takes at most 100 arguments); '{}' for none.
CREATE FUNCTION @extschema@._columns_json(cols text[]) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT COALESCE(string_agg(chunk, ' OPERATOR(pg_catalog.||) ' ORDER BY n), '''{}''::jsonb')
	  FROM (SELECT (o - 1) / 50 AS n,
				   'pg_catalog.jsonb_build_object(' || string_agg(format('%L, t.%I', c, c), ', ' ORDER BY o) || ')' AS chunk
			  FROM unnest(cols) WITH ORDINALITY x(c, o) GROUP BY 1) s
$$;

-- The two statements of a SCIM page over the resource table (alias t):
-- the count of the filter ($1 the values), and the page in id order ($2
-- the total, $3 the after id, $4 skip, $5 limit).
CREATE FUNCTION @extschema@._scim_sql(m jsonb, resource text, select_list text, cond text,
									  has_after boolean, OUT count_sql text, OUT page_sql text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT format('SELECT count(*) FROM %s t WHERE %s', ((m->resource->>'relid')::oid)::regclass, cond),
		   format('SELECT $2::bigint, %s FROM %s t WHERE (%s)%s ORDER BY t.%I OFFSET $4 LIMIT $5',
				  select_list, ((m->resource->>'relid')::oid)::regclass, cond,
				  CASE WHEN has_after
					   THEN format(' AND t.%I > $3::%s', m->resource->>'id',
								   @extschema@._coltype((m->resource->>'relid')::oid, m->resource->>'id'))
					   ELSE '' END,
				  m->resource->>'id')
$$;

-- Run a SCIM page: the total (when asked), then the rows of the page.
-- select_list is over alias t, ncols columns of text.
CREATE FUNCTION @extschema@._scim_page(m jsonb, resource text, select_list text, ncols int,
									   filter jsonb, after text, skip bigint, lim int,
									   count_total boolean)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	sec jsonb := m->resource;
	rel oid := (sec->>'relid')::oid;
	owner oid := (m->>'owner')::oid;
	f record;
	q record;
	total bigint;
BEGIN
	PERFORM @extschema@._scim_paging(skip, lim);
	f := @extschema@._filter_compile(m, resource, filter);
	IF after IS NOT NULL THEN
		after := @extschema@._parse(after, @extschema@._coltype(rel, sec->>'id'), 'after', m->>'app', owner);
	END IF;
	q := @extschema@._scim_sql(m, resource, select_list, f.cond, after IS NOT NULL);
	IF count_total THEN
		total := @extschema@._owner_value(owner, q.count_sql, f.vals)::bigint;
	END IF;
	IF lim = 0 THEN
		RETURN QUERY SELECT * FROM @extschema@._owner_query(owner,
			format('SELECT $2::bigint%s', repeat(', NULL::text', ncols)), f.vals, total)
			AS x(total bigint, a text, b text, c text, d text, e text, f text);
		RETURN;
	END IF;
	RETURN QUERY SELECT * FROM @extschema@._owner_query(owner, q.page_sql, f.vals, total, after, skip, lim)
		AS x(total bigint, a text, b text, c text, d text, e text, f text);
END
$$;

CREATE FUNCTION @extschema@.scim_accounts(app text, filter jsonb DEFAULT NULL,
										  after text DEFAULT NULL, skip bigint DEFAULT 0,
										  "limit" int DEFAULT 100, count_total boolean DEFAULT true)
RETURNS TABLE (total bigint, id text, name text, enabled boolean, kind text,
			   attributes jsonb, entitlements jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._write_mapping(app);
	a jsonb := m->'accounts';
	e jsonb := m->'entitlements';
	g jsonb := m->'grants';
	cols text[];
	ents text;
	en text;
BEGIN
	PERFORM @extschema@._require(count_total, 'count_total');
	cols := ARRAY(SELECT DISTINCT c FROM (
		SELECT s.value AS c FROM jsonb_each_text(COALESCE(m->'scim'->'attributes', '{}')) s
		UNION ALL SELECT m->'scim'->>'created'
		UNION ALL SELECT m->'scim'->>'lastModified') x WHERE c IS NOT NULL ORDER BY c);
	-- the account's grants, [{"id", "name"}] in entitlement id order
	IF g IS NULL THEN
		ents := '''[]''';
	ELSE
		ents := format('(SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(''id'', s.x::text, ''name'', %s) ORDER BY s.x), ''[]'')'
					   ' FROM (%s) s(x)%s)',
					   CASE WHEN e IS NULL THEN 'NULL::text' ELSE format('en.%I::text', e->>'name') END,
					   CASE @extschema@._grant_shape(m)
						 WHEN 'table' THEN format('SELECT DISTINCT g.%I FROM %s g WHERE g.%I = t.%I',
												  g->>'entitlement', ((g->>'relid')::oid)::regclass,
												  g->>'account', a->>'id')
						 WHEN 'array' THEN format('SELECT DISTINCT y FROM pg_catalog.unnest(t.%I) y WHERE y IS NOT NULL',
												  g->>'column')
						 ELSE format('SELECT t.%I WHERE t.%1$I IS NOT NULL', g->>'column') END,
					   CASE WHEN e IS NULL THEN ''
							ELSE format(' LEFT JOIN %s en ON en.%I = s.x', ((e->>'relid')::oid)::regclass,
										e->>'id') END);
	END IF;
	en := @extschema@._enabled_expr(m, 't', true);
	RETURN QUERY SELECT x.total, x.a, x.b, x.c::boolean, x.d, x.e::jsonb, x.f::jsonb
	  FROM @extschema@._scim_page(m, 'accounts',
		format('t.%I::text, t.%I::text, (%s)::text, %s, (%s)::text, (%s)::text',
			   a->>'id', a->>'name', en,
			   CASE WHEN a ? 'kind' THEN format('t.%I::text', a->>'kind') ELSE 'NULL::text' END,
			   @extschema@._columns_json(cols), ents),
		6, filter, after, skip, "limit", count_total)
		AS x(total bigint, a text, b text, c text, d text, e text, f text);
END
$$;
COMMENT ON FUNCTION @extschema@.scim_accounts(text, jsonb, text, bigint, int, boolean) IS
	'SCIM Users: a filtered page of accounts in id order, with the filter''s total, SCIM-mapped columns and grants.';

-- scim_entitlements' body; PL/pgSQL cannot have an argument and a result
-- column both named members, as the API has.
CREATE FUNCTION @extschema@._scim_entitlements(app text, filter jsonb, after text, skip bigint,
											   lim int, count_total boolean, members boolean)
RETURNS TABLE (total bigint, id text, name text, attributes jsonb, member_list jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._write_mapping(app);
	a jsonb := m->'accounts';
	e jsonb := @extschema@._entitlements_section(m);
	g jsonb := m->'grants';
	mem text;
	arel regclass := ((a->>'relid')::oid)::regclass;
BEGIN
	PERFORM @extschema@._require(count_total, 'count_total');
	PERFORM @extschema@._require(members, 'members');
	-- the accounts holding it, [{"value", "display"}] in account id order
	IF NOT members THEN
		mem := 'NULL::text';
	ELSIF g IS NULL THEN
		mem := '''[]''';
	ELSE
		mem := format('(SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(''value'', ac.%1$I::text, ''display'', ac.%2$I::text) ORDER BY ac.%1$I), ''[]'')::text'
					  ' FROM %3$s ac WHERE %4$s)',
					  a->>'id', a->>'name', arel,
					  CASE @extschema@._grant_shape(m)
						WHEN 'table' THEN format('EXISTS (SELECT 1 FROM %s g WHERE g.%I = ac.%I AND g.%I = t.%I)',
												 ((g->>'relid')::oid)::regclass, g->>'account', a->>'id',
												 g->>'entitlement', e->>'id')
						WHEN 'array' THEN format('t.%I = ANY (ac.%I)', e->>'id', g->>'column')
						ELSE format('ac.%I = t.%I', g->>'column', e->>'id') END);
	END IF;
	RETURN QUERY SELECT x.total, x.a, x.b, x.c::jsonb, x.d::jsonb
	  FROM @extschema@._scim_page(m, 'entitlements',
		format('t.%I::text, t.%I::text, (%s)::text, %s, NULL::text, NULL::text',
			   e->>'id', e->>'name',
			   @extschema@._columns_json(ARRAY(SELECT jsonb_array_elements_text(COALESCE(e->'attributes', '[]')))),
			   mem),
		6, filter, after, skip, lim, count_total)
		AS x(total bigint, a text, b text, c text, d text, e text, f text);
END
$$;

CREATE FUNCTION @extschema@.scim_entitlements(app text, filter jsonb DEFAULT NULL,
											  after text DEFAULT NULL, skip bigint DEFAULT 0,
											  "limit" int DEFAULT 100, count_total boolean DEFAULT true,
											  members boolean DEFAULT true)
RETURNS TABLE (total bigint, id text, name text, attributes jsonb, members jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT * FROM @extschema@._scim_entitlements($1, $2, $3, $4, $5, $6, $7)
$$;
COMMENT ON FUNCTION @extschema@.scim_entitlements(text, jsonb, text, bigint, int, boolean, boolean) IS
	'SCIM Groups: a filtered page of entitlements in id order, with the filter''s total and members.';

GRANT SELECT ON @extschema@.tokens TO connector_admin;
GRANT EXECUTE ON FUNCTION
	@extschema@.add_token(text, text, timestamptz),
	@extschema@.revoke_token(text, text)
TO connector_admin;
GRANT EXECUTE ON FUNCTION
	@extschema@.scim_session(text, text),
	@extschema@.scim_mapping(text),
	@extschema@.scim_accounts(text, jsonb, text, bigint, int, boolean),
	@extschema@.scim_entitlements(text, jsonb, text, bigint, int, boolean, boolean)
TO connector_platform;
