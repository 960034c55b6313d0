/*
 * cache.c
 *		The two caches that every C part of ips shares:
 *
 *	- kept SPI plans (IpsPlan): each query is prepared once per backend, on
 *	  its first use, and kept (SPI_keepplan); the plan cache of PostgreSQL
 *	  re-plans it when a table it reads changes;
 *	- values kept while the snapshot in use sees the same data
 *	  (IpsSnapshotKey, IpsSnapshotCache): a value read with a snapshot is
 *	  given again while the snapshot in use has the same content.
 *
 * A snapshot key holds everything an MVCC snapshot's visibility depends on:
 * the transaction (local transaction id), the subtransaction, the command id,
 * xmin, xmax and the in-progress (sub)transactions.  A change by this
 * transaction makes a new command id; a commit by another one changes xmax
 * or the in-progress lists of the next snapshot; a subtransaction that ends
 * (rolled back: its rows are hidden without a new command id) changes the
 * current subtransaction id, and subtransaction ids are not reused within a
 * transaction.  So a key never matches after anything that could change what
 * the snapshot sees, and no transaction callback is needed to keep the caches
 * right; the one callback here only gives their memory back at the end of
 * each transaction.  Outside an MVCC snapshot nothing is kept.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "ips.h"

/* Prepare a plan once per backend (with its cursor options) and keep it. */
SPIPlanPtr
IpsPreparePlan(IpsPlan *p)
{
	if (p->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(p->sql, p->nargs, p->argtypes, p->cursor_options);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", p->sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		p->plan = plan;
	}
	return p->plan;
}

/* The snapshot the SQL would read with: the active one (a new one outside a statement). */
Snapshot
IpsReadSnapshot(void)
{
	return ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
}

/* True when *key was saved under a snapshot with the content of snap. */
static bool
KeyMatches(const IpsSnapshotKey *key, Snapshot snap)
{
	return key->valid &&
		key->lxid == IpsMyLocalTransactionId() &&
		key->subid == GetCurrentSubTransactionId() &&
		key->cid == snap->curcid &&
		TransactionIdEquals(key->xmin, snap->xmin) &&
		TransactionIdEquals(key->xmax, snap->xmax) &&
		key->xcnt == snap->xcnt &&
		key->subxcnt == snap->subxcnt &&
		key->suboverflowed == snap->suboverflowed &&
		key->takenDuringRecovery == snap->takenDuringRecovery &&
		(snap->xcnt == 0 || memcmp(key->xip, snap->xip, snap->xcnt * sizeof(TransactionId)) == 0) &&
		(snap->subxcnt == 0 ||
		 memcmp(key->xip + snap->xcnt, snap->subxip, snap->subxcnt * sizeof(TransactionId)) == 0);
}

/* Save the content of snap in *key (not valid unless snap is an MVCC snapshot). */
static void
KeySave(IpsSnapshotKey *key, Snapshot snap)
{
	int			n;

	key->valid = false;
	if (snap->snapshot_type != SNAPSHOT_MVCC)
		return;
	n = snap->xcnt + snap->subxcnt;
	if (n > key->xip_size)
	{
		TransactionId *xip = MemoryContextAlloc(TopMemoryContext, n * sizeof(TransactionId));

		if (key->xip)
			pfree(key->xip);
		key->xip = xip;
		key->xip_size = n;
	}
	key->lxid = IpsMyLocalTransactionId();
	key->subid = GetCurrentSubTransactionId();
	key->cid = snap->curcid;
	key->xmin = snap->xmin;
	key->xmax = snap->xmax;
	key->xcnt = snap->xcnt;
	key->subxcnt = snap->subxcnt;
	key->suboverflowed = snap->suboverflowed;
	key->takenDuringRecovery = snap->takenDuringRecovery;
	if (snap->xcnt > 0)
		memcpy(key->xip, snap->xip, snap->xcnt * sizeof(TransactionId));
	if (snap->subxcnt > 0)
		memcpy(key->xip + snap->xcnt, snap->subxip, snap->subxcnt * sizeof(TransactionId));
	key->valid = true;
}

