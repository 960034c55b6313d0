-- The ledger: the change log and the access log, their writers and verifiers,
-- and the functions that read a client's record (logged) and report who read it.
-- Comes before 90_security.sql, whose ips.apply_security() grants on these objects
-- and puts the change-log triggers on the person-level tables.

-- The ledger (docs/ledger.md): writers append entries unchained, each with its
-- transaction id and its own SHA-256; ips.seal() chains committed transactions into
-- blocks after their commit (Merkle root per block, blocks chained by hash).

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
    prev_hash  bytea,
    hash       bytea NOT NULL,
    xid        xid8
);
COMMENT ON TABLE ips.change_log IS 'Append-only log of every change to person-level tables (who, when, table, key, old and new row); each entry hashed with SHA-256, committed transactions sealed into ips.ledger_block; check it with ips.verify_change_log().';
COMMENT ON COLUMN ips.change_log.seq IS 'Position of the entry: increasing, with gaps where a transaction rolled back (ips.change_log_seq).';
COMMENT ON COLUMN ips.change_log.db_role IS 'The role on whose behalf the change ran (ips.caller(), also inside SECURITY DEFINER functions).';
COMMENT ON COLUMN ips.change_log.prev_hash IS 'Entries of 1.0/1.1 only: hash of the entry before (32 zero bytes for the first); NULL for entries of 1.2, which blocks chain.';
COMMENT ON COLUMN ips.change_log.hash IS 'SHA-256 of the entry''s canonical content (docs/ledger.md); for entries of 1.0/1.1 prev_hash included.';
COMMENT ON COLUMN ips.change_log.xid IS 'The writing transaction (pg_current_xact_id()); NULL for entries of 1.0/1.1.';
CREATE SEQUENCE ips.change_log_seq CACHE 32;
COMMENT ON SEQUENCE ips.change_log_seq IS 'Positions of ips.change_log entries.';

-- The access log: every view of a client's record through ips.client_record().
CREATE TABLE ips.access_log (
    seq         bigint PRIMARY KEY,
    accessed_at timestamptz NOT NULL,
    db_role     name NOT NULL,
    staff_id    bigint,
    client_id   bigint NOT NULL,
    purpose     text NOT NULL,
    shown       jsonb NOT NULL,
    prev_hash   bytea,
    hash        bytea NOT NULL,
    xid         xid8
);
CREATE INDEX access_log_client_idx ON ips.access_log (client_id, accessed_at);
COMMENT ON TABLE ips.access_log IS 'Append-only log of who viewed which client''s record, when, why and what was shown; each entry hashed with SHA-256, sealed into ips.ledger_block; see ips.access_report() and ips.verify_access_log().';
COMMENT ON COLUMN ips.access_log.prev_hash IS 'Entries of 1.0/1.1 only: hash of the entry before; NULL for entries of 1.2.';
COMMENT ON COLUMN ips.access_log.hash IS 'SHA-256 of the entry''s canonical content (docs/ledger.md).';
COMMENT ON COLUMN ips.access_log.xid IS 'The writing transaction; NULL for entries of 1.0/1.1.';
CREATE SEQUENCE ips.access_log_seq CACHE 32;
COMMENT ON SEQUENCE ips.access_log_seq IS 'Positions of ips.access_log entries.';

-- Transactions that wrote entries and are not sealed yet (one row per transaction and log).
CREATE TABLE ips.ledger_pending (
    log       text NOT NULL CHECK (log IN ('change_log', 'access_log')),
    xid       xid8 NOT NULL,
    first_seq bigint NOT NULL
);
COMMENT ON TABLE ips.ledger_pending IS 'Transactions that wrote log entries and are not sealed yet: written by the writer in the same transaction as its entries, taken by ips.seal() once committed.';

