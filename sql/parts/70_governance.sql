-- Governance (spec sections 8 and 9): reconciliation of a desired state,
-- findings on non-human identities, and expiry of time-bound grants.
--
-- Reconciliation is set-based: the desired state (a jsonb value or a table)
-- and the actual state (whatever shape the mapping has) are each read once
-- by _rc_compare (src/reconcile.c), which returns the differences; the SQL
-- checks below raise the errors when it finds a bad input.  Only the
-- differences are then applied, one by one, through _write(), the path of
-- every platform write, with origin "reconcile".  Expiry revokes through the
-- same path with origin "expiry".

-- Raise invalid_parameter_value for a bad desired state.
CREATE FUNCTION @extschema@._rc_bad(msg text, hint text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF hint IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = msg;
	END IF;
	RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = msg, HINT = hint;
END
$$;

-- Check the shape of a jsonb desired state, up front and entry by entry:
-- the first bad entry raises, naming its index.  Returns "complete".
CREATE FUNCTION @extschema@._rc_check_json(desired jsonb) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	shape_hint constant text :=
		'Pass {"accounts": [{"id": "42", "enabled": true, "entitlements": ["7"]}], "complete": true}.';
	k text;
	bad record;
	v jsonb;
	j bigint;
BEGIN
	IF jsonb_typeof(desired) <> 'object' THEN
		PERFORM @extschema@._rc_bad(format('desired state must be a JSON object, not %s',
										   jsonb_typeof(desired)), shape_hint);
	END IF;
	SELECT x INTO k FROM jsonb_object_keys(desired) x
	 WHERE x NOT IN ('accounts', 'complete') ORDER BY 1 LIMIT 1;
	IF k IS NOT NULL THEN
		PERFORM @extschema@._rc_bad(format('unknown key "%s" in desired state', left(k, 200)),
									'Keys of the desired state: accounts, complete.');
	END IF;
	IF NOT desired ? 'accounts' THEN
		PERFORM @extschema@._rc_bad('desired state has no "accounts"', shape_hint);
	END IF;
	IF jsonb_typeof(desired->'accounts') <> 'array' THEN
		PERFORM @extschema@._rc_bad(format('desired "accounts" must be a JSON array, not %s',
										   jsonb_typeof(desired->'accounts')), shape_hint);
	END IF;
	IF desired ? 'complete' AND jsonb_typeof(desired->'complete') <> 'boolean' THEN
		PERFORM @extschema@._rc_bad(format('desired "complete" must be a boolean, not %s',
										   jsonb_typeof(desired->'complete')));
	END IF;

	-- one pass finds the first bad entry; the branches below say what is wrong
	SELECT x.e, x.o - 1 AS i INTO bad
	  FROM jsonb_array_elements(desired->'accounts') WITH ORDINALITY x(e, o)
	 WHERE jsonb_typeof(x.e) <> 'object'
		OR jsonb_typeof(x.e->'id') IS DISTINCT FROM 'string' AND jsonb_typeof(x.e->'id') IS DISTINCT FROM 'number'
		OR jsonb_typeof(x.e->'enabled') NOT IN ('boolean', 'null')
		OR jsonb_typeof(x.e->'entitlements') NOT IN ('array', 'null')
		-- jsonpath: no subquery per entry
		OR jsonb_path_exists(x.e, '$.keyvalue() ? (@.key != "id" && @.key != "enabled" && @.key != "entitlements")',
							 '{}', true)
		OR jsonb_path_exists(x.e, 'strict $.entitlements[*] ? (@.type() != "string" && @.type() != "number")',
							 '{}', true)
	 ORDER BY x.o LIMIT 1;
	IF NOT FOUND THEN
		RETURN COALESCE((desired->'complete')::boolean, false);
	END IF;
	IF jsonb_typeof(bad.e) <> 'object' THEN
		PERFORM @extschema@._rc_bad(format('desired account %s must be a JSON object, not %s',
										   bad.i, jsonb_typeof(bad.e)), shape_hint);
	ELSIF NOT bad.e ? 'id' OR jsonb_typeof(bad.e->'id') = 'null' THEN
		PERFORM @extschema@._rc_bad(format('desired account %s has no "id"', bad.i), shape_hint);
	ELSIF jsonb_typeof(bad.e->'id') NOT IN ('string', 'number') THEN
		PERFORM @extschema@._rc_bad(format('desired account %s: "id" must be a string, not %s',
										   bad.i, jsonb_typeof(bad.e->'id')));
	END IF;
	SELECT x INTO k FROM jsonb_object_keys(bad.e - 'id' - 'enabled' - 'entitlements') x ORDER BY 1 LIMIT 1;
	IF k IS NOT NULL THEN
		PERFORM @extschema@._rc_bad(format('desired account %s has unknown key "%s"', bad.i, left(k, 200)),
									'Keys of a desired account: id, enabled, entitlements.');
	ELSIF jsonb_typeof(bad.e->'enabled') NOT IN ('boolean', 'null') THEN
		PERFORM @extschema@._rc_bad(format('desired account %s: "enabled" must be a boolean, not %s',
										   bad.i, jsonb_typeof(bad.e->'enabled')));
	ELSIF jsonb_typeof(bad.e->'entitlements') NOT IN ('array', 'null') THEN
		PERFORM @extschema@._rc_bad(format('desired account %s: "entitlements" must be a JSON array, not %s',
										   bad.i, jsonb_typeof(bad.e->'entitlements')));
	END IF;
	SELECT x.v, x.o - 1 INTO v, j
	  FROM jsonb_array_elements(bad.e->'entitlements') WITH ORDINALITY x(v, o)
	 WHERE jsonb_typeof(x.v) NOT IN ('string', 'number') ORDER BY x.o LIMIT 1;
	PERFORM @extschema@._rc_bad(format('desired account %s: entitlement %s must be a string, not %s',
									   bad.i, j, jsonb_typeof(v)));
	RETURN NULL;
END
$$;

-- A regular expression that the text of every valid id of type typ matches
-- and that _id() turns into its canonical form without a subtransaction;
-- NULL when every text is a valid id.  Values that do not match are checked
-- one by one with _parse (which raises the write API's error for the first
-- bad one), so a million common ids cost one regular-expression pass.
CREATE FUNCTION @extschema@._rc_id_regex(typ regtype) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE
		WHEN typ IN ('text'::regtype, 'character varying'::regtype) THEN NULL
		WHEN typ = 'integer'::regtype THEN '^-?[0-9]{1,9}$'
		WHEN typ = 'bigint'::regtype THEN '^-?[0-9]{1,18}$'
		WHEN typ = 'smallint'::regtype THEN '^-?[0-9]{1,4}$'
		WHEN typ = 'uuid'::regtype THEN '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
		END						-- NULL: check every value
$$;

-- Check that every id produced by query src (columns: pos, id text) parses
-- as typ; the first that does not raises (in pos order).
CREATE FUNCTION @extschema@._rc_check_ids(src text, arg jsonb, typ regtype, what text, p_app text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	re text := @extschema@._rc_id_regex(typ);
	v text;
BEGIN
	IF typ IN ('text'::regtype, 'character varying'::regtype) THEN
		RETURN;
	END IF;
	-- the desired state is read with the caller's rights
	FOR v IN SELECT x.id FROM @extschema@._owner_query(@extschema@._outer_user(),
			format('SELECT s.id::text FROM (%s) s(pos, id) WHERE %s ORDER BY s.pos', src,
				   CASE WHEN re IS NULL THEN 'true' ELSE format('s.id !~ %L', re) END),
			arg) AS x(id text) LOOP
		PERFORM @extschema@._parse(v, typ, what, p_app);
	END LOOP;
END
$$;

-- The actual grants of an application as SQL: (account, entitlement) in
-- their column types, on every grants shape (duplicates possible).
CREATE FUNCTION @extschema@._rc_actual_grants_sql(m jsonb) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a jsonb := m->'accounts';
	g jsonb := m->'grants';
	acc_rel regclass := ((a->>'relid')::oid)::regclass;
BEGIN
	IF g IS NULL THEN
		RETURN format('SELECT NULL::%s, NULL::%s WHERE false', @extschema@._account_type(m),
					  COALESCE((m->'cache'->>'entitlement_type')::oid::regtype, 'text'::regtype));
	END IF;
	RETURN CASE @extschema@._grant_shape(m)
		WHEN 'table' THEN format('SELECT g.%I, g.%I FROM %s g', g->>'account', g->>'entitlement',
								 ((g->>'relid')::oid)::regclass)
		WHEN 'array' THEN format('SELECT t.%I, e FROM %s t CROSS JOIN LATERAL pg_catalog.unnest(t.%I) e'
								 ' WHERE e IS NOT NULL', a->>'id', acc_rel, g->>'column')
		ELSE format('SELECT t.%I, t.%I FROM %s t WHERE t.%2$I IS NOT NULL',
					a->>'id', g->>'column', acc_rel) END;
END
$$;

-- The comparison core, in C (src/reconcile.c): reads the desired state and
-- the actual accounts, grants and entitlements once each, into hash tables,
-- and returns {"complete", "rows"}, or "invalid", "dup" or "scalar" when the
-- caller must raise the error that the SQL checks below name.
CREATE FUNCTION @extschema@._rc_compare(m jsonb, desired jsonb, tab_sql text, acc_sql text,
										gr_sql text, ent_sql text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'connector_reconcile_compare'
LANGUAGE C VOLATILE;

-- The checks of the request that need no data: request id, allowlist.
CREATE FUNCTION @extschema@._rc_preflight(m jsonb, enforce boolean, request_id text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	writes constant text[] := ARRAY['grant', 'revoke', 'disable', 'enable'];
BEGIN
	IF request_id IS NOT NULL AND octet_length(request_id) NOT BETWEEN 1 AND 255 THEN
		RAISE EXCEPTION 'request_id must be 1 to 255 bytes long'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF enforce AND m ? 'operations' AND NOT m->'operations' ?| writes THEN
		RAISE EXCEPTION 'reconciliation cannot be enforced in application "%"', m->>'app'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Its operations allowlist permits none of grant, revoke, disable, enable.',
				  HINT = 'Report-only reconciliation (enforce = false) is always allowed; the mapping key "operations" lists the writes the platform may use.';
	END IF;
END
$$;

-- Whether a desired table has the optional column "enabled".
CREATE FUNCTION @extschema@._rc_has_enabled(desired regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute at
					WHERE at.attrelid = desired AND at.attname = 'enabled' AND at.attnum > 0
					  AND NOT at.attisdropped)
$$;

-- Check the rows of a desired table: no null account, every account id
-- parses, one enabled value per account.  Raises the first fault found.
CREATE FUNCTION @extschema@._rc_check_table(m jsonb, desired regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	acc_typ regtype := @extschema@._account_type(m);
	bad text;
BEGIN
	bad := @extschema@._owner_value(@extschema@._outer_user(),
		format('SELECT true FROM %s d WHERE d.account IS NULL LIMIT 1', desired));
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'desired table % has a row with a null account', desired
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM @extschema@._rc_check_ids(format('SELECT 0, d.account FROM %s d', desired), NULL,
									  acc_typ, 'account', m->>'app');
	IF @extschema@._rc_has_enabled(desired) THEN
		bad := @extschema@._owner_value(@extschema@._outer_user(),
			format('SELECT min(d.account) FROM %s d GROUP BY d.account::%s'
				   ' HAVING bool_or(d.enabled) <> bool_and(d.enabled) ORDER BY 1 LIMIT 1',
				   desired, acc_typ));
		IF bad IS NOT NULL THEN
			RAISE EXCEPTION 'account "%" has conflicting enabled values in desired table %',
				left(bad, 200), desired
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give the same enabled value (or NULL) on every row of an account.';
		END IF;
	END IF;
END
$$;

-- The core of reconcile and reconcile_table.  The desired state is the jsonb
-- desired, or (desired NULL) the table tab.  _rc_compare() compares; the
-- checks that raise the documented errors run only when it finds a fault,
-- in the order the API documents: shape of the desired state (or, for a
-- table, null accounts, account ids, enabled values), then request id and
-- allowlist, then ids that do not parse, duplicate accounts, and too many
-- entitlements for a scalar grants column.  For those checks and for the
-- request digest the desired state also comes as four queries over
-- parameter $1 (the jsonb, or NULL for a table):
--   raw_acc (pos, account text), raw_ent (pos, entitlement text): for id checks;
--   src_acc (pos, account text, enabled boolean, manage boolean): one row per
--     account; manage = its entitlements are given and must be compared;
--   src_gr (account text, entitlement text): the desired grants.
-- Returns the differences, applied when enforce is true.
CREATE FUNCTION @extschema@._reconcile(m jsonb, desired jsonb, tab regclass, raw_acc text,
									   raw_ent text, src_acc text, src_gr text, enforce boolean,
									   request_id text)
RETURNS TABLE (action text, account text, entitlement text, detail jsonb)
LANGUAGE plpgsql VOLATILE
-- JIT compilation of the scans costs more than it saves
SET search_path = pg_catalog, pg_temp
SET jit = off AS $$
DECLARE
	p_app text := m->>'app';
	a jsonb := m->'accounts';
	acc_typ regtype := @extschema@._account_type(m);
	ent_typ regtype := COALESCE((m->'cache'->>'entitlement_type')::oid::regtype, 'text'::regtype);
	writes text[] := ARRAY['grant', 'revoke', 'disable', 'enable'];
	res jsonb;
	complete boolean;
	dup jsonb;
	scalar record;
	h text;
	prior jsonb;
	rows jsonb;
	r jsonb;
	op text;
	outcomes jsonb[] := '{}';	-- by result index + 1
	i int;
BEGIN
	PERFORM @extschema@._require(enforce, 'enforce');

	-- The comparison: each side read once, only identifiers in the queries.
	BEGIN
		res := @extschema@._rc_compare(m, desired,
			CASE WHEN tab IS NOT NULL THEN
				format('SELECT d.account, d.entitlement%s FROM %s d',
					   CASE WHEN @extschema@._rc_has_enabled(tab) THEN ', d.enabled' ELSE '' END,
					   tab) END,
			format('SELECT t.%I::%s, %s FROM %s t', a->>'id', acc_typ,
				   @extschema@._enabled_expr(m, 't', true), ((a->>'relid')::oid)::regclass),
			format('SELECT s.a::%s, s.e::%s FROM (%s) s(a, e)', acc_typ, ent_typ,
				   @extschema@._rc_actual_grants_sql(m)),
			CASE WHEN m ? 'entitlements'
				 THEN format('SELECT k.%I::%s FROM %s k', m->'entitlements'->>'id', ent_typ,
							 ((m->'entitlements'->>'relid')::oid)::regclass) END);
	EXCEPTION WHEN data_exception THEN
		-- an id that does not parse: name the first bad one, after the
		-- faults that come first
		IF tab IS NULL THEN
			PERFORM @extschema@._rc_check_json(desired);
		ELSE
			PERFORM @extschema@._rc_check_table(m, tab);
		END IF;
		PERFORM @extschema@._rc_preflight(m, enforce, request_id);
		PERFORM @extschema@._rc_check_ids(raw_acc, desired, acc_typ, 'account', p_app);
		PERFORM @extschema@._rc_check_ids(raw_ent, desired, ent_typ, 'entitlement', p_app);
		RAISE;
	END;
	IF res ? 'invalid' THEN
		IF tab IS NULL THEN
			PERFORM @extschema@._rc_check_json(desired);
		ELSE
			PERFORM @extschema@._rc_check_table(m, tab);
		END IF;
		RAISE EXCEPTION 'the desired state was rejected, but no check says why'
			USING ERRCODE = 'internal_error';
	END IF;
	PERFORM @extschema@._rc_preflight(m, enforce, request_id);
	complete := (res->'complete')::boolean;
	dup := res->'dup';
	IF dup IS NOT NULL THEN
		RAISE EXCEPTION 'account "%" appears more than once in the desired state', left(dup->>'account', 200)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Entries %s name it.',
								  array_to_string(ARRAY(SELECT jsonb_array_elements_text(dup->'pos')), ', ')),
				  HINT = 'Give each account once, with all its entitlements.';
	END IF;
	IF res ? 'scalar' THEN
		SELECT * INTO scalar FROM @extschema@._owner_query(@extschema@._outer_user(),
			format('SELECT s.account::%1$s::text AS account, count(DISTINCT s.entitlement::%2$s) AS n'
				   ' FROM (%3$s) s(account, entitlement)'
				   ' GROUP BY s.account::%1$s HAVING count(DISTINCT s.entitlement::%2$s) > 1'
				   ' ORDER BY s.account::%1$s LIMIT 1', acc_typ, ent_typ, src_gr),
			desired) AS x(account text, n bigint);
		RAISE EXCEPTION 'account "%" has % entitlements in the desired state, but application "%" holds one per account',
			left(scalar.account, 200), scalar.n, p_app
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Mapping key "grants.column" names the scalar column "%s".',
								  m->'grants'->>'column');
	END IF;
	rows := res->'rows';

	-- An enforced request runs once: a retry returns the first outcome.
	IF enforce AND request_id IS NOT NULL THEN
		h := @extschema@._owner_value(@extschema@._outer_user(), format('SELECT pg_catalog.md5(COALESCE((SELECT pg_catalog.string_agg(concat_ws('':'', s.account::%1$s, s.enabled, s.manage), '','' ORDER BY s.account::%1$s)'
					   ' FROM (%3$s) s(pos, account, enabled, manage)), '''') || ''|'' ||'
					   ' COALESCE((SELECT pg_catalog.string_agg(concat_ws('':'', x.account, x.entitlement), '','' ORDER BY x.account, x.entitlement)'
					   ' FROM (SELECT DISTINCT s.account::%1$s AS account, s.entitlement::%2$s AS entitlement FROM (%4$s) s(account, entitlement)) x), ''''))',
					   acc_typ, ent_typ, src_acc, src_gr), desired);
		prior := @extschema@._request_claim(p_app, request_id, 'reconcile',
											jsonb_build_object('desired_md5', h, 'complete', complete));
		IF prior IS NOT NULL THEN
			RETURN QUERY SELECT x->>'action', x->>'account', x->>'entitlement', x->'detail'
						   FROM jsonb_array_elements(prior) x;
			RETURN;
		END IF;
	END IF;

	IF enforce THEN
		-- every write needed must be allowed before anything changes
		FOR op IN SELECT DISTINCT x->>'action' FROM jsonb_array_elements(rows) x
				   WHERE x->>'action' = ANY (writes) AND NOT x->'detail' ? 'unknown_entitlement' LOOP
			PERFORM @extschema@._allow(m, op);
		END LOOP;
		-- shrink access first: revokes and disables, then enables and grants
		FOR i, r IN SELECT x.o - 1, x.v FROM jsonb_array_elements(rows) WITH ORDINALITY x(v, o)
					 WHERE x.v->>'action' = ANY (writes) AND NOT x.v->'detail' ? 'unknown_entitlement'
					 ORDER BY array_position(ARRAY['revoke', 'disable', 'enable', 'grant'], x.v->>'action'), x.o LOOP
			outcomes[i + 1] := (
				@extschema@._write(m, r->>'action',
								   jsonb_strip_nulls(jsonb_build_object('account', r->>'account',
																		'entitlement', r->>'entitlement')),
								   'reconcile'));
		END LOOP;
		-- one pass, not one copy of the whole result per change
		SELECT jsonb_agg(CASE WHEN outcomes[x.o] IS NOT NULL
							  THEN jsonb_set(x.v, '{detail,outcome}', outcomes[x.o])
							  ELSE x.v END ORDER BY x.o)
		  INTO rows FROM jsonb_array_elements(rows) WITH ORDINALITY x(v, o);
		IF request_id IS NOT NULL THEN
			UPDATE @extschema@.request q SET outcome = rows
			 WHERE q.app = p_app AND q.request_id = _reconcile.request_id;
		END IF;
	END IF;
	RETURN QUERY SELECT x->>'action', x->>'account', x->>'entitlement', x->'detail'
				   FROM jsonb_array_elements(rows) x;
END
$$;

CREATE FUNCTION @extschema@.reconcile(app text, desired jsonb, enforce boolean DEFAULT false,
									  request_id text DEFAULT NULL)
RETURNS TABLE (action text, account text, entitlement text, detail jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._write_mapping(app);
	entries constant text :=
		'pg_catalog.jsonb_array_elements($1->''accounts'') WITH ORDINALITY x(e, o)';
	ents constant text :=
		'pg_catalog.jsonb_array_elements_text(CASE WHEN pg_catalog.jsonb_typeof(x.e->''entitlements'') = ''array'''
		' THEN x.e->''entitlements'' ELSE ''[]'' END) v';
BEGIN
	PERFORM @extschema@._require(desired, 'desired');
	PERFORM @extschema@._require(enforce, 'enforce');
	RETURN QUERY SELECT * FROM @extschema@._reconcile(m, desired, NULL,
		format('SELECT x.o - 1, x.e->>''id'' FROM %s', entries),
		format('SELECT x.o - 1, v FROM %s, %s', entries, ents),
		format('SELECT x.o - 1, x.e->>''id'', CASE WHEN pg_catalog.jsonb_typeof(x.e->''enabled'') = ''boolean'''
			   ' THEN (x.e->''enabled'')::boolean END, pg_catalog.jsonb_typeof(x.e->''entitlements'') = ''array'' FROM %s',
			   entries),
		format('SELECT x.e->>''id'', v FROM %s, %s', entries, ents),
		enforce, request_id);
END
$$;
COMMENT ON FUNCTION @extschema@.reconcile(text, jsonb, boolean, text) IS
	'Compare a desired state with the application''s access; report the differences, or apply them (enforce).';

CREATE FUNCTION @extschema@.reconcile_table(app text, desired regclass, enforce boolean DEFAULT false,
											request_id text DEFAULT NULL)
RETURNS TABLE (action text, account text, entitlement text, detail jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._write_mapping(app);
	acc_typ regtype := @extschema@._account_type(m);
	want constant jsonb := '{"account": "text", "entitlement": "text", "enabled": "boolean"}';
	cols jsonb;
	c record;
	bad text;
	en text;
BEGIN
	PERFORM @extschema@._require(desired, 'desired');
	PERFORM @extschema@._require(enforce, 'enforce');
	-- the API runs as its owner: read only what the caller could read
	IF NOT has_table_privilege(@extschema@._outer_user(), desired, 'SELECT') THEN
		RAISE EXCEPTION 'permission denied for table %', desired
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'The desired state is read with the caller''s privileges.';
	END IF;
	SELECT jsonb_object_agg(at.attname, format_type(at.atttypid, NULL)) INTO cols
	  FROM pg_catalog.pg_attribute at
	 WHERE at.attrelid = desired AND at.attnum > 0 AND NOT at.attisdropped;
	FOR c IN SELECT k, want->>k AS typ FROM unnest(ARRAY['account', 'entitlement']) k LOOP
		IF NOT cols ? c.k THEN
			RAISE EXCEPTION 'desired table % has no column "%"', desired, c.k
				USING ERRCODE = 'undefined_column',
					  HINT = 'The desired table has columns account text, entitlement text and optionally enabled boolean.';
		END IF;
	END LOOP;
	SELECT k INTO bad FROM jsonb_object_keys(cols) k WHERE NOT want ? k ORDER BY 1 LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'desired table % has unexpected column "%"', desired, left(bad, 200)
			USING ERRCODE = 'invalid_column_reference',
				  HINT = 'The desired table has columns account text, entitlement text and optionally enabled boolean.';
	END IF;
	SELECT k INTO bad FROM jsonb_object_keys(cols) k WHERE cols->>k <> want->>k ORDER BY 1 LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'column "%" of desired table % has type %, not %', bad, desired,
			cols->>bad, want->>bad
			USING ERRCODE = 'datatype_mismatch';
	END IF;
	en := CASE WHEN cols ? 'enabled' THEN 'd.enabled' ELSE 'NULL::boolean' END;

	-- A desired table is complete: it lists every account the platform
	-- manages, each with all its entitlements.  Its rows are checked (null
	-- accounts, ids, enabled values) by _reconcile.
	RETURN QUERY SELECT * FROM @extschema@._reconcile(m, NULL, desired,
		format('SELECT 0, d.account FROM %s d', desired),
		format('SELECT 0, d.entitlement FROM %s d WHERE d.entitlement IS NOT NULL', desired),
		format('SELECT 0, min(d.account), bool_or(%s), true FROM %s d GROUP BY d.account::%s',
			   en, desired, acc_typ),
		format('SELECT d.account, d.entitlement FROM %s d WHERE d.entitlement IS NOT NULL', desired),
		enforce, request_id);
END
$$;
COMMENT ON FUNCTION @extschema@.reconcile_table(text, regclass, boolean, text) IS
	'reconcile() with the desired state in a table (account text, entitlement text[, enabled boolean]); always complete.';

-- Findings (spec section 9).

-- The policy thresholds of a mapping, with their defaults.
CREATE FUNCTION @extschema@._policy(m jsonb, key text) RETURNS interval
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT COALESCE((m->'policy'->>key)::interval,
					CASE key WHEN 'max_credential_age' THEN interval '90 days'
							 WHEN 'stale_after' THEN interval '30 days' END)
$$;

CREATE FUNCTION @extschema@.findings(app text)
RETURNS TABLE (code text, severity text, account text, detail jsonb, reference text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off AS $$
DECLARE
	m jsonb := @extschema@._write_mapping(app);
	a jsonb := m->'accounts';
	e jsonb := m->'entitlements';
	c jsonb := m->'credentials';
	acc_rel regclass := ((a->>'relid')::oid)::regclass;
	acc_typ regtype := @extschema@._account_type(m);
	ent_typ regtype := COALESCE((m->'cache'->>'entitlement_type')::oid::regtype, 'text'::regtype);
	max_age interval := @extschema@._policy(m, 'max_credential_age');
	stale interval := @extschema@._policy(m, 'stale_after');
	-- without a kind column every account counts as human
	nhi text := CASE WHEN a ? 'kind' THEN format('t.%I IS DISTINCT FROM ''human''', a->>'kind') ELSE 'false' END;
	owner oid := (m->>'owner')::oid;
	cred_sql text;
	priv_sql text;
BEGIN
	PERFORM @extschema@._seal();	-- the latest event of every grant has a position

	-- capture_gap: capture is blind on a mapped table right now
	RETURN QUERY
		SELECT 'capture_gap', 'critical', NULL::text,
			   jsonb_build_object('table', p.table_name, 'problem', p.problem,
								  'reason', 'changes to this table may not be captured: shadow access would go unseen'),
			   'NIST CSF 2.0 DE.CM-09'
		  FROM @extschema@._capture_problems() p WHERE p.app = findings.app
		 ORDER BY p.table_name, p.problem;

	-- orphaned_account: an enabled non-human account nobody answers for
	IF a ? 'kind' THEN
		RETURN QUERY SELECT * FROM @extschema@._owner_query(owner, format($q$
			SELECT 'orphaned_account', 'high', t.%1$I::text,
				   jsonb_build_object('kind', t.%2$I, 'owner', %3$s, 'reason', r.reason),
				   'NHI1:2025'
			  FROM %4$s t
			  CROSS JOIN LATERAL (SELECT %5$s AS reason) r
			 WHERE %6$s AND %7$s AND r.reason IS NOT NULL
			 ORDER BY t.%1$I$q$,
			a->>'id', a->>'kind',
			CASE WHEN a ? 'owner' THEN format('t.%I::text', a->>'owner') ELSE 'NULL::text' END,
			acc_rel,
			CASE WHEN NOT a ? 'owner' THEN '''the mapping names no owner column'''
				 ELSE format($r$(SELECT CASE WHEN t.%1$I IS NULL THEN 'no owner'
									WHEN o.%2$I IS NULL THEN 'the owner does not exist'
									WHEN NOT %3$s THEN 'the owner is disabled' END
								   FROM (SELECT 1) one LEFT JOIN %4$s o ON o.%2$I = t.%1$I)$r$,
							 a->>'owner', a->>'id',
							 @extschema@._enabled_expr(m, 'o', true), acc_rel) END,
			nhi, @extschema@._enabled_expr(m, 't', true))) AS f(code text, severity text, account text, detail jsonb, reference text);
	END IF;

	-- the live credentials: not revoked, not expired
	IF c IS NOT NULL THEN
		cred_sql := format('SELECT k.%I::text AS id, k.%I AS account, %s AS created, %s AS expires, %s AS last_used'
						   ' FROM %s k WHERE %s AND %s',
						   c->>'id', c->>'account',
						   CASE WHEN c ? 'created' THEN format('k.%I::timestamptz', c->>'created') ELSE 'NULL::timestamptz' END,
						   CASE WHEN c ? 'expires' THEN format('k.%I::timestamptz', c->>'expires') ELSE 'NULL::timestamptz' END,
						   CASE WHEN c ? 'last_used' THEN format('k.%I::timestamptz', c->>'last_used') ELSE 'NULL::timestamptz' END,
						   ((c->>'relid')::oid)::regclass,
						   CASE WHEN c ? 'revoked' THEN format('k.%I IS NULL', c->>'revoked') ELSE 'true' END,
						   CASE WHEN c ? 'expires' THEN format('(k.%1$I IS NULL OR k.%1$I > pg_catalog.now())', c->>'expires') ELSE 'true' END);
	ELSE
		cred_sql := format('SELECT NULL::text AS id, NULL::%s AS account, NULL::timestamptz AS created,'
						   ' NULL::timestamptz AS expires, NULL::timestamptz AS last_used WHERE false', acc_typ);
	END IF;

	-- disabled_with_access: a disabled account still holds grants or live credentials
	RETURN QUERY SELECT * FROM @extschema@._owner_query(owner, format($q$
		SELECT 'disabled_with_access', 'high', t.%1$I::text,
			   jsonb_build_object('reason', 'the account is disabled but still holds access',
								  'entitlements', COALESCE(g.ents, '[]'), 'credentials', COALESCE(k.creds, '[]')),
			   'NHI1:2025'
		  FROM %2$s t
		  LEFT JOIN (SELECT y.account, jsonb_agg(DISTINCT y.entitlement::text) AS ents
					   FROM (%3$s) y(account, entitlement) GROUP BY y.account) g ON g.account = t.%1$I
		  LEFT JOIN (SELECT k.account, jsonb_agg(k.id ORDER BY k.id) AS creds
					   FROM (%4$s) k GROUP BY k.account) k ON k.account = t.%1$I
		 WHERE NOT %5$s AND (g.ents IS NOT NULL OR k.creds IS NOT NULL)
		 ORDER BY t.%1$I$q$,
		a->>'id', acc_rel, @extschema@._rc_actual_grants_sql(m), cred_sql,
		@extschema@._enabled_expr(m, 't', true))) AS f(code text, severity text, account text, detail jsonb, reference text);

	-- long_lived_credential and stale_credential (NHI7)
	IF c IS NOT NULL THEN
		RETURN QUERY SELECT * FROM @extschema@._owner_query(owner, format($q$
			SELECT 'long_lived_credential', CASE WHEN k.expires IS NULL THEN 'high' ELSE 'medium' END,
				   k.account::text,
				   jsonb_build_object('credential', k.id, 'created', k.created, 'expires', k.expires,
									  'max_credential_age', $1::text,
									  'reason', CASE WHEN k.expires IS NULL THEN 'the credential never expires'
													 ELSE 'the credential is older than the policy allows' END),
				   'NHI7:2025'
			  FROM (%1$s) k
			 WHERE k.expires IS NULL OR k.created < pg_catalog.now() - $1
			UNION ALL
			SELECT 'stale_credential',
				   CASE WHEN k.last_used IS NULL AND k.created >= pg_catalog.now() - $2 THEN 'low' ELSE 'medium' END,
				   k.account::text,
				   jsonb_build_object('credential', k.id, 'created', k.created, 'last_used', k.last_used,
									  'stale_after', $2::text,
									  'reason', CASE WHEN k.last_used IS NULL THEN 'the credential was never used'
													 ELSE 'the credential was not used within stale_after' END),
				   'NHI7:2025'
			  FROM (%1$s) k
			 WHERE %2$s AND (k.last_used IS NULL OR k.last_used < pg_catalog.now() - $2)
			 ORDER BY 1, 3, 4$q$,
			cred_sql, CASE WHEN c ? 'last_used' THEN 'true' ELSE 'false' END),
			max_age, stale) AS f(code text, severity text, account text, detail jsonb, reference text);
	END IF;

	-- privileged_nhi: a non-human account holding a privileged entitlement
	IF a ? 'kind' AND e ? 'privileged' AND m ? 'grants' THEN
		RETURN QUERY SELECT * FROM @extschema@._owner_query(owner, format($q$
			SELECT 'privileged_nhi', 'high', t.%1$I::text,
				   jsonb_build_object('kind', t.%2$I, 'entitlement', p.%3$I::text, 'entitlement_name', p.%4$I::text,
									  'reason', 'a non-human identity holds a privileged entitlement'),
				   'NHI5:2025'
			  FROM %5$s t
			  JOIN (SELECT DISTINCT y.account, y.entitlement FROM (%6$s) y(account, entitlement)) g ON g.account = t.%1$I
			  JOIN %7$s p ON p.%3$I = g.entitlement AND p.%8$I
			 WHERE %9$s
			 ORDER BY t.%1$I, p.%3$I$q$,
			a->>'id', a->>'kind', e->>'id', e->>'name', acc_rel, @extschema@._rc_actual_grants_sql(m),
			((e->>'relid')::oid)::regclass, e->>'privileged', nhi)) AS f(code text, severity text, account text, detail jsonb, reference text);
	END IF;

	-- shadow_grant: a live grant whose latest event came from direct DML
	IF m ? 'grants' THEN
		priv_sql := CASE WHEN e ? 'privileged'
						 THEN format('SELECT p.%I::text AS id, p.%I::boolean AS privileged FROM %s p',
									 e->>'id', e->>'privileged', ((e->>'relid')::oid)::regclass)
						 ELSE 'SELECT NULL::text AS id, false AS privileged WHERE false' END;
		RETURN QUERY EXECUTE format($q$
			WITH latest AS (
				-- compact events: see connector._event
				SELECT DISTINCT ON (ev->1->>0, ev->2->>0)
					   ev->1->>0 AS account, ev->2->>0 AS entitlement,
					   @extschema@._event_type(ev->0) AS type, @extschema@._origin(o.origin::jsonb) AS origin,
					   @extschema@._event_time(ev->>7, o.occurred_at) AS at,
					   o.position + x.i - 1 AS position
				  FROM @extschema@.outbox o
				 CROSS JOIN LATERAL jsonb_array_elements(o.events::jsonb) WITH ORDINALITY x(ev, i)
				 WHERE o.app = $1 AND @extschema@._event_type(ev->0) IN ('access.granted', 'access.revoked')
				 ORDER BY ev->1->>0, ev->2->>0, o.position DESC, x.i DESC)
			SELECT 'shadow_grant', CASE WHEN COALESCE(p.privileged, false) THEN 'high' ELSE 'medium' END,
				   l.account,
				   jsonb_build_object('entitlement', l.entitlement, 'privileged', COALESCE(p.privileged, false),
									  'granted_at', l.at, 'position', l.position,
									  'db_user', l.origin->>'db_user', 'application_name', l.origin->>'application_name',
									  'reason', 'the grant was made by direct DML, not through the platform'),
				   'NHI5:2025'
			  FROM latest l
			  JOIN @extschema@._owner_query($2, %1$L) AS g(account text, entitlement text)
				ON g.account = l.account AND g.entitlement = l.entitlement
			  LEFT JOIN @extschema@._owner_query($2, %2$L) AS p(id text, privileged boolean)
				ON p.id = l.entitlement
			 WHERE l.type = 'access.granted' AND l.origin->>'via' = 'direct'
			 ORDER BY l.position$q$,
			format('SELECT DISTINCT y.account::text, y.entitlement::text FROM (%s) y(account, entitlement)',
				   @extschema@._rc_actual_grants_sql(m)),
			priv_sql)
		USING app, owner;
	END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.findings(text) IS
	'Non-human identity risks of an application, each with a severity and its OWASP NHI Top 10 (2025) reference.';

-- Expiry of time-bound grants.

-- The expired grants of an application, as (account, entitlement) text.
CREATE FUNCTION @extschema@._expired_grants(m jsonb)
RETURNS TABLE (account text, entitlement text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	g jsonb := m->'grants';
BEGIN
	IF g ? 'expires' THEN
		RETURN QUERY SELECT * FROM @extschema@._owner_query((m->>'owner')::oid,
			format('SELECT DISTINCT g.%I::text, g.%I::text FROM %s g'
				   ' WHERE g.%I <= pg_catalog.now() ORDER BY 1, 2',
				   g->>'account', g->>'entitlement', ((g->>'relid')::oid)::regclass,
				   g->>'expires')) AS x(account text, entitlement text);
	ELSE
		RETURN QUERY SELECT x.account, x.entitlement FROM @extschema@.grant_expiry x
					  WHERE x.app = m->>'app' AND x.expires_at <= now()
					  ORDER BY x.expires_at, x.account, x.entitlement;
	END IF;
END
$$;

CREATE FUNCTION @extschema@.expire_grants(app text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app text;
	m jsonb;
	x record;
	locked boolean;
	still boolean;
	n int := 0;
	state text;
	msg text;
BEGIN
	IF app IS NOT NULL THEN
		PERFORM @extschema@._mapping(app);	-- undefined_object when unknown
	END IF;
	FOR p_app IN SELECT a.app FROM @extschema@.app a
				  WHERE (expire_grants.app IS NULL OR a.app = expire_grants.app) AND a.spec ? 'grants'
				  ORDER BY a.app LOOP
		-- Expiry is the application owner's own policy (its expiry column or
		-- an expiry the platform set): it runs whatever the allowlist says.
		-- The dispatcher calls this every naptime inside its round, which holds
		-- the sealing lock: when nothing has expired, cost one cheap query.
		m := @extschema@._mapping(p_app);
		CONTINUE WHEN NOT EXISTS (SELECT 1 FROM @extschema@._expired_grants(m));
		m := @extschema@._write_mapping(p_app) - 'operations';
		FOR x IN SELECT * FROM @extschema@._expired_grants(m) LOOP
			BEGIN
				-- an account busy in another transaction is left for the next run
				locked := @extschema@._owner_value((m->>'owner')::oid,
					format('SELECT true FROM %s t WHERE t.%I = $1::%s FOR NO KEY UPDATE SKIP LOCKED',
						   ((m->'accounts'->>'relid')::oid)::regclass, m->'accounts'->>'id',
						   @extschema@._account_type(m)),
					x.account)::boolean;
				IF locked IS NULL THEN
					CONTINUE;
				END IF;
				-- renewed meanwhile?  the row lock makes this the latest state
				still := EXISTS (SELECT 1 FROM @extschema@._expired_grants(m) y
								  WHERE y.account = x.account AND y.entitlement = x.entitlement);
				IF still AND @extschema@._write(m, 'revoke',
												jsonb_build_object('account', x.account, 'entitlement', x.entitlement),
												'expiry') #>> '{}' = 'revoked' THEN
					n := n + 1;
				END IF;
				-- a grant removed by other means leaves no expiry behind
				DELETE FROM @extschema@.grant_expiry ge
				 WHERE ge.app = p_app AND ge.account = x.account AND ge.entitlement = x.entitlement
				   AND ge.expires_at <= now();
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
				RAISE WARNING 'could not expire grant of entitlement "%" to account "%" in application "%": %',
					x.entitlement, x.account, p_app, msg
					USING DETAIL = format('SQLSTATE %s; it is retried on the next run.', state);
			END;
		END LOOP;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.expire_grants(text) IS
	'Revoke the grants whose expiry has passed (origin "expiry"); returns how many.  The dispatcher calls it every connector.naptime.';

GRANT EXECUTE ON FUNCTION
	@extschema@.reconcile(text, jsonb, boolean, text),
	@extschema@.reconcile_table(text, regclass, boolean, text),
	@extschema@.findings(text),
	@extschema@.expire_grants(text)
TO connector_platform;

GRANT EXECUTE ON FUNCTION
	@extschema@.findings(text),
	@extschema@.expire_grants(text)
TO connector_admin;
