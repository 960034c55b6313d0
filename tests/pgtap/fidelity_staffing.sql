-- Fidelity S1 (caseload) and S2 (employment services staff), reference data, argument errors.
--
-- S1 = client-days of active episodes (entry_on <= day < closed_on) in the period
--      / days in the period / specialist FTE.  Anchors: <=20 -> 5, 21-25 -> 4, 26-30 -> 3,
--      31-40 -> 2, >=41 -> 1.
-- S2 = sum(fte x employment_share) / sum(fte) x 100.  Anchors: >=96 -> 5, 90-95 -> 4,
--      75-89 -> 3, 60-74 -> 2, <60 -> 1.
BEGIN;
SELECT plan(38);

\ir fidelity_helpers.psql
CREATE FUNCTION pg_temp.s1(team bigint, ps date, pe date) RETURNS text LANGUAGE sql AS $$
    SELECT score || ' ' || measure FROM ips.fidelity(team, ps, pe) WHERE item = 'S1'
$$;
CREATE FUNCTION pg_temp.s2(team bigint) RETURNS text LANGUAGE sql AS $$
    SELECT score || ' ' || measure FROM ips.fidelity(team, '2025-03-01', '2025-03-31') WHERE item = 'S2'
$$;

-- Reference data
SELECT is((SELECT count(*)::int FROM ips.fidelity_item), 25, '25 fidelity items');
SELECT is((SELECT string_agg(item, ' ' ORDER BY ordinal) FROM ips.fidelity_item WHERE computed),
          'S1 S2 V4 V6 V8 V9 V10 V12 V13', 'nine items are computed from the records');
SELECT is((SELECT count(*)::int FROM ips.fidelity_anchor), 45, 'five anchors for each computed item');
SELECT is(ips.label('V4', 'fi'), 'Nopea työnhaun aloitus', 'item names are labels: V4 in Finnish');
SELECT is(ips.label('S1', 'sv'), 'Antal klienter per arbetstränare', 'S1 in Swedish');
SELECT is(ips.label('V12', 'en'), 'Time-unlimited follow-along supports', 'V12 in English');
SELECT is((SELECT count(*)::int FROM ips.label_text WHERE category = 'fidelity_item'), 75, '25 items x 3 languages in ips.label_text');
UPDATE ips.fidelity_item SET name_fi = 'Nopea työnhaku' WHERE item = 'V4';
SELECT is(ips.label('V4', 'fi'), 'Nopea työnhaku', 'a region''s correction of an item name reaches ips.label');
-- pg_restore inserts dumped rows over the defaults: the row of the same key is replaced
INSERT INTO ips.fidelity_anchor (item, score, threshold, anchor) VALUES ('S1', 5, 18, '≤ 18');
SELECT is((SELECT threshold FROM ips.fidelity_anchor WHERE item = 'S1' AND score = 5), 18::numeric,
          'a restored anchor row replaces the default');
UPDATE ips.fidelity_anchor SET threshold = 20, anchor = '≤ 20' WHERE item = 'S1' AND score = 5;
SELECT is(ips.fidelity_anchor_score('V6', 5.99), 4, 'anchor lookup: 5.99 contacts a week is a 4');
SELECT is(ips.fidelity_anchor_score('S1', 20.01), 4, 'anchor lookup: 20.01 clients per FTE is a 4');

-- Argument errors
SELECT throws_ok($$SELECT * FROM ips.fidelity(-1, '2025-01-01', '2025-01-31')$$, 'P0002', NULL, 'unknown team: P0002');
SELECT ips.add_team('Staffing S1a', 'Pohjanmaa') AS t1 \gset
SELECT throws_ok(format($$SELECT * FROM ips.fidelity(%s, '2025-02-01', '2025-01-31')$$, :t1), '22023',
                 'period end 2025-01-31 is before its start 2025-02-01', 'reversed period: 22023');
-- tomorrow in the region's time zone (current_date is the session's: from 22:00 UTC on, Helsinki's today)
SELECT throws_ok(format($$SELECT * FROM ips.fidelity(%s, '2025-01-01', ips.local_date(now()) + 1)$$, :t1), '22023', NULL,
                 'a period ending in the future: 22023');
SELECT throws_ok(format($$SELECT * FROM ips.fidelity(%s, NULL, '2025-01-31')$$, :t1), '22004', NULL, 'NULL period start: 22004');

