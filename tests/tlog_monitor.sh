#!/bin/sh
# `patient audit monitor` and `included` against a log published into a
# folder that a real nginx serves on loopback: first run, append ->
# consistent, filters; fork (truncated and regrown), rollback (an older
# checkpoint served again), forged checkpoint signature, corrupted tile,
# server down (its own exit code, state file unchanged each time), a bundle
# missing after an edited one (the edit is reported); an entry's time the
# log reader refuses (an entry alarm); lines long enough
# that the read-ahead's batches are cut short (an edit past them found); a
# caller stalled past the fetch timeout (no alarm: what fetching in turn
# reports); a log host that does not answer (the alarm after one timeout); a
# bundle's change found, a never-logged descriptor reported as such.
set -eu
# shellcheck source=tests/prelude.sh
. "${top_srcdir:-.}/tests/prelude.sh"
P="$B/cli/patient"
M="$B/middlebox/patient-mbox"
T="$B/tests/tlog_tool"
command -v nginx >/dev/null 2>&1 || skip "nginx not installed (scripts/deps)"
workdir tlog_monitor
stop_nginx() { [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null; rm -f "$W/nginx.pid"; sleep 0.3; }
before_exit() { stop_nginx; [ -z "${hang_pid:-}" ] || kill "$hang_pid" 2>/dev/null || :; }
# The monitor, given ARGS after the URL, exits CODE with PATTERN on stderr
# (an alarm, or an outage's message); else the test fails with WHAT.
alarm_check() { # CODE PATTERN WHAT ARGS...
    code=$1 pat=$2 what=$3
    shift 3
    [ "$(rc "$P" audit monitor "$URL" "$@")" = "$code" ] && grep -q "$pat" err || fail "$what"
}

start_nginx() {
    for try in 1 2 3 4 5; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        mkdir -p "$W/ngx"
        user=""
        [ "$(id -u)" = 0 ] && user="user root;"   # workers must read $W
        cat >"$W/nginx.conf" <<NGX
$user
daemon on;
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $W/ngx/body; proxy_temp_path $W/ngx/proxy;
    fastcgi_temp_path $W/ngx/fcgi; uwsgi_temp_path $W/ngx/uwsgi; scgi_temp_path $W/ngx/scgi;
    server { listen 127.0.0.1:$port; location /log/ { alias $W/pub/; } }
}
NGX
        if nginx -p "$W/" -c "$W/nginx.conf" -e "$W/nginx-error.log" >ngx.out 2>&1; then
            URL="http://127.0.0.1:$port/log"
            return 0
        fi
        grep -q 'in use' ngx.out "$W/nginx-error.log" 2>/dev/null || { cat ngx.out; return 1; }
    done
    return 1
}

"$P" keygen -W -p k.pub -s k.sec >/dev/null
"$P" keygen -W -p other.pub -s other.sec >/dev/null
mbox() { # URL AT RULES
    "$M" -q -s k.sec --name corp --type text/html --at "$2" --rules "$S/middlebox/rules/$3" \
        --url "$1" --log audit.log --checkpoint-every 50 <"$S/tests/site/index.html" >/dev/null
}
mbox https://a.example/index.html 2026-11-20T10:00:00Z example.json
mbox https://b.example/index.html 2026-11-21T10:00:00Z trackers-only.json
"$T" gen k.sec audit.log 300 50 - first
mbox https://a.example/news/1.html 2026-11-22T10:00:00Z example.json
"$P" audit publish audit.log pub --key k.sec >out 2>err || fail "publish"
start_nginx || fail "nginx"
ok "log of 3 changes and 300 events published; nginx serves it at $URL"

# ---- first run, then appends ------------------------------------------------
[ "$(rc "$P" audit monitor "$URL" --pub k.pub --state st --deep)" = 0 ] || fail "first run"
grep -q 'consistent: tree of [0-9]* entries extends the 0 seen before' out &&
    [ "$(grep -c 'seq [0-9]*  corp' out)" = 3 ] || fail "first run output"
grep -q '^size ' st && [ "$(stat -c %a st)" = 600 ] || fail "state file 0600"
old=$(sed -n 's/^size //p' st)
cp pub/checkpoint old.checkpoint
ok "first run: every entry checked (deep), 3 changes shown, state 0600"

