# The verifier in bounded memory and with progress (docs/ledger.md, "Verification
# in constant memory, and its progress"): it plans and runs its queries without
# JIT (JIT would load LLVM into the backend, some 51 MB outside every memory
# context, once a log passes about a million entries), the session's jit setting
# is back afterwards, it walks the log through its index (never a sort, which
# would take work_mem and temporary files), and every 10 000 entries the
# backend's pg_stat_activity.query tells how far it is.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('verify');
$node->init;
$node->append_conf('postgresql.conf', 'autovacuum = off');	# the log's statistics stay as the walk found them
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE l');
$node->safe_psql('l', 'CREATE EXTENSION ips');

# block 1: one team; block 2: 25 000 staff inserted in one transaction
$node->safe_psql('l', q{SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa'); SELECT ips.seal()});
$node->safe_psql('l', q{INSERT INTO ips.staff (team_id, display_name, role)
                        SELECT 1, 'Staff ' || i, 'specialist' FROM generate_series(1, 25000) i;
                        SELECT ips.seal()});
is($node->safe_psql('l', q{SELECT string_agg(block_id || ':' || entries, ' ' ORDER BY block_id) FROM ips.ledger_block WHERE log = 'change_log'}),
	'1:1 2:25000', 'two blocks: 1 entry, then 25 000');

# --- no sort of the log: the log was never analyzed, so a planner left to itself
# sorts it (an index scan without correlation looks dearer); with work_mem at 1 MB
# such a sort (of some 10 MB) would spill to temporary files.  The walk is an index scan.
my $temp = q{SELECT temp_files FROM pg_stat_database WHERE datname = current_database()};
my $temp0 = $node->safe_psql('l', $temp);
is($node->safe_psql('l', q{SET work_mem = '1MB'; SELECT count(*) FROM ips.verify_change_log()}), '0',
	'the log verifies clean with work_mem = 1MB');
is($node->safe_psql('l', $temp), $temp0, 'and the walk wrote no temporary file (no sort of the log)');

# --- progress: the last report of the walk is left in the backend's activity until
# its next query message (so both statements go in one, psql's \;); the 20 000th
# entry walked is the 19 999th of block 2, after block 1 was closed
my $seq20000 = $node->safe_psql('l', q{SELECT seq FROM ips.change_log ORDER BY seq OFFSET 19999 LIMIT 1});
is($node->safe_psql('l', q{SELECT count(*) FROM ips.verify_change_log() \;
                           SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()}),
	"0\nips.verify: change_log seq $seq20000 (20000 entries, 1 blocks done)",
	'a watcher sees "ips.verify: change_log seq N (k entries, b blocks done)" every 10 000 entries');

# --- no JIT: with jit_above_cost below the cost of the verifier's own queries (but
# above the caller's count over the function, cost 12.76), the verifier loads no
# JIT provider, and the session's jit is on again afterwards
my $pkglib = $node->config_data('--pkglibdir');
my $digest = $node->safe_psql('l', 'SELECT ips.change_log_digest()');
SKIP:
{
	skip 'this PostgreSQL has no JIT provider (llvmjit)', 4 unless -e "$pkglib/llvmjit.so";
	my $jit = q{SET jit = on; SET jit_above_cost = 15; SET jit_inline_above_cost = -1; SET jit_optimize_above_cost = -1;};
	my $mapped = q{SELECT pg_read_file('/proc/' || pg_backend_pid() || '/maps') LIKE '%llvmjit%'};
	is($node->safe_psql('l', qq{$jit SELECT count(*) FROM ips.verify_change_log(); $mapped; SHOW jit; SHOW enable_sort;}),
		"0\nf\non\non", 'verify_change_log() runs without JIT (no llvmjit in the backend) and leaves jit and enable_sort on');
	is($node->safe_psql('l', qq{$jit SELECT count(*) FROM ips.verify_access_log(); $mapped;}),
		"0\nf", 'and so does verify_access_log()');
	is($node->safe_psql('l', qq{$jit SELECT count(*) FROM ips.verify_change_log('$digest'); $mapped;}),
		"0\nf", 'and the form with a digest');
	# the check can see JIT: an ordinary query under the same settings loads it
	is($node->safe_psql('l', qq{$jit SELECT count(*) FROM ips.staff WHERE fte > 0; $mapped;}),
		"25000\nt", 'control: an ordinary query of the same session is JIT-compiled (llvmjit mapped)');
}

$node->stop;
done_testing();
