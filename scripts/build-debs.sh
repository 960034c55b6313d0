#!/usr/bin/env bash
# make deb: the Debian packages of ips for this machine's distribution, the
# Debian way (debian/, pg_buildext): postgresql-NN-ips for every supported
# major of debian/pgversions that the distribution ships, and ipsctl.
# Installs the build dependencies, regenerates debian/control for those
# majors (pg_buildext updatecontrol), builds unsigned binary packages into
# DIR (default ./debs-out) and runs lintian on them.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/debs-out}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
need="build-essential debhelper dpkg-dev fakeroot postgresql-server-dev-all libssl-dev libcjson-dev libpq-dev lintian"
missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "ips: installing the build dependencies:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# build in a copy (dpkg-buildpackage writes its results next to the tree)
work=$(mktemp -d /tmp/ips-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ips"
(cd "$top" && git ls-files -co --exclude-standard | grep -vE '\.(o|so|bc)$' | tar -c -T -) | tar -x -C "$work/ips"
cd "$work/ips"
pg_buildext updatecontrol
echo "ips: building for PostgreSQL $(pg_buildext supported-versions | tr '\n' ' ')" >&2
dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; exit 1; }
mkdir -p "$out"; out=$(cd "$out" && pwd)
cp "$work/build.log" "$out/build.log"
ver=$(dpkg-parsechangelog -S Version)
mv "$work"/*_"$ver"_*.deb "$work"/ips_"$ver"_*.changes "$work"/ips_"$ver"_*.buildinfo "$out"/
ls -1 "$out"/*.deb
echo "== lintian" >&2
lintian --info "$out"/ips_"$ver"_*.changes || true
