# ipsctl import --merge, the nightly feed: the same document twice changes
# nothing the second time (exit 0, not one row, not one log entry); the next
# day's document adds exactly what is new; a fact that contradicts the record
# is reported with its JSON path and nothing is written; merging into an empty
# database gives what a plain import gives.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run qw(run);
use JSON::PP;

my $node = PostgreSQL::Test::Cluster->new('ipsctl_merge');
$node->init;
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $_") for qw(a b);
$node->safe_psql($_, 'CREATE EXTENSION ips') for qw(a b);

# Runs ipsctl with stdin text; returns (exit code, stdout, stderr).
sub ipsctl
{
	my ($in, @args) = @_;
	my ($out, $err) = ('', '');
	run [ 'ipsctl', @args ], '<', \$in, '>', \$out, '2>', \$err;
	return ($? >> 8, $out, $err);
}

# Row counts of every ips table, and the newest change-log entry.
sub state_of
{
	my ($db) = @_;
	return $node->safe_psql($db, q{
		SELECT string_agg(format('%s=%s', c.relname,
		         (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM ips.%I', c.relname),
		                                              false, true, '')))[1]::text), ',' ORDER BY c.relname)
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'ips' AND c.relkind = 'r'});
}
sub count_of { my ($db, $t) = @_; return $node->safe_psql($db, "SELECT count(*) FROM ips.$t"); }

# A document in the order its sections must come.
my @order = qw(teams staff clients care_relationships consents employers episodes employer_contacts team_meetings);
sub write_doc
{
	my ($doc) = @_;
	my $j = JSON::PP->new->utf8;
	return '{"format":"ips-import","version":1,'
	  . join(',', map { qq{"$_":} . $j->encode($doc->{$_}) } grep { exists $doc->{$_} } @order) . "}\n";
}

my (undef, $region) = ipsctl('', 'generate', '--clients', '25', '--seed', '3', '--start', '2025-06-30');
my ($rc, $out, $err) = ipsctl($region, 'import', '-q', '-d', $node->connstr('a'), '-');
is($rc, 0, 'the region is imported the plain way') or diag($err);
my $before = state_of('a');

# the same document twice
($rc, $out, $err) = ipsctl($region, 'import', '--merge', '-d', $node->connstr('a'), '-');
is($rc, 0, 'merging the same document: exit 0') or diag($err);
like($out, qr/merged: added 0 teams, 0 staff, 0 clients, 0 care relationships, 0 consents, 0 employers, 0 episodes, 0 transitions, 0 contacts, 0 employer contacts, 0 jobs, 0 studies, 0 team meetings; \d+ were on record already/,
	'it says nothing was added');
is(state_of('a'), $before, 'not one row changed, not one log entry written');

# the next day's document: one contact for an open episode, a new client referred with a contact
my $doc = JSON::PP->new->utf8->decode($region);
my %host = map { $_->{key} => $_->{host_ref} } @{ $doc->{clients} };
my $open = $node->safe_psql('a', q{
	SELECT c.host_ref || '|' || e.referred_on FROM ips.episode e JOIN ips.client c USING (client_id)
	 WHERE e.closed_on IS NULL AND e.state <> 'referred' ORDER BY e.episode_id LIMIT 1});
my ($open_ref, $open_day) = split /\|/, $open;
my ($ep) = grep { $host{ $_->{client} } eq $open_ref && $_->{referred_on} eq $open_day } @{ $doc->{episodes} };
ok($ep, "the open episode of $open_ref is in the document");
my $spec = $ep->{specialists}[-1]{staff};
push @{ $ep->{contacts} }, { staff => $spec, at => '2025-06-30T10:00:00+03:00', kind => 'client', minutes => 30 };
my ($team_of_spec) = map { $_->{team} } grep { $_->{key} eq $spec } @{ $doc->{staff} };
push @{ $doc->{clients} }, { key => 'cnew', host_ref => 'feed-new-1', birth_year => 1990, municipality => 'Vaasa' };
push @{ $doc->{episodes} }, {
	key => 'enew', client => 'cnew', team => $team_of_spec, referred_on => '2025-06-29',
	specialists => [ { staff => $spec, from_on => '2025-06-29' } ],
	contacts => [ { staff => $spec, at => '2025-06-29T12:00:00+03:00', kind => 'client' } ] };
