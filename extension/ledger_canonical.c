/*
 * ledger_canonical.c
 *		The canonical form of the ledger: what an entry's hash and a block's
 *		hash are computed over, and the Merkle tree over a block's entries.
 *
 *	An entry (1.2): SHA-256 over its fields in a fixed order, seq and xid
 *	first, each as name, 0x1f, length ':' bytes, 0x1e (NULL: name 0x1f N
 *	0x1e).  The bytes do not depend on settings such as DateStyle or
 *	TimeZone: instants and integers as decimal integers (microseconds since
 *	2000-01-01 for instants), text as its bytes, jsonb in its normalised text
 *	form (jsonb_out).  Entries of 1.0/1.1 keep their own form: the same
 *	encoding over their fields and prev_hash, without xid.
 *
 *	A block's entries form a Merkle tree as RFC 9162 (section 2.1.1) defines
 *	it: leaf = SHA-256(0x00 || entry hash), node = SHA-256(0x01 || left ||
 *	right), the leaves in seq order.  A block's hash covers its log, id,
 *	previous block's hash, seal time, seq range, entry count, transactions,
 *	kind and root.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"
#include "utils/xid8.h"

#include "ledger.h"

#ifdef LEDGER_SHA256_FETCHED
#include <openssl/err.h>
#include <openssl/evp.h>
#endif

static const char *const change_fields[] = {
	"seq", "xid", "logged_at", "db_role", "table_name", "operation", "client_id",
	"row_key", "old_row", "new_row"
};
static const Oid change_types[] = {
	INT8OID, XID8OID, TIMESTAMPTZOID, NAMEOID, TEXTOID, TEXTOID, INT8OID,
	JSONBOID, JSONBOID, JSONBOID
};
static const char *const change_legacy[] = {
	"seq", "logged_at", "db_role", "table_name", "operation", "client_id",
	"row_key", "old_row", "new_row", "prev_hash"
};
static const char *const access_fields[] = {
	"seq", "xid", "accessed_at", "db_role", "staff_id", "client_id", "purpose", "shown"
};
static const Oid access_types[] = {
	INT8OID, XID8OID, TIMESTAMPTZOID, NAMEOID, INT8OID, INT8OID, TEXTOID, JSONBOID
};
static const char *const access_legacy[] = {
	"seq", "accessed_at", "db_role", "staff_id", "client_id", "purpose", "shown", "prev_hash"
};

const LedgerLogDef ledger_logs[LEDGER_NLOGS] = {
	{"change_log", "change_log_seq", lengthof(change_fields), change_fields, change_types,
	lengthof(change_legacy), change_legacy},
	{"access_log", "access_log_seq", lengthof(access_fields), access_fields, access_types,
	lengthof(access_legacy), access_legacy}
};

/* The log named (change_log, access_log), or an error with a hint. */
LedgerLogId
LedgerLogByName(const char *name)
{
	for (int i = 0; i < LEDGER_NLOGS; i++)
		if (strcmp(ledger_logs[i].name, name) == 0)
			return (LedgerLogId) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"%s\" is not a log of ips", name),
			 errhint("Give change_log or access_log.")));
	return LEDGER_CHANGE_LOG;	/* not reached */
}

/* Column (0-based) named, or -1. */
static int
ColumnOf(TupleDesc td, const char *name)
{
	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	return -1;
}

/* Column positions of a log's fields in its table. */
void
LedgerMapColumns(LedgerLogId log, TupleDesc td, LedgerColumns *cols)
{
	const LedgerLogDef *def = &ledger_logs[log];

	for (int f = 0; f < def->nfields; f++)
	{
		cols->field[f] = ColumnOf(td, def->fields[f]);
		if (cols->field[f] < 0 && f != LF_XID)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("ips.%s has no column \"%s\"", def->name, def->fields[f]),
					 errhint("The log's columns are part of the extension; restore them from the install script.")));
	}
	for (int f = 0; f < def->nlegacy; f++)
		cols->legacy[f] = ColumnOf(td, def->legacy_fields[f]);
	cols->prev_hash = ColumnOf(td, "prev_hash");
	cols->hash = ColumnOf(td, "hash");
	cols->has_xid = cols->field[LF_XID] >= 0;
	if (cols->hash < 0)
		elog(ERROR, "ips.%s has no column \"hash\"", def->name);
}

#ifdef LEDGER_SHA256_FETCHED

/* SHA-256 as fetched once, and the one context every hash of this process reuses. */
static EVP_MD *sha256_md = NULL;
static EVP_MD_CTX *sha256_ctx = NULL;

