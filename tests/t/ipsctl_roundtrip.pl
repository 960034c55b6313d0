# ipsctl: generate -> import -> export -> import into an empty database gives
# the same figures; FHIR export structure; import and export under valgrind.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run qw(run);
use JSON::PP;

my $node = PostgreSQL::Test::Cluster->new('ipsctl_roundtrip');
$node->init;
$node->start;
for my $db (qw(a b c d))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION ips');
}

# Runs ipsctl with stdin text; returns (exit code, stdout, stderr).
sub ipsctl
{
	my ($in, @args) = @_;
	my ($out, $err) = ('', '');
	run [ 'ipsctl', @args ], '<', \$in, '>', \$out, '2>', \$err;
	return ($? >> 8, $out, $err);
}

# Figures that must survive a round trip.
sub figures
{
	my ($db) = @_;
	return $node->safe_psql($db, q{
		SELECT json_build_object(
		  'states', (SELECT json_object_agg(state, n ORDER BY state) FROM
		             (SELECT state, count(*) AS n FROM ips.episode GROUP BY state) x),
		  'reasons', (SELECT json_object_agg(r, n ORDER BY r) FROM
		             (SELECT coalesce(close_reason, '-') AS r, count(*) AS n FROM ips.episode GROUP BY 1) x),
		  'clients', (SELECT count(*) FROM ips.client),
		  'staff', (SELECT count(*) FROM ips.staff),
		  'contacts', (SELECT count(*) FROM ips.contact),
		  'contact_minutes', (SELECT sum(minutes) FROM ips.contact),
		  'employer_contacts', (SELECT count(*) FROM ips.employer_contact),
		  'jobs', (SELECT count(*) FROM ips.job),
		  'jobs_ended', (SELECT count(ends_on) FROM ips.job),
		  'studies', (SELECT count(*) FROM ips.study),
		  'history', (SELECT count(*) FROM ips.episode_state_history),
		  'meetings', (SELECT count(*) FROM ips.team_meeting),
		  'career_profiles', (SELECT count(career_profile_on) FROM ips.episode))});
}

my @gen = ('generate', '--clients', '60', '--seed', '42', '--start', '2025-06-30');

# generate: deterministic, valid
my ($rc, $doc, $err) = ipsctl('', @gen);
is($rc, 0, 'generate exits 0') or diag($err);
my ($rc2, $doc2) = ipsctl('', @gen);
ok($doc eq $doc2, 'same seed gives byte-identical output');
my (undef, $doc3) = ipsctl('', 'generate', '--clients', '60', '--seed', '43', '--start', '2025-06-30');
ok($doc ne $doc3, 'another seed gives another region');
my $d = decode_json($doc);
is($d->{format}, 'ips-import', 'generate writes an import document');
is(scalar @{ $d->{clients} }, 60, '60 clients');
ok(scalar @{ $d->{teams} } >= 2, 'at least 2 teams');

my $bad_ids = 0;
for my $m (@{ $d->{employers} })
{
	my ($body, $check) = $m->{business_id} =~ /^(\d{7})-(\d)$/ or do { $bad_ids++; next };
	my @w = (7, 9, 10, 5, 8, 4, 2);
	my $sum = 0;
	$sum += substr($body, $_, 1) * $w[$_] for 0 .. 6;
	my $r = $sum % 11;
	$bad_ids++ if $r == 1 || $check != ($r == 0 ? 0 : 11 - $r);
}
is($bad_ids, 0, 'every business id has a valid check digit');

my ($unordered, $future) = (0, 0);
for my $e (@{ $d->{episodes} })
{
	my $prev = '';
	for my $ev (@{ $e->{events} })
	{
		$unordered++ if $ev->{at} lt $prev;
		$prev = $ev->{at};
		$future++ if substr($ev->{at}, 0, 10) gt '2025-06-30';
	}
	for my $c (@{ $e->{contacts} })
	{
		$future++ if substr($c->{at}, 0, 10) gt '2025-06-30';
		$unordered++ if substr($c->{at}, 0, 10) lt $e->{referred_on};
	}
}
is($unordered, 0, 'events in time order, contacts after the referral');
is($future, 0, 'nothing dated after the end date');

