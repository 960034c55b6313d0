-- bench/reference_alerts.sql: the contact rules of ips (docs/rules.md) in plain
-- SQL, as a reference for the C engine: ips_bench.contact_alerts_sql(as_of,
-- team_id) returns the same rows as ips.contact_alerts(as_of, team_id).  The
-- benchmark compares the two for speed and equality; tests/pgtap/
-- rules_reference.sql checks equality on a generated region.
--
-- One statement, no C and no procedural loops.  The pause rule (a due day D + N
-- is the N-th day after D that is not on hold) is computed in closed form: with
-- the pauses of an episode in order, a pause is counted when it starts on or
-- before D + N + (the paused days counted before it); that condition only ever
-- turns from true to false along the pauses, so the counted ones are a prefix.

CREATE SCHEMA IF NOT EXISTS ips_bench;
COMMENT ON SCHEMA ips_bench IS 'Benchmark helpers of ips: reference implementations in plain SQL.';

CREATE OR REPLACE FUNCTION ips_bench.contact_alerts_sql(as_of date, team_id bigint DEFAULT NULL)
RETURNS TABLE(episode_id bigint, staff_id bigint, rule text, due_on date, days_overdue int, severity text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
WITH
p AS (
    SELECT $1 AS as_of, $2 AS team_id,
           coalesce((SELECT s.value FROM ips.setting s WHERE s.name = 'time_zone'), 'Europe/Helsinki') AS tz),
ru AS (
    SELECT r.code, coalesce(r.days, 0) AS days, coalesce(r.count, 0) AS cnt, r.horizon_days AS h
      FROM ips.rule r WHERE r.enabled),
maxh AS (SELECT coalesce(max(r.horizon_days), 0) AS h FROM ips.rule r),
-- the selection: episodes referred by as_of and not closed before it
ep AS (
    SELECT e.episode_id, e.client_id, e.referred_on,
           CASE WHEN e.career_profile_on <= p.as_of THEN e.career_profile_on END AS career_on
      FROM ips.episode e, p
     WHERE (p.team_id IS NULL OR e.team_id = p.team_id) AND e.referred_on <= p.as_of
       AND (e.closed_on IS NULL OR e.closed_on >= p.as_of)),
hist AS (
    SELECT h.episode_id, (h.at AT TIME ZONE p.tz)::date AS day, h.to_state, h.at, h.history_id
      FROM ips.episode_state_history h JOIN ep ON ep.episode_id = h.episode_id, p
     WHERE h.at < ((p.as_of + 1)::timestamp AT TIME ZONE p.tz)),
-- the state at the end of each day with a change
dstate AS (
    SELECT DISTINCT ON (d.episode_id, d.day) d.episode_id, d.day, d.to_state
      FROM hist d ORDER BY d.episode_id, d.day, d.at DESC, d.history_id DESC),
state_now AS (
    SELECT DISTINCT ON (d.episode_id) d.episode_id, d.to_state
      FROM dstate d ORDER BY d.episode_id, d.day DESC),
-- the days on hold (every rule), and those studying (rapid_job_search does not count them either)
holds AS (
    SELECT x.episode_id, x.day AS from_on, x.next_day - 1 AS to_on, x.to_state
      FROM (SELECT d.*, lead(d.day) OVER (PARTITION BY d.episode_id ORDER BY d.day) AS next_day FROM dstate d) x
     WHERE x.to_state IN ('on_hold', 'studying')),
-- episodes that raise alerts: open and not on hold on as_of
entry AS (
    SELECT h.episode_id, min(h.day) AS entry_on FROM hist h
     WHERE h.to_state IN ('engaged', 'job_search', 'employed', 'studying') GROUP BY h.episode_id),
act AS (
    SELECT ep.*, en.entry_on
      FROM ep JOIN state_now s ON s.episode_id = ep.episode_id LEFT JOIN entry en ON en.episode_id = ep.episode_id
     WHERE s.to_state NOT IN ('closed', 'on_hold')),
con AS (
    SELECT c.episode_id, (c.at AT TIME ZONE p.tz)::date AS day, c.mode, c.kind
      FROM ips.contact c JOIN act a ON a.episode_id = c.episode_id, p
     WHERE c.kind IN ('client', 'benefits_counseling') AND c.at < ((p.as_of + 1)::timestamp AT TIME ZONE p.tz)),
facts AS (
    SELECT con.episode_id, con.day, 'client' AS cls FROM con WHERE con.mode <> 'message'
    UNION SELECT con.episode_id, con.day, 'f2f' FROM con WHERE con.mode = 'in_person'
    UNION SELECT con.episode_id, con.day, 'benefits' FROM con WHERE con.kind = 'benefits_counseling'
    UNION SELECT x.episode_id, (x.at AT TIME ZONE p.tz)::date, 'employer'
            FROM ips.employer_contact x JOIN act a ON a.episode_id = x.episode_id, p
           WHERE x.in_person AND x.competitive AND x.at < ((p.as_of + 1)::timestamp AT TIME ZONE p.tz)
    UNION SELECT a.episode_id, a.career_on, 'career' FROM act a WHERE a.career_on IS NOT NULL),
last_client AS (
    SELECT f.episode_id, max(f.day) AS day FROM facts f WHERE f.cls = 'client' GROUP BY f.episode_id),
jobs AS (
    SELECT j.episode_id, j.job_id, j.starts_on, CASE WHEN j.ends_on <= p.as_of THEN j.ends_on END AS ends_on,
           j.held_at_entry AS held, a.entry_on, j.continues_job_id IS NOT NULL AS cont,
           EXISTS (SELECT 1 FROM ips.job n WHERE n.continues_job_id = j.job_id AND n.starts_on <= p.as_of) AS goes_on,
           row_number() OVER (PARTITION BY j.episode_id, j.held_at_entry OR j.continues_job_id IS NOT NULL
                              ORDER BY j.starts_on, j.job_id) AS nr
      FROM ips.job j JOIN act a ON a.episode_id = j.episode_id, p
     WHERE j.starts_on <= p.as_of),
-- coverage by care relationships and share_with_care consents; the gap that holds on as_of
cov AS (
    SELECT a.episode_id, 'care_relationship' AS rule, r.started_on AS from_on,
           CASE WHEN r.ended_on <= p.as_of THEN r.ended_on END AS to_on
      FROM act a JOIN ips.care_relationship r ON r.client_id = a.client_id, p
     WHERE r.started_on <= p.as_of
    UNION ALL
    SELECT a.episode_id, 'consent_for_care', c.given_on,
           CASE WHEN c.withdrawn_on <= p.as_of THEN c.withdrawn_on - 1 END
      FROM act a JOIN ips.consent c ON c.client_id = a.client_id AND c.scope = 'share_with_care', p
     WHERE c.given_on <= p.as_of),
cov_end AS (
    SELECT c.episode_id, c.rule,
           max(c.to_on) FILTER (WHERE c.to_on >= c.from_on) AS last_end,
           bool_or(c.to_on IS NULL OR c.to_on >= p.as_of) AS covered_now
      FROM cov c, p GROUP BY c.episode_id, c.rule),
gaps AS (
    SELECT a.episode_id, ru.code AS rule, greatest(a.entry_on, ce.last_end + 1) AS g, ru.days
      FROM act a JOIN ru ON ru.code IN ('care_relationship', 'consent_for_care')
      LEFT JOIN cov_end ce ON ce.episode_id = a.episode_id AND ce.rule = ru.code
     WHERE a.entry_on IS NOT NULL AND NOT coalesce(ce.covered_now, false)),
-- every expectation that can be unmet: anchor day d, n days, shifted by pauses or not,
-- the class of fact that meets it and the first day such a fact counts from
anchors AS (
    SELECT a.episode_id, ru.code AS rule, NULL::bigint AS job_id, 0 AS k, a.referred_on AS d, ru.days AS n,
           true AS shifted, 'client' AS cls, a.referred_on AS wstart, NULL::date AS ends_on
      FROM act a JOIN ru ON ru.code = 'referral_response'
    UNION ALL
    SELECT a.episode_id, ru.code, NULL, 0, a.entry_on, ru.days, true,
           CASE ru.code WHEN 'career_profile' THEN 'career' ELSE 'employer' END, '-infinity'::date, NULL
      FROM act a JOIN ru ON ru.code IN ('career_profile', 'rapid_job_search') WHERE a.entry_on IS NOT NULL
    UNION ALL
    SELECT j.episode_id, ru.code, j.job_id, 0, j.starts_on - ru.days, 0, false, 'benefits', '-infinity'::date, NULL
      FROM jobs j JOIN ru ON ru.code = 'benefits_before_start' WHERE j.nr = 1 AND NOT j.held AND NOT j.cont
    UNION ALL
    SELECT j.episode_id, ru.code, j.job_id, 0, j.starts_on, 0, false, 'f2f', j.starts_on - ru.days, NULL
      FROM jobs j JOIN ru ON ru.code = 'pre_start_contact' WHERE NOT j.held AND NOT j.cont
    UNION ALL
    SELECT j.episode_id, ru.code, j.job_id, 0, j.starts_on, ru.days, true, 'f2f', j.starts_on, NULL
      FROM jobs j JOIN ru ON ru.code = 'post_start_contact' WHERE NOT j.held AND NOT j.cont
    UNION ALL
    SELECT j.episode_id, ru.code, j.job_id, k.k, j.starts_on, ru.days * (k.k + 1) - 1, true, 'f2f', NULL, j.ends_on
      FROM jobs j JOIN ru ON ru.code IN ('first_month_weekly', 'follow_along_monthly'),
           LATERAL generate_series(0, ru.cnt - 1) AS k(k)
     WHERE NOT j.held AND (NOT j.cont OR ru.code = 'follow_along_monthly')
    UNION ALL
    -- a job held at entry: monthly follow-along from entry on (job-retention support)
    SELECT j.episode_id, ru.code, j.job_id, k.k, j.entry_on, ru.days * (k.k + 1) - 1, true, 'f2f', NULL, j.ends_on
      FROM jobs j JOIN ru ON ru.code = 'follow_along_monthly',
           LATERAL generate_series(0, ru.cnt - 1) AS k(k)
     WHERE j.held AND j.entry_on IS NOT NULL
    UNION ALL
    SELECT j.episode_id, ru.code, j.job_id, 0, j.ends_on, ru.days, true, 'client', j.ends_on, NULL
      FROM jobs j JOIN ru ON ru.code = 'job_loss_contact' WHERE j.ends_on IS NOT NULL AND NOT j.goes_on
    UNION ALL
    SELECT a.episode_id, ru.code, NULL, 0, coalesce(lc.day, a.referred_on), ru.days, true, 'none', NULL, NULL
      FROM act a JOIN ru ON ru.code = 'no_contact' LEFT JOIN last_client lc ON lc.episode_id = a.episode_id
    UNION ALL
    SELECT g.episode_id, g.rule, NULL, 0, g.g, g.days, true, 'none', NULL, NULL FROM gaps g),
numbered AS (
    SELECT x.*, row_number() OVER () AS id FROM anchors x),
held AS (
    SELECT q.id, sum(q.len) FILTER (WHERE q.from_on <= q.d + q.n + q.cum)::int AS extra,
           bool_or(q.to_on IS NULL AND q.from_on <= q.d + q.n + q.cum) AS still_paused
      FROM (SELECT x.id, x.d, x.n, hh.from_on, hh.to_on, greatest(0, hh.to_on - greatest(hh.from_on, x.d + 1) + 1) AS len,
                   coalesce(sum(greatest(0, hh.to_on - greatest(hh.from_on, x.d + 1) + 1))
                            OVER (PARTITION BY x.id ORDER BY hh.from_on ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::int AS cum
              FROM numbered x JOIN holds hh ON hh.episode_id = x.episode_id
                   AND (hh.to_state = 'on_hold' OR x.rule = 'rapid_job_search')
             WHERE x.shifted) q
     GROUP BY q.id),
dued AS (
    SELECT x.*, CASE WHEN hd.still_paused THEN NULL
                     WHEN x.shifted THEN x.d + x.n + coalesce(hd.extra, 0) ELSE x.d END AS due
      FROM numbered x LEFT JOIN held hd ON hd.id = x.id),
wnd AS (
    SELECT y.*, coalesce(y.wstart, lag(y.due) OVER (PARTITION BY y.episode_id, y.rule, y.job_id ORDER BY y.k) + 1, y.d) AS ws
      FROM dued y),
met AS (
    SELECT w.episode_id, w.rule, w.due, min(f.day) AS met_on
      FROM wnd w LEFT JOIN facts f ON f.episode_id = w.episode_id AND f.cls = w.cls AND f.day >= w.ws
     WHERE w.ends_on IS NULL OR w.ends_on >= w.due
     GROUP BY w.id, w.episode_id, w.rule, w.due),
episode_alerts AS (
    SELECT m.episode_id,
           (SELECT a.staff_id FROM ips.specialist_assignment a
             WHERE a.episode_id = m.episode_id AND a.from_on <= p.as_of
               AND (a.to_on IS NULL OR a.to_on >= p.as_of)
             ORDER BY a.from_on DESC, a.assignment_id DESC LIMIT 1) AS staff_id,
           m.rule, m.due
      FROM met m JOIN ru ON ru.code = m.rule, p
     WHERE m.met_on IS NULL AND m.due <= p.as_of + ru.h),
-- the specialists, with their first assignment and their days on the team
staff AS (
    SELECT s.staff_id, coalesce(s.started_on, '-infinity') AS started_on, coalesce(s.ended_on, 'infinity') AS ended_on,
           (SELECT min(a.from_on) FROM ips.specialist_assignment a, p WHERE a.staff_id = s.staff_id AND a.from_on <= p.as_of) AS first_from
      FROM ips.staff s, p
     WHERE s.role = 'specialist' AND (p.team_id IS NULL OR s.team_id = p.team_id)),
-- the FTE in force on a day (ips.staff_terms)
fte_on AS (
    SELECT t.staff_id, t.from_on, t.fte,
           coalesce(lead(t.from_on) OVER (PARTITION BY t.staff_id ORDER BY t.from_on), 'infinity') AS to_on
      FROM ips.staff_terms t WHERE t.staff_id IN (SELECT staff.staff_id FROM staff)),
weeks AS (
    SELECT w.sunday
      FROM p, maxh, LATERAL generate_series(p.as_of - (extract(isodow FROM p.as_of)::int % 7),
                                            p.as_of + maxh.h, interval '7 days') AS g(t),
           LATERAL (SELECT g.t::date AS sunday) w),
weekly AS (
    SELECT s.staff_id, ru.code AS rule, w.sunday AS due, ru.h, f.fte,
           CASE ru.code
               WHEN 'specialist_employer_contacts' THEN
                   ceil(ru.cnt * f.fte - 1e-9) <= 0
                   OR (SELECT count(*) FROM ips.employer_contact x
                        WHERE x.staff_id = s.staff_id AND x.in_person
                          AND (x.at AT TIME ZONE p.tz)::date BETWEEN w.sunday - 6 AND least(w.sunday, p.as_of)) >= ceil(ru.cnt * f.fte - 1e-9)
               ELSE (SELECT count(DISTINCT m.met_on) FROM ips.team_meeting m
                      WHERE m.staff_id = s.staff_id AND m.met_on BETWEEN w.sunday - 6 AND least(w.sunday, p.as_of)) >= greatest(ru.cnt, 1)
           END AS met
      FROM staff s CROSS JOIN weeks w JOIN ru ON ru.code IN ('specialist_employer_contacts', 'specialist_team_meeting')
      JOIN fte_on f ON f.staff_id = s.staff_id AND f.from_on <= w.sunday AND f.to_on > w.sunday, p
     WHERE s.first_from <= w.sunday - 6 AND s.started_on <= w.sunday - 6 AND s.ended_on > w.sunday),
active AS (
    SELECT (SELECT a.staff_id FROM ips.specialist_assignment a
             WHERE a.episode_id = ep.episode_id AND a.from_on <= p.as_of AND (a.to_on IS NULL OR a.to_on >= p.as_of)
             ORDER BY a.from_on DESC, a.assignment_id DESC LIMIT 1) AS staff_id
      FROM ep JOIN state_now n ON n.episode_id = ep.episode_id, p
     WHERE n.to_state NOT IN ('referred', 'closed')),
caseload AS (
    SELECT s.staff_id, f.fte, (SELECT count(*) FROM active x WHERE x.staff_id = s.staff_id) AS active
      FROM staff s JOIN fte_on f ON f.staff_id = s.staff_id, p
     WHERE s.first_from IS NOT NULL AND f.from_on <= p.as_of AND f.to_on > p.as_of
       AND s.started_on <= p.as_of AND s.ended_on > p.as_of),
alerts AS (
    SELECT x.episode_id, x.staff_id, x.rule, x.due FROM episode_alerts x
    UNION ALL
    SELECT NULL, w.staff_id, w.rule, w.due FROM weekly w, p WHERE NOT w.met AND w.due <= p.as_of + w.h
    UNION ALL
    SELECT NULL, c.staff_id, ru.code, p.as_of FROM caseload c JOIN ru ON ru.code = 'specialist_caseload', p
     WHERE c.active > ru.cnt * c.fte + 1e-9)
SELECT a.episode_id, a.staff_id, a.rule, a.due, (p.as_of - a.due)::int,
       CASE WHEN a.due <= p.as_of THEN 'overdue' ELSE 'due' END
  FROM alerts a, p
$fn$;
COMMENT ON FUNCTION ips_bench.contact_alerts_sql(date, bigint) IS
    'Reference: ips.contact_alerts(as_of, team_id) in plain SQL (same rows), for the benchmark and the equality test.';
