# Nothing lost: four clients record contacts and transitions concurrently
# (autocommit, each printing what the server acknowledged); the whole server
# is killed with SIGKILL in the middle of the load, restarted (crash
# recovery), and every invariant is checked: every acknowledged contact and
# transition is there, at most one open episode per client, every episode's
# state equals its last history row, the change-log chain is intact, the
# indexes are consistent (amcheck).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);

my $clients = 4;			# concurrent psql sessions
my $episodes = 40;			# 10 per session, so that sessions do not wait on each other
my $statements = 20000;		# per session: far more than run before the kill

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
# durability as in production: fsync on, synchronous commit
$node->append_conf('postgresql.conf', qq{
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 64MB
max_connections = 20
log_statement = none
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE ips_db');
$node->safe_psql('ips_db', 'CREATE EXTENSION ips');
$node->safe_psql('ips_db', qq{
SET TimeZone = 'Europe/Helsinki';
SELECT ips.add_team('Kuopio IPS', 'Pohjois-Savo');
SELECT ips.add_staff(1, 'Specialist ' || s, 'specialist') FROM generate_series(1, $clients) s;
DO \$\$
DECLARE
    c bigint; e bigint;
BEGIN
    FOR i IN 1..$episodes LOOP
        c := ips.add_client('kys-' || i);
        PERFORM ips.start_care_relationship(c, 'Kuopio psychiatric outpatient clinic', '2025-01-01');
        e := ips.refer(c, 1, '2025-01-02');
        PERFORM ips.assign_specialist(e, 1 + e % $clients, '2025-01-02');
        PERFORM ips.transition(e, 'engaged', '2025-01-03 10:00');
        PERFORM ips.transition(e, 'job_search', '2025-01-10 10:00');
    END LOOP;
END \$\$;
});
my $base_contacts = $node->safe_psql('ips_db', 'SELECT count(*) FROM ips.contact');
my $base_contact_max = $node->safe_psql('ips_db', 'SELECT coalesce(max(contact_id), 0) FROM ips.contact');

# One script per session: autocommit statements; every statement prints what
# the server acknowledged.  Session k works on the episodes e with e % 4 = k
# and its own specialist; every 10th statement moves an episode between
# job_search and on_hold (on_hold returns only to the paused state).
my $dir = $node->basedir;
my (@handles, @outfiles, @errfiles);
for my $k (0 .. $clients - 1) {
	my @mine = grep { $_ % $clients == $k } 1 .. $episodes;
	my %state = map { $_ => 'job_search' } @mine;
	my $staff = 1 + $k;
	my $sql = "SET TimeZone = 'UTC';\n";
	for my $i (1 .. $statements) {
		my $e = $mine[$i % @mine];
		# one minute per statement from 2025-02-01 on; all in the past, increasing per episode
		my $ts = sprintf("timestamptz '2025-02-01 00:00+00' + interval '%d minutes'", $i);
		if ($i % 10 == 0) {
			my $to = $state{$e} eq 'job_search' ? 'on_hold' : 'job_search';
			$state{$e} = $to;
			$sql .= "SELECT 't', $e, ips.transition($e, '$to', $ts, 'load'), $i;\n";
		} else {
			$sql .= "SELECT 'c', ips.record_contact($e, $staff, $ts, 'client', 'phone', 'office', 5);\n";
		}
	}
	my $file = "$dir/load_$k.sql";
	PostgreSQL::Test::Utils::append_to_file($file, $sql);
	push @outfiles, "$dir/load_$k.out";
	push @errfiles, "$dir/load_$k.err";
	push @handles, IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('ips_db'), '-f', $file ],
		'<', \undef, '>', $outfiles[-1], '2>', $errfiles[-1]);
}

# Let the load run until some thousands of contacts are in, then kill the
# postmaster and every one of its processes with SIGKILL at once.
my $started = time;
my $n = 0;
while (time - $started < 30) {
	$n = $node->safe_psql('ips_db', 'SELECT count(*) FROM ips.contact') - $base_contacts;
	last if $n >= 2000 && time - $started >= 1;
	usleep(100_000);
}
cmp_ok($n, '>=', 2000, "the load is running ($n contacts in " . sprintf('%.1f', time - $started) . ' s)');
my $pm = $node->{_pid};
my @children = grep { my $s = eval { PostgreSQL::Test::Utils::slurp_file("/proc/$_/stat") } // '';
					  $s =~ /^\d+ \(.*\) \S (\d+)/ && $1 == $pm } map { m{/proc/(\d+)$} ? $1 : () } glob('/proc/[0-9]*');
note('killing postmaster ' . $pm . ' and its ' . scalar(@children) . ' processes with SIGKILL');
kill 'KILL', $pm, @children;
$node->{_pid} = undef;
ok(scalar(@children) >= $clients, 'the server processes were killed (postmaster and ' . scalar(@children) . ' children)');
$_->finish for @handles;
for (1 .. 100) { last unless grep { kill 0, $_ } $pm, @children; usleep(100_000); }

