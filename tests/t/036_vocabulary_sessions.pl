# The vocabulary's copy in the C code (extension/vocabulary.c) across sessions: a session
# that has read the vocabulary and the transitions sees another session's change once it
# commits, never before, and not at all when it rolls back; the changing session sees its
# own change at once and loses it with its rollback (issue 16, item 12).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('vocabulary');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE v');
$node->safe_psql('v', q{
CREATE EXTENSION ips;
SET timezone = 'Europe/Helsinki';
-- SQLSTATE and hint of a statement's error, or 'no error'
CREATE FUNCTION public.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, h = PG_EXCEPTION_HINT;
    RETURN st || ' ' || coalesce(h, '');
END $$;
SELECT ips.add_team('Sessions', 'Kainuu');
SELECT ips.add_staff(1, 'A', 'specialist');
SELECT ips.add_client('session-1');
SELECT ips.start_care_relationship(1, 'psykiatria', '2025-01-01');
SELECT ips.refer(1, 1, '2025-03-01');
SELECT ips.assign_specialist(1, 1, '2025-03-01');
SELECT ips.transition(1, 'engaged', '2025-03-03 12:00+02');
});

my $reasons = 'stable_employment, client_choice, moved, referred_elsewhere, disengaged, deceased, never_engaged';
my $check = q{SELECT public.err($$SELECT ips.check_code('close_reason', 'retired', 'closing reason')$$)};
my $move = q{SELECT public.err($$SELECT ips.transition(1, 'referred', '2025-03-10 12:00+02')$$)};

# session A reads the vocabulary and the transitions (its copy is made)
my $a = $node->background_psql('v');
is($a->query_safe($check), "22023 Use one of: $reasons.", 'A: retired is no closing reason');
is($a->query_safe($move), '55000 Allowed from engaged: job_search, employed, studying, on_hold, closed.',
	'A: the moves from engaged');

# another session adds a reason and removes a move, in one open transaction
my $b = $node->background_psql('v');
$b->query_safe(q{BEGIN; INSERT INTO ips.vocabulary (category, code, ordinal) VALUES ('close_reason', 'retired', 8);
                 DELETE FROM ips.state_transition WHERE from_state = 'engaged' AND to_state = 'studying'});
is($b->query_safe($check), 'no error', 'B: its own change counts at once');
is($b->query_safe($move), '55000 Allowed from engaged: job_search, employed, on_hold, closed.', 'B: its own moves at once');
is($a->query_safe($check), "22023 Use one of: $reasons.", 'A: nothing of B before B commits');
is($a->query_safe($move), '55000 Allowed from engaged: job_search, employed, studying, on_hold, closed.',
	'A: the moves as before, before B commits');
$b->query_safe('COMMIT');
is($a->query_safe($check), 'no error', 'A: after B commits, retired is a closing reason');
is($a->query_safe($move), '55000 Allowed from engaged: job_search, employed, on_hold, closed.',
	'A: after B commits, the move B removed is gone from the check and its hint');

# a change rolled back: never seen by A, and gone for B too
$b->query_safe(q{BEGIN; INSERT INTO ips.vocabulary (category, code, ordinal) VALUES ('close_reason', 'emigrated', 9)});
my $emigrated = q{SELECT public.err($$SELECT ips.check_code('close_reason', 'emigrated', 'closing reason')$$)};
is($b->query_safe($emigrated), 'no error', 'B: a reason added in its open transaction');
$b->query_safe('ROLLBACK');
is($b->query_safe($emigrated), "22023 Use one of: $reasons, retired.", 'B: gone with the rollback');
is($a->query_safe($emigrated), "22023 Use one of: $reasons, retired.", 'A: never saw it');

$a->quit;
$b->quit;
$node->stop;
done_testing();
