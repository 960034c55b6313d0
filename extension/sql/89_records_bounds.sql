-- Bounded input (issue 13, see 87_bounds.sql) for the tables and columns of issue 16 (staff
-- history, job hours, job plans): finite dates, and the bounds trigger of each new table.
-- ips.staff_terms.from_on is -infinity on a person's first terms (in force since the start);
-- ips.change_staff dates the others (finite, not in the future).
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
