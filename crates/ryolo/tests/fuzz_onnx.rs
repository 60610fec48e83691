//! Seeded mutation fuzzing of `.onnx` models, each case loaded and run in a child process (ONNX
//! Runtime is C++: a crash there cannot be caught in-process). Cases are byte-level edits (flips,
//! truncation, insertions, huge varints) and protobuf-level edits (wrong or absurd dims, missing
//! initializers, wrong data types, broken nodes, bad metadata strings, opset and IR version games)
//! of tiny models we export ourselves (detect static and dynamic, segment, pose; 32x32).
//! Each case ends as: the model ran, a clean error naming the file, an error that does not name it,
//! a panic, a signal/abort, or a hang; only the first two pass.
//!
//! Knobs (environment): `RYOLO_FUZZ_CASES` (cases, default 3000; the `--ignored` run 8000),
//! `RYOLO_FUZZ_FROM` (first case), `RYOLO_FUZZ_ERRORS=1` (print every error message),
//! `RYOLO_FUZZ_KEEP=1` (keep each failing case's file in the temp folder).

mod common;

use prost::Message;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ryolo::engine::backend::Backend;
use ryolo::engine::onnx::OnnxModel;
use ryolo::engine::predict::Predictor;
use ryolo::export::proto::{
    AttributeProto, Dimension, ModelProto, OperatorSetIdProto, StringStringEntryProto,
    TensorShapeProto, ValueInfoProto,
};
use ryolo::ops::NmsConfig;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// Where a child finds the base models and writes its cases (set by the parent).
const CHILD_DIR: &str = "RYOLO_FUZZ_ONNX_DIR";
/// The cases a child runs: `from..to` (set by the parent).
const CHILD_RANGE: &str = "RYOLO_FUZZ_ONNX_RANGE";
/// A case silent for this long is a hang.
const HANG: Duration = Duration::from_secs(30);
/// The child's address-space cap (a case asking for more fails its allocation instead of
/// swamping the machine; an allocation failure that aborts counts as an abort).
const MEMORY_CAP: u64 = 6 << 30;
/// The base models: file names in the folder.
const BASES: [&str; 4] = [
    "detect.onnx",
    "detect-dynamic.onnx",
    "segment.onnx",
    "pose.onnx",
];

/// A 16x thinner yolov8 `n` scale (same graph structure, a few hundred kB of weights).
fn tiny_yaml(dir: &Path, file: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let text = std::fs::read_to_string(root.join(file))
        .expect("built-in yaml")
        .replace("n: [0.33, 0.25, 1024]", "n: [0.33, 0.0625, 1024]");
    let stem = file.replace("yolov8", "yolov8n");
    let f = dir.join(stem);
    std::fs::write(&f, text).unwrap();
    f
}

/// Writes the base models into `dir`.
fn write_bases(dir: &Path) {
    let specs = [
        ("yolov8.yaml", 2, false),
        ("yolov8.yaml", 2, true),
        ("yolov8-seg.yaml", 2, false),
        ("yolov8-pose.yaml", 1, false),
    ];
    for (name, (yaml, nc, dynamic)) in BASES.iter().zip(specs) {
        let y = tiny_yaml(dir, yaml);
        let mut m = ryolo::weights::load_model(y.to_str().unwrap(), Some(nc), tch::Device::Cpu)
            .unwrap()
            .model;
        m.fuse();
        common::export_onnx(&m, dir, name, (32, 32), 1, dynamic);
    }
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Loaded and predicted.
    Ran,
    /// An error naming the case's file.
    Clean,
    /// An error that does not name the file.
    NoPath(String),
    /// A Rust panic (caught in the child).
    Panic(String),
    /// The child died: a signal (abort, segfault, out of memory) or a bare exit code.
    Died(String),
    /// No answer within [`HANG`].
    Hang,
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// Integers that break assumptions.
const ABSURD: [i64; 14] = [
    0,
    -1,
    -7,
    1,
    3,
    31,
    100_000,
    1 << 31,
    1 << 32,
    1 << 40,
    1 << 62,
    i64::MAX,
    i64::MIN,
    65_537,
];

fn absurd(r: &mut SmallRng) -> i64 {
    ABSURD[r.gen_range(0..ABSURD.len())]
}

fn pick<'a, T>(r: &mut SmallRng, v: &'a [T]) -> &'a T {
    &v[r.gen_range(0..v.len())]
}

