-- Fidelity V4 (rapid job search), V6 (employer contacts), V13 (community-based services).
--
-- V4  = mean over episodes entering in the period of the days from entry to the first
--       face-to-face employer contact about a competitive job on the client's behalf, known
--       by the period end (none: days to closure or period end).  <=30 -> 5, 31-60 -> 4,
--       61-150 -> 3, 151-270 -> 2, >=271 -> 1.
-- V6  = face-to-face employer contacts by the specialists / (specialists x weeks); a caseload
--       with 1-2 job seekers and >= 2 contacts per job seeker per week counts as 6.
--       >=6 -> 5, 5 -> 4, 4 -> 3, 2-3 -> 2, <2 -> 1.
-- V13 = community-setting contact minutes / (weekly hours x 60 x weeks) x 100.
--       >=65 -> 5, 50-64 -> 4, 40-49 -> 3, 30-39 -> 2, <30 -> 1.
BEGIN;
SELECT plan(36);

\ir fidelity_helpers.psql
CREATE FUNCTION pg_temp.at(day date) RETURNS timestamptz LANGUAGE sql AS $$
    SELECT ips.local_midnight(day) + interval '10 hours'
$$;
CREATE FUNCTION pg_temp.item(team bigint, code text, ps date, pe date) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(score::text, '-') || ' ' || coalesce(measure::text, '-') FROM ips.fidelity(team, ps, pe) WHERE item = code
$$;
SELECT ips.add_employer('Kahvila Oy') AS emp \gset

