/*
 * episode_state.c
 *		The episode state machine, as triggers on ips.episode, so that it
 *		guards direct DML exactly as it guards ips.transition().
 *
 *	ips_episode_guard	BEFORE INSERT OR UPDATE OR DELETE on ips.episode:
 *						checks the transition and its rules, sets the
 *						columns the state machine keeps (entry_on, held_state,
 *						closed_on, close_reason, state_since).
 *	ips_episode_history	AFTER INSERT OR UPDATE on ips.episode: writes one
 *						history row per state change.
 *	ips_history_guard	BEFORE INSERT OR UPDATE OR DELETE (and TRUNCATE) on
 *						ips.episode_state_history: the history is append-only
 *						and only the state machine appends to it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/date.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "ips.h"

/*
 * The SQL of the kept plans below qualifies every operator and function
 * (OPERATOR(pg_catalog.=), pg_catalog.count): a caller's search_path must not
 * be able to put look-alikes in front of them.
 */

/*
 * The allowed transitions are the rows of ips.state_transition (read through
 * vocabulary.c); on_hold returns only to the state it paused (checked apart);
 * referred -> employed only with a job held at entry (CheckEntry).
 */

/* Set while ips_episode_history appends, so that ips_history_guard lets it through. */
static bool history_append_in_progress = false;

/* Columns of ips.episode that the trigger reads or sets. */
typedef struct EpisodeColumns
{
	int			episode_id,
				client_id,
				state,
				state_since,
				state_reason,
				referred_on,
				specialist_id,
				entry_on,
				held_state,
				closed_on,
				close_reason;
} EpisodeColumns;

/* Look up the attribute numbers of ips.episode by name. */
static void
EpisodeColumnsInit(EpisodeColumns *c, TupleDesc td)
{
#define COL(f) do { c->f = SPI_fnumber(td, #f); \
		if (c->f <= 0) elog(ERROR, "ips.episode has no column \"%s\"", #f); } while (0)
	COL(episode_id);
	COL(client_id);
	COL(state);
	COL(state_since);
	COL(state_reason);
	COL(referred_on);
	COL(specialist_id);
	COL(entry_on);
	COL(held_state);
	COL(closed_on);
	COL(close_reason);
#undef COL
}

/* A column's value as a C string, or NULL. */
static char *
GetText(HeapTuple tup, TupleDesc td, int attnum)
{
	return SPI_getvalue(tup, td, attnum);
}

/* A column's Datum, reporting NULL through *isnull. */
static Datum
GetDatum(HeapTuple tup, TupleDesc td, int attnum, bool *isnull)
{
	return SPI_getbinval(tup, td, attnum, isnull);
}

/* True when the column differs between the two tuples (NULL-aware, by value). */
static bool
ColumnChanged(HeapTuple a, HeapTuple b, TupleDesc td, int attnum)
{
	Form_pg_attribute att = TupleDescAttr(td, attnum - 1);
	bool		xnull,
				ynull;
	Datum		x = heap_getattr(a, attnum, td, &xnull);
	Datum		y = heap_getattr(b, attnum, td, &ynull);

	if (xnull || ynull)
		return xnull != ynull;
	return !datum_image_eq(x, y, att->attbyval, att->attlen);
}

/* State code of a tuple's state column, with a clear error for unknown codes. */
static EpisodeState
TupleState(HeapTuple tup, TupleDesc td, int attnum)
{
	char	   *name = GetText(tup, td, attnum);
	int			s = name ? IpsStateFromName(name) : -1;

	if (s < 0)
	{
		char	   *codes = IpsVocabularyCodes("state", NULL);

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown episode state \"%s\"", name ? name : "NULL"),
				 errhint("Use one of: %s.", codes)));
	}
	return (EpisodeState) s;
}

static IpsPlan care_plan = {NULL,
	"SELECT 1 FROM ips.care_relationship WHERE client_id OPERATOR(pg_catalog.=) $1"
	" AND started_on OPERATOR(pg_catalog.<=) $2"
	" AND (ended_on IS NULL OR ended_on OPERATOR(pg_catalog.>=) $2) LIMIT 1", 2, {INT8OID, DATEOID}};

