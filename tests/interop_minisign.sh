#!/bin/sh
# Interop with the real minisign (0.11 checked): keys and signatures go both
# ways, and tampered files fail on both sides. Exit 77 (skip) without it.
set -eu
: "${top_builddir:=.}" "${top_srcdir:=.}"
command -v minisign >/dev/null 2>&1 || { echo "SKIP: minisign not installed"; exit 77; }
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
workdir interop_minisign
P="$B/cli/patient"
T="$B/tests/jws_tool"
# Expect exit code $1 from the rest of the command line.
expect() { want=$1; shift; set +e; "$@" >/dev/null 2>&1; got=$?; set -e; [ "$got" -eq "$want" ]; }

printf 'some exact bytes\n' > file
cp file tampered && printf 'x' >> tampered

# 1. A key made by `minisign -G -W` loads in patient; our signature
#    verifies with minisign, and minisign's with us.
minisign -G -W -p m.pub -s m.key >/dev/null
"$T" minisig m.key file "signed by patient" > file.minisig || fail "patient signs with a minisign key"
minisign -Vm file -p m.pub >/dev/null || fail "minisign -V accepts our signature"
ok "minisign -G -W key signs in patient; minisign -Vm FILE -p PUB verifies"
cp file.minisig tampered.minisig
expect 1 minisign -Vm tampered -p m.pub || fail "minisign must reject a tampered file"
expect 1 "$T" minisig-verify m.pub tampered file.minisig || fail "we must reject a tampered file"
ok "tampered file fails in minisign and in patient"
minisign -S -s m.key -m file -x file.msig -t "signed by minisign" </dev/null >/dev/null
"$T" minisig-verify m.pub file file.msig || fail "we verify minisign's signature"
ok "patient verifies a minisign signature"

# 2. A key made by `patient keygen -W` signs in minisign; the command it
#    prints verifies.
"$P" keygen -W -p p.pub -s p.key > keygen.out || fail "patient keygen -W"
[ "$(stat -c %a p.key)" = 600 ] || fail "secret key mode must be 0600"
minisign -S -s p.key -m file -x file.psig -t "minisign, patient key" </dev/null >/dev/null ||
    fail "minisign -S with a patient key (real BLAKE2b checksum in an unencrypted key)"
minisign -V -p p.pub -m file -x file.psig >/dev/null || fail "minisign -V with a patient key"
"$T" minisig-verify p.pub file file.psig || fail "patient verifies minisign's signature by a patient key"
pk=$(sed -n 's/^minisign -Vm <file> -P //p' keygen.out)
[ -n "$pk" ] || fail "keygen prints the verify command"
minisign -Vm file -x file.psig -P "$pk" >/dev/null || fail "the printed command verifies"
ok "patient keygen -W key works in minisign -S / -V"
expect 1 minisign -Vm tampered -x file.psig -p p.pub || fail "tampered file must fail"
"$T" minisig p.key file "patient key, patient signature" > file.ppsig
minisign -Vm file -x file.ppsig -p p.pub >/dev/null || fail "minisign verifies our signature by our key"
ok "patient signature by a patient key verifies in minisign; tampered fails"

# 3. Encrypted keys both ways (scrypt, 1 GiB: a few seconds each).
printf 'interop password\n' > pw && chmod 600 pw
"$P" keygen -p pe.pub -s pe.key --password-file pw >/dev/null || fail "patient keygen (encrypted)"
printf 'interop password\n' | minisign -S -s pe.key -m file -x file.pesig >/dev/null 2>&1 ||
    fail "minisign decrypts a patient-encrypted key"
minisign -Vm file -x file.pesig -p pe.pub >/dev/null || fail "verify"
ok "encrypted patient key works in minisign"
printf 'interop password\ninterop password\n' | minisign -G -p me.pub -s me.key >/dev/null 2>&1
PATIENT_PASSWORD_FILE=pw "$T" minisig me.key file "patient, encrypted minisign key" > file.mesig ||
    fail "patient decrypts a minisign-encrypted key"
minisign -Vm file -x file.mesig -p me.pub >/dev/null || fail "verify"
ok "encrypted minisign key works in patient"
echo "1..$n"
