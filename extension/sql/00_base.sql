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

-- Controlled vocabularies: the codes that tables and functions accept, defined once here.
-- Partitioned by category: each category's partition (ips.vocabulary_state, ...) is what
-- the columns holding its codes reference by foreign key (docs/records.md, "Vocabulary").
-- Only the extension's owner changes the rows (the ips roles read them); a region adds no
-- codes, as the rules, the state machine and the fidelity measures give each code its
-- meaning, so the rows come from this script and are not dumped (no pg_extension_config_dump).
CREATE TABLE ips.vocabulary (
    category text NOT NULL,
    code     text NOT NULL,
    ordinal  int  NOT NULL,
    PRIMARY KEY (category, code)
) PARTITION BY LIST (category);
COMMENT ON TABLE ips.vocabulary IS
    'The codes ips accepts, per category (state, close_reason, contact_kind, contact_mode, contact_setting, job_kind, job_payer, staff_role, consent_scope), in their order; one partition per category, referenced by the columns that hold its codes. Labels: ips.label_text, ips.vocabulary_labels.';
COMMENT ON COLUMN ips.vocabulary.ordinal IS 'Order of the code within its category (hints, lists, ipsctl).';
CREATE TABLE ips.vocabulary_state PARTITION OF ips.vocabulary (UNIQUE (code)) FOR VALUES IN ('state');
CREATE TABLE ips.vocabulary_close_reason PARTITION OF ips.vocabulary (UNIQUE (code)) FOR VALUES IN ('close_reason');
CREATE TABLE ips.vocabulary_contact_kind PARTITION OF ips.vocabulary (UNIQUE (code)) FOR VALUES IN ('contact_kind');
CREATE TABLE ips.vocabulary_contact_mode PARTITION OF ips.vocabulary (UNIQUE (code)) FOR VALUES IN ('contact_mode');
CREATE TABLE ips.vocabulary_contact_setting PARTITION OF ips.vocabulary (UNIQUE (code)) FOR VALUES IN ('contact_setting');
CREATE TABLE ips.vocabulary_job_kind PARTITION OF ips.vocabulary (UNIQUE (code)) FOR VALUES IN ('job_kind');
CREATE TABLE ips.vocabulary_job_payer PARTITION OF ips.vocabulary (UNIQUE (code)) FOR VALUES IN ('job_payer');
CREATE TABLE ips.vocabulary_staff_role PARTITION OF ips.vocabulary (UNIQUE (code)) FOR VALUES IN ('staff_role');
CREATE TABLE ips.vocabulary_consent_scope PARTITION OF ips.vocabulary (UNIQUE (code)) FOR VALUES IN ('consent_scope');
COMMENT ON TABLE ips.vocabulary_state IS 'Episode states (partition of ips.vocabulary): referenced by ips.episode, ips.episode_state_history and ips.state_transition.';
COMMENT ON TABLE ips.vocabulary_close_reason IS 'Closing reasons (partition of ips.vocabulary): referenced by ips.episode.close_reason.';
COMMENT ON TABLE ips.vocabulary_contact_kind IS 'Contact kinds (partition of ips.vocabulary): referenced by ips.contact_form.';
COMMENT ON TABLE ips.vocabulary_contact_mode IS 'Contact modes (partition of ips.vocabulary): referenced by ips.contact_form.';
COMMENT ON TABLE ips.vocabulary_contact_setting IS 'Contact settings (partition of ips.vocabulary): referenced by ips.contact_form.';
COMMENT ON TABLE ips.vocabulary_job_kind IS 'Kinds of job (partition of ips.vocabulary): referenced by ips.job and ips.job_plan.';
COMMENT ON TABLE ips.vocabulary_job_payer IS 'Payers of work trials and subsidies (partition of ips.vocabulary): referenced by ips.job.payer.';
COMMENT ON TABLE ips.vocabulary_staff_role IS 'Staff roles (partition of ips.vocabulary): referenced by ips.staff.role.';
COMMENT ON TABLE ips.vocabulary_consent_scope IS 'Consent scopes (partition of ips.vocabulary): referenced by ips.consent and ips.consent_refusal.';

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

