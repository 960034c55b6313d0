-- rule_compliance and expectations for a hand-built April 2025 of a small team:
-- one specialist (first assignment 2025-02-03) and seven clients.  The figures
-- below are worked out by hand from the defaults of ips.rule.
BEGIN;
SELECT plan(6);
\ir rules_helpers.psql
SELECT ips.add_employer('Kahvila Oy') AS emp \gset

-- E1: referred 03-24, met and engaged 03-27, met 04-10, career profile 04-20, first employer visit 04-28.
--   career_profile due 04-26 (03-27 + 30): met on time.  rapid_job_search due 04-26: met late (04-28).
--   no_contact: gap from the referral 03-24 due 04-23, met 03-27; gap from 03-27 due 04-26, met 04-10; both on time.
SELECT pg_temp.ep('2025-03-24') AS e1 \gset
SELECT pg_temp.con(:e1, '2025-03-27'), pg_temp.tr(:e1, 'engaged', '2025-03-27'), pg_temp.con(:e1, '2025-04-10');
SELECT ips.complete_career_profile(:e1, '2025-04-20');
SELECT pg_temp.emp(:e1, '2025-04-28');
-- E2: referred 04-01, never met: referral_response due 04-08, missed.
SELECT pg_temp.ep('2025-04-01') AS e2 \gset
-- E3: referred 04-14, first met 04-22: referral_response due 04-21, met late.
SELECT pg_temp.ep('2025-04-14') AS e3 \gset
SELECT pg_temp.con(:e3, '2025-04-22');
-- E4: referred 02-03, engaged 02-04; benefits counselling by phone 04-01; face-to-face 04-03, 04-09, 04-16, 04-29;
--   job from Mon 04-07.  benefits (due 04-07), pre_start (03-31..04-07: 04-03), post_start (04-07..04-10: 04-09): on time.
--   first_month blocks due 04-13 (04-09), 04-20 (04-16): on time; due 04-27 (04-21..04-27: none, 04-29): late;
--   the 4th block is due 05-04, after April.
SELECT pg_temp.ep('2025-02-03') AS e4 \gset
SELECT pg_temp.con(:e4, '2025-02-04'), pg_temp.tr(:e4, 'engaged', '2025-02-04');
SELECT ips.complete_career_profile(:e4, '2025-02-20');
SELECT pg_temp.emp(:e4, '2025-02-25');
SELECT pg_temp.con(:e4, '2025-04-01', 'benefits_counseling', 'phone'), pg_temp.con(:e4, '2025-04-03');
SELECT pg_temp.job(:e4, '2025-04-07');
SELECT pg_temp.con(:e4, '2025-04-09'), pg_temp.con(:e4, '2025-04-16'), pg_temp.con(:e4, '2025-04-29');
-- E5: referred 03-10, met and engaged 03-11, on hold from 04-01 to the end of April: every clock stopped,
--   nothing falls due in April (career_profile would have been due 04-10).
SELECT pg_temp.ep('2025-03-10') AS e5 \gset
SELECT pg_temp.con(:e5, '2025-03-11'), pg_temp.tr(:e5, 'engaged', '2025-03-11'), pg_temp.tr(:e5, 'on_hold', '2025-04-01');
-- E6: referred 03-03, met and engaged 03-04, closed 04-02: the no_contact gap from the referral is due 04-02
--   (the closing day) and was met 03-04; career_profile (due 04-03) and the gap from 03-04 (due 04-03) fall after the closure.
SELECT pg_temp.ep('2025-03-03') AS e6 \gset
SELECT pg_temp.con(:e6, '2025-03-04'), pg_temp.tr(:e6, 'engaged', '2025-03-04'), pg_temp.tr(:e6, 'closed', '2025-04-02', 'client_choice');
-- E7: referred 04-23, not met: referral_response due 04-30, the last day of the period: open.
SELECT pg_temp.ep('2025-04-23') AS e7 \gset
-- The specialist: ISO weeks ending Sundays 04-06, 04-13, 04-20, 04-27.
--   In-person employer contacts: 6 in the week of 04-07 (04-07..04-12), none in the other three.
--   Team meetings 04-02, 04-09, 04-23: the week ending 04-20 is missed.  Caseload (at most 20) kept every Sunday.
SELECT ips.record_employer_contact((SELECT staff_id FROM ctx), :emp, d + time '09:00')
  FROM generate_series(date '2025-04-07', '2025-04-12', '1 day') d;
