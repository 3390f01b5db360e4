"""Writes the Python-original fixture in python/: secrets.json, and the
secrets.enc and secrets.json.backup that the Python original's
migrate_secrets_to_encryption makes from it, under the TEST key in key.txt.

usage: python3 make_python_fixture.py ATOM_PY_DIR OUT_DIR
  ATOM_PY_DIR  the folder holding atom_reference.py (shared/anchors/atom_py)
  OUT_DIR      where to write (tests/data/python)

The key is a fixed test key (bytes 0..31, written as the seed's 43-character
token_urlsafe form, so the seed's padding quirk is exercised). It protects
nothing real.
"""
import importlib.util, json, os, sys, types

atom_py, out = sys.argv[1], sys.argv[2]

# atom_reference imports SQLAlchemy for its credentials table; the secrets
# file code does not use it, so a stub stands in where it is not installed.
try:
    import sqlalchemy  # noqa: F401
except ImportError:
    sa = types.ModuleType("sqlalchemy")
    for n in ("Column", "Integer", "String", "Text", "DateTime", "create_engine"):
        setattr(sa, n, lambda *a, **k: None)
    orm = types.ModuleType("sqlalchemy.orm")
    orm.declarative_base = lambda: type("Base", (), {"metadata": None})
    orm.Session = object
    sys.modules["sqlalchemy"], sys.modules["sqlalchemy.orm"] = sa, orm

spec = importlib.util.spec_from_file_location("atom_reference", os.path.join(atom_py, "atom_reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
secrets = {
    "OPENAI_API_KEY": "sk-test-0123456789abcdef",
    "database_url": "postgres://atom:p%40ss@localhost/atom",
    "empty": "",
    "unicode_value": "pässwörd – 秘密 🔑",
    "名前": "value under a unicode name",
    "port": 5432,
    "ratio": 0.25,
    "debug": False,
    "nothing": None,
    "nested": {"inner": "kept as is", "list": [1, 2]},
    "list": ["a", 1, True],
}

os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "secrets.json"), "w") as f:
    json.dump(secrets, f, indent=2, ensure_ascii=False)
with open(os.path.join(out, "key.txt"), "w") as f:
    f.write(KEY + "\n")
ref.migrate_secrets_to_encryption(ref.SecretsEncryption(KEY), out)
print("wrote", out)
