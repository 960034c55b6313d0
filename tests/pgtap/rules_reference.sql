-- The C engine and the plain-SQL reference (bench/reference_alerts.sql) return
-- the same alerts on a generated region: 3 teams, 6 specialists, 48 episodes with
-- contacts, employer visits, jobs, pauses, closures, ended care relationships and
-- withdrawn consents, built through the public functions.
BEGIN;
SELECT plan(12);
SET LOCAL timezone = 'Europe/Helsinki';
\ir ../../bench/reference_alerts.sql

DO $$
DECLARE
    t bigint; s bigint[] := '{}'; emp bigint; c bigint; e bigint; j bigint; ref date; eng date; i int; d date;
BEGIN
    emp := ips.add_employer('Satama Oy');
    FOR k IN 1..3 LOOP
        t := ips.add_team('Team ' || k, 'Pohjanmaa');
        s := s || ips.add_staff(t, 'Coach ' || k || 'a', 'specialist') || ips.add_staff(t, 'Coach ' || k || 'b', 'specialist', fte => 0.3);
    END LOOP;
    FOR i IN 1..48 LOOP
        c := ips.add_client('ref-' || i);
        PERFORM ips.start_care_relationship(c, 'psykiatria', '2024-06-01');
        IF i % 6 <> 0 THEN PERFORM ips.give_consent(c, 'share_with_care', '2024-06-01'); END IF;
        ref := date '2025-01-06' + (i * 7) % 100;
        e := ips.refer(c, (SELECT team_id FROM ips.staff WHERE staff_id = s[1 + i % 6]), ref);
        PERFORM ips.assign_specialist(e, s[1 + i % 6], ref);
        IF i % 8 = 0 THEN CONTINUE; END IF;                           -- stays referred
        IF i % 4 <> 1 THEN PERFORM ips.record_contact(e, s[1 + i % 6], ref + i % 9 + time '23:30', 'client'); END IF;
        eng := ref + i % 9;
        PERFORM ips.transition(e, 'engaged', eng + time '23:40');
        IF i % 3 = 0 THEN PERFORM ips.complete_career_profile(e, eng + i % 40); END IF;
        IF i % 5 <> 0 THEN PERFORM ips.record_employer_contact(s[1 + i % 6], emp, eng + i % 45 + time '10:00', true, e); END IF;
        IF i % 7 = 0 THEN                                               -- a pause
            PERFORM ips.transition(e, 'on_hold', eng + 10 + time '12:00');
            IF i % 14 = 0 THEN PERFORM ips.transition(e, 'engaged', eng + 10 + i % 20 + time '12:00'); END IF;
        END IF;
        IF i % 9 = 4 THEN PERFORM ips.withdraw_consent(c, 'share_with_care', eng + 20); END IF;
        IF i % 10 = 3 THEN
            PERFORM ips.end_care_relationship((SELECT care_relationship_id FROM ips.care_relationship WHERE client_id = c), eng + 25);
        END IF;
        IF i % 7 <> 0 OR i % 14 = 0 THEN
            IF i % 2 = 0 THEN                                            -- a job
                d := (SELECT ips.local_date(state_since) FROM ips.episode WHERE episode_id = e) + 5 + i % 30;
                IF i % 4 = 0 THEN PERFORM ips.record_contact(e, s[1 + i % 6], d - 2 + time '09:00', 'benefits_counseling', 'phone'); END IF;
                FOR k IN 0..(i % 6) LOOP
                    PERFORM ips.record_contact(e, s[1 + i % 6], d + CASE WHEN i % 4 = 2 THEN 4 ELSE 0 END + k * (3 + i % 11) + time '14:00', 'client',
                                               CASE WHEN k % 3 = 2 THEN 'phone' ELSE 'in_person' END);
                END LOOP;
                j := ips.start_job(e, emp, d);
                IF i % 3 = 1 THEN PERFORM ips.end_job(j, d + 20 + i); END IF;
            END IF;
            IF i % 11 = 0 THEN
                PERFORM ips.record_contact(e, s[1 + i % 6], eng + 30 + time '10:00', 'outreach_attempt', 'phone');
                PERFORM ips.record_contact(e, s[1 + i % 6], eng + 35 + time '10:00', 'outreach_attempt', 'phone');
                PERFORM ips.record_contact(e, s[1 + i % 6], eng + 40 + time '10:00', 'outreach_attempt', 'phone');
                -- closed after the last state change and on or after the episode's last fact
                PERFORM ips.transition(e, 'closed', greatest(eng + 41, (SELECT ips.local_date(state_since) + 1 FROM ips.episode
                                                                       WHERE episode_id = e),
                                                             (SELECT max(ips.local_date(x.at)) FROM ips.contact x WHERE x.episode_id = e),
                                                             (SELECT max(ips.local_date(x.at)) FROM ips.employer_contact x WHERE x.episode_id = e),
                                                             (SELECT max(greatest(x.starts_on, x.ends_on)) FROM ips.job x WHERE x.episode_id = e))
                                          + time '12:00', 'client_choice');
            END IF;
        END IF;
    END LOOP;
    -- job development and team meetings of the specialists, some weeks short
    FOR i IN 1..6 LOOP
        FOR d IN SELECT g::date FROM generate_series(date '2025-01-06', '2025-07-31', interval '1 day') g LOOP
            IF extract(isodow FROM d) <= 5 AND (extract(doy FROM d)::int + i) % 5 <> 0 THEN
                PERFORM ips.record_employer_contact(s[i], emp, d + time '13:00', (extract(doy FROM d)::int % 4) <> 0);
            END IF;
            IF extract(isodow FROM d) = 3 AND (extract(week FROM d)::int + i) % 4 <> 0 THEN
                PERFORM ips.record_team_meeting(s[i], d);
            END IF;
        END LOOP;
    END LOOP;
