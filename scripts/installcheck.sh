#!/usr/bin/env bash
# make installcheck: the pg_regress files and the pgTAP suite against the DBA's
# own server (the one PGHOST, PGPORT, PGUSER name; a superuser, with ips,
# pgTAP and dblink installed there, and pg_prove), in databases of their own
# (contrib_regression, ips_installcheck_*: dropped afterwards); ends with
# 'N passed, N failed'.  TESTS=pattern limits the pgTAP files.
set -uo pipefail
IPS_TOP=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
for need in psql pg_prove; do
	command -v "$need" >/dev/null || { echo "installcheck: $need is not on the PATH (pg_prove: Debian's libtap-parser-sourcehandler-pgtap-perl)" >&2; exit 2; }
done
if [ "$(psql -XAtqd postgres -c "SELECT count(*) FROM pg_available_extensions WHERE name IN ('ips', 'pgtap', 'dblink')")" != 3 ]; then
	echo "installcheck: the server needs the extensions ips (make install), pgtap (postgresql-NN-pgtap) and dblink (contrib)" >&2
	exit 2
fi
out=$(mktemp -d /tmp/ips-installcheck.XXXXXX)
trap 'rm -rf "$out"' EXIT
passed=0; failed=0
IPS_DB_PREFIX=ips_installcheck IPS_DROP_DBS=1
. "$IPS_TOP/scripts/suites.sh"
if [ -z "${TESTS:-}" ]; then
	run_regress
	psql -qX -d postgres -c "DROP DATABASE IF EXISTS contrib_regression" >/dev/null
fi
run_pgtap
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
