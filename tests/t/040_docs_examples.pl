# Every example of README.md and docs/*.md runs (docs/README.md states the convention):
#  - ```sql and ```sh blocks run, in the order of the file, in one fresh database per
#    file (CREATE EXTENSION ips done) through one psql session, as a superuser:
#    psql variables (\gset) carry from block to block; ```sh blocks run with bash -e
#    -o pipefail in a scratch directory of their own file, with PGHOST, PGPORT,
#    PGDATABASE set to that database and ipsctl on the PATH;
#  - an HTML comment on the line before the fence changes that block:
#      <!-- doc-test: error SQLSTATE -->  the block must fail with this SQLSTATE
#      <!-- doc-test: as ROLE -->         the sql block runs under SET ROLE ROLE
#      <!-- doc-test: skip REASON -->     not run (a REASON is required)
#  - every fence names its language (```text for what is not run);
#  - roles a file creates are dropped after it, so files do not meet each other.
# New files under docs/ are picked up without changing this test.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run qw(run);
use File::Temp qw(tempdir);
use File::Spec;

my $src = $ENV{IPS_SRC} or BAIL_OUT('IPS_SRC is not set');
my @files = ("$src/README.md", sort glob("$src/docs/*.md"));

my $node = PostgreSQL::Test::Cluster->new('docs');
$node->init;
$node->append_conf('postgresql.conf', "wal_level = logical\n");
$node->start;

# README.md: at most 800 lines, for its three readers
{
	open my $fh, '<', "$src/README.md" or die $!;
	my @l = <$fh>;
	cmp_ok(scalar(@l), '<=', 800, 'README.md has at most 800 lines (' . scalar(@l) . ')');
}

