/*
 * ledger_legacy.c
 *		The chained logs of 1.0 and 1.1, for a database that runs this library
 *		before ALTER EXTENSION ips UPDATE: ips_log_seal (the BEFORE trigger of
 *		1.0/1.1 that chains each inserted entry under a lock held to commit)
 *		and ips_log_first_break (the checker of that chain).  1.2 does not use
 *		them: its tables are guarded by ips_ledger_guard, its entries are
 *		sealed into blocks (ledger_seal.c), and the chain that 1.0/1.1 left is
 *		carried over as the log's first, "legacy" block.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "ips.h"
#include "ledger.h"

/* field4 of the advisory lock tag: apart from pg_advisory_lock's 1 and 2 */
#define IPS_LOG_LOCK_FIELD4 0x1905

/* The head of one log's chain as this transaction left it. */
typedef struct LogHead
{
	Oid			relid;			/* the log table; InvalidOid = not cached */
	int64		seq;
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
} LogHead;

#define MAX_LOGS 4
static LogHead log_heads[MAX_LOGS];

static bool callbacks_registered = false;

/* Forget the cached heads (transaction end, or a subtransaction rolled back). */
static void
ForgetHeads(void)
{
	for (int i = 0; i < MAX_LOGS; i++)
		log_heads[i].relid = InvalidOid;
}

/* Transaction callback: the lock and the head are gone with the transaction. */
static void
LogXactCallback(XactEvent event, void *arg)
{
	ForgetHeads();
}

/* Subtransaction callback: a rolled-back append must not stay cached. */
static void
LogSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
				   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		ForgetHeads();
}

/* The cached head of a log, or NULL. */
static LogHead *
CachedHead(Oid relid)
{
	for (int i = 0; i < MAX_LOGS; i++)
		if (log_heads[i].relid == relid)
			return &log_heads[i];
	return NULL;
}

/* Remember the head of a log for the rest of this transaction. */
static void
CacheHead(Oid relid, int64 seq, const uint8 *hash)
{
	LogHead    *h = CachedHead(relid);

	if (!callbacks_registered)
	{
		RegisterXactCallback(LogXactCallback, NULL);
		RegisterSubXactCallback(LogSubXactCallback, NULL);
		callbacks_registered = true;
	}
	for (int i = 0; h == NULL && i < MAX_LOGS; i++)
		if (log_heads[i].relid == InvalidOid)
			h = &log_heads[i];
	if (h == NULL)
		elog(ERROR, "too many ips log tables");
	h->relid = relid;
	h->seq = seq;
	memcpy(h->hash, hash, PG_SHA256_DIGEST_LENGTH);
}

/* Append one field (name, then length-prefixed bytes or a NULL mark) to the canonical content. */
/*
 * SHA-256 of a legacy row's canonical content: every column but "hash", in
 * column order (the tables of 1.0/1.1 have no other columns).
 */
static void
LogRowHash(HeapTuple tup, TupleDesc td, uint8 *out)
{
	Datum	   *values = palloc(sizeof(Datum) * td->natts);
	bool	   *nulls = palloc(sizeof(bool) * td->natts);
	StringInfoData buf;
	LedgerHasher h;

	heap_deform_tuple(tup, td, values, nulls);
	initStringInfo(&buf);
	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), "hash") == 0)
			continue;
		LedgerAppendValue(&buf, NameStr(att->attname), values[i], nulls[i], att->atttypid, NULL);
	}
	LedgerHasherInit(&h);
	LedgerSha256(&h, buf.data, buf.len, out);
	LedgerHasherFree(&h);
	pfree(buf.data);
	pfree(values);
	pfree(nulls);
}

/* Attribute number of a column of a log table, or an error. */
static int
LogColumn(TupleDesc td, const char *name, const char *table)
{
	int			attnum = SPI_fnumber(td, name);

	if (attnum <= 0)
		elog(ERROR, "log table %s has no column \"%s\"", table, name);
	return attnum;
}

/*
 * The head (seq, hash) of a log: cached in this transaction, else the last
 * entry of its primary key (seq), read backwards with the latest snapshot
 * (a direct index scan: no SQL, no permission to check, as the caller
 * holds the chain's lock).
 */
static void
ReadHead(Relation rel, int64 *seq, uint8 *hash)
{
	LogHead    *h = CachedHead(RelationGetRelid(rel));
	Oid			pk = IpsRelationGetPrimaryKeyIndex(rel);
	Relation	idx;
	Snapshot	snap;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	bool		isnull;

	if (h != NULL)
	{
		*seq = h->seq;
		memcpy(hash, h->hash, PG_SHA256_DIGEST_LENGTH);
		return;
	}
	if (!OidIsValid(pk))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s has no primary key", RelationGetRelationName(rel)),
				 errhint("The log's primary key (seq) is part of the extension; restore it from the install script.")));
	idx = index_open(pk, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = IpsIndexBeginScan(rel, idx, snap, 0, 0);
	index_rescan(scan, NULL, 0, NULL, 0);
	slot = table_slot_create(rel, NULL);
	if (!index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		*seq = 0;
		memset(hash, 0, PG_SHA256_DIGEST_LENGTH);
	}
	else
	{
		TupleDesc	td = RelationGetDescr(rel);
		Datum		d;

		*seq = DatumGetInt64(slot_getattr(slot, LogColumn(td, "seq", RelationGetRelationName(rel)), &isnull));
		d = slot_getattr(slot, LogColumn(td, "hash", RelationGetRelationName(rel)), &isnull);
		if (isnull || !LedgerHashFromDatum(d, hash))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the last entry (seq " INT64_FORMAT ") of %s has no valid hash",
							*seq, RelationGetRelationName(rel)),
					 errhint("Run ips.verify_change_log() or ips.verify_access_log() and restore the log from a backup.")));
	}
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
}

