#!/usr/bin/env bash
# Bodies of any size through the real stack (nginx -> Squid 5.7 -> c-icap +
# srv_patient, scripts/stack): 64 KiB - 1 (held, inline Patient-Change),
# 64 KiB, 1 MB and 5 MB (streamed, Patient-Change-Ref served by the
# middlebox itself), with a matching rule (the banner after <body>) and
# without (no <body> tag). For each: the expected body, the descriptor (in
# the header, or fetched through the proxy from the reference) and
# patient-verify's verdict and exit code through the proxy; forged twins:
# a reference to a descriptor that does not exist, and the right descriptor
# with a changed body, are invalid. A body over patient.MaxBody passes
# unchanged with its logged event. Every curl has a timeout (a stall is a
# failure, not a hang).
set -euo pipefail

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
STACK=$top_srcdir/scripts/stack
export PATIENT_SRV_MODULE=${PATIENT_SRV_MODULE:-$top_builddir/middlebox/.libs/srv_patient.so}
export PATIENT_BIN=${PATIENT_BIN:-$top_builddir/cli/patient}
PUBLISH=$top_builddir/publisher/patient-publish
VERIFY=$top_builddir/verifier/patient-verify
LOGCHECK=$top_builddir/tests/stack_logcheck
PY=/usr/bin/python3

n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
skip() { echo "SKIP: $*"; exit 77; }

[[ -r "$PATIENT_SRV_MODULE" ]] || skip "srv_patient not built ($PATIENT_SRV_MODULE)"
for b in nginx squid c-icap curl; do
    command -v "$b" >/dev/null 2>&1 || skip "$b not installed (scripts/deps)"
done

