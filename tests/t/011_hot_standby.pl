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
use IpsRegion;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "fsync = off");
$primary->start;
$primary->safe_psql('postgres', 'CREATE DATABASE ips_db');
$primary->safe_psql('ips_db', 'CREATE EXTENSION ips');

# the same synthetic region as 010_logical_replication.pl

$primary->safe_psql('ips_db', region_setup());
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
