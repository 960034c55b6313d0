-- Secondary (complementary) suppression of the analysts' outcomes (issue 13): no suppressed
-- cell, and no group of 1 .. threshold-1 people or jobs, can be derived from the cells shown
-- in the same row.  Threshold 5 throughout.  The expected rows are worked out by hand from
-- the order in which ips.outcomes_suppress looks at the differences of a row:
--   d1 served - working, d2 out of work - working out of work, d3 served - out of work,
--   d4 working - working out of work, d5 served - working out of work,
--   d6 served - working - out of work + working out of work, d7 jobs known - retained,
--   d8 job starts - first jobs; then closures - the shown reasons.
-- A small difference suppresses its smallest non-zero cell; passes repeat until none is small.
-- Cells: served, working, oow, working_oow, starts, first_jobs, education, known, retained,
--        closures, stable, choice, moved, elsewhere, disengaged, deceased, never.
BEGIN;
SELECT plan(20);

-- a quiet row: every difference is 0 or at least 5, nothing changes
SELECT is(ips.outcomes_suppress('{40,20,20,10, 10,5,0, 10,5, 10,5,5,0,0,0,0,0}', 5),
          '{40,20,20,10, 10,5,0, 10,5, 10,5,5,0,0,0,0,0}'::bigint[], 'a row without small groups is shown whole');
SELECT is(ips.outcomes_suppress('{40,20,20,10, 10,5,0, 10,5, 10,5,5,0,0,0,0,0}', NULL),
          '{40,20,20,10, 10,5,0, 10,5, 10,5,5,0,0,0,0,0}'::bigint[], 'no threshold (ips_admin): nothing suppressed');

-- the issue's three examples
-- jobs known 6, retained 5: d7 = 1 job lost -> the smaller, retained (5), is suppressed
SELECT is(ips.outcomes_suppress('{40,20,20,10, 10,5,0, 6,5, 10,5,5,0,0,0,0,0}', 5),
          '{40,20,20,10, 10,5,0, 6,NULL, 10,5,5,0,0,0,0,0}'::bigint[], 'jobs known 6 - retained 5: retained suppressed');
-- working 15, working out of work 14 (served 30, out of work 20): d4 = 1 -> working_oow (14) suppressed;
-- d1 15, d2 6, d3 10 are safe, d5 and d6 then need the suppressed cell
SELECT is(ips.outcomes_suppress('{30,15,20,14, 10,5,0, 10,5, 10,5,5,0,0,0,0,0}', 5),
          '{30,15,20,NULL, 10,5,0, 10,5, 10,5,5,0,0,0,0,0}'::bigint[], 'working 15 - working out of work 14: the 14 suppressed');
-- closures 6 = client_choice 5 + deceased 1: deceased (1) primary; closures - shown reasons = 1 < 5
-- -> client_choice (5) suppressed too; then 6 - 0 = 6 closures of the suppressed reasons together
SELECT is(ips.outcomes_suppress('{40,20,20,10, 10,5,0, 10,5, 6,0,5,0,0,0,1,0}', 5),
          '{40,20,20,10, 10,5,0, 10,5, 6,0,NULL,0,0,0,NULL,0}'::bigint[], 'closures 6 - client_choice 5: both reasons suppressed');

-- closures 12 = stable 7 + choice 3 + moved 2: both small ones primary, together 5: enough
SELECT is(ips.outcomes_suppress('{40,20,20,10, 10,5,0, 10,5, 12,7,3,2,0,0,0,0}', 5),
          '{40,20,20,10, 10,5,0, 10,5, 12,7,NULL,NULL,0,0,0,0}'::bigint[], 'two small reasons adding up to 5 protect each other');
-- closures 9 = stable 6 + deceased 3: 9 - 6 = 3 -> stable (6) suppressed as well
SELECT is(ips.outcomes_suppress('{40,20,20,10, 10,5,0, 10,5, 9,6,0,0,0,0,3,0}', 5),
          '{40,20,20,10, 10,5,0, 10,5, 9,NULL,0,0,0,0,NULL,0}'::bigint[], 'closures 9 - stable 6: stable suppressed');
-- closures 2 (1 + 1): the total is small itself; the reasons too
SELECT is(ips.outcomes_suppress('{40,20,20,10, 10,5,0, 10,5, 2,0,1,0,0,0,0,1}', 5),
          '{40,20,20,10, 10,5,0, 10,5, NULL,0,NULL,0,0,0,0,NULL}'::bigint[], 'a small total and its reasons are suppressed');

-- a chain: served 8, working 6, out of work 5, working out of work 5 (no cell under 5):
-- pass 1: d1 8-6 = 2 -> working (6); d2 0; d3 8-5 = 3 -> out of work (5); d5 8-5 = 3 -> working out of work (5)
SELECT is(ips.outcomes_suppress('{8,6,5,5, 0,0,0, 0,0, 0,0,0,0,0,0,0,0}', 5),
          '{8,NULL,NULL,NULL, 0,0,0, 0,0, 0,0,0,0,0,0,0,0}'::bigint[], 'served 8 with 6 working and 5 out of work: only served is left');
-- served 12, working 7, out of work 7, working out of work 5: d1 5, d2 2 -> working_oow (5);
-- d3 5, d4 needs it, d5 and d6 too: done
SELECT is(ips.outcomes_suppress('{12,7,7,5, 0,0,0, 0,0, 0,0,0,0,0,0,0,0}', 5),
          '{12,7,7,NULL, 0,0,0, 0,0, 0,0,0,0,0,0,0,0}'::bigint[], 'out of work 7 - working out of work 5: the 5 suppressed');
