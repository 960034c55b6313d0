-- Issue 13: each breach seen in 1.1, run as the role named, refused or harmless.
-- In 1.1 every one of these statements succeeded (or answered differently for a
-- client that exists and one that does not); see docs/security.md.
BEGIN;
SELECT plan(61);
\ir security_setup.psql

-- try_then(r1, q1, r2, q2): q1 as r1, then q2 as r2, in one subtransaction that is
-- rolled back; for each 'ok:<first column>' (a SELECT), 'ok:<rows> rows' (other
-- statements) or the SQLSTATE, joined by ' / '.
CREATE FUNCTION pg_temp.try_then(r1 name, q1 text, r2 name, q2 text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
    n bigint;
    a text;
    b text;
    result text;
BEGIN
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', r1);
        BEGIN
            IF q1 ~* '^\s*(SELECT|WITH)' THEN
                EXECUTE q1 INTO v;
                a := 'ok:' || coalesce(v, '-');
            ELSE
                EXECUTE q1;
                GET DIAGNOSTICS n = ROW_COUNT;
                a := 'ok:' || n || ' rows';
            END IF;
        EXCEPTION WHEN OTHERS THEN a := SQLSTATE;
        END;
        EXECUTE format('SET LOCAL ROLE %I', r2);
        BEGIN
            IF q2 ~* '^\s*(SELECT|WITH)' THEN
                EXECUTE q2 INTO v;
                b := 'ok:' || coalesce(v, '-');
            ELSE
                EXECUTE q2;
                GET DIAGNOSTICS n = ROW_COUNT;
                b := 'ok:' || n || ' rows';
            END IF;
        EXCEPTION WHEN OTHERS THEN b := SQLSTATE;
        END;
        result := a || ' / ' || b;
        RAISE SQLSTATE 'TAPOK';
    EXCEPTION WHEN SQLSTATE 'TAPOK' THEN NULL;
    END;
    RESET ROLE;
    RETURN result;
END $$;

-- err_as(role, query): the SQLSTATE and message of the query run as the role (ids
-- written as N), 'ok:<rows>' when it succeeds; rolled back.
CREATE FUNCTION pg_temp.err_as(r name, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    result text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    BEGIN
        EXECUTE q;
        GET DIAGNOSTICS n = ROW_COUNT;
        result := 'ok:' || n;
        RAISE SQLSTATE 'TAPOK';
    EXCEPTION
        WHEN SQLSTATE 'TAPOK' THEN NULL;
        WHEN OTHERS THEN result := SQLSTATE || ' ' || regexp_replace(SQLERRM, '[0-9]+', 'N', 'g');
    END;
    RESET ROLE;
    RETURN result;
END $$;

-- a client of team B without an episode (registered by team B), a second specialist of team A
SELECT pg_temp.do_as(:'spec_b', 'SELECT ips.add_client(''H-5'', 1980)') AS c5 \gset
SELECT ips.start_care_relationship(:c5, 'Psykiatria Kuopio', '2024-01-02') AS cr5 \gset
SELECT ips.add_staff(:ta, 'Aino', 'specialist') AS s_aino \gset
SELECT max(client_id) + 1000 AS no_client FROM ips.client \gset
SELECT max(episode_id) + 1000 AS no_episode FROM ips.episode \gset

------------------------------------------------------------------------------
-- 1. A specialist reads another team's client by creating an episode for it.
------------------------------------------------------------------------------
-- the statement of the issue, then what it would reveal, in one go
SELECT is(pg_temp.try_then(:'spec', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01')$$, :c5, :ta),
                           :'spec', format($$SELECT (SELECT count(*) FROM ips.client WHERE client_id = %s) || ','
                                              || (SELECT count(*) FROM ips.care_relationship WHERE client_id = %s)$$, :c5, :c5)),
          '42501 / ok:0,0',
          'team A specialist: INSERT INTO ips.episode for team B''s client is refused; ips.client and ips.care_relationship still hide it');
SELECT is(pg_temp.try_then(:'spec', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01')$$, :c5, :ta),
                           :'spec', format($$SELECT ips.client_record(%s, 'breach test') IS NOT NULL$$, :c5)),
          '42501 / P0002', 'and ips.client_record() of that client still answers P0002');
SELECT is(pg_temp.try_as(:'spec', format('SELECT ips.refer(%s, %s, ''2026-12-01'')', :c5, :ta)), 'P0002',
          'ips.refer() of that client answers P0002, as in 1.1');
SELECT is(pg_temp.try_as(:'sup', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01')$$, :c5, :ta)),
          '42501', 'a supervisor of team A: refused too');
-- the own team's registered client may be referred directly
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01') RETURNING 'made'$$, :c3, :ta)),
          'ok:made', 'a client registered by the own team: the direct INSERT is allowed (as ips.refer)');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01')$$, :c3, :tb)),
          '42501', 'but not into another team');

------------------------------------------------------------------------------
-- 2. No existence oracle: another team's client or episode answers like none.
------------------------------------------------------------------------------
SELECT is(pg_temp.err_as(:'spec', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01')$$, :c2, :ta)),
          pg_temp.err_as(:'spec', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01')$$, :no_client, :ta)),
          'episode INSERT: a client with an open episode in team B answers like no client (no unique violation)');
SELECT is(pg_temp.err_as(:'spec', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01')$$, :c5, :ta)),
          pg_temp.err_as(:'spec', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01')$$, :no_client, :ta)),
          'episode INSERT: team B''s client without an episode answers like no client (no success, no foreign-key error)');
SELECT is(pg_temp.err_as(:'spec', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01') ON CONFLICT DO NOTHING$$, :c2, :ta)),
          pg_temp.err_as(:'spec', format($$INSERT INTO ips.episode (client_id, team_id, referred_on) VALUES (%s, %s, '2026-12-01') ON CONFLICT DO NOTHING$$, :no_client, :ta)),
          'episode INSERT ... ON CONFLICT DO NOTHING: the same answer');
SELECT is(pg_temp.err_as(:'spec', format($$INSERT INTO ips.care_relationship (client_id, unit, started_on) VALUES (%s, 'X', '2026-12-01')$$, :c2)),
          pg_temp.err_as(:'spec', format($$INSERT INTO ips.care_relationship (client_id, unit, started_on) VALUES (%s, 'X', '2026-12-01')$$, :no_client)),
          'care relationship INSERT: the same answer');
SELECT is(pg_temp.err_as(:'spec', format($$INSERT INTO ips.consent (client_id, scope, given_on) VALUES (%s, 'share_with_care', '2026-12-01')$$, :c2)),
          pg_temp.err_as(:'spec', format($$INSERT INTO ips.consent (client_id, scope, given_on) VALUES (%s, 'share_with_care', '2026-12-01')$$, :no_client)),
          'consent INSERT: the same answer');
SELECT is(pg_temp.err_as(:'spec', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (%s, %s, '2026-12-01 10:00+02', 'client')$$, :e2, :s_spec)),
          pg_temp.err_as(:'spec', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (%s, %s, '2026-12-01 10:00+02', 'client')$$, :no_episode, :s_spec)),
          'contact INSERT: team B''s episode answers like no episode');
SELECT is(pg_temp.err_as(:'spec', format($$INSERT INTO ips.job (episode_id, employer_id, starts_on) VALUES (%s, %s, '2026-12-01')$$, :e2, :emp)),
          pg_temp.err_as(:'spec', format($$INSERT INTO ips.job (episode_id, employer_id, starts_on) VALUES (%s, %s, '2026-12-01')$$, :no_episode, :emp)),
          'job INSERT: the same answer');
SELECT is(pg_temp.err_as(:'spec', format($$INSERT INTO ips.specialist_assignment (episode_id, staff_id, from_on) VALUES (%s, %s, '2026-12-01')$$, :e2, :s_spec)),
          pg_temp.err_as(:'spec', format($$INSERT INTO ips.specialist_assignment (episode_id, staff_id, from_on) VALUES (%s, %s, '2026-12-01')$$, :no_episode, :s_spec)),
          'specialist assignment INSERT: the same answer');
SELECT is(pg_temp.err_as(:'spec', format($$UPDATE ips.episode SET referral_source = 'x' WHERE episode_id = %s$$, :e2)),
          pg_temp.err_as(:'spec', format($$UPDATE ips.episode SET referral_source = 'x' WHERE episode_id = %s$$, :no_episode)),
          'episode UPDATE: the same answer (no row)');
SELECT is(pg_temp.err_as(:'spec', format($$UPDATE ips.client SET municipality = 'x' WHERE client_id = %s$$, :c2)),
          pg_temp.err_as(:'spec', format($$UPDATE ips.client SET municipality = 'x' WHERE client_id = %s$$, :no_client)),
          'client UPDATE: the same answer (no row)');
SELECT is(pg_temp.err_as(:'clin', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (%s, %s, '2026-12-01 10:00+02', 'care_team')$$, :e2, :s_clin)),
          pg_temp.err_as(:'clin', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (%s, %s, '2026-12-01 10:00+02', 'care_team')$$, :no_episode, :s_clin)),
          'clinician contact INSERT: an episode not shared answers like no episode');

------------------------------------------------------------------------------
-- 3. Forged attribution: contacts, employer contacts, meetings in the caller's own name.
------------------------------------------------------------------------------
SELECT is(pg_temp.try_as(:'spec', format($$SELECT ips.record_contact(%s, %s, '2024-03-01 10:00+02', 'client')$$, :e1, :s_spec_b)),
          '42501', 'ips.record_contact(e, <other team''s specialist>) is refused');
SELECT is(pg_temp.try_as(:'spec', format($$SELECT ips.record_contact(%s, %s, '2024-03-01 10:00+02', 'client')$$, :e1, :s_aino)),
          '42501', 'ips.record_contact(e, <a colleague of the own team>) is refused');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (%s, %s, '2024-03-01 10:00+02', 'client')$$, :e1, :s_spec_b)),
          '42501', 'a direct INSERT INTO ips.contact with a foreign staff_id is refused');
