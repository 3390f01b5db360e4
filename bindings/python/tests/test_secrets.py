"""Secrets: the seed's auto-migration (secrets.json -> secrets.enc, with a
backup) as one call, and the secrets file as a dict, by the rules of
``atom secrets get``."""

import json
import logging
import shutil

import pytest

from atom_protect import CannotOpen, ConfigError, Secrets

# The seed's "Storage Formats" example, with a nested object and the
# values JSON keeps as they are.
SECRETS = {
    "slack_token": "xoxb-your-plaintext-token",
    "google_api_key": "AIza-your-plaintext-key",
    "openai_api_key": "sk-your-plaintext-key",
    "database": {"password": "pw-example", "port": 5432, "replicas": ["pw-r1", "pw-r2"]},
    "port": 5432,
    "ratio": 0.25,
    "debug": False,
    "unset": None,
}


@pytest.fixture
def secrets_dir(env):
    folder = env.dir / "config"
    folder.mkdir()
    (folder / "secrets.json").write_text(json.dumps(SECRETS))
    return folder


def test_auto_migrate_seals_strings_keeps_numbers_and_writes_a_backup(secrets_dir):
    done = Secrets.auto_migrate(secrets_dir)

    assert done["outcome"] == "migrated"
    assert sorted(done["sealed"]) == ["database", "google_api_key", "openai_api_key", "slack_token"]
    encrypted = json.loads((secrets_dir / "secrets.enc").read_text())
    assert set(encrypted) == set(SECRETS)
    for name in ("slack_token", "google_api_key", "openai_api_key"):
        assert encrypted[name].startswith("atom:v1:")
        assert SECRETS[name] not in encrypted[name]
    assert encrypted["database"]["password"].startswith("atom:v1:")
    assert all(r.startswith("atom:v1:") for r in encrypted["database"]["replicas"])
    assert encrypted["database"]["port"] == 5432
    for name in ("port", "ratio", "debug", "unset"):
        assert encrypted[name] == SECRETS[name]
    assert json.loads((secrets_dir / "secrets.json.backup").read_text()) == SECRETS


def test_auto_migrate_then_load_gives_back_the_same_dict(secrets_dir):
    Secrets.auto_migrate(secrets_dir)
    (secrets_dir / "secrets.json").unlink()

    assert Secrets.load(secrets_dir) == SECRETS


def test_auto_migrate_says_why_it_did_nothing(secrets_dir, env, monkeypatch):
    assert Secrets.auto_migrate(env.dir / "nowhere")["outcome"] == "no_plaintext_file"
    assert Secrets.auto_migrate(secrets_dir)["outcome"] == "migrated"
    assert Secrets.auto_migrate(secrets_dir)["outcome"] == "already_migrated"

    monkeypatch.setenv("ATOM_AUTO_MIGRATE", "0")
    other = env.dir / "other"
    other.mkdir()
    (other / "secrets.json").write_text(json.dumps(SECRETS))
    assert Secrets.auto_migrate(other)["outcome"] == "disabled"
    assert not (other / "secrets.enc").exists()


def test_load_reads_the_python_originals_secrets_file(python_original, monkeypatch):
    monkeypatch.setenv("ENCRYPTION_KEY", python_original["key"])
    encrypted = json.loads((python_original["dir"] / "secrets.enc").read_text())
    assert encrypted["slack_token"].startswith("gAAAAA")  # a bare Fernet token

    assert Secrets.load(python_original["dir"]) == python_original["secrets"]


def test_a_tampered_value_raises_cannot_open_and_returns_nothing(secrets_dir):
    Secrets.auto_migrate(secrets_dir)
    path = secrets_dir / "secrets.enc"
    encrypted = json.loads(path.read_text())
    sealed = encrypted["openai_api_key"]
    middle = len(sealed) // 2
    encrypted["openai_api_key"] = sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1 :]
    path.write_text(json.dumps(encrypted))

    result = None
    with pytest.raises(CannotOpen) as raised:
        result = Secrets.load(secrets_dir)

    assert result is None
    assert "openai_api_key" in str(raised.value)
    for value in ("xoxb-your-plaintext-token", "AIza-your-plaintext-key", "pw-example"):
        assert value not in str(raised.value)


def test_a_value_moved_to_another_name_does_not_open(secrets_dir):
    Secrets.auto_migrate(secrets_dir)
    path = secrets_dir / "secrets.enc"
    encrypted = json.loads(path.read_text())
    encrypted["slack_token"] = encrypted["openai_api_key"]  # sealed under its own name
    path.write_text(json.dumps(encrypted))

    with pytest.raises(CannotOpen):
        Secrets.load(secrets_dir)


def test_load_agrees_with_atom_secrets_get(secrets_dir, atom, monkeypatch):
    Secrets.auto_migrate(secrets_dir)
    monkeypatch.setenv("ATOM_SECRETS_DIR", str(secrets_dir))

    loaded = Secrets.load(secrets_dir)

    for name, value in loaded.items():
        printed = atom("secrets", "get", name).stdout
        if isinstance(value, str):
            assert printed == value + "\n", name
        else:
            assert json.loads(printed) == value, name


def test_atom_secrets_migrate_is_read_by_load(env, atom):
    (env.dir / "secrets.json").write_text(json.dumps(SECRETS))

    atom("secrets", "migrate")

    assert Secrets.load() == SECRETS
    assert Secrets.load(env.dir) == SECRETS


def test_without_a_key_load_returns_secrets_json_and_warns(secrets_dir, monkeypatch, caplog):
    monkeypatch.delenv("ENCRYPTION_KEY")

    with caplog.at_level(logging.WARNING, logger="atom_protect"):
        loaded = Secrets.load(secrets_dir)

    assert loaded == SECRETS
    assert any(r.name == "atom_protect" and "PLAINTEXT" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        Secrets.load(secrets_dir, require_encryption=True)


def test_the_python_originals_file_does_not_open_under_another_key(python_original):
    # The test's own key, not the fixture's.
    with pytest.raises(CannotOpen):
        Secrets.load(python_original["dir"])


def test_load_is_audited(secrets_dir, atom):
    Secrets.auto_migrate(secrets_dir)
    Secrets.load(secrets_dir)

    verified = json.loads(atom("audit", "verify", "--json").stdout)

    assert verified["intact"] is True
    assert verified["events"] >= 2


def test_a_copy_elsewhere_loads_the_same(secrets_dir, env):
    Secrets.auto_migrate(secrets_dir)
    moved = env.dir / "moved"
    moved.mkdir()
    shutil.copy(secrets_dir / "secrets.enc", moved / "secrets.enc")

    assert Secrets.load(moved) == SECRETS
