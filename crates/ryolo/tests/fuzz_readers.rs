//! Seeded mutation fuzzing of the model readers: Ultralytics `.pt` (mutated `data.pkl` inside a
//! rebuilt zip, and whole-file mutations), our `.safetensors` checkpoints, model YAML texts and images (JPEG, PNG, BMP, TIFF, WebP).
//! Every case must end in `Ok` or `Err`: never a panic, and never more than [`CASE_BUDGET`].
//!
//! Knobs (environment): `RYOLO_FUZZ_CASES` (cases per reader, default per test), `RYOLO_FUZZ_FROM`
//! (first case index), `RYOLO_FUZZ_TRACE=1` (print each case index to stderr before running it, to
//! find a case that aborts the process).

mod common;

use anyhow::{anyhow, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ryolo::nn::{DetectionModel, ModelSpec};
use ryolo::weights;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::time::{Duration, Instant};
use tch::Device;

/// Most time one case may take.
const CASE_BUDGET: Duration = Duration::from_secs(2);
/// A case still running after this long is reported as a hang.
const HANG: Duration = Duration::from_secs(30);
/// Models larger than this are not built by the harness (building them is legitimately slow).
const BUILD_MAX_PARAMS: f64 = 4e6;
/// Same, for multiply-accumulates at 640x640.
const BUILD_MAX_MACS: f64 = 8e9;

thread_local! {
    /// The last panic message on this thread (fuzz workers only).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs a panic hook that records panics of fuzz workers quietly and reports others as usual.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let fuzz = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("fuzz-"));
            if fuzz {
                let loc = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{info}{loc}")));
            } else {
                default(info);
            }
        }));
    });
}

/// An environment number, or the default.
fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the cases of one campaign did.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    err: u64,
    panics: Vec<(u64, String)>,
    slow: Vec<(u64, Duration)>,
    slowest: Duration,
    builds: (u64, u64),
}

