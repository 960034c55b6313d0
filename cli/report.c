/*
 * report.c
 *		ipsctl alerts | fidelity | outcomes: a parameterised query, its result
 *		as a table, and formatters for text (aligned, UTF-8 width aware),
 *		json, csv and html (fidelity: a self-contained page with an inline
 *		SVG bar chart).  The formatters work with whatever columns come back.
 */
#include "ipsctl.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

typedef enum
{
	FMT_TEXT, FMT_JSON, FMT_CSV, FMT_HTML
} Format;

/* Column headings in fi, sv, en for the columns we know; others print as named. */
static const char *const headings[][4] = {
	{"episode_id", "jakso", "period", "episode"},
	{"staff_id", "työntekijä", "personal", "staff"},
	{"rule", "sääntö", "regel", "rule"},
	{"rule_label", "sääntö", "regel", "rule"},
	{"due_on", "määräpäivä", "förfallodag", "due on"},
	{"days_overdue", "myöhässä pv", "dagar försenad", "days overdue"},
	{"severity", "vakavuus", "allvarlighet", "severity"},
	{"item", "osio", "punkt", "item"},
	{"item_label", "osio", "punkt", "item"},
	{"score", "pisteet", "poäng", "score"},
	{"source", "lähde", "källa", "source"},
	{"measure", "mittari", "mått", "measure"},
	{"evidence", "näyttö", "underlag", "evidence"},
	{"team_id", "tiimi", "team", "team"},
	{"quarter", "neljännes", "kvartal", "quarter"},
	{"total", "yhteensä", "totalt", "total"},
	{"items_scored", "pisteytetyt osiot", "bedömda punkter", "items scored"},
	{"band", "taso", "nivå", "band"},
	{"client_ref", "asiakas", "klient", "client"},
	{"specialist", "työhönvalmentaja", "arbetstränare", "specialist"},
	{"severity_label", "vakavuus", "allvarlighet", "severity"},
	{"team_name", "tiimi", "team", "team"},
	{"clients_served", "asiakkaita", "klienter", "served"},
	{"clients_working", "työssä", "i arbete", "working"},
	{"employment_rate", "työllisyys %", "sysselsättning %", "employment %"},
	{"employment_rate_out_of_work", "työttömänä aloittaneet %", "utan arbete vid start %", "out of work at entry %"},
	{"job_starts", "aloitetut työt", "jobbstarter", "job starts"},
	{"clients_first_job", "ensimmäinen työ", "första jobb", "first jobs"},
	{"median_days_to_first_job", "mediaani pv", "median dagar", "median days to job"},
	{"retention_90_rate", "90 pv pysyvyys %", "kvar 90 d %", "90-day retention %"},
	{"closures", "päättyneet", "avslutade", "closures"},
};

/* The heading of a column in a language (0 = fi, 1 = sv, 2 = en). */
static const char *
heading(const char *col, int lang)
{
	for (size_t i = 0; i < sizeof(headings) / sizeof(headings[0]); i++)
		if (strcmp(headings[i][0], col) == 0)
			return headings[i][lang + 1];
	return col;
}

/* True for the type oids of numbers (int2/4/8, float4/8, numeric). */
static bool
is_numeric_type(Oid t)
{
	return t == 20 || t == 21 || t == 23 || t == 700 || t == 701 || t == 1700;
}

/* True for json and jsonb. */
static bool
is_json_type(Oid t)
{
	return t == 114 || t == 3802;
}

/* Writes a string padded to a display width. */
static void
put_padded(FILE *out, const char *s, size_t width, bool right)
{
	size_t		w = utf8_width(s);

	if (right)
		for (size_t i = w; i < width; i++)
			putc(' ', out);
	fputs(s, out);
	if (!right)
		for (size_t i = w; i < width; i++)
			putc(' ', out);
}

/* A cell for text output: cut to max display columns (on a character boundary). */
static char *
text_cell(const char *s, size_t max)
{
	size_t		len = strlen(s);
	char	   *r = malloc(len + 4);
	size_t		cols = 0,
				i;

	if (r == NULL)
		return NULL;
	for (i = 0; s[i]; i++)
	{
		if (((unsigned char) s[i] & 0xC0) != 0x80 && ++cols > max)
			break;
		r[i] = (s[i] == '\n' || s[i] == '\t') ? ' ' : s[i];
	}
	if (s[i])
	{
		memcpy(r + i, "…", strlen("…") + 1);
		return r;
	}
	r[i] = '\0';
	return r;
}

