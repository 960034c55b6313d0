# A restore that forgets PGOPTIONS='-c ips.restoring=on' works, for pg_restore
# and for a plain pg_dump script through psql: every table comes back with the
# same rows and the change log is the same chain.  The guards still stand in
# every other session (also one with only row_security off).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run qw(run);

my $node = PostgreSQL::Test::Cluster->new('restore');
$node->init;
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $_") for qw(src r1 r2);
$node->safe_psql('src', 'CREATE EXTENSION ips');
my ($gen, $err) = ('', '');
run [ 'ipsctl', 'generate', '--clients', '30', '--seed', '5', '--start', '2025-09-30' ], '>', \$gen;
run [ 'ipsctl', '-d', $node->connstr('src'), 'import', '-q', '-' ], '<', \$gen, '>', \my $o, '2>', \$err;
is($? >> 8, 0, 'a region is loaded') or diag($err);

# Row counts and a digest of every ips table.
sub tables_of
{
	my ($db) = @_;
	return $node->safe_psql($db, q{
		SELECT string_agg(format('%s=%s', c.relname,
		         (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) || '':'' || md5(coalesce(string_agg(t::text, '','' ORDER BY t::text), '''')) AS n FROM ips.%I t', c.relname),
		                                              false, true, '')))[1]::text), E'\n' ORDER BY c.relname)
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'ips' AND c.relkind = 'r'});
}
my $want = tables_of('src');
my $dump = "$PostgreSQL::Test::Utils::tmp_check/src.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump -Fc');

my ($out, $rerr) = ('', '');
run [ 'pg_restore', '-d', $node->connstr('r1'), $dump ], '>', \$out, '2>', \$rerr;
is($? >> 8, 0, 'pg_restore without ips.restoring: exit 0');
is($rerr, '', 'and not one error');
is(tables_of('r1'), $want, 'every table holds the same rows');
is($node->safe_psql('r1', 'SELECT count(*) FROM ips.verify_change_log()'), '0', 'the change log is the same chain');

my $plain = '';
run [ 'pg_dump', '-d', $node->connstr('src') ], '>', \$plain;
($out, $rerr) = ('', '');
run [ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('r2') ], '<', \$plain, '>', \$out, '2>', \$rerr;
is($? >> 8, 0, 'pg_dump | psql without ips.restoring: exit 0') or diag($rerr);
is(tables_of('r2'), $want, 'every table holds the same rows');

# outside a restore the guards stand, also with only row_security off
my ($ret, $so, $se) = $node->psql('r1', q{
	INSERT INTO ips.episode_state_history (episode_id, from_state, to_state, at)
	SELECT episode_id, 'referred', 'engaged', now() FROM ips.episode LIMIT 1});
isnt($ret, 0, 'an ordinary session cannot write the state history');
like($se, qr/append-only|permission|not allowed|refused/i, 'the guard says why');
($ret, $so, $se) = $node->psql('r1', q{
	SET row_security = off;
	INSERT INTO ips.episode_state_history (episode_id, from_state, to_state, at)
	SELECT episode_id, 'referred', 'engaged', now() FROM ips.episode LIMIT 1});
isnt($ret, 0, 'nor one with row_security off alone');
done_testing();
