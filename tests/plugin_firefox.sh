#!/bin/sh
# tests/plugin_firefox.sh — the patient extension in real Firefox ESR
# (headless, puppeteer-core over WebDriver BiDi), with the real native host
# (`patient-verify --native-host`), against the loopback stack.  Firefox hands
# the extension the exact bytes it received (StreamFilter), so every verdict
# below must be about those bytes ("source": "received").
#
#   run direct: published page -> verified; changed after publishing -> invalid;
#       a site outside patient -> not covered; a split-view server that sends
#       the browser a tampered page and the verifier's re-fetch the signed one
#       -> invalid (a re-fetch would say verified: the peer case, checked
#       with patient-verify on the same URL); with "scripts and styles" on,
#       the page's script and style, captured as they load, are verified;
#       enforce on: a verified page is shown, the split-view page is held,
#       replaced by the interstitial naming body.mismatch, its content never
#       renders (no beacon request), "Show anyway" renders it (beacon seen)
#       and it stays invalid
#   run proxy: through the trusted middlebox -> modified, changes listed;
#       the same with a policy that does not trust it -> invalid; over HTTPS
#       through the bumping middlebox (the profile's cert9.db trusts its
#       interception CA, as an enterprise endpoint does; the native host gets
#       it as PATIENT_CA_FILE; verification stays on) -> modified, the TLS row
#       "decrypted by patient-e2e, TLS 1.3 to the origin, certificate
#       verified" judged on the chain Firefox verified; its twins: the policy
#       without may_decrypt -> invalid tls.intercepted.denied, a page changed
#       after publishing -> invalid body.mismatch
#
# Skips (77) without firefox-esr, node, puppeteer-core (npm), certutil
# (libnss3-tools), the stack's servers or the verifier.  PLUGIN_SHOTS=DIR keeps the popup and interstitial
# screenshots (docs/img); PLUGIN_E2E_KEEP=1 keeps the temporary directory.
set -eu

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
# shellcheck source=tests/prelude.sh
. "$top_srcdir/tests/prelude.sh"
# shellcheck source=tests/plugin_tls.sh
. "$S/tests/plugin_tls.sh"
FIREFOX=${FIREFOX:-$(command -v firefox-esr || command -v firefox || true)}

[ -n "$FIREFOX" ] || skip "firefox-esr not installed"
browser_need

stack_up=0 pids=
before_exit() {
    [ "$stack_up" = 0 ] || "$S/scripts/stack" stop "$tmp/stack" >/dev/null 2>&1 || true
    for p in $pids; do kill "$p" 2>/dev/null || true; done
}
KEEP=${KEEP:-${PLUGIN_E2E_KEEP:-}}
workdir patient-plugin-ff
tmp=$W

# puppeteer-core: plugin/test/node_modules, else installed into a copy in $tmp
# (the source tree may be read-only)
e2e=$plugin/test/e2e-firefox.js
if [ ! -d "$plugin/test/node_modules/puppeteer-core" ]; then
    mkdir -p "$tmp/e2e/test"
    cp "$plugin/test/e2e-firefox.js" "$plugin/test/package.json" "$plugin/test/package-lock.json" "$tmp/e2e/test/"
    cp -R "$plugin/extension" "$tmp/e2e/extension"
    chmod -R u+w "$tmp/e2e"
    timeout 180 npm install --prefix "$tmp/e2e/test" --no-audit --no-fund >/dev/null 2>&1 ||
        skip "puppeteer-core not installed and npm install failed (offline?)"
    e2e=$tmp/e2e/test/e2e-firefox.js
fi

export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/config XDG_CACHE_HOME=$tmp/cache \
    XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME" "$XDG_STATE_HOME"

# ---- the site, the stack, the publisher's signature
cp -R "$top_srcdir/tests/site" "$tmp/site"
chmod -R u+w "$tmp/site"
cp "$tmp/site/index.html" "$tmp/site/tampered.html"
# the same site over HTTPS: its own copy, published for the https origin
cp -R "$tmp/site" "$tmp/site-https"
"$CLI" keygen -W -p "$tmp/pub.pub" -s "$tmp/pub.key" >/dev/null || die "keygen"
stack_out=$(STACK_HTTPS_SITE=$tmp/site-https "$top_srcdir/scripts/stack" start "$tmp/stack" "$tmp/site" \
    --rules "$top_srcdir/middlebox/rules/trackers-only.json" --name patient-e2e) || die "stack start"
stack_up=1
eval "$stack_out"
origin=${ORIGIN_URL%/}
origin_s=${ORIGIN_HTTPS_URL%/}
"$PUBLISH" -q -s "$tmp/pub.key" --origin "$origin" "$tmp/site" || die "publish"
# the middlebox declares the CA it decrypts with; the browser's profile
# trusts it (its cert9.db), the native host from PATIENT_CA_FILE
https_publish "$tmp/pub.key" "$tmp/site-https"
nss_trust "$tmp/ff-profile"
printf '<p>injected after signing</p>\n' >>"$tmp/site/tampered.html"
printf '<p>injected after signing</p>\n' >>"$tmp/site-https/tampered.html"

