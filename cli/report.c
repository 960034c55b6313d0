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
	{"staff_id", "työntekijä nro", "personal nr", "staff id"},
	{"rule", "sääntö (koodi)", "regel (kod)", "rule code"},
	{"rule_label", "sääntö", "regel", "rule"},
	{"due_on", "määräpäivä", "förfallodag", "due on"},
	{"days_overdue", "myöhässä pv", "dagar försenad", "days overdue"},
	{"severity", "vakavuus (koodi)", "allvarlighet (kod)", "severity code"},
	{"severity_label", "vakavuus", "allvarlighet", "severity"},
	{"client_ref", "asiakas", "klient", "client"},
	{"item", "osio", "punkt", "item"},
	{"item_label", "osion nimi", "punktens namn", "item name"},
	{"score", "pisteet", "poäng", "score"},
	{"source", "lähde", "källa", "source"},
	{"measure", "mittari", "mått", "measure"},
	{"evidence", "näyttö", "underlag", "evidence"},
	{"total", "yhteensä", "totalt", "total"},
	{"items_scored", "pisteytetyt osiot", "bedömda punkter", "items scored"},
	{"band", "taso", "nivå", "band"},
	{"team_id", "tiimi nro", "team nr", "team id"},
	{"team_name", "tiimi", "team", "team"},
	{"region", "hyvinvointialue", "välfärdsområde", "region"},
	{"quarter", "neljännes", "kvartal", "quarter"},
	{"quarter_start", "alkaa", "börjar", "quarter start"},
	{"quarter_end", "päättyy", "slutar", "quarter end"},
	{"clients_served", "asiakkaita", "klienter", "served"},
	{"clients_working", "työssä", "i arbete", "working"},
	{"employment_rate", "työllisyys %", "sysselsättning %", "employment %"},
	{"clients_served_out_of_work", "asiakkaita, työttömänä aloittaneet", "klienter utan arbete vid start", "served, out of work at entry"},
	{"clients_working_out_of_work", "työssä, työttömänä aloittaneet", "i arbete, utan arbete vid start", "working, out of work at entry"},
	{"employment_rate_out_of_work", "työttömänä aloittaneet %", "utan arbete vid start %", "out of work at entry %"},
	{"benchmark_minimal", "vertailu vähimmäis %", "jämförelse minimum %", "benchmark minimal %"},
	{"benchmark_average", "vertailu keskimäärin %", "jämförelse genomsnitt %", "benchmark average %"},
	{"benchmark_excellent", "vertailu erinomainen %", "jämförelse utmärkt %", "benchmark excellent %"},
	{"benchmark_uk", "vertailu UK %", "jämförelse UK %", "benchmark UK %"},
	{"job_starts", "aloitetut työt", "jobbstarter", "job starts"},
	{"clients_first_job", "ensimmäinen työ", "första jobb", "first jobs"},
	{"median_days_to_first_job", "mediaani pv", "median dagar", "median days to job"},
	{"education_starts", "aloitetut opinnot", "studiestarter", "education starts"},
	{"jobs_90_days_known", "työt, 90 pv kulunut", "jobb, 90 d förflutna", "jobs past 90 days"},
	{"jobs_retained_90_days", "työssä 90 pv", "kvar efter 90 d", "jobs kept 90 days"},
	{"retention_90_rate", "90 pv pysyvyys %", "kvar 90 d %", "90-day retention %"},
	{"closures", "päättyneet", "avslutade", "closures"},
	{"small_cell_threshold", "pienten lukujen raja", "gräns för små tal", "small-cell threshold"},
};

/*
 * Headings the server has labels for (ips.label): a closing reason's column
 * closed_<reason> is "<closed>: <reason>", the specialist column the role's
 * label, so that ipsctl keeps no copy of the extension's vocabulary.  Filled
 * by server_headings() for the columns of a result; NULL where none.
 */
static char **server_heading;
static char **server_col;
static int	server_heading_n;

/* The heading of a column in a language (0 = fi, 1 = sv, 2 = en). */
static const char *
heading(const char *col, int lang)
{
	for (int i = 0; i < server_heading_n; i++)
		if (server_heading[i] != NULL && strcmp(server_col[i], col) == 0)
			return server_heading[i];
	for (size_t i = 0; i < sizeof(headings) / sizeof(headings[0]); i++)
		if (strcmp(headings[i][0], col) == 0)
			return headings[i][lang + 1];
	return col;
}

