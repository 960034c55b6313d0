/*
 * ledger_writer.c
 *		Appends entries to the ledger's logs (docs/ledger.md).
 *
 *	ips_change_log_row	AFTER STATEMENT trigger with transition tables (and
 *						AFTER TRUNCATE; the AFTER ROW form of 1.0 is still
 *						understood) on the logged tables: one entry per
 *						changed row, written straight through the table AM
 *						and the log's indexes in batches.
 *	ips_access_log_append	one access-log entry (ips.log_access() calls it).
 *	ips_ledger_guard	BEFORE trigger on the ledger's tables: refuses INSERT,
 *						UPDATE, DELETE and TRUNCATE to everyone, superusers
 *						included (42501); only this writer, the sealer and
 *						the archiver write them.
 *
 *	An entry is written unchained: its seq comes from the log's sequence, its
 *	xid is the writing transaction's (xid8), and its hash is SHA-256 over its
 *	own canonical form (ledger_canonical.c).  The first entry a transaction
 *	writes to a log also inserts one row (log, xid, first seq) into
 *	ips.ledger_pending; the sealer (ledger_seal.c) chains committed
 *	transactions into blocks after their commit.  No lock but the tables'
 *	own is taken: unrelated transactions never wait for each other here.
 *
 *	A database still on the 1.0/1.1 schema (this library installed, ALTER
 *	EXTENSION UPDATE not yet run: no xid column) keeps logging the 1.1 way,
 *	through SQL INSERTs that its own chaining trigger (ledger_legacy.c)
 *	chains.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/resowner.h"
#include "utils/xid8.h"

#include "ips.h"
#include "ledger.h"

bool		ledger_internal_write = false;

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
 * Converters of the logged tables, kept for the backend (building one sorts
 * the columns and looks up functions: a one-row statement would pay that
 * every time).  An entry is dropped when its table's relcache entry is
 * invalidated (ALTER TABLE and the like), since it points into the table's
 * tuple descriptor.
 */
typedef struct ConverterCacheEntry
{
	Oid			relid;			/* InvalidOid: free */
	TupleDesc	td;				/* the descriptor it was built for */
	char	   *keysig;			/* the key columns, comma-separated; NULL: whole rows */
	RowConverter conv;
	MemoryContext cxt;
} ConverterCacheEntry;

#define CONVERTER_CACHE_SIZE 64
static ConverterCacheEntry converter_cache[CONVERTER_CACHE_SIZE];
static bool converter_callback = false;
static int	converter_next = 0;

/*
 * Converters dropped from the cache are not freed at once (a statement may
 * be using them when an invalidation arrives): their memory goes here and is
 * freed when the next statement starts (ConverterCacheSweep).
 */
static List *converter_graveyard = NIL;

/* Drop one entry: its memory to the graveyard. */
static void
ConverterCacheDrop(ConverterCacheEntry *e)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	converter_graveyard = lappend(converter_graveyard, e->cxt);
	MemoryContextSwitchTo(old);
	e->relid = InvalidOid;
	e->cxt = NULL;
}

/* Relcache callback: forget the converters of a table (all: InvalidOid). */
static void
ConverterCacheInval(Datum arg, Oid relid)
{
	for (int i = 0; i < CONVERTER_CACHE_SIZE; i++)
	{
		ConverterCacheEntry *e = &converter_cache[i];

		if (e->relid != InvalidOid && (relid == InvalidOid || e->relid == relid))
			ConverterCacheDrop(e);
	}
}

/* Free the dropped converters; called when a statement starts, before it takes any. */
static void
ConverterCacheSweep(void)
{
	ListCell   *lc;

	foreach(lc, converter_graveyard)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(converter_graveyard);
	converter_graveyard = NIL;
}

/* The key columns of a trigger as one string, the cache's key. */
static char *
KeySignature(Trigger *trigger)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int k = 0; k < trigger->tgnargs; k++)
	{
		appendStringInfoString(&buf, trigger->tgargs[k]);
		appendStringInfoChar(&buf, ',');
	}
	return buf.data;
}

/*
 * The converter of rel's whole rows (trigger NULL) or of the key columns
 * named by the trigger's arguments, from the cache or built into it.
 */
