# The background sealer (ips in shared_preload_libraries, docs/ledger.md):
# committed entries are sealed within ips.seal_interval plus slack without
# anyone calling ips.seal(); an error in a seal is logged and the seal tried
# again by the same worker; a SIGKILL of the worker in the middle of a seal,
# and of the whole server, leaves every committed entry there and a chain that
# verifies clean once the restarted worker has sealed on; a database without
# the extension is skipped; SIGTERM (shutdown) stops the worker cleanly.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use IPC::Run;

my $interval = 1.0;		# ips.seal_interval, seconds
my $slack = 2.0;		# a loaded two-core machine: scheduling, the seal's own run time

my $node = PostgreSQL::Test::Cluster->new('ledger_worker');
$node->init;
$node->append_conf('postgresql.conf', qq{
fsync = on
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE l');
$node->safe_psql('l', 'CREATE EXTENSION ips');
$node->safe_psql('l', q{SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa')});
$node->safe_psql('l', q{SELECT ips.add_staff(1, 'Before', 'specialist')});
is($node->safe_psql('l', 'SELECT count(*) > 0 FROM ips.ledger_pending'), 't',
	'without the preload nothing seals by itself');

$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ips'
ips.seal_databases = 'l, postgres'
ips.seal_interval = '1s'
});
$node->restart;

sub sealers
{
	return $node->safe_psql('postgres',
		q{SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_stat_activity WHERE backend_type = 'ips sealer'});
}

# wait until nothing is pending; the seconds it took, or undef after $limit seconds
sub wait_sealed
{
	my ($limit) = @_;
	my $t0 = time;
	while (time - $t0 < $limit)
	{
		return time - $t0
		  if $node->safe_psql('l', 'SELECT count(*) FROM ips.ledger_pending') eq '0';
		usleep(20_000);
	}
	return undef;
}

# wait for the server (and its sealer) after a crash
sub wait_recovered
{
	for (1 .. 600)
	{
		# psql with -c, not on standard input: while the server still refuses
		# connections, psql exits before reading its input, and writing to it
		# would raise SIGPIPE in this script
		my ($o, $e) = ('', '');
		return 1
		  if IPC::Run::run([ 'psql', '-XAtq', '-d', $node->connstr('l'), '-c', 'SELECT 1' ], '<', \'', '>', \$o, '2>', \$e);
		usleep(100_000);
	}
	return 0;
}

sub check_clean
{
	my ($label, $expect) = @_;
	ok(defined wait_sealed(30), "$label: the restarted sealer sealed everything");
	is($node->safe_psql('l', 'SELECT count(*) FROM ips.change_log'), $expect,
		"$label: every committed entry is there");
	is($node->safe_psql('l', 'SELECT count(*) FROM ips.verify_change_log()'), '0', "$label: the log verifies clean");
	is($node->safe_psql('l', q{SELECT sum(entries) FROM ips.ledger_block WHERE log = 'change_log'}), $expect,
		"$label: the blocks cover every entry exactly once");
}

my $t0 = time;
while (sealers() ne 'l,postgres' && time - $t0 < 30) { usleep(50_000); }
is(sealers(), 'l,postgres', 'one sealer per database of ips.seal_databases');
ok(defined wait_sealed(10), 'what was pending before the preload is sealed by the worker');
ok($node->wait_for_log(qr/ips sealer: extension ips 1\.2 is not installed in database "postgres"/),
	'a database without the extension is reported once and skipped');

# --- the lag: commit, then poll until sealed (nobody calls ips.seal())
my @lags;
for my $i (1 .. 10)
{
	$node->safe_psql('l', qq{SELECT ips.add_staff(1, 'Lag $i', 'specialist')});
	my $lag = wait_sealed($interval + $slack + 5);
	push @lags, defined $lag ? $lag : 99;
	usleep(int(rand(1_000_000)));    # land anywhere in the sealer's interval
}
my @sorted = sort { $a <=> $b } @lags;
my $max = $sorted[-1];
note(sprintf('sealing lag over 10 commits: median %.3f s, max %.3f s (interval %.1f s)',
		($sorted[4] + $sorted[5]) / 2, $max, $interval));
ok($max <= $interval + $slack, sprintf('every commit sealed within the interval plus %.1f s (max %.3f s)', $slack, $max));
is($node->safe_psql('l', q{SELECT count(*) FROM ips.change_log l
                            WHERE l.new_row ->> 'display_name' LIKE 'Lag %'
                              AND NOT EXISTS (SELECT FROM ips.ledger_block b WHERE b.log = 'change_log' AND l.xid = ANY (b.xids))}),
	'0', 'and each of them is in a block');

# --- an error in a seal: logged, and the same worker seals on once it is gone
my $worker_pid = $node->safe_psql('l', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'ips sealer' AND datname = 'l'});
my $head = $node->safe_psql('l', q{SELECT block_id || ' ' || encode(hash, 'hex') FROM ips.ledger_block
                                    WHERE log = 'change_log' ORDER BY block_id DESC LIMIT 1});
my ($head_id, $head_hash) = split / /, $head;
$node->safe_psql('l', qq{SET session_replication_role = replica;
	UPDATE ips.ledger_block SET hash = '\\x00' WHERE log = 'change_log' AND block_id = $head_id});
$node->safe_psql('l', q{SELECT ips.add_staff(1, 'During the error', 'specialist')});
ok($node->wait_for_log(qr/block $head_id of ips\.change_log has no valid hash/),
	'a seal that fails is logged');
usleep(int(2.5 * $interval * 1_000_000));
is($node->safe_psql('l', 'SELECT count(*) FROM ips.ledger_pending'), '1', 'while it fails, the entry stays pending');
$node->safe_psql('l', qq{SET session_replication_role = replica;
	UPDATE ips.ledger_block SET hash = '\\x$head_hash' WHERE log = 'change_log' AND block_id = $head_id});
ok(defined wait_sealed($interval + $slack), 'once the error is gone, the next seal goes through');
is($node->safe_psql('l', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'ips sealer' AND datname = 'l'}),
	$worker_pid, 'by the same worker: it survived the errors');
