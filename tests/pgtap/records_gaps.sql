-- Records (issue 16), enforced at the table: what ips.end_staff, ips.change_staff,
-- ips.change_job_hours, ips.continue_job, ips.start_planned_job and ips.refer check holds
-- for direct INSERT / UPDATE / DELETE / COPY by the ips roles.  Expectations by hand:
--
-- Region time zone Europe/Helsinki (the session runs in UTC, so a UTC day is not the rule).
-- Leo, a specialist of team A, is on the team from 2025-03-03 (EET, +02) and leaves
-- with ended_on 2025-03-31; Finland moves to EEST (+03) on Sunday 2025-03-30, so:
--   first instant on the team: 2025-03-03 00:00 local = 2025-03-02 22:00:00 UTC
--   last instant on the team:  2025-03-30 23:59:59 local = 2025-03-30 20:59:59 UTC
--   first instant off:         2025-03-31 00:00 local = 2025-03-30 21:00:00 UTC
--   (a UTC day would take 2025-03-30 21:00 UTC as Leo's last day, and 03-02 22:00 UTC
--   as a day before his start)
BEGIN;
SELECT plan(82);
SET LOCAL timezone = 'UTC';
\ir security_setup.psql

-- msg_as(role, query): the SQLSTATE and message of the error, or 'ok'.
CREATE FUNCTION pg_temp.msg_as(r name, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text := 'ok';
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    BEGIN
        EXECUTE q;
        RAISE SQLSTATE 'TAPOK';
    EXCEPTION
        WHEN SQLSTATE 'TAPOK' THEN NULL;
        WHEN OTHERS THEN result := SQLSTATE || ' ' || SQLERRM;
    END;
    RESET ROLE;
    RETURN result;
END $$;

SELECT :'tag' || '_leo' AS leo_role, :'tag' || '_mia' AS mia_role \gset
CREATE ROLE :"leo_role" LOGIN; GRANT ips_specialist TO :"leo_role";
CREATE ROLE :"mia_role" LOGIN; GRANT ips_specialist TO :"mia_role";
SELECT ips.add_staff(:ta, 'Leo', 'specialist', db_role => :'leo_role') AS leo \gset
SELECT ips.add_staff(:ta, 'Mia', 'specialist', db_role => :'mia_role') AS mia \gset
UPDATE ips.staff SET started_on = '2025-03-03' WHERE staff_id = :leo;

-- ---------------------------------------------------------------- 1. contacts and the days on the team
SELECT is(pg_temp.try_as(:'leo_role', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-03-02 21:59:59+00', 'client') RETURNING 1$$, :e1, :leo)), '22023',
          'a contact at 23:59:59 local on the day before the start is refused (direct INSERT, specialist)');
SELECT is(pg_temp.do_as(:'leo_role', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-03-02 22:00:00+00', 'client') RETURNING 1$$, :e1, :leo)), '1',
          'a contact at 00:00 local on the first day is kept (22:00 UTC the day before)');
SELECT is(pg_temp.do_as(:'leo_role', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-03-30 20:59:59+00', 'client') RETURNING 1$$, :e1, :leo)), '1',
          'a contact at 23:59:59 local on 03-30 (EEST) is kept');
-- the end: no episode carried, the records before the end stay
SELECT lives_ok(format($$SELECT ips.end_staff(%s, '2025-03-31')$$, :leo), 'end_staff still works: ended_on 03-31');
SELECT is(pg_temp.try_as(:'leo_role', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-03-30 21:00:00+00', 'client') RETURNING 1$$, :e1, :leo)), '22023',
          'a contact at 00:00 local on the first day off the team is refused (21:00 UTC on 03-30)');
SELECT is(pg_temp.msg_as(:'leo_role', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-04-02 09:00:00+00', 'client')$$, :e1, :leo)),
          format('22023 staff member %s is not on the team on 2025-04-02 (at of ips.contact)', :leo),
          'the message names the local day');
SELECT is(pg_temp.do_as(:'leo_role', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-03-28 08:00:00+00', 'client') RETURNING 1$$, :e1, :leo)), '1',
          'a late correction of a day on the team is kept after the end');
SELECT is(pg_temp.try_as(:'leo_role', format($$UPDATE ips.contact SET at = at + interval '1 day'
          WHERE staff_id = %s AND at = '2025-03-30 20:59:59+00' RETURNING 1$$, :leo)), '22023',
          'nor may an UPDATE move a contact past the end');
SELECT is(pg_temp.try_as(:'sup', format($$SELECT ips.record_contact(%s, %s, '2025-03-31 06:00+00', 'client')$$, :e1, :leo)),
          '22023', 'a supervisor recording in the name of a person who left: refused (the API)');
SELECT is(pg_temp.try_as(:'sup', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-03-31 06:00+00', 'client') RETURNING 1$$, :e1, :leo)), '22023',
          '... and a direct INSERT (supervisor)');
SELECT is(pg_temp.try_as(:'sup', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-03-30 06:00+00', 'client') RETURNING 1$$, :e1, :leo)), 'ok:1',
          'the supervisor records Leo''s last day');
-- COPY (as the bulk import does: the owner)
SELECT throws_ok(format($$COPY ips.contact (episode_id, staff_id, at, kind) FROM PROGRAM 'printf "%s\t%s\t2025-03-30 21:00:00+00\tclient\n"'$$,
                        :e1, :leo), '22023', NULL, 'COPY of a contact on the first day off the team: 22023');
SELECT lives_ok(format($$COPY ips.contact (episode_id, staff_id, at, kind) FROM PROGRAM 'printf "%s\t%s\t2025-03-30 20:00:00+00\tclient\n"'$$,
                       :e1, :leo), 'COPY of a contact on the last day');
-- employer contacts and team meetings
SELECT is(pg_temp.try_as(:'leo_role', format($$INSERT INTO ips.employer_contact (staff_id, employer_id, at)
          VALUES (%s, %s, '2025-03-30 21:00:00+00') RETURNING 1$$, :leo, :emp)), '22023',
          'an employer contact on the first day off the team: 22023');
SELECT is(pg_temp.try_as(:'leo_role', format($$INSERT INTO ips.employer_contact (staff_id, employer_id, at)
          VALUES (%s, %s, '2025-03-30 20:59:59+00') RETURNING 1$$, :leo, :emp)), 'ok:1',
          'an employer contact on the last day is kept');
SELECT is(pg_temp.try_as(:'leo_role', format($$INSERT INTO ips.employer_contact (staff_id, employer_id, at)
          VALUES (%s, %s, '2025-03-02 21:59:59+00') RETURNING 1$$, :leo, :emp)), '22023',
          'an employer contact the day before the start: 22023');
SELECT is(pg_temp.try_as(:'leo_role', format($$INSERT INTO ips.team_meeting (staff_id, team_id, met_on)
          VALUES (%s, %s, '2025-03-31') RETURNING 1$$, :leo, :ta)), '22023', 'a meeting on the first day off the team');
SELECT is(pg_temp.try_as(:'leo_role', format($$INSERT INTO ips.team_meeting (staff_id, team_id, met_on)
          VALUES (%s, %s, '2025-03-02') RETURNING 1$$, :leo, :ta)), '22023', 'a meeting the day before the start');
SELECT is(pg_temp.try_as(:'leo_role', format($$SELECT ips.record_team_meeting(%s, '2025-03-03')$$, :leo)), 'ok:',
          'a meeting on the first day (the API)');
SELECT is(pg_temp.try_as(:'leo_role', format($$INSERT INTO ips.team_meeting (staff_id, team_id, met_on)
          VALUES (%s, %s, '2025-03-30') RETURNING 1$$, :leo, :ta)), 'ok:1', 'a meeting on the last day (direct INSERT)');
SELECT throws_ok(format($$INSERT INTO ips.team_meeting (staff_id, team_id, met_on) VALUES (%s, %s, '2025-03-10')$$, :leo, :tb),
                 '22023', NULL, 'a meeting row names the person''s own team');
-- a clinician's care-team contact
SELECT lives_ok(format($$SELECT ips.end_staff(%s, '2025-03-31')$$, :s_clin), 'the clinician leaves on 03-31');
SELECT is(pg_temp.try_as(:'clin', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-03-30 21:00:00+00', 'care_team') RETURNING 1$$, :e1, :s_clin)), '22023',
          'a clinician''s care-team contact after the end: 22023');
SELECT is(pg_temp.try_as(:'clin', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-03-30 20:59:59+00', 'care_team') RETURNING 1$$, :e1, :s_clin)), 'ok:1',
          'a clinician''s care-team contact on the last day');
-- the other direction: the staff row's dates around the records
SELECT ips.record_contact(:e1, :mia, '2025-03-20 07:00+00', 'client');
SELECT throws_ok(format($$SELECT ips.end_staff(%s, '2025-03-20')$$, :mia), '55000', NULL,
                 'end_staff before a contact of the person: 55000');
SELECT lives_ok(format($$SELECT ips.end_staff(%s, '2025-03-21')$$, :mia), 'end_staff the day after the last contact');
SELECT is(pg_temp.try_as(:'adm', format($$UPDATE ips.staff SET started_on = '2025-03-04' WHERE staff_id = %s RETURNING 1$$, :leo)),
          '55000', 'a later start leaving out a contact (03-03 00:00 local): 55000 (ips_admin)');
SELECT is(pg_temp.try_as(:'adm', format($$UPDATE ips.staff SET ended_on = '2025-03-30' WHERE staff_id = %s RETURNING 1$$, :leo)),
          '55000', 'an earlier end leaving out the contacts of 03-30: 55000');
SELECT is(pg_temp.try_as(:'adm', format($$UPDATE ips.staff SET started_on = '2025-03-02', ended_on = '2025-04-01' WHERE staff_id = %s RETURNING 1$$, :leo)),
          'ok:1', 'dates that include every record are kept');

SELECT is(pg_temp.try_as(:'adm', format($$UPDATE ips.staff SET ended_on = '2025-03-03' WHERE staff_id = %s RETURNING 1$$, :leo)),
          '22023', 'an end on the start day (an empty period, a direct UPDATE): 22023, not the bare check constraint (23514)');

-- ---------------------------------------------------------------- 2. ips.staff_terms written directly
SELECT ips.add_staff(:ta, 'Nora', 'specialist') AS nora \gset
UPDATE ips.staff SET started_on = '2025-02-03' WHERE staff_id = :nora;
SELECT is(pg_temp.try_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
          VALUES (%s, '2025-02-02', 0.5, 1, 18.75) RETURNING 1$$, :nora)), '22023', 'terms before the start: 22023');
SELECT is(pg_temp.try_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
          VALUES (%s, ips.local_date(now()) + 1, 0.5, 1, 18.75) RETURNING 1$$, :nora)), '22023', 'terms from tomorrow: 22023');
SELECT is(pg_temp.try_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
          VALUES (%s, 'infinity', 0.5, 1, 18.75) RETURNING 1$$, :nora)), '22023', 'terms from infinity: 22023');
SELECT is(pg_temp.try_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
          VALUES (%s, '2025-03-03', 1.01, 1, 37.5) RETURNING 1$$, :nora)), '22003', 'fte 1.01: 22003');
SELECT is(pg_temp.try_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
          VALUES (%s, '2025-03-03', 0, 1, 37.5) RETURNING 1$$, :nora)), '22003', 'fte 0: 22003');
SELECT is(pg_temp.try_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
          VALUES (%s, '2025-03-03', 1, -0.01, 37.5) RETURNING 1$$, :nora)), '22003', 'employment share -0.01: 22003');
