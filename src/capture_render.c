/*-------------------------------------------------------------------------
 *
 * capture_render.c
 *	  Rendering of captured values as JSON: mapped columns and rows,
 *	  strings, the origin of a change and timestamps.
 *
 * Values are written as to_json would write them, and only in forms that
 * json and jsonb both accept, so that reading an event never fails.
 *
 * IDENTIFICATION
 *	  src/capture_render.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/memutils.h"

#include "connector.h"
#include "capture.h"


/* ---- rendering ---- */

/*
 * Every stored event must read back as jsonb, and a json column keeps what
 * jsonb refuses.  Limits of numeric (src/backend/utils/adt/numeric.c), which
 * holds jsonb's numbers: digits after the decimal point, and the decimal
 * weight of the first significant digit (32767 base-10000 digits).
 */
#define JSONB_MAX_DSCALE 16383
#define JSONB_MAX_WEIGHT 131071

/*
 * Nesting deeper than this in a json or jsonb column is stored as a string:
 * the event adds levels of its own, and a reader deeper in the stack than
 * the writer (or a receiver's parser) could run out of it.
 */
#define JSON_MAX_DEPTH 1000

/*
 * Whether jsonb can hold the JSON number s[0..len) (a token json_in
 * accepted): numeric refuses too many digits after the point and a weight
 * beyond its range, whatever the value (1e-16384 and 1e131072 both fail).
 */
static bool
JsonNumberFits(const char *s, int len)
{
	const char *p = s;
	const char *end = s + len;
	int64		intdigits = 0;
	int64		fracdigits = 0;
	int64		first = -1;		/* index of the first non-zero digit */
	int64		exp = 0;
	bool		negexp = false;

	if (p < end && *p == '-')
		p++;
	for (; p < end && isdigit((unsigned char) *p); p++, intdigits++)
		if (*p != '0' && first < 0)
			first = intdigits;
	if (p < end && *p == '.')
		for (p++; p < end && isdigit((unsigned char) *p); p++, fracdigits++)
			if (*p != '0' && first < 0)
				first = intdigits + fracdigits;
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			negexp = (*p++ == '-');
		/* saturated far beyond both limits: a 1 GB text has fewer digits */
		for (; p < end && isdigit((unsigned char) *p); p++)
			if (exp < INT64CONST(4000000000))
				exp = exp * 10 + (*p - '0');
		if (negexp)
			exp = -exp;
	}
	if (p != end || intdigits == 0)
		return false;
	if (fracdigits - exp > JSONB_MAX_DSCALE)
		return false;
	return first < 0 || intdigits - 1 - first + exp <= JSONB_MAX_WEIGHT;
}

/*
 * Whether the server encoding has the character U+c; jsonb turns a \u
 * escape into it, and fails where there is none.
 */
static bool
CodePointFits(pg_wchar c)
{
	int			enc = GetDatabaseEncoding();
	unsigned char utf8[8];
	unsigned char out[MAX_UNICODE_EQUIVALENT_STRING * MAX_CONVERSION_GROWTH + 1];
	Oid			proc;
	int			len;

	if (enc == PG_UTF8 || c <= 0x7f)
		return true;
	if (enc == PG_SQL_ASCII)
		return false;
	proc = FindDefaultConversionProc(PG_UTF8, enc);
	if (!OidIsValid(proc))
		return false;
	unicode_to_utf8(c, utf8);
	len = pg_utf_mblen(utf8);
	return pg_do_encoding_conversion_buf(proc, PG_UTF8, enc, utf8, len,
										 out, sizeof(out), true) == len;
}

/* Value of the four hex digits at s. */
static pg_wchar
HexCodeUnit(const char *s)
{
	pg_wchar	v = 0;
	int			i;

	for (i = 0; i < 4; i++)
		v = (v << 4) | (isdigit((unsigned char) s[i]) ? s[i] - '0' :
						(pg_tolower((unsigned char) s[i]) - 'a' + 10));
	return v;
}

/*
 * Length of the \u escape at s (6, or 12 for a surrogate pair) and whether
 * jsonb accepts it: not \u0000 (text cannot hold it), not an unpaired
 * surrogate, a character the server encoding has.
 */
static int
UnicodeEscape(const char *s, const char *end, bool *fits)
{
	pg_wchar	c = HexCodeUnit(s + 2);

	if (c >= 0xd800 && c <= 0xdbff && end - s >= 12 && s[6] == '\\' && s[7] == 'u')
	{
		pg_wchar	lo = HexCodeUnit(s + 8);

		if (lo >= 0xdc00 && lo <= 0xdfff)
		{
			*fits = CodePointFits(0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00));
			return 12;
		}
	}
	*fits = c != 0 && !(c >= 0xd800 && c <= 0xdfff) && CodePointFits(c);
	return 6;
}

