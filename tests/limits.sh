#!/bin/sh
# Resource limits: hostile sizes are refused quickly, with a clear error and
# bounded memory (max RSS from /usr/bin/time). Bounds (documented in
# docs/QUALITY.md): every refusal within MEM_BOUND_KB (256 MiB) of RSS; the
# one accepted big case (a 600,000-entry manifest) within 1.5 GiB.
# "Quickly" is only checked as "does not hang": every run is under
# `timeout 120`; the times measured are printed, never asserted.
#  1. a 1 GiB body: patient-mbox (stdin, a sparse file) and patient-verify
#     (from a loopback server streaming 1 GiB);
#  2. a 100 MB response header block (patient-verify);
#  3. a 10,000-hop Patient-Change chain: patient-mbox --in-header and
#     patient-verify (10,000 header lines);
#  4. a million-entry manifest (109 MB: over the 64 MiB manifest cap; a
#     million entries cannot fit under it) refused by patient-verify, and a
#     600,000-entry one (65 MB, just under the cap) handled;
#  5. JSON nested 100,000 deep as a trust policy and as an evidence bundle.
set -u
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
PY=/usr/bin/python3
MEM_BOUND_KB=262144
BIG_BOUND_KB=1572864

[ -x "$PY" ] || { echo "SKIP: $PY not installed"; exit 77; }
[ -x /usr/bin/time ] || { echo "SKIP: /usr/bin/time not installed (Debian package time)"; exit 77; }
command -v minisign >/dev/null 2>&1 || { echo "SKIP: minisign not installed"; exit 77; }
command -v timeout >/dev/null 2>&1 || { echo "SKIP: timeout not installed"; exit 77; }

workdir limits
T=$W
SRV=
before_exit() { [ -z "$SRV" ] || kill "$SRV" 2>/dev/null; }
tally
private_home

# The tools may be libtool wrappers: measure the real binary, not a shell.
if [ -x "$B/libtool" ]; then RUN="$B/libtool --mode=execute"; else RUN=; fi

# measure NAME WANT_RC PATTERN BOUND_KB TOOL ARGS... (stdin from $IN or
# /dev/null): exit code, a message matching PATTERN (grep -E) on
# stdout/stderr, max RSS under BOUND_KB.
measure() {
    name=$1 want=$2 pat=$3 bound=$4 tool=$5
    shift 5
    # shellcheck disable=SC2086
    $RUN timeout 120 /usr/bin/time -f '%e %M' -o "$T/time" "$B/$tool" "$@" <"${IN:-/dev/null}" \
        >"$T/out" 2>"$T/err"
    rc=$?
    # shellcheck disable=SC2046
    set -- $(tail -1 "$T/time")
    secs=${1:-?} rss=${2:-0}
    msg=$(grep -E -h -o "$pat" "$T/out" "$T/err" | head -1)
    if [ "$rc" -eq 124 ]; then
        fail "$name: still running after 120 s"
    elif [ "$rc" -ne "$want" ]; then
        fail "$name: exit $rc, wanted $want"
        head -c 600 "$T/err" "$T/out" | sed 's/^/    /'
    elif [ -z "$msg" ]; then
        fail "$name: no message matching /$pat/"
        head -c 600 "$T/err" "$T/out" | sed 's/^/    /'
    elif [ "$rss" -gt "$bound" ]; then
        fail "$name: max RSS $rss KB over the bound $bound KB"
    else
        ok "$name: exit $rc, \"$msg\", $secs s, max RSS $((rss / 1024)) MiB"
    fi
}

cp "$top_srcdir/tests/data/manifest_key.key" "$top_srcdir/tests/data/manifest_key.pub" "$T/"
chmod 600 "$T/manifest_key.key"
SK="$T/manifest_key.key"
PK="$T/manifest_key.pub"
RULES="$top_srcdir/middlebox/rules/trackers-only.json"

# ---- 1. a 1 GiB body into patient-mbox ----------------------------------------
truncate -s 1G "$T/big.bin"
IN="$T/big.bin" measure "patient-mbox, 1 GiB body on stdin" 2 'exceeds a size limit.*' \
    "$MEM_BOUND_KB" middlebox/patient-mbox -s "$SK" --name x --rules "$RULES" --url https://example.org/
