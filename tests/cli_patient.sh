#!/bin/sh
# The `patient` tool's skeleton: verb dispatch, help, exit codes, keygen's
# refusals, disclose --from. Needs openssl(1) for two test pins.
set -eu
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
workdir cli_patient
P="$B/cli/patient"

[ "$(rc "$P" --help)" = 0 ] && grep -q '^  keygen ' out || fail "--help lists verbs"
[ "$(rc "$P" --version)" = 0 ] && grep -q '^patient ' out || fail "--version"
[ "$(rc "$P" help keygen)" = 0 ] && grep -q 'usage: patient keygen' out || fail "help VERB"
[ "$(rc "$P" keygen --help)" = 0 ] && grep -q 'usage: patient keygen' out || fail "VERB --help"
ok "help and version"
[ "$(rc "$P")" = 2 ] && grep -q usage err || fail "no verb: usage, exit 2"
[ "$(rc "$P" frobnicate)" = 2 ] && grep -q 'usage' err && [ ! -s out ] || fail "unknown verb: exit 2"
[ "$(rc "$P" help frobnicate)" = 2 ] || fail "help unknown verb: exit 2"
[ "$(rc "$P" keygen -W -p a.pub)" = 2 ] && grep -q 'required' err || fail "missing -s: exit 2"
[ "$(rc "$P" keygen -W --bogus -p a.pub -s a.key)" = 2 ] || fail "bad option: exit 2"
[ "$(rc "$P" keygen -W -p a.pub -s a.key extra)" = 2 ] || fail "extra argument: exit 2"
ok "usage errors exit 2"
[ "$(rc "$P" keygen -W -p a.pub -s a.key -c 'test key')" = 0 ] || fail "keygen -W"
head -n 1 a.key | grep -qx 'untrusted comment: test key' || fail "-c sets the comment"
grep -q '^minisign -Vm <file> -P RW' out || fail "prints the verify command"
cp a.key a.key.orig && cp a.pub a.pub.orig
[ "$(rc "$P" keygen -W -p a.pub -s a.key)" = 2 ] && grep -q 'a.key already exists' err ||
    fail "refuses to overwrite, naming the file"
cmp -s a.key a.key.orig && cmp -s a.pub a.pub.orig || fail "files unchanged after refusal"
[ "$(rc "$P" keygen -W -p a.pub -s new.key)" = 2 ] && grep -q 'a.pub already exists' err &&
    [ ! -e new.key ] || fail "refuses before writing either file"
[ "$(rc "$P" keygen -W -f -p a.pub -s a.key)" = 0 ] && ! cmp -s a.key a.key.orig || fail "-f replaces"
ok "keygen refuses to overwrite without -f"
# No terminal and no password file: a clear error, not a hang.
[ "$(rc setsid "$P" keygen -p b.pub -s b.key </dev/null)" = 2 ] && grep -q 'password-file' err &&
    [ ! -e b.key ] || fail "no terminal: exit 2"
: > empty && chmod 600 empty
[ "$(rc "$P" keygen -p b.pub -s b.key --password-file empty)" = 2 ] && grep -q 'empty password' err ||
    fail "empty password refused"
printf 'pw\n' > loose && chmod 644 loose
[ "$(rc "$P" keygen -p b.pub -s b.key --password-file loose)" = 2 ] && [ ! -e b.key ] ||
    fail "group/world-readable password file refused"
[ "$(rc "$P" keygen -W -p b.pub -s b.key --password-file empty)" = 2 ] || fail "-W with a password file"
ok "password sources"
# disclose --from renews a disclosure: its interception CAs carry over
# unless --interception-ca names others; a pin that does not decode is
# refused with exit 2 and nothing written.
pin1="sha256-$(printf '%032d' 1 | openssl base64 -A)"
pin2="sha256-$(printf '%032d' 2 | openssl base64 -A)"
[ "$(rc "$P" disclose -s a.key -o d1.json --operator Op --contact mailto:a@b.example \
    --service tracker-filter --retention-days 0 --sharing none --upstream-tls-min TLSv1.2 \
    --interception-ca "$pin1")" = 0 ] || fail "disclose with an interception CA"
[ "$(rc "$P" disclose -s a.key -o d2.json --from d1.json)" = 0 ] &&
    grep -qF "\"$pin1\"" d2.json || fail "--from keeps the interception CA"
[ "$(rc "$P" disclose -s a.key -o d3.json --from d1.json --interception-ca "$pin2")" = 0 ] &&
    grep -qF "\"$pin2\"" d3.json && ! grep -qF "\"$pin1\"" d3.json ||
    fail "--interception-ca overrides --from's"
sed "s#$pin1#sha256-nope#" d1.json > bad.json
[ "$(rc "$P" disclose -s a.key -o d4.json --from bad.json)" = 2 ] &&
    grep -q 'interception_ca is not a list of 1..8 distinct sha256- pins' err && [ ! -e d4.json ] ||
    fail "--from with a bad pin: exit 2"
ok "disclose --from keeps the interception CAs"
# Each tool sets the out-of-memory note's hooks (patient_json_track_nomem,
# error.h) in its main: out of memory cannot be forced cheaply here, so
# read the call from main's code (the real binary, under libtool's .libs).
if command -v objdump >/dev/null 2>&1; then
    for t in cli/patient publisher/patient-publish verifier/patient-verify middlebox/patient-mbox; do
        x="$B/$(dirname "$t")/.libs/$(basename "$t")"
        [ -x "$x" ] || x="$B/$t"
        objdump -d --no-show-raw-insn "$x" >dis 2>err || fail "objdump $t"
        awk '/^[0-9a-f]+ <main>:$/ { m = 1; next } m && /^$/ { exit } m' dis >main.s
        [ -s main.s ] || fail "$t: no main in objdump's output"
        grep -q 'call.*<patient_json_track_nomem' main.s ||
            fail "$t: main does not call patient_json_track_nomem"
    done
    rm -f dis main.s
    ok "every tool's main calls patient_json_track_nomem"
fi
echo "1..$n"
