//! One crafted file per attack class found by the hostile-input campaign: each must give a clear
//! error naming what is wrong, quickly, instead of an abort, a hang or a panic. Pickles are written
//! byte by byte with protocol-2 opcodes.

use ryolo::nn::ModelSpec;
use ryolo::weights;
use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A protocol-2 pickle writer.

/// Builds a pickle stream opcode by opcode.
struct Pk(Vec<u8>);

impl Pk {
    /// `PROTO 2`.
    fn new() -> Self {
        Pk(vec![0x80, 2])
    }
    /// Raw opcodes.
    fn op(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    /// `BINUNICODE`.
    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.op(s.as_bytes())
    }
    /// `LONG1` with 8 bytes.
    fn int(&mut self, v: i64) -> &mut Self {
        self.op(&[0x8a, 8]).op(&v.to_le_bytes())
    }
    /// `GLOBAL module name`.
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(b"c")
            .op(module.as_bytes())
            .op(b"\n")
            .op(name.as_bytes())
            .op(b"\n")
    }
    /// `LONG_BINPUT i`.
    fn put(&mut self, i: u32) -> &mut Self {
        self.op(b"r").op(&i.to_le_bytes())
    }
    /// `LONG_BINGET i`.
    fn get(&mut self, i: u32) -> &mut Self {
        self.op(b"j").op(&i.to_le_bytes())
    }
    /// A module object: `GLOBAL ultralytics.nn.tasks DetectionModel; EMPTY_TUPLE; NEWOBJ`.
    fn object(&mut self) -> &mut Self {
        self.global("ultralytics.nn.tasks", "DetectionModel")
            .op(b")\x81")
    }
    /// A tuple of integers: `MARK ints TUPLE`.
    fn ints(&mut self, v: &[i64]) -> &mut Self {
        self.op(b"(");
        for &x in v {
            self.int(x);
        }
        self.op(b"t")
    }
    /// A float tensor on storage `key`: `_rebuild_tensor_v2(storage, offset, size, stride, False, {})`.
    fn tensor(&mut self, key: &str, offset: i64, size: &[i64], stride: &[i64]) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").op(b"(");
        self.op(b"(")
            .str("storage")
            .global("torch", "FloatStorage")
            .str(key)
            .str("cpu")
            .int(1)
            .op(b"tQ");
        self.int(offset).ints(size).ints(stride).op(b"\x89}tR")
    }
    /// The finished stream: `... STOP`.
    fn done(&mut self) -> Vec<u8> {
        self.op(b".");
        std::mem::take(&mut self.0)
    }
}

/// A minimal model state: `{'yaml': {}, '_parameters': {'w': <tensor>}, '_buffers': {}, '_modules': {}}`
/// with the tensor written by `tensor`.
fn state_with_tensor(p: &mut Pk, tensor: impl FnOnce(&mut Pk)) {
    p.op(b"}(")
        .str("yaml")
        .op(b"}")
        .str("_parameters")
        .op(b"}(")
        .str("w");
    tensor(p);
    p.op(b"u")
        .str("_buffers")
        .op(b"}")
        .str("_modules")
        .op(b"}u");
}

/// `{'model': <object with that state>}`.
fn checkpoint_with_tensor(tensor: impl FnOnce(&mut Pk)) -> Vec<u8> {
    let mut p = Pk::new();
    p.op(b"}").str("model").object();
    state_with_tensor(&mut p, tensor);
    p.op(b"bs").done()
}

