-- Outcomes by kind of job and weekly hours (issue 16 item 3): per team, quarter, kind and hours
-- band, the jobs held in the quarter (hours in force at the quarter's end, or the job's end if
-- earlier: ips.job_hours_on), the clients holding them, and the jobs started in the quarter
-- (not those held at entry).  Person-level underneath: for staff, not analysts.
CREATE VIEW ips.outcomes_jobs_quarterly_counts AS
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
