-- Staff history (issue 16 item 1): a person is counted only for their days on the team,
-- with the FTE, employment share and weekly hours in force on each day.
--
-- Team "Leaving": A and B, 1.0 FTE, 37.5 h a week; 12 engaged clients each since 2025-02-01.
-- B leaves after Sunday 2025-03-16: the 12 clients go to A from Monday 03-17 and
-- ips.end_staff(B, '2025-03-17').  A has 12 face-to-face employer contacts (03-17 .. 03-28,
-- one a day) and 10 in-person contacts of 300 minutes in the community in 03-17 .. 03-26.
--   03-17 .. 03-30 (14 days): S1 = 24 client-days a day / 1.0 FTE = 24 -> 4 (1.1: 24 / 2 = 12 -> 5)
--                             V6 = 12 / (1 specialist x 2 weeks) = 6 -> 5 (1.1: 12 / (2 x 2) = 3 -> 2)
--                             V13 = 3000 / (37.5 x 60 x 2 = 4500) = 66.67 % -> 5 (1.1: 3000 / 9000 = 33.33 % -> 2)
--   03-03 .. 03-16: S1 = 24 / 2 = 12 -> 5 (earlier periods keep B)
--   03-10 .. 03-23: client-days 24 x 14 = 336, FTE-days 2 x 7 + 1 x 7 = 21: S1 = 16 -> 5;
--                   V6: A 7 contacts (03-17 .. 03-23) in 2 weeks = 3.5, B 0 in 1 week:
--                   (3.5 x 2 + 0 x 1) / 3 specialist-weeks = 2.33 -> 2
--   the boundary: 03-16 alone (B's last day) S1 = 24 / 2 = 12; 03-17 alone S1 = 24 / 1 = 24 -> 4
BEGIN;
SELECT plan(40);
SET LOCAL timezone = 'Europe/Helsinki';
\ir fidelity_helpers.psql
CREATE FUNCTION pg_temp.item(team bigint, code text, ps date, pe date) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(score::text, '-') || ' ' || coalesce(measure::text, '-') FROM ips.fidelity(team, ps, pe) WHERE item = code
$$;

SELECT ips.add_team('Leaving', 'Pohjanmaa') AS t \gset
SELECT ips.add_staff(:t, 'A', 'specialist') AS a \gset
SELECT ips.add_staff(:t, 'B', 'specialist') AS b \gset
SELECT ips.add_employer('Satama Oy') AS emp \gset
CREATE TEMP TABLE eps AS
SELECT i, CASE WHEN i <= 12 THEN :a ELSE :b END AS staff_id,
       pg_temp.engaged(:t, CASE WHEN i <= 12 THEN :a ELSE :b END, 'leave-' || i, '2025-02-01') AS episode_id
  FROM generate_series(1, 24) i;

-- B cannot leave while carrying episodes
SELECT throws_ok(format($$SELECT ips.end_staff(%s, '2025-03-17')$$, :b), '55000', NULL,
                 'end_staff: a specialist with open episodes must hand them over first');
SELECT ips.assign_specialist(episode_id, :a, '2025-03-17') FROM eps WHERE staff_id = :b;
SELECT lives_ok(format($$SELECT ips.end_staff(%s, '2025-03-17')$$, :b), 'end_staff after the handover');
SELECT is((SELECT ended_on FROM ips.staff WHERE staff_id = :b), date '2025-03-17', 'ended_on is the first day off the team');
SELECT throws_ok(format($$SELECT ips.end_staff(%s, '2025-03-20')$$, :b), '55000', NULL, 'end_staff twice: 55000');
SELECT throws_ok($$SELECT ips.end_staff(-1, '2025-03-20')$$, 'P0002', NULL, 'end_staff of an unknown person: P0002');
SELECT throws_ok(format($$SELECT ips.end_staff(%s, NULL)$$, :a), '22004', NULL, 'end_staff without a date: 22004');
SELECT throws_ok(format($$SELECT ips.assign_specialist(%s, %s, '2025-03-17')$$, (SELECT episode_id FROM eps WHERE i = 1), :b),
                 '22023', NULL, 'a specialist who left cannot take an episode on their first day off the team');
SELECT throws_ok(format($$INSERT INTO ips.specialist_assignment (episode_id, staff_id, from_on) VALUES (%s, %s, '2025-03-18')$$,
                        (SELECT episode_id FROM eps WHERE i = 1), :b),
                 '22023', NULL, 'nor by a direct INSERT');

-- A's facts after the handover
SELECT count(ips.record_employer_contact(:a, :emp, ips.local_midnight(date '2025-03-17' + k) + interval '10 hours', true))
  FROM generate_series(0, 11) k;
SELECT count(ips.record_contact((SELECT episode_id FROM eps WHERE i = 1), :a,
                                ips.local_midnight(date '2025-03-17' + k) + interval '9 hours', 'client', 'in_person', 'community', 300))
  FROM generate_series(0, 9) k;

SELECT is(pg_temp.item(:t, 'S1', '2025-03-17', '2025-03-30'), '4 24.00', 'S1 after B left: 24 clients / 1.0 FTE -> 4');
SELECT is(pg_temp.item(:t, 'V6', '2025-03-17', '2025-03-30'), '5 6.00', 'V6 after B left: 12 / (1 x 2 weeks) = 6 -> 5');
SELECT is(pg_temp.item(:t, 'V13', '2025-03-17', '2025-03-30'), '5 66.67', 'V13 after B left: 3000 / 4500 min = 66.67 % -> 5');
SELECT is((SELECT (evidence ->> 'scheduled_minutes') FROM ips.fidelity(:t, '2025-03-17', '2025-03-30') WHERE item = 'V13'),
          '4500.00', 'V13 evidence: only A''s 37.5 h x 2 weeks are scheduled');
SELECT is(pg_temp.item(:t, 'S1', '2025-03-03', '2025-03-16'), '5 12.00', 'S1 before B left is unchanged: 24 / 2 = 12 -> 5');
SELECT is(pg_temp.item(:t, 'S1', '2025-03-10', '2025-03-23'), '5 16.00', 'S1 across the departure: 336 client-days / 21 FTE-days = 16');
SELECT is(pg_temp.item(:t, 'V6', '2025-03-10', '2025-03-23'), '2 2.33', 'V6 across the departure: (3.5 x 2 + 0 x 1) / 3 specialist-weeks = 2.33 -> 2');
SELECT is((SELECT (evidence ->> 'specialist_weeks') FROM ips.fidelity(:t, '2025-03-10', '2025-03-23') WHERE item = 'V6'),
          '3.00', 'V6 evidence: 3 specialist-weeks (A 2, B 1)');
SELECT is(pg_temp.item(:t, 'S1', '2025-03-16', '2025-03-16'), '5 12.00', 'S1 on B''s last day: 24 / 2 = 12');
SELECT is(pg_temp.item(:t, 'S1', '2025-03-17', '2025-03-17'), '4 24.00', 'S1 on B''s first day off the team: 24 / 1 = 24 -> 4');
SELECT is((SELECT jsonb_array_length(evidence -> 'per_specialist') FROM ips.fidelity(:t, '2025-03-17', '2025-03-30') WHERE item = 'S1'),
          1, 'S1 evidence lists only the specialist on the team');

-- the specialist rules: B has no weekly expectations after leaving, A's caseload of 24 > 20 is missed
SELECT is((SELECT count(*)::int FROM ips.expectations(:t, '2025-03-17', '2025-03-30') x
            WHERE x.staff_id = :b AND x.episode_id IS NULL), 0, 'no specialist rule expects anything of B after leaving');
SELECT is((SELECT count(*)::int FROM ips.expectations(:t, '2025-03-03', '2025-03-16') x
            WHERE x.staff_id = :b AND x.rule = 'specialist_employer_contacts'), 2, 'B''s two weeks before leaving are still expected');
SELECT is((SELECT string_agg(x.due_on || ' ' || x.status, ', ' ORDER BY x.due_on) FROM ips.expectations(:t, '2025-03-17', '2025-03-30') x
            WHERE x.staff_id = :a AND x.rule = 'specialist_caseload'),
          '2025-03-23 missed, 2025-03-30 open', 'A''s caseload of 24 per FTE is over 20 on the Sundays after the handover');
SELECT is((SELECT count(*)::int FROM ips.contact_alerts('2025-03-30', :t) x WHERE x.staff_id = :b), 0, 'no alert of B after leaving');
SELECT is((SELECT string_agg(display_name || ':' || active_clients, ' ' ORDER BY staff_id) FROM ips.caseload WHERE team_id = :t),
          'A:24', 'the caseload view shows the specialists on the team today');

-- A part-time specialist added without hours works 37.5 x FTE: 0.5 -> 18.75 h, one week = 1125 min;
-- 600 community minutes = 53.33 % -> 4 (1.1: 37.5 h, 2250 min, 26.67 % -> 1)
SELECT ips.add_team('Part time', 'Kainuu') AS tp \gset
SELECT ips.add_staff(:tp, 'P', 'specialist', 0.5) AS p \gset
SELECT is((SELECT weekly_hours FROM ips.staff WHERE staff_id = :p), 18.75, 'add_staff without hours: 37.5 x 0.5 = 18.75 h');
SELECT pg_temp.engaged(:tp, :p, 'part-1', '2025-02-01') AS pe \gset
SELECT ips.record_contact(:pe, :p, '2025-03-05 10:00+02', 'client', 'in_person', 'community', 600);
SELECT is(pg_temp.item(:tp, 'V13', '2025-03-03', '2025-03-09'), '4 53.33', 'V13: 600 / 1125 min = 53.33 % -> 4');
INSERT INTO ips.staff (team_id, display_name, role, fte) VALUES (:tp, 'Q', 'specialist', 0.4);
SELECT is((SELECT weekly_hours FROM ips.staff WHERE display_name = 'Q'), 15.0, 'a direct INSERT without hours: 37.5 x 0.4 = 15 h');
SELECT ips.add_staff(:tp, 'R', 'specialist', 0.5, NULL, 1.0, 20) AS r \gset
SELECT is((SELECT weekly_hours FROM ips.staff WHERE staff_id = :r), 20::numeric, 'hours given are kept');

-- Dated changes: D full time with 12 clients; from Monday 2025-04-14 0.5 FTE and employment share 0.8.
--   04-07 .. 04-13: S1 = 12 / 1 = 12 -> 5, S2 = 100 % -> 5
--   04-14 .. 04-20: S1 = 12 / 0.5 = 24 -> 4, S2 = 80 % -> 3
--   04-07 .. 04-20: S1 = 168 / 10.5 = 16 -> 5; S2 = (7 x 1 x 1 + 7 x 0.5 x 0.8) / 10.5 = 9.8 / 10.5 = 93.33 % -> 4
--   V13 scheduled 04-07 .. 04-20: 37.5 x 60 + 18.75 x 60 = 3375 min
SELECT ips.add_team('Changing', 'HUS') AS tc \gset
SELECT ips.add_staff(:tc, 'D', 'specialist') AS d \gset
SELECT count(pg_temp.engaged(:tc, :d, 'change-' || i, '2025-02-01')) FROM generate_series(1, 12) i;
SELECT ips.change_staff(:d, '2025-04-14', fte => 0.5, employment_share => 0.8);
SELECT is((SELECT fte || ' ' || employment_share || ' ' || weekly_hours FROM ips.staff WHERE staff_id = :d), '0.5 0.8 18.75',
          'ips.staff holds the values in force now; the hours scale with the FTE');
SELECT is(pg_temp.item(:tc, 'S1', '2025-04-07', '2025-04-13'), '5 12.00', 'S1 before the change: 12 / 1.0');
SELECT is(pg_temp.item(:tc, 'S1', '2025-04-14', '2025-04-20'), '4 24.00', 'S1 from the change: 12 / 0.5 = 24 -> 4');
SELECT is(pg_temp.item(:tc, 'S1', '2025-04-07', '2025-04-20'), '5 16.00', 'S1 across the change: 168 / 10.5 = 16');
SELECT is(pg_temp.item(:tc, 'S2', '2025-04-07', '2025-04-13'), '5 100.00', 'S2 before the change: 100 %');
SELECT is(pg_temp.item(:tc, 'S2', '2025-04-14', '2025-04-20'), '3 80.00', 'S2 from the change: 80 % -> 3');
SELECT is(pg_temp.item(:tc, 'S2', '2025-04-07', '2025-04-20'), '4 93.33', 'S2 across the change: 9.8 / 10.5 = 93.33 % -> 4');
SELECT is((SELECT (evidence ->> 'scheduled_minutes') FROM ips.fidelity(:tc, '2025-04-07', '2025-04-20') WHERE item = 'V13'),
          '3375.00', 'V13 across the change: 2250 + 1125 scheduled minutes');
-- the weekly employer-contact rule needs ceil(6 x FTE in force on the Sunday): 6, then 3; D makes 3 a week
SELECT count(ips.record_employer_contact(:d, :emp, ips.local_midnight(w + k) + interval '10 hours', true))
  FROM unnest(ARRAY[date '2025-04-07', date '2025-04-14']) w, generate_series(0, 2) k;
SELECT is((SELECT string_agg(x.due_on || ' ' || x.status, ', ' ORDER BY x.due_on) FROM ips.expectations(:tc, '2025-04-07', '2025-04-20') x
            WHERE x.rule = 'specialist_employer_contacts'),
          '2025-04-13 missed, 2025-04-20 met_on_time', 'employer contacts: 3 of 6 at full time missed, 3 of 3 at half time met');
SELECT throws_ok(format($$SELECT ips.change_staff(%s, '2025-04-10', fte => 0.8)$$, :d), '22023', NULL,
                 'a change before the last change is refused');
SELECT throws_ok(format($$SELECT ips.change_staff(%s, current_date + 1, fte => 0.8)$$, :d), '22023', NULL,
                 'a change dated in the future is refused');
-- a direct correction of the FTE in force now corrects the latest terms, not the earlier ones
UPDATE ips.staff SET fte = 0.6 WHERE staff_id = :d;
SELECT is((SELECT string_agg(from_on || '=' || fte, ' ' ORDER BY from_on) FROM ips.staff_terms WHERE staff_id = :d),
          '-infinity=1.0 2025-04-14=0.6', 'ips.staff_terms keeps the earlier FTE after a direct correction');

SELECT * FROM finish();
ROLLBACK;
