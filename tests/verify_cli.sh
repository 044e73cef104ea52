#!/bin/sh
# patient-verify end to end on loopback: a published site served by a small
# python3 server (tests/verify_cli_server.py), a middlebox hop made with
# patient-mbox, and every exit code of the tool (0 verified/modified, 1
# invalid or --strict modified, 2 usage/I-O, 3 unverifiable), --json,
# --bundle/--offline, --at and --native-host framing.
set -u
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
VERIFY="$B/verifier/patient-verify"
PUBLISH="$B/publisher/patient-publish"
MBOX="$B/middlebox/patient-mbox"
PATIENT="$B/cli/patient"
PY=/usr/bin/python3

[ -x "$PY" ] || { echo "SKIP: $PY not installed"; exit 77; }
built "$VERIFY" "$PUBLISH" "$MBOX" "$PATIENT"

workdir verify_cli
T=$W
SRV=
before_exit() { [ -z "$SRV" ] || kill "$SRV" 2>/dev/null; }
tally
# Never touch the user's config, cache or state.
private_home

# expect CODE NAME CMD...: run CMD, compare its exit code.
expect() {
    want=$1 name=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$name (exit $rc)"; else
        fail "$name: exit $rc, wanted $want"
        sed 's/^/    /' "$T/out" "$T/err" | head -30
    fi
}
json_field() { # FILE KEY -> value of a top-level string field
    "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# ---- keys, site, server --------------------------------------------------
"$PATIENT" keygen -W -p "$T/pub.pub" -s "$T/pub.key" >/dev/null 2>&1 &&
    "$PATIENT" keygen -W -p "$T/mb.pub" -s "$T/mb.key" >/dev/null 2>&1 ||
    { echo "FAIL: keygen"; exit 1; }
mkdir -p "$T/www/site" "$T/www/mbox" "$T/www/tamper"
cat >"$T/www/site/page.html" <<'EOF'
<!doctype html>
<html><head><title>news</title>
<script src="https://tracker.example/t.js"></script>
</head><body><p>Today's news.</p></body></html>
EOF
printf '<!doctype html><p>home</p>\n' >"$T/www/site/index.html"
# A page of ~600 KB (many blocks of the body as it arrives), with a
# tracker at the top and a payload in the middle.
"$PY" - "$T/www/site/big.html" <<'EOF'
import sys
para = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.</p>\n"
half = para * 3800
open(sys.argv[1], "w").write('<!doctype html><html><head><script src="https://tracker.example/t.js">'
                             '</script></head><body>\n' + half + "<p>EVIL-PAYLOAD-TEST</p>\n" + half +
                             "</body></html>\n")
EOF

"$PY" "$top_srcdir/tests/verify_cli_server.py" "$T/www" "$T/port" &
SRV=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$T/port" ] || { echo "FAIL: server did not start"; exit 1; }
PORT=$(cat "$T/port")
O="http://127.0.0.1:$PORT"
URL="$O/page.html"

"$PUBLISH" -q -s "$T/pub.key" --origin "$O" "$T/www/site" || { echo "FAIL: publish"; exit 1; }

# The middlebox hop, as served through it (?via=mbox).
MURL="$URL?via=mbox"
"$MBOX" -q -s "$T/mb.key" --name "Test Filter" --service tracker-filter \
    --rules "$top_srcdir/middlebox/rules/trackers-only.json" --url "$MURL" --type text/html \
    --header-out "$T/www/mbox/page.html.headers" <"$T/www/site/page.html" >"$T/www/mbox/page.html" ||
    { echo "FAIL: patient-mbox"; exit 1; }
grep -q '^Patient-Change: ' "$T/www/mbox/page.html.headers" || { echo "FAIL: no descriptor issued"; exit 1; }
# Tampered in transit: a genuine hop, then the body changed after it.
TURL="$URL?via=tamper"
"$MBOX" -q -s "$T/mb.key" --name "Test Filter" --service tracker-filter \
    --rules "$top_srcdir/middlebox/rules/trackers-only.json" --url "$TURL" --type text/html \
    --header-out "$T/www/tamper/page.html.headers" <"$T/www/site/page.html" >"$T/tamper.html" ||
    { echo "FAIL: patient-mbox"; exit 1; }
sed 's/news\./NEWS!/' "$T/tamper.html" >"$T/www/tamper/page.html"

# Hops naming disclosure URLs on this server: one by a key the policy does
# not trust, one by the trusted key with its signature broken, one genuine.
# Only the genuine one may make the verifier request anything.
"$PATIENT" keygen -W -p "$T/evil.pub" -s "$T/evil.key" >/dev/null 2>&1 || { echo "FAIL: keygen"; exit 1; }
mkdir -p "$T/www/untrusted" "$T/www/forged" "$T/www/signed"
for v in untrusted forged signed; do
    k="$T/mb.key"
    [ $v = untrusted ] && k="$T/evil.key"
    "$MBOX" -q -s "$k" --name "Test Filter" --service tracker-filter \
        --disclosure "$O/$v-disclosure.json" \
        --rules "$top_srcdir/middlebox/rules/trackers-only.json" --url "$URL?via=$v" --type text/html \
        --header-out "$T/www/$v/page.html.headers" <"$T/www/site/page.html" >"$T/www/$v/page.html" ||
        { echo "FAIL: patient-mbox"; exit 1; }
done
# Change the signature's first character: still a well-formed JWS.
"$PY" - "$T/www/forged/page.html.headers" <<'EOF'
import sys
p = sys.argv[1]
k, v = open(p).read().strip().split(": ", 1)
h, pl, sig = v.split(".")
sig = ("A" if sig[0] != "A" else "B") + sig[1:]
open(p, "w").write("%s: %s.%s.%s\n" % (k, h, pl, sig))
EOF

# Policies: trusted middlebox; no middlebox; unknown origin.
P="$T/policy.json"
"$PATIENT" policy init "$P" >/dev/null &&
    "$PATIENT" policy add-publisher "$P" "$O" "$T/pub.pub" >/dev/null &&
    cp "$P" "$T/policy-nombox.json" &&
    "$PATIENT" policy add-middlebox "$P" "Test Filter" "$T/mb.pub" --reasons 'tracker.*' >/dev/null ||
    { echo "FAIL: policy"; exit 1; }
"$PATIENT" policy init "$T/policy-empty.json" >/dev/null
V="$VERIFY --policy $P --state $T/versions.json --cache-dir $T/cache --color never"

# ---- exit codes ------------------------------------------------------------
expect 0 "untouched page: verified" $V "$URL"
grep -q '^verified ' "$T/out" || fail "human report does not start with the verdict"
expect 0 "--json verified" $V --json "$URL"
"$PY" -m json.tool "$T/out" >/dev/null 2>&1 && ok "--json parses" || fail "--json is not JSON"
[ "$(json_field "$T/out" verdict)" = verified ] && ok "json verdict verified" || fail "json verdict"
expect 0 "index via /: verified" $V -q "$O/"
expect 0 "trusted middlebox: modified" $V "$MURL"
grep -q '^modified ' "$T/out" && grep -q 'tracker.removed' "$T/out" &&
    ok "human report names the hop's reason" || fail "human report lacks the edit"
expect 0 "--json modified" $V --json "$MURL"
[ "$(json_field "$T/out" verdict)" = modified ] && ok "json verdict modified" || fail "json verdict not modified"
"$PY" - "$T/out" <<'EOF' && ok "json changes[0] has by/edits/proof" || fail "json changes incomplete"
import json, sys
r = json.load(open(sys.argv[1]))
h = r["changes"][0]
assert h["hop"] == 1 and h["by"]["name"] == "Test Filter" and h["proof"] == "proven"
assert h["edits"][0]["reason"] == "tracker.removed" and h["edits"][0]["deleted"] > 0
assert all(x["severity"] != "error" for x in r["results"])
EOF
expect 0 "URL with a #fragment: modified, not change.url.mismatch" $V --json "$MURL#top"
[ "$(json_field "$T/out" verdict)" = modified ] && ok "fragment: json verdict modified" ||
    fail "fragment: verdict $(json_field "$T/out" verdict)"
expect 1 "--strict modified" $V --strict "$MURL"
expect 0 "--strict verified" $V --strict "$URL"
expect 1 "untrusted middlebox: invalid" $VERIFY --policy "$T/policy-nombox.json" --no-state \
    --cache-dir "$T/cache" --json "$MURL"
grep -q '"policy.middlebox.unknown"' "$T/out" && ok "code policy.middlebox.unknown" || fail "no policy.middlebox.unknown"
expect 1 "tampered after the hop: invalid" $V --json "$TURL"
grep -q '"body.mismatch"' "$T/out" && ok "code body.mismatch" || fail "no body.mismatch"
expect 3 "origin not in policy: unverifiable" $VERIFY --policy "$T/policy-empty.json" --no-state \
    --cache-dir "$T/cache" "$URL"
expect 3 "not listed: unverifiable" $V "$O/missing.html"
expect 3 "connection refused: unverifiable" $V --timeout 5 "http://127.0.0.1:1/x"
expect 1 "--at after expiry: invalid" $V --no-state --json --at 2099-01-01T00:00:00Z "$URL"
grep -q '"manifest.expired"' "$T/out" && ok "code manifest.expired" || fail "no manifest.expired"
expect 0 "--at @EPOCH now" $V --no-state --at "@$(date +%s)" "$URL"

# ---- nothing named by unauthenticated data is fetched ------------------------
: >"$T/www/requests.log"
expect 1 "hop by an untrusted key naming a disclosure: invalid" $V --json "$URL?via=untrusted"
grep -q '"code": *"policy.middlebox.unknown"' "$T/out" && ok "code policy.middlebox.unknown" ||
    fail "untrusted hop: no policy.middlebox.unknown"
expect 1 "trusted key, broken signature, naming a disclosure: invalid" $V --json "$URL?via=forged"
grep -q '"code": *"change.signature.invalid"' "$T/out" && ok "code change.signature.invalid" ||
    fail "forged hop: no change.signature.invalid"
if grep -q 'disclosure' "$T/www/requests.log"; then
    fail "the verifier requested a URL named by an unauthenticated hop:"
    sed 's/^/    /' "$T/www/requests.log"
else
    ok "the server saw no request for either disclosure"
fi
grep -q '/page.html?via=forged' "$T/www/requests.log" && ok "(the pages themselves were requested)" ||
    fail "request log missing the page"
# Twin: the genuine hop's disclosure is requested (it is absent: a warning).
expect 0 "trusted, signed hop: its disclosure is fetched" $V --json "$URL?via=signed"
grep -q '"code": *"disclosure.missing"' "$T/out" && ok "code disclosure.missing (404)" ||
    fail "signed hop: no disclosure.missing"
grep -q '^/signed-disclosure.json$' "$T/www/requests.log" && ok "server saw the signed hop's disclosure request" ||
    fail "signed hop's disclosure was not requested"
# Signed hops by a trusted key still cost a bounded number of requests: nine
# descriptors naming nine disclosures make the verifier ask for eight.
mkdir -p "$T/www/many"
cp "$T/www/site/page.html" "$T/www/many/page.html"
: >"$T/www/many/page.html.headers"
for i in 1 2 3 4 5 6 7 8 9; do
    "$MBOX" -q -s "$T/mb.key" --name "Test Filter" --service tracker-filter \
        --disclosure "$O/d$i-disclosure.json" \
        --rules "$top_srcdir/middlebox/rules/trackers-only.json" --url "$URL?via=many" --type text/html \
        --header-out "$T/h$i" <"$T/www/site/page.html" >/dev/null || { echo "FAIL: patient-mbox"; exit 1; }
    cat "$T/h$i" >>"$T/www/many/page.html.headers"
done
: >"$T/www/requests.log"
expect 1 "nine signed hop-1 descriptors: invalid (the chain does not link)" $V --json "$URL?via=many"
grep -q '"code": *"change.chain.broken"' "$T/out" && ok "code change.chain.broken" || fail "many: no change.chain.broken"
n=$(grep -c '^/d[0-9]-disclosure.json$' "$T/www/requests.log")
[ "$n" -eq 8 ] && ok "disclosure requests bounded: 8 of 9" || fail "disclosure requests: $n, wanted 8"
# No publisher key for the origin: the page is fetched, its manifest is not.
: >"$T/www/requests.log"
expect 3 "origin not in policy: no manifest request" $VERIFY --policy "$T/policy-empty.json" \
    --no-state --cache-dir "$T/cache-empty" --json "$URL"
grep -q '"code": *"policy.publisher.unknown"' "$T/out" && ok "code policy.publisher.unknown" ||
    fail "no policy.publisher.unknown"
grep -q 'well-known' "$T/www/requests.log" && fail "manifest requested for an origin the policy does not name" ||
    ok "no manifest request for an unknown origin"
[ -z "$(ls -A "$T/cache-empty" 2>/dev/null)" ] && ok "cache not grown" || fail "cache grew: $(ls "$T/cache-empty")"

# ---- manifest hashes cover the decoded body ---------------------------------
# The same page served gzip-compressed verifies against the manifest entry of
# the file (hashes are over the decoded representation); twin: the
# compressed bytes of another content are body.mismatch.
mkdir -p "$T/www/gz"
gzip -9 -n -c "$T/www/site/page.html" >"$T/www/gz/page.html"
echo "Content-Encoding: gzip" >"$T/www/gz/page.html.headers"
expect 0 "Content-Encoding: gzip page: verified against the decoded file" $V --json "$URL?via=gz"
[ "$(json_field "$T/out" verdict)" = verified ] && ok "gzip: verdict verified" || fail "gzip: not verified"
sed 's/news/NEWS/' "$T/www/site/page.html" | gzip -n -c >"$T/www/gz/index.html"
echo "Content-Encoding: gzip" >"$T/www/gz/index.html.headers"
expect 1 "gzip body of other bytes: invalid" $V --json "$O/index.html?via=gz"
grep -q '"code": *"body.mismatch"' "$T/out" && ok "gzip twin: body.mismatch" || fail "gzip twin: no body.mismatch"

# ---- what a hostile server sends is never a local error ----------------------
# A body that says gzip and is not; a header line over libcurl's 100 KiB.
printf 'this is not gzip data\n' >"$T/www/site/badgz.html"
echo "Content-Encoding: gzip" >"$T/www/site/badgz.html.headers"
printf '<p>x</p>\n' >"$T/www/site/bighdr.html"
"$PY" -c 'print("X-Big: " + "a" * 200000)' >"$T/www/site/bighdr.html.headers"
expect 3 "corrupt gzip body: unverifiable" $V --json "$O/badgz.html"
grep -q '"code": *"fetch.encoding"' "$T/out" && ok "code fetch.encoding" || fail "no fetch.encoding"
expect 3 "header line over libcurl's limit: unverifiable, not exit 2" $V --json "$O/bighdr.html"
grep -q '"code": *"fetch.too_large"' "$T/out" && ok "code fetch.too_large" || fail "no fetch.too_large"
grep -qi 'out of memory' "$T/out" "$T/err" && fail "a server's header reported as out of memory" ||
    ok "no 'out of memory'"

# ---- native messaging host ------------------------------------------------------
# One ping, one verify (of the middlebox's response), then EOF.
"$PY" - "$MURL" "$T/req" <<'EOF'
import json, struct, sys
url = sys.argv[1]
with open(sys.argv[2], "wb") as f:
    for m in ({"type": "ping", "id": 1}, {"type": "verify", "id": 2, "url": url}):
        b = json.dumps(m).encode()
        f.write(struct.pack("=I", len(b)) + b)
EOF
"$VERIFY" --native-host --policy "$P" --no-state --cache-dir "$T/cache" chrome-extension://x/ \
    <"$T/req" >"$T/resp" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && ok "native host exits 0 at EOF" || fail "native host exit $rc"
"$PY" - "$T/resp" <<'EOF' && ok "native: pong, then a report (modified)" || fail "native answers"
import json, struct, sys
d = open(sys.argv[1], "rb").read()
out = []
while d:
    n, = struct.unpack("=I", d[:4])
    out.append(json.loads(d[4:4 + n]))
    d = d[4 + n:]
assert len(out) == 2, out
assert out[0]["type"] == "pong" and out[0]["id"] == 1, out[0]
assert out[1]["id"] == 2 and "report" in out[1], out[1]
assert out[1]["report"]["verdict"] == "modified", out[1]["report"]["verdict"]
EOF
# A frame cut short by end of input: an error answer, then the host stops (exit 2).
"$PY" -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("=I", 2*1024*1024) + b"{")' >"$T/req2"
"$VERIFY" --native-host --policy "$P" --no-state <"$T/req2" >"$T/resp2" 2>/dev/null
rc=$?
[ $rc -eq 2 ] && ok "native host: cut frame exits 2" || fail "native cut frame: exit $rc"
"$PY" -c '
import json,struct,sys
d=open(sys.argv[1],"rb").read(); n,=struct.unpack("=I",d[:4])
assert json.loads(d[4:4+n])["error"]["code"]=="request.truncated"' "$T/resp2" &&
    ok "native host: request.truncated answer" || fail "native cut frame answer"
