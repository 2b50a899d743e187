/*-------------------------------------------------------------------------
 *
 * outbox_read.c
 *	  Reading the outbox: the sealed events of an application after a
 *	  position, as references (position and id) or as the event JSON of
 *	  spec section 6, rendered in C straight from the compact rows the
 *	  capture trigger writes (capture_outbox.c, EmitEvent).
 *
 * The text rendered is byte for byte the text of the jsonb that the SQL
 * expansion (connector._event, kept as connector._events_sql) builds: keys
 * in jsonb's order (shorter first, then bytewise), ", " and ": " between
 * items, and every part taken from the compact event through jsonb, so
 * values read back exactly as jsonb writes them.  A retried message, and
 * changes(), see the same bytes as before this reader existed.
 *
 * One index scan on the outbox's position index serves a whole call: rows
 * are read in position order from the row that may hold the first position
 * wanted (a row holds up to 1000 events), and only the events wanted are
 * parsed, so the cost of a call follows the events it returns, not the
 * size of the outbox.
 *
 * IDENTIFICATION
 *	  src/outbox_read.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "connector.h"
#include "capture.h"

PG_FUNCTION_INFO_V1(connector_render_events);
PG_FUNCTION_INFO_V1(connector_events);
PG_FUNCTION_INFO_V1(connector_event_refs);
PG_FUNCTION_INFO_V1(connector_message_bodies);

/* Events per outbox row at most (capture_outbox.c, CHUNK_EVENTS). */
#define ROW_EVENTS_MAX 1000

/* Number of event types in event_types (from 1). */
#define NUM_EVENT_TYPES 15

/* The outbox row being read. */
typedef struct OutboxRow
{
	int64		position;		/* of its first event */
	uint64		txid;
	int32		seq;
	int32		n;
	TimestampTz occurred_at;
	text	   *origin_raw;		/* compact origin, as stored */
	char	   *origin;			/* the origin object, rendered when first needed */
	Jsonb	   *origin_jb;		/* the compact origin, parsed when first needed */
	text	   *events_raw;		/* compact events, as stored (maybe toasted) */
	char	   *events;			/* detoasted, NUL-terminated, when first needed */
	const char *next;			/* start of element "parsed" in events */
	int			parsed;
} OutboxRow;

/* A scan of an application's sealed events in position order. */
typedef struct EventScan
{
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	const char *app;
	int			applen;
	int64		after;			/* events after this position */
	int64		upto;			/* up to this one */
	char	  **types;			/* types filter, or NULL */
	int			ntypes;
	MemoryContext rowcxt;		/* the current row's memory */
	MemoryContext evcxt;		/* the current event's memory */
	bool		have_row;
	int			i;				/* next event of the row, from 0 */
	OutboxRow	row;
	StringInfoData scratch;		/* one element's text */
} EventScan;

/* One event found by a scan. */
typedef struct FoundEvent
{
	int64		position;
	const char *type;			/* NULL when not known (no filter, no rendering) */
	Jsonb	   *ev;				/* the compact event, when parsed */
} FoundEvent;

/* ---- JSON text ---- */

/*
 * Append str[0..len) as a JSON string, escaped as escape_json (and so
 * jsonb's output) escapes it.
 */
static void
AppendJsonStringN(StringInfo buf, const char *str, int len)
{
	const char *p = str;
	const char *end = str + len;
	const char *from = str;

	enlargeStringInfo(buf, len + 2);
	appendStringInfoCharMacro(buf, '"');
	for (; p < end; p++)
	{
		unsigned char c = (unsigned char) *p;
		const char *esc;

		if (c >= ' ' && c != '"' && c != '\\')
			continue;
		appendBinaryStringInfo(buf, from, p - from);
		from = p + 1;
		switch (c)
		{
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			default:
				appendStringInfo(buf, "\\u%04x", (int) c);
				continue;
		}
		appendStringInfoString(buf, esc);
	}
	appendBinaryStringInfo(buf, from, end - from);
	appendStringInfoCharMacro(buf, '"');
}

