-- The ledger: the change log and the access log, their writers and verifiers,
-- and the functions that read a client's record (logged) and report who read it.
-- Comes before 90_security.sql, whose ips.apply_security() grants on these objects
-- and puts the change-log triggers on the person-level tables.

-- The change log: every insert, update, delete and truncate on person-level tables.
CREATE TABLE ips.change_log (
    seq        bigint PRIMARY KEY,
    logged_at  timestamptz NOT NULL,
    db_role    name NOT NULL,
    table_name text NOT NULL,
    operation  text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    client_id  bigint,
    row_key    jsonb,
    old_row    jsonb,
    new_row    jsonb,
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL
);
COMMENT ON TABLE ips.change_log IS 'Append-only log of every change to person-level tables (who, when, table, key, old and new row), chained with SHA-256; check it with ips.verify_change_log().';
COMMENT ON COLUMN ips.change_log.seq IS 'Position in the chain: 1, 2, 3, ... without gaps.';
COMMENT ON COLUMN ips.change_log.db_role IS 'The role on whose behalf the change ran (ips.caller(), also inside SECURITY DEFINER functions).';
COMMENT ON COLUMN ips.change_log.prev_hash IS 'hash of the entry before (32 zero bytes for the first).';
COMMENT ON COLUMN ips.change_log.hash IS 'SHA-256 of the canonical content of every other column, prev_hash included.';

-- The access log: every view of a client's record through ips.client_record().
CREATE TABLE ips.access_log (
    seq         bigint PRIMARY KEY,
    accessed_at timestamptz NOT NULL,
    db_role     name NOT NULL,
    staff_id    bigint,
    client_id   bigint NOT NULL,
    purpose     text NOT NULL,
    shown       jsonb NOT NULL,
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL
);
CREATE INDEX access_log_client_idx ON ips.access_log (client_id, accessed_at);
COMMENT ON TABLE ips.access_log IS 'Append-only log of who viewed which client''s record, when, why and what was shown, chained with SHA-256; see ips.access_report().';

-- The logs in C.
CREATE FUNCTION ips.log_seal() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_log_seal' LANGUAGE C;
COMMENT ON FUNCTION ips.log_seal() IS 'Trigger: chains a new log entry with SHA-256 (seq, prev_hash, hash); refuses UPDATE, DELETE and TRUNCATE.';
CREATE FUNCTION ips.change_log_row() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_change_log_row' LANGUAGE C;
COMMENT ON FUNCTION ips.change_log_row() IS 'Trigger: appends the rows a statement changed in a person-level table to ips.change_log, from the statement''s transition tables ips_old/ips_new (arguments: the key columns).';
CREATE FUNCTION ips.log_first_break(log regclass, OUT seq bigint, OUT problem text) RETURNS record
    AS 'MODULE_PATHNAME', 'ips_log_first_break' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION ips.log_first_break(regclass) IS 'Internal: the first entry of ips.change_log or ips.access_log where the hash chain breaks, or NULL.';

CREATE TRIGGER change_log_seal BEFORE INSERT OR UPDATE OR DELETE ON ips.change_log
    FOR EACH ROW EXECUTE FUNCTION ips.log_seal();
CREATE TRIGGER change_log_no_truncate BEFORE TRUNCATE ON ips.change_log
    FOR EACH STATEMENT EXECUTE FUNCTION ips.log_seal();
CREATE TRIGGER access_log_seal BEFORE INSERT OR UPDATE OR DELETE ON ips.access_log
    FOR EACH ROW EXECUTE FUNCTION ips.log_seal();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON ips.access_log
    FOR EACH STATEMENT EXECUTE FUNCTION ips.log_seal();

CREATE FUNCTION ips.verify_change_log() RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT b.seq, b.problem FROM ips.log_first_break('ips.change_log'::regclass) b WHERE b.seq IS NOT NULL
$$;
COMMENT ON FUNCTION ips.verify_change_log() IS 'The first entry of ips.change_log where the SHA-256 chain breaks (seq, problem); no rows while the chain is intact.';

CREATE FUNCTION ips.verify_access_log() RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT b.seq, b.problem FROM ips.log_first_break('ips.access_log'::regclass) b WHERE b.seq IS NOT NULL
$$;
COMMENT ON FUNCTION ips.verify_access_log() IS 'The first entry of ips.access_log where the SHA-256 chain breaks (seq, problem); no rows while the chain is intact.';

