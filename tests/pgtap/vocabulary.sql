-- Issue 16 item 12: the vocabulary from one source.  The codes are rows of ips.vocabulary
-- (one partition per category) that the code columns reference by foreign key; the state
-- machine's allowed moves are rows of ips.state_transition; the C code's checks and hints
-- read both (changed in this transaction, they answer at once); only the extension's owner
-- changes them.  Every expectation written by hand from domain.md section 3 and api.md.
BEGIN;
SELECT plan(27);
SET LOCAL timezone = 'Europe/Helsinki';

-- SQLSTATE | message | hint of a statement's error
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    m text;
    h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, h = PG_EXCEPTION_HINT;
    RETURN st || ' | ' || m || ' | ' || coalesce(h, '(no hint)');
END $$;

-- 1. Where the codes live: every column holding a code references the vocabulary
SELECT is((SELECT string_agg(format('%s(%s)->%s', c.conrelid::regclass, k.cols, c.confrelid::regclass), ' '
                             ORDER BY c.conrelid::regclass::text, k.cols)
             FROM pg_constraint c
             CROSS JOIN LATERAL (SELECT string_agg(a.attname, ',' ORDER BY u.ord) AS cols
                                   FROM unnest(c.conkey) WITH ORDINALITY u(attnum, ord)
                                   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = u.attnum) k
            WHERE c.contype = 'f' AND c.connamespace = 'ips'::regnamespace
              AND (c.confrelid::regclass::text LIKE 'ips.vocabulary%'
                   OR c.confrelid IN ('ips.contact_form'::regclass, 'ips.state_transition'::regclass))),
          'ips.consent(scope)->ips.vocabulary_consent_scope '
          'ips.consent_refusal(scope)->ips.vocabulary_consent_scope '
          'ips.contact(kind,mode,setting)->ips.contact_form '
          'ips.contact_form(kind)->ips.vocabulary_contact_kind '
          'ips.contact_form(mode)->ips.vocabulary_contact_mode '
          'ips.contact_form(setting)->ips.vocabulary_contact_setting '
          'ips.episode(close_reason)->ips.vocabulary_close_reason '
          'ips.episode(held_state)->ips.vocabulary_state '
          'ips.episode(state)->ips.vocabulary_state '
          'ips.episode_state_history(from_state,to_state)->ips.state_transition '
          'ips.episode_state_history(to_state)->ips.vocabulary_state '
          'ips.job(kind)->ips.vocabulary_job_kind '
          'ips.job(payer)->ips.vocabulary_job_payer '
          'ips.job_plan(kind)->ips.vocabulary_job_kind '
          'ips.staff(role)->ips.vocabulary_staff_role '
          'ips.state_transition(from_state)->ips.vocabulary_state '
          'ips.state_transition(to_state)->ips.vocabulary_state',
          'every code column references the vocabulary by a foreign key (a contact: one key for kind, mode and setting)');
SELECT is((SELECT string_agg(c.conname, ', ') FROM pg_constraint c
            WHERE c.contype = 'c' AND c.connamespace = 'ips'::regnamespace
              AND c.conrelid IN ('ips.episode'::regclass, 'ips.episode_state_history'::regclass, 'ips.contact'::regclass,
                                 'ips.job'::regclass, 'ips.job_plan'::regclass, 'ips.staff'::regclass,
                                 'ips.consent'::regclass, 'ips.consent_refusal'::regclass)
              AND pg_get_constraintdef(c.oid) LIKE '%ANY (ARRAY[%'), NULL,
          'no CHECK list of codes is left on those tables (1.1 had twelve)');
SELECT is((SELECT count(*)::int FROM ips.vocabulary), 40,
          'the vocabulary: 7 states, 7 closing reasons, 6 contact kinds, 4 modes, 2 settings, 5 job kinds, 3 payers, 3 roles, 3 scopes');
SELECT is((SELECT string_agg(code, ',' ORDER BY ordinal) FROM ips.vocabulary_state),
          'referred,engaged,job_search,employed,studying,on_hold,closed', 'the states in their order, in their partition');
