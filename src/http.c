/*-------------------------------------------------------------------------
 *
 * http.c
 *	  Webhook HTTP requests over the libcurl multi interface.
 *
 * One multi handle per worker keeps connections alive between requests.
 * Redirects are never followed, TLS peers and host names are always
 * verified, and every resolved address is checked against the SSRF guard at
 * connect time, so a host name that resolves to a private address is refused
 * just as an address literal would be at add_endpoint().  No proxy is ever
 * used, so the address checked is the target's.
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

/*
 * The SSRF guard's ranges.  They are those of _private_range() in
 * sql/parts/60_endpoints.sql, which add_endpoint() applies to address
 * literals: change both together.  This copy is the one that protects, since
 * it judges the addresses a host name resolves to when the connection is
 * opened (DNS rebinding included).
 *
 * IPv4: the special-purpose ranges of RFC 6890 and the IANA registry that are
 * not globally reachable, documentation and benchmarking included.
 */
typedef struct GuardedIPv4
{
	uint32		net;			/* host order */
	int			bits;
} GuardedIPv4;

static const GuardedIPv4 guarded_ipv4[] = {
	{0x00000000, 8},			/* 0/8 this network */
	{0x0A000000, 8},			/* 10/8 private */
	{0x64400000, 10},			/* 100.64/10 shared address space (CGNAT) */
	{0x7F000000, 8},			/* 127/8 loopback */
	{0xA9FE0000, 16},			/* 169.254/16 link-local */
	{0xAC100000, 12},			/* 172.16/12 private */
	{0xC0000000, 24},			/* 192.0.0/24 IETF protocol assignments */
	{0xC0000200, 24},			/* 192.0.2/24 documentation */
	{0xC0586300, 24},			/* 192.88.99/24 former 6to4 relay anycast */
	{0xC0A80000, 16},			/* 192.168/16 private */
	{0xC6120000, 15},			/* 198.18/15 benchmarking */
	{0xC6336400, 24},			/* 198.51.100/24 documentation */
	{0xCB007100, 24},			/* 203.0.113/24 documentation */
	{0xE0000000, 4},			/* 224/4 multicast */
	{0xF0000000, 4},			/* 240/4 reserved, broadcast */
};

/* May an IPv4 address (host order) be connected to? */
static bool
PublicIPv4(uint32 a)
{
	int			i;

	for (i = 0; i < lengthof(guarded_ipv4); i++)
	{
		int			shift = 32 - guarded_ipv4[i].bits;

		if ((a >> shift) == (guarded_ipv4[i].net >> shift))
			return false;
	}
	return true;
}

/* The IPv4 address (host order) in four bytes of an IPv6 address. */
static uint32
CarriedIPv4(const unsigned char *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) | ((uint32) p[2] << 8) | p[3];
}

/*
 * May an IPv6 address be connected to?  The forms that carry traffic to an
 * IPv4 host are judged by the IPv4 address they carry: IPv4-mapped (a
 * dual-stack socket reaches the IPv4 host itself), NAT64 64:ff9b::/96 and
 * 6to4 2002::/16.  Otherwise only global unicast 2000::/3 is allowed, which
 * leaves out ::/8 (unspecified, loopback, IPv4-compatible, IPv4-translated,
 * local-use NAT64 64:ff9b:1::/48, discard-only 100::/64), unique local,
 * link-local, site-local and multicast; and within it the IETF protocol
 * assignments 2001::/23 (Teredo, benchmarking, ORCHID) and the documentation
 * ranges 2001:db8::/32 and 3fff::/20.
 */
static bool
PublicIPv6(const unsigned char *b)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

	if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
		return PublicIPv4(CarriedIPv4(b + 12));
	if (b[0] == 0x20 && b[1] == 0x02)
		return PublicIPv4(CarriedIPv4(b + 2));
	if ((b[0] & 0xe0) != 0x20)
		return false;
	if (b[0] == 0x20 && b[1] == 0x01 && (b[2] & 0xfe) == 0)
		return false;			/* 2001::/23 */
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return false;			/* 2001:db8::/32 */
	if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0)
		return false;			/* 3fff::/20 */
	return true;
}

/* The SSRF guard on a resolved address. */
static bool
AddressAllowed(const struct sockaddr *sa)
{
	if (connector_allow_private_targets)
		return true;
	if (sa->sa_family == AF_INET)
		return PublicIPv4(ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6)
		return PublicIPv6(((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr);
	return false;
}

/*
 * CURLOPT_OPENSOCKETFUNCTION: refuse guarded addresses at connect time, and
 * say why in the request's error (curl itself only says it could not
 * connect).  The error names no address: it is shown in connector.status
 * and stored with dead letters, and the address a name resolves to inside
 * the server's network is what an SSRF probe wants to learn.
 */
static curl_socket_t
OpenSocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	HttpRequest *req = (HttpRequest *) clientp;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (!AddressAllowed(&address->addr))
	{
		strlcpy(req->error,
				"refused by the SSRF guard: the endpoint's address is not allowed "
				"(loopback, private or reserved range; connector.allow_private_targets is off)",
				sizeof(req->error));
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

/*
 * CURLOPT_WRITEFUNCTION: count and drop the response body, up to a cap;
 * with keep_body, its first bytes are kept (an RFC 8935 error).
 */
static size_t
DiscardBody(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpRequest *req = (HttpRequest *) userdata;

	if (req->keep_body && req->body_head_len < sizeof(req->body_head) - 1)
	{
		size_t		n = Min(size * nmemb, sizeof(req->body_head) - 1 - req->body_head_len);

		memcpy(req->body_head + req->body_head_len, ptr, n);
		req->body_head_len += n;
		req->body_head[req->body_head_len] = '\0';
	}
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
	req->body_head_len = 0;
	req->body_head[0] = '\0';
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

	/*
	 * No proxy, whatever the server's environment says (http_proxy,
	 * https_proxy, all_proxy): through one, the SSRF guard would judge the
	 * proxy's address and the proxy would connect to the target unchecked.
	 */
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
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
