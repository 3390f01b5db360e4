"""SecretsEncryption: the seed's Fernet class, byte-compatible with pyca's
Fernet (the Python original's values), opening under the whole keyring
and rotating as ``MultiFernet.rotate`` does."""

import base64
import logging

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from atom_protect import CannotOpen, ConfigError, SecretsEncryption
from conftest import new_key


def fernet(key: str) -> Fernet:
    """pyca's Fernet under ``key`` as the seed pads it."""
    if not key.endswith("="):
        key += "=" * (4 - len(key) % 4)
    return Fernet(key.encode())


def timestamp_bytes(token: str) -> bytes:
    """Bytes 1..9 of a Fernet token: its creation time."""
    return base64.urlsafe_b64decode(token)[1:9]


def test_a_token_of_the_package_opens_with_pyca_fernet(env):
    token = SecretsEncryption().encrypt("xoxb-your-slack-token")

    assert token.startswith("gAAAAA")
    assert fernet(env.key).decrypt(token.encode()) == b"xoxb-your-slack-token"


def test_a_token_of_pyca_fernet_opens_with_the_package(env):
    token = fernet(env.key).encrypt("xoxb-your-slack-token".encode()).decode()

    assert SecretsEncryption().decrypt(token) == "xoxb-your-slack-token"


def test_a_padded_44_character_fernet_key_works_both_ways(monkeypatch):
    key = Fernet.generate_key().decode()
    assert len(key) == 44
    monkeypatch.setenv("ENCRYPTION_KEY", key)
    secrets_encryption = SecretsEncryption()

    assert Fernet(key).decrypt(secrets_encryption.encrypt("sk-example").encode()) == b"sk-example"
    assert secrets_encryption.decrypt(Fernet(key).encrypt(b"sk-example").decode()) == "sk-example"


def test_unicode_and_long_values_round_trip(env):
    secrets_encryption = SecretsEncryption()
    for value in ["", "é ✓ 🔑", "x" * 100_000, "line\nbreaks\r\nand\ttabs"]:
        token = secrets_encryption.encrypt(value)
        assert secrets_encryption.decrypt(token) == value
        assert fernet(env.key).decrypt(token.encode()).decode() == value


def test_every_key_of_the_keyring_opens(env, monkeypatch):
    old1, old2 = new_key(), new_key()
    monkeypatch.setenv("ENCRYPTION_KEY", old1)
    made_under_old1 = SecretsEncryption().encrypt("made under old1")
    old1_id = SecretsEncryption().key_ids[0]
    made_under_old2 = fernet(old2).encrypt(b"made under old2").decode()

    monkeypatch.setenv("ENCRYPTION_KEY", env.key)
    monkeypatch.setenv("ENCRYPTION_PREVIOUS_KEYS", f"{old1},{old2}")
    secrets_encryption = SecretsEncryption()

    assert secrets_encryption.decrypt(made_under_old1) == "made under old1"
    assert secrets_encryption.decrypt(made_under_old2) == "made under old2"
    assert len(secrets_encryption.key_ids) == 3
    assert secrets_encryption.key_ids[1] == old1_id
    # New values are sealed under the primary key.
    assert fernet(env.key).decrypt(secrets_encryption.encrypt("new").encode()) == b"new"


def test_rotate_reseals_under_the_primary_and_keeps_the_timestamp(env, monkeypatch):
    old = new_key()
    created_at = 1_600_000_000  # 2020-09-13, long before this test
    old_token = fernet(old).encrypt_at_time(b"xoxb-rotate-me", created_at).decode()
    monkeypatch.setenv("ENCRYPTION_PREVIOUS_KEYS", old)

    rotated = SecretsEncryption().rotate(old_token)

    assert rotated != old_token
    assert fernet(env.key).decrypt(rotated.encode()) == b"xoxb-rotate-me"
    with pytest.raises(InvalidToken):
        fernet(old).decrypt(rotated.encode())
    # Like MultiFernet.rotate: the creation time is kept.
    assert timestamp_bytes(rotated) == timestamp_bytes(old_token)
    assert fernet(env.key).extract_timestamp(rotated.encode()) == created_at
    by_pyca = MultiFernet([fernet(env.key), fernet(old)]).rotate(old_token.encode()).decode()
    assert timestamp_bytes(by_pyca) == timestamp_bytes(rotated)

    # The old key alone no longer opens it.
    monkeypatch.setenv("ENCRYPTION_KEY", old)
    monkeypatch.delenv("ENCRYPTION_PREVIOUS_KEYS")
    with pytest.raises(CannotOpen, match="^Invalid encrypted data$"):
        SecretsEncryption().decrypt(rotated)


