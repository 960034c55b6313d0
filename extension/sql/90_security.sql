-- Security: roles, consent refusals, row-level security.  This part comes after
-- every other part (hence 90_), so that it can grant on and put policies on every
-- table, view and function of ips; the grants and policies are derived from the
-- catalog by ips.apply_security(), which an upgrade script runs again after adding
-- objects.  The logs are in 85_ledger.sql.

-- A client's recorded refusal to share data (also when no consent was ever given).
CREATE TABLE ips.consent_refusal (
    refusal_id  bigserial PRIMARY KEY,
    client_id   bigint NOT NULL REFERENCES ips.client,
    scope       text NOT NULL CONSTRAINT consent_refusal_scope_fkey REFERENCES ips.vocabulary_consent_scope (code),
    refused_on  date NOT NULL,
    recorded_by name NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_refusal_client_idx ON ips.consent_refusal (client_id, scope);
COMMENT ON TABLE ips.consent_refusal IS 'The client''s recorded refusals of data sharing; a refusal ends a consent of its scope at once.';
-- append-only, for every writer (ips.consent_refusal_guard, 88_table_rules.sql)
CREATE TRIGGER consent_refusal_append_only BEFORE UPDATE OR DELETE ON ips.consent_refusal
    FOR EACH ROW EXECUTE FUNCTION ips.consent_refusal_guard();
CREATE TRIGGER consent_refusal_no_truncate BEFORE TRUNCATE ON ips.consent_refusal
    FOR EACH STATEMENT EXECUTE FUNCTION ips.consent_refusal_guard();

-- Which teams registered a client (so that a team can refer it before it has an episode).
-- A client may be registered by several teams: ips.add_client() of a host key that is
-- registered already adds the caller's team (issue 13: no existence oracle on host keys).
CREATE TABLE ips.client_intake (
    client_id     bigint NOT NULL REFERENCES ips.client,
    team_id       bigint NOT NULL REFERENCES ips.team,
    registered_by name NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, team_id)
);
CREATE INDEX client_intake_team_idx ON ips.client_intake (team_id, client_id);
COMMENT ON TABLE ips.client_intake IS
    'The teams whose specialist or supervisor registered a client with ips.add_client(), one row per team; each sees the client-level record (client, care relationships, consents, refusals) from then on, before and after its referral.';

-- Cheap look-ups for the policy helpers.
CREATE INDEX care_relationship_unit_idx ON ips.care_relationship (unit, client_id);
CREATE INDEX episode_client_idx ON ips.episode (client_id);

-- Who is calling: the helpers of the policies.  Each returns an array and is
-- used as "col = ANY ((SELECT ips.f())::bigint[])", so that it runs once per statement
-- (an InitPlan), not once per row.  They run as definer, to read the staff,
-- episode, care relationship and consent rows that the policies are about.  They
-- are in C (extension/security_policy.c): each query is prepared once per backend,
-- so a call is one execution of a kept plan (a SECURITY DEFINER SQL function cannot
-- be inlined and its body was parsed and planned again at every call site of
-- every statement).

CREATE OR REPLACE FUNCTION ips.my_teams() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_my_teams' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.my_teams() IS 'Policy helper: the team of the calling specialist or supervisor (empty for anyone else).';

CREATE OR REPLACE FUNCTION ips.team_staff() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_team_staff' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.team_staff() IS 'Policy helper: the staff of the caller''s team.';

CREATE OR REPLACE FUNCTION ips.team_episodes() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_team_episodes' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.team_episodes() IS 'Policy helper: the episodes (open and closed) of the caller''s team.';

CREATE OR REPLACE FUNCTION ips.team_reviews() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_team_reviews' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.team_reviews() IS 'Policy helper: the fidelity reviews of the caller''s team.';

CREATE OR REPLACE FUNCTION ips.team_clients() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_team_clients' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.team_clients() IS 'Policy helper: the clients with an episode in the caller''s team, or registered by it.';

CREATE OR REPLACE FUNCTION ips.shared_clients() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_shared_clients' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.shared_clients() IS
    'Policy helper: the clients whom the calling clinician''s unit cares for today and who consent (share_with_care) to sharing with it.';

