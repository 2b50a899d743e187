/*-------------------------------------------------------------------------
 *
 * set_render.c
 *	  Security Event Tokens (RFC 8417) from connector events: the mapping of
 *	  spec section 12 to RISC, CAEP and SCIM (RFC 9967) event types, the
 *	  claims and the subject, signed by jose.c.
 *
 * connector._sets(app, event, issuer, audience) renders one event of
 * section 6 as zero or more signed SETs, one event type per SET, with the
 * application's newest active signing key.  The rendering is a function of
 * the event, the mapping, the key, the issuer and the audience only: iat is
 * the event's own time and jti its id with the SET's index, so rendering an
 * event again with the same key gives the same claims, and with RS256 (whose
 * signatures are deterministic) the same bytes.  ES256 signatures are
 * randomised, so a sender that must repeat a message byte for byte keeps
 * the first rendering.
 *
 * Claims are written as text in a fixed order (iss, aud, iat, jti, txn,
 * sub_id, events) rather than built as jsonb, whose key order is not the
 * writer's; the event is read with the jsonb API.
 *
 * IDENTIFICATION
 *	  src/set_render.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "connector.h"

PG_FUNCTION_INFO_V1(connector_sets);
PG_FUNCTION_INFO_V1(connector_verification_set);

#define RISC_EVENT "https://schemas.openid.net/secevent/risc/event-type/"
#define CAEP_EVENT "https://schemas.openid.net/secevent/caep/event-type/"
#define SCIM_EVENT "urn:ietf:params:scim:event:"
#define SSF_VERIFICATION "https://schemas.openid.net/secevent/ssf/event-type/verification"

/* CAEP credential_type for API keys: not in CAEP's list, which allows others */
#define CREDENTIAL_TYPE "api-key"

/* A mapped column and the name a SCIM receiver knows it by. */
typedef struct SetColumn
{
	const char *column;
	const char *path;
} SetColumn;

/* What rendering needs of an application's mapping. */
typedef struct SetMapping
{
	SetColumn  *accounts;		/* id, name, status, kind, owner, attributes */
	int			naccounts;
	SetColumn  *entitlements;	/* id, name, privileged, attributes */
	int			nentitlements;
	const char *name_column;	/* accounts.name */
	const char *email_column;	/* NULL when no e-mail is mapped */
	const char *external_id_column; /* scim.attributes.externalId, or NULL */
} SetMapping;

/* One SET to be signed: the subject and the one event. */
typedef struct SetDraft
{
	char	   *subject;		/* JSON object */
	const char *uri;
	char	   *payload;		/* JSON object */
} SetDraft;

/* The parts of an event the renderer reads. */
typedef struct SetEvent
{
	const char *id;
	const char *type;
	const char *txid;
	int64		seconds;		/* the event's timestamp, Unix seconds */
	const char *via;
	const char *account_id;
	const char *entitlement_id;
	JsonbContainer *before;
	JsonbContainer *after;
} SetEvent;

static SPIPlanPtr context_plan = NULL;

/*
 * The object at key of container c, or NULL when absent or not an object.
 */
