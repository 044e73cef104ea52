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
# unchanged with its logged event. gzip pages of the same four sizes: of
# 64 KiB - 1 and 64 KiB (gzip bodies under HoldMax) held, of 1 MB and 5 MB
# streamed, decoded, changed and re-encoded, with the same checks and
# twins; a gzip bomb is abandoned. Every curl has a timeout (a
# stall is a failure, not a hang).
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/stack_prelude.sh"
stack_need
stack_workdir patient-large
stacks+=("$work/stack")

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
# patient.HoldMax as scripts/stack sets it (the module's default unless
# STACK_HOLD_MAX): a body (of a gzip page, its gzip body) of at most hold
# bytes is held, a larger one streams. Compared as a number, so in bytes.
hold=${STACK_HOLD_MAX:-65535}
[[ $hold =~ ^[0-9]+$ ]] || { echo "STACK_HOLD_MAX: stack_large.sh wants bytes, no suffix (got $hold)"; exit 1; }
sizes="65535 65536 1000000 5000000"
for s in $sizes; do page "m$s" "$s" 1; page "u$s" "$s" 0; done
# over the default patient.MaxBody (16 MiB): passes unchanged, logged
page over $((17 * 1024 * 1024)) 1
# gzip pages, served precompressed (nginx gzip_static: NAME.gz beside NAME,
# with a Content-Length): text that compresses little (base64 lines), so
# the gzip body itself is over HoldMax and streams.
gzpage() { # gzpage NAME SIZE BODYTAG
    "$PY" - "$work/site/$1.html" "$2" "$3" <<'PY2'
import base64, gzip, random, sys
path, size, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
head = b'<html><head><title>t</title></head>' + (b'<body class="x">' if tag else b'<div>')
tail = b'</div>\n</html>\n'
n = size - len(head) - len(tail)
data = head + base64.encodebytes(random.Random(size * 2 + tag).randbytes(n))[:n] + tail
assert len(data) == size
open(path, "wb").write(data)
open(path + ".gz", "wb").write(gzip.compress(data, 6, mtime=0))
PY2
}
gzsizes="65535 65536 1000000 5000000"
for s in $gzsizes; do gzpage "gm$s" "$s" 1; gzpage "gu$s" "$s" 0; done
# decodes past MaxBody without a change: relayed (re-encoded), logged
gzpage gover $((17 * 1024 * 1024)) 0
# a decompression bomb over HoldMax (100 MB of zeros, ~100 KB of gzip)
head -c 100000000 /dev/zero | gzip -9 -n >"$work/site/bomb.html.gz"

# the retention and size directives as an operator writes them (the
# defaults, spelled out; the ready line must show them parsed)
export STACK_CICAP_EXTRA="patient.DescriptorKeep 1d
patient.DescriptorMax 100000
patient.InflateRatio 200
patient.MaxBody 16M"
stack_start "$work/site"
"$PATIENT_BIN" keygen -W -p "$work/pub.pub" -s "$work/pub.key" >/dev/null
"$PUBLISH" -q -s "$work/pub.key" --origin "$ORIGIN_URL" "$work/site" >/dev/null 2>&1
check "manifest published" test -s "$work/site/.well-known/patient/manifest.json"
check "directives parsed: MaxBody 16M, DescriptorKeep 1d, DescriptorMax 100000" \
    grep -q 'MaxBody 16777216, .*(kept 86400 s, at most 100000' "$STACK_DIR/c-icap-server.log"