/* Append a value of a jsonb as jsonb's output writes it; NULL (absent) is null. */
static void
AppendJsonbValue(StringInfo buf, JsonbValue *v)
{
	if (v == NULL)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	switch (v->type)
	{
		case jbvNull:
			appendStringInfoString(buf, "null");
			break;
		case jbvString:
			AppendJsonStringN(buf, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(buf, DatumGetCString(DirectFunctionCall1(numeric_out,
																			NumericGetDatum(v->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(buf, v->val.boolean ? "true" : "false");
			break;
		case jbvBinary:
			(void) JsonbToCString(buf, v->val.binary.data, v->val.binary.len);
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
}

/*
 * The text ->> gives of a value (NULL for a JSON null or an absent one):
 * a string unescaped, anything else as jsonb writes it.
 */
static char *
JsonbValueText(JsonbValue *v)
{
	StringInfoData buf;

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	initStringInfo(&buf);
	AppendJsonbValue(&buf, v);
	return buf.data;
}

/* Element k of an array container (as -> k), or NULL. */
static JsonbValue *
Element(JsonbContainer *c, int k)
{
	if (c == NULL || !JsonContainerIsArray(c) || JsonContainerIsScalar(c))
		return NULL;
	return getIthJsonbValueFromContainer(c, k);
}

/* The container of a value that is an array or object, else NULL. */
static JsonbContainer *
Container(JsonbValue *v)
{
	return v != NULL && v->type == jbvBinary ? v->val.binary.data : NULL;
}

/* Whether part (an element of the compact event) is there and not null. */
static inline bool
Present(JsonbValue *v)
{
	return v != NULL && v->type != jbvNull;
}

/* ---- compact events ---- */

/* p at a string's opening quote: the closing one. */
static const char *
SkipString(const char *p)
{
	for (p++;; p++)
	{
		if (*p == '"')
			return p;
		if (*p == '\\')
			p++;
		if (*p == '\0')
			elog(ERROR, "connector.outbox holds a malformed event");
	}
}

/*
 * p at the start of a JSON value inside an array: where it ends (at the
 * ',' or ']' that follows a scalar, just after a string, array or object).
 * The compact text is JSON the capture trigger wrote; this only finds the
 * bounds, jsonb reads the value.
 */
static const char *
SkipValue(const char *p)
{
	int			depth = 0;

	for (;; p++)
	{
		switch (*p)
		{
			case '\0':
				elog(ERROR, "connector.outbox holds a malformed event");
				break;
			case '"':
				p = SkipString(p);
				if (depth == 0)
					return p + 1;
				break;
			case '[':
			case '{':
				depth++;
				break;
			case ']':
			case '}':
				if (depth == 0)
					return p;
				if (--depth == 0)
					return p + 1;
				break;
			case ',':
				if (depth == 0)
					return p;
				break;
			default:
				break;
		}
	}
}

/* Skip JSON whitespace and one separator. */
static const char *
SkipSeparator(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p == ',')
		p++;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/*
 * The text of event i of the current row, as [*start, *end): found by
 * skipping the elements before it (events are read in order, so each is
 * skipped once).
 */
static void
EventText(EventScan *s, int i, const char **start, const char **end)
{
	OutboxRow  *r = &s->row;

	if (r->events == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(s->rowcxt);

		r->events = text_to_cstring(r->events_raw);
		MemoryContextSwitchTo(old);
		r->next = r->events;
		while (*r->next == ' ' || *r->next == '\n' || *r->next == '\t' || *r->next == '\r')
			r->next++;
		if (*r->next != '[')
			elog(ERROR, "connector.outbox holds a malformed event");
		r->next = SkipSeparator(r->next + 1);
		r->parsed = 0;
	}
	while (r->parsed < i)
	{
		if (*r->next == ']' || *r->next == '\0')
			elog(ERROR, "connector.outbox row at position " INT64_FORMAT " has fewer events than it counts",
				 r->position);
		r->next = SkipSeparator(SkipValue(r->next));
		r->parsed++;
	}
	if (*r->next == ']' || *r->next == '\0')
		elog(ERROR, "connector.outbox row at position " INT64_FORMAT " has fewer events than it counts",
			 r->position);
	*start = r->next;
	*end = SkipValue(r->next);
	r->next = SkipSeparator(*end);
	r->parsed++;
}

/* Parse the text [start, end) as jsonb, in the event's memory. */
static Jsonb *
ParseJsonb(EventScan *s, const char *start, const char *end)
{
	MemoryContext old = MemoryContextSwitchTo(s->evcxt);
	Jsonb	   *jb;

	resetStringInfo(&s->scratch);
	appendBinaryStringInfo(&s->scratch, start, end - start);
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s->scratch.data)));
	MemoryContextSwitchTo(old);
	return jb;
}

/* The name of an event type given by its number, or NULL. */
static const char *
EventTypeName(int64 code)
{
	return code >= 1 && code <= NUM_EVENT_TYPES ? event_types[code] : NULL;
}

/*
 * An event's type as connector._event_type gives it: the name of a number,
 * or the text of anything else (NULL for null).
 */
static const char *
EventType(JsonbValue *t)
{
	if (t != NULL && t->type == jbvNumeric)
		return EventTypeName(pg_strtoint32(DatumGetCString(DirectFunctionCall1(numeric_out,
																		  NumericGetDatum(t->val.numeric)))));
	return JsonbValueText(t);
}

/*
 * The type of an event from its text, without parsing it, when it is a
 * plain number or a string without escapes (the trigger writes nothing
 * else); *known false otherwise.
 */
static const char *
QuickType(const char *p, bool *known)
{
	*known = false;
	if (*p != '[')
		return NULL;
	p++;
	if (isdigit((unsigned char) *p))
	{
		int64		code = 0;

		for (; isdigit((unsigned char) *p) && code < 1000000; p++)
			code = code * 10 + (*p - '0');
		if (*p != ',' && *p != ']')
			return NULL;
		*known = true;
		return EventTypeName(code);
	}
	if (*p == '"')
	{
		const char *q = p + 1;

		while (*q != '"' && *q != '\\' && *q != '\0')
			q++;
		if (*q != '"')
			return NULL;
		*known = true;
		return pnstrdup(p + 1, q - p - 1);
	}
	return NULL;
}

/* Whether type passes the scan's types filter. */
static bool
TypeWanted(EventScan *s, const char *type)
{
	int			k;

	if (s->types == NULL)
		return true;
	if (type == NULL)
		return false;
	for (k = 0; k < s->ntypes; k++)
		if (s->types[k] != NULL && strcmp(s->types[k], type) == 0)
			return true;
	return false;
}

/* ---- the scan ---- */

/*
 * Begin a scan of app's sealed events with positions in (after, upto],
 * optionally of some types only, with the caller's snapshot.
 */
static EventScan *
EventScanBegin(text *app, int64 after, int64 upto, ArrayType *types)
{
	EventScan  *s = palloc0(sizeof(EventScan));
	ScanKeyData key;

	if (!FindOutbox())
		elog(ERROR, "connector.outbox does not exist");
	s->app = VARDATA_ANY(app);
	s->applen = VARSIZE_ANY_EXHDR(app);
	s->after = after;
	s->upto = upto;
	if (types != NULL)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			k;

		deconstruct_array(types, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &s->ntypes);
		s->types = palloc(sizeof(char *) * Max(s->ntypes, 1));
		for (k = 0; k < s->ntypes; k++)
			s->types[k] = nulls[k] ? NULL : TextDatumGetCString(elems[k]);
	}
	s->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "connector outbox row",
									  ALLOCSET_DEFAULT_SIZES);
	/* an event's memory is freed at once: a first block that holds most */
	s->evcxt = AllocSetContextCreate(CurrentMemoryContext, "connector outbox event",
									 0, 64 * 1024, ALLOCSET_DEFAULT_MAXSIZE);
	initStringInfo(&s->scratch);
	s->rel = table_open(outbox_relid, AccessShareLock);
	s->idx = index_open(outbox_indexid, AccessShareLock);
	s->slot = table_slot_create(s->rel, NULL);
	/* the row holding position after + 1 starts at most 999 positions earlier */
	ScanKeyInit(&key, 1, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(after > PG_INT64_MIN + ROW_EVENTS_MAX ? after - ROW_EVENTS_MAX : after));
	s->scan = index_beginscan(s->rel, s->idx, GetActiveSnapshot(), 1, 0);
	index_rescan(s->scan, &key, 1, NULL, 0);
	return s;
}

static void
EventScanEnd(EventScan *s)
{
	index_endscan(s->scan);
	ExecDropSingleTupleTableSlot(s->slot);
	index_close(s->idx, AccessShareLock);
	table_close(s->rel, AccessShareLock);
	MemoryContextDelete(s->rowcxt);
	MemoryContextDelete(s->evcxt);
}

/* The next row of the application, or false at the end (or past upto). */
static bool
NextRow(EventScan *s)
{
	OutboxRow  *r = &s->row;

	MemoryContextReset(s->rowcxt);
	while (index_getnext_slot(s->scan, ForwardScanDirection, s->slot))
	{
		bool		isnull;
		Datum		d;
		text	   *app;
		MemoryContext old;

		d = slot_getattr(s->slot, 1, &isnull);
		if (isnull)
			continue;
		r->position = DatumGetInt64(d);
		if (r->position > s->upto)
			return false;
		app = DatumGetTextPP(slot_getattr(s->slot, 5, &isnull));
		if (VARSIZE_ANY_EXHDR(app) != s->applen ||
			memcmp(VARDATA_ANY(app), s->app, s->applen) != 0)
			continue;
		r->n = DatumGetInt32(slot_getattr(s->slot, 4, &isnull));
		if (r->position + r->n - 1 <= s->after)
			continue;
		r->txid = DatumGetUInt64(slot_getattr(s->slot, 2, &isnull));
		r->seq = DatumGetInt32(slot_getattr(s->slot, 3, &isnull));
		r->occurred_at = DatumGetTimestampTz(slot_getattr(s->slot, 6, &isnull));
		/* the texts outlive the slot's next tuple: copied (not detoasted) */
		old = MemoryContextSwitchTo(s->rowcxt);
		r->origin_raw = (text *) PG_DETOAST_DATUM_COPY(slot_getattr(s->slot, 7, &isnull));
		r->events_raw = (text *) DatumGetPointer(datumCopy(slot_getattr(s->slot, 8, &isnull),
														   false, -1));
		MemoryContextSwitchTo(old);
		r->origin = NULL;
		r->origin_jb = NULL;
		r->events = NULL;
		s->i = (int) Max(0, s->after + 1 - r->position);
		return true;
	}
	return false;
}

/*
 * The next event of the scan into *ev: parsed when parse, or when the types
 * filter needs it.  False at the end.
 */
static bool
EventScanNext(EventScan *s, bool parse, FoundEvent *ev)
{
	MemoryContext old = CurrentMemoryContext;

	MemoryContextReset(s->evcxt);
	for (;;)
	{
		const char *start;
		const char *end;
		int			i;
		bool		wanted;

		if (!s->have_row || s->i >= s->row.n)
		{
			s->have_row = NextRow(s);
			if (!s->have_row)
				return false;
			continue;
		}
		i = s->i++;
		ev->position = s->row.position + i;
		if (ev->position > s->upto)
		{
			s->have_row = false;
			s->i = 0;
			return false;
		}
		ev->type = NULL;
		ev->ev = NULL;
		if (!parse && s->types == NULL)
			return true;
		EventText(s, i, &start, &end);
		MemoryContextSwitchTo(s->evcxt);
		if (!parse)
		{
			bool		known;

			ev->type = QuickType(start, &known);
			if (!known)
			{
				ev->ev = ParseJsonb(s, start, end);
				ev->type = EventType(Element(&ev->ev->root, 0));
			}
		}
		else
		{
			ev->ev = ParseJsonb(s, start, end);
			ev->type = EventType(Element(&ev->ev->root, 0));
		}
		MemoryContextSwitchTo(old);
		wanted = TypeWanted(s, ev->type);
		if (wanted)
			return true;
		MemoryContextReset(s->evcxt);
	}
}

/* ---- rendering ---- */

/* RFC 3339 UTC text of a timestamp with microseconds, as _event_time writes it. */
static void
AppendUtcTime(StringInfo buf, TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	appendStringInfo(buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06dZ\"",
					 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
					 (int) fsec);
}

/*
 * The origin object of the current row (connector._origin), rendered once
 * per row: the compact [via, db_user, session_user, application_name,
 * client_addr(, operation, request_id(, client))] in jsonb's key order.
 */
static JsonbContainer *
RowOriginParsed(EventScan *s)
{
	OutboxRow  *r = &s->row;
	MemoryContext old;
	JsonbContainer *c;

	if (r->origin_jb == NULL)
	{
		old = MemoryContextSwitchTo(s->rowcxt);
		r->origin_jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														  CStringGetDatum(text_to_cstring(r->origin_raw))));
		MemoryContextSwitchTo(old);
	}
	c = &r->origin_jb->root;
	/* as jsonb_array_length in connector._origin */
	if (!JsonContainerIsArray(c) || JsonContainerIsScalar(c))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot get array length of a non-array")));
	return c;
}

