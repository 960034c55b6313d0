-- Table rules: what the API functions check, also for direct INSERT, UPDATE,
-- DELETE and COPY (issue 13).  The row-level security policies in
-- 90_security.sql (ips.apply_security()) decide which rows a staff role may
-- touch; the triggers here hold for every writer, ips_admin and the extension
-- owner included (short of disabling triggers, or ips.restoring = on, which
-- only a superuser may set and which pg_restore needs).  docs/security.md
-- lists the guarantees and their SQLSTATEs.

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
