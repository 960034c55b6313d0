-- Reads of a client's record are logged in a transaction of their own (issue 14,
-- docs/access-log.md): the entry stays when the reader's subtransaction rolls back
-- or a DO block catches an error after the read; only ips.client_record() writes
-- one for staff (ips.log_access is executable by no ips role); the purpose is
-- bounded and checked before anything is read; when the writer cannot commit the
-- read fails.  (A rolled-back top-level transaction, and no free worker slot:
-- tests/t/030_access_log_autonomous.pl, which needs committed data and settings.)
BEGIN;
SELECT plan(37);
\ir security_setup.psql

-- The entries of client :c1 with a purpose, as the supervisor's access report shows them.
CREATE FUNCTION pg_temp.reported(client bigint, p text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM ips.access_report(client) r WHERE r.purpose = p
$$;

-- 1. A read in a subtransaction that rolls back: the record was returned, the entry stays.
SAVEPOINT covert;
SET LOCAL ROLE :"spec";
SELECT ips.client_record(:c1, 'covert read') -> 'client' ->> 'host_ref' AS covert_ref \gset
ROLLBACK TO covert;
SELECT is(:'covert_ref'::text, 'H-1', 'the specialist got the record inside the subtransaction');
SELECT is(pg_temp.reported(:c1, 'covert read'), 1::bigint, 'the read rolled back with its subtransaction is in the access report');
SELECT is((SELECT row(db_role, staff_id, client_id, accessed_at = now(), shown ->> 'episode_id')::text
             FROM ips.access_log WHERE purpose = 'covert read'),
          row(:'spec', :s_spec, :c1, true, :e1::text)::text,
          'with the reader''s role and staff id (not the writer''s), the client, the time of the reader''s transaction and the episode shown');
SELECT is(pg_temp.try_as(:'sup', format('SELECT string_agg(db_role || '':'' || staff_id, '','') FROM ips.access_report(%s) WHERE purpose = ''covert read''', :c1)),
          'ok:' || :'spec' || ':' || :s_spec, 'the team''s supervisor sees it in the report');

-- A read in try_as (a plpgsql block whose subtransaction is always rolled back).
SELECT is(pg_temp.try_as(:'clin', format('SELECT ips.client_record(%s, ''care team meeting, rolled back'') -> ''client'' ->> ''client_id''', :c1)),
          'ok:' || :c1, 'the clinician reads c1 in a subtransaction that rolls back');
SELECT is(pg_temp.reported(:c1, 'care team meeting, rolled back'), 1::bigint, 'and that read is logged too');
SELECT is((SELECT db_role::text FROM ips.access_log WHERE purpose = 'care team meeting, rolled back'), :'clin',
          'as the clinician''s');

-- 2. A DO block that catches an error after the read.
SELECT set_config('test.c1', :'c1', true) \gset
SET LOCAL ROLE :"spec";
DO $$
DECLARE
    r jsonb;
BEGIN
    r := ips.client_record(current_setting('test.c1')::bigint, 'read, then an error caught');
    PERFORM 1 / 0;
EXCEPTION WHEN division_by_zero THEN
    NULL;
END $$;
RESET ROLE;
SELECT is(pg_temp.reported(:c1, 'read, then an error caught'), 1::bigint,
          'a DO block that catches an error after the read leaves the entry');

-- A read that fails (P0002) writes nothing: nothing was shown.
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, ''curious'')', :c2)), 'P0002',
          'another team''s client: no client with that id');
SELECT is(pg_temp.reported(:c2, 'curious'), 0::bigint, 'and no entry (nothing was shown)');

-- 3. The internal writer: no ips role may execute it, with 1.1's arguments or the new ones.
SELECT is((SELECT array_agg(r || ' ' || p.oid::regprocedure ORDER BY r) FROM pg_proc p,
                  unnest('{ips_admin,ips_supervisor,ips_specialist,ips_clinician,ips_analyst}'::text[]) r
            WHERE p.pronamespace = 'ips'::regnamespace AND p.proname = 'log_access'
              AND has_function_privilege(r, p.oid, 'EXECUTE')),
          NULL, 'no ips role has EXECUTE on ips.log_access');
