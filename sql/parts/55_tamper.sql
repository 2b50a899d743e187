-- Tamper detection: DDL that weakens capture of a mapped table (trigger
-- disabled or dropped, on the table or a partition; mapped column dropped,
-- renamed or retyped; values rewritten by ALTER COLUMN TYPE; an enum status
-- value renamed; a table inheriting it; a partition detached or dropped;
-- table dropped or renamed) is refused unless its author is a member of connector_admin (or a
-- superuser); when allowed, it is recorded as a capture.tampered event.
--
-- The check is state-based: after each DDL command it compares what capture
-- needs with what the catalog now holds, so it cannot be sidestepped by an
-- unusual spelling of a command.  Problems already reported are remembered in
-- capture_gap and reported once.

CREATE TABLE @extschema@.capture_gap (
	app			text NOT NULL REFERENCES @extschema@.app ON DELETE CASCADE,
	table_name	text NOT NULL,
	problem		text NOT NULL,
	found_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (app, table_name, problem)
);
COMMENT ON TABLE @extschema@.capture_gap IS
	'Capture weaknesses already reported as capture.tampered events.';
REVOKE ALL ON @extschema@.capture_gap FROM PUBLIC;

CREATE FUNCTION @extschema@._emit(app text, type text, after jsonb) RETURNS void
AS 'MODULE_PATHNAME', 'connector_emit'
LANGUAGE C;

CREATE FUNCTION @extschema@._capture_rows(app text, role text, rel oid) RETURNS void
AS 'MODULE_PATHNAME', 'connector_capture_rows'
LANGUAGE C;

CREATE FUNCTION @extschema@._outer_user() RETURNS oid
AS 'MODULE_PATHNAME', 'connector_outer_user'
LANGUAGE C STABLE;

-- Columns of a mapping section that capture and the API rely on.
CREATE FUNCTION @extschema@._mapped_columns(m jsonb, p_role text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT DISTINCT c FROM (
		SELECT m->p_role->>k AS c
		  FROM unnest(ARRAY['id', 'name', 'kind', 'owner', 'privileged', 'account', 'entitlement',
							'expires', 'created', 'last_used', 'revoked']) k
		UNION ALL SELECT m->p_role->'status'->>'column'
		UNION ALL SELECT jsonb_array_elements_text(COALESCE(m->p_role->'attributes', '[]'))
		UNION ALL SELECT m->'grants'->>'column' WHERE p_role = 'accounts'
		UNION ALL SELECT m->'scim'->>k FROM unnest(ARRAY['created', 'lastModified']) k
		 WHERE p_role = 'accounts'
	) s WHERE c IS NOT NULL
$$;

-- The leaf partitions of a partitioned table; any other table itself.
CREATE FUNCTION @extschema@._leaves(rel oid) RETURNS SETOF oid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT p.relid::oid FROM pg_catalog.pg_partition_tree(rel) p
	 WHERE p.isleaf AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = rel) = 'p'
	UNION ALL
	SELECT c.oid FROM pg_catalog.pg_class c WHERE c.oid = rel AND c.relkind <> 'p'
$$;

-- What capture of a mapped table relies on beyond its triggers: the types of
-- the mapped columns, the labels of an enum status's values (renaming one
-- would swap what enabled means), the leaf partitions (a detached one takes
-- its rows away unseen).  Stored in app_table.state by register_app.
CREATE FUNCTION @extschema@._table_state(spec jsonb, p_role text, rel oid) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT jsonb_build_object(
		'types', (SELECT COALESCE(jsonb_object_agg(c, @extschema@._coltype(rel, c)::oid), '{}')
					FROM @extschema@._mapped_columns(spec, p_role) c),
		'labels', (SELECT COALESCE(jsonb_object_agg(e.oid::text, e.enumlabel), '{}')
					 FROM pg_catalog.pg_enum e
					WHERE p_role = 'accounts'
					  AND e.enumtypid = @extschema@._coltype(rel, spec->'accounts'->'status'->>'column')
					  AND e.enumlabel IN (spec->'accounts'->'status'->>'enabled',
										  spec->'accounts'->'status'->>'disabled')),
		'parts', (SELECT COALESCE(jsonb_agg(l ORDER BY l), '[]') FROM @extschema@._leaves(rel) l))
$$;

-- Whether role who may weaken capture (and so is only recorded doing it).
CREATE FUNCTION @extschema@._may_weaken(who oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT pg_has_role(who, 'connector_admin', 'MEMBER')
		   OR COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = who), false)
$$;

