/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  The capture trigger: every change to a mapped table becomes events in
 *	  connector.outbox, written in the changing transaction.
 *
 * One trigger function serves every mapped table; its two arguments name the
 * application and the table's role in the mapping (accounts, entitlements,
 * grants, credentials).  The per-relation mapping (attribute numbers, output
 * functions, the indexes used to name accounts and entitlements) is built
 * once and cached until the relation's relcache entry is invalidated, which
 * happens whenever register_app recreates the trigger or the table changes.
 *
 * The hot path does no SPI.  Each event is rendered to JSON text at once and
 * appended to a buffer of the (sub)transaction; the buffer is written to the
 * outbox as dense rows of up to CHUNK_EVENTS events, with direct heap and
 * index inserts, before commit (or earlier when it grows large, or when a
 * reader in the same transaction asks).  A subtransaction that aborts drops
 * what it buffered; one that commits hands it to its parent.  Events of an
 * outer level written from inside a subtransaction are kept until that
 * subtransaction ends: if it aborts, their rows vanish with it and they are
 * buffered again, so a rollback to a savepoint never loses them.
 *
 * Only mapped columns are ever read from a tuple: a password hash next to a
 * login never reaches the outbox.
 *
 * The trigger's parts: capture_map.c builds the mapping, capture_names.c
 * names ids, capture_render.c writes values as JSON and capture_outbox.c
 * buffers events and writes them to the outbox.  This file holds the
 * entry points and the events a change of a row makes.
 *
 * IDENTIFICATION
 *	  src/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "executor/executor.h"
#include "tcop/utility.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "connector.h"
#include "capture.h"

Oid			capture_user = InvalidOid;	/* role running the current DML */

/* An entitlement id held in a grants column: text and datum. */
typedef struct HeldId
{
	char	   *text;
	Datum		value;
} HeldId;

PG_FUNCTION_INFO_V1(connector_capture);
PG_FUNCTION_INFO_V1(connector_emit);
PG_FUNCTION_INFO_V1(connector_flush);
PG_FUNCTION_INFO_V1(connector_capture_rows);
PG_FUNCTION_INFO_V1(connector_outer_user);

static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;

/*
 * A statement's AFTER row triggers have fired: the names its events left
 * for later (LinkedPartLater) are looked up now, all at once.
 */
static void
CaptureExecutorFinish(QueryDesc *qd)
{
	if (prev_ExecutorFinish)
		prev_ExecutorFinish(qd);
	else
		standard_ExecutorFinish(qd);
	if (NamesPending())
		FillHoles();
}

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * COPY FROM fires its AFTER row triggers without ExecutorFinish, and
 * TRUNCATE its capture in a BEFORE trigger: their names are looked up when
 * the command is done, before another can rename or drop an account.
 */
static void
CaptureProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
							dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
								dest, qc);
	if (NamesPending())
		FillHoles();
}

/* Register the callbacks; called once per backend. */
void
ConnectorCaptureInit(void)
{
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = CaptureExecutorFinish;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = CaptureProcessUtility;
	CacheRegisterRelcacheCallback(CaptureRelcacheCallback, (Datum) 0);
	RegisterXactCallback(CaptureXactCallback, NULL);
	RegisterXactCallback(NamesXactCallback, NULL);
	RegisterSubXactCallback(CaptureSubXactCallback, NULL);
}

/* ---- events of a row ---- */

/* Per-call context of the trigger. */
typedef struct CaptureCall
{
	CaptureMap *map;
	TupleDesc	desc;
	const char *origin;
} CaptureCall;

static void
WriteEvent(CaptureCall *cc, EventRec *ev)
{
	EmitEvent(cc->map->app, cc->origin, ev, cc->map, cc->desc);
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

/* The entitlement ids held in the grants column of tup, without repeats. */
static List *
GrantedIds(CaptureMap *map, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, map->grants_column.attnum, desc, &isnull);
	List	   *ids = NIL;
	HeldId	   *h;

	if (isnull)
		return NIL;
	if (!map->grants_is_array)
	{
		h = palloc(sizeof(HeldId));
		h->text = ValueText(d, &map->grants_column);
		h->value = d;
		return list_make1(h);
	}
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(arr, map->grants_elem.typid, map->grants_elem.typlen,
						  map->grants_elem.typbyval, map->grants_elem_align,
						  &elems, &nulls, &n);
		for (i = 0; i < n; i++)
		{
			char	   *s;
			ListCell   *lc;
			bool		dup = false;

			if (nulls[i])
				continue;
			s = ValueText(elems[i], &map->grants_elem);
			foreach(lc, ids)
				if (strcmp(((HeldId *) lfirst(lc))->text, s) == 0)
					dup = true;
			if (dup)
				continue;
			h = palloc(sizeof(HeldId));
			h->text = s;
			h->value = elems[i];
			ids = lappend(ids, h);
		}
	}
	return ids;
}

