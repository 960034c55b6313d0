/*
 * bounds.c
 *		ips_bounds_guard: the BEFORE INSERT OR UPDATE trigger that keeps what is
 *		stored in ips bounded, whoever writes it (an API function, a direct
 *		INSERT, UPDATE or COPY by any role).  The limits that do not change
 *		with time are also CHECK constraints where they are dates (finite);
 *		this trigger gives every bad value a specific SQLSTATE and a hint, and
 *		holds the limits that move: "not after today" in the region's time
 *		zone and "not before the earliest day" (setting earliest_fact_date).
 *
 *		Trigger arguments, one per column (see docs/input-limits.md):
 *		  "col"          a dated fact (date or timestamptz): finite, its local day
 *		                 on or after earliest_fact_date and not after today
 *		  "col:plan"     a planned day (date): finite, on or after
 *		                 earliest_fact_date, at most 10 years after today
 *		  "col:N"        text of at most N characters (22001)
 *		  "col:LO:HI"    an integer from LO to HI (22003); HI "year" is the
 *		                 current year in the region's time zone
 *		  "col:required" a value is needed (22004, naming the column: an API
 *		                 function's argument of the same name)
 *		NULL values pass the other checks (NOT NULL constraints decide).
 *
 *		No SPI per row: the earliest day is read once per snapshot, today
 *		once per transaction, the parsed arguments once per trigger.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "ips.h"

/* The default of setting earliest_fact_date. */
#define IPS_EARLIEST_DEFAULT "1900-01-01"

typedef enum BoundKind
{
	BOUND_FACT,					/* a dated fact: earliest .. today */
	BOUND_PLAN,					/* a planned day: earliest .. today + 10 years */
	BOUND_TEXT,					/* text of at most maxlen characters */
	BOUND_RANGE,				/* an integer lo .. hi */
	BOUND_REQUIRED				/* not NULL (22004 before row-level security's 42501) */
} BoundKind;

typedef struct BoundColumn
{
	int			attnum;
	Oid			type;
	BoundKind	kind;
	int			maxlen;
	int64		lo;
	int64		hi;
	bool		hi_is_year;
	char		name[NAMEDATALEN];
} BoundColumn;

/* The parsed arguments of one trigger, kept in fn_extra. */
typedef struct BoundSpec
{
	Oid			tgoid;
	Oid			relid;
	int			ncols;
	BoundColumn cols[FLEXIBLE_ARRAY_MEMBER];
} BoundSpec;

/* Text of a date, for messages. */
static char *
BoundDateText(DateADT d)
{
	return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
}

/*
 * The earliest day a fact may be dated: setting earliest_fact_date (default
 * 1900-01-01), read once per snapshot.
 */
static DateADT
IpsEarliestDay(void)
{
	static IpsSnapshotKey key;
	static DateADT cached;
	char	   *v;
	DateADT		d;

	if (IpsDirectRead("setting"))
	{
		static char kept_text[64];
		static int	kept_order = -1;
		static DateADT kept_day;
		const char *kept;

		/* kept across transactions (lookup.c); parsed again when it or DateOrder changed */
		if (IpsSettingKept("earliest_fact_date", &kept))
		{
			if (kept == NULL)
				kept = IPS_EARLIEST_DEFAULT;
			if (strcmp(kept, kept_text) != 0 || kept_order != DateOrder)
			{
				d = DatumGetDateADT(DirectFunctionCall1(date_in, CStringGetDatum(kept)));
				kept_order = -1;
				if (strlen(kept) >= sizeof(kept_text))
					return d;
				kept_day = d;
				strcpy(kept_text, kept);
				kept_order = DateOrder;
			}
			return kept_day;
		}
		if (IpsSameSnapshot(&key))
			return cached;
		{
			bool		keep = key.valid;
			ScanKeyData skey;
			HeapTuple	tup;
			TupleDesc	td;
			bool		isnull;

			key.valid = false;
			ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_TEXTEQ,
						CStringGetTextDatum("earliest_fact_date"));
			tup = IpsFetchByIndex("setting", "setting_pkey", 1, &skey, &td);
			v = NULL;
			if (tup != NULL)
			{
				Datum		val = IpsGetColumn(tup, td, "value", &isnull);

				if (!isnull)
					v = TextDatumGetCString(val);
			}
			d = DatumGetDateADT(DirectFunctionCall1(date_in,
													CStringGetDatum(v ? v : IPS_EARLIEST_DEFAULT)));
			cached = d;
			key.valid = keep;
			return d;
		}
	}
	else
	{
		MemoryContext cxt = CurrentMemoryContext;
		char	   *s;

		SPI_connect();
		s = IpsSettingText("earliest_fact_date");
		v = s ? MemoryContextStrdup(cxt, s) : NULL;
		SPI_finish();
		return DatumGetDateADT(DirectFunctionCall1(date_in,
												   CStringGetDatum(v ? v : IPS_EARLIEST_DEFAULT)));
	}
}

