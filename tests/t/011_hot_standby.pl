# The reports run on a streaming hot standby: contact alerts, fidelity,
# fidelity summary, outcomes and rule compliance give the primary's results
# there (they only read); functions that write (record_contact, and
# client_record, which logs the access) fail with PostgreSQL's clear
# read-only error instead of crashing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "fsync = off");
$primary->start;
$primary->safe_psql('postgres', 'CREATE DATABASE ips_db');
$primary->safe_psql('ips_db', 'CREATE EXTENSION ips');

# the same synthetic region as 010_logical_replication.pl
my $setup = q{
SET TimeZone = 'Europe/Helsinki';
SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa');
SELECT ips.add_team('Kokkola IPS', 'Keski-Pohjanmaa');
SELECT ips.add_staff(1, 'Anna Virtanen', 'specialist', 1.0, NULL, 0.95, 37.5);
SELECT ips.add_staff(2, 'Bertil Nyström', 'specialist', 0.5);
SELECT ips.add_staff(1, 'Cecilia Koski', 'specialist', 0.8, NULL, 1.0, 30);
SELECT ips.add_staff(1, 'Dr. Heikkinen', 'clinician', 1.0, NULL, 1.0, 37.5, 'Vaasa psychiatric outpatient clinic');
SELECT ips.add_employer('Prisma Vaasa', '0112038-9', 'retail');
SELECT ips.add_employer('Wärtsilä', '0737546-2', 'manufacturing');
SELECT ips.add_employer('Kahvila Onni', NULL, 'food service');
UPDATE ips.setting SET value = '4' WHERE name = 'disengaged_min_outreach_attempts';
};
my $activity = q{
SET TimeZone = 'Europe/Helsinki';
DO $$
DECLARE
    c bigint; e bigint; j bigint; sp bigint; t bigint; d date;
BEGIN
    FOR i IN %FROM%..%TO% LOOP
        t := 1 + i % 2;
        sp := CASE WHEN t = 2 THEN 2 WHEN i % 4 = 1 THEN 3 ELSE 1 END;
        d := date '2025-01-06' + (i * 9) % 120;
        c := ips.add_client('ehr-' || i, 1970 + i, 'Vaasa');
        PERFORM ips.start_care_relationship(c, 'Vaasa psychiatric outpatient clinic', d - 30);
        PERFORM ips.give_consent(c, 'share_with_care', d - 30);
        e := ips.refer(c, t, d, 'psychiatric outpatient clinic, Dr. H');
        PERFORM ips.assign_specialist(e, sp, d + 1);
        IF to_regprocedure('ips.set_out_of_work_at_entry(bigint,boolean)') IS NOT NULL THEN
            EXECUTE 'SELECT ips.set_out_of_work_at_entry($1, $2)' USING e, i % 3 <> 1;
        END IF;
        IF i % 11 = 0 THEN
            PERFORM ips.transition(e, 'closed', (d + 20)::timestamptz + time '12:00', 'never_engaged');
            CONTINUE;
        END IF;
        PERFORM ips.transition(e, 'engaged', (d + 2)::timestamptz + time '10:00', 'first meeting went well');
        PERFORM ips.record_contact(e, sp, (d + 2)::timestamptz + time '10:00', 'client', 'in_person', 'community', 60);
        PERFORM ips.record_contact(e, sp, (d + 9)::timestamptz + time '10:00', 'client', 'phone', 'office', 20);
        PERFORM ips.record_contact(e, sp, (d + 12)::timestamptz + time '14:00', 'benefits_counseling', 'in_person', 'office', 45);
        PERFORM ips.complete_career_profile(e, d + 20);
        PERFORM ips.transition(e, 'job_search', (d + 21)::timestamptz + time '09:00', 'profile done, wants retail work');
        PERFORM ips.record_employer_contact(sp, 1 + i % 3, (d + 25)::timestamptz + time '13:00', true, e);
        PERFORM ips.record_employer_contact(sp, 1 + (i + 1) % 3, (d + 26)::timestamptz + time '13:00', true, NULL);
        PERFORM ips.record_contact(e, sp, (d + 30)::timestamptz + time '10:00', 'client', 'in_person', 'community', 50);
        IF i % 3 = 0 THEN
            PERFORM ips.record_contact(e, sp, (d + 40)::timestamptz + time '10:00', 'client', 'in_person', 'community', 30);
            j := ips.start_job(e, 1 + i % 3, d + 45, CASE WHEN i % 6 = 0 THEN 'competitive' ELSE 'work_trial' END,
                               CASE WHEN i % 2 = 0 THEN '5223' ELSE '9112' END, 20, 'Shop assistant at the Vaasa store');
            PERFORM ips.record_contact(e, sp, (d + 47)::timestamptz + time '10:00', 'client', 'in_person', 'community', 30);
            PERFORM ips.record_contact(e, sp, (d + 52)::timestamptz + time '10:00', 'client', 'in_person', 'community', 30);
            IF i % 2 = 0 THEN
                PERFORM ips.end_job(j, d + 120, 'conflict with the shift manager');
            END IF;
        ELSIF i % 5 = 0 THEN
            PERFORM ips.start_studies(e, d + 50, 'Vocational qualification in business, Vamia');
        ELSIF i % 7 = 0 THEN
            PERFORM ips.transition(e, 'on_hold', (d + 50)::timestamptz + time '09:00', 'hospital stay');
        ELSIF i % 4 = 0 THEN
            PERFORM ips.transition(e, 'closed', (d + 60)::timestamptz + time '09:00', 'client_choice');
        END IF;
    END LOOP;
END $$;
SELECT ips.record_team_meeting(s, m::date)
  FROM (VALUES (1), (2), (3)) AS x(s), generate_series(date '2025-01-08', date '2025-06-30', '7 days') AS m;
};
sub activity { my ($from, $to) = @_; my $s = $activity; $s =~ s/%FROM%/$from/; $s =~ s/%TO%/$to/; return $s; }

