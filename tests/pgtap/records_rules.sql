-- Issue 16 items 6 to 10: alerts follow a handover, studying clients and rapid job search,
-- V13 counts in-person time only, one way to record an employer visit, a period without
-- clients is not measurable.  Expected figures worked out by hand from the defaults.
BEGIN;
SELECT plan(23);
SET LOCAL timezone = 'Europe/Helsinki';
\ir fidelity_helpers.psql
CREATE FUNCTION pg_temp.item(team bigint, code text, ps date, pe date) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(score::text, '-') || ' ' || coalesce(measure::text, '-') || ' ' || source
      FROM ips.fidelity(team, ps, pe) WHERE item = code
$$;
-- the alerts of an episode's rule as of a day: 'staff severity:days_overdue', or NULL
CREATE FUNCTION pg_temp.al(e bigint, r text, d date) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(a.staff_id || ' ' || a.severity || ':' || a.days_overdue, ',' ORDER BY a.due_on)
      FROM ips.episode_alerts(e, d) a WHERE a.rule = r
$$;

SELECT ips.add_team('Records rules', 'Pohjanmaa') AS t \gset
SELECT ips.add_staff(:t, 'A', 'specialist') AS a \gset
SELECT ips.add_staff(:t, 'B', 'specialist') AS b \gset
SELECT ips.add_employer('Satama Oy') AS emp \gset

-- Item 6.  Referred Mon 2025-03-03 to A, no contact: referral_response due 03-10.
-- Handed to B from 03-12: as of 03-12 the alert (overdue 2 days) is B's; as of 03-11 still A's.
SELECT ips.add_client('handover') AS c6 \gset
SELECT ips.refer(:c6, :t, '2025-03-03') AS e6 \gset
SELECT ips.assign_specialist(:e6, :a, '2025-03-03');
SELECT ips.assign_specialist(:e6, :b, '2025-03-12');
SELECT is(pg_temp.al(:e6, 'referral_response', '2025-03-11'), :a || ' overdue:1', 'handover: the day before, the overdue alert is A''s');
SELECT is(pg_temp.al(:e6, 'referral_response', '2025-03-12'), :b || ' overdue:2',
          'handover: from the handover on, the alert that fell due earlier is B''s');
SELECT is((SELECT count(*)::int FROM ips.contact_alerts('2025-03-12', :t) x WHERE x.episode_id = :e6 AND x.staff_id = :a), 0,
          'handover: nothing of the episode is left with A in ips.contact_alerts');
SELECT is((SELECT x.staff_id FROM ips.expectations(:t, '2025-03-01', '2025-03-12') x
            WHERE x.episode_id = :e6 AND x.rule = 'referral_response'), :a::bigint,
          'the expectation (a record of who carried it on its due day) stays A''s');

-- Item 7.  Engaged Mon 2025-03-03 (rapid_job_search due 04-02), studies from 03-10 to 05-01
-- (studying at the end of 03-10 .. 05-01: 53 days).  The clock stops while the client studies:
-- 6 days counted (03-04 .. 03-09), 24 more from 05-02: due 05-25.
SELECT pg_temp.engaged(:t, :a, 'studies', '2025-03-03') AS e7 \gset
SELECT is(pg_temp.al(:e7, 'rapid_job_search', '2025-03-30'), :a || ' due:-3', 'rapid job search: due soon before the studies (horizon 7)');
SELECT ips.start_studies(:e7, '2025-03-10') AS st \gset
SELECT is(pg_temp.al(:e7, 'rapid_job_search', '2025-03-30'), NULL, 'rapid job search: silent once studies started');
SELECT is(pg_temp.al(:e7, 'rapid_job_search', '2025-04-10'), NULL, 'rapid job search: does not fire while the client studies (1.1: overdue 8)');
SELECT ips.end_studies(:st, '2025-05-01');
SELECT is(pg_temp.al(:e7, 'rapid_job_search', '2025-05-17'), NULL, 'after the studies: 8 days before the shifted due day, silent');
SELECT is(pg_temp.al(:e7, 'rapid_job_search', '2025-05-18'), :a || ' due:-7', 'after the studies: due 05-25 (6 + 24 days outside studies)');
SELECT is(pg_temp.al(:e7, 'rapid_job_search', '2025-05-26'), :a || ' overdue:1', 'after the studies: overdue the day after 05-25');
SELECT is(pg_temp.al(:e7, 'no_contact', '2025-04-10'), :a || ' overdue:15',
          'other rules still apply to a studying client (no_contact: referral 02-24 + 30 = 03-26, overdue 15 on 04-10)');

