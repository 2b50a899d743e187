/*-------------------------------------------------------------------------
 *
 * capture_outbox.c
 *	  The buffer of captured events and its writing to connector.outbox,
 *	  with the transaction hooks that keep it.
 *
 * Each event is rendered in compact form into a chunk of its application,
 * origin and subtransaction; chunks are written as dense outbox rows, with
 * direct heap and index inserts, before commit (or earlier when the buffer
 * grows large, or when a reader in the same transaction asks).
 *
 * IDENTIFICATION
 *	  src/capture_outbox.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/nbtree.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/xid8.h"

#include "connector.h"
#include "capture.h"


/* Events per outbox row, and buffered bytes that force a write. */
#define CHUNK_EVENTS 1000
#define CHUNK_BYTES (1024 * 1024)
#define FLUSH_BYTES (8 * 1024 * 1024)

/* Columns of connector.outbox, in table order. */
#define OUTBOX_NATTS 8


/* Buffered events of one application, origin and subtransaction. */
typedef struct Chunk
{
	char	   *app;
	const char *origin;			/* CurrentOrigin()'s text */
	SubTransactionId subid;		/* subtransaction whose events these are */
	SubTransactionId written_in;	/* written to the outbox in this one, or 0 */
	TimestampTz first_at;		/* statement time of its first event */
	int			n;
	int			holes_from;		/* offset of its first hole, or 0 */
	StringInfoData events;		/* "[ev, ev, ..." */
} Chunk;

/*
 * A hole: this byte (never in JSON text, where control characters are
 * escaped) and a pointer to what gives its part (LinkedPartLater).
 */
#define HOLE_MARK '\x01'
#define HOLE_LEN (1 + sizeof(void *))

Oid			outbox_relid = InvalidOid;	/* see FindOutbox */
Oid			outbox_indexid = InvalidOid;

static MemoryContext buffer_cxt = NULL; /* child of TopTransactionContext */
static List *chunks = NIL;		/* of Chunk *, in event order */
static Size buffered_bytes = 0;
static int	chunk_size_hint = 0;	/* bytes of the last full chunk */
static FullTransactionId seq_xid;
static int32 seq_next = 0;

/* ---- transaction bookkeeping ---- */

/* Write what is left before commit; forget the buffer at transaction end. */
void
CaptureXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			FlushChunks();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* the memory goes with TopTransactionContext */
			chunks = NIL;
			buffer_cxt = NULL;
			buffered_bytes = 0;
			chunk_size_hint = 0;
			if (!name_cache_shared)
				ForgetNames();
			break;
		default:
			break;
	}
}

/* An aborted subtransaction's events vanish; a committed one's move up. */
void
CaptureSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, chunks)
		{
			Chunk	   *c = lfirst(lc);

			if (c->subid >= mySubid)
			{
				if (c->written_in == InvalidSubTransactionId)
					buffered_bytes -= c->events.len;
				chunks = foreach_delete_current(chunks, lc);
			}
			else if (c->written_in >= mySubid)
			{
				/* its row went with the subtransaction: buffer it again */
				c->written_in = InvalidSubTransactionId;
				buffered_bytes += c->events.len;
			}
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, chunks)
		{
			Chunk	   *c = lfirst(lc);

			if (c->subid == mySubid)
				c->subid = parentSubid;
			if (c->written_in == mySubid)
				c->written_in = parentSubid;
			/* written at its own level: nothing can undo one without the other */
			if (c->written_in == c->subid)
				chunks = foreach_delete_current(chunks, lc);
		}
	}
}

/* ---- the buffer and the outbox ---- */

/* The buffer's memory: lives as long as the transaction. */
static void
EnsureBufferContext(void)
{
	if (buffer_cxt == NULL)
		buffer_cxt = AllocSetContextCreate(TopTransactionContext, "connector capture buffer",
										   ALLOCSET_DEFAULT_SIZES);
}

/*
 * Whether the transaction has buffered events: CurrentOrigin keeps the
 * origin texts they point at while it does.
 */
bool
EventsBuffered(void)
{
	return chunks != NIL;
}

/* Next event number within the current transaction. */
static int32
NextSeq(int n)
{
	FullTransactionId xid = GetTopFullTransactionId();
	int32		seq;

	if (!FullTransactionIdEquals(xid, seq_xid))
	{
		seq_xid = xid;
		seq_next = 0;
	}
	seq = seq_next;
	seq_next += n;
	return seq;
}

