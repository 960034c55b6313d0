-- Fidelity reviews: rating, total and band, closing freezes the result, corrections later.
--
-- Team of one specialist (1.0 FTE, share 1.0, 10 h a week = 600 min), period 2025-03-03 ..
-- 2025-03-09 (one week).  Worked out by hand:
--   S1: clients A (entry 03-03) and B (entry 01-02) active all 7 days: 2 per FTE -> 5
--   S2: 100 % -> 5
--   V4: A's first face-to-face competitive employer contact on 03-05: 2 days -> 5
--   V6: 6 face-to-face employer contacts / 1 specialist / 1 week = 6 -> 5
--   V8, V9, V10: B's one competitive job (5223, employer E): 100 % -> 5 each
--   V12: B's job from 03-04, met 03-01 (before) and 03-05 (after, week 1): all due kept -> 5
--   V13: 400 community minutes / 600 = 66.67 % -> 5
--   computed: 9 x 5 = 45; rated (16 items): 5+5+4+3+5+4+5+4+1+4+1+4+4+1+4+3 = 57; total 102 -> good
-- A work trial for A with employer E recorded afterwards (03-07) makes 2 jobs: V9 1/2 = 50 % -> 2,
-- V10 1/2 = 50 % -> 1: live total 102 - 3 - 4 = 95 -> fair; the closed review stays at 102.
BEGIN;
SELECT plan(29);

SELECT ips.add_team('Review team', 'Pohjanmaa') AS t \gset
SELECT ips.add_staff(:t, 'Reviewed', 'specialist', 1.0, NULL, 1.0, 10) AS s \gset
SELECT ips.add_employer('Employer E') AS emp \gset
SELECT ips.add_client('rev-a') AS ca \gset
SELECT ips.add_client('rev-b') AS cb \gset
SELECT ips.start_care_relationship(:ca, 'psykiatria', '2024-12-01');
SELECT ips.start_care_relationship(:cb, 'psykiatria', '2024-12-01');
SELECT ips.refer(:ca, :t, '2025-02-20') AS ea \gset
SELECT ips.refer(:cb, :t, '2024-12-20') AS eb \gset
SELECT ips.assign_specialist(:ea, :s, '2025-02-20');
SELECT ips.assign_specialist(:eb, :s, '2024-12-20');
SELECT ips.transition(:ea, 'engaged', '2025-03-03 12:00+02');
SELECT ips.transition(:eb, 'engaged', '2025-01-02 12:00+02');
SELECT ips.record_employer_contact(:s, :emp, '2025-03-05 10:00+02', true, :ea);
SELECT count(ips.record_employer_contact(:s, :emp, ('2025-03-0' || d || ' 10:00+02')::timestamptz, true)) FROM generate_series(3, 7) d;
SELECT ips.record_contact(:eb, :s, '2025-03-01 10:00+02', 'client', 'in_person', 'office', 30);
SELECT ips.record_contact(:eb, :s, '2025-03-05 10:00+02', 'client', 'in_person', 'community', 400);
SELECT ips.start_job(:eb, :emp, '2025-03-04', 'competitive', '5223');

SELECT is((SELECT string_agg(item || '=' || score, ' ') FROM ips.fidelity(:t, '2025-03-03', '2025-03-09') WHERE source = 'computed'),
          'S1=5 S2=5 V4=5 V6=5 V8=5 V9=5 V10=5 V12=5 V13=5', 'the nine computed items, each worked out above');
SELECT is((SELECT count(*)::int FROM ips.fidelity(:t, '2025-03-03', '2025-03-09') WHERE source = 'missing'), 16,
          'without a review the 16 other items are missing');
SELECT results_eq(format($$SELECT * FROM ips.fidelity_summary(%s, '2025-03-03', '2025-03-09')$$, :t),
                  $$VALUES (45, 9, NULL::text)$$, 'summary before the review: 45 from 9 items, no band');

-- errors
SELECT throws_ok(format($$SELECT ips.open_review(%s, '2025-03-03', '2025-03-09', '2025-03-01')$$, :t), '22023', NULL,
                 'a review dated before its period: 22023');
SELECT ips.open_review(:t, '2025-03-03', '2025-03-09', '2025-03-20') AS r \gset
SELECT throws_ok(format($$SELECT ips.open_review(%s, '2025-03-03', '2025-03-09', '2025-03-21')$$, :t), '23505', NULL,
                 'one review per team and period: 23505');
SELECT throws_ok(format($$SELECT ips.rate(%s, 'X9', 3)$$, :r), '22023', NULL, 'unknown item: 22023');
SELECT throws_ok(format($$SELECT ips.rate(%s, 'S3', 6)$$, :r), '22003', 'score 6 is out of range', 'score 6: 22003');
SELECT throws_ok($$SELECT ips.rate(-1, 'S3', 3)$$, 'P0002', NULL, 'unknown review: P0002');
SELECT is((SELECT count(*)::int FROM ips.fidelity_rating WHERE review_id = :r), 0, 'the failed ratings wrote nothing');

SELECT ips.add_reviewer(:r, 'Liisa Arvioija', 'THL');
SELECT ips.add_reviewer(:r, 'Peer Reviewer', 'Pohjois-Savo');
SELECT is((SELECT count(*)::int FROM ips.fidelity_reviewer WHERE review_id = :r), 2, 'two reviewers');

