#!/usr/bin/env bash
# The whole stack publishes its audit log: srv_patient (PublishDir, a
# checkpoint after every entry here) writes C2SP tiles and the signed note,
# nginx serves them at LOG_URL; `patient audit monitor` follows the log
# as pages go through Squid, and `patient audit included` proves the
# descriptors a client received are in it. ~15 s.
set -euo pipefail
: "${top_builddir:=.}"
: "${top_srcdir:=.}"
top_builddir=$(cd "$top_builddir" && pwd)
top_srcdir=$(cd "$top_srcdir" && pwd)
STACK=$top_srcdir/scripts/stack
export PATIENT_SRV_MODULE=${PATIENT_SRV_MODULE:-$top_builddir/middlebox/.libs/srv_patient.so}
export PATIENT_BIN=${PATIENT_BIN:-$top_builddir/cli/patient}
P=$PATIENT_BIN
[[ -r "$PATIENT_SRV_MODULE" ]] || { echo "SKIP: srv_patient not built"; exit 77; }
for b in nginx squid c-icap curl; do
    command -v "$b" >/dev/null 2>&1 || { echo "SKIP: $b not installed (scripts/deps)"; exit 77; }
done
work=$(mktemp -d /tmp/patient-stack-tlog.XXXXXX)
cleanup() {
    local rc=$?
    "$STACK" stop "$work/stack" >/dev/null 2>&1 || true
    if (( rc != 0 )) && [[ -d "$work/stack" ]]; then
        tail -n 20 "$work/stack/c-icap-server.log" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "not ok - $*"; cat "$work/out" "$work/err" 2>/dev/null; exit 1; }
rc() { set +e; "$@" >"$work/out" 2>"$work/err"; r=$?; set -e; echo $r; }

cp -r "$top_srcdir/tests/site" "$work/site"
chmod -R u+w "$work/site"
export STACK_CICAP_EXTRA="patient.CheckpointEvery 1"
eval "$("$STACK" start "$work/stack" "$work/site" 2>"$work/stack-start.log")" || {
    cat "$work/stack-start.log"; echo "stack failed to start"; exit 1; }

get() { # get NAME PATH — through the proxy; headers in NAME.hdr
    curl -sS --max-time 30 -D "$work/$1.hdr" -o "$work/$1.body" -x "$PROXY_URL" "$ORIGIN_URL$2"
}
bundle() { # bundle HDR OUT — the Patient-Change values received, as a bundle's "changes"
    python3 - "$1" "$2" <<'PY'
import json, sys
vals = [l.split(":", 1)[1].strip() for l in open(sys.argv[1], encoding="latin-1")
        if l.lower().startswith("patient-change:")]
json.dump({"type": "bundle", "changes": vals}, open(sys.argv[2], "w"))
PY
}
get a /index.html
grep -qi '^patient-change:' "$work/a.hdr" || fail "first page modified through the proxy"
bundle "$work/a.hdr" "$work/a.json"
# srv_patient writes the checkpoint after the entry, before the response goes
for i in 1 2 3 4 5 6 7 8 9 10; do
    curl -sf "$LOG_URL/checkpoint" -o "$work/ck" 2>/dev/null && break
    sleep 0.5
done
[[ -s "$work/ck" ]] || fail "srv_patient published a checkpoint at $LOG_URL/checkpoint"
ok "srv_patient published the log; nginx serves it at $LOG_URL"

[[ "$(rc "$P" audit monitor "$LOG_URL" --pub "$MBOX_PUB" --state "$work/st" --deep)" = 0 ]] ||
    fail "monitor: first run"
grep -q 'consistent: tree of' "$work/out" && grep -q 'index.html' "$work/out" ||
    fail "monitor shows the change"
ok "monitor: signed checkpoint, every entry and descriptor signature checked"

[[ "$(rc "$P" audit included "$work/a.json" --log "$LOG_URL" --pub "$MBOX_PUB" --state "$work/st")" = 0 ]] &&
    grep -q 'change 0: logged as entry' "$work/out" || fail "included: the received change is logged"
ok "included: the descriptor the client received is proven into the published log"

get b /index.html
sleep 0.5
[[ "$(rc "$P" audit monitor "$LOG_URL" --pub "$MBOX_PUB" --state "$work/st")" = 0 ]] &&
    grep -q 'consistent: tree of [0-9]* entries extends the [1-9][0-9]* seen before' "$work/out" ||
    fail "monitor: second run consistent"
ok "more traffic: the next checkpoint is consistent with the one seen"
