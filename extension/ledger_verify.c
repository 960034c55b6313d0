/*
 * ledger_verify.c
 *		The verifier (docs/ledger.md): ips.ledger_verify(log, digest, since)
 *		behind ips.verify_change_log() / ips.verify_access_log() and their
 *		digest forms.
 *
 *	It seals first (so that every committed entry is in a block), then,
 *	under one snapshot:
 *	1. walks the blocks in id order: ids without gaps, each block's
 *	   prev_hash the hash of the block before, each block's hash recomputed;
 *	   with a digest, the digest's block must still be there with the
 *	   digest's hash (the current log extends the digest);
 *	2. walks the entries in seq order together with the blocks in order of
 *	   their first seq: each entry's hash is recomputed from its content,
 *	   each entry is put into the Merkle tree of the block that sealed its
 *	   transaction, and when the walk passes a block's last seq, the block's
 *	   entry count and Merkle root are compared with the sealed ones.  An
 *	   entry whose transaction is in no block and not pending was written
 *	   around the writer.
 *	Memory: the open blocks (those whose seq range holds the current seq,
 *	usually one or two), each in its own memory context deleted when the
 *	block is done; the entries in batches of 1000, freed after each batch;
 *	problems go to a tuplestore (spills to disk past work_mem).  Its queries
 *	are planned and run with jit = off: the entries' query of a log over
 *	about a million entries costs more than jit_above_cost, and JIT would
 *	load LLVM into the backend (some 41 MB of library pages and 10 MB of
 *	compiler heap, outside every memory context) to compile an index
 *	scan's few expressions.  And with enable_sort = off, so that the walks
 *	are index scans in seq / block order whatever the statistics say,
 *	never a sort of the whole log (work_mem, then temporary files).
 *	Progress: every 10 000 entries, pg_stat_activity.query of the verifying
 *	backend shows "ips.verify: change_log seq N (k entries, b blocks done)".
 *	With since = true only the blocks after the digest's block are checked
 *	(the digest's own block must still have the digest's hash), and only
 *	their entries read: incremental verification from a digest onward.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

#include "ips.h"
#include "ledger.h"

#define VERIFY_BATCH 1000
#define VERIFY_PROGRESS 10000

static IpsPlan blocks_by_id_plan = {NULL,
	"SELECT block_id, sealed_at, prev_hash, first_seq, last_seq, entries, xids, legacy, root, hash, archived_at IS NOT NULL"
	" FROM ips.ledger_block WHERE log OPERATOR(pg_catalog.=) $1 AND block_id OPERATOR(pg_catalog.>=) $2 ORDER BY block_id",
	2, {TEXTOID, INT8OID}};
static IpsPlan blocks_by_seq_plan = {NULL,
	"SELECT block_id, sealed_at, prev_hash, first_seq, last_seq, entries, xids, legacy, root, hash, archived_at IS NOT NULL"
	" FROM ips.ledger_block WHERE log OPERATOR(pg_catalog.=) $1 AND last_seq OPERATOR(pg_catalog.>=) $2"
	" ORDER BY first_seq, block_id",
	2, {TEXTOID, INT8OID}};
static IpsPlan pending_plan = {NULL,
	"SELECT xid FROM ips.ledger_pending WHERE log OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}};
static IpsPlan entries_plan[LEDGER_NLOGS] = {
	{NULL, "SELECT * FROM ips.change_log WHERE seq OPERATOR(pg_catalog.>=) $1 ORDER BY seq", 1, {INT8OID}},
	{NULL, "SELECT * FROM ips.access_log WHERE seq OPERATOR(pg_catalog.>=) $1 ORDER BY seq", 1, {INT8OID}}
};

/* A block open in the entries' walk. */
typedef struct OpenBlock
{
	LedgerBlock b;
	bool		check;			/* false: before the digest (since mode) */
	int64		found;
	LedgerMerkle m;
	/* the legacy chain */
	int64		expect_seq;
	uint8		prev[LEDGER_HASH_LEN];
	bool		chain_reported;
	MemoryContext cxt;
} OpenBlock;

/* The state of one verification. */
typedef struct Verify
{
	LedgerLogId log;
	ReturnSetInfo *rsinfo;
	LedgerHasher h;
	int64		problems;
} Verify;

/* Report one problem (seq may be 0 for none). */
static void
Problem(Verify *v, int64 seq, const char *fmt,...) pg_attribute_printf(3, 4);

