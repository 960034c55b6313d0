-- The C triggers' kept plans cannot be made to call look-alike operators or
-- functions: a session whose search_path puts public before pg_catalog does
-- direct DML on the guarded tables, and the traps in public never fire.
BEGIN;
SELECT plan(5);

SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa') AS team \gset
SELECT ips.add_staff(:team, 'Anna', 'specialist') AS anna \gset
SELECT ips.add_client('hijack-1') AS c \gset
SELECT ips.start_care_relationship(:c, 'Unit', '2025-01-01') \gset
SELECT ips.refer(:c, :team, '2025-01-02') AS e \gset
SELECT ips.assign_specialist(:e, :anna, '2025-01-02') \gset

CREATE TABLE public.trap_log (what text);
CREATE FUNCTION public.trap_eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.trap_log VALUES ('bigint ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.trap_eq);
CREATE FUNCTION public.trap_eq_text(text, text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.trap_log VALUES ('text ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.trap_eq_text);
CREATE FUNCTION public.trap_le(date, date) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.trap_log VALUES ('date <='); RETURN $1 OPERATOR(pg_catalog.<=) $2; END $$;
CREATE OPERATOR public.<= (LEFTARG = date, RIGHTARG = date, FUNCTION = public.trap_le);
CREATE FUNCTION public.trap_count_step(bigint, date) RETURNS bigint LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.trap_log VALUES ('count'); RETURN 99; END $$;
CREATE AGGREGATE public.count(date) (SFUNC = public.trap_count_step, STYPE = bigint, INITCOND = '0');

-- the traps work on a query of our own (pgTAP's own functions would trip
-- them too, so the findings are read into variables before any check runs)
SET LOCAL search_path = public, pg_catalog;
SELECT 1 FROM ips.team WHERE team_id = 1::bigint;
SELECT pg_catalog.count(*) AS control_traps FROM public.trap_log \gset
DELETE FROM public.trap_log;

-- direct DML through the state machine and the fact guard
UPDATE ips.episode SET state = 'engaged', state_since = '2025-01-03 10:00+02' WHERE episode_id OPERATOR(pg_catalog.=) :e;
INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (:e, :anna, '2025-01-04 10:00+02', 'outreach_attempt');
INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (:e, :anna, '2025-01-05 10:00+02', 'outreach_attempt');
INSERT INTO ips.contact (episode_id, staff_id, at, kind) VALUES (:e, :anna, '2025-01-05 11:00+02', 'outreach_attempt');
UPDATE ips.episode SET state = 'closed', state_since = '2025-01-06 10:00+02', state_reason = 'disengaged'
 WHERE episode_id OPERATOR(pg_catalog.=) :e;
SELECT coalesce(pg_catalog.string_agg(what, ', '), '') AS traps FROM public.trap_log \gset
SET LOCAL search_path = pg_catalog, public;
SELECT is(:control_traps::bigint, 1::bigint, 'control: the trap fires on the caller''s own query');
SELECT is((SELECT state FROM ips.episode WHERE episode_id OPERATOR(pg_catalog.=) :e), 'closed',
          'the guarded DML went through the state machine');
SELECT is((SELECT pg_catalog.count(*) FROM ips.contact WHERE episode_id OPERATOR(pg_catalog.=) :e), 3::bigint,
          'the fact guard accepted the contacts');
SELECT is((SELECT pg_catalog.count(*) FROM ips.episode_state_history WHERE episode_id OPERATOR(pg_catalog.=) :e), 3::bigint,
          'and the history was written');
SELECT is(:'traps'::text, ''::text, 'no trap fired inside the triggers');

SELECT * FROM finish();
ROLLBACK;
