# Reads of a client's record stay logged when the reader rolls back, and fail
# when they cannot be logged (issue 14, docs/access-log.md).  What the pgTAP
# file tests/pgtap/access_log_autonomous.sql cannot do inside its one
# transaction: a top-level ROLLBACK by a logged-in specialist, a read-only
# transaction, a reader holding its transaction open, a writer whose statement
# fails, no free worker slot (max_worker_processes), and concurrent readers
# sharing few slots.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('autonomous');
$node->init;
$node->append_conf('postgresql.conf', qq{
fsync = off
max_worker_processes = 8
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE ips_db');
$node->safe_psql('ips_db', 'CREATE EXTENSION ips');
$node->safe_psql('ips_db', q{
CREATE ROLE spec LOGIN; GRANT ips_specialist TO spec;
CREATE ROLE sup LOGIN;  GRANT ips_supervisor TO sup;
SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa');
SELECT ips.add_staff(1, 'Anna', 'specialist', db_role => 'spec');
SELECT ips.add_staff(1, 'Sara', 'supervisor', db_role => 'sup');
SELECT ips.add_client('H-1', 1990);
SELECT ips.refer(1, 1, '2024-01-10');
SELECT ips.assign_specialist(1, 1, '2024-01-11');
});
my $spec_staff = $node->safe_psql('ips_db', q{SELECT staff_id FROM ips.staff WHERE db_role = 'spec'});

# psql as a login role: (exit code, stdout, stderr)
sub as_role {
	my ($role, $sql) = @_;
	my ($stdout, $stderr) = ('', '');
	my $rc = $node->psql('ips_db', $sql, stdout => \$stdout, stderr => \$stderr,
		extra_params => [ '-U', $role, '-v', 'VERBOSITY=verbose' ]);
	return ($rc, $stdout, $stderr);
}

# the entries of client 1 with a purpose, as the supervisor's access report shows them
sub reported {
	my ($purpose) = @_;
	my (undef, $out) = as_role('sup', qq{SELECT count(*) FROM ips.access_report(1) WHERE purpose = '$purpose'});
	return $out;
}

# 1. The read of issue 14: BEGIN; client_record; ROLLBACK.
my ($rc, $out, $err) = as_role('spec', q{
BEGIN;
SELECT ips.client_record(1, 'covert read') -> 'client' ->> 'host_ref';
ROLLBACK;
});
is($out, 'H-1', 'BEGIN; client_record; ROLLBACK returns the record to the specialist');
is(reported('covert read'), '1', 'and the rolled-back read is in the supervisor\'s access report');
is($node->safe_psql('ips_db', q{SELECT db_role || ' ' || staff_id FROM ips.access_log WHERE purpose = 'covert read'}),
	"spec $spec_staff", 'as the specialist\'s read (role and staff id of the reader, not the writer\'s)');

# 1b. A reader that keeps its transaction open does not hold up other reads
# (1.1: its entry's append lock was held to its end, and every other
# client_record in the region waited for it).
my $held = $node->background_psql('ips_db', extra_params => [ '-U', 'spec' ]);
$held->query_safe(q{BEGIN; SELECT ips.client_record(1, 'held open') IS NOT NULL;});
($rc, $out, $err) = as_role('sup',
	q{SET lock_timeout = '2s'; SELECT ips.client_record(1, 'while another is open') -> 'client' ->> 'host_ref'});
is($out, 'H-1', 'a read while another reader keeps its transaction open does not wait (lock_timeout 2s)');
is(reported('held open'), '1', 'the open transaction\'s read is already in the report');
$held->query_safe('ROLLBACK');
$held->quit;

# 2. A DO block that catches an error after the read.
($rc, $out, $err) = as_role('spec', q{
DO $$
BEGIN
    PERFORM ips.client_record(1, 'read, then an error caught');
    PERFORM 1 / 0;
EXCEPTION WHEN division_by_zero THEN
    NULL;
END $$;
});
is($rc, 0, 'the DO block ends without error');
is(reported('read, then an error caught'), '1', 'and its read is logged');

# 3. A read-only transaction can read (the entry is written elsewhere); 1.1 failed with 25006.
($rc, $out, $err) = as_role('spec', q{
BEGIN READ ONLY;
SELECT ips.client_record(1, 'read-only transaction') -> 'client' ->> 'birth_year';
COMMIT;
});
is($out, '1990', 'a read in a READ ONLY transaction returns the record');
is(reported('read-only transaction'), '1', 'and is logged');

# 3b. A reader cancelled while its writer waits (statement_timeout, the log
# locked by another session): the reader gets nothing; the writer, not told to
# stop, commits once the lock is gone.  An entry without a record returned is
# the one outcome that is not all-or-nothing, and it errs on the safe side.
my $locker = $node->background_psql('ips_db');
$locker->query_safe(q{BEGIN; LOCK TABLE ips.access_log IN ACCESS EXCLUSIVE MODE;});
($rc, $out, $err) = as_role('spec',
	q{SET statement_timeout = '300ms'; SELECT ips.client_record(1, 'cancelled while waiting') -> 'client' ->> 'host_ref'});
isnt($rc, 0, 'a reader cancelled while its entry waits for a lock fails');
is($out, '', 'and gets no record');
like($err, qr/57014/, 'with the cancel\'s SQLSTATE (57014)');
$locker->query_safe('ROLLBACK');
$locker->quit;
ok($node->poll_query_until('ips_db',
		q{SELECT count(*) = 1 FROM ips.access_log WHERE purpose = 'cancelled while waiting'}),
	'its entry is committed once the lock is released (logged, not shown)');

# 4. The writer's statement fails (a constraint the DBA put on the log): the read fails.
$node->safe_psql('ips_db',
	q{ALTER TABLE ips.access_log ADD CONSTRAINT test_refuse CHECK (purpose <> 'refused by the log')});
($rc, $out, $err) = as_role('spec', q{SELECT ips.client_record(1, 'refused by the log')});
isnt($rc, 0, 'when the log writer fails, the read fails');
is($out, '', 'and returns nothing');
like($err, qr/ERROR:  23514: the access to client 1 could not be logged/, 'with the writer\'s SQLSTATE and a clear message');
is(reported('refused by the log'), '0', 'and no entry');
$node->safe_psql('ips_db', q{ALTER TABLE ips.access_log DROP CONSTRAINT test_refuse});

# 5. No free worker slot: max_worker_processes = 1 is taken by the logical
# replication launcher.  The read fails after a few short retries.
$node->append_conf('postgresql.conf', 'max_worker_processes = 1');
$node->restart;
is($node->safe_psql('ips_db', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'logical replication launcher'}),
	'1', 'the launcher holds the one worker slot');
my $t0 = time;
($rc, $out, $err) = as_role('spec', q{SELECT ips.client_record(1, 'no worker slot')});
my $took = time - $t0;
isnt($rc, 0, 'without a free worker slot the read fails');
is($out, '', 'and returns nothing');
like($err, qr/ERROR:  53000: the access to client 1 could not be logged: no background worker slot is free/,
	'with 53000 and a clear message');
like($err, qr/HINT:  .*raise max_worker_processes/, 'and a hint');
cmp_ok($took, '<', 5, "within a bounded wait (took ${\ sprintf('%.2f', $took)} s)");
is(reported('no worker slot'), '0', 'and no entry');

# 6. Concurrent readers sharing few slots (2 free): every read that returned is
# logged; none returns unlogged.
$node->append_conf('postgresql.conf', 'max_worker_processes = 3');
$node->restart;
my $script = $node->basedir . '/read.sql';
PostgreSQL::Test::Utils::append_to_file($script, "SELECT ips.client_record(1, 'concurrent');\n");
my ($bout, $berr) = ('', '');
IPC::Run::run([ 'pgbench', '-n', '-c', '6', '-t', '20', '-f', $script, '-U', 'spec',
	'-h', $node->host, '-p', $node->port, 'ips_db' ], '>', \$bout, '2>', \$berr);
my ($done) = $bout =~ /number of transactions actually processed: (\d+)/;
$done //= 0;
my $logged = $node->safe_psql('ips_db', q{SELECT count(*) FROM ips.access_log WHERE purpose = 'concurrent'});
my $aborted = () = $berr =~ /aborted/g;
note("6 readers x 20 reads with 2 worker slots: $done returned, $logged logged, $aborted readers stopped by an error");
cmp_ok($done, '>', 0, 'concurrent readers read');
cmp_ok($logged, '>=', $done, 'every read that returned is logged');
is($node->safe_psql('ips_db', q{SELECT count(*) FROM ips.verify_access_log()}), '0', 'the access log verifies');

$node->stop;
done_testing();
