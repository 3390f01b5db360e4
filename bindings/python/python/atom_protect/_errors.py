"""The exceptions of atom_protect.

Every error the package raises is an :class:`AtomError`. Two are also
:class:`ValueError`, as the seed's code expects: ``get_user_credential``
raises ``ValueError`` for a missing credential, and ``decrypt`` raises
``ValueError("Invalid encrypted data")`` for a token that does not open.
No message ever holds a key, a token or a database password.
"""


class AtomError(Exception):
    """Base class of every error raised by atom_protect."""


class CredentialNotFound(AtomError, ValueError):
    """No credential is stored for this user and provider."""


class CannotOpen(AtomError, ValueError):
    """A stored value does not open: another key, another row's value,
    tampering, a destroyed data key, or damaged ciphertext. Retrying does
    not help."""


class InvalidInput(AtomError, ValueError):
    """An argument does not parse (a user id, a provider name, an empty
    token)."""


class Unavailable(AtomError):
    """The database or the audit trail cannot serve now; nothing was done.
    Retrying later may succeed."""


class ConfigError(AtomError):
    """The configuration cannot work: a key that does not parse, no key
    where one is required, a bad setting, a database that is not migrated."""


__all__ = [
    "AtomError",
    "CannotOpen",
    "ConfigError",
    "CredentialNotFound",
    "InvalidInput",
    "Unavailable",
]
