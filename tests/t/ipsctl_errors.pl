# ipsctl import: every class of bad input stops with the JSON path and the
# reason, exit code 1, and leaves the database exactly as it was; usage and
# connection errors have their own exit codes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run qw(run);

my $node = PostgreSQL::Test::Cluster->new('ipsctl_errors');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE e');
$node->safe_psql('postgres', 'CREATE DATABASE ok');
$node->safe_psql($_, 'CREATE EXTENSION ips') for qw(e ok);
my $conn = $node->connstr('e');

# Runs ipsctl with stdin text; returns (exit code, stdout, stderr).
sub ipsctl
{
	my ($in, @args) = @_;
	my ($out, $err) = ('', '');
	run [ 'ipsctl', @args ], '<', \$in, '>', \$out, '2>', \$err;
	return ($? >> 8, $out, $err);
}

# Row counts of every ips table and a digest of the episodes.
sub checksum
{
	return $node->safe_psql('e', q{
		SELECT string_agg(format('%s=%s', c.relname,
		         (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM ips.%I', c.relname),
		                                              false, true, '')))[1]::text), ',' ORDER BY c.relname)
		       || ' ' || (SELECT md5(coalesce(string_agg(episode_id || state || state_since, ',' ORDER BY episode_id), ''))
		                    FROM ips.episode)
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'ips' AND c.relkind = 'r'});
}

# some data to keep
my (undef, $region) = ipsctl('', 'generate', '--clients', '10', '--seed', '1', '--start', '2025-06-30');
my ($rc, undef, $err) = ipsctl($region, 'import', '-q', '-d', $conn, '-');
is($rc, 0, 'base data imported') or diag($err);
my $before = checksum();

my $good = <<'JSON';
{"format":"ips-import","version":1,
"teams":[{"key":"t1","name":"IPS Test","region":"Pohjanmaa"}],
"staff":[{"key":"s1","team":"t1","display_name":"Aino Laine","role":"specialist"}],
"clients":[{"key":"c1","host_ref":"err-1","birth_year":1990,"municipality":"Vaasa"}],
"care_relationships":[{"client":"c1","unit":"Vaasa psychiatric outpatient clinic","started_on":"2023-01-01"}],
"consents":[{"client":"c1","scope":"share_with_care","given_on":"2023-01-01"}],
"employers":[{"key":"m1","name":"Vaasan Leipomo Oy","industry":"food"}],
"episodes":[{"key":"e1","client":"c1","team":"t1","referred_on":"2024-03-01",
  "specialists":[{"staff":"s1","from_on":"2024-03-01"}],
  "events":[{"at":"2024-03-05T10:00:00+02:00","to":"engaged"},{"at":"2024-03-20T10:00:00+02:00","to":"job_search"}],
  "contacts":[{"staff":"s1","at":"2024-03-05T09:00:00+02:00","kind":"client"}],
  "jobs":[{"employer":"m1","starts_on":"2024-04-15","occupation":"5223"}]}]}
JSON

($rc, undef, $err) = ipsctl($good, 'import', '-q', '-d', $node->connstr('ok'), '-');
is($rc, 0, 'the good document imports') or diag($err);
is($node->safe_psql('ok', 'SELECT state FROM ips.episode'), 'employed', 'and its episode is employed');

# Replaces the first occurrence of $from in the good document.
sub variant
{
	my ($from, $to) = @_;
	my $v = $good;
	my $i = index($v, $from);
	die "no '$from' in the document" if $i < 0;
	substr($v, $i, length($from)) = $to;
	return $v;
}

