/*
 * ledger.h
 *		What the parts of the ledger share (docs/ledger.md):
 *
 *	ledger_canonical.c	the two logs' fields, the canonical form of an entry
 *						and of a block, SHA-256, the Merkle tree (RFC 9162)
 *	ledger_writer.c		appends entries, unchained, with their transaction id
 *						and their own hash; marks the transaction pending;
 *						the guard trigger of the ledger's tables
 *	ledger_seal.c		chains committed transactions into sealed blocks;
 *						digests; retention
 *	ledger_verify.c		streams the blocks and entries and reports problems
 *	ledger_worker.c		the background sealer (shared_preload_libraries)
 *	ledger_legacy.c		the chained writer and checker of 1.0 and 1.1, for a
 *						database that runs this library before ALTER EXTENSION
 *						UPDATE
 */
#ifndef IPS_LEDGER_H
#define IPS_LEDGER_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/timestamp.h"

#define LEDGER_HASH_LEN PG_SHA256_DIGEST_LENGTH

/* The two logs. */
typedef enum LedgerLogId
{
	LEDGER_CHANGE_LOG = 0,
	LEDGER_ACCESS_LOG,
	LEDGER_NLOGS
} LedgerLogId;

#define LEDGER_MAX_FIELDS 12

/*
 * One log: its table, its sequence and the fields of its canonical form
 * (seq and xid first).  legacy_fields: the 1.0/1.1 canonical form, whose
 * entries were chained with prev_hash.
 */
typedef struct LedgerLogDef
{
	const char *name;			/* "change_log": the table in schema ips, and the log's name */
	const char *seqname;		/* its sequence in schema ips */
	int			nfields;
	const char *const *fields;
	const Oid  *types;
	int			nlegacy;
	const char *const *legacy_fields;
} LedgerLogDef;

extern const LedgerLogDef ledger_logs[LEDGER_NLOGS];

/* Field positions shared by both logs. */
#define LF_SEQ 0
#define LF_XID 1

/* The log named (change_log, access_log), or an error with a hint. */
extern LedgerLogId LedgerLogByName(const char *name);

/* Column positions (0-based) of a log's fields in its table, and of prev_hash and hash. */
typedef struct LedgerColumns
{
	int			field[LEDGER_MAX_FIELDS];
	int			legacy[LEDGER_MAX_FIELDS];	/* legacy fields, -1 when absent */
	int			prev_hash;
	int			hash;
	bool		has_xid;		/* false: the table of 1.0/1.1 (no ALTER EXTENSION UPDATE yet) */
} LedgerColumns;
extern void LedgerMapColumns(LedgerLogId log, TupleDesc td, LedgerColumns *cols);

/*
 * SHA-256.  With OpenSSL 3 (a server built with it), ledger_canonical.c
 * fetches the algorithm once per process and reuses one context: through
 * pg_cryptohash, OpenSSL 3 looks the algorithm up by name on every hash
 * (its "implicit fetch"), which cost more than hashing an entry or a Merkle
 * node itself.  Otherwise (OpenSSL 1.1, no OpenSSL) pg_cryptohash.
 */
#ifdef USE_OPENSSL
#include <openssl/opensslv.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#define LEDGER_SHA256_FETCHED 1
#endif
#endif

/* A reusable hasher: the canonical form's buffer (and pg_cryptohash's context). */
typedef struct LedgerHasher
{
	StringInfoData buf;
#ifndef LEDGER_SHA256_FETCHED
	pg_cryptohash_ctx *ctx;
#endif
} LedgerHasher;
extern void LedgerHasherInit(LedgerHasher *h);
extern void LedgerHasherFree(LedgerHasher *h);

/*
 * The hash of an entry in the 1.2 canonical form; values/nulls in field
 * order; json_text (or NULL): jsonb_out text of jsonb fields, by field.
 */
extern void LedgerEntryHash(LedgerHasher *h, LedgerLogId log, const Datum *values,
							const bool *nulls, const char *const *json_text, uint8 *out);
/* The hash of an entry of 1.0/1.1 (values/nulls by table column). */
extern void LedgerLegacyEntryHash(LedgerHasher *h, LedgerLogId log, const LedgerColumns *cols,
								  const Datum *values, const bool *nulls, uint8 *out);

/* SHA-256 of bytes. */
extern void LedgerSha256(LedgerHasher *h, const char *data, int len, uint8 *out);

/* Merkle tree of RFC 9162 over a stream of leaves, in O(log n) memory. */
typedef struct LedgerMerkle
{
	int			depth;
	uint8		node[64][LEDGER_HASH_LEN];
	uint64		size[64];
	uint64		leaves;
} LedgerMerkle;
extern void LedgerMerkleInit(LedgerMerkle *m);
extern void LedgerMerkleAdd(LedgerMerkle *m, LedgerHasher *h, const uint8 *entry_hash);
extern void LedgerMerkleRoot(LedgerMerkle *m, LedgerHasher *h, uint8 *out);

/* A sealed block, as its row holds it. */
typedef struct LedgerBlock
{
	int64		block_id;
	TimestampTz sealed_at;
	uint8		prev_hash[LEDGER_HASH_LEN];
	int64		first_seq;
	int64		last_seq;
	int64		entries;
	int			nxids;
	uint64	   *xids;			/* sorted */
	bool		legacy;
	uint8		root[LEDGER_HASH_LEN];
	uint8		hash[LEDGER_HASH_LEN];
	bool		archived;
} LedgerBlock;
extern void LedgerBlockHash(LedgerHasher *h, LedgerLogId log, const LedgerBlock *b, uint8 *out);
extern bool LedgerXidIn(const uint64 *xids, int nxids, uint64 xid);

/* bytea <-> hash; false when the bytea is not a SHA-256 value. */
extern Datum LedgerHashDatum(const uint8 *hash);
extern bool LedgerHashFromDatum(Datum d, uint8 *hash);
extern char *LedgerHashHex(const uint8 *hash);
extern bool LedgerHashFromHex(const char *hex, uint8 *hash);

/* xid8[] <-> sorted uint64 array. */
extern Datum LedgerXidArrayDatum(const uint64 *xids, int n);
extern uint64 *LedgerXidsFromDatum(Datum d, int *n);

/* The canonical value of one field (also used by the legacy chain). */
extern void LedgerAppendValue(StringInfo buf, const char *name, Datum value, bool isnull, Oid type,
							  const char *json_text);

/* Owner of the function being called (the extension owner). */
extern Oid	LedgerFunctionOwner(FunctionCallInfo fcinfo);

/* Set while the sealer or the archiver writes the ledger's tables (the guard lets it through). */
extern bool ledger_internal_write;

/* Seal the committed, unsealed transactions of a log; returns the entries sealed. */
extern int64 LedgerSeal(LedgerLogId log);

/* ledger_worker.c: the settings of the background sealer; registers it when preloaded */
extern void IpsSealWorkerInit(void);

#endif							/* IPS_LEDGER_H */
