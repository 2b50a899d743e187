/*-------------------------------------------------------------------------
 *
 * db.c
 *	  The libpq pool of connector-gateway: N lazily (re)connected
 *	  connections, batches sent in pipeline mode so a request costs about
 *	  one round trip, and the SQLSTATE to HTTP status table.
 *
 * IDENTIFICATION
 *	  gateway/db.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct DbConn
{
	PGconn	   *conn;
	bool		busy;
};

static DbConn *pool;
static int	pool_size;
static char *pool_conninfo;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;

/*
 * Remember the pool's shape; connections open on first use, so the gateway
 * starts (and answers /healthz with 503) while the database is down.
 */
bool
db_pool_init(const char *conninfo, int size)
{
	char	   *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);

	if (opts == NULL)
	{
		gw_log("invalid --database connection string: %s", msg ? msg : "out of memory");
		PQfreemem(msg);
		return false;
	}
	PQconninfoFree(opts);
	pool = calloc(size, sizeof(DbConn));
	pool_size = size;
	pool_conninfo = strdup(conninfo);
	return pool != NULL && pool_conninfo != NULL;
}

/* Close every connection at exit (requests have drained). */
void
db_pool_close(void)
{
	pthread_mutex_lock(&pool_lock);
	for (int i = 0; i < pool_size; i++)
		if (pool[i].conn)
		{
			PQfinish(pool[i].conn);
			pool[i].conn = NULL;
		}
	pthread_mutex_unlock(&pool_lock);
}

/* Fill err as a connection failure; 08006 maps to 503. */
static void
conn_failure(DbError *err, PGconn *conn)
{
	db_error_clear(err);
	strcpy(err->sqlstate, "08006");
	err->message = strdup(conn ? PQerrorMessage(conn) : "no connection");
}

/*
 * Is an idle pooled connection still usable?  libpq learns that the server
 * closed it (a restart sends FATAL 57P01, then EOF) only when it next reads,
 * so without this the first request on each pooled connection after a
 * restart failed with 503.  An idle connection of the gateway has nothing to
 * read (it never LISTENs; every command's results were read): anything
 * readable is the server's goodbye.  PQconsumeInput is no test: it takes the
 * FATAL as a notice and leaves the status OK until a read sees the EOF.
 */
static bool
conn_idle_ok(PGconn *conn)
{
	struct pollfd pfd;
	int			rc;

	pfd.fd = PQsocket(conn);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0)
		return false;
	do
		rc = poll(&pfd, 1, 0);
	while (rc < 0 && errno == EINTR);
	return rc == 0;
}

/*
 * Take a free connection, waiting up to 10 s for one; (re)connect it when it
 * is new or broken, so the pool recovers by itself after a database restart.
 */
DbConn *
db_acquire(DbError *err)
{
	struct timespec deadline;
	DbConn	   *c = NULL;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += GW_IO_TIMEOUT;
	pthread_mutex_lock(&pool_lock);
	for (;;)
	{
		for (int i = 0; i < pool_size; i++)
			if (!pool[i].busy)
			{
				c = &pool[i];
				break;
			}
		if (c)
			break;
		if (pthread_cond_timedwait(&pool_cond, &pool_lock, &deadline) == ETIMEDOUT)
		{
			pthread_mutex_unlock(&pool_lock);
			db_error_clear(err);
			strcpy(err->sqlstate, "53300");
			err->message = strdup("all database connections are busy");
			return NULL;
		}
	}
	c->busy = true;
	pthread_mutex_unlock(&pool_lock);

	if (c->conn && (PQstatus(c->conn) != CONNECTION_OK || !conn_idle_ok(c->conn)))
	{
		PQfinish(c->conn);
		c->conn = NULL;
	}
	if (c->conn == NULL)
	{
		const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
		const char *vals[] = {pool_conninfo, "connector-gateway", "5", NULL};

		c->conn = PQconnectdbParams(keys, vals, 1);
		if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK)
		{
			conn_failure(err, c->conn);
			if (c->conn)
				PQfinish(c->conn);
			c->conn = NULL;
			db_release(c);
			return NULL;
		}
	}
	return c;
}

/*
 * Give a connection back.  A transaction left open by an error is rolled
 * back here; a connection that cannot do that is dropped and reopened on
 * next use.
 */
void
db_release(DbConn *c)
{
	if (c->conn)
	{
		if (PQpipelineStatus(c->conn) != PQ_PIPELINE_OFF || PQstatus(c->conn) != CONNECTION_OK)
		{
			PQfinish(c->conn);
			c->conn = NULL;
		}
		else if (PQtransactionStatus(c->conn) != PQTRANS_IDLE)
		{
			PGresult   *r = PQexec(c->conn, "ROLLBACK");

			if (PQresultStatus(r) != PGRES_COMMAND_OK ||
				PQtransactionStatus(c->conn) != PQTRANS_IDLE)
			{
				PQfinish(c->conn);
				c->conn = NULL;
			}
			PQclear(r);
		}
	}
	pthread_mutex_lock(&pool_lock);
	c->busy = false;
	pthread_cond_signal(&pool_cond);
	pthread_mutex_unlock(&pool_lock);
}

