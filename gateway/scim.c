/*-------------------------------------------------------------------------
 *
 * scim.c
 *	  SCIM resources of connector-gateway: User and Group rendering,
 *	  discovery documents, ETags, list responses, errors, and the handlers
 *	  that turn each SCIM operation into calls of the SQL API inside one
 *	  transaction that began with connector.scim_session.
 *
 * IDENTIFICATION
 *	  gateway/scim.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include "gateway.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define Q_SESSION "SELECT connector.scim_session($1, $2)"
#define Q_MAPPING "SELECT connector.scim_mapping($1)::text"
#define Q_USERS "SELECT total, id, name, enabled, kind, attributes::text, entitlements::text " \
	"FROM connector.scim_accounts($1, $2::jsonb, $3, $4::bigint, $5::int, $6::boolean)"
#define Q_GROUPS "SELECT total, id, name, attributes::text, members::text " \
	"FROM connector.scim_entitlements($1, $2::jsonb, $3, $4::bigint, $5::int, $6::boolean, $7::boolean)"
#define Q_LOCK "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('scim:' || $1), " \
	"pg_catalog.hashtext($2 || $3))"
#define Q_APPLY "SELECT connector.apply($1, $2::jsonb)::text"

/* One request being served. */
typedef struct Ctx
{
	const ScimRequest *req;
	ScimResponse *resp;
	DbConn	   *db;
	char	   *app;
	bool		users;			/* Users (true) or Groups */
	char	   *id;				/* resource id from the URL, or NULL */
	json_t	   *mapping;
	char	   *mapping_text;
} Ctx;

/*
 * The last mapping seen per app.  Only a hint: a list request translates
 * its filter with it so session, mapping and query go in one round trip,
 * and the mapping returned by that same round trip is compared with it (a
 * changed mapping repeats the query).  Nothing is ever answered from it.
 */
#define MAPPING_CACHE 64
static struct
{
	char	   *app;
	char	   *text;
}			mapping_cache[MAPPING_CACHE];
static int	mapping_cache_next;
static pthread_mutex_t mapping_lock = PTHREAD_MUTEX_INITIALIZER;

static char *
cached_mapping(const char *app)
{
	char	   *r = NULL;

	pthread_mutex_lock(&mapping_lock);
	for (int i = 0; i < MAPPING_CACHE; i++)
		if (mapping_cache[i].app && strcmp(mapping_cache[i].app, app) == 0)
		{
			r = strdup(mapping_cache[i].text);
			break;
		}
	pthread_mutex_unlock(&mapping_lock);
	return r;
}

static void
remember_mapping(const char *app, const char *text)
{
	int			slot = -1;

	pthread_mutex_lock(&mapping_lock);
	for (int i = 0; i < MAPPING_CACHE; i++)
		if (mapping_cache[i].app && strcmp(mapping_cache[i].app, app) == 0)
			slot = i;
	if (slot < 0)
	{
		slot = mapping_cache_next;
		mapping_cache_next = (mapping_cache_next + 1) % MAPPING_CACHE;
		free(mapping_cache[slot].app);
		mapping_cache[slot].app = strdup(app);
	}
	free(mapping_cache[slot].text);
	mapping_cache[slot].text = strdup(text);
	pthread_mutex_unlock(&mapping_lock);
}

/* ---- errors ---- */

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
	{
		json_t	   *d = json_string(detail);

		/* a client's bytes that are not UTF-8 */
		if (d == NULL)
			d = json_string("(the request contains text that is not valid UTF-8)");
		json_object_set_new(o, "detail", d);
	}
	free(resp->body);
	resp->body = json_dumps(o, JSON_COMPACT);
	resp->status = status;
	resp->www_authenticate = status == 401;
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

/*
 * A database error as the SCIM response: the status of the contract's
 * table, the API's own message as detail (it names objects, never SQL), and
 * for 403 the hint, which names the mapping key.  Unexpected errors are
 * logged here and answered with a generic 500.
 */
static void
db_fail(Ctx *c, DbError *err, bool filter_call)
{
	const char *st;
	int			status = db_http_status(err, filter_call, &st);
	char		buf[700];

	/* Groups of an application whose grants name no entitlements table */
	if (!c->users && strcmp(err->sqlstate, "0A000") == 0)
	{
		snprintf(buf, sizeof(buf), "%.500s", err->message ? err->message : "no groups");
		scim_error(c->resp, 404, NULL, buf);
		return;
	}
	/*
	 * A constraint of the application's tables: the client's value.  The
	 * message names the constraint or index and the detail the key
	 * (PostgreSQL's words, apply() adds its operation), so the client gets
	 * a generic detail, except the extension's own "already exists" message.
	 */
	if (strncmp(err->sqlstate, "23", 2) == 0)
	{
		const char *m = err->message ? err->message : "";

		if (strcmp(err->sqlstate, "23505") == 0 && strstr(m, " already exists in application \"") != NULL &&
			strstr(m, "violates") == NULL && strstr(m, "duplicate key") == NULL)
		{
			snprintf(buf, sizeof(buf), "%.500s", m);
			scim_error(c->resp, 409, "uniqueness", buf);
		}
		else if (strcmp(err->sqlstate, "23505") == 0 || strcmp(err->sqlstate, "23P01") == 0)
			scim_error(c->resp, 409, "uniqueness",
					   "a value that must be unique in the application is already taken");
		else if (strcmp(err->sqlstate, "23502") == 0)
			scim_error(c->resp, 400, "invalidValue", "the application requires a value that is missing");
		else if (strcmp(err->sqlstate, "23503") == 0)
			scim_error(c->resp, 400, "invalidValue",
					   "a value refers to something the application does not have");
		else
			scim_error(c->resp, 400, "invalidValue", "a value is refused by a constraint of the application");
		return;
	}
	/* a program limit outside the filter: PostgreSQL's words name the index */
	if (strncmp(err->sqlstate, "54", 2) == 0 && !filter_call)
	{
		scim_error(c->resp, 400, "invalidValue", "a value is too large for the application");
		return;
	}
	switch (status)
	{
		case 401:
			snprintf(buf, sizeof(buf), "invalid bearer token%s%s",
					 err->detail ? ": " : "", err->detail ? err->detail : "");
			scim_error(c->resp, 401, NULL, buf);
			break;
		case 403:
			snprintf(buf, sizeof(buf), "%.300s%s%.300s", err->message ? err->message : "forbidden",
					 err->hint ? ". " : "", err->hint ? err->hint : "");
			scim_error(c->resp, 403, NULL, buf);
			break;
		case 503:
			scim_error(c->resp, 503, NULL, "the database is unavailable or busy; retry later");
			c->resp->retry_after = 1;
			if (strcmp(err->sqlstate, "40001") != 0 && strcmp(err->sqlstate, "40P01") != 0)
				gw_log("database: %s %s", err->sqlstate, err->message ? err->message : "");
			break;
		case 500:
			gw_log("unexpected database error %s: %s", err->sqlstate, err->message ? err->message : "");
			scim_error(c->resp, 500, NULL, "internal error");
			break;
		default:
			snprintf(buf, sizeof(buf), "%.500s", err->message ? err->message : "error");
			scim_error(c->resp, status, st, buf);
	}
}

/* Run a batch; false with the response set on error. */
static bool
run(Ctx *c, const DbQuery *q, int n, PGresult **res, bool filter_call)
{
	DbError		err = {{0}};

	if (db_run(c->db, q, n, res, &err))
		return true;
	db_fail(c, &err, filter_call);
	db_error_clear(&err);
	return false;
}

static void
clear_results(PGresult **res, int n)
{
	for (int i = 0; i < n; i++)
	{
		PQclear(res[i]);
		res[i] = NULL;
	}
}

/* ---- helpers ---- */

/* Percent-encode a URL path segment. */
static void
url_segment(char *out, size_t size, const char *s)
{
	size_t		o = 0;

	for (; *s && o + 4 < size; s++)
	{
		unsigned char ch = (unsigned char) *s;

		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~')
			out[o++] = ch;
		else
			o += snprintf(out + o, size - o, "%%%02X", ch);
	}
	out[o] = '\0';
}

static char *
location(Ctx *c, const char *type, const char *id)
{
	char		app[600],
				eid[1200],
			   *r;
	size_t		n;

	url_segment(app, sizeof(app), c->app);
	url_segment(eid, sizeof(eid), id);
	n = strlen(c->req->base_url) + strlen(app) + strlen(eid) + 40;
	r = malloc(n);
	snprintf(r, n, "%s/scim/v2/%s/%s/%s", c->req->base_url, app, type, eid);
	return r;
}

/* A mapped value as SCIM text: every mapped SCIM attribute is a string. */
static json_t *
as_string(json_t *v)
{
	char		buf[64];

	if (v == NULL || json_is_null(v))
		return NULL;
	if (json_is_string(v))
		return json_incref(v);
	if (json_is_integer(v))
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, sizeof(buf), "%s", json_is_true(v) ? "true" : "false");
	else
	{
		char	   *d = json_dumps(v, JSON_COMPACT);
		json_t	   *r = json_string(d ? d : "");

		free(d);
		return r;
	}
	return json_string(buf);
}

/* 64-bit FNV-1a: the weak ETag of the mapped state. */
static char *
etag_of(json_t *res)
{
	char	   *s = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
	uint64_t	h = 1469598103934665603ULL;
	char	   *r = malloc(32);

	for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++)
	{
		h ^= *p;
		h *= 1099511628211ULL;
	}
	free(s);
	snprintf(r, 32, "W/\"%016llx\"", (unsigned long long) h);
	return r;
}

static const char *
user_grants_attr(json_t *m)
{
	json_t	   *ug = json_object_get(m, "user_grants");

	return json_is_string(ug) ? json_string_value(ug) : "groups";
}

