/*
 * audit.c
 *		The tamper-evident logs of ips: ips.change_log (every insert, update,
 *		delete and truncate on person-level tables) and ips.access_log (every
 *		view of a client's record), both chained with SHA-256.
 *
 *	ips_change_log_row	AFTER STATEMENT trigger with transition tables
 *						(and AFTER TRUNCATE) on the logged tables: appends
 *						who, when, table, key, old and new row (jsonb) of
 *						every row the statement changed to ips.change_log,
 *						with one INSERT ... SELECT over the transition table
 *						(a COPY of 400 000 contacts is one append of 400 000
 *						entries, not 400 000 appends).  ips.apply_security()
 *						creates these triggers; the AFTER ROW form of 1.0 is
 *						still understood, so that a database keeps logging
 *						between installing this library and ALTER EXTENSION
 *						UPDATE.  It runs as the caller; the append itself
 *						runs as the owner of the trigger function (the
 *						extension owner), since no other role may write the
 *						log.
 *	ips_log_seal		BEFORE trigger on the log tables: gives an inserted
 *						entry the next position (seq) of the chain, the hash
 *						of the entry before it (prev_hash) and its own hash
 *						SHA-256(canonical content including prev_hash);
 *						refuses UPDATE, DELETE and TRUNCATE.
 *	ips_log_first_break	walks a log table in seq order and returns the first
 *						entry where the chain breaks, or NULL.
 *
 *	One chain per log table gives the total order a chain needs.  Appends
 *	are serialised by a transaction-level advisory lock on one key per log
 *	table; the lock is taken by the first append of a transaction and kept
 *	to its end, and later appends of the same transaction continue from a
 *	cached head instead of looking the head up again.  The head is read
 *	with the latest snapshot, so that REPEATABLE READ and SERIALIZABLE
 *	transactions continue the chain too instead of forking it.
 *
 *	The canonical content that is hashed does not depend on settings such
 *	as DateStyle or TimeZone: instants and numbers as decimal integers,
 *	text as its bytes, jsonb in its (normalised) text form.
 *
 *	All SPI statements here name schema-qualified tables, use no functions
 *	and qualify their operators, so a caller's search_path cannot redirect
 *	them, also when they run as the extension owner.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "ips.h"

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

/*
 * Canonical bytes of one value, independent of DateStyle, TimeZone and the
 * like.  jsonb is hashed in its text form (jsonb_out); a caller that has
 * that text already (the change log's writer makes it with the jsonb) passes
 * it as json_text.
 */
static void
AppendValue(StringInfo buf, const char *name, Datum value, bool isnull, Oid type,
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
		case INT4OID:
		case DATEOID:
			AppendField(buf, name, num, pg_ltoa(DatumGetInt32(value), num));
			break;
		case INT2OID:
			AppendField(buf, name, num, pg_ltoa((int32) DatumGetInt16(value), num));
			break;
		case BOOLOID:
			AppendField(buf, name, DatumGetBool(value) ? "t" : "f", 1);
			break;
		case NAMEOID:
			s = NameStr(*DatumGetName(value));
			AppendField(buf, name, s, strlen(s));
			break;
		case TEXTOID:
		case VARCHAROID:
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
			elog(ERROR, "ips log column \"%s\" has type %s, which the chain does not hash",
				 name, format_type_be(type));
	}
}

/*
 * SHA-256 of a log row's canonical content: every column but "hash", in
 * column order.  json_text (or NULL) gives the jsonb_out text of jsonb
 * columns by column index; buf and ctx (or NULL) are a writer's own, reused
 * from row to row.
 */
static void
LogValuesHash(const Datum *values, const bool *nulls, TupleDesc td, uint8 *out,
			  const char *const *json_text, StringInfo buf, pg_cryptohash_ctx *ctx)
{
	StringInfoData own_buf;
	pg_cryptohash_ctx *own_ctx = NULL;

	if (buf == NULL)
	{
		initStringInfo(&own_buf);
		buf = &own_buf;
	}
	else
		resetStringInfo(buf);
	if (ctx == NULL)
		ctx = own_ctx = pg_cryptohash_create(PG_SHA256);
	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), "hash") == 0)
			continue;
		AppendValue(buf, NameStr(att->attname), values[i], nulls[i], att->atttypid,
					json_text ? json_text[i] : NULL);
	}
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) buf->data, buf->len) < 0 ||
		pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	if (own_ctx)
		pg_cryptohash_free(own_ctx);
	if (buf == &own_buf)
		pfree(own_buf.data);
}