SELECT is(pg_temp.try_as(:'spec', format($$UPDATE ips.contact SET staff_id = %s WHERE contact_id = %s RETURNING 'moved'$$, :s_aino, :ct1)),
          '42501', 'an own contact is not re-attributed to a colleague');
SELECT is(pg_temp.try_as(:'spec', format($$SELECT ips.record_contact(%s, %s, '2024-03-01 10:00+02', 'client') IS NOT NULL$$, :e1, :s_spec)),
          'ok:true', 'in the own name: recorded');
SELECT is(pg_temp.try_as(:'sup', format($$SELECT ips.record_contact(%s, %s, '2024-03-01 10:00+02', 'client') IS NOT NULL$$, :e1, :s_aino)),
          'ok:true', 'a supervisor records a contact for a specialist of the own team');
SELECT is(pg_temp.try_as(:'sup', format($$SELECT ips.record_contact(%s, %s, '2024-03-01 10:00+02', 'client')$$, :e1, :s_spec_b)),
          '42501', 'but not for another team''s specialist');
SELECT is(pg_temp.try_as(:'spec', format($$SELECT ips.record_employer_contact(%s, %s, '2024-03-01 10:00+02')$$, :s_aino, :emp)),
          '42501', 'an employer contact in a colleague''s name is refused');
