-- bench/generate.sql: a plain-SQL generator of a synthetic country, the fallback
-- of bench/run.sh when `ipsctl generate` does not work.  Simpler than ipsctl
-- (no studies, pauses or outreach closures), but through the public functions,
-- so every row passes the state machine and the guards.
--
--   psql -v clients=N -v as_of=YYYY-MM-DD -f bench/generate.sql
--
-- Teams of 35 clients, one specialist per 18 clients; a year of history
-- ending on as_of; per client: care relationship, consent, referral,
-- engagement, weekly contacts for a month then every two weeks, employer
-- contacts, and for half of them a job (some ended, some closures).

SET TimeZone = 'Europe/Helsinki';
SELECT setseed(0.42);
SELECT set_config('bench.clients', :'clients', false), set_config('bench.as_of', :'as_of', false);

DO $$
DECLARE
    n int := current_setting('bench.clients')::int;
    as_of date := current_setting('bench.as_of')::date;
    teams int := greatest(2, n / 35);
    t bigint; s bigint; c bigint; e bigint; j bigint; emp int;
    d date; k int; day date;
BEGIN
    FOR i IN 1..teams LOOP
        t := ips.add_team('Bench team ' || i, 'Region ' || (1 + i % 21));
        FOR x IN 1..2 LOOP
            PERFORM ips.add_staff(t, 'Specialist ' || i || '.' || x, 'specialist');
        END LOOP;
    END LOOP;
    emp := greatest(20, n / 3);
    FOR i IN 1..emp LOOP
        PERFORM ips.add_employer('Employer ' || i);
    END LOOP;
    FOR i IN 1..n LOOP
        t := 1 + (i - 1) % teams;
        s := 2 * t - 1 + (i % 2);
        d := as_of - 365 + ((i * 7919) % 300);
        c := ips.add_client('bench-' || i, 1960 + i % 45);
        PERFORM ips.start_care_relationship(c, 'Psychiatric outpatient clinic', d - 30);
        PERFORM ips.give_consent(c, 'share_with_care', d - 30);
        e := ips.refer(c, t, d);
        PERFORM ips.assign_specialist(e, s, d + 1);
        IF i % 13 = 0 THEN
            PERFORM ips.transition(e, 'closed', (d + 20)::timestamptz + time '12:00', 'never_engaged');
            CONTINUE;
        END IF;
        PERFORM ips.transition(e, 'engaged', (d + 3)::timestamptz + time '10:00');
        PERFORM ips.complete_career_profile(e, least(d + 20, as_of - 1));
        PERFORM ips.transition(e, 'job_search', (least(d + 21, as_of - 1))::timestamptz + time '11:00');
        k := 0;
        day := d + 3;
        WHILE day < CASE WHEN i % 7 = 0 AND i % 2 = 1 THEN least(d + 90, as_of - 1) ELSE as_of - 1 END AND k < 40 LOOP
            INSERT INTO ips.contact (episode_id, staff_id, at, kind, mode, setting, minutes)
            VALUES (e, s, day::timestamptz + time '10:00', CASE WHEN k % 9 = 4 THEN 'care_team' ELSE 'client' END,
                    CASE WHEN k % 5 = 3 THEN 'phone' ELSE 'in_person' END, 'community', 45);
            k := k + 1;
            day := day + CASE WHEN k < 5 THEN 7 ELSE 14 END;
        END LOOP;
        IF d + 25 < as_of - 1 THEN
            PERFORM ips.record_employer_contact(s, 1 + i % emp, (d + 25)::timestamptz + time '13:00', true, e);
        END IF;
        IF i % 2 = 0 AND d + 60 < as_of - 1 THEN
            j := ips.start_job(e, 1 + i % emp, d + 60, CASE WHEN i % 10 = 0 THEN 'work_trial' ELSE 'competitive' END,
                               (ARRAY['5223', '9112', '4110', '7126', '5131', '2512'])[1 + i % 6], 20);
            IF i % 6 = 0 AND d + 150 < as_of - 1 THEN
                PERFORM ips.end_job(j, d + 150);
            END IF;
        ELSIF i % 7 = 0 AND d + 90 < as_of - 1 THEN
            PERFORM ips.transition(e, 'closed', (d + 90)::timestamptz + time '12:00', 'client_choice');
        END IF;
    END LOOP;
    -- job development: weekly employer visits and team meetings per specialist
    INSERT INTO ips.employer_contact (staff_id, employer_id, at, in_person)
    SELECT st.staff_id, 1 + (st.staff_id * 31 + g.i) % emp, (as_of - 7 * g.i)::timestamptz + time '14:00', true
      FROM ips.staff st, generate_series(1, 52) AS g(i), generate_series(1, 5) AS v(x)
     WHERE st.role = 'specialist';
    INSERT INTO ips.team_meeting (staff_id, team_id, met_on)
    SELECT st.staff_id, st.team_id, as_of - 7 * g.i
      FROM ips.staff st, generate_series(1, 52) AS g(i) WHERE st.role = 'specialist';
END $$;
