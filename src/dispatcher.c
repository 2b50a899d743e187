/*-------------------------------------------------------------------------
 *
 * dispatcher.c
 *	  The dispatcher: a launcher and one worker per database that pushes
 *	  captured events to webhook endpoints.
 *
 * The launcher (a static background worker, started from
 * shared_preload_libraries once recovery has finished, so a standby stays
 * idle until promoted) starts a worker for every database that
 * connector.databases names.  A worker exits at once where the extension is
 * not installed; the launcher tries again later, or at once when a backend
 * commits CREATE EXTENSION connector.
 *
 * A worker loops: one short transaction records the outcomes of finished
 * requests, seals new events, runs retention and picks the next messages;
 * then HTTP runs with no transaction open.  Commits that wrote events set
 * the worker's latch; connector.naptime is the safety net.
 *
 * Shared memory holds only plain values (database OIDs, pids, proc numbers),
 * never a pointer: a latch is reached through ProcGlobal by proc number.
 *
 * IDENTIFICATION
 *	  src/dispatcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <signal.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "connector.h"

/* Rounds woken by commits are at least this far apart, so a busy
 * application's commits are sealed and sent together. */
#define MIN_ROUND_INTERVAL_MS 5

/* Messages picked per endpoint per round. */
#define PREFETCH_PER_ENDPOINT 100

/* A database that has no extension is looked at again after this long. */
#define NO_EXTENSION_RECHECK_MS 30000

/* After DROP DATABASE, the launcher leaves that database alone this long. */
#define DROPDB_PAUSE_MS 30000

typedef struct DispatcherSlot
{
	Oid			dboid;			/* InvalidOid: free */
	pid_t		pid;			/* worker's pid, 0 when not running */
	int			procno;			/* worker's pgprocno, for its latch */
	bool		no_extension;	/* worker left: extension not installed */
	bool		idle;			/* no active endpoint: commits need not wake it */
	TimestampTz paused_until;	/* do not start before (DROP DATABASE) */
	TimestampTz retry_at;		/* launcher: earliest restart */
} DispatcherSlot;

typedef struct DispatcherShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	int			launcher_procno;
	bool		extension_created;	/* CREATE EXTENSION committed somewhere */
	pg_atomic_uint64 names_generation;	/* see LookupName in capture.c */
	int			nslots;
	DispatcherSlot slots[FLEXIBLE_ARRAY_MEMBER];
} DispatcherShared;

static DispatcherShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* Backend state: did this transaction write events / create the extension? */
static bool wake_worker_at_commit = false;
static bool wake_launcher_at_commit = false;

static Size
SharedSize(void)
{
	return add_size(offsetof(DispatcherShared, slots),
					mul_size(max_worker_processes, sizeof(DispatcherSlot)));
}

static void
DispatcherShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(SharedSize());
	RequestNamedLWLockTranche("connector", 1);
}

