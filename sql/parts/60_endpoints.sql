-- Push delivery, SQL side: endpoints, their secrets, in-flight messages, dead
-- letters, the admin functions that manage them and the dead letters view.  The
-- dispatcher worker (C) reads and updates these tables as a superuser.

CREATE TABLE @extschema@.endpoint (
	id				int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	app				text NOT NULL REFERENCES @extschema@.app ON DELETE CASCADE,
	name			text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 63),
	url				text NOT NULL,
	batch_size		int NOT NULL DEFAULT 1 CHECK (batch_size BETWEEN 1 AND 1000),
	timeout_ms		int,				-- NULL: connector.http_timeout
	headers			jsonb NOT NULL DEFAULT '{}',	-- extra static headers, name -> value
	types			text[],				-- NULL: every event type
	ordered			boolean NOT NULL DEFAULT true,
	-- webhook: Standard Webhooks messages; set: Security Event Tokens of an
	-- SSF stream (78_ssf_streams.sql), pushed (RFC 8935) or polled (RFC 8936)
	format			text NOT NULL DEFAULT 'webhook' CHECK (format IN ('webhook', 'set')),
	delivery		text NOT NULL DEFAULT 'push' CHECK (delivery IN ('push', 'poll')),
	-- format set, added by add_endpoint (an SSF stream's come from ssf_stream):
	-- the iss and aud of its SETs, and the SET event type URIs it wants
	-- (NULL: every one its types filter lets through)
	issuer			text,
	audience		text,
	set_types		text[],
	-- active: the dispatcher pushes; polled: a receiver polls (never pushed);
	-- paused: events wait; disabled: after a 410, or an SSF stream's receiver
	-- disabled it (its events are then dropped)
	state			text NOT NULL DEFAULT 'active'
					CHECK (state IN ('active', 'polled', 'paused', 'disabled')),
	disabled_reason	text,
	cursor			bigint NOT NULL,	-- last position delivered or dead-lettered
	last_success	timestamptz,
	last_error		text,
	last_status		int,
	consecutive_failures int NOT NULL DEFAULT 0,
	next_attempt	timestamptz,
	delivered		bigint NOT NULL DEFAULT 0,
	dead_lettered	bigint NOT NULL DEFAULT 0,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	UNIQUE (app, name)
);
COMMENT ON TABLE @extschema@.endpoint IS
	'Webhook endpoints of the applications and the delivery state of each.';

-- Messages in flight: their composition is fixed across retries, so a retried
-- message has the same id and body (ordered endpoints have at most one).
CREATE TABLE @extschema@.pending (
	endpoint_id		int NOT NULL REFERENCES @extschema@.endpoint ON DELETE CASCADE,
	first_position	bigint NOT NULL,
	last_position	bigint NOT NULL,
	message_id		text NOT NULL,		-- the event id, or 'batch_<endpoint id>_<first>_<last>'
	n_events		int,				-- events in the message (types filter applied); NULL: count them
	attempts		int NOT NULL DEFAULT 0,
	next_attempt	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_status		int,
	last_error		text,
	PRIMARY KEY (endpoint_id, first_position)
);
COMMENT ON TABLE @extschema@.pending IS
	'Webhook messages in flight, with a composition fixed across retries.';

-- Signing secrets.  No role has a privilege on this table, and row-level
-- security without a policy hides its rows from roles that read every table
-- (pg_read_all_data); superusers, hence the SECURITY DEFINER functions and
-- the worker, bypass it.
CREATE TABLE @extschema@.endpoint_secret (
	endpoint_id		int PRIMARY KEY REFERENCES @extschema@.endpoint ON DELETE CASCADE,
	secret			text NOT NULL,		-- 'whsec_<base64>'
	previous		text,				-- during a rotation overlap
	previous_until	timestamptz
);
ALTER TABLE @extschema@.endpoint_secret ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE @extschema@.endpoint_secret IS
	'Webhook signing secrets; readable by superusers only.';