# Without a usable policy the host still answers each request, by name.
"$PY" -c 'import struct,sys; b=b"{\"type\":\"ping\",\"id\":7}"; sys.stdout.buffer.write(struct.pack("=I",len(b))+b)' >"$T/req4"
"$VERIFY" --native-host --policy "$T/no-policy.json" --no-state <"$T/req4" >"$T/resp4" 2>/dev/null
rc=$?
want="{\"id\":7,\"error\":{\"code\":\"policy.missing\",\"message\":\"no trust policy at $T/no-policy.json (create one with \`patient policy init\`)\"}}"
[ $rc -eq 0 ] && [ "$(tail -c +5 "$T/resp4")" = "$want" ] &&
    ok "native host: policy.missing answer, exit 0" || fail "native no policy: exit $rc, $(cat "$T/resp4")"

# What the browser received ("received": status, headers, body) is verified as
# given, without fetching the page again: the exact-bytes path of the extension.
# A frame over the cap is skipped (the host stays in sync and answers the next);
# a body over --max-body inside the frame cap is refused by name.
"$PY" - "$URL" "$MURL" "$TURL" "$T/www" "$T/req3" <<'EOF'
import base64, json, struct, sys
url, murl, turl, www, out = sys.argv[1:]
site = open(www + "/site/page.html", "rb").read()
mbox = open(www + "/mbox/page.html", "rb").read()
hdrs = [{"name": k.strip(), "value": v.strip()} for k, v in
        (l.split(":", 1) for l in open(www + "/mbox/page.html.headers") if ":" in l)]
