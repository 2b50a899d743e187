-- Change capture: the outbox, the capture triggers, sealing and changes().

-- Events, written by the capture trigger in the changing transaction.  A
-- row's position is NULL until it is sealed: sealing numbers the events of
-- committed transactions in one serialized step, so a position handed out
-- by changes() is never followed by a lower one (a bigserial assigned at
-- insert would be: transactions commit in another order than they insert).
CREATE TABLE @extschema@.outbox (
	position		bigint,
	txid			xid8 NOT NULL,
	seq				int NOT NULL,
	app				text NOT NULL,
	type			text NOT NULL,
	occurred_at		timestamptz NOT NULL,
	account			text,
	account_name	text,
	account_kind	text,
	entitlement		text,
	entitlement_name text,
	credential		text,
	before			jsonb,
	after			jsonb,
	expires_at		timestamptz,
	origin			jsonb NOT NULL
);
CREATE UNIQUE INDEX outbox_position ON @extschema@.outbox (position);
CREATE INDEX outbox_unsealed ON @extschema@.outbox (txid, seq) WHERE position IS NULL;
COMMENT ON TABLE @extschema@.outbox IS
	'Captured events; written only by the capture trigger, removed only by retention.';

-- The sealer's state: the last position handed out and the highest removed.
CREATE TABLE @extschema@.seal_state (
	one				boolean PRIMARY KEY DEFAULT true CHECK (one),
	last_position	bigint NOT NULL DEFAULT 0,
	purged_through	bigint NOT NULL DEFAULT 0
);
INSERT INTO @extschema@.seal_state DEFAULT VALUES;

REVOKE ALL ON @extschema@.outbox, @extschema@.seal_state FROM PUBLIC;

CREATE FUNCTION @extschema@.capture() RETURNS trigger
AS 'MODULE_PATHNAME', 'connector_capture'
LANGUAGE C;
COMMENT ON FUNCTION @extschema@.capture() IS
	'Capture trigger of mapped tables (arguments: application, mapping role).';

