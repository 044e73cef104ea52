#!/usr/bin/python3
"""standin-host.py — a STAND-IN native messaging host, for bringing up the
browser test before `patient-verify --native-host` exists.  It verifies
nothing: it answers each request with a fixture report chosen by the URL's
file name (/modified.html -> fixtures/modified.json), so the test can prove
that the extension <-> host <-> popup path works in real Chromium.

Special pages: /crash.html exits without answering, /slow.html waits 4 s,
/flip.html answers `invalid` the first time and `verified` afterwards
(state in $STANDIN_DIR) to show that a later, weaker answer does not
downgrade `invalid`.  Framing: 4-byte little-endian length + UTF-8 JSON."""
import json
import os
import struct
import sys
import time
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_IN = 1024 * 1024


def read_msg():
    head = sys.stdin.buffer.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack("<I", head)
    if n > MAX_IN:
        sys.exit(1)
    return json.loads(sys.stdin.buffer.read(n).decode("utf-8"))


def write_msg(obj):
    data = json.dumps(obj).encode("utf-8")
    sys.stdout.buffer.write(struct.pack("<I", len(data)) + data)
    sys.stdout.buffer.flush()


def fixture(name, url):
    with open(os.path.join(HERE, "fixtures", name + ".json"), encoding="utf-8") as f:
        rep = json.load(f)
    parts = urlsplit(url)
    rep["url"] = url
    rep["origin"] = "%s://%s" % (parts.scheme, parts.netloc)
    return rep


def answer(req):
    kind, rid, url = req.get("type"), req.get("id"), req.get("url", "")
    if kind == "ping":
        return {"type": "pong", "version": "standin"}
    name = os.path.splitext(os.path.basename(urlsplit(url).path))[0] or "verified"
    if name == "crash":
        sys.exit(3)
    if name == "slow":
        time.sleep(4)
        name = "verified"
    if name == "flip":
        mark = os.path.join(os.environ.get("STANDIN_DIR", "/nonexistent"), "flip.seen")
        if os.path.exists(mark):
            name = "verified"
        else:
            open(mark, "w").close()
            name = "invalid"
    if not os.path.exists(os.path.join(HERE, "fixtures", name + ".json")):
        return {"id": rid, "error": {"code": "standin.no_fixture", "message": "no fixture for " + url}}
    rep = fixture(name, url)
    if kind == "bundle":
        return {"id": rid, "bundle": {"patient": 1, "type": "bundle", "standin": True, "report": rep}}
    return {"id": rid, "report": rep}


def main():
    while True:
        req = read_msg()
        if req is None:
            return
        write_msg(answer(req))


if __name__ == "__main__":
    main()