work=$(mktemp -d /tmp/patient-large.XXXXXX)
cleanup() {
    local rc=$?
    "$STACK" stop "$work/stack" >/dev/null 2>&1 || true
    if (( rc != 0 )) && [[ -d "$work/stack" ]]; then
        for f in c-icap-server.log squid/cache.log; do
            [[ -s "$work/stack/$f" ]] && { echo "---- $f"; tail -n 20 "$work/stack/$f"; }
        done
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# page NAME SIZE BODYTAG: exactly SIZE bytes of HTML; with BODYTAG=1 it has
# the <body> the banner rule inserts after.
page() {
    local name=$1 size=$2 tag=$3 head tail
    if (( tag )); then head='<html><head><title>t</title></head><body class="x">'; else head='<html><head><title>t</title></head><div>'; fi
    tail=$'</div>\n</html>\n'
    {
        printf '%s' "$head"
        head -c $((size - ${#head} - ${#tail})) /dev/zero | tr '\0' 'a'
        printf '%s' "$tail"
    } >"$work/site/$name.html"
}
mkdir -p "$work/site"
sizes="65535 65536 1000000 5000000"
for s in $sizes; do page "m$s" "$s" 1; page "u$s" "$s" 0; done
# over the default patient.MaxBody (16 MiB): passes unchanged, logged
page over $((17 * 1024 * 1024)) 1

eval "$("$STACK" start "$work/stack" "$work/site" 2>"$work/stack-start.log")" || {
    cat "$work/stack-start.log"; echo "stack failed to start"; exit 1; }
"$PATIENT_BIN" keygen -W -p "$work/pub.pub" -s "$work/pub.key" >/dev/null
"$PUBLISH" -q -s "$work/pub.key" --origin "$ORIGIN_URL" "$work/site" >/dev/null 2>&1
check "manifest published" test -s "$work/site/.well-known/patient/manifest.json"

PUBKEY=$(sed -n 2p "$work/pub.pub")
MBKEY=$(sed -n 2p "$MBOX_PUB")
cat >"$work/policy.json" <<EOF
{ "patient": 1, "type": "policy",
  "publishers": { "$ORIGIN_URL": ["$PUBKEY"] },
  "middleboxes": [ { "name": "stack", "key": "$MBKEY", "reasons": ["banner.*"],
      "paths": ["/*"], "origins": ["*"], "max_edits": 10, "insert": true } ],
  "require": { "disclosure": false, "proof": "proven" } }
EOF
verdict() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"])' "$1" 2>/dev/null || echo "?"; }
pverify() { # pverify OUT URL [args] — sets rc
    local out=$1 url=$2; shift 2
    rc=0
    "$VERIFY" --json --policy "$work/policy.json" --no-state --cache-dir "$work/cache" \
        --timeout 60 --proxy "$PROXY_URL" "$@" "$url" >"$work/$out.json" 2>"$work/$out.err" || rc=$?
}
banner='class="patient-notice"'
cat >"$work/expect.py" <<PY2
import json, sys
rules = json.load(open("$top_srcdir/middlebox/rules/example.json"))["rules"]
text = [r for r in rules if r["id"] == "notice-banner"][0]["text"].encode()
orig, got = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
tag = b'<body class="x">'
sys.exit(0 if got == orig.replace(tag, tag + text, 1) else 1)
PY2
changes=0
for s in $sizes; do
    for kind in m u; do
        name=$kind$s
        rc=0
        curl -sS --max-time 60 -D "$work/$name.hdr" -o "$work/$name.body" -x "$PROXY_URL" \
            "$ORIGIN_URL/$name.html" 2>"$work/$name.curl" || rc=$?
        check "$name: fetched through the proxy (curl exit $rc)" test "$rc" = 0
        inline=$(grep -ci '^Patient-Change:' "$work/$name.hdr" || true)
        ref=$(sed -n 's/^Patient-Change-Ref: *//Ip' "$work/$name.hdr" | tr -d '\r')
        if (( s < 65536 )); then
            check "$name: held (no reference)" test -z "$ref"
        else
            check "$name: streamed, reference to the middlebox ($ref)" \
                bash -c "[[ '$ref' =~ ^http://patient-mbox\\.invalid/\\.well-known/patient/change/[0-9a-f]{32}$ ]]"
        fi
        if [[ $kind == m ]]; then
            changes=$((changes + 1))
            check "$name: banner inserted" grep -q "$banner" "$work/$name.body"
            check "$name: body is exactly the original with the banner after <body>" \
                "$PY" "$work/expect.py" "$work/site/$name.html" "$work/$name.body"
            if (( s < 65536 )); then
                check "$name: one inline Patient-Change" test "$inline" = 1
            else
                rc=0
                curl -sS --max-time 10 -o "$work/$name.desc" -w '%{http_code}' -x "$PROXY_URL" "$ref" \
                    >"$work/$name.code" || rc=$?
                check "$name: descriptor served by the middlebox (HTTP $(cat "$work/$name.code"))" \
                    test "$(cat "$work/$name.code")" = 200
                check "$name: descriptor is in the audit log" grep -qF "$(cat "$work/$name.desc")" "$AUDIT_LOG"
            fi
            pverify "v$name" "$ORIGIN_URL/$name.html"
            check "$name: patient-verify modified, exit 0 (got $(verdict "$work/v$name.json"), $rc)" \
                test "$(verdict "$work/v$name.json")/$rc" = modified/0
        else
            check "$name: unchanged" cmp -s "$work/$name.body" "$work/site/$name.html"
            check "$name: no inline descriptor" test "$inline" = 0
            if [[ -n "$ref" ]]; then
                code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -x "$PROXY_URL" "$ref" || true)
                check "$name: nothing behind the reference (HTTP $code)" test "$code" = 404
            fi
            pverify "v$name" "$ORIGIN_URL/$name.html"
            check "$name: patient-verify verified, exit 0 (got $(verdict "$work/v$name.json"), $rc)" \
                test "$(verdict "$work/v$name.json")/$rc" = verified/0
        fi
    done
done

# What a browser received for a streamed page, handed to the native host
# (the plug-in's exact-bytes path): the host follows the reference through
# its proxy. Twins: the same bytes with a kept byte changed; the same
# request to a host without a proxy (the reference is not followed).
"$PY" - "$ORIGIN_URL/m1000000.html" "$work/m1000000.hdr" "$work/m1000000.body" "$work/nreq" <<'PY2'
import base64, json, struct, sys
url, hdr, body, out = sys.argv[1:]
hs = [l.split(":", 1) for l in open(hdr, encoding="latin-1").read().splitlines()[1:] if ":" in l]
hs = [{"name": k.strip(), "value": v.strip()} for k, v in hs if k.lower().startswith("patient-")]
b = open(body, "rb").read()
i = len(b) // 2
bad = b[:i] + (b"Y" if b[i:i + 1] != b"Y" else b"Z") + b[i + 1:]
with open(out, "wb") as f:
    for rid, data in (("ok", b), ("bad", bad)):
        m = json.dumps({"type": "verify", "id": rid, "url": url,
                        "received": {"status": 200, "headers": hs,
                                     "body": base64.b64encode(data).decode()}}).encode()
        f.write(struct.pack("=I", len(m)) + m)
PY2
native() { # native OUT [args]
    local out=$1; shift
    rc=0
    "$VERIFY" --native-host --policy "$work/policy.json" --no-state --cache-dir "$work/cache" \
        --timeout 60 "$@" chrome-extension://x/ <"$work/nreq" >"$work/$out" 2>"$work/$out.err" || rc=$?
}
nverdicts() {
    "$PY" - "$1" <<'PY2' 2>/dev/null || echo "?"
import json, struct, sys
d = open(sys.argv[1], "rb").read()
r = {}
while d:
    n, = struct.unpack("=I", d[:4])
    o = json.loads(d[4:4 + n]); d = d[4 + n:]
    rep = o.get("report") or {}
    codes = sorted({x["code"] for x in rep.get("results", []) if x.get("effect") == "invalid"})
    r[o.get("id")] = rep.get("verdict", "error") + ("(" + ",".join(codes) + ")" if codes else "")
print(r.get("ok"), r.get("bad"))
PY2
}
native nat --proxy "$PROXY_URL"
got=$(nverdicts "$work/nat")
check "native host, received streamed page via the proxy: modified; kept byte changed: invalid (got $got, exit $rc)" \
    bash -c "[[ '$got' == 'modified invalid('*body.mismatch* && $rc == 0 ]]"
native natnp
got=$(nverdicts "$work/natnp")
check "native host without a proxy: the reference is not followed, invalid (got $got, exit $rc)" \
    bash -c "[[ '$got' == 'invalid('*' invalid('* && $rc == 0 ]]"

# Forged twin 1: the evidence bundle of a streamed 1 MB page, with its
# referenced descriptor swapped for the 5 MB page's (genuine, signed by the
# trusted middlebox, for another URL and body): invalid.
pverify vb "$ORIGIN_URL/m1000000.html" --bundle "$work/b.json"
check "bundle of the streamed page: modified" test "$(verdict "$work/vb.json")/$rc" = modified/0
"$PY" - "$work/b.json" "$work/m5000000.desc" "$work/bswap.json" <<'PY2'
import json, sys
b = json.load(open(sys.argv[1]))
assert len(b["changes"]) == 1, b["changes"]
b["changes"] = [open(sys.argv[2]).read().strip()]
json.dump(b, open(sys.argv[3], "w"))
PY2
rc=0
"$VERIFY" --json --policy "$work/policy.json" --no-state --offline "$work/bswap.json" \
    >"$work/vswap.json" 2>"$work/vswap.err" || rc=$?
check "swapped referenced descriptor: invalid, exit 1 (got $(verdict "$work/vswap.json"), $rc)" \
    test "$(verdict "$work/vswap.json")/$rc" = invalid/1

# Forged twin 2: the middlebox cannot store the descriptor (its folder is
# replaced by a file): the changed response must not complete.
ddir="$AUDIT_LOG.descriptors"
mv "$ddir" "$ddir.away" && : >"$ddir"
rc=0
curl -sS --max-time 60 -o "$work/nostore.body" -x "$PROXY_URL" "$ORIGIN_URL/m1000000.html" \
    2>"$work/nostore.err" || rc=$?
check "descriptor not storable: the changed response does not complete (curl exit $rc)" test "$rc" != 0
rm -f "$ddir" && mv "$ddir.away" "$ddir"

# over MaxBody: unchanged, event logged
rc=0
curl -sS --max-time 60 -D "$work/over.hdr" -o "$work/over.body" -x "$PROXY_URL" "$ORIGIN_URL/over.html" || rc=$?
check "over MaxBody: fetched (curl exit $rc)" test "$rc" = 0
check "over MaxBody: unchanged" cmp -s "$work/over.body" "$work/site/over.html"
check "over MaxBody: no descriptor" bash -c "! grep -qi '^Patient-Change' '$work/over.hdr'"

"$LOGCHECK" "$AUDIT_LOG" "$MBOX_PUB" >"$work/log.txt" || true
check "audit log verifies" grep -qx 'result ok' "$work/log.txt"
check "audit log: body.too_large event for the page over MaxBody" grep -qx 'event body.too_large' "$work/log.txt"

if (( fails )); then
    for f in "$work"/v*.json; do echo "---- $f"; head -c 1500 "$f"; done
    cat "$work/log.txt"
    echo "$fails of $n checks failed"
    exit 1
fi
echo "all $n checks passed"
