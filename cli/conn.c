/*
 * conn.c
 *		Connecting like psql, reporting server errors, and a libpq pipeline
 *		that remembers which JSON path each queued statement came from.
 */
#include "ipsctl.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PIPE_SYNC_EVERY		2000	/* statements between sync points */
#define PIPE_MAX_QUEUED		20000	/* wait for results beyond this */

ConnOptions conn_opts;

/* Takes the value of a connection option: "-hX", "-h X", "--host=X", "--host X". */
static int
conn_value(int argc, char **argv, int i, size_t skip, const char **val)
{
	if (argv[i][skip] != '\0')
	{
		*val = argv[i] + skip + (argv[i][skip] == '=' ? 1 : 0);
		return 1;
	}
	if (i + 1 >= argc)
		return -1;
	*val = argv[i + 1];
	return 2;
}

/*
 * Removes psql's connection options from anywhere on the command line (before
 * or after the command) into conn_opts: -h/--host, -p/--port, -U/--username,
 * -d/--dbname, -W/--password, -w/--no-password.  Returns false on a missing
 * value (a usage error).
 */
bool
take_conn_options(int *argc, char **argv)
{
	static const struct
	{
		char		sh;
		const char *lng;
		const char **dst;
	}			valued[] = {
		{'h', "--host", &conn_opts.host},
		{'p', "--port", &conn_opts.port},
		{'U', "--username", &conn_opts.user},
		{'d', "--dbname", &conn_opts.dbname},
	};
	int			i = 1;

	while (i < *argc)
	{
		const char *a = argv[i];
		int			used = 0;

		if (strcmp(a, "--") == 0)
			break;
		if (strcmp(a, "-W") == 0 || strcmp(a, "--password") == 0)
		{
			conn_opts.prompt_password = true;
			used = 1;
		}
		else if (strcmp(a, "-w") == 0 || strcmp(a, "--no-password") == 0)
		{
			conn_opts.no_password = true;
			used = 1;
		}
		else
			for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]) && used == 0; k++)
			{
				size_t		ll = strlen(valued[k].lng);

				if (a[0] == '-' && a[1] == valued[k].sh)
					used = conn_value(*argc, argv, i, 2, valued[k].dst);
				else if (strncmp(a, valued[k].lng, ll) == 0 && (a[ll] == '\0' || a[ll] == '='))
					used = conn_value(*argc, argv, i, ll, valued[k].dst);
				if (used < 0)
				{
					usage_error(NULL, "option \"%s\" needs a value", a);
					return false;
				}
			}
		if (used == 0)
		{
			i++;
			continue;
		}
		memmove(argv + i, argv + i + used, (*argc - i - used + 1) * sizeof(char *));
		*argc -= used;
	}
	return true;
}

/* Reads a password from the terminal without echo; NULL if there is none. */
static char *
prompt_password(void)
{
	FILE	   *tty = fopen("/dev/tty", "r+");
	struct termios old,
				quiet;
	static char buf[1024];
	bool		restore = false;

	if (tty == NULL)
		return NULL;
	/* echo off before the prompt shows, so that nothing typed after it is echoed */
	if (tcgetattr(fileno(tty), &old) == 0)
	{
		quiet = old;
		quiet.c_lflag &= ~ECHO;
		restore = tcsetattr(fileno(tty), TCSANOW, &quiet) == 0;
	}
	fputs("Password: ", tty);
	fflush(tty);
	if (fgets(buf, sizeof(buf), tty) == NULL)
		buf[0] = '\0';
	if (restore)
		tcsetattr(fileno(tty), TCSANOW, &old);
	fputc('\n', tty);
	fclose(tty);
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

/*
 * Connects like psql: the options of conn_opts (a dbname may be a connection
 * string or URI), then the PG* environment, PGSERVICE and ~/.pgpass; asks
 * for a password with -W, or when the server wants one and there is a terminal
 * (not with -w).  conninfo is a command's own -d (kept for the commands).
 */
PGconn *
ips_connect(const char *conninfo, int *exit_code)
{
	const char *keys[7];
	const char *vals[7];
	const char *password = NULL;
	PGconn	   *conn;
	int			n;

	if (conn_opts.prompt_password)
		password = prompt_password();
	for (;;)
	{
		n = 0;
		keys[n] = "host", vals[n++] = conn_opts.host;
		keys[n] = "port", vals[n++] = conn_opts.port;
		keys[n] = "user", vals[n++] = conn_opts.user;
		keys[n] = "password", vals[n++] = password;
		keys[n] = "dbname", vals[n++] = conn_opts.dbname ? conn_opts.dbname : (conninfo && *conninfo ? conninfo : NULL);
		keys[n] = "fallback_application_name", vals[n++] = "ipsctl";
		keys[n] = NULL, vals[n] = NULL;
		/* expand_dbname = 1: dbname may be a connection string or URI, as in psql */
		conn = PQconnectdbParams(keys, vals, 1);
		if (conn && PQstatus(conn) == CONNECTION_BAD && PQconnectionNeedsPassword(conn) &&
			password == NULL && !conn_opts.no_password)
		{
			password = prompt_password();
			if (password != NULL)
			{
				PQfinish(conn);
				continue;
			}
		}
		break;
	}
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s: could not connect to the database: %s", progname,
				conn ? PQerrorMessage(conn) : "out of memory\n");
		PQfinish(conn);
		*exit_code = EXIT_CONN;
		return NULL;
	}
	PQsetClientEncoding(conn, "UTF8");
	*exit_code = EXIT_OK;
	return conn;
}

