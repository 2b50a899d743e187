/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  The capture trigger: every change to a mapped table becomes events in
 *	  connector.outbox, written in the changing transaction.
 *
 * One trigger function serves every mapped table; its two arguments name the
 * application and the table's role in the mapping (accounts, entitlements,
 * grants, credentials).  The per-relation mapping (attribute numbers, output
 * functions, lookup plans) is built once and cached until the relation's
 * relcache entry is invalidated, which happens whenever register_app
 * recreates the trigger or the table is altered.
 *
 * Only mapped columns are ever read from a tuple: a password hash next to a
 * login never reaches the outbox.
 *
 * IDENTIFICATION
 *	  src/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "connector.h"

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
	Oid			typid;
	Oid			typoutput;
	int16		typlen;
	bool		typbyval;
	JsonCat		cat;
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
	Oid			grants_elem_output;
	int16		grants_elem_len;
	bool		grants_elem_byval;
	char		grants_elem_align;
	SPIPlanPtr	account_lookup; /* (name, kind) of an account id */
	SPIPlanPtr	entitlement_lookup; /* name of an entitlement id */
} CaptureMap;

/* One event before it is written. */
typedef struct EventRec
{
	const char *type;
	char	   *account_id;
	char	   *account_name;
	char	   *account_kind;
	char	   *entitlement_id;
	char	   *entitlement_name;
	char	   *credential_id;
	char	   *before;
	char	   *after;
	char	   *expires;
} EventRec;

#define OUTBOX_NARGS 13

static HTAB *capture_maps = NULL;
static SPIPlanPtr outbox_insert_plan = NULL;
static FullTransactionId seq_xid;
static int32 seq_next = 0;
static Oid	capture_user = InvalidOid;	/* role running the current DML */

PG_FUNCTION_INFO_V1(connector_capture);
PG_FUNCTION_INFO_V1(connector_emit);
PG_FUNCTION_INFO_V1(connector_outer_user);

/* Mark cached maps stale when their relation changes. */
static void
CaptureRelcacheCallback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	CaptureMap *map;

	if (capture_maps == NULL)
		return;
	hash_seq_init(&status, capture_maps);
	while ((map = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || map->relid == relid)
			map->valid = false;
}

/* Register the cache invalidation callback; called once per backend. */
void
ConnectorCaptureInit(void)
{
	CacheRegisterRelcacheCallback(CaptureRelcacheCallback, (Datum) 0);
}

/* JSON category of a type, as to_json would write it. */
static JsonCat
JsonCategory(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case OIDOID:
			return JC_NUMBER;
		case BOOLOID:
			return JC_BOOL;
		case JSONOID:
		case JSONBOID:
			return JC_JSON;
		default:
			return JC_STRING;
	}
}

/* Fill a MappedCol for column name of rel; false when the column is gone. */
static bool
ResolveColumn(Relation rel, const char *name, MappedCol *col)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);
	Form_pg_attribute att;
	bool		isvarlena;

	if (attnum == InvalidAttrNumber || attnum < 0)
		return false;
	att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	col->attnum = attnum;
	col->name = pstrdup(name);
	col->typid = att->atttypid;
	col->typlen = att->attlen;
	col->typbyval = att->attbyval;
	getTypeOutputInfo(att->atttypid, &col->typoutput, &isvarlena);
	col->cat = JsonCategory(att->atttypid);
	return true;
}

static MapRole
ParseRole(const char *role)
{
	if (strcmp(role, "accounts") == 0)
		return MAP_ACCOUNTS;
	if (strcmp(role, "entitlements") == 0)
		return MAP_ENTITLEMENTS;
	if (strcmp(role, "grants") == 0)
		return MAP_GRANTS;
	if (strcmp(role, "credentials") == 0)
		return MAP_CREDENTIALS;
	elog(ERROR, "connector capture: unknown mapping role \"%s\"", role);
	return MAP_ACCOUNTS;		/* keep compiler quiet */
}

static int
ParsePurpose(const char *p)
{
	static const char *const names[NUM_PURPOSES] = {
		"id", "name", "kind", "status", "account", "entitlement",
		"expires", "revoked", "last_used"
	};
	int			i;

	for (i = 0; i < NUM_PURPOSES; i++)
		if (strcmp(p, names[i]) == 0)
			return i;
	return -1;
}

