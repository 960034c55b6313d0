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

#endif							/* IPS_COMPAT_H */