static bool
json_list_has(json_t *list, const char *s)
{
	size_t		i;
	json_t	   *v;

	json_array_foreach(list, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
		return true;
	return false;
}

/* A column the mapping lets update_account write. */
static bool
writable(json_t *m, const char *col, bool users)
{
	return json_list_has(json_object_get(m, users ? "writable" : "entitlement_writable"), col);
}

/* A mapping key naming a column (see the report: scim_mapping lacks them). */
static const char *
mapping_col(json_t *m, const char *key)
{
	json_t	   *v = json_object_get(m, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * Parse a mapping key "emails[type eq "work"].value" into attr, type and
 * sub; false for simple paths.
 */
static bool
split_multi(const char *key, char *attr, char *type, char *sub)
{
	const char *b = strchr(key, '[');
	const char *q1 = b ? strchr(b, '"') : NULL;
	const char *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
	const char *d = q2 ? strstr(q2, "].") : NULL;

	if (!b || !q1 || !q2 || !d || b - key >= 32 || q2 - q1 - 1 >= 32 || strlen(d + 2) >= 32)
		return false;
	memcpy(attr, key, b - key);
	attr[b - key] = '\0';
	memcpy(type, q1 + 1, q2 - q1 - 1);
	type[q2 - q1 - 1] = '\0';
	strcpy(sub, d + 2);
	return true;
}

/* The element of type t of a multi-valued attribute, created when asked. */
static json_t *
mv_element(json_t *res, const char *attr, const char *type, bool create, bool sole)
{
	json_t	   *arr = attr_get(res, attr);
	size_t		i;
	json_t	   *e;

	json_array_foreach(arr, i, e)
	{
		json_t	   *t = attr_get(e, "type");

		if (json_is_string(t) && strcasecmp(json_string_value(t), type) == 0)
			return e;
	}
	if (!create)
	{
		/*
		 * A client may send an email without a type: when the mapping has
		 * one type for the attribute, take the primary or the only element.
		 */
		if (sole)
		{
			json_t	   *first = NULL;

			json_array_foreach(arr, i, e)
			{
				json_t	   *t = attr_get(e, "type");

				if (!json_is_object(e) || (t && !json_is_null(t)))
					continue;
				if (json_is_true(attr_get(e, "primary")) ||
					(json_is_string(attr_get(e, "primary")) &&
					 strcasecmp(json_string_value(attr_get(e, "primary")), "true") == 0))
					return e;
				if (first == NULL)
					first = e;
			}
			return first;
		}
		return NULL;
	}
	if (!json_is_array(arr))
	{
		arr = json_array();
		json_object_set_new(res, attr, arr);
	}
	e = json_pack("{s:s}", "type", type);
	json_array_append_new(arr, e);
	return e;
}

/* How many distinct types the mapping has for a multi-valued attribute. */
static int
mv_types(json_t *m, const char *attr)
{
	json_t	   *attrs = json_object_get(m, "attributes");
	const char *k;
	json_t	   *v;
	char		a[32],
				t[32],
				s[32],
				seen[8][32];
	int			n = 0;

	json_object_foreach(attrs, k, v)
	{
		bool		dup = false;

		if (!split_multi(k, a, t, s) || strcmp(a, attr) != 0)
			continue;
		for (int i = 0; i < n; i++)
			if (strcasecmp(seen[i], t) == 0)
				dup = true;
		if (!dup && n < 8)
			strcpy(seen[n++], t);
	}
	return n;
}

/*
 * The value of a mapped path in a resource (as SCIM text), or NULL.  Used on
 * both the stored and the desired resource, so a PATCH or PUT changes
 * exactly the columns whose values differ.
 */
static json_t *
path_value(json_t *m, json_t *res, const char *key)
{
	char		a[32],
				t[32],
				s[32];
	json_t	   *v;
	size_t		el = strlen(SCIM_ENTERPRISE);

	if (strncmp(key, SCIM_ENTERPRISE, el) == 0 && key[el] == ':')
	{
		json_t	   *ext = attr_get(res, SCIM_ENTERPRISE);

		if (strcmp(key + el + 1, "manager.value") == 0)
		{
			v = attr_get(ext, "manager");
			if (json_is_object(v))
				v = attr_get(v, "value");
		}
		else
			v = attr_get(ext, key + el + 1);
		return as_string(v);
	}
	if (split_multi(key, a, t, s))
	{
		json_t	   *e = mv_element(res, a, t, false, mv_types(m, a) == 1);

		return as_string(attr_get(e, s));
	}
	if (strchr(key, '.'))
	{
		char		parent[32];
		const char *dot = strchr(key, '.');

		if (dot - key >= 32)
			return NULL;
		memcpy(parent, key, dot - key);
		parent[dot - key] = '\0';
		return as_string(attr_get(attr_get(res, parent), dot + 1));
	}
	return as_string(attr_get(res, key));
}

/* ---- rendering ---- */

/* Is this the mapped type rendered as primary (see filter.c mv_primary)? */
static bool
primary_type(json_t *m, const char *attr, const char *type)
{
	json_t	   *attrs = json_object_get(m, "attributes");
	const char *k;
	json_t	   *v;
	char		a[32],
				t[32],
				s[32],
				first[32] = "";

	json_object_foreach(attrs, k, v)
	{
		if (!split_multi(k, a, t, s) || strcasecmp(a, attr) != 0)
			continue;
		if (strcasecmp(s, "value") == 0)
			return strcasecmp(t, type) == 0;
		if (first[0] == '\0')
			strcpy(first, t);
	}
	return strcasecmp(first, type) == 0;
}

static json_t *
parse_json_col(PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return json_loads(PQgetvalue(r, row, col), JSON_DECODE_ANY, NULL);
}

/* Finish a resource: ETag of the mapped state, then meta. */
static void
add_meta(Ctx *c, json_t *res, const char *type, const char *id, json_t *created,
		 json_t *modified)
{
	char	   *etag = etag_of(res);
	char	   *loc = location(c, type == NULL ? "Users" : type, id);
	json_t	   *meta = json_object();

	json_object_set_new(meta, "resourceType", json_string(strcmp(type, "Users") == 0 ? "User" : "Group"));
	if (created && !json_is_null(created))
		json_object_set(meta, "created", created);
	if (modified && !json_is_null(modified))
		json_object_set(meta, "lastModified", modified);
	json_object_set_new(meta, "location", json_string(loc));
	json_object_set_new(meta, "version", json_string(etag));
	json_object_set_new(res, "meta", meta);
	free(etag);
	free(loc);
}

/* One scim_accounts row as a User. */
static json_t *
render_user(Ctx *c, PGresult *r, int row)
{
	json_t	   *m = c->mapping;
	json_t	   *res = json_object();
	json_t	   *attrs = parse_json_col(r, row, 5);
	json_t	   *ents = parse_json_col(r, row, 6);
	json_t	   *schemas = json_pack("[s]", SCIM_USER);
	json_t	   *ext = json_object();
	const char *id = PQgetvalue(r, row, 1);
	const char *k;
	json_t	   *col;

	json_object_set_new(res, "schemas", schemas);
	json_object_set_new(res, "id", json_string(id));
	json_object_set_new(res, "userName", json_string(PQgetvalue(r, row, 2)));
	if (json_is_true(json_object_get(m, "has_status")) && !PQgetisnull(r, row, 3))
		json_object_set_new(res, "active", json_boolean(PQgetvalue(r, row, 3)[0] == 't'));
	if (!PQgetisnull(r, row, 4))
		json_object_set_new(res, "userType", json_string(PQgetvalue(r, row, 4)));
	json_object_foreach(json_object_get(m, "attributes"), k, col)
	{
		json_t	   *v = json_is_string(col) ? as_string(json_object_get(attrs, json_string_value(col))) : NULL;
		size_t		el = strlen(SCIM_ENTERPRISE);
		char		a[32],
					t[32],
					s[32];

		if (v == NULL)
			continue;
		if (strncmp(k, SCIM_ENTERPRISE, el) == 0 && k[el] == ':')
		{
			if (strcmp(k + el + 1, "manager.value") == 0)
			{
				char	   *loc = location(c, "Users", json_string_value(v));

				json_object_set_new(ext, "manager", json_pack("{s:o,s:s}", "value", v, "$ref", loc));
				free(loc);
			}
			else
				json_object_set_new(ext, k + el + 1, v);
		}
		else if (split_multi(k, a, t, s))
		{
			json_t	   *e = mv_element(res, a, t, true, false);

			json_object_set_new(e, s, v);
			if (primary_type(m, a, t))
				json_object_set_new(e, "primary", json_true());
		}
		else if (strchr(k, '.'))
		{
			char		parent[32];
			const char *dot = strchr(k, '.');
			json_t	   *p;

			if (dot - k >= 32)
			{
				json_decref(v);
				continue;
			}
			memcpy(parent, k, dot - k);
			parent[dot - k] = '\0';
			p = json_object_get(res, parent);
			if (p == NULL)
			{
				p = json_object();
				json_object_set_new(res, parent, p);
			}
			json_object_set_new(p, dot + 1, v);
		}
		else
			json_object_set_new(res, k, v);
	}
	if (json_object_size(ext) > 0)
	{
		json_array_append_new(schemas, json_string(SCIM_ENTERPRISE));
		json_object_set(res, SCIM_ENTERPRISE, ext);
	}
	json_decref(ext);
	if (json_is_true(json_object_get(m, "has_grants")) && json_array_size(ents) > 0)
	{
		const char *ga = user_grants_attr(m);
		json_t	   *list = json_array();
		size_t		i;
		json_t	   *e;

		json_array_foreach(ents, i, e)
		{
			json_t	   *gid = as_string(json_object_get(e, "id"));
			json_t	   *o;

			if (gid == NULL)
				continue;
			o = json_pack("{s:o}", "value", gid);
			if (json_is_string(json_object_get(e, "name")))
				json_object_set(o, "display", json_object_get(e, "name"));
			if (strcmp(ga, "groups") == 0)
			{
				char	   *loc = location(c, "Groups", json_string_value(gid));

				json_object_set_new(o, "$ref", json_string(loc));
				json_object_set_new(o, "type", json_string("direct"));
				free(loc);
			}
			json_array_append_new(list, o);
		}
		json_object_set_new(res, ga, list);
	}
	{
		const char *cc = mapping_col(m, "created");
		const char *mc = mapping_col(m, "lastModified");

		add_meta(c, res, "Users", id, cc ? json_object_get(attrs, cc) : NULL,
				 mc ? json_object_get(attrs, mc) : NULL);
	}
	json_decref(attrs);
	json_decref(ents);
	return res;
}

/* One scim_entitlements row as a Group. */
static json_t *
render_group(Ctx *c, PGresult *r, int row)
{
	json_t	   *res = json_object();
	json_t	   *members = parse_json_col(r, row, 4);
	const char *id = PQgetvalue(r, row, 1);

	json_object_set_new(res, "schemas", json_pack("[s]", SCIM_GROUP));
	json_object_set_new(res, "id", json_string(id));
	json_object_set_new(res, "displayName", json_string(PQgetvalue(r, row, 2)));
	if (json_array_size(members) > 0)
	{
		json_t	   *list = json_array();
		size_t		i;
		json_t	   *e;

		json_array_foreach(members, i, e)
		{
			json_t	   *v = as_string(json_object_get(e, "value"));
			json_t	   *o;
			char	   *loc;

			if (v == NULL)
				continue;
			loc = location(c, "Users", json_string_value(v));
			o = json_pack("{s:o,s:s,s:s}", "value", v, "$ref", loc, "type", "User");
			if (json_is_string(json_object_get(e, "display")))
				json_object_set(o, "display", json_object_get(e, "display"));
			json_array_append_new(list, o);
			free(loc);
		}
		json_object_set_new(res, "members", list);
	}
	add_meta(c, res, "Groups", id, NULL, NULL);
	/* without its members the hash is not the group's version */
	if (PQgetisnull(r, row, 4))
		json_object_del(json_object_get(res, "meta"), "version");
	json_decref(members);
	return res;
}

/* ---- attributes / excludedAttributes ---- */

/* Copy (or delete) one listed path between resources. */
static void
project_path(json_t *src, json_t *dst, const char *item, bool users)
{
	char	   *err;
	ScimPath   *sp = path_parse(item, &err);
	json_t	   *from = src,
			   *to = dst;
	const char *key;
	json_t	   *v;

	if (sp == NULL)
	{
		free(err);
		return;
	}
	if (sp->schema && strcasecmp(sp->schema, SCIM_ENTERPRISE) == 0)
	{
		from = json_object_get(src, SCIM_ENTERPRISE);
		if (from == NULL)
			goto out;
		if (sp->attr == NULL)
		{
			if (dst)
				json_object_set(dst, SCIM_ENTERPRISE, from);
			else
				json_object_del(src, SCIM_ENTERPRISE);
			goto out;
		}
		if (dst)
		{
			to = json_object_get(dst, SCIM_ENTERPRISE);
			if (to == NULL)
			{
				to = json_object();
				json_object_set_new(dst, SCIM_ENTERPRISE, to);
			}
		}
	}
	if (sp->attr == NULL)
		goto out;
	key = NULL;
	{
		const char *k;

		json_object_foreach(from, k, v)
			if (strcasecmp(k, sp->attr) == 0)
		{
			key = k;
			break;
		}
	}
	if (key == NULL)
		goto out;
	v = json_object_get(from, key);
	if (sp->sub == NULL)
	{
		if (dst)
			json_object_set(to, key, v);
		else
			json_object_del(from, key);
	}
	else if (json_is_object(v))
	{
		json_t	   *sv = attr_get(v, sp->sub);

		if (dst && sv)
		{
			json_t	   *o = json_object_get(to, key);

			if (o == NULL)
			{
				o = json_object();
				json_object_set_new(to, key, o);
			}
			json_object_set(o, sp->sub, sv);
		}
		else if (!dst && sv)
		{
			const char *k;
			json_t	   *x;

			json_object_foreach(v, k, x)
				if (strcasecmp(k, sp->sub) == 0)
			{
				json_object_del(v, k);
				break;
			}
		}
	}
	else if (json_is_array(v))
	{
		size_t		i;
		json_t	   *e;

		if (dst)
		{
			json_t	   *arr = json_array();

			json_array_foreach(v, i, e)
			{
				json_t	   *sv = attr_get(e, sp->sub);

				if (sv)
					json_array_append_new(arr, json_pack("{s:O}", sp->sub, sv));
			}
			json_object_set_new(to, key, arr);
		}
		else
			json_array_foreach(v, i, e)
			{
				const char *k;
				json_t	   *x;

				json_object_foreach(e, k, x)
					if (strcasecmp(k, sp->sub) == 0)
				{
					json_object_del(e, k);
					break;
				}
			}
	}
out:
	path_free(sp);
	(void) users;
}

/*
 * Apply attributes (keep id, schemas and the listed ones) or
 * excludedAttributes (drop the listed ones, never id or schemas).
 */
static json_t *
project(Ctx *c, json_t *res)
{
	const char *list = c->req->attributes && *c->req->attributes ? c->req->attributes :
		c->req->excluded;
	bool		keep = c->req->attributes && *c->req->attributes;
	json_t	   *out;
	char	   *copy,
			   *item,
			   *save;

	if (list == NULL || *list == '\0')
		return res;
	out = keep ? json_object() : res;
	if (keep)
	{
		json_object_set(out, "schemas", json_object_get(res, "schemas"));
		json_object_set(out, "id", json_object_get(res, "id"));
	}
	copy = strdup(list);
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save))
	{
		while (*item == ' ')
			item++;
		if (!keep && (strcasecmp(item, "id") == 0 || strcasecmp(item, "schemas") == 0))
			continue;
		project_path(res, keep ? out : NULL, item, c->users);
	}
	free(copy);
	if (keep)
		json_decref(res);
	return out;
}

/* Are members wanted in this response (Okta and Entra exclude them)? */
static bool
want_members(Ctx *c)
{
	const char *a = c->req->attributes,
			   *x = c->req->excluded;

	if (a && *a)
		return strcasestr(a, "members") != NULL;
	if (x && *x)
		return strcasestr(x, "members") == NULL;
	return true;
}

/* Set a 200/201 response with one resource and its ETag. */
static void
respond_resource(Ctx *c, int status, json_t *res)
{
	json_t	   *meta = json_object_get(res, "meta");
	json_t	   *ver = json_object_get(meta, "version");
	json_t	   *loc = json_object_get(meta, "location");

	c->resp->status = status;
	if (json_is_string(ver))
		c->resp->etag = strdup(json_string_value(ver));
	if (status == 201 && json_is_string(loc))
		c->resp->location = strdup(json_string_value(loc));
	res = project(c, res);
	free(c->resp->body);
	c->resp->body = json_dumps(res, JSON_COMPACT);
	json_decref(res);
}

/* ---- discovery ---- */

static json_t *
attr_def(const char *name, const char *type, bool multi, bool required, const char *mutability,
		 const char *returned, const char *uniqueness, bool case_exact)
{
	json_t	   *a = json_pack("{s:s,s:s,s:b,s:s,s:b,s:b,s:s,s:s,s:s}",
							  "name", name, "type", type, "multiValued", multi,
							  "description", name, "required", required,
							  "caseExact", case_exact, "mutability", mutability,
							  "returned", returned, "uniqueness", uniqueness);

	return a;
}

static void
add_sub(json_t *parent, json_t *sub)
{
	json_t	   *subs = json_object_get(parent, "subAttributes");

	if (subs == NULL)
	{
		subs = json_array();
		json_object_set_new(parent, "subAttributes", subs);
	}
	json_array_append_new(subs, sub);
}

static json_t *
find_def(json_t *list, const char *name)
{
	size_t		i;
	json_t	   *a;

	json_array_foreach(list, i, a)
		if (strcmp(json_string_value(json_object_get(a, "name")), name) == 0)
		return a;
	return NULL;
}

static bool
op_allowed(json_t *m, const char *op)
{
	return json_list_has(json_object_get(m, "operations"), op);
}

/* The mapped paths of one schema as attribute definitions. */
static json_t *
mapped_defs(json_t *m, bool ext)
{
	json_t	   *defs = json_array();
	const char *key;
	json_t	   *col;
	size_t		el = strlen(SCIM_ENTERPRISE);

	json_object_foreach(json_object_get(m, "attributes"), key, col)
	{
		const char *k = key;
		bool		is_ext = strncmp(k, SCIM_ENTERPRISE, el) == 0 && k[el] == ':';
		const char *mut = json_is_string(col) && writable(m, json_string_value(col), true) &&
			op_allowed(m, "update_account") ? "readWrite" : "readOnly";
		char		a[32],
					t[32],
					s[32];
		json_t	   *parent;

		if (is_ext != ext)
			continue;
		if (is_ext)
			k += el + 1;
		if (split_multi(k, a, t, s))
		{
			json_t	   *types;

			parent = find_def(defs, a);
			if (parent == NULL)
			{
				parent = attr_def(a, "complex", true, false, mut, "default", "none", false);
				add_sub(parent, attr_def("type", "string", false, false, mut, "default", "none", false));
				add_sub(parent, attr_def("primary", "boolean", false, false, "readOnly", "default", "none", false));
				json_array_append_new(defs, parent);
			}
			if (find_def(json_object_get(parent, "subAttributes"), s) == NULL)
				add_sub(parent, attr_def(s, "string", false, false, mut, "default", "none", false));
			types = json_object_get(find_def(json_object_get(parent, "subAttributes"), "type"),
									"canonicalValues");
			if (types == NULL)
			{
				types = json_array();
				json_object_set_new(find_def(json_object_get(parent, "subAttributes"), "type"),
									"canonicalValues", types);
			}
			if (!json_list_has(types, t))
				json_array_append_new(types, json_string(t));
		}
		else if (strchr(k, '.'))
		{
			char		p[32];
			const char *dot = strchr(k, '.');

			if (dot - k >= 32)
				continue;
			memcpy(p, k, dot - k);
			p[dot - k] = '\0';
			parent = find_def(defs, p);
			if (parent == NULL)
			{
				parent = attr_def(p, "complex", false, false, mut, "default", "none", false);
				json_array_append_new(defs, parent);
			}
			add_sub(parent, attr_def(dot + 1, "string", false, false, mut, "default", "none", false));
		}
		else
			json_array_append_new(defs, attr_def(k, "string", false, false, mut, "default",
												 "none", strcmp(k, "externalId") == 0));
	}
	return defs;
}

static json_t *
schema_doc(Ctx *c, const char *urn)
{
	json_t	   *m = c->mapping;
	json_t	   *attrs;
	json_t	   *doc;
	char		loc[1400],
				app[600];

	url_segment(app, sizeof(app), c->app);
	snprintf(loc, sizeof(loc), "%s/scim/v2/%s/Schemas/%s", c->req->base_url, app, urn);
	if (strcmp(urn, SCIM_USER) == 0)
	{
		const char *ga = user_grants_attr(m);
		bool		grants_rw = strcmp(ga, "groups") != 0 && op_allowed(m, "grant");
		json_t	   *g;

		attrs = json_array();
		json_array_append_new(attrs, attr_def("userName", "string", false, true,
											  op_allowed(m, "update_account") ? "readWrite" : "readOnly",
											  "always", "server", false));
		if (json_is_true(json_object_get(m, "has_status")))
			json_array_append_new(attrs, attr_def("active", "boolean", false, false,
												  op_allowed(m, "disable") || op_allowed(m, "enable") ?
												  "readWrite" : "readOnly", "default", "none", false));
		if (json_is_true(json_object_get(m, "has_kind")))
			json_array_append_new(attrs, attr_def("userType", "string", false, false,
												  mapping_col(m, "kind_column") ? "readWrite" : "readOnly",
												  "default", "none", false));
		{
			json_t	   *defs = mapped_defs(m, false);

			json_array_extend(attrs, defs);
			json_decref(defs);
		}
		if (json_is_true(json_object_get(m, "has_grants")))
		{
			g = attr_def(ga, "complex", true, false, grants_rw ? "readWrite" : "readOnly",
						 "default", "none", false);
			add_sub(g, attr_def("value", "string", false, false, grants_rw ? "readWrite" : "readOnly",
								"default", "none", true));
			add_sub(g, attr_def("display", "string", false, false, "readOnly", "default", "none", false));
			if (strcmp(ga, "groups") == 0)
			{
				add_sub(g, attr_def("$ref", "reference", false, false, "readOnly", "default", "none", true));
				add_sub(g, attr_def("type", "string", false, false, "readOnly", "default", "none", false));
			}
			json_array_append_new(attrs, g);
		}
		doc = json_pack("{s:s,s:s,s:s}", "id", SCIM_USER, "name", "User", "description", "User Account");
	}
	else if (strcmp(urn, SCIM_GROUP) == 0)
	{
		bool		rw = op_allowed(m, "grant") || op_allowed(m, "revoke");
		json_t	   *mem;

		attrs = json_array();
		json_array_append_new(attrs, attr_def("displayName", "string", false, true,
											  op_allowed(m, "update_entitlement") ? "readWrite" : "readOnly",
											  "always", "server", false));
		mem = attr_def("members", "complex", true, false, rw ? "readWrite" : "readOnly", "default",
					   "none", false);
		add_sub(mem, attr_def("value", "string", false, false, "immutable", "default", "none", true));
		add_sub(mem, attr_def("display", "string", false, false, "readOnly", "default", "none", false));
		add_sub(mem, attr_def("$ref", "reference", false, false, "immutable", "default", "none", true));
		add_sub(mem, attr_def("type", "string", false, false, "immutable", "default", "none", false));
		json_array_append_new(attrs, mem);
		doc = json_pack("{s:s,s:s,s:s}", "id", SCIM_GROUP, "name", "Group", "description", "Group");
	}
	else
	{
		attrs = mapped_defs(m, true);
		doc = json_pack("{s:s,s:s,s:s}", "id", SCIM_ENTERPRISE, "name", "EnterpriseUser",
						"description", "Enterprise User");
	}
	json_object_set_new(doc, "schemas", json_pack("[s]", "urn:ietf:params:scim:schemas:core:2.0:Schema"));
	json_object_set_new(doc, "attributes", attrs);
	json_object_set_new(doc, "meta", json_pack("{s:s,s:s}", "resourceType", "Schema", "location", loc));
	return doc;
}

static bool
has_enterprise(json_t *m)
{
	const char *k;
	json_t	   *v;

	json_object_foreach(json_object_get(m, "attributes"), k, v)
		if (strncmp(k, SCIM_ENTERPRISE, strlen(SCIM_ENTERPRISE)) == 0)
		return true;
	return false;
}

static json_t *
resource_type_doc(Ctx *c, bool users)
{
	char		loc[1400],
				app[600];
	json_t	   *doc;

	url_segment(app, sizeof(app), c->app);
	snprintf(loc, sizeof(loc), "%s/scim/v2/%s/ResourceTypes/%s", c->req->base_url, app,
			 users ? "User" : "Group");
	doc = json_pack("{s:[s],s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s}}",
					"schemas", "urn:ietf:params:scim:schemas:core:2.0:ResourceType",
					"id", users ? "User" : "Group", "name", users ? "User" : "Group",
					"endpoint", users ? "/Users" : "/Groups",
					"description", users ? "User Account" : "Group",
					"schema", users ? SCIM_USER : SCIM_GROUP,
					"meta", "resourceType", "ResourceType", "location", loc);
	if (users && has_enterprise(c->mapping))
		json_object_set_new(doc, "schemaExtensions",
							json_pack("[{s:s,s:b}]", "schema", SCIM_ENTERPRISE, "required", 0));
	return doc;
}

static json_t *
list_of(json_t *items)
{
	size_t		n = json_array_size(items);

	return json_pack("{s:[s],s:I,s:I,s:I,s:o}", "schemas", SCIM_LIST, "totalResults", (json_int_t) n,
					 "startIndex", (json_int_t) 1, "itemsPerPage", (json_int_t) n,
					 "Resources", items);
}

static void
respond_json(Ctx *c, int status, json_t *doc)
{
	c->resp->status = status;
	free(c->resp->body);
	c->resp->body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
}

/* ServiceProviderConfig, ResourceTypes[/X], Schemas[/urn]. */
static void
discovery(Ctx *c, const char *rest)
{
	char		loc[1400],
				app[600];

	if (strcmp(c->req->method, "GET") != 0)
	{
		scim_error(c->resp, 405, NULL, "discovery endpoints answer GET only");
		return;
	}
	url_segment(app, sizeof(app), c->app);
	if (strcmp(rest, "ServiceProviderConfig") == 0)
	{
		snprintf(loc, sizeof(loc), "%s/scim/v2/%s/ServiceProviderConfig", c->req->base_url, app);
		respond_json(c, 200, json_pack("{s:[s],s:s,s:{s:b},s:{s:b,s:i},s:{s:b,s:i},s:{s:b},"
									   "s:{s:b},s:{s:b},s:{s:b,s:b,s:s,s:i,s:i,s:i},"
									   "s:[{s:s,s:s,s:s,s:b}],s:{s:s,s:s}}",
									   "schemas", "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
									   "documentationUri", "https://github.com/connector/connector/blob/main/docs/scim.md",
									   "patch", "supported", 1,
									   "bulk", "supported", 0, "maxOperations", 0,
									   "filter", "supported", 1, "maxResults", GW_MAX_COUNT,
									   "changePassword", "supported", 0,
									   "sort", "supported", 0,
									   "etag", "supported", 1,
									   "pagination", "cursor", 1, "index", 1,
									   "defaultPaginationMethod", "index",
									   "defaultPageSize", GW_DEFAULT_COUNT, "maxPageSize", GW_MAX_COUNT,
									   "cursorTimeout", 0,
									   "authenticationSchemes", "type", "oauthbearertoken",
									   "name", "OAuth Bearer Token",
									   "description", "A bearer token from connector.add_token",
									   "primary", 1,
									   "meta", "resourceType", "ServiceProviderConfig",
									   "location", loc));
	}
	else if (strcmp(rest, "ResourceTypes") == 0)
	{
		json_t	   *items = json_array();

		json_array_append_new(items, resource_type_doc(c, true));
		if (json_is_true(json_object_get(c->mapping, "has_entitlements")))
			json_array_append_new(items, resource_type_doc(c, false));
		respond_json(c, 200, list_of(items));
	}
	else if (strcmp(rest, "ResourceTypes/User") == 0)
		respond_json(c, 200, resource_type_doc(c, true));
	else if (strcmp(rest, "ResourceTypes/Group") == 0)
		respond_json(c, 200, resource_type_doc(c, false));
	else if (strcmp(rest, "Schemas") == 0)
	{
		json_t	   *items = json_array();

		json_array_append_new(items, schema_doc(c, SCIM_USER));
		json_array_append_new(items, schema_doc(c, SCIM_GROUP));
		if (has_enterprise(c->mapping))
			json_array_append_new(items, schema_doc(c, SCIM_ENTERPRISE));
		respond_json(c, 200, list_of(items));
	}
	else if (strncmp(rest, "Schemas/", 8) == 0)
	{
		const char *urn = rest + 8;

		if (strcmp(urn, SCIM_USER) == 0 || strcmp(urn, SCIM_GROUP) == 0 ||
			(strcmp(urn, SCIM_ENTERPRISE) == 0 && has_enterprise(c->mapping)))
			respond_json(c, 200, schema_doc(c, urn));
		else
			scim_error(c->resp, 404, NULL, "no such schema");
	}
	else
		scim_error(c->resp, 404, NULL, "no such endpoint");
}

/* ---- reading ---- */

/* The filter AST for "this one id". */
static char *
id_filter(const char *id)
{
	json_t	   *f = json_pack("{s:s,s:s,s:s,s:b}", "attr", "id", "op", "eq", "value", id, "ci", 0);
	char	   *s = f ? json_dumps(f, JSON_COMPACT) : NULL;

	json_decref(f);
	return s;
}

/* A query reading one resource by id (no mapping needed to build it). */
static void
read_one_query(Ctx *c, DbQuery *q, const char *filter, bool members)
{
	q->sql = c->users ? Q_USERS : Q_GROUPS;
	q->nparams = c->users ? 6 : 7;
	q->params[0] = c->app;
	q->params[1] = filter;
	q->params[2] = NULL;
	q->params[3] = "0";
	q->params[4] = "1";
	q->params[5] = "false";
	q->params[6] = members ? "true" : "false";
}

static json_t *
render(Ctx *c, PGresult *r, int row)
{
	return c->users ? render_user(c, r, row) : render_group(c, r, row);
}

/* The mapping from a result, kept in the context. */
static bool
take_mapping(Ctx *c, PGresult *r)
{
	json_error_t jerr;

	if (r == NULL || PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
	{
		scim_error(c->resp, 500, NULL, "internal error");
		return false;
	}
	c->mapping_text = strdup(PQgetvalue(r, 0, 0));
	c->mapping = json_loads(c->mapping_text, 0, &jerr);
	if (c->mapping == NULL)
	{
		scim_error(c->resp, 500, NULL, "internal error");
		return false;
	}
	return true;
}

static void
take_token_name(Ctx *c, PGresult *r)
{
	if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
	{
		const char *v = PQgetvalue(r, 0, 0);
		size_t		i;

		for (i = 0; v[i] && i < sizeof(c->resp->token_name) - 1; i++)
			c->resp->token_name[i] = (unsigned char) v[i] < 0x20 ? '?' : v[i];
		c->resp->token_name[i] = '\0';
	}
}

/* The three statements that start every transaction. */
static int
start_queries(Ctx *c, DbQuery *q, bool explicit_tx)
{
	int			n = 0;

	if (explicit_tx)
		q[n++] = (DbQuery)
	{
		"BEGIN", 0,
		{
			NULL
		}
	};
	q[n++] = (DbQuery)
	{
		Q_SESSION, 2,
		{
			c->app, c->req->token
		}
	};
	q[n++] = (DbQuery)
	{
		Q_MAPPING, 1,
		{
			c->app
		}
	};
	return n;
}

/* A list page's paging arguments. */
typedef struct Paging
{
	long long	start;			/* 1-based startIndex */
	int			count;
	bool		cursor_mode;
	char	   *after;			/* cursor: the last id seen */
	long long	total;			/* cursor: total counted on the first page, or -1 */
	long long	seen;			/* cursor: rows before this page */
} Paging;

static bool
parse_int_arg(const char *s, long long *out)
{
	char	   *end;

	if (s == NULL)
		return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno)
		return false;
	return true;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *
b64url_encode(const char *s)
{
	size_t		n = strlen(s),
				o = 0;
	char	   *r = malloc(n * 4 / 3 + 5);

	for (size_t i = 0; i < n; i += 3)
	{
		uint32_t	v = (unsigned char) s[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char) s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char) s[i + 2];
		r[o++] = b64url[(v >> 18) & 63];
		r[o++] = b64url[(v >> 12) & 63];
		if (i + 1 < n)
			r[o++] = b64url[(v >> 6) & 63];
		if (i + 2 < n)
			r[o++] = b64url[v & 63];
	}
	r[o] = '\0';
	return r;
}

static char *
b64url_decode(const char *s)
{
	size_t		n = strlen(s),
				o = 0;
	char	   *r = malloc(n + 1);
	uint32_t	acc = 0;
	int			bits = 0;

	for (size_t i = 0; i < n; i++)
	{
		const char *p = strchr(b64url, s[i]);

		if (p == NULL || s[i] == '\0')
		{
			free(r);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t) (p - b64url);
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			r[o++] = (char) ((acc >> bits) & 0xff);
		}
	}
	r[o] = '\0';
	if (strlen(r) != o)
	{
		free(r);
		return NULL;
	}
	return r;
}

