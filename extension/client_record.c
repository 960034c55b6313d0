/*
 * client_record.c
 *		ips.client_record(client_id, purpose): the shared record of a client
 *		as far as the caller may see it, logged in ips.access_log by an
 *		autonomous write (autonomous.c), so that the entry stays when the
 *		reader's transaction or subtransaction rolls back.
 *
 *	The function runs with the caller's rights (row-level security decides
 *	what the record shows) and a pinned search_path.  The purpose is checked
 *	before anything is read.  The record is built by one kept SPI plan; the
 *	entry (the reader's role as ips.caller() sees it, its staff id, the
 *	transaction's time, client, purpose and which sections were shown) is
 *	then written by ips.log_access(), which no ips role may execute, in a
 *	transaction of its own.  The record is returned only after that
 *	transaction committed; when the entry cannot be written the read fails.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "ips.h"
#include "autonomous.h"

/* Most characters of a purpose (a reason, not a document). */
#define PURPOSE_MAX_CHARS 500

/* The record of one client as the caller sees it, what the log keeps of it, and who reads. */
static IpsPlan record_plan = {NULL,
	"SELECT r.rec,"
	" jsonb_build_object('episode_id', r.episode_id,"
	"   'sections', (SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys(r.rec) k),"
	"   'contacts', jsonb_array_length(r.rec -> 'recent_contacts')),"
	" ips.caller(), ips.current_staff(), now()"
	" FROM (SELECT e.episode_id,"
	"   jsonb_build_object("
	"     'client', jsonb_build_object('client_id', c.client_id, 'host_ref', c.host_ref,"
	"                                  'birth_year', c.birth_year, 'municipality', c.municipality),"
	"     'episode', CASE WHEN e.episode_id IS NOT NULL THEN to_jsonb(e) END,"
	"     'state_history', (SELECT coalesce(jsonb_agg(jsonb_build_object('from_state', h.from_state, 'to_state', h.to_state,"
	"                                                                  'at', h.at, 'reason', h.reason, 'actor', h.actor)"
	"                                               ORDER BY h.at, h.history_id), '[]')"
	"                         FROM ips.episode_state_history h WHERE h.episode_id = e.episode_id),"
	"     'current_job', (SELECT to_jsonb(j) FROM ips.job j"
	"                      WHERE j.episode_id = e.episode_id AND j.starts_on <= d.today"
	"                        AND (j.ends_on IS NULL OR j.ends_on >= d.today)"
	"                      ORDER BY j.starts_on DESC, j.job_id DESC LIMIT 1),"
	"     'recent_contacts', (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.at DESC, x.contact_id DESC), '[]')"
	"                           FROM (SELECT t.contact_id, t.at, t.kind, t.mode, t.setting, t.minutes, t.staff_id"
	"                                   FROM ips.contact t WHERE t.episode_id = e.episode_id"
	"                                  ORDER BY t.at DESC, t.contact_id DESC LIMIT 20) x),"
	"     'consents', (SELECT coalesce(jsonb_agg(jsonb_build_object('scope', k.scope, 'given_on', k.given_on,"
	"                                                             'withdrawn_on', k.withdrawn_on)"
	"                                          ORDER BY k.given_on, k.consent_id), '[]')"
	"                    FROM ips.consent k WHERE k.client_id = c.client_id),"
	"     'refusals', (SELECT coalesce(jsonb_agg(jsonb_build_object('scope', k.scope, 'refused_on', k.refused_on)"
	"                                          ORDER BY k.refused_on, k.refusal_id), '[]')"
	"                    FROM ips.consent_refusal k WHERE k.client_id = c.client_id))"
	"   || CASE WHEN e.episode_id IS NOT NULL"
	"           THEN jsonb_build_object('open_alerts', (SELECT coalesce(jsonb_agg(to_jsonb(a)), '[]')"
	"                                                     FROM ips.episode_alerts(e.episode_id, d.today) a))"
	"           ELSE '{}'::jsonb END AS rec"
	"   FROM ips.client c"
	"   CROSS JOIN (SELECT ips.local_date(now()) AS today) d"
	"   LEFT JOIN LATERAL (SELECT x.* FROM ips.episode x WHERE x.client_id = c.client_id"
	"                       ORDER BY x.state = 'closed', x.referred_on DESC, x.episode_id DESC LIMIT 1) e ON true"
	"  WHERE c.client_id = $1) r",
	1, {INT8OID}};

