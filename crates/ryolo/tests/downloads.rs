//! First-run downloads against a tiny HTTP/1.1 server on 127.0.0.1 (never the network): official
//! weights fetched into `weights_dir` and loaded, a transfer resumed with `Range` after the server
//! drops the connection, lying sizes and garbage refused with nothing left in place, the one-line
//! offline error, and the built-in `coco8.yaml` downloaded and unzipped into `datasets_dir`.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How the server answers one path.
#[derive(Clone)]
enum Mode {
    /// Honestly, with `Range` support.
    Plain,
    /// The first answer stops after this many bytes and closes the connection.
    DropFirstAt(usize),
    /// Announces this many bytes more than it has (every time).
    Longer(usize),
}

/// What the server saw: `(path, Range header)` per request.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A running test server: its base URL and request log.
struct Server {
    base: String,
    log: Log,
}

impl Server {
    /// Serves `routes` (path -> body and mode) on a free loopback port, one connection at a time.
    fn start(routes: Vec<(&str, Vec<u8>, Mode)>) -> Self {
        let routes: HashMap<String, (Vec<u8>, Mode)> = routes
            .into_iter()
            .map(|(p, b, m)| (p.to_string(), (b, m)))
            .collect();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
        let log: Log = Arc::default();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                answer(s, &routes, &log2);
            }
        });
        Self { base, log }
    }

    /// The requests made for `path`, with their `Range` headers.
    fn requests(&self, path: &str) -> Vec<Option<String>> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// Reads one request head and answers it per the route's mode.
fn answer(mut s: TcpStream, routes: &HashMap<String, (Vec<u8>, Mode)>, log: &Log) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).unwrap_or(0) == 0 || head.len() > 16384 {
            return;
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
    let range = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("range")
            .then(|| v.trim().to_string())
    });
    let nth = {
        let mut log = log.lock().unwrap();
        log.push((path.clone(), range.clone()));
        log.iter().filter(|(p, _)| *p == path).count()
    };
    let Some((body, mode)) = routes.get(&path) else {
        let _ = s.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        );
        return;
    };
    let extra = match mode {
        Mode::Longer(n) => *n,
        _ => 0,
    };
    let total = body.len() + extra;
    let start: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    let head = if range.is_some() {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{total}\r\nConnection: close\r\n\r\n",
            total - start,
            total - 1
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n")
    };
    let _ = s.write_all(head.as_bytes());
    let end = match mode {
        Mode::DropFirstAt(n) if nth == 1 => *n,
        _ => body.len(),
    };
    let _ = s.write_all(&body[start.min(end)..end]);
    let _ = s.flush();
    let _ = s.shutdown(std::net::Shutdown::Both);
}

/// A loopback URL nothing listens on.
fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// Tests that set process-wide variables (settings folder, asset base URL) run one at a time.
static ENV: Mutex<()> = Mutex::new(());

/// Isolated settings under `dir` (`weights_dir`, `datasets_dir` inside it) and the asset base.
fn isolate(dir: &Path, base: &str) {
    std::env::set_var("YOLO_CONFIG_DIR", dir.join("cfg"));
    std::env::set_var("RYOLO_ASSETS_URL", base);
    let mut s = ryolo::cfg::default_settings();
    s.insert(
        "weights_dir".into(),
        dir.join("weights").display().to_string().into(),
    );
    s.insert(
        "datasets_dir".into(),
        dir.join("datasets").display().to_string().into(),
    );
    ryolo::cfg::save_settings(&s).unwrap();
}

/// The fixture checkpoint's bytes.
fn fixture_pt(shared: &Path) -> Vec<u8> {
    std::fs::read(shared.join("fixtures/ultralytics/bt_yolo11n_best.pt")).unwrap()
}

/// Files in a folder (names), hidden ones included.
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A zip of coco8's images and labels under `coco8/` (plus macOS junk that must be skipped).
fn coco8_zip(shared: &Path) -> Vec<u8> {
    let src = shared.join("datasets/coco8");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opt = zip::write::SimpleFileOptions::default();
    for kind in ["images", "labels"] {
        for split in ["train", "val"] {
            let dir = src.join(kind).join(split);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for f in files.iter().take(2) {
                let name = f.file_name().unwrap().to_string_lossy().to_string();
                w.start_file(format!("coco8/{kind}/{split}/{name}"), opt)
                    .unwrap();
                w.write_all(&std::fs::read(f).unwrap()).unwrap();
            }
        }
    }
    w.start_file("__MACOSX/coco8/._junk", opt).unwrap();
    w.write_all(b"junk").unwrap();
    w.finish().unwrap().into_inner()
}