static void
LogRowHash(HeapTuple tup, TupleDesc td, uint8 *out)
{
	Datum	   *values = palloc(sizeof(Datum) * td->natts);
	bool	   *nulls = palloc(sizeof(bool) * td->natts);

	heap_deform_tuple(tup, td, values, nulls);
	LogValuesHash(values, nulls, td, out, NULL, NULL, NULL);
	pfree(values);
	pfree(nulls);
}

/* A bytea Datum holding a hash. */
static Datum
HashDatum(const uint8 *hash)
{
	bytea	   *b = (bytea *) palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);

	SET_VARSIZE(b, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	memcpy(VARDATA(b), hash, PG_SHA256_DIGEST_LENGTH);
	return PointerGetDatum(b);
}

/* Copy a stored hash out of a bytea Datum; false when it is not a SHA-256 value. */
static bool
HashFromDatum(Datum d, uint8 *hash)
{
	bytea	   *b = DatumGetByteaPP(d);

	if (VARSIZE_ANY_EXHDR(b) != PG_SHA256_DIGEST_LENGTH)
		return false;
	memcpy(hash, VARDATA_ANY(b), PG_SHA256_DIGEST_LENGTH);
	return true;
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

/* Owner of the function being called (the extension owner), cached in fn_extra. */
static Oid
FunctionOwner(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
	{
		HeapTuple	tp = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
		Oid		   *owner;

		if (!HeapTupleIsValid(tp))
			elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
		owner = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid));
		*owner = ((Form_pg_proc) GETSTRUCT(tp))->proowner;
		ReleaseSysCache(tp);
		fcinfo->flinfo->fn_extra = owner;
	}
	return *(Oid *) fcinfo->flinfo->fn_extra;
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
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
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
	scan = index_beginscan(rel, idx, snap, 0, 0);
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
		if (isnull || !HashFromDatum(d, hash))
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
	vals[1] = HashDatum(prev);
	tup = heap_modify_tuple_by_cols(tup, td, 2, cols, vals, nulls);

	LogRowHash(tup, td, hash);
	cols[0] = LogColumn(td, "hash", RelationGetRelationName(rel));
	vals[0] = HashDatum(hash);
	tup = heap_modify_tuple_by_cols(tup, td, 1, cols, vals, nulls);

	CacheHead(RelationGetRelid(rel), seq + 1, hash);
	return PointerGetDatum(tup);
}

