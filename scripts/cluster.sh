# Sourced by demo.sh, run-tests.sh and bench/run.sh: a private installation and a
# throw-away cluster.
#
#  - The extension is installed with DESTDIR into a private copy of the
#    PostgreSQL installation (PostgreSQL finds its share and lib directories
#    relative to its binaries), so the system installation is not touched and
#    several runs can go on at once.
#  - initdb and the server run as the 'postgres' user (initdb refuses root), on
#    a private socket directory and no TCP port.
#  - Clients (psql, pg_regress, pg_prove, ipsctl) run as the invoking user with
#    -U postgres, since the checkout may be unreadable to 'postgres'.
#  - The cluster is stopped and removed on exit, also when something fails
#    (IPS_KEEP=1 keeps the directory for a post-mortem).

IPS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config)

as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres -- "$@"; fi
}

ips_log() { echo "ips: $*" >&2; }

# ips_build: compile and install into the private installation $IPS_INST.
ips_build() {
	local bindir sharedir pkglibdir
	bindir=$("$PG_CONFIG" --bindir); sharedir=$("$PG_CONFIG" --sharedir); pkglibdir=$("$PG_CONFIG" --pkglibdir)
	IPS_INST="$IPS_WORK/inst"
	mkdir -p "$IPS_INST$bindir" "$IPS_INST$sharedir" "$IPS_INST$pkglibdir"
	cp -a "$bindir/." "$IPS_INST$bindir/"
	cp -a "$sharedir/." "$IPS_INST$sharedir/"
	cp -as "$pkglibdir/." "$IPS_INST$pkglibdir/" 2>/dev/null || cp -a "$pkglibdir/." "$IPS_INST$pkglibdir/"
	chmod -R a+rX "$IPS_INST"
	ips_log "building (make) and installing into $IPS_INST"
	make -C "$IPS_TOP" -s PG_CONFIG="$PG_CONFIG" ${NO_IPSCTL:+NO_IPSCTL=1} >"$IPS_WORK/build.log" 2>&1 \
		|| { cat "$IPS_WORK/build.log" >&2; return 1; }
	if grep -E 'warning:' "$IPS_WORK/build.log" >&2; then
		ips_log "the build printed warnings (above)"; return 1
	fi
	make -C "$IPS_TOP" -s PG_CONFIG="$PG_CONFIG" ${NO_IPSCTL:+NO_IPSCTL=1} install DESTDIR="$IPS_INST" >>"$IPS_WORK/build.log" 2>&1 \
		|| { cat "$IPS_WORK/build.log" >&2; return 1; }
	IPS_BIN="$IPS_INST$bindir"
	export PATH="$IPS_INST/usr/local/bin:$IPS_BIN:$PATH"	# ipsctl: make install puts it on the ordinary PATH
}

# ips_cluster_start: initdb and start a server as postgres on a private socket.
ips_cluster_start() {
	export PGHOST="$IPS_WORK/sock" PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
	mkdir -p "$PGHOST"
	chown postgres "$IPS_WORK" "$PGHOST" 2>/dev/null || sudo chown postgres "$IPS_WORK" "$PGHOST"
	chmod 755 "$IPS_WORK" "$PGHOST"
	as_postgres "$IPS_BIN/initdb" -D "$IPS_WORK/data" -U postgres --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 >"$IPS_WORK/initdb.log" 2>&1 \
		|| { cat "$IPS_WORK/initdb.log" >&2; return 1; }
	cat >>"$IPS_WORK/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$PGHOST'
port = $PGPORT
fsync = off
max_connections = 60
shared_buffers = 256MB
wal_level = logical
log_min_messages = warning
CONF
	as_postgres "$IPS_BIN/pg_ctl" -D "$IPS_WORK/data" -l "$IPS_WORK/server.log" -w start >/dev/null \
		|| { cat "$IPS_WORK/server.log" >&2; return 1; }
	IPS_STARTED=1
}

ips_cluster_stop() {
	if [ -n "${IPS_STARTED:-}" ]; then
		as_postgres "$IPS_BIN/pg_ctl" -D "$IPS_WORK/data" -m fast -w stop >/dev/null 2>&1 \
			|| as_postgres "$IPS_BIN/pg_ctl" -D "$IPS_WORK/data" -m immediate stop >/dev/null 2>&1 || true
		IPS_STARTED=
	fi
	if [ -n "${IPS_KEEP:-}" ]; then ips_log "kept $IPS_WORK"; else rm -rf "$IPS_WORK"; fi
}

# ips_setup: everything up to a running cluster; the cluster goes away on exit.
ips_setup() {
	IPS_WORK=$(mktemp -d /tmp/ips-run.XXXXXX)
	trap ips_cluster_stop EXIT
	trap 'exit 130' INT TERM
	ips_build
	ips_cluster_start
}
