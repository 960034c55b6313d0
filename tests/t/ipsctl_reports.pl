# ipsctl's reports for the people who read them: each report for each role
# that may read it (analysts: fidelity and outcomes only); CSV in Finnish and
# Swedish as their spreadsheets open it (';', decimal commas, translated
# headings); control characters of stored text escaped in text output; the
# review sheet (--format html) in one language with what THL's meeting needs,
# printed with headless Chromium to at most two A4 pages.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run qw(run);
use File::Temp qw(tempdir);
use File::Spec;

my $node = PostgreSQL::Test::Cluster->new('ipsctl_reports');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE r');
$node->safe_psql('r', 'CREATE EXTENSION ips');
my ($host, $port) = ($node->host, $node->port);

# Runs ipsctl against database r as a user; returns (exit code, stdout, stderr).
sub ipsctl_as
{
	my ($user, @args) = @_;
	my ($out, $err) = ('', '');
	run [ 'ipsctl', '-h', $host, '-p', $port, '-d', 'r', ($user ? ('-U', $user) : ()), @args ],
	  '<', \'', '>', \$out, '2>', \$err;
	return ($? >> 8, $out, $err);
}

my ($out, $err) = ('', '');
run [ 'ipsctl', 'generate', '--clients', '40', '--seed', '11', '--start', '2025-12-31' ], '>', \$out;
my ($rc, undef, $ierr) = (0, undef, '');
run [ 'ipsctl', '-h', $host, '-p', $port, '-d', 'r', 'import', '-q', '-' ], '<', \$out, '>', \my $o2, '2>', \$ierr;
is($? >> 8, 0, 'a region is imported') or diag($ierr);

# logins: a specialist and a supervisor of team 1, an analyst
$node->safe_psql('r', q{
	CREATE ROLE spec LOGIN; GRANT ips_specialist TO spec;
	CREATE ROLE sup LOGIN;  GRANT ips_supervisor TO sup;
	CREATE ROLE ana LOGIN;  GRANT ips_analyst TO ana;
	SELECT ips.add_staff(1, 'Login Specialist', 'specialist', db_role => 'spec');
	SELECT ips.add_staff(1, 'Login Supervisor', 'supervisor', db_role => 'sup');
});
my @fid = ('fidelity', '--team', '1', '--from', '2025-01-01', '--to', '2025-12-31');

for my $case (
	[ 'spec', 'alerts', [ 'alerts', '--as-of', '2025-12-31' ] ],
	[ 'spec', 'alerts as csv', [ 'alerts', '--as-of', '2025-12-31', '--format', 'csv' ] ],
	[ 'sup', 'alerts', [ 'alerts', '--as-of', '2025-12-31', '--team', '1' ] ],
	[ 'sup', 'fidelity', [@fid] ],
	[ 'sup', 'the review sheet', [ @fid, '--format', 'html' ] ],
	[ 'sup', 'fidelity as json', [ @fid, '--format', 'json' ] ],
	[ 'spec', 'outcomes', [ 'outcomes' ] ],
	[ 'ana', 'outcomes', [ 'outcomes' ] ],
	[ 'ana', 'outcomes as csv', [ 'outcomes', '--format', 'csv', '--lang', 'sv' ] ])
{
	my ($user, $what, $args) = @$case;
	my ($r, $o, $e) = ipsctl_as($user, @$args);
	is($r, 0, "$user: $what works") or diag($e);
}
my ($r, $o, $e) = ipsctl_as('ana', 'alerts', '--as-of', '2025-12-31');
is($r, 1, 'an analyst gets no alerts (they are about persons): exit 1');
like($e, qr/42501/, 'the server\'s refusal is shown with its SQLSTATE');
like($e, qr/ips_analyst reads fidelity and outcomes/, 'and what an analyst may read instead');
# analysts: team fidelity (the server serves it at the team level), on paper too
for my $args ([@fid], [ @fid, '--format', 'html', '--lang', 'fi' ], [ @fid, '--format', 'csv' ])
{
	($r, $o, $e) = ipsctl_as('ana', @$args);
	is($r, 0, "ana: fidelity (@$args[7 .. $#$args]) works") or diag($e);
}
($r, $o, $e) = ipsctl_as('ana', @fid, '--format', 'html');
unlike($o, qr/demo-\d{6}/, 'the analyst\'s sheet names no client');
like($o, qr/Live figures/, 'and shows the live team-level figures');