static RowConverter *
GetRowConverter(Relation rel, Trigger *trigger)
{
	Oid			relid = RelationGetRelid(rel);
	TupleDesc	td = RelationGetDescr(rel);
	char	   *keysig = trigger ? KeySignature(trigger) : NULL;
	ConverterCacheEntry *e;
	MemoryContext old;

	for (int i = 0; i < CONVERTER_CACHE_SIZE; i++)
	{
		e = &converter_cache[i];
		if (e->relid == relid && e->td == td &&
			((keysig == NULL && e->keysig == NULL) ||
			 (keysig != NULL && e->keysig != NULL && strcmp(keysig, e->keysig) == 0)))
			return &e->conv;
	}
	if (!converter_callback)
	{
		IpsRegisterRelcacheCallback(ConverterCacheInval);
		converter_callback = true;
	}
	e = &converter_cache[converter_next];
	converter_next = (converter_next + 1) % CONVERTER_CACHE_SIZE;
	if (e->relid != InvalidOid)
		ConverterCacheDrop(e);
	e->cxt = AllocSetContextCreate(TopMemoryContext, "ips change log converter", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(e->cxt);
	e->keysig = keysig ? pstrdup(keysig) : NULL;
	if (trigger)
		RowConverterInit(&e->conv, td, KeyColumns(td, trigger), trigger->tgnargs);
	else
		RowConverterInit(&e->conv, td, NULL, 0);
	MemoryContextSwitchTo(old);
	e->td = td;
	e->relid = relid;
	return &e->conv;
}

/* ---------- which transactions are pending ---------- */

/*
 * The transaction (and the subtransaction that owns the row) that marked
 * itself pending in each log, so that it does so once; a rolled-back
 * subtransaction takes its row with it.
 */
static FullTransactionId pending_fxid[LEDGER_NLOGS];
static SubTransactionId pending_subid[LEDGER_NLOGS];
static bool pending_callback = false;

/* Subtransaction callback: follow the pending row's owner up, or forget it. */
static void
PendingSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	for (int i = 0; i < LEDGER_NLOGS; i++)
	{
		if (pending_subid[i] != mySubid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			pending_subid[i] = parentSubid;
		else if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			pending_fxid[i] = InvalidFullTransactionId;
			pending_subid[i] = InvalidSubTransactionId;
		}
	}
}

/* The relation id of a table of schema ips, or an error. */
static Oid
LedgerRelid(const char *relname)
{
	Oid			relid = IpsRelid(relname);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table ips.%s does not exist", relname),
				 errhint("Run ALTER EXTENSION ips UPDATE, or reinstall the extension after a backup.")));
	return relid;
}

/* Marks this transaction pending in a log (once per transaction): one row in ips.ledger_pending. */
static void
MarkPending(LedgerLogId log, FullTransactionId fxid, int64 first_seq)
{
	Relation	rel;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	HeapTuple	tup;

	if (FullTransactionIdEquals(pending_fxid[log], fxid))
		return;
	if (!pending_callback)
	{
		RegisterSubXactCallback(PendingSubXactCallback, NULL);
		pending_callback = true;
	}
	rel = table_open(LedgerRelid("ledger_pending"), RowExclusiveLock);
	values[0] = CStringGetTextDatum(ledger_logs[log].name);
	values[1] = FullTransactionIdGetDatum(fxid);
	values[2] = Int64GetDatum(first_seq);
	tup = heap_form_tuple(RelationGetDescr(rel), values, nulls);
	simple_heap_insert(rel, tup);
	table_close(rel, NoLock);
	pending_fxid[log] = fxid;
	pending_subid[log] = GetCurrentSubTransactionId();
}

/* ---------- the writer ---------- */

/*
 * What the writer looks up about a log table in every statement, kept for
 * the backend: its id, its sequence's, the positions of its fields and
 * whether it has the 1.2 layout.  Dropped when the log's relcache entry is
 * invalidated (ALTER TABLE, DROP, ALTER EXTENSION UPDATE).
 */
typedef struct LogSetup
{
	Oid			relid;			/* InvalidOid: not known */
	Oid			seqid;
	bool		current;		/* the 1.2 layout (an xid column) */
	TupleDesc	td;				/* the descriptor cols were mapped for */
	LedgerColumns cols;
	/* the log's indexes, for one-entry statements (LogSetupIndexes) */
	bool		indexes_known;
	bool		direct;			/* every index a plain btree: no executor state needed */
	int			nindexes;
	Oid		   *indexoids;
	IndexInfo **indexinfo;
	MemoryContext cxt;			/* indexoids and indexinfo */
} LogSetup;

static LogSetup log_setup[LEDGER_NLOGS];
static bool log_setup_callback = false;

/* Relcache callback: forget what was kept about a log table (all: InvalidOid). */
static void
LogSetupInval(Datum arg, Oid relid)
{
	for (int i = 0; i < LEDGER_NLOGS; i++)
		if (relid == InvalidOid || log_setup[i].relid == relid)
			log_setup[i].relid = InvalidOid;
}

/* What is kept about a log table, looked up when needed (without its columns: see LogSetupColumns). */
static LogSetup *
GetLogSetup(LedgerLogId log)
{
	LogSetup   *ls = &log_setup[log];

	if (!OidIsValid(ls->relid))
	{
		Oid			relid = LedgerRelid(ledger_logs[log].name);

		if (!log_setup_callback)
		{
			IpsRegisterRelcacheCallback(LogSetupInval);
			log_setup_callback = true;
		}
		ls->current = get_attnum(relid, "xid") != InvalidAttrNumber;
		ls->seqid = ls->current ? LedgerRelid(ledger_logs[log].seqname) : InvalidOid;
		ls->td = NULL;
		ls->indexes_known = false;
		ls->relid = relid;
	}
	return ls;
}

