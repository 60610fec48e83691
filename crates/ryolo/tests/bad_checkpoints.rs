//! Truncated, malformed and malicious checkpoint files give clear errors, never a panic.

mod common;
use ryolo::weights::load_model;
use std::io::Write;
use tch::Device;

fn err_of(bytes: &[u8], name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("ryolo-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let e = load_model(p.to_str().unwrap(), None, Device::Cpu).unwrap_err();
    format!("{e:#}")
}

fn zip_with_pickle(pkl: &[u8]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("evil/data.pkl", opts).unwrap();
        z.write_all(pkl).unwrap();
        z.finish().unwrap();
    }
    buf.into_inner()
}

#[test]
fn empty_and_garbage_files() {
    let e = err_of(b"", "empty.pt");
    assert!(
        e.contains("empty.pt") && e.contains("not a PyTorch zip"),
        "{e}"
    );
    let e = err_of(b"hello, I am not a checkpoint", "text.pt");
    assert!(e.contains("not a PyTorch zip"), "{e}");
    let e = err_of(b"garbage", "x.safetensors");
    assert!(
        e.contains("x.safetensors") && e.contains("safetensors"),
        "{e}"
    );
}

#[test]
fn malicious_pickle_is_refused_not_run() {
    let marker = std::env::temp_dir().join("ryolo-pwned-marker");
    let _ = std::fs::remove_file(&marker);
    let cmd = format!("touch {}", marker.display());
    let mut pkl = b"\x80\x02cposix\nsystem\nq\x00X".to_vec();
    pkl.extend((cmd.len() as u32).to_le_bytes());
    pkl.extend(cmd.as_bytes());
    pkl.extend(b"\x85R.");
    let e = err_of(&zip_with_pickle(&pkl), "evil.pt");
    assert!(e.contains("refusing pickle global 'posix.system'"), "{e}");
    assert!(!marker.exists(), "the payload ran");
}

#[test]
fn pickle_without_a_model() {
    let e = err_of(&zip_with_pickle(b"\x80\x02}q\x00."), "nomodel.pt");
    assert!(e.contains("no 'ema' or 'model'"), "{e}");
}

#[test]
fn truncated_real_checkpoint() {
    let Some(shared) = common::shared() else {
        return;
    };
    let full = std::fs::read(shared.join("fixtures/ultralytics/bt_yolo11n_best.pt")).unwrap();
    for cut in [100, full.len() / 2, full.len() - 100] {
        let e = err_of(&full[..cut], "truncated.pt");
        assert!(e.contains("truncated.pt"), "cut {cut}: {e}");
    }
}
