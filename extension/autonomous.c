/*
 * autonomous.c
 *		Autonomous writes: one parameterised SQL statement run and committed
 *		in a transaction of its own, which stays when the caller's
 *		transaction or subtransaction rolls back.  ips.client_record() logs
 *		every read through it (docs/access-log.md).
 *
 *	The caller (IpsAutonomousExecute) puts the statement, its parameters in
 *	their binary form (send/receive functions: independent of DateStyle,
 *	TimeZone and the like) and its own PGPROC into a dynamic shared memory
 *	segment, registers a dynamic background worker (no
 *	shared_preload_libraries needed) and waits on its latch.  The worker
 *	(ips_autonomous_main) attaches the segment, connects to the caller's
 *	database as the extension owner, runs the statement through SPI,
 *	commits, marks the request done and sets the caller's latch; on an error
 *	it reports the SQLSTATE and message back instead.
 *
 *	Fail closed: the caller returns only after the worker has reported a
 *	commit.  No free worker slot (max_worker_processes) after retrying for
 *	up to a second, a worker that stops without reporting, a wait longer than
 *	ips.autonomous_timeout (the worker is then terminated) or a failed
 *	statement: all raise an error in the caller.  The one outcome that is
 *	not all-or-nothing is the safe one: a worker that commits after its
 *	caller gave up leaves the write without the caller's result.
 *
 *	The worker runs with the extension owner's rights; the statement is
 *	chosen by C code only (nothing SQL-callable passes SQL text here).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "ips.h"
#include "autonomous.h"

PGDLLEXPORT void ips_autonomous_main(Datum main_arg);

int			ips_autonomous_timeout = 5000;

/*
 * When every worker slot is taken: wait 5, 10, 20, 40, 80, then 100 ms between
 * attempts, for at most this long (or ips.autonomous_timeout when shorter).
 */
#define SLOT_WAIT_MS 1000

#define AUTONOMOUS_PENDING	0
#define AUTONOMOUS_DONE		1
#define AUTONOMOUS_FAILED	2

/* A request in its shared memory segment: written by the caller, answered by the worker. */
typedef struct AutonomousRequest
{
	pg_atomic_uint32 state;		/* AUTONOMOUS_* */
	PGPROC	   *caller;			/* whose latch to set when answered */
	Oid			dboid;
	Oid			useroid;
	int			nargs;
	Oid			argtypes[IPS_AUTONOMOUS_MAX_ARGS];
	bool		nulls[IPS_AUTONOMOUS_MAX_ARGS];
	uint32		arglen[IPS_AUTONOMOUS_MAX_ARGS];	/* bytes of the binary form */
	int			sqlerrcode;		/* when AUTONOMOUS_FAILED */
	char		message[1024];
	char		detail[1024];
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* sql, '\0', then each argument */
} AutonomousRequest;

/* Define ips.autonomous_timeout. */
void
IpsAutonomousInit(void)
{
	DefineCustomIntVariable("ips.autonomous_timeout",
							"How long a read of ips.client_record() waits for its access-log entry to commit.",
							"The entry is written by a background worker in a transaction of its own; "
							"when it has not committed within this time the read fails.",
							&ips_autonomous_timeout,
							5000, 10, 600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/* The owner of extension ips: the role the worker runs as. */
static Oid
ExtensionOwner(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("ips"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(owner))
		elog(ERROR, "extension \"ips\" is not installed in this database");
	return owner;
}

/* Register the worker of a request, retrying briefly while every slot is taken. */
static BackgroundWorkerHandle *
StartWorker(dsm_segment *seg, const char *what)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle = NULL;
	TimestampTz start = GetCurrentTimestamp();
	long		limit = Min(SLOT_WAIT_MS, ips_autonomous_timeout);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "ips");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "ips_autonomous_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "ips autonomous write for PID %d", MyProcPid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "ips autonomous write");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	for (int attempt = 1, pause = 5;; attempt++, pause = Min(pause * 2, 100))
	{
		if (RegisterDynamicBackgroundWorker(&worker, &handle))
			return handle;
		if (TimestampDifferenceMilliseconds(start, GetCurrentTimestamp()) + pause > limit)
		{
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("%s could not be logged: no background worker slot is free", what),
					 errdetail("All max_worker_processes = %d slots stayed in use for %d attempts in %ld ms; nothing is returned.",
							   max_worker_processes, attempt,
							   TimestampDifferenceMilliseconds(start, GetCurrentTimestamp())),
					 errhint("Try again; if it recurs, raise max_worker_processes (a restart) so that ips has free worker slots.")));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 pause, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return NULL;				/* not reached */
}

