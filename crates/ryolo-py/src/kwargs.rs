//! Python keyword arguments through the CLI's own `key=value` parsing and validation
//! (`ryolo::cfg::parse_args`), so that a bad key or value raises the CLI's message as ValueError.

use crate::errors::ArgError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_yaml::Mapping;

/// A Python value written as the CLI would receive it (`True`, `0.5`, `[640,480]`, `None`).
fn token_value(key: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    if v.is_none() {
        return Ok("None".into());
    }
    if v.is_instance_of::<PyBool>() {
        return Ok(if v.extract::<bool>()? {
            "True"
        } else {
            "False"
        }
        .into());
    }
    if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() {
        return Ok(v.str()?.to_string());
    }
    if v.is_instance_of::<PyString>() {
        return v.extract::<String>();
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let items: Vec<String> = v
            .try_iter()?
            .map(|x| token_value(key, &x?))
            .collect::<PyResult<_>>()?;
        return Ok(format!("[{}]", items.join(",")));
    }
    if v.hasattr("__fspath__")? {
        let os = v.py().import("os")?;
        return os.call_method1("fspath", (v,))?.extract::<String>();
    }
    if v.is_instance_of::<PyDict>() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "'{key}' does not take a dict (use the CLI's value forms: numbers, True/False, strings, lists)"
        )));
    }
    // NumPy scalars and other numbers print as the CLI would receive them.
    Ok(v.str()?.to_string())
}

/// Parses `kwargs` as `yolo MODE key=value ...` does: the validated overrides (renamed keys
/// mapped, removed keys dropped with the CLI's warnings). Errors name the key (ValueError).
pub fn parse(mode: &str, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Mapping> {
    let mut tokens = vec![mode.to_string()];
    if let Some(kw) = kwargs {
        for (k, v) in kw.iter() {
            let k: String = k.extract()?;
            tokens.push(format!("{k}={}", token_value(&k, &v)?));
        }
    }
    let cmd = ryolo::cfg::parse_args(&tokens)
        .map_err(|e| crate::errors::to_py(anyhow::Error::new(ArgError(format!("{e:#}")))))?;
    Ok(cmd.overrides)
}

/// `base`, then `custom` where `base` has no value, then the user's `overrides` on top
/// (Ultralytics' `{**overrides, **custom, **kwargs}` with the model's own keys first).
pub fn merge(layers: &[&Mapping]) -> Mapping {
    let mut m = Mapping::new();
    for l in layers {
        for (k, v) in l.iter() {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}
