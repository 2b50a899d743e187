/*-------------------------------------------------------------------------
 *
 * http.c
 *	  The HTTP side of connector-gateway: libmicrohttpd (one thread per
 *	  connection, so a slow client or a slow query blocks nobody else), TLS
 *	  1.2+ through GnuTLS with a certificate reloadable on SIGHUP, routing,
 *	  the bearer token, the 1 MB body limit and the stall timeout.
 *
 * IDENTIFICATION
 *	  gateway/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <microhttpd.h>

#define JSON_TYPE "application/scim+json; charset=utf-8"

static struct MHD_Daemon *daemon_handle;
static volatile int inflight;
static volatile bool draining;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;

/* The certificate in use; replaced (never freed: a handshake may hold it) on SIGHUP. */
typedef struct TlsCert
{
	gnutls_pcert_st *pcerts;
	unsigned int npcerts;
	gnutls_privkey_t key;
} TlsCert;

static TlsCert *current_cert;

/* Per-request state, from the first call of the handler to completion. */
typedef struct Request
{
	struct timespec start;
	char	   *body;
	size_t		len;
	bool		too_large;
	int			status;
	char		token_name[201];
	char		method[16];
	char		path[256];		/* the URL path only: no query string in the log */
} Request;

/* Read a whole file for GnuTLS; NULL with a message on failure. */
static bool
read_file(const char *path, gnutls_datum_t *out)
{
	FILE	   *f = fopen(path, "rb");
	long		len;

	if (f == NULL)
	{
		gw_log("could not open \"%s\": %s", path, strerror(errno));
		return false;
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (len <= 0 || len > 10 * 1024 * 1024)
	{
		gw_log("\"%s\" is empty or too large", path);
		fclose(f);
		return false;
	}
	out->data = malloc(len + 1);
	out->size = fread(out->data, 1, len, f);
	out->data[out->size] = '\0';
	fclose(f);
	return true;
}

/* Load the certificate chain and key named by the configuration. */
static TlsCert *
load_cert(void)
{
	gnutls_datum_t cert = {NULL, 0},
				key = {NULL, 0};
	TlsCert    *tc = calloc(1, sizeof(TlsCert));
	unsigned int n = 16;
	int			rc;

	if (!read_file(gw_config.tls_cert, &cert) || !read_file(gw_config.tls_key, &key))
		goto fail;
	tc->pcerts = calloc(n, sizeof(gnutls_pcert_st));
	rc = gnutls_pcert_list_import_x509_raw(tc->pcerts, &n, &cert, GNUTLS_X509_FMT_PEM, 0);
	if (rc < 0 || n == 0)
	{
		gw_log("could not load certificate \"%s\": %s", gw_config.tls_cert, gnutls_strerror(rc));
		goto fail;
	}
	tc->npcerts = n;
	gnutls_privkey_init(&tc->key);
	rc = gnutls_privkey_import_x509_raw(tc->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0)
	{
		gw_log("could not load private key \"%s\": %s", gw_config.tls_key, gnutls_strerror(rc));
		goto fail;
	}
	free(cert.data);
	free(key.data);
	return tc;
fail:
	free(cert.data);
	free(key.data);
	free(tc->pcerts);
	free(tc);
	return NULL;
}

/* GnuTLS asks for the certificate at each handshake: give the current one. */
static int
cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
			  const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
			  gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
	TlsCert    *tc;

	pthread_mutex_lock(&state_lock);
	tc = current_cert;
	pthread_mutex_unlock(&state_lock);
	*pcert = tc->pcerts;
	*pcert_length = tc->npcerts;
	*privkey = tc->key;
	return 0;
}

/*
 * SIGHUP: load the files again; new handshakes use the new certificate, a
 * failure keeps the old one.  The old one is kept in memory because a
 * handshake in progress may still point at it (a few KB per reload).
 */
bool
http_reload_cert(void)
{
	TlsCert    *tc = load_cert();

	if (tc == NULL)
	{
		gw_log("SIGHUP: keeping the previous certificate");
		return false;
	}
	pthread_mutex_lock(&state_lock);
	current_cert = tc;
	pthread_mutex_unlock(&state_lock);
	return true;
}

