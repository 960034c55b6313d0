# The ledger across crashes (SIGKILL): while a seal has written its block but
# not committed, in the middle of a large seal, in the middle of a large
# logged write, and the whole server killed with committed entries not yet
# sealed.  After each crash recovery no committed entry is lost, nothing
# uncommitted is there, and the log verifies clean and seals on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('ledger_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
fsync = on
synchronous_commit = on
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE l');
$node->safe_psql('l', 'CREATE EXTENSION ips');
$node->safe_psql('l', q{SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa')});
for my $i (1 .. 5)
{
	$node->safe_psql('l', qq{SELECT ips.add_staff(1, 'Staff $i', 'specialist')});
}
$node->safe_psql('l', 'SELECT ips.seal()');

# committed entries; what the log holds before each crash
sub committed { return $node->safe_psql('l', 'SELECT count(*) FROM ips.change_log') }

# wait for the server to accept connections again after a crash of a backend
sub wait_recovered
{
	my $ok = 0;
	for (1 .. 300)
	{
		# psql with -c, not on standard input: while the server still refuses
		# connections, psql exits before reading its input, and writing to it
		# would raise SIGPIPE in this script
		my ($o, $e) = ('', '');
		if (IPC::Run::run([ 'psql', '-XAtq', '-d', $node->connstr('l'), '-c', 'SELECT 1' ], '<', \'', '>', \$o, '2>', \$e))
		{
			$ok = 1;
			last;
		}
		usleep(100_000);
	}
	return $ok;
}

sub check_clean
{
	my ($label, $expect) = @_;
	is(committed(), $expect, "$label: every committed entry is there, nothing uncommitted");
	is($node->safe_psql('l', 'SELECT count(*) FROM ips.verify_change_log()'), '0', "$label: the log verifies clean");
	is($node->safe_psql('l', q{SELECT count(*) FROM ips.ledger_pending}), '0', "$label: and everything is sealed after it");
	is($node->safe_psql('l', q{SELECT sum(entries) FROM ips.ledger_block WHERE log = 'change_log'}), $expect,
		"$label: the blocks cover every entry exactly once");
}

# 1. a seal that has written its block and taken the pending rows, not committed: SIGKILL its backend
for my $i (6 .. 8)
{
	$node->safe_psql('l', qq{SELECT ips.add_staff(1, 'Staff $i', 'specialist')});
}
my $before = committed();
my $s = $node->background_psql('l', on_error_stop => 0);
my $pid = $s->query_safe('SELECT pg_backend_pid()');
$s->query_safe('BEGIN');
is($s->query_safe('SELECT ips.seal() > 0'), 't', 'a seal inside an open transaction wrote its block');
is($node->safe_psql('l', q{SELECT count(*) FROM ips.ledger_pending}), '3', 'others still see the three transactions pending');
kill 'KILL', $pid;
$s->quit;
ok(wait_recovered(), 'the server recovered from the SIGKILL of the sealing backend');
is($node->safe_psql('l', q{SELECT count(*) FROM ips.ledger_pending}), '3', 'the killed seal left them pending');
check_clean('killed after writing its block', $before);

# 2. a large committed write, then a SIGKILL in the middle of sealing it
$node->safe_psql('l', q{INSERT INTO ips.staff (team_id, display_name, role)
                         SELECT 1, 'Bulk ' || g, 'specialist' FROM generate_series(1, 150000) g});
$before = committed();
my ($out, $err) = ('', '');
my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('l'), '-c', q{SELECT ips.seal()} ],
	'>', \$out, '2>', \$err);
my $seal_pid = '';
for (1 .. 200)
{
	$seal_pid = $node->safe_psql('l', q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT ips.seal()%' AND state = 'active'});
	last if $seal_pid ne '';
	usleep(10_000);
}
ok($seal_pid ne '', 'a seal of 150 000 entries is running');
usleep(100_000);
kill 'KILL', $seal_pid if $seal_pid ne '';
$h->finish;
ok(wait_recovered(), 'the server recovered from the SIGKILL in the middle of the seal');
check_clean('killed in the middle of a seal', $before);

# 3. a SIGKILL in the middle of a large logged write (not committed)
$before = committed();
$h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('l'), '-c',
		q{INSERT INTO ips.staff (team_id, display_name, role) SELECT 1, 'Lost ' || g, 'specialist' FROM generate_series(1, 300000) g} ],
	'>', \$out, '2>', \$err);
my $w_pid = '';
for (1 .. 200)
{
	$w_pid = $node->safe_psql('l', q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'INSERT INTO ips.staff%' AND state = 'active'});
	last if $w_pid ne '';
	usleep(10_000);
}
ok($w_pid ne '', 'a logged write of 300 000 rows is running');
usleep(300_000);
kill 'KILL', $w_pid if $w_pid ne '';
$h->finish;
ok(wait_recovered(), 'the server recovered from the SIGKILL of the writer');
check_clean('killed in the middle of a write', $before);

# 4. the whole server killed with committed entries not sealed yet
for my $i (1 .. 4)
{
	$node->safe_psql('l', qq{SELECT ips.add_staff(1, 'After $i', 'specialist')});
}
$before = committed();
is($node->safe_psql('l', q{SELECT count(*) FROM ips.ledger_pending}), '4', 'four committed transactions are pending');
my $postmaster = $node->safe_psql('l', 'SELECT pid FROM pg_stat_activity WHERE backend_type = \'checkpointer\'');
$node->kill9;
# the old server's processes are gone before it is started again
for (1 .. 100)
{
	last unless kill 0, $postmaster;
	usleep(100_000);
}
usleep(500_000);
$node->start;
is($node->safe_psql('l', q{SELECT count(*) FROM ips.ledger_pending}), '4', 'they are still pending after the crash');
check_clean('server killed with pending entries', $before);

$node->stop;
done_testing();
