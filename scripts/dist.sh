#!/usr/bin/env bash
# make dist: the PGXN archive ips-X.Y.Z.zip of the committed HEAD, after
# checking META.json against the release (version of ips.control, provides,
# the supported majors and release status).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
ext=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" ips.control)
python3 - "$ext" <<'PY'
import json, re, sys
ext = sys.argv[1]
m = json.load(open('META.json'))
want = ext + '.0' if ext.count('.') == 1 else ext
errors = []
for k in ('name', 'abstract', 'version', 'maintainer', 'license', 'provides', 'meta-spec'):
    if k not in m: errors.append('META.json lacks "%s"' % k)
if m.get('version') != want: errors.append('version %s, ips.control says %s' % (m.get('version'), want))
p = m.get('provides', {}).get('ips', {})
if p.get('version') != want: errors.append('provides.ips.version %s, not %s' % (p.get('version'), want))
for f in (p.get('file'), p.get('docfile')):
    if f: open(f).close()
pg = m.get('prereqs', {}).get('runtime', {}).get('requires', {}).get('PostgreSQL', '')
if not re.search(r'>= *15\.0\.0', pg) or not re.search(r'< *19\.0\.0', pg):
    errors.append('prereqs.runtime.requires.PostgreSQL "%s": the tested range is >= 15.0.0, < 19.0.0' % pg)
if m.get('release_status') not in ('stable', 'testing', 'unstable'): errors.append('release_status')
if errors:
    sys.exit('ips: META.json: ' + '; '.join(errors))
PY
ver=$(python3 -c 'import json; print(json.load(open("META.json"))["version"])')
[ -z "$(git status --porcelain --untracked-files=no)" ] || echo "ips: note: uncommitted changes are not in the archive (HEAD is)" >&2
out="$top/ips-$ver.zip"
git archive --format=zip --prefix="ips-$ver/" -o "$out" HEAD
echo "$out ($(python3 -c 'import json; m=json.load(open("META.json")); print(m["release_status"] + ", PostgreSQL " + m["prereqs"]["runtime"]["requires"]["PostgreSQL"])'))"