/*
 * Whether an origin carries operation and request_id: as connector._origin,
 * a sixth element that is not JSON null (a client mark on a direct change
 * pads them with nulls).
 */
static bool
OriginHasOperation(JsonbContainer *c)
{
	return JsonContainerSize(c) > 5 && Element(c, 5)->type != jbvNull;
}

static const char *
RowOrigin(EventScan *s)
{
	OutboxRow  *r = &s->row;
	StringInfoData buf;
	JsonbContainer *c;
	MemoryContext old;

	if (r->origin != NULL)
		return r->origin;
	c = RowOriginParsed(s);
	old = MemoryContextSwitchTo(s->rowcxt);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"via\": ");
	AppendJsonbValue(&buf, Element(c, 0));
	if (JsonContainerSize(c) > 7)
	{
		appendStringInfoString(&buf, ", \"client\": ");
		AppendJsonbValue(&buf, Element(c, 7));
	}
	appendStringInfoString(&buf, ", \"db_user\": ");
	AppendJsonbValue(&buf, Element(c, 1));
	if (OriginHasOperation(c))
	{
		appendStringInfoString(&buf, ", \"operation\": ");
		AppendJsonbValue(&buf, Element(c, 5));
		appendStringInfoString(&buf, ", \"request_id\": ");
		AppendJsonbValue(&buf, Element(c, 6));
	}
	appendStringInfoString(&buf, ", \"client_addr\": ");
	AppendJsonbValue(&buf, Element(c, 4));
	appendStringInfoString(&buf, ", \"session_user\": ");
	AppendJsonbValue(&buf, Element(c, 2));
	appendStringInfoString(&buf, ", \"application_name\": ");
	AppendJsonbValue(&buf, Element(c, 3));
	appendStringInfoChar(&buf, '}');
	r->origin = buf.data;
	MemoryContextSwitchTo(old);
	return r->origin;
}

