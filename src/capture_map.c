/*-------------------------------------------------------------------------
 *
 * capture_map.c
 *	  The capture trigger's mapping: for each mapped relation, the columns
 *	  read and their output functions, the purposes they serve, and how ids
 *	  are named (the id's unique index, or a query for a partitioned table).
 *
 * A mapping is built once per relation and kept until the relation's (or a
 * lookup table's) relcache entry is invalidated.
 *
 * IDENTIFICATION
 *	  src/capture_map.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/nbtree.h"
#include "access/table.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "connector.h"
#include "capture.h"


static HTAB *capture_maps = NULL;
static CaptureMap *last_map = NULL;	/* the one GetMap returned last */

/* Mark cached maps stale when their relation changes. */
void
CaptureRelcacheCallback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	CaptureMap *map;

	if (relid == InvalidOid || relid == outbox_relid || relid == outbox_indexid)
		outbox_relid = InvalidOid;
	if (capture_maps == NULL)
		return;
	hash_seq_init(&status, capture_maps);
	while ((map = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || map->relid == relid ||
			map->account_lookup.relid == relid || map->entitlement_lookup.relid == relid)
		{
			map->valid = false;
			names_stale = true;
		}
}

/* ---- the mapping ---- */

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

/* Fill the type fields of a MappedCol (output function in the current context). */
static void
SetColType(MappedCol *col, Oid typid)
{
	Oid			typoutput;
	bool		isvarlena;

	col->typid = typid;
	get_typlenbyval(typid, &col->typlen, &col->typbyval);
	getTypeOutputInfo(typid, &typoutput, &isvarlena);
	fmgr_info_cxt(typoutput, &col->outfn, CurrentMemoryContext);
	col->cat = JsonCategory(typid);
	col->basetype = getBaseType(typid);
	col->plain_number = col->basetype == INT2OID || col->basetype == INT4OID ||
		col->basetype == INT8OID || col->basetype == OIDOID;
}

/* Fill a MappedCol for column name of rel; false when the column is gone. */
static bool
ResolveColumn(Relation rel, const char *name, MappedCol *col)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);
	Form_pg_attribute att;

	if (attnum == InvalidAttrNumber || attnum < 0)
		return false;
	att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	col->attnum = attnum;
	col->name = pstrdup(name);
	{
		StringInfoData key;

		initStringInfo(&key);
		escape_json(&key, name);
		appendStringInfoChar(&key, ':');
		col->json_key = key.data;
	}
	SetColType(col, att->atttypid);
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

/* Output function of attribute att of rel, in cxt, and the attribute's type. */
static Oid
AttOutput(Relation rel, AttrNumber att, FmgrInfo *fn, MemoryContext cxt)
{
	Oid			typid = TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid;
	Oid			out;
	bool		isvarlena;

	getTypeOutputInfo(typid, &out, &isvarlena);
	fmgr_info_cxt(out, fn, cxt);
	return typid;
}

/*
 * A partitioned table has no index to scan, only its partitions: its names
 * are looked up by a query that the planner routes to the partition.  Made
 * of identifiers, and the index's own equality operator, all qualified.
 */
static char *
LookupQuery(Relation rel, const char *idcol, Oid idtype, const char *namecol,
			const char *kindcol, Oid eqop, MemoryContext cxt)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q, "SELECT n.%s, ", quote_identifier(namecol));
	if (kindcol)
		appendStringInfo(&q, "n.%s, ", quote_identifier(kindcol));
	else
		appendStringInfoString(&q, "NULL::pg_catalog.text, ");
	appendStringInfo(&q, "n.xmin, n.xmax FROM %s n WHERE ",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	generate_operator_clause(&q, psprintf("n.%s", quote_identifier(idcol)), idtype, eqop,
							 "$1", idtype);
	return MemoryContextStrdup(cxt, q.data);
}

/*
 * Prepare a name lookup on table relid: find the unique single-column index
 * on its id column (register_app requires one) and the equality procedure.
 */
static void
PrepareLookup(NameLookup *lk, Oid relid, const char *idcol, const char *namecol,
			  const char *kindcol, MemoryContext cxt)
{
	AttrNumber	idatt = get_attnum(relid, idcol);
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;

	memset(lk, 0, sizeof(*lk));
	if (idatt <= 0)
		return;
	lk->relid = relid;
	lk->id_att = idatt;
	lk->name_att = namecol ? get_attnum(relid, namecol) : InvalidAttrNumber;
	lk->kind_att = kindcol ? get_attnum(relid, kindcol) : InvalidAttrNumber;
	if (lk->name_att <= 0)
		return;

	rel = table_open(relid, AccessShareLock);
	lk->id_typid = TupleDescAttr(RelationGetDescr(rel), idatt - 1)->atttypid;
	lk->id_basetype = getBaseType(lk->id_typid);
	lk->owner = rel->rd_rel->relowner;
	lk->name_typid = AttOutput(rel, lk->name_att, &lk->name_out, cxt);
	if (lk->kind_att > 0)
		lk->kind_typid = AttOutput(rel, lk->kind_att, &lk->kind_out, cxt);
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index ind = idx->rd_index;

		if (ind->indisunique && ind->indnkeyatts == 1 && ind->indkey.values[0] == idatt &&
			idx->rd_rel->relam == BTREE_AM_OID &&
			RelationGetIndexPredicate(idx) == NIL && RelationGetIndexExpressions(idx) == NIL)
		{
			Oid			op = get_opfamily_member(idx->rd_opfamily[0], idx->rd_opcintype[0],
												 idx->rd_opcintype[0], BTEqualStrategyNumber);

			if (OidIsValid(op))
			{
				lk->indexid = RelationGetRelid(idx);
				lk->eqproc = get_opcode(op);
				lk->collation = idx->rd_indcollation[0];
				lk->valid = true;
				if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
					lk->query = LookupQuery(rel, idcol, lk->id_typid, namecol, kindcol, op, cxt);
			}
		}
		index_close(idx, AccessShareLock);
		if (lk->valid)
			break;
	}
	list_free(indexes);
	table_close(rel, AccessShareLock);
}

