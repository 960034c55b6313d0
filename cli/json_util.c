/*
 * json_util.c
 *		Streaming JSON reader (one top-level object whose arrays are read one
 *		element at a time), JSON string writer, UTF-8 helpers, dates and times.
 */
#include "ipsctl.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JS_BUFSIZE		(1 << 16)
#define JS_MAX_ELEMENT	(256 * 1024 * 1024)	/* one array element at most */

/* ---------------------------------------------------------------- dates */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
int
days_from_civil(int y, int m, int d)
{
	int			era,
				yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The calendar date of a day number (inverse of days_from_civil). */
void
civil_from_days(int z, int *y, int *m, int *d)
{
	int			era,
				doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp + (mp < 10 ? 3 : -9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* Reads exactly n decimal digits. */
static bool
read_digits(const char *s, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* Parses 'YYYY-MM-DD' (a real calendar date) into a day number. */
bool
parse_date(const char *s, int *days)
{
	int			y,
				m,
				d,
				cy,
				cm,
				cd;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
		!read_digits(s, 4, &y) || !read_digits(s + 5, 2, &m) ||
		!read_digits(s + 8, 2, &d))
		return false;
	if (y < 1900 || m < 1 || m > 12 || d < 1 || d > 31)
		return false;
	*days = days_from_civil(y, m, d);
	civil_from_days(*days, &cy, &cm, &cd);
	return cy == y && cm == m && cd == d;
}

/*
 * Parses an ISO 8601 instant with an explicit offset:
 * 'YYYY-MM-DDTHH:MM[:SS[.fraction]](Z|+HH:MM|-HH:MM)' into epoch seconds.
 */
bool
parse_timestamp(const char *s, int64_t *epoch)
{
	char		date[11];
	int			days,
				hh,
				mi,
				ss = 0,
				oh,
				om,
				sign;
	const char *p;

	if (strlen(s) < 17)
		return false;
	memcpy(date, s, 10);
	date[10] = '\0';
	if (!parse_date(date, &days))
		return false;
	if ((s[10] != 'T' && s[10] != ' ') || !read_digits(s + 11, 2, &hh) ||
		s[13] != ':' || !read_digits(s + 14, 2, &mi))
		return false;
	p = s + 16;
	if (*p == ':')
	{
		if (!read_digits(p + 1, 2, &ss))
			return false;
		p += 3;
		if (*p == '.')
		{
			p++;
			if (!isdigit((unsigned char) *p))
				return false;
			while (isdigit((unsigned char) *p))
				p++;
		}
	}
	if (hh > 23 || mi > 59 || ss > 60)
		return false;
	if (*p == 'Z' && p[1] == '\0')
		oh = om = 0, sign = 1;
	else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
			 read_digits(p + 1, 2, &oh) && read_digits(p + 4, 2, &om) &&
			 oh <= 15 && om <= 59)
		sign = (*p == '-') ? -1 : 1;
	else
		return false;
	*epoch = (int64_t) days * 86400 + hh * 3600 + mi * 60 + ss
		- sign * (oh * 3600 + om * 60);
	return true;
}

/*
 * The same instant as PostgreSQL's timestamptz: microseconds since
 * 2000-01-01 00:00 UTC, the fraction of a second rounded to microseconds as
 * the server's input does it (rint(strtod(fraction) * 1000000); up to six
 * digits that is the digits themselves).  ipsctl leaves LC_NUMERIC at "C".
 */
bool
parse_timestamp_pg(const char *s, int64_t *us)
{
	int64_t		epoch;
	int64_t		frac_us = 0;
	const char *p = s + 16;

	if (!parse_timestamp(s, &epoch))
		return false;
	if (*p == ':' && p[3] == '.')
	{
		const char *f = p + 4;
		int			n = 0;

		while (isdigit((unsigned char) f[n]))
			n++;
		if (n <= 6)
		{
			for (int i = 0; i < 6; i++)
				frac_us = frac_us * 10 + (i < n ? f[i] - '0' : 0);
		}
		else
			frac_us = (int64_t) rint(strtod(p + 3, NULL) * 1000000);
	}
	*us = (epoch - INT64_C(946684800)) * 1000000 + frac_us;
	return true;
}

/* Writes a day number as 'YYYY-MM-DD' (buf holds at least 11 bytes). */
void
format_date(int days, char *buf)
{
	int			y,
				m,
				d;

	civil_from_days(days, &y, &m, &d);
	y = ((y % 10000) + 10000) % 10000;
	buf[0] = '0' + y / 1000;
	buf[1] = '0' + y / 100 % 10;
	buf[2] = '0' + y / 10 % 10;
	buf[3] = '0' + y % 10;
	buf[4] = '-';
	buf[5] = '0' + m / 10;
	buf[6] = '0' + m % 10;
	buf[7] = '-';
	buf[8] = '0' + d / 10;
	buf[9] = '0' + d % 10;
	buf[10] = '\0';
}

/* Today's date in the local time zone of this process, as a day number. */
int
today_local(void)
{
	time_t		now = time(NULL);
	struct tm	tm;

	localtime_r(&now, &tm);
	return days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* The day number of the last Sunday of a month. */
static int
last_sunday(int y, int m)
{
	int			last = days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) - 1;
	int			wd = ((last % 7) + 7 + 3) % 7;	/* 0 = Monday */

	return last - (wd + 1) % 7;
}

/*
 * UTC offset of Europe/Helsinki in minutes at daytime on a given day
 * (EU rule: summer time from the last Sunday of March to the last Sunday of
 * October).
 */
int
helsinki_offset_minutes(int days)
{
	int			y,
				m,
				d;

	civil_from_days(days, &y, &m, &d);
	if (days >= last_sunday(y, 3) && days < last_sunday(y, 10))
		return 180;
	return 120;
}

/* ---------------------------------------------------------------- UTF-8 */

/* True when s[0..len) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool
utf8_valid(const char *str, size_t len, size_t *bad_at)
{
	const unsigned char *s = (const unsigned char *) str;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		int			n;
		uint32_t	cp;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1, cp = c & 0x1F;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3, cp = c & 0x07;
		else
			goto bad;
		if (i + n >= len)
			goto bad;
		for (int k = 1; k <= n; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
			(n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
			goto bad;
		i += n + 1;
		continue;
bad:
		if (bad_at)
			*bad_at = i;
		return false;
	}
	return true;
}

/* Display width of a UTF-8 string in a terminal (one column per code point). */
size_t
utf8_width(const char *s)
{
	size_t		w = 0;

	for (; *s; s++)
		if (((unsigned char) *s & 0xC0) != 0x80)
			w++;
	return w;
}

/* ---------------------------------------------------------------- writer */

/* Writes s as a JSON string literal (NULL as null). */
void
json_put_string(FILE *out, const char *s)
{
	const unsigned char *p;

	if (s == NULL)
	{
		fputs("null", out);
		return;
	}
	putc('"', out);
	for (p = (const unsigned char *) s; *p; p++)
	{
		switch (*p)
		{
			case '"':
				fputs("\\\"", out);
				break;
			case '\\':
				fputs("\\\\", out);
				break;
			case '\n':
				fputs("\\n", out);
				break;
			case '\r':
				fputs("\\r", out);
				break;
			case '\t':
				fputs("\\t", out);
				break;
			default:
				if (*p < 0x20)
					fprintf(out, "\\u%04x", *p);
				else
					putc(*p, out);
		}
	}
	putc('"', out);
}

/* ---------------------------------------------------------------- reader */

/* Sets the reader's error message, prefixed with the current position. */
static void
js_error(JsonStream *js, const char *fmt,...)
{
	va_list		ap;
	char		msg[200];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(js->errmsg, sizeof(js->errmsg), "%s (line %lld, column %lld)",
			 msg, js->line, js->col);
}

/* Prepares a reader on an open file. */
void
js_init(JsonStream *js, FILE *in)
{
	memset(js, 0, sizeof(*js));
	js->in = in;
	js->buf = malloc(JS_BUFSIZE);
	js->line = 1;
	js->col = 1;
	js->elemcap = 4096;
	js->elem = malloc(js->elemcap);
	if (js->buf == NULL || js->elem == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		exit(EXIT_DATA);
	}
}

/* Frees the reader's buffers (not the file). */
void
js_free(JsonStream *js)
{
	free(js->buf);
	free(js->elem);
	js->buf = js->elem = NULL;
}

/* The next byte without consuming it, or -1 at the end of input. */
static int
js_peek(JsonStream *js)
{
	if (js->bufpos >= js->buflen)
	{
		if (js->eof)
			return -1;
		js->buflen = fread(js->buf, 1, JS_BUFSIZE, js->in);
		js->bufpos = 0;
		if (js->buflen == 0)
		{
			js->eof = true;
			return -1;
		}
	}
	return (unsigned char) js->buf[js->bufpos];
}

/* Consumes one byte (which js_peek returned). */
static int
js_get(JsonStream *js)
{
	int			c = js_peek(js);

	if (c < 0)
		return c;
	js->bufpos++;
	js->offset++;
	if (c == '\n')
		js->line++, js->col = 1;
	else if ((c & 0xC0) != 0x80)
		js->col++;
	return c;
}

/* Skips JSON whitespace; returns the next byte (not consumed) or -1. */
static int
js_skip_ws(JsonStream *js)
{
	int			c;

	while ((c = js_peek(js)) == ' ' || c == '\t' || c == '\n' || c == '\r')
		js_get(js);
	return c;
}

/* Appends a byte to the current element text. */
static bool
js_elem_put(JsonStream *js, int c)
{
	if (js->elemlen + 1 >= js->elemcap)
	{
		size_t		ncap = js->elemcap * 2;
		char	   *n;

		if (ncap > JS_MAX_ELEMENT)
		{
			js_error(js, "element larger than %d MB", JS_MAX_ELEMENT >> 20);
			return false;
		}
		n = realloc(js->elem, ncap);
		if (n == NULL)
		{
			js_error(js, "out of memory");
			return false;
		}
		js->elem = n;
		js->elemcap = ncap;
	}
	js->elem[js->elemlen++] = (char) c;
	return true;
}

/*
 * Copies one string literal (the opening quote is next) into the element,
 * rejecting raw control characters and the escape \u0000.
 */
static bool
js_copy_string(JsonStream *js)
{
	int			c;

	js_elem_put(js, js_get(js));
	for (;;)
	{
		c = js_get(js);
		if (c < 0)
		{
			js_error(js, "unexpected end of input inside a string (truncated JSON?)");
			return false;
		}
		if (c < 0x20)
		{
			js_error(js, "control character 0x%02x inside a string", c);
			return false;
		}
		if (!js_elem_put(js, c))
			return false;
		if (c == '"')
			return true;
		if (c == '\\')
		{
			c = js_get(js);
			if (c < 0)
			{
				js_error(js, "unexpected end of input inside a string (truncated JSON?)");
				return false;
			}
			if (!js_elem_put(js, c))
				return false;
			if (c == 'u')
			{
				char		hex[5];

				for (int i = 0; i < 4; i++)
				{
					int			h = js_get(js);

					if (h < 0 || !isxdigit(h))
					{
						js_error(js, "bad \\u escape in a string");
						return false;
					}
					hex[i] = (char) h;
					if (!js_elem_put(js, h))
						return false;
				}
				hex[4] = '\0';
				if (strtol(hex, NULL, 16) == 0)
				{
					js_error(js, "the escape \\u0000 is not allowed in strings");
					return false;
				}
			}
		}
	}
}

/*
 * Reads one complete JSON value into js->elem (NUL-terminated), checking
 * nesting, string syntax and UTF-8; the value's grammar is checked later
 * by cJSON.
 */
bool
js_read_value(JsonStream *js)
{
	int			depth = 0;
	int			c;
	char		stack[1024];
	size_t		bad;

	js->elemlen = 0;
	c = js_skip_ws(js);
	js->elem_line = js->line;
	js->elem_col = js->col;
	if (c < 0)
	{
		js_error(js, "unexpected end of input (truncated JSON?)");
		return false;
	}
	for (;;)
	{
		c = js_peek(js);
		if (c < 0)
		{
			if (depth > 0)
			{
				js_error(js, "unexpected end of input (truncated JSON?)");
				return false;
			}
			break;
		}
		if (c == '"')
		{
			if (!js_copy_string(js))
				return false;
		}
		else if (c == '{' || c == '[')
		{
			if (depth >= (int) sizeof(stack))
			{
				js_error(js, "nesting deeper than %d", (int) sizeof(stack));
				return false;
			}
			stack[depth++] = (c == '{') ? '}' : ']';
			js_elem_put(js, js_get(js));
		}
		else if (c == '}' || c == ']')
		{
			if (depth == 0)
				break;
			if (stack[depth - 1] != c)
			{
				js_error(js, "unexpected '%c'", c);
				return false;
			}
			depth--;
			js_elem_put(js, js_get(js));
		}
		else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' ||
								c == '\n' || c == '\r'))
			break;
		else if (!js_elem_put(js, js_get(js)))
			return false;
		if (depth == 0 && (c == '"' || c == '}' || c == ']'))
			break;
	}
	js->elem[js->elemlen] = '\0';
	if (js->elemlen == 0)
	{
		js_error(js, "a value was expected");
		return false;
	}
	if (!utf8_valid(js->elem, js->elemlen, &bad))
	{
		snprintf(js->errmsg, sizeof(js->errmsg),
				 "invalid UTF-8 (byte 0x%02x in the value starting at line %lld, column %lld)",
				 (unsigned char) js->elem[bad], js->elem_line, js->elem_col);
		return false;
	}
	return true;
}

