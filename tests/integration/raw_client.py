#!/usr/bin/python3
"""raw_client.py -- a raw archfarm protocol client for the security tests.

It speaks the wire protocol (docs/protocol.md) directly with Debian's
python3-zmq and python3-msgpack, so a test can send an agent what no
well-behaved coordinator would: a crafted context tar with its real digest,
or thousands of random and truncated multipart messages.

  raw_client.py hello   --endpoint E
      HELLO -> WELCOME; prints the WELCOME body as JSON. Exit 0 if answered.
  raw_client.py build   --endpoint E --tar FILE [--job J] [--platform P]
                        [--repository R] [--timeout S]
                        [--base-tar BASE --delta DELTA]
      HELLO, BUILD with FILE's real sha256 and size, CHUNKs as CREDIT allows,
      HEARTBEATs each second; prints every message received as one JSON line
      and the RESULT body last. Exit 0 when a RESULT came, 1 on timeout.
      With --base-tar/--delta, BUILD offers BASE's sha256 as context_base
      and DELTA (any bytes: the tests craft hostile ones) as the delta; the
      CHUNKs carry DELTA when ACCEPT says have_base, else FILE.
  raw_client.py garbage --endpoint E [--count N] [--seed S] [--deadline S]
      Sends N random, truncated, mistyped and oversized multipart messages
      (bounded by --deadline seconds), then checks the agent still answers
      HELLO. Prints a JSON summary. Exit 0 when the agent answered.

Plain TCP only (the agent under test runs --insecure): CURVE cases use the
real coordinator.
"""
import argparse
import hashlib
import json
import os
import random
import sys
import time

import msgpack
import zmq

PROTO = b"ARCHFARM1"
CHUNK = 256 * 1024
COMMANDS = [b"HELLO", b"WELCOME", b"BUILD", b"ACCEPT", b"CREDIT", b"CHUNK", b"LOG",
            b"STATUS", b"RESULT", b"CANCEL", b"HEARTBEAT", b"ERROR"]


def connect(endpoint):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDTIMEO, 5000)
    s.setsockopt(zmq.RCVHWM, 100000)
    s.connect(endpoint)
    return s


def send(s, cmd, body, data=None):
    frames = [PROTO, cmd, msgpack.packb(body, use_bin_type=True)]
    if data is not None:
        frames.append(data)
    s.send_multipart(frames)


def recv(s, timeout_ms):
    """One decoded message (cmd, body) or None on timeout."""
    if not s.poll(timeout_ms):
        return None
    frames = s.recv_multipart()
    if len(frames) < 3 or frames[0] != PROTO:
        return (b"?", {"raw": [f[:40].hex() for f in frames]})
    try:
        body = msgpack.unpackb(frames[2], raw=False)
    except Exception as e:  # a malformed reply is worth seeing, not a crash
        body = {"undecodable": str(e)}
    return (frames[1], body)


def jsonable(cmd, body):
    return json.dumps({"cmd": cmd.decode("ascii", "replace"), "body": body},
                      default=lambda o: repr(o), sort_keys=True)


def hello(s, timeout_s=5.0):
    send(s, b"HELLO", {"version": "0.1.0", "client": "raw-client:%d" % os.getpid()})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = recv(s, 100)
        if m and m[0] == b"WELCOME":
            return m[1]
    return None


def cmd_hello(a):
    s = connect(a.endpoint)
    w = hello(s, a.timeout)
    if w is None:
        print("no WELCOME from %s within %ss" % (a.endpoint, a.timeout), file=sys.stderr)
        return 1
    print(json.dumps(w, sort_keys=True))
    return 0


