#!/bin/sh
# `patient inspect` on every artefact kind (made by the tools here, or
# committed fixtures), its --json form, secret keys never shown, and garbage
# input refused with exit 2.
set -eu
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
workdir cli_inspect
P="$B/cli/patient"
NV='not verified: inspect does not check signatures'

# check FILE KIND PHRASE [signed]: human output has PHRASE, --json parses
# and names KIND.
check() {
    [ "$(rc "$P" inspect --json "$1")" = 0 ] || fail "inspect --json $1"
    /usr/bin/python3 -m json.tool out >/dev/null || fail "--json $1 parses"
    /usr/bin/python3 -c "import json; d=json.load(open('out'))
assert d['kind']=='$2' and d['verified'] is False and d['error'] is None, d
assert d['signed']==('${4:-}'=='signed'), d" || fail "--json $1: kind $2"
    # Human output last: callers grep it in out.
    [ "$(rc "$P" inspect "$1")" = 0 ] || fail "inspect $1"
    grep -qF -- "$3" out || fail "inspect $1: '$3'"
    if [ "${4:-}" = signed ]; then grep -qF "$NV" out || fail "$1: says not verified"; fi
    ok "inspect $2: $1"
}

"$P" keygen -W -p k.pub -s k.sec >/dev/null
kid=$(sed -n 's/^untrusted comment: minisign public key //p' k.pub)
printf 'pw-for-test\n' >pw && chmod 600 pw
"$P" keygen -p e.pub -s e.sec --password-file pw >/dev/null
check k.pub public-key "key_id: $kid"
sed -n 2p k.pub >rw.txt
check rw.txt public-key "key_id: $kid"
check k.sec secret-key "encrypted: no"
grep -q "key_id: $kid" out || fail "unencrypted secret key: key id"
check e.sec secret-key "encrypted: yes"
check "$D/key_test.key" secret-key "key_id: 91FA9E6F4D58FE7E"
# Never any secret byte: not the base64 line, not the seed or secret key.
for f in k.sec "$D/key_test.key" e.sec; do
    line=$(sed -n 2p "$f")
    hex=$(echo "$line" | base64 -d | od -An -tx1 -v | tr -d ' \n')
    seed=$(echo "$hex" | cut -c125-188)   # bytes 62..93
    for fmt in "" --json; do
        "$P" inspect $fmt "$f" >o 2>&1
        ! grep -qF "$line" o || fail "$f: secret key line printed"
        ! grep -qi "$seed" o || fail "$f: seed printed"
        ! grep -qF "$(echo "$line" | cut -c60-100)" o || fail "$f: part of the key line printed"
    done
done
ok "secret keys: no secret material in any output"

echo hello >f.txt
check "$D/key_test.txt.minisig" minisign-signature "trusted_comment: patient golden fixture" signed
grep -q 'prehashed: yes' out || fail "minisig: prehashed"
check "$D/manifest_golden.json" manifest "origin: https://example.org" signed
"$P" inspect "$D/manifest_golden.json" | grep -q '^  resources: 10$' || fail "manifest: resource count"
! grep -q 'problem' out || fail "manifest the reader accepts: no problem"
# One the reader refuses: shown all the same, with the reader's reason.
sed 's/"expires": "2026-01-08T00:00:00Z"/"expires": "2025-12-31T00:00:00Z"/' \
    "$D/manifest_golden.json" >early.json
check early.json manifest "problem: expires: before issued [parse]" signed
grep -q 'origin: https://example.org' out || fail "refused manifest: still shown"
check "$D/disclosure_example.json" disclosure "operator: Example Corp IT" signed
! grep -q 'problem' out || fail "disclosure the reader accepts: no problem"
sed 's/"retention_days": 30/"retention_days": 36501/' "$D/disclosure_example.json" >long.json
check long.json disclosure "problem: retention_days: not an integer 0..36500 [parse]" signed
grep -q 'operator: Example Corp IT' out || fail "refused disclosure: still shown"
check "$D/policy_example.json" policy "name: corp-filter"
! grep -q 'problem' out || fail "policy the reader accepts: no problem"
check "$D/policy_forged_nested_unknown.json" policy "problem: middleboxes[0].max_edit: unknown field [parse]"
check "$S/middlebox/rules/example.json" rules "id: tracker-script"
! grep -q 'problem' out || fail "rules the reader accepts: no problem"
check "$D/rules_dup_id.json" rules 'problem: rule 1 (id "same"): duplicate id (also rule 0) [parse]'
check "$D/inspect_bundle.json" bundle "url: https://news.example/index.html" signed
check "$D/inspect_report.json" report "verdict: invalid"
grep -q 'error: change.signature.invalid' out || fail "report: result codes"
check "$D/jws_test.jws" jws "typ: patient-test+jws" signed