/*
 * Whether one entry can be written to the open log rel without executor
 * state: true when every index of the log is a ready, immediate btree on
 * plain columns (its primary key on seq, and any such index a DBA added).
 * Otherwise (an expression or partial index, a GIN or BRIN index, an
 * exclusion constraint, an index being built) the executor writes it.  The
 * answer and each index's IndexInfo are kept until the log's relcache entry
 * is invalidated (CREATE or DROP INDEX invalidate it).
 */
static bool
LogSetupIndexes(LogSetup *ls, Relation rel)
{
	if (!ls->indexes_known)
	{
		List	   *indexes;
		ListCell   *lc;
		MemoryContext old;
		int			i = 0;

		if (ls->cxt == NULL)
			ls->cxt = AllocSetContextCreate(TopMemoryContext, "ips log indexes", ALLOCSET_SMALL_SIZES);
		else
			MemoryContextReset(ls->cxt);
		old = MemoryContextSwitchTo(ls->cxt);
		indexes = RelationGetIndexList(rel);
		ls->nindexes = list_length(indexes);
		ls->indexoids = palloc(sizeof(Oid) * Max(ls->nindexes, 1));
		ls->indexinfo = palloc(sizeof(IndexInfo *) * Max(ls->nindexes, 1));
		ls->direct = true;
		foreach(lc, indexes)
		{
			Relation	irel = index_open(lfirst_oid(lc), RowExclusiveLock);
			Form_pg_index ix = irel->rd_index;

			if (irel->rd_rel->relam != BTREE_AM_OID || !ix->indisready || !ix->indislive ||
				!ix->indimmediate || ix->indisexclusion ||
				!heap_attisnull(irel->rd_indextuple, Anum_pg_index_indexprs, NULL) ||
				!heap_attisnull(irel->rd_indextuple, Anum_pg_index_indpred, NULL))
				ls->direct = false;
			ls->indexoids[i] = lfirst_oid(lc);
			ls->indexinfo[i] = BuildIndexInfo(irel);
			i++;
			index_close(irel, NoLock);
		}
		MemoryContextSwitchTo(old);
		ls->indexes_known = true;
	}
	return ls->direct;
}

/* The positions of a log's fields in td (the open log table's descriptor), mapped once per descriptor. */
static const LedgerColumns *
LogSetupColumns(LogSetup *ls, LedgerLogId log, TupleDesc td)
{
	if (ls->td != td)
	{
		ls->td = NULL;
		LedgerMapColumns(log, td, &ls->cols);
		ls->td = td;
	}
	return &ls->cols;
}

/*
 * The writer's SHA-256 hasher, made once per backend.  With OpenSSL 3 it is
 * a buffer (the digest context is the process's, ledger_canonical.c); with
 * pg_cryptohash its context is remembered by a resource owner of its own, so
 * it outlives transactions (pg_cryptohash contexts belong to the resource
 * owner they were made under).
 */
static LedgerHasher *
WriterHasher(void)
{
	static LedgerHasher hasher;
	static bool made = false;
	static ResourceOwner owner = NULL;

	if (!made)
	{
		ResourceOwner save_owner = CurrentResourceOwner;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		if (owner == NULL)
			owner = ResourceOwnerCreate(NULL, "ips ledger writer");
		CurrentResourceOwner = owner;
		PG_TRY();
		{
			LedgerHasherInit(&hasher);
		}
		PG_FINALLY();
		{
			CurrentResourceOwner = save_owner;
			MemoryContextSwitchTo(old);
		}
		PG_END_TRY();
		made = true;
	}
	return &hasher;
}

/* After a statement: a canonical form buffer grown by a large row is given back. */
static void
WriterHasherTrim(LedgerHasher *h)
{
	if (h->buf.maxlen > 64 * 1024)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		pfree(h->buf.data);
		initStringInfo(&h->buf);
		MemoryContextSwitchTo(old);
	}
}

#define LOG_BATCH 256

/*
 * Writes entries of one log for one statement (or one call): LOG_BATCH at a
 * time with table_multi_insert and the log's index inserts (one WAL record
 * per page instead of one per entry).
 */
typedef struct LogWriter
{
	LedgerLogId log;
	Relation	rel;
	TupleDesc	td;
	LedgerColumns cols;
	Oid			seqid;
	FullTransactionId fxid;
	EState	   *estate;
	ResultRelInfo *rri;
	BulkInsertState bistate;	/* for statements of more than one batch */
	CommandId	cid;
	TupleTableSlot **slots;		/* batch_size, made as they are first needed */
	int			batch_size;		/* the statement's entries, at most LOG_BATCH */
	int			nslots;
	MemoryContext batch_cxt;	/* the batch's entries; reset after each flush */
	Datum		fvalues[LEDGER_MAX_FIELDS];	/* the entry being made, by field: the */
	bool		fnulls[LEDGER_MAX_FIELDS];	/* caller fills all but seq and xid */
	const char *json_text[LEDGER_MAX_FIELDS];	/* jsonb_out text of jsonb fields, or NULL */
	Datum	   *values;			/* by table column */
	bool	   *nulls;
	LedgerHasher *hasher;		/* WriterHasher() */
	int64		last_seq;
	/* one change-log entry on plain btree indexes: heap and index inserts, no executor */
	bool		direct;
	int			nindexes;
	Relation   *irels;
	IndexInfo **indexinfo;
} LogWriter;

