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
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "storage/proc.h"
#include "storage/sinval.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "ips.h"

/*
 * Relation ids by name, kept for the backend: the guards and the ledger's
 * writer look the same few names up in every statement.  An entry goes when
 * its relation's relcache entry is invalidated (dropped, renamed, altered)
 * or any schema changes (ALTER SCHEMA ... RENAME); a name not found is not
 * kept, so a table made later is found.
 */
typedef struct RelidEntry
{
	char		name[NAMEDATALEN];
	Oid			relid;			/* InvalidOid: free */
} RelidEntry;

#define RELID_CACHE_SIZE 32
static RelidEntry relid_cache[RELID_CACHE_SIZE];
static int	relid_next = 0;
static bool relid_callbacks = false;

/* Relcache callback: forget the entry of relid (all of them: InvalidOid). */
static void
RelidCacheInval(Datum arg, Oid relid)
{
	for (int i = 0; i < RELID_CACHE_SIZE; i++)
		if (relid == InvalidOid || relid_cache[i].relid == relid)
			relid_cache[i].relid = InvalidOid;
}

/* Syscache callback (schemas): forget every entry. */
static void
RelidCacheReset(Datum arg, int cacheid, uint32 hashvalue)
{
	RelidCacheInval(arg, InvalidOid);
}

