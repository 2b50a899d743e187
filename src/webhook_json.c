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

/*
 * The receiver's reason from an RFC 8935 error response, {"err": "...",
 * "description": "..."}: "<err>: <description>" (or "<err>"), palloc'd, at
 * most 300 bytes and with control characters replaced, since it goes into
 * connector.status as the receiver wrote it.  NULL when the body is not such
 * an object.
 */
char *
SetErrorText(const char *body, size_t len)
{
	json_error_t jerr;
	json_t	   *obj;
	json_t	   *e;
	json_t	   *d;
	char	   *text = NULL;

	if (body == NULL || len == 0)
		return NULL;
	obj = json_loadb(body, len, 0, &jerr);
	if (obj == NULL)
		return NULL;
	e = json_object_get(obj, "err");
	d = json_object_get(obj, "description");
	if (json_is_object(obj) && json_is_string(e))
	{
		char	   *p;
		int			n;

		if (json_is_string(d))
			text = psprintf("%s: %s", json_string_value(e), json_string_value(d));
		else
			text = pstrdup(json_string_value(e));
		/* cut at 300 bytes, not inside a UTF-8 character */
		n = strlen(text);
		if (n > 300)
		{
			n = 300;
			while (n > 0 && (text[n] & 0xC0) == 0x80)
				n--;
			text[n] = '\0';
		}
		for (p = text; *p; p++)
			if ((unsigned char) *p < 0x20 || *p == 0x7f)
				*p = ' ';
	}
	json_decref(obj);
	return text;
}