static JsonbContainer *
JsonObjectAt(JsonbContainer *c, const char *key)
{
	JsonbValue *v;

	if (c == NULL)
		return NULL;
	v = getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

/*
 * The string at key of container c, or NULL when absent or not a string.
 */
static const char *
JsonStringAt(JsonbContainer *c, const char *key)
{
	JsonbValue *v;

	if (c == NULL)
		return NULL;
	v = getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * A scalar's text: a string as itself, a number or boolean as written in
 * JSON; NULL for null, absent, an object or an array.
 */
static char *
JsonScalarText(JsonbValue *v)
{
	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/*
 * The value of column col in a row image (before/after) as canonical JSON
 * text, NULL when the row or the column is absent: two values are equal
 * when their texts are.
 */
static char *
ColumnJson(JsonbContainer *row, const char *col)
{
	JsonbValue *v;
	Jsonb	   *jb;

	if (row == NULL)
		return NULL;
	v = getKeyJsonValueFromContainer(row, col, strlen(col), NULL);
	if (v == NULL)
		return NULL;
	jb = JsonbValueToJsonb(v);
	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

/*
 * The text of a scalar column of a row image, NULL when absent or null.
 */
static char *
ColumnText(JsonbContainer *row, const char *col)
{
	if (row == NULL || col == NULL)
		return NULL;
	return JsonScalarText(getKeyJsonValueFromContainer(row, col, strlen(col), NULL));
}

/*
 * Whether s is plausibly an e-mail address (RFC 9493's email format wants
 * one): local part, one @, domain, no spaces.
 */
static bool
LooksLikeEmail(const char *s)
{
	const char *at;

	if (s == NULL || s[0] == '@' || strpbrk(s, " \t\r\n") != NULL)
		return false;
	at = strchr(s, '@');
	return at != NULL && at[1] != '\0' && strchr(at + 1, '@') == NULL;
}

/*
 * Append a column to a list unless it is NULL or already there.
 */
static void
AddColumn(SetColumn *cols, int *n, const char *column, const char *path)
{
	if (column == NULL)
		return;
	for (int i = 0; i < *n; i++)
		if (strcmp(cols[i].column, column) == 0)
			return;
	cols[*n].column = column;
	cols[*n].path = path ? path : column;
	(*n)++;
}

/*
 * The SCIM path a mapping's scim.attributes gives column, or NULL.
 */
static const char *
ScimPathOf(JsonbContainer *scim_attrs, const char *column)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	const char *found = NULL;

	if (scim_attrs == NULL)
		return NULL;
	it = JsonbIteratorInit(scim_attrs);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && v.type == jbvString && found == NULL &&
				 strlen(column) == (size_t) v.val.string.len &&
				 strncmp(v.val.string.val, column, v.val.string.len) == 0)
			found = key;
	}
	return found;
}

/*
 * The column of the first e-mail path of scim.attributes, the one of type
 * "work" first; NULL when there is none.
 */
static const char *
ScimEmailColumn(JsonbContainer *scim_attrs)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		email = false;
	bool		work = false;
	const char *first = NULL;
	const char *best = NULL;

	if (scim_attrs == NULL)
		return NULL;
	it = JsonbIteratorInit(scim_attrs);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			email = pg_strncasecmp(key, "emails", 6) == 0;
			work = email && strstr(key, "\"work\"") != NULL;
		}
		else if (tok == WJB_VALUE && email && v.type == jbvString)
		{
			char	   *col = pnstrdup(v.val.string.val, v.val.string.len);

			if (first == NULL)
				first = col;
			if (work && best == NULL)
				best = col;
		}
	}
	return best ? best : first;
}

/*
 * Read what rendering needs from a registered spec (connector.app.spec).
 */
