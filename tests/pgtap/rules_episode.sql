-- Contact rules of an episode before any job: referral_response, career_profile,
-- rapid_job_search, no_contact, care_relationship, consent_for_care.
-- Every expected figure is worked out by hand from the defaults of ips.rule
-- (docs/rules.md) in the comments beside it.
BEGIN;
SELECT plan(65);
\ir rules_helpers.psql

-- ===== referral_response: 7 days, horizon 2.  Referred Mon 2025-03-03, due 2025-03-10.
CREATE TEMP TABLE e AS SELECT pg_temp.ep('2025-03-03') AS rr1, pg_temp.ep('2025-03-03') AS rr2,
    pg_temp.ep('2025-03-03') AS rr3, pg_temp.ep('2025-03-03') AS rr4, pg_temp.ep('2025-03-03') AS rr5;
SELECT is(pg_temp.al(rr1, 'referral_response', '2025-03-07'), NULL, 'referral_response: silent 3 days before the due day (horizon 2)') FROM e;
SELECT is(pg_temp.al(rr1, 'referral_response', '2025-03-08'), 'due:-2', 'referral_response: due 2 days ahead') FROM e;
SELECT is(pg_temp.al(rr1, 'referral_response', '2025-03-10'), 'overdue:0', 'referral_response: unmet on the due day: overdue 0') FROM e;
SELECT is(pg_temp.al(rr1, 'referral_response', '2025-03-11'), 'overdue:1', 'referral_response: fires the day after') FROM e;
-- met on the last allowed day, at 23:30 local time
SELECT pg_temp.con(rr2, '2025-03-10', at => '23:30') FROM e;
SELECT is(pg_temp.al(rr2, 'referral_response', '2025-03-11'), NULL, 'referral_response: contact 23:30 on the last day is on time') FROM e;
-- a message is not a contact; a phone call is
SELECT pg_temp.con(rr3, '2025-03-05', mode => 'message') FROM e;
SELECT is(pg_temp.al(rr3, 'referral_response', '2025-03-11'), 'overdue:1', 'referral_response: a message does not count') FROM e;
SELECT pg_temp.con(rr3, '2025-03-06', mode => 'phone') FROM e;
SELECT is(pg_temp.al(rr3, 'referral_response', '2025-03-11'), NULL, 'referral_response: a phone call counts') FROM e;
-- closed: silent
SELECT pg_temp.tr(rr4, 'closed', '2025-03-06', 'never_engaged') FROM e;
SELECT is(pg_temp.al(rr4, 'referral_response', '2025-03-11'), NULL, 'referral_response: silent once closed') FROM e;
-- entered late, dated in time
SELECT is(pg_temp.al(rr5, 'referral_response', '2025-03-12'), 'overdue:2', 'referral_response: overdue before the late entry') FROM e;
SELECT pg_temp.con(rr5, '2025-03-09') FROM e;
SELECT is(pg_temp.al(rr5, 'referral_response', '2025-03-12'), NULL, 'referral_response: a contact entered late but dated in time counts') FROM e;

-- ===== career_profile: 30 days from entry, horizon 7.  Entry Mon 2025-03-10, due 2025-04-09.
CREATE TEMP TABLE c AS SELECT pg_temp.ep('2025-03-03', '2025-03-10') AS cp1, pg_temp.ep('2025-03-03', '2025-03-10') AS cp2,
    pg_temp.ep('2025-03-03', '2025-03-10') AS cp3, pg_temp.ep('2025-03-03', '2025-03-10') AS cp4,
    pg_temp.ep('2025-03-03', '2025-03-10') AS cp5;
SELECT is(pg_temp.al(cp1, 'career_profile', '2025-04-01'), NULL, 'career_profile: silent 8 days ahead') FROM c;
SELECT is(pg_temp.al(cp1, 'career_profile', '2025-04-02'), 'due:-7', 'career_profile: due 7 days ahead') FROM c;
SELECT is(pg_temp.al(cp1, 'career_profile', '2025-04-10'), 'overdue:1', 'career_profile: fires the day after') FROM c;
SELECT ips.complete_career_profile(cp2, '2025-04-09') FROM c;
SELECT is(pg_temp.al(cp2, 'career_profile', '2025-04-10'), NULL, 'career_profile: completed on the last day') FROM c;
-- on hold 2025-03-20 .. back engaged 2025-03-25: days 03-20..03-24 paused (5), due 2025-04-14
SELECT pg_temp.tr(cp3, 'on_hold', '2025-03-20'), pg_temp.tr(cp3, 'engaged', '2025-03-25') FROM c;
SELECT is((SELECT count(*) FROM ips.episode_alerts(cp3, '2025-03-22')), 0::bigint, 'career_profile: no alerts at all while on hold') FROM c;
SELECT is(pg_temp.al(cp3, 'career_profile', '2025-04-13'), 'due:-1', 'career_profile: due day moved by the 5 paused days') FROM c;
SELECT is(pg_temp.al(cp3, 'career_profile', '2025-04-15'), 'overdue:1', 'career_profile: fires the day after the moved due day') FROM c;
SELECT pg_temp.tr(cp4, 'closed', '2025-04-05', 'client_choice') FROM c;
SELECT is(pg_temp.al(cp4, 'career_profile', '2025-04-10'), NULL, 'career_profile: silent once closed') FROM c;
SELECT is(pg_temp.al(cp5, 'career_profile', '2025-04-12'), 'overdue:3', 'career_profile: overdue before the late entry') FROM c;
SELECT ips.complete_career_profile(cp5, '2025-04-12') FROM c;
SELECT is(pg_temp.al(cp5, 'career_profile', '2025-04-12'), NULL, 'career_profile: met late clears the alert') FROM c;
SELECT is(pg_temp.al(cp5, 'career_profile', '2025-04-11'), 'overdue:2', 'career_profile: as of the day before it was still overdue') FROM c;

