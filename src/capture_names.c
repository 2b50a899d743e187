/*-------------------------------------------------------------------------
 *
 * capture_names.c
 *	  Names of captured ids: the name (and kind) of an account or
 *	  entitlement, looked up by id and kept in a cache of names.
 *
 * Events carry [id, name, kind] parts; the names come from the lookup
 * tables of the mapping, read through the id's unique index.
 *
 * IDENTIFICATION
 *	  src/capture_names.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "common/hashfn.h"
#include "optimizer/plancat.h"
#include "storage/proc.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/sortsupport.h"

#include "connector.h"
#include "capture.h"


static MemoryContext name_cxt = NULL;
static uint64 name_generation;
bool		name_cache_shared;
bool		names_stale = false;	/* a lookup table or a mapping changed */

/*
 * Names already looked up, by table and id (the id's bytes, so no output
 * function runs to find one).  With the library preloaded the cache outlives
 * the transaction: capture of any change that can alter or remove a name
 * (an update of an id, name or kind column, a delete, TRUNCATE) advances a
 * generation counter in shared memory, and a backend that sees the counter
 * move empties its cache.  A row is cached only when it is the newest
 * version and committed by another transaction (no update or delete under
 * way, not this transaction's own), so an entry never holds a name that a
 * rollback or a concurrent rename could take back.  Without shared memory
 * the cache lasts one transaction.
 */
#define NAME_ID_LEN 64
#define NAME_CACHE_MAX 20000		/* entries (~150 bytes each); then it starts over */
#define PRELOAD_MIN 32			/* see Preload */
#define PRELOAD_ROOM (NAME_CACHE_MAX * 9 / 10)	/* what Preload may fill */

typedef struct NameKey
{
	Oid			relid;			/* table looked up */
	Oid			typid;			/* type of the id's bytes */
	bool		with_kind;		/* an account's part: [id, name, kind] */
	int32		len;
	char		id[NAME_ID_LEN];	/* a stored key keeps only len bytes */
} NameKey;

#define NAME_KEY_SIZE(k) (offsetof(NameKey, id) + (k)->len)

/* Hash and compare the used part of a key only (ids are mostly short). */
static inline uint32
NameKeyHash(const NameKey *k)
{
	uint64		v;

	if (k->len != sizeof(v))
		return hash_bytes((const unsigned char *) k, NAME_KEY_SIZE(k));
	/* an id of eight bytes (most are integers, by value): one mix */
	memcpy(&v, k->id, sizeof(v));
	return murmurhash32((uint32) v ^
						murmurhash32((uint32) (v >> 32) ^ k->relid ^ (k->typid << 1) ^ k->with_kind));
}

static inline bool
NameKeyEqual(const NameKey *x, const NameKey *y)
{
	return x->len == y->len && memcmp(x, y, NAME_KEY_SIZE(x)) == 0;
}

/* A cached name: its key and the rendered part share one allocation. */
typedef struct NameEntry
{
	const NameKey *key;
	const char *part;			/* the event's [id, name(, kind)], rendered */
	uint32		hash;
	char		status;			/* simplehash's */
} NameEntry;

/* Open addressing: a bulk statement looks up every row's names. */
#define SH_PREFIX names
#define SH_ELEMENT_TYPE NameEntry
#define SH_KEY_TYPE const NameKey *
#define SH_KEY key
#define SH_HASH_KEY(tb, k) NameKeyHash(k)
#define SH_EQUAL(tb, a, b) NameKeyEqual(a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static names_hash *name_cache = NULL;
static uint64 name_epoch = 0;	/* advanced each time the cache is emptied */

void
ForgetNames(void)
{
	if (name_cxt)
		MemoryContextReset(name_cxt);
	name_cache = NULL;
	name_epoch++;
}

/* A change that may alter or remove names: every backend forgets its names. */
void
NamesChanged(void)
{
	ConnectorNamesChanged();
	ForgetNames();
}

