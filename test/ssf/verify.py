#!/usr/bin/python3
"""Independent verification of the Security Event Tokens of spec section 12.

Makes one change of every kind to the crm fixture, renders each event with
connector._sets() under an RS256 key and then an ES256 key, and checks every
SET with JOSE code that shares nothing with the extension: the signature
with Python's `cryptography` (Debian's python3-cryptography) against the
public key taken from connector.jwks(), and again with PyJWT (python3-jwt);
then typ, alg, kid, iss, aud, iat, a jti unique across all SETs, txn, no
sub or exp, the sub_id format, and each event's URI and payload against the
mapping of docs/ssf.md.  A tampered token must fail, so the verifier can.

Runs inside pg_virtualenv (PG* variables name a superuser) on a database
given as the only argument.  Prints "ok"/"not ok" lines and a count; exits 1
on any failure.
"""
import base64
import json
import sys
import time

import jwt
import psycopg2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

ISS = "https://gateway.example.com:8443/ssf/crm"
AUD = "https://receiver.example.net/streams/42"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SCIM = "urn:ietf:params:scim:event:"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {what}")
    else:
        failed += 1
        print(f"not ok - {what}")
    return cond


def b64url_decode(s):
    if "=" in s or "+" in s or "/" in s:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_int(s):
    return int.from_bytes(b64url_decode(s), "big")


def public_key(jwk):
    if jwk["kty"] == "RSA":
        return rsa.RSAPublicNumbers(b64url_int(jwk["e"]), b64url_int(jwk["n"])).public_key()
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
    return ec.EllipticCurvePublicNumbers(b64url_int(jwk["x"]), b64url_int(jwk["y"]),
                                         ec.SECP256R1()).public_key()


