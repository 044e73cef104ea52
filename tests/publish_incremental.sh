#!/bin/sh
# Incremental publish: unchanged files keep the previous manifest's hashes,
# the result is byte for byte a full publish, changed files are hashed
# again, the documented cheat case (same size, mtime set back) is missed
# without --rehash and caught with it, and a tampered previous manifest or
# state is never trusted (every file is hashed again, and stats say why).
set -eu
. "${top_srcdir:-.}/tests/prelude.sh"
command -v minisign >/dev/null 2>&1 || { echo "SKIP: minisign not installed"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "SKIP: openssl not installed"; exit 77; }
workdir publish_incremental
PUB="$B/publisher/patient-publish"
cp "$D/manifest_key.key" "$D/manifest_key.pub" .
chmod 600 manifest_key.key
mkdir -p site/a site/b
i=0
while [ $i -lt 40 ]; do
    printf 'page %02d\n' $i >"site/a/p$i.html"
    i=$((i + 1))
done
printf 'home\n' >site/index.html
printf 'other\n' >site/b/x.txt
# Old mtimes: files modified within 2 s of a publish are never recorded.
find site -type f -exec touch -d '2020-01-01 00:00:00' {} +
M=site/.well-known/patient/manifest.json
pub() { rc "$PUB" -s manifest_key.key --origin https://example.org --at 2026-01-01T00:00:00Z \
    --state "$W/state" --stats "$@" site; }
stats() { sed -n 2p out; }
sri() { printf 'sha256-%s' "$(openssl dgst -sha256 -binary "$1" | base64)"; }
listed() { grep -A2 "\"$1\": {" "$M" | sed -n 's/.*"integrity": "\(.*\)",/\1/p'; }

[ "$(pub)" = 0 ] && [ "$(stats)" = "hashed 42 files (0.0 MB), reused 0 unchanged (no previous manifest)" ] &&
    ok "first publish hashes every file" || fail "first publish"
[ "$(pub)" = 0 ] && [ "$(stats)" = "hashed 0 files (0.0 MB), reused 42 unchanged" ] &&
    ok "second publish reuses every file" || fail "second publish"
[ "$(rc minisign -Vm "$M" -p manifest_key.pub)" = 0 ] && ok "minisign verifies it" || fail "minisign"
grep -q '"version": 2' "$M" && ok "version 2" || fail "version"
# Byte for byte what a full pass writes for the same tree, time and version.
[ "$(rc "$PUB" -q -s manifest_key.key --origin https://example.org --at 2026-01-01T00:00:00Z \
    --no-state --version 2 --out "$W/full.json" site)" = 0 ] && cmp -s "$M" full.json &&
    ok "incremental = full publish, byte for byte" || fail "incremental differs from full"

# A different size: hashed again.
printf 'page 03 is longer\n' >site/a/p3.html
touch -d '2020-01-01 00:00:00' site/a/p3.html
[ "$(pub)" = 0 ] && [ "$(stats)" = "hashed 1 files (0.0 MB), reused 41 unchanged" ] &&
    [ "$(listed /a/p3.html)" = "$(sri site/a/p3.html)" ] &&
    ok "changed size: hashed again" || fail "changed size"
# Same size, different mtime: hashed again.
printf 'PAGE 04\n' >site/a/p4.html
touch -d '2021-06-01 00:00:00' site/a/p4.html
[ "$(pub)" = 0 ] && [ "$(stats)" = "hashed 1 files (0.0 MB), reused 41 unchanged" ] &&
    [ "$(listed /a/p4.html)" = "$(sri site/a/p4.html)" ] &&
    ok "changed mtime: hashed again" || fail "changed mtime"

# The cheat case (documented in patient-publish(1) and SECURITY.md): same
# size, mtime forced back. Missed without --rehash ...
old=$(listed /a/p5.html)
printf 'EVIL 05\n' >site/a/p5.html
touch -d '2020-01-01 00:00:00' site/a/p5.html
[ "$(pub)" = 0 ] && [ "$(stats)" = "hashed 0 files (0.0 MB), reused 42 unchanged" ] &&
    [ "$(listed /a/p5.html)" = "$old" ] && [ "$old" != "$(sri site/a/p5.html)" ] &&
    ok "cheat case: not caught without --rehash (documented)" || fail "cheat case without --rehash"