/* The cache key of an id value, or false when it is too long to cache. */
static bool
NameCacheKey(NameLookup *lk, Datum key, MappedCol *id, bool with_kind, NameKey *k)
{
	const char *p;
	Size		len;

	memset(k, 0, offsetof(NameKey, id));
	k->relid = lk->relid;
	k->typid = id->typid;
	k->with_kind = with_kind;
	if (id->typbyval)
	{
		p = (const char *) &key;
		len = sizeof(Datum);
	}
	else if (id->typlen == -1)
	{
		struct varlena *v = (struct varlena *) DatumGetPointer(key);

		if (VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v))
			return false;		/* toasted or compressed: not a short id */
		p = VARDATA_ANY(v);
		len = VARSIZE_ANY_EXHDR(v);
	}
	else if (id->typlen > 0)
	{
		p = DatumGetPointer(key);
		len = id->typlen;
	}
	else
	{
		p = DatumGetCString(key);
		len = strlen(p);
	}
	if (len > NAME_ID_LEN)
		return false;
	memcpy(k->id, p, len);
	k->len = len;
	return true;
}

/*
 * The name cache, emptied first when names may have changed.  Called at the
 * start of each trigger call, before any look-up reads the table: names
 * handed out during the call stay valid until it ends.
 */
names_hash *
NameCache(void)
{
	uint64		gen = 0;
	bool		shared_gen = ConnectorNamesGeneration(&gen);

	if (name_cache != NULL &&
		(names_stale || shared_gen != name_cache_shared || (shared_gen && gen != name_generation) ||
		 name_cache->members >= NAME_CACHE_MAX))
		ForgetNames();
	if (name_cache == NULL)
	{
		if (name_cxt == NULL)
			name_cxt = AllocSetContextCreate(TopMemoryContext, "connector names",
											 ALLOCSET_DEFAULT_SIZES);
		name_cache = names_create(name_cxt, 256, NULL);
		name_generation = gen;
		name_cache_shared = shared_gen;
		names_stale = false;
	}
	return name_cache;
}

/* Cache the part of key k (which is copied); returns the cached part. */
static const char *
CachePart(const NameKey *k, const char *part)
{
	Size		klen = MAXALIGN(NAME_KEY_SIZE(k));
	char	   *mem = MemoryContextAlloc(name_cxt, klen + strlen(part) + 1);
	bool		found;
	NameEntry  *entry;

	/* allocated first: an entry is never left pointing at the caller's key */
	memcpy(mem, k, NAME_KEY_SIZE(k));
	strcpy(mem + klen, part);
	entry = names_insert(name_cache, (const NameKey *) mem, &found);
	if (found)
	{
		pfree(mem);
		return entry->part;
	}
	entry->part = mem + klen;
	return entry->part;
}

/* May a name read from this row version be kept beyond this look-up? */
static bool
NameCacheable(TupleTableSlot *slot)
{
	bool		shouldfree;
	HeapTuple	tup = ExecFetchSlotHeapTuple(slot, false, &shouldfree);
	HeapTupleHeader h = tup->t_data;
	bool		ok;

	ok = !TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(h)) &&
		((h->t_infomask & HEAP_XMAX_INVALID) || HEAP_XMAX_IS_LOCKED_ONLY(h->t_infomask));
	if (shouldfree)
		heap_freetuple(tup);
	return ok;
}

/*
 * Output form of column att of the slot's row, or NULL: by out, looked up
 * for type typid when the map was built, or by the column's output function
 * when its type has changed since (the map is rebuilt on the next call).
 */
static char *
SlotText(TupleTableSlot *slot, AttrNumber att, FmgrInfo *out, Oid typid)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, att, &isnull);
	Oid			now = TupleDescAttr(slot->tts_tupleDescriptor, att - 1)->atttypid;
	Oid			fn;
	bool		isvarlena;

	if (isnull)
		return NULL;
	if (now == typid)
		return OutputFunctionCall(out, d);
	getTypeOutputInfo(now, &fn, &isvarlena);
	return OidOutputFunctionCall(fn, d);
}

