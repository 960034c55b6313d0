# Upgrade: install each released version (1.0, 1.1), load a region, ALTER
# EXTENSION ips UPDATE, and get the same figures and the same schema as a fresh
# install of the current version loaded with the same data.  1.0 goes through
# the whole chain (1.0 -> 1.1 -> current), 1.1 through the last step alone.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run qw(run);

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;

my $current = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'ips'});
my @versions = split /\n/, $node->safe_psql('postgres',
	q{SELECT version FROM pg_available_extension_versions WHERE name = 'ips' ORDER BY string_to_array(version, '.')::int[]});
is($versions[0], '1.0', 'version 1.0 is still installable');
ok((grep { $_ eq '1.1' } @versions), 'version 1.1 is still installable');
isnt($current, '1.1', "the current version is $current");

my @released = ('1.0', '1.1');
my %db = map { $_ => 'from_' . ($_ =~ s/\./_/r) } @released;
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
for my $v (@released)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db{$v}");
	$node->safe_psql($db{$v}, qq{CREATE EXTENSION ips VERSION '$v'});
	is($node->safe_psql($db{$v}, q{SELECT extversion FROM pg_extension WHERE extname = 'ips'}), $v, "installed $v");
}
$node->safe_psql('fresh', 'CREATE EXTENSION ips');

# the same synthetic region into both: before the update in 'upgraded', after the install in 'fresh'
my $region = $node->basedir . '/region.json';
ok(run([ 'ipsctl', 'generate', '--clients', '80', '--seed', '11', '--start', '2026-10-31' ], '>', $region),
	'ipsctl generate');
for my $db ((map { $db{$_} } @released), 'fresh')
{
	my ($out, $err) = ('', '');
	ok(run([ 'ipsctl', 'import', $region, '-d', $node->connstr($db) ], '>', \$out, '2>', \$err), "import into $db")
	  or diag($err);
}

my %figures = (
	'alerts' => q{SELECT * FROM ips.contact_alerts('2026-10-31') ORDER BY 1, 2, 3, 4},
	'rule compliance' => q{SELECT t.team_id, r.* FROM ips.team t, ips.rule_compliance(t.team_id, '2026-01-01', '2026-09-30') r ORDER BY 1, 2},
	'fidelity' => q{SELECT t.team_id, f.item, f.score, f.source, f.measure, f.evidence FROM ips.team t,
	                  ips.fidelity(t.team_id, '2025-11-01', '2026-10-31') f ORDER BY 1, 2},
	'fidelity summary' => q{SELECT t.team_id, s.* FROM ips.team t, ips.fidelity_summary(t.team_id, '2025-11-01', '2026-10-31') s ORDER BY 1},
	'outcomes' => q{SELECT * FROM ips.outcomes_quarterly ORDER BY 1, 4},
	'caseload' => q{SELECT * FROM ips.caseload ORDER BY 1},
	'history' => q{SELECT episode_id, from_state, to_state, at, reason FROM ips.episode_state_history ORDER BY 1, 4, 2});
# the schema: every object of the extension, with its definition and rights
my $schema = q{
SELECT 'function ' || p.oid::regprocedure || ' ' || md5(p.prosrc) || ' ' || p.provolatile::text || p.prosecdef::text
       || ' ' || coalesce(array_to_string(p.proconfig, ','), '') || ' ' || coalesce(p.proacl::text, 'default')
  FROM pg_proc p WHERE p.pronamespace = 'ips'::regnamespace
UNION ALL
SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'ips'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text || ' ' || c.relrowsecurity::text || c.relforcerowsecurity::text
       || ' ' || coalesce(c.relacl::text, 'default') || ' ' || coalesce(array_to_string(c.reloptions, ','), '')
  FROM pg_class c WHERE c.relnamespace = 'ips'::regnamespace
UNION ALL
SELECT 'view ' || c.oid::regclass || ' ' || md5(pg_get_viewdef(c.oid))
  FROM pg_class c WHERE c.relnamespace = 'ips'::regnamespace AND c.relkind IN ('v', 'm')
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'ips'::regnamespace
UNION ALL
SELECT 'index ' || indexrelid::regclass || ' ' || pg_get_indexdef(indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'ips'::regnamespace
UNION ALL
SELECT 'trigger ' || tgrelid::regclass || ' ' || pg_get_triggerdef(oid)
  FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'ips'::regnamespace)
UNION ALL
SELECT 'policy ' || polrelid::regclass || ' ' || polname || ' ' || polcmd::text || ' ' || polroles::regrole[]::text || ' '
       || coalesce(pg_get_expr(polqual, polrelid), '') || ' ' || coalesce(pg_get_expr(polwithcheck, polrelid), '')
  FROM pg_policy WHERE polrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'ips'::regnamespace)
UNION ALL
SELECT 'type ' || t.oid::regtype || ' ' || t.typtype::text FROM pg_type t WHERE t.typnamespace = 'ips'::regnamespace
UNION ALL
SELECT 'config ' || c::regclass || ' ' || coalesce(cond, '')
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, cond) WHERE e.extname = 'ips'
UNION ALL
SELECT 'member ' || pg_describe_object(classid, objid, objsubid)
  FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ips')
ORDER BY 1};
for my $v (@released)
{
	my $upgraded = $db{$v};
	$node->safe_psql($upgraded, 'ALTER EXTENSION ips UPDATE');
	is($node->safe_psql($upgraded, q{SELECT extversion FROM pg_extension WHERE extname = 'ips'}), $current,
		"from $v: ALTER EXTENSION ips UPDATE reaches $current");
	for my $name (sort keys %figures)
	{
		my $a = $node->safe_psql($upgraded, $figures{$name});
		my $b = $node->safe_psql('fresh', $figures{$name});
		ok(length($b) > 0, "$name: the fresh install has figures");
		is($a, $b, "from $v: $name: the upgraded database gives the same figures");
	}
	is($node->safe_psql($upgraded, q{SELECT count(*) FROM ips.verify_change_log()}), '0',
		"from $v: the change log chain is intact after the update");

	my @a = split /\n/, $node->safe_psql($upgraded, $schema);
	my @b = split /\n/, $node->safe_psql('fresh', $schema);
	my %in_a = map { $_ => 1 } @a;
	my %in_b = map { $_ => 1 } @b;
	my @only_upgraded = grep { !$in_b{$_} } @a;
	my @only_fresh = grep { !$in_a{$_} } @b;
	ok(@b > 300, 'the schema description lists the objects (' . scalar(@b) . ')');
	is(join("\n", @only_fresh), '', "from $v: nothing of a fresh install is missing after the update");
	is(join("\n", @only_upgraded), '', "from $v: the update leaves nothing that a fresh install lacks");

	is($node->safe_psql($upgraded, q{SELECT ips.episode_fhir(min(episode_id)) ->> 'resourceType' FROM ips.episode}),
		'EpisodeOfCare', "from $v: ips.episode_fhir (new in 1.1) works on the data loaded before the update");
}

$node->stop;
done_testing();
