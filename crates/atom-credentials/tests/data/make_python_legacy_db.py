"""Makes python_legacy.db: a user_credentials table written by the Python
original (atom_reference.py, the seed's SQLAlchemy model), as an Atom
deployment leaves it, for the adoption test of atom-credentials.

usage: python3 make_python_legacy_db.py ATOM_PY_DIR OUT_DIR

ATOM_PY_DIR holds atom_reference.py (../shared/anchors/atom_py). Writes
OUT_DIR/python_legacy.db and OUT_DIR/python_legacy.json (the key and, per
row, the token and what adoption must do with it). The key is a test key
made for this fixture only, in the seed's own recipe
(secrets.token_urlsafe(32): 43 characters, no padding).

What the deployment did:
- stored credentials with store_user_credential, which always INSERTs, so
  storing again for the same user and provider left duplicate rows;
- one duplicate whose older id carries the newer updated_at (newest is by
  time, not by id);
- one row from the no-key development mode (plaintext token);
- one row without a user id (incomplete; must be archived, not lost).
"""
import datetime
import json
import os
import sys

sys.path.insert(0, sys.argv[1])
from sqlalchemy.orm import Session  # noqa: E402
from atom_reference import (  # noqa: E402
    SecretsEncryption, UserCredential, engine, store_user_credential)

out_dir = sys.argv[2]
db_path = os.path.join(out_dir, "python_legacy.db")
if os.path.exists(db_path):
    os.remove(db_path)

KEY = "p7qlTgxbKiQzmLDvO0f2a8S6y3FhHnIuRkWcJdEtXrA"  # test key, 43 chars
enc = SecretsEncryption(KEY)
plain = SecretsEncryption("")  # no key: the seed's plaintext mode

rows = []  # (user_id, provider, token, fate)
e = engine(f"sqlite:///{db_path}")
with Session(e) as db:
    base = datetime.datetime(2024, 3, 1, 12, 0, 0, 123456)

    def add(user, provider, token, minutes, fate, cipher=enc):
        at = base + datetime.timedelta(minutes=minutes)
        c = UserCredential(user_id=user, provider=provider,
                           encrypted_token=cipher.encrypt(token),
                           created_at=at, updated_at=at)
        db.add(c)
        db.commit()
        rows.append({"id": c.id, "user_id": user, "provider": provider,
                     "token": token, "fate": fate})
        return c

    # Ordinary credentials, once each, through the original's own function.
    for i in range(20):
        user, provider = f"user_{i}", ["github", "slack", "google_drive"][i % 3]
        token = f"tok-{i}-" + "x" * (i % 7)
        store_user_credential(db, enc, user, provider, token)
        c = db.query(UserCredential).order_by(UserCredential.id.desc()).first()
        rows.append({"id": c.id, "user_id": user, "provider": provider,
                     "token": token, "fate": "kept"})

    # Stored again later: duplicates; the latest write is the credential.
    add("alice", "github", "gho_alice_1", 0, "duplicate")
    add("alice", "github", "gho_alice_2", 5, "duplicate")
    add("alice", "github", "gho_alice_3", 9, "kept")
    add("bob", "slack", "xoxb-bob-old", 1, "duplicate")
    add("bob", "slack", "xoxb-bob-new", 2, "kept")
    # The older id was updated last: it wins.
    carol_old = add("carol", "github", "gho_carol_updated", 3, "kept")
    add("carol", "github", "gho_carol_stale", 4, "duplicate")
    carol_old.encrypted_token = enc.encrypt("gho_carol_updated")
    carol_old.updated_at = base + datetime.timedelta(hours=1)
    db.commit()
    # Written while the deployment ran without a key.
    add("dave", "gitlab", "glpat-dave-plain", 6, "kept", cipher=plain)
    # No user id: cannot be a credential, must still not be lost.
    add(None, "github", "gho_orphan", 7, "incomplete")

with open(os.path.join(out_dir, "python_legacy.json"), "w") as f:
    json.dump({"key": KEY, "rows": rows}, f, indent=1)
    f.write("\n")
print(f"wrote {db_path} with {len(rows)} rows")