SELECT is(pg_temp.try_as(:'spec', format($$SELECT ips.record_employer_contact(%s, %s, '2024-03-01 10:00+02')$$, :s_spec_b, :emp)),
          '42501', 'an employer contact in another team''s specialist''s name is refused');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.employer_contact (staff_id, employer_id, at, client_id) VALUES (%s, %s, '2024-03-01 10:00+02', %s)$$, :s_spec, :emp, :c2)),
          '42501', 'an employer contact naming another team''s client without its episode is refused');
SELECT is(pg_temp.try_as(:'sup', format($$SELECT ips.record_employer_contact(%s, %s, '2024-03-01 10:00+02') IS NOT NULL$$, :s_aino, :emp)),
          'ok:true', 'a supervisor records an employer contact for a specialist of the own team');
SELECT is(pg_temp.try_as(:'spec', format($$SELECT ips.record_team_meeting(%s, '2024-03-01')$$, :s_aino)),
          '42501', 'a meeting attendance in a colleague''s name is refused');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.team_meeting (staff_id, team_id, met_on) VALUES (%s, %s, '2024-03-01')$$, :s_spec_b, :tb)),
          '42501', 'a direct INSERT INTO ips.team_meeting with another team''s staff is refused');
SELECT is(pg_temp.try_as(:'sup', format($$SELECT ips.record_team_meeting(%s, '2024-03-01')$$, :s_aino)),
          'ok:', 'a supervisor records the attendance of the own team''s specialist');
SELECT is(pg_temp.try_as(:'clin', format($$INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (%s, %s, '2024-03-01 10:00+02', 'care_team')$$, :e1, :s_spec)),
          '42501', 'a clinician''s care-team contact in a specialist''s name is refused');

------------------------------------------------------------------------------
-- 4. An episode's specialist belongs to the episode's team.
------------------------------------------------------------------------------
SELECT is(pg_temp.try_as(:'spec', format('UPDATE ips.episode SET specialist_id = %s WHERE episode_id = %s', :s_spec_b, :e1)),
          '23514', 'specialist: UPDATE ips.episode SET specialist_id = <other team''s specialist> is refused');
