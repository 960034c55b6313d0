/*
 * ips_compat.h: every difference between the PostgreSQL majors ips builds on
 * (15, 16, 17, 18), behind PG_VERSION_NUM, in this one place.  C files call the
 * names defined here instead of the version-specific ones.
 */
#ifndef IPS_COMPAT_H
#define IPS_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "ips needs PostgreSQL 15 or later"
#endif

/*
 * autonomous.c: flags of BackgroundWorkerInitializeConnectionByOid.  From
 * PostgreSQL 17 on, a worker may connect as a role without LOGIN (an extension
 * owner may be one) with BGWORKER_BYPASS_ROLELOGINCHECK; before, it cannot, and
 * the write then fails (the read with it).
 */
#if PG_VERSION_NUM >= 170000
#define IPS_BGW_CONNECT_FLAGS BGWORKER_BYPASS_ROLELOGINCHECK
#else
#define IPS_BGW_CONNECT_FLAGS 0
#endif

#endif							/* IPS_COMPAT_H */