banner_policy "$work/policy.json" "$work/pub.pub"
pverify() { # pverify OUT URL [args] — sets rc
    local out=$1 url=$2; shift 2
    rc=0
    "$VERIFY" --json --policy "$work/policy.json" --no-state --cache-dir "$work/cache" \
        --timeout 60 --proxy "$PROXY_URL" "$@" "$url" >"$work/$out.json" 2>"$work/$out.err" || rc=$?
}
expect_page() { # expect_page NAME VERDICT [HOW]: verify NAME.html through the proxy, want VERDICT and exit 0
    pverify "v$1" "$ORIGIN_URL/$1.html"
    check "$1: patient-verify ${3:+$3 }$2, exit 0 (got $(verdict "$work/v$1.json"), $rc)" \
        test "$(verdict "$work/v$1.json")/$rc" = "$2/0"
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
# in_log FILE: FILE (a descriptor) is in the audit log; a missing or empty
# FILE, or one holding only a newline (an empty Patient-Change), is not:
# grep -F with an empty pattern matches any log.
in_log() { local d; test -s "$1" && d=$(cat "$1") && [[ -n $d ]] && grep -qF "$d" "$AUDIT_LOG"; }
# descriptor NAME HELD: NAME's descriptor into NAME.desc, from its one
# inline Patient-Change (HELD=1) or fetched through the proxy from its
# reference ($ref); either way it is in the audit log.
descriptor() {
    local name=$1 rc=0 inline
    if (( $2 )); then
        inline=$(grep -ci '^Patient-Change:' "$work/$name.hdr" || true)
        check "$name: one inline Patient-Change" test "$inline" = 1
        sed -n 's/^Patient-Change: *//Ip' "$work/$name.hdr" | tr -d '\r' >"$work/$name.desc"
    else
        curl -sS --max-time 10 -o "$work/$name.desc" -w '%{http_code}' -x "$PROXY_URL" "$ref" \
            >"$work/$name.code" || rc=$?
        check "$name: descriptor served by the middlebox (HTTP $(cat "$work/$name.code"), curl exit $rc)" \
            test "$(cat "$work/$name.code")" = 200
    fi
    check "$name: descriptor is in the audit log" in_log "$work/$name.desc"
}
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
        if (( s <= hold )); then
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
            descriptor "$name" "$(( s <= hold ))"
            expect_page "$name" modified
        else
            check "$name: unchanged" cmp -s "$work/$name.body" "$work/site/$name.html"
            check "$name: no inline descriptor" test "$inline" = 0
            if [[ -n "$ref" ]]; then
                code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -x "$PROXY_URL" "$ref" || true)
                check "$name: nothing behind the reference (HTTP $code)" test "$code" = 404
            fi
            expect_page "$name" verified
        fi
    done
done

# gzip pages: of 64 KiB - 1 and 64 KiB decoded (their gzip bodies under
# HoldMax: held, decoded, changed, re-encoded, inline Patient-Change), and
# 1 MB and 5 MB (gzip bodies over HoldMax: decoded as they stream, changed,
# re-encoded, by reference); the descriptor is over the decoded body, its
# in/out sizes those of the origin's and the delivered decoded bytes.
for s in $gzsizes; do
    for kind in m u; do
        name=g$kind$s
        rc=0
        curl -sS --max-time 60 -H 'Accept-Encoding: gzip' -D "$work/$name.hdr" -o "$work/$name.gz" \
            -x "$PROXY_URL" "$ORIGIN_URL/$name.html" 2>"$work/$name.curl" || rc=$?
        check "$name: fetched gzip through the proxy (curl exit $rc)" test "$rc" = 0
        check "$name: Content-Encoding gzip kept" grep -qi '^Content-Encoding: *gzip' "$work/$name.hdr"
        ref=$(sed -n 's/^Patient-Change-Ref: *//Ip' "$work/$name.hdr" | tr -d '\r')
        inline=$(grep -ci '^Patient-Change:' "$work/$name.hdr" || true)
        held=0
        (( $(stat -c %s "$work/site/g$kind$s.html.gz") <= hold )) && held=1
        if (( held )); then
            check "$name: gzip body under HoldMax, held (no reference)" test -z "$ref"
        else
            check "$name: streamed, reference to the middlebox ($ref)" \
                bash -c "[[ '$ref' =~ ^http://patient-mbox\\.invalid/\\.well-known/patient/change/[0-9a-f]{32}$ ]]"
        fi
        check "$name: body decodes as gzip" "$PY" -c 'import gzip, sys
open(sys.argv[2], "wb").write(gzip.decompress(open(sys.argv[1], "rb").read()))' \
            "$work/$name.gz" "$work/$name.body"
        if [[ $kind == m ]]; then
            check "$name: decoded body is exactly the original with the banner after <body>" \
                "$PY" "$work/expect.py" "$work/site/$name.html" "$work/$name.body"
            descriptor "$name" "$held"
            check "$name: descriptor in/out are the decoded origin and delivered bodies" "$PY" -c '
import base64, json, os, sys
p = open(sys.argv[1]).read().strip().split(".")[1]
d = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
sys.exit(0 if (d["in"]["size"], d["out"]["size"]) == (os.path.getsize(sys.argv[2]), os.path.getsize(sys.argv[3])) else 1)' \
                "$work/$name.desc" "$work/site/$name.html" "$work/$name.body"
            expect_page "$name" modified "(gzip through the proxy)"
        else
            check "$name: decoded body unchanged" cmp -s "$work/$name.body" "$work/site/$name.html"
            check "$name: no inline descriptor" test "$inline" = 0
            if (( ! held )); then
                code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -x "$PROXY_URL" "$ref" || true)
                check "$name: nothing behind the reference (HTTP $code)" test "$code" = 404
            fi
            expect_page "$name" verified
        fi
    done
done
rc=0
curl -sS --max-time 60 -H 'Accept-Encoding: gzip' -o "$work/gover.gz" -x "$PROXY_URL" \
    "$ORIGIN_URL/gover.html" 2>"$work/gover.curl" || rc=$?
