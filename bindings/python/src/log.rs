//! Warnings through Python's `logging` (logger `atom_protect`), where a
//! Python service's operators look for them.

use pyo3::prelude::*;

/// Logs `message` at WARNING on the `atom_protect` logger.
pub(crate) fn warning(py: Python<'_>, message: &str) -> PyResult<()> {
    py.import("logging")?
        .call_method1("getLogger", ("atom_protect",))?
        .call_method1("warning", (message,))?;
    Ok(())
}
