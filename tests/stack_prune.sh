#!/usr/bin/env bash
# DescriptorDir retention through the real c-icap (scripts/stack): the
# descriptors srv_patient serves for streamed changes are pruned by age
# (patient.DescriptorKeep) and count (patient.DescriptorMax) after a
# request that stored one, but never the descriptor of a response still
# in flight, which its client must still be able to fetch.
#
#  1. DescriptorDir holds two earlier descriptors: one 2 days old (over
#     DescriptorKeep 1d) and one an hour old.
#  2. Response A (a 5 MB page, streamed, changed) goes to an ICAP client
#     that sends the whole body but reads only the headers: srv_patient
#     has signed, logged and stored A's descriptor and is still sending.
#     Its file is locked; it is then made 2 days old as well.
#  3. Response B (1 MB, through Squid) completes; its release prunes:
#     the 2-day-old file goes (age), the hour-old one goes (DescriptorMax
#     1: the oldest beyond it; A, locked, does not count), A and B stay.
#  4. A's client reads the rest: A's body is the page with the banner,
#     its descriptor is served (200) and A verifies (modified, exit 0);
#     forged twin: the same received page with its reference pointing at
#     the pruned descriptor (which answers 404) is invalid, body.mismatch:
#     a descriptor that cannot be fetched fails like a missing one.
# Every wait is bounded; every curl has a timeout.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/stack_prelude.sh"
stack_need flock
stack_workdir patient-prune
stacks+=("$work/stack")

mkdir -p "$work/site"
for s in 1000000 5000000; do
    { printf '<html><head><title>t</title></head><body class="x">'
      head -c "$s" /dev/zero | tr '\0' 'a'
      printf '</body>\n</html>\n'; } >"$work/site/m$s.html"
done
export STACK_CICAP_EXTRA="patient.DescriptorKeep 1d
patient.DescriptorMax 1"
stack_start "$work/site"
"$PATIENT_BIN" keygen -W -p "$work/pub.pub" -s "$work/pub.key" >/dev/null
"$PUBLISH" -q -s "$work/pub.key" --origin "$ORIGIN_URL" "$work/site" >/dev/null 2>&1
check "manifest published" test -s "$work/site/.well-known/patient/manifest.json"
check "directives parsed: DescriptorKeep 1d, DescriptorMax 1" \
    grep -q '(kept 86400 s, at most 1;' "$STACK_DIR/c-icap-server.log"

ddir="$AUDIT_LOG.descriptors"
old=0123456789abcdef0123456789abcdef mid=fedcba9876543210fedcba9876543210
printf 'an earlier descriptor\n' >"$ddir/$old"
printf 'an earlier descriptor\n' >"$ddir/$mid"
touch -d '2 days ago' "$ddir/$old"
touch -d '1 hour ago' "$ddir/$mid"

# A: an ICAP client (Squid's part, without Squid: Squid reads as far
# ahead of a slow client as its read_ahead_gap, which scripts/stack sets
# above every body) that sends the whole response, reads the adapted
# headers, then waits for $work/go before reading the rest.
"$PY" - "$ICAP_URL" "$ORIGIN_URL/m5000000.html" "$work/site/m5000000.html" "$work" \
    >"$work/a.out" 2>"$work/a.err" <<'PY' &
import os, re, socket, sys, time
icap, url, page, work = sys.argv[1:]
host, port = re.match(r"icap://([^:/]+):(\d+)/", icap).groups()
body = open(page, "rb").read()
hostport = re.match(r"https?://([^/]+)", url).group(1)
req = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (url, hostport)).encode()
res = ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
       % len(body)).encode()
head = ("RESPMOD %s ICAP/1.0\r\nHost: %s:%s\r\nEncapsulated: req-hdr=0, res-hdr=%d, "
        "res-body=%d\r\n\r\n" % (icap, host, port, len(req), len(req) + len(res))).encode()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # read nothing ahead
s.settimeout(30)
s.connect((host, int(port)))
s.sendall(head + req + res)
for i in range(0, len(body), 65536):
    c = body[i:i + 65536]
    s.sendall(b"%x\r\n" % len(c) + c + b"\r\n")
s.sendall(b"0\r\n\r\n")
buf = b""
def need(n):
    global buf
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            sys.exit("connection closed early")
        buf += d
def line():
    global buf
    while b"\r\n" not in buf:
        need(len(buf) + 1)
    l, buf = buf.split(b"\r\n", 1)
    return l
while b"\r\n\r\n" not in buf:
    need(len(buf) + 1)
