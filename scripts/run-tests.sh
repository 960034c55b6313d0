#!/usr/bin/env bash
# make test: build, start a throw-away cluster, run every test, print
# 'N passed, N failed'.  Suites: pg_regress (sql/, expected/), pgTAP
# (tests/pgtap/*.sql, one database each) and Perl TAP (tests/t/*.pl,
# PostgreSQL::Test::Cluster, run as the postgres user).
# TESTS=pattern limits the pgTAP and TAP files to those matching it.
set -uo pipefail
. "$(dirname "$0")/cluster.sh"
set -e
ips_setup
set +e
cd "$IPS_TOP"
out="$IPS_WORK/out"; mkdir -p "$out"
passed=0; failed=0

# 1. pg_regress and 2. pgTAP (the suites make installcheck runs on a DBA's server)
IPS_DB_PREFIX=ips_tap
. "$IPS_TOP/scripts/suites.sh"
[ -z "${TESTS:-}" ] && run_regress
run_pgtap

# 3. Perl TAP: several clusters (replication, crash, dump/restore, upgrade)
files=$(ls tests/t/*.pl 2>/dev/null | grep -E "${TESTS:-.}")
if [ -n "$files" ]; then
	echo "== Perl TAP"
	tapdir="$IPS_WORK/tap"; mkdir -p "$tapdir/t"
	cp $files "$tapdir/t/"; cp -r tests/t/lib "$tapdir/" 2>/dev/null || true
	chown -R postgres "$tapdir"
	perl_inc="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/perl"
	for f in $files; do
		b=$(basename "$f")
		as_postgres env PATH="$PATH" IPS_SRC="$IPS_TOP" PG_REGRESS="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
			bash -c "cd '$tapdir' && prove -v -I '$perl_inc' -I lib 't/$b'" >"$out/pl_$b.log" 2>&1; st=$?
		printf '  %-40s %s\n' "$f" "$(tail -n 1 "$out/pl_$b.log")"
		count "$out/pl_$b.log" $st
		if [ $st -ne 0 ]; then
			echo "---- tail of tmp_check/log/regress_log_${b%.pl}:"
			grep -m1 -A4 -E 'error running SQL|^not ok' "$tapdir/tmp_check/log/regress_log_${b%.pl}" 2>/dev/null
			tail -n 15 "$tapdir/tmp_check/log/regress_log_${b%.pl}" 2>/dev/null
		fi
	done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
