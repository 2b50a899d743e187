#!/usr/bin/env python3
"""The SCIM suite of connector-gateway (spec section 11), written from RFC
7643, RFC 7644, RFC 9865 and the requests Entra ID, Okta, SailPoint and
midPoint send, against a running gateway and the database behind it.

    scim_test.py --url http://127.0.0.1:PORT --run LABEL [--db-restart] [--tls-checks]
    scim_test.py --healthz URL          exit 0 when GET /healthz answers 200

Environment (set by test/scim/run.sh): SCIM_TOKENS (the tokens file),
SCIM_DB (the database), SCIM_CA (the test CA for https), SCIM_GATEWAY_PID,
SCIM_DB_STOP / SCIM_DB_START (commands that stop and start the cluster),
SCIM_CERTS / SCIM_LIVE_CERT / SCIM_LIVE_KEY (the TLS reload check),
SCIM_EXTRA_TOKENS (a file where tokens made here are recorded, so that the
runner can check the log never shows them).

Expected statuses and scimTypes where the RFCs leave a choice (each is one
line of ERRORS below, so that a change of mind is a one-line change):
RFC 7644 section 3.12 names invalidSyntax for a body that does not conform
to the request schema (bad JSON, an unknown PATCH op, an empty Operations
list), invalidValue for a missing required value or a value of the wrong
type, mutability for an attempt to change a readOnly attribute (id, meta,
groups), invalidPath / noTarget for PATCH paths, invalidFilter for filters;
section 3.4.2.4 says a count below 0 is 0 and a startIndex below 1 is 1.
"""

import argparse
import datetime
import json
import os
import random
import re
import signal
import socket
import ssl
import string
import subprocess
import sys
import threading
import time
import uuid
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from scimlib import (CORE_GROUP, CORE_USER, ENTERPRISE, ERROR, LIST, PATCHOP,  # noqa: E402
                     RESOURCE_TYPE, SCHEMA, SPC, Client, Multi, Response, Runner, eq, load_tokens, lit,
                     ok, psql, psql1, wait_port_closed)

ERRORS = {
    "bad_json": (400, "invalidSyntax"),
    "unknown_op": (400, "invalidSyntax"),
    "empty_operations": (400, "invalidSyntax"),
    "readonly_path": (400, "mutability"),
    "wrong_type": (400, "invalidValue"),
    "missing_username": (400, "invalidValue"),
    "put_changes_id": (400, "mutability"),
    "bad_path": (400, "invalidPath"),
    "remove_no_path": (400, "noTarget"),
    "duplicate": (409, "uniqueness"),
    "filter": (400, "invalidFilter"),
    "cursor": (400, "invalidCursor"),
    "too_large": (413, None),
    "forbidden": (403, None),
    "unauthorized": (401, None),
    "not_found": (404, None),
    "precondition": (412, None),
    "unavailable": (503, None),
}

SQL_LEAKS = ("SELECT ", "SQLSTATE", "ERROR:", "LINE 1", "connector.scim_", "pg_catalog",
             "violates", "duplicate key")

T = None		# the test context, set in main()


class Ctx:
    pass


# ---------------------------------------------------------------- helpers

def err(r, kind, detail_has=None):
    """r is the SCIM error of ERRORS[kind] (RFC 7644 section 3.12)."""
    status, scim_type = ERRORS[kind]
    eq(r.status, status, "status of %s (%r)" % (kind, r))
    if status == 413 and not r.body:
        return
    ct = (r.header("content-type") or "").lower()
    ok(ct.startswith("application/scim+json"), "error content-type %r" % ct)
    j = r.json
    ok(isinstance(j, dict), "error body is not a JSON object: %r" % r)
    ok(ERROR in (j.get("schemas") or []), "error schemas: %r" % j)
    eq(j.get("status"), str(status), "error 'status' (a string)")
    if scim_type is not None:
        eq(j.get("scimType"), scim_type, "scimType")
    detail = j.get("detail")
    ok(isinstance(detail, str) and detail.strip(), "error without a detail: %r" % j)
    for leak in SQL_LEAKS:
        ok(leak.lower() not in detail.lower(), "detail leaks SQL (%r): %r" % (leak, detail))
    for t in T.tokens.values():
        ok(t["token"] not in r.body.decode("utf-8", "replace"), "error echoes a token")
    if detail_has is not None:
        ok(detail_has.lower() in detail.lower(),
           "detail %r does not name %r" % (detail, detail_has))
    return j


def scim_ct(r):
    ct = (r.header("content-type") or "").lower().replace(" ", "")
    eq(ct, "application/scim+json;charset=utf-8", "content-type")


def listed(r, total=None, need_total=True):
    """A ListResponse; returns its Resources."""
    eq(r.status, 200, "list (%r)" % r)
    scim_ct(r)
    j = r.json
    ok(LIST in j.get("schemas", []), "ListResponse schemas: %r" % j.get("schemas"))
    res = j.get("Resources", [])
    ok(isinstance(res, list), "Resources is not a list")
    if need_total or "totalResults" in j:
        ok(isinstance(j.get("totalResults"), int), "totalResults missing: %r" % j)
    if total is not None:
        eq(j["totalResults"], total, "totalResults")
    if "itemsPerPage" in j:
        eq(j["itemsPerPage"], len(res), "itemsPerPage")
    return res


def ids(resources):
    return [x["id"] for x in resources]


def user_body(login, given=None, family=None, email=None, ext=None, dept=None, active=None,
              schemas=None):
    b = {"schemas": schemas or [CORE_USER], "userName": login}
    name = {}
    if given is not None:
        name["givenName"] = given
    if family is not None:
        name["familyName"] = family
    if name:
        b["name"] = name
    if email is not None:
        b["emails"] = [{"type": "work", "value": email, "primary": True}]
    if ext is not None:
        b["externalId"] = ext
    if dept is not None:
        b["schemas"] = b["schemas"] + [ENTERPRISE]
        b[ENTERPRISE] = {"department": dept}
    if active is not None:
        b["active"] = active
    return b


def mkuser(login, client=None, **kw):
    r = (client or T.c).post("Users", user_body(login, **kw))
    eq(r.status, 201, "create user %s (%r)" % (login, r))
    return r.json["id"]


def mkgroup(name, members=(), client=None):
    r = (client or T.c).post("Groups", {"schemas": [CORE_GROUP], "displayName": name,
                                        "members": [{"value": m} for m in members]})
    eq(r.status, 201, "create group %s (%r)" % (name, r))
    return r.json["id"]


def sql_user(uid, app="acme"):
    rows = psql("SELECT login, first_name, last_name, email, department, external_id, "
                "active, account_type, password_hash FROM %s.users WHERE id = %d"
                % (app, int(uid)))
    if not rows:
        return None
    keys = ["login", "first_name", "last_name", "email", "department", "external_id",
            "active", "account_type", "password_hash"]
    return {k: (v if v != "" else None) for k, v in zip(keys, rows[0])}


def sql_members(gid, app="acme"):
    return sorted(r[0] for r in psql("SELECT user_id FROM %s.user_roles WHERE role_id = %d"
                                      % (app, int(gid))))


def work_email(u):
    for e in u.get("emails") or []:
        if e.get("type") == "work":
            return e.get("value")
    return None


def member_ids(g):
    return sorted(m["value"] for m in g.get("members") or [])


def patch(ops):
    return {"schemas": [PATCHOP], "Operations": ops}


def patched(r, what):
    ok(r.status in (200, 204), "%s: expected 200 or 204, got %r" % (what, r))
    if r.status == 200:
        scim_ct(r)
        ok("id" in r.json, "%s: 200 without the resource" % what)


def end_position(app="acme"):
    pos = 0
    while True:
        rows = psql("SELECT max(position), count(*) FROM connector.changes(%s, %d, 1000)"
                    % (lit(app), pos))
        if not rows or rows[0][0] == "":
            return pos
        pos = int(rows[0][0])
        if int(rows[0][1]) < 1000:
            return pos


def events_since(pos, app="acme"):
    out = []
    while True:
        rows = psql("SELECT position, event FROM connector.changes(%s, %d, 1000)"
                    % (lit(app), pos))
        for p, e in rows:
            out.append(json.loads(e))
            pos = int(p)
        if len(rows) < 1000:
            return out


def expect_events(pos, client_name, want, app="acme"):
    """Every event after pos came from the gateway with this token; each
    (type, account id or None, entitlement id or None) of want is among them."""
    evs = events_since(pos, app)
    ok(evs, "no event after position %d" % pos)
    for e in evs:
        o = e["data"].get("origin") or {}
        eq(o.get("via"), "platform", "origin.via of %s" % e["type"])
        eq(o.get("client"), "scim:" + client_name, "origin.client of %s" % e["type"])
    have = set()
    for e in evs:
        a = (e["data"].get("account") or {}).get("id")
        n = (e["data"].get("entitlement") or {}).get("id")
        have.add((e["type"], a, n))
        have.add((e["type"], a, None))
        have.add((e["type"], None, n))
        have.add((e["type"], None, None))
    for w in want:
        ok(w in have, "no event %r among %r" % (w, sorted(x for x in have if None not in x)))
    return evs


def db_now():
    return psql1("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")


def parse_time(s):
    ok(isinstance(s, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", s),
       "not an RFC 3339 date-time: %r" % s)
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def raw_connect():
    s = socket.create_connection((T.host, T.port), timeout=10)
    if T.https:
        ctx = ssl.create_default_context(cafile=os.environ.get("SCIM_CA"))
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def new_token(name, app="acme", expires=None):
    sql = "SELECT connector.add_token(%s, %s%s)" % (
        lit(app), lit(name), ", " + expires if expires else "")
    tok = psql1(sql)
    extra = os.environ.get("SCIM_EXTRA_TOKENS")
    if extra:
        with open(extra, "a") as f:
            f.write(tok + "\n")
    return tok


# ---------------------------------------------------------------- background checks

class Stall:
    """A request that stops in the middle of its body (and one in the middle
    of its headers): the gateway must cut both off while serving others."""

    def __init__(self):
        self.results = {}
        self.threads = []
        for kind in ("body", "headers"):
            th = threading.Thread(target=self.run, args=(kind,), daemon=True)
            th.start()
            self.threads.append(th)

    def run(self, kind):
        try:
            s = raw_connect()
            head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                    % (T.c.path("Users"), T.tokens["suite"]["token"]))
            if kind == "body":
                s.sendall((head + "Content-Type: application/scim+json\r\n"
                           "Content-Length: 5000\r\n\r\n{\"userName\": \"stall").encode())
            else:
                s.sendall(head.encode() + b"X-Slow: 1")
            self.results[kind] = wait_port_closed(s, 150)
            s.close()
        except Exception as e:
            self.results[kind] = ("error", repr(e))


class Revocation:
    """A token revoked now must stop working within 10 s."""

    def __init__(self):
        self.name = "rev-" + T.run
        self.token = new_token(self.name)
        self.client = Client(T.url, self.token, "acme")
        self.first = self.client.get("Users", count="1")
        psql("SELECT connector.revoke_token('acme', %s)" % lit(self.name))
        self.t0 = time.monotonic()
        self.until = None
        self.last = None
        th = threading.Thread(target=self.poll, daemon=True)
        th.start()
        self.thread = th

    def poll(self):
        while time.monotonic() - self.t0 < 30:
            try:
                r = self.client.get("Users", count="1")
                self.last = r
                if r.status == 401:
                    self.until = time.monotonic() - self.t0
                    return
            except Exception as e:
                self.last = e
            time.sleep(0.25)


# ---------------------------------------------------------------- checks: service

def t_healthz():
    r = T.anon.request("GET", "/healthz", auth=False)
    eq(r.status, 200, "GET /healthz without a token")


def t_auth_missing():
    r = T.c.request("GET", T.c.path("Users"), auth=False)
    err(r, "unauthorized")
    ok((r.header("www-authenticate") or "").lower().startswith("bearer"),
       "WWW-Authenticate: %r" % r.header("www-authenticate"))


