# The ledger with committed work (docs/ledger.md): writers do not wait for each
# other; the sealer chains committed transactions into blocks; digests kept
# outside catch a changed entry, a removed tail, a forged append, a re-ordering
# and a rewrite that the owner re-hashed; retention keeps what remains
# verifiable; the chain of 1.1 is carried over by ALTER EXTENSION UPDATE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('ledger');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE l');
$node->safe_psql('l', 'CREATE EXTENSION ips; CREATE EXTENSION dblink;');
my $connstr = 'port=' . $node->port . ' host=' . $node->host . ' dbname=l';

# --- no region-wide lock: an idle transaction with a logged write does not delay another team's write
$node->safe_psql('l', q{SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa'); SELECT ips.add_team('Kuopio IPS', 'Pohjois-Savo');});
my ($ret, $out, $err) = $node->psql('l', qq{
SELECT dblink_connect('a', '$connstr');
SELECT dblink_exec('a', 'BEGIN');
SELECT * FROM dblink('a', \$\$SELECT ips.add_staff(1, 'Anna', 'specialist')\$\$) AS t(staff_id bigint);
SET lock_timeout = '2s';
SELECT ips.add_staff(2, 'Bertil', 'specialist') > 0;
SELECT dblink_exec('a', 'COMMIT');
});
is($ret, 0, 'another team writes while a transaction with a logged write stays open (lock_timeout 2 s)') or diag($err);
like($out, qr/^t$/m, 'and its write went through');
is($node->safe_psql('l', q{SELECT count(*) FROM ips.change_log WHERE table_name = 'ips.staff'}), '2',
	'both writes are logged');

# the sealer: only committed transactions; block order is sealing order
my $b = $node->background_psql('l');
$b->query_safe(q{BEGIN; SELECT ips.add_staff(1, 'Open', 'specialist')});
$node->safe_psql('l', q{SELECT ips.seal()});
is($node->safe_psql('l', q{SELECT count(*) FROM ips.ledger_block b, ips.change_log l
                            WHERE b.log = 'change_log' AND l.xid = ANY (b.xids) AND l.new_row ->> 'display_name' = 'Open'}),
	'0', 'an open transaction is not sealed');
is($node->safe_psql('l', q{SELECT count(*) FROM ips.verify_change_log()}), '0',
	'and its entries are not reported as a problem (pending)');
$b->query_safe('COMMIT');
$b->quit;
$node->safe_psql('l', q{SELECT ips.seal()});
is($node->safe_psql('l', q{SELECT b.block_id > 1 FROM ips.ledger_block b, ips.change_log l
                            WHERE b.log = 'change_log' AND l.xid = ANY (b.xids) AND l.new_row ->> 'display_name' = 'Open'}),
	't', 'once committed, it is sealed in a later block');
is($node->safe_psql('l', q{SELECT count(*) FROM ips.ledger_pending}), '0', 'nothing is left pending');
is($node->safe_psql('l', q{SELECT sum(entries) = (SELECT count(*) FROM ips.change_log) FROM ips.ledger_block WHERE log = 'change_log'}),
	't', 'the blocks cover every entry');

# more work, in several transactions and blocks
for my $i (1 .. 6)
{
	$node->safe_psql('l', qq{SELECT ips.add_staff(1, 'Staff $i', 'specialist'); UPDATE ips.staff SET fte = 0.5 WHERE display_name = 'Staff $i'});
	$node->safe_psql('l', 'SELECT ips.seal()') if $i % 2 == 0;
}
my $digest = $node->safe_psql('l', 'SELECT ips.change_log_digest()');
like($digest, qr/"block_id": \d+/, "a digest: $digest");
cmp_ok(length($digest), '<', 400, 'small enough for a ticket');
is($node->safe_psql('l', qq{SELECT count(*) FROM ips.verify_change_log('$digest')}), '0', 'the log verifies against its digest');
is($node->safe_psql('l', qq{SELECT count(*) FROM ips.verify_change_log_since('$digest')}), '0', 'and incrementally from it');
my $adigest = $node->safe_psql('l', 'SELECT ips.access_log_digest()');
is($node->safe_psql('l', qq{SELECT count(*) FROM ips.verify_access_log('$adigest')}), '0', 'the access log verifies against its digest');

# the canonical form as docs/ledger.md states it, computed here in SQL
my $canon = q{
CREATE FUNCTION pg_temp.f(name text, v text) RETURNS bytea LANGUAGE sql AS $$
    SELECT convert_to(name, 'UTF8') || CASE WHEN v IS NULL THEN '\x1f4e1e'::bytea
        ELSE '\x1f'::bytea || convert_to(octet_length(convert_to(v, 'UTF8'))::text || ':', 'UTF8')
             || convert_to(v, 'UTF8') || '\x1e'::bytea END $$;
CREATE FUNCTION pg_temp.entry_hash(l ips.change_log) RETURNS bytea LANGUAGE sql AS $$
    SELECT sha256(pg_temp.f('seq', l.seq::text) || pg_temp.f('xid', l.xid::text)
        || pg_temp.f('logged_at', ((extract(epoch FROM l.logged_at) - 946684800) * 1000000)::bigint::text)
        || pg_temp.f('db_role', l.db_role::text) || pg_temp.f('table_name', l.table_name)
        || pg_temp.f('operation', l.operation) || pg_temp.f('client_id', l.client_id::text)
        || pg_temp.f('row_key', l.row_key::text) || pg_temp.f('old_row', l.old_row::text)
        || pg_temp.f('new_row', l.new_row::text)) $$;
};
is($node->safe_psql('l', $canon . q{SELECT count(*) FROM ips.change_log l WHERE pg_temp.entry_hash(l) <> l.hash}), '0',
	'every entry hash is SHA-256 of the documented canonical form');

my $last = $node->safe_psql('l', 'SELECT max(seq) FROM ips.change_log');
my $mid = $node->safe_psql('l', q{SELECT seq FROM ips.change_log ORDER BY seq OFFSET 8 LIMIT 1});
my $next = $node->safe_psql('l', qq{SELECT min(seq) FROM ips.change_log WHERE seq > $mid});
my $mid_block = $node->safe_psql('l', qq{SELECT block_id FROM ips.ledger_block b, ips.change_log l
    WHERE b.log = 'change_log' AND l.seq = $mid AND l.xid = ANY (b.xids)});

# tampering scenarios, each around the guard (session_replication_role = replica) and rolled back
sub tampered
{
	my ($sql, $check) = @_;
	return $node->safe_psql('l', $canon . qq{
BEGIN;
SET session_replication_role = replica;
$sql;
SET session_replication_role = origin;
SELECT string_agg(coalesce(seq::text, '-') || ' ' || problem, E'\n' ORDER BY seq) FROM $check;
ROLLBACK;});
}

# the guard itself: refused to the owner, a superuser
($ret, $out, $err) = $node->psql('l', q{INSERT INTO ips.change_log (seq, logged_at, db_role, table_name, operation, hash)
                                         VALUES (999999, now(), 'x', 'ips.staff', 'INSERT', '\x00')});
like($err, qr/written only by the ledger/, "a superuser's plain INSERT into the log is refused");
($ret, $out, $err) = $node->psql('l', q{UPDATE ips.ledger_block SET root = hash});
like($err, qr/written only by the ledger/, 'and so is an UPDATE of a block');

like(tampered("UPDATE ips.change_log SET db_role = 'mallory' WHERE seq = $mid", "ips.verify_change_log('$digest')"),
	qr/^$mid hash does not match the entry's content: the entry was changed$/, 'a changed entry is found at its seq');
like(tampered("UPDATE ips.change_log l SET db_role = 'mallory' WHERE seq = $mid; UPDATE ips.change_log l SET hash = pg_temp.entry_hash(l) WHERE seq = $mid",
		"ips.verify_change_log('$digest')"),
	qr/^\d+ block $mid_block \(seq \d+\.\.\d+\): the Merkle root of its entries is not the sealed one/,
	'a changed entry re-hashed by the owner is found by its block\'s Merkle root');
# 1.1's attack: copy from seq N on, delete, change one, insert again (re-hashed)
like(tampered(qq{CREATE TEMP TABLE copy AS SELECT * FROM ips.change_log WHERE seq >= $mid;
DELETE FROM ips.change_log WHERE seq >= $mid;
UPDATE copy SET new_row = jsonb_set(new_row, '{fte}', '1.0') WHERE seq = (SELECT max(seq) FROM copy WHERE operation = 'UPDATE');
INSERT INTO ips.change_log SELECT * FROM copy;
UPDATE ips.change_log l SET hash = pg_temp.entry_hash(l) WHERE seq >= $mid}, "ips.verify_change_log('$digest')"),
	qr/the Merkle root of its entries is not the sealed one/, 'a rewrite the owner re-chained is found');
like(tampered("DELETE FROM ips.change_log WHERE seq >= (SELECT seq FROM ips.change_log ORDER BY seq DESC OFFSET 1 LIMIT 1)",
		"ips.verify_change_log('$digest')"),
	qr/^$last block \d+ \(seq \d+\.\.$last\): \d+ entries sealed, \d+ found: entries were removed$/, 'a removed tail is found');
like(tampered(qq{DELETE FROM ips.change_log WHERE seq >= (SELECT first_seq FROM ips.ledger_block WHERE log = 'change_log' ORDER BY block_id DESC LIMIT 1);
DELETE FROM ips.ledger_block WHERE log = 'change_log' AND block_id = (SELECT max(block_id) FROM ips.ledger_block WHERE log = 'change_log')},
		"ips.verify_change_log('$digest')"),
	qr/does not extend the digest/, 'a removed tail with its block is found against the digest');
like(tampered(qq{INSERT INTO ips.change_log (seq, logged_at, db_role, table_name, operation, hash, xid)
SELECT $last + 1000, now(), 'forger', 'ips.staff', 'INSERT', sha256('x'), '4242'},
		"ips.verify_change_log('$digest')"),
	qr/^\d+ entry is in no sealed block and its transaction is not pending/, 'a forged append is found');
like(tampered(qq{CREATE TEMP TABLE victim AS SELECT xid FROM ips.change_log WHERE seq = $mid;
DELETE FROM ips.change_log WHERE seq = $mid;
INSERT INTO ips.change_log (seq, logged_at, db_role, table_name, operation, hash, xid)
SELECT $mid, now(), 'forger', 'ips.staff', 'INSERT', sha256('x'), xid FROM victim}, "ips.verify_change_log('$digest')"),
	qr/the entry was changed/, 'a forged entry in a sealed transaction is found');
like(tampered(qq{UPDATE ips.change_log SET seq = -seq WHERE seq IN ($mid, $next);
UPDATE ips.change_log SET seq = CASE WHEN seq = -$mid THEN $next ELSE $mid END WHERE seq < 0;
UPDATE ips.change_log l SET hash = pg_temp.entry_hash(l) WHERE seq IN ($mid, $next)}, "ips.verify_change_log('$digest')"),
	qr/Merkle root|no sealed block/, 'two entries swapped (and re-hashed) are found');
like(tampered(q{UPDATE ips.ledger_block SET entries = entries + 0, sealed_at = sealed_at + interval '1 second' WHERE block_id = 2 AND log = 'change_log'},
		"ips.verify_change_log('$digest')"),
	qr/block 2 .*the block was changed/, 'a changed block is found');

# incremental verification: from a digest on, only what was sealed after it is read
$node->safe_psql('l', q{SELECT ips.add_staff(1, 'Later', 'specialist')});
$node->safe_psql('l', 'SELECT ips.seal()');
my $later = $node->safe_psql('l', q{SELECT max(seq) FROM ips.change_log});
like(tampered("UPDATE ips.change_log SET db_role = 'mallory' WHERE seq = $later", "ips.verify_change_log_since('$digest')"),
	qr/^$later hash does not match/, 'incremental: a changed entry sealed after the digest is found');
is(tampered("UPDATE ips.change_log SET db_role = 'mallory' WHERE seq = $mid", "ips.verify_change_log_since('$digest')"), '',
	'incremental: entries before the digest are not read again');
like(tampered(q{UPDATE ips.ledger_block SET root = sha256(root) WHERE log = 'change_log' AND block_id = } . ($digest =~ /"block_id": (\d+)/)[0],
		"ips.verify_change_log_since('$digest')"),
	qr/differs from the digest|the block was changed/, 'incremental: the digest\'s own block is checked');

# the Merkle roots as RFC 9162 (2.1.1) defines them, computed here in SQL over each block's
# entries in seq order (one block of seven entries among them): the hashing in C must give the same bytes
$node->safe_psql('l', q{SELECT ips.add_staff(1, 'Seven ' || g, 'specialist') FROM generate_series(1, 7) g; SELECT ips.seal()});
my $mth = q{
CREATE FUNCTION pg_temp.mth(h bytea[]) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE n int := coalesce(array_length(h, 1), 0); k int := 1;
BEGIN
    IF n = 0 THEN RETURN sha256(''::bytea); END IF;
    IF n = 1 THEN RETURN sha256('\x00'::bytea || h[1]); END IF;
    WHILE k * 2 < n LOOP k := k * 2; END LOOP;
    RETURN sha256('\x01'::bytea || pg_temp.mth(h[1:k]) || pg_temp.mth(h[k + 1:n]));
END $$;
};
like($node->safe_psql('l', $mth . q{
SELECT count(*) FILTER (WHERE r.root = r.mth) || ' of ' || count(*) || ', ' || count(*) FILTER (WHERE r.entries > 4 AND r.entries & (r.entries - 1) <> 0) || ' of over four entries, not a power of two'
  FROM (SELECT b.root, b.entries, pg_temp.mth(ARRAY(SELECT l.hash FROM ips.change_log l WHERE l.xid = ANY (b.xids) ORDER BY l.seq)) AS mth
          FROM ips.ledger_block b WHERE b.log = 'change_log' AND NOT b.legacy
        UNION ALL
        SELECT b.root, b.entries, pg_temp.mth(ARRAY(SELECT l.hash FROM ips.access_log l WHERE l.xid = ANY (b.xids) ORDER BY l.seq))
          FROM ips.ledger_block b WHERE b.log = 'access_log' AND NOT b.legacy) r}),
	qr/^([1-9]\d*) of \1, [1-9]\d* of over four entries, not a power of two$/,
	'every block\'s root is the RFC 9162 Merkle tree hash of its entries\' hashes');

# retention: archive the first blocks; what remains verifies; the digest names what was archived
my $removed = $node->safe_psql('l', q{SELECT ips.archive_blocks('change_log', 2)});
cmp_ok($removed, '>', 0, "archiving blocks 1..2 removes their $removed entries from the live table");
is($node->safe_psql('l', q{SELECT count(*) FROM ips.verify_change_log()}), '0', 'what remains verifies clean');
like($node->safe_psql('l', qq{SELECT string_agg(problem, ' ') FROM ips.verify_change_log('$digest')}),
	qr/archived after the digest was taken/, 'a digest taken before says which blocks were archived since');
my $digest2 = $node->safe_psql('l', 'SELECT ips.change_log_digest()');
is($node->safe_psql('l', qq{SELECT count(*) FROM ips.verify_change_log('$digest2')}), '0', 'a digest taken after verifies clean');
($ret, $out, $err) = $node->psql('l', q{SELECT ips.archive_blocks('change_log', 9999)});
like($err, qr/is not sealed/, 'only sealed blocks are archived');

# --- the chain of 1.1 carried over
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', q{CREATE EXTENSION ips VERSION '1.1'});
$node->safe_psql('old', q{SELECT ips.add_team('Oulu IPS', 'Pohjois-Pohjanmaa'); SELECT ips.add_staff(1, 'Old ' || g, 'specialist') FROM generate_series(1, 5) g});
my $old_n = $node->safe_psql('old', 'SELECT count(*) FROM ips.change_log');
$node->safe_psql('old', 'ALTER EXTENSION ips UPDATE');
is($node->safe_psql('old', q{SELECT row(block_id, legacy, entries, first_seq, last_seq)::text FROM ips.ledger_block WHERE log = 'change_log'}),
	"(1,t,$old_n,1,$old_n)", 'the update seals the chain of 1.1 as block 1');
$node->safe_psql('old', q{SELECT ips.add_staff(1, 'New', 'specialist')});
is($node->safe_psql('old', q{SELECT min(seq) FROM ips.change_log WHERE xid IS NOT NULL}), $old_n + 1,
	'new entries continue after the old ones');
my $odigest = $node->safe_psql('old', 'SELECT ips.change_log_digest()');
is($node->safe_psql('old', qq{SELECT count(*) FROM ips.verify_change_log('$odigest')}), '0',
	'old and new entries verify clean against a digest');
is($node->safe_psql('old', q{BEGIN; SET session_replication_role = replica;
    UPDATE ips.change_log SET db_role = 'mallory' WHERE seq = 2; SET session_replication_role = origin;
    SELECT string_agg(seq || ' ' || problem, '; ') FROM ips.verify_change_log(); ROLLBACK;}),
	"2 hash does not match the entry's content: the entry was changed", 'a changed entry of 1.1 is found');

$node->stop;
done_testing();
