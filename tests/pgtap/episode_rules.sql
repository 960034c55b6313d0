-- The rules of the episode state machine (issue 2, point 5) and the errors
-- of the episode functions.
BEGIN;
SELECT plan(51);

SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa') AS team \gset
SELECT ips.add_team('Kuopio IPS', 'Pohjois-Savo') AS team2 \gset
SELECT ips.add_staff(:team, 'Anna Specialist', 'specialist') AS anna \gset
SELECT ips.add_staff(:team, 'Sirpa Supervisor', 'supervisor') AS sirpa \gset
SELECT ips.add_staff(:team2, 'Kalle Specialist', 'specialist') AS kalle \gset
SELECT ips.add_employer('Prisma Vaasa', '0112038-9') AS prisma \gset
SELECT ips.add_employer('Wärtsilä', '0737546-2') AS wartsila \gset

-- 1. One open episode per client
SELECT ips.add_client('rules-1') AS c1 \gset
SELECT ips.refer(:c1, :team, '2025-02-01', 'psychiatric_outpatient') AS e1 \gset
SELECT throws_ok(format('SELECT ips.refer(%s, %s, ''2025-02-02'')', :c1, :team), '23505',
                 format('client %s has an open episode already (%s)', :c1, :e1), 'a second open episode is refused');
SELECT throws_ok(format('SELECT ips.refer(%s, %s, ''2025-02-02'')', :c1, :team2), '23505', NULL,
                 'also in another team');

-- 2. Entering engaged: specialist and care relationship
SELECT throws_ok(format('SELECT ips.transition(%s, ''engaged'', ''2025-02-03 10:00+02'')', :e1), '55000',
                 format('episode %s cannot enter state engaged without an employment specialist', :e1),
                 'engaged needs an assigned specialist');
SELECT throws_ok(format('SELECT ips.assign_specialist(%s, %s, ''2025-02-02'')', :e1, :sirpa), '22023', NULL,
                 'a supervisor is not an employment specialist');
SELECT throws_ok(format('SELECT ips.assign_specialist(%s, %s, ''2025-02-02'')', :e1, :kalle), '22023', NULL,
                 'a specialist of another team is refused');
SELECT lives_ok(format('SELECT ips.assign_specialist(%s, %s, ''2025-02-02'')', :e1, :anna), 'assign the team''s specialist');
SELECT throws_ok(format('SELECT ips.transition(%s, ''engaged'', ''2025-02-03 10:00+02'')', :e1), '55000',
                 format('episode %s cannot enter state engaged: client %s has no active care relationship on 2025-02-03', :e1, :c1),
                 'engaged needs an active care relationship');
SELECT ips.start_care_relationship(:c1, 'Vaasa psychiatric outpatient clinic', '2025-02-04') AS cr1 \gset
SELECT throws_ok(format('SELECT ips.transition(%s, ''engaged'', ''2025-02-03 10:00+02'')', :e1), '55000', NULL,
                 'a care relationship that starts later does not count');
SELECT is(ips.transition(:e1, 'engaged', '2025-02-04 23:30+02'), 'engaged', 'engaged on the care relationship''s first day');
SELECT is((SELECT entry_on FROM ips.episode WHERE episode_id = :e1), '2025-02-04'::date,
          'entry date is the local day of the transition (23:30 in Helsinki)');

-- the setting turns the care-relationship check off
SELECT ips.add_client('rules-2') AS c2 \gset
SELECT ips.refer(:c2, :team, '2025-02-01') AS e2 \gset
SELECT ips.assign_specialist(:e2, :anna, '2025-02-01') \gset
UPDATE ips.setting SET value = 'false' WHERE name = 'engaged_requires_care_relationship';
SELECT is(ips.transition(:e2, 'engaged', '2025-02-03 10:00+02'), 'engaged', 'without the setting no care relationship is needed');
UPDATE ips.setting SET value = 'true' WHERE name = 'engaged_requires_care_relationship';

-- 3. Late entry: past times allowed, never before the previous transition, never in the future
SELECT throws_ok(format('SELECT ips.transition(%s, ''job_search'', ''2025-02-04 10:00+02'')', :e1), '22023', NULL,
                 'a transition before the previous one is refused');
SELECT throws_ok(format('SELECT ips.transition(%s, ''job_search'', now() + interval ''1 day'')', :e1), '22023', NULL,
                 'a transition in the future is refused');
SELECT is(ips.transition(:e1, 'job_search', '2025-02-10 09:00+02', 'profile done'), 'job_search', 'a late-entered transition');
SELECT is((SELECT state_since FROM ips.episode WHERE episode_id = :e1), '2025-02-10 09:00+02'::timestamptz,
          'the state keeps the given time');

