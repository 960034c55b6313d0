-- The 1.2 install script states each rule of ips.episode once (issue 15): the
-- 1.0 check "closed iff closed_on and close_reason" overlapped 1.1's
-- episode_open_iff_no_closed_on and is now "a closed episode has a reason";
-- the rules themselves are unchanged (direct writes, guard triggers off).
BEGIN;
SELECT plan(8);

SELECT ips.add_team('Checks team', 'Pohjanmaa') AS team \gset
SELECT ips.add_client('checks-1', 1980) AS c1 \gset
SELECT ips.refer(:c1, :team, '2026-01-05') AS e1 \gset

SELECT is((SELECT count(*)::int FROM pg_constraint
            WHERE conrelid = 'ips.episode'::regclass AND contype = 'c' AND conname ~ '^episode_check'),
          0, 'every table-wide check of ips.episode has a name (none left unnamed from 1.0)');
SELECT is((SELECT count(*)::int FROM pg_constraint
            WHERE conrelid = 'ips.episode'::regclass AND contype = 'c'
              AND pg_get_constraintdef(oid) ~ 'closed_on' AND pg_get_constraintdef(oid) ~ 'close_reason'),
          0, 'no check of ips.episode says again what episode_open_iff_no_closed_on says');
SELECT has_check('ips', 'episode', 'ips.episode has its checks');

-- the rules, by direct writes with the guard triggers off (ips.restoring)
SET LOCAL ips.restoring = on;
SELECT throws_ok(format($$UPDATE ips.episode SET state = 'closed', closed_on = '2026-02-01' WHERE episode_id = %s$$, :e1),
                 '23514', NULL, 'a closed episode needs a reason');
SELECT throws_ok(format($$UPDATE ips.episode SET state = 'closed', close_reason = 'moved' WHERE episode_id = %s$$, :e1),
                 '23514', NULL, 'a closed episode needs closed_on');
SELECT throws_ok(format($$UPDATE ips.episode SET closed_on = '2026-02-01', close_reason = 'moved' WHERE episode_id = %s$$, :e1),
                 '23514', NULL, 'an open episode has no closed_on');
SELECT throws_ok(format($$UPDATE ips.episode SET state = 'on_hold' WHERE episode_id = %s$$, :e1),
                 '23514', NULL, 'an episode on hold says which state it holds');
SELECT lives_ok(format($$UPDATE ips.episode SET state = 'closed', closed_on = '2026-02-01', close_reason = 'moved' WHERE episode_id = %s$$, :e1),
                'closed with closed_on and a reason is accepted');

SELECT * FROM finish();
ROLLBACK;