CREATE TABLE @extschema@.dead_letter (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	endpoint_id		int NOT NULL REFERENCES @extschema@.endpoint ON DELETE CASCADE,
	message_id		text NOT NULL,
	first_position	bigint NOT NULL,
	last_position	bigint NOT NULL,
	attempts		int NOT NULL,
	last_status		int,
	last_error		text,
	dead_at			timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX dead_letter_endpoint ON @extschema@.dead_letter (endpoint_id);
COMMENT ON TABLE @extschema@.dead_letter IS
	'Messages given up after connector.max_attempts permanent rejections; kept for connector.retention.';

-- Endpoints and secrets are configuration: a restored dump keeps pushing,
-- signed as before (docs/security.md explains why secrets are dumped).  The
-- identity sequence is dumped too, or new endpoints would reuse restored ids.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.endpoint', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.endpoint_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.endpoint_secret', '');

REVOKE ALL ON @extschema@.endpoint, @extschema@.pending, @extschema@.endpoint_secret,
	@extschema@.dead_letter FROM PUBLIC;

-- The event types of spec section 6.
CREATE FUNCTION @extschema@._event_types() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT ARRAY['account.created', 'account.updated', 'account.disabled', 'account.enabled',
				 'account.deleted', 'access.granted', 'access.revoked',
				 'entitlement.created', 'entitlement.updated', 'entitlement.deleted',
				 'credential.created', 'credential.updated', 'credential.revoked',
				 'credential.deleted', 'capture.tampered']
$$;

-- Why an IP address may not be a webhook target, or NULL when it may.  The
-- ranges are those of RFC 6890 and the IANA special-purpose registries that are
-- not globally reachable, with documentation and benchmarking ranges, and every
-- IPv6 address outside global unicast 2000::/3.  The IPv6 forms that carry
-- traffic to an IPv4 host (IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96 and
-- 6to4 2002::/16) are judged by the IPv4 address they carry; the other
-- embedding forms are refused whatever they carry.  The dispatcher applies the
-- same list at connect time (AddressAllowed in src/http.c): change both.
CREATE FUNCTION @extschema@._private_range(addr inet) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
	WITH e AS (
		-- where the carried IPv4 address starts in inet_send()'s bytes (a
		-- 4-byte header, then the address), NULL when none is carried
		SELECT CASE WHEN inet '::ffff:0:0/96' >>= addr OR inet '64:ff9b::/96' >>= addr THEN 16
					WHEN inet '2002::/16' >>= addr THEN 6 END AS at,
			   inet_send(addr) AS b
	), a AS (
		SELECT e.at,
			   CASE WHEN e.at IS NULL THEN addr
					ELSE inet '0.0.0.0' + ((get_byte(e.b, e.at)::bigint << 24) | (get_byte(e.b, e.at + 1) << 16) |
										   (get_byte(e.b, e.at + 2) << 8) | get_byte(e.b, e.at + 3)) END AS ip
		  FROM e
	)
	SELECT CASE WHEN a.at IS NULL THEN format('Address %s is in %s (%s).', host(addr), r.net, r.what)
				ELSE format('Address %s carries IPv4 address %s, which is in %s (%s).',
							host(addr), host(a.ip), r.net, r.what) END
	  FROM a, (VALUES
		('0.0.0.0/8'::inet, 'this network'), ('0.0.0.0/32', 'unspecified'), ('10.0.0.0/8', 'private'),
		('100.64.0.0/10', 'shared address space, CGNAT'), ('127.0.0.0/8', 'loopback'),
		('169.254.0.0/16', 'link-local'), ('172.16.0.0/12', 'private'),
		('192.0.0.0/24', 'IETF protocol assignments'), ('192.0.2.0/24', 'documentation'),
		('192.88.99.0/24', 'former 6to4 relay anycast'), ('192.168.0.0/16', 'private'),
		('198.18.0.0/15', 'benchmarking'), ('198.51.100.0/24', 'documentation'),
		('203.0.113.0/24', 'documentation'), ('224.0.0.0/4', 'multicast'),
		('240.0.0.0/4', 'reserved'), ('255.255.255.255/32', 'broadcast'),
		-- IPv6 outside 2000::/3, then the special ranges, named most specific first
		('::/3', 'reserved, not global unicast'), ('4000::/2', 'reserved, not global unicast'),
		('8000::/1', 'reserved, not global unicast'),
		('::/128', 'unspecified'), ('::1/128', 'loopback'), ('::/96', 'IPv4-compatible, deprecated'),
		('::ffff:0:0:0/96', 'IPv4-translated'), ('64:ff9b:1::/48', 'local-use IPv4/IPv6 translation'),
		('100::/64', 'discard-only'), ('2001::/23', 'IETF protocol assignments'), ('2001::/32', 'Teredo'),
		('2001:2::/48', 'benchmarking'), ('2001:10::/28', 'ORCHID, deprecated'), ('2001:20::/28', 'ORCHIDv2'),
		('2001:db8::/32', 'documentation'), ('3fff::/20', 'documentation'),
		('fc00::/7', 'unique local'), ('fe80::/10', 'link-local'), ('fec0::/10', 'site-local, deprecated'),
		('ff00::/8', 'multicast')
	  ) r(net, what)
	 WHERE r.net >>= a.ip
	 ORDER BY masklen(r.net) DESC
	 LIMIT 1
