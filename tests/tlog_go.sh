#!/bin/sh
# Independent check with Go's golang.org/x/mod/sumdb/{note,tlog} (Debian's
# golang-golang-x-mod-dev, built offline): patient publishes a log of 300+
# entries as tiles and a signed checkpoint note; the Go program verifies the
# note, the tiles against its root, an inclusion proof per entry, and that
# patient's consistency proof for every pair of sizes 1 <= m <= n <= 300
# equals Go's. Then forged twins: a note signed by another key, a corrupted
# tile, a corrupted proof.
set -eu
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
P="$B/cli/patient"
T="$B/tests/tlog_tool"
GOSRC=/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog
if ! command -v go >/dev/null 2>&1 || [ ! -d "$GOSRC" ]; then
    echo "SKIP: golang-go / golang-golang-x-mod-dev not installed (scripts/deps)"
    exit 77
fi
# Go leaves its build cache read-only.
before_exit() { chmod -R u+w "$W" 2>/dev/null; }
workdir tlog_go

# Offline: GOPATH mode against Debian's source tree, no module proxy.
mkdir -p gopath/src/interop gocache
cp "$S/tests/go/tlog_interop.go" gopath/src/interop/main.go
GO111MODULE=off GOPATH="$W/gopath:/usr/share/gocode" GOCACHE="$W/gocache" GOFLAGS= \
    GOPROXY=off CGO_ENABLED=0 go build -o interop interop >out 2>err || fail "go build"
ok "Go interop program built offline against Debian's x/mod"

"$P" keygen -W -p k.pub -s k.sec >/dev/null
"$P" keygen -W -p other.pub -s other.sec >/dev/null
# 300 events, a checkpoint every 7 (published by the writer as it goes).
"$T" gen k.sec a.log 300 7 pub || fail "gen"
"$T" pairs a.log 300 >pairs || fail "pairs"
[ "$(wc -l <pairs)" = 45150 ] || fail "45150 pairs"
vkey=$("$P" audit note-key --pub k.pub --log a.log)
[ "$(rc ./interop pub "$vkey" pairs)" = 0 ] || fail "Go accepts patient's log"
grep -q '45150 consistency proofs equal Go' out || fail "Go summary"
cat out
ok "Go verifies the note, tiles, every inclusion proof; 45150 consistency proofs equal Go's"

# The CLI's proof is the library's; Go checks a far pair too.
[ "$(rc "$P" audit consistency a.log 1 300)" = 0 ] || fail "audit consistency"
cp out c.json
[ "$(rc "$P" audit verify-consistency c.json)" = 0 ] && grep -q 'consistent: tree 1:' out ||
    fail "verify-consistency"
python3 - <<'PY' || fail "forge the proof"
import json
d = json.load(open("c.json"))
h = bytearray(__import__("base64").b64decode(d["proof"][2])); h[0] ^= 1
d["proof"][2] = __import__("base64").b64encode(bytes(h)).decode()
json.dump(d, open("bad.json", "w"))
PY
[ "$(rc "$P" audit verify-consistency bad.json)" = 1 ] && grep -q 'INCONSISTENT' out &&
    grep -q 'hash.mismatch\|\[hash' out || fail "forged proof: exit 1"
ok "audit consistency / verify-consistency, forged twin refused"

# Forged twins for Go: another key; a corrupted tile.
vother=$("$P" audit note-key --pub other.pub --log-origin "$(head -1 pub/checkpoint)")
[ "$(rc ./interop pub "$vother")" = 1 ] && grep -q 'checkpoint note' out ||
    fail "Go refuses the note under another key"
cp -r pub bad
printf 'X' | dd of=bad/tile/0/000 bs=1 seek=5 conv=notrunc 2>/dev/null
[ "$(rc ./interop bad "$vkey")" = 1 ] && grep -q 'FAIL' out || fail "Go refuses a corrupted tile"
ok "Go refuses another key's note and a corrupted tile"

# verify --checkpoint: a tree head kept from an earlier audit.
head=$(python3 -c 'import json; d=json.load(open("c.json")); print("%d:%s" % (d["new_size"], d["new_root"]))')
[ "$(rc "$P" audit verify a.log --pub k.pub --checkpoint "$head")" = 0 ] || fail "verify --checkpoint"
bad=$(python3 -c 'import json,base64; d=json.load(open("c.json")); r=bytearray(base64.b64decode(d["new_root"])); r[0]^=1; print("%d:%s" % (d["new_size"], bytes(r).hex()))')
[ "$(rc "$P" audit verify a.log --pub k.pub --checkpoint "$bad")" = 1 ] && grep -q 'rewritten' out ||
    fail "verify --checkpoint with another root: rewritten, exit 1"
[ "$(rc "$P" audit verify a.log --checkpoint 5:nothex)" = 2 ] || fail "--checkpoint malformed: usage"
ok "verify --checkpoint SIZE:ROOT (base64 and hex), forged twin rewritten"
