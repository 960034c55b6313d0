/*
 * import.c
 *		ipsctl import: loads an import document (docs/ipsctl.md) in one
 *		transaction through the extension's public functions, so that the
 *		state machine and every check apply.
 *
 * The document is read as a stream: each element of a section array is
 * extracted by the reader in json_util.c and parsed on its own with cJSON,
 * validated against a small schema (unknown keys, types, ranges, file-local
 * references), and turned into prepared statements sent through a libpq
 * pipeline.  The first problem, found here or reported by the server, stops
 * the import with the JSON path of the element; the transaction is rolled
 * back and the exit code is 1.
 */
#include "ipsctl.h"

#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define EPISODE_BATCH	256		/* episodes referred per round trip */
#define MAX_TEXT		10000	/* longest accepted string value */

/* ---------------------------------------------------------------- key maps */

/* A file-local key and the database id it maps to (0 until known). */
typedef struct Entry
{
	char	   *key;
	int64_t		id;
	struct Entry *team;			/* staff: their team */
} Entry;

typedef struct KeyMap
{
	const char *what;			/* "team", "client", ... */
	const char *section;		/* where keys are defined */
	Entry	  **slots;
	size_t		nslots;
	size_t		count;
	Entry	  **slabs;			/* entries, allocated in slabs (stable addresses) */
	size_t		nslabs;
	size_t		slab_used;
} KeyMap;

#define SLAB_ENTRIES 4096

/* FNV-1a hash of a string. */
static uint64_t
hash_key(const char *s)
{
	uint64_t	h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211ULL;
	return h;
}

/* Finds a key; NULL when absent. */
static Entry *
map_find(KeyMap *m, const char *key)
{
	size_t		i;

	if (m->nslots == 0)
		return NULL;
	for (i = hash_key(key) & (m->nslots - 1); m->slots[i]; i = (i + 1) & (m->nslots - 1))
		if (strcmp(m->slots[i]->key, key) == 0)
			return m->slots[i];
	return NULL;
}

/* Inserts a new key (the caller checked it is absent); NULL when out of memory. */
static Entry *
map_add(KeyMap *m, const char *key)
{
	Entry	   *e;
	size_t		i;

	if ((m->count + 1) * 2 > m->nslots)
	{
		size_t		n = m->nslots ? m->nslots * 2 : 1024;
		Entry	  **ns = calloc(n, sizeof(Entry *));

		if (ns == NULL)
			return NULL;
		for (size_t k = 0; k < m->nslots; k++)
			if (m->slots[k])
			{
				for (i = hash_key(m->slots[k]->key) & (n - 1); ns[i]; i = (i + 1) & (n - 1))
					;
				ns[i] = m->slots[k];
			}
		free(m->slots);
		m->slots = ns;
		m->nslots = n;
	}
	if (m->nslabs == 0 || m->slab_used == SLAB_ENTRIES)
	{
		Entry	  **nl = realloc(m->slabs, (m->nslabs + 1) * sizeof(Entry *));

		if (nl == NULL)
			return NULL;
		m->slabs = nl;
		m->slabs[m->nslabs] = calloc(SLAB_ENTRIES, sizeof(Entry));
		if (m->slabs[m->nslabs] == NULL)
			return NULL;
		m->nslabs++;
		m->slab_used = 0;
	}
	e = &m->slabs[m->nslabs - 1][m->slab_used++];
	e->key = strdup(key);
	if (e->key == NULL)
		return NULL;
	for (i = hash_key(key) & (m->nslots - 1); m->slots[i]; i = (i + 1) & (m->nslots - 1))
		;
	m->slots[i] = e;
	m->count++;
	return e;
}

/* Frees a map. */
static void
map_free(KeyMap *m)
{
	for (size_t s = 0; s < m->nslabs; s++)
	{
		size_t		n = (s == m->nslabs - 1) ? m->slab_used : SLAB_ENTRIES;

		for (size_t k = 0; k < n; k++)
			free(m->slabs[s][k].key);
		free(m->slabs[s]);
	}
	free(m->slabs);
	free(m->slots);
}

/* ---------------------------------------------------------------- schema */

typedef enum
{
	F_STRING,					/* text */
	F_KEY,						/* a file-local key (string) */
	F_DATE,						/* 'YYYY-MM-DD' */
	F_TIME,						/* ISO 8601 instant with offset */
	F_INT,						/* 32-bit integer */
	F_NUM,						/* finite number */
	F_BOOL,
	F_ARRAY,					/* array of objects of spec sub */
	F_KEYS,						/* array of keys */
	F_ANY						/* anything (meta) */
} FieldType;

struct Spec;

typedef struct Field
{
	const char *name;
	FieldType	type;
	bool		required;
	const struct Spec *sub;
} Field;

typedef struct Spec
{
	const char *what;
	const Field *fields;
} Spec;

static const Field team_fields[] = {
	{"key", F_KEY, true, NULL}, {"name", F_STRING, true, NULL},
	{"region", F_STRING, true, NULL}, {NULL, 0, false, NULL}
};
static const Spec team_spec = {"team", team_fields};

static const Field staff_fields[] = {
	{"key", F_KEY, true, NULL}, {"team", F_KEY, true, NULL},
	{"display_name", F_STRING, true, NULL}, {"role", F_STRING, true, NULL},
	{"fte", F_NUM, false, NULL}, {"db_role", F_STRING, false, NULL},
	{"employment_share", F_NUM, false, NULL}, {"weekly_hours", F_NUM, false, NULL},
	{NULL, 0, false, NULL}
};
static const Spec staff_spec = {"staff member", staff_fields};

static const Field client_fields[] = {
	{"key", F_KEY, true, NULL}, {"host_ref", F_STRING, true, NULL},
	{"birth_year", F_INT, false, NULL}, {"municipality", F_STRING, false, NULL},
	{NULL, 0, false, NULL}
};
static const Spec client_spec = {"client", client_fields};

static const Field care_fields[] = {
	{"client", F_KEY, true, NULL}, {"unit", F_STRING, true, NULL},
	{"started_on", F_DATE, true, NULL}, {"ended_on", F_DATE, false, NULL},
	{NULL, 0, false, NULL}
};
static const Spec care_spec = {"care relationship", care_fields};

static const Field consent_fields[] = {
	{"client", F_KEY, true, NULL}, {"scope", F_STRING, true, NULL},
	{"given_on", F_DATE, true, NULL}, {"withdrawn_on", F_DATE, false, NULL},
	{NULL, 0, false, NULL}
};
static const Spec consent_spec = {"consent", consent_fields};

static const Field employer_fields[] = {
	{"key", F_KEY, true, NULL}, {"name", F_STRING, true, NULL},
	{"business_id", F_STRING, false, NULL}, {"industry", F_STRING, false, NULL},
	{NULL, 0, false, NULL}
};
static const Spec employer_spec = {"employer", employer_fields};

static const Field assign_fields[] = {
	{"staff", F_KEY, true, NULL}, {"from_on", F_DATE, true, NULL},
	{NULL, 0, false, NULL}
};
static const Spec assign_spec = {"specialist assignment", assign_fields};

static const Field event_fields[] = {
	{"at", F_TIME, true, NULL}, {"to", F_STRING, true, NULL},
	{"reason", F_STRING, false, NULL}, {NULL, 0, false, NULL}
};
static const Spec event_spec = {"event", event_fields};

static const Field contact_fields[] = {
	{"staff", F_KEY, true, NULL}, {"at", F_TIME, true, NULL},
	{"kind", F_STRING, true, NULL}, {"mode", F_STRING, false, NULL},
	{"setting", F_STRING, false, NULL}, {"minutes", F_INT, false, NULL},
	{NULL, 0, false, NULL}
};
static const Spec contact_spec = {"contact", contact_fields};

static const Field epcontact_fields[] = {
	{"staff", F_KEY, true, NULL}, {"employer", F_KEY, true, NULL},
	{"at", F_TIME, true, NULL}, {"in_person", F_BOOL, false, NULL},
	{"by_client", F_BOOL, false, NULL}, {"competitive", F_BOOL, false, NULL},
	{NULL, 0, false, NULL}
};
static const Spec epcontact_spec = {"employer contact", epcontact_fields};

static const Field job_fields[] = {
	{"employer", F_KEY, true, NULL}, {"starts_on", F_DATE, true, NULL},
	{"kind", F_STRING, false, NULL}, {"occupation", F_STRING, false, NULL},
	{"hours_per_week", F_NUM, false, NULL}, {"title", F_STRING, false, NULL},
	{"ends_on", F_DATE, false, NULL}, {"end_reason", F_STRING, false, NULL},
	{NULL, 0, false, NULL}
};
static const Spec job_spec = {"job", job_fields};

static const Field study_fields[] = {
	{"starts_on", F_DATE, true, NULL}, {"ends_on", F_DATE, false, NULL},
	{"programme", F_STRING, false, NULL}, {NULL, 0, false, NULL}
};
static const Spec study_spec = {"study", study_fields};

static const Field episode_fields[] = {
	{"key", F_KEY, true, NULL}, {"client", F_KEY, true, NULL},
	{"team", F_KEY, true, NULL}, {"referred_on", F_DATE, true, NULL},
	{"source", F_STRING, false, NULL},
	{"out_of_work_at_entry", F_BOOL, false, NULL},
	{"specialists", F_ARRAY, false, &assign_spec},
	{"events", F_ARRAY, false, &event_spec},
	{"career_profile_on", F_DATE, false, NULL},
	{"contacts", F_ARRAY, false, &contact_spec},
	{"employer_contacts", F_ARRAY, false, &epcontact_spec},
	{"jobs", F_ARRAY, false, &job_spec},
	{"studies", F_ARRAY, false, &study_spec},
	{NULL, 0, false, NULL}
};
static const Spec episode_spec = {"episode", episode_fields};

static const Field empcontact_fields[] = {
	{"staff", F_KEY, true, NULL}, {"employer", F_KEY, true, NULL},
	{"at", F_TIME, true, NULL}, {"in_person", F_BOOL, false, NULL},
	{"episode", F_KEY, false, NULL}, {"by_client", F_BOOL, false, NULL},
	{"competitive", F_BOOL, false, NULL}, {NULL, 0, false, NULL}
};
static const Spec empcontact_spec = {"employer contact", empcontact_fields};

static const Field meeting_fields[] = {
	{"team", F_KEY, true, NULL}, {"met_on", F_DATE, true, NULL},
	{"attendees", F_KEYS, true, NULL}, {NULL, 0, false, NULL}
};
static const Spec meeting_spec = {"team meeting", meeting_fields};

/* The sections, in the order they must appear. */
typedef enum
{
	S_TEAMS, S_STAFF, S_CLIENTS, S_CARE, S_CONSENTS, S_EMPLOYERS,
	S_EPISODES, S_EMPCONTACTS, S_MEETINGS, S_COUNT
} Section;