static char *
dupfield(const PGresult *r, int field)
{
	const char *v = PQresultErrorField(r, field);

	return v ? strdup(v) : NULL;
}

void
db_error_clear(DbError *err)
{
	free(err->message);
	free(err->detail);
	free(err->hint);
	memset(err, 0, sizeof(*err));
}

/*
 * Send the batch in pipeline mode and read every result: one round trip for
 * any number of statements.  res[i] gets each statement's result (NULL after
 * a failure, which skips the rest up to the sync).  Returns false with err
 * filled (the first error) when any statement failed.
 */
bool
db_run(DbConn *c, const DbQuery *q, int n, PGresult **res, DbError *err)
{
	PGconn	   *conn = c->conn;
	bool		ok = true;
	PGresult   *r;

	for (int i = 0; i < n; i++)
		res[i] = NULL;
	if (PQenterPipelineMode(conn) != 1)
	{
		conn_failure(err, conn);
		return false;
	}
	for (int i = 0; i < n; i++)
		if (PQsendQueryParams(conn, q[i].sql, q[i].nparams, NULL, q[i].params,
							  NULL, NULL, 0) != 1)
		{
			conn_failure(err, conn);
			return false;
		}
	if (PQpipelineSync(conn) != 1)
	{
		conn_failure(err, conn);
		return false;
	}
	for (int i = 0; i < n; i++)
	{
		r = PQgetResult(conn);
		if (r == NULL)
		{
			conn_failure(err, conn);
			for (int j = 0; j < i; j++)
			{
				PQclear(res[j]);
				res[j] = NULL;
			}
			return false;
		}
		switch (PQresultStatus(r))
		{
			case PGRES_TUPLES_OK:
			case PGRES_COMMAND_OK:
				res[i] = r;
				break;
			case PGRES_PIPELINE_ABORTED:
				PQclear(r);
				break;
			default:
				if (ok)
				{
					const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);

					db_error_clear(err);
					snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", st ? st : "08006");
					err->message = dupfield(r, PG_DIAG_MESSAGE_PRIMARY);
					err->detail = dupfield(r, PG_DIAG_MESSAGE_DETAIL);
					err->hint = dupfield(r, PG_DIAG_MESSAGE_HINT);
					err->index = i;
					ok = false;
				}
				PQclear(r);
				break;
		}
		/* each statement's results end with a NULL */
		while ((r = PQgetResult(conn)) != NULL)
			PQclear(r);
	}
	r = PQgetResult(conn);
	if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
	{
		PQclear(r);
		conn_failure(err, conn);
		ok = false;
	}
	else
	{
		PQclear(r);
		if (PQexitPipelineMode(conn) != 1)
		{
			conn_failure(err, conn);
			ok = false;
		}
	}
	if (!ok)
		for (int i = 0; i < n; i++)
		{
			PQclear(res[i]);
			res[i] = NULL;
		}
	return ok;
}

/* /healthz: does the database answer SELECT 1 on a pooled connection? */
bool
db_ping(void)
{
	DbError		err = {{0}};
	DbConn	   *c = db_acquire(&err);
	DbQuery		q = {"SELECT 1", 0, {NULL}};
	PGresult   *r;
	bool		ok;

	if (c == NULL)
	{
		db_error_clear(&err);
		return false;
	}
	ok = db_run(c, &q, 1, &r, &err);
	PQclear(r);
	db_error_clear(&err);
	db_release(c);
	return ok;
}

/*
 * The SQLSTATE → HTTP table of the contract.  filter_call: the failing
 * statement compiled a client's filter, so a bad value is invalidFilter.
 */
int
db_http_status(const DbError *err, bool filter_call, const char **scim_type)
{
	const char *s = err->sqlstate;

	*scim_type = NULL;
	if (strcmp(s, "28000") == 0)
		return 401;
	if (strcmp(s, "42704") == 0 || strcmp(s, "P0002") == 0)
		return 404;
	if (strcmp(s, "42501") == 0)
		return 403;
	if (strcmp(s, "23505") == 0)
	{
		*scim_type = "uniqueness";
		return 409;
	}
	/*
	 * program limits (54000 index row too large, 54001 statement too
	 * complex, ...): a client's value too big for the database
	 */
	if (strncmp(s, "54", 2) == 0)
	{
		*scim_type = filter_call ? "invalidFilter" : "invalidValue";
		return 400;
	}
	if (strcmp(s, "22023") == 0 || strcmp(s, "22P02") == 0 || strcmp(s, "22007") == 0 ||
		strcmp(s, "22008") == 0 || strcmp(s, "22004") == 0 || strcmp(s, "42703") == 0 ||
		strcmp(s, "0A000") == 0 || strncmp(s, "22", 2) == 0)
	{
		*scim_type = filter_call ? "invalidFilter" : "invalidValue";
		return 400;
	}
	/* transient: conflicts, resources, connections, shutdown, cancel */
	if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "55P03") == 0 ||
		strncmp(s, "53", 2) == 0 || strncmp(s, "08", 2) == 0 || strncmp(s, "57P0", 4) == 0 ||
		strcmp(s, "57014") == 0)
		return 503;
	if (strcmp(s, "09000") == 0)
	{
		*scim_type = "mutability";
		return 409;
	}
	return 500;
}