/* Append the id of an event: evt_<txid>_<number in its transaction>. */
static void
AppendEventId(StringInfo buf, OutboxRow *r, int64 position)
{
	appendStringInfo(buf, "evt_" UINT64_FORMAT "_" INT64_FORMAT,
					 r->txid, (int64) r->seq + (position - r->position));
}

/*
 * Append the event JSON of spec section 6 for ev (parsed) of the current
 * row, exactly as connector._event(...)::text writes it.  The compact
 * event is [type, account [id, name, kind], entitlement [id, name], after,
 * before, credential id, expires_at, timestamp] (absent parts null or left
 * out at the end; a null timestamp is the row's occurred_at).
 */
static void
RenderEvent(EventScan *s, FoundEvent *ev, StringInfo buf)
{
	OutboxRow  *r = &s->row;
	JsonbContainer *e = &ev->ev->root;
	JsonbValue *account = Element(e, 1);
	JsonbValue *entitlement = Element(e, 2);
	JsonbValue *credential = Element(e, 5);
	char	   *expires;
	char	   *ts;
	MemoryContext old = MemoryContextSwitchTo(s->evcxt);

	/* buf keeps the memory it has: only what is made along the way is here */
	expires = JsonbValueText(Element(e, 6));
	ts = JsonbValueText(Element(e, 7));

	appendStringInfoString(buf, "{\"id\": \"");
	AppendEventId(buf, r, ev->position);
	appendStringInfoString(buf, "\", \"data\": {\"app\": ");
	AppendJsonStringN(buf, s->app, s->applen);
	appendStringInfo(buf, ", \"txid\": \"" UINT64_FORMAT "\", \"after\": ", r->txid);
	AppendJsonbValue(buf, Element(e, 3));
	appendStringInfoString(buf, ", \"before\": ");
	AppendJsonbValue(buf, Element(e, 4));
	appendStringInfoString(buf, ", \"origin\": ");
	appendStringInfoString(buf, RowOrigin(s));
	if (Present(account))
	{
		JsonbContainer *a = Container(account);

		appendStringInfoString(buf, ", \"account\": {\"id\": ");
		AppendJsonbValue(buf, Element(a, 0));
		appendStringInfoString(buf, ", \"kind\": ");
		AppendJsonbValue(buf, Element(a, 2));
		appendStringInfoString(buf, ", \"name\": ");
		AppendJsonbValue(buf, Element(a, 1));
		appendStringInfoChar(buf, '}');
	}
	appendStringInfo(buf, ", \"position\": " INT64_FORMAT, ev->position);
	if (Present(credential))
	{
		appendStringInfoString(buf, ", \"credential\": {\"id\": ");
		AppendJsonbValue(buf, credential);
		appendStringInfoChar(buf, '}');
	}
	appendStringInfoString(buf, ", \"expires_at\": ");
	if (expires == NULL)
		appendStringInfoString(buf, "null");
	else
	{
		/* to_jsonb(text::timestamptz): read and written in the session's time zone */
		Datum		t = DirectFunctionCall3(timestamptz_in, CStringGetDatum(expires),
											ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));

		escape_json(buf, JsonEncodeDateTime(NULL, t, TIMESTAMPTZOID, NULL));
	}
	if (Present(entitlement))
	{
		JsonbContainer *n = Container(entitlement);

		appendStringInfoString(buf, ", \"entitlement\": {\"id\": ");
		AppendJsonbValue(buf, Element(n, 0));
		appendStringInfoString(buf, ", \"name\": ");
		AppendJsonbValue(buf, Element(n, 1));
		appendStringInfoChar(buf, '}');
	}
	appendStringInfoString(buf, "}, \"type\": ");
	if (ev->type)
		AppendJsonStringN(buf, ev->type, strlen(ev->type));
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ", \"timestamp\": ");
	if (ts)
		AppendJsonStringN(buf, ts, strlen(ts));
	else
		AppendUtcTime(buf, r->occurred_at);
	appendStringInfoChar(buf, '}');
	MemoryContextSwitchTo(old);
}