#[test]
fn official_weights_download_into_weights_dir_and_load() {
    let Some(shared) = common::shared() else {
        return;
    };
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let d = common::tmp("dl-weights");
    let pt = fixture_pt(&shared);
    let srv = Server::start(vec![("/v8.4.0/yolo11n.pt", pt.clone(), Mode::Plain)]);
    isolate(&d, &srv.base);
    let loaded = ryolo::weights::load_model("yolo11n.pt", None, tch::Device::Cpu).unwrap();
    assert_eq!(loaded.model.names, ["negative", "positive"]);
    let saved = d.join("weights/yolo11n.pt");
    assert_eq!(std::fs::read(&saved).unwrap(), pt);
    assert_eq!(
        names_in(&d.join("weights")),
        ["yolo11n.pt"],
        "no partial file left"
    );
    // A second load finds it in weights_dir: no new request.
    ryolo::weights::load_model("yolo11n.pt", None, tch::Device::Cpu).unwrap();
    assert_eq!(srv.requests("/v8.4.0/yolo11n.pt").len(), 1);
    // An absent non-official name stays "not found", without asking the server.
    let e = ryolo::weights::load_model("mymodel.pt", None, tch::Device::Cpu).unwrap_err();
    assert!(format!("{e:#}").contains("not found"), "{e:#}");
    assert!(srv.requests("/v8.4.0/mymodel.pt").is_empty());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_dropped_transfer_resumes_with_a_range_request() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = common::tmp("dl-resume");
    let pt = fixture_pt(&shared);
    let cut = 1_000_000;
    let srv = Server::start(vec![("/a/yolo11n.pt", pt.clone(), Mode::DropFirstAt(cut))]);
    let dest = d.join("w/yolo11n.pt");
    ryolo::hub::assets::fetch_weights(&format!("{}/a/yolo11n.pt", srv.base), &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), pt);
    assert_eq!(
        srv.requests("/a/yolo11n.pt"),
        [None, Some(format!("bytes={cut}-"))]
    );
    assert_eq!(names_in(&d.join("w")), ["yolo11n.pt"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn lying_sizes_and_garbage_are_refused_and_leave_nothing() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = common::tmp("dl-bad");
    let pt = fixture_pt(&shared);
    let mut x = 1u64;
    let garbage: Vec<u8> = (0..300_000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect();
    let srv = Server::start(vec![
        ("/longer.pt", pt.clone(), Mode::Longer(1000)),
        ("/garbage.pt", garbage, Mode::Plain),
        ("/short.pt", pt[..pt.len() / 2].to_vec(), Mode::Plain),
        (
            "/page.pt",
            b"<html>rate limited</html>".to_vec(),
            Mode::Plain,
        ),
    ]);
    let cases = [
        ("/longer.pt", "retry limit reached"),
        ("/garbage.pt", "damaged"),
        ("/short.pt", "damaged"),
        ("/page.pt", "at least 100000"),
        ("/missing.pt", "HTTP 404"),
    ];
    for (path, why) in cases {
        let url = format!("{}{path}", srv.base);
        let dest = d.join("w/x.pt");
        let e = ryolo::hub::assets::fetch_weights(&url, &dest).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains(&url) && msg.contains(why), "{path}: {msg}");
        assert!(
            names_in(&d.join("w")).is_empty(),
            "{path} left files behind"
        );
    }
    // The lying server was asked again with Range after each short body (3 retries).
    assert_eq!(srv.requests("/longer.pt").len(), 4);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn offline_is_one_line_naming_the_url_and_where_to_put_the_file() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let d = common::tmp("dl-offline");
    let base = closed_port_url();
    isolate(&d, &base);
    let t = std::time::Instant::now();
    let e = ryolo::weights::load_model("yolov8s-seg.pt", None, tch::Device::Cpu).unwrap_err();
    let msg = format!("{e:#}");
    let url = format!("{base}/v8.4.0/yolov8s-seg.pt");
    let target = d.join("weights/yolov8s-seg.pt");
    eprintln!("{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.contains(&url), "{msg}");
    assert!(msg.contains(&target.display().to_string()), "{msg}");
    assert!(msg.contains("offline"), "{msg}");
    assert!(t.elapsed().as_secs() < 10, "offline must fail fast");
    assert!(names_in(&d.join("weights")).is_empty());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn builtin_coco8_yaml_downloads_and_unzips_into_datasets_dir() {
    let Some(shared) = common::shared() else {
        return;
    };
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let d = common::tmp("dl-coco8");
    let srv = Server::start(vec![("/v0.0.0/coco8.zip", coco8_zip(&shared), Mode::Plain)]);
    isolate(&d, &srv.base);
    let dc = ryolo::data::load_data_yaml(Path::new("coco8.yaml")).unwrap();
    let root = d.join("datasets/coco8");
    assert_eq!(dc.root, root);
    assert_eq!(dc.nc(), 80);
    assert_eq!(dc.names[0], "person");
    for split in ["train", "val"] {
        let imgs = ryolo::data::list_images(dc.split(split).unwrap()).unwrap();
        assert_eq!(imgs.len(), 2, "{split}");
        let s = ryolo::data::scan(split, &imgs, dc.nc(), false);
        assert_eq!(s.entries.len(), 2, "{split}: labels found");
    }
    assert_eq!(
        names_in(&d.join("datasets")),
        ["coco8"],
        "zip and staging removed, no __MACOSX"
    );
    // Present now: loading again asks nothing.
    ryolo::data::load_data_yaml(Path::new("coco8")).unwrap();
    assert_eq!(srv.requests("/v0.0.0/coco8.zip").len(), 1);
    // A script-only built-in says to fetch it by hand, naming it, without any request.
    let e = ryolo::data::load_data_yaml(Path::new("coco.yaml")).unwrap_err();
    let msg = format!("{e:#}");
    eprintln!("{msg}");
    assert!(
        msg.contains("coco.yaml") && msg.contains("by hand"),
        "{msg}"
    );
    // Offline: one line naming the zip URL and where the dataset goes.
    isolate(&d, &closed_port_url());
    let e = ryolo::data::load_data_yaml(Path::new("dota8.yaml")).unwrap_err();
    let msg = format!("{e:#}");
    eprintln!("{msg}");
    assert!(
        !msg.contains('\n') && msg.contains("/v0.0.0/dota8.zip"),
        "{msg}"
    );
    assert!(
        msg.contains(&d.join("datasets/dota8").display().to_string()),
        "{msg}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn unsafe_archives_are_refused() {
    let d = common::tmp("dl-unsafe");
    let write_zip = |name: &str, entries: &[(&str, Vec<u8>)], method| {
        let p = d.join(name);
        let mut w = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
        let opt = zip::write::SimpleFileOptions::default().compression_method(method);
        for (n, b) in entries {
            w.start_file(*n, opt).unwrap();
            w.write_all(b).unwrap();
        }
        w.finish().unwrap();
        p
    };
    let stored = zip::CompressionMethod::Stored;
    let deflated = zip::CompressionMethod::Deflated;
    let into = d.join("datasets");
    std::fs::create_dir_all(&into).unwrap();
    let cases = [
        (
            write_zip(
                "evil.zip",
                &[("ok/a.txt", b"a".to_vec()), ("../evil.txt", b"x".to_vec())],
                stored,
            ),
            5000,
            "outside",
        ),
        (
            write_zip(
                "bomb.zip",
                &[("b/zeros.bin", vec![0u8; 20 << 20])],
                deflated,
            ),
            1 << 30,
            "zip bomb",
        ),
        (
            write_zip(
                "big.zip",
                &[("c/a.bin", vec![7u8; 4096]), ("c/b.bin", vec![9u8; 4096])],
                stored,
            ),
            5000,
            "more than 5000 bytes",
        ),
    ];
    for (zip_path, cap, why) in cases {
        let e = ryolo::hub::datasets::unzip(&zip_path, &into, cap).unwrap_err();
        assert!(
            format!("{e:#}").contains(why),
            "{}: {e:#}",
            zip_path.display()
        );
        assert!(names_in(&into).is_empty(), "{}", zip_path.display());
    }
    assert!(!d.join("evil.txt").exists());
    // Several top-level entries land in a folder named after the archive.
    let flat = write_zip(
        "flat.zip",
        &[("a.txt", b"a".to_vec()), ("b.txt", b"b".to_vec())],
        stored,
    );
    let out = ryolo::hub::datasets::unzip(&flat, &into, 5000).unwrap();
    assert_eq!(out, into.join("flat"));
    assert_eq!(std::fs::read(out.join("b.txt")).unwrap(), b"b");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn classify_datasets_are_folders_fetched_by_name() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let d = common::tmp("dl-cls");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opt = zip::write::SimpleFileOptions::default();
    for f in ["mnist160/train/0/a.png", "mnist160/test/0/b.png"] {
        w.start_file(f, opt).unwrap();
        w.write_all(b"png").unwrap();
    }
    let zip = w.finish().unwrap().into_inner();
    let srv = Server::start(vec![("/v0.0.0/mnist160.zip", zip, Mode::Plain)]);
    isolate(&d, &srv.base);
    let datasets = d.join("datasets");
    let root = ryolo::hub::datasets::classify_dataset_in("mnist160", &datasets).unwrap();
    assert_eq!(root, datasets.join("mnist160"));
    assert!(root.join("train/0/a.png").is_file());
    let e = ryolo::hub::datasets::classify_dataset_in("imagenet", &datasets).unwrap_err();
    assert!(format!("{e:#}").contains("by hand"), "{e:#}");
    std::fs::remove_dir_all(&d).unwrap();
}