"$T" gen k.sec audit.log 200 50 pub second
mbox https://c.example/x.html 2026-11-23T10:00:00Z example.json
mbox https://a.example/y.html 2026-11-23T11:00:00Z trackers-only.json
"$P" audit publish audit.log pub --key k.sec >/dev/null 2>&1 || fail "republish"
[ "$(rc "$P" audit monitor "$URL" --pub k.pub --state st --reason 'tracker*' --origin https://c.example)" = 0 ] ||
    fail "second run"
grep -q "extends the $old seen before" out && [ "$(grep -c 'seq [0-9]*  corp' out)" = 1 ] &&
    grep -q 'c.example/x.html' out || fail "second run: only new entries, filtered"
[ "$(rc "$P" audit monitor "$URL" --pub k.pub --state st)" = 0 ] && grep -q 'no new entries' out ||
    fail "third run: nothing new"
[ "$(rc "$P" audit monitor "$URL" --pub k.pub --state st --json)" = 0 ] || fail "json run"
ok "append -> consistent; --reason/--origin filter; no new entries"

cp st st.good
unchanged() { cmp -s st st.good || fail "$1: state file changed"; }

# ---- server down: its own exit code ------------------------------------------
stop_nginx
alarm_check 3 'log unreachable' "server down: exit 3" --pub k.pub --state st
unchanged "server down"
start_nginx || fail "nginx again"
ok "server down: exit 3, 'log unreachable', state unchanged"

# ---- a state file whose partial tile is not its frontier's ------------------------
# The roots of the tiles the next entries fill come from the frontier, so a
# state file whose partial tile says otherwise is damaged (exit 2), never used.
grep -q '^tile 0 [0-9a-f]*$' st || fail "state with a partial level-0 tile"
python3 - <<'PY'
t = open("st").read().split("\n")
for i, l in enumerate(t):
    if l.startswith("tile 0 "):
        t[i] = l[:7] + ("0" if l[7] != "0" else "1") + l[8:]
open("st.tile", "w").write("\n".join(t))
PY
cp st.tile st.tile.before
alarm_check 2 "state file st.tile is damaged" \
    "partial tile not the frontier's: exit 2" --pub k.pub --state st.tile
cmp -s st.tile st.tile.before || fail "a damaged state file was touched"
[ "$(rc "$P" audit monitor "$URL" --pub k.pub --state st)" = 0 ] && grep -q 'no new entries' out ||
    fail "the state it was made from: accepted"
unchanged "the good state"
ok "state file whose partial tile disagrees with its frontier: damaged, exit 2, untouched; the good one accepted"

# ---- forged checkpoint signature -----------------------------------------------
cp pub/checkpoint good.checkpoint
python3 - <<'PY'
import base64
t = open("pub/checkpoint", "rb").read()
i = t.rindex(b" ") + 1
sig = bytearray(base64.b64decode(t[i:].strip()))
sig[10] ^= 1
open("pub/checkpoint", "wb").write(t[:i] + base64.b64encode(bytes(sig)) + b"\n")
PY
alarm_check 1 'ALARM (signature): bad signature' "forged signature: alarm" --pub k.pub --state st
unchanged "forged signature"
alarm_check 1 'ALARM (signature)' "other key: alarm" --pub other.pub --state st
cp good.checkpoint pub/checkpoint
ok "forged checkpoint signature and another key: ALARM (signature), exit 1"

# ---- rollback: an older checkpoint served again ---------------------------------
cp old.checkpoint pub/checkpoint
alarm_check 1 'ALARM (rollback): ROLLBACK' "rollback: alarm" --pub k.pub --state st
unchanged "rollback"
cp good.checkpoint pub/checkpoint
ok "rollback: ALARM (rollback), exit 1, state unchanged"

# ---- corrupted tile ---------------------------------------------------------------
"$T" gen k.sec audit.log 300 50 pub third
cp -r pub pub.good
size=$(sed -n 2p pub/checkpoint)
t=pub/tile/0/$(printf %03d $((size / 256))).p/$((size % 256))
[ -f "$t" ] || fail "partial tile $t of the tree of $size"
# (the right edge of the new tree: the monitor compares it with its own)
printf 'X' | dd of="$t" bs=1 seek=7 conv=notrunc 2>/dev/null
alarm_check 1 'ALARM (tile): corrupted tile' "corrupted tile: alarm" --pub k.pub --state st
unchanged "corrupted tile"
rm -rf pub && mv pub.good pub
ok "corrupted tile: ALARM (tile), exit 1, state unchanged"

