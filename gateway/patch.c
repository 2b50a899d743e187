/*
 * patch.c
 *	  PATCH operations (in progress).
 *
 * IDENTIFICATION
 *	  gateway/patch.c
 */
#include "gateway.h"