# import, export, import again
($rc, undef, $err) = ipsctl($doc, 'import', '-q', '-d', $node->connstr('a'), '-');
is($rc, 0, 'import of the generated region exits 0') or diag($err);
my ($rce, $export) = ipsctl('', 'export', '-d', $node->connstr('a'));
is($rce, 0, 'export exits 0');
($rc, undef, $err) = ipsctl($export, 'import', '-q', '-d', $node->connstr('b'), '-');
is($rc, 0, 'import of the export exits 0') or diag($err);
my $fa = figures('a');
is(figures('b'), $fa, 'same figures after the round trip');
like($fa, qr/"contacts" : [1-9]/, 'the region has contacts');
my (undef, $export_b) = ipsctl('', 'export', '-d', $node->connstr('b'));
ok($export eq $export_b, 'exporting the copy gives the same document');

# --timing: the time and rate of each section and of the COPY loads, on stderr
my $tout;
($rc, $tout, $err) = ipsctl($doc, 'import', '-q', '--timing', '-d', $node->connstr('d'), '-');
is($rc, 0, 'import --timing exits 0') or diag($err);
is($tout, '', 'import -q --timing: nothing on stdout');
my %timed = $err =~ /^timing: ([^:]+): (\d+) in \d+\.\d s(?: \(\d+\/s\))?$/mg;
my $copied = 0;
for my $e (@{ $d->{episodes} })
{
	$copied += grep { $_->{kind} ne 'outreach_attempt' } @{ $e->{contacts} // [] };
}
is(join(' ', map { $timed{$_} // '-' } qw(teams staff clients episodes team_meetings)),
	join(' ', map { scalar @{ $d->{$_} } } qw(teams staff clients episodes team_meetings)),
	'timing: the elements of each section');
ok($copied > 0, 'the region has contacts that go by COPY');
is($timed{'contacts (COPY)'}, $copied, 'timing: the contacts loaded by COPY');
like($err, qr/^timing: total: \d+\.\d s \(\d+ contacts\/s\)$/m, 'timing: the total and the contact rate');
is(figures('d'), $fa, '--timing imports the same');
my (undef, $help) = ipsctl('', 'import', '--help');
like($help, qr/--timing/, 'import --help names --timing');

# FHIR
my ($rcf, $fhir) = ipsctl('', 'export', '--fhir', '-d', $node->connstr('a'));
is($rcf, 0, 'export --fhir exits 0');
my $b = decode_json($fhir);
is($b->{resourceType}, 'Bundle', 'a Bundle');
is($b->{type}, 'collection', 'of type collection');
my %url = map { $_->{fullUrl} => $_->{resource} } @{ $b->{entry} };
my @eoc = grep { $_->{resourceType} eq 'EpisodeOfCare' } map { $_->{resource} } @{ $b->{entry} };
my @enc = grep { $_->{resourceType} eq 'Encounter' } map { $_->{resource} } @{ $b->{entry} };
is(scalar @eoc, $node->safe_psql('a', 'SELECT count(*) FROM ips.episode'), 'an EpisodeOfCare per episode');
is(scalar @enc, $node->safe_psql('a', 'SELECT count(*) FROM ips.contact'), 'an Encounter per contact');
my %ok_status = map { $_ => 1 } qw(planned waitlist active onhold finished cancelled);
my $bad = 0;
for my $r (@eoc)
{
	$bad++ unless $ok_status{ $r->{status} };
	$bad++ unless ($r->{meta}{profile}[0] // '') eq
	  'https://hl7.fi/fhir/finnish-base-profiles/StructureDefinition/fi-base-episode-of-care';
	$bad++ unless ($r->{patient}{identifier}{system} // '') eq 'urn:ips:host_ref'
	  && $r->{patient}{identifier}{value} =~ /^demo-\d{6}$/;
	my $org = $url{ $r->{managingOrganization}{reference} // '' };
	$bad++ unless $org && $org->{resourceType} eq 'Organization';
	for my $h (@{ $r->{statusHistory} // [] })
	{
		$bad++ unless $ok_status{ $h->{status} } && $h->{period}{start};
	}
	$bad++ unless @{ $r->{statusHistory} // [] } >= 1;
}
is($bad, 0, 'EpisodeOfCare: status, FI Base profile, patient identifier, organization, statusHistory');
$bad = 0;
for my $r (@enc)
{
	$bad++ unless $r->{status} eq 'finished';
	$bad++ unless ($r->{class}{code} // '') =~ /^(AMB|FLD|VR)$/;
	my $ep = $url{ $r->{episodeOfCare}[0]{reference} // '' };
	$bad++ unless $ep && $ep->{resourceType} eq 'EpisodeOfCare';
	$bad++ unless $r->{period}{start} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
}
is($bad, 0, 'Encounter: finished, class, period, episodeOfCare reference');
my $one = $node->safe_psql('a', 'SELECT min(episode_id) FROM ips.episode');
my (undef, $fhir1) = ipsctl('', 'export', '--fhir', '--episode', $one, '-d', $node->connstr('a'));
is(scalar(grep { $_->{resource}{resourceType} eq 'EpisodeOfCare' } @{ decode_json($fhir1)->{entry} }),
	1, 'export --fhir --episode N has one EpisodeOfCare');

# valgrind: no errors, no definite leaks
SKIP:
{
	skip 'valgrind not installed', 2 unless `which valgrind` =~ /valgrind/;
	my (undef, $small) = ipsctl('', 'generate', '--clients', '8', '--seed', '5', '--start', '2025-06-30');
	my @vg = ('valgrind', '--leak-check=full', '--errors-for-leak-kinds=definite', '--error-exitcode=99', '-q');
	my ($out, $verr) = ('', '');
	run [ @vg, 'ipsctl', 'import', '-q', '--timing', '-d', $node->connstr('c'), '-' ], '<', \$small, '>', \$out, '2>', \$verr;
	is($? >> 8, 0, 'import under valgrind: no errors, no definite leaks') or diag($verr);
	run [ @vg, 'ipsctl', 'export', '--fhir', '-d', $node->connstr('c') ], '<', \'', '>', \$out, '2>', \$verr;
	is($? >> 8, 0, 'export under valgrind: no errors, no definite leaks') or diag($verr);
}

# Contacts travel to the server in COPY's binary format: ipsctl turns each time
# into PostgreSQL's microseconds itself.  Every form the import accepts gives
# the instant the server's own input gives for the same text.
{
	my @times = ('2024-03-05T09:00:00+02:00', '2024-03-05T09:01+02:00', '2024-03-05 09:02:01.5Z',
		'2024-03-05T09:03:02.123456-03:30', '2024-03-05T09:04:03.1234567+05:45',
		'2024-03-05T09:05:04.9999996+00:00', '2024-03-05T23:59:60+02:00', '2024-03-06T00:00:00.000001-00:00');
	my $contacts = join(',', map { qq({"staff":"s1","at":"$_","kind":"client","minutes":$#times}) } @times);
	my $doc = <<"JSON";
{"format":"ips-import","version":1,
"teams":[{"key":"t1","name":"IPS Aika","region":"Pohjanmaa"}],
"staff":[{"key":"s1","team":"t1","display_name":"Aino Laine","role":"specialist"}],
"clients":[{"key":"c1","host_ref":"time-1","birth_year":1990}],
"episodes":[{"key":"e1","client":"c1","team":"t1","referred_on":"2024-03-01",
  "specialists":[{"staff":"s1","from_on":"2024-03-01"}],
  "contacts":[$contacts]}]}
JSON
	$node->safe_psql('postgres', 'CREATE DATABASE tm');
	$node->safe_psql('tm', 'CREATE EXTENSION ips');
	my ($trc, undef, $terr) = ipsctl($doc, 'import', '-q', '-d', $node->connstr('tm'), '-');
	is($trc, 0, 'contacts with every accepted form of time import') or diag($terr);
	my $sql = 'SELECT count(*) FROM unnest(ARRAY[' . join(',', map { "'$_'" } @times) . ']) s'
	  . ' WHERE (SELECT count(*) FROM ips.contact c WHERE c.at = s::timestamptz) = 1';
	is($node->safe_psql('tm', $sql), scalar(@times), 'each stored instant is the server\'s reading of the same text');
	is($node->safe_psql('tm', 'SELECT count(*) FROM ips.contact c JOIN ips.episode e USING (episode_id) WHERE c.client_id = e.client_id'),
		scalar(@times), 'and each contact carries its episode\'s client');
}

$node->stop;
done_testing();