static void
LoadMapping(Jsonb *spec, SetMapping *m)
{
	JsonbContainer *acc = JsonObjectAt(&spec->root, "accounts");
	JsonbContainer *ent = JsonObjectAt(&spec->root, "entitlements");
	JsonbContainer *scim = JsonObjectAt(JsonObjectAt(&spec->root, "scim"), "attributes");
	JsonbValue *attrs;
	int			nattrs;

	memset(m, 0, sizeof(SetMapping));
	m->name_column = JsonStringAt(acc, "name");
	m->external_id_column = JsonStringAt(scim, "externalId");
	m->email_column = ScimEmailColumn(scim);

	attrs = acc ? getKeyJsonValueFromContainer(acc, "attributes", 10, NULL) : NULL;
	nattrs = (attrs && attrs->type == jbvBinary) ? JsonContainerSize(attrs->val.binary.data) : 0;
	m->accounts = palloc0(sizeof(SetColumn) * (5 + nattrs));
	AddColumn(m->accounts, &m->naccounts, JsonStringAt(acc, "id"), "id");
	AddColumn(m->accounts, &m->naccounts, m->name_column, "userName");
	AddColumn(m->accounts, &m->naccounts, JsonStringAt(JsonObjectAt(acc, "status"), "column"), "active");
	AddColumn(m->accounts, &m->naccounts, JsonStringAt(acc, "kind"), "userType");
	AddColumn(m->accounts, &m->naccounts, JsonStringAt(acc, "owner"), NULL);
	for (int i = 0; i < nattrs; i++)
	{
		char	   *col = JsonScalarText(getIthJsonbValueFromContainer(attrs->val.binary.data, i));

		if (col == NULL)
			continue;
		AddColumn(m->accounts, &m->naccounts, col, ScimPathOf(scim, col));
		/* without a SCIM e-mail path, a column named email or mail is one */
		if (m->email_column == NULL &&
			(pg_strcasecmp(col, "email") == 0 || pg_strcasecmp(col, "mail") == 0))
			m->email_column = col;
	}

	attrs = ent ? getKeyJsonValueFromContainer(ent, "attributes", 10, NULL) : NULL;
	nattrs = (attrs && attrs->type == jbvBinary) ? JsonContainerSize(attrs->val.binary.data) : 0;
	m->entitlements = palloc0(sizeof(SetColumn) * (3 + nattrs));
	AddColumn(m->entitlements, &m->nentitlements, JsonStringAt(ent, "id"), "id");
	AddColumn(m->entitlements, &m->nentitlements, JsonStringAt(ent, "name"), "displayName");
	AddColumn(m->entitlements, &m->nentitlements, JsonStringAt(ent, "privileged"), NULL);
	for (int i = 0; i < nattrs; i++)
	{
		char	   *col = JsonScalarText(getIthJsonbValueFromContainer(attrs->val.binary.data, i));

		if (col != NULL)
			AddColumn(m->entitlements, &m->nentitlements, col, NULL);
	}
}

/*
 * Append a SCIM resource path, the id percent-encoded outside RFC 3986's
 * unreserved characters so that any id makes one path segment.
 */
static void
AppendResourcePath(StringInfo buf, const char *type, const char *id)
{
	StringInfoData path;

	initStringInfo(&path);
	appendStringInfo(&path, "/%s/", type);
	for (const unsigned char *p = (const unsigned char *) id; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(&path, (char) *p);
		else
			appendStringInfo(&path, "%%%02X", *p);
	}
	escape_json(buf, path.data);
	pfree(path.data);
}

/*
 * The subject of an account: an RFC 9493 "aliases" subject with the
 * account as an opaque id, as a SCIM resource (RFC 9967, with its
 * externalId where mapped) and as an e-mail address where one is mapped
 * and the row image holds one.
 */
static char *
AccountSubject(const SetMapping *m, const char *id, JsonbContainer *row)
{
	StringInfoData s;
	char	   *email = ColumnText(row, m->email_column);
	char	   *external = ColumnText(row, m->external_id_column);

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"format\":\"aliases\",\"identifiers\":[{\"format\":\"opaque\",\"id\":");
	escape_json(&s, id);
	appendStringInfoString(&s, "},{\"format\":\"scim\",\"uri\":");
	AppendResourcePath(&s, "Users", id);
	if (external != NULL)
	{
		appendStringInfoString(&s, ",\"externalId\":");
		escape_json(&s, external);
	}
	appendStringInfoChar(&s, '}');
	if (LooksLikeEmail(email))
	{
		appendStringInfoString(&s, ",{\"format\":\"email\",\"email\":");
		escape_json(&s, email);
		appendStringInfoChar(&s, '}');
	}
	appendStringInfoString(&s, "]}");
	return s.data;
}

/*
 * The subject of an entitlement: the SCIM Group (RFC 9967).
 */
static char *
GroupSubject(const char *id)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"format\":\"scim\",\"uri\":");
	AppendResourcePath(&s, "Groups", id);
	appendStringInfoChar(&s, '}');
	return s.data;
}

/*
 * A SCIM notice payload: {"attributes": [...]}, listing the columns of
 * cols that are set in after (changed_only false: a creation) or differ
 * between before and after (changed_only true: a patch), by SCIM name.
 */
