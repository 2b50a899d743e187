/*-------------------------------------------------------------------------
 *
 * sign.c
 *	  Standard Webhooks signatures: HMAC-SHA256 over "id.timestamp.body".
 *
 * OpenSSL's libcrypto is used rather than PostgreSQL's pg_hmac, which needs
 * a resource owner and so cannot run in worker code outside a transaction.
 *
 * IDENTIFICATION
 *	  src/sign.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/base64.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "connector.h"

PG_FUNCTION_INFO_V1(connector_sign);

/*
 * Append "v1,<base64 signature>" for one key to buf.
 */
void
ConnectorAppendSignature(StringInfo buf, const char *msgid, int64 timestamp,
						 const char *body, size_t bodylen,
						 const unsigned char *key, size_t keylen)
{
	StringInfoData content;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char		b64[128];
	int			n;

	initStringInfo(&content);
	appendStringInfo(&content, "%s." INT64_FORMAT ".", msgid, timestamp);
	appendBinaryStringInfo(&content, body, bodylen);

	if (HMAC(EVP_sha256(), key, (int) keylen,
			 (const unsigned char *) content.data, content.len,
			 mac, &maclen) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute webhook signature")));
	pfree(content.data);

	n = pg_b64_encode((const char *) mac, (int) maclen, b64, sizeof(b64) - 1);
	if (n < 0)
		elog(ERROR, "base64 encoding of a signature failed");
	b64[n] = '\0';
	appendStringInfo(buf, "v1,%s", b64);
}

/*
 * connector._sign(msgid text, ts bigint, body text, key bytea) returns text
 *
 * The webhook-signature value for one key; lets tests check the signer
 * against the published Standard Webhooks test vector.
 */
Datum
connector_sign(PG_FUNCTION_ARGS)
{
	char	   *msgid = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		ts = PG_GETARG_INT64(1);
	text	   *body = PG_GETARG_TEXT_PP(2);
	bytea	   *key = PG_GETARG_BYTEA_PP(3);
	StringInfoData buf;

	initStringInfo(&buf);
	ConnectorAppendSignature(&buf, msgid, ts, VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body),
							 (unsigned char *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}
