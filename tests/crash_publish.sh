#!/bin/sh
# Crash safety of patient-publish: kill -9 at random points of a publish
# (a 2,000-file tree takes ~0.1-0.2 s here) and check what is left in place.
# Allowed after every kill (docs/format/manifest.md, "Publishing and crash
# safety"):
#   A. manifest.json + manifest.json.minisig verify with stock minisign
#      (the old pair, or the new one if the publish got that far); or
#   B. the new manifest with the old signature AND a manifest.json.minisig.next
#      that verifies it (killed between the manifest and signature renames);
#      the next publish must then complete it ("completed an interrupted
#      earlier publish") so that A holds again.
# Anything else (no manifest, a partial file, a manifest no signature
# covers) fails. Versions never go backwards. Between kills a few files
# change, so every publish writes a different manifest.
set -u
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
PUB="$B/publisher/patient-publish"
PY=/usr/bin/python3
ROUNDS=${CRASH_ROUNDS:-40}

command -v minisign >/dev/null 2>&1 || { echo "SKIP: minisign not installed"; exit 77; }
[ -x "$PY" ] || { echo "SKIP: $PY not installed"; exit 77; }
built "$PUB"

workdir crash_publish
T=$W
tally

cp "$D/manifest_key.key" "$D/manifest_key.pub" "$T/"
chmod 600 "$T/manifest_key.key"
SK="$T/manifest_key.key"
PK="$T/manifest_key.pub"
S="$T/site"
M="$S/.well-known/patient/manifest.json"
"$PY" - "$S" <<'EOF'
import os, sys
root = sys.argv[1]
for d in range(40):
    os.makedirs(os.path.join(root, "d%d" % d))
    for f in range(50):
        with open(os.path.join(root, "d%d" % d, "f%d.html" % f), "wb") as fh:
            fh.write(os.urandom(2048))
EOF

version() { sed -n 's/^  "version": \([0-9]*\),*$/\1/p' "$M"; }
# state: A (pair verifies), B (recoverable: .next verifies), X (broken)
state() {
    if [ -f "$M" ] && minisign -Vq -m "$M" -p "$PK" >/dev/null 2>&1; then
        echo A
    elif [ -f "$M" ] && [ -f "$M.minisig.next" ] &&
        minisign -Vq -m "$M" -x "$M.minisig.next" -p "$PK" >/dev/null 2>&1; then
        echo B
    else
        echo X
    fi
}

"$PUB" -q -s "$SK" --origin https://example.org "$S" || { echo "FAIL: first publish"; exit 1; }
[ "$(state)" = A ] || { echo "FAIL: first publish does not verify"; exit 1; }
last=$(version)
# Kill within the time a publish takes (the fastest of three; never less
# than 20 ms), plus 20% so some publishes complete.
ms=
for k in 1 2 3; do
    t0=$(date +%s%N)
    "$PUB" -q -s "$SK" --origin https://example.org "$S" || { echo "FAIL: publish $k"; exit 1; }
    t1=$(date +%s%N)
    d=$(((t1 - t0) / 1000000))
    [ -z "$ms" ] || [ "$d" -lt "$ms" ] && ms=$d
done
[ "$ms" -ge 20 ] || ms=20
range=$((ms * 6 / 5))
echo "a full publish of 2,000 files took $ms ms; killing at random points in 0..$range ms"
last=$(version)

a=0 b=0 done_early=0 i=0
while [ "$i" -lt "$ROUNDS" ]; do
    i=$((i + 1))
    # change a few files so the new manifest differs from the old one
    head -c 512 /dev/urandom >"$S/d$((i % 40))/f$((i % 50)).html"
    delay=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    delay=$((delay % range))
    "$PUB" -q -s "$SK" --origin https://example.org "$S" >"$T/out" 2>&1 &
    pid=$!
    sleep "$(printf '0.%03d' "$delay")"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ $? -eq 0 ] && done_early=$((done_early + 1))
    st=$(state)
    v=$(version)
    case $st in
    A) a=$((a + 1)) ;;
    B)
        b=$((b + 1))
        "$PUB" -s "$SK" --origin https://example.org "$S" >"$T/rec" 2>&1 ||
            fail "round $i: publish after an interrupted one failed: $(cat "$T/rec")"
        grep -qi 'interrupted' "$T/rec" || fail "round $i: recovery not reported: $(cat "$T/rec")"
        [ "$(state)" = A ] || fail "round $i: recovery did not leave a verifying pair"
        v=$(version)
        ;;
    *)
        fail "round $i (killed after $delay ms): manifest in place does not verify"
        ls -la "$S/.well-known/patient/" | sed 's/^/    /'
        minisign -Vm "$M" -p "$PK" 2>&1 | sed 's/^/    /'
        ;;
    esac
    if [ -n "$v" ] && [ -n "$last" ] && [ "$v" -lt "$last" ]; then
        fail "round $i: version went back from $last to $v"
    fi
    [ -n "$v" ] && last=$v
done
ok "$ROUNDS kills: $a left a verifying pair, $b the recoverable .next state, $done_early publishes finished before the kill"

# State B on purpose (the kill window for it is microseconds wide): the new
# manifest in place, the old signature, the new one in .next. The next
# publish must finish the interrupted one first, then publish on top.
v=$(version)
"$PUB" -q -s "$SK" --origin https://example.org --version $((v + 1)) -o "$T/new.json" "$S" ||
    fail "publish to a side file failed"
cp "$T/new.json" "$M.tmp" && mv "$M.tmp" "$M" && cp "$T/new.json.minisig" "$M.minisig.next"
if [ "$(state)" = B ]; then
    "$PUB" -s "$SK" --origin https://example.org "$S" >"$T/rec" 2>&1 || fail "publish after state B failed"
    grep -qi 'interrupted' "$T/rec" && ok "state B: next publish completes the interrupted one" ||
        fail "state B: recovery not reported: $(cat "$T/rec")"
    [ "$(version)" -eq $((v + 2)) ] && ok "state B: then publishes version $((v + 2))" ||
        fail "state B: version $(version), wanted $((v + 2))"
else
    fail "could not set up state B"
fi

# A final, uninterrupted publish leaves a clean verifying pair and no .next.
"$PUB" -q -s "$SK" --origin https://example.org "$S" || fail "final publish failed"
[ "$(state)" = A ] && ok "final publish verifies with minisign" || fail "final publish does not verify"
[ ! -e "$M.minisig.next" ] && ok "no .next left" || fail "stale $M.minisig.next left"
left=$(find "$S/.well-known/patient" -type f ! -name manifest.json ! -name manifest.json.minisig | wc -l)
[ "$left" -eq 0 ] && ok "no temporary files left beside the manifest" ||
    echo "note: $left temporary files left beside the manifest by killed publishes: $(ls -A "$S/.well-known/patient" | tr '\n' ' ')"
[ "$fails" -eq 0 ]