static char *
ScimNotice(const SetColumn *cols, int ncols, JsonbContainer *before,
		   JsonbContainer *after, bool changed_only)
{
	StringInfoData s;
	bool		first = true;

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"attributes\":[");
	for (int i = 0; i < ncols; i++)
	{
		char	   *a = ColumnJson(after, cols[i].column);
		bool		include;

		if (changed_only)
		{
			char	   *b = ColumnJson(before, cols[i].column);

			include = (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
		}
		else
			include = a != NULL && strcmp(a, "null") != 0;
		if (!include)
			continue;
		if (!first)
			appendStringInfoChar(&s, ',');
		escape_json(&s, cols[i].path);
		first = false;
	}
	appendStringInfoString(&s, "]}");
	return s.data;
}

/*
 * The claims every CAEP event of ours carries: event_timestamp, and from
 * origin.via the initiating_entity (where it is known) and reason_admin.
 */
static void
AppendCaepCommon(StringInfo s, const SetEvent *e)
{
	const char *entity = NULL;
	const char *reason = "Changed directly in the application's database";

	static const struct
	{
		const char *via;
		const char *entity;
		const char *reason;
	}			origins[] =
	{
		{"platform", "admin", "Changed through the platform API"},
		{"offboard", "admin", "Offboarded through the platform API"},
		{"reconcile", "policy", "Enforced by reconciliation"},
		{"expiry", "policy", "Time-bound access expired"},
	};

	for (int i = 0; e->via != NULL && i < lengthof(origins); i++)
	{
		if (strcmp(e->via, origins[i].via) == 0)
		{
			entity = origins[i].entity;
			reason = origins[i].reason;
		}
	}

	appendStringInfo(s, "\"event_timestamp\":" INT64_FORMAT, e->seconds);
	if (entity != NULL)
		appendStringInfo(s, ",\"initiating_entity\":\"%s\"", entity);
	appendStringInfoString(s, ",\"reason_admin\":{\"en\":");
	escape_json(s, reason);
	appendStringInfoChar(s, '}');
}

/*
 * Add one SET to the drafts.
 */
static void
AddDraft(SetDraft *drafts, int *n, char *subject, const char *uri, char *payload)
{
	drafts[*n].subject = subject;
	drafts[*n].uri = uri;
	drafts[*n].payload = payload;
	(*n)++;
}

/*
 * Require an id member (account, entitlement) for an event type that has one.
 */
static const char *
RequireId(const char *id, const SetEvent *e, const char *what)
{
	if (id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event \"%s\" of type %s has no %s id", e->id, e->type, what)));
	return id;
}

/*
 * The SETs of one event, per the mapping of spec section 12 (at most
 * two); capture.tampered gives none.
 */
