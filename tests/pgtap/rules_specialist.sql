-- The per-specialist rules: specialist_employer_contacts (6 in-person contacts per
-- ISO week, times FTE rounded up), specialist_team_meeting (weekly),
-- specialist_caseload (at most 20 active clients per FTE).  Rows have staff_id and
-- no episode.  Expected figures worked out by hand from the defaults.
BEGIN;
SELECT plan(19);
\ir rules_helpers.psql

-- A: full time, B: half time (needs ceil(6 * 0.5) = 3 contacts), C: never assigned (no weekly rules).
CREATE TEMP TABLE sp AS SELECT (SELECT staff_id FROM ctx) AS a,
    ips.add_staff((SELECT team_id FROM ctx), 'Bea', 'specialist', fte => 0.5) AS b,
    ips.add_staff((SELECT team_id FROM ctx), 'Cai', 'specialist') AS c;
SELECT ips.add_employer('Rakennus Oy') AS emp \gset
-- first assignments on Mon 2025-03-10 (weekly rules from that ISO week): A and B with one engaged client each
SELECT pg_temp.ep('2025-03-10', '2025-03-10');
UPDATE ctx SET staff_id = (SELECT b FROM sp);
SELECT pg_temp.ep('2025-03-10', '2025-03-10');
UPDATE ctx SET staff_id = (SELECT a FROM sp);
-- The alert of a specialist rule on a day: 'overdue:N' / 'due:-N', or NULL.
CREATE FUNCTION pg_temp.sal(s bigint, r text, d date) RETURNS text
LANGUAGE sql AS $$
    SELECT string_agg(a.severity || ':' || a.days_overdue, ',' ORDER BY a.due_on)
      FROM ips.contact_alerts(d, (SELECT team_id FROM ctx)) a WHERE a.staff_id = s AND a.rule = r AND a.episode_id IS NULL
$$;

-- Week Mon 2025-03-10 .. Sun 03-16.  A: in person Mon..Sat (6th on Sat 03-15).  B: 2 in person + 1 by phone.
SELECT ips.record_employer_contact(a, :emp, d + time '09:00') FROM sp, generate_series(date '2025-03-10', '2025-03-15', '1 day') d;
SELECT ips.record_employer_contact(b, :emp, '2025-03-10 09:00'), ips.record_employer_contact(b, :emp, '2025-03-11 09:00'),
       ips.record_employer_contact(b, :emp, '2025-03-12 09:00', in_person => false) FROM sp;
SELECT is(pg_temp.sal(a, 'specialist_employer_contacts', '2025-03-13'), NULL, 'employer contacts: silent 3 days before Sunday (horizon 2)') FROM sp;
SELECT is(pg_temp.sal(a, 'specialist_employer_contacts', '2025-03-14'), 'due:-2', 'employer contacts: 5 by Friday, due in 2 days') FROM sp;
SELECT is(pg_temp.sal(a, 'specialist_employer_contacts', '2025-03-16'), NULL, 'employer contacts: 6 by Saturday, met') FROM sp;
SELECT is(pg_temp.sal(b, 'specialist_employer_contacts', '2025-03-16'), 'overdue:0', 'employer contacts: half time, 2 in person of 3 on Sunday') FROM sp;
SELECT is(pg_temp.sal(b, 'specialist_employer_contacts', '2025-03-17'), 'overdue:1', 'employer contacts: fires on Monday for the week before') FROM sp;
SELECT is(pg_temp.sal(b, 'specialist_employer_contacts', '2025-03-23'), 'overdue:0', 'employer contacts: the next week is judged on its own') FROM sp;
SELECT ips.record_employer_contact(b, :emp, '2025-03-16 23:30') FROM sp;
SELECT is(pg_temp.sal(b, 'specialist_employer_contacts', '2025-03-17'), NULL, 'employer contacts: one at 23:30 on Sunday, entered late, completes the week') FROM sp;
SELECT is(pg_temp.sal(c, 'specialist_employer_contacts', '2025-03-17'), NULL, 'a specialist without clients yet has no weekly rules') FROM sp;
SELECT is((SELECT count(*) FROM ips.contact_alerts('2025-03-17', (SELECT team_id FROM ctx)) x WHERE x.staff_id = (SELECT c FROM sp)), 0::bigint,
          'no rows at all for the unassigned specialist') FROM sp;

-- Team meeting: A attends Wed 03-12; B does not.
SELECT ips.record_team_meeting(a, '2025-03-12') FROM sp;
SELECT is(pg_temp.sal(a, 'specialist_team_meeting', '2025-03-16'), NULL, 'team meeting: attended in the week') FROM sp;
SELECT is(pg_temp.sal(b, 'specialist_team_meeting', '2025-03-14'), 'due:-2', 'team meeting: not yet attended, due Sunday') FROM sp;
SELECT is(pg_temp.sal(b, 'specialist_team_meeting', '2025-03-18'), 'overdue:2', 'team meeting: missed week fires after it') FROM sp;
SELECT ips.record_team_meeting(b, '2025-03-16') FROM sp;
SELECT is(pg_temp.sal(b, 'specialist_team_meeting', '2025-03-18'), NULL, 'team meeting: on Sunday, entered late, counts') FROM sp;
SELECT is((SELECT count(*) FROM ips.contact_alerts('2025-03-18', (SELECT team_id FROM ctx)) x
            WHERE x.rule LIKE 'specialist%' AND x.episode_id IS NOT NULL), 0::bigint, 'specialist rows have no episode');

-- Caseload: A has 1 active client; add 19 engaged (20: at the limit), one referred only (does not count).
SELECT pg_temp.ep('2025-03-10', '2025-03-11') FROM generate_series(1, 19);
SELECT pg_temp.ep('2025-03-10');
SELECT is(pg_temp.sal(a, 'specialist_caseload', '2025-03-20'), NULL, 'caseload: 20 active clients per FTE is within the limit') FROM sp;
SELECT pg_temp.ep('2025-03-10', '2025-03-19');
SELECT is(pg_temp.sal(a, 'specialist_caseload', '2025-03-20'), 'overdue:0', 'caseload: the 21st active client raises it (due on as_of)') FROM sp;
SELECT is(pg_temp.sal(a, 'specialist_caseload', '2025-03-18'), NULL, 'caseload: as of before the 21st entered') FROM sp;
-- one client on hold still counts; one closed does not
SELECT pg_temp.tr(max(episode_id), 'closed', '2025-03-21', 'client_choice') FROM ips.episode WHERE specialist_id = (SELECT a FROM sp) AND state = 'engaged';
SELECT is(pg_temp.sal(a, 'specialist_caseload', '2025-03-22'), NULL, 'caseload: a closed episode leaves the caseload') FROM sp;
-- B (0.5 FTE) has 1 client; an admin lowers the limit to 1 per FTE: 1 > 0.5 raises it
UPDATE ips.rule SET count = 1 WHERE code = 'specialist_caseload';
SELECT is(pg_temp.sal(b, 'specialist_caseload', '2025-03-22'), 'overdue:0', 'caseload: an admin''s lower limit applies at once, per FTE') FROM sp;

SELECT * FROM finish();
ROLLBACK;
