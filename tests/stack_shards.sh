#!/usr/bin/env bash
# Sharded manifests through real nginx (scripts/stack; the verifier talks
# to nginx directly): sites of 1, 1,000 and 200,000 resources. The first
# keeps one manifest file; the others are sharded, one level and two. Every
# sampled page verifies, each with its forged twin (a changed body:
# invalid, body.mismatch). On the 1,000 site each way of hiding or
# replacing a shard gives its own verdict and code: a file added after the
# publish (not listed), the leaf from the previous version served in place
# of the new one (rollback), another bin's leaf in its place (misplaced),
# the leaf withheld (HTTP 404), bytes changed in the leaf the signed
# top-level names (hash); on the 200,000 site an inner shard withheld. A
# publish after one change rewrites one leaf, and a verifier with the
# previous version cached fetches only that leaf. Evidence bundles carry
# the shards (offline re-verification). A kill -9 during a sharded publish
# leaves a state stock minisign verifies and that verifies page by page.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/stack_prelude.sh"
SHARD_PATH=$top_srcdir/tests/shard_path.py
stack_need minisign
# All in tmpfs when there is one: making 200,000 files on a disk shared
# with other work costs a minute of I/O wait that tests nothing.
if [[ -d /dev/shm && -w /dev/shm ]]; then TMPDIR=/dev/shm stack_workdir patient-shards
else stack_workdir patient-shards; fi
sites=$work

# gen DIR N: N small pages in folders of 1,000, index.html at the top.
gen() {
    "$PY" - "$1" "$2" <<'P'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n - 1):
    sub = os.path.join(d, "p%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "%d.html" % i), "w") as f:
        f.write("<p>page %d</p>\n" % i)
with open(os.path.join(d, "index.html"), "w") as f:
    f.write("<h1>home</h1>\n")
# Old mtimes: a file modified within 2 s of a publish is never recorded
# in the publish state (docs/format/manifest.md).
for root, dirs, files in os.walk(d):
    for x in files:
        os.utime(os.path.join(root, x), (1577836800, 1577836800))
P
}

www=$sites/www
mkdir -p "$www"
stacks+=("$work/stack")
stack_start "$www"
"$PATIENT_BIN" keygen -W -p "$work/pub.pub" -s "$work/pub.key" >/dev/null
PUBKEY=$(sed -n 2p "$work/pub.pub")
cat >"$work/policy.json" <<EOF
{ "patient": 1, "type": "policy", "publishers": { "$ORIGIN_URL": ["$PUBKEY"] },
  "middleboxes": [] }