static IpsPlan change_plan = {NULL,
	"INSERT INTO ips.change_log"
	" (logged_at, db_role, table_name, operation, client_id, row_key, old_row, new_row)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	8, {TIMESTAMPTZOID, NAMEOID, TEXTOID, TEXTOID, INT8OID, JSONBOID, JSONBOID, JSONBOID}};

/*
 * The statement form.  The entries of every row of the transition table(s)
 * are appended in the order the statement changed the rows, through the
 * table AM and the log's indexes: one executor state per statement, no SQL
 * to parse, plan or start per statement or row.  The entries are chained
 * here, exactly as ips_log_seal chains a single INSERT (same lock, same
 * head, same canonical content), so the log's own BEFORE trigger is not
 * fired for them; its CHECK and NOT NULL constraints hold by construction.
 */

/* Reads a transition table from its start with a read pointer of our own. */
static int
OpenTransitionTable(Tuplestorestate *rows)
{
	int			ptr = tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(rows, ptr);
	tuplestore_rescan(rows);
	tuplestore_select_read_pointer(rows, 0);
	return ptr;
}

static bool
NextTransitionRow(Tuplestorestate *rows, int ptr, TupleTableSlot *slot)
{
	bool		found;

	tuplestore_select_read_pointer(rows, ptr);
	found = tuplestore_gettupleslot(rows, true, false, slot);
	tuplestore_select_read_pointer(rows, 0);
	return found;
}

/*
 * A row (or its key) as a flat jsonb object, equal to to_jsonb(row) (or to
 * the key object of 1.0: integers as numbers, other key columns as their
 * text), together with the object's text exactly as jsonb_out prints it,
 * which is what the chain hashes.  The columns are put in jsonb's key order
 * (shorter names first, then bytewise) once per statement, so that each row
 * is encoded by PostgreSQL's own jsonb writer without sorting its keys, and
 * its text is written without reading the jsonb back.  The common column
 * types (integers, numeric, bool, text, name, dates and instants) are
 * converted here without a text round trip; a row with any other type goes
 * through to_jsonb() and jsonb_out() themselves.
 */
typedef struct FlatField
{
	int			attno;			/* 0-based column */
	Oid			type;
	const char *name;
	int			namelen;
	char	   *key_text;		/* "name": as jsonb_out prints it */
	bool		as_text;		/* key form: the value as its output text */
	FmgrInfo	out;			/* its output function, when as_text */
	/*
	 * The previous row's value of a pass-by-value column (integers, dates,
	 * instants) and its JsonbValue, whose numeric or string is kept in
	 * last_bytes: keys, clients and staff repeat from row to row.
	 */
	bool		byval;			/* a pass-by-value type */
	bool		have_last;
	Datum		last_value;
	JsonbValue	last_jsonb;
	union
	{
		char		str[MAXDATELEN + 1];
		int64		align;
	}			last_bytes;
} FlatField;

typedef struct RowConverter
{
	TupleDesc	td;
	bool		simple;			/* every column of a type handled below */
	int			nfields;
	FlatField  *fields;			/* in jsonb's key order */
	JsonbPair  *pairs;			/* nfields, reused row by row */
	FmgrInfo	to_jsonb;		/* to_jsonb(rowtype), for the others */
} RowConverter;

/* jsonb's order of object keys (lengthCompareJsonbStringValue). */
static int
FlatFieldOrder(const void *a, const void *b)
{
	const FlatField *fa = (const FlatField *) a;
	const FlatField *fb = (const FlatField *) b;

	if (fa->namelen != fb->namelen)
		return fa->namelen > fb->namelen ? 1 : -1;
	return memcmp(fa->name, fb->name, fa->namelen);
}

/*
 * A converter for whole rows of td (keycols NULL) or for the key columns
 * keycols[0..nkeys-1] (1-based attribute numbers).
 */
static void
RowConverterInit(RowConverter *rc, TupleDesc td, const int *keycols, int nkeys)
{
	int			n = keycols ? nkeys : td->natts;

	rc->td = td;
	rc->simple = true;
	rc->nfields = 0;
	rc->fields = palloc0(sizeof(FlatField) * Max(n, 1));
	rc->pairs = palloc0(sizeof(JsonbPair) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		int			attno = keycols ? keycols[i] - 1 : i;
		Form_pg_attribute att = TupleDescAttr(td, attno);
		FlatField  *f;
		StringInfoData key;

		if (att->attisdropped)
			continue;
		f = &rc->fields[rc->nfields++];
		f->attno = attno;
		f->type = att->atttypid;
		f->byval = att->attbyval;
		f->name = NameStr(att->attname);
		f->namelen = strlen(f->name);
		initStringInfo(&key);
		escape_json(&key, f->name);
		appendStringInfoString(&key, ": ");
		f->key_text = key.data;
		if (keycols)
		{
			f->as_text = !(f->type == INT8OID || f->type == INT4OID || f->type == INT2OID);
			if (f->as_text)
			{
				Oid			outfunc;
				bool		isvarlena;

				getTypeOutputInfo(f->type, &outfunc, &isvarlena);
				fmgr_info(outfunc, &f->out);
			}
			continue;
		}
		switch (f->type)
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
			case NUMERICOID:
			case BOOLOID:
			case TEXTOID:
			case VARCHAROID:
			case NAMEOID:
			case DATEOID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
				break;
			default:
				rc->simple = false;
		}
	}
	/* jsonb keeps one value per key: the last one given (a key named twice) */
	qsort(rc->fields, rc->nfields, sizeof(FlatField), FlatFieldOrder);
	for (int i = 0; i + 1 < rc->nfields; i++)
		if (FlatFieldOrder(&rc->fields[i], &rc->fields[i + 1]) == 0)
			elog(ERROR, "ips change log: key column \"%s\" is named twice", rc->fields[i].name);
	if (!keycols)
	{
		fmgr_info(F_TO_JSONB, &rc->to_jsonb);
		rc->to_jsonb.fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
													 list_make1(makeNullConst(td->tdtypeid, -1, InvalidOid)),
													 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	}
}

/* A JsonbValue string (not copied: the caller keeps the bytes alive). */
static void
JsonbString(JsonbValue *v, const char *str, int len)
{
	v->type = jbvString;
	v->val.string.val = (char *) str;
	v->val.string.len = len;
}

