#!/bin/sh
# Prints the PostgreSQL major (15, 17, 18 ...) that ips is built and tested
# against, for ensure-deps.sh and cluster.sh:
#   1. PG=NN when given (make test PG=17);
#   2. else the major of $PG_CONFIG when it is given and exists;
#   3. else the major the distribution ships: the version its 'postgresql'
#      package depends on (Debian 12: 15, Debian 13: 17, sid: 18);
#   4. else the newest one installed under /usr/lib/postgresql.
set -eu
if [ -n "${PG:-}" ]; then
	case $PG in
		*[!0-9]*) echo "ips: PG=$PG is not a PostgreSQL major (PG=15, PG=17 ...)" >&2; exit 1 ;;
	esac
	echo "$PG"; exit 0
fi
if [ -n "${PG_CONFIG:-}" ] && command -v "$PG_CONFIG" >/dev/null 2>&1; then
	"$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p'; exit 0
fi
m=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n 1)
if [ -z "$m" ]; then
	m=$(ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -n 1)
fi
[ -n "$m" ] || { echo "ips: cannot tell which PostgreSQL major to use: give PG=NN" >&2; exit 1; }
echo "$m"