-- S1, team 1: one full-time specialist, 20 clients engaged 2025-01-10 and still open.
SELECT ips.add_staff(:t1, 'Anna', 'specialist', 1.0) AS a1 \gset
SELECT count(pg_temp.engaged(:t1, :a1, 's1a-' || i, '2025-01-10')) FROM generate_series(1, 20) i;
-- a 21st client engaged on 2025-01-10 and closed on 2025-02-01: the closing day is not active
SELECT pg_temp.engaged(:t1, :a1, 's1a-closed', '2025-01-10') AS closed_ep \gset
SELECT ips.transition(:closed_ep, 'closed', '2025-02-01 12:00+02', 'client_choice');
SELECT is(pg_temp.s1(:t1, '2025-02-01', '2025-02-28'), '5 20.00', 'S1: 20 clients per FTE -> 5');
-- a 22nd client engaged 2025-03-01
SELECT pg_temp.engaged(:t1, :a1, 's1a-new', '2025-03-01') AS new_ep \gset
SELECT is(pg_temp.s1(:t1, '2025-03-01', '2025-03-31'), '4 21.00', 'S1: 21 clients per FTE -> 4');
-- 2025-02-15 .. 2025-03-14 = 28 days; the new client is active 14 of them: 20 + 14/28 = 20.5
SELECT is(pg_temp.s1(:t1, '2025-02-15', '2025-03-14'), '4 20.50', 'S1: a period cutting an episode counts its share: 20.5 -> 4');
SELECT is((SELECT (evidence ->> 'client_days')::int FROM ips.fidelity(:t1, '2025-02-15', '2025-03-14') WHERE item = 'S1'),
          20 * 28 + 14, 'S1 evidence: client-days 20 x 28 + 14');
SELECT is((SELECT evidence -> 'episodes' @> jsonb_build_array(jsonb_build_object('episode_id', :new_ep, 'active_days', 14))
             FROM ips.fidelity(:t1, '2025-02-15', '2025-03-14') WHERE item = 'S1'), true, 'S1 evidence lists the episode with its 14 days');
-- January: 21 clients from 2025-01-10 = 22 days of 31: 21 x 22 / 31 = 14.90
SELECT is(pg_temp.s1(:t1, '2025-01-01', '2025-01-31'), '5 14.90', 'S1: entry within the period: 21 x 22 / 31 = 14.90');