b64 = lambda b: base64.b64encode(b).decode()
msgs = [
    {"type": "verify", "id": "mod", "url": murl, "received": {"status": 200, "headers": hdrs, "body": b64(mbox)}},
    {"type": "verify", "id": "bad", "url": murl, "received": {"status": 200, "headers": hdrs, "body": b64(mbox.replace(b"news.", b"NEWS!"))}},
    # the server would send the verifier a tampered copy: the received bytes are what counts
    {"type": "verify", "id": "exact", "url": turl, "received": {"status": 200, "headers": [], "body": b64(site)}},
    {"type": "verify", "id": "s404", "url": url, "received": {"status": 404, "body": ""}},
    {"type": "verify", "id": "strict", "url": url, "received": {"status": 200.5, "body": ""}},
    {"type": "verify", "id": "hdr", "url": url, "received": {"status": 200, "headers": [{"name": 1}], "body": ""}},
    {"type": "verify", "id": "big", "url": url, "received": {"status": 200, "body": b64(b"x" * 300000)}},
]
with open(out, "wb") as f:
    f.write(struct.pack("=I", 1536 * 1024) + b" " * (1536 * 1024))  # over the frame cap
    for m in msgs:
        b = json.dumps(m).encode()
        f.write(struct.pack("=I", len(b)) + b)
