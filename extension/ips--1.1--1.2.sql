-- ips 1.1 -> 1.2, written by hand (ALTER EXTENSION ips UPDATE).  Every change of
-- the 1.2 install script (extension/sql/*.sql) that a 1.1 database needs is made
-- here too; tests/t/020_upgrade.pl proves the updated catalog equals a fresh one.
-- One section per concern, in the order of the install script's parts.
\echo Use "ALTER EXTENSION ips UPDATE" to load this file. \quit

-- ===== trust: every guarantee enforced at the table (issue 13)

-- ===== bounded input and settings (issue 13)

-- ===== analysts: suppression and team fidelity (issue 13)

-- ===== the ledger: change log and access log (issue 14)

-- ===== reads of a client's record: logged even when the reader rolls back (issue 14)
-- 1.1's ips.log_access(client_id, purpose, shown) was executable by staff and took
-- the reader from the session; the writer now takes the reader as arguments and is
-- run only by the autonomous writer of ips.client_record().
DROP FUNCTION ips.log_access(bigint, text, jsonb);
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
CREATE OR REPLACE FUNCTION ips.client_record(client_id bigint, purpose text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ips_client_record' LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.client_record(bigint, text) IS
    'The shared record of a client as jsonb (client, episode, state history, current job, recent contacts, open alerts, consents), as far as the caller may see it; logged in ips.access_log in a transaction of its own, so the entry stays when the reader rolls back; fails when it cannot be logged.';

-- ===== staff history, jobs, corrections (issue 16)

-- ===== release clean-up: overlapping checks and the like (issue 15)

-- ===== what people see: settings, labels, the review sheet (issue 17)

-- ===== grants, revokes and policies for new and changed objects
-- ips.apply_security() as in extension/sql/90_security.sql (one copy for every
-- concern: when 90_security.sql changes, this copy is replaced by its new text).
CREATE OR REPLACE FUNCTION ips.apply_security() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    all_roles   constant text := 'ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst';
    staff_roles constant text := 'ips_admin, ips_supervisor, ips_specialist, ips_clinician';
    -- views of aggregates that keep the owner's rights: the only person-derived data analysts read
    aggregate_views constant text[] := '{caseload,outcomes_quarterly}';
    -- tables with their own rules below
    special constant text[] := '{change_log,access_log,client,client_intake,episode,episode_state_history,employer_contact,contact,team_meeting,team,staff,employer,host_attachment}';
    -- SECURITY DEFINER functions and who may call them; other definer functions: staff_roles
    -- (outcomes_quarterly_for applies at least the caller's small-cell threshold itself)
    definer_grants constant jsonb := '{
        "create_roles": "", "current_staff": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "my_teams": "ips_supervisor, ips_specialist, ips_clinician", "team_staff": "ips_supervisor, ips_specialist, ips_clinician",
        "team_episodes": "ips_supervisor, ips_specialist, ips_clinician", "team_clients": "ips_supervisor, ips_specialist, ips_clinician",
        "shared_clients": "ips_supervisor, ips_specialist, ips_clinician", "team_reviews": "ips_supervisor, ips_specialist",
        "add_client": "ips_supervisor, ips_specialist", "refuse_consent": "ips_admin, ips_supervisor, ips_specialist, ips_clinician",
        "log_access": "", "access_report": "ips_admin, ips_supervisor",
        "outcomes_quarterly_for": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "small_cell_threshold_for_caller": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst"}';
    -- invoker functions that only the owner (a superuser) runs
    owner_only constant text[] := '{apply_security,attach_host_table,detach_host_table,reattach_host_tables,create_analytics_publication,prepare_analytics_subscriber}';
    ips_ns constant oid := 'ips'::regnamespace;
    t record;
    f record;
    s record;
    has_client boolean;
    has_episode boolean;
    has_team boolean;
    has_review boolean;
    team_pred text;
    key_cols text;
    roles text;
BEGIN
    -- PUBLIC has no rights on anything of ips; the five roles get theirs below.
    EXECUTE 'REVOKE ALL ON SCHEMA ips FROM PUBLIC';
    EXECUTE 'GRANT USAGE ON SCHEMA ips TO ' || all_roles;
    EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA ips FROM PUBLIC, ' || all_roles;
    EXECUTE 'REVOKE ALL ON ALL SEQUENCES IN SCHEMA ips FROM PUBLIC, ' || all_roles;
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ips FROM PUBLIC, ' || all_roles;
    FOR s IN SELECT ty.oid::regtype AS name FROM pg_catalog.pg_type ty
              WHERE ty.typnamespace = ips_ns AND ty.typtype IN ('b', 'd', 'e', 'r', 'm') AND ty.typcategory <> 'A'
    LOOP
        EXECUTE format('REVOKE ALL ON TYPE %s FROM PUBLIC', s.name);
        EXECUTE format('GRANT USAGE ON TYPE %s TO %s', s.name, all_roles);
    END LOOP;

    -- Tables.
    FOR t IN SELECT c.oid, c.relname FROM pg_catalog.pg_class c
              WHERE c.relnamespace = ips_ns AND c.relkind IN ('r', 'p') ORDER BY c.relname
    LOOP
        SELECT bool_or(a.attname = 'client_id'), bool_or(a.attname = 'episode_id'), bool_or(a.attname = 'team_id'),
               bool_or(a.attname = 'review_id')
          INTO has_client, has_episode, has_team, has_review
          FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped;
        SELECT string_agg(quote_literal(a.attname), ', ' ORDER BY k.ord) INTO key_cols
          FROM pg_catalog.pg_index i
          CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
         WHERE i.indrelid = t.oid AND i.indisprimary;

        -- drop the policies this function made before, so that it can run again
        FOR s IN SELECT p.polname FROM pg_catalog.pg_policy p WHERE p.polrelid = t.oid AND p.polname LIKE 'ips\_%' LOOP
            EXECUTE format('DROP POLICY %I ON ips.%I', s.polname, t.relname);
        END LOOP;

        IF t.relname IN ('change_log', 'access_log') THEN
            -- written only by the C triggers and ips.log_access(); read by ips_admin
            EXECUTE format('GRANT SELECT ON ips.%I TO ips_admin', t.relname);
            CONTINUE;
        ELSIF has_client OR has_episode THEN
            -- person-level: the team's rows for specialists and supervisors; shared clients for clinicians
            team_pred := CASE
                WHEN t.relname = 'episode' THEN 'team_id = ANY ((SELECT ips.my_teams())::bigint[])'
                WHEN has_episode AND t.relname <> 'employer_contact' THEN 'episode_id = ANY ((SELECT ips.team_episodes())::bigint[])'
                ELSE 'client_id = ANY ((SELECT ips.team_clients())::bigint[])' END;
            EXECUTE format('ALTER TABLE ips.%I ENABLE ROW LEVEL SECURITY', t.relname);
            IF t.relname = 'employer_contact' THEN
                -- the job-development log: the team's own contacts, on behalf of a client of the team or of none
                EXECUTE 'CREATE POLICY ips_team_read ON ips.employer_contact FOR SELECT TO ips_specialist, ips_supervisor'
                     || ' USING (staff_id = ANY ((SELECT ips.team_staff())::bigint[]) OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[]))';
                EXECUTE 'CREATE POLICY ips_team_write ON ips.employer_contact FOR INSERT TO ips_specialist, ips_supervisor'
                     || ' WITH CHECK (staff_id = ANY ((SELECT ips.team_staff())::bigint[])'
                     || ' AND (episode_id IS NULL OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[])))';
                EXECUTE 'CREATE POLICY ips_team_update ON ips.employer_contact FOR UPDATE TO ips_specialist, ips_supervisor'
                     || ' USING (staff_id = ANY ((SELECT ips.team_staff())::bigint[]))'
                     || ' WITH CHECK (staff_id = ANY ((SELECT ips.team_staff())::bigint[])'
                     || ' AND (episode_id IS NULL OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[])))';
            ELSE
                EXECUTE format('CREATE POLICY ips_team ON ips.%I TO ips_specialist, ips_supervisor USING (%s) WITH CHECK (%s)',
                               t.relname, team_pred, team_pred);
            END IF;
            IF has_client THEN
                EXECUTE format('CREATE POLICY ips_care_read ON ips.%I FOR SELECT TO ips_clinician'
                               ' USING (client_id = ANY ((SELECT ips.shared_clients())::bigint[]))', t.relname);
                EXECUTE format('GRANT SELECT ON ips.%I TO ips_clinician', t.relname);
            END IF;
            IF t.relname = 'contact' THEN
                -- clinicians record their own care-team contacts for the clients shared with them
                EXECUTE 'CREATE POLICY ips_care_contact ON ips.contact FOR INSERT TO ips_clinician'
                     || ' WITH CHECK (kind = ''care_team'' AND staff_id = ips.current_staff()'
                     || ' AND client_id = ANY ((SELECT ips.shared_clients())::bigint[]))';
                EXECUTE 'GRANT INSERT ON ips.contact TO ips_clinician';
            END IF;
            roles := CASE t.relname
                WHEN 'client' THEN 'SELECT, UPDATE'              -- registered by ips.add_client()
                WHEN 'client_intake' THEN 'SELECT'               -- written by a trigger on ips.client
                WHEN 'episode_state_history' THEN 'SELECT, INSERT' -- appended by the state machine
                ELSE 'SELECT, INSERT, UPDATE' END;
            EXECUTE format('GRANT %s ON ips.%I TO ips_specialist, ips_supervisor', roles, t.relname);
        ELSIF has_team AND NOT t.relname = ANY (special) THEN
            -- team-level (reviews and the like): the team reads, its supervisors manage, ips_admin all
            EXECUTE format('ALTER TABLE ips.%I ENABLE ROW LEVEL SECURITY', t.relname);
            EXECUTE format('CREATE POLICY ips_team_read ON ips.%I FOR SELECT TO ips_specialist, ips_supervisor'
                           ' USING (team_id = ANY ((SELECT ips.my_teams())::bigint[]))', t.relname);
            EXECUTE format('CREATE POLICY ips_team_manage ON ips.%I TO ips_supervisor'
                           ' USING (team_id = ANY ((SELECT ips.my_teams())::bigint[])) WITH CHECK (team_id = ANY ((SELECT ips.my_teams())::bigint[]))',
                           t.relname);
            EXECUTE format('CREATE POLICY ips_admin_all ON ips.%I TO ips_admin USING (true) WITH CHECK (true)', t.relname);
            EXECUTE format('GRANT SELECT ON ips.%I TO ips_specialist', t.relname);
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ips.%I TO ips_supervisor, ips_admin', t.relname);
        ELSIF has_review AND t.relname <> 'fidelity_review' THEN
            -- parts of a fidelity review (ratings, reviewers, actions, results): as the review
            EXECUTE format('ALTER TABLE ips.%I ENABLE ROW LEVEL SECURITY', t.relname);
            EXECUTE format('CREATE POLICY ips_team_read ON ips.%I FOR SELECT TO ips_specialist, ips_supervisor'
                           ' USING (review_id = ANY ((SELECT ips.team_reviews())::bigint[]))', t.relname);
            EXECUTE format('CREATE POLICY ips_team_manage ON ips.%I TO ips_supervisor'
                           ' USING (review_id = ANY ((SELECT ips.team_reviews())::bigint[]))'
                           ' WITH CHECK (review_id = ANY ((SELECT ips.team_reviews())::bigint[]))', t.relname);
            EXECUTE format('CREATE POLICY ips_admin_all ON ips.%I TO ips_admin USING (true) WITH CHECK (true)', t.relname);
            EXECUTE format('GRANT SELECT ON ips.%I TO ips_specialist', t.relname);
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ips.%I TO ips_supervisor, ips_admin', t.relname);
        ELSIF t.relname = 'team_meeting' THEN
            -- attendance: the team reads; a specialist records their own
            EXECUTE 'ALTER TABLE ips.team_meeting ENABLE ROW LEVEL SECURITY';
            EXECUTE 'CREATE POLICY ips_team_read ON ips.team_meeting FOR SELECT TO ips_specialist, ips_supervisor'
                 || ' USING (team_id = ANY ((SELECT ips.my_teams())::bigint[]))';
            EXECUTE 'CREATE POLICY ips_own_meeting ON ips.team_meeting FOR INSERT TO ips_specialist, ips_supervisor'
                 || ' WITH CHECK (staff_id = ips.current_staff() AND team_id = ANY ((SELECT ips.my_teams())::bigint[]))';
            EXECUTE 'GRANT SELECT, INSERT ON ips.team_meeting TO ips_specialist, ips_supervisor';
        ELSIF t.relname = 'host_attachment' THEN
            EXECUTE 'GRANT SELECT ON ips.host_attachment TO ips_admin';
        ELSE
            -- reference data: the ips roles read (analysts not the staff list), ips_admin writes
            EXECUTE format('GRANT SELECT ON ips.%I TO %s', t.relname,
                           CASE WHEN t.relname = 'staff' THEN staff_roles ELSE all_roles END);
            EXECUTE format('GRANT INSERT, UPDATE, DELETE ON ips.%I TO ips_admin', t.relname);
            IF t.relname = 'employer' THEN
                -- job development: specialists and supervisors add and update employers
                EXECUTE 'GRANT INSERT, UPDATE ON ips.employer TO ips_specialist, ips_supervisor';
            END IF;
        END IF;

        -- every change of person-level, team-level and staff rows goes to the change log
        IF has_client OR has_episode OR has_team OR has_review THEN
            -- one trigger per event, per statement, over the transition tables: a statement
            -- changing many rows (COPY, a bulk UPDATE) appends its entries with one INSERT
            -- (1.0 had one row trigger, zz_change_log, for all three events)
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid = t.oid AND g.tgname = 'zz_change_log') THEN
                EXECUTE format('DROP TRIGGER zz_change_log ON ips.%I', t.relname);
            END IF;
            EXECUTE format('CREATE OR REPLACE TRIGGER zz_change_log_insert AFTER INSERT ON ips.%I'
                           ' REFERENCING NEW TABLE AS ips_new'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION ips.change_log_row(%s)', t.relname, coalesce(key_cols, ''));
            EXECUTE format('CREATE OR REPLACE TRIGGER zz_change_log_update AFTER UPDATE ON ips.%I'
                           ' REFERENCING OLD TABLE AS ips_old NEW TABLE AS ips_new'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION ips.change_log_row(%s)', t.relname, coalesce(key_cols, ''));
            EXECUTE format('CREATE OR REPLACE TRIGGER zz_change_log_delete AFTER DELETE ON ips.%I'
                           ' REFERENCING OLD TABLE AS ips_old'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION ips.change_log_row(%s)', t.relname, coalesce(key_cols, ''));
            EXECUTE format('CREATE OR REPLACE TRIGGER zz_change_log_truncate AFTER TRUNCATE ON ips.%I'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION ips.change_log_row()', t.relname);
        END IF;

        -- the sequences of a table: for whoever inserts into it
        FOR s IN SELECT q.oid::regclass AS name FROM pg_catalog.pg_class q
                   JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = q.oid
                                              AND d.refobjid = t.oid AND d.deptype IN ('a', 'i')
                  WHERE q.relkind = 'S'
        LOOP
            SELECT string_agg(r, ', ') INTO roles FROM unnest('{ips_admin,ips_supervisor,ips_specialist,ips_clinician}'::text[]) r
             WHERE pg_catalog.has_table_privilege(r, t.oid, 'INSERT');
            IF roles IS NOT NULL THEN
                EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %s', s.name, roles);
            END IF;
        END LOOP;
    END LOOP;

    -- Views: aggregates keep the owner's rights and are the analysts' only data;
    -- every other view runs with the caller's rights, so that row-level security applies.
    FOR t IN SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace = ips_ns AND c.relkind IN ('v', 'm')
    LOOP
        IF t.relname = ANY (aggregate_views) THEN
            EXECUTE format('GRANT SELECT ON ips.%I TO %s', t.relname, all_roles);
        ELSE
            EXECUTE format('ALTER VIEW ips.%I SET (security_invoker = true)', t.relname);
            EXECUTE format('GRANT SELECT ON ips.%I TO %s', t.relname, staff_roles);
            EXECUTE format('GRANT INSERT, UPDATE, DELETE ON ips.%I TO ips_admin', t.relname);
        END IF;
    END LOOP;

    -- Functions: invoker functions for every ips role (the table privileges and
    -- policies decide); definer functions as listed; trigger functions for nobody.
    FOR f IN SELECT p.oid::regprocedure AS sig, p.proname, p.prosecdef, p.prorettype = 'pg_catalog.trigger'::regtype AS is_trigger
               FROM pg_catalog.pg_proc p WHERE p.pronamespace = ips_ns
    LOOP
        IF f.is_trigger OR f.proname = ANY (owner_only) THEN
            CONTINUE;
        ELSIF f.prosecdef THEN
            roles := coalesce(definer_grants ->> f.proname::text, staff_roles);
        ELSIF f.proname IN ('verify_change_log', 'verify_access_log', 'log_first_break') THEN
            roles := 'ips_admin';
        ELSE
            roles := all_roles;
        END IF;
        IF roles <> '' THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f.sig, roles);
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION ips.apply_security() IS
    'Internal: revokes everything from PUBLIC and grants to the ips roles, enables row-level security with its policies, and puts the change-log trigger on person-level tables; derived from the catalog, idempotent.';

SELECT ips.apply_security();