/* Today in time zone tz (the region's): the local day of now() (the transaction's start). */
static DateADT
IpsTodayIn(const char *tz)
{
	static LocalTransactionId lxid = InvalidLocalTransactionId;
	static char zone[NAMEDATALEN * 4];
	static DateADT today;

	if (lxid == IpsMyLocalTransactionId() && lxid != InvalidLocalTransactionId && strcmp(zone, tz) == 0)
		return today;
	today = IpsLocalDate(GetCurrentTransactionStartTimestamp(), tz);
	if (strlen(tz) < sizeof(zone))
	{
		strcpy(zone, tz);
		lxid = IpsMyLocalTransactionId();
	}
	else
		lxid = InvalidLocalTransactionId;
	return today;
}

/* Parse the trigger's arguments against the table's columns. */
static BoundSpec *
ParseBounds(Trigger *trigger, Relation rel, MemoryContext cxt)
{
	TupleDesc	td = RelationGetDescr(rel);
	BoundSpec  *spec;

	spec = MemoryContextAllocZero(cxt, offsetof(BoundSpec, cols) +
								  sizeof(BoundColumn) * trigger->tgnargs);
	spec->tgoid = trigger->tgoid;
	spec->relid = RelationGetRelid(rel);
	spec->ncols = trigger->tgnargs;
	for (int i = 0; i < trigger->tgnargs; i++)
	{
		BoundColumn *c = &spec->cols[i];
		char	   *arg = pstrdup(trigger->tgargs[i]);
		char	   *p1 = strchr(arg, ':');
		char	   *p2 = p1 ? strchr(p1 + 1, ':') : NULL;

		if (p1)
			*p1++ = '\0';
		if (p2)
			*p2++ = '\0';
		if (strlen(arg) >= NAMEDATALEN)
			elog(ERROR, "ips_bounds_guard: column name \"%s\" is too long", arg);
		strcpy(c->name, arg);
		c->attnum = SPI_fnumber(td, arg);
		if (c->attnum <= 0)
			elog(ERROR, "ips_bounds_guard: table %s has no column %s", RelationGetRelationName(rel), arg);
		c->type = TupleDescAttr(td, c->attnum - 1)->atttypid;
		if (p1 == NULL)
			c->kind = BOUND_FACT;
		else if (strcmp(p1, "plan") == 0)
			c->kind = BOUND_PLAN;
		else if (strcmp(p1, "required") == 0)
			c->kind = BOUND_REQUIRED;
		else if (p2 == NULL)
		{
			c->kind = BOUND_TEXT;
			c->maxlen = pg_strtoint32(p1);
		}
		else
		{
			c->kind = BOUND_RANGE;
			c->lo = pg_strtoint64(p1);
			c->hi_is_year = strcmp(p2, "year") == 0;
			c->hi = c->hi_is_year ? 0 : pg_strtoint64(p2);
		}
		if (((c->kind == BOUND_FACT || c->kind == BOUND_PLAN) &&
			 c->type != DATEOID && c->type != TIMESTAMPTZOID) ||
			(c->kind == BOUND_PLAN && c->type != DATEOID) ||
			(c->kind == BOUND_TEXT && c->type != TEXTOID && c->type != VARCHAROID) ||
			(c->kind == BOUND_RANGE && c->type != INT2OID && c->type != INT4OID && c->type != INT8OID))
			elog(ERROR, "ips_bounds_guard: argument \"%s\" does not fit the type of column %s",
				 trigger->tgargs[i], c->name);
	}
	return spec;
}

/*
 * Parsed arguments kept for the backend, by trigger (fn_extra lasts one
 * statement: a one-row statement parsed them every time); each statement
 * gets a copy in its fn_extra.  Dropped when the table's relcache entry is
 * invalidated, which CREATE/DROP/ALTER TRIGGER and ALTER TABLE do.
 */