SELECT ips.record_team_meeting((SELECT staff_id FROM ctx), d) FROM unnest('{2025-04-02,2025-04-09,2025-04-23}'::date[]) d;

SELECT results_eq(
    $$SELECT rule, due, met_on_time, met_late, missed FROM ips.rule_compliance((SELECT team_id FROM ctx), '2025-04-01', '2025-04-30')$$,
    $$VALUES ('referral_response', 3, 0, 1, 1),          -- E2 missed, E3 late, E7 open
             ('career_profile', 1, 1, 0, 0),             -- E1
             ('rapid_job_search', 1, 0, 1, 0),           -- E1
             ('benefits_before_start', 1, 1, 0, 0),      -- E4
             ('pre_start_contact', 1, 1, 0, 0),          -- E4
             ('post_start_contact', 1, 1, 0, 0),         -- E4
             ('first_month_weekly', 3, 2, 1, 0),         -- E4
             ('follow_along_monthly', 0, 0, 0, 0),       -- E4's first month ends 05-06
             ('job_loss_contact', 0, 0, 0, 0),
             ('no_contact', 3, 3, 0, 0),                 -- E1 twice, E6
             ('care_relationship', 0, 0, 0, 0),
             ('consent_for_care', 0, 0, 0, 0),
             ('specialist_employer_contacts', 4, 1, 0, 3),
             ('specialist_team_meeting', 4, 3, 0, 1),
             ('specialist_caseload', 4, 4, 0, 0)$$,
    'rule_compliance of April 2025, computed by hand');

SELECT results_eq(
    $$SELECT episode_id, due_on, met_on, status FROM ips.expectations((SELECT team_id FROM ctx), '2025-04-01', '2025-04-30')
       WHERE rule = 'referral_response' ORDER BY due_on$$,
    format($$VALUES (%s::bigint, '2025-04-08'::date, NULL::date, 'missed'), (%s, '2025-04-21', '2025-04-22', 'met_late'),
                    (%s, '2025-04-30', NULL, 'open')$$, :e2, :e3, :e7),
    'expectations of referral_response: days and status');
SELECT results_eq(
    $$SELECT job_id IS NOT NULL, due_on, met_on, status FROM ips.expectations((SELECT team_id FROM ctx), '2025-04-01', '2025-04-30')
       WHERE rule = 'first_month_weekly' ORDER BY due_on$$,
    $$VALUES (true, '2025-04-13'::date, '2025-04-09'::date, 'met_on_time'), (true, '2025-04-20', '2025-04-16', 'met_on_time'),
             (true, '2025-04-27', '2025-04-29', 'met_late')$$,
    'expectations of first_month_weekly carry the job and the meeting day');
SELECT is((SELECT count(*) FROM ips.expectations((SELECT team_id FROM ctx), '2025-04-01', '2025-04-30') WHERE episode_id = :e5), 0::bigint,
          'nothing falls due while an episode is on hold');
SELECT is((SELECT count(*) FROM ips.expectations((SELECT team_id FROM ctx), '2025-04-01', '2025-04-30')
            WHERE rule LIKE 'specialist%' AND (episode_id IS NOT NULL OR staff_id IS DISTINCT FROM (SELECT staff_id FROM ctx))), 0::bigint,
          'specialist expectations carry the specialist and no episode');
-- rule_compliance is exactly the aggregate of expectations
SELECT results_eq(
    $$SELECT rule, due, met_on_time, met_late, missed FROM ips.rule_compliance(NULL, '2025-02-01', '2025-06-30') WHERE due > 0$$,
    $$SELECT x.rule, count(*)::int, count(*) FILTER (WHERE status = 'met_on_time')::int, count(*) FILTER (WHERE status = 'met_late')::int,
             count(*) FILTER (WHERE status = 'missed')::int
        FROM ips.expectations(NULL, '2025-02-01', '2025-06-30') x JOIN ips.rule r ON r.code = x.rule GROUP BY x.rule, r.ordinal ORDER BY r.ordinal$$,
    'rule_compliance aggregates ips.expectations');

SELECT * FROM finish();
ROLLBACK;