/* Prepare and keep a lookup plan taking one text parameter. */
static SPIPlanPtr
PrepareLookup(const char *sql)
{
	Oid			argtypes[1] = {TEXTOID};
	SPIPlanPtr	plan = SPI_prepare(sql, 1, argtypes);

	if (plan == NULL)
		elog(ERROR, "connector capture: SPI_prepare failed: %s",
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

/*
 * Build the map of rel from connector._capture_spec(app, role), which lists
 * the mapped columns by purpose, in before/after order.  Caller is connected
 * to SPI.
 */
static void
BuildMap(CaptureMap *map, Relation rel, const char *app, const char *role)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	MemoryContext old;
	uint64		i;
	int			ret;

	if (map->cxt)
		MemoryContextDelete(map->cxt);
	if (map->account_lookup)
		SPI_freeplan(map->account_lookup);
	if (map->entitlement_lookup)
		SPI_freeplan(map->entitlement_lookup);

	memset(((char *) map) + sizeof(Oid), 0, sizeof(CaptureMap) - sizeof(Oid));
	for (i = 0; i < NUM_PURPOSES; i++)
		map->purpose[i] = -1;
	map->cxt = AllocSetContextCreate(CacheMemoryContext, "connector capture map",
									 ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(map->cxt);
	map->app = pstrdup(app);
	map->role = ParseRole(role);
	MemoryContextSwitchTo(old);

	args[0] = CStringGetTextDatum(app);
	args[1] = CStringGetTextDatum(role);
	ret = SPI_execute_with_args("SELECT k, v FROM connector._capture_spec($1, $2)",
								2, argtypes, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "connector capture: reading the mapping failed: %s",
			 SPI_result_code_string(ret));

	old = MemoryContextSwitchTo(map->cxt);
	map->cols = palloc0(sizeof(MappedCol) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *k = SPI_getvalue(tup, desc, 1);
		char	   *v = SPI_getvalue(tup, desc, 2);

		if (k == NULL || v == NULL)
			continue;
		if (strncmp(k, "col:", 4) == 0)
		{
			int			purpose = ParsePurpose(k + 4);
			int			j;

			/* one entry per column; a column may serve several purposes */
			for (j = 0; j < map->ncols; j++)
				if (strcmp(map->cols[j].name, v) == 0)
					break;
			if (j == map->ncols)
			{
				/* a column dropped since registration is skipped (tamper is reported) */
				if (!ResolveColumn(rel, v, &map->cols[j]))
					continue;
				map->ncols++;
			}
			if (purpose >= 0)
				map->purpose[purpose] = j;
		}
		else if (strcmp(k, "grants_column") == 0)
		{
			if (ResolveColumn(rel, v, &map->grants_column))
			{
				Oid			elem = get_element_type(map->grants_column.typid);
				bool		isvarlena;

				map->has_grants_column = true;
				map->grants_is_array = OidIsValid(elem);
				if (map->grants_is_array)
				{
					get_typlenbyvalalign(elem, &map->grants_elem_len,
										 &map->grants_elem_byval,
										 &map->grants_elem_align);
					getTypeOutputInfo(elem, &map->grants_elem_output, &isvarlena);
				}
			}
		}
		else if (strcmp(k, "status_shape") == 0)
			map->status_shape = strcmp(v, "timestamp") == 0 ? ST_TIMESTAMP : ST_VALUE;
		else if (strcmp(k, "enabled") == 0)
			map->enabled_value = pstrdup(v);
		else if (strcmp(k, "lookup_account") == 0)
		{
			MemoryContextSwitchTo(old);
			map->account_lookup = PrepareLookup(v);
			MemoryContextSwitchTo(map->cxt);
		}
		else if (strcmp(k, "lookup_entitlement") == 0)
		{
			MemoryContextSwitchTo(old);
			map->entitlement_lookup = PrepareLookup(v);
			MemoryContextSwitchTo(map->cxt);
		}
	}
	MemoryContextSwitchTo(old);
	if (map->purpose[P_STATUS] < 0)
		map->status_shape = ST_NONE;
	map->valid = true;
}

/* The cached map of rel, built on first use or after invalidation. */
static CaptureMap *
GetMap(Relation rel, const char *app, const char *role)
{
	Oid			relid = RelationGetRelid(rel);
	CaptureMap *map;
	bool		found;

	if (capture_maps == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CaptureMap);
		ctl.hcxt = CacheMemoryContext;
		capture_maps = hash_create("connector capture maps", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	map = hash_search(capture_maps, &relid, HASH_ENTER, &found);
	if (!found)
		memset(((char *) map) + sizeof(Oid), 0, sizeof(CaptureMap) - sizeof(Oid));
	if (!map->valid || strcmp(map->app, app) != 0)
		BuildMap(map, rel, app, role);
	return map;
}

/* Output form of column c of tup, or NULL. */
static char *
ColText(MappedCol *c, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, c->attnum, desc, &isnull);

	return isnull ? NULL : OidOutputFunctionCall(c->typoutput, d);
}

static char *
PurposeText(CaptureMap *map, ColPurpose p, HeapTuple tup, TupleDesc desc)
{
	return map->purpose[p] < 0 ? NULL : ColText(&map->cols[map->purpose[p]], tup, desc);
}

/* Append a JSON value for a column, the way to_json would write it. */
static void
AppendJsonValue(StringInfo buf, MappedCol *c, HeapTuple tup, TupleDesc desc)
{
	char	   *s = ColText(c, tup, desc);

	if (s == NULL)
		appendStringInfoString(buf, "null");
	else if (c->cat == JC_BOOL)
		appendStringInfoString(buf, s[0] == 't' ? "true" : "false");
	else if (c->cat == JC_JSON ||
			 (c->cat == JC_NUMBER && strspn(s, "0123456789+-.eE") == strlen(s)))
		appendStringInfoString(buf, s);
	else
		escape_json(buf, s);	/* also NaN and Infinity, as strings */
}

/* The mapped columns of a row as a JSON object. */
static char *
RenderRow(CaptureMap *map, HeapTuple tup, TupleDesc desc)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < map->ncols; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, map->cols[i].name);
		appendStringInfoString(&buf, ": ");
		AppendJsonValue(&buf, &map->cols[i], tup, desc);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
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
 * The origin of the current change, as JSON.  dml_user is the role that ran
 * the DML; a platform call names the role that called the API instead.
 */
static char *
RenderOrigin(Oid dml_user)
{
	const ConnectorOrigin *o = ConnectorCurrentOrigin();
	StringInfoData buf;
	Oid			user = o->active ? o->caller : dml_user;
	const char *appname = GetConfigOption("application_name", true, false);
	char	   *addr = ClientAddr();

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"via\": ");
	escape_json(&buf, o->via);
	if (o->active)
	{
		appendStringInfoString(&buf, ", \"operation\": ");
		escape_json(&buf, o->operation);
		appendStringInfoString(&buf, ", \"request_id\": ");
		if (o->request_id)
			escape_json(&buf, o->request_id);
		else
			appendStringInfoString(&buf, "null");
	}
	appendStringInfoString(&buf, ", \"db_user\": ");
	escape_json(&buf, GetUserNameFromId(user, false));
	appendStringInfoString(&buf, ", \"session_user\": ");
	escape_json(&buf, GetUserNameFromId(GetSessionUserId(), false));
	appendStringInfoString(&buf, ", \"application_name\": ");
	if (appname && appname[0])
		escape_json(&buf, appname);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ", \"client_addr\": ");
	if (addr)
		escape_json(&buf, addr);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* Next sequence number of an event within the current transaction. */
