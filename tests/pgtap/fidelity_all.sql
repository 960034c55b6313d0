-- ips.fidelity_all(period_start, period_end): the rows of ips.fidelity for every team the caller
-- may see, computed in one pass (ips.fidelity_computed_teams).  It must give, row for row and
-- byte for byte, what ips.fidelity gives team by team, for the same callers.
BEGIN;
SELECT plan(16);

\ir security_setup.psql
-- Team A (:ta): a specialist, a client engaged 2024-01-15 with an employer contact and a
-- competitive job from 2024-02-01; team B (:tb): a specialist, a client in studies; more below.
SELECT ips.record_contact(:e1, :s_spec, '2024-03-05 10:00+02', 'client', 'in_person', 'community', 90) AS x \gset
SELECT ips.record_contact(:e1, :s_spec, '2024-03-12 10:00+02', 'client', 'in_person', 'community', 60) AS x \gset
SELECT ips.record_team_meeting(:s_spec, '2024-03-06');
SELECT ips.record_employer_contact(:s_spec_b, :emp, '2024-04-02 10:00+02', true) AS x \gset
-- team C: no specialist, one referral closed before engagement
SELECT ips.add_team('Oulu IPS', 'Pohjois-Pohjanmaa') AS tc \gset
SELECT ips.add_client('H-9', 1979) AS c9 \gset
SELECT ips.start_care_relationship(:c9, 'Psykiatria Oulu', '2024-01-02') AS x \gset
SELECT ips.refer(:c9, :tc, '2024-02-01') AS e9 \gset
SELECT ips.transition(:e9, 'closed', '2024-02-20 10:00+02', 'never_engaged') AS x \gset
-- a review of team A for the period, with two ratings
SELECT ips.open_review(:ta, '2024-01-01', '2024-06-30', '2024-08-20') AS rv \gset
SELECT ips.rate(:rv, 'O2', 4, 'joint meeting weekly');
SELECT ips.rate(:rv, 'S3', 5);

-- The rows of ips.fidelity team by team, and of ips.fidelity_all, as text.
CREATE FUNCTION pg_temp.per_team(ps date, pe date) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(format('%s %s', t.team_id, f), E'\n' ORDER BY t.team_id, i.ordinal)
      FROM ips.team t CROSS JOIN LATERAL ips.fidelity(t.team_id, ps, pe) f JOIN ips.fidelity_item i ON i.item = f.item
     WHERE ips.team_visible(t.team_id)     -- the teams the caller may see (issue 13)
$$;
CREATE FUNCTION pg_temp.all_teams(ps date, pe date) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(format('%s %s', a.team_id, (a.item, a.score, a.source, a.measure, a.evidence)), E'\n'
                      ORDER BY a.team_id, i.ordinal)
      FROM ips.fidelity_all(ps, pe) a JOIN ips.fidelity_item i ON i.item = a.item
$$;

SELECT is(pg_temp.all_teams('2024-01-01', '2024-06-30'), pg_temp.per_team('2024-01-01', '2024-06-30'),
          'fidelity_all = ips.fidelity team by team (2024-01-01 .. 2024-06-30)');
SELECT is(pg_temp.all_teams('2024-02-15', '2024-03-31'), pg_temp.per_team('2024-02-15', '2024-03-31'),
          'fidelity_all = ips.fidelity team by team (2024-02-15 .. 2024-03-31)');
SELECT is((SELECT count(*) FROM ips.fidelity_all('2024-01-01', '2024-06-30')),
          25 * (SELECT count(*) FROM ips.team), '25 rows per team');
SELECT is((SELECT string_agg(DISTINCT a.team_id::text, ',') FROM ips.fidelity_all('2024-01-01', '2024-06-30') a
            WHERE a.team_id IN (:ta, :tb, :tc)), concat_ws(',', :ta, :tb, :tc), 'the three teams are there');

-- The comparison can fail: the teams' figures differ.
SELECT isnt((SELECT string_agg(format('%s', (a.item, a.score, a.source, a.measure, a.evidence)), ',' ORDER BY a.item)
               FROM ips.fidelity_all('2024-01-01', '2024-06-30') a WHERE a.team_id = :ta),
            (SELECT string_agg(format('%s', (a.item, a.score, a.source, a.measure, a.evidence)), ',' ORDER BY a.item)
               FROM ips.fidelity_all('2024-01-01', '2024-06-30') a WHERE a.team_id = :tb),
            'teams A and B have different rows');
