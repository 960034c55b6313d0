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
