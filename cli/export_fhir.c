/*
 * export_fhir.c
 *		ipsctl export: writes episodes either as an import document (the
 *		default; `ipsctl import` reads it back) or, with --fhir, as an HL7
 *		FHIR R4 Bundle of type collection (Organization per team,
 *		EpisodeOfCare per episode, Encounter per client contact).
 *
 * Each element is built by one constant, parameterised query ($1 episode
 * id, $2 team id, either may be NULL) and streamed row by row (libpq single-row
 * mode), so exports of any size run in constant memory.
 */
#include "ipsctl.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* An instant as ISO 8601 UTC text, fractions only when present. */
#define TS(x) "(to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')" \
	" || CASE WHEN date_trunc('second', " x ") = " x " THEN '' ELSE to_char((" x ") AT TIME ZONE 'UTC', '.US') END || 'Z')"

/* The episodes selected by --episode ($1) and --team ($2). */
#define EPISODE_FILTER "($1::bigint IS NULL OR e.episode_id = $1::bigint) AND ($2::bigint IS NULL OR e.team_id = $2::bigint)"
/* The teams in scope. */
#define TEAM_FILTER "(($1::bigint IS NULL AND ($2::bigint IS NULL OR t.team_id = $2::bigint))" \
	" OR t.team_id IN (SELECT e.team_id FROM ips.episode e WHERE e.episode_id = $1::bigint))"
/* The clients in scope. */
#define CLIENT_FILTER(col) "(($1::bigint IS NULL AND $2::bigint IS NULL) OR " col \
	" IN (SELECT e.client_id FROM ips.episode e WHERE " EPISODE_FILTER "))"