def signature_ok(token, jwks):
    """Verify a compact JWS with `cryptography` only; returns (header, claims) or raises."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    sig = b64url_decode(parts[2])
    keys = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    if len(keys) != 1:
        raise ValueError("kid not in the key set")
    jwk = keys[0]
    if jwk["alg"] != header["alg"] or jwk["use"] != "sig":
        raise ValueError("key does not match the header")
    key = public_key(jwk)
    signing_input = (parts[0] + "." + parts[1]).encode("ascii")
    if header["alg"] == "RS256":
        if key.key_size < 2048 or len(sig) != key.key_size // 8:
            raise ValueError("RSA key or signature too short")
        key.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif header["alg"] == "ES256":
        if len(sig) != 64:
            raise ValueError("ES256 signature is not R || S of 32 bytes each")
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        raise ValueError("unexpected alg " + header["alg"])
    return header, claims


def pyjwt_ok(token, jwks):
    header = jwt.get_unverified_header(token)
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    key = jwt.PyJWK(jwk).key
    return jwt.decode(token, key=key, algorithms=[jwk["alg"]], audience=AUD, issuer=ISS,
                      options={"require": ["iat", "jti", "iss", "aud"]})


def aliases(account_id, email=None):
    ids = [{"format": "opaque", "id": account_id},
           {"format": "scim", "uri": f"/Users/{account_id}"}]
    if email:
        ids.append({"format": "email", "email": email})
    return {"format": "aliases", "identifiers": ids}


def group(ent_id):
    return {"format": "scim", "uri": f"/Groups/{ent_id}"}


def caep_common(event, entity, reason):
    out = {"event_timestamp": event_seconds(event), "reason_admin": {"en": reason}}
    if entity:
        out["initiating_entity"] = entity
    return out


def event_seconds(event):
    ts = event["timestamp"]
    return int(time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone)


def expected_sets(event, mapping_email):
    """What docs/ssf.md says an event becomes: [(uri, payload, sub_id)]."""
    t = event["type"]
    d = event["data"]
    row = d.get("after") or d.get("before") or {}
    direct = ("Changed directly in the application's database", None)
    origin = {"platform": ("Changed through the platform API", "admin"),
              "offboard": ("Offboarded through the platform API", "admin"),
              "reconcile": ("Enforced by reconciliation", "policy"),
              "expiry": ("Time-bound access expired", "policy")}.get(d["origin"]["via"], direct)
    if t.startswith("account."):
        acc = d["account"]["id"]
        email = row.get(mapping_email) if mapping_email else None
        sub = aliases(acc, email)
        if t == "account.created":
            names = {"id": "id", "login": "userName", "active": "active", "account_type": "userType"}
            attrs = [names.get(c, c) for c in ["id", "login", "active", "account_type", "owner_id",
                                                "email", "Department Name"]
                     if d["after"].get(c) is not None]
            return [(SCIM + "prov:create:notice", {"attributes": attrs}, sub)]
        if t == "account.updated":
            names = {"id": "id", "login": "userName", "active": "active", "account_type": "userType"}
            attrs = [names.get(c, c) for c in ["id", "login", "active", "account_type", "owner_id",
                                                "email", "Department Name"]
                     if d["before"].get(c) != d["after"].get(c)]
            out = [(SCIM + "prov:patch:notice", {"attributes": attrs}, sub)]
            if d["before"]["login"] != d["after"]["login"]:
                old = d["before"]["login"]
                old_sub = ({"format": "email", "email": old} if "@" in old
                           else aliases(acc, d["before"].get(mapping_email)))
                out.append((RISC + "identifier-changed", {"new-value": d["after"]["login"]}, old_sub))
            return out
        if t == "account.disabled":
            return [(RISC + "account-disabled", {}, sub),
                    (CAEP + "session-revoked", caep_common(event, origin[1], origin[0]), sub)]
        if t == "account.enabled":
            return [(RISC + "account-enabled", {}, sub)]
        if t == "account.deleted":
            return [(RISC + "account-purged", {}, sub), (SCIM + "prov:delete", {}, sub)]
    if t in ("access.granted", "access.revoked"):
        return [(SCIM + "prov:patch:notice", {"attributes": ["members"]}, group(d["entitlement"]["id"]))]
    if t.startswith("entitlement."):
        sub = group(d["entitlement"]["id"])
        names = {"id": "id", "name": "displayName"}
        cols = ["id", "name", "is_admin", "description"]
        if t == "entitlement.created":
            return [(SCIM + "prov:create:notice",
                     {"attributes": [names.get(c, c) for c in cols if d["after"].get(c) is not None]}, sub)]
        if t == "entitlement.updated":
            return [(SCIM + "prov:patch:notice",
                     {"attributes": [names.get(c, c) for c in cols
                                     if d["before"].get(c) != d["after"].get(c)]}, sub)]
        if t == "entitlement.deleted":
            return [(SCIM + "prov:delete", {}, sub)]
    if t.startswith("credential."):
        change = {"credential.created": "create", "credential.updated": "update",
                  "credential.revoked": "revoke", "credential.deleted": "delete"}[t]
        payload = {"credential_type": "api-key", "change_type": change}
        payload.update(caep_common(event, origin[1], origin[0]))
        return [(CAEP + "credential-change", payload, aliases(d["account"]["id"]))]
    if t == "capture.tampered":
        return []
    raise AssertionError("unexpected event type " + t)


CHANGES = """
INSERT INTO "Crm App".users (id, login, email, "Department Name") VALUES (20, 'dave', 'dave@example.com', 'IT');
INSERT INTO "Crm App".users (id, login, account_type) VALUES (21, 'erin@example.com', 'human');
UPDATE "Crm App".users SET login = 'robert', "Department Name" = 'Ops' WHERE id = 2;
UPDATE "Crm App".users SET login = 'erin.new@example.com' WHERE id = 21;
UPDATE "Crm App".users SET email = 'alice@corp.example' WHERE id = 1;
UPDATE "Crm App".users SET active = false WHERE id = 1;
UPDATE "Crm App".users SET active = true WHERE id = 9;
SELECT connector.disable('crm', '10', 'r-1');
DELETE FROM "Crm App".users WHERE id = 21;
INSERT INTO "Crm App".user_roles VALUES (2, 7, NULL);
DELETE FROM "Crm App".user_roles WHERE user_id = 1 AND role_id = 1;
INSERT INTO "Crm App".roles VALUES (8, 'auditor', false, 'audits');
UPDATE "Crm App".roles SET description = 'edits records' WHERE id = 2;
DELETE FROM "Crm App".roles WHERE id = 8;
INSERT INTO "Crm App".api_keys (id, user_id, key_hash) VALUES (102, 2, 'h3');
UPDATE "Crm App".api_keys SET expires_at = now() + interval '10 days' WHERE id = 102;
UPDATE "Crm App".api_keys SET revoked_at = now() WHERE id = 101;
DELETE FROM "Crm App".api_keys WHERE id = 102;
"""

ALL_TYPES = {"account.created", "account.updated", "account.disabled", "account.enabled",
             "account.deleted", "access.granted", "access.revoked", "entitlement.created",
             "entitlement.updated", "entitlement.deleted", "credential.created",
             "credential.updated", "credential.revoked", "credential.deleted"}


def main():
    conn = psycopg2.connect(dbname=sys.argv[1])
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION connector")
    with open("test/fixtures/crm.sql") as f:
        cur.execute(f.read())
    cur.execute("SELECT connector.register_app('crm', pg_temp.crm_spec())")
    for stmt in [s for s in CHANGES.split(";\n") if s.strip()]:
        cur.execute(stmt)
    cur.execute("SELECT event FROM connector.changes('crm') ORDER BY position")
    events = [r[0] for r in cur.fetchall()]
    check(ALL_TYPES <= {e["type"] for e in events}, "the changes produced every event type but capture.tampered")
    tampered = dict(events[0], type="capture.tampered", id="evt_0_0")
    events.append(tampered)

    jtis = set()
    tokens = {}
    for alg in ("RS256", "ES256"):
        cur.execute("SELECT connector.add_signing_key('crm', %s)", (alg,))
        kid = cur.fetchone()[0]
        cur.execute("SELECT connector.jwks('crm')")
        jwks = cur.fetchone()[0]
        n_sets = 0
        for event in events:
            cur.execute("SELECT connector._sets('crm', %s, %s, %s)", (json.dumps(event), ISS, AUD))
            sets = [r[0] for r in cur.fetchall()]
            tokens.setdefault(alg, []).extend(sets)
            want = expected_sets(event, "email")
            what = f"{alg} {event['type']} {event['id']}"
            check(len(sets) == len(want), f"{what}: {len(want)} SET(s)")
            for i, (token, (uri, payload, sub)) in enumerate(zip(sets, want)):
                n_sets += 1
                try:
                    header, claims = signature_ok(token, jwks)
                    sig_ok = True
                except (ValueError, InvalidSignature, KeyError) as ex:
                    sig_ok = False
                    header, claims = {}, {}
                    print(f"# {ex!r}")
                check(sig_ok, f"{what} #{i}: signature verifies with cryptography against jwks()")
                try:
                    pyjwt_claims = pyjwt_ok(token, jwks)
                except jwt.PyJWTError as ex:
                    pyjwt_claims = None
                    print(f"# {ex!r}")
                check(pyjwt_claims == claims, f"{what} #{i}: and with PyJWT (iss, aud checked)")
                check(header == {"typ": "secevent+jwt", "alg": alg, "kid": kid},
                      f"{what} #{i}: header typ secevent+jwt, alg {alg}, kid of the newest key")
                check(claims.get("iss") == ISS and claims.get("aud") == AUD, f"{what} #{i}: iss and aud")
                check(claims.get("iat") == event_seconds(event), f"{what} #{i}: iat is the event's time")
                check(claims.get("jti") == f"{event['id']}.{i}" and (alg, claims.get("jti")) not in jtis,
                      f"{what} #{i}: jti {event['id']}.{i}, unique")
                jtis.add((alg, claims.get("jti")))
                check(claims.get("txn") == event["data"]["txid"], f"{what} #{i}: txn is the transaction id")
                check("sub" not in claims and "exp" not in claims, f"{what} #{i}: no sub, no exp")
                check(list(claims.get("events", {}).keys()) == [uri], f"{what} #{i}: one event, {uri}")
                got = claims.get("events", {}).get(uri)
                check(got == payload, f"{what} #{i}: payload {json.dumps(payload)}"
                      + ("" if got == payload else f" (got {json.dumps(got)})"))
                check(claims.get("sub_id") == sub, f"{what} #{i}: sub_id {json.dumps(sub)}"
                      + ("" if claims.get("sub_id") == sub else f" (got {json.dumps(claims.get('sub_id'))})"))
        check(n_sets >= 20, f"{alg}: {n_sets} SETs checked")

        # the verifier can fail: a changed claim or signature is refused
        token = tokens[alg][0]
        head, body, sig = token.split(".")
        forged_claims = json.loads(b64url_decode(body))
        forged_claims["aud"] = "https://attacker.example"
        forged = head + "." + base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).decode().rstrip("=") + "." + sig
        for name, bad in (("changed claims", forged),
                          ("changed signature", head + "." + body + "." + sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB"))):
            try:
                signature_ok(bad, jwks)
                refused = False
            except (ValueError, InvalidSignature):
                refused = True
            check(refused, f"{alg}: a token with {name} does not verify")

    # a second event of one transaction keeps txn and gets its own jti
    same_txn = [e for e in events if e["data"].get("txid") == events[0]["data"]["txid"]]
    check(len({e["id"] for e in same_txn}) == len(same_txn), "events of one transaction have distinct ids, so distinct jtis")

    # ES256 signatures are randomised, RS256 ones are not: rendering again
    cur.execute("SELECT connector._sets('crm', %s, %s, %s)", (json.dumps(events[0]), ISS, AUD))
    again = cur.fetchone()[0]
    check(again.rsplit(".", 1)[0] == tokens["ES256"][0].rsplit(".", 1)[0],
          "rendering an event again gives the same header and claims")

    # retire the RS256 key: its SETs still verify against jwks() during the overlap
    cur.execute("SELECT kid FROM connector.signing_keys WHERE alg = 'RS256'")
    rs_kid = cur.fetchone()[0]
    cur.execute("SELECT connector.retire_signing_key('crm', %s)", (rs_kid,))
    cur.execute("SELECT connector.jwks('crm')")
    jwks = cur.fetchone()[0]
    try:
        signature_ok(tokens["RS256"][0], jwks)
        still = True
    except (ValueError, InvalidSignature):
        still = False
    check(still, "a SET signed by a retired key still verifies against jwks() during the overlap")

    # the verification event
    cur.execute("SELECT connector._verification_set('crm', 'stream-1', 'c3RhdGU=', %s, %s)", (ISS, AUD))
    token = cur.fetchone()[0]
    header, claims = signature_ok(token, jwks)
    check(header["alg"] == "ES256", "the verification event is signed by the newest key")
    check(claims["sub_id"] == {"format": "opaque", "id": "stream-1"}, "verification: sub_id is the stream as opaque")
    check(claims["events"] == {VERIFICATION: {"state": "c3RhdGU="}}, "verification: state echoed")
    check(abs(claims["iat"] - time.time()) < 60 and claims["jti"].startswith("ver_"), "verification: iat now, a fresh jti")
    check(pyjwt_ok(token, jwks) == claims, "verification: PyJWT verifies it")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