static const char *section_names[S_COUNT] = {
	"teams", "staff", "clients", "care_relationships", "consents", "employers",
	"episodes", "employer_contacts", "team_meetings"
};
static const Spec *section_specs[S_COUNT] = {
	&team_spec, &staff_spec, &client_spec, &care_spec, &consent_spec, &employer_spec,
	&episode_spec, &empcontact_spec, &meeting_spec
};

/* ---------------------------------------------------------------- state */

typedef struct Counts
{
	long long	teams,
				staff,
				clients,
				care,
				consents,
				employers,
				episodes,
				transitions,
				contacts,
				empcontacts,
				jobs,
				studies,
				meetings;
} Counts;

typedef struct Import
{
	PGconn	   *conn;
	Pipeline	pipe;
	JsonStream	js;
	KeyMap		teams,
				staff,
				clients,
				employers,
				episodes;
	Counts		n;
	bool		merge;			/* --merge: a daily feed; match, add what is new */
	long long	unchanged;		/* --merge: elements and facts already on record */
	char		error[4096];	/* the first error, with its JSON path */
	bool		failed;
	/* progress */
	bool		progress;
	long long	total_bytes;
	double		started;
	double		last_shown;
	/* episodes waiting for their ids */
	cJSON	   *batch[EPISODE_BATCH];
	Entry	   *batch_entry[EPISODE_BATCH];
	cJSON	   *batch_facts[EPISODE_BATCH];	/* --merge: what the record holds */
	long		batch_index[EPISODE_BATCH];
	int			nbatch;
	/* contacts and employer contacts go to the guarded tables with COPY */
	FILE	   *copy_data[2];	/* COPY text lines */
	FILE	   *copy_where[2];	/* one CopyWhere per line */
	long long	copy_lines[2];
	long		section_index;	/* index of the current element */
	/* --timing: seconds and elements of each section, seconds of each COPY */
	bool		timing;
	bool		section_seen[S_COUNT];
	long		section_count[S_COUNT];
	double		section_secs[S_COUNT];
	double		copy_secs[2];
} Import;

enum
{
	C_CONTACT, C_EMPCONTACT
};

/* Where a COPY line came from, for error messages. */
typedef struct CopyWhere
{
	int64_t		index;			/* episode (or employer_contacts) index */
	int32_t		item;			/* index in the episode's array, -1 top-level */
	int32_t		pad;
} CopyWhere;

static const char *const copy_sql[2] = {
	"COPY ips.contact (episode_id, client_id, staff_id, at, kind, mode, setting, minutes) FROM STDIN (FORMAT binary)",
	"COPY ips.employer_contact (staff_id, employer_id, at, in_person, episode_id, by_client, competitive) FROM STDIN"
};

/* Wall-clock seconds. */
static double
now_seconds(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

/* Records the first error of the import, at a JSON path. */
static bool
fail(Import *im, const char *path, const char *fmt,...)
	__attribute__((format(printf, 3, 4)));

static bool
fail(Import *im, const char *path, const char *fmt,...)
{
	va_list		ap;
	size_t		len;

	if (im->failed)
		return false;
	im->failed = true;
	snprintf(im->error, sizeof(im->error), "%s: ", path);
	len = strlen(im->error);
	va_start(ap, fmt);
	vsnprintf(im->error + len, sizeof(im->error) - len, fmt, ap);
	va_end(ap);
	return false;
}

/* Shows the progress bar on stderr (a terminal) at most 5 times a second. */
static void
show_progress(Import *im, bool final)
{
	double		t;
	double		rate;
	int			width = 30;
	int			filled = 0;
	char		bar[64];

	if (!im->progress)
		return;
	t = now_seconds();
	if (!final && t - im->last_shown < 0.2)
		return;
	im->last_shown = t;
	if (final)
	{
		fputs("\r\033[K", stderr);
		return;
	}
	if (im->total_bytes > 0)
		filled = (int) (width * (double) im->js.offset / im->total_bytes);
	if (filled > width)
		filled = width;
	for (int i = 0; i < width; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[width] = '\0';
	rate = t > im->started ? im->pipe.sent / (t - im->started) : 0;
	if (im->total_bytes > 0)
		fprintf(stderr, "\r[%s] %3d%%  %.1f MB  %lld statements  %.0f/s ",
				bar, (int) (100.0 * im->js.offset / im->total_bytes),
				im->js.offset / 1048576.0, im->pipe.sent, rate);
	else
		fprintf(stderr, "\r%.1f MB  %lld statements  %.0f/s ",
				im->js.offset / 1048576.0, im->pipe.sent, rate);
	fflush(stderr);
}

/* ---------------------------------------------------------------- validation */

static bool check_object(Import *im, const cJSON *obj, const Spec *spec, const char *path);

/* Checks one value against a field type; path names the value. */
static bool
check_value(Import *im, const cJSON *v, const Field *f, const char *path)
{
	int			days;
	int64_t		epoch;

	switch (f->type)
	{
		case F_STRING:
		case F_KEY:
			if (!cJSON_IsString(v))
				return fail(im, path, "must be a string");
			if (strlen(v->valuestring) > MAX_TEXT)
				return fail(im, path, "string longer than %d bytes", MAX_TEXT);
			if (f->type == F_KEY && (v->valuestring[0] == '\0' || strlen(v->valuestring) > 200))
				return fail(im, path, "a key must be a string of 1 to 200 bytes");
			return true;
		case F_DATE:
			if (!cJSON_IsString(v) || !parse_date(v->valuestring, &days))
				return fail(im, path, "must be a date \"YYYY-MM-DD\"");
			return true;
		case F_TIME:
			if (!cJSON_IsString(v) || !parse_timestamp(v->valuestring, &epoch))
				return fail(im, path, "must be a time with an offset, e.g. \"2025-01-08T10:00:00+02:00\"");
			return true;
		case F_INT:
			if (!cJSON_IsNumber(v))
				return fail(im, path, "must be an integer");
			if (!isfinite(v->valuedouble) || fabs(v->valuedouble) > 2147483647.0)
				return fail(im, path, "number out of range");
			if (v->valuedouble != floor(v->valuedouble))
				return fail(im, path, "must be an integer");
			return true;
		case F_NUM:
			if (!cJSON_IsNumber(v))
				return fail(im, path, "must be a number");
			if (!isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e12)
				return fail(im, path, "number out of range");
			return true;
		case F_BOOL:
			if (!cJSON_IsBool(v))
				return fail(im, path, "must be true or false");
			return true;
		case F_KEYS:
			{
				const cJSON *k;
				int			i = 0;
				Field		kf = {f->name, F_KEY, true, NULL};
				char		sub[256];

				if (!cJSON_IsArray(v))
					return fail(im, path, "must be an array of keys");
				cJSON_ArrayForEach(k, v)
				{
					snprintf(sub, sizeof(sub), "%s[%d]", path, i++);
					if (!check_value(im, k, &kf, sub))
						return false;
				}
				return true;
			}
		case F_ARRAY:
			{
				const cJSON *el;
				int			i = 0;
				char		sub[256];

				if (!cJSON_IsArray(v))
					return fail(im, path, "must be an array");
				cJSON_ArrayForEach(el, v)
				{
					snprintf(sub, sizeof(sub), "%s[%d]", path, i++);
					if (!check_object(im, el, f->sub, sub))
						return false;
				}
				return true;
			}
		case F_ANY:
			return true;
	}
	return true;
}

/* Checks an object: no unknown or repeated keys, required keys, value types. */
static bool
check_object(Import *im, const cJSON *obj, const Spec *spec, const char *path)
{
	const cJSON *m;
	char		sub[256];

	if (!cJSON_IsObject(obj))
		return fail(im, path, "a %s must be a JSON object", spec->what);
	cJSON_ArrayForEach(m, obj)
	{
		const Field *f;

		for (f = spec->fields; f->name; f++)
			if (strcmp(f->name, m->string) == 0)
				break;
		snprintf(sub, sizeof(sub), "%s.%s", path, m->string);
		if (f->name == NULL)
		{
			char		known[512] = "";

			for (const Field *g = spec->fields; g->name; g++)
			{
				strncat(known, g->name, sizeof(known) - strlen(known) - 3);
				if (g[1].name)
					strncat(known, ", ", sizeof(known) - strlen(known) - 1);
			}
			return fail(im, sub, "unknown key \"%s\" in a %s (known keys: %s)", m->string, spec->what, known);
		}
		for (const cJSON *p = obj->child; p != m; p = p->next)
			if (strcmp(p->string, m->string) == 0)
				return fail(im, sub, "the key \"%s\" appears twice", m->string);
		if (cJSON_IsNull(m))
		{
			if (f->required)
				return fail(im, sub, "must not be null");
			continue;
		}
		if (!check_value(im, m, f, sub))
			return false;
	}
	for (const Field *f = spec->fields; f->name; f++)
		if (f->required && cJSON_GetObjectItemCaseSensitive(obj, f->name) == NULL)
			return fail(im, path, "a %s needs \"%s\"", spec->what, f->name);
	return true;
}

/* A member's string value, or NULL when absent or null. */
static const char *
get_str(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A number member as text (integers without a fraction), or NULL. */
static const char *
get_num(const cJSON *obj, const char *name, char *buf, size_t size)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsNumber(v))
		return NULL;
	if (v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15)
		snprintf(buf, size, "%.0f", v->valuedouble);
	else
		snprintf(buf, size, "%.15g", v->valuedouble);
	return buf;
}

/* A boolean member as 'true'/'false', or dflt when absent or null. */
static const char *
get_bool(const cJSON *obj, const char *name, const char *dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (cJSON_IsTrue(v))
		return "true";
	if (cJSON_IsFalse(v))
		return "false";
	return dflt;
}

/* Makes sure an id is known (waits for the pipeline when it is pending). */
static bool
need_id(Import *im, Entry *e)
{
	if (e->id == 0 && !pipe_drain(&im->pipe))
		return false;
	return e->id != 0;
}

/*
 * Resolves a reference member to its entry; the referenced key must be
 * defined earlier in the document.
 */
static Entry *
resolve(Import *im, KeyMap *m, const cJSON *obj, const char *name, const char *path)
{
	const char *key = get_str(obj, name);
	Entry	   *e;
	char		sub[256];

	snprintf(sub, sizeof(sub), "%s.%s", path, name);
	if (key == NULL)
	{
		fail(im, sub, "a reference to a %s is needed", m->what);
		return NULL;
	}
	e = map_find(m, key);
	if (e == NULL)
	{
		fail(im, sub, "unknown %s \"%s\" (not defined in $.%s before this point)", m->what, key, m->section);
		return NULL;
	}
	return e;
}

/* Registers a new key, refusing duplicates. */
static Entry *
define_key(Import *im, KeyMap *m, const cJSON *obj, const char *path)
{
	const char *key = get_str(obj, "key");
	Entry	   *e;
	char		sub[256];

	snprintf(sub, sizeof(sub), "%s.key", path);
	if (map_find(m, key))
	{
		fail(im, sub, "duplicate %s key \"%s\"", m->what, key);
		return NULL;
	}
	e = map_add(m, key);
	if (e == NULL)
		fail(im, sub, "out of memory");
	return e;
}

/* Sends one statement; on a server error the pipeline keeps the message. */
static bool
send_stmt(Import *im, const char *stmt, int n, const char *const *vals, const char *path, int64_t *target)
{
	if (!pipe_send(&im->pipe, stmt, n, vals, path, target))
	{
		if (!im->pipe.failed)
			return fail(im, path, "the connection failed");
		return false;
	}
	show_progress(im, false);
	return true;
}

/* Text of an id. */
#define ID_TEXT(buf, id) (snprintf((buf), sizeof(buf), "%lld", (long long) (id)), (buf))

/*
 * --merge: runs a look-up statement and waits for its single text result
 * (*out = NULL when there is no row; the caller frees it).
 */
static bool
lookup(Import *im, const char *stmt, int n, const char *const *vals, const char *path, char **out)
{
	if (!pipe_send_text(&im->pipe, stmt, n, vals, path, out) || !pipe_drain(&im->pipe))
	{
		free(*out);
		*out = NULL;
		if (!im->pipe.failed)
			return fail(im, path, "the connection failed");
		return false;
	}
	return true;
}

/* --merge: looks up an element by its keys; sets e->id when the record has it. */
static bool
lookup_id(Import *im, const char *stmt, int n, const char *const *vals, const char *path, Entry *e, bool *found)
{
	char	   *t = NULL;

	if (!lookup(im, stmt, n, vals, path, &t))
		return false;
	*found = t != NULL;
	if (t)
	{
		e->id = strtoll(t, NULL, 10);
		im->unchanged++;
	}
	free(t);
	return true;
}

/* --merge: true when a JSON array of strings holds s. */
static bool
facts_have(const cJSON *facts, const char *list, const char *s)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(facts, list))
		if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0)
		return true;
	return false;
}

