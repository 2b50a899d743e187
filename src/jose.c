/*-------------------------------------------------------------------------
 *
 * jose.c
 *	  Signing keys and compact JWS signatures (RS256, ES256) for Security
 *	  Event Tokens, with OpenSSL's libcrypto.
 *
 * A key pair is generated here and written straight into
 * connector.signing_key (the public JWK) and connector.signing_key_secret
 * (the private key, PKCS#8 DER) through SPI with parameters, so the private
 * key never is the value of an SQL expression, a function result or a
 * statement text: nothing that a log line, an error or a view could show.
 * The kid is the key's RFC 7638 JWK thumbprint, unique to the key pair.
 *
 * Signing reads the private key of a kid from the table once per backend
 * and keeps the parsed key in a small cache: a kid names one key pair for
 * good, so a cached key can never be stale, and parsing a key costs more
 * than an RS256 signature.  Callers choose the kid (the newest active key),
 * so a retired key, whose private half is deleted, is never looked up.
 *
 * IDENTIFICATION
 *	  src/jose.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include "connector.h"

PG_FUNCTION_INFO_V1(connector_generate_signing_key);

#define RSA_BITS 2048
#define EC_COORD_BYTES 32
#define KEY_CACHE_SIZE 8

/* A parsed private key, by kid. */
typedef struct JoseCachedKey
{
	char		kid[JOSE_KID_MAXLEN + 1];
	JoseAlg		alg;
	EVP_PKEY   *pkey;
} JoseCachedKey;

static JoseCachedKey key_cache[KEY_CACHE_SIZE];
static int	key_cache_next = 0;

/*
 * The JWS name of an algorithm.
 */
const char *
JoseAlgName(JoseAlg alg)
{
	return alg == JOSE_ES256 ? "ES256" : "RS256";
}

/*
 * Parse a JWS algorithm name; case matters, as in JOSE.
 */
bool
JoseAlgFromName(const char *name, JoseAlg *alg)
{
	if (strcmp(name, "RS256") == 0)
		*alg = JOSE_RS256;
	else if (strcmp(name, "ES256") == 0)
		*alg = JOSE_ES256;
	else
		return false;
	return true;
}

/*
 * Append data as base64url without padding (RFC 7515, section 2).
 */
void
JoseAppendBase64Url(StringInfo buf, const unsigned char *data, size_t len)
{
	int			enclen = pg_b64_enc_len((int) len);
	char	   *p;
	int			n;

	enlargeStringInfo(buf, enclen + 1);
	p = buf->data + buf->len;
	n = pg_b64_encode((const char *) data, (int) len, p, enclen);
	if (n < 0)
		elog(ERROR, "base64 encoding failed");
	while (n > 0 && p[n - 1] == '=')
		n--;
	for (int i = 0; i < n; i++)
	{
		if (p[i] == '+')
			p[i] = '-';
		else if (p[i] == '/')
			p[i] = '_';
	}
	buf->len += n;
	buf->data[buf->len] = '\0';
}

/*
 * Report the last OpenSSL error as an external routine failure.  OpenSSL's
 * reason strings never hold key material.
 */
static void
JoseReportOpenSSL(const char *what)
{
	unsigned long e = ERR_get_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("could not %s", what),
			 reason ? errdetail("OpenSSL: %s.", reason) : 0));
}

/*
 * Append a big number as base64url of its big-endian bytes, left-padded to
 * width bytes when width > 0 (EC coordinates have a fixed width; RSA
 * modulus and exponent have none, RFC 7518 section 6.3.1).
 */
static bool
AppendBignum(StringInfo buf, const BIGNUM *bn, int width)
{
	int			len = width > 0 ? width : BN_num_bytes(bn);
	unsigned char *bytes = palloc(len > 0 ? len : 1);
	bool		ok;

	ok = (width > 0 ? BN_bn2binpad(bn, bytes, width) : BN_bn2bin(bn, bytes)) == len;
	if (ok)
		JoseAppendBase64Url(buf, bytes, len);
	pfree(bytes);
	return ok;
}

/*
 * The public members of a key's JWK in RFC 7638 order (the lexicographic
 * order its thumbprint needs): {"e","kty","n"} or {"crv","kty","x","y"}.
 * False when OpenSSL cannot give the parameters.
 */
