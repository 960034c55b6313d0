-- As-of truth, local days across daylight saving, and rules and settings changed by an admin.
BEGIN;
SELECT plan(24);
\ir rules_helpers.psql

-- As of a past day: later facts are ignored, the state on that day decides.
-- Referred 2025-03-03 (referral due 03-10); contact 03-12; engaged 03-12; on hold 03-20; closed 04-01.
SELECT pg_temp.ep('2025-03-03') AS x \gset
SELECT pg_temp.con(:x, '2025-03-12');
SELECT pg_temp.tr(:x, 'engaged', '2025-03-12');
SELECT pg_temp.tr(:x, 'on_hold', '2025-03-20');
SELECT pg_temp.tr(:x, 'closed', '2025-04-01', 'client_choice');
SELECT is(pg_temp.al(:x, 'referral_response', '2025-03-11'), 'overdue:1', 'as of 03-11 the later contact is ignored');
SELECT is(pg_temp.al(:x, 'referral_response', '2025-03-12'), NULL, 'as of 03-12 it counts (met late)');
SELECT is((SELECT count(*) FROM ips.episode_alerts(:x, '2025-03-25')), 0::bigint, 'as of 03-25 the episode was on hold: no alerts');
SELECT is((SELECT count(*) FROM ips.episode_alerts(:x, '2025-04-02')), 0::bigint, 'as of 04-02 it was closed: no alerts');
SELECT is((SELECT status FROM ips.expectations((SELECT team_id FROM ctx), '2025-03-01', '2025-03-31')
            WHERE episode_id = :x AND rule = 'referral_response'), 'met_late', 'expectations: the referral response was met late');

-- Local days across daylight saving time (Europe/Helsinki: +02 until 2025-03-30 03:00, +03 until 2025-10-26 04:00).
-- Referred 2025-03-23: due 03-30, the day the clocks go forward.
SELECT pg_temp.ep('2025-03-23') AS s1, pg_temp.ep('2025-03-23') AS s2 \gset
SELECT ips.record_contact(:s1, (SELECT staff_id FROM ctx), '2025-03-30 23:30+03', 'client');   -- 20:30 UTC, local 03-30
SELECT ips.record_contact(:s2, (SELECT staff_id FROM ctx), '2025-03-31 00:30+03', 'client');   -- 21:30 UTC on 03-30, local 03-31
SELECT is(pg_temp.al(:s1, 'referral_response', '2025-03-31'), NULL, 'spring DST: 23:30 local on the due day is on time');
SELECT is((SELECT status FROM ips.expectations(NULL, '2025-03-30', '2025-03-31') WHERE episode_id = :s2 AND rule = 'referral_response'),
          'met_late', 'spring DST: 00:30 local the next day is late although still 03-30 in UTC');
-- Referred 2025-10-19: due 10-26, the day the clocks go back.
SELECT pg_temp.ep('2025-10-19') AS a1, pg_temp.ep('2025-10-19') AS a2 \gset
SELECT ips.record_contact(:a1, (SELECT staff_id FROM ctx), '2025-10-26 23:30+02', 'client');   -- local 10-26
SELECT ips.record_contact(:a2, (SELECT staff_id FROM ctx), '2025-10-27 00:30+02', 'client');   -- 22:30 UTC on 10-26, local 10-27
SELECT is((SELECT status FROM ips.expectations(NULL, '2025-10-26', '2025-10-27') WHERE episode_id = :a1 AND rule = 'referral_response'),
          'met_on_time', 'autumn DST: 23:30 local on the due day is on time');
SELECT is((SELECT status FROM ips.expectations(NULL, '2025-10-26', '2025-10-27') WHERE episode_id = :a2 AND rule = 'referral_response'),
          'met_late', 'autumn DST: 00:30 local the next day is late');
-- An admin moves the region to UTC: 22:30 UTC on 10-26 is then on time.
UPDATE ips.setting SET value = 'UTC' WHERE name = 'time_zone';
SELECT is((SELECT status FROM ips.expectations(NULL, '2025-10-26', '2025-10-27') WHERE episode_id = :a2 AND rule = 'referral_response'),
          'met_on_time', 'setting time_zone changes the local day at once');
