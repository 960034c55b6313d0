-- Issue 16 item 2: employment held at entry.  A job that began before the referral is held at
-- entry: not a job start, not a first job, not counted in days to first job; the client is
-- outside the out-of-work-at-entry rate; job-retention support starts at entry.
--
-- Team "Entry", Q1 2025.  X: referred 01-06, has worked since 2024-09-01, met on 01-13 and enters
-- the service in work.  Y: referred 01-06, engaged 01-13, first job 02-06 (24 days).
--   job starts 1, first jobs 1, median days to first job 24
--   (1.1 refused X's job; recorded from the entry day instead: 2 / 2 / 12)
--   out of work at entry: Y only -> served_oow 1, working_oow 1; served 2, working 2
BEGIN;
SELECT plan(18);
SET LOCAL timezone = 'Europe/Helsinki';

SELECT ips.add_team('Entry', 'Pohjanmaa') AS t \gset
SELECT ips.add_staff(:t, 'A', 'specialist') AS a \gset
SELECT ips.add_employer('Satama Oy') AS emp \gset
SELECT ips.add_client('entry-x') AS cx \gset
SELECT ips.add_client('entry-y') AS cy \gset
SELECT ips.start_care_relationship(c, 'psykiatria', '2024-06-01') FROM unnest(ARRAY[:cx, :cy]::bigint[]) c;
SELECT ips.refer(:cx, :t, '2025-01-06') AS x \gset
SELECT ips.refer(:cy, :t, '2025-01-06') AS y \gset
SELECT ips.assign_specialist(e, :a, '2025-01-06') FROM unnest(ARRAY[:x, :y]::bigint[]) e;
SELECT ips.set_out_of_work_at_entry(e, true) FROM unnest(ARRAY[:x, :y]::bigint[]) e;

SELECT throws_ok(format($$SELECT ips.transition(%s, 'employed', '2025-01-13 12:00+02')$$, :x), '55000', NULL,
                 'referred -> employed needs a job held at entry');
SELECT lives_ok(format($$SELECT ips.start_job(%s, %s, '2024-09-01', occupation => '5223')$$, :x, :emp),
                'a job that began before the referral is accepted (1.1: 22023)');
SELECT is((SELECT held_at_entry FROM ips.job WHERE episode_id = :x), true, 'it is held at entry');
SELECT is((SELECT state || ' ' || out_of_work_at_entry FROM ips.episode WHERE episode_id = :x), 'referred false',
          'the referral stays referred until the client is met; the client was not out of work at entry');
SELECT lives_ok(format($$SELECT ips.transition(%s, 'employed', '2025-01-13 12:00+02')$$, :x),
                'met on 01-13: the client enters the service in work');
SELECT is((SELECT state || ' ' || entry_on FROM ips.episode WHERE episode_id = :x), 'employed 2025-01-13', 'employed from entry');

SELECT ips.transition(:y, 'engaged', '2025-01-13 12:00+02');
SELECT ips.start_job(:y, :emp, '2025-02-06');

SELECT is((SELECT job_starts || ' ' || first_jobs || ' ' || median_days_to_first_job FROM ips.outcomes_quarterly_counts
            WHERE team_id = :t AND quarter = '2025Q1'), '1 1 24', 'Q1: 1 job start, 1 first job, median 24 days');
SELECT is((SELECT served || ' ' || working || ' ' || served_oow || ' ' || working_oow FROM ips.outcomes_quarterly_counts
            WHERE team_id = :t AND quarter = '2025Q1'), '2 2 1 1', 'Q1: both served and working; only Y counts as out of work at entry');
SELECT is((SELECT (evidence ->> 'job_starts') FROM ips.fidelity(:t, '2025-01-01', '2025-03-31') WHERE item = 'V1'), '1',
          'V1 counts only the job started in the service');

-- rules: no job-start rules for the job held at entry; monthly follow-along from entry (01-13 + 29 = 02-11)
SELECT ips.record_contact(:x, :a, '2025-02-01 10:00+02', 'client');
SELECT is((SELECT string_agg(rule || ' ' || due_on || ' ' || status, ', ' ORDER BY due_on, rule)
             FROM ips.expectations(:t, '2025-01-01', '2025-03-20') WHERE episode_id = :x AND job_id IS NOT NULL),
          'follow_along_monthly 2025-02-11 met_on_time, follow_along_monthly 2025-03-13 missed',
          'job-retention support: monthly from entry, no pre-start, post-start, first-month or benefits expectations');
SELECT is((SELECT count(*)::int FROM ips.expectations(:t, '2025-01-01', '2025-03-20')
            WHERE episode_id = :y AND rule IN ('pre_start_contact', 'post_start_contact', 'benefits_before_start')), 3,
          'the job started in the service keeps its start rules');

-- the other path: a job held at entry learned after engagement moves the episode to employed
SELECT ips.add_client('entry-w') AS cw \gset
SELECT ips.start_care_relationship(:cw, 'psykiatria', '2024-06-01');
SELECT ips.refer(:cw, :t, '2025-02-03') AS w \gset
SELECT ips.assign_specialist(:w, :a, '2025-02-03');
SELECT ips.transition(:w, 'engaged', '2025-02-10 12:00+02');
SELECT ips.set_out_of_work_at_entry(:w, true);   -- as first recorded
SELECT ips.start_job(:w, :emp, '2025-02-02') AS wj \gset
SELECT is((SELECT e.state || ' ' || e.out_of_work_at_entry || ' ' || j.held_at_entry FROM ips.episode e JOIN ips.job j ON j.episode_id = e.episode_id
            WHERE e.episode_id = :w), 'employed false true', 'a job from the day before the referral: held at entry, employed');
SELECT ips.start_job(:w, :emp, '2025-02-03') AS wj2 \gset
SELECT is((SELECT held_at_entry FROM ips.job WHERE job_id = :wj2), false, 'a job from the referral day is a job start');
-- direct writes: the flag is kept by the table
SELECT throws_ok(format($$INSERT INTO ips.study (episode_id, starts_on) VALUES (%s, '2025-02-02')$$, :w), '22023', NULL,
                 'other facts before the referral are still refused');
INSERT INTO ips.job (episode_id, employer_id, starts_on, held_at_entry) VALUES (:w, :emp, '2025-02-20', true);
SELECT is((SELECT held_at_entry FROM ips.job WHERE episode_id = :w AND starts_on = '2025-02-20'), false,
          'a job dated after the referral is not held at entry whatever the INSERT says');
INSERT INTO ips.job (episode_id, employer_id, starts_on) VALUES (:w, :emp, '2024-01-01');
SELECT is((SELECT held_at_entry FROM ips.job WHERE episode_id = :w AND starts_on = '2024-01-01'), true,
          'a direct INSERT of a job from before the referral is held at entry');
-- outcomes of Q1 with W: W's job from the referral day (02-03) is a start and W's first job (entry 02-10: -7 days)
SELECT is((SELECT job_starts || ' ' || first_jobs FROM ips.outcomes_quarterly_counts WHERE team_id = :t AND quarter = '2025Q1'),
          '3 2', 'Q1 with W: 3 job starts (Y, W twice after the referral), 2 first jobs');
SELECT is((SELECT served_oow FROM ips.outcomes_quarterly_counts WHERE team_id = :t AND quarter = '2025Q1'), 1::bigint,
          'W is not out of work at entry');

SELECT * FROM finish();
ROLLBACK;
