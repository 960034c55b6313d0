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

/* A prepared SPI plan kept for the life of the backend. */
typedef struct IpsPlan
{
	SPIPlanPtr	plan;
	const char *sql;
	int			nargs;
	Oid			argtypes[8];
} IpsPlan;

/* Prepare (once) and return the plan; call within SPI_connect. */
extern SPIPlanPtr IpsPreparePlan(IpsPlan *p);

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
extern Datum IpsGetColumn(HeapTuple tup, TupleDesc td, const char *column, bool *isnull);
extern bool IpsDirectRead(const char *relname);

/* What a snapshot sees, for caches of values read with it (IpsSameSnapshot). */
typedef struct IpsSnapshotKey
{
	bool		valid;
	bool		suboverflowed;
	LocalTransactionId lxid;
	SubTransactionId subid;
	CommandId	cid;
	TransactionId xmin,
				xmax;
	uint32		xcnt;
	int32		subxcnt;
	TransactionId xip[64];		/* xip, then subxip */
} IpsSnapshotKey;
extern bool IpsSameSnapshot(IpsSnapshotKey *key);
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

#endif							/* IPS_H */
