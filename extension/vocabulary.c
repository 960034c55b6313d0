/*
 * vocabulary.c
 *		The vocabulary (ips.vocabulary) and the allowed moves of the episode
 *		state machine (ips.state_transition) as the C code reads them.
 *
 * The tables are the one source: the codes a function accepts, the hints
 * listing the valid codes and the transition table of episode_state.c are
 * read from them.  They are loaded once per session and kept until one of
 * them changes: a change of their rows fires ips.vocabulary_changed(), which
 * sends a relcache invalidation for the table (and DDL on them sends one
 * anyway); every session drops its copy when the invalidation reaches it (its
 * own change at the next command, another session's at its commit), and a
 * rolled-back change is undone the same way.  The rows are read with the
 * latest snapshot, as catalog caches read the catalogs, so a copy never stays
 * older than what a later transaction sees.  Nothing is read per row.  (The
 * snapshot caches of cache.c would read the tables again at each statement's
 * new snapshot, i.e. per row of single-row inserts; the plans are cache.c's.)
 *
 * The enum of states in ips.h names the states that the C code gives a
 * meaning to; loading checks that the vocabulary's states are exactly these.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "ips.h"

typedef struct VocabCode
{
	char	   *category;
	char	   *code;
} VocabCode;

typedef struct VocabCache
{
	bool		valid;
	MemoryContext cxt;
	int			ncodes;
	VocabCode  *codes;			/* by category, then ordinal */
	int			nrels;
	Oid		   *rels;			/* the tables whose invalidation drops the cache */
	bool		allowed[STATE_COUNT][STATE_COUNT];
	char	   *allowed_hint[STATE_COUNT];	/* "engaged, employed (with ...), on_hold, closed" */
} VocabCache;

static VocabCache vocab = {false};
static bool vocab_stale = false;	/* an invalidation came while loading */
static bool vocab_callback_registered = false;

static IpsPlan vocab_codes_plan = {NULL,
	"SELECT v.category, v.code FROM ips.vocabulary v ORDER BY v.category, v.ordinal, v.code", 0, {0}};

static IpsPlan vocab_transitions_plan = {NULL,
	"SELECT t.from_state, t.to_state, t.condition FROM ips.state_transition t"
	" JOIN ips.vocabulary v ON v.category OPERATOR(pg_catalog.=) 'state' AND v.code OPERATOR(pg_catalog.=) t.to_state"
	" ORDER BY t.from_state, v.ordinal", 0, {0}};

static IpsPlan vocab_rels_plan = {NULL,
	"SELECT c.oid, c.relname OPERATOR(pg_catalog.=) 'state_transition' FROM pg_catalog.pg_class c"
	" WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ips'::pg_catalog.regnamespace"
	" AND (c.relname OPERATOR(pg_catalog.=) ANY ('{vocabulary,state_transition}'::pg_catalog.name[])"
	" OR c.oid OPERATOR(pg_catalog.=) ANY (SELECT i.inhrelid FROM pg_catalog.pg_inherits i"
	" WHERE i.inhparent OPERATOR(pg_catalog.=) 'ips.vocabulary'::pg_catalog.regclass))", 0, {0}};

/*
 * A database whose schema is still 1.0's or 1.1's (the library is updated
 * before ALTER EXTENSION ips UPDATE runs) has no ips.state_transition: until
 * the update, the moves are the ones this library allowed before the table
 * existed (frozen, as the released scripts are; never read when the table is
 * there).
 */
static const bool legacy_transition[STATE_COUNT][STATE_COUNT] = {
	/* to:            ref    eng    srch   empl   stud   hold   closed */
	/* referred   */ {false, true, false, true, false, true, true},
	/* engaged    */ {false, false, true, true, true, true, true},
	/* job_search */ {false, false, false, true, true, true, true},
	/* employed   */ {false, false, true, false, true, true, true},
	/* studying   */ {false, false, true, true, false, true, true},
	/* on_hold    */ {true, true, true, true, true, false, true},
	/* closed     */ {false, false, false, false, false, false, false},
};

/* Relcache callback: drop the copy when one of the tables (or every relation) is invalidated. */
static void
VocabularyInval(Datum arg, Oid relid)
{
	bool		ours = relid == InvalidOid;

	for (int i = 0; !ours && i < vocab.nrels; i++)
		ours = vocab.rels[i] == relid;
	if (ours)
	{
		vocab.valid = false;
		vocab_stale = true;
	}
}

