#!/usr/bin/env bash
# HTTPS end to end on the real loopback stack (scripts/stack): nginx over TLS
# with a throw-away origin CA, Squid (squid-openssl) bumping with its own
# interception CA and passing the upstream TLS of each transaction to
# srv_patient over ICAP. Each case asserts patient-verify's exact verdict and
# the exact set of invalid result codes:
#   direct                           -> verified
#   through the bumping middlebox    -> modified, the hop's TLS facts equal
#                                       what nginx logged for Squid's request
#   nginx TLS 1.2 only, policy 1.3   -> invalid, policy.tls.weak (1.2 policy: modified)
#   middlebox accepts an origin certificate it cannot verify
#                                    -> invalid, change.tls.unverified
# and who decrypted (the origin announces its TLS key in the manifest, the
# middlebox its interception CA in its signed disclosure):
#   direct                           -> tls.intercepted.none
#   the bumping middlebox, may_decrypt -> tls.intercepted.allowed, by corp-proxy
#   the same without may_decrypt     -> invalid, tls.intercepted.denied
#   a second bumping proxy (echo, nobody names its CA), body untouched
#                                    -> invalid, tls.intercepted.unknown
#   a 1 MB page through the bumping middlebox (streamed, by reference)
#                                    -> modified, the same TLS facts; its
#                                       bundle with another page's descriptor
#                                       -> invalid, change.url.mismatch
#   malformed pins                   -> refused by disclose and publish
# and the evidence bundle, offline: the recorded chain judged as online
# (allowed, corp-proxy); swapped for an unknown CA -> invalid
# tls.intercepted.unknown; malformed -> refused
# Needs: nginx, squid-openssl, c-icap, curl, openssl, /usr/bin/python3.
# Exit 77 (skip) only when the module was not built or a server is missing.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/stack_prelude.sh"
stack_need openssl
[[ -x /usr/lib/squid/security_file_certgen ]] || skip "squid-openssl not installed (scripts/deps)"
stack_workdir patient-tls

cp -r "$top_srcdir/tests/site" "$work/site"
chmod -R u+w "$work/site"
# a 1 MB page (over HoldMax: streamed, descriptor by reference) the banner
# rule edits
"$PY" -c 'import sys
h = b"<html><head><title>t</title></head><body class=\"x\"><div>"; t = b"</div>\n</html>\n"
open(sys.argv[1], "wb").write(h + b"a" * (1000000 - len(h) - len(t)) + t)' "$work/site/big.html"
"$PATIENT_BIN" keygen -W -p "$work/pub.pub" -s "$work/pub.key" >/dev/null
PUBKEY=$(sed -n 2p "$work/pub.pub")

