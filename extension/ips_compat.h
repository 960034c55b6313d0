/*
 * ips_compat.h: every difference between the PostgreSQL majors ips builds on
 * (15, 16, 17, 18), behind PG_VERSION_NUM, in this one place.  C files call the
 * names defined here instead of the version-specific ones.
 *
 * Tested: 15 (Debian 12), 17 (Debian 13), 18 (Debian sid).  16 is in no
 * Debian release: its branches below follow its headers' documented
 * signatures and are compiled by nobody here (untested).
 *
 * Where a public API that does not change between majors does the job (for
 * example systable_beginscan() instead of index_beginscan(), DecodeTimezoneName()
 * instead of the abbreviation table), the C files use it and nothing is needed
 * here.  Append new blocks at the bottom, each with a comment naming its user.
 */
#ifndef IPS_COMPAT_H
#define IPS_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "ips needs PostgreSQL 15 or later"
#endif

/*
 * The local transaction id of this backend's current transaction (ips.c,
 * cache.c; callers include storage/proc.h).  17 moved it into PGPROC.vxid.
 */
#if PG_VERSION_NUM >= 170000
#define IpsMyLocalTransactionId() (MyProc->vxid.lxid)
#else
#define IpsMyLocalTransactionId() (MyProc->lxid)
#endif

/*
 * The zone a time zone name denotes when it is a full zone name
 * (Europe/Helsinki), or NULL when it is a time zone abbreviation (EET, UTC),
 * a fixed offset or unknown: those are left to timestamptz_zone(), which
 * raises the errors (ips.c, IpsLocalDate).  16 added DecodeTimezoneName(),
 * the lookup AT TIME ZONE itself does, and changed DecodeTimezoneAbbrev().
 */
#include "pgtime.h"
#include "utils/datetime.h"
#if PG_VERSION_NUM >= 170000
static inline pg_tz *
IpsZoneByName(const char *tzname)
{
	int			offset;
	pg_tz	   *tz;

	/* raises "time zone ... not recognized" as AT TIME ZONE does */
	if (DecodeTimezoneName(tzname, &offset, &tz) == TZNAME_ZONE)
		return tz;
	return NULL;
}
#else
#include "parser/scansup.h"
static inline pg_tz *
IpsZoneByName(const char *tzname)
{
	char	   *lower;
	int			type,
				offset;
	pg_tz	   *abbrev_tz;

	if (strlen(tzname) > TZ_STRLEN_MAX)
		return NULL;
	lower = downcase_truncate_identifier(tzname, strlen(tzname), false);
#if PG_VERSION_NUM >= 160000
	{
		DateTimeErrorExtra extra;

		if (DecodeTimezoneAbbrev(0, lower, &type, &offset, &abbrev_tz, &extra) != 0)
			return NULL;
	}
#else
	type = DecodeTimezoneAbbrev(0, lower, &offset, &abbrev_tz);
#endif
	if (type == TZ || type == DTZ || type == DYNTZ)
		return NULL;
	return pg_tzset(tzname);
}
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
 *  - ExecInitRangeTable: 16 added the permission infos (one per relation,
 *    below), 18 the relations left after pruning (all of them);
 *  - ExecInsertIndexTuples: 16 added onlySummarizing (false: every index);
 *  - index_beginscan: 18 added the instrumentation (NULL: none);
 *  - RelationGetPrimaryKeyIndex: 18 (not 17) added deferrable_ok (the logs'
 *    keys are not deferrable).
 * systable_beginscan_ordered() does an ordered index scan through an API that
 * has not changed since 15, where it fits.
 */
#if PG_VERSION_NUM >= 160000
#include "executor/executor.h"
#include "parser/parse_relation.h"
/*
 * From 16 on, an executor state needs the permission info of each relation
 * of its range table: an error report of a failed check (ExecConstraints)
 * looks up the inserted columns there ("invalid perminfoindex 0" without it).
 * ips checks no permissions through it (it calls no ExecCheckPermissions).
 */
static inline void
IpsExecInitRangeTable(EState *estate, List *rtable)
{
	List	   *perminfos = NIL;
	ListCell   *lc;

	foreach(lc, rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION && rte->perminfoindex == 0)
			(void) addRTEPermissionInfo(&perminfos, rte);
	}
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, rtable, perminfos, bms_add_range(NULL, 1, list_length(rtable)));
#else
	ExecInitRangeTable(estate, rtable, perminfos);
#endif
}
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
#define IpsRelationGetPrimaryKeyIndex(rel) RelationGetPrimaryKeyIndex((rel), false)
#else
#define IpsIndexBeginScan(heap, index, snap, nkeys, norderbys) \
	index_beginscan((heap), (index), (snap), (nkeys), (norderbys))
#define IpsRelationGetPrimaryKeyIndex(rel) RelationGetPrimaryKeyIndex(rel)
#endif

#endif							/* IPS_COMPAT_H */
