/*
 * lookup.c
 *		Direct index look-ups for the hot paths of the state machine and the
 *		guards, and the small SQL helpers built on them (ips.require,
 *		ips.check_code, ips.local_date, ips.local_midnight).
 *
 * A look-up reads one row through a unique index with the active snapshot,
 * exactly what the SQL it replaces would see, without starting an executor
 * per row.  Where the SQL ran with the caller's rights, the direct read is
 * taken only when the caller may read the table and no row-level security
 * applies; otherwise the caller falls back to SQL, so that privileges,
 * policies and their errors stay those of the SQL.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "storage/proc.h"
#include "storage/sinval.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ips.h"

/* OID of a relation of schema ips, or InvalidOid. */
static Oid
IpsRelid(const char *relname)
{
	Oid			nsp = get_namespace_oid("ips", true);

	return OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
}

/* The snapshot the SQL would read with: the active one (a new one outside a statement). */
static Snapshot
ReadSnapshot(void)
{
	return ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
}

/* True when the current user may read the table directly (SELECT right, no row-level security). */
static bool
DirectReadAllowed(Oid relid)
{
	return pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK &&
		check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED;
}

/*
 * Fetch the row of table relname that its unique index indexname finds for
 * the keys (sk_attno: index columns; the collations are set here from the
 * index), with the active snapshot.  Returns a copy in the caller's memory
 * context or NULL; *td receives a copy of the table's descriptor when given.
 */
HeapTuple
IpsFetchByIndex(const char *relname, const char *indexname, int nkeys, ScanKey keys,
				TupleDesc *td)
{
	Oid			relid = IpsRelid(relname);
	Oid			indexid = IpsRelid(indexname);
	Relation	rel;
	Relation	irel;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	HeapTuple	result = NULL;

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "ips.%s or its index ips.%s is missing", relname, indexname);
	rel = table_open(relid, AccessShareLock);
	irel = index_open(indexid, AccessShareLock);
	for (int i = 0; i < nkeys; i++)
		keys[i].sk_collation = irel->rd_indcollation[keys[i].sk_attno - 1];
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, irel, ReadSnapshot(), nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
		result = ExecCopySlotHeapTuple(slot);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	if (td)
		*td = CreateTupleDescCopy(RelationGetDescr(rel));
	index_close(irel, AccessShareLock);
	table_close(rel, AccessShareLock);
	return result;
}

/* A column of a fetched row, by name. */
Datum
IpsGetColumn(HeapTuple tup, TupleDesc td, const char *column, bool *isnull)
{
	int			attnum = SPI_fnumber(td, column);

	if (attnum <= 0)
		elog(ERROR, "ips: column \"%s\" is missing", column);
	return heap_getattr(tup, attnum, td, isnull);
}

/*
 * True when the current user reads ips.relname directly (see
 * DirectReadAllowed).  The answer is kept for the rest of the command: it
 * is asked once per row by the guards, and it can only change with the user
 * or its security context, the row_security setting, a catalog change (GRANT, ALTER TABLE ... ROW
 * LEVEL SECURITY: a later command, or an invalidation message from another
 * session) or another transaction.
 */
typedef struct DirectReadAnswer
{
	char		relname[NAMEDATALEN];
	bool		allowed;
	Oid			userid;
	int			sec_context;
	bool		row_security;
	LocalTransactionId lxid;
	CommandId	cid;
	uint64		inval;
} DirectReadAnswer;

#define DIRECT_READ_ANSWERS 8

bool
IpsDirectRead(const char *relname)
{
	static DirectReadAnswer answers[DIRECT_READ_ANSWERS];
	static int	next_answer = 0;
	Oid			userid;
	int			sec_context;
	CommandId	cid = GetCurrentCommandId(false);
	DirectReadAnswer *a;
	Oid			relid;

	GetUserIdAndSecContext(&userid, &sec_context);

	for (int i = 0; i < DIRECT_READ_ANSWERS; i++)
	{
		a = &answers[i];
		if (a->lxid == MyProc->lxid && a->lxid != InvalidLocalTransactionId &&
			a->cid == cid && a->userid == userid && a->sec_context == sec_context &&
			a->row_security == row_security &&
			a->inval == SharedInvalidMessageCounter && strcmp(a->relname, relname) == 0)
			return a->allowed;
	}
	relid = IpsRelid(relname);
	a = &answers[next_answer];
	next_answer = (next_answer + 1) % DIRECT_READ_ANSWERS;
	a->allowed = OidIsValid(relid) && DirectReadAllowed(relid);
	if (strlen(relname) < NAMEDATALEN)
	{
		strcpy(a->relname, relname);
		a->userid = userid;
		a->sec_context = sec_context;
		a->row_security = row_security;
		a->lxid = MyProc->lxid;
		a->cid = cid;
		a->inval = SharedInvalidMessageCounter;
	}
	else
		a->lxid = InvalidLocalTransactionId;
	return a->allowed;
}

