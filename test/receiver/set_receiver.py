#!/usr/bin/env python3
"""An RFC 8935 push receiver of Security Event Tokens, for the tests.

Shares no code with the extension: every request's body is verified as a
compact JWS against the JWK Set in --jwks (a file holding the output of
connector.jwks(app), read again for each request, so a test can rotate
keys), with python3-cryptography, and its headers are checked: content-type
application/secevent+jwt, accept application/json, and with --auth the
exact Authorization header.  Each request is logged as one JSON line
{"t", "status", "jti", "iss", "aud", "kid", "events", "verified", "reason",
"headers", "body"} to --log.

Answers follow --status-script, a comma-separated list used in order, then
--default (202) for ever:

    202 | 200 | 401 | 410 | 500 ...   that status with an empty body
    400:invalid_key                   400 with {"err": "invalid_key",
                                      "description": "..."} (RFC 8935 2.3)
    hang                              no answer (the sender times out)

While the file --status-file exists and is not empty, its content is the
answer instead (the script waits).

Usage: set_receiver.py --port 0 --log FILE --jwks FILE [--auth VALUE]
Prints its port, serves until SIGTERM.
"""

import argparse
import base64
import http.server
import json
import signal
import sys
import threading
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url_decode(s):
    if "=" in s or "+" in s or "/" in s:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_int(s):
    return int.from_bytes(b64url_decode(s), "big")


def public_key(jwk):
    if jwk["kty"] == "RSA":
        return rsa.RSAPublicNumbers(b64url_int(jwk["e"]), b64url_int(jwk["n"])).public_key()
    if jwk["kty"] == "EC" and jwk["crv"] == "P-256":
        return ec.EllipticCurvePublicNumbers(b64url_int(jwk["x"]), b64url_int(jwk["y"]),
                                             ec.SECP256R1()).public_key()
    raise ValueError("unexpected key type")


def verify(token, jwks):
    """Verify a compact JWS; returns (header, claims) or raises."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    sig = b64url_decode(parts[2])
    if header.get("typ") != "secevent+jwt":
        raise ValueError("typ is not secevent+jwt")
    keys = [k for k in jwks["keys"] if k["kid"] == header.get("kid")]
    if len(keys) != 1:
        raise ValueError("kid %s not in the key set" % header.get("kid"))
    jwk = keys[0]
    if jwk["alg"] != header["alg"]:
        raise ValueError("key does not match the header")
    key = public_key(jwk)
    signing_input = (parts[0] + "." + parts[1]).encode("ascii")
    if header["alg"] == "RS256":
        if key.key_size < 2048:
            raise ValueError("RSA key too short")
        key.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif header["alg"] == "ES256":
        if len(sig) != 64:
            raise ValueError("ES256 signature is not R || S")
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        raise ValueError("unexpected alg %r" % header["alg"])
    return header, claims


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        srv = self.server
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"t": time.time(), "headers": headers, "body": body.decode("utf-8", "replace"),
                 "verified": False, "reason": None}
        try:
            # the jti as sent, verified or not: retries are matched by it
            entry["jti"] = json.loads(b64url_decode(entry["body"].split(".")[1])).get("jti")
        except Exception:  # noqa: BLE001
            entry["jti"] = None
        try:
            if headers.get("content-type") != "application/secevent+jwt":
                raise ValueError("content-type %r" % headers.get("content-type"))
            if headers.get("accept") != "application/json":
                raise ValueError("accept %r" % headers.get("accept"))
            if srv.auth is not None and headers.get("authorization") != srv.auth:
                raise ValueError("authorization %r" % headers.get("authorization"))
            with open(srv.jwks) as f:
                jwks = json.load(f)
            header, claims = verify(entry["body"], jwks)
            entry.update(verified=True, jti=claims.get("jti"), iss=claims.get("iss"),
                         aud=claims.get("aud"), kid=header.get("kid"),
                         events=list(claims.get("events", {}).keys()),
                         event_id=claims.get("jti", "").rsplit(".", 1)[0])
        except Exception as e:  # noqa: BLE001 - any failure is logged, not fatal
            entry["reason"] = "%s: %s" % (type(e).__name__, e)
        forced = None
        if srv.status_file:
            try:
                with open(srv.status_file) as f:
                    forced = f.read().strip() or None
            except FileNotFoundError:
                pass
        with srv.lock:
            if forced:
                answer = forced
            else:
                answer = srv.script.pop(0) if srv.script else srv.default
        entry["status"] = None if answer == "hang" else int(answer.split(":")[0])
        with srv.lock:
            srv.log.write(json.dumps(entry) + "\n")
            srv.log.flush()
        if answer == "hang":
            time.sleep(3600)
            return
        status = int(answer.split(":")[0])
        out = b""
        if ":" in answer:
            out = json.dumps({"err": answer.split(":", 1)[1],
                              "description": "the receiver refused this SET (test)"}).encode()
        self.send_response(status)
        if out:
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", required=True)
    ap.add_argument("--jwks", required=True)
    ap.add_argument("--auth")
    ap.add_argument("--status-script", default="")
    ap.add_argument("--default", default="202")
    ap.add_argument("--status-file")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.log = open(a.log, "a")
    srv.lock = threading.Lock()
    srv.jwks = a.jwks
    srv.auth = a.auth
    srv.script = [s.strip() for s in a.status_script.split(",") if s.strip()]
    srv.default = a.default
    srv.status_file = a.status_file
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
