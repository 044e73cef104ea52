# shellcheck shell=sh disable=SC2034
# Sourced by the browser tests (tests/plugin_e2e.sh, tests/plugin_firefox.sh)
# after tests/prelude.sh: the paths of the tools they drive (each can be
# overridden from the environment), die, and browser_need, the skips they
# share; then, once the stack is up (scripts/stack's variables set), what an
# HTTPS origin behind a decrypting middlebox, and an endpoint that trusts it
# the way an enterprise endpoint does, need.
plugin=$S/plugin
VERIFY=${PATIENT_VERIFY:-$B/verifier/patient-verify}
PUBLISH=${PATIENT_PUBLISH:-$B/publisher/patient-publish}
CLI=${PATIENT_BIN:-$B/cli/patient}
export PATIENT_BIN=$CLI
export PATIENT_SRV_MODULE=${PATIENT_SRV_MODULE:-$B/middlebox/.libs/srv_patient.so}

die() { echo "FAIL: $*"; exit 1; }

# browser_need — skip (77) unless node, certutil, the stack's servers, the
# tools and the srv_patient module are here (the browser is each test's own)
browser_need() {
    command -v node >/dev/null 2>&1 || skip "node not installed"
    command -v certutil >/dev/null 2>&1 || skip "certutil not installed (libnss3-tools)"
    for b in nginx squid c-icap; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || skip "$b not installed"
    done
    [ -x "$VERIFY" ] || skip "no verifier at $VERIFY"
    [ -x "$PUBLISH" ] || skip "no patient-publish at $PUBLISH"
    [ -x "$CLI" ] || skip "no patient CLI at $CLI"
    [ -f "$PATIENT_SRV_MODULE" ] || skip "no srv_patient module at $PATIENT_SRV_MODULE"
}

# https_publish KEY SITE — publish SITE (the copy nginx serves over HTTPS,
# STACK_HTTPS_SITE) for the https origin, announcing the origin's TLS key,
# and sign the middlebox's disclosure naming its interception CA
https_publish() {
    "$PUBLISH" -q -s "$1" --origin "${ORIGIN_HTTPS_URL%/}" --tls-key "$STACK_DIR/pki/origin.crt" "$2" ||
        die "publish https"
    "$CLI" disclose -s "$STACK_DIR/mbox.key" --out "$MBOX_WWW" --operator "Example Corp IT" \
        --contact mailto:it@example.test --service content-filter --retention-days 0 --sharing none \
        --upstream-tls-min TLSv1.2 --interception-ca "$BUMP_CA" >/dev/null || die "disclose"
}

# nss_trust DIR — a throw-away NSS database in DIR (a Firefox profile's
# cert9.db, Chromium's $HOME/.pki/nssdb) that trusts the interception CA;
# nothing else changes, the system store is not touched
nss_trust() {
    mkdir -p "$1"
    certutil -N -d "sql:$1" --empty-password || die "certutil -N"
    certutil -A -d "sql:$1" -n "patient stack interception CA" -t C,, -i "$BUMP_CA" || die "certutil -A"
}