/// A stored zip holding `archive/data.pkl` and the given `archive/data/<key>` storages.
fn pt_zip(pkl: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("archive/data.pkl", opts).unwrap();
    z.write_all(pkl).unwrap();
    for (key, bytes) in storages {
        z.start_file(format!("archive/data/{key}"), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap().into_inner()
}

/// Reads a crafted `.pt` and returns its error text, asserting it came quickly and names the file.
fn pt_error(bytes: Vec<u8>) -> String {
    let t0 = Instant::now();
    let r = weights::read_pt_from(Cursor::new(bytes), "crafted.pt");
    let dt = t0.elapsed();
    let e = format!("{:#}", r.expect_err("a crafted file must be refused"));
    assert!(dt < Duration::from_secs(2), "took {dt:?}: {e}");
    assert!(e.contains("crafted.pt"), "{e}");
    e
}

/// Asserts `e` mentions every part.
fn says(e: &str, parts: &[&str]) {
    eprintln!("refused: {e}");
    for p in parts {
        assert!(e.contains(p), "expected '{p}' in: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// `.pt` structure attacks.

#[test]
fn a_good_crafted_checkpoint_reads() {
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 1, &[2, 2], &[1, 2]);
    });
    let data: Vec<u8> = (0..5).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let ck = weights::read_pt_from(Cursor::new(pt_zip(&pkl, &[("0", &data)])), "ok.pt").unwrap();
    let w = &ck.tensors["w"];
    assert_eq!(w.size(), vec![2, 2]);
    // Offset 1, stride (1, 2): [[1, 3], [2, 4]].
    let v: Vec<f32> = Vec::try_from(w.flatten(0, -1)).unwrap();
    assert_eq!(v, vec![1.0, 3.0, 2.0, 4.0]);
}

#[test]
fn object_state_referencing_itself() {
    // model = DetectionModel(); memo[0] = model; BUILD(model, state=model).
    let mut p = Pk::new();
    p.op(b"}").str("model").object().put(0).get(0).op(b"bs");
    let e = pt_error(pt_zip(&p.done(), &[]));
    says(&e, &["refers back to itself", "cycle"]);
}

#[test]
fn state_chain_300k_deep() {
    // 300,000 objects on the stack, then 300,000 BUILDs: each object's state is the next object.
    let n = 300_000;
    let mut p = Pk::new();
    p.op(b"}").str("model");
    // The class global in memo 0, popped from the stack; each NEWOBJ re-uses it.
    p.global("ultralytics.nn.tasks", "DetectionModel")
        .put(0)
        .op(b"0");
    for _ in 0..n {
        p.get(0).op(b")\x81");
    }
    p.op(b"}");
    for _ in 0..n {
        p.op(b"b");
    }
    p.op(b"s");
    let e = pt_error(pt_zip(&p.done(), &[]));
    says(&e, &["chain of more than 8 objects"]);
}

#[test]
fn yaml_dag_of_2_pow_59_nodes() {
    // l0 = []; l_i = [l_{i-1}, l_{i-1}]: 60 lists in the file, 2^60 nodes when expanded.
    let mut p = Pk::new();
    p.op(b"}").str("model").object();
    p.op(b"]").put(0).op(b"0");
    for i in 1..60u32 {
        p.op(b"(").get(i - 1).get(i - 1).op(b"l").put(i).op(b"0");
    }
    p.op(b"}(").str("yaml").get(59).str("_modules").op(b"}u");
    p.op(b"bs");
    let e = pt_error(pt_zip(&p.done(), &[]));
    says(&e, &["'yaml'", "more than 1000000 nodes"]);
}

#[test]
fn module_dag_of_2_pow_32_modules() {
    // m0 holds one tensor; m_i = {'_modules': {'a': m_{i-1}, 'b': m_{i-1}}}: 2^32 module paths.
    let mut p = Pk::new();
    p.op(b"}").str("model").object();
    p.op(b"}(")
        .str("yaml")
        .op(b"}")
        .str("_modules")
        .op(b"}(")
        .str("top");
    p.object();
    state_with_tensor(&mut p, |p| {
        p.tensor("0", 0, &[1], &[1]);
    });
    p.op(b"b").put(0).op(b"0");
    for i in 1..=32u32 {
        p.object()
            .op(b"}(")
            .str("_modules")
            .op(b"}(")
            .str("a")
            .get(i - 1);
        p.str("b").get(i - 1).op(b"uub").put(i).op(b"0");
    }
    p.get(32).op(b"uu").op(b"bs");
    let data = 1f32.to_le_bytes();
    let e = pt_error(pt_zip(&p.done(), &[("0", &data)]));
    says(&e, &["more than 100000 modules"]);
}

#[test]
fn module_containing_itself() {
    let mut p = Pk::new();
    p.op(b"}").str("model").object().put(0);
    p.op(b"}(")
        .str("yaml")
        .op(b"}")
        .str("_modules")
        .op(b"}(")
        .str("loop")
        .get(0);
    p.op(b"uu").op(b"bs");
    let e = pt_error(pt_zip(&p.done(), &[]));
    says(&e, &["module loop contains itself", "cycle"]);
}

#[test]
fn negative_stride() {
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 3, &[4], &[-1]);
    });
    let e = pt_error(pt_zip(&pkl, &[("0", &[0u8; 16])]));
    says(&e, &["tensor w", "storage 0", "negative stride -1"]);
}