def t_auth_wrong():
    m = Multi()
    for value in ("Bearer ctk_" + "A" * 43, "Bearer " + T.tokens["suite"]["token"] + "x",
                  "Bearer", "Basic dXNlcjpwYXNz", "Bearer  ", "ctk_abc"):
        r = T.c.request("GET", T.c.path("Users"), headers={"Authorization": value}, auth=False)
        m(lambda: err(r, "unauthorized"))
        m(lambda: ok((r.header("www-authenticate") or "").lower().startswith("bearer"),
           "WWW-Authenticate for %r: %r" % (value, r.header("www-authenticate"))))
    m.done()


def t_auth_scheme_case():
    # RFC 7235 section 2.1: the auth-scheme is case-insensitive.
    r = T.c.request("GET", T.c.path("Users", count="1"),
                    headers={"Authorization": "bearer " + T.tokens["suite"]["token"]}, auth=False)
    eq(r.status, 200, "lower-case 'bearer' (%r)" % r)


def t_auth_other_app():
    other = Client(T.url, T.tokens["other"]["token"], "acme")
    err(other.get("Users"), "unauthorized")
    other.app = "other"
    eq(other.get("Users").status, 200, "the other app's token on its own app")
    acme_on_other = Client(T.url, T.tokens["suite"]["token"], "other")
    err(acme_on_other.get("Users"), "unauthorized")


def t_unknown_app():
    c = Client(T.url, T.tokens["suite"]["token"], "nosuchapp")
    err(c.get("Users"), "not_found", detail_has="nosuchapp")


def t_unknown_endpoint():
    err(T.c.get("Nonsense"), "not_found")
    err(T.c.get("Users/%d" % 2000000000), "not_found")
    err(T.c.get("Groups/%d" % 2000000000), "not_found")


def t_expired_token_start():
    T.expiring = new_token("exp-" + T.run, expires="now() + interval '4 seconds'")
    T.expiring_t0 = time.monotonic()
    r = Client(T.url, T.expiring, "acme").get("Users", count="1")
    eq(r.status, 200, "a token that has not expired yet (%r)" % r)


def t_expired_token_end():
    c = Client(T.url, T.expiring, "acme")
    left = T.expiring_t0 + 4 + 10 - time.monotonic()
    while True:
        r = c.get("Users", count="1")
        if r.status == 401 or left <= 0:
            break
        time.sleep(0.25)
        left -= 0.25
    err(r, "unauthorized")


def t_revoked_token():
    rv = T.revocation
    eq(rv.first.status, 200, "the token before its revocation (%r)" % rv.first)
    rv.thread.join(30)
    ok(rv.until is not None, "a revoked token still works after 30 s: %r" % rv.last)
    ok(rv.until <= 10.5, "revocation took %.1f s (at most 10 s)" % rv.until)
    err(rv.last, "unauthorized")


def t_content_types():
    r = T.c.get("Users", count="1")
    eq(r.status, 200)
    scim_ct(r)
    # application/json bodies are accepted as well as application/scim+json
    body = json.dumps(user_body(T.run + "-ctjson", given="Json")).encode()
    r = T.c.request("POST", T.c.path("Users"), body, raw=True,
                    headers={"Content-Type": "application/json"})
    eq(r.status, 201, "POST in application/json (%r)" % r)
    scim_ct(r)
    r = T.c.request("POST", T.c.path("Users"), json.dumps(user_body(T.run + "-ctcs")).encode(),
                    raw=True, headers={"Content-Type": "application/scim+json; charset=utf-8"})
    eq(r.status, 201, "POST in application/scim+json; charset=utf-8 (%r)" % r)


# ---------------------------------------------------------------- checks: discovery

def t_spc():
    r = T.c.get("ServiceProviderConfig")
    eq(r.status, 200, "ServiceProviderConfig (%r)" % r)
    scim_ct(r)
    j = r.json
    ok(SPC in j.get("schemas", []), "schemas: %r" % j.get("schemas"))
    eq(j["patch"]["supported"], True, "patch.supported")
    eq(j["filter"]["supported"], True, "filter.supported")
    ok(j["filter"].get("maxResults") == 1000, "filter.maxResults %r" % j["filter"])
    eq(j["etag"]["supported"], True, "etag.supported")
    ok("supported" in j["bulk"] and "supported" in j["changePassword"]
       and "supported" in j["sort"], "bulk/changePassword/sort: %r" % j)
    eq(j["changePassword"]["supported"], False, "changePassword.supported")
    schemes = j.get("authenticationSchemes") or []
    ok(any(s.get("type") == "oauthbearertoken" for s in schemes),
       "authenticationSchemes: %r" % schemes)
    # RFC 9865 section 4: the pagination attribute
    p = j.get("pagination") or {}
    eq(p.get("cursor"), True, "pagination.cursor")
    eq(p.get("index"), True, "pagination.index")
    ok(p.get("maxPageSize") in (None, 1000), "pagination.maxPageSize %r" % p)


def resource_type_user(rt):
    eq(rt.get("id"), "User", "ResourceType id")
    eq(rt.get("name"), "User", "ResourceType name")
    ok(rt.get("endpoint") in ("/Users", "Users"), "endpoint %r" % rt.get("endpoint"))
    eq(rt.get("schema"), CORE_USER, "schema")
    ok(RESOURCE_TYPE in rt.get("schemas", []), "schemas %r" % rt.get("schemas"))
    ext = rt.get("schemaExtensions") or []
    ok(any(e.get("schema") == ENTERPRISE and e.get("required") is False for e in ext),
       "the enterprise extension (mapped: department) in schemaExtensions: %r" % ext)


def t_resource_types():
    res = listed(T.c.get("ResourceTypes"))
    by = {x["id"]: x for x in res}
    eq(sorted(by), ["Group", "User"], "resource types")
    resource_type_user(by["User"])
    eq(by["Group"]["schema"], CORE_GROUP, "Group schema")
    r = T.c.get("ResourceTypes/User")
    eq(r.status, 200, "ResourceTypes/User (%r)" % r)
    resource_type_user(r.json)
    r = T.c.get("ResourceTypes/Group")
    eq(r.status, 200, "ResourceTypes/Group (%r)" % r)
    err(T.c.get("ResourceTypes/Nope"), "not_found")


def attrs_by_name(schema):
    return {a["name"].lower(): a for a in schema.get("attributes", [])}


def check_user_schema(s):
    eq(s.get("id"), CORE_USER, "User schema id")
    a = attrs_by_name(s)
    for name in ("username", "name", "emails", "externalid", "active", "usertype", "groups"):
        ok(name in a, "User schema without %s: %r" % (name, sorted(a)))
    eq(a["username"].get("uniqueness"), "server", "userName uniqueness")
    eq(a["username"].get("required"), True, "userName required")
    eq(a["username"].get("caseExact"), False, "userName caseExact")
    eq(a["groups"].get("mutability"), "readOnly", "groups mutability (user_grants default)")
    eq(a["active"].get("type"), "boolean", "active type")
    subs = {x["name"] for x in a["name"].get("subAttributes", [])}
    ok({"givenName", "familyName"} <= subs, "name sub-attributes %r" % subs)
    ok("middleName" not in subs and "honorificPrefix" not in subs,
       "name sub-attributes the mapping does not expose: %r" % subs)
    # consistent with the mapping: nothing that is not mapped
    for name in ("phonenumbers", "addresses", "title", "nickname", "x509certificates", "password"):
        ok(name not in a, "User schema exposes unmapped %s" % name)


def t_schemas():
    res = listed(T.c.get("Schemas"))
    by = {x["id"]: x for x in res}
    ok({CORE_USER, CORE_GROUP, ENTERPRISE} <= set(by), "schemas: %r" % sorted(by))
    check_user_schema(by[CORE_USER])
    ent = attrs_by_name(by[ENTERPRISE])
    ok("department" in ent, "enterprise schema without department")
    for name in ("employeenumber", "costcenter", "manager"):
        ok(name not in ent, "enterprise schema exposes unmapped %s" % name)
    g = attrs_by_name(by[CORE_GROUP])
    ok("displayname" in g and "members" in g, "Group schema: %r" % sorted(g))
    for s in res:
        ok(SCHEMA in s.get("schemas", []), "schema's schemas: %r" % s.get("schemas"))
    r = T.c.get("Schemas/" + CORE_USER)
    eq(r.status, 200, "Schemas/<User urn> (%r)" % r)
    check_user_schema(r.json)
    eq(T.c.get("Schemas/" + ENTERPRISE).status, 200, "Schemas/<enterprise urn>")
    eq(T.c.get("Schemas/" + CORE_GROUP).status, 200, "Schemas/<Group urn>")
    err(T.c.get("Schemas/urn:nope"), "not_found")


# ---------------------------------------------------------------- checks: users

def check_user(u, login, given=None, family=None, email=None, ext=None, dept=None, active=True):
    ok(isinstance(u.get("id"), str) and u["id"], "id: %r" % u.get("id"))
    ok(CORE_USER in u.get("schemas", []), "schemas %r" % u.get("schemas"))
    eq(u.get("userName"), login, "userName")
    eq((u.get("name") or {}).get("givenName"), given, "name.givenName")
    eq((u.get("name") or {}).get("familyName"), family, "name.familyName")
    eq(work_email(u), email, "work email")
    eq(u.get("externalId"), ext, "externalId")
    eq((u.get(ENTERPRISE) or {}).get("department"), dept, "enterprise department")
    if dept is not None:
        ok(ENTERPRISE in u["schemas"], "enterprise urn missing from schemas")
    eq(u.get("active"), active, "active")
    meta = u.get("meta") or {}
    eq(meta.get("resourceType"), "User", "meta.resourceType")
    ok((meta.get("location") or "").endswith("/scim/v2/acme/Users/" + u["id"]),
       "meta.location %r" % meta.get("location"))
    ok(meta["location"].startswith(T.url), "meta.location not absolute: %r" % meta["location"])
    ok(re.match(r'^W/"[0-9a-fA-F]+"$', meta.get("version") or ""),
       "meta.version %r" % meta.get("version"))
    parse_time(meta.get("created"))
    parse_time(meta.get("lastModified"))
    ok("password" not in u, "password returned")


def t_create_user():
    m = Multi()
    login = T.run + "-Ann"
    r = T.c.post("Users", user_body(login, given="Ann", family="Lee", email="ann@example.com",
                                    ext="ext-ann", dept="Sales", active=True))
    m(lambda: eq(r.status, 201, "POST /Users (%r)" % r))
    scim_ct(r)
    u = r.json
    m(lambda: check_user(u, login, "Ann", "Lee", "ann@example.com", "ext-ann", "Sales"))
    m(lambda: eq(u.get("userType"), "human", "userType"))
    m(lambda: eq(r.header("location"), u["meta"]["location"], "Location header"))
    m(lambda: eq(r.header("etag"), u["meta"]["version"], "ETag header"))
    T.ann = u["id"]
    row = sql_user(T.ann)
    m(lambda: eq(row, {"login": login, "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com",
             "department": "Sales", "external_id": "ext-ann", "active": "t",
             "account_type": "human", "password_hash": None}, "the row"))
    m(lambda: expect_events(T.pos0, "suite", [("account.created", T.ann, None)]))
    m.done()


def t_get_user():
    r = T.c.get("Users/" + T.ann)
    eq(r.status, 200, "GET /Users/<id> (%r)" % r)
    scim_ct(r)
    check_user(r.json, T.run + "-Ann", "Ann", "Lee", "ann@example.com", "ext-ann", "Sales")
    eq(r.header("etag"), r.json["meta"]["version"], "ETag header")


def t_forwarded_proto():
    """Behind a TLS-terminating proxy (--insecure-http), the URLs the gateway
    writes say https when the proxy says so; a TLS gateway always says https."""
    path = T.c.path("Users/" + T.ann)
    plain = T.url.startswith("http:")
    r = T.c.request("GET", path, headers={"X-Forwarded-Proto": "https"})
    eq(r.status, 200, "GET with X-Forwarded-Proto (%r)" % r)
    ok(r.json["meta"]["location"].startswith("https://"),
       "location with X-Forwarded-Proto: https: %r" % r.json["meta"]["location"])
    r = T.c.request("GET", path, headers={"X-Forwarded-Proto": "http"})
    eq(r.status, 200, "GET with X-Forwarded-Proto: http (%r)" % r)
    want = "http://" if plain else "https://"
    ok(r.json["meta"]["location"].startswith(want),
       "location without the proxy's https: %r" % r.json["meta"]["location"])


