# ips.language is known as soon as the library is loaded (from a session's
# first statement with session_preload_libraries = 'ips', as the README tells
# DBAs) and checked when set: only fi, sv, en.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('language');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE region');
$node->safe_psql('region', 'CREATE EXTENSION ips');

# as installed by the README: the database preloads the library
$node->safe_psql('postgres', q{ALTER DATABASE region SET session_preload_libraries = 'ips'});
is($node->safe_psql('region', 'SHOW ips.language'), 'en', 'a fresh session knows ips.language (default en)');
my ($ret, $out, $err) = $node->psql('region', q{SET ips.language = 'de'}, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, q{SET ips.language = 'de' is refused});
like($err, qr/22023.*invalid value for parameter "ips.language": "de"/s, 'with 22023');
like($err, qr/must be one of fi, sv, en/, 'and the languages it takes');
($ret, $out, $err) = $node->psql('region', q{ALTER DATABASE region SET ips.language = 'de'});
isnt($ret, 0, 'a database default is checked when set from a session that has the library');
$node->safe_psql('postgres', q{ALTER DATABASE region SET ips.language = 'sv'});
is($node->safe_psql('region', q{SELECT current_setting('ips.language') || ' ' || ips.label('job_search')}),
	'sv jobbsökning', 'a database default applies to labels');

# without preloading: known once a function of ips has loaded the library
$node->safe_psql('postgres', q{CREATE DATABASE other});
$node->safe_psql('other', 'CREATE EXTENSION ips');
is($node->safe_psql('other', q{LOAD 'ips'; SHOW ips.language}), 'en', 'LOAD makes it known');
($ret, $out, $err) = $node->psql('other', q{LOAD 'ips'; SET ips.language = 'xx'});
isnt($ret, 0, 'and checked');

done_testing();