#[test]
fn negative_size_and_offset() {
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 0, &[-4], &[1]);
    });
    let e = pt_error(pt_zip(&pkl, &[("0", &[0u8; 16])]));
    says(&e, &["tensor w", "negative size -4"]);
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", -2, &[2], &[1]);
    });
    let e = pt_error(pt_zip(&pkl, &[("0", &[0u8; 16])]));
    says(&e, &["tensor w", "negative storage offset -2"]);
}

#[test]
fn size_stride_and_offset_overflow() {
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 0, &[1 << 62, 1 << 62], &[1, 1]);
    });
    let e = pt_error(pt_zip(&pkl, &[("0", &[0u8; 16])]));
    says(&e, &["tensor w", "overflow"]);
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 0, &[3], &[i64::MAX]);
    });
    let e = pt_error(pt_zip(&pkl, &[("0", &[0u8; 16])]));
    says(&e, &["tensor w", "overflow"]);
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", i64::MAX, &[2], &[1]);
    });
    let e = pt_error(pt_zip(&pkl, &[("0", &[0u8; 16])]));
    says(&e, &["tensor w", "offset 9223372036854775807", "overflow"]);
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 1 << 62, &[1], &[1]);
    });
    let e = pt_error(pt_zip(&pkl, &[("0", &[0u8; 16])]));
    says(&e, &["tensor w", "past any file"]);
}

#[test]
fn huge_size_with_zero_stride() {
    // 2^40 elements all reading element 0 of a one-float storage: would need 4 TiB.
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 0, &[1 << 40], &[0]);
    });
    let e = pt_error(pt_zip(&pkl, &[("0", &1f32.to_le_bytes())]));
    says(
        &e,
        &["tensor w", "1099511627776 elements", "4-byte storage"],
    );
}

#[test]
fn size_larger_than_storage() {
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 0, &[10, 10], &[10, 1]);
    });
    let e = pt_error(pt_zip(&pkl, &[("0", &[0u8; 16])]));
    says(&e, &["storage 0", "holds 16 bytes but 400 are needed"]);
}

#[test]
fn corrupted_storage_fails_its_crc() {
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 0, &[4], &[1]);
    });
    let data: Vec<u8> = (1..=16).collect();
    let mut z = pt_zip(&pkl, &[("0", &data)]);
    let at = z.windows(16).position(|w| w == &data[..]).unwrap();
    z[at + 5] ^= 0x40;
    let e = pt_error(z);
    says(&e, &["storage 0", "archive/data/0", "checksum"]);
}

#[test]
fn too_many_dimensions() {
    let dims = vec![1i64; 65];
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 0, &dims, &dims);
    });
    let e = pt_error(pt_zip(&pkl, &[("0", &[0u8; 16])]));
    says(&e, &["65 dimensions"]);
}

/// Sets the uncompressed size of every central-directory entry named `name` to `size`.
fn patch_declared_size(zip: &mut [u8], name: &str, size: u32) {
    let sig = [0x50, 0x4b, 0x01, 0x02];
    let mut i = 0;
    let mut hits = 0;
    while i + 46 <= zip.len() {
        if zip[i..i + 4] == sig {
            let n = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
            if zip.get(i + 46..i + 46 + n) == Some(name.as_bytes()) {
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
                hits += 1;
            }
        }
        i += 1;
    }
    assert_eq!(hits, 1, "central directory entry {name}");
}

#[test]
fn zip_entry_declaring_over_4gb() {
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 0, &[1], &[1]);
    });
    let mut z = pt_zip(&pkl, &[("0", &[0u8; 16])]);
    patch_declared_size(&mut z, "archive/data/0", 0xF000_0000);
    let e = pt_error(z);
    says(&e, &["archive/data/0", "declares 4026531840 bytes", "cap"]);
}

