# Settings kept across transactions (extension/lookup.c, docs/ledger.md "Speed"):
# the guards keep the region's time zone and the earliest fact date from one
# transaction to the next; every change to ips.setting, committed in another
# session, rolled back, made with triggers in replica mode or with the trigger
# disabled, is still seen by the next transaction, and a repeatable-read
# transaction keeps reading with its own snapshot.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('setting_cache');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE s');
$node->safe_psql('s', 'CREATE EXTENSION ips');

# 2026-01-01 23:00 UTC is 2026-01-02 in Helsinki (the default) and in Tokyo, 2026-01-01 in UTC
my $day = q{SELECT ips.local_date(timestamptz '2026-01-01 23:00+00')};
my $a = $node->background_psql('s', on_error_stop => 0);
my $b = $node->background_psql('s');

is($a->query_safe($day), '2026-01-02', 'session A: the default zone, Europe/Helsinki (now kept)');
is($a->query_safe($day), '2026-01-02', 'session A again, from what it keeps');

$b->query_safe(q{UPDATE ips.setting SET value = 'UTC' WHERE name = 'time_zone'});
is($a->query_safe($day), '2026-01-01', 'a zone committed by session B is seen by A\'s next transaction');

$b->query_safe(q{BEGIN; UPDATE ips.setting SET value = 'Asia/Tokyo' WHERE name = 'time_zone'});
is($b->query_safe($day), '2026-01-02', 'session B sees its own uncommitted zone');
is($a->query_safe($day), '2026-01-01', 'session A does not');
$b->query_safe('ROLLBACK');
is($b->query_safe($day), '2026-01-01', 'after its rollback, session B reads the committed zone again');
is($a->query_safe($day), '2026-01-01', 'and so does A');

$b->query_safe(q{BEGIN; SAVEPOINT s; UPDATE ips.setting SET value = 'Asia/Tokyo' WHERE name = 'time_zone'});
is($b->query_safe($day), '2026-01-02', 'in a savepoint, session B sees its zone');
$b->query_safe('ROLLBACK TO SAVEPOINT s');
is($b->query_safe($day), '2026-01-01', 'rolled back to the savepoint, it does not');
$b->query_safe('COMMIT');

# repeatable read: the transaction's own snapshot, as before
$a->query_safe(q{BEGIN ISOLATION LEVEL REPEATABLE READ});
is($a->query_safe($day), '2026-01-01', 'a repeatable-read transaction reads UTC');
$b->query_safe(q{UPDATE ips.setting SET value = 'Asia/Tokyo' WHERE name = 'time_zone'});
is($a->query_safe($day), '2026-01-01', 'and keeps reading it after another session commits Tokyo');
$a->query_safe('COMMIT');
is($a->query_safe($day), '2026-01-02', 'its next transaction reads Tokyo');

# triggers in replica mode (superuser): the trigger fires always
$b->query_safe(q{SET session_replication_role = replica; UPDATE ips.setting SET value = 'UTC' WHERE name = 'time_zone'; RESET session_replication_role});
is($a->query_safe($day), '2026-01-01', 'a change made with session_replication_role = replica is seen');

# a removed setting (the default applies) and one put back
$b->query_safe(q{DELETE FROM ips.setting WHERE name = 'time_zone'});
is($a->query_safe($day), '2026-01-02', 'a deleted zone: the default again');
$b->query_safe(q{INSERT INTO ips.setting (name, value, description) VALUES ('time_zone', 'UTC', 'The region''s time zone.')});
is($a->query_safe($day), '2026-01-01', 'an inserted zone is seen');

# the trigger disabled: nothing is kept, every change is still seen
$b->query_safe(q{ALTER TABLE ips.setting DISABLE TRIGGER setting_changed});
is($a->query_safe($day), '2026-01-01', 'with the trigger disabled, session A reads UTC');
$b->query_safe(q{UPDATE ips.setting SET value = 'Asia/Tokyo' WHERE name = 'time_zone'});
is($a->query_safe($day), '2026-01-02', 'and sees a change the trigger did not announce');
$b->query_safe(q{ALTER TABLE ips.setting ENABLE ALWAYS TRIGGER setting_changed});

# the earliest fact date of the bounds guard (kept, and parsed once)
my $team = sub { "INSERT INTO ips.team (name, region, created_at) VALUES ('$_[0]', 'Uusimaa', '1850-06-01') RETURNING 'stored'" };
$a->query($team->('Early 1'));
like($a->{stderr}, qr/before 1900-01-01/, 'session A refuses a team created in 1850 (earliest fact date 1900-01-01, now kept)');
$a->{stderr} = '';
$b->query_safe(q{UPDATE ips.setting SET value = '1800-01-01' WHERE name = 'earliest_fact_date'});
is($a->query_safe($team->('Early 2')), 'stored', 'after session B moved it to 1800-01-01, session A stores it');
$b->query_safe(q{UPDATE ips.setting SET value = '1900-01-01' WHERE name = 'earliest_fact_date'});
$a->query($team->('Early 3'));
like($a->{stderr}, qr/before 1900-01-01/, 'moved back to 1900-01-01: session A refuses it again');
$a->{stderr} = '';

$a->quit;
$b->quit;
$node->stop;
done_testing();