/* Frees the server's headings. */
static void
free_server_headings(void)
{
	for (int i = 0; i < server_heading_n; i++)
	{
		free(server_heading[i]);
		free(server_col[i]);
	}
	free(server_heading);
	free(server_col);
	server_heading = NULL;
	server_col = NULL;
	server_heading_n = 0;
}

/*
 * Asks the server for the headings it has labels of, for the columns of res:
 * closed_<reason> as ips.label('closed') || ': ' || ips.label(reason), and
 * specialist as ips.label('specialist').  Columns without one keep ours.
 */
static void
server_headings(PGconn *conn, const PGresult *res, const char *lang)
{
	int			nf = PQnfields(res);

	free_server_headings();
	server_heading = calloc(nf > 0 ? nf : 1, sizeof(char *));
	server_col = calloc(nf > 0 ? nf : 1, sizeof(char *));
	if (server_heading == NULL || server_col == NULL)
	{
		free(server_heading);
		free(server_col);
		server_heading = server_col = NULL;
		return;
	}
	server_heading_n = nf;
	for (int f = 0; f < nf; f++)
	{
		const char *col = PQfname(res, f);
		const char *p[2] = {NULL, lang};
		PGresult   *r;

		if (strncmp(col, "closed_", 7) == 0)
		{
			p[0] = col + 7;
			r = PQexecParams(conn, "SELECT ips.label('closed', $2) || ': ' || ips.label($1, $2)"
							 " WHERE ips.label($1, $2) IS DISTINCT FROM $1",
							 2, NULL, p, NULL, NULL, 0);
		}
		else if (strcmp(col, "specialist") == 0)
		{
			p[0] = col;
			r = PQexecParams(conn, "SELECT ips.label($1, $2) WHERE ips.label($1, $2) IS DISTINCT FROM $1",
							 2, NULL, p, NULL, NULL, 0);
		}
		else
			continue;
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		{
			server_heading[f] = strdup(PQgetvalue(r, 0, 0));
			server_col[f] = strdup(col);
			if (server_col[f] == NULL)
			{
				free(server_heading[f]);
				server_heading[f] = NULL;
			}
		}
		PQclear(r);
	}
}

/*
 * A number as people read it in the language: in fi and sv the decimal
 * point becomes a comma (as ips.number_text does).  The result is malloc'd.
 */
static char *
local_number(const char *v, int lang)
{
	char	   *d = strdup(v);
	char	   *dot;

	if (d != NULL && lang != 2 && (dot = strchr(d, '.')) != NULL)
		*dot = ',';
	return d;
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

/*
 * Stored text made safe for a terminal: control characters (C0, DEL and the
 * C1 range U+0080..U+009F, which some terminals obey as well) are written as
 * escapes (\n, \t, \r, \xHH, \u0080), so that an escape sequence stored in
 * the database never reaches the terminal raw.  The result is malloc'd.
 */
char *
text_escape(const char *s)
{
	size_t		len = strlen(s);
	char	   *r = malloc(len * 6 + 1);
	char	   *o = r;

	if (r == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p == '\n')
			o += sprintf(o, "\\n");
		else if (*p == '\t')
			o += sprintf(o, "\\t");
		else if (*p == '\r')
			o += sprintf(o, "\\r");
		else if (*p < 0x20 || *p == 0x7f)
			o += sprintf(o, "\\x%02x", *p);
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		{
			o += sprintf(o, "\\u%04x", p[1]);
			p++;
		}
		else
			*o++ = (char) *p;
	}
	*o = '\0';
	return r;
}

/* A cell for text output: escaped, cut to max display columns (on a character boundary). */
static char *
text_cell(const char *raw, size_t max)
{
	char	   *s = text_escape(raw);
	size_t		len;
	char	   *r;
	size_t		cols = 0,
				i;

	if (s == NULL)
		return NULL;
	len = strlen(s);
	r = malloc(len + 4);
	if (r == NULL)
	{
		free(s);
		return NULL;
	}
	for (i = 0; s[i]; i++)
	{
		if (((unsigned char) s[i] & 0xC0) != 0x80 && ++cols > max)
			break;
		r[i] = s[i];
	}
	if (s[i])
		memcpy(r + i, "…", strlen("…") + 1);
	else
		r[i] = '\0';
	free(s);
	return r;
}

