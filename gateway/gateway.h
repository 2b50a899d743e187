/*-------------------------------------------------------------------------
 *
 * gateway.h
 *	  Shared declarations of connector-gateway, the SCIM 2.0 service
 *	  provider that turns SCIM requests into calls of the connector SQL API.
 *
 * IDENTIFICATION
 *	  gateway/gateway.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CONNECTOR_GATEWAY_H
#define CONNECTOR_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#include <jansson.h>
#include <libpq-fe.h>

#define GW_MAX_BODY			(1024 * 1024)	/* request bodies above: 413 */
#define GW_IO_TIMEOUT		10	/* seconds a client may stall */
#define GW_FILTER_DEPTH		64	/* nesting limit of filters and paths */
#define GW_JSON_DEPTH		64	/* nesting limit of request bodies */
#define GW_MAX_COUNT		1000
#define GW_DEFAULT_COUNT	100

#define SCIM_USER		"urn:ietf:params:scim:schemas:core:2.0:User"
#define SCIM_GROUP		"urn:ietf:params:scim:schemas:core:2.0:Group"
#define SCIM_ENTERPRISE "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define SCIM_LIST		"urn:ietf:params:scim:api:messages:2.0:ListResponse"
#define SCIM_ERROR		"urn:ietf:params:scim:api:messages:2.0:Error"
#define SCIM_PATCHOP	"urn:ietf:params:scim:api:messages:2.0:PatchOp"

/* in main.c */
typedef struct GwConfig
{
	char	   *listen;			/* ADDR:PORT */
	char	   *database;		/* libpq conninfo */
	char	   *tls_cert;
	char	   *tls_key;
	int			pool;
	bool		insecure_http;
} GwConfig;

extern GwConfig gw_config;
extern void gw_log(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* in db.c */
typedef struct DbError
{
	char		sqlstate[6];
	char	   *message;		/* malloc'd, may be NULL */
	char	   *detail;
	char	   *hint;
	int			index;			/* which query of the batch failed */
} DbError;

typedef struct DbQuery
{
	const char *sql;
	int			nparams;
	const char *params[8];
} DbQuery;

typedef struct DbConn DbConn;

extern bool db_pool_init(const char *conninfo, int size);
extern void db_pool_close(void);
extern DbConn *db_acquire(DbError *err);
extern void db_release(DbConn *c);
extern bool db_run(DbConn *c, const DbQuery *q, int n, PGresult **res, DbError *err);
extern bool db_ping(void);
extern void db_error_clear(DbError *err);
extern int	db_http_status(const DbError *err, bool filter_call, const char **scim_type);

/* in http.c */
extern bool http_start(void);
extern void http_quiesce(void);
extern void http_stop(void);
extern int	http_inflight(void);
extern bool http_reload_cert(void);
struct MHD_Connection;
extern const char *gw_scheme(struct MHD_Connection *conn);

/* in filter.c: the RFC 7644 filter grammar */
typedef enum FKind
{
	F_AND, F_OR, F_NOT, F_CMP, F_VALPATH
} FKind;

/*
 * A parsed filter.  CMP: schema/attr/sub op value.  VALPATH: attr[inner]
 * optionally followed by .sub and op value (op empty: "some element
 * matches").  AND/OR keep their operands in an array, so long chains need
 * no deep recursion.
 */
typedef struct FNode
{
	FKind		kind;
	struct FNode **kids;		/* AND/OR operands; NOT: kids[0] */
	int			nkids;
	struct FNode *inner;		/* VALPATH: the filter inside brackets */
	char	   *schema;			/* URN prefix as written, or NULL */
	char	   *attr;			/* attribute name as written */
	char	   *sub;			/* sub-attribute or NULL */
	char		op[3];			/* eq ne co sw ew gt ge lt le pr, or "" */
	json_t	   *value;			/* comparison value (NULL for pr) */
} FNode;

typedef struct ScimPath
{
	char	   *schema;			/* URN written before the attribute, or NULL */
	char	   *attr;			/* attribute name as written, or NULL for the URN alone */
	FNode	   *filter;			/* [valFilter] or NULL */
	char	   *sub;			/* sub-attribute or NULL */
} ScimPath;

extern FNode *filter_parse(const char *text, char **errmsg);
extern void filter_free(FNode *n);
extern bool filter_match(const FNode *n, json_t *elem);
extern json_t *filter_to_ast(const FNode *n, bool users, json_t *mapping, char **errmsg);
extern ScimPath *path_parse(const char *text, char **errmsg);
extern void path_free(ScimPath *p);
extern const char *schema_canonical(const char *parent, const char *name, bool users);
extern json_t *attr_get(json_t *obj, const char *name);

/* in patch.c */
extern int	patch_apply(json_t *res, json_t *body, bool users, const char **scim_type, char **detail);
extern int	patch_put(json_t *res, json_t *body, bool users, const char **scim_type, char **detail);
extern json_t *patch_canon_resource(json_t *body, bool users);
extern int	patch_check(json_t *res, json_t *old, bool users, const char **scim_type, char **detail);

/* in scim.c */
typedef struct ScimRequest
{
	const char *method;
	const char *path;			/* URL path after /scim/v2/ */
	const char *body;
	size_t		body_len;
	const char *content_type;
	const char *token;			/* NULL when absent */
	const char *if_match;
	const char *base_url;		/* scheme://host */
	/* query arguments */
	const char *filter;
	const char *start_index;
	const char *count;
	const char *cursor;
	const char *attributes;
	const char *excluded;
} ScimRequest;

typedef struct ScimResponse
{
	int			status;
	char	   *body;			/* malloc'd */
	char	   *location;
	char	   *etag;
	bool		www_authenticate;
	int			retry_after;
	char		token_name[201];
	const char *content_type;	/* NULL: application/scim+json */
} ScimResponse;

extern void scim_handle(const ScimRequest *req, ScimResponse *resp);
extern void scim_error(ScimResponse *resp, int status, const char *scim_type, const char *detail);
extern void scim_response_free(ScimResponse *resp);

/* in ssf.c: the Shared Signals transmitter endpoints (spec section 12) */
struct MHD_Connection;
extern bool ssf_route(const char *url);
extern void ssf_handle(struct MHD_Connection *conn, const char *url, const char *method,
					   const char *body, size_t body_len, ScimResponse *resp);

#endif							/* CONNECTOR_GATEWAY_H */