-- The roles.
CREATE FUNCTION ips.create_roles() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('ips_admin',      'ips: manages settings and reference data, reads the change and access logs'),
        ('ips_supervisor', 'ips: IPS supervisor; reads and writes the records of the own team, manages its reviews'),
        ('ips_specialist', 'ips: employment specialist; reads and writes the records of the own team'),
        ('ips_clinician',  'ips: care team member; reads a client''s record while the unit cares for the client and the client consents'),
        ('ips_analyst',    'ips: analyst; aggregate views only, no person-level rows')) AS v(name, note)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r.name);
                EXECUTE format('COMMENT ON ROLE %I IS %L', r.name, r.note);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;   -- created at the same moment by CREATE EXTENSION in another database
            END;
        END IF;
    END LOOP;
    PERFORM ips.apply_security();
END $$;
COMMENT ON FUNCTION ips.create_roles() IS
    'Makes sure the group roles ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst exist (NOLOGIN), then re-applies the grants and policies; idempotent.';

-- Grants, policies and change-log triggers, derived from the catalog.
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
        "recordable_staff": "ips_supervisor, ips_specialist, ips_clinician", "is_team_client": "ips_supervisor, ips_specialist", "close_review": "ips_admin, ips_supervisor",
        "small_cell_threshold_for_caller": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "team_visible": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "fidelity_team_level": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "fidelity_summary": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst"}';
    -- invoker functions that only the owner (a superuser) runs
    owner_only constant text[] := '{apply_security,attach_host_table,detach_host_table,reattach_host_tables,create_analytics_publication,prepare_analytics_subscriber,access_log_append,archive_blocks}';
    ips_ns constant oid := 'ips'::regnamespace;
    t record;
    f record;
    s record;
    has_client boolean;
    has_episode boolean;
    has_team boolean;
    has_review boolean;
    team_pred text;
    -- in whose name a row is recorded (88_table_rules.sql): the caller; a supervisor also the team's staff
    own_pred constant text := 'staff_id = ANY ((SELECT ips.recordable_staff())::bigint[])';
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

        IF t.relname IN ('change_log', 'access_log', 'ledger_pending', 'ledger_block') THEN
            -- written only by the ledger (docs/ledger.md); read by ips_admin
            EXECUTE format('GRANT SELECT ON ips.%I TO ips_admin', t.relname);
            CONTINUE;
        ELSIF has_client OR has_episode THEN
            -- person-level: the team's rows for specialists and supervisors; shared clients for clinicians
            team_pred := CASE
                WHEN t.relname = 'episode' THEN 'team_id = ANY ((SELECT ips.my_teams())::bigint[])'
                -- a team sees its own registrations only (not which other teams registered the client, nor who)
                WHEN t.relname = 'client_intake' THEN 'team_id = ANY ((SELECT ips.my_teams())::bigint[])'
                WHEN has_episode AND t.relname <> 'employer_contact' THEN 'episode_id = ANY ((SELECT ips.team_episodes())::bigint[])'
                ELSE 'client_id = ANY ((SELECT ips.team_clients())::bigint[])' END;
            EXECUTE format('ALTER TABLE ips.%I ENABLE ROW LEVEL SECURITY', t.relname);
            IF t.relname = 'employer_contact' THEN
                -- the job-development log: the team reads its contacts; a contact is recorded in the
                -- caller's own name (a supervisor's: also the team's staff), on behalf of a client
                -- of the team or of none
                EXECUTE 'CREATE POLICY ips_team_read ON ips.employer_contact FOR SELECT TO ips_specialist, ips_supervisor'
                     || ' USING (staff_id = ANY ((SELECT ips.team_staff())::bigint[]) OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[]))';
                EXECUTE 'CREATE POLICY ips_team_write ON ips.employer_contact FOR INSERT TO ips_specialist, ips_supervisor'
                     || ' WITH CHECK (' || own_pred
                     || ' AND (episode_id IS NULL AND client_id IS NULL OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[])))';
                EXECUTE 'CREATE POLICY ips_team_update ON ips.employer_contact FOR UPDATE TO ips_specialist, ips_supervisor'
                     || ' USING (' || own_pred || ')'
                     || ' WITH CHECK (' || own_pred
                     || ' AND (episode_id IS NULL AND client_id IS NULL OR episode_id = ANY ((SELECT ips.team_episodes())::bigint[])))';
            ELSIF t.relname = 'episode' THEN
                -- a new episode: in the caller's team, for a client the caller sees already (checked
                -- before unique and foreign keys: another team's client answers like none); an
                -- episode keeps its client (ips.episode_guard), so an update checks the team only
                EXECUTE format('CREATE POLICY ips_team_read ON ips.episode FOR SELECT TO ips_specialist, ips_supervisor USING (%s)', team_pred);
                EXECUTE format('CREATE POLICY ips_team_write ON ips.episode FOR INSERT TO ips_specialist, ips_supervisor'
                               ' WITH CHECK (%s AND ips.is_team_client(client_id))', team_pred);
                EXECUTE format('CREATE POLICY ips_team_update ON ips.episode FOR UPDATE TO ips_specialist, ips_supervisor'
                               ' USING (%s) WITH CHECK (%s)', team_pred, team_pred);
            ELSIF t.relname = 'contact' THEN
                -- the team reads its contacts; a contact is recorded and changed in the caller's own name
                EXECUTE format('CREATE POLICY ips_team_read ON ips.contact FOR SELECT TO ips_specialist, ips_supervisor USING (%s)', team_pred);
                EXECUTE format('CREATE POLICY ips_team_write ON ips.contact FOR INSERT TO ips_specialist, ips_supervisor'
                               ' WITH CHECK (%s AND %s)', team_pred, own_pred);
                EXECUTE format('CREATE POLICY ips_team_update ON ips.contact FOR UPDATE TO ips_specialist, ips_supervisor'
                               ' USING (%s AND %s) WITH CHECK (%s AND %s)', team_pred, own_pred, team_pred, own_pred);
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
                     || ' WITH CHECK (kind = ''care_team'' AND ' || own_pred
                     || ' AND client_id = ANY ((SELECT ips.shared_clients())::bigint[]))';
                EXECUTE 'GRANT INSERT ON ips.contact TO ips_clinician';
            END IF;
            roles := CASE t.relname
                -- registered by ips.add_client(); the host key is never changed by staff (an UPDATE of it
                -- would answer 23505 for a key another team registered: an existence oracle)
                WHEN 'client' THEN 'SELECT, UPDATE (birth_year, municipality)'
                WHEN 'client_intake' THEN 'SELECT'               -- written by ips.add_client() and its trigger on ips.client
                WHEN 'consent_refusal' THEN 'SELECT'             -- appended by ips.refuse_consent()
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
            IF t.relname = 'fidelity_frozen' THEN
                -- written by ips.close_review() only (as definer), never changed
                EXECUTE 'GRANT SELECT ON ips.fidelity_frozen TO ips_supervisor, ips_admin';
            ELSE
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ips.%I TO ips_supervisor, ips_admin', t.relname);
            END IF;
        ELSIF t.relname = 'team_meeting' THEN
            -- attendance: the team reads; a specialist records their own, a supervisor the team's
            EXECUTE 'ALTER TABLE ips.team_meeting ENABLE ROW LEVEL SECURITY';
            EXECUTE 'CREATE POLICY ips_team_read ON ips.team_meeting FOR SELECT TO ips_specialist, ips_supervisor'
                 || ' USING (team_id = ANY ((SELECT ips.my_teams())::bigint[]))';
            EXECUTE 'CREATE POLICY ips_own_meeting ON ips.team_meeting FOR INSERT TO ips_specialist, ips_supervisor'
                 || ' WITH CHECK (' || own_pred || ' AND team_id = ANY ((SELECT ips.my_teams())::bigint[]))';
            EXECUTE 'GRANT SELECT, INSERT ON ips.team_meeting TO ips_specialist, ips_supervisor';
        ELSIF t.relname = 'host_attachment' THEN
            EXECUTE 'GRANT SELECT ON ips.host_attachment TO ips_admin';
        ELSE
            -- reference data: the ips roles read (analysts neither the staff list nor the staff's
            -- terms of employment), ips_admin writes
            EXECUTE format('GRANT SELECT ON ips.%I TO %s', t.relname,
                           CASE WHEN t.relname IN ('staff', 'staff_terms') THEN staff_roles ELSE all_roles END);
            -- the vocabulary (its partitions, the allowed transitions and contact forms) is the
            -- extension's: changed by its owner only (docs/records.md, "Vocabulary")
            IF NOT (t.relname IN ('vocabulary', 'state_transition', 'contact_form') OR t.relname LIKE 'vocabulary\_%') THEN
                EXECUTE format('GRANT INSERT, UPDATE, DELETE ON ips.%I TO ips_admin', t.relname);
            END IF;
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
        ELSIF t.relname = 'vocabulary_labels' THEN
            -- the codes and their labels: reference data, read by every role
            EXECUTE format('ALTER VIEW ips.%I SET (security_invoker = true)', t.relname);
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
        ELSIF f.proname IN ('verify_change_log', 'verify_access_log', 'log_first_break', 'verify_change_log_since', 'verify_access_log_since',
                            'change_log_digest', 'access_log_digest', 'ledger_digest', 'ledger_verify', 'seal') THEN
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