/* startIndex, count and cursor; false with a 400 response when invalid. */
static bool
parse_paging(Ctx *c, Paging *p)
{
	long long	v;

	memset(p, 0, sizeof(*p));
	p->start = 1;
	p->count = GW_DEFAULT_COUNT;
	p->total = -1;
	if (c->req->count)
	{
		if (!parse_int_arg(c->req->count, &v))
		{
			scim_error(c->resp, 400, "invalidValue", "count must be an integer");
			return false;
		}
		p->count = v < 0 ? 0 : v > GW_MAX_COUNT ? GW_MAX_COUNT : (int) v;
	}
	if (c->req->start_index)
	{
		if (!parse_int_arg(c->req->start_index, &v))
		{
			scim_error(c->resp, 400, "invalidValue", "startIndex must be an integer");
			return false;
		}
		p->start = v < 1 ? 1 : v;
	}
	if (c->req->cursor)
	{
		p->cursor_mode = true;
		if (c->req->cursor[0] != '\0')
		{
			char	   *d = b64url_decode(c->req->cursor);
			char	   *c1 = d ? strchr(d, ':') : NULL;
			char	   *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

			if (c2 == NULL)
			{
				free(d);
				scim_error(c->resp, 400, "invalidCursor", "the cursor is not one this service issued");
				return false;
			}
			*c1 = *c2 = '\0';
			if (!parse_int_arg(d, &p->total) || !parse_int_arg(c1 + 1, &p->seen) ||
				p->total < 0 || p->seen < 0)
			{
				free(d);
				scim_error(c->resp, 400, "invalidCursor", "the cursor is not one this service issued");
				return false;
			}
			p->after = strdup(c2 + 1);
			free(d);
		}
	}
	return true;
}

