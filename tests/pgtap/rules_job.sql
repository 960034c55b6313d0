-- Contact rules around jobs: benefits_before_start, pre_start_contact,
-- post_start_contact, first_month_weekly, follow_along_monthly, job_loss_contact.
-- Expected figures worked out by hand from the defaults of ips.rule.
-- Every episode: referred Mon 2025-03-03, engaged 2025-03-10, job starts Mon 2025-04-07.
BEGIN;
SELECT plan(46);
\ir rules_helpers.psql

CREATE TEMP TABLE j AS SELECT g AS i, pg_temp.ep('2025-03-03', '2025-03-10') AS e, NULL::bigint AS job
  FROM generate_series(1, 14) g;
UPDATE j SET job = pg_temp.job(e, '2025-04-07');
CREATE FUNCTION pg_temp.e(i int) RETURNS bigint LANGUAGE sql AS $$ SELECT e FROM j WHERE j.i = $1 $$;

-- ===== benefits_before_start: days 0, so due on the start day 2025-04-07 (first job only).
SELECT is(pg_temp.al(pg_temp.e(1), 'benefits_before_start', '2025-04-07'), 'overdue:0', 'benefits: none by the start day');
SELECT is(pg_temp.al(pg_temp.e(1), 'benefits_before_start', '2025-04-08'), 'overdue:1', 'benefits: fires the day after the start');
SELECT is(pg_temp.al(pg_temp.e(1), 'benefits_before_start', '2025-04-06'), NULL, 'benefits: nothing before the job is known');
SELECT pg_temp.con(pg_temp.e(2), '2025-04-07', 'benefits_counseling', 'phone');
SELECT is(pg_temp.al(pg_temp.e(2), 'benefits_before_start', '2025-04-08'), NULL, 'benefits: counselling (by phone) on the start day');
SELECT pg_temp.con(pg_temp.e(1), '2025-04-10', 'benefits_counseling');
SELECT is(pg_temp.al(pg_temp.e(1), 'benefits_before_start', '2025-04-12'), NULL, 'benefits: met late clears the alert');
SELECT is(pg_temp.al(pg_temp.e(1), 'benefits_before_start', '2025-04-09'), 'overdue:2', 'benefits: as of before the late counselling');
SELECT pg_temp.job(pg_temp.e(2), '2025-06-02');
SELECT is(pg_temp.al(pg_temp.e(2), 'benefits_before_start', '2025-06-10'), NULL, 'benefits: only before the first job');

-- ===== pre_start_contact: face-to-face 2025-03-31 .. 2025-04-07, due 04-07.
SELECT is(pg_temp.al(pg_temp.e(3), 'pre_start_contact', '2025-04-08'), 'overdue:1', 'pre_start: fires the day after the start');
SELECT pg_temp.con(pg_temp.e(4), '2025-03-31');
SELECT is(pg_temp.al(pg_temp.e(4), 'pre_start_contact', '2025-04-08'), NULL, 'pre_start: meeting 7 days before counts');
SELECT pg_temp.con(pg_temp.e(5), '2025-03-30'), pg_temp.con(pg_temp.e(5), '2025-04-02', mode => 'phone');
SELECT is(pg_temp.al(pg_temp.e(5), 'pre_start_contact', '2025-04-08'), 'overdue:1', 'pre_start: 8 days before, or by phone, does not count');
SELECT pg_temp.con(pg_temp.e(6), '2025-04-07', at => '23:30');
SELECT is(pg_temp.al(pg_temp.e(6), 'pre_start_contact', '2025-04-08'), NULL, 'pre_start: meeting 23:30 on the start day');

-- ===== post_start_contact: face-to-face 04-07 .. 04-10, due 04-10, horizon 1.
SELECT is(pg_temp.al(pg_temp.e(3), 'post_start_contact', '2025-04-08'), NULL, 'post_start: silent 2 days ahead');
SELECT is(pg_temp.al(pg_temp.e(3), 'post_start_contact', '2025-04-09'), 'due:-1', 'post_start: due 1 day ahead');
SELECT is(pg_temp.al(pg_temp.e(3), 'post_start_contact', '2025-04-11'), 'overdue:1', 'post_start: fires the day after');
SELECT pg_temp.con(pg_temp.e(4), '2025-04-10');
SELECT is(pg_temp.al(pg_temp.e(4), 'post_start_contact', '2025-04-11'), NULL, 'post_start: meeting on the last day');
SELECT is(pg_temp.al(pg_temp.e(6), 'post_start_contact', '2025-04-11'), NULL, 'post_start: the start-day meeting counts for both');
SELECT pg_temp.con(pg_temp.e(3), '2025-04-09');
SELECT is(pg_temp.al(pg_temp.e(3), 'post_start_contact', '2025-04-11'), NULL, 'post_start: a meeting entered late but dated in time counts');

