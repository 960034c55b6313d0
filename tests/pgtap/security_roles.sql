-- The access matrix: each ips role, a login without one, and each person-level
-- table and API function; reads show which clients' rows are visible, writes
-- which clients' rows could be changed, or the SQLSTATE of the refusal.
BEGIN;
SELECT plan(343);
\ir security_setup.psql

-- Reads: the distinct clients of the visible rows ('none' = a row without a client).
-- Writes: the distinct clients of the rows an UPDATE reached.  (1.1 let staff update
-- their team's consent refusals, the breach of issue 13: refusals are append-only now.)
CREATE TEMP TABLE matrix (role text, tab text, reads text, writes text);
INSERT INTO matrix
SELECT r.role, t.tab, r.vals[t.i * 2 - 1], r.vals[t.i * 2]
  FROM unnest('{client,care_relationship,consent,consent_refusal,client_intake,episode,episode_state_history,
                specialist_assignment,contact,employer_contact,job,study,change_log,access_log}'::text[])
       WITH ORDINALITY AS t(tab, i),
  (VALUES
    --               client     care_rel   consent    refusal    intake     episode    history    assign     contact    emp_cont   job        study      chg_log        acc_log
    ('spec',   '{A:C,A:C,       A,A,       A,A,       -,42501,   C,42501,   A,A,       A,42501,   A,A,       A,A,       A,A,       A,A,       -,-,       42501,42501,   42501,42501}'::text[]),
    ('sup',    '{A:C,A:C,       A,A,       A,A,       -,42501,   C,42501,   A,A,       A,42501,   A,A,       A,A,       A,A,       A,A,       -,-,       42501,42501,   42501,42501}'),
    ('spec_b', '{B,B,           B,B,       -,-,       B,42501,   -,42501,   B,B,       B,42501,   B,B,       B,B,       N,N,       -,-,       B,B,       42501,42501,   42501,42501}'),
    ('clin',   '{A,42501,       A,42501,   A,42501,   -,42501,   -,42501,   A,42501,   A,42501,   A,42501,   A,42501,   A,42501,   A,42501,   -,42501,   42501,42501,   42501,42501}'),
    ('an',     '{42501,42501,   42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501}'),
    ('adm',    '{42501,42501,   42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,ALL,42501,  -,42501}'),
    ('nobody', '{42501,42501,   42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501,42501}')
  ) AS r(role, vals);

-- The expected text of a cell: A, B, C = clients :c1, :c2, :c3; N = no client; ALL = every client.
CREATE TEMP TABLE ids AS SELECT :'c1'::text AS a, :'c2'::text AS b, :'c3'::text AS c;
CREATE FUNCTION pg_temp.cell(spec text) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN spec ~ '^[0-9]{5}$' THEN spec
                WHEN spec = '-' THEN 'ok:-'
                WHEN spec = 'ALL' THEN 'ok:' || (SELECT string_agg(x, ',' ORDER BY x)
                                                  FROM ids, unnest(ARRAY[ids.a, ids.b, ids.c, 'none']) x)
                ELSE 'ok:' || (SELECT string_agg(v, ',' ORDER BY v)
                                 FROM (SELECT CASE p WHEN 'A' THEN ids.a WHEN 'B' THEN ids.b
                                                     WHEN 'C' THEN ids.c ELSE 'none' END AS v
                                         FROM ids, unnest(string_to_array(spec, ':')) p) x) END
$$;

SELECT is(pg_temp.try_as(:'tag' || '_' || m.role,
                         format('SELECT string_agg(DISTINCT coalesce(client_id::text, ''none''), '','' ORDER BY coalesce(client_id::text, ''none'')) FROM ips.%I', m.tab)),
          pg_temp.cell(m.reads), format('%s reads ips.%s', m.role, m.tab))
  FROM matrix m ORDER BY m.role, m.tab;

SELECT is(pg_temp.try_as(:'tag' || '_' || m.role,
                         format('WITH u AS (UPDATE ips.%I SET %I = %2$I RETURNING client_id) '
                                'SELECT string_agg(DISTINCT coalesce(client_id::text, ''none''), '','' ORDER BY coalesce(client_id::text, ''none'')) FROM u',
                                m.tab, CASE m.tab WHEN 'client' THEN 'municipality' ELSE 'client_id' END)),   -- staff update a client's birth year and municipality only
          pg_temp.cell(m.writes), format('%s updates ips.%s', m.role, m.tab))
  FROM matrix m ORDER BY m.role, m.tab;

-- DELETE is refused to every role on every person-level table (facts are corrected, not deleted).
SELECT is(pg_temp.try_as(:'tag' || '_' || r, format('DELETE FROM ips.%I', t)), '42501', format('%s deletes ips.%s', r, t))
  FROM unnest('{spec,sup,clin}'::text[]) r, unnest('{client,episode,contact,consent}'::text[]) t;

-- The API functions.  Cells: 'ok:' result, or the SQLSTATE.
CREATE TEMP TABLE calls (name text, q text);
INSERT INTO calls VALUES
  ('refer c3 to team A',        format('SELECT ips.refer(%s, %s, ''2024-03-01'') IS NOT NULL', :c3, :ta)),
  ('add_client',                'SELECT ips.add_client(''H-new'') IS NOT NULL'),
  ('give_consent c1',           format('SELECT ips.give_consent(%s, ''employer_disclosure'', ''2024-03-01'') IS NOT NULL', :c1)),
  ('withdraw_consent c1',       format('SELECT ips.withdraw_consent(%s, ''share_with_care'', ''2024-03-01'') IS NOT NULL', :c1)),
  ('refuse_consent c1',         format('SELECT ips.refuse_consent(%s, ''share_with_care'', ''2024-03-01'') IS NOT NULL', :c1)),
  ('transition e1',             format('SELECT ips.transition(%s, ''on_hold'', ''2024-03-01 10:00+02'')', :e1)),
  ('record_contact client e1',  format('SELECT ips.record_contact(%s, %s, ''2024-03-01 10:00+02'', ''client'') IS NOT NULL', :e1, :s_spec)),
  ('record_contact care e1',    format('SELECT ips.record_contact(%s, ips.current_staff(), ''2024-03-01 10:00+02'', ''care_team'') IS NOT NULL', :e1)),
  ('record_contact client e2',  format('SELECT ips.record_contact(%s, %s, ''2024-03-01 10:00+02'', ''client'') IS NOT NULL', :e2, :s_spec_b)),
  ('start_job e1',              format('SELECT ips.start_job(%s, %s, ''2024-03-01'') IS NOT NULL', :e1, :emp)),
  ('client_record c1',          format('SELECT ips.client_record(%s, ''matrix'') ->> ''client''', :c1)),
  ('client_record c2',          format('SELECT ips.client_record(%s, ''matrix'') ->> ''client''', :c2)),
  ('access_report c1',          format('SELECT count(*) FROM ips.access_report(%s)', :c1)),
  ('verify_change_log',         'SELECT count(*) FROM ips.verify_change_log()'),
  ('verify_access_log',         'SELECT count(*) FROM ips.verify_access_log()'),
  ('create_roles',              'SELECT ips.create_roles() IS NOT NULL'),
  ('caseload view',             'SELECT count(*) FROM ips.caseload');

CREATE TEMP TABLE expect (role text, results text[]);
-- The report of c1 (sup, after clin, spec and sup itself read c1 inside try_as, whose
-- subtransaction rolls back): the three reads stay logged (the access log is written
-- in a transaction of its own, docs/access-log.md); adm asks before anyone read.
INSERT INTO expect VALUES
  --         refer   add    give   withdr refuse trans    rc_cl  rc_care rc_e2  job    rec_c1  rec_c2 report verify_c verify_a roles  caseload
  ('spec',   '{ok:true, ok:true,  ok:true,  ok:true,  ok:true,  ok:on_hold, ok:true, ok:true, P0002, ok:true, CLIENT, P0002, 42501, 42501, 42501, 42501, ok:2}'),
  ('sup',    '{ok:true, ok:true,  ok:true,  ok:true,  ok:true,  ok:on_hold, ok:true, ok:true, P0002, ok:true, CLIENT, P0002, ok:3,  42501, 42501, 42501, ok:2}'),
  ('spec_b', '{P0002,ok:true,  P0002, P0002, P0002, P0002, P0002, P0002, ok:true,  P0002, P0002,  CLIENT2,42501, 42501, 42501, 42501, ok:2}'),
  ('clin',   '{P0002,42501, 42501, 42501, ok:true,  42501, 42501, ok:true,   P0002, 42501, CLIENT, P0002, 42501, 42501, 42501, 42501, ok:2}'),
  ('an',     '{42501,42501, 42501, 42501, 42501, 42501, 42501, 42501,  42501, 42501, 42501,  42501, 42501, 42501, 42501, 42501, ok:2}'),
  ('adm',    '{42501,42501, 42501, 42501, ok:true,  42501, 42501, 22004,  42501, 42501, 42501,  42501, ok:0,  ok:0,  ok:0,  42501, ok:2}'),
  ('nobody', '{42501,42501, 42501, 42501, 42501, 42501, 42501, 42501,  42501, 42501, 42501,  42501, 42501, 42501, 42501, 42501, 42501}');

SELECT is(pg_temp.try_as(:'tag' || '_' || e.role, c.q),
          CASE e.results[c.n] WHEN 'CLIENT' THEN 'ok:' || jsonb_build_object('client_id', :c1, 'host_ref', 'H-1', 'birth_year', 1990, 'municipality', NULL)::text
                              WHEN 'CLIENT2' THEN 'ok:' || jsonb_build_object('client_id', :c2, 'host_ref', 'H-2', 'birth_year', 1985, 'municipality', NULL)::text
                              ELSE e.results[c.n] END,
          format('%s calls %s', e.role, c.name))
  FROM expect e, (SELECT *, row_number() OVER () AS n FROM calls) c
 ORDER BY e.role, c.n;

-- Analysts: the suppressed aggregate view, not the unsuppressed counts.
SELECT is(pg_temp.try_as(:'tag' || '_an', 'SELECT count(*) >= 0 FROM ips.outcomes_quarterly'), 'ok:true',
          'an analyst reads ips.outcomes_quarterly');
SELECT is(pg_temp.try_as(:'tag' || '_an', 'SELECT count(*) FROM ips.outcomes_quarterly_counts'), '42501',
          'but not the unsuppressed ips.outcomes_quarterly_counts');
SELECT is(pg_temp.try_as(:'tag' || '_an', 'SELECT string_agg(DISTINCT small_cell_threshold::text, '','') FROM ips.outcomes_quarterly_for(1)'),
          'ok:' || ips.setting_value('small_cell_threshold'),
          'asking for less suppression still gets the analysts'' threshold');

-- PUBLIC has no rights on anything of ips.
SELECT is((SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a
            WHERE c.relnamespace = 'ips'::regnamespace AND a.grantee = 0), 0::bigint,
          'PUBLIC has no privilege on any table, view or sequence of ips');
SELECT is((SELECT count(*) FROM pg_class c
            WHERE c.relnamespace = 'ips'::regnamespace AND c.relkind IN ('r', 'v', 'S') AND c.relacl IS NULL), 0::bigint,
          'no relation of ips keeps the default privileges');
SELECT is((SELECT array_agg(p.oid::regprocedure::text) FROM pg_proc p
            WHERE p.pronamespace = 'ips'::regnamespace
              AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))), NULL,
          'PUBLIC may execute no function of ips');
