#!/bin/sh
# `patient audit`: a real log written by patient-mbox, then verify (and each
# kind of tampering, with its class and seq), list filters, stats, proofs.
set -eu
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
workdir cli_audit
P="$B/cli/patient"
M="$B/middlebox/patient-mbox"
py() { /usr/bin/python3 "$@"; }

"$P" keygen -W -p k.pub -s k.sec >/dev/null
"$P" keygen -W -p other.pub -s other.sec >/dev/null
# Five changes on three days; checkpoint every 4 entries so the log mixes
# changes and checkpoints. Rules: example.json removes trackers (text/html),
# the EICAR string, and inserts a banner (text/html); trackers-only.json only
# trackers.
mbox() { # URL AT RULES NAME TYPE
    "$M" -q -s k.sec --name "$4" --type "$5" --at "$2" --rules "$S/middlebox/rules/$3" \
        --url "$1" --log audit.log --checkpoint-every 4 <"$S/tests/site/index.html" >/dev/null
}
mbox https://a.example/index.html 2026-11-20T10:00:00Z example.json corp text/html
mbox https://a.example/news/1.html 2026-11-21T10:00:00Z example.json corp text/plain
mbox https://b.example/index.html 2026-11-22T09:30:00Z trackers-only.json edge text/html
mbox https://a.example/news/2.html 2026-11-22T18:00:00Z example.json corp text/html
mbox https://c.example/x.html 2026-11-23T08:00:00Z trackers-only.json edge text/html
cp audit.log good.log
lines=$(wc -l <good.log)
[ "$lines" -ge 7 ] || fail "log has changes and checkpoints ($lines lines)"
ok "log written by patient-mbox ($lines lines)"

# ---- verify --------------------------------------------------------------
[ "$(rc "$P" audit verify good.log --pub k.pub --deep)" = 0 ] || fail "verify ok"
grep -q 'good.log: intact. ' out && grep -q '5 changes' out &&
    grep -q 'every change signature checked' out || fail "verify ok: paragraph"
[ "$(rc "$P" audit verify good.log)" = 0 ] && grep -q 'Signatures NOT checked' out ||
    fail "verify without --pub says signatures were not checked"
[ "$(rc "$P" audit verify good.log --json --pub k.pub)" = 0 ] || fail "verify --json"
py -c 'import json,sys; d=json.load(open("out")); l=d["logs"][0]
assert d["result"]=="ok" and l["result"]=="ok" and l["tamper"]=="intact", d
assert l["changes"]==5 and l["signatures_checked"] is True and l["error"] is None, l' ||
    fail "verify --json fields"
[ "$(rc "$P" audit verify good.log --pub other.pub)" = 1 ] &&
    grep -q 'TAMPERED (forged)' out || fail "wrong pinned key: forged, exit 1"
[ "$(rc "$P" audit verify good.log --pub RWnotakey)" = 2 ] || fail "bad --pub: exit 2"
[ "$(rc "$P" audit verify missing.log)" = 2 ] && grep -q 'cannot verify' out ||
    fail "missing log: exit 2"
[ "$(rc "$P" audit verify)" = 2 ] && grep -q usage err || fail "no LOG: usage"
[ "$(rc "$P" audit verify good.log --deep)" = 2 ] || fail "--deep without --pub: usage"
ok "verify: intact, json, wrong key, usage and I/O errors"