SELECT is(pg_temp.try_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
          VALUES (%s, '2025-03-03', 1, 1, 80.01) RETURNING 1$$, :nora)), '22003', 'weekly hours 80.01: 22003');
SELECT is(pg_temp.try_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours, recorded_by)
          VALUES (%s, '2025-02-03', 0.5, 0, 80, 'someone_else') RETURNING recorded_by$$, :nora)), 'ok:' || :'adm',
          'terms on the first day, fte 0.5, share 0, 80 h: kept, recorded by the writer');
SELECT pg_temp.do_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
       VALUES (%s, '2025-02-03', 0.5, 0, 18.75) RETURNING 1$$, :nora));
SELECT is((SELECT (fte, employment_share, weekly_hours)::text FROM ips.staff WHERE staff_id = :nora), '(0.5,0,18.75)',
          'ips.staff takes the latest terms after a direct INSERT');
SELECT is(pg_temp.try_as(:'adm', format($$DELETE FROM ips.staff_terms WHERE staff_id = %s AND from_on = '-infinity' RETURNING 1$$, :nora)),
          '55000', 'the first terms cannot be deleted');
SELECT is(pg_temp.try_as(:'adm', format($$UPDATE ips.staff_terms SET from_on = '2025-02-03' WHERE staff_id = %s AND from_on = '-infinity' RETURNING 1$$, :nora)),
          '55000', 'nor moved to a day (the days before would have no terms)');