SELECT ips.rate(:r, i, sc, CASE WHEN i = 'O2' THEN 'attends most weekly meetings' END)
  FROM (VALUES ('S3', 5), ('O1', 5), ('O2', 4), ('O3', 3), ('O4', 5), ('O5', 4), ('O6', 5), ('O7', 4),
               ('O8', 1), ('V1', 4), ('V2', 1), ('V3', 4), ('V5', 4), ('V7', 1), ('V11', 4)) AS x(i, sc);
SELECT results_eq(format($$SELECT * FROM ips.fidelity_summary(%s, '2025-03-03', '2025-03-09')$$, :t),
                  $$VALUES (99, 24, NULL::text)$$, '24 items scored (45 + 54): no band yet');
SELECT ips.rate(:r, 'V14', 2);
SELECT ips.rate(:r, 'V14', 3, 'outreach documented');
SELECT is((SELECT score FROM ips.fidelity_rating WHERE review_id = :r AND item = 'V14'), 3, 'rating again replaces the score');
SELECT results_eq(format($$SELECT * FROM ips.fidelity_summary(%s, '2025-03-03', '2025-03-09')$$, :t),
                  $$VALUES (102, 25, 'good'::text)$$, 'all 25 scored: 45 + 57 = 102 -> good');
SELECT is((SELECT source || ' ' || score || ' ' || (evidence ->> 'note') FROM ips.fidelity(:t, '2025-03-03', '2025-03-09') WHERE item = 'O2'),
          'rated 4 attends most weekly meetings', 'O2 is rated, with the reviewer''s note');
SELECT is((SELECT evidence ->> 'referrals' FROM ips.fidelity(:t, '2025-03-03', '2025-03-09') WHERE item = 'O2'), NULL,
          'O2 evidence is about meetings, not referrals');
SELECT ok((SELECT evidence ? 'per_specialist' FROM ips.fidelity(:t, '2025-03-03', '2025-03-09') WHERE item = 'O2'),
          'O2 carries meeting attendance from the records');
SELECT is((SELECT (evidence ->> 'job_starts') || ' ' || (evidence ->> 'after_benefits_counselling')
             FROM ips.fidelity(:t, '2025-03-03', '2025-03-09') WHERE item = 'V1'),
          '1 0', 'V1 evidence: one job start, no benefits counselling before it');

-- the action plan
SELECT ips.add_action(:r, 'Benefits counselling before every job start', 'V1', 'Team leader', '2025-06-30') AS act \gset
SELECT ips.complete_action(:act, '2025-05-15');
SELECT is((SELECT done_on FROM ips.fidelity_action WHERE action_id = :act), '2025-05-15'::date, 'an action of the plan is done');
SELECT throws_ok(format($$SELECT ips.add_action(%s, 'x', 'V1', NULL, '2025-03-01')$$, :r), '22023', NULL,
                 'an action due before the review: 22023');

-- close: the result is frozen
SELECT ips.close_review(:r);
SELECT throws_ok(format($$SELECT ips.rate(%s, 'S3', 4)$$, :r), '55000', NULL, 'a closed review takes no ratings: 55000');
SELECT throws_ok(format($$SELECT ips.close_review(%s)$$, :r), '55000', NULL, 'closing twice: 55000');
SELECT is((SELECT count(*)::int FROM ips.fidelity_frozen WHERE review_id = :r), 25, '25 frozen rows');
SELECT is((SELECT count(*)::int FROM ips.review_changes(:r)), 0, 'just closed: nothing differs');

-- a forgotten work trial is recorded afterwards
SELECT ips.start_job(:ea, :emp, '2025-03-07', 'work_trial');
SELECT is((SELECT string_agg(item || '=' || score, ' ') FROM ips.review_result(:r) WHERE item IN ('V9', 'V10')),
          'V9=5 V10=5', 'the closed review is unchanged');
SELECT is((SELECT string_agg(item || '=' || score, ' ') FROM ips.fidelity(:t, '2025-03-03', '2025-03-09') WHERE item IN ('V9', 'V10')),
          'V9=2 V10=1', 'computed now: V9 50 % -> 2, V10 50 % -> 1');
SELECT results_eq(format($$SELECT item, frozen_score, current_score FROM ips.review_changes(%s)$$, :r),
                  $$VALUES ('V9'::text, 5, 2), ('V10'::text, 5, 1)$$, 'review_changes shows what would differ now');
SELECT results_eq(format($$SELECT * FROM ips.fidelity_summary(%s, '2025-03-03', '2025-03-09')$$, :t),
                  $$VALUES (102, 25, 'good'::text)$$, 'the summary of the reviewed period is the frozen one: 102, good');
SELECT is((SELECT sum(score)::int FROM ips.fidelity(:t, '2025-03-03', '2025-03-09')), 95, 'a live computation now totals 95 (fair)');

-- a computed item the records cannot measure falls back to the rating: no jobs in February
SELECT ips.open_review(:t, '2025-02-01', '2025-02-28', '2025-03-20') AS r2 \gset
SELECT ips.rate(:r2, 'V8', 3, 'judged from the case files');
SELECT is((SELECT source || ' ' || score FROM ips.fidelity(:t, '2025-02-01', '2025-02-28') WHERE item = 'V8'),
          'rated 3', 'V8 not measurable from the records: the rating counts');

SELECT * FROM finish();
ROLLBACK;
