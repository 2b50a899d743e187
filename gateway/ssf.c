/*-------------------------------------------------------------------------
 *
 * ssf.c
 *	  The Shared Signals transmitter endpoints of connector-gateway (spec
 *	  section 12): SSF 1.0 discovery, the JWK Set, stream management,
 *	  status, subjects, verification and RFC 8936 poll.
 *
 * Every rule is in the database (sql/parts/78_ssf_streams.sql): a request
 * becomes connector.scim_session, which checks the bearer token, and one
 * connector.ssf_* call, pipelined in one implicit transaction, so the call
 * acts for the receiver holding the token.  Discovery and the key set need
 * no token (SSF 1.0 section 7: receivers read them before they have one).
 *
 * URLs, for the issuer https://host:port/ssf/<app>:
 *	 GET /.well-known/ssf-configuration/ssf/<app>	metadata
 *	 GET /ssf/<app>/jwks.json						public keys
 *	 POST|GET|PATCH|PUT|DELETE /ssf/<app>/stream	configuration
 *	 GET|POST /ssf/<app>/status						status
 *	 POST /ssf/<app>/subjects:add, subjects:remove	subjects
 *	 POST /ssf/<app>/verify							verification
 *	 POST /ssf/<app>/poll/<stream_id>				RFC 8936 poll
 *
 * Errors are {"err": ..., "description": ...} (the shape of RFC 8935 and
 * 8936 errors) in application/json.
 *
 * IDENTIFICATION
 *	  gateway/ssf.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <microhttpd.h>

#define SSF_TYPE		"application/json"
#define SSF_WELL_KNOWN	"/.well-known/ssf-configuration/ssf/"
#define SSF_MAX_EVENTS	1000	/* maxEvents above are clamped (docs/ssf.md) */
#define SSF_LONG_POLL_MS 5000	/* returnImmediately false: wait at most this */
#define SSF_POLL_STEP_MS 250

#define Q_SESSION "SELECT connector.scim_session($1, $2)"

typedef struct SsfCtx
{
	struct MHD_Connection *conn;
	const char *method;
	const char *token;
	char	   *app;
	char		issuer[800];
	ScimResponse *resp;
} SsfCtx;

/* Is this URL one of the transmitter's? */
bool
ssf_route(const char *url)
{
	return strncmp(url, "/ssf/", 5) == 0 || strncmp(url, SSF_WELL_KNOWN, strlen(SSF_WELL_KNOWN)) == 0;
}

/* Answer with an error body of RFC 8935/8936 shape. */
static void
ssf_error(ScimResponse *resp, int status, const char *err, const char *description)
{
	json_t	   *o = json_object();
	json_t	   *d = description ? json_string(description) : NULL;

	json_object_set_new(o, "err", json_string(err));
	if (description && d == NULL)
		d = json_string("(the message is not valid UTF-8)");
	if (d)
		json_object_set_new(o, "description", d);
	free(resp->body);
	resp->body = json_dumps(o, JSON_COMPACT);
	resp->status = status;
	resp->content_type = SSF_TYPE;
	resp->www_authenticate = status == 401;
	json_decref(o);
}

/* Answer with a JSON text from the database (or no body). */
static void
ssf_reply(ScimResponse *resp, int status, const char *json_text)
{
	free(resp->body);
	resp->body = json_text ? strdup(json_text) : NULL;
	resp->status = status;
	resp->content_type = SSF_TYPE;
}

/*
 * The HTTP answer to an error of the API: the SQLSTATE decides the status
 * (docs/ssf.md lists them); the message is the API's own, never SQL text.
 */
static void
ssf_db_error(ScimResponse *resp, const DbError *err, bool verify)
{
	const char *s = err->sqlstate;
	const char *msg = err->message ? err->message : "the request failed";

	if (strcmp(s, "28000") == 0)
		ssf_error(resp, 401, "authentication_failed", "invalid bearer token");
	else if (strcmp(s, "42704") == 0)
		ssf_error(resp, 404, "not_found", msg);
	else if (strcmp(s, "42501") == 0)
		ssf_error(resp, 403, "access_denied", msg);
	else if (strcmp(s, "54000") == 0 && verify)
		ssf_error(resp, 429, "too_many_requests", msg);
	else if (strncmp(s, "22", 2) == 0 || strcmp(s, "0A000") == 0 || strcmp(s, "42809") == 0 ||
			 strcmp(s, "54000") == 0)
		ssf_error(resp, 400, "invalid_request", msg);
	else if (strcmp(s, "55000") == 0)
		ssf_error(resp, 409, "conflict", msg);
	else if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "55P03") == 0 ||
			 strcmp(s, "53300") == 0 || strncmp(s, "08", 2) == 0 || strncmp(s, "57P0", 4) == 0)
	{
		ssf_error(resp, 503, "temporarily_unavailable", "the database is unavailable; try again");
		resp->retry_after = 1;
	}
	else
	{
		gw_log("ssf: unexpected SQLSTATE %s: %s", s, msg);
		ssf_error(resp, 500, "internal_error", "the request could not be served");
	}
}