# ---- catching up: a later bundle missing, an earlier one edited --------------------------
# (the monitor fetches the next bundle while the one before is checked: the
# first problem in log order is still the one reported)
cp -r pub pub.good
rm pub/entries/001
alarm_check 3 'log unreachable: entry bundle .*/entries/001' \
    "bundle 1 missing: exit 3" --pub k.pub --state fresh
[ ! -e fresh ] || fail "bundle 1 missing: no state written"
sed -i '10s/"seq":9,/"seq":9 ,/' pub/entries/000
alarm_check 1 'ALARM (entry): entry 10 does not chain to the one before it' \
    "bundle 0 edited, bundle 1 missing: the entry alarm" --pub k.pub --state fresh
[ ! -e fresh ] || fail "bundle 0 edited: no state written"
rm -rf pub && mv pub.good pub
ok "catching up: a missing later bundle is exit 3, an edit before it is reported first"

# ---- catching up: a bundle that is not its lines ----------------------------------------
# (the scan workers split the bundles: one with a line too few, or one too
# many, is the entry alarm naming it, in log order: an edit in a bundle
# before it is reported first; printing entries or quiet)
cp -r pub pub.good
sed -i '20d' pub/entries/001
for q in "" -q; do
    alarm_check 1 'ALARM (entry): corrupted entry bundle .*/entries/001: not 256 lines' \
        "bundle 1 a line short: alarm ($q)" --pub k.pub --state fresh $q
    [ ! -e fresh ] || fail "bundle 1 a line short: no state written"
done
cp pub.good/entries/001 pub/entries/001
sed -n 30p pub/entries/001 >>pub/entries/001
alarm_check 1 'ALARM (entry): corrupted entry bundle .*/entries/001: not 256 lines' \
    "bundle 1 a line over: alarm" --pub k.pub --state fresh -q
sed -i '10s/"seq":9,/"seq":9 ,/' pub/entries/000
alarm_check 1 'ALARM (entry): entry 10 does not chain to the one before it' \
    "bundle 0 edited, bundle 1 a line over: the entry alarm" --pub k.pub --state fresh -q
[ ! -e fresh ] || fail "bundle 0 edited: no state written"
rm -rf pub && mv pub.good pub
ok "catching up: a bundle that is not 256 lines is the entry alarm naming it, an edit before it first"

# A bundle sent for while the one before is still on its way is capped at
# 4 MiB (the memory in flight stays bounded); one larger is fetched again
# in turn at a bundle's full cap, so what is wrong in it is what is
# reported, never its size. Bundle 1 padded to ~5 MiB (spaces in each
# line's JSON: a line that reads, but hashes otherwise, so the next one
# does not chain to it): the alarm names entry 257, in bundle 1.
cp -r pub pub.good
python3 - <<'PY'
p = "pub/entries/001"
lines = open(p, "rb").read().split(b"\n")[:-1]
assert len(lines) == 256
open(p, "wb").write(b"".join(b"{" + b" " * 20000 + l[1:] + b"\n" for l in lines))
PY
[ "$(wc -c <pub/entries/001)" -gt 5000000 ] || fail "bundle 1 over 4 MiB"
alarm_check 1 'ALARM (entry): entry 257 does not chain to the one before it' \
    "a bundle over 4 MiB sent for ahead: fetched again, read whole" --pub k.pub --state fresh
grep -q 'larger than it can be' err && fail "a bundle over 4 MiB sent for ahead: not its size"
[ ! -e fresh ] || fail "bundle 1 padded: no state written"
rm -rf pub && mv pub.good pub
ok "a bundle over 4 MiB fetched ahead: fetched again in turn at its full cap, the chain broken in it reported"