-- Sealed blocks: committed transactions chained by hash, in sealing order.
CREATE TABLE ips.ledger_block (
    log         text NOT NULL CHECK (log IN ('change_log', 'access_log')),
    block_id    bigint NOT NULL CHECK (block_id > 0),
    sealed_at   timestamptz NOT NULL,
    prev_hash   bytea NOT NULL,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    entries     bigint NOT NULL CHECK (entries >= 0),
    xids        xid8[] NOT NULL,
    legacy      boolean NOT NULL,
    root        bytea NOT NULL,
    hash        bytea NOT NULL,
    archived_at timestamptz,
    PRIMARY KEY (log, block_id)
);
CREATE INDEX ledger_block_seq_idx ON ips.ledger_block (log, first_seq);
COMMENT ON TABLE ips.ledger_block IS 'The sealed blocks of the change log and the access log: each covers the entries of the transactions it lists (xids, seq range), with their Merkle root (RFC 9162) and a hash chained to the block before; written only by ips.seal().';
COMMENT ON COLUMN ips.ledger_block.legacy IS 'true: the chain of 1.0/1.1 carried over by ALTER EXTENSION UPDATE (root = the hash of its last entry).';
COMMENT ON COLUMN ips.ledger_block.archived_at IS 'When ips.archive_blocks() removed the block''s entries from the live table (the block stays in the chain).';

-- The ledger in C.
CREATE FUNCTION ips.ledger_guard() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_ledger_guard' LANGUAGE C;
COMMENT ON FUNCTION ips.ledger_guard() IS 'Trigger: refuses INSERT, UPDATE, DELETE and TRUNCATE on the ledger''s tables to every role (42501); only the writer, ips.seal() and ips.archive_blocks() write them.';
CREATE FUNCTION ips.change_log_row() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_change_log_row' LANGUAGE C;
COMMENT ON FUNCTION ips.change_log_row() IS 'Trigger: appends the rows a statement changed in a person-level table to ips.change_log, from the statement''s transition tables ips_old/ips_new (arguments: the key columns).';
CREATE FUNCTION ips.access_log_append(accessed_at timestamptz, db_role name, staff_id bigint, client_id bigint,
                                      purpose text, shown jsonb) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ips_access_log_append' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ips.access_log_append(timestamptz, name, bigint, bigint, text, jsonb) IS
    'Internal (the extension owner only): appends one entry to ips.access_log in the calling transaction; returns its seq.';
CREATE FUNCTION ips.seal() RETURNS bigint AS 'MODULE_PATHNAME', 'ips_ledger_seal' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ips.seal() IS
    'Seals the committed, unsealed transactions of both logs into one new block each; returns the entries sealed. Run it every 30 s (pg_cron) or let the digests and verifiers do it.';
CREATE FUNCTION ips.ledger_verify(log text, digest jsonb, since boolean, OUT seq bigint, OUT problem text) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ips_ledger_verify' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ips.ledger_verify(text, jsonb, boolean) IS
    'Internal: seals, then checks a log''s blocks and entries in constant memory (against a digest when given; only after it when since).';
