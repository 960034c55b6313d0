# pg_dump / pg_restore of a database holding ips data gives back the same
# rows; DROP EXTENSION ips; CREATE EXTENSION ips works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('regional');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE regional');
$node->safe_psql('regional', 'CREATE EXTENSION ips');
my ($roles_out, $roles_err) = ('', '');
$node->psql('regional', 'SELECT ips.create_roles(); SELECT ips.create_roles();', stdout => \$roles_out, stderr => \$roles_err, on_error_die => 1);
is($roles_err, '', 'ips.create_roles() (which re-applies grants, policies and triggers), run twice, prints no notices for the DBA to wade through');
$node->safe_psql('regional', q{
SET TimeZone = 'Europe/Helsinki';
SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa');
SELECT ips.add_team('Kokkola IPS', 'Keski-Pohjanmaa');
SELECT ips.add_staff(1, 'Anna', 'specialist', 1.0, NULL, 0.95, 37.5);
SELECT ips.add_staff(2, 'Bertil', 'specialist', 0.5);
SELECT ips.add_employer('Prisma Vaasa', '0112038-9', 'retail');
SELECT ips.add_employer('Wärtsilä', '0737546-2', 'manufacturing');
UPDATE ips.setting SET value = '4' WHERE name = 'disengaged_min_outreach_attempts';
DO $$
DECLARE
    c bigint; e bigint; j bigint;
BEGIN
    FOR i IN 1..20 LOOP
        c := ips.add_client('ehr-' || i, 1980 + i, 'Vaasa');
        PERFORM ips.start_care_relationship(c, 'Vaasa psychiatric outpatient clinic', '2025-01-01');
        PERFORM ips.give_consent(c, 'share_with_care', '2025-01-01');
        e := ips.refer(c, 1 + i % 2, ('2025-01-0' || (1 + i % 9))::date, 'psychiatric_outpatient');
        PERFORM ips.assign_specialist(e, 1 + i % 2, '2025-01-10');
        PERFORM ips.transition(e, 'engaged', '2025-01-11 10:00');
        PERFORM ips.record_contact(e, 1 + i % 2, '2025-01-11 10:00', 'client', 'in_person', 'community', 45);
        PERFORM ips.record_employer_contact(1 + i % 2, 1 + i % 2, '2025-01-20 14:00', true, e);
        IF i % 3 = 0 THEN
            j := ips.start_job(e, 1 + i % 2, '2025-02-01', 'competitive', '5223', 20);
            IF i % 2 = 0 THEN PERFORM ips.end_job(j, '2025-04-30'); END IF;
        ELSIF i % 5 = 0 THEN
            PERFORM ips.transition(e, 'closed', '2025-03-01 10:00', 'client_choice');
        END IF;
    END LOOP;
END $$;
SELECT ips.record_team_meeting(1, '2025-01-15');
});

# The same query over every table of the extension, for comparison.
my $tables = $node->safe_psql('regional', q{
SELECT string_agg(format('SELECT %L AS t, count(*) AS n, md5(coalesce(string_agg(x::text, ''|'' ORDER BY x::text), '''')) AS h FROM %s x',
                         c.oid::regclass::text, c.oid::regclass), ' UNION ALL ' ORDER BY c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'ips' AND c.relkind = 'r'});
my $before = $node->safe_psql('regional', "$tables ORDER BY 1");
like($before, qr/ips\.episode\|20\|/, 'the regional database holds 20 episodes');

my $dump = $node->basedir . '/regional.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('regional') ], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
{
	local $ENV{PGOPTIONS} = '-c ips.restoring=on';
	$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
		'pg_restore with ips.restoring=on');
}
my $after = $node->safe_psql('restored', "$tables ORDER BY 1");
is($after, $before, 'every ips table has the same rows after restore');
is($node->safe_psql('restored', q{SELECT count(*) FROM ips.verify_change_log()}), '0',
	'the restored change log chain is intact');
is($node->safe_psql('restored', q{SELECT value FROM ips.setting WHERE name = 'disengaged_min_outreach_attempts'}),
	'4', 'a changed setting survives');

# sequences go on after the restored ids, and the state machine works on restored rows
is($node->safe_psql('restored', q{SELECT ips.add_client('ehr-new') > 20}), 't', 'new ids follow the restored ones');
is($node->safe_psql('restored', q{SELECT ips.transition(episode_id, 'job_search') FROM ips.episode WHERE state = 'engaged' ORDER BY episode_id LIMIT 1}),
	'job_search', 'the state machine works on a restored episode');
my ($ret, $out, $err) = $node->psql('restored', q{SELECT ips.transition(episode_id, 'engaged') FROM ips.episode WHERE state = 'closed' LIMIT 1});
like($err, qr/is closed/, 'restored closed episodes stay final');

# without the setting, a superuser's restore works all the same (pg_dump output sets
# row_security = off and check_function_bodies = false; tests/t/002_restore_without_option.pl)
$node->safe_psql('postgres', 'CREATE DATABASE restored_wrong');
my ($out2, $err2) = ('', '');
my $ok = IPC::Run::run([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored_wrong'), $dump ],
	'>', \$out2, '2>', \$err2);
ok($ok, 'pg_restore without ips.restoring=on works too') or diag($err2);
is($err2, '', 'without an error');

# DROP EXTENSION / CREATE EXTENSION
$node->safe_psql('regional', 'DROP EXTENSION ips CASCADE');
is($node->safe_psql('regional', q{SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ips')
                                       + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'ips')
                                       + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'ips')}),
	'0', 'DROP EXTENSION removes every ips table, function and type');
$node->safe_psql('regional', 'CREATE EXTENSION ips');
is($node->safe_psql('regional', q{SELECT count(*) FROM ips.episode}), '0', 'CREATE EXTENSION again gives an empty, working schema');
is($node->safe_psql('regional', q{SELECT ips.add_team('New', 'Kainuu')}), '1', 'and it works');
$node->safe_psql('restored', 'DROP EXTENSION ips CASCADE');
is($node->safe_psql('restored', q{SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ips'}),
	'0', 'DROP EXTENSION in the restored database removes every ips table');
$node->safe_psql('restored', 'CREATE EXTENSION ips');
is($node->safe_psql('restored', q{SELECT count(*) FROM ips.setting}), $node->safe_psql('regional', q{SELECT count(*) FROM ips.setting}),
	'and CREATE EXTENSION works there too (all default settings)');

$node->stop;
done_testing();
