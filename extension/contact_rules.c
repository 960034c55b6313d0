/*
 * contact_rules.c
 *		The contact-frequency rules engine (domain.md section 4, docs/rules.md).
 *
 *	ips_rule_engine(mode, from_on, to_on, team_id, episode_id) evaluates the
 *	rules of ips.rule for a selection of episodes (all, one team's, or one) and
 *	of specialists, as known on the evaluation day E = to_on: facts dated after
 *	E are ignored, and the state history decides which state an episode had on
 *	any day.
 *
 *	The facts are read with one query per fact table for the whole selection,
 *	each ordered by episode_id and read through a cursor in batches; the
 *	streams are merged as in a merge join, so each episode is seen once, in one
 *	ordered pass, with its facts in a memory context that is reset per episode.
 *	In mode alerts only the last contact of each class is read per episode
 *	(an expectation is unmet exactly when that is dated before its window).
 *	Nothing is written, so the engine runs on a read-only hot standby.
 *
 *	With known_at (ips.alerts_as_known: what the team could see then), the
 *	state changes, contacts, employer contacts and jobs count when recorded
 *	(recorded_at) by known_at; the facts without a recording time
 *	(assignments, care relationships, consents, the career profile, job ends,
 *	team meetings, staff ends) count from their own date (KnownDay).
 *
 *	Every rule yields expectations: (rule, episode or specialist, job, due day,
 *	the day it was met or none).  Mode 'alerts' returns the unmet ones due on or
 *	before E (status 'overdue') or within the rule's warning horizon after E
 *	(status 'due'), for episodes that are open and not on hold on E.  Mode
 *	'expectations' returns those due from from_on to E with status
 *	met_on_time, met_late, missed or open.
 *
 *	Pauses: a day on which the episode's state at the end of the day is
 *	on_hold does not count.  A due day D + N becomes the N-th day after D
 *	that is not paused (while a pause goes on, nothing falls due).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/scansup.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "ips.h"

/* The rules, in the order of api.md "Rule codes". */
typedef enum RuleCode
{
	R_REFERRAL_RESPONSE = 0,
	R_CAREER_PROFILE,
	R_RAPID_JOB_SEARCH,
	R_BENEFITS_BEFORE_START,
	R_PRE_START_CONTACT,
	R_POST_START_CONTACT,
	R_FIRST_MONTH_WEEKLY,
	R_FOLLOW_ALONG_MONTHLY,
	R_JOB_LOSS_CONTACT,
	R_NO_CONTACT,
	R_CARE_RELATIONSHIP,
	R_CONSENT_FOR_CARE,
	R_SPECIALIST_EMPLOYER_CONTACTS,
	R_SPECIALIST_TEAM_MEETING,
	R_SPECIALIST_CASELOAD,
	RULE_COUNT
} RuleCode;

static const char *const rule_codes[RULE_COUNT] = {
	"referral_response", "career_profile", "rapid_job_search", "benefits_before_start",
	"pre_start_contact", "post_start_contact", "first_month_weekly", "follow_along_monthly",
	"job_loss_contact", "no_contact", "care_relationship", "consent_for_care",
	"specialist_employer_contacts", "specialist_team_meeting", "specialist_caseload"
};

/* "Never" / "no such day": later than any real day. */
#define NO_DAY		PG_INT32_MAX

/* Rows fetched from a cursor at a time. */
#define BATCH_ROWS	10000

/* One rule's numbers from ips.rule. */
typedef struct RuleConf
{
	bool		enabled;
	int			days;
	int			count;
	int			horizon;
} RuleConf;

/* Which rows the facts are read for. */
typedef enum Selection
{
	SEL_ALL = 0,
	SEL_TEAM,
	SEL_EPISODE,
	SEL_COUNT
} Selection;

/* A growing list of days, kept sorted by the caller and without duplicates. */
typedef struct DayList
{
	DateADT    *v;
	int			n;
	int			cap;
} DayList;

/* A specialist, with the dated FTE, the days on the team and caseload counts per measuring day. */
typedef struct StaffEntry
{
	int64		staff_id;		/* hash key */
	DateADT		first_from;		/* first assignment, or NO_DAY */
	DateADT		started;		/* first day on the team (PG_INT32_MIN: since the start) */
	DateADT		ended;			/* first day no longer on the team, or NO_DAY */
	int			nterm;			/* dated terms (ips.staff_terms), by from_on */
	int			cap_term;
	DateADT    *term_from;
	double	   *term_fte;
	int		   *caseload;		/* per measuring day */
} StaffEntry;

/* The facts of one episode, as known on E. */
typedef struct Episode
{
	int64		id;
	DateADT		referred_on;
	DateADT		career_on;		/* NO_DAY when none */
	/* state history: raw events, then the state at the end of each day */
	int			nev;
	DateADT    *ev_day;
	int		   *ev_state;
	int			nday;
	DateADT    *day_day;
	int		   *day_state;
	DateADT		entry_on;
	DateADT		closed_on;
	int			nhold;
	DateADT    *hold_from;
	DateADT    *hold_to;		/* NO_DAY when still paused on E */
	/* the days on hold or studying: rapid_job_search does not count them */
	int			nstudy;
	DateADT    *study_from;
	DateADT    *study_to;
	/* assignments */
	int			nasg;
	int64	   *asg_staff;
	DateADT    *asg_from;
	DateADT    *asg_to;
	/* contacts, by class */
	DayList		client;			/* client contact: in person, phone or video */
	DayList		f2f;			/* face-to-face client contact */
	DayList		benefits;		/* benefits counselling, any mode */
	DayList		employer;		/* in-person competitive employer contact for the client */
	/* jobs */
	int			njob;
	int64	   *job_id;
	DateADT    *job_start;
	DateADT    *job_end;		/* NO_DAY when not ended by E */
	bool	   *job_held;		/* held at entry: no job start, follow-along from entry */
	bool	   *job_cont;		/* continues an earlier job (ips.continue_job): no job-start rules */
	bool	   *job_goes_on;	/* continued by a later job by E: its end is no job loss */
	/* coverage by care relationships and by consents */
	int			ncare;
	DateADT    *care_from;
	DateADT    *care_to;
	int			ncons;
	DateADT    *cons_from;
	DateADT    *cons_to;
	int			cap_ev, cap_asg, cap_job, cap_care, cap_cons;
} Episode;

/* A query result read through a cursor in batches. */
typedef struct Stream
{
	Portal		portal;
	SPITupleTable *tt;
	uint64		i;
	bool		done;
} Stream;

/* The state of one run. */
typedef struct Engine
{
	bool		alerts;
	int			known;			/* 1: only the facts recorded by known_at ($5) */
	DateADT		known_day;		/* local day of known_at (NO_DAY: every fact): facts without
								 * a recording time count from their own date */
	DateADT		from;
	DateADT		to;				/* E */
	Selection	sel;
	const char *tzname;			/* the region's time zone (setting time_zone) */
	RuleConf	rule[RULE_COUNT];
	Tuplestorestate *store;
	TupleDesc	desc;
	HTAB	   *staff;
	int			nstaff;
	int64	   *staff_order;	/* staff ids, ordered */
	int			nmeasure;
	DateADT    *measure;		/* caseload measuring days */
	Episode    *ep;				/* the episode being evaluated */
} Engine;

