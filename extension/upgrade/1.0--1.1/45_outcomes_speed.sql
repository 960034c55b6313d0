-- ips 1.0 -> 1.1: ips.outcomes_quarterly_counts rewritten set-based (same columns, same results).
-- 1.0 computed every figure per team and quarter with correlated subqueries that scanned the
-- region's episodes and jobs again for each quarter (52 s at 20 000 clients, quadratic); now each
-- figure is aggregated once by (team, quarter) and joined to the list of quarters.
-- The text below is that of extension/sql/45_outcomes.sql (tests/t/020_upgrade.pl compares them).

-- Raw figures per team and quarter (person-level tables underneath: not for analysts).
-- Set-based: every figure is aggregated once by (team, quarter) and joined to the quarter list,
-- so the cost grows with the rows, not with quarters x rows of the whole region.
CREATE OR REPLACE VIEW ips.outcomes_quarterly_counts AS
WITH cfg AS MATERIALIZED (
    SELECT string_to_array(replace(coalesce(ips.setting_value('competitive_job_kinds'), 'competitive'), ' ', ''), ',') AS kinds,
           ips.local_date(now()) AS today
),
cjob AS MATERIALIZED (
    SELECT j.job_id, j.episode_id, j.starts_on, j.ends_on, e.team_id, e.client_id, e.entry_on
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
-- each episode in every listed quarter it overlaps (entry on or before the quarter's end, not closed before its start)
eq AS (
    SELECT e.team_id, e.episode_id, e.client_id, e.out_of_work_at_entry, g::date AS qs
      FROM ips.episode e JOIN qb ON qb.team_id = e.team_id
     CROSS JOIN LATERAL generate_series(greatest(date_trunc('quarter', e.entry_on::timestamp), qb.first_qs),
                                        least(date_trunc('quarter', coalesce(e.closed_on::timestamp, qb.last_qs)), qb.last_qs),
                                        interval '3 months') g
     WHERE e.entry_on IS NOT NULL
),
-- each episode in every listed quarter in which one of its competitive jobs ran
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
js AS (
    SELECT j.team_id, date_trunc('quarter', j.starts_on::timestamp)::date AS qs,
           count(*) AS job_starts,
           count(*) FILTER (WHERE j.starts_on + 89 <= (SELECT cfg.today FROM cfg)) AS jobs_90_known,
           count(*) FILTER (WHERE j.starts_on + 89 <= (SELECT cfg.today FROM cfg)
                              AND (j.ends_on IS NULL OR j.ends_on >= j.starts_on + 89)) AS jobs_90_retained
      FROM cjob j
     GROUP BY 1, 2
),
first_job AS (
    SELECT j.episode_id, min(j.starts_on) AS starts_on FROM cjob j GROUP BY j.episode_id
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
