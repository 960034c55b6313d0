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
    ('job_payer',     '{kela,pension_insurer,employment_services}'),
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
    ('close_reason', 'moved',             'muutti pois', 'flyttat bort', 'moved away'),
    ('close_reason', 'referred_elsewhere','ohjattu muualle', 'hänvisad till annan tjänst', 'referred elsewhere'),
    ('close_reason', 'disengaged',        'yhteys katkesi', 'kontakten upphörde', 'disengaged'),
    ('close_reason', 'deceased',          'kuollut', 'avliden', 'deceased'),
    ('close_reason', 'never_engaged',     'ei aloittanut', 'påbörjade aldrig', 'never engaged'),
    ('contact_kind', 'client',              'asiakaskontakti', 'klientkontakt', 'client contact'),
    ('contact_kind', 'employer_for_client', 'työnantajakontakti asiakkaan puolesta', 'arbetsgivarkontakt för klienten', 'employer contact for the client'),
    ('contact_kind', 'care_team',           'yhteydenpito hoitotahoon', 'kontakt med vårdteamet', 'care team contact'),
    ('contact_kind', 'benefits_counseling', 'etuusneuvonta', 'förmånsrådgivning', 'benefits counselling'),
    ('contact_kind', 'outreach_attempt',    'tavoittamisyritys', 'kontaktförsök', 'outreach attempt'),
    ('contact_kind', 'family',              'yhteydenpito läheisiin', 'kontakt med närstående', 'family contact'),
    ('contact_mode', 'in_person', 'kasvokkain', 'personligen', 'in person'),
    ('contact_mode', 'phone',     'puhelin', 'telefon', 'phone'),
    ('contact_mode', 'video',     'videoyhteys', 'video', 'video'),
    ('contact_mode', 'message',   'viesti', 'meddelande', 'message'),
    ('contact_setting', 'community', 'toimiston ulkopuolella', 'utanför kontoret', 'in the community'),
    ('contact_setting', 'office',    'toimistolla', 'på kontoret', 'at the office'),
    ('job_kind', 'competitive',     'avoimien työmarkkinoiden työ', 'arbete på den öppna arbetsmarknaden', 'competitive job'),
    ('job_kind', 'wage_subsidy',    'palkkatukityö', 'lönesubventionerat arbete', 'wage-subsidised job'),
    ('job_kind', 'self_employed',   'oma yritys', 'eget företag', 'self-employment'),
    ('job_kind', 'work_trial',      'työkokeilu', 'arbetsprövning', 'work trial'),
    ('job_kind', 'paid_work_trial', 'palkallinen työkokeilu', 'avlönad arbetsprövning', 'paid work trial'),
    ('job_payer', 'kela', 'Kela', 'FPA', 'Kela (social insurance)'),
    ('job_payer', 'pension_insurer', 'työeläkevakuuttaja (kuntoutusraha)', 'arbetspensionsförsäkrare (rehabiliteringspenning)', 'earnings-related pension insurer (rehabilitation allowance)'),
    ('job_payer', 'employment_services', 'TE-palvelut / työllisyyspalvelut', 'TE-tjänster / sysselsättningstjänster', 'TE office / employment services'),
    ('staff_role', 'specialist', 'työhönvalmentaja', 'arbetstränare', 'employment specialist'),
    ('staff_role', 'supervisor', 'IPS-tiiminvetäjä', 'IPS-teamledare', 'IPS team leader'),
    ('staff_role', 'clinician',  'hoitotiimin jäsen', 'medlem i vårdteamet', 'clinician'),
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

-- A number as people read it in a language: a decimal comma in fi and sv, a point in en.
CREATE FUNCTION ips.number_text(x numeric, lang text DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN ips.language(number_text.lang) IN ('fi', 'sv') THEN replace(x::text, '.', ',') ELSE x::text END
$$;
COMMENT ON FUNCTION ips.number_text(numeric, text) IS 'A number as text in fi, sv or en (default ips.language): decimal comma in fi and sv, point in en.';

-- A setting's value (internal).
CREATE FUNCTION ips.setting_value(setting_name text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT value FROM ips.setting WHERE name = setting_name
$$;
COMMENT ON FUNCTION ips.setting_value(text) IS 'The value of one row of ips.setting.';

-- The region's local date of an instant, and the instant a local day starts:
-- in C (lookup.c), which reads the time zone setting once per snapshot
-- instead of once per call.
CREATE OR REPLACE FUNCTION ips.local_date(at timestamptz) RETURNS date
AS 'MODULE_PATHNAME', 'ips_local_date' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION ips.local_midnight(day date) RETURNS timestamptz
AS 'MODULE_PATHNAME', 'ips_local_midnight' LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ips.local_date(timestamptz) IS 'The calendar day of an instant in the region''s time zone (setting time_zone).';
COMMENT ON FUNCTION ips.local_midnight(date) IS 'The instant a calendar day starts in the region''s time zone.';

-- Raise a clear error unless code is one of the category's codes (internal; in C, lookup.c).
CREATE OR REPLACE FUNCTION ips.check_code(category text, code text, what text) RETURNS void
AS 'MODULE_PATHNAME', 'ips_check_code' LANGUAGE C STABLE;
COMMENT ON FUNCTION ips.check_code(text, text, text) IS 'Internal: raises 22023 with the valid codes as hint unless code belongs to category; 22004 when code is NULL.';

-- Raise "no such ..." for an unknown id (internal).
CREATE FUNCTION ips.not_found(what text, id bigint) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'the % id must not be NULL', what
            USING ERRCODE = 'null_value_not_allowed', HINT = format('Give the id of the %s.', what);
    END IF;
    RAISE EXCEPTION 'no % with id %', what, id
        USING ERRCODE = 'no_data_found',
              HINT = format('Check the %s id; the caller may also lack the right to see it.', what);
END $$;
COMMENT ON FUNCTION ips.not_found(text, bigint) IS 'Internal: raises P0002 for an unknown or invisible id, 22004 for a NULL one.';
