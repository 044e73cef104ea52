# shellcheck shell=sh disable=SC2034
# Sourced by the end-to-end test scripts, after `set -eu` (or `set -u`):
#     . "${top_srcdir:-.}/tests/prelude.sh"
#     workdir NAME
# B and S are the absolute build and source folders, D the committed
# fixtures; workdir makes a private folder W under $TMPDIR, removes it on
# exit and enters it; ok/fail print TAP lines (fail shows the last command's
# out and err, then stops); rc runs a command with stdout in out and stderr
# in err and prints its exit code.
# For scripts that go on after a failed check and fail at the end:
#     tally             ok prints "ok: ...", fail prints "FAIL: ..." and
#                       counts it in $fails (the script ends with
#                       [ "$fails" -eq 0 ])
# And:
#     private_home      HOME and the XDG config, cache and state folders
#                       inside W, no proxy, no NO_COLOR: the user's files
#                       are never read or touched
#     built PATH...     fail (exit 1) unless each tool is built
#     before_exit() { ...; }  optional: runs first on exit (stop a server),
#                       while W still exists
#     skip WHY          "SKIP: WHY", exit 77
# KEEP=1 keeps W (its name is printed). INT and TERM exit 1, so the exit
# clean-up runs then too.
: "${top_builddir:=.}"
: "${top_srcdir:=.}"
B=$(cd "$top_builddir" && pwd)
S=$(cd "$top_srcdir" && pwd)
D="$S/tests/data"
# Absolute from here on: workdir leaves the folder they were relative to.
top_builddir=$B top_srcdir=$S
n=0

prelude_exit() {
    if command -v before_exit >/dev/null 2>&1; then before_exit || :; fi
    if [ -n "${KEEP:-}" ]; then echo "# kept $W"; else rm -rf "$W"; fi
}
workdir() {
    W=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
    trap prelude_exit EXIT
    trap 'exit 1' INT TERM
    cd "$W" || exit 1
}
skip() { echo "SKIP: $*"; exit 77; }
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() {
    echo "not ok - $*"
    if [ -f out ]; then echo "--- out"; cat out; fi
    if [ -f err ]; then echo "--- err"; cat err; fi
    exit 1
}
rc() { set +e; "$@" >out 2>err; r=$?; set -e; echo $r; }

tally() {
    fails=0
    fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
    ok() { echo "ok: $*"; }
}
private_home() {
    export XDG_CONFIG_HOME="$W/config" XDG_CACHE_HOME="$W/cache" XDG_STATE_HOME="$W/state" \
        HOME="$W/home"
    unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_COLOR
    mkdir -p "$HOME"
}
built() {
    for t in "$@"; do
        [ -x "$t" ] || { echo "FAIL: $t not built"; exit 1; }
    done
}