SELECT ok(NOT has_schema_privilege('public', 'ips', 'USAGE'), 'PUBLIC has no USAGE on schema ips');
SELECT ok(NOT has_type_privilege('public', 'ips.business_id', 'USAGE'), 'PUBLIC has no USAGE on type ips.business_id');

-- Every table with a client_id has row-level security and a change-log trigger.
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'ips'::regnamespace AND c.relkind = 'r' AND NOT c.relrowsecurity
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'client_id')
              AND c.relname NOT IN ('change_log', 'access_log')), NULL,
          'every person-level table has row-level security');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'ips'::regnamespace AND c.relkind = 'r'
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'client_id')
              AND c.relname NOT IN ('change_log', 'access_log')
              AND (SELECT count(*) FROM pg_trigger t
                    WHERE t.tgrelid = c.oid AND t.tgfoid = 'ips.change_log_row()'::regprocedure
                      AND t.tgname IN ('zz_change_log_insert', 'zz_change_log_update', 'zz_change_log_delete')
                      AND t.tgtype & 1 = 0                                       -- FOR EACH STATEMENT
                      AND coalesce(t.tgnewtable, t.tgoldtable) IS NOT NULL) <> 3), NULL,
          'every person-level table has the three change-log triggers (per statement, with transition tables)');

