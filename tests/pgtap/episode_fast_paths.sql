-- The fast paths of the import (issue 7): the helpers in C (ips.require,
-- ips.check_code, ips.local_date, ips.local_midnight), the direct look-ups of
-- the guards and their caches, and ips.record_team_meeting.  Every
-- expectation here is what the PL/pgSQL and SQL definitions of 1.0 give.
BEGIN;
SELECT plan(34);

-- SQLSTATE | message | hint of a statement's error
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    m text;
    h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, h = PG_EXCEPTION_HINT;
    RETURN st || ' | ' || m || ' | ' || coalesce(h, '(no hint)');
END $$;

-- 1. ips.require
SELECT is(pg_temp.err($$SELECT ips.require(NULL::int, 'x')$$), '22004 | x must not be NULL | Give x.', 'require: NULL');
SELECT is(pg_temp.err($$SELECT ips.require(NULL::date, NULL)$$), '22004 | <NULL> must not be NULL | Give .',
          'require: NULL, and no name either');
SELECT is(pg_temp.err($$SELECT ips.require(0, 'x')$$), 'no error', 'require: a value');

-- 2. ips.check_code, also with the vocabulary changed in the same transaction
SELECT is(pg_temp.err($$SELECT ips.check_code('state', 'hired', 'episode state')$$),
          '22023 | unknown episode state "hired" | Use one of: referred, engaged, job_search, employed, studying, on_hold, closed.',
          'check_code: unknown code, the codes in their order as hint');
SELECT is(pg_temp.err($$SELECT ips.check_code('state', NULL, 'episode state')$$),
          '22004 | episode state must not be NULL | Give the episode state.',
          'check_code: NULL code is a missing argument (22004; 1.1 answered 22023, issue 13)');
SELECT is(pg_temp.err($$SELECT ips.check_code('no_such_category', 'x', 'thing')$$),
          '22023 | unknown thing "x" | Use one of: .', 'check_code: unknown category');
SELECT is(pg_temp.err($$SELECT ips.check_code(NULL, 'x', NULL)$$),
          '22023 | unknown <NULL> "x" | Use one of: .', 'check_code: NULL category and name');
SELECT is(pg_temp.err($$SELECT ips.check_code('job_kind', 'work_trial', 'job kind')$$), 'no error', 'check_code: a known code');
INSERT INTO ips.vocabulary (category, code, ordinal) VALUES ('job_kind', 'apprenticeship', 9);
DELETE FROM ips.vocabulary WHERE category = 'job_kind' AND code = 'work_trial';
SELECT is(pg_temp.err($$SELECT ips.check_code('job_kind', 'apprenticeship', 'job kind')$$), 'no error',
          'check_code: a code added in this transaction');
SELECT is(pg_temp.err($$SELECT ips.check_code('job_kind', 'work_trial', 'job kind')$$),
          '22023 | unknown job kind "work_trial" | Use one of: competitive, wage_subsidy, self_employed, paid_work_trial, apprenticeship.',
          'check_code: a code removed in this transaction');

-- 3. ips.local_date and ips.local_midnight follow the setting time_zone at once
SELECT is(ips.local_date('2025-06-30 22:30+00'), '2025-07-01'::date, 'local_date: Helsinki by default');
SELECT is(ips.local_date(NULL), NULL::date, 'local_date(NULL) is NULL');
SELECT is(ips.local_midnight('2025-07-01'), '2025-06-30 21:00+00'::timestamptz, 'local_midnight: Helsinki');
UPDATE ips.setting SET value = 'UTC' WHERE name = 'time_zone';
SELECT is(ips.local_date('2025-06-30 22:30+00'), '2025-06-30'::date, 'local_date: the changed time zone');
SELECT is(ips.local_midnight('2025-07-01'), '2025-07-01 00:00+00'::timestamptz, 'local_midnight: the changed time zone');
SAVEPOINT tokyo;
UPDATE ips.setting SET value = 'Asia/Tokyo' WHERE name = 'time_zone';
SELECT is(ips.local_date('2025-06-30 16:00+00'), '2025-07-01'::date, 'local_date: changed in a subtransaction');
ROLLBACK TO SAVEPOINT tokyo;
SELECT is(ips.local_date('2025-06-30 16:00+00'), '2025-06-30'::date, 'local_date: the subtransaction rolled back');
DELETE FROM ips.setting WHERE name = 'time_zone';
SELECT is(ips.local_date('2025-06-30 22:30+00'), '2025-07-01'::date, 'local_date: no setting, Helsinki');
SELECT is(pg_temp.err($$INSERT INTO ips.setting (name, value, description) VALUES ('time_zone', 'Mars/Olympus', 'test')$$),
          '22023 | setting time_zone cannot be "Mars/Olympus" | Give a time zone PostgreSQL knows, e.g. Europe/Helsinki (see pg_timezone_names).',
          'a bad time zone is refused when written (issue 13)');
-- the read path still answers clearly if one got in with the check off
ALTER TABLE ips.setting DISABLE TRIGGER setting_check;
INSERT INTO ips.setting (name, value, description) VALUES ('time_zone', 'Mars/Olympus', 'test');
ALTER TABLE ips.setting ENABLE TRIGGER setting_check;
SELECT is(pg_temp.err($$SELECT ips.local_date(now())$$), '22023 | time zone "Mars/Olympus" not recognized | ',
          'local_date: a bad time zone is an error');