# ---- an entry whose time the log reader refuses -------------------------------------------
# Every mode reads an entry's time as the log reader does, so a line that
# reader refuses for its time is an entry alarm, quiet too, before the
# next line's chain (which the edit also broke) is looked at.
time_alarm() { # WHAT SED-EDIT-OF-LINE-10 GREP-CHECK MODE...
    what=$1 edit=$2 check=$3
    shift 3
    cp -r pub pub.good
    sed -i -E "10$edit" pub/entries/000
    sed -n 10p pub/entries/000 | grep -q "$check" || fail "entry 9 given $what"
    for mode in "$@"; do
        alarm_check 1 'ALARM (entry): entry 9 is not a log entry (its time does not read as one)' \
            "$what, monitor ${mode:-(plain)}: the entry alarm" --pub k.pub --state fresh $mode
    done
    [ ! -e fresh ] || fail "$what: no state written"
    rm -rf pub && mv pub.good pub
}
time_alarm "month 13" 's/"time":"([0-9]{4})-[0-9]{2}-/"time":"\1-13-/' '"time":"[0-9]*-13-' "" -q
ok "an entry's time the log reader refuses: ALARM (entry), printing entries or quiet"

# "@0" reads as a time on a command line, never in a log (RFC 3339 UTC):
# the same alarm in every mode (the same bundles with the time intact
# passed in the runs before).
time_alarm "the time @0" 's/"time":"[^"]*"/"time":"@0"/' '"time":"@0"' -q --deep --json ""
ok "an entry's time @0: ALARM (entry) in every mode, -q too"

# The same time written into the log (the entries after it chain to it and
# the checkpoints sign it): every mode reads the time, quiet too. Its
# twin, the same log with the time intact, passes in every mode.
mv pub pub.good
for t in bad good; do
    head -n 60 audit.log >"time-$t.log"
    [ "$t" = good ] || sed -i -E '60s/"time":"([0-9]{4})-[0-9]{2}-/"time":"\1-13-/' "time-$t.log"
    "$T" gen k.sec "time-$t.log" 100 50 - "time-$t"
done
sed -n 60p time-bad.log | grep -q '"time":"[0-9]*-13-' && ! sed -n 60p time-good.log | grep -q '"time":"[0-9]*-13-' ||
    fail "entry 59 given month 13 in the log itself"
"$P" audit publish time-bad.log pub --key k.sec >/dev/null 2>&1 || fail "publish the refused time"
for mode in -q --deep --json ""; do
    alarm_check 1 'ALARM (entry): entry 59 is not a log entry (its time does not read as one)' \
        "a refused time in the log, monitor ${mode:-(plain)}: the entry alarm" --pub k.pub --state time.st $mode
    [ ! -e time.st ] || fail "a refused time in the log: no state written"
done
rm -rf pub
"$P" audit publish time-good.log pub --key k.sec >/dev/null 2>&1 || fail "publish the twin"
size=$(sed -n 2p pub/checkpoint)
for mode in -q --deep --json ""; do
    [ "$(rc "$P" audit monitor "$URL" --pub k.pub --state "time$mode.st" $mode)" = 0 ] &&
        grep -qx "size $size" "time$mode.st" ||
        fail "the twin, monitor ${mode:-(plain)}: consistent"
done
rm -rf pub && mv pub.good pub
ok "a refused time the log itself carries: ALARM (entry) in every mode, -q too; its twin passes"

# ---- partials removed once the full tile exists (C2SP allows it) --------------------------
# A client that read an older checkpoint falls back to the full tile and
# bundle, whose first hashes and lines are the partial ones.
cp -r pub pub.good
cp old.checkpoint pub/checkpoint
size=$(sed -n 2p old.checkpoint)
i=$(printf %03d $((size / 256)))
[ -f "pub/tile/0/$i" ] && [ -f "pub/entries/$i" ] && [ -f "pub/tile/0/$i.p/$((size % 256))" ] ||
    fail "full and partial tiles of index $i"
rm -r "pub/tile/0/$i.p" "pub/entries/$i.p"
[ "$(rc "$P" audit monitor "$URL" --pub k.pub --state fresh)" = 0 ] &&
    grep -q "consistent: tree of $size entries extends the 0 seen before" out ||
    fail "partials removed: the monitor reads the full tile and bundle"
rm -rf pub fresh && mv pub.good pub
ok "partial tile and bundle removed: the monitor falls back to the full ones"