$primary->safe_psql('ips_db', $setup);
$primary->safe_psql('ips_db', activity(1, 12));

# a standby from a base backup, then more activity streamed to it
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->safe_psql('ips_db', activity(13, 30));
$primary->safe_psql('ips_db', q{
SET TimeZone = 'Europe/Helsinki';
SELECT ips.transition(episode_id, 'job_search', '2025-08-01 09:00', 'back from hospital') FROM ips.episode WHERE state = 'on_hold';
SELECT ips.end_job(job_id, '2025-10-31', 'moved') FROM ips.job WHERE ends_on IS NULL AND job_id % 2 = 1;
SELECT ips.open_review(1, '2025-01-01', '2025-12-31', '2026-01-15');
SELECT ips.rate(1, 'O1', 4, 'sits with the care team');
});
$primary->wait_for_catchup($standby, 'replay');

is($standby->safe_psql('ips_db', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery (read-only)');
is($standby->safe_psql('ips_db', 'SELECT count(*) FROM ips.episode'), '30', 'the standby has the 30 episodes');

# the same query on both nodes gives the same text
sub same {
	my ($name, $sql, $nonempty) = @_;
	my $p = $primary->safe_psql('ips_db', $sql);
	my ($rc, $s, $err) = $standby->psql('ips_db', $sql);
	is($rc, 0, "$name runs on the standby") or diag($err);
	isnt($p, '', "$name has rows on the primary") if $nonempty;
	is($s, $p, "$name: the standby's result equals the primary's");
}

SKIP: {
	skip 'ips.contact_alerts(date,bigint) does not exist yet (extension/sql/30_rules.sql)', 6
		unless $primary->safe_psql('ips_db', q{SELECT to_regprocedure('ips.contact_alerts(date,bigint)') IS NOT NULL}) eq 't';
	same('ips.contact_alerts for the region on 2025-06-30',
		q{SELECT * FROM ips.contact_alerts('2025-06-30') ORDER BY 1, 2, 3, 4}, 1);
	same('ips.contact_alerts of team 2 today',
		q{SELECT * FROM ips.contact_alerts(current_date, 2) ORDER BY 1, 2, 3, 4}, 1);
}
SKIP: {
	skip 'ips.rule_compliance(bigint,date,date) does not exist yet (extension/sql/30_rules.sql)', 3
		unless $primary->safe_psql('ips_db', q{SELECT to_regprocedure('ips.rule_compliance(bigint,date,date)') IS NOT NULL}) eq 't';
	same('ips.rule_compliance of every team for 2025',
		q{SELECT t.team_id, r.* FROM ips.team t, ips.rule_compliance(t.team_id, '2025-01-01', '2025-12-31') r ORDER BY 1, 2}, 1);
}
same('ips.fidelity of every team for 2025',
	q{SELECT t.team_id, f.* FROM ips.team t, ips.fidelity(t.team_id, '2025-01-01', '2025-12-31') f ORDER BY 1, f.item}, 1);
same('ips.fidelity_summary of every team for 2025',
	q{SELECT t.team_id, f.* FROM ips.team t, ips.fidelity_summary(t.team_id, '2025-01-01', '2025-12-31') f ORDER BY 1}, 1);
same('ips.caseload', q{SELECT * FROM ips.caseload ORDER BY 1}, 1);
SKIP: {
	skip 'ips.episode_alerts / ips.alerts_today / ips.fidelity_report do not exist yet', 9
		unless $primary->safe_psql('ips_db', q{SELECT to_regprocedure('ips.episode_alerts(bigint,date)') IS NOT NULL
		    AND to_regclass('ips.alerts_today') IS NOT NULL
		    AND to_regprocedure('ips.fidelity_report(bigint,date,date,text)') IS NOT NULL}) eq 't';
	same('ips.episode_alerts of every episode', q{SELECT e.episode_id, a.* FROM ips.episode e, ips.episode_alerts(e.episode_id, '2025-06-30') a ORDER BY 1, 2, 3, 4, 5}, 1);
	same('ips.alerts_today', q{SELECT * FROM ips.alerts_today ORDER BY 1, 2, 3, 4}, 1);
	same('ips.fidelity_report in Finnish', q{SELECT * FROM ips.fidelity_report(1, '2025-01-01', '2025-12-31', 'fi')}, 1);
}
SKIP: {
	skip 'ips.outcomes_quarterly does not exist yet (extension/sql/45_outcomes.sql)', 3
		unless $primary->safe_psql('ips_db', q{SELECT to_regclass('ips.outcomes_quarterly') IS NOT NULL}) eq 't';
	same('ips.outcomes_quarterly', q{SELECT * FROM ips.outcomes_quarterly ORDER BY 1, 2}, 1);
}

# writes are refused clearly, and the standby keeps running
my ($rc, $out, $err) = $standby->psql('ips_db',
	q{SELECT ips.record_contact(1, 1, '2025-06-01 10:00', 'client')});
isnt($rc, 0, 'ips.record_contact fails on the standby');
like($err, qr/read-only transaction/, 'with the read-only error');
SKIP: {
	skip 'ips.client_record(bigint,text) does not exist yet (extension/sql/60_security.sql)', 3
		unless $primary->safe_psql('ips_db', q{SELECT to_regprocedure('ips.client_record(bigint,text)') IS NOT NULL}) eq 't';
	($rc, $out, $err) = $standby->psql('ips_db', q{SELECT ips.client_record(1, 'care')});
	isnt($rc, 0, 'ips.client_record (which logs the access) fails on the standby');
	my ($first) = split /\n/, $err;
	like($err, qr/read-only|recovery/, "with a clear error ($first)");
	unlike($err, qr/server closed|terminated/, 'and the server did not crash');
}
is($standby->safe_psql('ips_db', 'SELECT 1'), '1', 'the standby still answers');

$standby->stop;
$primary->stop;
done_testing();