static bool
HoldsId(List *l, const char *s)
{
	ListCell   *lc;

	foreach(lc, l)
		if (strcmp(((HeldId *) lfirst(lc))->text, s) == 0)
			return true;
	return false;
}

/* access.granted/revoked for each id in `ids` not in `minus`. */
static void
EmitColumnGrants(CaptureCall *cc, EventRec *base, const char *type, List *ids, List *minus)
{
	CaptureMap *map = cc->map;
	ListCell   *lc;

	foreach(lc, ids)
	{
		HeldId	   *h = lfirst(lc);
		EventRec	ev = *base;

		if (HoldsId(minus, h->text))
			continue;
		ev.type = type;
		ev.entitlement_part = LinkedPart(&map->entitlement_lookup, h->value,
										 map->grants_is_array ? &map->grants_elem : &map->grants_column,
										 false);
		WriteEvent(cc, &ev);
	}
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

/* Do two tuples differ in a mapped column (other than `skip`, an index or -1)? */
static bool
MappedColumnsDiffer(CaptureMap *map, HeapTuple a, HeapTuple b, TupleDesc desc, int skip)
{
	int			i;

	for (i = 0; i < map->ncols; i++)
		if (i != skip && ColumnDiffers(&map->cols[i], a, b, desc))
			return true;
	return false;
}

/* Do two versions of an account or entitlement differ in id, name or kind? */
static bool
NameColumnsDiffer(CaptureMap *map, HeapTuple a, HeapTuple b, TupleDesc desc)
{
	static const ColPurpose ps[] = {P_ID, P_NAME, P_KIND};
	int			i;

	for (i = 0; i < lengthof(ps); i++)
		if (map->purpose[ps[i]] >= 0 &&
			ColumnDiffers(&map->cols[map->purpose[ps[i]]], a, b, desc))
			return true;
	return false;
}

/* Events of a row of the accounts table; old or new may be NULL. */
static void
AccountEvents(CaptureCall *cc, HeapTuple old, HeapTuple new)
{
	CaptureMap *map = cc->map;
	TupleDesc	desc = cc->desc;
	EventRec	ev = {0};

	if (old && (new == NULL || NameColumnsDiffer(map, old, new, desc)))
		NamesChanged();
	AccountFromRow(map, &ev, new ? new : old, desc);
	ev.before_tup = old;
	ev.after_tup = new;

	if (old == NULL)
	{
		ev.type = "account.created";
		WriteEvent(cc, &ev);
		if (map->has_grants_column)
			EmitColumnGrants(cc, &ev, "access.granted", GrantedIds(map, new, desc), NIL);
	}
	else if (new == NULL)
	{
		/* grants held in the row go with it, each with its own event first */
		if (map->has_grants_column)
			EmitColumnGrants(cc, &ev, "access.revoked", GrantedIds(map, old, desc), NIL);
		ev.type = "account.deleted";
		WriteEvent(cc, &ev);
	}
	else
	{
		bool		was = IsEnabled(map, old, desc);
		bool		is = IsEnabled(map, new, desc);

		if (was != is)
		{
			ev.type = is ? "account.enabled" : "account.disabled";
			WriteEvent(cc, &ev);
		}
		if (MappedColumnsDiffer(map, old, new, desc, was != is ? map->purpose[P_STATUS] : -1))
		{
			ev.type = "account.updated";
			WriteEvent(cc, &ev);
		}
		if (map->has_grants_column && ColumnDiffers(&map->grants_column, old, new, desc))
		{
			List	   *before = GrantedIds(map, old, desc);
			List	   *after = GrantedIds(map, new, desc);

			EmitColumnGrants(cc, &ev, "access.revoked", before, after);
			EmitColumnGrants(cc, &ev, "access.granted", after, before);
		}
	}
}

/* Events of a row of the entitlements table. */
static void
EntitlementEvents(CaptureCall *cc, HeapTuple old, HeapTuple new)
{
	CaptureMap *map = cc->map;
	TupleDesc	desc = cc->desc;
	EventRec	ev = {0};
	HeapTuple	cur = new ? new : old;

	if (old && new && !MappedColumnsDiffer(map, old, new, desc, -1))
		return;
	if (old && (new == NULL || NameColumnsDiffer(map, old, new, desc)))
		NamesChanged();
	ev.type = old == NULL ? "entitlement.created" :
		new == NULL ? "entitlement.deleted" : "entitlement.updated";
	ev.entitlement_id = PurposeText(map, P_ID, cur, desc);
	ev.entitlement_name = PurposeText(map, P_NAME, cur, desc);
	ev.before_tup = old;
	ev.after_tup = new;
	WriteEvent(cc, &ev);
}

/*
 * What membership and credential events share: the account (named through
 * the accounts table), the expiry, and the row before and after.
 */
static void
FillLinkedAccount(CaptureCall *cc, EventRec *ev, HeapTuple tup, HeapTuple old, HeapTuple new)
{
	CaptureMap *map = cc->map;
	TupleDesc	desc = cc->desc;
	bool		isnull;
	Datum		key;

	ev->expires = PurposeText(map, P_EXPIRES, tup, desc);
	ev->before_tup = old;
	ev->after_tup = new;
	key = PurposeValue(map, P_ACCOUNT, tup, desc, &isnull);
	if (!isnull)
	{
		MappedCol  *c = &map->cols[map->purpose[P_ACCOUNT]];

		ev->account_part = LinkedPartLater(&map->account_lookup, key, c, true,
										   &ev->account_hole);
	}
}

/* One access.* event for a row of the membership table. */
static void
MembershipEvent(CaptureCall *cc, const char *type, HeapTuple tup, HeapTuple old, HeapTuple new)
{
	CaptureMap *map = cc->map;
	EventRec	ev = {0};
	bool		isnull;
	Datum		key;

	ev.type = type;
	FillLinkedAccount(cc, &ev, tup, old, new);
	key = PurposeValue(map, P_ENTITLEMENT, tup, cc->desc, &isnull);
	if (!isnull)
	{
		MappedCol  *c = &map->cols[map->purpose[P_ENTITLEMENT]];

		ev.entitlement_part = LinkedPartLater(&map->entitlement_lookup, key, c, false,
											  &ev.entitlement_hole);
	}
	WriteEvent(cc, &ev);
}

/* Events of a row of the membership table. */
static void
GrantEvents(CaptureCall *cc, HeapTuple old, HeapTuple new)
{
	CaptureMap *map = cc->map;
	TupleDesc	desc = cc->desc;

	if (old == NULL)
		MembershipEvent(cc, "access.granted", new, NULL, new);
	else if (new == NULL)
		MembershipEvent(cc, "access.revoked", old, old, NULL);
	else if ((map->purpose[P_ACCOUNT] >= 0 &&
			  ColumnDiffers(&map->cols[map->purpose[P_ACCOUNT]], old, new, desc)) ||
			 (map->purpose[P_ENTITLEMENT] >= 0 &&
			  ColumnDiffers(&map->cols[map->purpose[P_ENTITLEMENT]], old, new, desc)))
	{
		/* the row moved: a revoke of the old pair, a grant of the new one */
		MembershipEvent(cc, "access.revoked", old, old, NULL);
		MembershipEvent(cc, "access.granted", new, NULL, new);
	}
	else if (MappedColumnsDiffer(map, old, new, desc, -1))
		/* a renewed or shortened grant: granted again with its new expiry */
		MembershipEvent(cc, "access.granted", new, old, new);
}

/* Events of a row of the credentials table. */
static void
CredentialEvents(CaptureCall *cc, HeapTuple old, HeapTuple new)
{
	CaptureMap *map = cc->map;
	TupleDesc	desc = cc->desc;
	EventRec	ev = {0};
	HeapTuple	cur = new ? new : old;

	if (old == NULL)
		ev.type = "credential.created";
	else if (new == NULL)
		ev.type = "credential.deleted";
	else
	{
		bool		was_revoked = PurposeText(map, P_REVOKED, old, desc) != NULL;
		bool		is_revoked = PurposeText(map, P_REVOKED, new, desc) != NULL;

		if (!was_revoked && is_revoked)
			ev.type = "credential.revoked";
		else if (MappedColumnsDiffer(map, old, new, desc, map->purpose[P_LAST_USED]))
			ev.type = "credential.updated";
		else
			return;				/* unmapped columns or last use only */
	}
	ev.credential_id = PurposeText(map, P_ID, cur, desc);
	FillLinkedAccount(cc, &ev, cur, old, new);
	WriteEvent(cc, &ev);
}

static void
RowEvents(CaptureCall *cc, HeapTuple old, HeapTuple new)
{
	switch (cc->map->role)
	{
		case MAP_ACCOUNTS:
			AccountEvents(cc, old, new);
			break;
		case MAP_ENTITLEMENTS:
			EntitlementEvents(cc, old, new);
			break;
		case MAP_GRANTS:
			GrantEvents(cc, old, new);
			break;
		case MAP_CREDENTIALS:
			CredentialEvents(cc, old, new);
			break;
	}
}

/*
 * The events of every row of rel at once: deleting them all (TRUNCATE), or
 * adding them all (a table attached as a partition of a mapped table).
 */
static void
ScanEvents(Relation rel, const char *app, const char *role, const char *origin, bool deleting)
{
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "connector scan row",
												 ALLOCSET_DEFAULT_SIZES);
	CaptureCall cc;
	TableScanDesc scan;
	TupleTableSlot *slot;

	cc.map = GetMap(rel, app, role);
	NameCache();
	cc.desc = RelationGetDescr(rel);
	cc.origin = origin;
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);
		bool		shouldfree;
		HeapTuple	tup = ExecFetchSlotHeapTuple(slot, false, &shouldfree);

		if (deleting)
			RowEvents(&cc, tup, NULL);
		else
			RowEvents(&cc, NULL, tup);
		if (shouldfree)
			heap_freetuple(tup);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(rowcxt);
	FillHoles();				/* no ExecutorFinish ends a TRUNCATE */
}