/* Render the [id, name(, kind)] part of the row whose id is key. */
static void
RenderPart(StringInfo buf, Datum key, MappedCol *id, const char *name, const char *kind,
		   bool with_kind)
{
	appendStringInfoChar(buf, '[');
	AppendJsonString(buf, ValueText(key, id), ',');
	AppendJsonString(buf, name, with_kind ? ',' : 0);
	if (with_kind)
		AppendJsonString(buf, kind, 0);
	appendStringInfoChar(buf, ']');
}

/* RenderPart of the slot's row, or of no row (no name) when slot is NULL. */
static void
RenderSlotPart(StringInfo buf, NameLookup *lk, TupleTableSlot *slot, Datum key, MappedCol *id,
			   bool with_kind)
{
	RenderPart(buf, key, id,
			   slot ? SlotText(slot, lk->name_att, &lk->name_out, lk->name_typid) : NULL,
			   slot && with_kind && lk->kind_att > 0 ?
			   SlotText(slot, lk->kind_att, &lk->kind_out, lk->kind_typid) : NULL,
			   with_kind);
}

/*
 * Render into buf the part of the partitioned table's row whose id is key,
 * by lk's query, run as the table's owner (the role running the DML may not
 * read the table, and routing to a partition may evaluate the owner's
 * partition key expressions).  True when the row may be cached: found, not
 * written by this transaction, and with no xmax at all.
 */
static bool
QueryPart(StringInfo buf, NameLookup *lk, Datum key, MappedCol *id, bool with_kind)
{
	ConnectorSavedRole as_owner;
	int			ret;
	bool		keep = false;

	ConnectorActAs(lk->owner, &as_owner);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "connector capture: SPI_connect failed");
	if (lk->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(lk->query, 1, &lk->id_typid);

		if (plan == NULL)
			elog(ERROR, "connector capture: preparing a name look-up failed: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		lk->plan = plan;
	}
	ret = SPI_execute_plan(lk->plan, &key, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "connector capture: a name look-up failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		TransactionId xmin = DatumGetTransactionId(SPI_getbinval(tup, desc, 3, &isnull));
		TransactionId xmax = DatumGetTransactionId(SPI_getbinval(tup, desc, 4, &isnull));

		/* buf was made before SPI_connect: it grows in the caller's context */
		RenderPart(buf, key, id, SPI_getvalue(tup, desc, 1),
				   with_kind ? SPI_getvalue(tup, desc, 2) : NULL, with_kind);
		keep = !TransactionIdIsValid(xmax) && !TransactionIdIsCurrentTransactionId(xmin);
	}
	else
		RenderPart(buf, key, id, NULL, NULL, with_kind);
	SPI_finish();
	ConnectorActAsEnd(&as_owner);
	return keep;
}

/*
 * Read a whole name table into the cache, when this cache has looked up so
 * many of its rows one by one that a sequential scan is cheap beside them:
 * a look-up by index costs what four to eight rows of a scan do (about 2 us
 * against 0.3 to 0.5 us here), so the scan comes after misses of an eighth
 * of the table (at least PRELOAD_MIN) and costs at most about twice what
 * the misses did.  Once per table and cache, and only when the planner's
 * estimate of the table fits in PRELOAD_ROOM (the scan stops there: a full
 * cache would start over at the next call).  Not for a partitioned table,
 * and not under SERIALIZABLE.  Rows are cached by the rule of the look-ups
 * (NameCacheable).  True when the table was read.
 */