def t_create_user_errors():
    m = Multi()
    m(lambda: err(T.c.post("Users", {"schemas": [CORE_USER], "name": {"givenName": "X"}}),
        "missing_username", detail_has="userName"))
    m(lambda: err(T.c.post("Users", {"schemas": [CORE_USER], "userName": ""}), "missing_username"))
    m(lambda: err(T.c.post("Users", {"schemas": [CORE_USER], "userName": 42}), "wrong_type"))
    m(lambda: err(T.c.post("Users", user_body(T.run + "-bad", active="maybe")), "wrong_type"))
    m(lambda: err(T.c.post("Users", {"schemas": [CORE_USER], "userName": T.run + "-bad2",
                           "name": "not an object"}), "wrong_type"))
    for body in (b'{"userName": ', b"not json", b'{"userName": "a",}', b"[1, 2]", b'"str"',
                 b"\xff\xfe{}", b""):
        m(lambda: err(T.c.request("POST", T.c.path("Users"), body, raw=True,
                        headers={"Content-Type": "application/scim+json"}), "bad_json"))
    m.done()


def t_duplicate_username():
    r = T.c.post("Users", user_body((T.run + "-Ann").upper()))
    err(r, "duplicate")
    r = T.c.post("Users", user_body(T.run + "-Ann"))
    err(r, "duplicate")
    eq(psql1("SELECT count(*) FROM acme.users WHERE lower(login) = lower(%s)"
             % lit(T.run + "-ann")), "1", "rows named like ann")


def t_unmapped_ignored():
    # Entra and Okta send attributes the application does not map
    # (name.formatted, displayName, password, roles): accepted, not stored.
    body = user_body(T.run + "-extra", given="Ex", email="ex@example.com")
    body["name"]["formatted"] = "Ex Tra"
    body["displayName"] = "Ex Tra"
    body["password"] = "hunter2hunter2"
    body["roles"] = []
    body["phoneNumbers"] = [{"type": "mobile", "value": "+1 555"}]
    r = T.c.post("Users", body)
    eq(r.status, 201, "POST with unmapped attributes (%r)" % r)
    row = sql_user(r.json["id"])
    eq(row["password_hash"], None, "password_hash")
    ok("hunter2" not in r.body.decode(), "the password is echoed")
    ok("phoneNumbers" not in r.json, "an unmapped attribute is returned")


def t_put_user():
    m = Multi()
    login = T.run + "-put"
    uid = mkuser(login, given="Pat", family="Old", email="pat@example.com", ext="e-pat",
                 dept="IT")
    pos = end_position()
    body = user_body(login, given="Pat", family="New", email="pat2@example.com", active=True)
    body["id"] = uid
    r = T.c.put("Users/" + uid, body)
    m(lambda: eq(r.status, 200, "PUT (%r)" % r))
    # PUT replaces: department and externalId were not sent, so they are gone
    m(lambda: check_user(r.json, login, "Pat", "New", "pat2@example.com", None, None))
    row = sql_user(uid)
    m(lambda: eq((row["last_name"], row["email"], row["department"], row["external_id"]),
       ("New", "pat2@example.com", None, None), "the row after PUT"))
    m(lambda: expect_events(pos, "suite", [("account.updated", uid, None)]))
    m.done()


def t_put_errors():
    m = Multi()
    uid = mkuser(T.run + "-put2", given="Pat")
    body = user_body(T.run + "-put2", given="Pat")
    body["id"] = str(int(uid) + 100000)
    m(lambda: err(T.c.put("Users/" + uid, body), "put_changes_id"))
    m(lambda: eq(sql_user(uid)["first_name"], "Pat", "first_name after the refused PUT"))
    m(lambda: err(T.c.put("Users/" + uid, {"schemas": [CORE_USER], "name": {"givenName": "x"}}),
        "missing_username"))
    m(lambda: err(T.c.put("Users/2000000000", user_body(T.run + "-ghost")), "not_found"))
    m(lambda: err(T.c.request("PUT", T.c.path("Users/" + uid), b"{", raw=True,
                    headers={"Content-Type": "application/scim+json"}), "bad_json"))
    # renaming onto another user's name
    m(lambda: err(T.c.put("Users/" + uid, user_body(T.run + "-ANN")), "duplicate"))
    m.done()


def t_delete_user():
    uid = mkuser(T.run + "-del")
    gid = T.groups_viewer
    psql("INSERT INTO acme.user_roles VALUES (%d, %d) ON CONFLICT DO NOTHING" % (int(uid), int(gid)))
    pos = end_position()
    r = T.c.delete("Users/" + uid)
    eq(r.status, 204, "DELETE (%r)" % r)
    eq(r.body, b"", "DELETE body")
    err(T.c.get("Users/" + uid), "not_found")
    err(T.c.delete("Users/" + uid), "not_found")
    eq(sql_user(uid), None, "the row")
    expect_events(pos, "suite", [("account.deleted", uid, None),
                                 ("access.revoked", uid, gid)])


# ---------------------------------------------------------------- checks: filters

FILTER_USERS = [
    # suffix, given, family, email, ext, dept, active
    ("f1", "Alice", "Adams", "f1@example.com", "ext-f1", "Sales", True),
    ("f2", "Bob", "Brown", "f2@example.com", "ext-f2", "Sales", True),
    ("f3", "Carol", "Clark", "f3@example.org", "ext-f3", "HR", False),
    ("f4", "Dave", "Davis", "f4@example.com", None, "IT", True),
    ("f5", None, "Evans", None, None, None, True),
    ("q\"uote", "Quinn", None, None, None, None, True),
    ("pct%x", None, None, None, None, None, True),
    ("und_x", None, None, None, None, None, True),
    ("\u00fcml\u00e4\u00fct", "\u00c9lodie", None, None, None, None, True),
]


def t_filter_setup():
    T.f = {}
    for suffix, given, family, email, ext, dept, active in FILTER_USERS:
        # emails and externalIds unique to this run, like userNames
        T.f[suffix] = mkuser(T.fp + suffix, given=given, family=family,
                             email=email and T.run + email, ext=ext and T.run + ext,
                             dept=dept, active=active)


def q(flt, **kw):
    r = T.c.get("Users", filter=flt, count=kw.pop("count", "1000"), **kw)
    return r


def fids(flt, **kw):
    return sorted(ids(listed(q(flt, **kw))), key=int)


def want(*suffixes):
    return sorted((T.f[s] for s in suffixes), key=int)


def pre(flt):
    """Restrict a filter to this run's filter users."""
    return 'userName sw "%s" and (%s)' % (T.fp, flt)


def t_filter_operators():
    m = Multi()
    fp = T.fp
    m(lambda: eq(fids('userName eq "%sf1"' % fp), want("f1"), "eq"))
    m(lambda: eq(fids(pre('userName ne "%sf1"' % fp)),
       sorted(set(want(*T.f)) - set(want("f1")), key=int), "ne"))
    m(lambda: eq(fids(pre('userName co "f2"')), want("f2"), "co"))
    m(lambda: eq(fids('userName sw "%sf"' % fp), want("f1", "f2", "f3", "f4", "f5"), "sw"))
    m(lambda: eq(fids(pre('userName ew "3"')), want("f3"), "ew"))
    m(lambda: eq(fids(pre("name.givenName pr")), want("f1", "f2", "f3", "f4", "q\"uote", "\u00fcml\u00e4\u00fct"), "pr"))
    m(lambda: eq(fids(pre('userName sw "%sf" and name.givenName gt "Bob"' % fp)), want("f3", "f4"), "gt"))
    m(lambda: eq(fids(pre('userName sw "%sf" and name.givenName ge "Bob"' % fp)), want("f2", "f3", "f4"), "ge"))
    m(lambda: eq(fids(pre('userName sw "%sf" and name.givenName lt "Bob"' % fp)), want("f1"), "lt"))
    m(lambda: eq(fids(pre('userName sw "%sf" and name.givenName le "Bob"' % fp)), want("f1", "f2"), "le"))
    m(lambda: eq(fids(pre("active eq false")), want("f3"), "active eq false"))
    m(lambda: eq(fids('id eq "%s"' % T.f["f2"]), want("f2"), "id eq"))
    m(lambda: eq(fids('externalId eq "%sext-f1"' % T.run), want("f1"), "externalId eq"))
    # externalId is caseExact (RFC 7643 section 3.1)
    m(lambda: eq(fids('externalId eq "%sEXT-F1"' % T.run), [], "externalId is case-exact"))
    m(lambda: eq(fids(pre('%s:department eq "Sales"' % ENTERPRISE)), want("f1", "f2"), "enterprise urn path"))
    m(lambda: eq(fids(pre('name.familyName ew "s"')), want("f1", "f4", "f5"), "ew on familyName"))
    m.done()


def t_filter_logic():
    m = Multi()
    fp = T.fp
    m(lambda: eq(fids('userName eq "%sf1" or userName eq "%sf2"' % (fp, fp)), want("f1", "f2"), "or"))
    m(lambda: eq(fids('userName sw "%sf" and not (userName eq "%sf1")' % (fp, fp)),
       want("f2", "f3", "f4", "f5"), "not"))
    m(lambda: eq(fids('(userName eq "%sf1" or userName eq "%sf2") and name.givenName eq "Bob"' % (fp, fp)),
       want("f2"), "parentheses"))
    # "and" binds tighter than "or" (RFC 7644 section 3.4.2.2)
    m(lambda: eq(fids('userName eq "%sf1" or userName eq "%sf2" and name.givenName eq "Alice"' % (fp, fp)),
       want("f1"), "precedence"))
    m(lambda: eq(fids('((userName eq "%sf4"))' % fp), want("f4"), "nested parentheses"))
    m(lambda: eq(fids(pre('not (active eq true) or name.givenName eq "Dave"')), want("f3", "f4"), "not/or"))
    m.done()


def t_filter_value_paths():
    m = Multi()
    m(lambda: eq(fids('emails[type eq "work"].value eq "%sf3@example.org"' % T.run), want("f3"),
                 "emails[type eq work].value"))
    m(lambda: eq(fids('emails[type eq "work" and value eq "%sf3@example.org"]' % T.run), want("f3"),
                 "RFC value filter"))
    m(lambda: eq(fids(pre('emails[type eq "work" and value ew "example.com"]')), want("f1", "f2", "f4"),
       "value filter ew"))
    m(lambda: eq(fids('emails.value eq "%sf2@example.com"' % T.run), want("f2"), "emails.value"))
    m(lambda: eq(fids(pre("emails pr")), want("f1", "f2", "f3", "f4"), "emails pr"))
    m.done()


def t_filter_case():
    m = Multi()
    fp = T.fp
    # attribute names and operators are case-insensitive; userName is not case-exact
    m(lambda: eq(fids('USERNAME eq "%sf1"' % fp), want("f1"), "attribute name case"))
    m(lambda: eq(fids('userName EQ "%sf1"' % fp), want("f1"), "operator case"))
    m(lambda: eq(fids('username eq "%sF1"' % fp.upper()), want("f1"), "userName value case"))
    m(lambda: eq(fids(pre('NAME.GIVENNAME Eq "Alice"')), want("f1"), "sub-attribute name case"))
    m(lambda: eq(fids('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "%sf2"' % fp), want("f2"),
       "fully qualified attribute"))
    m.done()


def t_filter_odd_values():
    m = Multi()
    fp = T.fp
    m(lambda: eq(fids('userName eq "%sq\\"uote"' % fp), want("q\"uote"), "escaped quote"))
    m(lambda: eq(fids(pre('userName co "%"')), want("pct%x"), "co with a LIKE wildcard %"))
    m(lambda: eq(fids(pre('userName co "_"')), want("und_x"), "co with a LIKE wildcard _"))
    m(lambda: eq(fids('userName eq "%s\u00fcml\u00e4\u00fct"' % fp), want("\u00fcml\u00e4\u00fct"), "unicode"))
    m(lambda: eq(fids('userName eq "%s\\u00fcml\\u00e4\\u00fct"' % fp), want("\u00fcml\u00e4\u00fct"),
       "JSON unicode escapes in a filter string"))
    m(lambda: eq(fids(pre('userName eq "nobody-at-all"')), [], "no match"))
    m.done()


