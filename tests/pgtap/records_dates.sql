-- Issue 16 item 5: dates that make sense.  A closure is not dated before the episode's own
-- facts; start_job on a paused episode resumes it; a job agreed for later is entered when it
-- starts, or as a plan that changes no state.
BEGIN;
SELECT plan(17);
SET LOCAL timezone = 'Europe/Helsinki';
\ir fidelity_helpers.psql
CREATE FUNCTION pg_temp.states(e bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(coalesce(h.from_state, '-') || '>' || h.to_state || '@' || ips.local_date(h.at), ' ' ORDER BY h.at, h.history_id)
      FROM ips.episode_state_history h WHERE h.episode_id = e
$$;

SELECT ips.add_team('Dates', 'Pohjanmaa') AS t \gset
SELECT ips.add_staff(:t, 'A', 'specialist') AS a \gset
SELECT ips.add_employer('Satama Oy') AS emp \gset

-- A closure before the episode's facts.  Engaged 2025-03-03; a client contact on 03-10 at 15:00.
SELECT pg_temp.engaged(:t, :a, 'close-1', '2025-03-03') AS e1 \gset
SELECT ips.record_contact(:e1, :a, '2025-03-10 15:00+02', 'client');
SELECT throws_ok(format($$SELECT ips.transition(%s, 'closed', '2025-03-09 12:00+02', 'client_choice')$$, :e1), '22023',
                 format('episode %s cannot be closed on 2025-03-09: it has facts dated up to 2025-03-10', :e1),
                 'a closure the day before the last contact is refused (1.1 accepted it)');
SELECT is((SELECT state FROM ips.episode WHERE episode_id = :e1), 'engaged', 'and nothing changed');
SELECT throws_ok(format($$UPDATE ips.episode SET state = 'closed', state_since = '2025-03-09 12:00+02', state_reason = 'moved' WHERE episode_id = %s$$, :e1),
                 '22023', NULL, 'a direct UPDATE is refused alike');
SELECT lives_ok(format($$SELECT ips.transition(%s, 'closed', '2025-03-10 09:00+02', 'client_choice')$$, :e1),
                'a closure on the day of the last contact (earlier that day) is accepted: facts are dated by day');
-- a second job (no change of state) that started after the closure day
SELECT pg_temp.engaged(:t, :a, 'close-2', '2025-03-03') AS e2 \gset
SELECT ips.start_job(:e2, :emp, '2025-03-05');
SELECT ips.start_job(:e2, :emp, '2025-03-15');
SELECT throws_ok(format($$SELECT ips.transition(%s, 'closed', '2025-03-14 12:00+02', 'client_choice')$$, :e2), '22023', NULL,
                 'a closure the day before the start of the episode''s second job is refused');
SELECT lives_ok(format($$SELECT ips.transition(%s, 'closed', '2025-03-15 12:00+02', 'client_choice')$$, :e2),
                'a closure on the day the second job started is accepted');
-- an assignment dated after the closure counts too
SELECT pg_temp.engaged(:t, :a, 'close-3', '2025-03-03') AS e3 \gset
SELECT ips.add_staff(:t, 'B', 'specialist') AS b \gset
SELECT ips.assign_specialist(:e3, :b, '2025-03-12');
SELECT throws_ok(format($$SELECT ips.transition(%s, 'closed', '2025-03-11 12:00+02', 'moved')$$, :e3), '22023', NULL,
                 'a closure before the last handover is refused');

-- start_job on a paused episode resumes it.  Engaged 03-03, job_search 03-05, on hold 03-10,
-- a job from 03-20: history on_hold > job_search and job_search > employed, both on 03-20.
SELECT pg_temp.engaged(:t, :a, 'pause-1', '2025-03-03') AS e4 \gset
SELECT ips.transition(:e4, 'job_search', '2025-03-05 12:00+02');
SELECT ips.transition(:e4, 'on_hold', '2025-03-10 12:00+02', 'hospital stay');
SELECT lives_ok(format($$SELECT ips.start_job(%s, %s, '2025-03-20')$$, :e4, :emp), 'start_job on an on_hold episode (1.1: 55000)');
SELECT is((SELECT state FROM ips.episode WHERE episode_id = :e4), 'employed', 'the paused episode is employed');
SELECT is(pg_temp.states(:e4),
          '->referred@2025-02-24 referred>engaged@2025-03-03 engaged>job_search@2025-03-05 job_search>on_hold@2025-03-10 on_hold>job_search@2025-03-20 job_search>employed@2025-03-20',
          'the history shows the pause ending on the job''s first day');
-- a pause of a referred client: no job before engagement
SELECT ips.refer(ips.add_client('pause-2'), :t, '2025-03-03') AS e5 \gset
SELECT ips.assign_specialist(:e5, :a, '2025-03-03');
SELECT ips.transition(:e5, 'on_hold', '2025-03-04 12:00+02');
SELECT throws_ok(format($$SELECT ips.start_job(%s, %s, '2025-03-20')$$, :e5, :emp), '55000', NULL,
                 'start_job on a paused referral is refused: engage the client first');

-- A job agreed for next week.  start_job five days ahead is refused (1.1 moved the episode
-- to employed today); ips.plan_job records it without a state change.
SELECT pg_temp.engaged(:t, :a, 'plan-1', '2025-03-03') AS e6 \gset
SELECT throws_ok(format($$SELECT ips.start_job(%s, %s, ips.local_date(now()) + 5)$$, :e6, :emp), '22023', NULL,
                 'start_job five days ahead is refused');
SELECT is((SELECT state FROM ips.episode WHERE episode_id = :e6), 'engaged', 'the episode stays engaged');
SELECT ips.plan_job(:e6, :emp, ips.local_date(now()) + 7, occupation => '5223') AS p6 \gset
SELECT is((SELECT state || ' ' || (SELECT count(*) FROM ips.job WHERE episode_id = :e6) FROM ips.episode WHERE episode_id = :e6),
          'engaged 0', 'a plan changes no state and is no job');
SELECT throws_ok(format($$SELECT ips.start_planned_job(%s)$$, :p6), '22023', NULL, 'the plan cannot start before its day');
SELECT ips.start_planned_job(:p6, ips.local_date(now())) AS j6 \gset
SELECT is((SELECT state FROM ips.episode WHERE episode_id = :e6) || ' ' || (SELECT starts_on = ips.local_date(now()) AND occupation = '5223' FROM ips.job WHERE job_id = :j6),
          'employed true', 'starting the plan today records the job (with the plan''s details) and moves to employed');
SELECT throws_ok(format($$SELECT ips.start_planned_job(%s)$$, :p6), '55000', NULL, 'a plan starts once');

SELECT * FROM finish();
ROLLBACK;