thread_local! {
    /// Models this worker built, and models it skipped as too big to build quickly.
    static BUILDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Runs cases `from..cases` of one reader on a worker thread (seed = `base + i`), with a watchdog for
/// hangs; fails listing the seeds that panicked, hung or ran over the budget.
fn campaign<F>(name: &str, default_cases: u64, base: u64, case: F)
where
    F: Fn(u64) -> Result<()> + Send + 'static,
{
    quiet_panics();
    // One libtorch thread: the cases are small, and CI machines are shared.
    tch::set_num_threads(1);
    let cases = env_u64("RYOLO_FUZZ_CASES", default_cases);
    let show_errors = std::env::var("RYOLO_FUZZ_ERRORS").is_ok();
    let from = env_u64("RYOLO_FUZZ_FROM", 0);
    let trace = std::env::var("RYOLO_FUZZ_TRACE").is_ok();
    let current = Arc::new(AtomicU64::new(u64::MAX));
    let cur = current.clone();
    let (tx, rx) = mpsc::channel();
    let label = name.to_string();
    let start = Instant::now();
    std::thread::Builder::new()
        .name(format!("fuzz-{name}"))
        .stack_size(64 << 20)
        .spawn(move || {
            let mut t = Tally::default();
            for i in from..cases {
                let seed = base + i;
                if trace {
                    eprintln!("FUZZCASE {label} {i} seed {seed}");
                }
                cur.store(i, Ordering::SeqCst);
                let t0 = Instant::now();
                let r = catch_unwind(AssertUnwindSafe(|| case(seed)));
                let dt = t0.elapsed();
                t.slowest = t.slowest.max(dt);
                match r {
                    Ok(Ok(())) => t.ok += 1,
                    Ok(Err(e)) => {
                        if show_errors {
                            let m = format!("{e:#}");
                            eprintln!(
                                "FUZZERR {label} seed {seed}: {}",
                                &m[..m.floor_char_boundary(300)]
                            );
                        }
                        t.err += 1
                    }
                    Err(_) => {
                        let msg = LAST_PANIC
                            .with(|p| p.borrow_mut().take())
                            .unwrap_or_default();
                        if trace {
                            eprintln!(
                                "FUZZPANIC {label} seed {seed}: {}",
                                msg.lines().next().unwrap_or("")
                            );
                        }
                        t.panics.push((seed, msg));
                    }
                }
                if dt > CASE_BUDGET {
                    if trace {
                        eprintln!("FUZZSLOW {label} seed {seed}: {dt:.2?}");
                    }
                    t.slow.push((seed, dt));
                }
            }
            t.builds = BUILDS.with(|b| b.get());
            let _ = tx.send(t);
        })
        .expect("spawn the fuzz worker");
    let mut last = (u64::MAX, Instant::now());
    let t = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(t) => break t,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = current.load(Ordering::SeqCst);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > HANG {
                    panic!(
                        "{name}: case {now} (seed {}) hangs (over {HANG:?})",
                        base + now
                    );
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{name}: the fuzz worker died"),
        }
    };
    eprintln!(
        "{name}: {} cases in {:.1?}: {} ok, {} err, {} panics, {} over {CASE_BUDGET:?} (slowest {:.2?}); \
         {} models built, {} too big to build here",
        cases.saturating_sub(from),
        start.elapsed(),
        t.ok,
        t.err,
        t.panics.len(),
        t.slow.len(),
        t.slowest,
        t.builds.0,
        t.builds.1
    );
    for (seed, msg) in t.panics.iter().take(40) {
        eprintln!("  PANIC seed {seed}: {}", msg.lines().next().unwrap_or(""));
    }
    for (seed, dt) in t.slow.iter().take(40) {
        eprintln!("  SLOW seed {seed}: {dt:.2?}");
    }
    assert!(
        t.panics.is_empty() && t.slow.is_empty(),
        "{name}: {} panics (seeds {:?}), {} slow cases (seeds {:?})",
        t.panics.len(),
        t.panics.iter().map(|p| p.0).collect::<Vec<_>>(),
        t.slow.len(),
        t.slow.iter().map(|p| p.0).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// The mutator.

/// Integers that tend to find edge cases.
const INTERESTING: &[i64] = &[
    0,
    1,
    -1,
    2,
    -2,
    3,
    8,
    64,
    127,
    128,
    255,
    256,
    0x7fff,
    0x8000,
    0xffff,
    300_000,
    0x7fff_ffff,
    -0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    1 << 59,
    1 << 62,
    i64::MAX,
    i64::MIN,
];

/// Protocol-2 pickle fragments worth inserting: memo gets/puts, BUILD, REDUCE, MARK, tuples, ...
const PICKLE_TOKENS: &[&[u8]] = &[
    b"h\x00",
    b"h\x01",
    b"h\x05",
    b"q\x00",
    b"q\x01",
    b"b",
    b"R",
    b"(",
    b"t",
    b"0",
    b"2",
    b"1",
    b"s",
    b"u",
    b"e",
    b"a",
    b"Q",
    b"\x85",
    b"\x86",
    b"\x87",
    b"]",
    b"}",
    b")",
    b"N",
    b".",
    b"K\xff",
    b"J\xff\xff\xff\xff",
    b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f",
    b"\x81",
    b"\x94",
];

/// A seeded byte mutator; `focus` is where most edits land.
struct Mutator {
    rng: SmallRng,
}

impl Mutator {
    /// A mutator for one seed.
    fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// A position in `0..=len`, inside `focus` four times out of five.
    fn pos(&mut self, len: usize, focus: &std::ops::Range<usize>) -> usize {
        let (a, b) = (focus.start.min(len), focus.end.min(len));
        if b > a && self.rng.gen_bool(0.8) {
            self.rng.gen_range(a..=b)
        } else {
            self.rng.gen_range(0..=len)
        }
    }

    /// An interesting integer, sometimes a random one.
    fn int(&mut self) -> i64 {
        if self.rng.gen_bool(0.8) {
            INTERESTING[self.rng.gen_range(0..INTERESTING.len())]
        } else {
            self.rng.gen()
        }
    }

    /// One random edit of `data`; `tokens` are fragments to insert.
    fn edit(&mut self, data: &mut Vec<u8>, focus: &std::ops::Range<usize>, tokens: &[&[u8]]) {
        let len = data.len();
        let p = self.pos(len, focus);
        match self.rng.gen_range(0..9) {
            0 if p < len => data[p] ^= 1 << self.rng.gen_range(0..8),
            1 if p < len => data[p] = self.rng.gen(),
            2 => {
                let n = self.rng.gen_range(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.gen()).collect();
                data.splice(p..p, bytes);
            }
            3 if p < len => {
                let n = self.rng.gen_range(1..=32).min(len - p);
                data.drain(p..p + n);
            }
            4 => data.truncate(p),
            5 if len > 0 => {
                let src = self.rng.gen_range(0..len);
                let n = self.rng.gen_range(1..=64).min(len - src);
                let chunk = data[src..src + n].to_vec();
                if self.rng.gen_bool(0.5) {
                    data.splice(p..p, chunk);
                } else {
                    let end = (p + n).min(len);
                    data.splice(p..end, chunk);
                }
            }
            6 => {
                let w = [1usize, 2, 4, 8][self.rng.gen_range(0..4)];
                let v = self.int().to_le_bytes();
                let end = (p + w).min(len);
                data.splice(p..end, v[..w].iter().copied());
            }
            7 => self.pickle_int(data, p),
            _ if !tokens.is_empty() => {
                let t = tokens[self.rng.gen_range(0..tokens.len())];
                data.splice(p..p, t.iter().copied());
            }
            _ => {}
        }
    }

    /// Rewrites the next pickle integer opcode (K, M, J, LONG1) at or after `p`: its argument in
    /// place, or the whole opcode as a 4-byte (J) or 8-byte (LONG1) signed integer.
    fn pickle_int(&mut self, data: &mut Vec<u8>, p: usize) {
        let Some(at) = (p..data.len()).find(|&i| matches!(data[i], b'K' | b'M' | b'J' | 0x8a))
        else {
            return;
        };
        let v = self.int();
        let (start, w) = match data[at] {
            b'K' => (at + 1, 1),
            b'M' => (at + 1, 2),
            b'J' => (at + 1, 4),
            _ => (
                at + 2,
                data.get(at + 1).map_or(0, |&n| usize::from(n).min(8)),
            ),
        };
        if self.rng.gen_bool(0.5) {
            let end = (start + w).min(data.len());
            let new: Vec<u8> = if self.rng.gen_bool(0.5) {
                [&[b'J'][..], &(v as i32).to_le_bytes()].concat()
            } else {
                [&[0x8a, 8][..], &v.to_le_bytes()].concat()
            };
            data.splice(at..end, new);
            return;
        }
        for (k, b) in v.to_le_bytes().iter().take(w).enumerate() {
            if let Some(x) = data.get_mut(start + k) {
                *x = *b;
            }
        }
    }

    /// Applies one to four edits.
    fn mutate(&mut self, data: &mut Vec<u8>, focus: std::ops::Range<usize>, tokens: &[&[u8]]) {
        for _ in 0..self.rng.gen_range(1..=4) {
            self.edit(data, &focus, tokens);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared model plumbing.

/// Built models by YAML text, so that cases sharing an architecture build it once.
type ModelCache = HashMap<String, DetectionModel>;

/// Builds the model of `spec` (unless it is too big to build quickly), caching it, and loads `tensors`
/// strictly. Errors are fine; this is where tch used to panic.
fn build_and_load(
    cache: &RefCell<ModelCache>,
    spec: ModelSpec,
    tensors: Option<&HashMap<String, tch::Tensor>>,
) -> Result<()> {
    let key = spec.to_yaml_string();
    let mut cache = cache.borrow_mut();
    if !cache.contains_key(&key) {
        let small = match catch_unwind(AssertUnwindSafe(|| spec.cost())) {
            Ok(Ok(c)) => c.params <= BUILD_MAX_PARAMS && c.macs + c.extra_macs <= BUILD_MAX_MACS,
            _ => true,
        };
        if !small {
            BUILDS.with(|b| b.set((b.get().0, b.get().1 + 1)));
            return Ok(());
        }
        BUILDS.with(|b| b.set((b.get().0 + 1, b.get().1)));
        if cache.len() > 8 {
            cache.clear();
        }
        let m = DetectionModel::new(spec, Device::Cpu)?;
        cache.insert(key.clone(), m);
    }
    let m = cache
        .get_mut(&key)
        .ok_or_else(|| anyhow!("model cache miss"))?;
    if let Some(t) = tensors {
        weights::load_state(m, t, true)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// `.pt`: mutated data.pkl in a rebuilt zip.

/// The fixture checkpoint, split: its `data.pkl` (name, bytes) and the other entries.
struct PtParts {
    pkl_name: String,
    pkl: Vec<u8>,
    /// A stored zip holding every other entry; cases append their `data.pkl` to a copy.
    rest_zip: Vec<u8>,
    whole: Vec<u8>,
}

/// Reads the fixture `.pt` into its parts, or None without `../shared`.
fn pt_parts() -> Option<PtParts> {
    let shared = common::shared()?;
    let whole = std::fs::read(shared.join("fixtures/ultralytics/bt_yolo11n_best.pt")).ok()?;
    let mut zin = zip::ZipArchive::new(Cursor::new(whole.clone())).ok()?;
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut pkl = None;
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).ok()?;
        let name = f.name().to_string();
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut b).ok()?;
        if name.ends_with("data.pkl") {
            pkl = Some((name, b));
        } else {
            out.start_file(name, opts).ok()?;
            out.write_all(&b).ok()?;
        }
    }
    let rest_zip = out.finish().ok()?.into_inner();
    let (pkl_name, pkl) = pkl?;
    Some(PtParts {
        pkl_name,
        pkl,
        rest_zip,
        whole,
    })
}

/// The fixture's zip with `pkl` as its `data.pkl`.
fn pt_with_pickle(parts: &PtParts, pkl: &[u8]) -> Result<Vec<u8>> {
    let mut z = zip::ZipWriter::new_append(Cursor::new(parts.rest_zip.clone()))?;
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file(parts.pkl_name.as_str(), opts)?;
    z.write_all(pkl)?;
    Ok(z.finish()?.into_inner())
}

/// Reads a `.pt` from bytes and, when that works, builds its model and loads the weights.
fn pt_case(bytes: Vec<u8>, cache: &RefCell<ModelCache>) -> Result<()> {
    let ck = weights::read_pt_from(Cursor::new(bytes), "fuzz.pt")?;
    let spec = ModelSpec::from_yaml(ck.yaml, &ck.stem, None, None)?;
    build_and_load(cache, spec, Some(&ck.tensors))
}

#[test]
fn fuzz_pt_pickle() {
    let Some(parts) = pt_parts() else {
        return;
    };
    let cache = RefCell::new(ModelCache::new());
    let len = parts.pkl.len();
    campaign("pt-pickle", 3000, 1_000_000, move |seed| {
        let mut m = Mutator::new(seed);
        let mut pkl = parts.pkl.clone();
        // The first 4 KB hold the model object, its yaml dict and the first layers; the rest is
        // mostly modules and tensor sizes and strides.
        let focus = if seed % 2 == 0 {
            0..len.min(4096)
        } else {
            0..len
        };
        if seed % 4 == 3 {
            // Integer edits only: the structure stays valid and the values reach the tensor code.
            for _ in 0..m.rng.gen_range(1..=4) {
                let p = m.pos(len, &focus);
                m.pickle_int(&mut pkl, p);
            }
        } else {
            m.mutate(&mut pkl, focus, PICKLE_TOKENS);
        }
        pt_case(pt_with_pickle(&parts, &pkl)?, &cache)
    });
}

#[test]
fn fuzz_pt_whole_file() {
    let Some(parts) = pt_parts() else {
        return;
    };
    let cache = RefCell::new(ModelCache::new());
    let len = parts.whole.len();
    campaign("pt-file", 1000, 2_000_000, move |seed| {
        let mut m = Mutator::new(seed);
        let mut bytes = parts.whole.clone();
        // Mostly the central directory at the end, else anywhere (local headers, data.pkl, data).
        let focus = if seed % 2 == 0 {
            len.saturating_sub(64 * 1024)..len
        } else {
            0..len
        };
        m.mutate(&mut bytes, focus, &[]);
        pt_case(bytes, &cache)
    });
}

// ---------------------------------------------------------------------------------------------
// `.safetensors`.

/// A tiny detection model: three strided convs and a Detect head.
const TINY_YAML: &str = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [8, 3, 2]]\n  - [-1, 1, Conv, [8, 3, 2]]\n  - [-1, 1, Conv, [8, 3, 2]]\nhead:\n  - [[0, 1, 2], 1, Detect, [nc]]\n";

/// Safetensors fragments worth inserting into the JSON header.
const ST_TOKENS: &[&[u8]] = &[
    b"\"F16\"",
    b"\"I64\"",
    b"\"BOOL\"",
    b"\"F64\"",
    b"[0,0]",
    b"[18446744073709551615,",
    b"9223372036854775807",
    b"\"shape\":[",
    b"\"data_offsets\":[",
    b"{}",
    b"-1",
    b"1e400",
];

/// The tiny model saved with `weights::save_tensors`.
fn tiny_safetensors() -> Vec<u8> {
    let y: serde_yaml::Value = serde_yaml::from_str(TINY_YAML).expect("tiny yaml");
    let spec = ModelSpec::from_yaml(y, "tiny", None, None).expect("tiny spec");
    let m = DetectionModel::new(spec, Device::Cpu).expect("tiny model");
    let dir = common::tmp("fuzz-st");
    let path = dir.join("tiny.safetensors");
    let meta = weights::CheckpointMeta {
        yaml: m.spec.to_yaml_string(),
        stem: "tiny".into(),
        names: vec!["a".into(), "b".into()],
        task: "detect".into(),
        ..Default::default()
    };
    let vars: Vec<(String, tch::Tensor)> = m.vs.variables().into_iter().collect();
    weights::save_tensors(&vars, &meta, &path).expect("save");
    std::fs::read(&path).expect("read back")
}

/// Rewrites the header-length prefix to end at the last '}' near the original header end, so that
/// edits inside the JSON reach the deeper checks.
fn fix_header_len(data: &mut [u8], hlen: usize) {
    if data.len() < 8 {
        return;
    }
    let lim = data.len().min(8 + hlen + 64);
    if let Some(p) = data[8..lim].iter().rposition(|&b| b == b'}') {
        data[..8].copy_from_slice(&((p + 1) as u64).to_le_bytes());
    }
}

/// Data types to swap into a safetensors header.
const ST_DTYPES: &[&str] = &["F32", "F16", "BF16", "F64", "I64", "I32", "BOOL", "U8", "X"];

/// A value for a shape or offset field: an interesting integer (signed or not) or a small one.
fn st_number(m: &mut Mutator) -> serde_json::Value {
    match m.rng.gen_range(0..3) {
        0 => serde_json::Value::from(m.int()),
        1 => serde_json::Value::from(m.int() as u64),
        _ => serde_json::Value::from(m.rng.gen_range(0u64..2000)),
    }
}

/// One structured edit of a safetensors header: a tensor's shape, offsets or dtype, or the model
/// YAML in the metadata.
fn st_header_edit(
    m: &mut Mutator,
    h: &mut serde_json::Map<String, serde_json::Value>,
) -> Option<()> {
    let keys: Vec<String> = h.keys().cloned().collect();
    let key = &keys[m.rng.gen_range(0..keys.len())];
    if key == "__metadata__" {
        let meta = h.get_mut(key)?.as_object_mut()?;
        let inner = meta.get("ryolo")?.as_str()?.to_string();
        let mut v: serde_json::Value = serde_json::from_str(&inner).ok()?;
        let yaml = v.get("yaml")?.as_str()?.to_string();
        v["yaml"] = yaml_edit(m, &yaml).into();
        meta.insert("ryolo".into(), v.to_string().into());
        return Some(());
    }
    if m.rng.gen_bool(0.1) {
        // A new empty tensor after the others, with an arbitrary second dimension.
        let end = h
            .values()
            .filter_map(|v| v.get("data_offsets")?.get(1)?.as_u64())
            .max()?;
        let dims = vec![serde_json::Value::from(0), st_number(m)];
        let t = serde_json::json!({"dtype": "F32", "shape": dims, "data_offsets": [end, end]});
        h.insert("zzz.empty".into(), t);
        return Some(());
    }
    let t = h.get_mut(key)?.as_object_mut()?;
    match m.rng.gen_range(0..5) {
        0 => {
            let shape = t.get_mut("shape")?.as_array_mut()?;
            if shape.is_empty() || m.rng.gen_bool(0.2) {
                shape.push(st_number(m));
            } else {
                let i = m.rng.gen_range(0..shape.len());
                shape[i] = st_number(m);
            }
        }
        1 => {
            let off = t.get_mut("data_offsets")?.as_array_mut()?;
            let i = m.rng.gen_range(0..off.len().max(1));
            if let Some(x) = off.get_mut(i) {
                *x = st_number(m);
            }
        }
        2 => {
            // An empty byte range at the tensor's start.
            let off = t.get_mut("data_offsets")?.as_array_mut()?;
            let start = off.first()?.clone();
            off[1] = start;
        }
        3 => {
            t.insert(
                "dtype".into(),
                ST_DTYPES[m.rng.gen_range(0..ST_DTYPES.len())].into(),
            );
        }
        _ => {
            t.get_mut("shape")?.as_array_mut()?.pop();
        }
    }
    Some(())
}

/// One to three structured header edits; the header is re-serialised and its length prefix fixed.
fn safetensors_edit(m: &mut Mutator, file: &[u8], hlen: usize) -> Option<Vec<u8>> {
    let mut h: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(file.get(8..8 + hlen)?).ok()?;
    for _ in 0..m.rng.gen_range(1..=3) {
        st_header_edit(m, &mut h);
    }
    let mut header = serde_json::to_vec(&h).ok()?;
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(file.get(8 + hlen..)?);
    Some(out)
}

#[test]
fn fuzz_safetensors() {
    let file = tiny_safetensors();
    let hlen = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
    let cache = RefCell::new(ModelCache::new());
    campaign("safetensors", 2000, 3_000_000, move |seed| {
        let mut m = Mutator::new(seed);
        let mut bytes = file.clone();
        if seed % 2 == 0 {
            bytes = safetensors_edit(&mut m, &file, hlen).unwrap_or(bytes);
        } else {
            m.mutate(&mut bytes, 0..8 + hlen, ST_TOKENS);
            if seed % 3 == 0 {
                fix_header_len(&mut bytes, hlen);
            }
        }
        let (meta, tensors) = weights::read_checkpoint_bytes(&bytes, "fuzz.safetensors")?;
        let y: serde_yaml::Value = serde_yaml::from_str(&meta.yaml)?;
        let spec = ModelSpec::from_yaml(y, &meta.stem, None, None)?;
        build_and_load(&cache, spec, Some(&tensors))
    });
}

// ---------------------------------------------------------------------------------------------
// Model YAML texts.

/// Replacements for numbers and words in YAML texts.
const YAML_VALUES: &[&str] = &[
    "0",
    "-1",
    "-2",
    "1",
    "2",
    "3",
    "4",
    "7",
    "64",
    "65537",
    "1000000000",
    "1e9",
    "-1000000",
    "1e300",
    ".nan",
    ".inf",
    "-.inf",
    "0.0",
    "0.001",
    "2.5",
    "nc",
    "None",
    "True",
    "[]",
    "[1, 2]",
    "\"x\"",
    "",
];

/// Module names to swap in.
const MODULES: &[&str] = &[
    "Conv",
    "C2f",
    "C3k2",
    "SPPF",
    "C2PSA",
    "nn.Upsample",
    "Concat",
    "Detect",
    "Foo",
];

/// One text-level edit of a model YAML: numbers, module names, list items and lines.
fn yaml_edit(m: &mut Mutator, text: &str) -> String {
    let rng = &mut m.rng;
    let lines: Vec<&str> = text.lines().collect();
    match rng.gen_range(0..7) {
        0 | 1 => {
            let nums: Vec<(usize, usize)> = regex::Regex::new(r"-?[0-9]+(\.[0-9]+)?")
                .expect("regex")
                .find_iter(text)
                .map(|x| (x.start(), x.end()))
                .collect();
            if nums.is_empty() {
                return text.to_string();
            }
            let (a, b) = nums[rng.gen_range(0..nums.len())];
            let v = YAML_VALUES[rng.gen_range(0..YAML_VALUES.len())];
            format!("{}{v}{}", &text[..a], &text[b..])
        }
        2 => {
            let mods: Vec<(usize, usize)> =
                regex::Regex::new(r"\b(Conv|C2f|C3k2|SPPF|C2PSA|nn\.Upsample|Concat|Detect)\b")
                    .expect("regex")
                    .find_iter(text)
                    .map(|x| (x.start(), x.end()))
                    .collect();
            if mods.is_empty() {
                return text.to_string();
            }
            let (a, b) = mods[rng.gen_range(0..mods.len())];
            let v = MODULES[rng.gen_range(0..MODULES.len())];
            format!("{}{v}{}", &text[..a], &text[b..])
        }
        3 => {
            let mut l: Vec<&str> = lines.clone();
            if !l.is_empty() {
                l.remove(rng.gen_range(0..l.len()));
            }
            l.join("\n")
        }
        4 => {
            let mut l: Vec<&str> = lines.clone();
            if !l.is_empty() {
                let i = rng.gen_range(0..l.len());
                let j = rng.gen_range(0..l.len());
                l.insert(j, lines[i]);
            }
            l.join("\n")
        }
        5 => {
            let mut l: Vec<&str> = lines.clone();
            if l.len() > 1 {
                let i = rng.gen_range(0..l.len());
                let j = rng.gen_range(0..l.len());
                l.swap(i, j);
            }
            l.join("\n")
        }
        _ => {
            // Drop or add a list element.
            let commas: Vec<usize> = text.match_indices(", ").map(|(i, _)| i).collect();
            if commas.is_empty() {
                return text.to_string();
            }
            let c = commas[rng.gen_range(0..commas.len())];
            if rng.gen_bool(0.5) {
                let end = text[c + 2..]
                    .find([',', ']'])
                    .map_or(text.len(), |e| c + 2 + e);
                format!("{}{}", &text[..c], &text[end..])
            } else {
                let v = YAML_VALUES[rng.gen_range(0..YAML_VALUES.len())];
                format!("{}, {v}{}", &text[..c], &text[c..])
            }
        }
    }
}

/// The built-in YAML texts, as the user would copy them.
fn builtin_yamls() -> Vec<String> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    ["yolo11.yaml", "yolov8.yaml"]
        .iter()
        .map(|f| std::fs::read_to_string(root.join(f)).expect("built-in yaml"))
        .collect()
}

#[test]
fn fuzz_model_yaml() {
    let texts = builtin_yamls();
    let cache = RefCell::new(ModelCache::new());
    campaign("model-yaml", 3000, 4_000_000, move |seed| {
        let mut m = Mutator::new(seed);
        let mut text = texts[(seed % 2) as usize].clone();
        if seed % 3 != 0 {
            // Two cases in three use a 16x thinner 'n' scale: same structure, much cheaper to build.
            text = text
                .replace("n: [0.50, 0.25, 1024]", "n: [0.50, 0.0625, 1024]")
                .replace("n: [0.33, 0.25, 1024]", "n: [0.33, 0.0625, 1024]");
        }
        for _ in 0..m.rng.gen_range(1..=3) {
            text = yaml_edit(&mut m, &text);
        }
        if seed % 10 == 0 {
            let mut b = text.into_bytes();
            let len = b.len();
            m.mutate(&mut b, 0..len, &[]);
            text = String::from_utf8_lossy(&b).into_owned();
        }
        if std::env::var("RYOLO_FUZZ_DUMP").is_ok() {
            eprintln!("----- seed {seed}\n{text}\n-----");
        }
        let y: serde_yaml::Value = serde_yaml::from_str(&text)?;
        let (stem, scale) = if seed % 2 == 0 {
            ("yolo11n", "n")
        } else {
            ("yolov8n", "n")
        };
        let spec = ModelSpec::from_yaml(y, stem, Some(scale.into()), None)?;
        build_and_load(&cache, spec, None)
    });
}

// ---------------------------------------------------------------------------------------------
// Images.

/// Image-format fragments worth inserting: JPEG markers, PNG chunk names, TIFF/EXIF tags, huge sizes.
const IMG_TOKENS: &[&[u8]] = &[
    b"\xff\xd8",
    b"\xff\xd9",
    b"\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03",
    b"\xff\xc2",
    b"\xff\xc4",
    b"\xff\xda",
    b"\xff\xdd\x00\x04\x00\x00",
    b"\xff\xe1\xff\xff",
    b"Exif\x00\x00",
    b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06",
    b"IHDR",
    b"IDAT",
    b"IEND",
    b"PLTE",
    b"tRNS",
    b"acTL",
    b"\x00\x00\xea\x60\x00\x00\xea\x60",
    b"II*\x00",
    b"MM\x00*",
    b"VP8L",
    b"VP8X",
    b"RIFF",
    b"BM",
];

/// A JPEG APP1 segment whose EXIF says "rotate 90" (orientation 6), inserted after SOI.
fn with_exif_orientation(jpeg: &[u8]) -> Vec<u8> {
    let tiff: &[u8] = b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00";
    let body = [&b"Exif\x00\x00"[..], tiff].concat();
    let len = u16::try_from(body.len() + 2).expect("small segment");
    [
        &jpeg[..2],
        b"\xff\xe1",
        &len.to_be_bytes(),
        &body,
        &jpeg[2..],
    ]
    .concat()
}

/// Small base images in every format the reader decodes (8-bit, grey, 16-bit, alpha, EXIF), and the
/// real `bus.jpg` when `../shared` is present.
fn image_bases() -> Vec<(&'static str, Vec<u8>)> {
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
    let rgb = RgbImage::from_fn(37, 23, |x, y| {
        Rgb([(x * 7) as u8, (y * 11) as u8, (x ^ y) as u8])
    });
    let img = DynamicImage::ImageRgb8(rgb);
    let enc = |im: &DynamicImage, f: ImageFormat| {
        let mut c = Cursor::new(Vec::new());
        im.write_to(&mut c, f).expect("encode a base image");
        c.into_inner()
    };
    let jpeg = enc(&img, ImageFormat::Jpeg);
    let mut out = vec![
        ("jpg", with_exif_orientation(&jpeg)),
        ("jpg", jpeg),
        (
            "jpg",
            enc(&DynamicImage::ImageLuma8(img.to_luma8()), ImageFormat::Jpeg),
        ),
        ("png", enc(&img, ImageFormat::Png)),
        (
            "png",
            enc(
                &DynamicImage::ImageRgba16(img.to_rgba16()),
                ImageFormat::Png,
            ),
        ),
        (
            "png",
            enc(&DynamicImage::ImageLuma8(img.to_luma8()), ImageFormat::Png),
        ),
        ("bmp", enc(&img, ImageFormat::Bmp)),
        ("tif", enc(&img, ImageFormat::Tiff)),
        (
            "webp",
            enc(&DynamicImage::ImageRgba8(img.to_rgba8()), ImageFormat::WebP),
        ),
    ];
    if let Some(s) = common::shared() {
        if let Ok(b) = std::fs::read(s.join("datasets/samples/bus.jpg")) {
            out.push(("jpg", b));
        }
    }
    out
}

#[test]
fn fuzz_images() {
    let bases = image_bases();
    let dir = common::tmp("fuzz-images");
    campaign("images", 5000, 5_000_000, move |seed| {
        let mut m = Mutator::new(seed);
        let (ext, base) = &bases[(seed as usize) % bases.len()];
        let mut bytes = base.clone();
        // Mostly the headers (the first 200 bytes), else anywhere.
        let focus = if seed % 3 == 0 {
            0..bytes.len()
        } else {
            0..200
        };
        m.mutate(&mut bytes, focus, IMG_TOKENS);
        let f = dir.join(format!("case.{ext}"));
        std::fs::write(&f, &bytes).map_err(|e| anyhow!("{e}"))?;
        // Every way the pipeline reads an image: header probe (scan), full probe (check), decode.
        let (h, w) = ryolo::data::image::probe(&f, false)?;
        ryolo::data::image::probe(&f, true)?;
        let im = ryolo::data::image::load_image(&f)?;
        let (iw, ih) = im.dimensions();
        // The scan's shapes scale the labels: the header and the pixels must agree.
        assert_eq!((ih, iw), (h, w), "decoded size differs from the probed one");
        Ok(())
    });
}