/*
 * Run one API call, after scim_session when a token is needed, in one
 * implicit transaction.  Returns the call's single value (malloc'd, NULL
 * for SQL NULL or on failure, with *ok telling them apart).
 */
static char *
ssf_call(SsfCtx *c, bool with_token, bool verify, const char *sql, int nparams,
		 const char *const *params, bool *ok)
{
	DbError		err = {{0}};
	DbConn	   *db;
	DbQuery		q[2];
	PGresult   *res[2] = {NULL, NULL};
	int			n = 0;
	char	   *out = NULL;

	*ok = false;
	if ((db = db_acquire(&err)) == NULL)
	{
		ssf_db_error(c->resp, &err, false);
		db_error_clear(&err);
		return NULL;
	}
	if (with_token)
	{
		q[n].sql = Q_SESSION;
		q[n].nparams = 2;
		q[n].params[0] = c->app;
		q[n].params[1] = c->token;
		n++;
	}
	q[n].sql = sql;
	q[n].nparams = nparams;
	for (int i = 0; i < nparams; i++)
		q[n].params[i] = params[i];
	n++;
	if (!db_run(db, q, n, res, &err))
		ssf_db_error(c->resp, &err, verify);
	else
	{
		PGresult   *r = res[n - 1];

		if (with_token && PQntuples(res[0]) == 1 && !PQgetisnull(res[0], 0, 0))
			snprintf(c->resp->token_name, sizeof(c->resp->token_name), "%s", PQgetvalue(res[0], 0, 0));
		if (PQntuples(r) == 1 && PQnfields(r) == 1 && !PQgetisnull(r, 0, 0))
			out = strdup(PQgetvalue(r, 0, 0));
		*ok = true;
	}
	for (int i = 0; i < n; i++)
		PQclear(res[i]);
	db_error_clear(&err);
	db_release(db);
	return out;
}

/* The request body as a JSON object; answers 400 and returns NULL if not. */
static json_t *
ssf_body(SsfCtx *c, const char *body, size_t len, bool empty_ok)
{
	json_error_t jerr;
	json_t	   *j;

	if (len == 0 && empty_ok)
		return json_object();
	j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL || !json_is_object(j))
	{
		json_decref(j);
		ssf_error(c->resp, 400, "invalid_request", "the request body must be a JSON object");
		return NULL;
	}
	return j;
}

