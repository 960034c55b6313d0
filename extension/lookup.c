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
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
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
	SysScanDesc scan;
	HeapTuple	tup;
	HeapTuple	result = NULL;

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "ips.%s or its index ips.%s is missing", relname, indexname);
	rel = table_open(relid, AccessShareLock);
	irel = index_open(indexid, AccessShareLock);
	/* systable_beginscan takes table columns; the collations are the index's */
	for (int i = 0; i < nkeys; i++)
	{
		int			col = keys[i].sk_attno - 1;

		keys[i].sk_collation = irel->rd_indcollation[col];
		keys[i].sk_attno = irel->rd_index->indkey.values[col];
	}
	scan = systable_beginscan(rel, indexid, true, IpsReadSnapshot(), nkeys, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		result = heap_copytuple(tup);
	systable_endscan(scan);
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
		if (a->lxid == IpsMyLocalTransactionId() && a->lxid != InvalidLocalTransactionId &&
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
		a->lxid = IpsMyLocalTransactionId();
		a->cid = cid;
		a->inval = SharedInvalidMessageCounter;
	}
	else
		a->lxid = InvalidLocalTransactionId;
	return a->allowed;
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

PG_FUNCTION_INFO_V1(ips_check_code);
/* ips.check_code(category, code, what): raise 22023 with the valid codes as hint unless code belongs to category. */
Datum
ips_check_code(PG_FUNCTION_ARGS)
{
	char	   *what;
	char	   *codes;

	/* a required code given as NULL: 22004, like any required argument */
	if (PG_ARGISNULL(1))
	{
		what = PG_ARGISNULL(2) ? "<NULL>" : text_to_cstring(PG_GETARG_TEXT_PP(2));
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what),
				 errhint("Give the %s.", what)));
	}
	/* the vocabulary as vocabulary.c keeps it (read once, until it changes) */
	if (!PG_ARGISNULL(0) &&
		IpsVocabularyHas(text_to_cstring(PG_GETARG_TEXT_PP(0)), text_to_cstring(PG_GETARG_TEXT_PP(1))))
		PG_RETURN_VOID();

	/* Unknown: the error names the valid codes in their order. */
	what = PG_ARGISNULL(2) ? "<NULL>" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	codes = PG_ARGISNULL(0) ? "" : IpsVocabularyCodes(text_to_cstring(PG_GETARG_TEXT_PP(0)), NULL);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown %s \"%s\"", what, text_to_cstring(PG_GETARG_TEXT_PP(1))),
			 errhint("Use one of: %s.", codes)));
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