#define KEPT_BOUNDS 32
static BoundSpec *kept_bounds[KEPT_BOUNDS];
static int	kept_bounds_next = 0;
static bool kept_bounds_callback = false;

/* Size of a spec of ncols columns. */
#define BoundSpecSize(ncols) (offsetof(BoundSpec, cols) + sizeof(BoundColumn) * (ncols))

/* Relcache callback: forget the specs of a table (all: InvalidOid). */
static void
KeptBoundsInval(Datum arg, Oid relid)
{
	for (int i = 0; i < KEPT_BOUNDS; i++)
		if (kept_bounds[i] != NULL && (relid == InvalidOid || kept_bounds[i]->relid == relid))
		{
			pfree(kept_bounds[i]);
			kept_bounds[i] = NULL;
		}
}

/* The parsed arguments of a trigger, kept or parsed now; a copy in cxt. */
static BoundSpec *
KeptBounds(Trigger *trigger, Relation rel, MemoryContext cxt)
{
	BoundSpec  *spec = NULL;
	BoundSpec  *copy;

	for (int i = 0; i < KEPT_BOUNDS && spec == NULL; i++)
		if (kept_bounds[i] != NULL && kept_bounds[i]->tgoid == trigger->tgoid &&
			kept_bounds[i]->relid == RelationGetRelid(rel))
			spec = kept_bounds[i];
	if (spec == NULL)
	{
		if (!kept_bounds_callback)
		{
			IpsRegisterRelcacheCallback(KeptBoundsInval);
			kept_bounds_callback = true;
		}
		spec = ParseBounds(trigger, rel, TopMemoryContext);
		if (kept_bounds[kept_bounds_next] != NULL)
			pfree(kept_bounds[kept_bounds_next]);
		kept_bounds[kept_bounds_next] = spec;
		kept_bounds_next = (kept_bounds_next + 1) % KEPT_BOUNDS;
	}
	copy = MemoryContextAlloc(cxt, BoundSpecSize(spec->ncols));
	memcpy(copy, spec, BoundSpecSize(spec->ncols));
	return copy;
}

/*
 * What one call of the guard needs to know about days, looked up at most
 * once per call (a row has several dated columns): the region's time zone,
 * today there, and the earliest day a fact may be dated.
 */
typedef struct BoundDays
{
	const char *tz;				/* NULL until needed */
	bool		have_today;
	DateADT		today;
	bool		have_earliest;
	DateADT		earliest;
} BoundDays;

static const char *
DaysZone(BoundDays *bd)
{
	if (bd->tz == NULL)
		bd->tz = IpsTimeZone();
	return bd->tz;
}

static DateADT
DaysToday(BoundDays *bd)
{
	if (!bd->have_today)
	{
		bd->today = IpsTodayIn(DaysZone(bd));
		bd->have_today = true;
	}
	return bd->today;
}

static DateADT
DaysEarliest(BoundDays *bd)
{
	if (!bd->have_earliest)
	{
		bd->earliest = IpsEarliestDay();
		bd->have_earliest = true;
	}
	return bd->earliest;
}

/* Raise unless a dated value lies within its bounds. */
static void
CheckDate(BoundColumn *c, Datum value, const char *table, BoundDays *bd)
{
	DateADT		day;
	DateADT		earliest;
	DateADT		latest;
	bool		finite;

	if (c->type == DATEOID)
	{
		day = DatumGetDateADT(value);
		finite = !DATE_NOT_FINITE(day);
	}
	else
	{
		TimestampTz ts = DatumGetTimestampTz(value);

		finite = !TIMESTAMP_NOT_FINITE(ts);
		day = finite ? IpsLocalDate(ts, DaysZone(bd)) : 0;
	}
	if (!finite)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s of ips.%s must be a real day, not infinity", c->name, table),
				 errhint("Give the day the fact happened; infinite dates are not stored.")));
	earliest = DaysEarliest(bd);
	if (day < earliest)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s %s of ips.%s is before %s", c->name, BoundDateText(day), table,
						BoundDateText(earliest)),
				 errhint("Check the year; facts dated before %s are not stored (setting earliest_fact_date).",
						 BoundDateText(earliest))));
	if (c->kind == BOUND_FACT)
	{
		latest = DaysToday(bd);
		if (day > latest)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s %s of ips.%s is in the future (today is %s in the region's time zone)",
							c->name, BoundDateText(day), table, BoundDateText(latest)),
					 errhint("Record a fact on or after the day it happens.")));
	}
	else
	{
		latest = DaysToday(bd) + 3653;
		if (day > latest)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("%s %s of ips.%s is more than 10 years ahead", c->name, BoundDateText(day), table),
					 errhint("Give a day within the next 10 years.")));
	}
}

