-- The alerts of one small team as its coaches read them on Wednesday 2025-04-16,
-- in Finnish, Swedish and English.  (A fresh extension, so that ids are the same every run.)
DROP EXTENSION ips CASCADE;
CREATE EXTENSION ips;
SET TimeZone = 'Europe/Helsinki';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default
\set SHOW_CONTEXT never

-- The rules and their defaults
SELECT code, scope, days, count, horizon_days AS horizon, enabled, label_fi, label_sv, label_en
  FROM ips.rule ORDER BY ordinal;

-- Team Kokkola IPS: Aino (full time) and Bertil (half time)
SELECT ips.add_team('Kokkola IPS', 'Pohjanmaa') AS team;
SELECT ips.add_staff(1, 'Aino Mäki', 'specialist') AS aino;
SELECT ips.add_staff(1, 'Bertil Holm', 'specialist', fte => 0.5) AS bertil;
SELECT ips.add_employer('Kokkolan Satama Oy') AS employer;
SELECT ips.add_client('KOK-00' || i) FROM generate_series(1, 5) i;
SELECT ips.start_care_relationship(i, 'Kokkola psychiatric outpatient clinic', '2024-09-01') FROM generate_series(1, 5) i;
SELECT ips.give_consent(i, 'share_with_care', '2024-09-01') FROM generate_series(1, 5) i;

-- KOK-001 (Aino): referred Thu 04-10, not yet met: first contact due 04-17.
SELECT ips.refer(1, 1, '2025-04-10');
SELECT ips.assign_specialist(1, 1, '2025-04-10');
-- KOK-002 (Aino): met and engaged 03-05, nothing since: career profile, employer visit and a contact all due 04-04.
SELECT ips.refer(2, 1, '2025-03-03');
SELECT ips.assign_specialist(2, 1, '2025-03-03');
SELECT ips.record_contact(2, 1, '2025-03-05 10:00', 'client');
SELECT ips.transition(2, 'engaged', '2025-03-05 11:00');
-- KOK-003 (Bertil): engaged in February, job from Mon 04-14; met 04-10 (before the start), no benefits counselling.
SELECT ips.refer(3, 1, '2025-01-27');
SELECT ips.assign_specialist(3, 2, '2025-01-27');
SELECT ips.record_contact(3, 2, '2025-01-28 10:00', 'client');
SELECT ips.transition(3, 'engaged', '2025-01-28 11:00');
SELECT ips.complete_career_profile(3, '2025-02-20');
SELECT ips.record_employer_contact(2, 1, '2025-02-14 09:00', episode_id => 3);
SELECT ips.record_contact(3, 2, d + time '10:00', 'client') FROM unnest('{2025-02-24,2025-03-20,2025-04-10}'::date[]) d;
SELECT ips.start_job(3, 1, '2025-04-14', occupation => '9333', title => 'satamatyöntekijä');
-- KOK-004 (Bertil): engaged, met regularly, withdrew the consent to share with the care team on 04-05.
SELECT ips.refer(4, 1, '2025-02-03');
SELECT ips.assign_specialist(4, 2, '2025-02-03');
SELECT ips.transition(4, 'engaged', '2025-02-04 09:00');
SELECT ips.complete_career_profile(4, '2025-02-25');
SELECT ips.record_employer_contact(2, 1, '2025-02-26 09:00', episode_id => 4, by_client => true);
SELECT ips.record_contact(4, 2, d + time '13:00', 'client') FROM unnest('{2025-02-04,2025-03-04,2025-04-01}'::date[]) d;
SELECT ips.withdraw_consent(4, 'share_with_care', '2025-04-05');
-- KOK-005 (Aino): in hospital, on hold since 03-20: no alerts while paused.
SELECT ips.refer(5, 1, '2025-03-03');
SELECT ips.assign_specialist(5, 1, '2025-03-03');
SELECT ips.record_contact(5, 1, '2025-03-04 10:00', 'client');
SELECT ips.transition(5, 'engaged', '2025-03-04 11:00');
SELECT ips.transition(5, 'on_hold', '2025-03-20 12:00', 'hospital stay');
-- Job development in the week 04-07..04-13: Aino 6 visits, Bertil 1 (half time needs 3); team meeting: Aino only.
SELECT ips.record_employer_contact(1, 1, d + time '09:00') FROM generate_series(date '2025-04-07', '2025-04-12', '1 day') d;
SELECT ips.record_employer_contact(2, 1, '2025-04-08 14:00');
SELECT ips.record_team_meeting(1, '2025-04-09');

-- The alerts of the team on 2025-04-16
SELECT * FROM ips.contact_alerts('2025-04-16', 1);

-- As the coaches read them: in Finnish, Swedish and English
SELECT client_ref, specialist, rule_label, due_on, days_overdue, severity_label
  FROM ips.contact_alerts_labelled('2025-04-16', 1, 'fi');
SELECT client_ref, specialist, rule_label, due_on, days_overdue, severity_label
  FROM ips.contact_alerts_labelled('2025-04-16', 1, 'sv');
SELECT client_ref, specialist, rule_label, due_on, days_overdue, severity_label
  FROM ips.contact_alerts_labelled('2025-04-16', 1, 'en');

-- One client's screen: KOK-003, the day after a meeting at work (04-17)
SELECT ips.record_contact(3, 2, '2025-04-17 15:00', 'client');
SELECT rule, ips.label(rule, 'fi') AS sääntö, due_on, days_overdue, severity FROM ips.episode_alerts(3, '2025-04-17');

-- The month in figures
SELECT * FROM ips.rule_compliance(1, '2025-04-01', '2025-04-16') WHERE due > 0;

-- Errors
SELECT * FROM ips.contact_alerts_labelled('2025-04-16', 1, 'de');
SELECT * FROM ips.contact_alerts(NULL, 1);
SELECT * FROM ips.contact_alerts('2025-04-16', 99);
SELECT * FROM ips.episode_alerts(99, '2025-04-16');
SELECT * FROM ips.rule_compliance(1, '2025-04-30', '2025-04-01');
UPDATE ips.rule SET days = -3 WHERE code = 'no_contact';
UPDATE ips.rule SET count = 5 WHERE code = 'no_contact';