/* The memory of a directly written entry, kept for the backend and reset after each. */
static MemoryContext
DirectEntryContext(void)
{
	static MemoryContext cxt = NULL;

	if (cxt == NULL)
		cxt = AllocSetContextCreate(TopMemoryContext, "ips ledger entry", ALLOCSET_DEFAULT_SIZES);
	return cxt;
}

/* Opens a log for nentries entries. */
static void
LogWriterBegin(LogWriter *w, LedgerLogId log, int64 nentries)
{
	LogSetup   *ls = GetLogSetup(log);
	Oid			relid = ls->relid;
	RangeTblEntry *rte;

	w->log = log;
	w->rel = table_open(relid, RowExclusiveLock);
	/* the lock took in invalidations: what was kept may have gone */
	ls = GetLogSetup(log);
	if (ls->relid != relid || !ls->current)
		elog(ERROR, "ips.%s changed while it was being written", ledger_logs[log].name);
	w->td = RelationGetDescr(w->rel);
	w->cols = *LogSetupColumns(ls, log, w->td);
	w->seqid = ls->seqid;
	w->fxid = GetTopFullTransactionId();
	w->cid = GetCurrentCommandId(true);
	w->hasher = WriterHasher();
	w->last_seq = 0;
	w->nslots = 0;
	w->values = palloc(sizeof(Datum) * w->td->natts);
	w->nulls = palloc(sizeof(bool) * w->td->natts);
	/*
	 * One change-log entry (a one-row statement: the common case) is written
	 * with heap_insert and index_insert: opening the executor's result
	 * relation, its index information and slots for it cost about a µs.
	 * The access log's entries come from SQL arguments and are checked
	 * against the table's constraints by the executor (LogWriterAppend).
	 */
	w->direct = log == LEDGER_CHANGE_LOG && nentries == 1 && LogSetupIndexes(ls, w->rel);
	if (w->direct)
	{
		w->nindexes = ls->nindexes;
		w->indexinfo = ls->indexinfo;
		w->irels = palloc(sizeof(Relation) * Max(w->nindexes, 1));
		for (int i = 0; i < w->nindexes; i++)
			w->irels[i] = index_open(ls->indexoids[i], RowExclusiveLock);
		w->estate = NULL;
		w->rri = NULL;
		w->batch_size = 1;
		w->slots = NULL;
		w->bistate = NULL;
		w->batch_cxt = DirectEntryContext();
		MemoryContextReset(w->batch_cxt);
		return;
	}
	w->estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = w->rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	IpsExecInitRangeTable(w->estate, list_make1(rte));
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
	w->estate->es_output_cid = w->cid;
	ExecOpenIndices(w->rri, false);
	w->batch_size = (int) Max(Min(nentries, LOG_BATCH), 1);
	w->slots = palloc0(sizeof(TupleTableSlot *) * w->batch_size);
	w->bistate = nentries > LOG_BATCH ? GetBulkInsertState() : NULL;
	w->batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "ips ledger batch",
										 ALLOCSET_DEFAULT_SIZES);
}

/* Clears the entry being made (every field NULL). */
static void
LogWriterClear(LogWriter *w)
{
	for (int f = 0; f < LEDGER_MAX_FIELDS; f++)
	{
		w->fvalues[f] = (Datum) 0;
		w->fnulls[f] = true;
		w->json_text[f] = NULL;
	}
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
			(void) IpsExecInsertIndexTuples(w->rri, w->slots[i], w->estate);
		ExecClearTuple(w->slots[i]);
	}
	w->nslots = 0;
	ResetPerTupleExprContext(w->estate);
	MemoryContextReset(w->batch_cxt);
}

/*
 * Gives the entry in w->fvalues (made in w->batch_cxt, the current memory
 * context) its seq, xid and hash, and queues it; the batch is written when
 * full.
 */
