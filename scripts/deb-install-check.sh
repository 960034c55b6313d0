#!/usr/bin/env bash
# Run as root on a clean Debian machine (make test-matrix: a fresh chroot) in a
# directory holding the packages of scripts/build-debs.sh: installs them with
# apt as an administrator would, starts the cluster Debian made, runs
# CREATE EXTENSION ips and ipsctl against it.  Prints TAP lines.
set -uo pipefail
cd "$(dirname "$0")"
n=0; bad=0
check() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=$((bad + 1)); fi; }
export DEBIAN_FRONTEND=noninteractive
# no service starts inside a chroot while packages install; the cluster is started below
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
apt-get update -qq
debs=$(ls ./postgresql-*-ips_*.deb ./ipsctl_*.deb 2>/dev/null | grep -v dbgsym)
# shellcheck disable=SC2086
apt install -y -q $debs >apt.log 2>&1; check $? "apt install $(echo $debs | tr '\n' ' ')"
v=$(ls ./postgresql-*-ips_*.deb | grep -v dbgsym | sed -n 's/.*postgresql-\([0-9]*\)-ips_.*/\1/p' | head -n 1)
rm -f /usr/sbin/policy-rc.d
cd /tmp	# a directory the postgres user may enter
pg_ctlcluster "$v" main start; check $? "the cluster $v/main that Debian made starts"
as_pg() { runuser -u postgres -- "$@"; }
out=$(as_pg psql -qXAt -v ON_ERROR_STOP=1 -c "CREATE EXTENSION ips" -c "SELECT extversion FROM pg_extension WHERE extname = 'ips'" 2>&1)
check $? "CREATE EXTENSION ips on PostgreSQL $v (version $out)"
ver=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "/usr/share/postgresql/$v/extension/ips.control")
[ "$out" = "$ver" ]; check $? "the installed extension is the packaged default version ($ver)"
as_pg psql -qXAt -c "SELECT count(*) FROM ips.fidelity_item" >/dev/null 2>&1 || as_pg psql -qXAt -c "SELECT 1 FROM ips.setting LIMIT 1" >/dev/null
check $? "ips tables are readable"
ipsctl generate --clients 20 --seed 7 --start 2026-10-31 >/tmp/region.json; check $? "ipsctl (package ipsctl) generates a region"
as_pg ipsctl import /tmp/region.json >/dev/null; check $? "ipsctl imports it into the packaged extension"
[ "$(as_pg psql -qXAt -c 'SELECT count(*) FROM ips.client')" = 20 ]; check $? "20 clients imported"
man -w ipsctl >/dev/null 2>&1 || [ -f /usr/share/man/man1/ipsctl.1.gz ]; check $? "ipsctl has a manual page"
pg_ctlcluster "$v" main stop
echo "1..$n"
[ "$bad" -eq 0 ]