-- Append to the access log (internal): called only by the autonomous writer of
-- ips.client_record() (extension/client_record.c, extension/autonomous.c), in a
-- transaction of its own as the extension owner; no ips role may execute it.
-- The reader's identity comes in as arguments: the worker is not the reader (the
-- defaults serve the owner calling it by hand, with 1.1's three arguments).
CREATE FUNCTION ips.log_access(client_id bigint, purpose text, shown jsonb,
                               accessed_at timestamptz DEFAULT now(), db_role name DEFAULT ips.caller(),
                               staff_id bigint DEFAULT ips.current_staff()) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(log_access.client_id, 'client_id');
    PERFORM ips.require(log_access.purpose, 'purpose');
    PERFORM ips.require(log_access.accessed_at, 'accessed_at');
    PERFORM ips.require(log_access.db_role, 'db_role');
    IF length(log_access.purpose) > 500 THEN
        RAISE EXCEPTION 'purpose is longer than 500 characters'
            USING ERRCODE = 'string_data_right_truncation', HINT = 'A purpose has 1 to 500 characters.';
    ELSIF btrim(log_access.purpose, E' \t\n\r\x0B\f') = '' THEN
        RAISE EXCEPTION 'purpose must not be blank'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A purpose has 1 to 500 characters.';
    END IF;
    INSERT INTO ips.access_log (accessed_at, db_role, staff_id, client_id, purpose, shown)
    VALUES (log_access.accessed_at, log_access.db_role, log_access.staff_id, log_access.client_id,
            log_access.purpose, coalesce(log_access.shown, '{}'));
END $$;
COMMENT ON FUNCTION ips.log_access(bigint, text, jsonb, timestamptz, name, bigint) IS
    'Internal: appends one entry to ips.access_log (reader''s role and staff id as given); run only by the autonomous writer of ips.client_record(), executable by no ips role.';

-- The record: C (extension/client_record.c), the caller's rights, logged by an
-- autonomous write that stays when the reader's transaction rolls back.
CREATE FUNCTION ips.client_record(client_id bigint, purpose text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ips_client_record' LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.client_record(bigint, text) IS
    'The shared record of a client as jsonb (client, episode, state history, current job, recent contacts, open alerts, consents), as far as the caller may see it; logged in ips.access_log in a transaction of its own, so the entry stays when the reader rolls back; fails when it cannot be logged.';

CREATE FUNCTION ips.access_report(client_id bigint, from_on date DEFAULT NULL, to_on date DEFAULT NULL)
RETURNS TABLE (accessed_at timestamptz, db_role name, staff_id bigint, purpose text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(access_report.client_id, 'client_id');
    IF from_on > to_on THEN
        RAISE EXCEPTION 'period % .. % ends before it starts', from_on, to_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give from_on on or before to_on, or leave either NULL.';
    END IF;
    IF pg_catalog.pg_has_role(ips.caller(), 'ips_admin', 'USAGE') THEN
        NULL;   -- handles the clients' requests
    ELSIF pg_catalog.pg_has_role(ips.caller(), 'ips_supervisor', 'USAGE') THEN
        IF NOT access_report.client_id = ANY (ips.team_clients()) THEN
            PERFORM ips.not_found('client', access_report.client_id);
        END IF;
    ELSE
        RAISE EXCEPTION 'permission denied for the access report'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The access report is for ips_admin, and for the supervisor of the client''s team.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ips.client c WHERE c.client_id = access_report.client_id) THEN
        PERFORM ips.not_found('client', access_report.client_id);
    END IF;
    RETURN QUERY
        SELECT a.accessed_at, a.db_role, a.staff_id, a.purpose
          FROM ips.access_log a
         WHERE a.client_id = access_report.client_id
           AND (from_on IS NULL OR a.accessed_at >= ips.local_midnight(from_on))
           AND (to_on IS NULL OR a.accessed_at < ips.local_midnight(to_on + 1))
         ORDER BY a.seq;
END $$;
COMMENT ON FUNCTION ips.access_report(bigint, date, date) IS
    'Who used the client''s IPS record, when and why, in a period of local days (Act 703/2023); for ips_admin and the supervisor of the client''s team.';

SELECT pg_catalog.pg_extension_config_dump('ips.change_log', '');
SELECT pg_catalog.pg_extension_config_dump('ips.access_log', '');