# CSV as Finnish and Swedish spreadsheets open it, with figures worked out by hand:
# team "IPS Testi", three clients served in 2025Q1, one of them in a competitive job: 33.3 %
$node->safe_psql('r', q{
SET TimeZone = 'Europe/Helsinki';
DO $$
DECLARE t bigint; s bigint; c bigint; e bigint; m bigint;
BEGIN
    t := ips.add_team('IPS Testi', 'Etelä-Pohjanmaa');
    s := ips.add_staff(t, 'Testi Valmentaja', 'specialist');
    m := ips.add_employer('Testi Oy', NULL, 'retail');
    FOR i IN 1..3 LOOP
        c := ips.add_client('csv-' || i, 1990, 'Seinäjoki');
        PERFORM ips.start_care_relationship(c, 'Seinäjoki psychiatric clinic', '2025-01-01');
        PERFORM ips.give_consent(c, 'share_with_care', '2025-01-01');
        e := ips.refer(c, t, '2025-01-10');
        PERFORM ips.assign_specialist(e, s, '2025-01-10');
        PERFORM ips.transition(e, 'engaged', '2025-01-13 10:00');
        IF i = 1 THEN
            PERFORM ips.transition(e, 'job_search', '2025-01-20 10:00');
            PERFORM ips.start_job(e, m, '2025-02-03', 'competitive', '5223', 20);
        END IF;
    END LOOP;
END $$;});
my $team = $node->safe_psql('r', q{SELECT team_id FROM ips.team WHERE name = 'IPS Testi'});
($r, $o, $e) = ipsctl_as(undef, 'outcomes', '--team', $team, '--format', 'csv', '--lang', 'fi');
is($r, 0, 'outcomes --format csv --lang fi') or diag($e);
my @lines = split /\r\n/, $o;
like($lines[0], qr/^\x{EF}\x{BB}\x{BF}tiimi nro;tiimi;hyvinvointialue;neljännes;alkaa;päättyy;asiakkaita;työssä;työllisyys %;/,
	'a byte order mark, then Finnish headings separated by ;');
my ($q1) = grep { /;2025Q1;/ } @lines;
like($q1 // '', qr/^$team;IPS Testi;Etelä-Pohjanmaa;2025Q1;2025-01-01;2025-03-31;3;1;33,3;/,
	'2025Q1: 3 served, 1 working, 33,3 % with a decimal comma');
($r, $o, $e) = ipsctl_as(undef, 'outcomes', '--team', $team, '--format', 'csv', '--lang', 'sv');
like((split /\r\n/, $o)[0], qr/^\x{EF}\x{BB}\x{BF}team nr;team;välfärdsområde;kvartal;börjar;slutar;klienter;i arbete;sysselsättning %;/,
	'Swedish headings');
like($o, qr/;2025Q1;2025-01-01;2025-03-31;3;1;33,3;/, 'Swedish: the same figures, decimal comma');
($r, $o, $e) = ipsctl_as(undef, 'outcomes', '--team', $team, '--format', 'csv');
like($o, qr/^team_id,team_name,region,quarter,/, 'English: RFC 4180 with commas and column names');
like($o, qr/,2025Q1,2025-01-01,2025-03-31,3,1,33\.3,/, 'English: decimal point');