/* --merge: the string of a JSON array that starts with prefix, or NULL. */
static const char *
facts_find(const cJSON *facts, const char *list, const char *prefix)
{
	const cJSON *it;
	size_t		len = strlen(prefix);

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(facts, list))
		if (cJSON_IsString(it) && strncmp(it->valuestring, prefix, len) == 0)
		return it->valuestring;
	return NULL;
}

/* True when s is one of the NULL-terminated codes. */
static bool
one_of(const char *s, const char *const *codes)
{
	for (; *codes; codes++)
		if (strcmp(s, *codes) == 0)
			return true;
	return false;
}

/*
 * The codes a contact may carry, as the server's vocabulary (ips.vocabulary)
 * has them: asked once per import (load_vocabulary), so that ipsctl keeps no
 * list of its own.  Each category: its codes in their order, NULL-terminated,
 * and the same as one string for messages.
 */
enum
{
	V_CONTACT_KIND, V_CONTACT_MODE, V_CONTACT_SETTING, V_COUNT
};
static const char *const vocab_category[V_COUNT] = {"contact_kind", "contact_mode", "contact_setting"};

typedef struct VocabList
{
	char	   *joined;			/* "a, b, c" */
	char	  **codes;			/* NULL-terminated */
} VocabList;
static VocabList vocab[V_COUNT];

/* Asks the server for the codes of the categories ipsctl checks; false after printing why not. */
static bool
load_vocabulary(PGconn *conn)
{
	for (int v = 0; v < V_COUNT; v++)
	{
		const char *params[1] = {vocab_category[v]};
		PGresult   *res = PQexecParams(conn,
									   "SELECT coalesce(string_agg(code, ', ' ORDER BY ordinal), '')"
									   " FROM ips.vocabulary WHERE category = $1",
									   1, NULL, params, NULL, NULL, 0);
		const char *joined;
		size_t		n = 1;
		char	   *copy,
				   *tok,
				   *save = NULL;

		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		{
			print_pg_error("could not read the vocabulary (ips.vocabulary)", res, conn);
			PQclear(res);
			return false;
		}
		joined = PQgetvalue(res, 0, 0);
		for (const char *p = joined; *p; p++)
			n += *p == ',';
		free(vocab[v].joined);
		free(vocab[v].codes);
		vocab[v].joined = strdup(joined);
		vocab[v].codes = calloc(n + 1, sizeof(char *));
		copy = strdup(joined);
		if (vocab[v].joined == NULL || vocab[v].codes == NULL || copy == NULL)
		{
			fprintf(stderr, "ipsctl: out of memory\n");
			PQclear(res);
			return false;
		}
		n = 0;
		for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
			vocab[v].codes[n++] = tok;	/* copy is kept: the codes point into it */
		PQclear(res);
	}
	return true;
}

/*
 * How each table's rows travel: contacts in COPY's binary format (no text
 * parsing of instants and numbers on the server), employer contacts as text.
 * Binary types of the contact columns: 8 int8, 4 int4, T timestamptz, s text.
 */
static const bool copy_binary[2] = {true, false};
static const char contact_binary_types[] = "888Tsss4";

static size_t
put_be32(char *p, uint32_t v)
{
	p[0] = (char) (v >> 24);
	p[1] = (char) (v >> 16);
	p[2] = (char) (v >> 8);
	p[3] = (char) v;
	return 4;
}

static size_t
put_be64(char *p, uint64_t v)
{
	put_be32(p, (uint32_t) (v >> 32));
	put_be32(p + 4, (uint32_t) v);
	return 8;
}

/*
 * One row in COPY's binary format; false when a value does not fit its
 * type (the values were validated before, so this does not happen).
 */
static bool
binary_row(const char *types, int n, const char *const *vals, char *rec, size_t size, uint32_t *len)
{
	size_t		r = 0;

	rec[r++] = (char) (n >> 8);
	rec[r++] = (char) n;
	for (int k = 0; k < n; k++)
	{
		char	   *end;

		if (r + 12 > size)
			return false;
		if (vals[k] == NULL)
		{
			r += put_be32(rec + r, 0xFFFFFFFF);
			continue;
		}
		switch (types[k])
		{
			case '8':
				{
					long long	v = strtoll(vals[k], &end, 10);

					if (*end != '\0')
						return false;
					r += put_be32(rec + r, 8);
					r += put_be64(rec + r, (uint64_t) v);
					break;
				}
			case '4':
				{
					long		v = strtol(vals[k], &end, 10);

					if (*end != '\0' || v < INT32_MIN || v > INT32_MAX)
						return false;
					r += put_be32(rec + r, 4);
					r += put_be32(rec + r, (uint32_t) (int32_t) v);
					break;
				}
			case 'T':
				{
					int64_t		us;

					if (!parse_timestamp_pg(vals[k], &us))
						return false;
					r += put_be32(rec + r, 8);
					r += put_be64(rec + r, (uint64_t) us);
					break;
				}
			default:
				{
					size_t		l = strlen(vals[k]);

					if (r + 4 + l > size)
						return false;
					r += put_be32(rec + r, (uint32_t) l);
					memcpy(rec + r, vals[k], l);
					r += l;
				}
		}
	}
	*len = (uint32_t) r;
	return true;
}

/*
 * Queues one row for COPY: n values (NULL = \N), all of them validated
 * dates, codes or numbers, so no escaping is needed; in the binary format
 * for the tables that travel so.
 */
static bool
copy_row(Import *im, int which, int n, const char *const *vals, int64_t index, int32_t item)
{
	CopyWhere	w = {index, item, 0};

	if (copy_binary[which])
	{
		char		rec[1024];
		uint32_t	len;

		if (!binary_row(contact_binary_types, n, vals, rec, sizeof(rec), &len))
			return fail(im, "$", "internal error: a contact does not fit COPY's binary format");
		if (fwrite(&len, sizeof(len), 1, im->copy_data[which]) != 1 ||
			fwrite(rec, 1, len, im->copy_data[which]) != len)
			return fail(im, "$", "could not write a temporary file: %m");
	}
	else
		for (int k = 0; k < n; k++)
		{
			fputs(vals[k] ? vals[k] : "\\N", im->copy_data[which]);
			fputc(k == n - 1 ? '\n' : '\t', im->copy_data[which]);
		}
	if (fwrite(&w, sizeof(w), 1, im->copy_where[which]) != 1 || ferror(im->copy_data[which]))
		return fail(im, "$", "could not write a temporary file: %m");
	im->copy_lines[which]++;
	return true;
}

/* Checks the codes of a contact here, so a bad one is named with its path. */
static bool
check_contact_codes(Import *im, const cJSON *it, const char *path)
{
	char		sub[300];
	const char *v;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(it, "minutes");

	if (!one_of(get_str(it, "kind"), (const char *const *) vocab[V_CONTACT_KIND].codes))
	{
		snprintf(sub, sizeof(sub), "%s.kind", path);
		return fail(im, sub, "unknown contact kind \"%s\" (use one of: %s)", get_str(it, "kind"),
					vocab[V_CONTACT_KIND].joined);
	}
	if ((v = get_str(it, "mode")) != NULL && !one_of(v, (const char *const *) vocab[V_CONTACT_MODE].codes))
	{
		snprintf(sub, sizeof(sub), "%s.mode", path);
		return fail(im, sub, "unknown contact mode \"%s\" (use one of: %s)", v, vocab[V_CONTACT_MODE].joined);
	}
	if ((v = get_str(it, "setting")) != NULL && !one_of(v, (const char *const *) vocab[V_CONTACT_SETTING].codes))
	{
		snprintf(sub, sizeof(sub), "%s.setting", path);
		return fail(im, sub, "unknown contact setting \"%s\" (use one of: %s)", v, vocab[V_CONTACT_SETTING].joined);
	}
	if (cJSON_IsNumber(m) && m->valuedouble < 0)
	{
		snprintf(sub, sizeof(sub), "%s.minutes", path);
		return fail(im, sub, "minutes must not be negative");
	}
	return true;
}

/*
 * Names the JSON path of a COPY line that the server refused (line: as the
 * server counts them in the statement; first: lines sent before it).
 */
static void
copy_error_path(Import *im, int which, const PGresult *res, long long first, char *path, size_t size)
{
	const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char *l = ctx ? strstr(ctx, ", line ") : NULL;
	long long	line = l ? atoll(l + 7) : 0;
	CopyWhere	w;

	snprintf(path, size, "$");
	if (line < 1)
		return;
	line += first;
	if (line > im->copy_lines[which] ||
		fseeko(im->copy_where[which], (off_t) (line - 1) * sizeof(CopyWhere), SEEK_SET) != 0 ||
		fread(&w, sizeof(w), 1, im->copy_where[which]) != 1)
		return;
	if (w.item < 0)
		snprintf(path, size, "$.employer_contacts[%lld]", (long long) w.index);
	else
		snprintf(path, size, "$.episodes[%lld].%s[%d]", (long long) w.index,
				 which == C_CONTACT ? "contacts" : "employer_contacts", w.item);
}

/*
 * Rows per COPY statement.  The server keeps each statement's rows for the
 * change log (its transition table) and one foreign-key check per row and key
 * until the statement ends: statements of this size stay within the default
 * work_mem (4 MB) instead of spilling to temporary files, and the memory of
 * a large import stays flat.  All of them run in the import's one transaction.
 */
