#!/usr/bin/python3
"""Loopback HTTP server for tests/verify_cli.sh.

Serves ROOT/site. A request whose query is "via=NAME" gets the body from
ROOT/NAME/<path> instead, with every "Name: value" line of
ROOT/NAME/<path>.headers added as a response header (a response that went
through a middlebox, or was tampered with); for NAME "short" the body is
64 bytes shorter than its Content-Length says; for NAME "trailer" it is
sent chunked, followed by trailers (a line "HTTP/1.1 200 OK: x", which
starts as a status line does, and a Patient-Change that does not parse). Writes the port it bound to
PORTFILE. Every request's path is appended to ROOT/requests.log, so a test
can show that a request was never made, or made once. A file with a
<path>.hang beside it is never answered: the connection is held 30 s (a
log host that does not answer). Only ever binds 127.0.0.1.
"""
import http.server
import os
import socketserver
import sys
import time
import urllib.parse

ROOT = sys.argv[1]
PORTFILE = sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with open(os.path.join(ROOT, "requests.log"), "a") as f:
            f.write(self.path + "\n")
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        base = q.get("via", ["site"])[0]
        if base not in ("site", "mbox", "mbox2", "tamper", "untrusted", "forged", "signed", "gz", "many",
                        "short", "conf", "bigt", "trailer"):
            base = "site"
        rel = urllib.parse.unquote(u.path).lstrip("/")
        if rel == "" or rel.endswith("/"):
            rel += "index.html"
        path = os.path.realpath(os.path.join(ROOT, base, rel))
        if not path.startswith(os.path.realpath(os.path.join(ROOT, base)) + os.sep) or not os.path.isfile(path):
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if os.path.isfile(path + ".hang"):
            time.sleep(30)
            self.close_connection = True
            return
        with open(path, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if path.endswith(".html") else "application/octet-stream")
        # "short": the body ends (the connection closes) 64 bytes before
        # the length announced, as a transfer cut off does.
        if base == "trailer":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body) + (64 if base == "short" else 0)))
        if base == "short":
            self.close_connection = True
        hp = path + ".headers"
        if os.path.isfile(hp):
            with open(hp) as f:
                for line in f:
                    line = line.strip()
                    if ":" in line:
                        k, v = line.split(":", 1)
                        self.send_header(k.strip(), v.strip())
        self.end_headers()
        if base == "trailer":
            self.wfile.write(b"%x\r\n%s\r\n0\r\nHTTP/1.1 200 OK: x\r\nPatient-Change: garbage\r\n\r\n"
                             % (len(body), body))
            return
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