/*
 * The queries, one per fact table.  $1 the team or episode (unused for all),
 * $2 the evaluation day E, $3 the first day of interest, $4 the time zone.
 * Instants are returned as they are and turned into local days by StreamLocalDay (IpsLocalDate).
 */
#define EP_COND " AND e.referred_on <= $2 AND (e.closed_on IS NULL OR e.closed_on >= $3)"
#define FACT_FROM(JOIN) " FROM ips.episode e JOIN " JOIN " WHERE "
#define UNTIL_E(COL) " AND " COL " < (($2 + 1)::timestamp AT TIME ZONE $4)"
/* $5: facts recorded by this instant only (infinity: all; "what the team could see then") */
#define KNOWN(A) " AND " A ".recorded_at <= $5"
/* no condition on the recording time (the plans of ordinary calls: no filter for the planner to weigh) */
#define ALL_KNOWN(A) ""
#define SEL_ALL_SQL "true"
#define SEL_TEAM_SQL "e.team_id = $1"
#define SEL_EP_SQL "e.episode_id = $1"

/*
 * The tables keyed by episode_id (alias A) are read joined to the selected
 * episodes for a team or an episode, and on their own for all episodes: the
 * merge skips the rows of episodes that are not selected, so the join, its hash
 * table and the sort after it (which spilled to disk for the state history of
 * a whole country) are saved.
 */
#define JOINED(SEL, T, A) " FROM ips.episode e JOIN " T " " A " ON " A ".episode_id = e.episode_id WHERE " SEL EP_COND
#define ALONE(T, A) " FROM " T " " A " WHERE " A ".episode_id IS NOT NULL"

#define Q_EPISODES(SEL) \
	"SELECT e.episode_id, e.referred_on, CASE WHEN e.career_profile_on <= $2 THEN e.career_profile_on END" \
	" FROM ips.episode e WHERE " SEL EP_COND " ORDER BY e.episode_id"

#define Q_HISTORY(FROM, K) \
	"SELECT h.episode_id, h.at, h.to_state" FROM \
	UNTIL_E("h.at") K("h") " ORDER BY h.episode_id, h.at, h.history_id"
#define Q_ASSIGN(FROM) \
	"SELECT a.episode_id, a.staff_id, a.from_on, a.to_on" FROM \
	" AND a.from_on <= $2 ORDER BY a.episode_id, a.from_on, a.assignment_id"
#define Q_CONTACTS(FROM, K) \
	"SELECT c.episode_id, c.at, c.mode <> 'message', c.mode = 'in_person'," \
	" c.kind = 'benefits_counseling'" FROM \
	" AND c.kind IN ('client', 'benefits_counseling')" UNTIL_E("c.at") K("c") \
	" ORDER BY c.episode_id, c.at"
/*
 * In mode alerts an expectation is unmet exactly when the last qualifying fact
 * of its class is dated before the window starts, so the last day of each class
 * is all that is needed: one row per episode instead of one per contact.
 */
#define Q_CONTACTS_LAST(FROM, K) \
	"SELECT c.episode_id, max(c.at) FILTER (WHERE c.mode <> 'message')," \
	" max(c.at) FILTER (WHERE c.mode = 'in_person')," \
	" max(c.at) FILTER (WHERE c.kind = 'benefits_counseling')" FROM \
	" AND c.kind IN ('client', 'benefits_counseling')" UNTIL_E("c.at") K("c") \
	" GROUP BY c.episode_id ORDER BY c.episode_id"
#define Q_EMPLOYER_LAST(FROM, K) \
	"SELECT x.episode_id, max(x.at)" FROM \
	" AND x.in_person AND x.competitive" UNTIL_E("x.at") K("x") " GROUP BY x.episode_id ORDER BY x.episode_id"
#define Q_EMPLOYER(FROM, K) \
	"SELECT x.episode_id, x.at" FROM \
	" AND x.in_person AND x.competitive" UNTIL_E("x.at") K("x") " ORDER BY x.episode_id, x.at"
#define Q_JOBS(FROM, K) \
	"SELECT j.episode_id, j.job_id, j.starts_on, CASE WHEN j.ends_on <= $2 THEN j.ends_on END, j.held_at_entry," \
	" j.continues_job_id IS NOT NULL, EXISTS (SELECT 1 FROM ips.job n WHERE n.continues_job_id = j.job_id" \
	" AND n.starts_on <= $2" K("n") ")" FROM \
	" AND j.starts_on <= $2" K("j") " ORDER BY j.episode_id, j.starts_on, j.job_id"
#define Q_CARE(SEL) \
	"SELECT e.episode_id, r.started_on, CASE WHEN r.ended_on <= $2 THEN r.ended_on END" \
	FACT_FROM("ips.care_relationship r ON r.client_id = e.client_id") SEL EP_COND \
	" AND r.started_on <= $2 ORDER BY e.episode_id, r.started_on"
#define Q_CONSENT(SEL) \
	"SELECT e.episode_id, c.given_on, CASE WHEN c.withdrawn_on <= $2 THEN c.withdrawn_on - 1 END" \
	FACT_FROM("ips.consent c ON c.client_id = e.client_id") SEL EP_COND \
	" AND c.scope = 'share_with_care' AND c.given_on <= $2 ORDER BY e.episode_id, c.given_on"

/* The queries of the specialist rules: $1 team, $2 E, $3 first day, $4 time zone. */
#define ST_SEL_ALL "true"
#define ST_SEL_TEAM "s.team_id = $1"
/* one row per specialist and dated terms row */
#define Q_STAFF(SEL) \
	"SELECT s.staff_id, t.fte::float8," \
	" (SELECT min(a.from_on) FROM ips.specialist_assignment a WHERE a.staff_id = s.staff_id AND a.from_on <= $2)," \
	" s.started_on, s.ended_on, t.from_on" \
	" FROM ips.staff s JOIN ips.staff_terms t ON t.staff_id = s.staff_id" \
	" WHERE " SEL " AND s.role = 'specialist' ORDER BY s.staff_id, t.from_on"
#define Q_STAFF_EMPLOYER(SEL, K) \
	"SELECT s.staff_id, x.at FROM ips.staff s" \
	" JOIN ips.employer_contact x ON x.staff_id = s.staff_id WHERE " SEL " AND s.role = 'specialist'" \
	" AND x.in_person AND x.at >= ($3::timestamp AT TIME ZONE $4)" UNTIL_E("x.at") K("x") \
	" ORDER BY s.staff_id, x.at"
#define Q_STAFF_MEETING(SEL) \
	"SELECT s.staff_id, m.met_on FROM ips.staff s JOIN ips.team_meeting m ON m.staff_id = s.staff_id" \
	" WHERE " SEL " AND s.role = 'specialist' AND m.met_on BETWEEN $3 AND $2" \
	" ORDER BY s.staff_id, m.met_on"