# ---- tampering: each class with its seq ----------------------------------
# Line numbers are 1-based; line L holds seq L-1.
tamper() { # NAME EXPECTED_CLASS EXPECTED_SEQ
    [ "$(rc "$P" audit verify t.log --pub k.pub)" = 1 ] || fail "$1: exit 1"
    grep -q "TAMPERED ($2)" out || fail "$1: class $2"
    grep -q "seq $3[:.]" out || fail "$1: seq $3"
    [ "$(rc "$P" audit verify t.log --pub k.pub --json)" = 1 ] || fail "$1: json exit 1"
    py -c "import json; l=json.load(open('out'))['logs'][0]
assert l['result']=='tampered' and l['tamper']=='$2' and l['seq']==$3, l" ||
        fail "$1: json class and seq"
    ok "tamper: $1 -> $2 at seq $3"
}
# Edit one byte of line 3 (seq 2): a URL letter.
sed '3s/example/exbmple/' good.log >t.log
tamper "edit a byte" edited 2
# Delete line 3.
sed '3d' good.log >t.log
tamper "delete a line" removed 2
# Swap lines 2 and 3.
awk 'NR==2{h=$0;next} NR==3{print;print h;next} {print}' good.log >t.log
tamper "swap two lines" reordered 1
# Duplicate line 2.
sed '2p' good.log >t.log
tamper "duplicate a line" inserted 1
# Truncate mid-line (a torn last line).
head -c $(($(wc -c <good.log) - 30)) good.log >t.log
last=$((lines - 1))
tamper "truncate" truncated $last
# A clean cut after a change: only --require-checkpoint sees it.
last_change=$(grep -n '"kind":"change"' good.log | tail -n 1 | cut -d: -f1)
head -n "$last_change" good.log >t.log
[ "$(rc "$P" audit verify t.log --pub k.pub)" = 0 ] && grep -q 'not signed yet' out ||
    fail "clean cut: intact but unsigned tail reported"
[ "$(rc "$P" audit verify t.log --pub k.pub --require-checkpoint)" = 1 ] &&
    grep -q 'TAMPERED (truncated)' out || fail "clean cut with --require-checkpoint"
ok "clean cut: unsigned tail reported, truncated with --require-checkpoint"
# Several logs: worst result wins, one paragraph each.
[ "$(rc "$P" audit verify good.log t.log --pub k.pub --require-checkpoint)" = 1 ] &&
    [ "$(grep -c '^' out)" = 2 ] || fail "two logs: two paragraphs, exit 1"
ok "several logs"

# ---- list -----------------------------------------------------------------
count() { # ARGS... -> number of JSON rows
    [ "$(rc "$P" audit list good.log --json "$@")" = 0 ] || fail "list $*"
    py -c 'import json,sys
rows=[json.loads(l) for l in open("out")]
print(" ".join(str(r["seq"]) for r in rows))'
}
seqs() { grep -n '"kind":"change"' good.log | cut -d: -f1 | while read -r l; do echo $((l - 1)); done | tr '\n' ' ' | sed 's/ $//'; }
all=$(seqs)
[ "$(count)" = "$all" ] || fail "list: every change ($all)"
# Change k (0-based) has seq: nth change line.
s() { echo "$all" | cut -d' ' -f$(($1 + 1)); }
[ "$(count --reason 'malware.*')" = "$(s 0) $(s 1) $(s 3)" ] || fail "list --reason malware.*"
[ "$(count --reason 'banner.inserted')" = "$(s 0) $(s 3)" ] || fail "list --reason banner (html only)"
[ "$(count --reason 'tracker.*')" = "$(s 0) $(s 2) $(s 3) $(s 4)" ] || fail "list --reason tracker.*"
[ "$(count --url https://a.example/news/)" = "$(s 1) $(s 3)" ] || fail "list --url prefix"
[ "$(count --middlebox edge)" = "$(s 2) $(s 4)" ] || fail "list --middlebox NAME"
kid=$(py -c 'import json; print(json.loads(open("good.log").readline())["by"]["kid"].lower())')
[ "$(count --middlebox "$kid")" = "$all" ] || fail "list --middlebox KID (any case)"
[ "$(count --since 2026-11-22T00:00:00Z)" = "$(s 2) $(s 3) $(s 4)" ] || fail "list --since"
[ "$(count --until 2026-11-22T09:30:00Z)" = "$(s 0) $(s 1) $(s 2)" ] || fail "list --until (inclusive)"
[ "$(count --since 2026-11-21 --until @1795341600)" = "$(s 1) $(s 2)" ] ||
    fail "list --since DATE --until @EPOCH" # @1795341600 = 2026-11-22T10:00:00Z
[ "$(count --since 2026-11-22T00:00:00+02:00 --until 2026-11-22T12:00:00Z --reason 'tracker.*' --url https://b.)" = "$(s 2)" ] ||
    fail "list: filters AND together"
