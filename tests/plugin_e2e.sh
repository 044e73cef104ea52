#!/bin/sh
# tests/plugin_e2e.sh — the patient extension in real Chromium, with the real
# native host (`patient-verify --native-host`), against the loopback stack
# (nginx origin, Squid + c-icap running srv_patient as the middlebox).
#
#   run A, direct, policy trusts the publisher and the middlebox:
#       published page            -> verified
#       page changed after publishing -> invalid
#       a site outside the policy, without a manifest -> not covered (none)
#   run B, through the middlebox (browser and verifier both use the proxy):
#       page with tracker scripts -> modified, the popup lists who/where/what/why;
#       the same over HTTPS through the bumping middlebox (Chromium trusts its
#       interception CA from $HOME/.pki/nssdb, the native host from
#       PATIENT_CA_FILE) -> modified, "decrypted by patient-e2e, TLS 1.3 to
#       the origin, certificate verified" (judged on the verifier's re-fetch)
#   run B2, the same HTTPS page, policy without may_decrypt -> invalid,
#       tls.intercepted.denied
#   run C, through the middlebox, policy does NOT trust the middlebox:
#       same page                 -> invalid
#   run D, direct, "verify scripts and styles" on: the page's script and style
#       are verified as well
#   a split-view server (tampered page for browsers, the signed one for the
#       verifier): in run A, re-fetched by default -> verified, and the popup
#       says the verdict is about a re-fetched copy (what re-fetching cannot
#       catch); run E, "exact bytes" on (debugger + CDP Fetch) -> invalid on
#       the bytes Chromium received, and a published page verified on them
#
# Skips (exit 77) when chromium, node, playwright-core, certutil
# (libnss3-tools), the stack's servers or a verifier with --native-host are
# missing.  PLUGIN_SHOTS=DIR keeps the popup
# screenshots (docs/img is where the README's come from).
set -eu

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
# shellcheck source=tests/prelude.sh
. "$top_srcdir/tests/prelude.sh"
# shellcheck source=tests/plugin_tls.sh
. "$S/tests/plugin_tls.sh"

command -v chromium >/dev/null 2>&1 || skip "chromium not installed (apt-get install chromium)"
browser_need
"$VERIFY" --help 2>&1 | grep -q -- '--native-host' || skip "$VERIFY has no --native-host"

stack_up=0 plain_pid= split_pid=
before_exit() {
    [ "$stack_up" = 0 ] || "$S/scripts/stack" stop "$tmp/stack" >/dev/null 2>&1 || true
    [ -z "$plain_pid" ] || kill "$plain_pid" 2>/dev/null || true
    [ -z "$split_pid" ] || kill "$split_pid" 2>/dev/null || true
}
KEEP=${KEEP:-${PLUGIN_E2E_KEEP:-}}
workdir patient-plugin-e2e
tmp=$W

# playwright-core: the one in plugin/test/node_modules (`npm install --prefix
# plugin/test` once in a checkout), else installed (from npm's cache when it is
# there) into a copy of the test in $tmp: the source tree is never written to
# (it is read-only under `make distcheck`, and has no node_modules there).
e2e=$plugin/test/e2e.js ext=$plugin/extension
if [ ! -d "$plugin/test/node_modules/playwright-core" ]; then
    mkdir -p "$tmp/e2e/test"
    cp "$plugin/test/e2e.js" "$plugin/test/package.json" "$plugin/test/package-lock.json" "$tmp/e2e/test/"
    cp -R "$plugin/extension" "$tmp/e2e/extension"
    chmod -R u+w "$tmp/e2e"
    timeout 180 npm install --prefix "$tmp/e2e/test" --no-audit --no-fund >/dev/null 2>&1 ||
        skip "playwright-core not installed and npm install failed (offline?)"
    e2e=$tmp/e2e/test/e2e.js ext=$tmp/e2e/extension
fi

# Everything the verifier keeps (manifest cache, highest versions seen) stays
# in $tmp: Chromium and the native host inherit this environment.
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/config XDG_CACHE_HOME=$tmp/cache \
    XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME" "$XDG_STATE_HOME"

# ---- the site, the stack, the publisher's signature
cp -R "$top_srcdir/tests/site" "$tmp/site"
chmod -R u+w "$tmp/site"    # the source tree may be read-only (make distcheck)
cp "$tmp/site/index.html" "$tmp/site/tampered.html"
cp -R "$tmp/site" "$tmp/site-https"    # the https origin's own published copy
"$CLI" keygen -W -p "$tmp/pub.pub" -s "$tmp/pub.key" >/dev/null || die "keygen"

stack_out=$(STACK_HTTPS_SITE=$tmp/site-https "$top_srcdir/scripts/stack" start "$tmp/stack" "$tmp/site" \
    --rules "$top_srcdir/middlebox/rules/trackers-only.json" --name patient-e2e) || die "stack start"