# ---- included: a logged change and a never-logged one ---------------------------------
python3 - <<'PY'
import json
lines = [json.loads(l) for l in open("audit.log")]
jws = [l["jws"] for l in lines if l["kind"] == "change"]
json.dump({"type": "bundle", "changes": [jws[2]]}, open("bundle.json", "w"))
PY
"$M" -q -s k.sec --name corp --type text/html --rules "$S/middlebox/rules/example.json" \
    --url https://never.example/ --log elsewhere.log --header-out hdr.txt \
    <"$S/tests/site/index.html" >/dev/null
python3 - <<'PY'
import json
lines = [json.loads(l) for l in open("audit.log")]
jws = [l["jws"] for l in lines if l["kind"] == "change"]
never = [l["jws"] for l in map(json.loads, open("elsewhere.log")) if l["kind"] == "change"][0]
json.dump({"type": "bundle", "changes": [jws[0], never]}, open("mixed.json", "w"))
PY
[ "$(rc "$P" audit included bundle.json --log "$URL" --pub k.pub --state st)" = 0 ] &&
    grep -q 'change 0: logged as entry [0-9]*, proven into the signed tree' out ||
    fail "included: found"
# --out: the bundle with its evidence, never over a file already there
[ "$(rc "$P" audit included bundle.json --log "$URL" --pub k.pub --state st --out ev.json)" = 0 ] &&
    grep -qx 'evidence written to ev.json (log_proofs)' out && grep -q '"log_proofs"' ev.json ||
    fail "included --out: evidence written"
cp ev.json ev.before
[ "$(rc "$P" audit included bundle.json --log "$URL" --pub k.pub --state st --out ev.json)" = 2 ] &&
    [ "$(cat err)" = "patient audit: ev.json already exists; use -f to overwrite it [file.exists]" ] &&
    cmp -s ev.json ev.before || fail "included --out over an existing file: refused, exit 2"
[ "$(rc "$P" audit included mixed.json --log "$URL" --pub k.pub --state st)" = 1 ] &&
    grep -q 'change 0: logged as entry 0' out && grep -q 'change 1: NOT LOGGED' out ||
    fail "included: never logged"
unchanged "included"
ok "included: a bundle's change proven (--out: evidence written, an existing file refused); a never-logged descriptor NOT LOGGED, exit 1"

