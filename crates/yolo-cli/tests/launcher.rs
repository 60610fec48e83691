//! The `yolo` launcher and the engine behind it: light commands load no libtorch, CPU commands load
//! no CUDA library, the engine is found next to `yolo` (and a missing one is named), CUDA requests
//! fail clearly without a GPU, and the engine starts with a passive OpenMP wait policy unless the
//! user chose one; `bench start` times commands from the launcher. Behaviour only; speed is
//! measured by scripts/bench-under-load and `yolo bench start`.

mod common;
use common::{tmp, yolo, yolo_env};
use std::process::Command;

/// The shared objects the dynamic loader opened while `yolo args` ran (glibc's `LD_DEBUG=files`,
/// inherited across the launcher's exec), with the run's success and its other output.
fn loaded_objects(args: &[&str], cwd: &std::path::Path) -> (bool, Vec<String>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_yolo"))
        .args(args)
        .current_dir(cwd)
        .env("YOLO_CONFIG_DIR", cwd.join("cfg"))
        .env("LD_DEBUG", "files")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let libs = err
        .lines()
        .filter_map(|l| l.split_once("file=").map(|(_, r)| r))
        .filter_map(|r| r.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), err);
    (out.status.success(), libs, text)
}

fn any(libs: &[String], prefix: &str) -> bool {
    libs.iter().any(|l| {
        std::path::Path::new(l)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
    })
}

#[test]
fn light_commands_load_no_libtorch() {
    let d = tmp("launcher-light");
    for args in [&["version"][..], &["help"], &[], &["cfg"], &["copy-cfg"]] {
        let (ok, libs, text) = loaded_objects(args, &d);
        assert!(ok, "yolo {args:?}: {text}");
        if libs.is_empty() {
            eprintln!("LD_DEBUG is not honoured here (not glibc?): load check skipped");
            return;
        }
        assert!(
            !any(&libs, "libtorch") && !any(&libs, "libc10"),
            "yolo {args:?} loaded libtorch: {libs:?}"
        );
    }
    assert!(d.join("default_copy.yaml").exists());
}

#[test]
fn bench_start_times_whole_commands_from_the_launcher() {
    let d = tmp("launcher-bench-start");
    let (ok, libs, text) = loaded_objects(&["bench", "start", "n=2"], &d);
    assert!(ok, "{text}");
    for row in [
        "bench start [yolo version]: wall min ",
        "bench start [yolo help]: wall min ",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.contains("peak RSS") && line.contains("(2 runs: "),
            "{line}"
        );
    }
    // The timing parent stays small (a child's peak memory counts its parent's at spawn).
    if !libs.is_empty() {
        assert!(
            !any(&libs, "libtorch"),
            "bench start loaded libtorch: {libs:?}"
        );
    }
    let (ok, _, text) = loaded_objects(&["bench", "start", "n=0"], &d);
    assert!(!ok && text.contains("n=0 is not a run count"), "{text}");
    let (ok, _, text) = loaded_objects(&["bench", "start", "model=a.pt"], &d);
    assert!(
        !ok && text.contains("needs both model= and source="),
        "{text}"
    );
}

#[test]
fn cpu_commands_load_no_cuda_library_and_checks_does() {
    let d = tmp("launcher-cuda");
    let (ok, libs, text) = loaded_objects(&["info", "model=yolo11n.yaml", "device=cpu"], &d);
    assert!(ok, "{text}");
    if libs.is_empty() {
        eprintln!("LD_DEBUG is not honoured here (not glibc?): load check skipped");
        return;
    }
    assert!(any(&libs, "libtorch_cpu"), "{libs:?}");
    assert!(
        !any(&libs, "libtorch_cuda") && !any(&libs, "libcudnn") && !any(&libs, "libcublas"),
        "a CPU run loaded CUDA libraries: {libs:?}"
    );
    // `yolo checks` loads libtorch_cuda (when this libtorch has one) to report CUDA.
    let (ok, libs, text) = loaded_objects(&["checks"], &d);
    assert!(ok, "{text}");
    assert!(text.contains("CUDA available:"), "{text}");
    assert!(
        any(&libs, "libtorch_cuda") || text.contains("CUDA libraries: not loaded"),
        "checks neither loaded libtorch_cuda nor said why: {text}"
    );
    // With the CUDA libraries loaded, checks says whether multi-GPU training has NCCL.
    if any(&libs, "libtorch_cuda") {
        assert!(text.contains("NCCL"), "{text}");
    }
}

#[test]
fn a_cuda_device_without_a_gpu_is_a_clear_error() {
    if [
        "/dev/nvidiactl",
        "/dev/nvidia0",
        "/proc/driver/nvidia/version",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
    {
        eprintln!("an NVIDIA driver is present: the no-GPU error is not testable here");
        return;
    }
    let d = tmp("launcher-nogpu");
    for dev in ["0", "cuda:0"] {
        let (ok, out) = yolo(
            &["info", "model=yolo11n.yaml", &format!("device={dev}")],
            &d,
        );
        assert!(!ok, "{out}");
        assert!(
            out.contains(&format!("device={dev} requested but CUDA is not available"))
                && out.contains("use device=cpu"),
            "{out}"
        );
        assert!(
            !out.contains("panicked") && !out.contains("internal error"),
            "{out}"
        );
    }
}

#[test]
fn the_engine_waits_passively_unless_the_user_chose() {
    let d = tmp("launcher-env");
    let (ok, out) = yolo(&["checks"], &d);
    assert!(ok, "{out}");
    assert!(
        out.contains("OMP_WAIT_POLICY=PASSIVE, GOMP_SPINCOUNT=1000"),
        "{out}"
    );
    let (ok, out) = yolo_env(
        &["checks"],
        &d,
        &[("OMP_WAIT_POLICY", "active"), ("GOMP_SPINCOUNT", "5")],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("OMP_WAIT_POLICY=ACTIVE, GOMP_SPINCOUNT=5"),
        "{out}"
    );
}

#[test]
fn a_launcher_without_its_engine_answers_light_commands_and_names_what_is_missing() {
    let d = tmp("launcher-alone");
    let lone = d.join("yolo");
    std::fs::copy(env!("CARGO_BIN_EXE_yolo"), &lone).unwrap();
    let run = |args: &[&str]| {
        // A test thread that forks while the copy's write handle is open (another test spawning a
        // process) keeps that handle in its child for a moment: exec then fails with "Text file
        // busy" (ETXTBSY) until the child execs. Retry for up to two seconds.
        let mut tries = 0;
        let out = loop {
            match Command::new(&lone)
                .args(args)
                .current_dir(&d)
                .env("YOLO_CONFIG_DIR", d.join("cfg"))
                .env_remove("RYOLO_ENGINE")
                .output()
            {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r.unwrap(),
            }
        };
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, out) = run(&["version"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.trim(), env!("CARGO_PKG_VERSION"));
    let (code, out) = run(&["help"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Usage: yolo"), "{out}");
    let (code, out) = run(&["predict", "model=yolo11n.yaml"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&d.join("yolo-engine").display().to_string()) && out.contains("not found"),
        "{out}"
    );
    // RYOLO_ENGINE points elsewhere; a wrong value is named.
    let out = Command::new(&lone)
        .args(["checks"])
        .current_dir(&d)
        .env("RYOLO_ENGINE", d.join("nope"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("RYOLO_ENGINE=") && err.contains("nope"),
        "{err}"
    );
}