def cmd_build(a):
    data = open(a.tar, "rb").read()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    s = connect(a.endpoint)
    if hello(s) is None:
        print("no WELCOME from %s" % a.endpoint, file=sys.stderr)
        return 1
    body = {
        "job": a.job, "attempt": 1, "platform": a.platform, "recipe_kind": "native",
        "recipe_path": "archfarm.yaml", "build_args": {}, "context_digest": digest,
        "context_size": len(data), "repository": a.repository, "registry_insecure": True,
        "source_date_epoch": 0, "timeout_s": int(a.timeout)}
    delta = None
    if a.base_tar and a.delta:
        base = open(a.base_tar, "rb").read()
        delta = open(a.delta, "rb").read()
        body["context_base"] = "sha256:" + hashlib.sha256(base).hexdigest()
        body["context_delta_size"] = len(delta)
    send(s, b"BUILD", body)
    sent = 0
    credit = 0
    deadline = time.monotonic() + a.timeout
    last_hb = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now - last_hb >= 1.0:
            send(s, b"HEARTBEAT", {"running": 0, "queued": 0})
            last_hb = now
        while credit > 0 and sent < len(data):
            piece = data[sent:sent + CHUNK]
            send(s, b"CHUNK", {"job": a.job, "attempt": 1, "offset": sent}, piece)
            sent += len(piece)
            credit -= 1
        m = recv(s, 200)
        if m is None:
            continue
        cmd, body = m
        if cmd != b"HEARTBEAT":
            print(jsonable(cmd, body), flush=True)
        if cmd == b"ACCEPT" and body.get("job") == a.job and body.get("have_base"):
            data = delta  # the node holds the base: it expects the delta
        if cmd == b"CREDIT" and body.get("job") == a.job:
            credit += int(body.get("credit", 0))
        elif cmd == b"RESULT" and body.get("job") == a.job:
            print(json.dumps(body, sort_keys=True), flush=True)
            return 0
        elif cmd == b"ERROR":
            print("agent answered ERROR: %s" % body, file=sys.stderr)
    print("no RESULT within %ss (sent %d of %d bytes)" % (a.timeout, sent, len(data)),
          file=sys.stderr)
    return 1


# --- garbage ------------------------------------------------------------------

def valid_bodies(rng):
    job = "job%d" % rng.randrange(1000)
    d = "sha256:" + "%064x" % rng.getrandbits(256)
    return [
        (b"HELLO", {"version": "0.1.0", "client": "fuzz"}),
        (b"HEARTBEAT", {"running": 0, "queued": 0}),
        (b"CANCEL", {"job": job, "attempt": 0}),
        (b"CHUNK", {"job": job, "attempt": 1, "offset": 0}),
        (b"BUILD", {"job": job, "attempt": 1, "platform": "linux/amd64",
                    "recipe_kind": "native", "recipe_path": "archfarm.yaml",
                    "context_digest": d, "context_size": 1 << 20,
                    "repository": "127.0.0.1:1/fuzz", "registry_password": "x" * 64}),
        (b"CREDIT", {"job": job, "attempt": 1, "offset": 0, "credit": 4}),
        (b"RESULT", {"job": job, "attempt": 1, "ok": True}),
    ]


def random_obj(rng, depth=0):
    k = rng.randrange(9 if depth < 12 else 5)
    if k == 0:
        return rng.randrange(-2**63, 2**64)
    if k == 1:
        return rng.random() * 1e300
    if k == 2:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(64)))
    if k == 3:
        return "".join(chr(rng.randrange(1, 0x2000)) for _ in range(rng.randrange(40)))
    if k == 4:
        return rng.choice([None, True, False])
    if k in (5, 6):
        return [random_obj(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["job", "attempt", "version", "offset", "platform", "x", ""]):
            random_obj(rng, depth + 1) for _ in range(rng.randrange(4))}


