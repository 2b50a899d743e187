-- Shared Signals transmitter, second part (spec section 12): SSF 1.0 event
-- streams, their status and subjects, verification, and RFC 8936 poll.  The
-- gateway serves them over HTTP (gateway/ssf.c); it calls these functions
-- after connector.scim_session in the same transaction, and each function
-- acts for the receiver holding that bearer token (_ssf_receiver), on that
-- receiver's streams only.
--
-- A stream is an endpoint of spec section 7 (format 'set'), so
-- connector.status shows it: pushed streams (RFC 8935) are delivered by the
-- dispatcher; polled streams (RFC 8936) are rendered into ssf_set here, at
-- poll time, and the endpoint's cursor moves past an event once every SET
-- of it is acknowledged.

CREATE TABLE @extschema@.ssf_stream (
	endpoint_id		int PRIMARY KEY REFERENCES @extschema@.endpoint ON DELETE CASCADE,
	stream_id		text NOT NULL UNIQUE,
	app				text NOT NULL REFERENCES @extschema@.app ON DELETE CASCADE,
	receiver		text NOT NULL,		-- the token's name: the stream's aud
	iss				text NOT NULL,		-- the issuer the gateway gave at creation
	events_requested text[],			-- as requested; NULL: every supported event
	description		text,
	status_reason	text,				-- the reason given with the last status change
	subjects		text NOT NULL DEFAULT 'all' CHECK (subjects IN ('all', 'listed')),
	rendered_through bigint NOT NULL,	-- poll: events up to here are in ssf_set or left out
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX ssf_stream_receiver ON @extschema@.ssf_stream (app, receiver, created_at);
COMMENT ON TABLE @extschema@.ssf_stream IS
	'SSF event streams: the endpoint of each, its receiver (token name), issuer and requested events.';

-- Subjects of a stream.  included: added by the receiver (the stream then
-- carries only SETs about its included subjects); not included: removed
-- from a stream that still carries every subject.  keys: the identifiers
-- the subject names (_ssf_subject_keys), matched against a SET's sub_id.
CREATE TABLE @extschema@.ssf_subject (
	endpoint_id		int NOT NULL REFERENCES @extschema@.ssf_stream ON DELETE CASCADE,
	subject			jsonb NOT NULL,
	keys			text[] NOT NULL,
	included		boolean NOT NULL,
	verified		boolean,
	added_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (endpoint_id, subject)
);
COMMENT ON TABLE @extschema@.ssf_subject IS
	'Subjects added to (included) or removed from (not included) SSF streams.';

-- SETs waiting for acknowledgement (poll) or delivery (push): rendered
-- once, so a SET polled or pushed again is the same bytes (ES256
-- signatures are randomised).  position: the event's; NULL for a
-- verification event.  Every endpoint of format set keeps its SETs here,
-- an SSF stream's or one added by add_endpoint: for push, each row is one
-- message of the dispatcher (79_set_push.sql), seq its order and id.
CREATE TABLE @extschema@.ssf_set (
	endpoint_id		int NOT NULL REFERENCES @extschema@.endpoint ON DELETE CASCADE,
	jti				text NOT NULL,
	seq				bigint GENERATED ALWAYS AS IDENTITY,
	position		bigint,
	uri				text NOT NULL,		-- the event type URI
	token			text NOT NULL,		-- the compact JWS
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- push: the delivery attempts of this SET, as pending has them
	attempts		int NOT NULL DEFAULT 0,
	next_attempt	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_status		int,
	last_error		text,
	PRIMARY KEY (endpoint_id, jti)
);
CREATE INDEX ssf_set_seq ON @extschema@.ssf_set (endpoint_id, seq);
COMMENT ON TABLE @extschema@.ssf_set IS
	'Security Event Tokens rendered for SSF streams and not yet acknowledged.';

-- Streams are configuration, and their waiting SETs go with the cursor the
-- endpoint row carries: a restored dump goes on where it was.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ssf_stream', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ssf_subject', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ssf_set', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ssf_set_seq_seq', '');

REVOKE ALL ON @extschema@.ssf_stream, @extschema@.ssf_subject, @extschema@.ssf_set FROM PUBLIC;

CREATE FUNCTION @extschema@._ssf_receiver(app text) RETURNS text
AS 'MODULE_PATHNAME', 'connector_ssf_receiver'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@._ssf_receiver(text) IS
	'Internal: the token name of the transaction''s SCIM session for app, or NULL.';

