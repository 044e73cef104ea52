#!/usr/bin/env bash
# Load test on the real loopback stack: wrk (2 threads, 50 connections) for
# PATIENT_LOAD_SECONDS (default 30; bounded to 1..600) through Squid +
# c-icap/srv_patient, every request for the edited page.
# Pass when: zero socket errors, zero non-2xx responses, every response wrk
# received carries a Patient-Change header, the audit log holds exactly one
# change entry per page Squid served through the middlebox (its access log),
# and the log verifies (deep, with the middlebox key) after a clean stop.
# Exit 77 (skip) only when the module was not built or a tool is missing.
set -euo pipefail

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
STACK=$top_srcdir/scripts/stack
export PATIENT_SRV_MODULE=${PATIENT_SRV_MODULE:-$top_builddir/middlebox/.libs/srv_patient.so}
export PATIENT_BIN=${PATIENT_BIN:-$top_builddir/cli/patient}
LOGCHECK=$top_builddir/tests/stack_logcheck
secs=${PATIENT_LOAD_SECONDS:-30}
[[ "$secs" =~ ^[0-9]+$ ]] && (( secs >= 1 && secs <= 600 )) || { echo "PATIENT_LOAD_SECONDS: 1..600"; exit 2; }

[[ -r "$PATIENT_SRV_MODULE" ]] || { echo "SKIP: srv_patient not built"; exit 77; }
for b in nginx squid c-icap curl wrk; do
    command -v "$b" >/dev/null 2>&1 || { echo "SKIP: $b not installed (scripts/deps)"; exit 77; }
done

work=$(mktemp -d /tmp/patient-load.XXXXXX)
wrk_pid=
cleanup() {
    local rc=$?
    [[ -n "$wrk_pid" ]] && kill "$wrk_pid" 2>/dev/null || true
    "$STACK" stop "$work/stack" >/dev/null 2>&1 || true
    if (( rc != 0 )) && [[ -d "$work/stack" ]]; then
        for f in c-icap-server.log c-icap.out squid/cache.log; do
            [[ -s "$work/stack/$f" ]] && { echo "---- $f"; tail -n 20 "$work/stack/$f"; }
        done
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp -r "$top_srcdir/tests/site" "$work/site"
chmod -R u+w "$work/site"    # the source tree may be read-only (make distcheck)
eval "$("$STACK" start "$work/stack" "$work/site" 2>"$work/stack-start.log")" || {
    cat "$work/stack-start.log"; echo "stack failed to start"; exit 1; }
host=${ORIGIN_URL#http://}
proxy_hostport=${PROXY_URL#http://}

# wrk speaks to a proxy only with absolute-form request targets: send them to
# the proxy port with the origin in the request line and Host header.
cat >"$work/proxy.lua" <<EOF
wrk.method = "GET"
wrk.path = "$ORIGIN_URL/index.html"
wrk.headers["Host"] = "$host"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) responses = 0; modified = 0; bad = 0 end
function response(status, headers, body)
    responses = responses + 1
    if headers["Patient-Change"] ~= nil or headers["patient-change"] ~= nil then
        modified = modified + 1
    end
    if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
    local r, m, b = 0, 0, 0
    for _, t in ipairs(threads) do
        r = r + t:get("responses"); m = m + t:get("modified"); b = b + t:get("bad")
    end
    io.write(string.format("LUA responses=%d modified=%d bad=%d\n", r, m, b))
end
EOF

echo "# wrk -t2 -c50 -d${secs}s through $PROXY_URL for $ORIGIN_URL/index.html"
timeout $((secs + 60)) wrk -t2 -c50 -d"${secs}s" --timeout 10s --latency -s "$work/proxy.lua" \
    "http://$proxy_hostport/" >"$work/wrk.out" 2>&1 &
wrk_pid=$!
wait "$wrk_pid" || { cat "$work/wrk.out"; wrk_pid=; echo "wrk failed"; exit 1; }
wrk_pid=
cat "$work/wrk.out"

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
grep -q '^  Socket errors' "$work/wrk.out" && fail "socket errors: $(grep '^  Socket errors' "$work/wrk.out")"
grep -q 'Non-2xx or 3xx responses' "$work/wrk.out" && fail "$(grep 'Non-2xx' "$work/wrk.out")"
read -r responses modified bad < <(sed -n 's/^LUA responses=\([0-9]*\) modified=\([0-9]*\) bad=\([0-9]*\)$/\1 \2 \3/p' "$work/wrk.out")
[[ -n "${responses:-}" ]] || { fail "no summary from the Lua script"; responses=0 modified=0 bad=0; }
(( responses > 0 )) || fail "no responses"
(( bad == 0 )) || fail "$bad non-2xx responses"
(( modified == responses )) || fail "$((responses - modified)) of $responses responses without Patient-Change"

# A clean stop lets in-flight transactions finish, flushes Squid's access log
# and makes srv_patient write its final checkpoint.
"$STACK" stop "$work/stack" >/dev/null 2>&1
log_lines() { grep " GET $ORIGIN_URL/index.html " "$work/stack/squid/access.log" || true; }
served=$(log_lines | grep -v ABORTED | grep -c '/200 ' || true)
aborted=$(log_lines | grep -c ABORTED || true)
icap200=$(grep -c ' RESPMOD patient 200' "$work/stack/c-icap-access.log" || true)
"$LOGCHECK" "$AUDIT_LOG" "$MBOX_PUB" >"$work/log.txt" || true
sed 's/^/# log: /' "$work/log.txt"
changes=$(sed -n 's/^changes //p' "$work/log.txt")
changes=${changes:-0}
echo "# wrk responses $responses (with Patient-Change $modified); Squid completed $served," \
     "aborted at the end $aborted; c-icap RESPMOD 200 (modified responses released): $icap200;" \
     "audit change entries: $changes"
grep -qx 'result ok' "$work/log.txt" || fail "audit log does not verify"
# Exact: one change entry per modified response the middlebox released.
(( changes == icap200 )) || fail "audit change entries $changes != modified responses released by c-icap $icap200"
# Squid's view: every completed transaction was modified and logged. When
# wrk stops it drops its in-flight requests (at most one per connection):
# Squid may have finished writing some of them (completed, never read by
# wrk) and aborted others whose ICAP transactions may or may not have
# finished.
(( served >= responses && served <= responses + 50 )) \
    || fail "Squid completed $served transactions, wrk received $responses (50 connections)"
(( changes >= served && changes <= served + aborted )) \
    || fail "audit change entries $changes outside [completed $served, completed + aborted $((served + aborted))]"
if (( fails )); then echo "$fails checks failed"; exit 1; fi
echo "ok - $responses responses in ${secs}s, all modified, $changes change entries, log verifies"
