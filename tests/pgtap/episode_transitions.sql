-- The episode state machine: every pair of states through ips.transition().
-- Allowed (README, "Episode states and transitions"):
--   referred   -> engaged, on_hold, closed
--   engaged    -> job_search, employed, studying, on_hold, closed
--   job_search -> employed, studying, on_hold, closed
--   employed   -> job_search, studying, on_hold, closed
--   studying   -> job_search, employed, on_hold, closed
--   on_hold    -> the state it paused (in the matrix: engaged), closed
--   closed     -> nothing (final)
-- Everything else, and a move to the state the episode is in, fails with 55000.
BEGIN;
SELECT plan(63);

SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa') AS team \gset
SELECT ips.add_staff(:team, 'Anna Specialist', 'specialist') AS staff \gset
SELECT ips.add_employer('Prisma Vaasa', '0112038-9') AS employer \gset

-- A new client with an episode brought into state s by the public functions.
CREATE FUNCTION pg_temp.episode_in(s text, n int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    c bigint := ips.add_client('matrix-' || s || '-' || n);
    e bigint;
    t bigint := (SELECT team_id FROM ips.team LIMIT 1);
    st bigint := (SELECT staff_id FROM ips.staff LIMIT 1);
BEGIN
    PERFORM ips.start_care_relationship(c, 'Vaasa psychiatric outpatient clinic', '2025-01-01');
    e := ips.refer(c, t, '2025-01-02');
    IF s = 'referred' THEN RETURN e; END IF;
    IF s = 'closed' THEN
        PERFORM ips.transition(e, 'closed', '2025-01-03 12:00+02', 'client_choice');
        RETURN e;
    END IF;
    PERFORM ips.assign_specialist(e, st, '2025-01-02');
    PERFORM ips.transition(e, 'engaged', '2025-01-03 12:00+02');
    IF s = 'job_search' THEN PERFORM ips.transition(e, 'job_search', '2025-01-04 12:00+02'); END IF;
    IF s = 'employed' THEN PERFORM ips.start_job(e, (SELECT employer_id FROM ips.employer LIMIT 1), '2025-01-04'); END IF;
    IF s = 'studying' THEN PERFORM ips.start_studies(e, '2025-01-04'); END IF;
    IF s = 'on_hold' THEN PERFORM ips.transition(e, 'on_hold', '2025-01-04 12:00+02'); END IF;
    RETURN e;
END $$;

-- Try one transition; 'ok' or the SQLSTATE.  Prerequisites of the target
-- state are provided first, so that only the transition itself is tested.
CREATE FUNCTION pg_temp.try(from_state text, to_state text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    e bigint := pg_temp.episode_in(from_state, (SELECT count(*) FROM ips.episode)::int);
    hist_before bigint;
BEGIN
    IF to_state = 'employed' AND from_state <> 'closed' THEN
        INSERT INTO ips.job (episode_id, employer_id, starts_on) VALUES (e, (SELECT employer_id FROM ips.employer LIMIT 1), '2025-01-05');
    END IF;
    IF to_state = 'studying' AND from_state <> 'closed' THEN
        INSERT INTO ips.study (episode_id, starts_on) VALUES (e, '2025-01-05');
    END IF;
    IF to_state = 'engaged' AND from_state = 'referred' THEN
        PERFORM ips.assign_specialist(e, (SELECT staff_id FROM ips.staff LIMIT 1), '2025-01-02');
    END IF;
    SELECT count(*) INTO hist_before FROM ips.episode_state_history h WHERE h.episode_id = e;
    BEGIN
        PERFORM ips.transition(e, to_state, '2025-01-06 12:00+02', CASE WHEN to_state = 'closed' THEN 'client_choice' END);
    EXCEPTION WHEN OTHERS THEN
        RETURN SQLSTATE;
    END;
    IF (SELECT count(*) FROM ips.episode_state_history h WHERE h.episode_id = e) <> hist_before + 1
       OR (SELECT h.to_state FROM ips.episode_state_history h WHERE h.episode_id = e ORDER BY history_id DESC LIMIT 1)
          IS DISTINCT FROM to_state
       OR (SELECT state FROM ips.episode x WHERE x.episode_id = e) <> to_state THEN
        RETURN 'ok, but no history row';
    END IF;
    RETURN 'ok';
END $$;

SELECT is(pg_temp.try(f, t), expected, f || ' -> ' || t || ': ' || expected)
  FROM (VALUES
    ('referred','referred','55000'), ('referred','engaged','ok'), ('referred','job_search','55000'),
    ('referred','employed','55000'), ('referred','studying','55000'), ('referred','on_hold','ok'),
    ('referred','closed','ok'),
    ('engaged','referred','55000'), ('engaged','engaged','55000'), ('engaged','job_search','ok'),
    ('engaged','employed','ok'), ('engaged','studying','ok'), ('engaged','on_hold','ok'), ('engaged','closed','ok'),
    ('job_search','referred','55000'), ('job_search','engaged','55000'), ('job_search','job_search','55000'),
    ('job_search','employed','ok'), ('job_search','studying','ok'), ('job_search','on_hold','ok'),
    ('job_search','closed','ok'),
    ('employed','referred','55000'), ('employed','engaged','55000'), ('employed','job_search','ok'),
    ('employed','employed','55000'), ('employed','studying','ok'), ('employed','on_hold','ok'), ('employed','closed','ok'),
    ('studying','referred','55000'), ('studying','engaged','55000'), ('studying','job_search','ok'),
    ('studying','employed','ok'), ('studying','studying','55000'), ('studying','on_hold','ok'), ('studying','closed','ok'),
    ('on_hold','referred','55000'), ('on_hold','engaged','ok'), ('on_hold','job_search','55000'),
    ('on_hold','employed','55000'), ('on_hold','studying','55000'), ('on_hold','on_hold','55000'), ('on_hold','closed','ok'),
    ('closed','referred','55000'), ('closed','engaged','55000'), ('closed','job_search','55000'),
    ('closed','employed','55000'), ('closed','studying','55000'), ('closed','on_hold','55000'), ('closed','closed','55000')
  ) AS m(f, t, expected);

-- on_hold returns to the state it paused, whichever that was
SELECT pg_temp.episode_in('job_search', 900) AS e \gset
SELECT is(ips.transition(:e, 'on_hold', '2025-01-05 12:00+02'), 'on_hold', 'job_search -> on_hold');
SELECT is((SELECT held_state FROM ips.episode WHERE episode_id = :e), 'job_search', 'on_hold remembers the paused state');
SELECT throws_ok(format($$SELECT ips.transition(%s, 'engaged', '2025-01-06 12:00+02')$$, :e), '55000',
                 format('episode %s cannot move from on_hold to engaged', :e), 'paused job_search cannot return to engaged');
SELECT is(ips.transition(:e, 'job_search', '2025-01-06 12:00+02'), 'job_search', 'paused job_search returns to job_search');
SELECT is((SELECT held_state FROM ips.episode WHERE episode_id = :e), NULL, 'held_state cleared on return');

-- a referral paused before the first meeting returns to referred
SELECT pg_temp.episode_in('referred', 902) AS e3 \gset
SELECT is(ips.transition(:e3, 'on_hold', '2025-01-05 12:00+02'), 'on_hold', 'referred -> on_hold');
SELECT is(ips.transition(:e3, 'referred', '2025-01-06 12:00+02'), 'referred', 'paused referral returns to referred');

-- the error names the move and hints at the allowed ones
SELECT pg_temp.episode_in('referred', 901) AS e2 \gset
SELECT throws_like(format($$SELECT ips.transition(%s, 'employed', '2025-01-06 12:00+02')$$, :e2),
                   '%cannot move from referred to employed%', 'forbidden move is named');
SELECT throws_ok(format($$SELECT ips.transition(%s, 'hired')$$, :e2), '22023', 'unknown episode state "hired"',
                 'unknown state: 22023');
SELECT throws_ok($$SELECT ips.transition(999999, 'engaged')$$, 'P0002', 'no episode with id 999999', 'unknown episode: P0002');

-- direct DML gets the same state machine
SELECT throws_ok(format($$UPDATE ips.episode SET state = 'employed' WHERE episode_id = %s$$, :e2), '55000', NULL,
                 'direct UPDATE is guarded too');
SELECT throws_ok(format($$UPDATE ips.episode SET entry_on = '2025-01-01' WHERE episode_id = %s$$, :e2), '428C9',
                 'column "entry_on" of ips.episode is kept by the state machine', 'kept columns cannot be written');
SELECT throws_ok(format($$DELETE FROM ips.episode WHERE episode_id = %s$$, :e2), '55000', 'episodes are not deleted',
                 'episodes are not deleted');
SELECT throws_ok($$INSERT INTO ips.episode (client_id, team_id, state, referred_on)
                   SELECT client_id, (SELECT team_id FROM ips.team LIMIT 1), 'engaged', '2025-01-01'
                     FROM ips.client WHERE host_ref = 'matrix-referred-0'$$, '55000', NULL,
                 'a new episode cannot start past referred');

SELECT * FROM finish();
ROLLBACK;
