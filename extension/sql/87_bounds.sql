-- Bounded input (issue 13): what any role may store is bounded at the table, so
-- that no row written by an API function, a direct INSERT/UPDATE or COPY makes a
-- shared report unbounded.  docs/input-limits.md lists the limits and SQLSTATEs.
--
--   * dates and instants are finite (CHECK constraints, immutable);
--   * dated facts lie between the earliest day (setting earliest_fact_date,
--     default 1900-01-01) and today in the region's time zone, planned days at
--     most 10 years ahead, texts have a maximum length, integers a range: the
--     trigger ips.bounds_guard() (C, extension/bounds.c; no SPI per row), which
--     gives each bad value its own SQLSTATE and a hint;
--   * settings are validated when they are written (ips.setting_check()); the
--     numbers of the contact rules are checked by ips.rule_check() (30_rules.sql).
-- The tables made by 90_security.sql get theirs in 92_bounds_late.sql.

INSERT INTO ips.setting (name, value, description) VALUES
  ('earliest_fact_date', '1900-01-01',
   'The earliest day a fact (contact, referral, job, consent ...) may be dated; a date from 1800-01-01 to 1900-01-01.');

CREATE FUNCTION ips.bounds_guard() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_bounds_guard' LANGUAGE C;
COMMENT ON FUNCTION ips.bounds_guard() IS
    'Trigger: refuses dates outside earliest_fact_date .. today (22008, 22023), texts over their length (22001) and integers out of range (22003); arguments: col, col:plan, col:N, col:LO:HI, col:required (22004).';

-- Dates and instants are finite: a CHECK per column (holds also while triggers are off).
ALTER TABLE ips.care_relationship
    ADD CONSTRAINT care_relationship_dates_finite CHECK (isfinite(started_on) AND isfinite(ended_on));
ALTER TABLE ips.consent
    ADD CONSTRAINT consent_dates_finite CHECK (isfinite(given_on) AND isfinite(withdrawn_on));
ALTER TABLE ips.episode
    ADD CONSTRAINT episode_dates_finite CHECK (isfinite(referred_on) AND isfinite(state_since) AND isfinite(entry_on)
                                               AND isfinite(career_profile_on) AND isfinite(closed_on));
ALTER TABLE ips.episode_state_history
    ADD CONSTRAINT episode_state_history_dates_finite CHECK (isfinite(at));
ALTER TABLE ips.specialist_assignment
    ADD CONSTRAINT specialist_assignment_dates_finite CHECK (isfinite(from_on) AND isfinite(to_on));
ALTER TABLE ips.contact
    ADD CONSTRAINT contact_dates_finite CHECK (isfinite(at));
ALTER TABLE ips.employer_contact
    ADD CONSTRAINT employer_contact_dates_finite CHECK (isfinite(at));
ALTER TABLE ips.job
    ADD CONSTRAINT job_dates_finite CHECK (isfinite(starts_on) AND isfinite(ends_on));
ALTER TABLE ips.study
    ADD CONSTRAINT study_dates_finite CHECK (isfinite(starts_on) AND isfinite(ends_on));
ALTER TABLE ips.team_meeting
    ADD CONSTRAINT team_meeting_dates_finite CHECK (isfinite(met_on));
ALTER TABLE ips.fidelity_review
    ADD CONSTRAINT fidelity_review_dates_finite CHECK (isfinite(period_start) AND isfinite(period_end) AND isfinite(reviewed_on));
ALTER TABLE ips.fidelity_action
    ADD CONSTRAINT fidelity_action_dates_finite CHECK (isfinite(due_on) AND isfinite(done_on));

