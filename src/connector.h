/*-------------------------------------------------------------------------
 *
 * connector.h
 *	  Shared declarations of the connector extension.
 *
 * IDENTIFICATION
 *	  src/connector.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CONNECTOR_H
#define CONNECTOR_H

#include "postgres.h"

#include "nodes/pg_list.h"

#define CONNECTOR_VERSION "0.1"

/* in connector.c */
extern char *connector_databases;
extern int	connector_naptime_ms;
extern int	connector_max_in_flight;
extern int	connector_http_timeout_ms;
extern int	connector_retry_base_ms;
extern int	connector_retry_max_ms;
extern int	connector_max_attempts;
extern int	connector_retention_s;
extern bool connector_allow_private_targets;
extern char *connector_ca_file;
extern bool connector_preloaded;

/* in origin.c */
typedef struct ConnectorOrigin
{
	bool		active;			/* a platform-side call is running */
	char		via[16];		/* platform, reconcile, expiry, offboard */
	char	   *operation;		/* in TopMemoryContext while active */
	char	   *request_id;		/* may be NULL */
	Oid			caller;			/* role that called the API */
	uint64		generation;		/* distinct for every mark ever set */
} ConnectorOrigin;

extern void ConnectorOriginInit(void);
extern const ConnectorOrigin *ConnectorCurrentOrigin(void);
extern bool ConnectorOriginStatementBegin(void);
extern void ConnectorOriginStatementEnd(void);
extern const char *ConnectorOriginClient(uint64 *generation);
extern const char *ConnectorOriginClientApp(void);

/* in owner.c */
typedef struct ConnectorSavedRole
{
	Oid			userid;
	int			sec;
	int			nestlevel;
} ConnectorSavedRole;

extern void ConnectorActAs(Oid role, ConnectorSavedRole *save);
extern void ConnectorActAsEnd(ConnectorSavedRole *save);

/* in capture.c */
extern void ConnectorCaptureInit(void);

/* in logfilter.c */
extern void ConnectorLogFilterInit(void);

/* in sign.c */
struct StringInfoData;
extern void ConnectorAppendSignature(struct StringInfoData *buf, const char *msgid,
									 int64 timestamp, const char *body, size_t bodylen,
									 const unsigned char *key, size_t keylen);

/* in jose.c */
#define JOSE_KID_MAXLEN 64

typedef enum JoseAlg
{
	JOSE_RS256,
	JOSE_ES256
} JoseAlg;

extern const char *JoseAlgName(JoseAlg alg);
extern bool JoseAlgFromName(const char *name, JoseAlg *alg);
extern void JoseAppendBase64Url(struct StringInfoData *buf, const unsigned char *data,
								size_t len);
extern void JoseAppendJws(struct StringInfoData *out, const char *kid, JoseAlg alg,
						  const char *payload, size_t payloadlen);

/* in dispatcher.c */
extern void ConnectorDispatcherInit(void);
extern void ConnectorNoteEventsWritten(void);
extern bool ConnectorNamesGeneration(uint64 *gen);
extern void ConnectorNamesChanged(void);
extern PGDLLEXPORT void ConnectorLauncherMain(Datum arg);
extern PGDLLEXPORT void ConnectorWorkerMain(Datum arg);

/* in http.c */
typedef struct HttpRequest
{
	/* set by the caller */
	char	   *url;
	char	   *body;
	size_t		bodylen;
	struct curl_slist *headers;
	long		timeout_ms;
	void	   *owner;			/* caller's bookkeeping */
	bool		keep_body;		/* keep the start of the response body */
	/* set when done */
	long		status;			/* HTTP status, 0 when none was received */
	char		error[256];		/* empty on success */
	long		retry_after_ms; /* from Retry-After, 0 when absent */
	char		body_head[1024];	/* with keep_body: the body's first bytes */
	size_t		body_head_len;
	/* private */
	void	   *easy;
	size_t		received;
	char		detail[256];	/* libcurl's own message (CURL_ERROR_SIZE) */
} HttpRequest;

extern void HttpInit(void);
extern void HttpStart(HttpRequest *req);
extern int	HttpInFlight(void);
extern List *HttpWait(long timeout_ms);
extern struct curl_slist *HttpAddHeader(struct curl_slist *list, const char *name,
										const char *value);
extern void HttpFreeHeaders(struct curl_slist *list);

/* in webhook_json.c */
extern struct curl_slist *WebhookExtraHeaders(struct curl_slist *list, const char *json);
extern char *SetErrorText(const char *body, size_t len);

#endif							/* CONNECTOR_H */
