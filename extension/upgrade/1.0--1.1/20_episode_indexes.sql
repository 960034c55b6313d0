-- 1.0 -> 1.1: no index of ips.episode reads state any more, so a change of state among the
-- open states is a HOT update.  "Open" is closed_on IS NULL, which a new check ties to state.
ALTER TABLE ips.episode
    ADD CONSTRAINT episode_open_iff_no_closed_on CHECK ((state = 'closed') = (closed_on IS NOT NULL));
DROP INDEX ips.episode_one_open_per_client;
CREATE UNIQUE INDEX episode_one_open_per_client ON ips.episode (client_id) WHERE closed_on IS NULL;
DROP INDEX ips.episode_team_state_idx;
CREATE INDEX episode_team_idx ON ips.episode (team_id);
DROP INDEX ips.episode_specialist_idx;
CREATE INDEX episode_specialist_idx ON ips.episode (specialist_id);
