#!/usr/bin/env bash
# make test-matrix: the whole suite on every PostgreSQL major ips supports, each
# on a fresh machine of the Debian release that ships it, and a region moved
# from the oldest to the newer ones.  Prints majors x result.
#
#   Debian 12 bookworm: PostgreSQL 15    Debian 13 trixie: 17    sid: 18
#
# For each release: a debootstrap chroot (minbase with only make, gcc and git
# added) is made once under $IPS_MATRIX_DIR/<release> and kept; every run
# copies it afresh, clones the committed HEAD of this repository into the copy
# and runs the README's commands there (make test: it installs the rest; then
# make demo).
# Then the region move (scripts/region-move.sh): the Debian 12 run dumps a
# region made with ips 1.1, the later runs restore it and update it to this
# version.  Then the Debian packages: built there (make deb, lintian), and
# installed with apt into another fresh copy, where CREATE EXTENSION ips runs
# (scripts/deb-install-check.sh).  Logs: $IPS_MATRIX_DIR/logs/.
#
#   IPS_MATRIX="bookworm:15 trixie:17"   choose releases (default: all three)
#   IPS_MATRIX_DIR=/var/tmp/ips-matrix    where the chroots live (outside the repo)
#   IPS_MIRROR=http://deb.debian.org/debian
#   IPS_MATRIX_KEEP=1                     keep each run's copy for a post-mortem
# Needs root (debootstrap, chroot, mount): runs itself through sudo otherwise.
set -uo pipefail
[ "$(id -u)" -eq 0 ] || exec sudo -E "$0" "$@"
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${IPS_MATRIX_DIR:-/var/tmp/ips-matrix}
mirror=${IPS_MIRROR:-http://deb.debian.org/debian}
matrix=${IPS_MATRIX:-bookworm:15 trixie:17 sid:18}
logs="$dir/logs"; move="$dir/move"
mkdir -p "$logs"
log() { echo "ips-matrix: $*" >&2; }

command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get install -y -qq debootstrap >/dev/null; }
rev=$(git -C "$top" rev-parse --short HEAD)
[ -z "$(git -C "$top" status --porcelain --untracked-files=no)" ] || log "note: uncommitted changes are not tested (HEAD $rev is)"
bundle="$dir/ips.bundle"
git -C "$top" bundle create "$bundle" HEAD >/dev/null 2>&1 || { log "git bundle failed"; exit 1; }

# base chroot of a release, made once
base() {
	local r=$1 root="$dir/$1"
	[ -x "$root/usr/bin/make" ] && return 0
	log "debootstrap $r (minbase + make gcc git) into $root"
	rm -rf "$root.new"
	debootstrap --variant=minbase --include=make,gcc,git "$r" "$root.new" "$mirror" >"$logs/debootstrap-$r.log" 2>&1 \
		|| { log "debootstrap $r failed: $logs/debootstrap-$r.log"; return 1; }
	# apt of the chroot: sid's Release file may be past its Valid-Until on this mirror
	echo 'Acquire::Check-Valid-Until "false";' >"$root.new/etc/apt/apt.conf.d/99ips-matrix"
	mv "$root.new" "$root"
}

mounted=()
umount_all() {
	local m
	for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null; done
	mounted=()
}
trap umount_all EXIT
trap 'exit 130' INT TERM

# rm -rf of a chroot copy, never while something is mounted under it (/dev!)
safe_rm() {
	local d=$1
	if grep -q " $d/" /proc/mounts; then log "not removing $d: still mounted"; return 1; fi
	rm -rf "$d"
}

# prepare ROOT: a copy of a base chroot made ready to run in (network, apt, mounts)
prepare() {
	local root=$1
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99ips-matrix"
	mount -t proc proc "$root/proc" && mounted+=("$root/proc")
	mount --bind /dev "$root/dev" && mounted+=("$root/dev")
	mount -t tmpfs shm "$root/dev/shm" && mounted+=("$root/dev/shm")
	mount -t devpts devpts "$root/dev/pts" 2>/dev/null && mounted+=("$root/dev/pts")
}