# ---- the monitor's descriptor index: one bundle read; a wrong one never proves ----------
[ -f st.index ] && [ "$(stat -c %a st.index)" = 600 ] || fail "index beside the state file, 0600"
real=$(python3 -c '
import json
ls = [json.loads(l) for l in open("audit.log")]
print([l["seq"] for l in ls if l["kind"] == "change"][2])')
[ "$(rc "$P" audit included bundle.json --log "$URL" --pub k.pub --state st)" = 0 ] &&
    grep -q "change 0: logged as entry $real," out &&
    grep -q "(entry bundles read: 1; the monitor's index covers entries 0-" out ||
    fail "included by the index: one bundle read"
cp st.index st.index.good
forge() { # JWS_PY SEQ: point the record of that descriptor's key (or a new one) at SEQ
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
ls = [json.loads(l) for l in open("audit.log")]
jws = [l["jws"] for l in ls if l["kind"] == "change"]
never = [l["jws"] for l in map(json.loads, open("elsewhere.log")) if l["kind"] == "change"][0]
key = eval(sys.argv[1])[-16:].encode()
d = bytearray(open("st.index", "rb").read())
hit = False
for o in range(128, len(d) - 23, 24):
    if d[o:o + 16] == key:
        d[o + 16:o + 24] = struct.pack(">Q", int(sys.argv[2])); hit = True
if not hit:  # a record before the last mark
    d[-24:-24] = key + struct.pack(">Q", int(sys.argv[2]))
open("st.index", "wb").write(bytes(d))
PY
}
forge 'jws[2]' 0
[ "$(rc "$P" audit included bundle.json --log "$URL" --pub k.pub --state st)" = 0 ] &&
    grep -q "change 0: logged as entry $real," out && grep -q 'every entry searched' out ||
    fail "a wrong index entry: the log searched, the real entry proven"
cp st.index.good st.index
forge 'never' "$real"
[ "$(rc "$P" audit included mixed.json --log "$URL" --pub k.pub --state st)" = 1 ] &&
    grep -q 'change 1: NOT LOGGED' out && grep -q 'every entry searched' out ||
    fail "an index claiming a never-logged descriptor: NOT LOGGED"
python3 -c 'd = bytearray(open("st.index.good", "rb").read()); d[30] ^= 1; open("st.index", "wb").write(d)'
[ "$(rc "$P" audit included bundle.json --log "$URL" --pub k.pub --state st)" = 0 ] &&
    grep -q "change 0: logged as entry $real," out && grep -q "no monitor's index" out ||
    fail "an index of another log: not used"
cp st.index.good st.index
unchanged "index"
ok "index: one bundle read; a wrong entry or a never-logged claim searched and refused; another log's index ignored"

# ---- long lines: batches of fewer bundles -------------------------------------------------
# Lines of ~12 KB make bundles of ~3 MiB: the reading ahead closes a batch
# once its bundles pass 4 MiB (two here, not four), and every entry is
# still checked in order; the twin's edit in a later batch is found there.
mv pub pub.good
"$T" gen k.sec long.log 760 50 - "$(printf 'd%.0s' $(seq 4000))" \
    "https://long.example/$(printf 'p%.0s' $(seq 8000))"
"$P" audit publish long.log pub --key k.sec >/dev/null 2>&1 || fail "publish the long lines"
size=$(sed -n 2p pub/checkpoint)
[ "$size" -gt 700 ] && [ "$(head -c 20000 pub/entries/000 | head -n 1 | wc -c)" -gt 12000 ] ||
    fail "a log of long lines"
[ "$(rc "$P" audit monitor "$URL" --pub k.pub --state long.st)" = 0 ] &&
    grep -q "extends the 0 seen before; $size new entries checked" out ||
    fail "long lines: every entry checked"
b=pub/entries/002
[ "$size" -ge 768 ] || b=pub/entries/002.p/$((size % 256))
sed -i '89s/"seq":600,/"seq":600 ,/' "$b"
alarm_check 1 'ALARM (entry): entry 601 does not chain to the one before it' \
    "long lines: an edit in the third bundle" --pub k.pub --state long2.st
[ ! -e long2.st ] || fail "long lines edited: no state written"
# (the last batch holds that bundle alone: split before its lines are
# shared out among the workers; one a line short is the alarm naming it)
sed -i '30d' "$b"
alarm_check 1 "ALARM (entry): corrupted entry bundle .*/${b#pub/}: not" \
    "long lines: the last bundle a line short" --pub k.pub --state long2.st -q
[ ! -e long2.st ] || fail "long lines, a line short: no state written"
rm -rf pub && mv pub.good pub
ok "long lines (bundles of ~3 MiB): batches cut at 4 MiB, every entry checked; an edit in bundle 2 found, and a line missing from it"

# ---- a stalled checking thread: no alarm that fetching in turn would not raise ----------
# 30 bundles: the reader fills its batches, leaves requests in flight and
# sleeps while the caller's on_entry stalls 1.5 s against a 1 s fetch
# timeout; those requests time out undriven, and are fetched again in turn.
mv pub pub.good
"$T" gen k.sec stall.log 7700 1000 - stall
"$P" audit publish stall.log pub --key k.sec >/dev/null 2>&1 || fail "publish the stall log"
size=$(sed -n 2p pub/checkpoint)
"$T" monitor "$URL" k.pub stall0.st 1000 0 >out 2>err && [ "$(cat out)" = "ok $size entries" ] ||
    fail "stall: the run without a stall"
"$T" monitor "$URL" k.pub stall1.st 1000 1500 >out 2>err && [ "$(cat out)" = "ok $size entries" ] &&
    cmp -s stall0.st stall1.st || fail "stall: on_entry stalled past the fetch timeout: $(cat out err)"
ok "a caller stalled 1.5 s past a 1 s fetch timeout: the same $size entries checked, no alarm"

# ---- a log host that does not answer: the alarm after one timeout, not two ---------------
# A server that serves the checkpoint but never answers for bundle 0
# (tests/verify_cli_server.py, the bundle marked .hang): the
# read-ahead's first request times out while the reader waits on it, and
# that is the alarm; it is not asked for again in turn (that doubled the
# wait). Counted in requests the server saw, not in time.
mkdir -p hang/site
cp -r pub hang/site/log
touch hang/site/log/entries/000.hang
python3 "$top_srcdir/tests/verify_cli_server.py" "$W/hang" hang.port &
hang_pid=$!
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do [ -f hang.port ] && break; sleep 0.1; done
[ -f hang.port ] || fail "hang: the server did not start"
HURL="http://127.0.0.1:$(cat hang.port)/log"
hrc=0; "$T" monitor "$HURL" k.pub hang.st 1000 0 >out 2>err || hrc=$?
kill "$hang_pid" 2>/dev/null; wait "$hang_pid" 2>/dev/null || :; hang_pid=
[ "$hrc" = 1 ] && [ "$(cat out)" = "unreachable 0 entries" ] &&
    grep -q 'log unreachable: entry bundle .*/entries/000: .*timed out' err ||
    fail "hang: the unreachable alarm for bundle 0: rc $hrc $(cat out err)"
asks=$(grep -c '/entries/000$' hang/requests.log || :)
[ "$asks" = 1 ] || fail "hang: bundle 0 asked for $asks times, not once: $(tr '\n' ' ' <hang/requests.log)"
[ ! -e hang.st ] || fail "hang: no state written"
rm -rf pub && mv pub.good pub
ok "a log host that does not answer for a bundle: asked for once, the unreachable alarm after one timeout"

# ---- groups of 64 new entries added to the tree at once -----------------------------------
# With checkpoints 300 entries apart most groups of 64 new entries hold
# none: when it prints nothing (-q), the workers hash such a group's
# subtree (16 node hashes at a time where the CPU has AVX-512) and the
# checking thread adds it at once. The state and index are those adding
# them one by one gives (--deep does), and a full tile of such groups
# served corrupted is still the alarm. Without AVX-512 no group is hashed
# (group_root) and every mode adds leaf by leaf: these checks pass there
# whatever the group path does, and can fail only on a CPU with it.
old=$(sed -n 's/^size //p' st)
"$T" gen k.sec audit.log 700 300 pub groups
cp st st.fast
cp st st.deep
[ "$(rc "$P" audit monitor "$URL" --pub k.pub --state st.fast -q)" = 0 ] || fail "groups: $(cat err)"
[ "$(rc "$P" audit monitor "$URL" --pub k.pub --state st.deep --deep)" = 0 ] ||
    fail "groups, --deep: $(cat err)"
cmp -s st.fast st.deep && cmp -s st.fast.index st.deep.index ||
    fail "groups: state or index not the one adding entries one by one gives"
t=$(((old + 255) / 256))
cp "pub/tile/0/$(printf %03d "$t")" tile.good
printf 'X' | dd of="pub/tile/0/$(printf %03d "$t")" bs=1 seek=4000 conv=notrunc 2>/dev/null
cp st st.bad
alarm_check 1 "ALARM (tile): corrupted tile: .*/tile/0/$(printf %03d "$t") differs" \
    "groups: corrupted full tile: alarm" --pub k.pub --state st.bad -q
cmp -s st st.bad || fail "groups: corrupted tile: state changed"
# The report counts the same entries before that alarm whether the groups
# are added at once (no callback) or leaf by leaf (a callback): those
# before the tile's last one.
for stall in - 0; do
    cp st st.bad
    "$T" monitor "$URL" k.pub st.bad 10000 "$stall" >out 2>err || :
    [ "$(cat out)" = "tile $((t * 256 + 255 - old)) entries" ] ||
        fail "groups: corrupted tile (stall $stall): $(cat out) not $((t * 256 + 255 - old))"
done
cp tile.good "pub/tile/0/$(printf %03d "$t")"
ok "groups of 64 entries added at once: the state and index of adding them one by one; a corrupted full tile: ALARM (tile)"

# ---- fork: the log truncated and regrown -------------------------------------------------
head -n 100 audit.log >forked.log
"$T" gen k.sec forked.log 900 50 - forked
rm -rf pub
"$P" audit publish forked.log pub --key k.sec >/dev/null 2>&1 || fail "publish the fork"
alarm_check 1 'ALARM (fork): FORK' \
    "fork: alarm" --pub k.pub --state st --log-origin "$(sed -n 's/^origin //p' st)"
unchanged "fork"
[ "$(rc "$P" audit included bundle.json --log "$URL" --pub k.pub --state st)" = 1 ] &&
    grep -q 'ALARM (fork)' err || fail "included against a fork: alarm"
ok "fork: ALARM (fork) from monitor and included, exit 1, state unchanged"