SELECT is((SELECT string_agg(format('%s %s %s %s', a.team_id = :ta, a.item, coalesce(a.score::text, '-'), a.source), '; ' ORDER BY a.team_id, a.item)
             FROM ips.fidelity_all('2024-01-01', '2024-06-30') a
            WHERE a.team_id IN (:ta, :tb) AND a.item IN ('O2', 'S1', 'V10')),
          't O2 4 rated; t S1 5 computed; t V10 5 computed; f O2 - missing; f S1 5 computed; f V10 - missing',
          'A: O2 rated in its review, one competitive job; B: no review, no job');
SELECT is((SELECT a.evidence ->> 'not_measurable' FROM ips.fidelity_all('2024-01-01', '2024-06-30') a
            WHERE a.team_id = :tc AND a.item = 'S1'), 'the team has no employment specialists', 'C: S1 not measurable');

-- Several teams at once (the engine reads the whole selection) = each team alone.
SELECT is((SELECT string_agg(format('%s', c), E'\n' ORDER BY c.team_id, c.item)
             FROM ips.fidelity_computed_teams(ARRAY[:tb, :ta, :tb]::bigint[], '2024-01-01', '2024-06-30') c),
          (SELECT string_agg(format('%s', (t.id, c.item, c.score, c.measure, c.evidence)), E'\n' ORDER BY t.id, c.item)
             FROM unnest(ARRAY[:ta, :tb]::bigint[]) AS t(id), ips.fidelity_computed(t.id, '2024-01-01', '2024-06-30') c),
          'fidelity_computed_teams of two teams (one given twice) = ips.fidelity_computed of each');

-- The same callers, the same answers: a specialist (row-level security), an analyst and a
-- login without an ips role.
SELECT is(pg_temp.try_as(:'spec', $$SELECT pg_temp.all_teams('2024-01-01', '2024-06-30')$$),
          pg_temp.try_as(:'spec', $$SELECT pg_temp.per_team('2024-01-01', '2024-06-30')$$),
          'a specialist: fidelity_all = ips.fidelity team by team');
SELECT isnt(pg_temp.try_as(:'spec', $$SELECT pg_temp.all_teams('2024-01-01', '2024-06-30')$$),
            'ok:' || pg_temp.all_teams('2024-01-01', '2024-06-30'), 'a specialist sees less than the owner');
SELECT is(pg_temp.try_as(:'an', $$SELECT pg_temp.all_teams('2024-01-01', '2024-06-30')$$),
          pg_temp.try_as(:'an', $$SELECT pg_temp.per_team('2024-01-01', '2024-06-30')$$),
          'an analyst (every team, team-level evidence): fidelity_all = ips.fidelity team by team');
SELECT is(pg_temp.try_as(:'nobody', $$SELECT count(*) FROM ips.fidelity_all('2024-01-01', '2024-06-30')$$),
          pg_temp.try_as(:'nobody', format($$SELECT count(*) FROM ips.fidelity(%s, '2024-01-01', '2024-06-30')$$, :ta)),
          'a login without an ips role: as for ips.fidelity');

-- Errors as ips.fidelity's.
SELECT throws_ok($$SELECT * FROM ips.fidelity_all(NULL, '2024-06-30')$$, '22004', NULL, 'NULL period start');
SELECT throws_ok($$SELECT * FROM ips.fidelity_all('2024-06-30', '2024-01-01')$$, '22023', NULL, 'period end before start');
SELECT throws_ok(format($$SELECT * FROM ips.fidelity_all('2024-01-01', %L)$$, ips.local_date(now()) + 1), '22023', NULL,
                 'period end in the future');
SELECT throws_ok(format($$SELECT * FROM ips.fidelity_computed_teams(ARRAY[%s, 999999999], '2024-01-01', '2024-06-30')$$, :ta),
                 'P0002', 'no team with id 999999999', 'an unknown team among several');

SELECT * FROM finish();
ROLLBACK;
