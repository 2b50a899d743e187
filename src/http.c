/*-------------------------------------------------------------------------
 *
 * http.c
 *	  Webhook HTTP requests over the libcurl multi interface.
 *
 * One multi handle per worker keeps connections alive between requests.
 * Redirects are never followed, TLS peers and host names are always
 * verified, and every resolved address is checked against the SSRF guard at
 * connect time, so a host name that resolves to a private address is refused
 * just as an address literal would be at add_endpoint().
 *
 * IDENTIFICATION
 *	  src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <curl/curl.h>

#include "connector.h"

/* Bytes of a response body read before the rest is ignored. */
#define MAX_RESPONSE_BYTES (64 * 1024)

static CURLM *multi = NULL;
static int	in_flight = 0;

/*
 * The settings the pooled connections were opened under.  A kept-alive
 * connection never passes the connect-time SSRF check again, so once
 * connector.allow_private_targets or connector.ca_file changes, no request
 * may reuse one: they are closed as soon as nothing is in flight.
 */
static bool pool_allow_private = false;
static char *pool_ca_file = NULL;

static bool
PoolSettingsChanged(void)
{
	const char *ca = connector_ca_file ? connector_ca_file : "";

	return pool_allow_private != connector_allow_private_targets ||
		pool_ca_file == NULL || strcmp(pool_ca_file, ca) != 0;
}

/* Close every pooled connection and remember the settings of new ones. */
static void
ResetPool(void)
{
	if (multi != NULL)
		curl_multi_cleanup(multi);
	multi = curl_multi_init();
	if (multi == NULL)
		elog(ERROR, "could not create a libcurl multi handle");
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) connector_max_in_flight);
	pool_allow_private = connector_allow_private_targets;
	if (pool_ca_file)
		free(pool_ca_file);
	pool_ca_file = strdup(connector_ca_file ? connector_ca_file : "");
}

/* Initialise libcurl and the multi handle; once per worker. */
void
HttpInit(void)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		elog(ERROR, "could not initialize libcurl");
	ResetPool();
}

/* Is this IPv4 address (host order) loopback, private, link-local or the like? */
static bool
PrivateIPv4(uint32 a)
{
	return (a >> 24) == 0 ||	/* 0.0.0.0/8 */
		(a >> 24) == 10 ||		/* 10/8 */
		(a >> 24) == 127 ||		/* loopback */
		(a >> 16) == 0xA9FE ||	/* 169.254/16 link-local */
		(a >> 20) == 0xAC1 ||	/* 172.16/12 */
		(a >> 16) == 0xC0A8 ||	/* 192.168/16 */
		(a >> 22) == (100 << 2 | 1) ||	/* 100.64/10 shared (CGNAT) */
		(a >> 28) >= 0xE;		/* multicast and reserved */
}

/* The SSRF guard on a resolved address. */
static bool
AddressAllowed(const struct sockaddr *sa)
{
	if (connector_allow_private_targets)
		return true;
	if (sa->sa_family == AF_INET)
		return !PrivateIPv4(ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6)
	{
		const unsigned char *b = ((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;
		static const unsigned char zero[10] = {0};

		if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff)
			return !PrivateIPv4(((uint32) b[12] << 24) | (b[13] << 16) | (b[14] << 8) | b[15]);
		if (IN6_IS_ADDR_LOOPBACK((const struct in6_addr *) b) ||
			IN6_IS_ADDR_UNSPECIFIED((const struct in6_addr *) b) ||
			(b[0] & 0xfe) == 0xfc ||	/* fc00::/7 unique local */
			(b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||	/* fe80::/10 link-local */
			b[0] == 0xff)		/* multicast */
			return false;
		return true;
	}
	return false;
}

/*
 * CURLOPT_OPENSOCKETFUNCTION: refuse guarded addresses at connect time, and
 * say why in the request's error (curl itself only says it could not
 * connect).
 */
static curl_socket_t
OpenSocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	HttpRequest *req = (HttpRequest *) clientp;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (!AddressAllowed(&address->addr))
	{
		char		host[INET6_ADDRSTRLEN] = "?";

		if (address->addr.sa_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *) &address->addr)->sin_addr,
					  host, sizeof(host));
		else if (address->addr.sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &address->addr)->sin6_addr,
					  host, sizeof(host));
		snprintf(req->error, sizeof(req->error),
				 "refused by the SSRF guard: address %s is loopback, private or link-local "
				 "(connector.allow_private_targets is off)", host);
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

