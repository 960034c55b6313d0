-- 1.0 -> 1.1: ips.fidelity_computed, as in extension/sql/40_fidelity.sql (tests/t/020_upgrade.pl
-- compares the bodies):
--  * item V12 (time-unlimited follow-along supports) reads the rules engine's expectations
--    (ips.expectations) instead of its own reimplementation of the follow-along windows, so that
--    the contact rules and the fidelity scale share one definition;
--    ips.follow_along_from_records, which nothing reads any more, is dropped;
--  * instants are filtered as ranges on the timestamptz columns (at >= local midnight of the
--    first day, < local midnight of the day after the last), which the (staff_id, at) and
--    (episode_id, at) indexes serve, and V6 computes its per-specialist counts and the
--    job-search spans once (MATERIALIZED CTEs): the same results, about 18 times faster.

CREATE OR REPLACE FUNCTION ips.fidelity_computed(team_id bigint, period_start date, period_end date)
RETURNS TABLE(item text, score int, measure numeric, evidence jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t bigint := fidelity_computed.team_id;
    ps date := period_start;
    pe date := period_end;
    ndays int := period_end - period_start + 1;
    weeks numeric := (period_end - period_start + 1) / 7.0;
    fte numeric;
    nspec int;
    x record;
    ev jsonb;
    m numeric;
    sc int;
    has_compliance boolean := to_regprocedure('ips.rule_compliance(bigint,date,date)') IS NOT NULL;
    compliance jsonb;
    v12_from date;
    lo timestamptz;         -- the first instant of the period (local midnight of ps)
    hi timestamptz;         -- the first instant after it (local midnight of pe + 1)
    lo1 timestamptz;        -- local midnight of ps + 1
BEGIN
    PERFORM ips.fidelity_check_period(t, ps, pe);
    -- Instants are filtered as ranges on the timestamptz columns (at >= lo AND at < hi, the same
    -- rows as ips.local_date(at) BETWEEN ps AND pe), so that the (staff_id, at) and
    -- (episode_id, at) indexes serve them and ips.local_date is not called per row.
    lo := ips.local_midnight(ps);
    hi := ips.local_midnight(pe + 1);
    lo1 := ips.local_midnight(ps + 1);
    SELECT coalesce(sum(s.fte), 0), count(*) INTO fte, nspec
      FROM ips.staff s WHERE s.team_id = t AND s.role = 'specialist';
    IF has_compliance THEN
        EXECUTE 'SELECT coalesce(jsonb_object_agg(r.rule, to_jsonb(r) - ''rule''), ''{}'') FROM ips.rule_compliance($1, $2, $3) r'
           INTO compliance USING t, ps, pe;
    END IF;

    -- S1: client-days of active episodes (entry_on <= d < closed_on) / days / specialist FTE.
    SELECT coalesce(sum(a.days), 0) AS client_days,
           coalesce(jsonb_agg(jsonb_build_object('episode_id', a.episode_id, 'active_days', a.days) ORDER BY a.episode_id)
                    FILTER (WHERE a.days > 0), '[]') AS episodes
      INTO x
      FROM (SELECT e.episode_id,
                   least(coalesce(e.closed_on - 1, pe), pe) - greatest(e.entry_on, ps) + 1 AS days
              FROM ips.episode e
             WHERE e.team_id = t AND e.entry_on IS NOT NULL AND e.entry_on <= pe
               AND (e.closed_on IS NULL OR e.closed_on > ps)) a;
    m := CASE WHEN fte > 0 THEN x.client_days / ndays::numeric / fte END;
    ev := jsonb_build_object('client_days', x.client_days, 'days', ndays,
                             'mean_active_clients', ips.fidelity_round(x.client_days / ndays::numeric),
                             'specialist_fte', fte, 'episodes', x.episodes,
                             'per_specialist', (
        SELECT coalesce(jsonb_agg(jsonb_build_object('staff_id', s.staff_id, 'name', s.display_name, 'fte', s.fte,
                                                     'mean_active_clients', ips.fidelity_round(coalesce(c.days, 0) / ndays::numeric),
                                                     'clients_per_fte', ips.fidelity_round(coalesce(c.days, 0) / ndays::numeric / s.fte))
                                  ORDER BY s.staff_id), '[]')
          FROM ips.staff s
          LEFT JOIN LATERAL (
                SELECT sum(greatest(0, least(coalesce(e.closed_on - 1, pe), pe, coalesce(sa.to_on, pe))
                                       - greatest(e.entry_on, ps, sa.from_on) + 1)) AS days
                  FROM ips.specialist_assignment sa JOIN ips.episode e ON e.episode_id = sa.episode_id
                 WHERE sa.staff_id = s.staff_id AND e.entry_on IS NOT NULL) c ON true
         WHERE s.team_id = t AND s.role = 'specialist'));
    IF fte = 0 THEN
        ev := ev || jsonb_build_object('not_measurable', 'the team has no employment specialists');
    END IF;
    item := 'S1'; measure := ips.fidelity_round(m); score := ips.fidelity_anchor_score('S1', m); evidence := ev;
    RETURN NEXT;

    -- S2: FTE-weighted mean employment-services share of the specialists, %.
    m := CASE WHEN fte > 0 THEN (SELECT sum(s.fte * s.employment_share) FROM ips.staff s
                                  WHERE s.team_id = t AND s.role = 'specialist') / fte * 100 END;
    ev := jsonb_build_object('specialist_fte', fte, 'per_specialist', (
        SELECT coalesce(jsonb_agg(jsonb_build_object('staff_id', s.staff_id, 'name', s.display_name, 'fte', s.fte,
                                                     'employment_share', s.employment_share) ORDER BY s.staff_id), '[]')
          FROM ips.staff s WHERE s.team_id = t AND s.role = 'specialist'));
    IF fte = 0 THEN
        ev := ev || jsonb_build_object('not_measurable', 'the team has no employment specialists');
    END IF;
    item := 'S2'; measure := ips.fidelity_round(m); score := ips.fidelity_anchor_score('S2', m); evidence := ev;
    RETURN NEXT;

    -- V4: episodes entering in the period; days from entry to the first face-to-face employer
    -- contact about a competitive job on the client's behalf (by specialist or client), as known
    -- at the period end; an episode without one counts the days to its closure or the period end.
    SELECT count(*) AS n, avg(v.days) AS mean_days, count(*) FILTER (WHERE v.first_day IS NULL) AS without,
           coalesce(jsonb_agg(jsonb_build_object('episode_id', v.episode_id, 'entry_on', v.entry_on,
                                                 'first_employer_contact_on', v.first_day, 'days', v.days)
                              ORDER BY v.entry_on, v.episode_id), '[]') AS episodes
      INTO x
      FROM (SELECT e.episode_id, e.entry_on, f.first_day,
                   CASE WHEN f.first_day IS NOT NULL THEN greatest(f.first_day - e.entry_on, 0)
                        ELSE least(coalesce(e.closed_on, pe), pe) - e.entry_on END AS days
              FROM ips.episode e
              LEFT JOIN LATERAL (SELECT ips.local_date(min(c.at)) AS first_day FROM ips.employer_contact c
                                  WHERE c.episode_id = e.episode_id AND c.in_person AND c.competitive
                                    AND c.at < hi) f ON true
             WHERE e.team_id = t AND e.entry_on BETWEEN ps AND pe) v;
    m := x.mean_days;
    ev := jsonb_build_object('entrants', x.n, 'mean_days', ips.fidelity_round(m),
                             'without_employer_contact', x.without, 'episodes', x.episodes);
    IF x.n = 0 THEN
        ev := ev || jsonb_build_object('not_measurable', 'no episode entered in the period');
    END IF;
    IF has_compliance THEN
        ev := ev || jsonb_build_object('rule_compliance', compliance -> 'rapid_job_search');
    END IF;
    item := 'V4'; measure := ips.fidelity_round(m); score := ips.fidelity_anchor_score('V4', m); evidence := ev;
    RETURN NEXT;

    -- V6: face-to-face employer contacts by the team's specialists / (specialists x weeks);
    -- a caseload with 1 or 2 job seekers and >= 2 contacts per job seeker per week counts as
    -- meeting the score-5 threshold.  The per-specialist counts are computed once (MATERIALIZED:
    -- q.contacts is referenced in several expressions), and the episodes in job_search during the
    -- period once per call, from the state history as ips.episode_state_spans reads it, with its
    -- day conditions (from_day <= pe, to_day > ps) as instant ranges (at < hi, next at >= lo1).
    WITH seeking AS MATERIALIZED (
        SELECT DISTINCT sp.episode_id
          FROM (SELECT h.episode_id, h.to_state, h.at,
                       lead(h.at) OVER (PARTITION BY h.episode_id ORDER BY h.at, h.history_id) AS next_at
                  FROM ips.episode_state_history h
                  JOIN ips.episode e ON e.episode_id = h.episode_id
                 WHERE e.team_id = t) sp
         WHERE sp.to_state = 'job_search' AND sp.at < hi AND (sp.next_at IS NULL OR sp.next_at >= lo1)
    ), q AS MATERIALIZED (
        SELECT s.staff_id, s.display_name,
               (SELECT count(*) FROM ips.employer_contact c
                 WHERE c.staff_id = s.staff_id AND c.in_person AND NOT c.by_client
                   AND c.at >= lo AND c.at < hi) AS contacts,
               (SELECT count(DISTINCT sa.episode_id)
                  FROM ips.specialist_assignment sa
                 WHERE sa.episode_id IN (SELECT seeking.episode_id FROM seeking)
                   AND sa.staff_id = s.staff_id AND sa.from_on <= pe AND (sa.to_on IS NULL OR sa.to_on >= ps)) AS seekers
          FROM ips.staff s WHERE s.team_id = t AND s.role = 'specialist'
    )
    SELECT count(*) AS n, coalesce(sum(p.contacts), 0) AS contacts, avg(p.effective) AS mean_effective,
           coalesce(jsonb_agg(jsonb_build_object('staff_id', p.staff_id, 'name', p.display_name,
                                                 'contacts', p.contacts, 'per_week', ips.fidelity_round(p.rate),
                                                 'job_seekers', p.seekers, 'small_caseload_rule', p.small,
                                                 'counted_per_week', ips.fidelity_round(p.effective))
                              ORDER BY p.staff_id), '[]') AS per_specialist
      INTO x
      FROM (SELECT q.*, q.contacts / weeks AS rate,
                   q.seekers BETWEEN 1 AND 2 AND q.contacts / weeks / q.seekers >= 2 AS small,
                   CASE WHEN q.seekers BETWEEN 1 AND 2 AND q.contacts / weeks / q.seekers >= 2
                        THEN greatest(q.contacts / weeks,
                                      coalesce((SELECT a.threshold FROM ips.fidelity_anchor a
                                                 WHERE a.item = 'V6' AND a.score = 5), 0))
                        ELSE q.contacts / weeks END AS effective
              FROM q) p;
    m := x.mean_effective;
    ev := jsonb_build_object('contacts', x.contacts, 'specialists', x.n, 'weeks', ips.fidelity_round(weeks),
                             'per_specialist_per_week', ips.fidelity_round(CASE WHEN x.n > 0 THEN x.contacts / (x.n * weeks) END),
                             'per_specialist', x.per_specialist);
    IF x.n = 0 THEN
        ev := ev || jsonb_build_object('not_measurable', 'the team has no employment specialists');
    END IF;
    IF has_compliance THEN
        ev := ev || jsonb_build_object('rule_compliance', compliance -> 'specialist_employer_contacts');
    END IF;
    item := 'V6'; measure := ips.fidelity_round(m); score := ips.fidelity_anchor_score('V6', m); evidence := ev;
    RETURN NEXT;

    -- V8, V9, V10: over the jobs held at any time in the period.
    SELECT count(*) AS jobs,
           count(*) FILTER (WHERE j.occupation IS NOT NULL) AS classified,
           count(DISTINCT j.occupation) AS types,
           count(DISTINCT j.employer_id) AS employers,
           count(*) FILTER (WHERE ips.is_competitive(j.kind)) AS competitive,
           coalesce(jsonb_agg(jsonb_build_object('job_id', j.job_id, 'episode_id', j.episode_id, 'starts_on', j.starts_on,
                                                 'ends_on', j.ends_on, 'kind', j.kind, 'occupation', j.occupation,
                                                 'employer_id', j.employer_id) ORDER BY j.starts_on, j.job_id), '[]') AS list
      INTO x
      FROM ips.job j JOIN ips.episode e ON e.episode_id = j.episode_id
     WHERE e.team_id = t AND j.starts_on <= pe AND (j.ends_on IS NULL OR j.ends_on >= ps);
    m := CASE WHEN x.classified > 0 THEN x.types * 100.0 / x.classified END;
    ev := jsonb_build_object('distinct_job_types', x.types, 'jobs_with_job_type', x.classified,
                             'jobs_without_job_type', x.jobs - x.classified, 'jobs', x.list);
    IF x.classified = 0 THEN
        ev := ev || jsonb_build_object('not_measurable', 'no job with an occupation code held in the period');
    END IF;
    item := 'V8'; measure := ips.fidelity_round(m); score := ips.fidelity_anchor_score('V8', m); evidence := ev;
    RETURN NEXT;
    m := CASE WHEN x.jobs > 0 THEN x.employers * 100.0 / x.jobs END;
    ev := jsonb_build_object('distinct_employers', x.employers, 'job_count', x.jobs, 'jobs', x.list);
    IF x.jobs = 0 THEN
        ev := ev || jsonb_build_object('not_measurable', 'no job held in the period');
    END IF;
    item := 'V9'; measure := ips.fidelity_round(m); score := ips.fidelity_anchor_score('V9', m); evidence := ev;
    RETURN NEXT;
    m := CASE WHEN x.jobs > 0 THEN x.competitive * 100.0 / x.jobs END;
    ev := jsonb_build_object('competitive_jobs', x.competitive, 'job_count', x.jobs,
                             'competitive_kinds', ips.setting_value('competitive_job_kinds'), 'jobs', x.list);
    IF x.jobs = 0 THEN
        ev := ev || jsonb_build_object('not_measurable', 'no job held in the period');
    END IF;
    item := 'V10'; measure := ips.fidelity_round(m); score := ips.fidelity_anchor_score('V10', m); evidence := ev;
    RETURN NEXT;

    -- V12: the follow-along pattern per competitive job held in the period, read from the
    -- rules engine (ips.expectations), so that V12 and the contact rules share one definition:
    -- the parts are the expectations of the rules pre_start_contact, post_start_contact,
    -- first_month_weekly (weeks), follow_along_monthly (months, block 1 = the first month) and
    -- job_loss_contact of the job, with the numbers of ips.rule.  A part is kept only when met
    -- on time (met_late: the contact came after the window, so the pattern was not kept there;
    -- open: no contact by the last day of the window, which is the period end).  Every
    -- expectation of the job counts, from its start to the period end: the engine is asked for
    -- those due from the earliest start of the jobs (or period_start) to period_end, as known on
    -- period_end, so a job that started before the period keeps its whole pattern.
    v12_from := least(ps, (SELECT min(j.starts_on)
                             FROM ips.job j JOIN ips.episode ep ON ep.episode_id = j.episode_id
                            WHERE ep.team_id = t AND j.starts_on <= pe AND (j.ends_on IS NULL OR j.ends_on >= ps)
                              AND ips.is_competitive(j.kind)));
    WITH jobs AS (
        SELECT j.job_id, j.episode_id, j.starts_on, j.ends_on
          FROM ips.job j JOIN ips.episode ep ON ep.episode_id = j.episode_id
         WHERE ep.team_id = t AND j.starts_on <= pe AND (j.ends_on IS NULL OR j.ends_on >= ps)
           AND ips.is_competitive(j.kind)
    ), ex AS (
        SELECT e.rule, e.job_id, e.met_on, e.status = 'met_on_time' AS kept, e.status,
               row_number() OVER (PARTITION BY e.job_id, e.rule ORDER BY e.due_on) AS block
          FROM ips.expectations(t, v12_from, pe) e
         WHERE e.rule IN ('pre_start_contact', 'post_start_contact', 'first_month_weekly',
                          'follow_along_monthly', 'job_loss_contact')
           AND e.job_id IN (SELECT jobs.job_id FROM jobs)
    ), f AS (
        SELECT j.job_id, j.episode_id, j.starts_on, j.ends_on,
               coalesce(min(ex.status) FILTER (WHERE ex.rule = 'pre_start_contact'), 'not_due') AS pre_start,
               coalesce(min(ex.status) FILTER (WHERE ex.rule = 'post_start_contact'), 'not_due') AS post_start,
               count(ex.rule) FILTER (WHERE ex.rule = 'first_month_weekly')::int AS weeks_due,
               count(ex.rule) FILTER (WHERE ex.rule = 'first_month_weekly' AND ex.kept)::int AS weeks_kept,
               count(ex.rule) FILTER (WHERE ex.rule = 'follow_along_monthly')::int AS months_due,
               count(ex.rule) FILTER (WHERE ex.rule = 'follow_along_monthly' AND ex.kept)::int AS months_kept,
               coalesce(array_agg(ex.block ORDER BY ex.block)
                        FILTER (WHERE ex.rule = 'follow_along_monthly' AND NOT ex.kept), '{}') AS months_not_kept,
               coalesce(min(ex.status) FILTER (WHERE ex.rule = 'job_loss_contact'), 'not_due') AS job_loss,
               count(ex.rule) FILTER (WHERE ex.rule = 'follow_along_monthly' AND ex.block = 5) > 0 AS followed_4_months_due,
               count(ex.rule) FILTER (WHERE ex.rule = 'follow_along_monthly' AND ex.block BETWEEN 2 AND 5 AND ex.kept) = 4
                   AS followed_4_months,
               count(ex.rule) FILTER (WHERE ex.rule = 'follow_along_monthly' AND ex.block >= 2 AND ex.met_on IS NOT NULL) > 0
                   AS contact_after_month_1,
               count(ex.rule) FILTER (WHERE NOT ex.kept) = 0 AS full_pattern,
               count(ex.rule) FILTER (WHERE NOT ex.kept AND (ex.rule = 'first_month_weekly'
                                      OR (ex.rule = 'follow_along_monthly' AND ex.block <= 5))) > 0 AS broken_short
          FROM jobs j LEFT JOIN ex ON ex.job_id = j.job_id
         GROUP BY j.job_id, j.episode_id, j.starts_on, j.ends_on
    )
    SELECT count(*) AS jobs,
           count(*) FILTER (WHERE f.full_pattern) AS full_jobs,
           count(*) FILTER (WHERE f.broken_short) AS broken_short,
           count(*) FILTER (WHERE f.followed_4_months_due) AS due4,
           count(*) FILTER (WHERE f.followed_4_months) AS got4,
           count(*) FILTER (WHERE f.contact_after_month_1) AS after1,
           coalesce(jsonb_agg(to_jsonb(f) - 'broken_short' ORDER BY f.starts_on, f.job_id), '[]') AS list
      INTO x
      FROM f;
    -- Score: 5 every job kept every part due; 4 no job missed a week or one of months 1-5;
    -- otherwise, over the jobs whose month 5 is due: 3 when at least half (the anchor's threshold)
    -- kept months 2-5, 2 when fewer did but some job had a contact in a month after the first
    -- (on time or late), 1 when none had; not measurable when no job's month 5 is due yet.
    m := CASE WHEN x.due4 > 0 THEN x.got4 * 100.0 / x.due4 END;
    sc := CASE WHEN x.jobs = 0 THEN NULL
               WHEN x.full_jobs = x.jobs THEN 5
               WHEN x.broken_short = 0 THEN 4
               WHEN x.due4 = 0 THEN NULL
               WHEN m >= coalesce((SELECT a.threshold FROM ips.fidelity_anchor a WHERE a.item = 'V12' AND a.score = 3), 50) THEN 3
               WHEN x.after1 > 0 THEN 2
               ELSE 1 END;
    ev := jsonb_build_object('job_count', x.jobs, 'full_pattern', x.full_jobs,
                             'jobs_due_4_months', x.due4, 'followed_4_months', x.got4,
                             'contact_after_month_1', x.after1, 'source', 'ips.expectations',
                             'expectations_from', v12_from, 'kept', 'status met_on_time (met_late, missed, open: not kept)',
                             'jobs', x.list);
    IF x.jobs = 0 THEN
        ev := ev || jsonb_build_object('not_measurable', 'no competitive job held in the period');
    ELSIF sc IS NULL THEN
        ev := ev || jsonb_build_object('not_measurable', 'the pattern is broken but no job has been held 5 months yet');
    END IF;
    IF has_compliance THEN
        ev := ev || jsonb_build_object('rule_compliance', jsonb_build_object(
              'pre_start_contact', compliance -> 'pre_start_contact', 'post_start_contact', compliance -> 'post_start_contact',
              'first_month_weekly', compliance -> 'first_month_weekly', 'follow_along_monthly', compliance -> 'follow_along_monthly',
              'job_loss_contact', compliance -> 'job_loss_contact'));
    END IF;
    item := 'V12'; measure := ips.fidelity_round(m); score := sc; evidence := ev;
    RETURN NEXT;

    -- V13: community minutes / scheduled minutes (weekly hours x 60 x weeks), %.
    SELECT coalesce(sum(p.minutes), 0) AS minutes, coalesce(sum(p.scheduled), 0) AS scheduled,
           coalesce(sum(p.no_minutes), 0) AS no_minutes,
           coalesce(jsonb_agg(jsonb_build_object('staff_id', p.staff_id, 'name', p.display_name,
                                                 'community_minutes', p.minutes, 'scheduled_minutes', ips.fidelity_round(p.scheduled),
                                                 'contacts_without_minutes', p.no_minutes,
                                                 'community_pct', ips.fidelity_round(p.minutes * 100.0 / p.scheduled))
                              ORDER BY p.staff_id), '[]') AS per_specialist
      INTO x
      FROM (SELECT s.staff_id, s.display_name, s.weekly_hours * 60 * weeks AS scheduled,
                   (SELECT coalesce(sum(c.minutes), 0) FROM ips.contact c
                     WHERE c.staff_id = s.staff_id AND c.setting = 'community'
                       AND c.at >= lo AND c.at < hi) AS minutes,
                   (SELECT count(*) FROM ips.contact c
                     WHERE c.staff_id = s.staff_id AND c.minutes IS NULL
                       AND c.at >= lo AND c.at < hi) AS no_minutes
              FROM ips.staff s WHERE s.team_id = t AND s.role = 'specialist') p;
    m := CASE WHEN x.scheduled > 0 THEN x.minutes * 100.0 / x.scheduled END;
    ev := jsonb_build_object('community_minutes', x.minutes, 'scheduled_minutes', ips.fidelity_round(x.scheduled),
                             'contacts_without_minutes', x.no_minutes, 'per_specialist', x.per_specialist);
    IF x.scheduled = 0 THEN
        ev := ev || jsonb_build_object('not_measurable', 'the team has no employment specialists');
    END IF;
    item := 'V13'; measure := ips.fidelity_round(m); score := ips.fidelity_anchor_score('V13', m); evidence := ev;
    RETURN NEXT;

    -- Evidence for rated items.  O2: care-team meeting attendance, 7-day blocks from the start.
    SELECT coalesce(avg(p.blocks), 0) AS mean_blocks, ceil(ndays / 7.0)::int AS blocks,
           coalesce(jsonb_agg(jsonb_build_object('staff_id', p.staff_id, 'name', p.display_name,
                                                 'meetings', p.meetings, 'weeks_attended', p.blocks) ORDER BY p.staff_id), '[]') AS per_specialist
      INTO x
      FROM (SELECT s.staff_id, s.display_name,
                   (SELECT count(*) FROM ips.team_meeting m WHERE m.staff_id = s.staff_id AND m.met_on BETWEEN ps AND pe) AS meetings,
                   (SELECT count(DISTINCT (m.met_on - ps) / 7) FROM ips.team_meeting m
                     WHERE m.staff_id = s.staff_id AND m.met_on BETWEEN ps AND pe) AS blocks
              FROM ips.staff s WHERE s.team_id = t AND s.role = 'specialist') p;
    item := 'O2'; score := NULL;
    measure := CASE WHEN x.blocks > 0 THEN ips.fidelity_round(x.mean_blocks * 100.0 / x.blocks) END;
    evidence := jsonb_build_object('weeks', x.blocks, 'mean_weeks_attended', ips.fidelity_round(x.mean_blocks),
                                   'per_specialist', x.per_specialist, 'measure', '% of weeks with a care team meeting attended');
    RETURN NEXT;

    -- O6: referrals received in the period and those closed without ever engaging.
    SELECT count(*) AS referrals,
           count(*) FILTER (WHERE e.closed_on IS NOT NULL AND e.entry_on IS NULL) AS closed_before,
           coalesce(jsonb_agg(jsonb_build_object('episode_id', e.episode_id, 'referred_on', e.referred_on,
                                                 'closed_on', e.closed_on, 'close_reason', e.close_reason) ORDER BY e.episode_id)
                    FILTER (WHERE e.closed_on IS NOT NULL AND e.entry_on IS NULL), '[]') AS list
      INTO x
      FROM ips.episode e WHERE e.team_id = t AND e.referred_on BETWEEN ps AND pe;
    item := 'O6'; score := NULL;
    measure := CASE WHEN x.referrals > 0 THEN ips.fidelity_round(x.closed_before * 100.0 / x.referrals) END;
    evidence := jsonb_build_object('referrals', x.referrals, 'closed_before_engagement', x.closed_before,
                                   'by_reason', (SELECT coalesce(jsonb_object_agg(r.reason, r.n), '{}')
                                                   FROM (SELECT e.close_reason AS reason, count(*) AS n FROM ips.episode e
                                                          WHERE e.team_id = t AND e.referred_on BETWEEN ps AND pe
                                                            AND e.closed_on IS NOT NULL AND e.entry_on IS NULL
                                                          GROUP BY e.close_reason) r),
                                   'episodes', x.list, 'measure', '% of referrals closed before engagement');
    RETURN NEXT;

    -- V1: job starts in the period preceded (or accompanied) by benefits counselling in the episode.
    SELECT count(*) AS starts, count(*) FILTER (WHERE v.counselled) AS counselled,
           coalesce(jsonb_agg(jsonb_build_object('job_id', v.job_id, 'episode_id', v.episode_id, 'starts_on', v.starts_on,
                                                 'benefits_counselling_before', v.counselled) ORDER BY v.starts_on, v.job_id), '[]') AS list
      INTO x
      FROM (SELECT j.job_id, j.episode_id, j.starts_on,
                   EXISTS (SELECT 1 FROM ips.contact c WHERE c.episode_id = j.episode_id AND c.kind = 'benefits_counseling'
                              AND c.at < ips.local_midnight(j.starts_on + 1)) AS counselled
              FROM ips.job j JOIN ips.episode e ON e.episode_id = j.episode_id
             WHERE e.team_id = t AND j.starts_on BETWEEN ps AND pe) v;
    item := 'V1'; score := NULL;
    measure := CASE WHEN x.starts > 0 THEN ips.fidelity_round(x.counselled * 100.0 / x.starts) END;
    evidence := jsonb_build_object('job_starts', x.starts, 'after_benefits_counselling', x.counselled, 'jobs', x.list,
                                   'measure', '% of job starts after benefits counselling');
    RETURN NEXT;

    -- V14: closures as disengaged in the period and the outreach attempts before each.
    SELECT count(*) AS closures,
           count(*) FILTER (WHERE v.attempts >= coalesce(ips.setting_value('disengaged_min_outreach_attempts')::int, 3)
                              AND v.attempt_days >= coalesce(ips.setting_value('disengaged_min_outreach_days')::int, 2)) AS enough,
           coalesce(jsonb_agg(jsonb_build_object('episode_id', v.episode_id, 'closed_on', v.closed_on,
                                                 'outreach_attempts', v.attempts, 'outreach_days', v.attempt_days)
                              ORDER BY v.closed_on, v.episode_id), '[]') AS list
      INTO x
      FROM (SELECT e.episode_id, e.closed_on, count(c.contact_id) AS attempts,
                   count(DISTINCT ips.local_date(c.at)) AS attempt_days
              FROM ips.episode e
              LEFT JOIN ips.contact c ON c.episode_id = e.episode_id AND c.kind = 'outreach_attempt'
                   AND c.at >= ips.local_midnight(e.closed_on - coalesce(ips.setting_value('disengaged_outreach_window_days')::int, 60))
                   AND c.at < ips.local_midnight(e.closed_on + 1)
             WHERE e.team_id = t AND e.close_reason = 'disengaged' AND e.closed_on BETWEEN ps AND pe
             GROUP BY e.episode_id, e.closed_on) v;
    item := 'V14'; score := NULL;
    measure := CASE WHEN x.closures > 0 THEN ips.fidelity_round(x.enough * 100.0 / x.closures) END;
    evidence := jsonb_build_object('disengaged_closures', x.closures, 'after_enough_outreach', x.enough, 'episodes', x.list,
                                   'measure', '% of disengaged closures after the required outreach');
    RETURN NEXT;
END $$;

COMMENT ON FUNCTION ips.fidelity_computed(bigint, date, date) IS
    'The fidelity items computed from the records (S1 S2 V4 V6 V8 V9 V10 V12 V13) with measure, score and evidence, and the record evidence of O2 O6 V1 V14.';

DROP FUNCTION ips.follow_along_from_records(bigint, date, date);