-- ===== rapid_job_search: 30 days from entry, horizon 7.  Entry 2025-03-10, due 2025-04-09.
CREATE TEMP TABLE r AS SELECT pg_temp.ep('2025-03-03', '2025-03-10') AS rj1, pg_temp.ep('2025-03-03', '2025-03-10') AS rj2,
    pg_temp.ep('2025-03-03', '2025-03-10') AS rj3, pg_temp.ep('2025-03-03', '2025-03-10') AS rj4,
    pg_temp.ep('2025-03-03', '2025-03-10') AS rj5;
SELECT is(pg_temp.al(rj1, 'rapid_job_search', '2025-04-09'), 'overdue:0', 'rapid_job_search: unmet on the due day') FROM r;
SELECT is(pg_temp.al(rj1, 'rapid_job_search', '2025-04-10'), 'overdue:1', 'rapid_job_search: fires the day after') FROM r;
SELECT pg_temp.emp(rj2, '2025-04-09', by_client => true) FROM r;
SELECT is(pg_temp.al(rj2, 'rapid_job_search', '2025-04-10'), NULL, 'rapid_job_search: client''s own employer visit on the last day') FROM r;
SELECT pg_temp.emp(rj3, '2025-03-20', in_person => false), pg_temp.emp(rj3, '2025-03-21', competitive => false) FROM r;
SELECT is(pg_temp.al(rj3, 'rapid_job_search', '2025-04-10'), 'overdue:1', 'rapid_job_search: phone or non-competitive contacts do not count') FROM r;
SELECT pg_temp.tr(rj4, 'on_hold', '2025-04-01') FROM r;
SELECT is(pg_temp.al(rj4, 'rapid_job_search', '2025-04-20'), NULL, 'rapid_job_search: paused while on hold') FROM r;
-- back on 2025-04-21: paused 04-01..04-20 (20 days), due 2025-04-29
SELECT pg_temp.tr(rj4, 'engaged', '2025-04-21') FROM r;
SELECT is(pg_temp.al(rj4, 'rapid_job_search', '2025-04-29'), 'overdue:0', 'rapid_job_search: due 20 paused days later') FROM r;
SELECT pg_temp.tr(rj5, 'closed', '2025-04-09', 'moved') FROM r;
SELECT is(pg_temp.al(rj5, 'rapid_job_search', '2025-04-10'), NULL, 'rapid_job_search: silent once closed') FROM r;
SELECT pg_temp.emp(rj1, '2025-04-08') FROM r;
SELECT is(pg_temp.al(rj1, 'rapid_job_search', '2025-04-10'), NULL, 'rapid_job_search: a visit entered late but dated in time counts') FROM r;

-- ===== no_contact: 30 days since the last client contact, horizon 7.
-- Referred 2025-03-03, contact 2025-03-05: the gap from 03-05 is due 2025-04-04.
CREATE TEMP TABLE n AS SELECT pg_temp.ep('2025-03-03', '2025-03-05') AS nc1, pg_temp.ep('2025-03-03', '2025-03-05') AS nc2,
    pg_temp.ep('2025-03-03', '2025-03-05') AS nc3, pg_temp.ep('2025-03-03', '2025-03-05') AS nc4,
    pg_temp.ep('2025-03-03', '2025-03-05') AS nc5;
SELECT pg_temp.con(nc1, '2025-03-05'), pg_temp.con(nc2, '2025-03-05'), pg_temp.con(nc3, '2025-03-05'),
       pg_temp.con(nc4, '2025-03-05'), pg_temp.con(nc5, '2025-03-05') FROM n;