#[test]
fn zip_bomb_storage_reads_only_what_the_tensors_need() {
    // 128 MiB of zeros deflate to about 128 KB; the tensor needs 16 bytes of them.
    let pkl = checkpoint_with_tensor(|p| {
        p.tensor("0", 0, &[4], &[1]);
    });
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    z.start_file("archive/data.pkl", stored).unwrap();
    z.write_all(&pkl).unwrap();
    z.start_file("archive/data/0", deflated).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..128 {
        z.write_all(&zeros).unwrap();
    }
    let mut bytes = z.finish().unwrap().into_inner();
    assert!(bytes.len() < 2 << 20, "{} bytes", bytes.len());
    let t0 = Instant::now();
    let ck = weights::read_pt_from(Cursor::new(bytes.clone()), "bomb.pt").unwrap();
    assert_eq!(ck.tensors["w"].size(), vec![4]);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    // A header that claims 64 bytes while the stream inflates to 128 MiB: still 16 bytes read.
    patch_declared_size(&mut bytes, "archive/data/0", 64);
    let ck = weights::read_pt_from(Cursor::new(bytes), "bomb.pt").unwrap();
    assert_eq!(ck.tensors["w"].size(), vec![4]);
}

#[test]
fn pickle_copying_a_big_list_many_times() {
    // A 1M-element list turned into a tuple 100 times: 1e8 copied elements from a 1 MB stream.
    let mut p = Pk::new();
    p.op(b"]").put(0).op(b"(");
    for _ in 0..1_000_000 {
        p.op(b"N");
    }
    p.op(b"e0");
    for _ in 0..100 {
        p.global("builtins", "tuple").get(0).op(b"\x85R0");
    }
    p.op(b"}");
    let e = pt_error(pt_zip(&p.done(), &[]));
    says(&e, &["copies more than 20000000 container elements"]);
}

// ---------------------------------------------------------------------------------------------
// Model YAMLs.

/// The built-in YOLO11 YAML with `from` replaced by `to` (which must occur).
fn yolo11_with(from: &str, to: &str) -> String {
    let text = include_str!("../models/yolo11.yaml");
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1)
}

/// The error of building yolo11n from a YAML text, asserting it is quick.
fn yaml_error(text: &str) -> String {
    let t0 = Instant::now();
    let y: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    let r = ModelSpec::from_yaml(y, "yolo11n", Some("n".into()), None);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    format!("{:#}", r.expect_err("a bad YAML must be refused"))
}

#[test]
fn yaml_channels_kernels_and_strides() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "[64, 3, 2]] # 0",
            "[0, 3, 2]] # 0",
            &["layer 0", "Conv 'c2'", "got 0"],
        ),
        (
            "[64, 3, 2]] # 0",
            "[-16, 3, 2]] # 0",
            &["layer 0", "'c2'", "got -16"],
        ),
        (
            "[64, 3, 2]] # 0",
            "[65537, 3, 2]] # 0",
            &["layer 0", "'c2'", "65537"],
        ),
        (
            "[128, 3, 2]] # 1",
            "[128, 0, 2]] # 1",
            &["layer 1", "Conv 'k'", "got 0"],
        ),
        (
            "[128, 3, 2]] # 1",
            "[128, 3, 0]] # 1",
            &["layer 1", "Conv 's'", "got 0"],
        ),
        (
            "[128, 3, 2]] # 1",
            "[128, 3, -2]] # 1",
            &["layer 1", "Conv 's'", "got -2"],
        ),
        (
            "SPPF, [1024, 5]]",
            "SPPF, [1024, 0]]",
            &["layer 9", "SPPF 'k'", "got 0"],
        ),
        (
            "SPPF, [1024, 5]]",
            "SPPF, [1024, 4]]",
            &["layer 9", "SPPF 'k'", "odd"],
        ),
        (
            "nn.Upsample, [None, 2, \"nearest\"]]",
            "nn.Upsample, [None, 0, \"nearest\"]]",
            &["layer 11", "'scale_factor'", "got 0"],
        ),
        (
            "Conv, [64, 3, 2]]",
            "Conv, []]",
            &["layer 0", "'c2' (argument 0) is missing"],
        ),
        (
            "C3k2, [256, False, 0.25]]",
            "C3k2, [256, False, .nan]]",
            &["layer 2", "'e'"],
        ),
    ];
    for (from, to, parts) in cases {
        let e = yaml_error(&yolo11_with(from, to));
        says(&e, parts);
    }
}

