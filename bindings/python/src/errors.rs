//! Errors as Python exceptions: one exhaustive mapping from the engine's
//! error classes to the hierarchy of `atom_protect._errors` (defined in
//! Python, so that `CredentialNotFound` and `CannotOpen` can also be
//! `ValueError`s). Messages are the engine's own words, which name the
//! thing and the next step and never hold a key or a token.

use atom_credentials::CredentialError;
use atom_crypto::ErrorClass;
use pyo3::PyErr;

pyo3::import_exception!(atom_protect._errors, AtomError);
pyo3::import_exception!(atom_protect._errors, CredentialNotFound);
pyo3::import_exception!(atom_protect._errors, CannotOpen);
pyo3::import_exception!(atom_protect._errors, InvalidInput);
pyo3::import_exception!(atom_protect._errors, Unavailable);
pyo3::import_exception!(atom_protect._errors, ConfigError);

/// The exception for an error of `class` saying `message`.
pub(crate) fn of_class(class: ErrorClass, message: String) -> PyErr {
    match class {
        ErrorClass::NotFound => CredentialNotFound::new_err(message),
        ErrorClass::InvalidInput => InvalidInput::new_err(message),
        ErrorClass::CannotOpen => CannotOpen::new_err(message),
        // Both are worth a retry: another writer got in the way, or the
        // database or trail is down.
        ErrorClass::Conflict | ErrorClass::Contended | ErrorClass::Unavailable => {
            Unavailable::new_err(message)
        }
        ErrorClass::Misconfigured => ConfigError::new_err(message),
        ErrorClass::Internal => AtomError::new_err(message),
    }
}

/// An engine error as its exception.
pub(crate) fn from_app(err: atom_app::Error) -> PyErr {
    of_class(err.class(), err.to_string())
}

/// A store error as its exception.
pub(crate) fn from_store(err: CredentialError) -> PyErr {
    of_class(err.class(), err.to_string())
}

/// A failure to start this process's async runtime.
pub(crate) fn no_runtime(err: std::io::Error) -> PyErr {
    AtomError::new_err(format!(
        "the async runtime of atom_protect cannot be started: {err}"
    ))
}