#define COPY_STATEMENT_ROWS 10000

static bool
copy_begin(Import *im, int which)
{
	PGresult   *res = PQexec(im->conn, copy_sql[which]);

	if (PQresultStatus(res) != PGRES_COPY_IN)
	{
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		fail(im, "$", "could not load %s: %s", which == C_CONTACT ? "contacts" : "employer contacts",
			 msg ? msg : PQerrorMessage(im->conn));
		PQclear(res);
		return false;
	}
	PQclear(res);
	return true;
}

/* Ends one COPY statement (ok: all its data was sent) and reports its error. */
static bool
copy_end(Import *im, int which, long long first, bool ok)
{
	PGresult   *res;
	char		path[128];

	if (PQputCopyEnd(im->conn, ok ? NULL : "ipsctl: could not send the data") != 1)
		ok = false;
	while ((res = PQgetResult(im->conn)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !im->failed)
		{
			const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);

			copy_error_path(im, which, res, first, path, sizeof(path));
			fail(im, path, "the server refused it: %s%s%s%s%s%s", msg ? msg : PQerrorMessage(im->conn),
				 state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "",
				 hint ? "\nHINT: " : "", hint ? hint : "");
			ok = false;
		}
		PQclear(res);
	}
	return ok && !im->failed;
}

/*
 * The binary COPY file header (signature, flags, header extension length) and
 * trailer, as byte arrays (not strings: they hold no terminating NUL).
 */
static const char copy_binary_header[19] = {
	'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0',	/* signature */
	0, 0, 0, 0,					/* flags */
	0, 0, 0, 0					/* header extension length */
};
static const char copy_binary_trailer[2] = {'\377', '\377'};

/*
 * The next queued row of one table: a text line (with its newline) or a
 * binary tuple (stored after its length); false at the end.
 */
static bool
next_copy_row(Import *im, int which, char **row, size_t *len, size_t *cap)
{
	FILE	   *f = im->copy_data[which];

	if (copy_binary[which])
	{
		uint32_t	n;

		if (fread(&n, sizeof(n), 1, f) != 1)
			return false;
		if (n > *cap)
		{
			char	   *r = realloc(*row, n);

			if (r == NULL)
				return false;
			*row = r;
			*cap = n;
		}
		*len = n;
		return fread(*row, 1, n, f) == n;
	}
	else
	{
		ssize_t		n = getline(row, cap, f);

		if (n <= 0)
			return false;
		*len = (size_t) n;
		return true;
	}
}

/* COPY data gathered 64 kB at a time before it goes to libpq. */
typedef struct CopyOut
{
	char		buf[65536];
	size_t		used;
} CopyOut;

static bool
copy_flush(Import *im, CopyOut *o)
{
	if (o->used > 0 && PQputCopyData(im->conn, o->buf, (int) o->used) != 1)
		return false;
	o->used = 0;
	return true;
}

static bool
copy_put(Import *im, CopyOut *o, const char *bytes, size_t len)
{
	if (o->used + len > sizeof(o->buf) && !copy_flush(im, o))
		return false;
	if (len > sizeof(o->buf))
		return PQputCopyData(im->conn, bytes, (int) len) == 1;
	memcpy(o->buf + o->used, bytes, len);
	o->used += len;
	return true;
}

/* Ends the COPY statement in progress: its trailer, the rest of its data, its result. */
static bool
copy_statement_end(Import *im, int which, CopyOut *o, long long first)
{
	bool		sent = (!copy_binary[which] ||
						copy_put(im, o, copy_binary_trailer, sizeof(copy_binary_trailer))) &&
		copy_flush(im, o);

	return copy_end(im, which, first, sent);
}

/*
 * Loads the queued rows of one table with COPY (the table's triggers check
 * them), COPY_STATEMENT_ROWS rows per statement.
 */
static bool
run_copy(Import *im, int which)
{
	static CopyOut out;
	char	   *row = NULL;
	size_t		len,
				cap = 0;
	long long	first = 0;		/* rows of the statements before this one */
	long long	in_statement = 0;
	bool		ok = true;
	double		t0 = now_seconds();

	if (im->copy_lines[which] == 0)
		return true;
	fflush(im->copy_data[which]);
	fflush(im->copy_where[which]);
	rewind(im->copy_data[which]);
	out.used = 0;
	while (ok && next_copy_row(im, which, &row, &len, &cap))
	{
		if (in_statement == 0 && !copy_begin(im, which))
		{
			ok = false;
			break;
		}
		if ((in_statement == 0 && copy_binary[which] &&
			 !copy_put(im, &out, copy_binary_header, sizeof(copy_binary_header))) ||
			!copy_put(im, &out, row, len))
		{
			ok = copy_end(im, which, first, false);
			break;
		}
		if (++in_statement == COPY_STATEMENT_ROWS)
		{
			ok = copy_statement_end(im, which, &out, first);
			first += in_statement;
			in_statement = 0;
		}
	}
	if (ok && in_statement > 0)
	{
		ok = copy_statement_end(im, which, &out, first);
		first += in_statement;
	}
	free(row);
	if (ok && first != im->copy_lines[which])
		ok = fail(im, "$", "could not read the queued rows back from the temporary file");
	im->copy_secs[which] = now_seconds() - t0;
	return ok && !im->failed;
}

/* ---------------------------------------------------------------- sections */

/* One element of the setup sections (everything except episodes). */
static bool
import_simple(Import *im, Section s, const cJSON *o, const char *path)
{
	char		b1[32],
				b2[32],
				b3[32],
				b4[32],
				b5[32];
	Entry	   *e,
			   *r1,
			   *r2,
			   *r3;

	switch (s)
	{
		case S_TEAMS:
			{
				const char *v[2] = {get_str(o, "name"), get_str(o, "region")};

				bool		found = false;

				if ((e = define_key(im, &im->teams, o, path)) == NULL)
					return false;
				if (im->merge && (!lookup_id(im, "m_team", 2, v, path, e, &found) || found))
					return found;
				im->n.teams++;
				return send_stmt(im, "add_team", 2, v, path, &e->id);
			}
		case S_STAFF:
			{
				const char *v[7];

				if ((r1 = resolve(im, &im->teams, o, "team", path)) == NULL ||
					(e = define_key(im, &im->staff, o, path)) == NULL)
					return false;
				e->team = r1;
				if (!need_id(im, r1))
					return false;
				v[0] = ID_TEXT(b1, r1->id);
				v[1] = get_str(o, "display_name");
				v[2] = get_str(o, "role");
				v[3] = get_num(o, "fte", b2, sizeof(b2));
				v[4] = get_str(o, "db_role");
				v[5] = get_num(o, "employment_share", b3, sizeof(b3));
				v[6] = get_num(o, "weekly_hours", b4, sizeof(b4));
				if (!v[3])
					v[3] = "1.0";
				if (!v[5])
					v[5] = "1.0";
				if (!v[6])
					v[6] = "37.5";
				if (im->merge)
				{
					bool		found = false;

					if (!lookup_id(im, "m_staff", 3, v, path, e, &found) || found)
						return found;
				}
				im->n.staff++;
				return send_stmt(im, "add_staff", 7, v, path, &e->id);
			}
		case S_CLIENTS:
			{
				const char *v[3];

				if ((e = define_key(im, &im->clients, o, path)) == NULL)
					return false;
				v[0] = get_str(o, "host_ref");
				v[1] = get_num(o, "birth_year", b1, sizeof(b1));
				v[2] = get_str(o, "municipality");
				if (im->merge)
				{
					bool		found = false;

					if (!lookup_id(im, "m_client", 1, v, path, e, &found) || found)
						return found;
				}
				im->n.clients++;
				return send_stmt(im, "add_client", 3, v, path, &e->id);
			}
		case S_CARE:
			{
				const char *v[4];

				if ((r1 = resolve(im, &im->clients, o, "client", path)) == NULL || !need_id(im, r1))
					return false;
				v[0] = ID_TEXT(b1, r1->id);
				v[1] = get_str(o, "unit");
				v[2] = get_str(o, "started_on");
				v[3] = get_str(o, "ended_on");
				if (im->merge)
				{
					char	   *t = NULL;
					char	   *bar;
					bool		ok = true;

					if (!lookup(im, "m_care", 3, v, path, &t))
						return false;
					if (t != NULL)
					{
						bar = strchr(t, '|');
						if (bar && strcmp(bar + 1, v[3] ? v[3] : "") == 0)
							im->unchanged++;
						else if (bar && bar[1] == '\0' && v[3])
						{
							const char *ev[2] = {t, v[3]};

							*bar = '\0';
							im->n.care++;
							ok = send_stmt(im, "end_care", 2, ev, path, NULL);
						}
						else
							ok = fail(im, path, "conflicts with the record: this care relationship %s on %s there",
									  bar && bar[1] ? "ended" : "has not ended", bar && bar[1] ? bar + 1 : "any day");
						free(t);
						return ok;
					}
				}
				im->n.care++;
				return send_stmt(im, v[3] ? "start_end_care" : "start_care", v[3] ? 4 : 3, v, path, NULL);
			}
		case S_CONSENTS:
			{
				const char *v[3];

				if ((r1 = resolve(im, &im->clients, o, "client", path)) == NULL || !need_id(im, r1))
					return false;
				v[0] = ID_TEXT(b1, r1->id);
				v[1] = get_str(o, "scope");
				v[2] = get_str(o, "given_on");
				if (im->merge)
				{
					char	   *t = NULL;
					const char *w = get_str(o, "withdrawn_on");
					bool		ok = true;

					if (!lookup(im, "m_consent", 3, v, path, &t))
						return false;
					if (t != NULL)
					{
						if (strcmp(t, w ? w : "") == 0)
							im->unchanged++;
						else if (t[0] == '\0' && w)
						{
							v[2] = w;
							im->n.consents++;
							ok = send_stmt(im, "withdraw_consent", 3, v, path, NULL);
						}
						else
							ok = fail(im, path, "conflicts with the record: this consent %s%s there",
									  t[0] ? "was withdrawn on " : "is not withdrawn", t);
						free(t);
						return ok;
					}
				}
				im->n.consents++;
				if (!send_stmt(im, "give_consent", 3, v, path, NULL))
					return false;
				if ((v[2] = get_str(o, "withdrawn_on")) != NULL)
					return send_stmt(im, "withdraw_consent", 3, v, path, NULL);
				return true;
			}
		case S_EMPLOYERS:
			{
				const char *v[3] = {get_str(o, "name"), get_str(o, "business_id"), get_str(o, "industry")};

				bool		found = false;

				if ((e = define_key(im, &im->employers, o, path)) == NULL)
					return false;
				if (im->merge && (!lookup_id(im, "m_employer", 2, v, path, e, &found) || found))
					return found;
				im->n.employers++;
				return send_stmt(im, "add_employer", 3, v, path, &e->id);
			}
		case S_EMPCONTACTS:
			{
				const char *v[7];

				if ((r1 = resolve(im, &im->staff, o, "staff", path)) == NULL ||
					(r2 = resolve(im, &im->employers, o, "employer", path)) == NULL)
					return false;
				r3 = NULL;
				if (get_str(o, "episode") &&
					(r3 = resolve(im, &im->episodes, o, "episode", path)) == NULL)
					return false;
				if (!need_id(im, r1) || !need_id(im, r2) || (r3 && !need_id(im, r3)))
					return false;
				v[0] = ID_TEXT(b1, r1->id);
				v[1] = ID_TEXT(b2, r2->id);
				v[2] = get_str(o, "at");
				v[3] = get_bool(o, "in_person", "true");
				v[4] = r3 ? ID_TEXT(b3, r3->id) : NULL;
				v[5] = get_bool(o, "by_client", "false");
				v[6] = get_bool(o, "competitive", "true");
				if (r3 == NULL && strcmp(v[5], "true") == 0)
				{
					return fail(im, path, "a contact made by the client (by_client) needs \"episode\"");
				}
				if (im->merge)
				{
					char	   *t = NULL;
					const char *lv[4] = {v[0], v[1], v[2], v[4]};

					if (!lookup(im, "m_empcontact", 4, lv, path, &t))
						return false;
					if (t != NULL)
					{
						free(t);
						im->unchanged++;
						return true;
					}
				}
				im->n.empcontacts++;
				return copy_row(im, C_EMPCONTACT, 7, v, im->section_index, -1);
			}
		case S_MEETINGS:
			{
				const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "attendees");
				const cJSON *k;
				int			i = 0;
				bool		sent = false;
				char		sub[256];

				if ((r1 = resolve(im, &im->teams, o, "team", path)) == NULL)
					return false;
				cJSON_ArrayForEach(k, a)
				{
					const char *v[2];
					Entry	   *st;

					snprintf(sub, sizeof(sub), "%s.attendees[%d]", path, i++);
					st = map_find(&im->staff, k->valuestring);
					if (st == NULL)
						return fail(im, sub, "unknown staff member \"%s\" (not defined in $.staff)", k->valuestring);
					if (st->team != r1)
						return fail(im, sub, "staff member \"%s\" is not in team \"%s\"", k->valuestring, r1->key);
					if (!need_id(im, st))
						return false;
					v[0] = ID_TEXT(b5, st->id);
					v[1] = get_str(o, "met_on");
					if (im->merge)
					{
						char	   *t = NULL;

						if (!lookup(im, "m_meeting", 2, v, sub, &t))
							return false;
						free(t);
						if (t != NULL)
						{
							im->unchanged++;
							continue;
						}
					}
					if (!send_stmt(im, "team_meeting", 2, v, sub, NULL))
						return false;
					sent = true;
				}
				if (sent)
					im->n.meetings++;
				return true;
			}
		default:
			return fail(im, path, "internal error: unexpected section");
	}
}