static void
DispatcherShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("connector dispatcher", SharedSize(), &found);
	if (!found)
	{
		memset(shared, 0, SharedSize());
		shared->lock = &(GetNamedLWLockTranche("connector"))->lock;
		shared->nslots = max_worker_processes;
		pg_atomic_init_u64(&shared->names_generation, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * The capture trigger's name cache is shared-invalidated through this
 * counter: false when there is no shared memory (not preloaded).  The read
 * comes before the look-ups it covers.
 */
bool
ConnectorNamesGeneration(uint64 *gen)
{
	if (shared == NULL)
		return false;
	*gen = pg_atomic_read_u64(&shared->names_generation);
	pg_memory_barrier();
	return true;
}

/* A captured change may alter or remove names: caches everywhere drop them. */
void
ConnectorNamesChanged(void)
{
	if (shared != NULL)
		pg_atomic_fetch_add_u64(&shared->names_generation, 1);
}

/* Set the latch of the process with this proc number, if it is still alive. */
static void
WakeProc(pid_t pid, int procno)
{
	if (pid != 0 && procno >= 0 && procno < (int) ProcGlobal->allProcCount &&
		ProcGlobal->allProcs[procno].pid == pid)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/* At commit, wake the worker of this database and/or the launcher. */
static void
DispatcherXactCallback(XactEvent event, void *arg)
{
	int			i;

	if (event == XACT_EVENT_COMMIT && shared != NULL &&
		(wake_worker_at_commit || wake_launcher_at_commit))
	{
		LWLockAcquire(shared->lock, wake_launcher_at_commit ? LW_EXCLUSIVE : LW_SHARED);
		if (wake_worker_at_commit)
		{
			for (i = 0; i < shared->nslots; i++)
				if (shared->slots[i].dboid == MyDatabaseId && !shared->slots[i].idle)
					WakeProc(shared->slots[i].pid, shared->slots[i].procno);
		}
		if (wake_launcher_at_commit)
		{
			shared->extension_created = true;
			WakeProc(shared->launcher_pid, shared->launcher_procno);
		}
		LWLockRelease(shared->lock);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_worker_at_commit = wake_launcher_at_commit = false;
}

/* Called by capture for every event written: the worker wakes at commit. */
void
ConnectorNoteEventsWritten(void)
{
	wake_worker_at_commit = true;
}

/*
 * DROP DATABASE waits a few seconds for other sessions to leave: stop our
 * worker there and keep it away for a while.  CREATE EXTENSION connector
 * wakes the launcher at commit so the new database is served at once.
 */
static void
DispatcherProcessUtility(PlannedStmt *pstmt, const char *queryString,
						 bool readOnlyTree, ProcessUtilityContext context,
						 ParamListInfo params, QueryEnvironment *queryEnv,
						 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (shared != NULL && IsA(stmt, DropdbStmt))
	{
		Oid			dboid = get_database_oid(((DropdbStmt *) stmt)->dbname, true);
		int			i;

		if (OidIsValid(dboid))
		{
			LWLockAcquire(shared->lock, LW_EXCLUSIVE);
			for (i = 0; i < shared->nslots; i++)
			{
				DispatcherSlot *s = &shared->slots[i];

				if (s->dboid != dboid)
					continue;
				s->paused_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															  DROPDB_PAUSE_MS);
				if (s->pid != 0)
					kill(s->pid, SIGTERM);
			}
			LWLockRelease(shared->lock);
		}
	}
	else if (IsA(stmt, CreateExtensionStmt) &&
			 strcmp(((CreateExtensionStmt *) stmt)->extname, "connector") == 0)
		wake_launcher_at_commit = true;

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/*
 * Hooks of every backend, and, when preloaded, shared memory and the
 * launcher.
 */
void
ConnectorDispatcherInit(void)
{
	BackgroundWorker worker;

	RegisterXactCallback(DispatcherXactCallback, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = DispatcherShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = DispatcherShmemStartup;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = DispatcherProcessUtility;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	strcpy(worker.bgw_library_name, "connector");
	strcpy(worker.bgw_function_name, "ConnectorLauncherMain");
	strcpy(worker.bgw_name, "connector launcher");
	strcpy(worker.bgw_type, "connector launcher");
	RegisterBackgroundWorker(&worker);
}

/* Is dbname among connector.databases? */
static bool
DatabaseSelected(const char *dbname)
{
	char	   *raw;
	List	   *names;
	ListCell   *lc;
	bool		found = false;

	if (connector_databases == NULL || strcmp(connector_databases, "*") == 0)
		return true;
	raw = pstrdup(connector_databases);
	if (!SplitIdentifierString(raw, ',', &names))
	{
		ereport(LOG,
				(errmsg("connector.databases is not a valid list: \"%s\"", connector_databases)));
		return false;
	}
	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), dbname) == 0)
			found = true;
	return found;
}

/* Databases the dispatcher should serve, as a List of OIDs. */
static List *
SelectedDatabases(void)
{
	List	   *oids = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext caller = CurrentMemoryContext;

	StartTransactionCommand();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (!db->datallowconn || db->datistemplate || db->datconnlimit == -2)
			continue;
		if (DatabaseSelected(NameStr(db->datname)))
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			oids = lappend_oid(oids, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return oids;
}

/* Start the worker of one database; NULL when no slot was free. */
static BackgroundWorkerHandle *
StartWorker(Oid dboid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strcpy(worker.bgw_library_name, "connector");
	strcpy(worker.bgw_function_name, "ConnectorWorkerMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "connector dispatcher for database %u", dboid);
	strcpy(worker.bgw_type, "connector dispatcher");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return NULL;
	return handle;
}

/* Launcher wake-up after CREATE EXTENSION: forget "no extension" backoffs. */
static void
ClearNoExtensionBackoff(void)
{
	int			i;

	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].no_extension)
		{
			shared->slots[i].no_extension = false;
			shared->slots[i].retry_at = 0;
		}
}

/*
 * The launcher: keep one worker running for every selected database.
 */
void
ConnectorLauncherMain(Datum arg)
{
	BackgroundWorkerHandle **handles;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->launcher_pid = MyProcPid;
	shared->launcher_procno = MyProc->pgprocno;
	LWLockRelease(shared->lock);

	handles = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(BackgroundWorkerHandle *) * shared->nslots);
	ereport(LOG, (errmsg("connector launcher started")));

	for (;;)
	{
		List	   *dbs;
		ListCell   *lc;
		TimestampTz now;
		int			i;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		dbs = SelectedDatabases();
		now = GetCurrentTimestamp();

		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		if (shared->extension_created)
		{
			shared->extension_created = false;
			ClearNoExtensionBackoff();
		}
		for (i = 0; i < shared->nslots; i++)
		{
			DispatcherSlot *s = &shared->slots[i];
			pid_t		pid;

			/* a worker that never got going (or died uncleanly) frees its slot */
			if (s->pid == -1 && handles[i] != NULL &&
				GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED)
				s->pid = 0;
			/* forget databases that are gone or no longer selected */

			if (OidIsValid(s->dboid) && s->pid == 0 && !list_member_oid(dbs, s->dboid))
				memset(s, 0, sizeof(*s));
		}
		foreach(lc, dbs)
		{
			Oid			dboid = lfirst_oid(lc);
			DispatcherSlot *s = NULL;
			DispatcherSlot *free_slot = NULL;

			for (i = 0; i < shared->nslots; i++)
			{
				if (shared->slots[i].dboid == dboid)
					s = &shared->slots[i];
				else if (!OidIsValid(shared->slots[i].dboid) && free_slot == NULL)
					free_slot = &shared->slots[i];
			}
			if (s == NULL)
			{
				if (free_slot == NULL)
					break;
				s = free_slot;
				memset(s, 0, sizeof(*s));
				s->dboid = dboid;
			}
			if (s->pid != 0 || now < s->paused_until || now < s->retry_at)
				continue;
			if (handles[s - shared->slots])
				pfree(handles[s - shared->slots]);
			handles[s - shared->slots] = StartWorker(dboid);
			if (handles[s - shared->slots])
			{
				/* the worker registers its pid; do not start twice meanwhile */
				s->pid = -1;
				s->retry_at = TimestampTzPlusMilliseconds(now, Max(connector_naptime_ms, 5000));
			}
		}
		LWLockRelease(shared->lock);
		list_free(dbs);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(connector_naptime_ms, 1000), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* Worker exit: free the slot's pid and tell the launcher when to retry. */
static void
WorkerShmemExit(int code, Datum arg)
{
	int			i;
	bool		no_extension = DatumGetBool(arg);

	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].dboid == MyDatabaseId && shared->slots[i].pid == MyProcPid)
		{
			shared->slots[i].pid = 0;
			shared->slots[i].retry_at =
				TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											no_extension ? NO_EXTENSION_RECHECK_MS : 1000);
			shared->slots[i].no_extension = no_extension;
		}
	LWLockRelease(shared->lock);
	WakeProc(shared->launcher_pid, shared->launcher_procno);
}