#define EP_ARGS 5, {INT8OID, DATEOID, DATEOID, TEXTOID, TIMESTAMPTZOID}
#define EP_PLANS(Q) { {NULL, Q(SEL_ALL_SQL), EP_ARGS}, {NULL, Q(SEL_TEAM_SQL), EP_ARGS}, {NULL, Q(SEL_EP_SQL), EP_ARGS} }
#define FACT_PLANS(Q, T, A) { {NULL, Q(ALONE(T, A)), EP_ARGS}, {NULL, Q(JOINED(SEL_TEAM_SQL, T, A)), EP_ARGS}, \
	{NULL, Q(JOINED(SEL_EP_SQL, T, A)), EP_ARGS} }
/* the tables with a recording time: [0] every fact, [1] those recorded by $5 (known_at) */
#define FACT_PLANS_K(Q, T, A) { \
	{ {NULL, Q(ALONE(T, A), ALL_KNOWN), EP_ARGS}, {NULL, Q(JOINED(SEL_TEAM_SQL, T, A), ALL_KNOWN), EP_ARGS}, \
	  {NULL, Q(JOINED(SEL_EP_SQL, T, A), ALL_KNOWN), EP_ARGS} }, \
	{ {NULL, Q(ALONE(T, A), KNOWN), EP_ARGS}, {NULL, Q(JOINED(SEL_TEAM_SQL, T, A), KNOWN), EP_ARGS}, \
	  {NULL, Q(JOINED(SEL_EP_SQL, T, A), KNOWN), EP_ARGS} } }

static IpsPlan episodes_plans[SEL_COUNT] = EP_PLANS(Q_EPISODES);
static IpsPlan history_plans[2][SEL_COUNT] = FACT_PLANS_K(Q_HISTORY, "ips.episode_state_history", "h");
static IpsPlan assign_plans[SEL_COUNT] = FACT_PLANS(Q_ASSIGN, "ips.specialist_assignment", "a");
static IpsPlan contact_plans[2][SEL_COUNT] = FACT_PLANS_K(Q_CONTACTS, "ips.contact", "c");
static IpsPlan employer_plans[2][SEL_COUNT] = FACT_PLANS_K(Q_EMPLOYER, "ips.employer_contact", "x");
static IpsPlan contact_last_plans[2][SEL_COUNT] = FACT_PLANS_K(Q_CONTACTS_LAST, "ips.contact", "c");
static IpsPlan employer_last_plans[2][SEL_COUNT] = FACT_PLANS_K(Q_EMPLOYER_LAST, "ips.employer_contact", "x");
static IpsPlan job_plans[2][SEL_COUNT] = FACT_PLANS_K(Q_JOBS, "ips.job", "j");
static IpsPlan care_plans[SEL_COUNT] = EP_PLANS(Q_CARE);
static IpsPlan consent_plans[SEL_COUNT] = EP_PLANS(Q_CONSENT);
static IpsPlan staff_plans[2] = {{NULL, Q_STAFF(ST_SEL_ALL), EP_ARGS}, {NULL, Q_STAFF(ST_SEL_TEAM), EP_ARGS}};
static IpsPlan staff_employer_plans[2][2] = {
	{{NULL, Q_STAFF_EMPLOYER(ST_SEL_ALL, ALL_KNOWN), EP_ARGS}, {NULL, Q_STAFF_EMPLOYER(ST_SEL_TEAM, ALL_KNOWN), EP_ARGS}},
	{{NULL, Q_STAFF_EMPLOYER(ST_SEL_ALL, KNOWN), EP_ARGS}, {NULL, Q_STAFF_EMPLOYER(ST_SEL_TEAM, KNOWN), EP_ARGS}}};
static IpsPlan staff_meeting_plans[2] = {{NULL, Q_STAFF_MEETING(ST_SEL_ALL), EP_ARGS},
{NULL, Q_STAFF_MEETING(ST_SEL_TEAM), EP_ARGS}};

static IpsPlan rule_plan = {NULL,
	"SELECT code, enabled, days, count, horizon_days FROM ips.rule", 0, {InvalidOid}};

/* ---------- small helpers ---------- */

/* Grow an array of elements of the given size to hold at least need. */
static void *
GrowArray(void *arr, int *cap, int need, Size elem)
{
	int			newcap;

	if (need <= *cap)
		return arr;
	newcap = Max(8, *cap * 2);
	while (newcap < need)
		newcap *= 2;
	arr = arr ? repalloc(arr, newcap * elem) : palloc(newcap * elem);
	*cap = newcap;
	return arr;
}

/* Append a day to a sorted list unless it is the last one already. */
static void
DayListAdd(DayList *l, DateADT d)
{
	if (l->n > 0 && l->v[l->n - 1] == d)
		return;
	l->v = GrowArray(l->v, &l->cap, l->n + 1, sizeof(DateADT));
	l->v[l->n++] = d;
}