static void
LogWriterAppend(LogWriter *w)
{
	const LedgerLogDef *def = &ledger_logs[w->log];
	uint8		hash[LEDGER_HASH_LEN];
	int64		seq = nextval_internal(w->seqid, false);

	w->fvalues[LF_SEQ] = Int64GetDatum(seq);
	w->fnulls[LF_SEQ] = false;
	w->fvalues[LF_XID] = FullTransactionIdGetDatum(w->fxid);
	w->fnulls[LF_XID] = false;
	MarkPending(w->log, w->fxid, seq);
	LedgerEntryHash(w->hasher, w->log, w->fvalues, w->fnulls, w->json_text, hash);

	for (int k = 0; k < w->td->natts; k++)
	{
		w->values[k] = (Datum) 0;
		w->nulls[k] = true;
	}
	for (int f = 0; f < def->nfields; f++)
	{
		w->values[w->cols.field[f]] = w->fvalues[f];
		w->nulls[w->cols.field[f]] = w->fnulls[f];
	}
	w->values[w->cols.hash] = LedgerHashDatum(hash);
	w->nulls[w->cols.hash] = false;
	if (w->direct)
	{
		HeapTuple	tup = heap_form_tuple(w->td, w->values, w->nulls);

		heap_insert(w->rel, tup, w->cid, 0, NULL);
		for (int i = 0; i < w->nindexes; i++)
		{
			IndexInfo  *ii = w->indexinfo[i];
			Datum		ivalues[INDEX_MAX_KEYS];
			bool		inulls[INDEX_MAX_KEYS];

			/* plain columns only (LogSetupIndexes) */
			for (int k = 0; k < ii->ii_NumIndexAttrs; k++)
				ivalues[k] = heap_getattr(tup, ii->ii_IndexAttrNumbers[k], w->td, &inulls[k]);
			index_insert(w->irels[i], ivalues, inulls, &tup->t_self, w->rel,
						 w->irels[i]->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
						 false, ii);
		}
		w->last_seq = seq;
		return;
	}
	if (w->slots[w->nslots] == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(w->estate->es_query_cxt);

		w->slots[w->nslots] = ExecInitExtraTupleSlot(w->estate, w->td, &TTSOpsHeapTuple);
		MemoryContextSwitchTo(oldcxt);
	}
	ExecStoreHeapTuple(heap_form_tuple(w->td, w->values, w->nulls), w->slots[w->nslots], true);
	/*
	 * The access log's entries come from SQL arguments: the table's own
	 * constraints (and any a DBA added) are checked.  The change log's hold
	 * by construction, and checking them per statement would cost every
	 * logged write.
	 */
	if (w->log == LEDGER_ACCESS_LOG && w->td->constr)
		ExecConstraints(w->rri, w->slots[w->nslots], w->estate);
	w->nslots++;
	w->last_seq = seq;
	if (w->nslots == w->batch_size)
		LogWriterFlush(w);
}

/* Writes the rest and closes. */
static void
LogWriterEnd(LogWriter *w)
{
	if (w->direct)
	{
		for (int i = 0; i < w->nindexes; i++)
			index_close(w->irels[i], NoLock);
		pfree(w->irels);
		MemoryContextReset(w->batch_cxt);
	}
	else
	{
		LogWriterFlush(w);
		if (w->bistate)
		{
			FreeBulkInsertState(w->bistate);
			table_finish_bulk_insert(w->rel, 0);
		}
		ExecCloseIndices(w->rri);
		ExecResetTupleTable(w->estate->es_tupleTable, false);
		FreeExecutorState(w->estate);
		MemoryContextDelete(w->batch_cxt);
	}
	pfree(w->values);
	pfree(w->nulls);
	WriterHasherTrim(w->hasher);
	table_close(w->rel, NoLock);
}

/* Does the log table have the 1.2 layout (an xid column)? */
static bool
LogIsCurrent(LedgerLogId log)
{
	return GetLogSetup(log)->current;
}

/* ---------- the change log ---------- */

/* Change-log fields (positions in ledger_logs[LEDGER_CHANGE_LOG].fields). */
enum
{
	CF_SEQ, CF_XID, CF_LOGGED_AT, CF_DB_ROLE, CF_TABLE_NAME, CF_OPERATION, CF_CLIENT_ID,
	CF_ROW_KEY, CF_OLD_ROW, CF_NEW_ROW
};

/* The 1.0/1.1 way: one SQL INSERT, chained by the log's own trigger (ledger_legacy.c). */
static IpsPlan legacy_change_plan = {NULL,
	"INSERT INTO ips.change_log"
	" (logged_at, db_role, table_name, operation, client_id, row_key, old_row, new_row)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	8, {TIMESTAMPTZOID, NAMEOID, TEXTOID, TEXTOID, INT8OID, JSONBOID, JSONBOID, JSONBOID}};

/* Appends one entry the 1.0/1.1 way, as the extension owner (fields in w-style order). */
static void
LegacyChangeAppend(Oid owner, const Datum *fvalues, const bool *fnulls)
{
	Datum		args[8];
	char		nulls[8];
	Oid			save_userid;
	int			save_sec_context;
	volatile int rc = 0;

	for (int i = 0; i < 8; i++)
	{
		args[i] = fvalues[CF_LOGGED_AT + i];
		nulls[i] = fnulls[CF_LOGGED_AT + i] ? 'n' : ' ';
	}
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute_plan(IpsPreparePlan(&legacy_change_plan), args, nulls, false, 0);
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "appending to ips.change_log failed: %s", SPI_result_code_string(rc));
}