def t_filter_errors():
    m = Multi()
    bad = [
        ('nosuchattr eq "x"', "nosuchattr"),
        ('userName eq "unterminated', None),
        ('userName xx "a"', None),
        ("userName eq", None),
        ('userName eq "a" and', None),
        ('(userName eq "a"', None),
        ('userName eq "a")', None),
        ('userName eq "a" garbage', None),
        ("userName eq unquoted", None),
        ('meta.lastModified gt "not a date"', None),
        ('emails[type eq "work"', None),
        ('name.nosuch eq "x"', None),
        ('userName pr "x"', None),
    ]
    for flt, name in bad:
        m(lambda: err(q(flt), "filter", detail_has=name))
    deep = "(" * 100 + 'userName eq "a"' + ")" * 100
    m(lambda: err(q(deep), "filter"))
    deep_not = "not (" * 100 + 'userName eq "a"' + ")" * 100
    m(lambda: err(q(deep_not), "filter"))
    deep_and = " and ".join('userName eq "%d"' % i for i in range(100))
    r = q(deep_and)
    m(lambda: ok(r.status in (200, 400), "a long flat and-chain: %r" % r))
    m.done()


def t_filter_usertype():
    res = listed(q('userType eq "service"'))
    names = sorted(x["userName"] for x in res)
    ok({"svc-backup", "svc-reports"} <= set(names), "service accounts: %r" % names)
    for x in res:
        eq(x.get("userType"), "service", "userType of %s" % x["userName"])
    res = listed(q('userType eq "service" and userName eq "svc-backup"'))
    eq(len(res), 1, "svc-backup by userType")
    svc = res[0]
    eq([g.get("display") for g in svc.get("groups", [])], ["viewer"], "svc-backup's groups")
    eq(svc["groups"][0]["value"], T.groups_viewer, "group value")


# ---------------------------------------------------------------- checks: paging

def t_paging_setup():
    T.pp = T.run + "-page-"
    T.page_ids = [mkuser("%s%02d" % (T.pp, i)) for i in range(25)]
    eq(T.page_ids, sorted(T.page_ids, key=int), "ids grow")


def t_paging_index():
    flt = 'userName sw "%s"' % T.pp
    seen = []
    for start in (1, 11, 21):
        r = T.c.get("Users", filter=flt, startIndex=str(start), count="10")
        res = listed(r, total=25)
        eq(r.json.get("startIndex"), start, "startIndex")
        eq(len(res), 10 if start < 21 else 5, "page size at %d" % start)
        seen += ids(res)
    eq(seen, T.page_ids, "pages in id order, each once")
    res = listed(T.c.get("Users", filter=flt, startIndex="5", count="3"), total=25)
    eq(ids(res), T.page_ids[4:7], "startIndex=5&count=3")


def t_paging_edges():
    m = Multi()
    flt = 'userName sw "%s"' % T.pp
    for count in ("0", "-1", "-100"):
        r = T.c.get("Users", filter=flt, count=count)
        res = listed(r, total=25)
        m(lambda: eq(res, [], "count=%s returns no resources" % count))
    r = T.c.get("Users", filter=flt, startIndex="0", count="2")
    m(lambda: eq(ids(listed(r, total=25)), T.page_ids[:2], "startIndex=0 is 1"))
    m(lambda: eq(r.json.get("startIndex"), 1, "startIndex=0 answered as 1"))
    r = T.c.get("Users", filter=flt, startIndex="-7", count="2")
    m(lambda: eq(ids(listed(r, total=25)), T.page_ids[:2], "startIndex=-7 is 1"))
    r = T.c.get("Users", filter=flt, startIndex="26")
    m(lambda: eq(listed(r, total=25), [], "startIndex past the end"))
    r = T.c.get("Users", filter=flt, startIndex="100000000")
    m(lambda: eq(listed(r, total=25), [], "startIndex far past the end"))
    total = int(psql1("SELECT count(*) FROM acme.users"))
    r = T.c.get("Users", count="100000")
    m(lambda: eq(len(listed(r, total=total)), 1000, "count=100000 is capped at 1000"))
    r = T.c.get("Users")
    m(lambda: eq(len(listed(r, total=total)), 100, "the default count is 100"))
    for bad in ("abc", "1.5", "10x"):
        r = T.c.get("Users", count=bad)
        m(lambda: err(r, "wrong_type"))
    m.done()


def all_user_ids():
    return sorted((r[0] for r in psql("SELECT id FROM acme.users")), key=int)


def t_cursor_walk():
    # RFC 9865: cursor= (empty) asks for the first page; nextCursor until absent
    want_ids = all_user_ids()
    got = []
    cursor = ""
    pages = 0
    while True:
        r = T.c.get("Users", cursor=cursor, count="500")
        res = listed(r, need_total=False)
        pages += 1
        got += ids(res)
        nxt = r.json.get("nextCursor")
        if not nxt:
            break
        ok(isinstance(nxt, str), "nextCursor %r" % nxt)
        ok(len(res) == 500, "a page before the last is full")
        cursor = nxt
        ok(pages < 100, "cursor paging does not end")
    eq(len(got), len(set(got)), "no id twice")
    eq(sorted(got, key=int), want_ids, "the whole directory")
    eq(got, sorted(got, key=int), "id order")
    full = (len(want_ids) + 499) // 500
    ok(pages in (full, full + 1), "pages: %d for %d accounts" % (pages, len(want_ids)))


def t_cursor_filtered():
    got = []
    cursor = ""
    for _ in range(10):
        r = T.c.get("Users", filter='userName sw "%s"' % T.pp, cursor=cursor, count="10")
        got += ids(listed(r, need_total=False))
        cursor = r.json.get("nextCursor")
        if not cursor:
            break
    eq(got, T.page_ids, "a filtered cursor walk")


def t_cursor_errors():
    m = Multi()
    for bad in ("not-a-cursor", "%%%", "A" * 300, "\u00e9t\u00e9"):
        m(lambda: err(T.c.get("Users", cursor=bad), "cursor"))
    r = T.c.get("Users", cursor="", count="100000")
    m(lambda: ok(r.status == 200 and len(listed(r, need_total=False)) <= 1000 or r.status == 400,
       "cursor with count=100000: %r" % r))
    if r.status == 400:
        eq(r.json.get("scimType"), "invalidCount", "RFC 9865 invalidCount")
    m.done()


# ---------------------------------------------------------------- checks: attributes

def t_attributes():
    r = T.c.get("Users/" + T.ann, attributes="userName")
    eq(r.status, 200)
    u = r.json
    eq(u.get("id"), T.ann, "id is always returned")
    eq(u.get("userName"), T.run + "-Ann", "userName")
    for absent in ("name", "emails", "externalId", ENTERPRISE, "active"):
        ok(absent not in u, "attributes=userName returned %s" % absent)
    r = T.c.get("Users/" + T.ann, attributes="name.givenName,emails")
    u = r.json
    eq(u.get("name"), {"givenName": "Ann"}, "attributes=name.givenName")
    eq(work_email(u), "ann@example.com", "emails")
    ok("userName" not in u, "userName not asked for")
    r = T.c.get("Users/" + T.ann, excludedAttributes="emails,name.familyName")
    u = r.json
    eq(u.get("userName"), T.run + "-Ann", "userName kept")
    ok("emails" not in u, "emails excluded")
    eq(u.get("name"), {"givenName": "Ann"}, "name.familyName excluded")
    r = T.c.get("Users/" + T.ann, excludedAttributes="id")
    eq(r.json.get("id"), T.ann, "id cannot be excluded (returned: always)")
    r = T.c.get("Users/" + T.ann, attributes=ENTERPRISE + ":department")
    eq(r.json.get(ENTERPRISE), {"department": "Sales"}, "an extension attribute by urn")
    res = listed(T.c.get("Users", filter='userName eq "%s-Ann"' % T.run, attributes="userName"))
    eq([sorted(k for k in x if k not in ("schemas", "meta")) for x in res],
       [["id", "userName"]], "attributes on a list")
    res = listed(T.c.get("Users", filter='userName eq "%s-Ann"' % T.run,
                         excludedAttributes="name,emails"))
    ok("name" not in res[0] and "emails" not in res[0] and "userName" in res[0],
       "excludedAttributes on a list: %r" % res[0])
    r = T.c.get("Users/" + T.ann, attributes="USERNAME")
    eq(r.json.get("userName"), T.run + "-Ann", "attribute names are case-insensitive")


# ---------------------------------------------------------------- checks: etags

def t_etags():
    m = Multi()
    uid = mkuser(T.run + "-etag", given="E1")
    r = T.c.get("Users/" + uid)
    v1 = r.header("etag")
    m(lambda: ok(v1 and v1.startswith('W/"'), "weak ETag: %r" % v1))
    m(lambda: eq(T.c.get("Users/" + uid).header("etag"), v1, "stable ETag"))
    r = T.c.patch("Users/" + uid, patch([{"op": "replace", "path": "name.givenName", "value": "E2"}]),
                  headers={"If-Match": v1})
    m(lambda: patched(r, "PATCH with a current If-Match"))
    v2 = T.c.get("Users/" + uid).header("etag")
    m(lambda: ok(v2 != v1, "the version changes with the resource"))
    if r.status == 200:
        m(lambda: eq(r.header("etag"), v2, "ETag of the PATCH answer"))
    r = T.c.patch("Users/" + uid, patch([{"op": "replace", "path": "name.givenName", "value": "E3"}]),
                  headers={"If-Match": v1})
    m(lambda: err(r, "precondition"))
    m(lambda: eq(sql_user(uid)["first_name"], "E2", "a stale If-Match changes nothing"))
    m(lambda: err(T.c.put("Users/" + uid, user_body(T.run + "-etag", given="E4"), headers={"If-Match": v1}),
        "precondition"))
    m(lambda: err(T.c.delete("Users/" + uid, headers={"If-Match": v1}), "precondition"))
    m(lambda: ok(sql_user(uid) is not None, "a stale If-Match does not delete"))
    r = T.c.put("Users/" + uid, user_body(T.run + "-etag", given="E5"), headers={"If-Match": v2})
    m(lambda: eq(r.status, 200, "PUT with a current If-Match (%r)" % r))
    r = T.c.patch("Users/" + uid, patch([{"op": "replace", "path": "name.givenName", "value": "E6"}]),
                  headers={"If-Match": "*"})
    m(lambda: patched(r, "If-Match: *"))
    v3 = T.c.get("Users/" + uid).header("etag")
    r = T.c.request("GET", T.c.path("Users/" + uid), headers={"If-None-Match": v3})
    m(lambda: ok(r.status in (200, 304), "If-None-Match: %r" % r))
    # the version is that of the mapped state: an unmapped column does not change it
    psql("UPDATE acme.users SET password_hash = 'x' WHERE id = %d" % int(uid))
    m(lambda: eq(T.c.get("Users/" + uid).header("etag"), v3, "the version after a change of an unmapped column"))
    r = T.c.delete("Users/" + uid, headers={"If-Match": v3})
    m(lambda: eq(r.status, 204, "DELETE with a current If-Match (%r)" % r))
    m.done()


# ---------------------------------------------------------------- checks: patch