/* One scalar column as a JsonbValue (types of RowConverterInit). */
static void
ScalarJsonb(JsonbValue *v, Datum value, Oid type)
{
	char		buf[MAXDATELEN + 1];
	char	   *str;

	switch (type)
	{
		case INT2OID:
			v->type = jbvNumeric;
			v->val.numeric = int64_to_numeric(DatumGetInt16(value));
			break;
		case INT4OID:
			v->type = jbvNumeric;
			v->val.numeric = int64_to_numeric(DatumGetInt32(value));
			break;
		case INT8OID:
			v->type = jbvNumeric;
			v->val.numeric = int64_to_numeric(DatumGetInt64(value));
			break;
		case NUMERICOID:
			v->type = jbvNumeric;
			v->val.numeric = DatumGetNumeric(value);
			break;
		case BOOLOID:
			v->type = jbvBool;
			v->val.boolean = DatumGetBool(value);
			break;
		case NAMEOID:
			str = NameStr(*DatumGetName(value));
			JsonbString(v, str, strlen(str));
			break;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			str = pstrdup(JsonEncodeDateTime(buf, value, type, NULL));
			JsonbString(v, str, strlen(str));
			break;
		default:				/* text, varchar */
			{
				text	   *t = DatumGetTextPP(value);

				JsonbString(v, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			}
	}
}

/* A scalar JsonbValue as jsonb_out prints it (jsonb_put_escaped_value); value/type: its column. */
static void
ScalarJsonbText(StringInfo out, const JsonbValue *v, Datum value, Oid type)
{
	char		num[MAXINT8LEN + 1];

	switch (v->type)
	{
		case jbvNull:
			appendBinaryStringInfo(out, "null", 4);
			break;
		case jbvBool:
			if (v->val.boolean)
				appendBinaryStringInfo(out, "true", 4);
			else
				appendBinaryStringInfo(out, "false", 5);
			break;
		case jbvNumeric:
			if (type == INT8OID)
				appendBinaryStringInfo(out, num, pg_lltoa(DatumGetInt64(value), num));
			else if (type == INT4OID)
				appendBinaryStringInfo(out, num, pg_ltoa(DatumGetInt32(value), num));
			else if (type == INT2OID)
				appendBinaryStringInfo(out, num, pg_ltoa((int32) DatumGetInt16(value), num));
			else
				appendStringInfoString(out, DatumGetCString(DirectFunctionCall1(numeric_out,
																				NumericGetDatum(v->val.numeric))));
			break;
		case jbvString:
			{
				const char *str = v->val.string.val;
				int			len = v->val.string.len;
				int			i;

				/* nothing for escape_json() to escape: the bytes in quotes */
				for (i = 0; i < len; i++)
					if ((unsigned char) str[i] < ' ' || str[i] == '"' || str[i] == '\\')
						break;
				if (i < len)
					escape_json(out, pnstrdup(str, len));
				else
				{
					appendStringInfoChar(out, '"');
					appendBinaryStringInfo(out, str, len);
					appendStringInfoChar(out, '"');
				}
			}
			break;
		default:
			elog(ERROR, "ips change log: unexpected jsonb value type %d", (int) v->type);
	}
}

/* Keeps a pass-by-value column's value and JsonbValue for the next row (see FlatField). */
static void
RememberScalar(FlatField *f, Datum value, const JsonbValue *v)
{
	f->have_last = false;
	if (!f->byval)
		return;
	if (v->type == jbvNumeric && VARSIZE(v->val.numeric) <= sizeof(f->last_bytes))
	{
		memcpy(f->last_bytes.str, v->val.numeric, VARSIZE(v->val.numeric));
		f->last_jsonb = *v;
		f->last_jsonb.val.numeric = (Numeric) f->last_bytes.str;
	}
	else if (v->type == jbvString && v->val.string.len < sizeof(f->last_bytes))
	{
		memcpy(f->last_bytes.str, v->val.string.val, v->val.string.len);
		f->last_jsonb = *v;
		f->last_jsonb.val.string.val = f->last_bytes.str;
	}
	else
		return;
	f->last_value = value;
	f->have_last = true;
}

/*
 * The jsonb object of one row (values/isnull: all columns of the
 * converter's tuple descriptor); its jsonb_out text is appended to text
 * unless that is NULL.
 */
static Datum
ConvertValues(RowConverter *rc, Datum *values, bool *isnull, StringInfo text)
{
	JsonbValue	obj;

	if (!rc->simple)
	{
		HeapTuple	tup = heap_form_tuple(rc->td, values, isnull);
		Datum		result = FunctionCall1(&rc->to_jsonb, heap_copy_tuple_as_datum(tup, rc->td));

		if (text)
			appendStringInfoString(text, DatumGetCString(DirectFunctionCall1(jsonb_out, result)));
		return result;
	}
	if (text)
		appendStringInfoChar(text, '{');
	for (int i = 0; i < rc->nfields; i++)
	{
		FlatField  *f = &rc->fields[i];
		JsonbPair  *p = &rc->pairs[i];
		Datum		value = values[f->attno];

		JsonbString(&p->key, f->name, f->namelen);
		p->order = i;
		if (isnull[f->attno])
			p->value.type = jbvNull;
		else if (f->as_text)
		{
			char	   *str = OutputFunctionCall(&f->out, value);

			JsonbString(&p->value, str, strlen(str));
		}
		else if (f->have_last && f->last_value == value)
			p->value = f->last_jsonb;
		else
		{
			ScalarJsonb(&p->value, value, f->type);
			RememberScalar(f, value, &p->value);
		}
		if (text)
		{
			if (i > 0)
				appendBinaryStringInfo(text, ", ", 2);
			appendStringInfoString(text, f->key_text);
			ScalarJsonbText(text, &p->value, value, f->as_text ? InvalidOid : f->type);
		}
	}
	if (text)
		appendStringInfoChar(text, '}');
	obj.type = jbvObject;
	obj.val.object.nPairs = rc->nfields;
	obj.val.object.pairs = rc->pairs;
	return JsonbPGetDatum(JsonbValueToJsonb(&obj));
}

/* The same for a heap tuple of the converter's descriptor (the row form of 1.0). */
static Datum
ConvertTuple(RowConverter *rc, HeapTuple tup)
{
	Datum	   *values = palloc(sizeof(Datum) * rc->td->natts);
	bool	   *isnull = palloc(sizeof(bool) * rc->td->natts);

	heap_deform_tuple(tup, rc->td, values, isnull);
	return ConvertValues(rc, values, isnull, NULL);
}

/* Attribute numbers of the key columns named by the trigger's arguments. */
static int *
KeyColumns(TupleDesc td, Trigger *trigger)
{
	int		   *keycols = palloc(sizeof(int) * Max(trigger->tgnargs, 1));

	for (int k = 0; k < trigger->tgnargs; k++)
	{
		keycols[k] = SPI_fnumber(td, trigger->tgargs[k]);
		if (keycols[k] <= 0)
			elog(ERROR, "ips_change_log_row: no key column \"%s\"", trigger->tgargs[k]);
	}
	return keycols;
}

/*
 * Writes chained entries to ips.change_log for one statement: the chain's
 * lock and head, then entries LOG_BATCH at a time with table_multi_insert
 * and the log's index inserts (one WAL record per page instead of one per
 * entry), each hashed over the same canonical content as ips_log_seal
 * hashes a single INSERT.
 */
enum
{
	LC_SEQ, LC_LOGGED_AT, LC_DB_ROLE, LC_TABLE_NAME, LC_OPERATION, LC_CLIENT_ID,
	LC_ROW_KEY, LC_OLD_ROW, LC_NEW_ROW, LC_PREV_HASH, LC_HASH, LC_COUNT
};

static const char *const log_column_names[LC_COUNT] = {
	"seq", "logged_at", "db_role", "table_name", "operation", "client_id",
	"row_key", "old_row", "new_row", "prev_hash", "hash"
};

#define LOG_BATCH 256

typedef struct LogWriter
{
	Relation	rel;
	TupleDesc	td;
	int			col[LC_COUNT];	/* 0-based column of each */
	EState	   *estate;
	ResultRelInfo *rri;
	BulkInsertState bistate;	/* for statements of more than one batch */
	CommandId	cid;
	TupleTableSlot **slots;		/* batch_size, made as they are first needed */
	int			batch_size;		/* the statement's entries, at most LOG_BATCH */
	int			nslots;
	MemoryContext batch_cxt;	/* the batch's entries; reset after each flush */
	Datum	   *values;			/* the entry being made: the caller fills */
	bool	   *nulls;			/* all but seq, prev_hash and hash */
	const char **json_text;		/* jsonb_out text of its jsonb columns, or NULL */
	StringInfoData hash_buf;
	pg_cryptohash_ctx *hash_ctx;
	int64		seq;			/* the chain's head */
	uint8		head[PG_SHA256_DIGEST_LENGTH];
} LogWriter;

static void
LogWriterBegin(LogWriter *w, Oid log_relid, int64 nentries)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	w->rel = table_open(log_relid, RowExclusiveLock);
	w->td = RelationGetDescr(w->rel);
	for (int k = 0; k < LC_COUNT; k++)
		w->col[k] = LogColumn(w->td, log_column_names[k], "change_log") - 1;
	w->estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = log_relid;
	rte->relkind = w->rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(w->estate, list_make1(rte));
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
	w->cid = GetCurrentCommandId(true);
	w->estate->es_output_cid = w->cid;
	ExecOpenIndices(w->rri, false);
	w->batch_size = (int) Max(Min(nentries, LOG_BATCH), 1);
	w->slots = palloc0(sizeof(TupleTableSlot *) * w->batch_size);
	w->nslots = 0;
	w->bistate = nentries > LOG_BATCH ? GetBulkInsertState() : NULL;
	w->batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "ips change log batch",
										 ALLOCSET_DEFAULT_SIZES);
	w->values = palloc(sizeof(Datum) * w->td->natts);
	w->nulls = palloc(sizeof(bool) * w->td->natts);
	w->json_text = palloc0(sizeof(char *) * w->td->natts);
	initStringInfo(&w->hash_buf);
	w->hash_ctx = pg_cryptohash_create(PG_SHA256);
	if (w->hash_ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));

	/* the chain: its lock (to the end of the transaction) and its head */
	LockChain(w->rel);
	ReadHead(w->rel, &w->seq, w->head);
}