static int32
NextSeq(void)
{
	FullTransactionId xid = GetTopFullTransactionId();

	if (!FullTransactionIdEquals(xid, seq_xid))
	{
		seq_xid = xid;
		seq_next = 0;
	}
	return seq_next++;
}

/* Write one event row into connector.outbox. */
static void
WriteEvent(const char *app, EventRec *ev)
{
	Datum		values[OUTBOX_NARGS];
	char		nulls[OUTBOX_NARGS];
	const char *texts[OUTBOX_NARGS - 1];
	int			i;
	int			ret;

	if (outbox_insert_plan == NULL)
	{
		Oid			types[OUTBOX_NARGS];
		SPIPlanPtr	plan;

		types[0] = INT4OID;
		for (i = 1; i < OUTBOX_NARGS; i++)
			types[i] = TEXTOID;
		plan = SPI_prepare("INSERT INTO connector.outbox (txid, seq, app, type, occurred_at,"
						   " account, account_name, account_kind, entitlement, entitlement_name,"
						   " credential, before, after, expires_at, origin)"
						   " VALUES (pg_catalog.pg_current_xact_id(), $1, $2, $3,"
						   " pg_catalog.clock_timestamp(), $4, $5, $6, $7, $8, $9,"
						   " $10::pg_catalog.jsonb, $11::pg_catalog.jsonb,"
						   " $12::pg_catalog.timestamptz, $13::pg_catalog.jsonb)",
						   OUTBOX_NARGS, types);
		if (plan == NULL)
			elog(ERROR, "connector capture: SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		outbox_insert_plan = plan;
	}

	texts[0] = app;
	texts[1] = ev->type;
	texts[2] = ev->account_id;
	texts[3] = ev->account_name;
	texts[4] = ev->account_kind;
	texts[5] = ev->entitlement_id;
	texts[6] = ev->entitlement_name;
	texts[7] = ev->credential_id;
	texts[8] = ev->before;
	texts[9] = ev->after;
	texts[10] = ev->expires;
	texts[11] = RenderOrigin(capture_user);

	values[0] = Int32GetDatum(NextSeq());
	nulls[0] = ' ';
	for (i = 1; i < OUTBOX_NARGS; i++)
	{
		nulls[i] = texts[i - 1] ? ' ' : 'n';
		values[i] = texts[i - 1] ? CStringGetTextDatum(texts[i - 1]) : (Datum) 0;
	}
	ret = SPI_execute_plan(outbox_insert_plan, values, nulls, false, 0);
	SPI_freetuptable(SPI_tuptable);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "connector capture: writing the outbox failed: %s",
			 SPI_result_code_string(ret));
}

