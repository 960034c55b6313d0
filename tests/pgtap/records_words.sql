-- Issue 16 item 11: terminology as the seeds and THL write it, one name for the review,
-- decimal commas in Finnish and Swedish.
BEGIN;
SELECT plan(21);
SELECT is(ips.label('supervisor', 'fi'), 'IPS-tiiminvetäjä', 'the team leader as the seeds say it (1.1: IPS-esihenkilö)');
SELECT is(ips.label('supervisor', 'sv'), 'IPS-teamledare', 'sv: IPS-teamledare (1.1: IPS-chef)');
SELECT is(ips.label('clinician', 'fi'), 'hoitotiimin jäsen', 'a clinician is a person, not hoitotaho (the care organisation)');
SELECT is(ips.label('clinician', 'sv'), 'medlem i vårdteamet', 'sv: a person, not vårdgivare');
SELECT is(ips.label('care_team', 'fi'), 'yhteydenpito hoitotahoon', 'hoitotaho stays where it means the care organisation');
SELECT is(ips.label('client', 'fi'), 'asiakaskontakti', 'the client contact covers phone and video (1.1: asiakastapaaminen, a meeting)');
SELECT is(ips.label('client', 'sv'), 'klientkontakt', 'sv: klientkontakt');
SELECT is(ips.label('outreach_attempt', 'sv'), 'kontaktförsök', 'sv: kontaktförsök (1.1: uppsökande försök)');
SELECT is(ips.label('community', 'sv'), 'utanför kontoret', 'sv: utanför kontoret (1.1: ute i samhället)');
SELECT is(ips.label('V13', 'sv'), 'Tjänster utanför kontoret', 'V13 in Swedish follows');
SELECT is(ips.label('moved', 'sv'), 'flyttat bort', 'sv: flyttat bort (1.1: flyttade)');
SELECT is(ips.label('self_employed', 'fi') || ' / ' || ips.label('self_employed', 'sv'), 'oma yritys / eget företag',
          'a kind of job, not a person (1.1: yrittäjä / företagare)');
SELECT is(ips.label('no_contact', 'sv'), 'Ingen kontakt med klienten: ta kontakt', 'the no-contact rule does not break off');
SELECT is(ips.label('O5', 'fi'), 'IPS-tiiminvetäjän rooli', 'O5 names the team leader');
SELECT is(ips.label('fidelity_band_none', 'fi'), 'ei vielä (kaikkia 25 osiota ei ole pisteytetty)', 'fi: not all 25 items are scored');
SELECT is(ips.label('fidelity_band_none', 'sv'), 'ännu inte (inte alla 25 punkter är poängsatta)', 'sv: not all 25 items are scored');
SELECT is(ips.label('fidelity_title', 'fi') || ' / ' || ips.label('fidelity_title', 'sv'), 'IPS-laatuarviointi / IPS-kvalitetsbedömning',
          'the review has one name, THL''s');
SELECT ips.add_team('Words', 'Pohjanmaa') AS t \gset
SELECT is((SELECT l FROM ips.fidelity_report(:t, '2025-01-01', '2025-03-31', 'fi') l LIMIT 1),
          'IPS-laatuarviointi: Words (Pohjanmaa), kausi 2025-01-01 – 2025-03-31', 'the printed review carries that name');
SELECT is(ips.number_text(41.5, 'fi'), '41,5', 'a decimal comma in Finnish');
SELECT is(ips.number_text(41.5, 'sv'), '41,5', 'a decimal comma in Swedish');
SELECT is(ips.number_text(41.5, 'en'), '41.5', 'a decimal point in English');
SELECT * FROM finish();
ROLLBACK;
