# National analytics by logical replication: a regional node publishes
# (ips.create_analytics_publication), a national node subscribes
# (ips.prepare_analytics_subscriber, CREATE SUBSCRIPTION as a superuser); the
# fidelity and outcome figures computed on the national node equal the
# regional ones, and no free text or host key arrives there.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IpsRegion;

my $regional = PostgreSQL::Test::Cluster->new('regional');
$regional->init(allows_streaming => 'logical');
$regional->append_conf('postgresql.conf', "fsync = off\nmax_wal_senders = 10\nmax_replication_slots = 10");
$regional->start;
my $national = PostgreSQL::Test::Cluster->new('national');
$national->init;
$national->append_conf('postgresql.conf', "fsync = off\nmax_logical_replication_workers = 8\nmax_sync_workers_per_subscription = 4");
$national->start;

for my $n ($regional, $national) {
	$n->safe_psql('postgres', 'CREATE DATABASE ips_db');
	$n->safe_psql('ips_db', 'CREATE EXTENSION ips');
}

# Activity through the public functions: two teams, three specialists, 24 clients
# over 2025 (care relationships, consents, referrals, transitions with reasons,
# contacts, employer contacts, jobs with titles, studies, holds, closures).

$regional->safe_psql('ips_db', region_setup());
$regional->safe_psql('ips_db', activity(1, 12));

# publication on the regional node, subscription on the national node
is($regional->safe_psql('ips_db', q{SELECT ips.create_analytics_publication()}), 'ips_analytics',
	'ips.create_analytics_publication() creates ips_analytics');
my ($rc, $out, $err) = $regional->psql('ips_db', q{SELECT ips.create_analytics_publication()});
like($err, qr/exists already/, 'a second publication of the same name is refused clearly');
is($regional->safe_psql('ips_db', q{SELECT count(*) FROM pg_publication_tables WHERE pubname = 'ips_analytics'
                                        AND attnames @> '{state_reason}' OR attnames @> '{host_ref}' OR attnames @> '{display_name}'}),
	'0', 'the publication lists no free-text or host-key column');

# Every column of a published table is either published or deliberately left
# out (this list): a new column must be decided on, here and in ips.analytics_columns().
my %left_out = map { $_ => 1 } qw(
	staff.display_name staff.db_role staff.unit staff_terms.recorded_by
	client.host_ref client.birth_year client.municipality client.host_key
	care_relationship.unit employer.name employer.business_id employer.industry
	episode.state_reason episode.referral_source
	episode_state_history.reason episode_state_history.actor
	job.title job.end_reason study.programme
	fidelity_review.opened_by fidelity_review.closed_by fidelity_review.closed_at fidelity_review.note
	fidelity_rating.note fidelity_rating.rated_by fidelity_frozen.evidence);
my @undecided = grep { !$left_out{$_} } split /\n/, $regional->safe_psql('ips_db', q{
SELECT c.relname || '.' || a.attname
  FROM pg_publication_rel pr JOIN pg_class c ON c.oid = pr.prrelid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE pr.prpubid = (SELECT oid FROM pg_publication WHERE pubname = 'ips_analytics') AND a.attnum <> ALL (pr.prattrs)
 ORDER BY 1});
is(join(' ', @undecided), '', 'every column left out of the publication is one deliberately left out');

my $relaxed = $national->safe_psql('ips_db', q{SELECT string_agg(table_name || '.' || column_name, ' ' ORDER BY 1)
                                                 FROM ips.prepare_analytics_subscriber() WHERE column_name IS NOT NULL});
like($relaxed, qr/ips\.client\.host_ref/, "the subscriber relaxes NOT NULL of left-out columns ($relaxed)");
unlike($relaxed, qr/episode\.state\b|client_id/, 'and only of left-out columns');

my $connstr = $regional->connstr . ' dbname=ips_db';
$national->safe_psql('ips_db', qq{CREATE SUBSCRIPTION ips_analytics_sub CONNECTION '$connstr' PUBLICATION ips_analytics});
$national->wait_for_subscription_sync($regional, 'ips_analytics_sub', 'ips_db');
is($national->safe_psql('ips_db', q{SELECT count(*) FROM ips.episode}), '12', 'the initial copy brings the 12 episodes');

# streamed changes: new rows, updates (job ends, transitions), a review with ratings
$regional->safe_psql('ips_db', activity(13, 24));
$regional->safe_psql('ips_db', q{
SET TimeZone = 'Europe/Helsinki';
SELECT ips.transition(episode_id, 'job_search', '2025-08-01 09:00', 'back from hospital') FROM ips.episode WHERE state = 'on_hold';
SELECT ips.end_job(job_id, '2025-10-31', 'moved to another town') FROM ips.job WHERE ends_on IS NULL AND job_id % 2 = 1;
SELECT ips.end_care_relationship(care_relationship_id, '2025-12-31') FROM ips.care_relationship WHERE client_id = 2;
UPDATE ips.setting SET value = 'competitive,self_employed,wage_subsidy' WHERE name = 'competitive_job_kinds';
SELECT ips.open_review(1, '2025-01-01', '2025-12-31', '2026-01-15');
SELECT ips.rate(1, 'O1', 4, 'The specialist sits with the care team (Anna).');
SELECT ips.rate(1, 'S3', 5);
});
$regional->wait_for_catchup('ips_analytics_sub');

