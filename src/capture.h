/*-------------------------------------------------------------------------
 *
 * capture.h
 *	  Private declarations of the capture trigger, shared by capture.c,
 *	  capture_map.c, capture_names.c, capture_render.c and capture_outbox.c.
 *
 * IDENTIFICATION
 *	  src/capture.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAPTURE_H
#define CAPTURE_H

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/rel.h"

typedef enum MapRole
{
	MAP_ACCOUNTS,
	MAP_ENTITLEMENTS,
	MAP_GRANTS,
	MAP_CREDENTIALS
} MapRole;

/* How a column's value is written in JSON. */
typedef enum JsonCat
{
	JC_STRING,
	JC_NUMBER,
	JC_BOOL,
	JC_JSON
} JsonCat;

typedef struct MappedCol
{
	AttrNumber	attnum;
	char	   *name;
	char	   *json_key;		/* "name": escaped once */
	Oid			typid;
	FmgrInfo	outfn;			/* the type's output function, looked up once */
	int16		typlen;
	bool		typbyval;
	JsonCat		cat;
	bool		plain_number;	/* integer: its output is always a JSON number */
	Oid			basetype;		/* the type, or a domain's base type */
} MappedCol;

/* Purposes a mapped column can serve; one column may serve several. */
typedef enum ColPurpose
{
	P_ID,
	P_NAME,
	P_KIND,
	P_STATUS,
	P_ACCOUNT,
	P_ENTITLEMENT,
	P_EXPIRES,
	P_REVOKED,
	P_LAST_USED,
	NUM_PURPOSES
} ColPurpose;

typedef enum StatusShape
{
	ST_NONE,
	ST_VALUE,					/* enabled when equal to enabled_value */
	ST_TIMESTAMP				/* enabled when NULL */
} StatusShape;

/* How to find the name (and kind) of an id: the id's unique index. */
typedef struct NameLookup
{
	bool		valid;
	Oid			relid;
	Oid			indexid;
	Oid			eqproc;
	Oid			collation;
	AttrNumber	id_att;
	Oid			id_typid;
	Oid			id_basetype;	/* what a key must be to be looked up */
	Oid			owner;			/* a partitioned table's query runs as it */
	AttrNumber	name_att;
	AttrNumber	kind_att;		/* 0: none */
	FmgrInfo	name_out;		/* output functions of the name and kind */
	FmgrInfo	kind_out;
	Oid			name_typid;		/* and the types they are for */
	Oid			kind_typid;
	uint64		epoch;			/* of the name cache the two below count in */
	char	   *query;			/* a partitioned table: looked up by this query */
	SPIPlanPtr	plan;			/* ... prepared on first use */
	int			misses;			/* names looked up one by one */
	int			preload_after;	/* misses before Preload reads the table; 0: not
								 * yet estimated; -1: never */
} NameLookup;

typedef struct CaptureMap
{
	Oid			relid;			/* hash key */
	bool		valid;
	MemoryContext cxt;
	char	   *app;
	MapRole		role;
	int			ncols;			/* columns shown in before/after */
	MappedCol  *cols;
	int			purpose[NUM_PURPOSES];	/* index into cols, or -1 */
	StatusShape status_shape;
	char	   *enabled_value;	/* output form of the enabled value */
	bool		has_grants_column;	/* accounts: array or scalar grants */
	MappedCol	grants_column;
	bool		grants_is_array;
	MappedCol	grants_elem;	/* array grants: the element type (no column) */
	char		grants_elem_align;
	NameLookup	account_lookup;
	NameLookup	entitlement_lookup;
} CaptureMap;

/* One event being built. */
typedef struct EventRec
{
	const char *type;
	char	   *account_id;
	char	   *account_name;
	char	   *account_kind;
	char	   *entitlement_id;
	char	   *entitlement_name;
	const char *account_part;	/* or the account pre-rendered: LinkedPart */
	const char *entitlement_part;
	void	   *account_hole;	/* or left for FillHoles: LinkedPartLater */
	void	   *entitlement_hole;
	char	   *credential_id;
	HeapTuple	before_tup;		/* rows of the mapped table, or NULL */
	HeapTuple	after_tup;
	char	   *before;			/* or the rows as JSON text (_emit) */
	char	   *after;
	char	   *expires;
} EventRec;