-- The policies are cheap: the helper runs once per statement (an InitPlan), not per row.
CREATE FUNCTION pg_temp.plan_of(r name, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    result text := '';
BEGIN
    SET LOCAL enable_seqscan = off;
    EXECUTE format('SET LOCAL ROLE %I', r);
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        result := result || line || E'\n';
    END LOOP;
    RESET ROLE;
    RETURN result;
END $$;
SELECT ok(p ~ 'InitPlan' AND p !~ 'SubPlan', 'specialist: ips.contact is filtered with one InitPlan per statement')
  FROM pg_temp.plan_of(:'spec', 'SELECT * FROM ips.contact') p;
SELECT ok(p ~ 'InitPlan' AND p !~ 'SubPlan', 'clinician: ips.episode is filtered with one InitPlan per statement')
  FROM pg_temp.plan_of(:'clin', 'SELECT * FROM ips.episode') p;
SELECT ok(p ~ 'Index Cond: .*episode_id = ANY', 'specialist: the team''s episodes are looked up by index')
  FROM pg_temp.plan_of(:'spec', 'SELECT * FROM ips.contact WHERE at > ''2024-01-01''') p;

-- create_roles() is idempotent and keeps the grants.
SELECT lives_ok('SELECT ips.create_roles(); SELECT ips.create_roles()', 'create_roles() runs again');
SELECT is(pg_temp.try_as(:'spec', format('SELECT count(*) FROM ips.episode WHERE client_id = %s', :c1)), 'ok:1',
          'after create_roles() the specialist still sees the team''s episode');
SELECT is((SELECT array_agg(rolname::text ORDER BY rolname) FROM pg_roles
            WHERE rolname IN ('ips_admin', 'ips_supervisor', 'ips_specialist', 'ips_clinician', 'ips_analyst') AND NOT rolcanlogin),
          '{ips_admin,ips_analyst,ips_clinician,ips_specialist,ips_supervisor}', 'the five group roles exist, NOLOGIN');

SELECT * FROM finish();
ROLLBACK;