static bool
Preload(NameLookup *lk, MappedCol *id, bool with_kind)
{
	int			room = PRELOAD_ROOM - (int) name_cache->members;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	StringInfoData buf;
	NameKey		k;
	BlockNumber pages;
	double		tuples;
	double		allvisfrac;

	if (lk->epoch != name_epoch)
	{
		lk->epoch = name_epoch;
		lk->misses = 0;
		lk->preload_after = 0;
	}
	/* under SERIALIZABLE a scan would predicate-lock the whole table */
	if (lk->preload_after < 0 || IsolationIsSerializable() ||
		++lk->misses < Max(lk->preload_after, PRELOAD_MIN))
		return false;
	rel = table_open(lk->relid, AccessShareLock);
	/* the planner's estimate; a partitioned table has no rows of its own */
	if (RELKIND_HAS_TABLE_AM(rel->rd_rel->relkind))
		estimate_rel_size(rel, NULL, &pages, &tuples, &allvisfrac);
	if (!RELKIND_HAS_TABLE_AM(rel->rd_rel->relkind) || tuples > room ||
		id->typid != lk->id_typid ||
		TupleDescAttr(RelationGetDescr(rel), lk->id_att - 1)->atttypid != lk->id_typid)
	{
		lk->preload_after = -1; /* not until the cache starts over */
		table_close(rel, AccessShareLock);
		return false;
	}
	if (lk->misses < (int) (tuples / 8))
	{
		lk->preload_after = (int) (tuples / 8);
		table_close(rel, AccessShareLock);
		return false;
	}
	lk->preload_after = -1;

	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	initStringInfo(&buf);
	/* short of the cap: a full cache would start over at the next call */
	while (name_cache->members < PRELOAD_ROOM &&
		   table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, lk->id_att, &isnull);

		if (isnull || !NameCacheKey(lk, d, id, with_kind, &k) ||
			names_lookup(name_cache, &k) != NULL || !NameCacheable(slot))
			continue;
		resetStringInfo(&buf);
		RenderSlotPart(&buf, lk, slot, d, id, with_kind);
		CachePart(&k, buf.data);
	}
	pfree(buf.data);
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
	return true;
}

/*
 * The account ([id, name, kind]) or entitlement ([id, name]) part of an
 * event for the row whose id is key, named through the id's unique index:
 * from the name cache, or rendered and cached.  id gives the key's type
 * (the column, or array element, it comes from).
 */
const char *
LinkedPart(NameLookup *lk, Datum key, MappedCol *id, bool with_kind)
{
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	ScanKeyData skey;
	TupleTableSlot *slot;
	NameKey		k;
	NameEntry  *entry;
	bool		cacheable = lk->valid && id->basetype == lk->id_basetype &&
		NameCacheKey(lk, key, id, with_kind, &k);
	StringInfoData buf;
	bool		keep = false;

	if (cacheable)
	{
		/* checked at the start of each trigger call, not here: see NameCache */
		if (name_cache == NULL)
			NameCache();
		entry = names_lookup(name_cache, &k);
		if (entry == NULL && Preload(lk, id, with_kind))
			entry = names_lookup(name_cache, &k);
		if (entry)
			return entry->part;
	}
	initStringInfo(&buf);

	/*
	 * A key of another type than the id (a column retyped since the map was
	 * built: reported as tampering) is never passed to the id type's
	 * functions: the event names no name.
	 */
	if (!lk->valid || id->basetype != lk->id_basetype)
	{
		RenderPart(&buf, key, id, NULL, NULL, with_kind);
		return buf.data;
	}
	if (lk->query)
	{
		keep = QueryPart(&buf, lk, key, id, with_kind) && cacheable;
		return keep ? CachePart(&k, buf.data) : buf.data;
	}
	rel = table_open(lk->relid, AccessShareLock);
	idx = index_open(lk->indexid, AccessShareLock);
	ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   lk->collation, lk->eqproc, key);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
		/* a row not found is not cached: it may be inserted at any time */
		keep = cacheable && NameCacheable(slot);
	else
		ExecClearTuple(slot);
	RenderSlotPart(&buf, lk, TTS_EMPTY(slot) ? NULL : slot, key, id, with_kind);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return keep ? CachePart(&k, buf.data) : buf.data;
}