[ "$(count --since 1h)" = "" ] || fail "list --since 1h (all changes are older)"
[ "$(count --reason 'nothing.*')" = "" ] || fail "list: no match"
ok "list filters: reason, url, middlebox name/kid, since/until, combined"
[ "$(rc "$P" audit list good.log --reason 'tracker.*')" = 0 ] || fail "list table"
head -n 1 out | grep -q '^TIME  *SEQ  MIDDLEBOX  *DELETED INSERTED  REASON  *RULE  *UPSTREAM TLS  *URL$' ||
    fail "list: table header"
grep -q '^2026-11-22T09:30:00Z .* edge .*tracker.removed .*tracker-script .*https://b.example/index.html$' out ||
    fail "list: row"
grep -q '^4 changes listed' out || fail "list: summary"
[ "$(rc "$P" audit list good.log --json --url https://b.)" = 0 ] &&
    py -c 'import json; r=json.loads(open("out").readline())
assert r["middlebox"]["name"]=="edge" and r["reasons"]==["tracker.removed"]*len(r["reasons"])
assert r["rules"][0]=="tracker-script" and r["deleted"]>0 and r["inserted"]==0 and r["hop"]==1
assert r["time"]=="2026-11-22T09:30:00Z" and r["url"]=="https://b.example/index.html"' ||
    fail "list --json row fields"
# --chunks: change 0 (example.json) withholds the EICAR string (68 bytes)
# and signs the one origin chunk it touches; b.example's tracker removal
# is disclosed (nothing unchecked).
[ "$(rc "$P" audit list good.log --chunks --json)" = 0 ] &&
    py -c 'import json; rows={r["seq"]: r for r in map(json.loads, open("out"))}
a=rows['"$(s 0)"']["chunks"]; b=rows['"$(s 2)"']["chunks"]
assert a=={"touched":1,"withheld":68,"unchecked":[{"offset":0,"length":966}]}, a
assert b is None, b' || fail "list --chunks --json"
[ "$(rc "$P" audit list good.log --chunks --url https://a.example/index.html)" = 0 ] &&
    head -n 1 out | grep -q ' UPSTREAM TLS  *CHUNKS  *URL$' &&
    grep -q ' 1:0-965  *https://a.example/index.html$' out || fail "list --chunks: column"
[ "$(rc "$P" audit list good.log --chunks --url https://b.)" = 0 ] &&
    grep -q ' -  *https://b.example/index.html$' out || fail "list --chunks: nothing withheld"
# Four origin chunks, each withholding the EICAR string: the column names
# the unchecked ranges that fit its 28 columns' buffer and ends in ",.."
# (the JSON row has all four).
py -c 'import json,sys
r=json.load(open(sys.argv[1]))["rules"]
x=[i["match"]["literal"] for i in r if i["id"]=="eicar-test-string"][0]
sys.stdout.write("<p>" + ("a"*70000 + x)*4)' "$S/middlebox/rules/example.json" >big.html
"$M" -q -s k.sec --name big --type text/plain --at 2026-11-24T08:00:00Z \
    --rules "$S/middlebox/rules/example.json" --url https://d.example/big --log big.log \
    <big.html >/dev/null
[ "$(rc "$P" audit list big.log --chunks)" = 0 ] &&
    grep -q ' 4:69632-73727,139264-143359,208896-212991,.. https://d.example/big$' out ||
    fail "list --chunks: the column cut with ,.."
[ "$(rc "$P" audit list big.log --chunks --json)" = 0 ] &&
    py -c 'import json; c=json.loads(open("out").readline())["chunks"]
assert c["touched"]==4 and c["withheld"]==4*68 and len(c["unchecked"])==4, c' ||
    fail "list --chunks --json: every range"
[ "$(rc "$P" audit stats good.log --chunks)" = 2 ] || fail "stats --chunks: usage"
ok "list --chunks: touched chunks, withheld bytes, unchecked origin ranges"
[ "$(rc "$P" audit list good.log --since yesterday)" = 2 ] || fail "bad TIME: exit 2"
[ "$(rc "$P" audit list good.log --since 2026-02-30)" = 2 ] || fail "Feb 30: exit 2"
[ "$(rc "$P" audit list good.log --since 2026-11-23 --until 2026-11-22)" = 2 ] ||
    fail "since after until: exit 2"