SELECT is(pg_temp.al(nc1, 'no_contact', '2025-03-27'), NULL, 'no_contact: silent 8 days ahead') FROM n;
SELECT is(pg_temp.al(nc1, 'no_contact', '2025-03-28'), 'due:-7', 'no_contact: due 7 days ahead') FROM n;
SELECT is(pg_temp.al(nc1, 'no_contact', '2025-04-05'), 'overdue:1', 'no_contact: fires the day after') FROM n;
SELECT pg_temp.con(nc1, '2025-03-20', 'outreach_attempt', 'phone') FROM n;
SELECT is(pg_temp.al(nc1, 'no_contact', '2025-04-05'), 'overdue:1', 'no_contact: an outreach attempt does not end the gap') FROM n;
SELECT pg_temp.con(nc2, '2025-04-04', mode => 'video') FROM n;
SELECT is(pg_temp.al(nc2, 'no_contact', '2025-04-05'), NULL, 'no_contact: video contact on the last day') FROM n;
SELECT is(pg_temp.al(nc2, 'no_contact', '2025-05-05'), 'overdue:1', 'no_contact: only the current gap (from 04-04, due 05-04)') FROM n;
SELECT pg_temp.tr(nc3, 'on_hold', '2025-03-20'), pg_temp.tr(nc3, 'engaged', '2025-03-25') FROM n;
SELECT is(pg_temp.al(nc3, 'no_contact', '2025-04-09'), 'overdue:0', 'no_contact: 5 paused days move the due day to 04-09') FROM n;
SELECT is(pg_temp.al(nc3, 'no_contact', '2025-04-08'), 'due:-1', 'no_contact: not yet overdue on 04-08 after the pause') FROM n;
SELECT pg_temp.tr(nc4, 'closed', '2025-04-01', 'client_choice') FROM n;
SELECT is(pg_temp.al(nc4, 'no_contact', '2025-04-10'), NULL, 'no_contact: silent once closed') FROM n;
SELECT is(pg_temp.al(nc5, 'no_contact', '2025-04-10'), 'overdue:6', 'no_contact: overdue before the late entry') FROM n;
SELECT pg_temp.con(nc5, '2025-04-01') FROM n;
SELECT is(pg_temp.al(nc5, 'no_contact', '2025-04-10'), NULL, 'no_contact: a contact entered late but dated in time counts') FROM n;

-- ===== care_relationship: 0 days, horizon 0.  Entry 2025-03-10; care ends 2025-04-10, gap from 04-11.
CREATE TEMP TABLE k AS SELECT pg_temp.ep('2025-03-03', '2025-03-10') AS cr1, pg_temp.ep('2025-03-03', '2025-03-10') AS cr2,
    pg_temp.ep('2025-03-03', '2025-03-10') AS cr3, pg_temp.ep('2025-03-03', '2025-03-10') AS cr4;
SELECT ips.end_care_relationship(r.care_relationship_id, '2025-04-10')
  FROM ips.care_relationship r JOIN ips.episode x USING (client_id), k WHERE x.episode_id IN (cr1, cr2, cr3, cr4);
SELECT is(pg_temp.al(cr1, 'care_relationship', '2025-04-10'), NULL, 'care_relationship: active through its last day') FROM k;
SELECT is(pg_temp.al(cr1, 'care_relationship', '2025-04-11'), 'overdue:0', 'care_relationship: the day after it ended') FROM k;
SELECT is(pg_temp.al(cr1, 'care_relationship', '2025-04-20'), 'overdue:9', 'care_relationship: still missing 9 days later') FROM k;
SELECT is(pg_temp.al(cr1, 'care_relationship', '2025-04-09'), NULL, 'care_relationship: as of before the end it was fine') FROM k;
SELECT ips.start_care_relationship(x.client_id, 'perusterveydenhuolto', '2025-04-11') FROM ips.episode x, k WHERE x.episode_id = cr2;
SELECT is(pg_temp.al(cr2, 'care_relationship', '2025-04-20'), NULL, 'care_relationship: a new one from the next day leaves no gap') FROM k;
SELECT ips.start_care_relationship(x.client_id, 'perusterveydenhuolto', '2025-04-15') FROM ips.episode x, k WHERE x.episode_id = cr3;
SELECT is(pg_temp.al(cr3, 'care_relationship', '2025-04-14'), 'overdue:3', 'care_relationship: overdue until the new one starts') FROM k;
SELECT is(pg_temp.al(cr3, 'care_relationship', '2025-04-15'), NULL, 'care_relationship: met late clears it') FROM k;
SELECT pg_temp.tr(cr4, 'on_hold', '2025-04-05') FROM k;
SELECT is(pg_temp.al(cr4, 'care_relationship', '2025-04-20'), NULL, 'care_relationship: paused while on hold') FROM k;
SELECT pg_temp.tr(cr4, 'closed', '2025-04-21', 'referred_elsewhere') FROM k;
SELECT is(pg_temp.al(cr4, 'care_relationship', '2025-04-22'), NULL, 'care_relationship: silent once closed') FROM k;

