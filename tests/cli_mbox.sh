#!/bin/sh
# patient-mbox as a filter: the HTTP rules it shares with srv_patient (a 206
# or a no-transform response passes unchanged, each with a changed twin),
# the headers a proxy must drop from a changed response, and its input
# files (--in-header refuses '-' and symlinks, --header-out '-'), its output
# files (a symlink or FIFO in their place refused), and the
# descriptor's edit cap reached from rules.
set -eu
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
workdir cli_mbox
P="$B/cli/patient"
M="$B/middlebox/patient-mbox"
# The prelude's rc, with a page on stdin.
rc() { set +e; "$@" <"$S/tests/site/index.html" >out 2>err; r=$?; set -e; echo $r; }

"$P" keygen -W -p k.pub -s k.sec >/dev/null
mbox() { rc "$M" -s k.sec --name t --type text/html --rules "$S/middlebox/rules/example.json" \
    --url https://a.example/index.html --at 2026-11-27T10:00:00Z --header-out hdr.txt \
    --drop-out drop.txt "$@"; }

[ "$(mbox)" = 0 ] && ! cmp -s out "$S/tests/site/index.html" && grep -q '^Patient-Change: ' hdr.txt ||
    fail "a 200 response is changed"
printf 'Content-Length\nETag\nContent-MD5\nDigest\nContent-Digest\nRepr-Digest\nUnencoded-Digest\nAccept-Ranges\n' >want
cmp -s drop.txt want || fail "--drop-out names the headers to drop"
ok "changed: body edited, Patient-Change written, headers to drop listed"

[ "$(mbox --status 206)" = 0 ] && cmp -s out "$S/tests/site/index.html" && [ ! -s drop.txt ] &&
    ! grep -q Patient-Change hdr.txt && grep -q 'unchanged (partial content)' err ||
    fail "206 passes unchanged"
[ "$(mbox --status 200 --cache-control 'public, No-Transform')" = 0 ] &&
    cmp -s out "$S/tests/site/index.html" && grep -q 'unchanged (Cache-Control: no-transform)' err ||
    fail "no-transform passes unchanged"
[ "$(mbox --cache-control 'no-transformer, max-age=60')" = 0 ] && grep -q '^Patient-Change: ' hdr.txt ||
    fail "another directive does not stop the change"
[ "$(mbox --status 2000)" = 2 ] && grep -q -- '--status' err || fail "--status out of range: usage"
ok "206 and no-transform pass unchanged; their twins are changed"

[ "$(mbox --in-header -)" = 2 ] && grep -q 'in-header' err || fail "--in-header - is a usage error"
# refused before the log is opened: no log file appears
[ "$(mbox --in-header - --log early.log)" = 2 ] && [ ! -e early.log ] ||
    fail "--in-header - refused before the log is created"
[ "$(mbox --header-out - --log early.log)" = 2 ] && grep -q 'header-out' err && [ ! -e early.log ] ||
    fail "--header-out - is a usage error (stdout carries the body)"
: >empty.hdr
ln -s empty.hdr link.hdr
[ "$(mbox --in-header link.hdr)" = 2 ] && grep -q 'link.hdr' err || fail "--in-header symlink refused"
[ "$(mbox --in-header empty.hdr)" = 0 ] || fail "--in-header regular file accepted"
ok "--in-header: '-' and symlinks refused, a regular file read; --header-out '-' refused"

# --header-out and --drop-out replace a regular file, never a symlink in its
# place (nor the file it points to) or a FIFO
echo sentinel >target.txt
ln -s target.txt hlink.txt
[ "$(mbox --header-out hlink.txt)" = 2 ] &&
    grep -q 'hlink.txt: .*Too many levels of symbolic links' err && [ -L hlink.txt ] &&
    [ "$(cat target.txt)" = sentinel ] || fail "--header-out refuses a symlink"
mkfifo drop.fifo
[ "$(mbox --drop-out drop.fifo)" = 2 ] && grep -q 'drop.fifo: .*Operation not supported' err ||
    fail "--drop-out refuses a FIFO"
[ "$(mbox --drop-out -)" = 2 ] && grep -q 'drop-out' err && [ ! -e ./- ] ||
    fail "--drop-out - is a usage error (stdout carries the body)"
echo old >drop.txt
[ "$(mbox --status 206)" = 0 ] && [ ! -s drop.txt ] || fail "--drop-out replaces a regular file"
ok "--header-out and --drop-out: a regular file replaced, a symlink, a FIFO and '-' refused"

# The descriptor's edit cap from rules: 10000 matches (one insertion each)
# are signed, logged and the log verifies; one match more passes the body
# unchanged with a rules.limit event, before anything is signed.
printf '%s' '{"patient":1,"type":"rules","rules":[{"id":"r","match":{"literal":"a"},
  "action":"insert_after","text":"x","reason":"r","max_matches":100000}]}' >cap.json
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "ab" }' >cap.html
awk 'BEGIN { for (i = 0; i < 10001; i++) printf "ab" }' >cap1.html
capbox() { set +e; "$M" -s k.sec --name t --type text/html --rules cap.json --log cap.log \
    --url https://a.example/cap.html --at 2026-11-27T10:00:00Z --header-out hdr.txt <"$1" >out 2>err
    r=$?; set -e; echo $r; }
[ "$(capbox cap.html)" = 0 ] && grep -q '^Patient-Change: ' hdr.txt && [ "$(wc -c <out)" = 30000 ] ||
    fail "10000 edits: changed"
[ "$(rc "$P" audit verify cap.log --pub k.pub --deep)" = 0 ] || fail "10000 edits: logged, log verifies"
[ "$(capbox cap1.html)" = 0 ] && cmp -s out cap1.html && ! grep -q Patient-Change hdr.txt &&
    grep -q 'unchanged (rules.limit)' err || fail "10001 edits: passed unchanged"
grep -q '"event":"rules.limit".*more edits than one descriptor holds' cap.log ||
    fail "10001 edits: rules.limit event logged"
ok "10000 edits from rules signed and logged; 10001 pass unchanged with a rules.limit event"
