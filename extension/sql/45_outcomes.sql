-- Outcomes (domain.md section 6): per team and quarter, the figures IPS programmes report,
-- beside the benchmarks; for analysts, counts of fewer people than the small-cell threshold
-- are suppressed.

-- Whether the client was out of work when the episode began (UK IPS Grow counts only them).
ALTER TABLE ips.episode ADD COLUMN out_of_work_at_entry boolean;
COMMENT ON COLUMN ips.episode.out_of_work_at_entry IS
    'True when the client had no paid job when the episode began (the IPS Grow employment rate counts only these); NULL: not recorded.';

CREATE FUNCTION ips.set_out_of_work_at_entry(episode_id bigint, out_of_work boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e ips.episode;
BEGIN
    PERFORM ips.require(out_of_work, 'out_of_work');
    e := ips.episode_for_update(set_out_of_work_at_entry.episode_id);
    UPDATE ips.episode x SET out_of_work_at_entry = set_out_of_work_at_entry.out_of_work
     WHERE x.episode_id = e.episode_id;
END $$;
COMMENT ON FUNCTION ips.set_out_of_work_at_entry(bigint, boolean) IS
    'Records whether the client was out of work when the episode began (for the employment rate of those out of work at entry).';

INSERT INTO ips.setting (name, value, description) VALUES
  ('benchmark_employment_minimal', '31', 'IPS employment rate benchmark, minimal (%, IPS Employment Center).'),
  ('benchmark_employment_average', '41', 'IPS employment rate benchmark, average (%).'),
  ('benchmark_employment_excellent', '50', 'IPS employment rate benchmark, excellent (%).'),
  ('benchmark_employment_uk', '40', 'IPS Grow (UK) benchmark for the employment rate of clients out of work at entry (%).');

-- Raw figures per team and quarter (person-level tables underneath: not for analysts).
-- Set-based: every figure is aggregated once by (team, quarter) and joined to the quarter list,
-- so the cost grows with the rows, not with quarters x rows of the whole region.
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

-- A count as analysts see it: NULL when 1 .. threshold-1 people (0 is shown); NULL threshold: as is.
CREATE FUNCTION ips.suppress_count(n bigint, threshold int) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN n IS NULL OR (threshold IS NOT NULL AND n > 0 AND n < threshold) THEN NULL ELSE n END
$$;
COMMENT ON FUNCTION ips.suppress_count(bigint, int) IS
    'Small-cell suppression of a count: NULL when it is 1 .. threshold-1; zero and larger counts are shown.';

-- A percentage of two counts, NULL when either is suppressed or the denominator is 0.
CREATE FUNCTION ips.suppress_rate(num bigint, den bigint, threshold int) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN ips.suppress_count(num, threshold) IS NULL OR ips.suppress_count(den, threshold) IS NULL
                  OR den = 0 THEN NULL
                ELSE round(num * 100.0 / den, 1) END
$$;
COMMENT ON FUNCTION ips.suppress_rate(bigint, bigint, int) IS
    'Percentage num/den to one decimal; NULL when num or den is suppressed (1 .. threshold-1) or den is 0.';

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

-- The smallest threshold the calling role must see: none for superusers and ips_admin, else the setting.
CREATE FUNCTION ips.small_cell_threshold_for_caller() RETURNS int
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = ips.caller())
                  OR (to_regrole('ips_admin') IS NOT NULL AND pg_catalog.pg_has_role(ips.caller(), 'ips_admin', 'MEMBER'))
                THEN NULL
                ELSE coalesce(ips.setting_value('small_cell_threshold')::int, 5) END
$$;
COMMENT ON FUNCTION ips.small_cell_threshold_for_caller() IS
    'The small-cell threshold that applies to the caller: NULL (no suppression) for superusers and members of ips_admin, else the setting small_cell_threshold.';

CREATE FUNCTION ips.outcomes_quarterly_for(threshold int DEFAULT NULL)
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

CREATE VIEW ips.outcomes_quarterly AS
SELECT * FROM ips.outcomes_quarterly_for(NULL);
COMMENT ON VIEW ips.outcomes_quarterly IS
    'Per team and quarter: clients served, working competitively and the employment rate (all; out of work at entry) beside the benchmarks 31/41/50 % and UK 40 %, job starts, first jobs, median days to first job, education starts, 90-day retention, closures by reason; small cells suppressed except for ips_admin.';
