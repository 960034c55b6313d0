-- ips.episode_fhir and ips.encounter_fhir: the FHIR R4 structure and codes.
BEGIN;
SELECT plan(16);
SET LOCAL TimeZone = 'Europe/Helsinki';

SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa') AS team \gset
SELECT ips.add_staff(:team, 'Anna Virtanen', 'specialist') AS anna \gset
SELECT ips.add_client('ehr-77') AS c \gset
SELECT ips.start_care_relationship(:c, 'Unit', '2025-01-01') \gset
SELECT ips.refer(:c, :team, '2025-02-03') AS e \gset
SELECT ips.assign_specialist(:e, :anna, '2025-02-03') \gset
SELECT ips.transition(:e, 'engaged', '2025-02-05 10:00') \gset
SELECT ips.record_contact(:e, :anna, '2025-02-05 10:00', 'client', 'in_person', 'community', 45) AS k1 \gset
SELECT ips.record_contact(:e, :anna, '2025-02-06 10:00', 'client', 'phone') AS k2 \gset
SELECT ips.transition(:e, 'on_hold', '2025-03-01 12:00') \gset

SELECT ips.episode_fhir(:e) AS eoc \gset
SELECT is(:'eoc'::jsonb ->> 'resourceType', 'EpisodeOfCare', 'resourceType');
SELECT is(:'eoc'::jsonb ->> 'status', 'onhold', 'on_hold is onhold');
SELECT is(:'eoc'::jsonb #>> '{meta,profile,0}',
          'https://hl7.fi/fhir/finnish-base-profiles/StructureDefinition/fi-base-episode-of-care', 'FI Base profile');
SELECT is(:'eoc'::jsonb #>> '{patient,identifier,value}', 'ehr-77', 'patient by host_ref');
SELECT is((SELECT array_agg(h ->> 'status' ORDER BY n) FROM jsonb_array_elements(:'eoc'::jsonb -> 'statusHistory') WITH ORDINALITY x(h, n)),
          ARRAY['waitlist', 'active', 'onhold'], 'statusHistory follows the history');
SELECT is(:'eoc'::jsonb #>> '{statusHistory,1,period,start}', '2025-02-05T08:00:00Z', 'period start in UTC');
SELECT is(:'eoc'::jsonb #>> '{statusHistory,1,period,end}', '2025-03-01T10:00:00Z', 'a period ends where the next starts');
SELECT ok(NOT (:'eoc'::jsonb -> 'statusHistory' -> 2 -> 'period') ? 'end', 'the current status has an open period');
SELECT ok(:'eoc'::jsonb ? 'managingOrganization' AND :'eoc'::jsonb ? 'careManager', 'team and care manager');
SELECT ok((SELECT bool_and(s IN ('planned','waitlist','active','onhold','finished','cancelled','entered-in-error'))
             FROM (SELECT ips.fhir_episode_status(code, r) AS s FROM ips.vocabulary,
                          unnest(ARRAY[NULL,'never_engaged','client_choice']) r WHERE category = 'state') x),
          'every state maps to a valid EpisodeOfCare.status');
SELECT is(ips.fhir_episode_status('closed', 'never_engaged'), 'cancelled', 'never engaged: cancelled');

SELECT ips.encounter_fhir(:k1) AS enc1 \gset
SELECT ips.encounter_fhir(:k2) AS enc2 \gset
SELECT is(:'enc1'::jsonb ->> 'status', 'finished', 'Encounter.status finished');
SELECT is(:'enc1'::jsonb #>> '{class,code}', 'FLD', 'in person in the community: field');
SELECT is(:'enc2'::jsonb #>> '{class,code}', 'VR', 'phone: virtual');
SELECT is(:'enc1'::jsonb #>> '{length,value}', '45', 'length in minutes');
SELECT throws_ok('SELECT ips.episode_fhir(999999)', 'P0002', 'no episode with id 999999', 'unknown episode');

SELECT * FROM finish();
ROLLBACK;