EOF
"$VERIFY" --native-host --policy "$P" --no-state --cache-dir "$T/cache" --max-body 200000 \
    <"$T/req3" >"$T/resp3" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && ok "native host: over-cap frame skipped, exit 0 at EOF" || fail "native received: exit $rc"
"$PY" - "$T/resp3" <<'EOF' && ok "native received: modified / invalid / exact bytes / 404 / strict / too large" || fail "native received answers"
import json, struct, sys
d = open(sys.argv[1], "rb").read()
out = []
while d:
    n, = struct.unpack("=I", d[:4])
    out.append(json.loads(d[4:4 + n]))
    d = d[4 + n:]
assert len(out) == 8, out
assert out[0]["error"]["code"] == "request.too_large" and "id" not in out[0], out[0]
a = {o["id"]: o for o in out[1:]}
assert a["mod"]["report"]["verdict"] == "modified", a["mod"]
bad = a["bad"]["report"]
assert bad["verdict"] == "invalid", bad["verdict"]
assert a["exact"]["report"]["verdict"] == "verified", a["exact"]
s404 = a["s404"]["report"]
assert s404["verdict"] == "unverifiable" and s404["results"][0]["code"] == "fetch.status", s404
assert a["strict"]["error"]["code"] == "request.malformed", a["strict"]
assert a["hdr"]["error"]["code"] == "request.malformed", a["hdr"]
assert a["big"]["error"]["code"] == "body.too_large" and "200000" in a["big"]["error"]["message"], a["big"]
EOF

