# Staff days kept across transactions (extension/staff_days.c, docs/ledger.md "Speed"):
# the staff-day guard keeps each person's days on the team from one transaction to
# the next in a read-committed session; a change to ips.staff committed in another
# session, rolled back, made in replica mode or with the trigger disabled, a change of
# the region's time zone, and a repeatable-read transaction are each still honoured.
#
# Expectations by hand.  Region time zone Europe/Helsinki (EET, +02 in January).
# Ada is on the team from 2026-01-05.  A contact at 2026-01-20 10:00 UTC (12:00
# local) is on her days; ended_on 2026-01-20 (the first day off the team) refuses
# it (22023); ended_on 2026-01-21 keeps it.  With ended_on 2026-01-21 a contact at
# 2026-01-20 22:30 UTC is 00:30 on 01-21 in Helsinki (refused) but 22:30 on 01-20
# in UTC (kept).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('staff_cache');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE s');
$node->safe_psql('s', 'CREATE EXTENSION ips');
my ($ada, $episode) = split /\|/, $node->safe_psql('s', q{
	SELECT a.staff_id, ips.refer(ips.add_client('ada-client'), t.team_id, '2026-01-02')
	  FROM (SELECT ips.add_team('Kept', 'Uusimaa') AS team_id) t,
	       LATERAL (SELECT ips.add_staff(t.team_id, 'Ada', 'specialist') AS staff_id) a});
$node->safe_psql('s', "UPDATE ips.staff SET started_on = '2026-01-05' WHERE staff_id = $ada");

my $a = $node->background_psql('s', on_error_stop => 0);
my $b = $node->background_psql('s');

# contact(at): 'kept', or the SQLSTATE of the refusal.  Session A tries the insert in a
# block that undoes it either way (no contact stays: ips.staff's dates could not move
# around a kept one, 55000), in its own transaction unless one is open.
my $contact = sub {
	my ($at) = @_;
	$a->{stderr} = '';
	$a->query(qq{
		DO \$\$ BEGIN
			INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES ($episode, $ada, '$at', 'client');
			RAISE SQLSTATE 'P0K01';
		EXCEPTION WHEN SQLSTATE 'P0K01' THEN RAISE NOTICE 'outcome kept';
		          WHEN OTHERS THEN RAISE NOTICE 'outcome %', SQLSTATE;
		END \$\$;
		SELECT 'done'});
	my $outcome = $a->{stderr} =~ /outcome (\w+)/ ? $1 : "no outcome: $a->{stderr}";
	$a->{stderr} = '';
	return $outcome;
};
my $noon = '2026-01-20 10:00+00';

is($contact->($noon), 'kept', 'session A: a contact on Ada\'s days (her days now kept)');
is($contact->($noon), 'kept', 'again, from what session A keeps');

$b->query_safe(qq{UPDATE ips.staff SET ended_on = '2026-01-20' WHERE staff_id = $ada});
is($contact->($noon), '22023', 'an end committed by session B is seen by A\'s next transaction');

$b->query_safe(qq{BEGIN; UPDATE ips.staff SET ended_on = '2026-01-21' WHERE staff_id = $ada});
is($contact->($noon), '22023', 'an end moved by B but not committed is not seen by A');
$b->query_safe('ROLLBACK');
is($contact->($noon), '22023', 'nor after B rolled it back');

# the writing session itself, a savepoint rolled back, and the transaction rolled back
$a->query_safe(qq{BEGIN; SAVEPOINT s; UPDATE ips.staff SET ended_on = '2026-01-21' WHERE staff_id = $ada});
is($contact->($noon), 'kept', 'in a savepoint, session A sees the end it moved itself');
$a->query_safe('ROLLBACK TO SAVEPOINT s');
is($contact->($noon), '22023', 'rolled back to the savepoint, the old end holds again');
$a->query_safe('ROLLBACK');
is($contact->($noon), '22023', 'and after the transaction rolled back');

# replica mode (superuser): the trigger fires always
$b->query_safe(qq{SET session_replication_role = replica; UPDATE ips.staff SET ended_on = '2026-01-21' WHERE staff_id = $ada; RESET session_replication_role});
is($contact->($noon), 'kept', 'an end moved with session_replication_role = replica is seen');

# the region's time zone places the midnights of the kept days
my $late = '2026-01-20 22:30+00';
is($contact->($late), '22023', '22:30 UTC on 01-20 is 00:30 on 01-21 in Helsinki: off the team');
$b->query_safe(q{UPDATE ips.setting SET value = 'UTC' WHERE name = 'time_zone'});
is($contact->($late), 'kept', 'with the region in UTC it is 01-20: on the team');
$b->query_safe(q{UPDATE ips.setting SET value = 'Europe/Helsinki' WHERE name = 'time_zone'});
is($contact->($late), '22023', 'back in Helsinki: off the team again');

# repeatable read: the transaction's own snapshot, as before (its contacts lock the
# staff row, so another session's change to Ada herself would end it with 40001; the
# region's time zone, which places her days' midnights, shows it)
$a->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$a->query_safe('SELECT 1');
$b->query_safe(q{UPDATE ips.setting SET value = 'UTC' WHERE name = 'time_zone'});
is($contact->($late), '22023', 'a repeatable-read transaction keeps the Helsinki midnights of its snapshot');
$a->query_safe('ROLLBACK');
is($contact->($late), 'kept', 'its next transaction takes the UTC ones');
$b->query_safe(q{UPDATE ips.setting SET value = 'Europe/Helsinki' WHERE name = 'time_zone'});
$b->query_safe(qq{UPDATE ips.staff SET ended_on = '2026-01-20' WHERE staff_id = $ada});
is($contact->($noon), '22023', 'an end on 01-20 committed by B is seen');

# the trigger disabled: nothing is kept, every change is still seen
$b->query_safe('ALTER TABLE ips.staff DISABLE TRIGGER staff_changed');
is($contact->($noon), '22023', 'with the trigger disabled, session A still refuses');
$b->query_safe(qq{UPDATE ips.staff SET ended_on = NULL WHERE staff_id = $ada});
is($contact->($noon), 'kept', 'and sees a change the trigger did not announce');
$b->query_safe(qq{UPDATE ips.staff SET ended_on = '2026-01-20' WHERE staff_id = $ada});
is($contact->($noon), '22023', 'and the next one');
$b->query_safe('ALTER TABLE ips.staff ENABLE ALWAYS TRIGGER staff_changed');

# a later start
$b->query_safe(qq{UPDATE ips.staff SET ended_on = NULL, started_on = '2026-01-21' WHERE staff_id = $ada});
is($contact->($noon), '22023', 'a start moved after the contact day is seen');
$b->query_safe(qq{UPDATE ips.staff SET started_on = '2026-01-05' WHERE staff_id = $ada});
is($contact->($noon), 'kept', 'and moved back');

$a->quit;
$b->quit;
$node->stop;
done_testing();
