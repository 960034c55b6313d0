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
   'Ei yhteyttä asiakkaaseen: tavoita', 'Ingen kontakt med klienten: ta kontakt', 'No client contact: reach out',
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
CREATE FUNCTION ips.rule_engine(mode text, from_on date, to_on date, team_id bigint DEFAULT NULL, episode_id bigint DEFAULT NULL,
                                known_at timestamptz DEFAULT NULL)
RETURNS TABLE(episode_id bigint, staff_id bigint, rule text, job_id bigint, due_on date, met_on date, status text)
AS 'MODULE_PATHNAME', 'ips_rule_engine'
LANGUAGE C STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.rule_engine(text, date, date, bigint, bigint, timestamptz) IS
    'Internal: the contact-rule engine.  mode alerts: unmet expectations as of to_on (status overdue or due); '
    'mode expectations: every expectation due from from_on to to_on, as known on to_on (status met_on_time, met_late, missed, open); '
    'known_at: only the state changes, contacts, employer contacts and jobs recorded by then (recorded_at).';

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

-- What the team could see on a day: the alerts as of as_of from the facts recorded by known_at
-- (default: the end of as_of); a reviewer's question when facts were entered late.
CREATE FUNCTION ips.alerts_as_known(as_of date, known_at timestamptz DEFAULT NULL, team_id bigint DEFAULT NULL)
RETURNS TABLE(episode_id bigint, staff_id bigint, rule text, due_on date, days_overdue int, severity text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM ips.require(alerts_as_known.as_of, 'as_of');
    PERFORM ips.rule_check_team(alerts_as_known.team_id);
    RETURN QUERY
        SELECT x.episode_id, x.staff_id, x.rule, x.due_on, (alerts_as_known.as_of - x.due_on)::int, x.status
          FROM ips.rule_engine('alerts', alerts_as_known.as_of, alerts_as_known.as_of, alerts_as_known.team_id, NULL,
                               coalesce(alerts_as_known.known_at, ips.local_midnight(alerts_as_known.as_of + 1))) x
          JOIN ips.rule r ON r.code = x.rule
         ORDER BY x.due_on, x.episode_id NULLS LAST, x.staff_id, r.ordinal;
END $$;
COMMENT ON FUNCTION ips.alerts_as_known(date, timestamptz, bigint) IS
    'The alerts of a day as the team could see them: ips.contact_alerts(as_of) from the state changes, contacts, employer contacts and jobs recorded by known_at (default: the end of as_of).';

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
