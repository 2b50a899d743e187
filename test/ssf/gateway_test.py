#!/usr/bin/python3
"""The Shared Signals transmitter end to end (spec section 12, docs/ssf.md).

A real connector-gateway (plain HTTP on loopback, --insecure-http) in front
of a real cluster, called as an SSF receiver calls it: discovery, the JWK
Set, stream management, status, subjects, verification and RFC 8936 poll.
Every SET polled is verified with JOSE code independent of the extension
(verify.py's, over the JWK Set fetched from the gateway) and with PyJWT.
Every bad input gets its exact status and error.

Runs inside pg_virtualenv (PG* variables name a superuser) on the database
given as the only argument.  SSF_GATEWAY_BIN names a gateway build (default:
the installed one).  Prints "ok"/"not ok" lines; exits 1 on any failure.
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

import jwt
import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify import check, signature_ok  # noqa: E402
import verify  # noqa: E402

RISC = "https://schemas.openid.net/secevent/risc/event-type/"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SCIM = "urn:ietf:params:scim:event:"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
SUPPORTED = sorted([SCIM + "prov:create:notice", SCIM + "prov:patch:notice", SCIM + "prov:delete",
                    RISC + "identifier-changed", RISC + "account-disabled", RISC + "account-enabled",
                    RISC + "account-purged", CAEP + "session-revoked", CAEP + "credential-change"])


class Gateway:
    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, token=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        text = r.read().decode()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = None
        return r.status, doc, hdrs, text


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    db = sys.argv[1]
    admin = psycopg2.connect(dbname=db)
    admin.autocommit = True
    cur = admin.cursor()

    def sql(q, *args):
        cur.execute(q, args)
        return cur.fetchall() if cur.description else None

    sql("CREATE EXTENSION connector")
    with open("test/fixtures/crm.sql") as f:
        cur.execute(f.read())
    sql("SELECT connector.register_app('crm', pg_temp.crm_spec())")
    # RS256 first, then ES256, which signs: its signatures are randomised,
    # so a SET polled twice with the same bytes was stored, not re-signed
    sql("SELECT connector.add_signing_key('crm', 'RS256')")
    sql("SELECT connector.add_signing_key('crm', 'ES256')")
    okta = sql("SELECT connector.add_token('crm', 'okta')")[0][0]
    sgnl = sql("SELECT connector.add_token('crm', 'sgnl')")[0][0]
    revoked = sql("SELECT connector.add_token('crm', 'gone')")[0][0]
    sql("SELECT connector.revoke_token('crm', 'gone')")
    password = "ssf-" + os.urandom(8).hex()
    sql("DROP ROLE IF EXISTS ssf_gateway")
    sql(f"CREATE ROLE ssf_gateway LOGIN PASSWORD '{password}' IN ROLE connector_platform")

    binary = os.environ.get("SSF_GATEWAY_BIN") or os.path.join(
        subprocess.check_output(["pg_config", "--bindir"], text=True).strip(), "connector-gateway")
    port = free_port()
    host = os.environ.get("PGHOST", "localhost")
    conninfo = (f"host={host} port={os.environ.get('PGPORT', '5432')} dbname={db} "
                f"user=ssf_gateway password={password}")
    log = open(os.environ.get("SSF_GATEWAY_LOG", "/dev/null"), "w")
    proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--database", conninfo,
                             "--pool", "4", "--insecure-http"], stdout=log, stderr=log)
    gw = Gateway(port)
    try:
        for _ in range(100):
            try:
                if gw.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            check(False, "the gateway answers /healthz")
            return
        run(gw, port, sql, okta, sgnl, revoked)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"# {verify.passed} passed, {verify.failed} failed")
    sys.exit(1 if verify.failed else 0)


def claims_of(token):
    return json.loads(verify.b64url_decode(token.split(".")[1]))


def run(gw, port, sql, okta, sgnl, revoked):
    iss = f"http://127.0.0.1:{port}/ssf/crm"

    # --- discovery and keys, no token needed
    st, meta, hdrs, _ = gw.request("GET", "/.well-known/ssf-configuration/ssf/crm")
    check(st == 200 and hdrs.get("content-type") == "application/json", "metadata: 200 application/json")
    check(meta == {
        "spec_version": "1_0", "issuer": iss, "jwks_uri": iss + "/jwks.json",
        "delivery_methods_supported": [PUSH, POLL],
        "configuration_endpoint": iss + "/stream", "status_endpoint": iss + "/status",
        "add_subject_endpoint": iss + "/subjects:add", "remove_subject_endpoint": iss + "/subjects:remove",
        "verification_endpoint": iss + "/verify",
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}]}, f"metadata document ({meta})")
    st, doc, _, _ = gw.request("GET", "/.well-known/ssf-configuration/ssf/nope")
    check(st == 404 and doc["err"] == "not_found", "metadata of an unknown application: 404")
    st, jwks, _, _ = gw.request("GET", "/ssf/crm/jwks.json")
    check(st == 200 and jwks == sql("SELECT connector.jwks('crm')")[0][0] and len(jwks["keys"]) == 2,
          "jwks.json: the application's JWK Set, without a token")

    # --- authentication
    for tok, what in ((None, "no token"), ("ctk_wrong", "a wrong token"), (revoked, "a revoked token")):
        st, doc, hdrs, _ = gw.request("GET", "/ssf/crm/stream", token=tok)
        check(st == 401 and doc["err"] == "authentication_failed" and "www-authenticate" in hdrs,
              f"{what}: 401 with WWW-Authenticate")

    # --- create, read, update, replace, delete
    st, s1, hdrs, _ = gw.request("POST", "/ssf/crm/stream", {"description": "okta poll"}, token=okta)
    sid = s1["stream_id"] if st == 201 else "x"
    check(st == 201 and hdrs.get("content-type") == "application/json", "create a poll stream: 201")
    check(s1 == {"stream_id": sid, "iss": iss, "aud": "okta",
                 "delivery": {"method": POLL, "endpoint_url": f"{iss}/poll/{sid}"},
                 "events_supported": SUPPORTED, "events_delivered": SUPPORTED,
                 "description": "okta poll"}, f"a poll stream by default, every event delivered ({s1})")
    row = sql("SELECT state, format, delivery FROM connector.endpoint WHERE name = %s", "ssf-" + sid)
    check(row == [("polled", "set", "poll")], f"the stream is an endpoint: polled, format set ({row})")
    check(sql("SELECT count(*) FROM connector.status WHERE endpoint = %s", "ssf-" + sid)[0][0] == 1,
          "connector.status shows the stream")
    st, doc, _, _ = gw.request("GET", f"/ssf/crm/stream?stream_id={sid}", token=okta)
    check(st == 200 and doc == s1, "read the stream")
    st, doc, _, _ = gw.request("GET", "/ssf/crm/stream", token=okta)
    check(st == 200 and doc == [s1], "list the receiver's streams")
    st, doc, _, _ = gw.request("GET", "/ssf/crm/stream", token=sgnl)
    check(st == 200 and doc == [], "another receiver lists none of them")
    st, doc, _, _ = gw.request("GET", f"/ssf/crm/stream?stream_id={sid}", token=sgnl)
    check(st == 404, "another receiver cannot read the stream: 404")

    push_cfg = {"delivery": {"method": PUSH, "endpoint_url": "https://receiver.example.com/events",
                             "authorization_header": "Bearer rcv-secret"},
                "events_requested": [RISC + "account-disabled", "urn:example:unknown"],
                "description": "push"}
    st, s2, _, text = gw.request("POST", "/ssf/crm/stream", push_cfg, token=okta)
    sid2 = s2["stream_id"] if st == 201 else "x"
    check(st == 201 and s2["delivery"] == {"method": PUSH, "endpoint_url": "https://receiver.example.com/events"}
          and s2["events_requested"] == sorted(push_cfg["events_requested"])
          and s2["events_delivered"] == [RISC + "account-disabled"],
          f"create a push stream: unknown event URIs ignored, the rest delivered ({s2})")
    check("rcv-secret" not in text, "the authorization_header is never shown")
    row = sql("SELECT state, delivery, headers, types FROM connector.endpoint WHERE name = %s", "ssf-" + sid2)
    check(row == [("active", "push", {"Authorization": "Bearer rcv-secret"}, ["account.disabled"])],
          f"the push endpoint: active, its Authorization header, types ({row})")
    st, doc, _, _ = gw.request("PATCH", "/ssf/crm/stream", {"stream_id": sid2, "description": "changed"}, token=okta)
    check(st == 200 and doc == dict(s2, description="changed"), "PATCH changes only what it names")
    st, doc, _, _ = gw.request("PATCH", "/ssf/crm/stream",
                               {"stream_id": sid2, "iss": "https://evil.example/ssf/crm"}, token=okta)
    check(st == 400 and "does not match" in doc["description"], "PATCH with another iss: 400")
    st, doc, _, _ = gw.request("PATCH", "/ssf/crm/stream",
                               {"stream_id": sid2, "iss": iss, "aud": ["okta"],
                                "events_delivered": [RISC + "account-disabled"]}, token=okta)
    check(st == 200, "PATCH with matching transmitter-supplied values: 200")
    st, doc, _, _ = gw.request("PUT", "/ssf/crm/stream", {"stream_id": sid2}, token=okta)
    check(st == 200 and doc["delivery"] == {"method": POLL, "endpoint_url": f"{iss}/poll/{sid2}"}
          and doc["events_delivered"] == SUPPORTED and "description" not in doc
          and "events_requested" not in doc,
          f"PUT with only stream_id: back to poll, every event, no description ({doc})")
    row = sql("SELECT state, headers FROM connector.endpoint WHERE name = %s", "ssf-" + sid2)
    check(row == [("polled", {})], f"and the endpoint follows ({row})")
    st, _, _, text = gw.request("DELETE", f"/ssf/crm/stream?stream_id={sid2}", token=okta)
    check(st == 204 and text == "", "DELETE: 204")
    st, _, _, _ = gw.request("GET", f"/ssf/crm/stream?stream_id={sid2}", token=okta)
    check(st == 404, "a deleted stream: 404")
    st, _, _, _ = gw.request("DELETE", f"/ssf/crm/stream?stream_id={sid2}", token=okta)
    check(st == 404, "DELETE again: 404")
    check(sql("SELECT count(*) FROM connector.endpoint WHERE name = %s", "ssf-" + sid2)[0][0] == 0,
          "its endpoint is gone")

    # --- bad configurations
    bad = [
        ({"delivery": {"method": "urn:example:carrier-pigeon"}}, "unsupported delivery method"),
        ({"delivery": {"method": PUSH, "endpoint_url": "https://10.1.2.3/events"}},
         "is a loopback, private or link-local address"),
        ({"delivery": {"method": PUSH, "endpoint_url": "https://localhost/events"}},
         "is a loopback, private or link-local address"),
        ({"delivery": {"method": PUSH, "endpoint_url": "ftp://receiver.example.com/"}}, "scheme"),
        ({"delivery": {"method": PUSH}}, "push delivery needs a string \"endpoint_url\""),
        ({"delivery": "push"}, "\"delivery\" must be a JSON object"),
        ({"events_requested": ["urn:example:unknown"]}, "names no supported event type"),
        ({"events_requested": "all"}, "must be a non-empty array"),
        ({"events_requested": []}, "must be a non-empty array"),
        ({"events_requested": [1]}, "must hold 1 to 100 URIs"),
        ({"description": 5}, "\"description\" must be a string"),
    ]
    for body, words in bad:
        st, doc, _, _ = gw.request("POST", "/ssf/crm/stream", body, token=okta)
        check(st == 400 and doc.get("err") == "invalid_request" and words in doc.get("description", ""),
              f"create {json.dumps(body)}: 400 \"{words}\" ({st} {doc})")
    st, doc, _, _ = gw.request("POST", "/ssf/crm/stream", raw="{not json", token=okta)
    check(st == 400 and doc["err"] == "invalid_request", "create with bad JSON: 400")
    n_streams = sql("SELECT count(*) FROM connector.ssf_stream")[0][0]
    check(n_streams == 1, "no bad request created a stream")

    # --- poll: SETs verify, unacknowledged ones come again (same bytes), acknowledged never
    jwks = gw.request("GET", "/ssf/crm/jwks.json")[1]
    poll_path = f"/ssf/crm/poll/{sid}"

    def poll(body, token=okta, path=None):
        return gw.request("POST", path or poll_path, body, token=token)

    def verified(sets):
        ok = True
        for jti, token in sets.items():
            try:
                _, claims = signature_ok(token, jwks)
                pj = jwt.decode(token, key=jwt.PyJWK(next(k for k in jwks["keys"]
                                                           if k["kid"] == jwt.get_unverified_header(token)["kid"])).key,
                                algorithms=["ES256", "RS256"], audience="okta", issuer=iss)
                ok = ok and claims == pj and claims["jti"] == jti
            except Exception as ex:  # noqa: BLE001
                print(f"# {jti}: {ex!r}")
                ok = False
        return ok

    st, doc, _, _ = poll({"returnImmediately": True})
    check(st == 200 and doc == {"sets": {}, "moreAvailable": False}, "poll with nothing new: no SETs")
    sql("""INSERT INTO "Crm App".users (id, login, email) VALUES (201, 'p201', 'p201@example.com')""")
    sql("""INSERT INTO "Crm App".users (id, login, email) VALUES (202, 'p202', 'p202@example.com')""")
    st, doc, _, _ = poll({"returnImmediately": True, "maxEvents": 100})
    sets1 = doc["sets"] if st == 200 else {}
    check(st == 200 and len(sets1) == 2 and doc["moreAvailable"] is False, f"two new accounts: two SETs ({doc})")
    check(verified(sets1), "each SET verifies against the JWK Set from the gateway (cryptography and PyJWT)")
    subs = sorted(claims_of(t)["sub_id"]["identifiers"][0]["id"] for t in sets1.values())
    check(subs == ["201", "202"] and all(list(claims_of(t)["events"]) == [SCIM + "prov:create:notice"]
                                         for t in sets1.values()), "they are the accounts' prov:create:notice")
    st, doc, _, _ = poll({"returnImmediately": True})
    check(st == 200 and doc["sets"] == sets1, "unacknowledged SETs come again, byte for byte (ES256)")
    jt = sorted(sets1, key=lambda j: claims_of(sets1[j])["sub_id"]["identifiers"][0]["id"])
    pos = sql("SELECT position FROM connector.ssf_set WHERE jti = ANY(%s) ORDER BY position", jt)
    # acknowledge the second only: the cursor stays before the first
    st, doc, _, _ = poll({"returnImmediately": True, "ack": [jt[1]]})
    check(st == 200 and list(doc["sets"]) == [jt[0]], "acknowledged SET gone, the other comes again")
    cursor = sql("SELECT cursor FROM connector.status WHERE endpoint = %s", "ssf-" + sid)[0][0]
    check(cursor == pos[0][0] - 1, f"the cursor stays before an unacknowledged event ({cursor}, {pos})")
    st, doc, _, _ = poll({"returnImmediately": True, "ack": [jt[0], "evt_nope.0", jt[1]]})
    check(st == 200 and doc == {"sets": {}, "moreAvailable": False},
          "acknowledging the rest (with an unknown and an already acknowledged jti: ignored)")
    row = sql("SELECT cursor, delivered FROM connector.status WHERE endpoint = %s", "ssf-" + sid)[0]
    check(row[0] >= pos[1][0] and row[1] == 2, f"the cursor passed both events, 2 delivered ({row})")

    # maxEvents
    for i in range(3):
        sql(f"""INSERT INTO "Crm App".users (id, login) VALUES ({210 + i}, 'm{210 + i}')""")
    st, doc, _, _ = poll({"returnImmediately": True, "maxEvents": 1})
    check(st == 200 and len(doc["sets"]) == 1 and doc["moreAvailable"] is True, "maxEvents 1: one SET, moreAvailable")
    first = list(doc["sets"])
    st, doc, _, _ = poll({"returnImmediately": True, "maxEvents": 10 ** 15})
    check(st == 200 and len(doc["sets"]) == 3 and first[0] in doc["sets"], "a huge maxEvents is clamped: 200")
    three = list(doc["sets"])
    st, doc, _, _ = poll({"returnImmediately": True, "maxEvents": 0, "ack": three})
    check(st == 200 and doc == {"sets": {}, "moreAvailable": False}, "maxEvents 0: acknowledge only")
    for body, words in (({"maxEvents": -1}, "maxEvents must not be negative"),
                        ({"maxEvents": "5"}, "\"maxEvents\" must be an integer"),
                        ({"maxEvents": 1.5}, "\"maxEvents\" must be an integer"),
                        ({"returnImmediately": "yes"}, "\"returnImmediately\" must be a boolean"),
                        ({"ack": "evt_1"}, "\"ack\" must be an array of jti strings"),
                        ({"ack": [1]}, "\"ack\" must be an array of jti strings"),
                        ({"setErrs": ["x"]}, "setErrs must be a JSON object"),
                        ({"setErrs": {"evt_1.0": "bad"}}, "must be an object with a string \"err\""),
                        ({"setErrs": {"evt_1.0": {"description": "no err"}}}, "must be an object with a string \"err\"")):
        st, doc, _, _ = poll(body)
        check(st == 400 and doc.get("err") == "invalid_request" and words in doc.get("description", ""),
              f"poll {json.dumps(body)}: 400 \"{words}\" ({st} {doc})")
    st, doc, _, _ = poll({"returnImmediately": True}, path="/ssf/crm/poll/nosuchstream")
    check(st == 404, "poll of an unknown stream: 404")

    # setErrs: recorded like a failed delivery, never sent again
    sql("""INSERT INTO "Crm App".users (id, login) VALUES (220, 'e220')""")
    st, doc, _, _ = poll({"returnImmediately": True})
    bad_jti = list(doc["sets"])[0] if st == 200 and doc["sets"] else "x"
    st, doc, _, _ = poll({"returnImmediately": True,
                          "setErrs": {bad_jti: {"err": "invalid_key", "description": "kid not found"}}})
    check(st == 200 and doc == {"sets": {}, "moreAvailable": False}, "a SET reported in setErrs does not come again")
    row = sql("SELECT last_error, dead_lettered FROM connector.status WHERE endpoint = %s", "ssf-" + sid)[0]
    check(row == (f"setErrs {bad_jti}: invalid_key: kid not found", 1), f"status records the error ({row})")
    check(sql("SELECT count(*) FROM connector.dead_letters WHERE message_id = %s", bad_jti)[0][0] == 1,
          "and a dead letter names the SET")

    # --- verification
    st, _, _, text = gw.request("POST", "/ssf/crm/verify", {"stream_id": sid, "state": "st-42"}, token=okta)
    check(st == 204 and text == "", "verification request: 204, no body")
    st, doc, _, _ = poll({"returnImmediately": True})
    vs = doc["sets"] if st == 200 else {}
    vc = [claims_of(t) for t in vs.values()]
    check(len(vs) == 1 and verified(vs) and vc[0]["events"] == {VERIFICATION: {"state": "st-42"}}
          and vc[0]["sub_id"] == {"format": "opaque", "id": sid},
          f"the verification SET echoes state, subject the stream ({vc})")
    poll({"returnImmediately": True, "ack": list(vs)})
    st, _, _, _ = gw.request("POST", "/ssf/crm/verify", {"stream_id": sid}, token=okta)
    st2, doc, _, _ = poll({"returnImmediately": True})
    check(st == 204 and len(doc["sets"]) == 1 and
          list(claims_of(list(doc["sets"].values())[0])["events"].values()) == [{}],
          "verification without state: a SET without state")
    poll({"returnImmediately": True, "ack": list(doc["sets"])})
    st, doc, _, _ = gw.request("POST", "/ssf/crm/verify", {"stream_id": "nosuchstream"}, token=okta)
    check(st == 404 and doc["err"] == "not_found", "verification of an unknown stream: 404")
    st, doc, _, _ = gw.request("POST", "/ssf/crm/verify", {"state": "x"}, token=okta)
    check(st == 400 and doc["description"] == "\"stream_id\" is required", "verification without stream_id: 400")
    st, doc, _, _ = gw.request("POST", "/ssf/crm/verify", {"stream_id": sid}, token=sgnl)
    check(st == 404, "verification of another receiver's stream: 404")

    # --- status: pause loses nothing, disable drops
    st, doc, _, _ = gw.request("GET", f"/ssf/crm/status?stream_id={sid}", token=okta)
    check(st == 200 and doc == {"stream_id": sid, "status": "enabled"}, "status: enabled")
    st, doc, _, _ = gw.request("POST", "/ssf/crm/status",
                               {"stream_id": sid, "status": "paused", "reason": "maintenance"}, token=okta)
    check(st == 200 and doc == {"stream_id": sid, "status": "paused", "reason": "maintenance"}, "pause: 200")
    check(sql("SELECT state FROM connector.status WHERE endpoint = %s", "ssf-" + sid)[0][0] == "paused",
          "connector.status shows it paused")
    sql("""INSERT INTO "Crm App".users (id, login) VALUES (301, 'q301')""")
    st, doc, _, _ = poll({"returnImmediately": True})
    check(st == 200 and doc == {"sets": {}, "moreAvailable": False}, "a paused stream returns nothing")
    st, doc, _, _ = gw.request("POST", "/ssf/crm/status", {"stream_id": sid, "status": "enabled"}, token=okta)
    check(st == 200 and doc == {"stream_id": sid, "status": "enabled"}, "enable again: 200")
    st, doc, _, _ = poll({"returnImmediately": True})
    got = [claims_of(t)["sub_id"]["identifiers"][0]["id"] for t in doc["sets"].values()]
    check(got == ["301"], f"the event made while paused comes after enabling ({got})")
    poll({"returnImmediately": True, "ack": list(doc["sets"])})
    sql("""INSERT INTO "Crm App".users (id, login) VALUES (302, 'q302')""")
    st, doc, _, _ = gw.request("POST", "/ssf/crm/status", {"stream_id": sid, "status": "disabled"}, token=okta)
    check(st == 200 and doc["status"] == "disabled", "disable: 200")
    sql("""INSERT INTO "Crm App".users (id, login) VALUES (303, 'q303')""")
    st, doc, _, _ = gw.request("POST", "/ssf/crm/verify", {"stream_id": sid}, token=okta)
    check(st == 409 and "is disabled" in doc["description"], "verification of a disabled stream: 409")
    gw.request("POST", "/ssf/crm/status", {"stream_id": sid, "status": "enabled"}, token=okta)
    sql("""INSERT INTO "Crm App".users (id, login) VALUES (304, 'q304')""")
    st, doc, _, _ = poll({"returnImmediately": True})
    got = [claims_of(t)["sub_id"]["identifiers"][0]["id"] for t in doc["sets"].values()]
    check(got == ["304"], f"events before and while disabled are dropped ({got})")
    poll({"returnImmediately": True, "ack": list(doc["sets"])})
    for body, code, words in (({"stream_id": sid, "status": "off"}, 400, "must be \"enabled\", \"paused\" or \"disabled\""),
                              ({"stream_id": sid}, 400, "\"status\" is required"),
                              ({"stream_id": "nosuchstream", "status": "paused"}, 404, "does not exist")):
        st, doc, _, _ = gw.request("POST", "/ssf/crm/status", body, token=okta)
        check(st == code and words in doc.get("description", ""), f"status {json.dumps(body)}: {code} ({st} {doc})")
    st, doc, _, _ = gw.request("GET", "/ssf/crm/status", token=okta)
    check(st == 400, "status without stream_id: 400")

    # --- subjects
    st, s3, _, _ = gw.request("POST", "/ssf/crm/stream", {}, token=okta)
    sid3 = s3["stream_id"]
    p3 = f"/ssf/crm/poll/{sid3}"
    st, _, _, text = gw.request("POST", "/ssf/crm/subjects:add",
                                {"stream_id": sid3, "subject": {"format": "email", "email": "Carol2@Example.com"},
                                 "verified": True}, token=okta)
    check(st == 200 and text == "", f"add a subject: 200, empty ({st} {text})")
    sql("""INSERT INTO "Crm App".users (id, login, email) VALUES (401, 'carol2', 'carol2@example.com')""")
    sql("""INSERT INTO "Crm App".users (id, login, email) VALUES (402, 'dave2', 'dave2@example.com')""")
    st, doc, _, _ = poll({"returnImmediately": True}, path=p3)
    got = [claims_of(t)["sub_id"]["identifiers"][0]["id"] for t in doc["sets"].values()]
    check(got == ["401"], f"only SETs about added subjects ({got})")
    poll({"returnImmediately": True, "ack": list(doc["sets"])}, path=p3)
    st, _, _, text = gw.request("POST", "/ssf/crm/subjects:remove",
                                {"stream_id": sid3, "subject": {"format": "email", "email": "carol2@example.com"}},
                                token=okta)
    check(st == 204 and text == "", "remove a subject: 204")
    sql("""UPDATE "Crm App".users SET "Department Name" = 'x' WHERE id IN (401, 402)""")
    st, doc, _, _ = poll({"returnImmediately": True}, path=p3)
    check(st == 200 and doc["sets"] == {}, "after removing the only subject, nothing is delivered")
    st, _, _, _ = gw.request("POST", "/ssf/crm/subjects:remove",
                             {"stream_id": sid3, "subject": {"format": "opaque", "id": "nobody"}}, token=okta)
    check(st == 204, "removing a subject the stream does not have: 204")
    # on a stream of every subject: remove one, add it back
    st, doc, _, _ = gw.request("POST", "/ssf/crm/subjects:remove",
                               {"stream_id": sid, "subject": {"format": "opaque", "id": "402"}}, token=okta)
    sql("""UPDATE "Crm App".users SET "Department Name" = 'y' WHERE id IN (401, 402)""")
    st, doc, _, _ = poll({"returnImmediately": True})
    got = sorted(claims_of(t)["sub_id"]["identifiers"][0]["id"] for t in doc["sets"].values())
    check(set(got) == {"401"}, f"a removed subject is left out of a stream of every subject ({got})")
    poll({"returnImmediately": True, "ack": list(doc["sets"])})
    gw.request("POST", "/ssf/crm/subjects:add",
               {"stream_id": sid, "subject": {"format": "opaque", "id": "402"}}, token=okta)
    sql("""UPDATE "Crm App".users SET "Department Name" = 'z' WHERE id IN (401, 402)""")
    st, doc, _, _ = poll({"returnImmediately": True})
    got = sorted(claims_of(t)["sub_id"]["identifiers"][0]["id"] for t in doc["sets"].values())
    check(got == ["401", "402"], f"adding it back takes the removal back, every subject again ({got})")
    poll({"returnImmediately": True, "ack": list(doc["sets"])})
    for body, code, words in (({"stream_id": sid3, "subject": {"format": 5}}, 400, "string \"format\""),
                              ({"stream_id": sid3, "subject": {"format": "email"}}, 400, "non-empty string \"email\""),
                              ({"stream_id": sid3, "subject": {"format": "complex", "user": {}}}, 400,
                               "complex subjects are not supported"),
                              ({"stream_id": sid3, "subject": "carol"}, 400, "\"subject\" must be a JSON object"),
                              ({"stream_id": sid3, "subject": {"format": "opaque", "id": "1"}, "verified": "yes"},
                               400, "\"verified\" must be a boolean"),
                              ({"stream_id": "nosuchstream", "subject": {"format": "opaque", "id": "1"}}, 404,
                               "does not exist")):
        st, doc, _, _ = gw.request("POST", "/ssf/crm/subjects:add", body, token=okta)
        check(st == code and words in doc.get("description", ""),
              f"subjects:add {json.dumps(body)}: {code} ({st} {doc})")

    # --- poll of a push stream; long poll
    st, s4, _, _ = gw.request("POST", "/ssf/crm/stream",
                              {"delivery": {"method": PUSH, "endpoint_url": "https://receiver.example.com/e"}},
                              token=okta)
    st, doc, _, _ = poll({"returnImmediately": True}, path=f"/ssf/crm/poll/{s4['stream_id']}")
    check(st == 400 and "delivered by push" in doc["description"], "poll of a push stream: 400")
    gw.request("DELETE", f"/ssf/crm/stream?stream_id={s4['stream_id']}", token=okta)

    t0 = time.monotonic()
    st, doc, _, _ = poll({})
    took = time.monotonic() - t0
    check(st == 200 and doc["sets"] == {} and 4.5 <= took < 10,
          f"returnImmediately omitted, nothing to send: waits about 5 s ({took:.1f} s)")
    timer = threading.Timer(1.0, lambda: psycopg2.connect(dbname=sys.argv[1]).cursor().execute(
        """INSERT INTO "Crm App".users (id, login) VALUES (501, 'late'); COMMIT"""))
    timer.start()
    t0 = time.monotonic()
    st, doc, _, _ = poll({"returnImmediately": False})
    took = time.monotonic() - t0
    timer.join()
    got = [claims_of(t)["sub_id"]["identifiers"][0]["id"] for t in doc["sets"].values()]
    check(st == 200 and got == ["501"] and took < 4.5,
          f"a waiting poll returns the event made meanwhile ({got}, {took:.1f} s)")


if __name__ == "__main__":
    main()