/*
 * The names every entry carries, kept for the backend: the role's (by role
 * id; dropped when pg_authid changes, ALTER ROLE ... RENAME) and the logged
 * tables' qualified names (by relation id; dropped when the table's relcache
 * entry is invalidated, ALTER TABLE ... RENAME, or any schema changes).
 */
typedef struct TableName
{
	Oid			relid;			/* InvalidOid: free */
	char		name[NAMEDATALEN * 2 + 8];
} TableName;

#define TABLE_NAMES 16
static TableName table_names[TABLE_NAMES];
static int	table_name_next = 0;
static Oid	role_name_id = InvalidOid;
static NameData role_name;
static bool names_callbacks = false;

/* Relcache callback: forget a table's name (all: InvalidOid). */
static void
NamesRelInval(Datum arg, Oid relid)
{
	for (int i = 0; i < TABLE_NAMES; i++)
		if (relid == InvalidOid || table_names[i].relid == relid)
			table_names[i].relid = InvalidOid;
}

/* Syscache callback (schemas, roles): forget every name. */
static void
NamesSysInval(Datum arg, int cacheid, uint32 hashvalue)
{
	NamesRelInval(arg, InvalidOid);
	role_name_id = InvalidOid;
}

/* Registers the callbacks of the kept names, once. */
static void
NamesCallbacks(void)
{
	if (names_callbacks)
		return;
	IpsRegisterRelcacheCallback(NamesRelInval);
	CacheRegisterSyscacheCallback(NAMESPACEOID, NamesSysInval, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, NamesSysInval, (Datum) 0);
	names_callbacks = true;
}

/* The name of the role on whose behalf the change runs (ips.caller()), as a name datum. */
static Datum
CallerRoleName(void)
{
	Oid			roleid = GetOuterUserId();

	NamesCallbacks();
	if (roleid != role_name_id)
	{
		role_name_id = InvalidOid;
		namestrcpy(&role_name, GetUserNameFromId(roleid, false));
		role_name_id = roleid;
	}
	return NameGetDatum(&role_name);
}

/* The schema-qualified, quoted name of a logged table, as a text datum. */
static Datum
QualifiedTableName(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	char	   *name;
	TableName  *t;

	NamesCallbacks();
	for (int i = 0; i < TABLE_NAMES; i++)
		if (table_names[i].relid == relid)
			return CStringGetTextDatum(table_names[i].name);
	name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
	if (strlen(name) < sizeof(t->name))
	{
		t = &table_names[table_name_next];
		table_name_next = (table_name_next + 1) % TABLE_NAMES;
		strcpy(t->name, name);
		t->relid = relid;
	}
	return CStringGetTextDatum(name);
}

/* What every entry of one trigger call shares: who, when, which table, which operation. */
static void
ChangeCommonFields(Datum *fvalues, bool *fnulls, Relation rel, const char *operation)
{
	fvalues[CF_LOGGED_AT] = TimestampTzGetDatum(GetCurrentTimestamp());
	/* a copy: the entry outlives the kept name if a callback fires meanwhile */
	fvalues[CF_DB_ROLE] = datumCopy(CallerRoleName(), false, NAMEDATALEN);
	fvalues[CF_TABLE_NAME] = QualifiedTableName(rel);
	fvalues[CF_OPERATION] = CStringGetTextDatum(operation);
	fnulls[CF_LOGGED_AT] = fnulls[CF_DB_ROLE] = fnulls[CF_TABLE_NAME] = fnulls[CF_OPERATION] = false;
}