UPDATE ips.setting SET value = 'Europe/Helsinki' WHERE name = 'time_zone';

-- An admin changes a rule: referral_response 7 -> 10 days (due 03-13 for a referral on 03-03).
SELECT pg_temp.ep('2025-03-03') AS r \gset
SELECT is(pg_temp.al(:r, 'referral_response', '2025-03-11'), 'overdue:1', 'default 7 days: overdue on 03-11');
UPDATE ips.rule SET days = 10 WHERE code = 'referral_response';
SELECT is(pg_temp.al(:r, 'referral_response', '2025-03-11'), 'due:-2', 'after the change to 10 days: due in 2 days on 03-11');
UPDATE ips.rule SET horizon_days = 0 WHERE code = 'referral_response';
SELECT is(pg_temp.al(:r, 'referral_response', '2025-03-11'), NULL, 'horizon 0: no warning ahead');
UPDATE ips.rule SET enabled = false WHERE code = 'referral_response';
SELECT is(pg_temp.al(:r, 'referral_response', '2025-03-20'), NULL, 'a disabled rule raises nothing');
SELECT is((SELECT due FROM ips.rule_compliance((SELECT team_id FROM ctx), '2025-03-01', '2025-03-31') WHERE rule = 'referral_response'),
          0, 'a disabled rule has no expectations');

-- As a member of ips_admin (ips.create_roles): the change applies at once; a specialist may read alerts but not change rules.
SELECT ips.create_roles();
CREATE ROLE rules_test_admin LOGIN IN ROLE ips_admin;
CREATE ROLE rules_test_specialist LOGIN IN ROLE ips_specialist;
SET LOCAL ROLE rules_test_admin;
UPDATE ips.rule SET enabled = true, days = 8 WHERE code = 'referral_response';
RESET ROLE;
SELECT is(pg_temp.al(:r, 'referral_response', '2025-03-12'), 'overdue:1', 'ips_admin set 8 days: due 03-11, overdue 1 on 03-12');
SET LOCAL ROLE rules_test_specialist;
SELECT throws_ok($$UPDATE ips.rule SET days = 1 WHERE code = 'referral_response'$$, '42501', NULL, 'a specialist may not change rules');
RESET ROLE;

-- Bad edits are refused with a specific SQLSTATE and change nothing.
SELECT throws_ok($$UPDATE ips.rule SET days = -1 WHERE code = 'no_contact'$$, '22003', NULL, 'negative days: 22003');
SELECT throws_ok($$UPDATE ips.rule SET code = 'contact' WHERE code = 'no_contact'$$, '22023', NULL, 'renaming a rule: 22023');
SELECT throws_ok($$UPDATE ips.rule SET count = 0 WHERE code = 'first_month_weekly'$$, '22003', NULL, 'zero weekly blocks: 22003');
SELECT is((SELECT days FROM ips.rule WHERE code = 'no_contact'), 30, 'no_contact still has 30 days');

-- Labels of rules in fi, sv, en; an edited label is what ips.label shows.
SELECT is(ips.label('no_contact', 'sv'), 'Ingen kontakt med klienten: ta kontakt', 'rule label in Swedish');
UPDATE ips.rule SET label_fi = 'Yhteys katkennut: tavoita asiakas' WHERE code = 'no_contact';
SELECT is(ips.label('no_contact', 'fi'), 'Yhteys katkennut: tavoita asiakas', 'edited rule label shows in ips.label');
-- pg_restore loads dumped rows after CREATE EXTENSION inserted the defaults: the dumped row replaces the default.
INSERT INTO ips.rule (code, ordinal, scope, days, count, horizon_days, enabled, label_fi, label_sv, label_en, description)
VALUES ('career_profile', 2, 'episode', 45, NULL, 3, true, 'Uraprofiili', 'Karriärprofil', 'Career profile', 'restored');
SELECT is((SELECT days || '/' || horizon_days || '/' || description FROM ips.rule WHERE code = 'career_profile'), '45/3/restored',
          'a restored rule row replaces the default');

SELECT * FROM finish();
ROLLBACK;
