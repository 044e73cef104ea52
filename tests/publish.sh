#!/bin/sh
# patient-publish end to end: publish a sample tree, verify with stock
# minisign, tamper, re-publish, refuse unsafe trees, sign a response.
set -u
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
PUB="$B/publisher/patient-publish"
KEYDIR="$D"

command -v minisign >/dev/null 2>&1 || { echo "SKIP: minisign not installed"; exit 77; }
built "$PUB"

workdir publish
T=$W
tally

# git does not keep 0600, and key loading refuses group/world-readable keys.
cp "$KEYDIR/manifest_key.key" "$KEYDIR/manifest_key.pub" "$T/"
chmod 600 "$T/manifest_key.key"
SK="$T/manifest_key.key"
PK="$T/manifest_key.pub"

S="$T/site"
mkdir -p "$S/css" "$S/blog/2026" "$S/img"
printf '<!doctype html><title>home</title>\n' >"$S/index.html"
printf 'body{}\n' >"$S/css/site.css"
printf '<p>post</p>\n' >"$S/blog/2026/index.html"
printf 'spaces and unicode\n' >"$S/blog/2026/$(printf 'caf\303\251 menu.txt')"
: >"$S/img/empty.png"
M="$S/.well-known/patient/manifest.json"

# 1. publish and verify with stock minisign
"$PUB" -q -s "$SK" --origin https://example.org --at 2026-01-01T00:00:00Z "$S"
rc=$?
[ $rc -eq 0 ] && ok "publish exit 0" || fail "publish exit $rc"
out=$(minisign -Vm "$M" -p "$PK" 2>&1)
if [ $? -eq 0 ]; then ok "minisign verifies"; else fail "minisign rejects: $out"; fi
case "$out" in
*"Trusted comment: patient-manifest origin=https://example.org version=1 expires=2026-01-08T00:00:00Z"*)
    ok "trusted comment" ;;
*) fail "trusted comment: $out" ;;
esac
grep -q '"/blog/2026/caf%C3%A9%20menu.txt": {' "$M" && ok "encoded path" || fail "encoded path"
grep -q '"/blog/2026/": {' "$M" && ok "folder index" || fail "folder index"
grep -q '"/": {' "$M" && ok "root index" || fail "root index"
if grep -q 'manifest.json' "$M"; then fail "manifest lists itself"; else ok "manifest not listed"; fi

# The bytes are what Python's json.dumps(indent=2, sort_keys=True) gives.
if command -v /usr/bin/python3 >/dev/null 2>&1; then
    /usr/bin/python3 - "$M" <<'EOF' && ok "canonical JSON" || fail "not canonical JSON"
import json, sys
b = open(sys.argv[1], encoding="utf-8").read()
sys.exit(0 if json.dumps(json.loads(b), indent=2, sort_keys=True, ensure_ascii=False) + "\n" == b else 1)
EOF
fi

# 2. deterministic: same tree and time, any thread count, same bytes
"$PUB" -q -j1 -s "$SK" --origin https://example.org --at 2026-01-01T00:00:00Z --version 1 \
    -o "$T/a.json" "$S" &&
"$PUB" -q -j2 -s "$SK" --origin https://example.org --at 2026-01-01T00:00:00Z --version 1 \
    -o "$T/b.json" "$S" &&
cmp -s "$T/a.json" "$T/b.json" && cmp -s "$T/a.json.minisig" "$T/b.json.minisig" &&
cmp -s "$T/a.json" "$M" && ok "deterministic" || fail "not deterministic"

# 3. tampering: minisign must reject
cp "$M" "$T/good.json"
sed 's/"size": 7,/"size": 8,/' "$T/good.json" >"$M"
if cmp -s "$M" "$T/good.json"; then fail "tamper had no effect"; fi
if minisign -Vm "$M" -p "$PK" >/dev/null 2>&1; then fail "minisign accepts tampered"; else ok "tampered rejected"; fi

# 4. re-publish increments the version
"$PUB" -q -s "$SK" --origin https://example.org "$S" || fail "republish"
out=$(minisign -Vm "$M" -p "$PK" 2>&1) || fail "republish does not verify"
case "$out" in *"version=2 "*) ok "version 2" ;; *) fail "version: $out" ;; esac
"$PUB" -q -s "$SK" --origin https://example.org "$S"
grep -q '"version": 3$' "$M" && ok "version 3" || fail "version 3"
[ -e "$M.minisig.next" ] && fail "leftover .next"
ls "$S/.well-known/patient/" | grep -q tmp && fail "leftover temp file"

# 5. unsafe trees: exit 2 with a message naming the file
ln -s /etc/passwd "$S/css/passwd"
err=$("$PUB" -q -s "$SK" --origin https://example.org "$S" 2>&1)
rc=$?
[ $rc -eq 2 ] && ok "symlink out: exit 2" || fail "symlink out: exit $rc"
case "$err" in
*"css/passwd: symlink leaves the site folder"*) ok "symlink message" ;;
*) fail "symlink message: $err" ;;
esac
grep -q '"version": 3$' "$M" && ok "previous manifest intact" || fail "previous manifest changed"
rm "$S/css/passwd"
mkfifo "$S/css/pipe"
err=$("$PUB" -q -s "$SK" --origin https://example.org "$S" 2>&1)
rc=$?
[ $rc -eq 2 ] && case "$err" in *"css/pipe"*FIFO*) true ;; *) false ;; esac &&
    ok "FIFO refused" || fail "FIFO: exit $rc: $err"
rm "$S/css/pipe"

# 6. usage errors
"$PUB" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "no args: exit 2" || fail "no args: exit $rc"
"$PUB" -s "$SK" --origin https://example.org/path "$S" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "origin with path: exit 2" || fail "origin with path: exit $rc"
"$PUB" -s "$T/nokey" --origin https://example.org "$S" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q "nokey" "$T/err" && ok "missing key named" || fail "missing key: $rc"
"$PUB" --help | grep -q "minisign -Vm" && ok "--help" || fail "--help"

# 7. a dynamic response
printf '{"now": 1}\n' >"$T/body.json"
hdr=$("$PUB" --response -s "$SK" --url 'https://example.org/api?q=1' --at 2026-01-01T00:00:00Z \
    "$T/body.json")
case "$hdr" in "Patient-Origin: "*.*.*) ok "Patient-Origin line" ;; *) fail "response: $hdr" ;; esac
if /usr/bin/python3 -c 'import jwcrypto' 2>/dev/null; then
    /usr/bin/python3 - "${hdr#Patient-Origin: }" "$PK" "$T/body.json" <<'EOF' &&
import base64, hashlib, json, sys
from jwcrypto import jwk, jws
tok, pubfile, body = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
raw = base64.b64decode(open(pubfile).read().splitlines()[1])
key = jwk.JWK(kty="OKP", crv="Ed25519", x=base64.urlsafe_b64encode(raw[10:]).rstrip(b"=").decode())
j = jws.JWS()
j.deserialize(tok)
j.verify(key)
p = json.loads(j.payload)
assert j.jose_header["typ"] == "patient-origin+jws"
assert p["url"] == "https://example.org/api?q=1" and p["size"] == len(body)
assert p["integrity"] == "sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode()
assert p["date"] == "2026-01-01T00:00:00Z" and p["expires"] == "2026-01-01T01:00:00Z"
EOF
    ok "jwcrypto verifies Patient-Origin" || fail "jwcrypto rejects Patient-Origin"
fi

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all ok"
