#!/bin/sh
# The end-to-end tools under valgrind: patient keygen, patient-publish,
# patient-verify (over HTTP from a loopback server, and --offline on the
# bundle it saved), patient-mbox with an audit log, patient audit, patient
# inspect, patient policy and patient disclose. Each run must give the tool's
# normal exit code and valgrind must report no memory error and no definite
# leak (--leak-check=full --errors-for-leak-kinds=definite).
# valgrind's --error-exitcode is 99, not 1, because 1..3 are the tools' own
# verdict codes; any valgrind error also fails the test.
set -u
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
PY=/usr/bin/python3

command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind not installed"; exit 77; }
[ -x "$PY" ] || { echo "SKIP: $PY not installed"; exit 77; }
built "$B/cli/patient" "$B/publisher/patient-publish" "$B/verifier/patient-verify" \
    "$B/middlebox/patient-mbox"

workdir valgrind
T=$W
SRV=
before_exit() { [ -z "$SRV" ] || kill "$SRV" 2>/dev/null; }
tally
private_home

# The tools are libtool wrapper scripts in a shared build: let libtool run
# the real binary under valgrind with the right library path. A static
# build has plain binaries.
if [ -x "$B/libtool" ]; then
    RUN="$B/libtool --mode=execute"
else
    RUN=
fi
VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99"
n=0
# vg WANT NAME TOOL ARGS...: run TOOL under valgrind, stdin from $VG_IN.
vg() {
    want=$1 name=$2 tool=$3
    shift 3
    n=$((n + 1))
    # shellcheck disable=SC2086
    $RUN $VG --log-file="$T/vg.$n.log" "$B/$tool" "$@" <"${VG_IN:-/dev/null}" \
        >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq 99 ] || grep -q 'ERROR SUMMARY: [1-9]\|definitely lost: [1-9]\|Invalid \(read\|write\)\|uninitialised' "$T/vg.$n.log" 2>/dev/null; then
        fail "$name: valgrind reports errors"
        head -60 "$T/vg.$n.log"
    elif [ "$rc" -ne "$want" ]; then
        fail "$name: exit $rc, wanted $want"
        sed 's/^/    /' "$T/out" "$T/err" | head -20
    else
        ok "$name (exit $rc, valgrind clean)"
    fi
}

# ---- keys -------------------------------------------------------------------
vg 0 "patient keygen -W" cli/patient keygen -W -p "$T/pub.pub" -s "$T/pub.key"
printf 'a password\n' >"$T/pw" && chmod 600 "$T/pw"
vg 0 "patient keygen (encrypted, password file)" cli/patient keygen --password-file "$T/pw" \
    -p "$T/mb.pub" -s "$T/mb.key"
vg 0 "patient inspect (secret key)" cli/patient inspect "$T/mb.key"

# ---- site, server, publish --------------------------------------------------
mkdir -p "$T/www/site/css" "$T/www/mbox"
cat >"$T/www/site/page.html" <<'EOF'
<!doctype html>
<html><head><title>news</title>
<script src="https://tracker.example/t.js"></script>
</head><body><p>Today's news.</p></body></html>
EOF
printf '<!doctype html><p>home</p>\n' >"$T/www/site/index.html"
printf 'body{}\n' >"$T/www/site/css/site.css"
"$PY" "$top_srcdir/tests/verify_cli_server.py" "$T/www" "$T/port" &
SRV=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$T/port" ] || { echo "FAIL: server did not start"; exit 1; }
O="http://127.0.0.1:$(cat "$T/port")"

vg 0 "patient-publish" publisher/patient-publish -q -s "$T/pub.key" --origin "$O" -j 2 "$T/www/site"
vg 0 "patient-publish again (version 2)" publisher/patient-publish -q -s "$T/pub.key" --origin "$O" \
    "$T/www/site"
VG_IN="$T/www/site/index.html" vg 0 "patient-publish --response" publisher/patient-publish \
    --response -s "$T/pub.key" --url "$O/api" -