/*
 * connector.outbox and its index on position, looked up by name once and
 * remembered until a relcache invalidation touches either (or the extension
 * is dropped).  False when there is no outbox.  Also used by the reader
 * of the outbox (outbox_read.c).
 */
bool
FindOutbox(void)
{
	Oid			relid;
	Relation	rel;
	List	   *indexes;

	if (OidIsValid(outbox_relid))
		return true;
	relid = get_relname_relid("outbox", get_namespace_oid("connector", true));
	if (!OidIsValid(relid))
		return false;
	rel = table_open(relid, AccessShareLock);
	indexes = RelationGetIndexList(rel);
	if (RelationGetDescr(rel)->natts != OUTBOX_NATTS || list_length(indexes) != 1)
		elog(ERROR, "connector.outbox has an unexpected shape");
	outbox_indexid = linitial_oid(indexes);
	outbox_relid = relid;
	list_free(indexes);
	table_close(rel, AccessShareLock);
	return true;
}

/*
 * Write one chunk as an outbox row and its entry in the position index
 * (position is NULL until sealed).  A direct heap insert: no executor state
 * for a row that has no trigger, constraint or generated column.
 */
static void
WriteChunk(Relation outbox, Relation index, IndexInfo *ii, Chunk *c)
{
	Datum		values[OUTBOX_NATTS];
	bool		nulls[OUTBOX_NATTS] = {false};
	Datum		ivalue = (Datum) 0;
	bool		inull = true;
	HeapTuple	tup;
	text	   *events;

	/* the array closes in the row only: a chunk may be written again */
	events = (text *) palloc(VARHDRSZ + c->events.len + 1);
	SET_VARSIZE(events, VARHDRSZ + c->events.len + 1);
	memcpy(VARDATA(events), c->events.data, c->events.len);
	VARDATA(events)[c->events.len] = ']';
	nulls[0] = true;			/* position: sealed later */
	values[1] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[2] = Int32GetDatum(NextSeq(c->n));
	values[3] = Int32GetDatum(c->n);
	values[4] = CStringGetTextDatum(c->app);
	values[5] = TimestampTzGetDatum(c->first_at);
	values[6] = CStringGetTextDatum(c->origin);
	values[7] = PointerGetDatum(events);

	tup = heap_form_tuple(RelationGetDescr(outbox), values, nulls);
	simple_heap_insert(outbox, tup);
	index_insert(index, &ivalue, &inull, &tup->t_self, outbox, UNIQUE_CHECK_YES, false, ii);
	heap_freetuple(tup);
	pfree(events);
}

/*
 * Write the buffered chunks to connector.outbox.  A chunk of the current
 * subtransaction is done with; one of an outer level is remembered until the
 * current subtransaction ends (see CaptureSubXactCallback).
 */
void
FlushChunks(void)
{
	SubTransactionId subid;
	Relation	outbox;
	Relation	index;
	IndexInfo  *ii;
	ListCell   *lc;
	bool		wrote = false;

	FillHoles();
	if (chunks == NIL)
		return;
	subid = GetCurrentSubTransactionId();
	if (!FindOutbox())
	{
		/* the extension was dropped in this transaction: nowhere to write */
		chunks = NIL;
		buffered_bytes = 0;
		return;
	}
	outbox = table_open(outbox_relid, RowExclusiveLock);
	index = index_open(outbox_indexid, RowExclusiveLock);
	ii = BuildIndexInfo(index);

	foreach(lc, chunks)
	{
		Chunk	   *c = lfirst(lc);

		if (c->written_in != InvalidSubTransactionId)
			continue;
		WriteChunk(outbox, index, ii, c);
		buffered_bytes -= c->events.len;
		wrote = true;
		if (c->subid == subid)
		{
			chunks = foreach_delete_current(chunks, lc);
			pfree(c->events.data);
			pfree(c);
		}
		else
			c->written_in = subid;
	}

	index_close(index, NoLock);
	table_close(outbox, NoLock);
	if (wrote)
		ConnectorNoteEventsWritten();
}

/*
 * The chunk the next event of app and origin goes to: the last one when it
 * belongs to the current subtransaction and has room, else a new one.
 */
