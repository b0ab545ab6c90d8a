#!/usr/bin/env python3
"""mock_registry.py -- a scripted OCI registry for test_registry.c.

docker-registry covers the normal protocol; this covers what it cannot be
made to do on demand: bearer-token auth with a token realm, 5xx/429 answers
to retry, a failed upload PUT that must restart the session, relative
Locations with a query string, lying Docker-Content-Digest headers,
oversized and mismatching manifests.

Usage: mock_registry.py PORTFILE [CERT KEY] -- binds 127.0.0.1:0, writes the
port to PORTFILE, serves until killed. With CERT and KEY it serves HTTPS and
also opens a plain-HTTP listener (its port is the second line of PORTFILE)
that records every request it gets and answers 401: the trap a hostile
registry sets with an http:// Location. Behaviour is chosen by the
repository's first path component:

  public/*      anonymous pull tokens are accepted
  flaky/*       every distinct request path fails twice with 503 first
  ratelimit/*   every distinct request path gets one 429 first
  linkrace/*    every manifest PUT is first answered 400 DIGEST_INVALID, as
                docker-registry does while another push rewrites a blob link
  putfail/*     the first blob PUT of each upload fails with 500 and the
                upload session is gone afterwards
  wrongdigest/* blob PUT answers with a wrong Docker-Content-Digest
  big/*         manifest GET returns 4 MiB + 1 bytes
  liar/*        manifest GET returns a body that does not match a digest ref
  accept/*      manifest GET returns the request's Accept header as the body
  downgrade/*   upload POST answers Location: http://<plain listener>/...
  basicdown/*   Basic auth bob:pw (no tokens), and the same http Location
  redirect/*    Basic auth bob:pw; blob GET answers 307 to the plain listener
  stall/*       every PUT (blob or manifest) reads its body and never answers
  *             anything else needs a token got with Basic bob:pw

GET /_stats returns counters as JSON (token requests per scope, uploads, and
"plain": what the plain-HTTP listener received).
"""
import base64
import hashlib
import json
import re
import sys
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
BLOBS = {}        # digest -> bytes
MANIFESTS = {}    # (repo, ref) -> (body, media type)
UPLOADS = {}      # uuid -> repo
FAILS = {}        # path -> times failed so far
STATS = {"token": {}, "posts": 0, "puts": 0, "plain": []}
PLAIN_PORT = [0]  # the plain-HTTP trap listener's port (TLS mode)
GOOD_BASIC = "Basic " + base64.b64encode(b"bob:pw").decode()


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", headers=None, ctype="application/json"):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body or code not in (201, 202, 204):
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, ecode, msg, headers=None):
        body = json.dumps({"errors": [{"code": ecode, "message": msg}]}).encode()
        self.reply(code, body, headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def realm(self):
        scheme = "https" if PLAIN_PORT[0] else "http"
        return "%s://%s/token" % (scheme, self.headers.get("Host"))

    # -- token service --
    def token(self):
        q = self.path.split("?", 1)[1] if "?" in self.path else ""
        params = urllib.parse.parse_qsl(q)
        scopes = sorted(v for k, v in params if k == "scope")
        service = [v for k, v in params if k == "service"]
        key = " ".join(scopes)
        with LOCK:
            STATS["token"][key] = STATS["token"].get(key, 0) + 1
        if service != ["mock"]:
            return self.error(400, "DENIED", "bad service %r" % service)
        auth = self.headers.get("Authorization")
        if auth is None:
            return self.reply(200, json.dumps({"token": "anon"}).encode())
        if auth != GOOD_BASIC:
            return self.error(401, "UNAUTHORIZED", "bad credentials")
        return self.reply(200, json.dumps({"access_token": "tok-ok", "expires_in": 300}).encode())

    def authorized(self, repo):
        auth = self.headers.get("Authorization", "")
        if repo.startswith(("basicdown/", "redirect/")):
            if auth == GOOD_BASIC:
                return True
            self.read_body()
            self.error(401, "UNAUTHORIZED", "authentication required",
                       {"WWW-Authenticate": 'Basic realm="mock"'})
            return False
        if auth == "Bearer tok-ok" or (auth == "Bearer anon" and
                                        (repo == "" or repo.startswith("public/"))):
            return True
        scope = "repository:%s:pull" % repo if repo else ""
        ch = 'Bearer realm="%s",service="mock"' % self.realm()
        if scope:
            ch += ',scope="%s"' % scope
        self.read_body()
        self.error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": ch})
        return False

    def fail_first(self, repo):
        """Scripted transient failures; True when this request was failed."""
        key = self.command + " " + self.path.split("?")[0]
        kind = repo.split("/")[0] if repo else ""
        limit, code, name = {"flaky": (2, 503, "UNAVAILABLE"),
                             "ratelimit": (1, 429, "UNAVAILABLE")}.get(kind, (0, 0, ""))
        if kind == "linkrace" and self.command == "PUT" and "/manifests/" in self.path:
            limit, code, name = 1, 400, "DIGEST_INVALID"
        with LOCK:
            n = FAILS.get(key, 0)
            if n < limit:
                FAILS[key] = n + 1
                self.read_body()
                self.error(code, name, "try again")
                return True
        return False

    def route(self):
        if self.path == "/_stats":
            with LOCK:
                return self.reply(200, json.dumps(STATS).encode())
        if self.path.startswith("/token"):
            return self.token()
        m = re.match(r"^/v2/(.+)/(blobs|manifests)/(uploads/)?([^?]*)(\?.*)?$", self.path)
        m2 = re.match(r"^/upload/([0-9a-f-]+)\?_state=x(&digest=(.+))?$", self.path)
        if self.path == "/v2/":
            if self.authorized(""):
                self.reply(200, b"{}")
            return
        if m2:
            return self.put_upload(m2.group(1), m2.group(3))
        if not m:
            return self.error(404, "NOT_FOUND", "no route")
        repo, kind, uploads, ref, query = m.groups()
        if not self.authorized(repo) or self.fail_first(repo):
            return
        if kind == "blobs" and uploads:
            return self.post_upload(repo)
        if kind == "blobs" and repo.startswith("redirect/"):
            return self.reply(307, b"", {"Location": "http://127.0.0.1:%d/storage/%s" %
                                         (PLAIN_PORT[0], ref)})
        if kind == "blobs":
            b = BLOBS.get(ref)
            if b is None:
                return self.error(404, "BLOB_UNKNOWN", "blob unknown")
            return self.reply(200, b, {"Docker-Content-Digest": ref}, "application/octet-stream")
        return self.manifest(repo, ref)

    def post_upload(self, repo):
        self.read_body()
        u = str(uuid.uuid4())
        with LOCK:
            UPLOADS[u] = repo
            STATS["posts"] += 1
        loc = "/upload/%s?_state=x" % u  # relative, with a query string already
        if repo.split("/")[0] in ("downgrade", "basicdown"):
            loc = "http://127.0.0.1:%d%s" % (PLAIN_PORT[0], loc)
        self.reply(202, b"", {"Location": loc, "Range": "0-0"})

    def put_upload(self, u, digest):
        if self.command != "PUT":
            return self.error(405, "UNSUPPORTED", "method")
        body = self.read_body()
        with LOCK:
            repo = UPLOADS.pop(u, None)
            STATS["puts"] += 1
        if repo is None:
            return self.error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
        if self.headers.get("Authorization") != "Bearer tok-ok":
            return self.error(401, "UNAUTHORIZED", "no token on PUT")
        if repo.startswith("stall/"):
            self.stall()
        if repo.startswith("putfail/") and not getattr(H, "putfail_done", False):
            H.putfail_done = True
            return self.error(500, "UNKNOWN", "storage hiccup")
        if sha(body) != urllib.parse.unquote(digest or ""):
            return self.error(400, "DIGEST_INVALID", "digest mismatch")
        BLOBS[sha(body)] = body
        hdr = sha(body)
        if repo.startswith("wrongdigest/"):
            hdr = sha(b"something else")
        self.reply(201, b"", {"Docker-Content-Digest": hdr, "Location": "/v2/x"})

    def stall(self):
        """A registry that hangs after the request: no reply, ever."""
        with LOCK:
            STATS["stalled"] = STATS.get("stalled", 0) + 1
        threading.Event().wait()

    def manifest(self, repo, ref):
        mt = "application/vnd.oci.image.manifest.v1+json"
        if self.command == "PUT":
            body = self.read_body()
            if repo.startswith("stall/"):
                self.stall()
            MANIFESTS[(repo, ref)] = (body, self.headers.get("Content-Type"))
            MANIFESTS[(repo, sha(body))] = MANIFESTS[(repo, ref)]
            return self.reply(201, b"", {"Docker-Content-Digest": sha(body)})
        if repo.startswith("big/"):
            return self.reply(200, b" " * (4 * 1024 * 1024 + 1), {}, mt)
        if repo.startswith("accept/"):
            return self.reply(200, self.headers.get("Accept", "").encode(), {}, "text/plain")
        if repo.startswith("liar/"):
            return self.reply(200, b'{"schemaVersion":2}', {}, mt)
        got = MANIFESTS.get((repo, ref))
        if got is None:
            return self.error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        return self.reply(200, got[0], {"Docker-Content-Digest": sha(got[0])}, got[1])

    do_GET = do_HEAD = do_POST = do_PUT = route


class Plain(BaseHTTPRequestHandler):
    """The plain-HTTP trap: records what arrives, answers 401."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def trap(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        with LOCK:
            STATS["plain"].append({"method": self.command, "path": self.path.split("?")[0],
                                   "authorization": "Authorization" in self.headers})
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = trap


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    ports = str(srv.server_address[1])
    if len(sys.argv) == 4:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        plain = ThreadingHTTPServer(("127.0.0.1", 0), Plain)
        PLAIN_PORT[0] = plain.server_address[1]
        threading.Thread(target=plain.serve_forever, daemon=True).start()
        ports += "\n%d" % PLAIN_PORT[0]
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(ports)
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