#[test]
fn yaml_mismatched_concat_inputs() {
    // Layer 12 concatenates the upsampled P5 (stride 16) with layer 4 (P3, stride 8).
    let e = yaml_error(&yolo11_with("[[-1, 6], 1, Concat", "[[-1, 4], 1, Concat"));
    says(
        &e,
        &["layer 12", "Concat inputs differ", "stride 16", "stride 8"],
    );
}

#[test]
fn yaml_class_counts() {
    for (nc, got) in [("0", "got 0"), ("-3", "got -3"), ("1000000", "got 1000000")] {
        let e = yaml_error(&yolo11_with("nc: 80", &format!("nc: {nc}")));
        says(&e, &["'nc'", "1..=10000", got]);
    }
    let e = yaml_error(&yolo11_with("nc: 80", "nc: .nan"));
    says(&e, &["'nc' must be an integer"]);
    let e = yaml_error(&yolo11_with(
        "[[16, 19, 22], 1, Detect, [nc]]",
        "[[16, 19, 22], 1, Detect, [0]]",
    ));
    says(&e, &["layer 23", "Detect 'nc'", "got 0"]);
}

#[test]
fn yaml_repeats_and_multiples() {
    let e = yaml_error(&yolo11_with(
        "[-1, 2, C3k2, [256, False, 0.25]]",
        "[-1, -1, C3k2, [256, False, 0.25]]",
    ));
    says(&e, &["layer 2", "repeats must be >= 0"]);
    let e = yaml_error(&yolo11_with(
        "[-1, 2, C3k2, [256, False, 0.25]]",
        "[-1, 1000000000, C3k2, [256, False, 0.25]]",
    ));
    says(&e, &["layer 2", "repeats 1000000000", "more than 100"]);
    let e = yaml_error(&yolo11_with(
        "[-1, 1, Conv, [128, 3, 2]]",
        "[-1, 3, Conv, [128, 3, 2]]",
    ));
    says(&e, &["layer 1", "repeats must be 1 for Conv"]);
    // No scales: depth_multiple and width_multiple.
    let noscale = |d: &str| {
        let t = include_str!("../models/yolo11.yaml");
        let start = t.find("scales:").unwrap();
        let end = t.find("backbone:").unwrap();
        format!(
            "{}depth_multiple: {d}\nwidth_multiple: 0.25\n{}",
            &t[..start],
            &t[end..]
        )
    };
    let y: serde_yaml::Value = serde_yaml::from_str(&noscale("1e6")).unwrap();
    let e = format!(
        "{:#}",
        ModelSpec::from_yaml(y, "custom", None, None).unwrap_err()
    );
    says(&e, &["'depth_multiple'", "(0, 100]"]);
    let y: serde_yaml::Value = serde_yaml::from_str(&noscale("0.5")).unwrap();
    ModelSpec::from_yaml(y, "custom", None, None).unwrap();
}

#[test]
fn yaml_scale_rows() {
    for row in [
        "[0.50, 0.25]",
        "[.nan, 0.25, 1024]",
        "[0.5, -0.25, 1024]",
        "[0.5, .inf, 1024]",
        "x",
    ] {
        let e = yaml_error(&yolo11_with("n: [0.50, 0.25, 1024]", &format!("n: {row}")));
        says(&e, &["scale 'n'", "three finite numbers"]);
    }
}

