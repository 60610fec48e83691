//! Seeded fuzzing of the label parser and the data.yaml reader: a few thousand mutated inputs
//! each. Every case must return (Ok, or an error naming the file) without panicking, within a
//! per-case time budget; a case that does not return at all is reported as a hang. The seed and
//! the number of cases can be changed with RYOLO_FUZZ_SEED and RYOLO_FUZZ_CASES (RYOLO_FUZZ_FROM: the first).

mod common;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ryolo::data::labels::{verify_with, LabelFormat};
use ryolo::data::load_data_yaml;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Wall time one case may take (the slow inputs this guards against took from 25 s to an hour).
const BUDGET: Duration = Duration::from_secs(2);

/// Wall time after which a case counts as a hang.
const HANG: Duration = Duration::from_secs(30);

/// Cases per fuzzer (RYOLO_FUZZ_CASES overrides).
fn cases() -> usize {
    std::env::var("RYOLO_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

/// The first case to run (RYOLO_FUZZ_FROM; to replay one case: FROM=i, CASES=i+1).
fn from() -> usize {
    std::env::var("RYOLO_FUZZ_FROM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The base seed (RYOLO_FUZZ_SEED overrides).
fn seed() -> u64 {
    std::env::var("RYOLO_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_240_601)
}

/// What went wrong in one case, if anything: a description for the failure list.
type Verdict = Option<String>;

/// The largest input a mutation chain may build (8 MiB; the size caps have their own tests).
const MAX_INPUT: usize = 8 << 20;

/// Runs `check` on `n` inputs built by `make(case)` on one worker thread, each under
/// `catch_unwind`, and returns the failures: panics, cases over [`BUDGET`], failed checks, and a
/// hang (which ends the run).
fn run_all(
    n: usize,
    make: fn(usize) -> Vec<u8>,
    check: fn(&[u8]) -> Verdict,
) -> (usize, Vec<String>) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for i in from()..n {
            let input = make(i);
            let t = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(|| check(&input)));
            let _ = tx.send((i, r, t.elapsed(), input.len()));
        }
    });
    let mut fails = Vec::new();
    for done in from()..n {
        let Ok((i, r, took, len)) = rx.recv_timeout(HANG) else {
            fails.push(format!("case {done}: hang (no answer within {HANG:?})"));
            return (done - from(), fails);
        };
        match r {
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                fails.push(format!("case {i} ({len} bytes): panic: {msg}"));
            }
            Ok(Some(why)) => fails.push(format!("case {i} ({len} bytes): {why}")),
            Ok(None) if took > BUDGET => {
                fails.push(format!("case {i} ({len} bytes): slow, {took:?}"))
            }
            Ok(None) => {}
        }
    }
    (n - from().min(n), fails)
}