CREATE FUNCTION ips.archive_blocks(log text, through_block bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ips_archive_blocks' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION ips.archive_blocks(text, bigint) IS
    'Retention (the extension owner only): removes the entries of the log''s blocks up to through_block from the live table after they were exported; the blocks stay in the chain, marked archived. Returns the entries removed.';

CREATE TRIGGER change_log_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.change_log
    FOR EACH ROW EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER change_log_no_truncate BEFORE TRUNCATE ON ips.change_log
    FOR EACH STATEMENT EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER access_log_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.access_log
    FOR EACH ROW EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON ips.access_log
    FOR EACH STATEMENT EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER ledger_pending_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.ledger_pending
    FOR EACH ROW EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER ledger_pending_no_truncate BEFORE TRUNCATE ON ips.ledger_pending
    FOR EACH STATEMENT EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER ledger_block_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.ledger_block
    FOR EACH ROW EXECUTE FUNCTION ips.ledger_guard();
CREATE TRIGGER ledger_block_no_truncate BEFORE TRUNCATE ON ips.ledger_block
    FOR EACH STATEMENT EXECUTE FUNCTION ips.ledger_guard();

-- Digests: what a DBA keeps outside the database.
CREATE FUNCTION ips.ledger_digest(log text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d jsonb;
BEGIN
    IF log IS NULL OR log NOT IN ('change_log', 'access_log') THEN
        RAISE EXCEPTION '"%" is not a log of ips', log
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give change_log or access_log.';
    END IF;
    PERFORM ips.seal();
    SELECT jsonb_build_object('log', ledger_digest.log, 'database', current_database(),
                              'block_id', coalesce(max(b.block_id), 0),
                              'hash', coalesce((SELECT encode(h.hash, 'hex') FROM ips.ledger_block h
                                                 WHERE h.log = ledger_digest.log ORDER BY h.block_id DESC LIMIT 1),
                                               repeat('0', 64)),
                              'sealed_at', max(b.sealed_at),
                              'entries', coalesce(sum(b.entries), 0),
                              'last_seq', max(b.last_seq),
                              'archived_through', coalesce(max(b.block_id) FILTER (WHERE b.archived_at IS NOT NULL), 0),
                              'taken_at', clock_timestamp())
      INTO d
      FROM ips.ledger_block b WHERE b.log = ledger_digest.log;
    RETURN d;
END $$;
COMMENT ON FUNCTION ips.ledger_digest(text) IS 'Internal: seals, then the digest of a log (its newest block''s id and hash).';

CREATE FUNCTION ips.change_log_digest() RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$ SELECT ips.ledger_digest('change_log') $$;
COMMENT ON FUNCTION ips.change_log_digest() IS
    'Seals, then returns the digest of ips.change_log (newest block id and hash, entries, time): covers every entry committed before it was taken; keep it outside the database and check it with ips.verify_change_log(digest).';
CREATE FUNCTION ips.access_log_digest() RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$ SELECT ips.ledger_digest('access_log') $$;
COMMENT ON FUNCTION ips.access_log_digest() IS
    'Seals, then returns the digest of ips.access_log: keep it outside the database and check it with ips.verify_access_log(digest).';

CREATE FUNCTION ips.verify_change_log() RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('change_log', NULL, false) v
$$;
COMMENT ON FUNCTION ips.verify_change_log() IS 'Seals, then checks every block and entry of ips.change_log (seq, problem); no rows while the log is intact.';
CREATE FUNCTION ips.verify_change_log(digest jsonb) RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('change_log', digest, false) v
$$;
COMMENT ON FUNCTION ips.verify_change_log(jsonb) IS 'As ips.verify_change_log(), and checks that the log extends the digest (kept outside): every entry the digest covers is unchanged, none removed, inserted or re-ordered.';
CREATE FUNCTION ips.verify_change_log_since(digest jsonb) RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('change_log', digest, true) v
$$;
COMMENT ON FUNCTION ips.verify_change_log_since(jsonb) IS 'Incremental: checks that the digest''s block is unchanged and verifies only the blocks sealed after it and their entries.';

CREATE FUNCTION ips.verify_access_log() RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('access_log', NULL, false) v
$$;
COMMENT ON FUNCTION ips.verify_access_log() IS 'Seals, then checks every block and entry of ips.access_log (seq, problem); no rows while the log is intact.';
CREATE FUNCTION ips.verify_access_log(digest jsonb) RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('access_log', digest, false) v
$$;
COMMENT ON FUNCTION ips.verify_access_log(jsonb) IS 'As ips.verify_access_log(), and checks that the log extends the digest (kept outside).';
CREATE FUNCTION ips.verify_access_log_since(digest jsonb) RETURNS TABLE (seq bigint, problem text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.seq, v.problem FROM ips.ledger_verify('access_log', digest, true) v
$$;
COMMENT ON FUNCTION ips.verify_access_log_since(jsonb) IS 'Incremental: checks that the digest''s block is unchanged and verifies only the blocks sealed after it and their entries.';

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
    -- through the ledger's writer (docs/ledger.md): direct INSERTs into the log are refused
    PERFORM ips.access_log_append(log_access.accessed_at, log_access.db_role, log_access.staff_id,
                                  log_access.client_id, log_access.purpose, coalesce(log_access.shown, '{}'));
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
SELECT pg_catalog.pg_extension_config_dump('ips.ledger_pending', '');
SELECT pg_catalog.pg_extension_config_dump('ips.ledger_block', '');
SELECT pg_catalog.pg_extension_config_dump('ips.change_log_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.access_log_seq', '');
