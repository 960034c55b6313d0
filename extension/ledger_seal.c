/*
 * ledger_seal.c
 *		The sealer: chains committed transactions of a log into blocks
 *		(docs/ledger.md), and retention (ips.archive_blocks).
 *
 *	ips_ledger_seal		ips.seal(): seals both logs.
 *	ips_archive_blocks	ips.archive_blocks(log, through_block): removes the
 *						entries of sealed blocks from the live table, keeping
 *						the block rows (the chain) and marking them archived.
 *
 *	A seal takes the sealers' lock of the log (a transaction-level advisory
 *	lock that only sealers take: writers never wait for it), deletes the
 *	log's rows of ips.ledger_pending that its snapshot sees (exactly the
 *	committed transactions), reads their entries in seq order, and writes one
 *	block: the next id, the previous block's hash, the seq range, the entry
 *	count, the transactions (xid8[]), the Merkle root of the entries' hashes
 *	(RFC 9162) and the block's own hash.  Block order is sealing order: a
 *	transaction that commits late lands in a later block; nothing is ever
 *	re-chained.  All of it is one transaction: a crash leaves either the
 *	block and the pending rows gone, or neither.
 *
 *	The first seal after ALTER EXTENSION UPDATE from 1.0/1.1 turns the chain
 *	those versions left (entries without xid) into the log's first block, a
 *	"legacy" block whose root is the hash of its last entry.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "ips.h"
#include "ledger.h"

/* field4 of the sealers' advisory lock tag: apart from pg_advisory_lock's 1 and 2 */
#define IPS_SEAL_LOCK_FIELD4 0x1906

/* Statements per log; all names schema-qualified, operators qualified. */
typedef struct SealPlans
{
	IpsPlan		legacy_range;
	IpsPlan		legacy_head;
	IpsPlan		delete_entries;
} SealPlans;

static SealPlans seal_plans[LEDGER_NLOGS] = {
	{
		{NULL, "SELECT count(*), min(seq), max(seq) FROM ips.change_log WHERE xid IS NULL", 0, {0}},
		{NULL, "SELECT hash FROM ips.change_log WHERE xid IS NULL ORDER BY seq DESC LIMIT 1", 0, {0}},
		{NULL, "DELETE FROM ips.change_log WHERE seq OPERATOR(pg_catalog.>=) $1 AND seq OPERATOR(pg_catalog.<=) $2"
		 " AND (xid OPERATOR(pg_catalog.=) ANY ($3) OR ($4 AND xid IS NULL))", 4, {INT8OID, INT8OID, XID8ARRAYOID, BOOLOID}},
	},
	{
		{NULL, "SELECT count(*), min(seq), max(seq) FROM ips.access_log WHERE xid IS NULL", 0, {0}},
		{NULL, "SELECT hash FROM ips.access_log WHERE xid IS NULL ORDER BY seq DESC LIMIT 1", 0, {0}},
		{NULL, "DELETE FROM ips.access_log WHERE seq OPERATOR(pg_catalog.>=) $1 AND seq OPERATOR(pg_catalog.<=) $2"
		 " AND (xid OPERATOR(pg_catalog.=) ANY ($3) OR ($4 AND xid IS NULL))", 4, {INT8OID, INT8OID, XID8ARRAYOID, BOOLOID}},
	}
};

/* at most this many transactions per block: bounds the sealer's and the verifier's memory */
#define SEAL_MAX_XACTS 100000

/*
 * The pending transactions to seal are read by a heap scan (ReadPending) and
 * deleted by their ctid with simple_heap_delete, not by an SQL DELETE: that
 * would fire the guard's row trigger, which locks each row first (a WAL
 * record and a trigger call per transaction sealed).
 */
static IpsPlan head_plan = {NULL,
	"SELECT block_id, hash FROM ips.ledger_block WHERE log OPERATOR(pg_catalog.=) $1 ORDER BY block_id DESC LIMIT 1",
	1, {TEXTOID}};
static IpsPlan insert_block_plan = {NULL,
	"INSERT INTO ips.ledger_block (log, block_id, sealed_at, prev_hash, first_seq, last_seq, entries, xids, legacy, root, hash)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
	0, {0}};
