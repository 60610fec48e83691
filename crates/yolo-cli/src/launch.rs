//! Hands a command line to `yolo-engine`: finds it next to the running `yolo`, sets the CPU
//! thread-pool defaults in its environment (they must be there before libgomp starts), and execs it.

use std::ffi::OsString;
use std::path::PathBuf;

/// The engine binary's file name; it is installed (and built by cargo) next to `yolo`.
pub const ENGINE: &str = "yolo-engine";

/// Environment variable naming another engine binary (tests, unusual installs).
pub const ENGINE_VAR: &str = "RYOLO_ENGINE";

/// Defaults put into the engine's environment unless the user set the variable: OpenMP threads
/// sleep when idle instead of spinning for CPU time they then take from the threads doing the work
/// (on a busy machine a spinning pool makes inference 5-20x slower), after a short spin (1000
/// rounds, tens of microseconds) that bridges the gaps between two libtorch operations: fp32
/// training steps 8-11% faster on an idle machine, unchanged next to busy processes.
pub const THREAD_ENV: &[(&str, &str)] =
    &[("OMP_WAIT_POLICY", "PASSIVE"), ("GOMP_SPINCOUNT", "1000")];

/// The engine: `$RYOLO_ENGINE`, else `yolo-engine` in the folder of this binary (symbolic links
/// to `yolo` resolved).
pub fn engine_path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(ENGINE_VAR).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{ENGINE_VAR}={} is not a file", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| {
        format!("cannot tell where this `yolo` binary is ({e}); set {ENGINE_VAR}=/path/to/{ENGINE}")
    })?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let p = dir.join(ENGINE);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: `yolo` runs every command but help, version, cfg, copy-cfg and settings in {ENGINE}, installed next to it (`cargo build -p yolo-cli` builds both; or set {ENGINE_VAR}=/path/to/{ENGINE})",
            p.display()
        ))
    }
}

/// The variables of [`THREAD_ENV`] that `get` (the environment) leaves unset, with their defaults.
pub fn thread_env_defaults(
    get: impl Fn(&str) -> Option<OsString>,
) -> Vec<(&'static str, &'static str)> {
    THREAD_ENV
        .iter()
        .filter(|(k, _)| get(k).is_none_or(|v| v.is_empty()))
        .copied()
        .collect()
}

/// Replaces this process with the engine running `args`; returns only on failure, saying why.
pub fn exec_engine(args: &[OsString]) -> String {
    use std::os::unix::process::CommandExt;
    let engine = match engine_path() {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut cmd = std::process::Command::new(&engine);
    cmd.arg0("yolo").args(args);
    for (k, v) in thread_env_defaults(|k| std::env::var_os(k)) {
        cmd.env(k, v);
    }
    let e = cmd.exec();
    format!("could not start {}: {e}", engine.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_defaults_fill_only_what_the_user_left_unset() {
        assert_eq!(
            thread_env_defaults(|_| None),
            vec![("OMP_WAIT_POLICY", "PASSIVE"), ("GOMP_SPINCOUNT", "1000")]
        );
        assert_eq!(
            thread_env_defaults(|k| (k == "OMP_WAIT_POLICY").then(|| "ACTIVE".into())),
            vec![("GOMP_SPINCOUNT", "1000")]
        );
        assert!(thread_env_defaults(|_| Some("1".into())).is_empty());
        assert_eq!(thread_env_defaults(|_| Some(OsString::new())).len(), 2);
    }
}
