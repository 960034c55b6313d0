-- ips.change_log: every change of a person-level row with who, when, table,
-- key, old and new row; each entry hashed, sealed into blocks after commit
-- (tests/t/031_ledger.pl tests the sealed side); ips.verify_change_log() checks.
BEGIN;
SELECT plan(43);
\ir security_setup.psql

SELECT is((SELECT count(*) FROM ips.verify_change_log()), 0::bigint, 'the chain of the set-up is intact');
SELECT is((SELECT bool_and(xid = pg_current_xact_id()) FROM ips.change_log), true,
          'every entry carries the transaction id of its writer');
SELECT is((SELECT count(*) FROM ips.change_log WHERE prev_hash IS NOT NULL), 0::bigint,
          'entries are written unchained: no writer reads another''s entry or waits for its lock');
SELECT is((SELECT count(*) FROM ips.ledger_pending WHERE log = 'change_log' AND xid = pg_current_xact_id()), 1::bigint,
          'the transaction marked itself pending once, for the sealer');

-- A specialist's contact: who, table, key, new row.
SELECT pg_temp.do_as(:'spec', format('SELECT ips.record_contact(%s, %s, ''2024-02-10 09:30+02'', ''client'', minutes => 45)', :e1, :s_spec)) AS ct9 \gset
SELECT is((SELECT row(db_role::text, table_name, operation, client_id, row_key, new_row ->> 'kind', new_row ->> 'minutes', old_row IS NULL)::text
             FROM ips.change_log ORDER BY seq DESC LIMIT 1),
          row(:'spec', 'ips.contact', 'INSERT', :c1, jsonb_build_object('contact_id', :ct9::bigint), 'client', '45', true)::text,
          'an insert is logged with the caller''s role, table, key and new row');
SELECT cmp_ok((SELECT logged_at FROM ips.change_log ORDER BY seq DESC LIMIT 1), '<=', clock_timestamp(), 'with the time of the change');

-- An update logs old and new; a change made inside a SECURITY DEFINER function still names the caller.
SELECT pg_temp.do_as(:'spec', format('UPDATE ips.contact SET minutes = 50 WHERE contact_id = %s RETURNING minutes', :ct9)) \gset
SELECT is((SELECT row(operation, old_row ->> 'minutes', new_row ->> 'minutes')::text FROM ips.change_log ORDER BY seq DESC LIMIT 1),
          '(UPDATE,45,50)', 'an update is logged with the old and the new row');
SELECT pg_temp.do_as(:'spec', 'SELECT ips.add_client(''H-77'')') AS c77 \gset
SELECT is((SELECT db_role::text FROM ips.change_log WHERE table_name = 'ips.client' AND client_id = :c77), :'spec',
          'a client registered through the definer function ips.add_client() is logged under the caller');
SELECT is((SELECT count(*) FROM ips.change_log WHERE table_name = 'ips.episode_state_history' AND client_id = :c1), 3::bigint,
          'state history rows are logged too');
SELECT is((SELECT count(*) FROM ips.verify_change_log()), 0::bigint, 'the chain is still intact');

-- Nobody changes the log through SQL: the guard refuses, also the superuser.
SELECT throws_ok('UPDATE ips.change_log SET db_role = ''someone'' WHERE seq = 3', '42501', NULL, 'UPDATE of the change log is refused, even to a superuser');
SELECT throws_ok('DELETE FROM ips.change_log WHERE seq = 3', '42501', NULL, 'DELETE is refused');
SELECT throws_ok('TRUNCATE ips.change_log', '42501', NULL, 'TRUNCATE is refused');
SELECT throws_ok($$INSERT INTO ips.change_log (seq, logged_at, db_role, table_name, operation, hash)
                   VALUES (999999, now(), 'x', 'ips.contact', 'INSERT', '\x00')$$, '42501', NULL,
                 'a superuser''s INSERT is refused too (1.1 chained it as if genuine)');
SELECT is(pg_temp.try_as(:'adm', 'UPDATE ips.change_log SET db_role = ''x'''), '42501', 'ips_admin may read the log, not change it');
SELECT is(pg_temp.try_as(:'spec', 'INSERT INTO ips.change_log (logged_at, db_role, table_name, operation) VALUES (now(), ''x'', ''x'', ''INSERT'')'),
          '42501', 'nobody inserts into the log directly');