/* ---- the worker ---- */

/* One message to deliver. */
typedef struct Message
{
	int			endpoint_id;
	bool		ordered;
	bool		is_set;			/* a SET (RFC 8935); first_position is its seq */
	int64		first_position;
	char	   *message_id;
	char	   *body;
	List	   *keys;			/* of bytea * */
	HttpRequest req;
} Message;

/* What a worker knows about an endpoint between rounds. */
typedef struct EndpointRun
{
	int			endpoint_id;
	List	   *queue;			/* Messages not yet sent, in order */
	int			in_flight;
	int64		hand_last;		/* first_position of the last message in hand */
	bool		ordered;		/* as its messages say */
} EndpointRun;

/* A finished request whose outcome is not yet recorded. */
typedef struct Outcome
{
	int			endpoint_id;
	int64		first_position;
	int			status;
	char	   *error;
	long		retry_after_ms;
	bool		done;			/* recorded (or given up) in the current round */
} Outcome;

/*
 * Successful answers are recorded in groups: a round per message would cost
 * more than the HTTP round trip.  A failure is recorded at once (its retry
 * time decides when the message is picked again).
 */
#define OUTCOMES_PER_ROUND 64
#define OUTCOMES_MAX_WAIT_MS 20

/*
 * Lock waits.  The worker's own transactions (sealing, answers, messages,
 * retention) lock connector tables only, which other sealers and admin calls
 * hold for milliseconds: a lock held longer is tried again next round, not
 * waited for.  Expiry writes to application tables, which their owners may
 * lock or slow down with triggers: it waits as briefly for a lock, runs at
 * most EXPIRY_TIMEOUT_MS, and a failure puts off that application alone,
 * with backoff (connector.dispatch_error).
 */
#define WORKER_LOCK_TIMEOUT "200ms"
#define EXPIRY_LOCK_TIMEOUT "200ms"
#define EXPIRY_TIMEOUT_MS 30000

static MemoryContext worker_cxt = NULL;
static MemoryContext step_cxt = NULL;	/* errors and lists of one round */
static List *endpoint_runs = NIL;	/* of EndpointRun * */
static List *outcomes = NIL;	/* of Outcome * */
static int	outcomes_kept = 0;	/* outcomes a locked endpoint held back */
static bool outcome_failed = false; /* a failure among the outcomes */
static bool extension_gone = false; /* the extension was dropped: leave */
static bool endpoints_failing = true;	/* an endpoint has a dispatch_error */

static EndpointRun *
FindRun(int endpoint_id, bool create)
{
	ListCell   *lc;
	EndpointRun *run;
	MemoryContext old;

	foreach(lc, endpoint_runs)
	{
		run = lfirst(lc);
		if (run->endpoint_id == endpoint_id)
			return run;
	}
	if (!create)
		return NULL;
	old = MemoryContextSwitchTo(worker_cxt);
	run = palloc0(sizeof(EndpointRun));
	run->endpoint_id = endpoint_id;
	endpoint_runs = lappend(endpoint_runs, run);
	MemoryContextSwitchTo(old);
	return run;
}

static void
FreeMessage(Message *m)
{
	ListCell   *lc;

	HttpFreeHeaders(m->req.headers);
	foreach(lc, m->keys)
		pfree(lfirst(lc));
	list_free(m->keys);
	pfree(m->message_id);
	pfree(m->body);
	pfree(m->req.url);
	pfree(m);
}

static void
FreeMessages(List *messages)
{
	ListCell   *lc;

	foreach(lc, messages)
		FreeMessage(lfirst(lc));
	list_free(messages);
}

/* Execute one statement of the worker's protocol, with parameters. */
static void
WorkerExec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
		   bool read_only)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);

	if (ret < 0)
		elog(ERROR, "connector dispatcher: \"%s\" failed: %s", sql, SPI_result_code_string(ret));
}

/*
 * Start one of the worker's transactions: SPI, a snapshot and a lock
 * timeout that ends with it.
 */
static void
BeginStep(const char *activity, const char *lock_timeout)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "connector dispatcher: SPI_connect failed");
	(void) set_config_option("lock_timeout", lock_timeout, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	pgstat_report_activity(STATE_RUNNING, activity);
}

