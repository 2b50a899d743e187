/*-------------------------------------------------------------------------
 *
 * connector.c
 *	  Module entry point: configuration parameters and load-time checks.
 *
 * IDENTIFICATION
 *	  src/connector.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "connector.h"

PG_MODULE_MAGIC;

char	   *connector_databases = NULL;
int			connector_naptime_ms = 1000;
int			connector_max_in_flight = 16;
int			connector_http_timeout_ms = 15000;
int			connector_retry_base_ms = 1000;
int			connector_retry_max_ms = 600000;
int			connector_max_attempts = 10;
int			connector_retention_s = 7 * 24 * 3600;
bool		connector_allow_private_targets = false;
char	   *connector_ca_file = NULL;
bool		connector_preloaded = false;

void		_PG_init(void);

/*
 * Define the configuration parameters of spec section 2, then the pieces that
 * need every backend (origin tracking, the log filter that keeps webhook
 * secrets out of the server log).  The dispatcher can only be started from
 * shared_preload_libraries; without it everything else still works, but the
 * log filter only protects a backend from the moment the library is loaded.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	connector_preloaded = process_shared_preload_libraries_in_progress;

	DefineCustomStringVariable("connector.databases",
							   "Databases the dispatcher serves.",
							   "'*' serves every database that has the extension; otherwise a comma-separated list of database names.",
							   &connector_databases,
							   "*",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("connector.naptime",
							"Interval between dispatcher polls.",
							"A safety net: commits that write events wake the dispatcher at once.",
							&connector_naptime_ms,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.max_in_flight",
							"Concurrent HTTP requests per database.",
							NULL,
							&connector_max_in_flight,
							16, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.http_timeout",
							"Timeout of one whole webhook request.",
							NULL,
							&connector_http_timeout_ms,
							15000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.retry_base",
							"First backoff delay after a failed delivery.",
							"Delays grow exponentially, with jitter, up to connector.retry_max.",
							&connector_retry_base_ms,
							1000, 1, 24 * 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.retry_max",
							"Longest backoff delay after failed deliveries.",
							NULL,
							&connector_retry_max_ms,
							600000, 1, 24 * 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.max_attempts",
							"Attempts before a permanently rejected message is dead-lettered.",
							"Applies to 4xx answers other than 408, 410 and 429.",
							&connector_max_attempts,
							10, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.retention",
							"How long delivered events and request records are kept.",
							NULL,
							&connector_retention_s,
							7 * 24 * 3600, 60, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("connector.allow_private_targets",
							 "Allow loopback, private and link-local endpoint addresses.",
							 "Also allows http:// endpoints. Off guards against server-side request forgery.",
							 &connector_allow_private_targets,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("connector.ca_file",
							   "CA bundle used to verify endpoint TLS certificates.",
							   "Unset: the system's default trust store.",
							   &connector_ca_file,
							   NULL,
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("connector");

	ConnectorLogFilterInit();
	ConnectorOriginInit();
	ConnectorCaptureInit();
	ConnectorDispatcherInit();

	if (!connector_preloaded)
		ereport(NOTICE,
				(errmsg("connector is not in shared_preload_libraries: push delivery is off"),
				 errdetail("Mapping, capture, the platform API and changes() work; webhooks are not sent, grants do not expire by themselves, and webhook secrets are kept out of the server log only in sessions that have loaded the library."),
				 errhint("Add connector to shared_preload_libraries and restart the server.")));
}