END $$;

CREATE TEMP TABLE days AS SELECT g::date AS as_of FROM generate_series(date '2025-01-20', '2025-08-31', interval '6 days') g;
CREATE TEMP TABLE c_rows AS SELECT d.as_of, a.* FROM days d, LATERAL ips.contact_alerts(d.as_of) a;
CREATE TEMP TABLE s_rows AS SELECT d.as_of, a.* FROM days d, LATERAL ips_bench.contact_alerts_sql(d.as_of) a;

SELECT bag_eq('SELECT * FROM c_rows', 'SELECT * FROM s_rows', 'C engine and SQL reference agree on every 6th day, all teams');
SELECT bag_eq($$SELECT d.as_of, a.* FROM days d, ips.team t, LATERAL ips.contact_alerts(d.as_of, t.team_id) a$$,
              $$SELECT d.as_of, a.* FROM days d, ips.team t, LATERAL ips_bench.contact_alerts_sql(d.as_of, t.team_id) a$$,
              'they agree per team');
SELECT bag_eq($$SELECT d.as_of, a.* FROM days d, ips.episode e, LATERAL ips.episode_alerts(e.episode_id, d.as_of) a$$,
              $$SELECT * FROM s_rows WHERE episode_id IS NOT NULL$$, 'episode_alerts agrees with the reference per episode');
-- the comparison is not vacuous: every rule raises something on some day, both severities occur
SELECT is((SELECT string_agg(r.code, ' ' ORDER BY r.ordinal) FROM ips.rule r WHERE NOT EXISTS (SELECT 1 FROM c_rows c WHERE c.rule = r.code)), NULL::text, 'all 15 rules occur in the generated region');
SELECT is((SELECT count(DISTINCT severity)::int FROM c_rows), 2, 'both severities occur');
SELECT cmp_ok((SELECT count(*)::int FROM c_rows), '>', 500, 'hundreds of alerts compared');
-- the engine reads the facts of all episodes on their own and those of a team joined to its
-- episodes: every expectation of the region is the expectation of one team
SELECT bag_eq($$SELECT * FROM ips.expectations(NULL, '2025-01-01', '2025-08-31')$$,
              $$SELECT x.* FROM ips.team t, LATERAL ips.expectations(t.team_id, '2025-01-01', '2025-08-31') x$$,
              'expectations of the whole region = the union of the teams'' expectations');
-- after an admin changes the rules, they still agree
UPDATE ips.rule SET days = 5, horizon_days = 3 WHERE code = 'no_contact';
UPDATE ips.rule SET count = 2, days = 14 WHERE code = 'first_month_weekly';
UPDATE ips.rule SET enabled = false WHERE code = 'rapid_job_search';
UPDATE ips.rule SET count = 3 WHERE code = 'specialist_caseload';
SELECT bag_eq($$SELECT d.as_of, a.* FROM days d, LATERAL ips.contact_alerts(d.as_of) a$$,
              $$SELECT d.as_of, a.* FROM days d, LATERAL ips_bench.contact_alerts_sql(d.as_of) a$$,
              'they agree after rules were changed');
SELECT is((SELECT count(*)::int FROM days d, LATERAL ips.contact_alerts(d.as_of) a WHERE a.rule = 'rapid_job_search'), 0,
          'the disabled rule is gone');
UPDATE ips.setting SET value = 'UTC' WHERE name = 'time_zone';
SELECT bag_eq($$SELECT d.as_of, a.* FROM days d, LATERAL ips.contact_alerts(d.as_of) a$$,
              $$SELECT d.as_of, a.* FROM days d, LATERAL ips_bench.contact_alerts_sql(d.as_of) a$$,
              'they agree in another time zone');
-- the engine turns instants into local days itself for a zone name, and leaves an abbreviation to
-- AT TIME ZONE: both agree with the reference far from Helsinki, where days move
UPDATE ips.setting SET value = 'Pacific/Kiritimati' WHERE name = 'time_zone';
SELECT bag_eq($$SELECT d.as_of, a.* FROM days d, LATERAL ips.contact_alerts(d.as_of) a$$,
              $$SELECT d.as_of, a.* FROM days d, LATERAL ips_bench.contact_alerts_sql(d.as_of) a$$,
              'they agree in a zone name at UTC+14');
UPDATE ips.setting SET value = 'PST' WHERE name = 'time_zone';
SELECT bag_eq($$SELECT d.as_of, a.* FROM days d, LATERAL ips.contact_alerts(d.as_of) a$$,
              $$SELECT d.as_of, a.* FROM days d, LATERAL ips_bench.contact_alerts_sql(d.as_of) a$$,
              'they agree in a time zone abbreviation (PST)');

SELECT * FROM finish();
ROLLBACK;