/* Commit the step's transaction. */
static void
EndStep(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * In the PG_CATCH of a step: roll its transaction back and return the
 * error, copied into step_cxt, which outlives the transaction.
 */
static ErrorData *
AbortStep(void)
{
	ErrorData  *edata;

	disable_timeout(STATEMENT_TIMEOUT, false);
	MemoryContextSwitchTo(step_cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	/* where a committed step leaves the worker */
	MemoryContextSwitchTo(TopMemoryContext);
	pgstat_report_activity(STATE_IDLE, NULL);
	return edata;
}

/*
 * After a failed step: did it fail because the extension was dropped?  Then
 * the worker leaves quietly at the end of the round.
 */
static bool
ExtensionGone(void)
{
	StartTransactionCommand();
	if (!OidIsValid(get_extension_oid("connector", true)))
		extension_gone = true;
	CommitTransactionCommand();
	return extension_gone;
}

/*
 * Log a failed step (called outside any transaction), unless the extension
 * is gone.  A lock that another transaction holds is tried again next
 * round: LOG, at most once a minute; anything else WARNING.
 */
static void
ReportStepError(ErrorData *edata, const char *what)
{
	static TimestampTz last_lock_report = 0;

	if (ExtensionGone())
		return;
	/* a long-held lock would otherwise be reported every round */
	if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
	{
		if (!TimestampDifferenceExceeds(last_lock_report, GetCurrentTimestamp(), 60000))
			return;
		last_lock_report = GetCurrentTimestamp();
	}
	ereport(edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ? LOG : WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("connector dispatcher could not %s: %s", what, edata->message),
			 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
			 errhint("It is tried again in the next round; other work goes on.")));
}

/*
 * Run fn in a subtransaction of the current step.  An error rolls back what
 * fn did and is returned (copied into step_cxt), so the step goes on with
 * the next endpoint.
 */
static ErrorData *
InSubtransaction(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(step_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}

/* 2xx answers of one endpoint not recorded yet (of Outcome *). */
typedef struct DeliveredGroup
{
	int			endpoint_id;
	List	   *outcomes;
} DeliveredGroup;

/*
 * Record a group of 2xx answers of one endpoint in one call
 * (_dispatch_delivered), marking them done unless the endpoint is locked.
 */
static void
RecordDelivered(DeliveredGroup *g)
{
	Oid			types[3] = {INT4OID, INT8ARRAYOID, INT4OID};
	Datum		values[3];
	Datum	   *firsts;
	ListCell   *lc;
	int			n = 0;
	bool		isnull;
	bool		done;

	if (g->outcomes == NIL)
		return;
	firsts = palloc(sizeof(Datum) * list_length(g->outcomes));
	foreach(lc, g->outcomes)
		firsts[n++] = Int64GetDatum(((Outcome *) lfirst(lc))->first_position);
	values[0] = Int32GetDatum(g->endpoint_id);
	values[1] = PointerGetDatum(construct_array(firsts, n, INT8OID, sizeof(int64),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = Int32GetDatum(((Outcome *) llast(g->outcomes))->status);
	WorkerExec("SELECT connector._dispatch_delivered($1, $2, $3)", 3, types, values, NULL, false);
	done = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	foreach(lc, g->outcomes)
		((Outcome *) lfirst(lc))->done = done;
	list_free(g->outcomes);
	g->outcomes = NIL;
	pfree(firsts);
}

/*
 * Record the outcomes of a list (of Outcome *) that are not done yet,
 * marking them done; one whose endpoint another transaction holds stays
 * for a later round.  The 2xx answers of an endpoint are recorded together,
 * before any later failure of that endpoint, so the endpoint ends as if
 * each had been recorded in turn.
 */
static void
RecordList(void *arg)
{
	ListCell   *lc;
	List	   *groups = NIL;

	foreach(lc, (List *) arg)
	{
		Outcome    *o = lfirst(lc);
		Oid			types[5] = {INT4OID, INT8OID, INT4OID, TEXTOID, INT8OID};
		Datum		values[5] = {0};
		char		nulls[5] = "     ";
		bool		isnull;
		DeliveredGroup *g = NULL;
		ListCell   *gc;

		if (o->done)
			continue;
		foreach(gc, groups)
			if (((DeliveredGroup *) lfirst(gc))->endpoint_id == o->endpoint_id)
				g = lfirst(gc);
		if (o->status >= 200 && o->status <= 299)
		{
			if (g == NULL)
			{
				g = palloc0(sizeof(DeliveredGroup));
				g->endpoint_id = o->endpoint_id;
				groups = lappend(groups, g);
			}
			g->outcomes = lappend(g->outcomes, o);
			continue;
		}
		if (g != NULL)
			RecordDelivered(g);
		values[0] = Int32GetDatum(o->endpoint_id);
		values[1] = Int64GetDatum(o->first_position);
		values[2] = Int32GetDatum(o->status);
		if (o->error)
			values[3] = CStringGetTextDatum(o->error);
		else
			nulls[3] = 'n';
		values[4] = Int64GetDatum((int64) o->retry_after_ms);
		WorkerExec("SELECT connector._dispatch_result($1, $2, $3, $4, $5)",
				   5, types, values, nulls, false);
		o->done = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											 1, &isnull));
	}
	foreach(lc, groups)
		RecordDelivered(lfirst(lc));
	list_free_deep(groups);
}

/*
 * Record the outcomes of finished requests (caller is in a step).  All in
 * one subtransaction; if that fails, one by one, and an outcome that cannot
 * be recorded is given up: its message stays pending and is sent again.
 */
static void
RecordOutcomes(void)
{
	ListCell   *lc;
	ErrorData  *edata;

	if (outcomes == NIL || InSubtransaction(RecordList, outcomes) == NULL)
		return;
	foreach(lc, outcomes)
		((Outcome *) lfirst(lc))->done = false;
	foreach(lc, outcomes)
	{
		Outcome    *o = lfirst(lc);
		List	   *one = list_make1(o);

		edata = InSubtransaction(RecordList, one);
		list_free(one);
		if (edata == NULL)
			continue;
		o->done = true;
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("connector dispatcher could not record the answer to message %lld of endpoint %d: %s",
						(long long) o->first_position, o->endpoint_id, edata->message),
				 errdetail("The message stays pending and is sent again.")));
	}
}

/* After the step that recorded them committed: forget the recorded outcomes. */
static void
ForgetRecordedOutcomes(void)
{
	ListCell   *lc;

	foreach(lc, outcomes)
	{
		Outcome    *o = lfirst(lc);

		if (!o->done)
			continue;
		if (o->error)
			pfree(o->error);
		pfree(o);
		outcomes = foreach_delete_current(outcomes, lc);
	}
	outcomes_kept = list_length(outcomes);
	if (outcomes == NIL)
		outcome_failed = false;
}

/* What PickMessages picks for: every endpoint, or one. */
typedef struct PickArg
{
	ArrayType  *busy;			/* endpoints with enough messages in hand */
	ArrayType  *hand;			/* endpoints with a few messages in hand */
	ArrayType  *hand_last;		/* and the first position of the last of them */
	int			only;			/* 0: every endpoint without a failure */
	List	   *messages;		/* out: Message *, in worker_cxt */
} PickArg;

