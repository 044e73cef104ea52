#!/bin/sh
# Sanitizer pass (run by scripts/test after `make check`): a second,
# static build with AddressSanitizer + UndefinedBehaviorSanitizer, then the
# unit tests (every tests/check_* program) and short end-to-end tests on
# the real tools (publish, verify over HTTP, the patient CLI), with leak
# detection on and any UB report fatal.
#
#   tests/sanitize.sh [BUILD_DIR]
#
# BUILD_DIR defaults to $PATIENT_BUILD_DIR-asan (scripts/test passes
# build-asan beside its build dir). Static (--disable-shared) so the tools
# run without libtool wrappers or LD_PRELOAD; no c-icap module (--without-icap).
# Exit 0 on success, 1 on a failure, 77 (with a message) when the compiler
# has no sanitizer runtime.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${PATIENT_BUILD_DIR:-$top/build}-asan}
cc=${SANITIZE_CC:-gcc}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"

probe=$(mktemp -d "${TMPDIR:-/tmp}/sanitize-probe.XXXXXX")
trap 'rm -rf "$probe"' EXIT
printf 'int main(void){return 0;}\n' >"$probe/p.c"
# shellcheck disable=SC2086
if ! $cc $flags "$probe/p.c" -o "$probe/p" >/dev/null 2>&1 || ! "$probe/p"; then
    echo "SKIP: sanitizer pass: $cc cannot build with $flags (install libasan/libubsan)"
    exit 77
fi

mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ]; then
    "$top/configure" -q --disable-shared --without-icap --enable-werror CC="$cc" \
        CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" >/dev/null
fi
make -j"$(nproc)" >sanitize-build.log 2>&1 || { tail -40 sanitize-build.log; exit 1; }

# Unit tests: every Check program in TESTS, plus end-to-end scripts that
# run the tools (each skips itself when its external tools are missing).
tests=$(printf 'pt-print-tests:\n\t@echo $(TESTS)\n' | make -s -f Makefile -f - pt-print-tests |
    tr ' ' '\n' | grep '^tests/check_' | tr '\n' ' ')
e2e=
for t in tests/publish.sh tests/verify_cli.sh tests/cli_patient.sh; do
    [ -f "$top/$t" ] && e2e="$e2e $t"
done

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# Leaks in test scaffolding only (never the library or tools): see the file.
LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}
export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

start=$(date +%s)
if ! make -j"$(nproc)" check TESTS="$tests $e2e" >sanitize-check.log 2>&1; then
    for f in $tests $e2e; do
        log=$f.log
        if [ -f "$log" ] && ! grep -q '^:test-result: \(PASS\|SKIP\)' "$f.trs" 2>/dev/null; then
            echo "== $log"
            grep -E 'ERROR: |SUMMARY: |runtime error|^    #[0-9]|FAIL|Fail|Error' "$log" | head -60
        fi
    done
    grep -E '^(PASS|FAIL|ERROR|SKIP):' sanitize-check.log
    echo "sanitizer pass: FAILED (logs in $build/tests/)"
    exit 1
fi
grep -E '^(PASS|FAIL|ERROR|SKIP):' sanitize-check.log
echo "sanitizer pass: ok ($(echo $tests $e2e | wc -w) tests under ASan+UBSan in $(($(date +%s) - start)) s)"