/* ---- the same event as jsonb (changes()) ---- */

/*
 * The event is built as a tree of JsonbValues whose objects list their keys
 * already in jsonb's order (shorter first, then bytewise), and turned into
 * jsonb in one pass: pushJsonbValue would sort every object again.
 */

/* A value in the event's memory: a copy of v, or null for NULL. */
static JsonbValue *
Value(JsonbValue *v)
{
	JsonbValue *out = palloc(sizeof(JsonbValue));

	if (v == NULL)
		out->type = jbvNull;
	else
		*out = *v;
	return out;
}

static JsonbValue *
StringValue(const char *str)
{
	JsonbValue *v = palloc(sizeof(JsonbValue));

	if (str == NULL)
	{
		v->type = jbvNull;
		return v;
	}
	v->type = jbvString;
	v->val.string.val = (char *) str;
	v->val.string.len = strlen(str);
	return v;
}

static JsonbValue *
NewObject(int size)
{
	JsonbValue *v = palloc(sizeof(JsonbValue));

	v->type = jbvObject;
	v->val.object.nPairs = 0;
	v->val.object.pairs = palloc(sizeof(JsonbPair) * size);
	return v;
}

/* Add key: value, the keys in jsonb's order. */
static void
AddPair(JsonbValue *obj, const char *key, JsonbValue *value)
{
	JsonbPair  *p = &obj->val.object.pairs[obj->val.object.nPairs];

	p->key.type = jbvString;
	p->key.val.string.val = (char *) key;
	p->key.val.string.len = strlen(key);
	p->value = *value;
	p->order = obj->val.object.nPairs++;
}