def t_patch_user():
    m = Multi()
    login = T.run + "-patch"
    uid = mkuser(login, given="P1", family="F1", email="p1@example.com", dept="IT")
    T.patch_user = uid
    pos = end_position()
    r = T.c.patch("Users/" + uid, patch([
        {"op": "replace", "path": "name.givenName", "value": "P2"},
        {"op": "remove", "path": "name.familyName"},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "p2@example.com"},
        {"op": "add", "path": "externalId", "value": "ext-p"},
        {"op": "replace", "path": ENTERPRISE + ":department", "value": "HR"},
        {"op": "replace", "path": "active", "value": False},
    ]))
    m(lambda: patched(r, "PATCH with paths"))
    row = sql_user(uid)
    m(lambda: eq((row["first_name"], row["last_name"], row["email"], row["external_id"],
        row["department"], row["active"]),
       ("P2", None, "p2@example.com", "ext-p", "HR", "f"), "the row after PATCH"))
    if r.status == 200:
        m(lambda: check_user(r.json, login, "P2", None, "p2@example.com", "ext-p", "HR", active=False))
    m(lambda: expect_events(pos, "suite", [("account.updated", uid, None), ("account.disabled", uid, None)]))
    # path-less add and replace of complex values
    r = T.c.patch("Users/" + uid, patch([
        {"op": "add", "value": {"name": {"familyName": "F3"}, "active": True}},
        {"op": "replace", "value": {"emails": [{"type": "work", "value": "p3@example.com"}]}},
    ]))
    m(lambda: patched(r, "path-less PATCH"))
    row = sql_user(uid)
    m(lambda: eq((row["first_name"], row["last_name"], row["email"], row["active"]),
       ("P2", "F3", "p3@example.com", "t"), "the row after path-less PATCH"))
    # remove a whole complex attribute; attribute names case-insensitive
    r = T.c.patch("Users/" + uid, patch([{"op": "remove", "path": "NAME"},
                                          {"op": "Remove", "path": "Emails"}]))
    m(lambda: patched(r, "remove name and emails"))
    row = sql_user(uid)
    m(lambda: eq((row["first_name"], row["last_name"], row["email"]), (None, None, None), "removed"))
    # replace of userName
    r = T.c.patch("Users/" + uid, patch([{"op": "replace", "path": "userName",
                                          "value": login + "-renamed"}]))
    m(lambda: patched(r, "rename"))
    m(lambda: eq(sql_user(uid)["login"], login + "-renamed", "login"))
    m.done()


def t_patch_atomic():
    uid = T.patch_user
    before = sql_user(uid)
    pos = end_position()
    r = T.c.patch("Users/" + uid, patch([
        {"op": "replace", "path": "name.givenName", "value": "NEVER"},
        {"op": "replace", "path": "active", "value": False},
        {"op": "replace", "path": "nosuchattribute", "value": "x"},
    ]))
    err(r, "bad_path")
    eq(sql_user(uid), before, "no operation of a failed PATCH is applied")
    eq(events_since(pos), [], "no event from a failed PATCH")


def t_patch_errors():
    m = Multi()
    uid = T.patch_user
    p = "Users/" + uid
    m(lambda: err(T.c.patch(p, patch([{"op": "frobnicate", "path": "active", "value": False}])), "unknown_op"))
    m(lambda: err(T.c.patch(p, patch([{"path": "active", "value": False}])), "unknown_op"))
    m(lambda: err(T.c.patch(p, patch([])), "empty_operations"))
    m(lambda: err(T.c.patch(p, {"schemas": [PATCHOP]}), "empty_operations"))
    for path in ("id", "meta", "meta.lastModified", "meta.created", "meta.version", "groups"):
        m(lambda: err(T.c.patch(p, patch([{"op": "replace", "path": path, "value": "x"}])), "readonly_path"))
    m(lambda: err(T.c.patch(p, patch([{"op": "replace", "value": {"id": "999999"}}])), "readonly_path"))
    m(lambda: err(T.c.patch(p, patch([{"op": "replace", "path": "active", "value": {"a": 1}}])), "wrong_type"))
    m(lambda: err(T.c.patch(p, patch([{"op": "replace", "path": "active", "value": "maybe"}])), "wrong_type"))
    m(lambda: err(T.c.patch(p, patch([{"op": "replace", "path": "name.givenName", "value": {"x": 1}}])),
        "wrong_type"))
    m(lambda: err(T.c.patch(p, patch([{"op": "replace", "path": "userName", "value": 7}])), "wrong_type"))
    m(lambda: err(T.c.patch(p, patch([{"op": "replace", "path": "userName", "value": None}])), "wrong_type"))
    m(lambda: err(T.c.patch(p, patch([{"op": "replace", "path": "name.nosuch", "value": "x"}])), "bad_path"))
    m(lambda: err(T.c.patch(p, patch([{"op": "replace", "path": 'emails[type eq "work"', "value": "x"}])),
        "bad_path"))
    m(lambda: err(T.c.patch(p, patch([{"op": "replace", "path": "...", "value": "x"}])), "bad_path"))
    m(lambda: err(T.c.patch(p, patch([{"op": "remove"}])), "remove_no_path"))
    m(lambda: err(T.c.patch(p, patch([{"op": "remove", "path": "userName"}])), "missing_username"))
    m(lambda: err(T.c.request("PATCH", T.c.path(p), b'{"Operations": [', raw=True,
                    headers={"Content-Type": "application/scim+json"}), "bad_json"))
    m(lambda: err(T.c.patch(p, {"schemas": [PATCHOP], "Operations": "replace"}), "bad_json"))
    m(lambda: err(T.c.patch("Users/2000000000", patch([{"op": "replace", "path": "active", "value": False}])),
        "not_found"))
    m.done()


def raw_request(data, timeout=30):
    """Send bytes on a new connection (ignoring a send the server cut short),
    read one answer."""
    s = raw_connect()
    try:
        try:
            s.sendall(data)
        except OSError:
            pass
        s.settimeout(timeout)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        ok(lines and lines[0].startswith("HTTP/1."), "no HTTP answer: %r" % buf[:200])
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0") or 0)
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return Response(status, hdrs, body)
    finally:
        s.close()


def t_body_too_large():
    big = json.dumps({"schemas": [CORE_USER], "userName": T.run + "-big",
                      "externalId": "x" * (1024 * 1024 + 10)}).encode()
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/scim+json\r\nContent-Length: %d\r\n\r\n"
            % (T.c.path("Users"), T.tokens["suite"]["token"], len(big))).encode()
    err(raw_request(head + big), "too_large")
    # a chunked body over the limit, without Content-Length
    chunks = b"".join(b"%x\r\n%s\r\n" % (65536, b"x" * 65536) for _ in range(17)) + b"0\r\n\r\n"
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n"
            % (T.c.path("Users"), T.tokens["suite"]["token"])).encode()
    err(raw_request(head + chunks), "too_large")
    ok(psql1("SELECT count(*) FROM acme.users WHERE login = %s" % lit(T.run + "-big")) == "0",
       "the too-large user was created")
    eq(T.c.get("Users", count="1").status, 200, "the gateway serves after a 413")


# ---------------------------------------------------------------- checks: groups

def t_group_crud():
    m = Multi()
    a = mkuser(T.run + "-ga")
    b = mkuser(T.run + "-gb")
    c = mkuser(T.run + "-gc")
    T.gusers = (a, b, c)
    pos = end_position()
    name = T.run + "-group"
    r = T.c.post("Groups", {"schemas": [CORE_GROUP], "displayName": name,
                            "members": [{"value": a}]})
    m(lambda: eq(r.status, 201, "POST /Groups (%r)" % r))
    scim_ct(r)
    g = r.json
    gid = g["id"]
    T.group = gid
    m(lambda: eq(g.get("displayName"), name, "displayName"))
    m(lambda: ok(CORE_GROUP in g.get("schemas", []), "schemas"))
    m(lambda: eq(member_ids(g), [a], "members"))
    mem = g["members"][0]
    m(lambda: eq(mem.get("display"), T.run + "-ga", "member display"))
    if "$ref" in mem:
        m(lambda: ok(mem["$ref"].endswith("/scim/v2/acme/Users/" + a), "$ref %r" % mem["$ref"]))
    m(lambda: eq(g["meta"]["resourceType"], "Group", "meta.resourceType"))
    m(lambda: ok(g["meta"]["location"].endswith("/scim/v2/acme/Groups/" + gid), "location"))
    m(lambda: eq(r.header("location"), g["meta"]["location"], "Location header"))
    m(lambda: eq(psql1("SELECT name FROM acme.roles WHERE id = %d" % int(gid)), name, "the role row"))
    m(lambda: eq(sql_members(gid), [a], "grants"))
    m(lambda: expect_events(pos, "suite", [("entitlement.created", None, gid), ("access.granted", a, gid)]))
    r = T.c.get("Groups/" + gid)
    m(lambda: eq(r.status, 200))
    m(lambda: eq(member_ids(r.json), [a], "GET members"))
    m(lambda: eq(r.header("etag"), r.json["meta"]["version"], "group ETag"))
    # the user lists the group, read-only
    u = T.c.get("Users/" + a).json
    m(lambda: eq([(x.get("value"), x.get("display")) for x in u.get("groups", [])], [(gid, name)],
       "the user's groups"))
    # filter by displayName, members excluded
    res = listed(T.c.get("Groups", filter='displayName eq "%s"' % name,
                         excludedAttributes="members"), total=1)
    m(lambda: eq(ids(res), [gid], "group by displayName"))
    m(lambda: ok("members" not in res[0], "excludedAttributes=members"))
    res = listed(T.c.get("Groups", filter='members.value eq "%s"' % a))
    m(lambda: ok(gid in ids(res), "groups by members.value"))
    m(lambda: err(T.c.post("Groups", {"schemas": [CORE_GROUP], "displayName": name}), "duplicate"))
    m(lambda: err(T.c.post("Groups", {"schemas": [CORE_GROUP], "members": []}), "missing_username"))
    m.done()


def t_group_members():
    m = Multi()
    a, b, c = T.gusers
    gid = T.group
    p = "Groups/" + gid
    pos = end_position()
    r = T.c.patch(p, patch([{"op": "add", "path": "members", "value": [{"value": b}, {"value": c}]}]))
    m(lambda: patched(r, "add members"))
    m(lambda: eq(sql_members(gid), sorted([a, b, c], key=int), "after add"))
    r = T.c.patch(p, patch([{"op": "add", "path": "members", "value": [{"value": b}]}]))
    m(lambda: patched(r, "add a member twice"))
    m(lambda: eq(sql_members(gid), sorted([a, b, c], key=int), "adding twice is a no-op"))
    r = T.c.patch(p, patch([{"op": "remove", "path": 'members[value eq "%s"]' % a}]))
    m(lambda: patched(r, "remove a member by value filter"))
    m(lambda: eq(sql_members(gid), sorted([b, c], key=int), "after remove"))
    r = T.c.patch(p, patch([{"op": "replace", "path": "members", "value": [{"value": a}, {"value": c}]}]))
    m(lambda: patched(r, "replace members"))
    m(lambda: eq(sql_members(gid), sorted([a, c], key=int), "after replace"))
    r = T.c.patch(p, patch([{"op": "replace", "path": "displayName", "value": T.run + "-renamed"}]))
    m(lambda: patched(r, "rename"))
    m(lambda: eq(psql1("SELECT name FROM acme.roles WHERE id = %d" % int(gid)), T.run + "-renamed", "name"))
    r = T.c.put(p, {"schemas": [CORE_GROUP], "displayName": T.run + "-group",
                    "members": [{"value": b}]})
    m(lambda: eq(r.status, 200, "PUT group (%r)" % r))
    m(lambda: eq(member_ids(r.json), [b], "PUT members"))
    m(lambda: eq(sql_members(gid), [b], "after PUT"))
    r = T.c.patch(p, patch([{"op": "remove", "path": "members"}]))
    m(lambda: patched(r, "remove all members"))
    m(lambda: eq(sql_members(gid), [], "no members"))
    m(lambda: expect_events(pos, "suite", [("access.granted", b, gid), ("access.granted", c, gid),
                                 ("access.revoked", a, gid), ("access.revoked", c, gid),
                                 ("entitlement.updated", None, gid)]))
    m(lambda: err(T.c.patch(p, patch([{"op": "add", "path": "members", "value": [{"value": "2000000000"}]}])),
        "not_found"))
    m(lambda: err(T.c.patch(p, patch([{"op": "add", "path": "members", "value": [{"value": "not-an-id"}]}])),
        "wrong_type"))
    m(lambda: err(T.c.patch(p, patch([{"op": "add", "path": "members", "value": "x"}])), "wrong_type"))
    m(lambda: err(T.c.patch(p, patch([{"op": "remove", "path": "members[value eq"}])), "bad_path"))
    # If-Match on a group: a member change makes the old version stale
    v1 = T.c.get(p).header("etag")
    r = T.c.patch(p, patch([{"op": "add", "path": "members", "value": [{"value": a}]}]),
                  headers={"If-Match": v1})
    m(lambda: patched(r, "member add with a current If-Match"))
    m(lambda: ok(T.c.get(p).header("etag") != v1, "the group's version after a member change"))
    m(lambda: err(T.c.patch(p, patch([{"op": "add", "path": "members", "value": [{"value": b}]}]),
                          headers={"If-Match": v1}), "precondition"))
    m(lambda: eq(sql_members(gid), [a], "a stale If-Match adds no member"))
    m(lambda: err(T.c.put("Groups/2000000000", {"schemas": [CORE_GROUP], "displayName": "x"}),
                  "not_found"))
    m(lambda: err(T.c.delete("Groups/2000000000"), "not_found"))
    m.done()