-- Tampering around the guard (a superuser disabling triggers) is found at the right entry.
SELECT max(seq) AS last FROM ips.change_log \gset
SAVEPOINT tamper;
SET LOCAL session_replication_role = replica;
UPDATE ips.change_log SET new_row = jsonb_set(new_row, '{minutes}', '5') WHERE seq = :last - 2;
SET LOCAL session_replication_role = origin;
SELECT is((SELECT row(seq, problem)::text FROM ips.verify_change_log()),
          row(:last - 2, 'hash does not match the entry''s content: the entry was changed')::text,
          'a changed entry is found: verify_change_log() names it');
ROLLBACK TO tamper;
SELECT is((SELECT count(*) FROM ips.verify_change_log()), 0::bigint, 'intact again after the rollback');

-- A forged append around the guard: no writer marked its transaction pending, no block sealed it.
SAVEPOINT tamper;
SET LOCAL session_replication_role = replica;
INSERT INTO ips.change_log (seq, logged_at, db_role, table_name, operation, hash, xid)
VALUES (:last + 1000, now(), 'forger', 'ips.contact', 'INSERT', sha256('x'), '12345');
SET LOCAL session_replication_role = origin;
SELECT is((SELECT row(seq, problem)::text FROM ips.verify_change_log()),
          row(:last + 1000, 'entry is in no sealed block and its transaction is not pending: it was written around the ledger writer')::text,
          'a forged append is found');
ROLLBACK TO tamper;

SAVEPOINT tamper;
SET LOCAL session_replication_role = replica;
-- forge entry 7 completely (content and its own hash): the next entry's link breaks
UPDATE ips.change_log SET db_role = 'forger', hash = sha256(hash) WHERE seq = 7;
SET LOCAL session_replication_role = origin;
SELECT is((SELECT seq FROM ips.verify_change_log()), 7::bigint, 'a forged entry with a made-up hash is found at the entry');
ROLLBACK TO tamper;

-- A digest that is not one: a specific SQLSTATE and a hint, nothing checked against it.
SELECT throws_ok($$SELECT * FROM ips.verify_change_log('{"log": "access_log", "block_id": 1, "hash": "00"}')$$, '22023',
                 'the digest is not one of ips.change_log', 'a digest of the other log is refused');
SELECT throws_ok($$SELECT * FROM ips.verify_change_log('[1, 2]')$$, '22023',
                 'the digest is not a digest of the ips ledger', 'a digest that is no object is refused');
SELECT throws_ok($$SELECT * FROM ips.verify_change_log_since('{"log": "change_log", "block_id": 1, "hash": "xyz"}')$$, '22023',
                 'the digest is not a digest of the ips ledger', 'a digest whose hash is not 64 hex digits is refused');

-- The sealer's tables are guarded like the logs.
SELECT throws_ok('DELETE FROM ips.ledger_pending', '42501', NULL, 'nobody takes a transaction off the pending list by hand');
SELECT throws_ok($$INSERT INTO ips.ledger_block VALUES ('change_log', 1, now(), '\x00', 1, 1, 1, '{}', false, '\x00', '\x00')$$,
                 '42501', NULL, 'nor writes a block');
SELECT throws_ok('TRUNCATE ips.ledger_block', '42501', NULL, 'nor truncates the blocks');

-- Appends after a rolled-back subtransaction continue the chain correctly.
SAVEPOINT s1;
SELECT pg_temp.do_as(:'spec', format('SELECT ips.record_contact(%s, %s, ''2024-02-11 09:30+02'', ''client'')', :e1, :s_spec)) \gset
ROLLBACK TO s1;
SELECT pg_temp.do_as(:'spec', format('SELECT ips.record_contact(%s, %s, ''2024-02-12 09:30+02'', ''client'')', :e1, :s_spec)) \gset
SELECT is((SELECT count(*) FROM ips.verify_change_log()), 0::bigint, 'appends after a rolled-back savepoint keep the chain intact');

-- Multi-row statements (one command, many entries) chain in order.
SELECT max(seq) AS before_bulk FROM ips.change_log \gset
INSERT INTO ips.contact (episode_id, staff_id, at, kind, minutes)
SELECT :e1, :s_spec, timestamptz '2024-02-13 08:00+02' + g * interval '1 hour', 'client', g FROM generate_series(1, 3) g;
SELECT is((SELECT array_agg(row(operation, client_id, new_row ->> 'minutes')::text ORDER BY seq)
             FROM ips.change_log WHERE seq > :before_bulk),
          ARRAY[row('INSERT', :c1, '1')::text, row('INSERT', :c1, '2')::text, row('INSERT', :c1, '3')::text],
          'a statement inserting three rows appends three entries, in the order of the rows');
