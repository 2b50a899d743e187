/*-------------------------------------------------------------------------
 *
 * ssf_stream.c
 *	  The receiver of an SSF stream management call: the name of the bearer
 *	  token that connector.scim_session checked earlier in the transaction.
 *
 * The stream functions of sql/parts/78_ssf_streams.sql act for one
 * receiver, the token's holder, and only on that receiver's streams (SSF
 * 1.0 section 8: authorisation associates a receiver with its streams).
 * The token was checked by scim_session, which leaves the transaction's
 * client mark "scim:<token name>" (src/origin.c); this reads it back.
 *
 * IDENTIFICATION
 *	  src/ssf_stream.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "connector.h"

PG_FUNCTION_INFO_V1(connector_ssf_receiver);

/*
 * connector._ssf_receiver(app text) returns text
 *
 * The token name of the transaction's SCIM session, or NULL when
 * scim_session has not been called in it or checked a token of another
 * application (a receiver named "okta" of one app is not "okta" of another).  Superuser-only in C as well as
 * by privilege, like the marks it reads: the stream functions call it as
 * the extension's owner.
 */
Datum
connector_ssf_receiver(PG_FUNCTION_ARGS)
{
	uint64		generation;
	const char *client;
	const char *app;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _ssf_receiver"),
				 errdetail("Only the connector API may read the client of a transaction.")));
	client = ConnectorOriginClient(&generation);
	app = ConnectorOriginClientApp();
	if (client == NULL || strncmp(client, "scim:", 5) != 0 || app == NULL ||
		PG_ARGISNULL(0) || strcmp(app, text_to_cstring(PG_GETARG_TEXT_PP(0))) != 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(client + 5));
}