/* Owner of connector.outbox: the role capture writes as. */
static Oid
OutboxOwner(void)
{
	Oid			nsp = get_namespace_oid("connector", false);
	Oid			relid = get_relname_relid("outbox", nsp);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "connector capture: table connector.outbox is missing");
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* Fill name and kind of an account id from the accounts table. */
static void
LookupAccount(CaptureMap *map, EventRec *ev)
{
	Datum		arg;

	if (map->account_lookup == NULL || ev->account_id == NULL)
		return;
	arg = CStringGetTextDatum(ev->account_id);
	if (SPI_execute_plan(map->account_lookup, &arg, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		ev->account_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		ev->account_kind = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* Fill the name of an entitlement id from the entitlements table. */
static void
LookupEntitlement(CaptureMap *map, EventRec *ev)
{
	Datum		arg;

	if (map->entitlement_lookup == NULL || ev->entitlement_id == NULL)
		return;
	arg = CStringGetTextDatum(ev->entitlement_id);
	if (SPI_execute_plan(map->entitlement_lookup, &arg, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		ev->entitlement_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	SPI_freetuptable(SPI_tuptable);
}

/* Account identity of an accounts-table row. */
static void
AccountFromRow(CaptureMap *map, EventRec *ev, HeapTuple tup, TupleDesc desc)
{
	ev->account_id = PurposeText(map, P_ID, tup, desc);
	ev->account_name = PurposeText(map, P_NAME, tup, desc);
	ev->account_kind = PurposeText(map, P_KIND, tup, desc);
}

/* Is the account in tup enabled, per the status mapping? */
static bool
IsEnabled(CaptureMap *map, HeapTuple tup, TupleDesc desc)
{
	char	   *s;

	if (map->status_shape == ST_NONE)
		return true;
	s = PurposeText(map, P_STATUS, tup, desc);
	if (map->status_shape == ST_TIMESTAMP)
		return s == NULL;
	return s != NULL && map->enabled_value != NULL && strcmp(s, map->enabled_value) == 0;
}

/* Output forms of the entitlement ids held in the grants column of tup. */
static List *
GrantedIds(CaptureMap *map, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, map->grants_column.attnum, desc, &isnull);
	List	   *ids = NIL;

	if (isnull)
		return NIL;
	if (!map->grants_is_array)
		return list_make1(OidOutputFunctionCall(map->grants_column.typoutput, d));
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(arr, ARR_ELEMTYPE(arr), map->grants_elem_len,
						  map->grants_elem_byval, map->grants_elem_align,
						  &elems, &nulls, &n);
		for (i = 0; i < n; i++)
		{
			char	   *s;
			ListCell   *lc;
			bool		dup = false;

			if (nulls[i])
				continue;
			s = OidOutputFunctionCall(map->grants_elem_output, elems[i]);
			foreach(lc, ids)
				if (strcmp(lfirst(lc), s) == 0)
					dup = true;
			if (!dup)
				ids = lappend(ids, s);
		}
	}
	return ids;
}

static bool
ListHasString(List *l, const char *s)
{
	ListCell   *lc;

	foreach(lc, l)
		if (strcmp(lfirst(lc), s) == 0)
			return true;
	return false;
}

/* access.granted/revoked for each id in `ids` not in `minus`. */
static void
EmitColumnGrants(CaptureMap *map, EventRec *base, const char *type, List *ids, List *minus)
{
	ListCell   *lc;

	foreach(lc, ids)
	{
		EventRec	ev = *base;

		if (ListHasString(minus, lfirst(lc)))
			continue;
		ev.type = type;
		ev.entitlement_id = lfirst(lc);
		ev.entitlement_name = NULL;
		LookupEntitlement(map, &ev);
		WriteEvent(map->app, &ev);
	}
}

/* Do two tuples differ in a mapped column (other than `skip`, an index or -1)? */
static bool
MappedColumnsDiffer(CaptureMap *map, HeapTuple a, HeapTuple b, TupleDesc desc, int skip)
{
	int			i;

	for (i = 0; i < map->ncols; i++)
	{
		MappedCol  *c = &map->cols[i];
		bool		an,
					bn;
		Datum		ad,
					bd;

		if (i == skip)
			continue;
		ad = heap_getattr(a, c->attnum, desc, &an);
		bd = heap_getattr(b, c->attnum, desc, &bn);
		if (an != bn || (!an && !datum_image_eq(ad, bd, c->typbyval, c->typlen)))
			return true;
	}
	return false;
}

static bool
ColumnDiffers(MappedCol *c, HeapTuple a, HeapTuple b, TupleDesc desc)
{
	bool		an,
				bn;
	Datum		ad = heap_getattr(a, c->attnum, desc, &an);
	Datum		bd = heap_getattr(b, c->attnum, desc, &bn);

	return an != bn || (!an && !datum_image_eq(ad, bd, c->typbyval, c->typlen));
}

/* Events of a row of the accounts table; old or new may be NULL. */
static void
AccountEvents(CaptureMap *map, HeapTuple old, HeapTuple new, TupleDesc desc)
{
	EventRec	ev = {0};
	HeapTuple	cur = new ? new : old;

	AccountFromRow(map, &ev, cur, desc);
	ev.before = old ? RenderRow(map, old, desc) : NULL;
	ev.after = new ? RenderRow(map, new, desc) : NULL;

	if (old == NULL)
	{
		ev.type = "account.created";
		WriteEvent(map->app, &ev);
		if (map->has_grants_column)
			EmitColumnGrants(map, &ev, "access.granted", GrantedIds(map, new, desc), NIL);
	}
	else if (new == NULL)
	{
		/* grants held in the row go with it, each with its own event first */
		if (map->has_grants_column)
			EmitColumnGrants(map, &ev, "access.revoked", GrantedIds(map, old, desc), NIL);
		ev.type = "account.deleted";
		WriteEvent(map->app, &ev);
	}
	else
	{
		bool		was = IsEnabled(map, old, desc);
		bool		is = IsEnabled(map, new, desc);

		if (was != is)
		{
			ev.type = is ? "account.enabled" : "account.disabled";
			WriteEvent(map->app, &ev);
		}
		if (MappedColumnsDiffer(map, old, new, desc, was != is ? map->purpose[P_STATUS] : -1))
		{
			ev.type = "account.updated";
			WriteEvent(map->app, &ev);
		}
		if (map->has_grants_column && ColumnDiffers(&map->grants_column, old, new, desc))
		{
			List	   *before = GrantedIds(map, old, desc);
			List	   *after = GrantedIds(map, new, desc);

			EmitColumnGrants(map, &ev, "access.revoked", before, after);
			EmitColumnGrants(map, &ev, "access.granted", after, before);
		}
	}
}

/* Events of a row of the entitlements table. */
static void
EntitlementEvents(CaptureMap *map, HeapTuple old, HeapTuple new, TupleDesc desc)
{
	EventRec	ev = {0};
	HeapTuple	cur = new ? new : old;

	if (old && new && !MappedColumnsDiffer(map, old, new, desc, -1))
		return;
	ev.type = old == NULL ? "entitlement.created" :
		new == NULL ? "entitlement.deleted" : "entitlement.updated";
	ev.entitlement_id = PurposeText(map, P_ID, cur, desc);
	ev.entitlement_name = PurposeText(map, P_NAME, cur, desc);
	ev.before = old ? RenderRow(map, old, desc) : NULL;
	ev.after = new ? RenderRow(map, new, desc) : NULL;
	WriteEvent(map->app, &ev);
}

/* One access.* event for a row of the membership table. */
static void
MembershipEvent(CaptureMap *map, const char *type, HeapTuple tup, TupleDesc desc,
				HeapTuple old, HeapTuple new)
{
	EventRec	ev = {0};

	ev.type = type;
	ev.account_id = PurposeText(map, P_ACCOUNT, tup, desc);
	ev.entitlement_id = PurposeText(map, P_ENTITLEMENT, tup, desc);
	ev.expires = PurposeText(map, P_EXPIRES, tup, desc);
	ev.before = old ? RenderRow(map, old, desc) : NULL;
	ev.after = new ? RenderRow(map, new, desc) : NULL;
	LookupAccount(map, &ev);
	LookupEntitlement(map, &ev);
	WriteEvent(map->app, &ev);
}

/* Events of a row of the membership table. */
static void
GrantEvents(CaptureMap *map, HeapTuple old, HeapTuple new, TupleDesc desc)
{
	if (old == NULL)
		MembershipEvent(map, "access.granted", new, desc, NULL, new);
	else if (new == NULL)
		MembershipEvent(map, "access.revoked", old, desc, old, NULL);
	else if ((map->purpose[P_ACCOUNT] >= 0 &&
			  ColumnDiffers(&map->cols[map->purpose[P_ACCOUNT]], old, new, desc)) ||
			 (map->purpose[P_ENTITLEMENT] >= 0 &&
			  ColumnDiffers(&map->cols[map->purpose[P_ENTITLEMENT]], old, new, desc)))
	{
		/* the row moved: a revoke of the old pair, a grant of the new one */
		MembershipEvent(map, "access.revoked", old, desc, old, NULL);
		MembershipEvent(map, "access.granted", new, desc, NULL, new);
	}
	else if (MappedColumnsDiffer(map, old, new, desc, -1))
		/* a renewed or shortened grant: granted again with its new expiry */
		MembershipEvent(map, "access.granted", new, desc, old, new);
}

/* Events of a row of the credentials table. */
static void
CredentialEvents(CaptureMap *map, HeapTuple old, HeapTuple new, TupleDesc desc)
{
	EventRec	ev = {0};
	HeapTuple	cur = new ? new : old;

	if (old == NULL)
		ev.type = "credential.created";
	else if (new == NULL)
		ev.type = "credential.deleted";
	else
	{
		int			rv = map->purpose[P_REVOKED];
		bool		was_revoked = rv >= 0 && PurposeText(map, P_REVOKED, old, desc) != NULL;
		bool		is_revoked = rv >= 0 && PurposeText(map, P_REVOKED, new, desc) != NULL;

		if (!was_revoked && is_revoked)
			ev.type = "credential.revoked";
		else if (MappedColumnsDiffer(map, old, new, desc, map->purpose[P_LAST_USED]))
			ev.type = "credential.updated";
		else
			return;				/* unmapped columns or last use only */
	}
	ev.credential_id = PurposeText(map, P_ID, cur, desc);
	ev.account_id = PurposeText(map, P_ACCOUNT, cur, desc);
	ev.expires = PurposeText(map, P_EXPIRES, cur, desc);
	ev.before = old ? RenderRow(map, old, desc) : NULL;
	ev.after = new ? RenderRow(map, new, desc) : NULL;
	LookupAccount(map, &ev);
	WriteEvent(map->app, &ev);
}

static void
RowEvents(CaptureMap *map, HeapTuple old, HeapTuple new, TupleDesc desc)
{
	switch (map->role)
	{
		case MAP_ACCOUNTS:
			AccountEvents(map, old, new, desc);
			break;
		case MAP_ENTITLEMENTS:
			EntitlementEvents(map, old, new, desc);
			break;
		case MAP_GRANTS:
			GrantEvents(map, old, new, desc);
			break;
		case MAP_CREDENTIALS:
			CredentialEvents(map, old, new, desc);
			break;
	}
}

/*
 * TRUNCATE fires no row triggers: emit the events of deleting every row, by
 * scanning each leaf table (the partitions of a partitioned table) before it
 * is emptied.
 */
static void
TruncateEvents(Relation rel, const char *app, const char *role)
{
	List	   *relids = find_all_inheritors(RelationGetRelid(rel), AccessShareLock, NULL);
	ListCell   *lc;
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "connector truncate row",
												 ALLOCSET_DEFAULT_SIZES);

	foreach(lc, relids)
	{
		Relation	leaf = table_open(lfirst_oid(lc), AccessShareLock);
		CaptureMap *map;
		TableScanDesc scan;
		TupleTableSlot *slot;
		HeapTuple	tup;

		if (leaf->rd_rel->relkind != RELKIND_RELATION)
		{
			table_close(leaf, AccessShareLock);
			continue;
		}
		map = GetMap(leaf, app, role);
		slot = table_slot_create(leaf, NULL);
		scan = table_beginscan(leaf, GetActiveSnapshot(), 0, NULL);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);
			bool		shouldfree;

			tup = ExecFetchSlotHeapTuple(slot, false, &shouldfree);
			RowEvents(map, tup, NULL, RelationGetDescr(leaf));
			if (shouldfree)
				heap_freetuple(tup);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		table_close(leaf, AccessShareLock);
	}
}

/*
 * connector.capture(): AFTER INSERT/UPDATE/DELETE FOR EACH ROW and BEFORE
 * TRUNCATE FOR EACH STATEMENT on every mapped table.
 * Arguments: application name, mapping role.
 */
Datum
connector_capture(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Trigger    *trig;
	TupleDesc	desc;
	CaptureMap *map;
	TriggerEvent ev;
	Oid			save_userid;
	int			save_sec;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("connector.capture() must be called as a trigger")));
	trig = td->tg_trigger;
	ev = td->tg_event;
	if (trig->tgnargs != 2)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("connector.capture() needs two arguments: application and role")));

	/*
	 * The outbox is writable by the extension's owner only: write it, and
	 * read the mapping, as that owner, in a restricted security context.  All
	 * SQL run here is schema-qualified, so the caller's search_path cannot
	 * redirect it.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	capture_user = save_userid;
	SetUserIdAndSecContext(OutboxOwner(), save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "connector capture: SPI_connect failed");

	if (TRIGGER_FIRED_BY_TRUNCATE(ev))
		TruncateEvents(td->tg_relation, trig->tgargs[0], trig->tgargs[1]);
	else
	{
		if (!TRIGGER_FIRED_AFTER(ev) || !TRIGGER_FIRED_FOR_ROW(ev))
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("connector.capture() must fire AFTER ... FOR EACH ROW")));
		map = GetMap(td->tg_relation, trig->tgargs[0], trig->tgargs[1]);
		desc = RelationGetDescr(td->tg_relation);
		if (TRIGGER_FIRED_BY_INSERT(ev))
			RowEvents(map, NULL, td->tg_trigtuple, desc);
		else if (TRIGGER_FIRED_BY_DELETE(ev))
			RowEvents(map, td->tg_trigtuple, NULL, desc);
		else if (TRIGGER_FIRED_BY_UPDATE(ev))
			RowEvents(map, td->tg_trigtuple, td->tg_newtuple, desc);
	}

	SPI_finish();
	/* on error, transaction abort restores the user */
	SetUserIdAndSecContext(save_userid, save_sec);
	return PointerGetDatum(NULL);
}

/*
 * connector._emit(app text, type text, after jsonb): write an event that no
 * row change carries (capture.tampered).  Superuser only: the SECURITY
 * DEFINER tamper check calls it.
 */
Datum
connector_emit(PG_FUNCTION_ARGS)
{
	EventRec	ev = {0};
	char	   *app;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _emit")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		elog(ERROR, "_emit: app and type are required");
	app = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ev.type = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(2))
		ev.after = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(2)));
	capture_user = GetOuterUserId();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "connector: SPI_connect failed");
	WriteEvent(app, &ev);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * connector._outer_user(): the role the session is acting as outside any
 * SECURITY DEFINER function (the role that issued the current command).
 */
Datum
connector_outer_user(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(GetOuterUserId());
}