# a 10,000-hop chain of arriving Patient-Change values
"$PY" -c 'import sys
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        f.write("Patient-Change: eyJhIjoxfQ.eyJhIjoxfQ.AAAA\n")' "$T/hops10k"
printf '<p>x</p>\n' >"$T/small.html"
IN="$T/small.html" measure "patient-mbox, 10,000 arriving Patient-Change values" 2 \
    'too many edits, hops or entries.*' "$MEM_BOUND_KB" middlebox/patient-mbox -s "$SK" \
    --name x --rules "$RULES" --url https://example.org/ --in-header "$T/hops10k"

# ---- a hostile origin on loopback -----------------------------------------------------
mkdir -p "$T/www/.well-known/patient"
printf '<!doctype html><p>home</p>\n' >"$T/www/index.html"
cat >"$T/srv.py" <<'EOF'
# Loopback origin for tests/limits.sh: static files from ROOT, plus
#   /big.html    a 1 GiB body (streamed, never stored)
#   /headers.html  ~100 MB of response headers (1,600 lines of 64 KiB)
#   /hops.html   index.html with 10,000 Patient-Change header lines
#   ?m=NAME      on the manifest URL: serve manifest-NAME.json(.minisig)
import http.server, os, socketserver, sys
ROOT, PORTFILE = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        path = self.path.split("?")[0]
        try:
            if path == "/big.html":
                n = 1 << 30
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(n))
                self.end_headers()
                chunk = b"a" * (1 << 20)
                for _ in range(n >> 20):
                    self.wfile.write(chunk)
                return
            if path == "/headers.html":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                line = b"X-Junk: " + b"a" * (1 << 16) + b"\r\n"
                for _ in range(1600):
                    self.wfile.write(line)
                self.wfile.write(b"Content-Length: 2\r\n\r\nok")
                return
            extra = []
            if path == "/hops.html":
                path = "/index.html"
                extra = [("Patient-Change", "eyJhIjoxfQ.eyJhIjoxfQ.AAAA")] * 10000
            f = os.path.join(ROOT, path.lstrip("/"))
            if os.path.isdir(f):
                f = os.path.join(f, "index.html")
            with open(f, "rb") as fh:
                body = fh.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except (FileNotFoundError, IsADirectoryError):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address):
        pass  # clients that give up early (by design here) reset connections
s = S(("127.0.0.1", 0), H)
with open(PORTFILE, "w") as f:
    f.write(str(s.server_address[1]))
s.serve_forever()
EOF
"$PY" "$T/srv.py" "$T/www" "$T/port" &
SRV=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$T/port" ] || { echo "FAIL: server did not start"; exit 1; }
O="http://127.0.0.1:$(cat "$T/port")"
"$B/publisher/patient-publish" -q -s "$SK" --origin "$O" "$T/www" || { echo "FAIL: publish"; exit 1; }
P="$T/policy.json"
"$B/cli/patient" policy init "$P" >/dev/null 2>&1 &&
    "$B/cli/patient" policy add-publisher "$P" "$O" "$PK" >/dev/null 2>&1 || { echo "FAIL: policy"; exit 1; }
V="--policy $P --no-state --cache-dir $T/cache --color never"

# shellcheck disable=SC2086
measure "patient-verify, plain page (baseline)" 0 '^verified' "$MEM_BOUND_KB" verifier/patient-verify $V "$O/"
# ---- 1. a 1 GiB body from the network -----------------------------------------------
# shellcheck disable=SC2086
measure "patient-verify, 1 GiB body" 3 'larger than the configured limit' "$MEM_BOUND_KB" \
    verifier/patient-verify $V "$O/big.html"
# ---- 2. a 100 MB header block -------------------------------------------------------------
# shellcheck disable=SC2086
measure "patient-verify, 100 MB of response headers" 3 'fetch.too_large.*' "$MEM_BOUND_KB" \
    verifier/patient-verify $V "$O/headers.html"
