"""Writes python_values.json: values made by Python for the Rust interop test.

usage: python3 make_fixtures.py > python_values.json
The key below is a test key made for this fixture, never used elsewhere.
Legacy tokens are made with the Python original's own SecretsEncryption
class when ../../../../../../shared/anchors/atom_py is reachable (it is in
the project's workplace), else with plain Fernet, which is what it wraps.
"""
import json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atom_value import context, key_id, master_bytes, seal_value  # noqa: E402

# secrets.token_urlsafe(32): the seed's recipe, 43 characters, no padding.
KEY = "q1n8oWdP4w2fDk6mRcV5yL0sT3bXeHjA9uKzN7gQiFo"

anchor = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      *[".."] * 6, "shared", "anchors", "atom_py")
try:
    sys.path.insert(0, anchor)
    from atom_reference import SecretsEncryption
    legacy = SecretsEncryption(KEY)  # pads the 43-char key exactly as the seed does
    made_by = "atom_reference.SecretsEncryption"
except ImportError:
    from cryptography.fernet import Fernet
    import base64
    legacy = type("F", (), {})()
    _f = Fernet(base64.urlsafe_b64encode(master_bytes(KEY)))
    legacy.encrypt = lambda s: _f.encrypt(s.encode()).decode()
    made_by = "cryptography.fernet.Fernet"

PLAINTEXTS = [
    ("credential", ["user_123", "slack"], "xoxb-" + "0123456789abcdef" * 5),
    ("credential", ["user_456", "google"], "ya29.a0Af-é-ünïcødé-🔑"),
    ("credential", ["", ""], ""),
    ("secret", ["openai_api_key"], "sk-" + "x" * 48),
    ("secret", ["naïve name"], "multi\nline\tvalue"),
]

items = []
for domain, parts, pt in PLAINTEXTS:
    items.append({
        "domain": domain,
        "parts": parts,
        "plaintext": pt,
        "sealed": seal_value(KEY, context(domain, *parts), pt),
        "legacy": legacy.encrypt(pt),
    })
json.dump({"key": KEY, "key_id": key_id(master_bytes(KEY)), "legacy_made_by": made_by,
           "items": items}, sys.stdout, indent=2, ensure_ascii=False)
print()
