/*-------------------------------------------------------------------------
 *
 * scim.c
 *	  SCIM resources of connector-gateway: User and Group rendering,
 *	  discovery documents, ETags, list responses, errors, and the handlers
 *	  that turn each SCIM operation into calls of the SQL API.
 *
 * IDENTIFICATION
 *	  gateway/scim.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An RFC 7644 section 3.12 error body: status as a string, never SQL text. */
void
scim_error(ScimResponse *resp, int status, const char *scim_type, const char *detail)
{
	json_t	   *o = json_object();
	char		st[8];

	snprintf(st, sizeof(st), "%d", status);
	json_object_set_new(o, "schemas", json_pack("[s]", SCIM_ERROR));
	json_object_set_new(o, "status", json_string(st));
	if (scim_type)
		json_object_set_new(o, "scimType", json_string(scim_type));
	if (detail)
		json_object_set_new(o, "detail", json_string(detail));
	free(resp->body);
	resp->body = json_dumps(o, JSON_COMPACT);
	resp->status = status;
	json_decref(o);
}

void
scim_response_free(ScimResponse *resp)
{
	free(resp->body);
	free(resp->location);
	free(resp->etag);
	memset(resp, 0, sizeof(*resp));
}

void
scim_handle(const ScimRequest *req, ScimResponse *resp)
{
	scim_error(resp, 501, NULL, "not implemented yet");
}