static int
DraftSets(const SetMapping *m, const SetEvent *e, SetDraft *d)
{
	int			n = 0;
	const char *t = e->type;
	JsonbContainer *row = e->after ? e->after : e->before;

	if (strncmp(t, "account.", 8) == 0)
	{
		const char *id = RequireId(e->account_id, e, "account");
		char	   *subject = AccountSubject(m, id, row);

		if (strcmp(t, "account.created") == 0)
			AddDraft(d, &n, subject, SCIM_EVENT "prov:create:notice",
					 ScimNotice(m->accounts, m->naccounts, NULL, e->after, false));
		else if (strcmp(t, "account.updated") == 0)
		{
			char	   *oldname = ColumnText(e->before, m->name_column);
			char	   *newname = ColumnText(e->after, m->name_column);

			AddDraft(d, &n, subject, SCIM_EVENT "prov:patch:notice",
					 ScimNotice(m->accounts, m->naccounts, e->before, e->after, true));
			if (oldname != NULL && newname != NULL && strcmp(oldname, newname) != 0)
			{
				StringInfoData p;
				char	   *oldsubject;

				/* RISC wants the old identifier as an email (or phone) subject */
				if (LooksLikeEmail(oldname))
				{
					StringInfoData s;

					initStringInfo(&s);
					appendStringInfoString(&s, "{\"format\":\"email\",\"email\":");
					escape_json(&s, oldname);
					appendStringInfoChar(&s, '}');
					oldsubject = s.data;
				}
				else
					oldsubject = AccountSubject(m, id, e->before);
				initStringInfo(&p);
				appendStringInfoString(&p, "{\"new-value\":");
				escape_json(&p, newname);
				appendStringInfoChar(&p, '}');
				AddDraft(d, &n, oldsubject, RISC_EVENT "identifier-changed", p.data);
			}
		}
		else if (strcmp(t, "account.disabled") == 0)
		{
			StringInfoData p;

			initStringInfo(&p);
			appendStringInfoChar(&p, '{');
			AppendCaepCommon(&p, e);
			appendStringInfoChar(&p, '}');
			/* RISC's reasons (hijacking, bulk-account) are never known here */
			AddDraft(d, &n, subject, RISC_EVENT "account-disabled", pstrdup("{}"));
			AddDraft(d, &n, subject, CAEP_EVENT "session-revoked", p.data);
		}
		else if (strcmp(t, "account.enabled") == 0)
			AddDraft(d, &n, subject, RISC_EVENT "account-enabled", pstrdup("{}"));
		else if (strcmp(t, "account.deleted") == 0)
		{
			AddDraft(d, &n, subject, RISC_EVENT "account-purged", pstrdup("{}"));
			AddDraft(d, &n, subject, SCIM_EVENT "prov:delete", pstrdup("{}"));
		}
		else
			goto unknown;
	}
	else if (strcmp(t, "access.granted") == 0 || strcmp(t, "access.revoked") == 0)
		AddDraft(d, &n, GroupSubject(RequireId(e->entitlement_id, e, "entitlement")),
				 SCIM_EVENT "prov:patch:notice", pstrdup("{\"attributes\":[\"members\"]}"));
	else if (strncmp(t, "entitlement.", 12) == 0)
	{
		char	   *subject = GroupSubject(RequireId(e->entitlement_id, e, "entitlement"));

		if (strcmp(t, "entitlement.created") == 0)
			AddDraft(d, &n, subject, SCIM_EVENT "prov:create:notice",
					 ScimNotice(m->entitlements, m->nentitlements, NULL, e->after, false));
		else if (strcmp(t, "entitlement.updated") == 0)
			AddDraft(d, &n, subject, SCIM_EVENT "prov:patch:notice",
					 ScimNotice(m->entitlements, m->nentitlements, e->before, e->after, true));
		else if (strcmp(t, "entitlement.deleted") == 0)
			AddDraft(d, &n, subject, SCIM_EVENT "prov:delete", pstrdup("{}"));
		else
			goto unknown;
	}
	else if (strncmp(t, "credential.", 11) == 0)
	{
		const char *change;
		StringInfoData p;

		if (strcmp(t, "credential.created") == 0)
			change = "create";
		else if (strcmp(t, "credential.updated") == 0)
			change = "update";
		else if (strcmp(t, "credential.revoked") == 0)
			change = "revoke";
		else if (strcmp(t, "credential.deleted") == 0)
			change = "delete";
		else
			goto unknown;
		initStringInfo(&p);
		appendStringInfo(&p, "{\"credential_type\":\"%s\",\"change_type\":\"%s\",",
						 CREDENTIAL_TYPE, change);
		AppendCaepCommon(&p, e);
		appendStringInfoChar(&p, '}');
		/* the row is the credential's: the account's e-mail is not in it */
		AddDraft(d, &n, AccountSubject(m, RequireId(e->account_id, e, "account"), NULL),
				 CAEP_EVENT "credential-change", p.data);
	}
	else if (strcmp(t, "capture.tampered") != 0)
		goto unknown;
	return n;

unknown:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown event type \"%s\"", t)));
	return 0;					/* keep the compiler quiet */
}

/*
 * Unix seconds of an RFC 3339 timestamp.
 */
static int64
UnixSeconds(const char *text)
{
	TimestampTz ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
															 CStringGetDatum(text),
															 ObjectIdGetDatum(InvalidOid),
															 Int32GetDatum(-1)));
	int64		us = ts + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

	return us >= 0 ? us / USECS_PER_SEC : -((-us + USECS_PER_SEC - 1) / USECS_PER_SEC);
}

/*
 * Read the parts of an event the renderer needs; an event not of the
 * shape of section 6 is invalid_parameter_value.
 */
