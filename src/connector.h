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
} ConnectorOrigin;

extern void ConnectorOriginInit(void);
extern const ConnectorOrigin *ConnectorCurrentOrigin(void);

/* in capture.c */
extern void ConnectorCaptureInit(void);

#endif							/* CONNECTOR_H */
