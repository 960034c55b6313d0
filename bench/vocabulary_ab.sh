#!/usr/bin/env bash
# The cost of the vocabulary's foreign key on ips.contact (issue 16, item 12): the
# composite key (kind, mode, setting) -> ips.contact_form of 1.2 against 1.1's three
# CHECK lists, in one throw-away cluster, alternating the two (the table is switched
# with ALTER TABLE between runs).  Backend CPU time is compared, as wall time is too
# noisy on a shared machine:
#   - the COPY of up to 100 000 contacts of the region (rolled back),
#   - 5 000 single-row INSERT transactions,
# then 8 writers of single-row inserts (pgbench, fsync = off): tps, the MultiXacts
# they create (every writer key-share locks the same ips.contact_form row), and the
# wait events sampled meanwhile.
#
#   bench/vocabulary_ab.sh            SCALE=5000 clients, ROUNDS=4, SECS=8
set -uo pipefail
. "$(dirname "$0")/../scripts/cluster.sh"
set -e
ips_setup
cd "$IPS_TOP"
export PGDATABASE=vocab_ab
psql -qX -d postgres -c "CREATE DATABASE vocab_ab" >/dev/null
q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION ips" >/dev/null
ipsctl generate --clients "${SCALE:-5000}" --seed 1 --start 2026-11-01 | ipsctl import -q -
q -c "VACUUM ANALYZE" >/dev/null
W=$IPS_WORK/ab; mkdir -p "$W"; chmod 777 "$W"
q -c "\copy (SELECT episode_id, client_id, staff_id, at, kind, mode, setting, minutes FROM ips.contact ORDER BY contact_id LIMIT 100000) TO '$W/c.copy'"
n_copy=$(wc -l < "$W/c.copy")
q <<SQL >/dev/null
CREATE TABLE bench_target AS
SELECT row_number() OVER (ORDER BY e.episode_id)::int AS n, e.episode_id, e.client_id, e.specialist_id AS staff_id,
       ips.local_midnight(date '2026-11-01' - 1) + interval '12 hours' AS at
  FROM ips.episode e WHERE e.state <> 'closed' AND e.specialist_id IS NOT NULL AND e.referred_on < date '2026-11-01' - 1;
ALTER TABLE bench_target ADD PRIMARY KEY (n);
ANALYZE bench_target;
SQL
n_target=$(q -c "SELECT count(*) FROM bench_target")
to_check() {
q <<'SQL' >/dev/null
ALTER TABLE ips.contact DROP CONSTRAINT contact_form_fkey,
  ADD CONSTRAINT contact_kind_check CHECK (kind IN ('client', 'employer_for_client', 'care_team', 'benefits_counseling', 'outreach_attempt', 'family')),
  ADD CONSTRAINT contact_mode_check CHECK (mode IN ('in_person', 'phone', 'video', 'message')),
  ADD CONSTRAINT contact_setting_check CHECK (setting IN ('community', 'office'));
SQL
}
to_fk() {
q <<'SQL' >/dev/null
ALTER TABLE ips.contact DROP CONSTRAINT contact_kind_check, DROP CONSTRAINT contact_mode_check, DROP CONSTRAINT contact_setting_check,
  ADD CONSTRAINT contact_form_fkey FOREIGN KEY (kind, mode, setting) REFERENCES ips.contact_form;
SQL
}
cpu_sql="SELECT 'cpu', split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ' ', 14)::int + split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ' ', 15)::int"
ticks_ms=$(( 1000 / $(getconf CLK_TCK) ))
copy_cpu() {	# backend CPU ms of one COPY of the file, rolled back
	printf '%s\n' "$cpu_sql;" 'BEGIN;' "\\copy ips.contact (episode_id, client_id, staff_id, at, kind, mode, setting, minutes) FROM '$W/c.copy'" 'ROLLBACK;' "$cpu_sql;" \
	| psql -qXAt -v ON_ERROR_STOP=1 | awk -F'|' -v t="$ticks_ms" '/^cpu/ {v[n++] = $2} END {print (v[1] - v[0]) * t}'
}
awk -v nt="$n_target" 'BEGIN {srand(7); for (i = 0; i < 5000; i++)
	printf "INSERT INTO ips.contact (episode_id, client_id, staff_id, at, kind, mode, setting, minutes) SELECT t.episode_id, t.client_id, t.staff_id, t.at, \x27client\x27, \x27in_person\x27, \x27community\x27, 30 FROM bench_target t WHERE t.n = %d;\n", 1 + int(rand() * nt)}' > "$W/ins.sql"
ins_cpu() {	# backend CPU ms of 5 000 single-row INSERT transactions
	{ echo "$cpu_sql;"; echo '\o /dev/null'; cat "$W/ins.sql"; echo '\o'; echo "$cpu_sql;"; } \
	| psql -qXAt -v ON_ERROR_STOP=1 | awk -F'|' -v t="$ticks_ms" '/^cpu/ {v[n++] = $2} END {print (v[1] - v[0]) * t}'
}
tps8() {
	pgbench -n -M prepared -c 8 -j 2 -T "${SECS:-8}" -D ntarget="$n_target" -f bench/insert_ips_contact.pgbench 2>"$W/pgbench.err" \
		| sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | xargs printf '%.0f'
}
mx() { q -c "SELECT mxid_age(datminmxid) FROM pg_database WHERE datname = current_database()"; }
waits() {	# wait events of the pgbench backends, sampled 60 times
	for _ in $(seq 1 60); do
		q -c "SELECT coalesce(wait_event_type || ':' || wait_event, 'cpu') FROM pg_stat_activity WHERE application_name = 'pgbench' AND state = 'active'"
		sleep 0.1
	done | sort | uniq -c | sort -rn | head -6 | awk '{printf "%s %s; ", $2, $1}'
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $n_copy contacts to COPY, $n_target episodes to insert into"
echo "variant round | COPY cpu ms | 5000 INSERTs cpu ms | 8 writers tps | MultiXacts | waits sampled"
for round in $(seq 1 "${ROUNDS:-4}"); do
	if [ $((round % 2)) = 1 ]; then order="fk check"; else order="check fk"; fi
	for v in $order; do
		[ "$v" = check ] && to_check
		c=$(copy_cpu); i=$(ins_cpu)
		m0=$(mx); ( sleep 2; waits > "$W/waits" ) & wp=$!; t8=$(tps8); wait $wp; m1=$(mx)
		echo "$v $round | $c | $i | $t8 | $((m1 - m0)) | $(cat "$W/waits")"
		[ "$v" = check ] && to_fk
	done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
