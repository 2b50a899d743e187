"""Shared pieces of the SCIM suite and the fuzzer: an HTTP client on
http.client with keep-alive and TLS verification against the test CA, the
tokens file, psql calls, and a small test runner that prints one line per
check ("ok - ..." / "not ok - ...") and a summary.

Standard library only.
"""

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import traceback
import urllib.parse

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCHOP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SPC = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


class Response:
    """One HTTP answer: status, headers (lower-case names), raw body, JSON."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self._json = None
        self._parsed = False

    @property
    def json(self):
        if not self._parsed:
            self._parsed = True
            try:
                self._json = json.loads(self.body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                self._json = None
        return self._json

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.body[:600].decode("utf-8", "replace"))


class Client:
    """A keep-alive connection to the gateway for one token (or none)."""

    def __init__(self, url, token=None, app=None, ca=None, timeout=30, context=None):
        u = urllib.parse.urlsplit(url)
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port
        self.token = token
        self.app = app
        self.timeout = timeout
        if context is None and self.scheme == "https":
            context = ssl.create_default_context(cafile=ca or os.environ.get("SCIM_CA"))
        self.context = context
        self.conn = None

    def connect(self):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def path(self, rest, **query):
        """/scim/v2/<app>/<rest>?query, values percent-encoded."""
        p = "/scim/v2/%s/%s" % (urllib.parse.quote(self.app, safe=""), rest)
        q = [(k, v) for k, v in query.items() if v is not None]
        if q:
            p += "?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote)
        return p

    def request(self, method, path, body=None, headers=None, auth=True, raw=False):
        """Send one request; a body that is not bytes is sent as JSON."""
        h = {"Accept": "application/scim+json"}
        if auth and self.token is not None:
            h["Authorization"] = "Bearer " + self.token
        if body is not None and not raw:
            body = json.dumps(body).encode("utf-8")
            h["Content-Type"] = "application/scim+json"
        elif isinstance(body, str):
            body = body.encode("utf-8")
        if headers:
            h.update(headers)
        h = {k: v for k, v in h.items() if v is not None}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self.connect()
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if r.will_close:
                    self.close()
                return Response(r.status, hdrs, data)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                # A keep-alive connection the server closed between requests:
                # retry once on a new one.
                self.close()
                if attempt == 2:
                    raise
            except Exception:
                self.close()
                raise

    def get(self, rest, **query):
        return self.request("GET", self.path(rest, **query))

    def post(self, rest, body, **kw):
        return self.request("POST", self.path(rest), body, **kw)

    def put(self, rest, body, **kw):
        return self.request("PUT", self.path(rest), body, **kw)

    def patch(self, rest, body, **kw):
        return self.request("PATCH", self.path(rest), body, **kw)

    def delete(self, rest, **kw):
        return self.request("DELETE", self.path(rest), **kw)


def load_tokens():
    with open(os.environ["SCIM_TOKENS"]) as f:
        return json.load(f)


def psql(sql, db=None):
    """Run SQL as the superuser of the test cluster; rows as lists of fields."""
    out = subprocess.run(
        ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-F", "\x1f",
         "-d", db or os.environ.get("SCIM_DB", "scim_test"), "-c", sql],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError("psql failed: %s\n%s" % (sql, out.stderr.strip()))
    return [line.split("\x1f") for line in out.stdout.splitlines() if line != ""]


def psql1(sql, db=None):
    rows = psql(sql, db)
    return rows[0][0] if rows else None


def lit(s):
    """An SQL string literal of a test-controlled value."""
    return "'" + str(s).replace("'", "''") + "'"


class Multi:
    """Run each sub-check of a check and report all that fail, so that one
    wrong answer does not hide the next.  A check that then stops on an
    exception still reports the sub-checks that failed before it."""

    current = None

    def __init__(self):
        self.errors = []
        Multi.current = self

    def __call__(self, fn):
        try:
            return fn()
        except Exception as e:
            self.errors.append(str(e) if isinstance(e, AssertionError) else repr(e))

    def done(self):
        Multi.current = None
        if self.errors:
            raise AssertionError("%d sub-checks failed:\n%s" % (
                len(self.errors), "\n".join("- " + x for x in self.errors)))


class Runner:
    """Runs checks in order, prints TAP-like lines, counts."""

    def __init__(self, label):
        self.label = label
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, name, fn, *args):
        t0 = time.monotonic()
        Multi.current = None
        try:
            fn(*args)
        except Exception as e:
            self.failed += 1
            detail = "%s: %s" % (type(e).__name__, e) if not isinstance(e, AssertionError) else str(e)
            m = Multi.current
            if m is not None and m.errors:
                detail = "stopped on: %s\nafter %d failed sub-checks:\n%s" % (
                    detail, len(m.errors), "\n".join("- " + x for x in m.errors))
            Multi.current = None
            tb = traceback.extract_tb(e.__traceback__)
            where = ""
            for fr in reversed(tb):
                if fr.filename.endswith(("scim_test.py", "fuzz.py")):
                    where = " (line %d)" % fr.lineno
                    break
            msg = "not ok - %s: %s%s%s" % (self.label, name, where,
                                            ": " + detail.replace("\n", "\n#   ") if detail else "")
            self.failures.append(name)
            print(msg, flush=True)
            return False
        self.passed += 1
        print("ok - %s: %s (%.1f s)" % (self.label, name, time.monotonic() - t0), flush=True)
        return True

    def summary(self):
        print("# %s: %d passed, %d failed" % (self.label, self.passed, self.failed), flush=True)
        if self.failures:
            print("# failed: " + "; ".join(self.failures), flush=True)
        return 1 if self.failed else 0


def eq(actual, expected, what=""):
    if actual != expected:
        raise AssertionError("%sexpected %r, got %r" % (what + ": " if what else "", expected, actual))


def ok(cond, what):
    if not cond:
        raise AssertionError(what)


def wait_port_closed(sock, timeout):
    """Seconds until the peer closes the socket, or None after timeout."""
    t0 = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - t0 < timeout:
        try:
            data = sock.recv(65536)
            if data == b"" or data:
                return time.monotonic() - t0, data
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0, b""
    return None, b""


if __name__ == "__main__":
    sys.exit("a library of test/scim/scim_test.py and fuzz.py")