SELECT is((SELECT bool_and((row_key ->> 'contact_id')::bigint = (new_row ->> 'contact_id')::bigint)
             FROM ips.change_log WHERE seq > :before_bulk), true, 'each with its own key');
DELETE FROM ips.contact WHERE at >= '2024-02-13' AND at < '2024-02-14' AND episode_id = :e1;
SELECT is((SELECT array_agg(row(operation, old_row ->> 'minutes', new_row IS NULL)::text ORDER BY seq)
             FROM ips.change_log WHERE seq > :before_bulk + 3),
          ARRAY['(DELETE,1,t)', '(DELETE,2,t)', '(DELETE,3,t)'], 'a delete of three rows logs the three old rows');
-- The logged rows equal to_jsonb() of the rows (the trigger converts them itself): the newest
-- entry of every row still there, for tables with integers, numerics, text, dates, instants, booleans.
SELECT is((SELECT array_agg(x.t ORDER BY x.t) FROM (
             SELECT 'episode' AS t FROM (SELECT DISTINCT ON (row_key) row_key, new_row FROM ips.change_log
                                          WHERE table_name = 'ips.episode' ORDER BY row_key, seq DESC) l
               JOIN ips.episode r ON r.episode_id = (l.row_key ->> 'episode_id')::bigint AND l.new_row = to_jsonb(r)
             UNION SELECT 'staff' FROM (SELECT DISTINCT ON (row_key) row_key, new_row FROM ips.change_log
                                         WHERE table_name = 'ips.staff' ORDER BY row_key, seq DESC) l
               JOIN ips.staff r ON r.staff_id = (l.row_key ->> 'staff_id')::bigint AND l.new_row = to_jsonb(r)
             UNION SELECT 'contact' FROM (SELECT DISTINCT ON (row_key) row_key, new_row FROM ips.change_log
                                           WHERE table_name = 'ips.contact' ORDER BY row_key, seq DESC) l
               JOIN ips.contact r ON r.contact_id = (l.row_key ->> 'contact_id')::bigint AND l.new_row = to_jsonb(r)
             UNION SELECT 'consent' FROM (SELECT DISTINCT ON (row_key) row_key, new_row FROM ips.change_log
                                           WHERE table_name = 'ips.consent' ORDER BY row_key, seq DESC) l
               JOIN ips.consent r ON r.consent_id = (l.row_key ->> 'consent_id')::bigint AND l.new_row = to_jsonb(r)) x),
          '{consent,contact,episode,staff}'::text[], 'logged rows equal to_jsonb() of the rows (episode, staff, contact, consent)');
SELECT is((SELECT count(*) FROM (SELECT DISTINCT ON (row_key) row_key, new_row FROM ips.change_log
                                  WHERE table_name IN ('ips.episode') AND new_row IS NOT NULL ORDER BY row_key, seq DESC) l
             JOIN ips.episode r ON r.episode_id = (l.row_key ->> 'episode_id')::bigint AND l.new_row IS DISTINCT FROM to_jsonb(r)),
          0::bigint, 'no episode''s newest entry differs from the row');

-- The writer keeps each table's row converter for the backend; a changed table gets a new one.
SAVEPOINT alter_t;
UPDATE ips.staff SET fte = fte WHERE staff_id = (SELECT min(staff_id) FROM ips.staff);
ALTER TABLE ips.staff ADD COLUMN ledger_probe text DEFAULT 'probe';
UPDATE ips.staff SET fte = fte WHERE staff_id = (SELECT min(staff_id) FROM ips.staff);
SELECT is((SELECT new_row ->> 'ledger_probe' FROM ips.change_log ORDER BY seq DESC LIMIT 1), 'probe',
          'a column added to a logged table is in its next entry');
ROLLBACK TO alter_t;

