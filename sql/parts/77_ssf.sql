-- Shared Signals transmitter, first part (spec section 12): the signing keys
-- of Security Event Tokens, the public JWK Set, and the rendering of events
-- as signed SETs (src/jose.c, src/set_render.c).  Push of SETs through the
-- dispatcher and the gateway's transmitter endpoints come later.

-- Public halves.  A key is active until retired; a retired key stays in
-- jwks() until published_until (retirement + connector.retention), so SETs
-- it signed can still be verified by receivers that fetch the key set late.
CREATE TABLE @extschema@.signing_key (
	kid				text PRIMARY KEY,	-- RFC 7638 JWK thumbprint (SHA-256)
	app				text NOT NULL REFERENCES @extschema@.app ON DELETE CASCADE,
	alg				text NOT NULL CHECK (alg IN ('RS256', 'ES256')),
	jwk				jsonb NOT NULL,		-- public members: kty, n, e or kty, crv, x, y
	seq				bigint GENERATED ALWAYS AS IDENTITY UNIQUE,	-- newest signs
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	retired_at		timestamptz,
	published_until	timestamptz,
	CHECK ((retired_at IS NULL) = (published_until IS NULL))
);
CREATE INDEX signing_key_app ON @extschema@.signing_key (app, seq);
COMMENT ON TABLE @extschema@.signing_key IS
	'Public halves of the applications'' SET signing keys (see connector.signing_keys).';

-- Private halves, PKCS#8 DER.  Protected like endpoint secrets: no role has
-- a privilege on the table, and row-level security without a policy hides
-- its rows from roles that read every table (pg_read_all_data).  Only the C
-- code reads and writes them, through SPI with parameters.  No CHECK
-- constraint here: its violation would print the failing row.  Retiring a
-- key deletes its private half.
CREATE TABLE @extschema@.signing_key_secret (
	kid				text PRIMARY KEY REFERENCES @extschema@.signing_key ON DELETE CASCADE,
	private_key		bytea NOT NULL
);
ALTER TABLE @extschema@.signing_key_secret ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE @extschema@.signing_key_secret IS
	'Private halves of the SET signing keys; readable by superusers only.';

-- Keys are configuration: a restored dump keeps signing with the keys the
-- receivers already trust (docs/security.md).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.signing_key', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.signing_key_seq_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.signing_key_secret', '');

REVOKE ALL ON @extschema@.signing_key, @extschema@.signing_key_secret FROM PUBLIC;

CREATE FUNCTION @extschema@._generate_signing_key(app text, alg text) RETURNS text
AS 'MODULE_PATHNAME', 'connector_generate_signing_key'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@._generate_signing_key(text, text) IS
	'Internal: generate and store a key pair, return its kid (add_signing_key checks the arguments).';

CREATE FUNCTION @extschema@._sets(app text, event jsonb, issuer text, audience text)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'connector_sets'
LANGUAGE C STABLE ROWS 2;	-- an event gives 0 to 2 SETs
COMMENT ON FUNCTION @extschema@._sets(text, jsonb, text, text) IS
	'Internal: the signed Security Event Tokens of one event, with the application''s newest active key.';

CREATE FUNCTION @extschema@._verification_set(app text, stream_id text, state text,
											  issuer text, audience text)
RETURNS text
AS 'MODULE_PATHNAME', 'connector_verification_set'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@._verification_set(text, text, text, text, text) IS
	'Internal: a signed SSF verification event for a stream, echoing the receiver''s state.';

CREATE FUNCTION @extschema@.add_signing_key(app text, alg text DEFAULT 'RS256') RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
	p_alg ALIAS FOR $2;
BEGIN
	PERFORM @extschema@._mapping(p_app);
	PERFORM @extschema@._require(p_alg, 'alg');
	IF p_alg NOT IN ('RS256', 'ES256') THEN
		RAISE EXCEPTION 'unsupported signing algorithm "%"', left(p_alg, 100)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use RS256 (RSA, 2048-bit keys) or ES256 (ECDSA on P-256); the names are case-sensitive.';
	END IF;
	RETURN @extschema@._generate_signing_key(p_app, p_alg);