/* One dated thing to do for an episode, sorted by time. */
typedef struct Action
{
	int64_t		at;				/* epoch seconds */
	int			prio;			/* order among equal times */
	int			seq;			/* order in the document */
	int			type;
	const cJSON *item;
	int			index;			/* index in its array */
} Action;

enum
{
	A_ASSIGN, A_EVENT, A_CAREER, A_CONTACT, A_EMPCONTACT, A_JOB_START, A_JOB_END,
	A_STUDY_START, A_STUDY_END
};

/* Orders actions by time, then priority, then document order. */
static int
cmp_action(const void *a, const void *b)
{
	const Action *x = a,
			   *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->prio != y->prio)
		return x->prio - y->prio;
	return x->seq - y->seq;
}

/* The instant a local day starts in Europe/Helsinki (the sort key of a date). */
static int64_t
day_start(const char *date)
{
	int			days = 0;

	parse_date(date, &days);
	return (int64_t) days * 86400 - helsinki_offset_minutes(days) * 60;
}

/* Appends the actions of one episode array member. */
static bool
collect(Import *im, Action **acts, int *n, int *cap, const cJSON *ep, const char *name,
		int type, const char *datefield, int64_t day_offset, int prio)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(ep, name);
	const cJSON *it;
	int			i = 0;

	cJSON_ArrayForEach(it, arr)
	{
		const char *d = get_str(it, datefield);

		if (d == NULL)
		{
			i++;
			continue;			/* e.g. a job without an end */
		}
		if (*n == *cap)
		{
			int			ncap = *cap ? *cap * 2 : 64;
			Action	   *na = realloc(*acts, ncap * sizeof(Action));

			if (na == NULL)
				return fail(im, "$", "out of memory");
			*acts = na;
			*cap = ncap;
		}
		(*acts)[*n].type = type;
		(*acts)[*n].item = it;
		(*acts)[*n].index = i++;
		(*acts)[*n].prio = prio;
		(*acts)[*n].seq = *n;
		if (type == A_EVENT || type == A_CONTACT || type == A_EMPCONTACT)
			parse_timestamp(d, &(*acts)[*n].at);
		else
			(*acts)[*n].at = day_start(d) + day_offset;
		(*n)++;
	}
	return true;
}

/*
 * --merge: decides one fact of an episode on record: 1 it is on record
 * already, 0 it is new, -1 it contradicts the record (the import stops with
 * its JSON path).
 */
static int
merge_fact(Import *im, const cJSON *facts, const Action *a, long index)
{
	const cJSON *it = a->item;
	char		path[256],
				key[256];
	const char *found;
	int64_t		at = 0;
	Entry	   *r1,
			   *r2;

	switch (a->type)
	{
		case A_ASSIGN:
			snprintf(path, sizeof(path), "$.episodes[%ld].specialists[%d]", index, a->index);
			if ((r1 = resolve(im, &im->staff, it, "staff", path)) == NULL || !need_id(im, r1))
				return -1;
			snprintf(key, sizeof(key), "%lld|%s", (long long) r1->id, get_str(it, "from_on"));
			return facts_have(facts, "assign", key) ? 1 : 0;
		case A_EVENT:
			{
				const cJSON *last = cJSON_GetObjectItemCaseSensitive(facts, "last");

				snprintf(path, sizeof(path), "$.episodes[%ld].events[%d]", index, a->index);
				parse_timestamp(get_str(it, "at"), &at);
				snprintf(key, sizeof(key), "%s|%lld", get_str(it, "to"), (long long) at);
				if (facts_have(facts, "history", key))
					return 1;
				if (cJSON_IsNumber(last) && at <= (int64_t) last->valuedouble)
				{
					fail(im, path, "conflicts with the record: the episode's state history has no change to %s "
						 "at %s, and a later change is on record (a feed adds only what comes after the latest "
						 "change; correct the record or the document)", get_str(it, "to"), get_str(it, "at"));
					return -1;
				}
				return 0;
			}
		case A_CAREER:
			{
				const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(facts, "career"));

				snprintf(path, sizeof(path), "$.episodes[%ld].career_profile_on", index);
				if (c == NULL)
					return 0;
				if (strcmp(c, get_str(it, "career_profile_on")) == 0)
					return 1;
				fail(im, path, "conflicts with the record: the career profile was completed on %s there", c);
				return -1;
			}
		case A_CONTACT:
			snprintf(path, sizeof(path), "$.episodes[%ld].contacts[%d]", index, a->index);
			if ((r1 = resolve(im, &im->staff, it, "staff", path)) == NULL || !need_id(im, r1))
				return -1;
			parse_timestamp(get_str(it, "at"), &at);
			snprintf(key, sizeof(key), "%lld|%lld|%s", (long long) r1->id, (long long) at, get_str(it, "kind"));
			return facts_have(facts, "contacts", key) ? 1 : 0;
		case A_EMPCONTACT:
			snprintf(path, sizeof(path), "$.episodes[%ld].employer_contacts[%d]", index, a->index);
			if ((r1 = resolve(im, &im->staff, it, "staff", path)) == NULL ||
				(r2 = resolve(im, &im->employers, it, "employer", path)) == NULL ||
				!need_id(im, r1) || !need_id(im, r2))
				return -1;
			parse_timestamp(get_str(it, "at"), &at);
			snprintf(key, sizeof(key), "%lld|%lld|%lld", (long long) r1->id, (long long) r2->id, (long long) at);
			return facts_have(facts, "empcontacts", key) ? 1 : 0;
		case A_JOB_START:
		case A_JOB_END:
			snprintf(path, sizeof(path), "$.episodes[%ld].jobs[%d]", index, a->index);
			if ((r1 = resolve(im, &im->employers, it, "employer", path)) == NULL || !need_id(im, r1))
				return -1;
			snprintf(key, sizeof(key), "%lld|%s|", (long long) r1->id, get_str(it, "starts_on"));
			found = facts_find(facts, "jobs", key);
			if (a->type == A_JOB_START || found == NULL)
				return found ? 1 : 0;
			found += strlen(key);
			if (strcmp(found, get_str(it, "ends_on")) == 0)
				return 1;
			if (found[0] == '\0')
				return 0;
			fail(im, path, "conflicts with the record: this job ended on %s there", found);
			return -1;
		case A_STUDY_START:
		case A_STUDY_END:
			snprintf(path, sizeof(path), "$.episodes[%ld].studies[%d]", index, a->index);
			snprintf(key, sizeof(key), "%s|", get_str(it, "starts_on"));
			found = facts_find(facts, "studies", key);
			if (a->type == A_STUDY_START || found == NULL)
				return found ? 1 : 0;
			found += strlen(key);
			if (strcmp(found, get_str(it, "ends_on")) == 0)
				return 1;
			if (found[0] == '\0')
				return 0;
			fail(im, path, "conflicts with the record: these studies ended on %s there", found);
			return -1;
	}
	return 0;
}

/*
 * Sends everything of one episode (its id is known) in time order.  With
 * --merge, facts is what the record holds (NULL for a new episode): a fact on
 * record is skipped, a new one added, and one that contradicts the record
 * stops the import.
 */
