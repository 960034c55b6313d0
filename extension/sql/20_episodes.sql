-- Episodes, their state history, and the dated facts of an episode.

CREATE TABLE ips.episode (
    episode_id        bigserial PRIMARY KEY,
    client_id         bigint NOT NULL REFERENCES ips.client,
    team_id           bigint NOT NULL REFERENCES ips.team,
    state             text NOT NULL DEFAULT 'referred' CONSTRAINT episode_state_fkey REFERENCES ips.vocabulary_state (code),
    state_since       timestamptz NOT NULL,
    state_reason      text,
    referred_on       date NOT NULL,
    referral_source   text,
    specialist_id     bigint REFERENCES ips.staff,
    entry_on          date,
    held_state        text CONSTRAINT episode_held_state_fkey REFERENCES ips.vocabulary_state (code)
                      CONSTRAINT episode_held_state_check CHECK (held_state <> 'on_hold' AND held_state <> 'closed'),
    career_profile_on date,
    closed_on         date,
    close_reason      text CONSTRAINT episode_close_reason_fkey REFERENCES ips.vocabulary_close_reason (code),
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- an episode is open exactly while closed_on is empty (no index reads state, so a
    -- change of state among the open states is a HOT update)
    CONSTRAINT episode_open_iff_no_closed_on CHECK ((state = 'closed') = (closed_on IS NOT NULL)),
    -- and a closed one says why (with the check above, what 1.0's single check said)
    CONSTRAINT episode_closed_has_reason CHECK (state <> 'closed' OR close_reason IS NOT NULL),
    CONSTRAINT episode_on_hold_iff_held_state CHECK ((state = 'on_hold') = (held_state IS NOT NULL))
);
-- One open episode per client; the unique index also settles two concurrent referrals.
CREATE UNIQUE INDEX episode_one_open_per_client ON ips.episode (client_id) WHERE closed_on IS NULL;
-- The look-up indexes are whole (not partial), so a query that says "open" as
-- state <> 'closed' uses them as well as one that says closed_on IS NULL.
CREATE INDEX episode_team_idx ON ips.episode (team_id);
CREATE INDEX episode_specialist_idx ON ips.episode (specialist_id);
COMMENT ON TABLE ips.episode IS 'One period of IPS service for one client; state kept by the state machine (see README).';
COMMENT ON COLUMN ips.episode.entry_on IS 'Day the episode first entered engaged: the contact rules count from it.';
COMMENT ON COLUMN ips.episode.held_state IS 'While on_hold: the state that was paused, the only one it may return to.';

CREATE TABLE ips.episode_state_history (
    history_id  bigserial PRIMARY KEY,
    episode_id  bigint NOT NULL REFERENCES ips.episode,
    client_id   bigint NOT NULL,
    from_state  text,
    to_state    text NOT NULL CONSTRAINT episode_state_history_to_state_fkey REFERENCES ips.vocabulary_state (code),
    at          timestamptz NOT NULL,
    reason      text,
    actor       name NOT NULL,
    staff_id    bigint,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- every recorded move is one the state machine allows (the first row has no from_state)
    CONSTRAINT episode_state_history_transition_fkey FOREIGN KEY (from_state, to_state) REFERENCES ips.state_transition
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
    kind        text NOT NULL,
    mode        text NOT NULL DEFAULT 'in_person',
    setting     text NOT NULL DEFAULT 'community',
    minutes     int CHECK (minutes >= 0),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- an in-person employer visit is recorded once, in ips.employer_contact (with its employer)
    CONSTRAINT contact_employer_visit_check CHECK (NOT (kind = 'employer_for_client' AND mode = 'in_person')),
    -- kind, mode and setting are codes of the vocabulary: one foreign key for the three
    CONSTRAINT contact_form_fkey FOREIGN KEY (kind, mode, setting) REFERENCES ips.contact_form
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
    kind           text NOT NULL DEFAULT 'competitive' CONSTRAINT job_kind_fkey REFERENCES ips.vocabulary_job_kind (code),
    occupation     text CHECK (occupation ~ '^[0-9]{1,4}$'),
    hours_per_week numeric CHECK (hours_per_week > 0 AND hours_per_week <= 80),
    title          text,
    end_reason     text,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    held_at_entry  boolean NOT NULL DEFAULT false,
    payer          text CONSTRAINT job_payer_fkey REFERENCES ips.vocabulary_job_payer (code),
    continues_job_id bigint REFERENCES ips.job,
    CHECK (ends_on >= starts_on)
);
CREATE INDEX job_episode_idx ON ips.job (episode_id, starts_on);
COMMENT ON TABLE ips.job IS 'Jobs and work trials; occupation is an ISCO-08 code (job type).';
COMMENT ON COLUMN ips.job.payer IS 'Who pays a work trial or subsidy: kela, pension_insurer (rehabilitation allowance), employment_services (TE office); NULL: the employer.';
COMMENT ON COLUMN ips.job.continues_job_id IS 'The job (e.g. a work trial) this one continues at the same employer (ips.continue_job): its history goes on.';
CREATE INDEX job_continues_idx ON ips.job (continues_job_id) WHERE continues_job_id IS NOT NULL;

-- Hours a week of a job from a day on (ips.change_job_hours); before the first row, ips.job.hours_per_week.
CREATE TABLE ips.job_hours (
    job_id         bigint NOT NULL REFERENCES ips.job,
    from_on        date NOT NULL,
    episode_id     bigint NOT NULL REFERENCES ips.episode,
    client_id      bigint NOT NULL,
    hours_per_week numeric NOT NULL CHECK (hours_per_week > 0 AND hours_per_week <= 80),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, from_on)
);
COMMENT ON TABLE ips.job_hours IS
    'Changes of a job''s weekly hours (a work trial growing from 15 to 30 h): in force from from_on; before the first change ips.job.hours_per_week (the hours at the start).';