# ---- the body streamed to the checks, or kept -------------------------------
# Without --bundle the body goes to the checks as it arrives and is not
# kept; with --bundle it is kept (the bundle holds it) and checked in
# memory. Both must give the same report, byte for byte: verdict, codes,
# proof, positions.
mkdir -p "$T/www/short" "$T/www/conf" "$T/www/bigt" "$T/www/trailer"
cat >"$T/withhold.json" <<'EOF'
{"patient": 1, "type": "rules", "rules": [
 {"id": "mal", "match": {"literal": "<p>EVIL-PAYLOAD-TEST</p>"}, "action": "remove",
  "reason": "tracker.payload", "disclose": false}]}
EOF
BURL="$O/big.html"
for v in mbox gz conf bigt; do
    rules="$top_srcdir/middlebox/rules/trackers-only.json"
    [ $v = conf ] && rules="$T/withhold.json"
    "$MBOX" -q -s "$T/mb.key" --name "Test Filter" --service tracker-filter \
        --rules "$rules" --url "$BURL?via=$v" --type text/html \
        --header-out "$T/www/$v/big.html.headers" <"$T/www/site/big.html" >"$T/www/$v/big.html" ||
        { echo "FAIL: patient-mbox (big, $v)"; exit 1; }
done
gzip -9 -n -c "$T/www/gz/big.html" >"$T/big.gz" && mv "$T/big.gz" "$T/www/gz/big.html"
echo "Content-Encoding: gzip" >>"$T/www/gz/big.html.headers"
# A byte changed far into the body after the hop; a gzip body cut short.
"$PY" - "$T/www/bigt/big.html" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[400000] ^= 0x20
open(sys.argv[1], "wb").write(bytes(b))
EOF
gzip -9 -n -c "$T/www/site/page.html" | head -c 60 >"$T/www/bigt/page.html"
echo "Content-Encoding: gzip" >"$T/www/bigt/page.html.headers"
cp "$T/www/site/page.html" "$T/www/short/page.html"
# One hop, its body sent chunked and followed by trailers that are no
# headers of the response: a line starting as a status line does and a
# Patient-Change that does not parse (tests/verify_cli_server.py).
"$MBOX" -q -s "$T/mb.key" --name "Test Filter" --service tracker-filter \
    --rules "$top_srcdir/middlebox/rules/trackers-only.json" --url "$URL?via=trailer" --type text/html \
    --header-out "$T/www/trailer/page.html.headers" <"$T/www/site/page.html" >"$T/www/trailer/page.html" ||
    { echo "FAIL: patient-mbox (trailer)"; exit 1; }