static bool
import_episode_facts(Import *im, const cJSON *ep, Entry *ee, long index, const cJSON *facts)
{
	Action	   *acts = NULL;
	int			n = 0,
				cap = 0;
	char		path[256];
	char		b1[32],
				b2[32],
				b3[32],
				b4[32];
	bool		ok = true;
	const char *cp;
	Entry	   *client;
	char		client_text[32];

	/*
	 * Order within one instant: assignment, end of a job or studies (their
	 * state change counts from the next day's start), starts, career
	 * profile, then the timed facts.
	 */
	if (!collect(im, &acts, &n, &cap, ep, "specialists", A_ASSIGN, "from_on", 0, 0) ||
		!collect(im, &acts, &n, &cap, ep, "jobs", A_JOB_END, "ends_on", 86400, 1) ||
		!collect(im, &acts, &n, &cap, ep, "studies", A_STUDY_END, "ends_on", 86400, 1) ||
		!collect(im, &acts, &n, &cap, ep, "jobs", A_JOB_START, "starts_on", 0, 2) ||
		!collect(im, &acts, &n, &cap, ep, "studies", A_STUDY_START, "starts_on", 0, 2) ||
		!collect(im, &acts, &n, &cap, ep, "events", A_EVENT, "at", 0, 4) ||
		!collect(im, &acts, &n, &cap, ep, "contacts", A_CONTACT, "at", 0, 4) ||
		!collect(im, &acts, &n, &cap, ep, "employer_contacts", A_EMPCONTACT, "at", 0, 4))
	{
		free(acts);
		return false;
	}
	if ((cp = get_str(ep, "career_profile_on")) != NULL)
	{
		if (n == cap)
		{
			Action	   *na = realloc(acts, (cap + 1) * sizeof(Action));

			if (na == NULL)
			{
				free(acts);
				return fail(im, "$", "out of memory");
			}
			acts = na;
		}
		acts[n].type = A_CAREER;
		acts[n].item = ep;
		acts[n].index = 0;
		acts[n].prio = 3;
		acts[n].seq = n;
		acts[n].at = day_start(cp);
		n++;
	}
	if (n > 1)
		qsort(acts, n, sizeof(Action), cmp_action);

	ID_TEXT(b1, ee->id);
	snprintf(path, sizeof(path), "$.episodes[%ld]", index);
	if ((client = resolve(im, &im->clients, ep, "client", path)) == NULL || !need_id(im, client))
	{
		free(acts);
		return false;
	}
	ID_TEXT(client_text, client->id);
	for (int k = 0; k < n && ok; k++)
	{
		const cJSON *it = acts[k].item;
		const char *v[7];
		Entry	   *r1,
				   *r2;

		v[0] = b1;
		if (facts)
		{
			int			m = merge_fact(im, facts, &acts[k], index);

			if (m < 0)
			{
				ok = false;
				break;
			}
			if (m > 0)
			{
				im->unchanged++;
				continue;
			}
		}
		switch (acts[k].type)
		{
			case A_ASSIGN:
				snprintf(path, sizeof(path), "$.episodes[%ld].specialists[%d]", index, acts[k].index);
				if ((r1 = resolve(im, &im->staff, it, "staff", path)) == NULL || !need_id(im, r1))
				{
					ok = false;
					break;
				}
				v[1] = ID_TEXT(b2, r1->id);
				v[2] = get_str(it, "from_on");
				ok = send_stmt(im, "assign", 3, v, path, NULL);
				break;
			case A_EVENT:
				snprintf(path, sizeof(path), "$.episodes[%ld].events[%d].to", index, acts[k].index);
				v[1] = get_str(it, "to");
				v[2] = get_str(it, "at");
				v[3] = get_str(it, "reason");
				im->n.transitions++;
				ok = send_stmt(im, "transition", 4, v, path, NULL);
				break;
			case A_CAREER:
				snprintf(path, sizeof(path), "$.episodes[%ld].career_profile_on", index);
				v[1] = get_str(it, "career_profile_on");
				ok = send_stmt(im, "career_profile", 2, v, path, NULL);
				break;
			case A_CONTACT:
				snprintf(path, sizeof(path), "$.episodes[%ld].contacts[%d]", index, acts[k].index);
				if ((r1 = resolve(im, &im->staff, it, "staff", path)) == NULL || !need_id(im, r1))
				{
					ok = false;
					break;
				}
				v[1] = ID_TEXT(b2, r1->id);
				v[2] = get_str(it, "at");
				v[3] = get_str(it, "kind");
				v[4] = get_str(it, "mode");
				v[5] = get_str(it, "setting");
				v[6] = get_num(it, "minutes", b3, sizeof(b3));
				if (!v[4])
					v[4] = "in_person";
				if (!v[5])
					v[5] = "community";
				if (!check_contact_codes(im, it, path))
				{
					ok = false;
					break;
				}
				im->n.contacts++;
				/* outreach attempts count for a closure as disengaged: in order */
				if (strcmp(v[3], "outreach_attempt") == 0)
					ok = send_stmt(im, "contact", 7, v, path, NULL);
				else
				{
					/* with the episode's client, which the guard then checks instead of filling in */
					const char *cv[8] = {v[0], client_text, v[1], v[2], v[3], v[4], v[5], v[6]};

					ok = copy_row(im, C_CONTACT, 8, cv, index, acts[k].index);
				}
				break;
			case A_EMPCONTACT:
				snprintf(path, sizeof(path), "$.episodes[%ld].employer_contacts[%d]", index, acts[k].index);
				if ((r1 = resolve(im, &im->staff, it, "staff", path)) == NULL ||
					(r2 = resolve(im, &im->employers, it, "employer", path)) == NULL ||
					!need_id(im, r1) || !need_id(im, r2))
				{
					ok = false;
					break;
				}
				v[0] = ID_TEXT(b2, r1->id);
				v[1] = ID_TEXT(b3, r2->id);
				v[2] = get_str(it, "at");
				v[3] = get_bool(it, "in_person", "true");
				v[4] = b1;
				v[5] = get_bool(it, "by_client", "false");
				v[6] = get_bool(it, "competitive", "true");
				im->n.empcontacts++;
				ok = copy_row(im, C_EMPCONTACT, 7, v, index, acts[k].index);
				break;
			case A_JOB_START:
				snprintf(path, sizeof(path), "$.episodes[%ld].jobs[%d]", index, acts[k].index);
				if ((r1 = resolve(im, &im->employers, it, "employer", path)) == NULL || !need_id(im, r1))
				{
					ok = false;
					break;
				}
				v[1] = ID_TEXT(b2, r1->id);
				v[2] = get_str(it, "starts_on");
				v[3] = get_str(it, "kind");
				v[4] = get_str(it, "occupation");
				v[5] = get_num(it, "hours_per_week", b3, sizeof(b3));
				v[6] = get_str(it, "title");
				if (!v[3])
					v[3] = "competitive";
				im->n.jobs++;
				ok = send_stmt(im, "start_job", 7, v, path, NULL);
				break;
			case A_JOB_END:
				snprintf(path, sizeof(path), "$.episodes[%ld].jobs[%d].ends_on", index, acts[k].index);
				if ((r1 = resolve(im, &im->employers, it, "employer", path)) == NULL || !need_id(im, r1))
				{
					ok = false;
					break;
				}
				v[1] = ID_TEXT(b2, r1->id);
				v[2] = get_str(it, "starts_on");
				v[3] = get_str(it, "ends_on");
				v[4] = get_str(it, "end_reason");
				ok = send_stmt(im, "end_job", 5, v, path, NULL);
				break;
			case A_STUDY_START:
				snprintf(path, sizeof(path), "$.episodes[%ld].studies[%d]", index, acts[k].index);
				v[1] = get_str(it, "starts_on");
				v[2] = get_str(it, "programme");
				im->n.studies++;
				ok = send_stmt(im, "start_studies", 3, v, path, NULL);
				break;
			case A_STUDY_END:
				snprintf(path, sizeof(path), "$.episodes[%ld].studies[%d].ends_on", index, acts[k].index);
				v[1] = get_str(it, "starts_on");
				v[2] = get_str(it, "ends_on");
				ok = send_stmt(im, "end_studies", 3, v, path, NULL);
				break;
		}
	}
	(void) b4;
	free(acts);
	return ok;
}

/* Refers the batched episodes, waits for their ids, then sends their facts. */
static bool
flush_episodes(Import *im)
{
	bool		ok = true;
	char		path[64];
	char		b1[32],
				b2[32];

	for (int k = 0; k < im->nbatch && ok; k++)
	{
		const cJSON *ep = im->batch[k];
		Entry	   *c,
				   *t;
		const char *v[5];

		snprintf(path, sizeof(path), "$.episodes[%ld]", im->batch_index[k]);
		if ((c = resolve(im, &im->clients, ep, "client", path)) == NULL ||
			(t = resolve(im, &im->teams, ep, "team", path)) == NULL ||
			!need_id(im, c) || !need_id(im, t))
		{
			ok = false;
			break;
		}
		v[0] = ID_TEXT(b1, c->id);
		v[1] = ID_TEXT(b2, t->id);
		v[2] = get_str(ep, "referred_on");
		v[3] = get_str(ep, "source");
		v[4] = get_bool(ep, "out_of_work_at_entry", NULL);
		im->batch_facts[k] = NULL;
		if (im->merge)
		{
			bool		found = false;

			/* an episode is the client's referral to the team on that day */
			if (!lookup_id(im, "m_episode", 3, v, path, im->batch_entry[k], &found))
			{
				ok = false;
				break;
			}
			if (found)
			{
				char	   *f = NULL;
				const char *fv[1] = {ID_TEXT(b2, im->batch_entry[k]->id)};

				if (!lookup(im, "m_facts", 1, fv, path, &f))
				{
					ok = false;
					break;
				}
				im->batch_facts[k] = f ? cJSON_Parse(f) : NULL;
				free(f);
				if (im->batch_facts[k] == NULL)
				{
					ok = fail(im, path, "could not read the episode's record");
					break;
				}
				im->n.episodes--;	/* counted as unchanged, its facts as they come */
				continue;
			}
		}
		ok = send_stmt(im, "refer", 5, v, path, &im->batch_entry[k]->id);
	}
	if (ok && im->nbatch > 0 && !pipe_drain(&im->pipe))
		ok = false;
	for (int k = 0; k < im->nbatch && ok; k++)
	{
		if (im->batch_entry[k]->id == 0)
		{
			snprintf(path, sizeof(path), "$.episodes[%ld]", im->batch_index[k]);
			ok = fail(im, path, "the referral returned no episode id");
			break;
		}
		ok = import_episode_facts(im, im->batch[k], im->batch_entry[k], im->batch_index[k], im->batch_facts[k]);
	}
	for (int k = 0; k < im->nbatch; k++)
	{
		cJSON_Delete(im->batch[k]);
		cJSON_Delete(im->batch_facts[k]);
		im->batch_facts[k] = NULL;
	}
	im->nbatch = 0;
	return ok;
}

/* Parses the current element of the reader with cJSON; NULL on a syntax error. */
static cJSON *
parse_element(Import *im, const char *path)
{
	const char *end = NULL;
	cJSON	   *v = cJSON_ParseWithLengthOpts(im->js.elem, im->js.elemlen, &end, 0);

	if (v == NULL || (end && (size_t) (end - im->js.elem) < im->js.elemlen))
	{
		const char *at = cJSON_GetErrorPtr();
		long long	line = im->js.elem_line,
					col = im->js.elem_col;

		if (v == NULL && at && at >= im->js.elem && at <= im->js.elem + im->js.elemlen)
		{
			for (const char *p = im->js.elem; p < at; p++)
			{
				if (*p == '\n')
					line++, col = 1;
				else if (((unsigned char) *p & 0xC0) != 0x80)
					col++;
			}
		}
		cJSON_Delete(v);
		fail(im, path, "malformed JSON near line %lld, column %lld", line, col);
		return NULL;
	}
	return v;
}