/* A string member of a body, or NULL; answers 400 when present but not a string. */
static bool
ssf_string(SsfCtx *c, json_t *o, const char *key, bool required, const char **out)
{
	json_t	   *v = json_object_get(o, key);
	char		buf[120];

	*out = NULL;
	if (v == NULL || json_is_null(v))
	{
		if (!required)
			return true;
		snprintf(buf, sizeof(buf), "\"%s\" is required", key);
		ssf_error(c->resp, 400, "invalid_request", buf);
		return false;
	}
	if (!json_is_string(v) || memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
	{
		snprintf(buf, sizeof(buf), "\"%s\" must be a string", key);
		ssf_error(c->resp, 400, "invalid_request", buf);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* GET /.well-known/ssf-configuration/ssf/<app> */
static void
ssf_metadata(SsfCtx *c)
{
	const char *p[2] = {c->app, c->issuer};
	bool		ok;
	char	   *out = ssf_call(c, false, false, "SELECT connector.ssf_configuration($1, $2)", 2, p, &ok);

	if (ok)
		ssf_reply(c->resp, 200, out);
	free(out);
}

/* GET /ssf/<app>/jwks.json */
static void
ssf_jwks(SsfCtx *c)
{
	const char *p[1] = {c->app};
	bool		ok;
	char	   *out = ssf_call(c, false, false, "SELECT connector.jwks($1)", 1, p, &ok);

	if (ok)
		ssf_reply(c->resp, 200, out);
	free(out);
}

/* The configuration endpoint: create, read, update, replace, delete. */
static void
ssf_stream(SsfCtx *c, const char *body, size_t len)
{
	const char *sid = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "stream_id");
	const char *m = c->method;
	bool		ok;
	char	   *out = NULL;

	if (strcmp(m, "GET") == 0)
	{
		const char *p[2] = {c->app, sid};

		out = ssf_call(c, true, false, "SELECT connector.ssf_stream_get($1, $2)", 2, p, &ok);
		if (ok)
			ssf_reply(c->resp, 200, out);
	}
	else if (strcmp(m, "DELETE") == 0)
	{
		const char *p[2] = {c->app, sid};

		if (sid == NULL)
		{
			ssf_error(c->resp, 400, "invalid_request", "the stream_id query parameter is required");
			return;
		}
		out = ssf_call(c, true, false, "SELECT connector.ssf_stream_delete($1, $2)", 2, p, &ok);
		if (ok)
			ssf_reply(c->resp, 204, NULL);
	}
	else if (strcmp(m, "POST") == 0 || strcmp(m, "PATCH") == 0 || strcmp(m, "PUT") == 0)
	{
		json_t	   *j = ssf_body(c, body, len, strcmp(m, "POST") == 0);
		char	   *text;

		if (j == NULL)
			return;
		text = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (strcmp(m, "POST") == 0)
		{
			const char *p[3] = {c->app, text, c->issuer};

			out = ssf_call(c, true, false, "SELECT connector.ssf_stream_create($1, $2::jsonb, $3)", 3, p, &ok);
			if (ok)
				ssf_reply(c->resp, 201, out);
		}
		else
		{
			const char *p[2] = {c->app, text};

			out = ssf_call(c, true, false, strcmp(m, "PATCH") == 0
						   ? "SELECT connector.ssf_stream_update($1, $2::jsonb)"
						   : "SELECT connector.ssf_stream_replace($1, $2::jsonb)", 2, p, &ok);
			if (ok)
				ssf_reply(c->resp, 200, out);
		}
		free(text);
	}
	else
		ssf_error(c->resp, 405, "invalid_request", "method not allowed here");
	free(out);
}

/* The status endpoint: GET ?stream_id=, POST {stream_id, status, reason}. */
static void
ssf_status(SsfCtx *c, const char *body, size_t len)
{
	bool		ok;
	char	   *out = NULL;

	if (strcmp(c->method, "GET") == 0)
	{
		const char *sid = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "stream_id");
		const char *p[2] = {c->app, sid};

		if (sid == NULL)
		{
			ssf_error(c->resp, 400, "invalid_request", "the stream_id query parameter is required");
			return;
		}
		out = ssf_call(c, true, false, "SELECT connector.ssf_stream_status($1, $2)", 2, p, &ok);
		if (ok)
			ssf_reply(c->resp, 200, out);
	}
	else if (strcmp(c->method, "POST") == 0)
	{
		json_t	   *j = ssf_body(c, body, len, false);
		const char *p[4] = {c->app, NULL, NULL, NULL};

		if (j == NULL)
			return;
		if (ssf_string(c, j, "stream_id", true, &p[1]) && ssf_string(c, j, "status", true, &p[2]) &&
			ssf_string(c, j, "reason", false, &p[3]))
		{
			out = ssf_call(c, true, false, "SELECT connector.ssf_stream_status($1, $2, $3, $4)", 4, p, &ok);
			if (ok)
				ssf_reply(c->resp, 200, out);
		}
		json_decref(j);
	}
	else
		ssf_error(c->resp, 405, "invalid_request", "method not allowed here");
	free(out);
}

/* POST subjects:add / subjects:remove {stream_id, subject[, verified]} */
static void
ssf_subject(SsfCtx *c, bool add, const char *body, size_t len)
{
	json_t	   *j;
	json_t	   *subject;
	json_t	   *verified;
	const char *p[4] = {c->app, NULL, NULL, NULL};
	char	   *text = NULL;
	bool		ok;
	char	   *out;

	if (strcmp(c->method, "POST") != 0)
	{
		ssf_error(c->resp, 405, "invalid_request", "method not allowed here");
		return;
	}
	if ((j = ssf_body(c, body, len, false)) == NULL)
		return;
	if (!ssf_string(c, j, "stream_id", true, &p[1]))
		goto out;
	subject = json_object_get(j, "subject");
	if (!json_is_object(subject))
	{
		ssf_error(c->resp, 400, "invalid_request", "\"subject\" must be a JSON object");
		goto out;
	}
	text = json_dumps(subject, JSON_COMPACT);
	p[2] = text;
	verified = json_object_get(j, "verified");
	if (add && verified != NULL && !json_is_null(verified))
	{
		if (!json_is_boolean(verified))
		{
			ssf_error(c->resp, 400, "invalid_request", "\"verified\" must be a boolean");
			goto out;
		}
		p[3] = json_is_true(verified) ? "true" : "false";
	}
	out = ssf_call(c, true, false, add
				   ? "SELECT connector.ssf_subject_add($1, $2, $3::jsonb, $4::boolean)"
				   : "SELECT connector.ssf_subject_remove($1, $2, $3::jsonb)", add ? 4 : 3, p, &ok);
	free(out);
	if (ok)
		ssf_reply(c->resp, add ? 200 : 204, NULL);
out:
	free(text);
	json_decref(j);
}

/* POST verify {stream_id[, state]}: 204, the SET follows on the stream. */
static void
ssf_verify(SsfCtx *c, const char *body, size_t len)
{
	json_t	   *j;
	const char *p[3] = {c->app, NULL, NULL};
	bool		ok;
	char	   *out;

	if (strcmp(c->method, "POST") != 0)
	{
		ssf_error(c->resp, 405, "invalid_request", "method not allowed here");
		return;
	}
	if ((j = ssf_body(c, body, len, false)) == NULL)
		return;
	if (ssf_string(c, j, "stream_id", true, &p[1]) && ssf_string(c, j, "state", false, &p[2]))
	{
		out = ssf_call(c, true, true, "SELECT connector.ssf_verify($1, $2, $3)", 3, p, &ok);
		free(out);
		if (ok)
			ssf_reply(c->resp, 204, NULL);
	}
	json_decref(j);
}

/* Sleep ms milliseconds. */
static void
ssf_sleep(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/*
 * POST poll/<stream_id>: RFC 8936.  Acknowledgements and errors go with
 * the first call; with returnImmediately false (the default) and nothing
 * to return, the call is repeated, without them, for up to 5 s.
 */
static void
ssf_poll(SsfCtx *c, const char *sid, const char *body, size_t len)
{
	json_t	   *j;
	json_t	   *v;
	char		maxbuf[16];
	const char *p[6] = {c->app, sid, NULL, "false", NULL, NULL};
	char	   *ack_text = NULL;
	char	   *errs_text = NULL;
	bool		immediately = false;
	int			waited = 0;

	if (strcmp(c->method, "POST") != 0)
	{
		ssf_error(c->resp, 405, "invalid_request", "method not allowed here");
		return;
	}
	if ((j = ssf_body(c, body, len, true)) == NULL)
		return;
	v = json_object_get(j, "maxEvents");
	if (v != NULL && !json_is_null(v))
	{
		json_int_t	n;

		if (!json_is_integer(v))
		{
			ssf_error(c->resp, 400, "invalid_request", "\"maxEvents\" must be an integer");
			goto out;
		}
		n = json_integer_value(v);
		/* clamped here, so any integer fits; a negative one is the API's to refuse */
		snprintf(maxbuf, sizeof(maxbuf), "%d", n > SSF_MAX_EVENTS ? SSF_MAX_EVENTS : n < 0 ? -1 : (int) n);
		p[2] = maxbuf;
	}
	v = json_object_get(j, "returnImmediately");
	if (v != NULL && !json_is_null(v))
	{
		if (!json_is_boolean(v))
		{
			ssf_error(c->resp, 400, "invalid_request", "\"returnImmediately\" must be a boolean");
			goto out;
		}
		immediately = json_is_true(v);
	}
	p[3] = immediately ? "true" : "false";
	v = json_object_get(j, "ack");
	if (v != NULL && !json_is_null(v))
	{
		size_t		i;
		json_t	   *e;

		if (!json_is_array(v))
		{
			ssf_error(c->resp, 400, "invalid_request", "\"ack\" must be an array of jti strings");
			goto out;
		}
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e) || memchr(json_string_value(e), '\0', json_string_length(e)))
			{
				ssf_error(c->resp, 400, "invalid_request", "\"ack\" must be an array of jti strings");
				goto out;
			}
		}
		ack_text = json_dumps(v, JSON_COMPACT);
		p[4] = ack_text;
	}
	v = json_object_get(j, "setErrs");
	if (v != NULL && !json_is_null(v))
	{
		errs_text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		p[5] = errs_text;
	}
	for (;;)
	{
		bool		ok;
		char	   *out = ssf_call(c, true, false,
								   "SELECT connector.ssf_poll($1, $2, $3::int, $4::boolean,"
								   " ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6::jsonb)",
								   6, p, &ok);
		json_t	   *r;

		if (!ok)
			break;
		r = out ? json_loads(out, 0, NULL) : NULL;
		if (!immediately && waited < SSF_LONG_POLL_MS && r != NULL &&
			json_object_size(json_object_get(r, "sets")) == 0 &&
			!json_is_true(json_object_get(r, "moreAvailable")) &&
			!(p[2] != NULL && strcmp(p[2], "0") == 0))
		{
			/* nothing yet: the acknowledgements are done, wait for events */
			json_decref(r);
			free(out);
			p[4] = NULL;
			p[5] = NULL;
			ssf_sleep(SSF_POLL_STEP_MS);
			waited += SSF_POLL_STEP_MS;
			continue;
		}
		json_decref(r);
		ssf_reply(c->resp, 200, out);
		free(out);
		break;
	}
