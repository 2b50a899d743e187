#!/usr/bin/env python3
"""Fuzz connector-gateway: malformed and mutated SCIM requests (bad JSON, deep
nesting, huge bodies, odd filters, unicode, NUL bytes, bad paths, bad
methods, header abuse, mutations of valid requests) against the "fuzz" app.

Passes when, over all requests: the gateway process never dies, no answer is
a 5xx (the database is up throughout), every well-formed HTTP request gets
an answer, every SCIM error body is a valid RFC 7644 error, and at the end
/healthz answers 200 and a valid request still works.

    fuzz.py --url http://127.0.0.1:PORT [--requests 10000] [--seed N] [--threads 4]

Environment: SCIM_TOKENS, SCIM_DB, SCIM_GATEWAY_PID (see run.sh).
"""

import argparse
import json
import os
import random
import socket
import ssl
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from scimlib import (CORE_GROUP, CORE_USER, ENTERPRISE, ERROR, PATCHOP, Client,  # noqa: E402
                     load_tokens, psql)

APP = "fuzz"
ATTRS = ["userName", "username", "USERNAME", "id", "externalId", "active", "userType",
         "displayName", "name", "name.givenName", "name.familyName", "name.formatted",
         "emails", "emails.value", "emails.type", 'emails[type eq "work"].value',
         "meta.lastModified", "meta.created", "meta", "members", "members.value", "groups",
         ENTERPRISE + ":department", ENTERPRISE + ":manager.value", CORE_USER + ":userName",
         "nosuch", "name.nosuch", "a.b.c.d", "", "\u00fcser", "x" * 300, "$ref", "urn:",
         "emails[", "emails[]", "emails[type eq \"work\"]", "phoneNumbers", "password"]
OPS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "EQ", "Eq", "xx", "==",
       "", "and", "or", "not"]
VALUES = ['"x"', '""', '"\\""', '"\\u0000"', '"\\ud800"', '"%"', '"_"', '"\\\\"', "true",
          "false", "null", "0", "-1", "1e999", "123456789012345678901234567890", "1.5",
          '"2026-01-01T00:00:00Z"', '"not a date"', '"\u00e9\u00e8\U0001F600"', '"' + "y" * 500 + '"',
          '"fuzz-1"', "x", '"unterminated', "[1]", "{}", "'single'", '"\x00"']
WEIRD_STRINGS = ["", " ", "\x00", "a\x00b", "\u0000", "\ud7ff", "\U0001F600" * 50, "\u202e",
                 "x" * 70000, "../../etc/passwd", "%00", "' OR 1=1 --", "\"; DROP TABLE x; --",
                 "\\", "\r\n", "\t", "null", "true", "-0", "1e400", "\u00ff" * 10, "ctk_abc",
                 "<script>", "${jndi:x}", "%s%n%x", "\ufeff"]
STANDARD_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
NUMBERS = [0, -1, 1, 2 ** 31, 2 ** 63, -2 ** 63, 10 ** 30, 1.5, float("1e308"), True, False]


