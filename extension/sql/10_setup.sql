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
    role             text NOT NULL CONSTRAINT staff_role_fkey REFERENCES ips.vocabulary_staff_role (code),
    fte              numeric NOT NULL DEFAULT 1.0 CHECK (fte > 0 AND fte <= 1),
    db_role          name UNIQUE,
    employment_share numeric NOT NULL DEFAULT 1.0 CHECK (employment_share >= 0 AND employment_share <= 1),
    weekly_hours     numeric NOT NULL CHECK (weekly_hours > 0 AND weekly_hours <= 80),
    unit             text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_on       date,
    ended_on         date,
    CONSTRAINT staff_dates_check CHECK (ended_on > started_on)
);
CREATE INDEX staff_team_idx ON ips.staff (team_id);
COMMENT ON TABLE ips.staff IS 'Employment specialists, supervisors and clinicians; db_role maps a login role to the person.';
COMMENT ON COLUMN ips.staff.unit IS 'Care unit of a clinician; matches ips.care_relationship.unit.';
COMMENT ON COLUMN ips.staff.fte IS 'FTE in force now; the dated history is ips.staff_terms.';
COMMENT ON COLUMN ips.staff.weekly_hours IS 'Scheduled hours a week in force now (37.5 x fte when not given); the dated history is ips.staff_terms.';
COMMENT ON COLUMN ips.staff.started_on IS 'First day on the team; NULL: since before any record.';
COMMENT ON COLUMN ips.staff.ended_on IS 'First day no longer on the team (ips.end_staff); NULL: still on the team.';

-- The dated values of a staff member: each row is in force from from_on until the next row's
-- from_on; the first row of a person is dated -infinity (in force since the start).
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

-- Staff rows: hours from the FTE when not given, the terms history kept in step, and an end
-- only after the person's clients were handed over.  As definer: ips_admin, who manages staff,
-- does not read episodes (the error gives a count only).
CREATE FUNCTION ips.staff_guard() RETURNS trigger
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

-- pg_restore loads ips.staff (whose trigger writes a first terms row) before ips.staff_terms:
-- a dumped terms row replaces the row of the same key.
CREATE FUNCTION ips.staff_terms_restore() RETURNS trigger
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
    scope        text NOT NULL CONSTRAINT consent_scope_fkey REFERENCES ips.vocabulary_consent_scope (code),
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
-- In C (lookup.c): the functions call it for every required argument.
CREATE OR REPLACE FUNCTION ips.require(value anyelement, what text) RETURNS void
AS 'MODULE_PATHNAME', 'ips_require' LANGUAGE C IMMUTABLE;
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

-- A staff member's last day on the team is ended_on - 1; their episodes must be handed over first.
CREATE FUNCTION ips.end_staff(staff_id bigint, ended_on date) RETURNS void
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

-- A dated change of FTE, employment share or weekly hours (NULL: unchanged).
CREATE FUNCTION ips.change_staff(staff_id bigint, from_on date, fte numeric DEFAULT NULL,
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

-- The terms of each staff member per span of days: [from_on, to_on) within [started_on, ended_on).
CREATE FUNCTION ips.staff_spans(team_ids bigint[])
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

-- Registers a client in the caller's team.  A host key names one person in the host
-- system, so a key that is registered already (by any team) gives its existing
-- client: the answer is the same as for a new key (no unique violation, an
-- existence oracle on host keys in 1.1; docs/security.md).  Every argument is
-- checked before either path.  The caller's team is recorded in ips.client_intake
-- (by the trigger client_intake for a new client, here for an existing one): that is
-- the team's client relationship, and it is in the change log.  Missing birth year
-- and municipality are completed, recorded ones are kept.
CREATE FUNCTION ips.add_client(host_ref text, birth_year int DEFAULT NULL, municipality text DEFAULT NULL) RETURNS bigint
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
