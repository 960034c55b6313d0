-- ips.business_id: the Finnish business ID (Y-tunnus), a base type in C.

CREATE TYPE ips.business_id;

CREATE FUNCTION ips.business_id_in(cstring) RETURNS ips.business_id
    AS 'MODULE_PATHNAME', 'business_id_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ips.business_id_out(ips.business_id) RETURNS cstring
    AS 'MODULE_PATHNAME', 'business_id_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ips.business_id_recv(internal) RETURNS ips.business_id
    AS 'MODULE_PATHNAME', 'business_id_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ips.business_id_send(ips.business_id) RETURNS bytea
    AS 'MODULE_PATHNAME', 'business_id_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE ips.business_id (
    INPUT = ips.business_id_in,
    OUTPUT = ips.business_id_out,
    RECEIVE = ips.business_id_recv,
    SEND = ips.business_id_send,
    INTERNALLENGTH = 4,
    PASSEDBYVALUE,
    ALIGNMENT = int4,
    STORAGE = plain
);
COMMENT ON TYPE ips.business_id IS 'Finnish business ID (Y-tunnus) ''1234567-8'', check digit verified';

CREATE FUNCTION ips.business_id_lt(ips.business_id, ips.business_id) RETURNS bool
    AS 'MODULE_PATHNAME', 'business_id_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION ips.business_id_le(ips.business_id, ips.business_id) RETURNS bool
    AS 'MODULE_PATHNAME', 'business_id_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION ips.business_id_eq(ips.business_id, ips.business_id) RETURNS bool
    AS 'MODULE_PATHNAME', 'business_id_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION ips.business_id_ne(ips.business_id, ips.business_id) RETURNS bool
    AS 'MODULE_PATHNAME', 'business_id_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION ips.business_id_ge(ips.business_id, ips.business_id) RETURNS bool
    AS 'MODULE_PATHNAME', 'business_id_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION ips.business_id_gt(ips.business_id, ips.business_id) RETURNS bool
    AS 'MODULE_PATHNAME', 'business_id_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION ips.business_id_cmp(ips.business_id, ips.business_id) RETURNS int4
    AS 'MODULE_PATHNAME', 'business_id_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION ips.business_id_hash(ips.business_id) RETURNS int4
    AS 'MODULE_PATHNAME', 'business_id_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION ips.business_id_is_valid(text) RETURNS bool
    AS 'MODULE_PATHNAME', 'business_id_is_valid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ips.business_id_is_valid(text) IS 'True when the text is a valid Finnish business ID (no error raised).';

CREATE OPERATOR ips.< (LEFTARG = ips.business_id, RIGHTARG = ips.business_id, FUNCTION = ips.business_id_lt,
    COMMUTATOR = OPERATOR(ips.>), NEGATOR = OPERATOR(ips.>=), RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR ips.<= (LEFTARG = ips.business_id, RIGHTARG = ips.business_id, FUNCTION = ips.business_id_le,
    COMMUTATOR = OPERATOR(ips.>=), NEGATOR = OPERATOR(ips.>), RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR ips.= (LEFTARG = ips.business_id, RIGHTARG = ips.business_id, FUNCTION = ips.business_id_eq,
    COMMUTATOR = OPERATOR(ips.=), NEGATOR = OPERATOR(ips.<>), RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR ips.<> (LEFTARG = ips.business_id, RIGHTARG = ips.business_id, FUNCTION = ips.business_id_ne,
    COMMUTATOR = OPERATOR(ips.<>), NEGATOR = OPERATOR(ips.=), RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR ips.>= (LEFTARG = ips.business_id, RIGHTARG = ips.business_id, FUNCTION = ips.business_id_ge,
    COMMUTATOR = OPERATOR(ips.<=), NEGATOR = OPERATOR(ips.<), RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR ips.> (LEFTARG = ips.business_id, RIGHTARG = ips.business_id, FUNCTION = ips.business_id_gt,
    COMMUTATOR = OPERATOR(ips.<), NEGATOR = OPERATOR(ips.<=), RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR CLASS ips.business_id_ops DEFAULT FOR TYPE ips.business_id USING btree AS
    OPERATOR 1 ips.<, OPERATOR 2 ips.<=, OPERATOR 3 ips.=, OPERATOR 4 ips.>=, OPERATOR 5 ips.>,
    FUNCTION 1 ips.business_id_cmp(ips.business_id, ips.business_id);
CREATE OPERATOR CLASS ips.business_id_hash_ops DEFAULT FOR TYPE ips.business_id USING hash AS
    OPERATOR 1 ips.=,
    FUNCTION 1 ips.business_id_hash(ips.business_id);
