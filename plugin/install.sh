#!/bin/sh
# plugin/install.sh — install the patient browser extension's native host.
#
# Writes the native messaging host manifest "org.patient.verify.json" where the
# browser looks for it, a small wrapper (patient-native-host) that runs
# `patient-verify --native-host` with the user's policy, and a copy of the
# unpacked extension to load in the browser.
#
# usage: plugin/install.sh [--user | --system] [--browser chromium|chrome|firefox|all]
#                          [--host-path PATIENT_VERIFY] [--prefix DIR]
#                          [--user-data-dir DIR] [--extension-id ID] [--destdir DIR]
#                          [--uninstall] [-n]
#
#   --user            per user, under $HOME (default)
#   --system          for everyone (run as root)
#   --browser B       chromium (default), chrome, firefox, or all
#   --host-path P     the patient-verify program the wrapper runs
#                     (default: patient-verify on PATH, else PREFIX/bin/patient-verify)
#   --prefix DIR      system install prefix for the wrapper and the extension copy
#                     (default /usr/local)
#   --user-data-dir D Chromium started with --user-data-dir=D: put the host
#                     manifest in D/NativeMessagingHosts (used by the browser test)
#   --extension-id ID allow this Chromium extension id as well (e.g. a store build
#                     signed with another key; repeatable)
#   --destdir DIR     stage every file under DIR (packaging); paths written
#                     inside files stay the final ones
#   --uninstall       remove what an install with the same options wrote
#   -n, --dry-run     print what would be written, write nothing
#
# The extension id is pinned by the public "key" in extension/manifest.json:
# id = first 32 hex digits of sha256(DER public key), digits 0-f mapped to a-p.
set -eu

PROG=install.sh
HERE=$(cd "$(dirname "$0")" && pwd)
NAME=org.patient.verify

die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 2; }
say() { printf '%s\n' "$*" >&2; }
usage() { sed -n '/^# usage:/,/^# The extension id/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

scope=user browser=chromium extra_ids= host_path= prefix=/usr/local udd= destdir= uninstall=0 dry=0
while [ $# -gt 0 ]; do
    case $1 in
    --user) scope=user ;;
    --system) scope=system ;;
    --browser) [ $# -ge 2 ] || usage; browser=$2; shift ;;
    --browser=*) browser=${1#*=} ;;
    --host-path) [ $# -ge 2 ] || usage; host_path=$2; shift ;;
    --host-path=*) host_path=${1#*=} ;;
    --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --user-data-dir) [ $# -ge 2 ] || usage; udd=$2; shift ;;
    --user-data-dir=*) udd=${1#*=} ;;
    --extension-id) [ $# -ge 2 ] || usage; extra_ids="$extra_ids $2"; shift ;;
    --extension-id=*) extra_ids="$extra_ids ${1#*=}" ;;
    --destdir) [ $# -ge 2 ] || usage; destdir=$2; shift ;;
    --destdir=*) destdir=${1#*=} ;;
    --uninstall) uninstall=1 ;;
    -n | --dry-run) dry=1 ;;
    -h | --help) usage ;;
    *) say "$PROG: unknown argument: $1"; usage ;;
    esac
    shift
done

case $browser in chromium | chrome | firefox | all) ;; *) die "unknown browser '$browser' (chromium, chrome, firefox, all)" ;; esac
if [ -n "$udd" ] && [ "$browser" != chromium ] && [ "$browser" != chrome ]; then
    die "--user-data-dir is for Chromium / Chrome only"
fi