def garbage_message(rng):
    """One hostile multipart message (a list of frames)."""
    kind = rng.randrange(12)
    rb = lambda n: bytes(rng.getrandbits(8) for _ in range(n))  # noqa: E731
    if kind == 0:  # random frames
        return [rb(rng.randrange(0, 200)) for _ in range(rng.randrange(1, 7))]
    if kind == 1:  # right protocol id, random command
        return [PROTO, rb(rng.randrange(0, 16)), rb(rng.randrange(0, 100))]
    if kind in (2, 3, 4):  # a valid body truncated
        cmd, body = rng.choice(valid_bodies(rng))
        packed = msgpack.packb(body, use_bin_type=True)
        frames = [PROTO, cmd, packed[:rng.randrange(len(packed))]]
        if cmd == b"CHUNK":
            frames.append(rb(rng.randrange(1, 64)))
        return frames
    if kind == 5:  # a valid body with a byte flipped (may stay valid: fine)
        cmd, body = rng.choice([b for b in valid_bodies(rng) if b[0] != b"BUILD"])
        packed = bytearray(msgpack.packb(body, use_bin_type=True))
        packed[rng.randrange(len(packed))] ^= 1 << rng.randrange(8)
        return [PROTO, cmd, bytes(packed)]
    if kind == 6:  # mistyped fields
        cmd = rng.choice(COMMANDS)
        return [PROTO, cmd, msgpack.packb(random_obj(rng), use_bin_type=True)]
    if kind == 7:  # absurd declared sizes: map32/array32/str32/bin32 headers
        hdr = rng.choice([b"\xdf", b"\xdd", b"\xdb", b"\xc6"])
        return [PROTO, rng.choice(COMMANDS), hdr + b"\xff\xff\xff\xff" + rb(rng.randrange(8))]
    if kind == 8:  # deep nesting
        depth = rng.randrange(9, 5000)
        return [PROTO, rng.choice(COMMANDS), b"\x91" * depth + b"\xc0"]
    if kind == 9:  # missing or extra frames
        n = rng.randrange(0, 3)
        frames = [PROTO, rng.choice(COMMANDS), msgpack.packb({"version": "x"})][:n + 1]
        return frames + [b""] * rng.randrange(0, 4)
    if kind == 10:  # big body, under ZMQ_MAXMSGSIZE
        return [PROTO, b"HELLO", os.urandom(rng.randrange(256 * 1024, 2 * 1024 * 1024))]
    # kind 11: a CHUNK for a job nobody started, oversized payload
    return [PROTO, b"CHUNK", msgpack.packb({"job": "nojob", "attempt": 1, "offset": 0}),
            os.urandom(rng.randrange(1, 300 * 1024))]


def cmd_garbage(a):
    rng = random.Random(a.seed)
    s = connect(a.endpoint)
    start = time.monotonic()
    deadline = start + a.deadline
    sent = dropped = replies = errors = oversized = 0
    for i in range(a.count):
        if time.monotonic() > deadline:
            break
        if a.oversized and i % (a.count // a.oversized or 1) == a.count // (2 * a.oversized or 2):
            # over ZMQ_MAXMSGSIZE: the agent's libzmq drops the connection
            frames = [PROTO, b"CHUNK", os.urandom(5 * 1024 * 1024)]
            oversized += 1
        else:
            frames = garbage_message(rng)
        try:
            s.send_multipart(frames)
            sent += 1
        except zmq.Again:
            dropped += 1
        while s.poll(0):
            m = s.recv_multipart()
            replies += 1
            if len(m) >= 2 and m[1] == b"ERROR":
                errors += 1
    # whatever is still in flight, then: is it alive and serving?
    while s.poll(200):
        m = s.recv_multipart()
        replies += 1
        if len(m) >= 2 and m[1] == b"ERROR":
            errors += 1
    s.close()
    alive = hello(connect(a.endpoint), 10.0)
    summary = {"sent": sent, "dropped": dropped, "oversized": oversized, "replies": replies,
               "errors": errors, "seconds": round(time.monotonic() - start, 2),
               "alive": alive is not None}
    print(json.dumps(summary, sort_keys=True))
    return 0 if alive is not None else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hello")
    h.add_argument("--endpoint", required=True)
    h.add_argument("--timeout", type=float, default=5.0)
    b = sub.add_parser("build")
    b.add_argument("--endpoint", required=True)
    b.add_argument("--tar", required=True)
    b.add_argument("--job", default="raw-1")
    b.add_argument("--platform", default="linux/amd64")
    b.add_argument("--repository", default="127.0.0.1:1/raw")
    b.add_argument("--timeout", type=float, default=60.0)
    b.add_argument("--base-tar")
    b.add_argument("--delta")
    g = sub.add_parser("garbage")
    g.add_argument("--endpoint", required=True)
    g.add_argument("--count", type=int, default=10000)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--deadline", type=float, default=120.0)
    g.add_argument("--oversized", type=int, default=3,
                   help="messages over ZMQ_MAXMSGSIZE among the COUNT")
    a = p.parse_args()
    return {"hello": cmd_hello, "build": cmd_build, "garbage": cmd_garbage}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