static IpsPlan job_plan = {NULL,
	"SELECT 1 FROM ips.job WHERE episode_id OPERATOR(pg_catalog.=) $1"
	" AND (ends_on IS NULL OR ends_on OPERATOR(pg_catalog.>=) $2) LIMIT 1",
	2, {INT8OID, DATEOID}};

static IpsPlan held_job_plan = {NULL,
	"SELECT 1 FROM ips.job WHERE episode_id OPERATOR(pg_catalog.=) $1 AND held_at_entry"
	" AND (ends_on IS NULL OR ends_on OPERATOR(pg_catalog.>=) $2) LIMIT 1",
	2, {INT8OID, DATEOID}};

static IpsPlan study_plan = {NULL,
	"SELECT 1 FROM ips.study WHERE episode_id OPERATOR(pg_catalog.=) $1"
	" AND (ends_on IS NULL OR ends_on OPERATOR(pg_catalog.>=) $2) LIMIT 1",
	2, {INT8OID, DATEOID}};

static IpsPlan outreach_plan = {NULL,
	"SELECT pg_catalog.count(*), pg_catalog.count(DISTINCT (at AT TIME ZONE $4)::date) FROM ips.contact"
	" WHERE episode_id OPERATOR(pg_catalog.=) $1 AND kind OPERATOR(pg_catalog.=) 'outreach_attempt'"
	" AND (at AT TIME ZONE $4)::date OPERATOR(pg_catalog.>=) $2"
	" AND (at AT TIME ZONE $4)::date OPERATOR(pg_catalog.<=) $3", 4, {INT8OID, DATEOID, DATEOID, TEXTOID}};

/* The last day of the episode's dated facts (contacts, employer contacts, jobs, studies, assignments). */
static IpsPlan last_fact_plan = {NULL,
	"SELECT pg_catalog.max(x.d) FROM ("
	" SELECT (pg_catalog.max(c.at) AT TIME ZONE $2)::date FROM ips.contact c WHERE c.episode_id OPERATOR(pg_catalog.=) $1"
	" UNION ALL SELECT (pg_catalog.max(x.at) AT TIME ZONE $2)::date FROM ips.employer_contact x"
	" WHERE x.episode_id OPERATOR(pg_catalog.=) $1"
	" UNION ALL SELECT pg_catalog.max(GREATEST(j.starts_on, j.ends_on)) FROM ips.job j WHERE j.episode_id OPERATOR(pg_catalog.=) $1"
	" UNION ALL SELECT pg_catalog.max(GREATEST(s.starts_on, s.ends_on)) FROM ips.study s WHERE s.episode_id OPERATOR(pg_catalog.=) $1"
	" UNION ALL SELECT pg_catalog.max(a.from_on) FROM ips.specialist_assignment a WHERE a.episode_id OPERATOR(pg_catalog.=) $1"
	") x(d)", 2, {INT8OID, TEXTOID}};

/* Run a kept plan that answers "does a row exist". */
static bool
PlanFindsRow(IpsPlan *p, Datum *args)
{
	int			rc = SPI_execute_plan(IpsPreparePlan(p), args, NULL, true, 1);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return SPI_processed > 0;
}

