#!/usr/bin/python3
"""A split-view origin for the browser tests: serves ROOT, except that a
request from a browser (User-Agent with "Mozilla/") for a file that has a
ROOT/FILE.browser twin gets the twin. The verifier (User-Agent patient/...)
gets the file the origin signed, so re-fetching sees a clean page while the
browser renders a tampered one. Any GET of /beacon* is counted (a rendered
tampered page loads one) and the count is served at /beacons; /go/PATH
redirects (302) to /PATH.

usage: split_server.py ROOT PORTFILE
"""
import http.server
import os
import socketserver
import sys
import threading
import urllib.parse

ROOT = os.path.realpath(sys.argv[1])
beacons = 0
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body, ctype="text/html; charset=utf-8"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        global beacons
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path.startswith("/go/"):
            # a redirect to the rest of the path (browsers follow it)
            self.send_response(302)
            self.send_header("Location", path[3:])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/beacons":
            with lock:
                return self.send(200, str(beacons).encode(), "text/plain")
        if path.startswith("/beacon"):
            with lock:
                beacons += 1
            return self.send(200, b"GIF89a", "image/gif")
        rel = path.lstrip("/") or "index.html"
        full = os.path.realpath(os.path.join(ROOT, rel))
        if not full.startswith(ROOT + os.sep) or not os.path.isfile(full):
            return self.send(404, b"not found\n", "text/plain")
        twin = full + ".browser"
        if "Mozilla/" in self.headers.get("User-Agent", "") and os.path.isfile(twin):
            full = twin
        with open(full, "rb") as f:
            body = f.read()
        ctype = "application/json" if full.endswith(".json") else (
            "text/plain" if full.endswith(".minisig") else "text/html; charset=utf-8")
        self.send(200, body, ctype)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