/*
 * GET list: translate the filter with the mapping, then one query in the
 * same implicit transaction as scim_session (pipelined: one round trip).
 */
static void
list_resources(Ctx *c)
{
	Paging		pg;
	FNode	   *f = NULL;
	char	   *ferr = NULL;
	DbQuery		q[4];
	PGresult   *res[4] = {NULL};
	char	   *ast_text = NULL;
	char		skip[32],
				limit[16];
	json_t	   *items;
	long long	total = -1;
	int			nrows;
	json_t	   *doc;
	char	   *last_id = NULL;

	if (!parse_paging(c, &pg))
		return;
	if (c->req->filter && *c->req->filter)
	{
		f = filter_parse(c->req->filter, &ferr);
		if (f == NULL)
		{
			char		buf[300];

			snprintf(buf, sizeof(buf), "invalid filter: %s", ferr);
			scim_error(c->resp, 400, "invalidFilter", buf);
			free(ferr);
			free(pg.after);
			return;
		}
	}
	snprintf(skip, sizeof(skip), "%lld", pg.cursor_mode ? 0 : pg.start - 1);
	snprintf(limit, sizeof(limit), "%d", pg.count);
	for (int attempt = 0;; attempt++)
	{
		char	   *hint = f ? cached_mapping(c->app) : NULL;
		json_t	   *hm = hint ? json_loads(hint, 0, NULL) : NULL;
		int			n;

		/* without a remembered mapping: fetch it first (once per app) */
		if (f && hm == NULL)
		{
			n = start_queries(c, q, false);
			if (!run(c, q, n, res, false))
			{
				free(hint);
				goto out;
			}
			if (res[1] && PQntuples(res[1]) == 1 && !PQgetisnull(res[1], 0, 0))
			{
				remember_mapping(c->app, PQgetvalue(res[1], 0, 0));
				hm = json_loads(PQgetvalue(res[1], 0, 0), 0, NULL);
			}
			clear_results(res, n);
			if (hm == NULL)
			{
				free(hint);
				scim_error(c->resp, 500, NULL, "internal error");
				goto out;
			}
		}
		free(ast_text);
		ast_text = NULL;
		if (f)
		{
			json_t	   *ast = filter_to_ast(f, c->users, hm, &ferr);

			if (ast == NULL)
			{
				scim_error(c->resp, 400, "invalidFilter", ferr);
				free(ferr);
				json_decref(hm);
				free(hint);
				/* still check the token first: 401 beats 400 */
				n = start_queries(c, q, false);
				if (!run(c, q, n, res, false))
					goto out;
				goto out;
			}
			ast_text = json_dumps(ast, JSON_COMPACT);
			json_decref(ast);
		}
		json_decref(hm);
		n = start_queries(c, q, false);
		q[n] = (DbQuery)
		{
			c->users ? Q_USERS : Q_GROUPS, c->users ? 6 : 7,
			{
				c->app, ast_text, pg.after, skip, limit,
					pg.total >= 0 ? "false" : "true", want_members(c) ? "true" : "false"
			}
		};
		n++;
		if (!run(c, q, n, res, true))
		{
			free(hint);
			goto out;
		}
		take_token_name(c, res[0]);
		if (!take_mapping(c, res[1]))
		{
			free(hint);
			goto out;
		}
		if (f == NULL || (hint && strcmp(hint, c->mapping_text) == 0) || attempt > 0)
		{
			free(hint);
			break;
		}
		/* the mapping changed since it was remembered: translate again */
		remember_mapping(c->app, c->mapping_text);
		free(hint);
		json_decref(c->mapping);
		c->mapping = NULL;
		free(c->mapping_text);
		c->mapping_text = NULL;
		clear_results(res, n);
	}
	items = json_array();
	nrows = PQntuples(res[2]);
	for (int i = 0; i < nrows; i++)
	{
		if (!PQgetisnull(res[2], i, 0))
			total = strtoll(PQgetvalue(res[2], i, 0), NULL, 10);
		if (PQgetisnull(res[2], i, 1))
			continue;
		json_array_append_new(items, project(c, render(c, res[2], i)));
		last_id = PQgetvalue(res[2], i, 1);
	}
	/*
	 * A page past the end has no row to carry the total: ask for the total
	 * alone (limit 0), as totalResults must be exact (RFC 7644 section 3.4.2.4).
	 */
	if (total < 0 && pg.total < 0 && nrows == 0 && strcmp(skip, "0") != 0)
	{
		int			n;

		clear_results(res, 4);
		n = start_queries(c, q, false);
		q[n] = (DbQuery)
		{
			c->users ? Q_USERS : Q_GROUPS, c->users ? 6 : 7,
			{
				c->app, ast_text, pg.after, "0", "0", "true", "false"
			}
		};
		n++;
		if (!run(c, q, n, res, true))
		{
			json_decref(items);
			goto out;
		}
		if (PQntuples(res[2]) > 0 && !PQgetisnull(res[2], 0, 0))
			total = strtoll(PQgetvalue(res[2], 0, 0), NULL, 10);
	}
	if (pg.total >= 0)
		total = pg.total;
	if (total < 0)
		total = 0;
	doc = json_pack("{s:[s],s:I}", "schemas", SCIM_LIST, "totalResults", (json_int_t) total);
	if (!pg.cursor_mode)
		json_object_set_new(doc, "startIndex", json_integer(pg.start));
	json_object_set_new(doc, "itemsPerPage", json_integer(json_array_size(items)));
	if (pg.cursor_mode && last_id && (int) json_array_size(items) == pg.count &&
		pg.seen + (long long) json_array_size(items) < total)
	{
		size_t		len = strlen(last_id) + 64;
		char	   *raw = malloc(len),
				   *enc;

		snprintf(raw, len, "%lld:%lld:%s", total, pg.seen + (long long) json_array_size(items), last_id);
		enc = b64url_encode(raw);
		json_object_set_new(doc, "nextCursor", json_string(enc));
		free(raw);
		free(enc);
	}
	json_object_set_new(doc, "Resources", items);
	respond_json(c, 200, doc);
out:
	clear_results(res, 4);
	filter_free(f);
	free(ast_text);
	free(pg.after);
}

