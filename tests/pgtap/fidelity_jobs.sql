-- Fidelity V8 (job types), V9 (employers), V10 (competitive jobs), V12 (follow-along).
--
-- Over the jobs held at any time in the period:
--   V8  = distinct occupations / jobs with an occupation x 100; V9 = distinct employers / jobs
--   x 100: 85-100 -> 5, 70-84 -> 4, 60-69 -> 3, 50-59 -> 2, < 50 -> 1.
--   V10 = competitive jobs (kinds competitive, self_employed) / jobs x 100:
--   >= 95 -> 5, 85-94 -> 4, 75-84 -> 3, 65-74 -> 2, < 65 -> 1.
-- V12 per competitive job held in the period, from the rules engine (ips.expectations, as
--   known on the period end, every expectation of the job since its start): with the default
--   rules and no pause, face-to-face client contacts on day offsets from the start s kept
--   pre_start_contact [s-7, s] (due s), post_start_contact [s, s+3] (due s+3),
--   first_month_weekly blocks k=0..3 [7k, 7k+6] (due s+7k+6), follow_along_monthly blocks
--   ("months") m=1..12 [30(m-1), 30m-1] (due s+30m-1), and after a job loss on e any client
--   contact (in person, phone, video) in [e, e+3] (job_loss_contact, due e+3).  A block is due
--   only while the job was held to its due day.  A part is kept only when met_on_time; met_late
--   (the contact came after the window), missed and open (window closing on the period end) are
--   not. 5: every job kept every part due; 4: every week and months 1-5 kept; otherwise over the
--   jobs whose month 5 (due s+149) is due: 3: >= half of them kept months 2-5; 2: fewer, but
--   some job had a contact in a month block after the first; 1: none after month 1.
--   2025-02-03 = s, so 2025-02-28 = s+25, 2025-05-31 = s+117, 2025-12-31 = s+331.
BEGIN;
SELECT plan(43);

\ir fidelity_helpers.psql
CREATE FUNCTION pg_temp.item(team bigint, code text, ps date, pe date) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(score::text, '-') || ' ' || coalesce(measure::text, '-') FROM ips.fidelity(team, ps, pe) WHERE item = code
$$;
SELECT count(ips.add_employer('Employer ' || i)) FROM generate_series(1, 30) i;