# Change descriptors, a whole header line and an audit log, from patient-mbox.
"$B/middlebox/patient-mbox" -q -s k.sec --name "inspect test" --type text/html \
    --rules "$S/middlebox/rules/example.json" --url https://a.example/index.html \
    --header-out hdr.txt --log audit.log --at 2026-11-27T10:00:00Z \
    <"$S/tests/site/index.html" >/dev/null
"$B/middlebox/patient-mbox" -q -s k.sec --name "inspect test" --type text/html \
    --rules "$S/middlebox/rules/example.json" --url https://a.example/b.html \
    --log audit.log --at 2026-11-27T11:00:00Z <"$S/tests/site/index.html" >/dev/null
grep -qi '^Patient-Change: ' hdr.txt || fail "patient-mbox wrote a header line"
check hdr.txt change "reason: tracker.removed" signed
grep -q 'url: https://a.example/index.html' out && grep -q 'hop: 1' out && grep -q 'at: 2026-11-27T10:00:00Z' out &&
    grep -q 'rule: tracker-script' out && grep -q 'offset: ' out && grep -q 'insert_bytes: 142' out ||
    fail "change: hop, url, at, edits"
# The EICAR removal withholds its bytes: what that leaves unchecked (one
# origin chunk: the whole 966-byte page), not the base64 leaves.
grep -q 'touched: 1' out && grep -q 'withheld_bytes: 68' out && grep -q 'offset: 0' out &&
    grep -q 'length: 966' out && ! grep -q 'leaf:' out || fail "change: chunks summarised"
"$P" inspect --json hdr.txt >o
/usr/bin/python3 -c 'import json; d=json.load(open("o"))
c=d["details"]["values"][0]["payload"]["chunks"]
assert c=={"touched":1,"withheld_bytes":68,"unchecked_origin_ranges":[{"offset":0,"length":966}]}, c' ||
    fail "change --json: chunks"
ok "change: chunks touched, withheld bytes, unchecked origin ranges"
sed 's/^[^:]*: //' hdr.txt >value.txt
check value.txt change "name: inspect test" signed
check audit.log audit-log "entries: 4" signed
"$P" inspect audit.log >o
grep -q 'checkpoints: 2' o && grep -q 'url: https://a.example/index.html' o &&
    grep -q 'kind: checkpoint' o || fail "log: counts, first and last"
head -n 1 audit.log >line.txt
check line.txt audit-log "audit log line" signed
"$P" inspect - <audit.log >o && grep -q 'entries: 4' o || fail "log on stdin"
ok "log on stdin"
"$B/publisher/patient-publish" --response -s k.sec --url https://a.example/dyn f.txt >origin.txt
check origin.txt origin "typ: patient-origin+jws" signed
grep -q 'url: https://a.example/dyn' out || fail "origin: url"
# A checkpoint JWS on its own.
/usr/bin/python3 -c 'import json; print([json.loads(l) for l in open("audit.log")][1]["sig"])' >ck.txt
check ck.txt checkpoint "tree_size: 1" signed

# ---- refusals: exit 2 with a clear message -------------------------------
bad() { # FILE PHRASE
    [ "$(rc "$P" inspect "$1")" = 2 ] || fail "inspect $1: exit 2"
    grep -qF -- "$2" err || fail "inspect $1: '$2'"
    [ "$(rc "$P" inspect --json "$1")" = 2 ] || fail "inspect --json $1: exit 2"
    /usr/bin/python3 -c "import json; d=json.load(open('out')); assert d['kind'] is None and d['error']" ||
        fail "inspect --json $1: error object"
}
: >empty
bad empty "empty input"
head -c 256 /dev/urandom >bin
printf '\001\002\003' >>bin
bad bin "binary data"
echo 'hello, world' >garbage
bad garbage "not a PATIENT artefact"
head -c 200 "$D/policy_example.json" >trunc.json
bad trunc.json "truncated?"
head -n 2 "$D/key_test.txt.minisig" >trunc.minisig
bad trunc.minisig "trusted comment"
cut -d. -f1,2 "$D/jws_test.jws" >trunc.jws
bad trunc.jws "three non-empty base64url parts"
printf 'untrusted comment: x\nRWQ=\n' >short.pub
bad short.pub "not a minisign public key"
echo '{"patient":1,"type":"frobnicator"}' >unknown.json
bad unknown.json 'type "frobnicator"'
echo '[1,2]' >array.json
bad array.json "not an object"
echo 'X-Other: abc.def.ghi' >hdr2.txt
bad hdr2.txt "not Patient-Change or Patient-Origin"
printf '%s\nnot json\n' "$(head -n 1 audit.log)" >badlog.txt
bad badlog.txt "line 2 is not a log entry"
bad /nonexistent/file "not found"
[ "$(rc "$P" inspect)" = 2 ] && grep -q usage err || fail "no FILE: usage"
[ "$(rc "$P" inspect a b)" = 2 ] || fail "two files: usage"
ok "garbage, empty, binary, truncated, unknown input: exit 2 with a reason"
echo "1..$n"