/* GET by id: session, mapping and the row in one round trip. */
static void
get_resource(Ctx *c)
{
	DbQuery		q[4];
	PGresult   *res[4] = {NULL};
	char	   *filter = id_filter(c->id);
	int			n = start_queries(c, q, false);
	DbError		err = {{0}};

	if (filter == NULL)
	{
		scim_error(c->resp, 404, NULL, "no such resource");
		return;
	}
	read_one_query(c, &q[n++], filter, want_members(c));
	if (!db_run(c->db, q, n, res, &err))
	{
		/* an id that does not parse as the id type names no resource */
		if (err.index == 2 && strncmp(err.sqlstate, "22", 2) == 0)
			scim_error(c->resp, 404, NULL, "no such resource");
		else
			db_fail(c, &err, false);
		db_error_clear(&err);
		goto out;
	}
	take_token_name(c, res[0]);
	if (!take_mapping(c, res[1]))
		goto out;
	if (PQntuples(res[2]) == 0 || PQgetisnull(res[2], 0, 1))
	{
		scim_error(c->resp, 404, NULL, c->users ? "no such user" : "no such group");
		goto out;
	}
	respond_resource(c, 200, render(c, res[2], 0));
out:
	clear_results(res, 4);
	free(filter);
}

/* ---- writing ---- */