/* OID of a relation of schema ips, or InvalidOid. */
Oid
IpsRelid(const char *relname)
{
	Oid			nsp;
	Oid			relid;
	RelidEntry *e;

	for (int i = 0; i < RELID_CACHE_SIZE; i++)
		if (OidIsValid(relid_cache[i].relid) && strcmp(relid_cache[i].name, relname) == 0)
			return relid_cache[i].relid;
	nsp = get_namespace_oid("ips", true);
	relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
	if (!OidIsValid(relid) || strlen(relname) >= NAMEDATALEN)
		return relid;
	if (!relid_callbacks)
	{
		IpsRegisterRelcacheCallback(RelidCacheInval);
		CacheRegisterSyscacheCallback(NAMESPACEOID, RelidCacheReset, (Datum) 0);
		relid_callbacks = true;
	}
	e = &relid_cache[relid_next];
	relid_next = (relid_next + 1) % RELID_CACHE_SIZE;
	strcpy(e->name, relname);
	e->relid = relid;
	return relid;
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

/*
 * As IpsFetchByIndex, but gives the named columns of the row (values and
 * nulls, in the order of cols; pass-by-reference values copied into the
 * caller's memory context) instead of a copy of the row and of the table's
 * descriptor; false when there is no such row.  attnums (ncols entries, 0
 * at first) keeps the columns' positions between calls: each is checked by
 * name before it is used.  The table and index are locked in lockmode
 * (AccessShareLock or stronger) to the end of the transaction: a caller
 * whose statement's foreign-key check locks them again in RowShareLock
 * passes that mode, so that the check finds both locks already held (one
 * lock each instead of one in each mode: see the fact guard).
 */
bool
IpsFetchColumns(const char *relname, const char *indexname, LOCKMODE lockmode, int nkeys,
				ScanKey keys, int ncols, const char *const *cols, int *attnums, Datum *values,
				bool *nulls)
{
	Oid			relid = IpsRelid(relname);
	Oid			indexid = IpsRelid(indexname);
	Relation	rel;
	Relation	irel;
	SysScanDesc scan;
	HeapTuple	tup;
	TupleDesc	td;
	bool		found = false;

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "ips.%s or its index ips.%s is missing", relname, indexname);
	rel = table_open(relid, lockmode);
	irel = index_open(indexid, lockmode);
	td = RelationGetDescr(rel);
	for (int i = 0; i < nkeys; i++)
	{
		int			col = keys[i].sk_attno - 1;

		keys[i].sk_collation = irel->rd_indcollation[col];
		keys[i].sk_attno = irel->rd_index->indkey.values[col];
	}
	scan = systable_beginscan(rel, indexid, true, IpsReadSnapshot(), nkeys, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		found = true;
		for (int i = 0; i < ncols; i++)
		{
			int			attnum = attnums[i];
			Form_pg_attribute att;

			/* the position found last time, if the column is still there */
			if (attnum <= 0 || attnum > td->natts ||
				TupleDescAttr(td, attnum - 1)->attisdropped ||
				strcmp(NameStr(TupleDescAttr(td, attnum - 1)->attname), cols[i]) != 0)
				attnum = attnums[i] = SPI_fnumber(td, cols[i]);
			if (attnum <= 0)
				elog(ERROR, "ips: column \"%s\" of ips.%s is missing", cols[i], relname);
			att = TupleDescAttr(td, attnum - 1);
			values[i] = heap_getattr(tup, attnum, td, &nulls[i]);
			if (!nulls[i] && !att->attbyval)
				values[i] = datumCopy(values[i], false, att->attlen);
		}
	}
	systable_endscan(scan);
	/* the locks are kept to the end of the transaction, as the executor keeps its own */
	index_close(irel, NoLock);
	table_close(rel, NoLock);
	return found;
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

/*
 * Settings kept across transactions.  The guards read the region's time zone
 * and the earliest fact date in every transaction; reading them through the
 * index each time was a tenth of a contact insert.  A value read here is kept
 * until ips.setting's relcache entry is invalidated, which every change to
 * ips.setting does: its trigger setting_changed (ips.setting_changed(),
 * FOR EACH STATEMENT, ENABLE ALWAYS) sends that invalidation at commit to
 * every session, and processes it locally at once in the writing session
 * (the next command, and again when it rolls back).  Every transaction
 * start processes the invalidations of the transactions committed before.
 *
 * A value is read with a new snapshot (the latest committed data and this
 * transaction's own changes, like a catalog look-up), and kept only when no
 * invalidation of ips.setting arrived while it was read: a change committed
 * after that snapshot was taken sends its invalidation after it, so it
 * cannot be missed.  Kept values serve read-committed transactions only; a
 * repeatable-read or serializable transaction reads with its own snapshot as
 * before.  Nothing is kept when the trigger is missing or disabled (a
 * database not yet updated to 1.2, or a DBA's ALTER TABLE ... DISABLE
 * TRIGGER, which also invalidates).
 */
typedef struct SettingEntry
{
	char		name[NAMEDATALEN];
	bool		valid;
	bool		isnull;
	char		value[NAMEDATALEN * 4];
} SettingEntry;

#define SETTING_CACHE_SIZE 8
static SettingEntry setting_cache[SETTING_CACHE_SIZE];
static int	setting_next = 0;
static uint64 setting_generation = 0;	/* bumped by every invalidation of ips.setting */
static Oid	setting_relid = InvalidOid; /* ips.setting when the values were read */
static bool setting_callback = false;

/* Relcache callback: forget the kept settings when ips.setting (or everything) is invalidated. */
static void
SettingCacheInval(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != setting_relid)
		return;
	setting_generation++;
	for (int i = 0; i < SETTING_CACHE_SIZE; i++)
		setting_cache[i].valid = false;
}

/*
 * Does rel have the statement trigger tgname, firing always, on every kind of
 * change (INSERT, UPDATE, DELETE, TRUNCATE)?  What values kept across
 * transactions rely on (setting_changed on ips.setting, staff_changed on
 * ips.staff).
 */
bool
IpsKeptTriggerPresent(Relation rel, const char *tgname)
{
	TriggerDesc *trigdesc = rel->trigdesc;

	if (trigdesc == NULL)
		return false;
	for (int i = 0; i < trigdesc->numtriggers; i++)
	{
		Trigger    *t = &trigdesc->triggers[i];

		if (strcmp(t->tgname, tgname) == 0 &&
			t->tgenabled == TRIGGER_FIRES_ALWAYS &&
			!TRIGGER_FOR_ROW(t->tgtype) &&
			TRIGGER_FOR_INSERT(t->tgtype) && TRIGGER_FOR_UPDATE(t->tgtype) &&
			TRIGGER_FOR_DELETE(t->tgtype) && TRIGGER_FOR_TRUNCATE(t->tgtype))
			return true;
	}
	return false;
}

