-- bench/reference_triggers.sql: the triggers of ips.contact as a team would write
-- them by hand in PL/pgSQL, the baseline of `make bench` for the C triggers.
--
--   ips_bench.ref_fact_guard()  BEFORE INSERT OR UPDATE: the fact guard of
--       episode_facts.c: client_id taken from the episode (or checked against
--       it), the local day of "at" not before the referral nor after the closure.
--   ips_bench.ref_change_log()  AFTER INSERT OR UPDATE OR DELETE: a change log
--       like audit.c: who, when, table, key, old and new row as jsonb, chained
--       with SHA-256 (sha256() of the previous hash and the entry's content),
--       appends serialised by a transaction-level advisory lock.
--
-- ips_bench.attach_reference_triggers(tbl) puts both on a copy of ips.contact.

CREATE SCHEMA IF NOT EXISTS ips_bench;

CREATE TABLE IF NOT EXISTS ips_bench.change_log (
    seq        bigint PRIMARY KEY,
    logged_at  timestamptz NOT NULL,
    db_role    name NOT NULL,
    table_name text NOT NULL,
    operation  text NOT NULL,
    client_id  bigint,
    row_key    jsonb,
    old_row    jsonb,
    new_row    jsonb,
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL
);

CREATE OR REPLACE FUNCTION ips_bench.ref_fact_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
    tz text;
    day date;
BEGIN
    SELECT x.client_id, x.referred_on, x.closed_on INTO e FROM ips.episode x WHERE x.episode_id = NEW.episode_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no episode with id %', NEW.episode_id USING ERRCODE = 'no_data_found';
    END IF;
    tz := coalesce((SELECT s.value FROM ips.setting s WHERE s.name = 'time_zone'), 'Europe/Helsinki');
    day := (NEW.at AT TIME ZONE tz)::date;
    IF day < e.referred_on THEN
        RAISE EXCEPTION 'at % is before the referral of episode % on %', day, NEW.episode_id, e.referred_on
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF e.closed_on IS NOT NULL AND day > e.closed_on THEN
        RAISE EXCEPTION 'at % is after episode % was closed on %', day, NEW.episode_id, e.closed_on
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NEW.client_id IS NULL THEN
        NEW.client_id := e.client_id;
    ELSIF NEW.client_id <> e.client_id THEN
        RAISE EXCEPTION 'client % does not match client % of episode %', NEW.client_id, e.client_id, NEW.episode_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ips_bench.ref_change_log() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    last record;
    n bigint;
    prev bytea;
    o jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    w jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    k jsonb := jsonb_build_object('contact_id', coalesce(w, o) -> 'contact_id');
    cid bigint := (coalesce(w, o) ->> 'client_id')::bigint;
    t text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    ts timestamptz := clock_timestamp();
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('ips_bench.change_log'));
    SELECT l.seq, l.hash INTO last FROM ips_bench.change_log l ORDER BY l.seq DESC LIMIT 1;
    n := coalesce(last.seq, 0) + 1;
    prev := coalesce(last.hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    INSERT INTO ips_bench.change_log (seq, logged_at, db_role, table_name, operation, client_id, row_key, old_row, new_row, prev_hash, hash)
    VALUES (n, ts, current_user, t, TG_OP, cid, k, o, w, prev,
            sha256(prev || convert_to(concat_ws('|', n, extract(epoch FROM ts), current_user, t, TG_OP, cid, k, o, w), 'UTF8')));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ips_bench.attach_reference_triggers(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER ref_fact_guard BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION ips_bench.ref_fact_guard()', tbl);
    EXECUTE format('CREATE TRIGGER ref_change_log AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION ips_bench.ref_change_log()', tbl);
END $$;
