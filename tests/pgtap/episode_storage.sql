-- How episodes are stored (issue 7, the import's episodes): a change of state
-- among the open states is a HOT update, because no index of ips.episode reads
-- state ("open" is closed_on IS NULL, tied to state by a check); a referral
-- takes its row locks in the caller's transaction, not in a subtransaction
-- (whose locks would turn the episode's next update into a MultiXact).
BEGIN;
SELECT plan(11);

SELECT ips.add_team('Storage team', 'Pohjanmaa') AS team \gset
SELECT ips.add_staff(:team, 'Saga', 'specialist') AS spec \gset
SELECT ips.add_client('storage-1', 1980) AS c1 \gset
SELECT ips.add_client('storage-2', 1985) AS c2 \gset
\o /dev/null
SELECT ips.start_care_relationship(:c1, 'psychiatric_outpatient', '2025-01-01');
\o

-- no index of ips.episode reads state, in its columns, expressions or predicate
SELECT is((SELECT count(*)::int FROM pg_index i
            WHERE i.indrelid = 'ips.episode'::regclass
              AND ((SELECT attnum FROM pg_attribute WHERE attrelid = 'ips.episode'::regclass AND attname = 'state') = ANY (i.indkey::int2[])
                   OR pg_get_expr(i.indpred, i.indrelid) ~ '\mstate\M'
                   OR pg_get_expr(i.indexprs, i.indrelid) ~ '\mstate\M')),
          0, 'no index of ips.episode reads state');

-- the referral's row locks are the transaction's own: the episode row is locked (its
-- history row's foreign key) by this transaction's id, not by a subtransaction's
SELECT ips.refer(:c1, :team, '2026-01-05') AS e1 \gset
SELECT is((SELECT xmax::text FROM ips.episode WHERE episode_id = :e1), pg_current_xact_id()::xid::text,
          'the referral locks its episode in the caller''s transaction (no subtransaction)');

-- changes of state among the open states: every update of the row is HOT
-- (the assignment changes specialist_id, which an index reads: it comes first)
\o /dev/null
SELECT ips.assign_specialist(:e1, :spec, '2026-01-06');
\o
SELECT pg_stat_get_xact_tuples_updated('ips.episode'::regclass) AS upd0,
       pg_stat_get_xact_tuples_hot_updated('ips.episode'::regclass) AS hot0 \gset
\o /dev/null
SELECT ips.transition(:e1, 'engaged', '2026-01-10 10:00+02');
\o
\o /dev/null
SELECT ips.transition(:e1, 'job_search', '2026-02-01 10:00+02');
\o
\o /dev/null
SELECT ips.transition(:e1, 'on_hold', '2026-03-01 10:00+02', 'hospital stay');
\o
\o /dev/null
SELECT ips.transition(:e1, 'job_search', '2026-03-20 10:00+02');
\o
SELECT cmp_ok(pg_stat_get_xact_tuples_updated('ips.episode'::regclass) - :upd0, '>=', 4::bigint,
              'four changes of state updated the episode');
SELECT is(pg_stat_get_xact_tuples_hot_updated('ips.episode'::regclass) - :hot0,
          pg_stat_get_xact_tuples_updated('ips.episode'::regclass) - :upd0,
          'each of those updates is HOT (no new index entries)');

-- one open episode per client, "open" read from closed_on
SELECT throws_ok(format($$SELECT ips.refer(%s, %s, '2026-04-01')$$, :c1, :team), '23505',
                 format('client %s has an open episode already (%s)', :c1, :e1),
                 'a second open episode is refused, naming the open one');
\o /dev/null
SELECT ips.transition(:e1, 'closed', '2026-04-02 10:00+03', 'client_choice');
\o
SELECT ok(ips.refer(:c1, :team, '2026-04-03') > :e1, 'after the closure the client can be referred again');
SELECT ips.refer(:c2, :team, '2026-04-03') AS e2 \gset

-- the check that makes closed_on say "open": with the guard out of the way (a restore, a DBA),
-- an open episode with a closure day, or a closed one without, is still refused
ALTER TABLE ips.episode DISABLE TRIGGER episode_guard;
SELECT throws_ok(format($$UPDATE ips.episode SET closed_on = '2026-04-04' WHERE episode_id = %s$$, :e2), '23514', NULL,
                 'an open episode cannot carry a closure day');
SELECT throws_ok(format($$UPDATE ips.episode SET closed_on = NULL WHERE episode_id = %s$$, :e1), '23514', NULL,
                 'a closed episode cannot lose its closure day');
ALTER TABLE ips.episode ENABLE TRIGGER episode_guard;
SELECT is((SELECT count(*)::int FROM ips.episode WHERE client_id = :c1 AND closed_on IS NULL), 1,
          'the client has one open episode');

-- a query that says "open" as state <> 'closed' still finds its rows through an index
-- (planner told to avoid sequential scans: it falls back to one when no index fits)
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    result text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        result := result || line || E'\n';
    END LOOP;
    RETURN result;
END $$;
SET LOCAL enable_seqscan = off;
SELECT matches(pg_temp.plan_of(format($$SELECT * FROM ips.episode WHERE specialist_id = %s AND state <> 'closed'$$, :spec)),
               'episode_specialist_idx', 'a specialist''s open episodes, written state <> ''closed'', use episode_specialist_idx');
SELECT matches(pg_temp.plan_of(format($$SELECT * FROM ips.episode WHERE team_id = %s AND state <> 'closed'$$, :team)),
               'episode_team_idx', 'a team''s open episodes, written state <> ''closed'', use episode_team_idx');
RESET enable_seqscan;

SELECT * FROM finish();
ROLLBACK;
