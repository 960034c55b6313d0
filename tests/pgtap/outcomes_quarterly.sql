-- Outcomes for a hand-built quarter (2025Q2 = 2025-04-01 .. 2025-06-30) and small-cell suppression.
--
--  c1..c6, c8 engaged 2025-01-10; out of work at entry: c1..c5 (c6 no, c8 not recorded)
--  c1  competitive job from 2025-02-01, ongoing             -> working in Q2 (first job in Q1)
--  c2  competitive job from 2025-04-15, ongoing             -> working, start, first job, 95 days
--  c3  competitive job 2025-05-01 .. 2025-05-20             -> working, start, first job, 111 days; not 90 days
--  c4  work trial from 2025-04-01                           -> not competitive
--  c5  studies from 2025-04-10                              -> education start
--  c6  competitive job from 2025-06-02, ongoing             -> working, start, first job, 143 days
--  c7  engaged 2025-01-10, closed 2025-03-31 client_choice   -> not served in Q2
--  c8  closed 2025-04-30 moved                               -> served, closure (moved)
--  c9  referred 2025-04-05, closed 2025-05-05 never_engaged  -> not served, closure (never_engaged)
-- served 7 (c1-c6, c8); working 4 (c1 c2 c3 c6) = 57.1 %; out of work at entry 5, of them working
-- 3 (c1 c2 c3) = 60.0 %; job starts 3; first jobs 3; median of 95, 111, 143 = 111; education 1;
-- 90 days known 3, retained 2 (c2, c6) = 66.7 %; closures 2 (moved 1, never_engaged 1).
BEGIN;
SELECT plan(30);

SELECT ips.add_team('Outcomes team', 'Pohjanmaa') AS t \gset
SELECT ips.add_staff(:t, 'Outcomes spec', 'specialist') AS s \gset
SELECT ips.add_employer('Outcome employer') AS emp \gset
CREATE FUNCTION pg_temp.client(ref text, entry date, oow boolean) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE c bigint; e bigint;
BEGIN
    c := ips.add_client(ref);
    PERFORM ips.start_care_relationship(c, 'psykiatria', '2024-12-01');
    e := ips.refer(c, (SELECT team_id FROM ips.team WHERE name = 'Outcomes team'), entry - 7);
    PERFORM ips.assign_specialist(e, (SELECT staff_id FROM ips.staff WHERE display_name = 'Outcomes spec'), entry - 7);
    PERFORM ips.transition(e, 'engaged', ips.local_midnight(entry) + interval '12 hours');
    IF oow IS NOT NULL THEN
        PERFORM ips.set_out_of_work_at_entry(e, oow);
    END IF;
    RETURN e;