/* Run a kept plan with the latest snapshot (as a catalog cache reads). */
static void
RunLatest(IpsPlan *p)
{
	int			rc = SPI_execute_snapshot(IpsPreparePlan(p), NULL, NULL, GetLatestSnapshot(),
										  InvalidSnapshot, true, false, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the vocabulary failed: %s", SPI_result_code_string(rc));
}

/* Load the vocabulary and the transitions unless the copy is valid. */
static void
VocabularyLoad(void)
{
	MemoryContext old;
	bool		seen[STATE_COUNT] = {false};
	StringInfoData hint[STATE_COUNT];
	bool		has_transitions = false;

	if (vocab.valid)
		return;
	if (!vocab_callback_registered)
	{
		IpsRegisterRelcacheCallback(VocabularyInval);
		vocab_callback_registered = true;
	}
	if (vocab.cxt == NULL)
		vocab.cxt = AllocSetContextCreate(TopMemoryContext, "ips vocabulary", ALLOCSET_SMALL_SIZES);
	vocab.nrels = 0;
	MemoryContextReset(vocab.cxt);
	vocab.ncodes = 0;
	vocab_stale = false;
	memset(vocab.allowed, 0, sizeof(vocab.allowed));

	SPI_connect();
	/* the tables first: an invalidation of one of them while reading marks what is read stale */
	RunLatest(&vocab_rels_plan);
	old = MemoryContextSwitchTo(vocab.cxt);
	vocab.rels = palloc(sizeof(Oid) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		vocab.rels[vocab.nrels++] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																   SPI_tuptable->tupdesc, 1, &isnull));
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull)))
			has_transitions = true;
	}
	MemoryContextSwitchTo(old);

	RunLatest(&vocab_codes_plan);
	old = MemoryContextSwitchTo(vocab.cxt);
	vocab.codes = palloc(sizeof(VocabCode) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		VocabCode  *c = &vocab.codes[vocab.ncodes++];

		c->category = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		c->code = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		if (strcmp(c->category, "state") == 0)
		{
			int			s = IpsStateFromName(c->code);

			if (s < 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("episode state \"%s\" of ips.vocabulary is unknown to the ips library", c->code),
						 errhint("The states of ips.vocabulary come with the extension; restore them with ALTER EXTENSION ips UPDATE or a reinstall.")));
			seen[s] = true;
		}
	}
	MemoryContextSwitchTo(old);
	for (int s = 0; s < STATE_COUNT; s++)
		if (!seen[s])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("episode state \"%s\" is missing from ips.vocabulary", ips_state_names[s]),
					 errhint("The states of ips.vocabulary come with the extension; restore them with ALTER EXTENSION ips UPDATE or a reinstall.")));

	old = MemoryContextSwitchTo(vocab.cxt);
	for (int s = 0; s < STATE_COUNT; s++)
		initStringInfo(&hint[s]);
	MemoryContextSwitchTo(old);
	if (!has_transitions)
	{
		/* a schema not yet updated (see legacy_transition) */
		old = MemoryContextSwitchTo(vocab.cxt);
		for (int f = 0; f < STATE_COUNT; f++)
			for (int t = 0; t < STATE_COUNT; t++)
				if (legacy_transition[f][t])
				{
					vocab.allowed[f][t] = true;
					appendStringInfo(&hint[f], "%s%s", hint[f].len > 0 ? ", " : "", ips_state_names[t]);
				}
		for (int s = 0; s < STATE_COUNT; s++)
			vocab.allowed_hint[s] = hint[s].len > 0 ? hint[s].data : "none";
		MemoryContextSwitchTo(old);
		SPI_finish();
		vocab.valid = !vocab_stale;
		return;
	}
	RunLatest(&vocab_transitions_plan);
	old = MemoryContextSwitchTo(vocab.cxt);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		int			from = IpsStateFromName(SPI_getvalue(t, d, 1));
		int			to = IpsStateFromName(SPI_getvalue(t, d, 2));
		char	   *cond = SPI_getvalue(t, d, 3);

		if (from < 0 || to < 0)
			continue;			/* the foreign keys keep this from happening */
		vocab.allowed[from][to] = true;
		appendStringInfo(&hint[from], "%s%s", hint[from].len > 0 ? ", " : "", ips_state_names[to]);
		if (cond)
			appendStringInfo(&hint[from], " (%s)", cond);
	}
	for (int s = 0; s < STATE_COUNT; s++)
		vocab.allowed_hint[s] = hint[s].len > 0 ? hint[s].data : "none";
	MemoryContextSwitchTo(old);
	SPI_finish();
	/* kept unless one of the tables changed while it was read (then read again at the next use) */
	vocab.valid = !vocab_stale;
}

/* True when code is one of the category's codes. */
bool
IpsVocabularyHas(const char *category, const char *code)
{
	VocabularyLoad();
	for (int i = 0; i < vocab.ncodes; i++)
		if (strcmp(vocab.codes[i].category, category) == 0 && strcmp(vocab.codes[i].code, code) == 0)
			return true;
	return false;
}

/* The category's codes in their order, "a, b, c" (palloc'd; empty for an unknown category), leaving out except. */
char *
IpsVocabularyCodes(const char *category, const char *except)
{
	StringInfoData s;

	VocabularyLoad();
	initStringInfo(&s);
	for (int i = 0; i < vocab.ncodes; i++)
		if (strcmp(vocab.codes[i].category, category) == 0 &&
			(except == NULL || strcmp(vocab.codes[i].code, except) != 0))
			appendStringInfo(&s, "%s%s", s.len > 0 ? ", " : "", vocab.codes[i].code);
	return s.data;
}

/* True when ips.state_transition allows the move from -> to. */
bool
IpsTransitionAllowed(int from, int to)
{
	VocabularyLoad();
	return from >= 0 && from < STATE_COUNT && to >= 0 && to < STATE_COUNT && vocab.allowed[from][to];
}

/* The states a move from `from` may go to, with their conditions, for hints. */
const char *
IpsTransitionsFrom(int from)
{
	VocabularyLoad();
	return (from >= 0 && from < STATE_COUNT) ? vocab.allowed_hint[from] : "none";
}

PG_FUNCTION_INFO_V1(ips_vocabulary_changed);
/* Trigger on ips.vocabulary and ips.state_transition: every session drops its copy. */
Datum
ips_vocabulary_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event))
		elog(ERROR, "ips_vocabulary_changed must be an AFTER trigger");
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
