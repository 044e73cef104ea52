#!/usr/bin/env bash
# End-to-end on the real loopback stack (scripts/stack): nginx serves a
# published copy of tests/site, Squid sends responses through c-icap with
# srv_patient. Checks the edited body, the Patient-Change header (verified by
# an independent JOSE library, python3-jwcrypto), pass-through of other
# content, the audit log (one change entry per modified response, verifies),
# the MaxBody path, and patient-verify's verdicts through the proxy and direct.
# Needs: nginx, squid, c-icap, curl, /usr/bin/python3 + python3-jwcrypto
# (scripts/deps). Exit 77 (skip) only when the module was not built
# (configure --without-icap) or a server binary is missing.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/stack_prelude.sh"
stack_need
"$PY" -c 'import jwcrypto' 2>/dev/null || { echo "python3-jwcrypto missing (scripts/deps)"; exit 1; }
stack_workdir patient-e2e
stacks+=("$work/stack")

cp -r "$top_srcdir/tests/site" "$work/site"
chmod -R u+w "$work/site"    # the source tree may be read-only (make distcheck)
chmod -R u+w "$work/site"
# A body over the stack's patient.MaxBody (16 MiB) with a <body> tag the
# banner rule would match: it must pass unchanged, with an event logged.
{ printf '<html><body>\n'; head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' 'a'; printf '\n</body></html>\n'; } >"$work/site/big.html"

stack_start "$work/site"
echo "# origin $ORIGIN_URL proxy $PROXY_URL icap $ICAP_URL"

# Publish the served site now that its origin (port) is known.
"$PATIENT_BIN" keygen -W -p "$work/pub.pub" -s "$work/pub.key" >/dev/null
"$PUBLISH" -q -s "$work/pub.key" --origin "$ORIGIN_URL" "$work/site" 2>/dev/null \
    || "$PUBLISH" -s "$work/pub.key" --origin "$ORIGIN_URL" "$work/site" >/dev/null
check "manifest published" test -s "$work/site/.well-known/patient/manifest.json"

changes=0   # modified responses seen through the proxy
fetch() { # fetch NAME PATH — through the proxy into $work/NAME.{hdr,body}
    curl -sS --max-time 30 -D "$work/$1.hdr" -o "$work/$1.body" -x "$PROXY_URL" "$ORIGIN_URL$2"
    if grep -qi '^Patient-Change:' "$work/$1.hdr"; then changes=$((changes + 1)); fi
}
count_pc() { grep -ci '^Patient-Change:' "$1" || true; }

# ---- the edited page
fetch index /index.html
check "index: 200" grep -q '^HTTP/1.1 200' "$work/index.hdr"
check "index: tracker scripts removed" bash -c "! grep -Eq 'tracker\\.example|analytics\\.example' '$work/index.body'"
check "index: banner inserted" grep -q 'class="patient-notice"' "$work/index.body"
check "index: EICAR removed" bash -c "! grep -q 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE' '$work/index.body'"
check "index: exactly one Patient-Change" test "$(count_pc "$work/index.hdr")" = 1
check "index: no ETag on the changed body" bash -c "! grep -qi '^ETag:' '$work/index.hdr'"
len=$(sed -n 's/^Content-Length: *\([0-9]*\).*/\1/Ip' "$work/index.hdr" | tr -d '\r')
check "index: Content-Length matches the edited body" test "$len" = "$(stat -c %s "$work/index.body")"

# Independent JOSE check: jwcrypto, OKP JWK from the 32-byte key in MBOX_PUB.
sed -n 's/^Patient-Change: *//Ip' "$work/index.hdr" | tr -d '\r' >"$work/index.jws"
if "$PY" - "$MBOX_PUB" "$work/index.jws" "$ORIGIN_URL/index.html" "$work/index.body" <<'PY'
import base64, hashlib, json, sys
from jwcrypto import jwk, jws
pubfile, jwsfile, url, bodyfile = sys.argv[1:5]
line = [l for l in open(pubfile).read().splitlines() if l and not l.startswith("untrusted comment:")][0]
raw = base64.b64decode(line, validate=True)
assert len(raw) == 42 and raw[:2] == b"Ed"
kid = "%016X" % int.from_bytes(raw[2:10], "little")
key = jwk.JWK(kty="OKP", crv="Ed25519", x=base64.urlsafe_b64encode(raw[10:42]).rstrip(b"=").decode())
t = jws.JWS()
t.allowed_algs = ["EdDSA"]
t.deserialize(open(jwsfile).read().strip())
t.verify(key)
hdr = t.jose_header
assert hdr["alg"] == "EdDSA" and hdr["kid"].upper() == kid, hdr
p = json.loads(t.payload)
assert p["url"] == url, p["url"]
assert p["hop"] == 1, p["hop"]
body = open(bodyfile, "rb").read()
sri = "sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode()
assert p["out"]["integrity"] == sri and p["out"]["size"] == len(body), (p["out"], sri)
reasons = sorted({e["reason"] for e in p["edits"]})
assert reasons == ["banner.inserted", "malware.removed", "tracker.removed"], reasons
PY
then ok "index: jwcrypto verifies the descriptor (kid, url, hop 1, out hash, reasons)"
else not_ok "index: jwcrypto verifies the descriptor"; fi

# ---- the ISTag names the rules loaded: "pt1-" and 20 hex digits of
# SHA-256(key id, public key, name, NUL, SHA-256(rule file)), from the
# service's own configuration (an ISTag of other rule bytes does not match)
iport=${ICAP_URL#icap://127.0.0.1:}; iport=${iport%%/*}
timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/"$1" || exit 1
    printf "OPTIONS %s ICAP/1.0\r\nHost: 127.0.0.1:%s\r\nEncapsulated: null-body=0\r\n\r\n" "$2" "$1" >&3
    while IFS= read -r l <&3; do l=${l%"$(printf "\r")"}; [ -z "$l" ] && break; printf "%s\n" "$l"; done' \
    _ "$iport" "$ICAP_URL" >"$work/options.hdr" 2>/dev/null || true
if "$PY" - "$STACK_DIR/c-icap.conf" "$MBOX_PUB" "$work/options.hdr" <<'PY'
import base64, hashlib, re, sys
conf, pubfile, hdrfile = sys.argv[1:4]
cfg = dict(re.match(r"patient\.(\w+) (.*)", l).groups() for l in open(conf).read().splitlines()
           if l.startswith("patient."))
name = cfg["Name"].strip('"').encode()
line = [l for l in open(pubfile).read().splitlines() if l and not l.startswith("untrusted comment:")][0]
raw = base64.b64decode(line, validate=True)
rules = open(cfg["Rules"], "rb").read()
def tag(r):
    return "pt1-" + hashlib.sha256(raw[2:42] + name + b"\0" + hashlib.sha256(r).digest()).hexdigest()[:20]
hdr = [l for l in open(hdrfile).read().splitlines() if l.lower().startswith("istag:")]
assert len(hdr) == 1 and tag(rules) in hdr[0], (hdr, tag(rules))
assert tag(rules + b"\n") not in hdr[0]
PY
then ok "ISTag names the key, the name and the rule bytes loaded"
else not_ok "ISTag names the key, the name and the rule bytes loaded"; cat "$work/options.hdr"; fi

# ---- pass-through
fetch css /css/site.css
check "css: unchanged" cmp -s "$work/css.body" "$work/site/css/site.css"
check "css: no Patient-Change" test "$(count_pc "$work/css.hdr")" = 0
fetch png /img/logo.png
check "png: unchanged" cmp -s "$work/png.body" "$work/site/img/logo.png"
fetch manifest /.well-known/patient/manifest.json
check "manifest: never changed" cmp -s "$work/manifest.body" "$work/site/.well-known/patient/manifest.json"
fetch big /big.html
check "big.html (over MaxBody): unchanged" cmp -s "$work/big.body" "$work/site/big.html"
check "big.html: no Patient-Change" test "$(count_pc "$work/big.hdr")" = 0

# ---- 3 pages, 2 modified
before=$changes
fetch p1 /index.html
fetch p2 /news/article.html
fetch p3 /css/site.css
check "3 pages: 2 modified" test $((changes - before)) = 2
check "article: exactly one Patient-Change" test "$(count_pc "$work/p2.hdr")" = 1

"$LOGCHECK" "$AUDIT_LOG" "$MBOX_PUB" >"$work/log1.txt" || true
check "audit log verifies (deep, with the middlebox key)" grep -qx 'result ok' "$work/log1.txt"
check "audit log: one change entry per modified response ($changes)" grep -qx "changes $changes" "$work/log1.txt"
check "audit log: body.too_large event for big.html" grep -qx 'event body.too_large' "$work/log1.txt"

# ---- patient-verify
PUBKEY=$(sed -n 2p "$work/pub.pub")
MBKEY=$(sed -n 2p "$MBOX_PUB")
cat >"$work/policy-trust.json" <<EOF
{
  "patient": 1,
  "type": "policy",
  "publishers": { "$ORIGIN_URL": ["$PUBKEY"] },
  "middleboxes": [
    { "name": "stack", "key": "$MBKEY", "reasons": ["tracker.*", "malware.*", "banner.*"],
      "paths": ["/*"], "origins": ["*"], "max_edits": 100, "insert": true }
  ],
  "require": { "disclosure": false, "proof": "attested" }
}
EOF
cat >"$work/policy-nomb.json" <<EOF
{
  "patient": 1,
  "type": "policy",
  "publishers": { "$ORIGIN_URL": ["$PUBKEY"] },
  "middleboxes": [],
  "require": { "disclosure": false, "proof": "attested" }
}
EOF
has_code() { "$PY" -c 'import json,sys; sys.exit(0 if any(r["code"]==sys.argv[2] for r in json.load(open(sys.argv[1]))["results"]) else 1)' "$1" "$2"; }
pverify() { # pverify OUT POLICY [args...] — sets rc
    local out=$1 pol=$2; shift 2
    rc=0
    "$VERIFY" --json --policy "$pol" --no-state --cache-dir "$work/cache" --timeout 30 "$@" \
        >"$work/$out.json" 2>"$work/$out.err" || rc=$?
}
pverify v1 "$work/policy-trust.json" --proxy "$PROXY_URL" "$ORIGIN_URL/index.html"
changes=$((changes + 1))
check "verify via proxy, middlebox trusted: exit 0 (got $rc)" test "$rc" = 0
check "verify via proxy, middlebox trusted: modified (got $(verdict "$work/v1.json"))" test "$(verdict "$work/v1.json")" = modified
pverify v2 "$work/policy-nomb.json" --proxy "$PROXY_URL" "$ORIGIN_URL/index.html"
changes=$((changes + 1))
check "verify via proxy, middlebox unknown: exit 1 (got $rc)" test "$rc" = 1
check "verify via proxy, middlebox unknown: invalid" test "$(verdict "$work/v2.json")" = invalid
pverify v3 "$work/policy-trust.json" "$ORIGIN_URL/index.html"
check "verify direct: exit 0 (got $rc)" test "$rc" = 0
check "verify direct: verified (got $(verdict "$work/v3.json"))" test "$(verdict "$work/v3.json")" = verified
printf '<!-- changed after publishing -->\n' >>"$work/site/js/app.js"
pverify v4 "$work/policy-trust.json" "$ORIGIN_URL/js/app.js"
check "verify direct, file changed after publishing: exit 1 (got $rc)" test "$rc" = 1
check "verify direct, file changed after publishing: invalid" test "$(verdict "$work/v4.json")" = invalid
check "verify direct, file changed after publishing: body.mismatch" has_code "$work/v4.json" body.mismatch

# ---- the log after everything, and after a clean shutdown (final checkpoint)
"$STACK" stop "$work/stack" >/dev/null 2>&1
"$LOGCHECK" "$AUDIT_LOG" "$MBOX_PUB" >"$work/log2.txt" || true
check "audit log verifies after shutdown" grep -qx 'result ok' "$work/log2.txt"
check "audit log: $changes change entries in all" grep -qx "changes $changes" "$work/log2.txt"
last=$(tail -n 1 "$AUDIT_LOG" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["kind"])' 2>/dev/null || true)
check "audit log ends with a checkpoint (${last:-?})" test "$last" = checkpoint

if (( fails )); then
    for f in v1 v2 v3 v4; do [[ -s "$work/$f.json" ]] && { echo "---- $f"; head -c 3000 "$work/$f.json"; cat "$work/$f.err"; }; done
    cat "$work/log1.txt" "$work/log2.txt" 2>/dev/null
    echo "$fails of $n checks failed"
    exit 1
fi
echo "all $n checks passed"