# ... and caught with it.
[ "$(pub --rehash)" = 0 ] &&
    [ "$(stats)" = "hashed 42 files (0.0 MB), reused 0 unchanged (--rehash)" ] &&
    [ "$(listed /a/p5.html)" = "$(sri site/a/p5.html)" ] &&
    ok "cheat case: caught with --rehash" || fail "cheat case with --rehash"

# A file modified just now is hashed but not recorded (a write in the same
# timestamp tick as the hash could otherwise keep a stale hash).
printf 'fresh\n' >site/b/x.txt
[ "$(pub)" = 0 ] && ! grep -q ' /b/x.txt$' state && grep -q ' /a/p5.html$' state &&
    ok "a just-modified file is left out of the state" || fail "fresh file recorded"
touch -d '2020-01-01 00:00:00' site/b/x.txt
[ "$(pub)" = 0 ] && [ "$(stats)" = "hashed 1 files (0.0 MB), reused 41 unchanged" ] &&
    ok "and hashed again next time" || fail "fresh file next time"

# Forged twins: nothing reused from an untrusted previous manifest or state.
cp state state.good
sed 's/^\([0-9]* [0-9]* \)[0-9]* \(.* \/a\/p6.html\)$/\17 \2/' state.good >state
cmp -s state state.good && fail "state edit did not change the state"
[ "$(pub)" = 0 ] &&
    [ "$(stats)" = "hashed 42 files (0.0 MB), reused 0 unchanged (publish state not authentic or not for this manifest)" ] &&
    ok "edited state: not trusted, every file hashed" || fail "edited state trusted"
cp state state.prev
[ "$(pub)" = 0 ] && [ "$(stats)" = "hashed 0 files (0.0 MB), reused 42 unchanged" ] || fail "baseline"
cp state.prev state
[ "$(pub)" = 0 ] &&
    [ "$(stats)" = "hashed 42 files (0.0 MB), reused 0 unchanged (publish state not authentic or not for this manifest)" ] &&
    ok "authentic state of an earlier manifest: not used" || fail "stale state used"
# A previous manifest whose listed hash was changed: its signature fails.
printf 'PAGE 07\n' >site/a/p7.html
touch -d '2020-01-01 00:00:00' site/a/p7.html
good=$(sri site/a/p7.html)
sed "s|$(listed /a/p7.html)|$good|" "$M" >m.new && cp m.new "$M"
[ "$(listed /a/p7.html)" = "$good" ] || fail "manifest edit"
printf 'EVIL 07\n' >site/a/p7.html
touch -d '2020-01-01 00:00:00' site/a/p7.html
[ "$(pub)" = 0 ] &&
    [ "$(stats)" = "hashed 42 files (0.0 MB), reused 0 unchanged (previous manifest signature does not verify with this key)" ] &&
    [ "$(listed /a/p7.html)" = "$(sri site/a/p7.html)" ] &&
    ok "edited previous manifest: not trusted, every file hashed" || fail "edited manifest trusted"
# A previous manifest signed by another key (a rotation) is not reused.
[ "$(pub)" = 0 ] && [ "$(stats)" = "hashed 0 files (0.0 MB), reused 42 unchanged" ] || fail "baseline 2"
cp "$D/manifest_golden.json.minisig" "$M.minisig"
[ "$(pub)" = 0 ] &&
    [ "$(stats)" = "hashed 42 files (0.0 MB), reused 0 unchanged (previous manifest signature does not verify with this key)" ] &&
    ok "signature not over the previous manifest: not trusted" || fail "foreign signature trusted"