# Everything written into JSON or sh must be a plain absolute path.
check_path() {
    case $2 in
    /*) ;;
    *) die "$1 must be an absolute path: $2" ;;
    esac
    case $2 in
    *[\"\\\'\`\$\|\&]* | *'
'*) die "$1 contains characters this installer will not quote: $2" ;;
    esac
}

# ------------------------------------------------------------ extension id
manifest=$HERE/extension/manifest.json
[ -r "$manifest" ] || die "missing $manifest"
key=$(sed -n 's/^ *"key": *"\([A-Za-z0-9+/=]*\)",\{0,1\} *$/\1/p' "$manifest")
[ -n "$key" ] || die "no \"key\" in $manifest"
ext_id=$(printf '%s' "$key" | base64 -d | sha256sum | cut -c1-32 | tr 0-9a-f a-p)
gecko_id=$(sed -n 's/.*"gecko": *{ *"id": *"\([^"]*\)".*/\1/p' "$manifest")
[ -n "$gecko_id" ] || die "no gecko id in $manifest"

origins="\"chrome-extension://$ext_id/\""
for id in $extra_ids; do
    printf '%s' "$id" | grep -Eq '^[a-p]{32}$' || die "not a Chromium extension id: $id"
    origins="$origins, \"chrome-extension://$id/\""
done

# ------------------------------------------------------------ where things go
if [ "$scope" = user ]; then
    [ -n "${HOME:-}" ] || die "HOME is not set"
    data=${XDG_DATA_HOME:-$HOME/.local/share}/patient
    host_dir=$data/native-host
else
    data=$prefix/share/patient
    host_dir=$prefix/libexec/patient
fi
check_path "install directory" "$data"
wrapper=$host_dir/patient-native-host
ext_copy=$data/extension
ff_copy=$data/extension-firefox
# Firefox looks for add-ons dropped in here by file name = add-on id (the
# application id is Firefox's); Debian's firefox-esr also reads the system one.
FF_APP='{ec8030f7-c20a-464f-9b0e-13a3a9e97384}'
if [ "$scope" = user ]; then ff_ext_dir=$HOME/.mozilla/extensions/$FF_APP; else ff_ext_dir=/usr/share/mozilla/extensions/$FF_APP; fi

if [ -z "$host_path" ]; then
    if [ "$scope" = system ]; then
        host_path=$prefix/bin/patient-verify
    else
        host_path=$(command -v patient-verify 2>/dev/null || true)
        [ -n "$host_path" ] || host_path=$prefix/bin/patient-verify
    fi
fi
check_path "--host-path" "$host_path"
if [ ! -x "$destdir$host_path" ] && [ "$uninstall" = 0 ]; then
    say "$PROG: warning: $host_path is not (yet) an executable; the host will fail until it is"
fi

manifest_dirs() { # browser -> directories for its host manifest
    case $1:$scope in
    chromium:user) if [ -n "$udd" ]; then echo "$udd/NativeMessagingHosts"; else echo "${XDG_CONFIG_HOME:-$HOME/.config}/chromium/NativeMessagingHosts"; fi ;;
    chrome:user) if [ -n "$udd" ]; then echo "$udd/NativeMessagingHosts"; else echo "${XDG_CONFIG_HOME:-$HOME/.config}/google-chrome/NativeMessagingHosts"; fi ;;
    firefox:user) echo "$HOME/.mozilla/native-messaging-hosts" ;;
    chromium:system) echo /etc/chromium/native-messaging-hosts ;;
    chrome:system) echo /etc/opt/chrome/native-messaging-hosts ;;
    firefox:system) echo /usr/lib/mozilla/native-messaging-hosts ;;
    esac
}
[ -z "$udd" ] || check_path "--user-data-dir" "$udd"

if [ "$browser" = all ]; then browsers="chromium chrome firefox"; else browsers=$browser; fi

