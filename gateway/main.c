/*-------------------------------------------------------------------------
 *
 * main.c
 *	  connector-gateway entry point: options and config file, signals
 *	  (SIGHUP reloads the certificate, SIGTERM drains and exits) and the
 *	  request log.
 *
 * IDENTIFICATION
 *	  gateway/main.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

GwConfig	gw_config = {NULL, NULL, NULL, NULL, 0, false};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * One line on stderr prefixed by the UTC time in ISO 8601, so the request log
 * and the gateway's own messages interleave readably.
 */
void
gw_log(const char *fmt,...)
{
	struct timespec ts;
	struct tm	tm;
	char		stamp[40];
	va_list		ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s.%03ldZ ", stamp, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}

/* Usage on stderr; why: the flags are the whole user interface. */
static void
usage(FILE *f)
{
	fprintf(f,
			"usage: connector-gateway --listen ADDR:PORT --database CONNINFO\n"
			"                         [--tls-cert FILE --tls-key FILE | --insecure-http]\n"
			"                         [--pool N] [--config FILE]\n"
			"  --listen ADDR:PORT   address to listen on (e.g. 0.0.0.0:8443, [::1]:8443)\n"
			"  --database CONNINFO  libpq connection string of a role granted connector_platform\n"
			"  --tls-cert FILE      PEM certificate (chain); reloaded on SIGHUP\n"
			"  --tls-key FILE       PEM private key; reloaded on SIGHUP\n"
			"  --insecure-http      serve plain HTTP (behind a TLS-terminating proxy, or tests)\n"
			"  --pool N             database connections (default 10)\n"
			"  --config FILE        key = value lines with the same keys; flags override\n");
}

/* Set one option by its key; the file and the flags share this. */
static bool
set_option(const char *key, const char *val, bool from_file)
{
	char	  **dst = NULL;

	if (strcmp(key, "listen") == 0)
		dst = &gw_config.listen;
	else if (strcmp(key, "database") == 0)
		dst = &gw_config.database;
	else if (strcmp(key, "tls-cert") == 0 || strcmp(key, "tls_cert") == 0)
		dst = &gw_config.tls_cert;
	else if (strcmp(key, "tls-key") == 0 || strcmp(key, "tls_key") == 0)
		dst = &gw_config.tls_key;
	else if (strcmp(key, "pool") == 0)
	{
		char	   *end;
		long		n = strtol(val, &end, 10);

		if (*val == '\0' || *end != '\0' || n < 1 || n > 1000)
		{
			fprintf(stderr, "connector-gateway: pool must be an integer between 1 and 1000, not \"%s\"\n", val);
			return false;
		}
		gw_config.pool = (int) n;
		return true;
	}
	else if (strcmp(key, "insecure-http") == 0 || strcmp(key, "insecure_http") == 0)
	{
		if (strcmp(val, "true") == 0 || strcmp(val, "on") == 0 || strcmp(val, "1") == 0 ||
			strcmp(val, "yes") == 0)
			gw_config.insecure_http = true;
		else if (strcmp(val, "false") == 0 || strcmp(val, "off") == 0 || strcmp(val, "0") == 0 ||
				 strcmp(val, "no") == 0)
			gw_config.insecure_http = false;
		else
		{
			fprintf(stderr, "connector-gateway: insecure-http must be true or false, not \"%s\"\n", val);
			return false;
		}
		return true;
	}
	else
	{
		fprintf(stderr, "connector-gateway: unknown %s \"%s\"\n",
				from_file ? "configuration key" : "option", key);
		return false;
	}
	free(*dst);
	*dst = strdup(val);
	return true;
}

/*
 * Read key = value lines; '#' starts a comment, values may be quoted with
 * double quotes (a conninfo has spaces and '=').  Keys already given as
 * flags are skipped, so a flag overrides the file.
 */
static bool
read_config(const char *file, const GwConfig *flags)
{
	FILE	   *f = fopen(file, "r");
	char		line[8192];
	int			lineno = 0;

	if (f == NULL)
	{
		fprintf(stderr, "connector-gateway: could not open config file \"%s\": %s\n", file, strerror(errno));
		return false;
	}
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char	   *p = line,
				   *key,
				   *val,
				   *end;
		bool		flagged;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		key = p;
		while (*p && *p != '=' && *p != ' ' && *p != '\t')
			p++;
		end = p;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
		{
			fprintf(stderr, "connector-gateway: %s:%d: expected key = value\n", file, lineno);
			fclose(f);
			return false;
		}
		*end = '\0';
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		val = p;
		end = val + strlen(val);
		while (end > val && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (end - val >= 2 && val[0] == '"' && end[-1] == '"')
		{
			end[-1] = '\0';
			val++;
		}
		flagged = (strcmp(key, "listen") == 0 && flags->listen) ||
			(strcmp(key, "database") == 0 && flags->database) ||
			((strcmp(key, "tls-cert") == 0 || strcmp(key, "tls_cert") == 0) && flags->tls_cert) ||
			((strcmp(key, "tls-key") == 0 || strcmp(key, "tls_key") == 0) && flags->tls_key) ||
			(strcmp(key, "pool") == 0 && flags->pool) ||
			((strcmp(key, "insecure-http") == 0 || strcmp(key, "insecure_http") == 0) && flags->insecure_http);
		if (flagged)
			continue;
		if (!set_option(key, val, true))
		{
			fprintf(stderr, "connector-gateway: in %s line %d\n", file, lineno);
			fclose(f);
			return false;
		}
	}
	fclose(f);
	return true;
}

int
main(int argc, char **argv)
{
	static struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"database", required_argument, NULL, 'd'},
		{"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'k'},
		{"pool", required_argument, NULL, 'p'},
		{"insecure-http", no_argument, NULL, 'i'},
		{"config", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *config_file = NULL;
	GwConfig	flags;
	sigset_t	sigs;
	int			opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		bool		ok = true;

		switch (opt)
		{
			case 'l':
				ok = set_option("listen", optarg, false);
				break;
			case 'd':
				ok = set_option("database", optarg, false);
				break;
			case 'c':
				ok = set_option("tls-cert", optarg, false);
				break;
			case 'k':
				ok = set_option("tls-key", optarg, false);
				break;
			case 'p':
				ok = set_option("pool", optarg, false);
				break;
			case 'i':
				gw_config.insecure_http = true;
				break;
			case 'f':
				config_file = optarg;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
		if (!ok)
			return 2;
	}
	if (optind < argc)
	{
		fprintf(stderr, "connector-gateway: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	flags = gw_config;
	if (config_file && !read_config(config_file, &flags))
		return 2;
	if (gw_config.pool == 0)
		gw_config.pool = 10;
	if (gw_config.listen == NULL || gw_config.database == NULL)
	{
		fprintf(stderr, "connector-gateway: --listen and --database are required\n");
		usage(stderr);
		return 2;
	}
	if (gw_config.insecure_http)
	{
		if (gw_config.tls_cert || gw_config.tls_key)
		{
			fprintf(stderr, "connector-gateway: --insecure-http and --tls-cert/--tls-key exclude each other\n");
			return 2;
		}
	}
	else if (gw_config.tls_cert == NULL || gw_config.tls_key == NULL)
	{
		fprintf(stderr, "connector-gateway: --tls-cert and --tls-key are required (or --insecure-http)\n");
		return 2;
	}

	/*
	 * Block the signals in every thread; this one takes them with sigwait,
	 * so no work happens in a signal handler.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!db_pool_init(gw_config.database, gw_config.pool))
		return 1;
	if (gw_config.insecure_http)
		gw_log("WARNING: serving plain HTTP (--insecure-http): bearer tokens cross the network unencrypted");
	if (!http_start())
		return 1;
	gw_log("connector-gateway listening on %s (%s, pool %d)", gw_config.listen,
		   gw_config.insecure_http ? "http" : "https", gw_config.pool);

	for (;;)
	{
		int			sig;

		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP)
		{
			if (gw_config.insecure_http)
				gw_log("SIGHUP: no certificate to reload (plain HTTP)");
			else if (http_reload_cert())
				gw_log("SIGHUP: certificate reloaded from %s", gw_config.tls_cert);
			continue;
		}
		/* SIGTERM, SIGINT: stop accepting, finish what is in flight, exit */
		gw_log("%s: draining %d request(s) in flight", sig == SIGTERM ? "SIGTERM" : "SIGINT",
			   http_inflight());
		http_quiesce();
		for (int i = 0; i < 600 && http_inflight() > 0; i++)
			usleep(50 * 1000);
		http_stop();
		db_pool_close();
		gw_log("connector-gateway stopped");
		return 0;
	}
}