/* Aligned table for a terminal. */
static void
format_text(FILE *out, const PGresult *res, int lang)
{
	int			nf = PQnfields(res),
				nt = PQntuples(res);
	size_t	   *w = calloc(nf, sizeof(size_t));

	if (w == NULL)
		return;
	for (int f = 0; f < nf; f++)
	{
		w[f] = utf8_width(heading(PQfname(res, f), lang));
		for (int r = 0; r < nt; r++)
		{
			char	   *c = text_cell(PQgetvalue(res, r, f), 60);

			if (c && utf8_width(c) > w[f])
				w[f] = utf8_width(c);
			free(c);
		}
	}
	for (int f = 0; f < nf; f++)
	{
		if (f)
			fputs("  ", out);
		put_padded(out, heading(PQfname(res, f), lang), f == nf - 1 ? 0 : w[f], false);
	}
	putc('\n', out);
	for (int f = 0; f < nf; f++)
	{
		if (f)
			fputs("  ", out);
		for (size_t i = 0; i < w[f]; i++)
			putc('-', out);
	}
	putc('\n', out);
	for (int r = 0; r < nt; r++)
	{
		for (int f = 0; f < nf; f++)
		{
			char	   *c = text_cell(PQgetvalue(res, r, f), 60);
			bool		right = is_numeric_type(PQftype(res, f));

			if (f)
				fputs("  ", out);
			put_padded(out, c ? c : "", (f == nf - 1 && !right) ? 0 : w[f], right);
			free(c);
		}
		putc('\n', out);
	}
	fprintf(out, "(%d %s)\n", nt, lang == 0 ? "riviä" : lang == 1 ? "rader" : (nt == 1 ? "row" : "rows"));
	free(w);
}

/* One row as a JSON object (numbers, booleans and json kept as such). */
static void
json_row(FILE *out, const PGresult *res, int r)
{
	putc('{', out);
	for (int f = 0; f < PQnfields(res); f++)
	{
		Oid			t = PQftype(res, f);
		const char *v = PQgetvalue(res, r, f);

		if (f)
			putc(',', out);
		json_put_string(out, PQfname(res, f));
		putc(':', out);
		if (PQgetisnull(res, r, f))
			fputs("null", out);
		else if (t == 16)
			fputs(v[0] == 't' ? "true" : "false", out);
		else if ((is_numeric_type(t) && strcmp(v, "NaN") != 0 && strstr(v, "Infinity") == NULL) || is_json_type(t))
			fputs(v, out);
		else
			json_put_string(out, v);
	}
	putc('}', out);
}

/* A JSON array of row objects. */
static void
format_json(FILE *out, const PGresult *res, const PGresult *summary)
{
	if (summary)
		fputs("{\"items\":", out);
	fputs("[", out);
	for (int r = 0; r < PQntuples(res); r++)
	{
		fputs(r ? ",\n" : "\n", out);
		json_row(out, res, r);
	}
	fputs("\n]", out);
	if (summary && PQntuples(summary) == 1)
	{
		fputs(",\n\"summary\":", out);
		json_row(out, summary, 0);
	}
	else if (summary)
		fputs(",\n\"summary\":null", out);
	if (summary)
		fputs("}", out);
	putc('\n', out);
}

/* A CSV field, quoted when needed (RFC 4180). */
static void
csv_field(FILE *out, const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL)
	{
		fputs(s, out);
		return;
	}
	putc('"', out);
	for (; *s; s++)
	{
		if (*s == '"')
			putc('"', out);
		putc(*s, out);
	}
	putc('"', out);
}

/* CSV with a header row of column names. */
static void
format_csv(FILE *out, const PGresult *res)
{
	for (int f = 0; f < PQnfields(res); f++)
	{
		if (f)
			putc(',', out);
		csv_field(out, PQfname(res, f));
	}
	fputs("\r\n", out);
	for (int r = 0; r < PQntuples(res); r++)
	{
		for (int f = 0; f < PQnfields(res); f++)
		{
			if (f)
				putc(',', out);
			if (!PQgetisnull(res, r, f))
				csv_field(out, PQgetvalue(res, r, f));
		}
		fputs("\r\n", out);
	}
}