-- ===== consent_for_care: 14 days, horizon 7.  Consent withdrawn 2025-04-01: gap from 04-01, due 04-15.
CREATE TEMP TABLE s AS SELECT pg_temp.ep('2025-03-03', '2025-03-10') AS cs1, pg_temp.ep('2025-03-03', '2025-03-10') AS cs2,
    pg_temp.ep('2025-03-03', '2025-03-10', consent => false) AS cs3, pg_temp.ep('2025-03-03', '2025-03-10') AS cs4;
SELECT ips.withdraw_consent(x.client_id, 'share_with_care', '2025-04-01') FROM ips.episode x, s WHERE x.episode_id IN (cs1, cs2, cs4);
SELECT is(pg_temp.al(cs1, 'consent_for_care', '2025-04-07'), NULL, 'consent_for_care: silent 8 days ahead') FROM s;
SELECT is(pg_temp.al(cs1, 'consent_for_care', '2025-04-08'), 'due:-7', 'consent_for_care: due 7 days ahead') FROM s;
SELECT is(pg_temp.al(cs1, 'consent_for_care', '2025-04-16'), 'overdue:1', 'consent_for_care: fires the day after') FROM s;
SELECT is(pg_temp.al(cs1, 'consent_for_care', '2025-03-31'), NULL, 'consent_for_care: as of before the withdrawal it was fine') FROM s;
SELECT ips.give_consent(x.client_id, 'share_with_care', '2025-04-15') FROM ips.episode x, s WHERE x.episode_id = cs2;
SELECT is(pg_temp.al(cs2, 'consent_for_care', '2025-04-16'), NULL, 'consent_for_care: given again on the last day') FROM s;
-- no consent at entry 2025-03-10: due 2025-03-24
SELECT is(pg_temp.al(cs3, 'consent_for_care', '2025-03-25'), 'overdue:1', 'consent_for_care: none at entry, fires on day 15') FROM s;
SELECT pg_temp.tr(cs4, 'on_hold', '2025-04-10'), pg_temp.tr(cs4, 'engaged', '2025-04-14') FROM s;
SELECT is(pg_temp.al(cs4, 'consent_for_care', '2025-04-18'), 'due:-1', 'consent_for_care: 4 paused days move the due day to 04-19') FROM s;
SELECT pg_temp.tr(cs4, 'closed', '2025-04-20', 'client_choice') FROM s;
SELECT is(pg_temp.al(cs4, 'consent_for_care', '2025-04-25'), NULL, 'consent_for_care: silent once closed') FROM s;

-- contact_alerts of the team agrees with episode_alerts and has the documented columns
SELECT is((SELECT count(*) FROM ips.contact_alerts('2025-04-16', (SELECT team_id FROM ctx)) a WHERE a.episode_id = cs1 AND a.rule = 'consent_for_care'),
          1::bigint, 'contact_alerts has the episode''s alert') FROM s;
SELECT is((SELECT a.staff_id FROM ips.contact_alerts('2025-04-16', (SELECT team_id FROM ctx)) a WHERE a.episode_id = cs1 AND a.rule = 'consent_for_care'),
          (SELECT staff_id FROM ctx), 'an episode''s alert names its specialist') FROM s;
SELECT bag_eq($$SELECT rule FROM ips.contact_alerts('2025-03-11', (SELECT team_id FROM ctx)) WHERE episode_id = (SELECT rr4 FROM e)$$,
              $$SELECT NULL::text WHERE false$$, 'a closed episode has no alerts at all');
SELECT is(ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = 'ips.alerts_today'::regclass AND a.attnum > 0 ORDER BY a.attnum),
          ARRAY['episode_id', 'staff_id', 'rule', 'rule_label', 'due_on', 'days_overdue', 'severity'], 'columns of ips.alerts_today');

-- errors
SELECT throws_ok($$SELECT * FROM ips.episode_alerts(-1, '2025-01-01')$$, 'P0002', NULL, 'unknown episode: P0002');
SELECT throws_ok($$SELECT * FROM ips.contact_alerts(NULL)$$, '22004', NULL, 'as_of NULL: 22004');
SELECT throws_ok($$SELECT * FROM ips.contact_alerts('2025-01-01', -5)$$, 'P0002', NULL, 'unknown team: P0002');
SELECT throws_ok($$SELECT * FROM ips.expectations(NULL, '2025-02-01', '2025-01-01')$$, '22023', NULL, 'reversed period: 22023');

SELECT * FROM finish();
ROLLBACK;