/*
 * A value taken from a jsonb container (jbvBinary) as a tree, in place: its
 * keys are in jsonb's order already.
 */
static void
Unpack(JsonbValue *v)
{
	JsonbContainer *c;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	tmp;
	int			n = 0;

	if (v->type != jbvBinary)
		return;
	c = v->val.binary.data;
	it = JsonbIteratorInit(c);
	tok = JsonbIteratorNext(&it, &tmp, true);
	if (tok == WJB_BEGIN_OBJECT)
	{
		JsonbPair  *pairs = palloc(sizeof(JsonbPair) * Max(JsonContainerSize(c), 1));

		while ((tok = JsonbIteratorNext(&it, &tmp, true)) == WJB_KEY)
		{
			pairs[n].key = tmp;
			pairs[n].order = n;
			(void) JsonbIteratorNext(&it, &tmp, true);
			Unpack(&tmp);
			pairs[n++].value = tmp;
		}
		v->type = jbvObject;
		v->val.object.nPairs = n;
		v->val.object.pairs = pairs;
	}
	else
	{
		JsonbValue *elems = palloc(sizeof(JsonbValue) * Max(JsonContainerSize(c), 1));

		while ((tok = JsonbIteratorNext(&it, &tmp, true)) == WJB_ELEM)
		{
			Unpack(&tmp);
			elems[n++] = tmp;
		}
		v->type = jbvArray;
		v->val.array.nElems = n;
		v->val.array.elems = elems;
		v->val.array.rawScalar = false;
	}
}

/* A part of the compact event as a tree (null when absent). */
static JsonbValue *
TreeValue(JsonbValue *v)
{
	JsonbValue *out = Value(v);

	Unpack(out);
	return out;
}

/* The event of RenderEvent as jsonb, built from the parsed parts. */
static Jsonb *
EventJsonb(EventScan *s, FoundEvent *ev)
{
	OutboxRow  *r = &s->row;
	JsonbContainer *e = &ev->ev->root;
	JsonbValue *account = Element(e, 1);
	JsonbValue *entitlement = Element(e, 2);
	JsonbValue *credential = Element(e, 5);
	JsonbContainer *o;
	JsonbValue *top;
	JsonbValue *data;
	JsonbValue *origin;
	JsonbValue	num;
	char	   *expires;
	char	   *ts;
	StringInfoData id;
	MemoryContext old;
	Jsonb	   *out;

	o = RowOriginParsed(s);
	old = MemoryContextSwitchTo(s->evcxt);
	expires = JsonbValueText(Element(e, 6));
	ts = JsonbValueText(Element(e, 7));
	initStringInfo(&id);
	AppendEventId(&id, r, ev->position);
	if (ts == NULL)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		AppendUtcTime(&buf, r->occurred_at);
		buf.data[buf.len - 1] = '\0';
		ts = buf.data + 1;
	}

	origin = NewObject(7);
	AddPair(origin, "via", TreeValue(Element(o, 0)));
	if (JsonContainerSize(o) > 7)
		AddPair(origin, "client", TreeValue(Element(o, 7)));
	AddPair(origin, "db_user", TreeValue(Element(o, 1)));
	if (OriginHasOperation(o))
	{
		AddPair(origin, "operation", TreeValue(Element(o, 5)));
		AddPair(origin, "request_id", TreeValue(Element(o, 6)));
	}
	AddPair(origin, "client_addr", TreeValue(Element(o, 4)));
	AddPair(origin, "session_user", TreeValue(Element(o, 2)));
	AddPair(origin, "application_name", TreeValue(Element(o, 3)));

	data = NewObject(10);
	AddPair(data, "app", StringValue(pnstrdup(s->app, s->applen)));
	AddPair(data, "txid", StringValue(psprintf(UINT64_FORMAT, r->txid)));
	AddPair(data, "after", TreeValue(Element(e, 3)));
	AddPair(data, "before", TreeValue(Element(e, 4)));
	AddPair(data, "origin", origin);
	if (Present(account))
	{
		JsonbContainer *a = Container(account);
		JsonbValue *acc = NewObject(3);

		AddPair(acc, "id", TreeValue(Element(a, 0)));
		AddPair(acc, "kind", TreeValue(Element(a, 2)));
		AddPair(acc, "name", TreeValue(Element(a, 1)));
		AddPair(data, "account", acc);
	}
	num.type = jbvNumeric;
	num.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(ev->position)));
	AddPair(data, "position", &num);
	if (Present(credential))
	{
		JsonbValue *cred = NewObject(1);

		AddPair(cred, "id", TreeValue(credential));
		AddPair(data, "credential", cred);
	}
	if (expires == NULL)
		AddPair(data, "expires_at", Value(NULL));
	else
		AddPair(data, "expires_at",
				StringValue(JsonEncodeDateTime(NULL,
											   DirectFunctionCall3(timestamptz_in, CStringGetDatum(expires),
																   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)),
											   TIMESTAMPTZOID, NULL)));
	if (Present(entitlement))
	{
		JsonbContainer *n = Container(entitlement);
		JsonbValue *ent = NewObject(2);

		AddPair(ent, "id", TreeValue(Element(n, 0)));
		AddPair(ent, "name", TreeValue(Element(n, 1)));
		AddPair(data, "entitlement", ent);
	}

	top = NewObject(4);
	AddPair(top, "id", StringValue(id.data));
	AddPair(top, "data", data);
	AddPair(top, "type", StringValue(ev->type));
	AddPair(top, "timestamp", StringValue(ts));
	MemoryContextSwitchTo(old);
	out = JsonbValueToJsonb(top);
	return out;
}

