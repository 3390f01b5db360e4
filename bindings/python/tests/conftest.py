"""Shared fixtures of the atom_protect tests.

Every test runs in a folder of its own (``tmp_path``) with an environment
of its own: whatever ``ENCRYPTION_*``, ``DATABASE_URL`` and ``ATOM_*``
the outer shell had is removed, and a fresh encryption key and audit key
are set, in the seed's recipe (``secrets.token_urlsafe(32)``). The engine
reads its settings when a store or a ``SecretsEncryption`` is made, so a
test changes the environment (``monkeypatch``) before making one.

The binaries (``atom``, ``atom-server``) are found in ``ATOM_BIN_DIR``
(default: ``<repository>/target/debug``); tests that need them are skipped,
saying why, when they are missing. PostgreSQL-backed tests run when
``ATOM_TEST_POSTGRES_URL`` is set (CI sets it) and are skipped, saying
why, otherwise; each one gets a database of its own, dropped at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parents[2]  # tests -> python -> bindings -> repository
FIXTURES = TESTS_DIR / "fixtures"

# Read once, before any test cleans the environment (they are ATOM_* too).
POSTGRES_URL = os.environ.get("ATOM_TEST_POSTGRES_URL") or None
BIN_DIR = Path(os.environ.get("ATOM_BIN_DIR") or REPO_ROOT / "target" / "debug")

NO_POSTGRES = (
    "ATOM_TEST_POSTGRES_URL is not set: PostgreSQL-backed test skipped "
    "(CI sets it, e.g. ATOM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test)"
)

# A subprocess that should answer in a second gets this long on a loaded
# CI machine before the test fails (a limit, not a measurement).
SUBPROCESS_TIMEOUT = 120


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"atom binaries: {BIN_DIR}" + ("" if (BIN_DIR / "atom").exists() else " (missing: tests that run them are skipped)")]
    lines.append(
        f"PostgreSQL-backed tests: on ({_redact(POSTGRES_URL)})" if POSTGRES_URL else f"PostgreSQL-backed tests: {NO_POSTGRES}"
    )
    return lines


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def new_key() -> str:
    """A key in the seed's recipe: 43 characters of url-safe base64."""
    return secrets.token_urlsafe(32)


@dataclasses.dataclass
class Env:
    """The environment of one test."""

    dir: Path
    key: str
    audit_key: str


def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ATOM_", "ENCRYPTION_", "AWS_")) or name in ("DATABASE_URL", "RUST_LOG"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    """A clean environment with a fresh key and audit key, in ``tmp_path``."""
    _clean(monkeypatch)
    key, audit_key = new_key(), new_key()
    monkeypatch.setenv("ENCRYPTION_KEY", key)
    monkeypatch.setenv("ATOM_AUDIT_KEY", audit_key)
    # The development folder (database, audit log) by its absolute path:
    # the engine resolves the default ".atom" against the current directory
    # each time it writes, so a store of an earlier test, flushed in the
    # background after it is dropped, could otherwise write into this
    # test's folder (test_store.py::test_a_store_keeps_its_folder_...).
    monkeypatch.setenv("ATOM_DATA_DIR", str(tmp_path / ".atom"))
    monkeypatch.chdir(tmp_path)
    return Env(dir=tmp_path, key=key, audit_key=audit_key)


@pytest.fixture
def python_original(tmp_path: Path) -> dict:
    """The Python original's files (made by fixtures/make_fixtures.py),
    copied into ``tmp_path / "python_original"``; the fixture.json's content
    with ``dir`` added."""
    dest = tmp_path / "python_original"
    shutil.copytree(FIXTURES / "python_original", dest)
    data = json.loads((dest / "fixture.json").read_text())
    data["dir"] = dest
    return data


def python_original_module():
    """The Python original (fixtures/atom_reference.py, a copy of the
    rebuilt seed code) as a module; needs SQLAlchemy and cryptography."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("atom_reference", FIXTURES / "atom_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_HOLD_THE_WRITE_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
