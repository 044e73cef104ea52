#!/bin/sh
# Interop with a JOSE library (python3-jwcrypto, Debian's /usr/bin/python3):
# it verifies our JWS and rejects a tampered one; we verify its JWS.
# Exit 77 (skip) when jwcrypto is not installed.
set -eu
: "${top_builddir:=.}" "${top_srcdir:=.}"
PY=/usr/bin/python3
"$PY" -c 'import jwcrypto.jws' 2>/dev/null || { echo "SKIP: python3-jwcrypto not installed"; exit 77; }
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
workdir interop_jose
"$B/cli/patient" keygen -W -p k.pub -s k.key >/dev/null
exec "$PY" "$S/tests/interop_jose.py" "$B/tests/jws_tool" k.pub k.key
