#!/usr/bin/env python3
"""A minimal Shared Signals receiver for the demo (make demo, step 24).

    ssf_receiver.py setup BASE TOKEN STATEFILE   discover, create a poll stream, verify it
    ssf_receiver.py poll  BASE TOKEN STATEFILE   poll once, verify and print each SET, ack

BASE is the gateway's root (http://127.0.0.1:port), TOKEN a bearer token of the
application (connector.add_token).  Every SET is verified as a receiver must:
signature against the JWK Set fetched from the transmitter, typ, iss, aud,
a jti never seen before.  Python's standard library plus python3-cryptography.
"""
import base64
import http.client
import json
import sys
import urllib.parse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

APP = "ledger"


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def call(base, method, path, token=None, body=None):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    c.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: HTTP {r.status} {data[:300]!r}")
    return json.loads(data) if data else None


def verify(token, jwks, iss, aud):
    """The claims of a compact JWS SET, or exit if any check fails."""
    h64, c64, s64 = token.split(".")
    header, claims, sig = json.loads(b64d(h64)), json.loads(b64d(c64)), b64d(s64)
    jwk = next((k for k in jwks["keys"] if k["kid"] == header.get("kid")), None)
    if jwk is None or header.get("typ") != "secevent+jwt" or header.get("alg") != jwk["alg"]:
        sys.exit(f"bad SET header {header}")
    signed = (h64 + "." + c64).encode()
    if jwk["kty"] == "RSA":
        n, e = (int.from_bytes(b64d(jwk[k]), "big") for k in ("n", "e"))
        rsa.RSAPublicNumbers(e, n).public_key().verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
    else:
        x, y = (int.from_bytes(b64d(jwk[k]), "big") for k in ("x", "y"))
        key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    if claims["iss"] != iss or claims["aud"] != aud or "sub" in claims or "exp" in claims:
        sys.exit(f"bad SET claims {claims}")
    return header, claims


def main():
    mode, base, token, statefile = sys.argv[1:5]
    if mode == "setup":
        meta = call(base, "GET", f"/.well-known/ssf-configuration/ssf/{APP}")
        print(f"   transmitter {meta['issuer']} (SSF {meta['spec_version']}),"
              f" delivery {', '.join(m.rsplit(':', 1)[1] for m in meta['delivery_methods_supported'])}")
        stream = call(base, "POST", f"/ssf/{APP}/stream", token, {"description": "demo receiver"})
        print(f"   stream {stream['stream_id']} created, delivery {stream['delivery']['method']},"
              f" {len(stream['events_delivered'])} event types delivered")
        state = {"stream": stream, "iss": meta["issuer"], "seen": []}
        call(base, "POST", f"/ssf/{APP}/verify", token, {"stream_id": stream["stream_id"], "state": "demo-42"})
        json.dump(state, open(statefile, "w"))
        poll(base, token, statefile, want_verification=True)
    else:
        poll(base, token, statefile)


def poll(base, token, statefile, want_verification=False):
    state = json.load(open(statefile))
    jwks = call(base, "GET", f"/ssf/{APP}/jwks.json")
    path = urllib.parse.urlsplit(state["stream"]["delivery"]["endpoint_url"]).path
    doc = call(base, "POST", path, token, {"returnImmediately": True, "maxEvents": 100})
    verified = []
    for jti, sett in doc["sets"].items():
        header, claims = verify(sett, jwks, state["iss"], state["stream"]["aud"])
        if jti != claims["jti"] or jti in state["seen"]:
            sys.exit(f"jti {jti} repeated or mismatched")
        state["seen"].append(jti)
        verified.append(claims)
    for claims in sorted(verified, key=lambda c: c["jti"]):
        (uri, payload), = claims["events"].items()
        subject = claims.get("sub_id", {})
        ids = subject.get("identifiers", [subject])
        who = ", ".join(i.get("id") or i.get("uri") or i.get("email", "") for i in ids if i)
        extra = {k: v for k, v in payload.items() if k in ("state", "change_type", "credential_type")}
        print(f"   verified {uri.split('/')[-1] if uri.startswith('http') else uri}"
              f"  subject: {who or '-'}  {json.dumps(extra) if extra else ''}".rstrip())
    if want_verification and not any("verification" in next(iter(c["events"])) and
                                     next(iter(c["events"].values())).get("state") == "demo-42"
                                     for c in verified):
        sys.exit("no verification SET echoing the state")
    call(base, "POST", path, token, {"returnImmediately": True, "maxEvents": 0, "ack": list(doc["sets"])})
    json.dump(state, open(statefile, "w"))
    print(f"   {len(verified)} SET(s) verified against {len(jwks['keys'])} key(s) and acknowledged")


if __name__ == "__main__":
    main()