def test_rotate_of_a_token_no_key_opens_is_refused(env):
    foreign = fernet(new_key()).encrypt(b"x").decode()

    with pytest.raises(CannotOpen, match="^Invalid encrypted data$"):
        SecretsEncryption().rotate(foreign)


def test_without_a_key_the_seeds_fallback_returns_plaintext_and_warns(monkeypatch, caplog):
    monkeypatch.delenv("ENCRYPTION_KEY")

    with caplog.at_level(logging.WARNING, logger="atom_protect"):
        secrets_encryption = SecretsEncryption()

    assert secrets_encryption.encrypt("xoxb-plain") == "xoxb-plain"
    assert secrets_encryption.decrypt("xoxb-plain") == "xoxb-plain"
    assert secrets_encryption.cipher is None
    assert secrets_encryption.enabled is False
    assert secrets_encryption.key_ids == []
    warnings = [r for r in caplog.records if r.name == "atom_protect" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ENCRYPTION_KEY is not set" in warnings[0].getMessage()
    assert "PLAINTEXT" in warnings[0].getMessage()
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        secrets_encryption.rotate("xoxb-plain")


def test_require_encryption_refuses_the_fallback(monkeypatch):
    monkeypatch.delenv("ENCRYPTION_KEY")

    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        SecretsEncryption(require_encryption=True)


def test_atom_require_encryption_refuses_the_fallback(monkeypatch):
    monkeypatch.delenv("ENCRYPTION_KEY")
    monkeypatch.setenv("ATOM_REQUIRE_ENCRYPTION", "1")

    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        SecretsEncryption()


def test_require_encryption_with_a_key_works(env):
    secrets_encryption = SecretsEncryption(require_encryption=True)

    assert secrets_encryption.decrypt(secrets_encryption.encrypt("x")) == "x"


@pytest.mark.parametrize(
    "bad_key",
    [
        "your-development-key",  # the seed's .env placeholder
        "A" * 52,
        new_key()[:42] + "!",
        new_key() + "==",
    ],
)
def test_a_key_that_does_not_parse_is_a_config_error_naming_encryption_key(monkeypatch, bad_key):
    monkeypatch.setenv("ENCRYPTION_KEY", bad_key)

    with pytest.raises(ConfigError) as raised:
        SecretsEncryption()

    assert "ENCRYPTION_KEY" in str(raised.value)
    assert bad_key not in str(raised.value)


def test_a_previous_key_that_does_not_parse_is_a_config_error(monkeypatch):
    monkeypatch.setenv("ENCRYPTION_PREVIOUS_KEYS", "not-a-previous-key")

    with pytest.raises(ConfigError, match="ENCRYPTION_PREVIOUS_KEYS"):
        SecretsEncryption()


def test_repr_shows_key_ids_never_keys(env, monkeypatch):
    old = new_key()
    monkeypatch.setenv("ENCRYPTION_PREVIOUS_KEYS", old)
    secrets_encryption = SecretsEncryption()

    text = repr(secrets_encryption)

    primary_id, old_id = secrets_encryption.key_ids
    assert text == f"SecretsEncryption(enabled=True, primary_key_id='{primary_id}', keys=2)"
    for key in (env.key, old):
        assert key not in text
        assert key[:12] not in text
    for key_id in (primary_id, old_id):
        assert len(key_id) == 12 and all(c in "0123456789abcdef" for c in key_id)
        assert key_id not in env.key and key_id not in old


def test_cipher_enabled_and_key_ids(env):
    secrets_encryption = SecretsEncryption()

    # The seed tests `if not secrets_encryption.cipher:`.
    assert secrets_encryption.cipher is True
    assert secrets_encryption.enabled is True
    assert len(secrets_encryption.key_ids) == 1
    # The same key has the same id in every instance.
    assert SecretsEncryption().key_ids == secrets_encryption.key_ids