/* in capture.c */
extern Oid	capture_user;

/* in capture_map.c */
extern void CaptureRelcacheCallback(Datum arg, Oid relid);
extern CaptureMap *GetMap(Relation rel, const char *app, const char *role);

/* in capture_names.c */
extern bool name_cache_shared;
extern bool names_stale;
extern void ForgetNames(void);
extern void NamesChanged(void);
extern struct names_hash *NameCache(void);
extern const char *LinkedPart(NameLookup *lk, Datum key, MappedCol *id, bool with_kind);
extern const char *LinkedPartLater(NameLookup *lk, Datum key, MappedCol *id, bool with_kind,
								   void **hole);
extern bool NamesPending(void);
extern void NamesXactCallback(XactEvent event, void *arg);
extern void ResolvePendingNames(void);
extern const char *PendingPart(const void *hole);
extern void PendingNamesDone(void);

/* in capture_render.c */
extern void AppendRow(StringInfo buf, CaptureMap *map, HeapTuple tup, TupleDesc desc);
extern const char *CurrentOrigin(const char *app);
extern const char *StatementTimestamp(void);

/* in capture_outbox.c */
extern Oid	outbox_relid;
extern Oid	outbox_indexid;
extern const char *const event_types[];
extern void CaptureXactCallback(XactEvent event, void *arg);
extern void CaptureSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
								   SubTransactionId parentSubid, void *arg);
extern bool EventsBuffered(void);
extern bool FindOutbox(void);
extern void FlushChunks(void);
extern void FillHoles(void);
extern int	TypeNumber(const char *type);
extern void EmitEvent(const char *app, const char *origin, EventRec *ev, CaptureMap *map,
					  TupleDesc desc);

/*
 * Values of mapped columns, as text, and JSON strings: inline here because
 * they run for every captured row and column, in capture.c, capture_names.c
 * and capture_render.c alike.
 */

/*
 * The decimal form of an integer column's value (int2, int4, int8): appended
 * to buf, or with buf NULL returned in a new string.  These are most ids;
 * the output function would do the same with a call and an allocation
 * more.  NULL (nothing done) for other types.
 */
static inline char *
IntText(MappedCol *c, Datum d, StringInfo buf)
{
	int64		v;
	char	   *out;

	switch (c->basetype)
	{
		case INT2OID:
			v = DatumGetInt16(d);
			break;
		case INT4OID:
			v = DatumGetInt32(d);
			break;
		case INT8OID:
			v = DatumGetInt64(d);
			break;
		default:
			return NULL;
	}
	if (buf)
	{
		enlargeStringInfo(buf, MAXINT8LEN + 1);
		buf->len += pg_lltoa(v, buf->data + buf->len);
		return buf->data;
	}
	out = palloc(MAXINT8LEN + 1);
	pg_lltoa(v, out);
	return out;
}

/* Output form of a value of col's type (integers directly). */
static inline char *
ValueText(Datum key, MappedCol *col)
{
	char	   *s = IntText(col, key, NULL);

	return s ? s : OutputFunctionCall(&col->outfn, key);
}

/* Output form of column c of tup, or NULL. */
static inline char *
ColText(MappedCol *c, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, c->attnum, desc, &isnull);

	return isnull ? NULL : ValueText(d, c);
}

static inline char *
PurposeText(CaptureMap *map, ColPurpose p, HeapTuple tup, TupleDesc desc)
{
	return map->purpose[p] < 0 ? NULL : ColText(&map->cols[map->purpose[p]], tup, desc);
}

/* Datum of a purpose column, or (Datum) 0 with *isnull. */
static inline Datum
PurposeValue(CaptureMap *map, ColPurpose p, HeapTuple tup, TupleDesc desc, bool *isnull)
{
	if (map->purpose[p] < 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return heap_getattr(tup, map->cols[map->purpose[p]].attnum, desc, isnull);
}

/* Append a JSON string, or null, and a separator (or none). */
static inline void
AppendJsonString(StringInfo buf, const char *value, char sep)
{
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
	if (sep)
		appendStringInfoChar(buf, sep);
}

#endif							/* CAPTURE_H */