/* Pick the next messages (_dispatch_next) into a->messages. */
static void
PickMessages(void *arg)
{
	PickArg    *a = arg;
	Oid			types[5] = {INT4ARRAYOID, INT4OID, INT4OID, INT4ARRAYOID, INT8ARRAYOID};
	Datum		values[5] = {0};
	char		nulls[5] = "     ";
	uint64		i;

	values[0] = PointerGetDatum(a->busy);
	values[1] = Int32GetDatum(PREFETCH_PER_ENDPOINT);
	values[2] = Int32GetDatum(a->only);
	if (a->only == 0)
		nulls[2] = 'n';
	values[3] = PointerGetDatum(a->hand);
	values[4] = PointerGetDatum(a->hand_last);
	WorkerExec("SELECT endpoint_id, ordered, url, headers::text, timeout_ms, message_id,"
			   " first_position, body, keys, is_set"
			   " FROM connector._dispatch_next($1, $2, $3, $4, $5)",
			   5, types, values, nulls, false);

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(worker_cxt);
		Message    *m = palloc0(sizeof(Message));
		char	   *headers;
		Datum		keys;

		m->endpoint_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		m->ordered = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		m->req.url = SPI_getvalue(tup, desc, 3);
		headers = SPI_getvalue(tup, desc, 4);
		m->req.timeout_ms = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		if (isnull)
			m->req.timeout_ms = connector_http_timeout_ms;
		m->message_id = SPI_getvalue(tup, desc, 6);
		m->first_position = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
		m->is_set = DatumGetBool(SPI_getbinval(tup, desc, 10, &isnull)) && !isnull;
		/* a receiver's RFC 8935 error is recorded in status */
		m->req.keep_body = m->is_set;
		m->body = SPI_getvalue(tup, desc, 8);
		/* pending ranges always hold events; should one not, no crash */
		if (m->body == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("message %s of endpoint %d has no event left to send",
							m->message_id, m->endpoint_id)));
		m->req.bodylen = strlen(m->body);
		m->req.body = m->body;
		keys = SPI_getbinval(tup, desc, 9, &isnull);
		if (!isnull)
		{
			ArrayType  *karr = DatumGetArrayTypeP(keys);
			Datum	   *kd;
			bool	   *kn;
			int			nk;
			int			k;

			deconstruct_array(karr, BYTEAOID, -1, false, TYPALIGN_INT, &kd, &kn, &nk);
			for (k = 0; k < nk; k++)
				if (!kn[k])
					m->keys = lappend(m->keys, DatumGetByteaPCopy(kd[k]));
			/* in worker_cxt, which lives as long as the worker: freed now */
			pfree(kd);
			pfree(kn);
			if ((Pointer) karr != DatumGetPointer(keys))
				pfree(karr);
		}
		/* signatures are made when the request starts: the timestamp is per attempt */
		m->req.headers = WebhookExtraHeaders(NULL, headers);
		if (headers)
			pfree(headers);
		m->req.owner = m;
		a->messages = lappend(a->messages, m);
		MemoryContextSwitchTo(old);
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Pick the messages of one endpoint on its own: after the shared pick
 * failed, or when a failure of the endpoint is due for another try.  A
 * failure is recorded in connector.dispatch_error (status shows it) and
 * puts the endpoint off with backoff; the others are served meanwhile.
 */
static List *
PickForEndpoint(PickArg *all, int id, const char *app, const char *name, bool failing)
{
	PickArg		one = {all->busy, all->hand, all->hand_last, id, NIL};
	TimestampTz start = GetCurrentTimestamp();
	ErrorData  *edata = InSubtransaction(PickMessages, &one);
	Oid			types[5] = {TEXTOID, INT4OID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[5] = {0};
	char		nulls[5] = "n    ";
	bool		isnull;

	if (edata == NULL)
	{
		values[0] = Int32GetDatum(id);
		if (failing)
		{
			WorkerExec("SELECT connector._dispatch_recovered($1)", 1, &types[1], values, NULL, false);
			if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
				ereport(LOG,
						(errmsg("connector dispatcher builds the messages of endpoint \"%s\" of application \"%s\" again",
								name, app)));
		}
		return one.messages;
	}
	FreeMessages(one.messages);
	if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
		return NIL;				/* no failure of the endpoint: next round */
	values[1] = Int32GetDatum(id);
	values[2] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	values[3] = CStringGetTextDatum(edata->message);
	values[4] = Int64GetDatum((GetCurrentTimestamp() - start) / 1000);
	WorkerExec("SELECT failures, retry_at FROM connector._dispatch_failed($1, $2, $3, $4, $5)",
			   5, types, values, nulls, false);
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("connector dispatcher cannot build the messages of endpoint \"%s\" of application \"%s\": %s",
					name, app, edata->message),
			 errdetail("Failure %d in a row; the next try is at %s.  Other endpoints are served meanwhile.",
					   DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
					   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
			 errhint("connector.status shows the error in dispatch_error until the messages can be built.")));
	return NIL;
}

/*
 * Pick messages endpoint by endpoint (_dispatch_endpoints): those without a
 * failure, or those whose failure is due for another try.
 */
static List *
PickOneByOne(PickArg *all, bool failing)
{
	Oid			types[2] = {INT4ARRAYOID, BOOLOID};
	Datum		values[2] = {0};
	SPITupleTable *tt;
	uint64		n;
	uint64		i;
	List	   *picked = NIL;

	values[0] = PointerGetDatum(all->busy);
	values[1] = BoolGetDatum(failing);
	WorkerExec("SELECT endpoint_id, app, name FROM connector._dispatch_endpoints($1, $2)",
			   2, types, values, NULL, false);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		int			id = DatumGetInt32(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		char	   *app = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
		char	   *name = SPI_getvalue(tt->vals[i], tt->tupdesc, 3);
		List	   *some = PickForEndpoint(all, id, app, name, failing);
		MemoryContext old = MemoryContextSwitchTo(worker_cxt);

		picked = list_concat(picked, some);
		list_free(some);
		MemoryContextSwitchTo(old);
	}
	SPI_freetuptable(tt);
	return picked;
}