/* Does If-Match allow a write to a resource whose ETag is etag? */
static bool
if_match_ok(const char *header, const char *etag)
{
	const char *p = header;
	const char *opaque = strchr(etag, '"');

	if (header == NULL)
		return true;
	while (*p)
	{
		const char *end;
		size_t		n;

		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		end = strchr(p, ',');
		n = end ? (size_t) (end - p) : strlen(p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == 1 && *p == '*')
			return true;
		if (n >= 2 && strncmp(p, "W/", 2) == 0)
		{
			p += 2;
			n -= 2;
		}
		if (n == strlen(opaque) && strncmp(p, opaque, n) == 0)
			return true;
		p = end ? end : p + n;
		if (end == NULL)
			break;
	}
	return false;
}

/* Nesting depth of a JSON value, stopping early past the limit. */
static int
json_depth(json_t *v, int limit)
{
	int			d = 0;
	size_t		i;
	const char *k;
	json_t	   *x;

	if (limit < 0)
		return 1;
	if (json_is_array(v))
		json_array_foreach(v, i, x)
		{
			int			dx = json_depth(x, limit - 1);

			if (dx > d)
				d = dx;
			if (d > limit)
				break;
		}
	else if (json_is_object(v))
		json_object_foreach(v, k, x)
		{
			int			dx = json_depth(x, limit - 1);

			if (dx > d)
				d = dx;
			if (d > limit)
				break;
		}
	else
		return 0;
	return d + 1;
}

/*
 * A request refused before the database was asked (bad body): still check
 * the token, so a client without a valid one learns that first.
 */
static void
check_token(Ctx *c)
{
	DbQuery		q[3];
	PGresult   *res[3] = {NULL};
	int			n = start_queries(c, q, false);
	ScimResponse saved = *c->resp;

	memset(c->resp, 0, sizeof(*c->resp));
	if (run(c, q, n - 1, res, false))
	{
		take_token_name(c, res[0]);
		memcpy(saved.token_name, c->resp->token_name, sizeof(saved.token_name));
		scim_response_free(c->resp);
		*c->resp = saved;
	}
	else
		scim_response_free(&saved);
	clear_results(res, 3);
}

/* The body as a JSON object; false with a 400 response. */
static json_t *
parse_body(Ctx *c)
{
	json_error_t jerr;
	json_t	   *b;

	if (c->req->body == NULL || c->req->body_len == 0)
	{
		scim_error(c->resp, 400, "invalidSyntax", "a JSON body is required");
		return NULL;
	}
	b = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (b == NULL || !json_is_object(b))
	{
		char		buf[300];

		snprintf(buf, sizeof(buf), "the body is not a JSON object: %s", b ? "not an object" : jerr.text);
		scim_error(c->resp, 400, "invalidSyntax", buf);
		json_decref(b);
		return NULL;
	}
	if (json_depth(b, GW_JSON_DEPTH) > GW_JSON_DEPTH)
	{
		scim_error(c->resp, 400, "invalidSyntax", "the body is nested too deeply");
		json_decref(b);
		return NULL;
	}
	return b;
}

/* The set of grant values of a resource attribute ("value" of each element). */
static json_t *
value_set(json_t *res, const char *attr, bool *bad)
{
	json_t	   *arr = attr_get(res, attr);
	json_t	   *out = json_array();
	size_t		i;
	json_t	   *e;

	json_array_foreach(arr, i, e)
	{
		json_t	   *v = as_string(json_is_object(e) ? attr_get(e, "value") : e);

		if (v == NULL)
		{
			*bad = true;
			continue;
		}
		if (!json_list_has(out, json_string_value(v)))
			json_array_append(out, v);
		json_decref(v);
	}
	return out;
}

/* active as a boolean: true, false, "True", "False"; -1 when absent, -2 bad. */
static int
bool_value(json_t *v)
{
	if (v == NULL || json_is_null(v))
		return -1;
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_string(v) && strcasecmp(json_string_value(v), "true") == 0)
		return 1;
	if (json_is_string(v) && strcasecmp(json_string_value(v), "false") == 0)
		return 0;
	return -2;
}

static bool
str_eq(json_t *a, json_t *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(json_string_value(a), json_string_value(b)) == 0;
}

/*
 * The apply() operations that turn the stored resource cur into want.
 * NULL with the response set when want asks for something the mapping
 * cannot do.
 */
static json_t *
diff_ops(Ctx *c, json_t *cur, json_t *want, const char *id)
{
	json_t	   *m = c->mapping;
	json_t	   *ops = json_array();
	json_t	   *attrs = json_object();
	const char *k;
	json_t	   *col;
	const char *gattr = c->users ? user_grants_attr(m) : "members";
	json_t	   *nm = attr_get(want, c->users ? "userName" : "displayName");
	json_t	   *onm = attr_get(cur, c->users ? "userName" : "displayName");
	bool		bad = false;
	json_t	   *wv,
			   *cv;
	char		buf[300];

	if (!json_is_string(nm) || json_string_length(nm) == 0)
	{
		scim_error(c->resp, 400, "invalidValue", c->users ? "userName must be a non-empty string" :
				   "displayName must be a non-empty string");
		goto fail;
	}
	if (!str_eq(nm, onm))
	{
		const char *ncol = mapping_col(m, c->users ? "name_column" : "entitlement_name_column");

		if (ncol == NULL)
		{
			scim_error(c->resp, 400, "mutability", c->users ?
					   "userName cannot be changed through SCIM for this application" :
					   "displayName cannot be changed through SCIM for this application");
			goto fail;
		}
		json_object_set(attrs, ncol, nm);
	}
	if (c->users)
	{
		int			wa = bool_value(attr_get(want, "active"));
		int			ca = bool_value(attr_get(cur, "active"));
		json_t	   *wt = as_string(attr_get(want, "userType"));
		json_t	   *ct = as_string(attr_get(cur, "userType"));

		if (wa == -2)
		{
			scim_error(c->resp, 400, "invalidValue", "active must be true or false");
			json_decref(wt);
			json_decref(ct);
			goto fail;
		}
		if (wa >= 0 && wa != ca)
		{
			if (!json_is_true(json_object_get(m, "has_status")))
			{
				scim_error(c->resp, 400, "mutability", "this application maps no account status (accounts.status)");
				json_decref(wt);
				json_decref(ct);
				goto fail;
			}
			json_array_append_new(ops, json_pack("{s:s,s:s}", "op", wa ? "enable" : "disable", "account", id));
		}
		if (!str_eq(wt, ct))
		{
			const char *kcol = mapping_col(m, "kind_column");

			if (kcol == NULL || !json_is_true(json_object_get(m, "has_kind")))
			{
				scim_error(c->resp, 400, "mutability", "userType cannot be changed through SCIM for this application");
				json_decref(wt);
				json_decref(ct);
				goto fail;
			}
			json_object_set(attrs, kcol, wt ? wt : json_null());
		}
		json_decref(wt);
		json_decref(ct);
		json_object_foreach(json_object_get(m, "attributes"), k, col)
		{
			if (!json_is_string(col))
				continue;
			wv = path_value(m, want, k);
			cv = path_value(m, cur, k);
			if (!str_eq(wv, cv))
			{
				if (!writable(m, json_string_value(col), true))
				{
					snprintf(buf, sizeof(buf), "attribute \"%s\" is read-only in this application", k);
					scim_error(c->resp, 400, "mutability", buf);
					json_decref(wv);
					json_decref(cv);
					goto fail;
				}
				json_object_set(attrs, json_string_value(col), wv ? wv : json_null());
			}
			json_decref(wv);
			json_decref(cv);
		}
	}
	if (json_object_size(attrs) > 0)
		json_array_insert_new(ops, 0, json_pack("{s:s,s:s,s:O}", "op",
												c->users ? "update_account" : "update_entitlement",
												c->users ? "account" : "entitlement", id,
												"attributes", attrs));
	/* grants: members of a group, or a user's writable roles/entitlements */
	if (!c->users || json_is_true(json_object_get(m, "has_grants")))
	{
		json_t	   *ws = value_set(want, gattr, &bad);
		json_t	   *cs = value_set(cur, gattr, &bad);
		size_t		i;
		json_t	   *v;
		bool		changed = false;

		if (bad)
		{
			snprintf(buf, sizeof(buf), "each element of %s needs a value", gattr);
			scim_error(c->resp, 400, "invalidValue", buf);
			json_decref(ws);
			json_decref(cs);
			goto fail;
		}
		json_array_foreach(ws, i, v)
			if (!json_list_has(cs, json_string_value(v)))
			changed = true;
		json_array_foreach(cs, i, v)
			if (!json_list_has(ws, json_string_value(v)))
			changed = true;
		if (changed && c->users && strcmp(gattr, "groups") == 0)
		{
			scim_error(c->resp, 400, "mutability",
					   "groups is read-only; change a group's members, or map user_grants to roles or entitlements");
			json_decref(ws);
			json_decref(cs);
			goto fail;
		}
		json_t	   *idj = json_string(id);

		json_array_foreach(cs, i, v)
			if (!json_list_has(ws, json_string_value(v)))
			json_array_append_new(ops, json_pack("{s:s,s:O,s:O}", "op", "revoke",
												 "account", c->users ? idj : v,
												 "entitlement", c->users ? v : idj));
		json_array_foreach(ws, i, v)
			if (!json_list_has(cs, json_string_value(v)))
			json_array_append_new(ops, json_pack("{s:s,s:O,s:O}", "op", "grant",
												 "account", c->users ? idj : v,
												 "entitlement", c->users ? v : idj));
		json_decref(idj);
		json_decref(ws);
		json_decref(cs);
	}
	json_decref(attrs);
	return ops;
fail:
	json_decref(attrs);
	json_decref(ops);
	return NULL;
}