/* Prints a server error with its SQLSTATE, detail and hint. */
void
print_pg_error(const char *what, const PGresult *res, PGconn *conn)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;

	if (msg == NULL)
		msg = PQerrorMessage(conn);
	fprintf(stderr, "%s: %s: %s", progname, what, msg);
	if (state)
		fprintf(stderr, " (SQLSTATE %s)", state);
	if (msg[0] == '\0' || msg[strlen(msg) - 1] != '\n')
		fputc('\n', stderr);
	if (detail)
		fprintf(stderr, "DETAIL: %s\n", detail);
	if (hint)
		fprintf(stderr, "HINT: %s\n", hint);
}

/* True when the extension ips is installed in the connected database. */
bool
extension_present(PGconn *conn)
{
	PGresult   *res = PQexec(conn, "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'ips'");
	bool		ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

	PQclear(res);
	if (!ok)
		fprintf(stderr, "%s: the extension ips is not installed in this database (CREATE EXTENSION ips)\n",
				progname);
	return ok;
}

/* True when a function with this regprocedure signature exists. */
bool
function_exists(PGconn *conn, const char *signature)
{
	const char *params[1] = {signature};
	PGresult   *res = PQexecParams(conn, "SELECT pg_catalog.to_regprocedure($1) IS NOT NULL",
								   1, NULL, params, NULL, NULL, 0);
	bool		ok = PQresultStatus(res) == PGRES_TUPLES_OK &&
		strcmp(PQgetvalue(res, 0, 0), "t") == 0;

	PQclear(res);
	return ok;
}

/* ---------------------------------------------------------------- pipeline */

/* Enters pipeline mode (non-blocking) on a connection. */
bool
pipe_begin(Pipeline *p, PGconn *conn)
{
	memset(p, 0, sizeof(*p));
	p->conn = conn;
	p->cap = PIPE_MAX_QUEUED + PIPE_MAX_QUEUED / PIPE_SYNC_EVERY + 16;
	p->items = calloc(p->cap, sizeof(PipeItem));
	if (p->items == NULL)
		return false;
	if (PQsetnonblocking(conn, 1) != 0 || PQenterPipelineMode(conn) != 1)
	{
		fprintf(stderr, "%s: could not enter pipeline mode: %s", progname, PQerrorMessage(conn));
		return false;
	}
	return true;
}

/* Records the first server error of the pipeline with the JSON path. */
static void
pipe_fail(Pipeline *p, const PipeItem *it, const PGresult *res)
{
	const char *msg,
			   *state,
			   *detail,
			   *hint;
	char		buf[4096];

	if (p->failed)
		return;
	p->failed = true;
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	if (msg == NULL)
		msg = PQresultErrorMessage(res);
	snprintf(buf, sizeof(buf), "%s: the server refused it: %s%s%s%s%s%s%s%s",
			 it->path, msg,
			 state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "",
			 detail ? "\nDETAIL: " : "", detail ? detail : "",
			 hint ? "\nHINT: " : "", hint ? hint : "");
	p->error = strdup(buf);
}