# ---- 3. a 10,000-hop chain -------------------------------------------------------------
# shellcheck disable=SC2086
measure "patient-verify, 10,000 Patient-Change header lines" 3 \
    'fetch.too_large.*|change\.[a-z_.]*.*' "$MEM_BOUND_KB" verifier/patient-verify $V "$O/hops.html"

# ---- 4. manifests with many entries ---------------------------------------------------------
# Compact JSON (readers accept any layout); one real entry for index.html,
# the rest filler. Signed with stock minisign and the trusted comment the
# verifier expects.
mkmanifest() { # N OUT
    "$PY" - "$1" "$2" "$O" "$T/www/index.html" <<'EOF'
import base64, hashlib, json, sys
n, out, origin, page = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
body = open(page, "rb").read()
integ = "sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode()
filler = "sha256-" + base64.b64encode(hashlib.sha256(b"x").digest()).decode()
with open(out, "w") as f:
    f.write('{"expires":"2099-01-01T00:00:00Z","issued":"2026-01-01T00:00:00Z","origin":%s,'
            '"patient":1,"resources":{' % json.dumps(origin))
    for p in ("/", "/index.html"):
        f.write('"%s":{"integrity":"%s","size":%d,"type":"text/html"},' % (p, integ, len(body)))
    f.write('"/f":{"integrity":"%s","size":1,"type":"text/plain"}' % filler)
    for i in range(n - 3):
        f.write(',"/f%07d":{"integrity":"%s","size":1,"type":"text/plain"}' % (i, filler))
    f.write('},"type":"manifest","version":1000000}\n')
EOF
    minisign -S -q -s "$SK" -m "$2" -x "$2.minisig" \
        -t "patient-manifest origin=$O version=1000000 expires=2099-01-01T00:00:00Z" </dev/null
}
M="$T/www/.well-known/patient/manifest.json"
mkmanifest 1000000 "$T/m1M.json" || fail "could not make the million-entry manifest"
mkmanifest 600000 "$T/m600k.json" || fail "could not make the 600,000-entry manifest"
echo "manifests: $(wc -c <"$T/m1M.json") bytes (1,000,000 entries), $(wc -c <"$T/m600k.json") bytes (600,000)"
cp "$T/m1M.json" "$M" && cp "$T/m1M.json.minisig" "$M.minisig"
# shellcheck disable=SC2086
measure "patient-verify, 1,000,000-entry manifest (109 MB)" 3 'manifest[a-z_.]*.*' "$MEM_BOUND_KB" \
    verifier/patient-verify $V "$O/"
cp "$T/m600k.json" "$M" && cp "$T/m600k.json.minisig" "$M.minisig"
# shellcheck disable=SC2086
measure "patient-verify, 600,000-entry manifest (65 MB): handled" 0 '^verified' "$BIG_BOUND_KB" \
    verifier/patient-verify $V "$O/"

# ---- 5. deeply nested JSON -------------------------------------------------------------------
"$PY" -c 'import sys
d = 100000
open(sys.argv[1], "w").write("{\"patient\":1,\"type\":\"policy\",\"publishers\":" + "[" * d + "]" * d + "}")
open(sys.argv[2], "w").write("{\"patient\":1,\"type\":\"bundle\",\"changes\":" + "[" * d + "]" * d + "}")' \
    "$T/nested-policy.json" "$T/nested-bundle.json"
measure "patient-verify --policy (JSON nested 100,000 deep)" 2 '.*(nested|JSON).*' "$MEM_BOUND_KB" \
    verifier/patient-verify --policy "$T/nested-policy.json" --no-state "$O/"
measure "patient policy check (JSON nested 100,000 deep)" 1 '.*(nested|JSON).*' "$MEM_BOUND_KB" \
    cli/patient policy check "$T/nested-policy.json"
measure "patient-verify --offline (bundle nested 100,000 deep)" 2 '.*(nested|JSON).*' \
    "$MEM_BOUND_KB" verifier/patient-verify --bundle-policy --offline "$T/nested-bundle.json"
measure "patient inspect (bundle nested 100,000 deep)" 2 '.*(nested|JSON|recognise|unknown).*' \
    "$MEM_BOUND_KB" cli/patient inspect "$T/nested-bundle.json"

echo "$fails failures"
[ "$fails" -eq 0 ]
