/*
 * staff_days.c
 *		ips_staff_day_guard: the BEFORE INSERT OR UPDATE trigger on the records
 *		a staff member makes in their own name (contacts, employer contacts,
 *		team meetings).  The record's day lies within the person's days on the
 *		team: on or after ips.staff.started_on and before ips.staff.ended_on
 *		(the first day no longer on the team).  A table with a column team_id
 *		(ips.team_meeting) also names the person's own team.
 *
 *		Trigger argument 0 names the dating column: a date, or a timestamptz
 *		compared with the instants the days begin in the region's time zone
 *		(as ips.local_midnight), so that a contact at 00:30 local time on the
 *		first day off the team is refused whatever the session's time zone.
 *
 *		The check is on the hot path of contact inserts: the period of each
 *		staff member is kept in a hash table for the backend.  In a
 *		read-committed transaction an entry is kept across transactions
 *		until ips.staff changes: every change to it fires the statement
 *		trigger staff_changed (ips.staff_changed(), ENABLE ALWAYS), whose
 *		relcache invalidation reaches every session as the settings' does
 *		(lookup.c, docs/ledger.md "Speed"); such an entry is read with a
 *		fresh snapshot and kept only when no invalidation arrived meanwhile.
 *		A change to ips.setting (the region's time zone, which places the
 *		days' midnights) drops the entries as well.  In a repeatable-read or
 *		serializable transaction, or while the trigger is missing or
 *		disabled, an entry holds for one snapshot only (a COPY still reads
 *		each person once).  The staff row is read directly, whatever the
 *		caller's rights on ips.staff, as a foreign-key check reads it: every
 *		role that records contacts reads the staff list anyway.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "ips.h"

/* The days on the team of one staff member, as the snapshot of gen sees them. */
typedef struct StaffDays
{
	int64		staff_id;		/* hash key */
	uint32		gen;			/* cache generation; 0: stale */
	bool		kept;			/* kept across transactions (gen: staff_kept_gen) */
	bool		found;
	bool		has_start;
	bool		has_end;
	bool		has_instants;	/* start_at / end_at computed */
	DateADT		start_on;
	DateADT		end_on;
	TimestampTz start_at;		/* local midnight of start_on */
	TimestampTz end_at;			/* local midnight of end_on */
	int64		team_id;
} StaffDays;

/* entries kept at most (a region has a few thousand staff); more: the table starts again */
#define STAFF_DAYS_MAX 100000

static HTAB *staff_days = NULL;
static IpsSnapshotKey staff_days_key;
static uint32 staff_days_gen = 0;

/* Entries kept across transactions: valid while staff_kept_gen is theirs. */
static uint32 staff_kept_gen = 1;
static Oid	staff_relid = InvalidOid;	/* ips.staff and ips.setting when entries were kept */
static Oid	staff_setting_relid = InvalidOid;
static bool staff_callback = false;
static uint32 staff_untriggered_gen = 0;	/* staff_kept_gen when the trigger was found missing */

/* Relcache callback: a change to ips.staff or ips.setting (or to everything) drops the kept entries. */
static void
StaffKeptInval(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != staff_relid && relid != staff_setting_relid)
		return;
	if (++staff_kept_gen == 0)
		staff_kept_gen = 1;
}

/* Fills s from a staff row (or marks it not found). */
static void
StaffFromRow(StaffDays *s, HeapTuple tup, TupleDesc td)
{
	bool		isnull;

	s->found = HeapTupleIsValid(tup);
	s->has_instants = false;
	if (!s->found)
		return;
	s->start_on = DatumGetDateADT(IpsGetColumn(tup, td, "started_on", &isnull));
	s->has_start = !isnull;
	s->end_on = DatumGetDateADT(IpsGetColumn(tup, td, "ended_on", &isnull));
	s->has_end = !isnull;
	s->team_id = DatumGetInt64(IpsGetColumn(tup, td, "team_id", &isnull));
}

/*
 * Reads s to keep across transactions (see the top of the file): true when
 * it was read (s filled; kept when no invalidation came meanwhile); false
 * when it cannot be kept (the trigger is missing or disabled): the caller
 * reads it with its snapshot.
 */
