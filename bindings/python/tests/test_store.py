"""CredentialStore: per-user encrypted tokens in the credential database,
in process (the seed's store_user_credential / get_user_credential).

The SQLite file is only touched with Python's ``sqlite3`` while the store
is closed: the engine links SQLite of its own, and two copies of SQLite in
one process do not see each other's POSIX locks (sqlite.org, "How To
Corrupt An SQLite Database File", 2.2.1).
"""

import json
import sqlite3
from contextlib import closing

import pytest

from atom_protect import (
    AtomError,
    CannotOpen,
    CredentialNotFound,
    CredentialStore,
    InvalidInput,
    SecretsEncryption,
    Unavailable,
)

DB = ".atom/atom.db"


def rows(path=DB):
    """(user_id, provider, encrypted_token) of every credential row."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(
            "SELECT user_id, provider, encrypted_token FROM user_credentials ORDER BY user_id, provider"
        ).fetchall()


def test_store_get_list_delete():
    store = CredentialStore()

    store.store_user_credential("user_123", "slack", "xoxb-first")
    store.store_user_credential("user_123", "github", "gho_token")
    store.store_user_credential("user_123", "slack", "xoxb-second")  # replaces

    assert store.get_user_credential("user_123", "slack") == "xoxb-second"
    assert store.get_user_credential("user_123", "github") == "gho_token"
    assert sorted(c["provider"] for c in store.list("user_123")) == ["github", "slack"]
    assert store.list("user_456") == []

    assert store.delete("user_123", "slack") is True
    assert store.delete("user_123", "slack") is False
    with pytest.raises(CredentialNotFound):
        store.get_user_credential("user_123", "slack")
    assert [c["provider"] for c in store.list("user_123")] == ["github"]


def test_erase_user_removes_every_credential_of_that_user_only():
    store = CredentialStore()
    store.store_user_credential("user_123", "slack", "xoxb-123")
    store.store_user_credential("user_123", "github", "gho-123")
    store.store_user_credential("user_456", "slack", "xoxb-456")

    report = store.erase_user("user_123")

    assert report["user"] == "user_123"
    assert sorted(report["removed"]) == ["github", "slack"]
    assert report["archived_removed"] == 0
    # A new store is in envelope mode: the user's data key goes with them.
    assert report["data_keys_destroyed"] == 1
    assert store.list("user_123") == []
    assert store.get_user_credential("user_456", "slack") == "xoxb-456"
    assert store.erase_user("user_123")["removed"] == []


def test_list_gives_metadata_never_tokens():
    store = CredentialStore()
    store.store_user_credential("user_123", "slack", "xoxb-LISTED-NEVER-4711")

    listing = store.list("user_123")

    assert len(listing) == 1
    (info,) = listing
    assert set(info) == {"provider", "key_id", "created_at", "updated_at"}
    assert info["provider"] == "slack"
    # A new store seals under the user's data key: its id, not a master key's.
    assert len(info["key_id"]) == 12
    assert info["key_id"] not in SecretsEncryption().key_ids
    assert "4711" not in repr(listing)
    assert "xoxb" not in repr(listing)


def test_values_in_the_database_are_sealed_and_bound_to_their_row(env):
    # A store that holds no credential yet starts in envelope mode: values
    # are sealed under the user's own data key (atom:v2).
    with CredentialStore() as store:
        store.store_user_credential("user_123", "slack", "xoxb-sealed-value")

    ((user, provider, value),) = rows()
    assert (user, provider) == ("user_123", "slack")
    assert value.startswith("atom:v2:")
    assert "xoxb-sealed-value" not in value


def test_without_envelopes_values_are_sealed_under_the_master_key(env):
    with CredentialStore(envelope=False) as store:
        store.store_user_credential("user_123", "slack", "xoxb-sealed-value")

    ((user, provider, value),) = rows()
    key_id = SecretsEncryption().key_ids[0]
    assert (user, provider) == ("user_123", "slack")
    assert value.startswith(f"atom:v1:{key_id}:gAAAAA")
    assert "xoxb-sealed-value" not in value


@pytest.mark.parametrize(
    "user_id",
    ["", " user_123", "user_123 ", "a/b", "a\\b", "..", "x" * 256, "line\nbreak", "nul\x00"],
)
def test_an_invalid_user_id_is_invalid_input(user_id):
    store = CredentialStore()

    for call in (
        lambda: store.store_user_credential(user_id, "slack", "xoxb"),
        lambda: store.get_user_credential(user_id, "slack"),
        lambda: store.delete(user_id, "slack"),
        lambda: store.list(user_id),
        lambda: store.erase_user(user_id),
    ):
        with pytest.raises(InvalidInput) as raised:
            call()
        assert isinstance(raised.value, ValueError)
        assert "user id" in str(raised.value)


@pytest.mark.parametrize("provider", ["", "Sl ack", "a/b", ".", "..", "x" * 51, "slack\n", "é"])
def test_an_invalid_provider_is_invalid_input(provider):
    store = CredentialStore()

    for call in (
        lambda: store.store_user_credential("user_123", provider, "xoxb"),
        lambda: store.get_user_credential("user_123", provider),
        lambda: store.delete("user_123", provider),
    ):
        with pytest.raises(InvalidInput, match="provider") as raised:
            call()
        assert isinstance(raised.value, ValueError)


def test_ids_at_the_limits_are_accepted():
    store = CredentialStore()
    user_id, provider = "u" * 255, "p" * 50

    store.store_user_credential(user_id, provider, "t")
    store.store_user_credential("user@example.com", "google_drive.v2-beta", "t2")

    assert store.get_user_credential(user_id, provider) == "t"
    assert store.get_user_credential("user@example.com", "google_drive.v2-beta") == "t2"


def test_an_empty_token_is_refused():
    store = CredentialStore()

    with pytest.raises(InvalidInput, match="token is empty"):
        store.store_user_credential("user_123", "slack", "")
    with pytest.raises(CredentialNotFound):
        store.get_user_credential("user_123", "slack")


def test_context_manager_closes_and_a_later_call_opens_again():
    with CredentialStore() as store:
        store.store_user_credential("user_123", "slack", "xoxb-1")

    # Closed: the database is free for another SQLite in this process.
    assert rows()[0][:2] == ("user_123", "slack")
    assert store.get_user_credential("user_123", "slack") == "xoxb-1"

    store.close()
    store.close()  # closing twice is harmless
    store.store_user_credential("user_123", "slack", "xoxb-2")
    assert store.get_user_credential("user_123", "slack") == "xoxb-2"
    store.close()


def test_the_context_manager_does_not_swallow_exceptions():
    with pytest.raises(CredentialNotFound):
        with CredentialStore() as store:
            store.get_user_credential("user_123", "slack")


def test_open_shows_a_bad_setting_at_start_up():
    store = CredentialStore("postgres://postgres@127.0.0.1:1/x")

    with pytest.raises(Unavailable):
        store.open()


@pytest.mark.parametrize("how", ["environment", "keyword"])
def test_envelope_encryption_stores_v2_values(how, monkeypatch):
    if how == "environment":
        monkeypatch.setenv("ATOM_ENVELOPE_ENCRYPTION", "1")
        store = CredentialStore()
    else:
        store = CredentialStore(envelope=True)

    store.store_user_credential("user_123", "slack", "xoxb-enveloped")
    store.store_user_credential("user_456", "slack", "xoxb-other")
    assert store.get_user_credential("user_123", "slack") == "xoxb-enveloped"
    store.close()

    values = {user: value for user, _, value in rows()}
    assert values["user_123"].startswith("atom:v2:")
    assert values["user_456"].startswith("atom:v2:")
    assert "xoxb-enveloped" not in values["user_123"]

    report = store.erase_user("user_123")
    assert report["data_keys_destroyed"] == 1
    with pytest.raises(CredentialNotFound):
        store.get_user_credential("user_123", "slack")
    assert store.get_user_credential("user_456", "slack") == "xoxb-other"
    store.close()


def test_a_value_copied_into_another_users_row_does_not_open():
    with CredentialStore() as store:
        store.store_user_credential("alice", "slack", "xoxb-alice")
        store.store_user_credential("mallory", "slack", "xoxb-mallory")
    with closing(sqlite3.connect(DB)) as db:
        db.execute(
            "UPDATE user_credentials SET encrypted_token = "
            "(SELECT encrypted_token FROM user_credentials WHERE user_id = 'alice') "
            "WHERE user_id = 'mallory'"
        )
        db.commit()

    with pytest.raises(CannotOpen) as raised:
        store.get_user_credential("mallory", "slack")

    assert isinstance(raised.value, ValueError)
    assert "xoxb-alice" not in str(raised.value)
    assert store.get_user_credential("alice", "slack") == "xoxb-alice"
    store.close()


def test_an_unreachable_database_is_unavailable(monkeypatch):
    monkeypatch.setenv("ATOM_DB_ACQUIRE_TIMEOUT_SECS", "1")
    store = CredentialStore("postgres://postgres@127.0.0.1:1/x")

    with pytest.raises(Unavailable) as raised:
        store.get_user_credential("user_123", "slack")

    assert isinstance(raised.value, AtomError)
    assert not isinstance(raised.value, ValueError)
    assert "DATABASE_URL" in str(raised.value)


def test_database_url_from_the_environment(env, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite://elsewhere.db")
    with CredentialStore() as store:
        store.store_user_credential("user_123", "slack", "xoxb-elsewhere")

    # Resolved once, when the store is made: later folder changes do not move it.
    assert repr(store) == f"CredentialStore(database=sqlite://{env.dir / 'elsewhere.db'})"
    assert [r[:2] for r in rows("elsewhere.db")] == [("user_123", "slack")]


def test_package_operations_leave_an_intact_audit_trail(atom):
    with CredentialStore() as store:
        store.store_user_credential("user_123", "slack", "xoxb-audited")
        store.get_user_credential("user_123", "slack")
        store.list("user_123")
        with pytest.raises(CredentialNotFound):
            store.get_user_credential("user_123", "github")
        store.delete("user_123", "slack")
        store.erase_user("user_123")

    done = atom("audit", "verify", "--json")

    verified = json.loads(done.stdout)
    assert done.returncode == 0
    assert verified["intact"] is True
    assert verified["events"] >= 6
    assert "xoxb-audited" not in open(".atom/audit.jsonl").read()


def test_a_tampered_audit_trail_fails_verify_after_package_operations(atom):
    with CredentialStore() as store:
        store.store_user_credential("user_123", "slack", "xoxb-audited")
        store.get_user_credential("user_123", "slack")
    log = open(".atom/audit.jsonl").read()
    assert "user_123" in log
    open(".atom/audit.jsonl", "w").write(log.replace("user_123", "user_999", 1))

    assert atom("audit", "verify", check=False).returncode == 3


def test_a_store_keeps_its_folder_when_the_process_changes_directory(env, monkeypatch, atom):
    """Settings are read when a store is made, so its files are the ones
    of that moment, whatever the current directory is later (a service or
    a test runner may chdir)."""
    monkeypatch.delenv("ATOM_DATA_DIR")  # the default: .atom in the current directory
    store = CredentialStore()
    store.store_user_credential("user_123", "slack", "xoxb-1")
    elsewhere = env.dir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    try:
        store.store_user_credential("user_123", "slack", "xoxb-2")
        assert store.get_user_credential("user_123", "slack") == "xoxb-2"
    finally:
        monkeypatch.chdir(env.dir)
    store.close()

    assert not (elsewhere / ".atom").exists()
    assert json.loads(atom("audit", "verify", "--json").stdout)["intact"] is True