/* Terminate a worker that took too long and wait (at most a second) until it has stopped. */
static void
StopWorker(BackgroundWorkerHandle *handle)
{
	TimestampTz start = GetCurrentTimestamp();
	pid_t		pid;

	TerminateBackgroundWorker(handle);
	while (GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED &&
		   TimestampDifferenceMilliseconds(start, GetCurrentTimestamp()) < 1000)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Wait for the worker's answer, at most ips.autonomous_timeout; raise an error unless it committed. */
static void
AwaitWorker(AutonomousRequest *req, BackgroundWorkerHandle *handle, const char *what)
{
	TimestampTz start = GetCurrentTimestamp();

	for (;;)
	{
		uint32		state;
		BgwHandleStatus status;
		pid_t		pid;
		long		waited;

		state = pg_atomic_read_u32(&req->state);
		if (state == AUTONOMOUS_DONE)
			return;
		if (state == AUTONOMOUS_FAILED)
		{
			pg_read_barrier();
			ereport(ERROR,
					(errcode(req->sqlerrcode),
					 errmsg("%s could not be logged: %s", what, req->message),
					 req->detail[0] ? errdetail("%s", req->detail) : 0,
					 errhint("Nothing is returned.  The writer failed; see the server log of the \"ips autonomous write\" worker.")));
		}
		status = GetBackgroundWorkerPid(handle, &pid);
		if (status == BGWH_STOPPED)
		{
			/* it may have answered just before it exited */
			state = pg_atomic_read_u32(&req->state);
			if (state != AUTONOMOUS_PENDING)
				continue;
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("%s could not be logged: the writer stopped without an answer", what),
					 errdetail("The background worker could not start or connect; nothing is returned."),
					 errhint("See the server log of the \"ips autonomous write\" worker.")));
		}
		if (status == BGWH_POSTMASTER_DIED)
			ereport(FATAL,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("postmaster exited while %s was being logged", what)));

		waited = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
		if (waited >= ips_autonomous_timeout)
		{
			StopWorker(handle);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("%s could not be logged within ips.autonomous_timeout (%d ms)", what,
							ips_autonomous_timeout),
					 errdetail("The writer had not committed when the wait ended (it may wait for a lock) and is stopped; nothing is returned."),
					 errhint("Try again; a long transaction holding a lock that the write needs (on ips.access_log, say) delays it.")));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(ips_autonomous_timeout - waited, 1000), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Run sql with its parameters in a transaction of its own (a background worker) and wait for its commit. */