static const char *const native_sections[][2] = {
	{"teams",
		"SELECT json_build_object('key', 't' || t.team_id, 'name', t.name, 'region', t.region)::text"
		" FROM ips.team t WHERE " TEAM_FILTER " ORDER BY t.team_id"},
	{"staff",
		"SELECT json_build_object('key', 's' || s.staff_id, 'team', 't' || s.team_id, 'display_name', s.display_name,"
		" 'role', s.role, 'fte', s.fte, 'employment_share', s.employment_share, 'weekly_hours', s.weekly_hours)::text"
		" FROM ips.staff s JOIN ips.team t ON t.team_id = s.team_id WHERE " TEAM_FILTER " ORDER BY s.staff_id"},
	{"clients",
		"SELECT json_strip_nulls(json_build_object('key', 'c' || c.client_id, 'host_ref', c.host_ref,"
		" 'birth_year', c.birth_year, 'municipality', c.municipality))::text"
		" FROM ips.client c WHERE " CLIENT_FILTER("c.client_id") " ORDER BY c.client_id"},
	{"care_relationships",
		"SELECT json_strip_nulls(json_build_object('client', 'c' || r.client_id, 'unit', r.unit,"
		" 'started_on', r.started_on, 'ended_on', r.ended_on))::text"
		" FROM ips.care_relationship r WHERE " CLIENT_FILTER("r.client_id") " ORDER BY r.care_relationship_id"},
	{"consents",
		"SELECT json_strip_nulls(json_build_object('client', 'c' || r.client_id, 'scope', r.scope,"
		" 'given_on', r.given_on, 'withdrawn_on', r.withdrawn_on))::text"
		" FROM ips.consent r WHERE " CLIENT_FILTER("r.client_id") " ORDER BY r.consent_id"},
	{"employers",
		"SELECT json_strip_nulls(json_build_object('key', 'm' || m.employer_id, 'name', m.name,"
		" 'business_id', m.business_id::text, 'industry', m.industry))::text"
		" FROM ips.employer m WHERE ($1::bigint IS NULL AND $2::bigint IS NULL) OR m.employer_id IN ("
		"  SELECT j.employer_id FROM ips.job j JOIN ips.episode e ON e.episode_id = j.episode_id WHERE " EPISODE_FILTER
		"  UNION SELECT x.employer_id FROM ips.employer_contact x JOIN ips.episode e ON e.episode_id = x.episode_id"
		"   WHERE " EPISODE_FILTER
		"  UNION SELECT x.employer_id FROM ips.employer_contact x JOIN ips.staff s ON s.staff_id = x.staff_id"
		"   WHERE x.episode_id IS NULL AND $1::bigint IS NULL AND s.team_id = $2::bigint)"
		" ORDER BY m.employer_id"},
	{"episodes",
		"SELECT json_strip_nulls(json_build_object("
		" 'key', 'e' || e.episode_id, 'client', 'c' || e.client_id, 'team', 't' || e.team_id,"
		" 'referred_on', e.referred_on, 'source', e.referral_source, 'out_of_work_at_entry', e.out_of_work_at_entry,"
		" 'specialists', (SELECT json_agg(json_build_object('staff', 's' || a.staff_id, 'from_on', a.from_on)"
		"   ORDER BY a.from_on, a.assignment_id) FROM ips.specialist_assignment a WHERE a.episode_id = e.episode_id),"
		" 'career_profile_on', e.career_profile_on,"
		" 'events', coalesce((SELECT json_agg(json_build_object('at', " TS("h.at") ", 'to', h.to_state, 'reason', h.reason)"
		"   ORDER BY h.at, h.history_id) FROM ips.episode_state_history h WHERE h.episode_id = e.episode_id"
		"   AND h.from_state IS NOT NULL"
		"   AND coalesce(h.reason, '') NOT IN ('job started', 'job ended', 'studies started', 'studies ended')), '[]'),"
		" 'jobs', (SELECT json_agg(json_build_object('employer', 'm' || j.employer_id, 'starts_on', j.starts_on,"
		"   'kind', j.kind, 'occupation', j.occupation, 'hours_per_week', j.hours_per_week, 'title', j.title,"
		"   'ends_on', j.ends_on, 'end_reason', j.end_reason) ORDER BY j.starts_on, j.job_id)"
		"   FROM ips.job j WHERE j.episode_id = e.episode_id),"
		" 'studies', (SELECT json_agg(json_build_object('starts_on', s.starts_on, 'ends_on', s.ends_on,"
		"   'programme', s.programme) ORDER BY s.starts_on, s.study_id) FROM ips.study s WHERE s.episode_id = e.episode_id),"
		" 'contacts', (SELECT json_agg(json_build_object('staff', 's' || c.staff_id, 'at', " TS("c.at") ","
		"   'kind', c.kind, 'mode', c.mode, 'setting', c.setting, 'minutes', c.minutes) ORDER BY c.at, c.contact_id)"
		"   FROM ips.contact c WHERE c.episode_id = e.episode_id),"
		" 'employer_contacts', (SELECT json_agg(json_build_object('staff', 's' || x.staff_id, 'employer', 'm' || x.employer_id,"
		"   'at', " TS("x.at") ", 'in_person', x.in_person, 'by_client', x.by_client, 'competitive', x.competitive)"
		"   ORDER BY x.at, x.employer_contact_id) FROM ips.employer_contact x WHERE x.episode_id = e.episode_id)"
		"))::text FROM ips.episode e WHERE " EPISODE_FILTER " ORDER BY e.episode_id"},
	{"employer_contacts",
		"SELECT json_build_object('staff', 's' || x.staff_id, 'employer', 'm' || x.employer_id, 'at', " TS("x.at") ","
		" 'in_person', x.in_person, 'competitive', x.competitive)::text"
		" FROM ips.employer_contact x JOIN ips.staff s ON s.staff_id = x.staff_id"
		" WHERE x.episode_id IS NULL AND $1::bigint IS NULL AND ($2::bigint IS NULL OR s.team_id = $2::bigint)"
		" ORDER BY x.at, x.employer_contact_id"},
	{"team_meetings",
		"SELECT json_build_object('team', 't' || m.team_id, 'met_on', m.met_on,"
		" 'attendees', json_agg('s' || m.staff_id ORDER BY m.staff_id))::text"
		" FROM ips.team_meeting m WHERE $1::bigint IS NULL AND ($2::bigint IS NULL OR m.team_id = $2::bigint)"
		" GROUP BY m.team_id, m.met_on ORDER BY m.met_on, m.team_id"},
};