/* Check the prerequisites of entering a state (not used when returning from on_hold). */
static void
CheckEntry(EpisodeState from, EpisodeState to, int64 episode_id, int64 client_id, DateADT day,
		   HeapTuple newtup, TupleDesc td, EpisodeColumns *c, const char *tz)
{
	Datum		args[4];
	bool		isnull;

	if (from == STATE_REFERRED && to == STATE_EMPLOYED)
	{
		/* entering the service in work: a job held at entry, and what engagement needs */
		args[0] = Int64GetDatum(episode_id);
		args[1] = DateADTGetDatum(day);
		if (!PlanFindsRow(&held_job_plan, args))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("episode %lld cannot move from referred to employed without a job held at entry",
							(long long) episode_id),
					 errhint("Engage the client first; a job that began before the referral is recorded with ips.start_job().")));
		CheckEntry(STATE_ENGAGED, STATE_ENGAGED, episode_id, client_id, day, newtup, td, c, tz);
	}

	switch (to)
	{
		case STATE_ENGAGED:
			(void) GetDatum(newtup, td, c->specialist_id, &isnull);
			if (isnull)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("episode %lld cannot enter state engaged without an employment specialist",
								(long long) episode_id),
						 errhint("Assign one first with ips.assign_specialist(episode_id, staff_id, from_on).")));
			if (IpsSettingBool("engaged_requires_care_relationship", true))
			{
				args[0] = Int64GetDatum(client_id);
				args[1] = DateADTGetDatum(day);
				if (!PlanFindsRow(&care_plan, args))
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("episode %lld cannot enter state engaged: client %lld has no active care relationship on %s",
									(long long) episode_id, (long long) client_id,
									DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(day)))),
							 errdetail("IPS clients keep a regular care relationship for the whole coaching period."),
							 errhint("Record it with ips.start_care_relationship(), or set engaged_requires_care_relationship to false in ips.setting.")));
			}
			break;
		case STATE_EMPLOYED:
			args[0] = Int64GetDatum(episode_id);
			args[1] = DateADTGetDatum(day);
			if (!PlanFindsRow(&job_plan, args))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("episode %lld cannot enter state employed without a current job", (long long) episode_id),
						 errhint("Record the job with ips.start_job(); it moves the episode to employed.")));
			break;
		case STATE_STUDYING:
			args[0] = Int64GetDatum(episode_id);
			args[1] = DateADTGetDatum(day);
			if (!PlanFindsRow(&study_plan, args))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("episode %lld cannot enter state studying without current studies", (long long) episode_id),
						 errhint("Record the studies with ips.start_studies(); it moves the episode to studying.")));
			break;
		case STATE_CLOSED:
			{
				char	   *reason = GetText(newtup, td, c->state_reason);
				int			rc;
				int64		attempts,
							days;
				int			min_attempts,
							min_days,
							window;

				if (reason == NULL || !IpsVocabularyHas("close_reason", reason))
				{
					char	   *codes = IpsVocabularyCodes("close_reason", NULL);

					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 reason ? errmsg("unknown closing reason \"%s\" for episode %lld", reason, (long long) episode_id)
							 : errmsg("closing episode %lld needs a reason", (long long) episode_id),
							 errhint("Use one of: %s.", codes)));
				}
				/* a closure is not dated before the episode's own facts (they lie between referral and closure) */
				args[0] = Int64GetDatum(episode_id);
				args[1] = CStringGetTextDatum(tz);
				rc = SPI_execute_plan(IpsPreparePlan(&last_fact_plan), args, NULL, true, 1);
				if (rc != SPI_OK_SELECT || SPI_processed != 1)
					elog(ERROR, "reading the episode's last fact failed");
				{
					Datum		last = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

					if (!isnull && DatumGetDateADT(last) > day)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("episode %lld cannot be closed on %s: it has facts dated up to %s",
										(long long) episode_id,
										DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(day))),
										DatumGetCString(DirectFunctionCall1(date_out, last))),
								 errdetail("The dated records of an episode lie between its referral and its closure."),
								 errhint("Close the episode on or after %s, or correct the later facts first.",
										 DatumGetCString(DirectFunctionCall1(date_out, last)))));
				}
				if (strcmp(reason, "disengaged") != 0)
					break;
				min_attempts = IpsSettingInt("disengaged_min_outreach_attempts", 3);
				min_days = IpsSettingInt("disengaged_min_outreach_days", 2);
				window = IpsSettingInt("disengaged_outreach_window_days", 60);
				args[0] = Int64GetDatum(episode_id);
				args[1] = DateADTGetDatum(day - window);
				args[2] = DateADTGetDatum(day);
				args[3] = CStringGetTextDatum(tz);
				rc = SPI_execute_plan(IpsPreparePlan(&outreach_plan), args, NULL, true, 1);
				if (rc != SPI_OK_SELECT || SPI_processed != 1)
					elog(ERROR, "counting outreach attempts failed");
				attempts = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
				days = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
				if (attempts < min_attempts || days < min_days)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("episode %lld cannot be closed as disengaged: %lld outreach attempts on %lld days in the last %d days",
									(long long) episode_id, (long long) attempts, (long long) days, window),
							 errdetail("Closing as disengaged needs at least %d outreach attempts on at least %d different days within %d days.",
									   min_attempts, min_days, window),
							 errhint("Record the attempts with ips.record_contact(..., kind => 'outreach_attempt'), or close with another reason.")));
			}
			break;
		default:
			break;
	}
}