-- d6: served 20, working 10, out of work 12, working out of work 5: d1 10, d2 7, d3 8, d4 5, d5 15,
-- d6 = 20 - 10 - 12 + 5 = 3 (not working, not out of work at entry) -> the smallest, working_oow (5)
SELECT is(ips.outcomes_suppress('{20,10,12,5, 0,0,0, 0,0, 0,0,0,0,0,0,0,0}', 5),
          '{20,10,12,NULL, 0,0,0, 0,0, 0,0,0,0,0,0,0,0}'::bigint[], 'the inner cell of served x working x out of work at entry');
-- job starts 7, first jobs 5: 2 other starts -> first jobs (5) suppressed
SELECT is(ips.outcomes_suppress('{40,20,20,10, 7,5,0, 10,5, 10,5,5,0,0,0,0,0}', 5),
          '{40,20,20,10, 7,NULL,0, 10,5, 10,5,5,0,0,0,0,0}'::bigint[], 'job starts 7 - first jobs 5: first jobs suppressed');

-- The property, over 2 000 random rows built from consistent parts: every shown cell is the
-- true one, no shown cell is 1 .. 4, and no difference of shown cells counts 1 .. 4 people.
CREATE TEMP TABLE r AS
SELECT i, c, ips.outcomes_suppress(c, 5) AS v
  FROM (SELECT i, ARRAY[a + b + cc + d, a + b, a + cc, a, f + n, f, ed, rt + l, rt,
                        r1 + r2 + r3 + r4 + r5 + r6 + r7, r1, r2, r3, r4, r5, r6, r7]::bigint[] AS c
          FROM (SELECT i, (random() * 8)::int AS a, (random() * 8)::int AS b, (random() * 8)::int AS cc,
                       (random() * 8)::int AS d, (random() * 8)::int AS f, (random() * 8)::int AS n,
                       (random() * 8)::int AS ed, (random() * 8)::int AS rt, (random() * 8)::int AS l,
                       (random() * 6)::int AS r1, (random() * 6)::int AS r2, (random() * 3)::int AS r3,
                       (random() * 2)::int AS r4, (random() * 2)::int AS r5, (random() * 2)::int AS r6,
                       (random() * 3)::int AS r7
                  FROM generate_series(1, 2000) i) x) y;
SELECT is((SELECT count(*) FROM r, generate_series(1, 17) k WHERE r.v[k] IS NOT NULL AND r.v[k] <> r.c[k]),
          0::bigint, 'random rows: every shown cell is the true count');
SELECT is((SELECT count(*) FROM r, generate_series(1, 17) k WHERE r.v[k] BETWEEN 1 AND 4), 0::bigint,
          'random rows: no cell of 1 .. 4 is shown');
SELECT is((SELECT count(*) FROM r, (VALUES (1, 2, 0, 0), (3, 4, 0, 0), (1, 3, 0, 0), (2, 4, 0, 0), (1, 4, 0, 0), (8, 9, 0, 0), (5, 6, 0, 0)) g(p, q, x, y)
            WHERE r.v[g.p] - r.v[g.q] BETWEEN 1 AND 4), 0::bigint,
          'random rows: no difference of two shown nested counts is 1 .. 4');
SELECT is((SELECT count(*) FROM r WHERE r.v[1] - r.v[2] - r.v[3] + r.v[4] BETWEEN 1 AND 4), 0::bigint,
          'random rows: the not working, not out of work at entry group is never 1 .. 4');
SELECT is((SELECT count(*) FROM r
            WHERE r.v[10] - (SELECT coalesce(sum(r.v[k]), 0) FROM generate_series(11, 17) k) BETWEEN 1 AND 4), 0::bigint,
          'random rows: closures minus the shown reasons is never 1 .. 4');
SELECT is((SELECT count(*) FROM r WHERE r.v[10] IS NOT NULL
              AND (SELECT count(*) FROM generate_series(11, 17) k WHERE r.v[k] IS NULL AND r.c[k] > 0) = 1), 0::bigint,
          'random rows: a shown total never leaves exactly one non-zero reason to derive');

-- End to end, as an analyst: a team's closures in 2025Q2 are 5 by the client's choice and one
-- death (the issue's example).  1.1 showed closures 6 and client_choice 5.
SELECT ips.add_team('Suppression team', 'Pohjanmaa') AS t \gset
SELECT ips.transition(ips.refer(ips.add_client('sup-' || i), :t, '2025-04-02'), 'closed', '2025-05-06 12:00+03',
                      CASE WHEN i = 6 THEN 'deceased' ELSE 'client_choice' END)
  FROM generate_series(1, 6) i;
SELECT 'supp_an_' || txid_current() AS an \gset
CREATE ROLE :"an" LOGIN;
GRANT ips_analyst TO :"an";
SET LOCAL ROLE :"an";
SELECT is((SELECT closures || ' ' || coalesce(closed_client_choice::text, 'suppressed') || ' ' || coalesce(closed_deceased::text, 'suppressed')
             FROM ips.outcomes_quarterly WHERE team_id = :t AND quarter = '2025Q2'),
          '6 suppressed suppressed', 'an analyst sees 6 closures, neither 5 by choice nor the one death');
RESET ROLE;
SELECT is((SELECT closures || ' ' || closed_client_choice || ' ' || closed_deceased
             FROM ips.outcomes_quarterly_for(NULL) WHERE team_id = :t AND quarter = '2025Q2'),
          '6 5 1', 'the owner sees the counts');

SELECT * FROM finish();
ROLLBACK;