-- S1, team 2: 0.8 FTE; 20 clients -> 25; 21 -> 26.25
SELECT ips.add_team('Staffing S1b', 'Pohjanmaa') AS t2 \gset
SELECT ips.add_staff(:t2, 'Bo', 'specialist', 0.8) AS b1 \gset
SELECT count(pg_temp.engaged(:t2, :b1, 's1b-' || i, '2025-01-10')) FROM generate_series(1, 20) i;
SELECT pg_temp.engaged(:t2, :b1, 's1b-new', '2025-03-01');
SELECT is(pg_temp.s1(:t2, '2025-02-01', '2025-02-28'), '4 25.00', 'S1: 25 per FTE -> 4');
SELECT is(pg_temp.s1(:t2, '2025-03-01', '2025-03-31'), '3 26.25', 'S1: 26.25 per FTE -> 3');
SELECT is((SELECT evidence #>> '{per_specialist,0,clients_per_fte}' FROM ips.fidelity(:t2, '2025-03-01', '2025-03-31') WHERE item = 'S1'),
          '26.25', 'S1 evidence: per-specialist clients per FTE');

-- S1, team 3: 0.5 FTE; 15 clients -> 30; a 16th engaged 2025-03-15, period 03-01..03-28: 15.5 / 0.5 = 31
SELECT ips.add_team('Staffing S1c', 'Pohjanmaa') AS t3 \gset
SELECT ips.add_staff(:t3, 'Cia', 'specialist', 0.5) AS c1 \gset
SELECT count(pg_temp.engaged(:t3, :c1, 's1c-' || i, '2025-01-10')) FROM generate_series(1, 15) i;
SELECT pg_temp.engaged(:t3, :c1, 's1c-new', '2025-03-15');
SELECT is(pg_temp.s1(:t3, '2025-02-01', '2025-02-28'), '3 30.00', 'S1: 30 per FTE -> 3');
SELECT is(pg_temp.s1(:t3, '2025-03-01', '2025-03-28'), '2 31.00', 'S1: 31 per FTE -> 2');

-- S1, team 4: 0.5 FTE; 20 clients -> 40; a 21st engaged 2025-03-15: 20.5 / 0.5 = 41
SELECT ips.add_team('Staffing S1d', 'Pohjanmaa') AS t4 \gset
SELECT ips.add_staff(:t4, 'Dan', 'specialist', 0.5) AS d1 \gset
SELECT count(pg_temp.engaged(:t4, :d1, 's1d-' || i, '2025-01-10')) FROM generate_series(1, 20) i;
SELECT pg_temp.engaged(:t4, :d1, 's1d-new', '2025-03-15');
SELECT is(pg_temp.s1(:t4, '2025-02-01', '2025-02-28'), '2 40.00', 'S1: 40 per FTE -> 2');
SELECT is(pg_temp.s1(:t4, '2025-03-01', '2025-03-28'), '1 41.00', 'S1: 41 per FTE -> 1');

-- S1 with no specialist: not measurable, and 'missing' without a review
SELECT ips.add_team('No specialists', 'Pohjanmaa') AS t0 \gset
SELECT is((SELECT source || ' ' || coalesce(score::text, '-') FROM ips.fidelity(:t0, '2025-03-01', '2025-03-31') WHERE item = 'S1'),
          'missing -', 'S1 without specialists is missing');

-- S2: FTE-weighted.  1.0 x 1.00 + 0.5 x 0.88 = 1.44; / 1.5 = 96 %
CREATE FUNCTION pg_temp.s2team(name text, f1 numeric, sh1 numeric, f2 numeric DEFAULT NULL, sh2 numeric DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE t bigint;
BEGIN
    t := ips.add_team(name, 'Kainuu');
    PERFORM ips.add_staff(t, name || ' 1', 'specialist', f1, NULL, sh1);
    IF f2 IS NOT NULL THEN
        PERFORM ips.add_staff(t, name || ' 2', 'specialist', f2, NULL, sh2);
    END IF;
    PERFORM ips.add_staff(t, name || ' lead', 'supervisor', 1.0, NULL, 0.1);   -- supervisors do not count
    PERFORM ips.refer(ips.add_client(name || ' client'), t, '2025-02-01');   -- a team with a client (issue 16 item 10)
    RETURN t;
END $$;
SELECT is(pg_temp.s2(pg_temp.s2team('S2 96', 1.0, 1.00, 0.5, 0.88)), '5 96.00', 'S2: (1.0 + 0.44) / 1.5 = 96 % -> 5');
SELECT is(pg_temp.s2(pg_temp.s2team('S2 95', 1.0, 1.00, 0.5, 0.85)), '4 95.00', 'S2: (1.0 + 0.425) / 1.5 = 95 % -> 4');
SELECT is(pg_temp.s2(pg_temp.s2team('S2 90', 1.0, 0.90)), '4 90.00', 'S2: 90 % -> 4');
SELECT is(pg_temp.s2(pg_temp.s2team('S2 89', 1.0, 0.89)), '3 89.00', 'S2: 89 % -> 3');
SELECT is(pg_temp.s2(pg_temp.s2team('S2 75', 1.0, 0.75)), '3 75.00', 'S2: 75 % -> 3');
SELECT is(pg_temp.s2(pg_temp.s2team('S2 74', 1.0, 0.74)), '2 74.00', 'S2: 74 % -> 2');
SELECT is(pg_temp.s2(pg_temp.s2team('S2 60', 1.0, 0.60)), '2 60.00', 'S2: 60 % -> 2');
SELECT is(pg_temp.s2(pg_temp.s2team('S2 59', 1.0, 0.59)), '1 59.00', 'S2: 59 % -> 1');
-- a region's correction of an anchor changes the score at once
UPDATE ips.fidelity_anchor SET threshold = 59 WHERE item = 'S2' AND score = 2;
SELECT is(pg_temp.s2((SELECT team_id FROM ips.team WHERE name = 'S2 59')), '2 59.00', 'S2: with the anchor corrected to 59, 59 % -> 2');

SELECT * FROM finish();
ROLLBACK;
