/*-------------------------------------------------------------------------
 *
 * origin.c
 *	  Unforgeable record of who caused a change: the platform API marks its
 *	  own calls here, everything else is direct DML.
 *
 * The mark lives in backend memory, not in a GUC or a table, so a session
 * cannot set it: only connector._origin_begin() sets it, and that function is
 * executable by superusers alone (the SECURITY DEFINER API runs as one).  The
 * mark follows the transaction: a subtransaction that aborts drops the marks
 * it set, and transaction end drops them all, so an error inside an API call
 * can never leave later direct DML labelled as a platform change.
 *
 * IDENTIFICATION
 *	  src/origin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "connector.h"

#define ORIGIN_STACK_DEPTH 8

typedef struct OriginEntry
{
	ConnectorOrigin origin;
	SubTransactionId subid;		/* subtransaction that set it */
} OriginEntry;

static OriginEntry origin_stack[ORIGIN_STACK_DEPTH];
static int	origin_depth = 0;
static ConnectorOrigin no_origin = {false, "direct", NULL, NULL, InvalidOid, 0};
static uint64 origin_generation = 0;

PG_FUNCTION_INFO_V1(connector_origin_begin);
PG_FUNCTION_INFO_V1(connector_origin_end);

/* Free one entry's strings. */
static void
OriginEntryFree(OriginEntry *e)
{
	if (e->origin.operation)
		pfree(e->origin.operation);
	if (e->origin.request_id)
		pfree(e->origin.request_id);
	memset(e, 0, sizeof(*e));
}

/* Drop every mark at transaction end, committed or not. */
static void
OriginXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			while (origin_depth > 0)
				OriginEntryFree(&origin_stack[--origin_depth]);
			break;
		default:
			break;
	}
}

/*
 * A subtransaction that aborts drops the marks it set; one that commits
 * hands them to its parent.
 */
static void
OriginSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	int			i;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		while (origin_depth > 0 &&
			   origin_stack[origin_depth - 1].subid >= mySubid)
			OriginEntryFree(&origin_stack[--origin_depth]);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = 0; i < origin_depth; i++)
			if (origin_stack[i].subid == mySubid)
				origin_stack[i].subid = parentSubid;
	}
}

/* Register the transaction callbacks; called once per backend. */
void
ConnectorOriginInit(void)
{
	RegisterXactCallback(OriginXactCallback, NULL);
	RegisterSubXactCallback(OriginSubXactCallback, NULL);
}

/* The innermost active mark, or a "direct" origin when there is none. */
const ConnectorOrigin *
ConnectorCurrentOrigin(void)
{
	if (origin_depth == 0)
		return &no_origin;
	return &origin_stack[origin_depth - 1].origin;
}

/*
 * connector._origin_begin(via text, operation text, request_id text)
 *
 * Marks the changes that follow, until _origin_end(), as made by the platform
 * API (or reconciliation, expiry, offboarding).
 */
Datum
connector_origin_begin(PG_FUNCTION_ARGS)
{
	OriginEntry *e;
	char	   *via;

	/* EXECUTE is revoked from PUBLIC; this guards against a careless GRANT. */
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _origin_begin"),
				 errdetail("Only the connector API may mark the origin of a change.")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		elog(ERROR, "_origin_begin: via and operation are required");
	if (origin_depth >= ORIGIN_STACK_DEPTH)
		elog(ERROR, "_origin_begin: nested too deeply");

	via = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(via, "platform") != 0 && strcmp(via, "reconcile") != 0 &&
		strcmp(via, "expiry") != 0 && strcmp(via, "offboard") != 0)
		elog(ERROR, "_origin_begin: unknown origin \"%s\"", via);

	e = &origin_stack[origin_depth];
	memset(e, 0, sizeof(*e));
	e->origin.active = true;
	strlcpy(e->origin.via, via, sizeof(e->origin.via));
	e->origin.operation = MemoryContextStrdup(TopMemoryContext,
											  text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (!PG_ARGISNULL(2))
		e->origin.request_id = MemoryContextStrdup(TopMemoryContext,
												   text_to_cstring(PG_GETARG_TEXT_PP(2)));
	/* The SECURITY DEFINER API runs as its owner; the caller is the outer role. */
	e->origin.caller = GetOuterUserId();
	e->origin.generation = ++origin_generation;
	e->subid = GetCurrentSubTransactionId();
	origin_depth++;
	PG_RETURN_VOID();
}

/* connector._origin_end(): drop the innermost mark. */
Datum
connector_origin_end(PG_FUNCTION_ARGS)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _origin_end")));
	if (origin_depth > 0)
		OriginEntryFree(&origin_stack[--origin_depth]);
	PG_RETURN_VOID();
}