-- Every way capture of a mapped table is weaker now than register_app left it.
CREATE FUNCTION @extschema@._capture_problems()
RETURNS TABLE (app text, relid oid, table_name text, problem text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t record;
	tg text;
	c text;
	k text;
	x record;
	enabled "char";
BEGIN
	FOR t IN SELECT at.app, at.role, at.relid::oid AS relid, a.spec, at.state
			   FROM @extschema@.app_table at JOIN @extschema@.app a USING (app) LOOP
		app := t.app;
		relid := t.relid;
		table_name := t.spec->t.role->>'table';
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = t.relid) THEN
			problem := 'table dropped';
			RETURN NEXT;
			CONTINUE;
		END IF;
		IF to_regclass(table_name) IS DISTINCT FROM t.relid THEN
			problem := format('table renamed to %s', t.relid::regclass);
			RETURN NEXT;
		END IF;
		FOREACH tg IN ARRAY ARRAY['connector_capture', 'connector_capture_truncate'] LOOP
			SELECT g.tgenabled INTO enabled FROM pg_catalog.pg_trigger g
			 WHERE g.tgrelid = t.relid AND g.tgname = tg;
			IF NOT FOUND THEN
				problem := format('trigger %s dropped', tg);
				RETURN NEXT;
			ELSIF enabled <> 'A' THEN
				problem := format('trigger %s disabled', tg);
				RETURN NEXT;
			END IF;
		END LOOP;
		FOR c IN SELECT @extschema@._mapped_columns(t.spec, t.role) LOOP
			IF @extschema@._coltype(t.relid, c) IS NULL THEN
				problem := format('mapped column "%s" dropped or renamed', c);
				RETURN NEXT;
			ELSIF t.state->'types' ? c
				  AND @extschema@._coltype(t.relid, c)::oid <> (t.state->'types'->>c)::oid THEN
				problem := format('mapped column "%s" changed type from %s to %s', c,
								  (t.state->'types'->>c)::oid::regtype, @extschema@._coltype(t.relid, c));
				RETURN NEXT;
			END IF;
		END LOOP;
		FOR k IN SELECT jsonb_object_keys(COALESCE(t.state->'labels', '{}')) LOOP
			IF (SELECT e.enumlabel FROM pg_catalog.pg_enum e WHERE e.oid = k::oid)
			   IS DISTINCT FROM t.state->'labels'->>k THEN
				problem := format('status value "%s" renamed', t.state->'labels'->>k);
				RETURN NEXT;
			END IF;
		END LOOP;
		IF t.state ? 'rewritten' THEN
			problem := format('values rewritten by %s, without events', t.state->>'rewritten');
			RETURN NEXT;
		END IF;
		-- rows of an inheriting table are the application's, but not captured
		FOR x IN SELECT i.inhrelid::regclass AS child FROM pg_catalog.pg_inherits i
				  JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
				 WHERE i.inhparent = t.relid AND p.relkind <> 'p' ORDER BY 1 LOOP
			problem := format('inherited by table %s, whose rows are not captured', x.child);
			RETURN NEXT;
		END LOOP;
		-- every partition captures (cloned triggers), none has gone away
		FOR x IN SELECT l AS part, w.name, g.tgenabled FROM @extschema@._leaves(t.relid) l
				  CROSS JOIN unnest(ARRAY['connector_capture', 'connector_capture_truncate']) w(name)
				   LEFT JOIN pg_catalog.pg_trigger g ON g.tgrelid = l AND g.tgname = w.name
				  WHERE l <> t.relid AND (g.tgenabled IS NULL OR g.tgenabled = 'D') ORDER BY 1, 2 LOOP
			problem := format('trigger %s %s on partition %s', x.name,
							  CASE WHEN x.tgenabled IS NULL THEN 'missing' ELSE 'disabled' END, x.part::regclass);
			RETURN NEXT;
		END LOOP;
		FOR x IN SELECT (p #>> '{}')::oid AS part FROM jsonb_array_elements(COALESCE(t.state->'parts', '[]')) p
				  WHERE (p #>> '{}')::oid NOT IN (SELECT @extschema@._leaves(t.relid)) ORDER BY 1 LOOP
			problem := format('partition %s detached or dropped, its rows without events',
							  COALESCE((SELECT c.oid::regclass::text FROM pg_catalog.pg_class c
										 WHERE c.oid = x.part), x.part::text));
			RETURN NEXT;
		END LOOP;
	END LOOP;
END
$$;

-- Event trigger function: refuse or record new capture weaknesses.
CREATE FUNCTION @extschema@._on_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	who oid;
	p record;
BEGIN
	-- DROP EXTENSION removes the catalog before this runs.
	IF to_regclass('@extschema@.app_table') IS NULL
	   OR NOT EXISTS (SELECT 1 FROM @extschema@.app_table) THEN
		RETURN;
	END IF;
	-- a partition added (or whose truncate trigger was dropped) gets one
	PERFORM @extschema@._capture_install_partitions(at.app, at.role, at.relid)
	   FROM @extschema@.app_table at
	  WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = at.relid AND c.relkind = 'p');
	who := @extschema@._outer_user();
	FOR p IN SELECT * FROM @extschema@._capture_problems() c
			  WHERE NOT EXISTS (SELECT 1 FROM @extschema@.capture_gap g
								 WHERE g.app = c.app AND g.table_name = c.table_name
								   AND g.problem = c.problem) LOOP
		IF NOT @extschema@._may_weaken(who) THEN
			RAISE EXCEPTION 'permission denied to weaken change capture of table "%"', p.table_name
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = format('The change would leave application "%s" with: %s.', p.app, p.problem),
					  HINT = 'Only members of connector_admin can change capture; unregister the application first.';
		END IF;
		INSERT INTO @extschema@.capture_gap (app, table_name, problem)
		VALUES (p.app, p.table_name, p.problem);
		PERFORM @extschema@._emit(p.app, 'capture.tampered',
								  jsonb_build_object('table', p.table_name, 'problem', p.problem,
													 'by', who::regrole::text));
	END LOOP;
	-- A new partition is captured from now on (cloned triggers); the rows a
	-- table attached as one brings join the application unseen by any
	-- trigger: they become events now (an insert each, by who attached it).
	-- Then it is remembered, so a partition that goes away is noticed.
	FOR p IN SELECT at.app, at.role, at.relid, l AS leaf FROM @extschema@.app_table at
			  CROSS JOIN LATERAL @extschema@._leaves(at.relid) l
			 WHERE l <> at.relid
			   AND NOT COALESCE(at.state->'parts', '[]') @> to_jsonb(l)
			 ORDER BY 1, 2, 4 LOOP
		PERFORM @extschema@._capture_rows(p.app, p.role, p.leaf);
		UPDATE @extschema@.app_table at
		   SET state = jsonb_set(at.state, '{parts}', COALESCE(at.state->'parts', '[]') || to_jsonb(p.leaf))
		 WHERE at.app = p.app AND at.role = p.role;
	END LOOP;
	-- a weakness that was repaired can be reported again if it recurs
	DELETE FROM @extschema@.capture_gap g
	 WHERE NOT EXISTS (SELECT 1 FROM @extschema@._capture_problems() c
						WHERE g.app = c.app AND g.table_name = c.table_name AND g.problem = c.problem);
END
$$;

-- Event trigger function: ALTER TABLE or ALTER TYPE about to rewrite a
-- mapped table's column values (ALTER COLUMN ... TYPE ... USING) changes
-- them with no row trigger firing.  Refused like other weakening DDL;
-- allowed, it is remembered until the application is registered again.
CREATE FUNCTION @extschema@._on_rewrite() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	rel oid := pg_event_trigger_table_rewrite_oid();
	who oid;
	t record;
BEGIN
	IF (pg_event_trigger_table_rewrite_reason() & 4) = 0	-- AT_REWRITE_COLUMN_REWRITE
	   OR to_regclass('@extschema@.app_table') IS NULL THEN
		RETURN;
	END IF;
	SELECT at.app, at.role, at.relid INTO t FROM @extschema@.app_table at
	 WHERE at.relid::oid = rel OR at.relid::oid IN (SELECT pg_catalog.pg_partition_ancestors(rel));
	IF NOT FOUND THEN
		RETURN;
	END IF;
	who := @extschema@._outer_user();
	IF NOT @extschema@._may_weaken(who) THEN
		RAISE EXCEPTION 'permission denied to weaken change capture of table "%"', rel::regclass
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('The change would rewrite column values of application "%s" without events.', t.app),
				  HINT = 'Only members of connector_admin can change capture; unregister the application first.';
	END IF;
	UPDATE @extschema@.app_table at SET state = at.state || jsonb_build_object('rewritten', tg_tag)
	 WHERE at.app = t.app AND at.role = t.role;
END
$$;

CREATE EVENT TRIGGER connector_tamper_ddl ON ddl_command_end
	EXECUTE FUNCTION @extschema@._on_ddl();
CREATE EVENT TRIGGER connector_tamper_drop ON sql_drop
	EXECUTE FUNCTION @extschema@._on_ddl();
ALTER EVENT TRIGGER connector_tamper_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER connector_tamper_drop ENABLE ALWAYS;
CREATE EVENT TRIGGER connector_tamper_rewrite ON table_rewrite
	EXECUTE FUNCTION @extschema@._on_rewrite();
ALTER EVENT TRIGGER connector_tamper_rewrite ENABLE ALWAYS;