SELECT is(pg_temp.try_as(:'tag' || '_' || r, format('SELECT ips.log_access(%s, ''court order 2026/123'', ''{}'')', :c1)),
          '42501', format('%s: SELECT ips.log_access(c1, ''court order 2026/123'', ''{}'') is refused', r))
  FROM unnest('{spec,sup,clin,adm,an}'::text[]) r;
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.log_access(%s, ''forged'', ''{}'', now(), %L, %s)', :c1, :'clin', :s_clin)),
          '42501', 'a specialist cannot write an entry in another''s name');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.log_access(%s, '''', ''{}'')', :c1)), '42501',
          'nor with an empty purpose');
SELECT is((SELECT count(*) FROM ips.access_log WHERE purpose IN ('court order 2026/123', 'forged', '')), 0::bigint,
          'none of these is stored');
SELECT is((SELECT count(*) FROM pg_proc WHERE oid = to_regprocedure('ips.log_access(bigint,text,jsonb)')), 0::bigint,
          '1.1''s staff-callable ips.log_access(bigint, text, jsonb) is gone');

-- 4. The purpose: 1 to 500 characters, not blank, checked before anything is read.
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, NULL)', :c1)), '22004', 'no purpose: 22004');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(NULL, ''x'')')), '22004', 'no client id: 22004');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, '''')', :c1)), '22023', 'an empty purpose: 22023');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, E'' \t\n\r '')', :c1)), '22023', 'a purpose of white space: 22023');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, repeat(''x'', 501))', :c1)), '22001', '501 characters: 22001');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, repeat(''ä'', 501))', :c1)), '22001', '501 two-byte characters: 22001');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, repeat(''x'', 10 * 1024 * 1024))', :c1)), '22001', '10 MB: 22001');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, repeat(''x'', 10 * 1024 * 1024))', :c2)), '22001',
          'checked before anything is read: 22001 also for a client the caller may not see (not P0002)');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, '' '')', :c2)), '22023',
          'and 22023 for a blank purpose of such a client');
SELECT is((SELECT count(*) FROM ips.access_log WHERE char_length(purpose) > 500 OR btrim(purpose, E' \t\n\r') = ''), 0::bigint,
          'none of them wrote an entry');
SELECT is(pg_temp.try_as(:'spec', format('SELECT char_length(ips.client_record(%s, repeat(''ä'', 500)) ->> ''client'') > 0', :c1)), 'ok:true',
          '500 characters (1 000 bytes) are a purpose');
SELECT is((SELECT count(*) FROM ips.access_log WHERE purpose = repeat('ä', 500)), 1::bigint, 'and are logged whole');

-- 5. The writer unavailable: it cannot commit (the log is locked) within
-- ips.autonomous_timeout.  The read fails with 53000 and returns nothing.
SET LOCAL ips.autonomous_timeout = '300ms';
SAVEPOINT locked;
LOCK TABLE ips.access_log IN ACCESS EXCLUSIVE MODE;
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, ''while the log is locked'') ->> ''client''', :c1)), '53000',
          'a read whose entry cannot be committed in time fails (53000): the record is not returned');
-- the timed-out writer was told to stop; wait until it is gone before the lock goes
CREATE FUNCTION pg_temp.writers_gone() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        PERFORM pg_stat_clear_snapshot();
        IF NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'ips autonomous write') THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN false;
END $$;
SELECT ok(pg_temp.writers_gone(), 'the writer that timed out is stopped');
ROLLBACK TO locked;
SELECT is(pg_temp.reported(:c1, 'while the log is locked'), 0::bigint, 'and wrote no entry');
RESET ips.autonomous_timeout;

-- Afterwards reads work and are logged again.
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.client_record(%s, ''after the lock'') -> ''client'' ->> ''host_ref''', :c1)), 'ok:H-1',
          'once the log is free the read works');
SELECT is(pg_temp.reported(:c1, 'after the lock'), 1::bigint, 'and is logged');

SELECT * FROM finish();
ROLLBACK;
