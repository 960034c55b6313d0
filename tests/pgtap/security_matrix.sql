-- The access matrix of issue 13, generated from the catalog: every ips role x every
-- relation of schema ips x SELECT/INSERT/UPDATE/DELETE, and EXECUTE of every function
-- of ips by every ips role, each compared with the outcome written down below.  A
-- relation or function that the catalog gains (or loses) without its line here fails.
--
-- Relations: one line per relation, one 4-letter code per role (ips_admin,
-- ips_supervisor, ips_specialist, ips_clinician, ips_analyst), a letter per
-- operation in the order S I U D:
--   '-'  refused: the statement fails with 42501 before it reaches a row
--   'a'  allowed on every row (no row-level security on the table)
--   'r'  allowed, rows limited by row-level security (the policies in
--        ips.apply_security(); rows outside them are invisible, and new rows must
--        pass the policies' WITH CHECK)
--   'v'  a view: SELECT is tried; INSERT/UPDATE/DELETE are read from the grants
-- Each table cell is tried as a member of the role with a statement that touches no
-- row (SELECT ... LIMIT 0, INSERT ... SELECT ... WHERE false, UPDATE/DELETE ...
-- WHERE false), so that only the privilege decides; what the rows then allow is
-- the business of the policies and triggers (tests/pgtap/security_breaches.sql,
-- security_roles.sql, security_clinician.sql).
--
-- Functions: one line per function, one letter per role in the same order: 'x'
-- may execute, '-' may not (has_function_privilege).
BEGIN;
SELECT plan(62);
\ir security_setup.psql

CREATE TEMP TABLE expect_rel (rel text PRIMARY KEY, adm text, sup text, spec text, clin text, an text);
INSERT INTO expect_rel VALUES
    --                          admin   superv. special. clinic. analyst
    -- the ledger: read by ips_admin, written by the ledger's writer and sealer only (its
    -- guard refuses direct writes to the owner and superusers too: docs/ledger.md)
    ('access_log',             'a---', '----', '----', '----', '----'),
    ('change_log',             'a---', '----', '----', '----', '----'),
    ('ledger_block',           'a---', '----', '----', '----', '----'),
    ('ledger_pending',         'a---', '----', '----', '----', '----'),
    -- person-level: the team's rows for specialists and supervisors (no DELETE: facts are
    -- corrected, not deleted), the shared clients' rows for clinicians, nothing for
    -- ips_admin and analysts
    ('care_relationship',      '----', 'rrr-', 'rrr-', 'r---', '----'),
    ('client',                 '----', 'r-r-', 'r-r-', 'r---', '----'),   -- registered by ips.add_client()
    ('client_intake',          '----', 'r---', 'r---', 'r---', '----'),   -- written by a trigger on ips.client
    ('consent',                '----', 'rrr-', 'rrr-', 'r---', '----'),
    ('consent_refusal',        '----', 'r---', 'r---', 'r---', '----'),   -- appended by ips.refuse_consent()
    ('contact',                '----', 'rrr-', 'rrr-', 'rr--', '----'),   -- clinicians: own care-team contacts
    ('employer_contact',       '----', 'rrr-', 'rrr-', 'r---', '----'),
    ('episode',                '----', 'rrr-', 'rrr-', 'r---', '----'),
    ('episode_state_history',  '----', 'rr--', 'rr--', 'r---', '----'),   -- INSERT: its guard lets only the state machine
    ('job',                    '----', 'rrr-', 'rrr-', 'r---', '----'),
    ('specialist_assignment',  '----', 'rrr-', 'rrr-', 'r---', '----'),
    ('study',                  '----', 'rrr-', 'rrr-', 'r---', '----'),
    ('job_plan',               '----', 'rrr-', 'rrr-', 'r---', '----'),   -- jobs agreed to start later (issue 16)
    ('job_hours',              '----', 'rrr-', 'rrr-', 'r---', '----'),   -- dated weekly hours of a job (issue 16)
    -- team-level: the team's meetings; reviews read by the team, managed by its supervisors and ips_admin
    ('team_meeting',           '----', 'rr--', 'rr--', '----', '----'),
    ('fidelity_review',        'rrrr', 'rrrr', 'r---', '----', '----'),
    ('fidelity_reviewer',      'rrrr', 'rrrr', 'r---', '----', '----'),
    ('fidelity_rating',        'rrrr', 'rrrr', 'r---', '----', '----'),
    ('fidelity_action',        'rrrr', 'rrrr', 'r---', '----', '----'),
    ('fidelity_frozen',        'r---', 'r---', 'r---', '----', '----'),   -- written by ips.close_review() (definer) only
    -- reference data: read by all (the staff list not by analysts), written by ips_admin;
    -- employers also added and updated by specialists and supervisors
    ('employer',               'aaaa', 'aaa-', 'aaa-', 'a---', 'a---'),
    ('fidelity_anchor',        'aaaa', 'a---', 'a---', 'a---', 'a---'),
    ('fidelity_band',          'aaaa', 'a---', 'a---', 'a---', 'a---'),
    ('fidelity_item',          'aaaa', 'a---', 'a---', 'a---', 'a---'),
    ('label_text',             'aaaa', 'a---', 'a---', 'a---', 'a---'),
    ('rule',                   'aaaa', 'a---', 'a---', 'a---', 'a---'),
    ('setting',                'aaaa', 'a---', 'a---', 'a---', 'a---'),
    ('staff',                  'aaaa', 'a---', 'a---', 'a---', '----'),
    ('staff_terms',            'aaaa', 'a---', 'a---', 'a---', '----'),   -- dated FTE and hours by staff_id (issue 16): as the staff list
    ('team',                   'aaaa', 'a---', 'a---', 'a---', 'a---'),
    -- the vocabulary (issue 16, item 12): read by all, changed by the extension's owner only
    ('vocabulary',             'a---', 'a---', 'a---', 'a---', 'a---'),
    ('vocabulary_state',       'a---', 'a---', 'a---', 'a---', 'a---'),
    ('vocabulary_close_reason', 'a---', 'a---', 'a---', 'a---', 'a---'),
    ('vocabulary_contact_kind', 'a---', 'a---', 'a---', 'a---', 'a---'),
    ('vocabulary_contact_mode', 'a---', 'a---', 'a---', 'a---', 'a---'),
    ('vocabulary_contact_setting', 'a---', 'a---', 'a---', 'a---', 'a---'),
    ('vocabulary_job_kind',    'a---', 'a---', 'a---', 'a---', 'a---'),
    ('vocabulary_job_payer',   'a---', 'a---', 'a---', 'a---', 'a---'),
    ('vocabulary_staff_role',  'a---', 'a---', 'a---', 'a---', 'a---'),
    ('vocabulary_consent_scope', 'a---', 'a---', 'a---', 'a---', 'a---'),
    ('state_transition',       'a---', 'a---', 'a---', 'a---', 'a---'),
    ('contact_form',           'a---', 'a---', 'a---', 'a---', 'a---'),
    ('vocabulary_labels',      'v---', 'v---', 'v---', 'v---', 'v---'),   -- a view with the caller's rights over the two tables
    ('host_attachment',        'a---', '----', '----', '----', '----'),
    -- views: aggregates (owner's rights) for everyone; the others run with the caller's rights
    ('caseload',               'v---', 'v---', 'v---', 'v---', 'v---'),
    ('outcomes_quarterly',     'v---', 'v---', 'v---', 'v---', 'v---'),
    ('alerts_today',           'vvvv', 'v---', 'v---', 'v---', '----'),
    ('outcomes_quarterly_counts', '-vvv', 'v---', 'v---', 'v---', '----'),
    ('outcomes_jobs_quarterly_counts', '-vvv', 'v---', 'v---', 'v---', '----');   -- issue 16: by kind of job and hours   -- ips_admin: its tables refuse the SELECT

CREATE TEMP TABLE expect_fn (fn text PRIMARY KEY, codes text);
INSERT INTO expect_fn VALUES
    -- bounded input and analysts' fidelity (issue 13, branch bounds): trigger functions for
    -- nobody, the rest for every ips role (ips.team_visible decides whose team)
    ('ips.bounds_guard()',                                                                                   '-----'),
    ('ips.setting_check()',                                                                                  '-----'),
    ('ips.setting_changed()',                                                                                '-----'),   -- issue 14: settings kept across transactions
    ('ips.staff_changed()',                                                                                  '-----'),   -- issue 14: staff days kept across transactions
    ('ips.setting_kind(text)',                                                                               'xxxxx'),
    ('ips.outcomes_suppress(bigint[],integer)',                                                              'xxxxx'),
    ('ips.rate_of(bigint,bigint)',                                                                           'xxxxx'),
    ('ips.team_visible(bigint)',                                                                             'xxxxx'),
    ('ips.fidelity_team_level_only()',                                                                       'xxxxx'),
    ('ips.fidelity_team_evidence(jsonb)',                                                                    'xxxxx'),
    ('ips.fidelity_team_level(bigint[],date,date)',                                                          'xxxxx'),
    -- invoker functions: every ips role (the privileges and policies of the tables decide);
    -- SECURITY DEFINER functions: as listed in ips.apply_security(); the functions only
    -- the owner runs, and trigger functions: nobody
    ('ips.access_report(bigint,date,date)',                                                                'xx---'),
    ('ips.add_action(bigint,text,text,text,date)',                                                         'xxxxx'),
    ('ips.add_client(text,integer,text)',                                                                  '-xx--'),
    ('ips.add_employer(text,text,text)',                                                                   'xxxxx'),
    ('ips.add_reviewer(bigint,text,text)',                                                                 'xxxxx'),
    ('ips.add_staff(bigint,text,text,numeric,name,numeric,numeric,text)',                                  'xxxxx'),
    ('ips.add_team(text,text)',                                                                            'xxxxx'),
    ('ips.analytics_columns()',                                                                            'xxxxx'),
    ('ips.apply_security()',                                                                               '-----'),
    ('ips.assign_specialist(bigint,bigint,date)',                                                          'xxxxx'),
    -- issue 16: staff history, jobs, corrections (invoker functions: every role; triggers: nobody)
    ('ips.alerts_as_known(date,timestamp with time zone,bigint)',                                          'xxxxx'),
    ('ips.assignment_staff_guard()',                                                                       '-----'),
    ('ips.change_job_hours(bigint,date,numeric)',                                                          'xxxxx'),
    ('ips.change_staff(bigint,date,numeric,numeric,numeric)',                                              'xxxxx'),
    ('ips.continue_job(bigint,date,text,numeric,text)',                                                    'xxxxx'),
    ('ips.evidence_number(numeric)',                                                                       'xxxxx'),
    ('ips.job_hours_on(bigint,date)',                                                                      'xxxxx'),
    ('ips.number_text(numeric,text)',                                                                      'xxxxx'),
    ('ips.set_job_payer(bigint,text)',                                                                     'xxxxx'),
    ('ips.end_staff(bigint,date)',                                                                         'xxxxx'),
    ('ips.insert_transitions(bigint,text[],timestamp with time zone[],text[])',                            'xxxxx'),
    ('ips.job_plan_guard()',                                                                               '-----'),
    ('ips.plan_job(bigint,bigint,date,text,text,numeric,text)',                                            'xxxxx'),
    ('ips.record_pause(bigint,timestamp with time zone,timestamp with time zone,text)',                    'xxxxx'),
    ('ips.staff_guard()',                                                                                  '-----'),
    ('ips.staff_spans(bigint[])',                                                                          'xxxxx'),
    ('ips.staff_terms_restore()',                                                                          '-----'),
    -- records gaps: the checks at the table (triggers: nobody)
    ('ips.staff_day_guard()',                                                                              '-----'),
    ('ips.staff_terms_check()',                                                                            '-----'),
    ('ips.staff_terms_current()',                                                                          '-----'),
    ('ips.job_hours_check()',                                                                              '-----'),
    ('ips.job_span_check()',                                                                               '-----'),
    ('ips.job_continues_check()',                                                                          '-----'),
    ('ips.loading_rows()',                                                                                 'xxxxx'),
    ('ips.vocabulary_changed()',                                                                           '-----'),   -- issue 16, item 12: trigger
    ('ips.start_planned_job(bigint,date)',                                                                 'xxxxx'),
    ('ips.attach_host_table(regclass,name)',                                                               '-----'),
    ('ips.business_id_cmp(ips.business_id,ips.business_id)',                                               'xxxxx'),
    ('ips.business_id_eq(ips.business_id,ips.business_id)',                                                'xxxxx'),
    ('ips.business_id_ge(ips.business_id,ips.business_id)',                                                'xxxxx'),
    ('ips.business_id_gt(ips.business_id,ips.business_id)',                                                'xxxxx'),
    ('ips.business_id_hash(ips.business_id)',                                                              'xxxxx'),
    ('ips.business_id_in(cstring)',                                                                        'xxxxx'),
    ('ips.business_id_is_valid(text)',                                                                     'xxxxx'),
    ('ips.business_id_le(ips.business_id,ips.business_id)',                                                'xxxxx'),
    ('ips.business_id_lt(ips.business_id,ips.business_id)',                                                'xxxxx'),
    ('ips.business_id_ne(ips.business_id,ips.business_id)',                                                'xxxxx'),
    ('ips.business_id_out(ips.business_id)',                                                               'xxxxx'),
    ('ips.business_id_recv(internal)',                                                                     'xxxxx'),
    ('ips.business_id_send(ips.business_id)',                                                              'xxxxx'),
    ('ips.caller()',                                                                                       'xxxxx'),
    ('ips.change_log_row()',                                                                               '-----'),
    ('ips.check_code(text,text,text)',                                                                     'xxxxx'),
    ('ips.client_intake_record()',                                                                         '-----'),
    ('ips.client_record(bigint,text)',                                                                     'xxxxx'),
    ('ips.close_review(bigint)',                                                                           'xx---'),
    ('ips.complete_action(bigint,date)',                                                                   'xxxxx'),
    ('ips.complete_career_profile(bigint,date)',                                                           'xxxxx'),
    ('ips.consent_guard()',                                                                                '-----'),
    ('ips.consent_refusal_guard()',                                                                        '-----'),
    ('ips.contact_alerts(date,bigint)',                                                                    'xxxxx'),
    ('ips.contact_alerts_labelled(date,bigint,text)',                                                      'xxxxx'),
    ('ips.create_analytics_publication(text)',                                                             '-----'),
    ('ips.create_roles()',                                                                                 '-----'),
    ('ips.current_staff()',                                                                                'xxxxx'),
    ('ips.detach_host_table()',                                                                            '-----'),
    ('ips.encounter_fhir(bigint)',                                                                         'xxxxx'),
    ('ips.end_care_relationship(bigint,date)',                                                             'xxxxx'),
    ('ips.end_job(bigint,date,text)',                                                                      'xxxxx'),
    ('ips.end_studies(bigint,date)',                                                                       'xxxxx'),
    ('ips.episode_alerts(bigint,date)',                                                                    'xxxxx'),
    ('ips.episode_fhir(bigint)',                                                                           'xxxxx'),
    ('ips.episode_for_update(bigint)',                                                                     'xxxxx'),
    ('ips.episode_guard()',                                                                                '-----'),
    ('ips.episode_history()',                                                                              '-----'),
    ('ips.episode_specialist_check()',                                                                     '-----'),
    ('ips.episode_state_spans(bigint)',                                                                    'xxxxx'),
    ('ips.expectations(bigint,date,date)',                                                                 'xxxxx'),
    ('ips.fact_guard()',                                                                                   '-----'),
    ('ips.fhir_episode_status(text,text)',                                                                 'xxxxx'),
    ('ips.fhir_instant(timestamp with time zone)',                                                         'xxxxx'),
    ('ips.fidelity(bigint,date,date)',                                                                     'xxxxx'),
    ('ips.fidelity_all(date,date)',                                                                        'xxxxx'),
    ('ips.fidelity_anchor_score(text,numeric)',                                                            'xxxxx'),
    ('ips.fidelity_band_of(integer,integer)',                                                              'xxxxx'),
    ('ips.fidelity_check_period(bigint,date,date)',                                                        'xxxxx'),
    ('ips.fidelity_computed(bigint,date,date)',                                                            'xxxxx'),
    ('ips.fidelity_computed_teams(bigint[],date,date)',                                                    'xxxxx'),
    ('ips.fidelity_evidence_line(text,jsonb,text)',                                                        'xxxxx'),
    ('ips.fidelity_label_sync()',                                                                          '-----'),
    ('ips.fidelity_number(numeric,text)',                                                                  'xxxxx'),
    ('ips.fidelity_part_guard()',                                                                          '-----'),
    ('ips.fidelity_reference_restore()',                                                                   '-----'),
    ('ips.fidelity_report(bigint,date,date,text)',                                                         'xxxxx'),
    ('ips.fidelity_review_get(bigint,boolean)',                                                            'xxxxx'),
    ('ips.fidelity_review_guard()',                                                                        '-----'),
    ('ips.fidelity_round(numeric)',                                                                        'xxxxx'),
    ('ips.fidelity_summary(bigint,date,date)',                                                             'xxxxx'),
    ('ips.fidelity_teams(bigint[],date,date)',                                                             'xxxxx'),
    ('ips.give_consent(bigint,text,date)',                                                                 'xxxxx'),
    ('ips.history_guard()',                                                                                '-----'),
    ('ips.is_competitive(text)',                                                                           'xxxxx'),
    ('ips.is_team_client(bigint)',                                                                         '-xx--'),
    ('ips.label(text,text)',                                                                               'xxxxx'),
    ('ips.language(text)',                                                                                 'xxxxx'),
    ('ips.local_date(timestamp with time zone)',                                                           'xxxxx'),
    ('ips.local_midnight(date)',                                                                           'xxxxx'),
    ('ips.log_access(bigint,text,jsonb,timestamp with time zone,name,bigint)',                             '-----'),
    ('ips.my_teams()',                                                                                     '-xxx-'),
    ('ips.not_found(text,bigint)',                                                                         'xxxxx'),
    ('ips.open_review(bigint,date,date,date)',                                                             'xxxxx'),
    ('ips.outcomes_quarterly_for(integer)',                                                                'xxxxx'),
    ('ips.prepare_analytics_subscriber()',                                                                 '-----'),
    ('ips.rate(bigint,text,integer,text)',                                                                 'xxxxx'),
    ('ips.reattach_host_tables()',                                                                         '-----'),
    ('ips.record_contact(bigint,bigint,timestamp with time zone,text,text,text,integer)',                  'xxxxx'),
    ('ips.record_employer_contact(bigint,bigint,timestamp with time zone,boolean,bigint,boolean,boolean)', 'xxxxx'),
    ('ips.record_team_meeting(bigint,date)',                                                               'xxxxx'),
    ('ips.recordable_staff()',                                                                             '-xxx-'),
    ('ips.refer(bigint,bigint,date,text)',                                                                 'xxxxx'),
    ('ips.refuse_consent(bigint,text,date)',                                                               'xxxx-'),
    ('ips.require(anyelement,text)',                                                                       'xxxxx'),
    ('ips.require_visible_client(bigint)',                                                                 'xxxx-'),
    ('ips.restoring()',                                                                                    'xxxxx'),
    ('ips.review_changes(bigint)',                                                                         'xxxxx'),
    ('ips.review_result(bigint)',                                                                          'xxxxx'),
    ('ips.review_sheet(bigint,date,date,text)',                                                            'xxxxx'),
    ('ips.rule_check()',                                                                                   '-----'),
    ('ips.rule_check_period(date,date)',                                                                   'xxxxx'),
    ('ips.rule_check_team(bigint)',                                                                        'xxxxx'),
    ('ips.rule_compliance(bigint,date,date)',                                                              'xxxxx'),
    ('ips.rule_engine(text,date,date,bigint,bigint,timestamp with time zone)',                             'xxxxx'),
    ('ips.rule_labels()',                                                                                  '-----'),
    ('ips.rule_restore()',                                                                                 '-----'),
    ('ips.set_out_of_work_at_entry(bigint,boolean)',                                                       'xxxxx'),
    ('ips.setting_restore()',                                                                              '-----'),
    ('ips.setting_value(text)',                                                                            'xxxxx'),
    ('ips.shared_clients()',                                                                               '-xxx-'),
    ('ips.small_cell_threshold_for_caller()',                                                              'xxxxx'),
    ('ips.staff_specialist_check()',                                                                       '-----'),
    ('ips.start_care_relationship(bigint,text,date)',                                                      'xxxxx'),
    ('ips.start_job(bigint,bigint,date,text,text,numeric,text)',                                           'xxxxx'),
    ('ips.start_studies(bigint,date,text)',                                                                'xxxxx'),
    ('ips.suppress_count(bigint,integer)',                                                                 'xxxxx'),
    ('ips.suppress_rate(bigint,bigint,integer)',                                                           'xxxxx'),
    ('ips.team_clients()',                                                                                 '-xxx-'),
    ('ips.team_episodes()',                                                                                '-xxx-'),
    ('ips.team_reviews()',                                                                                 '-xx--'),
    ('ips.team_staff()',                                                                                   '-xxx-'),
    ('ips.transition(bigint,text,timestamp with time zone,text)',                                          'xxxxx'),
    ('ips.transition_time(ips.episode,date)',                                                              'xxxxx'),
    ('ips.verify_access_log()',                                                                            'x----'),
    ('ips.verify_change_log()',                                                                            'x----'),
    ('ips.access_log_append(timestamp with time zone,name,bigint,bigint,text,jsonb)',                      '-----'),
    ('ips.access_log_digest()',                                                                            'x----'),
    ('ips.archive_blocks(text,bigint)',                                                                    '-----'),
    ('ips.change_log_digest()',                                                                            'x----'),
    ('ips.ledger_digest(text)',                                                                            'x----'),
    ('ips.ledger_guard()',                                                                                 '-----'),
    ('ips.ledger_verify(text,jsonb,boolean)',                                                              'x----'),
    ('ips.seal()',                                                                                         'x----'),
    ('ips.verify_access_log(jsonb)',                                                                       'x----'),
    ('ips.verify_access_log_since(jsonb)',                                                                 'x----'),
    ('ips.verify_change_log(jsonb)',                                                                       'x----'),
    ('ips.verify_change_log_since(jsonb)',                                                                 'x----'),
    ('ips.withdraw_consent(bigint,text,date)',                                                             'xxxxx');

-- The roles, in the order of the codes, and a login of each (security_setup.psql).
CREATE TEMP TABLE matrix_role (ord int, grp name, login name);
INSERT INTO matrix_role VALUES (1, 'ips_admin', :'adm'), (2, 'ips_supervisor', :'sup'), (3, 'ips_specialist', :'spec'),
                               (4, 'ips_clinician', :'clin'), (5, 'ips_analyst', :'an');

-- One cell: the operation tried as the login on the relation, by a statement that touches no row.
CREATE FUNCTION pg_temp.cell(login name, rel regclass, op text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    kind "char" := (SELECT c.relkind FROM pg_class c WHERE c.oid = rel);
    col name;
    typ text;
    q text;
    result text;
BEGIN
    IF kind = 'v' AND op <> 'SELECT' THEN
        RETURN CASE WHEN has_table_privilege(login, rel, op) THEN 'v' ELSE '-' END;
    END IF;
    -- the first column, or for INSERT/UPDATE the first one the role holds the privilege on
    -- (staff update ips.client's birth_year and municipality only)
    SELECT a.attname, format_type(a.atttypid, a.atttypmod) INTO col, typ
      FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
     ORDER BY op IN ('INSERT', 'UPDATE') AND has_column_privilege(login, rel, a.attnum, op) DESC, a.attnum LIMIT 1;
    q := CASE op WHEN 'SELECT' THEN format('SELECT 1 FROM %s LIMIT 0', rel)
                 WHEN 'INSERT' THEN format('INSERT INTO %s (%I) SELECT NULL::%s WHERE false', rel, col, typ)
                 WHEN 'UPDATE' THEN format('UPDATE %s SET %I = NULL WHERE false', rel, col)
                 WHEN 'DELETE' THEN format('DELETE FROM %s WHERE false', rel) END;
    EXECUTE format('SET LOCAL ROLE %I', login);
    BEGIN
        EXECUTE q;
        result := CASE WHEN kind = 'v' THEN 'v'
                       WHEN (SELECT c.relrowsecurity FROM pg_class c WHERE c.oid = rel) THEN 'r' ELSE 'a' END;
        RAISE SQLSTATE 'TAPOK';
    EXCEPTION
        WHEN SQLSTATE 'TAPOK' THEN NULL;
        WHEN insufficient_privilege THEN result := '-';
        WHEN OTHERS THEN result := '?' || SQLSTATE;   -- neither allowed nor refused: shows as a mismatch
    END;
    RESET ROLE;
    RETURN result;
END $$;

-- Every cell of every relation of ips, tried.
CREATE TEMP TABLE rel_cell AS
SELECT c.relname::text AS rel, r.ord, o.ord AS op_ord, pg_temp.cell(r.login, c.oid::regclass, o.op) AS got
  FROM pg_class c
 CROSS JOIN matrix_role r
 CROSS JOIN (VALUES (1, 'SELECT'), (2, 'INSERT'), (3, 'UPDATE'), (4, 'DELETE')) AS o(ord, op)
 WHERE c.relnamespace = 'ips'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm');

CREATE TEMP TABLE rel_got AS
SELECT rel, string_agg(codes, ' ' ORDER BY ord) AS got
  FROM (SELECT rel, ord, string_agg(got, '' ORDER BY op_ord) AS codes FROM rel_cell GROUP BY rel, ord) x
 GROUP BY rel;

SELECT is((SELECT string_agg(rel, ', ' ORDER BY rel) FROM rel_got WHERE rel NOT IN (SELECT rel FROM expect_rel)), NULL,
          'every relation of schema ips has its line in the matrix');
SELECT is((SELECT string_agg(rel, ', ' ORDER BY rel) FROM expect_rel WHERE rel NOT IN (SELECT rel FROM rel_got)), NULL,
          'every line of the matrix names a relation of schema ips');
SELECT is(g.got, concat_ws(' ', e.adm, e.sup, e.spec, e.clin, e.an),
          format('ips.%s: admin supervisor specialist clinician analyst', e.rel))
  FROM expect_rel e JOIN rel_got g USING (rel)
 ORDER BY e.rel;

-- EXECUTE of every function of ips, by every role.
CREATE TEMP TABLE fn_got AS
SELECT p.oid::regprocedure::text AS fn,
       string_agg(CASE WHEN has_function_privilege(r.grp, p.oid, 'EXECUTE') THEN 'x' ELSE '-' END, '' ORDER BY r.ord) AS got
  FROM pg_proc p CROSS JOIN matrix_role r
 WHERE p.pronamespace = 'ips'::regnamespace
 GROUP BY p.oid;

SELECT is((SELECT string_agg(fn, ', ' ORDER BY fn) FROM fn_got WHERE fn NOT IN (SELECT fn FROM expect_fn)), NULL,
          'every function of schema ips has its line in the matrix');
SELECT is((SELECT string_agg(fn, ', ' ORDER BY fn) FROM expect_fn WHERE fn NOT IN (SELECT fn FROM fn_got)), NULL,
          'every function line of the matrix names a function of schema ips');
SELECT is((SELECT string_agg(format('%s: %s, expected %s', fn, g.got, e.codes), '; ' ORDER BY fn)
             FROM expect_fn e JOIN fn_got g USING (fn)
            WHERE g.got <> e.codes),
          NULL, 'EXECUTE of every function by every ips role as written down');
-- ips.log_access is an internal writer, run only by client_record's autonomous writer
-- (docs/access-log.md); 1.1's ips.log_access(bigint, text, jsonb) is gone
SELECT is((SELECT got FROM fn_got WHERE fn = 'ips.log_access(bigint,text,jsonb,timestamp with time zone,name,bigint)'), '-----',
          'ips.log_access: executable by no ips role');

-- The size of the matrix, and the refusals in it.
SELECT is((SELECT count(*)::int FROM rel_cell), 1060, 'relation cells tried: 53 relations x 5 roles x 4 operations');
SELECT is((SELECT count(*)::int FROM fn_got) * 5, 885, 'function cells tried: 177 functions x 5 roles');
SELECT is((SELECT count(*)::int FROM rel_cell WHERE got = '-'),
          (SELECT sum(length(x) - length(replace(x, '-', '')))::int
             FROM expect_rel, LATERAL (SELECT concat(adm, sup, spec, clin, an) AS x) y),
          'relation cells refused: as many as the matrix writes down');

SELECT * FROM finish();
ROLLBACK;
