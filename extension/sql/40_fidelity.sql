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
  ('O5', 'organization', 8, false, NULL, NULL, 'IPS-tiiminvetäjän rooli', 'IPS-teamledarens roll', 'Role of employment supervisor'),
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
  ('V13', 'services', 24, true, 'at_least', '%', 'Palvelut toimiston ulkopuolella', 'Tjänster utanför kontoret', 'Community-based services'),
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
    ('fidelity_title', 'IPS-laatuarviointi', 'IPS-kvalitetsbedömning', 'IPS fidelity review'),
    ('fidelity_period', 'kausi', 'period', 'period'),
    ('fidelity_source_computed', 'laskettu', 'beräknad', 'computed'),
    ('fidelity_source_rated', 'arvioitu', 'bedömd', 'rated'),
    ('fidelity_source_missing', 'puuttuu', 'saknas', 'missing'),
    ('fidelity_total', 'Yhteensä', 'Totalt', 'Total'),
    ('fidelity_items_scored', 'pisteytettyjä osioita', 'poängsatta punkter', 'items scored'),
    ('fidelity_band', 'Taso', 'Nivå', 'Band'),
    ('fidelity_band_none', 'ei vielä (kaikkia 25 osiota ei ole pisteytetty)', 'ännu inte (inte alla 25 punkter är poängsatta)', 'not yet (not all 25 items scored)'),
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
    ('fidelity_ev_V13', '%s min toimiston ulkopuolella / %s min työaikaa', '%s min utanför kontoret / %s min arbetstid', '%s min in the community / %s scheduled min'),
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

-- Whether the caller may see a team's fidelity: superusers and the extension's owner, ips_admin
-- and ips_analyst every team, a specialist or supervisor their own (ips.my_teams()).
CREATE FUNCTION ips.team_visible(team_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who name := ips.caller();
BEGIN
    IF team_id IS NULL OR NOT EXISTS (SELECT 1 FROM ips.team t WHERE t.team_id = team_visible.team_id) THEN
        RETURN false;
    END IF;
    RETURN coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = who), false)
        OR pg_catalog.pg_has_role(who, (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'ips.team'::regclass), 'MEMBER')
        OR (to_regrole('ips_admin') IS NOT NULL AND pg_catalog.pg_has_role(who, 'ips_admin', 'MEMBER'))
        OR (to_regrole('ips_analyst') IS NOT NULL AND pg_catalog.pg_has_role(who, 'ips_analyst', 'MEMBER'))
        OR team_visible.team_id = ANY (ips.my_teams());
END $$;
COMMENT ON FUNCTION ips.team_visible(bigint) IS
    'Whether the caller may read the team''s fidelity: superusers, the owner, ips_admin and ips_analyst every team; specialists and supervisors their own team.';

-- Whether the caller reads fidelity at the team level only: a caller who may not read the
-- person-level records (ips_analyst, ips_admin) gets ips.fidelity computed by the owner, with
-- the evidence stripped to team-level figures (ips.fidelity_team_evidence).
CREATE FUNCTION ips.fidelity_team_level_only() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT NOT pg_catalog.has_table_privilege(ips.caller(), 'ips.episode', 'SELECT')
$$;
COMMENT ON FUNCTION ips.fidelity_team_level_only() IS
    'Internal: true when the caller may not read person-level rows (analysts, admins): fidelity is then served at the team level.';