SELECT is((SELECT string_agg(from_state || '>' || to_state, ' ' ORDER BY f.ordinal, t.ordinal)
             FROM ips.state_transition x
             JOIN ips.vocabulary_state f ON f.code = x.from_state JOIN ips.vocabulary_state t ON t.code = x.to_state),
          'referred>engaged referred>employed referred>on_hold referred>closed '
          'engaged>job_search engaged>employed engaged>studying engaged>on_hold engaged>closed '
          'job_search>employed job_search>studying job_search>on_hold job_search>closed '
          'employed>job_search employed>studying employed>on_hold employed>closed '
          'studying>job_search studying>employed studying>on_hold studying>closed '
          'on_hold>referred on_hold>engaged on_hold>job_search on_hold>employed on_hold>studying on_hold>closed',
          'ips.state_transition: the 27 allowed moves (closed is final)');
SELECT is((SELECT count(*)::int FROM ips.contact_form), 6 * 4 * 2, 'ips.contact_form: every kind x mode x setting');
SELECT is((SELECT label_fi || ' | ' || label_sv || ' | ' || label_en FROM ips.vocabulary_labels
            WHERE category = 'state' AND code = 'job_search'),
          'työnhaku | jobbsökning | job search', 'ips.vocabulary_labels: a code with its labels in fi, sv and en');

-- 2. The tables refuse a code outside the vocabulary (direct DML: the foreign key, 23503)
SELECT ips.add_team('Vocabulary', 'Pohjanmaa') AS t \gset
SELECT ips.add_staff(:t, 'A', 'specialist') AS a \gset
SELECT ips.add_client('vocab-1') AS c \gset
SELECT ips.start_care_relationship(:c, 'psykiatria', '2025-01-01');
SELECT ips.refer(:c, :t, '2025-03-01') AS e \gset
SELECT ips.assign_specialist(:e, :a, '2025-03-01');
SELECT ips.transition(:e, 'engaged', '2025-03-03 12:00+02');
SELECT throws_ok(format($$INSERT INTO ips.contact (episode_id, client_id, staff_id, at, kind) VALUES (%s, %s, %s, '2025-03-04 10:00+02', 'lunch')$$,
                        :e, :c, :a), '23503', NULL, 'a contact of an unknown kind: the foreign key refuses it');
SELECT throws_ok(format($$INSERT INTO ips.contact (episode_id, client_id, staff_id, at, kind, mode) VALUES (%s, %s, %s, '2025-03-04 10:00+02', 'client', 'telepathy')$$,
                        :e, :c, :a), '23503', NULL, 'a contact of an unknown mode: refused');
SELECT lives_ok(format($$INSERT INTO ips.contact (episode_id, client_id, staff_id, at, kind, mode, setting) VALUES (%s, %s, %s, '2025-03-04 10:00+02', 'family', 'video', 'office')$$,
                       :e, :c, :a), 'a contact of known codes is stored');
SELECT throws_ok(format($$INSERT INTO ips.staff (team_id, display_name, role) VALUES (%s, 'X', 'janitor')$$, :t),
                 '23503', NULL, 'a staff role outside the vocabulary: refused');
SELECT throws_ok($$DELETE FROM ips.vocabulary WHERE category = 'state' AND code = 'studying'$$, '23503', NULL,
                 'a state the transitions and the episodes use cannot leave the vocabulary');

-- 3. The state machine reads its moves from ips.state_transition (at once, in this transaction)
DELETE FROM ips.state_transition WHERE from_state = 'engaged' AND to_state = 'job_search';
SELECT is(pg_temp.err(format($$SELECT ips.transition(%s, 'job_search', '2025-03-10 12:00+02')$$, :e)),
          '55000 | episode ' || :e || ' cannot move from engaged to job_search | Allowed from engaged: employed, studying, on_hold, closed.',
          'a move removed from the table is refused, and the hint lists the table''s moves');
INSERT INTO ips.state_transition (from_state, to_state, condition) VALUES ('engaged', 'job_search', 'once the career profile is done');
SELECT is(pg_temp.err(format($$SELECT ips.transition(%s, 'referred', '2025-03-10 12:00+02')$$, :e)),
          '55000 | episode ' || :e || ' cannot move from engaged to referred | Allowed from engaged: job_search (once the career profile is done), employed, studying, on_hold, closed.',
          'a move put back, with its condition: the hint names it in the states'' order');
