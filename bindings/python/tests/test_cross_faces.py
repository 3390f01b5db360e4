"""One database, three faces: what the package writes, ``atom`` and
atom-server read, and the other way round, on SQLite and PostgreSQL
(server-backed runs need ATOM_TEST_POSTGRES_URL), with the audit trail in
a file or in the database; and the Python original's rows, adopted.
"""

import json

import pytest

from atom_protect import CredentialStore
from conftest import python_original_module


@pytest.fixture(params=["file", "database"])
def audit_sink(request, monkeypatch):
    """Where the trail is kept: ATOM_AUDIT_SINK for every face."""
    monkeypatch.setenv("ATOM_AUDIT_SINK", request.param)
    return request.param


def verify_trail(atom, audit_sink):
    done = atom("audit", "verify", "--audit-sink", audit_sink, "--json")
    verified = json.loads(done.stdout)
    assert verified["intact"] is True, done.stdout
    return verified


def test_written_by_the_package_read_by_atom_and_atom_server(database_url, audit_sink, atom, atom_server):
    with CredentialStore() as store:
        store.store_user_credential("alice", "slack", "xoxb-from-the-package")
        store.store_user_credential("bob", "github", "gho_from_the_package")

    assert atom("credentials", "get", "alice", "slack").stdout == "xoxb-from-the-package\n"
    listed = json.loads(atom("credentials", "list", "bob", "--json").stdout)
    assert [c["provider"] for c in listed["credentials"]] == ["github"]

    server = atom_server()
    status, body = server.get_credential("alice", "slack")
    assert status == 200
    assert body["token"] == "xoxb-from-the-package"
    status, body = server.get_credential("bob", "github")
    assert (status, body["token"]) == (200, "gho_from_the_package")

    verify_trail(atom, audit_sink)


def test_written_by_atom_and_atom_server_read_by_the_package(database_url, audit_sink, atom, atom_server):
    atom("credentials", "put", "alice", "github", input="gho_from_the_cli")
    server = atom_server()
    assert server.put_credential("alice", "slack", "xoxb-from-the-server") == 204

    with CredentialStore() as store:
        assert store.get_user_credential("alice", "github") == "gho_from_the_cli"
        assert store.get_user_credential("alice", "slack") == "xoxb-from-the-server"
        assert sorted(c["provider"] for c in store.list("alice")) == ["github", "slack"]

    verify_trail(atom, audit_sink)


def test_all_three_faces_at_once_extend_one_trail(database_url, audit_sink, atom, atom_server):
    server = atom_server()
    store = CredentialStore()
    events_before = verify_trail(atom, audit_sink)["events"] if audit_sink == "database" else 0

    for i in range(5):
        store.store_user_credential("alice", "slack", f"xoxb-package-{i}")
        assert server.get_credential("alice", "slack")[1]["token"] == f"xoxb-package-{i}"
        assert server.put_credential("alice", "slack", f"xoxb-server-{i}") == 204
        assert store.get_user_credential("alice", "slack") == f"xoxb-server-{i}"
        atom("credentials", "put", "alice", "slack", input=f"xoxb-cli-{i}")
        assert store.get_user_credential("alice", "slack") == f"xoxb-cli-{i}"
    store.close()

    verified = verify_trail(atom, audit_sink)
    # 5 rounds of 6 operations, each audited, in the one trail.
    assert verified["events"] - events_before >= 30


def test_the_package_adopts_the_python_originals_sqlite_table(python_original, monkeypatch, atom):
    monkeypatch.setenv("ENCRYPTION_KEY", python_original["key"])
    monkeypatch.setenv("DATABASE_URL", f"sqlite://{python_original['dir'] / 'credentials.sqlite'}")

    with CredentialStore() as store:
        for credential in python_original["credentials"]:
            token = store.get_user_credential(credential["user_id"], credential["provider"])
            assert token == credential["token"], credential

    # The command line reads the adopted table the same.
    assert atom("credentials", "get", "user_456", "slack").stdout == "xoxb-fixture-user-456-second\n"


def test_the_package_adopts_the_python_originals_postgres_table(postgres_database, monkeypatch, env, atom):
    """Rows written by the Python original itself (atom_reference through
    SQLAlchemy) into a fresh PostgreSQL database."""
    pytest.importorskip("sqlalchemy", reason="SQLAlchemy is needed to run the Python original")
    pytest.importorskip("psycopg2", reason="psycopg2 (pip install psycopg2-binary) is needed to run the Python original on PostgreSQL")
    from sqlalchemy.orm import Session

    original = python_original_module()

    url = postgres_database()
    engine = original.engine(url.replace("postgres://", "postgresql+psycopg2://", 1))
    enc = original.SecretsEncryption(env.key)
    with Session(engine) as db:
        original.store_user_credential(db, enc, "user_123", "slack", "xoxb-written-by-the-original")
        original.store_user_credential(db, enc, "user_123", "github", "gho_written_by_the_original")
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)

    with CredentialStore() as store:
        assert store.get_user_credential("user_123", "slack") == "xoxb-written-by-the-original"
        assert store.get_user_credential("user_123", "github") == "gho_written_by_the_original"
        store.store_user_credential("user_123", "slack", "xoxb-rewritten-by-the-package")

    assert atom("credentials", "get", "user_123", "slack").stdout == "xoxb-rewritten-by-the-package\n"
    verify_trail(atom, "file")


def test_legacy_rows_of_the_original_on_sqlite_made_live(env, monkeypatch, tmp_path):
    """The same with a database the Python original writes during the test."""
    pytest.importorskip("sqlalchemy", reason="SQLAlchemy is needed to run the Python original")
    from sqlalchemy.orm import Session

    original = python_original_module()

    path = tmp_path / "original.sqlite"
    engine = original.engine(f"sqlite:///{path}")
    enc = original.SecretsEncryption(env.key)
    with Session(engine) as db:
        original.store_user_credential(db, enc, "user_123", "slack", "xoxb-first")
        original.store_user_credential(db, enc, "user_123", "slack", "xoxb-second")
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", f"sqlite://{path}")

    with CredentialStore() as store:
        assert store.get_user_credential("user_123", "slack") == "xoxb-second"