SELECT is(pg_temp.try_as(:'sup', format('UPDATE ips.episode SET specialist_id = %s WHERE episode_id = %s', :s_spec_b, :e1)),
          '23514', 'supervisor: refused');
SELECT is(pg_temp.try_as(:'adm', format('UPDATE ips.episode SET specialist_id = %s WHERE episode_id = %s', :s_spec_b, :e1)),
          '42501', 'ips_admin: refused (no UPDATE on ips.episode)');
SELECT throws_ok(format('UPDATE ips.episode SET specialist_id = %s WHERE episode_id = %s', :s_spec_b, :e1), '23514', NULL,
                 'the owner: refused');
SELECT throws_ok(format('UPDATE ips.episode SET specialist_id = %s WHERE episode_id = %s', :s_sup, :e1), '23514', NULL,
                 'the owner: a supervisor is not an episode''s specialist either');
SELECT is(pg_temp.try_as(:'spec', format($$INSERT INTO ips.specialist_assignment (episode_id, staff_id, from_on) VALUES (%s, %s, '2024-03-01')$$, :e1, :s_spec_b)),
          '23514', 'a specialist assignment to another team''s specialist is refused');
SELECT is(pg_temp.try_as(:'spec', format('UPDATE ips.episode SET specialist_id = %s WHERE episode_id = %s RETURNING ''ok''', :s_aino, :e1)),
          'ok:ok', 'a specialist of the own team: allowed');
SELECT is(pg_temp.try_as(:'adm', format('UPDATE ips.staff SET team_id = %s WHERE staff_id = %s', :tb, :s_spec)),
          '23514', 'ips_admin: moving the specialist of an open episode to another team is refused');
SELECT is(pg_temp.try_as(:'adm', format('UPDATE ips.staff SET role = ''supervisor'' WHERE staff_id = %s', :s_spec)),
          '23514', 'ips_admin: making them a supervisor is refused too');
SELECT is(pg_temp.try_as(:'adm', format('UPDATE ips.staff SET team_id = %s WHERE staff_id = %s RETURNING ''moved''', :tb, :s_aino)),
          'ok:moved', 'a specialist without open episodes moves');

------------------------------------------------------------------------------
-- 5. A refusal is append-only; a withdrawn consent is not revived.
------------------------------------------------------------------------------
SELECT ips.refuse_consent(:c1, 'share_with_care', '2024-02-01') AS rf1 \gset
SELECT is(pg_temp.try_then(:'spec', format($$UPDATE ips.consent_refusal SET refused_on = '2099-01-01' WHERE client_id = %s$$, :c1),
                           :'clin', format('SELECT count(*) FROM ips.client WHERE client_id = %s', :c1)),
          '42501 / ok:0', 'specialist: UPDATE ips.consent_refusal SET refused_on = ''2099-01-01'' is refused; the clinician still does not see the client');
SELECT is(pg_temp.try_then(:'spec', format($$UPDATE ips.consent SET withdrawn_on = NULL WHERE client_id = %s$$, :c1),
                           :'clin', format('SELECT count(*) FROM ips.client WHERE client_id = %s', :c1)),
          '55000 / ok:0', 'specialist: UPDATE ips.consent SET withdrawn_on = NULL is refused; the clinician still does not see the client');
SELECT is(pg_temp.try_as(:'spec', format('DELETE FROM ips.consent_refusal WHERE client_id = %s', :c1)), '42501',
          'specialist: DELETE FROM ips.consent_refusal is refused');
SELECT throws_ok(format($$UPDATE ips.consent_refusal SET refused_on = '2099-01-01' WHERE client_id = %s$$, :c1), '42501', NULL,
                 'the owner: a refusal is not changed either');
SELECT throws_ok(format($$UPDATE ips.consent SET withdrawn_on = NULL WHERE client_id = %s$$, :c1), '55000', NULL,
                 'the owner: a withdrawn consent is not revived either');
SELECT is(pg_temp.try_then(:'spec', format($$SELECT ips.give_consent(%s, 'share_with_care', '2024-03-01') IS NOT NULL$$, :c1),
                           :'clin', format('SELECT count(*) FROM ips.client WHERE client_id = %s', :c1)),
          'ok:true / ok:1', 'a new ips.give_consent() after the refusal shares the client again');