my @cases = (
	[ 'malformed JSON', variant('"region":"Pohjanmaa"}', '"region":"Pohjanmaa",}'),
	  qr/\$\.teams\[0\]: malformed JSON near line 2/ ],
	[ 'truncated JSON', substr($good, 0, int(length($good) * 0.7)),
	  qr/\$\.episodes\[0\]: .*truncated JSON/ ],
	[ 'empty input', '', qr/the input is empty/ ],
	[ 'not an object', '[1,2]', qr/must be a JSON object/ ],
	[ 'wrong type', variant('"birth_year":1990', '"birth_year":"1990"'),
	  qr/\$\.clients\[0\]\.birth_year: must be an integer/ ],
	[ 'wrong type of a section', variant('"teams":[', '"teams":{"a":[').'}', qr/"teams" must be an array/ ],
	[ 'unknown key', variant('"municipality":"Vaasa"', '"municipality":"Vaasa","ssn":"010190-123A"'),
	  qr/\$\.clients\[0\]\.ssn: unknown key "ssn"/ ],
	[ 'unknown top-level key', variant('"teams":', '"teamz":[],"teams":'), qr/\$\.teamz: unknown key/ ],
	[ 'repeated key', variant('"birth_year":1990', '"birth_year":1990,"birth_year":1991'),
	  qr/\$\.clients\[0\]\.birth_year: the key "birth_year" appears twice/ ],
	[ 'missing required key', variant('"host_ref":"err-1",', ''), qr/\$\.clients\[0\]: a client needs "host_ref"/ ],
	[ 'duplicate key', variant('"clients":[{"key":"c1","host_ref":"err-1"', '"clients":[{"key":"c1","host_ref":"err-0"},{"key":"c1","host_ref":"err-1"'),
	  qr/\$\.clients\[1\]\.key: duplicate client key "c1"/ ],
	[ 'unknown reference', variant('"key":"e1","client":"c1"', '"key":"e1","client":"c9"'),
	  qr/\$\.episodes\[0\]\.client: unknown client "c9"/ ],
	[ 'unknown staff reference', variant('"contacts":[{"staff":"s1"', '"contacts":[{"staff":"s7"'),
	  qr/\$\.episodes\[0\]\.contacts\[0\]\.staff: unknown staff member "s7"/ ],
	[ 'invalid UTF-8', variant('Aino Laine', "Aino \xff\xfeLaine"), qr/\$\.staff\[0\]: invalid UTF-8/ ],
	[ 'overlong UTF-8', variant('Aino Laine', "Aino \xc0\xafLaine"), qr/\$\.staff\[0\]: invalid UTF-8/ ],
	[ 'NUL escape', variant('Aino Laine', 'Aino \u0000Laine'), qr/\$\.staff\[0\]: .*\\u0000/ ],
	[ 'huge number', variant('"birth_year":1990', '"birth_year":1e400'),
	  qr/\$\.clients\[0\]\.birth_year: number out of range/ ],
	[ 'big integer', variant('"birth_year":1990', '"birth_year":123456789012345678901234567890'),
	  qr/\$\.clients\[0\]\.birth_year: number out of range/ ],
	[ 'bad date', variant('"referred_on":"2024-03-01"', '"referred_on":"2024-02-30"'),
	  qr/\$\.episodes\[0\]\.referred_on: must be a date/ ],
	[ 'time without offset', variant('"at":"2024-03-05T10:00:00+02:00","to":"engaged"', '"at":"2024-03-05T10:00:00","to":"engaged"'),
	  qr/\$\.episodes\[0\]\.events\[0\]\.at: must be a time with an offset/ ],
	[ 'wrong format', variant('"ips-import"', '"ips-export"'), qr/\$\.format: must be "ips-import"/ ],
	[ 'unknown contact kind', variant('"kind":"client"', '"kind":"chat"'),
	  qr/\$\.episodes\[0\]\.contacts\[0\]\.kind: unknown contact kind "chat"/ ],
	[ 'forbidden transition', variant('"to":"engaged"', '"to":"job_search"'),
	  qr/\$\.episodes\[0\]\.events\[0\]\.to: the server refused it: .*cannot move from referred to job_search/ ],
	[ 'transition back in time', variant('"at":"2024-03-20T10:00:00+02:00","to":"job_search"', '"at":"2024-03-05T10:00:00+02:00","to":"job_search"},{"at":"2024-03-04T10:00:00+02:00","to":"on_hold"'),
	  qr/\$\.episodes\[0\]\.events\[\d\]\.(at|to): the server refused it/ ],
	[ 'transition in the future', variant('"at":"2024-03-20T10:00:00+02:00","to":"job_search"', '"at":"2099-03-20T10:00:00+02:00","to":"job_search"'),
	  qr/\$\.episodes\[0\]\.events\[1\]\.at: the server refused it: .*future/ ],
	[ 'engaged without a specialist', variant('"specialists":[{"staff":"s1","from_on":"2024-03-01"}],', ''),
	  qr/\$\.episodes\[0\]\.events\[0\]\.to: the server refused it: .*without an employment specialist/ ],
	[ 'closing as disengaged without outreach', variant('"to":"job_search"}', '"to":"job_search"},{"at":"2024-03-25T10:00:00+02:00","to":"closed","reason":"disengaged"}'),
	  qr/\$\.episodes\[0\]\.events\[2\]\.to: the server refused it: .*cannot be closed as disengaged/ ],
	[ 'contact before the referral', variant('"at":"2024-03-05T09:00:00+02:00","kind":"client"', '"at":"2024-02-05T09:00:00+02:00","kind":"client"'),
	  qr/\$\.episodes\[0\]\.contacts\[0\]: the server refused it: .*before the referral/ ],
	[ 'bad business id', variant('"industry":"food"', '"industry":"food","business_id":"1234567-8"'),
	  qr/\$\.employers\[0\]: the server refused it/ ],
	[ 'error at the very end', variant('"occupation":"5223"}]}]', '"occupation":"5223"}]}],"team_meetings":[{"team":"t1","met_on":"2024-03-05","attendees":["s2"]}]'),
	  qr/\$\.team_meetings\[0\]\.attendees\[0\]: unknown staff member "s2"/ ],
);

for my $c (@cases)
{
	my ($name, $input, $re) = @$c;
	my ($crc, undef, $cerr) = ipsctl($input, 'import', '-q', '-d', $conn, '-');
	is($crc, 1, "$name: exit code 1");
	like($cerr, $re, "$name: error message names the path and the reason");
	like($cerr, qr/nothing was imported/, "$name: says nothing was imported") if $cerr =~ /import failed/;
	is(checksum(), $before, "$name: database unchanged");
}