wait_file() { # wait_file FILE WHAT
    i=0
    until [ -s "$1" ]; do i=$((i + 1)); [ $i -lt 300 ] || die "$2 did not start"; sleep 0.1; done
}

# a plain site: no manifest, not in the policy
mkdir -p "$tmp/plain"
printf '<!doctype html><title>plain</title><p>no patient here</p>\n' >"$tmp/plain/index.html"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$tmp/plain" >"$tmp/plain.log" 2>&1 &
pids="$pids $!"
i=0
until plain_port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$tmp/plain.log" 2>/dev/null) && [ -n "$plain_port" ]; do
    i=$((i + 1)); [ $i -lt 300 ] || die "python http.server did not start"; sleep 0.1
done

# the split-view origin: signed pages for the verifier, a tampered twin (with
# a beacon image that shows whether it was ever rendered) for browsers
mkdir -p "$tmp/split"
printf '<!doctype html><title>split</title><p>the signed page</p>\n' >"$tmp/split/page.html"
/usr/bin/python3 "$top_srcdir/tests/split_server.py" "$tmp/split" "$tmp/split.port" &
pids="$pids $!"
wait_file "$tmp/split.port" "split_server.py"
split=http://127.0.0.1:$(cat "$tmp/split.port")
"$PUBLISH" -q -s "$tmp/pub.key" --origin "$split" "$tmp/split" || die "publish split"
printf '<!doctype html><title>split</title><p>the signed page</p><p>SWAPPED FOR THE BROWSER</p><img src="/beacon.gif">\n' \
    >"$tmp/split/page.html.browser"

pubkey() { if [ -f "$1" ]; then sed -n 2p "$1"; else printf '%s\n' "$1"; fi; }
pk=$(pubkey "$tmp/pub.pub")
mk=$(pubkey "$MBOX_PUB")
policy() { # policy FILE MIDDLEBOXES_JSON
    cat >"$1" <<JSON
{
  "patient": 1,
  "type": "policy",
  "publishers": { "$origin": ["$pk"], "$origin_s": ["$pk"], "$split": ["$pk"] },
  "middleboxes": [$2],
  "require": { "disclosure": false, "proof": "attested" },
  "unsigned": "unverifiable"
}
JSON
}
mbox() { # mbox MAY_DECRYPT — the policy's entry for the stack's middlebox
    printf '{ "name": "patient-e2e", "key": "%s", "reasons": ["tracker.*"], "paths": ["/*"],
      "origins": ["*"], "max_edits": 100, "insert": false, "may_decrypt": %s }' "$mk" "$1"
}
policy "$tmp/trusted.json" "$(mbox true)"
policy "$tmp/nodecrypt.json" "$(mbox false)"
policy "$tmp/untrusted.json" ""

# The peer of the split-view case: re-fetching (what Chromium does by default)
# sees the signed page, so it calls it verified.
rc=0
"$VERIFY" --policy "$tmp/trusted.json" --no-state --cache-dir "$tmp/peer-cache" -q "$split/page.html" || rc=$?
[ "$rc" = 0 ] || die "the re-fetch of the split-view page should verify (exit $rc)"
echo "# peer: patient-verify re-fetching $split/page.html says verified (exit 0)"

"$plugin/install.sh" --user --browser firefox --host-path "$VERIFY" 2>/dev/null || die "install.sh"
ext=$XDG_DATA_HOME/patient/extension-firefox
[ -f "$ext/manifest.json" ] || die "install.sh wrote no Firefox extension"

shots=${PLUGIN_SHOTS:-}
fails=0
run() { # run NAME POLICY PROXY(or -) CASES_JSON
    name=$1 pol=$2 proxy=$3
    printf '%s\n' "$4" >"$tmp/cases-$name.json"
    echo "# run $name (policy $(basename "$pol"), proxy $proxy)"
    if [ "$proxy" = - ]; then
        PATIENT_POLICY=$pol node "$e2e" --firefox "$FIREFOX" --extension "$ext" --cases "$tmp/cases-$name.json" \
            ${shots:+--shots "$shots"} || fails=$((fails + 1))
    else
        # the host trusts what the browser trusts: the interception CA
        PATIENT_POLICY=$pol PATIENT_PROXY=$proxy PATIENT_CA_FILE=$BUMP_CA node "$e2e" --firefox "$FIREFOX" \
            --extension "$ext" --cases "$tmp/cases-$name.json" --proxy "$proxy" --profile "$tmp/ff-profile" \
            ${shots:+--shots "$shots"} || fails=$((fails + 1))
    fi
}

