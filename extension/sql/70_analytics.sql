-- National analytics by logical replication (docs/replication.md).
--
-- A region publishes what a national analytics database needs to compute
-- fidelity and outcomes: the person-level facts under their pseudonymous keys
-- (client_id), the codes and dates, and the region's settings and rules, but no
-- free text (reasons, referral sources, names, db roles, job titles, end
-- reasons, programmes, notes), no host_ref and no demographics.  The national
-- database runs CREATE EXTENSION ips itself, then ips.prepare_analytics_subscriber(),
-- then CREATE SUBSCRIPTION as a superuser.
--
-- One list, ips.analytics_columns(), says what is published; the publisher
-- builds the publication from it and the subscriber relaxes exactly the NOT NULL
-- constraints (and defaults) of the columns it leaves out, so they arrive as NULL.

CREATE FUNCTION ips.analytics_columns()
RETURNS TABLE(table_name regclass, columns text[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.table_name::regclass, t.columns
      FROM (VALUES
        -- organisation: team names are the units analysts report on; staff without
        -- display_name, db_role and care unit
        ('ips.team',                  '{team_id,name,region,created_at}'::text[]),
        ('ips.staff',                 '{staff_id,team_id,role,fte,employment_share,weekly_hours,created_at,started_on,ended_on}'),
        -- the dated terms of staff (S1, S2, V6, V13 count them), without who recorded them
        ('ips.staff_terms',           '{staff_id,from_on,fte,employment_share,weekly_hours,recorded_at}'),
        -- clients: the pseudonymous key only (no host_ref, birth year or municipality)
        ('ips.client',                '{client_id,created_at}'),
        ('ips.care_relationship',     '{care_relationship_id,client_id,started_on,ended_on}'),
        ('ips.consent',               '{consent_id,client_id,scope,given_on,withdrawn_on}'),
        -- employers: the key only (a sole trader''s business ID or name identifies a person)
        ('ips.employer',              '{employer_id,created_at}'),
        -- episodes and their facts: no state_reason, referral_source, history reason,
        -- actor, job title, end reason or programme
        ('ips.episode',               '{episode_id,client_id,team_id,state,state_since,referred_on,specialist_id,entry_on,held_state,career_profile_on,closed_on,close_reason,created_at,out_of_work_at_entry}'),
        ('ips.episode_state_history', '{history_id,episode_id,client_id,from_state,to_state,at,staff_id,recorded_at}'),
        ('ips.specialist_assignment', '{assignment_id,episode_id,client_id,staff_id,from_on,to_on}'),
        ('ips.contact',               '{contact_id,episode_id,client_id,staff_id,at,kind,mode,setting,minutes,recorded_at}'),
        ('ips.employer_contact',      '{employer_contact_id,staff_id,employer_id,at,in_person,episode_id,client_id,by_client,competitive,recorded_at}'),
        ('ips.job',                   '{job_id,episode_id,client_id,employer_id,starts_on,ends_on,kind,occupation,hours_per_week,recorded_at,held_at_entry,payer,continues_job_id}'),
        ('ips.job_hours',             '{job_id,from_on,episode_id,client_id,hours_per_week,recorded_at}'),
        ('ips.study',                 '{study_id,episode_id,client_id,starts_on,ends_on}'),
        ('ips.team_meeting',          '{team_meeting_id,staff_id,team_id,met_on}'),
        -- fidelity reviews: scores without reviewers'' names, roles and notes
        ('ips.fidelity_review',       '{review_id,team_id,period_start,period_end,reviewed_on,opened_at}'),
        ('ips.fidelity_rating',       '{review_id,item,score,rated_at}'),
        ('ips.fidelity_frozen',       '{review_id,item,score,source,measure}'),
        -- the region's own parameters, so that its figures are reproduced
        ('ips.setting',               '{name,value,description}'),
        ('ips.rule',                  '{code,ordinal,scope,days,count,horizon_days,enabled,label_fi,label_sv,label_en,description}')
      ) AS t(table_name, columns)
     WHERE to_regclass(t.table_name) IS NOT NULL
$$;
COMMENT ON FUNCTION ips.analytics_columns() IS
    'The tables and columns the analytics publication carries (no free text, pseudonymous keys only); read by ips.create_analytics_publication and ips.prepare_analytics_subscriber.';

CREATE FUNCTION ips.create_analytics_publication(name text DEFAULT 'ips_analytics') RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts text[];
    t record;
    missing text;
BEGIN
    PERFORM ips.require(name, 'name');
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_publication p WHERE p.pubname = create_analytics_publication.name) THEN
        RAISE EXCEPTION 'publication "%" exists already', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Drop it first (DROP PUBLICATION), or give another name.';
    END IF;
    FOR t IN SELECT a.table_name, a.columns FROM ips.analytics_columns() a LOOP
        -- every column of the list must exist (a renamed column is a decision, not a silent drop)
        SELECT string_agg(c, ', ') INTO missing
          FROM unnest(t.columns) AS c
         WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                            WHERE a.attrelid = t.table_name AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'table % has no column %', t.table_name, missing
                USING ERRCODE = 'undefined_column', HINT = 'ips.analytics_columns() and the tables disagree; update the extension.';
        END IF;
        -- UPDATE and DELETE are replicated by the primary key, which must be published
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.table_name AND i.indisprimary) THEN
            RAISE EXCEPTION 'table % has no primary key', t.table_name
                USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Published tables need a replica identity.';
        END IF;
        parts := parts || format('TABLE %s (%s)', t.table_name,
                                 (SELECT string_agg(quote_ident(c), ', ') FROM unnest(t.columns) AS c));
    END LOOP;
    EXECUTE format('CREATE PUBLICATION %I FOR %s WITH (publish = ''insert, update, delete'')',
                   name, array_to_string(parts, ', '));
    RETURN name;