-- ===== first_month_weekly: blocks 04-07..04-13, 04-14..04-20, 04-21..04-27, 04-28..05-04; horizon 2.
-- e7: meetings 04-07 (block 1), 04-20 (block 2, its last day), none in block 3, 04-28 (block 4).
SELECT pg_temp.con(pg_temp.e(7), '2025-04-07'), pg_temp.con(pg_temp.e(7), '2025-04-20');
SELECT is(pg_temp.al(pg_temp.e(7), 'first_month_weekly', '2025-04-21'), NULL, 'first_month: blocks 1 and 2 met (block 2 on its last day)');
SELECT is(pg_temp.al(pg_temp.e(7), 'first_month_weekly', '2025-04-25'), 'due:-2', 'first_month: block 3 due in 2 days');
SELECT is(pg_temp.al(pg_temp.e(7), 'first_month_weekly', '2025-04-27'), 'overdue:0', 'first_month: block 3 unmet on its last day');
SELECT is(pg_temp.al(pg_temp.e(7), 'first_month_weekly', '2025-04-28'), 'overdue:1', 'first_month: block 3 fires the day after');
SELECT pg_temp.con(pg_temp.e(7), '2025-04-28');
SELECT is(pg_temp.al(pg_temp.e(7), 'first_month_weekly', '2025-04-28'), NULL, 'first_month: the next meeting meets block 3 late and block 4');
SELECT is(pg_temp.al(pg_temp.e(7), 'first_month_weekly', '2025-05-10'), NULL, 'first_month: nothing after the 4 blocks');
SELECT results_eq($$SELECT status FROM ips.expectations((SELECT team_id FROM ctx), '2025-04-01', '2025-05-31')
                    WHERE rule = 'first_month_weekly' AND episode_id = pg_temp.e(7) ORDER BY due_on$$,
                  ARRAY['met_on_time', 'met_on_time', 'met_late', 'met_on_time'], 'first_month: the four blocks of e7');
-- e8: on hold 04-15, back to employed 04-20: 5 paused days; block 2 due 04-25, block 3 due 05-02.
SELECT pg_temp.con(pg_temp.e(8), '2025-04-07');
SELECT pg_temp.tr(pg_temp.e(8), 'on_hold', '2025-04-15');
SELECT is((SELECT count(*) FROM ips.episode_alerts(pg_temp.e(8), '2025-04-18')), 0::bigint, 'first_month: no alerts while on hold');
SELECT pg_temp.tr(pg_temp.e(8), 'employed', '2025-04-20');
SELECT is(pg_temp.al(pg_temp.e(8), 'first_month_weekly', '2025-04-25'), 'overdue:0', 'first_month: block 2 due 5 paused days later');
SELECT is(pg_temp.al(pg_temp.e(8), 'first_month_weekly', '2025-04-30'), 'overdue:5,due:-2', 'first_month: block 3 moved to 05-02 too');
-- e9: closed
SELECT pg_temp.tr(pg_temp.e(9), 'closed', '2025-04-10', 'client_choice');
SELECT is(pg_temp.al(pg_temp.e(9), 'first_month_weekly', '2025-04-20'), NULL, 'first_month: silent once closed');