/* Expects the opening brace of the top-level object. */
bool
js_open_object(JsonStream *js)
{
	int			c = js_skip_ws(js);

	if (c == 0xEF)				/* a UTF-8 byte order mark */
	{
		js_get(js);
		if (js_get(js) != 0xBB || js_get(js) != 0xBF)
		{
			js_error(js, "invalid UTF-8 at the start of the input");
			return false;
		}
		c = js_skip_ws(js);
	}
	if (c < 0)
	{
		js_error(js, "the input is empty");
		return false;
	}
	if (c != '{')
	{
		js_error(js, "the document must be a JSON object, found '%c'", c);
		return false;
	}
	js_get(js);
	js->first = true;
	return true;
}

/*
 * Reads the next key of the top-level object and the colon after it, or the
 * closing brace; after the closing brace only whitespace may follow.
 */
JsonToken
js_next_key(JsonStream *js, char *key, size_t keysize)
{
	int			c = js_skip_ws(js);
	cJSON	   *k;

	if (c == '}')
	{
		js_get(js);
		c = js_skip_ws(js);
		if (c >= 0)
		{
			js_error(js, "unexpected text after the end of the document");
			return JS_ERROR;
		}
		return JS_END;
	}
	if (!js->first)
	{
		if (c != ',')
		{
			if (c < 0)
				js_error(js, "unexpected end of input (truncated JSON?)");
			else
				js_error(js, "expected ',' or '}' in the top-level object");
			return JS_ERROR;
		}
		js_get(js);
		c = js_skip_ws(js);
	}
	js->first = false;
	if (c != '"')
	{
		if (c < 0)
			js_error(js, "unexpected end of input (truncated JSON?)");
		else
			js_error(js, "expected a key (a string) in the top-level object");
		return JS_ERROR;
	}
	js->elemlen = 0;
	if (!js_copy_string(js))
		return JS_ERROR;
	js->elem[js->elemlen] = '\0';
	if (!utf8_valid(js->elem, js->elemlen, NULL))
	{
		js_error(js, "invalid UTF-8 in a key");
		return JS_ERROR;
	}
	k = cJSON_ParseWithLength(js->elem, js->elemlen);
	if (k == NULL || !cJSON_IsString(k))
	{
		cJSON_Delete(k);
		js_error(js, "malformed key");
		return JS_ERROR;
	}
	snprintf(key, keysize, "%s", k->valuestring);
	cJSON_Delete(k);
	if (js_skip_ws(js) != ':')
	{
		js_error(js, "expected ':' after the key \"%s\"", key);
		return JS_ERROR;
	}
	js_get(js);
	return JS_KEY;
}

/* The first byte of the next value (not consumed), or -1 at the end. */
int
js_peek_value(JsonStream *js)
{
	return js_skip_ws(js);
}

/* Consumes the opening bracket of an array. */
bool
js_open_array(JsonStream *js)
{
	if (js_skip_ws(js) != '[')
	{
		js_error(js, "expected an array");
		return false;
	}
	js_get(js);
	js->first = true;
	return true;
}

/*
 * Reads the next array element into js->elem: 1 when one was read, 0 at
 * the closing bracket, -1 on error.
 */
int
js_next_element(JsonStream *js)
{
	int			c = js_skip_ws(js);

	if (c == ']')
	{
		js_get(js);
		js->first = false;		/* the object's next member needs a comma */
		return 0;
	}
	if (!js->first)
	{
		if (c != ',')
		{
			if (c < 0)
				js_error(js, "unexpected end of input (truncated JSON?)");
			else
				js_error(js, "expected ',' or ']' in an array");
			return -1;
		}
		js_get(js);
		c = js_skip_ws(js);
		if (c == ']')
		{
			js_error(js, "trailing comma in an array");
			return -1;
		}
	}
	js->first = false;
	return js_read_value(js) ? 1 : -1;
}