-- 4. start_job and end_job
SELECT ips.start_job(:e1, :prisma, '2025-03-01', 'competitive', '5223', 20, 'sales assistant') AS j1 \gset
SELECT is((SELECT state FROM ips.episode WHERE episode_id = :e1), 'employed', 'start_job moves job_search to employed');
SELECT ips.start_job(:e1, :wartsila, '2025-03-15', 'competitive', '9329') AS j2 \gset
SELECT is((SELECT count(*) FROM ips.episode_state_history WHERE episode_id = :e1 AND to_state = 'employed'), 1::bigint,
          'a second job while employed changes no state');
SELECT ips.end_job(:j1, '2025-04-30', 'contract ended');
SELECT is((SELECT state FROM ips.episode WHERE episode_id = :e1), 'employed', 'ending one of two jobs keeps employed');
SELECT ips.end_job(:j2, '2025-05-31');
SELECT is((SELECT state FROM ips.episode WHERE episode_id = :e1), 'job_search', 'ending the last job moves back to job_search');
SELECT is((SELECT state_since FROM ips.episode WHERE episode_id = :e1), ips.local_midnight('2025-06-01'),
          'job_search starts the day after the last working day');
SELECT throws_ok(format('SELECT ips.end_job(%s, ''2025-06-30'')', :j2), '55000', NULL, 'a job ends once');
SELECT throws_ok(format('SELECT ips.start_job(%s, %s, ''2025-07-01'', ''zero_hours'')', :e1, :prisma), '22023',
                 'unknown job kind "zero_hours"', 'unknown job kind');
SELECT throws_ok(format('SELECT ips.start_job(%s, %s, ''2025-07-01'', ''competitive'', ''cook'')', :e1, :prisma), '22023',
                 'occupation "cook" is not an ISCO-08 code', 'occupation must be an ISCO-08 code');
SELECT throws_ok(format('SELECT ips.start_job(%s, 999999, ''2025-07-01'')', :e1), 'P0002', 'no employer with id 999999',
                 'unknown employer');
SELECT throws_ok(format('SELECT ips.start_studies(%s, ''2025-01-01'')', :e1), '22023', NULL,
                 'studies starting before the referral are refused (a job that did is held at entry: tests/pgtap/records_entry.sql)');
-- studying from engaged, and from a referred episode nothing starts
SELECT ips.start_studies(:e2, '2025-03-01', 'vocational upper secondary') AS s2 \gset
SELECT is((SELECT state FROM ips.episode WHERE episode_id = :e2), 'studying', 'start_studies moves engaged to studying');
SELECT ips.add_client('rules-3') AS c3 \gset
SELECT ips.refer(:c3, :team, '2025-02-01') AS e3 \gset
SELECT throws_ok(format('SELECT ips.start_job(%s, %s, ''2025-03-01'')', :e3, :prisma), '55000', NULL,
                 'a referred client cannot start a job before engagement');

-- 5. Closing: a reason is needed; disengaged needs documented outreach
SELECT throws_ok(format('SELECT ips.transition(%s, ''closed'', ''2025-03-01 10:00+02'')', :e3), '22023',
                 format('closing episode %s needs a reason', :e3), 'closed needs a reason');
SELECT throws_ok(format('SELECT ips.transition(%s, ''closed'', ''2025-03-01 10:00+02'', ''bored'')', :e3), '22023',
                 'unknown closing reason "bored"', 'unknown closing reason');
-- outreach: 2 attempts -> refused; 3 attempts on one day -> refused; 3 on 2 days within 60 days -> closed
\o /dev/null
SELECT ips.record_contact(:e1, :anna, '2025-06-02 10:00+03', 'outreach_attempt', 'phone');
\o
\o /dev/null
SELECT ips.record_contact(:e1, :anna, '2025-06-02 15:00+03', 'outreach_attempt', 'message');
\o
SELECT throws_ok(format('SELECT ips.transition(%s, ''closed'', ''2025-07-01 10:00+03'', ''disengaged'')', :e1), '55000',
                 format('episode %s cannot be closed as disengaged: 2 outreach attempts on 1 days in the last 60 days', :e1),
                 'two outreach attempts are not enough');
\o /dev/null
SELECT ips.record_contact(:e1, :anna, '2025-06-02 18:00+03', 'outreach_attempt', 'phone');
\o
SELECT throws_ok(format('SELECT ips.transition(%s, ''closed'', ''2025-07-01 10:00+03'', ''disengaged'')', :e1), '55000', NULL,
                 'three attempts on a single day are not enough');