stack_up=1
eval "$stack_out"
origin=${ORIGIN_URL%/}
origin_s=${ORIGIN_HTTPS_URL%/}
"$PUBLISH" -q -s "$tmp/pub.key" --origin "$origin" "$tmp/site" || die "publish"
# the middlebox declares the CA it decrypts with; Chromium trusts it from the
# throw-away $HOME's NSS database, the native host from PATIENT_CA_FILE
https_publish "$tmp/pub.key" "$tmp/site-https"
nss_trust "$HOME/.pki/nssdb"
# changed after publishing, behind the publisher's back
printf '<p>injected after signing</p>\n' >>"$tmp/site/tampered.html"

# a plain site: no manifest, not in the policy
mkdir -p "$tmp/plain"
printf '<!doctype html><title>plain</title><p>no patient here</p>\n' >"$tmp/plain/index.html"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$tmp/plain" >"$tmp/plain.log" 2>&1 &
plain_pid=$!
i=0
until plain_port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$tmp/plain.log" 2>/dev/null) && [ -n "$plain_port" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || die "python http.server did not start"; sleep 0.1
done

# the split-view origin (tests/split_server.py): signed for the verifier,
# tampered for browsers
mkdir -p "$tmp/split"
printf '<!doctype html><title>split</title><p>the signed page</p>\n' >"$tmp/split/page.html"
/usr/bin/python3 "$top_srcdir/tests/split_server.py" "$tmp/split" "$tmp/split.port" &
split_pid=$!
i=0
until [ -s "$tmp/split.port" ]; do i=$((i + 1)); [ $i -lt 300 ] || die "split_server.py did not start"; sleep 0.1; done
split=http://127.0.0.1:$(cat "$tmp/split.port")
"$PUBLISH" -q -s "$tmp/pub.key" --origin "$split" "$tmp/split" || die "publish split"
printf '<!doctype html><title>split</title><p>the signed page</p><p>SWAPPED FOR THE BROWSER</p>\n' >"$tmp/split/page.html.browser"

pubkey() { # minisign public key file or key string -> the RW... key
    if [ -f "$1" ]; then sed -n 2p "$1"; else printf '%s\n' "$1"; fi
}
pk=$(pubkey "$tmp/pub.pub")
mk=$(pubkey "$MBOX_PUB")
cat >"$tmp/trusted.json" <<EOF
{
  "patient": 1,
  "type": "policy",
  "publishers": { "$origin": ["$pk"], "$origin_s": ["$pk"], "$split": ["$pk"] },
  "middleboxes": [
    { "name": "patient-e2e", "key": "$mk", "reasons": ["tracker.*"], "paths": ["/*"],
      "origins": ["*"], "max_edits": 100, "insert": false, "may_decrypt": true }
  ],
  "require": { "disclosure": false, "proof": "attested" },
  "unsigned": "unverifiable"
}
EOF
sed 's/"may_decrypt": true/"may_decrypt": false/' "$tmp/trusted.json" >"$tmp/nodecrypt.json"
cat >"$tmp/untrusted.json" <<EOF
{
  "patient": 1,
  "type": "policy",
  "publishers": { "$origin": ["$pk"] },
  "middleboxes": [],
  "require": { "disclosure": false, "proof": "attested" },
  "unsigned": "unverifiable"
}
EOF

# ping_host POLICY — the installed wrapper answers a framed ping by itself
# (so that a host failure shows its own message, not just "Native host has exited")
ping_host() {
    PATIENT_POLICY=$1 python3 -c '
import json, struct, subprocess, sys
m = json.dumps({"type": "ping", "id": "sh"}).encode()
p = subprocess.run([sys.argv[1]], input=struct.pack("<I", len(m)) + m, capture_output=True, timeout=30)
out = p.stdout
ok = len(out) >= 4 and json.loads(out[4:4 + struct.unpack("<I", out[:4])[0]]).get("type") == "pong"
if not ok:
    sys.stderr.write("native host did not answer a ping (exit %d): %s\n" % (p.returncode, p.stderr.decode(errors="replace")[-800:]))
sys.exit(0 if ok else 1)' "$XDG_DATA_HOME/patient/native-host/patient-native-host"
}