-- Item 8.  A specialist of 10 h a week (600 min); week 2025-03-03 .. 03-09: 240 min in person in
-- the community, 120 min by phone (setting not given) and 60 min by video marked community:
-- V13 = 240 / 600 = 40 % -> 3 (1.1: 420 / 600 = 70 % -> 5).
SELECT ips.add_team('Community time', 'HUS') AS tv \gset
SELECT ips.add_staff(:tv, 'V', 'specialist', 1.0, NULL, 1.0, 10) AS v \gset
SELECT pg_temp.engaged(:tv, :v, 'community-1', '2025-02-01') AS ev \gset
SELECT ips.record_contact(:ev, :v, '2025-03-04 10:00+02', 'client', 'in_person', 'community', 240);
SELECT ips.record_contact(:ev, :v, '2025-03-05 10:00+02', 'client', 'phone', minutes => 120) AS phone \gset
SELECT ips.record_contact(:ev, :v, '2025-03-06 10:00+02', 'client', 'video', 'community', 60);
SELECT is(pg_temp.item(:tv, 'V13', '2025-03-03', '2025-03-09'), '3 40.00 computed', 'V13: 240 / 600 = 40 % -> 3: phone and video do not count');
SELECT is((SELECT setting FROM ips.contact WHERE contact_id = :phone), 'office', 'record_contact: a phone call without a setting is not community');
SELECT ips.record_contact(:ev, :v, '2025-03-07 10:00+02', 'client') AS visit \gset
SELECT is((SELECT setting FROM ips.contact WHERE contact_id = :visit), 'community', 'record_contact: an in-person contact still defaults to community');
-- 60 more in-person minutes outside the office: 300 / 600 = 50 % -> 4 (the boundary)
SELECT ips.record_contact(:ev, :v, '2025-03-08 10:00+02', 'client', 'in_person', 'community', 60);
SELECT is(pg_temp.item(:tv, 'V13', '2025-03-03', '2025-03-09'), '4 50.00 computed', 'V13: 300 / 600 = 50 % -> 4');

-- Item 9.  An in-person employer_for_client contact is refused with the way to record it.
SELECT throws_ok(format($$SELECT ips.record_contact(%s, %s, '2025-03-05 10:00+02', 'employer_for_client', 'in_person')$$, :e7, :a),
                 '22023', 'an in-person employer contact belongs in the job-development log',
                 'record_contact refuses an in-person employer_for_client contact');
SELECT throws_ok(format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind, mode) VALUES (%s, %s, '2025-03-05 10:00+02', 'employer_for_client', 'in_person')$$, :e7, :a),
                 '23514', NULL, 'a direct INSERT of one is refused by the table');
SELECT lives_ok(format($$SELECT ips.record_contact(%s, %s, '2025-03-05 10:00+02', 'employer_for_client', 'phone')$$, :e7, :a),
                'an employer called about the client by phone is still a contact of the episode');

-- Item 10.  A team with a specialist and employer contacts but no client yet: S1, S2, V6 and
-- V13 are not measurable (1.1: S1 5, S2 5, V6 and V13 1 -> total 12).  A client referred on the
-- period's last day makes it measurable; a client whose episode closed before the period does not.
SELECT ips.add_team('Before any client', 'Kainuu') AS t0 \gset
SELECT ips.add_staff(:t0, 'Z', 'specialist') AS z \gset
SELECT ips.record_employer_contact(:z, :emp, '2025-03-04 10:00+02', true);
SELECT is((SELECT string_agg(item || ' ' || source || ' ' || coalesce(score::text, '-'), ', ' ORDER BY item)
             FROM ips.fidelity(:t0, '2025-03-03', '2025-03-16') WHERE item IN ('S1', 'S2', 'V6', 'V13')),
          'S1 missing -, S2 missing -, V13 missing -, V6 missing -', 'no clients: S1, S2, V6, V13 not measurable');
SELECT is((SELECT evidence ->> 'not_measurable' FROM ips.fidelity(:t0, '2025-03-03', '2025-03-16') WHERE item = 'S1'),
          'the team had no clients in the period', 'with the reason in the evidence');
SELECT is((SELECT total || ' ' || items_scored FROM ips.fidelity_summary(:t0, '2025-03-03', '2025-03-16')), '0 0',
          'no clients: nothing scored (1.1: total 12)');
SELECT ips.refer(ips.add_client('first client'), :t0, '2025-03-16');
SELECT is(pg_temp.item(:t0, 'S1', '2025-03-03', '2025-03-16'), '5 0.00 computed', 'a client referred on the last day: S1 measurable (0 active)');
SELECT is(pg_temp.item(:t0, 'S1', '2025-03-03', '2025-03-15'), '- - missing', 'the day before the referral: still not measurable');

SELECT * FROM finish();
ROLLBACK;