# Splits a Markdown file into fenced blocks: [line, lang, directive, text].
sub blocks
{
	my ($file) = @_;
	open my $fh, '<', $file or die "$file: $!";
	my @lines = <$fh>;
	my (@b, $cur, $prev);
	for my $i (0 .. $#lines)
	{
		my $l = $lines[$i];
		if (!$cur && $l =~ /^(\s*)```\s*([\w+-]*)/)
		{
			my ($indent, $lang) = (length($1), lc($2));
			my $dir = '';
			$dir = $1 if defined $prev && $prev =~ /<!--\s*doc-test:\s*(.*?)\s*-->/;
			$cur = { line => $i + 1, lang => $lang, dir => $dir, text => '', indent => $indent };
		}
		elsif ($cur && $l =~ /^\s*```\s*$/)
		{
			push @b, $cur;
			$cur = undef;
		}
		elsif ($cur)
		{
			(my $t = $l) =~ s/^ {0,$cur->{indent}}//;
			$cur->{text} .= $t;
		}
		$prev = $l if !$cur && $l !~ /^```/;
	}
	push @b, { line => 0, lang => 'unterminated', dir => '', text => '' } if $cur;
	return @b;
}

# what exists before any file runs: the roles CREATE EXTENSION ips makes, the databases
$node->safe_psql('postgres', 'CREATE DATABASE docs_base');
$node->safe_psql('docs_base', 'CREATE EXTENSION ips');
my %known = map { $_ => 1 } split / /,
  $node->safe_psql('postgres', q{SELECT string_agg(quote_ident(rolname), ' ') FROM pg_roles});
my %known_db = map { $_ => 1 } split / /,
  $node->safe_psql('postgres', q{SELECT string_agg(quote_ident(datname), ' ') FROM pg_database});
my $n = 0;
for my $file (@files)
{
	(my $name = $file) =~ s{^\Q$src\E/}{};
	my @b = blocks($file);
	my @bad = grep { $_->{lang} eq '' || $_->{lang} eq 'unterminated' } @b;
	is(scalar(@bad), 0, "$name: every fence names its language")
	  or diag(join ', ', map { "line $_->{line}" } @bad);
	my @run = grep { ($_->{lang} eq 'sql' || $_->{lang} eq 'sh') && $_->{dir} !~ /^skip\b/ } @b;
	my @skip = grep { $_->{dir} =~ /^skip\s*$/ } @b;
	is(scalar(@skip), 0, "$name: every skipped example says why");
	next unless @run;

	$n++;
	my $db = "docs_$n";
	my $dir = File::Spec->rel2abs(tempdir("docs_${n}_XXXX", DIR => $PostgreSQL::Test::Utils::tmp_check, CLEANUP => 1));
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION ips');

	# the library loaded at the session's start, as session_preload_libraries = 'ips'
	# does (README, Install): its settings are known from the first statement
	my $script = <<'SQL';
\set ON_ERROR_STOP 1
\set VERBOSITY verbose
LOAD 'ips';
CREATE FUNCTION pg_temp.doc_expect(got text, want text, what text) RETURNS void
LANGUAGE plpgsql AS $f$BEGIN
	IF got IS DISTINCT FROM want THEN
		RAISE EXCEPTION 'doc-test: %: expected %, got %', what, want, coalesce(got, 'success');
	END IF;
END$f$;
SQL
	my $k = 0;
	for my $b (@run)
	{
		$k++;
		my $where = "$name:$b->{line}";
		$script .= "\\echo '[doc-test] $where ($b->{lang})'\n";
		if ($b->{lang} eq 'sh')
		{
			my $f = "$dir/block$k";
			open my $out, '>', "$f.sh" or die $!;
			print $out $b->{text};
			close $out;
			$script .= "\\! cd '$dir' && bash -e -o pipefail '$f.sh' > '$f.out' 2>&1; echo \$? > '$f.rc'; cat '$f.out'\n";
			$script .= "\\set doc_rc `cat '$f.rc'`\n";
			$script .= "SELECT pg_temp.doc_expect(:'doc_rc', '0', '$where: exit code');\n";
			next;
		}
		my $text = $b->{text};
		$text .= "\n" unless $text =~ /\n\z/;
		if ($b->{dir} =~ /^as\s+(\w+)/)
		{
			$text = "SET ROLE $1;\n$text;\nRESET ROLE;\n";
		}
		if ($b->{dir} =~ /^error\s+(\w{5})/)
		{
			my $want = $1;
			$script .= "\\set ON_ERROR_STOP 0\n$text\\set doc_err :ERROR\n\\set doc_state :LAST_ERROR_SQLSTATE\n\\set ON_ERROR_STOP 1\n";
			$script .= "RESET ROLE;\n" if $b->{dir} =~ /\bas\s/;
			$script .= "SELECT pg_temp.doc_expect(CASE WHEN :'doc_err' THEN :'doc_state' END, '$want', '$where: SQLSTATE');\n";
		}
		else
		{
			$script .= $text;
		}
	}
	open my $sf, '>', "$dir/examples.sql" or die $!;
	print $sf $script;
	close $sf;

	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = $db;
	my ($out, $err) = ('', '');
	run [ 'psql', '-X', '-q', '-d', $db, '-f', "$dir/examples.sql" ], '>', \$out, '2>', \$err;
	my $rc = $? >> 8;
	ok($rc == 0, "$name: its " . scalar(@run) . ' examples run')
	  or diag("last block reached: "
		  . (($out =~ /.*(\[doc-test\][^\n]*)/s)[0] // 'none')
		  . "\nstderr:\n$err\nstdout (tail):\n"
		  . join("\n", (split /\n/, $out)[-30 .. -1]));

	# forget the databases and the roles the file made
	$node->safe_psql('postgres', "DROP DATABASE $_ WITH (FORCE)")
	  for grep { !$known_db{$_} } split / /,
	  $node->safe_psql('postgres', q{SELECT string_agg(quote_ident(datname), ' ') FROM pg_database});
	my @new = grep { !$known{$_} } split / /,
	  $node->safe_psql('postgres', q{SELECT string_agg(quote_ident(rolname), ' ') FROM pg_roles});
	$node->safe_psql('postgres', "DROP ROLE $_") for @new;
}

done_testing();
