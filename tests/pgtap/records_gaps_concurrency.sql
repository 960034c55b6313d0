-- Ending a staff member while another session records a contact in their name: two real
-- connections (dblink).  Session a inserts a contact of Ville dated 2025-03-20 and holds its
-- transaction open (the foreign key holds Ville's staff row); session b ends Ville from
-- 2025-03-15 and must wait (FOR UPDATE in ips.staff_guard) until a commits, then see a's
-- contact and refuse the end (55000).  Ending from 2025-03-21, after the contact, then works.
-- (The rows committed here stay in this test's own database.)
BEGIN;
SELECT plan(5);

SELECT format('dbname=%s host=%s port=%s user=%s', current_database(),
              split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user) AS conninfo \gset
\o /dev/null
SELECT dblink_connect('a', :'conninfo');
SELECT dblink_connect('b', :'conninfo');
-- set-up, committed so that both sessions see it
SELECT * FROM dblink('a', $$SELECT ips.add_team('Race staff IPS', 'Kainuu')$$) AS r(id bigint);
SELECT * FROM dblink('a', $$SELECT ips.add_staff(t.team_id, 'Ville', 'specialist') FROM ips.team t WHERE t.name = 'Race staff IPS'$$) AS r(id bigint);
SELECT * FROM dblink('a', $$SELECT ips.add_client('race-staff-client-1')$$) AS r(id bigint);
SELECT * FROM dblink('a', $$SELECT ips.refer(c.client_id, t.team_id, '2025-03-01') FROM ips.client c, ips.team t
                             WHERE c.host_ref = 'race-staff-client-1' AND t.name = 'Race staff IPS'$$) AS r(id bigint);
SELECT dblink_exec('a', 'BEGIN');
\o
SELECT is((SELECT n FROM dblink('a', $$WITH x AS (INSERT INTO ips.contact (episode_id, staff_id, at, kind)
                                         SELECT e.episode_id, s.staff_id, '2025-03-20 10:00+02', 'client'
                                           FROM ips.episode e JOIN ips.staff s ON s.team_id = e.team_id
                                          WHERE s.display_name = 'Ville' AND e.referral_source IS NULL
                                            AND e.team_id = (SELECT team_id FROM ips.team WHERE name = 'Race staff IPS')
                                         RETURNING 1) SELECT count(*) FROM x$$) AS r(n bigint)),
          1::bigint, 'session a records a contact of Ville on 03-20 (not yet committed)');
SELECT is(dblink_send_query('b', $$SELECT ips.end_staff(s.staff_id, '2025-03-15') FROM ips.staff s JOIN ips.team t USING (team_id)
                                    WHERE s.display_name = 'Ville' AND t.name = 'Race staff IPS'$$),
          1, 'session b ends Ville from 03-15 at the same time');
SELECT pg_sleep(0.3);
SELECT is(dblink_is_busy('b'), 1, 'session b waits for session a');
\o /dev/null
SELECT dblink_exec('a', 'COMMIT');
\o
CREATE TEMP TABLE outcome AS
SELECT dblink_error_message('b') AS msg FROM (SELECT * FROM dblink_get_result('b', false) AS r(e text)) x
 RIGHT JOIN (SELECT 1) y ON true;
SELECT alike((SELECT msg FROM outcome), '%has 1 contact(s), employer contact(s) or team meeting(s) outside%',
             'session b then sees the contact and refuses the end');
SELECT is((SELECT n FROM dblink('a', $$SELECT count(*) FROM (SELECT ips.end_staff(s.staff_id, '2025-03-21') FROM ips.staff s JOIN ips.team t USING (team_id)
                                        WHERE s.display_name = 'Ville' AND t.name = 'Race staff IPS') x$$) AS r(n bigint)),
          1::bigint, 'an end after the contact is kept');

SELECT dblink_disconnect('a');
SELECT dblink_disconnect('b');
SELECT * FROM finish();
ROLLBACK;