SELECT is(pg_temp.try_as(:'adm', format($$UPDATE ips.staff_terms SET staff_id = %s WHERE staff_id = %s AND from_on = '2025-02-03' RETURNING 1$$, :mia, :nora)),
          '22023', 'terms do not move to another person');
SELECT pg_temp.do_as(:'adm', format($$DELETE FROM ips.staff_terms WHERE staff_id = %s AND from_on = '2025-02-03' RETURNING 1$$, :nora));
SELECT is((SELECT (fte, employment_share, weekly_hours)::text FROM ips.staff WHERE staff_id = :nora), '(1.0,1.0,37.5)',
          'after deleting the change, ips.staff has the first terms again');
SELECT is(pg_temp.try_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
          VALUES (%s, '2025-03-31', 0.5, 1, 18.75) RETURNING 1$$, :mia)), '22023', 'terms on or after the end (Mia left 03-21): 22023');
SELECT is(pg_temp.do_as(:'adm', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
          VALUES (%s, '2025-03-20', 0.5, 1, 18.75) RETURNING 1$$, :mia)), '1', 'terms on the last day are kept');
SELECT is(pg_temp.try_as(:'adm', format($$UPDATE ips.staff SET ended_on = '2025-03-20' WHERE staff_id = %s RETURNING 1$$, :mia)),
          '55000', 'an end on the day of a contact: 55000');
