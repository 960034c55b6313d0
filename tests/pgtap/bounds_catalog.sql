-- Bounded input everywhere (issue 13), checked from the catalog: every date, timestamptz and
-- text column of every table of ips is bounded by the table's <table>_bounds trigger
-- (ips.bounds_guard(), see docs/input-limits.md), or is written down below with what bounds
-- it instead.  A new table or column fails here until it gets its bound.
BEGIN;
SELECT plan(4);

-- The columns bounded otherwise, and by what.
CREATE TEMP TABLE bounded_otherwise (col text PRIMARY KEY, by_what text NOT NULL);
INSERT INTO bounded_otherwise
SELECT t || '.' || c, w
  FROM (VALUES
    -- codes: a CHECK (... IN (...)), a pattern or a foreign key allows only short codes
    ('consent', '{scope}', 'foreign key to ips.vocabulary_consent_scope'),
    ('consent_refusal', '{scope}', 'foreign key to ips.vocabulary_consent_scope'),
    ('contact', '{kind,mode,setting}', 'foreign key to ips.contact_form'),
    ('episode', '{state,held_state,close_reason}', 'foreign keys to ips.vocabulary_state, ips.vocabulary_close_reason'),
    ('episode_state_history', '{from_state,to_state}', 'foreign keys to ips.state_transition and ips.vocabulary_state'),
    ('fidelity_action', '{item}', 'foreign key to ips.fidelity_item'),
    ('fidelity_anchor', '{item}', 'foreign key to ips.fidelity_item'),
    ('fidelity_rating', '{item}', 'foreign key to ips.fidelity_item'),
    ('fidelity_frozen', '{item,source}', 'copied from ips.fidelity by ips.close_review'),
    ('fidelity_item', '{item,direction,section}', 'CHECK pattern / IN (...)'),
    ('job', '{kind,occupation}', 'foreign key to ips.vocabulary_job_kind, CHECK occupation ~ ''^[0-9]{1,4}$'''),
    ('staff', '{role}', 'foreign key to ips.vocabulary_staff_role'),
    ('label_text', '{lang}', 'CHECK lang IN (fi, sv, en)'),
    ('rule', '{code,scope}', 'CHECK ... IN (...)'),
    -- the state machine (ips.episode_guard) keeps these
    ('episode', '{state_since,entry_on,closed_on}', 'ips.episode_guard: not before the referral, not in the future'),
    -- settings: ips.setting_check()
    ('setting', '{name,value,description}', 'ips.setting_check()'),
    -- the logs: written only by their own triggers and functions (the ledger, issue 14)
    ('change_log', '{logged_at,table_name,operation}', 'written by ips.change_log_row() only'),
    ('access_log', '{accessed_at,purpose}', 'written by ips.log_access() only'),
    ('ledger_block', '{log,sealed_at,archived_at}', 'written by ips.seal() and ips.archive_blocks() only (log: CHECK IN (...))'),
    ('ledger_pending', '{log}', 'written by the ledger''s writer only (CHECK log IN (...))'),
    -- the owner's
    ('host_attachment', '{host_table,key_type,attached_at}', 'written by ips.attach_host_table() (owner only)'),
    -- issue 16 (89_records_bounds.sql): staff days on the team, dated terms, job payer and plans
    ('staff', '{started_on,ended_on}', 'CHECK isfinite and ended_on > started_on; ips.end_staff'),
    ('staff_terms', '{from_on}', '-infinity on the first terms (since the start); ips.change_staff: finite, not in the future'),
    ('job', '{payer}', 'foreign key to ips.vocabulary_job_payer'),
    ('job_plan', '{kind,occupation}', 'foreign key to ips.vocabulary_job_kind, CHECK occupation ~ ''^[0-9]{1,4}$'''),
    -- the vocabulary (issue 16, item 12): the extension's own rows, changed by its owner only
    ('vocabulary', '{category,code}', 'the extension''s rows; its owner only'),
    ('vocabulary_state', '{category,code}', 'the extension''s rows; its owner only'),
    ('vocabulary_close_reason', '{category,code}', 'the extension''s rows; its owner only'),
    ('vocabulary_contact_kind', '{category,code}', 'the extension''s rows; its owner only'),
    ('vocabulary_contact_mode', '{category,code}', 'the extension''s rows; its owner only'),
    ('vocabulary_contact_setting', '{category,code}', 'the extension''s rows; its owner only'),
    ('vocabulary_job_kind', '{category,code}', 'the extension''s rows; its owner only'),
    ('vocabulary_job_payer', '{category,code}', 'the extension''s rows; its owner only'),
    ('vocabulary_staff_role', '{category,code}', 'the extension''s rows; its owner only'),
    ('vocabulary_consent_scope', '{category,code}', 'the extension''s rows; its owner only'),
    ('state_transition', '{from_state,to_state,condition}', 'foreign keys to ips.vocabulary_state; its owner only'),
    ('contact_form', '{kind,mode,setting}', 'foreign keys to the vocabulary''s partitions; its owner only')
  ) AS x(t, cols, w), unnest(x.cols::text[]) AS c;