static void
Problem(Verify *v, int64 seq, const char *fmt,...)
{
	Datum		values[2];
	bool		nulls[2] = {false, false};
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	values[0] = Int64GetDatum(seq);
	nulls[0] = (seq == 0);
	values[1] = CStringGetTextDatum(buf.data);
	tuplestore_putvalues(v->rsinfo->setResult, v->rsinfo->setDesc, values, nulls);
	v->problems++;
	pfree(buf.data);
}

/* Recompute an unchained entry's hash from its fields and report it if it differs from stored. */
static void
CheckEntryHash(Verify *v, const LedgerColumns *cols, Datum *values, bool *nulls,
			   bool hash_ok, const uint8 *stored, int64 seq)
{
	const LedgerLogDef *def = &ledger_logs[v->log];
	Datum		fvalues[LEDGER_MAX_FIELDS];
	bool		fnulls[LEDGER_MAX_FIELDS];
	uint8		computed[LEDGER_HASH_LEN];

	for (int f = 0; f < def->nfields; f++)
	{
		fvalues[f] = values[cols->field[f]];
		fnulls[f] = nulls[cols->field[f]];
	}
	LedgerEntryHash(&v->h, v->log, fvalues, fnulls, NULL, computed);
	if (!hash_ok || memcmp(stored, computed, LEDGER_HASH_LEN) != 0)
		Problem(v, seq, "hash does not match the entry's content: the entry was changed");
}

/* A block row (of the two block plans) into b, allocated in the current context. */
static void
ReadBlock(HeapTuple tup, TupleDesc td, LedgerBlock *b)
{
	bool		isnull;

	b->block_id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
	b->sealed_at = DatumGetTimestampTz(SPI_getbinval(tup, td, 2, &isnull));
	if (!LedgerHashFromDatum(SPI_getbinval(tup, td, 3, &isnull), b->prev_hash))
		memset(b->prev_hash, 0xff, LEDGER_HASH_LEN);
	b->first_seq = DatumGetInt64(SPI_getbinval(tup, td, 4, &isnull));
	b->last_seq = DatumGetInt64(SPI_getbinval(tup, td, 5, &isnull));
	b->entries = DatumGetInt64(SPI_getbinval(tup, td, 6, &isnull));
	b->xids = LedgerXidsFromDatum(SPI_getbinval(tup, td, 7, &isnull), &b->nxids);
	b->legacy = DatumGetBool(SPI_getbinval(tup, td, 8, &isnull));
	if (!LedgerHashFromDatum(SPI_getbinval(tup, td, 9, &isnull), b->root))
		memset(b->root, 0xff, LEDGER_HASH_LEN);
	if (!LedgerHashFromDatum(SPI_getbinval(tup, td, 10, &isnull), b->hash))
		memset(b->hash, 0xff, LEDGER_HASH_LEN);
	b->archived = DatumGetBool(SPI_getbinval(tup, td, 11, &isnull));
}

/* The digest's fields; an error with a hint when it is not one of this log. */
typedef struct Digest
{
	bool		given;
	int64		block_id;
	uint8		hash[LEDGER_HASH_LEN];
	int64		archived_through;
} Digest;

/* A text field of a jsonb object, or NULL. */
static char *
DigestField(Jsonb *j, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&j->root, JB_FOBJECT, &k);
	if (v == NULL)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	return NULL;
}

/* Parse a digest taken by ips.change_log_digest() / ips.access_log_digest(). */
static void
ParseDigest(Jsonb *j, LedgerLogId log, Digest *d)
{
	char	   *name;
	char	   *block;
	char	   *hash;
	char	   *archived;
	char	   *end;

	d->given = true;
	if (!JB_ROOT_IS_OBJECT(j))
		goto bad;
	name = DigestField(j, "log");
	block = DigestField(j, "block_id");
	hash = DigestField(j, "hash");
	archived = DigestField(j, "archived_through");
	if (name == NULL || strcmp(name, ledger_logs[log].name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the digest is not one of ips.%s", ledger_logs[log].name),
				 errdetail("Its \"log\" is %s.", name ? name : "missing"),
				 errhint("Give a digest taken by ips.%s_digest().", ledger_logs[log].name)));
	if (block == NULL || hash == NULL)
		goto bad;
	errno = 0;
	d->block_id = strtoll(block, &end, 10);
	if (errno != 0 || *end != '\0' || d->block_id < 0 || !LedgerHashFromHex(hash, d->hash))
		goto bad;
	d->archived_through = archived ? strtoll(archived, &end, 10) : 0;
	return;
bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("the digest is not a digest of the ips ledger"),
			 errhint("Give the jsonb that ips.%s_digest() returned, unchanged: {\"log\", \"block_id\", \"hash\" (64 hex digits), ...}.",
					 ledger_logs[log].name)));
}

