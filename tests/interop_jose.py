"""JOSE interop: python3-jwcrypto and libpatient verify each other's JWS.

usage: interop_jose.py JWS_TOOL PUBKEY_FILE UNENCRYPTED_SECKEY_FILE

The OKP JWK is built from minisign-format key files (docs/format/keys.md):
public key line = base64("Ed" | keynum[8] | pk[32]); secret key line =
base64 of 158 bytes with keynum at offset 54 and sk[64] = seed[32] | pk[32]
at offset 62.
"""
import base64
import json
import subprocess
import sys

from jwcrypto import jwk, jws
from jwcrypto.common import json_encode

tool, pubfile, secfile = sys.argv[1:4]
n = 0


def ok(what):
    global n
    n += 1
    print("ok %d - %s" % (n, what))


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def key_line(path):
    lines = [l for l in open(path).read().splitlines()
             if l and not l.startswith("untrusted comment:")]
    return base64.b64decode(lines[0], validate=True)


pub = key_line(pubfile)
assert len(pub) == 42 and pub[:2] == b"Ed"
keynum, pk = pub[2:10], pub[10:42]
kid = "%016X" % int.from_bytes(keynum, "little")
sec = key_line(secfile)
assert len(sec) == 158 and sec[:2] == b"Ed" and sec[2:4] == b"\0\0", "need an unencrypted key"
assert sec[54:62] == keynum
seed, sk_pk = sec[62:94], sec[94:126]
assert sk_pk == pk

pubjwk = jwk.JWK(kty="OKP", crv="Ed25519", x=b64u(pk))
secjwk = jwk.JWK(kty="OKP", crv="Ed25519", x=b64u(pk), d=b64u(seed))


def verify_with_jwcrypto(compact, key):
    t = jws.JWS()
    t.allowed_algs = ["EdDSA"]
    t.deserialize(compact)
    t.verify(key)
    return t


def run_tool(args, data):
    return subprocess.run([tool] + args, input=data, capture_output=True)


# 1. Our JWS verifies in jwcrypto.
payload = b'{"url":"https://example.org/","hop":1,"note":"caf\xc3\xa9"}'
r = run_tool(["sign", secfile, "patient-change+jws"], payload)
assert r.returncode == 0, r.stderr
ours = r.stdout.decode().strip()
t = verify_with_jwcrypto(ours, pubjwk)
assert t.payload == payload
hdr = t.jose_header
assert hdr == {"alg": "EdDSA", "kid": kid, "typ": "patient-change+jws"}, hdr
ok("jwcrypto verifies a JWS made by libpatient (kid %s)" % kid)

# 2. ... and rejects it tampered.
h, p, s = ours.split(".")
forged = ".".join([h, b64u(payload.replace(b"hop\":1", b"hop\":2")), s])
try:
    verify_with_jwcrypto(forged, pubjwk)
    raise SystemExit("not ok - jwcrypto accepted a tampered JWS")
except jws.InvalidJWSSignature:
    pass
ok("jwcrypto rejects a tampered libpatient JWS")

# 3. A JWS made by jwcrypto with the same key verifies in libpatient.
t = jws.JWS(payload)
t.add_signature(secjwk, None, json_encode({"alg": "EdDSA", "kid": kid}))
theirs = t.serialize(compact=True)
r = run_tool(["verify", pubfile], theirs.encode())
assert r.returncode == 0, r.stderr
assert r.stdout == payload
ok("libpatient verifies a JWS made by jwcrypto")

# 4. ... and rejects it tampered, or signed by another key with our kid.
h, p, s = theirs.split(".")
forged = ".".join([h, b64u(payload + b" "), s])
r = run_tool(["verify", pubfile], forged.encode())
assert r.returncode == 1 and b"signature.invalid" in r.stderr, r
other = jwk.JWK.generate(kty="OKP", crv="Ed25519")
t = jws.JWS(payload)
t.add_signature(other, None, json_encode({"alg": "EdDSA", "kid": kid}))
r = run_tool(["verify", pubfile], t.serialize(compact=True).encode())
assert r.returncode == 1 and b"signature.invalid" in r.stderr, r
t = jws.JWS(payload)
t.add_signature(secjwk, None, json_encode({"alg": "EdDSA", "kid": "0123456789ABCDEF"}))
r = run_tool(["verify", pubfile], t.serialize(compact=True).encode())
assert r.returncode == 1 and b"key.mismatch" in r.stderr, r
ok("libpatient rejects tampered / other-key / other-kid jwcrypto JWS")

print("1..%d" % n)
