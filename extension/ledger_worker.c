/*
 * ledger_worker.c
 *		The background sealer: when ips is in shared_preload_libraries, one
 *		background worker per database named in ips.seal_databases runs the
 *		seal (ledger_seal.c) of both logs every ips.seal_interval.
 *
 *	The workers are static (registered by _PG_init while the postmaster
 *	loads the library), so the postmaster restarts one that crashes after
 *	SEAL_RESTART_SECONDS, and all of them after a crash of the server.  Each
 *	seal is one transaction run as the extension owner, as ips.seal() is; an
 *	error is logged and the seal tried again after the interval.  A
 *	database without the extension, or with a version before 1.2 (no
 *	ips.ledger_block yet), is checked again every interval and skipped.
 *	SIGTERM (a server shutdown) ends the worker between seals, exit code 0;
 *	SIGHUP re-reads ips.seal_interval.
 *
 *	Without shared_preload_libraries nothing here runs: sealing stays with
 *	ips.seal() (pg_cron, cron) and the digests and verifiers (docs/ledger.md).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "ips.h"
#include "ledger.h"

PGDLLEXPORT void ips_seal_worker_main(Datum main_arg);

/* seconds before the postmaster restarts a sealer that crashed */
#define SEAL_RESTART_SECONDS 5

/* at most this many sealers (databases in ips.seal_databases) */
#define SEAL_MAX_DATABASES 32

/* PGC_SIGHUP, not POSTMASTER: the library is also loaded late (no preload); only the value at server start counts */
static char *ips_seal_databases = NULL;
static int	ips_seal_interval = 1000;

/* Define ips.seal_databases and ips.seal_interval; register one sealer per database when preloaded. */
void
IpsSealWorkerInit(void)
{
	char	   *copy;
	List	   *names = NIL;
	ListCell   *lc;
	int			n = 0;

	DefineCustomStringVariable("ips.seal_databases",
							   "Databases whose ledger a background worker seals (comma-separated).",
							   "Only when ips is in shared_preload_libraries; read at server start; empty: no background sealer.",
							   &ips_seal_databases,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("ips.seal_interval",
							"How often the background sealer seals the ledger.",
							"Committed entries are sealed into a block within this interval plus one seal's run time.",
							&ips_seal_interval,
							1000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	copy = pstrdup(ips_seal_databases ? ips_seal_databases : "");
	if (!SplitIdentifierString(copy, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ips.seal_databases is not a list of database names: \"%s\"", ips_seal_databases),
				 errhint("Give names separated by commas, e.g. ips.seal_databases = 'ips, ips_test'.")));
	foreach(lc, names)
	{
		const char *db = (const char *) lfirst(lc);
		BackgroundWorker worker;

		if (++n > SEAL_MAX_DATABASES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("ips.seal_databases names more than %d databases", SEAL_MAX_DATABASES),
					 errhint("Seal the others with ips.seal() from pg_cron.")));
		if (strlen(db) >= BGW_MAXLEN)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("database name \"%s\" in ips.seal_databases is too long", db)));
		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = SEAL_RESTART_SECONDS;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "ips");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "ips_seal_worker_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "ips sealer %s", db);
		snprintf(worker.bgw_type, BGW_MAXLEN, "ips sealer");
		snprintf(worker.bgw_extra, BGW_EXTRALEN, "%s", db);
		worker.bgw_main_arg = (Datum) 0;
		worker.bgw_notify_pid = 0;
		RegisterBackgroundWorker(&worker);
	}
	pfree(copy);
}

/* The owner of extension ips in this database, or InvalidOid when it is not there in 1.2 form. */
static Oid
SealableExtensionOwner(void)
{
	Oid			ns = get_namespace_oid("ips", true);
	Oid			extoid = get_extension_oid("ips", true);
	Oid			owner = InvalidOid;
	HeapTuple	tup;

	if (!OidIsValid(extoid) || !OidIsValid(ns) || !OidIsValid(get_relname_relid("ledger_block", ns)))
		return InvalidOid;
	tup = SearchSysCache1(EXTENSIONOID, ObjectIdGetDatum(extoid));
	if (HeapTupleIsValid(tup))
	{
		owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
		ReleaseSysCache(tup);
	}
	return owner;
}

/* One seal of both logs in a transaction of its own, as the extension owner; the entries sealed, -1 when not installed. */
static int64
SealOnce(void)
{
	int64		sealed = 0;
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ips.seal() by the background sealer");
	owner = SealableExtensionOwner();
	if (!OidIsValid(owner))
		sealed = -1;
	else
	{
		/* an error: the abort of the transaction restores the user */
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		for (int i = 0; i < LEDGER_NLOGS; i++)
			sealed += LedgerSeal((LedgerLogId) i);
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return sealed;
}

/* Main of a sealer: seal every ips.seal_interval until SIGTERM. */
void
ips_seal_worker_main(Datum main_arg)
{
	char		db[BGW_EXTRALEN];
	volatile bool said_missing = false;
	MemoryContext loop_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	strlcpy(db, MyBgworkerEntry->bgw_extra, sizeof(db));
	BackgroundWorkerInitializeConnection(db, NULL, 0);
	ereport(LOG,
			(errmsg("ips sealer started for database \"%s\", every %d ms", db, ips_seal_interval)));
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "ips sealer", ALLOCSET_DEFAULT_SIZES);

	while (!ShutdownRequestPending)
	{
		MemoryContextSwitchTo(loop_cxt);
		PG_TRY();
		{
			int64		sealed = SealOnce();

			if (sealed < 0 && !said_missing)
				ereport(LOG,
						(errmsg("ips sealer: extension ips 1.2 is not installed in database \"%s\"; checking again every interval", db)));
			said_missing = (sealed < 0);
			if (sealed > 0)
				elog(DEBUG1, "ips sealer sealed " INT64_FORMAT " entries", sealed);
		}
		PG_CATCH();
		{
			/* log, roll back, and try again after the interval */
			MemoryContextSwitchTo(loop_cxt);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		PG_END_TRY();
		MemoryContextReset(loop_cxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ips_seal_interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	ereport(LOG, (errmsg("ips sealer for database \"%s\" stopping", db)));
	proc_exit(0);
}