static Chunk *
ChunkFor(const char *app, const char *origin)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	Chunk	   *c = chunks != NIL ? llast(chunks) : NULL;
	MemoryContext old;

	if (c != NULL && c->subid == subid && c->written_in == InvalidSubTransactionId &&
		c->n < CHUNK_EVENTS && c->events.len < CHUNK_BYTES &&
		(c->origin == origin || strcmp(c->origin, origin) == 0) &&
		strcmp(c->app, app) == 0)
		return c;
	EnsureBufferContext();
	old = MemoryContextSwitchTo(buffer_cxt);
	c = palloc0(sizeof(Chunk));
	c->app = pstrdup(app);
	c->origin = origin;			/* lives as long as the transaction (CurrentOrigin) */
	c->subid = subid;
	c->first_at = GetCurrentStatementStartTimestamp();	/* its first event's */
	/* sized like the last full chunk: no doubling and copying as it fills */
	c->events.maxlen = Max(1024, chunk_size_hint);
	c->events.data = palloc(c->events.maxlen);
	resetStringInfo(&c->events);
	chunks = lappend(chunks, c);
	MemoryContextSwitchTo(old);
	return c;
}

/*
 * The event types of spec section 6, numbered from 1 in the outbox's compact
 * form; connector._event_type holds the same list, in the same order.
 */
const char *const event_types[] = {
	NULL,
	"account.created", "account.updated", "account.disabled", "account.enabled",
	"account.deleted", "access.granted", "access.revoked", "entitlement.created",
	"entitlement.updated", "entitlement.deleted", "credential.created",
	"credential.updated", "credential.revoked", "credential.deleted", "capture.tampered"
};

/* EmitEvent writes a number of one or two digits */
StaticAssertDecl(lengthof(event_types) <= 100, "event type numbers must have at most two digits");

/* The number of an event type, or 0 for one not in the list. */
int
TypeNumber(const char *type)
{
	int			i;

	for (i = lengthof(event_types) - 1; i > 0; i--)
		if (strcmp(type, event_types[i]) == 0)
			break;
	return i;
}

/*
 * TypeNumber, remembered for the last string: an event's type is a string
 * literal or, from _emit, one of event_types or a type not in the list, so
 * a string at the same address has the same number.
 */
static int
TypeCode(const char *type)
{
	static const char *last_type = NULL;
	static int	last_code = 0;

	if (type != last_type)
	{
		last_code = TypeNumber(type);
		last_type = type;
	}
	return last_code;
}

/*
 * Parts of a compact event: a null is written only when a later part
 * follows it, so the nulls at the end are left out.
 */
typedef struct PartWriter
{
	StringInfo	buf;
	int			nulls;			/* nulls not written yet */
} PartWriter;

static inline StringInfo
NextPart(PartWriter *w)
{
	for (; w->nulls > 0; w->nulls--)
		appendBinaryStringInfo(w->buf, ",null", 5);
	appendStringInfoChar(w->buf, ',');
	return w->buf;
}

/* The next part: a JSON text, or null. */
static inline void
TextPart(PartWriter *w, const char *json)
{
	if (json)
		appendStringInfoString(NextPart(w), json);
	else
		w->nulls++;
}

/* The next part: a hole, filled by FillHoles. */
static inline void
HolePart(PartWriter *w, Chunk *c, void *hole)
{
	StringInfo	buf = NextPart(w);

	if (c->holes_from == 0)
		c->holes_from = buf->len;
	appendStringInfoChar(buf, HOLE_MARK);
	appendBinaryStringInfo(buf, (char *) &hole, sizeof(hole));
}

/*
 * Look up the names of the buffered events' holes and write them in: at the
 * end of each statement, and before events are written.  Only the text
 * from a chunk's first hole on is copied.
 */