-- V4: one entrant on 2025-01-02 per team, first employer contact `d` days later.
CREATE FUNCTION pg_temp.v4team(d int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE t bigint; s bigint; e bigint;
BEGIN
    t := ips.add_team('V4 ' || d, 'Pohjois-Savo');
    s := ips.add_staff(t, 'V4 spec ' || d, 'specialist');
    e := pg_temp.engaged(t, s, 'v4-' || d, '2025-01-02');
    PERFORM ips.record_employer_contact(s, (SELECT employer_id FROM ips.employer LIMIT 1), pg_temp.at(date '2025-01-02' + d), true, e);
    RETURN t;
END $$;
SELECT is(pg_temp.item(pg_temp.v4team(30), 'V4', '2025-01-01', '2025-12-31'), '5 30.00', 'V4: 30 days -> 5');
SELECT is(pg_temp.item(pg_temp.v4team(31), 'V4', '2025-01-01', '2025-12-31'), '4 31.00', 'V4: 31 days -> 4');
SELECT is(pg_temp.item(pg_temp.v4team(60), 'V4', '2025-01-01', '2025-12-31'), '4 60.00', 'V4: 60 days -> 4');
SELECT is(pg_temp.item(pg_temp.v4team(61), 'V4', '2025-01-01', '2025-12-31'), '3 61.00', 'V4: 61 days -> 3');
SELECT is(pg_temp.item(pg_temp.v4team(150), 'V4', '2025-01-01', '2025-12-31'), '3 150.00', 'V4: 150 days -> 3');
SELECT is(pg_temp.item(pg_temp.v4team(151), 'V4', '2025-01-01', '2025-12-31'), '2 151.00', 'V4: 151 days -> 2');
SELECT is(pg_temp.item(pg_temp.v4team(270), 'V4', '2025-01-01', '2025-12-31'), '2 270.00', 'V4: 270 days -> 2');
SELECT is(pg_temp.item(pg_temp.v4team(271), 'V4', '2025-01-01', '2025-12-31'), '1 271.00', 'V4: 271 days -> 1');

-- V4, a team with several entrants and contacts that do not count.
SELECT ips.add_team('V4 mixed', 'Pohjois-Savo') AS tm \gset
SELECT ips.add_staff(:tm, 'Mixed spec', 'specialist') AS sm \gset
SELECT pg_temp.engaged(:tm, :sm, 'v4m-a', '2025-03-03') AS ea \gset
SELECT pg_temp.engaged(:tm, :sm, 'v4m-b', '2025-03-10') AS eb \gset
SELECT pg_temp.engaged(:tm, :sm, 'v4m-old', '2025-01-10') AS eold \gset
-- a: by phone on day 5 (not face to face), about a work trial on day 10 (not competitive),
--    made by the client in person on day 20: 20 days
SELECT ips.record_employer_contact(:sm, :emp, pg_temp.at('2025-03-08'), false, :ea);
SELECT ips.record_employer_contact(:sm, :emp, pg_temp.at('2025-03-13'), true, :ea, false, false);
SELECT ips.record_employer_contact(:sm, :emp, pg_temp.at('2025-03-23'), true, :ea, true);
-- b: a generic job-development visit on day 1 does not count; for b on day 41
SELECT ips.record_employer_contact(:sm, :emp, pg_temp.at('2025-03-11'), true);
SELECT ips.record_employer_contact(:sm, :emp, pg_temp.at('2025-04-20'), true, :eb);
-- the old entrant (before the period) is not counted
SELECT ips.record_employer_contact(:sm, :emp, pg_temp.at('2025-03-20'), true, :eold);
SELECT is(pg_temp.item(:tm, 'V4', '2025-03-01', '2025-04-30'), '4 30.50', 'V4: mean of 20 and 41 days = 30.5 -> 4');
SELECT is((SELECT (evidence ->> 'entrants') || ' ' || (evidence #>> '{episodes,0,days}') || ' ' || (evidence #>> '{episodes,1,days}')
             FROM ips.fidelity(:tm, '2025-03-01', '2025-04-30') WHERE item = 'V4'),
          '2 20 41', 'V4 evidence: two entrants, 20 and 41 days');
-- known at the period end 2025-04-15: b has no contact yet and counts 2025-03-10 .. 04-15 = 36 days: (20 + 36) / 2 = 28
SELECT is(pg_temp.item(:tm, 'V4', '2025-03-01', '2025-04-15'), '5 28.00', 'V4: an entrant without a contact counts the days to the period end');
SELECT is((SELECT (evidence ->> 'without_employer_contact')::int FROM ips.fidelity(:tm, '2025-03-01', '2025-04-15') WHERE item = 'V4'),
          1, 'V4 evidence: one entrant without a contact');
SELECT is(pg_temp.item(:tm, 'V4', '2025-06-01', '2025-06-30'), '- -', 'V4: no entrants in the period -> not measurable');

-- V6: one specialist, period 2025-03-03 .. 2025-03-16 (2 weeks), n face-to-face contacts.
CREATE FUNCTION pg_temp.v6team(n int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE t bigint; s bigint; emp bigint := (SELECT employer_id FROM ips.employer LIMIT 1);
BEGIN
    t := ips.add_team('V6 ' || n, 'Kainuu');
    s := ips.add_staff(t, 'V6 spec ' || n, 'specialist');
    PERFORM pg_temp.engaged(t, s, 'v6-client-' || n, '2025-02-01');   -- a team with a client (issue 16 item 10)
    FOR i IN 1..n LOOP
        PERFORM ips.record_employer_contact(s, emp, pg_temp.at(date '2025-03-03' + (i - 1) % 14), true);
    END LOOP;
    -- not counted: by phone, and outside the period
    PERFORM ips.record_employer_contact(s, emp, pg_temp.at('2025-03-05'), false);
    PERFORM ips.record_employer_contact(s, emp, pg_temp.at('2025-03-17'), true);
    PERFORM ips.record_employer_contact(s, emp, pg_temp.at('2025-03-02'), true);
    RETURN t;
END $$;
SELECT is(pg_temp.item(pg_temp.v6team(12), 'V6', '2025-03-03', '2025-03-16'), '5 6.00', 'V6: 12 contacts in 2 weeks = 6 -> 5');
SELECT is(pg_temp.item(pg_temp.v6team(11), 'V6', '2025-03-03', '2025-03-16'), '4 5.50', 'V6: 5.5 -> 4');
SELECT is(pg_temp.item(pg_temp.v6team(10), 'V6', '2025-03-03', '2025-03-16'), '4 5.00', 'V6: 5 -> 4');
SELECT is(pg_temp.item(pg_temp.v6team(9), 'V6', '2025-03-03', '2025-03-16'), '3 4.50', 'V6: 4.5 -> 3');
SELECT is(pg_temp.item(pg_temp.v6team(8), 'V6', '2025-03-03', '2025-03-16'), '3 4.00', 'V6: 4 -> 3');
SELECT is(pg_temp.item(pg_temp.v6team(7), 'V6', '2025-03-03', '2025-03-16'), '2 3.50', 'V6: 3.5 -> 2');
SELECT is(pg_temp.item(pg_temp.v6team(4), 'V6', '2025-03-03', '2025-03-16'), '2 2.00', 'V6: 2 -> 2');
SELECT is(pg_temp.item(pg_temp.v6team(3), 'V6', '2025-03-03', '2025-03-16'), '1 1.50', 'V6: 1.5 -> 1');

-- V6, two specialists: 12 contacts by one, none by the other, one week: 12 / (2 x 1) = 6 -> 5
SELECT ips.add_team('V6 pair', 'Kainuu') AS tp \gset
SELECT ips.add_staff(:tp, 'Pair 1', 'specialist') AS p1 \gset
SELECT ips.add_staff(:tp, 'Pair 2', 'specialist') AS p2 \gset
SELECT pg_temp.engaged(:tp, :p2, 'v6-pair-client', '2025-02-01');
SELECT count(ips.record_employer_contact(:p1, :emp, pg_temp.at(date '2025-03-03' + i % 7), true)) FROM generate_series(1, 12) i;
SELECT is(pg_temp.item(:tp, 'V6', '2025-03-03', '2025-03-09'), '5 6.00', 'V6: 12 contacts / 2 specialists / 1 week = 6 -> 5');
SELECT is((SELECT evidence #>> '{per_specialist,1,contacts}' FROM ips.fidelity(:tp, '2025-03-03', '2025-03-09') WHERE item = 'V6'),
          '0', 'V6 evidence: per-specialist contacts');

-- V6, small caseload: 2 job seekers; 4 contacts in a week = 2 per job seeker -> counts as 6
SELECT ips.add_team('V6 small', 'Kainuu') AS ts \gset
SELECT ips.add_staff(:ts, 'Small', 'specialist') AS ss \gset
SELECT pg_temp.engaged(:ts, :ss, 'v6s-a', '2025-02-01') AS sa \gset
SELECT pg_temp.engaged(:ts, :ss, 'v6s-b', '2025-02-01') AS sb \gset
SELECT ips.transition(:sa, 'job_search', '2025-02-10 12:00+02');
SELECT ips.transition(:sb, 'job_search', '2025-02-10 12:00+02');
SELECT count(ips.record_employer_contact(:ss, :emp, pg_temp.at(date '2025-03-03' + i), true)) FROM generate_series(0, 3) i;
SELECT is(pg_temp.item(:ts, 'V6', '2025-03-03', '2025-03-09'), '5 6.00', 'V6: 2 job seekers, 2 contacts each a week counts as 6 -> 5');
SELECT is((SELECT (evidence #>> '{per_specialist,0,per_week}') || ' ' || (evidence #>> '{per_specialist,0,job_seekers}')
             FROM ips.fidelity(:ts, '2025-03-03', '2025-03-09') WHERE item = 'V6'),
          '4.00 2', 'V6 evidence: 4 a week, 2 job seekers');
-- in the next week only 3 contacts: 1.5 per job seeker, the rule does not apply: 3 -> 2
SELECT count(ips.record_employer_contact(:ss, :emp, pg_temp.at(date '2025-03-10' + i), true)) FROM generate_series(0, 2) i;
SELECT is(pg_temp.item(:ts, 'V6', '2025-03-10', '2025-03-16'), '2 3.00', 'V6: 1.5 per job seeker is not enough: 3 -> 2');

-- V13: one specialist with 10 scheduled hours a week (600 min); week k has one community
-- contact of m_k minutes, and 100 office minutes that do not count.
SELECT ips.add_team('V13', 'HUS') AS tv \gset
SELECT ips.add_staff(:tv, 'Community', 'specialist', 1.0, NULL, 1.0, 10) AS sv \gset
SELECT pg_temp.engaged(:tv, :sv, 'v13', '2025-02-01') AS ev \gset
SELECT count(ips.record_contact(:ev, :sv, pg_temp.at(date '2025-03-05' + 7 * (k::int - 1)), 'client', 'in_person', 'community', m)
             + ips.record_contact(:ev, :sv, pg_temp.at(date '2025-03-06' + 7 * (k::int - 1)), 'client', 'in_person', 'office', 100))
  FROM unnest(ARRAY[390, 389, 300, 299, 240, 239, 180, 179]) WITH ORDINALITY AS w(m, k);
SELECT is(pg_temp.item(:tv, 'V13', '2025-03-03', '2025-03-09'), '5 65.00', 'V13: 390 / 600 = 65 % -> 5');
SELECT is(pg_temp.item(:tv, 'V13', '2025-03-10', '2025-03-16'), '4 64.83', 'V13: 389 / 600 = 64.83 % -> 4');
SELECT is(pg_temp.item(:tv, 'V13', '2025-03-17', '2025-03-23'), '4 50.00', 'V13: 300 / 600 = 50 % -> 4');
SELECT is(pg_temp.item(:tv, 'V13', '2025-03-24', '2025-03-30'), '3 49.83', 'V13: 299 / 600 -> 3');
SELECT is(pg_temp.item(:tv, 'V13', '2025-03-31', '2025-04-06'), '3 40.00', 'V13: 240 / 600 = 40 % -> 3');
SELECT is(pg_temp.item(:tv, 'V13', '2025-04-07', '2025-04-13'), '2 39.83', 'V13: 239 / 600 -> 2');
SELECT is(pg_temp.item(:tv, 'V13', '2025-04-14', '2025-04-20'), '2 30.00', 'V13: 180 / 600 = 30 % -> 2');
SELECT is(pg_temp.item(:tv, 'V13', '2025-04-21', '2025-04-27'), '1 29.83', 'V13: 179 / 600 -> 1');
-- two weeks together: (390 + 389) / 1200 = 64.92 % -> 4
SELECT is(pg_temp.item(:tv, 'V13', '2025-03-03', '2025-03-16'), '4 64.92', 'V13: two weeks, 779 / 1200 -> 4');
SELECT is((SELECT (evidence ->> 'community_minutes') || ' ' || (evidence ->> 'scheduled_minutes')
             FROM ips.fidelity(:tv, '2025-03-03', '2025-03-16') WHERE item = 'V13'),
          '779 1200.00', 'V13 evidence: minutes and scheduled minutes');

SELECT * FROM finish();
ROLLBACK;
