"""The exceptions: each raised where it should be, all ``AtomError``s,
three of them ``ValueError``s as the seed's callers expect; and no
message, ``repr`` or log line ever holds a key, a token or a password."""

import json
import logging
import sqlite3
from contextlib import closing

import pytest

import atom_protect
from atom_protect import (
    AtomError,
    CannotOpen,
    ConfigError,
    CredentialNotFound,
    CredentialStore,
    InvalidInput,
    Secrets,
    SecretsEncryption,
    Unavailable,
)
from conftest import new_key


def test_the_hierarchy():
    for exc in (CredentialNotFound, CannotOpen, InvalidInput, Unavailable, ConfigError):
        assert issubclass(exc, AtomError)
    for exc in (CredentialNotFound, CannotOpen, InvalidInput):
        assert issubclass(exc, ValueError)
    for exc in (Unavailable, ConfigError, AtomError):
        assert not issubclass(exc, ValueError)
    assert set(atom_protect.__all__) >= {
        "AtomError",
        "CannotOpen",
        "ConfigError",
        "CredentialNotFound",
        "InvalidInput",
        "Unavailable",
    }


def test_credential_not_found():
    store = CredentialStore()

    with pytest.raises(CredentialNotFound, match="^Credential not found for slack$"):
        store.get_user_credential("user_123", "slack")


def test_cannot_open_a_token_of_another_key():
    with pytest.raises(CannotOpen, match="^Invalid encrypted data$"):
        SecretsEncryption().decrypt("gAAAAAB" + "A" * 93)


def test_cannot_open_a_row_sealed_under_a_key_no_longer_configured(monkeypatch):
    with CredentialStore() as store:
        store.store_user_credential("user_123", "slack", "xoxb-old-key")
    monkeypatch.setenv("ENCRYPTION_KEY", new_key())

    with CredentialStore() as store, pytest.raises(CannotOpen):
        store.get_user_credential("user_123", "slack")


def test_invalid_input():
    with pytest.raises(InvalidInput):
        CredentialStore().store_user_credential("user/123", "slack", "xoxb")
    with pytest.raises(InvalidInput, match="audit_sink"):
        CredentialStore(audit_sink="syslog")


def test_unavailable(monkeypatch):
    monkeypatch.setenv("ATOM_DB_ACQUIRE_TIMEOUT_SECS", "1")

    with pytest.raises(Unavailable):
        CredentialStore("postgres://postgres@127.0.0.1:1/x").list("user_123")


def test_config_error(monkeypatch):
    monkeypatch.setenv("ENCRYPTION_KEY", "not-a-key")
    with pytest.raises(ConfigError):
        SecretsEncryption()
    with pytest.raises(ConfigError):
        CredentialStore().open()


def test_an_audit_key_equal_to_the_encryption_key_is_a_config_error(env, monkeypatch):
    monkeypatch.setenv("ATOM_AUDIT_KEY", env.key)

    with pytest.raises(ConfigError, match="ATOM_AUDIT_KEY") as raised:
        CredentialStore().open()

    assert env.key not in str(raised.value)


# ------------------------------------------------------ nothing secret leaks

PLANTED_TOKEN = "xoxb-PLANTED-TOKEN-8c1f2e9d"
PLANTED_PASSWORD = "PLANTED-PASSWORD-31d7"