/*
 * True when the snapshot in use (IpsReadSnapshot) sees exactly what it saw
 * when *key was saved.  Otherwise saves the current snapshot in *key and
 * returns false.
 */
bool
IpsSameSnapshot(IpsSnapshotKey *key)
{
	Snapshot	snap = IpsReadSnapshot();

	if (KeyMatches(key, snap))
		return true;
	KeySave(key, snap);
	return false;
}

/* True when *key still matches the snapshot in use (nothing is saved). */
bool
IpsSnapshotStillSame(const IpsSnapshotKey *key)
{
	return KeyMatches(key, IpsReadSnapshot());
}

/* The caches with a memory context, emptied at the end of each transaction. */
#define MAX_SNAPSHOT_CACHES 8
static IpsSnapshotCache *snapshot_caches[MAX_SNAPSHOT_CACHES];
static int	n_snapshot_caches = 0;

/* Forget the values of a cache. */
void
IpsSnapshotCacheForget(IpsSnapshotCache *c)
{
	c->key.valid = false;
	if (c->cxt != NULL)
		MemoryContextReset(c->cxt);
}

/* End of a transaction: give the caches' memory back (their keys no longer match). */
static void
SnapshotCachesXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		for (int i = 0; i < n_snapshot_caches; i++)
			IpsSnapshotCacheForget(snapshot_caches[i]);
}

/*
 * True when the values kept in c->cxt hold for the snapshot in use.
 * Otherwise empties c->cxt, keys c to the current snapshot and returns false:
 * the caller computes the values, and keeps them in c->cxt only while
 * IpsSnapshotStillSame(&c->key) (what it ran may have ended a subtransaction).
 */
bool
IpsSnapshotCacheValid(IpsSnapshotCache *c)
{
	if (c->cxt == NULL)
	{
		if (n_snapshot_caches == 0)
			RegisterXactCallback(SnapshotCachesXactCallback, NULL);
		if (n_snapshot_caches >= MAX_SNAPSHOT_CACHES)
			elog(ERROR, "ips: too many snapshot caches");
		c->cxt = AllocSetContextCreate(TopMemoryContext, "ips snapshot cache", ALLOCSET_SMALL_SIZES);
		MemoryContextSetIdentifier(c->cxt, c->name);
		snapshot_caches[n_snapshot_caches++] = c;
	}
	if (IpsSameSnapshot(&c->key))
		return true;
	MemoryContextReset(c->cxt);
	return false;
}

/*
 * Relcache callbacks.  PostgreSQL has room for ten relcache callbacks per
 * backend, shared by every library it loads; ips takes one and calls each
 * of its own from it (the kept relation ids, settings, staff days, bounds,
 * vocabulary and the ledger writer's set-up).
 */
#define MAX_IPS_RELCACHE_CALLBACKS 16

static RelcacheCallbackFunction ips_relcache_callbacks[MAX_IPS_RELCACHE_CALLBACKS];
static int	n_ips_relcache_callbacks = 0;

static void
IpsRelcacheCallback(Datum arg, Oid relid)
{
	for (int i = 0; i < n_ips_relcache_callbacks; i++)
		ips_relcache_callbacks[i] ((Datum) 0, relid);
}

/* Calls func (with arg 0) for every relcache invalidation from now on; once per func. */
void
IpsRegisterRelcacheCallback(RelcacheCallbackFunction func)
{
	for (int i = 0; i < n_ips_relcache_callbacks; i++)
		if (ips_relcache_callbacks[i] == func)
			return;
	if (n_ips_relcache_callbacks >= MAX_IPS_RELCACHE_CALLBACKS)
		elog(ERROR, "ips: too many relcache callbacks");
	if (n_ips_relcache_callbacks == 0)
		CacheRegisterRelcacheCallback(IpsRelcacheCallback, (Datum) 0);
	ips_relcache_callbacks[n_ips_relcache_callbacks++] = func;
}