UPDATE ips.staff_terms SET from_on = '2025-03-10' WHERE staff_id = :mia AND from_on = '2025-03-20';
SELECT is(pg_temp.try_as(:'adm', format($$UPDATE ips.staff SET started_on = '2025-03-11' WHERE staff_id = %s RETURNING 1$$, :mia)),
          '22023', 'a start after a change of terms (03-10): 22023');
SELECT is(pg_temp.try_as(:'adm', format($$UPDATE ips.staff SET started_on = '2025-03-10' WHERE staff_id = %s RETURNING 1$$, :mia)),
          'ok:1', 'a start on the day of the change is kept');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours)
          VALUES (%s, '2025-03-03', 0.5, 1, 18.75) RETURNING 1$$, :nora)), '42501', 'a specialist writes no terms');
SELECT is(pg_temp.try_as(:'an', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind)
          VALUES (%s, %s, '2025-03-30 06:00+00', 'client') RETURNING 1$$, :e1, :leo)), '42501', 'an analyst writes no contacts (nor terms, hours, jobs)');

-- ---------------------------------------------------------------- 3. ips.job_hours written directly
-- :j1 is a job of :e1 (team A) from 2024-02-01, running
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job_hours (job_id, from_on, hours_per_week)
          VALUES (%s, '2024-02-01', 20) RETURNING 1$$, :j1)), '22023', 'hours from the job''s first day: 22023');