-- The SET event types and the events of spec section 6 that give them
-- (src/set_render.c, docs/ssf.md): what a stream can deliver, and the
-- endpoint's types filter for the events a stream wants.
CREATE FUNCTION @extschema@._ssf_event_map() RETURNS TABLE (uri text, type text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
	VALUES
		('urn:ietf:params:scim:event:prov:create:notice', 'account.created'),
		('urn:ietf:params:scim:event:prov:create:notice', 'entitlement.created'),
		('urn:ietf:params:scim:event:prov:patch:notice', 'account.updated'),
		('urn:ietf:params:scim:event:prov:patch:notice', 'access.granted'),
		('urn:ietf:params:scim:event:prov:patch:notice', 'access.revoked'),
		('urn:ietf:params:scim:event:prov:patch:notice', 'entitlement.updated'),
		('urn:ietf:params:scim:event:prov:delete', 'account.deleted'),
		('urn:ietf:params:scim:event:prov:delete', 'entitlement.deleted'),
		('https://schemas.openid.net/secevent/risc/event-type/identifier-changed', 'account.updated'),
		('https://schemas.openid.net/secevent/risc/event-type/account-disabled', 'account.disabled'),
		('https://schemas.openid.net/secevent/caep/event-type/session-revoked', 'account.disabled'),
		('https://schemas.openid.net/secevent/risc/event-type/account-enabled', 'account.enabled'),
		('https://schemas.openid.net/secevent/risc/event-type/account-purged', 'account.deleted'),
		('https://schemas.openid.net/secevent/caep/event-type/credential-change', 'credential.created'),
		('https://schemas.openid.net/secevent/caep/event-type/credential-change', 'credential.updated'),
		('https://schemas.openid.net/secevent/caep/event-type/credential-change', 'credential.revoked'),
		('https://schemas.openid.net/secevent/caep/event-type/credential-change', 'credential.deleted')
$$;

-- events_supported: every SET event type URI, sorted.
CREATE FUNCTION @extschema@._ssf_supported() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT array_agg(DISTINCT m.uri ORDER BY m.uri) FROM @extschema@._ssf_event_map() m
$$;

-- events_delivered: the supported URIs the receiver requested (all of
-- them when it requested none in particular).
CREATE FUNCTION @extschema@._ssf_delivered(requested text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(array_agg(u ORDER BY u), '{}')
	  FROM unnest(@extschema@._ssf_supported()) u
	 WHERE requested IS NULL OR u = ANY (requested)
$$;

-- The events of spec section 6 whose SETs a stream delivers.
CREATE FUNCTION @extschema@._ssf_types(delivered text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT array_agg(DISTINCT m.type ORDER BY m.type)
	  FROM @extschema@._ssf_event_map() m WHERE m.uri = ANY (delivered)
$$;

-- The claims of a compact JWS the extension signed (no verification: the
-- token never left the database).
CREATE FUNCTION @extschema@._jws_claims(token text) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT convert_from(decode(rpad(translate(p, '-_', '+/'),
									((length(p) + 3) / 4) * 4, '='), 'base64'), 'UTF8')::jsonb
	  FROM split_part(token, '.', 2) p
$$;

-- The identifiers a subject names, as comparable keys: "opaque:42",
-- "email:alice@example.com" (lower case), "scim:/Users/42", and for an
-- aliases subject those of each identifier.  strict: a receiver's subject,
-- checked (invalid_parameter_value; complex subjects feature_not_supported).
CREATE FUNCTION @extschema@._ssf_subject_keys(subject jsonb, strict boolean) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	fmt text;
	member text;
	keys text[] := '{}';
	i jsonb;
BEGIN
	IF jsonb_typeof(subject) IS DISTINCT FROM 'object' OR jsonb_typeof(subject->'format') IS DISTINCT FROM 'string' THEN
		IF strict THEN
			RAISE EXCEPTION 'a subject must be a JSON object with a string "format"'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'For example {"format": "email", "email": "alice@example.com"} (RFC 9493).';
		END IF;
		RETURN '{}';
	END IF;
	fmt := subject->>'format';
	IF fmt = 'aliases' THEN
		IF jsonb_typeof(subject->'identifiers') IS DISTINCT FROM 'array'
		   OR jsonb_array_length(subject->'identifiers') = 0 THEN
			IF strict THEN
				RAISE EXCEPTION 'an aliases subject must have a non-empty "identifiers" array'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			RETURN '{}';
		END IF;
		FOR i IN SELECT jsonb_array_elements(subject->'identifiers') LOOP
			IF strict AND i->>'format' = 'aliases' THEN
				RAISE EXCEPTION 'an aliases subject must not nest another aliases subject'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			keys := keys || @extschema@._ssf_subject_keys(i, strict);
		END LOOP;
		RETURN keys;
	END IF;
	IF fmt = 'complex' THEN
		IF strict THEN
			RAISE EXCEPTION 'complex subjects are not supported'
				USING ERRCODE = 'feature_not_supported',
					  HINT = 'Name the account or group with a simple subject (opaque, email or scim) or an aliases subject.';
		END IF;
		RETURN '{}';
	END IF;
	member := CASE fmt WHEN 'opaque' THEN 'id' WHEN 'email' THEN 'email' WHEN 'scim' THEN 'uri'
					   WHEN 'phone_number' THEN 'phone_number' WHEN 'account' THEN 'uri'
					   WHEN 'did' THEN 'url' WHEN 'uri' THEN 'uri' END;
	IF member IS NOT NULL THEN
		IF jsonb_typeof(subject->member) IS DISTINCT FROM 'string' OR subject->>member = '' THEN
			IF strict THEN
				RAISE EXCEPTION 'a subject of format "%" must have a non-empty string "%"', fmt, member
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			RETURN '{}';
		END IF;
		RETURN ARRAY[fmt || ':' || CASE WHEN fmt = 'email' THEN lower(subject->>member)
										ELSE subject->>member END];
	END IF;
	-- other formats (iss_sub, ...): the whole identifier, which matches
	-- only itself; the extension's SETs never use them
	RETURN ARRAY[fmt || ':' || (subject - 'format')::text];
END
$$;

-- The receiver acting in this transaction: the token scim_session checked,
-- which must belong to the application and still be valid.
CREATE FUNCTION @extschema@._ssf_session(p_app text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r text;
BEGIN
	PERFORM @extschema@._mapping(p_app);
	r := @extschema@._ssf_receiver(p_app);
	IF r IS NULL OR NOT EXISTS (SELECT 1 FROM @extschema@.token t
								 WHERE t.app = p_app AND t.name = r AND t.revoked IS NULL
								   AND (t.expires IS NULL OR t.expires > now())) THEN
		RAISE EXCEPTION 'no bearer token of application "%" was checked in this transaction', p_app
			USING ERRCODE = 'invalid_authorization_specification',
				  HINT = 'Call connector.scim_session(app, token) first, in the same transaction.';
	END IF;
	RETURN r;
END
$$;

-- A stream of the acting receiver, locked for update with its endpoint.
-- Unknown (or another receiver's): undefined_object.
CREATE FUNCTION @extschema@._ssf_stream(p_app text, p_stream_id text) RETURNS @extschema@.ssf_stream
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r text := @extschema@._ssf_session(p_app);
	s @extschema@.ssf_stream;
BEGIN
	PERFORM @extschema@._require(p_stream_id, 'stream_id');
	SELECT x.* INTO s FROM @extschema@.ssf_stream x
	  JOIN @extschema@.endpoint e ON e.id = x.endpoint_id
	 WHERE x.app = p_app AND x.receiver = r AND x.stream_id = p_stream_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'stream "%" does not exist', left(p_stream_id, 100)
			USING ERRCODE = 'undefined_object',
				  HINT = 'Read the configuration endpoint without a stream_id for the streams of this receiver.';
	END IF;
	RETURN s;
END
$$;

-- The stream configuration of SSF 1.0 section 8.1.1.  authorization_header
-- is never shown: it is a credential of the receiver's.
CREATE FUNCTION @extschema@._ssf_config(s @extschema@.ssf_stream) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT jsonb_strip_nulls(jsonb_build_object(
		'stream_id', s.stream_id,
		'iss', s.iss,
		'aud', s.receiver,
		'delivery', jsonb_build_object(
			'method', CASE e.delivery WHEN 'push' THEN 'urn:ietf:rfc:8935' ELSE 'urn:ietf:rfc:8936' END,
			'endpoint_url', e.url),
		'events_supported', to_jsonb(@extschema@._ssf_supported()),
		'events_requested', to_jsonb(s.events_requested),
		'events_delivered', to_jsonb(@extschema@._ssf_delivered(s.events_requested)),
		'description', s.description))
	  FROM @extschema@.endpoint e WHERE e.id = s.endpoint_id
$$;

-- The receiver-supplied part of a stream configuration, checked.  mode
-- 'create' and 'replace': a property left out takes its default (poll, all
-- events, no description); 'update': a property left out keeps its value
-- (has_* false).  Transmitter-supplied properties are ignored on create
-- and, on update and replace, must equal the stream's (cur).
CREATE FUNCTION @extschema@._ssf_parse_config(config jsonb, mode text, cur jsonb,
		OUT has_delivery boolean, OUT method text, OUT push_url text, OUT auth text,
		OUT has_events boolean, OUT events text[], OUT has_description boolean, OUT description text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	d jsonb;
	v jsonb;
	k text;
	supported text[] := @extschema@._ssf_supported();
BEGIN
	PERFORM @extschema@._require(config, 'stream configuration');
	IF jsonb_typeof(config) <> 'object' THEN
		RAISE EXCEPTION 'a stream configuration must be a JSON object, not %', jsonb_typeof(config)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF mode <> 'create' THEN
		FOREACH k IN ARRAY ARRAY['iss', 'aud', 'events_supported', 'events_delivered'] LOOP
			CONTINUE WHEN NOT config ? k;
			v := config->k;
			IF k = 'aud' AND jsonb_typeof(v) = 'array' AND jsonb_array_length(v) = 1 THEN
				v := v->0;
			END IF;
			IF k IN ('events_supported', 'events_delivered') AND jsonb_typeof(v) = 'array'
			   AND jsonb_typeof(cur->k) = 'array' AND v @> (cur->k) AND (cur->k) @> v THEN
				CONTINUE;		-- the same set, in any order
			END IF;
			IF v IS DISTINCT FROM cur->k THEN
				RAISE EXCEPTION 'transmitter-supplied property "%" does not match the stream''s', k
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'Leave transmitter-supplied properties out, or send them as read.';
			END IF;
		END LOOP;
	END IF;

	has_delivery := config ? 'delivery' OR mode <> 'update';
	method := 'urn:ietf:rfc:8936';		-- SSF 1.0: no delivery means poll
	d := config->'delivery';
	IF d IS NOT NULL AND jsonb_typeof(d) <> 'null' THEN
		IF jsonb_typeof(d) <> 'object' THEN
			RAISE EXCEPTION 'stream configuration "delivery" must be a JSON object, not %', jsonb_typeof(d)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF jsonb_typeof(d->'method') IS DISTINCT FROM 'string' THEN
			RAISE EXCEPTION 'stream configuration "delivery" must have a string "method"'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use "urn:ietf:rfc:8935" (push) or "urn:ietf:rfc:8936" (poll).';
		END IF;
		method := d->>'method';
		IF method NOT IN ('urn:ietf:rfc:8935', 'urn:ietf:rfc:8936') THEN
			RAISE EXCEPTION 'unsupported delivery method "%"', left(method, 100)
				USING ERRCODE = 'feature_not_supported',
					  HINT = 'Use "urn:ietf:rfc:8935" (push) or "urn:ietf:rfc:8936" (poll).';
		END IF;
		IF method = 'urn:ietf:rfc:8935' THEN
			IF jsonb_typeof(d->'endpoint_url') IS DISTINCT FROM 'string' THEN
				RAISE EXCEPTION 'push delivery needs a string "endpoint_url"'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			push_url := d->>'endpoint_url';
			PERFORM @extschema@._check_url(push_url);
			IF d ? 'authorization_header' AND jsonb_typeof(d->'authorization_header') <> 'null' THEN
				IF jsonb_typeof(d->'authorization_header') <> 'string'
				   OR d->>'authorization_header' = ''
				   OR octet_length(d->>'authorization_header') > 4096
				   OR (d->>'authorization_header') ~ '[\x01-\x08\x0a-\x1f\x7f]' THEN
					RAISE EXCEPTION 'delivery "authorization_header" must be a string of 1 to 4096 bytes on one line'
						USING ERRCODE = 'invalid_parameter_value';
				END IF;
				auth := d->>'authorization_header';
			END IF;
		END IF;
		-- a poll endpoint_url is the transmitter's: one sent is ignored
	END IF;

	has_events := config ? 'events_requested' OR mode <> 'update';
	v := config->'events_requested';
	IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' THEN
		IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 THEN
			RAISE EXCEPTION 'stream configuration "events_requested" must be a non-empty array of event type URIs'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Leave it out to receive every supported event type.';
		END IF;
		IF jsonb_array_length(v) > 100 OR EXISTS (
				SELECT 1 FROM jsonb_array_elements(v) x
				 WHERE jsonb_typeof(x) <> 'string' OR x #>> '{}' = '' OR octet_length(x #>> '{}') > 512) THEN
			RAISE EXCEPTION 'stream configuration "events_requested" must hold 1 to 100 URIs, strings of 1 to 512 bytes'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		events := ARRAY(SELECT DISTINCT x FROM jsonb_array_elements_text(v) x ORDER BY 1);
		-- SSF 1.0: URIs the transmitter does not understand are ignored;
		-- a request for none it supports gives a stream of nothing: refused
		IF NOT events && supported THEN
			RAISE EXCEPTION 'stream configuration "events_requested" names no supported event type'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Requested: %s.', left(array_to_string(events, ', '), 500)),
					  HINT = format('Supported: %s.', array_to_string(supported, ', '));
		END IF;
	END IF;

	has_description := config ? 'description' OR mode <> 'update';
	v := config->'description';
	IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' THEN
		IF jsonb_typeof(v) <> 'string' THEN
			RAISE EXCEPTION 'stream configuration "description" must be a string, not %', jsonb_typeof(v)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		description := left(v #>> '{}', 1000);	-- SSF 1.0: the transmitter may truncate
	END IF;
END
$$;

-- Apply a checked configuration to a stream and its endpoint.  A change
-- of delivery method drops the SETs rendered for polling (the cursor is
-- where acknowledgements left it, so nothing is lost); a change of the
-- requested events drops rendered SETs no longer wanted.
CREATE FUNCTION @extschema@._ssf_apply(s @extschema@.ssf_stream, c record) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e @extschema@.endpoint;
	poll boolean;
	want text[];
BEGIN
	SELECT * INTO e FROM @extschema@.endpoint x WHERE x.id = s.endpoint_id FOR UPDATE;
	IF c.has_events THEN
		want := @extschema@._ssf_delivered(c.events);
		UPDATE @extschema@.ssf_stream x SET events_requested = c.events WHERE x.endpoint_id = s.endpoint_id;
		UPDATE @extschema@.endpoint x SET types = @extschema@._ssf_types(want) WHERE x.id = e.id;
		DELETE FROM @extschema@.ssf_set x
		 WHERE x.endpoint_id = s.endpoint_id AND x.position IS NOT NULL AND NOT x.uri = ANY (want);
	END IF;
	IF c.has_description THEN
		UPDATE @extschema@.ssf_stream x SET description = c.description WHERE x.endpoint_id = s.endpoint_id;
	END IF;
	IF c.has_delivery THEN
		poll := c.method = 'urn:ietf:rfc:8936';
		IF poll <> (e.delivery = 'poll') THEN
			DELETE FROM @extschema@.ssf_set x WHERE x.endpoint_id = s.endpoint_id AND x.position IS NOT NULL;
			DELETE FROM @extschema@.pending p WHERE p.endpoint_id = e.id;
			UPDATE @extschema@.ssf_stream x SET rendered_through = e.cursor WHERE x.endpoint_id = s.endpoint_id;
		END IF;
		UPDATE @extschema@.endpoint x
		   SET delivery = CASE WHEN poll THEN 'poll' ELSE 'push' END,
			   url = CASE WHEN poll THEN s.iss || '/poll/' || s.stream_id ELSE c.push_url END,
			   headers = CASE WHEN c.auth IS NULL THEN '{}'::jsonb
							  ELSE jsonb_build_object('Authorization', c.auth) END,
			   state = CASE WHEN x.state IN ('active', 'polled')
							THEN CASE WHEN poll THEN 'polled' ELSE 'active' END
							ELSE x.state END,
			   next_attempt = NULL
		 WHERE x.id = e.id;
	END IF;
END
$$;

-- The stream's cursor: just before the first event with a SET still
-- waiting for acknowledgement, else what has been rendered.
CREATE FUNCTION @extschema@._ssf_advance(p_endpoint int) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp AS $$
	UPDATE @extschema@.endpoint x
	   SET cursor = greatest(x.cursor, coalesce(
			(SELECT min(t.position) - 1 FROM @extschema@.ssf_set t
			  WHERE t.endpoint_id = p_endpoint AND t.position IS NOT NULL),
			s.rendered_through))
	  FROM @extschema@.ssf_stream s
	 WHERE x.id = p_endpoint AND s.endpoint_id = p_endpoint AND x.delivery = 'poll'
$$;

CREATE FUNCTION @extschema@.ssf_configuration(app text, issuer text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
BEGIN
	PERFORM @extschema@._mapping(p_app);
	PERFORM @extschema@._require(issuer, 'issuer');
	RETURN jsonb_build_object(
		'spec_version', '1_0',
		'issuer', issuer,
		'jwks_uri', issuer || '/jwks.json',
		'delivery_methods_supported', jsonb_build_array('urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'),
		'configuration_endpoint', issuer || '/stream',
		'status_endpoint', issuer || '/status',
		'add_subject_endpoint', issuer || '/subjects:add',
		'remove_subject_endpoint', issuer || '/subjects:remove',
		'verification_endpoint', issuer || '/verify',
		'authorization_schemes', jsonb_build_array(jsonb_build_object('spec_urn', 'urn:ietf:rfc:6750')));
END
$$;
COMMENT ON FUNCTION @extschema@.ssf_configuration(text, text) IS
	'SSF 1.0 transmitter configuration metadata of an application, for the gateway''s issuer URL.';

-- Create a stream for the acting receiver.  issuer: the gateway's
-- https://host:port/ssf/<app>, the iss of every SET of the stream.  It
-- starts at the current end of the event stream.
CREATE FUNCTION @extschema@.ssf_stream_create(app text, config jsonb, issuer text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
	r text := @extschema@._ssf_session(p_app);
	c record;
	sid text := replace(gen_random_uuid()::text, '-', '');
	tip bigint;
	eid int;
	s @extschema@.ssf_stream;
BEGIN
	PERFORM @extschema@._require(issuer, 'issuer');
	IF issuer !~ '^https?://[^/?#[:space:]]+(/[^?#[:space:]]*)?$' OR octet_length(issuer) > 1024 THEN
		RAISE EXCEPTION 'issuer must be an http(s) URL without query or fragment'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO c FROM @extschema@._ssf_parse_config(config, 'create', NULL);
	PERFORM @extschema@._seal();
	SELECT x.last_position INTO tip FROM @extschema@.seal_state x;
	INSERT INTO @extschema@.endpoint (app, name, url, format, delivery, state, cursor)
	VALUES (p_app, 'ssf-' || sid, issuer || '/poll/' || sid, 'set', 'poll', 'polled', tip)
	RETURNING id INTO eid;
	-- no HMAC signs a SET; a secret keeps the endpoint like any other
	INSERT INTO @extschema@.endpoint_secret (endpoint_id, secret) VALUES (eid, @extschema@._new_secret());
	INSERT INTO @extschema@.ssf_stream (endpoint_id, stream_id, app, receiver, iss, rendered_through)
	VALUES (eid, sid, p_app, r, issuer, tip)
	RETURNING * INTO s;
	PERFORM @extschema@._ssf_apply(s, c);
	SELECT * INTO s FROM @extschema@.ssf_stream x WHERE x.endpoint_id = eid;
	RETURN @extschema@._ssf_config(s);
END
$$;
COMMENT ON FUNCTION @extschema@.ssf_stream_create(text, jsonb, text) IS
	'Create an SSF event stream (push or poll) for the receiver of the transaction''s bearer token; returns its configuration.';

-- One stream's configuration, or with a NULL stream_id the list of the
-- receiver's streams.
CREATE FUNCTION @extschema@.ssf_stream_get(app text, stream_id text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
	p_stream_id ALIAS FOR $2;
	r text := @extschema@._ssf_session(p_app);
BEGIN
	IF p_stream_id IS NULL THEN
		RETURN coalesce((SELECT jsonb_agg(@extschema@._ssf_config(x) ORDER BY x.created_at, x.stream_id)
						   FROM @extschema@.ssf_stream x WHERE x.app = p_app AND x.receiver = r),
						'[]'::jsonb);
	END IF;
	RETURN @extschema@._ssf_config(@extschema@._ssf_stream(p_app, p_stream_id));
END
$$;
COMMENT ON FUNCTION @extschema@.ssf_stream_get(text, text) IS
	'An SSF stream''s configuration, or the list of the receiver''s streams when stream_id is NULL.';

-- PATCH (mode 'update') or PUT ('replace') of a stream's configuration.
CREATE FUNCTION @extschema@._ssf_stream_change(p_app text, config jsonb, mode text) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s @extschema@.ssf_stream;
	c record;
BEGIN
	PERFORM @extschema@._ssf_session(p_app);
	PERFORM @extschema@._require(config, 'stream configuration');
	IF jsonb_typeof(config) <> 'object' OR jsonb_typeof(config->'stream_id') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION 'a stream configuration % must be a JSON object with a string "stream_id"',
			CASE mode WHEN 'update' THEN 'update' ELSE 'replacement' END
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	s := @extschema@._ssf_stream(p_app, config->>'stream_id');
	SELECT * INTO c FROM @extschema@._ssf_parse_config(config, mode, @extschema@._ssf_config(s));
	PERFORM @extschema@._ssf_apply(s, c);
	PERFORM @extschema@._ssf_advance(s.endpoint_id);
	RETURN @extschema@._ssf_config(@extschema@._ssf_stream(p_app, s.stream_id));
END
$$;

-- PATCH: the properties present change, the others stay.
CREATE FUNCTION @extschema@.ssf_stream_update(app text, config jsonb) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@._ssf_stream_change(app, config, 'update')
$$;
COMMENT ON FUNCTION @extschema@.ssf_stream_update(text, jsonb) IS
	'Update an SSF stream''s configuration (PATCH): the receiver-supplied properties present change.';

-- PUT: receiver-supplied properties left out go back to their defaults.
CREATE FUNCTION @extschema@.ssf_stream_replace(app text, config jsonb) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@._ssf_stream_change(app, config, 'replace')
$$;
COMMENT ON FUNCTION @extschema@.ssf_stream_replace(text, jsonb) IS
	'Replace an SSF stream''s configuration (PUT): receiver-supplied properties left out take their defaults.';

CREATE FUNCTION @extschema@.ssf_stream_delete(app text, stream_id text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s @extschema@.ssf_stream := @extschema@._ssf_stream($1, $2);
BEGIN
	DELETE FROM @extschema@.endpoint x WHERE x.id = s.endpoint_id;
END
$$;
COMMENT ON FUNCTION @extschema@.ssf_stream_delete(text, text) IS
	'Delete an SSF stream with its endpoint, subjects and waiting SETs.';

-- The status of SSF 1.0 section 8.1.2, read from the endpoint's state:
-- active or polled is enabled.
CREATE FUNCTION @extschema@._ssf_status(s @extschema@.ssf_stream) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT jsonb_strip_nulls(jsonb_build_object(
		'stream_id', s.stream_id,
		'status', CASE WHEN e.state IN ('active', 'polled') THEN 'enabled' ELSE e.state END,
		'reason', coalesce(e.disabled_reason, s.status_reason)))
	  FROM @extschema@.endpoint e WHERE e.id = s.endpoint_id
$$;

CREATE FUNCTION @extschema@.ssf_stream_status(app text, stream_id text) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@._ssf_status(@extschema@._ssf_stream(app, stream_id))
$$;
COMMENT ON FUNCTION @extschema@.ssf_stream_status(text, text) IS
	'An SSF stream''s status: enabled, paused or disabled, with the reason given.';

-- enabled: delivered again (from where it paused; after disabled, from
-- now).  paused: events wait.  disabled: waiting SETs and events are
-- dropped, and so are the events until it is enabled again.
CREATE FUNCTION @extschema@.ssf_stream_status(app text, stream_id text, status text, reason text)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
	p_status ALIAS FOR $3;
	p_reason ALIAS FOR $4;
	s @extschema@.ssf_stream := @extschema@._ssf_stream($1, $2);
	e @extschema@.endpoint;
	tip bigint;
BEGIN
	PERFORM @extschema@._require(p_status, 'status');
	IF p_status NOT IN ('enabled', 'paused', 'disabled') THEN
		RAISE EXCEPTION 'stream status must be "enabled", "paused" or "disabled", not "%"', left(p_status, 100)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF octet_length(p_reason) > 1000 THEN
		RAISE EXCEPTION 'stream status reason must not be longer than 1000 bytes'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO e FROM @extschema@.endpoint x WHERE x.id = s.endpoint_id FOR UPDATE;
	IF p_status = 'disabled' OR (p_status = 'enabled' AND e.state = 'disabled') THEN
		PERFORM @extschema@._seal();
		SELECT x.last_position INTO tip FROM @extschema@.seal_state x;
		DELETE FROM @extschema@.ssf_set x WHERE x.endpoint_id = s.endpoint_id;
		DELETE FROM @extschema@.pending p WHERE p.endpoint_id = e.id;
		UPDATE @extschema@.ssf_stream x SET rendered_through = tip WHERE x.endpoint_id = s.endpoint_id;
		UPDATE @extschema@.endpoint x SET cursor = greatest(x.cursor, tip) WHERE x.id = e.id;
	END IF;
	UPDATE @extschema@.endpoint x
	   SET state = CASE p_status WHEN 'enabled' THEN CASE WHEN x.delivery = 'poll' THEN 'polled' ELSE 'active' END
							   ELSE p_status END,
		   disabled_reason = CASE WHEN p_status = 'enabled' THEN NULL
								  ELSE coalesce(p_reason, 'set by the receiver') END,
		   consecutive_failures = 0, next_attempt = NULL
	 WHERE x.id = e.id;
	UPDATE @extschema@.ssf_stream x SET status_reason = p_reason WHERE x.endpoint_id = s.endpoint_id;
	SELECT * INTO s FROM @extschema@.ssf_stream x WHERE x.endpoint_id = s.endpoint_id;
	RETURN @extschema@._ssf_status(s);
END
$$;
COMMENT ON FUNCTION @extschema@.ssf_stream_status(text, text, text, text) IS
	'Set an SSF stream''s status: enabled, paused (events wait) or disabled (events are dropped).';

-- Add a subject.  On a stream that carries every subject, adding one it
-- had removed takes the removal back; adding any other makes the stream
-- carry only the subjects added from then on.
CREATE FUNCTION @extschema@.ssf_subject_add(app text, stream_id text, subject jsonb,
											verified boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_subject ALIAS FOR $3;
	s @extschema@.ssf_stream := @extschema@._ssf_stream($1, $2);
	k text[];
BEGIN
	PERFORM @extschema@._require(p_subject, 'subject');
	IF octet_length(p_subject::text) > 2000 THEN
		RAISE EXCEPTION 'a subject must not be longer than 2000 bytes'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	k := @extschema@._ssf_subject_keys(p_subject, true);
	IF s.subjects = 'all' THEN
		DELETE FROM @extschema@.ssf_subject x
		 WHERE x.endpoint_id = s.endpoint_id AND NOT x.included AND x.keys && k;
		IF FOUND THEN
			RETURN;
		END IF;
		DELETE FROM @extschema@.ssf_subject x WHERE x.endpoint_id = s.endpoint_id;
		UPDATE @extschema@.ssf_stream x SET subjects = 'listed' WHERE x.endpoint_id = s.endpoint_id;
	END IF;
	IF (SELECT count(*) FROM @extschema@.ssf_subject x WHERE x.endpoint_id = s.endpoint_id) >= 10000 THEN
		RAISE EXCEPTION 'a stream can have at most 10000 subjects'
			USING ERRCODE = 'program_limit_exceeded';
	END IF;
	INSERT INTO @extschema@.ssf_subject AS x (endpoint_id, subject, keys, included, verified)
	VALUES (s.endpoint_id, p_subject, k, true, verified)
	ON CONFLICT (endpoint_id, subject) DO UPDATE SET verified = EXCLUDED.verified;
END
$$;
COMMENT ON FUNCTION @extschema@.ssf_subject_add(text, text, jsonb, boolean) IS
	'Add a subject to an SSF stream: from then on the stream carries only SETs about its added subjects.';

-- Remove a subject: on a stream of listed subjects, those naming any of
-- its identifiers go; on a stream of every subject, it is left out from
-- then on.  A subject the stream does not have is no error (SSF 1.0 allows
-- the transmitter to stay silent).
CREATE FUNCTION @extschema@.ssf_subject_remove(app text, stream_id text, subject jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_subject ALIAS FOR $3;
	s @extschema@.ssf_stream := @extschema@._ssf_stream($1, $2);
	k text[];
BEGIN
	PERFORM @extschema@._require(p_subject, 'subject');
	IF octet_length(p_subject::text) > 2000 THEN
		RAISE EXCEPTION 'a subject must not be longer than 2000 bytes'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	k := @extschema@._ssf_subject_keys(p_subject, true);
	IF s.subjects = 'listed' THEN
		DELETE FROM @extschema@.ssf_subject x WHERE x.endpoint_id = s.endpoint_id AND x.keys && k;
	ELSE
		IF (SELECT count(*) FROM @extschema@.ssf_subject x WHERE x.endpoint_id = s.endpoint_id) >= 10000 THEN
			RAISE EXCEPTION 'a stream can have at most 10000 subjects'
				USING ERRCODE = 'program_limit_exceeded';
		END IF;
		INSERT INTO @extschema@.ssf_subject (endpoint_id, subject, keys, included)
		VALUES (s.endpoint_id, p_subject, k, false)
		ON CONFLICT (endpoint_id, subject) DO NOTHING;
	END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.ssf_subject_remove(text, text, jsonb) IS
	'Remove a subject from an SSF stream: SETs about it are no longer delivered.';

-- Does a stream want SETs about a subject with these identifier keys?
CREATE FUNCTION @extschema@._ssf_wanted(s @extschema@.ssf_stream, k text[]) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE s.subjects
		   WHEN 'listed' THEN EXISTS (SELECT 1 FROM @extschema@.ssf_subject x
									   WHERE x.endpoint_id = s.endpoint_id AND x.included AND x.keys && k)
		   ELSE NOT EXISTS (SELECT 1 FROM @extschema@.ssf_subject x
							 WHERE x.endpoint_id = s.endpoint_id AND NOT x.included AND x.keys && k) END
$$;

-- Queue a verification event (SSF 1.0 section 8.1.4) echoing state.  A
-- paused stream keeps it for later; a disabled one holds nothing.
CREATE FUNCTION @extschema@.ssf_verify(app text, stream_id text, state text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_state ALIAS FOR $3;
	s @extschema@.ssf_stream := @extschema@._ssf_stream($1, $2);
	tok text;
BEGIN
	IF octet_length(p_state) > 1000 THEN
		RAISE EXCEPTION 'verification state must not be longer than 1000 bytes'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF (SELECT e.state FROM @extschema@.endpoint e WHERE e.id = s.endpoint_id) = 'disabled' THEN
		RAISE EXCEPTION 'stream "%" is disabled', s.stream_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'A disabled stream transmits and holds no events.',
				  HINT = 'Enable it through the status endpoint first.';
	END IF;
	IF (SELECT count(*) FROM @extschema@.ssf_set x
		 WHERE x.endpoint_id = s.endpoint_id AND x.position IS NULL) >= 100 THEN
		RAISE EXCEPTION 'stream "%" has 100 verification events waiting', s.stream_id
			USING ERRCODE = 'program_limit_exceeded',
				  HINT = 'Acknowledge the waiting ones first.';
	END IF;
	tok := @extschema@._verification_set(s.app, s.stream_id, p_state, s.iss, s.receiver);
	INSERT INTO @extschema@.ssf_set (endpoint_id, jti, position, uri, token)
	VALUES (s.endpoint_id, @extschema@._jws_claims(tok)->>'jti', NULL,
			'https://schemas.openid.net/secevent/ssf/event-type/verification', tok);
END
$$;
COMMENT ON FUNCTION @extschema@.ssf_verify(text, text, text) IS
	'Queue a verification SET, echoing state, on an SSF stream.';

-- RFC 8936 poll.  First the acknowledgements (ack) and errors (set_errs,
-- recorded like a failed delivery: a dead letter and the endpoint's
-- last_error): those SETs never come again; jtis the stream is not
-- waiting for are ignored.  Then, if the stream is enabled, SETs are
-- rendered for the events after those already rendered, until
-- max_events are waiting, and the waiting ones are returned, oldest
-- first: a SET not acknowledged comes again in the next poll, the same
-- bytes.  max_events NULL or above 1000: 1000; 0: acknowledge only.
-- return_immediately is the gateway's business (it polls again while
-- nothing is waiting).
CREATE FUNCTION @extschema@.ssf_poll(app text, stream_id text, max_events int DEFAULT NULL,
									 return_immediately boolean DEFAULT true,
									 ack text[] DEFAULT NULL, set_errs jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
	p_max ALIAS FOR $3;
	p_ack ALIAS FOR $5;
	p_errs ALIAS FOR $6;
	s @extschema@.ssf_stream := @extschema@._ssf_stream($1, $2);
	e @extschema@.endpoint;
	lim int := least(coalesce(p_max, 1000), 1000);
	want text[] := @extschema@._ssf_delivered(s.events_requested);
	n_ack bigint;
	n_err bigint := 0;
	last_err text;
	r record;
	x @extschema@.ssf_set;
	need bigint;
	scanned bigint := 0;
	batch int;
	n int;
	tip bigint;
	last bigint;
	ev record;
	tok text;
	claims jsonb;
	v_uri text;
	sets jsonb;
	more boolean;
BEGIN
	SELECT * INTO e FROM @extschema@.endpoint y WHERE y.id = s.endpoint_id FOR UPDATE;
	IF e.delivery <> 'poll' THEN
		RAISE EXCEPTION 'stream "%" is delivered by push, not polled', s.stream_id
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Change its delivery to urn:ietf:rfc:8936 to poll it.';
	END IF;
	IF p_max < 0 THEN
		RAISE EXCEPTION 'maxEvents must not be negative'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF array_position(p_ack, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'ack must hold jti strings, not null'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF p_errs IS NOT NULL AND jsonb_typeof(p_errs) <> 'null' THEN
		IF jsonb_typeof(p_errs) <> 'object' THEN
			RAISE EXCEPTION 'setErrs must be a JSON object of jti to {"err", "description"}, not %', jsonb_typeof(p_errs)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT k.key INTO tok FROM jsonb_each(p_errs) k
		 WHERE jsonb_typeof(k.value) <> 'object' OR jsonb_typeof(k.value->'err') IS DISTINCT FROM 'string'
			OR (k.value ? 'description' AND jsonb_typeof(k.value->'description') NOT IN ('string', 'null'))
		 LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'setErrs entry "%" must be an object with a string "err" and an optional string "description"', left(tok, 100)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'RFC 8936 section 2.4.4: {"<jti>": {"err": "invalid_key", "description": "..."}}.';
		END IF;
	END IF;

	WITH d AS (DELETE FROM @extschema@.ssf_set y
				WHERE y.endpoint_id = e.id AND y.jti = ANY (coalesce(p_ack, '{}')) RETURNING 1)
	SELECT count(*) INTO n_ack FROM d;
	FOR r IN SELECT k.key, k.value FROM jsonb_each(coalesce(nullif(p_errs, 'null'::jsonb), '{}')) k ORDER BY k.key LOOP
		DELETE FROM @extschema@.ssf_set y WHERE y.endpoint_id = e.id AND y.jti = r.key RETURNING * INTO x;
		CONTINUE WHEN NOT FOUND;
		n_err := n_err + 1;
		last_err := left(format('setErrs %s: %s%s', r.key, r.value->>'err',
								': ' || (r.value->>'description')), 1000);
		INSERT INTO @extschema@.dead_letter (endpoint_id, message_id, first_position, last_position,
											 attempts, last_status, last_error)
		VALUES (e.id, x.jti, coalesce(x.position, 0), coalesce(x.position, 0), 1, NULL, last_err);
	END LOOP;
	IF n_ack > 0 OR n_err > 0 THEN
		UPDATE @extschema@.endpoint y
		   SET delivered = y.delivered + n_ack,
			   last_success = CASE WHEN n_ack > 0 THEN now() ELSE y.last_success END,
			   dead_lettered = y.dead_lettered + n_err,
			   last_error = coalesce(last_err, y.last_error),
			   consecutive_failures = CASE WHEN n_err > 0 THEN y.consecutive_failures + 1 ELSE 0 END
		 WHERE y.id = e.id;
	END IF;

	IF e.state <> 'polled' THEN
		PERFORM @extschema@._ssf_advance(e.id);
		RETURN jsonb_build_object('sets', '{}'::jsonb, 'moreAvailable', false);
	END IF;

	PERFORM @extschema@._seal();
	SELECT count(*) INTO need FROM @extschema@.ssf_set y WHERE y.endpoint_id = e.id;
	need := lim - need;
	-- at most 10000 events looked at per poll: a stream whose subjects
	-- leave most events out still answers quickly (moreAvailable)
	WHILE need > 0 AND scanned < 10000 LOOP
		SELECT y.last_position INTO tip FROM @extschema@.seal_state y;
		batch := least(greatest(need, 100), 1000)::int;
		n := 0;
		last := NULL;
		FOR ev IN SELECT * FROM @extschema@._events(e.app, s.rendered_through, batch, e.types) LOOP
			n := n + 1;
			last := ev.position;
			FOR tok IN SELECT t FROM @extschema@._sets(e.app, ev.event, s.iss, s.receiver) t LOOP
				claims := @extschema@._jws_claims(tok);
				SELECT k INTO v_uri FROM jsonb_object_keys(claims->'events') k LIMIT 1;
				CONTINUE WHEN NOT v_uri = ANY (want);
				CONTINUE WHEN NOT @extschema@._ssf_wanted(s, @extschema@._ssf_subject_keys(claims->'sub_id', false));
				INSERT INTO @extschema@.ssf_set (endpoint_id, jti, position, uri, token)
				VALUES (e.id, claims->>'jti', ev.position, v_uri, tok)
				ON CONFLICT DO NOTHING;
				need := need - 1;
			END LOOP;
		END LOOP;
		scanned := scanned + n;
		IF n < batch THEN
			-- everything up to tip was seen: filtered-out events are passed too
			s.rendered_through := greatest(s.rendered_through, last, tip);
			EXIT;
		END IF;
		s.rendered_through := last;
	END LOOP;
	UPDATE @extschema@.ssf_stream y SET rendered_through = s.rendered_through WHERE y.endpoint_id = e.id;
	PERFORM @extschema@._ssf_advance(e.id);

	SELECT coalesce(jsonb_object_agg(w.jti, w.token), '{}'::jsonb) INTO sets
	  FROM (SELECT y.jti, y.token FROM @extschema@.ssf_set y
			 WHERE y.endpoint_id = e.id ORDER BY y.seq LIMIT lim) w;
	more := (SELECT count(*) FROM @extschema@.ssf_set y WHERE y.endpoint_id = e.id) > lim
			OR EXISTS (SELECT 1 FROM @extschema@._events(e.app, s.rendered_through, 1, e.types));
	RETURN jsonb_build_object('sets', sets, 'moreAvailable', more);
END
$$;
COMMENT ON FUNCTION @extschema@.ssf_poll(text, text, int, boolean, text[], jsonb) IS
	'RFC 8936 poll of an SSF stream: acknowledge and report errors, then the waiting SETs (at most 1000).';

GRANT EXECUTE ON FUNCTION
	@extschema@.ssf_configuration(text, text),
	@extschema@.ssf_stream_create(text, jsonb, text),
	@extschema@.ssf_stream_get(text, text),
	@extschema@.ssf_stream_update(text, jsonb),
	@extschema@.ssf_stream_replace(text, jsonb),
	@extschema@.ssf_stream_delete(text, text),
	@extschema@.ssf_stream_status(text, text),
	@extschema@.ssf_stream_status(text, text, text, text),
	@extschema@.ssf_subject_add(text, text, jsonb, boolean),
	@extschema@.ssf_subject_remove(text, text, jsonb),
	@extschema@.ssf_verify(text, text, text),
	@extschema@.ssf_poll(text, text, int, boolean, text[], jsonb)
TO connector_platform;
