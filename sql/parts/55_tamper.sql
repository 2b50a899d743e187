-- Tamper detection: DDL that weakens capture of a mapped table (trigger
-- disabled or dropped, mapped column dropped or renamed, table dropped or
-- renamed) is refused unless its author is a member of connector_admin (or a
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
	) s WHERE c IS NOT NULL
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
	enabled "char";
BEGIN
	FOR t IN SELECT at.app, at.role, at.relid::oid AS relid, a.spec
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
			END IF;
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
	who := @extschema@._outer_user();
	FOR p IN SELECT * FROM @extschema@._capture_problems() c
			  WHERE NOT EXISTS (SELECT 1 FROM @extschema@.capture_gap g
								 WHERE g.app = c.app AND g.table_name = c.table_name
								   AND g.problem = c.problem) LOOP
		IF NOT (pg_has_role(who, 'connector_admin', 'MEMBER')
				OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = who)) THEN
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
	-- a weakness that was repaired can be reported again if it recurs
	DELETE FROM @extschema@.capture_gap g
	 WHERE NOT EXISTS (SELECT 1 FROM @extschema@._capture_problems() c
						WHERE g.app = c.app AND g.table_name = c.table_name AND g.problem = c.problem);
END
$$;

CREATE EVENT TRIGGER connector_tamper_ddl ON ddl_command_end
	EXECUTE FUNCTION @extschema@._on_ddl();
CREATE EVENT TRIGGER connector_tamper_drop ON sql_drop
	EXECUTE FUNCTION @extschema@._on_ddl();
ALTER EVENT TRIGGER connector_tamper_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER connector_tamper_drop ENABLE ALWAYS;
