/*-------------------------------------------------------------------------
 *
 * webhook_json.c
 *	  JSON handling for the dispatcher with jansson.
 *
 * Kept in its own translation unit: jansson's json_object() collides with
 * PostgreSQL's json_object() in utils/builtins.h.
 *
 * IDENTIFICATION
 *	  src/webhook_json.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <jansson.h>

#include "connector.h"

/*
 * Append an endpoint's extra static headers, given as a JSON object of
 * string values (validated by add_endpoint), to a header list.
 */
struct curl_slist *
WebhookExtraHeaders(struct curl_slist *list, const char *json)
{
	json_error_t err;
	json_t	   *obj;
	const char *name;
	json_t	   *value;

	if (json == NULL || json[0] == '\0')
		return list;
	obj = json_loads(json, 0, &err);
	if (obj == NULL || !json_is_object(obj))
	{
		if (obj)
			json_decref(obj);
		ereport(WARNING,
				(errmsg("ignoring malformed endpoint headers option"),
				 errdetail("%s", obj ? "not a JSON object" : err.text)));
		return list;
	}
	json_object_foreach(obj, name, value)
	{
		if (json_is_string(value))
			list = HttpAddHeader(list, name, json_string_value(value));
	}
	json_decref(obj);
	return list;
}