/* Raise the error for a column that only the state machine sets. */
static void
KeptColumnError(const char *column)
{
	ereport(ERROR,
			(errcode(ERRCODE_GENERATED_ALWAYS),
			 errmsg("column \"%s\" of ips.episode is kept by the state machine", column),
			 errhint("Change the state with ips.transition(); it sets %s.", column)));
}

PG_FUNCTION_INFO_V1(ips_episode_guard);
/* BEFORE trigger on ips.episode: the state machine. */
Datum
ips_episode_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	td;
	HeapTuple	newtup;
	HeapTuple	oldtup;
	EpisodeColumns c;
	EpisodeState from,
				to;
	int64		episode_id,
				client_id;
	TimestampTz at;
	TimestampTz prev_at;
	DateADT		day;
	char	   *tz;
	bool		isnull;
	int			ncols = 0;
	int			cols[6];
	Datum		vals[6];
	bool		nulls[6];

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "ips_episode_guard must be a BEFORE ROW trigger");

	td = trigdata->tg_relation->rd_att;
	if (ips_restoring)
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
							   trigdata->tg_newtuple : trigdata->tg_trigtuple);
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("episodes are not deleted"),
				 errdetail("An episode and its history are part of the client record."),
				 errhint("Close it with ips.transition(episode_id, 'closed', reason => ...).")));

	EpisodeColumnsInit(&c, td);
	tz = IpsTimeZone();

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		DateADT		referred_on;
		TimestampTz start;

		newtup = trigdata->tg_trigtuple;
		to = TupleState(newtup, td, c.state);
		if (to != STATE_REFERRED)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("a new episode starts in state referred, not \"%s\"", ips_state_names[to]),
					 errhint("Create it with ips.refer(), then move it on with ips.transition(). "
							 "To restore a dump, run pg_restore with PGOPTIONS='-c ips.restoring=on'.")));
		if (!heap_attisnull(newtup, c.entry_on, td)) KeptColumnError("entry_on");
		if (!heap_attisnull(newtup, c.held_state, td)) KeptColumnError("held_state");
		if (!heap_attisnull(newtup, c.closed_on, td)) KeptColumnError("closed_on");
		if (!heap_attisnull(newtup, c.close_reason, td)) KeptColumnError("close_reason");
		referred_on = DatumGetDateADT(GetDatum(newtup, td, c.referred_on, &isnull));
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("an episode needs the date of the referral"),
					 errhint("Give referred_on.")));
		if (referred_on > IpsLocalDate(GetCurrentTimestamp(), tz))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("referral date %s is in the future",
							DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(referred_on)))),
					 errhint("Record a referral when it has been received.")));
		start = DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone,
														CStringGetTextDatum(tz),
														DirectFunctionCall1(date_timestamp, DateADTGetDatum(referred_on))));
		at = DatumGetTimestampTz(GetDatum(newtup, td, c.state_since, &isnull));
		if (isnull || at < start)
		{
			cols[ncols] = c.state_since;
			vals[ncols] = TimestampTzGetDatum(start);
			nulls[ncols++] = false;
		}
		if (ncols > 0)
			newtup = heap_modify_tuple_by_cols(newtup, td, ncols, cols, vals, nulls);
		return PointerGetDatum(newtup);
	}

	/* UPDATE */
	oldtup = trigdata->tg_trigtuple;
	newtup = trigdata->tg_newtuple;
	from = TupleState(oldtup, td, c.state);
	to = TupleState(newtup, td, c.state);
	episode_id = DatumGetInt64(GetDatum(oldtup, td, c.episode_id, &isnull));
	client_id = DatumGetInt64(GetDatum(oldtup, td, c.client_id, &isnull));

	if (ColumnChanged(oldtup, newtup, td, c.episode_id) || ColumnChanged(oldtup, newtup, td, c.client_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("an episode keeps its id and its client"),
				 errhint("Refer the client again to start a new episode.")));
	if (ColumnChanged(oldtup, newtup, td, c.referred_on)) KeptColumnError("referred_on");
	if (ColumnChanged(oldtup, newtup, td, c.entry_on)) KeptColumnError("entry_on");
	if (ColumnChanged(oldtup, newtup, td, c.held_state)) KeptColumnError("held_state");
	if (ColumnChanged(oldtup, newtup, td, c.closed_on)) KeptColumnError("closed_on");
	if (ColumnChanged(oldtup, newtup, td, c.close_reason)) KeptColumnError("close_reason");

	if (from == STATE_CLOSED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("episode %lld is closed", (long long) episode_id),
				 errdetail("A closed episode is final."),
				 errhint("Refer the client again with ips.refer() to start a new episode.")));

	if (from == to)
	{
		if (ColumnChanged(oldtup, newtup, td, c.state_since)) KeptColumnError("state_since");
		if (ColumnChanged(oldtup, newtup, td, c.state_reason)) KeptColumnError("state_reason");
		return PointerGetDatum(newtup);
	}

	/* A state change: the transition itself. */
	if (!IpsTransitionAllowed(from, to) ||
		(from == STATE_ON_HOLD && to != STATE_CLOSED &&
		 strcmp(GetText(oldtup, td, c.held_state), ips_state_names[to]) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("episode %lld cannot move from %s to %s", (long long) episode_id,
						ips_state_names[from], ips_state_names[to]),
				 from == STATE_ON_HOLD ?
				 errdetail("A paused episode returns to the state it paused (%s) or is closed.",
						   GetText(oldtup, td, c.held_state)) :
				 errdetail("The allowed moves are the rows of ips.state_transition."),
				 errhint("Allowed from %s: %s.", ips_state_names[from],
						 from == STATE_ON_HOLD ? "the paused state, closed" : IpsTransitionsFrom(from))));

	prev_at = DatumGetTimestampTz(GetDatum(oldtup, td, c.state_since, &isnull));
	if (!ColumnChanged(oldtup, newtup, td, c.state_since))
		at = GetCurrentTransactionStartTimestamp();
	else
	{
		at = DatumGetTimestampTz(GetDatum(newtup, td, c.state_since, &isnull));
		if (isnull)
			at = GetCurrentTransactionStartTimestamp();
	}
	if (at < prev_at)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transition of episode %lld at %s is earlier than its previous transition at %s",
						(long long) episode_id, pstrdup(timestamptz_to_str(at)), pstrdup(timestamptz_to_str(prev_at))),
				 errhint("A transition may be dated in the past, but not before the one before it.")));
	if (at > GetCurrentTimestamp() + 5 * 60 * USECS_PER_SEC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transition of episode %lld is dated in the future (%s)",
						(long long) episode_id, timestamptz_to_str(at)),
				 errhint("Record a transition when it has happened.")));
	day = IpsLocalDate(at, tz);

	if (from != STATE_ON_HOLD || to == STATE_CLOSED)
	{
		SPI_connect();
		CheckEntry(from, to, episode_id, client_id, day, newtup, td, &c, tz);
		SPI_finish();
	}

	cols[ncols] = c.state_since;
	vals[ncols] = TimestampTzGetDatum(at);
	nulls[ncols++] = false;
	cols[ncols] = c.held_state;
	vals[ncols] = to == STATE_ON_HOLD ? CStringGetTextDatum(ips_state_names[from]) : (Datum) 0;
	nulls[ncols++] = to != STATE_ON_HOLD;
	if ((to == STATE_ENGAGED || (from == STATE_REFERRED && to == STATE_EMPLOYED)) &&
		heap_attisnull(oldtup, c.entry_on, td))
	{
		cols[ncols] = c.entry_on;
		vals[ncols] = DateADTGetDatum(day);
		nulls[ncols++] = false;
	}
	if (to == STATE_CLOSED)
	{
		cols[ncols] = c.closed_on;
		vals[ncols] = DateADTGetDatum(day);
		nulls[ncols++] = false;
		cols[ncols] = c.close_reason;
		vals[ncols] = CStringGetTextDatum(GetText(newtup, td, c.state_reason));
		nulls[ncols++] = false;
	}
	newtup = heap_modify_tuple_by_cols(newtup, td, ncols, cols, vals, nulls);
	return PointerGetDatum(newtup);
}