-- Registration: the registering team sees the client until (and after) it refers it.
CREATE FUNCTION ips.client_intake_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO ips.client_intake (client_id, team_id, registered_by)
    SELECT NEW.client_id, s.team_id, ips.caller()
      FROM ips.staff s WHERE s.db_role = ips.caller() AND s.role IN ('specialist', 'supervisor');
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ips.client_intake_record() IS 'Trigger: records which team registered a new client.';
CREATE TRIGGER client_intake AFTER INSERT ON ips.client
    FOR EACH ROW EXECUTE FUNCTION ips.client_intake_record();

-- A new client is not yet visible to anyone through row-level security, so
-- registering one runs as definer (the insert is logged with the caller's role).
ALTER FUNCTION ips.add_client(text, int, text) SECURITY DEFINER;

-- Raise 42501 unless the caller may see the client (definer functions use it).
CREATE FUNCTION ips.require_visible_client(client_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(client_id, 'client_id');
    IF NOT EXISTS (SELECT 1 FROM ips.client c WHERE c.client_id = require_visible_client.client_id)
       OR NOT (pg_catalog.pg_has_role(ips.caller(), 'ips_admin', 'USAGE')
               OR require_visible_client.client_id = ANY (ips.team_clients())
               OR require_visible_client.client_id = ANY (ips.shared_clients())) THEN
        PERFORM ips.not_found('client', client_id);
    END IF;
END $$;
COMMENT ON FUNCTION ips.require_visible_client(bigint) IS
    'Internal: raises P0002 "no client with id" unless the client exists and the caller (ips_admin, its team, a clinician it shares with) may see it.';

CREATE FUNCTION ips.refuse_consent(client_id bigint, scope text, refused_on date) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ips.check_code('consent_scope', scope, 'consent scope');
    PERFORM ips.require(refused_on, 'refused_on');
    IF refused_on > ips.local_date(now()) THEN
        RAISE EXCEPTION 'refusal date % is in the future', refused_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record a refusal when the client has said it.';
    END IF;
    PERFORM ips.require_visible_client(refuse_consent.client_id);
    UPDATE ips.consent c SET withdrawn_on = greatest(c.given_on, refuse_consent.refused_on)
     WHERE c.client_id = refuse_consent.client_id AND c.scope = refuse_consent.scope AND c.withdrawn_on IS NULL;
    INSERT INTO ips.consent_refusal (client_id, scope, refused_on, recorded_by)
    VALUES (refuse_consent.client_id, refuse_consent.scope, refuse_consent.refused_on, ips.caller())
    RETURNING refusal_id INTO id;
    RETURN id;
END $$;
COMMENT ON FUNCTION ips.refuse_consent(bigint, text, date) IS
    'Records the client''s refusal to share data of a scope (share_with_care, ...); ends a consent of that scope at once. Returns the refusal id.';

-- pg_dump keeps the rows of the new tables.
SELECT pg_catalog.pg_extension_config_dump('ips.consent_refusal', '');
SELECT pg_catalog.pg_extension_config_dump('ips.consent_refusal_refusal_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.client_intake', '');

-- The roles, grants and policies.  CREATE EXTENSION runs as a superuser and
-- grants can only name roles that exist, so the install creates the group
-- roles itself (idempotent: roles are shared by all databases of the cluster).
SELECT ips.create_roles();
