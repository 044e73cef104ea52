# shellcheck shell=sh
# Sourced by the browser tests (tests/plugin_e2e.sh, tests/plugin_firefox.sh)
# once the stack is up (scripts/stack's variables set): what an HTTPS origin
# behind a decrypting middlebox, and an endpoint that trusts it the way an
# enterprise endpoint does, need. Uses $CLI, $PUBLISH and die().

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