out:
	free(ack_text);
	free(errs_text);
	json_decref(j);
}

/*
 * Serve one request of the transmitter: work out the application and the
 * issuer (the scheme and Host of the request, as for SCIM locations), check
 * that a token is present where one is needed, and route.
 */
void
ssf_handle(struct MHD_Connection *conn, const char *url, const char *method,
		   const char *body, size_t body_len, ScimResponse *resp)
{
	SsfCtx		c;
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	const char *rest;
	const char *slash;
	bool		well_known = strncmp(url, SSF_WELL_KNOWN, strlen(SSF_WELL_KNOWN)) == 0;

	memset(&c, 0, sizeof(c));
	c.conn = conn;
	c.method = method;
	c.resp = resp;
	rest = url + (well_known ? strlen(SSF_WELL_KNOWN) : 5);
	slash = strchr(rest, '/');
	c.app = slash ? strndup(rest, slash - rest) : strdup(rest);
	rest = slash ? slash + 1 : "";
	if (c.app[0] == '\0' || strlen(c.app) > 200 || strpbrk(c.app, "\"\\<> \t\r\n?#%") != NULL)
	{
		ssf_error(resp, 404, "not_found", "no such application");
		goto out;
	}
	if (host == NULL || strlen(host) > 500 || strpbrk(host, "\"\\<> \t\r\n/") != NULL)
		host = "localhost";
	snprintf(c.issuer, sizeof(c.issuer), "%s://%s/ssf/%s",
			 gw_scheme(conn), host, c.app);
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
	{
		c.token = auth + 7;
		while (*c.token == ' ')
			c.token++;
		if (*c.token == '\0')
			c.token = NULL;
	}

	if (well_known)
	{
		if (*rest != '\0')
			ssf_error(resp, 404, "not_found", "no such endpoint");
		else if (strcmp(method, "GET") != 0)
			ssf_error(resp, 405, "invalid_request", "only GET is allowed here");
		else
			ssf_metadata(&c);
		goto out;
	}
	if (strcmp(rest, "jwks.json") == 0)
	{
		if (strcmp(method, "GET") != 0)
			ssf_error(resp, 405, "invalid_request", "only GET is allowed here");
		else
			ssf_jwks(&c);
		goto out;
	}
	if (strcmp(rest, "stream") != 0 && strcmp(rest, "status") != 0 &&
		strcmp(rest, "subjects:add") != 0 && strcmp(rest, "subjects:remove") != 0 &&
		strcmp(rest, "verify") != 0 && strncmp(rest, "poll/", 5) != 0)
	{
		ssf_error(resp, 404, "not_found", "no such endpoint");
		goto out;
	}
	if (c.token == NULL)
	{
		ssf_error(resp, 401, "authentication_failed", "a bearer token is required");
		goto out;
	}
	if (strcmp(rest, "stream") == 0)
		ssf_stream(&c, body, body_len);
	else if (strcmp(rest, "status") == 0)
		ssf_status(&c, body, body_len);
	else if (strcmp(rest, "subjects:add") == 0)
		ssf_subject(&c, true, body, body_len);
	else if (strcmp(rest, "subjects:remove") == 0)
		ssf_subject(&c, false, body, body_len);
	else if (strcmp(rest, "verify") == 0)
		ssf_verify(&c, body, body_len);
	else if (rest[5] == '\0' || strchr(rest + 5, '/') != NULL)
		ssf_error(resp, 404, "not_found", "no such endpoint");
	else
		ssf_poll(&c, rest + 5, body, body_len);
out:
	free(c.app);
}