# start NAME [ENV=VALUE...] [STACK-OPTION...] — a stack in $work/NAME
start() {
    local name=$1 out envs=() args=(); shift
    while (( $# )); do
        if [[ "$1" == *=* && "$1" != -* ]]; then envs+=("$1"); else args+=("$1"); fi
        shift
    done
    stacks+=("$work/$name")
    # one middlebox key for every stack: one policy entry names them all
    if [[ -n "${MBKEY:-}" ]]; then
        mkdir -p "$work/$name"
        cp "$work/a/mbox.key" "$work/a/mbox.pub" "$work/$name/"
    fi
    out=$(env ${envs[@]+"${envs[@]}"} "$STACK" start "$work/$name" "$work/site" ${args[@]+"${args[@]}"} \
        2>"$work/$name-start.log") || {
        cat "$work/$name-start.log"; echo "stack $name failed to start"; exit 1; }
    eval "$out"
    MBKEY=$(sed -n 2p "$MBOX_PUB")
}
policy() { # policy FILE PUBLISHER-ORIGIN [MIN-TLS [MAY-DECRYPT [CA-PIN]]]
    cat >"$1" <<EOF
{ "patient": 1, "type": "policy",
  "publishers": { "$2": ["$PUBKEY"] },
  "middleboxes": [
    { "name": "corp-proxy", "key": "$MBKEY", "reasons": ["tracker.*", "malware.*", "banner.*"],
      "max_edits": 100, "insert": true, "may_decrypt": ${4:-false}${5:+, \"interception_ca\": [\"$5\"]} } ],
  "require": { "proof": "attested"${3:+, \"min_upstream_tls\": \"$3\"} } }
EOF
}
pverify() { # pverify OUT POLICY [args...] — sets rc
    local out=$1 pol=$2; shift 2
    rc=0
    "$VERIFY" --json --policy "$pol" --no-state --cache-dir "$work/cache" --timeout 30 "$@" \
        >"$work/$out.json" 2>"$work/$out.err" || rc=$?
}
# the invalid result codes, sorted, space separated ("" when none)
invalid_codes() {
    "$PY" -c 'import json,sys
r=json.load(open(sys.argv[1]))["results"]
print(" ".join(sorted(x["code"] for x in r if x["effect"]=="invalid")))' "$1" 2>/dev/null || echo "?"
}
hop_tls() { # the first hop's tls member as "version cipher verified"
    "$PY" -c 'import json,sys
t=json.load(open(sys.argv[1]))["changes"][0]["tls"]
print(t["version"], t.get("cipher"), str(t["verified"]).lower())' "$1" 2>/dev/null || echo "?"
}
# the interception outcome as "status by" ("-" for none)
interception() {
    "$PY" -c 'import json,sys
i=json.load(open(sys.argv[1]))["interception"]
print("-" if i is None else "%s %s" % (i["status"], i["by"] or "-"))' "$1" 2>/dev/null || echo "?"
}
expect() { # expect OUT EXIT VERDICT "CODES" WHAT
    check "$5: exit $2 (got $rc)" test "$rc" = "$2"
    check "$5: $3 (got $(verdict "$work/$1.json"))" test "$(verdict "$work/$1.json")" = "$3"
    check "$5: invalid codes '$4' (got '$(invalid_codes "$work/$1.json")')" \
        test "$(invalid_codes "$work/$1.json")" = "$4"
}

# ---- A: the default stack (nginx TLS 1.2 + 1.3, Squid verifies the origin)
start a
A_DIR=$STACK_DIR A_PROXY=$PROXY_URL A_HTTPS=$ORIGIN_HTTPS_URL A_ORIGIN_CA=$ORIGIN_CA A_BUMP_CA=$BUMP_CA
A_ORIGIN_SPKI=$ORIGIN_SPKI
# the origin announces its TLS key; the middlebox declares its interception CA
"$PUBLISH" -q -s "$work/pub.key" --origin "$A_HTTPS" --tls-key "$A_DIR/pki/origin.crt" "$work/site" >/dev/null
check "manifest announces the origin's TLS key" grep -q "\"$A_ORIGIN_SPKI\"" "$work/site/.well-known/patient/manifest.json"
"$PATIENT_BIN" disclose -s "$A_DIR/mbox.key" --out "$MBOX_WWW" --operator "Example Corp IT" \
    --contact mailto:it@example.test --service content-filter --retention-days 0 --sharing none \
    --upstream-tls-min TLSv1.2 --interception-ca "$A_BUMP_CA" >/dev/null
check "disclosure declares the interception CA" grep -q "\"$BUMP_CA_SPKI\"" "$MBOX_WWW/disclosure.json"
policy "$work/pol.json" "$A_HTTPS" "" true
policy "$work/pol-nodecrypt.json" "$A_HTTPS"

pverify direct "$work/pol.json" --ca-file "$A_ORIGIN_CA" "$A_HTTPS/index.html"
expect direct 0 verified "" "https direct"
check "https direct: not intercepted ($(interception "$work/direct.json"))" \
    test "$(interception "$work/direct.json")" = "none -"

pverify via "$work/pol.json" --ca-file "$A_BUMP_CA" --proxy "$A_PROXY" "$A_HTTPS/index.html"
expect via 0 modified "" "https through the bumping middlebox"
check "through the middlebox: decrypted by corp-proxy ($(interception "$work/via.json"))" \
    test "$(interception "$work/via.json")" = "allowed corp-proxy"
# the evidence bundle records the chain the verifier saw: offline, who
# decrypted is judged as it was online; its forged twin (the recorded chain
# swapped for a CA nobody declares) is the unknown interceptor, and a
# malformed chain is refused
pverify viab "$work/pol.json" --ca-file "$A_BUMP_CA" --proxy "$A_PROXY" --bundle "$work/via.bundle" \
    "$A_HTTPS/index.html"
expect viab 0 modified "" "bundle of the page through the middlebox"
poffline() { # poffline OUT BUNDLE — sets rc
    rc=0
    "$VERIFY" --json --policy "$work/pol.json" --no-state --offline "$2" >"$work/$1.json" 2>"$work/$1.err" || rc=$?
}
poffline off "$work/via.bundle"
expect off 0 modified "" "the bundle offline"
check "the bundle offline: decrypted by corp-proxy ($(interception "$work/off.json"))" \
    test "$(interception "$work/off.json")" = "allowed corp-proxy"
"$PY" - "$work/via.bundle" "$work/swap.bundle" "$work/badchain.bundle" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
assert len(b["tls_chain"]) >= 1, b["tls_chain"]
b["tls_chain"] = ["sha256-" + "A" * 43 + "="]
json.dump(b, open(sys.argv[2], "w"))
b["tls_chain"] = ["sha256-AAAA"]
json.dump(b, open(sys.argv[3], "w"))
PY
poffline swap "$work/swap.bundle"
expect swap 1 invalid "tls.intercepted.unknown" "the bundle with its chain swapped, offline"
poffline badchain "$work/badchain.bundle"
check "a bundle whose chain is malformed: refused, exit 2 (got $rc)" test "$rc" = 2
# a page the middlebox does not change carries no descriptor, so no
# disclosure names the decrypter: the CA pin the endpoint recorded does
pverify css "$work/pol.json" --ca-file "$A_BUMP_CA" --proxy "$A_PROXY" "$A_HTTPS/css/site.css"
expect css 1 invalid "tls.intercepted.unknown" "an unchanged page, the CA only in the disclosure"
policy "$work/pol-pin.json" "$A_HTTPS" "" true "$BUMP_CA_SPKI"
pverify css2 "$work/pol-pin.json" --ca-file "$A_BUMP_CA" --proxy "$A_PROXY" "$A_HTTPS/css/site.css"
expect css2 0 verified "" "an unchanged page, the CA pinned in the policy"
check "unchanged page: decrypted by corp-proxy ($(interception "$work/css2.json"))" \
    test "$(interception "$work/css2.json")" = "allowed corp-proxy"
pverify nodecrypt "$work/pol-nodecrypt.json" --ca-file "$A_BUMP_CA" --proxy "$A_PROXY" "$A_HTTPS/index.html"
expect nodecrypt 1 invalid "tls.intercepted.denied" "the middlebox decrypts, policy without may_decrypt"
# what nginx negotiated with Squid for that request (the last GET /index.html)
ng=$(grep '"GET /index.html ' "$A_DIR/nginx-access.log" | tail -n 1 |
     sed -n 's/.* tls=\([^ ]*\) cipher=\([^ ]*\)$/\1 \2 true/p')
check "hop TLS facts equal nginx's ($ng; got $(hop_tls "$work/via.json"))" \
    test -n "$ng" -a "$(hop_tls "$work/via.json")" = "$ng"

# The large path over HTTPS: the 1 MB page streams through the bumping
# proxy with its descriptor by reference (the reserved host, plain http
# through the same proxy); the hop carries the upstream TLS as for a held
# page. Forged twin: its bundle with the referenced descriptor swapped for
# index.html's (genuine, signed by the same middlebox, for another URL).
rc=0
curl -sS --max-time 60 --cacert "$A_BUMP_CA" -D "$work/big.hdr" -o "$work/big.body" -x "$A_PROXY" \
    "$A_HTTPS/big.html" 2>"$work/big.curl" || rc=$?
check "https 1 MB through the bumping middlebox: fetched (curl exit $rc)" test "$rc" = 0
ref=$(sed -n 's/^Patient-Change-Ref: *//Ip' "$work/big.hdr" | tr -d '\r')
check "https 1 MB: streamed, reference to the middlebox ($ref)" \
    bash -c "[[ '$ref' =~ ^http://patient-mbox\\.invalid/\\.well-known/patient/change/[0-9a-f]{32}$ ]]"
check "https 1 MB: the body is the page with the banner after <body>" "$PY" -c '
import json, sys
r = [x for x in json.load(open(sys.argv[1]))["rules"] if x["id"] == "notice-banner"][0]["text"].encode()
o, g, t = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read(), b"<body class=\"x\">"
sys.exit(g != o.replace(t, t + r, 1))' "$top_srcdir/middlebox/rules/example.json" "$work/site/big.html" "$work/big.body"
pverify big "$work/pol.json" --ca-file "$A_BUMP_CA" --proxy "$A_PROXY" --bundle "$work/big.bundle" \
    "$A_HTTPS/big.html"
expect big 0 modified "" "https 1 MB streamed through the bumping middlebox"
ng=$(grep '"GET /big.html ' "$A_DIR/nginx-access.log" | tail -n 1 |
     sed -n 's/.* tls=\([^ ]*\) cipher=\([^ ]*\)$/\1 \2 true/p')
check "https 1 MB: hop TLS facts equal nginx's ($ng; got $(hop_tls "$work/big.json"))" \
    test -n "$ng" -a "$(hop_tls "$work/big.json")" = "$ng"
"$PY" - "$work/big.bundle" "$work/via.bundle" "$work/bigswap.bundle" <<'PY'
import json, sys
b, other = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert len(b["changes"]) == 1 and len(other["changes"]) == 1, (b["changes"], other["changes"])
b["changes"] = other["changes"]
json.dump(b, open(sys.argv[3], "w"))
PY
poffline bigswap "$work/bigswap.bundle"
expect bigswap 1 invalid "change.url.mismatch" "https 1 MB with index.html's descriptor, offline"

# the audit log says the same, and still verifies (the "tls" member is
# checked against the signed descriptor)
"$PATIENT_BIN" audit list "$A_DIR/audit.log" --json >"$work/audit-a.jsonl" 2>&1 || true
check "audit list: the hop's upstream TLS" \
    grep -q "\"tls\":\"${ng% true} verified\"" "$work/audit-a.jsonl"
check "audit stats --by tls" bash -c "'$PATIENT_BIN' audit stats '$A_DIR/audit.log' --by tls | grep -q '^${ng% true} verified '"
check "audit verify --deep" bash -c "'$PATIENT_BIN' audit verify '$A_DIR/audit.log' --pub '$A_DIR/mbox.pub' --deep >/dev/null"

# ---- B: nginx speaks TLS 1.2 only
start b STACK_ORIGIN_TLS=TLSv1.2
B_PROXY=$PROXY_URL B_HTTPS=$ORIGIN_HTTPS_URL B_BUMP_CA=$BUMP_CA
"$PUBLISH" -q -s "$work/pub.key" --origin "$B_HTTPS" "$work/site" >/dev/null
policy "$work/pol-b13.json" "$B_HTTPS" TLSv1.3
policy "$work/pol-b12.json" "$B_HTTPS" TLSv1.2
pverify b13 "$work/pol-b13.json" --ca-file "$B_BUMP_CA" --proxy "$B_PROXY" "$B_HTTPS/index.html"
expect b13 1 invalid "policy.tls.weak" "origin TLS 1.2, policy minimum TLS 1.3"
check "origin TLS 1.2: the hop says TLSv1.2 ($(hop_tls "$work/b13.json"))" \
    bash -c "[[ '$(hop_tls "$work/b13.json")' == 'TLSv1.2 '*' true' ]]"
pverify b12 "$work/pol-b12.json" --ca-file "$B_BUMP_CA" --proxy "$B_PROXY" "$B_HTTPS/index.html"
expect b12 0 modified "" "origin TLS 1.2, policy minimum TLS 1.2"

# ---- C: the middlebox accepts an origin certificate it cannot verify
start c STACK_UPSTREAM_UNVERIFIED=1
C_PROXY=$PROXY_URL C_HTTPS=$ORIGIN_HTTPS_URL C_BUMP_CA=$BUMP_CA
"$PUBLISH" -q -s "$work/pub.key" --origin "$C_HTTPS" "$work/site" >/dev/null
policy "$work/pol-c.json" "$C_HTTPS"
pverify c "$work/pol-c.json" --ca-file "$C_BUMP_CA" --proxy "$C_PROXY" "$C_HTTPS/index.html"
expect c 1 invalid "change.tls.unverified" "middlebox did not verify the origin"
"$PATIENT_BIN" audit list "$work/c/audit.log" --json >"$work/audit-c.jsonl" 2>&1 || true
check "audit list: the unverified upstream" grep -q '"tls":"TLSv1.3 [^ ]* unverified"' "$work/audit-c.jsonl"

# ---- D: a second bumping proxy (c-icap echo: the body passes untouched)
# whose interception CA no policy or disclosure names
start d --service echo
"$PUBLISH" -q -s "$work/pub.key" --origin "$ORIGIN_HTTPS_URL" --tls-key "$ORIGIN_SPKI" "$work/site" >/dev/null
policy "$work/pol-d.json" "$ORIGIN_HTTPS_URL" "" true
pverify d "$work/pol-d.json" --ca-file "$BUMP_CA" --proxy "$PROXY_URL" "$ORIGIN_HTTPS_URL/index.html"
expect d 1 invalid "tls.intercepted.unknown" "an unknown interceptor, body untouched"
check "unknown interceptor: reported as such ($(interception "$work/d.json"))" \
    test "$(interception "$work/d.json")" = "unknown -"
pverify d2 "$work/pol-d.json" --ca-file "$ORIGIN_CA" "$ORIGIN_HTTPS_URL/index.html"
expect d2 0 verified "" "the same origin direct"

# ---- malformed pins are refused before anything is written
rc=0; "$PATIENT_BIN" disclose -s "$A_DIR/mbox.key" --out "$work/bad-disc" --operator x \
    --contact mailto:x@example.test --service other --retention-days 0 --sharing none \
    --upstream-tls-min TLSv1.2 --interception-ca sha256-AAAA 2>"$work/bad.err" >/dev/null || rc=$?
check "disclose --interception-ca sha256-AAAA: usage error (rc $rc)" test "$rc" = 2
check "disclose: says why" grep -q "not a sha256-<base64> SPKI pin" "$work/bad.err"
check "disclose: nothing written" test ! -e "$work/bad-disc/disclosure.json"
rc=0; "$PUBLISH" -q -s "$work/pub.key" --origin "$A_HTTPS" --tls-key "$work/site/index.html" \
    "$work/site" 2>"$work/bad2.err" >/dev/null || rc=$?
check "publish --tls-key NOT-A-CERT: usage error (rc $rc)" test "$rc" = 2
# A pin list holds at most 8 (PATIENT_MAX_TLS_PINS): a ninth is a usage error.
pins=; for i in 1 2 3 4 5 6 7 8 9; do pins="$pins --tls-key $ORIGIN_SPKI"; done
rc=0; "$PUBLISH" -q -s "$work/pub.key" --origin "$A_HTTPS" $pins "$work/site" \
    2>"$work/bad3.err" >/dev/null || rc=$?
check "publish with 9 --tls-key: usage error (rc $rc)" test "$rc" = 2
check "publish with 9 --tls-key: says the cap" grep -q "at most 8 --tls-key" "$work/bad3.err"
pins=; for i in 1 2 3 4 5 6 7 8 9; do pins="$pins --interception-ca $ORIGIN_SPKI"; done
rc=0; "$PATIENT_BIN" disclose -s "$A_DIR/mbox.key" --out "$work/bad-disc" --operator x \
    --contact mailto:x@example.test --service other --retention-days 0 --sharing none \
    --upstream-tls-min TLSv1.2 $pins 2>"$work/bad4.err" >/dev/null || rc=$?
check "disclose with 9 --interception-ca: usage error (rc $rc)" test "$rc" = 2
check "disclose with 9 --interception-ca: says the cap" \
    grep -q "at most 8 --interception-ca" "$work/bad4.err"
check "disclose with 9 pins: nothing written" test ! -e "$work/bad-disc/disclosure.json"

if (( fails )); then
    for f in "$work"/*.json; do echo "---- $f"; head -c 3000 "$f"; echo; done
    echo "$fails of $n checks failed"
    exit 1
fi
echo "all $n checks passed"