SELECT is(pg_temp.do_as(:'spec', format($$INSERT INTO ips.job_hours (job_id, from_on, hours_per_week)
          VALUES (%s, '2024-02-02', 20) RETURNING episode_id::text || '/' || client_id$$, :j1)), :e1 || '/' || :c1,
          'hours from the second day: kept, with the job''s episode and client');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job_hours (job_id, from_on, episode_id, hours_per_week)
          VALUES (%s, '2024-02-05', %s, 20) RETURNING 1$$, :j1, :e2)), '22023', 'hours naming another episode: 22023 (specialist)');
SELECT throws_ok(format($$INSERT INTO ips.job_hours (job_id, from_on, episode_id, client_id, hours_per_week)
          VALUES (%s, '2024-02-05', %s, %s, 20)$$, :j1, :e2, :c2), '22023', NULL, '... and for the owner');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job_hours (job_id, from_on, client_id, hours_per_week)
          VALUES (%s, '2024-02-05', %s, 20) RETURNING 1$$, :j1, :c2)), '22023', 'hours naming another client: 22023');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job_hours (job_id, from_on, hours_per_week)
          VALUES (%s, ips.local_date(now()) + 1, 20) RETURNING 1$$, :j1)), '22023', 'hours from tomorrow: 22023');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job_hours (job_id, from_on, hours_per_week)
          VALUES (%s, ips.local_date(now()), 20) RETURNING 1$$, :j1)), 'ok:1', 'hours from today: kept');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job_hours (job_id, from_on, hours_per_week)
          VALUES (%s, '2024-02-06', 0) RETURNING 1$$, :j1)), '22003', '0 hours: 22003');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job_hours (job_id, from_on, hours_per_week)
          VALUES (%s, '2024-02-06', 80.5) RETURNING 1$$, :j1)), '22003', '80.5 hours: 22003');
SELECT is(pg_temp.try_as(:'spec', format($$UPDATE ips.job_hours SET from_on = '2024-01-31' WHERE job_id = %s AND from_on = '2024-02-02' RETURNING 1$$, :j1)),
          '22023', 'an UPDATE before the job''s start: 22023');
SELECT pg_temp.do_as(:'spec', format($$INSERT INTO ips.job_hours (job_id, from_on, hours_per_week) VALUES (%s, '2024-03-02', 25) RETURNING 1$$, :j1));
SELECT is(pg_temp.try_as(:'spec', format($$SELECT ips.end_job(%s, '2024-03-01')$$, :j1)), '55000',
          'the job cannot end before a change of its hours (03-02): 55000');
SELECT is(pg_temp.try_as(:'spec', format($$UPDATE ips.job SET starts_on = '2024-02-02' WHERE job_id = %s RETURNING 1$$, :j1)), '55000',
          'nor start on the day of a change (a direct UPDATE)');
SELECT is(pg_temp.try_as(:'spec', format($$SELECT ips.end_job(%s, '2024-03-02')$$, :j1)), 'ok:',
          'the job ends on the day of its last change');
SELECT ips.end_job(:j1, '2024-03-02');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job_hours (job_id, from_on, hours_per_week)
          VALUES (%s, '2024-03-03', 20) RETURNING 1$$, :j1)), '22023', 'hours after the job''s end: 22023');

-- ---------------------------------------------------------------- continuations and plans
SELECT ips.start_job(:e1, :emp, '2024-04-01', 'work_trial') AS j2 \gset
SELECT ips.add_employer('Toinen Oy') AS emp2 \gset
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job (episode_id, employer_id, starts_on, kind, continues_job_id)
          VALUES (%s, %s, '2024-05-01', 'competitive', %s) RETURNING 1$$, :e1, :emp2, :j2)), '22023',
          'a continuation at another employer: 22023');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job (episode_id, employer_id, starts_on, kind, continues_job_id)
          VALUES (%s, %s, '2024-04-01', 'competitive', %s) RETURNING 1$$, :e1, :emp, :j2)), '22023',
          'a continuation from the old job''s first day: 22023');
