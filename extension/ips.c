/*
 * ips.c
 *		Module entry point of the ips extension: settings (GUCs) and the
 *		helpers that the other C files share.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "catalog/pg_type.h"
#include "pgtime.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/datetime.h"
#include "utils/rls.h"
#include "utils/timestamp.h"

#include "ips.h"
#include "autonomous.h"
#include "ledger.h"

PG_MODULE_MAGIC;

char	   *ips_language = NULL;
static bool ips_restoring_setting = false;

/*
 * The names of the states the C code gives a meaning to (the enum in ips.h);
 * the list of states, its order and the allowed moves are ips.vocabulary's and
 * ips.state_transition's, and vocabulary.c checks that they name these states.
 */
const char *const ips_state_names[STATE_COUNT] = {
	"referred", "engaged", "job_search", "employed", "studying", "on_hold", "closed"
};

void		_PG_init(void);

/* Check hook of ips.language: only the languages that labels exist in. */
static bool
check_ips_language(char **newval, void **extra, GucSource source)
{
	if (strcmp(*newval, "fi") == 0 || strcmp(*newval, "sv") == 0 ||
		strcmp(*newval, "en") == 0)
		return true;
	GUC_check_errdetail("ips.language must be one of fi, sv, en; \"%s\" is not.", *newval);
	return false;
}

/* Define the extension's settings. */
void
_PG_init(void)
{
	DefineCustomStringVariable("ips.language",
							   "Language of the labels that ips shows (fi, sv, en).",
							   NULL,
							   &ips_language,
							   "en",
							   PGC_USERSET,
							   0,
							   check_ips_language, NULL, NULL);
	DefineCustomBoolVariable("ips.restoring",
							 "Lets pg_restore load ips rows without the guard triggers' checks.",
							 "Set it for the restoring session only: PGOPTIONS='-c ips.restoring=on' pg_restore ...",
							 &ips_restoring_setting,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	IpsAutonomousInit();
	IpsSealWorkerInit();
	MarkGUCPrefixReserved("ips");
}

/*
 * True while rows are being restored: ips.restoring is on, or the session is a
 * superuser's restore from pg_dump output, which pg_restore and a plain
 * pg_dump script set up with row_security = off and check_function_bodies =
 * false (so a restore without the option works, and never stops half-way).
 * Only a superuser gets the latter, and a superuser may set ips.restoring anyway.
 */
bool
IpsRestoring(void)
{
	return ips_restoring_setting || (!row_security && !check_function_bodies && superuser());
}

/* Index of a state name, or -1. */
int
IpsStateFromName(const char *name)
{
	for (int i = 0; i < STATE_COUNT; i++)
		if (strcmp(ips_state_names[i], name) == 0)
			return i;
	return -1;
}

static IpsPlan setting_plan = {
	NULL, "SELECT value FROM ips.setting WHERE name OPERATOR(pg_catalog.=) $1", 1, {TEXTOID}
};

/* Value of a setting as text (palloc'd in the caller's context), or NULL. */
char *
IpsSettingText(const char *name)
{
	Datum		arg = CStringGetTextDatum(name);
	int			rc;

	rc = SPI_execute_plan(IpsPreparePlan(&setting_plan), &arg, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading setting \"%s\" failed: %s", name, SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* Integer setting, with a default when the row is missing. */
int
IpsSettingInt(const char *name, int dflt)
{
	char	   *v = IpsSettingText(name);

	return v ? pg_strtoint32(v) : dflt;
}

/* Boolean setting, with a default when the row is missing. */
bool
IpsSettingBool(const char *name, bool dflt)
{
	char	   *v = IpsSettingText(name);
	bool		result;

	if (v == NULL || !parse_bool(v, &result))
		return dflt;
	return result;
}

/*
 * Local calendar date of an instant in the given time zone:
 * (ts AT TIME ZONE tz)::date.  The zone is resolved once per name and set
 * of abbreviations, as timestamptz_zone() resolves it for every value: a time zone
 * abbreviation (EET, UTC ...) is left to that function, a zone name is
 * looked up here and the instant converted directly.  The rules engine and
 * the fact guard convert every instant they read through this.
 */
DateADT
IpsLocalDate(TimestampTz ts, const char *tz)
{
	static char zone_name[TZ_STRLEN_MAX + 1];
	static char zone_abbrevs[MAXPGPATH];	/* timezone_abbreviations when it was resolved */
	static bool zone_valid = false;
	static pg_tz *zone;			/* NULL: an abbreviation, or unknown */
	const char *abbrevs = GetConfigOption("timezone_abbreviations", true, false);
	struct pg_tm tm;
	fsec_t		fsec;
	int			offset;
	Datum		local;

	/*
	 * The zone is resolved again when the name or the abbreviations in use
	 * change (a name may be an abbreviation under another set): kept across
	 * transactions, since pg_tzset's zones live as long as the backend.
	 */
	if (abbrevs == NULL)
		abbrevs = "";
	if (!zone_valid || strcmp(zone_name, tz) != 0 || strcmp(zone_abbrevs, abbrevs) != 0)
	{
		zone = NULL;
		zone_valid = false;
		if (strlen(tz) <= TZ_STRLEN_MAX && strlen(abbrevs) < sizeof(zone_abbrevs))
		{
			zone = IpsZoneByName(tz);
			strcpy(zone_name, tz);
			strcpy(zone_abbrevs, abbrevs);
			zone_valid = true;
		}
	}
	if (zone != NULL && !TIMESTAMP_NOT_FINITE(ts) &&
		timestamp2tm(ts, &offset, &tm, &fsec, NULL, zone) == 0 &&
		IS_VALID_JULIAN(tm.tm_year, tm.tm_mon, tm.tm_mday))
		return date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
	/* an abbreviation, or a value out of range: as SQL does it (with its errors) */
	local = DirectFunctionCall2(timestamptz_zone,
								CStringGetTextDatum(tz),
								TimestampTzGetDatum(ts));
	return DatumGetDateADT(DirectFunctionCall1(timestamp_date, local));
}