/* The error OpenSSL queued, taken off its queue (PostgreSQL's SSL code reads that queue). */
static const char *
OpenSslError(void)
{
	unsigned long e = ERR_get_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return reason ? reason : "no reason given";
}

/* A reusable hasher. */
void
LedgerHasherInit(LedgerHasher *h)
{
	if (sha256_md == NULL)
	{
		sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
		if (sha256_md == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not load SHA-256 from OpenSSL: %s", OpenSslError()),
					 errhint("Check the server's OpenSSL configuration (its providers).")));
	}
	if (sha256_ctx == NULL)
	{
		sha256_ctx = EVP_MD_CTX_new();
		if (sha256_ctx == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	initStringInfo(&h->buf);
}

/* Free a hasher's buffer (the SHA-256 context stays for the process). */
void
LedgerHasherFree(LedgerHasher *h)
{
	pfree(h->buf.data);
}

/* SHA-256 of bytes (after LedgerHasherInit). */
void
LedgerSha256(LedgerHasher *h, const char *data, int len, uint8 *out)
{
	unsigned int outlen;

	if (!EVP_DigestInit_ex2(sha256_ctx, sha256_md, NULL) ||
		!EVP_DigestUpdate(sha256_ctx, data, len) ||
		!EVP_DigestFinal_ex(sha256_ctx, out, &outlen) ||
		outlen != LEDGER_HASH_LEN)
		elog(ERROR, "could not compute SHA-256: %s", OpenSslError());
}

#else							/* !LEDGER_SHA256_FETCHED */

/* A reusable hasher. */
void
LedgerHasherInit(LedgerHasher *h)
{
	initStringInfo(&h->buf);
	h->ctx = pg_cryptohash_create(PG_SHA256);
	if (h->ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
}

/* Free a hasher's SHA-256 context and buffer. */
void
LedgerHasherFree(LedgerHasher *h)
{
	pg_cryptohash_free(h->ctx);
	pfree(h->buf.data);
}

/* SHA-256 of bytes. */
void
LedgerSha256(LedgerHasher *h, const char *data, int len, uint8 *out)
{
	if (pg_cryptohash_init(h->ctx) < 0 ||
		pg_cryptohash_update(h->ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(h->ctx, out, LEDGER_HASH_LEN) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(h->ctx));
}

#endif							/* LEDGER_SHA256_FETCHED */

/* Append one field (name, then length-prefixed bytes or a NULL mark). */
static void
AppendField(StringInfo buf, const char *name, const char *bytes, int len)
{
	char		num[16];

	appendStringInfoString(buf, name);
	if (bytes == NULL)
		appendBinaryStringInfo(buf, "\x1fN\x1e", 3);
	else
	{
		appendStringInfoChar(buf, '\x1f');
		appendBinaryStringInfo(buf, num, pg_ltoa(len, num));
		appendStringInfoChar(buf, ':');
		appendBinaryStringInfo(buf, bytes, len);
		appendStringInfoChar(buf, '\x1e');
	}
}

/* The canonical bytes of one value (see the head of this file). */
void
LedgerAppendValue(StringInfo buf, const char *name, Datum value, bool isnull, Oid type,
				  const char *json_text)
{
	char		num[MAXINT8LEN + 1];
	char	   *s;

	if (isnull)
	{
		AppendField(buf, name, NULL, 0);
		return;
	}
	switch (type)
	{
		case INT8OID:
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
			AppendField(buf, name, num, pg_lltoa(DatumGetInt64(value), num));
			break;
		case XID8OID:
			AppendField(buf, name, num,
						pg_ulltoa_n(U64FromFullTransactionId(DatumGetFullTransactionId(value)), num));
			break;
		case INT4OID:
		case DATEOID:
			AppendField(buf, name, num, pg_ltoa(DatumGetInt32(value), num));
			break;
		case NAMEOID:
			s = NameStr(*DatumGetName(value));
			AppendField(buf, name, s, strlen(s));
			break;
		case TEXTOID:
		case BYTEAOID:
			{
				struct varlena *v = PG_DETOAST_DATUM_PACKED(value);

				AppendField(buf, name, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
				break;
			}
		case JSONBOID:
			s = json_text ? (char *) json_text : DatumGetCString(DirectFunctionCall1(jsonb_out, value));
			AppendField(buf, name, s, strlen(s));
			break;
		default:
			elog(ERROR, "ips ledger field \"%s\" has type %u, which the ledger does not hash", name, type);
	}
}

/* The hash of an entry in the 1.2 canonical form. */
void
LedgerEntryHash(LedgerHasher *h, LedgerLogId log, const Datum *values, const bool *nulls,
				const char *const *json_text, uint8 *out)
{
	const LedgerLogDef *def = &ledger_logs[log];

	resetStringInfo(&h->buf);
	for (int f = 0; f < def->nfields; f++)
		LedgerAppendValue(&h->buf, def->fields[f], values[f], nulls[f], def->types[f],
						  json_text ? json_text[f] : NULL);
	LedgerSha256(h, h->buf.data, h->buf.len, out);
}

/* The type of a legacy field (prev_hash: bytea; the others as in 1.2). */
static Oid
LegacyType(LedgerLogId log, const char *name)
{
	const LedgerLogDef *def = &ledger_logs[log];

	for (int f = 0; f < def->nfields; f++)
		if (strcmp(def->fields[f], name) == 0)
			return def->types[f];
	return BYTEAOID;
}

/* The hash of an entry of 1.0/1.1 (values/nulls by table column). */
void
LedgerLegacyEntryHash(LedgerHasher *h, LedgerLogId log, const LedgerColumns *cols,
					  const Datum *values, const bool *nulls, uint8 *out)
{
	const LedgerLogDef *def = &ledger_logs[log];

	resetStringInfo(&h->buf);
	for (int f = 0; f < def->nlegacy; f++)
	{
		int			c = cols->legacy[f];

		LedgerAppendValue(&h->buf, def->legacy_fields[f], c >= 0 ? values[c] : (Datum) 0,
						  c < 0 || nulls[c], LegacyType(log, def->legacy_fields[f]), NULL);
	}
	LedgerSha256(h, h->buf.data, h->buf.len, out);
}

/* Empty Merkle tree. */
void
LedgerMerkleInit(LedgerMerkle *m)
{
	m->depth = 0;
	m->leaves = 0;
}

/* SHA-256(0x01 || left || right) */
static void
MerkleNode(LedgerHasher *h, const uint8 *left, const uint8 *right, uint8 *out)
{
	char		buf[1 + 2 * LEDGER_HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, left, LEDGER_HASH_LEN);
	memcpy(buf + 1 + LEDGER_HASH_LEN, right, LEDGER_HASH_LEN);
	LedgerSha256(h, buf, sizeof(buf), out);
}

/* Add a leaf: the stack holds the perfect subtrees of the leaves so far, largest first. */
void
LedgerMerkleAdd(LedgerMerkle *m, LedgerHasher *h, const uint8 *entry_hash)
{
	char		buf[1 + LEDGER_HASH_LEN];

	buf[0] = 0x00;
	memcpy(buf + 1, entry_hash, LEDGER_HASH_LEN);
	LedgerSha256(h, buf, sizeof(buf), m->node[m->depth]);
	m->size[m->depth++] = 1;
	while (m->depth >= 2 && m->size[m->depth - 1] == m->size[m->depth - 2])
	{
		MerkleNode(h, m->node[m->depth - 2], m->node[m->depth - 1], m->node[m->depth - 2]);
		m->size[m->depth - 2] *= 2;
		m->depth--;
	}
	m->leaves++;
}

/* The root (RFC 9162 MTH); an empty tree's root is SHA-256 of nothing. */
void
LedgerMerkleRoot(LedgerMerkle *m, LedgerHasher *h, uint8 *out)
{
	uint8		acc[LEDGER_HASH_LEN];

	if (m->depth == 0)
	{
		LedgerSha256(h, "", 0, out);
		return;
	}
	memcpy(acc, m->node[m->depth - 1], LEDGER_HASH_LEN);
	for (int i = m->depth - 2; i >= 0; i--)
		MerkleNode(h, m->node[i], acc, acc);
	memcpy(out, acc, LEDGER_HASH_LEN);
}

/* The hash of a block over its canonical form. */
void
LedgerBlockHash(LedgerHasher *h, LedgerLogId log, const LedgerBlock *b, uint8 *out)
{
	StringInfo	buf = &h->buf;
	StringInfoData xids;
	char		num[MAXINT8LEN + 1];

	initStringInfo(&xids);
	for (int i = 0; i < b->nxids; i++)
	{
		if (i > 0)
			appendStringInfoChar(&xids, ',');
		appendBinaryStringInfo(&xids, num, pg_ulltoa_n(b->xids[i], num));
	}
	resetStringInfo(buf);
	AppendField(buf, "log", ledger_logs[log].name, strlen(ledger_logs[log].name));
	LedgerAppendValue(buf, "block_id", Int64GetDatum(b->block_id), false, INT8OID, NULL);
	LedgerAppendValue(buf, "sealed_at", TimestampTzGetDatum(b->sealed_at), false, TIMESTAMPTZOID, NULL);
	AppendField(buf, "prev_hash", (const char *) b->prev_hash, LEDGER_HASH_LEN);
	LedgerAppendValue(buf, "first_seq", Int64GetDatum(b->first_seq), false, INT8OID, NULL);
	LedgerAppendValue(buf, "last_seq", Int64GetDatum(b->last_seq), false, INT8OID, NULL);
	LedgerAppendValue(buf, "entries", Int64GetDatum(b->entries), false, INT8OID, NULL);
	AppendField(buf, "xids", xids.data, xids.len);
	AppendField(buf, "legacy", b->legacy ? "t" : "f", 1);
	AppendField(buf, "root", (const char *) b->root, LEDGER_HASH_LEN);
	LedgerSha256(h, buf->data, buf->len, out);
	pfree(xids.data);
}

/* Is xid in the sorted array? */
bool
LedgerXidIn(const uint64 *xids, int nxids, uint64 xid)
{
	int			lo = 0,
				hi = nxids - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (xids[mid] == xid)
			return true;
		if (xids[mid] < xid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/* A bytea Datum holding a hash. */
Datum
LedgerHashDatum(const uint8 *hash)
{
	bytea	   *b = (bytea *) palloc(VARHDRSZ + LEDGER_HASH_LEN);

	SET_VARSIZE(b, VARHDRSZ + LEDGER_HASH_LEN);
	memcpy(VARDATA(b), hash, LEDGER_HASH_LEN);
	return PointerGetDatum(b);
}

/* Copy a stored hash out of a bytea Datum; false when it is not a SHA-256 value. */
bool
LedgerHashFromDatum(Datum d, uint8 *hash)
{
	bytea	   *b = DatumGetByteaPP(d);

	if (VARSIZE_ANY_EXHDR(b) != LEDGER_HASH_LEN)
		return false;
	memcpy(hash, VARDATA_ANY(b), LEDGER_HASH_LEN);
	return true;
}

/* A hash as 64 lower-case hex digits. */
char *
LedgerHashHex(const uint8 *hash)
{
	char	   *s = palloc(2 * LEDGER_HASH_LEN + 1);

	hex_encode((const char *) hash, LEDGER_HASH_LEN, s);
	s[2 * LEDGER_HASH_LEN] = '\0';
	return s;
}

/* 64 hex digits to a hash; false when they are not. */
bool
LedgerHashFromHex(const char *hex, uint8 *hash)
{
	if (hex == NULL || strlen(hex) != 2 * LEDGER_HASH_LEN)
		return false;
	for (int i = 0; i < 2 * LEDGER_HASH_LEN; i++)
		if (!isxdigit((unsigned char) hex[i]))
			return false;
	hex_decode(hex, 2 * LEDGER_HASH_LEN, (char *) hash);
	return true;
}

/* Sort helper for uint64. */
static int
CompareU64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* xid8[] Datum of n transaction ids. */
Datum
LedgerXidArrayDatum(const uint64 *xids, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	ArrayType  *a;

	for (int i = 0; i < n; i++)
		elems[i] = FullTransactionIdGetDatum(FullTransactionIdFromU64(xids[i]));
	a = construct_array(elems, n, XID8OID, sizeof(FullTransactionId), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	return PointerGetDatum(a);
}

/* The transaction ids of an xid8[] Datum, sorted. */
uint64 *
LedgerXidsFromDatum(Datum d, int *n)
{
	ArrayType  *a = DatumGetArrayTypeP(d);
	Datum	   *elems;
	bool	   *nulls;
	uint64	   *xids;

	deconstruct_array(a, XID8OID, sizeof(FullTransactionId), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, n);
	xids = palloc(sizeof(uint64) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		xids[i] = nulls[i] ? 0 : U64FromFullTransactionId(DatumGetFullTransactionId(elems[i]));
	qsort(xids, *n, sizeof(uint64), CompareU64);
	return xids;
}

/* Owner of the function being called (the extension owner). */
Oid
LedgerFunctionOwner(FunctionCallInfo fcinfo)
{
	HeapTuple	tp = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	Oid			owner;

	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	owner = ((Form_pg_proc) GETSTRUCT(tp))->proowner;
	ReleaseSysCache(tp);
	return owner;
}
