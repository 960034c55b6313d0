# Sourced by run-tests.sh (make test, a throw-away cluster) and installcheck.sh
# (make installcheck, the DBA's own server): the pg_regress and pgTAP suites
# against the server that the PG* variables name, adding to $passed/$failed.
#   IPS_TOP  the checkout;  out  a directory for the logs
#   IPS_DB_PREFIX  prefix of the pgTAP databases (made and dropped here)
#   TESTS  a pattern: only the pgTAP files whose path matches

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

# pg_regress: readable outputs (sql/, expected/)
run_regress() {
	local st ok bad
	ls "$IPS_TOP"/sql/*.sql >/dev/null 2>&1 || return 0
	echo "== pg_regress"
	make -C "$IPS_TOP" -s PG_CONFIG="$PG_CONFIG" installcheck-regress >"$out/regress.log" 2>&1; st=$?
	grep -E '^(test| ) ' "$out/regress.log" | sed 's/^/  /'
	ok=$(grep -cE '\.\.\. +ok' "$out/regress.log"); bad=$(grep -cE '\.\.\. +FAILED' "$out/regress.log")
	passed=$((passed + ok)); failed=$((failed + bad))
	if [ $st -ne 0 ]; then
		[ "$bad" -eq 0 ] && failed=$((failed + 1))
		tail -n 20 "$out/regress.log"; [ -f "$IPS_TOP/regression.diffs" ] && head -n 150 "$IPS_TOP/regression.diffs"
	fi
}

# pgTAP: behaviour, one database per file (from a template with pgtap, dblink, ips)
run_pgtap() {
	local files f n=0 db st tpl="${IPS_DB_PREFIX}_template"
	files=$(ls "$IPS_TOP"/tests/pgtap/*.sql 2>/dev/null | grep -E "${TESTS:-.}")
	[ -n "$files" ] || return 0
	echo "== pgTAP"
	psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $tpl" >/dev/null || { failed=$((failed + 1)); return; }
	psql -qX -v ON_ERROR_STOP=1 -d "$tpl" \
		-c "CREATE EXTENSION pgtap; CREATE EXTENSION dblink; CREATE EXTENSION ips;" >/dev/null || failed=$((failed + 1))
	for f in $files; do
		n=$((n + 1)); db="${IPS_DB_PREFIX}_$n"
		psql -qX -d postgres -c "CREATE DATABASE $db TEMPLATE $tpl" >/dev/null
		(cd "$IPS_TOP" && PGDATABASE=$db pg_prove -v -d "$db" "${f#"$IPS_TOP"/}") >"$out/tap_$n.log" 2>&1; st=$?
		printf '  %-40s %s\n' "${f#"$IPS_TOP"/}" "$(tail -n 1 "$out/tap_$n.log")"
		count "$out/tap_$n.log" $st
		[ -n "${IPS_DROP_DBS:-}" ] && psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null
	done
	[ -n "${IPS_DROP_DBS:-}" ] && psql -qX -d postgres -c "DROP DATABASE IF EXISTS $tpl" >/dev/null
	return 0
}