static IpsPlan archive_list_plan = {NULL,
	"SELECT block_id, first_seq, last_seq, xids, legacy FROM ips.ledger_block"
	" WHERE log OPERATOR(pg_catalog.=) $1 AND block_id OPERATOR(pg_catalog.<=) $2 AND archived_at IS NULL ORDER BY block_id",
	2, {TEXTOID, INT8OID}};
static IpsPlan archive_mark_plan = {NULL,
	"UPDATE ips.ledger_block SET archived_at = $3"
	" WHERE log OPERATOR(pg_catalog.=) $1 AND block_id OPERATOR(pg_catalog.=) $2",
	3, {TEXTOID, INT8OID, TIMESTAMPTZOID}};

/* The insert plan has 11 parameters, more than IpsPlan holds: prepared here. */
static SPIPlanPtr
InsertBlockPlan(void)
{
	if (insert_block_plan.plan == NULL)
	{
		Oid			types[11] = {TEXTOID, INT8OID, TIMESTAMPTZOID, BYTEAOID, INT8OID, INT8OID,
		INT8OID, XID8ARRAYOID, BOOLOID, BYTEAOID, BYTEAOID};
		SPIPlanPtr	plan;

		plan = SPI_prepare(insert_block_plan.sql, 11, types);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		insert_block_plan.plan = plan;
	}
	return insert_block_plan.plan;
}

/* The sealers' lock of a log, held to the end of the transaction (only sealers take it). */
static void
LockSealers(LedgerLogId log)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) log, 0, IPS_SEAL_LOCK_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* The newest block of a log: its id and hash (0 and zeros when none); within SPI. */
static void
ReadHeadBlock(LedgerLogId log, int64 *block_id, uint8 *hash)
{
	Datum		arg = CStringGetTextDatum(ledger_logs[log].name);
	int			rc = SPI_execute_plan(IpsPreparePlan(&head_plan), &arg, NULL, false, 1);
	bool		isnull;

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the newest block failed: %s", SPI_result_code_string(rc));
	*block_id = 0;
	memset(hash, 0, LEDGER_HASH_LEN);
	if (SPI_processed == 1)
	{
		*block_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (!LedgerHashFromDatum(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull), hash))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("block " INT64_FORMAT " of ips.%s has no valid hash", *block_id, ledger_logs[log].name),
					 errhint("Run ips.verify_%s() against your latest digest and restore the ledger from a backup.",
							 ledger_logs[log].name)));
	}
	SPI_freetuptable(SPI_tuptable);
}

/* Writes a block after the head; computes its hash; within SPI. */
static void
WriteBlock(LedgerLogId log, LedgerBlock *b, LedgerHasher *h)
{
	Datum		args[11];
	char		nulls[11];
	int			rc;

	ReadHeadBlock(log, &b->block_id, b->prev_hash);
	b->block_id++;
	b->sealed_at = GetCurrentTimestamp();
	LedgerBlockHash(h, log, b, b->hash);
	memset(nulls, ' ', sizeof(nulls));
	args[0] = CStringGetTextDatum(ledger_logs[log].name);
	args[1] = Int64GetDatum(b->block_id);
	args[2] = TimestampTzGetDatum(b->sealed_at);
	args[3] = LedgerHashDatum(b->prev_hash);
	args[4] = Int64GetDatum(b->first_seq);
	args[5] = Int64GetDatum(b->last_seq);
	args[6] = Int64GetDatum(b->entries);
	args[7] = LedgerXidArrayDatum(b->xids, b->nxids);
	args[8] = BoolGetDatum(b->legacy);
	args[9] = LedgerHashDatum(b->root);
	args[10] = LedgerHashDatum(b->hash);
#ifdef USE_LZ4
	{
		/*
		 * The xids array of a large block (up to 80 kB) is compressed when
		 * stored: with pglz that was a fifth of a seal's time; lz4 is many
		 * times faster and compresses it as well.  Only for this INSERT: the
		 * caller's setting is back afterwards (and on error, by the abort).
		 */
		int			nest = NewGUCNestLevel();

		(void) set_config_option("default_toast_compression", "lz4", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		rc = SPI_execute_plan(InsertBlockPlan(), args, nulls, false, 0);
		AtEOXact_GUC(true, nest);
	}
#else
	rc = SPI_execute_plan(InsertBlockPlan(), args, nulls, false, 0);
#endif
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "writing block " INT64_FORMAT " of ips.%s failed: %s", b->block_id,
			 ledger_logs[log].name, SPI_result_code_string(rc));
}