CREATE TEMP TABLE bound_arg AS
SELECT g.tgrelid::regclass::text AS rel, split_part(a, ':', 1) AS col
  FROM pg_trigger g, unnest(string_to_array(encode(g.tgargs, 'escape'), '\000')) a
 WHERE g.tgfoid = 'ips.bounds_guard()'::regprocedure AND a <> '';

CREATE TEMP TABLE input_column AS
SELECT c.relname || '.' || a.attname AS col, c.oid AS relid, a.attname
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'ips'::regnamespace AND c.relkind IN ('r', 'p')
   AND a.atttypid IN ('date'::regtype, 'timestamptz'::regtype, 'text'::regtype, 'varchar'::regtype);

SELECT is((SELECT string_agg(i.col, ', ' ORDER BY i.col) FROM input_column i
            WHERE NOT EXISTS (SELECT 1 FROM bound_arg b WHERE b.rel = i.relid::regclass::text AND b.col = i.attname)
              AND i.col NOT IN (SELECT col FROM bounded_otherwise)),
          NULL, 'every date, timestamptz and text column of ips is bounded (or written down with what bounds it)');
SELECT is((SELECT string_agg(o.col, ', ' ORDER BY o.col) FROM bounded_otherwise o
            WHERE o.col NOT IN (SELECT col FROM input_column)), NULL,
          'every column written down here exists');
-- the triggers are named <table>_bounds and fire before the guards that read the same rows
-- (ips.fact_guard, ips.episode_guard, ips.history_guard: row triggers fire in name order), so
-- an infinite or far-off date is answered by the bound, not by a guard converting it
SELECT is((SELECT string_agg(g.tgname, ', ' ORDER BY g.tgname) FROM pg_trigger g
            WHERE g.tgfoid = 'ips.bounds_guard()'::regprocedure
              AND (g.tgname <> (SELECT c.relname FROM pg_class c WHERE c.oid = g.tgrelid) || '_bounds'
                   OR EXISTS (SELECT 1 FROM pg_trigger o WHERE o.tgrelid = g.tgrelid AND o.tgname < g.tgname
                                 AND o.tgfoid IN ('ips.fact_guard()'::regprocedure, 'ips.episode_guard()'::regprocedure,
                                                  'ips.history_guard()'::regprocedure)))),
          NULL, 'each bounds trigger is <table>_bounds and fires before the guards of its table');
-- every dated column a bounds trigger checks also has a finite CHECK (holds while triggers are off)
SELECT is((SELECT string_agg(b.rel || '.' || b.col, ', ' ORDER BY b.rel, b.col)
             FROM bound_arg b JOIN pg_attribute a ON a.attrelid = b.rel::regclass AND a.attname = b.col
            WHERE a.atttypid IN ('date'::regtype, 'timestamptz'::regtype)
              AND b.col NOT IN ('created_at', 'recorded_at', 'opened_at', 'closed_at', 'rated_at', 'registered_at')
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = b.rel::regclass AND k.contype = 'c'
                                 AND pg_get_constraintdef(k.oid) ~ ('isfinite\(' || b.col || '\)'))),
          NULL, 'every dated fact column has a CHECK (isfinite(...)) too');

SELECT * FROM finish();
ROLLBACK;