icaphead, buf = buf.split(b"\r\n\r\n", 1)
enc = dict(x.strip().split("=") for x in
           re.search(rb"Encapsulated: *([^\r]*)", icaphead).group(1).decode().split(","))
need(int(enc["res-body"]))
http, buf = buf[:int(enc["res-body"])], buf[int(enc["res-body"]):]
open(work + "/a.hdr", "wb").write(http)
m = re.search(rb"\r\nPatient-Change-Ref: *([^\r]*)", http)
print(m.group(1).decode() if m else "none", flush=True)
for _ in range(600):
    if os.path.exists(work + "/go"):
        break
    time.sleep(0.1)
out = []
while True:
    n = int(line().split(b";")[0], 16)
    if n == 0:
        break
    need(n + 2)
    out.append(buf[:n])
    buf = buf[n + 2:]
open(work + "/a.body", "wb").write(b"".join(out))
PY
apid=$!
wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
    local t=$(( $1 * 10 )); shift
    until "$@"; do (( t-- > 0 )) || return 1; sleep 0.1; done
}
wait_for 30 test -s "$work/a.out" || true
aref=$(head -1 "$work/a.out")
aid=${aref##*/}
check "A: streamed, reference to the middlebox ($aref)" \
    bash -c "[[ '$aref' =~ ^http://patient-mbox\\.invalid/\\.well-known/patient/change/[0-9a-f]{32}$ ]]"
check "A: descriptor stored before the response ends" wait_for 30 test -s "$ddir/$aid"
check "A: its descriptor is locked while the response is in flight" \
    bash -c "! flock -n -x '$ddir/$aid' true"
touch -d '2 days ago' "$ddir/$aid"

rc=0
curl -sS --max-time 60 -D "$work/b.hdr" -o "$work/b.body" -x "$PROXY_URL" \
    "$ORIGIN_URL/m1000000.html" 2>"$work/b.curl" || rc=$?
bref=$(sed -n 's/^Patient-Change-Ref: *//Ip' "$work/b.hdr" | tr -d '\r')
bid=${bref##*/}
check "B: fetched through the proxy, streamed and changed (curl exit $rc)" \
    bash -c "[[ $rc == 0 && -n '$bid' ]] && grep -q 'patient-notice' '$work/b.body'"
check "pruned after B: the 2-day-old descriptor (DescriptorKeep)" wait_for 10 test ! -e "$ddir/$old"
check "pruned after B: the hour-old descriptor (DescriptorMax 1)" wait_for 10 test ! -e "$ddir/$mid"
check "kept: A's descriptor, 2 days old but in flight" test -s "$ddir/$aid"
check "kept: B's descriptor, the newest" test -s "$ddir/$bid"
check "A: still in flight during the pruning" kill -0 "$apid"

: >"$work/go"
rc=0
wait "$apid" || rc=$?
check "A: the rest of the body read (client exit $rc)" test "$rc" = 0
check "A: body is exactly the page with the banner after <body>" "$PY" - \
    "$top_srcdir/middlebox/rules/example.json" "$work/site/m5000000.html" "$work/a.body" <<'PY'
import json, sys
rules = json.load(open(sys.argv[1]))["rules"]
text = [r for r in rules if r["id"] == "notice-banner"][0]["text"].encode()
orig, got = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
tag = b'<body class="x">'
sys.exit(0 if got == orig.replace(tag, tag + text, 1) else 1)
PY
code=$(curl -sS --max-time 10 -o "$work/a.desc" -w '%{http_code}' -x "$PROXY_URL" "$aref" || true)
check "A: descriptor served after the pruning (HTTP $code)" test "$code" = 200
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -x "$PROXY_URL" \
    "${aref%/*}/$old" || true)
check "pruned descriptor: not served (HTTP $code)" test "$code" = 404

# A as its client received it, verified by the native host through the
# proxy; the twin points its reference at the pruned descriptor.
banner_policy "$work/policy.json" "$work/pub.pub"
native_requests "$ORIGIN_URL/m5000000.html" "$work/a.hdr" "$work/a.body" "$work/nreq" ref "$old"
native_host nreq nat --proxy "$PROXY_URL"
got=$(native_verdicts "$work/nat")
check "A verifies: modified; with its reference at the pruned descriptor: invalid, body.mismatch (got $got, exit $rc)" \
    test "$got/$rc" = "modified invalid(body.mismatch)/0"

if (( fails )); then
    ls -la --time-style=full-iso "$ddir" | head -20
    cat "$work/a.err" "$work/nat.err" 2>/dev/null | tail -20
    echo "$fails of $n checks failed"
    exit 1
fi
echo "all $n checks passed"