/// The RNG of one case: reproducible on its own from the seed and the case number.
fn case_rng(salt: u64, case: usize) -> StdRng {
    StdRng::seed_from_u64(seed() ^ salt ^ (case as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Asserts no failures, listing the first ones.
fn assert_clean(what: &str, (tried, fails): (usize, Vec<String>), t: Instant) {
    println!(
        "{what}: {tried} cases in {:.1} s, {} failures",
        t.elapsed().as_secs_f64(),
        fails.len()
    );
    assert!(
        fails.is_empty(),
        "{what}: {} of {tried} cases failed:\n{}",
        fails.len(),
        fails
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Hostile numeric and not-quite-numeric tokens.
const TOKENS: &[&str] = &[
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "-1e309",
    "-0",
    "0",
    "1",
    "-1",
    "0.5",
    "1.01",
    "1.0100001",
    "-0.01",
    "-0.0100001",
    "1e-320",
    "4294967296",
    "18446744073709551616",
    "3.5",
    "2.0",
    "1e2",
    "0x10",
    "+.5",
    "5.",
    ".",
    "-",
    "e5",
    "\u{663}",
    "\u{ff11}",
    "0.5\u{a0}0.5",
    "9999",
    "1e4",
    "2",
    "17",
    "0.0",
    "1.0",
    "0,5",
    "",
    "1e300",
    "3.5e38",
    "1e39",
    "-1e39",
    "1e-46",
    "5e-324",
];

/// Bytes that stress line and token handling.
const ODD: &[&str] = &[
    "\r", "\r\n", "\0", "\u{feff}", "\t", "\x0b", "\u{2028}", "\u{85}", "\u{a0}", " ", "\n",
    "\n\n", "#", "'", "\"", "\\",
];

/// One random mutation of a label text.
fn mutate_label(t: &mut Vec<u8>, rng: &mut StdRng) {
    let text = String::from_utf8_lossy(t).to_string();
    let mut toks: Vec<String> = text.split(' ').map(str::to_string).collect();
    let pick = |rng: &mut StdRng| TOKENS[rng.gen_range(0..TOKENS.len())].to_string();
    match rng.gen_range(0..12) {
        0 if !toks.is_empty() => {
            let i = rng.gen_range(0..toks.len());
            toks[i] = pick(rng);
        }
        1 if !toks.is_empty() => {
            toks.remove(rng.gen_range(0..toks.len()));
        }
        2 => {
            let at = rng.gen_range(0..=toks.len());
            toks.insert(at, pick(rng));
        }
        3 => {
            let line = text
                .lines()
                .next()
                .unwrap_or("0 0.5 0.5 0.2 0.2")
                .to_string()
                + "\n";
            let n = [10, 1000, 50_000][rng.gen_range(0..3)].min(MAX_INPUT / line.len());
            t.extend(line.repeat(n).bytes());
            return;
        }
        4 => {
            let k = [7, 101, 5001, 20_001][rng.gen_range(0..4)];
            let vals: Vec<String> = (0..k).map(|i| format!("0.{}", (i * 37) % 1000)).collect();
            t.extend(format!("0 {}\n", vals.join(" ")).bytes());
            return;
        }
        5 if !t.is_empty() => {
            let i = rng.gen_range(0..t.len());
            t[i] ^= 1 << rng.gen_range(0..8);
            return;
        }
        6 => {
            let at = rng.gen_range(0..=t.len());
            let odd = ODD[rng.gen_range(0..ODD.len())];
            t.splice(at..at, odd.bytes());
            return;
        }
        7 => {
            t.truncate(rng.gen_range(0..=t.len()));
            return;
        }
        8 => {
            let n = rng.gen_range(0..4096);
            *t = (0..n).map(|_| rng.gen()).collect();
            return;
        }
        9 => {
            let n = rng.gen_range(0..200);
            *t = (0..n)
                .map(|_| b"0123456789.-e \n"[rng.gen_range(0..15)])
                .collect();
            return;
        }
        10 => {
            t.extend(b"1 0.5 0.5 0 0.2\n".repeat(rng.gen_range(1..20_000)));
            return;
        }
        _ => {
            let s = text.replace('\n', "\r");
            *t = s.into_bytes();
            return;
        }
    }
    *t = toks.join(" ").into_bytes();
}

/// The label files the mutations start from, with the format each is read in.
fn label_bases() -> Vec<(&'static str, LabelFormat)> {
    vec![
        (
            "0 0.5 0.5 0.2 0.2\n1 0.25 0.3 0.1 0.05\n2 0.9 0.9 0.1 0.1\n",
            LabelFormat::Detect,
        ),
        (
            "0 0.1 0.1 0.3 0.1 0.2 0.4\n1 0.5 0.5 0.6 0.5 0.6 0.6 0.5 0.6\n",
            LabelFormat::Segment,
        ),
        (
            "0 0.5 0.5 0.2 0.2 0.4 0.4 2 0.6 0.6 1\n",
            LabelFormat::Pose { nkpt: 2, ndim: 3 },
        ),
        (
            "0 0.5 0.5 0.2 0.2 0.4 0.4 0.6 -0.005\n",
            LabelFormat::Pose { nkpt: 2, ndim: 2 },
        ),
        (
            "0 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3\n3 0.5 0.5 0.7 0.5 0.7 0.7 0.5 0.7\n",
            LabelFormat::Obb,
        ),
    ]
}

/// The image and label file every label case uses (one folder per test process).
fn label_files() -> (PathBuf, PathBuf) {
    let d = std::env::temp_dir().join(format!("ryolo-fuzz-labels-{}", std::process::id()));
    std::fs::create_dir_all(d.join("images")).unwrap();
    std::fs::create_dir_all(d.join("labels")).unwrap();
    let img = d.join("images/a.png");
    if !img.exists() {
        image::RgbImage::new(32, 24).save(&img).unwrap();
    }
    (img, d.join("labels/a.txt"))
}

/// Checks one label case; the input is `[format byte, nc byte, single_cls byte, label...]`.
fn check_label(input: &[u8]) -> Verdict {
    let bases = label_bases();
    let format = bases[input[0] as usize % bases.len()].1;
    let nc = [1usize, 3, 80, 10_000][input[1] as usize % 4];
    let single_cls = input[2] % 2 == 1;
    let (img, lb) = label_files();
    std::fs::write(&lb, &input[3..]).unwrap();
    let c = verify_with(&img, nc, single_cls, format);
    if let Some(w) = c.warnings.iter().find(|w| !w.contains("a.txt")) {
        return Some(format!("warning without the label file: {w}"));
    }
    let e = c.entry?;
    let max_cls = if single_cls { 1 } else { nc };
    let parts_ok = |n: Option<usize>| n.is_none_or(|n| n == e.boxes.len());
    let bad = e.cls.len() != e.boxes.len()
        || e.cls.iter().any(|&k| k as usize >= max_cls)
        || e.boxes
            .iter()
            .any(|b| b.iter().any(|v| !v.is_finite()) || b[2] <= 0.0 || b[3] <= 0.0)
        || !parts_ok(e.segments.as_ref().map(Vec::len))
        || !parts_ok(e.keypoints.as_ref().map(Vec::len))
        || !parts_ok(e.corners.as_ref().map(Vec::len));
    bad.then(|| {
        format!(
            "implausible entry kept: {:?}",
            (e.cls.len(), e.boxes.first())
        )
    })
}

/// Label case `i`: `[format, nc, single_cls]` bytes then a base file after 1-4 mutations.
fn make_label(i: usize) -> Vec<u8> {
    let mut rng = case_rng(0, i);
    let bases = label_bases();
    let b = rng.gen_range(0..bases.len());
    let mut t = bases[b].0.as_bytes().to_vec();
    for _ in 0..rng.gen_range(1..5) {
        mutate_label(&mut t, &mut rng);
        t.truncate(MAX_INPUT);
    }
    let mut input = vec![b as u8, rng.gen(), rng.gen()];
    input.extend(t);
    input
}

#[test]
fn label_parser_survives_mutated_files() {
    let t = Instant::now();
    let r = run_all(cases(), make_label, check_label);
    let _ = std::fs::remove_dir_all(label_files().0.parent().unwrap().parent().unwrap());
    assert_clean("label fuzz", r, t);
}

/// data.yaml files the mutations start from.
const YAML_BASES: &[&str] = &[
    "# synthetic\ntrain: images/train\nval: images/val\nnames:\n  0: square\n  1: circle\n  2: triangle\n",
    "path: .\ntrain: images\nval: images\nnc: 2\nnames: ['a', \"b\"]\nkpt_shape: [3, 3]\nflip_idx: [0, 2, 1]\n",
    "path: ../datasets/x # root\ntrain: [a/images, b/images]\nval: v.txt\ntest:\nnames: [p, q, r, s]\n\
     download: |\n  from pathlib import Path\n  urls = [f'{u}' for u in ['a', 'b']]  # [x\n  d = {'k': [1, 2]}\n",
];

/// Values a key may be given.
const YAML_VALUES: &[&str] = &[
    "-3",
    "0",
    "1e12",
    "3.7",
    "3.0",
    "10001",
    "10000",
    "99999999999999999999",
    ".inf",
    ".nan",
    "[]",
    "{}",
    "null",
    "~",
    "0x10",
    "1_000",
    "[a]",
    "{0: a, 2: b}",
    "{-1: a}",
    "{a: b}",
    "'x'",
    "[[a]]",
    "5",
    "[1000000000, 3]",
    "[17, 3]",
    "[3, 2]",
    "[0, 1]",
    "[2, 1, 0]",
    "[1, 2]",
    "!!binary aGVsbG8=",
    "!!python/object:os.system x",
    "*a",
    "&a x",
    "|\n  x",
    "[a, 5]",
    "'[[[['",
    "\"\\u0000\"",
];

/// Keys the value mutation targets.
const YAML_KEYS: &[&str] = &[
    "nc",
    "names",
    "train",
    "val",
    "path",
    "kpt_shape",
    "flip_idx",
    "test",
];

/// Fragments inserted anywhere.
const YAML_BITS: &[&str] = &[
    "&a ",
    "*a",
    "<<: *a\n",
    "!!binary ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "? ",
    ": ",
    "- ",
    "#",
    "'",
    "\"",
    "|\n",
    ">-\n",
    "\t",
    "\0",
    "\u{feff}",
    "\r",
    "\u{2028}",
    "\\",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n  ",
    "\n",
];

/// One random mutation of a data.yaml text.
fn mutate_yaml(t: &mut Vec<u8>, rng: &mut StdRng) {
    let at = rng.gen_range(0..=t.len());
    match rng.gen_range(0..12) {
        0 | 1 => {
            let key = YAML_KEYS[rng.gen_range(0..YAML_KEYS.len())];
            let val = YAML_VALUES[rng.gen_range(0..YAML_VALUES.len())];
            let text = String::from_utf8_lossy(t).to_string();
            let mut lines: Vec<String> = text
                .lines()
                .filter(|l| !l.starts_with(&format!("{key}:")))
                .map(str::to_string)
                .collect();
            lines.push(format!("{key}: {val}"));
            *t = (lines.join("\n") + "\n").into_bytes();
        }
        2 => {
            let k = [10, 63, 64, 65, 100, 1000, 100_000][rng.gen_range(0..7)];
            let bomb = ["[", "{a: ", "- ", "{", "[a, '", "[\"x\", "][rng.gen_range(0..6)].repeat(k);
            if rng.gen() {
                t.splice(at..at, bomb.bytes());
            } else {
                t.extend(format!("\nx: {bomb}\n").bytes());
            }
        }
        11 => {
            let key = YAML_KEYS[rng.gen_range(0..YAML_KEYS.len())];
            let text = String::from_utf8_lossy(t).to_string();
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with(&format!("{key}:")))
                .collect();
            *t = (kept.join("\n") + "\n").into_bytes();
        }
        3 => {
            let k = rng.gen_range(1..300);
            let ladder: String = (0..k)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect();
            t.splice(at..at, ladder.bytes());
        }
        4 if !t.is_empty() => {
            let i = rng.gen_range(0..t.len());
            t[i] ^= 1 << rng.gen_range(0..8);
        }
        5 => {
            let bit = YAML_BITS[rng.gen_range(0..YAML_BITS.len())];
            t.splice(at..at, bit.bytes());
        }
        6 => t.truncate(at),
        7 if !t.is_empty() => {
            let from = rng.gen_range(0..t.len());
            let to = rng.gen_range(from..=t.len());
            let piece = t[from..to].to_vec();
            let times = [1, 2, 10, 1000][rng.gen_range(0..4)].min(MAX_INPUT / piece.len().max(1));
            for _ in 0..times {
                t.splice(at..at, piece.iter().copied());
            }
        }
        8 => {
            let mut y = "a: &a [x, x, x, x, x, x, x, x, x, x]\n".to_string();
            for i in 1..rng.gen_range(2..9) {
                let prev = if i == 1 {
                    "a".to_string()
                } else {
                    format!("b{}", i - 1)
                };
                y += &format!(
                    "b{i}: &b{i} [{}]\n",
                    vec![format!("*{prev}"); 10].join(", ")
                );
            }
            t.extend(y.bytes());
        }
        9 => {
            let n = rng.gen_range(0..2048);
            *t = (0..n).map(|_| rng.gen()).collect();
        }
        _ => {
            let names: Vec<String> = (0..rng.gen_range(0..12_000))
                .map(|i| format!("c{i}"))
                .collect();
            t.extend(format!("names: [{}]\n", names.join(", ")).bytes());
        }
    }
}

/// The data.yaml every YAML case is written to (one folder per test process).
fn yaml_file() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ryolo-fuzz-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join("data.yaml")
}

/// Checks one data.yaml case.
fn check_yaml(input: &[u8]) -> Verdict {
    let f = yaml_file();
    std::fs::write(&f, input).unwrap();
    match load_data_yaml(&f) {
        Err(e) => {
            let e = format!("{e:#}");
            (!e.contains(&f.display().to_string())).then(|| format!("error without the file: {e}"))
        }
        Ok(c) => {
            let nc_ok = (1..=10_000).contains(&c.nc());
            let kpt_ok = c
                .kpt_shape
                .is_none_or(|[k, d]| (1..=1000).contains(&k) && (2..=3).contains(&d));
            let flip_ok = match (&c.flip_idx, c.kpt_shape) {
                (Some(f), Some([k, _])) => f.len() == k && f.iter().all(|&i| i < k),
                (Some(_), None) => false,
                (None, _) => true,
            };
            (!(nc_ok && kpt_ok && flip_ok)).then(|| {
                format!(
                    "accepted: nc {} kpt {:?} flip {:?}",
                    c.nc(),
                    c.kpt_shape,
                    c.flip_idx
                )
            })
        }
    }
}

/// data.yaml case `i`: a base file after 1-3 mutations.
fn make_yaml(i: usize) -> Vec<u8> {
    let mut rng = case_rng(0x5EED, i);
    let mut t = YAML_BASES[rng.gen_range(0..YAML_BASES.len())]
        .as_bytes()
        .to_vec();
    for _ in 0..rng.gen_range(1..4) {
        mutate_yaml(&mut t, &mut rng);
        t.truncate(MAX_INPUT);
    }
    t
}

#[test]
fn data_yaml_reader_survives_mutated_files() {
    let t = Instant::now();
    let r = run_all(cases(), make_yaml, check_yaml);
    let _ = std::fs::remove_dir_all(yaml_file().parent().unwrap());
    assert_clean("data.yaml fuzz", r, t);
}

/// Sanity: the shared datasets' data.yaml files still load (the limits refuse no real file).
#[test]
fn real_data_yamls_still_load() {
    let Some(shared) = common::shared() else {
        return;
    };
    let mut n = 0;
    for e in std::fs::read_dir(shared.join("datasets")).unwrap() {
        let dir = e.unwrap().path();
        for y in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p: &Path = &y.path();
            if p.extension().is_some_and(|x| x == "yaml") {
                load_data_yaml(p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
                n += 1;
            }
        }
    }
    assert!(n >= 5, "{n} data.yaml files");
}