EOF
M=$www/.well-known/patient
publish() { "$PUBLISH" -s "$work/pub.key" --origin "$ORIGIN_URL" --state "$work/state" --stats "$@" "$www"; }
field() { "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["verdict"] if sys.argv[2]=="verdict" else (r["results"][0]["code"] if r["results"] else "ok"))' "$1" "$2" 2>/dev/null || echo "?"; }
# pverify NAME PATH [args]: sets rc, verdict, code (first result's code).
pverify() {
    local name=$1 path=$2; shift 2
    rc=0
    "$VERIFY" --json --policy "$work/policy.json" --no-state --timeout 30 "$@" \
        "$ORIGIN_URL$path" >"$work/$name.json" 2>"$work/$name.err" || rc=$?
    verdict=$(field "$work/$name.json" verdict)
    code=$(field "$work/$name.json" code)
}
expect() { # expect WHAT RC VERDICT CODE
    if [[ "$rc $verdict $code" == "$2 $3 $4" ]]; then ok "$1: $3 $4 (exit $2)"
    else not_ok "$1: got $verdict $code (exit $rc), want $3 $4 (exit $2)"; fi
}
# forged twin of a verified page: its body changed on the server
twin() { # twin WHAT PATH CACHE
    local f=$www$2 saved
    saved=$(cat "$f")
    printf 'forged\n' >"$f"
    pverify twin "$2" --cache-dir "$3"
    expect "$1 (forged twin: body changed)" 1 invalid body.mismatch
    printf '%s\n' "$saved" >"$f"
    touch -d '2020-01-01 00:00:00' "$f"
}
leaf() { "$PY" "$SHARD_PATH" "$M" "$1" | tail -n 1; }

# ---- 1 resource: one file -------------------------------------------------
printf '<h1>home</h1>\n' >"$www/index.html"
publish >"$work/pub1.out"
check "1 resource: one manifest file, no shards" \
    bash -c "[[ -z \$(ls '$M/shards') ]] && ! grep -q shard_bits '$M/manifest.json'"
check "1 resource: --stats says so" grep -q '^shards: none' "$work/pub1.out"
pverify one /index.html --cache-dir "$work/c1"
expect "1 resource: /index.html" 0 verified ok
twin "1 resource: /index.html" /index.html "$work/c1"

# ---- 1,000 resources: one level of shards ---------------------------------
rm -rf "$www"
gen "$www" 1000
publish >"$work/pub2.out"
check "1,000 resources: published in shards ($(sed -n 3p "$work/pub2.out"))" \
    grep -q '^shards: 16 ' "$work/pub2.out"
check "1,000 resources: patient inspect shows the layout" \
    bash -c "'$PATIENT_BIN' inspect --json '$M/manifest.json' | grep -Eq '\"layout\":[[:space:]]*\"16\"'"
check "1,000 resources: stock minisign verifies the top-level" \
    minisign -Vqm "$M/manifest.json" -p "$work/pub.pub"
for p in /index.html / /p000/0.html /p000/517.html /p000/998.html; do
    pverify k "$p" --cache-dir "$work/c2"
    expect "1,000 resources: $p" 0 verified ok
done
twin "1,000 resources: /p000/517.html" /p000/517.html "$work/c2"
check "1,000 resources: the cache holds only the shards used" \
    bash -c "(( \$(ls '$work/c2/shards' | wc -l) <= 5 ))"

# Offline: the bundle carries the shard.
pverify bundle /p000/517.html --cache-dir "$work/c2" --bundle "$work/b.json"
rc=0
"$VERIFY" --json --policy "$work/policy.json" --offline "$work/b.json" >"$work/off.json" 2>&1 || rc=$?
verdict=$(field "$work/off.json" verdict) code=$(field "$work/off.json" code)
expect "1,000 resources: offline bundle" 0 verified ok
"$PY" - "$work/b.json" <<'P'
import json, sys, base64
b = json.load(open(sys.argv[1]))
s = base64.b64decode(b["shards"][0]["bytes"]).replace(b'"size": 15', b'"size": 16', 1)
b["shards"][0]["bytes"] = base64.b64encode(s).decode()
json.dump(b, open(sys.argv[1], "w"))
P
rc=0
"$VERIFY" --json --policy "$work/policy.json" --offline "$work/b.json" >"$work/off.json" 2>&1 || rc=$?
verdict=$(field "$work/off.json" verdict) code=$(field "$work/off.json" code)
expect "1,000 resources: offline bundle with a changed shard" 1 invalid manifest.shard.hash

# Not listed: a file added after the publish.
printf 'new\n' >"$www/p000/new.html"
pverify added /p000/new.html --cache-dir "$work/c3"
expect "1,000 resources: a page not listed" 3 unverifiable manifest.resource.missing
rm "$www/p000/new.html"

# A publish after one change: one leaf rewritten, the verifier with the
# previous version cached fetches only that one shard.
page=/p000/517.html
old_leaf=$(leaf $page)
cp "$M/shards/$old_leaf.json" "$work/old_leaf.json"
pverify warm $page --cache-dir "$work/c4"
before=$(ls "$work/c4/shards" | wc -l)
printf '<p>page 517, edited</p>\n' >"$www$page"
touch -d '2020-01-02 00:00:00' "$www$page"
publish >"$work/pub3.out"
check "one change: one shard written, 15 kept ($(sed -n 3p "$work/pub3.out"))" \
    grep -q '^shards: 16 (.*), wrote 1 (.*), kept 15 unchanged' "$work/pub3.out"
pverify warm2 $page --cache-dir "$work/c4"
expect "one change: $page after the publish" 0 verified ok
check "one change: the verifier fetched one new shard" \
    test "$(ls "$work/c4/shards" | wc -l)" -eq $((before + 1))
new_leaf=$(leaf $page)

# Rollback: the server answers for the new leaf with the old one.
cp "$M/shards/$new_leaf.json" "$work/new_leaf.json"
cp "$work/old_leaf.json" "$M/shards/$new_leaf.json"
pverify rollback $page --cache-dir "$work/c5"
expect "shard from the previous version" 1 invalid manifest.shard.rollback
# Swapped: another bin's leaf in its place.
other=$(leaf /p000/0.html)
[[ "$other" != "$new_leaf" ]] || other=$(leaf /p000/1.html)
cp "$M/shards/$other.json" "$M/shards/$new_leaf.json"
pverify swapped $page --cache-dir "$work/c6"
expect "shard swapped with another bin's" 1 invalid manifest.shard.misplaced
# Withheld: 404.
rm "$M/shards/$new_leaf.json"
pverify withheld $page --cache-dir "$work/c7"
expect "shard withheld (HTTP 404)" 3 unverifiable manifest.shard.missing
# Wrong hash: the top-level names these bytes' hash no more.
sed 's/"size": 15,/"size": 16,/' "$work/new_leaf.json" >"$M/shards/$new_leaf.json"
pverify wronghash $page --cache-dir "$work/c8"
expect "shard bytes not the ones the top-level names" 1 invalid manifest.shard.hash
cp "$work/new_leaf.json" "$M/shards/$new_leaf.json"
pverify restored $page --cache-dir "$work/c8"
expect "the right shard again" 0 verified ok

# kill -9 during a sharded publish (after the shards, before or after the
# top-level): what is on disk is a complete state minisign verifies, and
# its pages verify.
for d in 0.02 0.1 0.3; do
    for i in $(seq 0 40); do printf '<p>v%s %d</p>\n' "$d" "$i" >"$www/p000/$i.html"; done
    "$PUBLISH" -q -s "$work/pub.key" --origin "$ORIGIN_URL" --state "$work/state" --rehash "$www" &
    ppid=$!
    sleep $d
    kill -9 $ppid 2>/dev/null || true
    wait $ppid 2>/dev/null || true
    check "kill -9 after ${d} s of a publish: stock minisign verifies what is left" \
        minisign -Vqm "$M/manifest.json" -p "$work/pub.pub"
    pverify afterkill /p000/700.html --cache-dir "$work/c9$d"
    expect "kill -9 after ${d} s of a publish: /p000/700.html" 0 verified ok
done
publish >/dev/null
pverify afterkill /p000/3.html --cache-dir "$work/c9"
expect "after kill -9 and a new publish: /p000/3.html" 0 verified ok

# ---- 200,000 resources: two levels ------------------------------------------
rm -rf "$www"
gen "$www" 200000
publish >"$work/pub4.out"
check "200,000 resources: two levels ($(sed -n 3p "$work/pub4.out"))" \
    grep -q '"shard_bits": \[' "$M/manifest.json"
check "200,000 resources: patient inspect shows the layout" \
    bash -c "'$PATIENT_BIN' inspect --json '$M/manifest.json' | grep -Eq '\"layout\":[[:space:]]*\"64 x 64\"'"
check "200,000 resources: top-level under 8 KiB" \
    test "$(stat -c %s "$M/manifest.json")" -lt 8192
for p in /index.html /p000/0.html /p123/123456.html /p199/199998.html; do
    pverify big "$p" --cache-dir "$work/c10"
    expect "200,000 resources: $p" 0 verified ok
done
twin "200,000 resources: /p123/123456.html" /p123/123456.html "$work/c10"
inner=$("$PY" "$SHARD_PATH" "$M" /p077/77777.html | sed -n 1p)
mv "$M/shards/$inner.json" "$work/inner.json"
pverify inner /p077/77777.html --cache-dir "$work/c11"
expect "200,000 resources: inner shard withheld" 3 unverifiable manifest.shard.missing
mv "$work/inner.json" "$M/shards/$inner.json"

echo "1..$n"
(( fails == 0 ))
