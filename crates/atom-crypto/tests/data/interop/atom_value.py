"""Open and seal Atom stored values with pyca/cryptography alone.

This is the snippet of docs/COMPATIBILITY.md, runnable. A stored value is
either a bare Fernet token under the raw master key (legacy) or
``atom:v1:<key id>:<fernet token>``, where the Fernet key is
HKDF-SHA256(master, salt=b"atom/v1", info=context, length=32) and the
context is a domain label and parts, each as a 4-byte big-endian length
followed by its UTF-8 bytes.

An enveloped value, ``atom:v2:<data key id>:<fernet token>``, is sealed the
same way under its owner's data key; the data key is stored wrapped: a v1
value of the data key's base64 text under the master key, for the context
("data-key", owner).

usage: python3 atom_value.py open  < {"key": K, "items": [{"domain": d, "parts": [...], "stored": s,
                                                           "owner": o, "wrapped": w}]}
       ("owner" and "wrapped" only for atom:v2 values)
       prints {"plaintexts": [...]} (JSON)
"""
import base64, hashlib, hmac, json, struct, sys

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def master_bytes(key: str) -> bytes:
    """A key as Atom accepts it: url-safe base64 of 32 bytes, padded or not."""
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 32
    return raw


def context(domain: str, *parts: str) -> bytes:
    out = b""
    for p in (domain, *parts):
        b = p.encode("utf-8")
        out += struct.pack(">I", len(b)) + b
    return out


def key_id(master: bytes) -> str:
    return hmac.new(master, b"atom key id v1", hashlib.sha256).digest()[:6].hex()


def derived_fernet(master: bytes, ctx: bytes) -> Fernet:
    okm = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"atom/v1", info=ctx).derive(master)
    return Fernet(base64.urlsafe_b64encode(okm))


def open_value(key: str, ctx: bytes, stored: str) -> str:
    master = master_bytes(key)
    if stored.startswith("atom:v1:"):
        kid, token = stored[len("atom:v1:"):].split(":", 1)
        if kid != key_id(master):
            raise ValueError(f"sealed under key {kid}, not {key_id(master)}")
        return derived_fernet(master, ctx).decrypt(token.encode()).decode("utf-8")
    # legacy: a bare Fernet token under the master key itself
    return Fernet(base64.urlsafe_b64encode(master)).decrypt(stored.encode()).decode("utf-8")


def open_enveloped(key: str, owner: str, wrapped: str, ctx: bytes, stored: str) -> str:
    """An atom:v2 value, from the master key and its owner's wrapped data key."""
    data_key = open_value(key, context("data-key", owner), wrapped)
    assert stored.startswith("atom:v2:")
    kid, token = stored[len("atom:v2:"):].split(":", 1)
    data = master_bytes(data_key)
    if kid != key_id(data):
        raise ValueError(f"sealed under data key {kid}, not {key_id(data)}")
    return derived_fernet(data, ctx).decrypt(token.encode()).decode("utf-8")


def seal_value(key: str, ctx: bytes, plaintext: str) -> str:
    master = master_bytes(key)
    token = derived_fernet(master, ctx).encrypt(plaintext.encode("utf-8")).decode()
    return f"atom:v1:{key_id(master)}:{token}"


if __name__ == "__main__":
    if sys.argv[1:] != ["open"]:
        sys.exit(__doc__)
    req = json.load(sys.stdin)
    out = [open_enveloped(req["key"], it["owner"], it["wrapped"],
                          context(it["domain"], *it["parts"]), it["stored"])
           if it["stored"].startswith("atom:v2:")
           else open_value(req["key"], context(it["domain"], *it["parts"]), it["stored"])
           for it in req["items"]]
    json.dump({"plaintexts": out}, sys.stdout, ensure_ascii=False)
