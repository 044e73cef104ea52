#!/usr/bin/env bash
# Rule limits through the real stack (nginx -> Squid 5.7 -> c-icap +
# srv_patient, scripts/stack), held (body <= HoldMax, inline Patient-Change)
# and streamed (over HoldMax, Patient-Change-Ref): the documented fail-safe
# when matching meets its work limit or matches more edits than one
# descriptor holds (docs/format/rules.md, docs/MIDDLEBOX.md): a rules.limit
# event in the audit log naming the URL, and never a completed response
# with a half-applied rule:
#   held, crafted body (work limit)          -> unchanged, verified, event
#   held, 10001 matches (edit cap)           -> unchanged, verified, event
#   streamed, work limit before any change   -> rest relayed: unchanged,
#                                               verified, event
#   streamed, work limit after a change      -> abandoned (the transfer
#                                               breaks), event, no change entry
#   streamed, 10001 matches (edit cap)       -> abandoned, event, no entry
#   twin: the same rules on an ordinary 1 MB page with a tracker near its
#   end -> both edits, modified; forged twins (a byte of a passed-unchanged
#   body changed; a byte of the changed one changed) are invalid.
# Every curl has a timeout: a stall is a failure, not a hang.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/stack_prelude.sh"
stack_need
stack_workdir patient-limits
stacks+=("$work/stack")

# The banner rule, the tracker rule whose crafted worst case (an unbounded
# run kept alive at every start, "<script " repeated) meets the default
# work limit, and a literal that may match 100000 times (past the 10000
# edits one descriptor holds).
cat >"$work/rules.json" <<'EOF'
{ "patient": 1, "type": "rules", "rules": [
  { "id": "notice-banner", "match": { "regex": "<body([[:space:]][^>]{0,512})?>" },
    "action": "insert_after", "text": "<div class=\"patient-notice\">notice</div>",
    "reason": "banner.inserted", "max_matches": 1 },
  { "id": "tracker", "match": { "regex": "<script[^>]*src=[^>]*tracker[^>]*>" },
    "action": "remove", "reason": "tracker.removed" },
  { "id": "marker", "match": { "literal": "@M@" }, "action": "remove",
    "reason": "tracker.removed", "max_matches": 100000 } ] }
EOF

