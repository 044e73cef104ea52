#!/bin/sh
# The README's main command, end to end: run scripts/demo against this build
# and check that its story says what happened.
set -eu
: "${top_srcdir:?}" "${top_builddir:?}"
# shellcheck source=tests/prelude.sh
. "$top_srcdir/tests/prelude.sh"
workdir demo
out=$W/out
if ! PATIENT_BUILD_DIR="$B" PATIENT_DEMO_NO_BUILD=1 "$S/scripts/demo" >"$out" 2>&1; then
    cat "$out"
    echo "not ok - scripts/demo failed"
    exit 1
fi
fail=0
expect() {
    if grep -qF -- "$1" "$out"; then echo "ok - $2"; else echo "not ok - $2 (missing: $1)"; fail=1; fi
}
expect "Signature and comment signature verified" "stock minisign verifies the manifest"
expect "verified $(sed -n 's/^origin: \([^ ]*\).*/\1/p' "$out")/index.html" "direct fetch is verified"
expect "modified " "a page through the middlebox is modified"
expect "banner.inserted" "the banner insertion is reported"
expect "tracker.removed" "the tracker removal is reported"
expect "policy.reason.denied" "Alice's policy refuses malware removal"
expect "withheld by the middlebox" "withheld malware bytes are reported"
expect "proof: confined" "Bob's verdict: the EICAR removal is confined"
expect "unchecked" "the unchecked bytes next to the removed EICAR string are reported"
expect "TLS: not intercepted" "direct over HTTPS: not intercepted"
expect "TLS: decrypted by corp-proxy, allowed by your policy" "through the middlebox: decrypted by the named middlebox"
expect "upstream TLS: TLSv1.3" "the hop's signed upstream TLS is shown"
expect "body.mismatch" "a file changed at the origin is invalid"
expect "manifest.rollback" "a replayed old manifest is refused"
expect "TAMPERED (edited)" "an edited audit log fails verification"
[ "$fail" -eq 0 ] || { cat "$out"; exit 1; }
