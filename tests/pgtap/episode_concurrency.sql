-- One open episode per client, also when two sessions refer the same client
-- at the same moment.  Two real connections (dblink): the first refers and
-- holds its transaction open; the second refers the same client and waits on
-- the unique index; the first commits; the second must fail with 23505.
-- (The rows committed here stay in this test's own database.)
BEGIN;
SELECT plan(6);

SELECT format('dbname=%s host=%s port=%s user=%s', current_database(),
              split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user) AS conninfo \gset
\o /dev/null
SELECT dblink_connect('a', :'conninfo');
SELECT dblink_connect('b', :'conninfo');
\o

-- set-up, committed so that both sessions see it
\o /dev/null
SELECT * FROM dblink('a', $$SELECT ips.add_team('Race IPS', 'Kainuu')$$) AS r(id bigint);
SELECT * FROM dblink('a', $$SELECT ips.add_client('race-client-1')$$) AS r(id bigint);
\o

\o /dev/null
SELECT dblink_exec('a', 'BEGIN');
\o
SELECT is((SELECT n FROM dblink('a', $$SELECT count(*) FROM (SELECT ips.refer(c.client_id, t.team_id, '2025-03-01', 'race a')
                                         FROM ips.client c, ips.team t WHERE c.host_ref = 'race-client-1' AND t.name = 'Race IPS') x$$)
                     AS r(n bigint)), 1::bigint, 'session a refers the client (not yet committed)');
SELECT is(dblink_send_query('b', $$SELECT ips.refer(c.client_id, t.team_id, '2025-03-02', 'race b')
                                    FROM ips.client c, ips.team t WHERE c.host_ref = 'race-client-1' AND t.name = 'Race IPS'$$),
          1, 'session b refers the same client at the same time');
SELECT pg_sleep(0.3);
SELECT is(dblink_is_busy('b'), 1, 'session b waits for session a');
\o /dev/null
SELECT dblink_exec('a', 'COMMIT');
\o
-- collect b's outcome: its error message is what we check
CREATE TEMP TABLE outcome AS
SELECT dblink_error_message('b') AS msg FROM (SELECT * FROM dblink_get_result('b', false) AS r(e bigint)) x
 RIGHT JOIN (SELECT 1) y ON true;
SELECT alike((SELECT msg FROM outcome), '%has an open episode already%',
            'session b fails: the client has an open episode already');
SELECT is((SELECT n FROM dblink('a', $$SELECT count(*) FROM ips.episode e JOIN ips.client c USING (client_id)
                                        WHERE c.host_ref = 'race-client-1' AND e.state <> 'closed'$$) AS r(n bigint)),
          1::bigint, 'exactly one open episode exists');
SELECT is((SELECT s FROM dblink('a', $$SELECT e.referral_source FROM ips.episode e JOIN ips.client c USING (client_id)
                                        WHERE c.host_ref = 'race-client-1'$$) AS r(s text)),
          'race a', 'it is the first session''s episode');

SELECT dblink_disconnect('a');
SELECT dblink_disconnect('b');
SELECT * FROM finish();
ROLLBACK;