/* Writes the entries made so far. */
static void
LogWriterFlush(LogWriter *w)
{
	if (w->nslots == 0)
		return;
	table_multi_insert(w->rel, w->slots, w->nslots, w->cid, 0, w->bistate);
	for (int i = 0; i < w->nslots; i++)
	{
		if (w->rri->ri_NumIndices > 0)
			(void) ExecInsertIndexTuples(w->rri, w->slots[i], w->estate, false, false, NULL, NIL);
		ExecClearTuple(w->slots[i]);
	}
	w->nslots = 0;
	ResetPerTupleExprContext(w->estate);
	MemoryContextReset(w->batch_cxt);
}

/*
 * Chains the entry in w->values (made in w->batch_cxt, the current memory
 * context) and queues it; the batch is written when full.
 */
static void
LogWriterAppend(LogWriter *w)
{
	uint8		hash[PG_SHA256_DIGEST_LENGTH];

	w->values[w->col[LC_SEQ]] = Int64GetDatum(w->seq + 1);
	w->nulls[w->col[LC_SEQ]] = false;
	w->values[w->col[LC_PREV_HASH]] = HashDatum(w->head);
	w->nulls[w->col[LC_PREV_HASH]] = false;
	LogValuesHash(w->values, w->nulls, w->td, hash, w->json_text, &w->hash_buf, w->hash_ctx);
	w->values[w->col[LC_HASH]] = HashDatum(hash);
	w->nulls[w->col[LC_HASH]] = false;
	if (w->slots[w->nslots] == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(w->estate->es_query_cxt);

		w->slots[w->nslots] = ExecInitExtraTupleSlot(w->estate, w->td, &TTSOpsHeapTuple);
		MemoryContextSwitchTo(oldcxt);
	}
	ExecStoreHeapTuple(heap_form_tuple(w->td, w->values, w->nulls), w->slots[w->nslots++], true);
	w->seq++;
	memcpy(w->head, hash, PG_SHA256_DIGEST_LENGTH);
	if (w->nslots == w->batch_size)
		LogWriterFlush(w);
}