/* The client_id column (1-based) of a logged table, or 0. */
static int
ClientColumn(TupleDesc td)
{
	int			client_col = SPI_fnumber(td, "client_id");

	if (client_col > 0 && SPI_gettypeid(td, client_col) != INT8OID)
		client_col = 0;
	return client_col;
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
	TupleDesc	rtd = RelationGetDescr(rel);
	Datum		common[LEDGER_MAX_FIELDS];
	bool		common_nulls[LEDGER_MAX_FIELDS];
	int			client_col;
	bool		current;
	LogWriter	w;
	TupleTableSlot *oldslot = NULL;
	TupleTableSlot *newslot = NULL;
	RowConverter *conv;
	RowConverter *keyconv;
	int			oldptr = 0;
	int			newptr = 0;
	StringInfoData keytext;
	StringInfoData oldtext;
	StringInfoData newtext;
	Oid			owner = InvalidOid;

	if ((event != TRIGGER_EVENT_DELETE && newrows == NULL) ||
		(event != TRIGGER_EVENT_INSERT && oldrows == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on %s has no transition table",
						trigger->tgname, RelationGetRelationName(rel)),
				 errhint("Run SELECT ips.apply_security(); it creates the change-log triggers with REFERENCING OLD TABLE AS ips_old NEW TABLE AS ips_new.")));
	if (tuplestore_tuple_count(newrows ? newrows : oldrows) == 0)
		return;					/* e.g. ON CONFLICT DO NOTHING that inserted nothing */

	current = LogIsCurrent(LEDGER_CHANGE_LOG);
	if (!current)
		owner = LedgerFunctionOwner(fcinfo);
	for (int f = 0; f < LEDGER_MAX_FIELDS; f++)
	{
		common[f] = (Datum) 0;
		common_nulls[f] = true;
	}
	ChangeCommonFields(common, common_nulls, rel,
					   event == TRIGGER_EVENT_INSERT ? "INSERT" :
					   event == TRIGGER_EVENT_UPDATE ? "UPDATE" : "DELETE");
	client_col = ClientColumn(rtd);
	ConverterCacheSweep();
	conv = GetRowConverter(rel, NULL);
	keyconv = GetRowConverter(rel, trigger);

	if (current)
		LogWriterBegin(&w, LEDGER_CHANGE_LOG, tuplestore_tuple_count(newrows ? newrows : oldrows));
	else
	{
		memset(&w, 0, sizeof(w));
		w.batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "ips legacy change log",
											ALLOCSET_DEFAULT_SIZES);
	}
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
		LogWriterClear(&w);
		memcpy(w.fvalues, common, sizeof(common));
		memcpy(w.fnulls, common_nulls, sizeof(common_nulls));
		if (client_col > 0)
		{
			w.fvalues[CF_CLIENT_ID] = keyslot->tts_values[client_col - 1];
			w.fnulls[CF_CLIENT_ID] = keyslot->tts_isnull[client_col - 1];
		}
		resetStringInfo(&keytext);
		w.fvalues[CF_ROW_KEY] = ConvertValues(keyconv, keyslot->tts_values, keyslot->tts_isnull, &keytext);
		w.fnulls[CF_ROW_KEY] = false;
		w.json_text[CF_ROW_KEY] = keytext.data;
		if (oldrows)
		{
			resetStringInfo(&oldtext);
			w.fvalues[CF_OLD_ROW] = ConvertValues(conv, oldslot->tts_values, oldslot->tts_isnull, &oldtext);
			w.fnulls[CF_OLD_ROW] = false;
			w.json_text[CF_OLD_ROW] = oldtext.data;
		}
		if (newrows)
		{
			resetStringInfo(&newtext);
			w.fvalues[CF_NEW_ROW] = ConvertValues(conv, newslot->tts_values, newslot->tts_isnull, &newtext);
			w.fnulls[CF_NEW_ROW] = false;
			w.json_text[CF_NEW_ROW] = newtext.data;
		}
		if (current)
			LogWriterAppend(&w);
		else
		{
			LegacyChangeAppend(owner, w.fvalues, w.fnulls);
			MemoryContextReset(w.batch_cxt);
		}
		MemoryContextSwitchTo(oldcxt);
	}
	if (current)
		LogWriterEnd(&w);
	else
		MemoryContextDelete(w.batch_cxt);
	if (oldslot)
		ExecDropSingleTupleTableSlot(oldslot);
	if (newslot)
		ExecDropSingleTupleTableSlot(newslot);
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
	Datum		fvalues[LEDGER_MAX_FIELDS];
	bool		fnulls[LEDGER_MAX_FIELDS];
	const char *operation;

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
	for (int f = 0; f < LEDGER_MAX_FIELDS; f++)
	{
		fvalues[f] = (Datum) 0;
		fnulls[f] = true;
	}
	if (TRIGGER_FIRED_BY_TRUNCATE(ev))
		operation = "TRUNCATE";
	else
	{
		HeapTuple	keytup;
		int			client_col;
		RowConverter conv;
		RowConverter keyconv;

		if (!TRIGGER_FIRED_FOR_ROW(ev))
			elog(ERROR, "ips_change_log_row must be a STATEMENT or ROW trigger for INSERT, UPDATE, DELETE");
		if (TRIGGER_FIRED_BY_INSERT(ev))
		{
			operation = "INSERT";
			newtup = trigdata->tg_trigtuple;
		}
		else if (TRIGGER_FIRED_BY_UPDATE(ev))
		{
			operation = "UPDATE";
			oldtup = trigdata->tg_trigtuple;
			newtup = trigdata->tg_newtuple;
		}
		else
		{
			operation = "DELETE";
			oldtup = trigdata->tg_trigtuple;
		}
		keytup = newtup ? newtup : oldtup;
		client_col = ClientColumn(td);
		if (client_col > 0)
			fvalues[CF_CLIENT_ID] = SPI_getbinval(keytup, td, client_col, &fnulls[CF_CLIENT_ID]);
		RowConverterInit(&conv, td, NULL, 0);
		RowConverterInit(&keyconv, td, KeyColumns(td, trigdata->tg_trigger), trigdata->tg_trigger->tgnargs);
		fvalues[CF_ROW_KEY] = ConvertTuple(&keyconv, keytup);
		fnulls[CF_ROW_KEY] = false;
		if (oldtup)
		{
			fvalues[CF_OLD_ROW] = ConvertTuple(&conv, oldtup);
			fnulls[CF_OLD_ROW] = false;
		}
		if (newtup)
		{
			fvalues[CF_NEW_ROW] = ConvertTuple(&conv, newtup);
			fnulls[CF_NEW_ROW] = false;
		}
	}
	ChangeCommonFields(fvalues, fnulls, rel, operation);

	if (LogIsCurrent(LEDGER_CHANGE_LOG))
	{
		LogWriter	w;

		LogWriterBegin(&w, LEDGER_CHANGE_LOG, 1);
		LogWriterClear(&w);
		memcpy(w.fvalues, fvalues, sizeof(fvalues));
		memcpy(w.fnulls, fnulls, sizeof(fnulls));
		LogWriterAppend(&w);
		LogWriterEnd(&w);
	}
	else
		LegacyChangeAppend(LedgerFunctionOwner(fcinfo), fvalues, fnulls);
	return PointerGetDatum(NULL);
}

