#!/bin/sh
# A secret key never leaves its key file.
# 1. Every tool that loads a secret key (patient keygen, patient-publish in
#    site and response mode, patient-mbox with an audit log, patient
#    disclose, patient inspect on the key file), on success and on its error
#    paths (wrong password, unsafe permissions), has its stdout, stderr and
#    every file it writes searched for: the key file's base64 line, the
#    Ed25519 seed and the 64-byte secret key as hex (either case) and base64,
#    the raw seed bytes, and the password of the encrypted key.
# 2. A core dump of patient-mbox taken while it holds the key (SIGABRT while
#    it waits for its input) contains none of them either (libsodium's guarded
#    memory is excluded from core dumps; the key file's text is wiped).
# 3. Secret key files are written 0600, and every tool refuses a key file
#    (and a password file) readable by group or others with exit 2 and a
#    message saying `chmod 600`.
set -u
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
PATIENT="$B/cli/patient"
PUB="$B/publisher/patient-publish"
MBOX="$B/middlebox/patient-mbox"
PY=/usr/bin/python3

[ -x "$PY" ] || { echo "SKIP: $PY not installed"; exit 77; }
built "$PATIENT" "$PUB" "$MBOX"

workdir secrets
T=$W
FIFO_HOLD=
before_exit() { [ -z "$FIFO_HOLD" ] || kill "$FIFO_HOLD" 2>/dev/null; }
tally
private_home
mkdir -p "$T/out" "$T/keys"
umask 022 # a careless umask: key files must still come out 0600

K="$T/keys"
PW="correct horse battery staple 6f1d"
printf '%s\n' "$PW" >"$K/pw"
chmod 600 "$K/pw"

# ---- keys ----------------------------------------------------------------------
n=0
# run NAME CMD...: run a tool with stdout/stderr captured under $T/out.
run() {
    name=$1
    shift
    n=$((n + 1))
    "$@" >"$T/out/$n.$name.stdout" 2>"$T/out/$n.$name.stderr" </dev/null
    echo $?
}
[ "$(run keygen-w "$PATIENT" keygen -W -p "$K/plain.pub" -s "$K/plain.key")" -eq 0 ] ||
    fail "keygen -W"
[ "$(run keygen-enc "$PATIENT" keygen --password-file "$K/pw" -p "$K/enc.pub" -s "$K/enc.key")" -eq 0 ] ||
    fail "keygen with a password"
for k in plain enc; do
    m=$(stat -c %a "$K/$k.key")
    [ "$m" = 600 ] && ok "$k.key written 0600 under umask 022" || fail "$k.key has mode $m"
done

# What must never appear anywhere: derived from the unencrypted key file
# (minisign layout: 54 bytes of algorithm/KDF header, 8-byte key id, 64-byte
# secret key = 32-byte seed + public key, checksum).
"$PY" - "$K/plain.key" "$T/needles" "$PW" <<'EOF' || { echo "FAIL: cannot read the key"; exit 1; }
import base64, sys
line = open(sys.argv[1]).read().splitlines()[1].strip()
raw = base64.b64decode(line)
seed, sk = raw[62:94], raw[62:126]
# the whole line; the part of it that encodes the seed (raw bytes 63..92 are
# base64 characters 84..123); a part of its non-secret header (a canary for
# copies of the line); the password.
needles = [line, line[84:124], line[8:60], sys.argv[3]]
for b in (seed, sk):
    needles += [b.hex(), b.hex().upper(), base64.b64encode(b).decode().rstrip("="),
                base64.urlsafe_b64encode(b).decode().rstrip("=")]
with open(sys.argv[2], "w") as f:
    f.write("\n".join(needles) + "\n")
with open(sys.argv[2] + ".bin", "wb") as f:
    f.write(seed)
EOF