/* Text escaped for HTML. */
static void
html_text(FILE *out, const char *s)
{
	for (; *s; s++)
	{
		switch (*s)
		{
			case '<':
				fputs("&lt;", out);
				break;
			case '>':
				fputs("&gt;", out);
				break;
			case '&':
				fputs("&amp;", out);
				break;
			case '"':
				fputs("&quot;", out);
				break;
			default:
				putc(*s, out);
		}
	}
}

/* The column number of a name, or -1. */
static int
column(const PGresult *res, const char *name)
{
	return PQfnumber(res, name);
}

/* A horizontal bar chart of the item scores (1..5) as inline SVG. */
static void
fidelity_svg(FILE *out, const PGresult *res)
{
	int			ci = column(res, "item"),
				cl = column(res, "item_label"),
				cs = column(res, "score"),
				cr = column(res, "source");
	int			nt = PQntuples(res);
	int			bar = 18,
				gap = 6,
				left = 330,
				unit = 80;
	int			height = nt * (bar + gap) + 40;

	if (ci < 0 || cs < 0)
		return;
	fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\""
			" aria-label=\"IPS-25 item scores\" font-family=\"sans-serif\" font-size=\"12\">\n",
			left + 5 * unit + 40, height);
	for (int s = 0; s <= 5; s++)
		fprintf(out, "<line x1=\"%d\" y1=\"0\" x2=\"%d\" y2=\"%d\" stroke=\"#ccc\"/>"
				"<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n",
				left + s * unit, left + s * unit, nt * (bar + gap), left + s * unit, nt * (bar + gap) + 16, s);
	for (int r = 0; r < nt; r++)
	{
		int			y = r * (bar + gap);
		int			score = PQgetisnull(res, r, cs) ? 0 : atoi(PQgetvalue(res, r, cs));
		const char *src = cr >= 0 ? PQgetvalue(res, r, cr) : "";
		const char *color = strcmp(src, "computed") == 0 ? "#2b6cb0" :
			strcmp(src, "rated") == 0 ? "#2f855a" : "#a0aec0";

		fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 8, y + bar - 5);
		html_text(out, PQgetvalue(res, r, ci));
		if (cl >= 0 && strcmp(PQgetvalue(res, r, cl), PQgetvalue(res, r, ci)) != 0)
		{
			char	   *c = text_cell(PQgetvalue(res, r, cl), 40);

			fputs(" ", out);
			html_text(out, c ? c : "");
			free(c);
		}
		fputs("</text>\n", out);
		if (score > 0)
			fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>%d</title></rect>"
					"<text x=\"%d\" y=\"%d\">%d</text>\n",
					left, y, score * unit, bar, color, score, left + score * unit + 4, y + bar - 5, score);
		else
			fprintf(out, "<text x=\"%d\" y=\"%d\" fill=\"#718096\">–</text>\n", left + 4, y + bar - 5);
	}
	fputs("</svg>\n", out);
}

/* A self-contained HTML page: optional chart, the table, the summary. */
static void
format_html(FILE *out, const PGresult *res, const PGresult *summary, const char *title, int lang, bool chart)
{
	static const char *const langs[] = {"fi", "sv", "en"};

	fprintf(out, "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n<meta charset=\"utf-8\">\n<title>", langs[lang]);
	html_text(out, title);
	fputs("</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
		  "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}td.n{text-align:right}</style>\n"
		  "</head>\n<body>\n<h1>", out);
	html_text(out, title);
	fputs("</h1>\n", out);
	if (summary && PQntuples(summary) == 1)
	{
		fputs("<p>", out);
		for (int f = 0; f < PQnfields(summary); f++)
		{
			fputs(f ? " · " : "", out);
			html_text(out, heading(PQfname(summary, f), lang));
			fputs(": <b>", out);
			html_text(out, PQgetisnull(summary, 0, f) ? "–" : PQgetvalue(summary, 0, f));
			fputs("</b>", out);
		}
		fputs("</p>\n", out);
	}
	if (chart)
		fidelity_svg(out, res);
	fputs("<table>\n<tr>", out);
	for (int f = 0; f < PQnfields(res); f++)
	{
		fputs("<th>", out);
		html_text(out, heading(PQfname(res, f), lang));
		fputs("</th>", out);
	}
	fputs("</tr>\n", out);
	for (int r = 0; r < PQntuples(res); r++)
	{
		fputs("<tr>", out);
		for (int f = 0; f < PQnfields(res); f++)
		{
			fputs(is_numeric_type(PQftype(res, f)) ? "<td class=\"n\">" : "<td>", out);
			html_text(out, PQgetvalue(res, r, f));
			fputs("</td>", out);
		}
		fputs("</tr>\n", out);
	}
	fputs("</table>\n</body>\n</html>\n", out);
}