static IpsPlan history_plan = {NULL,
	"INSERT INTO ips.episode_state_history"
	" (episode_id, client_id, from_state, to_state, at, reason, actor, staff_id)"
	" VALUES ($1, $2, $3, $4, $5, $6, ips.caller(), $7)",
	7, {INT8OID, INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, INT8OID}};

PG_FUNCTION_INFO_V1(ips_episode_history);
/* AFTER trigger on ips.episode: one history row per state change. */
Datum
ips_episode_history(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	td = trigdata->tg_relation->rd_att;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	EpisodeColumns c;
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		staff_found;
	char	   *reason;
	bool		isnull;
	int			rc;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event))
		elog(ERROR, "ips_episode_history must be an AFTER ROW trigger");
	if (ips_restoring)
		return PointerGetDatum(NULL);	/* the history is restored with the episodes */
	EpisodeColumnsInit(&c, td);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldtup = trigdata->tg_trigtuple;
		newtup = trigdata->tg_newtuple;
		if (!ColumnChanged(oldtup, newtup, td, c.state))
			return PointerGetDatum(NULL);
	}
	else
		newtup = trigdata->tg_trigtuple;

	args[0] = GetDatum(newtup, td, c.episode_id, &isnull);
	args[1] = GetDatum(newtup, td, c.client_id, &isnull);
	if (oldtup)
		args[2] = GetDatum(oldtup, td, c.state, &isnull);
	else
		nulls[2] = 'n';
	args[3] = GetDatum(newtup, td, c.state, &isnull);
	args[4] = GetDatum(newtup, td, c.state_since, &isnull);
	reason = GetText(newtup, td, c.state_reason);
	if (reason && oldtup)
		args[5] = CStringGetTextDatum(reason);
	else
		nulls[5] = 'n';
	/* ips.current_staff(), read directly */
	args[6] = Int64GetDatum(IpsCurrentStaff(&staff_found));
	if (!staff_found)
		nulls[6] = 'n';

	SPI_connect();
	history_append_in_progress = true;
	PG_TRY();
	{
		rc = SPI_execute_plan(IpsPreparePlan(&history_plan), args, nulls, false, 0);
	}
	PG_FINALLY();
	{
		history_append_in_progress = false;
	}
	PG_END_TRY();
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "writing episode history failed: %s", SPI_result_code_string(rc));
	SPI_finish();
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(ips_history_guard);
/* BEFORE trigger on ips.episode_state_history: append-only, written by the state machine. */
Datum
ips_history_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "ips_history_guard must be called as a trigger");
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && (history_append_in_progress || ips_restoring))
		return PointerGetDatum(trigdata->tg_trigtuple);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("the episode state history is append-only and written by the state machine"),
			 errdetail("%s on ips.episode_state_history is refused.",
					   TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ? "INSERT" :
					   TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE" :
					   TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE" : "TRUNCATE"),
			 errhint("Change an episode's state with ips.transition(); it writes the history. "
					 "To restore a dump, run pg_restore with PGOPTIONS='-c ips.restoring=on'.")));
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(ips_caller);
/* ips.caller(): the role on whose behalf the current statement runs, also inside definer-rights functions. */
Datum
ips_caller(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false))));
}