/* Writes the rest, keeps the new head for the rest of the transaction, closes. */
static void
LogWriterEnd(LogWriter *w)
{
	LogWriterFlush(w);
	/* an error before this aborts the transaction, and the cached head with it */
	CacheHead(RelationGetRelid(w->rel), w->seq, w->head);
	if (w->bistate)
	{
		FreeBulkInsertState(w->bistate);
		table_finish_bulk_insert(w->rel, 0);
	}
	pg_cryptohash_free(w->hash_ctx);
	ExecCloseIndices(w->rri);
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
	MemoryContextDelete(w->batch_cxt);
	table_close(w->rel, NoLock);
}

/* AFTER STATEMENT with transition tables: append an entry for every changed row. */
static void
ChangeLogStatement(FunctionCallInfo fcinfo, TriggerData *trigdata)
{
	TriggerEvent event = trigdata->tg_event & TRIGGER_EVENT_OPMASK;
	Tuplestorestate *oldrows = (event == TRIGGER_EVENT_INSERT) ? NULL : trigdata->tg_oldtable;
	Tuplestorestate *newrows = (event == TRIGGER_EVENT_DELETE) ? NULL : trigdata->tg_newtable;
	Relation	rel = trigdata->tg_relation;
	Trigger    *trigger = trigdata->tg_trigger;
	TupleDesc	td = RelationGetDescr(rel);
	Oid			log_relid;
	Datum		logged_at;
	Datum		db_role;
	Datum		table_name;
	Datum		operation;
	int			client_col;
	int		   *keycols;
	int			nkeys;
	Oid			save_userid;
	int			save_sec_context;

	if ((event != TRIGGER_EVENT_DELETE && newrows == NULL) ||
		(event != TRIGGER_EVENT_INSERT && oldrows == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on %s has no transition table",
						trigger->tgname, RelationGetRelationName(rel)),
				 errhint("Run SELECT ips.apply_security(); it creates the change-log triggers with REFERENCING OLD TABLE AS ips_old NEW TABLE AS ips_new.")));
	if (tuplestore_tuple_count(newrows ? newrows : oldrows) == 0)
		return;					/* e.g. ON CONFLICT DO NOTHING that inserted nothing */

	log_relid = get_relname_relid("change_log", get_namespace_oid("ips", false));
	if (!OidIsValid(log_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table ips.change_log does not exist"),
				 errhint("Reinstall the extension: DROP EXTENSION ips; CREATE EXTENSION ips (after a backup).")));

	logged_at = TimestampTzGetDatum(GetCurrentTimestamp());
	db_role = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false)));
	table_name = CStringGetTextDatum(quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
																RelationGetRelationName(rel)));
	operation = CStringGetTextDatum(event == TRIGGER_EVENT_INSERT ? "INSERT" :
									event == TRIGGER_EVENT_UPDATE ? "UPDATE" : "DELETE");
	client_col = SPI_fnumber(td, "client_id");
	if (client_col > 0 && SPI_gettypeid(td, client_col) != INT8OID)
		client_col = 0;
	keycols = KeyColumns(td, trigger);
	nkeys = trigger->tgnargs;

	/* The log is written as the extension owner: no caller may write it. */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(FunctionOwner(fcinfo), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		LogWriter	w;
		TupleDesc	rtd = RelationGetDescr(rel);
		TupleTableSlot *oldslot = NULL;
		TupleTableSlot *newslot = NULL;
		RowConverter conv;
		RowConverter keyconv;
		int			oldptr = 0;
		int			newptr = 0;
		StringInfoData keytext;
		StringInfoData oldtext;
		StringInfoData newtext;

		LogWriterBegin(&w, log_relid, tuplestore_tuple_count(newrows ? newrows : oldrows));
		RowConverterInit(&conv, rtd, NULL, 0);
		RowConverterInit(&keyconv, rtd, keycols, nkeys);
		initStringInfo(&keytext);
		initStringInfo(&oldtext);
		initStringInfo(&newtext);
		if (oldrows)
		{
			oldslot = MakeSingleTupleTableSlot(rtd, &TTSOpsMinimalTuple);
			oldptr = OpenTransitionTable(oldrows);
		}
		if (newrows)
		{
			newslot = MakeSingleTupleTableSlot(rtd, &TTSOpsMinimalTuple);
			newptr = OpenTransitionTable(newrows);
		}

		for (;;)
		{
			MemoryContext oldcxt;
			TupleTableSlot *keyslot;
			Datum	   *values;
			bool	   *nulls;

			CHECK_FOR_INTERRUPTS();
			/* read outside the batch's context: a tuple read back from disk belongs to its slot */
			if (oldrows && !NextTransitionRow(oldrows, oldptr, oldslot))
				break;
			if (newrows && !NextTransitionRow(newrows, newptr, newslot))
				break;
			keyslot = newrows ? newslot : oldslot;
			if (oldrows)
				slot_getallattrs(oldslot);
			if (newrows)
				slot_getallattrs(newslot);

			oldcxt = MemoryContextSwitchTo(w.batch_cxt);
			values = w.values;
			nulls = w.nulls;
			for (int k = 0; k < w.td->natts; k++)
			{
				values[k] = (Datum) 0;
				nulls[k] = true;
				w.json_text[k] = NULL;
			}
			values[w.col[LC_LOGGED_AT]] = logged_at;
			values[w.col[LC_DB_ROLE]] = db_role;
			values[w.col[LC_TABLE_NAME]] = table_name;
			values[w.col[LC_OPERATION]] = operation;
			nulls[w.col[LC_LOGGED_AT]] = nulls[w.col[LC_DB_ROLE]] = false;
			nulls[w.col[LC_TABLE_NAME]] = nulls[w.col[LC_OPERATION]] = false;
			if (client_col > 0)
			{
				values[w.col[LC_CLIENT_ID]] = keyslot->tts_values[client_col - 1];
				nulls[w.col[LC_CLIENT_ID]] = keyslot->tts_isnull[client_col - 1];
			}
			resetStringInfo(&keytext);
			values[w.col[LC_ROW_KEY]] = ConvertValues(&keyconv, keyslot->tts_values, keyslot->tts_isnull, &keytext);
			nulls[w.col[LC_ROW_KEY]] = false;
			w.json_text[w.col[LC_ROW_KEY]] = keytext.data;
			if (oldrows)
			{
				resetStringInfo(&oldtext);
				values[w.col[LC_OLD_ROW]] = ConvertValues(&conv, oldslot->tts_values, oldslot->tts_isnull, &oldtext);
				nulls[w.col[LC_OLD_ROW]] = false;
				w.json_text[w.col[LC_OLD_ROW]] = oldtext.data;
			}
			if (newrows)
			{
				resetStringInfo(&newtext);
				values[w.col[LC_NEW_ROW]] = ConvertValues(&conv, newslot->tts_values, newslot->tts_isnull, &newtext);
				nulls[w.col[LC_NEW_ROW]] = false;
				w.json_text[w.col[LC_NEW_ROW]] = newtext.data;
			}
			LogWriterAppend(&w);
			MemoryContextSwitchTo(oldcxt);
		}
		LogWriterEnd(&w);
		if (oldslot)
			ExecDropSingleTupleTableSlot(oldslot);
		if (newslot)
			ExecDropSingleTupleTableSlot(newslot);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
}