/*
 * Append the text of a json or jsonb value so that jsonb reads it back, as
 * spec section 6 wants of every event, and note what had to change (see
 * docs/events.md): a \u escape jsonb refuses becomes U+FFFD (or "?" where
 * the server encoding lacks it), a number numeric cannot hold becomes a
 * string of its digits, and a value nested deeper than JSON_MAX_DEPTH
 * becomes a string of its whole text.  The text is valid JSON (json_in
 * checked it); one the scan does not follow is kept as a string too.  The
 * first pass only looks, so most values are copied as they are.
 */
static void
AppendJsonText(StringInfo buf, const char *s)
{
	const char *end = s + strlen(s);
	const char *p;
	const char *from;
	int			depth = 0;
	bool		instr = false;
	bool		clean = true;
	bool		fits;
	int			n;

	for (p = s; p < end; p++)
	{
		if (instr)
		{
			if (*p == '"')
				instr = false;
			else if (*p == '\\' && p + 1 < end && p[1] != 'u')
				p++;
			else if (*p == '\\')
			{
				if (end - p < 6)
					break;
				p += UnicodeEscape(p, end, &fits) - 1;
				clean &= fits;
			}
		}
		else if (*p == '"')
			instr = true;
		else if (*p == '[' || *p == '{')
		{
			if (++depth > JSON_MAX_DEPTH)
				break;
		}
		else if (*p == ']' || *p == '}')
			depth--;
		else if (*p == '-' || isdigit((unsigned char) *p))
		{
			n = strspn(p, "+-.0123456789eE");
			clean &= JsonNumberFits(p, n);
			p += n - 1;
		}
	}
	if (p < end || instr)
	{
		escape_json(buf, s);	/* too deep, or not understood */
		return;
	}
	if (clean)
	{
		appendBinaryStringInfo(buf, s, end - s);
		return;
	}

	/* second pass: copy, repairing what the first one found */
	instr = false;
	for (p = from = s; p < end; p++)
	{
		if (instr)
		{
			if (*p == '"')
				instr = false;
			else if (*p == '\\' && p[1] != 'u')
				p++;
			else if (*p == '\\')
			{
				n = UnicodeEscape(p, end, &fits);
				if (!fits)
				{
					appendBinaryStringInfo(buf, from, p - from);
					appendStringInfoString(buf, CodePointFits(0xfffd) ? "\\ufffd" : "?");
					from = p + n;
				}
				p += n - 1;
			}
		}
		else if (*p == '"')
			instr = true;
		else if (*p == '-' || isdigit((unsigned char) *p))
		{
			n = strspn(p, "+-.0123456789eE");
			if (!JsonNumberFits(p, n))
			{
				appendBinaryStringInfo(buf, from, p - from);
				appendStringInfoChar(buf, '"');
				appendBinaryStringInfo(buf, p, n);
				appendStringInfoChar(buf, '"');
				from = p + n;
			}
			p += n - 1;
		}
	}
	appendBinaryStringInfo(buf, from, end - from);
}

/* Append a JSON value for a column, the way to_json would write it. */
static void
AppendJsonValue(StringInfo buf, MappedCol *c, HeapTuple tup, TupleDesc desc)
{
	char	   *s;

	if (c->plain_number)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, c->attnum, desc, &isnull);

		if (isnull)
			appendStringInfoString(buf, "null");
		else if (!IntText(c, d, buf))
			appendStringInfoString(buf, OutputFunctionCall(&c->outfn, d));	/* oid */
		return;
	}
	s = ColText(c, tup, desc);

	if (s == NULL)
		appendStringInfoString(buf, "null");
	else if (c->cat == JC_BOOL)
		appendStringInfoString(buf, s[0] == 't' ? "true" : "false");
	else if (c->cat == JC_JSON)
		AppendJsonText(buf, s);
	else if (c->cat == JC_NUMBER && strspn(s, "0123456789+-.eE") == strlen(s))
		appendStringInfoString(buf, s);
	else
		escape_json(buf, s);	/* also NaN and Infinity, as strings */
}

/* Append the mapped columns of a row as a JSON object. */
void
AppendRow(StringInfo buf, CaptureMap *map, HeapTuple tup, TupleDesc desc)
{
	int			i;

	appendStringInfoChar(buf, '{');
	for (i = 0; i < map->ncols; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		appendStringInfoString(buf, map->cols[i].json_key);
		AppendJsonValue(buf, &map->cols[i], tup, desc);
	}
	appendStringInfoChar(buf, '}');
}

/* The client's IP address, or NULL over a Unix socket or in a worker. */
static char *
ClientAddr(void)
{
	LOCAL_FCINFO(fcinfo, 0);
	Datum		d;

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	d = inet_client_addr(fcinfo);
	if (fcinfo->isnull)
		return NULL;
	return DatumGetCString(DirectFunctionCall1(inet_out, d));
}

