# shellcheck shell=bash disable=SC2034
# Sourced by the end-to-end scripts that run the real loopback stack
# (scripts/stack: nginx, Squid, c-icap + srv_patient), after
# `set -euo pipefail`:
#     . "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/stack_prelude.sh"
#     stack_need [BINARY...]       skip (77) unless the module and servers are here
#     stack_workdir NAME           $work, removed on exit (KEEP=1 keeps it)
#     stacks+=("$work/stack")      stacks stopped on exit, their logs shown on failure
#     banner_policy FILE PUB [REASON...]
#                                  a policy trusting PUB for $ORIGIN_URL and the stack's
#                                  middlebox ($MBOX_PUB) for the REASONs (default
#                                  "banner.*", the banner rule), proof proven
#     verdict REPORT               the verdict of patient-verify --json's REPORT ("?" if
#                                  it has none)
#     native_requests URL HDR BODY OUT TWIN [OLD]
#                                  a page as its client received it (curl -D HDR -o
#                                  BODY) as native requests "ok" and its forged twin
#                                  "bad" in OUT; TWIN byte: a body byte changed, ref:
#                                  Patient-Change-Ref pointed at descriptor OLD
#     native_host REQ OUT [ARG...] patient-verify --native-host (policy and cache in
#                                  $work) answering $work/REQ into $work/OUT; exit in $rc
#     native_verdicts FILE         "OK BAD": the verdicts (with their invalid codes)
#                                  of the native host's answers to requests "ok", "bad"
#     stack_before_stop() { ...; } optional: runs first on exit (stop a load generator)
# The paths of the tools under test, and TAP lines: ok, not_ok (counted in
# $fails; the script ends with its own summary), check WHAT CMD..., skip.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
STACK=$top_srcdir/scripts/stack
export PATIENT_SRV_MODULE=${PATIENT_SRV_MODULE:-$top_builddir/middlebox/.libs/srv_patient.so}
export PATIENT_BIN=${PATIENT_BIN:-$top_builddir/cli/patient}
PUBLISH=$top_builddir/publisher/patient-publish
VERIFY=$top_builddir/verifier/patient-verify
LOGCHECK=$top_builddir/tests/stack_logcheck
PY=/usr/bin/python3
# The logs shown from each stack when the script fails.
STACK_LOGS=${STACK_LOGS:-"c-icap-server.log c-icap.out squid/cache.log"}

n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
skip() { echo "SKIP: $*"; exit 77; }

stack_need() {
    local b
    [[ -r "$PATIENT_SRV_MODULE" ]] || skip "srv_patient not built ($PATIENT_SRV_MODULE)"
    for b in nginx squid c-icap curl "$@"; do
        command -v "$b" >/dev/null 2>&1 || skip "$b not installed (scripts/deps)"
    done
}

stacks=()
stack_cleanup() {
    local rc=$? s f
    if declare -F stack_before_stop >/dev/null; then stack_before_stop; fi
    for s in "${stacks[@]}"; do "$STACK" stop "$s" >/dev/null 2>&1 || true; done
    if (( rc != 0 )); then
        for s in "${stacks[@]}"; do
            for f in $STACK_LOGS; do
                [[ -s "$s/$f" ]] && { echo "---- $s/$f"; tail -n 20 "$s/$f"; }
            done
        done
    fi
    [[ -n "${KEEP:-}" ]] || rm -rf "$work"
    exit $rc
}

stack_workdir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap stack_cleanup EXIT
    trap 'exit 130' INT TERM
}

# stack_start SITE [OPTION...]: start the stack in $work/stack serving SITE
# (with scripts/stack's start options, e.g. --rules FILE) and take its
# variables (ORIGIN_URL, PROXY_URL, ...); on failure show its log and exit.
# Settings come from the STACK_* environment, as scripts/stack reads.
stack_start() {
    eval "$("$STACK" start "$work/stack" "$@" 2>"$work/stack-start.log")" || {
        cat "$work/stack-start.log"; echo "stack failed to start"; exit 1; }
}

