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
        "log_access": "ips_supervisor, ips_specialist, ips_clinician", "access_report": "ips_admin, ips_supervisor",
        "outcomes_quarterly_for": "ips_admin, ips_supervisor, ips_specialist, ips_clinician, ips_analyst",
        "recordable_staff": "ips_supervisor, ips_specialist, ips_clinician", "is_team_client": "ips_supervisor, ips_specialist", "close_review": "ips_admin, ips_supervisor",
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

-- ===== analysts: suppression and team fidelity (issue 13)

-- ===== the ledger: change log and access log (issue 14)

-- ===== reads of a client's record: logged even when the reader rolls back (issue 14)

-- ===== staff history, jobs, corrections (issue 16)

-- ===== release clean-up: overlapping checks and the like (issue 15)

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
