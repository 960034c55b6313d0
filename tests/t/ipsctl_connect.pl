# ipsctl as PostgreSQL people expect: on the ordinary PATH with its manual
# page (make install; make uninstall removes both), psql's connection options
# -h -p -U -d (before or after the command, short and long forms), PGSERVICE,
# and --version printing the extension's version.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run qw(run);
use File::Basename qw(dirname);

my $src = $ENV{IPS_SRC} or BAIL_OUT('IPS_SRC is not set');

# Runs ipsctl; returns (exit code, stdout, stderr).
sub ipsctl
{
	my ($env, @args) = @_;
	my ($out, $err) = ('', '');
	local %ENV = (%ENV, %$env);
	for my $k (keys %$env)
	{
		delete $ENV{$k} unless defined $env->{$k};
	}
	run [ 'ipsctl', @args ], '<', \'', '>', \$out, '2>', \$err;
	return ($? >> 8, $out, $err);
}

# --version: the extension's version, from ips.control (1.2), not 1.0
open my $ctl, '<', "$src/ips.control" or die $!;
my ($extversion) = map { /^default_version\s*=\s*'(.*)'/ ? $1 : () } <$ctl>;
is($extversion, '1.2', 'ips.control says 1.2');
my ($rc, $out) = ipsctl({}, '--version');
is($rc, 0, '--version exits 0');
is($out, "ipsctl (ips) $extversion\n", '--version prints the extension\'s version');

# on the ordinary PATH, not in PostgreSQL's bindir, with its manual page beside it
my ($ipsctl) = grep { -x $_ } map { "$_/ipsctl" } split /:/, $ENV{PATH};
$ipsctl //= '';
my $pgbin = `pg_config --bindir`;
chomp $pgbin;
like($ipsctl, qr{/bin/ipsctl$}, "ipsctl is on the PATH ($ipsctl)");
isnt(dirname($ipsctl), $pgbin, 'not in PostgreSQL\'s bindir');
ok(-f dirname($ipsctl) . '/../share/man/man1/ipsctl.1', 'the manual page ipsctl(1) is installed beside it');
# what make install and make uninstall do (a dry run of the Makefile)
my ($mk_out, $mk_err) = ('', '');
run [ 'make', '-s', '-n', '-C', $src, 'install-ipsctl', 'uninstall-ipsctl', 'DESTDIR=/x' ], '>', \$mk_out, '2>', \$mk_err;
like($mk_out, qr{install\b.*cli/ipsctl '/x/usr/local/bin/ipsctl'}, 'make install puts ipsctl into /usr/local/bin');
like($mk_out, qr{cli/ipsctl\.1 '/x/usr/local/share/man/man1/ipsctl\.1'}, 'and ipsctl.1 into the man directory');
like($mk_out, qr{rm -f '/x/usr/local/bin/ipsctl' '/x/usr/local/share/man/man1/ipsctl\.1'}, 'make uninstall removes both');

my $node = PostgreSQL::Test::Cluster->new('ipsctl_connect');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE region');
$node->safe_psql('region', q{CREATE EXTENSION ips; SELECT ips.add_team('IPS Seinäjoki', 'Etelä-Pohjanmaa')});
$node->safe_psql('postgres', 'CREATE ROLE reader LOGIN; GRANT ips_analyst TO reader');
my ($host, $port) = ($node->host, $node->port);
my %noenv = (PGHOST => undef, PGPORT => undef, PGDATABASE => undef, PGUSER => undef, PGSERVICE => undef);

