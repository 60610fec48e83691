//! Data-parallel training through the real `yolo` binary (`device=cpu,cpu`: two Gloo ranks on
//! this machine), on a 16-image synthetic set at imgsz 64 with a tiny detector: the same
//! weights as one process that sees the same micro-batches, a complete run folder written by
//! rank 0 alone, a killed or hung rank ending the run with its name, and resume with 2 or 1 ranks.

mod common;

use common::{tmp, yolo, yolo_env};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tch::Tensor;

/// The multi-rank runs of this file one at a time: each spawns two rank processes, and the kill /
/// hang tests signal a rank while it trains, which parallel runs on 2 cores can outpace or starve.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tiny detector (five strided convs + Detect): the tests measure the engine, not the model.
const TINY: &str = "nc: 3\nbackbone:\n  - [-1, 1, Conv, [8, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n  - [[2, 3, 4], 1, Detect, [nc]]\n";

/// A test folder with `synth/data.yaml` (`n` train images of 64x64) and `tiny.yaml`.
fn setup(name: &str, n: usize) -> PathBuf {
    let d = tmp(name);
    let n = format!("n={n}");
    let (ok, out) = yolo(&["data", "synth", "out=synth", &n, "imgsz=64"], &d);
    assert!(ok, "{out}");
    std::fs::write(d.join("tiny.yaml"), TINY).unwrap();
    d
}