/*
 * True when the snapshot in use sees exactly what it saw when *key was
 * saved: same transaction, subtransaction and command, and the same running
 * transactions (xmin, xmax and the in-progress lists), which is all an MVCC
 * snapshot's visibility depends on.  Otherwise saves the current key in *key
 * and returns false.
 */
bool
IpsSameSnapshot(IpsSnapshotKey *key)
{
	Snapshot	snap = ReadSnapshot();
	bool		same;

	same = key->valid &&
		key->lxid == MyProc->lxid &&
		key->subid == GetCurrentSubTransactionId() &&
		key->cid == snap->curcid &&
		TransactionIdEquals(key->xmin, snap->xmin) &&
		TransactionIdEquals(key->xmax, snap->xmax) &&
		key->xcnt == snap->xcnt &&
		key->subxcnt == snap->subxcnt &&
		key->suboverflowed == snap->suboverflowed &&
		(snap->xcnt == 0 || memcmp(key->xip, snap->xip, snap->xcnt * sizeof(TransactionId)) == 0) &&
		(snap->subxcnt == 0 ||
		 memcmp(key->xip + snap->xcnt, snap->subxip, snap->subxcnt * sizeof(TransactionId)) == 0);
	if (same)
		return true;

	/* remember this snapshot, unless its lists are too long to keep */
	key->valid = snap->snapshot_type == SNAPSHOT_MVCC &&
		snap->xcnt + snap->subxcnt <= lengthof(key->xip);
	if (key->valid)
	{
		key->lxid = MyProc->lxid;
		key->subid = GetCurrentSubTransactionId();
		key->cid = snap->curcid;
		key->xmin = snap->xmin;
		key->xmax = snap->xmax;
		key->xcnt = snap->xcnt;
		key->subxcnt = snap->subxcnt;
		key->suboverflowed = snap->suboverflowed;
		if (snap->xcnt > 0)
			memcpy(key->xip, snap->xip, snap->xcnt * sizeof(TransactionId));
		if (snap->subxcnt > 0)
			memcpy(key->xip + snap->xcnt, snap->subxip, snap->subxcnt * sizeof(TransactionId));
	}
	return false;
}

/* Value of a setting read directly (callers check IpsDirectRead first), or NULL. */
static char *
SettingDirect(const char *name)
{
	ScanKeyData key;
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	Datum		v;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(name));
	tup = IpsFetchByIndex("setting", "setting_pkey", 1, &key, &td);
	if (tup == NULL)
		return NULL;
	v = IpsGetColumn(tup, td, "value", &isnull);
	return isnull ? NULL : TextDatumGetCString(v);
}

/*
 * The region's time zone (setting time_zone, default Europe/Helsinki), as
 * ips.setting_value('time_zone') would read it.  Callers outside SPI may use
 * it: the fallback connects to SPI itself.
 */
char *
IpsTimeZone(void)
{
	static IpsSnapshotKey cached_key;
	static char cached_tz[NAMEDATALEN * 4];
	char	   *tz;

	if (IpsDirectRead("setting"))
	{
		bool		keep;

		if (IpsSameSnapshot(&cached_key))
			return pstrdup(cached_tz);
		/* the new key holds only once the value is read */
		keep = cached_key.valid;
		cached_key.valid = false;
		tz = SettingDirect("time_zone");
		if (tz == NULL)
			tz = pstrdup("Europe/Helsinki");
		if (keep && strlen(tz) < sizeof(cached_tz))
		{
			strcpy(cached_tz, tz);
			cached_key.valid = true;
		}
		return tz;
	}
	else
	{
		MemoryContext cxt = CurrentMemoryContext;
		char	   *v;

		SPI_connect();
		v = IpsSettingText("time_zone");
		tz = v ? MemoryContextStrdup(cxt, v) : NULL;
		SPI_finish();
	}
	return tz ? tz : pstrdup("Europe/Helsinki");
}

/*
 * The staff row of the calling role (ips.current_staff(), a definer-rights
 * function: read without the caller's rights).  *found is false when none.
 */
