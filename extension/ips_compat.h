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

/*
 * The ledger (ledger_writer.c, ledger_legacy.c): executor and index-scan
 * calls whose signatures change between majors.
 */
#if PG_VERSION_NUM >= 180000
#define IpsExecInitRangeTable(estate, rtable) ExecInitRangeTable((estate), (rtable), NIL, NULL)
#elif PG_VERSION_NUM >= 160000
#define IpsExecInitRangeTable(estate, rtable) ExecInitRangeTable((estate), (rtable), NIL)
#else
#define IpsExecInitRangeTable(estate, rtable) ExecInitRangeTable((estate), (rtable))
#endif
#if PG_VERSION_NUM >= 160000
#define IpsExecInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#else
#define IpsExecInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#endif
#if PG_VERSION_NUM >= 180000
#define IpsIndexBeginScan(heap, index, snap, nkeys, norderbys) \
	index_beginscan((heap), (index), (snap), NULL, (nkeys), (norderbys))
#else
#define IpsIndexBeginScan(heap, index, snap, nkeys, norderbys) \
	index_beginscan((heap), (index), (snap), (nkeys), (norderbys))
#endif
#if PG_VERSION_NUM >= 170000
#define IpsRelationGetPrimaryKeyIndex(rel) RelationGetPrimaryKeyIndex((rel), false)
#else
#define IpsRelationGetPrimaryKeyIndex(rel) RelationGetPrimaryKeyIndex(rel)
#endif

#endif							/* IPS_COMPAT_H */