UPDATE ips.setting SET value = 'Europe/Helsinki' WHERE name = 'time_zone';

-- 4. The fact guard: client taken from each row's episode, also when rows of
--    several episodes come in one statement; a closure counts at once.
SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa') AS team \gset
SELECT ips.add_staff(:team, 'Anna Specialist', 'specialist', 1, current_user::name) AS anna \gset
SELECT ips.add_client('fast-1') AS c1 \gset
SELECT ips.add_client('fast-2') AS c2 \gset
SELECT ips.refer(:c1, :team, '2025-02-01') AS e1 \gset
SELECT ips.refer(:c2, :team, '2025-02-01') AS e2 \gset
INSERT INTO ips.contact (episode_id, staff_id, at, kind)
SELECT e, :anna, '2025-02-10 10:00+02'::timestamptz + n * interval '1 hour', 'client'
  FROM unnest(ARRAY[:e1, :e2, :e1, :e2, :e2, :e1]::bigint[]) WITH ORDINALITY AS x(e, n);
SELECT is((SELECT count(*) FROM ips.contact WHERE (episode_id = :e1 AND client_id = :c1) OR (episode_id = :e2 AND client_id = :c2)),
          6::bigint, 'fact guard: each row gets the client of its own episode');
SELECT is(pg_temp.err(format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (%s, %s, '2025-01-31 23:30+02', 'client')$$, :e1, :anna)),
          format('22023 | at 2025-01-31 of ips.contact is before the referral of episode %s on 2025-02-01 | Check the date; facts of an episode fall within it.', :e1),
          'fact guard: before the referral');
SELECT is(pg_temp.err(format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (%s, %s, '2025-01-31 22:30+00', 'client')$$, :e1, :anna)),
          'no error', 'fact guard: the local day (Helsinki) counts');
SELECT is(pg_temp.err(format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (999999, %s, '2025-02-10 10:00+02', 'client')$$, :anna)),
          'P0002 | no episode with id 999999 | Check the episode id; the caller may also lack the right to see it.',
          'fact guard: unknown episode');
SELECT is(pg_temp.err(format($$INSERT INTO ips.contact (episode_id, client_id, staff_id, at, kind) VALUES (%s, %s, %s, '2025-02-10 10:00+02', 'client')$$, :e1, :c2, :anna)),
          format('22023 | client %s does not match client %s of episode %s | Leave client_id empty; it is taken from the episode.', :c2, :c1, :e1),
          'fact guard: a client that does not match');
SELECT ips.transition(:e2, 'closed', '2025-02-20 12:00+02', 'moved');
SELECT is(pg_temp.err(format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (%s, %s, '2025-02-21 10:00+02', 'client')$$, :e2, :anna)),
          format('55000 | at 2025-02-21 of ips.contact is after episode %s was closed on 2025-02-20 | Refer the client again to start a new episode.', :e2),
          'fact guard: the closure in this transaction counts at once');

-- 5. The history names the staff member of the calling role (ips.current_staff())
SELECT is((SELECT staff_id FROM ips.episode_state_history WHERE episode_id = :e2 AND to_state = 'closed'), :anna::bigint,
          'history: the staff member of the caller');
UPDATE ips.staff SET db_role = NULL WHERE staff_id = :anna;
SELECT ips.transition(:e1, 'on_hold', '2025-02-21 12:00+02');
SELECT is((SELECT staff_id FROM ips.episode_state_history WHERE episode_id = :e1 AND to_state = 'on_hold'), NULL::bigint,
          'history: no staff member for an unmapped role');

-- 6. ips.record_team_meeting: the checks in their order, idempotent
SELECT is(pg_temp.err($$SELECT ips.record_team_meeting(999999, NULL)$$), '22004 | met_on must not be NULL | Give met_on.',
          'team meeting: met_on first');
SELECT is(pg_temp.err($$SELECT ips.record_team_meeting(999999, '2999-01-01')$$),
          'P0002 | no staff member with id 999999 | Check the staff member id; the caller may also lack the right to see it.',
          'team meeting: an unknown staff member before a future date');
SELECT is(pg_temp.err($$SELECT ips.record_team_meeting(999999, '2025-03-01')$$),
          'P0002 | no staff member with id 999999 | Check the staff member id; the caller may also lack the right to see it.',
          'team meeting: an unknown staff member');
SELECT is(pg_temp.err(format($$SELECT ips.record_team_meeting(%s, '2999-01-01')$$, :anna)),
          '22023 | meeting date 2999-01-01 is in the future | Record attendance after the meeting.',
          'team meeting: a future date');
SELECT ips.record_team_meeting(:anna, '2025-03-01');
SELECT is(pg_temp.err(format($$SELECT ips.record_team_meeting(%s, '2025-03-01')$$, :anna)), 'no error',
          'team meeting: recording it again is no error');
SELECT is((SELECT count(*)::int || ' ' || min(team_id)::text FROM ips.team_meeting WHERE staff_id = :anna),
          '1 ' || :team, 'team meeting: one row, with the team of the staff member');

SELECT * FROM finish();
ROLLBACK;