def t_group_delete():
    gid = T.group
    a = T.gusers[0]
    psql("INSERT INTO acme.user_roles VALUES (%d, %d) ON CONFLICT DO NOTHING" % (int(a), int(gid)))
    pos = end_position()
    r = T.c.delete("Groups/" + gid)
    eq(r.status, 204, "DELETE group (%r)" % r)
    err(T.c.get("Groups/" + gid), "not_found")
    eq(psql1("SELECT count(*) FROM acme.roles WHERE id = %d" % int(gid)), "0", "the role row")
    expect_events(pos, "suite", [("entitlement.deleted", None, gid), ("access.revoked", a, gid)])


def t_groups_list():
    total = int(psql1("SELECT count(*) FROM acme.roles"))
    res = listed(T.c.get("Groups", startIndex="1", count="100"), total=total)
    names = {x["displayName"] for x in res}
    ok({"viewer", "editor"} <= names, "groups: %r" % names)


# ---------------------------------------------------------------- checks: operations

def t_operations_forbidden():
    m = Multi()
    c = Client(T.url, T.tokens["ro"]["token"], "ro")
    res = listed(c.get("Users", filter='userName eq "ro-alice"'), total=1)
    uid = res[0]["id"]
    m(lambda: err(c.post("Users", user_body("ro-new")), "forbidden", detail_has="operations"))
    m(lambda: err(c.delete("Users/" + uid), "forbidden", detail_has="operations"))
    m(lambda: err(c.post("Groups", {"schemas": [CORE_GROUP], "displayName": "ro-g"}), "forbidden",
        detail_has="operations"))
    m(lambda: eq(psql1("SELECT count(*) FROM ro.users"), "2", "nothing created or deleted"))
    r = c.patch("Users/" + uid, patch([{"op": "replace", "path": "active", "value": False}]))
    patched(r, "an allowed operation (disable)")
    m(lambda: eq(sql_user(uid, "ro")["active"], "f", "disabled"))
    m.done()


def t_writable_roles():
    """scim.user_grants = "roles": a User's grants are its writable roles
    (value: the entitlement id, display: its name); each change is a grant or
    a revoke with its event."""
    m = Multi()
    c = Client(T.url, T.tokens["rw"]["token"], "rw")
    roles = {g["displayName"]: g["id"] for g in listed(c.get("Groups"))}
    viewer, editor = roles["rw-viewer"], roles["rw-editor"]
    pos = end_position("rw")
    r = c.post("Users", dict(user_body(T.run + "-rw"), roles=[{"value": viewer}]))
    eq(r.status, 201, "POST with roles (%r)" % r)
    uid = r.json["id"]
    m(lambda: eq(sorted(x["value"] for x in r.json.get("roles", [])), [viewer], "roles after POST"))
    m(lambda: ok("groups" not in r.json, "no groups attribute beside roles: %r" % r.json.get("groups")))
    r = c.patch("Users/" + uid, patch([{"op": "add", "path": "roles", "value": [{"value": editor}]}]))
    patched(r, "PATCH add roles")
    r = c.get("Users/" + uid)
    m(lambda: eq(sorted(x["value"] for x in r.json.get("roles", [])), sorted([viewer, editor]),
                 "roles after add"))
    r = c.patch("Users/" + uid, patch([{"op": "remove", "path": 'roles[value eq "%s"]' % viewer}]))
    patched(r, "PATCH remove roles[value eq]")
    r = c.get("Users/" + uid)
    m(lambda: eq([x["value"] for x in r.json.get("roles", [])], [editor], "roles after remove"))
    m(lambda: eq(psql1("SELECT string_agg(role_id::text, ',') FROM rw.user_roles WHERE user_id = %s"
                       % uid), editor, "the membership table"))
    m(lambda: expect_events(pos, "rw", [("account.created", uid, None), ("access.granted", uid, viewer),
                                        ("access.granted", uid, editor), ("access.revoked", uid, viewer)],
                            app="rw"))
    m.done()


# ---------------------------------------------------------------- platforms

def t_entra():
    m = Multi()
    c = Client(T.url, T.tokens["entra"]["token"], "acme")
    pos = end_position()
    # Test Connection: a filter on a random GUID
    r = c.get("Users", filter='userName eq "%s"' % uuid.uuid4())
    res = listed(r, total=0)
    m(lambda: eq(res, [], "Test Connection"))
    r = c.get("Groups", excludedAttributes="members", filter='displayName eq "%s"' % uuid.uuid4())
    m(lambda: eq(listed(r, total=0), [], "group lookup"))
    login = "Test_User_%s@testuser.com" % uuid.uuid4()
    body = {
        "schemas": [CORE_USER, ENTERPRISE],
        "externalId": str(uuid.uuid4()),
        "userName": login,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": "Test_User_%s@testuser.com" % uuid.uuid4()}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName",
                 "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"department": "Eng", "employeeNumber": "1234"},
    }
    r = c.post("Users", body)
    m(lambda: eq(r.status, 201, "Entra create (%r)" % r))
    uid = r.json["id"]
    m(lambda: eq(ids(listed(c.get("Users", filter='userName eq "%s"' % login), total=1)), [uid], "lookup"))
    # the default PATCH dialect: capitalised op, booleans as strings
    r = c.patch("Users/" + uid, patch([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Add", "path": "name.givenName", "value": "updatedGiven"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "upd@testuser.com"},
        {"op": "Replace", "path": ENTERPRISE + ":department", "value": "Finance"},
        {"op": "Add", "path": "externalId", "value": "ext-entra"},
    ]))
    m(lambda: patched(r, "Entra default-dialect PATCH"))
    row = sql_user(uid)
    m(lambda: eq((row["active"], row["first_name"], row["email"], row["department"], row["external_id"]),
       ("f", "updatedGiven", "upd@testuser.com", "Finance", "ext-entra"), "after the PATCH"))
    r = c.patch("Users/" + uid, patch([{"op": "Replace", "path": "active", "value": "True"}]))
    m(lambda: patched(r, "\"True\""))
    m(lambda: eq(sql_user(uid)["active"], "t", "active again"))
    # aadOptscim062020: path-less replace with dotted keys, real booleans
    r = c.patch("Users/" + uid, patch([{"op": "replace", "value": {
        "active": False, "name.givenName": "G3", "name.familyName": "F3",
        'emails[type eq "work"].value': "g3@testuser.com",
        ENTERPRISE + ":department": "Ops", "externalId": "E3"}}]))
    m(lambda: patched(r, "aadOptscim062020 PATCH"))
    row = sql_user(uid)
    m(lambda: eq((row["active"], row["first_name"], row["last_name"], row["email"], row["department"],
        row["external_id"]), ("f", "G3", "F3", "g3@testuser.com", "Ops", "E3"), "after it"))
    # groups: create, add members with "$ref": null, remove in both dialects
    other = mkuser("entra-%s-m2" % T.run, client=c)
    r = c.post("Groups", {"schemas": [CORE_GROUP], "externalId": str(uuid.uuid4()),
                          "displayName": "EntraGroup-" + T.run, "members": []})
    m(lambda: eq(r.status, 201, "Entra group create (%r)" % r))
    gid = r.json["id"]
    r = c.patch("Groups/" + gid, patch([{"op": "Add", "path": "members",
                                         "value": [{"$ref": None, "value": uid},
                                                   {"$ref": None, "value": other}]}]))
    m(lambda: patched(r, "Entra member add"))
    m(lambda: eq(sql_members(gid), sorted([uid, other], key=int), "members"))
    r = c.patch("Groups/" + gid, patch([{"op": "Remove", "path": "members",
                                         "value": [{"$ref": None, "value": uid}]}]))
    m(lambda: patched(r, "Entra member removal (default dialect)"))
    m(lambda: eq(sql_members(gid), [other], "after removal"))
    r = c.patch("Groups/" + gid, patch([{"op": "remove", "path": 'members[value eq "%s"]' % other}]))
    m(lambda: patched(r, "Entra member removal (aadOptscim062020)"))
    m(lambda: eq(sql_members(gid), [], "after removal"))
    r = c.patch("Groups/" + gid, patch([{"op": "Replace", "path": "displayName",
                                         "value": "EntraGroup2-" + T.run}]))
    m(lambda: patched(r, "Entra group rename"))
    r = c.delete("Users/" + uid)
    m(lambda: eq(r.status, 204, "Entra delete (%r)" % r))
    m(lambda: eq(c.delete("Groups/" + gid).status, 204, "Entra group delete"))
    m(lambda: expect_events(pos, "entra", [("account.created", uid, None), ("account.disabled", uid, None),
                                 ("account.enabled", uid, None), ("account.updated", uid, None),
                                 ("access.granted", uid, gid), ("access.revoked", uid, gid),
                                 ("entitlement.created", None, gid),
                                 ("entitlement.updated", None, gid),
                                 ("account.deleted", uid, None)]))
    m.done()


def t_okta():
    m = Multi()
    c = Client(T.url, T.tokens["okta"]["token"], "acme")
    pos = end_position()
    login = "isabella.%s@example.com" % T.run
    path = c.path("Users") + "?filter=userName%20eq%20%22" + login.replace("@", "%40") + \
        "%22&startIndex=1&count=100"
    r = c.request("GET", path)
    m(lambda: eq(listed(r, total=0), [], "Okta lookup of a new user"))
    m(lambda: eq(r.json.get("startIndex"), 1, "startIndex"))
    body = {"schemas": [CORE_USER], "userName": login,
            "name": {"givenName": "Isabella", "familyName": "Jones"},
            "emails": [{"primary": True, "value": login, "type": "work"}],
            "displayName": "Isabella Jones", "locale": "en-US",
            "externalId": "00u1dhhb1fkIGP7RL1d8", "groups": [], "password": "1mz050nq",
            "active": True}
    r = c.post("Users", body)
    m(lambda: eq(r.status, 201, "Okta create (%r)" % r))
    uid = r.json["id"]
    m(lambda: eq(sql_user(uid)["password_hash"], None, "the password is not stored"))
    r = c.request("GET", path)
    m(lambda: eq(ids(listed(r, total=1)), [uid], "Okta lookup"))
    m(lambda: eq(c.get("Users/" + uid).status, 200, "GET by id"))
    # group push: create, rename by path-less replace, replace the member list
    gname = "Okta Group " + T.run
    r = c.post("Groups", {"schemas": [CORE_GROUP], "displayName": gname, "members": []})
    m(lambda: eq(r.status, 201, "Okta group create (%r)" % r))
    gid = r.json["id"]
    r = c.request("GET", c.path("Groups") + "?filter=displayName%20eq%20%22" +
                  gname.replace(" ", "%20") + "%22&startIndex=1&count=100")
    m(lambda: eq(ids(listed(r, total=1)), [gid], "group lookup"))
    r = c.patch("Groups/" + gid, patch([{"op": "replace", "value": {"id": gid,
                                                                    "displayName": gname + " 2"}}]))
    m(lambda: patched(r, "Okta group rename"))
    m(lambda: eq(psql1("SELECT name FROM acme.roles WHERE id = %d" % int(gid)), gname + " 2", "renamed"))
    u2 = mkuser("okta2.%s@example.com" % T.run, client=c)
    r = c.patch("Groups/" + gid, patch([{"op": "replace", "path": "members", "value": [
        {"value": uid, "display": login}, {"value": u2, "display": "okta2"}]}]))
    m(lambda: patched(r, "Okta member list replace"))
    m(lambda: eq(sql_members(gid), sorted([uid, u2], key=int), "members"))
    r = c.patch("Groups/" + gid, patch([{"op": "replace", "path": "members",
                                         "value": [{"value": uid, "display": login}]}]))
    m(lambda: patched(r, "Okta member list replace (smaller)"))
    m(lambda: eq(sql_members(gid), [uid], "members"))
    # profile update by full PUT; groups in it are read-only and ignored
    put = {"schemas": [CORE_USER], "id": uid, "userName": login,
           "name": {"givenName": "Isabella", "familyName": "Smith"},
           "emails": [{"primary": True, "value": "isa@example.com", "type": "work"}],
           "active": True, "groups": [], "meta": {"resourceType": "User"}}
    r = c.put("Users/" + uid, put)
    m(lambda: eq(r.status, 200, "Okta PUT (%r)" % r))
    row = sql_user(uid)
    m(lambda: eq((row["last_name"], row["email"]), ("Smith", "isa@example.com"), "after PUT"))
    m(lambda: eq(sql_members(gid), [uid], "PUT with groups [] keeps the grants (read-only attribute)"))
    # deactivation: path-less replace
    r = c.patch("Users/" + uid, patch([{"op": "replace", "value": {"active": False}}]))
    m(lambda: patched(r, "Okta deactivate"))
    m(lambda: eq(sql_user(uid)["active"], "f", "deactivated"))
    r = c.get("Users/" + uid)
    m(lambda: eq(r.json.get("active"), False, "active false"))
    m(lambda: eq(c.delete("Groups/" + gid).status, 204, "Okta group delete"))
    m(lambda: expect_events(pos, "okta", [("account.created", uid, None), ("entitlement.created", None, gid),
                                ("entitlement.updated", None, gid), ("access.granted", u2, gid),
                                ("access.revoked", u2, gid), ("account.updated", uid, None),
                                ("account.disabled", uid, None),
                                ("entitlement.deleted", None, gid)]))
    m.done()


