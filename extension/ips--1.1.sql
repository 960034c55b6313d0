-- ips 1.1: generated from extension/sql/*.sql by make; do not edit
\echo Use "CREATE EXTENSION ips" to load this file. \quit

-- ===== extension/sql/00_base.sql
-- Base: settings, vocabularies, labels and the small helpers every part uses.

-- Settings a region may change (domain.md: defaults are data).
CREATE TABLE ips.setting (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    description text NOT NULL
);
COMMENT ON TABLE ips.setting IS 'Region settings of ips (time zone, thresholds); editable by ips_admin.';

INSERT INTO ips.setting (name, value, description) VALUES
  ('time_zone', 'Europe/Helsinki', 'Time zone whose calendar days the rules count in.'),
  ('engaged_requires_care_relationship', 'true', 'Entering state engaged needs an active care relationship.'),
  ('disengaged_min_outreach_attempts', '3', 'Closing as disengaged needs at least this many outreach attempts ...'),
  ('disengaged_min_outreach_days', '2', '... on at least this many different days ...'),
  ('disengaged_outreach_window_days', '60', '... within this many days before the closure.'),
  ('small_cell_threshold', '5', 'Aggregates shown to analysts suppress counts of fewer people than this.');

-- Controlled vocabularies: the codes that tables and functions accept.
CREATE TABLE ips.vocabulary (
    category text NOT NULL,
    code     text NOT NULL,
    ordinal  int  NOT NULL,
    PRIMARY KEY (category, code)
);
COMMENT ON TABLE ips.vocabulary IS 'The codes ips accepts, per category (state, close_reason, contact_kind, ...).';

INSERT INTO ips.vocabulary (category, code, ordinal)
SELECT c.category, x.code, x.ord
  FROM (VALUES
    ('state',         '{referred,engaged,job_search,employed,studying,on_hold,closed}'::text[]),
    ('close_reason',  '{stable_employment,client_choice,moved,referred_elsewhere,disengaged,deceased,never_engaged}'),
    ('contact_kind',  '{client,employer_for_client,care_team,benefits_counseling,outreach_attempt,family}'),
    ('contact_mode',  '{in_person,phone,video,message}'),
    ('contact_setting', '{community,office}'),
    ('job_kind',      '{competitive,wage_subsidy,self_employed,work_trial,paid_work_trial}'),
    ('staff_role',    '{specialist,supervisor,clinician}'),
    ('consent_scope', '{share_with_care,employer_disclosure,family_contact}')
  ) AS c(category, codes),
  LATERAL unnest(c.codes) WITH ORDINALITY AS x(code, ord);

-- Labels a person reads, in Finnish, Swedish and English.
CREATE TABLE ips.label_text (
    code     text NOT NULL,
    lang     text NOT NULL CHECK (lang IN ('fi', 'sv', 'en')),
    label    text NOT NULL,
    category text NOT NULL,
    PRIMARY KEY (code, lang)
);
COMMENT ON TABLE ips.label_text IS 'Labels of states, reasons, kinds, rules and fidelity items in fi, sv and en.';

INSERT INTO ips.label_text (category, code, lang, label)
SELECT category, code, l.lang, l.label
  FROM (VALUES
    ('state', 'referred',   'lähete vastaanotettu', 'remiss mottagen', 'referred'),
    ('state', 'engaged',    'urasuunnittelu', 'karriärplanering', 'career planning'),
    ('state', 'job_search', 'työnhaku', 'jobbsökning', 'job search'),
    ('state', 'employed',   'työssä', 'i arbete', 'employed'),
    ('state', 'studying',   'opiskelee', 'studerar', 'studying'),
    ('state', 'on_hold',    'tauolla', 'paus', 'on hold'),
    ('state', 'closed',     'päättynyt', 'avslutad', 'closed'),
    ('close_reason', 'stable_employment', 'vakiintunut työsuhde', 'stabil anställning', 'stable employment'),
    ('close_reason', 'client_choice',     'asiakkaan oma päätös', 'klientens eget val', 'client''s choice'),
    ('close_reason', 'moved',             'muutti pois', 'flyttade', 'moved away'),
    ('close_reason', 'referred_elsewhere','ohjattu muualle', 'hänvisad till annan tjänst', 'referred elsewhere'),
    ('close_reason', 'disengaged',        'yhteys katkesi', 'kontakten upphörde', 'disengaged'),
    ('close_reason', 'deceased',          'kuollut', 'avliden', 'deceased'),
    ('close_reason', 'never_engaged',     'ei aloittanut', 'påbörjade aldrig', 'never engaged'),
    ('contact_kind', 'client',              'asiakastapaaminen', 'klientmöte', 'client contact'),
    ('contact_kind', 'employer_for_client', 'työnantajakontakti asiakkaan puolesta', 'arbetsgivarkontakt för klienten', 'employer contact for the client'),
    ('contact_kind', 'care_team',           'yhteydenpito hoitotahoon', 'kontakt med vårdteamet', 'care team contact'),
    ('contact_kind', 'benefits_counseling', 'etuusneuvonta', 'förmånsrådgivning', 'benefits counselling'),
    ('contact_kind', 'outreach_attempt',    'tavoittamisyritys', 'uppsökande försök', 'outreach attempt'),
    ('contact_kind', 'family',              'yhteydenpito läheisiin', 'kontakt med närstående', 'family contact'),
    ('contact_mode', 'in_person', 'kasvokkain', 'personligen', 'in person'),
    ('contact_mode', 'phone',     'puhelin', 'telefon', 'phone'),
    ('contact_mode', 'video',     'videoyhteys', 'video', 'video'),
    ('contact_mode', 'message',   'viesti', 'meddelande', 'message'),
    ('contact_setting', 'community', 'toimiston ulkopuolella', 'ute i samhället', 'in the community'),
    ('contact_setting', 'office',    'toimistolla', 'på kontoret', 'at the office'),
    ('job_kind', 'competitive',     'avoimien työmarkkinoiden työ', 'arbete på den öppna arbetsmarknaden', 'competitive job'),
    ('job_kind', 'wage_subsidy',    'palkkatukityö', 'lönesubventionerat arbete', 'wage-subsidised job'),
    ('job_kind', 'self_employed',   'yrittäjä', 'företagare', 'self-employed'),
    ('job_kind', 'work_trial',      'työkokeilu', 'arbetsprövning', 'work trial'),
    ('job_kind', 'paid_work_trial', 'palkallinen työkokeilu', 'avlönad arbetsprövning', 'paid work trial'),
    ('staff_role', 'specialist', 'työhönvalmentaja', 'arbetstränare', 'employment specialist'),
    ('staff_role', 'supervisor', 'IPS-esihenkilö', 'IPS-chef', 'IPS supervisor'),
    ('staff_role', 'clinician',  'hoitotaho', 'vårdgivare', 'clinician'),
    ('consent_scope', 'share_with_care',     'tietojen jakaminen hoitotahon kanssa', 'delning av uppgifter med vården', 'sharing with the care team'),
    ('consent_scope', 'employer_disclosure', 'kertominen työnantajalle', 'information till arbetsgivaren', 'disclosure to employers'),
    ('consent_scope', 'family_contact',      'yhteydenpito läheisiin', 'kontakt med närstående', 'contact with family')
  ) AS v(category, code, fi, sv, en),
  LATERAL (VALUES ('fi', v.fi), ('sv', v.sv), ('en', v.en)) AS l(lang, label);

-- The language of labels: the argument, else the setting ips.language, else 'en'.
CREATE FUNCTION ips.language(lang text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    l text := coalesce(lang, nullif(current_setting('ips.language', true), ''), 'en');
BEGIN
    IF l NOT IN ('fi', 'sv', 'en') THEN
        RAISE EXCEPTION 'unknown language "%"', l
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Labels exist in fi, sv and en.';
    END IF;
    RETURN l;
END $$;
COMMENT ON FUNCTION ips.language(text) IS 'The label language in effect: the argument, ips.language, or en.';

-- ips.label: the label of a code in a language; the code itself when no label exists.
CREATE FUNCTION ips.label(code text, lang text DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT t.label FROM ips.label_text t
                      WHERE t.code = label.code AND t.lang = ips.language(label.lang)),
                    label.code)
$$;
COMMENT ON FUNCTION ips.label(text, text) IS 'Label of a state, reason, kind, rule or item code in fi, sv or en (default: ips.language).';

-- A setting's value (internal).
CREATE FUNCTION ips.setting_value(setting_name text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT value FROM ips.setting WHERE name = setting_name
$$;
COMMENT ON FUNCTION ips.setting_value(text) IS 'The value of one row of ips.setting.';

-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
-- The region's local date of an instant, and the instant a local day starts:
-- in C (lookup.c), which reads the time zone setting once per snapshot
-- instead of once per call.
CREATE OR REPLACE FUNCTION ips.local_date(at timestamptz) RETURNS date
AS 'MODULE_PATHNAME', 'ips_local_date' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION ips.local_midnight(day date) RETURNS timestamptz
AS 'MODULE_PATHNAME', 'ips_local_midnight' LANGUAGE C STRICT STABLE PARALLEL SAFE;
-- upgrade 1.1: end
COMMENT ON FUNCTION ips.local_date(timestamptz) IS 'The calendar day of an instant in the region''s time zone (setting time_zone).';
COMMENT ON FUNCTION ips.local_midnight(date) IS 'The instant a calendar day starts in the region''s time zone.';

-- Raise a clear error unless code is one of the category's codes (internal; in C, lookup.c).
-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
CREATE OR REPLACE FUNCTION ips.check_code(category text, code text, what text) RETURNS void
AS 'MODULE_PATHNAME', 'ips_check_code' LANGUAGE C STABLE;
-- upgrade 1.1: end
COMMENT ON FUNCTION ips.check_code(text, text, text) IS 'Internal: raises 22023 with the valid codes as hint unless code belongs to category.';

-- Raise "no such ..." for an unknown id (internal).
CREATE FUNCTION ips.not_found(what text, id bigint) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'no % with id %', what, coalesce(id::text, 'NULL')
        USING ERRCODE = 'no_data_found',
              HINT = format('Check the %s id; the caller may also lack the right to see it.', what);
END $$;
COMMENT ON FUNCTION ips.not_found(text, bigint) IS 'Internal: raises P0002 for an unknown or invisible id.';

-- ===== extension/sql/05_business_id.sql
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

-- ===== extension/sql/10_setup.sql
-- Setup data: teams, staff, clients, care relationships, consents, employers.

CREATE FUNCTION ips.caller() RETURNS name
    AS 'MODULE_PATHNAME', 'ips_caller' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ips.caller() IS 'The role on whose behalf the statement runs (also inside SECURITY DEFINER functions).';

CREATE TABLE ips.team (
    team_id    bigserial PRIMARY KEY,
    name       text NOT NULL CHECK (btrim(name) <> ''),
    region     text NOT NULL CHECK (btrim(region) <> ''),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (region, name)
);
COMMENT ON TABLE ips.team IS 'IPS teams; region is the wellbeing services county.';

CREATE TABLE ips.staff (
    staff_id         bigserial PRIMARY KEY,
    team_id          bigint NOT NULL REFERENCES ips.team,
    display_name     text NOT NULL CHECK (btrim(display_name) <> ''),
    role             text NOT NULL CHECK (role IN ('specialist', 'supervisor', 'clinician')),
    fte              numeric NOT NULL DEFAULT 1.0 CHECK (fte > 0 AND fte <= 1),
    db_role          name UNIQUE,
    employment_share numeric NOT NULL DEFAULT 1.0 CHECK (employment_share >= 0 AND employment_share <= 1),
    weekly_hours     numeric NOT NULL DEFAULT 37.5 CHECK (weekly_hours > 0 AND weekly_hours <= 80),
    unit             text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_team_idx ON ips.staff (team_id);
COMMENT ON TABLE ips.staff IS 'Employment specialists, supervisors and clinicians; db_role maps a login role to the person.';
COMMENT ON COLUMN ips.staff.unit IS 'Care unit of a clinician; matches ips.care_relationship.unit.';

CREATE TABLE ips.client (
    client_id    bigserial PRIMARY KEY,
    host_ref     text NOT NULL UNIQUE CHECK (btrim(host_ref) <> '' AND length(host_ref) <= 200),
    birth_year   int CHECK (birth_year BETWEEN 1900 AND 2100),
    municipality text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ips.client IS 'Pseudonymous clients: host_ref points at the host system''s client record; no names or identity codes here.';

CREATE TABLE ips.care_relationship (
    care_relationship_id bigserial PRIMARY KEY,
    client_id  bigint NOT NULL REFERENCES ips.client,
    unit       text NOT NULL CHECK (btrim(unit) <> ''),
    started_on date NOT NULL,
    ended_on   date,
    CHECK (ended_on >= started_on)
);
CREATE INDEX care_relationship_client_idx ON ips.care_relationship (client_id, started_on);
COMMENT ON TABLE ips.care_relationship IS 'The client''s care relationship (hoitosuhde) with a psychiatric or primary care unit.';

CREATE TABLE ips.consent (
    consent_id   bigserial PRIMARY KEY,
    client_id    bigint NOT NULL REFERENCES ips.client,
    scope        text NOT NULL CHECK (scope IN ('share_with_care', 'employer_disclosure', 'family_contact')),
    given_on     date NOT NULL,
    withdrawn_on date,
    CHECK (withdrawn_on >= given_on)
);
CREATE UNIQUE INDEX consent_one_active_idx ON ips.consent (client_id, scope) WHERE withdrawn_on IS NULL;
COMMENT ON TABLE ips.consent IS 'The client''s consents, e.g. share_with_care for collaboration with the care team.';

CREATE TABLE ips.employer (
    employer_id bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (btrim(name) <> ''),
    business_id ips.business_id UNIQUE,
    industry    text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ips.employer IS 'Employers met in job development; business_id is the Finnish Y-tunnus.';

-- Host tables that ips.client.host_ref is tied to by a foreign key.
CREATE TABLE ips.host_attachment (
    host_table  text NOT NULL,
    key_column  name NOT NULL,
    key_type    text NOT NULL,
    attached_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_table, key_column)
);
COMMENT ON TABLE ips.host_attachment IS 'Host client tables tied to ips.client by ips.attach_host_table().';

-- Raise 22004 when a required argument is NULL (internal).
-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
-- In C (lookup.c): the functions call it for every required argument.
CREATE OR REPLACE FUNCTION ips.require(value anyelement, what text) RETURNS void
AS 'MODULE_PATHNAME', 'ips_require' LANGUAGE C IMMUTABLE;
-- upgrade 1.1: end
COMMENT ON FUNCTION ips.require(anyelement, text) IS 'Internal: raises 22004 when a required argument is NULL.';

CREATE FUNCTION ips.add_team(name text, region text) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.require(name, 'name');
    PERFORM ips.require(region, 'region');
    IF btrim(name) = '' OR btrim(region) = '' THEN
        RAISE EXCEPTION 'a team needs a name and a region' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Give the team''s name and its wellbeing services county, e.g. ''Pohjanmaa''.';
    END IF;
    INSERT INTO ips.team (name, region) VALUES (add_team.name, add_team.region) RETURNING team_id INTO id;
    RETURN id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'team "%" exists already in region "%"', add_team.name, add_team.region
        USING ERRCODE = 'unique_violation', HINT = 'Use the existing team, or another name.';
END $$;
COMMENT ON FUNCTION ips.add_team(text, text) IS 'Creates an IPS team in a region; returns its id.';

CREATE FUNCTION ips.add_staff(team_id bigint, display_name text, role text,
                              fte numeric DEFAULT 1.0, db_role name DEFAULT NULL,
                              employment_share numeric DEFAULT 1.0,
                              weekly_hours numeric DEFAULT 37.5,
                              unit text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.require(add_staff.team_id, 'team_id');
    PERFORM ips.require(add_staff.display_name, 'display_name');
    PERFORM ips.check_code('staff_role', add_staff.role, 'staff role');
    IF NOT EXISTS (SELECT 1 FROM ips.team t WHERE t.team_id = add_staff.team_id) THEN
        PERFORM ips.not_found('team', add_staff.team_id);
    END IF;
    IF fte IS NULL OR fte <= 0 OR fte > 1 THEN
        RAISE EXCEPTION 'fte % is out of range', coalesce(fte::text, 'NULL')
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the share of a full-time post, more than 0 and at most 1.';
    END IF;
    IF employment_share IS NULL OR employment_share < 0 OR employment_share > 1 THEN
        RAISE EXCEPTION 'employment_share % is out of range', coalesce(employment_share::text, 'NULL')
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the share of working time on employment services, from 0 to 1.';
    END IF;
    IF weekly_hours IS NULL OR weekly_hours <= 0 OR weekly_hours > 80 THEN
        RAISE EXCEPTION 'weekly_hours % is out of range', coalesce(weekly_hours::text, 'NULL')
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the scheduled hours per week, more than 0 and at most 80.';
    END IF;
    IF db_role IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = add_staff.db_role) THEN
        RAISE EXCEPTION 'role "%" does not exist', db_role
            USING ERRCODE = 'undefined_object', HINT = 'Create the login role first (CREATE ROLE ... LOGIN), then map it here.';
    END IF;
    INSERT INTO ips.staff (team_id, display_name, role, fte, db_role, employment_share, weekly_hours, unit)
    VALUES (add_staff.team_id, add_staff.display_name, add_staff.role, add_staff.fte, add_staff.db_role,
            add_staff.employment_share, add_staff.weekly_hours, add_staff.unit)
    RETURNING staff_id INTO id;
    RETURN id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'role "%" is mapped to another staff member already', db_role
        USING ERRCODE = 'unique_violation', HINT = 'A login role stands for one person.';
END $$;
COMMENT ON FUNCTION ips.add_staff(bigint, text, text, numeric, name, numeric, numeric, text) IS
    'Adds a specialist, supervisor or clinician to a team; returns the staff id.';

CREATE FUNCTION ips.add_client(host_ref text, birth_year int DEFAULT NULL, municipality text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.require(host_ref, 'host_ref');
    IF btrim(host_ref) = '' OR length(host_ref) > 200 THEN
        RAISE EXCEPTION 'host_ref "%" is not a usable key', host_ref
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the host system''s client key (1 to 200 characters), never a name or identity code.';
    END IF;
    IF birth_year IS NOT NULL AND (birth_year < 1900 OR birth_year > extract(year FROM current_date)) THEN
        RAISE EXCEPTION 'birth year % is out of range', birth_year
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give a four-digit year in the past, or NULL.';
    END IF;
    INSERT INTO ips.client (host_ref, birth_year, municipality)
    VALUES (add_client.host_ref, add_client.birth_year, add_client.municipality)
    RETURNING client_id INTO id;
    RETURN id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'a client with host_ref "%" exists already', host_ref
        USING ERRCODE = 'unique_violation', HINT = 'Use the existing client id.';
END $$;
COMMENT ON FUNCTION ips.add_client(text, int, text) IS 'Adds a pseudonymous client by the host system''s key; returns the client id.';

CREATE FUNCTION ips.start_care_relationship(client_id bigint, unit text, started_on date) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.require(unit, 'unit');
    PERFORM ips.require(started_on, 'started_on');
    IF NOT EXISTS (SELECT 1 FROM ips.client c WHERE c.client_id = start_care_relationship.client_id) THEN
        PERFORM ips.not_found('client', start_care_relationship.client_id);
    END IF;
    INSERT INTO ips.care_relationship (client_id, unit, started_on)
    VALUES (start_care_relationship.client_id, start_care_relationship.unit, start_care_relationship.started_on)
    RETURNING care_relationship_id INTO id;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.start_care_relationship(bigint, text, date) IS 'Records a care relationship of a client with a care unit; returns its id.';

CREATE FUNCTION ips.end_care_relationship(care_relationship_id bigint, ended_on date) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.care_relationship;
BEGIN
    PERFORM ips.require(ended_on, 'ended_on');
    SELECT * INTO r FROM ips.care_relationship c
     WHERE c.care_relationship_id = end_care_relationship.care_relationship_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ips.not_found('care relationship', end_care_relationship.care_relationship_id);
    END IF;
    IF r.ended_on IS NOT NULL THEN
        RAISE EXCEPTION 'care relationship % ended already on %', r.care_relationship_id, r.ended_on
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Start a new care relationship if care resumed.';
    END IF;
    IF ended_on < r.started_on THEN
        RAISE EXCEPTION 'end date % is before the start % of care relationship %', ended_on, r.started_on, r.care_relationship_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Check the date.';
    END IF;
    UPDATE ips.care_relationship c SET ended_on = end_care_relationship.ended_on
     WHERE c.care_relationship_id = r.care_relationship_id;
END $$;
COMMENT ON FUNCTION ips.end_care_relationship(bigint, date) IS 'Ends a care relationship on a date.';

CREATE FUNCTION ips.give_consent(client_id bigint, scope text, given_on date) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.check_code('consent_scope', scope, 'consent scope');
    PERFORM ips.require(given_on, 'given_on');
    IF NOT EXISTS (SELECT 1 FROM ips.client c WHERE c.client_id = give_consent.client_id) THEN
        PERFORM ips.not_found('client', give_consent.client_id);
    END IF;
    INSERT INTO ips.consent (client_id, scope, given_on)
    VALUES (give_consent.client_id, give_consent.scope, give_consent.given_on)
    RETURNING consent_id INTO id;
    RETURN id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'client % has an active % consent already', give_consent.client_id, scope
        USING ERRCODE = 'unique_violation', HINT = 'Withdraw it first, or keep the one in force.';
END $$;
COMMENT ON FUNCTION ips.give_consent(bigint, text, date) IS 'Records the client''s consent (scope share_with_care, employer_disclosure, family_contact); returns its id.';

CREATE FUNCTION ips.withdraw_consent(client_id bigint, scope text, withdrawn_on date) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.consent;
BEGIN
    PERFORM ips.check_code('consent_scope', scope, 'consent scope');
    PERFORM ips.require(withdrawn_on, 'withdrawn_on');
    SELECT * INTO r FROM ips.consent c
     WHERE c.client_id = withdraw_consent.client_id AND c.scope = withdraw_consent.scope
       AND c.withdrawn_on IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'client % has no active % consent', coalesce(withdraw_consent.client_id::text, 'NULL'), scope
            USING ERRCODE = 'no_data_found', HINT = 'Check the client id and the scope.';
    END IF;
    IF withdrawn_on < r.given_on THEN
        RAISE EXCEPTION 'withdrawal date % is before the consent was given on %', withdrawn_on, r.given_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Check the date.';
    END IF;
    UPDATE ips.consent c SET withdrawn_on = withdraw_consent.withdrawn_on WHERE c.consent_id = r.consent_id;
END $$;
COMMENT ON FUNCTION ips.withdraw_consent(bigint, text, date) IS 'Records the withdrawal of the client''s active consent of a scope.';

CREATE FUNCTION ips.add_employer(name text, business_id text DEFAULT NULL, industry text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
    bid ips.business_id;
BEGIN
    PERFORM ips.require(name, 'name');
    IF btrim(name) = '' THEN
        RAISE EXCEPTION 'an employer needs a name' USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the employer''s name.';
    END IF;
    bid := add_employer.business_id::ips.business_id;   -- raises 22P02 for a malformed ID
    INSERT INTO ips.employer (name, business_id, industry)
    VALUES (add_employer.name, bid, add_employer.industry)
    RETURNING employer_id INTO id;
    RETURN id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'an employer with business ID % exists already', bid
        USING ERRCODE = 'unique_violation', HINT = 'Use the existing employer id.';
END $$;
COMMENT ON FUNCTION ips.add_employer(text, text, text) IS 'Adds an employer; business_id is the Finnish Y-tunnus, check digit verified. Returns its id.';

-- Tie ips.client.host_ref to the host database's client table with a real foreign key.
CREATE FUNCTION ips.attach_host_table(host_table regclass, key_column name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key_type text;
    is_unique boolean;
    bad text;
BEGIN
    PERFORM ips.require(host_table, 'host_table');
    PERFORM ips.require(key_column, 'key_column');
    SELECT format_type(a.atttypid, a.atttypmod) INTO key_type
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = host_table AND a.attname = key_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF key_type IS NULL THEN
        RAISE EXCEPTION 'table % has no column "%"', host_table, key_column
            USING ERRCODE = 'undefined_column', HINT = 'Give the column that holds the host system''s client key.';
    END IF;
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                    WHERE i.indrelid = host_table AND (i.indisunique OR i.indisprimary)
                      AND i.indnkeyatts = 1 AND i.indpred IS NULL
                      AND i.indkey[0] = (SELECT a.attnum FROM pg_catalog.pg_attribute a
                                          WHERE a.attrelid = host_table AND a.attname = key_column))
      INTO is_unique;
    IF NOT is_unique THEN
        RAISE EXCEPTION 'column "%" of % is not unique', key_column, host_table
            USING ERRCODE = 'invalid_foreign_key', HINT = 'A foreign key needs a primary key or unique constraint on the host key column.';
    END IF;
    IF EXISTS (SELECT 1 FROM ips.host_attachment) THEN
        RAISE EXCEPTION 'ips.client is attached to a host table already'
            USING ERRCODE = 'duplicate_object', HINT = 'Detach it first with ips.detach_host_table().';
    END IF;
    -- Existing clients must convert to the key type and exist in the host table.
    BEGIN
        EXECUTE format('SELECT c.host_ref FROM ips.client c WHERE NOT EXISTS '
                       '(SELECT 1 FROM %s h WHERE h.%I = c.host_ref::%s) LIMIT 1',
                       host_table, key_column, key_type) INTO bad;
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'some host_ref of ips.client does not convert to %', key_type
            USING ERRCODE = 'invalid_foreign_key', HINT = 'host_ref must hold the host system''s key in its text form.';
    END;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'client host_ref "%" is not in %', bad, host_table
            USING ERRCODE = 'foreign_key_violation', HINT = 'Correct or remove the client, then attach again.';
    END IF;
    EXECUTE format('ALTER TABLE ips.client ADD COLUMN host_key %s GENERATED ALWAYS AS (host_ref::%s) STORED',
                   key_type, key_type);
    EXECUTE format('ALTER TABLE ips.client ADD CONSTRAINT client_host_key_fkey FOREIGN KEY (host_key) REFERENCES %s (%I)',
                   host_table, key_column);
    INSERT INTO ips.host_attachment (host_table, key_column, key_type)
    VALUES (host_table::text, key_column, key_type);
END $$;
COMMENT ON FUNCTION ips.attach_host_table(regclass, name) IS
    'Ties ips.client.host_ref to the host''s client table by a foreign key (column ips.client.host_key of the host key''s type).';

CREATE FUNCTION ips.detach_host_table() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    ALTER TABLE ips.client DROP COLUMN IF EXISTS host_key;
    DELETE FROM ips.host_attachment;
END $$;
COMMENT ON FUNCTION ips.detach_host_table() IS 'Removes the foreign key to the host client table.';

-- After pg_restore the extension's tables are created afresh: attach again what was attached.
CREATE FUNCTION ips.reattach_host_tables() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a ips.host_attachment;
BEGIN
    SELECT * INTO a FROM ips.host_attachment;
    IF FOUND AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                              WHERE attrelid = 'ips.client'::regclass AND attname = 'host_key' AND NOT attisdropped) THEN
        DELETE FROM ips.host_attachment;
        PERFORM ips.attach_host_table(a.host_table::regclass, a.key_column);
    END IF;
END $$;
COMMENT ON FUNCTION ips.reattach_host_tables() IS 'Re-creates the host foreign key recorded in ips.host_attachment (run after pg_restore).';

CREATE FUNCTION ips.current_staff() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.staff_id FROM ips.staff s WHERE s.db_role = ips.caller()
$$;
COMMENT ON FUNCTION ips.current_staff() IS 'The staff row of the calling role (ips.staff.db_role), or NULL.';

-- ===== extension/sql/20_episodes.sql
-- Episodes, their state history, and the dated facts of an episode.

CREATE TABLE ips.episode (
    episode_id        bigserial PRIMARY KEY,
    client_id         bigint NOT NULL REFERENCES ips.client,
    team_id           bigint NOT NULL REFERENCES ips.team,
    state             text NOT NULL DEFAULT 'referred'
                      CHECK (state IN ('referred', 'engaged', 'job_search', 'employed', 'studying', 'on_hold', 'closed')),
    state_since       timestamptz NOT NULL,
    state_reason      text,
    referred_on       date NOT NULL,
    referral_source   text,
    specialist_id     bigint REFERENCES ips.staff,
    entry_on          date,
    held_state        text CHECK (held_state IN ('referred', 'engaged', 'job_search', 'employed', 'studying')),
    career_profile_on date,
    closed_on         date,
    close_reason      text CHECK (close_reason IN ('stable_employment', 'client_choice', 'moved', 'referred_elsewhere',
                                                   'disengaged', 'deceased', 'never_engaged')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'closed') = (closed_on IS NOT NULL AND close_reason IS NOT NULL)),
    CHECK ((state = 'on_hold') = (held_state IS NOT NULL))
);
-- One open episode per client; the unique index also settles two concurrent referrals.
CREATE UNIQUE INDEX episode_one_open_per_client ON ips.episode (client_id) WHERE state <> 'closed';
CREATE INDEX episode_team_state_idx ON ips.episode (team_id, state);
CREATE INDEX episode_specialist_idx ON ips.episode (specialist_id) WHERE state <> 'closed';
-- upgrade 1.1: begin (these statements are also the 1.0 -> 1.1 upgrade; see the Makefile)
-- 1.1: no index reads state, so a change of state among the open states is a HOT update
-- (no new index entries; the row's versions stay on one page).  An episode is open
-- exactly while closed_on is empty (the check below), and the unique index says "open"
-- that way; the look-up indexes are whole (not partial), so a query that says "open" as
-- state <> 'closed' uses them as well as one that says closed_on IS NULL.
ALTER TABLE ips.episode
    ADD CONSTRAINT episode_open_iff_no_closed_on CHECK ((state = 'closed') = (closed_on IS NOT NULL));
DROP INDEX ips.episode_one_open_per_client;
CREATE UNIQUE INDEX episode_one_open_per_client ON ips.episode (client_id) WHERE closed_on IS NULL;
DROP INDEX ips.episode_team_state_idx;
CREATE INDEX episode_team_idx ON ips.episode (team_id);
DROP INDEX ips.episode_specialist_idx;
CREATE INDEX episode_specialist_idx ON ips.episode (specialist_id);
-- upgrade 1.1: end
COMMENT ON TABLE ips.episode IS 'One period of IPS service for one client; state kept by the state machine (see README).';
COMMENT ON COLUMN ips.episode.entry_on IS 'Day the episode first entered engaged: the contact rules count from it.';
COMMENT ON COLUMN ips.episode.held_state IS 'While on_hold: the state that was paused, the only one it may return to.';

CREATE TABLE ips.episode_state_history (
    history_id  bigserial PRIMARY KEY,
    episode_id  bigint NOT NULL REFERENCES ips.episode,
    client_id   bigint NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    at          timestamptz NOT NULL,
    reason      text,
    actor       name NOT NULL,
    staff_id    bigint,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX episode_state_history_episode_idx ON ips.episode_state_history (episode_id, at, history_id);
COMMENT ON TABLE ips.episode_state_history IS 'Every state change of every episode (append-only): from, to, at, who, reason.';

CREATE TABLE ips.specialist_assignment (
    assignment_id bigserial PRIMARY KEY,
    episode_id    bigint NOT NULL REFERENCES ips.episode,
    client_id     bigint NOT NULL,
    staff_id      bigint NOT NULL REFERENCES ips.staff,
    from_on       date NOT NULL,
    to_on         date,
    CHECK (to_on >= from_on)
);
CREATE INDEX specialist_assignment_episode_idx ON ips.specialist_assignment (episode_id, from_on);
CREATE INDEX specialist_assignment_staff_idx ON ips.specialist_assignment (staff_id, from_on);
COMMENT ON TABLE ips.specialist_assignment IS 'Which employment specialist carried an episode, from which day.';

CREATE TABLE ips.contact (
    contact_id  bigserial PRIMARY KEY,
    episode_id  bigint NOT NULL REFERENCES ips.episode,
    client_id   bigint NOT NULL,
    staff_id    bigint NOT NULL REFERENCES ips.staff,
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('client', 'employer_for_client', 'care_team', 'benefits_counseling',
                                              'outreach_attempt', 'family')),
    mode        text NOT NULL DEFAULT 'in_person' CHECK (mode IN ('in_person', 'phone', 'video', 'message')),
    setting     text NOT NULL DEFAULT 'community' CHECK (setting IN ('community', 'office')),
    minutes     int CHECK (minutes >= 0),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_episode_at_idx ON ips.contact (episode_id, at);
CREATE INDEX contact_staff_at_idx ON ips.contact (staff_id, at);
COMMENT ON TABLE ips.contact IS 'Contacts of an episode: with the client, the care team, family, benefits counselling, outreach.';

CREATE TABLE ips.employer_contact (
    employer_contact_id bigserial PRIMARY KEY,
    staff_id    bigint NOT NULL REFERENCES ips.staff,
    employer_id bigint NOT NULL REFERENCES ips.employer,
    at          timestamptz NOT NULL,
    in_person   boolean NOT NULL DEFAULT true,
    episode_id  bigint REFERENCES ips.episode,
    client_id   bigint,
    by_client   boolean NOT NULL DEFAULT false,
    competitive boolean NOT NULL DEFAULT true,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CHECK (episode_id IS NOT NULL OR NOT by_client)
);
CREATE INDEX employer_contact_staff_at_idx ON ips.employer_contact (staff_id, at);
CREATE INDEX employer_contact_episode_at_idx ON ips.employer_contact (episode_id, at) WHERE episode_id IS NOT NULL;
CREATE INDEX employer_contact_employer_idx ON ips.employer_contact (employer_id);
COMMENT ON TABLE ips.employer_contact IS 'The job-development log: employer contacts, on behalf of a client when episode_id is given.';

CREATE TABLE ips.job (
    job_id         bigserial PRIMARY KEY,
    episode_id     bigint NOT NULL REFERENCES ips.episode,
    client_id      bigint NOT NULL,
    employer_id    bigint NOT NULL REFERENCES ips.employer,
    starts_on      date NOT NULL,
    ends_on        date,
    kind           text NOT NULL DEFAULT 'competitive'
                   CHECK (kind IN ('competitive', 'wage_subsidy', 'self_employed', 'work_trial', 'paid_work_trial')),
    occupation     text CHECK (occupation ~ '^[0-9]{1,4}$'),
    hours_per_week numeric CHECK (hours_per_week > 0 AND hours_per_week <= 80),
    title          text,
    end_reason     text,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_on >= starts_on)
);
CREATE INDEX job_episode_idx ON ips.job (episode_id, starts_on);
COMMENT ON TABLE ips.job IS 'Jobs and work trials; occupation is an ISCO-08 code (job type).';

CREATE TABLE ips.study (
    study_id   bigserial PRIMARY KEY,
    episode_id bigint NOT NULL REFERENCES ips.episode,
    client_id  bigint NOT NULL,
    starts_on  date NOT NULL,
    ends_on    date,
    programme  text,
    CHECK (ends_on >= starts_on)
);
CREATE INDEX study_episode_idx ON ips.study (episode_id, starts_on);
COMMENT ON TABLE ips.study IS 'Studies started as the goal of an episode.';

CREATE TABLE ips.team_meeting (
    team_meeting_id bigserial PRIMARY KEY,
    staff_id bigint NOT NULL REFERENCES ips.staff,
    team_id  bigint NOT NULL REFERENCES ips.team,
    met_on   date NOT NULL,
    UNIQUE (staff_id, met_on)
);
COMMENT ON TABLE ips.team_meeting IS 'Attendance of specialists at the care team''s meetings.';

-- The state machine and the guards, in C.
CREATE FUNCTION ips.episode_guard() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_episode_guard' LANGUAGE C;
CREATE FUNCTION ips.episode_history() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_episode_history' LANGUAGE C;
CREATE FUNCTION ips.history_guard() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_history_guard' LANGUAGE C;
CREATE FUNCTION ips.fact_guard() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_fact_guard' LANGUAGE C;
COMMENT ON FUNCTION ips.episode_guard() IS 'Trigger: the episode state machine (checks and kept columns).';
COMMENT ON FUNCTION ips.episode_history() IS 'Trigger: one history row per state change.';
COMMENT ON FUNCTION ips.history_guard() IS 'Trigger: the state history is append-only.';
COMMENT ON FUNCTION ips.fact_guard() IS 'Trigger: dated facts stay within their episode and carry its client.';

CREATE TRIGGER episode_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.episode
    FOR EACH ROW EXECUTE FUNCTION ips.episode_guard();
CREATE TRIGGER episode_history AFTER INSERT OR UPDATE ON ips.episode
    FOR EACH ROW EXECUTE FUNCTION ips.episode_history();
CREATE TRIGGER history_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.episode_state_history
    FOR EACH ROW EXECUTE FUNCTION ips.history_guard();
CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON ips.episode_state_history
    FOR EACH STATEMENT EXECUTE FUNCTION ips.history_guard();
CREATE TRIGGER contact_guard BEFORE INSERT OR UPDATE ON ips.contact
    FOR EACH ROW EXECUTE FUNCTION ips.fact_guard('at');
CREATE TRIGGER employer_contact_guard BEFORE INSERT OR UPDATE ON ips.employer_contact
    FOR EACH ROW EXECUTE FUNCTION ips.fact_guard('at');
CREATE TRIGGER job_guard BEFORE INSERT OR UPDATE ON ips.job
    FOR EACH ROW EXECUTE FUNCTION ips.fact_guard('starts_on');
CREATE TRIGGER study_guard BEFORE INSERT OR UPDATE ON ips.study
    FOR EACH ROW EXECUTE FUNCTION ips.fact_guard('starts_on');
CREATE TRIGGER specialist_assignment_guard BEFORE INSERT OR UPDATE ON ips.specialist_assignment
    FOR EACH ROW EXECUTE FUNCTION ips.fact_guard('from_on');

-- An episode locked for a change, or "no episode with id" (internal).
CREATE FUNCTION ips.episode_for_update(episode_id bigint) RETURNS ips.episode
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e ips.episode;
BEGIN
    SELECT * INTO e FROM ips.episode x WHERE x.episode_id = episode_for_update.episode_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ips.not_found('episode', episode_for_update.episode_id);
    END IF;
    RETURN e;
END $$;
COMMENT ON FUNCTION ips.episode_for_update(bigint) IS 'Internal: the episode row, locked, or error P0002.';

-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
-- Hot in ipsctl import: a required argument is checked, and the episode locked, inline (a call costs more).
CREATE OR REPLACE FUNCTION ips.refer(client_id bigint, team_id bigint, referred_on date, source text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    id bigint;
    open_id bigint;
BEGIN
    IF referred_on IS NULL THEN PERFORM ips.require(referred_on, 'referred_on'); END IF;
    IF NOT EXISTS (SELECT 1 FROM ips.client c WHERE c.client_id = refer.client_id) THEN
        PERFORM ips.not_found('client', refer.client_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ips.team t WHERE t.team_id = refer.team_id) THEN
        PERFORM ips.not_found('team', refer.team_id);
    END IF;
    -- ON CONFLICT rather than an EXCEPTION block: no subtransaction (the row locks taken inside
    -- one would make the episode's next update a MultiXact), and a concurrent referral of the
    -- same client still waits for the first and then finds it
    INSERT INTO ips.episode AS x (client_id, team_id, referred_on, referral_source)
    VALUES (refer.client_id, refer.team_id, refer.referred_on, refer.source)
    ON CONFLICT (client_id) WHERE closed_on IS NULL DO NOTHING
    RETURNING x.episode_id INTO id;
    IF id IS NULL THEN
        SELECT e.episode_id INTO open_id FROM ips.episode e
         WHERE e.client_id = refer.client_id AND e.closed_on IS NULL;
        RAISE EXCEPTION 'client % has an open episode already (%)', refer.client_id, coalesce(open_id::text, 'being created')
            USING ERRCODE = 'unique_violation',
                  DETAIL = 'A client has at most one open IPS episode.',
                  HINT = 'Continue the open episode, or close it before a new referral.';
    END IF;
    RETURN id;
END $$;
-- upgrade 1.1: end
COMMENT ON FUNCTION ips.refer(bigint, bigint, date, text) IS 'Receives a referral: a new episode in state referred; returns its id.';

-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
-- Hot in ipsctl import: a required argument is checked, and the episode locked, inline (a call costs more).
CREATE OR REPLACE FUNCTION ips.assign_specialist(episode_id bigint, staff_id bigint, from_on date) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e ips.episode;
    s ips.staff;
BEGIN
    IF from_on IS NULL THEN PERFORM ips.require(from_on, 'from_on'); END IF;
    -- ips.episode_for_update, inline
    SELECT * INTO e FROM ips.episode x WHERE x.episode_id = assign_specialist.episode_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ips.not_found('episode', assign_specialist.episode_id);
    END IF;
    SELECT * INTO s FROM ips.staff x WHERE x.staff_id = assign_specialist.staff_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('staff member', assign_specialist.staff_id);
    END IF;
    IF s.role <> 'specialist' THEN
        RAISE EXCEPTION 'staff member % is a %, not an employment specialist', s.staff_id, s.role
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Assign a staff member whose role is specialist.';
    END IF;
    IF s.team_id <> e.team_id THEN
        RAISE EXCEPTION 'staff member % belongs to team %, episode % to team %', s.staff_id, s.team_id, e.episode_id, e.team_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Assign a specialist of the episode''s own team.';
    END IF;
    IF EXISTS (SELECT 1 FROM ips.specialist_assignment a
                WHERE a.episode_id = e.episode_id AND a.to_on IS NULL AND a.from_on > assign_specialist.from_on) THEN
        RAISE EXCEPTION 'assignment date % is before the current assignment of episode %', assign_specialist.from_on, e.episode_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Assignments follow each other in time.';
    END IF;
    UPDATE ips.specialist_assignment a SET to_on = greatest(a.from_on, assign_specialist.from_on - 1)
     WHERE a.episode_id = e.episode_id AND a.to_on IS NULL;
    INSERT INTO ips.specialist_assignment (episode_id, staff_id, from_on)
    VALUES (e.episode_id, s.staff_id, assign_specialist.from_on);
    UPDATE ips.episode x SET specialist_id = s.staff_id WHERE x.episode_id = e.episode_id;
END $$;
-- upgrade 1.1: end
COMMENT ON FUNCTION ips.assign_specialist(bigint, bigint, date) IS 'Makes a specialist of the team responsible for an episode from a day on.';

-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
-- Hot in ipsctl import: a required argument is checked, and the episode locked, inline (a call costs more).
CREATE OR REPLACE FUNCTION ips.transition(episode_id bigint, to_state text, at timestamptz DEFAULT now(), reason text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e ips.episode;
BEGIN
    PERFORM ips.check_code('state', to_state, 'episode state');
    IF at IS NULL THEN PERFORM ips.require(at, 'at'); END IF;
    -- ips.episode_for_update, inline
    SELECT * INTO e FROM ips.episode x WHERE x.episode_id = transition.episode_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ips.not_found('episode', transition.episode_id);
    END IF;
    IF e.state = to_state THEN
        RAISE EXCEPTION 'episode % is in state % already', e.episode_id, to_state
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing to change.';
    END IF;
    IF to_state = 'closed' AND reason IS NOT NULL THEN
        PERFORM ips.check_code('close_reason', reason, 'closing reason');
    END IF;
    UPDATE ips.episode x SET state = to_state, state_since = transition.at, state_reason = transition.reason
     WHERE x.episode_id = e.episode_id;
    RETURN to_state;
END $$;
-- upgrade 1.1: end
COMMENT ON FUNCTION ips.transition(bigint, text, timestamptz, text) IS
    'Moves an episode to another state (see the transition table); closed needs a reason. Returns the new state.';

-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
-- Hot in ipsctl import: a required argument is checked, and the episode locked, inline (a call costs more).
CREATE OR REPLACE FUNCTION ips.complete_career_profile(episode_id bigint, completed_on date) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e ips.episode;
BEGIN
    IF completed_on IS NULL THEN PERFORM ips.require(completed_on, 'completed_on'); END IF;
    -- ips.episode_for_update, inline
    SELECT * INTO e FROM ips.episode x WHERE x.episode_id = complete_career_profile.episode_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ips.not_found('episode', complete_career_profile.episode_id);
    END IF;
    IF completed_on < e.referred_on THEN
        RAISE EXCEPTION 'completion date % is before the referral of episode % on %', completed_on, e.episode_id, e.referred_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Check the date.';
    END IF;
    IF completed_on > ips.local_date(now()) THEN
        RAISE EXCEPTION 'completion date % is in the future', completed_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record the career profile when it is complete.';
    END IF;
    IF e.state = 'closed' THEN
        RAISE EXCEPTION 'episode % is closed', e.episode_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Refer the client again to start a new episode.';
    END IF;
    UPDATE ips.episode x SET career_profile_on = completed_on WHERE x.episode_id = e.episode_id;
END $$;
-- upgrade 1.1: end
COMMENT ON FUNCTION ips.complete_career_profile(bigint, date) IS 'Records the day the client''s career profile (vocational profile) was completed.';

CREATE FUNCTION ips.record_contact(episode_id bigint, staff_id bigint, at timestamptz, kind text,
                                   mode text DEFAULT 'in_person', setting text DEFAULT 'community',
                                   minutes int DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.check_code('contact_kind', kind, 'contact kind');
    PERFORM ips.check_code('contact_mode', mode, 'contact mode');
    PERFORM ips.check_code('contact_setting', setting, 'contact setting');
    PERFORM ips.require(at, 'at');
    IF minutes < 0 THEN
        RAISE EXCEPTION 'minutes % is negative', minutes
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the length of the contact in minutes, 0 or more, or NULL.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ips.staff s WHERE s.staff_id = record_contact.staff_id) THEN
        PERFORM ips.not_found('staff member', record_contact.staff_id);
    END IF;
    INSERT INTO ips.contact (episode_id, staff_id, at, kind, mode, setting, minutes)
    VALUES (record_contact.episode_id, record_contact.staff_id, record_contact.at, record_contact.kind,
            record_contact.mode, record_contact.setting, record_contact.minutes)
    RETURNING contact_id INTO id;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.record_contact(bigint, bigint, timestamptz, text, text, text, int) IS
    'Records a contact of an episode (kind, mode, setting, minutes); returns its id.';

CREATE FUNCTION ips.record_employer_contact(staff_id bigint, employer_id bigint, at timestamptz,
                                            in_person boolean DEFAULT true, episode_id bigint DEFAULT NULL,
                                            by_client boolean DEFAULT false, competitive boolean DEFAULT true) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.require(at, 'at');
    IF NOT EXISTS (SELECT 1 FROM ips.staff s WHERE s.staff_id = record_employer_contact.staff_id) THEN
        PERFORM ips.not_found('staff member', record_employer_contact.staff_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ips.employer x WHERE x.employer_id = record_employer_contact.employer_id) THEN
        PERFORM ips.not_found('employer', record_employer_contact.employer_id);
    END IF;
    IF by_client AND episode_id IS NULL THEN
        RAISE EXCEPTION 'a contact made by the client needs the client''s episode'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give episode_id.';
    END IF;
    INSERT INTO ips.employer_contact (staff_id, employer_id, at, in_person, episode_id, by_client, competitive)
    VALUES (record_employer_contact.staff_id, record_employer_contact.employer_id, record_employer_contact.at,
            coalesce(record_employer_contact.in_person, true), record_employer_contact.episode_id,
            coalesce(record_employer_contact.by_client, false), coalesce(record_employer_contact.competitive, true))
    RETURNING employer_contact_id INTO id;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.record_employer_contact(bigint, bigint, timestamptz, boolean, bigint, boolean, boolean) IS
    'Records an employer contact in the job-development log (on behalf of a client when episode_id is given); returns its id.';

-- When a change dated on a day moves the state: the later of that day's start and the last transition, not after now.
CREATE FUNCTION ips.transition_time(e ips.episode, day date) RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT least(greatest(ips.local_midnight(day), e.state_since), now())
$$;
COMMENT ON FUNCTION ips.transition_time(ips.episode, date) IS 'Internal: the instant a dated change moves the episode''s state.';

-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
-- Hot in ipsctl import: a required argument is checked, and the episode locked, inline (a call costs more).
CREATE OR REPLACE FUNCTION ips.start_job(episode_id bigint, employer_id bigint, starts_on date, kind text DEFAULT 'competitive',
                              occupation text DEFAULT NULL, hours_per_week numeric DEFAULT NULL,
                              title text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e ips.episode;
    id bigint;
BEGIN
    PERFORM ips.check_code('job_kind', kind, 'job kind');
    IF starts_on IS NULL THEN PERFORM ips.require(starts_on, 'starts_on'); END IF;
    -- ips.episode_for_update, inline
    SELECT * INTO e FROM ips.episode x WHERE x.episode_id = start_job.episode_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ips.not_found('episode', start_job.episode_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ips.employer x WHERE x.employer_id = start_job.employer_id) THEN
        PERFORM ips.not_found('employer', start_job.employer_id);
    END IF;
    IF occupation IS NOT NULL AND occupation !~ '^[0-9]{1,4}$' THEN
        RAISE EXCEPTION 'occupation "%" is not an ISCO-08 code', occupation
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the ISCO-08 code of the job, 1 to 4 digits, e.g. ''5223''.';
    END IF;
    IF hours_per_week IS NOT NULL AND (hours_per_week <= 0 OR hours_per_week > 80) THEN
        RAISE EXCEPTION 'hours_per_week % is out of range', hours_per_week
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the weekly hours, more than 0 and at most 80.';
    END IF;
    IF e.state NOT IN ('engaged', 'job_search', 'studying', 'employed') THEN
        RAISE EXCEPTION 'episode % is %: a job starts from engaged, job_search, studying or employed', e.episode_id, e.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE e.state WHEN 'referred' THEN 'Engage the client first.'
                                      WHEN 'on_hold' THEN 'Resume the episode first.'
                                      ELSE 'Refer the client again to start a new episode.' END;
    END IF;
    INSERT INTO ips.job (episode_id, employer_id, starts_on, kind, occupation, hours_per_week, title)
    VALUES (e.episode_id, start_job.employer_id, start_job.starts_on, start_job.kind,
            start_job.occupation, start_job.hours_per_week, start_job.title)
    RETURNING job_id INTO id;
    IF e.state <> 'employed' THEN
        UPDATE ips.episode x SET state = 'employed', state_since = ips.transition_time(e, start_job.starts_on),
                                 state_reason = 'job started'
         WHERE x.episode_id = e.episode_id;
    END IF;
    RETURN id;
END $$;
-- upgrade 1.1: end
COMMENT ON FUNCTION ips.start_job(bigint, bigint, date, text, text, numeric, text) IS
    'Records a job start; moves an engaged, job_search or studying episode to employed. Returns the job id.';

CREATE FUNCTION ips.end_job(job_id bigint, ends_on date, reason text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j ips.job;
    e ips.episode;
BEGIN
    PERFORM ips.require(ends_on, 'ends_on');
    SELECT * INTO j FROM ips.job x WHERE x.job_id = end_job.job_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('job', end_job.job_id);
    END IF;
    e := ips.episode_for_update(j.episode_id);
    IF j.ends_on IS NOT NULL THEN
        RAISE EXCEPTION 'job % ended already on %', j.job_id, j.ends_on
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing to change.';
    END IF;
    IF ends_on < j.starts_on THEN
        RAISE EXCEPTION 'end date % is before the start % of job %', ends_on, j.starts_on, j.job_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Check the date.';
    END IF;
    IF e.state = 'closed' AND ends_on > e.closed_on THEN
        RAISE EXCEPTION 'episode % was closed on %', e.episode_id, e.closed_on
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'A job of a closed episode ends on or before the closure.';
    END IF;
    UPDATE ips.job x SET ends_on = end_job.ends_on, end_reason = end_job.reason WHERE x.job_id = j.job_id;
    IF e.state = 'employed' AND NOT EXISTS (SELECT 1 FROM ips.job x WHERE x.episode_id = e.episode_id
                                                AND x.job_id <> j.job_id AND x.ends_on IS NULL) THEN
        UPDATE ips.episode x SET state = 'job_search', state_since = ips.transition_time(e, end_job.ends_on + 1),
                                 state_reason = 'job ended'
         WHERE x.episode_id = e.episode_id;
    END IF;
END $$;
COMMENT ON FUNCTION ips.end_job(bigint, date, text) IS 'Records the end of a job; ending the last current job moves an employed episode back to job_search.';

CREATE FUNCTION ips.start_studies(episode_id bigint, starts_on date, programme text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e ips.episode;
    id bigint;
BEGIN
    PERFORM ips.require(starts_on, 'starts_on');
    e := ips.episode_for_update(start_studies.episode_id);
    IF e.state NOT IN ('engaged', 'job_search', 'employed', 'studying') THEN
        RAISE EXCEPTION 'episode % is %: studies start from engaged, job_search, employed or studying', e.episode_id, e.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE e.state WHEN 'referred' THEN 'Engage the client first.'
                                      WHEN 'on_hold' THEN 'Resume the episode first.'
                                      ELSE 'Refer the client again to start a new episode.' END;
    END IF;
    INSERT INTO ips.study (episode_id, starts_on, programme)
    VALUES (e.episode_id, start_studies.starts_on, start_studies.programme)
    RETURNING study_id INTO id;
    IF e.state IN ('engaged', 'job_search') THEN
        UPDATE ips.episode x SET state = 'studying', state_since = ips.transition_time(e, start_studies.starts_on),
                                 state_reason = 'studies started'
         WHERE x.episode_id = e.episode_id;
    END IF;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.start_studies(bigint, date, text) IS 'Records the start of studies; moves an engaged or job_search episode to studying. Returns the study id.';

CREATE FUNCTION ips.end_studies(study_id bigint, ends_on date) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s ips.study;
    e ips.episode;
BEGIN
    PERFORM ips.require(ends_on, 'ends_on');
    SELECT * INTO s FROM ips.study x WHERE x.study_id = end_studies.study_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('study', end_studies.study_id);
    END IF;
    e := ips.episode_for_update(s.episode_id);
    IF s.ends_on IS NOT NULL OR ends_on < s.starts_on THEN
        RAISE EXCEPTION 'studies % cannot end on %', s.study_id, ends_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Studies end once, on or after their start.';
    END IF;
    UPDATE ips.study x SET ends_on = end_studies.ends_on WHERE x.study_id = s.study_id;
    IF e.state = 'studying' AND NOT EXISTS (SELECT 1 FROM ips.study x WHERE x.episode_id = e.episode_id
                                                AND x.study_id <> s.study_id AND x.ends_on IS NULL) THEN
        UPDATE ips.episode x SET state = 'job_search', state_since = ips.transition_time(e, end_studies.ends_on + 1),
                                 state_reason = 'studies ended'
         WHERE x.episode_id = e.episode_id;
    END IF;
END $$;
COMMENT ON FUNCTION ips.end_studies(bigint, date) IS 'Records the end of studies; ending the last moves a studying episode to job_search.';

-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
-- Hot in ipsctl import: a required argument is checked, and the episode locked, inline (a call costs more).
CREATE OR REPLACE FUNCTION ips.record_team_meeting(staff_id bigint, met_on date) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- The checks in their order: met_on given, the staff member exists, the date is not in the future;
    -- the staff row is read by the INSERT itself, and again only when no row was inserted.
    IF met_on IS NULL THEN PERFORM ips.require(met_on, 'met_on'); END IF;
    IF met_on > ips.local_date(now()) THEN
        IF NOT EXISTS (SELECT 1 FROM ips.staff x WHERE x.staff_id = record_team_meeting.staff_id) THEN
            PERFORM ips.not_found('staff member', record_team_meeting.staff_id);
        END IF;
        RAISE EXCEPTION 'meeting date % is in the future', met_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record attendance after the meeting.';
    END IF;
    INSERT INTO ips.team_meeting (staff_id, team_id, met_on)
    SELECT x.staff_id, x.team_id, record_team_meeting.met_on FROM ips.staff x
     WHERE x.staff_id = record_team_meeting.staff_id
    ON CONFLICT ON CONSTRAINT team_meeting_staff_id_met_on_key DO NOTHING;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM ips.staff x WHERE x.staff_id = record_team_meeting.staff_id) THEN
        PERFORM ips.not_found('staff member', record_team_meeting.staff_id);
    END IF;
END $$;
-- upgrade 1.1: end
COMMENT ON FUNCTION ips.record_team_meeting(bigint, date) IS 'Records that a specialist attended the care team''s meeting on a day (idempotent).';

-- Caseload per specialist (open episodes past referred).
CREATE VIEW ips.caseload AS
SELECT s.staff_id, s.team_id, s.display_name, s.fte,
       count(e.episode_id) FILTER (WHERE e.state NOT IN ('referred', 'closed')) AS active_clients,
       round(count(e.episode_id) FILTER (WHERE e.state NOT IN ('referred', 'closed')) / s.fte, 1) AS clients_per_fte
  FROM ips.staff s
  LEFT JOIN ips.episode e ON e.specialist_id = s.staff_id AND e.state <> 'closed'
 WHERE s.role = 'specialist'
 GROUP BY s.staff_id;
COMMENT ON VIEW ips.caseload IS 'Per specialist: active clients (open episodes past referred), fte, clients per fte.';

-- pg_dump keeps the rows of the tables that hold a region's data.
SELECT pg_catalog.pg_extension_config_dump('ips.team', '');
SELECT pg_catalog.pg_extension_config_dump('ips.staff', '');
SELECT pg_catalog.pg_extension_config_dump('ips.client', '');
SELECT pg_catalog.pg_extension_config_dump('ips.care_relationship', '');
SELECT pg_catalog.pg_extension_config_dump('ips.consent', '');
SELECT pg_catalog.pg_extension_config_dump('ips.employer', '');
SELECT pg_catalog.pg_extension_config_dump('ips.host_attachment', '');
SELECT pg_catalog.pg_extension_config_dump('ips.episode', '');
SELECT pg_catalog.pg_extension_config_dump('ips.episode_state_history', '');
SELECT pg_catalog.pg_extension_config_dump('ips.specialist_assignment', '');
SELECT pg_catalog.pg_extension_config_dump('ips.contact', '');
SELECT pg_catalog.pg_extension_config_dump('ips.employer_contact', '');
SELECT pg_catalog.pg_extension_config_dump('ips.job', '');
SELECT pg_catalog.pg_extension_config_dump('ips.study', '');
SELECT pg_catalog.pg_extension_config_dump('ips.team_meeting', '');
SELECT pg_catalog.pg_extension_config_dump('ips.team_team_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.staff_staff_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.client_client_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.care_relationship_care_relationship_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.consent_consent_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.employer_employer_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.episode_episode_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.episode_state_history_history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.specialist_assignment_assignment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.contact_contact_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.employer_contact_employer_contact_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.job_job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.study_study_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.team_meeting_team_meeting_id_seq', '');
-- Settings are data too.  CREATE EXTENSION inserts the defaults before pg_restore
-- loads the dumped rows, so a dumped row replaces the default of the same name.
CREATE FUNCTION ips.setting_restore() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE ips.setting s SET value = NEW.value, description = NEW.description WHERE s.name = NEW.name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.setting_restore() IS 'Trigger: an inserted setting that exists already replaces it (pg_restore).';
CREATE TRIGGER setting_restore BEFORE INSERT ON ips.setting
    FOR EACH ROW EXECUTE FUNCTION ips.setting_restore();
SELECT pg_catalog.pg_extension_config_dump('ips.setting', '');

-- ===== extension/sql/30_rules.sql
-- Contact-frequency rules (domain.md section 4): the rules as data, the engine
-- (contact_rules.c) and the functions that read it.  The semantics of every
-- rule are described in docs/rules.md.

CREATE TABLE ips.rule (
    code         text PRIMARY KEY
                 CHECK (code IN ('referral_response', 'career_profile', 'rapid_job_search', 'benefits_before_start',
                                 'pre_start_contact', 'post_start_contact', 'first_month_weekly', 'follow_along_monthly',
                                 'job_loss_contact', 'no_contact', 'care_relationship', 'consent_for_care',
                                 'specialist_employer_contacts', 'specialist_team_meeting', 'specialist_caseload')),
    ordinal      int  NOT NULL UNIQUE,
    scope        text NOT NULL CHECK (scope IN ('episode', 'specialist')),
    days         int,
    count        int,
    horizon_days int  NOT NULL DEFAULT 0,
    enabled      boolean NOT NULL DEFAULT true,
    label_fi     text NOT NULL,
    label_sv     text NOT NULL,
    label_en     text NOT NULL,
    description  text NOT NULL
);
COMMENT ON TABLE ips.rule IS
    'The contact-frequency rules and their numbers (days, count, warning horizon); ips_admin may change them, with effect at once.';
COMMENT ON COLUMN ips.rule.days IS 'The rule''s window in local days (see docs/rules.md per rule); NULL for the weekly specialist rules.';
COMMENT ON COLUMN ips.rule.count IS 'How many: weekly blocks, monthly blocks, contacts per week, meetings per week, clients per FTE.';
COMMENT ON COLUMN ips.rule.horizon_days IS 'Warning horizon: an unmet expectation due within this many days after as_of shows with severity due.';
COMMENT ON COLUMN ips.rule.enabled IS 'A disabled rule raises no alerts and has no expectations.';

INSERT INTO ips.rule (code, ordinal, scope, days, count, horizon_days, label_fi, label_sv, label_en, description) VALUES
  ('referral_response', 1, 'episode', 7, NULL, 2,
   'Ensikontakti lähetteen jälkeen', 'Första kontakt efter remissen', 'First contact after the referral',
   'First client contact within days of the referral.'),
  ('career_profile', 2, 'episode', 30, NULL, 7,
   'Uraprofiili valmis', 'Karriärprofilen klar', 'Career profile completed',
   'Career profile completed within days of entry (engaged).'),
  ('rapid_job_search', 3, 'episode', 30, NULL, 7,
   'Nopea työnhaku: ensimmäinen työnantajatapaaminen', 'Snabb jobbsökning: första arbetsgivarmötet', 'Rapid job search: first employer meeting',
   'First face-to-face employer contact about a competitive job for the client (by client or specialist) within days of entry.'),
  ('benefits_before_start', 4, 'episode', 0, NULL, 0,
   'Etuusneuvonta ennen työn alkua', 'Förmånsrådgivning före arbetsstart', 'Benefits counselling before the job starts',
   'Benefits counselling offered at least days before the start of the episode''s first job (0: by the start day).'),
  ('pre_start_contact', 5, 'episode', 7, NULL, 0,
   'Tapaaminen ennen työn alkua', 'Möte före arbetsstarten', 'Meeting before the job starts',
   'Face-to-face client contact within days before each job start (start day included).'),
  ('post_start_contact', 6, 'episode', 3, NULL, 1,
   'Tapaaminen työn alettua', 'Möte efter arbetsstarten', 'Meeting after the job starts',
   'Face-to-face client contact within days after each job start.'),
  ('first_month_weekly', 7, 'episode', 7, 4, 2,
   'Viikoittainen tapaaminen ensimmäisenä työkuukautena', 'Veckomöte under första arbetsmånaden', 'Weekly meeting in the first month of the job',
   'Face-to-face client contact in each of count blocks of days counted from the job start.'),
  ('follow_along_monthly', 8, 'episode', 30, 12, 7,
   'Kuukausittainen tuki työssä', 'Månatligt stöd i arbetet', 'Monthly follow-along meeting',
   'Face-to-face client contact in each of count blocks of days (a month) counted from the job start, while the job lasts.'),
  ('job_loss_contact', 9, 'episode', 3, NULL, 1,
   'Yhteydenotto työn päätyttyä', 'Kontakt efter att arbetet upphört', 'Contact after the job ended',
   'Client contact (in person, phone or video) within days after a job ends.'),
  ('no_contact', 10, 'episode', 30, NULL, 7,
   'Ei yhteyttä asiakkaaseen: tavoita', 'Ingen kontakt med klienten: uppsökande', 'No client contact: reach out',
   'No client contact for days since the last one (or the referral): outreach is due.'),
  ('care_relationship', 11, 'episode', 0, NULL, 0,
   'Voimassa oleva hoitosuhde', 'Gällande vårdrelation', 'Active care relationship',
   'From entry on, the client has an active care relationship; a gap must close within days.'),
  ('consent_for_care', 12, 'episode', 14, NULL, 7,
   'Suostumus yhteistyöhön hoitotahon kanssa', 'Samtycke till samarbete med vården', 'Consent to work with the care team',
   'From entry on, the client has an active share_with_care consent; a gap (no consent at entry, or a withdrawal) must close within days.'),
  ('specialist_employer_contacts', 13, 'specialist', NULL, 6, 2,
   'Työnantajatapaamiset viikossa', 'Arbetsgivarmöten per vecka', 'Employer meetings per week',
   'Each specialist has at least count face-to-face employer contacts (times FTE, rounded up) in each ISO week (Monday to Sunday).'),
  ('specialist_team_meeting', 14, 'specialist', NULL, 1, 2,
   'Hoitotiimin viikkokokous', 'Vårdteamets veckomöte', 'Weekly care team meeting',
   'Each specialist attends the care team meeting at least count times in each ISO week.'),
  ('specialist_caseload', 15, 'specialist', NULL, 20, 0,
   'Asiakasmäärä', 'Antal klienter', 'Caseload size',
   'Each specialist has at most count active clients (open episodes past referred) per full-time equivalent.');

-- Labels of the alert severities and expectation statuses.
INSERT INTO ips.label_text (category, code, lang, label)
SELECT v.category, v.code, l.lang, l.label
  FROM (VALUES
    ('alert_severity', 'severity:overdue', 'myöhässä', 'försenad', 'overdue'),
    ('alert_severity', 'severity:due', 'tulossa', 'snart', 'due soon'),
    ('expectation_status', 'status:met_on_time', 'ajallaan', 'i tid', 'met on time'),
    ('expectation_status', 'status:met_late', 'myöhässä tehty', 'gjord för sent', 'met late'),
    ('expectation_status', 'status:missed', 'jäi tekemättä', 'uteblev', 'missed'),
    ('expectation_status', 'status:open', 'avoin', 'öppen', 'open')
  ) AS v(category, code, fi, sv, en),
  LATERAL (VALUES ('fi', v.fi), ('sv', v.sv), ('en', v.en)) AS l(lang, label);

-- Check an edited rule row, with a hint (BEFORE INSERT OR UPDATE).
CREATE FUNCTION ips.rule_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    weekly boolean := NEW.code IN ('specialist_employer_contacts', 'specialist_team_meeting', 'specialist_caseload');
    counted boolean := NEW.code IN ('first_month_weekly', 'follow_along_monthly', 'specialist_employer_contacts',
                                    'specialist_team_meeting', 'specialist_caseload');
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.code <> OLD.code OR NEW.scope <> OLD.scope) THEN
        RAISE EXCEPTION 'the code and scope of rule % are fixed', OLD.code
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Change days, count, horizon_days, enabled or the labels; disable a rule instead of renaming it.';
    END IF;
    IF NEW.scope <> (CASE WHEN weekly THEN 'specialist' ELSE 'episode' END) THEN
        RAISE EXCEPTION 'rule % has scope %', NEW.code, CASE WHEN weekly THEN 'specialist' ELSE 'episode' END
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The scope follows from the rule code.';
    END IF;
    IF NOT weekly AND (NEW.days IS NULL OR NEW.days < 0 OR NEW.days > 3650) THEN
        RAISE EXCEPTION 'days % of rule % is out of range', coalesce(NEW.days::text, 'NULL'), NEW.code
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give a number of days from 0 to 3650.';
    END IF;
    IF weekly AND NEW.days IS NOT NULL THEN
        RAISE EXCEPTION 'rule % counts ISO weeks and takes no days', NEW.code
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave days NULL; change count instead.';
    END IF;
    IF NEW.code IN ('first_month_weekly', 'follow_along_monthly') AND NEW.days = 0 THEN
        RAISE EXCEPTION 'rule % needs blocks of at least one day', NEW.code
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give days from 1 to 3650.';
    END IF;
    IF counted AND (NEW.count IS NULL OR NEW.count < CASE WHEN NEW.code = 'specialist_caseload' THEN 0 ELSE 1 END
                    OR NEW.count > 1000) THEN
        RAISE EXCEPTION 'count % of rule % is out of range', coalesce(NEW.count::text, 'NULL'), NEW.code
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give a count from 1 to 1000.';
    END IF;
    IF NOT counted AND NEW.count IS NOT NULL THEN
        RAISE EXCEPTION 'rule % takes no count', NEW.code
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave count NULL; change days instead.';
    END IF;
    IF NEW.horizon_days IS NULL OR NEW.horizon_days < 0 OR NEW.horizon_days > 365 THEN
        RAISE EXCEPTION 'horizon_days % of rule % is out of range', coalesce(NEW.horizon_days::text, 'NULL'), NEW.code
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give a warning horizon from 0 to 365 days.';
    END IF;
    IF btrim(NEW.label_fi) = '' OR btrim(NEW.label_sv) = '' OR btrim(NEW.label_en) = '' THEN
        RAISE EXCEPTION 'rule % needs labels in fi, sv and en', NEW.code
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a non-empty label in each language.';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.rule_check() IS 'Trigger: checks an edited rule (numbers in range, code and scope fixed).';
CREATE TRIGGER rule_check BEFORE INSERT OR UPDATE ON ips.rule
    FOR EACH ROW EXECUTE FUNCTION ips.rule_check();

-- pg_restore: CREATE EXTENSION inserts the default rules before the dumped rows
-- are loaded, so a dumped row replaces the default of the same code.
CREATE FUNCTION ips.rule_restore() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE ips.rule r
       SET days = NEW.days, count = NEW.count, horizon_days = NEW.horizon_days, enabled = NEW.enabled,
           label_fi = NEW.label_fi, label_sv = NEW.label_sv, label_en = NEW.label_en, description = NEW.description
     WHERE r.code = NEW.code;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.rule_restore() IS 'Trigger: an inserted rule that exists already replaces it (pg_restore).';
CREATE TRIGGER rule_restore BEFORE INSERT ON ips.rule
    FOR EACH ROW EXECUTE FUNCTION ips.rule_restore();

-- Keep the rule labels in ips.label_text, so that ips.label(code, lang) works for rules.
CREATE FUNCTION ips.rule_labels() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO ips.label_text (code, lang, label, category)
    VALUES (NEW.code, 'fi', NEW.label_fi, 'rule'), (NEW.code, 'sv', NEW.label_sv, 'rule'), (NEW.code, 'en', NEW.label_en, 'rule')
    ON CONFLICT (code, lang) DO UPDATE SET label = EXCLUDED.label, category = EXCLUDED.category;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ips.rule_labels() IS 'Trigger: copies the labels of a rule into ips.label_text (category rule).';
CREATE TRIGGER rule_labels AFTER INSERT OR UPDATE OF label_fi, label_sv, label_en ON ips.rule
    FOR EACH ROW EXECUTE FUNCTION ips.rule_labels();
INSERT INTO ips.label_text (code, lang, label, category)
SELECT r.code, l.lang, l.label, 'rule'
  FROM ips.rule r, LATERAL (VALUES ('fi', r.label_fi), ('sv', r.label_sv), ('en', r.label_en)) AS l(lang, label);

SELECT pg_catalog.pg_extension_config_dump('ips.rule', '');

-- Indexes the engine reads by (the others exist with their tables).
CREATE INDEX consent_client_scope_idx ON ips.consent (client_id, scope, given_on);
CREATE INDEX team_meeting_staff_idx ON ips.team_meeting (staff_id, met_on);

-- The engine (C): every expectation, or the alerts, of a selection of episodes and specialists.
CREATE FUNCTION ips.rule_engine(mode text, from_on date, to_on date, team_id bigint DEFAULT NULL, episode_id bigint DEFAULT NULL)
RETURNS TABLE(episode_id bigint, staff_id bigint, rule text, job_id bigint, due_on date, met_on date, status text)
AS 'MODULE_PATHNAME', 'ips_rule_engine'
LANGUAGE C STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.rule_engine(text, date, date, bigint, bigint) IS
    'Internal: the contact-rule engine.  mode alerts: unmet expectations as of to_on (status overdue or due); '
    'mode expectations: every expectation due from from_on to to_on, as known on to_on (status met_on_time, met_late, missed, open).';

-- Raise the usual errors for an unknown team (internal).
CREATE FUNCTION ips.rule_check_team(team_id bigint) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF team_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ips.team t WHERE t.team_id = rule_check_team.team_id) THEN
        PERFORM ips.not_found('team', team_id);
    END IF;
END $$;
COMMENT ON FUNCTION ips.rule_check_team(bigint) IS 'Internal: raises P0002 for an unknown team id (NULL means all teams).';

-- Check a period (internal).
CREATE FUNCTION ips.rule_check_period(period_start date, period_end date) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(period_start, 'period_start');
    PERFORM ips.require(period_end, 'period_end');
    IF period_end < period_start THEN
        RAISE EXCEPTION 'period ends on % before it starts on %', period_end, period_start
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give period_start <= period_end.';
    END IF;
END $$;
COMMENT ON FUNCTION ips.rule_check_period(date, date) IS 'Internal: raises 22004/22023 for a missing or reversed period.';

CREATE FUNCTION ips.contact_alerts(as_of date DEFAULT current_date, team_id bigint DEFAULT NULL)
RETURNS TABLE(episode_id bigint, staff_id bigint, rule text, due_on date, days_overdue int, severity text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM ips.require(contact_alerts.as_of, 'as_of');
    PERFORM ips.rule_check_team(contact_alerts.team_id);
    RETURN QUERY
        SELECT x.episode_id, x.staff_id, x.rule, x.due_on, (contact_alerts.as_of - x.due_on)::int, x.status
          FROM ips.rule_engine('alerts', contact_alerts.as_of, contact_alerts.as_of, contact_alerts.team_id, NULL) x
          JOIN ips.rule r ON r.code = x.rule
         ORDER BY x.due_on, x.episode_id NULLS LAST, x.staff_id, r.ordinal;
END $$;
COMMENT ON FUNCTION ips.contact_alerts(date, bigint) IS
    'Unmet contact expectations as of a day: overdue (due on or before as_of) or due (within the rule''s warning horizon); '
    'per-specialist rules have staff_id and no episode.  days_overdue = as_of - due_on.';

-- The row of an alert (ips.episode_alerts returns it: its argument episode_id
-- cannot also name an output column).
CREATE TYPE ips.alert AS (episode_id bigint, staff_id bigint, rule text, due_on date, days_overdue int, severity text);
COMMENT ON TYPE ips.alert IS 'An alert: the columns of ips.contact_alerts.';

CREATE FUNCTION ips.episode_alerts(episode_id bigint, as_of date DEFAULT current_date)
RETURNS SETOF ips.alert
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(episode_alerts.as_of, 'as_of');
    PERFORM ips.require(episode_alerts.episode_id, 'episode_id');
    IF NOT EXISTS (SELECT 1 FROM ips.episode e WHERE e.episode_id = episode_alerts.episode_id) THEN
        PERFORM ips.not_found('episode', episode_alerts.episode_id);
    END IF;
    RETURN QUERY
        SELECT x.episode_id, x.staff_id, x.rule, x.due_on, (episode_alerts.as_of - x.due_on)::int, x.status
          FROM ips.rule_engine('alerts', episode_alerts.as_of, episode_alerts.as_of, NULL, episode_alerts.episode_id) x
          JOIN ips.rule r ON r.code = x.rule
         ORDER BY x.due_on, r.ordinal;
END $$;
COMMENT ON FUNCTION ips.episode_alerts(bigint, date) IS 'The alerts of one episode as of a day (same rows as ips.contact_alerts), for a client''s screen.';

CREATE FUNCTION ips.contact_alerts_labelled(as_of date DEFAULT current_date, team_id bigint DEFAULT NULL, lang text DEFAULT NULL)
RETURNS TABLE(episode_id bigint, client_ref text, staff_id bigint, specialist text, rule text, rule_label text,
              due_on date, days_overdue int, severity text, severity_label text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    l text := ips.language(contact_alerts_labelled.lang);
BEGIN
    RETURN QUERY
        SELECT a.episode_id, c.host_ref, a.staff_id, s.display_name, a.rule, ips.label(a.rule, l),
               a.due_on, a.days_overdue, a.severity, ips.label('severity:' || a.severity, l)
          FROM ips.contact_alerts(contact_alerts_labelled.as_of, contact_alerts_labelled.team_id) a
          LEFT JOIN ips.episode e ON e.episode_id = a.episode_id
          LEFT JOIN ips.client c ON c.client_id = e.client_id
          LEFT JOIN ips.staff s ON s.staff_id = a.staff_id
          JOIN ips.rule r ON r.code = a.rule
         ORDER BY s.display_name NULLS FIRST, a.severity DESC, a.due_on, a.episode_id NULLS FIRST, r.ordinal;
END $$;
COMMENT ON FUNCTION ips.contact_alerts_labelled(date, bigint, text) IS
    'ips.contact_alerts with the client''s host key, the specialist''s name and labels in fi, sv or en (default ips.language).';

CREATE VIEW ips.alerts_today AS
SELECT a.episode_id, a.staff_id, a.rule, ips.label(a.rule) AS rule_label, a.due_on, a.days_overdue, a.severity
  FROM ips.contact_alerts(ips.local_date(now())) a;
COMMENT ON VIEW ips.alerts_today IS 'The alerts of today (the region''s local date) for every team the caller may see, labelled in ips.language.';

CREATE FUNCTION ips.expectations(team_id bigint, period_start date, period_end date)
RETURNS TABLE(rule text, episode_id bigint, staff_id bigint, job_id bigint, due_on date, met_on date, status text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM ips.rule_check_period(expectations.period_start, expectations.period_end);
    PERFORM ips.rule_check_team(expectations.team_id);
    RETURN QUERY
        SELECT x.rule, x.episode_id, x.staff_id, x.job_id, x.due_on, x.met_on, x.status
          FROM ips.rule_engine('expectations', expectations.period_start, expectations.period_end,
                               expectations.team_id, NULL) x
          JOIN ips.rule r ON r.code = x.rule
         ORDER BY r.ordinal, x.due_on, x.episode_id, x.staff_id, x.job_id;
END $$;
COMMENT ON FUNCTION ips.expectations(bigint, date, date) IS
    'Every contact expectation of a team (NULL: all teams) due in the period, as known on period_end: '
    'status met_on_time, met_late, missed, or open (due on period_end, not yet met).';

CREATE FUNCTION ips.rule_compliance(team_id bigint, period_start date, period_end date)
RETURNS TABLE(rule text, due int, met_on_time int, met_late int, missed int)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.code,
           count(x.rule)::int,
           count(x.rule) FILTER (WHERE x.status = 'met_on_time')::int,
           count(x.rule) FILTER (WHERE x.status = 'met_late')::int,
           count(x.rule) FILTER (WHERE x.status = 'missed')::int
      FROM ips.rule r
      LEFT JOIN ips.expectations(rule_compliance.team_id, rule_compliance.period_start, rule_compliance.period_end) x
        ON x.rule = r.code
     GROUP BY r.code, r.ordinal
     ORDER BY r.ordinal
$$;
COMMENT ON FUNCTION ips.rule_compliance(bigint, date, date) IS
    'Per rule: expectations due in the period, met on time, met late, missed (due counts the open ones too), from ips.expectations.';

-- ===== extension/sql/40_fidelity.sql
-- Fidelity: the 25-item IPS fidelity scale (domain.md section 5), computed where the
-- records can tell, rated by reviewers elsewhere; reviews that freeze their result.
--
-- Reference data (items, anchors, bands) are rows a region can correct; pg_dump keeps
-- them, and a dumped row replaces the default of the same key when pg_restore loads it
-- (CREATE EXTENSION has inserted the defaults by then), as ips.setting does.

------------------------------------------------------------------------------
-- Reference data
------------------------------------------------------------------------------

CREATE TABLE ips.fidelity_item (
    item      text PRIMARY KEY CHECK (item ~ '^(S[1-3]|O[1-8]|V([1-9]|1[0-4]))$'),
    section   text NOT NULL CHECK (section IN ('staffing', 'organization', 'services')),
    ordinal   int  NOT NULL UNIQUE,
    computed  boolean NOT NULL DEFAULT false,
    direction text CHECK (direction IN ('at_most', 'at_least')),
    unit      text,
    name_fi   text NOT NULL,
    name_sv   text NOT NULL,
    name_en   text NOT NULL,
    CHECK (NOT computed OR item IN ('S1', 'S2', 'V4', 'V6', 'V8', 'V9', 'V10', 'V12', 'V13'))
);
COMMENT ON TABLE ips.fidelity_item IS
    'The 25 items of the IPS fidelity scale (2008 revision): section, names in fi/sv/en, and for the items computed from the records the direction of their anchors (at_most: lower is better).';
COMMENT ON COLUMN ips.fidelity_item.computed IS 'True for the items ips.fidelity() computes from the records (S1 S2 V4 V6 V8 V9 V10 V12 V13); the code for each is in ips.fidelity_computed().';
COMMENT ON COLUMN ips.fidelity_item.direction IS 'at_most: a score applies when the measure is at most its anchor threshold (S1, V4); at_least: at least the threshold.';

INSERT INTO ips.fidelity_item (item, section, ordinal, computed, direction, unit, name_fi, name_sv, name_en) VALUES
  ('S1', 'staffing', 1, true, 'at_most', 'clients per FTE', 'Asiakasmäärä', 'Antal klienter per arbetstränare', 'Caseload size'),
  ('S2', 'staffing', 2, true, 'at_least', '%', 'Työhönvalmennukseen käytetty työaika', 'Arbetstid för arbetsinriktat stöd', 'Employment services staff'),
  ('S3', 'staffing', 3, false, NULL, NULL, 'Työhönvalmentajat kaikkien vaiheiden osaajina', 'Arbetstränare som generalister', 'Vocational generalists'),
  ('O1', 'organization', 4, false, NULL, NULL, 'Integraatio hoitotiimiin nimeämisen kautta', 'Integration genom tillhörighet till vårdteamet', 'Integration of rehabilitation with mental health treatment through team assignment'),
  ('O2', 'organization', 5, false, NULL, NULL, 'Integraatio tiiviin yhteydenpidon kautta', 'Integration genom täta kontakter med vårdteamet', 'Integration of rehabilitation with mental health treatment through frequent team member contact'),
  ('O3', 'organization', 6, false, NULL, NULL, 'Yhteistyö TE-toimiston, Kelan ja eläkevakuuttajien kanssa', 'Samarbete med TE-byrån, FPA och pensionsförsäkrare', 'Collaboration between employment specialists and vocational rehabilitation counsellors'),
  ('O4', 'organization', 7, false, NULL, NULL, 'IPS-tiimi', 'IPS-enheten', 'Vocational unit'),
  ('O5', 'organization', 8, false, NULL, NULL, 'IPS-esihenkilön rooli', 'IPS-chefens roll', 'Role of employment supervisor'),
  ('O6', 'organization', 9, false, NULL, NULL, 'Ei poissulkukriteerejä', 'Inga uteslutningskriterier', 'Zero exclusion criteria'),
  ('O7', 'organization', 10, false, NULL, NULL, 'Organisaation keskittyminen avoimille työmarkkinoille', 'Organisationens fokus på den öppna arbetsmarknaden', 'Agency focus on competitive employment'),
  ('O8', 'organization', 11, false, NULL, NULL, 'Johdon tuki', 'Ledningens stöd', 'Executive team support for supported employment'),
  ('V1', 'services', 12, false, NULL, NULL, 'Etuusneuvonta', 'Förmånsrådgivning', 'Work incentives planning'),
  ('V2', 'services', 13, false, NULL, NULL, 'Sairaudesta kertominen', 'Att berätta om sin sjukdom', 'Disclosure'),
  ('V3', 'services', 14, false, NULL, NULL, 'Jatkuva työhön perustuva arviointi', 'Fortlöpande arbetsbaserad bedömning', 'Ongoing, work-based vocational assessment'),
  ('V4', 'services', 15, true, 'at_most', 'days', 'Nopea työnhaun aloitus', 'Snabb jobbsökning', 'Rapid job search for competitive job'),
  ('V5', 'services', 16, false, NULL, NULL, 'Yksilöllinen työnhaku', 'Individuell jobbsökning', 'Individualized job search'),
  ('V6', 'services', 17, true, 'at_least', 'contacts per specialist per week', 'Työnantajayhteistyö: tiheät kontaktit', 'Arbetsgivarkontakter: täta kontakter', 'Job development: frequent employer contact'),
  ('V7', 'services', 18, false, NULL, NULL, 'Työnantajayhteistyö: kontaktien laatu', 'Arbetsgivarkontakter: kontakternas kvalitet', 'Job development: quality of employer contact'),
  ('V8', 'services', 19, true, 'at_least', '%', 'Työtehtävien monipuolisuus', 'Variation av arbetsuppgifter', 'Diversity of job types'),
  ('V9', 'services', 20, true, 'at_least', '%', 'Työnantajien monipuolisuus', 'Variation av arbetsgivare', 'Diversity of employers'),
  ('V10', 'services', 21, true, 'at_least', '%', 'Avoimien työmarkkinoiden työpaikat', 'Arbete på den öppna arbetsmarknaden', 'Competitive jobs'),
  ('V11', 'services', 22, false, NULL, NULL, 'Yksilöllinen tuki työssä', 'Individuellt stöd i arbetet', 'Individualized follow-along supports'),
  ('V12', 'services', 23, true, 'at_least', '% of jobs', 'Ajallisesti rajaamaton tuki työssä', 'Tidsobegränsat stöd i arbetet', 'Time-unlimited follow-along supports'),
  ('V13', 'services', 24, true, 'at_least', '%', 'Palvelut toimiston ulkopuolella', 'Tjänster ute i samhället', 'Community-based services'),
  ('V14', 'services', 25, false, NULL, NULL, 'Aktiivinen sitouttaminen ja tavoittaminen', 'Aktivt engagemang och uppsökande arbete', 'Assertive engagement and outreach');

-- Anchors: for a computed item, score s applies when the measure is at most (or at least)
-- the threshold of its row; the best score that applies wins; score 1 has no threshold.
CREATE TABLE ips.fidelity_anchor (
    item      text NOT NULL REFERENCES ips.fidelity_item ON UPDATE CASCADE,
    score     int  NOT NULL CHECK (score BETWEEN 1 AND 5),
    threshold numeric,
    anchor    text NOT NULL,
    PRIMARY KEY (item, score)
);
COMMENT ON TABLE ips.fidelity_anchor IS
    'Anchors of the computed fidelity items: score s applies when the measure is at most (direction at_most) or at least (at_least) threshold; the best applicable score wins; a NULL threshold applies always. Editable by the region.';
COMMENT ON COLUMN ips.fidelity_anchor.threshold IS
    'Bound of the measure for this score (V12: score 3 = percent of jobs followed at least 4 months; V12 scores 5 and 4 follow the pattern, see docs/fidelity.md).';
COMMENT ON COLUMN ips.fidelity_anchor.anchor IS 'The anchor as the scale words it (numbers are language-neutral).';

INSERT INTO ips.fidelity_anchor (item, score, threshold, anchor) VALUES
  ('S1', 5, 20, '≤ 20'), ('S1', 4, 25, '21–25'), ('S1', 3, 30, '26–30'), ('S1', 2, 40, '31–40'), ('S1', 1, NULL, '≥ 41'),
  ('S2', 5, 96, '≥ 96 %'), ('S2', 4, 90, '90–95 %'), ('S2', 3, 75, '75–89 %'), ('S2', 2, 60, '60–74 %'), ('S2', 1, NULL, '< 60 %'),
  ('V4', 5, 30, '≤ 30 d'), ('V4', 4, 60, '31–60 d'), ('V4', 3, 150, '61–150 d'), ('V4', 2, 270, '151–270 d'), ('V4', 1, NULL, '≥ 271 d'),
  ('V6', 5, 6, '≥ 6'), ('V6', 4, 5, '5'), ('V6', 3, 4, '4'), ('V6', 2, 2, '2–3'), ('V6', 1, NULL, '< 2'),
  ('V8', 5, 85, '85–100 %'), ('V8', 4, 70, '70–84 %'), ('V8', 3, 60, '60–69 %'), ('V8', 2, 50, '50–59 %'), ('V8', 1, NULL, '< 50 %'),
  ('V9', 5, 85, '85–100 %'), ('V9', 4, 70, '70–84 %'), ('V9', 3, 60, '60–69 %'), ('V9', 2, 50, '50–59 %'), ('V9', 1, NULL, '< 50 %'),
  ('V10', 5, 95, '≥ 95 %'), ('V10', 4, 85, '85–94 %'), ('V10', 3, 75, '75–84 %'), ('V10', 2, 65, '65–74 %'), ('V10', 1, NULL, '< 65 %'),
  ('V12', 5, NULL, 'full pattern'), ('V12', 4, NULL, 'weekly month 1 + monthly ≥ 4 months'),
  ('V12', 3, 50, '≥ half get ≥ 4 months'), ('V12', 2, NULL, '< half get ≥ 4 months'), ('V12', 1, NULL, 'none after month 1'),
  ('V13', 5, 65, '≥ 65 %'), ('V13', 4, 50, '50–64 %'), ('V13', 3, 40, '40–49 %'), ('V13', 2, 30, '30–39 %'), ('V13', 1, NULL, '< 30 %');

CREATE TABLE ips.fidelity_band (
    band      text PRIMARY KEY,
    min_total int NOT NULL CHECK (min_total BETWEEN 25 AND 125),
    max_total int NOT NULL CHECK (max_total BETWEEN 25 AND 125),
    name_fi   text NOT NULL,
    name_sv   text NOT NULL,
    name_en   text NOT NULL,
    CHECK (min_total <= max_total)
);
COMMENT ON TABLE ips.fidelity_band IS 'Bands of the fidelity total (25–125), names in fi/sv/en; editable by the region.';

INSERT INTO ips.fidelity_band (band, min_total, max_total, name_fi, name_sv, name_en) VALUES
  ('exemplary', 115, 125, 'erinomainen', 'utmärkt', 'exemplary fidelity'),
  ('good',      100, 114, 'hyvä', 'god', 'good fidelity'),
  ('fair',       74,  99, 'kohtalainen', 'måttlig', 'fair fidelity'),
  ('not_ips',    25,  73, 'ei IPS-mallin mukainen', 'inte IPS', 'not supported employment');

-- The names of items and bands are labels too (ips.label('V4', 'fi')): kept in step.
CREATE FUNCTION ips.fidelity_label_sync() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    code text := to_jsonb(NEW) ->> CASE TG_ARGV[0] WHEN 'fidelity_item' THEN 'item' ELSE 'band' END;
BEGIN
    INSERT INTO ips.label_text AS t (code, lang, label, category)
    VALUES (code, 'fi', NEW.name_fi, TG_ARGV[0]), (code, 'sv', NEW.name_sv, TG_ARGV[0]), (code, 'en', NEW.name_en, TG_ARGV[0])
    ON CONFLICT ON CONSTRAINT label_text_pkey DO UPDATE SET label = EXCLUDED.label, category = EXCLUDED.category;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ips.fidelity_label_sync() IS 'Trigger: copies the fi/sv/en names of a fidelity item or band into ips.label_text.';

CREATE TRIGGER fidelity_item_label AFTER INSERT OR UPDATE ON ips.fidelity_item
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_label_sync('fidelity_item');
CREATE TRIGGER fidelity_band_label AFTER INSERT OR UPDATE ON ips.fidelity_band
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_label_sync('fidelity_band');
UPDATE ips.fidelity_item SET name_en = name_en;
UPDATE ips.fidelity_band SET name_en = name_en;

-- pg_restore: a dumped row replaces the default row of the same key.
CREATE FUNCTION ips.fidelity_reference_restore() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'fidelity_item' THEN
        UPDATE ips.fidelity_item x
           SET section = NEW.section, ordinal = NEW.ordinal, computed = NEW.computed, direction = NEW.direction,
               unit = NEW.unit, name_fi = NEW.name_fi, name_sv = NEW.name_sv, name_en = NEW.name_en
         WHERE x.item = NEW.item;
    ELSIF TG_TABLE_NAME = 'fidelity_anchor' THEN
        UPDATE ips.fidelity_anchor x SET threshold = NEW.threshold, anchor = NEW.anchor
         WHERE x.item = NEW.item AND x.score = NEW.score;
    ELSE
        UPDATE ips.fidelity_band x
           SET min_total = NEW.min_total, max_total = NEW.max_total,
               name_fi = NEW.name_fi, name_sv = NEW.name_sv, name_en = NEW.name_en
         WHERE x.band = NEW.band;
    END IF;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.fidelity_reference_restore() IS
    'Trigger: an inserted fidelity item, anchor or band whose key exists already replaces it (pg_restore over the defaults).';
CREATE TRIGGER fidelity_item_restore BEFORE INSERT ON ips.fidelity_item
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_reference_restore();
CREATE TRIGGER fidelity_anchor_restore BEFORE INSERT ON ips.fidelity_anchor
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_reference_restore();
CREATE TRIGGER fidelity_band_restore BEFORE INSERT ON ips.fidelity_band
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_reference_restore();

-- Settings this part reads (defaults; the region may change them).
INSERT INTO ips.setting (name, value, description) VALUES
  ('competitive_job_kinds', 'competitive,self_employed',
   'Job kinds (comma-separated) that count as competitive employment (fidelity V10, V12; outcomes).');

-- Words of the printed report, and the one-line evidence templates (format() with %s).
INSERT INTO ips.label_text (category, code, lang, label)
SELECT 'fidelity_report', v.code, l.lang, l.label
  FROM (VALUES
    ('fidelity_title', 'IPS-menetelmäuskollisuus', 'IPS-metodtrohet', 'IPS fidelity'),
    ('fidelity_period', 'kausi', 'period', 'period'),
    ('fidelity_source_computed', 'laskettu', 'beräknad', 'computed'),
    ('fidelity_source_rated', 'arvioitu', 'bedömd', 'rated'),
    ('fidelity_source_missing', 'puuttuu', 'saknas', 'missing'),
    ('fidelity_total', 'Yhteensä', 'Totalt', 'Total'),
    ('fidelity_items_scored', 'pisteytettyjä osioita', 'poängsatta punkter', 'items scored'),
    ('fidelity_band', 'Taso', 'Nivå', 'Band'),
    ('fidelity_band_none', 'ei vielä (kaikki 25 osiota pisteyttämättä)', 'ännu inte (alla 25 punkter inte poängsatta)', 'not yet (not all 25 items scored)'),
    ('fidelity_live', 'laskettu nyt kirjauksista', 'beräknad nu ur registreringarna', 'computed now from the records'),
    ('fidelity_frozen', 'suljettu arviointi %s, jäädytetty %s', 'avslutad bedömning %s, fryst %s', 'closed review %s, frozen %s'),
    ('fidelity_open_review', 'avoin arviointi %s', 'öppen bedömning %s', 'open review %s'),
    ('fidelity_no_data', 'ei mitattavissa kirjauksista', 'kan inte mätas ur registreringarna', 'not measurable from the records'),
    ('fidelity_note', 'huomio', 'anmärkning', 'note'),
    ('fidelity_ev_S1', 'aktiivisia asiakkaita keskimäärin %s / %s htv työhönvalmentajia', 'i medeltal %s aktiva klienter / %s årsverken arbetstränare', 'mean %s active clients / %s specialist FTE'),
    ('fidelity_ev_S2', 'työhönvalmennuksen osuus %s %% (%s htv)', 'andel arbetsinriktat stöd %s %% (%s årsverken)', 'employment services share %s %% (%s FTE)'),
    ('fidelity_ev_V4', '%s aloittanutta, keskimäärin %s päivää ensimmäiseen työnantajatapaamiseen (%s ilman tapaamista)', '%s som började, i medeltal %s dagar till första arbetsgivarmötet (%s utan möte)', '%s entrants, mean %s days to first face-to-face employer contact (%s without one)'),
    ('fidelity_ev_V6', '%s työnantajatapaamista / %s työhönvalmentajaa / %s viikkoa', '%s arbetsgivarmöten / %s arbetstränare / %s veckor', '%s face-to-face employer contacts / %s specialists / %s weeks'),
    ('fidelity_ev_V8', '%s eri ammattia / %s työpaikkaa', '%s olika yrken / %s jobb', '%s distinct job types / %s jobs'),
    ('fidelity_ev_V9', '%s eri työnantajaa / %s työpaikkaa', '%s olika arbetsgivare / %s jobb', '%s distinct employers / %s jobs'),
    ('fidelity_ev_V10', '%s avoimien työmarkkinoiden työpaikkaa / %s työpaikkaa', '%s jobb på öppna marknaden / %s jobb', '%s competitive jobs / %s jobs'),
    ('fidelity_ev_V12', '%s työpaikkaa, täysi tukimalli %s, vähintään 4 kk tuki %s / %s', '%s jobb, fullt stödmönster %s, stöd minst 4 mån %s / %s', '%s jobs, full pattern %s, followed ≥ 4 months %s / %s'),
    ('fidelity_ev_V13', '%s min toimiston ulkopuolella / %s min työaikaa', '%s min ute i samhället / %s min arbetstid', '%s min in the community / %s scheduled min'),
    ('fidelity_ev_O2', 'hoitotiimin kokouksissa %s / %s viikkoa (työhönvalmentajaa kohden keskimäärin)', 'vårdteamets möten %s / %s veckor (medeltal per arbetstränare)', 'care team meetings attended %s / %s weeks (mean per specialist)'),
    ('fidelity_ev_O6', '%s lähetettä, %s päättyi ennen aloitusta', '%s remisser, %s avslutade före start', '%s referrals, %s closed before engagement'),
    ('fidelity_ev_V1', '%s / %s työn aloitusta etuusneuvonnan jälkeen', '%s / %s jobbstarter efter förmånsrådgivning', '%s / %s job starts after benefits counselling'),
    ('fidelity_ev_V14', '%s yhteyden katkeamista, %s riittävän tavoittamisen jälkeen', '%s avslut utan kontakt, %s efter tillräckligt uppsökande', '%s disengaged closures, %s after enough outreach')
  ) AS v(code, fi, sv, en),
  LATERAL (VALUES ('fi', v.fi), ('sv', v.sv), ('en', v.en)) AS l(lang, label);

------------------------------------------------------------------------------
-- Reviews
------------------------------------------------------------------------------

CREATE TABLE ips.fidelity_review (
    review_id    bigserial PRIMARY KEY,
    team_id      bigint NOT NULL REFERENCES ips.team,
    period_start date NOT NULL,
    period_end   date NOT NULL,
    reviewed_on  date NOT NULL,
    opened_by    name NOT NULL DEFAULT ips.caller(),
    opened_at    timestamptz NOT NULL DEFAULT now(),
    closed_by    name,
    closed_at    timestamptz,
    note         text,
    CHECK (period_start <= period_end),
    CHECK ((closed_at IS NULL) = (closed_by IS NULL)),
    UNIQUE (team_id, period_start, period_end)
);
COMMENT ON TABLE ips.fidelity_review IS 'A fidelity review of a team for a period (one per team and period); closed reviews are final and keep a frozen result.';

CREATE TABLE ips.fidelity_reviewer (
    review_id    bigint NOT NULL REFERENCES ips.fidelity_review,
    reviewer     text NOT NULL CHECK (btrim(reviewer) <> ''),
    organisation text,
    PRIMARY KEY (review_id, reviewer)
);
COMMENT ON TABLE ips.fidelity_reviewer IS 'The reviewers of a fidelity review (THL, peer regions).';

CREATE TABLE ips.fidelity_rating (
    review_id bigint NOT NULL REFERENCES ips.fidelity_review,
    item      text NOT NULL REFERENCES ips.fidelity_item ON UPDATE CASCADE,
    score     int NOT NULL CHECK (score BETWEEN 1 AND 5),
    note      text,
    rated_by  name NOT NULL DEFAULT ips.caller(),
    rated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (review_id, item)
);
COMMENT ON TABLE ips.fidelity_rating IS 'Reviewers'' scores of the items; for a computed item the rating is used only when the records cannot measure it.';

CREATE TABLE ips.fidelity_action (
    action_id   bigserial PRIMARY KEY,
    review_id   bigint NOT NULL REFERENCES ips.fidelity_review,
    item        text REFERENCES ips.fidelity_item ON UPDATE CASCADE,
    action      text NOT NULL CHECK (btrim(action) <> ''),
    responsible text,
    due_on      date,
    done_on     date,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ips.fidelity_action IS 'The action plan of a review: what the team will change, for which item, by whom and when.';

CREATE TABLE ips.fidelity_frozen (
    review_id bigint NOT NULL REFERENCES ips.fidelity_review,
    item      text NOT NULL,
    score     int,
    source    text NOT NULL,
    measure   numeric,
    evidence  jsonb,
    PRIMARY KEY (review_id, item)
);
COMMENT ON TABLE ips.fidelity_frozen IS 'The 25 rows of a review''s result as they stood when the review was closed.';

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

-- Check the arguments of the fidelity functions; raise a clear error otherwise.
CREATE FUNCTION ips.fidelity_check_period(team_id bigint, period_start date, period_end date) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(team_id, 'team_id');
    PERFORM ips.require(period_start, 'period_start');
    PERFORM ips.require(period_end, 'period_end');
    IF NOT EXISTS (SELECT 1 FROM ips.team t WHERE t.team_id = fidelity_check_period.team_id) THEN
        PERFORM ips.not_found('team', team_id);
    END IF;
    IF period_end < period_start THEN
        RAISE EXCEPTION 'period end % is before its start %', to_char(period_end, 'YYYY-MM-DD'), to_char(period_start, 'YYYY-MM-DD')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the first and the last day of the period.';
    END IF;
    IF period_end > ips.local_date(now()) THEN
        RAISE EXCEPTION 'period end % is in the future', period_end
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Fidelity is measured over days that have passed: end the period today or earlier.';
    END IF;
END $$;
COMMENT ON FUNCTION ips.fidelity_check_period(bigint, date, date) IS
    'Internal: raises 22004/P0002/22023 unless the team exists and the period is a non-empty range of past days.';

-- The score the anchor rows give a measure (NULL measure: NULL).
CREATE FUNCTION ips.fidelity_anchor_score(item text, measure numeric) RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT max(a.score)
      FROM ips.fidelity_anchor a
      JOIN ips.fidelity_item i ON i.item = a.item
     WHERE a.item = fidelity_anchor_score.item AND fidelity_anchor_score.measure IS NOT NULL
       AND (a.threshold IS NULL
            OR (i.direction = 'at_most' AND fidelity_anchor_score.measure <= a.threshold)
            OR (i.direction = 'at_least' AND fidelity_anchor_score.measure >= a.threshold))
$$;
COMMENT ON FUNCTION ips.fidelity_anchor_score(text, numeric) IS
    'The best score whose anchor row (ips.fidelity_anchor) the measure meets; NULL for a NULL measure.';

-- Whether a job kind counts as competitive employment (setting competitive_job_kinds).
CREATE FUNCTION ips.is_competitive(kind text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT kind = ANY (string_to_array(replace(coalesce(ips.setting_value('competitive_job_kinds'), 'competitive'), ' ', ''), ','))
$$;
COMMENT ON FUNCTION ips.is_competitive(text) IS 'True when a job kind counts as competitive employment (setting competitive_job_kinds).';

-- Days in which each episode of a team was in each state: [from_day, to_day), to_day NULL while current.
CREATE FUNCTION ips.episode_state_spans(team_id bigint)
RETURNS TABLE(episode_id bigint, state text, from_day date, to_day date)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT h.episode_id, h.to_state, ips.local_date(h.at),
           ips.local_date(lead(h.at) OVER (PARTITION BY h.episode_id ORDER BY h.at, h.history_id))
      FROM ips.episode_state_history h
      JOIN ips.episode e ON e.episode_id = h.episode_id
     WHERE e.team_id = episode_state_spans.team_id
$$;
COMMENT ON FUNCTION ips.episode_state_spans(bigint) IS
    'Internal: from the state history, the days each episode of a team spent in each state (to_day exclusive, NULL while current).';

-- Round for display and evidence.
CREATE FUNCTION ips.fidelity_round(x numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT round(x, 2)
$$;
COMMENT ON FUNCTION ips.fidelity_round(numeric) IS 'Internal: measures are kept to two decimals.';

------------------------------------------------------------------------------
-- The computed items and the record evidence of rated items
------------------------------------------------------------------------------

-- One row per team, computed item (S1 S2 V4 V6 V8 V9 V10 V12 V13) and rated item with evidence
-- from the records (O2 O6 V1 V14, score always NULL), for a set of teams at once: every item is
-- computed with set-based SQL over the teams' facts, grouped by team, and the rules engine runs
-- once (for one team: that team's facts; for several: the whole selection, its rows mapped back
-- to each team as a call for the team alone would have returned them).  measure NULL: not
-- measurable.  ips.fidelity_computed(team_id, ...) is this function for one team.
-- upgrade 1.1: begin (these definitions are also the 1.0 -> 1.1 upgrade; see the Makefile)
CREATE OR REPLACE FUNCTION ips.fidelity_computed_teams(team_ids bigint[], period_start date, period_end date)
RETURNS TABLE(team_id bigint, item text, score int, measure numeric, evidence jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $$
DECLARE
    ps date := period_start;
    pe date := period_end;
    ndays int := period_end - period_start + 1;
    weeks numeric := (period_end - period_start + 1) / 7.0;
    -- settings read once per call (ips.local_date, ips.is_competitive ... pin their search_path,
    -- so they are not inlined: each call per row was a function call with a look-up of ips.setting)
    tz text := coalesce(ips.setting_value('time_zone'), 'Europe/Helsinki');
    kinds_setting text := ips.setting_value('competitive_job_kinds');
    kinds text[] := string_to_array(replace(coalesce(ips.setting_value('competitive_job_kinds'), 'competitive'), ' ', ''), ',');
    min_attempts text := ips.setting_value('disengaged_min_outreach_attempts');
    min_attempt_days text := ips.setting_value('disengaged_min_outreach_days');
    outreach_window text := ips.setting_value('disengaged_outreach_window_days');
    ids bigint[];
    t bigint;
    lo timestamptz;         -- the first instant of the period (local midnight of ps)
    hi timestamptz;         -- the first instant after it (local midnight of pe + 1)
    lo1 timestamptz;        -- local midnight of ps + 1
    eng_from date;          -- the first day the rules engine is asked for (the least v12_from)
BEGIN
    PERFORM ips.require(team_ids, 'team_ids');
    SELECT coalesce(array_agg(DISTINCT u.id ORDER BY u.id), '{}') INTO ids FROM unnest(team_ids) AS u(id);
    IF cardinality(ids) = 0 THEN
        PERFORM ips.require(ps, 'period_start');
        PERFORM ips.require(pe, 'period_end');
        RETURN;
    END IF;
    -- the checks of ips.fidelity_check_period: all of them with the first team, then that every
    -- other team is there (the first one missing raises as ips.fidelity_check_period does)
    PERFORM ips.fidelity_check_period(ids[1], ps, pe);
    SELECT u.id INTO t FROM unnest(ids) AS u(id)
     WHERE u.id IS NULL OR NOT EXISTS (SELECT 1 FROM ips.team x WHERE x.team_id = u.id)
     ORDER BY u.id LIMIT 1;
    IF FOUND THEN
        PERFORM ips.fidelity_check_period(t, ps, pe);
    END IF;
    -- Instants are filtered as ranges on the timestamptz columns (at >= lo AND at < hi, the same
    -- rows as ips.local_date(at) BETWEEN ps AND pe), so that the (staff_id, at) and
    -- (episode_id, at) indexes serve them and ips.local_date is not called per row.
    lo := ips.local_midnight(ps);
    hi := ips.local_midnight(pe + 1);
    lo1 := ips.local_midnight(ps + 1);
    -- V12 asks the engine from v12_from, the earliest start of the team's competitive jobs held
    -- in the period (or ps, if earlier); for several teams it is asked once from the least of them.
    SELECT least(ps, min(j.starts_on)) INTO eng_from
      FROM ips.job j JOIN ips.episode ep ON ep.episode_id = j.episode_id
     WHERE ep.team_id = ANY (ids) AND j.starts_on <= pe AND (j.ends_on IS NULL OR j.ends_on >= ps)
       AND j.kind = ANY (kinds);
    RETURN QUERY
    WITH tm AS (
        SELECT u.team_id FROM unnest(ids) AS u(team_id)
    ), sp AS MATERIALIZED (     -- the specialists ("today's FTE, share and hours")
        SELECT s.team_id, s.staff_id, s.display_name, s.fte, s.employment_share, s.weekly_hours
          FROM ips.staff s WHERE s.team_id = ANY (ids) AND s.role = 'specialist'
    ), staffing AS (
        SELECT sp.team_id, sum(sp.fte) AS fte, sum(sp.fte * sp.employment_share) AS share_fte,
               coalesce(jsonb_agg(jsonb_build_object('staff_id', sp.staff_id, 'name', sp.display_name, 'fte', sp.fte,
                                                     'employment_share', sp.employment_share) ORDER BY sp.staff_id), '[]') AS s2_list
          FROM sp GROUP BY sp.team_id
    ),
    -- S1: client-days of active episodes (entry_on <= d < closed_on) / days / specialist FTE.
    s1 AS (
        SELECT a.team_id, sum(a.days) AS client_days,
               jsonb_agg(jsonb_build_object('episode_id', a.episode_id, 'active_days', a.days) ORDER BY a.episode_id)
                   FILTER (WHERE a.days > 0) AS episodes
          FROM (SELECT e.team_id, e.episode_id,
                       least(coalesce(e.closed_on - 1, pe), pe) - greatest(e.entry_on, ps) + 1 AS days
                  FROM ips.episode e
                 WHERE e.team_id = ANY (ids) AND e.entry_on IS NOT NULL AND e.entry_on <= pe
                   AND (e.closed_on IS NULL OR e.closed_on > ps)) a
         GROUP BY a.team_id
    ), s1_staff AS (
        SELECT sp.team_id,
               jsonb_agg(jsonb_build_object('staff_id', sp.staff_id, 'name', sp.display_name, 'fte', sp.fte,
                                            'mean_active_clients', round(coalesce(c.days, 0) / ndays::numeric, 2),
                                            'clients_per_fte', round(coalesce(c.days, 0) / ndays::numeric / sp.fte, 2))
                         ORDER BY sp.staff_id) AS per_specialist
          FROM sp
          LEFT JOIN (SELECT sa.staff_id,
                            sum(greatest(0, least(coalesce(e.closed_on - 1, pe), pe, coalesce(sa.to_on, pe))
                                            - greatest(e.entry_on, ps, sa.from_on) + 1)) AS days
                       FROM ips.specialist_assignment sa JOIN ips.episode e ON e.episode_id = sa.episode_id
                      WHERE sa.staff_id IN (SELECT sp.staff_id FROM sp) AND e.entry_on IS NOT NULL
                      GROUP BY sa.staff_id) c ON c.staff_id = sp.staff_id
         GROUP BY sp.team_id
    ),
    -- V4: episodes entering in the period; days from entry to the first face-to-face employer
    -- contact about a competitive job on the client's behalf (by specialist or client), as known
    -- at the period end; an episode without one counts the days to its closure or the period end.
    v4 AS (
        SELECT v.team_id, count(*) AS n, avg(v.days) AS mean_days, count(*) FILTER (WHERE v.first_day IS NULL) AS without,
               jsonb_agg(jsonb_build_object('episode_id', v.episode_id, 'entry_on', v.entry_on,
                                            'first_employer_contact_on', v.first_day, 'days', v.days)
                         ORDER BY v.entry_on, v.episode_id) AS episodes
          FROM (SELECT e.team_id, e.episode_id, e.entry_on, f.first_day,
                       CASE WHEN f.first_day IS NOT NULL THEN greatest(f.first_day - e.entry_on, 0)
                            ELSE least(coalesce(e.closed_on, pe), pe) - e.entry_on END AS days
                  FROM ips.episode e
                  LEFT JOIN LATERAL (SELECT (min(c.at) AT TIME ZONE tz)::date AS first_day FROM ips.employer_contact c
                                      WHERE c.episode_id = e.episode_id AND c.in_person AND c.competitive
                                        AND c.at < hi) f ON true
                 WHERE e.team_id = ANY (ids) AND e.entry_on BETWEEN ps AND pe) v
         GROUP BY v.team_id
    ),
    -- V6: face-to-face employer contacts by the team's specialists / (specialists x weeks);
    -- a caseload with 1 or 2 job seekers and >= 2 contacts per job seeker per week counts as
    -- meeting the score-5 threshold.  Job seekers: the team's episodes in job_search during the
    -- period (from the state history as ips.episode_state_spans reads it, with its day conditions
    -- from_day <= pe, to_day > ps as instant ranges: at < hi, next at >= lo1) assigned to them.
    seeking AS MATERIALIZED (
        SELECT DISTINCT sp.team_id, sp.episode_id
          FROM (SELECT e.team_id, h.episode_id, h.to_state, h.at,
                       lead(h.at) OVER (PARTITION BY h.episode_id ORDER BY h.at, h.history_id) AS next_at
                  FROM ips.episode_state_history h
                  JOIN ips.episode e ON e.episode_id = h.episode_id
                 WHERE e.team_id = ANY (ids)) sp
         WHERE sp.to_state = 'job_search' AND sp.at < hi AND (sp.next_at IS NULL OR sp.next_at >= lo1)
    ), q AS (
        SELECT sp.team_id, sp.staff_id, sp.display_name, coalesce(c.n, 0) AS contacts, coalesce(k.n, 0) AS seekers
          FROM sp
          LEFT JOIN (SELECT c.staff_id, count(*) AS n FROM ips.employer_contact c
                      WHERE c.staff_id IN (SELECT sp.staff_id FROM sp) AND c.in_person AND NOT c.by_client
                        AND c.at >= lo AND c.at < hi
                      GROUP BY c.staff_id) c ON c.staff_id = sp.staff_id
          LEFT JOIN (SELECT sa.staff_id, x.team_id, count(DISTINCT sa.episode_id) AS n
                       FROM ips.specialist_assignment sa JOIN seeking x ON x.episode_id = sa.episode_id
                      WHERE sa.from_on <= pe AND (sa.to_on IS NULL OR sa.to_on >= ps)
                      GROUP BY sa.staff_id, x.team_id) k ON k.staff_id = sp.staff_id AND k.team_id = sp.team_id
    ), v6 AS (
        SELECT p.team_id, count(*) AS n, sum(p.contacts) AS contacts, avg(p.effective) AS mean_effective,
               jsonb_agg(jsonb_build_object('staff_id', p.staff_id, 'name', p.display_name,
                                            'contacts', p.contacts, 'per_week', round(p.rate, 2),
                                            'job_seekers', p.seekers, 'small_caseload_rule', p.small,
                                            'counted_per_week', round(p.effective, 2))
                         ORDER BY p.staff_id) AS per_specialist
          FROM (SELECT q.*, q.contacts / weeks AS rate,
                       q.seekers BETWEEN 1 AND 2 AND q.contacts / weeks / q.seekers >= 2 AS small,
                       CASE WHEN q.seekers BETWEEN 1 AND 2 AND q.contacts / weeks / q.seekers >= 2
                            THEN greatest(q.contacts / weeks,
                                          coalesce((SELECT a.threshold FROM ips.fidelity_anchor a
                                                     WHERE a.item = 'V6' AND a.score = 5), 0))
                            ELSE q.contacts / weeks END AS effective
                  FROM q) p
         GROUP BY p.team_id
    ),
    -- V8, V9, V10: over the jobs held at any time in the period.
    held AS MATERIALIZED (
        SELECT e.team_id, j.job_id, j.episode_id, j.starts_on, j.ends_on, j.kind, j.occupation, j.employer_id
          FROM ips.job j JOIN ips.episode e ON e.episode_id = j.episode_id
         WHERE e.team_id = ANY (ids) AND j.starts_on <= pe AND (j.ends_on IS NULL OR j.ends_on >= ps)
    ), v8 AS (
        SELECT j.team_id, count(*) AS jobs,
               count(*) FILTER (WHERE j.occupation IS NOT NULL) AS classified,
               count(DISTINCT j.occupation) AS types,
               count(DISTINCT j.employer_id) AS employers,
               count(*) FILTER (WHERE j.kind = ANY (kinds)) AS competitive,
               jsonb_agg(jsonb_build_object('job_id', j.job_id, 'episode_id', j.episode_id, 'starts_on', j.starts_on,
                                            'ends_on', j.ends_on, 'kind', j.kind, 'occupation', j.occupation,
                                            'employer_id', j.employer_id) ORDER BY j.starts_on, j.job_id) AS list
          FROM held j GROUP BY j.team_id
    ),
    -- V12: the follow-along pattern per competitive job held in the period, read from the rules
    -- engine (see the README): each team's expectations are those due from its v12_from to pe.
    jobs AS MATERIALIZED (
        SELECT h.team_id, h.job_id, h.episode_id, h.starts_on, h.ends_on FROM held h WHERE h.kind = ANY (kinds)
    ), v12_from AS (
        SELECT tm.team_id, least(ps, j.first_start) AS from_on
          FROM tm LEFT JOIN (SELECT j.team_id, min(j.starts_on) AS first_start FROM jobs j GROUP BY j.team_id) j
               ON j.team_id = tm.team_id
    ), owner AS MATERIALIZED (  -- the selected teams' episodes the engine reads for their team
        SELECT e.episode_id, e.team_id, e.closed_on IS NULL OR e.closed_on >= f.from_on AS counted
          FROM ips.episode e JOIN v12_from f ON f.team_id = e.team_id
    ), shown AS (   -- the rules whose compliance the evidence shows (V4, V6, V12), V12's job rules among them
        SELECT r.code FROM ips.rule r
         WHERE r.code IN ('rapid_job_search', 'specialist_employer_contacts', 'pre_start_contact', 'post_start_contact',
                          'first_month_weekly', 'follow_along_monthly', 'job_loss_contact')
    ), eng AS MATERIALIZED (
        -- only their rows are kept (no_contact alone is half of the rows)
        SELECT g.episode_id, g.staff_id, g.rule, g.job_id, g.due_on, g.met_on, g.status
          FROM ips.rule_engine('expectations', eng_from, pe, CASE WHEN cardinality(ids) = 1 THEN ids[1] END, NULL) g
         WHERE g.rule IN (SELECT shown.code FROM shown)
    ), compliance AS (
        -- a team's rows are those of its episodes (referred by pe, not closed before its
        -- v12_from) and of its specialists, due from its v12_from (<= ps): what a call for the
        -- team alone returns
        SELECT r.team_id, jsonb_object_agg(r.code, jsonb_build_object('due', r.due, 'met_on_time', r.met_on_time,
                                                                      'met_late', r.met_late, 'missed', r.missed)) AS compliance
          FROM (SELECT tm.team_id, r.code,
                       coalesce(c.due, 0)::int AS due, coalesce(c.met_on_time, 0)::int AS met_on_time,
                       coalesce(c.met_late, 0)::int AS met_late, coalesce(c.missed, 0)::int AS missed
                  FROM tm CROSS JOIN shown r
                  LEFT JOIN (SELECT coalesce(e.team_id, s.team_id) AS team_id, g.rule, count(*) AS due,
                                    count(*) FILTER (WHERE g.status = 'met_on_time') AS met_on_time,
                                    count(*) FILTER (WHERE g.status = 'met_late') AS met_late,
                                    count(*) FILTER (WHERE g.status = 'missed') AS missed
                               FROM eng g
                               LEFT JOIN owner e ON e.episode_id = g.episode_id
                               LEFT JOIN sp s ON g.episode_id IS NULL AND s.staff_id = g.staff_id
                              WHERE g.due_on >= ps AND (g.episode_id IS NULL OR e.counted)
                                AND coalesce(e.team_id, s.team_id) IS NOT NULL
                              GROUP BY 1, 2) c ON c.team_id = tm.team_id AND c.rule = r.code) r
         GROUP BY r.team_id
    ), ex AS (
        SELECT e.rule, e.job_id, e.met_on, e.status = 'met_on_time' AS kept, e.status,
               row_number() OVER (PARTITION BY e.job_id, e.rule ORDER BY e.due_on) AS block
          FROM eng e
          JOIN jobs j ON j.job_id = e.job_id
          JOIN v12_from f ON f.team_id = j.team_id
          JOIN owner ep ON ep.episode_id = e.episode_id
         WHERE e.rule IN ('pre_start_contact', 'post_start_contact', 'first_month_weekly',
                          'follow_along_monthly', 'job_loss_contact')
           AND e.due_on >= f.from_on AND ep.counted
    ), f AS (
        SELECT j.team_id, j.job_id, j.episode_id, j.starts_on, j.ends_on,
               coalesce(min(ex.status) FILTER (WHERE ex.rule = 'pre_start_contact'), 'not_due') AS pre_start,
               coalesce(min(ex.status) FILTER (WHERE ex.rule = 'post_start_contact'), 'not_due') AS post_start,
               count(ex.rule) FILTER (WHERE ex.rule = 'first_month_weekly')::int AS weeks_due,
               count(ex.rule) FILTER (WHERE ex.rule = 'first_month_weekly' AND ex.kept)::int AS weeks_kept,
               count(ex.rule) FILTER (WHERE ex.rule = 'follow_along_monthly')::int AS months_due,
               count(ex.rule) FILTER (WHERE ex.rule = 'follow_along_monthly' AND ex.kept)::int AS months_kept,
               coalesce(array_agg(ex.block ORDER BY ex.block)
                        FILTER (WHERE ex.rule = 'follow_along_monthly' AND NOT ex.kept), '{}') AS months_not_kept,
               coalesce(min(ex.status) FILTER (WHERE ex.rule = 'job_loss_contact'), 'not_due') AS job_loss,
               count(ex.rule) FILTER (WHERE ex.rule = 'follow_along_monthly' AND ex.block = 5) > 0 AS followed_4_months_due,
               count(ex.rule) FILTER (WHERE ex.rule = 'follow_along_monthly' AND ex.block BETWEEN 2 AND 5 AND ex.kept) = 4
                   AS followed_4_months,
               count(ex.rule) FILTER (WHERE ex.rule = 'follow_along_monthly' AND ex.block >= 2 AND ex.met_on IS NOT NULL) > 0
                   AS contact_after_month_1,
               count(ex.rule) FILTER (WHERE NOT ex.kept) = 0 AS full_pattern,
               count(ex.rule) FILTER (WHERE NOT ex.kept AND (ex.rule = 'first_month_weekly'
                                      OR (ex.rule = 'follow_along_monthly' AND ex.block <= 5))) > 0 AS broken_short
          FROM jobs j LEFT JOIN ex ON ex.job_id = j.job_id
         GROUP BY j.team_id, j.job_id, j.episode_id, j.starts_on, j.ends_on
    ), v12 AS (
        SELECT f.team_id,
               count(*) AS jobs,
               count(*) FILTER (WHERE f.full_pattern) AS full_jobs,
               count(*) FILTER (WHERE f.broken_short) AS broken_short,
               count(*) FILTER (WHERE f.followed_4_months_due) AS due4,
               count(*) FILTER (WHERE f.followed_4_months) AS got4,
               count(*) FILTER (WHERE f.contact_after_month_1) AS after1,
               jsonb_agg(to_jsonb(f) - 'broken_short' - 'team_id' ORDER BY f.starts_on, f.job_id) AS list
          FROM f GROUP BY f.team_id
    ),
    -- V13: community minutes / scheduled minutes (weekly hours x 60 x weeks), %.
    v13 AS (
        SELECT p.team_id, sum(p.minutes) AS minutes, sum(p.scheduled) AS scheduled, sum(p.no_minutes) AS no_minutes,
               jsonb_agg(jsonb_build_object('staff_id', p.staff_id, 'name', p.display_name,
                                            'community_minutes', p.minutes, 'scheduled_minutes', round(p.scheduled, 2),
                                            'contacts_without_minutes', p.no_minutes,
                                            'community_pct', round(p.minutes * 100.0 / p.scheduled, 2))
                         ORDER BY p.staff_id) AS per_specialist
          FROM (SELECT sp.team_id, sp.staff_id, sp.display_name, sp.weekly_hours * 60 * weeks AS scheduled,
                       coalesce(c.minutes, 0) AS minutes, coalesce(c.no_minutes, 0) AS no_minutes
                  FROM sp
                  LEFT JOIN (SELECT c.staff_id, coalesce(sum(c.minutes) FILTER (WHERE c.setting = 'community'), 0) AS minutes,
                                    count(*) FILTER (WHERE c.minutes IS NULL) AS no_minutes
                               FROM ips.contact c
                              WHERE c.staff_id IN (SELECT sp.staff_id FROM sp) AND c.at >= lo AND c.at < hi
                              GROUP BY c.staff_id) c ON c.staff_id = sp.staff_id) p
         GROUP BY p.team_id
    ),
    -- Evidence for rated items.  O2: care-team meeting attendance, 7-day blocks from the start.
    o2 AS (
        SELECT p.team_id, avg(p.blocks) AS mean_blocks,
               jsonb_agg(jsonb_build_object('staff_id', p.staff_id, 'name', p.display_name,
                                            'meetings', p.meetings, 'weeks_attended', p.blocks) ORDER BY p.staff_id) AS per_specialist
          FROM (SELECT sp.team_id, sp.staff_id, sp.display_name, coalesce(m.meetings, 0) AS meetings,
                       coalesce(m.blocks, 0) AS blocks
                  FROM sp
                  LEFT JOIN (SELECT m.staff_id, count(*) AS meetings, count(DISTINCT (m.met_on - ps) / 7) AS blocks
                               FROM ips.team_meeting m
                              WHERE m.staff_id IN (SELECT sp.staff_id FROM sp) AND m.met_on BETWEEN ps AND pe
                              GROUP BY m.staff_id) m ON m.staff_id = sp.staff_id) p
         GROUP BY p.team_id
    ),
    -- O6: referrals received in the period and those closed without ever engaging.
    referred AS MATERIALIZED (
        SELECT e.team_id, e.episode_id, e.referred_on, e.closed_on, e.close_reason,
               e.closed_on IS NOT NULL AND e.entry_on IS NULL AS closed_before
          FROM ips.episode e WHERE e.team_id = ANY (ids) AND e.referred_on BETWEEN ps AND pe
    ), o6 AS (
        SELECT e.team_id, count(*) AS referrals, count(*) FILTER (WHERE e.closed_before) AS closed_before,
               jsonb_agg(jsonb_build_object('episode_id', e.episode_id, 'referred_on', e.referred_on,
                                            'closed_on', e.closed_on, 'close_reason', e.close_reason) ORDER BY e.episode_id)
                   FILTER (WHERE e.closed_before) AS list
          FROM referred e GROUP BY e.team_id
    ), o6_reason AS (
        SELECT r.team_id, jsonb_object_agg(r.reason, r.n) AS by_reason
          FROM (SELECT e.team_id, e.close_reason AS reason, count(*) AS n FROM referred e
                 WHERE e.closed_before GROUP BY e.team_id, e.close_reason) r
         GROUP BY r.team_id
    ),
    -- V1: job starts in the period preceded (or accompanied) by benefits counselling in the episode.
    v1 AS (
        SELECT v.team_id, count(*) AS starts, count(*) FILTER (WHERE v.counselled) AS counselled,
               jsonb_agg(jsonb_build_object('job_id', v.job_id, 'episode_id', v.episode_id, 'starts_on', v.starts_on,
                                            'benefits_counselling_before', v.counselled) ORDER BY v.starts_on, v.job_id) AS list
          FROM (SELECT e.team_id, j.job_id, j.episode_id, j.starts_on,
                       EXISTS (SELECT 1 FROM ips.contact c WHERE c.episode_id = j.episode_id AND c.kind = 'benefits_counseling'
                                  AND c.at < (j.starts_on + 1)::timestamp AT TIME ZONE tz) AS counselled
                  FROM ips.job j JOIN ips.episode e ON e.episode_id = j.episode_id
                 WHERE e.team_id = ANY (ids) AND j.starts_on BETWEEN ps AND pe
                OFFSET 0) v     -- (counselled is read twice: evaluated once)
         GROUP BY v.team_id
    ),
    -- V14: closures as disengaged in the period and the outreach attempts before each.
    v14 AS (
        SELECT v.team_id, count(*) AS closures,
               count(*) FILTER (WHERE v.attempts >= coalesce(min_attempts::int, 3)
                                  AND v.attempt_days >= coalesce(min_attempt_days::int, 2)) AS enough,
               jsonb_agg(jsonb_build_object('episode_id', v.episode_id, 'closed_on', v.closed_on,
                                            'outreach_attempts', v.attempts, 'outreach_days', v.attempt_days)
                         ORDER BY v.closed_on, v.episode_id) AS list
          FROM (SELECT e.team_id, e.episode_id, e.closed_on, count(c.contact_id) AS attempts,
                       count(DISTINCT (c.at AT TIME ZONE tz)::date) AS attempt_days
                  FROM ips.episode e
                  LEFT JOIN ips.contact c ON c.episode_id = e.episode_id AND c.kind = 'outreach_attempt'
                       AND c.at >= (e.closed_on - coalesce(outreach_window::int, 60))::timestamp AT TIME ZONE tz
                       AND c.at < (e.closed_on + 1)::timestamp AT TIME ZONE tz
                 WHERE e.team_id = ANY (ids) AND e.close_reason = 'disengaged' AND e.closed_on BETWEEN ps AND pe
                 GROUP BY e.team_id, e.episode_id, e.closed_on) v
         GROUP BY v.team_id
    ),
    -- Every figure of a team on one row; a team without rows of a part gets what an empty
    -- aggregate gives (count 0, sum 0, lists []).
    x AS (
        SELECT tm.team_id,
               coalesce(st.fte, 0) AS fte, st.share_fte, coalesce(st.s2_list, '[]') AS s2_list,
               coalesce(s1.client_days, 0) AS client_days, coalesce(s1.episodes, '[]') AS s1_episodes,
               coalesce(s1s.per_specialist, '[]') AS s1_list,
               coalesce(v4.n, 0) AS v4_n, v4.mean_days AS v4_mean, coalesce(v4.without, 0) AS v4_without,
               coalesce(v4.episodes, '[]') AS v4_list,
               coalesce(v6.n, 0) AS v6_n, coalesce(v6.contacts, 0) AS v6_contacts, v6.mean_effective AS v6_mean,
               coalesce(v6.per_specialist, '[]') AS v6_list,
               coalesce(v8.jobs, 0) AS jobs, coalesce(v8.classified, 0) AS classified, coalesce(v8.types, 0) AS types,
               coalesce(v8.employers, 0) AS employers, coalesce(v8.competitive, 0) AS competitive,
               coalesce(v8.list, '[]') AS job_list,
               coalesce(cp.compliance, '{}') AS compliance, vf.from_on AS v12_from,
               coalesce(v12.jobs, 0) AS v12_jobs, coalesce(v12.full_jobs, 0) AS v12_full,
               coalesce(v12.broken_short, 0) AS v12_broken, coalesce(v12.due4, 0) AS v12_due4,
               coalesce(v12.got4, 0) AS v12_got4, coalesce(v12.after1, 0) AS v12_after1,
               coalesce(v12.list, '[]') AS v12_list,
               coalesce(v13.minutes, 0) AS v13_minutes, coalesce(v13.scheduled, 0) AS v13_scheduled,
               coalesce(v13.no_minutes, 0) AS v13_no_minutes, coalesce(v13.per_specialist, '[]') AS v13_list,
               coalesce(o2.mean_blocks, 0) AS o2_mean, ceil(ndays / 7.0)::int AS o2_blocks,
               coalesce(o2.per_specialist, '[]') AS o2_list,
               coalesce(o6.referrals, 0) AS o6_referrals, coalesce(o6.closed_before, 0) AS o6_closed,
               coalesce(o6.list, '[]') AS o6_list, coalesce(o6r.by_reason, '{}') AS o6_reasons,
               coalesce(v1.starts, 0) AS v1_starts, coalesce(v1.counselled, 0) AS v1_counselled,
               coalesce(v1.list, '[]') AS v1_list,
               coalesce(v14.closures, 0) AS v14_closures, coalesce(v14.enough, 0) AS v14_enough,
               coalesce(v14.list, '[]') AS v14_list
          FROM tm
          LEFT JOIN staffing st ON st.team_id = tm.team_id
          LEFT JOIN s1 ON s1.team_id = tm.team_id
          LEFT JOIN s1_staff s1s ON s1s.team_id = tm.team_id
          LEFT JOIN v4 ON v4.team_id = tm.team_id
          LEFT JOIN v6 ON v6.team_id = tm.team_id
          LEFT JOIN v8 ON v8.team_id = tm.team_id
          LEFT JOIN compliance cp ON cp.team_id = tm.team_id
          LEFT JOIN v12_from vf ON vf.team_id = tm.team_id
          LEFT JOIN v12 ON v12.team_id = tm.team_id
          LEFT JOIN v13 ON v13.team_id = tm.team_id
          LEFT JOIN o2 ON o2.team_id = tm.team_id
          LEFT JOIN o6 ON o6.team_id = tm.team_id
          LEFT JOIN o6_reason o6r ON o6r.team_id = tm.team_id
          LEFT JOIN v1 ON v1.team_id = tm.team_id
          LEFT JOIN v14 ON v14.team_id = tm.team_id
    ), m AS (       -- the unrounded measures
        SELECT x.*,
               CASE WHEN x.fte > 0 THEN x.client_days / ndays::numeric / x.fte END AS m_s1,
               CASE WHEN x.fte > 0 THEN x.share_fte / x.fte * 100 END AS m_s2,
               x.v4_mean AS m_v4,
               x.v6_mean AS m_v6,
               CASE WHEN x.classified > 0 THEN x.types * 100.0 / x.classified END AS m_v8,
               CASE WHEN x.jobs > 0 THEN x.employers * 100.0 / x.jobs END AS m_v9,
               CASE WHEN x.jobs > 0 THEN x.competitive * 100.0 / x.jobs END AS m_v10,
               CASE WHEN x.v12_due4 > 0 THEN x.v12_got4 * 100.0 / x.v12_due4 END AS m_v12,
               CASE WHEN x.v13_scheduled > 0 THEN x.v13_minutes * 100.0 / x.v13_scheduled END AS m_v13
          FROM x
    ), sc AS MATERIALIZED (   -- the anchors' scores, once per team and item (a VALUES row would
                              -- initialise ips.fidelity_anchor_score afresh at each call)
        SELECT m.*,
               ips.fidelity_anchor_score('S1', m.m_s1) AS s_s1, ips.fidelity_anchor_score('S2', m.m_s2) AS s_s2,
               ips.fidelity_anchor_score('V4', m.m_v4) AS s_v4, ips.fidelity_anchor_score('V6', m.m_v6) AS s_v6,
               ips.fidelity_anchor_score('V8', m.m_v8) AS s_v8, ips.fidelity_anchor_score('V9', m.m_v9) AS s_v9,
               ips.fidelity_anchor_score('V10', m.m_v10) AS s_v10, ips.fidelity_anchor_score('V13', m.m_v13) AS s_v13
          FROM m
    ), r AS (
        SELECT m.team_id, v.ord, v.item, v.score, v.measure, v.evidence
          FROM sc m
          CROSS JOIN LATERAL (
            SELECT CASE WHEN m.v12_jobs = 0 THEN NULL
                        WHEN m.v12_full = m.v12_jobs THEN 5
                        WHEN m.v12_broken = 0 THEN 4
                        WHEN m.v12_due4 = 0 THEN NULL
                        WHEN m.m_v12 >= coalesce((SELECT a.threshold FROM ips.fidelity_anchor a
                                                   WHERE a.item = 'V12' AND a.score = 3), 50) THEN 3
                        WHEN m.v12_after1 > 0 THEN 2
                        ELSE 1 END AS v12_score,
                   CASE WHEN m.fte = 0 THEN jsonb_build_object('not_measurable', 'the team has no employment specialists')
                        ELSE '{}' END AS no_specialists
          ) k
          CROSS JOIN LATERAL (VALUES
            (1, 'S1', m.s_s1, round(m.m_s1, 2),
             jsonb_build_object('client_days', m.client_days, 'days', ndays,
                                'mean_active_clients', round(m.client_days / ndays::numeric, 2),
                                'specialist_fte', m.fte, 'episodes', m.s1_episodes, 'per_specialist', m.s1_list)
               || k.no_specialists),
            (2, 'S2', m.s_s2, round(m.m_s2, 2),
             jsonb_build_object('specialist_fte', m.fte, 'per_specialist', m.s2_list) || k.no_specialists),
            (3, 'V4', m.s_v4, round(m.m_v4, 2),
             jsonb_build_object('entrants', m.v4_n, 'mean_days', round(m.m_v4, 2),
                                'without_employer_contact', m.v4_without, 'episodes', m.v4_list)
               || CASE WHEN m.v4_n = 0 THEN jsonb_build_object('not_measurable', 'no episode entered in the period')
                       ELSE '{}' END
               || jsonb_build_object('rule_compliance', m.compliance -> 'rapid_job_search')),
            (4, 'V6', m.s_v6, round(m.m_v6, 2),
             jsonb_build_object('contacts', m.v6_contacts, 'specialists', m.v6_n, 'weeks', round(weeks, 2),
                                'per_specialist_per_week', round(CASE WHEN m.v6_n > 0 THEN m.v6_contacts / (m.v6_n * weeks) END, 2),
                                'per_specialist', m.v6_list)
               || CASE WHEN m.v6_n = 0 THEN jsonb_build_object('not_measurable', 'the team has no employment specialists')
                       ELSE '{}' END
               || jsonb_build_object('rule_compliance', m.compliance -> 'specialist_employer_contacts')),
            (5, 'V8', m.s_v8, round(m.m_v8, 2),
             jsonb_build_object('distinct_job_types', m.types, 'jobs_with_job_type', m.classified,
                                'jobs_without_job_type', m.jobs - m.classified, 'jobs', m.job_list)
               || CASE WHEN m.classified = 0
                       THEN jsonb_build_object('not_measurable', 'no job with an occupation code held in the period')
                       ELSE '{}' END),
            (6, 'V9', m.s_v9, round(m.m_v9, 2),
             jsonb_build_object('distinct_employers', m.employers, 'job_count', m.jobs, 'jobs', m.job_list)
               || CASE WHEN m.jobs = 0 THEN jsonb_build_object('not_measurable', 'no job held in the period')
                       ELSE '{}' END),
            (7, 'V10', m.s_v10, round(m.m_v10, 2),
             jsonb_build_object('competitive_jobs', m.competitive, 'job_count', m.jobs,
                                'competitive_kinds', kinds_setting, 'jobs', m.job_list)
               || CASE WHEN m.jobs = 0 THEN jsonb_build_object('not_measurable', 'no job held in the period')
                       ELSE '{}' END),
            (8, 'V12', k.v12_score, round(m.m_v12, 2),
             jsonb_build_object('job_count', m.v12_jobs, 'full_pattern', m.v12_full,
                                'jobs_due_4_months', m.v12_due4, 'followed_4_months', m.v12_got4,
                                'contact_after_month_1', m.v12_after1, 'source', 'ips.expectations',
                                'expectations_from', m.v12_from,
                                'kept', 'status met_on_time (met_late, missed, open: not kept)', 'jobs', m.v12_list)
               || CASE WHEN m.v12_jobs = 0 THEN jsonb_build_object('not_measurable', 'no competitive job held in the period')
                       WHEN k.v12_score IS NULL
                       THEN jsonb_build_object('not_measurable', 'the pattern is broken but no job has been held 5 months yet')
                       ELSE '{}' END
               || jsonb_build_object('rule_compliance', jsonb_build_object(
                      'pre_start_contact', m.compliance -> 'pre_start_contact',
                      'post_start_contact', m.compliance -> 'post_start_contact',
                      'first_month_weekly', m.compliance -> 'first_month_weekly',
                      'follow_along_monthly', m.compliance -> 'follow_along_monthly',
                      'job_loss_contact', m.compliance -> 'job_loss_contact'))),
            (9, 'V13', m.s_v13, round(m.m_v13, 2),
             jsonb_build_object('community_minutes', m.v13_minutes, 'scheduled_minutes', round(m.v13_scheduled, 2),
                                'contacts_without_minutes', m.v13_no_minutes, 'per_specialist', m.v13_list)
               || CASE WHEN m.v13_scheduled = 0
                       THEN jsonb_build_object('not_measurable', 'the team has no employment specialists')
                       ELSE '{}' END),
            (10, 'O2', NULL::int, CASE WHEN m.o2_blocks > 0 THEN round(m.o2_mean * 100.0 / m.o2_blocks, 2) END,
             jsonb_build_object('weeks', m.o2_blocks, 'mean_weeks_attended', round(m.o2_mean, 2),
                                'per_specialist', m.o2_list, 'measure', '% of weeks with a care team meeting attended')),
            (11, 'O6', NULL::int, CASE WHEN m.o6_referrals > 0 THEN round(m.o6_closed * 100.0 / m.o6_referrals, 2) END,
             jsonb_build_object('referrals', m.o6_referrals, 'closed_before_engagement', m.o6_closed,
                                'by_reason', m.o6_reasons, 'episodes', m.o6_list,
                                'measure', '% of referrals closed before engagement')),
            (12, 'V1', NULL::int, CASE WHEN m.v1_starts > 0 THEN round(m.v1_counselled * 100.0 / m.v1_starts, 2) END,
             jsonb_build_object('job_starts', m.v1_starts, 'after_benefits_counselling', m.v1_counselled,
                                'jobs', m.v1_list, 'measure', '% of job starts after benefits counselling')),
            (13, 'V14', NULL::int, CASE WHEN m.v14_closures > 0 THEN round(m.v14_enough * 100.0 / m.v14_closures, 2) END,
             jsonb_build_object('disengaged_closures', m.v14_closures, 'after_enough_outreach', m.v14_enough,
                                'episodes', m.v14_list, 'measure', '% of disengaged closures after the required outreach'))
          ) AS v(ord, item, score, measure, evidence)
    )
    SELECT r.team_id, r.item, r.score, r.measure, r.evidence FROM r ORDER BY r.team_id, r.ord;
END $$;
COMMENT ON FUNCTION ips.fidelity_computed_teams(bigint[], date, date) IS
    'Internal: ips.fidelity_computed for a set of teams at once (one row per team and item), set-based, with one call of the rules engine.';

-- One row per computed item (S1 S2 V4 V6 V8 V9 V10 V12 V13) and per rated item with evidence
-- from the records (O2 O6 V1 V14, score always NULL) of one team.  measure NULL: not measurable.
CREATE OR REPLACE FUNCTION ips.fidelity_computed(team_id bigint, period_start date, period_end date)
RETURNS TABLE(item text, score int, measure numeric, evidence jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.item, c.score, c.measure, c.evidence
      FROM ips.fidelity_computed_teams(ARRAY[fidelity_computed.team_id], fidelity_computed.period_start,
                                       fidelity_computed.period_end) c
$$;
COMMENT ON FUNCTION ips.fidelity_computed(bigint, date, date) IS
    'The fidelity items computed from the records (S1 S2 V4 V6 V8 V9 V10 V12 V13) with measure, score and evidence, and the record evidence of O2 O6 V1 V14.';

------------------------------------------------------------------------------
-- ips.fidelity: the 25 items
------------------------------------------------------------------------------

-- The 25 rows of each of a set of teams: computed, else rated in the team's review of exactly
-- that period, else missing.  ips.fidelity and ips.fidelity_all read it.
CREATE OR REPLACE FUNCTION ips.fidelity_teams(team_ids bigint[], period_start date, period_end date)
RETURNS TABLE(team_id bigint, item text, score int, source text, measure numeric, evidence jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'     -- the computed rows of a whole country are sorted in memory
AS $$
    WITH c AS MATERIALIZED (
        SELECT * FROM ips.fidelity_computed_teams(fidelity_teams.team_ids, fidelity_teams.period_start,
                                                  fidelity_teams.period_end)
    ), t AS (
        SELECT DISTINCT u.team_id FROM unnest(fidelity_teams.team_ids) AS u(team_id)
    )
    SELECT t.team_id, i.item,
           CASE WHEN i.computed AND c.score IS NOT NULL THEN c.score ELSE rt.score END,
           CASE WHEN i.computed AND c.score IS NOT NULL THEN 'computed'
                WHEN rt.score IS NOT NULL THEN 'rated' ELSE 'missing' END,
           c.measure,
           coalesce(c.evidence, '{}'::jsonb)
             || CASE WHEN i.computed AND c.score IS NOT NULL
                     THEN jsonb_build_object('anchor', (SELECT a.anchor FROM ips.fidelity_anchor a
                                                         WHERE a.item = i.item AND a.score = c.score))
                     ELSE '{}'::jsonb END
             || CASE WHEN rt.score IS NOT NULL AND NOT (i.computed AND c.score IS NOT NULL)
                     THEN jsonb_strip_nulls(jsonb_build_object('review_id', rt.review_id, 'rated_by', rt.rated_by, 'note', rt.note))
                     ELSE '{}'::jsonb END
      FROM t CROSS JOIN ips.fidelity_item i
      LEFT JOIN c ON c.team_id = t.team_id AND c.item = i.item
      LEFT JOIN ips.fidelity_review v ON v.team_id = t.team_id AND v.period_start = fidelity_teams.period_start
                                     AND v.period_end = fidelity_teams.period_end
      LEFT JOIN ips.fidelity_rating rt ON rt.review_id = v.review_id AND rt.item = i.item
     ORDER BY t.team_id, i.ordinal
$$;
COMMENT ON FUNCTION ips.fidelity_teams(bigint[], date, date) IS
    'Internal: the 25 rows of ips.fidelity for each of a set of teams (team_id first), computed in one pass.';

CREATE OR REPLACE FUNCTION ips.fidelity(team_id bigint, period_start date, period_end date)
RETURNS TABLE(item text, score int, source text, measure numeric, evidence jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.item, f.score, f.source, f.measure, f.evidence
      FROM ips.fidelity_teams(ARRAY[fidelity.team_id], fidelity.period_start, fidelity.period_end) f
$$;
COMMENT ON FUNCTION ips.fidelity(bigint, date, date) IS
    'The 25 fidelity items of a team for a period: computed from the records (S1 S2 V4 V6 V8 V9 V10 V12 V13), else rated in the team''s review of that period, else missing; with measure and evidence.';

-- Every team the caller may see, in one pass: what ips.fidelity gives for each.
CREATE OR REPLACE FUNCTION ips.fidelity_all(period_start date, period_end date)
RETURNS TABLE(team_id bigint, item text, score int, source text, measure numeric, evidence jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.team_id, f.item, f.score, f.source, f.measure, f.evidence
      FROM ips.fidelity_teams((SELECT coalesce(array_agg(t.team_id ORDER BY t.team_id), '{}') FROM ips.team t),
                              fidelity_all.period_start, fidelity_all.period_end) f
$$;
COMMENT ON FUNCTION ips.fidelity_all(date, date) IS
    'The rows of ips.fidelity for every team the caller may see (team_id first, then ordinal), computed in one pass over the records.';
-- upgrade 1.1: end

------------------------------------------------------------------------------
-- Reviews
------------------------------------------------------------------------------

-- A review, or "no fidelity review with id" (internal).
CREATE FUNCTION ips.fidelity_review_get(review_id bigint, must_be_open boolean) RETURNS ips.fidelity_review
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.fidelity_review;
BEGIN
    SELECT * INTO r FROM ips.fidelity_review v WHERE v.review_id = fidelity_review_get.review_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('fidelity review', fidelity_review_get.review_id);
    END IF;
    IF must_be_open AND r.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'fidelity review % was closed on %', r.review_id, ips.local_date(r.closed_at)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A closed review is final; open a review of another period.';
    END IF;
    RETURN r;
END $$;
COMMENT ON FUNCTION ips.fidelity_review_get(bigint, boolean) IS 'Internal: the review row, or P0002; 55000 when it must be open and is closed.';

CREATE FUNCTION ips.open_review(team_id bigint, period_start date, period_end date, reviewed_on date) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.fidelity_check_period(team_id, period_start, period_end);
    PERFORM ips.require(reviewed_on, 'reviewed_on');
    IF reviewed_on < period_start THEN
        RAISE EXCEPTION 'review date % is before the period starts on %', reviewed_on, period_start
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A review looks back on the period: give the day of the review visit.';
    END IF;
    SELECT v.review_id INTO id FROM ips.fidelity_review v
     WHERE v.team_id = open_review.team_id AND v.period_start = open_review.period_start AND v.period_end = open_review.period_end;
    IF FOUND THEN
        RAISE EXCEPTION 'team % has a review of % – % already (%)', team_id, period_start, period_end, id
            USING ERRCODE = 'unique_violation', HINT = format('Continue review %s.', id);
    END IF;
    INSERT INTO ips.fidelity_review (team_id, period_start, period_end, reviewed_on)
    VALUES (open_review.team_id, open_review.period_start, open_review.period_end, open_review.reviewed_on)
    RETURNING review_id INTO id;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.open_review(bigint, date, date, date) IS
    'Opens the fidelity review of a team for a period (one per team and period); returns its id.';

CREATE FUNCTION ips.add_reviewer(review_id bigint, reviewer text, organisation text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.fidelity_review := ips.fidelity_review_get(add_reviewer.review_id, true);
BEGIN
    IF reviewer IS NULL OR btrim(reviewer) = '' THEN
        RAISE EXCEPTION 'a reviewer needs a name' USING ERRCODE = 'null_value_not_allowed', HINT = 'Give the reviewer''s name.';
    END IF;
    INSERT INTO ips.fidelity_reviewer (review_id, reviewer, organisation)
    VALUES (r.review_id, btrim(add_reviewer.reviewer), add_reviewer.organisation)
    ON CONFLICT ON CONSTRAINT fidelity_reviewer_pkey DO UPDATE SET organisation = EXCLUDED.organisation;
END $$;
COMMENT ON FUNCTION ips.add_reviewer(bigint, text, text) IS 'Names a reviewer of an open review (and the organisation, e.g. THL or a peer region).';

CREATE FUNCTION ips.rate(review_id bigint, item text, score int, note text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.fidelity_review := ips.fidelity_review_get(rate.review_id, true);
BEGIN
    IF item IS NULL OR NOT EXISTS (SELECT 1 FROM ips.fidelity_item i WHERE i.item = rate.item) THEN
        RAISE EXCEPTION 'unknown fidelity item "%"', coalesce(item, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Use one of: %s.', (SELECT string_agg(i.item, ', ' ORDER BY i.ordinal) FROM ips.fidelity_item i));
    END IF;
    IF score IS NULL OR score NOT BETWEEN 1 AND 5 THEN
        RAISE EXCEPTION 'score % is out of range', coalesce(score::text, 'NULL')
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'An item scores 1 to 5.';
    END IF;
    INSERT INTO ips.fidelity_rating (review_id, item, score, note)
    VALUES (r.review_id, rate.item, rate.score, rate.note)
    ON CONFLICT ON CONSTRAINT fidelity_rating_pkey
    DO UPDATE SET score = EXCLUDED.score, note = EXCLUDED.note, rated_by = EXCLUDED.rated_by, rated_at = EXCLUDED.rated_at;
END $$;
COMMENT ON FUNCTION ips.rate(bigint, text, int, text) IS
    'Scores an item (1–5) in an open review, with an optional note; rating again replaces. A computed item''s rating counts only when the records cannot measure it.';

CREATE FUNCTION ips.add_action(review_id bigint, action text, item text DEFAULT NULL,
                               responsible text DEFAULT NULL, due_on date DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.fidelity_review := ips.fidelity_review_get(add_action.review_id, false);
    id bigint;
BEGIN
    IF action IS NULL OR btrim(action) = '' THEN
        RAISE EXCEPTION 'an action needs a description' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Say what the team will do.';
    END IF;
    IF item IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ips.fidelity_item i WHERE i.item = add_action.item) THEN
        RAISE EXCEPTION 'unknown fidelity item "%"', item
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give an item code such as V6, or NULL.';
    END IF;
    IF due_on < r.reviewed_on THEN
        RAISE EXCEPTION 'due date % is before the review on %', due_on, r.reviewed_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'An action is due after the review.';
    END IF;
    INSERT INTO ips.fidelity_action (review_id, item, action, responsible, due_on)
    VALUES (r.review_id, add_action.item, btrim(add_action.action), add_action.responsible, add_action.due_on)
    RETURNING action_id INTO id;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.add_action(bigint, text, text, text, date) IS
    'Adds a step to the action plan of a review (open or closed): what, for which item, who, by when. Returns its id.';

CREATE FUNCTION ips.complete_action(action_id bigint, done_on date) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a ips.fidelity_action;
BEGIN
    PERFORM ips.require(done_on, 'done_on');
    SELECT * INTO a FROM ips.fidelity_action x WHERE x.action_id = complete_action.action_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ips.not_found('action', complete_action.action_id);
    END IF;
    IF a.done_on IS NOT NULL THEN
        RAISE EXCEPTION 'action % was done on % already', a.action_id, a.done_on
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing to change.';
    END IF;
    IF done_on > ips.local_date(now()) THEN
        RAISE EXCEPTION 'completion date % is in the future', done_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record an action when it is done.';
    END IF;
    UPDATE ips.fidelity_action x SET done_on = complete_action.done_on WHERE x.action_id = a.action_id;
END $$;
COMMENT ON FUNCTION ips.complete_action(bigint, date) IS 'Records that an action of a review''s plan was done on a day.';

CREATE FUNCTION ips.close_review(review_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.fidelity_review := ips.fidelity_review_get(close_review.review_id, true);
BEGIN
    PERFORM 1 FROM ips.fidelity_review v WHERE v.review_id = r.review_id FOR UPDATE;
    INSERT INTO ips.fidelity_frozen (review_id, item, score, source, measure, evidence)
    SELECT r.review_id, f.item, f.score, f.source, f.measure, f.evidence
      FROM ips.fidelity(r.team_id, r.period_start, r.period_end) f;
    UPDATE ips.fidelity_review v SET closed_at = now(), closed_by = ips.caller() WHERE v.review_id = r.review_id;
END $$;
COMMENT ON FUNCTION ips.close_review(bigint) IS
    'Closes a review: its 25 rows (computed items included) are frozen as they stand now and no longer follow later corrections of the records.';

-- The result of a review: the frozen rows once closed, else the live computation.
CREATE FUNCTION ips.review_result(review_id bigint)
RETURNS TABLE(item text, score int, source text, measure numeric, evidence jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.fidelity_review := ips.fidelity_review_get(review_result.review_id, false);
BEGIN
    IF r.closed_at IS NOT NULL THEN
        RETURN QUERY SELECT f.item, f.score, f.source, f.measure, f.evidence
                       FROM ips.fidelity_frozen f JOIN ips.fidelity_item i ON i.item = f.item
                      WHERE f.review_id = r.review_id ORDER BY i.ordinal;
    ELSE
        RETURN QUERY SELECT * FROM ips.fidelity(r.team_id, r.period_start, r.period_end);
    END IF;
END $$;
COMMENT ON FUNCTION ips.review_result(bigint) IS 'The 25 rows of a review: frozen when it is closed, computed now while it is open.';

CREATE FUNCTION ips.review_changes(review_id bigint)
RETURNS TABLE(item text, frozen_score int, current_score int, frozen_source text, current_source text,
              frozen_measure numeric, current_measure numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.fidelity_review := ips.fidelity_review_get(review_changes.review_id, false);
BEGIN
    IF r.closed_at IS NULL THEN
        RAISE EXCEPTION 'fidelity review % is still open', r.review_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Close it with ips.close_review() first; an open review is always current.';
    END IF;
    RETURN QUERY
    SELECT f.item, f.score, c.score, f.source, c.source, f.measure, c.measure
      FROM ips.fidelity_frozen f
      JOIN ips.fidelity(r.team_id, r.period_start, r.period_end) c ON c.item = f.item
      JOIN ips.fidelity_item i ON i.item = f.item
     WHERE f.review_id = r.review_id
       AND (f.score IS DISTINCT FROM c.score OR f.source IS DISTINCT FROM c.source OR f.measure IS DISTINCT FROM c.measure)
     ORDER BY i.ordinal;
END $$;
COMMENT ON FUNCTION ips.review_changes(bigint) IS
    'For a closed review: the items whose score, source or measure would differ if computed now from the records (e.g. after corrections).';

-- Total, items scored and band of a set of rows.
CREATE FUNCTION ips.fidelity_band_of(total int, items_scored int) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT b.band FROM ips.fidelity_band b
     WHERE items_scored = (SELECT count(*) FROM ips.fidelity_item) AND total BETWEEN b.min_total AND b.max_total
     ORDER BY b.min_total DESC LIMIT 1
$$;
COMMENT ON FUNCTION ips.fidelity_band_of(int, int) IS 'The band (ips.fidelity_band) of a total once every item is scored, else NULL.';

CREATE FUNCTION ips.fidelity_summary(team_id bigint, period_start date, period_end date)
RETURNS TABLE(total int, items_scored int, band text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rid bigint;
BEGIN
    PERFORM ips.fidelity_check_period(team_id, period_start, period_end);
    SELECT v.review_id INTO rid FROM ips.fidelity_review v
     WHERE v.team_id = fidelity_summary.team_id AND v.period_start = fidelity_summary.period_start
       AND v.period_end = fidelity_summary.period_end AND v.closed_at IS NOT NULL;
    IF rid IS NOT NULL THEN
        RETURN QUERY SELECT coalesce(sum(f.score), 0)::int, count(f.score)::int,
                            ips.fidelity_band_of(coalesce(sum(f.score), 0)::int, count(f.score)::int)
                       FROM ips.fidelity_frozen f WHERE f.review_id = rid;
    ELSE
        RETURN QUERY SELECT coalesce(sum(f.score), 0)::int, count(f.score)::int,
                            ips.fidelity_band_of(coalesce(sum(f.score), 0)::int, count(f.score)::int)
                       FROM ips.fidelity(fidelity_summary.team_id, fidelity_summary.period_start, fidelity_summary.period_end) f;
    END IF;
END $$;
COMMENT ON FUNCTION ips.fidelity_summary(bigint, date, date) IS
    'Total of the scored items, how many are scored, and the band once all 25 are; from the frozen result of the closed review of exactly that period if there is one, else computed now.';

------------------------------------------------------------------------------
-- The printed report
------------------------------------------------------------------------------

-- A number as people read it: at most two decimals, decimal comma in fi and sv.
CREATE FUNCTION ips.fidelity_number(x numeric, lang text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN x IS NULL THEN '–'
                ELSE replace(CASE WHEN round(x, 2) = trunc(x) THEN trunc(x)::text
                                  ELSE rtrim(round(x, 2)::text, '0') END,
                             '.', CASE WHEN lang IN ('fi', 'sv') THEN ',' ELSE '.' END) END
$$;
COMMENT ON FUNCTION ips.fidelity_number(numeric, text) IS 'Internal: a number for the report (two decimals at most; decimal comma in fi and sv).';

-- The one-line evidence of an item in a language.
CREATE FUNCTION ips.fidelity_evidence_line(item text, evidence jsonb, lang text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n text[];
    tpl text := ips.label('fidelity_ev_' || item, lang);
    line text;
BEGIN
    n := CASE item
        WHEN 'S1' THEN ARRAY[evidence ->> 'mean_active_clients', evidence ->> 'specialist_fte']
        WHEN 'S2' THEN ARRAY[NULL, evidence ->> 'specialist_fte']
        WHEN 'V4' THEN ARRAY[evidence ->> 'entrants', evidence ->> 'mean_days', evidence ->> 'without_employer_contact']
        WHEN 'V6' THEN ARRAY[evidence ->> 'contacts', evidence ->> 'specialists', evidence ->> 'weeks']
        WHEN 'V8' THEN ARRAY[evidence ->> 'distinct_job_types', evidence ->> 'jobs_with_job_type']
        WHEN 'V9' THEN ARRAY[evidence ->> 'distinct_employers', evidence ->> 'job_count']
        WHEN 'V10' THEN ARRAY[evidence ->> 'competitive_jobs', evidence ->> 'job_count']
        WHEN 'V12' THEN ARRAY[evidence ->> 'job_count', evidence ->> 'full_pattern', evidence ->> 'followed_4_months', evidence ->> 'jobs_due_4_months']
        WHEN 'V13' THEN ARRAY[evidence ->> 'community_minutes', evidence ->> 'scheduled_minutes']
        WHEN 'O2' THEN ARRAY[evidence ->> 'mean_weeks_attended', evidence ->> 'weeks']
        WHEN 'O6' THEN ARRAY[evidence ->> 'referrals', evidence ->> 'closed_before_engagement']
        WHEN 'V1' THEN ARRAY[evidence ->> 'after_benefits_counselling', evidence ->> 'job_starts']
        WHEN 'V14' THEN ARRAY[evidence ->> 'disengaged_closures', evidence ->> 'after_enough_outreach']
        END;
    IF n IS NULL OR tpl = 'fidelity_ev_' || item THEN
        line := NULL;
    ELSE
        IF item = 'S2' THEN
            n[1] := NULL;   -- filled by the caller's measure below
        END IF;
        SELECT array_agg(ips.fidelity_number(v::numeric, lang) ORDER BY o) INTO n
          FROM unnest(n) WITH ORDINALITY AS u(v, o);
        line := format(tpl, VARIADIC n);
    END IF;
    IF evidence ? 'not_measurable' THEN
        line := concat_ws('; ', ips.label('fidelity_no_data', lang), line);
    END IF;
    RETURN line;
END $$;
COMMENT ON FUNCTION ips.fidelity_evidence_line(text, jsonb, text) IS 'Internal: the one-line evidence of a fidelity item for the printed report, in fi, sv or en.';

CREATE FUNCTION ips.fidelity_report(team_id bigint, period_start date, period_end date, lang text DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    l text := ips.language(lang);
    t ips.team;
    r ips.fidelity_review;
    x record;
    total int := 0;
    scored int := 0;
    band text;
    line text;
BEGIN
    PERFORM ips.fidelity_check_period(team_id, period_start, period_end);
    SELECT * INTO t FROM ips.team v WHERE v.team_id = fidelity_report.team_id;
    SELECT * INTO r FROM ips.fidelity_review v
     WHERE v.team_id = fidelity_report.team_id AND v.period_start = fidelity_report.period_start
       AND v.period_end = fidelity_report.period_end;
    RETURN NEXT format('%s: %s (%s), %s %s – %s', ips.label('fidelity_title', l), t.name, t.region,
                       ips.label('fidelity_period', l), to_char(period_start, 'YYYY-MM-DD'), to_char(period_end, 'YYYY-MM-DD'));
    RETURN NEXT CASE WHEN r.closed_at IS NOT NULL
                     THEN format(ips.label('fidelity_frozen', l), r.review_id, to_char(ips.local_date(r.closed_at), 'YYYY-MM-DD'))
                     WHEN r.review_id IS NOT NULL
                     THEN format(ips.label('fidelity_open_review', l), r.review_id) || ', ' || ips.label('fidelity_live', l)
                     ELSE ips.label('fidelity_live', l) END;
    FOR x IN
        SELECT f.item, f.score, f.source, f.measure, f.evidence
          FROM (SELECT * FROM ips.review_result(r.review_id) WHERE r.closed_at IS NOT NULL
                UNION ALL
                SELECT * FROM ips.fidelity(fidelity_report.team_id, fidelity_report.period_start, fidelity_report.period_end)
                 WHERE r.closed_at IS NULL) f
          JOIN ips.fidelity_item i ON i.item = f.item
         ORDER BY i.ordinal
    LOOP
        line := ips.fidelity_evidence_line(x.item, x.evidence, l);
        IF x.item = 'S2' AND line IS NOT NULL THEN
            line := replace(line, '–', ips.fidelity_number(x.measure, l));
        ELSIF x.measure IS NOT NULL AND x.item IN ('V8', 'V9', 'V10', 'V12', 'V13', 'O2', 'O6', 'V1', 'V14') THEN
            line := line || ' = ' || ips.fidelity_number(x.measure, l) || ' %';
        END IF;
        IF x.evidence ? 'note' THEN
            line := concat_ws('; ', line, ips.label('fidelity_note', l) || ': ' || (x.evidence ->> 'note'));
        END IF;
        RETURN NEXT format('%-4s %s: %s (%s)%s', x.item, ips.label(x.item, l), coalesce(x.score::text, '–'),
                           ips.label('fidelity_source_' || x.source, l), coalesce(' — ' || line, ''));
        total := total + coalesce(x.score, 0);
        scored := scored + (x.score IS NOT NULL)::int;
    END LOOP;
    band := ips.fidelity_band_of(total, scored);
    RETURN NEXT format('%s: %s (%s %s/%s)', ips.label('fidelity_total', l), total, ips.label('fidelity_items_scored', l),
                       scored, (SELECT count(*) FROM ips.fidelity_item));
    RETURN NEXT format('%s: %s', ips.label('fidelity_band', l),
                       coalesce(ips.label(band, l), ips.label('fidelity_band_none', l)));
END $$;
COMMENT ON FUNCTION ips.fidelity_report(bigint, date, date, text) IS
    'The fidelity review sheet as text lines in fi, sv or en: each item with score, source and one-line evidence, then total and band (frozen result if the review of that period is closed).';

------------------------------------------------------------------------------
-- pg_dump keeps reference data and reviews
------------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('ips.fidelity_item', '');
SELECT pg_catalog.pg_extension_config_dump('ips.fidelity_anchor', '');
SELECT pg_catalog.pg_extension_config_dump('ips.fidelity_band', '');
SELECT pg_catalog.pg_extension_config_dump('ips.fidelity_review', '');
SELECT pg_catalog.pg_extension_config_dump('ips.fidelity_reviewer', '');
SELECT pg_catalog.pg_extension_config_dump('ips.fidelity_rating', '');
SELECT pg_catalog.pg_extension_config_dump('ips.fidelity_action', '');
SELECT pg_catalog.pg_extension_config_dump('ips.fidelity_frozen', '');
SELECT pg_catalog.pg_extension_config_dump('ips.fidelity_review_review_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.fidelity_action_action_id_seq', '');

-- ===== extension/sql/45_outcomes.sql
-- Outcomes (domain.md section 6): per team and quarter, the figures IPS programmes report,
-- beside the benchmarks; for analysts, counts of fewer people than the small-cell threshold
-- are suppressed.

-- Whether the client was out of work when the episode began (UK IPS Grow counts only them).
ALTER TABLE ips.episode ADD COLUMN out_of_work_at_entry boolean;
COMMENT ON COLUMN ips.episode.out_of_work_at_entry IS
    'True when the client had no paid job when the episode began (the IPS Grow employment rate counts only these); NULL: not recorded.';

CREATE FUNCTION ips.set_out_of_work_at_entry(episode_id bigint, out_of_work boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e ips.episode;
BEGIN
    PERFORM ips.require(out_of_work, 'out_of_work');
    e := ips.episode_for_update(set_out_of_work_at_entry.episode_id);
    UPDATE ips.episode x SET out_of_work_at_entry = set_out_of_work_at_entry.out_of_work
     WHERE x.episode_id = e.episode_id;
END $$;
COMMENT ON FUNCTION ips.set_out_of_work_at_entry(bigint, boolean) IS
    'Records whether the client was out of work when the episode began (for the employment rate of those out of work at entry).';

INSERT INTO ips.setting (name, value, description) VALUES
  ('benchmark_employment_minimal', '31', 'IPS employment rate benchmark, minimal (%, IPS Employment Center).'),
  ('benchmark_employment_average', '41', 'IPS employment rate benchmark, average (%).'),
  ('benchmark_employment_excellent', '50', 'IPS employment rate benchmark, excellent (%).'),
  ('benchmark_employment_uk', '40', 'IPS Grow (UK) benchmark for the employment rate of clients out of work at entry (%).');

-- Raw figures per team and quarter (person-level tables underneath: not for analysts).
-- Set-based: every figure is aggregated once by (team, quarter) and joined to the quarter list,
-- so the cost grows with the rows, not with quarters x rows of the whole region.
-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
CREATE OR REPLACE VIEW ips.outcomes_quarterly_counts AS
WITH cfg AS MATERIALIZED (
    SELECT string_to_array(replace(coalesce(ips.setting_value('competitive_job_kinds'), 'competitive'), ' ', ''), ',') AS kinds,
           ips.local_date(now()) AS today
),
cjob AS MATERIALIZED (
    SELECT j.job_id, j.episode_id, j.starts_on, j.ends_on, e.team_id, e.client_id, e.entry_on
      FROM ips.job j JOIN ips.episode e ON e.episode_id = j.episode_id
     WHERE j.kind = ANY ((SELECT cfg.kinds FROM cfg)::text[])
),
q AS MATERIALIZED (
    SELECT t.team_id, t.name AS team_name, t.region, g::date AS qs, (g + interval '3 months' - interval '1 day')::date AS qe
      FROM ips.team t
      JOIN (SELECT e.team_id, min(e.referred_on) AS first_day FROM ips.episode e GROUP BY e.team_id) f ON f.team_id = t.team_id
     CROSS JOIN LATERAL generate_series(date_trunc('quarter', f.first_day), date_trunc('quarter', (SELECT cfg.today FROM cfg)),
                                        interval '3 months') g
),
-- the first and last quarter listed per team
qb AS MATERIALIZED (
    SELECT q.team_id, min(q.qs)::timestamp AS first_qs, max(q.qs)::timestamp AS last_qs FROM q GROUP BY q.team_id
),
-- each episode in every listed quarter it overlaps (entry on or before the quarter's end, not closed before its start)
eq AS (
    SELECT e.team_id, e.episode_id, e.client_id, e.out_of_work_at_entry, g::date AS qs
      FROM ips.episode e JOIN qb ON qb.team_id = e.team_id
     CROSS JOIN LATERAL generate_series(greatest(date_trunc('quarter', e.entry_on::timestamp), qb.first_qs),
                                        least(date_trunc('quarter', coalesce(e.closed_on::timestamp, qb.last_qs)), qb.last_qs),
                                        interval '3 months') g
     WHERE e.entry_on IS NOT NULL
),
-- each episode in every listed quarter in which one of its competitive jobs ran
wq AS (
    SELECT DISTINCT j.episode_id, g::date AS qs
      FROM cjob j JOIN qb ON qb.team_id = j.team_id
     CROSS JOIN LATERAL generate_series(greatest(date_trunc('quarter', j.starts_on::timestamp), qb.first_qs),
                                        least(date_trunc('quarter', coalesce(j.ends_on::timestamp, qb.last_qs)), qb.last_qs),
                                        interval '3 months') g
),
s AS (
    SELECT eq.team_id, eq.qs,
           count(DISTINCT eq.client_id) AS served,
           count(DISTINCT eq.client_id) FILTER (WHERE w.episode_id IS NOT NULL) AS working,
           count(DISTINCT eq.client_id) FILTER (WHERE eq.out_of_work_at_entry) AS served_oow,
           count(DISTINCT eq.client_id) FILTER (WHERE eq.out_of_work_at_entry AND w.episode_id IS NOT NULL) AS working_oow
      FROM eq LEFT JOIN wq w ON w.episode_id = eq.episode_id AND w.qs = eq.qs
     GROUP BY eq.team_id, eq.qs
),
js AS (
    SELECT j.team_id, date_trunc('quarter', j.starts_on::timestamp)::date AS qs,
           count(*) AS job_starts,
           count(*) FILTER (WHERE j.starts_on + 89 <= (SELECT cfg.today FROM cfg)) AS jobs_90_known,
           count(*) FILTER (WHERE j.starts_on + 89 <= (SELECT cfg.today FROM cfg)
                              AND (j.ends_on IS NULL OR j.ends_on >= j.starts_on + 89)) AS jobs_90_retained
      FROM cjob j
     GROUP BY 1, 2
),
first_job AS (
    SELECT j.episode_id, min(j.starts_on) AS starts_on FROM cjob j GROUP BY j.episode_id
),
fj AS (
    SELECT e.team_id, date_trunc('quarter', f.starts_on::timestamp)::date AS qs,
           count(DISTINCT e.client_id) AS first_jobs,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY f.starts_on - e.entry_on) AS median_days_to_first_job
      FROM first_job f JOIN ips.episode e ON e.episode_id = f.episode_id
     GROUP BY 1, 2
),
st AS (
    SELECT e.team_id, date_trunc('quarter', x.starts_on::timestamp)::date AS qs,
           count(DISTINCT e.client_id) AS education_starts
      FROM ips.study x JOIN ips.episode e ON e.episode_id = x.episode_id
     GROUP BY 1, 2
),
c AS (
    SELECT e.team_id, date_trunc('quarter', e.closed_on::timestamp)::date AS qs,
           count(*) AS closures,
           count(*) FILTER (WHERE e.close_reason = 'stable_employment') AS stable_employment,
           count(*) FILTER (WHERE e.close_reason = 'client_choice') AS client_choice,
           count(*) FILTER (WHERE e.close_reason = 'moved') AS moved,
           count(*) FILTER (WHERE e.close_reason = 'referred_elsewhere') AS referred_elsewhere,
           count(*) FILTER (WHERE e.close_reason = 'disengaged') AS disengaged,
           count(*) FILTER (WHERE e.close_reason = 'deceased') AS deceased,
           count(*) FILTER (WHERE e.close_reason = 'never_engaged') AS never_engaged
      FROM ips.episode e
     WHERE e.closed_on IS NOT NULL
     GROUP BY 1, 2
)
SELECT q.team_id, q.team_name, q.region,
       to_char(q.qs, 'YYYY"Q"Q') AS quarter, q.qs AS quarter_start, q.qe AS quarter_end,
       coalesce(s.served, 0) AS served, coalesce(s.working, 0) AS working,
       coalesce(s.served_oow, 0) AS served_oow, coalesce(s.working_oow, 0) AS working_oow,
       coalesce(js.job_starts, 0) AS job_starts, coalesce(fj.first_jobs, 0) AS first_jobs,
       fj.median_days_to_first_job, coalesce(st.education_starts, 0) AS education_starts,
       coalesce(js.jobs_90_known, 0) AS jobs_90_known, coalesce(js.jobs_90_retained, 0) AS jobs_90_retained,
       coalesce(c.closures, 0) AS closures, coalesce(c.stable_employment, 0) AS stable_employment,
       coalesce(c.client_choice, 0) AS client_choice, coalesce(c.moved, 0) AS moved,
       coalesce(c.referred_elsewhere, 0) AS referred_elsewhere, coalesce(c.disengaged, 0) AS disengaged,
       coalesce(c.deceased, 0) AS deceased, coalesce(c.never_engaged, 0) AS never_engaged
  FROM q
  LEFT JOIN s ON s.team_id = q.team_id AND s.qs = q.qs
  LEFT JOIN js ON js.team_id = q.team_id AND js.qs = q.qs
  LEFT JOIN fj ON fj.team_id = q.team_id AND fj.qs = q.qs
  LEFT JOIN st ON st.team_id = q.team_id AND st.qs = q.qs
  LEFT JOIN c ON c.team_id = q.team_id AND c.qs = q.qs;
COMMENT ON VIEW ips.outcomes_quarterly_counts IS
    'Unsuppressed outcome counts per team and quarter (served, working competitively, job starts, first jobs, studies, 90-day retention, closures); for admins and supervisors, not analysts.';
-- upgrade 1.1: end

-- A count as analysts see it: NULL when 1 .. threshold-1 people (0 is shown); NULL threshold: as is.
CREATE FUNCTION ips.suppress_count(n bigint, threshold int) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN n IS NULL OR (threshold IS NOT NULL AND n > 0 AND n < threshold) THEN NULL ELSE n END
$$;
COMMENT ON FUNCTION ips.suppress_count(bigint, int) IS
    'Small-cell suppression of a count: NULL when it is 1 .. threshold-1; zero and larger counts are shown.';

-- A percentage of two counts, NULL when either is suppressed or the denominator is 0.
CREATE FUNCTION ips.suppress_rate(num bigint, den bigint, threshold int) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN ips.suppress_count(num, threshold) IS NULL OR ips.suppress_count(den, threshold) IS NULL
                  OR den = 0 THEN NULL
                ELSE round(num * 100.0 / den, 1) END
$$;
COMMENT ON FUNCTION ips.suppress_rate(bigint, bigint, int) IS
    'Percentage num/den to one decimal; NULL when num or den is suppressed (1 .. threshold-1) or den is 0.';

-- The smallest threshold the calling role must see: none for superusers and ips_admin, else the setting.
CREATE FUNCTION ips.small_cell_threshold_for_caller() RETURNS int
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = ips.caller())
                  OR (to_regrole('ips_admin') IS NOT NULL AND pg_catalog.pg_has_role(ips.caller(), 'ips_admin', 'MEMBER'))
                THEN NULL
                ELSE coalesce(ips.setting_value('small_cell_threshold')::int, 5) END
$$;
COMMENT ON FUNCTION ips.small_cell_threshold_for_caller() IS
    'The small-cell threshold that applies to the caller: NULL (no suppression) for superusers and members of ips_admin, else the setting small_cell_threshold.';

CREATE FUNCTION ips.outcomes_quarterly_for(threshold int DEFAULT NULL)
RETURNS TABLE(team_id bigint, team_name text, region text, quarter text, quarter_start date, quarter_end date,
              clients_served bigint, clients_working bigint, employment_rate numeric,
              clients_served_out_of_work bigint, clients_working_out_of_work bigint, employment_rate_out_of_work numeric,
              benchmark_minimal numeric, benchmark_average numeric, benchmark_excellent numeric, benchmark_uk numeric,
              job_starts bigint, clients_first_job bigint, median_days_to_first_job numeric, education_starts bigint,
              jobs_90_days_known bigint, jobs_retained_90_days bigint, retention_90_rate numeric,
              closures bigint, closed_stable_employment bigint, closed_client_choice bigint, closed_moved bigint,
              closed_referred_elsewhere bigint, closed_disengaged bigint, closed_deceased bigint, closed_never_engaged bigint,
              small_cell_threshold int)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off       -- the quarter series makes the estimates large; compiling costs more than running
AS $$
DECLARE
    caller_min int := ips.small_cell_threshold_for_caller();
    th int;
BEGIN
    IF threshold < 0 THEN
        RAISE EXCEPTION 'threshold % is negative', threshold
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give 0 or more, or NULL for the setting small_cell_threshold.';
    END IF;
    -- the caller may ask for more suppression, never for less than applies to them
    th := CASE WHEN caller_min IS NULL THEN threshold ELSE greatest(coalesce(threshold, 0), caller_min) END;
    IF th <= 1 THEN
        th := NULL;
    END IF;
    RETURN QUERY
    SELECT c.team_id, c.team_name, c.region, c.quarter, c.quarter_start, c.quarter_end,
           ips.suppress_count(c.served, th), ips.suppress_count(c.working, th), ips.suppress_rate(c.working, c.served, th),
           ips.suppress_count(c.served_oow, th), ips.suppress_count(c.working_oow, th),
           ips.suppress_rate(c.working_oow, c.served_oow, th),
           ips.setting_value('benchmark_employment_minimal')::numeric, ips.setting_value('benchmark_employment_average')::numeric,
           ips.setting_value('benchmark_employment_excellent')::numeric, ips.setting_value('benchmark_employment_uk')::numeric,
           ips.suppress_count(c.job_starts, th), ips.suppress_count(c.first_jobs, th),
           CASE WHEN ips.suppress_count(c.first_jobs, th) IS NULL THEN NULL ELSE c.median_days_to_first_job::numeric END,
           ips.suppress_count(c.education_starts, th),
           ips.suppress_count(c.jobs_90_known, th), ips.suppress_count(c.jobs_90_retained, th),
           ips.suppress_rate(c.jobs_90_retained, c.jobs_90_known, th),
           ips.suppress_count(c.closures, th), ips.suppress_count(c.stable_employment, th),
           ips.suppress_count(c.client_choice, th), ips.suppress_count(c.moved, th),
           ips.suppress_count(c.referred_elsewhere, th), ips.suppress_count(c.disengaged, th),
           ips.suppress_count(c.deceased, th), ips.suppress_count(c.never_engaged, th),
           th
      FROM ips.outcomes_quarterly_counts c
     ORDER BY c.team_id, c.quarter_start;
END $$;
COMMENT ON FUNCTION ips.outcomes_quarterly_for(int) IS
    'Outcomes per team and quarter with counts of 1 .. threshold-1 people suppressed (NULL), and rates and medians built on them; the caller''s own threshold (setting small_cell_threshold unless superuser or ips_admin) is the least applied.';

CREATE VIEW ips.outcomes_quarterly AS
SELECT * FROM ips.outcomes_quarterly_for(NULL);
COMMENT ON VIEW ips.outcomes_quarterly IS
    'Per team and quarter: clients served, working competitively and the employment rate (all; out of work at entry) beside the benchmarks 31/41/50 % and UK 40 %, job starts, first jobs, median days to first job, education starts, 90-day retention, closures by reason; small cells suppressed except for ips_admin.';

-- ===== extension/sql/70_analytics.sql
-- National analytics by logical replication (docs/replication.md).
--
-- A region publishes what a national analytics database needs to compute
-- fidelity and outcomes: the person-level facts under their pseudonymous keys
-- (client_id), the codes and dates, and the region's settings and rules, but no
-- free text (reasons, referral sources, names, db roles, job titles, end
-- reasons, programmes, notes), no host_ref and no demographics.  The national
-- database runs CREATE EXTENSION ips itself, then ips.prepare_analytics_subscriber(),
-- then CREATE SUBSCRIPTION as a superuser.
--
-- One list, ips.analytics_columns(), says what is published; the publisher
-- builds the publication from it and the subscriber relaxes exactly the NOT NULL
-- constraints (and defaults) of the columns it leaves out, so they arrive as NULL.

CREATE FUNCTION ips.analytics_columns()
RETURNS TABLE(table_name regclass, columns text[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.table_name::regclass, t.columns
      FROM (VALUES
        -- organisation: team names are the units analysts report on; staff without
        -- display_name, db_role and care unit
        ('ips.team',                  '{team_id,name,region,created_at}'::text[]),
        ('ips.staff',                 '{staff_id,team_id,role,fte,employment_share,weekly_hours,created_at}'),
        -- clients: the pseudonymous key only (no host_ref, birth year or municipality)
        ('ips.client',                '{client_id,created_at}'),
        ('ips.care_relationship',     '{care_relationship_id,client_id,started_on,ended_on}'),
        ('ips.consent',               '{consent_id,client_id,scope,given_on,withdrawn_on}'),
        -- employers: the key only (a sole trader''s business ID or name identifies a person)
        ('ips.employer',              '{employer_id,created_at}'),
        -- episodes and their facts: no state_reason, referral_source, history reason,
        -- actor, job title, end reason or programme
        ('ips.episode',               '{episode_id,client_id,team_id,state,state_since,referred_on,specialist_id,entry_on,held_state,career_profile_on,closed_on,close_reason,created_at,out_of_work_at_entry}'),
        ('ips.episode_state_history', '{history_id,episode_id,client_id,from_state,to_state,at,staff_id,recorded_at}'),
        ('ips.specialist_assignment', '{assignment_id,episode_id,client_id,staff_id,from_on,to_on}'),
        ('ips.contact',               '{contact_id,episode_id,client_id,staff_id,at,kind,mode,setting,minutes,recorded_at}'),
        ('ips.employer_contact',      '{employer_contact_id,staff_id,employer_id,at,in_person,episode_id,client_id,by_client,competitive,recorded_at}'),
        ('ips.job',                   '{job_id,episode_id,client_id,employer_id,starts_on,ends_on,kind,occupation,hours_per_week,recorded_at}'),
        ('ips.study',                 '{study_id,episode_id,client_id,starts_on,ends_on}'),
        ('ips.team_meeting',          '{team_meeting_id,staff_id,team_id,met_on}'),
        -- fidelity reviews: scores without reviewers'' names, roles and notes
        ('ips.fidelity_review',       '{review_id,team_id,period_start,period_end,reviewed_on,opened_at}'),
        ('ips.fidelity_rating',       '{review_id,item,score,rated_at}'),
        ('ips.fidelity_frozen',       '{review_id,item,score,source,measure}'),
        -- the region's own parameters, so that its figures are reproduced
        ('ips.setting',               '{name,value,description}'),
        ('ips.rule',                  '{code,ordinal,scope,days,count,horizon_days,enabled,label_fi,label_sv,label_en,description}')
      ) AS t(table_name, columns)
     WHERE to_regclass(t.table_name) IS NOT NULL
$$;
COMMENT ON FUNCTION ips.analytics_columns() IS
    'The tables and columns the analytics publication carries (no free text, pseudonymous keys only); read by ips.create_analytics_publication and ips.prepare_analytics_subscriber.';

CREATE FUNCTION ips.create_analytics_publication(name text DEFAULT 'ips_analytics') RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts text[];
    t record;
    missing text;
BEGIN
    PERFORM ips.require(name, 'name');
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_publication p WHERE p.pubname = create_analytics_publication.name) THEN
        RAISE EXCEPTION 'publication "%" exists already', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Drop it first (DROP PUBLICATION), or give another name.';
    END IF;
    FOR t IN SELECT a.table_name, a.columns FROM ips.analytics_columns() a LOOP
        -- every column of the list must exist (a renamed column is a decision, not a silent drop)
        SELECT string_agg(c, ', ') INTO missing
          FROM unnest(t.columns) AS c
         WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                            WHERE a.attrelid = t.table_name AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'table % has no column %', t.table_name, missing
                USING ERRCODE = 'undefined_column', HINT = 'ips.analytics_columns() and the tables disagree; update the extension.';
        END IF;
        -- UPDATE and DELETE are replicated by the primary key, which must be published
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.table_name AND i.indisprimary) THEN
            RAISE EXCEPTION 'table % has no primary key', t.table_name
                USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Published tables need a replica identity.';
        END IF;
        parts := parts || format('TABLE %s (%s)', t.table_name,
                                 (SELECT string_agg(quote_ident(c), ', ') FROM unnest(t.columns) AS c));
    END LOOP;
    EXECUTE format('CREATE PUBLICATION %I FOR %s WITH (publish = ''insert, update, delete'')',
                   name, array_to_string(parts, ', '));
    RETURN name;
END $$;
COMMENT ON FUNCTION ips.create_analytics_publication(text) IS
    'Creates a publication (PG 15 column lists) of what national analytics needs: codes, dates and pseudonymous keys, no free text. '
    'Run as the extension owner or a superuser; needs wal_level = logical. Returns the publication name.';

CREATE FUNCTION ips.prepare_analytics_subscriber() RETURNS TABLE(table_name regclass, column_name name, action text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    t record;
    c record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = current_user AND r.rolsuper) THEN
        RAISE EXCEPTION 'ips.prepare_analytics_subscriber() needs a superuser'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The subscription must be owned by a superuser as well (row-level security).';
    END IF;
    IF EXISTS (SELECT 1 FROM ips.episode) OR EXISTS (SELECT 1 FROM ips.client) THEN
        RAISE EXCEPTION 'this database holds ips data already'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Prepare a fresh database (CREATE EXTENSION ips) as the analytics subscriber.';
    END IF;
    FOR t IN SELECT a.table_name, a.columns FROM ips.analytics_columns() a LOOP
        -- A column left out of the column list arrives as its default.  Make that NULL:
        -- drop the default (a default such as ips.caller() would put the subscription
        -- owner's name where the region's reviewer was) and the NOT NULL constraint.
        FOR c IN SELECT a.attname, a.attnotnull, a.atthasdef FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = t.table_name AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.attgenerated = '' AND (a.attnotnull OR a.atthasdef) AND a.attname <> ALL (t.columns)
                  ORDER BY a.attnum LOOP
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT, ALTER COLUMN %I DROP NOT NULL',
                           t.table_name, c.attname, c.attname);
            table_name := t.table_name; column_name := c.attname;
            action := concat_ws(', ', CASE WHEN c.atthasdef THEN 'DROP DEFAULT' END, CASE WHEN c.attnotnull THEN 'DROP NOT NULL' END);
            RETURN NEXT;
        END LOOP;
    END LOOP;
    -- the region's settings and rules come with the initial copy: make room for them
    DELETE FROM ips.setting;
    table_name := 'ips.setting'::regclass; column_name := NULL; action := 'emptied (rows come from the region)';
    RETURN NEXT;
    IF to_regclass('ips.rule') IS NOT NULL THEN
        EXECUTE 'DELETE FROM ips.rule';
        table_name := 'ips.rule'::regclass; column_name := NULL; action := 'emptied (rows come from the region)';
        RETURN NEXT;
    END IF;
END $$;
COMMENT ON FUNCTION ips.prepare_analytics_subscriber() IS
    'Run once on a fresh national analytics database, before CREATE SUBSCRIPTION: drops the defaults and NOT NULL constraints of the '
    'columns the publication leaves out (they arrive as NULL) and empties ips.setting and ips.rule (the region''s rows arrive). Superuser only.';

-- ===== extension/sql/80_fhir.sql
-- HL7 FHIR R4 views of the record, for apps and for `ipsctl export --fhir`:
-- one place that maps our states and contacts to FHIR.  New in 1.1: all of it is the upgrade.

-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
-- An instant as FHIR dateTime/instant text (UTC, 'Z').
CREATE FUNCTION ips.fhir_instant(at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
           || CASE WHEN date_trunc('second', at) = at THEN '' ELSE to_char(at AT TIME ZONE 'UTC', '.US') END || 'Z'
$$;
COMMENT ON FUNCTION ips.fhir_instant(timestamptz) IS 'An instant as FHIR instant text in UTC.';

-- Our episode state as EpisodeOfCare.status.
CREATE FUNCTION ips.fhir_episode_status(state text, close_reason text DEFAULT NULL) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE state
             WHEN 'referred' THEN 'waitlist'
             WHEN 'on_hold' THEN 'onhold'
             WHEN 'closed' THEN CASE WHEN close_reason = 'never_engaged' THEN 'cancelled' ELSE 'finished' END
             ELSE 'active' END
$$;
COMMENT ON FUNCTION ips.fhir_episode_status(text, text) IS
    'EpisodeOfCare.status of a state: referred waitlist; engaged, job_search, employed, studying active; on_hold onhold; closed finished (never_engaged: cancelled).';

-- One episode as a FHIR R4 EpisodeOfCare (FI Base profile), or error P0002.
CREATE FUNCTION ips.episode_fhir(episode_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r jsonb;
BEGIN
    SELECT jsonb_strip_nulls(jsonb_build_object(
             'resourceType', 'EpisodeOfCare',
             'id', 'ips-episode-' || e.episode_id,
             'meta', jsonb_build_object('profile',
                     jsonb_build_array('https://hl7.fi/fhir/finnish-base-profiles/StructureDefinition/fi-base-episode-of-care')),
             'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:ips:episode', 'value', e.episode_id::text)),
             'status', ips.fhir_episode_status(e.state, e.close_reason),
             'statusHistory', (SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                        'status', ips.fhir_episode_status(h.to_state, h.reason),
                                        'period', jsonb_build_object('start', ips.fhir_instant(h.at),
                                                                     'end', ips.fhir_instant(h.until))))
                                      ORDER BY h.at, h.history_id)
                                 FROM (SELECT x.*, lead(x.at) OVER (ORDER BY x.at, x.history_id) AS until
                                         FROM ips.episode_state_history x WHERE x.episode_id = e.episode_id) h),
             'type', jsonb_build_array(jsonb_build_object(
                     'coding', jsonb_build_array(jsonb_build_object('system', 'urn:ips:episode-type', 'code', 'ips',
                                                                    'display', 'IPS supported employment')),
                     'text', 'IPS (Individual Placement and Support)')),
             'patient', jsonb_build_object('identifier', jsonb_build_object('system', 'urn:ips:host_ref', 'value', c.host_ref)),
             'managingOrganization', jsonb_build_object('reference', 'urn:uuid:' || md5('ips-team-' || e.team_id)::uuid,
                                                        'display', t.name),
             'period', jsonb_build_object('start', e.referred_on, 'end', e.closed_on),
             'careManager', CASE WHEN s.staff_id IS NOT NULL THEN
                             jsonb_build_object('identifier', jsonb_build_object('system', 'urn:ips:staff', 'value', s.staff_id::text),
                                                'display', s.display_name) END))
      INTO r
      FROM ips.episode e
      JOIN ips.client c ON c.client_id = e.client_id
      JOIN ips.team t ON t.team_id = e.team_id
      LEFT JOIN ips.staff s ON s.staff_id = e.specialist_id
     WHERE e.episode_id = episode_fhir.episode_id;
    IF r IS NULL THEN
        PERFORM ips.not_found('episode', episode_fhir.episode_id);
    END IF;
    RETURN r;
END $$;
COMMENT ON FUNCTION ips.episode_fhir(bigint) IS
    'The episode as an HL7 FHIR R4 EpisodeOfCare (FI Base profile): status, statusHistory, patient by host_ref, team, careManager.';

-- One contact as a FHIR R4 Encounter, or error P0002.
CREATE FUNCTION ips.encounter_fhir(contact_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r jsonb;
BEGIN
    SELECT jsonb_strip_nulls(jsonb_build_object(
             'resourceType', 'Encounter',
             'id', 'ips-contact-' || x.contact_id,
             'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:ips:contact', 'value', x.contact_id::text)),
             'status', 'finished',
             'class', jsonb_build_object('system', 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
                        'code', CASE WHEN x.mode IN ('phone', 'video', 'message') THEN 'VR'
                                     WHEN x.setting = 'community' THEN 'FLD' ELSE 'AMB' END,
                        'display', CASE WHEN x.mode IN ('phone', 'video', 'message') THEN 'virtual'
                                        WHEN x.setting = 'community' THEN 'field' ELSE 'ambulatory' END),
             'type', jsonb_build_array(jsonb_build_object(
                        'coding', jsonb_build_array(jsonb_build_object('system', 'urn:ips:contact-kind', 'code', x.kind)),
                        'text', ips.label(x.kind, 'en'))),
             'subject', jsonb_build_object('identifier', jsonb_build_object('system', 'urn:ips:host_ref', 'value', c.host_ref)),
             'episodeOfCare', jsonb_build_array(jsonb_build_object('reference', 'urn:uuid:' || md5('ips-episode-' || x.episode_id)::uuid)),
             'participant', jsonb_build_array(jsonb_build_object('individual', jsonb_build_object('identifier',
                        jsonb_build_object('system', 'urn:ips:staff', 'value', x.staff_id::text)))),
             'period', jsonb_build_object('start', ips.fhir_instant(x.at),
                        'end', ips.fhir_instant(x.at + x.minutes * interval '1 minute')),
             'length', CASE WHEN x.minutes IS NOT NULL THEN
                        jsonb_build_object('value', x.minutes, 'unit', 'min', 'system', 'http://unitsofmeasure.org', 'code', 'min') END))
      INTO r
      FROM ips.contact x JOIN ips.client c ON c.client_id = x.client_id
     WHERE x.contact_id = encounter_fhir.contact_id;
    IF r IS NULL THEN
        PERFORM ips.not_found('contact', encounter_fhir.contact_id);
    END IF;
    RETURN r;
END $$;
COMMENT ON FUNCTION ips.encounter_fhir(bigint) IS
    'A contact as an HL7 FHIR R4 Encounter (class VR/FLD/AMB, type by contact kind, linked to its EpisodeOfCare).';
-- upgrade 1.1: end

-- ===== extension/sql/90_security.sql
-- Security: roles, consent refusals, row-level security, the change log and
-- the access log.  This part comes after every other part (hence 90_), so that it can
-- grant on and put policies on every table, view and function of ips; the
-- grants and policies are derived from the catalog by ips.apply_security(),
-- which an upgrade script runs again after adding objects.

-- A client's recorded refusal to share data (also when no consent was ever given).
CREATE TABLE ips.consent_refusal (
    refusal_id  bigserial PRIMARY KEY,
    client_id   bigint NOT NULL REFERENCES ips.client,
    scope       text NOT NULL CHECK (scope IN ('share_with_care', 'employer_disclosure', 'family_contact')),
    refused_on  date NOT NULL,
    recorded_by name NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_refusal_client_idx ON ips.consent_refusal (client_id, scope);
COMMENT ON TABLE ips.consent_refusal IS 'The client''s recorded refusals of data sharing; a refusal ends a consent of its scope at once.';

-- Which team registered a client that has no episode yet (so that the team can refer it).
CREATE TABLE ips.client_intake (
    client_id     bigint PRIMARY KEY REFERENCES ips.client,
    team_id       bigint NOT NULL REFERENCES ips.team,
    registered_by name NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ips.client_intake IS 'The team whose specialist or supervisor registered a client with ips.add_client(); that team sees the client before the referral.';

-- The change log: every insert, update, delete and truncate on person-level tables.
CREATE TABLE ips.change_log (
    seq        bigint PRIMARY KEY,
    logged_at  timestamptz NOT NULL,
    db_role    name NOT NULL,
    table_name text NOT NULL,
    operation  text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    client_id  bigint,
    row_key    jsonb,
    old_row    jsonb,
    new_row    jsonb,
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL
);
COMMENT ON TABLE ips.change_log IS 'Append-only log of every change to person-level tables (who, when, table, key, old and new row), chained with SHA-256; check it with ips.verify_change_log().';
COMMENT ON COLUMN ips.change_log.seq IS 'Position in the chain: 1, 2, 3, ... without gaps.';
COMMENT ON COLUMN ips.change_log.db_role IS 'The role on whose behalf the change ran (ips.caller(), also inside SECURITY DEFINER functions).';
COMMENT ON COLUMN ips.change_log.prev_hash IS 'hash of the entry before (32 zero bytes for the first).';
COMMENT ON COLUMN ips.change_log.hash IS 'SHA-256 of the canonical content of every other column, prev_hash included.';

-- The access log: every view of a client's record through ips.client_record().
CREATE TABLE ips.access_log (
    seq         bigint PRIMARY KEY,
    accessed_at timestamptz NOT NULL,
    db_role     name NOT NULL,
    staff_id    bigint,
    client_id   bigint NOT NULL,
    purpose     text NOT NULL,
    shown       jsonb NOT NULL,
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL
);
CREATE INDEX access_log_client_idx ON ips.access_log (client_id, accessed_at);
COMMENT ON TABLE ips.access_log IS 'Append-only log of who viewed which client''s record, when, why and what was shown, chained with SHA-256; see ips.access_report().';

-- Cheap look-ups for the policy helpers.
CREATE INDEX care_relationship_unit_idx ON ips.care_relationship (unit, client_id);
CREATE INDEX episode_client_idx ON ips.episode (client_id);

-- The logs in C.
CREATE FUNCTION ips.log_seal() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_log_seal' LANGUAGE C;
COMMENT ON FUNCTION ips.log_seal() IS 'Trigger: chains a new log entry with SHA-256 (seq, prev_hash, hash); refuses UPDATE, DELETE and TRUNCATE.';
CREATE FUNCTION ips.change_log_row() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_change_log_row' LANGUAGE C;
-- upgrade 1.1: begin
COMMENT ON FUNCTION ips.change_log_row() IS 'Trigger: appends the rows a statement changed in a person-level table to ips.change_log, from the statement''s transition tables ips_old/ips_new (arguments: the key columns).';
-- upgrade 1.1: end
CREATE FUNCTION ips.log_first_break(log regclass, OUT seq bigint, OUT problem text) RETURNS record
    AS 'MODULE_PATHNAME', 'ips_log_first_break' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION ips.log_first_break(regclass) IS 'Internal: the first entry of ips.change_log or ips.access_log where the hash chain breaks, or NULL.';

CREATE TRIGGER change_log_seal BEFORE INSERT OR UPDATE OR DELETE ON ips.change_log
    FOR EACH ROW EXECUTE FUNCTION ips.log_seal();
CREATE TRIGGER change_log_no_truncate BEFORE TRUNCATE ON ips.change_log
    FOR EACH STATEMENT EXECUTE FUNCTION ips.log_seal();
CREATE TRIGGER access_log_seal BEFORE INSERT OR UPDATE OR DELETE ON ips.access_log
    FOR EACH ROW EXECUTE FUNCTION ips.log_seal();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON ips.access_log
    FOR EACH STATEMENT EXECUTE FUNCTION ips.log_seal();

CREATE FUNCTION ips.verify_change_log() RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT b.seq, b.problem FROM ips.log_first_break('ips.change_log'::regclass) b WHERE b.seq IS NOT NULL
$$;
COMMENT ON FUNCTION ips.verify_change_log() IS 'The first entry of ips.change_log where the SHA-256 chain breaks (seq, problem); no rows while the chain is intact.';

CREATE FUNCTION ips.verify_access_log() RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT b.seq, b.problem FROM ips.log_first_break('ips.access_log'::regclass) b WHERE b.seq IS NOT NULL
$$;
COMMENT ON FUNCTION ips.verify_access_log() IS 'The first entry of ips.access_log where the SHA-256 chain breaks (seq, problem); no rows while the chain is intact.';

-- Who is calling: the helpers of the policies.  Each returns an array and is
-- used as "col = ANY ((SELECT ips.f())::bigint[])", so that it runs once per statement
-- (an InitPlan), not once per row.  They run as definer, to read the staff,
-- episode, care relationship and consent rows that the policies are about.  They
-- are in C (extension/security_policy.c): each query is prepared once per backend,
-- so a call is one execution of a kept plan (a SECURITY DEFINER SQL function cannot
-- be inlined and its body was parsed and planned again at every call site of
-- every statement).

-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
CREATE OR REPLACE FUNCTION ips.my_teams() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_my_teams' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.my_teams() IS 'Policy helper: the team of the calling specialist or supervisor (empty for anyone else).';

CREATE OR REPLACE FUNCTION ips.team_staff() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_team_staff' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.team_staff() IS 'Policy helper: the staff of the caller''s team.';

CREATE OR REPLACE FUNCTION ips.team_episodes() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_team_episodes' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.team_episodes() IS 'Policy helper: the episodes (open and closed) of the caller''s team.';

CREATE OR REPLACE FUNCTION ips.team_reviews() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_team_reviews' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.team_reviews() IS 'Policy helper: the fidelity reviews of the caller''s team.';

CREATE OR REPLACE FUNCTION ips.team_clients() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_team_clients' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.team_clients() IS 'Policy helper: the clients with an episode in the caller''s team, or registered by it.';

CREATE OR REPLACE FUNCTION ips.shared_clients() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_shared_clients' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.shared_clients() IS
    'Policy helper: the clients whom the calling clinician''s unit cares for today and who consent (share_with_care) to sharing with it.';
-- upgrade 1.1: end

-- The roles.
CREATE FUNCTION ips.create_roles() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('ips_admin',      'ips: manages settings and reference data, reads the change and access logs'),
        ('ips_supervisor', 'ips: IPS supervisor; reads and writes the records of the own team, manages its reviews'),
        ('ips_specialist', 'ips: employment specialist; reads and writes the records of the own team'),
        ('ips_clinician',  'ips: care team member; reads a client''s record while the unit cares for the client and the client consents'),
        ('ips_analyst',    'ips: analyst; aggregate views only, no person-level rows')) AS v(name, note)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r.name);
                EXECUTE format('COMMENT ON ROLE %I IS %L', r.name, r.note);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;   -- created at the same moment by CREATE EXTENSION in another database
            END;
        END IF;
    END LOOP;
    PERFORM ips.apply_security();
END $$;
COMMENT ON FUNCTION ips.create_roles() IS
    'Makes sure the group roles ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst exist (NOLOGIN), then re-applies the grants and policies; idempotent.';

-- Grants, policies and change-log triggers, derived from the catalog.
-- upgrade 1.1: begin (this definition is also the 1.0 -> 1.1 upgrade; see the Makefile)
CREATE OR REPLACE FUNCTION ips.apply_security() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    all_roles   constant text := 'ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst';
    staff_roles constant text := 'ips_admin, ips_supervisor, ips_specialist, ips_clinician';
    -- views of aggregates that keep the owner's rights: the only person-derived data analysts read
    aggregate_views constant text[] := '{caseload,outcomes_quarterly}';
    -- tables with their own rules below
    special constant text[] := '{change_log,access_log,client,client_intake,episode,episode_state_history,employer_contact,contact,team_meeting,team,staff,employer,host_attachment}';
    -- SECURITY DEFINER functions and who may call them; other definer functions: staff_roles
    -- (outcomes_quarterly_for applies at least the caller's small-cell threshold itself)
    definer_grants constant jsonb := '{
        "create_roles": "", "current_staff": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "my_teams": "ips_supervisor, ips_specialist, ips_clinician", "team_staff": "ips_supervisor, ips_specialist, ips_clinician",
        "team_episodes": "ips_supervisor, ips_specialist, ips_clinician", "team_clients": "ips_supervisor, ips_specialist, ips_clinician",
        "shared_clients": "ips_supervisor, ips_specialist, ips_clinician", "team_reviews": "ips_supervisor, ips_specialist",
        "add_client": "ips_supervisor, ips_specialist", "refuse_consent": "ips_admin, ips_supervisor, ips_specialist, ips_clinician",
        "log_access": "ips_supervisor, ips_specialist, ips_clinician", "access_report": "ips_admin, ips_supervisor",
        "outcomes_quarterly_for": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "small_cell_threshold_for_caller": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst"}';
    -- invoker functions that only the owner (a superuser) runs
    owner_only constant text[] := '{apply_security,attach_host_table,detach_host_table,reattach_host_tables,create_analytics_publication,prepare_analytics_subscriber}';
    ips_ns constant oid := 'ips'::regnamespace;
    t record;
    f record;
    s record;
    has_client boolean;
    has_episode boolean;
    has_team boolean;
    has_review boolean;
    team_pred text;
    key_cols text;
    roles text;
BEGIN
    -- PUBLIC has no rights on anything of ips; the five roles get theirs below.
    EXECUTE 'REVOKE ALL ON SCHEMA ips FROM PUBLIC';
    EXECUTE 'GRANT USAGE ON SCHEMA ips TO ' || all_roles;
    EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA ips FROM PUBLIC, ' || all_roles;
    EXECUTE 'REVOKE ALL ON ALL SEQUENCES IN SCHEMA ips FROM PUBLIC, ' || all_roles;
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ips FROM PUBLIC, ' || all_roles;
    FOR s IN SELECT ty.oid::regtype AS name FROM pg_catalog.pg_type ty
              WHERE ty.typnamespace = ips_ns AND ty.typtype IN ('b', 'd', 'e', 'r', 'm') AND ty.typcategory <> 'A'
    LOOP
        EXECUTE format('REVOKE ALL ON TYPE %s FROM PUBLIC', s.name);
        EXECUTE format('GRANT USAGE ON TYPE %s TO %s', s.name, all_roles);
    END LOOP;

    -- Tables.
    FOR t IN SELECT c.oid, c.relname FROM pg_catalog.pg_class c
              WHERE c.relnamespace = ips_ns AND c.relkind IN ('r', 'p') ORDER BY c.relname
    LOOP
        SELECT bool_or(a.attname = 'client_id'), bool_or(a.attname = 'episode_id'), bool_or(a.attname = 'team_id'),
               bool_or(a.attname = 'review_id')
          INTO has_client, has_episode, has_team, has_review
          FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped;
        SELECT string_agg(quote_literal(a.attname), ', ' ORDER BY k.ord) INTO key_cols
          FROM pg_catalog.pg_index i
          CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
         WHERE i.indrelid = t.oid AND i.indisprimary;

        -- drop the policies this function made before, so that it can run again
        FOR s IN SELECT p.polname FROM pg_catalog.pg_policy p WHERE p.polrelid = t.oid AND p.polname LIKE 'ips\_%' LOOP
            EXECUTE format('DROP POLICY %I ON ips.%I', s.polname, t.relname);
        END LOOP;

        IF t.relname IN ('change_log', 'access_log') THEN
            -- written only by the C triggers and ips.log_access(); read by ips_admin
            EXECUTE format('GRANT SELECT ON ips.%I TO ips_admin', t.relname);
            CONTINUE;
        ELSIF has_client OR has_episode THEN
            -- person-level: the team's rows for specialists and supervisors; shared clients for clinicians
            team_pred := CASE
                WHEN t.relname = 'episode' THEN 'team_id = ANY ((SELECT ips.my_teams())::bigint[])'
                WHEN has_episode AND t.relname <> 'employer_contact' THEN 'episode_id = ANY ((SELECT ips.team_episodes())::bigint[])'
                ELSE 'client_id = ANY ((SELECT ips.team_clients())::bigint[])' END;
            EXECUTE format('ALTER TABLE ips.%I ENABLE ROW LEVEL SECURITY', t.relname);
            IF t.relname = 'employer_contact' THEN
                -- the job-development log: the team's own contacts, on behalf of a client of the team or of none
                EXECUTE 'CREATE POLICY ips_team_read ON ips.employer_contact FOR SELECT TO ips_specialist, ips_supervisor'
                     || ' USING (staff_id = ANY ((SELECT ips.team_staff())::bigint[]) OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[]))';
                EXECUTE 'CREATE POLICY ips_team_write ON ips.employer_contact FOR INSERT TO ips_specialist, ips_supervisor'
                     || ' WITH CHECK (staff_id = ANY ((SELECT ips.team_staff())::bigint[])'
                     || ' AND (episode_id IS NULL OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[])))';
                EXECUTE 'CREATE POLICY ips_team_update ON ips.employer_contact FOR UPDATE TO ips_specialist, ips_supervisor'
                     || ' USING (staff_id = ANY ((SELECT ips.team_staff())::bigint[]))'
                     || ' WITH CHECK (staff_id = ANY ((SELECT ips.team_staff())::bigint[])'
                     || ' AND (episode_id IS NULL OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[])))';
            ELSE
                EXECUTE format('CREATE POLICY ips_team ON ips.%I TO ips_specialist, ips_supervisor USING (%s) WITH CHECK (%s)',
                               t.relname, team_pred, team_pred);
            END IF;
            IF has_client THEN
                EXECUTE format('CREATE POLICY ips_care_read ON ips.%I FOR SELECT TO ips_clinician'
                               ' USING (client_id = ANY ((SELECT ips.shared_clients())::bigint[]))', t.relname);
                EXECUTE format('GRANT SELECT ON ips.%I TO ips_clinician', t.relname);
            END IF;
            IF t.relname = 'contact' THEN
                -- clinicians record their own care-team contacts for the clients shared with them
                EXECUTE 'CREATE POLICY ips_care_contact ON ips.contact FOR INSERT TO ips_clinician'
                     || ' WITH CHECK (kind = ''care_team'' AND staff_id = ips.current_staff()'
                     || ' AND client_id = ANY ((SELECT ips.shared_clients())::bigint[]))';
                EXECUTE 'GRANT INSERT ON ips.contact TO ips_clinician';
            END IF;
            roles := CASE t.relname
                WHEN 'client' THEN 'SELECT, UPDATE'              -- registered by ips.add_client()
                WHEN 'client_intake' THEN 'SELECT'               -- written by a trigger on ips.client
                WHEN 'episode_state_history' THEN 'SELECT, INSERT' -- appended by the state machine
                ELSE 'SELECT, INSERT, UPDATE' END;
            EXECUTE format('GRANT %s ON ips.%I TO ips_specialist, ips_supervisor', roles, t.relname);
        ELSIF has_team AND NOT t.relname = ANY (special) THEN
            -- team-level (reviews and the like): the team reads, its supervisors manage, ips_admin all
            EXECUTE format('ALTER TABLE ips.%I ENABLE ROW LEVEL SECURITY', t.relname);
            EXECUTE format('CREATE POLICY ips_team_read ON ips.%I FOR SELECT TO ips_specialist, ips_supervisor'
                           ' USING (team_id = ANY ((SELECT ips.my_teams())::bigint[]))', t.relname);
            EXECUTE format('CREATE POLICY ips_team_manage ON ips.%I TO ips_supervisor'
                           ' USING (team_id = ANY ((SELECT ips.my_teams())::bigint[])) WITH CHECK (team_id = ANY ((SELECT ips.my_teams())::bigint[]))',
                           t.relname);
            EXECUTE format('CREATE POLICY ips_admin_all ON ips.%I TO ips_admin USING (true) WITH CHECK (true)', t.relname);
            EXECUTE format('GRANT SELECT ON ips.%I TO ips_specialist', t.relname);
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ips.%I TO ips_supervisor, ips_admin', t.relname);
        ELSIF has_review AND t.relname <> 'fidelity_review' THEN
            -- parts of a fidelity review (ratings, reviewers, actions, results): as the review
            EXECUTE format('ALTER TABLE ips.%I ENABLE ROW LEVEL SECURITY', t.relname);
            EXECUTE format('CREATE POLICY ips_team_read ON ips.%I FOR SELECT TO ips_specialist, ips_supervisor'
                           ' USING (review_id = ANY ((SELECT ips.team_reviews())::bigint[]))', t.relname);
            EXECUTE format('CREATE POLICY ips_team_manage ON ips.%I TO ips_supervisor'
                           ' USING (review_id = ANY ((SELECT ips.team_reviews())::bigint[]))'
                           ' WITH CHECK (review_id = ANY ((SELECT ips.team_reviews())::bigint[]))', t.relname);
            EXECUTE format('CREATE POLICY ips_admin_all ON ips.%I TO ips_admin USING (true) WITH CHECK (true)', t.relname);
            EXECUTE format('GRANT SELECT ON ips.%I TO ips_specialist', t.relname);
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ips.%I TO ips_supervisor, ips_admin', t.relname);
        ELSIF t.relname = 'team_meeting' THEN
            -- attendance: the team reads; a specialist records their own
            EXECUTE 'ALTER TABLE ips.team_meeting ENABLE ROW LEVEL SECURITY';
            EXECUTE 'CREATE POLICY ips_team_read ON ips.team_meeting FOR SELECT TO ips_specialist, ips_supervisor'
                 || ' USING (team_id = ANY ((SELECT ips.my_teams())::bigint[]))';
            EXECUTE 'CREATE POLICY ips_own_meeting ON ips.team_meeting FOR INSERT TO ips_specialist, ips_supervisor'
                 || ' WITH CHECK (staff_id = ips.current_staff() AND team_id = ANY ((SELECT ips.my_teams())::bigint[]))';
            EXECUTE 'GRANT SELECT, INSERT ON ips.team_meeting TO ips_specialist, ips_supervisor';
        ELSIF t.relname = 'host_attachment' THEN
            EXECUTE 'GRANT SELECT ON ips.host_attachment TO ips_admin';
        ELSE
            -- reference data: the ips roles read (analysts not the staff list), ips_admin writes
            EXECUTE format('GRANT SELECT ON ips.%I TO %s', t.relname,
                           CASE WHEN t.relname = 'staff' THEN staff_roles ELSE all_roles END);
            EXECUTE format('GRANT INSERT, UPDATE, DELETE ON ips.%I TO ips_admin', t.relname);
            IF t.relname = 'employer' THEN
                -- job development: specialists and supervisors add and update employers
                EXECUTE 'GRANT INSERT, UPDATE ON ips.employer TO ips_specialist, ips_supervisor';
            END IF;
        END IF;

        -- every change of person-level, team-level and staff rows goes to the change log
        IF has_client OR has_episode OR has_team OR has_review THEN
            -- one trigger per event, per statement, over the transition tables: a statement
            -- changing many rows (COPY, a bulk UPDATE) appends its entries with one INSERT
            -- (1.0 had one row trigger, zz_change_log, for all three events)
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid = t.oid AND g.tgname = 'zz_change_log') THEN
                EXECUTE format('DROP TRIGGER zz_change_log ON ips.%I', t.relname);
            END IF;
            EXECUTE format('CREATE OR REPLACE TRIGGER zz_change_log_insert AFTER INSERT ON ips.%I'
                           ' REFERENCING NEW TABLE AS ips_new'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION ips.change_log_row(%s)', t.relname, coalesce(key_cols, ''));
            EXECUTE format('CREATE OR REPLACE TRIGGER zz_change_log_update AFTER UPDATE ON ips.%I'
                           ' REFERENCING OLD TABLE AS ips_old NEW TABLE AS ips_new'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION ips.change_log_row(%s)', t.relname, coalesce(key_cols, ''));
            EXECUTE format('CREATE OR REPLACE TRIGGER zz_change_log_delete AFTER DELETE ON ips.%I'
                           ' REFERENCING OLD TABLE AS ips_old'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION ips.change_log_row(%s)', t.relname, coalesce(key_cols, ''));
            EXECUTE format('CREATE OR REPLACE TRIGGER zz_change_log_truncate AFTER TRUNCATE ON ips.%I'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION ips.change_log_row()', t.relname);
        END IF;

        -- the sequences of a table: for whoever inserts into it
        FOR s IN SELECT q.oid::regclass AS name FROM pg_catalog.pg_class q
                   JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = q.oid
                                              AND d.refobjid = t.oid AND d.deptype IN ('a', 'i')
                  WHERE q.relkind = 'S'
        LOOP
            SELECT string_agg(r, ', ') INTO roles FROM unnest('{ips_admin,ips_supervisor,ips_specialist,ips_clinician}'::text[]) r
             WHERE pg_catalog.has_table_privilege(r, t.oid, 'INSERT');
            IF roles IS NOT NULL THEN
                EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %s', s.name, roles);
            END IF;
        END LOOP;
    END LOOP;

    -- Views: aggregates keep the owner's rights and are the analysts' only data;
    -- every other view runs with the caller's rights, so that row-level security applies.
    FOR t IN SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace = ips_ns AND c.relkind IN ('v', 'm')
    LOOP
        IF t.relname = ANY (aggregate_views) THEN
            EXECUTE format('GRANT SELECT ON ips.%I TO %s', t.relname, all_roles);
        ELSE
            EXECUTE format('ALTER VIEW ips.%I SET (security_invoker = true)', t.relname);
            EXECUTE format('GRANT SELECT ON ips.%I TO %s', t.relname, staff_roles);
            EXECUTE format('GRANT INSERT, UPDATE, DELETE ON ips.%I TO ips_admin', t.relname);
        END IF;
    END LOOP;

    -- Functions: invoker functions for every ips role (the table privileges and
    -- policies decide); definer functions as listed; trigger functions for nobody.
    FOR f IN SELECT p.oid::regprocedure AS sig, p.proname, p.prosecdef, p.prorettype = 'pg_catalog.trigger'::regtype AS is_trigger
               FROM pg_catalog.pg_proc p WHERE p.pronamespace = ips_ns
    LOOP
        IF f.is_trigger OR f.proname = ANY (owner_only) THEN
            CONTINUE;
        ELSIF f.prosecdef THEN
            roles := coalesce(definer_grants ->> f.proname::text, staff_roles);
        ELSIF f.proname IN ('verify_change_log', 'verify_access_log', 'log_first_break') THEN
            roles := 'ips_admin';
        ELSE
            roles := all_roles;
        END IF;
        IF roles <> '' THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f.sig, roles);
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION ips.apply_security() IS
    'Internal: revokes everything from PUBLIC and grants to the ips roles, enables row-level security with its policies, and puts the change-log trigger on person-level tables; derived from the catalog, idempotent.';
-- upgrade 1.1: end

-- Registration: the registering team sees the client until (and after) it refers it.
CREATE FUNCTION ips.client_intake_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO ips.client_intake (client_id, team_id, registered_by)
    SELECT NEW.client_id, s.team_id, ips.caller()
      FROM ips.staff s WHERE s.db_role = ips.caller() AND s.role IN ('specialist', 'supervisor');
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ips.client_intake_record() IS 'Trigger: records which team registered a new client.';
CREATE TRIGGER client_intake AFTER INSERT ON ips.client
    FOR EACH ROW EXECUTE FUNCTION ips.client_intake_record();

-- A new client is not yet visible to anyone through row-level security, so
-- registering one runs as definer (the insert is logged with the caller's role).
ALTER FUNCTION ips.add_client(text, int, text) SECURITY DEFINER;

-- Raise 42501 unless the caller may see the client (definer functions use it).
CREATE FUNCTION ips.require_visible_client(client_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(client_id, 'client_id');
    IF NOT EXISTS (SELECT 1 FROM ips.client c WHERE c.client_id = require_visible_client.client_id)
       OR NOT (pg_catalog.pg_has_role(ips.caller(), 'ips_admin', 'USAGE')
               OR require_visible_client.client_id = ANY (ips.team_clients())
               OR require_visible_client.client_id = ANY (ips.shared_clients())) THEN
        PERFORM ips.not_found('client', client_id);
    END IF;
END $$;
COMMENT ON FUNCTION ips.require_visible_client(bigint) IS
    'Internal: raises P0002 "no client with id" unless the client exists and the caller (ips_admin, its team, a clinician it shares with) may see it.';

CREATE FUNCTION ips.refuse_consent(client_id bigint, scope text, refused_on date) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.check_code('consent_scope', scope, 'consent scope');
    PERFORM ips.require(refused_on, 'refused_on');
    IF refused_on > ips.local_date(now()) THEN
        RAISE EXCEPTION 'refusal date % is in the future', refused_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record a refusal when the client has said it.';
    END IF;
    PERFORM ips.require_visible_client(refuse_consent.client_id);
    UPDATE ips.consent c SET withdrawn_on = greatest(c.given_on, refuse_consent.refused_on)
     WHERE c.client_id = refuse_consent.client_id AND c.scope = refuse_consent.scope AND c.withdrawn_on IS NULL;
    INSERT INTO ips.consent_refusal (client_id, scope, refused_on, recorded_by)
    VALUES (refuse_consent.client_id, refuse_consent.scope, refuse_consent.refused_on, ips.caller())
    RETURNING refusal_id INTO id;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.refuse_consent(bigint, text, date) IS
    'Records the client''s refusal to share data of a scope (share_with_care, ...); ends a consent of that scope at once. Returns the refusal id.';

-- Append to the access log (internal; ips.client_record() calls it).
CREATE FUNCTION ips.log_access(client_id bigint, purpose text, shown jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require_visible_client(log_access.client_id);
    PERFORM ips.require(purpose, 'purpose');
    INSERT INTO ips.access_log (accessed_at, db_role, staff_id, client_id, purpose, shown)
    VALUES (now(), ips.caller(), ips.current_staff(), log_access.client_id, log_access.purpose,
            coalesce(log_access.shown, '{}'));
END $$;
COMMENT ON FUNCTION ips.log_access(bigint, text, jsonb) IS 'Internal: appends an access to ips.access_log (the caller''s role and staff id, now).';

CREATE FUNCTION ips.client_record(client_id bigint, purpose text) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c ips.client;
    e ips.episode;
    today date := ips.local_date(now());
    rec jsonb;
    alerts jsonb;
BEGIN
    PERFORM ips.require(client_id, 'client_id');
    PERFORM ips.require(purpose, 'purpose');
    IF btrim(purpose) = '' OR length(purpose) > 500 THEN
        RAISE EXCEPTION 'purpose "%" is not a usable reason', purpose
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Say why the record is opened, e.g. ''weekly review'' or ''care team meeting'' (1 to 500 characters).';
    END IF;
    -- row-level security decides what the caller sees
    SELECT * INTO c FROM ips.client x WHERE x.client_id = client_record.client_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('client', client_record.client_id);
    END IF;
    SELECT * INTO e FROM ips.episode x WHERE x.client_id = c.client_id
     ORDER BY x.state = 'closed', x.referred_on DESC, x.episode_id DESC LIMIT 1;
    rec := jsonb_build_object(
        'client', jsonb_build_object('client_id', c.client_id, 'host_ref', c.host_ref,
                                     'birth_year', c.birth_year, 'municipality', c.municipality),
        'episode', CASE WHEN e.episode_id IS NOT NULL THEN to_jsonb(e) END,
        'state_history', (SELECT coalesce(jsonb_agg(jsonb_build_object('from_state', h.from_state, 'to_state', h.to_state,
                                                                       'at', h.at, 'reason', h.reason, 'actor', h.actor)
                                                    ORDER BY h.at, h.history_id), '[]')
                            FROM ips.episode_state_history h WHERE h.episode_id = e.episode_id),
        'current_job', (SELECT to_jsonb(j) FROM ips.job j
                         WHERE j.episode_id = e.episode_id AND j.starts_on <= today
                           AND (j.ends_on IS NULL OR j.ends_on >= today)
                         ORDER BY j.starts_on DESC, j.job_id DESC LIMIT 1),
        'recent_contacts', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.at DESC, r.contact_id DESC), '[]')
                              FROM (SELECT x.contact_id, x.at, x.kind, x.mode, x.setting, x.minutes, x.staff_id
                                      FROM ips.contact x WHERE x.episode_id = e.episode_id
                                     ORDER BY x.at DESC, x.contact_id DESC LIMIT 20) r),
        'consents', (SELECT coalesce(jsonb_agg(jsonb_build_object('scope', k.scope, 'given_on', k.given_on,
                                                                  'withdrawn_on', k.withdrawn_on)
                                               ORDER BY k.given_on, k.consent_id), '[]')
                       FROM ips.consent k WHERE k.client_id = c.client_id),
        'refusals', (SELECT coalesce(jsonb_agg(jsonb_build_object('scope', k.scope, 'refused_on', k.refused_on)
                                               ORDER BY k.refused_on, k.refusal_id), '[]')
                       FROM ips.consent_refusal k WHERE k.client_id = c.client_id));
    IF e.episode_id IS NOT NULL AND to_regprocedure('ips.episode_alerts(bigint,date)') IS NOT NULL THEN
        SELECT coalesce(jsonb_agg(to_jsonb(a)), '[]') INTO alerts FROM ips.episode_alerts(e.episode_id, today) a;
        rec := rec || jsonb_build_object('open_alerts', alerts);
    END IF;
    PERFORM ips.log_access(c.client_id, purpose,
                           jsonb_build_object('episode_id', e.episode_id,
                                              'sections', (SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys(rec) k),
                                              'contacts', jsonb_array_length(rec -> 'recent_contacts')));
    RETURN rec;
END $$;
COMMENT ON FUNCTION ips.client_record(bigint, text) IS
    'The shared record of a client as jsonb (client, episode, state history, current job, recent contacts, open alerts, consents), as far as the caller may see it; logged in ips.access_log.';

CREATE FUNCTION ips.access_report(client_id bigint, from_on date DEFAULT NULL, to_on date DEFAULT NULL)
RETURNS TABLE (accessed_at timestamptz, db_role name, staff_id bigint, purpose text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(access_report.client_id, 'client_id');
    IF from_on > to_on THEN
        RAISE EXCEPTION 'period % .. % ends before it starts', from_on, to_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give from_on on or before to_on, or leave either NULL.';
    END IF;
    IF pg_catalog.pg_has_role(ips.caller(), 'ips_admin', 'USAGE') THEN
        NULL;   -- handles the clients' requests
    ELSIF pg_catalog.pg_has_role(ips.caller(), 'ips_supervisor', 'USAGE') THEN
        IF NOT access_report.client_id = ANY (ips.team_clients()) THEN
            PERFORM ips.not_found('client', access_report.client_id);
        END IF;
    ELSE
        RAISE EXCEPTION 'permission denied for the access report'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The access report is for ips_admin, and for the supervisor of the client''s team.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ips.client c WHERE c.client_id = access_report.client_id) THEN
        PERFORM ips.not_found('client', access_report.client_id);
    END IF;
    RETURN QUERY
        SELECT a.accessed_at, a.db_role, a.staff_id, a.purpose
          FROM ips.access_log a
         WHERE a.client_id = access_report.client_id
           AND (from_on IS NULL OR a.accessed_at >= ips.local_midnight(from_on))
           AND (to_on IS NULL OR a.accessed_at < ips.local_midnight(to_on + 1))
         ORDER BY a.seq;
END $$;
COMMENT ON FUNCTION ips.access_report(bigint, date, date) IS
    'Who used the client''s IPS record, when and why, in a period of local days (Act 703/2023); for ips_admin and the supervisor of the client''s team.';

-- pg_dump keeps the rows of the new tables.
SELECT pg_catalog.pg_extension_config_dump('ips.consent_refusal', '');
SELECT pg_catalog.pg_extension_config_dump('ips.consent_refusal_refusal_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.client_intake', '');
SELECT pg_catalog.pg_extension_config_dump('ips.change_log', '');
SELECT pg_catalog.pg_extension_config_dump('ips.access_log', '');

-- The roles, grants and policies.  CREATE EXTENSION runs as a superuser and
-- grants can only name roles that exist, so the install creates the group
-- roles itself (idempotent: roles are shared by all databases of the cluster).
SELECT ips.create_roles();