void
IpsAutonomousExecute(const char *sql, int nargs, const Oid *argtypes,
					 const Datum *values, const bool *nulls, const char *what)
{
	bytea	   *binary[IPS_AUTONOMOUS_MAX_ARGS];
	Size		size;
	Size		sqllen = strlen(sql) + 1;
	dsm_segment *seg;
	AutonomousRequest *req;
	BackgroundWorkerHandle *handle;
	char	   *p;

	if (nargs < 0 || nargs > IPS_AUTONOMOUS_MAX_ARGS)
		elog(ERROR, "an autonomous statement takes at most %d parameters", IPS_AUTONOMOUS_MAX_ARGS);
	if (IsInParallelMode())
		elog(ERROR, "an autonomous write cannot start in parallel mode");
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s could not be logged: the server is a standby", what),
				 errdetail("Nothing can be written during recovery; nothing is returned."),
				 errhint("Run it on the primary.")));

	/* the parameters in their binary form */
	size = offsetof(AutonomousRequest, data) + sqllen;
	for (int i = 0; i < nargs; i++)
	{
		binary[i] = NULL;
		if (!nulls[i])
		{
			Oid			sendfn;
			bool		isvarlena;

			getTypeBinaryOutputInfo(argtypes[i], &sendfn, &isvarlena);
			binary[i] = OidSendFunctionCall(sendfn, values[i]);
			size += VARSIZE(binary[i]) - VARHDRSZ;
		}
	}

	seg = dsm_create(size, 0);
	req = (AutonomousRequest *) dsm_segment_address(seg);
	memset(req, 0, offsetof(AutonomousRequest, data));
	pg_atomic_init_u32(&req->state, AUTONOMOUS_PENDING);
	req->caller = MyProc;
	req->dboid = MyDatabaseId;
	req->useroid = ExtensionOwner();
	req->nargs = nargs;
	memcpy(req->data, sql, sqllen);
	p = req->data + sqllen;
	for (int i = 0; i < nargs; i++)
	{
		req->argtypes[i] = argtypes[i];
		req->nulls[i] = nulls[i];
		if (!nulls[i])
		{
			req->arglen[i] = VARSIZE(binary[i]) - VARHDRSZ;
			memcpy(p, VARDATA(binary[i]), req->arglen[i]);
			p += req->arglen[i];
			pfree(binary[i]);
		}
	}
	pg_write_barrier();

	handle = StartWorker(seg, what);
	AwaitWorker(req, handle, what);
	pfree(handle);
	dsm_detach(seg);
}

/* Copy the error being handled into the request (for the caller to raise). */
static void
ReportFailure(AutonomousRequest *req)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(TopMemoryContext);
	edata = CopyErrorData();
	req->sqlerrcode = edata->sqlerrcode;
	strlcpy(req->message, edata->message ? edata->message : "unknown error", sizeof(req->message));
	strlcpy(req->detail, edata->detail ? edata->detail : "", sizeof(req->detail));
	pg_write_barrier();
	pg_atomic_write_u32(&req->state, AUTONOMOUS_FAILED);
	SetLatch(&req->caller->procLatch);
}

/* Entry point of the worker: run one request's statement, commit, answer. */
void
ips_autonomous_main(Datum main_arg)
{
	dsm_segment *seg;
	AutonomousRequest *req;
	Datum		values[IPS_AUTONOMOUS_MAX_ARGS];
	char		nulls[IPS_AUTONOMOUS_MAX_ARGS];
	const char *sql;
	char	   *p;
	int			rc;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* session lifetime: CurrentResourceOwner is NULL here */
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ips autonomous write: the request is gone (its caller gave up)")));
	req = (AutonomousRequest *) dsm_segment_address(seg);
	pg_read_barrier();

	BackgroundWorkerInitializeConnectionByOid(req->dboid, req->useroid, IPS_BGW_CONNECT_FLAGS);

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		/* the statement names its objects; nothing of the owner's path may redirect them */
		SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		sql = req->data;
		pgstat_report_activity(STATE_RUNNING, sql);

		p = req->data + strlen(sql) + 1;
		for (int i = 0; i < req->nargs; i++)
		{
			nulls[i] = req->nulls[i] ? 'n' : ' ';
			values[i] = (Datum) 0;
			if (!req->nulls[i])
			{
				StringInfoData buf;
				Oid			recvfn;
				Oid			ioparam;

				/* the receive function wants a StringInfo it may read to its end */
				initStringInfo(&buf);
				appendBinaryStringInfo(&buf, p, req->arglen[i]);
				getTypeBinaryInputInfo(req->argtypes[i], &recvfn, &ioparam);
				values[i] = OidReceiveFunctionCall(recvfn, &buf, ioparam, -1);
				p += req->arglen[i];
			}
		}

		rc = SPI_execute_with_args(sql, req->nargs, req->argtypes, values, nulls, false, 0);
		if (rc < 0)
			elog(ERROR, "autonomous statement failed: %s", SPI_result_code_string(rc));

		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ReportFailure(req);
		PG_RE_THROW();
	}
	PG_END_TRY();

	pgstat_report_activity(STATE_IDLE, NULL);
	pg_write_barrier();
	pg_atomic_write_u32(&req->state, AUTONOMOUS_DONE);
	SetLatch(&req->caller->procLatch);
	dsm_detach(seg);
	proc_exit(0);
}