/* CURLOPT_WRITEFUNCTION: count and drop the response body, up to a cap. */
static size_t
DiscardBody(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpRequest *req = (HttpRequest *) userdata;

	req->received += size * nmemb;
	if (req->received > MAX_RESPONSE_BYTES)
		return 0;				/* stop reading; the status is already known */
	return size * nmemb;
}

/* Append "name: value" to a header list. */
struct curl_slist *
HttpAddHeader(struct curl_slist *list, const char *name, const char *value)
{
	char	   *line = psprintf("%s: %s", name, value);
	struct curl_slist *l = curl_slist_append(list, line);

	pfree(line);
	if (l == NULL)
		elog(ERROR, "out of memory building HTTP headers");
	return l;
}

void
HttpFreeHeaders(struct curl_slist *list)
{
	curl_slist_free_all(list);
}

/* Start a POST of req->body to req->url. */
void
HttpStart(HttpRequest *req)
{
	CURL	   *easy = curl_easy_init();

	if (easy == NULL)
		elog(ERROR, "could not create a libcurl handle");
	if (PoolSettingsChanged())
	{
		if (in_flight == 0)
			ResetPool();
		else
		{
			/* old connections are closed once the requests using them end */
			curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
			curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
		}
	}
	req->status = 0;
	req->error[0] = '\0';
	req->retry_after_ms = 0;
	req->received = 0;
	req->easy = easy;

	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->bodylen);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "connector/" CONNECTOR_VERSION);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, Min(req->timeout_ms, 10000L));
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR,
					 connector_allow_private_targets ? "http,https" : "https");
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (connector_ca_file && connector_ca_file[0])
		curl_easy_setopt(easy, CURLOPT_CAINFO, connector_ca_file);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, OpenSocket);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, req);
	req->detail[0] = '\0';
	StaticAssertStmt(sizeof(req->detail) >= CURL_ERROR_SIZE, "detail is too small");
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->detail);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, DiscardBody);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, req);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);

	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
		elog(ERROR, "could not start an HTTP request");
	in_flight++;
}

int
HttpInFlight(void)
{
	return in_flight;
}

/*
 * Drive transfers for up to timeout_ms and return the requests that
 * finished (a List of HttpRequest *), with status, error and Retry-After.
 */
List *
HttpWait(long timeout_ms)
{
	List	   *done = NIL;
	int			running;
	int			numfds;
	CURLMsg    *msg;
	int			left;

	curl_multi_perform(multi, &running);
	if (running > 0)
	{
		curl_multi_poll(multi, NULL, 0, (int) timeout_ms, &numfds);
		curl_multi_perform(multi, &running);
	}

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		HttpRequest *req;
		CURL	   *easy = msg->easy_handle;
		long		code = 0;
		curl_off_t	retry_after = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &req);
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after);
		req->status = code;
		req->retry_after_ms = retry_after > 0 ? (long) Min(retry_after, 3600) * 1000 : 0;
		/* a body we stopped reading on purpose still has its status */
		if (msg->data.result != CURLE_OK &&
			!(msg->data.result == CURLE_WRITE_ERROR && code > 0))
		{
			req->status = 0;
			/*
			 * keep the SSRF guard's reason; otherwise curl's detailed message
			 * (which certificate check failed, which host), or its summary
			 */
			if (req->error[0] == '\0')
				strlcpy(req->error, req->detail[0] ? req->detail :
						curl_easy_strerror(msg->data.result), sizeof(req->error));
		}
		else
			req->error[0] = '\0';
		curl_multi_remove_handle(multi, easy);
		curl_easy_cleanup(easy);
		req->easy = NULL;
		in_flight--;
		done = lappend(done, req);
	}
	return done;
}