-- ===== follow_along_monthly: 30-day blocks from 04-07: 04-07..05-06, 05-07..06-05, ...; horizon 7.
SELECT pg_temp.con(pg_temp.e(10), '2025-04-07');
SELECT is(pg_temp.al(pg_temp.e(10), 'follow_along_monthly', '2025-05-28'), NULL, 'follow_along: silent 8 days ahead');
SELECT is(pg_temp.al(pg_temp.e(10), 'follow_along_monthly', '2025-05-29'), 'due:-7', 'follow_along: month 2 due in 7 days');
SELECT is(pg_temp.al(pg_temp.e(10), 'follow_along_monthly', '2025-06-06'), 'overdue:1', 'follow_along: month 2 fires the day after');
SELECT pg_temp.con(pg_temp.e(11), '2025-04-07'), pg_temp.con(pg_temp.e(11), '2025-06-05');
SELECT is(pg_temp.al(pg_temp.e(11), 'follow_along_monthly', '2025-06-06'), NULL, 'follow_along: meeting on the last day of month 2');
SELECT is(pg_temp.al(pg_temp.e(11), 'follow_along_monthly', '2025-07-06'), 'overdue:1', 'follow_along: month 3 (06-06..07-05) unmet');
SELECT is((SELECT count(*)::int FROM ips.expectations((SELECT team_id FROM ctx), '2025-04-01', '2026-12-31')
           WHERE rule = 'follow_along_monthly' AND episode_id = pg_temp.e(11)), 12, 'follow_along: 12 monthly blocks of a job that goes on');
SELECT is((SELECT max(due_on) FROM ips.expectations((SELECT team_id FROM ctx), '2025-04-01', '2026-12-31')
           WHERE rule = 'follow_along_monthly' AND episode_id = pg_temp.e(11)), '2026-04-01'::date,
          'follow_along: the 12th block ends 359 days after the start');
SELECT pg_temp.tr(pg_temp.e(10), 'on_hold', '2025-05-10');
SELECT is(pg_temp.al(pg_temp.e(10), 'follow_along_monthly', '2025-06-06'), NULL, 'follow_along: paused while on hold');
SELECT pg_temp.tr(pg_temp.e(11), 'closed', '2025-06-20', 'stable_employment');
SELECT is(pg_temp.al(pg_temp.e(11), 'follow_along_monthly', '2025-07-06'), NULL, 'follow_along: silent once closed');

-- ===== job_loss_contact: the job of e12/e13/e14 ends 2025-05-20: contact 05-20 .. 05-23, due 05-23; horizon 1.
SELECT ips.end_job(job, '2025-05-20') FROM j WHERE i IN (12, 13, 14);
SELECT is(pg_temp.al(pg_temp.e(12), 'job_loss_contact', '2025-05-21'), NULL, 'job_loss: silent 2 days ahead');
SELECT is(pg_temp.al(pg_temp.e(12), 'job_loss_contact', '2025-05-22'), 'due:-1', 'job_loss: due in 1 day');
SELECT is(pg_temp.al(pg_temp.e(12), 'job_loss_contact', '2025-05-24'), 'overdue:1', 'job_loss: fires the day after');
SELECT is(pg_temp.al(pg_temp.e(12), 'job_loss_contact', '2025-05-19'), NULL, 'job_loss: as of before the end, no job loss');
-- e12 never met: month 1 (due 05-06) stays overdue (35 days on 06-10); month 2 (due 06-05) does not exist
SELECT is(pg_temp.al(pg_temp.e(12), 'follow_along_monthly', '2025-06-10'), 'overdue:35', 'follow_along: month 1 overdue, no month 2 when the job ended in it');
SELECT pg_temp.con(pg_temp.e(13), '2025-05-23', mode => 'phone');
SELECT is(pg_temp.al(pg_temp.e(13), 'job_loss_contact', '2025-05-24'), NULL, 'job_loss: a phone call on the last day');
SELECT pg_temp.con(pg_temp.e(14), '2025-05-21', mode => 'message');
SELECT is(pg_temp.al(pg_temp.e(14), 'job_loss_contact', '2025-05-24'), 'overdue:1', 'job_loss: a message does not count');
SELECT pg_temp.tr(pg_temp.e(14), 'on_hold', '2025-05-22');
SELECT is(pg_temp.al(pg_temp.e(14), 'job_loss_contact', '2025-05-24'), NULL, 'job_loss: paused while on hold');
SELECT pg_temp.tr(pg_temp.e(14), 'closed', '2025-05-25', 'client_choice');
SELECT is(pg_temp.al(pg_temp.e(14), 'job_loss_contact', '2025-05-26'), NULL, 'job_loss: silent once closed');

SELECT * FROM finish();
ROLLBACK;
