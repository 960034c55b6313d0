/*
 * security_policy.c
 *		The helpers of the row-level security policies of ips: who is calling,
 *		and which rows (teams, staff, episodes, clients, reviews) that caller's
 *		policies let through.
 *
 *	Each helper returns a bigint[] and is used in a policy as
 *	"col = ANY ((SELECT ips.f())::bigint[])", so that it runs once per
 *	statement (an InitPlan).  They are declared SECURITY DEFINER with a
 *	pinned search_path, so that they read the staff, episode, intake, care
 *	relationship and consent rows the policies are about (the caller may
 *	not).  The caller is the role on whose behalf the statement runs
 *	(GetOuterUserId(), as ips.caller()).
 *
 *	They were SQL functions: PostgreSQL cannot inline a SECURITY DEFINER SQL
 *	function, and it parses and plans the body of a non-inlined SQL function
 *	again at every call site of every statement (the helpers that call
 *	ips.my_teams() once more), which cost a fixed 0.2-0.3 ms per policy
 *	reference.  Here each query is prepared once per backend (IpsPreparePlan)
 *	and a call is one execution of a kept plan with the caller's name as its
 *	parameter.  The queries read the data under the statement's snapshot
 *	(read-only SPI), like the STABLE SQL functions did; nothing is cached
 *	between calls.
 *
 *	All SPI statements here name schema-qualified tables and functions and
 *	qualify their operators, since they run as the extension owner.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "ips.h"

/* The team of the caller, when the caller is a specialist or supervisor ($1: the caller). */
#define MY_TEAM \
	"SELECT m.team_id FROM ips.staff m WHERE m.db_role OPERATOR(pg_catalog.=) $1" \
	" AND m.role OPERATOR(pg_catalog.=) ANY ('{specialist,supervisor}'::pg_catalog.text[])"
#define IN_MY_TEAM(COL) " " COL " OPERATOR(pg_catalog.=) ANY (" MY_TEAM ")"

static IpsPlan my_teams_plan = {NULL,
	"SELECT pg_catalog.array_agg(m.team_id ORDER BY m.team_id) FROM (" MY_TEAM ") m", 1, {NAMEOID}};

static IpsPlan team_staff_plan = {NULL,
	"SELECT pg_catalog.array_agg(s.staff_id ORDER BY s.staff_id) FROM ips.staff s WHERE" IN_MY_TEAM("s.team_id"),
	1, {NAMEOID}};

static IpsPlan team_episodes_plan = {NULL,
	"SELECT pg_catalog.array_agg(e.episode_id ORDER BY e.episode_id) FROM ips.episode e WHERE" IN_MY_TEAM("e.team_id"),
	1, {NAMEOID}};

static IpsPlan team_reviews_plan = {NULL,
	"SELECT pg_catalog.array_agg(r.review_id ORDER BY r.review_id) FROM ips.fidelity_review r WHERE" IN_MY_TEAM("r.team_id"),
	1, {NAMEOID}};

static IpsPlan team_clients_plan = {NULL,
	"SELECT pg_catalog.array_agg(DISTINCT x.client_id ORDER BY x.client_id)"
	" FROM (SELECT e.client_id FROM ips.episode e WHERE" IN_MY_TEAM("e.team_id")
	"       UNION ALL"
	"       SELECT i.client_id FROM ips.client_intake i WHERE" IN_MY_TEAM("i.team_id") ") x",
	1, {NAMEOID}};

/*
 * The staff in whose name the caller may record contacts, employer contacts and
 * meeting attendance: the caller; a supervisor also the staff of the own team.
 */
static IpsPlan recordable_staff_plan = {NULL,
	"SELECT pg_catalog.array_agg(s.staff_id ORDER BY s.staff_id)"
	" FROM ips.staff m JOIN ips.staff s"
	"   ON s.staff_id OPERATOR(pg_catalog.=) m.staff_id"
	"   OR (m.role OPERATOR(pg_catalog.=) 'supervisor'::pg_catalog.text AND s.team_id OPERATOR(pg_catalog.=) m.team_id)"
	" WHERE m.db_role OPERATOR(pg_catalog.=) $1",
	1, {NAMEOID}};

/*
 * The clients whom the calling clinician's unit cares for today and who
 * consent to sharing with care (share_with_care) today: a consent given on or
 * before today, not withdrawn by today, and not ended by a refusal of the
 * same scope recorded since it was given.
 */