int64
IpsCurrentStaff(bool *found)
{
	ScanKeyData key;
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	Datum		role = DirectFunctionCall1(namein,
										   CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false)));
	Datum		v;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_NAMEEQ, role);
	tup = IpsFetchByIndex("staff", "staff_db_role_key", 1, &key, &td);
	*found = false;
	if (tup == NULL)
		return 0;
	v = IpsGetColumn(tup, td, "staff_id", &isnull);
	*found = !isnull;
	return isnull ? 0 : DatumGetInt64(v);
}

PG_FUNCTION_INFO_V1(ips_require);
/* ips.require(value, what): raise 22004 when a required argument is NULL. */
Datum
ips_require(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
	{
		char	   *what = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));

		/* as the PL/pgSQL original: RAISE shows a NULL as <NULL>, format() as nothing */
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what ? what : "<NULL>"),
				 errhint("Give %s.", what ? what : "")));
	}
	PG_RETURN_VOID();
}

static IpsPlan codes_plan = {NULL,
	"SELECT pg_catalog.string_agg(v.code, ', ' ORDER BY v.ordinal) FROM ips.vocabulary v"
	" WHERE v.category OPERATOR(pg_catalog.=) $1", 1, {TEXTOID}};

static IpsPlan code_plan = {NULL,
	"SELECT 1 FROM ips.vocabulary v WHERE v.category OPERATOR(pg_catalog.=) $1"
	" AND v.code OPERATOR(pg_catalog.=) $2", 2, {TEXTOID, TEXTOID}};

PG_FUNCTION_INFO_V1(ips_check_code);
/* ips.check_code(category, code, what): raise 22023 with the valid codes as hint unless code belongs to category. */
Datum
ips_check_code(PG_FUNCTION_ARGS)
{
	bool		known = false;
	Datum		args[2];
	char	   *what;
	char	   *codes = NULL;
	int			rc;

	/* a required code given as NULL: 22004, like any required argument */
	if (PG_ARGISNULL(1))
	{
		what = PG_ARGISNULL(2) ? "<NULL>" : text_to_cstring(PG_GETARG_TEXT_PP(2));
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what),
				 errhint("Give the %s.", what)));
	}
	if (!PG_ARGISNULL(0) && !PG_ARGISNULL(1))
	{
		args[0] = PG_GETARG_DATUM(0);
		args[1] = PG_GETARG_DATUM(1);
		if (IpsDirectRead("vocabulary"))
		{
			ScanKeyData keys[2];
			HeapTuple	tup;

			ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ, args[0]);
			ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, args[1]);
			tup = IpsFetchByIndex("vocabulary", "vocabulary_pkey", 2, keys, NULL);
			known = tup != NULL;
		}
		else
		{
			SPI_connect();
			rc = SPI_execute_plan(IpsPreparePlan(&code_plan), args, NULL, true, 1);
			if (rc != SPI_OK_SELECT)
				elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
			known = SPI_processed > 0;
			SPI_finish();
		}
	}
	if (known)
		PG_RETURN_VOID();

	/* Unknown: the error names the valid codes in their order. */
	what = PG_ARGISNULL(2) ? "<NULL>" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (!PG_ARGISNULL(0))
	{
		MemoryContext cxt = CurrentMemoryContext;

		args[0] = PG_GETARG_DATUM(0);
		SPI_connect();
		rc = SPI_execute_plan(IpsPreparePlan(&codes_plan), args, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
		if (SPI_processed > 0)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			codes = v ? MemoryContextStrdup(cxt, v) : NULL;
		}
		SPI_finish();
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown %s \"%s\"", what,
					PG_ARGISNULL(1) ? "NULL" : text_to_cstring(PG_GETARG_TEXT_PP(1))),
			 errhint("Use one of: %s.", codes ? codes : "")));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(ips_local_date);
/* ips.local_date(at): the calendar day of an instant in the region's time zone. */
Datum
ips_local_date(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATEADT(IpsLocalDate(PG_GETARG_TIMESTAMPTZ(0), IpsTimeZone()));
}

PG_FUNCTION_INFO_V1(ips_local_midnight);
/* ips.local_midnight(day): the instant a calendar day starts in the region's time zone. */
Datum
ips_local_midnight(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall2(timestamp_zone,
										CStringGetTextDatum(IpsTimeZone()),
										DirectFunctionCall1(date_timestamp, PG_GETARG_DATUM(0))));
}