class Fuzzer:
    def __init__(self, url, seed, total, threads):
        self.url = url.rstrip("/")
        u = urllib.parse.urlsplit(self.url)
        self.host, self.port, self.https = u.hostname, u.port, u.scheme == "https"
        self.seed = seed
        self.total = total
        self.threads = threads
        tokens = load_tokens()
        self.token = tokens["fuzz"]["token"]
        self.lock = threading.Lock()
        self.done = 0
        self.failures = []
        self.statuses = {}
        self.noanswer = 0
        self.pid = int(os.environ.get("SCIM_GATEWAY_PID", "0"))
        rows = psql("SELECT id FROM fuzz.users WHERE login <> 'fuzz-keep' ORDER BY id")
        self.user_ids = [r[0] for r in rows] or ["1"]
        self.group_ids = [r[0] for r in psql("SELECT id FROM fuzz.roles ORDER BY id")] or ["1"]

    # ------------------------------------------------------------ generators

    def filt(self, rnd, depth=0):
        k = rnd.random()
        if k < 0.45 or depth > 3:
            op = rnd.choice(OPS)
            if op.lower() == "pr":
                return "%s %s" % (rnd.choice(ATTRS), op)
            return "%s %s %s" % (rnd.choice(ATTRS), op, rnd.choice(VALUES))
        if k < 0.65:
            return "%s %s %s" % (self.filt(rnd, depth + 1), rnd.choice(["and", "or", "AND", "Or", "xor"]),
                                 self.filt(rnd, depth + 1))
        if k < 0.75:
            return "not (%s)" % self.filt(rnd, depth + 1)
        if k < 0.82:
            return "(" * rnd.randint(1, 3) + self.filt(rnd, depth + 1) + ")" * rnd.randint(0, 3)
        if k < 0.88:
            return '%s[%s]' % (rnd.choice(["emails", "members", "name", "x"]), self.filt(rnd, depth + 1))
        if k < 0.92:
            n = rnd.choice([65, 100, 1000, 5000])
            return "(" * n + 'userName eq "a"' + ")" * n
        if k < 0.96:
            return " and ".join('userName eq "%d"' % i for i in range(rnd.choice([10, 200, 2000])))
        s = self.filt(rnd, depth + 1)
        i = rnd.randrange(len(s) + 1)
        return s[:i] + rnd.choice(["\"", "(", ")", "[", "]", " ", "\x00", "\\", "\u00e9", ""]) + s[i:]

    def rand_json(self, rnd, depth=0):
        k = rnd.random()
        if depth > 4 or k < 0.3:
            return rnd.choice(WEIRD_STRINGS[:8] + ["fuzz", "work", "x@y"])
        if k < 0.45:
            return rnd.choice(NUMBERS)
        if k < 0.5:
            return None
        if k < 0.75:
            return [self.rand_json(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
        return {rnd.choice(ATTRS + ["value", "op", "path", "schemas", "Operations"]):
                self.rand_json(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}

    def valid_user(self, rnd):
        n = rnd.randint(0, 10 ** 9)
        return {"schemas": [CORE_USER, ENTERPRISE], "userName": "fz-%d" % n,
                "name": {"givenName": "G", "familyName": "F"},
                "emails": [{"type": "work", "value": "fz%d@example.com" % n, "primary": True}],
                "externalId": "e%d" % n, "active": True, ENTERPRISE: {"department": "D"}}

    def valid_patch(self, rnd):
        ops = [
            {"op": "replace", "path": "active", "value": rnd.choice([True, False, "False", "True"])},
            {"op": "Replace", "path": "name.givenName", "value": "g"},
            {"op": "add", "path": 'emails[type eq "work"].value', "value": "p@example.com"},
            {"op": "remove", "path": "name.familyName"},
            {"op": "replace", "value": {"active": True, "name.givenName": "h"}},
            {"op": "replace", "path": ENTERPRISE + ":department", "value": "E"},
        ]
        return {"schemas": [PATCHOP], "Operations": rnd.sample(ops, rnd.randint(1, 3))}

    def valid_group_patch(self, rnd):
        uid = rnd.choice(self.user_ids)
        ops = [
            {"op": "add", "path": "members", "value": [{"value": uid}]},
            {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": uid}]},
            {"op": "remove", "path": 'members[value eq "%s"]' % uid},
            {"op": "replace", "path": "members", "value": [{"value": uid}]},
        ]
        return {"schemas": [PATCHOP], "Operations": [rnd.choice(ops)]}

    def mutate(self, rnd, obj, depth=0):
        """A random change somewhere inside a JSON value."""
        if isinstance(obj, dict) and obj and rnd.random() < 0.8:
            key = rnd.choice(list(obj))
            k = rnd.random()
            obj = dict(obj)
            if k < 0.2:
                del obj[key]
            elif k < 0.3:
                obj[rnd.choice(ATTRS)] = self.rand_json(rnd)
            elif k < 0.4:
                obj[key.upper() if rnd.random() < 0.5 else key + "\x00"] = obj.pop(key)
            else:
                obj[key] = self.mutate(rnd, obj[key], depth + 1)
            return obj
        if isinstance(obj, list) and obj and rnd.random() < 0.8:
            obj = list(obj)
            i = rnd.randrange(len(obj))
            k = rnd.random()
            if k < 0.2:
                del obj[i]
            elif k < 0.35:
                obj.append(obj[i])
            elif k < 0.45:
                obj = obj * rnd.choice([2, 50])
            else:
                obj[i] = self.mutate(rnd, obj[i], depth + 1)
            return obj
        return self.rand_json(rnd)

    def body_bytes(self, rnd, obj):
        """JSON text of obj, sometimes damaged."""
        try:
            s = json.dumps(obj, ensure_ascii=rnd.random() < 0.5, allow_nan=True)
        except (ValueError, OverflowError):
            s = "{}"
        b = s.encode("utf-8", "surrogatepass")
        k = rnd.random()
        if k < 0.55:
            return b
        if k < 0.65:
            return b[:rnd.randrange(len(b) + 1)]
        if k < 0.72:
            i = rnd.randrange(len(b) + 1)
            return b[:i] + bytes([rnd.randrange(256)]) + b[i:]
        if k < 0.77:
            return b.replace(b'"', b"'", 1)
        if k < 0.82:
            return b + b"," + b
        if k < 0.86:
            return b.replace(b":", b"\x00:", 1)
        if k < 0.9:
            return b"\xef\xbb\xbf" + b
        if k < 0.94:
            return b.decode("utf-8", "replace").encode("utf-16")
        return b[: len(b) // 2] + b"\xc3\x28" + b[len(b) // 2:]

    def deep(self, rnd):
        n = rnd.choice([100, 1000, 10000, 100000, 400000])
        kind = rnd.random()
        if kind < 0.4:
            return b"[" * n + b"]" * n
        if kind < 0.8:
            return b'{"a":' * n + b"1" + b"}" * n
        return (b'{"schemas":["%s"],"Operations":[{"op":"add","path":"name","value":' % PATCHOP.encode()
                + b'{"a":' * n + b"1" + b"}" * n + b"}]}")

    def huge(self, rnd):
        size = rnd.choice([100000, 900000, 1048576, 1048577, 2000000])
        k = rnd.random()
        if k < 0.5:
            return json.dumps({"schemas": [CORE_USER], "userName": "h" * size}).encode()
        if k < 0.75:
            return json.dumps({"schemas": [CORE_USER], "userName": "hh",
                               "emails": [{"type": "work", "value": "e"}] * (size // 30)}).encode()
        return b" " * size + b"{}"

    def request(self, rnd):
        """(method, path, headers, body, well_formed_http) for one case."""
        users = "/scim/v2/%s/Users" % APP
        groups = "/scim/v2/%s/Groups" % APP
        uid = rnd.choice(self.user_ids)
        gid = rnd.choice(self.group_ids)
        auth = {"Authorization": "Bearer " + self.token}
        ct = {"Content-Type": rnd.choice(["application/scim+json", "application/json",
                                          "application/scim+json; charset=utf-8"])}
        k = rnd.random()
        if k < 0.14:			# mutated valid requests
            which = rnd.random()
            if which < 0.35:
                return ("POST", users, {**auth, **ct},
                        self.body_bytes(rnd, self.mutate(rnd, self.valid_user(rnd))), True)
            if which < 0.5:
                return ("PUT", users + "/" + uid, {**auth, **ct},
                        self.body_bytes(rnd, self.mutate(rnd, self.valid_user(rnd))), True)
            if which < 0.8:
                return ("PATCH", users + "/" + uid, {**auth, **ct},
                        self.body_bytes(rnd, self.mutate(rnd, self.valid_patch(rnd))), True)
            return ("PATCH", groups + "/" + gid, {**auth, **ct},
                    self.body_bytes(rnd, self.mutate(rnd, self.valid_group_patch(rnd))), True)
        if k < 0.26:			# odd filters
            q = {"filter": self.filt(rnd)}
            if rnd.random() < 0.3:
                q["count"] = str(rnd.choice(["0", "-1", "1000", "1001", "abc", "", "1e3", "99999999999999999999"]))
            if rnd.random() < 0.2:
                q["startIndex"] = str(rnd.choice(["0", "-5", "1", "2147483648", "x"]))
            if rnd.random() < 0.1:
                q["cursor"] = rnd.choice(["", "abc", "\x00", "=" * 100])
            if rnd.random() < 0.15:
                q[rnd.choice(["attributes", "excludedAttributes"])] = ",".join(
                    rnd.choice(ATTRS) for _ in range(rnd.randint(1, 5)))
            try:
                qs = urllib.parse.urlencode(q, quote_via=urllib.parse.quote)
            except UnicodeEncodeError:
                qs = urllib.parse.urlencode({"filter": "userName eq \"x\""})
            path = rnd.choice([users, groups]) + "?" + qs
            return ("GET", path, auth, None, True)
        if k < 0.36:			# bad JSON bodies on every write
            method, path = rnd.choice([("POST", users), ("PUT", users + "/" + uid),
                                       ("PATCH", users + "/" + uid), ("POST", groups),
                                       ("PATCH", groups + "/" + gid), ("PUT", groups + "/" + gid)])
            body = self.body_bytes(rnd, self.rand_json(rnd))
            return (method, path, {**auth, **ct}, body, True)
        if k < 0.41:			# deep nesting
            method, path = rnd.choice([("POST", users), ("PATCH", users + "/" + uid),
                                       ("POST", groups)])
            return (method, path, {**auth, **ct}, self.deep(rnd), True)
        if k < 0.43:			# huge bodies
            return ("POST", rnd.choice([users, groups]), {**auth, **ct}, self.huge(rnd), True)
        if k < 0.55:			# bad paths and queries
            tail = rnd.choice([
                "", "/", "/Users/" + rnd.choice(WEIRD_STRINGS[:13]), "/Users/%00", "/Users/%zz",
                "/Users/" + uid + "/extra", "/Users/-1", "/Users/99999999999999999999",
                "/Users/1.5", "/Users/%2e%2e", "/Groups/abc", "/Groups/" + "9" * 50,
                "/ResourceTypes/" + "x" * 2000, "/Schemas/%ff", "/Users?" + "a=1&" * 500,
                "/Users?filter=%", "/Users?filter", "/Users?count=&count=5", "/.well-known",
                "/Users/" + "\u00e9", "/users", "/USERS", "/Me", "/Bulk", "/Users/.search",
                "/ServiceProviderConfig/x", "/Users?attributes=" + "a," * 1000,
                "/Users?startIndex=1&startIndex=2", "/Users#frag", "/Users;x=1",
            ])
            prefix = rnd.choice(["/scim/v2/" + APP, "/scim/v2/" + APP, "/scim/v2/%00",
                                 "/scim/v2/" + "a" * 300, "/scim/v2/fu%7Azz", "/scim/v2//",
                                 "/scim/v1/" + APP, "/scim/v2/" + APP + "/..", "", "/scim",
                                 "/scim/v2/\u00e9", "//scim/v2/" + APP, "/healthz"])
            path = urllib.parse.quote(prefix + tail, safe="/?=&%#;.,:")
            method = rnd.choice(["GET", "GET", "DELETE", "POST", "PATCH", "PUT"])
            body = self.body_bytes(rnd, self.valid_user(rnd)) if method in ("POST", "PUT", "PATCH") else None
            return (method, path, {**auth, **ct}, body, True)
        if k < 0.63:			# methods
            method = rnd.choice(["TRACE", "OPTIONS", "HEAD", "CONNECT", "PROPFIND", "FOO", "get",
                                 "DELETE", "PUT", "PATCH", "POST", "GET"])
            path = rnd.choice([users, users + "/" + uid, groups, groups + "/" + gid,
                               "/scim/v2/%s/ServiceProviderConfig" % APP,
                               "/scim/v2/%s/Schemas" % APP, "/scim/v2/%s/ResourceTypes" % APP,
                               "/healthz", "/"])
            body = None
            if method in ("PUT", "PATCH", "POST") and rnd.random() < 0.7:
                body = b"{}"
            well = method not in ("CONNECT", "get")
            return (method, path, auth, body, well)
        if k < 0.78:			# header abuse (raw)
            return ("RAW", self.raw_headers(rnd, users, uid), None, None, False)
        if k < 0.86:			# auth variants
            a = rnd.choice(["Bearer", "Bearer ", "Bearer " + self.token + "\x00",
                            "Bearer " + self.token[:-1], "bearer " + self.token,
                            "Basic " + self.token, "Bearer " + "ctk_" + "A" * 5000,
                            "Bearer " + self.token + " extra", "Bearer \u00e9",
                            "Token " + self.token, "", "Bearer " + "ctk_" * 1000])
            h = {"Authorization": a} if a else {}
            return ("GET", users + "?count=1", h, None, "\x00" not in a and "\u00e9" not in a)
        if k < 0.93:			# unicode and NUL inside otherwise valid bodies
            b = self.valid_user(rnd)
            where = rnd.choice(["userName", "externalId", "name"])
            s = rnd.choice(WEIRD_STRINGS)
            if where == "name":
                b["name"] = {"givenName": s}
            else:
                b[where] = b[where] + s if rnd.random() < 0.5 else s
            method, path = rnd.choice([("POST", users), ("PUT", users + "/" + uid)])
            return (method, path, {**auth, **ct}, self.body_bytes(rnd, b), True)
        # If-Match and other conditional headers
        v = rnd.choice(['W/"0"', '"x"', "*", "", "W/", 'W/"' + "f" * 1000 + '"', "\x01",
                        'W/"abc", W/"def"'])
        method = rnd.choice(["PATCH", "PUT", "DELETE", "GET"])
        body = None
        if method == "PATCH":
            body = self.body_bytes(rnd, self.valid_patch(rnd))
        elif method == "PUT":
            body = self.body_bytes(rnd, self.valid_user(rnd))
        h = {**auth, **ct, rnd.choice(["If-Match", "If-None-Match"]): v}
        return (method, users + "/" + uid, h, body, "\x01" not in v)

    def raw_headers(self, rnd, users, uid):
        auth = "Authorization: Bearer %s\r\n" % self.token
        target = users + "?count=1"
        k = rnd.randrange(20)
        if k == 0:
            return b"GET %s HTTP/1.1\r\n%s\r\n" % (target.encode(), auth.encode())	# no Host
        if k == 1:
            return b"GET %s HTTP/1.1\r\nHost: x\r\n%s%s\r\n" % (target.encode(), auth.encode(), auth.encode())
        if k == 2:
            return b"GET %s HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n%s\r\n" % (
                target.encode(), b"a" * rnd.choice([8000, 70000, 300000]), auth.encode())
        if k == 3:
            return (b"GET %s HTTP/1.1\r\nHost: x\r\n" % target.encode()
                    + b"".join(b"X-H%d: v\r\n" % i for i in range(rnd.choice([100, 2000])))
                    + auth.encode() + b"\r\n")
        body = b'{"schemas":["%s"],"userName":"raw-%d"}' % (CORE_USER.encode(), rnd.randrange(10 ** 9))
        if k == 4:		# Content-Length shorter than the body, the rest a second request
            return (b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/scim+json\r\n"
                    b"Content-Length: 5\r\n\r\n%s" % (users.encode(), auth.encode(), body))
        if k == 5:
            return (b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: -1\r\n\r\n%s"
                    % (users.encode(), auth.encode(), body))
        if k == 6:
            return (b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: abc\r\n\r\n%s"
                    % (users.encode(), auth.encode(), body))
        if k == 7:
            return (b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
                    % (users.encode(), auth.encode(), len(body), len(body), body))
        if k == 8:
            return (b"POST %s HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\n"
                    b"zz\r\n%s\r\n0\r\n\r\n" % (users.encode(), auth.encode(), body))
        if k == 9:
            return (b"POST %s HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: gzip\r\n\r\n%s"
                    % (users.encode(), auth.encode(), body))
        if k == 10:
            return b"GET %s HTTP/2.0\r\nHost: x\r\n%s\r\n" % (target.encode(), auth.encode())
        if k == 11:
            return b"GET %s HTTP/1.0\r\n%s\r\n" % (target.encode(), auth.encode())
        if k == 12:
            return bytes(rnd.randrange(256) for _ in range(rnd.choice([10, 300, 5000])))
        if k == 13:
            return b"GET %s\r\n\r\n" % target.encode()
        if k == 14:
            return b"GET  %s  HTTP/1.1\r\nHost: x\r\n%s\r\n" % (target.encode(), auth.encode())
        if k == 15:
            return b"GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\x00b\r\n\r\n" % target.encode()
        if k == 16:
            return b"GET %s HTTP/1.1\r\nHost: x\r\n Folded: y\r\n%s\r\n" % (target.encode(), auth.encode())
        if k == 17:
            return b"GET %s HTTP/1.1\nHost: x\n%s\n" % (target.encode(), auth.encode().replace(b"\r", b""))
        if k == 18:
            return (b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (target.encode(), auth.encode())) * 20
        return (b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: \x00\xff\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (users.encode(), auth.encode(), len(body), body))

    # ------------------------------------------------------------ sending

    def connect(self):
        s = socket.create_connection((self.host, self.port), timeout=15)
        if self.https:
            ctx = ssl.create_default_context(cafile=os.environ.get("SCIM_CA"))
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        return s

    def send(self, case):
        """Send one case on a new connection; the statuses of the answers."""
        method, path, headers, body, _ = case
        if method == "RAW":
            data = path
        else:
            lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1", "Connection: close"]
            for k, v in headers.items():
                lines.append("%s: %s" % (k, v))
            if body is not None:
                lines.append("Content-Length: %d" % len(body))
            data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass") + (body or b"")
        s = self.connect()
        try:
            try:
                s.sendall(data)
                if method == "RAW" and not self.https:
                    # a raw request may be incomplete: end it so the
                    # gateway sees the end of the stream
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            buf = b""
            s.settimeout(20)
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    return None, buf, "timeout"
                except (ssl.SSLError, OSError):
                    break
                if not chunk:
                    break
                buf += chunk
            return self.parse(buf, method == "HEAD"), buf, None
        finally:
            s.close()

    @staticmethod
    def parse(buf, head):
        """[(status, content-type, body)] of the answers in buf."""
        out = []
        while buf.startswith(b"HTTP/"):
            hdr, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                break
            lines = hdr.decode("latin-1").split("\r\n")
            try:
                status = int(lines[0].split()[1])
            except (IndexError, ValueError):
                break
            h = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                h[k.strip().lower()] = v.strip()
            n = 0 if head or status in (204, 304) else int(h.get("content-length", "0") or 0)
            out.append((status, h.get("content-type", ""), rest[:n]))
            buf = rest[n:]
        return out

    def judge(self, case, answers, raw, problem):
        method, path, headers, body, well = case
        what = None
        if problem == "timeout":
            what = "no answer and no close within 20 s"
        elif answers is None or (not answers and well):
            what = "no answer to a well-formed request (%r)" % raw[:100]
        else:
            for status, ct, b in answers:
                with self.lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 501 and method not in STANDARD_METHODS:
                    continue		# RFC 9110 section 15.6.2: an unknown method
                if status == 505 and method == "RAW" and b" HTTP/2.0\r\n" in path:
                    continue		# RFC 9110 section 15.6.6: HTTP/2.0 in an HTTP/1 request line
                if status >= 500:
                    what = "HTTP %d: %r" % (status, b[:300])
                    break
                if status >= 400 and "scim+json" in ct.lower() and method != "HEAD":
                    try:
                        j = json.loads(b)
                        if ERROR not in j.get("schemas", []) or j.get("status") != str(status):
                            what = "malformed SCIM error: %r" % b[:300]
                    except ValueError:
                        what = "an error body that is not JSON: %r" % b[:300]
        if not answers:
            with self.lock:
                self.noanswer += 1
        if what:
            desc = "%s %s %r body %r" % (method, (path if isinstance(path, str) else path[:200]),
                                         {k: str(v)[:80] for k, v in (headers or {}).items()
                                          if k != "Authorization"},
                                         (body or b"")[:200])
            with self.lock:
                self.failures.append("%s -- %s" % (what, desc[:700]))

    def alive(self):
        if self.pid:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            try:
                with open("/proc/%d/stat" % self.pid) as f:
                    if f.read().split()[2] == "Z":
                        return False
            except OSError:
                return False
        return True

    def worker(self, k, n):
        rnd = random.Random(self.seed * 1000 + k)
        for i in range(n):
            case = self.request(rnd)
            method, path, headers, body, well = case
            if (body is not None and len(body) >= 1000000) or len(path) > 8000:
                # over the body limit or the URL buffer: the gateway may answer
                # and close while we still send, and the reset can destroy the
                # answer before we read it; only a crash counts here
                case = (method, path, headers, body, False)
            try:
                answers, raw, problem = self.send(case)
            except (OSError, ssl.SSLError) as e:
                answers, raw, problem = None, b"", None
                if not self.alive():
                    with self.lock:
                        self.failures.append("the gateway died at %r: %r" % (case[:2], e))
                    return
                if case[4]:
                    with self.lock:
                        self.failures.append("connect/send failed: %r on %r" % (e, case[:2]))
                continue
            self.judge(case, answers, raw, problem)
            with self.lock:
                self.done += 1
            if i % 250 == 0 and not self.alive():
                with self.lock:
                    self.failures.append("the gateway died (after %d requests)" % self.done)
                return

    def run(self):
        t0 = time.monotonic()
        per = [self.total // self.threads + (1 if k < self.total % self.threads else 0)
               for k in range(self.threads)]
        ths = [threading.Thread(target=self.worker, args=(k, per[k])) for k in range(self.threads)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        took = time.monotonic() - t0
        print("# fuzz: %d requests in %.0f s (seed %d); statuses %s; %d without an answer"
              % (self.done, took, self.seed, dict(sorted(self.statuses.items())), self.noanswer),
              flush=True)
        status = 0

        def report(ok_, name, detail=""):
            nonlocal status
            if ok_:
                print("ok - fuzz: %s" % name, flush=True)
            else:
                status = 1
                print("not ok - fuzz: %s%s" % (name, (": " + detail) if detail else ""), flush=True)

        report(self.done >= self.total * 0.99, "%d of %d requests sent" % (self.done, self.total))
        report(self.alive(), "the gateway process is alive")
        # a few of each kind, so that one frequent failure does not hide the rest
        kinds = {}
        for f in self.failures:
            kinds.setdefault(f.split(" -- ")[0][:40], []).append(f)
        shown = "\n#   ".join(x for fs in kinds.values() for x in fs[:3])
        report(not self.failures, "no 5xx, no crash, every answer well-formed",
               "%d failures, first ones:\n#   %s" % (len(self.failures), shown))
        try:
            h = Client(self.url, timeout=10).request("GET", "/healthz", auth=False)
            report(h.status == 200, "/healthz 200 at the end", repr(h))
            c = Client(self.url, self.token, APP, timeout=10)
            r = c.get("Users", filter='userName eq "fuzz-keep"')
            report(r.status == 200 and r.json and r.json.get("totalResults") == 1,
                   "a valid request works at the end", repr(r))
            r = c.post("Users", {"schemas": [CORE_USER], "userName": "after-fuzz-%d" % self.seed})
            report(r.status == 201, "a valid write works at the end", repr(r))
        except Exception as e:
            report(False, "the gateway answers at the end", repr(e))
        return status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SCIM_FUZZ_SEED", "0")) or
                    random.randrange(1, 10 ** 6))
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    return Fuzzer(a.url, a.seed, a.requests, a.threads).run()


if __name__ == "__main__":
    sys.exit(main())