/* ---- names resolved at the end of the statement ---- */

/*
 * A bulk statement over many distinct accounts would look up each one by
 * its own index probe, which costs more than the rest of capture together.
 * Instead, a name missing from the cache is left as a hole in the event's
 * text (see EmitEvent) and noted here; at the end of the statement (or
 * before its events are written, or when the next statement captures) all
 * the holes' ids of a table are looked up at once: by one scan of the table
 * when they are a large part of it, else by index probes in index order
 * through one open scan.  The look-ups use the snapshot of the statement
 * that captured the rows, so the names are the ones that statement saw, as
 * when each row was looked up at once.
 */

/* The ids of one name table (and key type) waiting for their names. */
typedef struct PendingGroup
{
	NameLookup	lk;				/* copies: the map may be rebuilt meanwhile */
	MappedCol	id;
	bool		with_kind;
	NameLookup *orig_lk;		/* to find the group again */
	MappedCol  *orig_id;
	int			n;
	struct PendingName **names; /* its ids, in the order they came */
	int			size;
} PendingGroup;

/* One id of a group: where its hole's part comes from. */
typedef struct PendingName
{
	NameKey    *key;
	Datum		value;			/* the id, copied */
	PendingGroup *group;
	const char *part;			/* rendered when resolved */
} PendingName;

typedef struct PendingEntry
{
	const NameKey *key;
	PendingName *pn;
	uint32		hash;
	char		status;
} PendingEntry;

#define SH_PREFIX pending
#define SH_ELEMENT_TYPE PendingEntry
#define SH_KEY_TYPE const NameKey *
#define SH_KEY key
#define SH_HASH_KEY(tb, k) NameKeyHash(k)
#define SH_EQUAL(tb, a, b) NameKeyEqual(a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static MemoryContext pending_cxt = NULL;	/* child of TopTransactionContext */
static pending_hash *pending = NULL;
static List *pending_groups = NIL;
static Snapshot pending_snapshot = NULL;	/* the capturing statement's */
static LocalTransactionId pending_lxid;
static CommandId pending_cid;

/*
 * The transaction ended: whatever is pending goes with its memory and its
 * snapshot (released with TopTransactionResourceOwner).  Holes are filled
 * before commit (FlushChunks), so only an abort leaves any.
 */
void
NamesXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
	{
		pending_cxt = NULL;
		pending = NULL;
		pending_groups = NIL;
		pending_snapshot = NULL;
	}
}

/* Whether names wait to be resolved (and holes to be filled). */
bool
NamesPending(void)
{
	return pending != NULL;
}

/* Forget what is pending (after the holes were filled). */
void
PendingNamesDone(void)
{
	if (pending_snapshot)
		UnregisterSnapshotFromOwner(pending_snapshot, TopTransactionResourceOwner);
	pending_snapshot = NULL;
	pending = NULL;
	pending_groups = NIL;
	if (pending_cxt)
		MemoryContextReset(pending_cxt);
}

/* The part of a hole, once ResolvePendingNames has run. */
const char *
PendingPart(const void *p)
{
	return ((const PendingName *) p)->part;
}

/* The group of lk and id, made on first use. */
static PendingGroup *
PendingGroupFor(NameLookup *lk, MappedCol *id, bool with_kind)
{
	ListCell   *lc;
	PendingGroup *g;
	MemoryContext old;

	foreach(lc, pending_groups)
	{
		g = lfirst(lc);
		if (g->orig_lk == lk && g->orig_id == id && g->with_kind == with_kind)
			return g;
	}
	old = MemoryContextSwitchTo(pending_cxt);
	g = palloc0(sizeof(PendingGroup));
	g->lk = *lk;
	fmgr_info_copy(&g->lk.name_out, &lk->name_out, pending_cxt);
	if (lk->kind_att > 0)
		fmgr_info_copy(&g->lk.kind_out, &lk->kind_out, pending_cxt);
	g->id = *id;
	fmgr_info_copy(&g->id.outfn, &id->outfn, pending_cxt);
	g->with_kind = with_kind;
	g->orig_lk = lk;
	g->orig_id = id;
	g->size = 64;
	g->names = palloc(g->size * sizeof(PendingName *));
	pending_groups = lappend(pending_groups, g);
	MemoryContextSwitchTo(old);
	return g;
}

