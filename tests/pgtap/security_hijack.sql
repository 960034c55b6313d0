-- Search-path hijacking: a user who may create objects in schema public
-- shadows the functions and operators our functions use, puts public before
-- pg_catalog and calls our functions.  The attacker's code must not run.
BEGIN;
SELECT plan(12);
\ir security_setup.psql

SELECT :'tag' || '_attacker' AS attacker \gset
CREATE ROLE :"attacker" LOGIN;
GRANT ips_specialist TO :"attacker";
SELECT ips.add_staff(:ta, 'Mallory', 'specialist', db_role => :'attacker') AS s_att \gset
GRANT CREATE, USAGE ON SCHEMA public TO :"attacker";
CREATE TABLE public.pwned (what text);
GRANT INSERT, SELECT ON public.pwned TO PUBLIC;

SET LOCAL ROLE :"attacker";
-- every trap records its call in public.pwned and then behaves like the original
CREATE FUNCTION public.trap_eq(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.pwned VALUES ('= bigint by ' || current_user); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.trap_eq);
CREATE FUNCTION public.trap_eq_text(a text, b text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.pwned VALUES ('= text by ' || current_user); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.trap_eq_text);
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.pwned VALUES ('now() by ' || current_user); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION public.btrim(t text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.pwned VALUES ('btrim() by ' || current_user); RETURN pg_catalog.btrim(t); END $$;
CREATE FUNCTION public.to_jsonb(x anyelement) RETURNS jsonb LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.pwned VALUES ('to_jsonb() by ' || current_user); RETURN '{}'; END $$;
CREATE FUNCTION public.length(t text) RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.pwned VALUES ('length() by ' || current_user); RETURN 1; END $$;
CREATE FUNCTION public.pg_has_role(a name, b text, c text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.pwned VALUES ('pg_has_role() by ' || current_user); RETURN true; END $$;
RESET ROLE;

-- The traps work: the attacker's own unqualified query runs them.
SET LOCAL ROLE :"attacker";
SET LOCAL search_path = public, pg_catalog;
SELECT 1::bigint = 1::bigint AS x \gset
RESET ROLE;
SELECT ok((SELECT count(*) FROM public.pwned) > 0, 'control: the trap runs for an unqualified = with search_path public, pg_catalog');
DELETE FROM public.pwned;

-- Now our functions, called by the attacker and by a victim (the specialist) with the same search_path.
CREATE FUNCTION pg_temp.hostile(r name, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    SET LOCAL search_path = public, pg_catalog;
    BEGIN
        EXECUTE q INTO v;
        v := 'ok';
    EXCEPTION WHEN OTHERS THEN
        v := SQLSTATE;
    END;
    RESET ROLE;
    SET LOCAL search_path = public;
    RETURN v;
END $$;

SELECT is(pg_temp.hostile(:'attacker', format('SELECT ips.client_record(%s, ''hijack'')', :c1)), 'ok', 'client_record runs under the hostile path');
SELECT is(pg_temp.hostile(:'attacker', format('SELECT ips.record_contact(%s, %s, ''2024-02-10 10:00+02'', ''client'')', :e1, :s_att)), 'ok',
          'record_contact (and its C triggers, RLS and change log) runs');
SELECT is(pg_temp.hostile(:'attacker', format('SELECT ips.transition(%s, ''on_hold'', ''2024-03-01 10:00+02'')', :e1)), 'ok', 'transition runs');
SELECT is(pg_temp.hostile(:'attacker', 'SELECT ips.refer(ips.add_client(''H-evil''), ' || :ta || ', ''2024-03-01'')'), 'ok',
          'add_client (SECURITY DEFINER) and refer run');
SELECT is(pg_temp.hostile(:'attacker', format('SELECT ips.refuse_consent(%s, ''family_contact'', ''2024-03-01'')', :c1)), 'ok',
          'refuse_consent (SECURITY DEFINER) runs');
SELECT is(pg_temp.hostile(:'attacker', format('SELECT count(*) FROM ips.contact WHERE client_id = %s', :c1)), 'ok',
          'a direct read through the row-level security policy runs');
SELECT is(pg_temp.hostile(:'sup', format('SELECT count(*) FROM ips.access_report(%s)', :c1)), 'ok', 'access_report (SECURITY DEFINER) runs for a supervisor');
SELECT is(pg_temp.hostile(:'spec', format('SELECT ips.client_record(%s, ''victim'')', :c1)), 'ok', 'the victim''s client_record runs');
SELECT is(pg_temp.hostile(:'spec', 'SELECT ips.current_staff()'), 'ok', 'current_staff (SECURITY DEFINER) runs');
SELECT is((SELECT array_agg(what) FROM public.pwned), NULL, 'none of the attacker''s functions or operators ran');
SELECT is((SELECT count(*) FROM ips.verify_change_log()), 0::bigint, 'and the change log stayed intact');

SELECT * FROM finish();
ROLLBACK;