static const char *report_help =
"ipsctl alerts | fidelity | outcomes: reports of the ips extension.\n"
"\n"
"Usage:\n"
"  ipsctl alerts   [OPTIONS] [--as-of DATE] [--team N]\n"
"  ipsctl fidelity [OPTIONS] --team N --from DATE --to DATE\n"
"  ipsctl outcomes [OPTIONS] [--team N]\n"
"\n"
"Options:\n"
"  -d, --dbname=CONNINFO   database to connect to (default: PG* environment)\n"
"  --format=text|json|csv|html   output format (default text; html draws the\n"
"                          fidelity items as an inline SVG bar chart)\n"
"  --lang=fi|sv|en         language of labels and headings (default en)\n"
"  --as-of=DATE            alerts: the day to evaluate (default today)\n"
"  --team=N                only team N\n"
"  --from=DATE --to=DATE   fidelity: the review period\n"
"  --help                  show this help\n"
"\n"
"Sources: ips.contact_alerts(as_of, team_id), ips.fidelity(team, from, to) and\n"
"ips.fidelity_summary(...), the view ips.outcomes_quarterly; labels from\n"
"ips.label(code, lang).\n"
"\n"
"Exit codes: 0 ok, 1 data or server error, 2 usage, 3 connection.\n";

/* ipsctl alerts | fidelity | outcomes. */
int
cmd_report(const char *which, int argc, char **argv)
{
	static const struct option opts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"format", required_argument, NULL, 'f'},
		{"lang", required_argument, NULL, 'l'},
		{"as-of", required_argument, NULL, 'a'},
		{"team", required_argument, NULL, 't'},
		{"from", required_argument, NULL, 'F'},
		{"to", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	static const char *const langs[] = {"fi", "sv", "en"};
	const char *conninfo = "";
	const char *as_of = NULL,
			   *team = NULL,
			   *from = NULL,
			   *to = NULL;
	Format		fmt = FMT_TEXT;
	int			lang = 2;
	int			c,
				rc,
				days;
	long long	v;
	PGconn	   *conn;
	PGresult   *res = NULL,
			   *summary = NULL;
	bool		fidelity = strcmp(which, "fidelity") == 0;
	bool		alerts = strcmp(which, "alerts") == 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'f':
				if (strcmp(optarg, "text") == 0)
					fmt = FMT_TEXT;
				else if (strcmp(optarg, "json") == 0)
					fmt = FMT_JSON;
				else if (strcmp(optarg, "csv") == 0)
					fmt = FMT_CSV;
				else if (strcmp(optarg, "html") == 0)
					fmt = FMT_HTML;
				else
				{
					usage_error(which, "--format must be text, json, csv or html, not \"%s\"", optarg);
					return EXIT_USAGE;
				}
				break;
			case 'l':
				for (lang = 0; lang < 3 && strcmp(optarg, langs[lang]) != 0; lang++)
					;
				if (lang == 3)
				{
					usage_error(which, "--lang must be fi, sv or en, not \"%s\"", optarg);
					return EXIT_USAGE;
				}
				break;
			case 'a':
			case 'F':
			case 'T':
				if (!parse_date(optarg, &days) || (c == 'a' && !alerts) || (c != 'a' && !fidelity))
				{
					usage_error(which, c == 'a' ? "--as-of needs a date YYYY-MM-DD (alerts only)"
								: "--from and --to need a date YYYY-MM-DD (fidelity only)");
					return EXIT_USAGE;
				}
				if (c == 'a')
					as_of = optarg;
				else if (c == 'F')
					from = optarg;
				else
					to = optarg;
				break;
			case 't':
				if (!parse_int_arg(optarg, 1, INT64_MAX, &v))
				{
					usage_error(which, "--team needs a positive integer id, not \"%s\"", optarg);
					return EXIT_USAGE;
				}
				team = optarg;
				break;
			case 'h':
				fputs(report_help, stdout);
				return EXIT_OK;
			default:
				usage_error(which, "unknown or incomplete option \"%s\"", argv[optind - 1]);
				return EXIT_USAGE;
		}
	}
	if (optind < argc)
	{
		usage_error(which, "unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if (fidelity && (!team || !from || !to))
	{
		usage_error(which, "--team, --from and --to are required");
		return EXIT_USAGE;
	}
	if (fmt == FMT_HTML && !fidelity)
	{
		usage_error(which, "--format html is for fidelity; use text, json or csv");
		return EXIT_USAGE;
	}

	conn = ips_connect(conninfo, &rc);
	if (conn == NULL)
		return rc;
	rc = EXIT_DATA;
	if (!extension_present(conn))
		goto done;
	if (alerts)
	{
		const char *p[3] = {as_of, team, langs[lang]};

		if (fmt == FMT_TEXT)	/* what a coach reads: who, which rule, when */
			res = PQexecParams(conn,
							   "SELECT a.episode_id, a.client_ref, a.specialist, a.rule_label, a.due_on,"
							   " a.days_overdue, a.severity_label"
							   " FROM ips.contact_alerts_labelled(coalesce($1::date, current_date), $2::bigint, $3) a"
							   " ORDER BY a.due_on, a.episode_id, a.rule",
							   3, NULL, p, NULL, NULL, 0);
		else
			res = PQexecParams(conn,
							   "SELECT a.*, ips.label(a.rule, $3) AS rule_label"
							   " FROM ips.contact_alerts(coalesce($1::date, current_date), $2::bigint) a"
							   " ORDER BY a.due_on, a.episode_id, a.rule",
							   3, NULL, p, NULL, NULL, 0);
	}
	else if (fidelity)
	{
		const char *p[4] = {team, from, to, langs[lang]};

		if (fmt == FMT_TEXT)
		{
			/* the printed review sheet of the extension, line by line */
			res = PQexecParams(conn, "SELECT r FROM ips.fidelity_report($1::bigint, $2::date, $3::date, $4) r",
							   4, NULL, p, NULL, NULL, 0);
			if (PQresultStatus(res) == PGRES_TUPLES_OK)
			{
				for (int i = 0; i < PQntuples(res); i++)
					printf("%s\n", PQgetvalue(res, i, 0));
				rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_DATA;
				goto done;
			}
		}
		else
			res = PQexecParams(conn,
							   "SELECT f.item, ips.label(f.item, $4) AS item_label, f.score, f.source, f.measure, f.evidence"
							   " FROM ips.fidelity($1::bigint, $2::date, $3::date) f",
							   4, NULL, p, NULL, NULL, 0);
		if (fmt != FMT_TEXT && PQresultStatus(res) == PGRES_TUPLES_OK)
			summary = PQexecParams(conn, "SELECT * FROM ips.fidelity_summary($1::bigint, $2::date, $3::date)",
								   3, NULL, p, NULL, NULL, 0);
	}
	else
	{
		const char *p[1] = {team};

		if (fmt == FMT_TEXT)	/* the main measures; json and csv carry every column */
			res = PQexecParams(conn,
							   "SELECT o.team_name, o.quarter, o.clients_served, o.clients_working, o.employment_rate,"
							   " o.employment_rate_out_of_work, o.job_starts, o.clients_first_job,"
							   " o.median_days_to_first_job, o.retention_90_rate, o.closures"
							   " FROM ips.outcomes_quarterly o WHERE $1::bigint IS NULL OR o.team_id = $1::bigint"
							   " ORDER BY o.team_name, o.quarter_start",
							   1, NULL, p, NULL, NULL, 0);
		else
			res = PQexecParams(conn,
							   "SELECT o.* FROM ips.outcomes_quarterly o"
							   " WHERE $1::bigint IS NULL OR (to_jsonb(o) ->> 'team_id')::bigint = $1::bigint",
							   1, NULL, p, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		print_pg_error(which, res, conn);
		goto done;
	}
	if (summary && PQresultStatus(summary) != PGRES_TUPLES_OK)
	{
		print_pg_error(which, summary, conn);
		goto done;
	}
	switch (fmt)
	{
		case FMT_TEXT:
			format_text(stdout, res, lang);
			if (summary)
			{
				putc('\n', stdout);
				format_text(stdout, summary, lang);
			}
			break;
		case FMT_JSON:
			format_json(stdout, res, summary);
			break;
		case FMT_CSV:
			format_csv(stdout, res);
			break;
		case FMT_HTML:
			{
				char		title[160];

				snprintf(title, sizeof(title), "IPS-25 fidelity: team %s, %s – %s", team, from, to);
				format_html(stdout, res, summary, title, lang, true);
			}
			break;
	}
	rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_DATA;
done:
	PQclear(res);
	PQclear(summary);
	PQfinish(conn);
	return rc;
}
