-- HL7 FHIR R4 views of the record, for apps and for `ipsctl export --fhir`:
-- one place that maps our states and contacts to FHIR.  New in 1.1: all of it is the upgrade.

-- An instant as FHIR dateTime/instant text (UTC, 'Z').
CREATE FUNCTION ips.fhir_instant(at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
           || CASE WHEN date_trunc('second', at) = at THEN '' ELSE to_char(at AT TIME ZONE 'UTC', '.US') END || 'Z'
$$;
COMMENT ON FUNCTION ips.fhir_instant(timestamptz) IS 'An instant as FHIR instant text in UTC.';

-- Our episode state as EpisodeOfCare.status.
CREATE FUNCTION ips.fhir_episode_status(state text, close_reason text DEFAULT NULL) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE state
             WHEN 'referred' THEN 'waitlist'
             WHEN 'on_hold' THEN 'onhold'
             WHEN 'closed' THEN CASE WHEN close_reason = 'never_engaged' THEN 'cancelled' ELSE 'finished' END
             ELSE 'active' END
$$;
COMMENT ON FUNCTION ips.fhir_episode_status(text, text) IS
    'EpisodeOfCare.status of a state: referred waitlist; engaged, job_search, employed, studying active; on_hold onhold; closed finished (never_engaged: cancelled).';

-- One episode as a FHIR R4 EpisodeOfCare (FI Base profile), or error P0002.
CREATE FUNCTION ips.episode_fhir(episode_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r jsonb;
BEGIN
    SELECT jsonb_strip_nulls(jsonb_build_object(
             'resourceType', 'EpisodeOfCare',
             'id', 'ips-episode-' || e.episode_id,
             'meta', jsonb_build_object('profile',
                     jsonb_build_array('https://hl7.fi/fhir/finnish-base-profiles/StructureDefinition/fi-base-episode-of-care')),
             'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:ips:episode', 'value', e.episode_id::text)),
             'status', ips.fhir_episode_status(e.state, e.close_reason),
             'statusHistory', (SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                        'status', ips.fhir_episode_status(h.to_state, h.reason),
                                        'period', jsonb_build_object('start', ips.fhir_instant(h.at),
                                                                     'end', ips.fhir_instant(h.until))))
                                      ORDER BY h.at, h.history_id)
                                 FROM (SELECT x.*, lead(x.at) OVER (ORDER BY x.at, x.history_id) AS until
                                         FROM ips.episode_state_history x WHERE x.episode_id = e.episode_id) h),
             'type', jsonb_build_array(jsonb_build_object(
                     'coding', jsonb_build_array(jsonb_build_object('system', 'urn:ips:episode-type', 'code', 'ips',
                                                                    'display', 'IPS supported employment')),
                     'text', 'IPS (Individual Placement and Support)')),
             'patient', jsonb_build_object('identifier', jsonb_build_object('system', 'urn:ips:host_ref', 'value', c.host_ref)),
             'managingOrganization', jsonb_build_object('reference', 'urn:uuid:' || md5('ips-team-' || e.team_id)::uuid,
                                                        'display', t.name),
             'period', jsonb_build_object('start', e.referred_on, 'end', e.closed_on),
             'careManager', CASE WHEN s.staff_id IS NOT NULL THEN
                             jsonb_build_object('identifier', jsonb_build_object('system', 'urn:ips:staff', 'value', s.staff_id::text),
                                                'display', s.display_name) END))
      INTO r
      FROM ips.episode e
      JOIN ips.client c ON c.client_id = e.client_id
      JOIN ips.team t ON t.team_id = e.team_id
      LEFT JOIN ips.staff s ON s.staff_id = e.specialist_id
     WHERE e.episode_id = episode_fhir.episode_id;
    IF r IS NULL THEN
        PERFORM ips.not_found('episode', episode_fhir.episode_id);
    END IF;
    RETURN r;
END $$;
COMMENT ON FUNCTION ips.episode_fhir(bigint) IS
    'The episode as an HL7 FHIR R4 EpisodeOfCare (FI Base profile): status, statusHistory, patient by host_ref, team, careManager.';

-- One contact as a FHIR R4 Encounter, or error P0002.
CREATE FUNCTION ips.encounter_fhir(contact_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r jsonb;
BEGIN
    SELECT jsonb_strip_nulls(jsonb_build_object(
             'resourceType', 'Encounter',
             'id', 'ips-contact-' || x.contact_id,
             'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:ips:contact', 'value', x.contact_id::text)),
             'status', 'finished',
             'class', jsonb_build_object('system', 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
                        'code', CASE WHEN x.mode IN ('phone', 'video', 'message') THEN 'VR'
                                     WHEN x.setting = 'community' THEN 'FLD' ELSE 'AMB' END,
                        'display', CASE WHEN x.mode IN ('phone', 'video', 'message') THEN 'virtual'
                                        WHEN x.setting = 'community' THEN 'field' ELSE 'ambulatory' END),
             'type', jsonb_build_array(jsonb_build_object(
                        'coding', jsonb_build_array(jsonb_build_object('system', 'urn:ips:contact-kind', 'code', x.kind)),
                        'text', ips.label(x.kind, 'en'))),
             'subject', jsonb_build_object('identifier', jsonb_build_object('system', 'urn:ips:host_ref', 'value', c.host_ref)),
             'episodeOfCare', jsonb_build_array(jsonb_build_object('reference', 'urn:uuid:' || md5('ips-episode-' || x.episode_id)::uuid)),
             'participant', jsonb_build_array(jsonb_build_object('individual', jsonb_build_object('identifier',
                        jsonb_build_object('system', 'urn:ips:staff', 'value', x.staff_id::text)))),
             'period', jsonb_build_object('start', ips.fhir_instant(x.at),
                        'end', ips.fhir_instant(x.at + x.minutes * interval '1 minute')),
             'length', CASE WHEN x.minutes IS NOT NULL THEN
                        jsonb_build_object('value', x.minutes, 'unit', 'min', 'system', 'http://unitsofmeasure.org', 'code', 'min') END))
      INTO r
      FROM ips.contact x JOIN ips.client c ON c.client_id = x.client_id
     WHERE x.contact_id = encounter_fhir.contact_id;
    IF r IS NULL THEN
        PERFORM ips.not_found('contact', encounter_fhir.contact_id);
    END IF;
    RETURN r;
END $$;
COMMENT ON FUNCTION ips.encounter_fhir(bigint) IS
    'A contact as an HL7 FHIR R4 Encounter (class VR/FLD/AMB, type by contact kind, linked to its EpisodeOfCare).';