[ "$(rc minisign -Vm "$M" -p manifest_key.pub)" = 0 ] && ok "minisign verifies the last" || fail "minisign last"
[ "$(stat -c %a state)" = 600 ] && ok "state is 0600" || fail "state mode"
# The default state: in the user's cache, private, never in the served tree.
export XDG_CACHE_HOME="$W/cache"
rc "$PUB" -q -s manifest_key.key --origin https://example.org site >/dev/null
[ "$(rc "$PUB" -s manifest_key.key --origin https://example.org --stats site)" = 0 ] &&
    [ "$(stats)" = "hashed 0 files (0.0 MB), reused 42 unchanged" ] &&
    [ "$(find cache/patient-publish -name '*.state' -perm 600 | wc -l)" = 1 ] &&
    [ "$(stat -c %a cache/patient-publish)" = 700 ] &&
    [ "$(find site -name '*state*' | wc -l)" = 0 ] &&
    ok "default state in \$XDG_CACHE_HOME/patient-publish, 0600, none in the site" ||
    fail "default state"
[ "$(rc "$PUB" -s manifest_key.key --origin https://example.org --stats --no-state site)" = 0 ] &&
    [ "$(stats)" = "hashed 42 files (0.0 MB), reused 0 unchanged (no publish state kept)" ] &&
    ok "--no-state hashes every file" || fail "--no-state"

# A sharded site (more than 512 entries): a leaf written anew because one
# of its files changed takes the other files' hashes from the previous leaf
# of its bin (the file the state names), so only the changed file is read.
mkdir -p big
i=0
while [ $i -lt 600 ]; do
    printf 'p%03d\n' $i >"big/p$i.html"
    i=$((i + 1))
done
find big -type f -exec touch -d '2020-01-01 00:00:00' {} +
BM=big/.well-known/patient
bpub() { rc "$PUB" -s manifest_key.key --origin https://example.org --at 2026-01-01T00:00:00Z \
    --state "$W/bstate" --stats "$@" big; }
leaf() { python3 "$S/tests/shard_path.py" "$BM" "$1" | tail -1; }
blisted() { grep -A2 "\"$1\": {" "$BM/shards/$(leaf "$1").json" | sed -n 's/.*"integrity": "\(.*\)",/\1/p'; }
[ "$(bpub)" = 0 ] && [ "$(stats)" = "hashed 600 files (0.0 MB), reused 0 unchanged (no previous manifest)" ] &&
    grep -q '"shard_bits"' "$BM/manifest.json" || fail "sharded first publish"
printf 'P007\n' >big/p7.html
touch -d '2021-01-01 00:00:00' big/p7.html
[ "$(bpub)" = 0 ] && [ "$(stats)" = "hashed 1 files (0.0 MB), reused 599 unchanged" ] &&
    sed -n 3p out | grep -q ', wrote 1 (' && [ "$(blisted /p7.html)" = "$(sri big/p7.html)" ] &&
    ok "sharded: one file changed, one file hashed, its leaf rewritten" || fail "sharded reuse"
# Forged twin: the previous leaf edited on disk (a wrong hash for an
# unchanged file) no longer hashes to its name: nothing is taken from it,
# its whole bin is hashed again and lists the right hash.
peer=$(python3 - "$BM/manifest.json" <<'PY'
import hashlib, json, sys
t = sum(json.load(open(sys.argv[1]))["shard_bits"])
b = lambda p: int.from_bytes(hashlib.sha256(p.encode()).digest(), "big") >> (256 - t)
print(next(i for i in range(600) if i != 8 and b("/p%d.html" % i) == b("/p8.html")))
PY
)
lf="$BM/shards/$(leaf /p8.html).json"
inbin=$(grep -c '"integrity"' "$lf")
sed "s|$(blisted /p8.html)|$(sri big/p7.html)|" "$lf" >leaf.new && cat leaf.new >"$lf"
[ "$(blisted /p8.html)" = "$(sri big/p7.html)" ] || fail "leaf edit"
printf 'X%03d\n' "$peer" >"big/p$peer.html"
touch -d '2021-01-01 00:00:00' "big/p$peer.html"
[ "$(bpub)" = 0 ] && [ "$(stats)" = "hashed $inbin files (0.0 MB), reused $((600 - inbin)) unchanged" ] &&
    [ "$(blisted /p8.html)" = "$(sri big/p8.html)" ] &&
    ok "sharded: an edited previous leaf is not trusted, its bin hashed again" ||
    fail "edited leaf trusted"
[ "$(rc minisign -Vm "$BM/manifest.json" -p manifest_key.pub)" = 0 ] && ok "minisign verifies it" ||
    fail "minisign sharded"