print("released", flush=True)
"""


@contextlib.contextmanager
def sqlite_write_lock(path: str) -> Iterator[Callable[[], None]]:
    """Holds the write lock of the SQLite database at ``path`` (``BEGIN
    IMMEDIATE`` in Python's sqlite3) until the function it gives is called.

    The lock is held by another process: Python's SQLite and the engine's
    are two copies of SQLite, and two copies in one process do not see each
    other's POSIX locks (sqlite.org, "How To Corrupt An SQLite Database
    File", 2.2.1), so a lock taken here would not block the engine."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THE_WRITE_LOCK, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"

        def release() -> None:
            holder.stdin.write("go\n")
            holder.stdin.flush()
            assert holder.stdout.readline() == "released\n"

        yield release
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- binaries


def _binary(name: str) -> Path:
    path = BIN_DIR / name
    if not path.is_file():
        pytest.skip(f"{name} is not built at {path}: build it (cargo build -p atom-cli -p atom-server) or set ATOM_BIN_DIR")
    return path


@pytest.fixture
def atom_bin() -> Path:
    return _binary("atom")


@pytest.fixture
def atom_server_bin() -> Path:
    return _binary("atom-server")


@pytest.fixture
def atom(atom_bin: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Runs ``atom ARGS...`` in the test's folder with the test's
    environment; ``input`` goes to its stdin. Fails the test on a non-zero
    exit unless ``check=False``."""

    def run(*args: str, input: Optional[str] = None, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(atom_bin), *args],
            input=input,
            capture_output=True,
            text=True,
            env=dict(os.environ),
            cwd=os.getcwd(),
            timeout=SUBPROCESS_TIMEOUT,
        )
        if check and done.returncode != 0:
            pytest.fail(f"atom {' '.join(args)} exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}")
        return done

    return run


@dataclasses.dataclass
class Server:
    """A running atom-server."""

    url: str
    bin: Path

    def token(self, user: str) -> str:
        done = subprocess.run(
            [str(self.bin), "token", "--user", user],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=SUBPROCESS_TIMEOUT,
            check=True,
        )
        return done.stdout.strip()

    def request(self, method: str, path: str, user: str, body: Optional[dict] = None) -> tuple[int, Optional[dict]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token(user)}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=SUBPROCESS_TIMEOUT) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None)

    def put_credential(self, user: str, provider: str, token: str) -> int:
        status, _ = self.request("PUT", f"/api/users/{_q(user)}/credentials/{_q(provider)}", user, {"token": token})
        return status

    def get_credential(self, user: str, provider: str) -> tuple[int, Optional[dict]]:
        return self.request("GET", f"/api/users/{_q(user)}/credentials/{_q(provider)}", user)


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


@pytest.fixture
def atom_server(atom_server_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Server]]:
    """Starts atom-server (``--bind 127.0.0.1:0``) with the test's
    environment as it is when called; stopped at the end of the test."""
    monkeypatch.setenv("ATOM_JWT_SECRET", "test-only-jwt-secret-" + secrets.token_hex(16))
    started: list[subprocess.Popen] = []

    def start() -> Server:
        log = tmp_path / f"atom-server-{len(started)}.log"
        server_env = dict(os.environ, RUST_LOG="info")
        with open(log, "wb") as stderr:
            proc = subprocess.Popen(
                [str(atom_server_bin), "--bind", "127.0.0.1:0"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=server_env,
                cwd=os.getcwd(),
            )
        started.append(proc)
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while time.monotonic() < deadline:
            found = re.search(r"address=(\S+)", log.read_text(errors="replace"))
            if found:
                return Server(url=f"http://{found.group(1)}", bin=atom_server_bin)
            if proc.poll() is not None:
                pytest.fail(f"atom-server exited {proc.returncode} before listening:\n{log.read_text(errors='replace')}")
            time.sleep(0.02)
        pytest.fail(f"atom-server did not say its address:\n{log.read_text(errors='replace')}")

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -------------------------------------------------------------- PostgreSQL


def _psql(admin_url: str, sql: str) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("ATOM_TEST_POSTGRES_URL is set but psql is not on PATH; install the PostgreSQL client")
    subprocess.run(
        [psql, admin_url, "-v", "ON_ERROR_STOP=1", "-qXc", sql],
        check=True,
        capture_output=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def _with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


@pytest.fixture
def postgres_database() -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases (URLs), each dropped at the
    end of the test. Skips, saying why, without ATOM_TEST_POSTGRES_URL."""
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    made: list[str] = []

    def make() -> str:
        name = f"ap_{secrets.token_hex(6)}"
        _psql(POSTGRES_URL, f"CREATE DATABASE {name}")
        made.append(name)
        return _with_database(POSTGRES_URL, name)

    yield make
    for name in made:
        _psql(POSTGRES_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The credential database of a test run once per backend, set as
    DATABASE_URL: the SQLite default (``.atom/atom.db`` in the test's
    folder) and a fresh PostgreSQL database (skipped without
    ATOM_TEST_POSTGRES_URL)."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / '.atom' / 'atom.db'}"
    else:
        url = request.getfixturevalue("postgres_database")()
    monkeypatch.setenv("DATABASE_URL", url)
    return url
