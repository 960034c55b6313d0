#!/usr/bin/env bash
# Reads per second of ips.client_record() (docs/access-log.md): build, start a
# throw-away cluster, make one team with a specialist (a login role) and 50
# clients with an episode, a job and 20 contacts each, then run pgbench with
# 1 and 4 clients, each read by the specialist of a random client, first with
# fsync = off (as make test), then with fsync = on (as production).
#
#   bench/client_record.sh            BENCH_SECONDS=N per run (default 10)
set -uo pipefail
. "$(dirname "$0")/../scripts/cluster.sh"
set -e
ips_setup
secs=${BENCH_SECONDS:-10}
export PGDATABASE=ips_read
psql -qX -d postgres -c "CREATE DATABASE ips_read" >/dev/null
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION ips;
SET TimeZone = 'Europe/Helsinki';
DO $$ BEGIN CREATE ROLE bench_spec LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT ips_specialist TO bench_spec;
SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa');
SELECT ips.add_staff(1, 'Anna', 'specialist', db_role => 'bench_spec');
SELECT ips.add_employer('Oy Testi Ab', '0112038-9');
DO $$
DECLARE
    c bigint; e bigint;
BEGIN
    FOR i IN 1 .. 50 LOOP
        c := ips.add_client('H-' || i, 1980 + i % 20);
        PERFORM ips.start_care_relationship(c, 'Psykiatria Vaasa', '2024-01-02');
        e := ips.refer(c, 1, '2024-01-10');
        PERFORM ips.assign_specialist(e, 1, '2024-01-11');
        PERFORM ips.transition(e, 'engaged', '2024-01-15 10:00');
        FOR k IN 1 .. 20 LOOP
            PERFORM ips.record_contact(e, 1, timestamptz '2024-01-16 10:00' + k * interval '1 day', 'client');
        END LOOP;
        PERFORM ips.start_job(e, 1, '2024-03-01');
    END LOOP;
END $$;
SQL
script="$IPS_WORK/read.pgbench"
printf '%s\n' '\set c random(1, 50)' "SELECT ips.client_record(:c, 'bench read');" >"$script"
chmod a+r "$script"
for fsync in off on; do
	psql -qXAt -c "ALTER SYSTEM SET fsync = $fsync" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 1
	for c in 1 4; do
		tps=$(pgbench -n -c "$c" -j "$c" -T "$secs" -f "$script" -U bench_spec 2>/dev/null \
			| sed -n 's/^tps = \([0-9.]*\).*/\1/p')
		logged=$(psql -qXAt -c "SELECT count(*) FROM ips.access_log WHERE purpose = 'bench read'")
		printf 'client_record, fsync = %s, %d reader(s): %s reads/s (access-log entries so far: %s)\n' \
			"$fsync" "$c" "$tps" "$logged"
	done
done
echo "max_worker_processes = $(psql -qXAt -c 'SHOW max_worker_processes'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