-- Evidence at the team level: the figures of the team, without the lists of episodes, jobs or
-- specialists and without any id, name, host key, rater or note.
CREATE FUNCTION ips.fidelity_team_evidence(evidence jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jsonb_typeof(evidence) IS DISTINCT FROM 'object' THEN
        RETURN evidence;
    END IF;
    RETURN coalesce((SELECT jsonb_object_agg(e.key, ips.fidelity_team_evidence(e.value))
                       FROM jsonb_each(evidence) e
                      WHERE jsonb_typeof(e.value) <> 'array'
                        AND e.key NOT IN ('episode_id', 'client_id', 'job_id', 'staff_id', 'review_id', 'host_ref',
                                          'host_key', 'name', 'rated_by', 'note')), '{}'::jsonb);
END $$;
COMMENT ON FUNCTION ips.fidelity_team_evidence(jsonb) IS
    'Team-level fidelity evidence: the team''s figures only; lists (episodes, jobs, per specialist), ids, names, host keys, raters and notes removed.';

-- Check the arguments of the fidelity functions; raise a clear error otherwise.
CREATE FUNCTION ips.fidelity_check_period(team_id bigint, period_start date, period_end date) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(team_id, 'team_id');
    PERFORM ips.require(period_start, 'period_start');
    PERFORM ips.require(period_end, 'period_end');
    IF NOT ips.team_visible(fidelity_check_period.team_id) THEN
        PERFORM ips.not_found('team', team_id);
    END IF;
    IF NOT isfinite(period_start) OR NOT isfinite(period_end) THEN
        RAISE EXCEPTION 'a fidelity period needs real days, not infinity'
            USING ERRCODE = 'datetime_field_overflow', HINT = 'Give the first and the last day of the period.';
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
    'Internal: raises 22004/P0002/22023 unless the team exists, the caller may see it (ips.team_visible) and the period is a non-empty range of past days.';

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

-- An FTE or share in the evidence: at most 4 decimals, at least one (1.0, 0.88, 1.6667).
CREATE FUNCTION ips.evidence_number(x numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN scale(trim_scale(round(x, 4))) = 0 THEN round(x, 1) ELSE trim_scale(round(x, 4)) END
$$;
COMMENT ON FUNCTION ips.evidence_number(numeric) IS 'Internal: an FTE or share for the evidence (at most 4 decimals, at least one).';

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
    ), sp AS MATERIALIZED (
        -- the specialists on the team on some day of the period, from their dated terms
        -- (ips.staff_terms): days on the team, FTE-days, employment-share FTE-days and
        -- scheduled hour-days in the period; on_from .. on_to (exclusive) their days in it
        SELECT x.team_id, x.staff_id, s.display_name, sum(x.d) AS days, sum(x.d * x.fte) AS fte_days,
               sum(x.d * x.fte * x.employment_share) AS share_days, sum(x.d * x.weekly_hours) AS hour_days,
               ips.evidence_number(sum(x.d * x.fte) / sum(x.d)) AS fte,
               ips.evidence_number(sum(x.d * x.fte * x.employment_share) / sum(x.d * x.fte)) AS employment_share,
               min(x.f) AS on_from, max(x.t) AS on_to,
               (min(x.f)::timestamp AT TIME ZONE tz) AS on_lo, (max(x.t)::timestamp AT TIME ZONE tz) AS on_hi
          FROM (SELECT g.team_id, g.staff_id, g.fte, g.employment_share, g.weekly_hours,
                       greatest(g.from_on, ps) AS f, least(g.to_on, pe + 1) AS t,
                       least(g.to_on, pe + 1) - greatest(g.from_on, ps) AS d
                  FROM ips.staff_spans(ids) g
                 WHERE g.role = 'specialist' AND g.from_on <= pe AND g.to_on > ps) x
          JOIN ips.staff s ON s.staff_id = x.staff_id
         GROUP BY x.team_id, x.staff_id, s.display_name
    ), staffing AS (
        -- the team's mean FTE over the period and its employment-share part
        SELECT sp.team_id, sum(sp.fte_days) / ndays AS fte, sum(sp.share_days) / ndays AS share_fte,
               coalesce(jsonb_agg(jsonb_build_object('staff_id', sp.staff_id, 'name', sp.display_name, 'fte', sp.fte,
                                                     'employment_share', sp.employment_share, 'days_on_team', sp.days)
                                  ORDER BY sp.staff_id), '[]') AS s2_list
          FROM sp GROUP BY sp.team_id
    ), clients AS (
        -- whether the team had any client in the period (an episode referred by its end, open on a day of it)
        SELECT tm.team_id, EXISTS (SELECT 1 FROM ips.episode e WHERE e.team_id = tm.team_id AND e.referred_on <= pe
                                      AND (e.closed_on IS NULL OR e.closed_on >= ps)) AS any_client
          FROM tm
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
                                            'days_on_team', sp.days,
                                            'mean_active_clients', round(coalesce(c.days, 0) / sp.days::numeric, 2),
                                            'clients_per_fte', round(coalesce(c.days, 0) / sp.fte_days, 2))
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
        SELECT sp.team_id, sp.staff_id, sp.display_name, sp.days, sp.days / 7.0 AS weeks_on,
               coalesce(c.n, 0) AS contacts, coalesce(k.n, 0) AS seekers
          FROM sp
          LEFT JOIN LATERAL (SELECT count(*) AS n FROM ips.employer_contact c
                              WHERE c.staff_id = sp.staff_id AND c.in_person AND NOT c.by_client
                                AND c.at >= sp.on_lo AND c.at < sp.on_hi) c ON true
          LEFT JOIN (SELECT sa.staff_id, x.team_id, count(DISTINCT sa.episode_id) AS n
                       FROM ips.specialist_assignment sa JOIN seeking x ON x.episode_id = sa.episode_id
                      WHERE sa.from_on <= pe AND (sa.to_on IS NULL OR sa.to_on >= ps)
                      GROUP BY sa.staff_id, x.team_id) k ON k.staff_id = sp.staff_id AND k.team_id = sp.team_id
    ), v6 AS (
        -- each specialist weighs by their weeks on the team in the period
        SELECT p.team_id, count(*) AS n, sum(p.contacts) AS contacts, sum(p.weeks_on) AS specialist_weeks,
               sum(p.effective * p.weeks_on) / sum(p.weeks_on) AS mean_effective,
               jsonb_agg(jsonb_build_object('staff_id', p.staff_id, 'name', p.display_name, 'days_on_team', p.days,
                                            'contacts', p.contacts, 'per_week', round(p.rate, 2),
                                            'job_seekers', p.seekers, 'small_caseload_rule', p.small,
                                            'counted_per_week', round(p.effective, 2))
                         ORDER BY p.staff_id) AS per_specialist
          FROM (SELECT q.*, q.contacts / q.weeks_on AS rate,
                       q.seekers BETWEEN 1 AND 2 AND q.contacts / q.weeks_on / q.seekers >= 2 AS small,
                       CASE WHEN q.seekers BETWEEN 1 AND 2 AND q.contacts / q.weeks_on / q.seekers >= 2
                            THEN greatest(q.contacts / q.weeks_on,
                                          coalesce((SELECT a.threshold FROM ips.fidelity_anchor a
                                                     WHERE a.item = 'V6' AND a.score = 5), 0))
                            ELSE q.contacts / q.weeks_on END AS effective
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
    -- V13: minutes of in-person contacts outside the office / scheduled minutes (the weekly
    -- hours in force on each day on the team x 60 / 7), %.  Phone, video and messages are not
    -- community-based services, whatever their setting says.
    v13 AS (
        SELECT p.team_id, sum(p.minutes) AS minutes, sum(p.scheduled) AS scheduled, sum(p.no_minutes) AS no_minutes,
               jsonb_agg(jsonb_build_object('staff_id', p.staff_id, 'name', p.display_name,
                                            'community_minutes', p.minutes, 'scheduled_minutes', round(p.scheduled, 2),
                                            'contacts_without_minutes', p.no_minutes,
                                            'community_pct', round(p.minutes * 100.0 / p.scheduled, 2))
                         ORDER BY p.staff_id) AS per_specialist
          FROM (SELECT sp.team_id, sp.staff_id, sp.display_name, sp.hour_days * 60 / 7.0 AS scheduled,
                       coalesce(c.minutes, 0) AS minutes, coalesce(c.no_minutes, 0) AS no_minutes
                  FROM sp
                  LEFT JOIN LATERAL (SELECT coalesce(sum(c.minutes) FILTER (WHERE c.setting = 'community' AND c.mode = 'in_person'), 0) AS minutes,
                                            count(*) FILTER (WHERE c.minutes IS NULL) AS no_minutes
                                       FROM ips.contact c
                                      WHERE c.staff_id = sp.staff_id AND c.at >= sp.on_lo AND c.at < sp.on_hi) c ON true) p
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
                 WHERE e.team_id = ANY (ids) AND j.starts_on BETWEEN ps AND pe AND NOT j.held_at_entry
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
               coalesce(v6.specialist_weeks, 0) AS v6_weeks, cl.any_client,
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
          LEFT JOIN clients cl ON cl.team_id = tm.team_id
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
               CASE WHEN x.fte > 0 AND x.any_client THEN x.client_days / ndays::numeric / x.fte END AS m_s1,
               CASE WHEN x.fte > 0 AND x.any_client THEN x.share_fte / x.fte * 100 END AS m_s2,
               x.v4_mean AS m_v4,
               CASE WHEN x.any_client THEN x.v6_mean END AS m_v6,
               CASE WHEN x.classified > 0 THEN x.types * 100.0 / x.classified END AS m_v8,
               CASE WHEN x.jobs > 0 THEN x.employers * 100.0 / x.jobs END AS m_v9,
               CASE WHEN x.jobs > 0 THEN x.competitive * 100.0 / x.jobs END AS m_v10,
               CASE WHEN x.v12_due4 > 0 THEN x.v12_got4 * 100.0 / x.v12_due4 END AS m_v12,
               CASE WHEN x.v13_scheduled > 0 AND x.any_client THEN x.v13_minutes * 100.0 / x.v13_scheduled END AS m_v13
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
                        WHEN NOT m.any_client THEN jsonb_build_object('not_measurable', 'the team had no clients in the period')
                        ELSE '{}' END AS no_specialists
          ) k
          CROSS JOIN LATERAL (VALUES
            (1, 'S1', m.s_s1, round(m.m_s1, 2),
             jsonb_build_object('client_days', m.client_days, 'days', ndays,
                                'mean_active_clients', round(m.client_days / ndays::numeric, 2),
                                'specialist_fte', ips.evidence_number(m.fte), 'episodes', m.s1_episodes, 'per_specialist', m.s1_list)
               || k.no_specialists),
            (2, 'S2', m.s_s2, round(m.m_s2, 2),
             jsonb_build_object('specialist_fte', ips.evidence_number(m.fte), 'per_specialist', m.s2_list) || k.no_specialists),
            (3, 'V4', m.s_v4, round(m.m_v4, 2),
             jsonb_build_object('entrants', m.v4_n, 'mean_days', round(m.m_v4, 2),
                                'without_employer_contact', m.v4_without, 'episodes', m.v4_list)
               || CASE WHEN m.v4_n = 0 THEN jsonb_build_object('not_measurable', 'no episode entered in the period')
                       ELSE '{}' END
               || jsonb_build_object('rule_compliance', m.compliance -> 'rapid_job_search')),
            (4, 'V6', m.s_v6, round(m.m_v6, 2),
             jsonb_build_object('contacts', m.v6_contacts, 'specialists', round(m.v6_weeks / weeks, 2), 'weeks', round(weeks, 2),
                                'specialist_weeks', round(m.v6_weeks, 2),
                                'per_specialist_per_week', round(CASE WHEN m.v6_n > 0 THEN m.v6_contacts / m.v6_weeks END, 2),
                                'per_specialist', m.v6_list)
               || CASE WHEN m.v6_n = 0 THEN jsonb_build_object('not_measurable', 'the team has no employment specialists')
                       WHEN NOT m.any_client THEN jsonb_build_object('not_measurable', 'the team had no clients in the period')
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
                       WHEN NOT m.any_client THEN jsonb_build_object('not_measurable', 'the team had no clients in the period')
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

-- Team-level fidelity of a set of teams, computed with the owner's rights for callers who may not
-- read person-level rows (ips_analyst, ips_admin); each team must be one the caller may see.
CREATE FUNCTION ips.fidelity_team_level(team_ids bigint[], period_start date, period_end date)
RETURNS TABLE(team_id bigint, item text, score int, source text, measure numeric, evidence jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(team_ids, 'team_ids');
    PERFORM ips.fidelity_check_period(u.id, fidelity_team_level.period_start, fidelity_team_level.period_end)
       FROM unnest(team_ids) AS u(id);
    RETURN QUERY
    SELECT f.team_id, f.item, f.score, f.source, f.measure, ips.fidelity_team_evidence(f.evidence)
      FROM ips.fidelity_teams(team_ids, fidelity_team_level.period_start, fidelity_team_level.period_end) f;
END $$;
COMMENT ON FUNCTION ips.fidelity_team_level(bigint[], date, date) IS
    'Internal: ips.fidelity_teams computed with the owner''s rights, evidence at the team level (ips.fidelity_team_evidence); for callers without person-level rights, on teams they may see.';

CREATE OR REPLACE FUNCTION ips.fidelity(team_id bigint, period_start date, period_end date)
RETURNS TABLE(item text, score int, source text, measure numeric, evidence jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- the team (22004, P0002 unless the caller may see it) and the period, before any day is counted
    PERFORM ips.fidelity_check_period(fidelity.team_id, fidelity.period_start, fidelity.period_end);
    IF ips.fidelity_team_level_only() THEN
        RETURN QUERY SELECT f.item, f.score, f.source, f.measure, f.evidence
                       FROM ips.fidelity_team_level(ARRAY[fidelity.team_id], fidelity.period_start, fidelity.period_end) f;
    ELSE
        RETURN QUERY SELECT f.item, f.score, f.source, f.measure, f.evidence
                       FROM ips.fidelity_teams(ARRAY[fidelity.team_id], fidelity.period_start, fidelity.period_end) f;
    END IF;
END $$;
COMMENT ON FUNCTION ips.fidelity(bigint, date, date) IS
    'The 25 fidelity items of a team for a period: computed from the records (S1 S2 V4 V6 V8 V9 V10 V12 V13), else rated in the team''s review of that period, else missing; with measure and evidence (team-level evidence for analysts and admins). P0002 for a team the caller may not see.';

-- Every team the caller may see, in one pass: what ips.fidelity gives for each.
CREATE OR REPLACE FUNCTION ips.fidelity_all(period_start date, period_end date)
RETURNS TABLE(team_id bigint, item text, score int, source text, measure numeric, evidence jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids bigint[] := (SELECT coalesce(array_agg(t.team_id ORDER BY t.team_id), '{}') FROM ips.team t
                      WHERE ips.team_visible(t.team_id));
BEGIN
    IF cardinality(ids) = 0 THEN      -- no team to show (a clinician): the argument checks only
        PERFORM ips.require(period_start, 'period_start');
        PERFORM ips.require(period_end, 'period_end');
        RETURN;
    END IF;
    PERFORM ips.fidelity_check_period(ids[1], fidelity_all.period_start, fidelity_all.period_end);
    IF ips.fidelity_team_level_only() THEN
        RETURN QUERY SELECT f.team_id, f.item, f.score, f.source, f.measure, f.evidence
                       FROM ips.fidelity_team_level(ids, fidelity_all.period_start, fidelity_all.period_end) f;
    ELSE
        RETURN QUERY SELECT f.team_id, f.item, f.score, f.source, f.measure, f.evidence
                       FROM ips.fidelity_teams(ids, fidelity_all.period_start, fidelity_all.period_end) f;
    END IF;
END $$;
COMMENT ON FUNCTION ips.fidelity_all(date, date) IS
    'The rows of ips.fidelity for every team the caller may see (team_id first, then ordinal), computed in one pass over the records.';

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
    PERFORM ips.require(item, 'item');
    PERFORM ips.require(score, 'score');
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

-- As definer: only the owner writes ips.fidelity_frozen (88_table_rules.sql), so that
-- a frozen result is always the computed one; the caller must manage the review.
CREATE FUNCTION ips.close_review(review_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.fidelity_review;
BEGIN
    IF NOT pg_catalog.pg_has_role(ips.caller(), 'ips_admin', 'USAGE') THEN
        IF close_review.review_id IS NULL OR NOT close_review.review_id = ANY (ips.team_reviews()) THEN
            PERFORM ips.not_found('fidelity review', close_review.review_id);
        END IF;
        IF NOT pg_catalog.pg_has_role(ips.caller(), 'ips_supervisor', 'USAGE') THEN
            RAISE EXCEPTION 'only a supervisor of the team or ips_admin closes a fidelity review'
                USING ERRCODE = 'insufficient_privilege', HINT = 'Ask the team''s supervisor.';
        END IF;
    END IF;
    r := ips.fidelity_review_get(close_review.review_id, true);
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
LANGUAGE plpgsql STABLE SECURITY DEFINER
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
    'Total of the scored items, how many are scored, and the band once all 25 are; from the frozen result of the closed review of exactly that period if there is one, else computed now. Runs as owner (it shows no person-level data), for any team the caller may see (ips.team_visible), else P0002.';

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
