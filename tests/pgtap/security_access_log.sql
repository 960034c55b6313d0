-- ips.access_log and ips.access_report: every view of a record through
-- ips.client_record() is logged in the same transaction; the report shows
-- exactly those accesses, and nothing of another client.
BEGIN;
SELECT plan(20);
\ir security_setup.psql

SELECT is((SELECT count(*) FROM ips.access_log), 0::bigint, 'no accesses yet');
SELECT pg_temp.do_as(:'spec', format('SELECT ips.client_record(%s, ''weekly review'') IS NOT NULL', :c1)) \gset
SELECT pg_temp.do_as(:'clin', format('SELECT ips.client_record(%s, ''care team meeting'') IS NOT NULL', :c1)) \gset
SELECT pg_temp.do_as(:'spec', format('SELECT ips.client_record(%s, ''job search planning'') IS NOT NULL', :c1)) \gset
SELECT pg_temp.do_as(:'spec_b', format('SELECT ips.client_record(%s, ''weekly review'') IS NOT NULL', :c2)) \gset

SELECT is((SELECT array_agg(row(db_role, staff_id, purpose)::text) FROM ips.access_report(:c1)),
          ARRAY[row(:'spec', :s_spec, 'weekly review')::text, row(:'clin', :s_clin, 'care team meeting')::text,
                row(:'spec', :s_spec, 'job search planning')::text],
          'the report of client 1 lists exactly its three accesses, in order, with role, staff and purpose');
SELECT is((SELECT bool_and(accessed_at = now()) FROM ips.access_report(:c1)), true, 'with the time of access');
SELECT is((SELECT array_agg(row(db_role, purpose)::text) FROM ips.access_report(:c2)),
          ARRAY[row(:'spec_b', 'weekly review')::text], 'the report of client 2 shows only its own access');
-- periods are the region's local days (current_date is the session's: from 22:00 UTC on, a day behind Helsinki)
SELECT is((SELECT count(*) FROM ips.access_report(:c1, ips.local_date(now()) + 1)), 0::bigint, 'a period after the accesses is empty');
SELECT is((SELECT count(*) FROM ips.access_report(:c1, ips.local_date(now()), ips.local_date(now()))), 3::bigint, 'today''s period has all three');
SELECT throws_ok(format('SELECT * FROM ips.access_report(%s, ''2024-02-01'', ''2024-01-01'')', :c1), '22023', NULL,
                 'a period that ends before it starts is refused');
SELECT ok((SELECT shown -> 'sections' @> '["client", "consents", "current_job", "episode", "recent_contacts", "state_history"]'
                  AND (shown ->> 'episode_id')::bigint = :e1 FROM ips.access_log WHERE db_role = :'clin'),
          'the log records which sections of which episode were shown');

-- Who may read the report.
SELECT is(pg_temp.try_as(:'sup', format('SELECT count(*) FROM ips.access_report(%s)', :c1)), 'ok:3', 'the team''s supervisor reads the report');
SELECT is(pg_temp.try_as(:'sup', format('SELECT count(*) FROM ips.access_report(%s)', :c2)), 'P0002', 'but not of another team''s client');
SELECT is(pg_temp.try_as(:'spec', format('SELECT count(*) FROM ips.access_report(%s)', :c1)), '42501', 'a specialist may not');

-- Bad input writes nothing.
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, NULL)', :c1)), '22004', 'a missing purpose is refused');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, ''  '')', :c1)), '22023', 'a blank purpose is refused');
SELECT is((SELECT count(*) FROM ips.access_log), 4::bigint, 'refused calls wrote nothing');

-- Nobody writes the log by hand, the owner and superusers (this session) included.
SELECT throws_ok($$INSERT INTO ips.access_log (seq, accessed_at, db_role, client_id, purpose, shown, hash)
                   VALUES (999999, now(), 'x', 1, 'x', '{}', '\x00')$$, '42501', NULL, 'a superuser''s INSERT into the access log is refused');
SELECT throws_ok('UPDATE ips.access_log SET purpose = ''x''', '42501', NULL, 'UPDATE is refused');
SELECT throws_ok('DELETE FROM ips.access_log', '42501', NULL, 'DELETE is refused');
SELECT throws_ok('TRUNCATE ips.access_log', '42501', NULL, 'TRUNCATE is refused');
SELECT is((SELECT count(*) FROM ips.access_log WHERE xid IS NOT NULL AND xid <> pg_current_xact_id() AND prev_hash IS NULL), 4::bigint,
          'the reads were appended by the ledger''s writer, each in a transaction of its own (the autonomous writer), unchained');

-- Append-only and hashed like the change log.
SAVEPOINT tamper;
SET LOCAL session_replication_role = replica;
SELECT seq AS second FROM ips.access_log ORDER BY seq OFFSET 1 LIMIT 1 \gset
UPDATE ips.access_log SET purpose = 'nothing to see' WHERE seq = :second;
SET LOCAL session_replication_role = origin;
SELECT is((SELECT seq FROM ips.verify_access_log()), :second::bigint, 'a changed purpose is found by verify_access_log()');
ROLLBACK TO tamper;

SELECT * FROM finish();
ROLLBACK;
