-- ips 1.1 -> 1.2, written by hand (ALTER EXTENSION ips UPDATE).  Every change of
-- the 1.2 install script (extension/sql/*.sql) that a 1.1 database needs is made
-- here too; tests/t/020_upgrade.pl proves the updated catalog equals a fresh one.
-- One section per concern, in the order of the install script's parts.
\echo Use "ALTER EXTENSION ips UPDATE" to load this file. \quit

-- ===== trust: every guarantee enforced at the table (issue 13)
-- extension/sql/88_table_rules.sql: the table rules (triggers) and their policy helpers
-- Policy helper (extension/security_policy.c): in whose name the caller may record.
CREATE FUNCTION ips.recordable_staff() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_recordable_staff' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.recordable_staff() IS
    'Policy helper: the staff in whose name the caller records contacts and meetings: the caller; a supervisor also the own team''s staff.';

-- Policy helper: whether the caller's team sees a client (an episode in the team, or
-- registered by it).  Per row, for the WITH CHECK of a new episode: one or two index
-- look-ups instead of the whole ips.team_clients() array (1.5 ms per statement for a
-- team of 6 000 clients), as an episode is inserted one at a time.
CREATE FUNCTION ips.is_team_client(client_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    teams bigint[] := ips.my_teams();
BEGIN
    RETURN EXISTS (SELECT 1 FROM ips.episode e WHERE e.client_id = is_team_client.client_id AND e.team_id = ANY (teams))
        OR EXISTS (SELECT 1 FROM ips.client_intake i WHERE i.client_id = is_team_client.client_id AND i.team_id = ANY (teams));
END $$;
COMMENT ON FUNCTION ips.is_team_client(bigint) IS
    'Policy helper: true when the client has an episode in the caller''s team or was registered by it (what ips.team_clients() lists).';

-- Whether pg_restore is loading rows (ips.restoring, settable by a superuser only).
CREATE FUNCTION ips.restoring() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(current_setting('ips.restoring', true), 'off') = 'on'
$$;
COMMENT ON FUNCTION ips.restoring() IS 'Internal: true while pg_restore loads rows with ips.restoring = on.';

------------------------------------------------------------------------------
-- An episode's specialist belongs to the episode's team.
------------------------------------------------------------------------------

CREATE FUNCTION ips.episode_specialist_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s_team bigint;
    s_role text;
    e_team bigint;
    s_id bigint;
BEGIN
    IF ips.restoring() THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'episode' THEN
        s_id := NEW.specialist_id;
        e_team := NEW.team_id;
    ELSE
        s_id := NEW.staff_id;
        SELECT e.team_id INTO e_team FROM ips.episode e WHERE e.episode_id = NEW.episode_id;
        IF NOT FOUND THEN
            PERFORM ips.not_found('episode', NEW.episode_id);
        END IF;
    END IF;
    SELECT s.team_id, s.role INTO s_team, s_role FROM ips.staff s WHERE s.staff_id = s_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('staff member', s_id);
    END IF;
    IF s_role <> 'specialist' THEN
        RAISE EXCEPTION 'staff member % is a %, not an employment specialist', s_id, s_role
            USING ERRCODE = 'check_violation', HINT = 'Assign a staff member whose role is specialist (ips.assign_specialist).';
    END IF;
    IF s_team <> e_team THEN
        RAISE EXCEPTION 'staff member % belongs to team %, the episode to team %', s_id, s_team, e_team
            USING ERRCODE = 'check_violation', HINT = 'Assign a specialist of the episode''s own team (ips.assign_specialist).';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.episode_specialist_check() IS
    'Trigger: the specialist of an episode (and of a specialist assignment) is a specialist of the episode''s team.';

CREATE TRIGGER episode_specialist_insert BEFORE INSERT ON ips.episode
    FOR EACH ROW WHEN (NEW.specialist_id IS NOT NULL) EXECUTE FUNCTION ips.episode_specialist_check();
CREATE TRIGGER episode_specialist_update BEFORE UPDATE OF specialist_id, team_id ON ips.episode
    FOR EACH ROW WHEN (NEW.specialist_id IS NOT NULL AND (NEW.specialist_id IS DISTINCT FROM OLD.specialist_id
                                                         OR NEW.team_id IS DISTINCT FROM OLD.team_id))
    EXECUTE FUNCTION ips.episode_specialist_check();
-- after specialist_assignment_guard (triggers fire in name order), which refuses an unknown episode
CREATE TRIGGER specialist_assignment_team BEFORE INSERT OR UPDATE OF staff_id, episode_id ON ips.specialist_assignment
    FOR EACH ROW EXECUTE FUNCTION ips.episode_specialist_check();

-- A specialist who carries open episodes keeps the team and the role while they do.
-- As definer: ips_admin, who moves staff, does not read episodes (the error gives a count only).
CREATE FUNCTION ips.staff_specialist_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF ips.restoring() THEN
        RETURN NEW;
    END IF;
    SELECT count(*) INTO n FROM ips.episode e
     WHERE e.specialist_id = OLD.staff_id AND e.closed_on IS NULL
       AND (e.team_id <> NEW.team_id OR NEW.role <> 'specialist');
    IF n > 0 THEN
        RAISE EXCEPTION 'staff member % is the specialist of % open episodes of team %', OLD.staff_id, n, OLD.team_id
            USING ERRCODE = 'check_violation',
                  DETAIL = 'An episode''s specialist is a specialist of the episode''s team.',
                  HINT = 'Assign the episodes to another specialist of the team first (ips.assign_specialist).';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.staff_specialist_check() IS
    'Trigger: a specialist of open episodes does not change team or role until they are assigned to someone else.';
CREATE TRIGGER staff_specialist_team BEFORE UPDATE OF team_id, role ON ips.staff
    FOR EACH ROW WHEN (NEW.team_id IS DISTINCT FROM OLD.team_id OR NEW.role IS DISTINCT FROM OLD.role)
    EXECUTE FUNCTION ips.staff_specialist_check();

------------------------------------------------------------------------------
-- Consents: a refusal is append-only; a withdrawn consent stays withdrawn.
------------------------------------------------------------------------------

CREATE FUNCTION ips.consent_refusal_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'consent refusals are append-only'
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('%s on ips.consent_refusal is refused.', TG_OP),
              HINT = 'A refusal stands; the client may give a new consent (ips.give_consent).';
END $$;
COMMENT ON FUNCTION ips.consent_refusal_guard() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE of consent refusals.';
-- (its triggers are made with ips.consent_refusal, in 90_security.sql)

CREATE FUNCTION ips.consent_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'consents are not deleted'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('%s on ips.consent is refused.', TG_OP),
                  HINT = 'Withdraw a consent with ips.withdraw_consent() or record a refusal with ips.refuse_consent().';
    END IF;
    IF OLD.withdrawn_on IS NOT NULL THEN
        RAISE EXCEPTION 'consent % was withdrawn on %', OLD.consent_id, OLD.withdrawn_on
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A withdrawn consent is final.',
                  HINT = 'The client may give a new consent (ips.give_consent).';
    END IF;
    IF NEW.consent_id <> OLD.consent_id OR NEW.client_id <> OLD.client_id OR NEW.scope <> OLD.scope
       OR NEW.given_on <> OLD.given_on THEN
        RAISE EXCEPTION 'a consent keeps its client, scope and date'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Withdraw it (ips.withdraw_consent) and record a new one (ips.give_consent).';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.consent_guard() IS
    'Trigger: a consent changes only by its withdrawal; a withdrawn consent is final; consents are not deleted.';
CREATE TRIGGER consent_guard BEFORE UPDATE OR DELETE ON ips.consent
    FOR EACH ROW EXECUTE FUNCTION ips.consent_guard();
CREATE TRIGGER consent_no_truncate BEFORE TRUNCATE ON ips.consent
    FOR EACH STATEMENT EXECUTE FUNCTION ips.consent_guard();

------------------------------------------------------------------------------
-- Fidelity reviews: a closed review, its ratings, reviewers and frozen result
-- never change; a review is closed only with its frozen result (ips.close_review).
------------------------------------------------------------------------------

CREATE FUNCTION ips.fidelity_review_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF ips.restoring() THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'fidelity review % was closed on %', OLD.review_id, ips.local_date(OLD.closed_at)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s of a closed review is refused.', TG_OP),
                  HINT = 'A closed review is final; open a review of another period.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF NEW.closed_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ips.fidelity_frozen f WHERE f.review_id = NEW.review_id) THEN
        RAISE EXCEPTION 'fidelity review % has no frozen result', NEW.review_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Close a review with ips.close_review(); it freezes the result.';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.fidelity_review_guard() IS
    'Trigger: a closed fidelity review is final (no UPDATE, no DELETE, no reopening); it is closed only with its frozen result.';
CREATE TRIGGER fidelity_review_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.fidelity_review
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_review_guard();

-- Rows that hang on a review (ratings, reviewers, frozen items): only while it is open;
-- frozen items are never changed nor deleted.
CREATE FUNCTION ips.fidelity_part_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    closed timestamptz;
BEGIN
    IF ips.restoring() THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_LEVEL = 'STATEMENT' OR (TG_TABLE_NAME = 'fidelity_frozen' AND TG_OP <> 'INSERT') THEN
        RAISE EXCEPTION 'the frozen result of a fidelity review never changes'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s on ips.%s is refused.', TG_OP, TG_TABLE_NAME),
                  HINT = 'A closed review is final; ips.review_changes() shows what the records say now.';
    END IF;
    SELECT r.closed_at INTO closed FROM ips.fidelity_review r
     WHERE r.review_id = CASE WHEN TG_OP = 'DELETE' THEN OLD.review_id ELSE NEW.review_id END;
    IF closed IS NULL AND TG_OP = 'UPDATE' THEN
        SELECT r.closed_at INTO closed FROM ips.fidelity_review r WHERE r.review_id = OLD.review_id;
    END IF;
    IF closed IS NOT NULL THEN
        RAISE EXCEPTION 'fidelity review % was closed on %',
                        CASE WHEN TG_OP = 'DELETE' THEN OLD.review_id ELSE NEW.review_id END, ips.local_date(closed)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s on ips.%s of a closed review is refused.', TG_OP, TG_TABLE_NAME),
                  HINT = 'A closed review is final; open a review of another period.';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
COMMENT ON FUNCTION ips.fidelity_part_guard() IS
    'Trigger: ratings, reviewers and frozen items of a closed review never change; frozen items are never updated nor deleted.';
CREATE TRIGGER fidelity_rating_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.fidelity_rating
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_part_guard();
CREATE TRIGGER fidelity_reviewer_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.fidelity_reviewer
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_part_guard();
CREATE TRIGGER fidelity_frozen_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.fidelity_frozen
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_part_guard();
CREATE TRIGGER fidelity_frozen_no_truncate BEFORE TRUNCATE ON ips.fidelity_frozen
    FOR EACH STATEMENT EXECUTE FUNCTION ips.fidelity_part_guard();

-- consent refusals are append-only (90_security.sql)
-- append-only, for every writer (ips.consent_refusal_guard, 88_table_rules.sql)
CREATE TRIGGER consent_refusal_append_only BEFORE UPDATE OR DELETE ON ips.consent_refusal
    FOR EACH ROW EXECUTE FUNCTION ips.consent_refusal_guard();
CREATE TRIGGER consent_refusal_no_truncate BEFORE TRUNCATE ON ips.consent_refusal
    FOR EACH STATEMENT EXECUTE FUNCTION ips.consent_refusal_guard();

-- ips.close_review runs as definer: only the owner writes ips.fidelity_frozen (40_fidelity.sql)
CREATE OR REPLACE FUNCTION ips.close_review(review_id bigint) RETURNS void
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

-- No existence oracle on host keys (issue 13 item 2): ips.add_client() of a key that is
-- registered already registers the caller's team for that client and answers as for a
-- new key (1.1 answered 23505); a client may be registered by several teams; staff
-- update a client's birth year and municipality only, never its host key
-- (apply_security, at the end).
ALTER TABLE ips.client_intake DROP CONSTRAINT client_intake_pkey;
ALTER TABLE ips.client_intake ADD CONSTRAINT client_intake_pkey PRIMARY KEY (client_id, team_id);
CREATE INDEX client_intake_team_idx ON ips.client_intake (team_id, client_id);
COMMENT ON TABLE ips.client_intake IS
    'The teams whose specialist or supervisor registered a client with ips.add_client(), one row per team; each sees the client-level record (client, care relationships, consents, refusals) from then on, before and after its referral.';
CREATE OR REPLACE FUNCTION ips.add_client(host_ref text, birth_year int DEFAULT NULL, municipality text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.require(host_ref, 'host_ref');
    IF btrim(host_ref) = '' OR length(host_ref) > 200 THEN
        RAISE EXCEPTION 'host_ref "%" is not a usable key', left(host_ref, 200)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the host system''s client key (1 to 200 characters), never a name or identity code.';
    END IF;
    IF birth_year IS NOT NULL AND (birth_year < 1900 OR birth_year > extract(year FROM ips.local_date(now()))) THEN
        RAISE EXCEPTION 'birth year % is out of range', birth_year
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give a four-digit year in the past, or NULL.';
    END IF;
    IF length(municipality) > 200 THEN
        RAISE EXCEPTION 'municipality of ips.client is % characters long, more than 200', length(municipality)
            USING ERRCODE = 'string_data_right_truncation', HINT = 'Give the municipality''s name (at most 200 characters), or NULL.';
    END IF;
    INSERT INTO ips.client AS c (host_ref, birth_year, municipality)
    VALUES (add_client.host_ref, add_client.birth_year, add_client.municipality)
    ON CONFLICT ON CONSTRAINT client_host_ref_key DO NOTHING
    RETURNING c.client_id INTO id;
    IF id IS NULL THEN
        SELECT c.client_id INTO STRICT id FROM ips.client c WHERE c.host_ref = add_client.host_ref;
        UPDATE ips.client c
           SET birth_year = coalesce(c.birth_year, add_client.birth_year),
               municipality = coalesce(c.municipality, add_client.municipality)
         WHERE c.client_id = id
           AND (c.birth_year IS NULL AND add_client.birth_year IS NOT NULL
                OR c.municipality IS NULL AND add_client.municipality IS NOT NULL);
        INSERT INTO ips.client_intake (client_id, team_id, registered_by)
        SELECT id, s.team_id, ips.caller()
          FROM ips.staff s WHERE s.db_role = ips.caller() AND s.role IN ('specialist', 'supervisor')
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.add_client(text, int, text) IS
    'Registers a client in the caller''s team by the host system''s key and returns the client id; a key registered already (by any team) gives that client, exactly as a new one.';
ALTER FUNCTION ips.add_client(text, int, text) SECURITY DEFINER;

-- ===== bounded input and settings (issue 13)
-- ips.not_found: a NULL id is a missing argument (22004); ips.check_code: a NULL code too (in C).
CREATE OR REPLACE FUNCTION ips.not_found(what text, id bigint) RETURNS void
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
COMMENT ON FUNCTION ips.check_code(text, text, text) IS 'Internal: raises 22023 with the valid codes as hint unless code belongs to category; 22004 when code is NULL.';

-- A NULL client of withdraw_consent, a NULL item or score of rate: 22004 like every missing argument.
CREATE OR REPLACE FUNCTION ips.withdraw_consent(client_id bigint, scope text, withdrawn_on date) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.consent;
BEGIN
    PERFORM ips.require(withdraw_consent.client_id, 'client_id');
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
CREATE OR REPLACE FUNCTION ips.rate(review_id bigint, item text, score int, note text DEFAULT NULL) RETURNS void
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

-- Reference data that ips_admin edits: codes and labels of a readable length.
CREATE TRIGGER vocabulary_bounds BEFORE INSERT OR UPDATE ON ips.vocabulary
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('category:100', 'code:100');
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


ALTER TABLE ips.consent_refusal
    ADD CONSTRAINT consent_refusal_dates_finite CHECK (isfinite(refused_on));
CREATE TRIGGER consent_refusal_bounds BEFORE INSERT OR UPDATE ON ips.consent_refusal
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('refused_on', 'recorded_at');
CREATE TRIGGER client_intake_bounds BEFORE INSERT OR UPDATE ON ips.client_intake
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('registered_at');

-- ===== analysts: suppression and team fidelity (issue 13)
-- Secondary (complementary) suppression of one row of outcomes, as Statistics Finland and
-- THL practise it: after the small cells (1 .. threshold-1) are suppressed, no suppressed
-- cell and no small group of people may be derived from the cells still shown in the row.
-- cells: 1 served, 2 working, 3 served out of work at entry, 4 of them working, 5 job starts,
-- 6 first jobs, 7 education starts, 8 jobs 90 days known, 9 of them retained, 10 closures,
-- 11 .. 17 closures by reason (stable_employment, client_choice, moved, referred_elsewhere,
-- disengaged, deceased, never_engaged; they add up to the closures).
-- The groups a difference of shown cells counts (each must be 0 or at least the threshold):
--   served - working, served out of work - working out of work, served - served out of work,
--   working - working out of work, served - working out of work,
--   served - working - served out of work + working out of work
--   (not working and not out of work at entry), jobs known - jobs retained, job starts - first
--   jobs; and closures - the shown reasons (the closures of the suppressed reasons together).
-- A group found small suppresses the smallest non-zero cell of its difference (a reason, for
-- the closures; the closures themselves when no reason is left), and the check runs again
-- until nothing changes.  NULL threshold (or 1 and less): the cells as they are.
CREATE FUNCTION ips.outcomes_suppress(cells bigint[], threshold int) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v bigint[] := cells;
    -- signed cell numbers of each difference (0: unused)
    diffs constant int[] := '{{1,-2,0,0},{3,-4,0,0},{1,-3,0,0},{2,-4,0,0},{1,-4,0,0},{1,-2,-3,4},{8,-9,0,0},{5,-6,0,0}}';
    changed boolean;
    total bigint;
    pick int;
    k int;
BEGIN
    IF threshold IS NULL OR threshold <= 1 OR cells IS NULL THEN
        RETURN cells;
    END IF;
    IF cardinality(cells) <> 17 THEN
        RAISE EXCEPTION 'outcomes_suppress needs the 17 cells of a row, not %', cardinality(cells)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'See the comment of ips.outcomes_suppress.';
    END IF;
    -- primary suppression
    FOR i IN 1 .. 17 LOOP
        IF v[i] > 0 AND v[i] < threshold THEN
            v[i] := NULL;
        END IF;
    END LOOP;
    -- secondary suppression, until no small group can be derived
    LOOP
        changed := false;
        FOR d IN 1 .. array_length(diffs, 1) LOOP
            total := 0;
            pick := NULL;
            FOR j IN 1 .. 4 LOOP
                k := diffs[d][j];
                CONTINUE WHEN k = 0;
                IF v[abs(k)] IS NULL THEN
                    total := NULL;
                    EXIT;
                END IF;
                total := total + sign(k) * v[abs(k)];
                IF v[abs(k)] > 0 AND (pick IS NULL OR v[abs(k)] <= v[pick]) THEN
                    pick := abs(k);
                END IF;
            END LOOP;
            IF total > 0 AND total < threshold THEN
                v[pick] := NULL;
                changed := true;
            END IF;
        END LOOP;
        IF v[10] IS NOT NULL THEN
            total := v[10];
            pick := NULL;
            FOR i IN 11 .. 17 LOOP
                IF v[i] IS NOT NULL THEN
                    total := total - v[i];
                    IF v[i] > 0 AND (pick IS NULL OR v[i] <= v[pick]) THEN
                        pick := i;
                    END IF;
                END IF;
            END LOOP;
            IF total > 0 AND total < threshold THEN
                v[coalesce(pick, 10)] := NULL;
                changed := true;
            END IF;
        END IF;
        EXIT WHEN NOT changed;
    END LOOP;
    RETURN v;
END $$;
COMMENT ON FUNCTION ips.outcomes_suppress(bigint[], int) IS
    'Small-cell and secondary (complementary) suppression of one row of outcomes (17 counts, see the function''s comment): no suppressed cell and no group of 1 .. threshold-1 can be derived from the shown cells of the row.';

-- A percentage of two shown counts, NULL when either is suppressed or the denominator is 0.
CREATE FUNCTION ips.rate_of(num bigint, den bigint) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN num IS NULL OR den IS NULL OR den = 0 THEN NULL ELSE round(num * 100.0 / den, 1) END
$$;
COMMENT ON FUNCTION ips.rate_of(bigint, bigint) IS 'Percentage num/den to one decimal; NULL when either is NULL (suppressed) or den is 0.';

CREATE OR REPLACE FUNCTION ips.outcomes_quarterly_for(threshold int DEFAULT NULL)
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
           x.v[1], x.v[2], ips.rate_of(x.v[2], x.v[1]),
           x.v[3], x.v[4], ips.rate_of(x.v[4], x.v[3]),
           ips.setting_value('benchmark_employment_minimal')::numeric, ips.setting_value('benchmark_employment_average')::numeric,
           ips.setting_value('benchmark_employment_excellent')::numeric, ips.setting_value('benchmark_employment_uk')::numeric,
           x.v[5], x.v[6],
           CASE WHEN x.v[6] IS NULL THEN NULL ELSE c.median_days_to_first_job::numeric END,
           x.v[7],
           x.v[8], x.v[9], ips.rate_of(x.v[9], x.v[8]),
           x.v[10], x.v[11], x.v[12], x.v[13], x.v[14], x.v[15], x.v[16], x.v[17],
           th
      FROM ips.outcomes_quarterly_counts c
     CROSS JOIN LATERAL (SELECT ips.outcomes_suppress(ARRAY[c.served, c.working, c.served_oow, c.working_oow,
                                                            c.job_starts, c.first_jobs, c.education_starts,
                                                            c.jobs_90_known, c.jobs_90_retained, c.closures,
                                                            c.stable_employment, c.client_choice, c.moved,
                                                            c.referred_elsewhere, c.disengaged, c.deceased,
                                                            c.never_engaged], th) AS v) x
     ORDER BY c.team_id, c.quarter_start;
END $$;
COMMENT ON FUNCTION ips.outcomes_quarterly_for(int) IS
    'Outcomes per team and quarter with counts of 1 .. threshold-1 people suppressed (NULL), and the cells from which one could be derived (ips.outcomes_suppress), and rates and medians built on them; the caller''s own threshold (setting small_cell_threshold unless superuser or ips_admin) is the least applied.';



-- Team fidelity for analysts: team-level evidence, P0002 for a team the caller may not see.
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


CREATE OR REPLACE FUNCTION ips.fidelity_check_period(team_id bigint, period_start date, period_end date) RETURNS void
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

ALTER FUNCTION ips.fidelity_summary(bigint, date, date) SECURITY DEFINER;

COMMENT ON FUNCTION ips.fidelity_summary(bigint, date, date) IS
    'Total of the scored items, how many are scored, and the band once all 25 are; from the frozen result of the closed review of exactly that period if there is one, else computed now. Runs as owner (it shows no person-level data), for any team the caller may see (ips.team_visible), else P0002.';

-- ===== the ledger: change log and access log (issue 14)
-- Entries unchained with their transaction id; blocks sealed after commit; the
-- chain of 1.0/1.1 is carried over as each log's first ("legacy") block by the
-- ips.seal() at the end of this section (docs/ledger.md).
DROP TRIGGER change_log_seal ON ips.change_log;
DROP TRIGGER change_log_no_truncate ON ips.change_log;
DROP TRIGGER access_log_seal ON ips.access_log;
DROP TRIGGER access_log_no_truncate ON ips.access_log;
DROP FUNCTION ips.log_seal();
ALTER TABLE ips.change_log ALTER COLUMN prev_hash DROP NOT NULL, ADD COLUMN xid xid8;
ALTER TABLE ips.access_log ALTER COLUMN prev_hash DROP NOT NULL, ADD COLUMN xid xid8;
COMMENT ON TABLE ips.change_log IS 'Append-only log of every change to person-level tables (who, when, table, key, old and new row); each entry hashed with SHA-256, committed transactions sealed into ips.ledger_block; check it with ips.verify_change_log().';
COMMENT ON COLUMN ips.change_log.seq IS 'Position of the entry: increasing, with gaps where a transaction rolled back (ips.change_log_seq).';
COMMENT ON COLUMN ips.change_log.db_role IS 'The role on whose behalf the change ran (ips.caller(), also inside SECURITY DEFINER functions).';
COMMENT ON COLUMN ips.change_log.prev_hash IS 'Entries of 1.0/1.1 only: hash of the entry before (32 zero bytes for the first); NULL for entries of 1.2, which blocks chain.';
COMMENT ON COLUMN ips.change_log.hash IS 'SHA-256 of the entry''s canonical content (docs/ledger.md); for entries of 1.0/1.1 prev_hash included.';
COMMENT ON COLUMN ips.change_log.xid IS 'The writing transaction (pg_current_xact_id()); NULL for entries of 1.0/1.1.';
COMMENT ON TABLE ips.access_log IS 'Append-only log of who viewed which client''s record, when, why and what was shown; each entry hashed with SHA-256, sealed into ips.ledger_block; see ips.access_report() and ips.verify_access_log().';
COMMENT ON COLUMN ips.access_log.prev_hash IS 'Entries of 1.0/1.1 only: hash of the entry before; NULL for entries of 1.2.';
COMMENT ON COLUMN ips.access_log.hash IS 'SHA-256 of the entry''s canonical content (docs/ledger.md).';
COMMENT ON COLUMN ips.access_log.xid IS 'The writing transaction; NULL for entries of 1.0/1.1.';
CREATE SEQUENCE ips.change_log_seq CACHE 32;
COMMENT ON SEQUENCE ips.change_log_seq IS 'Positions of ips.change_log entries.';
SELECT pg_catalog.setval('ips.change_log_seq', coalesce((SELECT max(seq) FROM ips.change_log), 0) + 1, false);
CREATE SEQUENCE ips.access_log_seq CACHE 32;
COMMENT ON SEQUENCE ips.access_log_seq IS 'Positions of ips.access_log entries.';
SELECT pg_catalog.setval('ips.access_log_seq', coalesce((SELECT max(seq) FROM ips.access_log), 0) + 1, false);

-- Transactions that wrote entries and are not sealed yet (one row per transaction and log).
CREATE TABLE ips.ledger_pending (
    log       text NOT NULL CHECK (log IN ('change_log', 'access_log')),
    xid       xid8 NOT NULL,
    first_seq bigint NOT NULL
);
COMMENT ON TABLE ips.ledger_pending IS 'Transactions that wrote log entries and are not sealed yet: written by the writer in the same transaction as its entries, taken by ips.seal() once committed.';

-- Sealed blocks: committed transactions chained by hash, in sealing order.
CREATE TABLE ips.ledger_block (
    log         text NOT NULL CHECK (log IN ('change_log', 'access_log')),
    block_id    bigint NOT NULL CHECK (block_id > 0),
    sealed_at   timestamptz NOT NULL,
    prev_hash   bytea NOT NULL,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    entries     bigint NOT NULL CHECK (entries >= 0),
    xids        xid8[] NOT NULL,
    legacy      boolean NOT NULL,
    root        bytea NOT NULL,
    hash        bytea NOT NULL,
    archived_at timestamptz,
    PRIMARY KEY (log, block_id)
);
CREATE INDEX ledger_block_seq_idx ON ips.ledger_block (log, first_seq);
COMMENT ON TABLE ips.ledger_block IS 'The sealed blocks of the change log and the access log: each covers the entries of the transactions it lists (xids, seq range), with their Merkle root (RFC 9162) and a hash chained to the block before; written only by ips.seal().';
COMMENT ON COLUMN ips.ledger_block.legacy IS 'true: the chain of 1.0/1.1 carried over by ALTER EXTENSION UPDATE (root = the hash of its last entry).';
COMMENT ON COLUMN ips.ledger_block.archived_at IS 'When ips.archive_blocks() removed the block''s entries from the live table (the block stays in the chain).';

-- The ledger in C.
CREATE FUNCTION ips.ledger_guard() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_ledger_guard' LANGUAGE C;
COMMENT ON FUNCTION ips.ledger_guard() IS 'Trigger: refuses INSERT, UPDATE, DELETE and TRUNCATE on the ledger''s tables to every role (42501); only the writer, ips.seal() and ips.archive_blocks() write them.';
COMMENT ON FUNCTION ips.change_log_row() IS 'Trigger: appends the rows a statement changed in a person-level table to ips.change_log, from the statement''s transition tables ips_old/ips_new (arguments: the key columns).';
CREATE FUNCTION ips.access_log_append(accessed_at timestamptz, db_role name, staff_id bigint, client_id bigint,
                                      purpose text, shown jsonb) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ips_access_log_append' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ips.access_log_append(timestamptz, name, bigint, bigint, text, jsonb) IS
    'Internal (the extension owner only): appends one entry to ips.access_log in the calling transaction; returns its seq.';
CREATE FUNCTION ips.seal() RETURNS bigint AS 'MODULE_PATHNAME', 'ips_ledger_seal' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ips.seal() IS
    'Seals the committed, unsealed transactions of both logs into one new block each; returns the entries sealed. Run it every 30 s (pg_cron) or let the digests and verifiers do it.';
CREATE FUNCTION ips.ledger_verify(log text, digest jsonb, since boolean, OUT seq bigint, OUT problem text) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ips_ledger_verify' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ips.ledger_verify(text, jsonb, boolean) IS
    'Internal: seals, then checks a log''s blocks and entries in constant memory (against a digest when given; only after it when since).';
CREATE FUNCTION ips.archive_blocks(log text, through_block bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ips_archive_blocks' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION ips.archive_blocks(text, bigint) IS
    'Retention (the extension owner only): removes the entries of the log''s blocks up to through_block from the live table after they were exported; the blocks stay in the chain, marked archived. Returns the entries removed.';

CREATE TRIGGER change_log_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.change_log
    FOR EACH ROW EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER change_log_no_truncate BEFORE TRUNCATE ON ips.change_log
    FOR EACH STATEMENT EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER access_log_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.access_log
    FOR EACH ROW EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON ips.access_log
    FOR EACH STATEMENT EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER ledger_pending_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.ledger_pending
    FOR EACH ROW EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER ledger_pending_no_truncate BEFORE TRUNCATE ON ips.ledger_pending
    FOR EACH STATEMENT EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER ledger_block_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.ledger_block
    FOR EACH ROW EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER ledger_block_no_truncate BEFORE TRUNCATE ON ips.ledger_block
    FOR EACH STATEMENT EXECUTE FUNCTION ips.ledger_guard();

-- Digests: what a DBA keeps outside the database.
CREATE FUNCTION ips.ledger_digest(log text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d jsonb;
BEGIN
    IF log IS NULL OR log NOT IN ('change_log', 'access_log') THEN
        RAISE EXCEPTION '"%" is not a log of ips', log
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give change_log or access_log.';
    END IF;
    PERFORM ips.seal();
    SELECT jsonb_build_object('log', ledger_digest.log, 'database', current_database(),
                              'block_id', coalesce(max(b.block_id), 0),
                              'hash', coalesce((SELECT encode(h.hash, 'hex') FROM ips.ledger_block h
                                                 WHERE h.log = ledger_digest.log ORDER BY h.block_id DESC LIMIT 1),
                                               repeat('0', 64)),
                              'sealed_at', max(b.sealed_at),
                              'entries', coalesce(sum(b.entries), 0),
                              'last_seq', max(b.last_seq),
                              'archived_through', coalesce(max(b.block_id) FILTER (WHERE b.archived_at IS NOT NULL), 0),
                              'taken_at', clock_timestamp())
      INTO d
      FROM ips.ledger_block b WHERE b.log = ledger_digest.log;
    RETURN d;
END $$;
COMMENT ON FUNCTION ips.ledger_digest(text) IS 'Internal: seals, then the digest of a log (its newest block''s id and hash).';

CREATE FUNCTION ips.change_log_digest() RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$ SELECT ips.ledger_digest('change_log') $$;
COMMENT ON FUNCTION ips.change_log_digest() IS
    'Seals, then returns the digest of ips.change_log (newest block id and hash, entries, time): covers every entry committed before it was taken; keep it outside the database and check it with ips.verify_change_log(digest).';
CREATE FUNCTION ips.access_log_digest() RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$ SELECT ips.ledger_digest('access_log') $$;
COMMENT ON FUNCTION ips.access_log_digest() IS
    'Seals, then returns the digest of ips.access_log: keep it outside the database and check it with ips.verify_access_log(digest).';

CREATE OR REPLACE FUNCTION ips.verify_change_log() RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('change_log', NULL, false) v
$$;
COMMENT ON FUNCTION ips.verify_change_log() IS 'Seals, then checks every block and entry of ips.change_log (seq, problem); no rows while the log is intact.';
CREATE FUNCTION ips.verify_change_log(digest jsonb) RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('change_log', digest, false) v
$$;
COMMENT ON FUNCTION ips.verify_change_log(jsonb) IS 'As ips.verify_change_log(), and checks that the log extends the digest (kept outside): every entry the digest covers is unchanged, none removed, inserted or re-ordered.';
CREATE FUNCTION ips.verify_change_log_since(digest jsonb) RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('change_log', digest, true) v
$$;
COMMENT ON FUNCTION ips.verify_change_log_since(jsonb) IS 'Incremental: checks that the digest''s block is unchanged and verifies only the blocks sealed after it and their entries.';

CREATE OR REPLACE FUNCTION ips.verify_access_log() RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('access_log', NULL, false) v
$$;
COMMENT ON FUNCTION ips.verify_access_log() IS 'Seals, then checks every block and entry of ips.access_log (seq, problem); no rows while the log is intact.';
CREATE FUNCTION ips.verify_access_log(digest jsonb) RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('access_log', digest, false) v
$$;
COMMENT ON FUNCTION ips.verify_access_log(jsonb) IS 'As ips.verify_access_log(), and checks that the log extends the digest (kept outside).';
CREATE FUNCTION ips.verify_access_log_since(digest jsonb) RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('access_log', digest, true) v
$$;
COMMENT ON FUNCTION ips.verify_access_log_since(jsonb) IS 'Incremental: checks that the digest''s block is unchanged and verifies only the blocks sealed after it and their entries.';

DROP FUNCTION ips.log_first_break(regclass);

SELECT pg_catalog.pg_extension_config_dump('ips.ledger_pending', '');
SELECT pg_catalog.pg_extension_config_dump('ips.ledger_block', '');
SELECT pg_catalog.pg_extension_config_dump('ips.change_log_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.access_log_seq', '');

-- the chain of 1.0/1.1 becomes block 1 of each log
SELECT ips.seal();


-- Settings kept across transactions (issue 14, the ledger's speed targets): the
-- guards read the region's time zone and the earliest fact date in every
-- transaction; extension/lookup.c keeps them, and every change to ips.setting
-- (any statement, any role, also with session_replication_role = replica)
-- tells every session to read them again.
CREATE FUNCTION ips.setting_changed() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_setting_changed' LANGUAGE C;
COMMENT ON FUNCTION ips.setting_changed() IS
    'Trigger: after every statement that changes ips.setting, every session forgets the settings it keeps across transactions (the guards'' time zone and earliest fact date).';
CREATE TRIGGER setting_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ips.setting
    FOR EACH STATEMENT EXECUTE FUNCTION ips.setting_changed();
ALTER TABLE ips.setting ENABLE ALWAYS TRIGGER setting_changed;

-- Staff days kept across transactions (the same way): the staff-day guard
-- (extension/staff_days.c) keeps each person's days on the team from one
-- transaction to the next; every change to ips.staff tells every session to
-- read them again.
CREATE FUNCTION ips.staff_changed() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_staff_changed' LANGUAGE C;
COMMENT ON FUNCTION ips.staff_changed() IS
    'Trigger: after every statement that changes ips.staff, every session forgets the staff members'' days on the team that the staff-day guard keeps across transactions.';
CREATE TRIGGER staff_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ips.staff
    FOR EACH STATEMENT EXECUTE FUNCTION ips.staff_changed();
ALTER TABLE ips.staff ENABLE ALWAYS TRIGGER staff_changed;

-- ===== reads of a client's record: logged even when the reader rolls back (issue 14)
-- 1.1's ips.log_access(client_id, purpose, shown) was executable by staff and took
-- the reader from the session; the writer now takes the reader as arguments and is
-- run only by the autonomous writer of ips.client_record().
DROP FUNCTION ips.log_access(bigint, text, jsonb);
-- Append to the access log (internal): called only by the autonomous writer of
-- ips.client_record() (extension/client_record.c, extension/autonomous.c), in a
-- transaction of its own as the extension owner; no ips role may execute it.
-- The reader's identity comes in as arguments: the worker is not the reader (the
-- defaults serve the owner calling it by hand, with 1.1's three arguments).
CREATE FUNCTION ips.log_access(client_id bigint, purpose text, shown jsonb,
                               accessed_at timestamptz DEFAULT now(), db_role name DEFAULT ips.caller(),
                               staff_id bigint DEFAULT ips.current_staff()) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(log_access.client_id, 'client_id');
    PERFORM ips.require(log_access.purpose, 'purpose');
    PERFORM ips.require(log_access.accessed_at, 'accessed_at');
    PERFORM ips.require(log_access.db_role, 'db_role');
    IF length(log_access.purpose) > 500 THEN
        RAISE EXCEPTION 'purpose is longer than 500 characters'
            USING ERRCODE = 'string_data_right_truncation', HINT = 'A purpose has 1 to 500 characters.';
    ELSIF btrim(log_access.purpose, E' \t\n\r\x0B\f') = '' THEN
        RAISE EXCEPTION 'purpose must not be blank'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A purpose has 1 to 500 characters.';
    END IF;
    -- through the ledger's writer (docs/ledger.md): direct INSERTs into the log are refused
    PERFORM ips.access_log_append(log_access.accessed_at, log_access.db_role, log_access.staff_id,
                                  log_access.client_id, log_access.purpose, coalesce(log_access.shown, '{}'));
END $$;
COMMENT ON FUNCTION ips.log_access(bigint, text, jsonb, timestamptz, name, bigint) IS
    'Internal: appends one entry to ips.access_log (reader''s role and staff id as given); run only by the autonomous writer of ips.client_record(), executable by no ips role.';

-- The record: C (extension/client_record.c), the caller's rights, logged by an
-- autonomous write that stays when the reader's transaction rolls back.
CREATE OR REPLACE FUNCTION ips.client_record(client_id bigint, purpose text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ips_client_record' LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.client_record(bigint, text) IS
    'The shared record of a client as jsonb (client, episode, state history, current job, recent contacts, open alerts, consents), as far as the caller may see it; logged in ips.access_log in a transaction of its own, so the entry stays when the reader rolls back; fails when it cannot be logged.';

-- ===== staff history, jobs, corrections (issue 16)
-- 1. Staff history: days on the team, dated FTE, employment share and weekly hours.
ALTER TABLE ips.staff ALTER COLUMN weekly_hours DROP DEFAULT;
ALTER TABLE ips.staff ADD COLUMN started_on date, ADD COLUMN ended_on date,
    ADD CONSTRAINT staff_dates_check CHECK (ended_on > started_on);
COMMENT ON COLUMN ips.staff.fte IS 'FTE in force now; the dated history is ips.staff_terms.';
COMMENT ON COLUMN ips.staff.weekly_hours IS 'Scheduled hours a week in force now (37.5 x fte when not given); the dated history is ips.staff_terms.';
COMMENT ON COLUMN ips.staff.started_on IS 'First day on the team; NULL: since before any record.';
COMMENT ON COLUMN ips.staff.ended_on IS 'First day no longer on the team (ips.end_staff); NULL: still on the team.';
CREATE TABLE ips.staff_terms (
    staff_id         bigint NOT NULL REFERENCES ips.staff ON DELETE CASCADE,
    from_on          date NOT NULL,
    fte              numeric NOT NULL CHECK (fte > 0 AND fte <= 1),
    employment_share numeric NOT NULL CHECK (employment_share >= 0 AND employment_share <= 1),
    weekly_hours     numeric NOT NULL CHECK (weekly_hours > 0 AND weekly_hours <= 80),
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    recorded_by      name NOT NULL DEFAULT ips.caller(),
    PRIMARY KEY (staff_id, from_on)
);
COMMENT ON TABLE ips.staff_terms IS
    'Dated FTE, employment share and weekly hours of staff: a row is in force from from_on (-infinity: since the start) to the next row; S1, S2, V6, V13 and the specialist rules read the values in force each day.';
-- every person's values of 1.1 are in force since the start
INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours, recorded_at, recorded_by)
SELECT s.staff_id, '-infinity', s.fte, s.employment_share, s.weekly_hours, s.created_at, current_user FROM ips.staff s;
SELECT pg_catalog.pg_extension_config_dump('ips.staff_terms', '');

-- The staff row's dates around the person's records; change_staff leaves ips.staff to the terms' trigger.
CREATE OR REPLACE FUNCTION ips.staff_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n int;
BEGIN
    IF TG_WHEN = 'BEFORE' AND NEW.ended_on <= NEW.started_on THEN
        RAISE EXCEPTION 'end date % is not after the start % of staff member %', NEW.ended_on, NEW.started_on, NEW.staff_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'ended_on is the first day the person is no longer on the team.';
    END IF;
    IF TG_OP = 'INSERT' AND TG_WHEN = 'BEFORE' THEN
        NEW.weekly_hours := coalesce(NEW.weekly_hours, trim_scale(round(37.5 * NEW.fte, 2)));
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' AND TG_WHEN = 'BEFORE' THEN
        IF (NEW.started_on, NEW.ended_on) IS DISTINCT FROM (OLD.started_on, OLD.ended_on) AND NOT ips.loading_rows() THEN
            -- the records in the person's name stay within the days on the team.  FOR UPDATE waits
            -- for the transactions whose contacts hold the row (foreign key), and the checks below
            -- see what they committed.
            PERFORM 1 FROM ips.staff x WHERE x.staff_id = NEW.staff_id FOR UPDATE;
            SELECT (SELECT count(*) FROM ips.contact c WHERE c.staff_id = NEW.staff_id
                       AND (c.at >= ips.local_midnight(NEW.ended_on) OR c.at < ips.local_midnight(NEW.started_on)))
                 + (SELECT count(*) FROM ips.employer_contact c WHERE c.staff_id = NEW.staff_id
                       AND (c.at >= ips.local_midnight(NEW.ended_on) OR c.at < ips.local_midnight(NEW.started_on)))
                 + (SELECT count(*) FROM ips.team_meeting m WHERE m.staff_id = NEW.staff_id
                       AND (m.met_on >= NEW.ended_on OR m.met_on < NEW.started_on))
              INTO n;
            IF n > 0 THEN
                RAISE EXCEPTION 'staff member % has % contact(s), employer contact(s) or team meeting(s) outside % .. %',
                                NEW.staff_id, n, coalesce(NEW.started_on::text, 'the start'),
                                coalesce((NEW.ended_on - 1)::text, 'now')
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          DETAIL = 'A record in a person''s name is dated on a day they are on the team (ended_on is the first day off the team).',
                          HINT = 'Give dates that include the days of the person''s records, or correct the records first.';
            END IF;
            SELECT count(*) INTO n FROM ips.specialist_assignment a
             WHERE a.staff_id = NEW.staff_id AND a.from_on < NEW.started_on;
            IF n > 0 THEN
                RAISE EXCEPTION 'staff member % carries % episode(s) before %', NEW.staff_id, n, NEW.started_on
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          HINT = 'The start is on or before the first day of the person''s assignments.';
            END IF;
            IF NEW.ended_on <= (SELECT max(t.from_on) FROM ips.staff_terms t WHERE t.staff_id = NEW.staff_id)
               OR NEW.started_on > (SELECT min(t.from_on) FROM ips.staff_terms t
                                     WHERE t.staff_id = NEW.staff_id AND isfinite(t.from_on)) THEN
                RAISE EXCEPTION 'the days on the team of staff member % (% .. %) leave out a change of terms',
                                NEW.staff_id, coalesce(NEW.started_on::text, 'the start'), coalesce((NEW.ended_on - 1)::text, 'now')
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Changes of terms (ips.staff_terms) fall on days the person is on the team.';
            END IF;
        END IF;
        IF NEW.ended_on IS NOT NULL AND NEW.ended_on IS DISTINCT FROM OLD.ended_on THEN
            SELECT count(*) INTO n
              FROM ips.specialist_assignment a JOIN ips.episode e ON e.episode_id = a.episode_id
             WHERE a.staff_id = NEW.staff_id AND coalesce(a.to_on, 'infinity') >= NEW.ended_on
               AND (e.closed_on IS NULL OR e.closed_on > NEW.ended_on);
            IF n > 0 THEN
                RAISE EXCEPTION 'staff member % still carries % episode(s) on or after %', NEW.staff_id, n, NEW.ended_on
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          HINT = 'Hand the episodes over with ips.assign_specialist(episode_id, staff_id, from_on) first.';
            END IF;
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
        VALUES (NEW.staff_id, '-infinity', NEW.fte, NEW.employment_share, NEW.weekly_hours)
        ON CONFLICT ON CONSTRAINT staff_terms_pkey DO NOTHING;
    ELSIF (NEW.fte, NEW.employment_share, NEW.weekly_hours) IS DISTINCT FROM (OLD.fte, OLD.employment_share, OLD.weekly_hours) THEN
        -- a direct correction of the values in force now corrects the latest terms
        UPDATE ips.staff_terms t SET fte = NEW.fte, employment_share = NEW.employment_share, weekly_hours = NEW.weekly_hours
         WHERE t.staff_id = NEW.staff_id
           AND t.from_on = (SELECT max(x.from_on) FROM ips.staff_terms x WHERE x.staff_id = NEW.staff_id)
           AND (t.fte, t.employment_share, t.weekly_hours) IS DISTINCT FROM (NEW.fte, NEW.employment_share, NEW.weekly_hours);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ips.staff_guard() IS
    'Trigger: weekly hours 37.5 x FTE when not given; the first ips.staff_terms row of a new person; a direct change of fte, share or hours corrects the latest terms; an end date only when no episode is carried on or after it; start and end dates only around the person''s contacts, employer contacts, meetings, assignments and changes of terms.';

CREATE TRIGGER staff_guard BEFORE INSERT OR UPDATE ON ips.staff
    FOR EACH ROW EXECUTE FUNCTION ips.staff_guard();
CREATE TRIGGER staff_terms_sync AFTER INSERT OR UPDATE ON ips.staff
    FOR EACH ROW EXECUTE FUNCTION ips.staff_guard();

CREATE OR REPLACE FUNCTION ips.staff_terms_restore() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE ips.staff_terms t
       SET fte = NEW.fte, employment_share = NEW.employment_share, weekly_hours = NEW.weekly_hours,
           recorded_at = NEW.recorded_at, recorded_by = NEW.recorded_by
     WHERE t.staff_id = NEW.staff_id AND t.from_on = NEW.from_on;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.staff_terms_restore() IS 'Trigger: an inserted terms row whose key exists already replaces it (pg_restore).';

CREATE TRIGGER staff_terms_restore BEFORE INSERT ON ips.staff_terms
    FOR EACH ROW EXECUTE FUNCTION ips.staff_terms_restore();

CREATE OR REPLACE FUNCTION ips.add_staff(team_id bigint, display_name text, role text,
                              fte numeric DEFAULT 1.0, db_role name DEFAULT NULL,
                              employment_share numeric DEFAULT 1.0,
                              weekly_hours numeric DEFAULT NULL,
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
    IF weekly_hours <= 0 OR weekly_hours > 80 THEN
        RAISE EXCEPTION 'weekly_hours % is out of range', weekly_hours
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
    'Adds a specialist, supervisor or clinician to a team (weekly_hours not given: 37.5 x fte); returns the staff id.';

CREATE OR REPLACE FUNCTION ips.end_staff(staff_id bigint, ended_on date) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s ips.staff;
BEGIN
    PERFORM ips.require(end_staff.staff_id, 'staff_id');
    PERFORM ips.require(end_staff.ended_on, 'ended_on');
    SELECT * INTO s FROM ips.staff x WHERE x.staff_id = end_staff.staff_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ips.not_found('staff member', end_staff.staff_id);
    END IF;
    IF s.ended_on IS NOT NULL THEN
        RAISE EXCEPTION 'staff member % left the team on % already', s.staff_id, s.ended_on
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Add the person again if they came back.';
    END IF;
    IF NOT isfinite(ended_on) THEN
        RAISE EXCEPTION 'end date % is not a day', ended_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the first day the person is no longer on the team.';
    END IF;
    IF ended_on <= s.started_on THEN
        RAISE EXCEPTION 'end date % is not after the start % of staff member %', ended_on, s.started_on, s.staff_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'ended_on is the first day the person is no longer on the team.';
    END IF;
    IF ended_on <= (SELECT max(t.from_on) FROM ips.staff_terms t WHERE t.staff_id = s.staff_id) THEN
        RAISE EXCEPTION 'end date % is not after the last change of terms of staff member %', ended_on, s.staff_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Check the date.';
    END IF;
    UPDATE ips.staff x SET ended_on = end_staff.ended_on WHERE x.staff_id = s.staff_id;
END $$;
COMMENT ON FUNCTION ips.end_staff(bigint, date) IS
    'Takes a staff member off the team from ended_on (the first day no longer on the team); their open episodes must have been handed over (ips.assign_specialist) before.';

CREATE OR REPLACE FUNCTION ips.change_staff(staff_id bigint, from_on date, fte numeric DEFAULT NULL,
                                 employment_share numeric DEFAULT NULL, weekly_hours numeric DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s ips.staff;
    cur ips.staff_terms;
    nf numeric;
    nh numeric;
    latest date;
BEGIN
    PERFORM ips.require(change_staff.staff_id, 'staff_id');
    PERFORM ips.require(change_staff.from_on, 'from_on');
    SELECT * INTO s FROM ips.staff x WHERE x.staff_id = change_staff.staff_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ips.not_found('staff member', change_staff.staff_id);
    END IF;
    IF fte IS NULL AND employment_share IS NULL AND weekly_hours IS NULL THEN
        RAISE EXCEPTION 'nothing to change' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Give fte, employment_share or weekly_hours.';
    END IF;
    IF NOT isfinite(from_on) OR from_on > ips.local_date(now()) THEN
        RAISE EXCEPTION 'change date % is in the future', from_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record a change of terms on or after the day it takes effect.';
    END IF;
    IF from_on < s.started_on OR from_on >= s.ended_on THEN
        RAISE EXCEPTION 'staff member % is not on the team on %', s.staff_id, from_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Change the terms of a day the person is on the team.';
    END IF;
    IF fte <= 0 OR fte > 1 THEN
        RAISE EXCEPTION 'fte % is out of range', fte
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the share of a full-time post, more than 0 and at most 1.';
    END IF;
    IF employment_share < 0 OR employment_share > 1 THEN
        RAISE EXCEPTION 'employment_share % is out of range', employment_share
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the share of working time on employment services, from 0 to 1.';
    END IF;
    IF weekly_hours <= 0 OR weekly_hours > 80 THEN
        RAISE EXCEPTION 'weekly_hours % is out of range', weekly_hours
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the scheduled hours per week, more than 0 and at most 80.';
    END IF;
    SELECT max(t.from_on) INTO latest FROM ips.staff_terms t WHERE t.staff_id = s.staff_id;
    IF from_on < latest THEN
        RAISE EXCEPTION 'change date % is before the last change of terms of staff member % on %', from_on, s.staff_id, latest
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Changes of terms follow each other in time.';
    END IF;
    SELECT * INTO cur FROM ips.staff_terms t WHERE t.staff_id = s.staff_id AND t.from_on = latest;
    nf := coalesce(fte, cur.fte);
    -- hours not given with a new FTE: the hours scale with it (37.5 x 0.5 -> 37.5 x 0.8)
    nh := coalesce(weekly_hours, trim_scale(round(cur.weekly_hours * nf / cur.fte, 2)));
    IF nh > 80 THEN
        RAISE EXCEPTION 'weekly_hours % is out of range', nh
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the scheduled hours per week, more than 0 and at most 80.';
    END IF;
    INSERT INTO ips.staff_terms AS t (staff_id, from_on, fte, employment_share, weekly_hours)
    VALUES (s.staff_id, change_staff.from_on, nf, coalesce(employment_share, cur.employment_share), nh)
    ON CONFLICT ON CONSTRAINT staff_terms_pkey
    DO UPDATE SET fte = EXCLUDED.fte, employment_share = EXCLUDED.employment_share, weekly_hours = EXCLUDED.weekly_hours,
                  recorded_at = EXCLUDED.recorded_at, recorded_by = EXCLUDED.recorded_by;
    UPDATE ips.staff x SET fte = nf, employment_share = coalesce(change_staff.employment_share, cur.employment_share),
                           weekly_hours = nh
     WHERE x.staff_id = s.staff_id      -- (the terms' trigger may have done it)
       AND (x.fte, x.employment_share, x.weekly_hours) IS DISTINCT FROM (nf, coalesce(change_staff.employment_share, cur.employment_share), nh);
END $$;
COMMENT ON FUNCTION ips.change_staff(bigint, date, numeric, numeric, numeric) IS
    'Changes a staff member''s FTE, employment share or weekly hours from a day on (earlier days keep their values; hours not given scale with a new FTE).';

CREATE OR REPLACE FUNCTION ips.staff_spans(team_ids bigint[])
RETURNS TABLE(team_id bigint, staff_id bigint, role text, from_on date, to_on date,
              fte numeric, employment_share numeric, weekly_hours numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT x.team_id, x.staff_id, x.role, x.f, x.t, x.fte, x.employment_share, x.weekly_hours
      FROM (SELECT s.team_id, s.staff_id, s.role,
                   greatest(t.from_on, coalesce(s.started_on, '-infinity')) AS f,
                   least(coalesce(lead(t.from_on) OVER (PARTITION BY t.staff_id ORDER BY t.from_on), 'infinity'),
                         coalesce(s.ended_on, 'infinity')) AS t,
                   t.fte, t.employment_share, t.weekly_hours
              FROM ips.staff s JOIN ips.staff_terms t ON t.staff_id = s.staff_id
             WHERE s.team_id = ANY (staff_spans.team_ids)) x
     WHERE x.f < x.t
$$;
COMMENT ON FUNCTION ips.staff_spans(bigint[]) IS
    'Internal: the days each staff member of the teams was on the team with the terms in force, as spans [from_on, to_on) (open ends are infinite).';

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
    IF from_on >= s.ended_on OR from_on < s.started_on THEN
        RAISE EXCEPTION 'staff member % is not on the team on %', s.staff_id, from_on
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Staff member %s is on the team from %s until the day before %s.', s.staff_id,
                                coalesce(s.started_on::text, 'the start'), coalesce(s.ended_on::text, 'today'));
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
COMMENT ON FUNCTION ips.assign_specialist(bigint, bigint, date) IS 'Makes a specialist of the team responsible for an episode from a day on.';

CREATE OR REPLACE FUNCTION ips.assignment_staff_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s ips.staff;
BEGIN
    SELECT * INTO s FROM ips.staff x WHERE x.staff_id = NEW.staff_id;
    IF NEW.from_on < s.started_on OR NEW.from_on >= s.ended_on OR coalesce(NEW.to_on, 'infinity') >= s.ended_on THEN
        RAISE EXCEPTION 'staff member % is not on the team for the whole assignment from %', NEW.staff_id, NEW.from_on
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Staff member %s is on the team from %s until the day before %s; assign another specialist.',
                                s.staff_id, coalesce(s.started_on::text, 'the start'), coalesce(s.ended_on::text, 'today'));
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.assignment_staff_guard() IS 'Trigger: an assignment lies within the specialist''s days on the team.';

CREATE TRIGGER specialist_assignment_staff_guard BEFORE INSERT ON ips.specialist_assignment
    FOR EACH ROW EXECUTE FUNCTION ips.assignment_staff_guard();

CREATE OR REPLACE VIEW ips.caseload AS
SELECT s.staff_id, s.team_id, s.display_name, s.fte,
       count(e.episode_id) FILTER (WHERE e.state NOT IN ('referred', 'closed')) AS active_clients,
       round(count(e.episode_id) FILTER (WHERE e.state NOT IN ('referred', 'closed')) / s.fte, 1) AS clients_per_fte
  FROM ips.staff s
  LEFT JOIN ips.episode e ON e.specialist_id = s.staff_id AND e.state <> 'closed'
 WHERE s.role = 'specialist'
   AND (s.ended_on IS NULL OR s.ended_on > ips.local_date(now()))
   AND (s.started_on IS NULL OR s.started_on <= ips.local_date(now()))
 GROUP BY s.staff_id;
COMMENT ON VIEW ips.caseload IS 'Per specialist on the team today: active clients (open episodes past referred), fte in force, clients per fte.';

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

-- 8 and 9. Remote contacts are not community-based; an in-person employer visit is recorded
-- once, in the job-development log.  Rows of 1.1 that break the rule stop the update with the
-- way to mend them.
DO $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM ips.contact c WHERE c.kind = 'employer_for_client' AND c.mode = 'in_person';
    IF n > 0 THEN
        RAISE EXCEPTION '% in-person contacts of kind employer_for_client must move to ips.employer_contact first', n
            USING ERRCODE = 'check_violation',
                  HINT = 'Record each with ips.record_employer_contact(staff_id, employer_id, at, true, episode_id) and delete the contact row (or set its mode), then update again.';
    END IF;
END $$;
ALTER TABLE ips.contact
    ADD CONSTRAINT contact_employer_visit_check CHECK (NOT (kind = 'employer_for_client' AND mode = 'in_person'));

CREATE OR REPLACE FUNCTION ips.record_contact(episode_id bigint, staff_id bigint, at timestamptz, kind text,
                                   mode text DEFAULT 'in_person', setting text DEFAULT NULL,
                                   minutes int DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.check_code('contact_kind', kind, 'contact kind');
    PERFORM ips.check_code('contact_mode', mode, 'contact mode');
    -- not given: an in-person contact is in the community, a remote one is made from the office
    -- (phone, video and messages are never community-based services, fidelity V13)
    setting := coalesce(setting, CASE WHEN mode = 'in_person' THEN 'community' ELSE 'office' END);
    PERFORM ips.check_code('contact_setting', setting, 'contact setting');
    IF kind = 'employer_for_client' AND mode = 'in_person' THEN
        RAISE EXCEPTION 'an in-person employer contact belongs in the job-development log'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Only ips.employer_contact rows count for rapid job search, V4 and V6.',
                  HINT = 'Record it with ips.record_employer_contact(staff_id, employer_id, at, true, episode_id).';
    END IF;
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
    'Records a contact of an episode (kind, mode, setting: default community in person, office otherwise; minutes); an in-person employer contact goes to ips.record_employer_contact. Returns its id.';

-- 5. Dates that make sense: a job agreed for later is a plan; start_job resumes a paused
-- episode; (a closure not before the episode's facts is checked by the state machine, in C).
CREATE TABLE ips.job_plan (
    plan_id        bigserial PRIMARY KEY,
    episode_id     bigint NOT NULL REFERENCES ips.episode,
    client_id      bigint NOT NULL,
    employer_id    bigint NOT NULL REFERENCES ips.employer,
    starts_on      date NOT NULL,
    kind           text NOT NULL DEFAULT 'competitive'
                   CHECK (kind IN ('competitive', 'wage_subsidy', 'self_employed', 'work_trial', 'paid_work_trial')),
    occupation     text CHECK (occupation ~ '^[0-9]{1,4}$'),
    hours_per_week numeric CHECK (hours_per_week > 0 AND hours_per_week <= 80),
    title          text,
    job_id         bigint REFERENCES ips.job,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_plan_episode_idx ON ips.job_plan (episode_id);
COMMENT ON TABLE ips.job_plan IS 'Jobs agreed to start later (no state change until ips.start_planned_job records the start; job_id then).';
SELECT pg_catalog.pg_extension_config_dump('ips.job_plan', '');
SELECT pg_catalog.pg_extension_config_dump('ips.job_plan_plan_id_seq', '');

CREATE OR REPLACE FUNCTION ips.job_plan_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e ips.episode;
BEGIN
    SELECT * INTO e FROM ips.episode x WHERE x.episode_id = NEW.episode_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('episode', NEW.episode_id);
    END IF;
    IF NEW.client_id IS NOT NULL AND NEW.client_id <> e.client_id THEN
        RAISE EXCEPTION 'client % does not match client % of episode %', NEW.client_id, e.client_id, e.episode_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave client_id empty; it is taken from the episode.';
    END IF;
    NEW.client_id := e.client_id;
    IF ips.loading_rows() THEN
        RETURN NEW;     -- a restore: the plan was checked when it was made
    END IF;
    IF TG_OP = 'INSERT' AND e.state = 'closed' THEN
        RAISE EXCEPTION 'episode % is closed', e.episode_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Refer the client again to start a new episode.';
    END IF;
    IF NEW.job_id IS NOT NULL AND NEW.job_id IS DISTINCT FROM OLD.job_id
       AND NOT EXISTS (SELECT 1 FROM ips.job j WHERE j.job_id = NEW.job_id AND j.episode_id = NEW.episode_id) THEN
        RAISE EXCEPTION 'job % is not a job of episode %', NEW.job_id, NEW.episode_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The job of a plan is recorded by ips.start_planned_job(plan_id).';
    END IF;
    IF NEW.starts_on < e.referred_on THEN
        RAISE EXCEPTION 'planned start % is before the referral of episode % on %', NEW.starts_on, e.episode_id, e.referred_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Check the date.';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.job_plan_guard() IS 'Trigger: a job plan carries its episode''s client, is not made for a closed episode nor dated before the referral, and its job is one of the episode.';

CREATE TRIGGER job_plan_guard BEFORE INSERT OR UPDATE ON ips.job_plan
    FOR EACH ROW EXECUTE FUNCTION ips.job_plan_guard();

CREATE OR REPLACE FUNCTION ips.plan_job(episode_id bigint, employer_id bigint, starts_on date, kind text DEFAULT 'competitive',
                             occupation text DEFAULT NULL, hours_per_week numeric DEFAULT NULL,
                             title text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e ips.episode;
    id bigint;
BEGIN
    PERFORM ips.check_code('job_kind', kind, 'job kind');
    PERFORM ips.require(starts_on, 'starts_on');
    e := ips.episode_for_update(plan_job.episode_id);
    IF e.state = 'closed' THEN
        RAISE EXCEPTION 'episode % is closed', e.episode_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Refer the client again to start a new episode.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ips.employer x WHERE x.employer_id = plan_job.employer_id) THEN
        PERFORM ips.not_found('employer', plan_job.employer_id);
    END IF;
    IF NOT isfinite(starts_on) THEN
        RAISE EXCEPTION 'planned start % is not a day', starts_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the agreed first day of the job.';
    END IF;
    INSERT INTO ips.job_plan (episode_id, employer_id, starts_on, kind, occupation, hours_per_week, title)
    VALUES (e.episode_id, plan_job.employer_id, plan_job.starts_on, plan_job.kind, plan_job.occupation,
            plan_job.hours_per_week, plan_job.title)
    RETURNING plan_id INTO id;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.plan_job(bigint, bigint, date, text, text, numeric, text) IS
    'Records a job agreed to start later, without changing the episode''s state; returns the plan id (see ips.start_planned_job).';

CREATE OR REPLACE FUNCTION ips.start_planned_job(plan_id bigint, starts_on date DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p ips.job_plan;
    id bigint;
BEGIN
    PERFORM ips.require(start_planned_job.plan_id, 'plan_id');
    SELECT * INTO p FROM ips.job_plan x WHERE x.plan_id = start_planned_job.plan_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ips.not_found('job plan', start_planned_job.plan_id);
    END IF;
    IF p.job_id IS NOT NULL THEN
        RAISE EXCEPTION 'the job of plan % was recorded already (job %)', p.plan_id, p.job_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing to change.';
    END IF;
    id := ips.start_job(p.episode_id, p.employer_id, coalesce(start_planned_job.starts_on, p.starts_on), p.kind,
                        p.occupation, p.hours_per_week, p.title);
    UPDATE ips.job_plan x SET job_id = id WHERE x.plan_id = p.plan_id;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.start_planned_job(bigint, date) IS
    'Records the start of a planned job (on its planned day, or on starts_on when it moved) with ips.start_job; returns the job id.';

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
    IF starts_on > ips.local_date(now()) THEN
        RAISE EXCEPTION 'job start % is in the future', starts_on
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A job start moves the episode to employed; it is recorded on or after the day the job starts.',
                  HINT = 'Record it when it starts, or record the agreed job now with ips.plan_job(), which changes no state.';
    END IF;
    IF starts_on < e.referred_on AND e.state <> 'closed' THEN
        -- a job held at entry: recorded as such; the client is not out of work at entry
        INSERT INTO ips.job (episode_id, employer_id, starts_on, kind, occupation, hours_per_week, title)
        VALUES (e.episode_id, start_job.employer_id, start_job.starts_on, start_job.kind,
                start_job.occupation, start_job.hours_per_week, start_job.title)
        RETURNING job_id INTO id;
        UPDATE ips.episode x SET out_of_work_at_entry = false WHERE x.episode_id = e.episode_id;
        IF e.state IN ('engaged', 'job_search', 'studying') THEN
            -- employed from now on in the record (the instant after the current state began)
            UPDATE ips.episode x SET state = 'employed', state_since = least(e.state_since + interval '1 microsecond', now()),
                                     state_reason = 'job held at entry'
             WHERE x.episode_id = e.episode_id;
        END IF;
        -- referred (or paused before engagement): the state stays; ips.transition(episode_id,
        -- 'employed') enters the service in work when the client is met
        RETURN id;
    END IF;
    IF e.state NOT IN ('engaged', 'job_search', 'studying', 'employed')
       AND NOT (e.state = 'on_hold' AND e.held_state <> 'referred') THEN
        RAISE EXCEPTION 'episode % is %: a job starts from engaged, job_search, studying or employed', e.episode_id, e.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN e.state = 'referred' OR e.held_state = 'referred' THEN 'Engage the client first.'
                              ELSE 'Refer the client again to start a new episode.' END;
    END IF;
    INSERT INTO ips.job (episode_id, employer_id, starts_on, kind, occupation, hours_per_week, title)
    VALUES (e.episode_id, start_job.employer_id, start_job.starts_on, start_job.kind,
            start_job.occupation, start_job.hours_per_week, start_job.title)
    RETURNING job_id INTO id;
    IF e.state = 'on_hold' THEN
        -- a client who finds work during a pause: the pause ends (back to the paused state) as the job starts
        UPDATE ips.episode x SET state = e.held_state, state_since = ips.transition_time(e, start_job.starts_on),
                                 state_reason = 'job started'
         WHERE x.episode_id = e.episode_id
        RETURNING * INTO e;
        IF e.state <> 'employed' THEN
            -- the next instant: a transition dated as the one before would be dated now
            UPDATE ips.episode x SET state = 'employed', state_since = e.state_since + interval '1 microsecond',
                                     state_reason = 'job started'
             WHERE x.episode_id = e.episode_id;
        END IF;
        RETURN id;
    END IF;
    IF e.state <> 'employed' THEN
        UPDATE ips.episode x SET state = 'employed', state_since = ips.transition_time(e, start_job.starts_on),
                                 state_reason = 'job started'
         WHERE x.episode_id = e.episode_id;
    END IF;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.start_job(bigint, bigint, date, text, text, numeric, text) IS
    'Records a job start (not in the future: see ips.plan_job); moves an engaged, job_search or studying episode to employed, and resumes a paused one. A job that began before the referral is held at entry (no job start). Returns the job id.';

-- The analytics publication carries the staff history (a publication made before the update
-- is made again with ips.create_analytics_publication to include it; docs/records.md).

CREATE OR REPLACE FUNCTION ips.analytics_columns()
RETURNS TABLE(table_name regclass, columns text[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.table_name::regclass, t.columns
      FROM (VALUES
        -- organisation: team names are the units analysts report on; staff without
        -- display_name, db_role and care unit
        ('ips.team',                  '{team_id,name,region,created_at}'::text[]),
        ('ips.staff',                 '{staff_id,team_id,role,fte,employment_share,weekly_hours,created_at,started_on,ended_on}'),
        -- the dated terms of staff (S1, S2, V6, V13 count them), without who recorded them
        ('ips.staff_terms',           '{staff_id,from_on,fte,employment_share,weekly_hours,recorded_at}'),
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
        ('ips.job',                   '{job_id,episode_id,client_id,employer_id,starts_on,ends_on,kind,occupation,hours_per_week,recorded_at,held_at_entry,payer,continues_job_id}'),
        ('ips.job_hours',             '{job_id,from_on,episode_id,client_id,hours_per_week,recorded_at}'),
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

-- 2. Employment at entry: a job that began before the referral is held at entry (kept by the
-- fact guard, in C); every job of 1.1 began on or after its referral.
ALTER TABLE ips.job ADD COLUMN held_at_entry boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN ips.job.held_at_entry IS
    'Kept by the fact guard: the job began before the referral (held when the episode began): no job start, no first job, job-retention support from entry.';

CREATE OR REPLACE VIEW ips.outcomes_quarterly_counts AS
WITH cfg AS MATERIALIZED (
    SELECT string_to_array(replace(coalesce(ips.setting_value('competitive_job_kinds'), 'competitive'), ' ', ''), ',') AS kinds,
           ips.local_date(now()) AS today
),
cjob AS MATERIALIZED (
    SELECT j.job_id, j.episode_id, j.starts_on, j.ends_on, e.team_id, e.client_id, e.entry_on, j.held_at_entry
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
-- each episode in every listed quarter it overlaps (entry on or before the quarter's end, not closed before its start);
-- a client with a job held at entry was not out of work at entry
eq AS (
    SELECT e.team_id, e.episode_id, e.client_id,
           e.out_of_work_at_entry AND NOT EXISTS (SELECT 1 FROM ips.job h WHERE h.episode_id = e.episode_id AND h.held_at_entry)
               AS out_of_work_at_entry,
           g::date AS qs
      FROM ips.episode e JOIN qb ON qb.team_id = e.team_id
     CROSS JOIN LATERAL generate_series(greatest(date_trunc('quarter', e.entry_on::timestamp), qb.first_qs),
                                        least(date_trunc('quarter', coalesce(e.closed_on::timestamp, qb.last_qs)), qb.last_qs),
                                        interval '3 months') g
     WHERE e.entry_on IS NOT NULL
),
-- each episode in every listed quarter in which one of its competitive jobs ran (held at entry too)
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
-- job starts, first jobs and days to the first job: jobs held at entry are not started in the service
js AS (
    SELECT j.team_id, date_trunc('quarter', j.starts_on::timestamp)::date AS qs,
           count(*) AS job_starts,
           count(*) FILTER (WHERE j.starts_on + 89 <= (SELECT cfg.today FROM cfg)) AS jobs_90_known,
           count(*) FILTER (WHERE j.starts_on + 89 <= (SELECT cfg.today FROM cfg)
                              AND (j.ends_on IS NULL OR j.ends_on >= j.starts_on + 89)) AS jobs_90_retained
      FROM cjob j
     WHERE NOT j.held_at_entry
     GROUP BY 1, 2
),
first_job AS (
    SELECT j.episode_id, min(j.starts_on) AS starts_on FROM cjob j WHERE NOT j.held_at_entry GROUP BY j.episode_id
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

-- 4. Corrections learned late.

CREATE OR REPLACE FUNCTION ips.insert_transitions(episode_id bigint, to_states text[], ats timestamptz[], reasons text[] DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'ips_insert_transitions' LANGUAGE C;
COMMENT ON FUNCTION ips.insert_transitions(bigint, text[], timestamptz[], text[]) IS
    'Inserts transitions learned late between the referral and the last recorded transition, when the corrected sequence is valid (it must lead back to the state the next recorded transition starts from); the rows keep who inserted them (actor) and when (recorded_at). Returns how many.';

CREATE OR REPLACE FUNCTION ips.record_pause(episode_id bigint, from_at timestamptz, until_at timestamptz, reason text DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    paused text;
BEGIN
    PERFORM ips.require(record_pause.episode_id, 'episode_id');
    PERFORM ips.require(from_at, 'from_at');
    PERFORM ips.require(until_at, 'until_at');
    IF until_at <= from_at THEN
        RAISE EXCEPTION 'a pause ends after it begins' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Give from_at before until_at.';
    END IF;
    PERFORM ips.episode_for_update(record_pause.episode_id);
    SELECT h.to_state INTO paused FROM ips.episode_state_history h
     WHERE h.episode_id = record_pause.episode_id AND h.at <= from_at
     ORDER BY h.at DESC, h.history_id DESC LIMIT 1;
    IF paused IS NULL OR paused IN ('on_hold', 'closed') THEN
        RAISE EXCEPTION 'episode % is % at %', record_pause.episode_id, coalesce(paused, 'not yet referred'), from_at
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'A pause begins in an open, not paused state.';
    END IF;
    RETURN ips.insert_transitions(record_pause.episode_id, ARRAY['on_hold', paused], ARRAY[from_at, until_at],
                                  ARRAY[reason, NULL]);
END $$;
COMMENT ON FUNCTION ips.record_pause(bigint, timestamptz, timestamptz, text) IS
    'Records a pause learned late (e.g. a hospital stay reported afterwards): on_hold from from_at, back to the paused state at until_at, inserted into the history before later transitions.';

-- What the team could see on a day: the engine reads only the facts recorded by known_at.
DROP FUNCTION ips.rule_engine(text, date, date, bigint, bigint);

CREATE OR REPLACE FUNCTION ips.rule_engine(mode text, from_on date, to_on date, team_id bigint DEFAULT NULL, episode_id bigint DEFAULT NULL,
                                known_at timestamptz DEFAULT NULL)
RETURNS TABLE(episode_id bigint, staff_id bigint, rule text, job_id bigint, due_on date, met_on date, status text)
AS 'MODULE_PATHNAME', 'ips_rule_engine'
LANGUAGE C STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.rule_engine(text, date, date, bigint, bigint, timestamptz) IS
    'Internal: the contact-rule engine.  mode alerts: unmet expectations as of to_on (status overdue or due); '
    'mode expectations: every expectation due from from_on to to_on, as known on to_on (status met_on_time, met_late, missed, open); '
    'known_at: only the state changes, contacts, employer contacts and jobs recorded by then (recorded_at).';

CREATE OR REPLACE FUNCTION ips.alerts_as_known(as_of date, known_at timestamptz DEFAULT NULL, team_id bigint DEFAULT NULL)
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

-- 3. Work trials and hours: a payer, a continuation at the same employer, dated hours.
INSERT INTO ips.vocabulary (category, code, ordinal)
VALUES ('job_payer', 'kela', 1), ('job_payer', 'pension_insurer', 2), ('job_payer', 'employment_services', 3);
INSERT INTO ips.label_text (category, code, lang, label) VALUES
  ('job_payer', 'kela', 'fi', 'Kela'), ('job_payer', 'kela', 'sv', 'FPA'), ('job_payer', 'kela', 'en', 'Kela (social insurance)'),
  ('job_payer', 'pension_insurer', 'fi', 'työeläkevakuuttaja (kuntoutusraha)'),
  ('job_payer', 'pension_insurer', 'sv', 'arbetspensionsförsäkrare (rehabiliteringspenning)'),
  ('job_payer', 'pension_insurer', 'en', 'earnings-related pension insurer (rehabilitation allowance)'),
  ('job_payer', 'employment_services', 'fi', 'TE-palvelut / työllisyyspalvelut'),
  ('job_payer', 'employment_services', 'sv', 'TE-tjänster / sysselsättningstjänster'),
  ('job_payer', 'employment_services', 'en', 'TE office / employment services');
ALTER TABLE ips.job ADD COLUMN payer text CHECK (payer IN ('kela', 'pension_insurer', 'employment_services')),
    ADD COLUMN continues_job_id bigint REFERENCES ips.job;
COMMENT ON COLUMN ips.job.payer IS 'Who pays a work trial or subsidy: kela, pension_insurer (rehabilitation allowance), employment_services (TE office); NULL: the employer.';
COMMENT ON COLUMN ips.job.continues_job_id IS 'The job (e.g. a work trial) this one continues at the same employer (ips.continue_job): its history goes on.';
CREATE INDEX job_continues_idx ON ips.job (continues_job_id) WHERE continues_job_id IS NOT NULL;
CREATE TABLE ips.job_hours (
    job_id         bigint NOT NULL REFERENCES ips.job,
    from_on        date NOT NULL,
    episode_id     bigint NOT NULL REFERENCES ips.episode,
    client_id      bigint NOT NULL,
    hours_per_week numeric NOT NULL CHECK (hours_per_week > 0 AND hours_per_week <= 80),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, from_on)
);
CREATE TRIGGER job_hours_guard BEFORE INSERT OR UPDATE ON ips.job_hours
    FOR EACH ROW EXECUTE FUNCTION ips.fact_guard('from_on');
COMMENT ON TABLE ips.job_hours IS
    'Changes of a job''s weekly hours (a work trial growing from 15 to 30 h): in force from from_on; before the first change ips.job.hours_per_week (the hours at the start).';
SELECT pg_catalog.pg_extension_config_dump('ips.job_hours', '');

CREATE OR REPLACE FUNCTION ips.change_job_hours(job_id bigint, from_on date, hours_per_week numeric) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j ips.job;
BEGIN
    PERFORM ips.require(change_job_hours.job_id, 'job_id');
    PERFORM ips.require(change_job_hours.from_on, 'from_on');
    PERFORM ips.require(change_job_hours.hours_per_week, 'hours_per_week');
    SELECT * INTO j FROM ips.job x WHERE x.job_id = change_job_hours.job_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('job', change_job_hours.job_id);
    END IF;
    PERFORM ips.episode_for_update(j.episode_id);
    IF hours_per_week <= 0 OR hours_per_week > 80 THEN
        RAISE EXCEPTION 'hours_per_week % is out of range', hours_per_week
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the weekly hours, more than 0 and at most 80.';
    END IF;
    IF from_on <= j.starts_on OR from_on > j.ends_on OR NOT isfinite(from_on) THEN
        RAISE EXCEPTION 'job % runs from % to %: hours change within it, after its first day', j.job_id, j.starts_on,
                        coalesce(j.ends_on::text, 'now')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The hours of the first day are the job''s hours_per_week; give a later day.';
    END IF;
    IF from_on > ips.local_date(now()) THEN
        RAISE EXCEPTION 'change date % is in the future', from_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record a change of hours when it takes effect.';
    END IF;
    INSERT INTO ips.job_hours AS h (job_id, from_on, episode_id, hours_per_week)
    VALUES (j.job_id, change_job_hours.from_on, j.episode_id, change_job_hours.hours_per_week)
    ON CONFLICT ON CONSTRAINT job_hours_pkey DO UPDATE SET hours_per_week = EXCLUDED.hours_per_week, recorded_at = EXCLUDED.recorded_at;
END $$;
COMMENT ON FUNCTION ips.change_job_hours(bigint, date, numeric) IS
    'Changes a job''s weekly hours from a day on (earlier days keep theirs); see ips.job_hours_on.';

CREATE OR REPLACE FUNCTION ips.job_hours_on(job_id bigint, day date) RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT h.hours_per_week FROM ips.job_hours h
                      WHERE h.job_id = job_hours_on.job_id AND h.from_on <= job_hours_on.day
                      ORDER BY h.from_on DESC LIMIT 1),
                    (SELECT j.hours_per_week FROM ips.job j WHERE j.job_id = job_hours_on.job_id))
$$;
COMMENT ON FUNCTION ips.job_hours_on(bigint, date) IS 'The weekly hours of a job in force on a day (ips.job_hours, else its hours at the start).';

CREATE OR REPLACE FUNCTION ips.set_job_payer(job_id bigint, payer text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j ips.job;
BEGIN
    PERFORM ips.require(set_job_payer.job_id, 'job_id');
    IF payer IS NOT NULL THEN
        PERFORM ips.check_code('job_payer', payer, 'payer');
    END IF;
    SELECT * INTO j FROM ips.job x WHERE x.job_id = set_job_payer.job_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('job', set_job_payer.job_id);
    END IF;
    PERFORM ips.episode_for_update(j.episode_id);
    UPDATE ips.job x SET payer = set_job_payer.payer WHERE x.job_id = j.job_id;
END $$;
COMMENT ON FUNCTION ips.set_job_payer(bigint, text) IS
    'Records who pays a work trial or subsidy: kela, pension_insurer (rehabilitation allowance), employment_services (TE office); NULL: the employer.';

CREATE OR REPLACE FUNCTION ips.continue_job(job_id bigint, from_on date, kind text DEFAULT 'competitive',
                                 hours_per_week numeric DEFAULT NULL, payer text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j ips.job;
    id bigint;
BEGIN
    PERFORM ips.require(continue_job.job_id, 'job_id');
    PERFORM ips.require(continue_job.from_on, 'from_on');
    PERFORM ips.check_code('job_kind', kind, 'job kind');
    IF payer IS NOT NULL THEN
        PERFORM ips.check_code('job_payer', payer, 'payer');
    END IF;
    SELECT * INTO j FROM ips.job x WHERE x.job_id = continue_job.job_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('job', continue_job.job_id);
    END IF;
    PERFORM ips.episode_for_update(j.episode_id);
    IF j.ends_on IS NOT NULL THEN
        RAISE EXCEPTION 'job % ended on %', j.job_id, j.ends_on
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'A job continues while it runs; record a new job with ips.start_job().';
    END IF;
    IF from_on <= j.starts_on OR NOT isfinite(from_on) THEN
        RAISE EXCEPTION 'job % started on %: it continues from a later day', j.job_id, j.starts_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the first day of the new terms.';
    END IF;
    IF hours_per_week <= 0 OR hours_per_week > 80 THEN
        RAISE EXCEPTION 'hours_per_week % is out of range', hours_per_week
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the weekly hours, more than 0 and at most 80.';
    END IF;
    -- the new terms first (a current job), then the end of the old: the episode stays employed
    id := ips.start_job(j.episode_id, j.employer_id, continue_job.from_on, continue_job.kind, j.occupation,
                        coalesce(continue_job.hours_per_week, ips.job_hours_on(j.job_id, continue_job.from_on - 1)), j.title);
    UPDATE ips.job x SET continues_job_id = j.job_id, payer = continue_job.payer WHERE x.job_id = id;
    PERFORM ips.end_job(j.job_id, continue_job.from_on - 1, 'continued as ' || continue_job.kind);
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.continue_job(bigint, date, text, numeric, text) IS
    'Continues a running job (e.g. an unpaid work trial) from a day on as another kind (paid work trial, ordinary job) at the same employer: the old job ends the day before and the new one points to it (continues_job_id). Returns the new job id.';

CREATE OR REPLACE VIEW ips.outcomes_jobs_quarterly_counts AS
WITH held AS (
    SELECT e.team_id, j.job_id, j.client_id, j.kind, j.starts_on, j.held_at_entry, g::date AS qs,
           ips.job_hours_on(j.job_id, least(coalesce(j.ends_on, (g + interval '3 months' - interval '1 day')::date),
                                             (g + interval '3 months' - interval '1 day')::date)) AS hours
      FROM ips.job j JOIN ips.episode e ON e.episode_id = j.episode_id
     CROSS JOIN LATERAL generate_series(date_trunc('quarter', greatest(j.starts_on, e.referred_on)::timestamp),
                                        date_trunc('quarter', coalesce(j.ends_on, ips.local_date(now()))::timestamp),
                                        interval '3 months') g
)
SELECT h.team_id, to_char(h.qs, 'YYYY"Q"Q') AS quarter, h.qs AS quarter_start, h.kind,
       CASE WHEN h.hours IS NULL THEN 'unknown' WHEN h.hours < 10 THEN '<10' WHEN h.hours < 20 THEN '10-19'
            WHEN h.hours < 30 THEN '20-29' ELSE '30+' END AS hours_band,
       count(*) AS jobs_held, count(DISTINCT h.client_id) AS clients,
       count(*) FILTER (WHERE NOT h.held_at_entry AND date_trunc('quarter', h.starts_on::timestamp) = h.qs) AS job_starts,
       round(avg(h.hours), 1) AS mean_hours
  FROM held h
 GROUP BY h.team_id, h.qs, h.kind, 5;
COMMENT ON VIEW ips.outcomes_jobs_quarterly_counts IS
    'Per team, quarter, kind of job and band of weekly hours (in force at the quarter''s end): jobs held, clients, jobs started (not held at entry), mean hours; unsuppressed, for staff.';

-- 11. Terminology as the seeds and THL write it (a region's own corrections are kept: only
-- the defaults of 1.1 are replaced), one name for the review, decimal commas in fi and sv.
UPDATE ips.label_text t SET label = v.new
  FROM (VALUES ('moved', 'sv', 'flyttade', 'flyttat bort'),
               ('client', 'fi', 'asiakastapaaminen', 'asiakaskontakti'),
               ('client', 'sv', 'klientmöte', 'klientkontakt'),
               ('outreach_attempt', 'sv', 'uppsökande försök', 'kontaktförsök'),
               ('community', 'sv', 'ute i samhället', 'utanför kontoret'),
               ('self_employed', 'fi', 'yrittäjä', 'oma yritys'),
               ('self_employed', 'sv', 'företagare', 'eget företag'),
               ('self_employed', 'en', 'self-employed', 'self-employment'),
               ('supervisor', 'fi', 'IPS-esihenkilö', 'IPS-tiiminvetäjä'),
               ('supervisor', 'sv', 'IPS-chef', 'IPS-teamledare'),
               ('supervisor', 'en', 'IPS supervisor', 'IPS team leader'),
               ('clinician', 'fi', 'hoitotaho', 'hoitotiimin jäsen'),
               ('clinician', 'sv', 'vårdgivare', 'medlem i vårdteamet'),
               ('fidelity_title', 'fi', 'IPS-menetelmäuskollisuus', 'IPS-laatuarviointi'),
               ('fidelity_title', 'sv', 'IPS-metodtrohet', 'IPS-kvalitetsbedömning'),
               ('fidelity_title', 'en', 'IPS fidelity', 'IPS fidelity review'),
               ('fidelity_band_none', 'fi', 'ei vielä (kaikki 25 osiota pisteyttämättä)', 'ei vielä (kaikkia 25 osiota ei ole pisteytetty)'),
               ('fidelity_band_none', 'sv', 'ännu inte (alla 25 punkter inte poängsatta)', 'ännu inte (inte alla 25 punkter är poängsatta)'),
               ('fidelity_ev_V13', 'sv', '%s min ute i samhället / %s min arbetstid', '%s min utanför kontoret / %s min arbetstid'))
       AS v(code, lang, old, new)
 WHERE t.code = v.code AND t.lang = v.lang AND t.label = v.old;
UPDATE ips.fidelity_item SET name_fi = 'IPS-tiiminvetäjän rooli' WHERE item = 'O5' AND name_fi = 'IPS-esihenkilön rooli';
UPDATE ips.fidelity_item SET name_sv = 'IPS-teamledarens roll' WHERE item = 'O5' AND name_sv = 'IPS-chefens roll';
UPDATE ips.fidelity_item SET name_sv = 'Tjänster utanför kontoret' WHERE item = 'V13' AND name_sv = 'Tjänster ute i samhället';
UPDATE ips.rule SET label_sv = 'Ingen kontakt med klienten: ta kontakt'
 WHERE code = 'no_contact' AND label_sv = 'Ingen kontakt med klienten: uppsökande';

CREATE OR REPLACE FUNCTION ips.number_text(x numeric, lang text DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN ips.language(number_text.lang) IN ('fi', 'sv') THEN replace(x::text, '.', ',') ELSE x::text END
$$;
COMMENT ON FUNCTION ips.number_text(numeric, text) IS 'A number as text in fi, sv or en (default ips.language): decimal comma in fi and sv, point in en.';

-- Bounds of the new columns and tables (as 87_bounds.sql; 89_records_bounds.sql).
ALTER TABLE ips.staff
    ADD CONSTRAINT staff_dates_finite CHECK (isfinite(started_on) AND isfinite(ended_on));
ALTER TABLE ips.job_hours
    ADD CONSTRAINT job_hours_dates_finite CHECK (isfinite(from_on));
ALTER TABLE ips.job_plan
    ADD CONSTRAINT job_plan_dates_finite CHECK (isfinite(starts_on));
CREATE TRIGGER staff_terms_bounds BEFORE INSERT OR UPDATE ON ips.staff_terms
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('recorded_at');
CREATE TRIGGER job_hours_bounds BEFORE INSERT OR UPDATE ON ips.job_hours
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('job_id:required', 'from_on', 'recorded_at');
CREATE TRIGGER job_plan_bounds BEFORE INSERT OR UPDATE ON ips.job_plan
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('episode_id:required', 'employer_id:required', 'starts_on:plan', 'title:200',
                                                   'recorded_at');

CREATE OR REPLACE FUNCTION ips.evidence_number(x numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN scale(trim_scale(round(x, 4))) = 0 THEN round(x, 1) ELSE trim_scale(round(x, 4)) END
$$;
COMMENT ON FUNCTION ips.evidence_number(numeric) IS 'Internal: an FTE or share for the evidence (at most 4 decimals, at least one).';

-- ===== release clean-up: overlapping checks and the like (issue 15)
-- ips.episode: 1.0's check "closed iff closed_on and close_reason" overlapped 1.1's
-- episode_open_iff_no_closed_on; what is left of it is "a closed episode has a reason".
-- The unnamed checks get names, as in the 1.2 install script.
ALTER TABLE ips.episode DROP CONSTRAINT episode_check;
ALTER TABLE ips.episode RENAME CONSTRAINT episode_check1 TO episode_on_hold_iff_held_state;
ALTER TABLE ips.episode ADD CONSTRAINT episode_closed_has_reason CHECK (state <> 'closed' OR close_reason IS NOT NULL);

-- ===== what people see: settings, labels, the review sheet (issue 17)
-- The schema becomes the extension's own, as a fresh 1.2 install creates it
-- (extension/sql/000_schema.sql): the extension's schema is pg_catalog, as in
-- ips.control, and schema ips a member, so that DROP EXTENSION removes it.
UPDATE pg_catalog.pg_extension SET extnamespace = 'pg_catalog'::regnamespace WHERE extname = 'ips';
DELETE FROM pg_catalog.pg_depend
 WHERE classid = 'pg_catalog.pg_extension'::regclass
   AND objid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'ips')
   AND refclassid = 'pg_catalog.pg_namespace'::regclass AND refobjid = 'ips'::regnamespace;
ALTER EXTENSION ips ADD SCHEMA ips;
COMMENT ON SCHEMA ips IS 'IPS (Individual Placement and Support): episodes, contact rules, fidelity and outcomes (extension ips).';

-- The review sheet a team leader prints (ipsctl fidelity --format html): one
-- jsonb with everything the sheet shows, in one language, read with the
-- caller's rights (row-level security decides which teams and reviews; a
-- caller who may not read reviews, an analyst, gets the live figures).
CREATE FUNCTION ips.review_sheet(team_id bigint, period_start date, period_end date, lang text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    l text := ips.language(lang);
    t ips.team;
    r ips.fidelity_review;
    items jsonb;
    reviewers jsonb := '[]';
    actions jsonb := '[]';
    total int;
    scored int;
    band text;
BEGIN
    PERFORM ips.fidelity_check_period(team_id, period_start, period_end);
    SELECT * INTO t FROM ips.team v WHERE v.team_id = review_sheet.team_id;
    -- the review of the period, for those who read reviews (an analyst's sheet shows the live
    -- team-level figures of ips.fidelity)
    IF pg_catalog.has_table_privilege('ips.fidelity_review', 'SELECT') THEN
        SELECT * INTO r FROM ips.fidelity_review v
         WHERE v.team_id = review_sheet.team_id AND v.period_start = review_sheet.period_start
           AND v.period_end = review_sheet.period_end;
    END IF;
    SELECT jsonb_agg(jsonb_build_object(
               'item', f.item, 'section', i.section, 'name', ips.label(f.item, l),
               'score', f.score, 'source', f.source, 'source_label', ips.label('fidelity_source_' || f.source, l),
               'measure', f.measure, 'unit', i.unit,
               'anchor', (SELECT a.anchor FROM ips.fidelity_anchor a WHERE a.item = f.item AND a.score = f.score),
               'evidence_line',
                   CASE WHEN f.item = 'S2' THEN replace(ips.fidelity_evidence_line(f.item, f.evidence, l), '–', ips.fidelity_number(f.measure, l))
                        WHEN f.measure IS NOT NULL AND f.item IN ('V8', 'V9', 'V10', 'V12', 'V13', 'O2', 'O6', 'V1', 'V14')
                        THEN ips.fidelity_evidence_line(f.item, f.evidence, l) || ' = ' || ips.fidelity_number(f.measure, l) || ' %'
                        ELSE ips.fidelity_evidence_line(f.item, f.evidence, l) END,
               'note', f.evidence ->> 'note',
               'evidence', f.evidence) ORDER BY i.ordinal),
           coalesce(sum(f.score), 0)::int, count(f.score)::int
      INTO items, total, scored
      FROM (SELECT * FROM ips.review_result(r.review_id) WHERE r.closed_at IS NOT NULL
            UNION ALL
            SELECT * FROM ips.fidelity(review_sheet.team_id, review_sheet.period_start, review_sheet.period_end)
             WHERE r.closed_at IS NULL) f
      JOIN ips.fidelity_item i ON i.item = f.item;
    band := ips.fidelity_band_of(total, scored);
    IF r.review_id IS NOT NULL THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('reviewer', w.reviewer, 'organisation', w.organisation)
                                  ORDER BY w.reviewer), '[]')
          INTO reviewers FROM ips.fidelity_reviewer w WHERE w.review_id = r.review_id;
        SELECT coalesce(jsonb_agg(jsonb_build_object('action', a.action, 'item', a.item, 'responsible', a.responsible,
                                                     'due_on', a.due_on, 'done_on', a.done_on) ORDER BY a.action_id), '[]')
          INTO actions FROM ips.fidelity_action a WHERE a.review_id = r.review_id;
    END IF;
    RETURN jsonb_build_object(
        'lang', l,
        'title', ips.label('fidelity_title', l),
        'team_id', t.team_id, 'team', t.name, 'region', t.region,
        'period_start', period_start, 'period_end', period_end,
        'status', CASE WHEN r.closed_at IS NOT NULL THEN 'closed' WHEN r.review_id IS NOT NULL THEN 'open' ELSE 'live' END,
        'review_id', r.review_id, 'reviewed_on', r.reviewed_on,
        'closed_on', ips.local_date(r.closed_at),
        'reviewers', reviewers,
        'items', coalesce(items, '[]'),
        'total', total, 'items_scored', scored, 'items_total', (SELECT count(*) FROM ips.fidelity_item),
        'band', band, 'band_label', coalesce(ips.label(band, l), ips.label('fidelity_band_none', l)),
        'bands', (SELECT jsonb_agg(jsonb_build_object('band', b.band,
                                                      'label', CASE l WHEN 'fi' THEN b.name_fi WHEN 'sv' THEN b.name_sv ELSE b.name_en END,
                                                      'min', b.min_total, 'max', b.max_total) ORDER BY b.min_total DESC)
                    FROM ips.fidelity_band b),
        'actions', actions);
END $$;
COMMENT ON FUNCTION ips.review_sheet(bigint, date, date, text) IS
    'Everything the printed fidelity review sheet shows, as jsonb in fi, sv or en: the team and region, the period, live figures or the closed review (date, reviewers), each item''s score, anchor and one-line evidence, total and band, the action plan (ipsctl fidelity --format html).';


-- ===== records gaps: issue 16's rules at the table (staff days, terms, job hours, continuations, plans)
-- ips.refer: an open episode the caller does not see is another team's (was: "(being created)").
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
        IF open_id IS NOT NULL THEN
            RAISE EXCEPTION 'client % has an open episode already (%)', refer.client_id, open_id
                USING ERRCODE = 'unique_violation',
                      DETAIL = 'A client has at most one open IPS episode.',
                      HINT = 'Continue the open episode, or close it before a new referral.';
        END IF;
        -- the open episode is one the caller does not see: another team's (row-level security)
        RAISE EXCEPTION 'client % has an open episode already, in a team whose episodes you do not see', refer.client_id
            USING ERRCODE = 'unique_violation',
                  DETAIL = 'A client has at most one open IPS episode; this one is another team''s, and no episode was created.',
                  HINT = 'The other team closes its episode (or refers the client to your team) before yours can begin.';
    END IF;
    RETURN id;
END $$;
-- Records (issue 16), enforced at the table: the rules that ips.change_staff, ips.end_staff,
-- ips.change_job_hours, ips.continue_job and ips.start_planned_job check also hold for a
-- direct INSERT, UPDATE or COPY by every ips role (docs/records.md, "Enforced at the table").

-- A restore loads the rows as they were: with ips.restoring = on, and also when it was forgotten
-- (a superuser's session running pg_dump output: row_security and check_function_bodies off), as
-- the C guards tell it (IpsRestoring, ips.c).  The login role decides, not a definer's.
CREATE FUNCTION ips.loading_rows() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT ips.restoring()
        OR (current_setting('row_security') = 'off' AND current_setting('check_function_bodies') = 'off'
            AND coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user), false))
$$;
COMMENT ON FUNCTION ips.loading_rows() IS
    'Internal: true while a restore loads rows (ips.restoring = on, or a superuser''s session of pg_dump output), as the C guards tell it.';

-- A record in a staff member's name (contact, employer contact, team meeting) is dated on a
-- day the person is on the team (C, extension/staff_days.c; hot on contact inserts).  The
-- other direction, dates of ips.staff around the records, is ips.staff_guard's.
CREATE FUNCTION ips.staff_day_guard() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_staff_day_guard' LANGUAGE C;
COMMENT ON FUNCTION ips.staff_day_guard() IS
    'Trigger: a record in a staff member''s name is dated on a day the person is on the team (started_on .. ended_on - 1, local days of the region); a team_id names the person''s team. Argument: the dating column.';
CREATE TRIGGER contact_staff_days BEFORE INSERT OR UPDATE OF staff_id, at ON ips.contact
    FOR EACH ROW EXECUTE FUNCTION ips.staff_day_guard('at');
CREATE TRIGGER employer_contact_staff_days BEFORE INSERT OR UPDATE OF staff_id, at ON ips.employer_contact
    FOR EACH ROW EXECUTE FUNCTION ips.staff_day_guard('at');
CREATE TRIGGER team_meeting_staff_days BEFORE INSERT OR UPDATE OF staff_id, team_id, met_on ON ips.team_meeting
    FOR EACH ROW EXECUTE FUNCTION ips.staff_day_guard('met_on');

-- Terms of staff written directly (ips_admin): what ips.change_staff checks, and ips.staff
-- keeps the terms in force now.  The first row (-infinity) stays: without it the days before
-- the first change would have no terms.
CREATE FUNCTION ips.staff_terms_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s ips.staff;
BEGIN
    IF ips.loading_rows() THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.from_on = '-infinity'
       AND (TG_OP = 'DELETE' OR NEW.from_on <> '-infinity' OR NEW.staff_id <> OLD.staff_id)
       AND EXISTS (SELECT 1 FROM ips.staff x WHERE x.staff_id = OLD.staff_id) THEN
        RAISE EXCEPTION 'the first terms of staff member % stay', OLD.staff_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The first terms (from_on -infinity) are in force until the first change; without them those days would have no FTE.',
                  HINT = 'Correct their values with UPDATE, or record a change with ips.change_staff().';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.staff_id <> OLD.staff_id THEN
        RAISE EXCEPTION 'terms of staff member % cannot move to staff member %', OLD.staff_id, NEW.staff_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record the other person''s terms with ips.change_staff().';
    END IF;
    SELECT * INTO s FROM ips.staff x WHERE x.staff_id = NEW.staff_id;
    IF NOT FOUND THEN
        RETURN NEW;     -- the foreign key answers
    END IF;
    IF NEW.fte <= 0 OR NEW.fte > 1 THEN
        RAISE EXCEPTION 'fte % is out of range', NEW.fte
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the share of a full-time post, more than 0 and at most 1.';
    END IF;
    IF NEW.employment_share < 0 OR NEW.employment_share > 1 THEN
        RAISE EXCEPTION 'employment_share % is out of range', NEW.employment_share
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the share of working time on employment services, from 0 to 1.';
    END IF;
    IF NEW.weekly_hours <= 0 OR NEW.weekly_hours > 80 THEN
        RAISE EXCEPTION 'weekly_hours % is out of range', NEW.weekly_hours
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the scheduled hours per week, more than 0 and at most 80.';
    END IF;
    IF NEW.from_on <> '-infinity' THEN
        IF NOT isfinite(NEW.from_on) OR NEW.from_on > ips.local_date(now()) THEN
            RAISE EXCEPTION 'change date % is in the future', NEW.from_on
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Record a change of terms on or after the day it takes effect.';
        END IF;
        IF NEW.from_on < s.started_on OR NEW.from_on >= s.ended_on THEN
            RAISE EXCEPTION 'staff member % is not on the team on %', s.staff_id, NEW.from_on
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Staff member %s is on the team from %s until the day before %s; change the terms of such a day.',
                                    s.staff_id, coalesce(s.started_on::text, 'the start'), coalesce(s.ended_on::text, 'any end'));
        END IF;
    END IF;
    -- who recorded the terms, and when, are the database's to say
    NEW.recorded_at := now();
    NEW.recorded_by := ips.caller();
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.staff_terms_check() IS
    'Trigger: terms of staff within range, dated -infinity (the first) or on a day the person is on the team and not in the future; the first terms stay; recorded_at and recorded_by are the writer''s.';
CREATE TRIGGER staff_terms_check BEFORE INSERT OR UPDATE OR DELETE ON ips.staff_terms
    FOR EACH ROW EXECUTE FUNCTION ips.staff_terms_check();

-- ips.staff holds the terms in force now: the latest row (also after a direct write).
CREATE FUNCTION ips.staff_terms_current() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.staff_id ELSE NEW.staff_id END;
BEGIN
    IF ips.loading_rows() THEN
        RETURN NULL;
    END IF;
    UPDATE ips.staff x SET fte = t.fte, employment_share = t.employment_share, weekly_hours = t.weekly_hours
      FROM (SELECT y.fte, y.employment_share, y.weekly_hours FROM ips.staff_terms y
             WHERE y.staff_id = id ORDER BY y.from_on DESC LIMIT 1) t
     WHERE x.staff_id = id
       AND (x.fte, x.employment_share, x.weekly_hours) IS DISTINCT FROM (t.fte, t.employment_share, t.weekly_hours);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ips.staff_terms_current() IS 'Trigger: ips.staff takes the values of the latest terms of the person.';
CREATE TRIGGER staff_terms_current AFTER INSERT OR UPDATE OR DELETE ON ips.staff_terms
    FOR EACH ROW EXECUTE FUNCTION ips.staff_terms_current();

-- Hours of a job (ips.change_job_hours) belong to the job: its episode, a day after its first
-- day and not after its end (and not after today: the bounds).
CREATE FUNCTION ips.job_hours_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j ips.job;
BEGIN
    IF ips.loading_rows() THEN
        RETURN NEW;
    END IF;
    SELECT * INTO j FROM ips.job x WHERE x.job_id = NEW.job_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('job', NEW.job_id);
    END IF;
    IF NEW.episode_id IS NULL THEN
        NEW.episode_id := j.episode_id;
    ELSIF NEW.episode_id <> j.episode_id THEN
        RAISE EXCEPTION 'job % belongs to episode %, not to episode %', j.job_id, j.episode_id, NEW.episode_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave episode_id empty; it is taken from the job.';
    END IF;
    IF NEW.from_on <= j.starts_on OR NEW.from_on > j.ends_on THEN
        RAISE EXCEPTION 'job % runs from % to %: hours change within it, after its first day', j.job_id, j.starts_on,
                        coalesce(j.ends_on::text, 'now')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The hours of the first day are the job''s hours_per_week; give a later day.';
    END IF;
    IF NEW.hours_per_week <= 0 OR NEW.hours_per_week > 80 THEN
        RAISE EXCEPTION 'hours_per_week % is out of range', NEW.hours_per_week
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give the weekly hours, more than 0 and at most 80.';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.job_hours_check() IS
    'Trigger: a change of a job''s hours carries the job''s episode and falls after the job''s first day, not after its end; hours in range.';
-- named to fire before job_hours_guard (ips.fact_guard), which takes the client from the episode
CREATE TRIGGER job_hours_check BEFORE INSERT OR UPDATE ON ips.job_hours
    FOR EACH ROW EXECUTE FUNCTION ips.job_hours_check();

-- The other side: a job's dates or episode change only around its changes of hours.
CREATE FUNCTION ips.job_span_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n int;
BEGIN
    IF ips.loading_rows() THEN
        RETURN NEW;
    END IF;
    SELECT count(*) INTO n FROM ips.job_hours h
     WHERE h.job_id = NEW.job_id
       AND (h.from_on <= NEW.starts_on OR h.from_on > NEW.ends_on OR h.episode_id <> NEW.episode_id);
    IF n > 0 THEN
        RAISE EXCEPTION 'job % has % change(s) of hours outside % .. %', NEW.job_id, n, NEW.starts_on, coalesce(NEW.ends_on::text, 'now')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Correct or delete those rows of ips.job_hours first.';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.job_span_check() IS 'Trigger: a job''s start, end and episode keep its changes of hours (ips.job_hours) within it.';
CREATE TRIGGER job_span_check BEFORE UPDATE OF episode_id, starts_on, ends_on ON ips.job
    FOR EACH ROW EXECUTE FUNCTION ips.job_span_check();

-- A continuation (ips.continue_job) continues a job of the same episode at the same employer
-- that began before it and runs, or ended the day before it began; a job is continued once.
CREATE FUNCTION ips.job_continues_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o ips.job;
BEGIN
    IF ips.loading_rows() THEN
        RETURN NEW;
    END IF;
    SELECT * INTO o FROM ips.job x WHERE x.job_id = NEW.continues_job_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('job', NEW.continues_job_id);
    END IF;
    IF o.episode_id <> NEW.episode_id OR o.employer_id <> NEW.employer_id THEN
        RAISE EXCEPTION 'job % is continued by a job of the same episode at the same employer', o.job_id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Job %s is of episode %s at employer %s.', o.job_id, o.episode_id, o.employer_id),
                  HINT = 'A job elsewhere is a new job: ips.start_job().';
    END IF;
    IF o.starts_on >= NEW.starts_on OR o.ends_on <> NEW.starts_on - 1 THEN
        RAISE EXCEPTION 'job % (% .. %) does not run up to the start % of its continuation', o.job_id, o.starts_on,
                        coalesce(o.ends_on::text, 'now'), NEW.starts_on
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A continuation starts after the job it continues began, and the old job ends the day before (ips.continue_job).';
    END IF;
    IF EXISTS (SELECT 1 FROM ips.job x WHERE x.continues_job_id = o.job_id AND x.job_id <> NEW.job_id) THEN
        RAISE EXCEPTION 'job % is continued already', o.job_id
            USING ERRCODE = 'unique_violation', HINT = 'Continue the latest job of the chain.';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.job_continues_check() IS
    'Trigger: continues_job_id names an earlier job of the same episode and employer, running or ended the day before the continuation starts, continued once.';
CREATE TRIGGER job_continues_check BEFORE INSERT OR UPDATE OF continues_job_id, episode_id, employer_id, starts_on ON ips.job
    FOR EACH ROW WHEN (NEW.continues_job_id IS NOT NULL) EXECUTE FUNCTION ips.job_continues_check();

-- ===== vocabulary from one source (issue 16, item 12)
-- ips.vocabulary becomes a table partitioned by category, one partition per category;
-- the columns that held codes under CHECK lists reference their category's partition
-- (ips.contact through ips.contact_form, one key for kind, mode and setting; the state
-- history through ips.state_transition, the allowed moves that the state machine reads).
-- 1.1's rows are the ones the install script writes (a code a region added in 1.1 could
-- not be stored anywhere: the CHECK lists refused it), so the table is made anew.
ALTER TABLE ips.staff DROP CONSTRAINT staff_role_check;
ALTER TABLE ips.consent DROP CONSTRAINT consent_scope_check;
ALTER TABLE ips.consent_refusal DROP CONSTRAINT consent_refusal_scope_check;
ALTER TABLE ips.episode DROP CONSTRAINT episode_state_check, DROP CONSTRAINT episode_held_state_check,
                        DROP CONSTRAINT episode_close_reason_check;
ALTER TABLE ips.contact DROP CONSTRAINT contact_kind_check, DROP CONSTRAINT contact_mode_check,
                        DROP CONSTRAINT contact_setting_check;
ALTER TABLE ips.job DROP CONSTRAINT job_kind_check, DROP CONSTRAINT job_payer_check;
ALTER TABLE ips.job_plan DROP CONSTRAINT job_plan_kind_check;
DROP TABLE ips.vocabulary;   -- with its trigger vocabulary_bounds: the rows are the owner's now

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

-- The vocabulary as people read it: each code with its labels in fi, sv and en.
CREATE VIEW ips.vocabulary_labels AS
SELECT v.category, v.code, v.ordinal, fi.label AS label_fi, sv.label AS label_sv, en.label AS label_en
  FROM ips.vocabulary v
  LEFT JOIN ips.label_text fi ON fi.code = v.code AND fi.lang = 'fi'
  LEFT JOIN ips.label_text sv ON sv.code = v.code AND sv.lang = 'sv'
  LEFT JOIN ips.label_text en ON en.code = v.code AND en.lang = 'en';
COMMENT ON VIEW ips.vocabulary_labels IS
    'The codes of ips.vocabulary in their order, with their labels in Finnish, Swedish and English (ips.label_text).';

ALTER TABLE ips.staff ADD CONSTRAINT staff_role_fkey FOREIGN KEY (role) REFERENCES ips.vocabulary_staff_role (code);
ALTER TABLE ips.consent ADD CONSTRAINT consent_scope_fkey FOREIGN KEY (scope) REFERENCES ips.vocabulary_consent_scope (code);
ALTER TABLE ips.consent_refusal ADD CONSTRAINT consent_refusal_scope_fkey FOREIGN KEY (scope) REFERENCES ips.vocabulary_consent_scope (code);
ALTER TABLE ips.episode
    ADD CONSTRAINT episode_state_fkey FOREIGN KEY (state) REFERENCES ips.vocabulary_state (code),
    ADD CONSTRAINT episode_held_state_fkey FOREIGN KEY (held_state) REFERENCES ips.vocabulary_state (code),
    ADD CONSTRAINT episode_held_state_check CHECK (held_state <> 'on_hold' AND held_state <> 'closed'),
    ADD CONSTRAINT episode_close_reason_fkey FOREIGN KEY (close_reason) REFERENCES ips.vocabulary_close_reason (code);
ALTER TABLE ips.episode_state_history
    ADD CONSTRAINT episode_state_history_to_state_fkey FOREIGN KEY (to_state) REFERENCES ips.vocabulary_state (code),
    ADD CONSTRAINT episode_state_history_transition_fkey FOREIGN KEY (from_state, to_state) REFERENCES ips.state_transition;
ALTER TABLE ips.contact ADD CONSTRAINT contact_form_fkey FOREIGN KEY (kind, mode, setting) REFERENCES ips.contact_form;
ALTER TABLE ips.job
    ADD CONSTRAINT job_kind_fkey FOREIGN KEY (kind) REFERENCES ips.vocabulary_job_kind (code),
    ADD CONSTRAINT job_payer_fkey FOREIGN KEY (payer) REFERENCES ips.vocabulary_job_payer (code);
ALTER TABLE ips.job_plan ADD CONSTRAINT job_plan_kind_fkey FOREIGN KEY (kind) REFERENCES ips.vocabulary_job_kind (code);

-- The check of codes reads the vocabulary through vocabulary.c's cache (lookup.c).
COMMENT ON FUNCTION ips.check_code(text, text, text) IS 'Internal: raises 22023 with the valid codes (ips.vocabulary, in their order) as hint unless code belongs to category; 22004 when code is NULL.';


-- ===== grants, revokes and policies for new and changed objects
-- ips.apply_security() of 1.2 (the one copy in this script: the grants and policies of every
-- section above; equal to extension/sql/90_security.sql), then run
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
        "log_access": "", "access_report": "ips_admin, ips_supervisor",
        "outcomes_quarterly_for": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "recordable_staff": "ips_supervisor, ips_specialist, ips_clinician", "is_team_client": "ips_supervisor, ips_specialist", "close_review": "ips_admin, ips_supervisor",
        "small_cell_threshold_for_caller": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "team_visible": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "fidelity_team_level": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "fidelity_summary": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst"}';
    -- invoker functions that only the owner (a superuser) runs
    owner_only constant text[] := '{apply_security,attach_host_table,detach_host_table,reattach_host_tables,create_analytics_publication,prepare_analytics_subscriber,access_log_append,archive_blocks}';
    ips_ns constant oid := 'ips'::regnamespace;
    t record;
    f record;
    s record;
    has_client boolean;
    has_episode boolean;
    has_team boolean;
    has_review boolean;
    team_pred text;
    -- in whose name a row is recorded (88_table_rules.sql): the caller; a supervisor also the team's staff
    own_pred constant text := 'staff_id = ANY ((SELECT ips.recordable_staff())::bigint[])';
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

        IF t.relname IN ('change_log', 'access_log', 'ledger_pending', 'ledger_block') THEN
            -- written only by the ledger (docs/ledger.md); read by ips_admin
            EXECUTE format('GRANT SELECT ON ips.%I TO ips_admin', t.relname);
            CONTINUE;
        ELSIF has_client OR has_episode THEN
            -- person-level: the team's rows for specialists and supervisors; shared clients for clinicians
            team_pred := CASE
                WHEN t.relname = 'episode' THEN 'team_id = ANY ((SELECT ips.my_teams())::bigint[])'
                -- a team sees its own registrations only (not which other teams registered the client, nor who)
                WHEN t.relname = 'client_intake' THEN 'team_id = ANY ((SELECT ips.my_teams())::bigint[])'
                WHEN has_episode AND t.relname <> 'employer_contact' THEN 'episode_id = ANY ((SELECT ips.team_episodes())::bigint[])'
                ELSE 'client_id = ANY ((SELECT ips.team_clients())::bigint[])' END;
            EXECUTE format('ALTER TABLE ips.%I ENABLE ROW LEVEL SECURITY', t.relname);
            IF t.relname = 'employer_contact' THEN
                -- the job-development log: the team reads its contacts; a contact is recorded in the
                -- caller's own name (a supervisor's: also the team's staff), on behalf of a client
                -- of the team or of none
                EXECUTE 'CREATE POLICY ips_team_read ON ips.employer_contact FOR SELECT TO ips_specialist, ips_supervisor'
                     || ' USING (staff_id = ANY ((SELECT ips.team_staff())::bigint[]) OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[]))';
                EXECUTE 'CREATE POLICY ips_team_write ON ips.employer_contact FOR INSERT TO ips_specialist, ips_supervisor'
                     || ' WITH CHECK (' || own_pred
                     || ' AND (episode_id IS NULL AND client_id IS NULL OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[])))';
                EXECUTE 'CREATE POLICY ips_team_update ON ips.employer_contact FOR UPDATE TO ips_specialist, ips_supervisor'
                     || ' USING (' || own_pred || ')'
                     || ' WITH CHECK (' || own_pred
                     || ' AND (episode_id IS NULL AND client_id IS NULL OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[])))';
            ELSIF t.relname = 'episode' THEN
                -- a new episode: in the caller's team, for a client the caller sees already (checked
                -- before unique and foreign keys: another team's client answers like none); an
                -- episode keeps its client (ips.episode_guard), so an update checks the team only
                EXECUTE format('CREATE POLICY ips_team_read ON ips.episode FOR SELECT TO ips_specialist, ips_supervisor USING (%s)', team_pred);
                EXECUTE format('CREATE POLICY ips_team_write ON ips.episode FOR INSERT TO ips_specialist, ips_supervisor'
                               ' WITH CHECK (%s AND ips.is_team_client(client_id))', team_pred);
                EXECUTE format('CREATE POLICY ips_team_update ON ips.episode FOR UPDATE TO ips_specialist, ips_supervisor'
                               ' USING (%s) WITH CHECK (%s)', team_pred, team_pred);
            ELSIF t.relname = 'contact' THEN
                -- the team reads its contacts; a contact is recorded and changed in the caller's own name
                EXECUTE format('CREATE POLICY ips_team_read ON ips.contact FOR SELECT TO ips_specialist, ips_supervisor USING (%s)', team_pred);
                EXECUTE format('CREATE POLICY ips_team_write ON ips.contact FOR INSERT TO ips_specialist, ips_supervisor'
                               ' WITH CHECK (%s AND %s)', team_pred, own_pred);
                EXECUTE format('CREATE POLICY ips_team_update ON ips.contact FOR UPDATE TO ips_specialist, ips_supervisor'
                               ' USING (%s AND %s) WITH CHECK (%s AND %s)', team_pred, own_pred, team_pred, own_pred);
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
                     || ' WITH CHECK (kind = ''care_team'' AND ' || own_pred
                     || ' AND client_id = ANY ((SELECT ips.shared_clients())::bigint[]))';
                EXECUTE 'GRANT INSERT ON ips.contact TO ips_clinician';
            END IF;
            roles := CASE t.relname
                -- registered by ips.add_client(); the host key is never changed by staff (an UPDATE of it
                -- would answer 23505 for a key another team registered: an existence oracle)
                WHEN 'client' THEN 'SELECT, UPDATE (birth_year, municipality)'
                WHEN 'client_intake' THEN 'SELECT'               -- written by ips.add_client() and its trigger on ips.client
                WHEN 'consent_refusal' THEN 'SELECT'             -- appended by ips.refuse_consent()
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
            IF t.relname = 'fidelity_frozen' THEN
                -- written by ips.close_review() only (as definer), never changed
                EXECUTE 'GRANT SELECT ON ips.fidelity_frozen TO ips_supervisor, ips_admin';
            ELSE
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ips.%I TO ips_supervisor, ips_admin', t.relname);
            END IF;
        ELSIF t.relname = 'team_meeting' THEN
            -- attendance: the team reads; a specialist records their own, a supervisor the team's
            EXECUTE 'ALTER TABLE ips.team_meeting ENABLE ROW LEVEL SECURITY';
            EXECUTE 'CREATE POLICY ips_team_read ON ips.team_meeting FOR SELECT TO ips_specialist, ips_supervisor'
                 || ' USING (team_id = ANY ((SELECT ips.my_teams())::bigint[]))';
            EXECUTE 'CREATE POLICY ips_own_meeting ON ips.team_meeting FOR INSERT TO ips_specialist, ips_supervisor'
                 || ' WITH CHECK (' || own_pred || ' AND team_id = ANY ((SELECT ips.my_teams())::bigint[]))';
            EXECUTE 'GRANT SELECT, INSERT ON ips.team_meeting TO ips_specialist, ips_supervisor';
        ELSIF t.relname = 'host_attachment' THEN
            EXECUTE 'GRANT SELECT ON ips.host_attachment TO ips_admin';
        ELSE
            -- reference data: the ips roles read (analysts neither the staff list nor the staff's
            -- terms of employment), ips_admin writes
            EXECUTE format('GRANT SELECT ON ips.%I TO %s', t.relname,
                           CASE WHEN t.relname IN ('staff', 'staff_terms') THEN staff_roles ELSE all_roles END);
            -- the vocabulary (its partitions, the allowed transitions and contact forms) is the
            -- extension's: changed by its owner only (docs/records.md, "Vocabulary")
            IF NOT (t.relname IN ('vocabulary', 'state_transition', 'contact_form') OR t.relname LIKE 'vocabulary\_%') THEN
                EXECUTE format('GRANT INSERT, UPDATE, DELETE ON ips.%I TO ips_admin', t.relname);
            END IF;
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
        ELSIF t.relname = 'vocabulary_labels' THEN
            -- the codes and their labels: reference data, read by every role
            EXECUTE format('ALTER VIEW ips.%I SET (security_invoker = true)', t.relname);
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
        ELSIF f.proname IN ('verify_change_log', 'verify_access_log', 'log_first_break', 'verify_change_log_since', 'verify_access_log_since',
                            'change_log_digest', 'access_log_digest', 'ledger_digest', 'ledger_verify', 'seal') THEN
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

SELECT ips.apply_security();