END
$$;
COMMENT ON FUNCTION @extschema@.add_signing_key(text, text) IS
	'Generate a new SET signing key (RS256 or ES256) for an application; it signs from now on. Returns its kid.';

CREATE FUNCTION @extschema@.retire_signing_key(app text, kid text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
	p_kid ALIAS FOR $2;
	k @extschema@.signing_key;
	active bigint;
BEGIN
	PERFORM @extschema@._mapping(p_app);
	PERFORM @extschema@._require(p_kid, 'kid');
	-- Lock the application's active keys first: of two concurrent
	-- retirements, the second then counts what the first left.
	PERFORM 1 FROM @extschema@.signing_key x
	  WHERE x.app = p_app AND x.retired_at IS NULL ORDER BY x.kid FOR UPDATE;
	SELECT * INTO k FROM @extschema@.signing_key x WHERE x.app = p_app AND x.kid = p_kid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'signing key "%" of application "%" does not exist', left(p_kid, 100), p_app
			USING ERRCODE = 'undefined_object',
				  HINT = 'The keys are listed in connector.signing_keys.';
	END IF;
	IF k.retired_at IS NOT NULL THEN
		RETURN;		-- already retired: its publication period stays as it was
	END IF;
	SELECT count(*) INTO active FROM @extschema@.signing_key x
	 WHERE x.app = p_app AND x.retired_at IS NULL;
	IF active < 2 THEN
		RAISE EXCEPTION 'cannot retire the only active signing key of application "%"', p_app
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'Without an active key no security event token can be signed.',
				  HINT = 'Add another key with connector.add_signing_key() first.';
	END IF;
	UPDATE @extschema@.signing_key x
	   SET retired_at = now(),
		   published_until = now() + make_interval(secs => @extschema@._setting('connector.retention'))
	 WHERE x.kid = p_kid;
	DELETE FROM @extschema@.signing_key_secret s WHERE s.kid = p_kid;
END
$$;
COMMENT ON FUNCTION @extschema@.retire_signing_key(text, text) IS
	'Stop signing with a key and destroy its private half; jwks() publishes it for connector.retention more.';

CREATE FUNCTION @extschema@.jwks(app text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p_app ALIAS FOR $1;
BEGIN
	PERFORM @extschema@._mapping(p_app);
	RETURN jsonb_build_object('keys', coalesce(
		(SELECT jsonb_agg(k.jwk || jsonb_build_object('kid', k.kid, 'alg', k.alg, 'use', 'sig')
						  ORDER BY k.seq DESC)
		   FROM @extschema@.signing_key k
		  WHERE k.app = p_app AND (k.retired_at IS NULL OR k.published_until > now())),
		'[]'::jsonb));
END
$$;
COMMENT ON FUNCTION @extschema@.jwks(text) IS
	'The public JWK Set of an application''s SET signing keys: active keys, and retired ones within connector.retention.';

CREATE VIEW @extschema@.signing_keys AS
SELECT k.app,
	   k.kid,
	   k.alg,
	   CASE WHEN k.retired_at IS NULL THEN 'active'
			WHEN k.published_until > now() THEN 'retired'
			ELSE 'expired' END AS state,
	   k.created_at AS created,
	   k.retired_at AS retired,
	   k.published_until
  FROM @extschema@.signing_key k;
COMMENT ON VIEW @extschema@.signing_keys IS
	'SET signing keys: active (the newest signs), retired (still in jwks()), expired; never a private key.';

GRANT EXECUTE ON FUNCTION
	@extschema@.add_signing_key(text, text),
	@extschema@.retire_signing_key(text, text),
	@extschema@.jwks(text)
TO connector_admin;
GRANT EXECUTE ON FUNCTION @extschema@.jwks(text) TO connector_platform;
GRANT SELECT ON @extschema@.signing_keys TO connector_admin;
