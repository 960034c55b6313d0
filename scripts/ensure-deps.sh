#!/usr/bin/env bash
# Installs the Debian packages that ips needs, when missing.
#   ensure-deps.sh demo   what building and running needs (make demo)
#   ensure-deps.sh test   that, and what the tests need (make test; the default)
# Runs apt-get as root, or through sudo for another user.
set -euo pipefail
what=${1:-test}
# build and run: the server, its headers, libpq and cJSON for ipsctl
build_pkgs="postgresql-15 postgresql-server-dev-15 postgresql-contrib libcjson-dev libpq-dev make gcc"
# tests only: pgTAP and pg_prove, IPC::Run (Perl TAP), valgrind, and Chromium with
# poppler-utils to print the review sheet to PDF and count its pages
test_pkgs="postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl valgrind
      chromium poppler-utils fonts-dejavu-core"
case $what in
	demo) pkgs=$build_pkgs ;;
	test) pkgs="$build_pkgs $test_pkgs" ;;
	*) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "ips: installing missing Debian packages:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian's postgresql-common creates a default cluster; it is not ours and stays stopped.