/* ---------- corrections learned late: transitions inserted into the history ---------- */

static IpsPlan correct_episode_plan = {NULL,
	"SELECT client_id, state FROM ips.episode WHERE episode_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	1, {INT8OID}};
static IpsPlan correct_history_plan = {NULL,
	"SELECT from_state, to_state, at FROM ips.episode_state_history"
	" WHERE episode_id OPERATOR(pg_catalog.=) $1 ORDER BY at, history_id",
	1, {INT8OID}};
static IpsPlan correct_specialist_plan = {NULL,
	"SELECT 1 FROM ips.specialist_assignment WHERE episode_id OPERATOR(pg_catalog.=) $1"
	" AND from_on OPERATOR(pg_catalog.<=) $2 LIMIT 1", 2, {INT8OID, DATEOID}};

/* One step of a merged history. */
typedef struct HistoryStep
{
	int			to;
	char	   *from_name;		/* recorded from_state (existing rows), or NULL */
	TimestampTz at;
	char	   *reason;
	bool		inserted;
} HistoryStep;

/* Order steps by instant; at the same instant the recorded row comes first. */
static int
HistoryStepCmp(const void *a, const void *b)
{
	const HistoryStep *x = a;
	const HistoryStep *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return (int) x->inserted - (int) y->inserted;
}

PG_FUNCTION_INFO_V1(ips_insert_transitions);
/* ips.insert_transitions(episode_id, to_states, ats, reasons): transitions learned late, checked as a whole sequence. */
Datum
ips_insert_transitions(PG_FUNCTION_ARGS)
{
	int64		episode_id;
	ArrayType  *states_a,
			   *ats_a,
			   *reasons_a = NULL;
	Datum	   *states,
			   *ats,
			   *reasons = NULL;
	bool	   *states_n,
			   *ats_n,
			   *reasons_n = NULL;
	int			nnew,
				nats,
				nreasons = 0,
				nold,
				n;
	HistoryStep *steps;
	Datum		arg[2];
	bool		isnull;
	int64		client_id;
	char	   *tz;
	int			state,
				held = -1;
	TimestampTz last_at;
	bool		staff_found;
	int64		staff_id;
	MemoryContext cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ips.insert_transitions needs an episode, the states and their instants"),
				 errhint("Give episode_id, to_states and ats (arrays of the same length).")));
	episode_id = PG_GETARG_INT64(0);
	states_a = PG_GETARG_ARRAYTYPE_P(1);
	ats_a = PG_GETARG_ARRAYTYPE_P(2);
	deconstruct_array(states_a, TEXTOID, -1, false, TYPALIGN_INT, &states, &states_n, &nnew);
	deconstruct_array(ats_a, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &ats, &ats_n, &nats);
	if (!PG_ARGISNULL(3))
	{
		reasons_a = PG_GETARG_ARRAYTYPE_P(3);
		deconstruct_array(reasons_a, TEXTOID, -1, false, TYPALIGN_INT, &reasons, &reasons_n, &nreasons);
	}
	if (nnew == 0 || nnew != nats || (reasons_a != NULL && nreasons != nnew))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("to_states, ats and reasons must be non-empty arrays of the same length"),
				 errhint("Give one instant (and reason, or NULL) per state.")));

	SPI_connect();
	tz = IpsTimeZone();
	arg[0] = Int64GetDatum(episode_id);
	if (SPI_execute_plan(IpsPreparePlan(&correct_episode_plan), arg, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no episode with id %lld", (long long) episode_id),
				 errhint("Check the episode id; the caller may also lack the right to see it.")));
	client_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (SPI_execute_plan(IpsPreparePlan(&correct_history_plan), arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the episode history failed");
	nold = (int) SPI_processed;
	steps = MemoryContextAlloc(cxt, sizeof(HistoryStep) * (nold + nnew));
	for (int i = 0; i < nold; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		char	   *from = SPI_getvalue(t, d, 1);

		steps[i].from_name = from ? MemoryContextStrdup(cxt, from) : NULL;
		steps[i].to = IpsStateFromName(SPI_getvalue(t, d, 2));
		steps[i].at = DatumGetTimestampTz(SPI_getbinval(t, d, 3, &isnull));
		steps[i].reason = NULL;
		steps[i].inserted = false;
	}
	if (nold == 0)
		elog(ERROR, "episode %lld has no history", (long long) episode_id);
	last_at = steps[nold - 1].at;
	for (int i = 0; i < nnew; i++)
	{
		HistoryStep *s = &steps[nold + i];
		char	   *name = states_n[i] ? NULL : TextDatumGetCString(states[i]);

		s->to = name ? IpsStateFromName(name) : -1;
		if (s->to < 0 || s->to == STATE_CLOSED)
		{
			char	   *codes = IpsVocabularyCodes("state", "closed");

			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" cannot be inserted into the history", name ? name : "NULL"),
					 errhint("Insert one of: %s; close with ips.transition().", codes)));
		}
		if (ats_n[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the instant of inserted transition %d is missing", i + 1),
					 errhint("Give the instant each state began.")));
		s->at = DatumGetTimestampTz(ats[i]);
		if (s->at <= steps[0].at || s->at >= last_at)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("inserted transition at %s is not between the referral (%s) and the last recorded transition (%s)",
							pstrdup(timestamptz_to_str(s->at)), pstrdup(timestamptz_to_str(steps[0].at)),
							pstrdup(timestamptz_to_str(last_at))),
					 errhint("A transition after the last one is recorded with ips.transition().")));
		s->reason = (reasons && !reasons_n[i]) ? MemoryContextStrdup(cxt, TextDatumGetCString(reasons[i])) : NULL;
		s->from_name = NULL;
		s->inserted = true;
	}
	n = nold + nnew;
	qsort(steps, n, sizeof(HistoryStep), HistoryStepCmp);

	/* the whole sequence, as the state machine would have taken it */
	state = steps[0].to;
	for (int i = 1; i < n; i++)
	{
		HistoryStep *s = &steps[i];
		DateADT		day = IpsLocalDate(s->at, tz);

		if (!s->inserted && s->from_name != NULL && strcmp(s->from_name, ips_state_names[state]) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("after the inserted transitions episode %lld would be %s at %s, where the history records a move from %s",
							(long long) episode_id, ips_state_names[state], pstrdup(timestamptz_to_str(s->at)), s->from_name),
					 errdetail("Inserted transitions must lead back to the state the next recorded transition starts from."),
					 errhint("Insert the whole change, e.g. a pause and its end (ips.record_pause).")));
		if (state == s->to || !IpsTransitionAllowed(state, s->to) ||
			(state == STATE_ON_HOLD && s->to != STATE_CLOSED && s->to != held))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("with the inserted transitions episode %lld would move from %s to %s at %s",
							(long long) episode_id, ips_state_names[state], ips_state_names[s->to],
							pstrdup(timestamptz_to_str(s->at))),
					 errdetail("The state machine checks the whole corrected sequence."),
					 errhint("See the transition table in the README of ips; a pause returns to the state it paused.")));
		if (s->inserted && state != STATE_ON_HOLD)
		{
			/* what entering the state needs, on its day */
			Datum		a[2];

			a[0] = Int64GetDatum(s->to == STATE_ENGAGED ? client_id : episode_id);
			a[1] = DateADTGetDatum(day);
			if ((s->to == STATE_EMPLOYED && !PlanFindsRow(&job_plan, a)) ||
				(s->to == STATE_STUDYING && !PlanFindsRow(&study_plan, a)) ||
				(s->to == STATE_ENGAGED && IpsSettingBool("engaged_requires_care_relationship", true) &&
				 !PlanFindsRow(&care_plan, a)))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("episode %lld cannot have entered %s on %s", (long long) episode_id,
								ips_state_names[s->to], DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(day)))),
						 errhint("A job, studies or a care relationship must be recorded for that day first.")));
			if (s->to == STATE_ENGAGED)
			{
				a[0] = Int64GetDatum(episode_id);
				if (!PlanFindsRow(&correct_specialist_plan, a))
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("episode %lld had no employment specialist on %s", (long long) episode_id,
									DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(day)))),
							 errhint("Record the assignment first.")));
			}
		}
		if (s->to == STATE_ON_HOLD)
			held = state;
		s->from_name = (char *) ips_state_names[state];
		state = s->to;
	}

	/* append the inserted rows: who inserted them and when is in actor and recorded_at */
	staff_id = IpsCurrentStaff(&staff_found);
	history_append_in_progress = true;
	PG_TRY();
	{
		for (int i = 0; i < n; i++)
		{
			Datum		args[7];
			char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

			if (!steps[i].inserted)
				continue;
			args[0] = Int64GetDatum(episode_id);
			args[1] = Int64GetDatum(client_id);
			args[2] = CStringGetTextDatum(steps[i].from_name);
			args[3] = CStringGetTextDatum(ips_state_names[steps[i].to]);
			args[4] = TimestampTzGetDatum(steps[i].at);
			if (steps[i].reason)
				args[5] = CStringGetTextDatum(steps[i].reason);
			else
				nulls[5] = 'n';
			args[6] = Int64GetDatum(staff_id);
			if (!staff_found)
				nulls[6] = 'n';
			if (SPI_execute_plan(IpsPreparePlan(&history_plan), args, nulls, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "writing episode history failed");
		}
	}
	PG_FINALLY();
	{
		history_append_in_progress = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT32(nnew);
}
