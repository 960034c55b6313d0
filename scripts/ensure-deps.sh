#!/usr/bin/env bash
# Installs the Debian packages that ips needs, when missing, for one purpose:
#   scripts/ensure-deps.sh build   compile the extension and ipsctl
#   scripts/ensure-deps.sh demo    build + a PostgreSQL server (make demo)
#   scripts/ensure-deps.sh test    demo + pgTAP, pg_prove, IPC::Run, valgrind, Chromium (make test; the default)
#   scripts/ensure-deps.sh bench   demo (pgbench comes with the server)
# The PostgreSQL major is the one the distribution ships (Debian 12: 15,
# Debian 13: 17, sid: 18), or PG=NN, or that of PG_CONFIG (scripts/pg-major.sh).
# Runs apt-get as root, or through sudo for another user.
set -euo pipefail
what=${1:-test}
here=$(dirname "$0")
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
updated=""
apt_update() { [ -n "$updated" ] || { $SUDO apt-get update -qq; updated=1; }; }

# which major: a fresh machine may have no package lists yet
if [ -z "${PG:-}" ] && [ -z "${PG_CONFIG:-}" ] && ! apt-cache show postgresql >/dev/null 2>&1; then
	apt_update
fi
pg=$("$here/pg-major.sh")

build="postgresql-server-dev-$pg libssl-dev libcjson-dev libpq-dev make gcc"
demo="$build postgresql-$pg"
case $what in
	build) pkgs=$build ;;
	demo|bench) pkgs=$demo ;;
	# tests only: pgTAP and pg_prove, IPC::Run (Perl TAP), valgrind, and Chromium with
	# poppler-utils to print the review sheet to PDF and count its pages
	test) pkgs="$demo postgresql-$pg-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl valgrind
	            chromium poppler-utils fonts-dejavu-core" ;;
	*) echo "usage: $0 build|demo|test|bench" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "ips: installing missing Debian packages (PostgreSQL $pg, for $what):$missing" >&2
apt_update
if ! apt-cache show "postgresql-$pg" >/dev/null 2>&1; then
	echo "ips: this distribution has no postgresql-$pg; its own is $(PG= PG_CONFIG= "$here/pg-major.sh" 2>/dev/null || echo unknown)." >&2
	echo "     Run without PG= to use it, or add a repository that has $pg (apt.postgresql.org)." >&2
	exit 1
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian's postgresql-common creates a default cluster; it is not ours and stays stopped.
