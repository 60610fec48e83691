//! `settings.json`: where runs, weights and datasets go, and the other Ultralytics 8.4 keys.

use super::{show, suggest};
use anyhow::{anyhow, bail, Result};
use serde_yaml::{Mapping, Value};
use std::path::PathBuf;

/// The settings file: `$YOLO_CONFIG_DIR/ryolo/settings.json` or the user config dir.
pub fn settings_path() -> PathBuf {
    let base = std::env::var_os("YOLO_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(dirs::config_dir)
        .unwrap_or_else(std::env::temp_dir);
    base.join("ryolo").join("settings.json")
}

/// Ultralytics 8.4 settings keys that have no effect in ryolo (accepted, and said so when set).
pub const UNUSED_SETTINGS: &[&str] = &[
    "uuid",
    "sync",
    "api_key",
    "openai_api_key",
    "clearml",
    "comet",
    "dvc",
    "mlflow",
    "raytune",
    "wandb",
    "vscode_msg",
    "openvino_msg",
];

/// Default settings: every Ultralytics 8.4 key (`settings_version` 0.0.8) with its default.
pub fn default_settings() -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("settings_version".into(), "0.0.8".into());
    m.insert("datasets_dir".into(), "datasets".into());
    m.insert("weights_dir".into(), "weights".into());
    m.insert("runs_dir".into(), "runs".into());
    m.insert("uuid".into(), machine_uuid().into());
    m.insert("sync".into(), true.into());
    m.insert("api_key".into(), "".into());
    m.insert("openai_api_key".into(), "".into());
    for k in ["clearml", "comet", "dvc", "mlflow", "raytune"] {
        m.insert(k.into(), true.into());
    }
    m.insert("tensorboard".into(), false.into());
    m.insert("wandb".into(), false.into());
    m.insert("vscode_msg".into(), true.into());
    m.insert("openvino_msg".into(), true.into());
    m
}

/// A stable anonymous id (as Ultralytics' `uuid` setting): a hash of the machine id or host name.
fn machine_uuid() -> String {
    let seed = std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = String::new();
    for round in 0u8..4 {
        for b in seed.trim().bytes().chain([round]) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// Loads the settings, creating or repairing the file (unknown keys dropped, wrong types reset).
pub fn load_settings() -> serde_json::Map<String, serde_json::Value> {
    let path = settings_path();
    let defaults = default_settings();
    let mut s = defaults.clone();
    let existing: Option<serde_json::Map<String, serde_json::Value>> =
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
    let needs_write = match &existing {
        Some(e) => {
            for (k, v) in e {
                if let Some(d) = defaults.get(k) {
                    if std::mem::discriminant(d) == std::mem::discriminant(v) {
                        s.insert(k.clone(), v.clone());
                    }
                }
            }
            e != &s
        }
        None => true,
    };
    if needs_write {
        let _ = save_settings(&s);
    }
    s
}

/// Writes the settings file atomically.
pub fn save_settings(s: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    let text = serde_json::to_string_pretty(s)?;
    crate::util::write_atomic(&settings_path(), text.as_bytes())
}

/// Updates settings from `key=value` pairs; keys must exist.
pub fn update_settings(updates: &Mapping) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut s = load_settings();
    for (k, v) in updates {
        let k = k.as_str().unwrap_or_default();
        let old = s.get(k).ok_or_else(|| {
            anyhow!(
                "'{k}' is not a valid settings key.{}",
                suggest(k, default_settings().keys().cloned())
            )
        })?;
        let new: serde_json::Value = match (old, v) {
            (serde_json::Value::Bool(_), Value::Bool(b)) => (*b).into(),
            (serde_json::Value::String(_), v) => match v {
                Value::String(s) => s.clone().into(),
                other => show(other).into(),
            },
            _ => bail!("settings key '{k}' has type {old}, got {}", show(v)),
        };
        if UNUSED_SETTINGS.contains(&k) {
            eprintln!(
                "settings: '{k}' is kept for Ultralytics compatibility and has no effect in ryolo"
            );
        }
        s.insert(k.to_string(), new);
    }
    save_settings(&s)?;
    Ok(s)
}