/*
 * TRUNCATE fires no row triggers: emit the events of deleting every row of
 * rel before it is emptied.  TRUNCATE of a partitioned table fires the
 * BEFORE TRUNCATE trigger of every partition too, and each leaf partition has
 * its own (connector._capture_install_partitions): its rows are captured
 * there, whether the TRUNCATE named the partition or the table.
 */
static void
TruncateEvents(Relation rel, const char *app, const char *role, const char *origin)
{
	if (rel->rd_rel->relkind == RELKIND_RELATION)
		ScanEvents(rel, app, role, origin, true);
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
	TriggerEvent ev;
	CaptureCall cc;

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

	capture_user = GetUserId();
	if (TRIGGER_FIRED_BY_TRUNCATE(ev))
	{
		TruncateEvents(td->tg_relation, trig->tgargs[0], trig->tgargs[1], CurrentOrigin(trig->tgargs[0]));
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_AFTER(ev) || !TRIGGER_FIRED_FOR_ROW(ev))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("connector.capture() must fire AFTER ... FOR EACH ROW")));

	cc.map = GetMap(td->tg_relation, trig->tgargs[0], trig->tgargs[1]);
	NameCache();
	cc.desc = RelationGetDescr(td->tg_relation);
	cc.origin = CurrentOrigin(trig->tgargs[0]);
	if (TRIGGER_FIRED_BY_INSERT(ev))
		RowEvents(&cc, NULL, td->tg_trigtuple);
	else if (TRIGGER_FIRED_BY_DELETE(ev))
		RowEvents(&cc, td->tg_trigtuple, NULL);
	else if (TRIGGER_FIRED_BY_UPDATE(ev))
		RowEvents(&cc, td->tg_trigtuple, td->tg_newtuple);
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
	int			code;
	char	   *app;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _emit")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		elog(ERROR, "_emit: app and type are required");
	ev.type = text_to_cstring(PG_GETARG_TEXT_PP(1));
	code = TypeNumber(ev.type);
	if (code > 0)
		ev.type = event_types[code];	/* see TypeCode */
	if (!PG_ARGISNULL(2))
		ev.after = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(2)));
	capture_user = GetOuterUserId();
	app = text_to_cstring(PG_GETARG_TEXT_PP(0));
	EmitEvent(app, CurrentOrigin(app), &ev, NULL, NULL);
	PG_RETURN_VOID();
}

/*
 * connector._capture_rows(app text, role text, rel oid): the events of adding
 * every row of rel, a table just attached as a partition of a mapped table
 * (its rows join the application's without any row trigger firing), by the
 * role that attached it.  Superuser only: the DDL event trigger calls it.
 */
Datum
connector_capture_rows(PG_FUNCTION_ARGS)
{
	Relation	rel;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _capture_rows")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		elog(ERROR, "_capture_rows: app, role and table are required");
	rel = table_open(PG_GETARG_OID(2), AccessShareLock);
	capture_user = GetOuterUserId();
	if (rel->rd_rel->relkind == RELKIND_RELATION)
	{
		char	   *app = text_to_cstring(PG_GETARG_TEXT_PP(0));

		ScanEvents(rel, app, text_to_cstring(PG_GETARG_TEXT_PP(1)), CurrentOrigin(app), false);
	}
	table_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}

/*
 * connector._flush(): write the buffered events now, so a reader in the same
 * transaction (changes(), sealing) sees them.
 */
Datum
connector_flush(PG_FUNCTION_ARGS)
{
	FlushChunks();
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