END $$;
COMMENT ON FUNCTION ips.create_analytics_publication(text) IS
    'Creates a publication (PG 15 column lists) of what national analytics needs: codes, dates and pseudonymous keys, no free text. '
    'Run as the extension owner or a superuser; needs wal_level = logical. Returns the publication name.';

CREATE FUNCTION ips.prepare_analytics_subscriber() RETURNS TABLE(table_name regclass, column_name name, action text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    t record;
    c record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = current_user AND r.rolsuper) THEN
        RAISE EXCEPTION 'ips.prepare_analytics_subscriber() needs a superuser'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The subscription must be owned by a superuser as well (row-level security).';
    END IF;
    IF EXISTS (SELECT 1 FROM ips.episode) OR EXISTS (SELECT 1 FROM ips.client) THEN
        RAISE EXCEPTION 'this database holds ips data already'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Prepare a fresh database (CREATE EXTENSION ips) as the analytics subscriber.';
    END IF;
    FOR t IN SELECT a.table_name, a.columns FROM ips.analytics_columns() a LOOP
        -- A column left out of the column list arrives as its default.  Make that NULL:
        -- drop the default (a default such as ips.caller() would put the subscription
        -- owner's name where the region's reviewer was) and the NOT NULL constraint.
        FOR c IN SELECT a.attname, a.attnotnull, a.atthasdef FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = t.table_name AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.attgenerated = '' AND (a.attnotnull OR a.atthasdef) AND a.attname <> ALL (t.columns)
                  ORDER BY a.attnum LOOP
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT, ALTER COLUMN %I DROP NOT NULL',
                           t.table_name, c.attname, c.attname);
            table_name := t.table_name; column_name := c.attname;
            action := concat_ws(', ', CASE WHEN c.atthasdef THEN 'DROP DEFAULT' END, CASE WHEN c.attnotnull THEN 'DROP NOT NULL' END);
            RETURN NEXT;
        END LOOP;
    END LOOP;
    -- the region's settings and rules come with the initial copy: make room for them
    DELETE FROM ips.setting;
    table_name := 'ips.setting'::regclass; column_name := NULL; action := 'emptied (rows come from the region)';
    RETURN NEXT;
    IF to_regclass('ips.rule') IS NOT NULL THEN
        EXECUTE 'DELETE FROM ips.rule';
        table_name := 'ips.rule'::regclass; column_name := NULL; action := 'emptied (rows come from the region)';
        RETURN NEXT;
    END IF;
END $$;
COMMENT ON FUNCTION ips.prepare_analytics_subscriber() IS
    'Run once on a fresh national analytics database, before CREATE SUBSCRIPTION: drops the defaults and NOT NULL constraints of the '
    'columns the publication leaves out (they arrive as NULL) and empties ips.setting and ips.rule (the region''s rows arrive). Superuser only.';