def planted_failures(env, monkeypatch):
    """Runs every failure path with distinctive secrets planted; the
    exceptions raised, the objects made, and the secrets to look for."""
    old_key = new_key()
    monkeypatch.setenv("ENCRYPTION_PREVIOUS_KEYS", old_key)
    monkeypatch.setenv("ATOM_DB_ACQUIRE_TIMEOUT_SECS", "1")
    raised, objects = [], []

    def expect(exc, call):
        with pytest.raises(exc) as info:
            call()
        raised.append(info.value)

    secrets_encryption = SecretsEncryption()
    objects.append(secrets_encryption)
    token = secrets_encryption.encrypt(PLANTED_TOKEN)
    expect(CannotOpen, lambda: secrets_encryption.decrypt(token[:-8] + "AAAAAAAA"))
    expect(CannotOpen, lambda: secrets_encryption.decrypt(PLANTED_TOKEN))
    expect(CannotOpen, lambda: secrets_encryption.rotate(token[:40]))

    store = CredentialStore()
    objects.append(store)
    store.store_user_credential("alice", "slack", PLANTED_TOKEN)
    store.store_user_credential("mallory", "slack", "xoxb-mallory")
    expect(CredentialNotFound, lambda: store.get_user_credential("alice", "github"))
    expect(InvalidInput, lambda: store.store_user_credential("alice/../x", "slack", PLANTED_TOKEN))
    store.close()
    with closing(sqlite3.connect(".atom/atom.db")) as db:
        db.execute(
            "UPDATE user_credentials SET encrypted_token = "
            "(SELECT encrypted_token FROM user_credentials WHERE user_id = 'alice') "
            "WHERE user_id = 'mallory'"
        )
        db.commit()
    expect(CannotOpen, lambda: store.get_user_credential("mallory", "slack"))
    store.close()

    unreachable = CredentialStore(f"postgres://atom:{PLANTED_PASSWORD}@127.0.0.1:1/credentials")
    objects.append(unreachable)
    expect(Unavailable, lambda: unreachable.get_user_credential("alice", "slack"))
    async_unreachable = atom_protect.AsyncCredentialStore(f"postgres://atom:{PLANTED_PASSWORD}@127.0.0.1:1/x")
    objects.append(async_unreachable)

    (env.dir / "secrets.json").write_text(json.dumps({"slack_token": PLANTED_TOKEN}))
    Secrets.auto_migrate(env.dir)
    sealed = json.loads((env.dir / "secrets.enc").read_text())
    sealed["slack_token"] = sealed["slack_token"][:-8] + "AAAAAAAA"
    (env.dir / "secrets.enc").write_text(json.dumps(sealed))
    expect(CannotOpen, lambda: Secrets.load(env.dir))

    bad_key = new_key()[:40] + "#!?"  # distinctive, 43 characters, does not parse
    monkeypatch.setenv("ENCRYPTION_KEY", bad_key)
    expect(ConfigError, SecretsEncryption)
    expect(ConfigError, lambda: CredentialStore().open())
    monkeypatch.setenv("ENCRYPTION_KEY", env.key)
    bad_previous = "Z" * 50
    monkeypatch.setenv("ENCRYPTION_PREVIOUS_KEYS", f"{old_key},{bad_previous}")
    expect(ConfigError, SecretsEncryption)
    monkeypatch.setenv("ENCRYPTION_PREVIOUS_KEYS", old_key)
    monkeypatch.setenv("ATOM_AUDIT_KEY", old_key)
    expect(ConfigError, lambda: CredentialStore().open())

    # The development fallback warns through logging.
    monkeypatch.delenv("ENCRYPTION_KEY")
    monkeypatch.delenv("ENCRYPTION_PREVIOUS_KEYS")
    monkeypatch.setenv("ATOM_AUDIT_KEY", env.audit_key)
    objects.append(SecretsEncryption())

    planted = [PLANTED_TOKEN, PLANTED_PASSWORD, env.key, env.audit_key, old_key, bad_key, bad_previous, token]
    return raised, objects, planted


def test_no_secret_in_messages_reprs_or_logs(env, monkeypatch, caplog, capfd):
    with caplog.at_level(logging.DEBUG):
        raised, objects, planted = planted_failures(env, monkeypatch)
    out, err = capfd.readouterr()

    assert len(raised) == 12
    assert "PLAINTEXT" in caplog.text  # the scan below reads real log output
    texts = {
        "caplog": caplog.text,
        "stdout": out,
        "stderr": err,
    }
    for e in raised:
        texts[f"str({type(e).__name__})"] = str(e)
        texts[f"repr({type(e).__name__})"] = repr(e)
        texts[f"args({type(e).__name__})"] = repr(e.args)
    for obj in objects:
        texts[f"repr({type(obj).__name__})"] = repr(obj)
    for where, text in texts.items():
        for secret in planted:
            assert secret not in text, f"a planted secret appears in {where}: {text!r}"
        for secret in planted[:2]:
            # Nor a recognisable part of one.
            assert secret[-8:] not in text, f"part of a planted secret appears in {where}: {text!r}"


def test_the_repr_of_a_store_hides_the_database_password():
    url = f"postgres://atom:{PLANTED_PASSWORD}@db.example:5432/credentials"

    assert PLANTED_PASSWORD not in repr(CredentialStore(url))
    assert PLANTED_PASSWORD not in repr(atom_protect.AsyncCredentialStore(url))
    assert "db.example" in repr(CredentialStore(url))