static bool
JosePublicJwk(EVP_PKEY *pkey, JoseAlg alg, StringInfo out)
{
	BIGNUM	   *a = NULL;
	BIGNUM	   *b = NULL;
	bool		ok;

	if (alg == JOSE_RS256)
	{
		ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &a) == 1 &&
			EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &b) == 1;
		if (ok)
		{
			appendStringInfoString(out, "{\"e\":\"");
			ok = AppendBignum(out, a, 0);
			appendStringInfoString(out, "\",\"kty\":\"RSA\",\"n\":\"");
			ok = ok && AppendBignum(out, b, 0);
			appendStringInfoString(out, "\"}");
		}
	}
	else
	{
		ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a) == 1 &&
			EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b) == 1;
		if (ok)
		{
			appendStringInfoString(out, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"");
			ok = AppendBignum(out, a, EC_COORD_BYTES);
			appendStringInfoString(out, "\",\"y\":\"");
			ok = ok && AppendBignum(out, b, EC_COORD_BYTES);
			appendStringInfoString(out, "\"}");
		}
	}
	BN_free(a);
	BN_free(b);
	return ok;
}

/*
 * connector._generate_signing_key(app text, alg text) returns text
 *
 * Generate a key pair (RSA 2048 bits or P-256), store it for app and return
 * its kid.  The caller (add_signing_key) has checked app and alg; the
 * function is executable by no role but the extension's owner.
 */