static const char *const fhir_queries[] = {
	/* Organization per team */
	"SELECT json_build_object('fullUrl', 'urn:uuid:' || md5('ips-team-' || t.team_id)::uuid,"
	" 'resource', json_build_object('resourceType', 'Organization', 'id', 'ips-team-' || t.team_id,"
	"  'identifier', json_build_array(json_build_object('system', 'urn:ips:team', 'value', t.team_id::text)),"
	"  'active', true, 'name', t.name,"
	"  'address', json_build_array(json_build_object('district', t.region, 'country', 'FI'))))::text"
	" FROM ips.team t WHERE " TEAM_FILTER " ORDER BY t.team_id",
	/* EpisodeOfCare per episode: the mapping lives in the extension (ips.episode_fhir) */
	"SELECT json_build_object('fullUrl', 'urn:uuid:' || md5('ips-episode-' || e.episode_id)::uuid,"
	" 'resource', ips.episode_fhir(e.episode_id))::text"
	" FROM ips.episode e WHERE " EPISODE_FILTER " ORDER BY e.episode_id",
	/* Encounter per contact (ips.encounter_fhir) */
	"SELECT json_build_object('fullUrl', 'urn:uuid:' || md5('ips-contact-' || x.contact_id)::uuid,"
	" 'resource', ips.encounter_fhir(x.contact_id))::text"
	" FROM ips.contact x JOIN ips.episode e ON e.episode_id = x.episode_id"
	" WHERE " EPISODE_FILTER " ORDER BY x.episode_id, x.at, x.contact_id",
};

/*
 * Runs a query in single-row mode and writes column 0 of each row, separated
 * by commas and newlines; *first tracks the comma.  Returns false on error.
 */
static bool
stream_rows(PGconn *conn, const char *sql, const char *const *params, FILE *out, bool *first)
{
	PGresult   *res;
	bool		ok = true;

	if (!PQsendQueryParams(conn, sql, 2, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(conn))
	{
		fprintf(stderr, "%s: could not send a query: %s", progname, PQerrorMessage(conn));
		return false;
	}
	while ((res = PQgetResult(conn)) != NULL)
	{
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_SINGLE_TUPLE)
		{
			fputs(*first ? "\n" : ",\n", out);
			fputs(PQgetvalue(res, 0, 0), out);
			*first = false;
		}
		else if (st != PGRES_TUPLES_OK && ok)
		{
			print_pg_error("export failed", res, conn);
			ok = false;
		}
		PQclear(res);
	}
	return ok;
}

/* Checks that an id given with --episode or --team exists. */
static bool
check_exists(PGconn *conn, const char *sql, const char *id, const char *what, int *rc)
{
	const char *params[1] = {id};
	PGresult   *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
	bool		ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		print_pg_error("export failed", res, conn);
	else if (!ok)
		fprintf(stderr, "%s: no %s with id %s\n", progname, what, id);
	PQclear(res);
	if (!ok)
		*rc = EXIT_DATA;
	return ok;
}

static const char *export_help =
"ipsctl export: write episodes as an import document (default) or as an\n"
"HL7 FHIR R4 Bundle (--fhir).\n"
"\n"
"Usage:\n"
"  ipsctl export [OPTIONS] [--episode N | --team N]\n"
"\n"
"Options:\n"
"  -d, --dbname=CONNINFO  database to connect to (default: PG* environment)\n"
"  --fhir                 a FHIR R4 Bundle (type collection): an Organization per\n"
"                         team, an EpisodeOfCare per episode (FI Base profile),\n"
"                         an Encounter per contact\n"
"  --episode N            only episode N\n"
"  --team N               only the episodes of team N\n"
"  -o, --output=FILE      write to FILE instead of stdout\n"
"  --help                 show this help\n"
"\n"
"The import document of a whole database, read back with `ipsctl import`\n"
"into an empty database, gives the same episodes, states and facts.\n"
"\n"
"Exit codes: 0 ok, 1 data error (e.g. unknown id), 2 usage, 3 connection.\n";