static bool
ReadStaffKept(StaffDays *s, int64 staff_id)
{
	Oid			relid = IpsRelid("staff");
	Oid			indexid = IpsRelid("staff_pkey");
	Oid			setting_relid = IpsRelid("setting");
	Relation	rel;
	Relation	irel;
	Snapshot	snap;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	uint32		gen;

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		return false;
	/* the trigger was missing and ips.staff has not changed since (enabling it invalidates) */
	if (staff_untriggered_gen == staff_kept_gen && staff_relid == relid)
		return false;
	/* locks first (they take in pending invalidations), then the generation, then the snapshot */
	rel = table_open(relid, AccessShareLock);
	if (staff_relid != relid || staff_setting_relid != setting_relid)
	{
		StaffKeptInval((Datum) 0, InvalidOid);
		staff_relid = relid;
		staff_setting_relid = setting_relid;
	}
	if (!IpsKeptTriggerPresent(rel, "staff_changed"))
	{
		staff_untriggered_gen = staff_kept_gen;
		table_close(rel, AccessShareLock);
		return false;
	}
	irel = index_open(indexid, AccessShareLock);
	gen = staff_kept_gen;
	s->gen = 0;
	s->kept = false;
	snap = RegisterSnapshot(GetLatestSnapshot());
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(staff_id));
	key.sk_collation = irel->rd_indcollation[0];
	key.sk_attno = irel->rd_index->indkey.values[0];
	scan = systable_beginscan(rel, indexid, true, snap, 1, &key);
	tup = systable_getnext(scan);
	StaffFromRow(s, tup, RelationGetDescr(rel));
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	index_close(irel, AccessShareLock);
	table_close(rel, AccessShareLock);
	if (gen == staff_kept_gen)
	{
		s->kept = true;
		s->gen = gen;
	}
	return true;
}

/* Columns of the guarded table, once per trigger (fn_extra). */
typedef struct StaffDayColumns
{
	Oid			relid;
	int			staff_col;
	int			date_col;
	Oid			date_type;
	int			team_col;		/* or <= 0 */
} StaffDayColumns;

/* Text of a date, for messages. */
static char *
StaffDateText(bool has, DateADT d, const char *none)
{
	return has ? DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d))) : pstrdup(none);
}

/* The instant a day begins in the region's time zone (ips.local_midnight). */
static TimestampTz
LocalMidnight(DateADT day, const char *tz)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone, CStringGetTextDatum(tz),
												   DirectFunctionCall1(date_timestamp, DateADTGetDatum(day))));
}