/*
 * The timestamp an event has in its JSON, as text (for a batch's
 * timestamp), in the caller's memory.
 */
static char *
EventTimestamp(EventScan *s, FoundEvent *ev)
{
	MemoryContext old = MemoryContextSwitchTo(s->evcxt);
	char	   *ts = JsonbValueText(Element(&ev->ev->root, 7));
	StringInfoData buf;

	if (ts == NULL)
	{
		initStringInfo(&buf);
		AppendUtcTime(&buf, s->row.occurred_at);
		/* without the quotes */
		buf.data[buf.len - 1] = '\0';
		ts = buf.data + 1;
	}
	MemoryContextSwitchTo(old);
	return pstrdup(ts);
}

/* ---- SQL functions ---- */

/* Arguments common to the readers: app, after, lim, types. */
static EventScan *
ScanFromArgs(FunctionCallInfo fcinfo, int64 *lim)
{
	text	   *app = PG_GETARG_TEXT_PP(0);
	int64		after = PG_GETARG_INT64(1);

	*lim = PG_GETARG_INT64(2);
	return EventScanBegin(app, after, PG_INT64_MAX,
						  PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3));
}

/*
 * The events of _render_events (text) or _events (jsonb): the first lim
 * sealed events of app after position after (of the given types, if any),
 * as (position, type, event), in position order.
 */
static Datum
EventsSRF(FunctionCallInfo fcinfo, bool as_jsonb)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	EventScan  *s;
	FoundEvent	ev;
	int64		lim;
	int64		count = 0;
	StringInfoData buf;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	InitMaterializedSRF(fcinfo, 0);
	s = ScanFromArgs(fcinfo, &lim);
	initStringInfo(&buf);
	while (count < lim && EventScanNext(s, true, &ev))
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int64GetDatum(ev.position);
		if (ev.type)
			values[1] = CStringGetTextDatum(ev.type);
		else
			nulls[1] = true;
		if (as_jsonb)
			values[2] = JsonbPGetDatum(EventJsonb(s, &ev));
		else
		{
			resetStringInfo(&buf);
			RenderEvent(s, &ev, &buf);
			values[2] = PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		count++;
		/* the tuplestore has copied them */
		pfree(DatumGetPointer(values[2]));
		if (!nulls[1])
			pfree(DatumGetPointer(values[1]));
	}
	EventScanEnd(s);
	return (Datum) 0;
}

/* connector._render_events(app, after, lim, types): events as JSON text. */
Datum
connector_render_events(PG_FUNCTION_ARGS)
{
	return EventsSRF(fcinfo, false);
}

/* connector._events(app, after, lim, types): events as jsonb (changes()). */
Datum
connector_events(PG_FUNCTION_ARGS)
{
	return EventsSRF(fcinfo, true);
}

/*
 * connector._event_refs(app, after, lim, types): like _render_events, the
 * positions and ids only: no event is parsed without a types filter, and
 * with one only its type is read.
 */
Datum
connector_event_refs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	EventScan  *s;
	FoundEvent	ev;
	int64		lim;
	int64		count = 0;
	StringInfoData buf;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	InitMaterializedSRF(fcinfo, 0);
	s = ScanFromArgs(fcinfo, &lim);
	initStringInfo(&buf);
	while (count < lim && EventScanNext(s, false, &ev))
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		resetStringInfo(&buf);
		AppendEventId(&buf, &s->row, ev.position);
		values[0] = Int64GetDatum(ev.position);
		values[1] = PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		count++;
	}
	EventScanEnd(s);
	return (Datum) 0;
}

/* A message body being built. */
typedef struct Body
{
	StringInfoData buf;
	int			nevents;
	char	   *max_ts;			/* the latest event timestamp (text order) */
} Body;

/*
 * connector._message_bodies(app, types, batch, firsts, lasts, ids): the
 * bodies of messages, message k holding the events (of the types filter)
 * in [firsts[k], lasts[k]], the ranges in position order and apart: the
 * event JSON itself, or with batch the envelope of spec section 7,
 *   {"id": ids[k], "data": {"events": [...]}, "type": "event.batch",
 *    "timestamp": <latest event timestamp>}
 * as jsonb writes it.  One scan over the events of all the messages.  A
 * single message with no event left is NULL; a batch with none has null
 * events and timestamp (as jsonb_agg and max over no row give).
 */