static IpsPlan shared_clients_plan = {NULL,
	"SELECT pg_catalog.array_agg(DISTINCT r.client_id ORDER BY r.client_id)"
	" FROM ips.staff s"
	" JOIN ips.care_relationship r ON r.unit OPERATOR(pg_catalog.=) s.unit"
	" CROSS JOIN (SELECT ips.local_date(pg_catalog.now()) AS d) t"
	" WHERE s.db_role OPERATOR(pg_catalog.=) $1 AND s.role OPERATOR(pg_catalog.=) 'clinician'::pg_catalog.text"
	"   AND r.started_on OPERATOR(pg_catalog.<=) t.d"
	"   AND (r.ended_on IS NULL OR r.ended_on OPERATOR(pg_catalog.>) t.d)"
	"   AND EXISTS (SELECT 1 FROM ips.consent c"
	"                WHERE c.client_id OPERATOR(pg_catalog.=) r.client_id"
	"                  AND c.scope OPERATOR(pg_catalog.=) 'share_with_care'::pg_catalog.text"
	"                  AND c.given_on OPERATOR(pg_catalog.<=) t.d"
	"                  AND (c.withdrawn_on IS NULL OR c.withdrawn_on OPERATOR(pg_catalog.>) t.d)"
	"                  AND NOT EXISTS (SELECT 1 FROM ips.consent_refusal x"
	"                                   WHERE x.client_id OPERATOR(pg_catalog.=) c.client_id"
	"                                     AND x.scope OPERATOR(pg_catalog.=) c.scope"
	"                                     AND x.refused_on OPERATOR(pg_catalog.>=) c.given_on"
	"                                     AND x.refused_on OPERATOR(pg_catalog.<=) t.d))",
	1, {NAMEOID}};

/*
 * Prepare a helper's query once per backend and keep it.  The only parameter is
 * the caller's name, matched through a unique index, so the generic plan is as
 * good as a custom one: it is used from the first call, instead of planning the
 * query again for each of the first five calls of every backend.
 */
static SPIPlanPtr
prepare_generic(IpsPlan *p)
{
	if (p->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(p->sql, p->nargs, p->argtypes, CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare_cursor failed for \"%s\": %s", p->sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		p->plan = plan;
	}
	return p->plan;
}

/*
 * The results of the helpers for one caller under one snapshot.
 *
 * One statement often needs the same helper several times: the caseload read
 * of a specialist has one policy InitPlan per table reference (the episode, two
 * subqueries on contact, one on job), three of them ips.team_episodes().  A
 * helper's result depends only on the caller, the data and the snapshot that
 * the read-only query runs with (the active snapshot), so the result is kept
 * and given again while all of these are the same:
 *	- the transaction (local transaction id) and the caller's name;
 *	- the active snapshot's content: xmin, xmax, the in-progress
 *	  (sub)transactions and the command id (a change by this transaction
 *	  makes a new command id; a commit by another one changes xmax or the
 *	  in-progress list of the next snapshot; the same snapshot content sees
 *	  the same rows);
 *	- no subtransaction was rolled back since (that hides this transaction's
 *	  own rows without a new command id): a callback forgets everything then,
 *	  and at the end of the transaction.
 * Outside an MVCC snapshot nothing is kept.
 */
typedef enum PolicyHelper
{
	HELPER_MY_TEAMS = 0,
	HELPER_TEAM_STAFF,
	HELPER_TEAM_EPISODES,
	HELPER_TEAM_REVIEWS,
	HELPER_TEAM_CLIENTS,
	HELPER_SHARED_CLIENTS,
	HELPER_RECORDABLE_STAFF,
	HELPER_COUNT
} PolicyHelper;

typedef struct PolicyCache
{
	bool		valid;
	LocalTransactionId lxid;
	NameData	caller;
	TransactionId xmin;
	TransactionId xmax;
	uint32		xcnt;
	int32		subxcnt;
	bool		suboverflowed;
	bool		takenDuringRecovery;
	CommandId	curcid;
	TransactionId *xip;			/* xcnt entries, in cache_cxt */
	TransactionId *subxip;		/* subxcnt entries, in cache_cxt */
	Datum		ids[HELPER_COUNT];	/* bigint[] in cache_cxt, or 0 */
} PolicyCache;

static PolicyCache cache;
static MemoryContext cache_cxt = NULL;

static void
forget_cache(void)
{
	cache.valid = false;
	if (cache_cxt != NULL)
		MemoryContextReset(cache_cxt);
}

static void
policy_xact_callback(XactEvent event, void *arg)
{
	forget_cache();
}

static void
policy_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		forget_cache();
}

/* Whether the cache holds results for this caller under this snapshot. */
static bool
cache_matches(Snapshot snap, const NameData *caller)
{
	return cache.valid &&
		cache.lxid == MyProc->lxid &&
		strcmp(NameStr(cache.caller), NameStr(*caller)) == 0 &&
		cache.curcid == snap->curcid &&
		TransactionIdEquals(cache.xmin, snap->xmin) &&
		TransactionIdEquals(cache.xmax, snap->xmax) &&
		cache.xcnt == snap->xcnt &&
		cache.subxcnt == snap->subxcnt &&
		cache.suboverflowed == snap->suboverflowed &&
		cache.takenDuringRecovery == snap->takenDuringRecovery &&
		(snap->xcnt == 0 ||
		 memcmp(cache.xip, snap->xip, snap->xcnt * sizeof(TransactionId)) == 0) &&
		(snap->subxcnt == 0 ||
		 memcmp(cache.subxip, snap->subxip, snap->subxcnt * sizeof(TransactionId)) == 0);
}