check "gzip decoding past MaxBody, no change: fetched (curl exit $rc)" test "$rc" = 0
check "gzip decoding past MaxBody: decoded body unchanged" "$PY" -c 'import gzip, sys
sys.exit(gzip.decompress(open(sys.argv[1], "rb").read()) != open(sys.argv[2], "rb").read())' \
    "$work/gover.gz" "$work/site/gover.html"
# (caught in the preview: an ICAP error, which Squid with bypass=0 turns
# into an error page; later, the transfer breaks)
rc=0
code=$(curl -sS --max-time 60 -H 'Accept-Encoding: gzip' -o "$work/bomb.gz" -w '%{http_code}' \
    -x "$PROXY_URL" "$ORIGIN_URL/bomb.html" 2>"$work/bomb.curl") || rc=$?
check "gzip bomb (100 MB of zeros): not delivered (curl exit $rc, HTTP $code)" \
    bash -c "[[ $rc != 0 || $code != 200 ]]"

# What a browser received for a streamed page, handed to the native host
# (the plug-in's exact-bytes path): the host follows the reference through
# its proxy. Twins: the same bytes with a kept byte changed; the same
# request to a host without a proxy (the reference is not followed).
native_requests "$ORIGIN_URL/m1000000.html" "$work/m1000000.hdr" "$work/m1000000.body" \
    "$work/nreq" byte
native_requests "$ORIGIN_URL/gm1000000.html" "$work/gm1000000.hdr" "$work/gm1000000.body" \
    "$work/gnreq" byte
native_host nreq nat --proxy "$PROXY_URL"
got=$(native_verdicts "$work/nat")
check "native host, received streamed page via the proxy: modified; kept byte changed: invalid (got $got, exit $rc)" \
    bash -c "[[ '$got' == 'modified invalid('*body.mismatch* && $rc == 0 ]]"
native_host gnreq gnat --proxy "$PROXY_URL"
got=$(native_verdicts "$work/gnat")
check "native host, received (decoded) streamed gzip page: modified; kept byte changed: invalid (got $got, exit $rc)" \
    bash -c "[[ '$got' == 'modified invalid('*body.mismatch* && $rc == 0 ]]"
# the held gzip page at 64 KiB - 1 the same way (inline descriptor)
native_requests "$ORIGIN_URL/gm65535.html" "$work/gm65535.hdr" "$work/gm65535.body" \
    "$work/hnreq" byte
native_host hnreq hnat
got=$(native_verdicts "$work/hnat")
check "native host, received (decoded) held gzip page: modified; kept byte changed: invalid (got $got, exit $rc)" \
    bash -c "[[ '$got' == 'modified invalid('*body.mismatch* && $rc == 0 ]]"
native_host nreq natnp
got=$(native_verdicts "$work/natnp")
check "native host without a proxy: the reference is not followed, invalid (got $got, exit $rc)" \
    bash -c "[[ '$got' == 'invalid('*' invalid('* && $rc == 0 ]]"

# Forged twin 1: the evidence bundle of a streamed 1 MB page, with its
# referenced descriptor swapped for the 5 MB page's (genuine, signed by the
# trusted middlebox, for another URL and body): invalid.
swap() { # swap PAGE OTHER: PAGE's bundle with OTHER's referenced descriptor
pverify "vb$1" "$ORIGIN_URL/$1.html" --bundle "$work/b$1.json"
check "bundle of the streamed page $1: modified" test "$(verdict "$work/vb$1.json")/$rc" = modified/0
"$PY" - "$work/b$1.json" "$work/$2.desc" "$work/bswap$1.json" <<'PY2'
import json, sys
b = json.load(open(sys.argv[1]))
assert len(b["changes"]) == 1, b["changes"]
b["changes"] = [open(sys.argv[2]).read().strip()]
json.dump(b, open(sys.argv[3], "w"))
PY2
rc=0
"$VERIFY" --json --policy "$work/policy.json" --no-state --offline "$work/bswap$1.json" \
    >"$work/vswap$1.json" 2>"$work/vswap$1.err" || rc=$?
check "$1 with $2's referenced descriptor: invalid, exit 1 (got $(verdict "$work/vswap$1.json"), $rc)" \
    test "$(verdict "$work/vswap$1.json")/$rc" = invalid/1
}
swap m1000000 m5000000
swap gm1000000 gm5000000

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
check "audit log: encoding.ratio event for the gzip bomb" grep -qx 'event encoding.ratio' "$work/log.txt"
check "audit log: two body.too_large events (identity, gzip)" test "$(grep -cx 'event body.too_large' "$work/log.txt")" = 2

if (( fails )); then
    for f in "$work"/v*.json; do echo "---- $f"; head -c 1500 "$f"; done
    cat "$work/log.txt"
    echo "$fails of $n checks failed"
    exit 1
fi
echo "all $n checks passed"
