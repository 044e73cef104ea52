# shellcheck shell=sh disable=SC2034
# Sourced by the end-to-end test scripts, after `set -eu`:
#     . "${top_srcdir:-.}/tests/prelude.sh"
#     workdir NAME
# B and S are the absolute build and source folders, D the committed
# fixtures; workdir makes a private folder W under $TMPDIR, removes it on
# exit and enters it; ok/fail print TAP lines (fail shows the last command's
# out and err, then stops); rc runs a command with stdout in out and stderr
# in err and prints its exit code.
: "${top_builddir:=.}"
: "${top_srcdir:=.}"
B=$(cd "$top_builddir" && pwd)
S=$(cd "$top_srcdir" && pwd)
D="$S/tests/data"
n=0

workdir() {
    W=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap 'rm -rf "$W"' EXIT
    cd "$W"
}
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() {
    echo "not ok - $*"
    if [ -f out ]; then echo "--- out"; cat out; fi
    if [ -f err ]; then echo "--- err"; cat err; fi
    exit 1
}
rc() { set +e; "$@" >out 2>err; r=$?; set -e; echo $r; }
