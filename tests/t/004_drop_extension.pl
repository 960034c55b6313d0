# DROP EXTENSION ips leaves nothing behind, the schema included: in a fresh
# 1.2 database and in one updated from 1.1 (whose schema PostgreSQL made);
# pg_dump leaves the schema to CREATE EXTENSION, and the restore works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('drop');
$node->init;
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $_") for qw(fresh updated restored);
$node->safe_psql('fresh', q{CREATE EXTENSION ips; SELECT ips.add_team('IPS Oulu', 'Pohjois-Pohjanmaa')});
$node->safe_psql('updated', q{CREATE EXTENSION ips VERSION '1.1'; SELECT ips.add_team('IPS Oulu', 'Pohjois-Pohjanmaa');
	ALTER EXTENSION ips UPDATE});

# What of ips is left in a database: the schema, and anything in it.
sub leftovers
{
	my ($db) = @_;
	return $node->safe_psql($db, q{
		SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'ips') || ' schema, '
		    || (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ips') || ' relations, '
		    || (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'ips') || ' functions, '
		    || (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'ips') || ' types'});
}

for my $db (qw(fresh updated))
{
	is($node->safe_psql($db, q{SELECT extversion || ' ' || extnamespace::regnamespace FROM pg_extension WHERE extname = 'ips'}),
		'1.2 pg_catalog', "$db: 1.2, its schema a member (the extension's own schema is pg_catalog, as plpgsql's)");
	is($node->safe_psql($db, q{SELECT count(*) FROM pg_depend WHERE classid = 'pg_namespace'::regclass
		AND objid = 'ips'::regnamespace AND refclassid = 'pg_extension'::regclass AND deptype = 'e'}), '1',
		"$db: schema ips belongs to the extension");
}
my $dump = "$PostgreSQL::Test::Utils::tmp_check/fresh.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('fresh') ], 'pg_dump');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore (CREATE EXTENSION makes the schema)');
is($node->safe_psql('restored', q{SELECT name FROM ips.team}), 'IPS Oulu', 'the restored database has the data');

for my $db (qw(fresh updated restored))
{
	$node->safe_psql($db, 'DROP EXTENSION ips');
	is(leftovers($db), '0 schema, 0 relations, 0 functions, 0 types', "$db: DROP EXTENSION ips leaves nothing, schema included");
}
$node->safe_psql('fresh', 'CREATE EXTENSION ips');
is($node->safe_psql('fresh', q{SELECT ips.add_team('IPS Oulu', 'Pohjois-Pohjanmaa')}), '1', 'CREATE EXTENSION again works');

# a DBA's own object in schema ips is not dropped behind their back
$node->safe_psql('fresh', 'CREATE VIEW ips.my_report AS SELECT 1 AS x');
my ($ret, $out, $err) = $node->psql('fresh', 'DROP EXTENSION ips');
isnt($ret, 0, 'DROP EXTENSION refuses while a foreign object is in the schema');
like($err, qr/my_report/, 'and names it');

done_testing();