shots=${PLUGIN_SHOTS:-}
fails=0
run() { # run NAME POLICY PROXY(or -) CASES_JSON [e2e.js options...]
    name=$1 policy=$2 proxy=$3 cases=$4
    shift 4
    printf '%s\n' "$cases" >"$tmp/cases-$name.json"
    "$plugin/install.sh" --user --browser chromium --user-data-dir "$tmp/profile-$name" \
        --host-path "$VERIFY" 2>/dev/null || die "install.sh"
    echo "# run $name (policy $(basename "$policy"), proxy $proxy)"
    ping_host "$policy" || { fails=$((fails + 1)); return; }
    if [ "$proxy" = - ]; then
        PATIENT_POLICY=$policy node "$e2e" --extension "$ext" \
            --user-data-dir "$tmp/profile-$name" --cases "$tmp/cases-$name.json" ${shots:+--shots "$shots"} "$@" ||
            fails=$((fails + 1))
    else
        PATIENT_POLICY=$policy PATIENT_PROXY=$proxy PATIENT_CA_FILE=$BUMP_CA node "$e2e" --extension "$ext" \
            --user-data-dir "$tmp/profile-$name" --cases "$tmp/cases-$name.json" --proxy "$proxy" \
            ${shots:+--shots "$shots"} "$@" || fails=$((fails + 1))
    fi
}

run direct "$tmp/trusted.json" - "{\"cases\": [
  {\"name\": \"direct page is verified\", \"url\": \"$origin/index.html\", \"expect\": \"verified\",
   \"contains\": [\"Verified\", \"$origin\"], \"shot\": \"popup-verified.png\", \"evidence\": true},
  {\"name\": \"page changed after publishing is invalid\", \"url\": \"$origin/tampered.html\", \"expect\": \"invalid\",
   \"contains\": [\"Do not trust this page\", \"Failed checks\", \"body.mismatch\"], \"shot\": \"popup-invalid.png\", \"evidence\": true},
  {\"name\": \"split view, re-fetched: fooled (verified), and the popup says it is a re-fetched copy\", \"url\": \"$split/page.html\",
   \"expect\": \"verified\", \"source\": \"refetch\", \"contains\": [\"a copy the verifier fetched again\"]},
  {\"name\": \"site without patient is not covered\", \"url\": \"http://127.0.0.1:$plain_port/index.html\", \"expect\": \"none\",
   \"contains\": [\"Not covered by patient\"], \"shot\": \"popup-none.png\"}
]}"

run proxy "$tmp/trusted.json" "$PROXY_URL" "{\"cases\": [
  {\"name\": \"page through the trusted middlebox is modified\", \"url\": \"$origin/index.html\", \"expect\": \"modified\",
   \"contains\": [\"Modified by middleboxes you trust\", \"patient-e2e\", \"tracker removed\", \"tracker-script\",
                \"tracker.example/collect.js\", \"yes, by your policy\", \"line \"],
   \"shot\": \"popup-modified.png\", \"evidence\": true},
  {\"name\": \"https through the bumping middlebox: modified, decrypted by it\", \"url\": \"$origin_s/index.html\", \"loads\": true,
   \"expect\": \"modified\", \"source\": \"refetch\",
   \"contains\": [\"Modified by middleboxes you trust\", \"decrypted by patient-e2e, TLS 1.3 to the origin, certificate verified\"]}
]}"

run nodecrypt "$tmp/nodecrypt.json" "$PROXY_URL" "{\"cases\": [
  {\"name\": \"https, the middlebox may not decrypt: invalid\", \"url\": \"$origin_s/index.html\", \"loads\": true, \"expect\": \"invalid\",
   \"contains\": [\"Do not trust this page\", \"tls.intercepted.denied\",
                \"decrypted by patient-e2e, which your policy does not allow to decrypt\"]}
]}"

run untrusted "$tmp/untrusted.json" "$PROXY_URL" "{\"cases\": [
  {\"name\": \"page through an untrusted middlebox is invalid\", \"url\": \"$origin/index.html\", \"expect\": \"invalid\",
   \"contains\": [\"Do not trust this page\", \"patient-e2e\", \"NO — not allowed by your policy\"],
   \"shot\": \"popup-untrusted.png\"}
]}"

# the "verify scripts and styles" option, with the real verifier: the page's own
# script and style are verified too (the tracker scripts it names are not in the
# policy: listed, without changing the page's state)
run subresources "$tmp/trusted.json" - "{\"cases\": [
  {\"name\": \"page and its script and style are verified\", \"url\": \"$origin/index.html\", \"expect\": \"verified\",
   \"effective\": \"verified\", \"resources\": {\"/js/app.js\": \"verified\", \"/css/site.css\": \"verified\"}}
]}" --subresources

run exact "$tmp/trusted.json" - "{\"cases\": [
  {\"name\": \"exact bytes (debugger): the split-view page is invalid\", \"url\": \"$split/page.html\", \"expect\": \"invalid\",
   \"source\": \"received\", \"contains\": [\"body.mismatch\", \"the exact bytes your browser received\"], \"shot\": \"popup-exact-split.png\",
   \"evidence\": true, \"bundleContains\": \"SWAPPED FOR THE BROWSER\"},
  {\"name\": \"exact bytes (debugger): a published page is verified\", \"url\": \"$origin/index.html\", \"expect\": \"verified\",
   \"source\": \"received\"}
]}" --exact

[ "$fails" = 0 ] || die "$fails browser run(s) failed"
echo "PASS: plugin e2e"