static void
ReadEvent(Jsonb *event, const char *app, SetEvent *e)
{
	JsonbContainer *root = &event->root;
	JsonbContainer *data;
	const char *ts;
	const char *event_app;
	JsonbValue *v;

	memset(e, 0, sizeof(SetEvent));
	if (!JB_ROOT_IS_OBJECT(event))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event must be a JSON object")));
	e->id = JsonStringAt(root, "id");
	e->type = JsonStringAt(root, "type");
	ts = JsonStringAt(root, "timestamp");
	data = JsonObjectAt(root, "data");
	if (e->id == NULL || e->type == NULL || ts == NULL || data == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event must have string members id, type and timestamp and an object data")));
	event_app = JsonStringAt(data, "app");
	if (event_app == NULL || strcmp(event_app, app) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event \"%s\" is not an event of application \"%s\"", e->id, app)));
	e->seconds = UnixSeconds(ts);
	e->txid = JsonStringAt(data, "txid");
	e->via = JsonStringAt(JsonObjectAt(data, "origin"), "via");
	v = NULL;
	if (JsonObjectAt(data, "account"))
		v = getKeyJsonValueFromContainer(JsonObjectAt(data, "account"), "id", 2, NULL);
	e->account_id = JsonScalarText(v);
	v = NULL;
	if (JsonObjectAt(data, "entitlement"))
		v = getKeyJsonValueFromContainer(JsonObjectAt(data, "entitlement"), "id", 2, NULL);
	e->entitlement_id = JsonScalarText(v);
	e->before = JsonObjectAt(data, "before");
	e->after = JsonObjectAt(data, "after");
}

/*
 * Append the claims of one SET.
 */
static void
AppendClaims(StringInfo s, const char *issuer, const char *audience, int64 iat,
			 const char *jti, const char *txn, const char *subject,
			 const char *uri, const char *payload)
{
	appendStringInfoString(s, "{\"iss\":");
	escape_json(s, issuer);
	appendStringInfoString(s, ",\"aud\":");
	escape_json(s, audience);
	appendStringInfo(s, ",\"iat\":" INT64_FORMAT ",\"jti\":", iat);
	escape_json(s, jti);
	if (txn != NULL)
	{
		appendStringInfoString(s, ",\"txn\":");
		escape_json(s, txn);
	}
	appendStringInfo(s, ",\"sub_id\":%s,\"events\":{", subject);
	escape_json(s, uri);
	appendStringInfo(s, ":%s}}", payload);
}

/*
 * Look up app's mapping and newest active signing key (connected to SPI).
 * Unknown app: undefined_object; no active key: object_not_in_prerequisite_state.
 */
static Jsonb *
AppContext(const char *app, char **kid, JoseAlg *alg)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	if (context_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare("SELECT a.spec, k.kid, k.alg FROM connector.app a "
									   "LEFT JOIN LATERAL (SELECT k.kid, k.alg FROM connector.signing_key k "
									   "  WHERE k.app = a.app AND k.retired_at IS NULL "
									   "  ORDER BY k.seq DESC LIMIT 1) k ON true "
									   "WHERE a.app = $1",
									   1, types);

		if (plan == NULL)
			elog(ERROR, "could not prepare the signing key look-up: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		context_plan = plan;
	}
	values[0] = CStringGetTextDatum(app);
	if (SPI_execute_plan(context_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the signing key");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("application \"%s\" is not registered", app),
				 errhint("Register it with connector.register_app().")));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("application \"%s\" has no active signing key", app),
				 errhint("Add one with connector.add_signing_key().")));
	*kid = TextDatumGetCString(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	if (isnull || !JoseAlgFromName(TextDatumGetCString(d), alg))
		elog(ERROR, "signing key \"%s\" has an unknown algorithm", *kid);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return DatumGetJsonbP(d);
}

/*
 * Raise null_value_not_allowed naming argument what when it is NULL.
 */