# scan WHAT FILE...: none of the needles (text) nor the raw seed (bytes) in FILEs.
scan() {
    what=$1
    shift
    "$PY" - "$T/needles" "$@" <<'EOF'
import sys
needles = [n.encode() for n in open(sys.argv[1]).read().splitlines() if n]
seed = open(sys.argv[1] + ".bin", "rb").read()
bad = 0
for path in sys.argv[2:]:
    try:
        data = open(path, "rb").read()
    except (IsADirectoryError, FileNotFoundError):
        continue
    for n in needles + [seed]:
        if n in data:
            print("    %s contains secret material (%d bytes at %d)" % (path, len(n), data.index(n)))
            bad = 1
sys.exit(bad)
EOF
    if [ $? -eq 0 ]; then ok "$what: no secret material"; else fail "$what: secret material found"; fi
}

# ---- every tool that loads a secret key, success and error paths ------------------
S="$T/site"
mkdir -p "$S"
printf '<!doctype html><p>home</p><script src="https://tracker.example/t.js"></script>\n' >"$S/index.html"
printf 'x\n' >"$S/a.txt"
for k in plain enc; do
    pwopt=
    [ "$k" = enc ] && pwopt="--password-file $K/pw"
    # shellcheck disable=SC2086
    [ "$(run publish-$k "$PUB" -s "$K/$k.key" $pwopt --origin https://example.org "$S")" -eq 0 ] ||
        fail "publish with the $k key"
    # shellcheck disable=SC2086
    [ "$(run response-$k "$PUB" --response -s "$K/$k.key" $pwopt --url https://example.org/x "$S/a.txt")" -eq 0 ] ||
        fail "publish --response with the $k key"
    # shellcheck disable=SC2086
    "$MBOX" -s "$K/$k.key" $pwopt --name "Secret Test" --rules "$top_srcdir/middlebox/rules/trackers-only.json" \
        --url https://example.org/index.html --type text/html --header-out "$T/out/mbox-$k.headers" \
        --log "$T/out/audit-$k.jsonl" --checkpoint-every 1 <"$S/index.html" >"$T/out/mbox-$k.body" \
        2>"$T/out/mbox-$k.stderr" || fail "patient-mbox with the $k key"
    # shellcheck disable=SC2086
    [ "$(run disclose-$k "$PATIENT" disclose -s "$K/$k.key" $pwopt --out "$T/out/disclosure-$k.json" \
        --operator "Secret Test" --contact mailto:ops@example.org --service tracker-filter \
        --retention-days 0 --sharing none --upstream-tls-min TLSv1.2)" -eq 0 ] || fail "disclose with the $k key"
    [ "$(run inspect-$k "$PATIENT" inspect "$K/$k.key")" -eq 0 ] || fail "inspect $k.key"
    [ "$(run inspect-json-$k "$PATIENT" inspect --json "$K/$k.key")" -eq 0 ] || fail "inspect --json $k.key"
    [ "$(run audit-$k "$PATIENT" audit list "$T/out/audit-$k.jsonl")" -eq 0 ] || fail "audit list"
done
grep -q 'Patient-Change: ' "$T/out/mbox-plain.headers" || fail "patient-mbox issued no descriptor"
# error paths: wrong password, encrypted key without one
printf 'wrong password\n' >"$K/wrong"
chmod 600 "$K/wrong"
[ "$(run publish-wrongpw "$PUB" -s "$K/enc.key" --password-file "$K/wrong" --origin https://example.org "$S")" -eq 2 ] ||
    fail "publish with a wrong password: not exit 2"
[ "$(run disclose-nopw "$PATIENT" disclose -s "$K/enc.key" --out "$T/out/d.json" --operator x)" -eq 2 ] ||
    fail "disclose with no password: not exit 2"
"$MBOX" -s "$K/enc.key" --password-file "$K/wrong" --name x --rules "$top_srcdir/middlebox/rules/trackers-only.json" \
    --url https://example.org/ <"$S/index.html" >"$T/out/mbox-wrong.stdout" 2>"$T/out/mbox-wrong.stderr"
[ $? -eq 2 ] || fail "patient-mbox with a wrong password: not exit 2"