/*
 * The messages for idle endpoints (caller is in a step), as a list in
 * worker_cxt; queued by the caller once the step has committed.  One pick
 * for every endpoint in a subtransaction; should it fail, endpoint by
 * endpoint, so one endpoint whose messages cannot be built stops only
 * itself.
 */
static List *
LoadMessages(void)
{
	ListCell   *lc;
	List	   *busy = NIL;
	ArrayType  *arr;
	Datum	   *elems;
	Datum	   *hand;
	Datum	   *hand_last;
	int			n = 0;
	int			nhand = 0;
	PickArg		all = {NULL, NULL, NULL, 0, NIL};
	ErrorData  *edata;
	List	   *picked;
	List	   *retried;
	MemoryContext old;

	/*
	 * Endpoints with messages in hand are left out while they have enough;
	 * an ordered one whose queue runs short gets the messages after those in
	 * hand, so the next ones are ready before the last is answered (the round
	 * then overlaps HTTP instead of stopping it).  All others are candidates.
	 */
	elems = palloc(sizeof(Datum) * (list_length(endpoint_runs) + 1));
	hand = palloc(sizeof(Datum) * (list_length(endpoint_runs) + 1));
	hand_last = palloc(sizeof(Datum) * (list_length(endpoint_runs) + 1));
	foreach(lc, endpoint_runs)
	{
		EndpointRun *run = lfirst(lc);

		if (run->in_flight == 0 && run->queue == NIL)
			continue;
		/*
		 * Only an ordered endpoint holds the head of its pending messages:
		 * an unordered one may have an earlier message waiting for its
		 * retry, which picking after those in hand would put off for as
		 * long as new ones keep coming.
		 */
		if (!run->ordered || list_length(run->queue) >= PREFETCH_PER_ENDPOINT / 2)
		{
			busy = lappend_int(busy, run->endpoint_id);
			elems[n++] = Int32GetDatum(run->endpoint_id);
		}
		else
		{
			hand[nhand] = Int32GetDatum(run->endpoint_id);
			hand_last[nhand++] = Int64GetDatum(run->hand_last);
		}
	}
	arr = construct_array(elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT);
	all.busy = arr;
	all.hand = construct_array(hand, nhand, INT4OID, sizeof(int32), true, TYPALIGN_INT);
	all.hand_last = construct_array(hand_last, nhand, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
									TYPALIGN_DOUBLE);

	edata = InSubtransaction(PickMessages, &all);
	if (edata == NULL)
		picked = all.messages;
	else if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
	{
		/* a lock held elsewhere (VACUUM FULL, DROP EXTENSION): next round */
		FreeMessages(all.messages);
		ereport(LOG,
				(errcode(edata->sqlerrcode),
				 errmsg("connector dispatcher could not pick messages: %s", edata->message),
				 errhint("It is tried again in the next round.")));
		return NIL;
	}
	else
	{
		FreeMessages(all.messages);
		picked = PickOneByOne(&all, false);
	}
	/* a failure recorded just now is not due yet: the flag of the seal will do */
	retried = endpoints_failing ? PickOneByOne(&all, true) : NIL;
	old = MemoryContextSwitchTo(worker_cxt);
	picked = list_concat(picked, retried);
	MemoryContextSwitchTo(old);
	list_free(retried);
	return picked;
}

/* Queue picked messages (of a committed step) on their endpoints. */
static void
QueueMessages(List *messages)
{
	ListCell   *lc;
	MemoryContext old = MemoryContextSwitchTo(worker_cxt);

	foreach(lc, messages)
	{
		Message    *m = lfirst(lc);
		EndpointRun *run = FindRun(m->endpoint_id, true);

		run->ordered = m->ordered;
		if (run->queue == NIL && run->in_flight == 0)
			run->hand_last = m->first_position;
		else
			run->hand_last = Max(run->hand_last, m->first_position);
		run->queue = lappend(run->queue, m);
	}
	list_free(messages);
	MemoryContextSwitchTo(old);
}