static const char *
type_name(Ctx *c)
{
	return c->users ? "User" : "Group";
}

/*
 * The grants and revokes of a Group PATCH that only adds members or removes
 * listed ones (what Entra and Okta send for one membership change), or NULL
 * when the PATCH needs the current state.
 */
static json_t *
member_only_ops(json_t *body, const char *gid)
{
	json_t	   *list = attr_get(body, "Operations");
	json_t	   *ops = json_array();
	size_t		i;
	json_t	   *o;

	if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 100)
		goto no;
	json_array_foreach(list, i, o)
	{
		json_t	   *op = attr_get(o, "op");
		json_t	   *path = attr_get(o, "path");
		json_t	   *value = attr_get(o, "value");
		bool		add;
		size_t		j;
		json_t	   *v;

		if (!json_is_string(op) || !json_is_string(path))
			goto no;
		if (strcasecmp(json_string_value(op), "add") == 0)
			add = true;
		else if (strcasecmp(json_string_value(op), "remove") == 0)
			add = false;
		else
			goto no;
		if (strcasecmp(json_string_value(path), "members") == 0)
		{
			if (!json_is_array(value) || json_array_size(value) == 0)
				goto no;
			json_array_foreach(value, j, v)
			{
				json_t	   *mv = json_is_object(v) ? attr_get(v, "value") : NULL;
				json_t	   *sv = as_string(mv);

				if (sv == NULL || json_is_boolean(mv))
				{
					json_decref(sv);
					goto no;
				}
				json_array_append_new(ops, json_pack("{s:s,s:o,s:s}", "op", add ? "grant" : "revoke",
													 "account", sv, "entitlement", gid));
			}
		}
		else if (!add)
		{
			/* members[value eq "x"] */
			char	   *perr;
			ScimPath   *sp = path_parse(json_string_value(path), &perr);
			bool		ok = sp && sp->schema == NULL && sp->sub == NULL &&
				strcasecmp(sp->attr, "members") == 0 && sp->filter &&
				sp->filter->kind == F_CMP && strcasecmp(sp->filter->attr, "value") == 0 &&
				sp->filter->sub == NULL && strcmp(sp->filter->op, "eq") == 0 &&
				json_is_string(sp->filter->value) && (value == NULL || json_is_null(value));

			if (ok)
				json_array_append_new(ops, json_pack("{s:s,s:O,s:s}", "op", "revoke", "account",
													 sp->filter->value, "entitlement", gid));
			free(perr);
			path_free(sp);
			if (!ok)
				goto no;
		}
		else
			goto no;
	}
	return ops;
no:
	json_decref(ops);
	return NULL;
}

/*
 * A Group PATCH that only changes members: BEGIN, session, lock, the group
 * (for 404), the grants and revokes and COMMIT in one round trip; 204.
 */
static void
patch_members(Ctx *c, json_t *ops, const char *filter)
{
	DbQuery		q[8];
	PGresult   *res[8] = {NULL};
	int			n = start_queries(c, q, true);
	char	   *ops_text = json_dumps(ops, JSON_COMPACT);
	DbError		err = {{0}};

	q[n++] = (DbQuery)
	{
		Q_LOCK, 3,
		{
			c->app, type_name(c), c->id
		}
	};
	read_one_query(c, &q[n++], filter, false);
	q[n++] = (DbQuery)
	{
		Q_APPLY, 2,
		{
			c->app, ops_text
		}
	};
	q[n++] = (DbQuery)
	{
		"COMMIT", 0,
		{
			NULL
		}
	};
	if (!db_run(c->db, q, n, res, &err))
	{
		if (err.index == 4 && strncmp(err.sqlstate, "22", 2) == 0)
			scim_error(c->resp, 404, NULL, "no such group");
		else
			db_fail(c, &err, false);
		db_error_clear(&err);
	}
	else
	{
		take_token_name(c, res[1]);
		if (PQntuples(res[4]) == 0 || PQgetisnull(res[4], 0, 1))
			scim_error(c->resp, 404, NULL, "no such group");
		else
		{
			c->resp->status = 204;
			free(c->resp->body);
			c->resp->body = NULL;
		}
	}
	clear_results(res, 8);
	free(ops_text);
}

/*
 * PUT, PATCH, DELETE on one resource: BEGIN, session, mapping, the advisory
 * lock of the resource and its current state in one round trip; then the
 * writes, the state after them and COMMIT in a second.
 */
static void
write_resource(Ctx *c)
{
	DbQuery		q[8];
	PGresult   *res[8] = {NULL};
	char	   *filter = id_filter(c->id);
	int			n = start_queries(c, q, true);
	DbError		err = {{0}};
	json_t	   *body = NULL,
			   *cur = NULL,
			   *want = NULL,
			   *ops = NULL;
	char	   *ops_text = NULL;
	bool		is_delete = strcmp(c->req->method, "DELETE") == 0;
	bool		is_put = strcmp(c->req->method, "PUT") == 0;

	if (filter == NULL)
	{
		scim_error(c->resp, 404, NULL, "no such resource");
		return;
	}
	if (!is_delete && (body = parse_body(c)) == NULL)
	{
		check_token(c);
		goto out;
	}
	if (!c->users && !is_delete && !is_put && c->req->if_match == NULL &&
		!(c->req->attributes && *c->req->attributes) &&
		(ops = member_only_ops(body, c->id)) != NULL)
	{
		patch_members(c, ops, filter);
		goto out;
	}
	q[n++] = (DbQuery)
	{
		Q_LOCK, 3,
		{
			c->app, type_name(c), c->id
		}
	};
	read_one_query(c, &q[n++], filter, true);
	if (!db_run(c->db, q, n, res, &err))
	{
		if (err.index == 4 && strncmp(err.sqlstate, "22", 2) == 0)
			scim_error(c->resp, 404, NULL, "no such resource");
		else
			db_fail(c, &err, false);
		db_error_clear(&err);
		goto out;
	}
	take_token_name(c, res[1]);
	if (!take_mapping(c, res[2]))
		goto out;
	if (PQntuples(res[4]) == 0 || PQgetisnull(res[4], 0, 1))
	{
		scim_error(c->resp, 404, NULL, c->users ? "no such user" : "no such group");
		goto out;
	}
	cur = render(c, res[4], 0);
	if (!if_match_ok(c->req->if_match, json_string_value(json_object_get(json_object_get(cur, "meta"), "version"))))
	{
		scim_error(c->resp, 412, NULL, "the resource has changed since that version (If-Match)");
		goto out;
	}
	clear_results(res, n);
	n = 0;
	if (is_delete)
	{
		q[n++] = (DbQuery)
		{
			c->users ? "SELECT connector.delete_account($1, $2)" :
				"SELECT connector.delete_entitlement($1, $2)", 2,
			{
				c->app, c->id
			}
		};
		q[n++] = (DbQuery)
		{
			"COMMIT", 0,
			{
				NULL
			}
		};
		if (run(c, q, n, res, false))
		{
			c->resp->status = 204;
			free(c->resp->body);
			c->resp->body = NULL;
		}
		goto out;
	}
	want = json_deep_copy(cur);
	json_object_del(want, "meta");
	{
		const char *st;
		char	   *detail;
		int			rc = is_put ? patch_put(want, body, c->users, &st, &detail) :
			patch_apply(want, body, c->users, &st, &detail);

		/*
		 * RFC 7644 section 3.5.1: read-only attributes in a PUT are
		 * ignored (Okta sends a user's groups back)
		 */
		if (rc == 0 && is_put && c->users && strcmp(user_grants_attr(c->mapping), "groups") == 0)
		{
			json_t	   *g = json_object_get(cur, "groups");

			if (g)
				json_object_set(want, "groups", g);
			else
				json_object_del(want, "groups");
		}
		if (rc == 0)
			rc = patch_check(want, cur, c->users, &st, &detail);
		if (rc)
		{
			scim_error(c->resp, rc, st, detail);
			free(detail);
			goto out;
		}
	}
	ops = diff_ops(c, cur, want, c->id);
	if (ops == NULL)
		goto out;
	ops_text = json_dumps(ops, JSON_COMPACT);
	if (json_array_size(ops) > 0)
		q[n++] = (DbQuery)
	{
		Q_APPLY, 2,
		{
			c->app, ops_text
		}
	};
	read_one_query(c, &q[n++], filter, want_members(c));
	q[n++] = (DbQuery)
	{
		"COMMIT", 0,
		{
			NULL
		}
	};
	if (!run(c, q, n, res, false))
		goto out;
	{
		PGresult   *r = res[n - 2];

		if (PQntuples(r) == 0 || PQgetisnull(r, 0, 1))
			scim_error(c->resp, 404, NULL, "no such resource");
		else
			respond_resource(c, 200, render(c, r, 0));
	}
out:
	clear_results(res, 8);
	json_decref(body);
	json_decref(cur);
	json_decref(want);
	json_decref(ops);
	free(ops_text);
	free(filter);
}