/* A value of a result for text output: numbers with the language's decimal mark, text escaped and cut. */
static char *
text_value(const PGresult *res, int r, int f, int lang)
{
	if (is_numeric_type(PQftype(res, f)) && !PQgetisnull(res, r, f))
		return local_number(PQgetvalue(res, r, f), lang);
	return text_cell(PQgetvalue(res, r, f), 60);
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
			char	   *c = text_value(res, r, f, lang);

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
			char	   *c = text_value(res, r, f, lang);
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

/* A CSV field, quoted when needed (RFC 4180, with the separator sep). */
static void
csv_field(FILE *out, const char *s, char sep)
{
	const char	special[] = {sep, '"', '\r', '\n', '\0'};

	if (strpbrk(s, special) == NULL)
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

/*
 * CSV with a header row.  In English: RFC 4180 with commas and the column
 * names.  In Finnish and Swedish as their spreadsheets open it: a UTF-8 byte
 * order mark (so that ä and å are read as UTF-8), ';' between values, decimal
 * commas, and the headings in that language.
 */
static void
format_csv(FILE *out, const PGresult *res, int lang)
{
	bool		local = lang != 2;
	char		sep = local ? ';' : ',';

	if (local)
		fputs("\xEF\xBB\xBF", out);
	for (int f = 0; f < PQnfields(res); f++)
	{
		if (f)
			putc(sep, out);
		csv_field(out, local ? heading(PQfname(res, f), lang) : PQfname(res, f), sep);
	}
	fputs("\r\n", out);
	for (int r = 0; r < PQntuples(res); r++)
	{
		for (int f = 0; f < PQnfields(res); f++)
		{
			const char *v = PQgetvalue(res, r, f);

			if (f)
				putc(sep, out);
			if (PQgetisnull(res, r, f))
				continue;
			if (local && is_numeric_type(PQftype(res, f)) && strchr(v, '.'))
			{
				char	   *d = local_number(v, lang);

				if (d == NULL)
					continue;
				csv_field(out, d, sep);
				free(d);
			}
			else
				csv_field(out, v, sep);
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

/* The words of the review sheet in fi, sv, en. */
enum
{
	W_PERIOD, W_LIVE, W_OPEN, W_CLOSED, W_REVIEWED_ON, W_CLOSED_ON, W_REVIEWERS,
	W_ITEM, W_SCORE, W_SOURCE, W_ANCHOR, W_EVIDENCE, W_TOTAL, W_SCORED, W_BAND,
	W_LEGEND, W_LEGEND_SCORE, W_LEGEND_SOURCE, W_LEGEND_ANCHOR, W_PLAN, W_ACTION,
	W_RESPONSIBLE, W_DUE, W_DONE, W_NO_ACTIONS, W_S, W_O, W_V, W_APPENDIX,
	W_APPENDIX_NOTE, W_PRINTED, W_BANDS, W_NOTE, W_NOT_SCORED, W_TEAM, W_ITEMS
};

static const char *const sheet_words[][3] = {
	[W_PERIOD] = {"Arviointijakso", "Bedömningsperiod", "Period"},
	[W_LIVE] = {"Ajantasaiset luvut: laskettu kirjauksista tulostuspäivänä, ei suljettua arviointia",
	"Aktuella siffror: beräknade ur journalerna på utskriftsdagen, ingen avslutad bedömning",
	"Live figures: computed from the records on the day printed; no closed review"},
	[W_OPEN] = {"Arviointi kesken (ei vielä suljettu): luvut laskettu kirjauksista tulostuspäivänä",
	"Bedömningen pågår (inte avslutad): siffrorna beräknade ur journalerna på utskriftsdagen",
	"Review open (not yet closed): figures computed from the records on the day printed"},
	[W_CLOSED] = {"Suljettu arviointi: luvut sellaisina kuin ne lukittiin", "Avslutad bedömning: siffrorna som de låstes",
	"Closed review: the figures as they were frozen"},
	[W_REVIEWED_ON] = {"arviointipäivä", "bedömningsdag", "reviewed on"},
	[W_CLOSED_ON] = {"suljettu", "avslutad", "closed on"},
	[W_REVIEWERS] = {"Arvioijat", "Bedömare", "Reviewers"},
	[W_ITEM] = {"Osio", "Punkt", "Item"},
	[W_SCORE] = {"Pisteet", "Poäng", "Score"},
	[W_SOURCE] = {"Lähde", "Källa", "Source"},
	[W_ANCHOR] = {"Saavutettu taso", "Uppnådd nivå", "Anchor reached"},
	[W_EVIDENCE] = {"Näyttö", "Underlag", "Evidence"},
	[W_TOTAL] = {"Yhteensä", "Totalt", "Total"},
	[W_SCORED] = {"pisteytettyjä osioita", "poängsatta punkter", "items scored"},
	[W_BAND] = {"Taso", "Nivå", "Band"},
	[W_LEGEND] = {"Selitteet", "Förklaringar", "Legend"},
	[W_LEGEND_SCORE] = {"Pisteet 1–5 (5 = kriteeri täyttyy kokonaan); väri pisteiden mukaan:",
	"Poäng 1–5 (5 = kriteriet uppfylls helt); färg efter poäng:",
	"Scores 1–5 (5 = criterion fully met); colour by score:"},
	[W_LEGEND_SOURCE] = {"Lähde: laskettu = kirjauksista laskettu, arvioitu = arvioijien pisteyttämä, puuttuu = ei vielä pisteytetty (–).",
	"Källa: beräknad = ur journalerna, bedömd = poängsatt av bedömarna, saknas = ännu inte poängsatt (–).",
	"Source: computed = from the records, rated = scored by the reviewers, missing = not scored yet (–)."},
	[W_LEGEND_ANCHOR] = {"Saavutettu taso: asteikon raja, jonka laskettu mittari saavutti.",
	"Uppnådd nivå: skalans gräns som det beräknade måttet nådde.",
	"Anchor reached: the scale's bound that the computed measure met."},
	[W_PLAN] = {"Toimenpidesuunnitelma", "Åtgärdsplan", "Action plan"},
	[W_ACTION] = {"Toimenpide", "Åtgärd", "Action"},
	[W_RESPONSIBLE] = {"Vastuuhenkilö", "Ansvarig", "Responsible"},
	[W_DUE] = {"Määräaika", "Senast", "Due"},
	[W_DONE] = {"Tehty", "Klar", "Done"},
	[W_NO_ACTIONS] = {"Ei kirjattuja toimenpiteitä.", "Inga åtgärder registrerade.", "No actions recorded."},
	[W_S] = {"Henkilöstö", "Personal", "Staffing"},
	[W_O] = {"Organisaatio", "Organisation", "Organisation"},
	[W_V] = {"Palvelut", "Tjänster", "Services"},
	[W_APPENDIX] = {"Liite: näytön yksityiskohdat", "Bilaga: underlagets detaljer", "Appendix: the evidence in detail"},
	[W_APPENDIX_NOTE] = {"(ei tulosteta)", "(skrivs inte ut)", "(not printed)"},
	[W_PRINTED] = {"Tulostettu", "Utskriven", "Printed"},
	[W_BANDS] = {"Tasot", "Nivåer", "Bands"},
	[W_NOTE] = {"huom.", "anm.", "note"},
	[W_NOT_SCORED] = {"ei pisteytetty", "inte poängsatt", "not scored"},
	[W_TEAM] = {"Tiimi", "Team", "Team"},
	[W_ITEMS] = {"Osiot", "Punkter", "Items"},
};

/*
 * The anchor a computed item reached, in the sheet's language: the anchors of
 * ips.fidelity_anchor are numbers with a unit (written here per language), and
 * V12's are words.
 */
static void
anchor_text(FILE *out, const char *item, int score, const char *anchor, int lang)
{
	static const char *const v12[6][3] = {
		{"", "", ""},
		{"ei tukea 1. kuukauden jälkeen", "inget stöd efter månad 1", NULL},
		{"< puolet saa tukea ≥ 4 kk", "< hälften får stöd ≥ 4 mån", NULL},
		{"≥ puolet saa tukea ≥ 4 kk", "≥ hälften får stöd ≥ 4 mån", NULL},
		{"1. kk viikoittain + kuukausittain ≥ 4 kk", "månad 1 varje vecka + varje månad ≥ 4 mån", NULL},
		{"täysi tukimalli", "fullt stödmönster", NULL},
	};
	static const char *const unit_s1[] = {"asiakasta / htv", "klienter / årsverke", "clients per FTE"};
	static const char *const unit_v6[] = {"työnantajakontaktia / valmentaja / viikko",
	"arbetsgivarkontakter / arbetstränare / vecka", "employer contacts per specialist per week"};
	static const char *const unit_days[] = {"pv", "dagar", "days"};
	size_t		len = strlen(anchor);

	if (strcmp(item, "V12") == 0 && score >= 1 && score <= 5 && v12[score][lang] != NULL)
		html_text(out, v12[score][lang]);
	else if (strcmp(item, "V4") == 0 && len > 2 && strcmp(anchor + len - 2, " d") == 0)
	{
		char	   *a = strdup(anchor);

		if (a == NULL)
			return;
		a[len - 2] = '\0';
		html_text(out, a);
		fprintf(out, " %s", unit_days[lang]);
		free(a);
	}
	else
	{
		html_text(out, anchor);
		if (strcmp(item, "S1") == 0)
			fprintf(out, " %s", unit_s1[lang]);
		else if (strcmp(item, "V6") == 0)
			fprintf(out, " %s", unit_v6[lang]);
	}
}

/* A string member of a JSON object, or "" (NULL for a JSON null when nullable). */
static const char *
jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

/* An integer member of a JSON object, or -1. */
static int
jint(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valueint : -1;
}

/* The colour of a score (1..5), grey for none. */
static const char *
score_colour(int score)
{
	static const char *const c[] = {"#d9d9d9", "#d7301f", "#fc8d59", "#fee08b", "#91cf60", "#1a9850"};

	return c[score >= 1 && score <= 5 ? score : 0];
}

/*
 * The review sheet for THL's review meeting as one self-contained HTML page
 * (no scripts, no external files): the team and region, the period, live or
 * closed (date, reviewers), a legend, the 25 items (score, anchor reached,
 * one line of evidence), total and band, the action plan; the evidence in
 * detail in an appendix shown on screen only.  Print CSS keeps it to at most
 * two A4 pages.
 */
static void
format_sheet(FILE *out, const cJSON *sh, int lang, const char *today)
{
	static const char *const langs[] = {"fi", "sv", "en"};
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(sh, "items");
	const cJSON *reviewers = cJSON_GetObjectItemCaseSensitive(sh, "reviewers");
	const cJSON *actions = cJSON_GetObjectItemCaseSensitive(sh, "actions");
	const cJSON *bands = cJSON_GetObjectItemCaseSensitive(sh, "bands");
	const cJSON *it;
	const char *status = jstr(sh, "status");
	char		section = 0;
	int			n;

#define W(w) sheet_words[w][lang]
	fprintf(out, "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n<meta charset=\"utf-8\">\n<title>", langs[lang]);
	html_text(out, jstr(sh, "title"));
	fputs(": ", out);
	html_text(out, jstr(sh, "team"));
	fputs("</title>\n<style>\n"
		  "@page{size:A4;margin:11mm 12mm}\n"
		  "body{font-family:'DejaVu Sans',Arial,sans-serif;font-size:9.5pt;color:#111;margin:1.5em;max-width:62em}\n"
		  "h1{font-size:15pt;margin:0 0 .2em}h2{font-size:11pt;margin:.8em 0 .3em}\n"
		  "p{margin:.2em 0}.meta{color:#333}.sum{font-size:10.5pt;margin:.5em 0;padding:.3em .5em;border:1px solid #999}\n"
		  "table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:1.5px 4px;text-align:left;vertical-align:top}\n"
		  "th{background:#eee}td.c{text-align:center;white-space:nowrap}tr.sec td{background:#f4f4f4;font-weight:bold}\n"
		  "td.code{white-space:nowrap;font-weight:bold}.sw{display:inline-block;width:1.1em;height:.9em;border:1px solid #777;vertical-align:middle;margin:0 .15em 0 .5em}\n"
		  "td.ev{font-size:8.5pt}.legend{font-size:8.5pt;color:#222}.appendix pre{white-space:pre-wrap;font-size:8pt}\n"
		  "@media print{body{margin:0;font-size:8.4pt;max-width:none}h1{font-size:13pt}h2{font-size:10pt;margin:.5em 0 .2em}"
		  "td.ev,.legend{font-size:7.6pt}.appendix{display:none}tr{break-inside:avoid}"
		  "td.ev div,td.act div{display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:3;overflow:hidden}"
		  "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\n"
		  "</style>\n</head>\n<body>\n<h1>", out);
	html_text(out, jstr(sh, "title"));
	fputs(": ", out);
	html_text(out, jstr(sh, "team"));
	fputs(" (", out);
	html_text(out, jstr(sh, "region"));
	fputs(")</h1>\n<p class=\"meta\">", out);
	fprintf(out, "%s: <b>%s – %s</b> · %s: %s</p>\n<p class=\"meta\"><b>", W(W_PERIOD),
			jstr(sh, "period_start"), jstr(sh, "period_end"), W(W_PRINTED), today);
	if (strcmp(status, "closed") == 0)
	{
		fprintf(out, "%s</b> (#%d; %s %s, %s %s)", W(W_CLOSED), jint(sh, "review_id"),
				W(W_REVIEWED_ON), jstr(sh, "reviewed_on"), W(W_CLOSED_ON), jstr(sh, "closed_on"));
	}
	else if (strcmp(status, "open") == 0)
		fprintf(out, "%s</b> (#%d; %s %s)", W(W_OPEN), jint(sh, "review_id"), W(W_REVIEWED_ON), jstr(sh, "reviewed_on"));
	else
		fprintf(out, "%s</b>", W(W_LIVE));
	fputs("</p>\n", out);
	if (cJSON_GetArraySize(reviewers) > 0)
	{
		fprintf(out, "<p class=\"meta\">%s: ", W(W_REVIEWERS));
		n = 0;
		cJSON_ArrayForEach(it, reviewers)
		{
			fputs(n++ ? ", " : "", out);
			html_text(out, jstr(it, "reviewer"));
			if (*jstr(it, "organisation"))
			{
				fputs(" (", out);
				html_text(out, jstr(it, "organisation"));
				fputs(")", out);
			}
		}
		fputs("</p>\n", out);
	}
	fprintf(out, "<p class=\"sum\">%s: <b>%d</b> / %d · %d/%d %s · %s: <b>", W(W_TOTAL), jint(sh, "total"),
			5 * jint(sh, "items_total"), jint(sh, "items_scored"), jint(sh, "items_total"), W(W_SCORED), W(W_BAND));
	html_text(out, jstr(sh, "band_label"));
	fputs("</b></p>\n", out);

	/* legend */
	fprintf(out, "<div class=\"legend\"><b>%s.</b> %s", W(W_LEGEND), W(W_LEGEND_SCORE));
	for (int sc = 5; sc >= 1; sc--)
		fprintf(out, "<span class=\"sw\" style=\"background:%s\"></span>%d", score_colour(sc), sc);
	fprintf(out, "<span class=\"sw\" style=\"background:%s\"></span>– %s. %s %s %s:",
			score_colour(0), W(W_NOT_SCORED), W(W_LEGEND_SOURCE), W(W_LEGEND_ANCHOR), W(W_BANDS));
	n = 0;
	cJSON_ArrayForEach(it, bands)
	{
		fprintf(out, "%s %d–%d ", n++ ? ";" : "", jint(it, "min"), jint(it, "max"));
		html_text(out, jstr(it, "label"));
	}
	fputs(".</div>\n", out);

	/* the items */
	fprintf(out, "<h2>%s</h2>\n<table>\n<tr><th colspan=\"2\">%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr>\n",
			W(W_ITEMS), W(W_ITEM), W(W_SCORE), W(W_SOURCE), W(W_ANCHOR), W(W_EVIDENCE));
	cJSON_ArrayForEach(it, items)
	{
		const char *code = jstr(it, "item");
		int			score = jint(it, "score");

		if (code[0] != section)
		{
			section = code[0];
			fprintf(out, "<tr class=\"sec\"><td colspan=\"6\">%s</td></tr>\n",
					W(section == 'S' ? W_S : section == 'O' ? W_O : W_V));
		}
		fputs("<tr><td class=\"code\">", out);
		html_text(out, code);
		fputs("</td><td>", out);
		html_text(out, jstr(it, "name"));
		fprintf(out, "</td><td class=\"c\" style=\"background:%s\">", score_colour(score));
		if (score > 0)
			fprintf(out, "<b>%d</b>", score);
		else
			fputs("–", out);
		fputs("</td><td>", out);
		html_text(out, jstr(it, "source_label"));
		fputs("</td><td>", out);
		if (*jstr(it, "anchor"))
			anchor_text(out, code, score, jstr(it, "anchor"), lang);
		fputs("</td><td class=\"ev\"><div>", out);
		html_text(out, jstr(it, "evidence_line"));
		if (*jstr(it, "note"))
		{
			fprintf(out, "%s<i>%s: ", *jstr(it, "evidence_line") ? "; " : "", W(W_NOTE));
			html_text(out, jstr(it, "note"));
			fputs("</i>", out);
		}
		fputs("</div></td></tr>\n", out);
	}
	fputs("</table>\n", out);

	/* the action plan */
	fprintf(out, "<h2>%s</h2>\n", W(W_PLAN));
	if (cJSON_GetArraySize(actions) == 0)
		fprintf(out, "<p>%s</p>\n", W(W_NO_ACTIONS));
	else
	{
		fprintf(out, "<table>\n<tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr>\n",
				W(W_ACTION), W(W_ITEM), W(W_RESPONSIBLE), W(W_DUE), W(W_DONE));
		cJSON_ArrayForEach(it, actions)
		{
			const char *cols[] = {"action", "item", "responsible", "due_on", "done_on"};

			fputs("<tr>", out);
			for (int k = 0; k < 5; k++)
			{
				fputs(k ? "<td class=\"c\">" : "<td class=\"act\"><div>", out);
				html_text(out, jstr(it, cols[k]));
				fputs(k ? "</td>" : "</div></td>", out);
			}
			fputs("</tr>\n", out);
		}
		fputs("</table>\n", out);
	}

	/* the evidence in detail: on screen only */
	fprintf(out, "<div class=\"appendix\">\n<h2>%s %s</h2>\n", W(W_APPENDIX), W(W_APPENDIX_NOTE));
	cJSON_ArrayForEach(it, items)
	{
		const cJSON *ev = cJSON_GetObjectItemCaseSensitive(it, "evidence");
		char	   *txt;

		if (ev == NULL || cJSON_IsNull(ev))
			continue;
		txt = cJSON_Print(ev);
		fputs("<details><summary>", out);
		html_text(out, jstr(it, "item"));
		fputs(" ", out);
		html_text(out, jstr(it, "name"));
		fputs("</summary><pre>", out);
		html_text(out, txt ? txt : "");
		fputs("</pre></details>\n", out);
		free(txt);
	}
	fputs("</div>\n</body>\n</html>\n", out);
#undef W
}

/* Prints stored text escaped for a terminal. */
static void
put_escaped(FILE *out, const char *s)
{
	char	   *e = text_escape(s);

	fputs(e ? e : "", out);
	free(e);
}

/*
 * The review sheet as text for a terminal, from the same ips.review_sheet as
 * the printed one: title, live or closed (date, reviewers), one line per item
 * (score, source, evidence, note), total, band, the action plan.
 */
static void
format_sheet_text(FILE *out, const cJSON *sh, int lang)
{
	const cJSON *it;
	const char *status = jstr(sh, "status");
	int			n = 0;

#define W(w) sheet_words[w][lang]
	put_escaped(out, jstr(sh, "title"));
	fputs(": ", out);
	put_escaped(out, jstr(sh, "team"));
	fputs(" (", out);
	put_escaped(out, jstr(sh, "region"));
	fprintf(out, ") · %s %s – %s\n", W(W_PERIOD), jstr(sh, "period_start"), jstr(sh, "period_end"));
	if (strcmp(status, "closed") == 0)
		fprintf(out, "%s (#%d; %s %s, %s %s)\n", W(W_CLOSED), jint(sh, "review_id"),
				W(W_REVIEWED_ON), jstr(sh, "reviewed_on"), W(W_CLOSED_ON), jstr(sh, "closed_on"));
	else if (strcmp(status, "open") == 0)
		fprintf(out, "%s (#%d; %s %s)\n", W(W_OPEN), jint(sh, "review_id"), W(W_REVIEWED_ON), jstr(sh, "reviewed_on"));
	else
		fprintf(out, "%s\n", W(W_LIVE));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(sh, "reviewers"))
	{
		fputs(n++ ? ", " : W(W_REVIEWERS), out);
		fputs(n == 1 ? ": " : "", out);
		put_escaped(out, jstr(it, "reviewer"));
		if (*jstr(it, "organisation"))
		{
			fputs(" (", out);
			put_escaped(out, jstr(it, "organisation"));
			fputs(")", out);
		}
	}
	if (n)
		fputs("\n", out);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(sh, "items"))
	{
		int			score = jint(it, "score");

		fprintf(out, "%-4s ", jstr(it, "item"));
		put_escaped(out, jstr(it, "name"));
		if (score > 0)
			fprintf(out, ": %d (", score);
		else
			fputs(": – (", out);
		put_escaped(out, jstr(it, "source_label"));
		fputs(")", out);
		if (*jstr(it, "evidence_line") || *jstr(it, "note"))
			fputs(" — ", out);
		put_escaped(out, jstr(it, "evidence_line"));
		if (*jstr(it, "note"))
		{
			fprintf(out, "%s%s: ", *jstr(it, "evidence_line") ? "; " : "", W(W_NOTE));
			put_escaped(out, jstr(it, "note"));
		}
		fputs("\n", out);
	}
	fprintf(out, "%s: %d (%d/%d %s)\n%s: ", W(W_TOTAL), jint(sh, "total"), jint(sh, "items_scored"),
			jint(sh, "items_total"), W(W_SCORED), W(W_BAND));
	put_escaped(out, jstr(sh, "band_label"));
	fputs("\n", out);
	n = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(sh, "actions"))
	{
		if (n++ == 0)
			fprintf(out, "%s:\n", W(W_PLAN));
		fputs("  - ", out);
		put_escaped(out, jstr(it, "action"));
		fputs(" (", out);
		put_escaped(out, jstr(it, "item"));
		if (*jstr(it, "responsible"))
		{
			fputs(", ", out);
			put_escaped(out, jstr(it, "responsible"));
		}
		if (*jstr(it, "due_on"))
			fprintf(out, ", %s %s", W(W_DUE), jstr(it, "due_on"));
		if (*jstr(it, "done_on"))
			fprintf(out, ", %s %s", W(W_DONE), jstr(it, "done_on"));
		fputs(")\n", out);
	}
#undef W
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
"  --format=text|json|csv|html   output format (default text; html: the\n"
"                          fidelity review sheet to print, at most 2 A4 pages)\n"
"  --lang=fi|sv|en         language of labels and headings (default en); csv\n"
"                          in fi and sv: ';' between values, decimal commas\n"
"  (and psql's connection options: -h HOST -p PORT -U USER -d DBNAME -W)\n"
"  --as-of=DATE            alerts: the day to evaluate (default today)\n"
"  --team=N                only team N\n"
"  --from=DATE --to=DATE   fidelity: the review period\n"
"  --help                  show this help\n"
"\n"
"Sources: ips.contact_alerts(as_of, team_id), ips.fidelity(team, from, to),\n"
"ips.fidelity_summary(...), ips.review_sheet(...) (text and html),\n"
"the view ips.outcomes_quarterly; labels from ips.label(code, lang).\n"
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

		if (fmt == FMT_HTML || fmt == FMT_TEXT)
		{
			/* the review sheet, to print or to read: everything from ips.review_sheet */
			res = PQexecParams(conn, "SELECT ips.review_sheet($1::bigint, $2::date, $3::date, $4)::text,"
							   " to_char(ips.local_date(now()), 'YYYY-MM-DD')",
							   4, NULL, p, NULL, NULL, 0);
			if (PQresultStatus(res) == PGRES_TUPLES_OK)
			{
				cJSON	   *sh = cJSON_Parse(PQgetvalue(res, 0, 0));

				if (sh == NULL)
				{
					fprintf(stderr, "%s: fidelity: the server's review sheet is not JSON\n", progname);
					goto done;
				}
				if (fmt == FMT_HTML)
					format_sheet(stdout, sh, lang, PQgetvalue(res, 0, 1));
				else
					format_sheet_text(stdout, sh, lang);
				cJSON_Delete(sh);
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
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		print_pg_error(which, res, conn);
		if (alerts && state && strcmp(state, "42501") == 0)
			fprintf(stderr, "%s: alerts name clients and specialists: they are for the staff of a team "
					"(ips_specialist, ips_supervisor, ips_clinician); ips_analyst reads fidelity and outcomes\n",
					progname);
		goto done;
	}
	if (summary && PQresultStatus(summary) != PGRES_TUPLES_OK)
	{
		print_pg_error(which, summary, conn);
		goto done;
	}
	if (fmt == FMT_TEXT || fmt == FMT_CSV)
		server_headings(conn, res, langs[lang]);
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
			format_csv(stdout, res, lang);
			break;
		case FMT_HTML:			/* fidelity only, written above */
			break;
	}
	rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_DATA;
done:
	free_server_headings();
	PQclear(res);
	PQclear(summary);
	PQfinish(conn);
	return rc;
}