# numbers as people read them: the text report in Finnish and Swedish has the
# same decimal comma as the spreadsheet (33,3 %), English a point
for my $l ([ 'fi', '33,3' ], [ 'sv', '33,3' ], [ 'en', '33.3' ])
{
	($r, $o, $e) = ipsctl_as(undef, 'outcomes', '--team', $team, '--lang', $l->[0]);
	my ($line) = grep { /2025Q1/ } split /\n/, $o;
	like($line // '', qr/\s3\s+1\s+\Q$l->[1]\E\s/, "outcomes as text in $l->[0]: 2025Q1 3 served, 1 working, $l->[1] %");
	unlike($o, $l->[0] eq 'en' ? qr/\d,\d/ : qr/\d\.\d/, "outcomes as text in $l->[0]: no other decimal mark");
}

# the words are the server's (ips.label): a closing reason's heading, the specialist's
($r, $o, $e) = ipsctl_as(undef, 'outcomes', '--team', $team, '--format', 'csv', '--lang', 'sv');
my $moved_sv = $node->safe_psql('r', q{SELECT ips.label('closed', 'sv') || ': ' || ips.label('moved', 'sv')});
is($moved_sv, 'avslutad: flyttat bort', 'the server calls a closure for moving "avslutad: flyttat bort"');
like((split /\r\n/, $o)[0], qr/;\Q$moved_sv\E;/, 'ipsctl\'s Swedish heading is the server\'s label');
($r, $o, $e) = ipsctl_as(undef, 'outcomes', '--team', $team, '--format', 'csv', '--lang', 'fi');
like((split /\r\n/, $o)[0], qr/;päättynyt: muutti pois;/, 'the Finnish heading too (päättynyt: muutti pois)');
($r, $o, $e) = ipsctl_as(undef, 'alerts', '--team', $team, '--as-of', '2025-02-20', '--lang', 'sv');
like((split /\n/, $o)[0], qr/\barbetstränare\b/, 'the specialist column is headed with the role\'s label');

# control characters in stored text are escaped in text output
$node->safe_psql('r', q{
	SET session_replication_role = replica;
	UPDATE ips.client SET host_ref = E'csv-\x1b[2J\x1b]0;owned\x07' || chr(155) || 'x' WHERE host_ref = 'csv-2';
	UPDATE ips.staff SET display_name = E'Testi\rValmentaja' WHERE display_name = 'Testi Valmentaja';
});
($r, $o, $e) = ipsctl_as(undef, 'alerts', '--team', $team, '--as-of', '2025-02-20');
is($r, 0, 'alerts with control characters in stored text') or diag($e);
unlike($o, qr/[\x00-\x09\x0b-\x1f\x7f]/, 'no control character reaches the terminal raw');
unlike($o, qr/\x{c2}[\x80-\x9f]/, 'nor a C1 control character');
like($o, qr/csv-\\x1b\[2J\\x1b\]0;owned\\x07\\u009bx/, 'the host key is shown with escapes');
like($o, qr/Testi\\rValmentaja/, 'so is the specialist\'s name');

# the review sheet: a live one in Finnish, a closed review in Swedish
my $dir = File::Spec->rel2abs(tempdir('sheet_XXXX', DIR => $PostgreSQL::Test::Utils::tmp_check));
($r, $o, $e) = ipsctl_as('sup', @fid, '--format', 'html', '--lang', 'fi');
is($r, 0, 'the live sheet in Finnish') or diag($e);
my $live = $o;
my $title_fi = $node->safe_psql('r', q{SELECT ips.label('fidelity_title', 'fi')});
like($live, qr/<html lang="fi">/, 'an HTML page in Finnish');
like($live, qr/<h1>\Q$title_fi\E: IPS Vaasa \(Pohjanmaa\)<\/h1>/, 'the title names the team and its region');
like($live, qr/Arviointijakso: <b>2025-01-01 – 2025-12-31<\/b>/, 'the period');
like($live, qr/Ajantasaiset luvut: laskettu kirjauksista/, 'it says the figures are live');
like($live, qr/<b>Selitteet\.<\/b>/, 'a legend');
is(scalar(() = $live =~ /<td class="code">/g), 25, 'the 25 items');
my ($printed) = split /<div class="appendix">/, $live;
unlike($printed, qr/\{"|":/, 'no JSON in what is printed (the evidence in full is in the appendix)');
unlike($printed, qr/\b(Legend|Score|Evidence|Action plan|Reviewers|computed|missing|clients per FTE)\b/,
	'no English word in the Finnish sheet');
like($printed, qr/<td class="code">S1<\/td><td>[^<]+<\/td><td class="c" style="background:#[0-9a-f]{6}"><b>[1-5]<\/b><\/td><td>laskettu<\/td><td>[^<]*asiakasta \/ htv<\/td><td class="ev"><div>[^<]+<\/div>/,
	'an item: score, source, the anchor reached in Finnish, one line of evidence');
like($printed, qr/Toimenpidesuunnitelma/, 'the action plan\'s heading');

my $review = $node->safe_psql('r', q{
	SELECT ips.open_review(1, '2025-01-01', '2025-12-31', '2026-01-20');});
$node->safe_psql('r', qq{
	SELECT ips.add_reviewer($review, 'Liisa Arvioija', 'THL');
	SELECT ips.add_reviewer($review, 'Johan Granskare', 'Österbottens välfärdsområde');
	SELECT ips.rate($review, i.item, 1 + i.ordinal % 5, 'Bedömarnas iakttagelse: ' || repeat('teamet träffas varje vecka och går igenom varje klient ', 6))
	  FROM ips.fidelity_item i WHERE NOT i.computed;
	SELECT ips.add_action($review, 'Förmånsrådgivning före varje jobbstart ' || n, 'V1', 'teamledaren', '2026-06-30')
	  FROM generate_series(1, 6) n;
	SELECT ips.close_review($review);});
($r, $o, $e) = ipsctl_as('sup', @fid, '--format', 'html', '--lang', 'sv');
is($r, 0, 'the closed review\'s sheet in Swedish') or diag($e);
my $closed = $o;
my $closed_on = $node->safe_psql('r', "SELECT to_char(ips.local_date(closed_at), 'YYYY-MM-DD') FROM ips.fidelity_review WHERE review_id = $review");
like($closed, qr/Avslutad bedömning: siffrorna som de låstes<\/b> \(#$review; bedömningsdag 2026-01-20, avslutad $closed_on\)/,
	'it says the review is closed, with its day and the day it was closed');
like($closed, qr/Bedömare: Johan Granskare \(Österbottens välfärdsområde\), Liisa Arvioija \(THL\)/, 'the reviewers');
like($closed, qr/25\/25 poängsatta punkter · Nivå: <b>[^<]+<\/b>/, 'all 25 scored, and the band');
is(scalar(() = $closed =~ /Förmånsrådgivning före varje jobbstart \d/g), 6, 'the action plan');

# one name for the review and the words of the seeds and THL, everywhere a person reads:
# the sheet (html and text), the legend, outcomes and alerts, in fi and sv
my $old_words = qr/menetelmäuskollisuus|metodtrohet|Programtrohet|Fideliteetti|IPS-esihenkilö|IPS-chef
	|ute\ i\ samhället|uppsökande\ försök|asiakastapaaminen|yrittäjä|företagare|flyttade\b/xi;
unlike($live, $old_words, 'the Finnish sheet has none of the old words');
unlike($closed, $old_words, 'nor the Swedish one');
like($live, qr/<title>IPS-laatuarviointi: IPS Vaasa<\/title>/, 'the Finnish sheet is an IPS-laatuarviointi');
like($closed, qr/<h1>IPS-kvalitetsbedömning: IPS Vaasa \(Pohjanmaa\)<\/h1>/, 'the Swedish one an IPS-kvalitetsbedömning');
like($live, qr/Pisteet 1–5 \(5 = kriteeri täyttyy kokonaan\)/, 'the Finnish legend says what 5 means without naming the review otherwise');
like($closed, qr/Poäng 1–5 \(5 = kriteriet uppfylls helt\)/, 'the Swedish legend too');
for my $l ('fi', 'sv')
{
	my $all = '';
	for my $args ([@fid], [ 'outcomes' ], [ 'outcomes', '--format', 'csv' ], [ 'alerts', '--as-of', '2025-12-31' ])
	{
		($r, $o, $e) = ipsctl_as('sup', @$args, '--lang', $l);
		is($r, 0, "$l: @$args") or diag($e);
		$all .= $o;
	}
	unlike($all, $old_words, "$l: no old word in fidelity, outcomes and alerts");
	like($all, $l eq 'fi' ? qr/^O5\s+IPS-tiiminvetäjän rooli:/m : qr/^O5\s+IPS-teamledarens roll:/m, "$l: O5 names the team leader");
	like($all, $l eq 'fi' ? qr/^IPS-laatuarviointi: IPS Vaasa/m : qr/^IPS-kvalitetsbedömning: IPS Vaasa/m, "$l: the text sheet's title");
	my ($v6) = $all =~ /^(V6 .*)$/m;
	unlike($v6 // '', qr/\d\.\d/, "$l: the text sheet's evidence has no decimal point");
}

# printed with headless Chromium: at most two A4 pages
for my $sheet ([ 'live', $live ], [ 'closed', $closed ])
{
	my ($name, $html) = @$sheet;
	open my $fh, '>', "$dir/$name.html" or die $!;
	print $fh $html;
	close $fh;
	my ($cout, $cerr) = ('', '');
	local $ENV{HOME} = $dir;
	run [ 'chromium', '--headless', '--no-sandbox', '--disable-gpu', '--no-pdf-header-footer',
		  "--print-to-pdf=$dir/$name.pdf", "file://$dir/$name.html" ], '>', \$cout, '2>', \$cerr;
	ok(-s "$dir/$name.pdf", "$name sheet printed to PDF with headless Chromium") or diag($cerr);
	my $info = `pdfinfo '$dir/$name.pdf'`;
	my ($pages) = $info =~ /^Pages:\s+(\d+)/m;
	like($info, qr/^Page size:\s+59[45](\.\d+)? x 84[12](\.\d+)? pts \(A4\)/m, "$name sheet: A4");
	ok(defined $pages && $pages >= 1 && $pages <= 2, "$name sheet: at most 2 pages (" . ($pages // '?') . ')');
}

done_testing();