AT="@$(date +%s)"
same() { # WANT NAME URL: the exit code, and one report streamed and kept
    $V --no-state --json --at "$AT" "$3" >"$T/s1" 2>"$T/e1"
    r1=$?
    $V --no-state --json --at "$AT" --bundle "$T/sb.json" "$3" >"$T/s2" 2>"$T/e2"
    r2=$?
    if [ $r1 -eq "$1" ] && [ $r2 -eq "$1" ] && cmp -s "$T/s1" "$T/s2"; then
        ok "streamed = kept: $2 (exit $r1)"
    else
        fail "streamed != kept: $2 (exit $r1 / $r2, wanted $1)"
        diff "$T/s1" "$T/s2" | head -20
        cat "$T/e1" "$T/e2" | head -5
    fi
}
same 0 "untouched page" "$URL"
same 0 "one hop" "$MURL"
same 1 "tampered after the hop" "$TURL"
same 1 "forged descriptor" "$URL?via=forged"
same 1 "untrusted middlebox" "$URL?via=untrusted"
same 0 "gzip page" "$URL?via=gz"
same 1 "gzip twin of other bytes" "$O/index.html?via=gz"
same 0 "600 KB, one hop" "$BURL?via=mbox"
same 0 "600 KB, one hop, gzip" "$BURL?via=gz"
same 0 "600 KB, withheld deletion" "$BURL?via=conf"
grep -q '"proof": *"confined"' "$T/s1" && ok "600 KB withheld: proof confined" || fail "600 KB withheld: not confined"
same 1 "600 KB, a byte changed after the hop" "$BURL?via=bigt"
grep -q '"code": *"body.mismatch"' "$T/s1" && ok "600 KB changed: body.mismatch" || fail "600 KB changed: no body.mismatch"
# libcurl takes a gzip stream that stops early for the bytes it gave: the
# body is then short of what the origin signed, as when it was kept.
same 1 "gzip body cut short" "$URL?via=bigt"
grep -q '"code": *"body.mismatch"' "$T/s1" && ok "cut gzip: body.mismatch" || fail "cut gzip: no body.mismatch"
same 3 "body shorter than its Content-Length" "$URL?via=short"
grep -q '"code": *"fetch.failed"' "$T/s1" && ok "short body: fetch.failed" || fail "short body: no fetch.failed"
same 3 "not listed" "$O/missing.html"
same 0 "chunked, with trailers" "$URL?via=trailer"
[ "$(json_field "$T/s1" verdict)" = modified ] && ok "trailers: verdict modified, trailers ignored" ||
    fail "trailers: verdict $(json_field "$T/s1" verdict)"