my $day2 = write_doc($doc);
my %was = map { $_ => count_of('a', $_) } qw(client episode contact specialist_assignment job team);
($rc, $out, $err) = ipsctl($day2, 'import', '--merge', '-d', $node->connstr('a'), '-');
is($rc, 0, 'the next day\'s document merges') or diag($err);
like($out, qr/added 0 teams, 0 staff, 1 clients, 0 care relationships, 0 consents, 0 employers, 1 episodes, 0 transitions, 2 contacts,/,
	'it names what it added');
is(count_of('a', 'client'), $was{client} + 1, 'one new client');
is(count_of('a', 'episode'), $was{episode} + 1, 'one new episode');
is(count_of('a', 'contact'), $was{contact} + 2, 'two new contacts (one on the open episode, one on the new)');
is(count_of('a', 'specialist_assignment'), $was{specialist_assignment} + 1, 'one new assignment');
is(count_of('a', 'job'), $was{job}, 'no job more');
is($node->safe_psql('a', q{SELECT count(*) FROM ips.contact c JOIN ips.client k USING (client_id)
	WHERE k.host_ref = } . "'$open_ref'" . q{ AND c.at = '2025-06-30T10:00:00+03:00'}), '1',
	'the open episode\'s new contact is there');
my $after2 = state_of('a');
($rc, $out, $err) = ipsctl($day2, 'import', '--merge', '-d', $node->connstr('a'), '-');
is($rc, 0, 'the next day\'s document again: exit 0') or diag($err);
is(state_of('a'), $after2, 'and nothing changes');

# a different state history: an event moved by an hour
my ($moved) = grep { @{ $_->{events} || [] } >= 2 } @{ $doc->{episodes} };
my $idx = (grep { $doc->{episodes}[$_] == $moved } 0 .. $#{ $doc->{episodes} })[0];
my $at = $moved->{events}[0]{at};
$at =~ s/T(\d\d)/sprintf('T%02d', ($1 + 1) % 24)/e;
$moved->{events}[0]{at} = $at;
($rc, $out, $err) = ipsctl(write_doc($doc), 'import', '--merge', '-d', $node->connstr('a'), '-');
is($rc, 1, 'a conflicting state history: exit 1');
like($err, qr/import failed at \$\.episodes\[$idx\]\.events\[0\]: conflicts with the record: the episode's state history has no change to \w+ at \Q$at\E/,
	'reported with its JSON path');
like($err, qr/nothing was imported/, 'and nothing was written');
is(state_of('a'), $after2, 'the database is unchanged');

# a job ended on another day than the record says
my ($jep) = grep { grep { defined $_->{ends_on} } @{ $_->{jobs} || [] } } @{ JSON::PP->new->utf8->decode($day2)->{episodes} };
SKIP: {
	skip 'no ended job in this region', 3 unless $jep;
	my $d = JSON::PP->new->utf8->decode($day2);
	my ($k) = grep { $d->{episodes}[$_]{key} eq $jep->{key} } 0 .. $#{ $d->{episodes} };
	my ($jk) = grep { defined $d->{episodes}[$k]{jobs}[$_]{ends_on} } 0 .. $#{ $d->{episodes}[$k]{jobs} };
	my $end = $d->{episodes}[$k]{jobs}[$jk]{ends_on};
	$d->{episodes}[$k]{jobs}[$jk]{ends_on} = '2025-06-30';
	($rc, $out, $err) = ipsctl(write_doc($d), 'import', '--merge', '-d', $node->connstr('a'), '-');
	is($rc, 1, 'a job ending on another day: exit 1');
	like($err, qr/\$\.episodes\[$k\]\.jobs\[$jk\]: conflicts with the record: this job ended on \Q$end\E there/,
		'reported with its path and the recorded day');
	is(state_of('a'), $after2, 'the database is unchanged');
}

# merging into an empty database is a plain import
($rc, $out, $err) = ipsctl($region, 'import', '-q', '--merge', '-d', $node->connstr('b'), '-');
is($rc, 0, 'merging into an empty database') or diag($err);
is(state_of('b'), $before, 'gives what the plain import gave');

done_testing();
