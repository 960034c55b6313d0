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

#include "access/heapam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
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
	IpsPlan		entries;
	IpsPlan		delete_entries;
} SealPlans;

static SealPlans seal_plans[LEDGER_NLOGS] = {
	{
		{NULL, "SELECT count(*), min(seq), max(seq) FROM ips.change_log WHERE xid IS NULL", 0, {0}},
		{NULL, "SELECT hash FROM ips.change_log WHERE xid IS NULL ORDER BY seq DESC LIMIT 1", 0, {0}},
		{NULL, "SELECT seq, xid, hash FROM ips.change_log WHERE seq OPERATOR(pg_catalog.>=) $1 ORDER BY seq", 1, {INT8OID}},
		{NULL, "DELETE FROM ips.change_log WHERE seq OPERATOR(pg_catalog.>=) $1 AND seq OPERATOR(pg_catalog.<=) $2"
		 " AND (xid OPERATOR(pg_catalog.=) ANY ($3) OR ($4 AND xid IS NULL))", 4, {INT8OID, INT8OID, XID8ARRAYOID, BOOLOID}},
	},
	{
		{NULL, "SELECT count(*), min(seq), max(seq) FROM ips.access_log WHERE xid IS NULL", 0, {0}},
		{NULL, "SELECT hash FROM ips.access_log WHERE xid IS NULL ORDER BY seq DESC LIMIT 1", 0, {0}},
		{NULL, "SELECT seq, xid, hash FROM ips.access_log WHERE seq OPERATOR(pg_catalog.>=) $1 ORDER BY seq", 1, {INT8OID}},
		{NULL, "DELETE FROM ips.access_log WHERE seq OPERATOR(pg_catalog.>=) $1 AND seq OPERATOR(pg_catalog.<=) $2"
		 " AND (xid OPERATOR(pg_catalog.=) ANY ($3) OR ($4 AND xid IS NULL))", 4, {INT8OID, INT8OID, XID8ARRAYOID, BOOLOID}},
	}
};

/* at most this many transactions per block: bounds the sealer's and the verifier's memory */
#define SEAL_MAX_XACTS 10000

/*
 * The pending transactions to seal: read here, then deleted by their ctid
 * with simple_heap_delete (TakePending), not by an SQL DELETE: that would
 * fire the guard's row trigger, which locks each row first (a WAL record
 * and a trigger call per transaction sealed).
 */
static IpsPlan take_pending_plan = {NULL,
	"SELECT q.ctid, q.xid, q.first_seq FROM ips.ledger_pending q"
	" WHERE q.log OPERATOR(pg_catalog.=) $1 AND q.xid OPERATOR(pg_catalog.<>) $2"
	" ORDER BY q.first_seq, q.xid LIMIT $3",
	3, {TEXTOID, XID8OID, INT8OID}};
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
	rc = SPI_execute_plan(InsertBlockPlan(), args, nulls, false, 0);
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

/*
 * Seals committed, unsealed transactions of a log (at most SEAL_MAX_XACTS,
 * those that wrote first) into one block; within SPI.  *more: there may be
 * more to seal.
 */
static int64
SealPending(LedgerLogId log, LedgerHasher *h, bool *more)
{
	SealPlans  *p = &seal_plans[log];
	Datum		arg = CStringGetTextDatum(ledger_logs[log].name);
	Datum		take_args[3];
	LedgerBlock b;
	LedgerMerkle *m;
	int64		min_first = PG_INT64_MAX;
	Portal		portal;
	int			rc;
	int			n;
	Relation	pending;

	/*
	 * Not this transaction's own entries: it may write more after the seal;
	 * they are sealed after its commit, like everyone's.
	 */
	take_args[0] = arg;
	take_args[1] = FullTransactionIdGetDatum(GetTopFullTransactionIdIfAny());
	take_args[2] = Int64GetDatum(SEAL_MAX_XACTS);
	rc = SPI_execute_plan(IpsPreparePlan(&take_pending_plan), take_args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "taking the pending transactions failed: %s", SPI_result_code_string(rc));
	*more = (SPI_processed >= SEAL_MAX_XACTS);
	if (SPI_processed == 0)
		return 0;
	memset(&b, 0, sizeof(b));
	b.xids = palloc(sizeof(uint64) * SPI_processed);
	n = 0;
	pending = table_open(get_relname_relid("ledger_pending", get_namespace_oid("ips", false)), RowExclusiveLock);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		first;
		ItemPointerData tid;

		ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)), &tid);
		/* sealers take turns (LockSealers) and writers never change a pending row */
		simple_heap_delete(pending, &tid);
		b.xids[n++] = U64FromFullTransactionId(DatumGetFullTransactionId(SPI_getbinval(SPI_tuptable->vals[i],
																					   SPI_tuptable->tupdesc, 2, &isnull)));
		first = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
		min_first = Min(min_first, first);
	}
	table_close(pending, NoLock);
	CommandCounterIncrement();
	SPI_freetuptable(SPI_tuptable);
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
	arg = Int64GetDatum(min_first);
	portal = SPI_cursor_open(NULL, IpsPreparePlan(&p->entries), &arg, NULL, false);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		xid = SPI_getbinval(tup, td, 2, &isnull);
			uint8		hash[LEDGER_HASH_LEN];

			if (isnull || !LedgerXidIn(b.xids, b.nxids, U64FromFullTransactionId(DatumGetFullTransactionId(xid))))
				continue;
			if (!LedgerHashFromDatum(SPI_getbinval(tup, td, 3, &isnull), hash))
				memset(hash, 0, LEDGER_HASH_LEN);
			LedgerMerkleAdd(m, h, hash);
			b.last_seq = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
			if (b.entries == 0)
				b.first_seq = b.last_seq;
			b.entries++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	LedgerMerkleRoot(m, h, b.root);
	b.legacy = false;
	WriteBlock(log, &b, h);
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