# ---- bundles ----------------------------------------------------------------
expect 0 "--bundle written" $V -q --bundle "$T/b.json" "$MURL"
"$PY" -m json.tool "$T/b.json" >/dev/null 2>&1 && ok "bundle is JSON" || fail "bundle is not JSON"
kill "$SRV" 2>/dev/null
wait "$SRV" 2>/dev/null
SRV=
expect 0 "--offline BUNDLE --policy (server gone): modified" $VERIFY --offline "$T/b.json" --policy "$P" --json
[ "$(json_field "$T/out" verdict)" = modified ] && ok "offline verdict modified" || fail "offline verdict"
expect 1 "--offline --strict" $VERIFY --offline "$T/b.json" --policy "$P" --strict -q
expect 1 "--offline --at after expiry" $VERIFY --offline "$T/b.json" --policy "$P" --at 2099-01-01T00:00:00Z -q
expect 1 "--offline with a policy that does not trust the hop" $VERIFY --offline "$T/b.json" \
    --policy "$T/policy-nombox.json" -q
# The bundle's own policy (chosen by whoever made the bundle, here one that
# trusts the hop) is not used unless asked for: by default the user's.
expect 2 "--offline without --policy and no policy of yours: error" $VERIFY --offline "$T/b.json"
grep -q 'patient policy init' "$T/err" && ok "message: make a policy" || fail "no policy hint offline"
mkdir -p "$XDG_CONFIG_HOME/patient" && cp "$T/policy-nombox.json" "$XDG_CONFIG_HOME/patient/policy.json"
expect 1 "--offline uses your default policy, not the bundle's" $VERIFY --offline "$T/b.json" --json
grep -q '"code": *"policy.middlebox.unknown"' "$T/out" && ok "code policy.middlebox.unknown (your policy)" ||
    fail "offline default: not the user's policy"