-- n jobs from 2025-02-01 in one episode: `types` distinct occupations, `emps` distinct
-- employers, the first `comp` competitive, the others wage-subsidised.
CREATE FUNCTION pg_temp.jobteam(n int, types int, emps int, comp int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE t bigint; s bigint; e bigint;
BEGIN
    t := ips.add_team(format('Jobs %s/%s/%s/%s', n, types, emps, comp), 'Pohjanmaa');
    s := ips.add_staff(t, format('Spec %s', t), 'specialist');
    e := pg_temp.engaged(t, s, format('jobs-%s', t), '2025-01-02');
    FOR i IN 1..n LOOP
        PERFORM ips.start_job(e, (SELECT min(employer_id) FROM ips.employer) + (i - 1) % emps, '2025-02-01',
                              CASE WHEN i <= comp THEN 'competitive' ELSE 'wage_subsidy' END,
                              (1000 + (i - 1) % types)::text);
    END LOOP;
    RETURN t;
END $$;
CREATE FUNCTION pg_temp.v(code text, n int, part int) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.item(pg_temp.jobteam(n, CASE code WHEN 'V8' THEN part ELSE 1 END,
                                        CASE code WHEN 'V9' THEN part ELSE 1 END,
                                        CASE code WHEN 'V10' THEN part ELSE n END),
                        code, '2025-02-01', '2025-02-28')
$$;
SELECT is(pg_temp.v('V8', 20, 17), '5 85.00', 'V8: 17 types / 20 jobs = 85 % -> 5');
SELECT is(pg_temp.v('V8', 25, 21), '4 84.00', 'V8: 21 / 25 = 84 % -> 4');
SELECT is(pg_temp.v('V8', 10, 7), '4 70.00', 'V8: 7 / 10 = 70 % -> 4');
SELECT is(pg_temp.v('V8', 13, 9), '3 69.23', 'V8: 9 / 13 = 69.23 % -> 3');
SELECT is(pg_temp.v('V8', 5, 3), '3 60.00', 'V8: 3 / 5 = 60 % -> 3');
SELECT is(pg_temp.v('V8', 17, 10), '2 58.82', 'V8: 10 / 17 = 58.82 % -> 2');
SELECT is(pg_temp.v('V8', 2, 1), '2 50.00', 'V8: 1 / 2 = 50 % -> 2');
SELECT is(pg_temp.v('V8', 3, 1), '1 33.33', 'V8: 1 / 3 -> 1');
SELECT is(pg_temp.v('V9', 20, 17), '5 85.00', 'V9: 17 employers / 20 jobs -> 5');
SELECT is(pg_temp.v('V9', 25, 21), '4 84.00', 'V9: 21 / 25 -> 4');
SELECT is(pg_temp.v('V9', 13, 9), '3 69.23', 'V9: 9 / 13 -> 3');
SELECT is(pg_temp.v('V9', 17, 10), '2 58.82', 'V9: 10 / 17 -> 2');
SELECT is(pg_temp.v('V10', 20, 19), '5 95.00', 'V10: 19 competitive / 20 = 95 % -> 5');
SELECT is(pg_temp.v('V10', 20, 18), '4 90.00', 'V10: 90 % -> 4');
SELECT is(pg_temp.v('V10', 20, 17), '4 85.00', 'V10: 85 % -> 4');
SELECT is(pg_temp.v('V10', 25, 21), '3 84.00', 'V10: 84 % -> 3');
SELECT is(pg_temp.v('V10', 20, 15), '3 75.00', 'V10: 75 % -> 3');
SELECT is(pg_temp.v('V10', 27, 20), '2 74.07', 'V10: 20 / 27 = 74.07 % -> 2');
SELECT is(pg_temp.v('V10', 20, 13), '2 65.00', 'V10: 65 % -> 2');
SELECT is(pg_temp.v('V10', 25, 16), '1 64.00', 'V10: 64 % -> 1');

-- Periods cut through jobs: held in February = starts_on <= 02-28 and (no end or ends_on >= 02-01).
SELECT ips.add_team('Jobs cut', 'Pohjanmaa') AS tc \gset
SELECT ips.add_staff(:tc, 'Cut spec', 'specialist') AS sc \gset
SELECT pg_temp.engaged(:tc, :sc, 'cut', '2025-01-02') AS ec \gset
SELECT min(employer_id) AS e1 FROM ips.employer \gset
SELECT ips.start_job(:ec, :e1, '2025-01-05', 'competitive', '5223') AS j_jan \gset
SELECT ips.end_job(:j_jan, '2025-01-31');
SELECT ips.start_job(:ec, :e1, '2025-01-20', 'competitive', '5223') AS j_to_feb1 \gset
SELECT ips.start_job(:ec, :e1 + 1, '2025-01-25', 'work_trial') AS j_trial \gset
SELECT ips.end_job(:j_to_feb1, '2025-02-01');
SELECT ips.start_job(:ec, :e1 + 2, '2025-03-01', 'competitive', '9112');
-- February: the job ending 02-01 (5223, employer 1) and the work trial (no occupation, employer 2)
SELECT is(pg_temp.item(:tc, 'V9', '2025-02-01', '2025-02-28'), '5 100.00', 'V9 in February: 2 employers / 2 jobs');
SELECT is(pg_temp.item(:tc, 'V10', '2025-02-01', '2025-02-28'), '1 50.00', 'V10 in February: 1 competitive of 2 = 50 % -> 1');
SELECT is((SELECT (evidence ->> 'jobs_with_job_type') || ' ' || (evidence ->> 'jobs_without_job_type')
             FROM ips.fidelity(:tc, '2025-02-01', '2025-02-28') WHERE item = 'V8'),
          '1 1', 'V8 counts only jobs with an occupation; the work trial has none');
-- January to March: 4 jobs, employers 1, 1, 2, 3 -> 3 / 4 = 75 %
SELECT is(pg_temp.item(:tc, 'V9', '2025-01-01', '2025-03-31'), '4 75.00', 'V9 over Jan-Mar: 3 employers / 4 jobs -> 4');

-- V12.  A competitive job starting s = 2025-02-03 with in-person client contacts at offsets.
CREATE FUNCTION pg_temp.v12job(team bigint, spec bigint, ref text, s date, offs int[],
                               ends date DEFAULT NULL, loss_contact int DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE e bigint; j bigint; o int;
BEGIN
    e := pg_temp.engaged(team, spec, ref, s - 20);
    FOREACH o IN ARRAY offs LOOP
        PERFORM ips.record_contact(e, spec, ips.local_midnight(s + o) + interval '9 hours', 'client', 'in_person', 'community', 60);
    END LOOP;
    j := ips.start_job(e, (SELECT min(employer_id) FROM ips.employer), s, 'competitive', '5223');
    IF ends IS NOT NULL THEN
        PERFORM ips.end_job(j, ends);
        IF loss_contact IS NOT NULL THEN
            PERFORM ips.record_contact(e, spec, ips.local_midnight(ends + loss_contact) + interval '9 hours', 'client', 'phone', 'office', 10);
        END IF;
    END IF;
    RETURN j;
END $$;
CREATE FUNCTION pg_temp.v12team(name text) RETURNS bigint LANGUAGE sql AS $$
    SELECT ips.add_team(name, 'HUS')
$$;
-- the full pattern: before -3, after +1, weeks +1 +8 +15 +22, months 2..11 at 30(m-1)+5
-- (month 12 ends 2026-01-28, after the period end 2025-12-31: not due)
\set full '''{-3,1,8,15,22,35,65,95,125,155,185,215,245,275,305}'''
SELECT pg_temp.v12team('V12 five') AS t5 \gset
SELECT ips.add_staff(:t5, 'V12 five', 'specialist') AS s5 \gset
SELECT pg_temp.v12job(:t5, :s5, 'v12-5', '2025-02-03', :full);
SELECT is(pg_temp.item(:t5, 'V12', '2025-01-01', '2025-12-31'), '5 100.00', 'V12: every due part kept -> 5');
-- months = follow_along_monthly blocks m=1..11 (due s+29 .. s+329 <= s+331; m=12 due s+359 is
-- not), each holding a contact (1, 35, 65, ..., 305); weeks k=0..3 hold 1, 8, 15, 22
SELECT is((SELECT (evidence #>> '{jobs,0,months_kept}') || ' ' || (evidence #>> '{jobs,0,weeks_kept}')
             FROM ips.fidelity(:t5, '2025-01-01', '2025-12-31') WHERE item = 'V12'),
          '11 4', 'V12 evidence: months 1..11 (the rule''s blocks, month 1 included) and four weeks kept');
-- no contact before the start and none in month 8 (offset 215): weeks and months 2-5 kept -> 4
SELECT pg_temp.v12team('V12 four') AS t4 \gset
SELECT ips.add_staff(:t4, 'V12 four', 'specialist') AS s4 \gset
SELECT pg_temp.v12job(:t4, :s4, 'v12-4', '2025-02-03', '{1,8,15,22,35,65,95,125,155,185,245,275,305}');
SELECT is(pg_temp.item(:t4, 'V12', '2025-01-01', '2025-12-31'), '4 100.00', 'V12: weekly month 1 + months 2-5 -> 4');
-- two jobs: one full, one missing month 3 (offset 65): 1 of 2 followed 4 months = 50 % -> 3
SELECT pg_temp.v12team('V12 three') AS t3 \gset
SELECT ips.add_staff(:t3, 'V12 three', 'specialist') AS s3 \gset
SELECT pg_temp.v12job(:t3, :s3, 'v12-3a', '2025-02-03', :full);
SELECT pg_temp.v12job(:t3, :s3, 'v12-3b', '2025-02-03', '{-3,1,8,15,22,35,95,125,155}');
SELECT is(pg_temp.item(:t3, 'V12', '2025-01-01', '2025-12-31'), '3 50.00', 'V12: half of the jobs followed 4 months -> 3');
-- three jobs: one full, two seen once in month 2 only: 1 of 3 = 33.33 % -> 2
SELECT pg_temp.v12team('V12 two') AS t2 \gset
SELECT ips.add_staff(:t2, 'V12 two', 'specialist') AS s2 \gset
SELECT pg_temp.v12job(:t2, :s2, 'v12-2a', '2025-02-03', :full);
SELECT pg_temp.v12job(:t2, :s2, 'v12-2b', '2025-02-03', '{-3,1,8,15,22,40}');
SELECT pg_temp.v12job(:t2, :s2, 'v12-2c', '2025-02-03', '{-3,1,8,15,22,40}');
SELECT is(pg_temp.item(:t2, 'V12', '2025-01-01', '2025-12-31'), '2 33.33', 'V12: fewer than half followed 4 months -> 2');
-- one job, nothing after month 1 -> 1
SELECT pg_temp.v12team('V12 one') AS t1 \gset
SELECT ips.add_staff(:t1, 'V12 one', 'specialist') AS s1 \gset
SELECT pg_temp.v12job(:t1, :s1, 'v12-1', '2025-02-03', '{-3,1,8,15,22}');
SELECT is(pg_temp.item(:t1, 'V12', '2025-01-01', '2025-12-31'), '1 0.00', 'V12: no contact after month 1 -> 1');
-- the same job judged at 2025-05-31: month 5 ends 2025-07-02, so no job was held 5 months yet
SELECT is(pg_temp.item(:t1, 'V12', '2025-01-01', '2025-05-31'), '- -', 'V12: pattern broken, too early to judge months 2-5 -> not measurable');
-- judged at 2025-02-28 only the first month is due, and all of it was kept: 5
SELECT is(pg_temp.item(:t1, 'V12', '2025-01-01', '2025-02-28'), '5 -', 'V12: only the first month due, all kept -> 5');
-- a job lost on 2025-03-31 (month 2 not completed): phone call 2 days later -> full pattern
SELECT pg_temp.v12team('V12 loss') AS tl \gset
SELECT ips.add_staff(:tl, 'V12 loss', 'specialist') AS sl \gset
SELECT pg_temp.v12job(:tl, :sl, 'v12-l', '2025-02-03', '{-3,1,8,15,22,35}', '2025-03-31', 2);
SELECT is(pg_temp.item(:tl, 'V12', '2025-01-01', '2025-12-31'), '5 -', 'V12: contact within 3 days of a job loss -> 5');
SELECT pg_temp.v12team('V12 loss late') AS tll \gset
SELECT ips.add_staff(:tll, 'V12 loss late', 'specialist') AS sll \gset
SELECT pg_temp.v12job(:tll, :sll, 'v12-ll', '2025-02-03', '{-3,1,8,15,22,35}', '2025-03-31', 4);
SELECT is(pg_temp.item(:tll, 'V12', '2025-01-01', '2025-12-31'), '4 -', 'V12: contact 4 days after the job loss is late -> 4');
-- the engine's status: the call on e+4 meets job_loss_contact (due e+3) late, which V12 does not count
SELECT is((SELECT evidence #>> '{jobs,0,job_loss}' FROM ips.fidelity(:tll, '2025-01-01', '2025-12-31') WHERE item = 'V12'),
          'met_late', 'V12 evidence: the job-loss contact came late (status met_late, not kept)');
SELECT is((SELECT evidence #>> '{rule_compliance,job_loss_contact}' FROM ips.fidelity(:tll, '2025-01-01', '2025-12-31') WHERE item = 'V12'),
          '{"due": 1, "missed": 0, "met_late": 1, "met_on_time": 0}', 'V12 evidence keeps the rule_compliance figures of the period');

-- A job that started before the period keeps its whole pattern: the "V12 four" job judged over
-- 2025-10-01 .. 12-31 (s+240 .. s+331) is read from the expectations due since its start
-- (2025-02-03), so the pre-start contact it lacked still counts: weeks and months 1-5 kept -> 4;
-- month 5 due s+149 <= s+331 and months 2-5 kept: 1 / 1 = 100 %.  (Read from the period alone,
-- only months 9-11 would be seen, all kept.)
SELECT is(pg_temp.item(:t4, 'V12', '2025-10-01', '2025-12-31'), '4 100.00', 'V12: a job started before the period is judged from its start -> 4');
SELECT is((SELECT (evidence ->> 'expectations_from') || ' ' || (evidence #>> '{jobs,0,pre_start}') || ' '
                  || (evidence #>> '{jobs,0,months_not_kept}')
             FROM ips.fidelity(:t4, '2025-10-01', '2025-12-31') WHERE item = 'V12'),
          '2025-02-03 met_late [8]', 'V12 evidence: expectations from the job start; pre-start met late; month 8 not kept');
-- The rules engine runs once for the fidelity, from the earliest job start (here 2025-02-03, before
-- the period); the rule compliance in the evidence still counts only what is due in the period, as
-- ips.rule_compliance does (months 9-11 of follow-along, not months 1-8).
SELECT is((SELECT evidence -> 'rule_compliance' FROM ips.fidelity(:t4, '2025-10-01', '2025-12-31') WHERE item = 'V12'),
          (SELECT jsonb_object_agg(r.rule, to_jsonb(r) - 'rule') FROM ips.rule_compliance(:t4, '2025-10-01', '2025-12-31') r
            WHERE r.rule IN ('pre_start_contact', 'post_start_contact', 'first_month_weekly', 'follow_along_monthly', 'job_loss_contact')),
          'V12 evidence: the rule compliance of the period equals ips.rule_compliance although the engine ran from the job start');
SELECT is((SELECT string_agg(f.item || ' ' || (f.evidence #>> '{rule_compliance,due}'), ', ' ORDER BY f.item)
             FROM ips.fidelity(:t4, '2025-10-01', '2025-12-31') f WHERE f.item IN ('V4', 'V6'))
          || ' / ' || (SELECT (evidence #>> '{rule_compliance,follow_along_monthly,due}') FROM ips.fidelity(:t4, '2025-10-01', '2025-12-31') WHERE item = 'V12'),
          (SELECT string_agg(CASE r.rule WHEN 'rapid_job_search' THEN 'V4' ELSE 'V6' END || ' ' || r.due, ', '
                             ORDER BY CASE r.rule WHEN 'rapid_job_search' THEN 'V4' ELSE 'V6' END)
             FROM ips.rule_compliance(:t4, '2025-10-01', '2025-12-31') r WHERE r.rule IN ('rapid_job_search', 'specialist_employer_contacts'))
          || ' / 3',
          'V4 and V6 evidence: rule compliance of the period, as ips.rule_compliance counts it (follow-along months 9-11 only)');

-- V12 follows ips.rule.  A job from s with contacts at -3, 5, 8, 15, 22, judged 2025-01-01 ..
-- 02-28 (= s+25): pre-start kept (s-3); weeks k=0..2 (due s+6, s+13, s+20) hold 5, 8, 15;
-- week k=3 (due s+27) and month 1 (due s+29) are not due.  post_start_contact (3 days) is due
-- s+3 and first met on s+5: met_late, not kept -> not the full pattern, but no week or month
-- missed -> 4 (no month 5 due: measure NULL).
SELECT pg_temp.v12team('V12 rule') AS tr \gset
SELECT ips.add_staff(:tr, 'V12 rule', 'specialist') AS sr \gset
SELECT pg_temp.v12job(:tr, :sr, 'v12-r', '2025-02-03', '{-3,5,8,15,22}');
SELECT is(pg_temp.item(:tr, 'V12', '2025-01-01', '2025-02-28'), '4 -', 'V12: contact on day 5 is late for a 3-day post-start rule -> 4');
-- an administrator gives post_start_contact 5 days: due s+5, met s+5 on time -> every part kept -> 5
UPDATE ips.rule SET days = 5 WHERE code = 'post_start_contact';
SELECT is(pg_temp.item(:tr, 'V12', '2025-01-01', '2025-02-28'), '5 -', 'V12: with post_start_contact at 5 days the day-5 contact keeps the pattern -> 5');
SELECT is((SELECT (evidence #>> '{jobs,0,post_start}') || ' ' || (evidence #>> '{rule_compliance,post_start_contact,met_on_time}')
             FROM ips.fidelity(:tr, '2025-01-01', '2025-02-28') WHERE item = 'V12'),
          'met_on_time 1', 'V12 evidence and the rule''s compliance agree: post-start met on time');

SELECT * FROM finish();
ROLLBACK;