/* Reads one section array element by element. */
static bool
import_section(Import *im, Section s)
{
	long		index = 0;
	char		path[128];
	int			r;
	double		t0 = now_seconds();

	im->section_index = 0;

	if (!js_open_array(&im->js))
		return fail(im, "$", "\"%s\" must be an array: %s", section_names[s], im->js.errmsg);
	for (;;)
	{
		cJSON	   *el;

		snprintf(path, sizeof(path), "$.%s[%ld]", section_names[s], index);
		r = js_next_element(&im->js);
		if (r < 0)
			return fail(im, path, "%s", im->js.errmsg);
		if (r == 0)
			break;
		if ((el = parse_element(im, path)) == NULL)
			return false;
		if (!check_object(im, el, section_specs[s], path))
		{
			cJSON_Delete(el);
			return false;
		}
		if (s == S_EPISODES)
		{
			Entry	   *e = define_key(im, &im->episodes, el, path);

			if (e == NULL)
			{
				cJSON_Delete(el);
				return false;
			}
			im->batch[im->nbatch] = el;
			im->batch_entry[im->nbatch] = e;
			im->batch_index[im->nbatch] = index;
			im->nbatch++;
			im->n.episodes++;
			if (im->nbatch == EPISODE_BATCH && !flush_episodes(im))
				return false;
		}
		else
		{
			bool		ok;

			im->section_index = index;
			ok = import_simple(im, s, el, path);

			cJSON_Delete(el);
			if (!ok)
				return false;
		}
		index++;
	}
	if (s == S_EPISODES && !flush_episodes(im))
		return false;
	/* the section's statements are done before the next section starts (its time is its own) */
	if (!pipe_drain(&im->pipe))
		return false;
	im->section_seen[s] = true;
	im->section_count[s] = index;
	im->section_secs[s] = now_seconds() - t0;
	return true;
}

/* The prepared statements: each calls one public function of the extension. */
static const char *const statements[][2] = {
	{"add_team", "SELECT ips.add_team($1::text, $2::text)"},
	{"add_staff", "SELECT ips.add_staff($1::bigint, $2::text, $3::text, $4::numeric, $5::name, $6::numeric, $7::numeric)"},
	{"add_client", "SELECT ips.add_client($1::text, $2::int, $3::text)"},
	{"start_care", "SELECT ips.start_care_relationship($1::bigint, $2::text, $3::date)"},
	{"start_end_care", "SELECT ips.end_care_relationship(ips.start_care_relationship($1::bigint, $2::text, $3::date), $4::date)"},
	{"give_consent", "SELECT ips.give_consent($1::bigint, $2::text, $3::date)"},
	{"withdraw_consent", "SELECT ips.withdraw_consent($1::bigint, $2::text, $3::date)"},
	{"add_employer", "SELECT ips.add_employer($1::text, $2::text, $3::text)"},
	/* the referral, and whether the client was out of work at entry when the document says */
	{"refer", "SELECT CASE WHEN $5::boolean IS NULL THEN r.id"
		" ELSE (SELECT r.id FROM ips.set_out_of_work_at_entry(r.id, $5::boolean)) END"
	" FROM (SELECT ips.refer($1::bigint, $2::bigint, $3::date, $4::text) AS id OFFSET 0) r"},
	{"assign", "SELECT ips.assign_specialist($1::bigint, $2::bigint, $3::date)"},
	{"transition", "SELECT ips.transition($1::bigint, $2::text, $3::timestamptz, $4::text)"},
	{"career_profile", "SELECT ips.complete_career_profile($1::bigint, $2::date)"},
	{"contact", "SELECT ips.record_contact($1::bigint, $2::bigint, $3::timestamptz, $4::text, $5::text, $6::text, $7::int)"},
	{"employer_contact", "SELECT ips.record_employer_contact($1::bigint, $2::bigint, $3::timestamptz, $4::boolean, $5::bigint, $6::boolean, $7::boolean)"},
	{"start_job", "SELECT ips.start_job($1::bigint, $2::bigint, $3::date, $4::text, $5::text, $6::numeric, $7::text)"},
	/* a job is named by its episode, employer and start; the earliest open one ends */
	{"end_job", "SELECT ips.end_job((SELECT j.job_id FROM ips.job j WHERE j.episode_id = $1::bigint"
		" AND j.employer_id = $2::bigint AND j.starts_on = $3::date AND j.ends_on IS NULL"
	" ORDER BY j.job_id LIMIT 1), $4::date, $5::text)"},
	{"start_studies", "SELECT ips.start_studies($1::bigint, $2::date, $3::text)"},
	{"end_studies", "SELECT ips.end_studies((SELECT s.study_id FROM ips.study s WHERE s.episode_id = $1::bigint"
		" AND s.starts_on = $2::date AND s.ends_on IS NULL ORDER BY s.study_id LIMIT 1), $3::date)"},
	{"team_meeting", "SELECT ips.record_team_meeting($1::bigint, $2::date)"},
	{"end_care", "SELECT ips.end_care_relationship($1::bigint, $2::date)"},
	/* --merge: what the record holds, by the keys the document carries */
	{"m_meeting", "SELECT 1 FROM ips.team_meeting m WHERE m.staff_id = $1::bigint AND m.met_on = $2::date"},
	{"m_team", "SELECT t.team_id FROM ips.team t WHERE t.name = $1::text AND t.region = $2::text"},
	{"m_staff", "SELECT s.staff_id FROM ips.staff s WHERE s.team_id = $1::bigint AND s.display_name = $2::text"
	" AND s.role = $3::text ORDER BY s.staff_id LIMIT 1"},
	{"m_client", "SELECT c.client_id FROM ips.client c WHERE c.host_ref = $1::text"},
	{"m_employer", "SELECT e.employer_id FROM ips.employer e WHERE CASE WHEN $2::text IS NULL"
		" THEN e.name = $1::text AND e.business_id IS NULL ELSE e.business_id::text = $2::text END"
	" ORDER BY e.employer_id LIMIT 1"},
	{"m_care", "SELECT r.care_relationship_id || '|' || coalesce(to_char(r.ended_on, 'YYYY-MM-DD'), '')"
		" FROM ips.care_relationship r WHERE r.client_id = $1::bigint AND r.unit = $2::text"
	" AND r.started_on = $3::date ORDER BY r.care_relationship_id LIMIT 1"},
	{"m_consent", "SELECT coalesce(to_char(c.withdrawn_on, 'YYYY-MM-DD'), '') FROM ips.consent c"
		" WHERE c.client_id = $1::bigint AND c.scope = $2::text AND c.given_on = $3::date"
	" ORDER BY c.consent_id LIMIT 1"},
	{"m_empcontact", "SELECT 1 FROM ips.employer_contact x WHERE x.staff_id = $1::bigint"
		" AND x.employer_id = $2::bigint AND x.at = $3::timestamptz"
	" AND x.episode_id IS NOT DISTINCT FROM $4::bigint LIMIT 1"},
	{"m_episode", "SELECT e.episode_id FROM ips.episode e WHERE e.client_id = $1::bigint AND e.team_id = $2::bigint"
	" AND e.referred_on = $3::date ORDER BY e.episode_id LIMIT 1"},
	{"m_facts", "SELECT pg_catalog.jsonb_build_object("
		"'assign', (SELECT coalesce(jsonb_agg(a.staff_id || '|' || to_char(a.from_on, 'YYYY-MM-DD')), '[]')"
		" FROM ips.specialist_assignment a WHERE a.episode_id = $1::bigint),"
		"'history', (SELECT coalesce(jsonb_agg(h.to_state || '|' || floor(extract(epoch FROM h.at))::bigint), '[]')"
		" FROM ips.episode_state_history h WHERE h.episode_id = $1::bigint),"
		"'last', (SELECT floor(extract(epoch FROM max(h.at)))::bigint FROM ips.episode_state_history h"
		" WHERE h.episode_id = $1::bigint),"
		"'career', (SELECT to_char(e.career_profile_on, 'YYYY-MM-DD') FROM ips.episode e WHERE e.episode_id = $1::bigint),"
		"'contacts', (SELECT coalesce(jsonb_agg(c.staff_id || '|' || floor(extract(epoch FROM c.at))::bigint || '|' || c.kind), '[]')"
		" FROM ips.contact c WHERE c.episode_id = $1::bigint),"
		"'empcontacts', (SELECT coalesce(jsonb_agg(x.staff_id || '|' || x.employer_id || '|' || floor(extract(epoch FROM x.at))::bigint), '[]')"
		" FROM ips.employer_contact x WHERE x.episode_id = $1::bigint),"
		"'jobs', (SELECT coalesce(jsonb_agg(j.employer_id || '|' || to_char(j.starts_on, 'YYYY-MM-DD') || '|'"
		" || coalesce(to_char(j.ends_on, 'YYYY-MM-DD'), '') ORDER BY j.job_id), '[]') FROM ips.job j WHERE j.episode_id = $1::bigint),"
		"'studies', (SELECT coalesce(jsonb_agg(to_char(s.starts_on, 'YYYY-MM-DD') || '|'"
		" || coalesce(to_char(s.ends_on, 'YYYY-MM-DD'), '') ORDER BY s.study_id), '[]') FROM ips.study s WHERE s.episode_id = $1::bigint))::text"},
};

/* Prepares every statement; false (with the server's message) on failure. */
static bool
prepare_statements(PGconn *conn)
{
	for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++)
	{
		PGresult   *res = PQprepare(conn, statements[i][0], statements[i][1], 0, NULL);

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			print_pg_error("could not prepare the import (is the extension ips up to date?)", res, conn);
			PQclear(res);
			return false;
		}
		PQclear(res);
	}
	return true;
}

/* Reads the whole document: the header members, then the sections in order. */
static bool
import_document(Import *im)
{
	char		key[128];
	int			next_section = 0;
	bool		have_format = false,
				have_version = false;

	if (!js_open_object(&im->js))
		return fail(im, "$", "%s", im->js.errmsg);
	for (;;)
	{
		JsonToken	t = js_next_key(&im->js, key, sizeof(key));
		char		path[160];
		int			s;

		if (t == JS_ERROR)
			return fail(im, "$", "%s", im->js.errmsg);
		if (t == JS_END)
			break;
		snprintf(path, sizeof(path), "$.%s", key);
		if (strcmp(key, "format") == 0 || strcmp(key, "version") == 0 || strcmp(key, "meta") == 0)
		{
			cJSON	   *v;

			if (next_section > 0)
				return fail(im, path, "\"%s\" must come before the sections", key);
			if (!js_read_value(&im->js))
				return fail(im, path, "%s", im->js.errmsg);
			if ((v = parse_element(im, path)) == NULL)
				return false;
			if (strcmp(key, "format") == 0)
			{
				bool		ok = cJSON_IsString(v) && strcmp(v->valuestring, "ips-import") == 0;

				cJSON_Delete(v);
				if (!ok || have_format)
					return fail(im, path, "must be \"ips-import\" (once)");
				have_format = true;
			}
			else if (strcmp(key, "version") == 0)
			{
				bool		ok = cJSON_IsNumber(v) && v->valuedouble == 1.0;

				cJSON_Delete(v);
				if (!ok || have_version)
					return fail(im, path, "unsupported version (this ipsctl reads version 1)");
				have_version = true;
			}
			else
			{
				bool		ok = cJSON_IsObject(v);

				cJSON_Delete(v);
				if (!ok)
					return fail(im, path, "must be an object");
			}
			continue;
		}
		for (s = 0; s < S_COUNT; s++)
			if (strcmp(key, section_names[s]) == 0)
				break;
		if (s == S_COUNT)
			return fail(im, path, "unknown key \"%s\" (known: format, version, meta, teams, staff, clients, "
						"care_relationships, consents, employers, episodes, employer_contacts, team_meetings)", key);
		if (!have_format || !have_version)
			return fail(im, path, "\"format\": \"ips-import\" and \"version\": 1 must come first");
		if (s < next_section)
			return fail(im, path, "section \"%s\" is repeated or out of order (the order is: teams, staff, "
						"clients, care_relationships, consents, employers, episodes, employer_contacts, team_meetings)", key);
		next_section = s + 1;
		if (!import_section(im, (Section) s))
			return false;
	}
	if (!have_format || !have_version)
		return fail(im, "$", "not an import document: \"format\": \"ips-import\" and \"version\": 1 are missing");
	return true;
}

