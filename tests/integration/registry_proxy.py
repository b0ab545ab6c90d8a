#!/usr/bin/env python3
"""registry_proxy.py -- a real registry behind a proxy that can stop answering.

docker-registry cannot be told to hang on one request; a hung registry is
what the interrupt and timeout tests need. This forwards every request to
the real registry BACKEND (Host header kept, so the Locations it returns
point back here) and stalls the ones a rule picks: it reads the request's
body, appends "stalled METHOD PATH" to EVENTS (the test awaits that line,
no sleep), forwards nothing, and never answers. The stalled thread ends
when the client hangs up.

Usage: registry_proxy.py PORTFILE BACKEND EVENTS [--stall-tag REF]
                         [--stall-blob-repo PREFIX]
  --stall-tag REF          stall manifest PUTs to the tag REF (any repo)
  --stall-blob-repo PREFIX stall blob upload PUT/PATCHes in repositories
                           starting with PREFIX
Binds 127.0.0.1:0 and writes the port to PORTFILE; serves until killed.
"""
import argparse
import http.client
import os
import re
import select
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
MANIFEST = re.compile(r"^/v2/(.+)/manifests/([^/?]+)$")
UPLOAD = re.compile(r"^/v2/(.+)/blobs/uploads/")
HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "te",
       "upgrade"}


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def stalled(self):
        path = self.path.split("?")[0]
        m = MANIFEST.match(path)
        if ARGS.stall_tag and self.command == "PUT" and m and m.group(2) == ARGS.stall_tag:
            return True
        m = UPLOAD.match(path)
        return bool(ARGS.stall_blob_repo and self.command in ("PUT", "PATCH") and m
                    and m.group(1).startswith(ARGS.stall_blob_repo))

    def handle_one(self):
        data = self.body()
        if self.stalled():
            with LOCK, open(ARGS.events, "a") as f:
                f.write("stalled %s %s\n" % (self.command, self.path.split("?")[0]))
            # never answer; return once the client has gone
            while True:
                r, _, _ = select.select([self.connection], [], [], 1.0)
                if r and not self.connection.recv(65536):
                    break
            self.close_connection = True
            return
        conn = http.client.HTTPConnection(ARGS.backend, timeout=60)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in HOP and k.lower() != "content-length":
                conn.putheader(k, v)
        if data or self.command in ("PUT", "POST", "PATCH"):
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_one


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("portfile")
    ap.add_argument("backend")
    ap.add_argument("events")
    ap.add_argument("--stall-tag")
    ap.add_argument("--stall-blob-repo")
    ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    with open(ARGS.portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(ARGS.portfile + ".tmp", ARGS.portfile)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