# ---- middlebox with an audit log ---------------------------------------------
VG_IN="$T/www/site/page.html" vg 0 "patient-mbox (encrypted key, log)" middlebox/patient-mbox \
    -q -s "$T/mb.key" --password-file "$T/pw" --name "Test Filter" --service tracker-filter \
    --rules "$top_srcdir/middlebox/rules/trackers-only.json" --url "$O/page.html?via=mbox" \
    --type text/html --header-out "$T/www/mbox/page.html.headers" --log "$T/audit.jsonl" \
    --checkpoint-every 1
cp "$T/out" "$T/www/mbox/page.html"
grep -q '^Patient-Change: ' "$T/www/mbox/page.html.headers" || fail "patient-mbox issued no descriptor"
vg 0 "patient audit verify --deep" cli/patient audit verify "$T/audit.jsonl" --pub "$T/mb.pub" --deep
vg 0 "patient audit list --json" cli/patient audit list "$T/audit.jsonl" --json
vg 0 "patient audit proof" cli/patient audit proof "$T/audit.jsonl" 0 --out "$T/proof.json" \
    --leaf-out "$T/leaf.txt"
vg 0 "patient audit verify-proof" cli/patient audit verify-proof "$T/proof.json" "$T/leaf.txt" \
    --pub "$T/mb.pub"

# ---- policy, disclosure ---------------------------------------------------------
P="$T/policy.json"
vg 0 "patient policy init" cli/patient policy init "$P"
vg 0 "patient policy add-publisher" cli/patient policy add-publisher "$P" "$O" "$T/pub.pub"
vg 0 "patient policy add-middlebox" cli/patient policy add-middlebox "$P" "Test Filter" \
    "$T/mb.pub" --reasons 'tracker.*'
vg 0 "patient policy check (clean: exit 0)" cli/patient policy check "$P"
cp "$P" "$T/policy-weak.json"
vg 0 "patient policy add-middlebox (any reason)" cli/patient policy add-middlebox \
    "$T/policy-weak.json" "Any Filter" "$T/pub.pub" --reasons '*'
vg 1 "patient policy check (findings: exit 1)" cli/patient policy check "$T/policy-weak.json"
vg 0 "patient disclose" cli/patient disclose -s "$T/mb.key" --password-file "$T/pw" \
    --out "$T/disclosure.json" --operator "Test Operator" --contact mailto:ops@example.org \
    --service tracker-filter --retention-days 0 --sharing none --upstream-tls-min TLSv1.2
vg 0 "patient inspect (disclosure)" cli/patient inspect "$T/disclosure.json" --json

# ---- verify over HTTP, bundle, offline ------------------------------------------
V="--policy $P --state $T/versions.json --cache-dir $T/cache --color never"
# shellcheck disable=SC2086
vg 0 "patient-verify (verified)" verifier/patient-verify $V "$O/page.html"
# shellcheck disable=SC2086
vg 0 "patient-verify (modified, --json, --bundle)" verifier/patient-verify $V --json \
    --bundle "$T/bundle.json" "$O/page.html?via=mbox"
# shellcheck disable=SC2086
vg 3 "patient-verify (not listed: unverifiable)" verifier/patient-verify $V "$O/missing.html"
vg 0 "patient-verify --offline BUNDLE" verifier/patient-verify --bundle-policy --offline "$T/bundle.json" --json
# Forged: the body changed after the hop (integrity and size made to match).
"$PY" - "$T/bundle.json" "$T/bundle-forged.json" <<'EOF' || fail "could not forge the bundle"
import base64, hashlib, json, sys
b = json.load(open(sys.argv[1]))
body = base64.b64decode(b["body"]).replace(b"Today", b"TODAY")
b["body"] = base64.b64encode(body).decode()
b["body_size"] = len(body)
b["body_integrity"] = "sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode()
json.dump(b, open(sys.argv[2], "w"))
EOF
vg 1 "patient-verify --offline forged bundle (invalid)" verifier/patient-verify --bundle-policy --offline \
    "$T/bundle-forged.json"
vg 0 "patient inspect (bundle)" cli/patient inspect "$T/bundle.json"

echo "$n valgrind runs, $fails failures"
[ "$fails" -eq 0 ]