END $$;
CREATE FUNCTION pg_temp.ep(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT e.episode_id FROM ips.episode e JOIN ips.client c ON c.client_id = e.client_id WHERE c.host_ref = ref
$$;
SELECT pg_temp.client('c' || i, '2025-01-10', CASE WHEN i <= 5 THEN true WHEN i = 6 THEN false END) FROM generate_series(1, 8) i;
SELECT ips.start_job(pg_temp.ep('c1'), :emp, '2025-02-01', 'competitive');
SELECT ips.start_job(pg_temp.ep('c2'), :emp, '2025-04-15', 'competitive');
SELECT ips.end_job(ips.start_job(pg_temp.ep('c3'), :emp, '2025-05-01', 'competitive'), '2025-05-20');
SELECT ips.start_job(pg_temp.ep('c4'), :emp, '2025-04-01', 'work_trial');
SELECT ips.start_studies(pg_temp.ep('c5'), '2025-04-10', 'ammattikoulu');
SELECT ips.start_job(pg_temp.ep('c6'), :emp, '2025-06-02', 'competitive');
SELECT ips.transition(pg_temp.ep('c7'), 'closed', '2025-03-31 12:00+03', 'client_choice');
SELECT ips.transition(pg_temp.ep('c8'), 'closed', '2025-04-30 12:00+03', 'moved');
SELECT ips.refer(ips.add_client('c9'), :t, '2025-04-05') AS e9 \gset
SELECT ips.transition(:e9, 'closed', '2025-05-05 12:00+03', 'never_engaged');

CREATE TEMP VIEW raw AS SELECT * FROM ips.outcomes_quarterly_for(0) WHERE quarter = '2025Q2';
CREATE TEMP VIEW sup AS SELECT * FROM ips.outcomes_quarterly_for(5) WHERE quarter = '2025Q2';

SELECT is((SELECT quarter_start || ' ' || quarter_end FROM raw), '2025-04-01 2025-06-30', 'quarter 2025Q2');
SELECT is((SELECT clients_served FROM raw), 7::bigint, 'served: 7');
SELECT is((SELECT clients_working FROM raw), 4::bigint, 'working competitively: 4');
SELECT is((SELECT employment_rate FROM raw), 57.1, 'employment rate 4 / 7 = 57.1 %');
SELECT is((SELECT clients_served_out_of_work FROM raw), 5::bigint, 'served, out of work at entry: 5');
SELECT is((SELECT clients_working_out_of_work FROM raw), 3::bigint, 'of them working: 3');
SELECT is((SELECT employment_rate_out_of_work FROM raw), 60.0, 'employment rate of those out of work at entry 3 / 5 = 60 %');
SELECT is((SELECT benchmark_minimal || ' ' || benchmark_average || ' ' || benchmark_excellent || ' ' || benchmark_uk FROM raw),
          '31 41 50 40', 'benchmarks beside the rates');
SELECT is((SELECT job_starts FROM raw), 3::bigint, 'competitive job starts: 3');
SELECT is((SELECT clients_first_job FROM raw), 3::bigint, 'clients into a first job: 3');
SELECT is((SELECT median_days_to_first_job FROM raw), 111::numeric, 'median days entry -> first job: 111');
SELECT is((SELECT education_starts FROM raw), 1::bigint, 'education starts: 1');
SELECT is((SELECT jobs_90_days_known || ' ' || jobs_retained_90_days || ' ' || retention_90_rate FROM raw), '3 2 66.7',
          '90-day retention: 2 of 3 = 66.7 %');
SELECT is((SELECT closures || ' ' || closed_moved || ' ' || closed_never_engaged || ' ' || closed_client_choice FROM raw),
          '2 1 1 0', 'closures by reason');
SELECT is((SELECT clients_served || ' ' || closures || ' ' || closed_client_choice FROM ips.outcomes_quarterly_for(0) WHERE quarter = '2025Q1'),
          '8 1 1', 'Q1: 8 served (c1-c8), c7 closed by choice');

-- suppression with threshold 5
SELECT is((SELECT clients_served FROM sup), 7::bigint, '7 served is shown');
SELECT is((SELECT clients_served_out_of_work FROM sup), NULL::bigint,
          '5 out of work at entry is suppressed too: 7 served - 5 = 2 not out of work at entry (secondary suppression, issue 13)');
SELECT is((SELECT clients_working FROM sup), NULL::bigint, '4 working is suppressed');
SELECT is((SELECT employment_rate FROM sup), NULL::numeric, 'a rate on a suppressed count is suppressed');
SELECT is((SELECT median_days_to_first_job FROM sup), NULL::numeric, 'a median of 3 people is suppressed');
SELECT is((SELECT closed_moved FROM sup), NULL::bigint, 'a closure of 1 is suppressed');
SELECT is((SELECT closed_stable_employment FROM sup), 0::bigint, 'zero is shown');
SELECT is((SELECT small_cell_threshold FROM sup), 5, 'the threshold applied is reported');
SELECT is(ips.suppress_count(4, 5), NULL::bigint, 'suppress_count: 4 under 5');
SELECT is(ips.suppress_count(5, 5), 5::bigint, 'suppress_count: 5 stays');
SELECT is(ips.suppress_rate(5, 7, 5), 71.4, 'suppress_rate: 5 / 7 = 71.4 %');

-- the view: the superuser running this test sees the figures as they are
SELECT is((SELECT clients_working FROM ips.outcomes_quarterly WHERE team_id = :t AND quarter = '2025Q2'), 4::bigint,
          'the view is unsuppressed for a superuser');

-- as an analyst (group ips_analyst from ips.create_roles() when it exists)
DO $$
BEGIN
    IF to_regprocedure('ips.create_roles()') IS NOT NULL THEN
        PERFORM ips.create_roles();
    END IF;
    IF to_regrole('ips_analyst') IS NULL THEN
        CREATE ROLE ips_analyst NOLOGIN;
    END IF;
END $$;
CREATE ROLE fidelity_test_analyst IN ROLE ips_analyst;
GRANT USAGE ON SCHEMA ips TO fidelity_test_analyst;
GRANT SELECT ON ips.outcomes_quarterly TO fidelity_test_analyst;
-- (the grants ips.create_roles() gives ips_analyst may not yet include these definer functions)
GRANT EXECUTE ON FUNCTION ips.outcomes_quarterly_for(int), ips.small_cell_threshold_for_caller(),
      ips.suppress_count(bigint, int), ips.suppress_rate(bigint, bigint, int), ips.setting_value(text), ips.caller()
   TO fidelity_test_analyst;
SET ROLE fidelity_test_analyst;
SELECT is((SELECT clients_served || ' ' || coalesce(clients_working::text, 'suppressed') FROM ips.outcomes_quarterly WHERE quarter = '2025Q2'),
          '7 suppressed', 'an analyst sees 7 served and the 4 working suppressed');
SELECT is((SELECT coalesce(clients_working::text, 'suppressed') FROM ips.outcomes_quarterly_for(0) WHERE quarter = '2025Q2'),
          'suppressed', 'an analyst cannot ask for less suppression');
SELECT throws_ok($$SELECT * FROM ips.outcomes_quarterly_counts$$, '42501', NULL, 'an analyst cannot read the raw counts');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