/* The chain of 1.0/1.1 (entries without xid) as the first block, when the log has no block yet. */
static int64
SealLegacy(LedgerLogId log, LedgerHasher *h)
{
	SealPlans  *p = &seal_plans[log];
	int64		head_id;
	uint8		head_hash[LEDGER_HASH_LEN];
	LedgerBlock b;
	bool		isnull;
	int			rc;

	ReadHeadBlock(log, &head_id, head_hash);
	if (head_id > 0)
		return 0;
	rc = SPI_execute_plan(IpsPreparePlan(&p->legacy_range), NULL, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading the entries of 1.0/1.1 failed: %s", SPI_result_code_string(rc));
	memset(&b, 0, sizeof(b));
	b.entries = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (b.entries == 0)
		return 0;
	b.first_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	b.last_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	rc = SPI_execute_plan(IpsPreparePlan(&p->legacy_head), NULL, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1 ||
		!LedgerHashFromDatum(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull), b.root))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the last entry of 1.0/1.1 in ips.%s has no valid hash", ledger_logs[log].name),
				 errhint("Restore the log from a backup taken before the update.")));
	b.legacy = true;
	b.nxids = 0;
	b.xids = NULL;
	WriteBlock(log, &b, h);
	return b.entries;
}

/* Sort helper for uint64. */
static int
CompareU64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* A pending row taken by the sealer: where it is, its transaction and first seq. */
typedef struct PendingRow
{
	int64		first_seq;
	uint64		xid;
	ItemPointerData tid;
} PendingRow;

/* The order of ORDER BY first_seq, xid. */
static int
ComparePending(const void *a, const void *b)
{
	const PendingRow *x = (const PendingRow *) a;
	const PendingRow *y = (const PendingRow *) b;

	if (x->first_seq != y->first_seq)
		return x->first_seq < y->first_seq ? -1 : 1;
	return x->xid < y->xid ? -1 : x->xid > y->xid ? 1 : 0;
}

/*
 * The log's pending rows that snap sees, but this transaction's own, the
 * first max of them by (first_seq, xid): a heap scan of ips.ledger_pending
 * keeping at most 2 * max rows at a time.  *more: there were more.
 */
static PendingRow *
ReadPending(Relation pending, LedgerLogId log, Snapshot snap, int max, int *n, bool *more)
{
	TupleDesc	td = RelationGetDescr(pending);
	int			log_col = SPI_fnumber(td, "log");
	int			xid_col = SPI_fnumber(td, "xid");
	int			first_col = SPI_fnumber(td, "first_seq");
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	const char *name = ledger_logs[log].name;
	PendingRow *rows = palloc(sizeof(PendingRow) * 2 * max);
	TableScanDesc scan;
	HeapTuple	tup;
	int			count = 0;

	if (log_col <= 0 || xid_col <= 0 || first_col <= 0)
		elog(ERROR, "ips.ledger_pending lacks its columns log, xid, first_seq");
	*more = false;
	scan = table_beginscan(pending, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, log_col, td, &isnull);
		text	   *t;
		FullTransactionId xid;

		if (isnull)
			continue;
		t = DatumGetTextPP(d);
		if (VARSIZE_ANY_EXHDR(t) != strlen(name) || memcmp(VARDATA_ANY(t), name, strlen(name)) != 0)
			continue;
		d = heap_getattr(tup, xid_col, td, &isnull);
		if (isnull)
			continue;
		xid = DatumGetFullTransactionId(d);
		if (FullTransactionIdEquals(xid, own))
			continue;
		d = heap_getattr(tup, first_col, td, &isnull);
		if (isnull)
			continue;
		if (count == 2 * max)
		{
			qsort(rows, count, sizeof(PendingRow), ComparePending);
			count = max;
			*more = true;
		}
		rows[count].first_seq = DatumGetInt64(d);
		rows[count].xid = U64FromFullTransactionId(xid);
		rows[count].tid = tup->t_self;
		count++;
		CHECK_FOR_INTERRUPTS();
	}
	table_endscan(scan);
	qsort(rows, count, sizeof(PendingRow), ComparePending);
	if (count > max)
	{
		count = max;
		*more = true;
	}
	*n = count;
	return rows;
}