-- The bounds of every column that takes input (named <table>_bounds: fires before the
-- table's other BEFORE triggers, which run in name order).  ips.episode.state_since is
-- bounded by the state machine (ips.episode_guard: not before the referral, not in the
-- future), the episode's derived days (entry_on, closed_on) follow from it.
CREATE TRIGGER team_bounds BEFORE INSERT OR UPDATE ON ips.team
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('name:200', 'region:200', 'created_at');
CREATE TRIGGER staff_bounds BEFORE INSERT OR UPDATE ON ips.staff
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('display_name:200', 'unit:200', 'created_at');
CREATE TRIGGER client_bounds BEFORE INSERT OR UPDATE ON ips.client
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('host_ref:200', 'birth_year:1900:year', 'municipality:200', 'created_at');
CREATE TRIGGER care_relationship_bounds BEFORE INSERT OR UPDATE ON ips.care_relationship
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('client_id:required', 'unit:200', 'started_on', 'ended_on');
CREATE TRIGGER consent_bounds BEFORE INSERT OR UPDATE ON ips.consent
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('client_id:required', 'given_on', 'withdrawn_on');
CREATE TRIGGER employer_bounds BEFORE INSERT OR UPDATE ON ips.employer
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('name:200', 'industry:200', 'created_at');
CREATE TRIGGER episode_bounds BEFORE INSERT OR UPDATE ON ips.episode
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('client_id:required', 'team_id:required', 'referred_on', 'career_profile_on',
                                                   'referral_source:200', 'state_reason:200', 'created_at');
CREATE TRIGGER episode_state_history_bounds BEFORE INSERT OR UPDATE ON ips.episode_state_history
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('at', 'reason:200', 'recorded_at');
CREATE TRIGGER specialist_assignment_bounds BEFORE INSERT OR UPDATE ON ips.specialist_assignment
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('episode_id:required', 'staff_id:required', 'from_on', 'to_on');
CREATE TRIGGER contact_bounds BEFORE INSERT OR UPDATE ON ips.contact
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('episode_id:required', 'staff_id:required', 'at', 'minutes:1:1440', 'recorded_at');
CREATE TRIGGER employer_contact_bounds BEFORE INSERT OR UPDATE ON ips.employer_contact
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('staff_id:required', 'employer_id:required', 'at', 'recorded_at');
CREATE TRIGGER job_bounds BEFORE INSERT OR UPDATE ON ips.job
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('episode_id:required', 'employer_id:required', 'starts_on', 'ends_on', 'title:200', 'end_reason:200', 'recorded_at');
CREATE TRIGGER study_bounds BEFORE INSERT OR UPDATE ON ips.study
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('episode_id:required', 'starts_on', 'ends_on', 'programme:200');
CREATE TRIGGER team_meeting_bounds BEFORE INSERT OR UPDATE ON ips.team_meeting
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('staff_id:required', 'met_on');
CREATE TRIGGER fidelity_review_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_review
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('period_start', 'period_end', 'reviewed_on', 'note:2000',
                                                   'opened_at', 'closed_at');
CREATE TRIGGER fidelity_reviewer_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_reviewer
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('reviewer:200', 'organisation:200');
CREATE TRIGGER fidelity_rating_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_rating
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('note:2000', 'rated_at');
CREATE TRIGGER fidelity_action_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_action
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('action:2000', 'responsible:200', 'due_on:plan', 'done_on', 'created_at');

-- Reference data that ips_admin edits: codes and labels of a readable length.  (The
-- vocabulary is the extension's own, changed by its owner only: 00_base.sql.)
CREATE TRIGGER label_text_bounds BEFORE INSERT OR UPDATE ON ips.label_text
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('code:100', 'category:100', 'label:500');
CREATE TRIGGER rule_bounds BEFORE INSERT OR UPDATE ON ips.rule
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('label_fi:500', 'label_sv:500', 'label_en:500', 'description:2000');
CREATE TRIGGER fidelity_item_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_item
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('name_fi:500', 'name_sv:500', 'name_en:500', 'unit:200');
CREATE TRIGGER fidelity_anchor_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_anchor
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('anchor:500');
CREATE TRIGGER fidelity_band_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_band
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('band:100', 'name_fi:500', 'name_sv:500', 'name_en:500');

-- Settings are validated when written: a time zone PostgreSQL knows, numbers in their
-- range, booleans, job kinds of the vocabulary.  A setting this list does not know is
-- text of at most 200 characters.
CREATE FUNCTION ips.setting_kind(setting_name text, OUT kind text, OUT min_value numeric, OUT max_value numeric)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(k.kind, 'text'), k.lo, k.hi
      FROM (SELECT 1) one
      LEFT JOIN (VALUES
        ('time_zone', 'time_zone', NULL::numeric, NULL::numeric),
        ('engaged_requires_care_relationship', 'boolean', NULL, NULL),
        ('disengaged_min_outreach_attempts', 'integer', 0, 100),
        ('disengaged_min_outreach_days', 'integer', 0, 100),
        ('disengaged_outreach_window_days', 'integer', 1, 3660),
        ('small_cell_threshold', 'integer', 0, 1000),
        ('benchmark_employment_minimal', 'numeric', 0, 100),
        ('benchmark_employment_average', 'numeric', 0, 100),
        ('benchmark_employment_excellent', 'numeric', 0, 100),
        ('benchmark_employment_uk', 'numeric', 0, 100),
        ('competitive_job_kinds', 'job_kinds', NULL, NULL),
        ('earliest_fact_date', 'date', NULL, NULL)
      ) AS k(name, kind, lo, hi) ON k.name = setting_name
$$;
COMMENT ON FUNCTION ips.setting_kind(text) IS
    'The kind of value a setting takes (time_zone, boolean, integer, numeric, date, job_kinds, text) and its range.';

CREATE FUNCTION ips.setting_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k record;
    n numeric;
    d date;
    bad text;
    pattern text;
BEGIN
    IF length(NEW.name) > 100 OR length(NEW.value) > 200 OR length(NEW.description) > 2000 THEN
        RAISE EXCEPTION 'setting "%" is too long', left(NEW.name, 100)
            USING ERRCODE = 'string_data_right_truncation',
                  HINT = 'A setting''s name has at most 100 characters, its value 200, its description 2000.';
    END IF;
    IF NEW.value IS NULL THEN
        RETURN NEW;     -- the NOT NULL constraint answers
    END IF;
    k := ips.setting_kind(NEW.name);
    IF k.kind = 'time_zone' THEN
        BEGIN
            PERFORM now() AT TIME ZONE NEW.value;
        EXCEPTION WHEN invalid_parameter_value OR feature_not_supported THEN
            bad := 'a time zone PostgreSQL knows, e.g. Europe/Helsinki (see pg_timezone_names)';
        END;
    ELSIF k.kind = 'boolean' THEN
        IF lower(btrim(NEW.value)) NOT IN ('true', 'false', 'on', 'off', 'yes', 'no', '1', '0', 't', 'f') THEN
            bad := 'true or false';
        END IF;
    ELSIF k.kind IN ('integer', 'numeric') THEN
        pattern := CASE WHEN k.kind = 'integer' THEN '^\s*[+-]?[0-9]{1,9}\s*$'
                        ELSE '^\s*[+-]?([0-9]{1,9}(\.[0-9]{0,6})?|\.[0-9]{1,6})\s*$' END;
        IF NEW.value !~ pattern THEN
            bad := format('a %s from %s to %s', CASE k.kind WHEN 'integer' THEN 'whole number' ELSE 'number' END,
                          k.min_value, k.max_value);
        ELSE
            n := NEW.value::numeric;
            IF n < k.min_value OR n > k.max_value THEN
                bad := format('a %s from %s to %s', CASE k.kind WHEN 'integer' THEN 'whole number' ELSE 'number' END,
                              k.min_value, k.max_value);
            END IF;
        END IF;
    ELSIF k.kind = 'date' THEN
        BEGIN
            d := NEW.value::date;
        EXCEPTION WHEN data_exception THEN
            d := NULL;
        END;
        IF d IS NULL OR d < date '1800-01-01' OR d > date '1900-01-01' THEN
            bad := 'a date from 1800-01-01 to 1900-01-01 (the default 1900-01-01; an earlier one widens the past)';
        END IF;
    ELSIF k.kind = 'job_kinds' THEN
        IF btrim(NEW.value) = '' OR EXISTS (
               SELECT 1 FROM unnest(string_to_array(replace(NEW.value, ' ', ''), ',')) AS u(code)
                WHERE NOT EXISTS (SELECT 1 FROM ips.vocabulary v WHERE v.category = 'job_kind' AND v.code = u.code)) THEN
            bad := format('a comma-separated list of job kinds: %s',
                          (SELECT string_agg(v.code, ', ' ORDER BY v.ordinal) FROM ips.vocabulary v WHERE v.category = 'job_kind'));
        END IF;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'setting % cannot be "%"', NEW.name, left(NEW.value, 200)
            USING ERRCODE = 'invalid_parameter_value', HINT = format('Give %s.', bad);
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.setting_check() IS
    'Trigger: a setting''s value must be of its kind (ips.setting_kind) and in range, so that no setting can break the reads that use it.';
CREATE TRIGGER setting_check BEFORE INSERT OR UPDATE ON ips.setting
    FOR EACH ROW EXECUTE FUNCTION ips.setting_check();
