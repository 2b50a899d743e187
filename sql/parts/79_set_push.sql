-- Push of Security Event Tokens (spec section 12, RFC 8935) through the
-- dispatcher of section 7.  An endpoint of format set (add_endpoint with
-- "format": "set", or an SSF stream with push delivery) gets one message
-- per SET: the SETs of an event are rendered and signed once, into
-- ssf_set, and each row is a message whose id for the worker is its seq
-- (passed where webhook messages pass their first position).  A retry
-- sends the stored bytes again: ES256 signatures differ at each signing.
-- The cursor passes an event once every SET of it is delivered or
-- dead-lettered.  Internal: called by _dispatch_next, _dispatch_result and
-- _dispatch_delivered (65_dispatch.sql) for endpoints of format set.

-- Render the events after the SETs already waiting (up to per_endpoint
-- waiting SETs) and return the waiting SETs after held, in order.  An
-- ordered endpoint whose first SET waits for a retry gives nothing.  With
-- nothing waiting and nothing to render the cursor moves to the end of the
-- stream, as for webhooks.  The caller holds the endpoint's row lock.
CREATE FUNCTION @extschema@._dispatch_next_sets(e @extschema@.endpoint, per_endpoint int, held bigint)
RETURNS TABLE (endpoint_id int, ordered boolean, url text, headers jsonb, timeout_ms int,
			   message_id text, first_position bigint, body text, keys bytea[], is_set boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	st @extschema@.ssf_stream;
	streamed boolean;
	iss text := e.issuer;
	aud text := e.audience;
	want text[] := e.set_types;
	head timestamptz;
	room bigint;
	start bigint;
	n int := 0;
	made int := 0;
	last bigint;
	ev record;
	tok text;
	claims jsonb;
	v_uri text;
BEGIN
	SELECT * INTO st FROM @extschema@.ssf_stream s WHERE s.endpoint_id = e.id;
	streamed := FOUND;
	IF streamed THEN
		iss := st.iss;
		aud := st.receiver;
		want := @extschema@._ssf_delivered(st.events_requested);
	END IF;
	SELECT t.next_attempt INTO head FROM @extschema@.ssf_set t
	 WHERE t.endpoint_id = e.id ORDER BY t.seq LIMIT 1;
	IF e.ordered AND head > now() THEN
		RETURN;
	END IF;

	-- events up to the last one with a SET waiting are rendered; events after
	-- it that gave no SET are looked at again (they give none again)
	SELECT per_endpoint - count(*), greatest(e.cursor, max(t.position))
	  INTO room, start
	  FROM @extschema@.ssf_set t WHERE t.endpoint_id = e.id;
	IF room > 0 THEN
		FOR ev IN SELECT * FROM @extschema@._events(e.app, start, room, e.types) LOOP
			n := n + 1;
			last := ev.position;
			FOR tok IN SELECT t FROM @extschema@._sets(e.app, ev.event, iss, aud) t LOOP
				claims := @extschema@._jws_claims(tok);
				SELECT k INTO v_uri FROM jsonb_object_keys(claims->'events') k LIMIT 1;
				CONTINUE WHEN want IS NOT NULL AND NOT v_uri = ANY (want);
				CONTINUE WHEN streamed AND NOT @extschema@._ssf_wanted(st,
								@extschema@._ssf_subject_keys(claims->'sub_id', false));
				INSERT INTO @extschema@.ssf_set (endpoint_id, jti, position, uri, token)
				VALUES (e.id, claims->>'jti', ev.position, v_uri, tok)
				ON CONFLICT DO NOTHING;
				made := made + 1;
			END LOOP;
		END LOOP;
		IF head IS NULL AND made = 0 THEN
			IF n = 0 THEN
				-- one statement, one snapshot: no event may slip in between
				UPDATE @extschema@.endpoint x
				   SET cursor = greatest(x.cursor, s.last_position)
				  FROM @extschema@.seal_state s
				 WHERE x.id = e.id
				   AND NOT EXISTS (SELECT 1 FROM @extschema@._event_refs(e.app, start, 1, e.types));
			ELSE
				-- events that gave no SET this endpoint wants: passed
				UPDATE @extschema@.endpoint x SET cursor = greatest(x.cursor, last) WHERE x.id = e.id;
			END IF;
			RETURN;
		END IF;
	END IF;

	RETURN QUERY
	SELECT e.id, e.ordered, e.url, e.headers, e.timeout_ms, t.jti, t.seq, t.token,
		   NULL::bytea[], true
	  FROM @extschema@.ssf_set t
	 WHERE t.endpoint_id = e.id AND (e.ordered OR t.next_attempt <= now())
	   AND t.seq > coalesce(held, -1)
	 ORDER BY t.seq
	 LIMIT per_endpoint;
END
$$;

-- The cursor of a SET endpoint after SETs were delivered or dead-lettered:
-- before the first event with a SET still waiting, else the last event
-- done (top; NULL: only verification SETs were done).
CREATE FUNCTION @extschema@._set_cursor(p_endpoint int, top bigint) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp AS $$
	UPDATE @extschema@.endpoint x
	   SET cursor = greatest(x.cursor,
							 coalesce((SELECT min(t.position) - 1 FROM @extschema@.ssf_set t
									    WHERE t.endpoint_id = p_endpoint AND t.position IS NOT NULL),
									  top, x.cursor))
	 WHERE x.id = p_endpoint
$$;

-- Apply the answer to one SET (p_seq), as _dispatch_result does for a
-- webhook message; p_error with an HTTP status is the receiver's RFC 8935
-- error ("<err>: <description>"), recorded after the status.  The caller
-- holds the endpoint's row lock.
CREATE FUNCTION @extschema@._dispatch_set_result(e @extschema@.endpoint, p_seq bigint, p_status int,
												 p_error text, p_retry_after_ms bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	x @extschema@.ssf_set;
	failures int;
	delay_ms double precision;
	err text := left(CASE WHEN p_status > 0 THEN format('HTTP %s', p_status) || coalesce(': ' || p_error, '')
						  ELSE p_error END, 1000);
BEGIN
	SELECT * INTO x FROM @extschema@.ssf_set t
	 WHERE t.endpoint_id = e.id AND t.seq = p_seq FOR UPDATE;
	IF NOT FOUND THEN
		RETURN true;			-- redelivered, disabled or deleted meanwhile
	END IF;

	IF p_status BETWEEN 200 AND 299
	   OR (p_status BETWEEN 400 AND 499 AND p_status NOT IN (408, 410, 429)
		   AND x.attempts + 1 >= @extschema@._setting('connector.max_attempts')) THEN
		DELETE FROM @extschema@.ssf_set t WHERE t.endpoint_id = e.id AND t.seq = p_seq;
		IF p_status BETWEEN 200 AND 299 THEN
			UPDATE @extschema@.endpoint y
			   SET delivered = y.delivered + 1, last_success = now(), last_status = p_status,
				   last_error = NULL, consecutive_failures = 0, next_attempt = NULL
			 WHERE y.id = e.id;
		ELSE
			INSERT INTO @extschema@.dead_letter (endpoint_id, message_id, first_position,
												 last_position, attempts, last_status, last_error)
			VALUES (e.id, x.jti, coalesce(x.position, 0), coalesce(x.position, 0), x.attempts + 1,
					p_status, err);
			UPDATE @extschema@.endpoint y
			   SET dead_lettered = y.dead_lettered + 1, last_status = p_status, last_error = err,
				   consecutive_failures = 0, next_attempt = NULL
			 WHERE y.id = e.id;
		END IF;
		PERFORM @extschema@._set_cursor(e.id, x.position);
		RETURN true;
	END IF;

	IF p_status = 410 THEN
		UPDATE @extschema@.endpoint y
		   SET state = 'disabled', disabled_reason = 'the endpoint answered 410 Gone',
			   last_status = p_status, last_error = err, next_attempt = NULL
		 WHERE y.id = e.id;
		RETURN true;
	END IF;

	failures := e.consecutive_failures + 1;
	delay_ms := least(@extschema@._setting('connector.retry_max')::double precision,
					  @extschema@._setting('connector.retry_base')::double precision
					  * power(2, least(failures - 1, 30)));
	delay_ms := delay_ms / 2 + random() * delay_ms / 2;		-- jitter
	delay_ms := greatest(delay_ms, p_retry_after_ms);
	UPDATE @extschema@.ssf_set t
	   SET attempts = t.attempts + 1, last_status = NULLIF(p_status, 0), last_error = err,
		   next_attempt = clock_timestamp() + make_interval(secs => delay_ms / 1000)
	 WHERE t.endpoint_id = e.id AND t.seq = p_seq;
	UPDATE @extschema@.endpoint y
	   SET consecutive_failures = failures, last_status = NULLIF(p_status, 0), last_error = err,
		   next_attempt = clock_timestamp() + make_interval(secs => delay_ms / 1000)
	 WHERE y.id = e.id;
	RETURN true;
END
$$;

-- Apply 2xx answers to several SETs of one endpoint at once, as
-- _dispatch_delivered does for webhook messages.  The caller holds the
-- endpoint's row lock.
CREATE FUNCTION @extschema@._dispatch_set_delivered(e @extschema@.endpoint, p_seqs bigint[], p_status int)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
	top bigint;
BEGIN
	WITH gone AS (
		DELETE FROM @extschema@.ssf_set t
		 WHERE t.endpoint_id = e.id AND t.seq = ANY (p_seqs)
		RETURNING t.position
	)
	SELECT count(*), max(g.position) INTO n, top FROM gone g;
	IF n = 0 THEN
		RETURN true;			-- redelivered meanwhile
	END IF;
	UPDATE @extschema@.endpoint y
	   SET delivered = y.delivered + n, last_success = now(), last_status = p_status,
		   last_error = NULL, consecutive_failures = 0, next_attempt = NULL
	 WHERE y.id = e.id;
	PERFORM @extschema@._set_cursor(e.id, top);
	RETURN true;
END
$$;
