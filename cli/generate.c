/*
 * generate.c
 *		ipsctl generate: a deterministic synthetic IPS region written to
 *		stdout as an import document.
 *
 * Everything about client i is derived from a PRNG seeded by (seed, i), so
 * the sections that mention clients (clients, care_relationships, consents,
 * episodes) can each be written in one streaming pass, client by client,
 * without keeping the region in memory.  Same arguments, same bytes.
 */
#include "ipsctl.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- PRNG */

typedef struct Rng
{
	uint64_t	s[4];
} Rng;

/* splitmix64: one step, used to seed xoshiro256**. */
static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t	z = (*x += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Seeds a stream from the global seed, a purpose and an index. */
static void
rng_seed(Rng *r, uint64_t seed, uint64_t purpose, uint64_t index)
{
	uint64_t	x = seed ^ (purpose * 0xD1B54A32D192ED03ULL) ^ (index * 0x8CB92BA72F3D8DD7ULL);

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

/* Rotates left. */
static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256**: the next 64 random bits. */
static uint64_t
rng_next(Rng *r)
{
	uint64_t   *s = r->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* A uniform integer in [0, n) (n > 0). */
static int
rng_below(Rng *r, int n)
{
	return (int) (((unsigned __int128) rng_next(r) * (uint64_t) n) >> 64);
}

/* A uniform integer in [lo, hi]. */
static int
rng_range(Rng *r, int lo, int hi)
{
	return lo + rng_below(r, hi - lo + 1);
}

/* True with probability percent / 100. */
static bool
rng_pct(Rng *r, int percent)
{
	return rng_below(r, 100) < percent;
}

/* ---------------------------------------------------------------- vocabularies */

typedef struct Region
{
	const char *name;
	const char *hub;
	const char *municipalities[8];
} Region;

static const Region regions[] = {
	{"Pohjanmaa", "Vaasa", {"Vaasa", "Mustasaari", "Pietarsaari", "Närpiö", "Kristiinankaupunki", "Uusikaarlepyy", "Laihia", "Vöyri"}},
	{"Pohjois-Savo", "Kuopio", {"Kuopio", "Iisalmi", "Varkaus", "Siilinjärvi", "Suonenjoki", "Leppävirta", "Lapinlahti", "Kiuruvesi"}},
	{"Kainuu", "Kajaani", {"Kajaani", "Sotkamo", "Kuhmo", "Suomussalmi", "Paltamo", "Puolanka", "Hyrynsalmi", "Ristijärvi"}},
	{"Pirkanmaa", "Tampere", {"Tampere", "Nokia", "Ylöjärvi", "Kangasala", "Lempäälä", "Pirkkala", "Valkeakoski", "Sastamala"}},
	{"Varsinais-Suomi", "Turku", {"Turku", "Salo", "Kaarina", "Raisio", "Naantali", "Lieto", "Uusikaupunki", "Loimaa"}},
	{"Länsi-Uusimaa", "Espoo", {"Espoo", "Kirkkonummi", "Lohja", "Raasepori", "Vihti", "Kauniainen", "Siuntio", "Hanko"}},
};
#define NREGIONS ((int) (sizeof(regions) / sizeof(regions[0])))

static const char *first_names[] = {
	"Aino", "Eero", "Helmi", "Juha", "Kaisa", "Laura", "Mikko", "Niina", "Olli",
	"Paula", "Sanna", "Tapio", "Ville", "Annika", "Johan", "Mikaela", "Pekka",
	"Riikka", "Jonas", "Elina"
};
static const char *surnames[] = {
	"Korhonen", "Virtanen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen",
	"Laine", "Heikkinen", "Koskinen", "Järvinen", "Lindqvist", "Björklund",
	"Nyström", "Östman", "Lehtonen", "Saarinen"
};

typedef struct Business
{
	const char *name;
	const char *industry;
} Business;

static const Business businesses[] = {
	{"Kiinteistöhuolto", "facility services"},
	{"Siivouspalvelu", "cleaning"},
	{"Leipomo", "food manufacturing"},
	{"Kahvila", "food service"},
	{"Ravintola", "food service"},
	{"Kauppa", "retail"},
	{"Logistiikka", "logistics"},
	{"Rakennus", "construction"},
	{"IT-palvelut", "information technology"},
	{"Konepaja", "manufacturing"},
	{"Hoivakoti", "care services"},
	{"Autokorjaamo", "vehicle repair"},
	{"Tilitoimisto", "accounting"},
	{"Puutarha", "horticulture"},
};
#define NBUSINESSES ((int) (sizeof(businesses) / sizeof(businesses[0])))

typedef struct Occupation
{
	const char *isco;
	const char *title;
} Occupation;

static const Occupation occupations[] = {
	{"5223", "shop sales assistant"},
	{"9112", "cleaner"},
	{"4110", "office clerk"},
	{"7126", "plumber's assistant"},
	{"5131", "waiter"},
	{"2512", "software developer"},
	{"9333", "warehouse worker"},
	{"5120", "cook"},
	{"9412", "kitchen helper"},
	{"4321", "stock clerk"},
	{"7231", "car mechanic's assistant"},
	{"9214", "gardener's helper"},
};
#define NOCCUPATIONS ((int) (sizeof(occupations) / sizeof(occupations[0])))

static const char *programmes[] = {
	"vocational qualification in business", "vocational qualification in catering",
	"upper secondary school for adults", "bachelor's studies in social services",
	"vocational qualification in ICT"
};

static const char *job_end_reasons[] = {
	"fixed term ended", "client resigned", "dismissed", "work trial ended"
};

enum
{
	K_CLIENT, K_EMPLOYER_FOR_CLIENT, K_CARE_TEAM, K_BENEFITS, K_OUTREACH, K_FAMILY
};
static const char *kind_codes[] = {
	"client", "employer_for_client", "care_team", "benefits_counseling",
	"outreach_attempt", "family"
};
enum
{
	M_IN_PERSON, M_PHONE, M_VIDEO, M_MESSAGE
};
static const char *mode_codes[] = {"in_person", "phone", "video", "message"};

/* ---------------------------------------------------------------- the region */

typedef struct Gen
{
	long		nclients;
	int			nteams;
	int			end;			/* no activity on or after this day */
	int			first;			/* first day of the period */
	uint64_t	seed;
	int		   *nspec;			/* specialists per team */
	long	   *staff_base;		/* number of staff before team t */
	long		nstaff;
	long		nemployers;
} Gen;

typedef struct GContact
{
	int			day;
	int			minute;
	int			kind;
	int			mode;
	bool		community;
	int			minutes;
} GContact;

typedef struct GEmpContact
{
	int			day;
	int			minute;
	long		employer;
	bool		in_person;
	bool		by_client;
} GEmpContact;

typedef struct GEvent
{
	int			day;
	int			minute;
	const char *to;
	const char *reason;
} GEvent;

typedef struct GJob
{
	int			start;
	int			end;			/* -1 while current */
	long		employer;
	int			occupation;
	bool		work_trial;
	int			hours;
	const char *end_reason;
} GJob;

typedef struct GStudy
{
	int			start;
	int			end;			/* -1 while current */
	int			programme;
} GStudy;

/* A growable array of fixed-size items. */
typedef struct Vec
{
	void	   *data;
	int			n;
	int			cap;
	size_t		size;
} Vec;

/* Makes room for one more item and returns it (zeroed). */
static void *
vec_push(Vec *v)
{
	if (v->n == v->cap)
	{
		int			ncap = v->cap ? v->cap * 2 : 64;
		void	   *nd = realloc(v->data, ncap * v->size);

		if (nd == NULL)
		{
			fprintf(stderr, "%s: out of memory\n", progname);
			exit(EXIT_DATA);
		}
		v->data = nd;
		v->cap = ncap;
	}
	memset((char *) v->data + v->n * v->size, 0, v->size);
	return (char *) v->data + (v->n++) * v->size;
}

/* Everything about one client, recomputed from (seed, i) when needed. */
typedef struct Plan
{
	long		i;				/* 0-based client index */
	int			team;
	long		specialist;		/* 1-based staff number */
	int			birth_year;
	int			municipality;
	int			unit;
	int			care_start;
	int			care_end;		/* -1: still active */
	int			consent_on;
	int			referred;
	int			assigned;
	int			career_profile; /* -1: not yet */
	const char *source;
	Vec			events;			/* GEvent */
	Vec			jobs;			/* GJob */
	Vec			studies;		/* GStudy */
	Vec			contacts;		/* GContact */
	Vec			empcontacts;	/* GEmpContact */
} Plan;

/* Weekday of a day number, 0 = Monday. */
static int
weekday(int day)
{
	return ((day % 7) + 7 + 3) % 7;
}

/* Writes an instant 'YYYY-MM-DDTHH:MM:00+02:00' in Helsinki time. */
static void
put_at(FILE *out, int day, int minute)
{
	char		d[11];
	int			off = helsinki_offset_minutes(day);

	format_date(day, d);
	fprintf(out, "\"%sT%02d:%02d:00+%02d:00\"", d, minute / 60, minute % 60, off / 60);
}

/* Writes a date string. */
static void
put_date(FILE *out, int day)
{
	char		d[11];

	format_date(day, d);
	fprintf(out, "\"%s\"", d);
}

/* Moves a weekend day to the next Monday. */
static int
workday(int day)
{
	int			wd = weekday(day);

	return wd >= 5 ? day + (7 - wd) : day;
}

/* Adds a contact on a working day in [day, limit) and <= last; false if none fits. */
static bool
add_contact(Plan *p, Rng *r, int day, int limit, int last, int kind, int mode, bool community)
{
	GContact   *c;

	day = workday(day);
	if (day >= limit || day > last || day < p->referred)
		return false;
	c = vec_push(&p->contacts);
	c->day = day;
	c->minute = rng_range(r, 8 * 4, 16 * 4) * 15;
	c->kind = kind;
	c->mode = mode;
	c->community = community;
	if (mode == M_IN_PERSON)
		c->minutes = rng_range(r, 2, 6) * 15;
	else
		c->minutes = rng_range(r, 1, 3) * 5;
	return true;
}

/* Adds an ordinary client contact: mostly face to face in the community. */
static void
add_client_contact(Plan *p, Rng *r, int day, int limit, int last)
{
	int			mode = rng_pct(r, 80) ? M_IN_PERSON : (rng_pct(r, 80) ? M_PHONE : M_VIDEO);
	bool		community = mode == M_IN_PERSON ? rng_pct(r, 75) : false;

	add_contact(p, r, day, limit, last, K_CLIENT, mode, community);
}

/* Adds an event (a state transition) at a day and minute. */
static void
add_event(Plan *p, int day, int minute, const char *to, const char *reason)
{
	GEvent	   *e = vec_push(&p->events);

	e->day = day;
	e->minute = minute;
	e->to = to;
	e->reason = reason;
}

/* Client contacts every lo..hi days over [a, b), plus care-team contacts. */
static void
fill_contacts(Plan *p, Rng *r, int a, int b, int last, int lo, int hi)
{
	int			d;

	for (d = a + rng_range(r, 1, lo); d < b && d <= last; d += rng_range(r, lo, hi))
	{
		add_client_contact(p, r, d, b, last);
		if (rng_pct(r, 12))
			add_contact(p, r, d + 1, b, last, K_CARE_TEAM, rng_pct(r, 50) ? M_IN_PERSON : M_PHONE, false);
		else if (rng_pct(r, 3))
			add_contact(p, r, d + 2, b, last, K_FAMILY, M_PHONE, false);
	}
}

/* Employer contacts on behalf of the client every 6..12 days over [a, b). */
static void
fill_employer_contacts(const Gen *g, Plan *p, Rng *r, int a, int b, int last)
{
	for (int d = a + rng_range(r, 2, 6); d < b && d <= last; d += rng_range(r, 6, 12))
	{
		int			day = workday(d);
		GEmpContact *e;

		if (day >= b || day > last)
			break;
		e = vec_push(&p->empcontacts);
		e->day = day;
		e->minute = rng_range(r, 8 * 4, 15 * 4) * 15;
		e->employer = rng_below(r, (int) g->nemployers);
		e->by_client = rng_pct(r, 15);
		e->in_person = e->by_client ? true : rng_pct(r, 85);
	}
}

/* Orders contacts by time. */
static int
cmp_contact(const void *a, const void *b)
{
	const GContact *x = a,
			   *y = b;

	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	return (x->minute > y->minute) - (x->minute < y->minute);
}

/* Orders employer contacts by time. */
static int
cmp_empcontact(const void *a, const void *b)
{
	const GEmpContact *x = a,
			   *y = b;

	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	return (x->minute > y->minute) - (x->minute < y->minute);
}

/*
 * Computes client i's whole history.  All activity lies in [referral, last]
 * with last = the day before the end date, transitions strictly ordered and
 * at least a day apart when a date-only fact (job start or end) is involved.
 */
static void
plan_client(const Gen *g, long i, Plan *p)
{
	Rng			r;
	int			last = g->end - 1;
	int			span = g->end - g->first;
	int			rr,
				e,
				js,
				day;
	bool		benefits_done = false;
	const Region *reg;

	rng_seed(&r, g->seed, 1, (uint64_t) i);
	p->i = i;
	p->events.n = p->jobs.n = p->studies.n = p->contacts.n = p->empcontacts.n = 0;
	p->team = (int) (i % g->nteams);
	p->specialist = g->staff_base[p->team] + 2 + (i / g->nteams) % g->nspec[p->team];
	reg = &regions[p->team % NREGIONS];
	p->municipality = rng_below(&r, 8);
	p->birth_year = 0;
	{
		int			y,
					m,
					d;

		civil_from_days(g->end, &y, &m, &d);
		p->birth_year = y - rng_range(&r, 19, 63);
	}
	p->unit = rng_below(&r, 3);
	p->source = rng_pct(&r, 85) ? "psychiatric_outpatient" :
		(rng_pct(&r, 50) ? "primary_care" : "self_referral");
	rr = g->first + rng_below(&r, span > 10 ? span - 3 : 1);
	if (rr > last)
		rr = last;
	p->referred = rr;
	p->assigned = rr;
	p->care_start = rr - rng_range(&r, 30, 900);
	p->care_end = -1;
	p->consent_on = rr - rng_range(&r, 0, 20);
	p->career_profile = -1;
	(void) reg;

	/* never engaged: outreach, then closed */
	if (rng_pct(&r, 7))
	{
		int			close = rr + rng_range(&r, 21, 35);

		add_contact(p, &r, rr + 2, g->end, last, K_OUTREACH, M_PHONE, false);
		add_contact(p, &r, rr + 5, g->end, last, K_OUTREACH, M_MESSAGE, false);
		add_contact(p, &r, rr + 10, g->end, last, K_OUTREACH, M_PHONE, false);
		if (close <= last)
			add_event(p, close, 14 * 60, "closed", "never_engaged");
		goto done;
	}

	/* engagement: first meeting a few days after the referral */
	e = workday(rr + rng_range(&r, 2, 9));
	if (e > last)
	{
		add_contact(p, &r, rr + 1, g->end, last, K_OUTREACH, M_PHONE, false);
		goto done;
	}
	{
		GContact   *c = vec_push(&p->contacts);

		c->day = e;
		c->minute = 10 * 60;
		c->kind = K_CLIENT;
		c->mode = M_IN_PERSON;
		c->community = false;
		c->minutes = 60;
	}
	add_event(p, e, 10 * 60 + 45, "engaged", NULL);
	p->career_profile = e + rng_range(&r, 5, 20);
	js = p->career_profile + rng_range(&r, 1, 10);
	if (p->career_profile > last)
		p->career_profile = -1;
	if (js > last)
	{
		fill_contacts(p, &r, e, last + 1, last, 4, 8);
		goto done;
	}
	fill_contacts(p, &r, e, js, last, 4, 8);
	add_event(p, js, 9 * 60 + 30, "job_search", NULL);
	day = js;

	/* job search and what follows, until the end of the period */
	while (day <= last)
	{
		int			roll = rng_below(&r, 100);
		int			s;

		if (roll < 50)
		{
			/* a job */
			GJob	   *j;
			int			dur;

			s = day + rng_range(&r, 14, 100);
			if (s > last)
				break;
			fill_contacts(p, &r, day, s, last, 5, 10);
			fill_employer_contacts(g, p, &r, day, s, last);
			if (!benefits_done)
			{
				add_contact(p, &r, s - rng_range(&r, 8, 12), s, last, K_BENEFITS, M_IN_PERSON, false);
				benefits_done = true;
			}
			add_contact(p, &r, s - rng_range(&r, 2, 5), s, last, K_CLIENT, M_IN_PERSON, true);
			j = vec_push(&p->jobs);
			j->start = s;
			j->end = -1;
			j->employer = rng_below(&r, (int) g->nemployers);
			j->occupation = rng_below(&r, NOCCUPATIONS);
			j->work_trial = rng_pct(&r, 15);
			j->hours = j->work_trial ? rng_range(&r, 15, 30) : rng_range(&r, 8, 37);
			/* after the start: within 3 days, weekly for 4 weeks, then monthly */
			add_contact(p, &r, s + rng_range(&r, 0, 2), s + 4, last, K_CLIENT, M_IN_PERSON, true);
			for (int w = 1; w < 4; w++)
				add_contact(p, &r, s + 7 * w + rng_range(&r, 0, 2), s + 7 * w + 7, last,
							K_CLIENT, M_IN_PERSON, true);
			dur = j->work_trial ? rng_range(&r, 30, 120) : rng_range(&r, 45, 500);
			if (!j->work_trial && dur >= 180 && rng_pct(&r, 35) && s + 200 <= last)
			{
				/* stable employment: coaching ends, the job goes on */
				int			close = s + rng_range(&r, 190, 300);

				if (close > last)
					close = last;
				for (int d = s + 28 + rng_range(&r, 20, 30); d < close; d += rng_range(&r, 20, 30))
					add_contact(p, &r, d, close, last, K_CLIENT, M_IN_PERSON, true);
				add_event(p, close, 15 * 60, "closed", "stable_employment");
				goto done;
			}
			for (int d = s + 28 + rng_range(&r, 20, 30); d < s + dur && d <= last; d += rng_range(&r, 20, 30))
				add_contact(p, &r, d, s + dur, last, K_CLIENT, M_IN_PERSON, true);
			if (s + dur > last)
				goto done;		/* still in this job at the end */
			j->end = s + dur;
			j->end_reason = j->work_trial ? job_end_reasons[3] : job_end_reasons[rng_below(&r, 3)];
			/* the last job ended: back to job search, contact within 3 days */
			add_contact(p, &r, j->end + 1, j->end + 4, last, K_CLIENT,
						rng_pct(&r, 70) ? M_IN_PERSON : M_PHONE, true);
			day = j->end + 1;
			continue;
		}
		else if (roll < 58)
		{
			/* studies */
			GStudy	   *st;
			int			dur;

			s = day + rng_range(&r, 20, 90);
			if (s > last)
				break;
			fill_contacts(p, &r, day, s, last, 5, 10);
			fill_employer_contacts(g, p, &r, day, s, last);
			/* ips.start_studies moves the episode to studying */
			st = vec_push(&p->studies);
			st->start = s;
			st->end = -1;
			st->programme = rng_below(&r, 5);
			dur = rng_range(&r, 90, 300);
			fill_contacts(p, &r, s, s + dur, last, 14, 21);
			if (s + dur + 1 > last)
				goto done;
			if (rng_pct(&r, 60))
			{
				/* ips.end_studies moves it to job_search the next day */
				st->end = s + dur;
				day = s + dur + 1;
				continue;
			}
			add_event(p, s + dur, 14 * 60, "closed", "client_choice");
			goto done;
		}
		else if (roll < 70)
		{
			/* a pause (hospital stay, client's wish) and back */
			int			back;

			s = day + rng_range(&r, 10, 70);
			if (s > last)
				break;
			fill_contacts(p, &r, day, s, last, 5, 10);
			fill_employer_contacts(g, p, &r, day, s, last);
			add_event(p, s, 11 * 60, "on_hold", NULL);
			back = s + rng_range(&r, 14, 60);
			if (back > last)
				goto done;
			add_event(p, back, 10 * 60, "job_search", NULL);
			day = back;
			continue;
		}
		else if (roll < 76)
		{
			/* contact lost: outreach attempts, then closed as disengaged */
			s = day + rng_range(&r, 20, 60);
			if (s + 50 > last)
				break;
			fill_contacts(p, &r, day, s, last, 5, 10);
			add_contact(p, &r, s + 31, s + 50, last, K_OUTREACH, M_PHONE, false);
			add_contact(p, &r, s + 36, s + 50, last, K_OUTREACH, M_MESSAGE, false);
			add_contact(p, &r, s + 43, s + 50, last, K_OUTREACH, M_IN_PERSON, true);
			add_event(p, s + 50, 14 * 60, "closed", "disengaged");
			goto done;
		}
		else if (roll < 84)
		{
			/* other closures */
			static const char *reasons[] = {"client_choice", "moved", "referred_elsewhere", "client_choice"};
			const char *reason = reasons[rng_below(&r, 4)];

			s = day + rng_range(&r, 20, 120);
			if (s > last)
				break;
			fill_contacts(p, &r, day, s, last, 5, 10);
			fill_employer_contacts(g, p, &r, day, s, last);
			add_event(p, s, 14 * 60, "closed", reason);
			if (strcmp(reason, "moved") == 0 && s + 5 <= last)
				p->care_end = s + rng_range(&r, 1, 5);
			goto done;
		}
		else
			break;
	}
	/* still searching at the end of the period */
	fill_contacts(p, &r, day, last + 1, last, 5, 10);
	fill_employer_contacts(g, p, &r, day, last + 1, last);

done:
	qsort(p->contacts.data, p->contacts.n, sizeof(GContact), cmp_contact);
	qsort(p->empcontacts.data, p->empcontacts.n, sizeof(GEmpContact), cmp_empcontact);
}

/* ---------------------------------------------------------------- writing */

/* The unit (care provider) name of a client's care relationship. */
static void
unit_name(const Plan *p, char *buf, size_t size)
{
	const Region *reg = &regions[p->team % NREGIONS];

	if (p->unit == 0)
		snprintf(buf, size, "%s psychiatric outpatient clinic", reg->hub);
	else if (p->unit == 1)
		snprintf(buf, size, "%s mental health outpatient clinic", reg->municipalities[p->municipality]);
	else
		snprintf(buf, size, "%s psychiatric rehabilitation unit", reg->hub);
}

/* Writes the teams section. */
static void
write_teams(const Gen *g, FILE *out)
{
	fputs(",\n\"teams\":[", out);
	for (int t = 0; t < g->nteams; t++)
	{
		const Region *reg = &regions[t % NREGIONS];
		char		name[128];

		if (t < NREGIONS)
			snprintf(name, sizeof(name), "IPS %s", reg->hub);
		else
			snprintf(name, sizeof(name), "IPS %s %d", reg->hub, t / NREGIONS + 1);
		fprintf(out, "%s\n{\"key\":\"t%d\",\"name\":", t ? "," : "", t + 1);
		json_put_string(out, name);
		fputs(",\"region\":", out);
		json_put_string(out, reg->name);
		fputs("}", out);
	}
	fputs("]", out);
}

/* Writes the staff section: per team a supervisor, specialists, a clinician. */
static void
write_staff(const Gen *g, FILE *out)
{
	Rng			r;
	long		n = 0;

	rng_seed(&r, g->seed, 2, 0);
	fputs(",\n\"staff\":[", out);
	for (int t = 0; t < g->nteams; t++)
	{
		int			members = g->nspec[t] + 2;

		for (int k = 0; k < members; k++)
		{
			const char *role = k == 0 ? "supervisor" : (k == members - 1 ? "clinician" : "specialist");
			char		name[96];
			double		share = 1.0;

			snprintf(name, sizeof(name), "%s %s",
					 first_names[rng_below(&r, (int) (sizeof(first_names) / sizeof(char *)))],
					 surnames[rng_below(&r, (int) (sizeof(surnames) / sizeof(char *)))]);
			if (strcmp(role, "specialist") == 0)
				share = rng_pct(&r, 80) ? 1.0 : 0.9;
			else if (strcmp(role, "supervisor") == 0)
				share = 0.5;
			else
				share = 0.0;
			n++;
			fprintf(out, "%s\n{\"key\":\"s%ld\",\"team\":\"t%d\",\"display_name\":", n > 1 ? "," : "", n, t + 1);
			json_put_string(out, name);
			fprintf(out, ",\"role\":\"%s\",\"fte\":1.0,\"employment_share\":%.1f,\"weekly_hours\":37.5}",
					role, share);
		}
	}
	fputs("]", out);
}

/* Writes the clients section. */
static void
write_clients(const Gen *g, FILE *out, Plan *p)
{
	fputs(",\n\"clients\":[", out);
	for (long i = 0; i < g->nclients; i++)
	{
		plan_client(g, i, p);
		fprintf(out, "%s\n{\"key\":\"c%ld\",\"host_ref\":\"demo-%06ld\",\"birth_year\":%d,\"municipality\":",
				i ? "," : "", i + 1, i + 1, p->birth_year);
		json_put_string(out, regions[p->team % NREGIONS].municipalities[p->municipality]);
		fputs("}", out);
	}
	fputs("]", out);
}

/* Writes the care relationships and the consents. */
static void
write_care(const Gen *g, FILE *out, Plan *p)
{
	char		unit[160];

	fputs(",\n\"care_relationships\":[", out);
	for (long i = 0; i < g->nclients; i++)
	{
		plan_client(g, i, p);
		unit_name(p, unit, sizeof(unit));
		fprintf(out, "%s\n{\"client\":\"c%ld\",\"unit\":", i ? "," : "", i + 1);
		json_put_string(out, unit);
		fputs(",\"started_on\":", out);
		put_date(out, p->care_start);
		if (p->care_end >= 0)
		{
			fputs(",\"ended_on\":", out);
			put_date(out, p->care_end);
		}
		fputs("}", out);
	}
	fputs("],\n\"consents\":[", out);
	for (long i = 0; i < g->nclients; i++)
	{
		plan_client(g, i, p);
		fprintf(out, "%s\n{\"client\":\"c%ld\",\"scope\":\"share_with_care\",\"given_on\":", i ? "," : "", i + 1);
		put_date(out, p->consent_on);
		fputs("}", out);
	}
	fputs("]", out);
}

/* The check digit of a 7-digit Y-tunnus body, or -1 when none exists. */
static int
ytunnus_check(long body)
{
	static const int w[7] = {7, 9, 10, 5, 8, 4, 2};
	int			sum = 0;
	int			rem;

	for (int k = 6; k >= 0; k--)
	{
		sum += (int) (body % 10) * w[k];
		body /= 10;
	}
	rem = sum % 11;
	if (rem == 1)
		return -1;
	return rem == 0 ? 0 : 11 - rem;
}

/* Writes the employers with unique, valid business ids. */
static void
write_employers(const Gen *g, FILE *out)
{
	Rng			r;
	long		j = 0;
	long		a;

	rng_seed(&r, g->seed, 3, 0);
	a = rng_below(&r, 9000000);
	fputs(",\n\"employers\":[", out);
	for (long k = 0; k < g->nemployers; k++)
	{
		long		body;
		int			check;
		const Business *b = &businesses[rng_below(&r, NBUSINESSES)];
		const Region *reg = &regions[rng_below(&r, NREGIONS)];
		const char *place = rng_pct(&r, 50) ? reg->municipalities[rng_below(&r, 8)]
			: surnames[rng_below(&r, (int) (sizeof(surnames) / sizeof(char *)))];
		char		name[160];

		/* 7919 is coprime to 9000000: a permutation of 1000000..9999999 */
		do
		{
			body = 1000000 + (a + j * 7919L) % 9000000;
			j++;
		} while ((check = ytunnus_check(body)) < 0);
		snprintf(name, sizeof(name), "%s %s Oy", place, b->name);
		fprintf(out, "%s\n{\"key\":\"m%ld\",\"name\":", k ? "," : "", k + 1);
		json_put_string(out, name);
		fprintf(out, ",\"business_id\":\"%07ld-%d\",\"industry\":", body, check);
		json_put_string(out, b->industry);
		fputs("}", out);
	}
	fputs("]", out);
}

/* Writes one client's episode, if the client has one. */
static void
write_episode(FILE *out, const Plan *p, bool first)
{
	const GEvent *ev = p->events.data;
	const GJob *jobs = p->jobs.data;
	const GStudy *st = p->studies.data;
	const GContact *c = p->contacts.data;
	const GEmpContact *ec = p->empcontacts.data;

	fprintf(out, "%s\n{\"key\":\"e%ld\",\"client\":\"c%ld\",\"team\":\"t%d\",\"referred_on\":",
			first ? "" : ",", p->i + 1, p->i + 1, p->team + 1);
	put_date(out, p->referred);
	/* about nine in ten IPS clients are out of work at entry; a hash, so the random stream is unchanged */
	fprintf(out, ",\"source\":\"%s\",\"out_of_work_at_entry\":%s,\"specialists\":[{\"staff\":\"s%ld\",\"from_on\":",
			p->source, ((uint64_t) (p->i + 1) * 2654435761u) % 10 == 0 ? "false" : "true", p->specialist);
	put_date(out, p->assigned);
	fputs("}]", out);
	if (p->career_profile >= 0)
	{
		fputs(",\"career_profile_on\":", out);
		put_date(out, p->career_profile);
	}
	fputs(",\"events\":[", out);
	for (int k = 0; k < p->events.n; k++)
	{
		fputs(k ? ",{\"at\":" : "{\"at\":", out);
		put_at(out, ev[k].day, ev[k].minute);
		fprintf(out, ",\"to\":\"%s\"", ev[k].to);
		if (ev[k].reason)
			fprintf(out, ",\"reason\":\"%s\"", ev[k].reason);
		fputs("}", out);
	}
	fputs("]", out);
	if (p->jobs.n > 0)
	{
		fputs(",\"jobs\":[", out);
		for (int k = 0; k < p->jobs.n; k++)
		{
			fprintf(out, "%s{\"employer\":\"m%ld\",\"starts_on\":", k ? "," : "", jobs[k].employer + 1);
			put_date(out, jobs[k].start);
			fprintf(out, ",\"kind\":\"%s\",\"occupation\":\"%s\",\"hours_per_week\":%d,\"title\":",
					jobs[k].work_trial ? "work_trial" : "competitive",
					occupations[jobs[k].occupation].isco, jobs[k].hours);
			json_put_string(out, occupations[jobs[k].occupation].title);
			if (jobs[k].end >= 0)
			{
				fputs(",\"ends_on\":", out);
				put_date(out, jobs[k].end);
				fputs(",\"end_reason\":", out);
				json_put_string(out, jobs[k].end_reason);
			}
			fputs("}", out);
		}
		fputs("]", out);
	}
	if (p->studies.n > 0)
	{
		fputs(",\"studies\":[", out);
		for (int k = 0; k < p->studies.n; k++)
		{
			fputs(k ? ",{\"starts_on\":" : "{\"starts_on\":", out);
			put_date(out, st[k].start);
			if (st[k].end >= 0)
			{
				fputs(",\"ends_on\":", out);
				put_date(out, st[k].end);
			}
			fputs(",\"programme\":", out);
			json_put_string(out, programmes[st[k].programme]);
			fputs("}", out);
		}
		fputs("]", out);
	}
	fputs(",\"contacts\":[", out);
	for (int k = 0; k < p->contacts.n; k++)
	{
		fprintf(out, "%s\n {\"staff\":\"s%ld\",\"at\":", k ? "," : "", p->specialist);
		put_at(out, c[k].day, c[k].minute);
		fprintf(out, ",\"kind\":\"%s\",\"mode\":\"%s\",\"setting\":\"%s\",\"minutes\":%d}",
				kind_codes[c[k].kind], mode_codes[c[k].mode],
				c[k].community ? "community" : "office", c[k].minutes);
	}
	fputs("]", out);
	if (p->empcontacts.n > 0)
	{
		fputs(",\"employer_contacts\":[", out);
		for (int k = 0; k < p->empcontacts.n; k++)
		{
			fprintf(out, "%s\n {\"staff\":\"s%ld\",\"employer\":\"m%ld\",\"at\":",
					k ? "," : "", p->specialist, ec[k].employer + 1);
			put_at(out, ec[k].day, ec[k].minute);
			fprintf(out, ",\"in_person\":%s,\"by_client\":%s}",
					ec[k].in_person ? "true" : "false", ec[k].by_client ? "true" : "false");
		}
		fputs("]", out);
	}
	fputs("}", out);
}

/* Writes the episodes section, one client at a time. */
static void
write_episodes(const Gen *g, FILE *out, Plan *p)
{
	fputs(",\n\"episodes\":[", out);
	for (long i = 0; i < g->nclients; i++)
	{
		plan_client(g, i, p);
		write_episode(out, p, i == 0);
	}
	fputs("]", out);
}

/* Writes job-development contacts (not for a client): 4..6 a week per specialist. */
static void
write_employer_contacts(const Gen *g, FILE *out)
{
	bool		first = true;

	fputs(",\n\"employer_contacts\":[", out);
	for (int t = 0; t < g->nteams; t++)
	{
		for (int k = 0; k < g->nspec[t]; k++)
		{
			long		staff = g->staff_base[t] + 2 + k;
			Rng			r;
			int			monday = g->first - weekday(g->first);

			rng_seed(&r, g->seed, 4, (uint64_t) staff);
			for (int w = monday; w < g->end; w += 7)
			{
				int			n = rng_range(&r, 4, 6);
				int			days[6];

				for (int q = 0; q < n; q++)
					days[q] = w + rng_below(&r, 5);
				/* ascending days in a week */
				for (int a = 1; a < n; a++)
					for (int b = a; b > 0 && days[b] < days[b - 1]; b--)
					{
						int			tmp = days[b];

						days[b] = days[b - 1];
						days[b - 1] = tmp;
					}
				for (int q = 0; q < n; q++)
				{
					long		employer = rng_below(&r, (int) g->nemployers);
					bool		in_person = rng_pct(&r, 90);
					bool		competitive = rng_pct(&r, 95);
					int			minute = (8 * 4 + q * 4 + rng_below(&r, 4)) * 15;

					if (days[q] < g->first || days[q] >= g->end)
						continue;
					fprintf(out, "%s\n{\"staff\":\"s%ld\",\"employer\":\"m%ld\",\"at\":",
							first ? "" : ",", staff, employer + 1);
					put_at(out, days[q], minute);
					fprintf(out, ",\"in_person\":%s,\"competitive\":%s}",
							in_person ? "true" : "false", competitive ? "true" : "false");
					first = false;
				}
			}
		}
	}
	fputs("]", out);
}

/* Writes weekly team meetings (Tuesdays) with their attendees. */
static void
write_team_meetings(const Gen *g, FILE *out)
{
	bool		first = true;

	fputs(",\n\"team_meetings\":[", out);
	for (int t = 0; t < g->nteams; t++)
	{
		Rng			r;
		int			tuesday = g->first - weekday(g->first) + 1;

		rng_seed(&r, g->seed, 5, (uint64_t) t);
		if (tuesday < g->first)
			tuesday += 7;
		for (int d = tuesday; d < g->end; d += 7)
		{
			bool		any = false;

			fprintf(out, "%s\n{\"team\":\"t%d\",\"met_on\":", first ? "" : ",", t + 1);
			put_date(out, d);
			fputs(",\"attendees\":[", out);
			for (int k = 0; k < g->nspec[t] + 2; k++)
			{
				if (k > 0 && rng_pct(&r, 10))
					continue;	/* absent; the supervisor always attends */
				fprintf(out, "%s\"s%ld\"", any ? "," : "", g->staff_base[t] + 1 + k);
				any = true;
			}
			fputs("]}", out);
			first = false;
		}
	}
	fputs("]", out);
}

static const char *generate_help =
"ipsctl generate: write a deterministic synthetic IPS region to stdout as an\n"
"import document (see man ipsctl).\n"
"\n"
"Usage:\n"
"  ipsctl generate --clients N --seed S [--teams T] [--start DATE] [--months M]\n"
"\n"
"Options:\n"
"  --clients N   number of clients (1 .. 10000000), one episode each\n"
"  --seed S      PRNG seed (0 .. 2^63-1); same arguments give the same bytes\n"
"  --teams T     number of teams (default: clients / 35, at least 2)\n"
"  --start DATE  the date the history ends at (YYYY-MM-DD, default: today);\n"
"                all activity is dated before it\n"
"  --months M    length of the history in months (default 12)\n"
"  --help        show this help\n"
"\n"
"Example:  ipsctl generate --clients 100 --seed 42 | ipsctl import -\n";

/* ipsctl generate: parses options and writes the document. */
int
cmd_generate(int argc, char **argv)
{
	static const struct option opts[] = {
		{"clients", required_argument, NULL, 'c'},
		{"seed", required_argument, NULL, 's'},
		{"teams", required_argument, NULL, 't'},
		{"start", required_argument, NULL, 'd'},
		{"months", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	Gen			g;
	Plan		plan;
	long long	v;
	long long	months = 12;
	bool		have_clients = false,
				have_seed = false;
	int			c;
	int			y,
				m,
				d;
	char		buf[11];
	static char outbuf[1 << 20];

	memset(&g, 0, sizeof(g));
	memset(&plan, 0, sizeof(plan));
	plan.events.size = sizeof(GEvent);
	plan.jobs.size = sizeof(GJob);
	plan.studies.size = sizeof(GStudy);
	plan.contacts.size = sizeof(GContact);
	plan.empcontacts.size = sizeof(GEmpContact);
	g.end = -1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'c':
				if (!parse_int_arg(optarg, 1, 10000000, &v))
				{
					usage_error("generate", "--clients must be an integer from 1 to 10000000, not \"%s\"", optarg);
					return EXIT_USAGE;
				}
				g.nclients = (long) v;
				have_clients = true;
				break;
			case 's':
				if (!parse_int_arg(optarg, 0, INT64_MAX, &v))
				{
					usage_error("generate", "--seed must be a non-negative integer, not \"%s\"", optarg);
					return EXIT_USAGE;
				}
				g.seed = (uint64_t) v;
				have_seed = true;
				break;
			case 't':
				if (!parse_int_arg(optarg, 1, 1000000, &v))
				{
					usage_error("generate", "--teams must be an integer from 1 to 1000000, not \"%s\"", optarg);
					return EXIT_USAGE;
				}
				g.nteams = (int) v;
				break;
			case 'd':
				if (!parse_date(optarg, &g.end))
				{
					usage_error("generate", "--start must be a date YYYY-MM-DD, not \"%s\"", optarg);
					return EXIT_USAGE;
				}
				break;
			case 'm':
				if (!parse_int_arg(optarg, 1, 600, &months))
				{
					usage_error("generate", "--months must be an integer from 1 to 600, not \"%s\"", optarg);
					return EXIT_USAGE;
				}
				break;
			case 'h':
				fputs(generate_help, stdout);
				return EXIT_OK;
			default:
				usage_error("generate", "unknown or incomplete option \"%s\"", argv[optind - 1]);
				return EXIT_USAGE;
		}
	}
	if (optind < argc)
	{
		usage_error("generate", "unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if (!have_clients || !have_seed)
	{
		usage_error("generate", "--clients and --seed are required");
		return EXIT_USAGE;
	}
	if (g.end < 0)
		g.end = today_local();
	civil_from_days(g.end, &y, &m, &d);
	m -= (int) (months % 12);
	y -= (int) (months / 12);
	if (m < 1)
		m += 12, y--;
	if (d > 28)
		d = 28;
	g.first = days_from_civil(y, m, d);
	if (g.nteams == 0)
		g.nteams = (int) lround((double) g.nclients / 35.0);
	if (g.nteams < 2)
		g.nteams = 2;
	g.nemployers = g.nclients / 3 < 20 ? 20 : g.nclients / 3;
	g.nspec = malloc(sizeof(int) * g.nteams);
	g.staff_base = malloc(sizeof(long) * (g.nteams + 1));
	if (g.nspec == NULL || g.staff_base == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		return EXIT_DATA;
	}
	for (int t = 0; t < g.nteams; t++)
	{
		long		nc = g.nclients / g.nteams + (t < g.nclients % g.nteams);

		/* caseload of at most 18 clients per specialist */
		g.nspec[t] = nc <= 18 ? 1 : (int) ((nc + 17) / 18);
		g.staff_base[t] = g.nstaff;
		g.nstaff += g.nspec[t] + 2;
	}
	g.staff_base[g.nteams] = g.nstaff;

	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	format_date(g.end, buf);
	fprintf(stdout, "{\"format\":\"ips-import\",\"version\":1,\n\"meta\":{\"generator\":\"ipsctl generate\","
			"\"seed\":%llu,\"clients\":%ld,\"teams\":%d,\"end\":\"%s\",\"months\":%lld}",
			(unsigned long long) g.seed, g.nclients, g.nteams, buf, months);
	write_teams(&g, stdout);
	write_staff(&g, stdout);
	write_clients(&g, stdout, &plan);
	write_care(&g, stdout, &plan);
	write_employers(&g, stdout);
	write_episodes(&g, stdout, &plan);
	write_employer_contacts(&g, stdout);
	write_team_meetings(&g, stdout);
	fputs("\n}\n", stdout);
	fflush(stdout);
	free(plan.events.data);
	free(plan.jobs.data);
	free(plan.studies.data);
	free(plan.contacts.data);
	free(plan.empcontacts.data);
	free(g.nspec);
	free(g.staff_base);
	if (ferror(stdout))
	{
		fprintf(stderr, "%s: could not write the output\n", progname);
		return EXIT_DATA;
	}
	return EXIT_OK;
}