/* Handles the results that have arrived; waits for one when wait is true. */
static bool
pipe_pump(Pipeline *p, bool wait)
{
	for (;;)
	{
		int			fl = PQflush(p->conn);

		if (fl < 0)
		{
			fprintf(stderr, "%s: lost the connection: %s", progname, PQerrorMessage(p->conn));
			return false;
		}
		if (!PQconsumeInput(p->conn))
		{
			fprintf(stderr, "%s: lost the connection: %s", progname, PQerrorMessage(p->conn));
			return false;
		}
		while (p->count > 0 && !PQisBusy(p->conn))
		{
			PipeItem   *it = &p->items[p->head];
			PGresult   *res = PQgetResult(p->conn);
			ExecStatusType st;

			if (it->is_sync)
			{
				if (res == NULL)
					break;		/* nothing yet; wait for the sync result */
				st = PQresultStatus(res);
				PQclear(res);
				if (st != PGRES_PIPELINE_SYNC)
				{
					fprintf(stderr, "%s: protocol error: expected a sync point\n", progname);
					return false;
				}
				p->head = (p->head + 1) % p->cap;
				p->count--;
				wait = false;
				continue;
			}
			if (res == NULL)
			{
				/* this statement's results are complete */
				p->head = (p->head + 1) % p->cap;
				p->count--;
				wait = false;
				continue;
			}
			st = PQresultStatus(res);
			if (st == PGRES_TUPLES_OK)
			{
				if (it->target && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
					*it->target = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
				if (it->text && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
					*it->text = strdup(PQgetvalue(res, 0, 0));
			}
			else if (st == PGRES_FATAL_ERROR)
				pipe_fail(p, it, res);
			else if (st != PGRES_COMMAND_OK && st != PGRES_PIPELINE_ABORTED)
			{
				fprintf(stderr, "%s: unexpected result status %s\n", progname, PQresStatus(st));
				PQclear(res);
				return false;
			}
			PQclear(res);
		}
		if (!wait || p->count == 0)
			return true;
		{
			struct pollfd pfd;

			pfd.fd = PQsocket(p->conn);
			pfd.events = POLLIN | (fl == 1 ? POLLOUT : 0);
			pfd.revents = 0;
			if (poll(&pfd, 1, -1) < 0)
			{
				perror("poll");
				return false;
			}
		}
	}
}

/* Queues a sync point. */
static bool
pipe_sync(Pipeline *p)
{
	PipeItem   *it;

	if (PQpipelineSync(p->conn) != 1)
	{
		fprintf(stderr, "%s: could not send a sync point: %s", progname, PQerrorMessage(p->conn));
		return false;
	}
	it = &p->items[(p->head + p->count) % p->cap];
	it->is_sync = true;
	it->target = NULL;
	it->text = NULL;
	it->path[0] = '\0';
	p->count++;
	p->since_sync = 0;
	return true;
}

static bool pipe_send_any(Pipeline *p, const char *stmt, int nparams, const char *const *values,
						  const char *path, int64_t *target, char **text);

/*
 * Queues one prepared statement; its single bigint result (if any) goes to
 * *target.  Returns false on a connection problem or once the server has
 * reported an error (p->failed).
 */
bool
pipe_send(Pipeline *p, const char *stmt, int nparams,
		  const char *const *values, const char *path, int64_t *target)
{
	return pipe_send_any(p, stmt, nparams, values, path, target, NULL);
}

/* Queues one prepared statement whose single text result (if any) goes to *text (malloc'd). */
bool
pipe_send_text(Pipeline *p, const char *stmt, int nparams,
			   const char *const *values, const char *path, char **text)
{
	*text = NULL;
	return pipe_send_any(p, stmt, nparams, values, path, NULL, text);
}

/* Queues one prepared statement with its result targets. */
static bool
pipe_send_any(Pipeline *p, const char *stmt, int nparams, const char *const *values,
			  const char *path, int64_t *target, char **text)
{
	PipeItem   *it;

	if (p->failed)
		return false;
	while (p->count + 2 >= p->cap)
	{
		if (!pipe_pump(p, true))
			return false;
	}
	if (!PQsendQueryPrepared(p->conn, stmt, nparams, values, NULL, NULL, 0))
	{
		fprintf(stderr, "%s: could not send a statement: %s", progname, PQerrorMessage(p->conn));
		return false;
	}
	it = &p->items[(p->head + p->count) % p->cap];
	it->is_sync = false;
	it->target = target;
	it->text = text;
	snprintf(it->path, sizeof(it->path), "%s", path);
	p->count++;
	p->sent++;
	if (++p->since_sync >= PIPE_SYNC_EVERY && !pipe_sync(p))
		return false;
	if (!pipe_pump(p, false))
		return false;
	if (p->count > PIPE_MAX_QUEUED && !pipe_pump(p, true))
		return false;
	return !p->failed;
}

/* Sends a sync point and waits until every queued statement is done. */
bool
pipe_drain(Pipeline *p)
{
	if (p->since_sync > 0 && !pipe_sync(p))
		return false;
	while (p->count > 0)
		if (!pipe_pump(p, true))
			return false;
	return !p->failed;
}

/* Leaves pipeline mode and frees the queue. */
void
pipe_end(Pipeline *p)
{
	if (p->items && PQstatus(p->conn) == CONNECTION_OK)
	{
		pipe_drain(p);
		PQexitPipelineMode(p->conn);
		PQsetnonblocking(p->conn, 0);
	}
	free(p->items);
	free(p->error);
	p->items = NULL;
	p->error = NULL;
}
