-- Change capture: the outbox, the capture triggers, sealing and changes().

-- Events, written by the capture trigger in the changing transaction.  A
-- row's position is NULL until it is sealed: sealing numbers the events of
-- committed transactions in one serialized step, so a position handed out
-- by changes() is never followed by a lower one (a bigserial assigned at
-- insert would be: transactions commit in another order than they insert).
CREATE TABLE @extschema@.outbox (
	position		bigint,				-- of the row's first event; NULL until sealed
	txid			xid8 NOT NULL,
	seq				int NOT NULL,		-- the first event's number in its transaction
	n				int NOT NULL,		-- events in this row
	app				text NOT NULL,
	occurred_at		timestamptz NOT NULL,	-- statement time of the first event
	origin			text NOT NULL,		-- JSON, shared by the row's events
	events			text COMPRESSION lz4 NOT NULL	-- JSON array of the events, rendered by the trigger
);
CREATE UNIQUE INDEX outbox_position ON @extschema@.outbox (position);
COMMENT ON TABLE @extschema@.outbox IS
	'Captured events, up to 1000 per row; written only by the capture trigger, removed only by retention.';

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
CREATE FUNCTION @extschema@._capture_spec(p_app text, p_role text, rel oid)
RETURNS TABLE (k text, v text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m jsonb := @extschema@._mapping(p_app);
	s jsonb := m->p_role;
	a jsonb := m->'accounts';
	e jsonb := m->'entitlements';
BEGIN
	-- capture() is executable by table owners, who create partitions (the
	-- trigger is cloned onto them): it captures mapped tables only, so no
	-- trigger on another table can write events for an application.
	IF NOT EXISTS (SELECT 1 FROM @extschema@.app_table at
					WHERE at.app = p_app AND at.role = p_role
					  AND (at.relid = rel OR at.relid IN (SELECT pg_catalog.pg_partition_ancestors(rel)))) THEN
		RAISE EXCEPTION 'table % is not mapped as % of application "%"', rel::regclass, p_role, p_app
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'connector.capture() captures the tables register_app mapped.';
	END IF;
	IF p_role = 'accounts' THEN
		RETURN QUERY VALUES ('col:id', s->>'id'), ('col:name', s->>'name'),
			('col:status', s->'status'->>'column'), ('col:kind', s->>'kind'),
			('col:owner', s->>'owner');
		IF s ? 'status' THEN
			IF s->'status'->>'disabled' = 'timestamp' AND NOT s->'status' ? 'enabled' THEN
				RETURN QUERY VALUES ('status_shape', 'timestamp');
			ELSE
				-- as given: the trigger reads it in the column's type, as the
				-- table's owner
				RETURN QUERY VALUES ('status_shape', 'value'), ('enabled', s->'status'->>'enabled');
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

	-- Where the trigger finds account and entitlement names (by the id's unique index).
	IF p_role IN ('grants', 'credentials') THEN
		RETURN QUERY VALUES ('account_table', a->>'relid'), ('account_id', a->>'id'),
			('account_name', a->>'name'), ('account_kind', a->>'kind');
	END IF;
	IF e IS NOT NULL AND (p_role = 'grants' OR (p_role = 'accounts' AND m->'grants' ? 'column')) THEN
		RETURN QUERY VALUES ('entitlement_table', e->>'relid'), ('entitlement_id', e->>'id'),
			('entitlement_name', e->>'name');
	END IF;
END
$$;

-- One capture trigger on rel: connector_capture (row-level AFTER INSERT OR
-- UPDATE OR DELETE) or connector_capture_truncate (statement-level BEFORE
-- TRUNCATE), ENABLE ALWAYS so session_replication_role = replica does not
-- bypass it, and depending on the extension, so DROP EXTENSION removes it
-- instead of refusing.
CREATE FUNCTION @extschema@._capture_trigger(rel oid, p_app text, p_role text, tg text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	EXECUTE format('CREATE TRIGGER %I %s ON %s FOR EACH %s EXECUTE FUNCTION @extschema@.capture(%L, %L)',
				   tg, CASE tg WHEN 'connector_capture' THEN 'AFTER INSERT OR UPDATE OR DELETE'
							   ELSE 'BEFORE TRUNCATE' END,
				   rel::regclass, CASE tg WHEN 'connector_capture' THEN 'ROW' ELSE 'STATEMENT' END,
				   p_app, p_role);
	EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', rel::regclass, tg);
	EXECUTE format('ALTER TRIGGER %I ON %s DEPENDS ON EXTENSION connector', tg, rel::regclass);
END
$$;

-- Statement triggers are not cloned onto partitions, and a TRUNCATE of one
-- partition fires only that partition's: give every leaf partition of a
-- mapped table its own BEFORE TRUNCATE trigger (the row trigger is cloned by
-- PostgreSQL).  Called at registration and after every DDL command, so a new
-- partition, or one whose trigger was dropped, gets one at once.  Each
-- CREATE TRIGGER runs the DDL event trigger again, which may install the
-- others first: existence is checked before each.
CREATE FUNCTION @extschema@._capture_install_partitions(p_app text, p_role text, rel oid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	leaf oid;
BEGIN
	FOR leaf IN SELECT l FROM @extschema@._leaves(rel) l WHERE l <> rel ORDER BY 1 LOOP
		CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
							   WHERE g.tgrelid = leaf AND g.tgname = 'connector_capture_truncate');
		PERFORM @extschema@._capture_trigger(leaf, p_app, p_role, 'connector_capture_truncate');
	END LOOP;
END
$$;

-- Install the capture triggers on the tables of an application (and the
-- truncate trigger on each leaf partition).  Called before the tables enter
-- app_table, so the tamper check never sees a half-installed state.
CREATE FUNCTION @extschema@._capture_install(p_app text, roles text[], rels oid[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t record;
BEGIN
	FOR t IN SELECT * FROM unnest(roles, rels) AS r(role, relid) LOOP
		PERFORM @extschema@._capture_trigger(t.relid, p_app, t.role, 'connector_capture');
		PERFORM @extschema@._capture_trigger(t.relid, p_app, t.role, 'connector_capture_truncate');
		PERFORM @extschema@._capture_install_partitions(p_app, t.role, t.relid);
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
			  WHERE (tg.tgrelid = ANY (rels)
					 OR tg.tgrelid IN (SELECT @extschema@._leaves(r) FROM unnest(rels) r
									   WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r)))
				AND tg.tgparentid = 0
				AND tg.tgname IN ('connector_capture', 'connector_capture_truncate') LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass);
	END LOOP;
END
$$;

CREATE FUNCTION @extschema@._flush() RETURNS void
AS 'MODULE_PATHNAME', 'connector_flush'
LANGUAGE C;
COMMENT ON FUNCTION @extschema@._flush() IS
	'Write the events this (sub)transaction has buffered, so readers in it see them.';

-- Give positions to the events of committed transactions (and of the
-- caller's own), in (txid, seq) order, after every position given before.
-- Serialized by a row lock on seal_state held to commit, so a later sealing
-- always gets higher positions and sees what earlier ones sealed.
CREATE FUNCTION @extschema@._seal() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM @extschema@._flush();
	IF NOT EXISTS (SELECT 1 FROM @extschema@.outbox o WHERE o.position IS NULL) THEN
		RETURN 0;
	END IF;
	PERFORM 1 FROM @extschema@.seal_state FOR UPDATE;
	-- one statement, one snapshot: the rows numbered are the rows counted
	WITH todo AS (
		SELECT o.ctid AS c, sum(o.n) OVER (ORDER BY o.txid, o.seq) - o.n AS before
		  FROM @extschema@.outbox o WHERE o.position IS NULL
	), done AS (
		UPDATE @extschema@.outbox o SET position = s.last_position + t.before + 1
		  FROM todo t, @extschema@.seal_state s
		 WHERE o.ctid = t.c
		RETURNING o.n
	)
	-- another sealer may have sealed everything between the check above and
	-- the lock: then done is empty and nothing moves
	UPDATE @extschema@.seal_state
	   SET last_position = last_position + coalesce((SELECT sum(d.n) FROM done d), 0)
	RETURNING coalesce((SELECT sum(d.n) FROM done d), 0) INTO n;
	RETURN n;
END
$$;

-- The outbox keeps events and origins compact, as JSON arrays written by the
-- capture trigger (src/capture.c, EmitEvent and RenderOrigin); these two
-- functions expand them into the objects of spec section 6.  An origin is
-- [via, db_user, session_user, application_name, client_addr] plus, for a
-- platform call, [operation, request_id], plus, in a transaction that
-- scim_session marked, [operation or null, request_id or null, client].
CREATE FUNCTION @extschema@._origin(o jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT pg_catalog.jsonb_build_object(
		'via', o OPERATOR(pg_catalog.->) 0,
		'db_user', o OPERATOR(pg_catalog.->) 1,
		'session_user', o OPERATOR(pg_catalog.->) 2,
		'application_name', o OPERATOR(pg_catalog.->) 3,
		'client_addr', o OPERATOR(pg_catalog.->) 4)
	OPERATOR(pg_catalog.||) CASE WHEN pg_catalog.jsonb_array_length(o) > 5
			AND o OPERATOR(pg_catalog.->) 5 OPERATOR(pg_catalog.<>) 'null'::pg_catalog.jsonb
		THEN pg_catalog.jsonb_build_object('operation', o OPERATOR(pg_catalog.->) 5,
										   'request_id', o OPERATOR(pg_catalog.->) 6)
		ELSE '{}'::pg_catalog.jsonb END
	OPERATOR(pg_catalog.||) CASE WHEN pg_catalog.jsonb_array_length(o) > 7
		THEN pg_catalog.jsonb_build_object('client', o OPERATOR(pg_catalog.->) 7)
		ELSE '{}'::pg_catalog.jsonb END
$$;

-- An event's timestamp: its own, or (null) the row's occurred_at, written
-- the way the trigger writes one (RFC 3339, UTC, microseconds).
CREATE FUNCTION @extschema@._event_time(ts text, occurred_at timestamptz)
RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT COALESCE(ts,
					pg_catalog.to_char(pg_catalog.timezone('UTC', occurred_at),
									   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
$$;

-- An event's type, stored as its number in this list (src/capture.c,
-- event_types, holds the same list in the same order), or as text.
CREATE FUNCTION @extschema@._event_type(t jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN pg_catalog.jsonb_typeof(t) OPERATOR(pg_catalog.=) 'number'
		THEN ('{account.created,account.updated,account.disabled,account.enabled,'
			  'account.deleted,access.granted,access.revoked,entitlement.created,'
			  'entitlement.updated,entitlement.deleted,credential.created,'
			  'credential.updated,credential.revoked,credential.deleted,capture.tampered}'
			  ::pg_catalog.text[])[(t OPERATOR(pg_catalog.#>>) '{}')::pg_catalog.int4]
		ELSE t OPERATOR(pg_catalog.#>>) '{}' END
$$;

-- The event JSON of spec section 6 for event i (from 1) of an outbox row.
-- ev is [type, account [id, name, kind], entitlement [id, name], after,
-- before, credential id, expires_at, timestamp]; parts that do not apply
-- are null or, at the end, left out, and their keys are left out of the
-- event; a null timestamp is the row's occurred_at.  Takes the row's fields, not the row: a whole-row argument
-- would copy the row's events text (up to 1000 events) once per event.  No
-- SET clause, so the planner inlines it; it is called only from functions
-- that pin search_path, and everything in it is qualified.
CREATE FUNCTION @extschema@._event(txid xid8, seq int, app text, first_position bigint,
								   occurred_at timestamptz, origin jsonb, ev jsonb, i bigint)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT pg_catalog.jsonb_build_object(
		'id', 'evt_' || txid::pg_catalog.text || '_' || (seq + i - 1),
		'type', @extschema@._event_type(ev OPERATOR(pg_catalog.->) 0),
		'timestamp', @extschema@._event_time(ev OPERATOR(pg_catalog.->>) 7, occurred_at),
		'data', pg_catalog.jsonb_build_object(
					'before', ev OPERATOR(pg_catalog.->) 4,
					'after', ev OPERATOR(pg_catalog.->) 3,
					'app', app,
					'position', first_position + i - 1,
					'txid', txid::pg_catalog.text,
					'expires_at', pg_catalog.to_jsonb(
						(ev OPERATOR(pg_catalog.->>) 6)::pg_catalog.timestamptz),
					'origin', @extschema@._origin(origin))
			OPERATOR(pg_catalog.||) CASE WHEN ev OPERATOR(pg_catalog.->) 1 <> 'null'::pg_catalog.jsonb
				THEN pg_catalog.jsonb_build_object('account', pg_catalog.jsonb_build_object(
						'id', ev OPERATOR(pg_catalog.->) 1 OPERATOR(pg_catalog.->) 0,
						'name', ev OPERATOR(pg_catalog.->) 1 OPERATOR(pg_catalog.->) 1,
						'kind', ev OPERATOR(pg_catalog.->) 1 OPERATOR(pg_catalog.->) 2))
				ELSE '{}'::pg_catalog.jsonb END
			OPERATOR(pg_catalog.||) CASE WHEN ev OPERATOR(pg_catalog.->) 2 <> 'null'::pg_catalog.jsonb
				THEN pg_catalog.jsonb_build_object('entitlement', pg_catalog.jsonb_build_object(
						'id', ev OPERATOR(pg_catalog.->) 2 OPERATOR(pg_catalog.->) 0,
						'name', ev OPERATOR(pg_catalog.->) 2 OPERATOR(pg_catalog.->) 1))
				ELSE '{}'::pg_catalog.jsonb END
			OPERATOR(pg_catalog.||) CASE WHEN ev OPERATOR(pg_catalog.->) 5 <> 'null'::pg_catalog.jsonb
				THEN pg_catalog.jsonb_build_object('credential', pg_catalog.jsonb_build_object(
						'id', ev OPERATOR(pg_catalog.->) 5))
				ELSE '{}'::pg_catalog.jsonb END)
$$;

-- The SQL expansion of the compact events, kept as the reference the C
-- reader (src/outbox_read.c) renders byte for byte: the tests compare the
-- two, and the delivery benchmark measures against it.  Sealed events of an
-- application after a position, in position order, optionally of some
-- types only.  Rows hold up to 1000 events, so the row holding position
-- after + 1 starts at most 999 positions earlier.
CREATE FUNCTION @extschema@._events_sql(p_app text, after bigint, lim bigint, types text[] DEFAULT NULL)
RETURNS TABLE ("position" bigint, type text, event jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT o.position + e.i - 1, @extschema@._event_type(e.ev->0),
		   @extschema@._event(o.txid, o.seq, o.app, o.position, o.occurred_at, x.origin, e.ev, e.i)
	  FROM @extschema@.outbox o
	 CROSS JOIN LATERAL (SELECT o.origin::jsonb AS origin) x
	 CROSS JOIN LATERAL jsonb_array_elements(o.events::jsonb) WITH ORDINALITY e(ev, i)
	 WHERE o.position > after - 1000 AND o.app = p_app
	   AND o.position + e.i - 1 > after
	   AND (types IS NULL OR @extschema@._event_type(e.ev->0) = ANY (types))
	 ORDER BY o.position, e.i
	 LIMIT lim
$$;

-- The readers of the outbox in C (src/outbox_read.c): one index scan per
-- call from the row that may hold position after + 1, parsing only the
-- events returned.  _render_events gives each event's JSON text, exactly
-- the text of _event's jsonb; _event_refs positions and ids alone.
CREATE FUNCTION @extschema@._render_events(p_app text, after bigint, lim bigint, types text[] DEFAULT NULL)
RETURNS TABLE ("position" bigint, type text, event text)
AS 'MODULE_PATHNAME', 'connector_render_events'
LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@._render_events(text, bigint, bigint, text[]) IS
	'Sealed events of an application after a position, as event JSON text, in position order.';

CREATE FUNCTION @extschema@._event_refs(p_app text, after bigint, lim bigint, types text[] DEFAULT NULL)
RETURNS TABLE ("position" bigint, id text)
AS 'MODULE_PATHNAME', 'connector_event_refs'
LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@._event_refs(text, bigint, bigint, text[]) IS
	'Positions and ids of the sealed events of an application after a position, without their JSON.';

-- Sealed events of an application after a position, in position order,
-- optionally of some types only: the events of changes(), built as jsonb
-- in C from the same parts, not parsed again from _render_events' text.
CREATE FUNCTION @extschema@._events(p_app text, after bigint, lim bigint, types text[] DEFAULT NULL)
RETURNS TABLE ("position" bigint, type text, event jsonb)
AS 'MODULE_PATHNAME', 'connector_events'
LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@._events(text, bigint, bigint, text[]) IS
	'Sealed events of an application after a position, as event jsonb, in position order.';

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
	IF changes.after < 0 THEN
		RAISE EXCEPTION 'position % is out of range', changes.after
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Positions start at 1; pass 0 to read from the start.';
	END IF;
	-- Sealing writes (and locks seal_state FOR UPDATE), which a read-only
	-- transaction or a hot standby refuses: there the reader gets the events
	-- already sealed, which the dispatcher (or a read-write reader) seals
	-- continuously, the same every time however many are still unsealed.
	IF NOT (current_setting('transaction_read_only')::boolean OR pg_is_in_recovery()) THEN
		PERFORM @extschema@._seal();
	END IF;
	SELECT s.purged_through INTO purged FROM @extschema@.seal_state s;
	IF changes.after < purged THEN
		RAISE EXCEPTION 'position % is older than the retained history', changes.after
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('Events up to position %s have been removed by retention.', purged),
				  HINT = 'Reconcile the application, then read changes from the current position.';
	END IF;
	RETURN QUERY SELECT e.position, e.event
				   FROM @extschema@._events(changes.app, changes.after, "limit") e;
END
$$;
COMMENT ON FUNCTION @extschema@.changes(text, bigint, int) IS
	'Events of an application after a position, in commit order; never skips one.';

-- Remove up to max_rows sealed events older than connector.retention that
-- every endpoint of their application has delivered (the endpoint table is
-- created later in the script, by 60_endpoints.sql), and as many expired
-- dead letters.  Bounded batches keep locks short; call again while it
-- removes anything (it returns the count of events removed; an outbox row
-- holds up to 1000 events, max_rows counts rows).  Rows are looked at in
-- position order up to the first one younger than the retention: positions
-- follow commits, so nearly everything after it is younger too, and the
-- look stays as short as the old history instead of reading every row of
-- the outbox each time (a row older than that first young one waits until
-- that one is old too).
CREATE FUNCTION @extschema@.purge_events(max_rows int DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
	top bigint;
	young bigint;
	cutoff timestamptz;
BEGIN
	PERFORM @extschema@._require(max_rows, 'max_rows');
	-- the setting reads with a unit ("7d"), which an interval accepts
	cutoff := now() - current_setting('connector.retention')::interval;
	SELECT o.position INTO young FROM @extschema@.outbox o
	 WHERE o.position IS NOT NULL AND o.occurred_at >= cutoff
	 ORDER BY o.position LIMIT 1;
	WITH victims AS (
		SELECT o.ctid AS c FROM @extschema@.outbox o
		 WHERE o.position IS NOT NULL
		   AND o.position < coalesce(young, 9223372036854775807)
		   AND o.occurred_at < cutoff
		   AND o.position + o.n - 1 <= coalesce((SELECT min(e.cursor) FROM @extschema@.endpoint e
												  WHERE e.app = o.app), o.position + o.n - 1)
		 ORDER BY o.position
		 LIMIT max_rows
	), gone AS (
		DELETE FROM @extschema@.outbox o USING victims v WHERE o.ctid = v.c
		RETURNING o.position + o.n - 1 AS last, o.n
	)
	SELECT coalesce(sum(g.n), 0), max(g.last) INTO n, top FROM gone g;
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
