-- Issue 16 item 3: work trials that grow.  Seed 001's client: an unpaid work trial paid by
-- rehabilitation allowance from an earnings-related pension insurer, 15 h a week from Mon
-- 2025-03-03, 30 h from 04-01; a paid work trial (TE office) from 05-05; an ordinary job at the
-- same employer from 06-02.  One history: the episode stays employed, no job is lost.
BEGIN;
SELECT plan(19);
SET LOCAL timezone = 'Europe/Helsinki';
\ir fidelity_helpers.psql

SELECT ips.add_team('Trials', 'Pohjanmaa') AS t \gset
SELECT ips.add_staff(:t, 'A', 'specialist') AS a \gset
SELECT ips.add_employer('Varaosa Oy') AS emp \gset
SELECT pg_temp.engaged(:t, :a, 'trial-1', '2025-02-03') AS e \gset
SELECT ips.start_job(:e, :emp, '2025-03-03', 'work_trial', '9329', 15) AS trial \gset
SELECT ips.set_job_payer(:trial, 'pension_insurer');
SELECT throws_ok(format($$SELECT ips.set_job_payer(%s, 'employer_itself')$$, :trial), '22023', NULL, 'an unknown payer is refused');

-- hours: 15 until 03-31, 30 from 04-01 (1.1 had one hours_per_week and no way to change it)
SELECT lives_ok(format($$SELECT ips.change_job_hours(%s, '2025-04-01', 30)$$, :trial), 'change_job_hours');
SELECT is(ips.job_hours_on(:trial, '2025-03-31'), 15::numeric, 'hours on 03-31: 15');
SELECT is(ips.job_hours_on(:trial, '2025-04-01'), 30::numeric, 'hours from 04-01: 30');
SELECT throws_ok(format($$SELECT ips.change_job_hours(%s, '2025-03-03', 20)$$, :trial), '22023', NULL,
                 'the first day''s hours are the job''s own: a change from the start is refused');
SELECT throws_ok(format($$SELECT ips.change_job_hours(%s, '2025-04-10', 0)$$, :trial), '22003', NULL, '0 hours is out of range');
SELECT throws_ok($$SELECT ips.change_job_hours(-1, '2025-04-10', 20)$$, 'P0002', NULL, 'an unknown job: P0002');

-- continuations
SELECT ips.continue_job(:trial, '2025-05-05', 'paid_work_trial', payer => 'employment_services') AS paid \gset
SELECT ips.continue_job(:paid, '2025-06-02', 'competitive') AS ordinary \gset
SELECT is((SELECT string_agg(kind || ' ' || starts_on || '..' || coalesce(ends_on::text, '') || ' ' || coalesce(payer, '-'), ', ' ORDER BY starts_on)
             FROM ips.job WHERE episode_id = :e),
          'work_trial 2025-03-03..2025-05-04 pension_insurer, paid_work_trial 2025-05-05..2025-06-01 employment_services, competitive 2025-06-02.. -',
          'the chain of the trial, the paid trial and the ordinary job');
SELECT is((SELECT continues_job_id FROM ips.job WHERE job_id = :ordinary), :paid::bigint, 'the ordinary job continues the paid trial');
SELECT is((SELECT continues_job_id FROM ips.job WHERE job_id = :paid), :trial::bigint, 'the paid trial continues the trial');
SELECT is((SELECT hours_per_week FROM ips.job WHERE job_id = :paid), 30::numeric, 'the paid trial goes on with the hours in force (30)');
SELECT is((SELECT end_reason FROM ips.job WHERE job_id = :trial), 'continued as paid_work_trial', 'the trial ended as continued');
SELECT is((SELECT state FROM ips.episode WHERE episode_id = :e), 'employed', 'the episode is employed');
SELECT is((SELECT count(*)::int FROM ips.episode_state_history WHERE episode_id = :e AND to_state = 'job_search'), 0,
          'no move to job_search on the way');

-- rules: the continued jobs end without a job loss; the continuations have no job-start rules
SELECT is((SELECT count(*)::int FROM ips.expectations(:t, '2025-03-01', '2025-07-31') WHERE episode_id = :e AND rule = 'job_loss_contact'), 0,
          'no job_loss_contact for a trial that went on as a job');
SELECT is((SELECT string_agg(DISTINCT rule, ' ' ORDER BY rule) FROM ips.expectations(:t, '2025-03-01', '2025-07-31') WHERE job_id IN (:paid, :ordinary)),
          'follow_along_monthly', 'the continuations carry the monthly follow-along only');
SELECT is((SELECT count(*)::int FROM ips.expectations(:t, '2025-03-01', '2025-07-31') WHERE job_id = :trial AND rule = 'first_month_weekly'), 4,
          'the trial''s first month is weekly as any job start');

-- outcomes by kind and hours (hours in force at the quarter's end or the job's end)
SELECT is((SELECT string_agg(kind || ' ' || hours_band || ' ' || jobs_held || '/' || job_starts, ', ' ORDER BY kind)
             FROM ips.outcomes_jobs_quarterly_counts WHERE team_id = :t AND quarter = '2025Q1'),
          'work_trial 10-19 1/1', 'Q1: one work trial of 15 h, started');
SELECT is((SELECT string_agg(kind || ' ' || hours_band || ' ' || jobs_held || '/' || job_starts, ', ' ORDER BY kind)
             FROM ips.outcomes_jobs_quarterly_counts WHERE team_id = :t AND quarter = '2025Q2'),
          'competitive 30+ 1/1, paid_work_trial 30+ 1/1, work_trial 30+ 1/0', 'Q2: the trial at 30 h, the paid trial and the ordinary job');

SELECT * FROM finish();
ROLLBACK;