/* ---------- the access log ---------- */

/* Access-log fields (positions in ledger_logs[LEDGER_ACCESS_LOG].fields). */
enum
{
	AF_SEQ, AF_XID, AF_ACCESSED_AT, AF_DB_ROLE, AF_STAFF_ID, AF_CLIENT_ID, AF_PURPOSE, AF_SHOWN
};

PG_FUNCTION_INFO_V1(ips_access_log_append);
/*
 * ips.access_log_append(accessed_at, db_role, staff_id, client_id, purpose,
 * shown) -> seq: one access-log entry, in the calling transaction.
 */
Datum
ips_access_log_append(PG_FUNCTION_ARGS)
{
	LogWriter	w;
	int64		seq;

	for (int i = 0; i < 6; i++)
		if (PG_ARGISNULL(i) && i != 2)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d of ips.access_log_append() is null", i + 1),
					 errhint("Give the time, the role, the client, the purpose and what was shown; only staff_id may be null.")));
	if (!LogIsCurrent(LEDGER_ACCESS_LOG))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ips.access_log has the layout of 1.0/1.1"),
				 errhint("Run ALTER EXTENSION ips UPDATE.")));
	LogWriterBegin(&w, LEDGER_ACCESS_LOG, 1);
	LogWriterClear(&w);
	w.fvalues[AF_ACCESSED_AT] = PG_GETARG_DATUM(0);
	w.fvalues[AF_DB_ROLE] = PG_GETARG_DATUM(1);
	w.fvalues[AF_STAFF_ID] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	w.fvalues[AF_CLIENT_ID] = PG_GETARG_DATUM(3);
	w.fvalues[AF_PURPOSE] = PG_GETARG_DATUM(4);
	w.fvalues[AF_SHOWN] = PG_GETARG_DATUM(5);
	for (int f = AF_ACCESSED_AT; f <= AF_SHOWN; f++)
		w.fnulls[f] = (f == AF_STAFF_ID && PG_ARGISNULL(2));
	LogWriterAppend(&w);
	seq = w.last_seq;
	LogWriterEnd(&w);
	PG_RETURN_INT64(seq);
}

/* ---------- the guard ---------- */

PG_FUNCTION_INFO_V1(ips_ledger_guard);
/* BEFORE trigger on the ledger's tables: no INSERT, UPDATE, DELETE or TRUNCATE by hand. */
Datum
ips_ledger_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent ev;
	Relation	rel;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		elog(ERROR, "ips_ledger_guard must be a BEFORE trigger");
	ev = trigdata->tg_event;
	rel = trigdata->tg_relation;
	/* the sealer and the archiver */
	if (ledger_internal_write)
		return PointerGetDatum(TRIGGER_FIRED_FOR_ROW(ev) ?
							   (TRIGGER_FIRED_BY_UPDATE(ev) ? trigdata->tg_newtuple : trigdata->tg_trigtuple) : NULL);
	/* pg_restore (ips.restoring): dumped entries and blocks keep their content */
	if (ips_restoring && TRIGGER_FIRED_BY_INSERT(ev))
		return PointerGetDatum(trigdata->tg_trigtuple);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("ips.%s is written only by the ledger", RelationGetRelationName(rel)),
			 errdetail("%s on ips.%s is refused to every role, its owner and superusers included.",
					   TRIGGER_FIRED_BY_INSERT(ev) ? "INSERT" :
					   TRIGGER_FIRED_BY_UPDATE(ev) ? "UPDATE" :
					   TRIGGER_FIRED_BY_DELETE(ev) ? "DELETE" : "TRUNCATE",
					   RelationGetRelationName(rel)),
			 errhint("Entries are appended by the change-log triggers and ips.log_access(), sealed by ips.seal(), archived by ips.archive_blocks(). "
					 "To restore a dump, run pg_restore with PGOPTIONS='-c ips.restoring=on'.")));
	return PointerGetDatum(NULL);	/* not reached */
}