/*
 * The origin of the current change, in the outbox's compact form (a JSON
 * array, expanded by connector._origin when read): via, db_user,
 * session_user, application_name, client_addr, and for a platform call
 * operation and request_id; in a transaction with a client mark (SCIM),
 * operation and request_id (null when not a platform call) then the client,
 * when the mark's token belongs to the application of the change.
 * A platform call names the role that called the API; anything else the
 * role that ran the DML.
 */
static char *
RenderOrigin(bool with_client)
{
	const ConnectorOrigin *o = ConnectorCurrentOrigin();
	uint64		client_gen;
	const char *client = with_client ? ConnectorOriginClient(&client_gen) : NULL;
	StringInfoData buf;
	Oid			user = o->active ? o->caller : capture_user;
	const char *appname = GetConfigOption("application_name", true, false);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	AppendJsonString(&buf, o->via, ',');
	AppendJsonString(&buf, GetUserNameFromId(user, true), ',');
	AppendJsonString(&buf, GetUserNameFromId(GetSessionUserId(), true), ',');
	AppendJsonString(&buf, appname && appname[0] ? appname : NULL, ',');
	AppendJsonString(&buf, ClientAddr(), o->active || client ? ',' : 0);
	if (o->active || client)
	{
		AppendJsonString(&buf, o->active ? o->operation : NULL, ',');
		AppendJsonString(&buf, o->active ? o->request_id : NULL, client ? ',' : 0);
	}
	if (client)
		AppendJsonString(&buf, client, 0);
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/*
 * The origin JSON of a change to app, rendered again only when something
 * in it can have changed: the role, the origin and client marks,
 * application_name, whether the client mark's token is app's (a token is
 * valid for its one application, so a change to another one is not its
 * client's).
 * (The login and the client address are fixed for the session.)  Kept in
 * TopMemoryContext, so chunks may point at it for the whole transaction.
 */
const char *
CurrentOrigin(const char *app)
{
	/* the text without and with the client, each rendered when first needed */
	static char *cached[2] = {NULL, NULL};
	static char *cached_appname = NULL;
	static Oid	user;
	static uint64 generation;
	static uint64 client_generation;
	static LocalTransactionId lxid = InvalidLocalTransactionId;
	static CommandId cid;
	const ConnectorOrigin *o = ConnectorCurrentOrigin();
	const char *appname;
	uint64		client_gen;
	const char *client_app;
	int			w;

	w = ConnectorOriginClient(&client_gen) != NULL &&
		(client_app = ConnectorOriginClientApp()) != NULL && strcmp(client_app, app) == 0;

	/* within one statement only the role and the marks can change */
	if (cached_appname != NULL && lxid == MyProc->lxid && cid == GetCurrentCommandId(false) &&
		user == capture_user && generation == o->generation &&
		client_generation == client_gen)
		goto render;
	lxid = MyProc->lxid;
	cid = GetCurrentCommandId(false);
	appname = GetConfigOption("application_name", true, false);
	if (appname == NULL)
		appname = "";
	if (cached_appname != NULL && user == capture_user && generation == o->generation &&
		client_generation == client_gen && strcmp(cached_appname, appname) == 0)
		goto render;
	/* an old text may still be pointed at by this transaction's chunks */
	if (cached_appname != NULL && !EventsBuffered())
	{
		if (cached[0])
			pfree(cached[0]);
		if (cached[1])
			pfree(cached[1]);
		pfree(cached_appname);
	}
	cached[0] = cached[1] = NULL;
	cached_appname = MemoryContextStrdup(TopMemoryContext, appname);
	user = capture_user;
	generation = o->generation;
	client_generation = client_gen;
render:
	if (cached[w] == NULL)
		cached[w] = MemoryContextStrdup(TopMemoryContext, RenderOrigin(w));
	return cached[w];
}

/* RFC 3339 UTC text of a timestamp, with microseconds. */
static void
AppendTimestamp(StringInfo buf, TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "timestamp out of range");
	appendStringInfo(buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06dZ\"",
					 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
					 (int) fsec);
}

/*
 * The time of the current statement, rendered once per statement: the
 * events of one statement share it.
 */
const char *
StatementTimestamp(void)
{
	static char text[40];
	static LocalTransactionId lxid = InvalidLocalTransactionId;
	static CommandId cid;
	StringInfoData buf;

	if (lxid == MyProc->lxid && cid == GetCurrentCommandId(false))
		return text;
	initStringInfo(&buf);
	AppendTimestamp(&buf, GetCurrentStatementStartTimestamp());
	strlcpy(text, buf.data, sizeof(text));
	pfree(buf.data);
	lxid = MyProc->lxid;
	cid = GetCurrentCommandId(false);
	return text;
}
