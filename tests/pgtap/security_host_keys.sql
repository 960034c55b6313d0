-- Issue 13 item 2, host keys: ips.client.host_ref is unique in the whole database, so
-- in 1.1 ips.add_client(<a key another team registered>) answered 23505 and a new key a
-- client id, and so did an UPDATE of host_ref: an existence oracle on host keys.  Now
-- ips.add_client() of a registered key registers the caller's team for that client and
-- answers as for a new key; staff never change a host key (42501 for every value); a
-- direct INSERT is refused to staff for every key.  What the registering team then
-- sees is the client-level record, not the other teams' episodes (docs/security.md).
BEGIN;
SELECT plan(30);
\ir security_setup.psql

-- answer(role, query): what the role is told, rolled back: 'ok' (a SELECT), 'ok:<rows>'
-- (other statements), or the SQLSTATE and the message with keys and numbers masked.
CREATE FUNCTION pg_temp.answer(r name, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    result text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    BEGIN
        EXECUTE q;
        GET DIAGNOSTICS n = ROW_COUNT;
        result := CASE WHEN q ~* '^\s*SELECT' THEN 'ok' ELSE 'ok:' || n END;
        RAISE SQLSTATE 'TAPOK';
    EXCEPTION
        WHEN SQLSTATE 'TAPOK' THEN NULL;
        WHEN OTHERS THEN result := SQLSTATE || ' ' || regexp_replace(SQLERRM, '"[^"]*"|[0-9]+', 'X', 'g');
    END;
    RESET ROLE;
    RETURN result;
END $$;

-- then_as(role, q1, q2): q1 then q2 as the role, rolled back; the first column of q2's first row.
CREATE FUNCTION pg_temp.then_as(r name, q1 text, q2 text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
    result text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    BEGIN
        EXECUTE q1;
        EXECUTE q2 INTO v;
        result := 'ok:' || coalesce(v, '-');
        RAISE SQLSTATE 'TAPOK';
    EXCEPTION
        WHEN SQLSTATE 'TAPOK' THEN NULL;
        WHEN OTHERS THEN result := SQLSTATE;
    END;
    RESET ROLE;
    RETURN result;
END $$;

-- team B registers H-5 (born 1980, no municipality); its care relationship, a consent and a
-- refusal; H-2 (:c2) has an open episode (:e2) in team B (security_setup.psql)
SELECT pg_temp.do_as(:'spec_b', 'SELECT ips.add_client(''H-5'', 1980)') AS c5 \gset
SELECT ips.start_care_relationship(:c5, 'Psykiatria Kuopio', '2024-01-02') AS cr5 \gset
SELECT ips.give_consent(:c5, 'employer_disclosure', '2024-01-05') AS k5 \gset
SELECT ips.refuse_consent(:c5, 'family_contact', '2024-01-06') AS rf5 \gset

------------------------------------------------------------------------------
-- 1. ips.add_client: a key another team registered answers like a new key.
------------------------------------------------------------------------------
SELECT is(pg_temp.answer(:'spec', 'SELECT ips.add_client(''H-5'')'), 'ok',
          'team A specialist: ips.add_client(<team B''s key>) succeeds (1.1: 23505)');
SELECT is(pg_temp.answer(:'spec', 'SELECT ips.add_client(''H-5'')'), pg_temp.answer(:'spec', 'SELECT ips.add_client(''H-never-seen'')'),
          'the same answer as for a key nobody registered');
SELECT is(pg_temp.answer(:'sup', 'SELECT ips.add_client(''H-2'', 1985, ''Kuopio'')'), pg_temp.answer(:'sup', 'SELECT ips.add_client(''H-never-seen'', 1985, ''Kuopio'')'),
          'a supervisor, a key whose client has an open episode in team B: the same answer');
SELECT is(pg_temp.then_as(:'spec', 'SELECT 1', 'SELECT pg_typeof(ips.add_client(''H-5''))::text'), 'ok:bigint',
          'the same result shape: one bigint');
-- every argument is checked before either path, with the same SQLSTATE and message
SELECT is(pg_temp.answer(:'spec', 'SELECT ips.add_client(''H-5'', 1899)'), pg_temp.answer(:'spec', 'SELECT ips.add_client(''H-never-seen'', 1899)'),
          'a birth year out of range: the same answer for both keys');
SELECT is(pg_temp.answer(:'spec', 'SELECT ips.add_client(''H-5'', 1899)'), '22003 birth year X is out of range', 'namely 22003');
SELECT is(pg_temp.answer(:'spec', format('SELECT ips.add_client(''H-5'', NULL, %L)', repeat('m', 201))),
          pg_temp.answer(:'spec', format('SELECT ips.add_client(''H-never-seen'', NULL, %L)', repeat('m', 201))),
          'a municipality over 200 characters: the same answer for both keys (checked although H-5 has none to complete)');
SELECT is(pg_temp.answer(:'spec', format('SELECT ips.add_client(''H-5'', NULL, %L)', repeat('m', 201))),
          '22001 municipality of ips.client is X characters long, more than X', 'namely 22001');
SELECT is(pg_temp.answer(:'spec', 'SELECT ips.add_client(NULL)'), '22004 host_ref must not be NULL', 'a NULL key: 22004');

------------------------------------------------------------------------------
-- 2. Staff never change a host key, whatever the new key; INSERT is refused for every key.
------------------------------------------------------------------------------
SELECT is(pg_temp.answer(:'spec', format('UPDATE ips.client SET host_ref = ''H-5'' WHERE client_id = %s', :c3)),
          pg_temp.answer(:'spec', format('UPDATE ips.client SET host_ref = ''H-never-seen'' WHERE client_id = %s', :c3)),
          'UPDATE of an own client''s host_ref to team B''s key answers like a free key (1.1: 23505 / 1 row)');
SELECT is(pg_temp.answer(:'spec', format('UPDATE ips.client SET host_ref = ''H-never-seen'' WHERE client_id = %s', :c3)),
          '42501 permission denied for table client', 'namely 42501, before any row is read');
SELECT is(pg_temp.answer(:'sup', format('UPDATE ips.client SET host_ref = ''H-5'' WHERE client_id = %s', :c3)),
          '42501 permission denied for table client', 'a supervisor: the same');
SELECT is(pg_temp.answer(:'spec', format('UPDATE ips.client SET birth_year = 1991 WHERE client_id = %s', :c3)), 'ok:1',
          'a client''s birth year (and municipality) stay correctable by the team');
SELECT is(pg_temp.answer(:'spec', 'INSERT INTO ips.client (host_ref) VALUES (''H-5'')'),
          pg_temp.answer(:'spec', 'INSERT INTO ips.client (host_ref) VALUES (''H-never-seen'')'),
          'a direct INSERT INTO ips.client: the same answer for both keys');
SELECT is(pg_temp.answer(:'spec', 'INSERT INTO ips.client (host_ref) VALUES (''H-5'') ON CONFLICT (host_ref) DO NOTHING'),
          '42501 permission denied for table client', 'also with ON CONFLICT DO NOTHING: 42501');
SELECT is(pg_temp.answer(:'spec', 'INSERT INTO ips.client (host_ref) VALUES (''H-never-seen'') ON CONFLICT (host_ref) DO NOTHING'),
          '42501 permission denied for table client', 'for a free key as well');

------------------------------------------------------------------------------
-- 3. The registration: team A now has a client relationship with the client, logged.
------------------------------------------------------------------------------
SELECT is(pg_temp.do_as(:'spec', 'SELECT ips.add_client(''H-5'', 1975, ''Vaasa'')')::bigint, :c5::bigint,
          'ips.add_client(<team B''s key>) gives the existing client id');
SELECT is((SELECT array_agg(team_id ORDER BY team_id) FROM ips.client_intake WHERE client_id = :c5), ARRAY[:ta, :tb]::bigint[],
          'both teams are recorded in ips.client_intake');
SELECT is((SELECT count(*)::int FROM ips.change_log
            WHERE table_name = 'ips.client_intake' AND operation = 'INSERT' AND client_id = :c5 AND db_role = :'spec'),
          1, 'the registration is in the change log, in the specialist''s name');
SELECT is((SELECT birth_year || ' ' || municipality FROM ips.client WHERE client_id = :c5), '1980 Vaasa',
          'the recorded birth year is kept; the missing municipality is completed');
SELECT is(pg_temp.do_as(:'sup', 'SELECT ips.add_client(''H-5'')')::bigint, :c5::bigint, 'registering again: the same id');
SELECT is((SELECT count(*)::int FROM ips.client_intake WHERE client_id = :c5 AND team_id = :ta), 1, 'and still one row for team A');

-- what team A sees now: the client-level record (Act 703/2023: the client relationship)
SELECT is(pg_temp.then_as(:'spec', 'SELECT 1',
                          format($$SELECT concat_ws(',', (SELECT count(*) FROM ips.client WHERE client_id = %1$s),
                                                         (SELECT count(*) FROM ips.care_relationship WHERE client_id = %1$s),
                                                         (SELECT count(*) FROM ips.consent WHERE client_id = %1$s),
                                                         (SELECT count(*) FROM ips.consent_refusal WHERE client_id = %1$s))$$, :c5)),
          'ok:1,1,1,1', 'team A reads the client, its care relationship, consent and refusal');
SELECT is(pg_temp.then_as(:'spec', 'SELECT 1', format('SELECT string_agg(team_id::text, '','') FROM ips.client_intake WHERE client_id = %s', :c5)),
          'ok:' || :ta, 'but of the registrations only its own (not which other team, nor who)');
SELECT is(pg_temp.then_as(:'spec', 'SELECT ips.add_client(''H-2'')',
                          format($$SELECT concat_ws(',', (SELECT count(*) FROM ips.client WHERE client_id = %s),
                                                         (SELECT count(*) FROM ips.episode WHERE client_id = %s),
                                                         (SELECT count(*) FROM ips.contact WHERE episode_id = %s),
                                                         (SELECT count(*) FROM ips.episode_state_history WHERE episode_id = %s))$$, :c2, :c2, :e2, :e2)),
          'ok:1,0,0,0', 'another team''s episode, its contacts and history stay hidden after the registration');
SELECT is(pg_temp.then_as(:'spec', 'SELECT ips.add_client(''H-2'')', format('SELECT ips.client_record(%s, ''host key test'') #>> ''{episode}''', :c2)),
          'ok:-', 'ips.client_record() shows no episode of team B');
SELECT is(pg_temp.then_as(:'spec', 'SELECT 1', format('SELECT ips.refer(%s, %s, ''2024-03-01'') IS NOT NULL', :c5, :ta)), 'ok:true',
          'team A refers the client it registered');
SELECT is(pg_temp.then_as(:'spec', 'SELECT ips.add_client(''H-2'')', format('SELECT ips.refer(%s, %s, ''2024-03-01'')', :c2, :ta)), '23505',
          'a client with an open episode in team B: one open IPS episode per client (the registered team learns that much)');

------------------------------------------------------------------------------
-- 4. Before registering, nothing (as before).
------------------------------------------------------------------------------
SELECT is(pg_temp.then_as(:'spec_b', 'SELECT 1', format('SELECT count(*) FROM ips.client WHERE client_id = %s', :c3)), 'ok:0',
          'team B does not see team A''s client H-3');
SELECT is(pg_temp.answer(:'spec_b', format('SELECT ips.refer(%s, %s, ''2024-03-01'')', :c3, :tb)),
          pg_temp.answer(:'spec_b', format('SELECT ips.refer(%s, %s, ''2024-03-01'')', (SELECT max(client_id) + 1000 FROM ips.client), :tb)),
          'and its referral of H-3 answers like one of no client');

SELECT * FROM finish();
ROLLBACK;
