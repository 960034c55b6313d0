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
