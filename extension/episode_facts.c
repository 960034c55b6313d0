/*
 * episode_facts.c
 *		ips_fact_guard: the BEFORE trigger on the tables of dated facts about an
 *		episode (contacts, employer contacts, jobs, studies, specialist
 *		assignments).  It takes the client from the episode, so every
 *		person-level row carries its client key, and refuses facts dated
 *		before the referral or after the closure of the episode.
 *
 *		Trigger argument 0 names the column that dates the fact (a date or a
 *		timestamptz, taken as a local day in the region's time zone).  Rows
 *		without an episode (an employer contact that is not on behalf of a
 *		client) pass unchanged.  A table with a column held_at_entry (ips.job)
 *		may date a row before the referral: the trigger sets held_at_entry to
 *		whether it is (a job the client held when the episode began).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "ips.h"

static IpsPlan episode_plan = {NULL,
	"SELECT e.client_id, e.referred_on, e.closed_on,"
	" coalesce((SELECT value FROM ips.setting WHERE name OPERATOR(pg_catalog.=) 'time_zone'), 'Europe/Helsinki')"
	" FROM ips.episode e WHERE e.episode_id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}};

/* The last episode looked up, valid while the snapshot sees the same (facts come grouped by episode). */
static IpsSnapshotKey last_key;
static int64 last_episode_id;
static int64 last_client_id;
static DateADT last_referred_on;
static bool last_closed_null;
static DateADT last_closed_on;

/*
 * The client, referral and closure of an episode as the active snapshot
 * sees it, and the region's time zone when tz is given; false when there is
 * no such episode.  Read through the primary key when the caller may read
 * ips.episode directly, else with SPI (privileges and policies apply).
 */
static bool
LookUpEpisode(int64 episode_id, int64 *client_id, DateADT *referred_on, bool *closed_null,
			  DateADT *closed_on, char **tz)
{
	bool		isnull;

	if (IpsDirectRead("episode"))
	{
		if (!IpsSameSnapshot(&last_key) || last_episode_id != episode_id)
		{
			static const char *const cols[3] = {"client_id", "referred_on", "closed_on"};
			static int	attnums[3];
			ScanKeyData key;
			Datum		v[3];
			bool		n[3];
			bool		keep = last_key.valid;

			/* the key holds only once the row is read */
			last_key.valid = false;
			ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(episode_id));
			/*
			 * RowShareLock: the mode in which the foreign-key check of the
			 * same row (after the statement) locks ips.episode and its key,
			 * so that it finds both already locked: one lock each instead of
			 * one in each mode (a contact insert's transaction holds 20
			 * relation locks instead of 22).
			 */
			if (!IpsFetchColumns("episode", "episode_pkey", RowShareLock, 1, &key, 3, cols, attnums, v, n))
				return false;
			last_episode_id = episode_id;
			last_client_id = DatumGetInt64(v[0]);
			last_referred_on = DatumGetDateADT(v[1]);
			last_closed_on = DatumGetDateADT(v[2]);
			last_closed_null = n[2];
			last_key.valid = keep;
		}
		*client_id = last_client_id;
		*referred_on = last_referred_on;
		*closed_null = last_closed_null;
		*closed_on = last_closed_on;
		if (tz)
			*tz = IpsTimeZone();
		return true;
	}
	else
	{
		Datum		arg = Int64GetDatum(episode_id);
		MemoryContext cxt = CurrentMemoryContext;
		int			rc;

		SPI_connect();
		rc = SPI_execute_plan(IpsPreparePlan(&episode_plan), &arg, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "looking up the episode failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 0)
		{
			SPI_finish();
			return false;
		}
		*client_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*referred_on = DatumGetDateADT(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		*closed_on = DatumGetDateADT(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, closed_null));
		if (tz)
			*tz = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4));
		SPI_finish();
		return true;
	}
}

/* Day of a date or timestamptz column value, in the region's time zone. */
static DateADT
FactDay(Datum value, Oid type, const char *tz)
{
	if (type == DATEOID)
		return DatumGetDateADT(value);
	if (type == TIMESTAMPTZOID)
		return IpsLocalDate(DatumGetTimestampTz(value), tz);
	elog(ERROR, "ips_fact_guard: the dating column must be date or timestamptz");
	return 0;					/* keep compiler quiet */
}

/* Text of a date, for messages. */
static char *
DateText(DateADT d)
{
	return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
}

/* Where the fact guard finds its columns in one table. */
typedef struct FactGuardColumns
{
	Oid			relid;
	int			episode_col;
	int			client_col;
	int			date_col;
	int			held_col;		/* held_at_entry, or <= 0 */
} FactGuardColumns;