-- Text that JSON must escape (quotes, backslash, newline, tab, a control character) and
-- non-ASCII letters: the entry's jsonb and the text the chain hashes agree with PostgreSQL's.
SELECT ips.add_client(E'H-"q" \\ \n\t\x01 ä', municipality => E'Närpes "x"\r') AS c_esc \gset
SELECT is((SELECT l.new_row = to_jsonb(c) AND l.new_row::text = to_jsonb(c)::text
             FROM ips.change_log l JOIN ips.client c ON c.client_id = :c_esc
            WHERE l.table_name = 'ips.client' AND l.client_id = :c_esc),
          true, 'a row with escaped characters is logged as to_jsonb() prints it');
SELECT is((SELECT count(*) FROM ips.verify_change_log()), 0::bigint, 'and its hash verifies');

-- A statement whose rows do not fit in work_mem (the transition table spills to disk).
SAVEPOINT spill;
SET LOCAL work_mem = '64kB';
SELECT max(seq) AS before_spill FROM ips.change_log \gset
INSERT INTO ips.contact (episode_id, staff_id, at, kind, minutes)
SELECT :e1, :s_spec, timestamptz '2024-02-14 08:00+02' + g * interval '10 seconds', 'client', 1 + g % 7 FROM generate_series(1, 3000) g;
SELECT is((SELECT row(count(*), sum((new_row ->> 'minutes')::int))::text FROM ips.change_log WHERE seq > :before_spill),
          row(3000, (SELECT sum(1 + g % 7) FROM generate_series(1, 3000) g))::text,
          'a 3 000-row statement that spills its transition table to disk logs every row');
SELECT is((SELECT count(*) FROM ips.verify_change_log()), 0::bigint, 'and the chain stays intact');
ROLLBACK TO spill;
UPDATE ips.contact SET minutes = coalesce(minutes, 0) + 1;
SELECT is((SELECT count(*) FROM ips.verify_change_log()), 0::bigint, 'a statement changing many rows chains every entry');

-- A one-row statement writes its entry with heap_insert and index_insert when every index of
-- the log is a plain btree (its primary key, and any a DBA adds); with an expression or
-- partial index the executor writes it.  Either way every index holds every entry (amcheck,
-- heapallindexed) and the primary key stays enforced.  (No savepoint: pgTAP's results in one
-- would be rolled back with it.)
CREATE EXTENSION IF NOT EXISTS amcheck;
CREATE INDEX change_log_client_probe ON ips.change_log (client_id, seq);
INSERT INTO ips.contact (episode_id, staff_id, at, kind, minutes) VALUES (:e1, :s_spec, '2024-02-15 09:00+02', 'client', 21);
SELECT is((SELECT count(*) FROM ips.change_log WHERE new_row ->> 'minutes' = '21' AND table_name = 'ips.contact'), 1::bigint,
          'with a plain index a DBA added, a one-row insert is logged');
SELECT lives_ok($$SELECT bt_index_check('ips.change_log_client_probe', true), bt_index_check('ips.change_log_pkey', true)$$,
                'and both the added index and the primary key hold the entry');
CREATE INDEX change_log_table_probe ON ips.change_log (lower(table_name));
CREATE INDEX change_log_delete_probe ON ips.change_log (seq) WHERE operation = 'DELETE';
INSERT INTO ips.contact (episode_id, staff_id, at, kind, minutes) VALUES (:e1, :s_spec, '2024-02-15 10:00+02', 'client', 22);
DELETE FROM ips.contact WHERE minutes = 22 AND at = '2024-02-15 10:00+02';
SELECT is((SELECT count(*) FROM ips.change_log WHERE operation = 'DELETE' AND old_row ->> 'minutes' = '22'), 1::bigint,
          'with an expression and a partial index added, one-row statements are logged');
SELECT lives_ok($$SELECT bt_index_check(i, true) FROM unnest(array['ips.change_log_pkey', 'ips.change_log_client_probe',
                   'ips.change_log_table_probe', 'ips.change_log_delete_probe']::regclass[]) i$$,
                'and every index of the log holds every entry');
DROP INDEX ips.change_log_table_probe, ips.change_log_delete_probe, ips.change_log_client_probe;
SELECT setval('ips.change_log_seq', (SELECT max(seq) FROM ips.change_log), false) IS NOT NULL AS moved_back \gset
SELECT throws_ok($$INSERT INTO ips.contact (episode_id, staff_id, at, kind, minutes) VALUES ($$ || :e1 || ', ' || :s_spec || $$, '2024-02-15 11:00+02', 'client', 23)$$,
                 '23505', NULL, 'a log sequence moved back is refused by the primary key: no entry is written twice');

SELECT * FROM finish();
ROLLBACK;