SELECT is(ips.transition(:e, 'job_search', '2025-03-10 12:00+02'), 'job_search', 'the move is allowed again');
INSERT INTO ips.state_transition (from_state, to_state) VALUES ('job_search', 'engaged');
SELECT is(ips.transition(:e, 'engaged', '2025-03-11 12:00+02'), 'engaged',
          'a move added to the table (job_search -> engaged, not in 1.2''s) is allowed by the state machine');
SELECT is((SELECT string_agg(coalesce(from_state, '-') || '>' || to_state, ' ' ORDER BY at) FROM ips.episode_state_history WHERE episode_id = :e),
          '->referred referred>engaged engaged>job_search job_search>engaged', 'and recorded in the history (its foreign key holds)');
SELECT is(pg_temp.err(format($$SELECT ips.insert_transitions(%s, '{closed}', '{2025-03-05 12:00+02}')$$, :e)),
          '22023 | "closed" cannot be inserted into the history | Insert one of: referred, engaged, job_search, employed, studying, on_hold; close with ips.transition().',
          'ips.insert_transitions: the hint lists the vocabulary''s states but closed');

-- 4. Codes and hints of the checks come from ips.vocabulary
INSERT INTO ips.vocabulary (category, code, ordinal) VALUES ('close_reason', 'retired', 8);
SELECT is(pg_temp.err(format($$SELECT ips.transition(%s, 'closed', reason => 'lottery')$$, :e)),
          '22023 | unknown closing reason "lottery" | Use one of: stable_employment, client_choice, moved, referred_elsewhere, disengaged, deceased, never_engaged, retired.',
          'ips.transition: the closing reasons of the hint are the vocabulary''s (one added in this transaction too)');
SELECT is(pg_temp.err(format($$UPDATE ips.episode SET state = 'closed', state_reason = 'lottery' WHERE episode_id = %s$$, :e)),
          '22023 | unknown closing reason "lottery" for episode ' || :e || ' | Use one of: stable_employment, client_choice, moved, referred_elsewhere, disengaged, deceased, never_engaged, retired.',
          'a direct UPDATE: the state machine''s hint lists the same codes');
SELECT is(pg_temp.err(format($$UPDATE ips.episode SET state = 'hired' WHERE episode_id = %s$$, :e)),
          '22023 | unknown episode state "hired" | Use one of: referred, engaged, job_search, employed, studying, on_hold, closed.',
          'a direct UPDATE to an unknown state: the states of the vocabulary as hint');
SELECT is(ips.transition(:e, 'closed', '2025-03-12 12:00+02', 'retired'), 'closed', 'a closing reason added to the vocabulary is accepted');
SELECT is((SELECT close_reason FROM ips.episode WHERE episode_id = :e), 'retired', '... and kept as the episode''s reason');
SELECT is(pg_temp.err($$SELECT ips.check_code('contact_mode', 'fax', 'contact mode')$$),
          '22023 | unknown contact mode "fax" | Use one of: in_person, phone, video, message.', 'ips.check_code: the modes as hint');

-- 5. Only the extension's owner changes the vocabulary: ips_admin reads it, like every ips role
CREATE ROLE vocab_test_admin;
GRANT ips_admin TO vocab_test_admin;
SET LOCAL ROLE vocab_test_admin;
SELECT throws_ok($$INSERT INTO ips.vocabulary (category, code, ordinal) VALUES ('job_kind', 'apprenticeship', 6)$$, '42501', NULL,
                 'ips_admin: no INSERT into ips.vocabulary (1.1: allowed)');
SELECT throws_ok($$DELETE FROM ips.state_transition WHERE from_state = 'on_hold'$$, '42501', NULL,
                 'ips_admin: no DELETE from ips.state_transition');
SELECT throws_ok($$UPDATE ips.contact_form SET setting = 'office' WHERE false$$, '42501', NULL,
                 'ips_admin: no UPDATE of ips.contact_form');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