/// Metadata values worth trying per key.
fn bad_meta(r: &mut SmallRng, key: &str) -> String {
    let huge = "x".repeat(1 << 20);
    let many: String = format!(
        "{{{}}}",
        (0..20_000)
            .map(|i| format!("{i}: 'c{i}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let v: Vec<String> = match key {
        "names" => vec![
            "{}".into(),
            "{0: 'a'}".into(),
            "{99999999999999: 'x'}".into(),
            "{18446744073709551615: 'x'}".into(),
            "{999999999999999999999999: 'x'}".into(),
            "{0: 'a', 0: 'b', 1: 'c'}".into(),
            "{0: 'a\\".into(),
            "{0: '\\x'}".into(),
            "garbage".into(),
            many,
            huge,
        ],
        "stride" => [
            "0",
            "-32",
            "abc",
            "1e30",
            "18446744073709551616",
            "3",
            "1024",
            "99999999",
            "",
            "32.5",
        ]
        .map(String::from)
        .to_vec(),
        "imgsz" => ["[0, 0]", "[100000, 100000]", "[32]", "x", "[-1, 32]"]
            .map(String::from)
            .to_vec(),
        "kpt_shape" => [
            "[0, 3]",
            "[17, 4]",
            "[9999999999, 3]",
            "[18446744073709551615, 3]",
            "[]",
            "[17, 3]",
            "[1, 3]",
            "[4611686018427387904, 2]",
        ]
        .map(String::from)
        .to_vec(),
        "task" => [
            "detect", "segment", "classify", "pose", "obb", "track", "", "\u{0}", " pose ",
        ]
        .map(String::from)
        .to_vec(),
        _ => ["0", "-1", "1e9", "", "None", "[1, 2]"]
            .map(String::from)
            .to_vec(),
    };
    pick(r, &v).clone()
}

fn set_meta(p: &mut ModelProto, key: &str, value: Option<String>) {
    p.metadata_props.retain(|e| e.key != key);
    if let Some(value) = value {
        p.metadata_props.push(StringStringEntryProto {
            key: key.into(),
            value,
        });
    }
}

/// A shape edit of a value info: absurd dims, a rank change, a symbolic dim, no shape.
fn edit_value_info(r: &mut SmallRng, v: &mut ValueInfoProto) {
    let t = v
        .r#type
        .get_or_insert_with(Default::default)
        .tensor_type
        .get_or_insert_with(Default::default);
    match r.gen_range(0..6) {
        0 => t.elem_type = *pick(r, &[0, 2, 6, 7, 10, 11, 16, 999, -1]),
        1 => t.shape = None,
        2 => {
            let s = t.shape.get_or_insert_with(TensorShapeProto::default);
            if !s.dim.is_empty() && r.gen_bool(0.5) {
                let i = r.gen_range(0..s.dim.len());
                s.dim.remove(i);
            } else {
                s.dim.push(Dimension {
                    dim_value: Some(absurd(r)),
                    dim_param: None,
                });
            }
        }
        3 => {
            let s = t.shape.get_or_insert_with(TensorShapeProto::default);
            if !s.dim.is_empty() {
                let i = r.gen_range(0..s.dim.len());
                s.dim[i] = Dimension {
                    dim_value: None,
                    dim_param: Some("n".into()),
                };
            }
        }
        4 => v.name = pick(r, &["", "nope", "images", "output0", "output1"]).to_string(),
        _ => {
            let s = t.shape.get_or_insert_with(TensorShapeProto::default);
            if !s.dim.is_empty() {
                let i = r.gen_range(0..s.dim.len());
                s.dim[i].dim_value = Some(absurd(r));
                s.dim[i].dim_param = None;
            }
        }
    }
}

/// One protobuf-level edit.
fn proto_edit(r: &mut SmallRng, p: &mut ModelProto) {
    let g = p.graph.get_or_insert_with(Default::default);
    match r.gen_range(0..20) {
        0 | 1 => {
            if g.input.is_empty() || r.gen_ratio(1, 8) {
                g.input.clear();
            } else {
                let i = r.gen_range(0..g.input.len());
                edit_value_info(r, &mut g.input[i]);
            }
        }
        2 => {
            if r.gen_bool(0.5) && !g.input.is_empty() {
                let mut extra = g.input[0].clone();
                extra.name = pick(r, &["images2", "images"]).to_string();
                g.input.push(extra);
            } else if !g.output.is_empty() {
                let i = r.gen_range(0..g.output.len());
                if r.gen_bool(0.5) {
                    g.output.remove(i);
                } else {
                    let o = g.output[i].clone();
                    g.output.push(o);
                }
            }
        }
        3 | 4 => {
            if !g.output.is_empty() {
                let i = r.gen_range(0..g.output.len());
                edit_value_info(r, &mut g.output[i]);
            }
        }
        5 | 6 => {
            // Initializers: missing, wrong dims, truncated data, wrong type, clashing name.
            if g.initializer.is_empty() {
                return;
            }
            let i = r.gen_range(0..g.initializer.len());
            match r.gen_range(0..7) {
                0 => {
                    g.initializer.remove(i);
                }
                1 => {
                    let t = &mut g.initializer[i];
                    if t.dims.is_empty() {
                        t.dims.push(absurd(r));
                    } else {
                        let k = r.gen_range(0..t.dims.len());
                        t.dims[k] = absurd(r);
                    }
                }
                2 => {
                    let t = &mut g.initializer[i];
                    if r.gen_bool(0.5) {
                        t.dims.push(r.gen_range(1..4));
                    } else {
                        t.dims.pop();
                    }
                }
                3 => {
                    let t = &mut g.initializer[i];
                    let n = r.gen_range(0..=t.raw_data.len());
                    t.raw_data.truncate(n);
                }
                4 => {
                    g.initializer[i].data_type = *pick(r, &[0, 2, 6, 7, 10, 11, 16, 999, -1]);
                }
                5 => {
                    let name = g.initializer[r.gen_range(0..g.initializer.len())]
                        .name
                        .clone();
                    g.initializer[i].name = name;
                }
                _ => {
                    // Huge declared dims with no data.
                    let t = &mut g.initializer[i];
                    t.dims = vec![1 << 20, 1 << 20, 1 << 10];
                    t.raw_data.clear();
                }
            }
        }
        7..=10 => {
            // Nodes: removed, unknown or other op, dangling input, cycle, duplicate, attributes.
            if g.node.is_empty() {
                return;
            }
            let i = r.gen_range(0..g.node.len());
            match r.gen_range(0..8) {
                0 => {
                    g.node.remove(i);
                }
                1 => {
                    g.node[i].op_type = pick(
                        r,
                        &[
                            "Garbage", "Conv", "Loop", "If", "Reshape", "Concat", "Split",
                            "Resize", "", "Softmax", "MaxPool", "Gather",
                        ],
                    )
                    .to_string()
                }
                2 => {
                    let n = &mut g.node[i];
                    if !n.input.is_empty() {
                        let k = r.gen_range(0..n.input.len());
                        n.input[k] = "nope".into();
                    }
                }
                3 => {
                    let n = &mut g.node[i];
                    if let (false, Some(o)) = (n.input.is_empty(), n.output.first().cloned()) {
                        n.input[0] = o;
                    }
                }
                4 => {
                    let n = g.node[i].clone();
                    g.node.push(n);
                }
                5 => {
                    let j = r.gen_range(0..g.node.len());
                    g.node.swap(i, j);
                }
                6 => {
                    let n = &mut g.node[i];
                    n.attribute.push(AttributeProto {
                        name: pick(r, &["bogus", "axis", "kernel_shape", "to"]).to_string(),
                        i: Some(absurd(r)),
                        r#type: 2,
                        ..Default::default()
                    });
                }
                _ => {
                    let n = &mut g.node[i];
                    if n.attribute.is_empty() {
                        return;
                    }
                    let k = r.gen_range(0..n.attribute.len());
                    let a = &mut n.attribute[k];
                    match r.gen_range(0..5) {
                        0 => a.r#type = *pick(r, &[0, 1, 2, 3, 5, 6, 7, 99]),
                        1 => a.i = Some(absurd(r)),
                        2 => {
                            if a.ints.is_empty() {
                                a.ints.push(absurd(r));
                            } else {
                                let j = r.gen_range(0..a.ints.len());
                                a.ints[j] = absurd(r);
                            }
                        }
                        3 => a.ints.clear(),
                        _ => {
                            n.attribute.remove(k);
                        }
                    }
                }
            }
        }
        11..=14 => {
            let key = *pick(
                r,
                &["names", "stride", "imgsz", "kpt_shape", "task", "batch"],
            );
            let v = if r.gen_ratio(1, 8) {
                None
            } else {
                Some(bad_meta(r, key))
            };
            set_meta(p, key, v);
        }
        15 | 16 => {
            // Opset games.
            match r.gen_range(0..4) {
                0 => p.opset_import.clear(),
                1 => p.opset_import.push(OperatorSetIdProto {
                    domain: String::new(),
                    version: *pick(r, &[1, 7, 11, 13, 17, 19, 21]),
                }),
                2 => {
                    if let Some(o) = p.opset_import.first_mut() {
                        o.domain = pick(r, &["ai.onnx.ml", "com.microsoft", "garbage", "ai.onnx"])
                            .to_string();
                    }
                }
                _ => {
                    if let Some(o) = p.opset_import.first_mut() {
                        o.version = *pick(
                            r,
                            &[
                                0,
                                1,
                                6,
                                7,
                                10,
                                11,
                                13,
                                17,
                                19,
                                21,
                                22,
                                23,
                                99,
                                1000,
                                -1,
                                i64::MAX,
                            ],
                        );
                    }
                }
            }
        }
        17 => {
            p.ir_version = *pick(r, &[0, 1, 2, 3, 7, 8, 9, 10, 11, 12, 100, -1, i64::MAX]);
        }
        18 => {
            p.graph = if r.gen_bool(0.5) {
                None
            } else {
                Some(Default::default())
            };
        }
        _ => {
            // Every node's outputs renamed: the graph outputs dangle.
            for n in &mut g.node {
                for o in &mut n.output {
                    o.push('_');
                }
            }
        }
    }
}

/// A varint field header and a huge length (a declared size far beyond the file).
const HUGE_LEN: [u8; 6] = [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f];

/// One byte-level edit.
fn byte_edit(r: &mut SmallRng, b: &mut Vec<u8>) {
    if b.is_empty() {
        b.push(r.gen());
        return;
    }
    let n = b.len();
    match r.gen_range(0..7) {
        0 => {
            for _ in 0..r.gen_range(1..=8) {
                let i = r.gen_range(0..n);
                b[i] ^= 1 << r.gen_range(0..8);
            }
        }
        1 => {
            // Truncation, biased to the header and the tail.
            let k = match r.gen_range(0..3) {
                0 => r.gen_range(0..n.min(256)),
                1 => n - r.gen_range(1..=n.min(4096)),
                _ => r.gen_range(0..n),
            };
            b.truncate(k);
        }
        2 => {
            let i = r.gen_range(0..n);
            let extra: Vec<u8> = (0..r.gen_range(1..16)).map(|_| r.gen()).collect();
            b.splice(i..i, extra);
        }
        3 => {
            let i = r.gen_range(0..n);
            let end = (i + HUGE_LEN.len()).min(n);
            b.splice(i..end, HUGE_LEN);
        }
        4 => {
            let i = r.gen_range(0..n);
            let len = r.gen_range(1..=(n - i).min(512));
            let chunk = b[i..i + len].to_vec();
            let j = r.gen_range(0..n);
            b.splice(j..j, chunk);
        }
        5 => {
            let i = r.gen_range(0..n);
            let len = r.gen_range(1..=(n - i).min(64));
            b[i..i + len].fill(if r.gen_bool(0.5) { 0 } else { 0xff });
        }
        _ => {
            // A small header (the metadata, the opset, the graph's first fields) is hit more often.
            let i = r.gen_range(0..n.min(64));
            b[i] = r.gen();
        }
    }
}

/// Case `seed`: a base model, then protobuf edits, byte edits, or both.
fn make_case(seed: u64, bases: &[Vec<u8>]) -> Vec<u8> {
    let mut r = SmallRng::seed_from_u64(seed ^ 0x0_0ff5_eed0);
    let base = &bases[(seed % bases.len() as u64) as usize];
    let mode = r.gen_range(0..10);
    let mut bytes = if mode < 7 {
        let mut p = ModelProto::decode(base.as_slice()).expect("our export decodes");
        for _ in 0..r.gen_range(1..=3) {
            proto_edit(&mut r, &mut p);
        }
        p.encode_to_vec()
    } else {
        base.clone()
    };
    if mode >= 5 {
        for _ in 0..r.gen_range(1..=3) {
            byte_edit(&mut r, &mut bytes);
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// The child: runs a range of cases in-process, reporting each on stdout.

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// One case: load (1 thread) and predict a small image.
fn run_case(f: &Path) -> anyhow::Result<()> {
    let m = OnnxModel::load(f, 1)?;
    let p = Predictor::with_backend(Backend::Onnx(m), (32, 32), NmsConfig::default());
    let img = ryolo::image::RgbImage::from_fn(40, 30, |x, y| {
        ryolo::image::Rgb([(x * 6) as u8, (y * 8) as u8, ((x + y) * 3) as u8])
    });
    p.predict(&img)?;
    Ok(())
}

/// The child's entry point: does nothing unless the parent set [`CHILD_DIR`] and [`CHILD_RANGE`].
#[test]
fn onnx_case_child() {
    let (Some(dir), Some(range)) = (std::env::var_os(CHILD_DIR), std::env::var_os(CHILD_RANGE))
    else {
        return;
    };
    let dir = PathBuf::from(dir);
    let range = range.into_string().unwrap();
    let (from, to) = range.split_once("..").unwrap();
    let (from, to): (u64, u64) = (from.parse().unwrap(), to.parse().unwrap());
    std::panic::set_hook(Box::new(|info| {
        let loc = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap() = Some(format!("{info}{loc}"));
    }));
    tch::set_num_threads(1);
    let bases: Vec<Vec<u8>> = BASES
        .iter()
        .map(|b| std::fs::read(dir.join(b)).unwrap())
        .collect();
    let out = std::io::stdout();
    for seed in from..to {
        let f = dir.join(format!("case-{seed}.onnx"));
        std::fs::write(&f, make_case(seed, &bases)).unwrap();
        writeln!(out.lock(), "@@S {seed}").unwrap();
        out.lock().flush().unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| run_case(&f)));
        let name = f.file_name().unwrap().to_str().unwrap();
        let line = match r {
            Ok(Ok(())) => "ran".to_string(),
            Ok(Err(e)) => {
                let m = format!("{e:#}").replace('\n', " | ");
                let m = &m[..m.floor_char_boundary(400)];
                if m.contains(name) {
                    format!("clean {m}")
                } else {
                    format!("nopath {m}")
                }
            }
            Err(_) => {
                let m = LAST_PANIC.lock().unwrap().take().unwrap_or_default();
                format!("panic {}", m.replace('\n', " | "))
            }
        };
        writeln!(out.lock(), "@@R {seed} {line}").unwrap();
        out.lock().flush().unwrap();
        let _ = std::fs::remove_file(&f);
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: spawns children, restarting after a crash or a hang.

/// Runs cases `from..to` in children; returns each case's outcome.
fn campaign(dir: &Path, from: u64, to: u64) -> Vec<(u64, Outcome)> {
    let exe = std::env::current_exe().unwrap();
    let show = std::env::var_os("RYOLO_FUZZ_ERRORS").is_some();
    let mut out = Vec::new();
    let mut next = from;
    while next < to {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "onnx_case_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_RANGE, format!("{next}..{to}"))
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("child-stderr.txt")).unwrap(),
        ));
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: MEMORY_CAP,
                    rlim_max: MEMORY_CAP,
                };
                libc::setrlimit(libc::RLIMIT_AS, &lim);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut current: Option<u64> = None;
        let mut hung = false;
        loop {
            match rx.recv_timeout(HANG) {
                Ok(line) => {
                    if let Some(s) = line.strip_prefix("@@S ") {
                        current = Some(s.trim().parse().unwrap());
                    } else if let Some(rest) = line.strip_prefix("@@R ") {
                        let (seed, rest) = rest.split_once(' ').unwrap();
                        let seed: u64 = seed.parse().unwrap();
                        let (kind, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                        if show {
                            eprintln!("case {seed}: {kind} {msg}");
                        }
                        let o = match kind {
                            "ran" => Outcome::Ran,
                            "clean" => Outcome::Clean,
                            "nopath" => Outcome::NoPath(msg.to_string()),
                            _ => Outcome::Panic(msg.to_string()),
                        };
                        out.push((seed, o));
                        current = None;
                        next = seed + 1;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    hung = true;
                    let _ = child.kill();
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = child.wait().unwrap();
        let _ = reader.join();
        if let Some(seed) = current {
            let o = if hung {
                Outcome::Hang
            } else {
                let err = std::fs::read_to_string(dir.join("child-stderr.txt")).unwrap_or_default();
                let tail: Vec<&str> = err.lines().rev().take(3).collect();
                Outcome::Died(format!(
                    "{} ({})",
                    match status.signal() {
                        Some(s) => format!("signal {s}"),
                        None => format!("exit {:?}", status.code()),
                    },
                    tail.join(" | ")
                ))
            };
            if show {
                eprintln!("case {seed}: {o:?}");
            }
            if std::env::var_os("RYOLO_FUZZ_KEEP").is_some() {
                let bases: Vec<Vec<u8>> = BASES
                    .iter()
                    .map(|b| std::fs::read(dir.join(b)).unwrap())
                    .collect();
                let _ = std::fs::write(
                    dir.join(format!("kept-{seed}.onnx")),
                    make_case(seed, &bases),
                );
            }
            out.push((seed, o));
            next = seed + 1;
        } else if next < to && !status.success() {
            panic!("the fuzz child failed outside a case: {status:?}");
        } else if next < to {
            panic!("the fuzz child stopped at case {next} of {from}..{to}");
        }
    }
    out
}

/// Runs `cases` cases and asserts that each ran or failed with a clean error naming its file.
fn fuzz(name: &str, default_cases: u64) {
    let cases = std::env::var("RYOLO_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let from = std::env::var("RYOLO_FUZZ_FROM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let dir = common::tmp(name);
    write_bases(&dir);
    // Our own bases run (and ONNX Runtime is there; CI installs it).
    for b in BASES {
        if common::ort_or_skip(run_case(&dir.join(b)).map(|_| ())).is_none() {
            return;
        }
    }
    let t0 = Instant::now();
    let res = campaign(&dir, from, from + cases);
    let secs = t0.elapsed().as_secs_f64();
    let count = |f: &dyn Fn(&Outcome) -> bool| res.iter().filter(|(_, o)| f(o)).count();
    let ran = count(&|o| *o == Outcome::Ran);
    let clean = count(&|o| *o == Outcome::Clean);
    let bad: Vec<&(u64, Outcome)> = res
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::Ran | Outcome::Clean))
        .collect();
    let nopath = count(&|o| matches!(o, Outcome::NoPath(_)));
    let panics = count(&|o| matches!(o, Outcome::Panic(_)));
    let died = count(&|o| matches!(o, Outcome::Died(_)));
    let hangs = count(&|o| *o == Outcome::Hang);
    println!(
        "{name}: {} cases in {secs:.1}s: {ran} ran, {clean} clean errors naming the file, \
         {nopath} errors without it, {panics} panics, {died} aborts/signals, {hangs} hangs",
        res.len()
    );
    for (seed, o) in bad.iter().take(40) {
        println!("  case {seed}: {o:?}");
    }
    if std::env::var_os("RYOLO_FUZZ_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(res.len() as u64, cases, "every case has an outcome");
    assert!(bad.is_empty(), "{} cases failed (listed above)", bad.len());
}

#[test]
fn fuzz_onnx_models() {
    fuzz("fuzz-onnx", 3000);
}

/// The long run (reported in issue #17): `cargo test -p ryolo --test fuzz_onnx -- --ignored`.
#[test]
#[ignore]
fn fuzz_onnx_models_long() {
    fuzz("fuzz-onnx-long", 8000);
}

/// The corruptions the fuzzer found panicking or aborting before the checks (stride 0, a class
/// index near 2^64, a keypoint count whose product overflows, a fixed batch of 2^31, a 100000-pixel
/// side, truncated weights), each crafted once: a clean error naming the file.
#[test]
fn crafted_onnx_corruptions_give_clean_errors() {
    let dir = common::tmp("crafted-onnx");
    write_bases(&dir);
    let decode =
        |b: &str| ModelProto::decode(std::fs::read(dir.join(b)).unwrap().as_slice()).unwrap();
    if common::ort_or_skip(run_case(&dir.join("detect.onnx"))).is_none() {
        return;
    }
    let input_dim = |p: &mut ModelProto, k: usize, v: i64| {
        let g = p.graph.as_mut().unwrap();
        let t = g.input[0]
            .r#type
            .as_mut()
            .unwrap()
            .tensor_type
            .as_mut()
            .unwrap();
        t.shape.as_mut().unwrap().dim[k] = Dimension {
            dim_value: Some(v),
            dim_param: None,
        };
    };
    type Craft = Box<dyn Fn(&mut ModelProto)>;
    let cases: Vec<(&str, &str, Craft)> = vec![
        (
            "stride 0",
            "detect.onnx",
            Box::new(|p| set_meta(p, "stride", Some("0".into()))),
        ),
        (
            "class index 2^64-1",
            "detect.onnx",
            Box::new(|p| set_meta(p, "names", Some("{18446744073709551615: 'x'}".into()))),
        ),
        (
            "kpt_shape overflow",
            "pose.onnx",
            Box::new(|p| set_meta(p, "kpt_shape", Some("[4611686018427387904, 2]".into()))),
        ),
        (
            "batch 2^31",
            "detect.onnx",
            Box::new(move |p| input_dim(p, 0, 1 << 31)),
        ),
        (
            "side 100000",
            "detect-dynamic.onnx",
            Box::new(move |p| input_dim(p, 2, 100_000)),
        ),
        (
            "truncated weights",
            "segment.onnx",
            Box::new(|p| {
                let g = p.graph.as_mut().unwrap();
                let t = g
                    .initializer
                    .iter_mut()
                    .find(|t| t.raw_data.len() > 8)
                    .unwrap();
                t.raw_data.truncate(t.raw_data.len() / 2);
            }),
        ),
    ];
    for (i, (what, base, craft)) in cases.into_iter().enumerate() {
        let mut p = decode(base);
        craft(&mut p);
        let f = dir.join(format!("crafted-{i}.onnx"));
        std::fs::write(&f, p.encode_to_vec()).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| run_case(&f)));
        let msg = match r {
            Ok(Err(e)) => format!("{e:#}"),
            Ok(Ok(())) => panic!("{what}: the corrupt model ran"),
            Err(_) => panic!("{what}: a panic"),
        };
        assert!(msg.contains(&format!("crafted-{i}.onnx")), "{what}: {msg}");
        println!("{what}: {msg}");
    }
}
