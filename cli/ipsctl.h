/*
 * ipsctl.h
 *		Shared declarations of ipsctl, the command-line client of the ips
 *		extension (libpq + cJSON).
 *
 * Sources by concern:
 *	main.c			command dispatch, usage texts
 *	conn.c			connecting, error reporting, the libpq pipeline
 *	json_util.c		streaming JSON reader, JSON writer, dates and times
 *	generate.c		ipsctl generate (deterministic synthetic region)
 *	import.c		ipsctl import
 *	export_fhir.c	ipsctl export (ips-import document or FHIR R4 Bundle)
 *	report.c		ipsctl alerts | fidelity | outcomes
 */
#ifndef IPSCTL_H
#define IPSCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>
#include <cjson/cJSON.h>

/* Exit codes (documented in docs/ipsctl.md, ipsctl(1) and --help) */
#define EXIT_OK			0
#define EXIT_DATA		1		/* bad input data, or the server refused it */
#define EXIT_USAGE		2		/* bad command line */
#define EXIT_CONN		3		/* could not connect */

/* the extension's version, from ips.control (cli/Makefile) */
#ifndef IPSCTL_VERSION
#error "IPSCTL_VERSION is defined by cli/Makefile from ips.control"
#endif

/* main.c */
extern const char *progname;
extern void usage_error(const char *cmd, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern bool parse_int_arg(const char *s, long long min, long long max, long long *out);

/* conn.c: psql's connection options, taken from anywhere on the command line */
typedef struct ConnOptions
{
	const char *host;
	const char *port;
	const char *user;
	const char *dbname;			/* a name, a connection string or a URI */
	bool		prompt_password;	/* -W */
	bool		no_password;	/* -w */
} ConnOptions;

extern ConnOptions conn_opts;
extern bool take_conn_options(int *argc, char **argv);
extern PGconn *ips_connect(const char *conninfo, int *exit_code);
extern void print_pg_error(const char *what, const PGresult *res, PGconn *conn);
extern bool extension_present(PGconn *conn);
extern bool function_exists(PGconn *conn, const char *signature);

/* A libpq pipeline: queued prepared statements and the JSON paths they came from */
typedef struct PipeItem
{
	char		path[128];		/* JSON path of the input that caused it */
	int64_t    *target;			/* where to store the bigint result, or NULL */
	char	  **text;			/* where to store the text result (malloc'd), or NULL */
	bool		is_sync;
} PipeItem;

typedef struct Pipeline
{
	PGconn	   *conn;
	PipeItem   *items;			/* ring buffer */
	size_t		cap;
	size_t		head;
	size_t		count;
	size_t		since_sync;		/* statements sent since the last sync */
	bool		failed;			/* the server reported an error */
	char	   *error;			/* message of the first error (malloc'd) */
	long long	sent;			/* statements sent in total */
} Pipeline;

extern bool pipe_begin(Pipeline *p, PGconn *conn);
extern bool pipe_send(Pipeline *p, const char *stmt, int nparams,
					  const char *const *values, const char *path, int64_t *target);
extern bool pipe_send_text(Pipeline *p, const char *stmt, int nparams,
						   const char *const *values, const char *path, char **text);
extern bool pipe_drain(Pipeline *p);
extern void pipe_end(Pipeline *p);

/* json_util.c: dates and times */
extern bool parse_date(const char *s, int *days);
extern bool parse_timestamp(const char *s, int64_t *epoch);
extern bool parse_timestamp_pg(const char *s, int64_t *us);
extern void format_date(int days, char *buf);
extern int	days_from_civil(int y, int m, int d);
extern void civil_from_days(int days, int *y, int *m, int *d);
extern int	today_local(void);
extern int	helsinki_offset_minutes(int days);

/* json_util.c: UTF-8 */
extern bool utf8_valid(const char *s, size_t len, size_t *bad_at);
extern size_t utf8_width(const char *s);

/* report.c: stored text made safe for a terminal (malloc'd) */
extern char *text_escape(const char *s);

/* json_util.c: writer */
extern void json_put_string(FILE *out, const char *s);

/* json_util.c: streaming reader of one top-level JSON object */
typedef struct JsonStream
{
	FILE	   *in;
	char	   *buf;			/* read buffer */
	size_t		buflen;
	size_t		bufpos;
	bool		eof;
	long long	offset;			/* bytes consumed */
	long long	line;			/* 1-based line of the next byte */
	long long	col;
	char	   *elem;			/* text of the current element */
	size_t		elemlen;
	size_t		elemcap;
	long long	elem_line;		/* where the current element starts */
	long long	elem_col;
	bool		first;			/* no member/element read yet in this container */
	char		errmsg[256];
} JsonStream;

typedef enum
{
	JS_KEY,						/* a key of the top-level object was read */
	JS_END,						/* the closing brace (and only whitespace after it) */
	JS_ERROR
} JsonToken;

extern void js_init(JsonStream *js, FILE *in);
extern void js_free(JsonStream *js);
extern bool js_open_object(JsonStream *js);
extern JsonToken js_next_key(JsonStream *js, char *key, size_t keysize);
extern int	js_peek_value(JsonStream *js);
extern bool js_read_value(JsonStream *js);
extern bool js_open_array(JsonStream *js);
extern int	js_next_element(JsonStream *js);

/* commands */
extern int	cmd_generate(int argc, char **argv);
extern int	cmd_import(int argc, char **argv);
extern int	cmd_export(int argc, char **argv);
extern int	cmd_report(const char *which, int argc, char **argv);

#endif							/* IPSCTL_H */