------------------------------------------------------------------------------
-- 6. A closed fidelity review and its frozen items never change.
------------------------------------------------------------------------------
SELECT pg_temp.do_as(:'sup', format($$SELECT ips.open_review(%s, '2024-01-01', '2024-03-31', '2024-04-15')$$, :ta)) AS rv \gset
SELECT pg_temp.do_as(:'sup', format('SELECT ips.close_review(%s)', :rv));
SELECT is(pg_temp.try_as(:'sup', format('UPDATE ips.fidelity_frozen SET score = 5 WHERE review_id = %s', :rv)), '42501',
          'supervisor: UPDATE ips.fidelity_frozen SET score = 5 is refused');
SELECT is(pg_temp.try_as(:'sup', format('DELETE FROM ips.fidelity_frozen WHERE review_id = %s', :rv)), '42501',
          'supervisor: DELETE FROM ips.fidelity_frozen is refused');
SELECT is(pg_temp.try_then(:'sup', format('UPDATE ips.fidelity_review SET closed_at = NULL, closed_by = NULL WHERE review_id = %s', :rv),
                           :'sup', format($$SELECT ips.rate(%s, 'V1', 5)$$, :rv)),
          '55000 / 55000', 'supervisor: UPDATE ips.fidelity_review SET closed_at = NULL is refused, and ips.rate stays refused');
SELECT is(pg_temp.try_as(:'adm', format('UPDATE ips.fidelity_frozen SET score = 5 WHERE review_id = %s', :rv))
          || ' ' || pg_temp.try_as(:'adm', format('DELETE FROM ips.fidelity_frozen WHERE review_id = %s', :rv))
          || ' ' || pg_temp.try_as(:'adm', format('UPDATE ips.fidelity_review SET closed_at = NULL, closed_by = NULL WHERE review_id = %s', :rv)),
          '42501 42501 55000', 'ips_admin: the three statements are refused');
SELECT throws_ok(format('UPDATE ips.fidelity_frozen SET score = 5 WHERE review_id = %s', :rv), '55000', NULL,
                 'the owner: UPDATE ips.fidelity_frozen is refused');
SELECT throws_ok(format('DELETE FROM ips.fidelity_frozen WHERE review_id = %s', :rv), '55000', NULL,
                 'the owner: DELETE FROM ips.fidelity_frozen is refused');
SELECT throws_ok(format('UPDATE ips.fidelity_review SET closed_at = NULL, closed_by = NULL WHERE review_id = %s', :rv), '55000', NULL,
                 'the owner: reopening is refused');
SELECT is(pg_temp.try_as(:'sup', format($$INSERT INTO ips.fidelity_rating (review_id, item, score) VALUES (%s, 'V2', 5)$$, :rv)), '55000',
          'supervisor: a direct rating of a closed review is refused');
-- an open review is closed only with its computed result
SELECT pg_temp.do_as(:'sup', format($$SELECT ips.open_review(%s, '2024-04-01', '2024-06-30', '2024-07-15')$$, :ta)) AS rv2 \gset
SELECT is(pg_temp.try_as(:'sup', format($$INSERT INTO ips.fidelity_frozen (review_id, item, score, source) VALUES (%s, 'S1', 5, 'computed')$$, :rv2)),
          '42501', 'supervisor: a forged frozen item is refused');
SELECT is(pg_temp.try_as(:'sup', format('UPDATE ips.fidelity_review SET closed_at = now(), closed_by = current_user WHERE review_id = %s', :rv2)),
          '55000', 'supervisor: closing by hand, without the frozen result, is refused');

------------------------------------------------------------------------------
-- 7. COPY: refused to staff on tables with row-level security; the table rules hold for the owner's COPY.
------------------------------------------------------------------------------
\set ON_ERROR_STOP 0
SAVEPOINT copy_try;
SET LOCAL ROLE :"spec";
\copy ips.contact (episode_id, staff_id, at, kind) FROM PROGRAM 'echo 1,1,2024-03-01 10:00+02,client' WITH (FORMAT csv)
ROLLBACK TO SAVEPOINT copy_try;
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '0A000', 'specialist: COPY ips.contact FROM ... is refused (row-level security)');
SELECT throws_ok(format('COPY ips.episode (client_id, team_id, referred_on, specialist_id) FROM PROGRAM %L WITH (FORMAT csv)',
                        format('echo %s,%s,2026-12-01,%s', :c5, :tb, :s_spec)), '23514', NULL,
                 'the owner: COPY of an episode with another team''s specialist is refused');
SELECT throws_ok(format('COPY ips.fidelity_frozen (review_id, item, score, source) FROM PROGRAM %L WITH (FORMAT csv)',
                        format('echo %s,X1,5,computed', :rv)), '55000', NULL,
                 'the owner: COPY of a frozen item into a closed review is refused');

SELECT * FROM finish();
ROLLBACK;