COMMENT ON COLUMN ips.job.held_at_entry IS
    'Kept by the fact guard: the job began before the referral (held when the episode began): no job start, no first job, job-retention support from entry.';

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
CREATE TRIGGER job_hours_guard BEFORE INSERT OR UPDATE ON ips.job_hours
    FOR EACH ROW EXECUTE FUNCTION ips.fact_guard('from_on');
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
COMMENT ON FUNCTION ips.refer(bigint, bigint, date, text) IS 'Receives a referral: a new episode in state referred; returns its id.';

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
COMMENT ON FUNCTION ips.transition(bigint, text, timestamptz, text) IS
    'Moves an episode to another state (see the transition table); closed needs a reason. Returns the new state.';

-- Corrections learned late (in C, episode_state.c): transitions inserted before the last
-- recorded one; the state machine checks the whole corrected sequence.
CREATE FUNCTION ips.insert_transitions(episode_id bigint, to_states text[], ats timestamptz[], reasons text[] DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'ips_insert_transitions' LANGUAGE C;
COMMENT ON FUNCTION ips.insert_transitions(bigint, text[], timestamptz[], text[]) IS
    'Inserts transitions learned late between the referral and the last recorded transition, when the corrected sequence is valid (it must lead back to the state the next recorded transition starts from); the rows keep who inserted them (actor) and when (recorded_at). Returns how many.';

-- A pause learned late: on_hold from from_at, back to the paused state at until_at.
CREATE FUNCTION ips.record_pause(episode_id bigint, from_at timestamptz, until_at timestamptz, reason text DEFAULT NULL)
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
COMMENT ON FUNCTION ips.complete_career_profile(bigint, date) IS 'Records the day the client''s career profile (vocational profile) was completed.';

CREATE FUNCTION ips.record_contact(episode_id bigint, staff_id bigint, at timestamptz, kind text,
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

-- A job agreed to start later: a plan, which changes no state; ips.start_planned_job records
-- the job when it starts.
CREATE TABLE ips.job_plan (
    plan_id        bigserial PRIMARY KEY,
    episode_id     bigint NOT NULL REFERENCES ips.episode,
    client_id      bigint NOT NULL,
    employer_id    bigint NOT NULL REFERENCES ips.employer,
    starts_on      date NOT NULL,
    kind           text NOT NULL DEFAULT 'competitive' CONSTRAINT job_plan_kind_fkey REFERENCES ips.vocabulary_job_kind (code),
    occupation     text CHECK (occupation ~ '^[0-9]{1,4}$'),
    hours_per_week numeric CHECK (hours_per_week > 0 AND hours_per_week <= 80),
    title          text,
    job_id         bigint REFERENCES ips.job,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_plan_episode_idx ON ips.job_plan (episode_id);
COMMENT ON TABLE ips.job_plan IS 'Jobs agreed to start later (no state change until ips.start_planned_job records the start; job_id then).';

-- A plan belongs to its episode and carries its client (direct writes included).
CREATE FUNCTION ips.job_plan_guard() RETURNS trigger
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

CREATE FUNCTION ips.plan_job(episode_id bigint, employer_id bigint, starts_on date, kind text DEFAULT 'competitive',
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

CREATE FUNCTION ips.start_planned_job(plan_id bigint, starts_on date DEFAULT NULL) RETURNS bigint
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

-- A job's hours a week from a day on (a work trial that grows).
CREATE FUNCTION ips.change_job_hours(job_id bigint, from_on date, hours_per_week numeric) RETURNS void
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

-- The hours a week of a job on a day.
CREATE FUNCTION ips.job_hours_on(job_id bigint, day date) RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT h.hours_per_week FROM ips.job_hours h
                      WHERE h.job_id = job_hours_on.job_id AND h.from_on <= job_hours_on.day
                      ORDER BY h.from_on DESC LIMIT 1),
                    (SELECT j.hours_per_week FROM ips.job j WHERE j.job_id = job_hours_on.job_id))
$$;
COMMENT ON FUNCTION ips.job_hours_on(bigint, date) IS 'The weekly hours of a job in force on a day (ips.job_hours, else its hours at the start).';

-- Who pays a work trial or subsidised job.
CREATE FUNCTION ips.set_job_payer(job_id bigint, payer text) RETURNS void
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

-- A work trial that goes on as a paid trial or an ordinary job at the same employer.
CREATE FUNCTION ips.continue_job(job_id bigint, from_on date, kind text DEFAULT 'competitive',
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
COMMENT ON FUNCTION ips.record_team_meeting(bigint, date) IS 'Records that a specialist attended the care team''s meeting on a day (idempotent).';

-- A specialist carries episodes only while on the team (direct writes included).
CREATE FUNCTION ips.assignment_staff_guard() RETURNS trigger
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

-- Caseload per specialist on the team today (open episodes past referred), with the FTE in force.
CREATE VIEW ips.caseload AS
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

-- pg_dump keeps the rows of the tables that hold a region's data.
SELECT pg_catalog.pg_extension_config_dump('ips.team', '');
SELECT pg_catalog.pg_extension_config_dump('ips.staff', '');
SELECT pg_catalog.pg_extension_config_dump('ips.staff_terms', '');
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
SELECT pg_catalog.pg_extension_config_dump('ips.job_plan', '');
SELECT pg_catalog.pg_extension_config_dump('ips.job_hours', '');
SELECT pg_catalog.pg_extension_config_dump('ips.job_plan_plan_id_seq', '');
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