for my $form (
	[ 'short options before the command', '-h', $host, '-p', $port, '-U', 'reader', '-d', 'region', 'outcomes', '--format', 'csv' ],
	[ 'short options after the command', 'outcomes', '--format', 'csv', '-h', $host, '-p', $port, '-U', 'reader', '-d', 'region' ],
	[ 'attached values', "-h$host", "-p$port", '-Ureader', '-dregion', 'outcomes', '--format', 'csv' ],
	[ 'long options', "--host=$host", '--port', $port, "--username=reader", '--dbname=region', 'outcomes', '--format=csv' ],
	[ 'a connection string as -d', '-d', "host=$host port=$port dbname=region user=reader", 'outcomes', '--format', 'csv' ])
{
	my ($name, @args) = @$form;
	my ($r, $o, $e) = ipsctl(\%noenv, @args);
	is($r, 0, "$name: exit 0") or diag($e);
	like($o, qr/^team_id,team_name/, "$name: the report came");
}
my ($r, $o, $e) = ipsctl(\%noenv, '-h', $host, '-p', $port, '-d', 'region', 'alerts', '--team');
is($r, 2, 'a report option without its value is a usage error');
($r, $o, $e) = ipsctl(\%noenv, 'outcomes', '-h');
is($r, 2, '-h without a value: exit 2');
like($e, qr/option "-h" needs a value/, 'and says so');
($r, $o, $e) = ipsctl(\%noenv, '-h', $host, '-p', $port, '-U', 'nobody', '-d', 'region', 'outcomes');
is($r, 3, 'an unknown user: connection error, exit 3');
like($e, qr/nobody/, 'the server\'s message names the user');
($r, $o, $e) = ipsctl(\%noenv, '-h', $host, '-p', $port, '-d', 'region', '-w', 'outcomes', '--format', 'csv');
is($r, 0, '-w (never ask for a password) is accepted');

# -W asks for the password on the terminal; -w never asks
$node->safe_psql('postgres', q{SET password_encryption = 'scram-sha-256'; CREATE ROLE pwuser LOGIN PASSWORD 'sala-sana 1'; GRANT ips_analyst TO pwuser});
$node->append_conf('pg_hba.conf', '');
{
	my $hba = $node->data_dir . '/pg_hba.conf';
	open my $in, '<', $hba or die $!;
	my @l = <$in>;
	close $in;
	open my $o, '>', $hba or die $!;
	print $o "local all pwuser scram-sha-256\n", @l;
	close $o;
	$node->reload;
}
SKIP:
{
	skip 'IO::Pty is not installed', 4 unless eval { require IO::Pty; 1 };
	my ($pout, $pin) = ('', '');
	my $h = IPC::Run::start([ 'ipsctl', '-h', $host, '-p', $port, '-d', 'region', '-U', 'pwuser', '-W', 'outcomes', '--format', 'csv' ],
		'<pty<', \$pin, '>pty>', \$pout, IPC::Run::timeout(30));
	$h->pump until $pout =~ /Password: /;
	$pin .= "sala-sana 1\n";	# typed once the prompt is shown
	$h->finish;
	is($? >> 8, 0, '-W: the password typed on the terminal is used');
	like($pout, qr/Password: /, 'after a prompt');
	unlike($pout, qr/sala-sana/, 'without echoing it');
	($r, $o, $e) = ipsctl(\%noenv, '-h', $host, '-p', $port, '-d', 'region', '-U', 'pwuser', '-w', 'outcomes');
	is($r, 3, '-w: no password, no prompt, a connection error');
}

# PGSERVICE with a service file
my $svc = "$PostgreSQL::Test::Utils::tmp_check/pg_service.conf";
open my $fh, '>', $svc or die $!;
print $fh "[ips_region]\nhost=$host\nport=$port\ndbname=region\n";
close $fh;
($r, $o, $e) = ipsctl({ %noenv, PGSERVICE => 'ips_region', PGSERVICEFILE => $svc }, 'export');
is($r, 0, 'PGSERVICE: exit 0') or diag($e);
like($o, qr/IPS Seinäjoki/, 'PGSERVICE: connected to the service\'s database');
($r, $o, $e) = ipsctl({ %noenv, PGSERVICE => 'ips_region', PGSERVICEFILE => $svc }, '-d', 'postgres', 'export');
is($r, 1, 'PGSERVICE with -d naming another database: that one (no ips there)');

done_testing();