/*
 * Seals committed, unsealed transactions of a log (at most SEAL_MAX_XACTS,
 * those that wrote first) into one block; within SPI.  *more: there may be
 * more to seal.  The pending rows and the entries are read straight from the
 * table and the log's primary key with one snapshot (no executor per row).
 */
static int64
SealPending(LedgerLogId log, LedgerHasher *h, bool *more)
{
	LedgerBlock b;
	LedgerMerkle *m;
	int64		min_first = PG_INT64_MAX;
	int			n;
	Relation	pending;
	Relation	rel;
	Relation	irel;
	Snapshot	snap;
	PendingRow *rows;
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot;
	LedgerColumns cols;
	Oid			relid;
	Oid			indexid;

	/*
	 * Not this transaction's own entries: it may write more after the seal;
	 * they are sealed after its commit, like everyone's.
	 */
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetTransactionSnapshot());
	pending = table_open(IpsRelid("ledger_pending"), RowExclusiveLock);
	rows = ReadPending(pending, log, snap, SEAL_MAX_XACTS, &n, more);
	if (n == 0)
	{
		table_close(pending, NoLock);
		UnregisterSnapshot(snap);
		return 0;
	}
	memset(&b, 0, sizeof(b));
	b.xids = palloc(sizeof(uint64) * n);
	for (int i = 0; i < n; i++)
	{
		/* sealers take turns (LockSealers) and writers never change a pending row */
		simple_heap_delete(pending, &rows[i].tid);
		b.xids[i] = rows[i].xid;
		min_first = Min(min_first, rows[i].first_seq);
	}
	table_close(pending, NoLock);
	CommandCounterIncrement();
	qsort(b.xids, n, sizeof(uint64), CompareU64);
	b.nxids = 0;
	for (int i = 0; i < n; i++)
		if (b.nxids == 0 || b.xids[b.nxids - 1] != b.xids[i])
			b.xids[b.nxids++] = b.xids[i];

	/* their entries, in seq order: every one has a seq at or after its transaction's first */
	m = palloc(sizeof(LedgerMerkle));
	LedgerMerkleInit(m);
	b.first_seq = min_first;
	b.last_seq = min_first;
	relid = IpsRelid(ledger_logs[log].name);
	if (!OidIsValid(relid))
		elog(ERROR, "ips.%s is missing", ledger_logs[log].name);
	rel = table_open(relid, AccessShareLock);
	indexid = IpsRelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(indexid))
		elog(ERROR, "ips.%s has no primary key", ledger_logs[log].name);
	irel = index_open(indexid, AccessShareLock);
	LedgerMapColumns(log, RelationGetDescr(rel), &cols);
	if (!cols.has_xid || irel->rd_index->indnkeyatts != 1 ||
		irel->rd_index->indkey.values[0] != cols.field[LF_SEQ] + 1)
		elog(ERROR, "ips.%s_pkey is not the log's primary key on seq", ledger_logs[log].name);
	ScanKeyInit(&key, 1, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(min_first));
	slot = table_slot_create(rel, NULL);
	scan = IpsIndexBeginScan(rel, irel, snap, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		xid = slot_getattr(slot, cols.field[LF_XID] + 1, &isnull);
		uint8		hash[LEDGER_HASH_LEN];
		Datum		hd;

		CHECK_FOR_INTERRUPTS();
		if (isnull || !LedgerXidIn(b.xids, b.nxids, U64FromFullTransactionId(DatumGetFullTransactionId(xid))))
			continue;
		hd = slot_getattr(slot, cols.hash + 1, &isnull);
		if (isnull || !LedgerHashFromDatum(hd, hash))
			memset(hash, 0, LEDGER_HASH_LEN);
		LedgerMerkleAdd(m, h, hash);
		b.last_seq = DatumGetInt64(slot_getattr(slot, cols.field[LF_SEQ] + 1, &isnull));
		if (b.entries == 0)
			b.first_seq = b.last_seq;
		b.entries++;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(irel, AccessShareLock);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snap);
	LedgerMerkleRoot(m, h, b.root);
	b.legacy = false;
	WriteBlock(log, &b, h);
	/* a backlog is sealed block by block in one call: give each block's memory back */
	pfree(rows);
	pfree(b.xids);
	pfree(m);
	return b.entries;
}