# What each session saw acknowledged.
my (@acked_contacts, @acked_transitions);
my $cut_short = 0;
for my $k (0 .. $clients - 1) {
	my @lines = split /\n/, PostgreSQL::Test::Utils::slurp_file($outfiles[$k]);
	my $err = PostgreSQL::Test::Utils::slurp_file($errfiles[$k]);
	for (@lines) {
		if (/^c\|(\d+)$/) { push @acked_contacts, $1; }
		elsif (/^t\|(\d+)\|(\w+)\|(\d+)$/) { push @acked_transitions, [ $1, $2, $3 ]; }
	}
	$cut_short++ if @lines < $statements;
	my ($first) = split /\n/, $err // '';
	like($err, qr/connection|terminat|closed/i, "session $k stopped by the lost connection (" . ($first // '') . ')');
	unlike($err, qr/ERROR:  (?!.*(terminat|shut ?down|crash))/, "session $k stopped by the crash, not by an error of ours")
		or diag($err);
	note("session $k: " . scalar(@lines) . " statements acknowledged of $statements");
}
is($cut_short, $clients, 'every session was cut short by the kill (the kill happened during the load)');
cmp_ok(scalar(@acked_contacts), '>=', 1000, scalar(@acked_contacts) . ' contacts and ' . scalar(@acked_transitions)
	. ' transitions were acknowledged before the kill');

# Restart: crash recovery replays the WAL.
$node->start;
ok(1, 'the server restarts after the crash');
like(PostgreSQL::Test::Utils::slurp_file($node->logfile), qr/database system was interrupted|not properly shut down|redo starts/,
	'and it went through crash recovery');

# 1. every acknowledged contact is there
my $ids = join(',', @acked_contacts);
is($node->safe_psql('ips_db', "SELECT count(*) FROM unnest('{$ids}'::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM ips.contact c WHERE c.contact_id = id)"),
	'0', 'every acknowledged contact is present after recovery');
my $extra = $node->safe_psql('ips_db', "SELECT count(*) FROM ips.contact WHERE contact_id > $base_contact_max AND contact_id <> ALL ('{$ids}'::bigint[])");
cmp_ok($extra, '<=', $clients, "at most one unacknowledged commit per session ($extra committed while the acknowledgement was lost)");

# 2. every acknowledged transition is in the history
my $tr = join(',', map { "($_->[0], '$_->[1]', timestamptz '2025-02-01 00:00+00' + interval '$_->[2] minutes')" } @acked_transitions);
is($node->safe_psql('ips_db', qq{SELECT count(*) FROM (VALUES $tr) AS t(e, s, at)
    WHERE NOT EXISTS (SELECT 1 FROM ips.episode_state_history h WHERE h.episode_id = t.e AND h.to_state = t.s AND h.at = t.at)}),
	'0', 'every acknowledged transition is in the state history');

# 3. at most one open episode per client
is($node->safe_psql('ips_db', q{SELECT count(*) FROM (SELECT client_id FROM ips.episode WHERE state <> 'closed'
                                                      GROUP BY client_id HAVING count(*) > 1) x}),
	'0', 'at most one open episode per client');

# 4. every episode's state and state_since equal its last history row (by at, history_id)
is($node->safe_psql('ips_db', q{
SELECT count(*) FROM ips.episode e
  LEFT JOIN LATERAL (SELECT h.to_state, h.at FROM ips.episode_state_history h WHERE h.episode_id = e.episode_id
                      ORDER BY h.at DESC, h.history_id DESC LIMIT 1) l ON true
 WHERE l.to_state IS DISTINCT FROM e.state OR l.at IS DISTINCT FROM e.state_since}),
	'0', q{every episode's state and state_since equal its last history row});
is($node->safe_psql('ips_db', q{
SELECT count(*) FROM ips.episode_state_history h JOIN ips.episode e USING (episode_id)
 WHERE h.client_id <> e.client_id
    OR h.from_state IS DISTINCT FROM (SELECT p.to_state FROM ips.episode_state_history p WHERE p.episode_id = h.episode_id
                                        AND (p.at, p.history_id) < (h.at, h.history_id) ORDER BY p.at DESC, p.history_id DESC LIMIT 1)}),
	'0', 'the history is a chain: each row starts from the state the row before it ended in');

# 5. the change-log chain
SKIP: {
	skip 'ips.verify_change_log() does not exist yet (extension/sql/90_security.sql)', 2
		unless $node->safe_psql('ips_db', q{SELECT to_regprocedure('ips.verify_change_log()') IS NOT NULL}) eq 't';
	is($node->safe_psql('ips_db', 'SELECT count(*) FROM ips.verify_change_log()'), '0',
		'ips.verify_change_log() finds the chain intact');
	is($node->safe_psql('ips_db', "SELECT count(*) FROM ips.contact c WHERE c.contact_id > $base_contact_max AND NOT EXISTS
	        (SELECT 1 FROM ips.change_log l WHERE l.table_name IN ('ips.contact', 'contact') AND l.operation = 'INSERT'
	            AND (l.row_key ->> 'contact_id')::bigint = c.contact_id)"),
		'0', 'every contact that survived has its change-log entry');
}

# 6. the indexes agree with the tables (amcheck), and the server takes new work; the indexes
#    with storage (relkind i: not the partitioned index of ips.vocabulary)
$node->safe_psql('ips_db', 'CREATE EXTENSION amcheck');
is($node->safe_psql('ips_db', q{
SELECT count(*) FROM (SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                        JOIN pg_am a ON a.oid = c.relam
                       WHERE c.relnamespace = 'ips'::regnamespace AND a.amname = 'btree'
                         AND c.relkind = 'i') x}),
	$node->safe_psql('ips_db', q{SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
	                              WHERE c.relnamespace = 'ips'::regnamespace AND a.amname = 'btree' AND c.relkind = 'i'}),
	'every btree index of ips passes bt_index_check (heapallindexed)');
my $max = (sort { $b <=> $a } @acked_contacts)[0];
cmp_ok($node->safe_psql('ips_db', q{SELECT ips.record_contact(1, 2, '2025-06-01 10:00', 'client')}), '>', $max,
	'a new contact after recovery gets an id past every acknowledged one');

$node->stop;
done_testing();
