#!/bin/sh
# plugin/test/run.sh — the extension's unit tests (node's built-in runner, no
# network, no browser).  Exit 0 on success, 1 on failure, 77 (automake "skip")
# when node is missing or too old.
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null 2>&1 || { echo "node not found: skipping plugin tests"; exit 77; }
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 18 ] || { echo "node >= 18 needed (have $major): skipping plugin tests"; exit 77; }
cd "$here" || exit 1
exec node --test --test-reporter=tap ./*.test.js