/*
 * Note key k (of value key) as waiting for its name; returns what the hole
 * points at.  The holes of an earlier statement are filled first: each
 * batch is resolved with the snapshot of the statement that made it.
 */
static PendingName *
AddPending(NameLookup *lk, Datum key, MappedCol *id, bool with_kind, NameKey *k)
{
	PendingEntry *e;
	bool		found;
	PendingName *pn;
	PendingGroup *g;
	MemoryContext old;

	if (pending != NULL &&
		(pending_lxid != MyProc->lxid || pending_cid != GetCurrentCommandId(false)))
		FillHoles();
	if (pending == NULL)
	{
		if (pending_cxt == NULL)
			pending_cxt = AllocSetContextCreate(TopTransactionContext, "connector pending names",
												ALLOCSET_DEFAULT_SIZES);
		pending = pending_create(pending_cxt, 256, NULL);
		pending_snapshot = RegisterSnapshotOnOwner(GetActiveSnapshot(),
												   TopTransactionResourceOwner);
		pending_lxid = MyProc->lxid;
		pending_cid = GetCurrentCommandId(false);
	}
	e = pending_insert(pending, k, &found);
	if (found)
		return e->pn;
	old = MemoryContextSwitchTo(pending_cxt);
	g = PendingGroupFor(lk, id, with_kind);
	pn = palloc(sizeof(PendingName));
	pn->key = palloc(NAME_KEY_SIZE(k));
	memcpy(pn->key, k, NAME_KEY_SIZE(k));
	e->key = pn->key;
	e->pn = pn;
	pn->value = datumCopy(key, id->typbyval, id->typlen);
	pn->group = g;
	pn->part = NULL;
	if (g->n == g->size)
	{
		g->size *= 2;
		g->names = repalloc(g->names, g->size * sizeof(PendingName *));
	}
	g->names[g->n++] = pn;
	MemoryContextSwitchTo(old);
	return pn;
}

/* Render the part of pn from the slot's row (or none), caching it if it may. */
static void
ResolveOne(PendingName *pn, TupleTableSlot *slot, StringInfo buf)
{
	PendingGroup *g = pn->group;

	resetStringInfo(buf);
	RenderSlotPart(buf, &g->lk, slot, pn->value, &g->id, g->with_kind);
	/* a row not found is not cached: it may be inserted at any time */
	if (slot && name_cache != NULL && name_cache->members < NAME_CACHE_MAX - 1 &&
		NameCacheable(slot))
		pn->part = CachePart(pn->key, buf->data);	/* copied before the cache can go */
	else
		pn->part = MemoryContextStrdup(pending_cxt, buf->data);
}

/*
 * Sort ids in the order of the index, by its sort support (a direct
 * comparison for integers and uuids, no function call): the walk then goes
 * forward.
 */
static int
ComparePending(const void *a, const void *b, void *arg)
{
	const PendingName *x = *(PendingName *const *) a;
	const PendingName *y = *(PendingName *const *) b;

	return ApplySortComparator(x->value, false, y->value, false, (SortSupport) arg);
}

/*
 * Index entries walked past before descending to the next id: a descent
 * costs what dozens of steps do (a million uuids, 100,000 of them pending,
 * about ten entries apart: 2.65x the unmapped insert with 16, 2.36x with
 * 64, 2.91x with 2), but for ids far apart the steps are wasted.  Six times
 * the mean distance between the ids, within these bounds.
 */