# A refused contact deep in a large file: ipsctl sends contacts in COPY
# statements of 10 000 rows, and the path must still name the right contact.
{
	use JSON::PP;
	my (undef, $big) = ipsctl('', 'generate', '--clients', '1500', '--seed', '7', '--start', '2025-06-30');
	my $d = JSON::PP->new->decode($big);
	my $copied = 0;
	my ($ei, $ci);
	for my $i (0 .. $#{ $d->{episodes} })
	{
		my $cs = $d->{episodes}[$i]{contacts} || [];
		my %seen;
		$seen{"$_->{at} $_->{kind}"}++ for @$cs;
		for my $j (0 .. $#$cs)
		{
			next if $cs->[$j]{kind} eq 'outreach_attempt';
			$copied++;
			($ei, $ci) = ($i, $j) if $seen{"$cs->[$j]{at} $cs->[$j]{kind}"} == 1;
		}
	}
	cmp_ok($copied, '>', 20000, "large file: $copied contacts go through COPY (more than two statements)");
	# date that contact (found by its time and kind in its episode) before the referral, in the text itself
	my ($key, $c) = ($d->{episodes}[$ei]{key}, $d->{episodes}[$ei]{contacts}[$ci]);
	my $from = index($big, qq({"key":"$key",));
	my $to = index($big, '{"key":"e', $from + 1);
	my $needle = qq("at":"$c->{at}","kind":"$c->{kind}");
	my $at = index($big, $needle, $from);
	ok($from >= 0 && $at > $from && ($to < 0 || $at < $to), "large file: contact $ci of episode $ei found");
	substr($big, $at, length($needle)) = qq("at":"2001-01-01T09:00:00+02:00","kind":"$c->{kind}");
	my $file = PostgreSQL::Test::Utils::tempdir() . '/large.json';
	open(my $fh, '>', $file) or die "$file: $!";
	print $fh $big;
	close($fh);
	$node->safe_psql('postgres', 'CREATE DATABASE big');
	$node->safe_psql('big', 'CREATE EXTENSION ips');
	my $empty = $node->safe_psql('big', 'SELECT count(*) FROM ips.change_log');
	my ($brc, undef, $berr) = ipsctl('', 'import', '-q', '-d', $node->connstr('big'), $file);
	is($brc, 1, 'refused contact in the last COPY statement: exit code 1') or diag($berr);
	like($berr, qr/\$\.episodes\[$ei\]\.contacts\[$ci\]: the server refused it: .*before the referral/,
		'refused contact in the last COPY statement: its path');
	is($node->safe_psql('big', q{SELECT (SELECT count(*) FROM ips.team) + (SELECT count(*) FROM ips.client)
		+ (SELECT count(*) FROM ips.episode) + (SELECT count(*) FROM ips.contact)} ), '0',
		'refused contact in the last COPY statement: nothing imported');
	is($node->safe_psql('big', 'SELECT count(*) FROM ips.change_log'), $empty,
		'refused contact in the last COPY statement: change log unchanged');
}

# a file that does not exist
($rc, undef, $err) = ipsctl('', 'import', '-d', $conn, '/nonexistent/file.json');
is($rc, 1, 'missing file: exit code 1');
like($err, qr/could not open/, 'missing file: message');

# usage errors: exit code 2
for my $args ([], ['bogus'], ['import'], ['import', 'a', 'b'], ['generate', '--clients', 'x', '--seed', '1'],
	['generate', '--seed', '1'], ['export', '--episode', '1', '--team', '1'], ['fidelity', '--team', '1'],
	['alerts', '--format', 'xml'])
{
	($rc, undef, $err) = ipsctl('', @$args);
	is($rc, 2, "usage error (@$args): exit code 2");
}
for my $cmd ('', 'generate', 'import', 'export', 'alerts', 'fidelity', 'outcomes')
{
	my ($hrc, $out) = ipsctl('', ($cmd ? ($cmd) : ()), '--help');
	is($hrc, 0, "ipsctl $cmd --help exits 0");
	like($out, qr/Usage:/i, "ipsctl $cmd --help shows usage");
}

# connection errors: exit code 3
($rc, undef, $err) = ipsctl($good, 'import', '-d', 'host=/nonexistent port=1', '-');
is($rc, 3, 'connection error: exit code 3');
like($err, qr/could not connect/, 'connection error: message');

# valgrind on a refused import
SKIP:
{
	skip 'valgrind not installed', 1 unless `which valgrind` =~ /valgrind/;
	my ($out, $verr) = ('', '');
	my $bad = variant('"to":"engaged"', '"to":"job_search"');
	run [ 'valgrind', '--leak-check=full', '--errors-for-leak-kinds=definite', '--error-exitcode=99', '-q',
		'ipsctl', 'import', '-q', '-d', $conn, '-' ], '<', \$bad, '>', \$out, '2>', \$verr;
	is($? >> 8, 1, 'refused import under valgrind: exit 1, no memory errors, no definite leaks') or diag($verr);
}

$node->stop;
done_testing();