mkdir -p "$work/site"
# page NAME SIZE PART...: PART is "body" (<body class="x">), "a:N" (N
# bytes of 'a'), "crafted" ("<script " to the end), "marks:N" (N markers
# and their padding) or "tracker" (a tracker script tag); the page is
# padded with 'a' to exactly SIZE bytes before its closing tags.
"$PY" - "$work/site" <<'PY'
import os, sys
d = sys.argv[1]
head, tail = b"<html><head><title>t</title></head>", b"</div>\n</html>\n"
def page(name, size, *parts):
    b = head
    for p in parts:
        if p == "body": b += b'<body class="x"><div>'
        elif p.startswith("a:"): b += b"a" * int(p[2:])
        elif p.startswith("marks:"): b += b"@M@" * int(p[6:])
        elif p == "tracker": b += b'<script src="https://tracker.example/t.js"></script>'
        elif p == "crafted":
            n = size - len(b) - len(tail)
            b += (b"<script " * (n // 8 + 1))[:n]
    b += b"a" * (size - len(b) - len(tail)) + tail
    assert len(b) == size, (name, len(b))
    open(os.path.join(d, name + ".html"), "wb").write(b)
page("heldwork", 60000, "crafted")
page("heldedits", 60000, "body", "marks:10001")
page("streamwork", 1000000, "a:100000", "crafted")
page("streamafter", 1000000, "body", "a:300000", "crafted")
page("streamedits", 1000000, "body", "a:300000", "marks:10001")
page("ordinary", 1000000, "body", "a:900000", "tracker")
PY

stack_start "$work/site" --rules "$work/rules.json"
"$PATIENT_BIN" keygen -W -p "$work/pub.pub" -s "$work/pub.key" >/dev/null
"$PUBLISH" -q -s "$work/pub.key" --origin "$ORIGIN_URL" "$work/site" >/dev/null 2>&1
check "manifest published" test -s "$work/site/.well-known/patient/manifest.json"
banner_policy "$work/policy.json" "$work/pub.pub" 'banner.*' 'tracker.*'

pverify() { # pverify NAME: patient-verify NAME.html through the proxy; sets rc
    rc=0
    "$VERIFY" --json --policy "$work/policy.json" --no-state --cache-dir "$work/cache" \
        --timeout 60 --proxy "$PROXY_URL" "$ORIGIN_URL/$1.html" >"$work/v$1.json" 2>"$work/v$1.err" || rc=$?
}
fetch() { # fetch NAME: curl NAME.html through the proxy; sets rc
    rc=0
    curl -sS --max-time 60 -D "$work/$1.hdr" -o "$work/$1.body" -x "$PROXY_URL" \
        "$ORIGIN_URL/$1.html" 2>"$work/$1.curl" || rc=$?
}
# events URL EVENT DETAIL: how many audit-log events EVENT for URL whose
# detail contains DETAIL
events() {
    "$PY" - "$AUDIT_LOG" "$@" <<'PY'
import json, sys
log, url, event, detail = sys.argv[1:5]
n = 0
for line in open(log, encoding="utf-8"):
    try: e = json.loads(line)
    except ValueError: continue
    if e.get("event") == event and e.get("url") == url and detail in e.get("detail", ""):
        n += 1
print(n)
PY
}
# changes URL: how many change entries the audit log holds for URL
changes() {
    "$PATIENT_BIN" audit list "$AUDIT_LOG" --json 2>/dev/null |
        "$PY" -c 'import json, sys
print(sum(1 for l in sys.stdin if l.strip() and json.loads(l).get("url") == sys.argv[1]))' "$1"
}

# Passed unchanged: the origin's bytes, no descriptor, verified, one event;
# its forged twin (a byte changed, as the client received it) is invalid.
unchanged() { # unchanged NAME HOW DETAIL
    local name=$1 how=$2 detail=$3 got
    fetch "$name"
    check "$name ($how): fetched (curl exit $rc)" test "$rc" = 0
    check "$name: unchanged" cmp -s "$work/$name.body" "$work/site/$name.html"
    check "$name: no Patient-Change" bash -c "! grep -qi '^Patient-Change:' '$work/$name.hdr'"
    pverify "$name"
    check "$name: patient-verify verified, exit 0 (got $(verdict "$work/v$name.json"), $rc)" \
        test "$(verdict "$work/v$name.json")/$rc" = verified/0
    got=$(events "$ORIGIN_URL/$name.html" rules.limit "$detail")
    # each fetch (curl, patient-verify) met the limit once
    check "$name: rules.limit events '$detail' for its URL: 2 (got $got)" test "$got" = 2
    check "$name: no change entry" test "$(changes "$ORIGIN_URL/$name.html")" = 0
    native_requests "$ORIGIN_URL/$name.html" "$work/$name.hdr" "$work/$name.body" "$work/n$name" byte
    native_host "n$name" "a$name"
    got=$(native_verdicts "$work/a$name")
    check "$name: as received verified; a byte changed invalid (got $got, exit $rc)" \
        bash -c "[[ '$got' == 'verified invalid('*body.mismatch* && $rc == 0 ]]"
}
unchanged heldwork held "rule matching stopped at its work limit; response passed unchanged"
unchanged heldedits held "rules matched more edits than one descriptor holds"
unchanged streamwork streamed "streamed response passed unchanged"
check "streamwork: streamed (reference header)" grep -qi '^Patient-Change-Ref:' "$work/streamwork.hdr"

# Abandoned: a change was found (the banner, at the start) before the
# limit, so the response cannot complete honestly: the client sees a
# broken transfer, shorter than the page, and nothing is signed or logged
# as a change; the event says why.
abandoned() { # abandoned NAME
    local name=$1 got size
    fetch "$name"
    size=$(stat -c %s "$work/$name.body" 2>/dev/null || echo 0)
    check "$name: transfer broken (curl exit $rc), $size of $(stat -c %s "$work/site/$name.html") bytes" \
        bash -c "(( $rc != 0 && $size < $(stat -c %s "$work/site/$name.html") ))"
    check "$name: streamed (reference header)" grep -qi '^Patient-Change-Ref:' "$work/$name.hdr"
    got=$(events "$ORIGIN_URL/$name.html" rules.limit "streamed response abandoned after a change was released")
    check "$name: one rules.limit event 'abandoned after a change' for its URL (got $got)" test "$got" = 1
    check "$name: no change entry" test "$(changes "$ORIGIN_URL/$name.html")" = 0
    ref=$(sed -n 's/^Patient-Change-Ref: *//Ip' "$work/$name.hdr" | tr -d '\r')
    got=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -x "$PROXY_URL" "$ref" || true)
    check "$name: nothing behind its reference (HTTP $got)" test "$got" = 404
}
abandoned streamafter
abandoned streamedits

# The twin: the same rules over an ordinary page of the same size complete,
# with both edits, and verify; a byte changed is invalid.
fetch ordinary
check "ordinary: fetched (curl exit $rc)" test "$rc" = 0
"$PY" - "$work/site/ordinary.html" "$work/ordinary.body" >"$work/ordinary.cmp" <<'PY' || true
import sys
o, g = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
t = b'<body class="x">'
want = o.replace(t, t + b'<div class="patient-notice">notice</div>', 1)
want = want.replace(b'<script src="https://tracker.example/t.js">', b"", 1)
print("same" if g == want else "differs")
PY
check "ordinary: banner inserted and tracker removed, every other byte kept" grep -qx same "$work/ordinary.cmp"
pverify ordinary
check "ordinary: patient-verify modified, exit 0 (got $(verdict "$work/vordinary.json"), $rc)" \
    test "$(verdict "$work/vordinary.json")/$rc" = modified/0
check "ordinary: two change entries (curl, patient-verify)" test "$(changes "$ORIGIN_URL/ordinary.html")" = 2
native_requests "$ORIGIN_URL/ordinary.html" "$work/ordinary.hdr" "$work/ordinary.body" "$work/nord" byte
native_host nord aord --proxy "$PROXY_URL"
got=$(native_verdicts "$work/aord")
check "ordinary: as received modified; a byte changed invalid (got $got, exit $rc)" \
    bash -c "[[ '$got' == 'modified invalid('*body.mismatch* && $rc == 0 ]]"

"$STACK" stop "$work/stack" >/dev/null 2>&1
"$LOGCHECK" "$AUDIT_LOG" "$MBOX_PUB" >"$work/log.txt" || true
check "audit log verifies" grep -qx 'result ok' "$work/log.txt"
check "audit log: 2 change entries, ordinary's (got $(sed -n 's/^changes //p' "$work/log.txt"))" \
    grep -qx 'changes 2' "$work/log.txt"

if (( fails )); then
    cat "$work/log.txt"
    echo "$fails of $n checks failed"
    exit 1
fi
echo "all $n checks passed"