/* Add the protocol headers, signed for this attempt, and start the request. */
static void
StartMessage(Message *m)
{
	StringInfoData sig;
	ListCell   *lc;
	int64		ts = (int64) time(NULL);
	char		tsbuf[32];

	/*
	 * RFC 8935: the compact JWS as the body, signed when it was rendered;
	 * the endpoint's headers (the receiver's Authorization) were added when
	 * it was picked.
	 */
	if (m->is_set)
	{
		m->req.headers = HttpAddHeader(m->req.headers, "content-type", "application/secevent+jwt");
		m->req.headers = HttpAddHeader(m->req.headers, "accept", "application/json");
		m->req.headers = HttpAddHeader(m->req.headers, "expect", "");
		HttpStart(&m->req);
		return;
	}
	initStringInfo(&sig);
	foreach(lc, m->keys)
	{
		bytea	   *key = lfirst(lc);

		if (sig.len > 0)
			appendStringInfoChar(&sig, ' ');
		ConnectorAppendSignature(&sig, m->message_id, ts, m->body, m->req.bodylen,
								 (unsigned char *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
	}
	snprintf(tsbuf, sizeof(tsbuf), INT64_FORMAT, ts);
	m->req.headers = HttpAddHeader(m->req.headers, "content-type", "application/json");
	m->req.headers = HttpAddHeader(m->req.headers, "webhook-id", m->message_id);
	m->req.headers = HttpAddHeader(m->req.headers, "webhook-timestamp", tsbuf);
	m->req.headers = HttpAddHeader(m->req.headers, "webhook-signature", sig.data);
	m->req.headers = HttpAddHeader(m->req.headers, "expect", "");
	pfree(sig.data);
	HttpStart(&m->req);
}

/* Start what may start: the head of each ordered queue, any unordered message. */
static void
StartRequests(void)
{
	ListCell   *lc;

	foreach(lc, endpoint_runs)
	{
		EndpointRun *run = lfirst(lc);

		while (run->queue != NIL && HttpInFlight() < connector_max_in_flight)
		{
			Message    *m = linitial(run->queue);

			if (m->ordered && run->in_flight > 0)
				break;
			run->queue = list_delete_first(run->queue);
			run->in_flight++;
			StartMessage(m);
		}
	}
}

/* Turn finished requests into outcomes; a failure stops its ordered queue. */
static void
CollectFinished(List *done)
{
	ListCell   *lc;

	foreach(lc, done)
	{
		HttpRequest *req = lfirst(lc);
		Message    *m = req->owner;
		EndpointRun *run = FindRun(m->endpoint_id, true);
		MemoryContext old = MemoryContextSwitchTo(worker_cxt);
		Outcome    *o = palloc0(sizeof(Outcome));

		o->endpoint_id = m->endpoint_id;
		o->first_position = m->first_position;
		o->status = (int) req->status;
		o->error = req->error[0] ? pstrdup(req->error) : NULL;
		if (m->is_set && req->status >= 300 && req->body_head_len > 0)
			o->error = SetErrorText(req->body_head, req->body_head_len);
		o->retry_after_ms = req->retry_after_ms;
		outcomes = lappend(outcomes, o);
		MemoryContextSwitchTo(old);

		run->in_flight--;
		if (req->status < 200 || req->status > 299)
			outcome_failed = true;
		if (m->ordered && (req->status < 200 || req->status > 299))
		{
			/* the rest waits for the retry; it stays pending in the table */
			ListCell   *qc;

			foreach(qc, run->queue)
				FreeMessage(lfirst(qc));
			list_free(run->queue);
			run->queue = NIL;
		}
		FreeMessage(m);
	}
	list_free(done);
}

/* Tell backends whether commits need to wake this worker. */
static void
SetIdle(bool idle)
{
	int			i;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].dboid == MyDatabaseId && shared->slots[i].pid == MyProcPid)
			shared->slots[i].idle = idle;
	LWLockRelease(shared->lock);
}

/*
 * Seal in a short transaction of its own, so the seal_state lock is held
 * for the sealing alone.  Returns whether an endpoint is active (true when
 * sealing failed: then nobody knows).
 */
static bool
SealStep(void)
{
	volatile bool active = true;
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		BeginStep("connector dispatcher round: sealing", WORKER_LOCK_TIMEOUT);
		if (!OidIsValid(get_extension_oid("connector", true)))
			extension_gone = true;
		else
		{
			bool		isnull;

			WorkerExec("SELECT active, failing FROM connector._dispatch_seal()",
					   0, NULL, NULL, NULL, false);
			active = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
												1, &isnull));
			endpoints_failing = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 2, &isnull));
		}
		EndStep();
	}
	PG_CATCH();
	{
		edata = AbortStep();
	}
	PG_END_TRY();
	if (edata != NULL)
	{
		ReportStepError(edata, "seal events");
		return true;
	}
	if (!extension_gone)
		SetIdle(!active);
	return active;
}

/*
 * Record the answers received and pick the next messages, in one short
 * transaction.  The messages are queued, and the recorded answers
 * forgotten, only once it has committed.
 */
static void
MessagesStep(bool load)
{
	List	   *volatile picked = NIL;
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		BeginStep("connector dispatcher round: messages", WORKER_LOCK_TIMEOUT);
		RecordOutcomes();
		if (load)
			picked = LoadMessages();
		EndStep();
	}
	PG_CATCH();
	{
		edata = AbortStep();
	}
	PG_END_TRY();
	if (edata == NULL)
	{
		ForgetRecordedOutcomes();
		QueueMessages(picked);
		return;
	}
	/* nothing of it happened: the answers are recorded next round */
	FreeMessages(picked);
	{
		ListCell   *lc;

		foreach(lc, outcomes)
			((Outcome *) lfirst(lc))->done = false;
	}
	ReportStepError(edata, "record answers and pick messages");
}

/*
 * One round: seal, then record answers and pick messages, each in a short
 * transaction of its own.
 */
static void
WorkerRound(void)
{
	bool		active;

	MemoryContextReset(step_cxt);
	active = SealStep();
	if (extension_gone)
		return;
	if (active || outcomes != NIL)
		MessagesStep(active);
}

/*
 * Expire the grants of one application, in a transaction of its own with a
 * short lock timeout and a statement timeout: its owner may have locked a
 * table or slowed it down with a trigger, and that must hold up neither
 * sealing nor the other applications.  A failure puts the application off
 * with backoff (connector.dispatch_error; status shows it as app_error).
 */
