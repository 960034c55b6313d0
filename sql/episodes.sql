-- One client's path through IPS, the labels people read, and the errors a
-- clinical app shows.  (A fresh extension, so that ids are the same every run.)
DROP EXTENSION ips CASCADE;
CREATE EXTENSION ips;
SET TimeZone = 'Europe/Helsinki';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default
\set SHOW_CONTEXT never

-- The labels of states, closing reasons, contact kinds and modes
SELECT v.category, v.code, ips.label(v.code, 'fi') AS fi, ips.label(v.code, 'sv') AS sv, ips.label(v.code, 'en') AS en
  FROM ips.vocabulary v
 WHERE v.category IN ('state', 'close_reason', 'contact_kind', 'contact_mode', 'contact_setting', 'job_kind')
 ORDER BY v.category, v.ordinal;

-- ips.language picks the language when none is given
SET ips.language = 'fi';
SELECT ips.label('job_search') AS state_in_finnish;
SET ips.language = 'sv';
SELECT ips.label('job_search') AS state_in_swedish;
RESET ips.language;
SELECT ips.label('job_search') AS state_in_english;
SET ips.language = 'de';
SELECT ips.label('job_search', 'de');

-- A client's episode, step by step
SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa') AS team;
SELECT ips.add_staff(1, 'Anna Virtanen', 'specialist') AS specialist;
SELECT ips.add_client('vaasa-ehr-4711', 1991, 'Vaasa') AS client;
SELECT ips.start_care_relationship(1, 'Vaasa psychiatric outpatient clinic', '2025-01-10') AS care_relationship;
SELECT ips.add_employer('Prisma Vaasa', '0112038-9', 'retail') AS employer;
SELECT ips.refer(1, 1, '2025-02-03', 'psychiatric_outpatient') AS episode;
SELECT ips.assign_specialist(1, 1, '2025-02-04');
SELECT ips.transition(1, 'engaged', '2025-02-05 10:00');
SELECT ips.complete_career_profile(1, '2025-02-20');
SELECT ips.transition(1, 'job_search', '2025-02-21 09:00', 'career profile done');
SELECT ips.record_contact(1, 1, '2025-02-21 09:00', 'client', 'in_person', 'community', 60) AS contact;
SELECT ips.record_employer_contact(1, 1, '2025-02-25 13:00', true, 1) AS employer_contact;
SELECT ips.start_job(1, 1, '2025-03-17', 'competitive', '5223', 20, 'sales assistant') AS job;
SELECT ips.transition(1, 'on_hold', '2025-05-02 12:00', 'hospital stay');
SELECT ips.transition(1, 'employed', '2025-05-20 08:00', 'back from hospital');
SELECT ips.end_job(1, '2025-09-30', 'fixed-term contract ended');

SELECT state, ips.label(state, 'fi') AS tila, referred_on, entry_on, career_profile_on, state_since
  FROM ips.episode;
SELECT from_state, to_state, ips.label(to_state, 'sv') AS till, at, reason
  FROM ips.episode_state_history ORDER BY history_id;
SELECT display_name, active_clients, fte, clients_per_fte FROM ips.caseload;

-- Errors: each names the value, says what to do, and writes nothing
SELECT ips.transition(1, 'engaged', '2025-10-01 10:00');
SELECT ips.transition(1, 'hired');
SELECT ips.transition(1, 'closed', '2025-10-01 10:00');
SELECT ips.transition(1, 'closed', '2025-10-01 10:00', 'disengaged');
SELECT ips.transition(1, 'studying', '2025-09-01 10:00');
SELECT ips.refer(1, 1, '2025-10-01');
SELECT ips.record_contact(1, 1, '2025-01-01 10:00', 'client');
SELECT ips.record_contact(1, 1, '2025-10-01 10:00', 'client', minutes => -10);
SELECT ips.record_contact(1, 1, '2025-10-01 10:00', 'coffee');
SELECT ips.record_contact(42, 1, '2025-10-01 10:00', 'client');
SELECT ips.add_employer('Bad Oy', '0112038-8');
SELECT ips.add_employer('Bad Oy', '0000006-0');
SELECT ips.add_employer('Bad Oy', '1234');
UPDATE ips.episode SET entry_on = '2025-01-01';
DELETE FROM ips.episode;
SELECT count(*) AS contacts, (SELECT count(*) FROM ips.employer) AS employers,
       (SELECT count(*) FROM ips.episode_state_history) AS history_rows
  FROM ips.contact;
