#!/bin/sh
# standin-e2e.sh — BRING-UP ONLY: the browser test with the stand-in native
# host (standin-host.py answers fixture reports; it verifies nothing).  It
# proves that extension <-> native host <-> popup works in real Chromium and
# takes the popup screenshots.  The real test is tests/plugin_e2e.sh, which
# runs `patient-verify --native-host` against the loopback stack.
#   plugin/test/standin-e2e.sh [SHOTS_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
shots=${1:-}
command -v chromium >/dev/null 2>&1 || { echo "chromium not installed: skip"; exit 77; }
[ -d "$here/node_modules/playwright-core" ] || npm install --prefix "$here" --no-audit --no-fund >/dev/null
tmp=$(mktemp -d /tmp/patient-standin.XXXXXX)
srv=
cleanup() { [ -z "$srv" ] || kill "$srv" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

mkdir -p "$tmp/www" "$tmp/state"
for p in verified modified invalid unverifiable none hostile crash slow flip; do
    printf '<!doctype html><title>%s</title><h1>%s page</h1>\n' "$p" "$p" >"$tmp/www/$p.html"
done
mkdir -p "$tmp/www/sub1" "$tmp/www/sub2"
printf '<!doctype html><link rel="stylesheet" href="verified.css"><script src="modified.js"></script><p>sub1</p>\n' >"$tmp/www/sub1/verified.html"
printf '<!doctype html><script src="invalid.js"></script><script src="verified.js"></script><p>sub2</p>\n' >"$tmp/www/sub2/verified.html"
for f in sub1/verified.css sub1/modified.js sub2/invalid.js sub2/verified.js; do echo '/* x */' >"$tmp/www/$f"; done
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/http.log" 2>&1 &
srv=$!
i=0
until port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$tmp/http.log" 2>/dev/null) && [ -n "$port" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "http server did not start"; exit 1; }; sleep 0.1
done
base=http://127.0.0.1:$port
rc=0

XDG_DATA_HOME=$tmp/data HOME=$tmp "$here/../install.sh" --user --browser chromium \
    --user-data-dir "$tmp/profile" --host-path "$here/standin-host.py" 2>/dev/null

cat >"$tmp/cases.json" <<JSON
{"cases": [
 {"name": "verified", "url": "$base/verified.html", "expect": "verified",
  "contains": ["Verified", "exactly what its origin signed", "version 42"], "shot": "popup-verified.png", "evidence": true},
 {"name": "modified", "url": "$base/modified.html", "expect": "modified",
  "contains": ["3 changes by 1 middlebox", "Hop 1: Acme Privacy Gateway", "0F1E2D3C4B5A6978", "line 9, column 5, byte 412",
               "tracker removed (tracker.removed)", "easyprivacy:1732", "inserted 52 bytes"], "shot": "popup-modified.png"},
 {"name": "invalid", "url": "$base/invalid.html", "expect": "invalid",
  "contains": ["Do not trust this page", "Failed checks", "policy.middlebox.unknown", "body.mismatch", "NO — not allowed by your policy"],
  "shot": "popup-invalid.png", "evidence": true},
 {"name": "unverifiable", "url": "$base/unverifiable.html", "expect": "unverifiable", "contains": ["Could not verify", "fetch.failed"], "shot": "popup-unverifiable.png"},
 {"name": "none", "url": "$base/none.html", "expect": "none", "contains": ["Not covered by patient"], "shot": "popup-none.png"},
 {"name": "error", "url": "$base/crash.html", "expect": "error", "contains": ["Verifier not working", "host.exited"], "shot": "popup-error.png"},
 {"name": "pending", "url": "$base/slow.html", "expect": "pending", "contains": ["Checking"], "shot": "popup-pending.png"},
 {"name": "hostile strings", "url": "$base/hostile.html", "expect": "modified",
  "contains": ["<img src=x onerror=alert(3)>", "<script>alert('name')</script>", "javascript:alert(1)"]},
 {"name": "invalid is not downgraded", "url": "$base/flip.html", "expect": "invalid", "recheck": "invalid"}
]}
JSON
HOME=$tmp XDG_CONFIG_HOME=$tmp/config STANDIN_DIR=$tmp/state node "$here/e2e.js" --extension "$here/../extension" --user-data-dir "$tmp/profile" \
    --cases "$tmp/cases.json" ${shots:+--shots "$shots"} || rc=1

# the "verify scripts and styles" option: a modified script makes a verified
# page modified, an invalid one makes it invalid
XDG_DATA_HOME=$tmp/data HOME=$tmp "$here/../install.sh" --user --browser chromium \
    --user-data-dir "$tmp/profile-sub" --host-path "$here/standin-host.py" 2>/dev/null
cat >"$tmp/cases-sub.json" <<JSON
{"cases": [
 {"name": "page with a modified script", "url": "$base/sub1/verified.html", "expect": "verified", "effective": "modified",
  "resources": {"/sub1/modified.js": "modified", "/sub1/verified.css": "verified"}},
 {"name": "page with an invalid script", "url": "$base/sub2/verified.html", "expect": "verified", "effective": "invalid",
  "resources": {"/sub2/invalid.js": "invalid", "/sub2/verified.js": "verified"}}
]}
JSON
HOME=$tmp XDG_CONFIG_HOME=$tmp/config STANDIN_DIR=$tmp/state node "$here/e2e.js" --extension "$here/../extension" --user-data-dir "$tmp/profile-sub" \
    --cases "$tmp/cases-sub.json" --subresources || rc=1
exit $rc
