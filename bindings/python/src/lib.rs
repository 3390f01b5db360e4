//! `atom_protect`: the Atom data-protection engine as a Python package, a
//! third face beside the `atom` CLI and `atom-server`. A thin binding:
//! every rule lives in the library crates (wired through atom-app); this
//! crate converts arguments and answers, releases the GIL around every
//! call that waits, and keeps one runtime and one store per process (made
//! anew after a `fork()`).
//!
//! This crate writes no `unsafe` code; PyO3's macros expand to FFI code
//! that does, which is why it does not take the workspace's
//! `unsafe_code = "forbid"`.

// The futures of the store calls nest the engine's deeply; computing
// their layout in release builds needs more than the default depth.
#![recursion_limit = "256"]

mod convert;
mod encryption;
mod errors;
mod log;
mod runtime;
mod secrets;
mod store;

use pyo3::prelude::*;

/// Who the package's audit events name: `atom-protect:<OS user>`, as the
/// CLI's name `atom-cli:<OS user>`.
pub(crate) fn actor() -> atom_audit::Actor {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    atom_audit::Actor::new(format!("atom-protect:{user}"))
}

/// The extension module, `atom_protect._native`.
#[pymodule(name = "_native")]
mod native {
    #[pymodule_export]
    use crate::encryption::SecretsEncryption;
    #[pymodule_export]
    use crate::secrets::Secrets;
    #[pymodule_export]
    use crate::store::{AsyncCredentialStore, CredentialStore};

    use pyo3::prelude::*;

    /// Shuts the package's runtime down at interpreter exit (registered
    /// with `atexit` by the package): no worker thread may complete a
    /// Python future while the interpreter finalizes.
    #[pyfunction]
    fn _shutdown(py: Python<'_>) {
        py.detach(|| crate::runtime::shut_down(std::time::Duration::from_secs(5)));
    }

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }
}
