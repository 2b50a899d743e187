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
 * A mark covers the API's own statements only: the statement that
 * _owner_exec() runs for the call (owner.c), and what executes at its query
 * level, such as foreign-key cascades (the RI triggers queue their rows'
 * triggers there).  Anything the application's code runs as statements of its
 * own (its triggers, rules) is a nested query and is direct, however it was
 * set off.  Executor hooks keep track of the query whose rows are being
 * processed.
 *
 * Besides the per-call marks, a transaction may carry a client mark
 * (connector._origin_client, set by connector.scim_session for the SCIM
 * gateway): every event captured until the transaction ends names that
 * client.  It is kept the same way, in backend memory, dropped at
 * transaction end and by the abort of the subtransaction that set it.
 *
 * IDENTIFICATION
 *	  src/origin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/executor.h"
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

/* the transaction's client mark ("scim:<token name>") and its app, or NULL */
static char *origin_client = NULL;
static char *origin_client_app = NULL;
static SubTransactionId origin_client_subid = InvalidSubTransactionId;
static uint64 origin_client_generation = 0;

/* the API's statement, and the query whose rows are being processed now */
static bool platform_pending = false;
static QueryDesc *pending_parent = NULL;	/* the query running at that time */
static QueryDesc *platform_qd = NULL;
static QueryDesc *active_qd = NULL;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;

PG_FUNCTION_INFO_V1(connector_origin_begin);
PG_FUNCTION_INFO_V1(connector_origin_end);
PG_FUNCTION_INFO_V1(connector_origin_client);

/* Drop the client mark; a new generation tells renderers it is gone. */
static void
OriginClientClear(void)
{
	if (origin_client == NULL)
		return;
	pfree(origin_client);
	origin_client = NULL;
	if (origin_client_app)
		pfree(origin_client_app);
	origin_client_app = NULL;
	origin_client_subid = InvalidSubTransactionId;
	origin_client_generation++;
}

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
			OriginClientClear();
			platform_pending = false;
			platform_qd = NULL;
			active_qd = NULL;
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
		if (origin_client != NULL && origin_client_subid >= mySubid)
			OriginClientClear();
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = 0; i < origin_depth; i++)
			if (origin_stack[i].subid == mySubid)
				origin_stack[i].subid = parentSubid;
		if (origin_client != NULL && origin_client_subid == mySubid)
			origin_client_subid = parentSubid;
	}
}

/*
 * The API's statement is the data-changing statement that starts at the
 * level of the _owner_* call while it is pending (not inside another query,
 * such as a function its SELECT calls) and sets the command tag (a rule's
 * added actions do not; the original statement does).
 */
static void
OriginExecutorStart(QueryDesc *qd, int eflags)
{
	if (prev_ExecutorStart)
		prev_ExecutorStart(qd, eflags);
	else
		standard_ExecutorStart(qd, eflags);
	if (platform_pending && active_qd == pending_parent &&
		qd->operation != CMD_SELECT && qd->plannedstmt->canSetTag)
	{
		platform_qd = qd;
		platform_pending = false;
	}
}

static void
OriginExecutorRun(QueryDesc *qd, ScanDirection direction, uint64 count, bool execute_once)
{
	QueryDesc  *save = active_qd;

	active_qd = qd;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(qd, direction, count, execute_once);
		else
			standard_ExecutorRun(qd, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		active_qd = save;
	}
	PG_END_TRY();
}

/* AFTER row triggers of a statement fire here, at its query level. */
static void
OriginExecutorFinish(QueryDesc *qd)
{
	QueryDesc  *save = active_qd;

	active_qd = qd;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(qd);
		else
			standard_ExecutorFinish(qd);
	}
	PG_FINALLY();
	{
		active_qd = save;
	}
	PG_END_TRY();
}

static void
OriginExecutorEnd(QueryDesc *qd)
{
	if (qd == platform_qd)
		platform_qd = NULL;
	if (prev_ExecutorEnd)
		prev_ExecutorEnd(qd);
	else
		standard_ExecutorEnd(qd);
}

/* Register the transaction callbacks and executor hooks; once per backend. */
void
ConnectorOriginInit(void)
{
	RegisterXactCallback(OriginXactCallback, NULL);
	RegisterSubXactCallback(OriginSubXactCallback, NULL);
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = OriginExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = OriginExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = OriginExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = OriginExecutorEnd;
}

/*
 * The statement an _owner_* function is about to run is the API's own when an
 * origin mark is set: true when it is.  ConnectorOriginStatementEnd()
 * follows, whatever happens.
 */
bool
ConnectorOriginStatementBegin(void)
{
	if (origin_depth == 0)
		return false;
	platform_pending = true;
	pending_parent = active_qd;
	platform_qd = NULL;
	return true;
}

void
ConnectorOriginStatementEnd(void)
{
	platform_pending = false;
	platform_qd = NULL;
}

/*
 * The origin of a row being captured now: the innermost mark when the row
 * belongs to the API's own statement, else a "direct" origin.
 */
const ConnectorOrigin *
ConnectorCurrentOrigin(void)
{
	if (origin_depth == 0 || platform_qd == NULL || active_qd != platform_qd)
		return &no_origin;
	return &origin_stack[origin_depth - 1].origin;
}

/*
 * The client mark of the current transaction, or NULL; *generation changes
 * whenever the mark is set or dropped, so a cached rendering can tell.
 */
const char *
ConnectorOriginClient(uint64 *generation)
{
	*generation = origin_client_generation;
	return origin_client;
}

/*
 * The application whose token set the client mark, or NULL: a token is
 * valid for its one app, so whatever acts for "the token's holder" (the SSF
 * stream functions) must check this, not just the token name.
 */
const char *
ConnectorOriginClientApp(void)
{
	return origin_client ? origin_client_app : NULL;
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

/*
 * connector._origin_client(client text, app text)
 *
 * Marks the rest of the current transaction as acting for a client of the
 * platform (the SCIM gateway's "scim:<token name>") holding a token of app;
 * NULL drops the mark.
 * Only connector.scim_session() calls it, once it has checked a token.
 */
Datum
connector_origin_client(PG_FUNCTION_ARGS)
{
	char	   *client;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _origin_client"),
				 errdetail("Only the connector API may mark the client of a transaction.")));
	if (!IsTransactionState())
		elog(ERROR, "_origin_client: not in a transaction");
	OriginClientClear();
	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	client = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (client[0] == '\0' || strlen(client) > 256)
		elog(ERROR, "_origin_client: client must be 1 to 256 bytes long");
	origin_client = MemoryContextStrdup(TopMemoryContext, client);
	if (!PG_ARGISNULL(1))
		origin_client_app = MemoryContextStrdup(TopMemoryContext,
												text_to_cstring(PG_GETARG_TEXT_PP(1)));
	origin_client_subid = GetCurrentSubTransactionId();
	origin_client_generation++;
	PG_RETURN_VOID();
}