/* The days on the team of a staff member as the active snapshot sees them (cached per snapshot). */
static StaffDays *
LookUpStaffDays(int64 staff_id)
{
	StaffDays  *s;
	ScanKeyData key;
	HeapTuple	tup;
	TupleDesc	td;
	bool		keep;
	bool		found;

	if (staff_days == NULL || hash_get_num_entries(staff_days) >= STAFF_DAYS_MAX)
	{
		HASHCTL		ctl;

		if (staff_days != NULL)
			hash_destroy(staff_days);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(StaffDays);
		ctl.hcxt = TopMemoryContext;
		staff_days = hash_create("ips staff days", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (!staff_callback)
	{
		IpsRegisterRelcacheCallback(StaffKeptInval);
		staff_callback = true;
	}
	s = hash_search(staff_days, &staff_id, HASH_ENTER, &found);
	if (!found)
	{
		s->gen = 0;
		s->kept = false;
	}
	if (!IsolationUsesXactSnapshot())
	{
		/* read committed: kept across transactions until ips.staff or ips.setting changes */
		if (s->kept && s->gen == staff_kept_gen)
			return s;
		if (ReadStaffKept(s, staff_id))
			return s;
	}

	if (!IpsSameSnapshot(&staff_days_key))
	{
		/* another snapshot: every entry of the last one is stale */
		if (++staff_days_gen == 0)
			staff_days_gen = 1;
	}
	if (!s->kept && staff_days_key.valid && s->gen == staff_days_gen)
		return s;

	/* the key holds only once the row is read (an error on the way leaves it invalid) */
	keep = staff_days_key.valid;
	staff_days_key.valid = false;
	s->gen = 0;
	s->kept = false;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(staff_id));
	tup = IpsFetchByIndex("staff", "staff_pkey", 1, &key, &td);
	StaffFromRow(s, tup, td);
	if (tup)
		heap_freetuple(tup);
	FreeTupleDesc(td);
	if (keep)
		s->gen = staff_days_gen;
	staff_days_key.valid = keep;
	return s;
}

PG_FUNCTION_INFO_V1(ips_staff_day_guard);
/* BEFORE INSERT OR UPDATE trigger: a record in a staff member's name lies within their days on the team. */
Datum
ips_staff_day_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	td;
	HeapTuple	tup;
	StaffDayColumns *cols;
	Datum		v;
	bool		isnull;
	int64		staff_id;
	StaffDays  *s;
	bool		before,
				after;
	DateADT		day;
	char	   *tz = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || trigdata->tg_trigger->tgnargs != 1)
		elog(ERROR, "ips_staff_day_guard must be a BEFORE ROW trigger with the dating column as argument");
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);
	tup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	if (ips_restoring)
		return PointerGetDatum(tup);

	rel = trigdata->tg_relation;
	td = rel->rd_att;
	cols = (StaffDayColumns *) fcinfo->flinfo->fn_extra;
	if (cols == NULL || cols->relid != RelationGetRelid(rel))
	{
		cols = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(StaffDayColumns));
		cols->relid = RelationGetRelid(rel);
		cols->staff_col = SPI_fnumber(td, "staff_id");
		cols->date_col = SPI_fnumber(td, trigdata->tg_trigger->tgargs[0]);
		cols->team_col = SPI_fnumber(td, "team_id");
		if (cols->staff_col <= 0 || cols->date_col <= 0)
			elog(ERROR, "ips_staff_day_guard: table %s lacks staff_id or %s",
				 RelationGetRelationName(rel), trigdata->tg_trigger->tgargs[0]);
		cols->date_type = TupleDescAttr(td, cols->date_col - 1)->atttypid;
		if (cols->date_type != DATEOID && cols->date_type != TIMESTAMPTZOID)
			elog(ERROR, "ips_staff_day_guard: the dating column must be date or timestamptz");
		fcinfo->flinfo->fn_extra = cols;
	}

	/* NULLs are for the NOT NULL constraints and the bounds (22004) to refuse */
	v = SPI_getbinval(tup, td, cols->staff_col, &isnull);
	if (isnull)
		return PointerGetDatum(tup);
	staff_id = DatumGetInt64(v);
	s = LookUpStaffDays(staff_id);
	if (!s->found)
		return PointerGetDatum(tup);	/* the foreign key answers */

	if (cols->team_col > 0)
	{
		Datum		t = SPI_getbinval(tup, td, cols->team_col, &isnull);

		if (!isnull && DatumGetInt64(t) != s->team_id)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("staff member %lld belongs to team %lld, not to team %lld",
							(long long) staff_id, (long long) s->team_id, (long long) DatumGetInt64(t)),
					 errhint("A row of ips.%s names the person's own team.", RelationGetRelationName(rel))));
	}
	if (!s->has_start && !s->has_end)
		return PointerGetDatum(tup);

	v = SPI_getbinval(tup, td, cols->date_col, &isnull);
	if (isnull)
		return PointerGetDatum(tup);
	if (cols->date_type == DATEOID)
	{
		day = DatumGetDateADT(v);
		before = s->has_start && day < s->start_on;
		after = s->has_end && day >= s->end_on;
	}
	else
	{
		TimestampTz at = DatumGetTimestampTz(v);

		if (!s->has_instants)
		{
			tz = IpsTimeZone();
			if (s->has_start)
				s->start_at = LocalMidnight(s->start_on, tz);
			if (s->has_end)
				s->end_at = LocalMidnight(s->end_on, tz);
			s->has_instants = true;
		}
		before = s->has_start && at < s->start_at;
		after = s->has_end && at >= s->end_at;
		day = 0;
		if (before || after)
			day = IpsLocalDate(at, tz ? tz : IpsTimeZone());
	}
	if (before || after)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("staff member %lld is not on the team on %s (%s of ips.%s)",
						(long long) staff_id, StaffDateText(true, day, ""),
						trigdata->tg_trigger->tgargs[0], RelationGetRelationName(rel)),
				 errdetail("Staff member %lld is on the team from %s to %s (ended_on is the first day off the team).",
						   (long long) staff_id, StaffDateText(s->has_start, s->start_on, "the start of the records"),
						   StaffDateText(s->has_end, s->end_on - 1, "now")),
				 errhint("Record it in the name of the staff member who made it, on a day they were on the team.")));
	return PointerGetDatum(tup);
}

PG_FUNCTION_INFO_V1(ips_staff_changed);
/* AFTER STATEMENT trigger on ips.staff: every session drops the staff days it keeps. */
Datum
ips_staff_changed(PG_FUNCTION_ARGS)
{
	return IpsAnnounceKeptTableChange(fcinfo, "ips_staff_changed");
}