PG_FUNCTION_INFO_V1(ips_change_log_row);
/* AFTER trigger on a person-level table: append the change(s) to ips.change_log. */
Datum
ips_change_log_row(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent ev;
	Relation	rel;
	TupleDesc	td;
	HeapTuple	oldtup = NULL;
	HeapTuple	newtup = NULL;
	HeapTuple	keytup;
	Datum		args[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	RowConverter conv;
	RowConverter keyconv;
	int			client_col;
	Oid			save_userid;
	int			save_sec_context;
	volatile int rc = 0;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event))
		elog(ERROR, "ips_change_log_row must be an AFTER trigger");
	/* pg_restore (ips.restoring): the dumped change log already holds these rows' history */
	if (ips_restoring)
		return PointerGetDatum(NULL);
	ev = trigdata->tg_event;
	if (TRIGGER_FIRED_FOR_STATEMENT(ev) && !TRIGGER_FIRED_BY_TRUNCATE(ev))
	{
		ChangeLogStatement(fcinfo, trigdata);
		return PointerGetDatum(NULL);
	}
	rel = trigdata->tg_relation;
	td = rel->rd_att;

	args[0] = TimestampTzGetDatum(GetCurrentTimestamp());
	args[1] = DirectFunctionCall1(namein,
								  CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false)));
	args[2] = CStringGetTextDatum(quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
															 RelationGetRelationName(rel)));
	if (TRIGGER_FIRED_BY_TRUNCATE(ev))
	{
		args[3] = CStringGetTextDatum("TRUNCATE");
		nulls[4] = nulls[5] = nulls[6] = nulls[7] = 'n';
	}
	else
	{
		if (!TRIGGER_FIRED_FOR_ROW(ev))
			elog(ERROR, "ips_change_log_row must be a STATEMENT or ROW trigger for INSERT, UPDATE, DELETE");
		if (TRIGGER_FIRED_BY_INSERT(ev))
		{
			args[3] = CStringGetTextDatum("INSERT");
			newtup = trigdata->tg_trigtuple;
		}
		else if (TRIGGER_FIRED_BY_UPDATE(ev))
		{
			args[3] = CStringGetTextDatum("UPDATE");
			oldtup = trigdata->tg_trigtuple;
			newtup = trigdata->tg_newtuple;
		}
		else
		{
			args[3] = CStringGetTextDatum("DELETE");
			oldtup = trigdata->tg_trigtuple;
		}
		keytup = newtup ? newtup : oldtup;
		client_col = SPI_fnumber(td, "client_id");
		if (client_col > 0 && SPI_gettypeid(td, client_col) == INT8OID)
		{
			bool		isnull;

			args[4] = SPI_getbinval(keytup, td, client_col, &isnull);
			if (isnull)
				nulls[4] = 'n';
		}
		else
			nulls[4] = 'n';
		RowConverterInit(&conv, td, NULL, 0);
		RowConverterInit(&keyconv, td, KeyColumns(td, trigdata->tg_trigger), trigdata->tg_trigger->tgnargs);
		args[5] = ConvertTuple(&keyconv, keytup);
		if (oldtup)
			args[6] = ConvertTuple(&conv, oldtup);
		else
			nulls[6] = 'n';
		if (newtup)
			args[7] = ConvertTuple(&conv, newtup);
		else
			nulls[7] = 'n';
	}

	/* The log is written as the extension owner: no caller may write it. */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(FunctionOwner(fcinfo), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute_plan(IpsPreparePlan(&change_plan), args, nulls, false, 0);
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "appending to ips.change_log failed: %s", SPI_result_code_string(rc));
	return PointerGetDatum(NULL);
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
			if (isnull || !HashFromDatum(d, stored_prev) || memcmp(stored_prev, prev, sizeof(prev)) != 0)
			{
				problem = pstrdup("prev_hash does not match the hash of the entry before: the chain is broken here");
				break;
			}
			d = SPI_getbinval(tup, td, LogColumn(td, "hash", relname), &isnull);
			LogRowHash(tup, td, computed);
			if (isnull || !HashFromDatum(d, stored) || memcmp(stored, computed, sizeof(computed)) != 0)
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