static void
ExpireApp(const char *app)
{
	ErrorData  *volatile edata = NULL;
	volatile bool recovered = false;
	TimestampTz start = GetCurrentTimestamp();
	Oid			types[5] = {TEXTOID, INT4OID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[5] = {0};
	char		nulls[5] = " n   ";

	values[0] = CStringGetTextDatum(app);
	PG_TRY();
	{
		bool		isnull;

		BeginStep("connector dispatcher: expiry of time-bound grants", EXPIRY_LOCK_TIMEOUT);
		enable_timeout_after(STATEMENT_TIMEOUT, EXPIRY_TIMEOUT_MS);
		WorkerExec("SELECT connector._dispatch_expire($1)", 1, types, values, NULL, false);
		recovered = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											   1, &isnull));
		disable_timeout(STATEMENT_TIMEOUT, true);
		/* a timeout that fired as the statement ended must not cancel anything later */
		if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
			QueryCancelPending = false;
		EndStep();
	}
	PG_CATCH();
	{
		edata = AbortStep();
	}
	PG_END_TRY();
	if (edata == NULL)
	{
		if (recovered)
			ereport(LOG,
					(errmsg("connector dispatcher expires the grants of application \"%s\" again", app)));
		return;
	}
	if (ExtensionGone())
		return;

	/* record the failure, in a transaction of its own */
	PG_TRY();
	{
		bool		isnull;

		BeginStep("connector dispatcher: expiry of time-bound grants", WORKER_LOCK_TIMEOUT);
		values[2] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
		values[3] = CStringGetTextDatum(edata->message);
		values[4] = Int64GetDatum((GetCurrentTimestamp() - start) / 1000);
		WorkerExec("SELECT failures, retry_at FROM connector._dispatch_failed($1, $2, $3, $4, $5)",
				   5, types, values, nulls, false);
		(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)			/* NULL: the application is gone */
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("connector dispatcher could not expire the grants of application \"%s\": %s",
							app, edata->message),
					 errdetail("Failure %s in a row; the next try is at %s.  Other applications are served meanwhile.",
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
					 errhint("connector.status shows the error in app_error; connector.expire_grants('%s') runs it by hand.",
							 app)));
		EndStep();
	}
	PG_CATCH();
	{
		ReportStepError(AbortStep(), "record a failed expiry");
	}
	PG_END_TRY();
}

/*
 * Periodic work, every connector.naptime, after the round's requests have
 * started: retention in a transaction of its own, then expiry of
 * time-bound grants, one application at a time.
 */
static void
Maintain(void)
{
	ErrorData  *volatile edata = NULL;
	List	   *volatile apps = NIL;
	ListCell   *lc;

	MemoryContextReset(step_cxt);
	PG_TRY();
	{
		uint64		i;

		BeginStep("connector dispatcher: retention", WORKER_LOCK_TIMEOUT);
		WorkerExec("SELECT connector._dispatch_maintain()", 0, NULL, NULL, NULL, false);
		WorkerExec("SELECT app FROM connector._dispatch_expiry_due()", 0, NULL, NULL, NULL, true);
		for (i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(step_cxt);

			apps = lappend(apps, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
			MemoryContextSwitchTo(old);
		}
		EndStep();
	}
	PG_CATCH();
	{
		edata = AbortStep();
	}
	PG_END_TRY();
	if (edata != NULL)
	{
		ReportStepError(edata, "remove old events (retention)");
		return;
	}
	foreach(lc, apps)
	{
		ExpireApp(lfirst(lc));
		if (extension_gone)
			return;
	}
}

/* The extension is gone: leave, and let the launcher look again later. */
static void
WorkerLeave(void)
{
	ereport(DEBUG1,
			(errmsg_internal("connector dispatcher: extension not installed in this database, exiting")));
	cancel_before_shmem_exit(WorkerShmemExit, BoolGetDatum(false));
	WorkerShmemExit(0, BoolGetDatum(true));
	proc_exit(0);
}

/*
 * The worker of one database.
 */
void
ConnectorWorkerMain(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	TimestampTz last_round = 0;
	TimestampTz last_maintain = 0;
	int			i;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].dboid == dboid)
		{
			shared->slots[i].pid = MyProcPid;
			shared->slots[i].procno = MyProc->pgprocno;
		}
	LWLockRelease(shared->lock);
	before_shmem_exit(WorkerShmemExit, BoolGetDatum(false));

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "connector dispatcher",
									   ALLOCSET_DEFAULT_SIZES);
	step_cxt = AllocSetContextCreate(TopMemoryContext, "connector dispatcher round",
									 ALLOCSET_DEFAULT_SIZES);
	HttpInit();

	for (;;)
	{
		TimestampTz now;
		bool		latch_set;
		List	   *done;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		latch_set = MyLatch->is_set;
		ResetLatch(MyLatch);

		if (RecoveryInProgress())
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 connector_naptime_ms, PG_WAIT_EXTENSION);
			continue;
		}

		now = GetCurrentTimestamp();
		if (latch_set && list_length(outcomes) == outcomes_kept &&
			!TimestampDifferenceExceeds(last_round, now, MIN_ROUND_INTERVAL_MS))
		{
			(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 MIN_ROUND_INTERVAL_MS, PG_WAIT_EXTENSION);
			now = GetCurrentTimestamp();
		}
		/* outcomes a locked endpoint held back wait for the naptime */
		if (latch_set ||
			(list_length(outcomes) > outcomes_kept &&
			 (outcome_failed || HttpInFlight() == 0 ||
			  list_length(outcomes) - outcomes_kept >= OUTCOMES_PER_ROUND ||
			  TimestampDifferenceExceeds(last_round, now, OUTCOMES_MAX_WAIT_MS))) ||
			TimestampDifferenceExceeds(last_round, now, connector_naptime_ms))
		{
			WorkerRound();
			if (extension_gone)
				WorkerLeave();
			last_round = now;
		}

		StartRequests();
		if (TimestampDifferenceExceeds(last_maintain, now, connector_naptime_ms))
		{
			Maintain();
			if (extension_gone)
				WorkerLeave();
			last_maintain = now;
		}
		if (HttpInFlight() > 0)
		{
			done = HttpWait(10);
			CollectFinished(done);
			/*
			 * The next messages go out before the outcomes are recorded: the
			 * round's transaction then overlaps the HTTP round trip instead of
			 * adding to it.  Message n+1 still waits for the answer to n.
			 */
			StartRequests();
		}
		else if (list_length(outcomes) == outcomes_kept)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 connector_naptime_ms, PG_WAIT_EXTENSION);
	}
}
