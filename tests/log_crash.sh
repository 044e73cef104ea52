#!/bin/sh
# kill -9 an appending writer 30 times at random points; after each kill,
# reopen (repairing a torn tail) and check that the chain verifies and that
# every entry the writer reported as committed is in the log.
set -eu
W="${top_builddir:-.}/tests/log_writer"
dir=$(mktemp -d /tmp/log_crash.XXXXXX)
trap 'rm -rf "$dir"' EXIT
key="$dir/test.key"
log="$dir/audit.log"
: > "$dir/committed"
i=0
while [ $i -lt 30 ]; do
    "$W" write "$key" "$log" "run$i" > "$dir/out.$i" &
    pid=$!
    # 0..49 ms, from the kernel's random source (no $RANDOM in POSIX sh)
    ms=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    ms=$((ms % 50))
    sleep "0.0$(printf %02d $ms)"
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    # Only complete lines count: drop a last line cut short by the kill.
    f="$dir/out.$i"
    if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then sed '$d' "$f"; else cat "$f"; fi |
        sed -n '/^[0-9][0-9]* https:/p' >> "$dir/committed"
    if ! "$W" check "$key" "$log" "$dir/committed" > "$dir/check.$i" 2>&1; then
        echo "FAIL after kill $i:"; cat "$dir/check.$i"; exit 1
    fi
    i=$((i + 1))
done
echo "log_crash: 30 kills; $(tail -n 1 "$dir/check.29")"