#[test]
fn yaml_bad_from_and_sizes() {
    let e = yaml_error(&yolo11_with("[[-1, 6], 1, Concat", "[[], 1, Concat"));
    says(&e, &["layer 12", "empty"]);
    let e = yaml_error(&yolo11_with(
        "[-1, 1, Conv, [128, 3, 2]]",
        "[[-1, 0], 1, Conv, [128, 3, 2]]",
    ));
    says(&e, &["layer 1", "Conv takes one input"]);
    let e = yaml_error(&yolo11_with(
        "[-1, 1, Conv, [128, 3, 2]]",
        "[5, 1, Conv, [128, 3, 2]]",
    ));
    says(&e, &["layer 1", "later layer"]);
    // A huge upsampled map: 64x at P3 then concat stops at the activation cap.
    let e = yaml_error(&yolo11_with(
        "nn.Upsample, [None, 2, \"nearest\"]]",
        "nn.Upsample, [None, 64, \"nearest\"]]",
    ));
    says(&e, &["layer 11", "2^28"]);
}

#[test]
fn yaml_alias_bomb_and_endless_file() {
    // Ten levels of ten aliases: 10^10 nodes if expanded.
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = format!("*a{}", i - 1);
        text += &format!("a{i}: &a{i} [{}]\n", [p.as_str(); 10].join(", "));
    }
    let t0 = Instant::now();
    assert!(serde_yaml::from_str::<serde_yaml::Value>(&text).is_err());
    assert!(t0.elapsed() < Duration::from_secs(2));
    // A model YAML over the 16 MiB cap is refused after reading the cap (the same guard stops
    // /dev/zero); a regular file keeps a regression from eating the machine's memory.
    let dir = std::env::temp_dir().join(format!("ryolo-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.yaml");
    std::fs::write(&big, vec![b' '; (16 << 20) + 1]).unwrap();
    let e = format!(
        "{:#}",
        ModelSpec::from_name(big.to_str().unwrap(), None).unwrap_err()
    );
    says(&e, &["big.yaml", "larger than 16777216 bytes"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn yaml_parameter_cap() {
    // Two 65536-channel convs: 3.9e10 parameters.
    let text = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [65536, 3, 32]]\n  - [-1, 1, Conv, [65536, 3, 2]]\n  - [-1, 1, Conv, [8, 1, 1]]\nhead:\n  - [[0, 1, 2], 1, Detect, [nc]]\n";
    let y: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    let e = format!(
        "{:#}",
        ModelSpec::from_yaml(y, "big", None, None).unwrap_err()
    );
    says(&e, &["parameters", "1e9 cap"]);
}

// ---------------------------------------------------------------------------------------------
// Safetensors checkpoints.

/// A safetensors file from a JSON header and data bytes.
fn st_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut header = header.to_string();
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// The metadata our reader needs.
const META: &str = r#""__metadata__":{"ryolo":"{\"yaml\":\"\",\"stem\":\"x\",\"names\":[]}"}"#;

/// The error of reading crafted safetensors bytes.
fn st_error(bytes: &[u8]) -> String {
    let e = weights::read_checkpoint_bytes(bytes, "crafted.safetensors").unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("crafted.safetensors"), "{e}");
    e
}

#[test]
fn safetensors_garbage() {
    let ok = st_file(
        &format!(r#"{{{META},"w":{{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}}}"#),
        &[0u8; 8],
    );
    let (_, t) = weights::read_checkpoint_bytes(&ok, "ok.safetensors").unwrap();
    assert_eq!(t["w"].size(), vec![2]);
    // Header length past the end.
    let mut bad = ok.clone();
    bad[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    st_error(&bad);
    // Offsets past the end.
    st_error(&st_file(
        &format!(r#"{{{META},"w":{{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}}}"#),
        &[0u8; 8],
    ));
    // dtype mismatch.
    let e = st_error(&st_file(
        &format!(r#"{{{META},"w":{{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}}}"#),
        &[0u8; 8],
    ));
    says(&e, &["tensor w", "F16"]);
    // A huge shape with no elements: the dimension does not fit tch's i64.
    let e = st_error(&st_file(
        &format!(
            r#"{{{META},"w":{{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]}}}}"#
        ),
        &[],
    ));
    says(&e, &["tensor w", "too large"]);
    // Shape product overflow.
    st_error(&st_file(
        &format!(
            r#"{{{META},"w":{{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}}}"#
        ),
        &[0u8; 8],
    ));
}