/* The first day of the list on or after from, or NO_DAY. */
static DateADT
DayListFirstFrom(const DayList *l, DateADT from)
{
	int			lo = 0,
				hi = l->n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (l->v[mid] < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->n ? l->v[lo] : NO_DAY;
}

/* The number of days in the list from a to b. */
static int
DayListCountIn(const DayList *l, DateADT a, DateADT b, DateADT *kth, int k)
{
	int			n = 0;

	*kth = NO_DAY;
	for (int i = 0; i < l->n; i++)
	{
		if (l->v[i] < a)
			continue;
		if (l->v[i] > b)
			break;
		n++;
		if (n == k)
			*kth = l->v[i];
	}
	return n;
}

/* ISO day of week of a date: Monday 1 .. Sunday 7. */
static int
IsoDow(DateADT d)
{
	/* 2000-01-01 (day 0) was a Saturday */
	int			r = ((int) (d % 7) + 7) % 7;	/* 0 = Saturday */

	return r == 0 ? 6 : (r == 1 ? 7 : r - 1);
}

/* ---------- streams ---------- */

/* Open a kept plan as a read-only cursor and fetch the first batch. */
static void
StreamOpen(Stream *s, IpsPlan *p, Datum *args)
{
	s->portal = SPI_cursor_open(NULL, IpsPreparePlan(p), args, NULL, true);
	s->tt = NULL;
	s->i = 0;
	s->done = false;
	SPI_cursor_fetch(s->portal, true, BATCH_ROWS);
	s->tt = SPI_tuptable;
	SPI_tuptable = NULL;
	if (s->tt == NULL || s->tt->numvals == 0)
		s->done = true;
}

/* The current row of a stream, or NULL at its end. */
static HeapTuple
StreamRow(Stream *s)
{
	return s->done ? NULL : s->tt->vals[s->i];
}

/* Move to the next row, fetching the next batch when needed. */
static void
StreamNext(Stream *s)
{
	if (s->done)
		return;
	if (++s->i < s->tt->numvals)
		return;
	SPI_freetuptable(s->tt);
	s->tt = NULL;
	s->i = 0;
	SPI_cursor_fetch(s->portal, true, BATCH_ROWS);
	s->tt = SPI_tuptable;
	SPI_tuptable = NULL;
	if (s->tt == NULL || s->tt->numvals == 0)
		s->done = true;
}

/* Close a stream's cursor. */
static void
StreamClose(Stream *s)
{
	if (s->tt)
		SPI_freetuptable(s->tt);
	s->tt = NULL;
	SPI_cursor_close(s->portal);
}

/* Column of the current row as int64 (not NULL). */
static int64
StreamInt8(Stream *s, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(s->tt->vals[s->i], s->tt->tupdesc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* Column of the current row as a day; NO_DAY for NULL. */
static DateADT
StreamDay(Stream *s, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(s->tt->vals[s->i], s->tt->tupdesc, col, &isnull);

	return isnull ? NO_DAY : DatumGetDateADT(d);
}

/* Column of the current row as a boolean; false for NULL. */
static bool
StreamBool(Stream *s, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(s->tt->vals[s->i], s->tt->tupdesc, col, &isnull);

	return !isnull && DatumGetBool(d);
}

/* Column of the current row, an instant, as a local day; NO_DAY for NULL. */
static DateADT
StreamLocalDay(Engine *en, Stream *s, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(s->tt->vals[s->i], s->tt->tupdesc, col, &isnull);

	return isnull ? NO_DAY : IpsLocalDate(DatumGetTimestampTz(d), en->tzname);
}

/*
 * A day of a fact that has no recording time (assignments, care relationships,
 * consents, the career profile, job ends, meetings, staff ends), as known on
 * known_at: known from its own date, so NO_DAY when dated after known_at's day.
 */
static DateADT
KnownDay(Engine *en, DateADT day)
{
	return day != NO_DAY && day > en->known_day ? NO_DAY : day;
}

/* True when the stream's current row belongs to the episode (skipping earlier keys). */
static bool
StreamAt(Stream *s, int64 key)
{
	while (!s->done && StreamInt8(s, 1) < key)
		StreamNext(s);
	return !s->done && StreamInt8(s, 1) == key;
}

/* ---------- the episode's timeline ---------- */

/* The state at the end of day d (-1 before the referral). */
static int
StateOn(const Episode *ep, DateADT d)
{
	int			st = -1;

	for (int i = 0; i < ep->nday && ep->day_day[i] <= d; i++)
		st = ep->day_state[i];
	return st;
}

/* The specialist assigned on day d, or 0. */
static int64
StaffOn(const Episode *ep, DateADT d)
{
	int64		staff = 0;

	for (int i = 0; i < ep->nasg && ep->asg_from[i] <= d; i++)
		if (ep->asg_to[i] == NO_DAY || ep->asg_to[i] >= d)
			staff = ep->asg_staff[i];
	return staff;
}

/* Derive entry, closure, day states and pauses from the raw history. */
static void
EpisodeTimeline(Episode *ep)
{
	ep->entry_on = NO_DAY;
	ep->closed_on = NO_DAY;
	ep->nday = 0;
	ep->nhold = 0;
	ep->nstudy = 0;
	if (ep->nev == 0)
		return;
	ep->day_day = palloc(ep->nev * sizeof(DateADT));
	ep->day_state = palloc(ep->nev * sizeof(int));
	ep->hold_from = palloc(ep->nev * sizeof(DateADT));
	ep->hold_to = palloc(ep->nev * sizeof(DateADT));
	ep->study_from = palloc(ep->nev * sizeof(DateADT));
	ep->study_to = palloc(ep->nev * sizeof(DateADT));
	for (int i = 0; i < ep->nev; i++)
	{
		/* entry: the first day in service (engaged, or employed straight from referred with a job held at entry) */
		if (ep->entry_on == NO_DAY &&
			(ep->ev_state[i] == STATE_ENGAGED || ep->ev_state[i] == STATE_JOB_SEARCH ||
			 ep->ev_state[i] == STATE_EMPLOYED || ep->ev_state[i] == STATE_STUDYING))
			ep->entry_on = ep->ev_day[i];
		if (ep->ev_state[i] == STATE_CLOSED && ep->closed_on == NO_DAY)
			ep->closed_on = ep->ev_day[i];
		/* the last event of a day decides that day's state */
		if (ep->nday > 0 && ep->day_day[ep->nday - 1] == ep->ev_day[i])
			ep->day_state[ep->nday - 1] = ep->ev_state[i];
		else
		{
			ep->day_day[ep->nday] = ep->ev_day[i];
			ep->day_state[ep->nday++] = ep->ev_state[i];
		}
	}
	for (int i = 0; i < ep->nday; i++)
	{
		DateADT		to = i + 1 < ep->nday ? ep->day_day[i + 1] - 1 : NO_DAY;

		if (ep->day_state[i] == STATE_ON_HOLD)
		{
			if (ep->nhold > 0 && ep->hold_to[ep->nhold - 1] == ep->day_day[i] - 1)
				ep->nhold--;	/* continues the pause before (same state twice) */
			else
				ep->hold_from[ep->nhold] = ep->day_day[i];
			ep->hold_to[ep->nhold++] = to;
		}
		if (ep->day_state[i] == STATE_ON_HOLD || ep->day_state[i] == STATE_STUDYING)
		{
			if (ep->nstudy > 0 && ep->study_to[ep->nstudy - 1] == ep->day_day[i] - 1)
				ep->nstudy--;	/* continues the span before */
			else
				ep->study_from[ep->nstudy] = ep->day_day[i];
			ep->study_to[ep->nstudy++] = to;
		}
	}
}

/* The N-th day after d outside the given pauses (NO_DAY while paused on E). */
static DateADT
ShiftPast(int npause, const DateADT *from, const DateADT *to, DateADT d, int n)
{
	DateADT		due;

	if (d == NO_DAY)
		return NO_DAY;
	due = d + n;
	for (int i = 0; i < npause; i++)
	{
		DateADT		s = Max(from[i], d + 1);

		if (from[i] > due)
			break;
		if (to[i] == NO_DAY)
			return NO_DAY;
		if (to[i] >= s)
			due += to[i] - s + 1;
	}
	return due;
}

/* The N-th day after d that is not paused (NO_DAY while paused on E). */
static DateADT
Shift(const Episode *ep, DateADT d, int n)
{
	return ShiftPast(ep->nhold, ep->hold_from, ep->hold_to, d, n);
}

/* ---------- output ---------- */

/* Put one row into the result. */
static void
PutRow(Engine *en, int64 episode_id, int64 staff_id, RuleCode rule, int64 job_id,
	   DateADT due, DateADT met, const char *status)
{
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};

	values[0] = Int64GetDatum(episode_id);
	nulls[0] = episode_id == 0;
	values[1] = Int64GetDatum(staff_id);
	nulls[1] = staff_id == 0;
	values[2] = CStringGetTextDatum(rule_codes[rule]);
	values[3] = Int64GetDatum(job_id);
	nulls[3] = job_id == 0;
	values[4] = DateADTGetDatum(due);
	values[5] = DateADTGetDatum(met);
	nulls[5] = met == NO_DAY;
	values[6] = CStringGetTextDatum(status);
	tuplestore_putvalues(en->store, en->desc, values, nulls);
}

/* Decide about one expectation: drop it, or return it as an alert or with its status. */
static void
Expect(Engine *en, int64 episode_id, int64 staff_id, RuleCode rule, int64 job_id,
	   DateADT due, DateADT met)
{
	if (due == NO_DAY)
		return;
	if (en->alerts)
	{
		if (met != NO_DAY || due > en->to + en->rule[rule].horizon)
			return;
		PutRow(en, episode_id, staff_id, rule, job_id, due, NO_DAY,
			   due <= en->to ? "overdue" : "due");
	}
	else
	{
		const char *status;

		if (due < en->from || due > en->to)
			return;
		if (met != NO_DAY)
			status = met <= due ? "met_on_time" : "met_late";
		else
			status = due < en->to ? "missed" : "open";
		PutRow(en, episode_id, staff_id, rule, job_id, due, met, status);
	}
}

/* An expectation of the current episode: within the episode's life, with the responsible specialist. */
/* (for an alert: the specialist on E; for an expectation: the one on its due day) */
static void
EpExpect(Engine *en, RuleCode rule, int64 job_id, DateADT due, DateADT met)
{
	Episode    *ep = en->ep;

	if (!en->rule[rule].enabled || due == NO_DAY)
		return;
	if (ep->closed_on != NO_DAY && due > ep->closed_on)
		return;
	/* an alert belongs to the specialist of E (a handover takes the open alerts along) */
	Expect(en, ep->id, StaffOn(ep, en->alerts ? en->to : Min(due, en->to)), rule, job_id, due, met);
}

/* Expectations from gaps in a coverage (care relationships or consents) from entry on. */
static void
CoverageGaps(Engine *en, RuleCode rule, int n, const DateADT *from, const DateADT *to)
{
	Episode    *ep = en->ep;
	DateADT		t = ep->entry_on;
	DateADT		reach = t - 1;
	int			i = 0;

	while (t <= en->to)
	{
		DateADT		next;

		while (i < n && from[i] <= t)
		{
			if (to[i] >= from[i])
				reach = Max(reach, to[i]);
			i++;
		}
		if (reach >= t)
		{
			if (reach == NO_DAY)
				break;
			t = reach + 1;
			continue;
		}
		/* a gap starts on t; the next coverage that starts later closes it */
		next = NO_DAY;
		while (i < n && to[i] < from[i])
			i++;
		if (i < n)
			next = from[i];
		EpExpect(en, rule, 0, Shift(ep, t, en->rule[rule].days), next);
		if (next == NO_DAY)
			break;
		t = next;
	}
}

/* Blocks counted from a job start: weekly in the first month, monthly for a year. */
static void
JobBlocks(Engine *en, RuleCode rule, int64 job_id, DateADT start, DateADT end)
{
	Episode    *ep = en->ep;
	RuleConf   *r = &en->rule[rule];
	DateADT		wstart = start;

	for (int k = 0; k < r->count; k++)
	{
		DateADT		due = Shift(ep, start, r->days * (k + 1) - 1);

		if (due == NO_DAY || (end != NO_DAY && end < due))
			break;
		EpExpect(en, rule, job_id, due, DayListFirstFrom(&ep->f2f, wstart));
		wstart = due + 1;
		if (due > en->to + r->horizon)
			break;
	}
}

/* All expectations of one episode. */
static void
EvaluateEpisode(Engine *en)
{
	Episode    *ep = en->ep;
	RuleConf   *r = en->rule;
	int			state;

	EpisodeTimeline(ep);

	/* the caseload of the specialists on the measuring days */
	for (int k = 0; en->staff != NULL && k < en->nmeasure; k++)
	{
		int			st = StateOn(ep, en->measure[k]);

		if (st >= 0 && st != STATE_REFERRED && st != STATE_CLOSED)
		{
			int64		staff = StaffOn(ep, en->measure[k]);
			StaffEntry *se;

			if (staff != 0 &&
				(se = hash_search(en->staff, &staff, HASH_FIND, NULL)) != NULL)
				se->caseload[k]++;
		}
	}

	state = StateOn(ep, en->to);
	if (en->alerts && (state == STATE_CLOSED || state == STATE_ON_HOLD || state < 0))
		return;

	EpExpect(en, R_REFERRAL_RESPONSE, 0, Shift(ep, ep->referred_on, r[R_REFERRAL_RESPONSE].days),
			 DayListFirstFrom(&ep->client, ep->referred_on));

	if (ep->entry_on != NO_DAY)
	{
		EpExpect(en, R_CAREER_PROFILE, 0, Shift(ep, ep->entry_on, r[R_CAREER_PROFILE].days), ep->career_on);
		/* days studying count as paused: studies are a goal equal to work (docs/records.md) */
		EpExpect(en, R_RAPID_JOB_SEARCH, 0,
				 ShiftPast(ep->nstudy, ep->study_from, ep->study_to, ep->entry_on, r[R_RAPID_JOB_SEARCH].days),
				 DayListFirstFrom(&ep->employer, PG_INT32_MIN));
	}

	for (int j = 0, first = 1; j < ep->njob; j++)
	{
		DateADT		start = ep->job_start[j];
		DateADT		end = ep->job_end[j];

		if (ep->job_held[j])
		{
			/* a job held at entry: job-retention support, monthly from entry on, and the job loss */
			if (ep->entry_on != NO_DAY && r[R_FOLLOW_ALONG_MONTHLY].enabled)
				JobBlocks(en, R_FOLLOW_ALONG_MONTHLY, ep->job_id[j], ep->entry_on, end);
			if (end != NO_DAY && !ep->job_goes_on[j])
				EpExpect(en, R_JOB_LOSS_CONTACT, ep->job_id[j], Shift(ep, end, r[R_JOB_LOSS_CONTACT].days),
						 DayListFirstFrom(&ep->client, end));
			continue;
		}
		if (ep->job_cont[j])
		{
			/* a job continued from a work trial at the same employer: the support goes on monthly */
			if (r[R_FOLLOW_ALONG_MONTHLY].enabled)
				JobBlocks(en, R_FOLLOW_ALONG_MONTHLY, ep->job_id[j], start, end);
			if (end != NO_DAY && !ep->job_goes_on[j])
				EpExpect(en, R_JOB_LOSS_CONTACT, ep->job_id[j], Shift(ep, end, r[R_JOB_LOSS_CONTACT].days),
						 DayListFirstFrom(&ep->client, end));
			continue;
		}
		if (first)
			EpExpect(en, R_BENEFITS_BEFORE_START, ep->job_id[j], start - r[R_BENEFITS_BEFORE_START].days,
					 DayListFirstFrom(&ep->benefits, PG_INT32_MIN));
		first = 0;
		EpExpect(en, R_PRE_START_CONTACT, ep->job_id[j], start,
				 DayListFirstFrom(&ep->f2f, start - r[R_PRE_START_CONTACT].days));
		EpExpect(en, R_POST_START_CONTACT, ep->job_id[j], Shift(ep, start, r[R_POST_START_CONTACT].days),
				 DayListFirstFrom(&ep->f2f, start));
		if (r[R_FIRST_MONTH_WEEKLY].enabled)
			JobBlocks(en, R_FIRST_MONTH_WEEKLY, ep->job_id[j], start, end);
		if (r[R_FOLLOW_ALONG_MONTHLY].enabled)
			JobBlocks(en, R_FOLLOW_ALONG_MONTHLY, ep->job_id[j], start, end);
		if (end != NO_DAY && !ep->job_goes_on[j])
			EpExpect(en, R_JOB_LOSS_CONTACT, ep->job_id[j], Shift(ep, end, r[R_JOB_LOSS_CONTACT].days),
					 DayListFirstFrom(&ep->client, end));
	}

	if (r[R_NO_CONTACT].enabled)
	{
		/* anchors: the referral and every day with a client contact; each gap ends at the next contact */
		int			first = 0;

		if (en->alerts && ep->client.n > 0)
			first = ep->client.n;	/* only the current gap can be unmet */
		if (first == 0 && (ep->client.n == 0 || ep->client.v[0] != ep->referred_on))
			EpExpect(en, R_NO_CONTACT, 0, Shift(ep, ep->referred_on, r[R_NO_CONTACT].days),
					 DayListFirstFrom(&ep->client, ep->referred_on + 1));
		for (int i = Max(first - 1, 0); i < ep->client.n; i++)
			EpExpect(en, R_NO_CONTACT, 0, Shift(ep, ep->client.v[i], r[R_NO_CONTACT].days),
					 i + 1 < ep->client.n ? ep->client.v[i + 1] : NO_DAY);
	}

	if (ep->entry_on != NO_DAY && r[R_CARE_RELATIONSHIP].enabled)
		CoverageGaps(en, R_CARE_RELATIONSHIP, ep->ncare, ep->care_from, ep->care_to);
	if (ep->entry_on != NO_DAY && r[R_CONSENT_FOR_CARE].enabled)
		CoverageGaps(en, R_CONSENT_FOR_CARE, ep->ncons, ep->cons_from, ep->cons_to);
}

/* ---------- reading ---------- */

/* Read the rules' numbers from ips.rule. */
static void
ReadRules(Engine *en)
{
	int			rc = SPI_execute_plan(IpsPreparePlan(&rule_plan), NULL, NULL, true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading ips.rule failed: %s", SPI_result_code_string(rc));
	memset(en->rule, 0, sizeof(en->rule));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		char	   *code = SPI_getvalue(t, d, 1);
		bool		isnull;

		for (int k = 0; k < RULE_COUNT; k++)
		{
			Datum		v;

			if (strcmp(code, rule_codes[k]) != 0)
				continue;
			v = SPI_getbinval(t, d, 2, &isnull);
			en->rule[k].enabled = !isnull && DatumGetBool(v);
			v = SPI_getbinval(t, d, 3, &isnull);
			en->rule[k].days = isnull ? 0 : DatumGetInt32(v);
			v = SPI_getbinval(t, d, 4, &isnull);
			en->rule[k].count = isnull ? 0 : DatumGetInt32(v);
			v = SPI_getbinval(t, d, 5, &isnull);
			en->rule[k].horizon = isnull ? 0 : DatumGetInt32(v);
		}
	}
	SPI_freetuptable(SPI_tuptable);
}

/* Read the team's specialists (ordered) into the staff hash. */
static void
ReadStaff(Engine *en, Datum *args)
{
	HASHCTL		ctl;
	Stream		s;
	int			cap = 0;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(StaffEntry);
	ctl.hcxt = CurrentMemoryContext;
	en->staff = hash_create("ips rule engine staff", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	en->nstaff = 0;
	en->staff_order = NULL;
	StreamOpen(&s, &staff_plans[en->sel == SEL_TEAM ? 1 : 0], args);
	for (; StreamRow(&s) != NULL; StreamNext(&s))
	{
		int64		id = StreamInt8(&s, 1);
		bool		found;
		bool		isnull;
		StaffEntry *se = hash_search(en->staff, &id, HASH_ENTER, &found);
		int			tcap;

		if (!found)
		{
			se->first_from = StreamDay(&s, 3);
			(void) SPI_getbinval(s.tt->vals[s.i], s.tt->tupdesc, 4, &isnull);
			se->started = isnull ? PG_INT32_MIN : StreamDay(&s, 4);
			se->ended = KnownDay(en, StreamDay(&s, 5));
			se->nterm = 0;
			se->cap_term = 0;
			se->term_from = NULL;
			se->term_fte = NULL;
			se->caseload = palloc0(Max(en->nmeasure, 1) * sizeof(int));
			en->staff_order = GrowArray(en->staff_order, &cap, en->nstaff + 1, sizeof(int64));
			en->staff_order[en->nstaff++] = id;
		}
		tcap = se->cap_term;
		se->term_from = GrowArray(se->term_from, &tcap, se->nterm + 1, sizeof(DateADT));
		se->term_fte = GrowArray(se->term_fte, &se->cap_term, se->nterm + 1, sizeof(double));
		se->term_from[se->nterm] = StreamDay(&s, 6);
		se->term_fte[se->nterm++] = DatumGetFloat8(SPI_getbinval(s.tt->vals[s.i], s.tt->tupdesc, 2, &isnull));
	}
	StreamClose(&s);
}

/* Read the episodes and their facts, merged by episode, and evaluate each. */
static void
ReadEpisodes(Engine *en, Datum *args)
{
	Stream		eps,
				hist,
				asg,
				con,
				emp,
				job,
				care,
				cons;
	MemoryContext ep_cxt,
				old;
	int			sel = en->sel;

	ep_cxt = AllocSetContextCreate(CurrentMemoryContext, "ips rule engine episode", ALLOCSET_DEFAULT_SIZES);
	StreamOpen(&eps, &episodes_plans[sel], args);
	StreamOpen(&hist, &history_plans[en->known][sel], args);
	StreamOpen(&asg, &assign_plans[sel], args);
	StreamOpen(&con, en->alerts ? &contact_last_plans[en->known][sel] : &contact_plans[en->known][sel], args);
	StreamOpen(&emp, en->alerts ? &employer_last_plans[en->known][sel] : &employer_plans[en->known][sel], args);
	StreamOpen(&job, &job_plans[en->known][sel], args);
	StreamOpen(&care, &care_plans[sel], args);
	StreamOpen(&cons, &consent_plans[sel], args);

	for (; StreamRow(&eps) != NULL; StreamNext(&eps))
	{
		Episode		ep;
		int64		id = StreamInt8(&eps, 1);

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(ep_cxt);
		old = MemoryContextSwitchTo(ep_cxt);
		memset(&ep, 0, sizeof(ep));
		ep.id = id;
		ep.referred_on = StreamDay(&eps, 2);
		ep.career_on = KnownDay(en, StreamDay(&eps, 3));

		for (; StreamAt(&hist, id); StreamNext(&hist))
		{
			char	   *st = SPI_getvalue(hist.tt->vals[hist.i], hist.tt->tupdesc, 3);
			int			code = st ? IpsStateFromName(st) : -1;
			int			cap = ep.cap_ev;

			if (code < 0)
				continue;

			ep.ev_day = GrowArray(ep.ev_day, &cap, ep.nev + 1, sizeof(DateADT));
			ep.ev_state = GrowArray(ep.ev_state, &ep.cap_ev, ep.nev + 1, sizeof(int));
			ep.ev_day[ep.nev] = StreamLocalDay(en, &hist, 2);
			ep.ev_state[ep.nev++] = code;
		}
		for (; StreamAt(&asg, id); StreamNext(&asg))
		{
			int			cap = ep.cap_asg;
			DateADT		asg_to;

			ep.asg_staff = GrowArray(ep.asg_staff, &cap, ep.nasg + 1, sizeof(int64));
			cap = ep.cap_asg;
			ep.asg_from = GrowArray(ep.asg_from, &cap, ep.nasg + 1, sizeof(DateADT));
			ep.asg_to = GrowArray(ep.asg_to, &ep.cap_asg, ep.nasg + 1, sizeof(DateADT));
			if (KnownDay(en, StreamDay(&asg, 3)) == NO_DAY)
				continue;		/* dated after known_at: not known then */
			ep.asg_staff[ep.nasg] = StreamInt8(&asg, 2);
			ep.asg_from[ep.nasg] = StreamDay(&asg, 3);
			/* an assignment ends with the next one: its end is known from the handover day */
			asg_to = StreamDay(&asg, 4);
			ep.asg_to[ep.nasg++] = asg_to == NO_DAY || KnownDay(en, asg_to + 1) == NO_DAY ? NO_DAY : asg_to;
		}
		for (; StreamAt(&con, id); StreamNext(&con))
		{
			DateADT		day;

			if (en->alerts)
			{
				/* the last day of each class (NULL: none) */
				DayList    *lists[3] = {&ep.client, &ep.f2f, &ep.benefits};

				for (int k = 0; k < 3; k++)
				{
					DateADT		last = StreamLocalDay(en, &con, k + 2);

					if (last != NO_DAY)
						DayListAdd(lists[k], last);
				}
				continue;
			}
			day = StreamLocalDay(en, &con, 2);
			if (StreamBool(&con, 3))
				DayListAdd(&ep.client, day);
			if (StreamBool(&con, 4))
				DayListAdd(&ep.f2f, day);
			if (StreamBool(&con, 5))
				DayListAdd(&ep.benefits, day);
		}
		for (; StreamAt(&emp, id); StreamNext(&emp))
			DayListAdd(&ep.employer, StreamLocalDay(en, &emp, 2));
		for (; StreamAt(&job, id); StreamNext(&job))
		{
			int			cap = ep.cap_job;

			ep.job_id = GrowArray(ep.job_id, &cap, ep.njob + 1, sizeof(int64));
			cap = ep.cap_job;
			ep.job_start = GrowArray(ep.job_start, &cap, ep.njob + 1, sizeof(DateADT));
			cap = ep.cap_job;
			ep.job_held = GrowArray(ep.job_held, &cap, ep.njob + 1, sizeof(bool));
			cap = ep.cap_job;
			ep.job_cont = GrowArray(ep.job_cont, &cap, ep.njob + 1, sizeof(bool));
			cap = ep.cap_job;
			ep.job_goes_on = GrowArray(ep.job_goes_on, &cap, ep.njob + 1, sizeof(bool));
			ep.job_end = GrowArray(ep.job_end, &ep.cap_job, ep.njob + 1, sizeof(DateADT));
			ep.job_id[ep.njob] = StreamInt8(&job, 2);
			ep.job_start[ep.njob] = StreamDay(&job, 3);
			ep.job_held[ep.njob] = StreamBool(&job, 5);
			ep.job_cont[ep.njob] = StreamBool(&job, 6);
			ep.job_goes_on[ep.njob] = StreamBool(&job, 7);
			ep.job_end[ep.njob++] = KnownDay(en, StreamDay(&job, 4));
		}
		for (; StreamAt(&care, id); StreamNext(&care))
		{
			int			cap = ep.cap_care;

			ep.care_from = GrowArray(ep.care_from, &cap, ep.ncare + 1, sizeof(DateADT));
			ep.care_to = GrowArray(ep.care_to, &ep.cap_care, ep.ncare + 1, sizeof(DateADT));
			if (KnownDay(en, StreamDay(&care, 2)) == NO_DAY)
				continue;
			ep.care_from[ep.ncare] = StreamDay(&care, 2);
			ep.care_to[ep.ncare++] = KnownDay(en, StreamDay(&care, 3));
		}
		for (; StreamAt(&cons, id); StreamNext(&cons))
		{
			int			cap = ep.cap_cons;
			DateADT		cons_to;

			ep.cons_from = GrowArray(ep.cons_from, &cap, ep.ncons + 1, sizeof(DateADT));
			ep.cons_to = GrowArray(ep.cons_to, &ep.cap_cons, ep.ncons + 1, sizeof(DateADT));
			if (KnownDay(en, StreamDay(&cons, 2)) == NO_DAY)
				continue;
			ep.cons_from[ep.ncons] = StreamDay(&cons, 2);
			/* the last day of consent is the day before the withdrawal, which is the fact */
			cons_to = StreamDay(&cons, 3);
			ep.cons_to[ep.ncons++] = cons_to == NO_DAY || KnownDay(en, cons_to + 1) == NO_DAY ? NO_DAY : cons_to;
		}

		en->ep = &ep;
		EvaluateEpisode(en);
		en->ep = NULL;
		MemoryContextSwitchTo(old);
	}

	StreamClose(&eps);
	StreamClose(&hist);
	StreamClose(&asg);
	StreamClose(&con);
	StreamClose(&emp);
	StreamClose(&job);
	StreamClose(&care);
	StreamClose(&cons);
	MemoryContextDelete(ep_cxt);
}

/* The FTE of a specialist in force on day d (terms ordered by from_on; the first is -infinity). */
static double
StaffFteOn(const StaffEntry *se, DateADT d)
{
	double		fte = se->nterm > 0 ? se->term_fte[0] : 1.0;

	for (int i = 0; i < se->nterm && se->term_from[i] <= d; i++)
		fte = se->term_fte[i];
	return fte;
}

/* True when the specialist is on the team on day d. */
static bool
StaffOnTeam(const StaffEntry *se, DateADT d)
{
	return d >= se->started && (se->ended == NO_DAY || d < se->ended);
}

/* The per-specialist rules: employer contacts and team meetings per ISO week, and caseload. */
static void
EvaluateSpecialists(Engine *en, Datum *args, DateADT first_sunday, DateADT last_sunday)
{
	Stream		emp,
				mtg;
	int			team = en->sel == SEL_TEAM ? 1 : 0;
	MemoryContext cxt,
				old;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "ips rule engine specialist", ALLOCSET_DEFAULT_SIZES);
	StreamOpen(&emp, &staff_employer_plans[en->known][team], args);
	StreamOpen(&mtg, &staff_meeting_plans[team], args);
	for (int k = 0; k < en->nstaff; k++)
	{
		int64		id = en->staff_order[k];
		StaffEntry *se = hash_search(en->staff, &id, HASH_FIND, NULL);
		DayList		ec = {NULL, 0, 0};
		DayList		tm = {NULL, 0, 0};
		RuleConf   *r = en->rule;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(cxt);
		old = MemoryContextSwitchTo(cxt);
		for (; StreamAt(&emp, id); StreamNext(&emp))
		{
			/* several contacts a day count one by one */
			ec.v = GrowArray(ec.v, &ec.cap, ec.n + 1, sizeof(DateADT));
			ec.v[ec.n++] = StreamLocalDay(en, &emp, 2);
		}
		for (; StreamAt(&mtg, id); StreamNext(&mtg))
			if (KnownDay(en, StreamDay(&mtg, 2)) != NO_DAY)
				DayListAdd(&tm, StreamDay(&mtg, 2));

		for (DateADT sun = first_sunday; sun <= last_sunday; sun += 7)
		{
			DateADT		monday = sun - 6;
			DateADT		kth;

			/* a week counts when the person is on the team from its Monday to its Sunday */
			if (se->first_from == NO_DAY || se->first_from > monday ||
				!StaffOnTeam(se, monday) || !StaffOnTeam(se, sun))
				continue;
			if (r[R_SPECIALIST_EMPLOYER_CONTACTS].enabled)
			{
				int			need = (int) ceil(r[R_SPECIALIST_EMPLOYER_CONTACTS].count * StaffFteOn(se, sun) - 1e-9);

				(void) DayListCountIn(&ec, monday, sun, &kth, Max(need, 1));
				Expect(en, 0, id, R_SPECIALIST_EMPLOYER_CONTACTS, 0, sun, need <= 0 ? sun : kth);
			}
			if (r[R_SPECIALIST_TEAM_MEETING].enabled)
			{
				(void) DayListCountIn(&tm, monday, sun, &kth, Max(r[R_SPECIALIST_TEAM_MEETING].count, 1));
				Expect(en, 0, id, R_SPECIALIST_TEAM_MEETING, 0, sun, kth);
			}
		}
		if (r[R_SPECIALIST_CASELOAD].enabled)
		{
			for (int m = 0; m < en->nmeasure; m++)
			{
				DateADT		d = en->measure[m];
				bool		ok = se->caseload[m] <= r[R_SPECIALIST_CASELOAD].count * StaffFteOn(se, d) + 1e-9;

				if (se->first_from == NO_DAY || se->first_from > d || !StaffOnTeam(se, d))
					continue;
				Expect(en, 0, id, R_SPECIALIST_CASELOAD, 0, d, ok ? d : NO_DAY);
			}
		}
		MemoryContextSwitchTo(old);
	}
	StreamClose(&emp);
	StreamClose(&mtg);
	MemoryContextDelete(cxt);
}

PG_FUNCTION_INFO_V1(ips_rule_engine);
/* ips.rule_engine(mode, from_on, to_on, team_id, episode_id[, known_at]): expectations or alerts. */
Datum
ips_rule_engine(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Engine		en;
	char	   *mode;
	char	   *tz;
	Datum		args[5];
	DateADT		first_sunday,
				last_sunday;
	int			max_horizon = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ips.rule_engine needs a mode and two days"),
				 errhint("Call ips.contact_alerts(), ips.episode_alerts() or ips.expectations() instead.")));
	mode = text_to_cstring(PG_GETARG_TEXT_PP(0));
	memset(&en, 0, sizeof(en));
	if (strcmp(mode, "alerts") == 0)
		en.alerts = true;
	else if (strcmp(mode, "expectations") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown rule engine mode \"%s\"", mode),
				 errhint("Use alerts or expectations.")));
	en.from = PG_GETARG_DATEADT(1);
	en.to = PG_GETARG_DATEADT(2);
	if (DATE_NOT_FINITE(en.from) || DATE_NOT_FINITE(en.to) || en.from > en.to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the rule engine needs finite days with from_on <= to_on"),
				 errhint("Give a period of real days, the first not after the last.")));
	if (!PG_ARGISNULL(4))
	{
		en.sel = SEL_EPISODE;
		args[0] = PG_GETARG_DATUM(4);
	}
	else if (!PG_ARGISNULL(3))
	{
		en.sel = SEL_TEAM;
		args[0] = PG_GETARG_DATUM(3);
	}
	else
	{
		en.sel = SEL_ALL;
		args[0] = Int64GetDatum(0);
	}

	InitMaterializedSRF(fcinfo, 0);
	en.store = rsinfo->setResult;
	en.desc = rsinfo->setDesc;

	SPI_connect();
	tz = IpsTimeZone();
	en.tzname = tz;
	ReadRules(&en);
	for (int k = 0; k < RULE_COUNT; k++)
		max_horizon = Max(max_horizon, en.rule[k].horizon);

	/* ISO weeks (Monday to Sunday) of the specialist rules, and the caseload measuring days */
	if (en.alerts)
	{
		first_sunday = en.to - IsoDow(en.to) % 7;	/* the last Sunday on or before E */
		last_sunday = first_sunday;
		while (last_sunday + 7 <= en.to + max_horizon)
			last_sunday += 7;
		en.nmeasure = 1;
		en.measure = palloc(sizeof(DateADT));
		en.measure[0] = en.to;
	}
	else
	{
		first_sunday = en.from + (7 - IsoDow(en.from)) % 7;	/* first Sunday on or after from */
		last_sunday = en.to - IsoDow(en.to) % 7;	/* last Sunday on or before E */
		en.nmeasure = 0;
		en.measure = palloc(sizeof(DateADT) * Max(1, (last_sunday - first_sunday) / 7 + 1));
		for (DateADT s = first_sunday; s <= last_sunday; s += 7)
			en.measure[en.nmeasure++] = s;
	}

	args[1] = DateADTGetDatum(en.to);
	args[3] = CStringGetTextDatum(tz);
	/* known_at (argument 6, 1.2): facts recorded by then; NULL or absent: every fact */
	{
		TimestampTz known;

		en.known_day = NO_DAY;
		if (PG_NARGS() > 5 && !PG_ARGISNULL(5))
		{
			known = PG_GETARG_TIMESTAMPTZ(5);
			en.known = 1;
			if (!TIMESTAMP_NOT_FINITE(known))
				en.known_day = IpsLocalDate(known, tz);
			else if (TIMESTAMP_IS_NOBEGIN(known))
				en.known_day = PG_INT32_MIN;
		}
		else
			TIMESTAMP_NOEND(known);
		args[4] = TimestampTzGetDatum(known);
	}
	if (en.sel != SEL_EPISODE)
	{
		args[2] = DateADTGetDatum(first_sunday - 6);
		ReadStaff(&en, args);
	}
	args[2] = DateADTGetDatum(en.from);
	ReadEpisodes(&en, args);
	if (en.sel != SEL_EPISODE)
	{
		args[2] = DateADTGetDatum(first_sunday - 6);
		EvaluateSpecialists(&en, args, first_sunday, last_sunday);
	}
	SPI_finish();
	return (Datum) 0;
}