# native_requests URL HDR BODY OUT TWIN [OLD]: what a browser received for
# URL (the status line and headers in HDR, the body in BODY), handed to the
# native host as the plug-in does (its Patient-* headers, the exact body),
# twice, as length-prefixed requests in OUT: "ok" as received, and "bad",
# its forged twin: TWIN "byte" changes the middle byte of the body, "ref"
# points Patient-Change-Ref at the descriptor OLD of the same folder.
native_requests() {
    "$PY" - "$@" <<'PY'
import base64, json, struct, sys
url, hdr, body, out, twin = sys.argv[1:6]
hs = [l.split(":", 1) for l in open(hdr, encoding="latin-1").read().splitlines()[1:] if ":" in l]
hs = [{"name": k.strip(), "value": v.strip()} for k, v in hs if k.lower().startswith("patient-")]
b = open(body, "rb").read()
if twin == "byte":
    i = len(b) // 2
    bad, badh = b[:i] + (b"Y" if b[i:i + 1] != b"Y" else b"Z") + b[i + 1:], hs
elif twin == "ref":
    old = sys.argv[6]
    bad, badh = b, [dict(h, value=h["value"].rsplit("/", 1)[0] + "/" + old)
                    if h["name"].lower() == "patient-change-ref" else h for h in hs]
else:
    sys.exit("native_requests: TWIN is byte or ref")
with open(out, "wb") as f:
    for rid, h, data in (("ok", hs, b), ("bad", badh, bad)):
        m = json.dumps({"type": "verify", "id": rid, "url": url,
                        "received": {"status": 200, "headers": h,
                                     "body": base64.b64encode(data).decode()}}).encode()
        f.write(struct.pack("=I", len(m)) + m)
PY
}

# native_host REQ OUT [ARG...]: patient-verify --native-host with
# $work/policy.json and the cache $work/cache, reading the requests in
# $work/REQ, its answers in $work/OUT (stderr in OUT.err), its exit in rc.
native_host() {
    local req=$1 out=$2
    shift 2
    rc=0
    "$VERIFY" --native-host --policy "$work/policy.json" --no-state --cache-dir "$work/cache" \
        --timeout 60 "$@" chrome-extension://x/ <"$work/$req" >"$work/$out" \
        2>"$work/$out.err" || rc=$?
}

# native_verdicts FILE: patient-verify --native-host's answers in FILE
# (length-prefixed JSON) to the requests with ids "ok" and "bad", as
# "VERDICT[(code,...)] VERDICT[(code,...)]" (the codes of invalid results)
native_verdicts() {
    "$PY" - "$1" <<'PY' 2>/dev/null || echo "?"
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
PY
}

# banner_policy FILE PUB [REASON...]: the policy the stack's pages verify
# against, its middlebox trusted for the REASONs (patterns), "banner.*" when
# none are given.
banner_policy() {
    local file=$1 pub mb reasons='"banner.*"' r
    pub=$(sed -n 2p "$2")
    mb=$(sed -n 2p "$MBOX_PUB")
    if (( $# > 2 )); then
        reasons=
        for r in "${@:3}"; do reasons+=${reasons:+, }\"$r\"; done
    fi
    cat >"$file" <<EOF
{ "patient": 1, "type": "policy",
  "publishers": { "$ORIGIN_URL": ["$pub"] },
  "middleboxes": [ { "name": "stack", "key": "$mb", "reasons": [$reasons],
      "paths": ["/*"], "origins": ["*"], "max_edits": 10, "insert": true } ],
  "require": { "disclosure": false, "proof": "proven" } }
EOF
}

# verdict REPORT: the verdict in patient-verify --json's REPORT, "?" when
# it has none (missing, not JSON, no verdict member).
verdict() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"])' "$1" 2>/dev/null || echo "?"; }
