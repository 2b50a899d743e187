#!/usr/bin/env python3
"""Self-test of the webhook receiver: the Standard Webhooks test vector, then
a real server (started as a process, as the suites start it) classifying
requests sent with urllib, its fault modes, TLS with make-certs.sh, SIGTERM.

    python3 test/receiver/test_receiver.py
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import receiver  # noqa: E402

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"	# 24 bytes


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None				# 3xx surfaces as HTTPError, as for the dispatcher


class Receiver:
    """receiver.py as a child process; the first line it prints is its port."""

    def __init__(self, *args, tls=False):
        self.dir = tempfile.mkdtemp(prefix="receiver-test-")
        self.log = os.path.join(self.dir, "log.jsonl")
        self.pidfile = os.path.join(self.dir, "pid")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "receiver.py"), "--port", "0",
             "--log", self.log, "--pidfile", self.pidfile] + list(args),
            stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.scheme = "https" if tls else "http"

    def url(self, host="127.0.0.1"):
        return "%s://%s:%d/hook" % (self.scheme, host, self.port)

    def entries(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        finally:
            self.proc.stdout.close()
            shutil.rmtree(self.dir, ignore_errors=True)


def post(url, body, headers, timeout=10, context=None):
    """POST and return (status, headers, body); HTTP errors are answers too."""
    req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    handlers = [NoRedirect()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def signed(body, secrets, msg_id="evt_1", ts=None, **override):
    """Headers of a well-formed message signed with each of secrets."""
    ts = int(time.time()) if ts is None else ts
    h = {
        "content-type": "application/json",
        "user-agent": "connector/0.1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(receiver.sign(s, msg_id, ts, body) for s in secrets),
    }
    h.update(override)
    return {k: v for k, v in h.items() if v is not None}


EVENT = json.dumps({"id": "evt_1", "type": "access.granted", "data": {
    "account": {"id": "10", "name": "svc-backup"}, "entitlement": {"id": "7", "name": "db-admin"},
    "origin": {"via": "direct"}}})


class Vector(unittest.TestCase):
    def test_standard_webhooks_vector(self):
        self.assertEqual(receiver.sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY), VECTOR_SIG)

    def test_vector_signature_checked_before_body_id(self):
        h = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS),
             "webhook-signature": VECTOR_SIG, "content-type": "application/json",
             "user-agent": "connector/0.1"}
        body = json.dumps({"id": VECTOR_ID, "test": 2432232314}).encode()
        # the vector's body has no id: its signature passes, then the id check fails
        ok, reason = receiver.verify(h, VECTOR_BODY.encode(), [VECTOR_SECRET], now=VECTOR_TS)
        self.assertEqual((ok, reason), (False, "webhook-id does not match the body's id"))
        ok, reason = receiver.verify(h, body, [VECTOR_SECRET], now=VECTOR_TS)
        self.assertEqual((ok, reason), (False, "no valid signature"))

    def test_bad_secret_refused(self):
        with self.assertRaises(ValueError):
            receiver.decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


class Verification(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.r = Receiver("--secret", VECTOR_SECRET)

    @classmethod
    def tearDownClass(cls):
        cls.r.stop()

    def check(self, body, headers, status, reason):
        got, _, _ = post(self.r.url(), body, headers)
        last = self.r.entries()[-1]
        self.assertEqual((got, last["status"], last["verified"]), (status, status, status == 200))
        self.assertIn(reason, last["reason"])
        return last

    def test_valid(self):
        last = self.check(EVENT, signed(EVENT, [VECTOR_SECRET]), 200, "ok")
        self.assertEqual(last["body"], EVENT)
        self.assertEqual(last["method"], "POST")
        self.assertEqual(last["path"], "/hook")
        self.assertEqual(last["headers"]["webhook-id"], "evt_1")
        self.assertTrue(all(k == k.lower() for k in last["headers"]))

    def test_tampered_body(self):
        h = signed(EVENT, [VECTOR_SECRET])
        self.check(EVENT.replace("db-admin", "viewer"), h, 401, "no valid signature")

    def test_wrong_secret(self):
        self.check(EVENT, signed(EVENT, [OTHER_SECRET]), 401, "no valid signature")

    def test_stale_timestamp(self):
        self.check(EVENT, signed(EVENT, [VECTOR_SECRET], ts=int(time.time()) - 301),
                   401, "away from now")

    def test_future_timestamp(self):
        self.check(EVENT, signed(EVENT, [VECTOR_SECRET], ts=int(time.time()) + 301),
                   401, "away from now")

    def test_timestamp_not_integer(self):
        h = signed(EVENT, [VECTOR_SECRET])
        h["webhook-timestamp"] += ".5"
        self.check(EVENT, h, 401, "not integer seconds")

    def test_rotation_one_of_two_valid(self):
        self.check(EVENT, signed(EVENT, [OTHER_SECRET, VECTOR_SECRET]), 200, "ok")

    def test_rotation_both_invalid(self):
        self.check(EVENT, signed(EVENT, [OTHER_SECRET, OTHER_SECRET]), 401, "no valid signature")

    def test_missing_headers(self):
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            self.check(EVENT, signed(EVENT, [VECTOR_SECRET], **{name: None}), 401, "missing " + name)

    def test_content_type(self):
        self.check(EVENT, signed(EVENT, [VECTOR_SECRET], **{"content-type": "text/plain"}),
                   401, "content-type")

    def test_user_agent(self):
        self.check(EVENT, signed(EVENT, [VECTOR_SECRET], **{"user-agent": "curl/8"}),
                   401, "user-agent")

    def test_id_must_match_body(self):
        self.check(EVENT, signed(EVENT, [VECTOR_SECRET], msg_id="evt_2"), 401,
                   "does not match the body's id")


class SecondSecret(unittest.TestCase):
    def test_receiver_knowing_both_secrets(self):
        r = Receiver("--secret", OTHER_SECRET, "--secret", VECTOR_SECRET)
        try:
            self.assertEqual(post(r.url(), EVENT, signed(EVENT, [VECTOR_SECRET]))[0], 200)
            self.assertEqual(post(r.url(), EVENT, signed(EVENT, [OTHER_SECRET]))[0], 200)
        finally:
            self.assertEqual(r.stop(), 0)


class Faults(unittest.TestCase):
    def test_status_script(self):
        r = Receiver("--secret", VECTOR_SECRET,
                     "--status-script", "500,429:2,301,301:https://elsewhere.example/,410,400")
        try:
            got = []
            for _ in range(8):
                status, headers, _ = post(r.url(), EVENT, signed(EVENT, [VECTOR_SECRET]))
                got.append((status, headers.get("retry-after"), headers.get("location")))
            # an unverified request does not consume the script
            self.assertEqual(post(r.url(), "{}", signed(EVENT, [VECTOR_SECRET]))[0], 401)
            self.assertEqual(post(r.url(), EVENT, signed(EVENT, [VECTOR_SECRET]))[0], 200)
        finally:
            self.assertEqual(r.stop(), 0)
        self.assertEqual(got, [(500, None, None), (429, "2", None), (301, None, "/moved"),
                               (301, None, "https://elsewhere.example/"), (410, None, None),
                               (400, None, None), (200, None, None), (200, None, None)])

    def test_delay(self):
        r = Receiver("--secret", VECTOR_SECRET, "--delay", "0.5")
        try:
            t0 = time.monotonic()
            self.assertEqual(post(r.url(), EVENT, signed(EVENT, [VECTOR_SECRET]))[0], 200)
            self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        finally:
            self.assertEqual(r.stop(), 0)

    def test_hang(self):
        r = Receiver("--secret", VECTOR_SECRET, "--hang")
        try:
            with self.assertRaises((socket.timeout, urllib.error.URLError)):
                post(r.url(), EVENT, signed(EVENT, [VECTOR_SECRET]), timeout=1)
            self.assertEqual(r.entries()[-1]["status"], None)
        finally:
            self.assertEqual(r.stop(), 0)		# a hanging request does not block shutdown

    def test_reset(self):
        r = Receiver("--secret", VECTOR_SECRET, "--reset")
        try:
            with self.assertRaises((ConnectionError, urllib.error.URLError)):
                post(r.url(), EVENT, signed(EVENT, [VECTOR_SECRET]))
        finally:
            self.assertEqual(r.stop(), 0)

    def test_huge_body(self):
        r = Receiver("--secret", VECTOR_SECRET, "--huge-body")
        try:
            status, headers, body = post(r.url(), EVENT, signed(EVENT, [VECTOR_SECRET]))
            self.assertEqual((status, headers["content-length"], len(body)),
                             (200, str(50 * 1024 * 1024), 50 * 1024 * 1024))
        finally:
            self.assertEqual(r.stop(), 0)

    def test_print(self):
        r = Receiver("--secret", VECTOR_SECRET, "--print")
        post(r.url(), EVENT, signed(EVENT, [VECTOR_SECRET]))
        line = r.proc.stdout.readline()
        self.assertEqual(r.stop(), 0)
        self.assertEqual(line.split(), ["access.granted", "account=svc-backup",
                                        "entitlement=db-admin", "via=direct"])

    def test_sigterm_and_pidfile(self):
        r = Receiver()
        try:
            with open(r.pidfile) as f:
                self.assertEqual(int(f.read()), r.proc.pid)
            r.proc.send_signal(signal.SIGTERM)
            self.assertEqual(r.proc.wait(10), 0)
            self.assertFalse(os.path.exists(r.pidfile))
        finally:
            r.stop()


@unittest.skipUnless(shutil.which("openssl"), "openssl CLI not installed")
class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="receiver-certs-")
        subprocess.run([os.path.join(HERE, "make-certs.sh"), cls.certs], check=True)
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.certs, "ca.crt"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def start(self, name):
        return Receiver("--secret", VECTOR_SECRET, tls=True,
                        *("--tls-cert", os.path.join(self.certs, name + ".crt"),
                          "--tls-key", os.path.join(self.certs, name + ".key")))

    def test_server_cert_verifies_for_localhost_and_ip(self):
        r = self.start("server")
        try:
            for host in ("localhost", "127.0.0.1"):
                status, _, _ = post(r.url(host), EVENT, signed(EVENT, [VECTOR_SECRET]),
                                    context=self.ctx)
                self.assertEqual(status, 200)
        finally:
            self.assertEqual(r.stop(), 0)

    def test_wrong_host_cert_fails_verification(self):
        r = self.start("wrong")
        try:
            with self.assertRaises(urllib.error.URLError) as cm:
                post(r.url("localhost"), EVENT, signed(EVENT, [VECTOR_SECRET]), context=self.ctx)
            self.assertIsInstance(cm.exception.reason, ssl.SSLCertVerificationError)
            self.assertIn("Hostname mismatch", str(cm.exception.reason))
            # the receiver survives a failed handshake
            r2 = post(r.url("localhost"), EVENT, signed(EVENT, [VECTOR_SECRET]),
                      context=ssl._create_unverified_context())
            self.assertEqual(r2[0], 200)
        finally:
            self.assertEqual(r.stop(), 0)

    def test_unknown_ca_fails_verification(self):
        r = self.start("server")
        try:
            with self.assertRaises(urllib.error.URLError) as cm:
                post(r.url("localhost"), EVENT, signed(EVENT, [VECTOR_SECRET]),
                     context=ssl.create_default_context())
            self.assertIsInstance(cm.exception.reason, ssl.SSLCertVerificationError)
        finally:
            self.assertEqual(r.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