[ "$(rc "$P" audit verify good.log --reason x)" = 2 ] || fail "filter on verify: usage"
printf 'not a log\n' >bad.log
[ "$(rc "$P" audit list bad.log)" = 1 ] && grep -q 'line 1' err || fail "list on a damaged log: exit 1, line"
ok "list: table, JSON rows, bad times, damaged log"

# ---- stats ----------------------------------------------------------------
[ "$(rc "$P" audit stats good.log --json)" = 0 ] || fail "stats"
py -c 'import json; d=json.load(open("out")); g={x["key"]:x for x in d["groups"]}
assert d["by"]=="reason" and d["total"]["changes"]==5 and not d["truncated"], d
assert g["tracker.removed"]["changes"]==4 and g["malware.removed"]["changes"]==3, g
assert g["banner.inserted"]["changes"]==2 and g["banner.inserted"]["deleted"]==0
assert g["banner.inserted"]["inserted"]>0 and g["malware.removed"]["deleted"]==3*68
assert sum(x["deleted"] for x in g.values())==d["total"]["deleted"]
assert sum(x["inserted"] for x in g.values())==d["total"]["inserted"]' || fail "stats by reason"
[ "$(rc "$P" audit stats good.log --by day --json)" = 0 ] &&
    py -c 'import json; d=json.load(open("out")); g={x["key"]:x["changes"] for x in d["groups"]}
assert g=={"2026-11-20":1,"2026-11-21":1,"2026-11-22":2,"2026-11-23":1}, g' || fail "stats by day"
[ "$(rc "$P" audit stats good.log --by middlebox)" = 0 ] && grep -q '^corp (' out &&
    grep -q '^TOTAL  *5 ' out || fail "stats by middlebox (table)"
[ "$(rc "$P" audit stats good.log --by url --url https://a. --json)" = 0 ] &&
    py -c 'import json; d=json.load(open("out")); assert len(d["groups"])==3 and d["total"]["changes"]==3' ||
    fail "stats by url with a filter"
[ "$(rc "$P" audit stats good.log --by week)" = 2 ] || fail "stats --by week: usage"
ok "stats by reason, day, middlebox, url"

# ---- proofs ---------------------------------------------------------------
seq=$(s 1)
[ "$(rc "$P" audit proof good.log "$seq" --out p.json --leaf-out leaf.txt)" = 0 ] || fail "proof"
py -c 'import json; d=json.load(open("p.json")); assert d["leaf_index"]=='"$seq"' and d["path"]' ||
    fail "proof JSON"
sed -n "$((seq + 1))p" good.log | cmp -s - leaf.txt || fail "--leaf-out is the entry's line"
[ "$(rc "$P" audit verify-proof p.json leaf.txt --pub k.pub)" = 0 ] &&
    grep -q "^proof ok: entry seq $seq " out || fail "verify-proof ok"
sed -n "$((seq + 1))p" good.log | { set +e; "$P" audit verify-proof p.json --line - --pub k.pub >out 2>err; echo $? >r; }
[ "$(cat r)" = 0 ] || fail "verify-proof --line -"
[ "$(rc "$P" audit verify-proof p.json leaf.txt --pub k.pub --json)" = 0 ] &&
    py -c 'import json; d=json.load(open("out")); assert d["result"]=="ok" and d["error"] is None' ||
    fail "verify-proof --json"
ok "proof and verify-proof round trip"
# Forged: another entry's line, an edited line, the wrong key, a broken path.
sed -n "$((seq + 2))p" good.log >wrong.txt
[ "$(rc "$P" audit verify-proof p.json wrong.txt --pub k.pub)" = 1 ] &&
    grep -q 'proof INVALID' out || fail "forged: wrong leaf line"
sed 's/news/newz/' leaf.txt >edited.txt
[ "$(rc "$P" audit verify-proof p.json edited.txt --pub k.pub)" = 1 ] &&
    grep -q '\[hash' out || fail "forged: edited leaf line"
[ "$(rc "$P" audit verify-proof p.json leaf.txt --pub other.pub)" = 1 ] &&
    grep -q 'another key' out || fail "forged: wrong key"