/// The shared training arguments (no plots unless added).
fn base(d: &Path, name: &str, extra: &str) -> Vec<String> {
    format!(
        "train model={}/tiny.yaml data={}/synth/data.yaml imgsz=64 seed=0 workers=1 project={}/runs name={name} {extra}",
        d.display(),
        d.display(),
        d.display()
    )
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

fn run(d: &Path, args: &[String], env: &[(&str, &str)]) -> String {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = yolo_env(&a, d, env);
    assert!(ok, "yolo {}:\n{out}", args.join(" "));
    out
}

fn tensors(p: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .into_iter()
        .collect()
}

fn is_buffer(name: &str) -> bool {
    name.ends_with("running_mean")
        || name.ends_with("running_var")
        || name.ends_with("num_batches_tracked")
}

/// results.csv rows as numbers, without the time column.
fn csv(p: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(p).unwrap();
    let mut lines = text.lines();
    let head: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let rows = lines
        .map(|l| {
            l.split(',')
                .map(|v| v.trim().parse::<f64>().unwrap())
                .collect()
        })
        .collect();
    (head, rows)
}

/// 2 ranks x 4 images (batch=8) against one process x 4 images (batch=4) with gradient
/// accumulation over 2 batches (nbs=8): the optimizer sees the same 8 images per step in both,
/// with the same per-image augmentation and per-4-image BatchNorm statistics, so the weights
/// must agree to float precision; the two ranks must hold bit-identical copies.
/// (Against one process x 8 images the BatchNorm batch statistics differ, as under Ultralytics'
/// DDP without SyncBN, so no 1e-6 equality is possible there.)
#[test]
fn two_ranks_match_one_process_on_the_same_micro_batches() {
    let _serial = serial();
    let d = setup("ddp-eq", 16);
    let common =
        "epochs=2 nbs=8 optimizer=SGD lr0=0.02 warmup_epochs=0 mosaic=0 close_mosaic=0 plots=False";
    let dump2 = d.join("dump2");
    let dump1 = d.join("dump1");
    let t0 = Instant::now();
    // One intra-op thread in both runs (the launcher's choice for 2 ranks on 2 cores), so that
    // the convolutions sum in the same order and only the data-parallel arithmetic is compared.
    let out = run(
        &d,
        &base(&d, "ddp", &format!("{common} batch=8 device=cpu,cpu")),
        &[
            ("RYOLO_DDP_DUMP", dump2.to_str().unwrap()),
            ("OMP_NUM_THREADS", "1"),
        ],
    );
    assert!(
        out.contains("DDP: starting 2 ranks (cpu,cpu) of 2"),
        "{out}"
    );
    assert!(out.contains("batch 4 per rank"), "{out}");
    let t2 = t0.elapsed();
    run(
        &d,
        &base(&d, "one", &format!("{common} batch=4 device=cpu")),
        &[
            ("RYOLO_DDP_DUMP", dump1.to_str().unwrap()),
            ("OMP_NUM_THREADS", "1"),
        ],
    );
    eprintln!(
        "2-rank run {:.1}s, 1-process run {:.1}s",
        t2.as_secs_f64(),
        (t0.elapsed() - t2).as_secs_f64()
    );
    let r0 = tensors(&dump2.join("rank0.safetensors"));
    let r1 = tensors(&dump2.join("rank1.safetensors"));
    let one = tensors(&dump1.join("rank0.safetensors"));
    assert_eq!(r0.len(), r1.len());
    assert_eq!(r0.len(), one.len());
    let (mut maxd, mut maxw, mut nparams) = (0f64, 0f64, 0);
    for (k, a) in &r0 {
        assert!(a.equal(&r1[k]), "{k}: rank 0 and rank 1 differ");
        if is_buffer(k) {
            continue;
        }
        nparams += 1;
        let diff = (a - &one[k]).abs().max().double_value(&[]);
        maxd = maxd.max(diff);
        maxw = maxw.max(a.abs().max().double_value(&[]));
    }
    eprintln!("{nparams} parameter tensors: max |2 ranks - 1 process| = {maxd:e} (max |w| {maxw})");
    assert!(maxd <= 1e-6, "weights differ by {maxd}");
    // results.csv: the training losses (mean over the ranks) are the one-process losses; the
    // validation columns use the EMA, whose BatchNorm running statistics are updated once per
    // step on rank 0 and once per micro-batch in one process, so they are not compared.
    let (h2, rows2) = csv(&d.join("runs/ddp/results.csv"));
    let (h1, rows1) = csv(&d.join("runs/one/results.csv"));
    assert_eq!(h2, h1);
    assert_eq!(rows2.len(), 2);
    assert_eq!(rows1.len(), 2);
    for (a, b) in rows2.iter().zip(&rows1) {
        assert_eq!(a[0], b[0], "epoch");
        for c in 2..5 {
            assert!(
                (a[c] - b[c]).abs() <= 1e-5 * b[c].abs().max(1.0),
                "{}: {} vs {}",
                h1[c],
                a[c],
                b[c]
            );
        }
        let lr = h1.iter().position(|h| h == "lr/pg0").unwrap();
        assert_eq!(&a[lr..], &b[lr..], "learning rates");
    }
}

/// The stderr lines of a spawned `yolo`, collected on a thread; the pids of its ranks.
fn spawn_yolo(
    d: &Path,
    args: &[String],
    env: &[(&str, &str)],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yolo"))
        .args(args)
        .current_dir(d)
        .env("YOLO_CONFIG_DIR", d.join("cfg"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    (child, rx)
}

/// Waits for the rank's pid announced by the launcher.
fn rank_pid(rx: &std::sync::mpsc::Receiver<String>, rank: usize, seen: &mut Vec<String>) -> i32 {
    let tag = format!("DDP: rank {rank} is pid ");
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("launcher output");
        seen.push(l.clone());
        if let Some(p) = l.strip_prefix(&tag) {
            return p.trim().parse().unwrap();
        }
    }
}

/// Waits (at most `limit`) for `p` to exist.
fn wait_for(p: &Path, limit: Duration) {
    let t0 = Instant::now();
    while !p.exists() {
        assert!(t0.elapsed() < limit, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the launcher to end (at most `limit`); its exit status and all its stderr.
fn finish(
    mut child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
    mut seen: Vec<String>,
    limit: Duration,
) -> (bool, String, Duration) {
    let t0 = Instant::now();
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!(
                "the run did not end within {limit:?} after the fault:\n{}",
                seen.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = t0.elapsed();
    seen.extend(rx.iter());
    (st.success(), seen.join("\n"), took)
}

/// A full two-rank run (run folder complete, written once, by rank 0); the same run with rank
/// 1 SIGKILLed after epoch 1 (the run ends, naming rank 1; `last` loads) and then resumed with 2
/// ranks (exactly the uninterrupted run's results) and with 1 process (completes).
#[test]
fn two_rank_run_killed_rank_and_resume() {
    let _serial = serial();
    // 64 images: epochs long enough (8 steps each) for the kill below to land before the last one.
    let d = setup("ddp-run", 64);
    let common = "epochs=3 batch=8 device=cpu,cpu close_mosaic=1";
    run(&d, &base(&d, "full", &format!("{common} plots=True")), &[]);
    let runs: Vec<String> = std::fs::read_dir(d.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs, vec!["full".to_string()], "one run folder");
    let full = d.join("runs/full");
    for f in [
        "args.yaml",
        "results.csv",
        "results.png",
        "labels.jpg",
        "train_batch0.jpg",
        "train_batch1.jpg",
        "val_batch0_pred.jpg",
        "confusion_matrix.png",
        "weights/last.safetensors",
        "weights/best.safetensors",
        "weights/last.pt",
        "weights/best.pt",
    ] {
        assert!(full.join(f).exists(), "{f} missing from the run folder");
    }
    let (_, rows) = csv(&full.join("results.csv"));
    assert_eq!(rows.len(), 3);
    // Nothing was left behind by the ranks (no partial or duplicate files).
    let leftovers: Vec<_> = walk(&full)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Rank 1 is killed once epoch 1's checkpoint exists.
    let (child, rx) = spawn_yolo(
        &d,
        &base(&d, "killed", &format!("{common} plots=False")),
        &[],
    );
    let mut seen = Vec::new();
    let pid1 = rank_pid(&rx, 1, &mut seen);
    let last = d.join("runs/killed/weights/last.safetensors");
    wait_for(&last, Duration::from_secs(120));
    // SAFETY: signalling the test's own grandchild.
    assert_eq!(unsafe { libc::kill(pid1, libc::SIGKILL) }, 0);
    let (ok, out, took) = finish(child, rx, seen, Duration::from_secs(60));
    assert!(!ok, "the run must fail:\n{out}");
    assert!(
        out.contains(&format!("rank 1 (pid {pid1}) was killed by signal 9")),
        "{out}"
    );
    eprintln!(
        "killed rank 1: the run ended {:.1}s later",
        took.as_secs_f64()
    );
    let (meta, _) = ryolo::weights::read_checkpoint(&last).unwrap();
    assert!(!meta.train_state.is_null(), "last is resumable");
    let done = meta.train_state["epoch"].as_i64().unwrap();
    assert!(
        done < 2,
        "the kill landed after the last epoch's checkpoint (epoch index {done}): nothing left to resume"
    );
    let copy = d.join("runs/killed1");
    copy_dir(&d.join("runs/killed"), &copy);

    let out = run(
        &d,
        &[
            "train".into(),
            "resume".into(),
            format!("model={}", last.display()),
            "device=cpu,cpu".into(),
        ],
        &[],
    );
    assert!(out.contains("Resuming training"), "{out}");
    let (_, a) = csv(&d.join("runs/killed/results.csv"));
    assert_eq!(a.len(), 3);
    // Exact resume: the same rows as the uninterrupted run (time column excluded).
    let no_time = |r: &Vec<f64>| -> Vec<f64> {
        let mut r = r.clone();
        r.remove(1);
        r
    };
    assert_eq!(
        a.iter().map(no_time).collect::<Vec<_>>(),
        rows.iter().map(no_time).collect::<Vec<_>>()
    );

    let out = run(
        &d,
        &[
            "train".into(),
            "resume".into(),
            format!("model={}", copy.join("weights/last.safetensors").display()),
            "device=cpu".into(),
        ],
        &[],
    );
    assert!(out.contains("Resuming training"), "{out}");
    assert!(!out.contains("DDP:"), "one process: {out}");
    let (_, b) = csv(&copy.join("results.csv"));
    assert_eq!(b.len(), 3);
}

/// Rank 1 stops answering (SIGSTOP): rank 0's next collective times out (RYOLO_DDP_TIMEOUT=5)
/// naming rank 1, and the launcher ends the run. With 17 images the last global batch holds one
/// image, so rank 0's slice of it is empty: epoch 1 must still finish (its checkpoint appears).
#[test]
fn hung_rank_ends_the_run_within_the_timeout() {
    let _serial = serial();
    let d = setup("ddp-hang", 17);
    let (child, rx) = spawn_yolo(
        &d,
        &base(&d, "hung", "epochs=3 batch=8 device=cpu,cpu plots=False"),
        &[("RYOLO_DDP_TIMEOUT", "5")],
    );
    let mut seen = Vec::new();
    let pid1 = rank_pid(&rx, 1, &mut seen);
    wait_for(
        &d.join("runs/hung/weights/last.safetensors"),
        Duration::from_secs(120),
    );
    // SAFETY: signalling the test's own grandchild.
    assert_eq!(unsafe { libc::kill(pid1, libc::SIGSTOP) }, 0);
    let (ok, out, took) = finish(child, rx, seen, Duration::from_secs(90));
    assert!(!ok, "{out}");
    // Stopped before or inside the collective rank 0 waits in: named either way.
    assert!(
        out.contains("not arrived: rank 1") || out.contains("stalled inside it: rank 1"),
        "{out}"
    );
    assert!(
        out.contains("data-parallel training failed: rank 0"),
        "{out}"
    );
    eprintln!(
        "hung rank 1: the run ended {:.1}s after SIGSTOP",
        took.as_secs_f64()
    );
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap().path();
        if e.is_dir() {
            v.extend(walk(&e));
        } else {
            v.push(e);
        }
    }
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap().path();
        let t = to.join(e.file_name().unwrap());
        if e.is_dir() {
            copy_dir(&e, &t);
        } else {
            std::fs::copy(&e, &t).unwrap();
        }
    }
}

/// The multi-node contract on one machine: two `yolo train ... device=cpu` processes started by
/// hand with torchrun's variables (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`) form one run.
#[test]
fn ranks_started_by_hand_with_torchrun_variables() {
    let _serial = serial();
    let d = setup("ddp-env", 16);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let args = base(&d, "env", "epochs=1 batch=8 device=cpu plots=False");
    let start = |rank: &str| {
        Command::new(env!("CARGO_BIN_EXE_yolo"))
            .args(&args)
            .current_dir(&d)
            .env("YOLO_CONFIG_DIR", d.join("cfg"))
            .envs([
                ("RANK", rank),
                ("WORLD_SIZE", "2"),
                ("MASTER_ADDR", "127.0.0.1"),
                ("MASTER_PORT", port.as_str()),
                ("OMP_NUM_THREADS", "1"),
            ])
            .output()
            .unwrap()
    };
    let (r0, r1) = std::thread::scope(|sc| {
        let h = sc.spawn(|| start("1"));
        let r0 = start("0");
        (r0, h.join().unwrap())
    });
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(r0.status.success(), "{}", text(&r0));
    assert!(r1.status.success(), "{}", text(&r1));
    assert!(
        text(&r0).contains("DDP: rank 0 of 2 joined the Gloo group"),
        "{}",
        text(&r0)
    );
    let runs: Vec<_> = std::fs::read_dir(d.join("runs")).unwrap().collect();
    assert_eq!(runs.len(), 1, "one run folder");
    assert_eq!(csv(&d.join("runs/env/results.csv")).1.len(), 1);
}