SELECT is(pg_temp.try_as(:'spec', format($$UPDATE ips.job SET continues_job_id = %s WHERE job_id = %s RETURNING 1$$, :j1, :j2)), '22023',
          'a job that ended (03-02) before the continuation began (04-01) is not continued');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.job (episode_id, employer_id, starts_on, kind, continues_job_id)
          VALUES (%s, %s, '2024-04-02', 'competitive', %s) RETURNING 1$$, :e1, :emp, :j2)), 'ok:1',
          'a continuation the day after at the same employer is kept');
SELECT is(pg_temp.try_as(:'spec', format($$SELECT ips.plan_job(%s, %s, '2024-06-01')$$, :e1, :emp)) LIKE 'ok:%', true,
          'a plan for an open episode');
SELECT pg_temp.do_as(:'spec', format($$SELECT ips.plan_job(%s, %s, '2024-06-01')$$, :e1, :emp)) AS plan \gset
SELECT is(pg_temp.try_as(:'spec', format($$UPDATE ips.job_plan SET job_id = %s WHERE plan_id = %s RETURNING 1$$, :j1, :plan)), 'ok:1',
          'a plan names a job of its episode');
SELECT is(pg_temp.try_as(:'spec_b', format($$INSERT INTO ips.job_plan (episode_id, employer_id, starts_on) VALUES (%s, %s, '2024-06-01') RETURNING 1$$, :e2, :emp)),
          'ok:1', 'team B plans for its own episode');
SELECT pg_temp.do_as(:'spec_b', format($$INSERT INTO ips.job_plan (episode_id, employer_id, starts_on) VALUES (%s, %s, '2024-06-01') RETURNING plan_id$$, :e2, :emp)) AS plan_b \gset
SELECT throws_ok(format($$UPDATE ips.job_plan SET job_id = %s WHERE plan_id = %s$$, :j1, :plan_b), '22023', NULL,
                 'a plan does not name a job of another episode');
SELECT ips.transition(:e2, 'closed', '2024-03-01 10:00+00', 'moved');
SELECT is(pg_temp.try_as(:'spec_b', format($$INSERT INTO ips.job_plan (episode_id, employer_id, starts_on) VALUES (%s, %s, '2024-06-01') RETURNING 1$$, :e2, :emp)),
          '55000', 'no plan for a closed episode (direct INSERT)');

-- a restore loads the rows as they were (checked when they were first written)
SET LOCAL ips.restoring = on;
SELECT lives_ok(format($$INSERT INTO ips.job_plan (episode_id, employer_id, starts_on) VALUES (%s, %s, '2024-06-01')$$, :e2, :emp),
                'a restore loads the plan of an episode closed since');
INSERT INTO ips.staff_terms (staff_id, from_on, fte, employment_share, weekly_hours, recorded_by)
VALUES (:nora, '2025-03-03', 0.5, 1, 18.75, 'dumped_writer');
SELECT is((SELECT recorded_by::text FROM ips.staff_terms WHERE staff_id = :nora AND from_on = '2025-03-03'),
          'dumped_writer', 'and terms with their writer');
SET LOCAL ips.restoring = off;

-- ---------------------------------------------------------------- 4. ips.refer of another team's client
SELECT pg_temp.do_as(:'spec_b', 'SELECT ips.add_client(''H-1'')');
SELECT is(pg_temp.msg_as(:'spec_b', format($$SELECT ips.refer(%s, %s, '2025-01-10')$$, :c1, :tb)),
          format('23505 client %s has an open episode already, in a team whose episodes you do not see', :c1),
          'a referral of a client in another team''s open episode says so (no "being created")');
