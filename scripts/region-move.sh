#!/usr/bin/env bash
# Moving a region to a new PostgreSQL major, as a DBA does it (docs/versions.md),
# in two halves run on two machines (make test-matrix runs them in the Debian 12
# and Debian 13/sid chroots):
#
#   scripts/region-move.sh dump DIR      on the old machine: ips 1.1 as released
#       (commit IPS_1_1 of this repository) built for this machine's PostgreSQL,
#       a synthetic region (ipsctl generate --clients 100 --seed 42 | ipsctl
#       import, a few client_record reads), its figures and logs written to
#       DIR/before.txt, and DIR/globals.sql (pg_dumpall --globals-only) and
#       DIR/region.dump (pg_dump -Fc); then the same region updated in place to
#       this checkout's version, its figures in DIR/updated.txt;
#   scripts/region-move.sh restore DIR   on the new machine: this checkout (1.2)
#       installed, the roles, CREATE EXTENSION ips VERSION '1.1', pg_restore
#       with ips.restoring, ALTER EXTENSION ips UPDATE; the figures and logs
#       again: the figures compared with DIR/updated.txt (what the new version
#       computes from the same records on the old major), the logs and their
#       verification with DIR/before.txt.  Prints TAP lines (ok / not ok) and
#       exits non-zero on a difference.
set -uo pipefail
IPS_1_1=${IPS_1_1:-0ce31abbcb5a6af6fabf9a8dbc9d155a8e099bbd}	# the last commit of 1.1
mode=${1:-}; dir=${2:-}
[ -n "$mode" ] && [ -n "$dir" ] || { echo "usage: $0 dump|restore DIR" >&2; exit 2; }
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
. "$(dirname "$0")/cluster.sh"
set -e
IPS_WORK=$(mktemp -d /tmp/ips-move.XXXXXX)
trap ips_cluster_stop EXIT
trap 'exit 130' INT TERM
q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }

# figures: the columns of 1.1's results (1.2 may add columns; those are not compared)
figures() {
	local oq_cols
	oq_cols=$(cat "$dir/outcomes_columns")
	q -F ' ' <<SQL
SET TimeZone = 'Europe/Helsinki';
SELECT 'alerts', count(*), md5(coalesce(string_agg(format('%s %s %s %s %s %s', a.episode_id, a.staff_id, a.rule, a.due_on, a.days_overdue, a.severity), '|' ORDER BY a.episode_id, a.rule, a.due_on), ''))
  FROM ips.contact_alerts('2026-10-31') a;
SELECT 'fidelity', t.team_id, f.item, f.score, f.source, f.measure
  FROM ips.team t, ips.fidelity(t.team_id, '2025-11-01', '2026-10-31') f ORDER BY t.team_id, f.item;
SELECT 'fidelity_summary', t.team_id, s.total, s.items_scored, s.band
  FROM ips.team t, ips.fidelity_summary(t.team_id, '2025-11-01', '2026-10-31') s ORDER BY t.team_id;
SELECT 'outcomes', count(*), md5(coalesce(string_agg(o::text, '|' ORDER BY o::text), ''))
  FROM (SELECT $oq_cols FROM ips.outcomes_quarterly) o;
SELECT 'change_log', count(*), md5(coalesce(string_agg(l::text, '|' ORDER BY l.seq), ''))
  FROM (SELECT $(cat "$dir/change_log_columns") FROM ips.change_log) l;
SELECT 'access_log', count(*), md5(coalesce(string_agg(l::text, '|' ORDER BY l.seq), ''))
  FROM (SELECT $(cat "$dir/access_log_columns") FROM ips.access_log) l;
SELECT 'verify_change_log', count(*) FROM ips.verify_change_log();
SELECT 'verify_access_log', count(*) FROM ips.verify_access_log();
SQL
}

# the column list of a relation, in order, for SELECT
columns() {
	q -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_catalog.pg_attribute
	       WHERE attrelid = '$1'::regclass AND attnum > 0 AND NOT attisdropped"
}

