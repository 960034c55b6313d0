/*
 * ips.h
 *		What the C parts of the ips extension share: settings, local days,
 *		SPI helpers and the vocabulary of episode states.
 */
#ifndef IPS_H
#define IPS_H

#include "postgres.h"
#include "ips_compat.h"
#include "access/skey.h"
#include "storage/lockdefs.h"
#include "executor/spi.h"
#include "utils/date.h"
#include "utils/timestamp.h"

/* GUC ips.language: the language of labels (fi, sv, en) */
extern char *ips_language;

/*
 * Restoring (GUC ips.restoring, superuser only, or a superuser's session
 * running pg_dump output): the guard triggers let rows through unchanged, so
 * that pg_restore can load rows that were checked when they were first
 * written.  Read as ips_restoring (a call of IpsRestoring(), ips.c).
 */
extern bool IpsRestoring(void);
#define ips_restoring IpsRestoring()

/*
 * The caches (cache.c).  A prepared SPI plan kept for the life of the
 * backend: {NULL, sql, nargs, {argtypes}[, cursor_options]}.
 */
typedef struct IpsPlan
{
	SPIPlanPtr	plan;
	const char *sql;
	int			nargs;
	Oid			argtypes[8];
	int			cursor_options;	/* of SPI_prepare_cursor (0: none) */
} IpsPlan;

/* Prepare (once) and return the plan; call within SPI_connect. */
extern SPIPlanPtr IpsPreparePlan(IpsPlan *p);

/* What a snapshot sees, for caches of values read with it (IpsSameSnapshot). */
typedef struct IpsSnapshotKey
{
	bool		valid;
	bool		suboverflowed;
	bool		takenDuringRecovery;
	LocalTransactionId lxid;
	SubTransactionId subid;
	CommandId	cid;
	TransactionId xmin,
				xmax;
	uint32		xcnt;
	int32		subxcnt;
	int			xip_size;		/* allocated entries of xip */
	TransactionId *xip;			/* xip, then subxip (TopMemoryContext) */
} IpsSnapshotKey;

/* Values (in cxt) kept while the snapshot in use sees the same data. */
typedef struct IpsSnapshotCache
{
	const char *name;			/* for the memory context */
	IpsSnapshotKey key;
	MemoryContext cxt;			/* made on first use */
} IpsSnapshotCache;

extern Snapshot IpsReadSnapshot(void);
extern bool IpsSameSnapshot(IpsSnapshotKey *key);
extern bool IpsSnapshotStillSame(const IpsSnapshotKey *key);
extern bool IpsSnapshotCacheValid(IpsSnapshotCache *c);
extern void IpsSnapshotCacheForget(IpsSnapshotCache *c);

/* Values kept across transactions until a table changes (lookup.c): its announcing trigger. */
extern bool IpsKeptTriggerPresent(Relation rel, const char *tgname);
extern Datum IpsAnnounceKeptTableChange(FunctionCallInfo fcinfo, const char *fname);

/* One relcache callback of PostgreSQL's for all of ips (cache.c); each func registered once. */
extern void IpsRegisterRelcacheCallback(void (*func) (Datum arg, Oid relid));

/* Value of a row of ips.setting as text, or NULL; call within SPI_connect. */
extern char *IpsSettingText(const char *name);
extern int	IpsSettingInt(const char *name, int dflt);
extern bool IpsSettingBool(const char *name, bool dflt);

/*
 * Direct look-ups (lookup.c): one row through a unique index of a table of
 * schema ips, with the active snapshot; see lookup.c for when they apply.
 */
extern HeapTuple IpsFetchByIndex(const char *relname, const char *indexname, int nkeys,
								 ScanKey keys, TupleDesc *td);
extern bool IpsFetchColumns(const char *relname, const char *indexname, LOCKMODE lockmode,
							int nkeys, ScanKey keys, int ncols, const char *const *cols,
							int *attnums, Datum *values, bool *nulls);
extern Datum IpsGetColumn(HeapTuple tup, TupleDesc td, const char *column, bool *isnull);
extern bool IpsDirectRead(const char *relname);
extern Oid	IpsRelid(const char *relname);
/* A setting kept across transactions when it can be (lookup.c), else read with the snapshot in use. */
extern bool IpsSettingKept(const char *name, const char **value);

extern char *IpsTimeZone(void);
extern int64 IpsCurrentStaff(bool *found);

/* The local date (region's time zone) of an instant. */
extern DateADT IpsLocalDate(TimestampTz ts, const char *tz);

/* Episode states (domain.md section 3) */
typedef enum EpisodeState
{
	STATE_REFERRED = 0,
	STATE_ENGAGED,
	STATE_JOB_SEARCH,
	STATE_EMPLOYED,
	STATE_STUDYING,
	STATE_ON_HOLD,
	STATE_CLOSED,
	STATE_COUNT
} EpisodeState;

extern const char *const ips_state_names[STATE_COUNT];
extern int	IpsStateFromName(const char *name);	/* -1 when unknown */

/*
 * The vocabulary and the allowed transitions (vocabulary.c): read from
 * ips.vocabulary and ips.state_transition, kept until they change.
 */
extern bool IpsVocabularyHas(const char *category, const char *code);
extern char *IpsVocabularyCodes(const char *category, const char *except);
extern bool IpsTransitionAllowed(int from, int to);
extern const char *IpsTransitionsFrom(int from);

#endif							/* IPS_H */
