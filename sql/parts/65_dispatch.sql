-- The dispatcher's side of the database (src/dispatcher.c): what to send
-- next, how an answer changes an endpoint, periodic maintenance, what the
-- worker could not do, and the status view.  Internal: called by the
-- worker, which runs as the bootstrap superuser.

-- What the dispatcher could not do, and when it tries again: build the
-- messages of an endpoint (endpoint_id set), or expire the grants of an
-- application (endpoint_id NULL).  The worker does each of these apart, so
-- a failure stops that endpoint or application only; the row goes once the
-- work succeeds.  Runtime state: not dumped.
CREATE TABLE @extschema@.dispatch_error (
	app				text NOT NULL REFERENCES @extschema@.app ON DELETE CASCADE,
	endpoint_id		int REFERENCES @extschema@.endpoint ON DELETE CASCADE,
	sqlstate		text NOT NULL,
	message			text NOT NULL,
	failures		int NOT NULL,
	since			timestamptz NOT NULL,	-- first failure of this run of failures
	retry_at		timestamptz NOT NULL,
	UNIQUE NULLS NOT DISTINCT (app, endpoint_id)
);
CREATE INDEX dispatch_error_endpoint ON @extschema@.dispatch_error (endpoint_id);
COMMENT ON TABLE @extschema@.dispatch_error IS
	'Work the dispatcher failed to do for one endpoint or application, retried with backoff; shown in connector.status.';
REVOKE ALL ON @extschema@.dispatch_error FROM PUBLIC;

CREATE FUNCTION @extschema@._sign(msgid text, ts bigint, body text, key bytea) RETURNS text
AS 'MODULE_PATHNAME', 'connector_sign'
LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION @extschema@._sign(text, bigint, text, bytea) IS
	'Standard Webhooks signature ("v1,<base64>") of one message for one key.';

-- The bodies of pending messages are built by _dispatch_next, in one pass
-- over the events of all the messages it returns, by _message_bodies in C
-- (src/outbox_read.c): the event JSON, or a batch envelope.  A body depends
-- only on the sealed events in the message's range, so a retry, even after
-- a crash, sends the same bytes.
CREATE FUNCTION @extschema@._message_bodies(p_app text, types text[], batch boolean,
											firsts bigint[], lasts bigint[], ids text[])
RETURNS text[]
AS 'MODULE_PATHNAME', 'connector_message_bodies'
LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@._message_bodies(text, text[], boolean, bigint[], bigint[], text[]) IS
	'Bodies of messages over position ranges: the event JSON, or with batch the event.batch envelope.';

-- Pick the next messages of every active endpoint the worker is not busy
-- with and that has no dispatch_error (or of one_endpoint alone, which the
-- worker tries apart): pending messages first (fixed composition), then
-- new ones cut from the sealed events after the endpoint's cursor.  The
-- worker still holds some messages of the endpoints in hand, up to the one
-- at hand_last[k] for hand[k]: only pending messages after it are returned.  An ordered endpoint
-- whose first message waits for a retry gives nothing.  An endpoint with
-- nothing pending and nothing to send moves its cursor to the end of the
-- stream, past events its types filter leaves out, so retention can go on.
CREATE FUNCTION @extschema@._dispatch_next(busy int[], per_endpoint int, one_endpoint int DEFAULT NULL,
											hand int[] DEFAULT '{}', hand_last bigint[] DEFAULT '{}')