Datum
connector_message_bodies(PG_FUNCTION_ARGS)
{
	text	   *app;
	bool		batch;
	ArrayType  *firsts_a;
	ArrayType  *lasts_a;
	ArrayType  *ids_a;
	Datum	   *firsts;
	Datum	   *lasts;
	Datum	   *ids;
	bool	   *fnulls;
	bool	   *lnulls;
	bool	   *inulls;
	int			nmsg;
	int			n2;
	int			n3;
	int			k;
	Body	   *bodies;
	Datum	   *out;
	bool	   *outnulls;
	EventScan  *s;
	FoundEvent	ev;
	int			dims[1];
	int			lbs[1] = {1};
	StringInfoData one;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4) || PG_ARGISNULL(5))
		PG_RETURN_NULL();
	app = PG_GETARG_TEXT_PP(0);
	batch = PG_GETARG_BOOL(2);
	firsts_a = PG_GETARG_ARRAYTYPE_P(3);
	lasts_a = PG_GETARG_ARRAYTYPE_P(4);
	ids_a = PG_GETARG_ARRAYTYPE_P(5);
	deconstruct_array(firsts_a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &firsts, &fnulls, &nmsg);
	deconstruct_array(lasts_a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &lasts, &lnulls, &n2);
	deconstruct_array(ids_a, TEXTOID, -1, false, TYPALIGN_INT, &ids, &inulls, &n3);
	if (n2 != nmsg || n3 != nmsg)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("firsts, lasts and ids must have as many elements")));
	for (k = 0; k < nmsg; k++)
		if (fnulls[k] || lnulls[k] || inulls[k] ||
			(k > 0 && DatumGetInt64(firsts[k]) <= DatumGetInt64(lasts[k - 1])))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("message ranges must be given in position order, apart")));
	if (nmsg == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(TEXTOID));

	bodies = palloc0(sizeof(Body) * nmsg);
	for (k = 0; k < nmsg; k++)
		initStringInfo(&bodies[k].buf);
	initStringInfo(&one);
	s = EventScanBegin(app, DatumGetInt64(firsts[0]) - 1, DatumGetInt64(lasts[nmsg - 1]),
					   PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1));
	k = 0;
	while (EventScanNext(s, true, &ev))
	{
		Body	   *b;

		while (k < nmsg && ev.position > DatumGetInt64(lasts[k]))
			k++;
		if (k == nmsg)
			break;
		if (ev.position < DatumGetInt64(firsts[k]))
			continue;			/* between two messages */
		b = &bodies[k];
		if (!batch)
		{
			if (b->nevents == 0)
				RenderEvent(s, &ev, &b->buf);
			b->nevents++;
			continue;
		}
		if (b->nevents == 0)
		{
			appendStringInfoString(&b->buf, "{\"id\": ");
			AppendJsonStringN(&b->buf, VARDATA_ANY(ids[k]), VARSIZE_ANY_EXHDR(ids[k]));
			appendStringInfoString(&b->buf, ", \"data\": {\"events\": [");
		}
		else
			appendStringInfoString(&b->buf, ", ");
		RenderEvent(s, &ev, &b->buf);
		{
			char	   *ts = EventTimestamp(s, &ev);

			if (b->max_ts == NULL || strcmp(ts, b->max_ts) > 0)
				b->max_ts = ts;
			else
				pfree(ts);
		}
		b->nevents++;
	}
	EventScanEnd(s);

	out = palloc(sizeof(Datum) * nmsg);
	outnulls = palloc0(sizeof(bool) * nmsg);
	for (k = 0; k < nmsg; k++)
	{
		Body	   *b = &bodies[k];

		if (batch)
		{
			if (b->nevents == 0)
			{
				appendStringInfoString(&b->buf, "{\"id\": ");
				AppendJsonStringN(&b->buf, VARDATA_ANY(ids[k]), VARSIZE_ANY_EXHDR(ids[k]));
				appendStringInfoString(&b->buf, ", \"data\": {\"events\": null");
			}
			else
				appendStringInfoChar(&b->buf, ']');
			appendStringInfoString(&b->buf, "}, \"type\": \"event.batch\", \"timestamp\": ");
			if (b->max_ts)
				AppendJsonStringN(&b->buf, b->max_ts, strlen(b->max_ts));
			else
				appendStringInfoString(&b->buf, "null");
			appendStringInfoChar(&b->buf, '}');
		}
		else if (b->nevents == 0)
		{
			outnulls[k] = true;
			out[k] = (Datum) 0;
			continue;
		}
		out[k] = PointerGetDatum(cstring_to_text_with_len(b->buf.data, b->buf.len));
		pfree(b->buf.data);
	}
	dims[0] = nmsg;
	PG_RETURN_ARRAYTYPE_P(construct_md_array(out, outnulls, 1, dims, lbs, TEXTOID, -1, false,
											 TYPALIGN_INT));
}