#define SKIP_MIN 16
#define SKIP_MAX 64
/* Fewer ids than this are probed one by one (no sort, no operator look-up). */
#define WALK_MIN 8

/*
 * Resolve the ids of g (sorted here) by reading the unique index in their
 * order, through one scan: the scan walks on from one id to the next while
 * they are close (a step costs less than a descent from the root), and
 * descends again at the next id after skip_max entries without one.
 */
static void
WalkIndex(PendingGroup *g, Relation rel, TupleTableSlot *slot, StringInfo buf, int skip_max)
{
	NameLookup *lk = &g->lk;
	int			n = g->n;
	int			i;
	Relation	idx = index_open(lk->indexid, AccessShareLock);
	SortSupportData ssup;
	Oid			ge = get_opfamily_member(idx->rd_opfamily[0], idx->rd_opcintype[0],
										 idx->rd_opcintype[0], BTGreaterEqualStrategyNumber);
	IndexScanDesc scan;
	ScanKeyData skey;
	int			skipped = 0;
	bool		positioned = false;

	if (!OidIsValid(ge))
		elog(ERROR, "connector capture: no >= operator for the index of a name table");
	memset(&ssup, 0, sizeof(ssup));
	ssup.ssup_cxt = CurrentMemoryContext;
	ssup.ssup_collation = lk->collation;
	ssup.ssup_attno = 1;
	PrepareSortSupportFromIndexRel(idx, BTLessStrategyNumber, &ssup);
	if (n > 1)
		qsort_arg(g->names, n, sizeof(PendingName *), ComparePending, &ssup);
	scan = index_beginscan(rel, idx, pending_snapshot, 1, 0);
	scan->xs_want_itup = true;
	i = 0;
	while (i < n)
	{
		PendingName *pn = g->names[i];
		Datum		ikey;
		bool		isnull;
		int			c;

		if (!positioned)
		{
			ScanKeyEntryInitialize(&skey, 0, 1, BTGreaterEqualStrategyNumber, InvalidOid,
								   lk->collation, get_opcode(ge), pn->value);
			index_rescan(scan, &skey, 1, NULL, 0);
			positioned = true;
			skipped = 0;
		}
		if (index_getnext_tid(scan, ForwardScanDirection) == NULL)
		{
			/* past the last entry: the rest have no row */
			for (; i < n; i++)
				ResolveOne(g->names[i], NULL, buf);
			break;
		}
		ikey = index_getattr(scan->xs_itup, 1, scan->xs_itupdesc, &isnull);
		if (isnull)
			continue;
		c = ApplySortComparator(ikey, false, pn->value, false, &ssup);
		/* ids before this entry have no row */
		while (c > 0)
		{
			ResolveOne(pn, NULL, buf);
			if (++i == n)
				break;
			pn = g->names[i];
			c = ApplySortComparator(ikey, false, pn->value, false, &ssup);
		}
		if (i == n)
			break;
		if (c < 0)
		{
			if (++skipped > skip_max)
				positioned = false;
			continue;
		}
		/* the id's entry: its row, unless a version this snapshot does not see */
		if (index_fetch_heap(scan, slot))
		{
			ResolveOne(pn, slot, buf);
			i++;
			skipped = 0;
		}
	}
	index_endscan(scan);
	index_close(idx, AccessShareLock);
}

