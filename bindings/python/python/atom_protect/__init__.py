"""Atom data protection on the Rust engine.

A drop-in for the Atom backend's ``core/secrets_encryption.py`` and its
``store_user_credential`` / ``get_user_credential``, running the same
engine, tables and audit trail as the ``atom`` CLI and ``atom-server``::

    from atom_protect import SecretsEncryption, CredentialStore

    secrets_encryption = SecretsEncryption()          # reads ENCRYPTION_KEY
    token = secrets_encryption.encrypt("xoxb-...")     # "gAAAAA..."

    store = CredentialStore()                          # reads DATABASE_URL
    store.store_user_credential("user_123", "slack", "xoxb-...")
    store.get_user_credential("user_123", "slack")

Every rule (key parsing, sealing, the store, the audit trail) lives in the
Rust crates; this package only converts arguments and answers. Runtimes
and database pools are made lazily in each process and made anew after a
``fork()``, so preloading servers (gunicorn, uvicorn workers) are safe.
"""

import atexit as _atexit

from ._errors import (
    AtomError,
    CannotOpen,
    ConfigError,
    CredentialNotFound,
    InvalidInput,
    Unavailable,
)
from ._native import (
    AsyncCredentialStore,
    CredentialStore,
    Secrets,
    SecretsEncryption,
    __version__,
)
from ._native import _shutdown

# Stop the engine's threads before the interpreter finalizes: a database
# call finishing during finalization must not complete a Python future.
_atexit.register(_shutdown)

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