/* One line of --timing: what, how many, in how long, how many a second. */
static void
timing_line(const char *what, long long n, double secs)
{
	if (secs > 0)
		fprintf(stderr, "timing: %s: %lld in %.1f s (%.0f/s)\n", what, n, secs, n / secs);
	else
		fprintf(stderr, "timing: %s: %lld in %.1f s\n", what, n, secs);
}

/* --timing: the time and rate of each section and of each COPY, on stderr. */
static void
print_timing(const Import *im, double commit_secs, double total_secs)
{
	for (int s = 0; s < S_COUNT; s++)
		if (im->section_seen[s])
			timing_line(section_names[s], im->section_count[s], im->section_secs[s]);
	timing_line("contacts (COPY)", im->copy_lines[C_CONTACT], im->copy_secs[C_CONTACT]);
	timing_line("employer contacts (COPY)", im->copy_lines[C_EMPCONTACT], im->copy_secs[C_EMPCONTACT]);
	fprintf(stderr, "timing: commit: %.1f s\n", commit_secs);
	fprintf(stderr, "timing: total: %.1f s (%.0f contacts/s)\n", total_secs,
			total_secs > 0 ? (im->n.contacts + im->n.empcontacts) / total_secs : 0.0);
}

static const char *import_help =
"ipsctl import: load an import document (man ipsctl) in one transaction.\n"
"\n"
"Usage:\n"
"  ipsctl import [OPTIONS] FILE|-\n"
"\n"
"Options:\n"
"  -q, --quiet            no progress bar and no summary\n"
"  --merge                a daily feed: match teams (name, region), staff (team,\n"
"                         name, role), clients (host_ref), employers (business\n"
"                         id, else name), episodes (client, team, referral day)\n"
"                         and their facts with the record; add what is new and\n"
"                         change nothing else (the same document twice: nothing\n"
"                         the second time); a fact that contradicts the record\n"
"                         stops the import with its JSON path\n"
"  --timing               after the import, the time and rate of each section\n"
"                         and of the two COPY loads, on stderr (lines\n"
"                         \"timing: WHAT: N in S s (R/s)\")\n"
"  --help                 show this help\n"
"\n"
"Everything goes through the public functions of the extension, so its\n"
"checks and the episode state machine apply.  The first problem stops the\n"
"import with the JSON path of the element and the reason (e.g.\n"
"$.episodes[3].events[2]: the server refused it: ...); the transaction is\n"
"rolled back, so the database stays exactly as it was.\n"
"\n"
"Connection options as in psql: -h HOST -p PORT -U USER -d DBNAME -W.\n"
"\n"
"Exit codes: 0 imported, 1 bad data (nothing imported), 2 usage, 3 connection.\n";

/*
 * A refused transition is reported at ".to" of its event; when the server
 * objected to the time instead, point at ".at".
 */
static void
fix_event_path(char *error)
{
	char	   *colon = strstr(error, ": ");
	char	   *to;

	if (colon == NULL || colon - error < 4 || strncmp(colon - 3, ".to", 3) != 0)
		return;
	if (strstr(colon, "earlier than its previous transition") == NULL &&
		strstr(colon, "dated in the future") == NULL)
		return;
	to = colon - 3;
	to[1] = 'a';
	to[2] = 't';
}

/* Frees the import's state. */
static void
import_free(Import *im)
{
	for (int k = 0; k < im->nbatch; k++)
		cJSON_Delete(im->batch[k]);
	im->nbatch = 0;
	js_free(&im->js);
	for (int k = 0; k < 2; k++)
	{
		if (im->copy_data[k])
			fclose(im->copy_data[k]);
		if (im->copy_where[k])
			fclose(im->copy_where[k]);
	}
	map_free(&im->teams);
	map_free(&im->staff);
	map_free(&im->clients);
	map_free(&im->employers);
	map_free(&im->episodes);
}

/* ipsctl import: options, connection, one transaction. */
int
cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"quiet", no_argument, NULL, 'q'},
		{"timing", no_argument, NULL, 256},
		{"merge", no_argument, NULL, 257},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *conninfo = "";
	const char *file;
	bool		quiet = false;
	bool		timing = false;
	bool		merge = false;
	FILE	   *in;
	int			c,
				rc;
	Import	   *im;
	PGresult   *res;
	double		secs;
	double		commit_start;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:q", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'q':
				quiet = true;
				break;
			case 256:
				timing = true;
				break;
			case 257:
				merge = true;
				break;
			case 'h':
				fputs(import_help, stdout);
				return EXIT_OK;
			default:
				usage_error("import", "unknown or incomplete option \"%s\"", argv[optind - 1]);
				return EXIT_USAGE;
		}
	}
	if (optind != argc - 1)
	{
		usage_error("import", optind >= argc ? "no input file given (use - for stdin)" : "more than one input file given");
		return EXIT_USAGE;
	}
	file = argv[optind];
	if (strcmp(file, "-") == 0)
		in = stdin;
	else if ((in = fopen(file, "rb")) == NULL)
	{
		fprintf(stderr, "%s: could not open \"%s\": %m\n", progname, file);
		return EXIT_DATA;
	}

	im = calloc(1, sizeof(Import));
	if (im == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		return EXIT_DATA;
	}
	im->teams.what = "team";
	im->teams.section = "teams";
	im->staff.what = "staff member";
	im->staff.section = "staff";
	im->clients.what = "client";
	im->clients.section = "clients";
	im->employers.what = "employer";
	im->employers.section = "employers";
	im->episodes.what = "episode";
	im->episodes.section = "episodes";
	js_init(&im->js, in);
	im->timing = timing;
	im->merge = merge;
	im->progress = !quiet && isatty(fileno(stderr));
	for (int k = 0; k < 2; k++)
	{
		im->copy_data[k] = tmpfile();
		im->copy_where[k] = tmpfile();
		if (im->copy_data[k] == NULL || im->copy_where[k] == NULL)
		{
			fprintf(stderr, "%s: could not create a temporary file: %m\n", progname);
			import_free(im);
			free(im);
			if (in != stdin)
				fclose(in);
			return EXIT_DATA;
		}
	}
	{
		struct stat st;

		if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
			im->total_bytes = st.st_size;
	}

	im->conn = ips_connect(conninfo, &rc);
	if (im->conn == NULL)
	{
		import_free(im);
		free(im);
		if (in != stdin)
			fclose(in);
		return rc;
	}
	rc = EXIT_DATA;
	if (!extension_present(im->conn) || !prepare_statements(im->conn) || !load_vocabulary(im->conn))
		goto out;
	res = PQexec(im->conn, "BEGIN");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		print_pg_error("could not begin a transaction", res, im->conn);
		PQclear(res);
		goto out;
	}
	PQclear(res);
	im->started = now_seconds();
	if (!pipe_begin(&im->pipe, im->conn))
		goto rollback;
	if (import_document(im))
	{
		if (!pipe_drain(&im->pipe) && !im->pipe.failed)
			fail(im, "$", "the connection failed");
	}
	if (im->pipe.failed && im->pipe.error && !im->failed)
	{
		im->failed = true;
		snprintf(im->error, sizeof(im->error), "%s", im->pipe.error);
	}
	else if (im->pipe.failed && im->pipe.error)
	{
		/* a client-side error may be a consequence of an earlier server error */
		snprintf(im->error, sizeof(im->error), "%s", im->pipe.error);
	}
	pipe_end(&im->pipe);
	if (!im->failed)
	{
		if (im->progress)
			fprintf(stderr, "\r\033[Kloading %lld contacts and %lld employer contacts ...",
					im->copy_lines[C_CONTACT], im->copy_lines[C_EMPCONTACT]);
		if (run_copy(im, C_CONTACT))
			run_copy(im, C_EMPCONTACT);
	}
	show_progress(im, true);
	fix_event_path(im->error);
	if (im->failed)
		goto rollback;
	commit_start = now_seconds();
	res = PQexec(im->conn, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		print_pg_error("could not commit the import", res, im->conn);
		PQclear(res);
		goto out;
	}
	PQclear(res);
	secs = now_seconds() - im->started;
	if (im->timing)
		print_timing(im, now_seconds() - commit_start, secs);
	if (!quiet && merge)
		printf("merged: added %lld teams, %lld staff, %lld clients, %lld care relationships, %lld consents, "
			   "%lld employers, %lld episodes, %lld transitions, %lld contacts, %lld employer contacts, "
			   "%lld jobs, %lld studies, %lld team meetings; %lld were on record already (%.1f s)\n",
			   im->n.teams, im->n.staff, im->n.clients, im->n.care, im->n.consents, im->n.employers,
			   im->n.episodes, im->n.transitions, im->n.contacts, im->n.empcontacts, im->n.jobs,
			   im->n.studies, im->n.meetings, im->unchanged, secs);
	else if (!quiet)
		printf("imported %lld teams, %lld staff, %lld clients, %lld care relationships, %lld consents, "
			   "%lld employers, %lld episodes, %lld transitions, %lld contacts, %lld employer contacts, "
			   "%lld jobs, %lld studies, %lld team meetings in %.1f s (%.0f contacts/s)\n",
			   im->n.teams, im->n.staff, im->n.clients, im->n.care, im->n.consents, im->n.employers,
			   im->n.episodes, im->n.transitions, im->n.contacts, im->n.empcontacts, im->n.jobs,
			   im->n.studies, im->n.meetings, secs,
			   secs > 0 ? (im->n.contacts + im->n.empcontacts) / secs : 0.0);
	rc = EXIT_OK;
	goto out;

rollback:
	if (im->failed)
		fprintf(stderr, "%s: import failed at %s\n", progname, im->error);
	res = PQexec(im->conn, "ROLLBACK");
	PQclear(res);
	fprintf(stderr, "%s: nothing was imported (the transaction was rolled back)\n", progname);
	rc = EXIT_DATA;

out:
	pipe_end(&im->pipe);
	PQfinish(im->conn);
	import_free(im);
	free(im);
	if (in != stdin)
		fclose(in);
	return rc;
}