files=$(find "$T/out" "$S" -type f | sort)
# shellcheck disable=SC2086
scan "stdout, stderr and every file written ($(echo $files | wc -w) files)" $files
# The public key files are outputs too.
scan "public key files" "$K/plain.pub" "$K/enc.pub"
# The encrypted key file holds the seed only encrypted.
scan "the encrypted key file" "$K/enc.key"

# ---- core dump of a process holding the key ---------------------------------------
if (ulimit -c unlimited) 2>/dev/null && [ "$(cat /proc/sys/kernel/core_pattern 2>/dev/null)" = core ]; then
    mkdir -p "$T/core"
    mkfifo "$T/core/in"
    # Hold the FIFO open for writing (sending nothing) so the middlebox blocks
    # reading its body with the key loaded.
    sleep 60 >"$T/core/in" &
    FIFO_HOLD=$!
    (
        cd "$T/core" || exit 1
        ulimit -c unlimited
        exec "$MBOX" -s "$K/plain.key" --name "Core Test" --rules "$top_srcdir/middlebox/rules/trackers-only.json" \
            --url https://example.org/ --log "$T/core/audit.jsonl" <"$T/core/in" >/dev/null 2>&1
    ) &
    mp=$!
    i=0
    while [ ! -f "$T/core/audit.jsonl" ] && kill -0 "$mp" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    sleep 0.3
    kill -ABRT "$mp" 2>/dev/null
    wait "$mp" 2>/dev/null
    kill "$FIFO_HOLD" 2>/dev/null
    FIFO_HOLD=
    core=$(find "$T/core" -name 'core*' -type f | head -1)
    if [ -n "$core" ]; then
        ok "patient-mbox dumped core ($(wc -c <"$core") bytes) while holding the key"
        scan "core dump of patient-mbox" "$core"
    else
        echo "note: no core file was written (core dumps restricted here); core check not run"
    fi
else
    echo "note: core dumps not available as ./core here (core_pattern $(cat /proc/sys/kernel/core_pattern 2>/dev/null)); core check not run"
fi

# ---- permissions ------------------------------------------------------------------
cp "$K/plain.key" "$K/loose.key"
for mode in 640 604 644; do
    chmod "$mode" "$K/loose.key"
    for tool in publish response mbox disclose; do
        case $tool in
        publish) set -- "$PUB" -s "$K/loose.key" --origin https://example.org "$S" ;;
        response) set -- "$PUB" --response -s "$K/loose.key" --url https://example.org/x "$S/a.txt" ;;
        mbox) set -- "$MBOX" -s "$K/loose.key" --name x --rules "$top_srcdir/middlebox/rules/trackers-only.json" --url https://example.org/ ;;
        disclose) set -- "$PATIENT" disclose -s "$K/loose.key" --out "$T/out/loose.json" --operator x \
            --contact mailto:a@example.org --service other --retention-days 0 --sharing none \
            --upstream-tls-min TLSv1.2 ;;
        esac
        "$@" <"$S/index.html" >"$T/perm.out" 2>"$T/perm.err"
        rc=$?
        if [ "$rc" -eq 2 ] && grep -q 'chmod 600' "$T/perm.err"; then
            ok "$tool refuses a $mode key: exit 2, says chmod 600"
        else
            fail "$tool with a $mode key: exit $rc, stderr: $(cat "$T/perm.err")"
        fi
    done
done
chmod 644 "$K/pw"
"$PUB" -s "$K/enc.key" --password-file "$K/pw" --origin https://example.org "$S" >"$T/perm.out" 2>"$T/perm.err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q 'chmod 600' "$T/perm.err"; then
    ok "publish refuses a 644 password file: exit 2, says chmod 600"
else
    fail "publish with a 644 password file: exit $rc, stderr: $(cat "$T/perm.err")"
fi
echo "$(find "$T/out" -name '*.stderr' | wc -l) tool runs scanned; $fails failures"
[ "$fails" -eq 0 ]