Datum
connector_generate_signing_key(PG_FUNCTION_ARGS)
{
	char	   *app;
	char	   *algname;
	JoseAlg		alg;
	EVP_PKEY   *pkey;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	unsigned char *der = NULL;
	int			derlen = -1;
	StringInfoData jwk;
	StringInfoData kid;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digestlen = 0;
	bool		ok;
	bytea	   *secret;
	Oid			types1[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Oid			types2[2] = {TEXTOID, BYTEAOID};
	Datum		values[4];
	SPIPlanPtr	plan;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("app and alg must not be null")));
	app = text_to_cstring(PG_GETARG_TEXT_PP(0));
	algname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!JoseAlgFromName(algname, &alg))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported signing algorithm \"%s\"", algname),
				 errhint("Use RS256 or ES256.")));

	ERR_clear_error();
	if (alg == JOSE_RS256)
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) RSA_BITS);
	else
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL)
		JoseReportOpenSSL("generate a signing key");

	/* no ereport while pkey and der are held: collect, free, then report */
	initStringInfo(&jwk);
	initStringInfo(&kid);
	ok = JosePublicJwk(pkey, alg, &jwk);
	if (ok)
		ok = EVP_Digest(jwk.data, jwk.len, digest, &digestlen, EVP_sha256(), NULL) == 1;
	if (ok)
	{
		p8 = EVP_PKEY2PKCS8(pkey);
		if (p8 != NULL)
			derlen = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
		ok = derlen > 0;
	}
	secret = NULL;
	if (ok)
	{
		secret = (bytea *) palloc(VARHDRSZ + derlen);
		SET_VARSIZE(secret, VARHDRSZ + derlen);
		memcpy(VARDATA(secret), der, derlen);
	}
	if (der != NULL)
		OPENSSL_clear_free(der, derlen);
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(pkey);
	if (!ok)
		JoseReportOpenSSL("export a signing key");

	JoseAppendBase64Url(&kid, digest, digestlen);

	SPI_connect();
	values[0] = CStringGetTextDatum(app);
	values[1] = CStringGetTextDatum(kid.data);
	values[2] = CStringGetTextDatum(JoseAlgName(alg));
	values[3] = CStringGetTextDatum(jwk.data);
	if (SPI_execute_with_args("INSERT INTO connector.signing_key (app, kid, alg, jwk) "
							  "VALUES ($1, $2, $3, $4::jsonb)",
							  4, types1, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the signing key");
	/*
	 * A generic plan, so the private key stays a parameter: a custom or
	 * one-shot plan would fold it into a constant, which EXPLAIN VERBOSE of
	 * auto_explain.log_nested_statements would print to the server log.
	 */
	plan = SPI_prepare_cursor("INSERT INTO connector.signing_key_secret (kid, private_key) "
							  "VALUES ($1, $2)",
							  2, types2, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "could not store the signing key");
	values[0] = CStringGetTextDatum(kid.data);
	values[1] = PointerGetDatum(secret);
	if (SPI_execute_plan(plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the signing key");
	SPI_freeplan(plan);
	SPI_finish();

	memset(VARDATA(secret), 0, derlen);
	pfree(secret);
	PG_RETURN_TEXT_P(cstring_to_text(kid.data));
}

/*
 * The parsed private key of kid: from the cache, or read from
 * connector.signing_key_secret (the caller is connected to SPI).  A kid
 * without a private key (retired meanwhile) is object_not_in_prerequisite_state.
 */
static EVP_PKEY *
JoseLoadKey(const char *kid, JoseAlg alg)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	bytea	   *der;
	unsigned char *copy;
	const unsigned char *p;
	size_t		len;
	EVP_PKEY   *pkey;
	JoseCachedKey *slot;

	for (int i = 0; i < KEY_CACHE_SIZE; i++)
	{
		if (key_cache[i].pkey != NULL && key_cache[i].alg == alg &&
			strcmp(key_cache[i].kid, kid) == 0)
			return key_cache[i].pkey;
	}
	if (strlen(kid) > JOSE_KID_MAXLEN)
		elog(ERROR, "signing key id too long");

	values[0] = CStringGetTextDatum(kid);
	if (SPI_execute_with_args("SELECT s.private_key FROM connector.signing_key_secret s "
							  "WHERE s.kid = $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the signing key");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("signing key \"%s\" has no private key", kid),
				 errdetail("It was retired.")));
	der = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	len = VARSIZE_ANY_EXHDR(der);
	copy = palloc(len);
	memcpy(copy, VARDATA_ANY(der), len);
	p = copy;
	ERR_clear_error();
	pkey = d2i_AutoPrivateKey(NULL, &p, (long) len);
	memset(copy, 0, len);
	pfree(copy);
	if (pkey != NULL && !EVP_PKEY_is_a(pkey, alg == JOSE_ES256 ? "EC" : "RSA"))
	{
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	if (pkey == NULL)
		JoseReportOpenSSL("read a signing key");

	slot = &key_cache[key_cache_next];
	key_cache_next = (key_cache_next + 1) % KEY_CACHE_SIZE;
	if (slot->pkey != NULL)
		EVP_PKEY_free(slot->pkey);
	strlcpy(slot->kid, kid, sizeof(slot->kid));
	slot->alg = alg;
	slot->pkey = pkey;
	return pkey;
}

/*
 * Append the compact JWS of payload (a JSON object) signed with key kid:
 * header {"typ":"secevent+jwt","alg":…,"kid":…}, RFC 7515 section 7.1.
 * ES256 signatures are R || S, 32 bytes each (RFC 7518 section 3.4), not
 * the DER OpenSSL produces.  The caller is connected to SPI.
 */
void
JoseAppendJws(StringInfo out, const char *kid, JoseAlg alg,
			  const char *payload, size_t payloadlen)
{
	EVP_PKEY   *pkey = JoseLoadKey(kid, alg);
	StringInfoData header;
	int			start = out->len;
	EVP_MD_CTX *md;
	unsigned char sig[1024];
	size_t		siglen = sizeof(sig);
	unsigned char raw[2 * EC_COORD_BYTES];
	bool		ok;

	initStringInfo(&header);
	appendStringInfo(&header, "{\"typ\":\"secevent+jwt\",\"alg\":\"%s\",\"kid\":",
					 JoseAlgName(alg));
	escape_json(&header, kid);
	appendStringInfoChar(&header, '}');
	JoseAppendBase64Url(out, (unsigned char *) header.data, header.len);
	appendStringInfoChar(out, '.');
	JoseAppendBase64Url(out, (const unsigned char *) payload, payloadlen);
	pfree(header.data);

	ERR_clear_error();
	md = EVP_MD_CTX_new();
	ok = md != NULL &&
		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
		EVP_DigestSign(md, sig, &siglen, (unsigned char *) out->data + start,
					   out->len - start) == 1;
	EVP_MD_CTX_free(md);
	if (ok && alg == JOSE_ES256)
	{
		const unsigned char *p = sig;
		ECDSA_SIG  *es = d2i_ECDSA_SIG(NULL, &p, (long) siglen);
		const BIGNUM *r;
		const BIGNUM *s;

		ok = es != NULL;
		if (ok)
		{
			ECDSA_SIG_get0(es, &r, &s);
			ok = BN_bn2binpad(r, raw, EC_COORD_BYTES) == EC_COORD_BYTES &&
				BN_bn2binpad(s, raw + EC_COORD_BYTES, EC_COORD_BYTES) == EC_COORD_BYTES;
		}
		ECDSA_SIG_free(es);
	}
	if (!ok)
		JoseReportOpenSSL("sign a security event token");

	appendStringInfoChar(out, '.');
	if (alg == JOSE_ES256)
		JoseAppendBase64Url(out, raw, sizeof(raw));
	else
		JoseAppendBase64Url(out, sig, siglen);
}
