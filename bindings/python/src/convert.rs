//! Conversions at the edge: JSON values and the engine's reports as
//! Python objects.

use atom_credentials::{CredentialInfo, ErasureReport};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

/// A JSON value as the Python value `json.loads` would give.
pub(crate) fn json<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, None, Some(f)) => f.into_pyobject(py)?.into_any(),
            // Invariant: a serde_json number is one of the three.
            (None, None, None) => py.None().into_bound(py),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// One credential's metadata (never its token), as `atom credentials
/// list --json` shows it.
pub(crate) fn credential_info<'py>(
    py: Python<'py>,
    info: &CredentialInfo,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("provider", info.provider.as_str())?;
    dict.set_item("key_id", info.key_id.map(|k| k.to_string()))?;
    dict.set_item("created_at", info.created_at.to_rfc3339())?;
    dict.set_item("updated_at", info.updated_at.to_rfc3339())?;
    Ok(dict)
}

/// What an erasure removed.
pub(crate) fn erasure<'py>(
    py: Python<'py>,
    report: &ErasureReport,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("user", report.user.as_str())?;
    let removed: Vec<&str> = report.removed.iter().map(|c| c.provider.as_str()).collect();
    dict.set_item("removed", removed)?;
    dict.set_item("archived_removed", report.archived_removed)?;
    dict.set_item("data_keys_destroyed", report.data_keys_destroyed)?;
    Ok(dict)
}
