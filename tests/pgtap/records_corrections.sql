-- Issue 16 item 4: corrections learned late.  A hospital stay reported afterwards is inserted
-- before the transitions recorded since; the state machine checks the whole corrected sequence,
-- the rows keep who inserted them and when, and as-of answers use the corrected history.
--
-- Episode: referred 2025-02-24, engaged Mon 03-03 (entry), job_search 04-01 12:00, no employer
-- contact.  rapid_job_search is due entry + 30 = 04-02.  Learned on 04-20: the client was in
-- hospital 03-10 .. 03-19 (on hold from 03-10 12:00, engaged again 03-20 09:00: the days whose
-- state at their end is on_hold are 03-10 .. 03-19 = 10 days), so the due day moves to 04-12.
BEGIN;
SELECT plan(17);
SET LOCAL timezone = 'Europe/Helsinki';
\ir fidelity_helpers.psql
CREATE FUNCTION pg_temp.states(e bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(coalesce(h.from_state, '-') || '>' || h.to_state || '@' || ips.local_date(h.at), ' ' ORDER BY h.at, h.history_id)
      FROM ips.episode_state_history h WHERE h.episode_id = e
$$;
CREATE FUNCTION pg_temp.al(e bigint, r text, d date) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(a.due_on || ' ' || a.severity || ':' || a.days_overdue, ',' ORDER BY a.due_on)
      FROM ips.episode_alerts(e, d) a WHERE a.rule = r
$$;

SELECT ips.add_team('Corrections', 'Pohjanmaa') AS t \gset
SELECT ips.add_staff(:t, 'A', 'specialist') AS a \gset
SELECT pg_temp.engaged(:t, :a, 'late-1', '2025-03-03') AS e \gset
SELECT ips.transition(:e, 'job_search', '2025-04-01 12:00+03');
SELECT is(pg_temp.al(:e, 'rapid_job_search', '2025-04-05'), '2025-04-02 overdue:3', 'before the correction: due 04-02, overdue 3 on 04-05');

-- 1.1 refused the late pause (a transition earlier than the last one)
SELECT throws_ok(format($$SELECT ips.transition(%s, 'on_hold', '2025-03-10 12:00+02')$$, :e), '22023', NULL,
                 'ips.transition still refuses a transition before the last one');
SELECT is(ips.record_pause(:e, '2025-03-10 12:00+02', '2025-03-20 09:00+02', 'hospital stay'), 2, 'record_pause inserts two transitions');
SELECT is(pg_temp.states(:e),
          '->referred@2025-02-24 referred>engaged@2025-03-03 engaged>on_hold@2025-03-10 on_hold>engaged@2025-03-20 engaged>job_search@2025-04-01',
          'the corrected history, in order of the instants');
SELECT is((SELECT string_agg(h.to_state || ' ' || (h.actor = current_user) || ' ' || (h.recorded_at = now()), ', ' ORDER BY h.at)
             FROM ips.episode_state_history h, ips.episode_state_history j
            WHERE h.episode_id = :e AND j.episode_id = :e AND j.to_state = 'job_search'
              AND h.history_id > j.history_id AND h.at < j.at),
          'on_hold true true, engaged true true', 'the inserted rows come after job_search in the log, with who inserted them and when (recorded_at)');
SELECT is((SELECT state FROM ips.episode WHERE episode_id = :e), 'job_search', 'the current state is unchanged');
SELECT is(pg_temp.al(:e, 'rapid_job_search', '2025-04-05'), '2025-04-12 due:-7', 'as of 04-05 the corrected history moves the due day to 04-12');
SELECT is(pg_temp.al(:e, 'rapid_job_search', '2025-04-13'), '2025-04-12 overdue:1', 'and it falls due then');
SELECT is((SELECT count(*)::int FROM ips.expectations(:t, '2025-03-01', '2025-04-11') WHERE episode_id = :e AND rule = 'rapid_job_search'), 0,
          'expectations up to 04-11 no longer hold a missed rapid job search');

-- the whole sequence is checked
SELECT throws_ok(format($$SELECT ips.insert_transitions(%s, ARRAY['on_hold'], ARRAY['2025-03-25 12:00+02'::timestamptz])$$, :e),
                 '55000', NULL, 'a pause without its end would not lead back to engaged before job_search: refused');
SELECT throws_ok(format($$SELECT ips.insert_transitions(%s, ARRAY['on_hold', 'job_search'], ARRAY['2025-03-25 12:00+02', '2025-03-27 12:00+02']::timestamptz[])$$, :e),
                 '55000', NULL, 'a pause returns only to the state it paused');
SELECT throws_ok(format($$SELECT ips.insert_transitions(%s, ARRAY['employed', 'engaged'], ARRAY['2025-03-25 12:00+02', '2025-03-27 12:00+02']::timestamptz[])$$, :e),
                 '55000', NULL, 'employed needs a job on that day');
SELECT throws_ok(format($$SELECT ips.insert_transitions(%s, ARRAY['on_hold', 'job_search'], ARRAY['2025-04-02 12:00+03', '2025-04-03 12:00+03']::timestamptz[])$$, :e),
                 '22023', NULL, 'after the last recorded transition: use ips.transition');
SELECT throws_ok(format($$SELECT ips.insert_transitions(%s, ARRAY['closed'], ARRAY['2025-03-25 12:00+02'::timestamptz])$$, :e),
                 '22023', NULL, 'a closure is not inserted');

-- What the team could see: a client contact of 03-08 entered late (recorded after the rest of
-- this test's facts, which all carry now(): halfway to the region's next midnight, so that it is
-- later and still today at any time of day; an hour later failed from 23:00 Helsinki time on, as
-- a recorded_at in the future).  Referral 03-03: referral_response due 03-10.  As of 03-12 the
-- corrected record has it met; as the team saw it before the late entry, it was overdue 2 days.
SELECT ips.add_client('late-2') AS c2 \gset
SELECT ips.refer(:c2, :t, '2025-03-03') AS e2 \gset
SELECT ips.assign_specialist(:e2, :a, '2025-03-03');
SELECT now() + (ips.local_midnight(ips.local_date(now()) + 1) - now()) / 2 AS late \gset
INSERT INTO ips.contact (episode_id, staff_id, at, kind, mode, setting, recorded_at)
VALUES (:e2, :a, '2025-03-08 10:00+02', 'client', 'in_person', 'community', :'late');
SELECT is((SELECT count(*)::int FROM ips.contact_alerts('2025-03-12', :t) WHERE episode_id = :e2 AND rule = 'referral_response'), 0,
          'as corrected: the referral response was met on 03-08');
SELECT is((SELECT string_agg(rule || ' ' || severity || ':' || days_overdue, ', ') FROM ips.alerts_as_known('2025-03-12', now(), :t)
            WHERE episode_id = :e2 AND rule = 'referral_response'), 'referral_response overdue:2',
          'as the team could see it before the late entry: overdue 2 days');
SELECT is((SELECT count(*)::int FROM ips.alerts_as_known('2025-03-12', :'late', :t) WHERE episode_id = :e2 AND rule = 'referral_response'), 0,
          'known once the contact was entered');

SELECT * FROM finish();
ROLLBACK;