# the figures
# The evidence of some items names the specialists; names stay in the region
# (display_name is not published), so the regional text is compared with its
# names replaced by null.  Everything else must be the same text.
sub without_names { my $t = shift; $t =~ s/"name": "[^"]*"/"name": null/g; return $t; }
my $fid = q{SELECT t.team_id, f.* FROM ips.team t, ips.fidelity(t.team_id, '2025-01-01', '2025-12-31') f ORDER BY 1, f.item};
my $fid_plain = q{SELECT t.team_id, f.* FROM ips.team t, ips.fidelity(t.team_id, '2025-04-01', '2025-09-30') f ORDER BY 1, f.item};
my $reg = $regional->safe_psql('ips_db', $fid_plain);
like($reg, qr/\|computed\|/, 'the regional node computes fidelity items');
like($reg, qr/"name": "Anna Virtanen"/, 'the regional evidence names the specialist');
is($national->safe_psql('ips_db', $fid_plain), without_names($reg),
	'ips.fidelity of every team (no review): the national result set equals the regional one (evidence without names)');
my $fid_core = q{SELECT t.team_id, f.item, f.score, f.source, f.measure, f.evidence - 'rated_by' - 'note'
                   FROM ips.team t, ips.fidelity(t.team_id, '2025-01-01', '2025-12-31') f ORDER BY 1, 2};
$reg = $regional->safe_psql('ips_db', $fid_core);
like($reg, qr/\|O1\|4\|rated\|/, 'the regional review rates O1');
is($national->safe_psql('ips_db', $fid_core), without_names($reg),
	'ips.fidelity with a review: equal on the national node (reviewer and note stay in the region)');
my $nat_fid = $national->safe_psql('ips_db', $fid);
unlike($nat_fid, qr/sits with|rated_by/, 'the rating note and the rater did not arrive');
unlike($nat_fid, qr/Anna|Bertil|Cecilia/, 'no specialist names on the national node');

my $sum = q{SELECT t.team_id, s.* FROM ips.team t, ips.fidelity_summary(t.team_id, '2025-01-01', '2025-12-31') s ORDER BY 1};
is($national->safe_psql('ips_db', $sum), $regional->safe_psql('ips_db', $sum), 'ips.fidelity_summary equal');

SKIP: {
	skip 'ips.outcomes_quarterly does not exist yet (extension/sql/45_outcomes.sql)', 2
		unless $regional->safe_psql('ips_db', q{SELECT to_regclass('ips.outcomes_quarterly') IS NOT NULL}) eq 't';
	my $q = q{SELECT * FROM ips.outcomes_quarterly ORDER BY 1, 2};
	$reg = $regional->safe_psql('ips_db', $q);
	isnt($reg, '', 'the regional node has outcome rows');
	is($national->safe_psql('ips_db', $q), $reg, 'ips.outcomes_quarterly: the national result set equals the regional one');
}

# the same data, row by row, in the published columns; nothing else arrived
my $published = $regional->safe_psql('ips_db', q{
SELECT string_agg(format('SELECT %L, count(*), md5(coalesce(string_agg(r::text, ''|'' ORDER BY r::text), '''')) FROM (SELECT %s FROM %s) r',
                         table_name, array_to_string(columns, ', '), table_name), ' UNION ALL ' ORDER BY table_name::text)
  FROM ips.analytics_columns()});
is($national->safe_psql('ips_db', $published), $regional->safe_psql('ips_db', $published),
	'every published table holds the same rows in its published columns');
my $leftout = $national->safe_psql('ips_db', q{
SELECT string_agg(format('SELECT %L, count(*) FILTER (WHERE %I IS NOT NULL) FROM %s', table_name || '.' || attname, attname, table_name),
                  ' UNION ALL ')
  FROM ips.analytics_columns() JOIN pg_attribute a ON a.attrelid = table_name AND a.attnum > 0 AND NOT a.attisdropped
 WHERE a.attname <> ALL (columns) AND NOT a.atthasdef});
my $nonnull = $national->safe_psql('ips_db', "SELECT string_agg(x || '=' || n, ' ') FROM ($leftout) AS s(x, n) WHERE n > 0");
is($nonnull, '', 'every left-out column (free text, names, host_ref, roles) is empty on the national node');
is($regional->safe_psql('ips_db', q{SELECT count(*) > 0 FROM ips.episode WHERE state_reason IS NOT NULL})
   . $national->safe_psql('ips_db', q{SELECT count(*) FROM ips.episode WHERE state_reason IS NOT NULL}),
	't0', 'state_reason: set on the regional node, NULL on the national one');
is($national->safe_psql('ips_db', q{SELECT count(*) FROM ips.client WHERE host_ref IS NOT NULL OR birth_year IS NOT NULL OR municipality IS NOT NULL}),
	'0', 'no host_ref, birth year or municipality on the national node');

# triggers do not fire in the apply worker: the history is the region's, not doubled
my $hist = q{SELECT count(*), max(history_id) FROM ips.episode_state_history};
is($national->safe_psql('ips_db', $hist), $regional->safe_psql('ips_db', $hist),
	'the state history arrives as recorded (the state machine did not run again on the subscriber)');
is($national->safe_psql('ips_db', q{SELECT value FROM ips.setting WHERE name = 'disengaged_min_outreach_attempts'}),
	'4', q{the region's settings arrive});

$national->safe_psql('ips_db', 'DROP SUBSCRIPTION ips_analytics_sub');
$national->stop;
$regional->stop;
done_testing();