is($node->safe_psql('l', 'SELECT count(*) FROM ips.verify_change_log()'), '0', 'and the log verifies clean');

# --- SIGKILL of the worker in the middle of a seal of 150 000 entries
$node->safe_psql('l', q{INSERT INTO ips.staff (team_id, display_name, role)
                         SELECT 1, 'Bulk ' || g, 'specialist' FROM generate_series(1, 150000) g});
my $before = $node->safe_psql('l', 'SELECT count(*) FROM ips.change_log');
my $busy = '';
$t0 = time;
while (time - $t0 < 20)
{
	$busy = $node->safe_psql('l', q{SELECT pid FROM pg_stat_activity
	                                 WHERE backend_type = 'ips sealer' AND datname = 'l' AND state = 'active'});
	last if $busy ne '';
	usleep(5_000);
}
ok($busy ne '', 'the worker is sealing the 150 000 entries');
usleep(100_000);
kill 'KILL', $busy if $busy ne '';
ok(wait_recovered(), 'the server recovered from the SIGKILL of the worker');
check_clean('worker killed in the middle of a seal', $before);
$t0 = time;
while (sealers() ne 'l,postgres' && time - $t0 < 30) { usleep(50_000); }
isnt($node->safe_psql('l', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'ips sealer' AND datname = 'l'}),
	$busy, 'a new worker was started after the crash');

# --- the whole server killed in the middle of a seal
$node->safe_psql('l', q{INSERT INTO ips.staff (team_id, display_name, role)
                         SELECT 1, 'Bulk2 ' || g, 'specialist' FROM generate_series(1, 150000) g});
$before = $node->safe_psql('l', 'SELECT count(*) FROM ips.change_log');
$busy = '';
$t0 = time;
while (time - $t0 < 20)
{
	$busy = $node->safe_psql('l', q{SELECT pid FROM pg_stat_activity
	                                 WHERE backend_type = 'ips sealer' AND datname = 'l' AND state = 'active'});
	last if $busy ne '';
	usleep(5_000);
}
ok($busy ne '', 'the worker is sealing again');
usleep(100_000);
my $checkpointer = $node->safe_psql('l', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'});
$node->kill9;
for (1 .. 100)
{
	last unless kill 0, $checkpointer;
	usleep(100_000);
}
usleep(500_000);
$node->start;
check_clean('server killed in the middle of a seal', $before);

# --- SIGTERM: the server's shutdown stops the workers cleanly
$node->stop('fast');
my $log = slurp_file($node->logfile);
$log = substr($log, rindex($log, 'received fast shutdown request'));
like($log, qr/ips sealer for database "l" stopping/, 'SIGTERM stops the worker between seals');
unlike($log, qr/"ips sealer[^"]*" \(PID \d+\) exited with exit code 1/, 'with exit code 0');

done_testing();