run() { # run CMD... (or print it with -n)
    if [ "$dry" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

write_file() { # write_file DEST MODE < content
    if [ "$dry" = 1 ]; then
        printf '+ write %s (mode %s):\n' "$1" "$2"
        sed 's/^/    /'
        return
    fi
    mkdir -p "$(dirname "$1")"
    tmp=$(mktemp "$1.XXXXXX")
    cat >"$tmp"
    chmod "$2" "$tmp"
    mv -f "$tmp" "$1"
}

# ------------------------------------------------------------ uninstall
if [ "$uninstall" = 1 ]; then
    for b in $browsers; do
        run rm -f "$destdir$(manifest_dirs "$b")/$NAME.json"
    done
    run rm -f "$destdir$wrapper"
    run rm -rf "$destdir$ext_copy" "$destdir$ff_copy"
    run rm -f "$destdir$ff_ext_dir/$gecko_id.xpi"
    say "removed the patient native host for: $browsers"
    exit 0
fi

# ------------------------------------------------------------ install
sed "s|@PATIENT_VERIFY@|$host_path|" "$HERE/patient-native-host" | write_file "$destdir$wrapper" 755

run mkdir -p "$destdir$ext_copy"
if [ "$dry" = 1 ]; then
    printf '+ copy %s -> %s\n' "$HERE/extension" "$destdir$ext_copy"
else
    rm -rf "$destdir$ext_copy.new"
    cp -R "$HERE/extension" "$destdir$ext_copy.new"
    rm -rf "$destdir$ext_copy"
    mv "$destdir$ext_copy.new" "$destdir$ext_copy"
    chmod -R u=rwX,go=rX "$destdir$ext_copy"
fi

# Firefox gets its own copy: its manifest (manifest.firefox.json) asks for the
# StreamFilter permissions and host access Chromium's does not need, and the
# same copy zipped as an .xpi in Firefox's add-on folder (loaded when unsigned
# add-ons are allowed: docs/PLUGIN.md).
case " $browsers " in
*" firefox "*)
    if [ "$dry" = 1 ]; then
        printf '+ copy %s -> %s (manifest.firefox.json as manifest.json)\n' "$HERE/extension" "$destdir$ff_copy"
        printf '+ zip %s -> %s\n' "$destdir$ff_copy" "$destdir$ff_ext_dir/$gecko_id.xpi"
    else
        rm -rf "$destdir$ff_copy.new"
        cp -R "$HERE/extension" "$destdir$ff_copy.new"
        mv -f "$destdir$ff_copy.new/manifest.firefox.json" "$destdir$ff_copy.new/manifest.json"
        rm -rf "$destdir$ff_copy"
        mv "$destdir$ff_copy.new" "$destdir$ff_copy"
        chmod -R u=rwX,go=rX "$destdir$ff_copy"
        mkdir -p "$destdir$ff_ext_dir"
        xpi=$(mktemp "$destdir$ff_ext_dir/.xpi.XXXXXX")
        (cd "$destdir$ff_copy" && python3 -c '
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for d, _, fs in sorted(os.walk(".")):
        for f in sorted(fs):
            p = os.path.join(d, f)[2:]
            z.write(p, p)' "$xpi") || { rm -f "$xpi"; die "could not zip the Firefox add-on (python3 missing?)"; }
        chmod 644 "$xpi"
        mv -f "$xpi" "$destdir$ff_ext_dir/$gecko_id.xpi"
    fi
    say "firefox: add-on $ff_ext_dir/$gecko_id.xpi (unpacked: $ff_copy)"
    ;;
esac

for b in $browsers; do
    dir=$(manifest_dirs "$b")
    case $b in firefox) tpl=firefox ;; *) tpl=chromium ;; esac
    sed -e "s|@HOST_PATH@|$wrapper|" -e "s|\"chrome-extension://@EXTENSION_ID@/\"|$origins|" -e "s|@GECKO_ID@|$gecko_id|" \
        "$HERE/hosts/$tpl.json.in" | write_file "$destdir$dir/$NAME.json" 644
    say "$b: host manifest $dir/$NAME.json"
done

say "native host: $wrapper -> $host_path --native-host"
say "extension:   $ext_copy (id $ext_id; Firefox: $gecko_id)"
say "Load it: chromium --load-extension=$ext_copy, or chrome://extensions > Developer mode > Load unpacked."
case " $browsers " in *" firefox "*) say "Firefox: about:config xpinstall.signatures.required=false, then enable it in about:addons (docs/PLUGIN.md)." ;; esac
