-- Platform writes (spec section 5): grant, revoke, disable, enable,
-- create/update/delete_account, offboard, revoke_credential,
-- create/update/delete_entitlement (section 11) and apply.
--
-- Every public function turns its arguments into a JSON object and hands it
-- to _write(), the one dispatcher: it enforces the mapping's "operations"
-- allowlist, honours idempotency keys, marks the origin of the change and
-- runs the per-operation function.  apply() and reconciliation reuse it, so a
-- batch or an enforced reconciliation takes exactly the path of a single call.
--
-- Race safety: every write on an account first locks the account row, so
-- concurrent writes on one account run one after the other and each sees the
-- previous one's result (READ COMMITTED takes a new snapshot per statement).
-- That is what keeps a membership table without a unique constraint free of
-- duplicate rows.

-- Idempotency keys: the first outcome of each (app, request_id).
CREATE TABLE @extschema@.request (
	app			text NOT NULL REFERENCES @extschema@.app ON DELETE CASCADE,
	request_id	text NOT NULL,
	operation	text NOT NULL,
	args		jsonb NOT NULL,
	outcome		jsonb,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (app, request_id)
);
CREATE INDEX request_created_at_idx ON @extschema@.request (created_at);
COMMENT ON TABLE @extschema@.request IS
	'Idempotency records of platform writes, kept for connector.retention (see purge_requests).';

-- Expiry of time-bound grants the mapping has no column for.
CREATE TABLE @extschema@.grant_expiry (
	app			text NOT NULL REFERENCES @extschema@.app ON DELETE CASCADE,
	account		text NOT NULL,
	entitlement	text NOT NULL,
	expires_at	timestamptz NOT NULL,
	PRIMARY KEY (app, account, entitlement)
);
CREATE INDEX grant_expiry_expires_at_idx ON @extschema@.grant_expiry (expires_at);
COMMENT ON TABLE @extschema@.grant_expiry IS
	'Expiry of time-bound grants whose mapping has no grants.expires column (ids in canonical text form).';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.grant_expiry', '');

-- Refuse an operation that the mapping's "operations" allowlist leaves out.
CREATE FUNCTION @extschema@._allow(m jsonb, op text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF m ? 'operations' AND NOT m->'operations' ? op THEN
		RAISE EXCEPTION 'operation "%" is not allowed in application "%"', op, m->>'app'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Allowed operations: %s.',
								  COALESCE(NULLIF(array_to_string(ARRAY(
									SELECT jsonb_array_elements_text(m->'operations')), ', '), ''),
										   'none')),
				  HINT = 'The mapping key "operations" lists the writes the platform may use; re-register the application to change it.';
	END IF;
END
$$;

-- The accounts table's id column type.
CREATE FUNCTION @extschema@._account_type(m jsonb) RETURNS regtype
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT COALESCE((m->'cache'->>'account_type')::oid::regtype,
					@extschema@._coltype((m->'accounts'->>'relid')::oid, m->'accounts'->>'id'))
$$;

