#!/usr/bin/env bash
# Installs the Debian packages that building and testing ips need, when missing.
# Runs apt-get as root, or through sudo for another user.
set -euo pipefail
pkgs="postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap postgresql-contrib
      libtap-parser-sourcehandler-pgtap-perl libipc-run-perl libcjson-dev libpq-dev
      make gcc valgrind"
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