SELECT is(pg_temp.msg_as(:'spec', format($$SELECT ips.refer(%s, %s, '2025-01-10')$$, :c1, :ta)),
          format('23505 client %s has an open episode already (%s)', :c1, :e1), 'the own team''s episode is named');

-- ---------------------------------------------------------------- 5. alerts as known: facts without a recording time
-- Team K, specialists K1 and K2.  Client engaged Mon 2025-03-03 (entry; referred 02-24, care
-- relationship since 02-01), no share_with_care consent at entry: consent_for_care is due
-- entry + 14 = 03-17.  The consent is given on 03-12 (a consent has no recording time); the
-- episode is handed to K2 from 03-15 (nor has an assignment).  The state changes are taken as
-- recorded when they happened (as 1.1's rows were).  As of 03-20:
--   as corrected (contact_alerts):                    no consent_for_care alert; carried by K2
--   as known at 03-11 12:00 (the consent is dated 03-12, after it: not known then):
--                                                     consent_for_care overdue 03-20 - 03-17 = 3, K1's
--   as known at 03-12 00:00 (its own day):            no consent_for_care alert
--   (1.2 before this change counted the consent and the handover whenever asked: no alert)
SET LOCAL timezone = 'Europe/Helsinki';
\ir fidelity_helpers.psql
SELECT ips.add_team('Known', 'Pohjanmaa') AS tk \gset
SELECT ips.add_staff(:tk, 'K1', 'specialist') AS k1 \gset
SELECT ips.add_staff(:tk, 'K2', 'specialist') AS k2 \gset
SELECT pg_temp.engaged(:tk, :k1, 'known-1', '2025-03-03') AS ek \gset
SELECT ips.give_consent((SELECT client_id FROM ips.episode WHERE episode_id = :ek), 'share_with_care', '2025-03-12');
SELECT ips.assign_specialist(:ek, :k2, '2025-03-15');
SET LOCAL session_replication_role = replica;   -- the history is append-only: recorded when it happened
UPDATE ips.episode_state_history SET recorded_at = at WHERE episode_id = :ek;
SET LOCAL session_replication_role = origin;
SELECT is((SELECT string_agg(staff_id::text, ',') FROM ips.contact_alerts('2025-03-20', :tk) WHERE episode_id = :ek AND rule = 'consent_for_care'),
          NULL, 'as corrected: the consent of 03-12 closed the gap');
SELECT is((SELECT string_agg(severity || ':' || days_overdue || ' ' || due_on || ' ' || (staff_id = :k1), ',')
             FROM ips.alerts_as_known('2025-03-20', '2025-03-11 12:00+02', :tk) WHERE episode_id = :ek AND rule = 'consent_for_care'),
          'overdue:3 2025-03-17 true', 'as known at 03-11 12:00: the consent dated 03-12 was not known; overdue 3 days, K1''s (the handover was not known)');
SELECT is((SELECT count(*)::int FROM ips.alerts_as_known('2025-03-20', '2025-03-12 00:00+02', :tk) WHERE episode_id = :ek AND rule = 'consent_for_care'),
          0, 'as known at 03-12 00:00: the consent counts from its own day');
SELECT is((SELECT count(*)::int FROM ips.alerts_as_known('2025-03-20', NULL, :tk) WHERE episode_id = :ek AND rule = 'consent_for_care'),
          0, 'as known at the end of 03-20 (the default): counted');
SELECT is((SELECT string_agg(rule || ':' || (staff_id = :k1), ',' ORDER BY rule) FROM ips.alerts_as_known('2025-03-20', '2025-03-14 12:00+02', :tk)
            WHERE episode_id = :ek AND rule IN ('consent_for_care', 'referral_response')),
          'referral_response:true', 'as known at 03-14: consent known, the referral response still open and K1''s (handover 03-15 not yet)');

SELECT * FROM finish();
ROLLBACK;