-- What the capture trigger needs to know of one mapped table, as (key, value)
-- rows in before/after column order: "col:<purpose>" = column name,
-- "status_shape", "enabled" (output form), "grants_column", and lookup queries
-- for account and entitlement names.
CREATE FUNCTION @extschema@._capture_spec(p_app text, p_role text)
RETURNS TABLE (k text, v text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._mapping(p_app);
	s jsonb := m->p_role;
	a jsonb := m->'accounts';
	e jsonb := m->'entitlements';
	rel oid;
	c text;
	typ regtype;
BEGIN
	IF p_role = 'accounts' THEN
		RETURN QUERY VALUES ('col:id', s->>'id'), ('col:name', s->>'name'),
			('col:status', s->'status'->>'column'), ('col:kind', s->>'kind'),
			('col:owner', s->>'owner');
		IF s ? 'status' THEN
			IF s->'status'->>'disabled' = 'timestamp' AND NOT s->'status' ? 'enabled' THEN
				RETURN QUERY VALUES ('status_shape', 'timestamp');
			ELSE
				typ := @extschema@._coltype((s->>'relid')::oid, s->'status'->>'column');
				RETURN QUERY VALUES ('status_shape', 'value');
				-- the value's output form, as the trigger will see the column
				EXECUTE format('SELECT pg_catalog.format(''%%s'', $1::%s)', typ)
					INTO c USING s->'status'->>'enabled';
				RETURN QUERY VALUES ('enabled', c);
			END IF;
		END IF;
		IF m->'grants' ? 'column' THEN
			RETURN QUERY VALUES ('grants_column', m->'grants'->>'column');
		END IF;
	ELSIF p_role = 'entitlements' THEN
		RETURN QUERY VALUES ('col:id', s->>'id'), ('col:name', s->>'name'),
			('col:privileged', s->>'privileged');
	ELSIF p_role = 'grants' THEN
		RETURN QUERY VALUES ('col:account', s->>'account'), ('col:entitlement', s->>'entitlement'),
			('col:expires', s->>'expires');
	ELSIF p_role = 'credentials' THEN
		RETURN QUERY VALUES ('col:id', s->>'id'), ('col:account', s->>'account'),
			('col:created', s->>'created'), ('col:expires', s->>'expires'),
			('col:last_used', s->>'last_used'), ('col:revoked', s->>'revoked');
	END IF;
	RETURN QUERY SELECT 'col:attr', x FROM jsonb_array_elements_text(COALESCE(s->'attributes', '[]')) x;

	-- Lookups run as the extension owner: everything in them is qualified.
	IF p_role IN ('grants', 'credentials') THEN
		rel := (a->>'relid')::oid;
		RETURN QUERY VALUES ('lookup_account', format(
			'SELECT t.%I::pg_catalog.text, %s FROM %s t WHERE t.%I OPERATOR(pg_catalog.=) $1::%s',
			a->>'name',
			CASE WHEN a ? 'kind' THEN format('t.%I::pg_catalog.text', a->>'kind') ELSE 'NULL::pg_catalog.text' END,
			rel::regclass, a->>'id', @extschema@._coltype(rel, a->>'id')));
	END IF;
	IF e IS NOT NULL AND (p_role = 'grants' OR (p_role = 'accounts' AND m->'grants' ? 'column')) THEN
		rel := (e->>'relid')::oid;
		RETURN QUERY VALUES ('lookup_entitlement', format(
			'SELECT t.%I::pg_catalog.text FROM %s t WHERE t.%I OPERATOR(pg_catalog.=) $1::%s',
			e->>'name', rel::regclass, e->>'id', @extschema@._coltype(rel, e->>'id')));
	END IF;
END
$$;

-- Install the capture triggers on the tables of an application:
-- row-level AFTER INSERT/UPDATE/DELETE and statement-level BEFORE TRUNCATE,
-- ENABLE ALWAYS so session_replication_role = replica does not bypass them.
-- The triggers depend on the extension, so DROP EXTENSION removes them.
-- Called before the tables enter app_table, so the tamper check never sees
-- a half-installed state.
CREATE FUNCTION @extschema@._capture_install(p_app text, roles text[], rels oid[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t record;
BEGIN
	FOR t IN SELECT * FROM unnest(roles, rels) AS r(role, relid) LOOP
		EXECUTE format('CREATE TRIGGER connector_capture AFTER INSERT OR UPDATE OR DELETE ON %s'
					   ' FOR EACH ROW EXECUTE FUNCTION @extschema@.capture(%L, %L)',
					   t.relid::regclass, p_app, t.role);
		EXECUTE format('CREATE TRIGGER connector_capture_truncate BEFORE TRUNCATE ON %s'
					   ' FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.capture(%L, %L)',
					   t.relid::regclass, p_app, t.role);
		EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER connector_capture', t.relid::regclass);
		EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER connector_capture_truncate', t.relid::regclass);
		-- DROP EXTENSION then removes the triggers instead of refusing
		EXECUTE format('ALTER TRIGGER connector_capture ON %s DEPENDS ON EXTENSION connector', t.relid::regclass);
		EXECUTE format('ALTER TRIGGER connector_capture_truncate ON %s DEPENDS ON EXTENSION connector', t.relid::regclass);
	END LOOP;
END
$$;

-- Forget an application's tables and remove their capture triggers (those
-- that still exist), in that order so the tamper check stays quiet.
CREATE FUNCTION @extschema@._capture_uninstall(p_app text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	rels oid[];
	t record;
BEGIN
	WITH gone AS (DELETE FROM @extschema@.app_table at WHERE at.app = p_app RETURNING at.relid)
	SELECT array_agg(relid) INTO rels FROM gone;
	DELETE FROM @extschema@.capture_gap g WHERE g.app = p_app;
	FOR t IN SELECT tg.tgrelid, tg.tgname FROM pg_catalog.pg_trigger tg
			  WHERE tg.tgrelid = ANY (rels) AND tg.tgparentid = 0
				AND tg.tgname IN ('connector_capture', 'connector_capture_truncate') LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass);
	END LOOP;
END
$$;

-- Give positions to the events of committed transactions, in (txid, seq)
-- order, after every position given before.  Serialized by a row lock on
-- seal_state held to commit, so a later sealing always gets higher positions
-- and sees what earlier ones sealed.
CREATE FUNCTION @extschema@._seal() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM @extschema@.outbox o WHERE o.position IS NULL) THEN
		RETURN 0;
	END IF;
	PERFORM 1 FROM @extschema@.seal_state FOR UPDATE;
	-- one statement, one snapshot: the rows numbered are the rows counted
	WITH todo AS (
		SELECT o.ctid AS c, row_number() OVER (ORDER BY o.txid, o.seq) AS rn
		  FROM @extschema@.outbox o WHERE o.position IS NULL
	), done AS (
		UPDATE @extschema@.outbox o SET position = s.last_position + t.rn
		  FROM todo t, @extschema@.seal_state s
		 WHERE o.ctid = t.c
		RETURNING 1
	)
	UPDATE @extschema@.seal_state SET last_position = last_position + (SELECT count(*) FROM done)
	RETURNING (SELECT count(*) FROM done) INTO n;
	RETURN n;
END
$$;

-- The event JSON of spec section 6 for one outbox row.
CREATE FUNCTION @extschema@._event(o @extschema@.outbox) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT jsonb_build_object(
		'id', 'evt_' || o.txid::text || '_' || o.seq,
		'type', o.type,
		'timestamp', to_char(o.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
		'data', jsonb_build_object(
			'app', o.app,
			'position', o.position,
			'txid', o.txid::text,
			'before', o.before,
			'after', o.after,
			'expires_at', o.expires_at,
			'origin', o.origin)
		|| CASE WHEN o.account IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('account',
				jsonb_build_object('id', o.account, 'name', o.account_name, 'kind', o.account_kind)) END
		|| CASE WHEN o.entitlement IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('entitlement',
				jsonb_build_object('id', o.entitlement, 'name', o.entitlement_name)) END
		|| CASE WHEN o.credential IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('credential',
				jsonb_build_object('id', o.credential)) END)
$$;

CREATE FUNCTION @extschema@.changes(app text, after bigint DEFAULT 0, "limit" int DEFAULT 1000)
RETURNS TABLE ("position" bigint, event jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	purged bigint;
BEGIN
	PERFORM @extschema@._mapping(app);
	PERFORM @extschema@._require(changes.after, 'after');
	PERFORM @extschema@._check_limit("limit");
	PERFORM @extschema@._seal();
	SELECT s.purged_through INTO purged FROM @extschema@.seal_state s;
	IF changes.after < purged THEN
		RAISE EXCEPTION 'position % is older than the retained history', changes.after
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('Events up to position %s have been removed by retention.', purged),
				  HINT = 'Reconcile the application, then read changes from the current position.';
	END IF;
	RETURN QUERY
		SELECT o.position, @extschema@._event(o)
		  FROM @extschema@.outbox o
		 WHERE o.position > changes.after AND o.app = changes.app
		 ORDER BY o.position
		 LIMIT "limit";
END
$$;
COMMENT ON FUNCTION @extschema@.changes(text, bigint, int) IS
	'Events of an application after a position, in commit order; never skips one.';

-- Remove up to max_rows sealed events older than connector.retention that
-- every endpoint of their application has delivered (the endpoint table is
-- created later in the script, by 60_endpoints.sql), and as many expired
-- dead letters.  Bounded batches keep locks short; call again while it
-- returns max_rows (the count of events removed).
CREATE FUNCTION @extschema@.purge_events(max_rows int DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
	top bigint;
	cutoff timestamptz;
BEGIN
	PERFORM @extschema@._require(max_rows, 'max_rows');
	-- the setting reads with a unit ("7d"), which an interval accepts
	cutoff := now() - current_setting('connector.retention')::interval;
	WITH victims AS (
		SELECT o.ctid AS c FROM @extschema@.outbox o
		 WHERE o.position IS NOT NULL
		   AND o.occurred_at < cutoff
		   AND o.position <= coalesce((SELECT min(e.cursor) FROM @extschema@.endpoint e
										WHERE e.app = o.app), o.position)
		 ORDER BY o.position
		 LIMIT max_rows
	), gone AS (
		DELETE FROM @extschema@.outbox o USING victims v WHERE o.ctid = v.c
		RETURNING o.position
	)
	SELECT count(*), max(position) INTO n, top FROM gone;
	IF top IS NOT NULL THEN
		UPDATE @extschema@.seal_state SET purged_through = greatest(purged_through, top);
	END IF;
	DELETE FROM @extschema@.dead_letter d
	 WHERE d.id IN (SELECT x.id FROM @extschema@.dead_letter x WHERE x.dead_at < cutoff
					 ORDER BY x.id LIMIT max_rows);
	RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.purge_events(int) IS
	'Retention: remove a bounded batch of delivered events and dead letters older than connector.retention.';

GRANT EXECUTE ON FUNCTION @extschema@.changes(text, bigint, int) TO connector_platform, connector_admin;
GRANT EXECUTE ON FUNCTION @extschema@.purge_events(int) TO connector_admin;
