#!/bin/sh
# kill -9 appending writers 30 times at random points; after each kill,
# reopen (repairing a torn tail) and check that the chain verifies and that
# every entry a writer reported as committed is in the log. From the tenth
# round on, two processes with four threads each append at once (group
# commit: several threads share one fdatasync, and a kill lands mid-batch,
# with lines written but not yet acknowledged; half the threads append
# deferred, as srv_patient does for a held change, and report only after
# waiting for durability).
set -eu
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
WRITER="$B/tests/log_writer"
workdir log_crash
dir=$W
key="$dir/test.key"
log="$dir/audit.log"
: > "$dir/committed"
i=0
while [ $i -lt 30 ]; do
    if [ $i -lt 10 ]; then
        "$WRITER" write "$key" "$log" "run$i" > "$dir/out.$i" &
        pid=$!
        pid2=
    else
        "$WRITER" write "$key" "$log" "run$i" 4 > "$dir/out.$i" &
        pid=$!
        "$WRITER" write "$key" "$log" "run${i}b" 4 > "$dir/outb.$i" &
        pid2=$!
    fi
    # 0..49 ms, from the kernel's random source (no $RANDOM in POSIX sh)
    ms=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    ms=$((ms % 50))
    sleep "0.0$(printf %02d $ms)"
    kill -9 $pid $pid2 2>/dev/null || true
    wait $pid $pid2 2>/dev/null || true
    # Only complete lines count: drop a last line cut short by the kill.
    for f in "$dir/out.$i" "$dir/outb.$i"; do
        [ -f "$f" ] || continue
        if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then sed '$d' "$f"; else cat "$f"; fi |
            sed -n '/^[0-9][0-9]* https:/p' >> "$dir/committed"
    done
    if ! "$WRITER" check "$key" "$log" "$dir/committed" > "$dir/check.$i" 2>&1; then
        echo "FAIL after kill $i:"; cat "$dir/check.$i"; exit 1
    fi
    i=$((i + 1))
done
echo "log_crash: 30 kills; $(tail -n 1 "$dir/check.29")"