PG_FUNCTION_INFO_V1(ips_fact_guard);
/* BEFORE INSERT OR UPDATE trigger: fill client_id, keep the fact within its episode. */
Datum
ips_fact_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	td;
	HeapTuple	tup;
	int			episode_col,
				client_col,
				date_col;
	Datum		episode_id;
	Datum		value;
	bool		isnull;
	int64		client_id;
	DateADT		referred_on,
				day;
	bool		closed_null;
	DateADT		closed_on;
	char	   *tz = NULL;
	const char *table;
	FactGuardColumns *cols;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || trigdata->tg_trigger->tgnargs != 1)
		elog(ERROR, "ips_fact_guard must be a BEFORE ROW trigger with the dating column as argument");
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);
	if (ips_restoring)
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
							   trigdata->tg_newtuple : trigdata->tg_trigtuple);

	rel = trigdata->tg_relation;
	td = rel->rd_att;
	tup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	table = RelationGetRelationName(rel);
	/* the columns, once per statement (fn_extra lives as long as the trigger's FmgrInfo) */
	cols = (FactGuardColumns *) fcinfo->flinfo->fn_extra;
	if (cols == NULL || cols->relid != RelationGetRelid(rel))
	{
		cols = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(FactGuardColumns));
		cols->relid = RelationGetRelid(rel);
		cols->episode_col = SPI_fnumber(td, "episode_id");
		cols->client_col = SPI_fnumber(td, "client_id");
		cols->date_col = SPI_fnumber(td, trigdata->tg_trigger->tgargs[0]);
		cols->held_col = SPI_fnumber(td, "held_at_entry");
		if (cols->episode_col <= 0 || cols->client_col <= 0 || cols->date_col <= 0)
			elog(ERROR, "ips_fact_guard: table %s lacks episode_id, client_id or %s",
				 table, trigdata->tg_trigger->tgargs[0]);
		fcinfo->flinfo->fn_extra = cols;
	}
	episode_col = cols->episode_col;
	client_col = cols->client_col;
	date_col = cols->date_col;

	episode_id = SPI_getbinval(tup, td, episode_col, &isnull);
	if (isnull)
		return PointerGetDatum(tup);
	value = SPI_getbinval(tup, td, date_col, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a row of ips.%s needs %s", table, trigdata->tg_trigger->tgargs[0]),
				 errhint("Give the date or time of the fact.")));

	if (!LookUpEpisode(DatumGetInt64(episode_id), &client_id, &referred_on, &closed_null, &closed_on,
					   TupleDescAttr(td, date_col - 1)->atttypid == TIMESTAMPTZOID ? &tz : NULL))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no episode with id %lld", (long long) DatumGetInt64(episode_id)),
				 errhint("Check the episode id; the caller may also lack the right to see it.")));

	day = FactDay(value, TupleDescAttr(td, date_col - 1)->atttypid, tz);
	if (cols->held_col > 0)
	{
		/* held at entry exactly when dated before the referral */
		Datum		held = BoolGetDatum(day < referred_on);
		bool		n = false;
		bool		curnull;
		Datum		cur = SPI_getbinval(tup, td, cols->held_col, &curnull);

		if (curnull || DatumGetBool(cur) != DatumGetBool(held))
			tup = heap_modify_tuple_by_cols(tup, td, 1, &cols->held_col, &held, &n);
	}
	else if (day < referred_on)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %s of ips.%s is before the referral of episode %lld on %s",
						trigdata->tg_trigger->tgargs[0], DateText(day), table,
						(long long) DatumGetInt64(episode_id), DateText(referred_on)),
				 errhint("Check the date; facts of an episode fall within it.")));
	if (!closed_null && day > closed_on)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s %s of ips.%s is after episode %lld was closed on %s",
						trigdata->tg_trigger->tgargs[0], DateText(day), table,
						(long long) DatumGetInt64(episode_id), DateText(closed_on)),
				 errhint("Refer the client again to start a new episode.")));
	{
		Datum		cur = SPI_getbinval(tup, td, client_col, &isnull);

		if (!isnull && DatumGetInt64(cur) == client_id)
			return PointerGetDatum(tup);
		if (!isnull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("client %lld does not match client %lld of episode %lld",
							(long long) DatumGetInt64(cur), (long long) client_id,
							(long long) DatumGetInt64(episode_id)),
					 errhint("Leave client_id empty; it is taken from the episode.")));
		else
		{
			Datum		v = Int64GetDatum(client_id);
			bool		n = false;

			return PointerGetDatum(heap_modify_tuple_by_cols(tup, td, 1, &client_col, &v, &n));
		}
	}
}
