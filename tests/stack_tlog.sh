#!/usr/bin/env bash
# The whole stack publishes its audit log: srv_patient (PublishDir, a
# checkpoint after every entry here) writes C2SP tiles and the signed note,
# nginx serves them at LOG_URL; `patient audit monitor` follows the log
# as pages go through Squid, and `patient audit included` proves the
# descriptors a client received are in it; that evidence, saved with the
# bundle, satisfies a policy requiring it offline, and forged evidence does
# not. ~20 s.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/stack_prelude.sh"
stack_need
stack_workdir patient-stack-tlog
stacks+=("$work/stack")
P=$PATIENT_BIN
# This script stops at its first failure, showing the command's output.
fail() { echo "not ok - $*"; cat "$work/out" "$work/err" 2>/dev/null; exit 1; }
rc() { set +e; "$@" >"$work/out" 2>"$work/err"; r=$?; set -e; echo $r; }

cp -r "$top_srcdir/tests/site" "$work/site"
chmod -R u+w "$work/site"
export STACK_CICAP_EXTRA="patient.CheckpointEvery 1"
stack_start "$work/site"

get() { # get NAME PATH — through the proxy; headers in NAME.hdr
    curl -sS --max-time 30 -D "$work/$1.hdr" -o "$work/$1.body" -x "$PROXY_URL" "$ORIGIN_URL$2"
}
bundle() { # bundle HDR OUT — the Patient-Change values received, as a bundle's "changes"
    "$PY" - "$1" "$2" <<'PY'
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

# ---- logged-change evidence: the policy requires it for offline audits ------
"$P" keygen -W -p "$work/pub.pub" -s "$work/pub.key" >/dev/null
"$PUBLISH" -q -s "$work/pub.key" --origin "$ORIGIN_URL" "$work/site" >/dev/null 2>&1 ||
    fail "manifest published"
"$P" keygen -W -p "$work/other.pub" -s "$work/other.key" >/dev/null
policy() { # policy FILE LOGGED
    cat >"$1" <<POL
{ "patient": 1, "type": "policy",
  "publishers": { "$ORIGIN_URL": ["$(sed -n 2p "$work/pub.pub")"] },
  "middleboxes": [ { "name": "stack", "key": "$(sed -n 2p "$MBOX_PUB")", "reasons": ["*"],
      "paths": ["/*"], "origins": ["*"], "max_edits": null, "insert": true } ],
  "require": { "disclosure": false, "logged": $2 } }
POL
}
policy "$work/pol.json" false
policy "$work/logged.json" true
pverify() { # pverify OUT POLICY ARGS... — the report in OUT.json; sets vrc
    local out=$1 pol=$2; shift 2
    vrc=0
    "$VERIFY" --json --policy "$pol" --no-state "$@" >"$work/$out.json" 2>"$work/$out.err" || vrc=$?
}
judged() { # judged REPORT: "verdict code,code" (the log.* results)
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
print(r["verdict"], ",".join(x["code"] for x in r["results"] if x["code"].startswith("log.")))' "$1"
}
for p in c d; do
    pverify "v$p" "$work/pol.json" --proxy "$PROXY_URL" --bundle "$work/$p.bundle" \
        "$ORIGIN_URL/index.html?$p"
    [[ $vrc = 0 && "$(judged "$work/v$p.json")" = "modified " ]] || fail "bundle of page $p"
done
sleep 0.5 # srv_patient's checkpoint after the last entry
for p in c d; do
    [[ "$(rc "$P" audit included "$work/$p.bundle" --log "$LOG_URL" --pub "$MBOX_PUB" --state "$work/st" \
        --out "$work/$p.logged")" = 0 ]] && grep -q "evidence written to" "$work/out" ||
        fail "included --out: evidence saved for page $p"
done
[[ "$(rc "$P" audit included "$work/c.logged" --pub "$MBOX_PUB")" = 0 ]] &&
    grep -q 'change 0: logged as entry [0-9]*, proven offline .* \[log.proven\]' "$work/out" ||
    fail "included offline: the saved evidence holds"
pverify lc "$work/logged.json" --offline "$work/c.logged"
[[ $vrc = 0 && "$(judged "$work/lc.json")" = "modified log.proven" ]] ||
    fail "offline audit with logged evidence: modified, log.proven (got $(judged "$work/lc.json"), exit $vrc)"
pverify nc "$work/logged.json" --offline "$work/c.bundle"
[[ $vrc = 1 && "$(judged "$work/nc.json")" = "invalid log.missing" ]] ||
    fail "offline audit without evidence: invalid, log.missing (got $(judged "$work/nc.json"), exit $vrc)"
pverify oc "$work/pol.json" --offline "$work/c.bundle"
[[ $vrc = 0 && "$(judged "$work/oc.json")" = "modified " ]] || fail "no requirement: modified"
pverify on "$work/logged.json" --proxy "$PROXY_URL" "$ORIGIN_URL/index.html?c"
[[ $vrc = 0 && "$(judged "$work/on.json")" = "modified " ]] ||
    fail "online, require.logged does not apply (got $(judged "$work/on.json"), exit $vrc)"
ok "offline audit: require.logged accepts the saved evidence (log.proven), refuses a bundle without (log.missing)"

# Forged twins: the evidence of page d's change put on page c's; a
# checkpoint note over the same tree signed by another key; a proof hash
# changed. Each invalid, with its code, offline and in the verifier.
"$P" audit publish "$AUDIT_LOG" "$work/otherpub" --key "$work/other.key" >/dev/null 2>&1 ||
    fail "the log published under another key"
python3 - "$work" <<'PY'
import base64, json, sys
w = sys.argv[1]
c, d = json.load(open(w + "/c.logged")), json.load(open(w + "/d.logged"))
def save(name, ev):
    b = dict(c)
    b["log_proofs"] = [ev]
    json.dump(b, open(w + "/" + name, "w"))
save("other-entry.logged", d["log_proofs"][0])
ev = dict(c["log_proofs"][0])
ev["checkpoint"] = open(w + "/otherpub/checkpoint").read()
save("other-key.logged", ev)
ev = dict(c["log_proofs"][0])
if ev["proof"]:
    h = bytearray(base64.b64decode(ev["proof"][0])); h[0] ^= 1
    ev["proof"] = [base64.b64encode(bytes(h)).decode()] + ev["proof"][1:]
else:  # a tree of one entry: the proof is empty, the index then is wrong
    ev["tree_size"] += 1
save("bad-path.logged", ev)
PY
for t in "other-entry log.entry.mismatch" "other-key log.checkpoint.signature" "bad-path log.proof.invalid"; do
    set -- $t
    [[ "$(rc "$P" audit included "$work/$1.logged" --pub "$MBOX_PUB")" = 1 ]] &&
        grep -q "change 0: EVIDENCE INVALID: .* \[$2\]" "$work/out" || fail "included offline: $1 is $2"
    pverify "f$1" "$work/logged.json" --offline "$work/$1.logged"
    [[ $vrc = 1 && "$(judged "$work/f$1.json")" = "invalid $2" ]] ||
        fail "forged $1: invalid, $2 (got $(judged "$work/f$1.json"), exit $vrc)"
done
ok "forged evidence (another entry's, another key's checkpoint, a changed proof): invalid with its code"