/*
 * POST: lock the name, refuse a name taken in any case (409 uniqueness),
 * create, then the status and grants through apply, then read back.
 */
static void
create_resource(Ctx *c)
{
	DbQuery		q[8];
	PGresult   *res[8] = {NULL};
	int			n;
	json_t	   *body = parse_body(c),
			   *want = NULL,
			   *attrs = NULL,
			   *ops = NULL,
			   *cur = NULL;
	char	   *name_filter = NULL,
			   *attrs_text = NULL,
			   *ops_text = NULL,
			   *filter = NULL,
			   *lower = NULL;
	const char *name;
	char	   *new_id = NULL;

	if (body == NULL)
	{
		check_token(c);
		return;
	}
	want = patch_canon_resource(body, c->users);
	/* id and meta are read-only: ignored in a POST (RFC 7643 section 3.1) */
	json_object_del(want, "id");
	json_object_del(want, "meta");
	{
		const char *st;
		char	   *detail;

		if (patch_check(want, NULL, c->users, &st, &detail) != 0)
		{
			scim_error(c->resp, 400, st, detail);
			free(detail);
			check_token(c);
			goto out;
		}
	}
	{
		json_t	   *nm = json_object_get(want, c->users ? "userName" : "displayName");

		if (!json_is_string(nm) || json_string_length(nm) == 0)
		{
			scim_error(c->resp, 400, "invalidValue", c->users ? "userName is required" :
					   "displayName is required");
			goto out;
		}
		name = json_string_value(nm);
	}
	{
		json_t	   *nf = json_pack("{s:s,s:s,s:s,s:b}", "attr", "name", "op", "eq", "value", name, "ci", 1);

		name_filter = json_dumps(nf, JSON_COMPACT);
		json_decref(nf);
	}
	lower = strdup(name);
	for (char *p = lower; *p; p++)
		*p = tolower((unsigned char) *p);
	n = start_queries(c, q, true);
	q[n++] = (DbQuery)
	{
		Q_LOCK, 3,
		{
			c->app, c->users ? "User:" : "Group:", lower
		}
	};
	read_one_query(c, &q[n++], name_filter, false);
	if (!run(c, q, n, res, false))
		goto out;
	take_token_name(c, res[1]);
	if (!take_mapping(c, res[2]))
		goto out;
	if (PQntuples(res[4]) > 0 && !PQgetisnull(res[4], 0, 1))
	{
		char		buf[300];

		snprintf(buf, sizeof(buf), "%s \"%.200s\" already exists", c->users ? "userName" : "displayName", name);
		scim_error(c->resp, 409, "uniqueness", buf);
		goto out;
	}
	clear_results(res, n);

	/* the create call: mapped attributes by column */
	attrs = json_object();
	if (c->users)
	{
		const char *k;
		json_t	   *col;
		json_t	   *wt = as_string(attr_get(want, "userType"));

		json_object_foreach(json_object_get(c->mapping, "attributes"), k, col)
		{
			json_t	   *v = json_is_string(col) ? path_value(c->mapping, want, k) : NULL;

			if (v)
				json_object_set_new(attrs, json_string_value(col), v);
		}
		if (wt && mapping_col(c->mapping, "kind_column"))
			json_object_set(attrs, mapping_col(c->mapping, "kind_column"), wt);
		json_decref(wt);
	}
	attrs_text = json_dumps(attrs, JSON_COMPACT);
	n = 0;
	q[n++] = (DbQuery)
	{
		c->users ? "SELECT connector.create_account($1, $2, $3::jsonb)" :
			"SELECT connector.create_entitlement($1, $2, $3::jsonb)", 3,
		{
			c->app, name, attrs_text
		}
	};
	if (!run(c, q, n, res, false))
		goto out;
	new_id = strdup(PQgetvalue(res[0], 0, 0));
	clear_results(res, n);

	/* status and grants: the difference from a bare new resource */
	cur = json_pack("{s:s,s:s}", "id", new_id, c->users ? "userName" : "displayName", name);
	if (c->users)
	{
		json_t	   *ga;

		if (bool_value(attr_get(want, "active")) != 0)
			json_object_del(want, "active");
		else
			json_object_set_new(cur, "active", json_true());
		/* groups are read-only on a User: ignored on create, as RFC 7643 says */
		ga = json_object_get(c->mapping, "user_grants");
		if (!json_is_string(ga) || strcmp(json_string_value(ga), "groups") == 0)
			json_object_del(want, "groups");
		json_object_del(want, "userType");
	}
	json_object_set_new(want, "id", json_string(new_id));
	{
		/* compare only status and grants: copy the rest from want into cur */
		json_t	   *base = json_deep_copy(want);

		json_object_del(base, "active");
		json_object_del(base, c->users ? user_grants_attr(c->mapping) : "members");
		json_object_update_missing(cur, base);
		json_decref(base);
	}
	ops = diff_ops(c, cur, want, new_id);
	if (ops == NULL)
		goto out;
	ops_text = json_dumps(ops, JSON_COMPACT);
	filter = id_filter(new_id);
	n = 0;
	if (json_array_size(ops) > 0)
		q[n++] = (DbQuery)
	{
		Q_APPLY, 2,
		{
			c->app, ops_text
		}
	};
	read_one_query(c, &q[n++], filter, want_members(c));
	q[n++] = (DbQuery)
	{
		"COMMIT", 0,
		{
			NULL
		}
	};
	if (!run(c, q, n, res, false))
		goto out;
	if (PQntuples(res[n - 2]) == 0 || PQgetisnull(res[n - 2], 0, 1))
		scim_error(c->resp, 500, NULL, "internal error");
	else
		respond_resource(c, 201, render(c, res[n - 2], 0));
out:
	clear_results(res, 8);
	json_decref(body);
	json_decref(want);
	json_decref(attrs);
	json_decref(ops);
	json_decref(cur);
	free(name_filter);
	free(attrs_text);
	free(ops_text);
	free(filter);
	free(lower);
	free(new_id);
}

/* ---- entry point ---- */

/* Is s valid UTF-8 with no control characters (an app name or an id from the URL)? */
static bool
valid_text(const char *s)
{
	json_t	   *j = json_string(s);
	bool		ok = j != NULL;

	json_decref(j);
	for (; ok && *s; s++)
		if ((unsigned char) *s < 0x20 || *s == 0x7f)
			ok = false;
	return ok;
}

/*
 * Serve one request under /scim/v2/: route, check the token's presence,
 * take a pooled connection and hand over to the operation.
 */
void
scim_handle(const ScimRequest *req, ScimResponse *resp)
{
	Ctx			c;
	const char *slash;
	char	   *rest;
	const char *m = req->method;
	size_t		rl;

	memset(&c, 0, sizeof(c));
	c.req = req;
	c.resp = resp;
	slash = strchr(req->path, '/');
	if (slash == NULL || slash == req->path)
	{
		scim_error(resp, 404, NULL, "no such endpoint; SCIM lives under /scim/v2/<app>/");
		return;
	}
	c.app = strndup(req->path, slash - req->path);
	rest = strdup(slash + 1);
	if (!valid_text(c.app))
	{
		scim_error(resp, 404, NULL, "no such application");
		goto out;
	}
	rl = strlen(rest);
	while (rl > 0 && rest[rl - 1] == '/')
		rest[--rl] = '\0';

	if (req->token == NULL || *req->token == '\0')
	{
		scim_error(resp, 401, NULL, "a bearer token is required");
		goto out;
	}
	if (strncmp(rest, "Users", 5) == 0 && (rest[5] == '\0' || rest[5] == '/'))
		c.users = true;
	else if (strncmp(rest, "Groups", 6) == 0 && (rest[6] == '\0' || rest[6] == '/'))
		c.users = false;
	else if (strcmp(rest, "ServiceProviderConfig") == 0 || strncmp(rest, "ResourceTypes", 13) == 0 ||
			 strncmp(rest, "Schemas", 7) == 0)
	{
		DbQuery		q[3];
		PGresult   *res[3] = {NULL};
		int			n;
		DbError		err = {{0}};

		if ((c.db = db_acquire(&err)) == NULL)
		{
			db_fail(&c, &err, false);
			db_error_clear(&err);
			goto out;
		}
		n = start_queries(&c, q, false);
		if (run(&c, q, n, res, false))
		{
			take_token_name(&c, res[0]);
			if (take_mapping(&c, res[1]))
				discovery(&c, rest);
		}
		clear_results(res, 3);
		goto out;
	}
	else
	{
		scim_error(resp, 404, NULL, "no such endpoint");
		goto out;
	}
	{
		const char *idp = rest + (c.users ? 5 : 6);

		if (*idp == '/')
		{
			if (idp[1] == '\0' || strchr(idp + 1, '/'))
			{
				scim_error(resp, 404, NULL, "no such endpoint");
				goto out;
			}
			c.id = strdup(idp + 1);
			if (!valid_text(c.id) || strlen(c.id) > 1000)
			{
				scim_error(resp, 404, NULL, c.users ? "no such user" : "no such group");
				goto out;
			}
		}
	}
	if ((c.id == NULL && strcmp(m, "GET") != 0 && strcmp(m, "POST") != 0) ||
		(c.id != NULL && strcmp(m, "GET") != 0 && strcmp(m, "PUT") != 0 &&
		 strcmp(m, "PATCH") != 0 && strcmp(m, "DELETE") != 0))
	{
		scim_error(resp, 405, NULL, "method not allowed here");
		goto out;
	}
	{
		DbError		err = {{0}};

		if ((c.db = db_acquire(&err)) == NULL)
		{
			db_fail(&c, &err, false);
			db_error_clear(&err);
			goto out;
		}
	}
	if (c.id == NULL && strcmp(m, "GET") == 0)
		list_resources(&c);
	else if (c.id == NULL)
		create_resource(&c);
	else if (strcmp(m, "GET") == 0)
		get_resource(&c);
	else
		write_resource(&c);
out:
	if (c.db)
		db_release(c.db);
	json_decref(c.mapping);
	free(c.mapping_text);
	free(c.app);
	free(c.id);
	free(rest);
}