expect 0 "--offline --bundle-policy: the bundle's own policy, on request" $VERIFY --offline "$T/b.json" \
    --bundle-policy --json
[ "$(json_field "$T/out" verdict)" = modified ] && ok "bundle policy verdict modified" || fail "bundle policy verdict"
rm -f "$XDG_CONFIG_HOME/patient/policy.json"
expect 2 "--bundle-policy with --policy: usage" $VERIFY --offline "$T/b.json" --bundle-policy --policy "$P"
expect 2 "--bundle-policy with --native-host: usage" $VERIFY --native-host --offline "$T/b.json" \
    --bundle-policy </dev/null
grep -q 'not --native-host' "$T/err" && [ ! -s "$T/out" ] &&
    ok "--bundle-policy with --native-host: said, nothing answered" || fail "native bundle-policy: $(cat "$T/err")"
# The recorded HTTP status counts: the same bundle saying 404 is unverifiable.
"$PY" - "$T/b.json" "$T/b-404.json" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
b["status"] = 404
json.dump(b, open(sys.argv[2], "w"))
EOF
expect 3 "--offline bundle recorded HTTP 404: unverifiable" $VERIFY --offline "$T/b-404.json" --policy "$P" --json
grep -q '"code": *"fetch.status"' "$T/out" && ok "code fetch.status (offline)" || fail "404 bundle: no fetch.status"
"$PY" - "$T/b.json" "$T/b-edited.json" <<'EOF'
import base64, json, sys
b = json.load(open(sys.argv[1]))
body = bytearray(base64.b64decode(b["body"]))
body[0] ^= 1
b["body"] = base64.b64encode(bytes(body)).decode()
json.dump(b, open(sys.argv[2], "w"))
EOF
expect 2 "--offline edited bundle: error" $VERIFY --offline "$T/b-edited.json" --policy "$P"
grep -qi 'bundle' "$T/err" && ok "edited bundle message" || fail "no message for the edited bundle"
expect 2 "--offline missing file" $VERIFY --offline "$T/nope.json" --policy "$P"

# ---- usage -------------------------------------------------------------------
expect 2 "no URL" $V
grep -q 'missing URL' "$T/err" && grep -q -- '--help' "$T/err" && ok "message: missing URL" || fail "no helpful message"
expect 2 "two URLs" $V "$URL" "$URL"
expect 2 "unknown option" $V --frobnicate "$URL"
expect 2 "bad --at" $V --at yesterday "$URL"
grep -q 'not a time' "$T/err" && ok "message: --at" || fail "no --at message"
expect 2 "bad --timeout" $V --timeout 0 "$URL"
expect 2 "--offline with a URL" $VERIFY --offline "$T/b.json" "$URL"
expect 2 "no policy file" $VERIFY --policy "$T/none.json" "$URL"
grep -q 'patient policy init' "$T/err" && ok "message: how to make a policy" || fail "no policy hint"
expect 0 "--help" $VERIFY --help
grep -q 'Verdicts and exit codes' "$T/out" && ok "--help lists exit codes" || fail "--help"

echo "$fails failure(s)"
[ $fails -eq 0 ]
