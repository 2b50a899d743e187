/*
 * filter.c
 *	  RFC 7644 filter grammar (in progress).
 *
 * IDENTIFICATION
 *	  gateway/filter.c
 */
#include "gateway.h"