/* Raise unless a text value has at most maxlen characters. */
static void
CheckText(BoundColumn *c, Datum value, const char *table)
{
	struct varlena *t = (struct varlena *) DatumGetPointer(value);
	Size		bytes = toast_raw_datum_size(value) - VARHDRSZ;
	int			chars;

	/* a character is at least one byte: short texts need no count */
	if (bytes <= (Size) c->maxlen)
		return;
	t = PG_DETOAST_DATUM_PACKED(value);
	chars = pg_mbstrlen_with_len(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	if (chars > c->maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s of ips.%s is %d characters long, more than %d", c->name, table, chars, c->maxlen),
				 errhint("Shorten it to at most %d characters (docs/input-limits.md).", c->maxlen)));
}

/* Raise unless an integer lies in lo .. hi. */
static void
CheckRange(BoundColumn *c, Datum value, const char *table, BoundDays *bd)
{
	int64		v = c->type == INT2OID ? DatumGetInt16(value) :
		c->type == INT4OID ? DatumGetInt32(value) : DatumGetInt64(value);
	int64		hi = c->hi;

	if (c->hi_is_year)
	{
		int			year,
					month,
					mday;

		j2date(DaysToday(bd) + POSTGRES_EPOCH_JDATE, &year, &month, &mday);
		hi = year;
	}
	if (v < c->lo || v > hi)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s %lld of ips.%s is out of range", c->name, (long long) v, table),
				 errhint("Give a value from %lld to %lld.", (long long) c->lo, (long long) hi)));
}

PG_FUNCTION_INFO_V1(ips_bounds_guard);
/* BEFORE INSERT OR UPDATE row trigger: refuse values outside the bounds of their column. */
Datum
ips_bounds_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	HeapTuple	tup;
	HeapTuple	old = NULL;
	TupleDesc	td;
	BoundSpec  *spec;
	const char *table;
	BoundDays	days = {NULL, false, 0, false, 0};

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		elog(ERROR, "ips_bounds_guard must be a BEFORE INSERT OR UPDATE row trigger");
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		tup = trigdata->tg_newtuple;
		old = trigdata->tg_trigtuple;
	}
	else
		tup = trigdata->tg_trigtuple;
	if (ips_restoring)
		return PointerGetDatum(tup);

	rel = trigdata->tg_relation;
	td = RelationGetDescr(rel);
	table = RelationGetRelationName(rel);
	spec = (BoundSpec *) fcinfo->flinfo->fn_extra;
	if (spec == NULL || spec->tgoid != trigdata->tg_trigger->tgoid || spec->relid != RelationGetRelid(rel))
	{
		spec = KeptBounds(trigdata->tg_trigger, rel, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = spec;
	}

	for (int i = 0; i < spec->ncols; i++)
	{
		BoundColumn *c = &spec->cols[i];
		bool		isnull;
		Datum		value = heap_getattr(tup, c->attnum, td, &isnull);

		if (isnull)
		{
			if (c->kind == BOUND_REQUIRED)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s must not be NULL", c->name),
						 errhint("Give %s: a row of ips.%s needs it.", c->name, table)));
			continue;
		}
		/*
		 * An UPDATE that leaves a value as it was does not check it again:
		 * time moves on ("today"), and a row stored before these bounds
		 * (a 1.1 database updated) stays writable in its other columns.
		 */
		if (old != NULL)
		{
			Form_pg_attribute attr = TupleDescAttr(td, c->attnum - 1);
			bool		oldnull;
			Datum		oldvalue = heap_getattr(old, c->attnum, td, &oldnull);

			if (!oldnull && datumIsEqual(value, oldvalue, attr->attbyval, attr->attlen))
				continue;
		}
		switch (c->kind)
		{
			case BOUND_FACT:
			case BOUND_PLAN:
				CheckDate(c, value, table, &days);
				break;
			case BOUND_TEXT:
				CheckText(c, value, table);
				break;
			case BOUND_RANGE:
				CheckRange(c, value, table, &days);
				break;
			case BOUND_REQUIRED:
				break;
		}
	}
	return PointerGetDatum(tup);
}