# run RELEASE MAJOR: fresh copy, clone, make test, region move, packages; sets res_*
run() {
	local r=$1 pg=$2 root="$dir/$1.run" t0 st line
	res_tests="-"; res_move="-"; res_version="-"; res_time="-"; res_deb="-"
	base "$r" || { res_tests="no chroot"; return; }
	safe_rm "$root" || return; cp -a "$dir/$r" "$root"
	prepare "$root"
	cp "$bundle" "$root/root/ips.bundle"
	t0=$(date +%s)
	log "$r: git clone, make test (PostgreSQL $pg expected) -> $logs/$r.log"
	chroot "$root" /bin/bash -c "cd /root && git clone -q ips.bundle ips && cd ips && make test" >"$logs/$r.log" 2>&1
	st=$?
	res_version=$(chroot "$root" /bin/sh -c 'for p in /usr/lib/postgresql/*/bin/postgres; do "$p" --version; done' 2>/dev/null |
		sed -n 's/^postgres (PostgreSQL) \([0-9.]*\).*/\1/p' | tr '\n' ' ')
	res_version=${res_version% }
	case "$res_version" in "$pg".*) ;; *) log "$r: expected PostgreSQL $pg, found '${res_version:-none}'"; res_version="${res_version:-none} (not $pg)" ;; esac
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logs/$r.log" | tail -n 1)
	if [ $st -eq 0 ] && [ -n "$line" ]; then res_tests="PASS ($line)"; else res_tests="FAIL (${line:-no summary; exit $st})"; fi
	# the README's other command
	if chroot "$root" /bin/bash -c "cd /root/ips && make demo" >"$logs/$r-demo.log" 2>&1; then
		res_tests="$res_tests; demo ok"
	else
		res_tests="$res_tests; demo FAIL"
	fi
	# the region move: dumped where the major is 15 (ips 1.1 builds there only),
	# restored on the others (from this run's dump, or a kept one: IPS_MATRIX="trixie:17")
	if [ "$pg" = 15 ]; then
		rm -rf "$move"; mkdir -p "$move"
		if chroot "$root" /bin/bash -c "cd /root/ips && scripts/region-move.sh dump /root/move" >"$logs/$r-move.log" 2>&1 &&
			cp -a "$root/root/move/." "$move/"; then
			res_move="dumped (ips 1.1)"
		else
			res_move="FAIL (dump)"
		fi
	elif [ -s "$move/region.dump" ]; then
		mkdir -p "$root/root/move"; cp -a "$move/." "$root/root/move/"
		chroot "$root" /bin/bash -c "cd /root/ips && scripts/region-move.sh restore /root/move" >"$logs/$r-move.log" 2>&1
		st=$?
		line="$(grep -c '^ok ' "$logs/$r-move.log") ok, $(grep -c '^not ok ' "$logs/$r-move.log") not ok"
		if [ $st -eq 0 ]; then res_move="PASS from 15/1.1 ($line)"; else res_move="FAIL ($line)"; fi
	fi
	# the Debian packages: built there (make deb), installed into another fresh copy
	res_deb="FAIL (build)"
	if chroot "$root" /bin/bash -c "cd /root/ips && scripts/build-debs.sh /root/debs" >"$logs/$r-deb.log" 2>&1; then
		local clean="$dir/$r.clean" lint
		lint=$(sed -n '/^== lintian/,$p' "$logs/$r-deb.log" | grep -cE '^[EW]: ')
		umount_all
		safe_rm "$clean" || return; cp -a "$dir/$r" "$clean"
		prepare "$clean"
		mkdir -p "$clean/root/debs"
		cp "$root"/root/debs/*.deb "$top/scripts/deb-install-check.sh" "$clean/root/debs/"
		chroot "$clean" /bin/bash -c "/root/debs/deb-install-check.sh" >"$logs/$r-deb-install.log" 2>&1
		st=$?
		line="$(grep -c '^ok ' "$logs/$r-deb-install.log") ok, $(grep -c '^not ok ' "$logs/$r-deb-install.log") not ok"
		if [ $st -eq 0 ]; then res_deb="PASS ($line; lintian E/W: $lint)"; else res_deb="FAIL ($line)"; fi
		umount_all
		[ -n "${IPS_MATRIX_KEEP:-}" ] || safe_rm "$clean"
	fi
	res_time="$(( ($(date +%s) - t0 + 30) / 60 )) min"
	umount_all
	[ -n "${IPS_MATRIX_KEEP:-}" ] || safe_rm "$root"
}

table="$logs/matrix.txt"
{
	echo "ips test matrix, commit $rev, $(date -u '+%Y-%m-%d %H:%M UTC')"
	printf '| %-7s | %-12s | %-7s | %-40s | %-34s | %-40s | %-7s |\n' "Major" "Debian" "Server" "make test; make demo" "Region moved (15, ips 1.1 -> 1.2)" "Packages built, apt install, CREATE EXTENSION" "Time"
	printf '|%s|%s|%s|%s|%s|%s|%s|\n' "---------" "--------------" "---------" "------------------------------------------" "------------------------------------" "------------------------------------------" "---------"
} >"$table"
fail=0
for m in $matrix; do
	r=${m%%:*}; pg=${m##*:}
	case $r in bookworm) name="12 bookworm" ;; trixie) name="13 trixie" ;; sid) name="sid" ;; *) name=$r ;; esac
	run "$r" "$pg"
	case "$res_tests $res_move $res_deb" in *FAIL*|*"no chroot"*) fail=1 ;; esac
	printf '| %-7s | %-12s | %-7s | %-40s | %-34s | %-40s | %-7s |\n' "$pg" "$name" "$res_version" "$res_tests" "$res_move" "$res_deb" "$res_time" >>"$table"
	tail -n 1 "$table" >&2
done
echo
cat "$table"
exit $fail
