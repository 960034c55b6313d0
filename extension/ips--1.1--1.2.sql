-- ips 1.1 -> 1.2, written by hand (ALTER EXTENSION ips UPDATE).  Every change of
-- the 1.2 install script (extension/sql/*.sql) that a 1.1 database needs is made
-- here too; tests/t/020_upgrade.pl proves the updated catalog equals a fresh one.
-- One section per concern, in the order of the install script's parts.
\echo Use "ALTER EXTENSION ips UPDATE" to load this file. \quit

-- ===== trust: every guarantee enforced at the table (issue 13)
-- extension/sql/88_table_rules.sql: the table rules (triggers) and their policy helpers
-- Policy helper (extension/security_policy.c): in whose name the caller may record.
CREATE FUNCTION ips.recordable_staff() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ips_recordable_staff' LANGUAGE C STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ips.recordable_staff() IS
    'Policy helper: the staff in whose name the caller records contacts and meetings: the caller; a supervisor also the own team''s staff.';

-- Policy helper: whether the caller's team sees a client (an episode in the team, or
-- registered by it).  Per row, for the WITH CHECK of a new episode: one or two index
-- look-ups instead of the whole ips.team_clients() array (1.5 ms per statement for a
-- team of 6 000 clients), as an episode is inserted one at a time.
CREATE FUNCTION ips.is_team_client(client_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    teams bigint[] := ips.my_teams();
BEGIN
    RETURN EXISTS (SELECT 1 FROM ips.episode e WHERE e.client_id = is_team_client.client_id AND e.team_id = ANY (teams))
        OR EXISTS (SELECT 1 FROM ips.client_intake i WHERE i.client_id = is_team_client.client_id AND i.team_id = ANY (teams));
END $$;
COMMENT ON FUNCTION ips.is_team_client(bigint) IS
    'Policy helper: true when the client has an episode in the caller''s team or was registered by it (what ips.team_clients() lists).';

-- Whether pg_restore is loading rows (ips.restoring, settable by a superuser only).
CREATE FUNCTION ips.restoring() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(current_setting('ips.restoring', true), 'off') = 'on'
$$;
COMMENT ON FUNCTION ips.restoring() IS 'Internal: true while pg_restore loads rows with ips.restoring = on.';

------------------------------------------------------------------------------
-- An episode's specialist belongs to the episode's team.
------------------------------------------------------------------------------

CREATE FUNCTION ips.episode_specialist_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s_team bigint;
    s_role text;
    e_team bigint;
    s_id bigint;
BEGIN
    IF ips.restoring() THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'episode' THEN
        s_id := NEW.specialist_id;
        e_team := NEW.team_id;
    ELSE
        s_id := NEW.staff_id;
        SELECT e.team_id INTO e_team FROM ips.episode e WHERE e.episode_id = NEW.episode_id;
        IF NOT FOUND THEN
            PERFORM ips.not_found('episode', NEW.episode_id);
        END IF;
    END IF;
    SELECT s.team_id, s.role INTO s_team, s_role FROM ips.staff s WHERE s.staff_id = s_id;
    IF NOT FOUND THEN
        PERFORM ips.not_found('staff member', s_id);
    END IF;
    IF s_role <> 'specialist' THEN
        RAISE EXCEPTION 'staff member % is a %, not an employment specialist', s_id, s_role
            USING ERRCODE = 'check_violation', HINT = 'Assign a staff member whose role is specialist (ips.assign_specialist).';
    END IF;
    IF s_team <> e_team THEN
        RAISE EXCEPTION 'staff member % belongs to team %, the episode to team %', s_id, s_team, e_team
            USING ERRCODE = 'check_violation', HINT = 'Assign a specialist of the episode''s own team (ips.assign_specialist).';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.episode_specialist_check() IS
    'Trigger: the specialist of an episode (and of a specialist assignment) is a specialist of the episode''s team.';

CREATE TRIGGER episode_specialist_insert BEFORE INSERT ON ips.episode
    FOR EACH ROW WHEN (NEW.specialist_id IS NOT NULL) EXECUTE FUNCTION ips.episode_specialist_check();
CREATE TRIGGER episode_specialist_update BEFORE UPDATE OF specialist_id, team_id ON ips.episode
    FOR EACH ROW WHEN (NEW.specialist_id IS NOT NULL AND (NEW.specialist_id IS DISTINCT FROM OLD.specialist_id
                                                         OR NEW.team_id IS DISTINCT FROM OLD.team_id))
    EXECUTE FUNCTION ips.episode_specialist_check();
-- after specialist_assignment_guard (triggers fire in name order), which refuses an unknown episode
CREATE TRIGGER specialist_assignment_team BEFORE INSERT OR UPDATE OF staff_id, episode_id ON ips.specialist_assignment
    FOR EACH ROW EXECUTE FUNCTION ips.episode_specialist_check();

-- A specialist who carries open episodes keeps the team and the role while they do.
-- As definer: ips_admin, who moves staff, does not read episodes (the error gives a count only).
CREATE FUNCTION ips.staff_specialist_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF ips.restoring() THEN
        RETURN NEW;
    END IF;
    SELECT count(*) INTO n FROM ips.episode e
     WHERE e.specialist_id = OLD.staff_id AND e.closed_on IS NULL
       AND (e.team_id <> NEW.team_id OR NEW.role <> 'specialist');
    IF n > 0 THEN
        RAISE EXCEPTION 'staff member % is the specialist of % open episodes of team %', OLD.staff_id, n, OLD.team_id
            USING ERRCODE = 'check_violation',
                  DETAIL = 'An episode''s specialist is a specialist of the episode''s team.',
                  HINT = 'Assign the episodes to another specialist of the team first (ips.assign_specialist).';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.staff_specialist_check() IS
    'Trigger: a specialist of open episodes does not change team or role until they are assigned to someone else.';
CREATE TRIGGER staff_specialist_team BEFORE UPDATE OF team_id, role ON ips.staff
    FOR EACH ROW WHEN (NEW.team_id IS DISTINCT FROM OLD.team_id OR NEW.role IS DISTINCT FROM OLD.role)
    EXECUTE FUNCTION ips.staff_specialist_check();

------------------------------------------------------------------------------
-- Consents: a refusal is append-only; a withdrawn consent stays withdrawn.
------------------------------------------------------------------------------

CREATE FUNCTION ips.consent_refusal_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'consent refusals are append-only'
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('%s on ips.consent_refusal is refused.', TG_OP),
              HINT = 'A refusal stands; the client may give a new consent (ips.give_consent).';
END $$;
COMMENT ON FUNCTION ips.consent_refusal_guard() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE of consent refusals.';
-- (its triggers are made with ips.consent_refusal, in 90_security.sql)

CREATE FUNCTION ips.consent_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'consents are not deleted'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('%s on ips.consent is refused.', TG_OP),
                  HINT = 'Withdraw a consent with ips.withdraw_consent() or record a refusal with ips.refuse_consent().';
    END IF;
    IF OLD.withdrawn_on IS NOT NULL THEN
        RAISE EXCEPTION 'consent % was withdrawn on %', OLD.consent_id, OLD.withdrawn_on
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A withdrawn consent is final.',
                  HINT = 'The client may give a new consent (ips.give_consent).';
    END IF;
    IF NEW.consent_id <> OLD.consent_id OR NEW.client_id <> OLD.client_id OR NEW.scope <> OLD.scope
       OR NEW.given_on <> OLD.given_on THEN
        RAISE EXCEPTION 'a consent keeps its client, scope and date'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Withdraw it (ips.withdraw_consent) and record a new one (ips.give_consent).';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.consent_guard() IS
    'Trigger: a consent changes only by its withdrawal; a withdrawn consent is final; consents are not deleted.';
CREATE TRIGGER consent_guard BEFORE UPDATE OR DELETE ON ips.consent
    FOR EACH ROW EXECUTE FUNCTION ips.consent_guard();
CREATE TRIGGER consent_no_truncate BEFORE TRUNCATE ON ips.consent
    FOR EACH STATEMENT EXECUTE FUNCTION ips.consent_guard();

------------------------------------------------------------------------------
-- Fidelity reviews: a closed review, its ratings, reviewers and frozen result
-- never change; a review is closed only with its frozen result (ips.close_review).
------------------------------------------------------------------------------

CREATE FUNCTION ips.fidelity_review_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF ips.restoring() THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'fidelity review % was closed on %', OLD.review_id, ips.local_date(OLD.closed_at)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s of a closed review is refused.', TG_OP),
                  HINT = 'A closed review is final; open a review of another period.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF NEW.closed_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ips.fidelity_frozen f WHERE f.review_id = NEW.review_id) THEN
        RAISE EXCEPTION 'fidelity review % has no frozen result', NEW.review_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Close a review with ips.close_review(); it freezes the result.';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.fidelity_review_guard() IS
    'Trigger: a closed fidelity review is final (no UPDATE, no DELETE, no reopening); it is closed only with its frozen result.';
CREATE TRIGGER fidelity_review_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.fidelity_review
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_review_guard();

-- Rows that hang on a review (ratings, reviewers, frozen items): only while it is open;
-- frozen items are never changed nor deleted.
CREATE FUNCTION ips.fidelity_part_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    closed timestamptz;
BEGIN
    IF ips.restoring() THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_LEVEL = 'STATEMENT' OR (TG_TABLE_NAME = 'fidelity_frozen' AND TG_OP <> 'INSERT') THEN
        RAISE EXCEPTION 'the frozen result of a fidelity review never changes'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s on ips.%s is refused.', TG_OP, TG_TABLE_NAME),
                  HINT = 'A closed review is final; ips.review_changes() shows what the records say now.';
    END IF;
    SELECT r.closed_at INTO closed FROM ips.fidelity_review r
     WHERE r.review_id = CASE WHEN TG_OP = 'DELETE' THEN OLD.review_id ELSE NEW.review_id END;
    IF closed IS NULL AND TG_OP = 'UPDATE' THEN
        SELECT r.closed_at INTO closed FROM ips.fidelity_review r WHERE r.review_id = OLD.review_id;
    END IF;
    IF closed IS NOT NULL THEN
        RAISE EXCEPTION 'fidelity review % was closed on %',
                        CASE WHEN TG_OP = 'DELETE' THEN OLD.review_id ELSE NEW.review_id END, ips.local_date(closed)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s on ips.%s of a closed review is refused.', TG_OP, TG_TABLE_NAME),
                  HINT = 'A closed review is final; open a review of another period.';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
COMMENT ON FUNCTION ips.fidelity_part_guard() IS
    'Trigger: ratings, reviewers and frozen items of a closed review never change; frozen items are never updated nor deleted.';
CREATE TRIGGER fidelity_rating_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.fidelity_rating
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_part_guard();
CREATE TRIGGER fidelity_reviewer_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.fidelity_reviewer
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_part_guard();
CREATE TRIGGER fidelity_frozen_guard BEFORE INSERT OR UPDATE OR DELETE ON ips.fidelity_frozen
    FOR EACH ROW EXECUTE FUNCTION ips.fidelity_part_guard();
CREATE TRIGGER fidelity_frozen_no_truncate BEFORE TRUNCATE ON ips.fidelity_frozen
    FOR EACH STATEMENT EXECUTE FUNCTION ips.fidelity_part_guard();

-- consent refusals are append-only (90_security.sql)
-- append-only, for every writer (ips.consent_refusal_guard, 88_table_rules.sql)
CREATE TRIGGER consent_refusal_append_only BEFORE UPDATE OR DELETE ON ips.consent_refusal
    FOR EACH ROW EXECUTE FUNCTION ips.consent_refusal_guard();
CREATE TRIGGER consent_refusal_no_truncate BEFORE TRUNCATE ON ips.consent_refusal
    FOR EACH STATEMENT EXECUTE FUNCTION ips.consent_refusal_guard();

-- ips.close_review runs as definer: only the owner writes ips.fidelity_frozen (40_fidelity.sql)
CREATE OR REPLACE FUNCTION ips.close_review(review_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.fidelity_review;
BEGIN
    IF NOT pg_catalog.pg_has_role(ips.caller(), 'ips_admin', 'USAGE') THEN
        IF close_review.review_id IS NULL OR NOT close_review.review_id = ANY (ips.team_reviews()) THEN
            PERFORM ips.not_found('fidelity review', close_review.review_id);
        END IF;
        IF NOT pg_catalog.pg_has_role(ips.caller(), 'ips_supervisor', 'USAGE') THEN
            RAISE EXCEPTION 'only a supervisor of the team or ips_admin closes a fidelity review'
                USING ERRCODE = 'insufficient_privilege', HINT = 'Ask the team''s supervisor.';
        END IF;
    END IF;
    r := ips.fidelity_review_get(close_review.review_id, true);
    PERFORM 1 FROM ips.fidelity_review v WHERE v.review_id = r.review_id FOR UPDATE;
    INSERT INTO ips.fidelity_frozen (review_id, item, score, source, measure, evidence)
    SELECT r.review_id, f.item, f.score, f.source, f.measure, f.evidence
      FROM ips.fidelity(r.team_id, r.period_start, r.period_end) f;
    UPDATE ips.fidelity_review v SET closed_at = now(), closed_by = ips.caller() WHERE v.review_id = r.review_id;
END $$;
COMMENT ON FUNCTION ips.close_review(bigint) IS
    'Closes a review: its 25 rows (computed items included) are frozen as they stand now and no longer follow later corrections of the records.';

-- the policies: episodes for visible clients only, contacts and meetings in the caller's own name,
-- consent refusals and frozen results not writable by staff (90_security.sql; run at the end)
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
                WHEN 'client' THEN 'SELECT, UPDATE'              -- registered by ips.add_client()
                WHEN 'client_intake' THEN 'SELECT'               -- written by a trigger on ips.client
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

-- ===== bounded input and settings (issue 13)
-- ips.not_found: a NULL id is a missing argument (22004); ips.check_code: a NULL code too (in C).
CREATE OR REPLACE FUNCTION ips.not_found(what text, id bigint) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'the % id must not be NULL', what
            USING ERRCODE = 'null_value_not_allowed', HINT = format('Give the id of the %s.', what);
    END IF;
    RAISE EXCEPTION 'no % with id %', what, id
        USING ERRCODE = 'no_data_found',
              HINT = format('Check the %s id; the caller may also lack the right to see it.', what);
END $$;
COMMENT ON FUNCTION ips.not_found(text, bigint) IS 'Internal: raises P0002 for an unknown or invisible id, 22004 for a NULL one.';
COMMENT ON FUNCTION ips.check_code(text, text, text) IS 'Internal: raises 22023 with the valid codes as hint unless code belongs to category; 22004 when code is NULL.';

-- A NULL client of withdraw_consent, a NULL item or score of rate: 22004 like every missing argument.
CREATE OR REPLACE FUNCTION ips.withdraw_consent(client_id bigint, scope text, withdrawn_on date) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.consent;
BEGIN
    PERFORM ips.require(withdraw_consent.client_id, 'client_id');
    PERFORM ips.check_code('consent_scope', scope, 'consent scope');
    PERFORM ips.require(withdrawn_on, 'withdrawn_on');
    SELECT * INTO r FROM ips.consent c
     WHERE c.client_id = withdraw_consent.client_id AND c.scope = withdraw_consent.scope
       AND c.withdrawn_on IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'client % has no active % consent', coalesce(withdraw_consent.client_id::text, 'NULL'), scope
            USING ERRCODE = 'no_data_found', HINT = 'Check the client id and the scope.';
    END IF;
    IF withdrawn_on < r.given_on THEN
        RAISE EXCEPTION 'withdrawal date % is before the consent was given on %', withdrawn_on, r.given_on
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Check the date.';
    END IF;
    UPDATE ips.consent c SET withdrawn_on = withdraw_consent.withdrawn_on WHERE c.consent_id = r.consent_id;
END $$;
CREATE OR REPLACE FUNCTION ips.rate(review_id bigint, item text, score int, note text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r ips.fidelity_review := ips.fidelity_review_get(rate.review_id, true);
BEGIN
    PERFORM ips.require(item, 'item');
    PERFORM ips.require(score, 'score');
    IF item IS NULL OR NOT EXISTS (SELECT 1 FROM ips.fidelity_item i WHERE i.item = rate.item) THEN
        RAISE EXCEPTION 'unknown fidelity item "%"', coalesce(item, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Use one of: %s.', (SELECT string_agg(i.item, ', ' ORDER BY i.ordinal) FROM ips.fidelity_item i));
    END IF;
    IF score IS NULL OR score NOT BETWEEN 1 AND 5 THEN
        RAISE EXCEPTION 'score % is out of range', coalesce(score::text, 'NULL')
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'An item scores 1 to 5.';
    END IF;
    INSERT INTO ips.fidelity_rating (review_id, item, score, note)
    VALUES (r.review_id, rate.item, rate.score, rate.note)
    ON CONFLICT ON CONSTRAINT fidelity_rating_pkey
    DO UPDATE SET score = EXCLUDED.score, note = EXCLUDED.note, rated_by = EXCLUDED.rated_by, rated_at = EXCLUDED.rated_at;
END $$;

-- Bounded input (issue 13): what any role may store is bounded at the table, so
-- that no row written by an API function, a direct INSERT/UPDATE or COPY makes a
-- shared report unbounded.  docs/input-limits.md lists the limits and SQLSTATEs.
--
--   * dates and instants are finite (CHECK constraints, immutable);
--   * dated facts lie between the earliest day (setting earliest_fact_date,
--     default 1900-01-01) and today in the region's time zone, planned days at
--     most 10 years ahead, texts have a maximum length, integers a range: the
--     trigger ips.bounds_guard() (C, extension/bounds.c; no SPI per row), which
--     gives each bad value its own SQLSTATE and a hint;
--   * settings are validated when they are written (ips.setting_check()); the
--     numbers of the contact rules are checked by ips.rule_check() (30_rules.sql).
-- The tables made by 90_security.sql get theirs in 92_bounds_late.sql.

INSERT INTO ips.setting (name, value, description) VALUES
  ('earliest_fact_date', '1900-01-01',
   'The earliest day a fact (contact, referral, job, consent ...) may be dated; a date from 1800-01-01 to 1900-01-01.');

CREATE FUNCTION ips.bounds_guard() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_bounds_guard' LANGUAGE C;
COMMENT ON FUNCTION ips.bounds_guard() IS
    'Trigger: refuses dates outside earliest_fact_date .. today (22008, 22023), texts over their length (22001) and integers out of range (22003); arguments: col, col:plan, col:N, col:LO:HI, col:required (22004).';

-- Dates and instants are finite: a CHECK per column (holds also while triggers are off).
ALTER TABLE ips.care_relationship
    ADD CONSTRAINT care_relationship_dates_finite CHECK (isfinite(started_on) AND isfinite(ended_on));
ALTER TABLE ips.consent
    ADD CONSTRAINT consent_dates_finite CHECK (isfinite(given_on) AND isfinite(withdrawn_on));
ALTER TABLE ips.episode
    ADD CONSTRAINT episode_dates_finite CHECK (isfinite(referred_on) AND isfinite(state_since) AND isfinite(entry_on)
                                               AND isfinite(career_profile_on) AND isfinite(closed_on));
ALTER TABLE ips.episode_state_history
    ADD CONSTRAINT episode_state_history_dates_finite CHECK (isfinite(at));
ALTER TABLE ips.specialist_assignment
    ADD CONSTRAINT specialist_assignment_dates_finite CHECK (isfinite(from_on) AND isfinite(to_on));
ALTER TABLE ips.contact
    ADD CONSTRAINT contact_dates_finite CHECK (isfinite(at));
ALTER TABLE ips.employer_contact
    ADD CONSTRAINT employer_contact_dates_finite CHECK (isfinite(at));
ALTER TABLE ips.job
    ADD CONSTRAINT job_dates_finite CHECK (isfinite(starts_on) AND isfinite(ends_on));
ALTER TABLE ips.study
    ADD CONSTRAINT study_dates_finite CHECK (isfinite(starts_on) AND isfinite(ends_on));
ALTER TABLE ips.team_meeting
    ADD CONSTRAINT team_meeting_dates_finite CHECK (isfinite(met_on));
ALTER TABLE ips.fidelity_review
    ADD CONSTRAINT fidelity_review_dates_finite CHECK (isfinite(period_start) AND isfinite(period_end) AND isfinite(reviewed_on));
ALTER TABLE ips.fidelity_action
    ADD CONSTRAINT fidelity_action_dates_finite CHECK (isfinite(due_on) AND isfinite(done_on));

-- The bounds of every column that takes input (named <table>_bounds: fires before the
-- table's other BEFORE triggers, which run in name order).  ips.episode.state_since is
-- bounded by the state machine (ips.episode_guard: not before the referral, not in the
-- future), the episode's derived days (entry_on, closed_on) follow from it.
CREATE TRIGGER team_bounds BEFORE INSERT OR UPDATE ON ips.team
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('name:200', 'region:200', 'created_at');
CREATE TRIGGER staff_bounds BEFORE INSERT OR UPDATE ON ips.staff
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('display_name:200', 'unit:200', 'created_at');
CREATE TRIGGER client_bounds BEFORE INSERT OR UPDATE ON ips.client
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('host_ref:200', 'birth_year:1900:year', 'municipality:200', 'created_at');
CREATE TRIGGER care_relationship_bounds BEFORE INSERT OR UPDATE ON ips.care_relationship
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('client_id:required', 'unit:200', 'started_on', 'ended_on');
CREATE TRIGGER consent_bounds BEFORE INSERT OR UPDATE ON ips.consent
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('client_id:required', 'given_on', 'withdrawn_on');
CREATE TRIGGER employer_bounds BEFORE INSERT OR UPDATE ON ips.employer
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('name:200', 'industry:200', 'created_at');
CREATE TRIGGER episode_bounds BEFORE INSERT OR UPDATE ON ips.episode
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('client_id:required', 'team_id:required', 'referred_on', 'career_profile_on',
                                                   'referral_source:200', 'state_reason:200', 'created_at');
CREATE TRIGGER episode_state_history_bounds BEFORE INSERT OR UPDATE ON ips.episode_state_history
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('at', 'reason:200', 'recorded_at');
CREATE TRIGGER specialist_assignment_bounds BEFORE INSERT OR UPDATE ON ips.specialist_assignment
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('episode_id:required', 'staff_id:required', 'from_on', 'to_on');
CREATE TRIGGER contact_bounds BEFORE INSERT OR UPDATE ON ips.contact
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('episode_id:required', 'staff_id:required', 'at', 'minutes:1:1440', 'recorded_at');
CREATE TRIGGER employer_contact_bounds BEFORE INSERT OR UPDATE ON ips.employer_contact
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('staff_id:required', 'employer_id:required', 'at', 'recorded_at');
CREATE TRIGGER job_bounds BEFORE INSERT OR UPDATE ON ips.job
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('episode_id:required', 'employer_id:required', 'starts_on', 'ends_on', 'title:200', 'end_reason:200', 'recorded_at');
CREATE TRIGGER study_bounds BEFORE INSERT OR UPDATE ON ips.study
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('episode_id:required', 'starts_on', 'ends_on', 'programme:200');
CREATE TRIGGER team_meeting_bounds BEFORE INSERT OR UPDATE ON ips.team_meeting
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('staff_id:required', 'met_on');
CREATE TRIGGER fidelity_review_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_review
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('period_start', 'period_end', 'reviewed_on', 'note:2000',
                                                   'opened_at', 'closed_at');
CREATE TRIGGER fidelity_reviewer_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_reviewer
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('reviewer:200', 'organisation:200');
CREATE TRIGGER fidelity_rating_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_rating
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('note:2000', 'rated_at');
CREATE TRIGGER fidelity_action_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_action
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('action:2000', 'responsible:200', 'due_on:plan', 'done_on', 'created_at');

-- Reference data that ips_admin edits: codes and labels of a readable length.
CREATE TRIGGER vocabulary_bounds BEFORE INSERT OR UPDATE ON ips.vocabulary
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('category:100', 'code:100');
CREATE TRIGGER label_text_bounds BEFORE INSERT OR UPDATE ON ips.label_text
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('code:100', 'category:100', 'label:500');
CREATE TRIGGER rule_bounds BEFORE INSERT OR UPDATE ON ips.rule
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('label_fi:500', 'label_sv:500', 'label_en:500', 'description:2000');
CREATE TRIGGER fidelity_item_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_item
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('name_fi:500', 'name_sv:500', 'name_en:500', 'unit:200');
CREATE TRIGGER fidelity_anchor_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_anchor
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('anchor:500');
CREATE TRIGGER fidelity_band_bounds BEFORE INSERT OR UPDATE ON ips.fidelity_band
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('band:100', 'name_fi:500', 'name_sv:500', 'name_en:500');

-- Settings are validated when written: a time zone PostgreSQL knows, numbers in their
-- range, booleans, job kinds of the vocabulary.  A setting this list does not know is
-- text of at most 200 characters.
CREATE FUNCTION ips.setting_kind(setting_name text, OUT kind text, OUT min_value numeric, OUT max_value numeric)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(k.kind, 'text'), k.lo, k.hi
      FROM (SELECT 1) one
      LEFT JOIN (VALUES
        ('time_zone', 'time_zone', NULL::numeric, NULL::numeric),
        ('engaged_requires_care_relationship', 'boolean', NULL, NULL),
        ('disengaged_min_outreach_attempts', 'integer', 0, 100),
        ('disengaged_min_outreach_days', 'integer', 0, 100),
        ('disengaged_outreach_window_days', 'integer', 1, 3660),
        ('small_cell_threshold', 'integer', 0, 1000),
        ('benchmark_employment_minimal', 'numeric', 0, 100),
        ('benchmark_employment_average', 'numeric', 0, 100),
        ('benchmark_employment_excellent', 'numeric', 0, 100),
        ('benchmark_employment_uk', 'numeric', 0, 100),
        ('competitive_job_kinds', 'job_kinds', NULL, NULL),
        ('earliest_fact_date', 'date', NULL, NULL)
      ) AS k(name, kind, lo, hi) ON k.name = setting_name
$$;
COMMENT ON FUNCTION ips.setting_kind(text) IS
    'The kind of value a setting takes (time_zone, boolean, integer, numeric, date, job_kinds, text) and its range.';

CREATE FUNCTION ips.setting_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k record;
    n numeric;
    d date;
    bad text;
    pattern text;
BEGIN
    IF length(NEW.name) > 100 OR length(NEW.value) > 200 OR length(NEW.description) > 2000 THEN
        RAISE EXCEPTION 'setting "%" is too long', left(NEW.name, 100)
            USING ERRCODE = 'string_data_right_truncation',
                  HINT = 'A setting''s name has at most 100 characters, its value 200, its description 2000.';
    END IF;
    IF NEW.value IS NULL THEN
        RETURN NEW;     -- the NOT NULL constraint answers
    END IF;
    k := ips.setting_kind(NEW.name);
    IF k.kind = 'time_zone' THEN
        BEGIN
            PERFORM now() AT TIME ZONE NEW.value;
        EXCEPTION WHEN invalid_parameter_value OR feature_not_supported THEN
            bad := 'a time zone PostgreSQL knows, e.g. Europe/Helsinki (see pg_timezone_names)';
        END;
    ELSIF k.kind = 'boolean' THEN
        IF lower(btrim(NEW.value)) NOT IN ('true', 'false', 'on', 'off', 'yes', 'no', '1', '0', 't', 'f') THEN
            bad := 'true or false';
        END IF;
    ELSIF k.kind IN ('integer', 'numeric') THEN
        pattern := CASE WHEN k.kind = 'integer' THEN '^\s*[+-]?[0-9]{1,9}\s*$'
                        ELSE '^\s*[+-]?([0-9]{1,9}(\.[0-9]{0,6})?|\.[0-9]{1,6})\s*$' END;
        IF NEW.value !~ pattern THEN
            bad := format('a %s from %s to %s', CASE k.kind WHEN 'integer' THEN 'whole number' ELSE 'number' END,
                          k.min_value, k.max_value);
        ELSE
            n := NEW.value::numeric;
            IF n < k.min_value OR n > k.max_value THEN
                bad := format('a %s from %s to %s', CASE k.kind WHEN 'integer' THEN 'whole number' ELSE 'number' END,
                              k.min_value, k.max_value);
            END IF;
        END IF;
    ELSIF k.kind = 'date' THEN
        BEGIN
            d := NEW.value::date;
        EXCEPTION WHEN data_exception THEN
            d := NULL;
        END;
        IF d IS NULL OR d < date '1800-01-01' OR d > date '1900-01-01' THEN
            bad := 'a date from 1800-01-01 to 1900-01-01 (the default 1900-01-01; an earlier one widens the past)';
        END IF;
    ELSIF k.kind = 'job_kinds' THEN
        IF btrim(NEW.value) = '' OR EXISTS (
               SELECT 1 FROM unnest(string_to_array(replace(NEW.value, ' ', ''), ',')) AS u(code)
                WHERE NOT EXISTS (SELECT 1 FROM ips.vocabulary v WHERE v.category = 'job_kind' AND v.code = u.code)) THEN
            bad := format('a comma-separated list of job kinds: %s',
                          (SELECT string_agg(v.code, ', ' ORDER BY v.ordinal) FROM ips.vocabulary v WHERE v.category = 'job_kind'));
        END IF;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'setting % cannot be "%"', NEW.name, left(NEW.value, 200)
            USING ERRCODE = 'invalid_parameter_value', HINT = format('Give %s.', bad);
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ips.setting_check() IS
    'Trigger: a setting''s value must be of its kind (ips.setting_kind) and in range, so that no setting can break the reads that use it.';
CREATE TRIGGER setting_check BEFORE INSERT OR UPDATE ON ips.setting
    FOR EACH ROW EXECUTE FUNCTION ips.setting_check();


ALTER TABLE ips.consent_refusal
    ADD CONSTRAINT consent_refusal_dates_finite CHECK (isfinite(refused_on));
CREATE TRIGGER consent_refusal_bounds BEFORE INSERT OR UPDATE ON ips.consent_refusal
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('refused_on', 'recorded_at');
CREATE TRIGGER client_intake_bounds BEFORE INSERT OR UPDATE ON ips.client_intake
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('registered_at');

-- ===== analysts: suppression and team fidelity (issue 13)
-- Secondary (complementary) suppression of one row of outcomes, as Statistics Finland and
-- THL practise it: after the small cells (1 .. threshold-1) are suppressed, no suppressed
-- cell and no small group of people may be derived from the cells still shown in the row.
-- cells: 1 served, 2 working, 3 served out of work at entry, 4 of them working, 5 job starts,
-- 6 first jobs, 7 education starts, 8 jobs 90 days known, 9 of them retained, 10 closures,
-- 11 .. 17 closures by reason (stable_employment, client_choice, moved, referred_elsewhere,
-- disengaged, deceased, never_engaged; they add up to the closures).
-- The groups a difference of shown cells counts (each must be 0 or at least the threshold):
--   served - working, served out of work - working out of work, served - served out of work,
--   working - working out of work, served - working out of work,
--   served - working - served out of work + working out of work
--   (not working and not out of work at entry), jobs known - jobs retained, job starts - first
--   jobs; and closures - the shown reasons (the closures of the suppressed reasons together).
-- A group found small suppresses the smallest non-zero cell of its difference (a reason, for
-- the closures; the closures themselves when no reason is left), and the check runs again
-- until nothing changes.  NULL threshold (or 1 and less): the cells as they are.
CREATE FUNCTION ips.outcomes_suppress(cells bigint[], threshold int) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v bigint[] := cells;
    -- signed cell numbers of each difference (0: unused)
    diffs constant int[] := '{{1,-2,0,0},{3,-4,0,0},{1,-3,0,0},{2,-4,0,0},{1,-4,0,0},{1,-2,-3,4},{8,-9,0,0},{5,-6,0,0}}';
    changed boolean;
    total bigint;
    pick int;
    k int;
BEGIN
    IF threshold IS NULL OR threshold <= 1 OR cells IS NULL THEN
        RETURN cells;
    END IF;
    IF cardinality(cells) <> 17 THEN
        RAISE EXCEPTION 'outcomes_suppress needs the 17 cells of a row, not %', cardinality(cells)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'See the comment of ips.outcomes_suppress.';
    END IF;
    -- primary suppression
    FOR i IN 1 .. 17 LOOP
        IF v[i] > 0 AND v[i] < threshold THEN
            v[i] := NULL;
        END IF;
    END LOOP;
    -- secondary suppression, until no small group can be derived
    LOOP
        changed := false;
        FOR d IN 1 .. array_length(diffs, 1) LOOP
            total := 0;
            pick := NULL;
            FOR j IN 1 .. 4 LOOP
                k := diffs[d][j];
                CONTINUE WHEN k = 0;
                IF v[abs(k)] IS NULL THEN
                    total := NULL;
                    EXIT;
                END IF;
                total := total + sign(k) * v[abs(k)];
                IF v[abs(k)] > 0 AND (pick IS NULL OR v[abs(k)] <= v[pick]) THEN
                    pick := abs(k);
                END IF;
            END LOOP;
            IF total > 0 AND total < threshold THEN
                v[pick] := NULL;
                changed := true;
            END IF;
        END LOOP;
        IF v[10] IS NOT NULL THEN
            total := v[10];
            pick := NULL;
            FOR i IN 11 .. 17 LOOP
                IF v[i] IS NOT NULL THEN
                    total := total - v[i];
                    IF v[i] > 0 AND (pick IS NULL OR v[i] <= v[pick]) THEN
                        pick := i;
                    END IF;
                END IF;
            END LOOP;
            IF total > 0 AND total < threshold THEN
                v[coalesce(pick, 10)] := NULL;
                changed := true;
            END IF;
        END IF;
        EXIT WHEN NOT changed;
    END LOOP;
    RETURN v;
END $$;
COMMENT ON FUNCTION ips.outcomes_suppress(bigint[], int) IS
    'Small-cell and secondary (complementary) suppression of one row of outcomes (17 counts, see the function''s comment): no suppressed cell and no group of 1 .. threshold-1 can be derived from the shown cells of the row.';

-- A percentage of two shown counts, NULL when either is suppressed or the denominator is 0.
CREATE FUNCTION ips.rate_of(num bigint, den bigint) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN num IS NULL OR den IS NULL OR den = 0 THEN NULL ELSE round(num * 100.0 / den, 1) END
$$;
COMMENT ON FUNCTION ips.rate_of(bigint, bigint) IS 'Percentage num/den to one decimal; NULL when either is NULL (suppressed) or den is 0.';

CREATE OR REPLACE FUNCTION ips.outcomes_quarterly_for(threshold int DEFAULT NULL)
RETURNS TABLE(team_id bigint, team_name text, region text, quarter text, quarter_start date, quarter_end date,
              clients_served bigint, clients_working bigint, employment_rate numeric,
              clients_served_out_of_work bigint, clients_working_out_of_work bigint, employment_rate_out_of_work numeric,
              benchmark_minimal numeric, benchmark_average numeric, benchmark_excellent numeric, benchmark_uk numeric,
              job_starts bigint, clients_first_job bigint, median_days_to_first_job numeric, education_starts bigint,
              jobs_90_days_known bigint, jobs_retained_90_days bigint, retention_90_rate numeric,
              closures bigint, closed_stable_employment bigint, closed_client_choice bigint, closed_moved bigint,
              closed_referred_elsewhere bigint, closed_disengaged bigint, closed_deceased bigint, closed_never_engaged bigint,
              small_cell_threshold int)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off       -- the quarter series makes the estimates large; compiling costs more than running
AS $$
DECLARE
    caller_min int := ips.small_cell_threshold_for_caller();
    th int;
BEGIN
    IF threshold < 0 THEN
        RAISE EXCEPTION 'threshold % is negative', threshold
            USING ERRCODE = 'numeric_value_out_of_range', HINT = 'Give 0 or more, or NULL for the setting small_cell_threshold.';
    END IF;
    -- the caller may ask for more suppression, never for less than applies to them
    th := CASE WHEN caller_min IS NULL THEN threshold ELSE greatest(coalesce(threshold, 0), caller_min) END;
    IF th <= 1 THEN
        th := NULL;
    END IF;
    RETURN QUERY
    SELECT c.team_id, c.team_name, c.region, c.quarter, c.quarter_start, c.quarter_end,
           x.v[1], x.v[2], ips.rate_of(x.v[2], x.v[1]),
           x.v[3], x.v[4], ips.rate_of(x.v[4], x.v[3]),
           ips.setting_value('benchmark_employment_minimal')::numeric, ips.setting_value('benchmark_employment_average')::numeric,
           ips.setting_value('benchmark_employment_excellent')::numeric, ips.setting_value('benchmark_employment_uk')::numeric,
           x.v[5], x.v[6],
           CASE WHEN x.v[6] IS NULL THEN NULL ELSE c.median_days_to_first_job::numeric END,
           x.v[7],
           x.v[8], x.v[9], ips.rate_of(x.v[9], x.v[8]),
           x.v[10], x.v[11], x.v[12], x.v[13], x.v[14], x.v[15], x.v[16], x.v[17],
           th
      FROM ips.outcomes_quarterly_counts c
     CROSS JOIN LATERAL (SELECT ips.outcomes_suppress(ARRAY[c.served, c.working, c.served_oow, c.working_oow,
                                                            c.job_starts, c.first_jobs, c.education_starts,
                                                            c.jobs_90_known, c.jobs_90_retained, c.closures,
                                                            c.stable_employment, c.client_choice, c.moved,
                                                            c.referred_elsewhere, c.disengaged, c.deceased,
                                                            c.never_engaged], th) AS v) x
     ORDER BY c.team_id, c.quarter_start;
END $$;
COMMENT ON FUNCTION ips.outcomes_quarterly_for(int) IS
    'Outcomes per team and quarter with counts of 1 .. threshold-1 people suppressed (NULL), and the cells from which one could be derived (ips.outcomes_suppress), and rates and medians built on them; the caller''s own threshold (setting small_cell_threshold unless superuser or ips_admin) is the least applied.';



-- Team fidelity for analysts: team-level evidence, P0002 for a team the caller may not see.
-- Whether the caller may see a team's fidelity: superusers and the extension's owner, ips_admin
-- and ips_analyst every team, a specialist or supervisor their own (ips.my_teams()).
CREATE FUNCTION ips.team_visible(team_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who name := ips.caller();
BEGIN
    IF team_id IS NULL OR NOT EXISTS (SELECT 1 FROM ips.team t WHERE t.team_id = team_visible.team_id) THEN
        RETURN false;
    END IF;
    RETURN coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = who), false)
        OR pg_catalog.pg_has_role(who, (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'ips.team'::regclass), 'MEMBER')
        OR (to_regrole('ips_admin') IS NOT NULL AND pg_catalog.pg_has_role(who, 'ips_admin', 'MEMBER'))
        OR (to_regrole('ips_analyst') IS NOT NULL AND pg_catalog.pg_has_role(who, 'ips_analyst', 'MEMBER'))
        OR team_visible.team_id = ANY (ips.my_teams());
END $$;
COMMENT ON FUNCTION ips.team_visible(bigint) IS
    'Whether the caller may read the team''s fidelity: superusers, the owner, ips_admin and ips_analyst every team; specialists and supervisors their own team.';

-- Whether the caller reads fidelity at the team level only: a caller who may not read the
-- person-level records (ips_analyst, ips_admin) gets ips.fidelity computed by the owner, with
-- the evidence stripped to team-level figures (ips.fidelity_team_evidence).
CREATE FUNCTION ips.fidelity_team_level_only() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT NOT pg_catalog.has_table_privilege(ips.caller(), 'ips.episode', 'SELECT')
$$;
COMMENT ON FUNCTION ips.fidelity_team_level_only() IS
    'Internal: true when the caller may not read person-level rows (analysts, admins): fidelity is then served at the team level.';

-- Evidence at the team level: the figures of the team, without the lists of episodes, jobs or
-- specialists and without any id, name, host key, rater or note.
CREATE FUNCTION ips.fidelity_team_evidence(evidence jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jsonb_typeof(evidence) IS DISTINCT FROM 'object' THEN
        RETURN evidence;
    END IF;
    RETURN coalesce((SELECT jsonb_object_agg(e.key, ips.fidelity_team_evidence(e.value))
                       FROM jsonb_each(evidence) e
                      WHERE jsonb_typeof(e.value) <> 'array'
                        AND e.key NOT IN ('episode_id', 'client_id', 'job_id', 'staff_id', 'review_id', 'host_ref',
                                          'host_key', 'name', 'rated_by', 'note')), '{}'::jsonb);
END $$;
COMMENT ON FUNCTION ips.fidelity_team_evidence(jsonb) IS
    'Team-level fidelity evidence: the team''s figures only; lists (episodes, jobs, per specialist), ids, names, host keys, raters and notes removed.';


CREATE OR REPLACE FUNCTION ips.fidelity_check_period(team_id bigint, period_start date, period_end date) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(team_id, 'team_id');
    PERFORM ips.require(period_start, 'period_start');
    PERFORM ips.require(period_end, 'period_end');
    IF NOT ips.team_visible(fidelity_check_period.team_id) THEN
        PERFORM ips.not_found('team', team_id);
    END IF;
    IF NOT isfinite(period_start) OR NOT isfinite(period_end) THEN
        RAISE EXCEPTION 'a fidelity period needs real days, not infinity'
            USING ERRCODE = 'datetime_field_overflow', HINT = 'Give the first and the last day of the period.';
    END IF;
    IF period_end < period_start THEN
        RAISE EXCEPTION 'period end % is before its start %', to_char(period_end, 'YYYY-MM-DD'), to_char(period_start, 'YYYY-MM-DD')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the first and the last day of the period.';
    END IF;
    IF period_end > ips.local_date(now()) THEN
        RAISE EXCEPTION 'period end % is in the future', period_end
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Fidelity is measured over days that have passed: end the period today or earlier.';
    END IF;
END $$;
COMMENT ON FUNCTION ips.fidelity_check_period(bigint, date, date) IS
    'Internal: raises 22004/P0002/22023 unless the team exists, the caller may see it (ips.team_visible) and the period is a non-empty range of past days.';

-- Team-level fidelity of a set of teams, computed with the owner's rights for callers who may not
-- read person-level rows (ips_analyst, ips_admin); each team must be one the caller may see.
CREATE FUNCTION ips.fidelity_team_level(team_ids bigint[], period_start date, period_end date)
RETURNS TABLE(team_id bigint, item text, score int, source text, measure numeric, evidence jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM ips.require(team_ids, 'team_ids');
    PERFORM ips.fidelity_check_period(u.id, fidelity_team_level.period_start, fidelity_team_level.period_end)
       FROM unnest(team_ids) AS u(id);
    RETURN QUERY
    SELECT f.team_id, f.item, f.score, f.source, f.measure, ips.fidelity_team_evidence(f.evidence)
      FROM ips.fidelity_teams(team_ids, fidelity_team_level.period_start, fidelity_team_level.period_end) f;
END $$;
COMMENT ON FUNCTION ips.fidelity_team_level(bigint[], date, date) IS
    'Internal: ips.fidelity_teams computed with the owner''s rights, evidence at the team level (ips.fidelity_team_evidence); for callers without person-level rights, on teams they may see.';

CREATE OR REPLACE FUNCTION ips.fidelity(team_id bigint, period_start date, period_end date)
RETURNS TABLE(item text, score int, source text, measure numeric, evidence jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- the team (22004, P0002 unless the caller may see it) and the period, before any day is counted
    PERFORM ips.fidelity_check_period(fidelity.team_id, fidelity.period_start, fidelity.period_end);
    IF ips.fidelity_team_level_only() THEN
        RETURN QUERY SELECT f.item, f.score, f.source, f.measure, f.evidence
                       FROM ips.fidelity_team_level(ARRAY[fidelity.team_id], fidelity.period_start, fidelity.period_end) f;
    ELSE
        RETURN QUERY SELECT f.item, f.score, f.source, f.measure, f.evidence
                       FROM ips.fidelity_teams(ARRAY[fidelity.team_id], fidelity.period_start, fidelity.period_end) f;
    END IF;
END $$;
COMMENT ON FUNCTION ips.fidelity(bigint, date, date) IS
    'The 25 fidelity items of a team for a period: computed from the records (S1 S2 V4 V6 V8 V9 V10 V12 V13), else rated in the team''s review of that period, else missing; with measure and evidence (team-level evidence for analysts and admins). P0002 for a team the caller may not see.';

-- Every team the caller may see, in one pass: what ips.fidelity gives for each.
CREATE OR REPLACE FUNCTION ips.fidelity_all(period_start date, period_end date)
RETURNS TABLE(team_id bigint, item text, score int, source text, measure numeric, evidence jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids bigint[] := (SELECT coalesce(array_agg(t.team_id ORDER BY t.team_id), '{}') FROM ips.team t
                      WHERE ips.team_visible(t.team_id));
BEGIN
    IF cardinality(ids) = 0 THEN      -- no team to show (a clinician): the argument checks only
        PERFORM ips.require(period_start, 'period_start');
        PERFORM ips.require(period_end, 'period_end');
        RETURN;
    END IF;
    PERFORM ips.fidelity_check_period(ids[1], fidelity_all.period_start, fidelity_all.period_end);
    IF ips.fidelity_team_level_only() THEN
        RETURN QUERY SELECT f.team_id, f.item, f.score, f.source, f.measure, f.evidence
                       FROM ips.fidelity_team_level(ids, fidelity_all.period_start, fidelity_all.period_end) f;
    ELSE
        RETURN QUERY SELECT f.team_id, f.item, f.score, f.source, f.measure, f.evidence
                       FROM ips.fidelity_teams(ids, fidelity_all.period_start, fidelity_all.period_end) f;
    END IF;
END $$;
COMMENT ON FUNCTION ips.fidelity_all(date, date) IS
    'The rows of ips.fidelity for every team the caller may see (team_id first, then ordinal), computed in one pass over the records.';

ALTER FUNCTION ips.fidelity_summary(bigint, date, date) SECURITY DEFINER;

COMMENT ON FUNCTION ips.fidelity_summary(bigint, date, date) IS
    'Total of the scored items, how many are scored, and the band once all 25 are; from the frozen result of the closed review of exactly that period if there is one, else computed now. Runs as owner (it shows no person-level data), for any team the caller may see (ips.team_visible), else P0002.';

-- ===== the ledger: change log and access log (issue 14)
-- Entries unchained with their transaction id; blocks sealed after commit; the
-- chain of 1.0/1.1 is carried over as each log's first ("legacy") block by the
-- ips.seal() at the end of this section (docs/ledger.md).
DROP TRIGGER change_log_seal ON ips.change_log;
DROP TRIGGER change_log_no_truncate ON ips.change_log;
DROP TRIGGER access_log_seal ON ips.access_log;
DROP TRIGGER access_log_no_truncate ON ips.access_log;
DROP FUNCTION ips.log_seal();
ALTER TABLE ips.change_log ALTER COLUMN prev_hash DROP NOT NULL, ADD COLUMN xid xid8;
ALTER TABLE ips.access_log ALTER COLUMN prev_hash DROP NOT NULL, ADD COLUMN xid xid8;
COMMENT ON TABLE ips.change_log IS 'Append-only log of every change to person-level tables (who, when, table, key, old and new row); each entry hashed with SHA-256, committed transactions sealed into ips.ledger_block; check it with ips.verify_change_log().';
COMMENT ON COLUMN ips.change_log.seq IS 'Position of the entry: increasing, with gaps where a transaction rolled back (ips.change_log_seq).';
COMMENT ON COLUMN ips.change_log.db_role IS 'The role on whose behalf the change ran (ips.caller(), also inside SECURITY DEFINER functions).';
COMMENT ON COLUMN ips.change_log.prev_hash IS 'Entries of 1.0/1.1 only: hash of the entry before (32 zero bytes for the first); NULL for entries of 1.2, which blocks chain.';
COMMENT ON COLUMN ips.change_log.hash IS 'SHA-256 of the entry''s canonical content (docs/ledger.md); for entries of 1.0/1.1 prev_hash included.';
COMMENT ON COLUMN ips.change_log.xid IS 'The writing transaction (pg_current_xact_id()); NULL for entries of 1.0/1.1.';
COMMENT ON TABLE ips.access_log IS 'Append-only log of who viewed which client''s record, when, why and what was shown; each entry hashed with SHA-256, sealed into ips.ledger_block; see ips.access_report() and ips.verify_access_log().';
COMMENT ON COLUMN ips.access_log.prev_hash IS 'Entries of 1.0/1.1 only: hash of the entry before; NULL for entries of 1.2.';
COMMENT ON COLUMN ips.access_log.hash IS 'SHA-256 of the entry''s canonical content (docs/ledger.md).';
COMMENT ON COLUMN ips.access_log.xid IS 'The writing transaction; NULL for entries of 1.0/1.1.';
CREATE SEQUENCE ips.change_log_seq CACHE 32;
COMMENT ON SEQUENCE ips.change_log_seq IS 'Positions of ips.change_log entries.';
SELECT pg_catalog.setval('ips.change_log_seq', coalesce((SELECT max(seq) FROM ips.change_log), 0) + 1, false);
CREATE SEQUENCE ips.access_log_seq CACHE 32;
COMMENT ON SEQUENCE ips.access_log_seq IS 'Positions of ips.access_log entries.';
SELECT pg_catalog.setval('ips.access_log_seq', coalesce((SELECT max(seq) FROM ips.access_log), 0) + 1, false);

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

CREATE OR REPLACE FUNCTION ips.verify_change_log() RETURNS TABLE (seq bigint, problem text)
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

CREATE OR REPLACE FUNCTION ips.verify_access_log() RETURNS TABLE (seq bigint, problem text)
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

DROP FUNCTION ips.log_first_break(regclass);

SELECT pg_catalog.pg_extension_config_dump('ips.ledger_pending', '');
SELECT pg_catalog.pg_extension_config_dump('ips.ledger_block', '');
SELECT pg_catalog.pg_extension_config_dump('ips.change_log_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ips.access_log_seq', '');

-- the grants of the ledger's tables and functions (90_security.sql; also edited by issue 13)
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
                WHEN 'client' THEN 'SELECT, UPDATE'              -- registered by ips.add_client()
                WHEN 'client_intake' THEN 'SELECT'               -- written by a trigger on ips.client
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

-- the chain of 1.0/1.1 becomes block 1 of each log
SELECT ips.seal();


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
    -- through the ledger's writer (docs/ledger.md): direct INSERTs into the log are refused
    PERFORM ips.access_log_append(log_access.accessed_at, log_access.db_role, log_access.staff_id,
                                  log_access.client_id, log_access.purpose, coalesce(log_access.shown, '{}'));
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
-- ips.episode: 1.0's check "closed iff closed_on and close_reason" overlapped 1.1's
-- episode_open_iff_no_closed_on; what is left of it is "a closed episode has a reason".
-- The unnamed checks get names, as in the 1.2 install script.
ALTER TABLE ips.episode DROP CONSTRAINT episode_check;
ALTER TABLE ips.episode RENAME CONSTRAINT episode_check1 TO episode_on_hold_iff_held_state;
ALTER TABLE ips.episode ADD CONSTRAINT episode_closed_has_reason CHECK (state <> 'closed' OR close_reason IS NOT NULL);

-- ===== what people see: settings, labels, the review sheet (issue 17)
-- The schema becomes the extension's own, as a fresh 1.2 install creates it
-- (extension/sql/000_schema.sql): the extension's schema is pg_catalog, as in
-- ips.control, and schema ips a member, so that DROP EXTENSION removes it.
UPDATE pg_catalog.pg_extension SET extnamespace = 'pg_catalog'::regnamespace WHERE extname = 'ips';
DELETE FROM pg_catalog.pg_depend
 WHERE classid = 'pg_catalog.pg_extension'::regclass
   AND objid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'ips')
   AND refclassid = 'pg_catalog.pg_namespace'::regclass AND refobjid = 'ips'::regnamespace;
ALTER EXTENSION ips ADD SCHEMA ips;
COMMENT ON SCHEMA ips IS 'IPS (Individual Placement and Support): episodes, contact rules, fidelity and outcomes (extension ips).';

-- The review sheet a team leader prints (ipsctl fidelity --format html): one
-- jsonb with everything the sheet shows, in one language, read with the
-- caller's rights (row-level security decides which teams and reviews; a
-- caller who may not read reviews, an analyst, gets the live figures).
CREATE FUNCTION ips.review_sheet(team_id bigint, period_start date, period_end date, lang text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    l text := ips.language(lang);
    t ips.team;
    r ips.fidelity_review;
    items jsonb;
    reviewers jsonb := '[]';
    actions jsonb := '[]';
    total int;
    scored int;
    band text;
BEGIN
    PERFORM ips.fidelity_check_period(team_id, period_start, period_end);
    SELECT * INTO t FROM ips.team v WHERE v.team_id = review_sheet.team_id;
    -- the review of the period, for those who read reviews (an analyst's sheet shows the live
    -- team-level figures of ips.fidelity)
    IF pg_catalog.has_table_privilege('ips.fidelity_review', 'SELECT') THEN
        SELECT * INTO r FROM ips.fidelity_review v
         WHERE v.team_id = review_sheet.team_id AND v.period_start = review_sheet.period_start
           AND v.period_end = review_sheet.period_end;
    END IF;
    SELECT jsonb_agg(jsonb_build_object(
               'item', f.item, 'section', i.section, 'name', ips.label(f.item, l),
               'score', f.score, 'source', f.source, 'source_label', ips.label('fidelity_source_' || f.source, l),
               'measure', f.measure, 'unit', i.unit,
               'anchor', (SELECT a.anchor FROM ips.fidelity_anchor a WHERE a.item = f.item AND a.score = f.score),
               'evidence_line',
                   CASE WHEN f.item = 'S2' THEN replace(ips.fidelity_evidence_line(f.item, f.evidence, l), '–', ips.fidelity_number(f.measure, l))
                        WHEN f.measure IS NOT NULL AND f.item IN ('V8', 'V9', 'V10', 'V12', 'V13', 'O2', 'O6', 'V1', 'V14')
                        THEN ips.fidelity_evidence_line(f.item, f.evidence, l) || ' = ' || ips.fidelity_number(f.measure, l) || ' %'
                        ELSE ips.fidelity_evidence_line(f.item, f.evidence, l) END,
               'note', f.evidence ->> 'note',
               'evidence', f.evidence) ORDER BY i.ordinal),
           coalesce(sum(f.score), 0)::int, count(f.score)::int
      INTO items, total, scored
      FROM (SELECT * FROM ips.review_result(r.review_id) WHERE r.closed_at IS NOT NULL
            UNION ALL
            SELECT * FROM ips.fidelity(review_sheet.team_id, review_sheet.period_start, review_sheet.period_end)
             WHERE r.closed_at IS NULL) f
      JOIN ips.fidelity_item i ON i.item = f.item;
    band := ips.fidelity_band_of(total, scored);
    IF r.review_id IS NOT NULL THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('reviewer', w.reviewer, 'organisation', w.organisation)
                                  ORDER BY w.reviewer), '[]')
          INTO reviewers FROM ips.fidelity_reviewer w WHERE w.review_id = r.review_id;
        SELECT coalesce(jsonb_agg(jsonb_build_object('action', a.action, 'item', a.item, 'responsible', a.responsible,
                                                     'due_on', a.due_on, 'done_on', a.done_on) ORDER BY a.action_id), '[]')
          INTO actions FROM ips.fidelity_action a WHERE a.review_id = r.review_id;
    END IF;
    RETURN jsonb_build_object(
        'lang', l,
        'title', ips.label('fidelity_title', l),
        'team_id', t.team_id, 'team', t.name, 'region', t.region,
        'period_start', period_start, 'period_end', period_end,
        'status', CASE WHEN r.closed_at IS NOT NULL THEN 'closed' WHEN r.review_id IS NOT NULL THEN 'open' ELSE 'live' END,
        'review_id', r.review_id, 'reviewed_on', r.reviewed_on,
        'closed_on', ips.local_date(r.closed_at),
        'reviewers', reviewers,
        'items', coalesce(items, '[]'),
        'total', total, 'items_scored', scored, 'items_total', (SELECT count(*) FROM ips.fidelity_item),
        'band', band, 'band_label', coalesce(ips.label(band, l), ips.label('fidelity_band_none', l)),
        'bands', (SELECT jsonb_agg(jsonb_build_object('band', b.band,
                                                      'label', CASE l WHEN 'fi' THEN b.name_fi WHEN 'sv' THEN b.name_sv ELSE b.name_en END,
                                                      'min', b.min_total, 'max', b.max_total) ORDER BY b.min_total DESC)
                    FROM ips.fidelity_band b),
        'actions', actions);
END $$;
COMMENT ON FUNCTION ips.review_sheet(bigint, date, date, text) IS
    'Everything the printed fidelity review sheet shows, as jsonb in fi, sv or en: the team and region, the period, live figures or the closed review (date, reviewers), each item''s score, anchor and one-line evidence, total and band, the action plan (ipsctl fidelity --format html).';


-- ===== grants, revokes and policies for new and changed objects
SELECT ips.apply_security();
