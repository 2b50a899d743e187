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
#include "utils/memutils.h"
#include "utils/snapmgr.h"
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
} EndpointRun;

/* A finished request whose outcome is not yet recorded. */
typedef struct Outcome
{
	int			endpoint_id;
	int64		first_position;
	int			status;
	char	   *error;
	long		retry_after_ms;
} Outcome;

/*
 * Successful answers are recorded in groups: a round per message would cost
 * more than the HTTP round trip.  A failure is recorded at once (its retry
 * time decides when the message is picked again).
 */
#define OUTCOMES_PER_ROUND 64
#define OUTCOMES_MAX_WAIT_MS 20

static MemoryContext worker_cxt = NULL;
static List *endpoint_runs = NIL;	/* of EndpointRun * */
static List *outcomes = NIL;	/* of Outcome * */
static bool outcome_failed = false; /* a failure among the outcomes */

static EndpointRun *
FindRun(int endpoint_id, bool create)
{
	ListCell   *lc;
	EndpointRun *run;

	foreach(lc, endpoint_runs)
	{
		run = lfirst(lc);
		if (run->endpoint_id == endpoint_id)
			return run;
	}
	if (!create)
		return NULL;
	run = MemoryContextAllocZero(worker_cxt, sizeof(EndpointRun));
	run->endpoint_id = endpoint_id;
	endpoint_runs = lappend(endpoint_runs, run);
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

/* Execute one statement of the worker's protocol, with parameters. */
static void
WorkerExec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
		   bool read_only)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);

	if (ret < 0)
		elog(ERROR, "connector dispatcher: \"%s\" failed: %s", sql, SPI_result_code_string(ret));
}

/* Record the outcomes of finished requests (caller is in a transaction). */
static void
RecordOutcomes(void)
{
	ListCell   *lc;

	foreach(lc, outcomes)
	{
		Outcome    *o = lfirst(lc);
		Oid			types[5] = {INT4OID, INT8OID, INT4OID, TEXTOID, INT8OID};
		Datum		values[5];
		char		nulls[5] = "     ";

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
		if (o->error)
			pfree(o->error);
		pfree(o);
	}
	list_free(outcomes);
	outcomes = NIL;
	outcome_failed = false;
}

/* Queue the messages picked for idle endpoints (caller is in a transaction). */
static void
LoadMessages(void)
{
	ListCell   *lc;
	List	   *busy = NIL;
	ArrayType  *arr;
	Datum	   *elems;
	int			n = 0;
	Oid			types[2] = {INT4ARRAYOID, INT4OID};
	Datum		values[2];
	uint64		i;

	/* endpoints with messages in hand are left out; all others are candidates */
	foreach(lc, endpoint_runs)
	{
		EndpointRun *run = lfirst(lc);

		if (run->in_flight > 0 || run->queue != NIL)
			busy = lappend_int(busy, run->endpoint_id);
	}
	elems = palloc(sizeof(Datum) * (list_length(busy) + 1));
	foreach(lc, busy)
		elems[n++] = Int32GetDatum(lfirst_int(lc));
	arr = construct_array(elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT);
	values[0] = PointerGetDatum(arr);
	values[1] = Int32GetDatum(PREFETCH_PER_ENDPOINT);

	WorkerExec("SELECT endpoint_id, ordered, url, headers::text, timeout_ms, message_id,"
			   " first_position, body, keys"
			   " FROM connector._dispatch_next($1, $2)",
			   2, types, values, NULL, false);

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(worker_cxt);
		Message    *m = palloc0(sizeof(Message));
		EndpointRun *run;
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
		m->body = SPI_getvalue(tup, desc, 8);
		m->req.bodylen = strlen(m->body);
		m->req.body = m->body;
		keys = SPI_getbinval(tup, desc, 9, &isnull);
		if (!isnull)
		{
			Datum	   *kd;
			bool	   *kn;
			int			nk;
			int			k;

			deconstruct_array(DatumGetArrayTypeP(keys), BYTEAOID, -1, false, TYPALIGN_INT,
							  &kd, &kn, &nk);
			for (k = 0; k < nk; k++)
				if (!kn[k])
					m->keys = lappend(m->keys, DatumGetByteaPCopy(kd[k]));
		}
		/* signatures are made when the request starts: the timestamp is per attempt */
		m->req.headers = WebhookExtraHeaders(NULL, headers);
		m->req.owner = m;

		run = FindRun(m->endpoint_id, true);
		run->queue = lappend(run->queue, m);
		MemoryContextSwitchTo(old);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* Add the protocol headers, signed for this attempt, and start the request. */
static void
StartMessage(Message *m)
{
	StringInfoData sig;
	ListCell   *lc;
	int64		ts = (int64) time(NULL);
	char		tsbuf[32];

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
 * One round in one short transaction: record outcomes, seal, maintain, pick
 * new messages.  Returns false when the extension is gone.
 */
static bool
WorkerRound(bool maintain)
{
	bool		present;
	bool		isnull;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	present = OidIsValid(get_extension_oid("connector", true));
	if (present)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "connector dispatcher: SPI_connect failed");
		pgstat_report_activity(STATE_RUNNING, "connector dispatcher round");
		RecordOutcomes();
		WorkerExec("SELECT connector._dispatch_seal()", 0, NULL, NULL, NULL, false);
		SetIdle(!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											1, &isnull)));
		if (maintain)
			WorkerExec("SELECT connector._dispatch_maintain()", 0, NULL, NULL, NULL, false);
		LoadMessages();
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return present;
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
		if (latch_set && outcomes == NIL &&
			!TimestampDifferenceExceeds(last_round, now, MIN_ROUND_INTERVAL_MS))
		{
			(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 MIN_ROUND_INTERVAL_MS, PG_WAIT_EXTENSION);
			now = GetCurrentTimestamp();
		}
		if (latch_set ||
			(outcomes != NIL &&
			 (outcome_failed || HttpInFlight() == 0 ||
			  list_length(outcomes) >= OUTCOMES_PER_ROUND ||
			  TimestampDifferenceExceeds(last_round, now, OUTCOMES_MAX_WAIT_MS))) ||
			TimestampDifferenceExceeds(last_round, now, connector_naptime_ms))
		{
			bool		maintain = TimestampDifferenceExceeds(last_maintain, now,
															  connector_naptime_ms);

			if (!WorkerRound(maintain))
			{
				ereport(DEBUG1,
						(errmsg_internal("connector dispatcher: extension not installed in this database, exiting")));
				cancel_before_shmem_exit(WorkerShmemExit, BoolGetDatum(false));
				WorkerShmemExit(0, BoolGetDatum(true));
				proc_exit(0);
			}
			last_round = now;
			if (maintain)
				last_maintain = now;
		}

		StartRequests();
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
		else if (outcomes == NIL)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 connector_naptime_ms, PG_WAIT_EXTENSION);
	}
}
