/*
 * business_id.c
 *		ips.business_id: the Finnish business ID (Y-tunnus), '1234567-8'.
 *
 * Seven digits, a hyphen and a check digit.  The check digit is computed
 * from the seven digits with the weights 7, 9, 10, 5, 8, 4, 2: the weighted
 * sum modulo 11 gives 0 for check digit 0, 1 for no valid ID at all, and
 * otherwise 11 minus the remainder.  Old six-digit IDs are written with a
 * leading zero, as the Finnish Business Information System does.
 *
 * The value is stored as the seven-digit number (int4, passed by value); the
 * check digit is derived, so two values are equal exactly when their digits
 * are, and the btree order is the numeric order of the IDs.
 */
#include "postgres.h"

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "common/hashfn.h"

#include "ips.h"

typedef int32 BusinessId;

#define DatumGetBusinessId(X)	DatumGetInt32(X)
#define BusinessIdGetDatum(X)	Int32GetDatum(X)
#define PG_GETARG_BUSINESS_ID(n) DatumGetBusinessId(PG_GETARG_DATUM(n))
#define PG_RETURN_BUSINESS_ID(x) return BusinessIdGetDatum(x)

static const int business_id_weights[7] = {7, 9, 10, 5, 8, 4, 2};

/* Check digit of a seven-digit body, or -1 when no check digit can be valid. */
static int
BusinessIdCheckDigit(int32 body)
{
	int			sum = 0;
	int			rem;

	for (int i = 6; i >= 0; i--)
	{
		sum += (body % 10) * business_id_weights[i];
		body /= 10;
	}
	rem = sum % 11;
	if (rem == 0)
		return 0;
	if (rem == 1)
		return -1;
	return 11 - rem;
}

/* Parse text into a business ID, raising a clear error when it is not one. */
static BusinessId
BusinessIdFromText(const char *str)
{
	const char *p = str;
	int32		body = 0;
	int			ndigits = 0;
	int			given;
	int			expected;

	while (*p == ' ' || *p == '\t')
		p++;
	while (*p >= '0' && *p <= '9' && ndigits < 8)
	{
		body = body * 10 + (*p - '0');
		ndigits++;
		p++;
	}
	if ((ndigits != 7 && ndigits != 6) || *p != '-' ||
		!(p[1] >= '0' && p[1] <= '9'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid Finnish business ID: \"%s\"", str),
				 errdetail("A business ID (Y-tunnus) is seven digits, a hyphen and a check digit."),
				 errhint("Write it as in the trade register, for example '0112038-9'.")));
	given = p[1] - '0';
	p += 2;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid Finnish business ID: \"%s\"", str),
				 errdetail("Unexpected characters after the check digit."),
				 errhint("Write it as in the trade register, for example '0112038-9'.")));
	expected = BusinessIdCheckDigit(body);
	if (expected < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid Finnish business ID: \"%s\"", str),
				 errdetail("The digits %07d give remainder 1 modulo 11, so no check digit is valid.", body),
				 errhint("Check the digits against the trade register.")));
	if (expected != given)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid Finnish business ID: \"%s\"", str),
				 errdetail("The check digit is %d, but %d was given.", expected, given),
				 errhint("Check the digits against the trade register.")));
	return body;
}

PG_FUNCTION_INFO_V1(business_id_in);
/* Text input: '1234567-8'. */
Datum
business_id_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_BUSINESS_ID(BusinessIdFromText(PG_GETARG_CSTRING(0)));
}

PG_FUNCTION_INFO_V1(business_id_out);
/* Text output: seven digits, hyphen, check digit. */
Datum
business_id_out(PG_FUNCTION_ARGS)
{
	BusinessId	id = PG_GETARG_BUSINESS_ID(0);

	PG_RETURN_CSTRING(psprintf("%07d-%d", id, BusinessIdCheckDigit(id)));
}

PG_FUNCTION_INFO_V1(business_id_recv);
/* Binary input: the seven-digit body as int4, validated like text input. */
Datum
business_id_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		body = pq_getmsgint(buf, 4);

	if (body < 0 || body > 9999999 || BusinessIdCheckDigit(body) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid Finnish business ID in binary input: %d", body),
				 errhint("Send the seven digits without the check digit as a 4-byte integer.")));
	PG_RETURN_BUSINESS_ID(body);
}

PG_FUNCTION_INFO_V1(business_id_send);
/* Binary output: the seven-digit body as int4. */
Datum
business_id_send(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, PG_GETARG_BUSINESS_ID(0));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(business_id_cmp);
/* btree support: three-way comparison. */
Datum
business_id_cmp(PG_FUNCTION_ARGS)
{
	BusinessId	a = PG_GETARG_BUSINESS_ID(0);
	BusinessId	b = PG_GETARG_BUSINESS_ID(1);

	PG_RETURN_INT32(a < b ? -1 : (a > b ? 1 : 0));
}

#define BUSINESS_ID_OPERATOR(name, op) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_BOOL(PG_GETARG_BUSINESS_ID(0) op PG_GETARG_BUSINESS_ID(1)); \
}

/* Comparison operators */
BUSINESS_ID_OPERATOR(business_id_lt, <)
BUSINESS_ID_OPERATOR(business_id_le, <=)
BUSINESS_ID_OPERATOR(business_id_eq, ==)
BUSINESS_ID_OPERATOR(business_id_ne, !=)
BUSINESS_ID_OPERATOR(business_id_ge, >=)
BUSINESS_ID_OPERATOR(business_id_gt, >)

PG_FUNCTION_INFO_V1(business_id_hash);
/* hash support, for hash joins and hash indexes. */
Datum
business_id_hash(PG_FUNCTION_ARGS)
{
	return hash_uint32((uint32) PG_GETARG_BUSINESS_ID(0));
}

PG_FUNCTION_INFO_V1(business_id_is_valid);
/* ips.business_id_is_valid(text): true when the text is a valid business ID. */
Datum
business_id_is_valid(PG_FUNCTION_ARGS)
{
	char	   *s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *p = s;
	int32		body = 0;
	int			n = 0;

	while (*p >= '0' && *p <= '9' && n < 8)
		body = body * 10 + (*p++ - '0'), n++;
	if ((n != 7 && n != 6) || p[0] != '-' || !(p[1] >= '0' && p[1] <= '9') || p[2] != '\0')
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(BusinessIdCheckDigit(body) == p[1] - '0');
}