-- Parse an id as type typ and return its canonical text, like _parse.  Ids
-- of the common types that plainly parse take a fast path without _parse's
-- exception block: a subtransaction per id would cost time, and in a large
-- apply() batch the subtransactions would overflow the per-backend cache
-- and slow every other session's snapshots.
CREATE FUNCTION @extschema@._id(val text, typ regtype, what text, p_app text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF typ IN ('text'::regtype, 'character varying'::regtype) THEN
		RETURN val;
	ELSIF typ = 'integer'::regtype AND val ~ '^-?[0-9]{1,9}$' THEN
		RETURN val::int4::text;
	ELSIF typ = 'bigint'::regtype AND val ~ '^-?[0-9]{1,18}$' THEN
		RETURN val::int8::text;
	ELSIF typ = 'uuid'::regtype
		  AND val ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
		RETURN val::uuid::text;
	END IF;
	RETURN @extschema@._parse(val, typ, what, p_app);
END
$$;

-- Parse an account id, lock the account row until the end of the transaction
-- and return its id in canonical text form.  Every write on an account starts
-- here: the lock serialises concurrent writes on one account.
CREATE FUNCTION @extschema@._lock_account(m jsonb, account text, for_delete boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a jsonb := m->'accounts';
	typ regtype := @extschema@._account_type(m);
	id text;
	found_id text;
BEGIN
	PERFORM @extschema@._require(account, 'account');
	id := @extschema@._id(account, typ, 'account', m->>'app');
	found_id := @extschema@._owner_value((m->>'owner')::oid, format('SELECT t.%1$I::text FROM %2$s t WHERE t.%1$I = $1::%3$s FOR %4$s',
				   a->>'id', ((a->>'relid')::oid)::regclass, typ,
				   CASE WHEN for_delete THEN 'UPDATE' ELSE 'NO KEY UPDATE' END), id);
	IF found_id IS NULL THEN
		RAISE EXCEPTION 'account "%" not found in application "%"', left(account, 200), m->>'app'
			USING ERRCODE = 'no_data_found';
	END IF;
	RETURN found_id;
END
$$;

-- How grants are mapped: 'table', 'array' or 'scalar'.
CREATE FUNCTION @extschema@._grant_shape(m jsonb) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	g jsonb := m->'grants';
BEGIN
	IF m->'cache' ? 'grant_shape' THEN
		RETURN m->'cache'->>'grant_shape';
	ELSIF g IS NULL THEN
		RAISE EXCEPTION 'application "%" maps no grants', m->>'app'
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Add a "grants" section to the mapping.';
	ELSIF g ? 'table' THEN
		RETURN 'table';
	ELSIF (SELECT t.typsubscript = 'array_subscript_handler'::regproc
			 FROM pg_catalog.pg_type t
			WHERE t.oid = @extschema@._coltype((m->'accounts'->>'relid')::oid, g->>'column')) THEN
		RETURN 'array';
	END IF;
	RETURN 'scalar';
END
$$;

-- The type of an entitlement id in this mapping.
CREATE FUNCTION @extschema@._entitlement_type(m jsonb) RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	g jsonb := m->'grants';
	typ regtype;
BEGIN
	IF m->'cache' ? 'entitlement_type' THEN
		RETURN (m->'cache'->>'entitlement_type')::oid::regtype;
	ELSIF m ? 'entitlements' THEN
		RETURN @extschema@._coltype((m->'entitlements'->>'relid')::oid, m->'entitlements'->>'id');
	ELSIF g ? 'table' THEN
		RETURN @extschema@._coltype((g->>'relid')::oid, g->>'entitlement');
	END IF;
	typ := @extschema@._coltype((m->'accounts'->>'relid')::oid, g->>'column');
	RETURN COALESCE((SELECT NULLIF(t.typelem, 0)::regtype FROM pg_catalog.pg_type t
					  WHERE t.oid = typ AND t.typsubscript = 'array_subscript_handler'::regproc),
					typ);
END
$$;

-- The mapping of an application as the write path uses it: _mapping() plus,
-- under "cache", the id types and the grants shape, looked up once per call
-- (or once per apply batch) instead of once per helper.  Callers of _write
-- (the API, apply, reconciliation) pass this.
CREATE FUNCTION @extschema@._write_mapping(p_app text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._mapping(p_app);
BEGIN
	RETURN m || jsonb_build_object('cache', jsonb_strip_nulls(jsonb_build_object(
		'account_type', @extschema@._account_type(m)::oid,
		'entitlement_type', CASE WHEN m ? 'grants' OR m ? 'entitlements'
								 THEN @extschema@._entitlement_type(m)::oid END,
		'grant_shape', CASE WHEN m ? 'grants' THEN @extschema@._grant_shape(m) END)));
END
$$;

-- Parse an entitlement id and check that it exists (key-share locking it, so
-- it cannot be deleted before commit); return it in canonical text form.
CREATE FUNCTION @extschema@._entitlement(m jsonb, entitlement text) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e jsonb := m->'entitlements';
	typ regtype := @extschema@._entitlement_type(m);
	id text;
	hit int;
BEGIN
	PERFORM @extschema@._require(entitlement, 'entitlement');
	id := @extschema@._id(entitlement, typ, 'entitlement', m->>'app');
	IF e IS NOT NULL THEN
		hit := @extschema@._owner_value((m->>'owner')::oid, format('SELECT 1 FROM %2$s t WHERE t.%1$I = $1::%3$s FOR KEY SHARE',
					   e->>'id', ((e->>'relid')::oid)::regclass, typ), id)::int;
		IF hit IS NULL THEN
			RAISE EXCEPTION 'entitlement "%" not found in application "%"', left(entitlement, 200), m->>'app'
				USING ERRCODE = 'no_data_found';
		END IF;
	END IF;
	RETURN id;
END
$$;

-- Store (or clear, when exp is NULL) the expiry of a grant in grant_expiry;
-- true when something changed.
CREATE FUNCTION @extschema@._set_expiry(m jsonb, acc text, ent text, exp timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF exp IS NULL THEN
		DELETE FROM @extschema@.grant_expiry x
		 WHERE x.app = m->>'app' AND x.account = acc AND x.entitlement = ent;
	ELSE
		INSERT INTO @extschema@.grant_expiry AS x (app, account, entitlement, expires_at)
		VALUES (m->>'app', acc, ent, exp)
		ON CONFLICT (app, account, entitlement) DO UPDATE SET expires_at = EXCLUDED.expires_at
		 WHERE x.expires_at IS DISTINCT FROM EXCLUDED.expires_at;
	END IF;
	RETURN FOUND;
END
$$;

-- A write statement of the API that changed no row though it should have:
-- the application's own trigger (a BEFORE trigger returning NULL) or rule
-- suppressed it.  The call fails rather than report what did not happen.
CREATE FUNCTION @extschema@._suppressed(m jsonb, what text, rel regclass) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION '% in application "%" had no effect on table %', what, m->>'app', rel
		USING ERRCODE = 'triggered_action_exception',
			  DETAIL = 'A trigger or rule of the table suppressed the change.',
			  HINT = 'The application''s own triggers decide what a write does; nothing was changed.';
END
$$;

-- The entitlement ids an account holds, in id order (canonical text).
CREATE FUNCTION @extschema@._granted(m jsonb, acc text) RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r text[];
BEGIN
	IF NOT m ? 'grants' THEN
		RETURN '{}';
	END IF;
	r := @extschema@._owner_value((m->>'owner')::oid, format('SELECT %s FROM %s t WHERE t.%I = $1::%s',
				   @extschema@._entitlements_expr(m), ((m->'accounts'->>'relid')::oid)::regclass,
				   m->'accounts'->>'id', @extschema@._account_type(m)), acc)::text[];
	RETURN r;
END
$$;

-- Add one grant to a locked account; true when a row or value was added.
CREATE FUNCTION @extschema@._grant_add(m jsonb, acc text, ent text, exp timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a jsonb := m->'accounts';
	g jsonb := m->'grants';
	shape text := @extschema@._grant_shape(m);
	acc_rel regclass := ((a->>'relid')::oid)::regclass;
	acc_typ regtype := @extschema@._account_type(m);
	ent_typ regtype := @extschema@._entitlement_type(m);
	present boolean;
	old text;
	n bigint;
BEGIN
	IF shape = 'table' THEN
		present := @extschema@._owner_value((m->>'owner')::oid, format('SELECT true FROM %s t WHERE t.%I = $1::%s AND t.%I = $2::%s LIMIT 1',
					   ((g->>'relid')::oid)::regclass, g->>'account', acc_typ,
					   g->>'entitlement', ent_typ), acc, ent)::boolean;
		IF present THEN
			IF g ? 'expires' THEN
				n := @extschema@._owner_exec((m->>'owner')::oid, format('UPDATE %s t SET %3$I = $3 WHERE t.%2$I = $1::%4$s AND t.%5$I = $2::%6$s'
							   ' AND t.%3$I IS DISTINCT FROM $3',
							   ((g->>'relid')::oid)::regclass, g->>'account', g->>'expires',
							   acc_typ, g->>'entitlement', ent_typ), acc, ent, exp);
				RETURN n > 0;
			END IF;
			RETURN @extschema@._set_expiry(m, acc, ent, exp);
		END IF;
		IF g ? 'expires' THEN
			n := @extschema@._owner_exec((m->>'owner')::oid, format('INSERT INTO %s (%I, %I, %I) VALUES ($1::%s, $2::%s, $3)',
						   ((g->>'relid')::oid)::regclass, g->>'account', g->>'entitlement',
						   g->>'expires', acc_typ, ent_typ), acc, ent, exp);
		ELSE
			n := @extschema@._owner_exec((m->>'owner')::oid, format('INSERT INTO %s (%I, %I) VALUES ($1::%s, $2::%s)',
						   ((g->>'relid')::oid)::regclass, g->>'account', g->>'entitlement',
						   acc_typ, ent_typ), acc, ent);
			PERFORM @extschema@._set_expiry(m, acc, ent, exp);
		END IF;
		IF n = 0 THEN
			PERFORM @extschema@._suppressed(m, 'grant', ((g->>'relid')::oid)::regclass);
		END IF;
		RETURN true;
	ELSIF shape = 'array' THEN
		present := @extschema@._owner_value((m->>'owner')::oid, format('SELECT COALESCE($2::%s = ANY (t.%I), false) FROM %s t WHERE t.%I = $1::%s',
					   ent_typ, g->>'column', acc_rel, a->>'id', acc_typ), acc, ent)::boolean;
		IF NOT present AND @extschema@._owner_exec((m->>'owner')::oid,
				format('UPDATE %s t SET %2$I = pg_catalog.array_append(COALESCE(t.%2$I, ''{}''), $2::%3$s)'
					   ' WHERE t.%4$I = $1::%5$s',
					   acc_rel, g->>'column', ent_typ, a->>'id', acc_typ), acc, ent) = 0 THEN
			PERFORM @extschema@._suppressed(m, 'grant', acc_rel);
		END IF;
	ELSE
		old := @extschema@._owner_value((m->>'owner')::oid, format('SELECT t.%I::text FROM %s t WHERE t.%I = $1::%s',
					   g->>'column', acc_rel, a->>'id', acc_typ), acc);
		present := old IS NOT DISTINCT FROM ent;
		IF NOT present THEN
			-- One entitlement per account: the grant replaces the previous one.
			IF @extschema@._owner_exec((m->>'owner')::oid, format('UPDATE %s t SET %I = $2::%s WHERE t.%I = $1::%s',
						   acc_rel, g->>'column', ent_typ, a->>'id', acc_typ), acc, ent) = 0 THEN
				PERFORM @extschema@._suppressed(m, 'grant', acc_rel);
			END IF;
			IF old IS NOT NULL THEN
				PERFORM @extschema@._set_expiry(m, acc, old, NULL);
			END IF;
		END IF;
	END IF;
	RETURN @extschema@._set_expiry(m, acc, ent, exp) OR NOT present;
END
$$;

-- Remove one grant from a locked account, as one DML statement; true when
-- something was removed.
CREATE FUNCTION @extschema@._grant_remove(m jsonb, acc text, ent text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a jsonb := m->'accounts';
	g jsonb := m->'grants';
	shape text := @extschema@._grant_shape(m);
	acc_rel regclass := ((a->>'relid')::oid)::regclass;
	acc_typ regtype := @extschema@._account_type(m);
	ent_typ regtype := @extschema@._entitlement_type(m);
	n bigint;
BEGIN
	-- Twice at most: a row that a concurrent transaction inserted after this
	-- statement's snapshot is not seen by the DELETE but is by the re-check;
	-- the second try sees it.  Only a grant that survives both tries was
	-- kept by the table's own triggers or rules.
	FOR attempt IN 1..2 LOOP
		IF shape = 'table' THEN
			n := @extschema@._owner_exec((m->>'owner')::oid, format('DELETE FROM %s t WHERE t.%I = $1::%s AND t.%I = $2::%s',
						   ((g->>'relid')::oid)::regclass, g->>'account', acc_typ,
						   g->>'entitlement', ent_typ), acc, ent);
		ELSIF shape = 'array' THEN
			n := @extschema@._owner_exec((m->>'owner')::oid, format('UPDATE %s t SET %2$I = pg_catalog.array_remove(t.%2$I, $2::%3$s)'
						   ' WHERE t.%4$I = $1::%5$s AND $2::%3$s = ANY (t.%2$I)',
						   acc_rel, g->>'column', ent_typ, a->>'id', acc_typ), acc, ent);
		ELSE
			n := @extschema@._owner_exec((m->>'owner')::oid, format('UPDATE %s t SET %2$I = NULL WHERE t.%4$I = $1::%5$s AND t.%2$I = $2::%3$s',
						   acc_rel, g->>'column', ent_typ, a->>'id', acc_typ), acc, ent);
		END IF;
		EXIT WHEN n > 0 OR NOT ent = ANY (@extschema@._granted(m, acc));
		IF attempt = 2 THEN
			PERFORM @extschema@._suppressed(m, 'revoke', CASE WHEN shape = 'table'
															  THEN ((g->>'relid')::oid)::regclass ELSE acc_rel END);
		END IF;
	END LOOP;
	PERFORM @extschema@._set_expiry(m, acc, ent, NULL);
	RETURN n > 0;
END
$$;

-- Set a locked account's status; true when it changed.
CREATE FUNCTION @extschema@._status_set(m jsonb, acc text, enabled boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a jsonb := m->'accounts';
	st jsonb := a->'status';
	rel regclass := ((a->>'relid')::oid)::regclass;
	typ regtype := @extschema@._coltype(rel, st->>'column');
	val text := CASE WHEN enabled THEN st->>'enabled' ELSE st->>'disabled' END;
	-- the rows to change: this account, when its status differs
	cond text;
	n bigint;
BEGIN
	IF st->>'disabled' = 'timestamp' AND NOT st ? 'enabled' THEN
		cond := format('t.%I = $1::%s AND t.%I IS %s AND $2 IS NULL', a->>'id', @extschema@._account_type(m),
					   st->>'column', CASE WHEN enabled THEN 'NOT NULL' ELSE 'NULL' END);
		n := @extschema@._owner_exec((m->>'owner')::oid, format('UPDATE %s t SET %I = %s WHERE %s',
					   rel, st->>'column', CASE WHEN enabled THEN 'NULL' ELSE 'pg_catalog.now()' END, cond),
					   acc, NULL::text);
	ELSE
		cond := format('t.%1$I = $1::%2$s AND t.%3$I IS DISTINCT FROM $2::%4$s', a->>'id',
					   @extschema@._account_type(m), st->>'column', typ);
		n := @extschema@._owner_exec((m->>'owner')::oid, format('UPDATE %s t SET %I = $2::%s WHERE %s',
					   rel, st->>'column', typ, cond), acc, val);
	END IF;
	IF n = 0 AND @extschema@._owner_value((m->>'owner')::oid,
			format('SELECT true FROM %s t WHERE %s', rel, cond), acc,
			CASE WHEN st ? 'enabled' THEN val END) IS NOT NULL THEN
		PERFORM @extschema@._suppressed(m, CASE WHEN enabled THEN 'enable' ELSE 'disable' END, rel);
	END IF;
	RETURN n > 0;
END
$$;

-- The live credentials of an account, in id order (canonical text).
CREATE FUNCTION @extschema@._live_credentials(m jsonb, acc text) RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	c jsonb := m->'credentials';
	r text[];
BEGIN
	IF c IS NULL THEN
		RETURN '{}';
	END IF;
	r := @extschema@._owner_value((m->>'owner')::oid, format('SELECT COALESCE(array_agg(t.%1$I::text ORDER BY t.%1$I), ''{}'') FROM %2$s t'
				   ' WHERE t.%3$I = $1::%4$s %5$s',
				   c->>'id', ((c->>'relid')::oid)::regclass, c->>'account',
				   @extschema@._account_type(m),
				   CASE WHEN c ? 'revoked' THEN format('AND t.%I IS NULL', c->>'revoked') ELSE '' END), acc)::text[];
	RETURN r;
END
$$;

-- Revoke one credential (canonical id): stamp the revoked column, or delete
-- the row when the mapping has none.  True when something changed.
CREATE FUNCTION @extschema@._credential_revoke(m jsonb, cred text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	c jsonb := m->'credentials';
	rel regclass := ((c->>'relid')::oid)::regclass;
	typ regtype := @extschema@._coltype(rel, c->>'id');
	n bigint;
BEGIN
	IF c ? 'revoked' THEN
		n := @extschema@._owner_exec((m->>'owner')::oid, format('UPDATE %s t SET %2$I = pg_catalog.now() WHERE t.%3$I = $1::%4$s AND t.%2$I IS NULL',
					   rel, c->>'revoked', c->>'id', typ), cred);
	ELSE
		n := @extschema@._owner_exec((m->>'owner')::oid, format('DELETE FROM %s t WHERE t.%I = $1::%s', rel, c->>'id', typ), cred);
	END IF;
	-- callers revoke live credentials only
	IF n = 0 THEN
		PERFORM @extschema@._suppressed(m, 'revoke_credential', rel);
	END IF;
	RETURN n > 0;
END
$$;

-- Revoke all grants and live credentials of a locked account, one DML per
-- grant and per credential so each becomes its own event.
CREATE FUNCTION @extschema@._strip_account(m jsonb, acc text,
										   OUT revoked text[], OUT credentials text[])
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	x text;
BEGIN
	revoked := @extschema@._granted(m, acc);
	FOREACH x IN ARRAY revoked LOOP
		PERFORM @extschema@._grant_remove(m, acc, x);
	END LOOP;
	credentials := @extschema@._live_credentials(m, acc);
	FOREACH x IN ARRAY credentials LOOP
		PERFORM @extschema@._credential_revoke(m, x);
	END LOOP;
	DELETE FROM @extschema@.grant_expiry ge WHERE ge.app = m->>'app' AND ge.account = acc;
END
$$;

-- The account columns that create_account (creating) or update_account may
-- set, by column name.
CREATE FUNCTION @extschema@._writable_columns(m jsonb, creating boolean) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT COALESCE(array_agg(DISTINCT c ORDER BY c), '{}') FROM (
		SELECT m->'accounts'->>'id' AS c
		 WHERE creating AND EXISTS (
			SELECT 1 FROM pg_catalog.pg_attribute at
			 WHERE at.attrelid = (m->'accounts'->>'relid')::oid
			   AND at.attname = m->'accounts'->>'id'
			   AND NOT at.atthasdef AND at.attidentity = '' AND at.attgenerated = '')
		UNION ALL SELECT m->'accounts'->>'name' WHERE NOT creating
		UNION ALL SELECT m->'accounts'->>'kind'
		UNION ALL SELECT m->'accounts'->>'owner'
		UNION ALL SELECT m->'accounts'->'status'->>'column'
		UNION ALL SELECT jsonb_array_elements_text(COALESCE(m->'accounts'->'attributes', '[]'))
	) s WHERE c IS NOT NULL
$$;

-- Check the attributes object of create/update_account (section
-- 'accounts') or create/update_entitlement ('entitlements'): keys among the
-- section's writable columns, values that parse as their column's type.
-- Returns the column names and the values as text (NULL for JSON null).
CREATE FUNCTION @extschema@._row_values(m jsonb, section text, attrs jsonb, creating boolean,
										OUT cols text[], OUT vals text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	sec jsonb := m->section;
	rel oid := (sec->>'relid')::oid;
	what text := CASE section WHEN 'accounts' THEN 'account' ELSE 'entitlement' END;
	allowed text[] := CASE section WHEN 'accounts' THEN @extschema@._writable_columns(m, creating)
							  ELSE @extschema@._entitlement_writable(m, creating) END;
	k text;
	v jsonb;
	typ regtype;
	val text;
BEGIN
	cols := '{}';
	vals := '{}';
	FOR k, v IN SELECT e.key, e.value FROM jsonb_each(attrs) e ORDER BY e.key LOOP
		IF NOT k = ANY (allowed) THEN
			RAISE EXCEPTION 'attribute "%" is not a writable % column in application "%"',
				left(k, 200), what, m->>'app'
				USING ERRCODE = 'undefined_column',
					  DETAIL = CASE WHEN creating AND k = sec->>'name'
								   THEN 'The name is given as the name argument.'
								   WHEN k = sec->>'id'
								   THEN 'The id column cannot be set here.'
								   ELSE 'Only columns the mapping names can be written.' END,
					  HINT = format('Writable here: %s.', array_to_string(allowed, ', '));
		END IF;
		typ := @extschema@._coltype(rel, k);
		IF jsonb_typeof(v) IN ('object', 'array') AND typ NOT IN ('json'::regtype, 'jsonb'::regtype) THEN
			RAISE EXCEPTION 'attribute "%" must be a JSON scalar, not %, for a column of type %',
				k, jsonb_typeof(v), typ
				USING ERRCODE = 'invalid_text_representation';
		END IF;
		val := CASE WHEN jsonb_typeof(v) IN ('object', 'array') THEN v::text ELSE v #>> '{}' END;
		IF val IS NOT NULL THEN
			PERFORM @extschema@._parse(val, typ, format('attribute "%s" value', k), m->>'app');
		END IF;
		cols := cols || k;
		vals := vals || val;
	END LOOP;
END
$$;

-- Refuse a name another account (section 'accounts') or entitlement
-- ('entitlements') has: names identify people and groups to the platform
-- (SCIM's userName and displayName are unique).  Serialised by an advisory
-- lock on (table, name), so two concurrent creations of one name cannot both
-- pass, even without a unique index on the name column.
CREATE FUNCTION @extschema@._check_name_free(m jsonb, section text, name text, self text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	sec jsonb := m->section;
	rel oid := (sec->>'relid')::oid;
	what text := CASE section WHEN 'accounts' THEN 'account' ELSE 'entitlement' END;
	other text;
BEGIN
	PERFORM @extschema@._parse(name, @extschema@._coltype(rel, sec->>'name'), 'name', m->>'app');
	PERFORM pg_advisory_xact_lock(rel::int, hashtext(name));
	other := @extschema@._owner_value((m->>'owner')::oid, format('SELECT t.%I::text FROM %s t WHERE t.%I = $1::%s AND t.%1$I::text IS DISTINCT FROM $2 LIMIT 1',
				   sec->>'id', rel::regclass, sec->>'name', @extschema@._coltype(rel, sec->>'name')), name, self);
	IF other IS NOT NULL THEN
		RAISE EXCEPTION '% "%" already exists in application "%"', what, left(name, 200), m->>'app'
			USING ERRCODE = 'unique_violation',
				  DETAIL = format('%s id %s has that name.', initcap(what), other);
	END IF;
END
$$;

-- The per-operation functions.  Each takes the mapping and the normalised
-- arguments of _write and returns the outcome as jsonb.

CREATE FUNCTION @extschema@._op_grant(m jsonb, args jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	exp timestamptz := (args->>'expires_at')::timestamp AT TIME ZONE 'UTC';
	acc text;
	ent text;
BEGIN
	PERFORM @extschema@._grant_shape(m);
	acc := @extschema@._lock_account(m, args->>'account');
	ent := @extschema@._entitlement(m, args->>'entitlement');
	IF exp <= now() THEN
		RAISE EXCEPTION 'expires_at % is in the past', exp
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A time-bound grant must expire after the current transaction''s start time.';
	END IF;
	RETURN to_jsonb(CASE WHEN @extschema@._grant_add(m, acc, ent, exp)
						 THEN 'granted' ELSE 'unchanged' END);
END
$$;

CREATE FUNCTION @extschema@._op_revoke(m jsonb, args jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	acc text;
	ent text;
BEGIN
	PERFORM @extschema@._grant_shape(m);
	acc := @extschema@._lock_account(m, args->>'account');
	ent := @extschema@._entitlement(m, args->>'entitlement');
	RETURN to_jsonb(CASE WHEN @extschema@._grant_remove(m, acc, ent)
						 THEN 'revoked' ELSE 'unchanged' END);
END
$$;

-- disable and enable.
CREATE FUNCTION @extschema@._op_status(m jsonb, args jsonb, enabled boolean) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	acc text;
BEGIN
	IF NOT m->'accounts' ? 'status' THEN
		RAISE EXCEPTION 'application "%" maps no account status', m->>'app'
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Add "accounts.status" to the mapping to disable and enable accounts.';
	END IF;
	acc := @extschema@._lock_account(m, args->>'account');
	RETURN to_jsonb(CASE WHEN NOT @extschema@._status_set(m, acc, enabled) THEN 'unchanged'
						 WHEN enabled THEN 'enabled' ELSE 'disabled' END);
END
$$;

CREATE FUNCTION @extschema@._op_create_account(m jsonb, args jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a jsonb := m->'accounts';
	rel oid := (a->>'relid')::oid;
	v record;
	other text;
	id text;
BEGIN
	v := @extschema@._row_values(m, 'accounts', args->'attributes', true);
	PERFORM @extschema@._check_name_free(m, 'accounts', args->>'name', NULL);
	IF a->>'id' = ANY (v.cols) THEN
		id := v.vals[array_position(v.cols, a->>'id')];
		PERFORM @extschema@._require(id, format('attribute "%s"', a->>'id'));
		other := @extschema@._owner_value((m->>'owner')::oid, format('SELECT t.%1$I::text FROM %2$s t WHERE t.%1$I = $1::%3$s',
					   a->>'id', rel::regclass, @extschema@._account_type(m)), id);
		IF other IS NOT NULL THEN
			RAISE EXCEPTION 'account "%" already exists in application "%"', other, m->>'app'
				USING ERRCODE = 'unique_violation';
		END IF;
	ELSIF @extschema@._writable_columns(m, true) @> ARRAY[a->>'id'] THEN
		RAISE EXCEPTION 'attribute "%" is required in application "%"', a->>'id', m->>'app'
			USING ERRCODE = 'null_value_not_allowed',
				  DETAIL = 'The account id column has no default.';
	END IF;
	id := @extschema@._owner_value((m->>'owner')::oid, format('INSERT INTO %s (%s) VALUES (%s) RETURNING %I::text',
				   rel::regclass,
				   (SELECT string_agg(format('%I', c), ', ' ORDER BY o)
					  FROM unnest(a->>'name' || v.cols) WITH ORDINALITY x(c, o)),
				   (SELECT string_agg(CASE WHEN o = 1 THEN format('$1::%s', @extschema@._coltype(rel, c))
										   ELSE format('($2)[%s]::%s', o - 1, @extschema@._coltype(rel, c)) END,
									  ', ' ORDER BY o)
					  FROM unnest(a->>'name' || v.cols) WITH ORDINALITY x(c, o)),
				   a->>'id'), args->>'name', v.vals);
	RETURN to_jsonb(id);
END
$$;

CREATE FUNCTION @extschema@._op_update_account(m jsonb, args jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a jsonb := m->'accounts';
	rel oid := (a->>'relid')::oid;
	acc text;
	v record;
	n bigint;
BEGIN
	acc := @extschema@._lock_account(m, args->>'account');
	v := @extschema@._row_values(m, 'accounts', args->'attributes', false);
	IF cardinality(v.cols) = 0 THEN
		RETURN to_jsonb('unchanged'::text);
	END IF;
	IF a->>'name' = ANY (v.cols) THEN
		PERFORM @extschema@._require(v.vals[array_position(v.cols, a->>'name')],
									 format('attribute "%s"', a->>'name'));
		PERFORM @extschema@._check_name_free(m, 'accounts', v.vals[array_position(v.cols, a->>'name')], acc);
	END IF;
	n := @extschema@._owner_exec((m->>'owner')::oid, format('UPDATE %s t SET %s WHERE t.%I = $1::%s AND (%s)',
				   rel::regclass,
				   (SELECT string_agg(format('%I = ($2)[%s]::%s', c, o, @extschema@._coltype(rel, c)), ', ')
					  FROM unnest(v.cols) WITH ORDINALITY x(c, o)),
				   a->>'id', @extschema@._account_type(m),
				   (SELECT string_agg(format('t.%I::text IS DISTINCT FROM (($2)[%s]::%s)::text',
											 c, o, @extschema@._coltype(rel, c)), ' OR ')
					  FROM unnest(v.cols) WITH ORDINALITY x(c, o))), acc, v.vals);
	RETURN to_jsonb(CASE WHEN n > 0 THEN 'updated' ELSE 'unchanged' END);
END
$$;

CREATE FUNCTION @extschema@._op_delete_account(m jsonb, args jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a jsonb := m->'accounts';
	acc text := @extschema@._lock_account(m, args->>'account', true);
BEGIN
	PERFORM @extschema@._strip_account(m, acc);
	PERFORM @extschema@._owner_exec((m->>'owner')::oid, format('DELETE FROM %s t WHERE t.%I = $1::%s',
				   ((a->>'relid')::oid)::regclass, a->>'id', @extschema@._account_type(m)), acc);
	RETURN to_jsonb('deleted'::text);
END
$$;

CREATE FUNCTION @extschema@._op_offboard(m jsonb, args jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	acc text := @extschema@._lock_account(m, args->>'account');
	disabled boolean;
	s record;
BEGIN
	IF m->'accounts' ? 'status' THEN
		disabled := @extschema@._status_set(m, acc, false);
	END IF;
	s := @extschema@._strip_account(m, acc);
	RETURN jsonb_build_object('account', acc, 'disabled', disabled,
							  'revoked', to_jsonb(s.revoked),
							  'credentials_revoked', to_jsonb(s.credentials));
END
$$;

CREATE FUNCTION @extschema@._op_revoke_credential(m jsonb, args jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	c jsonb := m->'credentials';
	rel regclass := ((c->>'relid')::oid)::regclass;
	cred text;
	revoked boolean;
BEGIN
	IF c IS NULL THEN
		RAISE EXCEPTION 'application "%" maps no credentials table', m->>'app'
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Add a "credentials" section to the mapping.';
	END IF;
	cred := @extschema@._id(args->>'credential', @extschema@._coltype(rel, c->>'id'),
							   'credential', m->>'app');
	revoked := @extschema@._owner_value((m->>'owner')::oid, format('SELECT %s FROM %s t WHERE t.%I = $1::%s FOR UPDATE',
				   CASE WHEN c ? 'revoked' THEN format('t.%I IS NOT NULL', c->>'revoked') ELSE 'false' END,
				   rel, c->>'id', @extschema@._coltype(rel, c->>'id')), cred)::boolean;
	IF revoked IS NULL THEN
		RAISE EXCEPTION 'credential "%" not found in application "%"',
			left(args->>'credential', 200), m->>'app'
			USING ERRCODE = 'no_data_found';
	END IF;
	RETURN to_jsonb(CASE WHEN NOT revoked AND @extschema@._credential_revoke(m, cred)
						 THEN 'revoked' ELSE 'unchanged' END);
END
$$;

-- Entitlement writes (spec section 11: SCIM Groups).  An entitlements table
-- is required; its writable columns are the ones the mapping names.

-- The entitlements section, or feature_not_supported.
CREATE FUNCTION @extschema@._entitlements_section(m jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT m ? 'entitlements' THEN
		RAISE EXCEPTION 'application "%" maps no entitlements table', m->>'app'
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Add an "entitlements" section to the mapping.';
	END IF;
	RETURN m->'entitlements';
END
$$;

-- The entitlement columns that create_entitlement (creating) or
-- update_entitlement may set, by column name.
CREATE FUNCTION @extschema@._entitlement_writable(m jsonb, creating boolean) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT COALESCE(array_agg(DISTINCT c ORDER BY c), '{}') FROM (
		SELECT m->'entitlements'->>'id' AS c
		 WHERE creating AND EXISTS (
			SELECT 1 FROM pg_catalog.pg_attribute at
			 WHERE at.attrelid = (m->'entitlements'->>'relid')::oid
			   AND at.attname = m->'entitlements'->>'id'
			   AND NOT at.atthasdef AND at.attidentity = '' AND at.attgenerated = '')
		UNION ALL SELECT m->'entitlements'->>'name' WHERE NOT creating
		UNION ALL SELECT m->'entitlements'->>'privileged'
		UNION ALL SELECT jsonb_array_elements_text(COALESCE(m->'entitlements'->'attributes', '[]'))
	) s WHERE c IS NOT NULL
$$;

-- Parse an entitlement id, lock its row (FOR UPDATE when deleting) and
-- return its id in canonical text form.
CREATE FUNCTION @extschema@._lock_entitlement(m jsonb, entitlement text, for_delete boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e jsonb := @extschema@._entitlements_section(m);
	typ regtype := @extschema@._coltype((e->>'relid')::oid, e->>'id');
	id text;
	found_id text;
BEGIN
	PERFORM @extschema@._require(entitlement, 'entitlement');
	id := @extschema@._id(entitlement, typ, 'entitlement', m->>'app');
	found_id := @extschema@._owner_value((m->>'owner')::oid, format('SELECT t.%1$I::text FROM %2$s t WHERE t.%1$I = $1::%3$s FOR %4$s',
				   e->>'id', ((e->>'relid')::oid)::regclass, typ,
				   CASE WHEN for_delete THEN 'UPDATE' ELSE 'NO KEY UPDATE' END), id);
	IF found_id IS NULL THEN
		RAISE EXCEPTION 'entitlement "%" not found in application "%"', left(entitlement, 200), m->>'app'
			USING ERRCODE = 'no_data_found';
	END IF;
	RETURN found_id;
END
$$;

CREATE FUNCTION @extschema@._op_create_entitlement(m jsonb, args jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e jsonb := @extschema@._entitlements_section(m);
	rel oid := (e->>'relid')::oid;
	typ regtype := @extschema@._coltype(rel, e->>'id');
	v record;
	other text;
	id text;
BEGIN
	v := @extschema@._row_values(m, 'entitlements', args->'attributes', true);
	PERFORM @extschema@._check_name_free(m, 'entitlements', args->>'name', NULL);
	IF e->>'id' = ANY (v.cols) THEN
		id := v.vals[array_position(v.cols, e->>'id')];
		PERFORM @extschema@._require(id, format('attribute "%s"', e->>'id'));
		other := @extschema@._owner_value((m->>'owner')::oid, format('SELECT t.%1$I::text FROM %2$s t WHERE t.%1$I = $1::%3$s',
					   e->>'id', rel::regclass, typ), id);
		IF other IS NOT NULL THEN
			RAISE EXCEPTION 'entitlement "%" already exists in application "%"', other, m->>'app'
				USING ERRCODE = 'unique_violation';
		END IF;
	ELSIF @extschema@._entitlement_writable(m, true) @> ARRAY[e->>'id'] THEN
		RAISE EXCEPTION 'attribute "%" is required in application "%"', e->>'id', m->>'app'
			USING ERRCODE = 'null_value_not_allowed',
				  DETAIL = 'The entitlement id column has no default.';
	END IF;
	id := @extschema@._owner_value((m->>'owner')::oid, format('INSERT INTO %s (%s) VALUES (%s) RETURNING %I::text',
				   rel::regclass,
				   (SELECT string_agg(format('%I', c), ', ' ORDER BY o)
					  FROM unnest(e->>'name' || v.cols) WITH ORDINALITY x(c, o)),
				   (SELECT string_agg(CASE WHEN o = 1 THEN format('$1::%s', @extschema@._coltype(rel, c))
										   ELSE format('($2)[%s]::%s', o - 1, @extschema@._coltype(rel, c)) END,
									  ', ' ORDER BY o)
					  FROM unnest(e->>'name' || v.cols) WITH ORDINALITY x(c, o)),
				   e->>'id'), args->>'name', v.vals);
	IF id IS NULL THEN
		PERFORM @extschema@._suppressed(m, 'create_entitlement', rel::regclass);
	END IF;
	RETURN to_jsonb(id);
END
$$;

CREATE FUNCTION @extschema@._op_update_entitlement(m jsonb, args jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e jsonb := @extschema@._entitlements_section(m);
	rel oid := (e->>'relid')::oid;
	ent text := @extschema@._lock_entitlement(m, args->>'entitlement', false);
	v record;
	n bigint;
BEGIN
	v := @extschema@._row_values(m, 'entitlements', args->'attributes', false);
	IF cardinality(v.cols) = 0 THEN
		RETURN to_jsonb('unchanged'::text);
	END IF;
	IF e->>'name' = ANY (v.cols) THEN
		PERFORM @extschema@._require(v.vals[array_position(v.cols, e->>'name')],
									 format('attribute "%s"', e->>'name'));
		PERFORM @extschema@._check_name_free(m, 'entitlements', v.vals[array_position(v.cols, e->>'name')], ent);
	END IF;
	n := @extschema@._owner_exec((m->>'owner')::oid, format('UPDATE %s t SET %s WHERE t.%I = $1::%s AND (%s)',
				   rel::regclass,
				   (SELECT string_agg(format('%I = ($2)[%s]::%s', c, o, @extschema@._coltype(rel, c)), ', ')
					  FROM unnest(v.cols) WITH ORDINALITY x(c, o)),
				   e->>'id', @extschema@._coltype(rel, e->>'id'),
				   (SELECT string_agg(format('t.%I::text IS DISTINCT FROM (($2)[%s]::%s)::text',
											 c, o, @extschema@._coltype(rel, c)), ' OR ')
					  FROM unnest(v.cols) WITH ORDINALITY x(c, o))), ent, v.vals);
	RETURN to_jsonb(CASE WHEN n > 0 THEN 'updated' ELSE 'unchanged' END);
END
$$;

-- The accounts holding an entitlement (canonical text ids, in id order).
CREATE FUNCTION @extschema@._holders(m jsonb, ent text) RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a jsonb := m->'accounts';
	g jsonb := m->'grants';
	shape text;
BEGIN
	IF g IS NULL THEN
		RETURN '{}';
	END IF;
	shape := @extschema@._grant_shape(m);
	RETURN @extschema@._owner_value((m->>'owner')::oid, CASE shape
		WHEN 'table' THEN format('SELECT COALESCE(array_agg(x ORDER BY x), ''{}'')::text FROM (SELECT DISTINCT g.%I AS x FROM %s g WHERE g.%I = $1::%s) s',
								 g->>'account', ((g->>'relid')::oid)::regclass, g->>'entitlement',
								 @extschema@._entitlement_type(m))
		WHEN 'array' THEN format('SELECT COALESCE(array_agg(t.%I ORDER BY t.%1$I), ''{}'')::text FROM %s t WHERE $1::%s = ANY (t.%I)',
								 a->>'id', ((a->>'relid')::oid)::regclass,
								 @extschema@._entitlement_type(m), g->>'column')
		ELSE format('SELECT COALESCE(array_agg(t.%I ORDER BY t.%1$I), ''{}'')::text FROM %s t WHERE t.%I = $1::%s',
					a->>'id', ((a->>'relid')::oid)::regclass, g->>'column',
					@extschema@._entitlement_type(m)) END, ent)::text[];
END
$$;

CREATE FUNCTION @extschema@._op_delete_entitlement(m jsonb, args jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e jsonb := @extschema@._entitlements_section(m);
	rel oid := (e->>'relid')::oid;
	ent text := @extschema@._lock_entitlement(m, args->>'entitlement', true);
	acc text;
BEGIN
	-- its grants first, one by one, so each is its own access.revoked event
	FOREACH acc IN ARRAY @extschema@._holders(m, ent) LOOP
		PERFORM @extschema@._grant_remove(m, @extschema@._lock_account(m, acc), ent);
	END LOOP;
	DELETE FROM @extschema@.grant_expiry ge WHERE ge.app = m->>'app' AND ge.entitlement = ent;
	IF @extschema@._owner_exec((m->>'owner')::oid, format('DELETE FROM %s t WHERE t.%I = $1::%s',
			   rel::regclass, e->>'id', @extschema@._coltype(rel, e->>'id')), ent) = 0 THEN
		PERFORM @extschema@._suppressed(m, 'delete_entitlement', rel::regclass);
	END IF;
	RETURN to_jsonb('deleted'::text);
END
$$;

-- The fields of each operation: required ones first, then optional ones.
CREATE FUNCTION @extschema@._op_fields(op text, OUT required text[], OUT optional text[])
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE op
			 WHEN 'grant' THEN ARRAY['account', 'entitlement']
			 WHEN 'revoke' THEN ARRAY['account', 'entitlement']
			 WHEN 'create_account' THEN ARRAY['name']
			 WHEN 'update_account' THEN ARRAY['account', 'attributes']
			 WHEN 'revoke_credential' THEN ARRAY['credential']
			 WHEN 'create_entitlement' THEN ARRAY['name']
			 WHEN 'update_entitlement' THEN ARRAY['entitlement', 'attributes']
			 WHEN 'delete_entitlement' THEN ARRAY['entitlement']
			 ELSE ARRAY['account'] END,
		   CASE op
			 WHEN 'grant' THEN ARRAY['request_id', 'expires_at']
			 WHEN 'create_account' THEN ARRAY['attributes', 'request_id']
			 WHEN 'create_entitlement' THEN ARRAY['attributes', 'request_id']
			 ELSE ARRAY['request_id'] END
$$;

-- Normalise the arguments of an operation: ids and names as JSON strings,
-- attributes as an object, expires_at as a UTC timestamp string, absent
-- and null optional fields dropped, so two calls asking for the same thing
-- compare equal whatever the caller's time zone or JSON spelling.
CREATE FUNCTION @extschema@._op_args(m jsonb, op text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	f record := @extschema@._op_fields(op);
	k text;
	v jsonb;
	r jsonb := '{}';
BEGIN
	FOREACH k IN ARRAY f.required || f.optional LOOP
		v := args->k;
		IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
			IF k = ANY (f.required) THEN
				RAISE EXCEPTION '% must not be null', k
					USING ERRCODE = 'null_value_not_allowed';
			END IF;
			CONTINUE;
		END IF;
		IF k = 'attributes' THEN
			IF jsonb_typeof(v) <> 'object' THEN
				RAISE EXCEPTION 'attributes must be a JSON object, not %', jsonb_typeof(v)
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		ELSIF jsonb_typeof(v) NOT IN ('string', 'number') THEN
			RAISE EXCEPTION '% must be a string, not %', k, jsonb_typeof(v)
				USING ERRCODE = 'invalid_parameter_value';
		ELSIF k = 'expires_at' THEN
			v := to_jsonb(@extschema@._parse(v #>> '{}', 'timestamptz', k, m->>'app')::timestamptz
						  AT TIME ZONE 'UTC');
		ELSE
			v := to_jsonb(v #>> '{}');
		END IF;
		IF k = 'request_id' AND octet_length(v #>> '{}') NOT BETWEEN 1 AND 255 THEN
			RAISE EXCEPTION 'request_id must be 1 to 255 bytes long'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		r := r || jsonb_build_object(k, v);
	END LOOP;
	RETURN r;
END
$$;

-- Look up or claim an idempotency key.  Returns the first call's outcome for
-- a retry, NULL when this call is the first and must run.  A concurrent call
-- with the same key waits here (ON CONFLICT waits for the in-flight insert)
-- and then returns that call's outcome, or runs itself if that call failed.
CREATE FUNCTION @extschema@._request_claim(p_app text, rid text, op text, args jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r @extschema@.request;
BEGIN
	LOOP
		INSERT INTO @extschema@.request (app, request_id, operation, args)
		VALUES (p_app, rid, op, args)
		ON CONFLICT (app, request_id) DO NOTHING;
		IF FOUND THEN
			RETURN NULL;
		END IF;
		SELECT * INTO r FROM @extschema@.request q WHERE q.app = p_app AND q.request_id = rid;
		IF FOUND THEN
			EXIT;
		END IF;
		-- purged in between: claim it again
	END LOOP;
	IF r.operation = op AND r.args = args AND r.outcome IS NOT NULL THEN
		RETURN r.outcome;
	END IF;
	RAISE EXCEPTION 'request "%" of application "%" was already made with other arguments',
		left(rid, 200), p_app
		USING ERRCODE = 'unique_violation',
			  DETAIL = left(format('The first call was %s %s; this call is %s %s.',
								   r.operation, r.args, op, args), 1000),
			  HINT = 'Use a new request_id for a new request.';
END
$$;

-- The dispatcher of every write: allowlist, argument normalisation,
-- idempotency, origin mark, operation.  via is 'platform' for the API (an
-- offboard call is marked 'offboard'), 'reconcile' for enforcement.
CREATE FUNCTION @extschema@._write(m jsonb, op text, args jsonb, via text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a jsonb;
	rid text;
	result jsonb;
BEGIN
	PERFORM @extschema@._allow(m, op);
	a := @extschema@._op_args(m, op, args);
	rid := a->>'request_id';
	a := a - 'request_id';
	IF rid IS NOT NULL THEN
		result := @extschema@._request_claim(m->>'app', rid, op, a);
		IF result IS NOT NULL THEN
			RETURN result;
		END IF;
	END IF;

	PERFORM @extschema@._origin_begin(CASE WHEN op = 'offboard' AND via = 'platform'
										   THEN 'offboard' ELSE via END, op, rid);
	result := CASE op
		WHEN 'grant' THEN @extschema@._op_grant(m, a)
		WHEN 'revoke' THEN @extschema@._op_revoke(m, a)
		WHEN 'disable' THEN @extschema@._op_status(m, a, false)
		WHEN 'enable' THEN @extschema@._op_status(m, a, true)
		WHEN 'create_account' THEN @extschema@._op_create_account(m, a)
		WHEN 'update_account' THEN @extschema@._op_update_account(m, a)
		WHEN 'delete_account' THEN @extschema@._op_delete_account(m, a)
		WHEN 'offboard' THEN @extschema@._op_offboard(m, a)
		WHEN 'revoke_credential' THEN @extschema@._op_revoke_credential(m, a)
		WHEN 'create_entitlement' THEN @extschema@._op_create_entitlement(m, a)
		WHEN 'update_entitlement' THEN @extschema@._op_update_entitlement(m, a)
		WHEN 'delete_entitlement' THEN @extschema@._op_delete_entitlement(m, a)
	END;
	PERFORM @extschema@._origin_end();

	IF rid IS NOT NULL THEN
		UPDATE @extschema@.request q SET outcome = result
		 WHERE q.app = m->>'app' AND q.request_id = rid;
	END IF;
	RETURN result;
END
$$;

-- Re-raise an error caught by apply with the operation's index in front.
CREATE FUNCTION @extschema@._reraise(state text, msg text, detail text, hint text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF detail <> '' AND hint <> '' THEN
		RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, DETAIL = detail, HINT = hint;
	ELSIF detail <> '' THEN
		RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, DETAIL = detail;
	ELSIF hint <> '' THEN
		RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, HINT = hint;
	END IF;
	RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg;
END
$$;

-- Check one element of apply's array and return its arguments.
CREATE FUNCTION @extschema@._apply_args(e jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	f record;
	k text;
BEGIN
	IF jsonb_typeof(e) <> 'object' THEN
		RAISE EXCEPTION 'must be a JSON object, not %', jsonb_typeof(e)
			USING ERRCODE = 'invalid_parameter_value';
	ELSIF NOT e ? 'op' THEN
		RAISE EXCEPTION 'missing field "op"'
			USING ERRCODE = 'invalid_parameter_value';
	ELSIF jsonb_typeof(e->'op') <> 'string' OR NOT (e->>'op') = ANY (@extschema@._all_operations()) THEN
		RAISE EXCEPTION 'unknown op %', left((e->'op')::text, 200)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = format('Operations: %s.', array_to_string(@extschema@._all_operations(), ', '));
	END IF;
	f := @extschema@._op_fields(e->>'op');
	FOR k IN SELECT jsonb_object_keys(e - 'op') ORDER BY 1 LOOP
		IF NOT k = ANY (f.required || f.optional) THEN
			RAISE EXCEPTION 'unknown field "%"', left(k, 200)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = format('Fields of %s: op, %s.', e->>'op',
									array_to_string(f.required || f.optional, ', '));
		END IF;
	END LOOP;
	FOREACH k IN ARRAY f.required LOOP
		IF NOT e ? k THEN
			RAISE EXCEPTION 'missing field "%"', k
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	RETURN e - 'op';
END
$$;

-- The public API.

CREATE FUNCTION @extschema@."grant"(app text, account text, entitlement text,
									request_id text DEFAULT NULL,
									expires_at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'grant',
		jsonb_build_object('account', account, 'entitlement', entitlement,
						   'request_id', request_id, 'expires_at', expires_at),
		'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@."grant"(text, text, text, text, timestamptz) IS
	'Grant an entitlement to an account, optionally until expires_at: granted or unchanged.';

CREATE FUNCTION @extschema@.revoke(app text, account text, entitlement text,
								   request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'revoke',
		jsonb_build_object('account', account, 'entitlement', entitlement,
						   'request_id', request_id),
		'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.revoke(text, text, text, text) IS
	'Revoke an entitlement from an account: revoked or unchanged.';

CREATE FUNCTION @extschema@.disable(app text, account text, request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'disable',
		jsonb_build_object('account', account, 'request_id', request_id), 'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.disable(text, text, text) IS
	'Disable an account through its status column: disabled or unchanged.';

CREATE FUNCTION @extschema@.enable(app text, account text, request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'enable',
		jsonb_build_object('account', account, 'request_id', request_id), 'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.enable(text, text, text) IS
	'Enable an account through its status column: enabled or unchanged.';

CREATE FUNCTION @extschema@.create_account(app text, name text, attributes jsonb DEFAULT '{}',
										   request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'create_account',
		jsonb_build_object('name', name, 'attributes', COALESCE(attributes, '{}'),
						   'request_id', request_id),
		'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.create_account(text, text, jsonb, text) IS
	'Create an account with the given name and mapped attributes; returns its id.';

CREATE FUNCTION @extschema@.update_account(app text, account text, attributes jsonb,
										   request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'update_account',
		jsonb_build_object('account', account, 'attributes', attributes,
						   'request_id', request_id),
		'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.update_account(text, text, jsonb, text) IS
	'Change mapped attributes (and the name) of an account: updated or unchanged.';

CREATE FUNCTION @extschema@.delete_account(app text, account text, request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'delete_account',
		jsonb_build_object('account', account, 'request_id', request_id), 'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.delete_account(text, text, text) IS
	'Revoke every grant and credential of an account, one by one, then delete it.';

CREATE FUNCTION @extschema@.offboard(app text, account text, request_id text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'offboard',
		jsonb_build_object('account', account, 'request_id', request_id), 'platform');
END
$$;
COMMENT ON FUNCTION @extschema@.offboard(text, text, text) IS
	'Disable an account and revoke all its grants and credentials; returns a summary.';

CREATE FUNCTION @extschema@.revoke_credential(app text, credential text,
											  request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'revoke_credential',
		jsonb_build_object('credential', credential, 'request_id', request_id),
		'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.revoke_credential(text, text, text) IS
	'Revoke an NHI credential (stamp its revoked column, or delete it): revoked or unchanged.';

CREATE FUNCTION @extschema@.create_entitlement(app text, name text, attributes jsonb DEFAULT '{}',
											   request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'create_entitlement',
		jsonb_build_object('name', name, 'attributes', COALESCE(attributes, '{}'),
						   'request_id', request_id),
		'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.create_entitlement(text, text, jsonb, text) IS
	'Create an entitlement (role, group) with the given name and mapped attributes; returns its id.';

CREATE FUNCTION @extschema@.update_entitlement(app text, entitlement text, attributes jsonb,
											   request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'update_entitlement',
		jsonb_build_object('entitlement', entitlement, 'attributes', attributes,
						   'request_id', request_id),
		'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.update_entitlement(text, text, jsonb, text) IS
	'Change the name or mapped attributes of an entitlement: updated or unchanged.';

CREATE FUNCTION @extschema@.delete_entitlement(app text, entitlement text, request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN @extschema@._write(@extschema@._write_mapping(app), 'delete_entitlement',
		jsonb_build_object('entitlement', entitlement, 'request_id', request_id), 'platform') #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.delete_entitlement(text, text, text) IS
	'Revoke an entitlement from every account holding it, one by one, then delete it.';

CREATE FUNCTION @extschema@.apply(app text, operations jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._write_mapping(app);
	outcomes jsonb[] := '{}';
	e record;
	args jsonb;
	k bigint;
	op text;
	state text;
	msg text;
	detail text;
	hint text;
BEGIN
	PERFORM @extschema@._require(operations, 'operations');
	IF jsonb_typeof(operations) <> 'array' THEN
		RAISE EXCEPTION 'operations must be a JSON array, not %', jsonb_typeof(operations)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an array of objects such as {"op": "grant", "account": "42", "entitlement": "7"}.';
	END IF;
	-- One block for the whole batch: any error undoes every operation, and
	-- the handler only adds the failing operation's index to it.
	BEGIN
		FOR e IN SELECT x.v, x.o - 1 AS i FROM jsonb_array_elements(operations) WITH ORDINALITY x(v, o) LOOP
			k := e.i;
			op := CASE WHEN jsonb_typeof(e.v) = 'object'
							AND e.v->>'op' = ANY (@extschema@._all_operations())
					   THEN e.v->>'op' END;
			args := @extschema@._apply_args(e.v);
			outcomes := array_append(outcomes, @extschema@._write(m, op, args, 'platform'));
		END LOOP;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
								detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
		PERFORM @extschema@._reraise(state,
			format('operation %s%s: %s', k, COALESCE(' (' || op || ')', ''), msg), detail, hint);
	END;
	RETURN to_jsonb(outcomes);
END
$$;
COMMENT ON FUNCTION @extschema@.apply(text, jsonb) IS
	'Run an array of write operations all or nothing; returns their outcomes in order.';

-- Retention of idempotency records: called by the background worker, or by
-- a DBA from cron.  Returns the number of records removed.
CREATE FUNCTION @extschema@.purge_requests() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	keep interval := COALESCE(NULLIF(current_setting('connector.retention', true), ''), '7d')::interval;
	n bigint;
BEGIN
	DELETE FROM @extschema@.request q WHERE q.created_at < now() - keep;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.purge_requests() IS
	'Delete idempotency records older than connector.retention; returns how many.';

GRANT EXECUTE ON FUNCTION
	@extschema@."grant"(text, text, text, text, timestamptz),
	@extschema@.revoke(text, text, text, text),
	@extschema@.disable(text, text, text),
	@extschema@.enable(text, text, text),
	@extschema@.create_account(text, text, jsonb, text),
	@extschema@.update_account(text, text, jsonb, text),
	@extschema@.delete_account(text, text, text),
	@extschema@.offboard(text, text, text),
	@extschema@.revoke_credential(text, text, text),
	@extschema@.create_entitlement(text, text, jsonb, text),
	@extschema@.update_entitlement(text, text, jsonb, text),
	@extschema@.delete_entitlement(text, text, text),
	@extschema@.apply(text, jsonb)
TO connector_platform;

GRANT EXECUTE ON FUNCTION @extschema@.purge_requests() TO connector_admin;
GRANT SELECT ON @extschema@.grant_expiry TO connector_admin, connector_platform;