/* Pass 1: the chain of blocks. Returns the smallest first_seq of the blocks to read entries of. */
static int64
VerifyBlocks(Verify *v, const Digest *d, bool since, MemoryContext row_cxt)
{
	Datum		args[2];
	Portal		portal;
	int64		expect_id = since ? d->block_id : 1;
	uint8		prev[LEDGER_HASH_LEN];
	bool		have_prev = false;
	bool		digest_seen = false;
	int64		scan_from = PG_INT64_MAX;
	int64		last_id = 0;

	memset(prev, 0, LEDGER_HASH_LEN);
	args[0] = CStringGetTextDatum(ledger_logs[v->log].name);
	args[1] = Int64GetDatum(since ? d->block_id : 0);
	portal = SPI_cursor_open(NULL, IpsPreparePlan(&blocks_by_id_plan), args, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, VERIFY_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(row_cxt);
			LedgerBlock b;
			uint8		hash[LEDGER_HASH_LEN];

			CHECK_FOR_INTERRUPTS();
			ReadBlock(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &b);
			last_id = b.block_id;
			if (b.block_id != expect_id && !(since && d->block_id == 0))
				Problem(v, b.first_seq, "block " INT64_FORMAT " follows block " INT64_FORMAT
						": blocks are missing or renumbered", b.block_id, expect_id - 1);
			expect_id = b.block_id + 1;
			if ((have_prev || b.block_id == 1) && memcmp(prev, b.prev_hash, LEDGER_HASH_LEN) != 0)
				Problem(v, b.first_seq, "block " INT64_FORMAT ": prev_hash is not the hash of the block before: the chain of blocks is broken here",
						b.block_id);
			LedgerBlockHash(&v->h, v->log, &b, hash);
			if (memcmp(hash, b.hash, LEDGER_HASH_LEN) != 0)
				Problem(v, b.first_seq, "block " INT64_FORMAT " (seq " INT64_FORMAT ".." INT64_FORMAT "): its hash does not match its content: the block was changed",
						b.block_id, b.first_seq, b.last_seq);
			if (d->given && b.block_id == d->block_id)
			{
				digest_seen = true;
				if (memcmp(b.hash, d->hash, LEDGER_HASH_LEN) != 0)
					Problem(v, b.first_seq, "block " INT64_FORMAT " differs from the digest: the log was rewritten since the digest was taken",
							b.block_id);
			}
			if (d->given && b.archived && b.block_id > d->archived_through && b.block_id <= d->block_id)
				Problem(v, b.first_seq, "the entries of block " INT64_FORMAT " (seq " INT64_FORMAT ".." INT64_FORMAT ") were archived after the digest was taken: compare them with the archive",
						b.block_id, b.first_seq, b.last_seq);
			if (!since || b.block_id > d->block_id)
				scan_from = Min(scan_from, b.first_seq);
			memcpy(prev, b.hash, LEDGER_HASH_LEN);
			have_prev = true;
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	if (d->given && d->block_id > 0 && !digest_seen)
		Problem(v, 0, "the log does not extend the digest: block " INT64_FORMAT " of the digest is gone (the newest block is " INT64_FORMAT "): blocks were removed or the log replaced",
				d->block_id, last_id);
	return scan_from;
}

/* Close an open block: its entry count and root against the sealed ones. */
static void
FinishBlock(Verify *v, OpenBlock *ob)
{
	LedgerBlock *b = &ob->b;
	uint8		root[LEDGER_HASH_LEN];

	if (!ob->check)
		return;
	if (b->archived)
	{
		if (ob->found > 0)
			Problem(v, b->first_seq, "block " INT64_FORMAT " is archived, yet " INT64_FORMAT " of its entries are in the log: they were put back",
					b->block_id, ob->found);
		return;
	}
	if (ob->found != b->entries)
		Problem(v, ob->found < b->entries ? b->last_seq : b->first_seq,
				"block " INT64_FORMAT " (seq " INT64_FORMAT ".." INT64_FORMAT "): " INT64_FORMAT " entries sealed, " INT64_FORMAT " found: entries were %s",
				b->block_id, b->first_seq, b->last_seq, b->entries, ob->found,
				ob->found < b->entries ? "removed" : "inserted");
	else if (b->legacy)
	{
		if (!ob->chain_reported && memcmp(ob->prev, b->root, LEDGER_HASH_LEN) != 0)
			Problem(v, b->last_seq, "block " INT64_FORMAT ": the chain of 1.0/1.1 ends in another hash than the one sealed: entries were rewritten",
					b->block_id);
	}
	else
	{
		LedgerMerkleRoot(&ob->m, &v->h, root);
		if (memcmp(root, b->root, LEDGER_HASH_LEN) != 0)
			Problem(v, b->first_seq, "block " INT64_FORMAT " (seq " INT64_FORMAT ".." INT64_FORMAT "): the Merkle root of its entries is not the sealed one: an entry was changed, re-ordered, or removed and another inserted (re-chained)",
					b->block_id, b->first_seq, b->last_seq);
	}
}

/* Pass 2: the entries, with the blocks whose seq range holds them. */
static void
VerifyEntries(Verify *v, const Digest *d, bool since, int64 scan_from, MemoryContext row_cxt)
{
	const LedgerLogDef *def = &ledger_logs[v->log];
	Datum		args[2];
	Portal		blocks;
	Portal		entries;
	OpenBlock **open = palloc(sizeof(OpenBlock *) * 16);
	int			nopen = 0;
	int			maxopen = 16;
	bool		blocks_done = false;
	HeapTuple	next_block = NULL;
	TupleDesc	block_td = NULL;
	SPITupleTable *block_tt = NULL;	/* the tuple table next_block is in */
	uint64	   *pending;
	int			npending = 0;
	int64		pending_entries = 0;
	int64		nentries = 0;
	int64		blocks_finished = 0;
	LedgerColumns cols;
	bool		cols_mapped = false;
	MemoryContext block_cxt = AllocSetContextCreate(CurrentMemoryContext, "ips verify next block", ALLOCSET_SMALL_SIZES);

	/* the pending transactions (committed after the seal, or still open) */
	args[0] = CStringGetTextDatum(def->name);
	if (SPI_execute_plan(IpsPreparePlan(&pending_plan), args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading ips.ledger_pending failed");
	pending = palloc(sizeof(uint64) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		pending[npending++] = U64FromFullTransactionId(DatumGetFullTransactionId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
	}
	SPI_freetuptable(SPI_tuptable);
	if (npending > 1)
	{
		/* sorted for LedgerXidIn: the ids are few, an insertion sort will do */
		for (int i = 1; i < npending; i++)
			for (int j = i; j > 0 && pending[j - 1] > pending[j]; j--)
			{
				uint64		t = pending[j];

				pending[j] = pending[j - 1];
				pending[j - 1] = t;
			}
	}

	if (scan_from == PG_INT64_MAX)
		scan_from = since ? PG_INT64_MAX : PG_INT64_MIN;
	args[1] = Int64GetDatum(scan_from);
	blocks = SPI_cursor_open(NULL, IpsPreparePlan(&blocks_by_seq_plan), args, NULL, true);
	entries = SPI_cursor_open(NULL, IpsPreparePlan(&entries_plan[v->log]), &args[1], NULL, true);

	for (;;)
	{
		SPITupleTable *batch;
		uint64		nbatch;

		SPI_cursor_fetch(entries, true, VERIFY_BATCH);
		batch = SPI_tuptable;
		nbatch = SPI_processed;
		if (nbatch == 0)
		{
			SPI_freetuptable(batch);
			break;
		}
		if (!cols_mapped)
		{
			LedgerMapColumns(v->log, batch->tupdesc, &cols);
			cols_mapped = true;
		}
		for (uint64 i = 0; i < nbatch; i++)
		{
			HeapTuple	tup = batch->vals[i];
			TupleDesc	td = batch->tupdesc;
			MemoryContext old = MemoryContextSwitchTo(row_cxt);
			Datum	   *values = palloc(sizeof(Datum) * td->natts);
			bool	   *nulls = palloc(sizeof(bool) * td->natts);
			int64		seq;
			OpenBlock  *owner = NULL;
			uint8		stored[LEDGER_HASH_LEN];
			uint8		computed[LEDGER_HASH_LEN];
			bool		hash_ok;

			CHECK_FOR_INTERRUPTS();
			heap_deform_tuple(tup, td, values, nulls);
			seq = DatumGetInt64(values[cols.field[LF_SEQ]]);
			hash_ok = !nulls[cols.hash] && LedgerHashFromDatum(values[cols.hash], stored);
			if (!hash_ok)
				memset(stored, 0, LEDGER_HASH_LEN);

			/* open the blocks that start at or before this seq */
			while (!blocks_done)
			{
				if (next_block == NULL)
				{
					MemoryContext save = MemoryContextSwitchTo(block_cxt);

					SPI_cursor_fetch(blocks, true, 1);
					MemoryContextSwitchTo(save);
					if (SPI_processed == 0)
					{
						blocks_done = true;
						break;
					}
					block_tt = SPI_tuptable;
					next_block = block_tt->vals[0];
					block_td = block_tt->tupdesc;
				}
				{
					bool		isnull;
					int64		first = DatumGetInt64(SPI_getbinval(next_block, block_td, 4, &isnull));
					OpenBlock  *ob;
					MemoryContext cxt;

					if (first > seq)
						break;
					cxt = AllocSetContextCreate(TopTransactionContext, "ips verify block", ALLOCSET_SMALL_SIZES);
					MemoryContextSwitchTo(cxt);
					ob = palloc0(sizeof(OpenBlock));
					ob->cxt = cxt;
					ReadBlock(next_block, block_td, &ob->b);
					ob->check = !since || ob->b.block_id > d->block_id;
					LedgerMerkleInit(&ob->m);
					ob->expect_seq = ob->b.first_seq;
					memset(ob->prev, 0, LEDGER_HASH_LEN);
					MemoryContextSwitchTo(row_cxt);
					if (nopen == maxopen)
					{
						maxopen *= 2;
						open = repalloc(open, sizeof(OpenBlock *) * maxopen);
					}
					open[nopen++] = ob;
					next_block = NULL;
					SPI_freetuptable(block_tt);
					block_tt = NULL;
					MemoryContextReset(block_cxt);
				}
			}
			/* (an SPI fetch leaves CurrentMemoryContext at SPI's own) */
			MemoryContextSwitchTo(row_cxt);
			/* close the blocks that end before it */
			for (int k = 0; k < nopen;)
			{
				if (open[k]->b.last_seq < seq)
				{
					FinishBlock(v, open[k]);
					MemoryContextDelete(open[k]->cxt);
					open[k] = open[--nopen];
					blocks_finished++;
				}
				else
					k++;
			}

			/* whose entry is it? */
			if (nulls[cols.field[LF_XID]])
			{
				for (int k = 0; k < nopen && owner == NULL; k++)
					if (open[k]->b.legacy && seq <= open[k]->b.last_seq)
						owner = open[k];
				if (owner == NULL)
					Problem(v, seq, "entry has no transaction id and is in no block: it was written around the ledger writer");
				else if (owner->check)
				{
					uint8		prev[LEDGER_HASH_LEN];
					bool		prev_ok = cols.prev_hash >= 0 && !nulls[cols.prev_hash] &&
						LedgerHashFromDatum(values[cols.prev_hash], prev);

					owner->found++;
					LedgerLegacyEntryHash(&v->h, v->log, &cols, values, nulls, computed);
					if (seq != owner->expect_seq && !owner->chain_reported)
					{
						Problem(v, seq, "entry " INT64_FORMAT " follows entry " INT64_FORMAT ": entries are missing or renumbered",
								seq, owner->expect_seq - 1);
						owner->chain_reported = true;
					}
					else if ((!prev_ok || memcmp(prev, owner->prev, LEDGER_HASH_LEN) != 0) && !owner->chain_reported)
					{
						Problem(v, seq, "prev_hash does not match the hash of the entry before: the chain is broken here");
						owner->chain_reported = true;
					}
					if (!hash_ok || memcmp(stored, computed, LEDGER_HASH_LEN) != 0)
						Problem(v, seq, "hash does not match the entry's content: the entry was changed");
					owner->expect_seq = seq + 1;
					memcpy(owner->prev, stored, LEDGER_HASH_LEN);
				}
			}
			else
			{
				uint64		xid = U64FromFullTransactionId(DatumGetFullTransactionId(values[cols.field[LF_XID]]));

				for (int k = 0; k < nopen && owner == NULL; k++)
					if (!open[k]->b.legacy && seq <= open[k]->b.last_seq &&
						LedgerXidIn(open[k]->b.xids, open[k]->b.nxids, xid))
						owner = open[k];
				if (owner == NULL)
				{
					if (LedgerXidIn(pending, npending, xid))
					{
						pending_entries++;
						CheckEntryHash(v, &cols, values, nulls, hash_ok, stored, seq);
					}
					else
						Problem(v, seq, "entry is in no sealed block and its transaction is not pending: it was written around the ledger writer");
				}
				else if (owner->check)
				{
					owner->found++;
					if (!owner->b.archived)
					{
						CheckEntryHash(v, &cols, values, nulls, hash_ok, stored, seq);
						LedgerMerkleAdd(&owner->m, &v->h, stored);
					}
				}
			}
			nentries++;
			if (nentries % VERIFY_PROGRESS == 0)
			{
				char		msg[200];

				snprintf(msg, sizeof(msg), "ips.verify: %s seq " INT64_FORMAT " (" INT64_FORMAT " entries, " INT64_FORMAT " blocks done)",
						 def->name, seq, nentries, blocks_finished);
				pgstat_report_activity(STATE_RUNNING, msg);
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(batch);
	}
	/* the blocks still open, and those after the last entry (their entries are gone) */
	for (int k = 0; k < nopen; k++)
	{
		FinishBlock(v, open[k]);
		MemoryContextDelete(open[k]->cxt);
	}
	while (!blocks_done)
	{
		if (next_block == NULL)
		{
			SPI_cursor_fetch(blocks, true, 1);
			if (SPI_processed == 0)
				break;
			block_tt = SPI_tuptable;
			next_block = block_tt->vals[0];
			block_td = block_tt->tupdesc;
		}
		{
			MemoryContext old = MemoryContextSwitchTo(row_cxt);
			OpenBlock	ob;

			memset(&ob, 0, sizeof(ob));
			ReadBlock(next_block, block_td, &ob.b);
			ob.check = !since || ob.b.block_id > d->block_id;
			LedgerMerkleInit(&ob.m);
			FinishBlock(v, &ob);
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		next_block = NULL;
		SPI_freetuptable(block_tt);
		block_tt = NULL;
	}
	SPI_cursor_close(entries);
	SPI_cursor_close(blocks);
	MemoryContextDelete(block_cxt);
	if (pending_entries > 0)
		ereport(NOTICE,
				(errmsg(INT64_FORMAT " entries of ips.%s are pending: their transactions committed after the seal and are not in a block yet",
						pending_entries, def->name),
				 errhint("They are sealed by the next ips.seal(); pending entries are not tampering.")));
}

PG_FUNCTION_INFO_V1(ips_ledger_verify);
/*
 * ips.ledger_verify(log text, digest jsonb, since boolean) -> SETOF (seq,
 * problem): seals, then checks the log (see the head of this file).
 */
Datum
ips_ledger_verify(PG_FUNCTION_ARGS)
{
	Verify		v;
	Digest		d;
	volatile bool since = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	Oid			save_userid;
	int			save_sec_context;
	MemoryContext row_cxt;
	int64		scan_from;
	int			guc_level;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the log to verify is null"),
				 errhint("Give change_log or access_log.")));
	v.log = LedgerLogByName(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	memset(&d, 0, sizeof(d));
	if (!PG_ARGISNULL(1))
		ParseDigest(PG_GETARG_JSONB_P(1), v.log, &d);
	else if (since)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("incremental verification needs a digest"),
				 errhint("Give the digest from which on to verify, taken by ips.%s_digest().", ledger_logs[v.log].name)));
	InitMaterializedSRF(fcinfo, 0);
	v.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	v.problems = 0;
	LedgerHasherInit(&v.h);
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "ips verify row", ALLOCSET_DEFAULT_SIZES);

	/*
	 * No JIT for this call's queries, the seal's included (see the head of
	 * this file); undone below, or by the (sub)transaction's abort on error.
	 * The verifier's kept plans are only ever planned under these settings.
	 */
	guc_level = NewGUCNestLevel();
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	/* the ledger's tables are read and sealed as the extension owner */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(LedgerFunctionOwner(fcinfo), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		(void) LedgerSeal(v.log);
		CommandCounterIncrement();
		/* the walks stream through the indexes (not for the seal's plans) */
		(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		/* one snapshot for both passes */
		PushActiveSnapshot(GetTransactionSnapshot());
		scan_from = VerifyBlocks(&v, &d, since, row_cxt);
		VerifyEntries(&v, &d, since, scan_from, row_cxt);
		PopActiveSnapshot();
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, guc_level);
	LedgerHasherFree(&v.h);
	MemoryContextDelete(row_cxt);
	return (Datum) 0;
}