$$;

-- Refuse a webhook URL that is not an absolute https:// URL of a public host.
-- Messages never repeat the URL: it could hold credentials or tokens.
CREATE FUNCTION @extschema@._check_url(url text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	allow_private boolean := current_setting('connector.allow_private_targets')::boolean;
	scheme text := lower(substring(url FROM '^([A-Za-z][A-Za-z0-9+.-]*):'));
	authority text;
	host text;
	port text;
	addr inet;
	why text;
BEGIN
	PERFORM @extschema@._require(url, 'url');
	IF octet_length(url) > 2048 THEN
		RAISE EXCEPTION 'endpoint URL must not be longer than 2048 bytes'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The URL given is %s bytes long.', octet_length(url));
	END IF;
	IF url ~ '[[:space:][:cntrl:]]' THEN
		RAISE EXCEPTION 'endpoint URL must not contain whitespace or control characters'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Percent-encode them (a space is %20).';
	END IF;
	IF url ~ '[^\x21-\x7e]' THEN
		RAISE EXCEPTION 'endpoint URL must contain only ASCII characters'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Percent-encode other characters and write international host names in punycode.';
	END IF;
	IF scheme IS NULL THEN
		RAISE EXCEPTION 'endpoint URL must be an absolute https:// URL'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT (scheme = 'https' OR (scheme = 'http' AND allow_private)) THEN
		RAISE EXCEPTION 'endpoint URL scheme "%" is not allowed', scheme
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use https://; http:// is accepted only while connector.allow_private_targets is on.';
	END IF;
	authority := substring(url FROM '^[A-Za-z]+://([^/?#]*)');
	IF authority IS NOT NULL AND authority LIKE '%@%' THEN
		RAISE EXCEPTION 'endpoint URL must not contain credentials'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'User information (user:password@) is refused in endpoint URLs.',
				  HINT = 'Receivers authenticate messages by their signature; static headers can be set with the "headers" option.';
	END IF;
	IF authority ~ '^\[' THEN
		host := substring(authority FROM '^\[([^]]*)\]');
		port := substring(authority FROM '^\[[^]]*\](.*)$');
	ELSE
		host := substring(authority FROM '^([^:]*)');
		port := substring(authority FROM '^[^:]*(.*)$');
	END IF;
	IF coalesce(host, '') = '' THEN
		RAISE EXCEPTION 'endpoint URL must have a host'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Write it as https://host/path.';
	END IF;
	IF port <> '' AND (port !~ '^:[0-9]{1,5}$' OR substr(port, 2)::int NOT BETWEEN 1 AND 65535) THEN
		RAISE EXCEPTION 'endpoint URL port must be a number between 1 and 65535'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF authority ~ '^\[' THEN
		BEGIN
			addr := host::inet;
		EXCEPTION WHEN data_exception THEN
			addr := NULL;
		END;
		IF addr IS NULL OR family(addr) <> 6 OR masklen(addr) <> 128 THEN
			RAISE EXCEPTION 'endpoint URL host "[%]" is not a valid IPv6 address', host
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	ELSIF substring(rtrim(host, '.') FROM '([^.]*)$') ~ '^[0-9]' THEN
		-- A last label that starts with a digit is no DNS name: resolvers read
		-- 127.1, 2130706433 and 0x7f.0.0.1 as IPv4, so only dotted decimal is let through.
		IF host !~ '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$' THEN
			RAISE EXCEPTION 'endpoint URL host "%" is not a valid IPv4 address', host
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Write IPv4 addresses as four decimal numbers, such as 192.0.2.10.';
		END IF;
		addr := host::inet;
	ELSIF host !~ '^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$' OR octet_length(host) > 253 THEN
		RAISE EXCEPTION 'endpoint URL host "%" is not a valid host name', host
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF allow_private THEN
		RETURN;
	END IF;
	IF addr IS NOT NULL THEN
		why := @extschema@._private_range(addr);
	ELSIF lower(rtrim(host, '.')) = 'localhost' OR lower(rtrim(host, '.')) LIKE '%.localhost' THEN
		why := 'The name localhost refers to this machine.';
	END IF;
	IF why IS NOT NULL THEN
		RAISE EXCEPTION 'endpoint URL host "%" is a loopback, private or link-local address', host
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = why,
				  HINT = 'A superuser can allow such targets with connector.allow_private_targets = on.';
	END IF;
END
$$;

-- Refuse a secret that is not whsec_ followed by base64 of 24 to 64 bytes.
-- No message may carry the secret or any part of it.
CREATE FUNCTION @extschema@._check_secret(secret text, what text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	b64 text;
	n int;
BEGIN
	PERFORM @extschema@._require(secret, what);
	IF left(secret, 6) <> 'whsec_' THEN
		RAISE EXCEPTION '% must start with "whsec_"', what
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Secrets have the form whsec_<base64 of 24 to 64 random bytes>.';
	END IF;
	b64 := substr(secret, 7);
	IF b64 !~ '^[A-Za-z0-9+/]*={0,2}$' OR length(b64) % 4 <> 0 OR b64 = '' THEN
		RAISE EXCEPTION '% is not valid base64 after "whsec_"', what
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Write the base64 on one line, without spaces (encode(..., ''base64'') breaks lines after 76 characters).';
	END IF;
	n := octet_length(decode(b64, 'base64'));
	IF n NOT BETWEEN 24 AND 64 THEN
		RAISE EXCEPTION '% must decode to 24 to 64 bytes', what
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('It decodes to %s bytes.', n);
	END IF;
END
$$;

-- The JSON value of an endpoint option, checked to be of JSON type want.
CREATE FUNCTION @extschema@._option(opts jsonb, key text, want text, what text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT opts ? key THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(opts->key) <> want THEN
		RAISE EXCEPTION 'endpoint option "%" must be %, not %', key, what, jsonb_typeof(opts->key)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF want = 'number' AND (opts->>key)::numeric <> trunc((opts->>key)::numeric) THEN
		RAISE EXCEPTION 'endpoint option "%" must be %, not a fractional number', key, what
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN opts->key;
END
$$;

-- Validate the "headers" option: names are tokens the connector does not set
-- itself, values are strings on one line.  Values are never repeated in a
-- message: they may be tokens.
CREATE FUNCTION @extschema@._check_headers(headers jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	h record;
	reserved text[] := ARRAY['content-type', 'user-agent', 'webhook-id', 'webhook-timestamp',
							 'webhook-signature', 'content-length', 'host', 'transfer-encoding',
							 'connection', 'keep-alive', 'expect', 'te', 'trailer', 'upgrade'];
BEGIN
	FOR h IN SELECT * FROM jsonb_each(headers) ORDER BY 1 LOOP
		IF h.key !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]+$' THEN
			RAISE EXCEPTION 'endpoint option "headers": "%" is not a valid header name', h.key
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Header names are tokens: letters, digits and !#$%&''*+.^_`|~-.';
		END IF;
		IF lower(h.key) = ANY (reserved) THEN
			RAISE EXCEPTION 'endpoint option "headers": header "%" is set by the connector', h.key
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('The connector sets %s itself.', array_to_string(reserved, ', '));
		END IF;
		IF jsonb_typeof(h.value) <> 'string' THEN
			RAISE EXCEPTION 'endpoint option "headers": the value of header "%" must be a string, not %',
				h.key, jsonb_typeof(h.value)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF (h.value #>> '{}') ~ '[\x01-\x08\x0a-\x1f\x7f]' THEN
			RAISE EXCEPTION 'endpoint option "headers": the value of header "%" must not contain line breaks or control characters', h.key
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
END
$$;

-- Validate the "types" option and return it as a sorted set of event types;
-- with sets (an endpoint of format set) SET event type URIs
-- (_ssf_supported, 78_ssf_streams.sql) are accepted too.
CREATE FUNCTION @extschema@._check_types(types jsonb, sets boolean DEFAULT false) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e jsonb;
BEGIN
	IF jsonb_array_length(types) = 0 THEN
		RAISE EXCEPTION 'endpoint option "types" must name at least one event type'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave "types" out to receive every event type.';
	END IF;
	FOR e IN SELECT jsonb_array_elements(types) LOOP
		IF jsonb_typeof(e) <> 'string' OR NOT ((e #>> '{}') = ANY (@extschema@._event_types())
											OR (sets AND (e #>> '{}') = ANY (@extschema@._ssf_supported()))) THEN
			IF sets THEN
				RAISE EXCEPTION 'endpoint option "types" contains unknown event type %', left(e::text, 100)
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = format('Event types: %s; SET event types: %s.',
										array_to_string(@extschema@._event_types(), ', '),
										array_to_string(@extschema@._ssf_supported(), ', '));
			END IF;
			RAISE EXCEPTION 'endpoint option "types" contains unknown event type %', left(e::text, 100)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = format('Event types: %s.', array_to_string(@extschema@._event_types(), ', '));
		END IF;
	END LOOP;
	RETURN ARRAY(SELECT DISTINCT x FROM jsonb_array_elements_text(types) x ORDER BY 1);
END
$$;

-- Check a cursor value against the retained stream; shown is the position
-- the caller gave.  Call _seal() first, so the end of the stream is current.
CREATE FUNCTION @extschema@._check_cursor(cur bigint, shown bigint) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s @extschema@.seal_state;
BEGIN
	SELECT * INTO s FROM @extschema@.seal_state;
	IF cur > s.last_position THEN
		RAISE EXCEPTION 'position % is beyond the end of the stream', shown
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The last position handed out is %s.', s.last_position);
	END IF;
	IF cur < s.purged_through THEN
		RAISE EXCEPTION 'position % is older than the retained history', shown
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('Events up to position %s have been removed by retention.', s.purged_through),
				  HINT = 'Start from a later position, or reconcile the application.';
	END IF;
END
$$;

-- An application's endpoint, locked for update.  Unknown: undefined_object.
CREATE FUNCTION @extschema@._endpoint(p_app text, p_name text) RETURNS @extschema@.endpoint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e @extschema@.endpoint;
BEGIN
	PERFORM @extschema@._mapping(p_app);
	PERFORM @extschema@._require(p_name, 'name');
	SELECT * INTO e FROM @extschema@.endpoint x WHERE x.app = p_app AND x.name = p_name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'endpoint "%" of application "%" does not exist', p_name, p_app
			USING ERRCODE = 'undefined_object',
				  HINT = 'The endpoints are listed in connector.status.';
	END IF;
	RETURN e;
END
$$;

-- A new secret: whsec_ and the base64 of 32 random bytes, the SHA-256 of
-- three version-4 UUIDs (366 bits from pg_strong_random, the operating
-- system's cryptographic generator), so no extension such as pgcrypto is needed.
CREATE FUNCTION @extschema@._new_secret() RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT 'whsec_' || encode(sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
									 || uuid_send(gen_random_uuid())), 'base64')
$$;

-- The text of a statement that calls a function taking a secret holds the
-- secret.  The log filter (src/logfilter.c) hides it from the server log;
-- log_min_error_statement = panic also keeps the STATEMENT line of an error
-- raised in the body out of the log in a session that has not loaded the
-- library.  A NULL secret: one is generated and returned, the only time it
-- can be read; otherwise the result is NULL, so a secret is never echoed.
CREATE FUNCTION @extschema@.add_endpoint(app text, name text, url text, secret text,
										 options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET log_min_error_statement = panic AS $$
DECLARE
	p_app ALIAS FOR $1;
	p_name ALIAS FOR $2;
	p_url ALIAS FOR $3;
	p_secret ALIAS FOR $4;
	opts ALIAS FOR $5;
	allowed text[] := ARRAY['audience', 'batch_size', 'format', 'from_position', 'headers', 'issuer',
							'ordered', 'timeout', 'types'];
	fmt text := 'webhook';
	iss text;
	aud text;
	uris text[];
	k text;
	v jsonb;
	batch int := 1;
	tmo int;
	hdrs jsonb := '{}';
	typs text[];
	ord boolean := true;
	cur bigint;
	ms numeric;
	new_id int;
	generated text;
BEGIN
	PERFORM @extschema@._mapping(p_app);
	PERFORM @extschema@._require(p_name, 'name');
	IF p_name = '' OR octet_length(p_name) > 63 THEN
		RAISE EXCEPTION 'endpoint name must be 1 to 63 bytes long'
			USING ERRCODE = 'invalid_name',
				  DETAIL = format('The name given is %s bytes long.', octet_length(p_name));
	END IF;
	PERFORM @extschema@._check_url(p_url);
	IF p_secret IS NULL THEN
		generated := @extschema@._new_secret();
	END IF;
	PERFORM @extschema@._check_secret(coalesce(p_secret, generated), 'secret');

	PERFORM @extschema@._require(opts, 'options');
	IF jsonb_typeof(opts) <> 'object' THEN
		RAISE EXCEPTION 'endpoint options must be a JSON object, not %', jsonb_typeof(opts)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR k IN SELECT jsonb_object_keys(opts) ORDER BY 1 LOOP
		IF NOT k = ANY (allowed) THEN
			RAISE EXCEPTION 'unknown endpoint option "%"', k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = format('Options: %s.', array_to_string(allowed, ', '));
		END IF;
	END LOOP;

	v := @extschema@._option(opts, 'format', 'string', '"webhook" or "set"');
	IF v IS NOT NULL THEN
		IF NOT (v #>> '{}') = ANY (ARRAY['webhook', 'set']) THEN
			RAISE EXCEPTION 'endpoint option "format" must be "webhook" or "set"'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		fmt := v #>> '{}';
	END IF;
	-- the iss and aud of a set endpoint's SETs (RFC 8417 StringOrURI)
	FOREACH k IN ARRAY ARRAY['issuer', 'audience'] LOOP
		v := @extschema@._option(opts, k, 'string', 'a string');
		IF v IS NOT NULL AND fmt <> 'set' THEN
			RAISE EXCEPTION 'endpoint option "%" is for endpoints of format "set"', k
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF fmt = 'set' AND (v IS NULL OR (v #>> '{}') = '' OR octet_length(v #>> '{}') > 1024
							OR (v #>> '{}') ~ '[\x01-\x1f\x7f]') THEN
			RAISE EXCEPTION 'endpoint option "%" is required with format "set": a string of 1 to 1024 bytes', k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'issuer is the iss of every SET (the transmitter''s issuer URL), audience its aud (what the receiver expects).';
		END IF;
		IF k = 'issuer' THEN
			iss := v #>> '{}';
		ELSE
			aud := v #>> '{}';
		END IF;
	END LOOP;

	v := @extschema@._option(opts, 'batch_size', 'number', 'an integer');
	IF v IS NOT NULL THEN
		IF v::numeric NOT BETWEEN 1 AND 1000 THEN
			RAISE EXCEPTION 'endpoint option "batch_size" must be between 1 and 1000'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		batch := v::int;
	END IF;
	-- RFC 8935: one SET per request
	IF fmt = 'set' AND batch > 1 THEN
		RAISE EXCEPTION 'endpoint option "batch_size" must be 1 with format "set"'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'RFC 8935 delivers one SET per request.';
	END IF;

	v := @extschema@._option(opts, 'timeout', 'string', 'an interval string such as "5s"');
	IF v IS NOT NULL THEN
		BEGIN
			ms := extract(epoch FROM (v #>> '{}')::interval) * 1000;
		EXCEPTION WHEN data_exception THEN
			RAISE EXCEPTION 'endpoint option "timeout" is not a valid interval'
				USING ERRCODE = 'invalid_parameter_value', DETAIL = SQLERRM,
					  HINT = 'Write it as an interval string such as "5s" or "500ms".';
		END;
		IF ms NOT BETWEEN 100 AND 3600000 THEN
			RAISE EXCEPTION 'endpoint option "timeout" must be between 100 ms and 1 hour'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		tmo := round(ms)::int;
	END IF;

	v := @extschema@._option(opts, 'headers', 'object', 'a JSON object');
	IF v IS NOT NULL THEN
		PERFORM @extschema@._check_headers(v);
		hdrs := v;
	END IF;

	-- a SET endpoint's requests carry the connector's Accept (RFC 8935)
	IF fmt = 'set' AND EXISTS (SELECT 1 FROM jsonb_object_keys(hdrs) h WHERE lower(h) = 'accept') THEN
		RAISE EXCEPTION 'endpoint option "headers": header "accept" is set by the connector for format "set"'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	v := @extschema@._option(opts, 'types', 'array', 'a JSON array of event types');
	IF v IS NOT NULL THEN
		typs := @extschema@._check_types(v, fmt = 'set');
		IF fmt = 'set' THEN
			-- the SETs wanted: the URIs named and those of the events named;
			-- the events filter: the events named and those giving a URI named
			SELECT array_agg(DISTINCT m.uri ORDER BY m.uri),
				   array_agg(DISTINCT m.type ORDER BY m.type)
			  INTO uris, typs
			  FROM @extschema@._ssf_event_map() m WHERE m.uri = ANY (typs) OR m.type = ANY (typs);
			IF uris IS NULL THEN
				RAISE EXCEPTION 'endpoint option "types" names no event that gives a SET'
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'capture.tampered gives no SET.';
			END IF;
		END IF;
	END IF;

	v := @extschema@._option(opts, 'ordered', 'boolean', 'a boolean');
	IF v IS NOT NULL THEN
		ord := v::boolean;
	END IF;

	-- The stream's end is only known once the committed events are sealed.
	PERFORM @extschema@._seal();
	v := @extschema@._option(opts, 'from_position', 'number', 'an integer');
	IF v IS NOT NULL THEN
		IF v::numeric < 0 THEN
			RAISE EXCEPTION 'endpoint option "from_position" must not be negative'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF v::numeric > 9223372036854775806 THEN
			RAISE EXCEPTION 'endpoint option "from_position" is beyond the end of the stream'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		cur := v::bigint;
		PERFORM @extschema@._check_cursor(cur, cur);
	ELSE
		SELECT s.last_position INTO cur FROM @extschema@.seal_state s;
	END IF;

	INSERT INTO @extschema@.endpoint AS e
		(app, name, url, batch_size, timeout_ms, headers, types, ordered, cursor,
		 format, issuer, audience, set_types)
	VALUES (p_app, p_name, p_url, batch, tmo, hdrs, typs, ord, cur, fmt, iss, aud, uris)
	ON CONFLICT ON CONSTRAINT endpoint_app_name_key DO NOTHING
	RETURNING e.id INTO new_id;
	IF new_id IS NULL THEN
		RAISE EXCEPTION 'endpoint "%" of application "%" already exists', p_name, p_app
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Remove it first, or choose another name.';
	END IF;
	INSERT INTO @extschema@.endpoint_secret (endpoint_id, secret)
	VALUES (new_id, coalesce(p_secret, generated));
	RETURN generated;
END
$$;
COMMENT ON FUNCTION @extschema@.add_endpoint(text, text, text, text, jsonb) IS
	'Add a webhook endpoint to an application; by default it receives only events after now. A NULL secret is generated and returned once.';

CREATE FUNCTION @extschema@.remove_endpoint(app text, name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e @extschema@.endpoint := @extschema@._endpoint($1, $2);
BEGIN
	DELETE FROM @extschema@.endpoint x WHERE x.id = e.id;
END
$$;
COMMENT ON FUNCTION @extschema@.remove_endpoint(text, text) IS
	'Remove a webhook endpoint with its secret, messages in flight and dead letters.';

CREATE FUNCTION @extschema@.enable_endpoint(app text, name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e @extschema@.endpoint := @extschema@._endpoint($1, $2);
BEGIN
	-- a polled SSF stream is never pushed: it goes back to being polled
	UPDATE @extschema@.endpoint x
	   SET state = CASE WHEN x.delivery = 'poll' THEN 'polled' ELSE 'active' END,
		   disabled_reason = NULL, consecutive_failures = 0, next_attempt = NULL
	 WHERE x.id = e.id;
	-- retry what was waiting at once
	UPDATE @extschema@.pending p SET next_attempt = now() WHERE p.endpoint_id = e.id;
	UPDATE @extschema@.ssf_set t SET next_attempt = now() WHERE t.endpoint_id = e.id;
END
$$;
COMMENT ON FUNCTION @extschema@.enable_endpoint(text, text) IS
	'Resume delivery to an endpoint (after a 410 or failures), retrying at once.';

-- Like add_endpoint: a NULL new_secret is generated and returned once.
CREATE FUNCTION @extschema@.rotate_secret(app text, name text, new_secret text,
										  overlap interval DEFAULT '1 day')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET log_min_error_statement = panic AS $$
DECLARE
	e @extschema@.endpoint := @extschema@._endpoint($1, $2);
	generated text;
	chosen text := new_secret;
BEGIN
	IF chosen IS NULL THEN
		generated := @extschema@._new_secret();
		chosen := generated;
	END IF;
	PERFORM @extschema@._check_secret(chosen, 'new secret');
	PERFORM @extschema@._require(overlap, 'overlap');
	IF overlap < interval '0' THEN
		RAISE EXCEPTION 'overlap must not be negative'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use interval ''0'' to stop signing with the old secret at once.';
	END IF;
	-- a missing secret row (a dump restored without secrets) is created
	INSERT INTO @extschema@.endpoint_secret AS s (endpoint_id, secret) VALUES (e.id, chosen)
	ON CONFLICT ON CONSTRAINT endpoint_secret_pkey DO UPDATE
	   SET previous = s.secret, previous_until = now() + overlap, secret = EXCLUDED.secret;
	RETURN generated;
END
$$;
COMMENT ON FUNCTION @extschema@.rotate_secret(text, text, text, interval) IS
	'Replace an endpoint''s signing secret; messages carry both signatures during the overlap. A NULL secret is generated and returned once.';

CREATE FUNCTION @extschema@.redeliver(app text, name text, from_position bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e @extschema@.endpoint := @extschema@._endpoint($1, $2);
BEGIN
	PERFORM @extschema@._require(from_position, 'from_position');
	IF from_position < 1 THEN
		RAISE EXCEPTION 'position % is out of range', from_position
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Positions start at 1.';
	END IF;
	PERFORM @extschema@._seal();
	PERFORM @extschema@._check_cursor(from_position - 1, from_position);
	DELETE FROM @extschema@.pending p WHERE p.endpoint_id = e.id;
	-- a SET endpoint's rendered SETs go too (verification SETs stay); for a
	-- polled stream, rendering starts again from the new cursor
	DELETE FROM @extschema@.ssf_set t WHERE t.endpoint_id = e.id AND t.position IS NOT NULL;
	UPDATE @extschema@.ssf_stream s SET rendered_through = from_position - 1 WHERE s.endpoint_id = e.id;
	UPDATE @extschema@.endpoint x SET cursor = from_position - 1, next_attempt = NULL
	 WHERE x.id = e.id;
END
$$;
COMMENT ON FUNCTION @extschema@.redeliver(text, text, bigint) IS
	'Restart an endpoint''s stream at a position (events are delivered again from there).';

-- The signing keys of an endpoint for the worker: the decoded current secret
-- and, during a rotation overlap, the previous one.  NULL when it has none.
CREATE FUNCTION @extschema@._endpoint_signing_keys(endpoint_id int) RETURNS bytea[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN s.previous IS NOT NULL AND s.previous_until > now()
				THEN ARRAY[decode(substr(s.secret, 7), 'base64'), decode(substr(s.previous, 7), 'base64')]
				ELSE ARRAY[decode(substr(s.secret, 7), 'base64')] END
	  FROM @extschema@.endpoint_secret s WHERE s.endpoint_id = $1
$$;

-- connector.status is defined with the dispatcher's state, in 65_dispatch.sql.

CREATE VIEW @extschema@.dead_letters AS
SELECT e.app,
	   e.name AS endpoint,
	   d.id,
	   d.message_id,
	   d.first_position,
	   d.last_position,
	   d.attempts,
	   d.last_status,
	   d.last_error,
	   d.dead_at
  FROM @extschema@.dead_letter d
  JOIN @extschema@.endpoint e ON e.id = d.endpoint_id;
COMMENT ON VIEW @extschema@.dead_letters IS
	'Messages given up after connector.max_attempts permanent rejections.';

GRANT EXECUTE ON FUNCTION
	@extschema@.add_endpoint(text, text, text, text, jsonb),
	@extschema@.remove_endpoint(text, text),
	@extschema@.enable_endpoint(text, text),
	@extschema@.rotate_secret(text, text, text, interval),
	@extschema@.redeliver(text, text, bigint)
TO connector_admin;
GRANT SELECT ON @extschema@.dead_letters TO connector_admin;
