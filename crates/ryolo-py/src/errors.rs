//! Library errors and panics as Python exceptions: FileNotFoundError for a missing file,
//! ValueError for a bad argument, RuntimeError otherwise.

use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// An argument error (bad key or value): becomes `ValueError` with the CLI's own message.
#[derive(Debug)]
pub struct ArgError(pub String);

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

/// Whether the error chain says a file or folder is missing.
fn is_missing_file(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    }) || {
        let m = format!("{e:#}").to_ascii_lowercase();
        m.contains("not found")
            || m.contains("no such file")
            || m.contains("does not exist")
            || m.contains("doesn't exist")
    }
}

/// Converts a library error into the Python exception of its kind (the message is the CLI's).
pub fn to_py(e: anyhow::Error) -> PyErr {
    let msg = format!("{e:#}");
    if e.chain().any(|c| c.downcast_ref::<ArgError>().is_some()) {
        PyValueError::new_err(msg)
    } else if is_missing_file(&e) {
        PyFileNotFoundError::new_err(msg)
    } else {
        PyRuntimeError::new_err(msg)
    }
}

/// Runs library code, turning a panic into a RuntimeError (a bug, never the input's fault) so
/// that no Rust panic reaches Python.
pub fn guard<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(anyhow::anyhow!(
                "internal error: {what} (a bug in ryolo; please report it)"
            ))
        }
    }
}

/// [`guard`] then [`to_py`].
pub fn run<T>(f: impl FnOnce() -> anyhow::Result<T>) -> pyo3::PyResult<T> {
    guard(f).map_err(to_py)
}