case $mode in
dump)
	src="$IPS_WORK/ips-1.1"; mkdir -p "$src"
	git -C "$IPS_TOP" archive "$IPS_1_1" | tar -x -C "$src"
	grep -q "default_version = '1.1'" "$src/ips.control" || { echo "ips: $IPS_1_1 is not 1.1" >&2; exit 1; }
	ips_log "ips 1.1 ($IPS_1_1) for PostgreSQL $("$PG_CONFIG" --version)"
	IPS_TOP=$src ips_build
	ips_cluster_start
	export PGDATABASE=region
	q -d postgres -c "CREATE DATABASE region"
	q -c "CREATE EXTENSION ips" -c "SELECT ips.create_roles()" >/dev/null
	[ "$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'ips'")" = 1.1 ]
	ipsctl generate --clients 100 --seed 42 --start 2026-10-31 >"$IPS_WORK/region.json"
	ipsctl import "$IPS_WORK/region.json" >/dev/null
	q -c "SELECT count(ips.client_record(client_id, 'region move check')) FROM (SELECT client_id FROM ips.client ORDER BY client_id LIMIT 5) c" >/dev/null
	columns ips.outcomes_quarterly >"$dir/outcomes_columns"
	columns ips.change_log >"$dir/change_log_columns"
	columns ips.access_log >"$dir/access_log_columns"
	figures >"$dir/before.txt"
	"$PG_CONFIG" --version >"$dir/from_version"
	pg_dumpall --globals-only --no-role-passwords >"$dir/globals.sql"
	pg_dump -Fc -f "$dir/region.dump"
	# the same region updated in place on the old major to this checkout's version:
	# the figures a move must give (the new version computes some items otherwise
	# than 1.1, e.g. V13 counts in-person time only from 1.2 on)
	{ make -C "$IPS_TOP" -s PG_CONFIG="$PG_CONFIG" && make -C "$IPS_TOP" -s PG_CONFIG="$PG_CONFIG" install DESTDIR="$IPS_INST"; } \
		>"$IPS_WORK/build-current.log" 2>&1 || { cat "$IPS_WORK/build-current.log" >&2; exit 1; }
	q -d postgres -c "CREATE DATABASE region_updated TEMPLATE region"
	PGDATABASE=region_updated q -c "ALTER EXTENSION ips UPDATE"
	PGDATABASE=region_updated figures >"$dir/updated.txt"
	ips_log "dumped: $(wc -l <"$dir/before.txt") figure lines, $(grep '^change_log' "$dir/before.txt"), into $dir"
	;;
restore)
	[ -s "$dir/region.dump" ] || { echo "ips: no $dir/region.dump (run '$0 dump' on the old machine)" >&2; exit 1; }
	ips_log "ips $(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$IPS_TOP/ips.control") for $("$PG_CONFIG" --version); the region from $(cat "$dir/from_version")"
	ips_build
	ips_cluster_start
	export PGDATABASE=region
	n=0; bad=0
	check() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=$((bad + 1)); fi; }
	set +e
	psql -qX -d postgres -f "$dir/globals.sql" >"$IPS_WORK/globals.log" 2>&1	# 'role postgres already exists' is expected
	q -d postgres -c "CREATE DATABASE region"
	q -c "CREATE EXTENSION ips VERSION '1.1'"; check $? "CREATE EXTENSION ips VERSION '1.1' on the new major"
	# the schema and the extension exist already (1.1): restore everything else
	pg_restore -l "$dir/region.dump" | grep -vE ' (SCHEMA|EXTENSION) - ips( |$)' >"$IPS_WORK/region.list"
	PGOPTIONS='-c ips.restoring=on' pg_restore --exit-on-error -L "$IPS_WORK/region.list" -d region "$dir/region.dump"
	check $? "pg_restore of the 1.1 dump (ips.restoring on) but its schema and extension entries"
	q -c "ALTER EXTENSION ips UPDATE"; check $? "ALTER EXTENSION ips UPDATE"
	v=$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'ips'")
	[ "$v" = "$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$IPS_TOP/ips.control")" ]; check $? "ips is at the new version ($v)"
	figures >"$IPS_WORK/after.txt" 2>"$IPS_WORK/after.err"; check $? "the figures can be read after the update"
	# the figures: as the same region updated in place on the old major (updated.txt);
	# the logs: as dumped (before.txt), entry for entry
	for what in alerts fidelity fidelity_summary outcomes change_log access_log verify_change_log verify_access_log; do
		case $what in alerts|fidelity*|outcomes) ref="$dir/updated.txt" ;; *) ref="$dir/before.txt" ;; esac
		if grep -q "^$what " "$ref" &&
			diff <(grep "^$what " "$ref") <(grep "^$what " "$IPS_WORK/after.txt") >"$IPS_WORK/diff" 2>&1; then
			check 0 "$what: the same as before the move ($(grep -c "^$what " "$ref") lines: $(grep -m1 "^$what " "$ref" | cut -c1-60))"
		else
			check 1 "$what: the same as before the move"; head -n 20 "$IPS_WORK/diff" "$IPS_WORK/after.err" | sed 's/^/# /'
		fi
	done
	grep -q '^verify_change_log 0$' "$dir/before.txt" && grep -q '^verify_change_log 0$' "$IPS_WORK/after.txt"; check $? "the change log verifies clean before and after"
	grep -q '^verify_access_log 0$' "$dir/before.txt" && grep -q '^verify_access_log 0$' "$IPS_WORK/after.txt"; check $? "the access log verifies clean before and after"
	echo "1..$n"
	[ "$bad" -eq 0 ]
	;;
*) echo "usage: $0 dump|restore DIR" >&2; exit 2 ;;
esac
