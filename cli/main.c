/*
 * main.c
 *		ipsctl: command dispatch and the tool's usage text.
 */
#include "ipsctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *progname = "ipsctl";

static const char *main_help =
"ipsctl: command-line client of the ips PostgreSQL extension (IPS supported\n"
"employment).\n"
"\n"
"Usage:\n"
"  ipsctl COMMAND [OPTIONS]\n"
"  ipsctl COMMAND --help\n"
"\n"
"Commands:\n"
"  generate   write a deterministic synthetic region as an import document\n"
"  import     load an import document in one transaction\n"
"  export     write episodes as an import document or a FHIR R4 Bundle\n"
"  alerts     contact-rule alerts (ips.contact_alerts)\n"
"  fidelity   IPS-25 fidelity items of a team (ips.fidelity)\n"
"  outcomes   quarterly outcomes (ips.outcomes_quarterly)\n"
"\n"
"Connection options (as in psql, before or after the command):\n"
"  -h, --host=HOST         database server host or socket directory\n"
"  -p, --port=PORT         database server port\n"
"  -U, --username=USER     database user name\n"
"  -d, --dbname=DBNAME     database name, or a connection string or URI\n"
"  -W, --password          ask for the password\n"
"  -w, --no-password       never ask for a password\n"
"Without them the PG* environment variables (PGHOST, PGPORT, PGDATABASE,\n"
"PGUSER, PGSERVICE, ...), ~/.pg_service.conf and ~/.pgpass apply.\n"
"\n"
"Exit codes:\n"
"  0  success\n"
"  1  data error: bad input, or the server refused it (nothing was written)\n"
"  2  usage error: bad command line\n"
"  3  connection error\n"
"\n"
"The manual: man ipsctl (docs/ipsctl.md in the source).\n";

/* Prints a usage error for a command; the caller exits with EXIT_USAGE. */
void
usage_error(const char *cmd, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s%s%s: ", progname, cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"%s%s%s --help\" for more information.\n",
			progname, cmd ? " " : "", cmd ? cmd : "");
}

/* Parses a whole decimal integer within [min, max]. */
bool
parse_int_arg(const char *s, long long min, long long max, long long *out)
{
	char	   *end;
	long long	v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Runs the command named by the first argument. */
int
main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2)
	{
		usage_error(NULL, "no command given");
		return EXIT_USAGE;
	}
	if (!take_conn_options(&argc, argv))
		return EXIT_USAGE;
	if (argc < 2)
	{
		usage_error(NULL, "no command given");
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-?") == 0 ||
		strcmp(cmd, "help") == 0)
	{
		fputs(main_help, stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
	{
		printf("ipsctl (ips) %s\n", IPSCTL_VERSION);
		return EXIT_OK;
	}
	if (strcmp(cmd, "generate") == 0)
		return cmd_generate(argc - 1, argv + 1);
	if (strcmp(cmd, "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (strcmp(cmd, "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	if (strcmp(cmd, "alerts") == 0 || strcmp(cmd, "fidelity") == 0 ||
		strcmp(cmd, "outcomes") == 0)
		return cmd_report(cmd, argc - 1, argv + 1);
	usage_error(NULL, "unknown command \"%s\"", cmd);
	return EXIT_USAGE;
}