/* Forget the results and key the cache to this caller and snapshot. */
static void
cache_reset_to(Snapshot snap, const NameData *caller)
{
	if (cache_cxt == NULL)
	{
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "ips policy helpers",
										  ALLOCSET_SMALL_SIZES);
		RegisterXactCallback(policy_xact_callback, NULL);
		RegisterSubXactCallback(policy_subxact_callback, NULL);
	}
	forget_cache();
	cache.lxid = MyProc->lxid;
	cache.caller = *caller;
	cache.curcid = snap->curcid;
	cache.xmin = snap->xmin;
	cache.xmax = snap->xmax;
	cache.xcnt = snap->xcnt;
	cache.subxcnt = snap->subxcnt;
	cache.suboverflowed = snap->suboverflowed;
	cache.takenDuringRecovery = snap->takenDuringRecovery;
	cache.xip = NULL;
	cache.subxip = NULL;
	if (snap->xcnt > 0)
	{
		cache.xip = MemoryContextAlloc(cache_cxt, snap->xcnt * sizeof(TransactionId));
		memcpy(cache.xip, snap->xip, snap->xcnt * sizeof(TransactionId));
	}
	if (snap->subxcnt > 0)
	{
		cache.subxip = MemoryContextAlloc(cache_cxt, snap->subxcnt * sizeof(TransactionId));
		memcpy(cache.subxip, snap->subxip, snap->subxcnt * sizeof(TransactionId));
	}
	memset(cache.ids, 0, sizeof(cache.ids));
	cache.valid = true;
}

/*
 * Run one helper's kept plan for the calling role and return its bigint[]
 * (an empty array when no row qualifies), allocated in the caller's context.
 */
static Datum
policy_query(IpsPlan *p, Name caller)
{
	Datum		arg = NameGetDatum(caller);
	Datum		result;
	bool		isnull;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_plan(prepare_generic(p), &arg, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "policy helper query failed: %s", SPI_result_code_string(rc));
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		result = PointerGetDatum(NULL);
	else
		result = SPI_datumTransfer(result, false, -1);
	SPI_finish();

	if (isnull)
		result = PointerGetDatum(construct_empty_array(INT8OID));
	return result;
}

/* One helper's result for the caller: from the cache, or queried (and kept). */
static Datum
policy_ids(PolicyHelper which, IpsPlan *p)
{
	NameData	caller;
	Snapshot	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : NULL;
	Datum		result;

	namestrcpy(&caller, GetUserNameFromId(GetOuterUserId(), false));
	if (snap == NULL || snap->snapshot_type != SNAPSHOT_MVCC)
		return policy_query(p, &caller);

	if (!cache_matches(snap, &caller))
		cache_reset_to(snap, &caller);
	else if (cache.ids[which] != (Datum) 0)
		return datumCopy(cache.ids[which], false, -1);

	result = policy_query(p, &caller);
	/* the query may have run a subtransaction callback; keep only a still valid key */
	if (cache_matches(snap, &caller))
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(cache_cxt);

		cache.ids[which] = datumCopy(result, false, -1);
		MemoryContextSwitchTo(oldcxt);
	}
	return result;
}

PG_FUNCTION_INFO_V1(ips_my_teams);
/* ips.my_teams(): the team of the calling specialist or supervisor (empty for anyone else). */
Datum
ips_my_teams(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(policy_ids(HELPER_MY_TEAMS, &my_teams_plan));
}

PG_FUNCTION_INFO_V1(ips_team_staff);
/* ips.team_staff(): the staff of the caller's team. */
Datum
ips_team_staff(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(policy_ids(HELPER_TEAM_STAFF, &team_staff_plan));
}

PG_FUNCTION_INFO_V1(ips_team_episodes);
/* ips.team_episodes(): the episodes (open and closed) of the caller's team. */
Datum
ips_team_episodes(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(policy_ids(HELPER_TEAM_EPISODES, &team_episodes_plan));
}

PG_FUNCTION_INFO_V1(ips_team_reviews);
/* ips.team_reviews(): the fidelity reviews of the caller's team (empty while ips.fidelity_review does not exist). */
Datum
ips_team_reviews(PG_FUNCTION_ARGS)
{
	Oid			nsp = get_namespace_oid("ips", true);

	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("fidelity_review", nsp)))
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(INT8OID));
	PG_RETURN_DATUM(policy_ids(HELPER_TEAM_REVIEWS, &team_reviews_plan));
}

PG_FUNCTION_INFO_V1(ips_team_clients);
/* ips.team_clients(): the clients with an episode in the caller's team, or registered by it. */
Datum
ips_team_clients(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(policy_ids(HELPER_TEAM_CLIENTS, &team_clients_plan));
}

PG_FUNCTION_INFO_V1(ips_shared_clients);
/* ips.shared_clients(): the clients the calling clinician's unit cares for today and who consent to sharing. */
Datum
ips_shared_clients(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(policy_ids(HELPER_SHARED_CLIENTS, &shared_clients_plan));
}

PG_FUNCTION_INFO_V1(ips_recordable_staff);
/* ips.recordable_staff(): the caller's own staff id; for a supervisor also the own team's staff. */
Datum
ips_recordable_staff(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(policy_ids(HELPER_RECORDABLE_STAFF, &recordable_staff_plan));
}