/* One chain per log table: serialise its appends until the transaction ends. */
static void
LockChain(Relation rel)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, RelationGetRelid(rel), 0, IPS_LOG_LOCK_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

PG_FUNCTION_INFO_V1(ips_log_seal);
/* BEFORE trigger on a log table: chain an inserted entry; refuse every other change. */
Datum
ips_log_seal(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	td;
	HeapTuple	tup;
	int64		seq;
	uint8		prev[PG_SHA256_DIGEST_LENGTH];
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	int			cols[2];
	Datum		vals[2];
	bool		nulls[2] = {false, false};

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		elog(ERROR, "ips_log_seal must be a BEFORE trigger");
	rel = trigdata->tg_relation;
	/* pg_restore (ips.restoring): dumped entries keep their sequence and hashes */
	if (ips_restoring && TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);
	if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s is append-only", RelationGetRelationName(rel)),
				 errdetail("%s on ips.%s is refused; its entries are chained with SHA-256.",
						   TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE" :
						   TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE" : "TRUNCATE",
						   RelationGetRelationName(rel)),
				 errhint("Log entries are never changed; ips.verify_change_log() and ips.verify_access_log() detect changes made around this guard.")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "ips_log_seal must be a ROW trigger for INSERT");

	td = rel->rd_att;
	tup = trigdata->tg_trigtuple;

	LockChain(rel);
	ReadHead(rel, &seq, prev);

	cols[0] = LogColumn(td, "seq", RelationGetRelationName(rel));
	vals[0] = Int64GetDatum(seq + 1);
	cols[1] = LogColumn(td, "prev_hash", RelationGetRelationName(rel));
	vals[1] = LedgerHashDatum(prev);
	tup = heap_modify_tuple_by_cols(tup, td, 2, cols, vals, nulls);

	LogRowHash(tup, td, hash);
	cols[0] = LogColumn(td, "hash", RelationGetRelationName(rel));
	vals[0] = LedgerHashDatum(hash);
	tup = heap_modify_tuple_by_cols(tup, td, 1, cols, vals, nulls);

	CacheHead(RelationGetRelid(rel), seq + 1, hash);
	return PointerGetDatum(tup);
}

PG_FUNCTION_INFO_V1(ips_log_first_break);
/* ips.log_first_break(log regclass, OUT seq bigint, OUT problem text): first broken entry, or NULL. */
Datum
ips_log_first_break(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *relname = get_rel_name(relid);
	char	   *nspname;
	char	   *sql;
	Portal		portal;
	TupleDesc	rtd;
	int64		expect_seq = 1;
	uint8		prev[PG_SHA256_DIGEST_LENGTH];
	int64		bad_seq = 0;
	char	   *problem = NULL;
	Datum		result = (Datum) 0;

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("no table with oid %u", relid),
				 errhint("Give ips.change_log or ips.access_log.")));
	nspname = get_namespace_name(get_rel_namespace(relid));
	if (strcmp(nspname, "ips") != 0 ||
		(strcmp(relname, "change_log") != 0 && strcmp(relname, "access_log") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s.%s is not a log of ips", nspname, relname),
				 errhint("Give ips.change_log or ips.access_log.")));
	if (get_call_result_type(fcinfo, NULL, &rtd) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ips_log_first_break must return a composite type");
	rtd = BlessTupleDesc(rtd);

	memset(prev, 0, sizeof(prev));
	sql = psprintf("SELECT * FROM %s ORDER BY seq", quote_qualified_identifier(nspname, relname));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = SPI_cursor_open_with_args(NULL, sql, 0, NULL, NULL, NULL, true, 0);
	while (problem == NULL)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed && problem == NULL; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		seq;
			uint8		stored_prev[PG_SHA256_DIGEST_LENGTH];
			uint8		stored[PG_SHA256_DIGEST_LENGTH];
			uint8		computed[PG_SHA256_DIGEST_LENGTH];
			Datum		d;

			seq = DatumGetInt64(SPI_getbinval(tup, td, LogColumn(td, "seq", relname), &isnull));
			bad_seq = seq;
			if (seq != expect_seq)
			{
				problem = psprintf("entry " INT64_FORMAT " follows entry " INT64_FORMAT
								   ": entries are missing or renumbered", seq, expect_seq - 1);
				break;
			}
			d = SPI_getbinval(tup, td, LogColumn(td, "prev_hash", relname), &isnull);
			if (isnull || !LedgerHashFromDatum(d, stored_prev) || memcmp(stored_prev, prev, sizeof(prev)) != 0)
			{
				problem = pstrdup("prev_hash does not match the hash of the entry before: the chain is broken here");
				break;
			}
			d = SPI_getbinval(tup, td, LogColumn(td, "hash", relname), &isnull);
			LogRowHash(tup, td, computed);
			if (isnull || !LedgerHashFromDatum(d, stored) || memcmp(stored, computed, sizeof(computed)) != 0)
			{
				problem = pstrdup("hash does not match the entry's content: the entry was changed");
				break;
			}
			memcpy(prev, stored, sizeof(prev));
			expect_seq++;
		}
	}
	SPI_cursor_close(portal);

	if (problem != NULL)
	{
		Datum		values[2];
		bool		rnulls[2] = {false, false};
		HeapTuple	rt;

		values[0] = Int64GetDatum(bad_seq);
		values[1] = CStringGetTextDatum(problem);
		rt = heap_form_tuple(rtd, values, rnulls);
		result = SPI_datumTransfer(HeapTupleGetDatum(rt), false, -1);
	}
	SPI_finish();
	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