/*
 * The body of the AFTER STATEMENT triggers that announce a change to a table
 * whose values sessions keep (ips.setting_changed, ips.staff_changed): a
 * relcache invalidation of the table, sent to every session at commit and
 * processed in this one at its next command and on rollback.
 */
Datum
IpsAnnounceKeptTableChange(FunctionCallInfo fcinfo, const char *fname)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		elog(ERROR, "%s must be an AFTER ... FOR EACH STATEMENT trigger", fname);
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/*
 * The value of setting name kept across transactions (see above): true and
 * *value (NULL: no such setting; else valid until the next call) when it is
 * kept or could be read and kept; false when the caller must read it with
 * its own snapshot.  Callers check IpsDirectRead("setting") first.
 */
static bool
SettingKept(const char *name, const char **value)
{
	SettingEntry *e = NULL;
	uint64		generation;
	Oid			relid;
	Oid			indexid;
	Relation	rel;
	Relation	irel;
	Snapshot	snap;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		present;
	bool		isnull = true;
	char	   *v = NULL;

	if (IsolationUsesXactSnapshot() || strlen(name) >= NAMEDATALEN)
		return false;
	for (int i = 0; i < SETTING_CACHE_SIZE; i++)
		if (setting_cache[i].valid && strcmp(setting_cache[i].name, name) == 0)
		{
			*value = setting_cache[i].isnull ? NULL : setting_cache[i].value;
			return true;
		}
	relid = IpsRelid("setting");
	indexid = IpsRelid("setting_pkey");
	if (!OidIsValid(relid) || !OidIsValid(indexid))
		return false;
	if (!setting_callback)
	{
		IpsRegisterRelcacheCallback(SettingCacheInval);
		setting_callback = true;
	}
	/* locks first (they take in pending invalidations), then the generation, then the snapshot */
	rel = table_open(relid, AccessShareLock);
	irel = index_open(indexid, AccessShareLock);
	if (setting_relid != relid)
	{
		SettingCacheInval((Datum) 0, InvalidOid);
		setting_relid = relid;
	}
	generation = setting_generation;
	present = IpsKeptTriggerPresent(rel, "setting_changed");
	snap = RegisterSnapshot(GetLatestSnapshot());
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(name));
	key.sk_collation = irel->rd_indcollation[0];
	key.sk_attno = irel->rd_index->indkey.values[0];
	scan = systable_beginscan(rel, indexid, true, snap, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		int			attnum = SPI_fnumber(RelationGetDescr(rel), "value");
		Datum		d;

		if (attnum <= 0)
			elog(ERROR, "ips: column \"value\" of ips.setting is missing");
		d = heap_getattr(tup, attnum, RelationGetDescr(rel), &isnull);
		if (!isnull)
			v = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	index_close(irel, AccessShareLock);
	table_close(rel, AccessShareLock);
	if (!present || generation != setting_generation || (v != NULL && strlen(v) >= sizeof(e->value)))
		return false;
	e = &setting_cache[setting_next];
	setting_next = (setting_next + 1) % SETTING_CACHE_SIZE;
	strcpy(e->name, name);
	e->isnull = (v == NULL);
	if (v)
		strcpy(e->value, v);
	e->valid = true;
	*value = e->isnull ? NULL : e->value;
	return true;
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

PG_FUNCTION_INFO_V1(ips_setting_changed);
/* AFTER STATEMENT trigger on ips.setting: every session forgets the settings it keeps (SettingKept). */
Datum
ips_setting_changed(PG_FUNCTION_ARGS)
{
	return IpsAnnounceKeptTableChange(fcinfo, "ips_setting_changed");
}

/* The exported form of SettingKept (the earliest fact date of bounds.c). */
bool
IpsSettingKept(const char *name, const char **value)
{
	return SettingKept(name, value);
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
		const char *kept;

		if (SettingKept("time_zone", &kept))
			return pstrdup(kept ? kept : "Europe/Helsinki");
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
