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

count() {	# count FILE STATUS: TAP lines of one file into the totals
	local ok notok
	# a "not ok ... # TODO" is an expected failure in TAP, not a failure (pgTAP's todo())
	ok=$(grep -cE '^ *ok [0-9]+' "$1"); notok=$(grep -E '^ *not ok [0-9]+' "$1" | grep -vcE '# TODO')
	passed=$((passed + ok)); failed=$((failed + notok))
	if [ "$2" -ne 0 ] && [ "$notok" -eq 0 ]; then failed=$((failed + 1)); fi
	if [ "$2" -ne 0 ] || [ "$notok" -ne 0 ]; then
		echo "---- FAILED: $1"; grep -vE '^ *ok [0-9]+' "$1" | tail -n 40
	fi
}

# 1. pg_regress: readable outputs
if [ -z "${TESTS:-}" ] && ls sql/*.sql >/dev/null 2>&1; then
	echo "== pg_regress"
	make -s PG_CONFIG="$PG_CONFIG" installcheck >"$out/regress.log" 2>&1; st=$?
	grep -E '^(test| ) ' "$out/regress.log" | sed 's/^/  /'
	ok=$(grep -cE '\.\.\. +ok' "$out/regress.log"); bad=$(grep -cE '\.\.\. +FAILED' "$out/regress.log")
	passed=$((passed + ok)); failed=$((failed + bad))
	if [ $st -ne 0 ]; then
		[ "$bad" -eq 0 ] && failed=$((failed + 1))
		tail -n 20 "$out/regress.log"; [ -f regression.diffs ] && head -n 150 regression.diffs
	fi
fi

# 2. pgTAP: behaviour, one database per file
files=$(ls tests/pgtap/*.sql 2>/dev/null | grep -E "${TESTS:-.}")
if [ -n "$files" ]; then
	echo "== pgTAP"
	psql -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE ips_tap_template" >/dev/null
	psql -qX -v ON_ERROR_STOP=1 -d ips_tap_template \
		-c "CREATE EXTENSION pgtap; CREATE EXTENSION dblink; CREATE EXTENSION ips;" >/dev/null || failed=$((failed + 1))
	n=0
	for f in $files; do
		n=$((n + 1)); db="ips_tap_$n"
		psql -qX -c "CREATE DATABASE $db TEMPLATE ips_tap_template" >/dev/null
		PGDATABASE=$db pg_prove -v -d "$db" "$f" >"$out/tap_$n.log" 2>&1; st=$?
		printf '  %-40s %s\n' "$f" "$(tail -n 1 "$out/tap_$n.log")"
		count "$out/tap_$n.log" $st
	done
fi

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