/* ipsctl export: options, connection, one snapshot. */
int
cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"fhir", no_argument, NULL, 'f'},
		{"episode", required_argument, NULL, 'e'},
		{"team", required_argument, NULL, 't'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *conninfo = "";
	const char *episode = NULL,
			   *team = NULL,
			   *output = NULL;
	const char *params[2];
	bool		fhir = false;
	bool		ok = true;
	long long	v;
	int			c,
				rc;
	PGconn	   *conn;
	PGresult   *res;
	FILE	   *out = stdout;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:o:", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'f':
				fhir = true;
				break;
			case 'e':
			case 't':
				if (!parse_int_arg(optarg, 1, INT64_MAX, &v))
				{
					usage_error("export", "--%s needs a positive integer id, not \"%s\"",
								c == 'e' ? "episode" : "team", optarg);
					return EXIT_USAGE;
				}
				if (c == 'e')
					episode = optarg;
				else
					team = optarg;
				break;
			case 'o':
				output = optarg;
				break;
			case 'h':
				fputs(export_help, stdout);
				return EXIT_OK;
			default:
				usage_error("export", "unknown or incomplete option \"%s\"", argv[optind - 1]);
				return EXIT_USAGE;
		}
	}
	if (optind < argc)
	{
		usage_error("export", "unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if (episode && team)
	{
		usage_error("export", "give --episode or --team, not both");
		return EXIT_USAGE;
	}
	params[0] = episode;
	params[1] = team;

	conn = ips_connect(conninfo, &rc);
	if (conn == NULL)
		return rc;
	rc = EXIT_DATA;
	if (!extension_present(conn))
		goto done;
	/* one consistent snapshot for all the queries */
	res = PQexec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	PQclear(res);
	if ((episode && !check_exists(conn, "SELECT 1 FROM ips.episode WHERE episode_id = $1::bigint", episode, "episode", &rc)) ||
		(team && !check_exists(conn, "SELECT 1 FROM ips.team WHERE team_id = $1::bigint", team, "team", &rc)))
		goto done;
	if (output && (out = fopen(output, "w")) == NULL)
	{
		fprintf(stderr, "%s: could not open \"%s\" for writing: %m\n", progname, output);
		goto done;
	}
	if (fhir)
	{
		bool		first = true;

		res = PQexec(conn, "SELECT " TS("now()"));
		fputs("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"timestamp\":", out);
		json_put_string(out, PQresultStatus(res) == PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0) : NULL);
		PQclear(res);
		fputs(",\"entry\":[", out);
		for (size_t k = 0; ok && k < sizeof(fhir_queries) / sizeof(fhir_queries[0]); k++)
			ok = stream_rows(conn, fhir_queries[k], params, out, &first);
		if (ok)					/* a failed export stays unterminated, not valid */
			fputs("\n]}\n", out);
	}
	else
	{
		fputs("{\"format\":\"ips-import\",\"version\":1,\n\"meta\":{\"exported_by\":\"ipsctl export\"", out);
		if (episode)
			fprintf(out, ",\"episode\":%s", episode);
		if (team)
			fprintf(out, ",\"team\":%s", team);
		fputs("}", out);
		for (size_t k = 0; ok && k < sizeof(native_sections) / sizeof(native_sections[0]); k++)
		{
			bool		first = true;

			fprintf(out, ",\n\"%s\":[", native_sections[k][0]);
			ok = stream_rows(conn, native_sections[k][1], params, out, &first);
			if (ok)
				fputs("]", out);
		}
		if (ok)
			fputs("\n}\n", out);
	}
	if (fflush(out) != 0 || ferror(out))
	{
		fprintf(stderr, "%s: could not write the output\n", progname);
		ok = false;
	}
	if (out != stdout)
		fclose(out);
	if (ok)
		rc = EXIT_OK;
	res = PQexec(conn, "COMMIT");
	PQclear(res);
done:
	PQfinish(conn);
	return rc;
}
