#!/usr/bin/env bash
# Load test on the real loopback stack: wrk (2 threads, 50 connections) for
# PATIENT_LOAD_SECONDS (default 30; bounded to 1..600) through Squid +
# c-icap/srv_patient, a mix of edited pages: 10 KB (held, inline
# Patient-Change) 18 of 20 requests, 1 MB and 5 MB (streamed, descriptor by
# Patient-Change-Ref) one each. PATIENT_LOAD_MIX=0: every request for the
# edited index.html instead. (The mix once showed a few wrk read errors per
# run: Squid 5.7 truncating streamed responses whose small last piece came
# after a pause; srv_patient now ends them with a 64 KiB burst,
# docs/MIDDLEBOX.md.)
# Pass when: zero socket errors, zero non-2xx responses, every response wrk
# received carries a Patient-Change or Patient-Change-Ref header, the audit
# log holds one change entry per edited page Squid completed (its access
# log; allowance for wrk's in-flight requests at the end), and the log
# verifies (deep, with the middlebox key) after a clean stop.
# Exit 77 (skip) only when the module was not built or a tool is missing.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/stack_prelude.sh"
secs=${PATIENT_LOAD_SECONDS:-30}
mix=${PATIENT_LOAD_MIX:-1}
[[ "$mix" == 0 || "$mix" == 1 ]] || { echo "PATIENT_LOAD_MIX: 0 or 1"; exit 2; }
[[ "$secs" =~ ^[0-9]+$ ]] && (( secs >= 1 && secs <= 600 )) || { echo "PATIENT_LOAD_SECONDS: 1..600"; exit 2; }
stack_need wrk
wrk_pid=
# wrk must not outlive the script (it runs in the background below).
stack_before_stop() { [[ -n "$wrk_pid" ]] && kill "$wrk_pid" 2>/dev/null || true; }
stack_workdir patient-load
stacks+=("$work/stack")

cp -r "$top_srcdir/tests/site" "$work/site"
chmod -R u+w "$work/site"    # the source tree may be read-only (make distcheck)
page() { # NAME SIZE: an HTML page of about SIZE bytes the banner rule edits
    { printf '<html><head><title>t</title></head><body class="x">\n<p>'
      head -c "$2" /dev/zero | tr '\0' 'a'; printf '</p>\n</body></html>\n'; } >"$work/site/$1.html"
}
page p10k 10000; page p1m 1000000; page p5m 5000000
# Streamed bodies hold a c-icap thread for their whole transfer: three
# children of 16 threads serve 50 connections (and append to one audit log
# from three processes, as a production setup does).
export STACK_CICAP_SERVERS=${STACK_CICAP_SERVERS:-3}
stack_start "$work/site"
host=${ORIGIN_URL#http://}
proxy_hostport=${PROXY_URL#http://}

# wrk speaks to a proxy only with absolute-form request targets: send them to
# the proxy port with the origin in the request line and Host header.
cat >"$work/proxy.lua" <<EOF
wrk.method = "GET"
wrk.headers["Host"] = "$host"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) responses = 0; modified = 0; bad = 0; n = 0 end
function request()
    n = n + 1
    local p = "/index.html"
    if $mix == 1 then
        p = "/p10k.html"
        if n % 20 == 7 then p = "/p1m.html" elseif n % 20 == 17 then p = "/p5m.html" end
    end
    return wrk.format(nil, "$ORIGIN_URL" .. p)
end
function response(status, headers, body)
    responses = responses + 1
    if headers["Patient-Change"] ~= nil or headers["patient-change"] ~= nil or
       headers["Patient-Change-Ref"] ~= nil or headers["patient-change-ref"] ~= nil then
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

if (( mix )); then what="$ORIGIN_URL/{p10k,p1m,p5m}.html (18:1:1)"; else what="$ORIGIN_URL/index.html"; fi
echo "# wrk -t2 -c50 -d${secs}s through $PROXY_URL for $what"
timeout $((secs + 60)) wrk -t2 -c50 -d"${secs}s" --timeout 30s --latency -s "$work/proxy.lua" \
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
(( modified == responses )) || fail "$((responses - modified)) of $responses responses without Patient-Change(-Ref)"

# A clean stop lets in-flight transactions finish, flushes Squid's access log
# and makes srv_patient write its final checkpoint.
"$STACK" stop "$work/stack" >/dev/null 2>&1
log_lines() { grep -E " GET $ORIGIN_URL/(index|p10k|p1m|p5m)\.html " "$work/stack/squid/access.log" || true; }
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
# One change entry per modified response the middlebox released (c-icap
# logs 200 also for a streamed one wrk abandoned at the end, whose change
# was never finished: at most one per connection).
(( changes <= icap200 && changes + 50 >= icap200 )) \
    || fail "audit change entries $changes vs responses released by c-icap $icap200"
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
bypage=$(log_lines | grep -v ABORTED | grep '/200 ' | sed -n 's|.* GET [^ ]*/\([0-9a-z]*\)\.html .*|\1|p' | sort | uniq -c | tr '\n' ' ')
echo "ok - $responses responses in ${secs}s (completed by page: $bypage), all modified, $changes change entries, log verifies"