/*
 * SPI as the bootstrap superuser, in a restricted operation: capture reads
 * the mapping, which the role running the DML may not read.  Nothing of the
 * application's runs there: the mapping query touches the extension's own
 * catalog only.
 */
typedef struct SavedUser
{
	Oid			userid;
	int			sec;
} SavedUser;

static void
SpiAsSuperuser(SavedUser *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, saved->sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "connector capture: SPI_connect failed");
}

static void
SpiDone(SavedUser *saved)
{
	SPI_finish();
	SetUserIdAndSecContext(saved->userid, saved->sec);	/* on error, abort restores it */
}

/*
 * Build the map of rel from connector._capture_spec(app, role), which lists
 * the mapped columns by purpose, in before/after order, and the tables that
 * name accounts and entitlements.  Runs once per relation and mapping.
 */
static void
BuildMap(CaptureMap *map, Relation rel, const char *app, const char *role)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, OIDOID};
	Datum		args[3];
	MemoryContext old;
	uint64		i;
	int			ret;
	char	   *lk[2][4] = {{NULL}};	/* table, id, name, kind */
	SavedUser	saved;

	if (map->account_lookup.plan)
		SPI_freeplan(map->account_lookup.plan);
	if (map->entitlement_lookup.plan)
		SPI_freeplan(map->entitlement_lookup.plan);
	if (map->cxt)
		MemoryContextDelete(map->cxt);
	memset(((char *) map) + sizeof(Oid), 0, sizeof(CaptureMap) - sizeof(Oid));
	for (i = 0; i < NUM_PURPOSES; i++)
		map->purpose[i] = -1;
	map->cxt = AllocSetContextCreate(CacheMemoryContext, "connector capture map",
									 ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(map->cxt);
	map->app = pstrdup(app);
	map->role = ParseRole(role);
	MemoryContextSwitchTo(old);

	/* the mapping is not readable by the role running the DML */
	SpiAsSuperuser(&saved);
	args[0] = CStringGetTextDatum(app);
	args[1] = CStringGetTextDatum(role);
	args[2] = ObjectIdGetDatum(RelationGetRelid(rel));
	ret = SPI_execute_with_args("SELECT k, v FROM connector._capture_spec($1, $2, $3)",
								3, argtypes, args, NULL, true, 0);
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

				map->has_grants_column = true;
				map->grants_is_array = OidIsValid(elem);
				if (map->grants_is_array)
				{
					SetColType(&map->grants_elem, elem);
					get_typlenbyvalalign(elem, &map->grants_elem.typlen,
										 &map->grants_elem.typbyval, &map->grants_elem_align);
				}
			}
		}
		else if (strcmp(k, "status_shape") == 0)
			map->status_shape = strcmp(v, "timestamp") == 0 ? ST_TIMESTAMP : ST_VALUE;
		else if (strcmp(k, "enabled") == 0)
			map->enabled_value = pstrdup(v);
		else if (strncmp(k, "account_", 8) == 0 || strncmp(k, "entitlement_", 12) == 0)
		{
			int			which = k[1] == 'c' ? 0 : 1;
			const char *field = strchr(k, '_') + 1;
			int			f = strcmp(field, "table") == 0 ? 0 : strcmp(field, "id") == 0 ? 1 :
				strcmp(field, "name") == 0 ? 2 : 3;

			lk[which][f] = pstrdup(v);
		}
	}
	MemoryContextSwitchTo(old);
	SpiDone(&saved);

	/*
	 * The enabled value's output form, as the trigger will see the column:
	 * its type's input runs as the table's owner (an enum's or a domain's
	 * input may be the owner's code: a domain's CHECK).
	 */
	if (map->enabled_value && map->purpose[P_STATUS] >= 0)
	{
		MappedCol  *st = &map->cols[map->purpose[P_STATUS]];
		Oid			typinput;
		Oid			typioparam;
		ConnectorSavedRole as_owner;
		Datum		d;

		getTypeInputInfo(st->typid, &typinput, &typioparam);
		ConnectorActAs(rel->rd_rel->relowner, &as_owner);
		d = OidInputFunctionCall(typinput, map->enabled_value, typioparam,
								 TupleDescAttr(RelationGetDescr(rel), st->attnum - 1)->atttypmod);
		ConnectorActAsEnd(&as_owner);
		map->enabled_value = MemoryContextStrdup(map->cxt, OutputFunctionCall(&st->outfn, d));
	}

	if (lk[0][0])
		PrepareLookup(&map->account_lookup, (Oid) strtoul(lk[0][0], NULL, 10),
					  lk[0][1], lk[0][2], lk[0][3], map->cxt);
	if (lk[1][0])
		PrepareLookup(&map->entitlement_lookup, (Oid) strtoul(lk[1][0], NULL, 10),
					  lk[1][1], lk[1][2], NULL, map->cxt);
	if (map->purpose[P_STATUS] < 0)
		map->status_shape = ST_NONE;
	map->valid = true;
}

/* The cached map of rel, built on first use or after invalidation. */
CaptureMap *
GetMap(Relation rel, const char *app, const char *role)
{
	Oid			relid = RelationGetRelid(rel);
	CaptureMap *map;
	bool		found;

	/* a multi-row statement asks for the same one again and again */
	if (last_map != NULL && last_map->relid == relid && last_map->valid &&
		strcmp(last_map->app, app) == 0)
		return last_map;
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
	last_map = map;
	return map;
}