/* Parse ADDR:PORT ("0.0.0.0:8443", "[::1]:8443", "localhost:8443"). */
static bool
parse_listen(const char *spec, struct sockaddr_storage *ss)
{
	char		host[256];
	const char *port;
	struct addrinfo hints,
			   *ai;
	int			rc;

	if (spec[0] == '[')
	{
		const char *end = strchr(spec, ']');

		if (end == NULL || end[1] != ':' || (size_t) (end - spec - 1) >= sizeof(host))
			return false;
		memcpy(host, spec + 1, end - spec - 1);
		host[end - spec - 1] = '\0';
		port = end + 2;
	}
	else
	{
		const char *colon = strrchr(spec, ':');

		if (colon == NULL || (size_t) (colon - spec) >= sizeof(host))
			return false;
		memcpy(host, spec, colon - spec);
		host[colon - spec] = '\0';
		port = colon + 1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (rc != 0)
	{
		gw_log("invalid --listen \"%s\": %s", spec, gai_strerror(rc));
		return false;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return true;
}

/* libmicrohttpd's own messages (TLS handshake failures...) in our log format. */
static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char		buf[512];
	size_t		n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	gw_log("http: %s", buf);
}

/* Queue a response built by scim.c, with the headers SCIM needs. */
static enum MHD_Result
send_response(struct MHD_Connection *conn, Request *rq, ScimResponse *sr)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t		len = sr->body ? strlen(sr->body) : 0;

	r = MHD_create_response_from_buffer(len, sr->body ? sr->body : "", MHD_RESPMEM_MUST_COPY);
	if (sr->body)
		MHD_add_response_header(r, "Content-Type", sr->content_type ? sr->content_type : JSON_TYPE);
	if (sr->etag)
		MHD_add_response_header(r, "ETag", sr->etag);
	if (sr->location)
		MHD_add_response_header(r, "Location", sr->location);
	if (sr->www_authenticate)
		MHD_add_response_header(r, "WWW-Authenticate",
								"Bearer realm=\"connector\", error=\"invalid_token\"");
	if (sr->retry_after > 0)
	{
		char		buf[16];

		snprintf(buf, sizeof(buf), "%d", sr->retry_after);
		MHD_add_response_header(r, "Retry-After", buf);
	}
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (draining)
		MHD_add_response_header(r, "Connection", "close");
	ret = MHD_queue_response(conn, sr->status, r);
	MHD_destroy_response(r);
	rq->status = sr->status;
	memcpy(rq->token_name, sr->token_name, sizeof(rq->token_name));
	return ret;
}