/* Resolve the ids of g that are still without a part. */
static void
ResolveGroup(PendingGroup *g, StringInfo buf)
{
	NameLookup *lk = &g->lk;
	Relation	rel;
	TupleTableSlot *slot;
	BlockNumber pages;
	double		tuples = 0;	/* estimated only for 64 ids or more */
	double		allvisfrac;
	int			i,
				n = 0;

	/* the cache may hold some by now (Preload, or an earlier group) */
	for (i = 0; i < g->n; i++)
	{
		PendingName *pn = g->names[i];
		NameEntry  *entry = name_cache ? names_lookup(name_cache, pn->key) : NULL;

		if (entry)
			pn->part = entry->part; /* FillHoles copies it before the cache can go */
		else
			g->names[n++] = pn;
	}
	g->n = n;
	if (n == 0)
		return;
	rel = table_open(lk->relid, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	/* (the estimate reads the table's size: not for a statement's few ids) */
	if (n >= 64 && !IsolationIsSerializable())
		estimate_rel_size(rel, NULL, &pages, &tuples, &allvisfrac);
	if (n >= 64 && !IsolationIsSerializable() && n >= tuples / 8)
	{
		/* many of the table's rows: one scan, each row's id looked up here */
		TableScanDesc scan = table_beginscan(rel, pending_snapshot, 0, NULL);
		NameKey		k;

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			Datum		d = slot_getattr(slot, lk->id_att, &isnull);
			PendingEntry *e;

			if (isnull || !NameCacheKey(lk, d, &g->id, g->with_kind, &k) ||
				(e = pending_lookup(pending, &k)) == NULL || e->pn->part != NULL)
				continue;
			ResolveOne(e->pn, slot, buf);
		}
		table_endscan(scan);
		/* ids with no row */
		for (i = 0; i < n; i++)
			if (g->names[i]->part == NULL)
				ResolveOne(g->names[i], NULL, buf);
	}
	else
	{
		if (n < WALK_MIN)
		{
			/* a few: one probe each, through one scan */
			Relation	idx = index_open(lk->indexid, AccessShareLock);
			IndexScanDesc scan = index_beginscan(rel, idx, pending_snapshot, 1, 0);
			ScanKeyData skey;

			for (i = 0; i < n; i++)
			{
				PendingName *pn = g->names[i];

				ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid,
									   lk->collation, lk->eqproc, pn->value);
				index_rescan(scan, &skey, 1, NULL, 0);
				ResolveOne(pn, index_getnext_slot(scan, ForwardScanDirection, slot) ? slot : NULL,
						   buf);
			}
			index_endscan(scan);
			index_close(idx, AccessShareLock);
		}
		else
			WalkIndex(g, rel, slot, buf,
					  n >= 64 ? (int) Max(SKIP_MIN, Min(SKIP_MAX, 6 * tuples / n)) : SKIP_MIN);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
}
/* Look up the names of every pending id (see FillHoles). */
void
ResolvePendingNames(void)
{
	ListCell   *lc;
	StringInfoData buf;

	if (pending == NULL)
		return;
	initStringInfo(&buf);
	PushActiveSnapshot(pending_snapshot);
	foreach(lc, pending_groups)
		ResolveGroup(lfirst(lc), &buf);
	PopActiveSnapshot();
	pfree(buf.data);
}

/*
 * LinkedPart, except that a name the cache does not have is looked up
 * later, with others: returns NULL and sets *hole, which EmitEvent writes
 * as a hole in the event for FillHoles to fill.  A partitioned table (looked
 * up by query), an id that cannot be cached or a lookup that no longer
 * fits the table are looked up at once.
 */
const char *
LinkedPartLater(NameLookup *lk, Datum key, MappedCol *id, bool with_kind, void **hole)
{
	NameKey		k;
	NameEntry  *entry;

	*hole = NULL;
	if (!lk->valid || lk->query || id->basetype != lk->id_basetype ||
		!NameCacheKey(lk, key, id, with_kind, &k))
		return LinkedPart(lk, key, id, with_kind);
	if (name_cache == NULL)
		NameCache();
	entry = names_lookup(name_cache, &k);
	if (entry == NULL && Preload(lk, id, with_kind))
		entry = names_lookup(name_cache, &k);
	if (entry)
		return entry->part;
	*hole = AddPending(lk, key, id, with_kind, &k);
	return NULL;
}
