-- Bounded input (issue 13, and issue 16's "facts not after today"): each class of bad input
-- gets its own SQLSTATE and a hint, and writes nothing, whether it comes through an API
-- function or a direct INSERT/UPDATE by an ips role.  1.1 stored most of these (66 of the
-- issue's 207 bad inputs), answered others with 42501 or 22023 for a missing argument, and let
-- an admin store settings that broke every later read.
--   dates: 22008 infinite or before earliest_fact_date (1900-01-01), 22023 after today
--   texts: 22001 over their length; integers: 22003 out of range; missing: 22004
BEGIN;
SELECT plan(68);

\ir security_setup.psql
SELECT ips.local_date(now()) AS today \gset
SELECT (:'today'::date + 1)::text AS tomorrow \gset
SELECT ips.add_client('B-' || i) AS cb FROM generate_series(1, 1) i \gset
SELECT ips.add_client('B-2') AS cb2 \gset
SELECT ips.add_client('B-3') AS cb3 \gset

-- bad(statement, count query): 'SQLSTATE, N written' (', no hint' when the error has none);
-- N is how the count query's answer changed.
CREATE FUNCTION pg_temp.bad(q text, counter text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    before bigint;
    after bigint;
    st text;
    h text;
BEGIN
    EXECUTE counter INTO before;
    BEGIN
        EXECUTE q;
        st := 'no error';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, h = PG_EXCEPTION_HINT;
    END;
    EXECUTE counter INTO after;
    RETURN st || CASE WHEN st <> 'no error' AND coalesce(h, '') = '' THEN ', no hint' ELSE '' END
              || ', ' || (after - before) || ' written';
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.bad(text, text) TO PUBLIC;

-- 1. Dates of facts: infinite, before 1900, after today (the region's today)
SELECT is(pg_temp.bad(format($$SELECT ips.refer(%s, %s, '-infinity')$$, :cb, :ta), 'SELECT count(*) FROM ips.episode'),
          '22008, 0 written', 'refer -infinity (1.1: stored, and outcomes_quarterly ran 350 s)');
SELECT is(pg_temp.bad(format($$SELECT ips.refer(%s, %s, '4713-01-01 BC')$$, :cb, :ta), 'SELECT count(*) FROM ips.episode'),
          '22008, 0 written', 'refer 4713 BC');
SELECT is(pg_temp.bad(format($$SELECT ips.refer(%s, %s, '1899-12-31')$$, :cb, :ta), 'SELECT count(*) FROM ips.episode'),
          '22008, 0 written', 'refer 1899-12-31: the day before the earliest');
SELECT is(pg_temp.bad(format($$SELECT ips.refer(%s, %s, %L)$$, :cb, :ta, :'tomorrow'), 'SELECT count(*) FROM ips.episode'),
          '22023, 0 written', 'refer tomorrow');
SELECT is(pg_temp.bad(format($$SELECT ips.refer(%s, %s, '1900-01-01')$$, :cb, :ta), 'SELECT count(*) FROM ips.episode'),
          'no error, 1 written', 'refer 1900-01-01: the earliest day is allowed');
SELECT is(pg_temp.bad(format($$SELECT ips.refer(%s, %s, %L)$$, :cb2, :ta, :'today'), 'SELECT count(*) FROM ips.episode'),
          'no error, 1 written', 'refer today is allowed');
SELECT is(pg_temp.bad(format($$SELECT ips.record_contact(%s, %s, 'infinity', 'client')$$, :e1, :s_spec), 'SELECT count(*) FROM ips.contact'),
          '22008, 0 written', 'contact at infinity');
SELECT is(pg_temp.bad(format($$SELECT ips.record_contact(%s, %s, ips.local_midnight(%L), 'client')$$, :e1, :s_spec, :'tomorrow'), 'SELECT count(*) FROM ips.contact'),
          '22023, 0 written', 'contact at the first instant of tomorrow (local)');
SELECT is(pg_temp.bad(format($$SELECT ips.record_contact(%s, %s, ips.local_midnight(%L) - interval '1 second', 'client')$$, :e1, :s_spec, :'tomorrow'), 'SELECT count(*) FROM ips.contact'),
          'no error, 1 written', 'contact at the last second of today (local) is allowed');
SELECT is(pg_temp.bad(format($$SELECT ips.record_contact(%s, %s, '2030-01-01 10:00+02', 'client')$$, :e1, :s_spec), 'SELECT count(*) FROM ips.contact'),
          '22023, 0 written', 'contact dated 2030 (issue 16: it later satisfied the no-contact rule)');
SELECT is(pg_temp.bad(format($$SELECT ips.record_employer_contact(%s, %s, '-infinity')$$, :s_spec, :emp), 'SELECT count(*) FROM ips.employer_contact'),
          '22008, 0 written', 'employer contact at -infinity');
SELECT is(pg_temp.bad(format($$SELECT ips.record_employer_contact(%s, %s, '1899-06-01 10:00+02')$$, :s_spec, :emp), 'SELECT count(*) FROM ips.employer_contact'),
          '22008, 0 written', 'employer contact in 1899');
SELECT is(pg_temp.bad(format($$SELECT ips.start_job(%s, %s, %L)$$, :e1, :emp, :'tomorrow'),
                      format($$SELECT count(*) + count(*) FILTER (WHERE e.state = 'employed') FROM ips.job j JOIN ips.episode e USING (episode_id) WHERE e.episode_id IN (%s, %s)$$, :e1, :e2)),
          '22023, 0 written', 'a job starting tomorrow: no job and no change of state');
SELECT is(pg_temp.bad(format($$SELECT ips.end_job(%s, 'infinity')$$, :j1), 'SELECT count(*) FROM ips.job WHERE ends_on IS NOT NULL'),
          '22008, 0 written', 'a job ending at infinity');
SELECT is(pg_temp.bad(format($$SELECT ips.end_job(%s, %L)$$, :j1, :'tomorrow'), 'SELECT count(*) FROM ips.job WHERE ends_on IS NOT NULL'),
          '22023, 0 written', 'a job ending tomorrow');
SELECT is(pg_temp.bad(format($$SELECT ips.start_studies(%s, '1800-01-01')$$, :e1), 'SELECT count(*) FROM ips.study'),
          '22008, 0 written', 'studies starting in 1800');
SELECT is(pg_temp.bad(format($$SELECT ips.record_team_meeting(%s, '0001-01-01')$$, :s_spec), 'SELECT count(*) FROM ips.team_meeting'),
          '22008, 0 written', 'a team meeting in year 1');
SELECT is(pg_temp.bad(format($$SELECT ips.give_consent(%s, 'family_contact', '-infinity')$$, :c1), 'SELECT count(*) FROM ips.consent'),
          '22008, 0 written', 'a consent given at -infinity');
SELECT is(pg_temp.bad(format($$SELECT ips.withdraw_consent(%s, 'share_with_care', %L)$$, :c1, :'tomorrow'), 'SELECT count(*) FROM ips.consent WHERE withdrawn_on IS NOT NULL'),
          '22023, 0 written', 'a consent withdrawn tomorrow');
SELECT is(pg_temp.bad(format($$SELECT ips.refuse_consent(%s, 'family_contact', '1899-01-01')$$, :c1), 'SELECT count(*) FROM ips.consent_refusal'),
          '22008, 0 written', 'a refusal in 1899');
SELECT is(pg_temp.bad(format($$SELECT ips.start_care_relationship(%s, 'Psykiatria', %L)$$, :c1, :'tomorrow'), 'SELECT count(*) FROM ips.care_relationship'),
          '22023, 0 written', 'a care relationship starting tomorrow');
SELECT is(pg_temp.bad(format($$SELECT ips.end_care_relationship(%s, 'infinity')$$, :cr1), 'SELECT count(*) FROM ips.care_relationship WHERE ended_on IS NOT NULL'),
          '22008, 0 written', 'a care relationship ending at infinity');
SELECT is(pg_temp.bad(format($$SELECT ips.open_review(%s, '-infinity', '2024-06-30', '2024-08-01')$$, :ta), 'SELECT count(*) FROM ips.fidelity_review'),
          '22008, 0 written', 'a review period from -infinity');
SELECT is(pg_temp.bad(format($$SELECT ips.open_review(%s, '2024-01-01', '2024-06-30', %L)$$, :ta, :'tomorrow'), 'SELECT count(*) FROM ips.fidelity_review'),
          '22023, 0 written', 'a review visit tomorrow');
SELECT episode_id AS e_cb FROM ips.episode WHERE client_id = :cb \gset
SELECT is(pg_temp.bad(format($$SELECT ips.assign_specialist(%s, %s, '1066-10-14')$$, :e_cb, :s_spec), 'SELECT count(*) FROM ips.specialist_assignment'),
          '22008, 0 written', 'an assignment in 1066');

-- 2. The same bounds hold for direct writes by an ips role (at the table)
SET LOCAL ROLE :"spec";
SELECT is(pg_temp.bad(format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (%s, %s, '2031-01-01 10:00+02', 'client')$$, :e1, :s_spec),
                      'SELECT count(*) FROM ips.contact'),
          '22023, 0 written', 'a specialist''s direct INSERT of a contact dated 2031');
SELECT is(pg_temp.bad(format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind, minutes) VALUES (%s, %s, '2024-03-01 10:00+02', 'client', 2147483647)$$, :e1, :s_spec),
                      'SELECT count(*) FROM ips.contact'),
          '22003, 0 written', 'a direct INSERT of a contact of 2 147 483 647 minutes');
SELECT is(pg_temp.bad(format($$UPDATE ips.episode SET referred_on = '-infinity' WHERE episode_id = %s$$, :e1),
                      $$SELECT count(*) FROM ips.episode WHERE NOT isfinite(referred_on)$$),
          '22008, 0 written', 'a direct UPDATE of a referral to -infinity');
SELECT is(pg_temp.bad(format($$UPDATE ips.job SET title = repeat('x', 201) WHERE job_id = %s$$, :j1),
                      $$SELECT count(*) FROM ips.job WHERE length(title) > 200$$),
          '22001, 0 written', 'a direct UPDATE of a job title of 201 characters');
SELECT is(pg_temp.bad(format($$SELECT ips.record_contact(NULL, %s, '2024-03-01 10:00+02', 'client')$$, :s_spec), 'SELECT count(*) FROM ips.contact'),
          '22004, 0 written', 'record_contact with a NULL episode: 22004 (1.1: 42501 "violates row-level security")');
RESET ROLE;
SELECT is(pg_temp.bad(format($$UPDATE ips.client SET birth_year = %s WHERE client_id = %s$$, extract(year FROM :'today'::date) + 1, :c1),
                      $$SELECT count(*) FROM ips.client WHERE birth_year > extract(year FROM now())$$),
          '22003, 0 written', 'a birth year next year');

-- 3. Texts: 22001 beyond the documented length; characters, not bytes, are counted
SELECT is(pg_temp.bad($$SELECT ips.add_team(repeat('x', 201), 'Pohjanmaa')$$, 'SELECT count(*) FROM ips.team'),
          '22001, 0 written', 'a team name of 201 characters');
SELECT is(pg_temp.bad($$SELECT ips.add_team(repeat('ä', 200), 'Pohjanmaa')$$, 'SELECT count(*) FROM ips.team'),
          'no error, 1 written', 'a team name of 200 characters (400 bytes) is allowed');
SELECT is(pg_temp.bad($$SELECT ips.add_client('B-10', NULL, repeat('x', 10000000))$$, 'SELECT count(*) FROM ips.client'),
          '22001, 0 written', 'a municipality of 10 MB');
SELECT is(pg_temp.bad(format($$SELECT ips.add_staff(%s, repeat('x', 201), 'specialist')$$, :ta), 'SELECT count(*) FROM ips.staff'),
          '22001, 0 written', 'a staff name of 201 characters');
SELECT is(pg_temp.bad($$SELECT ips.add_employer('Oy', NULL, repeat('x', 201))$$, 'SELECT count(*) FROM ips.employer'),
          '22001, 0 written', 'an industry of 201 characters');
SELECT is(pg_temp.bad(format($$SELECT ips.refer(%s, %s, '2024-01-01', repeat('x', 201))$$, :cb3, :ta), 'SELECT count(*) FROM ips.episode'),
          '22001, 0 written', 'a referral source of 201 characters');
SELECT is(pg_temp.bad(format($$SELECT ips.start_job(%s, %s, '2024-03-01', title => repeat('x', 201))$$, :e1, :emp), 'SELECT count(*) FROM ips.job'),
          '22001, 0 written', 'a job title of 201 characters');
SELECT ips.open_review(:ta, '2024-01-01', '2024-06-30', '2024-08-20') AS rv \gset
SELECT is(pg_temp.bad(format($$SELECT ips.rate(%s, 'O2', 4, repeat('x', 2001))$$, :rv), 'SELECT count(*) FROM ips.fidelity_rating'),
          '22001, 0 written', 'a rating note of 2 001 characters');
SELECT is(pg_temp.bad(format($$SELECT ips.add_reviewer(%s, repeat('x', 201))$$, :rv), 'SELECT count(*) FROM ips.fidelity_reviewer'),
          '22001, 0 written', 'a reviewer name of 201 characters');

-- A row stored before the bounds (a 1.1 database updated) keeps working: its other columns
-- change, the old value is checked only when it is written again.
ALTER TABLE ips.client DISABLE TRIGGER client_bounds;
UPDATE ips.client SET municipality = repeat('m', 300) WHERE client_id = :c2;
ALTER TABLE ips.client ENABLE TRIGGER client_bounds;
SELECT is(pg_temp.bad(format($$UPDATE ips.client SET birth_year = 1986 WHERE client_id = %s$$, :c2),
                      $$SELECT count(*) FROM ips.client WHERE birth_year = 1986$$),
          'no error, 1 written', 'a row with a 300-character municipality from before: its birth year can change');
SELECT is(pg_temp.bad(format($$UPDATE ips.client SET municipality = repeat('m', 301) WHERE client_id = %s$$, :c2),
                      $$SELECT count(*) FROM ips.client WHERE length(municipality) = 301$$),
          '22001, 0 written', 'but a new over-long municipality is refused');

-- 4. Integers in their real range
SELECT is(pg_temp.bad(format($$SELECT ips.record_contact(%s, %s, '2024-03-01 10:00+02', 'client', minutes => 2147483647)$$, :e1, :s_spec), 'SELECT count(*) FROM ips.contact'),
          '22003, 0 written', 'a contact of 2 147 483 647 minutes');
SELECT is(pg_temp.bad(format($$SELECT ips.record_contact(%s, %s, '2024-03-01 10:00+02', 'client', minutes => 1441)$$, :e1, :s_spec), 'SELECT count(*) FROM ips.contact'),
          '22003, 0 written', 'a contact of 1 441 minutes');
SELECT is(pg_temp.bad(format($$SELECT ips.record_contact(%s, %s, '2024-03-01 10:00+02', 'client', minutes => 0)$$, :e1, :s_spec), 'SELECT count(*) FROM ips.contact'),
          '22003, 0 written', 'a contact of 0 minutes');
SELECT is(pg_temp.bad(format($$SELECT ips.record_contact(%s, %s, '2024-03-01 10:00+02', 'client', minutes => 1440)$$, :e1, :s_spec), 'SELECT count(*) FROM ips.contact'),
          'no error, 1 written', 'a contact of 1 440 minutes (a whole day) is allowed');
SELECT is(pg_temp.bad($$SELECT ips.add_client('B-11', 1899)$$, 'SELECT count(*) FROM ips.client'),
          '22003, 0 written', 'a birth year 1899');
SELECT is(pg_temp.bad($$UPDATE ips.rule SET days = 100000 WHERE code = 'no_contact'$$, $$SELECT count(*) FROM ips.rule WHERE days > 3660$$),
          '22003, 0 written', 'a rule window of 100 000 days (ips.rule_check)');

-- 5. A missing required argument: 22004, naming it
SELECT throws_ok(format($$SELECT ips.transition(%s, NULL)$$, :e1), '22004', 'episode state must not be NULL',
                 'transition to NULL (1.1: 22023 unknown episode state "NULL")');
SELECT throws_ok(format($$SELECT ips.add_staff(%s, 'X', NULL)$$, :ta), '22004', 'staff role must not be NULL', 'add_staff with a NULL role');
SELECT throws_ok(format($$SELECT ips.give_consent(%s, NULL, '2024-01-01')$$, :c1), '22004', 'consent scope must not be NULL', 'give_consent with a NULL scope');
SELECT throws_ok(format($$SELECT ips.start_job(NULL, %s, '2024-03-01')$$, :emp), '22004', 'the episode id must not be NULL', 'start_job with a NULL episode');
SELECT throws_ok(format($$SELECT ips.record_contact(%s, NULL, '2024-03-01 10:00+02', 'client')$$, :e1), '22004', 'the staff member id must not be NULL',
                 'record_contact with a NULL staff member');
SELECT throws_ok($$SELECT * FROM ips.fidelity(NULL, '2024-01-01', '2024-06-30')$$, '22004', 'team_id must not be NULL', 'fidelity of a NULL team');
SELECT throws_ok(format($$SELECT * FROM ips.fidelity(%s, '-infinity', '2024-06-30')$$, :ta), '22008',
                 'a fidelity period needs real days, not infinity', 'fidelity from -infinity: 22008 with a hint');

-- Every required argument (no default) of every API function, given as NULL with valid
-- values for the others: 22004.  (rule_compliance's team_id is optional: NULL = every team.)
SELECT ips.open_review(:ta, '2024-01-01', '2024-05-31', '2024-08-20') AS rv2 \gset
CREATE TEMP TABLE arg_value (n text, val text);
INSERT INTO arg_value VALUES ('episode_id', :'e1'), ('staff_id', :'s_spec'), ('client_id', :'c3'), ('team_id', :'ta'),
    ('employer_id', :'emp'), ('job_id', :'j1'), ('care_relationship_id', :'cr1'), ('review_id', :'rv2'), ('study_id', :'st2');
CREATE FUNCTION pg_temp.arg(fn text, arg text, typ text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce((SELECT quote_literal(val) FROM arg_value WHERE n = arg),
        CASE WHEN typ = 'date' THEN '''2024-03-01''' WHEN typ LIKE 'timestamp%' THEN '''2024-03-01 10:00+02'''
             WHEN arg = 'role' THEN '''specialist''' WHEN arg = 'scope' THEN '''employer_disclosure'''
             WHEN arg = 'to_state' THEN '''on_hold''' WHEN arg = 'kind' AND fn = 'record_contact' THEN '''client'''
             WHEN arg = 'kind' THEN '''competitive''' WHEN arg = 'item' THEN '''O2''' WHEN arg = 'score' THEN '4'
             WHEN typ = 'text' THEN '''x''' WHEN typ = 'boolean' THEN 'true' WHEN typ = 'numeric' THEN '10'
             WHEN typ = 'integer' THEN '30' ELSE '1' END)
$$;
CREATE TEMP TABLE null_answer (fn text, arg text, st text);
DO $$
DECLARE
    f record;
    args text;
    st text;
BEGIN
    FOR f IN SELECT p.proname, p.proargnames, p.pronargs - p.pronargdefaults AS required,
                    (SELECT array_agg(format_type(t, NULL) ORDER BY o) FROM unnest(p.proargtypes) WITH ORDINALITY u(t, o)) AS types
               FROM pg_proc p
              WHERE p.pronamespace = 'ips'::regnamespace AND p.proname IN
                    ('add_team', 'add_staff', 'add_client', 'start_care_relationship', 'end_care_relationship', 'give_consent',
                     'withdraw_consent', 'add_employer', 'refer', 'assign_specialist', 'transition', 'complete_career_profile',
                     'record_contact', 'record_employer_contact', 'start_job', 'end_job', 'start_studies', 'end_studies',
                     'record_team_meeting', 'fidelity', 'fidelity_summary', 'fidelity_all', 'open_review', 'rate',
                     'client_record', 'access_report', 'refuse_consent', 'set_out_of_work_at_entry', 'add_reviewer',
                     'add_action', 'complete_action', 'close_review', 'fidelity_report', 'rule_compliance')
    LOOP
        FOR k IN 1 .. f.required LOOP
            SELECT string_agg(CASE WHEN i = k THEN 'NULL' ELSE pg_temp.arg(f.proname, f.proargnames[i], f.types[i]) END
                              || '::' || f.types[i], ', ' ORDER BY i)
              INTO args FROM generate_series(1, f.required) i;
            BEGIN
                EXECUTE format('SELECT * FROM ips.%I(%s)', f.proname, args);
                st := 'no error';
                RAISE SQLSTATE 'TAPOK';
            EXCEPTION WHEN SQLSTATE 'TAPOK' THEN NULL;
                WHEN OTHERS THEN st := SQLSTATE;
            END;
            INSERT INTO null_answer VALUES (f.proname, f.proargnames[k], st);
        END LOOP;
    END LOOP;
END $$;
SELECT is((SELECT string_agg(fn || '(' || arg || '): ' || st, ', ' ORDER BY fn, arg) FROM null_answer
            WHERE st <> '22004' AND (fn, arg) <> ('rule_compliance', 'team_id')), NULL,
          'every required argument of the API given as NULL answers 22004 (1.1: 42501, 22023, 22003, P0002 or rows)');
SELECT cmp_ok((SELECT count(*) FROM null_answer), '>=', 80::bigint, 'at least 80 required arguments tried');

-- 6. Settings are checked when written; reads keep working
SET LOCAL ROLE :"adm";
SELECT is(pg_temp.bad($$UPDATE ips.setting SET value = 'Mars/Olympus' WHERE name = 'time_zone'$$,
                      $$SELECT count(*) FROM ips.setting WHERE name = 'time_zone' AND value <> 'Europe/Helsinki'$$),
          '22023, 0 written', 'time_zone Mars/Olympus (1.1: stored; every contact write and alert then failed)');
SELECT is(pg_temp.bad($$UPDATE ips.setting SET value = 'abc' WHERE name = 'small_cell_threshold'$$,
                      $$SELECT count(*) FROM ips.setting WHERE name = 'small_cell_threshold' AND value <> '5'$$),
          '22023, 0 written', 'small_cell_threshold abc (1.1: stored; analysts'' outcomes then failed with 22P02)');
SELECT is(pg_temp.bad($$UPDATE ips.setting SET value = '-1' WHERE name = 'small_cell_threshold'$$,
                      $$SELECT count(*) FROM ips.setting WHERE name = 'small_cell_threshold' AND value <> '5'$$),
          '22023, 0 written', 'small_cell_threshold -1');
SELECT is(pg_temp.bad($$UPDATE ips.setting SET value = 'maybe' WHERE name = 'engaged_requires_care_relationship'$$,
                      $$SELECT count(*) FROM ips.setting WHERE name = 'engaged_requires_care_relationship' AND value <> 'true'$$),
          '22023, 0 written', 'a boolean setting maybe');
SELECT is(pg_temp.bad($$UPDATE ips.setting SET value = 'competitive,unicorn' WHERE name = 'competitive_job_kinds'$$,
                      $$SELECT count(*) FROM ips.setting WHERE name = 'competitive_job_kinds' AND value LIKE '%unicorn%'$$),
          '22023, 0 written', 'competitive_job_kinds with a kind that does not exist');
SELECT is(pg_temp.bad($$UPDATE ips.setting SET value = '1700-01-01' WHERE name = 'earliest_fact_date'$$,
                      $$SELECT count(*) FROM ips.setting WHERE name = 'earliest_fact_date' AND value <> '1900-01-01'$$),
          '22023, 0 written', 'earliest_fact_date 1700-01-01 (the past may be widened to 1800 at most)');
SELECT is(pg_temp.bad($$UPDATE ips.setting SET value = 'Europe/Stockholm' WHERE name = 'time_zone'$$,
                      $$SELECT count(*) FROM ips.setting WHERE name = 'time_zone' AND value = 'Europe/Stockholm'$$),
          'no error, 1 written', 'a real time zone is accepted');
SELECT is(pg_temp.bad($$UPDATE ips.setting SET value = '1850-01-01' WHERE name = 'earliest_fact_date'$$,
                      $$SELECT count(*) FROM ips.setting WHERE name = 'earliest_fact_date' AND value = '1850-01-01'$$),
          'no error, 1 written', 'earliest_fact_date widened to 1850-01-01');
RESET ROLE;
SELECT is(pg_temp.bad(format($$SELECT ips.refer(%s, %s, '1860-01-01')$$, :cb3, :ta), 'SELECT count(*) FROM ips.episode'),
          'no error, 1 written', 'with the past widened, a referral of 1860 is stored');
SELECT lives_ok($$SELECT count(*) FROM ips.contact_alerts(ips.local_date(now()))$$, 'alerts still answer after the refused settings');
SET LOCAL ROLE :"an";
SELECT lives_ok($$SELECT count(*) FROM ips.outcomes_quarterly$$, 'analysts'' outcomes still answer');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