/* The one statement the log writer runs (ips.log_access; see extension/sql/85_ledger.sql). */
static const char *const log_sql =
"SELECT ips.log_access($1, $2, $3, $4, $5, $6)";
static const Oid log_argtypes[6] = {INT8OID, TEXTOID, JSONBOID, TIMESTAMPTZOID, NAMEOID, INT8OID};

/* Refuse a purpose that is too long (22001) or blank (22023), before anything is read. */
static void
CheckPurpose(text *purpose)
{
	const char *s = VARDATA_ANY(purpose);
	int			bytes = VARSIZE_ANY_EXHDR(purpose);
	bool		blank = true;

	if (bytes > PURPOSE_MAX_CHARS * MAX_MULTIBYTE_CHAR_LEN ||
		pg_mbstrlen_with_len(s, bytes) > PURPOSE_MAX_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("purpose is longer than %d characters", PURPOSE_MAX_CHARS),
				 errhint("Say briefly why the record is opened, e.g. 'weekly review' (1 to %d characters).",
						 PURPOSE_MAX_CHARS)));
	for (int i = 0; i < bytes && blank; i++)
		if (!(s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f'))
			blank = false;
	if (blank)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("purpose must not be blank"),
				 errhint("Say why the record is opened, e.g. 'weekly review' or 'care team meeting' (1 to %d characters).",
						 PURPOSE_MAX_CHARS)));
}

PG_FUNCTION_INFO_V1(ips_client_record);
/* ips.client_record(client_id, purpose): the caller's view of a client's record, logged autonomously. */
Datum
ips_client_record(PG_FUNCTION_ARGS)
{
	int64		client_id;
	text	   *purpose;
	Datum		arg;
	Datum		values[6];
	bool		nulls[6];
	bool		isnull;
	Datum		rec;
	HeapTuple	tup;
	TupleDesc	td;
	int			rc;
	char		what[64];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("client_id must not be NULL"),
				 errhint("Give client_id.")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("purpose must not be NULL"),
				 errhint("Give purpose.")));
	client_id = PG_GETARG_INT64(0);
	purpose = PG_GETARG_TEXT_PP(1);
	CheckPurpose(purpose);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	arg = Int64GetDatum(client_id);
	rc = SPI_execute_plan(IpsPreparePlan(&record_plan), &arg, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the record of client " INT64_FORMAT " failed: %s",
			 client_id, SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no client with id " INT64_FORMAT, client_id),
				 errhint("Check the client id; the caller may also lack the right to see it.")));

	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	rec = SPI_getbinval(tup, td, 1, &isnull);

	/* the entry: client, purpose, shown, accessed_at, db_role, staff_id */
	values[0] = Int64GetDatum(client_id);
	nulls[0] = false;
	values[1] = PointerGetDatum(purpose);
	nulls[1] = false;
	values[2] = SPI_getbinval(tup, td, 2, &nulls[2]);
	values[5] = SPI_getbinval(tup, td, 4, &nulls[5]);
	values[3] = SPI_getbinval(tup, td, 5, &nulls[3]);
	values[4] = SPI_getbinval(tup, td, 3, &nulls[4]);
	snprintf(what, sizeof(what), "the access to client " INT64_FORMAT, client_id);
	IpsAutonomousExecute(log_sql, 6, log_argtypes, values, nulls, what);

	rec = SPI_datumTransfer(rec, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(rec);
}