-- The allowed moves of the episode state machine (read by its C code, episode_state.c).
-- A paused episode (on_hold) returns only to the state it paused, or closes: that rule
-- is the state machine's own.  condition: what the move needs beyond the table, as the
-- hint of a refused move says it.
CREATE TABLE ips.state_transition (
    from_state text NOT NULL REFERENCES ips.vocabulary_state (code),
    to_state   text NOT NULL REFERENCES ips.vocabulary_state (code),
    condition  text,
    PRIMARY KEY (from_state, to_state),
    CHECK (from_state <> to_state)
);
COMMENT ON TABLE ips.state_transition IS
    'The allowed moves between episode states (from_state -> to_state), read by the state machine; on_hold returns only to the state it paused. condition: what the move needs, named in hints.';
INSERT INTO ips.state_transition (from_state, to_state, condition)
SELECT f.s, t.s, CASE WHEN f.s = 'referred' AND t.s = 'employed' THEN 'with a job held at entry' END
  FROM (VALUES
    ('referred',   '{engaged,employed,on_hold,closed}'::text[]),
    ('engaged',    '{job_search,employed,studying,on_hold,closed}'),
    ('job_search', '{employed,studying,on_hold,closed}'),
    ('employed',   '{job_search,studying,on_hold,closed}'),
    ('studying',   '{job_search,employed,on_hold,closed}'),
    ('on_hold',    '{referred,engaged,job_search,employed,studying,closed}')
  ) AS f(s, tos),
  LATERAL unnest(f.tos) AS t(s);

-- The forms a contact may take: every kind x mode x setting of the vocabulary.  ips.contact
-- references it with one foreign key (kind, mode, setting): one check per row instead of
-- three (the contacts' COPY is the hot path).
CREATE TABLE ips.contact_form (
    kind    text NOT NULL REFERENCES ips.vocabulary_contact_kind (code),
    mode    text NOT NULL REFERENCES ips.vocabulary_contact_mode (code),
    setting text NOT NULL REFERENCES ips.vocabulary_contact_setting (code),
    PRIMARY KEY (kind, mode, setting)
);
COMMENT ON TABLE ips.contact_form IS
    'The combinations of contact kind, mode and setting (all of the vocabulary''s); ips.contact references it with one foreign key.';
INSERT INTO ips.contact_form (kind, mode, setting)
SELECT k.code, m.code, s.code
  FROM ips.vocabulary_contact_kind k, ips.vocabulary_contact_mode m, ips.vocabulary_contact_setting s
 ORDER BY k.ordinal, m.ordinal, s.ordinal;

-- A change of the vocabulary or the transitions reaches the C code's cache in every
-- session (vocabulary.c: the cache is dropped on the tables' invalidation).
CREATE FUNCTION ips.vocabulary_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'ips_vocabulary_changed' LANGUAGE C;
COMMENT ON FUNCTION ips.vocabulary_changed() IS 'Trigger: tells every session that the vocabulary or the allowed transitions changed (their C cache is dropped).';
CREATE TRIGGER vocabulary_changed AFTER INSERT OR UPDATE OR DELETE ON ips.vocabulary
    FOR EACH ROW EXECUTE FUNCTION ips.vocabulary_changed();
CREATE TRIGGER state_transition_changed AFTER INSERT OR UPDATE OR DELETE ON ips.state_transition
    FOR EACH ROW EXECUTE FUNCTION ips.vocabulary_changed();

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

-- The vocabulary as people read it: each code with its labels in fi, sv and en.
CREATE VIEW ips.vocabulary_labels AS
SELECT v.category, v.code, v.ordinal, fi.label AS label_fi, sv.label AS label_sv, en.label AS label_en
  FROM ips.vocabulary v
  LEFT JOIN ips.label_text fi ON fi.code = v.code AND fi.lang = 'fi'
  LEFT JOIN ips.label_text sv ON sv.code = v.code AND sv.lang = 'sv'
  LEFT JOIN ips.label_text en ON en.code = v.code AND en.lang = 'en';
COMMENT ON VIEW ips.vocabulary_labels IS
    'The codes of ips.vocabulary in their order, with their labels in Finnish, Swedish and English (ips.label_text).';

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

-- Raise a clear error unless code is one of the category's codes (internal; in C, lookup.c,
-- reading the vocabulary through vocabulary.c).
CREATE OR REPLACE FUNCTION ips.check_code(category text, code text, what text) RETURNS void
AS 'MODULE_PATHNAME', 'ips_check_code' LANGUAGE C STABLE;
COMMENT ON FUNCTION ips.check_code(text, text, text) IS 'Internal: raises 22023 with the valid codes (ips.vocabulary, in their order) as hint unless code belongs to category; 22004 when code is NULL.';

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