def aggregate(c, kind, count):
    got = []
    start = 1
    while True:
        r = c.get(kind, startIndex=str(start), count=str(count))
        res = listed(r)
        total = r.json["totalResults"]
        got += ids(res)
        start += len(res)
        if start > total or not res:
            break
    return got, total


def discovery(c, extra=()):
    for p in ("ServiceProviderConfig", "ResourceTypes", "Schemas") + tuple(extra):
        r = c.get(p)
        eq(r.status, 200, "GET %s (%r)" % (p, r))
        scim_ct(r)


def t_sailpoint():
    m = Multi()
    c = Client(T.url, T.tokens["sailpoint"]["token"], "acme")
    discovery(c, ("ResourceTypes/User", "ResourceTypes/Group"))
    got, total = aggregate(c, "Users", 100)
    m(lambda: eq(total, len(all_user_ids()), "totalResults"))
    m(lambda: eq(sorted(got, key=int), all_user_ids(), "full aggregation"))
    m(lambda: eq(len(got), len(set(got)), "no account twice"))
    groups, gtotal = aggregate(c, "Groups", 100)
    m(lambda: eq(sorted(groups, key=int),
       sorted((r[0] for r in psql("SELECT id FROM acme.roles")), key=int), "groups"))
    # delta aggregation by meta.lastModified
    since = db_now()
    changed = T.page_ids[:3]
    pos = end_position()
    for uid in changed:
        r = c.patch("Users/" + uid, patch([{"op": "replace", "path": "name.givenName",
                                            "value": "delta"}]))
        m(lambda: patched(r, "change for the delta"))
    res = listed(c.get("Users", filter='meta.lastModified gt "%s"' % since))
    m(lambda: eq(sorted(ids(res), key=int), changed, "delta by meta.lastModified gt"))
    for u in res:
        m(lambda: ok(parse_time(u["meta"]["lastModified"]) > parse_time(since), "lastModified"))
    res = listed(c.get("Users", filter='meta.lastModified ge "%s" and name.givenName eq "delta"'
                       % since))
    m(lambda: eq(sorted(ids(res), key=int), changed, "ge and a filter"))
    later = db_now()
    m(lambda: eq(listed(c.get("Users", filter='meta.lastModified gt "%s"' % later), total=0), [],
       "nothing after now"))
    m(lambda: expect_events(pos, "sailpoint", [("account.updated", u, None) for u in changed]))
    m.done()


def t_midpoint():
    m = Multi()
    c = Client(T.url, T.tokens["midpoint"]["token"], "acme")
    discovery(c, ("ResourceTypes/User", "Schemas/" + CORE_USER, "Schemas/" + CORE_GROUP,
                  "Schemas/" + ENTERPRISE))
    got, total = aggregate(c, "Users", 1000)
    m(lambda: eq(sorted(got, key=int), all_user_ids(), "full aggregation (count=1000)"))
    since = db_now()
    uid = T.page_ids[5]
    r = c.patch("Users/" + uid, patch([{"op": "replace", "path": "active", "value": False}]))
    m(lambda: patched(r, "change"))
    res = listed(c.get("Users", filter='meta.lastModified gt "%s"' % since, startIndex="1",
                       count="100"), total=1)
    m(lambda: eq(ids(res), [uid], "delta"))
    m(lambda: eq(res[0]["active"], False, "delta shows the change"))
    # midPoint reads the created timestamp too
    res = listed(c.get("Users", filter='meta.created gt "%s"' % since), total=0)
    m.done()


# ---------------------------------------------------------------- concurrency