/* Collect the query arguments the SCIM endpoints read. */
static const char *
arg(struct MHD_Connection *conn, const char *key)
{
	return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

/*
 * The scheme clients reach this gateway by, for the URLs it writes
 * (locations, $ref, the SSF issuer): https with TLS; with --insecure-http,
 * which is the set-up behind a TLS-terminating proxy, https when the proxy
 * says so in X-Forwarded-Proto, else http.
 */
const char *
gw_scheme(struct MHD_Connection *conn)
{
	const char *fwd;

	if (!gw_config.insecure_http)
		return "https";
	fwd = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
	return fwd && strcasecmp(fwd, "https") == 0 ? "https" : "http";
}

/*
 * The MHD request handler: accumulate the body (at most 1 MB), then route
 * the complete request.
 */
static enum MHD_Result
handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
		const char *version, const char *upload_data, size_t *upload_data_size,
		void **con_cls)
{
	Request    *rq = *con_cls;
	ScimResponse sr;
	enum MHD_Result ret;

	if (rq == NULL)
	{
		const char *cl;

		rq = calloc(1, sizeof(Request));
		if (rq == NULL)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &rq->start);
		snprintf(rq->method, sizeof(rq->method), "%s", method);
		for (size_t i = 0; i < sizeof(rq->path) - 1 && url[i]; i++)
			rq->path[i] = (unsigned char) url[i] < 0x20 || url[i] == 0x7f ? '?' : url[i];
		*con_cls = rq;
		__sync_fetch_and_add(&inflight, 1);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > GW_MAX_BODY)
			rq->too_large = true;
		if (!rq->too_large)
			return MHD_YES;
		/* refuse before reading the body */
		memset(&sr, 0, sizeof(sr));
		scim_error(&sr, 413, NULL, "the request body exceeds 1 MB");
		ret = send_response(conn, rq, &sr);
		scim_response_free(&sr);
		return ret;
	}
	if (*upload_data_size > 0)
	{
		if (!rq->too_large)
		{
			if (rq->len + *upload_data_size > GW_MAX_BODY)
			{
				rq->too_large = true;
				free(rq->body);
				rq->body = NULL;
				rq->len = 0;
			}
			else
			{
				char	   *nb = realloc(rq->body, rq->len + *upload_data_size + 1);

				if (nb == NULL)
					return MHD_NO;
				rq->body = nb;
				memcpy(rq->body + rq->len, upload_data, *upload_data_size);
				rq->len += *upload_data_size;
				rq->body[rq->len] = '\0';
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->status != 0)
		return MHD_YES;			/* already answered (413 up front) */

	memset(&sr, 0, sizeof(sr));
	if (rq->too_large)
		scim_error(&sr, 413, NULL, "the request body exceeds 1 MB");
	else if (strcmp(url, "/healthz") == 0)
	{
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			scim_error(&sr, 405, NULL, "only GET is allowed here");
		else if (db_ping())
		{
			sr.status = 200;
			sr.body = strdup("{\"status\":\"ok\"}");
		}
		else
		{
			sr.status = 503;
			sr.body = strdup("{\"status\":\"database unavailable\"}");
			sr.retry_after = 5;
		}
	}
	else if (ssf_route(url))
		ssf_handle(conn, url, method, rq->body, rq->len, &sr);
	else if (strncmp(url, "/scim/v2/", 9) == 0)
	{
		ScimRequest req;
		const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
		const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
		char		base[600];

		memset(&req, 0, sizeof(req));
		req.method = method;
		req.path = url + 9;
		req.body = rq->body;
		req.body_len = rq->len;
		req.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
		req.if_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-Match");
		if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
		{
			req.token = auth + 7;
			while (*req.token == ' ')
				req.token++;
		}
		if (host == NULL || strlen(host) > 500 || strpbrk(host, "\"\\<> \t\r\n/") != NULL)
			host = "localhost";
		snprintf(base, sizeof(base), "%s://%s", gw_scheme(conn), host);
		req.base_url = base;
		req.filter = arg(conn, "filter");
		req.start_index = arg(conn, "startIndex");
		req.count = arg(conn, "count");
		req.cursor = arg(conn, "cursor");
		req.attributes = arg(conn, "attributes");
		req.excluded = arg(conn, "excludedAttributes");
		scim_handle(&req, &sr);
	}
	else
		scim_error(&sr, 404, NULL, "no such endpoint; SCIM lives under /scim/v2/<app>/");
	ret = send_response(conn, rq, &sr);
	scim_response_free(&sr);
	return ret;
}

/* Completed (or abandoned) request: one log line, free the state. */
static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		  enum MHD_RequestTerminationCode toe)
{
	Request    *rq = *con_cls;
	struct timespec now;
	long		ms;

	if (rq == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - rq->start.tv_sec) * 1000 + (now.tv_nsec - rq->start.tv_nsec) / 1000000;
	gw_log("%s %s %d %ldms %s%s", rq->method, rq->path,
		   toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? rq->status : 0, ms,
		   rq->token_name[0] ? rq->token_name : "-",
		   toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" :
		   toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (client timed out)" : " (aborted)");
	free(rq->body);
	free(rq);
	*con_cls = NULL;
	__sync_fetch_and_sub(&inflight, 1);
}

int
http_inflight(void)
{
	return inflight;
}

/* Start the daemon on the configured address, TLS unless --insecure-http. */
bool
http_start(void)
{
	struct sockaddr_storage ss;
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_ITC | MHD_USE_ERROR_LOG;

	if (!parse_listen(gw_config.listen, &ss))
	{
		gw_log("invalid --listen \"%s\": expected ADDR:PORT", gw_config.listen);
		return false;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (!gw_config.insecure_http)
	{
		current_cert = load_cert();
		if (current_cert == NULL)
			return false;
		flags |= MHD_USE_TLS;
		daemon_handle = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL,
										 MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
										 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
										 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) GW_IO_TIMEOUT,
										 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 1000,
										 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 128 * 1024,
										 MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
										 MHD_OPTION_HTTPS_PRIORITIES,
										 "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
										 MHD_OPTION_HTTPS_CERT_CALLBACK, cert_callback,
										 MHD_OPTION_END);
	}
	else
		daemon_handle = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL,
										 MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
										 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
										 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) GW_IO_TIMEOUT,
										 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 1000,
										 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 128 * 1024,
										 MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
										 MHD_OPTION_END);
	if (daemon_handle == NULL)
	{
		gw_log("could not listen on %s", gw_config.listen);
		return false;
	}
	return true;
}

/* Stop accepting connections; requests in flight go on. */
void
http_quiesce(void)
{
	draining = true;
	MHD_quiesce_daemon(daemon_handle);
}

void
http_stop(void)
{
	MHD_stop_daemon(daemon_handle);
}
