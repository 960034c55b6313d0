-- The clinician: sees a client's IPS record only while the unit cares for the
-- client and the client's share_with_care consent is in force; a withdrawal,
-- a refusal or the end of the care relationship takes effect at once.
BEGIN;
SELECT plan(24);
\ir security_setup.psql

CREATE FUNCTION pg_temp.sees(r name, client bigint) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.try_as(r, format('SELECT count(*) FROM ips.episode WHERE client_id = %s', client))
$$;

-- Before: consent in force, care relationship active.
SELECT is(pg_temp.sees(:'clin', :c1), 'ok:1', 'with consent and care the clinician sees the episode');
SELECT is(pg_temp.try_as(:'clin', format('SELECT ips.client_record(%s, ''care team meeting'') -> ''episode'' ->> ''state''', :c1)),
          'ok:employed', 'client_record shows the clinician the episode''s state');
SELECT is(pg_temp.try_as(:'clin', format('SELECT jsonb_array_length(ips.client_record(%s, ''care team meeting'') -> ''state_history'')', :c1)),
          'ok:3', 'client_record shows the state history (referred, engaged, employed)');
SELECT is(pg_temp.try_as(:'clin', format('SELECT ips.client_record(%s, ''care team meeting'') -> ''current_job'' ->> ''occupation''', :c1)),
          'ok:5223', 'client_record shows the current job');
SELECT is(pg_temp.try_as(:'clin', format('SELECT ips.client_record(%s, ''x'') -> ''consents'' -> 0 ->> ''scope''', :c1)),
          'ok:share_with_care', 'client_record shows the consents');
SELECT is(pg_temp.sees(:'clin', :c2), 'ok:0', 'the other unit''s client without consent stays hidden');
SELECT is(pg_temp.try_as(:'clin', format('SELECT ips.client_record(%s, ''curiosity'')', :c2)), 'P0002',
          'client_record of a hidden client: no client with that id');

-- Care-team contacts: allowed for shared clients, and only of kind care_team, as oneself.
SELECT is(pg_temp.do_as(:'clin', format('SELECT ips.record_contact(%s, %s, ''2024-02-05 10:00+02'', ''care_team'', ''phone'', ''office'') IS NOT NULL', :e1, :s_clin)),
          'true', 'the clinician records a care-team contact');
SELECT is(pg_temp.try_as(:'clin', format('SELECT ips.record_contact(%s, %s, ''2024-02-05 10:00+02'', ''client'')', :e1, :s_clin)),
          '42501', 'a client contact is not the clinician''s to record');
SELECT is(pg_temp.try_as(:'clin', format('SELECT ips.record_contact(%s, %s, ''2024-02-05 10:00+02'', ''care_team'')', :e1, :s_spec)),
          '42501', 'nor a contact in a colleague''s name');
SELECT is(pg_temp.try_as(:'clin', format('SELECT ips.record_contact(%s, %s, ''2024-02-05 10:00+02'', ''care_team'')', :e2, :s_clin)),
          'P0002', 'nor a contact on a hidden episode (no episode with that id)');

SELECT is(pg_temp.try_as(:'clin', format('SELECT ips.give_consent(%s, ''family_contact'', current_date)', :c1)), '42501',
          'a clinician cannot record consents (only refusals)');

-- Withdrawal of consent today: hidden at once.
SELECT ips.withdraw_consent(:c1, 'share_with_care', current_date) \gset
SELECT is(pg_temp.sees(:'clin', :c1), 'ok:0', 'after the withdrawal of consent the episode is hidden at once');
SELECT is(pg_temp.try_as(:'clin', format('SELECT count(*) FROM ips.contact WHERE client_id = %s', :c1)), 'ok:0',
          'and so are the contacts, the clinician''s own included');
SELECT is(pg_temp.try_as(:'clin', format('SELECT ips.client_record(%s, ''care team meeting'')', :c1)), 'P0002',
          'client_record refuses after the withdrawal');
SELECT is(pg_temp.sees(:'spec', :c1), 'ok:1', 'the team''s specialist still sees the episode');

-- New consent: visible again; then the care relationship ends today: hidden at once.
SELECT ips.give_consent(:c1, 'share_with_care', current_date) \gset
SELECT is(pg_temp.sees(:'clin', :c1), 'ok:1', 'a new consent opens the record again');
SELECT ips.end_care_relationship(:cr1, current_date) \gset
SELECT is(pg_temp.sees(:'clin', :c1), 'ok:0', 'the end of the care relationship hides the record at once');
SELECT ips.start_care_relationship(:c1, 'Psykiatria Vaasa', current_date) AS cr1b \gset
SELECT is(pg_temp.sees(:'clin', :c1), 'ok:1', 'a new care relationship of the unit opens it again');
SELECT ips.start_care_relationship(:c2, 'Psykiatria Vaasa', current_date) \gset
SELECT is(pg_temp.sees(:'clin', :c2), 'ok:0', 'care without consent is not enough');

-- A recorded refusal (by the clinician, who hears it) hides the record at once and is logged.
SELECT is(pg_temp.do_as(:'clin', format('SELECT ips.refuse_consent(%s, ''share_with_care'', current_date) IS NOT NULL', :c1)),
          'true', 'the clinician records the client''s refusal');
SELECT is(pg_temp.sees(:'clin', :c1), 'ok:0', 'the refusal hides the record at once');
SELECT is((SELECT array_agg(operation || ' ' || table_name ORDER BY seq) FROM ips.change_log
            WHERE db_role = :'clin' AND table_name IN ('ips.consent', 'ips.consent_refusal')),
          '{"UPDATE ips.consent","INSERT ips.consent_refusal"}', 'the refusal is in the change log under the clinician''s role');
SELECT is((SELECT new_row ->> 'withdrawn_on' FROM ips.change_log
            WHERE db_role = :'clin' AND table_name = 'ips.consent'), current_date::text,
          'the change log shows the consent ended today');

SELECT * FROM finish();
ROLLBACK;