/* Seal the committed, unsealed transactions of a log; returns the entries sealed. Runs as the caller. */
int64
LedgerSeal(LedgerLogId log)
{
	LedgerHasher h;
	volatile int64 sealed = 0;

	if (RecoveryInProgress())
		return 0;				/* a standby: its primary seals */
	LockSealers(log);
	LedgerHasherInit(&h);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		bool		more = true;

		ledger_internal_write = true;
		sealed = SealLegacy(log, &h);
		while (more)
		{
			CHECK_FOR_INTERRUPTS();
			sealed += SealPending(log, &h, &more);
		}
	}
	PG_FINALLY();
	{
		ledger_internal_write = false;
	}
	PG_END_TRY();
	SPI_finish();
	LedgerHasherFree(&h);
	return sealed;
}

PG_FUNCTION_INFO_V1(ips_ledger_seal);
/* ips.seal() -> bigint: seals both logs (as the extension owner); the entries sealed. */
Datum
ips_ledger_seal(PG_FUNCTION_ARGS)
{
	Oid			save_userid;
	int			save_sec_context;
	volatile int64 sealed = 0;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(LedgerFunctionOwner(fcinfo), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		for (int i = 0; i < LEDGER_NLOGS; i++)
			sealed += LedgerSeal((LedgerLogId) i);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	PG_RETURN_INT64(sealed);
}

PG_FUNCTION_INFO_V1(ips_archive_blocks);
/*
 * ips.archive_blocks(log text, through_block bigint) -> bigint: removes the
 * entries of the log's blocks up to through_block from the live table (the
 * block rows stay, marked archived); the entries removed.
 */
Datum
ips_archive_blocks(PG_FUNCTION_ARGS)
{
	LedgerLogId log = LedgerLogByName(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	int64		through = PG_GETARG_INT64(1);
	SealPlans  *p = &seal_plans[log];
	int64		removed = 0;
	Datum		args[4];
	int			rc;
	TimestampTz now = GetCurrentTimestamp();
	int64		head_id;
	uint8		head_hash[LEDGER_HASH_LEN];

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	LockSealers(log);
	ReadHeadBlock(log, &head_id, head_hash);
	if (through < 1 || through > head_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("block " INT64_FORMAT " of ips.%s is not sealed", through, ledger_logs[log].name),
				 errhint("Give a block between 1 and " INT64_FORMAT "; see ips.ledger_block.", head_id)));
	args[0] = CStringGetTextDatum(ledger_logs[log].name);
	args[1] = Int64GetDatum(through);
	rc = SPI_execute_plan(IpsPreparePlan(&archive_list_plan), args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "listing the blocks failed: %s", SPI_result_code_string(rc));
	PG_TRY();
	{
		SPITupleTable *blocks = SPI_tuptable;
		uint64		nblocks = SPI_processed;

		ledger_internal_write = true;
		for (uint64 i = 0; i < nblocks; i++)
		{
			HeapTuple	tup = blocks->vals[i];
			TupleDesc	td = blocks->tupdesc;
			bool		isnull;
			Datum		dargs[4];
			Datum		margs[3];

			CHECK_FOR_INTERRUPTS();
			dargs[0] = SPI_getbinval(tup, td, 2, &isnull);
			dargs[1] = SPI_getbinval(tup, td, 3, &isnull);
			dargs[2] = SPI_getbinval(tup, td, 4, &isnull);
			dargs[3] = SPI_getbinval(tup, td, 5, &isnull);
			rc = SPI_execute_plan(IpsPreparePlan(&p->delete_entries), dargs, NULL, false, 0);
			if (rc != SPI_OK_DELETE)
				elog(ERROR, "removing archived entries failed: %s", SPI_result_code_string(rc));
			removed += SPI_processed;
			margs[0] = args[0];
			margs[1] = SPI_getbinval(tup, td, 1, &isnull);
			margs[2] = TimestampTzGetDatum(now);
			rc = SPI_execute_plan(IpsPreparePlan(&archive_mark_plan), margs, NULL, false, 0);
			if (rc != SPI_OK_UPDATE)
				elog(ERROR, "marking a block archived failed: %s", SPI_result_code_string(rc));
		}
	}
	PG_FINALLY();
	{
		ledger_internal_write = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT64(removed);
}