RETURNS TABLE (endpoint_id int, ordered boolean, url text, headers jsonb, timeout_ms int,
			   message_id text, first_position bigint, body text, keys bytea[], is_set boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e @extschema@.endpoint;
	head timestamptz;
	start bigint;
	room int;
	cap int;
	m_first bigint[];
	m_last bigint[];
	m_id text[];
	bodies text[];
	held bigint;
BEGIN
	-- Each endpoint row is locked as it is read, until the round commits: a
	-- redeliver() or an update committed in between would otherwise be undone
	-- by a cursor computed from the row as it was before (the round's move
	-- past filtered events, or pending rows cut after the old cursor).  One
	-- that another transaction holds waits for the next round.
	FOR e IN SELECT * FROM @extschema@.endpoint x
			  WHERE x.state = 'active' AND NOT x.id = ANY (busy)
				AND CASE WHEN one_endpoint IS NULL
						 THEN NOT EXISTS (SELECT 1 FROM @extschema@.dispatch_error d
										   WHERE d.endpoint_id = x.id)
						 ELSE x.id = one_endpoint END
			  ORDER BY x.id
			  FOR UPDATE SKIP LOCKED LOOP
		held := hand_last[array_position(hand, e.id)];
		IF e.format = 'set' THEN
			-- SETs, one message each (79_set_push.sql)
			RETURN QUERY SELECT * FROM @extschema@._dispatch_next_sets(e, per_endpoint, held);
			CONTINUE;
		END IF;
		SELECT p.next_attempt INTO head FROM @extschema@.pending p
		 WHERE p.endpoint_id = e.id ORDER BY p.first_position LIMIT 1;
		IF e.ordered AND head > now() THEN
			CONTINUE;
		END IF;

		-- at most about 10,000 events in hand per endpoint: a round renders
		-- every event it picks (in C, a few microseconds each), and a big
		-- batch_size times per_endpoint messages would hold the round (and
		-- sealing, and retries) for long
		cap := least(per_endpoint, greatest(1, 10000 / e.batch_size));
		SELECT cap - count(*), greatest(e.cursor, max(p.last_position))
		  INTO room, start
		  FROM @extschema@.pending p WHERE p.endpoint_id = e.id;
		IF room > 0 THEN
			INSERT INTO @extschema@.pending (endpoint_id, first_position, last_position,
											 n_events, message_id)
			SELECT e.id, min(s.position), max(s.position), count(*),
				   CASE WHEN e.batch_size = 1 THEN min(s.id)
						ELSE format('batch_%s_%s_%s', e.id, min(s.position), max(s.position)) END
			  FROM (SELECT x.position, x.id,
						   (row_number() OVER (ORDER BY x.position) - 1) / e.batch_size AS grp
					  FROM @extschema@._event_refs(e.app, start, room::bigint * e.batch_size, e.types) x) s
			 GROUP BY s.grp;
			IF NOT FOUND AND head IS NULL THEN
				-- one statement, one snapshot: no event may slip in between
				UPDATE @extschema@.endpoint x
				   SET cursor = greatest(x.cursor, s.last_position)
				  FROM @extschema@.seal_state s
				 WHERE x.id = e.id
				   AND NOT EXISTS (SELECT 1 FROM @extschema@._event_refs(e.app, start, 1, e.types));
				CONTINUE;
			END IF;
		END IF;

		-- The events of every message returned are read in one call: an
		-- outbox row holds up to 1000 events, and reading it once per message
		-- cost a pass over all of them each time.  Then each message takes its
		-- slice of the events, in position order.
		SELECT array_agg(p.first_position ORDER BY p.first_position),
			   array_agg(p.last_position ORDER BY p.first_position),
			   array_agg(p.message_id ORDER BY p.first_position)
		  INTO m_first, m_last, m_id
		  FROM (SELECT q.first_position, q.last_position, q.message_id
				  FROM @extschema@.pending q
				 WHERE q.endpoint_id = e.id AND (e.ordered OR q.next_attempt <= now())
				   AND q.first_position > coalesce(held, -1)
				 ORDER BY q.first_position
				 LIMIT cap) p;
		IF m_first IS NULL THEN
			CONTINUE;
		END IF;
		bodies := @extschema@._message_bodies(e.app, e.types, e.batch_size > 1, m_first, m_last, m_id);
		keys := @extschema@._endpoint_signing_keys(e.id);
		FOR k IN 1 .. array_length(m_first, 1) LOOP
			endpoint_id := e.id;
			ordered := e.ordered;
			url := e.url;
			headers := e.headers;
			timeout_ms := e.timeout_ms;
			message_id := m_id[k];
			first_position := m_first[k];
			body := bodies[k];
			is_set := false;
			RETURN NEXT;
		END LOOP;
	END LOOP;
END
$$;

-- Apply the answer to one message (status 0: no HTTP answer; error says why).
-- Returns false, changing nothing, while another transaction (an admin
-- call) holds the endpoint's row: the worker keeps the answer for a later
-- round instead of waiting, so one endpoint's admin never holds up the rest.
--   2xx: delivered, the cursor moves on.
--   410: the endpoint is disabled until enable_endpoint().
--   other 4xx but 408 and 429: retried, dead-lettered after connector.max_attempts.
--   anything else (3xx, 408, 429, 5xx, timeouts, network errors): retried
--   with exponential backoff and jitter, honouring Retry-After, for ever.
CREATE FUNCTION @extschema@._dispatch_result(p_endpoint int, p_first bigint, p_status int,
											 p_error text, p_retry_after_ms bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e @extschema@.endpoint;
	p @extschema@.pending;
	n bigint;
	failures int;
	delay_ms double precision;
	err text := CASE WHEN p_status > 0 THEN format('HTTP %s', p_status) ELSE p_error END;
BEGIN
	SELECT * INTO e FROM @extschema@.endpoint x WHERE x.id = p_endpoint FOR UPDATE SKIP LOCKED;
	IF NOT FOUND THEN
		-- locked: later; removed: nothing to record
		RETURN NOT EXISTS (SELECT 1 FROM @extschema@.endpoint x WHERE x.id = p_endpoint);
	END IF;
	IF e.format = 'set' THEN
		RETURN @extschema@._dispatch_set_result(e, p_first, p_status, p_error, p_retry_after_ms);
	END IF;
	-- pending rows change only under the endpoint's row lock, now ours
	SELECT * INTO p FROM @extschema@.pending x
	 WHERE x.endpoint_id = p_endpoint AND x.first_position = p_first FOR UPDATE;
	IF NOT FOUND THEN
		RETURN true;			-- redelivered meanwhile
	END IF;
	n := p.n_events;
	IF n IS NULL THEN
		SELECT count(*) INTO n
		  FROM @extschema@._event_refs(e.app, p.first_position - 1, p.last_position - p.first_position + 1, e.types) x
		 WHERE x.position <= p.last_position;
	END IF;

	IF p_status BETWEEN 200 AND 299
	   OR (p_status BETWEEN 400 AND 499 AND p_status NOT IN (408, 410, 429)
		   AND p.attempts + 1 >= @extschema@._setting('connector.max_attempts')) THEN
		DELETE FROM @extschema@.pending x
		 WHERE x.endpoint_id = p_endpoint AND x.first_position = p_first;
		IF p_status BETWEEN 200 AND 299 THEN
			UPDATE @extschema@.endpoint x
			   SET delivered = x.delivered + n, last_success = now(), last_status = p_status,
				   last_error = NULL, consecutive_failures = 0, next_attempt = NULL
			 WHERE x.id = p_endpoint;
		ELSE
			INSERT INTO @extschema@.dead_letter (endpoint_id, message_id, first_position,
												 last_position, attempts, last_status, last_error)
			VALUES (p_endpoint, p.message_id, p.first_position, p.last_position, p.attempts + 1,
					p_status, err);
			UPDATE @extschema@.endpoint x
			   SET dead_lettered = x.dead_lettered + n, last_status = p_status, last_error = err,
				   consecutive_failures = 0, next_attempt = NULL
			 WHERE x.id = p_endpoint;
		END IF;
		-- the cursor is the end of what is done: before the first message still pending
		UPDATE @extschema@.endpoint x
		   SET cursor = greatest(x.cursor,
								 COALESCE((SELECT min(q.first_position) - 1 FROM @extschema@.pending q
										    WHERE q.endpoint_id = p_endpoint),
										  p.last_position))
		 WHERE x.id = p_endpoint;
		RETURN true;
	END IF;

	IF p_status = 410 THEN
		UPDATE @extschema@.endpoint x
		   SET state = 'disabled', disabled_reason = 'the endpoint answered 410 Gone',
			   last_status = p_status, last_error = err, next_attempt = NULL
		 WHERE x.id = p_endpoint;
		RETURN true;
	END IF;

	failures := e.consecutive_failures + 1;
	delay_ms := least(@extschema@._setting('connector.retry_max')::double precision,
					  @extschema@._setting('connector.retry_base')::double precision
					  * power(2, least(failures - 1, 30)));
	delay_ms := delay_ms / 2 + random() * delay_ms / 2;		-- jitter
	delay_ms := greatest(delay_ms, p_retry_after_ms);
	UPDATE @extschema@.pending x
	   SET attempts = x.attempts + 1, last_status = NULLIF(p_status, 0), last_error = err,
		   next_attempt = clock_timestamp() + make_interval(secs => delay_ms / 1000)
	 WHERE x.endpoint_id = p_endpoint AND x.first_position = p_first;
	UPDATE @extschema@.endpoint x
	   SET consecutive_failures = failures, last_status = NULLIF(p_status, 0), last_error = err,
		   next_attempt = clock_timestamp() + make_interval(secs => delay_ms / 1000)
	 WHERE x.id = p_endpoint;
	RETURN true;
END
$$;

-- Apply 2xx answers to several messages of one endpoint at once, as
-- _dispatch_result applies each (p_status is the last answer's): one
-- statement per step for the group instead of one call per message, which
-- cost more than the HTTP round trip of an unbatched message.  The cursor
-- ends before the first message still pending, or at the end of the last
-- one delivered.  Returns false, changing nothing, while another
-- transaction holds the endpoint's row.
CREATE FUNCTION @extschema@._dispatch_delivered(p_endpoint int, p_firsts bigint[], p_status int)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e @extschema@.endpoint;
	n bigint;
	top bigint;
BEGIN
	SELECT * INTO e FROM @extschema@.endpoint x WHERE x.id = p_endpoint FOR UPDATE SKIP LOCKED;
	IF NOT FOUND THEN
		RETURN NOT EXISTS (SELECT 1 FROM @extschema@.endpoint x WHERE x.id = p_endpoint);
	END IF;
	IF e.format = 'set' THEN
		RETURN @extschema@._dispatch_set_delivered(e, p_firsts, p_status);
	END IF;
	-- messages redelivered meanwhile are gone: nothing to record for them
	WITH gone AS (
		DELETE FROM @extschema@.pending x
		 WHERE x.endpoint_id = p_endpoint AND x.first_position = ANY (p_firsts)
		RETURNING x.first_position, x.last_position, x.n_events
	)
	SELECT sum(coalesce(g.n_events,
						(SELECT count(*) FROM @extschema@._event_refs(e.app, g.first_position - 1,
							g.last_position - g.first_position + 1, e.types) r
						  WHERE r.position <= g.last_position))),
		   max(g.last_position)
	  INTO n, top
	  FROM gone g;
	IF top IS NULL THEN
		RETURN true;
	END IF;
	UPDATE @extschema@.endpoint x
	   SET delivered = x.delivered + n, last_success = now(), last_status = p_status,
		   last_error = NULL, consecutive_failures = 0, next_attempt = NULL,
		   cursor = greatest(x.cursor,
							 COALESCE((SELECT min(q.first_position) - 1 FROM @extschema@.pending q
									    WHERE q.endpoint_id = p_endpoint), top))
	 WHERE x.id = p_endpoint;
	RETURN true;
END
$$;

-- Sealing by the worker: only where an endpoint waits for events.  Without
-- one, readers of changes() seal on demand and the worker stays out of the
-- way of the application's writes (commits do not even wake it).  Returns
-- whether an active endpoint exists, and whether an endpoint has a
-- dispatch_error (only then does the worker look for one due for a try).
CREATE FUNCTION @extschema@._dispatch_seal(OUT active boolean, OUT failing boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	active := EXISTS (SELECT 1 FROM @extschema@.endpoint e WHERE e.state = 'active');
	IF active THEN
		PERFORM @extschema@._seal();
	END IF;
	failing := EXISTS (SELECT 1 FROM @extschema@.dispatch_error d WHERE d.endpoint_id IS NOT NULL);
END
$$;

-- Retention in a bounded batch, in a transaction of its own (every
-- connector.naptime).  Expiry of time-bound grants runs apart, one
-- application at a time (_dispatch_expire): it writes to application tables.
CREATE FUNCTION @extschema@._dispatch_maintain() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM @extschema@.purge_events(10000);
END
$$;

-- The applications whose grants may expire, unless a failure put them off.
CREATE FUNCTION @extschema@._dispatch_expiry_due() RETURNS TABLE (app text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT a.app FROM @extschema@.app a
	 WHERE a.spec ? 'grants'
	   AND NOT EXISTS (SELECT 1 FROM @extschema@.dispatch_error d
						WHERE d.app = a.app AND d.endpoint_id IS NULL AND d.retry_at > now())
	 ORDER BY a.app
$$;

-- Expire the grants of one application (expire_grants, 70_governance.sql),
-- in the worker's transaction for that application alone, which bounds its
-- lock waits and its run time: a table its owner locked, or a slow trigger,
-- fails this application's expiry and nothing else.  Returns whether it
-- had been failing.
CREATE FUNCTION @extschema@._dispatch_expire(p_app text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM @extschema@.expire_grants(p_app);
	DELETE FROM @extschema@.dispatch_error d WHERE d.app = p_app AND d.endpoint_id IS NULL;
	RETURN FOUND;
END
$$;

-- Active endpoints the worker is not busy with: those without a
-- dispatch_error (failing false), or those whose failure is due for
-- another try (failing true).
CREATE FUNCTION @extschema@._dispatch_endpoints(busy int[], failing boolean)
RETURNS TABLE (endpoint_id int, app text, name text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT e.id, e.app, e.name FROM @extschema@.endpoint e
	  LEFT JOIN @extschema@.dispatch_error d ON d.endpoint_id = e.id
	 WHERE e.state = 'active' AND NOT e.id = ANY (busy)
	   AND CASE WHEN failing THEN d.retry_at <= now() ELSE d.endpoint_id IS NULL END
	 ORDER BY e.id
$$;

-- Record that the worker could not build the messages of an endpoint
-- (p_endpoint) or expire the grants of an application (p_endpoint NULL).
-- It tries again after min(retry_max, 1 minute, retry_base * 2^(n-1)) for
-- the n-th failure in a row, and no sooner than p_took_ms * 10 after this
-- one: a try that fails slowly (a statement timeout) then costs the worker,
-- and every other application, a tenth of its time at most.  Returns the
-- failures so far and the next try.
CREATE FUNCTION @extschema@._dispatch_failed(p_app text, p_endpoint int, p_sqlstate text,
											 p_message text, p_took_ms bigint,
											 OUT failures int, OUT retry_at timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n int;
BEGIN
	IF p_endpoint IS NOT NULL THEN
		SELECT e.app INTO p_app FROM @extschema@.endpoint e WHERE e.id = p_endpoint;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM @extschema@.app a WHERE a.app = p_app) THEN
		RETURN;					-- removed meanwhile
	END IF;
	SELECT d.failures + 1 INTO n FROM @extschema@.dispatch_error d
	 WHERE d.app = p_app AND d.endpoint_id IS NOT DISTINCT FROM p_endpoint;
	n := coalesce(n, 1);
	retry_at := now() + make_interval(secs => greatest(
					least(@extschema@._setting('connector.retry_max'), 60000,
						  @extschema@._setting('connector.retry_base') * power(2, least(n - 1, 30))),
					p_took_ms * 10) / 1000.0);
	INSERT INTO @extschema@.dispatch_error AS d
		(app, endpoint_id, sqlstate, message, failures, since, retry_at)
	VALUES (p_app, p_endpoint, p_sqlstate, p_message, n, now(), retry_at)
	ON CONFLICT (app, endpoint_id) DO UPDATE
	   SET sqlstate = EXCLUDED.sqlstate, message = EXCLUDED.message,
		   failures = EXCLUDED.failures, retry_at = EXCLUDED.retry_at;
	failures := n;
END
$$;

-- The endpoint's messages could be built again.  Returns whether it had
-- been failing.
CREATE FUNCTION @extschema@._dispatch_recovered(p_endpoint int) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	DELETE FROM @extschema@.dispatch_error d WHERE d.endpoint_id = p_endpoint;
	RETURN FOUND;
END
$$;

-- The events an endpoint has still to get (those after its cursor that its
-- types filter lets through) and the time of the oldest outbox row holding
-- one, for the status view.  A function of its own, planned with the real
-- cursor: inside the view the planner had to guess how far past an unknown
-- cursor the outbox goes, and with a million rows its guess made the view
-- cost enough to be JIT-compiled (a third of a second, for a query of a
-- fraction of a millisecond).  SECURITY DEFINER: the view runs with its
-- reader's rights, and connector_admin may call no internal function.
CREATE FUNCTION @extschema@.endpoint_backlog(p_app text, p_cursor bigint, p_types text[],
											 OUT n bigint, OUT oldest timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	-- outbox rows hold up to 1000 events: the first row past the cursor may
	-- start before it; with a types filter the events' types are read
	SELECT CASE WHEN p_types IS NULL
				THEN sum(least(o.n, o.position + o.n - 1 - p_cursor))
				ELSE (SELECT count(*)
						FROM @extschema@._event_refs(p_app, p_cursor, 9223372036854775807, p_types))
		   END,
		   min(o.occurred_at)
	  FROM @extschema@.outbox o
	 WHERE o.app = p_app AND o.position > p_cursor - 1000 AND o.position + o.n - 1 > p_cursor
$$;
COMMENT ON FUNCTION @extschema@.endpoint_backlog(text, bigint, text[]) IS
	'Events after a cursor (of some types) and the oldest of their rows: the backlog columns of connector.status.';
REVOKE ALL ON FUNCTION @extschema@.endpoint_backlog(text, bigint, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.endpoint_backlog(text, bigint, text[]) TO connector_admin;

-- One row per endpoint.  dispatch_error: why its messages cannot be built
-- (retried with backoff); app_error: why the last expiry of its application's
-- grants failed.
CREATE VIEW @extschema@.status AS
SELECT e.app,
	   e.name AS endpoint,
	   e.url,
	   e.state,
	   e.disabled_reason,
	   e.cursor,
	   coalesce(p.n, 0) AS pending_events,
	   CASE WHEN p.n > 0 THEN now() - p.oldest END AS oldest_pending_age,
	   e.last_success,
	   e.last_error,
	   e.last_status,
	   e.consecutive_failures,
	   e.next_attempt,
	   e.delivered,
	   e.dead_lettered,
	   e.batch_size,
	   e.ordered,
	   e.types,
	   (SELECT s.previous_until FROM @extschema@.endpoint_secret s
		 WHERE s.endpoint_id = e.id AND s.previous_until > now()) AS rotation_ends,
	   de.message || ' (SQLSTATE ' || de.sqlstate || ')' AS dispatch_error,
	   de.since AS dispatch_error_since,
	   ae.message || ' (SQLSTATE ' || ae.sqlstate || ')' AS app_error,
	   ae.since AS app_error_since
  FROM @extschema@.endpoint e
  LEFT JOIN @extschema@.dispatch_error de ON de.endpoint_id = e.id
  LEFT JOIN @extschema@.dispatch_error ae ON ae.app = e.app AND ae.endpoint_id IS NULL
  LEFT JOIN LATERAL @extschema@.endpoint_backlog(e.app, e.cursor, e.types) p ON true;
COMMENT ON VIEW @extschema@.status IS
	'One row per webhook endpoint: delivery state, backlog, counters and what the dispatcher could not do; never a secret.';
GRANT SELECT ON @extschema@.status TO connector_admin;