void
FillHoles(void)
{
	ListCell   *lc;
	StringInfoData tail;

	if (!NamesPending())
		return;
	ResolvePendingNames();
	initStringInfo(&tail);
	foreach(lc, chunks)
	{
		Chunk	   *c = lfirst(lc);
		const char *p;
		const char *end;
		int			oldlen = c->events.len;

		if (c->holes_from == 0)
			continue;
		resetStringInfo(&tail);
		p = c->events.data + c->holes_from;
		end = c->events.data + c->events.len;
		while (p < end)
		{
			const char *h = memchr(p, HOLE_MARK, end - p);
			void	   *hole;

			if (h == NULL)
			{
				appendBinaryStringInfo(&tail, p, end - p);
				break;
			}
			appendBinaryStringInfo(&tail, p, h - p);
			memcpy(&hole, h + 1, sizeof(hole));
			appendStringInfoString(&tail, PendingPart(hole));
			p = h + HOLE_LEN;
		}
		c->events.len = c->holes_from;
		appendBinaryStringInfo(&c->events, tail.data, tail.len);
		c->holes_from = 0;
		if (c->written_in == InvalidSubTransactionId)
			buffered_bytes += c->events.len - oldlen;
	}
	pfree(tail.data);
	PendingNamesDone();
}

/* The next part: a row of map's table as a JSON object, or null. */
static inline void
RowPart(PartWriter *w, CaptureMap *map, HeapTuple tup, TupleDesc desc)
{
	if (tup)
		AppendRow(NextPart(w), map, tup, desc);
	else
		w->nulls++;
}

/* The next part: a JSON array of strings (or nulls), or null when id is. */
static inline void
IdentityPart(PartWriter *w, const char *id, const char *name, const char *kind, bool with_kind)
{
	StringInfo	buf;

	if (id == NULL)
	{
		w->nulls++;
		return;
	}
	buf = NextPart(w);
	appendStringInfoChar(buf, '[');
	AppendJsonString(buf, id, ',');
	AppendJsonString(buf, name, with_kind ? ',' : 0);
	if (with_kind)
		AppendJsonString(buf, kind, 0);
	appendStringInfoChar(buf, ']');
}

/*
 * Render an event straight into the buffer of its chunk, in the outbox's
 * compact form (expanded by connector._event when read): a JSON array of
 * type (its number in event_types, or text), account [id, name, kind],
 * entitlement [id, name], after, before, credential id, expires_at and
 * timestamp, the parts most events have first.  An absent part is null, and
 * so is a timestamp equal to the row's occurred_at (most are: the statement
 * time of the row's first event); nulls at the end are left out (a missing
 * element reads as null).  before and after are rows of map's table, or
 * given as JSON text (_emit).
 */
void
EmitEvent(const char *app, const char *origin, EventRec *ev, CaptureMap *map, TupleDesc desc)
{
	Chunk	   *c = ChunkFor(app, origin);
	PartWriter	w = {&c->events, 0};
	int			start = c->events.len;
	int			code = TypeCode(ev->type);

	appendStringInfoString(w.buf, c->n == 0 ? "[[" : ",[");
	if (code >= 10)
		appendStringInfoChar(w.buf, '0' + code / 10);
	if (code > 0)
		appendStringInfoChar(w.buf, '0' + code % 10);
	else
		AppendJsonString(w.buf, ev->type, 0);
	if (ev->account_hole)
		HolePart(&w, c, ev->account_hole);
	else if (ev->account_part)
		TextPart(&w, ev->account_part);
	else
		IdentityPart(&w, ev->account_id, ev->account_name, ev->account_kind, true);
	if (ev->entitlement_hole)
		HolePart(&w, c, ev->entitlement_hole);
	else if (ev->entitlement_part)
		TextPart(&w, ev->entitlement_part);
	else
		IdentityPart(&w, ev->entitlement_id, ev->entitlement_name, NULL, false);
	if (ev->after)
		TextPart(&w, ev->after);
	else
		RowPart(&w, map, ev->after_tup, desc);
	if (ev->before)
		TextPart(&w, ev->before);
	else
		RowPart(&w, map, ev->before_tup, desc);
	if (ev->credential_id)
		escape_json(NextPart(&w), ev->credential_id);
	else
		w.nulls++;
	if (ev->expires)
		escape_json(NextPart(&w), ev->expires);
	else
		w.nulls++;
	/* the row's occurred_at stands for the timestamp it equals */
	if (GetCurrentStatementStartTimestamp() != c->first_at)
		TextPart(&w, StatementTimestamp());
	appendStringInfoChar(w.buf, ']');

	c->n++;
	if (c->n == CHUNK_EVENTS)
		chunk_size_hint = Min(w.buf->len + 2, CHUNK_BYTES + 64 * 1024);
	buffered_bytes += w.buf->len - start;
	if (buffered_bytes > FLUSH_BYTES)
		FlushChunks();
}
