-- Analysts read team fidelity at the team level (issue 13): ips.fidelity, ips.fidelity_summary
-- and ips.fidelity_all answer them with the team's figures and no episode, client, job or
-- staff id, name or host key in the evidence (1.1: "permission denied for table
-- fidelity_review").  A team the caller may not see answers P0002 (1.1 invented scores from
-- the zero rows row-level security left, S1 = 5); a NULL team 22004.
BEGIN;
SELECT plan(17);

\ir security_setup.psql
SELECT ips.open_review(:ta, '2024-01-01', '2024-06-30', '2024-08-20') AS rv \gset
SELECT ips.rate(:rv, 'O2', 4, 'meets weekly with client H-1''s care team');

-- what a caller gets, as text: SQLSTATE or the rows
CREATE FUNCTION pg_temp.rows_of(q text) RETURNS text LANGUAGE sql AS $$ SELECT q $$;

-- 1. an analyst reads team A's fidelity
SELECT is(pg_temp.try_as(:'an', format($$SELECT count(*) FROM ips.fidelity(%s, '2024-01-01', '2024-06-30')$$, :ta)),
          'ok:25', 'an analyst gets the 25 items of a team');
SELECT is(pg_temp.try_as(:'an', format($$SELECT count(*) FROM ips.fidelity(%s, '2024-01-01', '2024-06-30') f
                                          WHERE f.evidence::text ~ '"(episode_id|client_id|job_id|staff_id|review_id|host_ref|host_key|name|rated_by|note)"'$$, :ta)),
          'ok:0', 'no id, name, host key, rater or note anywhere in the evidence');
SELECT is(pg_temp.try_as(:'an', format($$SELECT count(*) FROM ips.fidelity(%s, '2024-01-01', '2024-06-30') f
                                          WHERE f.evidence::text ~ 'H-1|Anna|Bertil'$$, :ta)),
          'ok:0', 'neither the host key H-1 nor a specialist''s name');
SELECT is(pg_temp.try_as(:'an', format($$SELECT count(*) FROM ips.fidelity(%s, '2024-01-01', '2024-06-30') f
                                          WHERE jsonb_path_exists(f.evidence, 'strict $.** ? (@.type() == "array")')$$, :ta)),
          'ok:0', 'no list of episodes, jobs or specialists');
-- the figures are the owner's: one client active 2024-01-15 .. 2024-06-30 = 168 of 182 days, 1.0 FTE
SELECT is(pg_temp.try_as(:'an', format($$SELECT string_agg(f.item || ' ' || coalesce(f.score::text, '-') || ' ' || f.source || ' ' || coalesce(f.measure::text, '-'), '; ' ORDER BY f.item)
                                           FROM ips.fidelity(%s, '2024-01-01', '2024-06-30') f WHERE f.item IN ('S1', 'O2', 'V10')$$, :ta)),
          'ok:O2 4 rated 0.00; S1 5 computed 0.92; V10 5 computed 100.00',
          'S1 0.92 clients per FTE (168 / 182 days), O2 rated 4 (0 % of weeks with a meeting recorded), V10 100 % competitive: as the owner computes them');
SELECT is(pg_temp.try_as(:'an', format($$SELECT (f.evidence ->> 'client_days') || ' ' || (f.evidence ->> 'days') || ' ' || (f.evidence ->> 'specialist_fte')
                                           FROM ips.fidelity(%s, '2024-01-01', '2024-06-30') f WHERE f.item = 'S1'$$, :ta)),
          'ok:168 182 1.0', 'S1 evidence keeps the team''s client-days, days and FTE');
SELECT is(pg_temp.try_as(:'an', format($$SELECT total || ' ' || items_scored FROM ips.fidelity_summary(%s, '2024-01-01', '2024-06-30')$$, :ta)),
          (SELECT 'ok:' || total || ' ' || items_scored FROM ips.fidelity_summary(:ta, '2024-01-01', '2024-06-30')),
          'an analyst''s fidelity_summary is the owner''s');
SELECT is(pg_temp.try_as(:'an', $$SELECT count(*) FROM ips.fidelity_all('2024-01-01', '2024-06-30')$$),
          'ok:' || 25 * (SELECT count(*) FROM ips.team), 'an analyst''s fidelity_all: every team');
SELECT is(pg_temp.try_as(:'an', $$SELECT count(*) FROM ips.fidelity(999999999, '2024-01-01', '2024-06-30')$$),
          'P0002', 'an unknown team: P0002');
SELECT is(pg_temp.try_as(:'an', $$SELECT count(*) FROM ips.fidelity(NULL, '2024-01-01', '2024-06-30')$$),
          '22004', 'a NULL team: 22004');
-- an admin has no person-level rights either: the same team-level answer
SELECT is(pg_temp.try_as(:'adm', format($$SELECT count(*) FROM ips.fidelity(%s, '2024-01-01', '2024-06-30') f
                                           WHERE f.evidence::text !~ '"episode_id"'$$, :ta)),
          'ok:25', 'an admin reads team-level fidelity too');

-- 2. a team the caller may not see
SELECT is(pg_temp.try_as(:'spec', format($$SELECT count(*) FROM ips.fidelity(%s, '2024-01-01', '2024-06-30')$$, :tb)),
          'P0002', 'a specialist of team A asking for team B: P0002 (1.1: S1 = 5 from zero rows)');
SELECT is(pg_temp.try_as(:'spec', format($$SELECT total FROM ips.fidelity_summary(%s, '2024-01-01', '2024-06-30')$$, :tb)),
          'P0002', 'and fidelity_summary of team B: P0002');
SELECT is(pg_temp.try_as(:'spec', $$SELECT string_agg(DISTINCT team_id::text, ',') FROM ips.fidelity_all('2024-01-01', '2024-06-30')$$),
          'ok:' || :ta, 'fidelity_all of a specialist: the own team only');
SELECT is(pg_temp.try_as(:'clin', format($$SELECT count(*) FROM ips.fidelity(%s, '2024-01-01', '2024-06-30')$$, :ta)),
          'P0002', 'a clinician sees no team''s fidelity');
SELECT is(pg_temp.try_as(:'spec', format($$SELECT count(*) FROM ips.fidelity(%s, '2024-01-01', '2024-06-30') f
                                            WHERE f.evidence::text ~ '"episode_id"'$$, :ta)),
          'ok:7', 'the team''s own specialist still gets the person-level evidence (lists of S1, V1, V4, V8, V9, V10, V12)');
SELECT throws_ok($$SELECT * FROM ips.fidelity(NULL, '2024-01-01', '2024-06-30')$$, '22004', 'team_id must not be NULL',
                 'ips.fidelity(NULL, ...): 22004 (1.1: 25 "missing" rows)');

SELECT * FROM finish();
ROLLBACK;