def t_concurrent_members():
    gid = mkgroup(T.run + "-race")
    rounds = 25
    users = [(mkuser("%s-r1-%02d" % (T.run, i)), mkuser("%s-r2-%02d" % (T.run, i)))
             for i in range(rounds)]
    pos = end_position()
    clients = [Client(T.url, T.tokens["racer1"]["token"], "acme"),
               Client(T.url2, T.tokens["racer2"]["token"], "acme")]
    barrier = threading.Barrier(2)
    failures = []

    def racer(k):
        for i in range(rounds):
            try:
                barrier.wait(10)
                r = clients[k].patch("Groups/" + gid, patch([
                    {"op": "add", "path": "members", "value": [{"value": users[i][k]}]}]))
                if r.status not in (200, 204):
                    failures.append((k, i, r))
            except Exception as e:
                failures.append((k, i, repr(e)))

    ths = [threading.Thread(target=racer, args=(k,)) for k in (0, 1)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(120)
    eq(failures, [], "failed adds")
    want_ids = sorted([u for pair in users for u in pair], key=int)
    eq(sql_members(gid), want_ids, "grants after concurrent adds")
    eq(member_ids(T.c.get("Groups/" + gid).json), sorted(want_ids), "members after concurrent adds")
    evs = events_since(pos)
    by = {}
    for e in evs:
        eq(e["type"], "access.granted", "event type")
        by.setdefault(e["data"]["origin"].get("client"), set()).add(e["data"]["account"]["id"])
    eq(by, {"scim:racer1": {u[0] for u in users}, "scim:racer2": {u[1] for u in users}},
       "one grant event per add, each with its client")


def race(fns):
    """Run the functions at the same moment, one thread each; their results."""
    barrier = threading.Barrier(len(fns))
    out = [None] * len(fns)

    def run(i):
        try:
            barrier.wait(10)
            out[i] = fns[i]()
        except Exception as e:
            out[i] = e

    ths = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for th in ths:
        th.start()
    for th in ths:
        th.join(60)
    return out


def t_concurrent_if_match():
    # two clients holding the same version: exactly one write wins, the other
    # gets 412 (the read-modify-write is serialised, RFC 7644 section 3.14)
    uid = mkuser(T.run + "-ifm", given="G0")
    c1 = Client(T.url, T.tokens["racer1"]["token"], "acme")
    c2 = Client(T.url2, T.tokens["racer2"]["token"], "acme")
    tally = []
    for i in range(15):
        v = T.c.get("Users/" + uid).header("etag")
        r1, r2 = race([
            lambda: c1.patch("Users/" + uid, patch([{"op": "replace", "path": "name.givenName",
                                                     "value": "A%d" % i}]), headers={"If-Match": v}),
            lambda: c2.patch("Users/" + uid, patch([{"op": "replace", "path": "name.givenName",
                                                     "value": "B%d" % i}]), headers={"If-Match": v})])
        st = sorted(x.status if hasattr(x, "status") else repr(x) for x in (r1, r2))
        tally.append(st)
        ok(st in ([200, 412], [204, 412]), "round %d: %r / %r" % (i, r1, r2))
        winner = "A%d" % i if r1.status in (200, 204) else "B%d" % i
        eq(sql_user(uid)["first_name"], winner, "round %d: the winner's value" % i)


def t_concurrent_replace_members():
    # Okta's replace of a whole member list from two clients at once: the
    # result is one list or the other, never a mix
    gid = mkgroup(T.run + "-rep")
    a = [mkuser("%s-ra-%d" % (T.run, i)) for i in range(4)]
    b = [mkuser("%s-rb-%d" % (T.run, i)) for i in range(4)]
    c1 = Client(T.url, T.tokens["racer1"]["token"], "acme")
    c2 = Client(T.url2, T.tokens["racer2"]["token"], "acme")
    for i in range(10):
        out = race([
            lambda: c1.patch("Groups/" + gid, patch([{"op": "replace", "path": "members",
                                                      "value": [{"value": x} for x in a]}])),
            lambda: c2.patch("Groups/" + gid, patch([{"op": "replace", "path": "members",
                                                      "value": [{"value": x} for x in b]}]))])
        for r in out:
            ok(hasattr(r, "status") and r.status in (200, 204), "round %d: %r" % (i, r))
        got = sql_members(gid)
        ok(got in (sorted(a, key=int), sorted(b, key=int)),
           "round %d: members %r are neither list" % (i, got))


# ---------------------------------------------------------------- end checks

def t_stall():
    for th in T.stall.threads:
        th.join(max(1, 150 - (time.monotonic() - T.t0)))
    for kind in ("body", "headers"):
        res = T.stall.results.get(kind)
        ok(res is not None and res[0] not in (None, "error"),
           "a request stalled in its %s was not cut off: %r" % (kind, res))
        ok(res[0] < 120, "stall cut after %.0f s" % res[0])
        if res[1]:
            ok(res[1].startswith(b"HTTP/1.1 4"), "answer to the stalled request: %r" % res[1][:200])


def t_events_audit():
    evs = events_since(T.pos0)
    ok(len(evs) > 50, "events of the run: %d" % len(evs))
    names = {"scim:" + n for n in T.tokens}
    for e in evs:
        o = e["data"].get("origin") or {}
        if o.get("via") == "direct":
            continue		# the suite's own setup statements (psql)
        eq(o.get("via"), "platform", "origin.via of %s" % e["type"])
        ok(o.get("client") in names, "origin.client %r of %s" % (o.get("client"), e["type"]))
    direct = [e for e in evs if e["data"]["origin"].get("via") == "direct"]
    for e in direct:
        ok("client" not in e["data"]["origin"], "a direct event with a client: %r" % e)
    ok(any(e["data"]["origin"].get("client") == "scim:suite" for e in evs), "no scim:suite event")


def t_tokens_view():
    # the gateway's use shows in connector.tokens; the tokens themselves are
    # stored nowhere, only their hashes
    rows = psql("SELECT name, last_used IS NOT NULL, revoked IS NOT NULL FROM connector.tokens "
                "WHERE app = 'acme' AND name IN ('suite', %s)" % lit(T.revocation.name
                                                               if T.revocation else "x"))
    got = {r[0]: (r[1], r[2]) for r in rows}
    eq(got.get("suite"), ("t", "f"), "suite token: used, not revoked")
    if T.revocation:
        eq(got.get(T.revocation.name), ("t", "t"), "revoked token: used, revoked")
    for name, t in T.tokens.items():
        n = psql1("SELECT count(*) FROM connector.token t WHERE strpos(t::text, %s) > 0 "
                  "OR strpos(encode(t.hash, 'escape'), %s) > 0" % (lit(t["token"]), lit(t["token"])))
        eq(n, "0", "rows of connector.token holding the token %s in clear" % name)


def t_gateway_alive():
    pid = int(os.environ.get("SCIM_GATEWAY_PID", "0"))
    if pid:
        os.kill(pid, 0)
    eq(T.anon.request("GET", "/healthz", auth=False).status, 200, "healthz")


def t_db_restart():
    pid = int(os.environ["SCIM_GATEWAY_PID"])
    eq(T.c.get("Users", count="1").status, 200, "before")
    subprocess.run(os.environ["SCIM_DB_STOP"], shell=True, check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    try:
        r = T.c.get("Users", count="1")
        err(r, "unavailable")
        r = T.c.post("Users", user_body(T.run + "-down"))
        err(r, "unavailable")
        h = T.anon.request("GET", "/healthz", auth=False)
        eq(h.status, 503, "healthz while the database is down")
    finally:
        subprocess.run(os.environ["SCIM_DB_START"], shell=True, check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
    # once the database accepts connections again, the gateway answers within
    # a few seconds, and from its first success on every request succeeds: a
    # pooled connection that the restart broke must be replaced, not
    # reported as a 503
    t0 = time.monotonic()
    while True:
        try:
            psql("SELECT 1")
            break
        except AssertionError:
            ok(time.monotonic() - t0 < 30, "the database did not come back")
            time.sleep(0.2)
    t0 = time.monotonic()
    while True:
        r = T.c.get("Users", count="1")
        if r.status == 200 or time.monotonic() - t0 > 5:
            break
        time.sleep(0.2)
    eq(r.status, 200, "5 s after the database came back (%r)" % r)
    # once it answers again, it answers every request: no pooled connection
    # broken by the restart may surface as a 503 later
    bad = []

    def burst():
        c = Client(T.url, T.tokens["suite"]["token"], "acme")
        for _ in range(10):
            x = c.get("Users", count="1")
            if x.status != 200:
                bad.append(x)
            c.close()			# a new connection each time: any pool slot

    ths = [threading.Thread(target=burst) for _ in range(8)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(60)
    eq(bad, [], "answers after the database came back")
    os.kill(pid, 0)			# the same gateway process
    eq(T.c.post("Users", user_body(T.run + "-back")).status, 201, "a write after the restart")
    eq(T.anon.request("GET", "/healthz", auth=False).status, 200, "healthz")


# ---------------------------------------------------------------- TLS

def tls_conn(ctx, hostname="127.0.0.1"):
    s = socket.create_connection((T.host, T.port), timeout=10)
    return ctx.wrap_socket(s, server_hostname=hostname)


def t_tls():
    ca = os.environ["SCIM_CA"]
    ctx = ssl.create_default_context(cafile=ca)
    with tls_conn(ctx) as s:
        ok(s.version() in ("TLSv1.2", "TLSv1.3"), "TLS version %s" % s.version())
    # a client that does not trust the test CA refuses the gateway
    try:
        with tls_conn(ssl.create_default_context()):
            raise AssertionError("a certificate from an untrusted CA was accepted")
    except ssl.SSLCertVerificationError:
        pass
    # TLS 1.1 and older are refused by the gateway
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        with tls_conn(old) as s:
            raise AssertionError("a TLS 1.1 handshake succeeded (%s)" % s.version())
    except (ssl.SSLError, ConnectionError, OSError):
        pass
    # plain HTTP on the TLS port gets no SCIM answer
    s = socket.create_connection((T.host, T.port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    s.settimeout(10)
    try:
        data = s.recv(100)
    except OSError:
        data = b""
    s.close()
    ok(not data.startswith(b"HTTP/1.1 200"), "plain HTTP answered on the TLS port")


def peer_cn():
    ctx = ssl.create_default_context(cafile=os.environ["SCIM_CA"])
    ctx.check_hostname = False
    with tls_conn(ctx) as s:
        cert = s.getpeercert()
    return dict(x[0] for x in cert["subject"])["commonName"]


def t_tls_reload():
    certs = os.environ["SCIM_CERTS"]
    live_crt = os.environ["SCIM_LIVE_CERT"]
    live_key = os.environ["SCIM_LIVE_KEY"]
    pid = int(os.environ["SCIM_GATEWAY_PID"])
    eq(peer_cn(), "localhost", "the certificate at start")

    def install(name):
        for src, dst in ((name + ".crt", live_crt), (name + ".key", live_key)):
            with open(os.path.join(certs, src), "rb") as f:
                data = f.read()
            with open(dst + ".tmp", "wb") as f:
                f.write(data)
            os.replace(dst + ".tmp", dst)
        os.kill(pid, signal.SIGHUP)

    try:
        install("wrong")
        t0 = time.monotonic()
        while peer_cn() != "wrong.example" and time.monotonic() - t0 < 10:
            time.sleep(0.2)
        eq(peer_cn(), "wrong.example", "the certificate after SIGHUP")
    finally:
        install("server")
    t0 = time.monotonic()
    while peer_cn() != "localhost" and time.monotonic() - t0 < 10:
        time.sleep(0.2)
    eq(peer_cn(), "localhost", "the certificate after the second SIGHUP")
    T.c.close()
    eq(T.c.get("Users", count="1").status, 200, "requests after reloads")


# ---------------------------------------------------------------- SIGTERM

def drain(url):
    """A request in flight when SIGTERM arrives (its headers and half its body
    sent) is finished: the rest of the body is read and answered.  Then the
    gateway exits by itself; run.sh checks how and how fast."""
    global T
    T = Ctx()
    T.url = url.rstrip("/")
    T.https = T.url.startswith("https:")
    T.tokens = load_tokens()
    c = Client(T.url, T.tokens["suite"]["token"], "acme")
    T.host, T.port = c.host, c.port
    pid = int(os.environ["SCIM_GATEWAY_PID"])
    body = json.dumps(user_body("drain-%d" % random.randrange(10 ** 9))).encode()
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/scim+json\r\nContent-Length: %d\r\n\r\n"
            % (c.path("Users"), T.tokens["suite"]["token"], len(body))).encode()
    s = raw_connect()
    s.sendall(head + body[:10])
    time.sleep(0.3)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.5)
    status = None
    try:
        s.sendall(body[10:])
        s.settimeout(10)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"HTTP/1."):
            status = int(data.split()[1])
    except OSError as e:
        data = repr(e).encode()
    s.close()
    if status == 201:
        print("ok - SIGTERM: the request in flight was finished (201)")
        return 0
    print("not ok - SIGTERM: the request in flight got %r" % data[:200])
    return 1


# ---------------------------------------------------------------- main

def main():
    global T
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--url2", help="a second gateway on the same database, for racer2")
    ap.add_argument("--run", default="run")
    ap.add_argument("--db-restart", action="store_true")
    ap.add_argument("--tls-checks", action="store_true")
    ap.add_argument("--healthz")
    ap.add_argument("--drain", action="store_true",
                    help="SIGTERM the gateway (SCIM_GATEWAY_PID) while a request is in flight")
    a = ap.parse_args()
    if a.drain:
        return drain(a.url)
    if a.healthz:
        try:
            r = Client(a.healthz, timeout=2).request("GET", "/healthz", auth=False)
            return 0 if r.status == 200 else 1
        except Exception:
            return 1

    T = Ctx()
    T.t0 = time.monotonic()
    T.url = a.url.rstrip("/")
    T.url2 = (a.url2 or a.url).rstrip("/")
    T.https = T.url.startswith("https:")
    T.tokens = load_tokens()
    T.run = a.run + "".join(random.choice(string.ascii_lowercase) for _ in range(5))
    T.fp = T.run + "-flt-"
    c = Client(T.url, T.tokens["suite"]["token"], "acme")
    T.c = c
    T.host, T.port = c.host, c.port
    T.anon = Client(T.url, None, "acme")
    T.groups_viewer = psql1("SELECT id FROM acme.roles WHERE name = 'viewer'")
    R = Runner("scim " + a.run)

    R.check("healthz", t_healthz)
    if not R.check("setup: position of the event stream", lambda: setattr(T, "pos0", end_position())):
        T.pos0 = 0
    T.stall = Stall()
    R.check("an expiring token works before it expires", t_expired_token_start)
    try:
        T.revocation = Revocation()
    except Exception as e:
        T.revocation = None
        R.check("revocation setup", lambda: (_ for _ in ()).throw(e))

    checks = [
        ("no token: 401 with WWW-Authenticate: Bearer", t_auth_missing),
        ("wrong tokens and schemes: 401", t_auth_wrong),
        ("the Bearer scheme is case-insensitive", t_auth_scheme_case),
        ("a token of another app: 401", t_auth_other_app),
        ("unknown app: 404 naming it", t_unknown_app),
        ("unknown endpoint and ids: 404", t_unknown_endpoint),
        ("content types", t_content_types),
        ("discovery: ServiceProviderConfig", t_spc),
        ("discovery: ResourceTypes", t_resource_types),
        ("discovery: Schemas consistent with the mapping", t_schemas),
        ("POST /Users", t_create_user),
        ("GET /Users/<id>", t_get_user),
        ("X-Forwarded-Proto: locations behind a TLS proxy", t_forwarded_proto),
        ("user_grants roles: writable roles on the User", t_writable_roles),
        ("POST errors: missing userName, wrong types, bad JSON", t_create_user_errors),
        ("duplicate userName in another case: 409 uniqueness", t_duplicate_username),
        ("unmapped attributes and password ignored", t_unmapped_ignored),
        ("PUT replaces", t_put_user),
        ("PUT errors: changing id, missing userName, unknown id", t_put_errors),
        ("DELETE /Users/<id>", t_delete_user),
        ("filter: setup", t_filter_setup),
        ("filter: every operator", t_filter_operators),
        ("filter: and, or, not, parentheses, precedence", t_filter_logic),
        ("filter: value paths", t_filter_value_paths),
        ("filter: case-insensitive names and userName", t_filter_case),
        ("filter: quotes, LIKE wildcards, unicode", t_filter_odd_values),
        ("filter errors: 400 invalidFilter", t_filter_errors),
        ("non-human accounts: userType listed and filterable", t_filter_usertype),
        ("paging: setup", t_paging_setup),
        ("paging: startIndex/count with exact totalResults", t_paging_index),
        ("paging: count 0, negative, 100000; startIndex 0 and past the end", t_paging_edges),
        ("RFC 9865 cursor: walk the whole directory", t_cursor_walk),
        ("RFC 9865 cursor: with a filter", t_cursor_filtered),
        ("RFC 9865 cursor: invalid cursors", t_cursor_errors),
        ("attributes and excludedAttributes", t_attributes),
        ("ETag and If-Match", t_etags),
        ("PATCH add/replace/remove", t_patch_user),
        ("PATCH is all or nothing", t_patch_atomic),
        ("PATCH errors", t_patch_errors),
        ("body over 1 MB: 413", t_body_too_large),
        ("Groups: create, read, filter", t_group_crud),
        ("Groups: member add/remove/replace, rename, PUT", t_group_members),
        ("Groups: delete", t_group_delete),
        ("Groups: list", t_groups_list),
        ("operations allowlist: 403 naming operations", t_operations_forbidden),
        ("Entra ID request sequence", t_entra),
        ("Okta request sequence", t_okta),
        ("SailPoint discovery, aggregation and delta", t_sailpoint),
        ("midPoint discovery, aggregation and delta", t_midpoint),
        ("two clients adding members to one group lose none", t_concurrent_members),
        ("If-Match races: exactly one of two writers wins", t_concurrent_if_match),
        ("concurrent replaces of a member list: one list, never a mix", t_concurrent_replace_members),
        ("expired token: 401", t_expired_token_end),
        ("revoked token: 401 within 10 s", t_revoked_token if T.revocation else None),
        ("stalled requests are cut off while others are served", t_stall),
        ("every write's event: origin.via platform, origin.client scim:<token>", t_events_audit),
        ("connector.tokens: last_used, revoked; no token stored in clear", t_tokens_view),
        ("the gateway is alive", t_gateway_alive),
    ]
    if a.tls_checks:
        checks += [("TLS: versions, trust, plain HTTP refused", t_tls),
                   ("TLS: SIGHUP reloads the certificate", t_tls_reload)]
    if a.db_restart:
        checks += [("database stopped: 503, then served again without a restart", t_db_restart)]
    for name, fn in checks:
        if fn is None:
            R.check(name, lambda: (_ for _ in ()).throw(AssertionError("setup failed")))
        else:
            R.check(name, fn)
    print("# %s took %.0f s" % (R.label, time.monotonic() - T.t0))
    return R.summary()


if __name__ == "__main__":
    sys.exit(main())