SELECT throws_ok(format('SELECT ips.transition(%s, ''closed'', ''2025-08-05 10:00+03'', ''disengaged'')', :e1), '55000', NULL,
                 'attempts more than 60 days before the closure do not count (2025-06-02 + 60 = 2025-08-01)');
\o /dev/null
SELECT ips.record_contact(:e1, :anna, '2025-06-20 23:30+03', 'outreach_attempt', 'in_person', 'community');
\o
SELECT is(ips.transition(:e1, 'closed', '2025-07-01 10:00+03', 'disengaged'), 'closed',
          '4 attempts on 2 days within 60 days allow closing as disengaged');
SELECT is((SELECT (closed_on, close_reason)::text FROM ips.episode WHERE episode_id = :e1), '(2025-07-01,disengaged)',
          'closing sets closed_on and close_reason');
SELECT throws_ok(format('SELECT ips.transition(%s, ''job_search'', ''2025-07-02 10:00+03'')', :e1), '55000',
                 NULL, 'closed is final');
SELECT is(ips.refer(:c1, :team, '2025-08-01') > :e1, true, 'after closing, the client may be referred again');

-- 6. History: one row per change, append-only
SELECT is((SELECT array_agg(coalesce(from_state, '-') || '>' || to_state ORDER BY history_id)::text
             FROM ips.episode_state_history WHERE episode_id = :e1),
          '{->referred,referred>engaged,engaged>job_search,job_search>employed,employed>job_search,job_search>closed}',
          'history of the episode, one row per change');
SELECT is((SELECT reason FROM ips.episode_state_history WHERE episode_id = :e1 AND to_state = 'job_search' ORDER BY at LIMIT 1),
          'profile done', 'history keeps the reason');
SELECT is((SELECT actor FROM ips.episode_state_history WHERE episode_id = :e1 LIMIT 1), current_user::name, 'history keeps who');
SELECT throws_ok('UPDATE ips.episode_state_history SET reason = ''edited''', '42501', NULL, 'history rows cannot be updated');
SELECT throws_ok('DELETE FROM ips.episode_state_history', '42501', NULL, 'history rows cannot be deleted');
SELECT throws_ok(format('INSERT INTO ips.episode_state_history (episode_id, client_id, to_state, at, actor)
                         VALUES (%s, %s, ''employed'', now(), current_user)', :e2, :c2), '42501', NULL,
                 'history rows are written only by the state machine');
SELECT throws_ok('TRUNCATE ips.episode_state_history CASCADE', '42501', NULL, 'history cannot be truncated');

-- 7. Facts of an episode: errors name the value and write nothing
SELECT throws_ok(format('SELECT ips.record_contact(%s, %s, ''2025-01-31 12:00+02'', ''client'')', :e2, :anna), '22023',
                 format('at 2025-01-31 of ips.contact is before the referral of episode %s on 2025-02-01', :e2),
                 'a contact dated before the referral');
SELECT throws_ok(format('SELECT ips.record_contact(%s, %s, ''2025-02-10 12:00+02'', ''client'', minutes => -5)', :e2, :anna),
                 '22003', 'minutes -5 is negative', 'negative minutes');
SELECT throws_ok(format('SELECT ips.record_contact(%s, %s, ''2025-02-10 12:00+02'', ''lunch'')', :e2, :anna), '22023',
                 'unknown contact kind "lunch"', 'unknown contact kind');
SELECT throws_ok(format('SELECT ips.record_contact(%s, %s, ''2025-02-10 12:00+02'', ''client'', ''telepathy'')', :e2, :anna),
                 '22023', 'unknown contact mode "telepathy"', 'unknown contact mode');
SELECT throws_ok(format('SELECT ips.record_contact(999999, %s, ''2025-02-10 12:00+02'', ''client'')', :anna), 'P0002',
                 'no episode with id 999999', 'unknown episode');
SELECT throws_ok(format('SELECT ips.record_contact(%s, %s, ''2025-07-05 12:00+03'', ''client'')', :e1, :anna), '55000', NULL,
                 'a contact after the closure');
SELECT is((SELECT count(*) FROM ips.contact WHERE episode_id = :e2), 0::bigint, 'refused contacts wrote nothing');
SELECT is((SELECT client_id FROM ips.contact WHERE episode_id = :e1 LIMIT 1), :c1::bigint, 'a contact carries its episode''s client');

SELECT * FROM finish();
ROLLBACK;