# Two browsers: one direct, one through the middlebox (Firefox's proxy is a
# start-up preference).  Options and policies change between cases.
cp "$tmp/trusted.json" "$tmp/policy.json"
run direct "$tmp/policy.json" - "{\"cases\": [
  {\"name\": \"direct page is verified\", \"url\": \"$origin/index.html\", \"expect\": \"verified\", \"source\": \"received\",
   \"contains\": [\"Verified\", \"$origin\", \"the exact bytes your browser received\"], \"shot\": \"firefox-popup-verified.png\"},
  {\"name\": \"page changed after publishing is invalid\", \"url\": \"$origin/tampered.html\", \"expect\": \"invalid\", \"source\": \"received\",
   \"contains\": [\"Do not trust this page\", \"body.mismatch\", \"the exact bytes your browser received\"]},
  {\"name\": \"site without patient is not covered\", \"url\": \"http://127.0.0.1:$plain_port/index.html\", \"expect\": \"none\",
   \"source\": \"received\", \"contains\": [\"Not covered by patient\"]},
  {\"name\": \"split view: tampered for the browser, signed for a re-fetch: invalid\", \"url\": \"$split/page.html\",
   \"expect\": \"invalid\", \"source\": \"received\", \"contains\": [\"body.mismatch\", \"the exact bytes your browser received\"],
   \"shot\": \"firefox-popup-split.png\"},
  {\"name\": \"a redirected split-view page: invalid on the bytes received after the redirect\", \"url\": \"$split/go/page.html\",
   \"finalUrl\": \"$split/page.html\", \"expect\": \"invalid\", \"source\": \"received\"},
  {\"name\": \"page and its script and style are verified as received\", \"url\": \"$origin/index.html\", \"expect\": \"verified\",
   \"options\": {\"subresources\": true}, \"source\": \"received\",
   \"resources\": {\"/js/app.js\": \"verified\", \"/css/site.css\": \"verified\"}},
  {\"name\": \"enforce: a verified page is shown\", \"url\": \"$origin/index.html\", \"expect\": \"verified\", \"source\": \"received\",
   \"options\": {\"subresources\": false, \"enforce\": true}},
  {\"name\": \"enforce: the split-view page is stopped\", \"url\": \"$split/page.html\", \"expect\": \"invalid\", \"source\": \"received\",
   \"interstitial\": {\"contains\": [\"patient stopped this page\", \"$split/page.html\", \"body.mismatch\", \"Show anyway\"],
                    \"shot\": \"firefox-interstitial.png\", \"beacons\": \"$split/beacons\"}},
  {\"name\": \"enforce: a redirected split-view page is stopped too\", \"url\": \"$split/go/page.html\", \"finalUrl\": \"$split/page.html\",
   \"expect\": \"invalid\", \"source\": \"received\",
   \"interstitial\": {\"contains\": [\"patient stopped this page\", \"body.mismatch\"], \"beacons\": \"$split/beacons\"}}
]}"

cp "$tmp/trusted.json" "$tmp/policy.json"
run proxy "$tmp/policy.json" "$PROXY_URL" "{\"cases\": [
  {\"name\": \"page through the trusted middlebox is modified\", \"url\": \"$origin/index.html\", \"expect\": \"modified\",
   \"source\": \"received\", \"contains\": [\"Modified by middleboxes you trust\", \"patient-e2e\", \"tracker removed\",
   \"tracker.example/collect.js\", \"yes, by your policy\"], \"shot\": \"firefox-popup-modified.png\"},
  {\"name\": \"page through an untrusted middlebox is invalid\", \"url\": \"$origin/index.html\", \"expect\": \"invalid\",
   \"policy\": \"$tmp/untrusted.json\", \"source\": \"received\",
   \"contains\": [\"Do not trust this page\", \"patient-e2e\", \"NO — not allowed by your policy\"]},
  {\"name\": \"https through the bumping middlebox: modified, decrypted by it\", \"url\": \"$origin_s/index.html\", \"loads\": true,
   \"expect\": \"modified\", \"policy\": \"$tmp/trusted.json\", \"source\": \"received\",
   \"contains\": [\"Modified by middleboxes you trust\", \"tracker removed\",
   \"decrypted by patient-e2e, TLS 1.3 to the origin, certificate verified\"], \"shot\": \"firefox-popup-https.png\"},
  {\"name\": \"https, the middlebox may not decrypt: invalid\", \"url\": \"$origin_s/index.html\", \"loads\": true, \"expect\": \"invalid\",
   \"policy\": \"$tmp/nodecrypt.json\", \"source\": \"received\",
   \"contains\": [\"Do not trust this page\", \"tls.intercepted.denied\",
   \"decrypted by patient-e2e, which your policy does not allow to decrypt\"]},
  {\"name\": \"https, a page changed after publishing: invalid\", \"url\": \"$origin_s/tampered.html\", \"expect\": \"invalid\",
   \"policy\": \"$tmp/trusted.json\", \"source\": \"received\", \"contains\": [\"Do not trust this page\", \"body.mismatch\"]}
]}"

[ "$fails" = 0 ] || die "$fails browser run(s) failed"
echo "PASS: plugin firefox"
