#!/usr/bin/env python3
"""A Standard Webhooks receiver for the tests and the demo.

An implementation of Standard Webhooks 1.0 verification that shares no code
with the extension, so a test that passes here checks the wire format against
the specification rather than against itself (spec section 7).

Every request is checked: webhook-id (and that it equals the body's "id"),
webhook-timestamp (integer seconds within --tolerance of now),
content-type application/json, a user-agent starting with "connector/", and
webhook-signature: a space-separated list of "v1,<base64 HMAC-SHA256>" over
id.timestamp.body, valid if any signature matches any --secret.  A request
that fails a check is answered 401; without --secret nothing is verified
and every request is answered by the status script.

Faults for the failure tests: --status-script, --delay, --hang, --reset,
--huge-body.  The status script is a comma-separated list of responses sent
in order to verified requests, then 200 forever:

    200 | 400 | 410 | 500 ...     that status
    429:2, 503:5                  with Retry-After: 2 (5)
    301, 301:https://x/           with a Location header (default /moved)
    hang | reset | huge           no answer / connection reset / 200 with 50 MB

Standard library only.  Usage: receiver.py --port 0 --secret whsec_... --log FILE
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time

HUGE_BODY_BYTES = 50 * 1024 * 1024


def decode_secret(secret):
    """The HMAC key of a whsec_ secret: the base64-decoded bytes after the prefix."""
    if not secret.startswith("whsec_"):
        raise ValueError("secret must start with whsec_")
    return base64.b64decode(secret[len("whsec_"):], validate=True)


def sign(secret, msg_id, timestamp, body):
    """The v1 signature of one message, as a sender puts it in webhook-signature."""
    if isinstance(body, str):
        body = body.encode()
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    mac = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(headers, body, secrets, tolerance=300, now=None):
    """Check one request against the spec; returns (verified, reason).

    headers: dict with lower-cased names; body: the raw bytes.
    """
    now = time.time() if now is None else now
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    for name, value in (("webhook-id", msg_id), ("webhook-timestamp", ts),
                        ("webhook-signature", sigs)):
        if not value:
            return False, "missing " + name
    if headers.get("content-type", "").strip().lower() != "application/json":
        return False, "content-type is not application/json: %r" % headers.get("content-type")
    if not headers.get("user-agent", "").startswith("connector/"):
        return False, "user-agent does not start with connector/: %r" % headers.get("user-agent")
    if not ts.isdigit():
        return False, "webhook-timestamp is not integer seconds: %r" % ts
    if abs(now - int(ts)) > tolerance:
        return False, "webhook-timestamp %s is %d s away from now" % (ts, int(now) - int(ts))
    expected = [sign(s, msg_id, ts, body) for s in secrets]
    matched = False
    for sig in sigs.split(" "):
        if not sig.startswith("v1,"):
            continue			# other versions may follow; they are not ours to judge
        # compare every pair, in constant time per pair
        for e in expected:
            if hmac.compare_digest(sig.encode(), e.encode()):
                matched = True
    if not matched:
        return False, "no valid signature"
    try:
        doc = json.loads(body)
    except ValueError as e:
        return False, "body is not JSON: %s" % e
    if not isinstance(doc, dict) or doc.get("id") != msg_id:
        return False, "webhook-id does not match the body's id"
    return True, "ok"


class StatusScript:
    """The responses to send, in order, then 200 forever; thread-safe."""

    def __init__(self, text, default="200"):
        self.steps = [s.strip() for s in text.split(",") if s.strip()] if text else []
        self.default = default
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            return self.steps.pop(0) if self.steps else self.default


def summarize(doc):
    """One human line per event of a message (a batch holds several)."""
    events = doc.get("data", {}).get("events") if doc.get("type") == "event.batch" else [doc]
    lines = []
    for ev in events or []:
        data = ev.get("data") or {}
        account = (data.get("account") or {})
        ent = (data.get("entitlement") or {})
        origin = (data.get("origin") or {})
        parts = ["%-20s" % ev.get("type")]
        if account:
            parts.append("account=%s" % (account.get("name") or account.get("id")))
        if ent:
            parts.append("entitlement=%s" % (ent.get("name") or ent.get("id")))
        parts.append("via=%s" % origin.get("via"))
        lines.append("  ".join(parts))
    return lines


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "connector-test-receiver"
    protocol_version = "HTTP/1.1"		# keep-alive, as the dispatcher expects

    def setup(self):
        # TLS handshake here, in the request thread, so a slow or broken
        # client never blocks accept()
        if self.server.tls is not None:
            self.request.settimeout(30)
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def log_message(self, fmt, *args):
        pass				# the JSON log says it all

    def read_body(self):
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length", 0)))

    def handle_any(self):
        cfg = self.server.cfg
        received_at = time.time()
        body = self.read_body()
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        if self.command != "POST":
            verified, reason, action = False, "method %s" % self.command, "405"
        elif not cfg.secret:
            verified, reason = False, "no secret configured"
            action = self.server.script.next()
        else:
            verified, reason = verify(headers, body, cfg.secret, cfg.tolerance, received_at)
            action = self.server.script.next() if verified else "401"
        if cfg.hang:
            action = "hang"
        elif cfg.reset:
            action = "reset"
        elif cfg.huge_body:
            action = "huge"
        if cfg.delay:
            time.sleep(cfg.delay)
        # logged before the answer goes out: whoever saw the answer finds the entry
        status = None if action in ("hang", "reset") else 200 if action == "huge" \
            else int(action.partition(":")[0])
        self.server.record({
            "received_at": received_at,
            "method": self.command,
            "path": self.path,
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
            "verified": verified,
            "reason": reason,
            "status": status,
        })
        self.respond(action, reason)
        if verified and cfg.print_events:
            try:
                for line in summarize(json.loads(body)):
                    self.server.say(line)
            except (ValueError, AttributeError):
                pass
        if action == "hang":
            self.server.stopping.wait()		# never answer; the client times out
            self.close_connection = True

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = handle_any

    def respond(self, action, reason):
        """Send the answer an action asks for."""
        if action == "hang":
            return
        if action == "reset":
            # SO_LINGER 0: close sends RST instead of FIN
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if action == "huge":
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(HUGE_BODY_BYTES))
            self.end_headers()
            chunk = b"x" * (1024 * 1024)
            try:
                for _ in range(HUGE_BODY_BYTES // len(chunk)):
                    self.wfile.write(chunk)
            except OSError:
                self.close_connection = True	# the client gave up reading, as it should
            return
        code, _, arg = action.partition(":")
        code = int(code)
        payload = json.dumps({"status": code, "reason": reason}).encode()
        self.send_response(code)
        if code in (429, 503) and arg:
            self.send_header("retry-after", arg)
        if 300 <= code < 400:
            self.send_header("location", arg or "/moved")
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cfg):
        self.cfg = cfg
        self.script = StatusScript(cfg.status_script)
        self.stopping = threading.Event()
        self.log_lock = threading.Lock()
        self.tls = None
        if cfg.tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        super().__init__((cfg.bind, cfg.port), Handler)

    def handle_error(self, request, client_address):
        pass				# resets, timeouts and failed handshakes are test cases here

    def record(self, entry):
        if not self.cfg.log:
            return
        with self.log_lock, open(self.cfg.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def say(self, line):
        with self.log_lock:
            print(line, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Standard Webhooks test receiver")
    p.add_argument("--port", type=int, default=0, help="0: pick a free port and print it")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--secret", action="append", default=[],
                   help="whsec_ secret; repeat for a rotation")
    p.add_argument("--tolerance", type=int, default=300, help="timestamp tolerance, seconds")
    p.add_argument("--log", help="append one JSON line per request")
    p.add_argument("--status-script", default="", help='e.g. "500,500,429:2,200"')
    p.add_argument("--delay", type=float, default=0, help="seconds to wait before answering")
    p.add_argument("--hang", action="store_true", help="accept and never answer")
    p.add_argument("--reset", action="store_true", help="reset the connection, no answer")
    p.add_argument("--huge-body", action="store_true", help="answer 200 with a 50 MB body")
    p.add_argument("--print", dest="print_events", action="store_true",
                   help="print a line for each verified event")
    p.add_argument("--pidfile")
    cfg = p.parse_args(argv)
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        p.error("--tls-cert and --tls-key go together")
    for s in cfg.secret:
        try:
            decode_secret(s)
        except ValueError as e:
            p.error("bad --secret: %s" % e)
    for step in StatusScript(cfg.status_script).steps:
        code = step.partition(":")[0]
        if step not in ("hang", "reset", "huge") and not (code.isdigit() and 100 <= int(code) <= 599):
            p.error("bad --status-script step %r" % step)
    return cfg


def main(argv=None):
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    server = Server(cfg)

    def stop(signum, frame):
        server.stopping.set()

    # ready for signals and with its pidfile before it says its port, so a
    # caller that read the port can stop it at once
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if cfg.pidfile:
        with open(cfg.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
    # the first line of output is the port, for scripts that asked for port 0
    print(server.server_address[1], flush=True)
    loop = threading.Thread(target=server.serve_forever, daemon=True)
    loop.start()
    while not server.stopping.wait(0.2):
        pass
    server.shutdown()
    server.server_close()
    if cfg.pidfile:
        try:
            os.unlink(cfg.pidfile)
        except FileNotFoundError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