static void
RequireArg(FunctionCallInfo fcinfo, int arg, const char *what)
{
	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/*
 * connector._sets(app text, event jsonb, issuer text, audience text)
 * returns setof text
 *
 * The signed SETs of one event, in the order of the mapping.
 */
Datum
connector_sets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *app;
	Jsonb	   *event;
	char	   *issuer;
	char	   *audience;
	char	   *kid;
	JoseAlg		alg;
	SetMapping	m;
	SetEvent	e;
	SetDraft	drafts[4];
	int			n;

	RequireArg(fcinfo, 0, "app");
	RequireArg(fcinfo, 1, "event");
	RequireArg(fcinfo, 2, "issuer");
	RequireArg(fcinfo, 3, "audience");
	app = text_to_cstring(PG_GETARG_TEXT_PP(0));
	event = PG_GETARG_JSONB_P(1);
	issuer = text_to_cstring(PG_GETARG_TEXT_PP(2));
	audience = text_to_cstring(PG_GETARG_TEXT_PP(3));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	SPI_connect();
	LoadMapping(AppContext(app, &kid, &alg), &m);
	ReadEvent(event, app, &e);
	n = DraftSets(&m, &e, drafts);
	for (int i = 0; i < n; i++)
	{
		StringInfoData claims;
		StringInfoData jws;
		char	   *jti = psprintf("%s.%d", e.id, i);
		Datum		value;
		bool		isnull = false;

		initStringInfo(&claims);
		AppendClaims(&claims, issuer, audience, e.seconds, jti, e.txid,
					 drafts[i].subject, drafts[i].uri, drafts[i].payload);
		initStringInfo(&jws);
		JoseAppendJws(&jws, kid, alg, claims.data, claims.len);
		value = PointerGetDatum(cstring_to_text_with_len(jws.data, jws.len));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * connector._verification_set(app text, stream_id text, state text,
 *							   issuer text, audience text) returns text
 *
 * The SSF verification event for a stream: subject the stream as an opaque
 * id, the receiver's state echoed (omitted when NULL), a random jti.
 */
Datum
connector_verification_set(PG_FUNCTION_ARGS)
{
	char	   *app;
	char	   *stream;
	char	   *issuer;
	char	   *audience;
	char	   *kid;
	JoseAlg		alg;
	unsigned char rnd[16];
	StringInfoData jti;
	StringInfoData subject;
	StringInfoData payload;
	StringInfoData claims;
	StringInfoData jws;
	TimestampTz now = GetCurrentTimestamp();
	int64		seconds;

	RequireArg(fcinfo, 0, "app");
	RequireArg(fcinfo, 1, "stream_id");
	RequireArg(fcinfo, 3, "issuer");
	RequireArg(fcinfo, 4, "audience");
	app = text_to_cstring(PG_GETARG_TEXT_PP(0));
	stream = text_to_cstring(PG_GETARG_TEXT_PP(1));
	issuer = text_to_cstring(PG_GETARG_TEXT_PP(3));
	audience = text_to_cstring(PG_GETARG_TEXT_PP(4));

	if (!pg_strong_random(rnd, sizeof(rnd)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	initStringInfo(&jti);
	appendStringInfoString(&jti, "ver_");
	for (int i = 0; i < (int) sizeof(rnd); i++)
		appendStringInfo(&jti, "%02x", rnd[i]);

	initStringInfo(&subject);
	appendStringInfoString(&subject, "{\"format\":\"opaque\",\"id\":");
	escape_json(&subject, stream);
	appendStringInfoChar(&subject, '}');
	initStringInfo(&payload);
	appendStringInfoChar(&payload, '{');
	if (!PG_ARGISNULL(2))
	{
		appendStringInfoString(&payload, "\"state\":");
		escape_json(&payload, text_to_cstring(PG_GETARG_TEXT_PP(2)));
	}
	appendStringInfoChar(&payload, '}');

	seconds = (now + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY) / USECS_PER_SEC;
	initStringInfo(&claims);
	AppendClaims(&claims, issuer, audience, seconds, jti.data, NULL, subject.data,
				 SSF_VERIFICATION, payload.data);

	/* allocated before SPI_connect: the result outlives SPI_finish */
	initStringInfo(&jws);
	SPI_connect();
	AppContext(app, &kid, &alg);
	JoseAppendJws(&jws, kid, alg, claims.data, claims.len);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text_with_len(jws.data, jws.len));
}
