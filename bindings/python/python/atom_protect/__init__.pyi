"""Type stubs of atom_protect: Atom data protection on the Rust engine.

The classes are defined in the extension module ``atom_protect._native``
and re-exported here with the exceptions of ``atom_protect._errors``.
"""

import builtins
import os
from asyncio import Future
from typing import Any, Literal, Union, final

from ._errors import (
    AtomError as AtomError,
    CannotOpen as CannotOpen,
    ConfigError as ConfigError,
    CredentialNotFound as CredentialNotFound,
    InvalidInput as InvalidInput,
    Unavailable as Unavailable,
)

__version__: str

_Path = Union[str, os.PathLike[str]]
_AuditSink = Literal["file", "database"]

@final
class SecretsEncryption:
    """The seed's ``SecretsEncryption``, on the Rust engine.

    Reads ``ENCRYPTION_KEY`` (43-character ``secrets.token_urlsafe(32)`` or
    padded 44-character Fernet key) and ``ENCRYPTION_PREVIOUS_KEYS`` when
    made. Values are bare Fernet tokens, readable by pyca's ``Fernet``.
    Without a key: the seed's plaintext fallback, with a WARNING on the
    ``atom_protect`` logger, unless ``require_encryption=True`` (or
    ``ATOM_REQUIRE_ENCRYPTION=1``), which raises :class:`ConfigError`.
    A key that does not parse raises :class:`ConfigError`.
    """

    def __new__(cls, *, require_encryption: bool | None = None) -> SecretsEncryption: ...
    def encrypt(self, plaintext: str) -> str:
        """A Fernet token (``gAAAAA...``) under the primary key; without a
        key, ``plaintext`` itself."""
    def decrypt(self, encrypted: str) -> str:
        """Opens a token made under any configured key; without a key,
        ``encrypted`` itself. Raises :class:`CannotOpen` (a ``ValueError``)
        with the message ``Invalid encrypted data``."""
    def rotate(self, token: str) -> str:
        """Re-seals ``token`` under the primary key, keeping its timestamp
        (as ``MultiFernet.rotate``). Raises :class:`CannotOpen` if no key
        opens it, :class:`ConfigError` without a key."""
    @property
    def enabled(self) -> bool:
        """Whether a key is configured."""
    @property
    def cipher(self) -> Literal[True] | None:
        """The seed's ``cipher``: ``True`` with a key, ``None`` without."""
    @property
    def key_ids(self) -> builtins.list[str]:
        """The ids of the configured keys (12 hex digits, never a key),
        the primary first; empty without a key."""

@final
class Secrets:
    """The secrets folder (``secrets.enc`` / ``secrets.json``) as a dict."""

    @staticmethod
    def load(dir: _Path = ..., *, require_encryption: bool | None = None) -> dict[str, Any]:
        """The values of ``dir/secrets.enc`` (``dir`` defaults to the
        current folder), opened (nested strings too;
        numbers, booleans and null as they are). One value that does not
        open raises :class:`CannotOpen` and nothing is returned. Without a
        key, ``secrets.json`` as it is, with a warning."""
    @staticmethod
    def auto_migrate(dir: _Path = ...) -> dict[str, Any]:
        """The seed's auto-migration in ``dir`` (default: the current
        folder): ``secrets.json`` sealed into ``secrets.enc``, keeping ``secrets.json.backup``. Returns
        ``{"outcome": "migrated" | "disabled" | "no_key" |
        "no_plaintext_file" | "already_migrated", "message": str}``, with
        ``"sealed"`` (names), ``"encrypted_file"`` and ``"backup_file"``
        when it migrated."""

@final
class CredentialStore:
    """Per-user encrypted tokens in the credential database, in process.

    ``DATABASE_URL`` (default ``sqlite://.atom/atom.db``) and the
    ``ATOM_*`` settings are read when the store is made; the keyword
    arguments override them. The database is opened (and migrated) on the
    first call in each process, also after a ``fork()``. Every call
    releases the GIL while it waits and is audited.
    """

    def __new__(
        cls,
        database_url: str | None = None,
        *,
        audit_sink: _AuditSink | None = None,
        audit_log: _Path | None = None,
        data_dir: _Path | None = None,
        envelope: bool | None = None,
        keystore_url: str | None = None,
        require_encryption: bool | None = None,
    ) -> CredentialStore: ...
    def open(self) -> None:
        """Opens the store now, so that a bad setting or an unreachable
        database (:class:`Unavailable`) shows at start-up."""
    def store_user_credential(self, user_id: str, provider: str, access_token: str) -> None:
        """Stores ``access_token`` (replacing any earlier one). Raises
        :class:`InvalidInput` for a bad id or an empty token."""
    def get_user_credential(self, user_id: str, provider: str) -> str:
        """The token. Raises :class:`CredentialNotFound` (``Credential not
        found for <provider>``) or :class:`CannotOpen`, both ``ValueError``."""
    def list(self, user_id: str) -> builtins.list[dict[str, str | None]]:
        """The user's credentials' metadata, never tokens: one dict per
        provider with ``"provider"``, ``"key_id"`` (``None`` for a legacy
        or plaintext row), ``"created_at"`` and ``"updated_at"`` (RFC
        3339)."""
    def delete(self, user_id: str, provider: str) -> bool:
        """Deletes one credential; whether there was one."""
    def erase_user(self, user_id: str) -> dict[str, Any]:
        """Erases every credential of the user (and, with envelope
        encryption, their data key). Returns ``{"user": str, "removed":
        list[str] (providers), "archived_removed": int,
        "data_keys_destroyed": int}``."""
    def close(self) -> None:
        """Flushes the audit trail and closes the pool; a later call opens
        them again."""
    def __enter__(self) -> CredentialStore: ...
    def __exit__(self, *exc: object) -> Literal[False]: ...

@final
class AsyncCredentialStore:
    """:class:`CredentialStore` for asyncio: the same calls, each returning
    an ``asyncio.Future`` of the running loop, driven by the engine's own
    runtime (call them from a coroutine). Arguments are checked when a
    call is made (:class:`InvalidInput` is raised before any await)."""

    def __new__(
        cls,
        database_url: str | None = None,
        *,
        audit_sink: _AuditSink | None = None,
        audit_log: _Path | None = None,
        data_dir: _Path | None = None,
        envelope: bool | None = None,
        keystore_url: str | None = None,
        require_encryption: bool | None = None,
    ) -> AsyncCredentialStore: ...
    def open(self) -> Future[None]:
        """Opens the store now."""
    def store_user_credential(self, user_id: str, provider: str, access_token: str) -> Future[None]:
        """See :meth:`CredentialStore.store_user_credential`."""
    def get_user_credential(self, user_id: str, provider: str) -> Future[str]:
        """See :meth:`CredentialStore.get_user_credential`."""
    def list(self, user_id: str) -> Future[builtins.list[dict[str, str | None]]]:
        """See :meth:`CredentialStore.list`."""
    def delete(self, user_id: str, provider: str) -> Future[bool]:
        """See :meth:`CredentialStore.delete`."""
    def erase_user(self, user_id: str) -> Future[dict[str, Any]]:
        """See :meth:`CredentialStore.erase_user`."""
    def close(self) -> Future[None]:
        """Flushes the audit trail and closes the pool."""

__all__ = [
    "AsyncCredentialStore",
    "AtomError",
    "CannotOpen",
    "ConfigError",
    "CredentialNotFound",
    "CredentialStore",
    "InvalidInput",
    "Secrets",
    "SecretsEncryption",
    "Unavailable",
    "__version__",
]