py -c 'import json; d=json.load(open("p.json")); p=d["path"][0]; d["path"][0]=("B" if p[0]=="A" else "A")+p[1:]
open("p2.json","w").write(json.dumps(d))'
[ "$(rc "$P" audit verify-proof p2.json leaf.txt --pub k.pub)" = 1 ] || fail "forged: path"
echo '{' >p3.json
[ "$(rc "$P" audit verify-proof p3.json leaf.txt --pub k.pub)" = 1 ] || fail "malformed proof: exit 1"
[ "$(rc "$P" audit verify-proof p.json leaf.txt)" = 2 ] || fail "verify-proof without --pub: usage"
[ "$(rc "$P" audit verify-proof p.json nothere.txt --pub k.pub)" = 2 ] || fail "missing line file: 2"
ok "forged proofs fail with exit 1"
[ "$(rc "$P" audit proof good.log 9999)" = 2 ] && grep -q 'no entry 9999' err || fail "proof: no such seq"
[ "$(rc "$P" audit proof good.log x)" = 2 ] || fail "proof: bad SEQ"
[ "$(rc "$P" audit proof good.log "$seq" --out p.json)" = 2 ] && grep -q 'already exists' err ||
    fail "proof --out refuses to overwrite"
[ "$(rc "$P" audit proof good.log "$seq" --out p.json -f)" = 0 ] || fail "proof --out -f"
# -f replaces a file, never a symlink in its place (nor what it points to:
# a sentinel, so that writing through the link would show) or a folder
echo sentinel >target.txt
ln -s target.txt plink.json
[ "$(rc "$P" audit proof good.log "$seq" --out plink.json -f)" = 2 ] &&
    grep -q 'plink.json: Too many levels of symbolic links' err && [ -L plink.json ] &&
    [ "$(cat target.txt)" = sentinel ] || fail "proof --out -f refuses a symlink"
mkdir pdir
[ "$(rc "$P" audit proof good.log "$seq" --out pdir -f)" = 2 ] && grep -q 'pdir: Is a directory' err ||
    fail "proof --out -f refuses a folder"
[ "$(rc "$P" audit frob good.log)" = 2 ] || fail "unknown audit command"
ok "proof errors"
# ---- consistency --out: an existing file refused, as proof --out -------------
# (the message `included --out` gives too: tests/tlog_monitor.sh, which
# serves a log over HTTP)
[ "$(rc "$P" audit consistency good.log 1 4 --out c.json)" = 0 ] && [ -s c.json ] ||
    fail "consistency --out"
cp c.json c.before
[ "$(rc "$P" audit consistency good.log 1 4 --out c.json)" = 2 ] &&
    [ "$(cat err)" = "patient audit: c.json already exists; use -f to overwrite it [file.exists]" ] &&
    [ ! -s out ] && cmp -s c.json c.before || fail "consistency --out refuses to overwrite"
[ "$(rc "$P" audit consistency good.log 1 4 --out c.json -f)" = 0 ] && cmp -s c.json c.before ||
    fail "consistency --out -f"
ok "consistency --out: an existing file refused (exit 2, file.exists), -f replaces it"
# ---- included: the bundle's descriptors, read with the verifier's cap ----------
# At the cap (33 descriptors: docs/format/report.md) the bundle is read and
# each descriptor judged (no evidence for any: exit 1); one past it the
# bundle is refused (exit 2), as patient_verify_bundle refuses it
# (check_verify, bundle_changes_cap).
py -c 'import json
for n in (33, 34):
    json.dump({"type": "bundle", "changes": ["d%d" % i for i in range(n)]}, open("b%d.json" % n, "w"))'
[ "$(rc "$P" audit included b33.json --pub k.pub)" = 1 ] &&
    grep -q 'change 32: NO EVIDENCE that it was logged \[log.missing\]' out &&
    [ "$(grep -c 'NO EVIDENCE' out)" = 33 ] || fail "included: 33 descriptors read"
[ "$(rc "$P" audit included b34.json --pub k.pub)" = 2 ] &&
    grep -q 'not an evidence bundle: no "changes" array of at most 33 strings \[parse\]' err &&
    [ ! -s out ] || fail "included: 34 descriptors refused"
ok "included reads at most 33 descriptors, as the verifier"
echo "1..$n"
