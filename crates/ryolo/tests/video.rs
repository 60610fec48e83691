//! Video sources through ffmpeg: every frame of the sample videos is decoded, annotated videos are
//! written and read back, and prediction streams frames with `vid_stride`.

mod common;
use ryolo::data::video::{probe, VideoReader, VideoWriter};
use ryolo::engine::predict::Predictor;
use tch::Device;

#[test]
fn sample_video_decodes_every_frame() {
    let Some(shared) = common::shared() else {
        return;
    };
    // SOURCE.md: 768x432, 12.5 fps, 377 frames.
    let src = shared.join("datasets/samples/car-detection.mp4");
    let src = src.to_str().unwrap();
    let info = probe(src).unwrap();
    assert_eq!((info.width, info.height, info.fps), (768, 432, 12.5));
    let mut n = 0;
    let mut mean_first = 0.0;
    for f in VideoReader::open(src, false).unwrap() {
        let f = f.unwrap();
        assert_eq!(f.dimensions(), (768, 432));
        if n == 0 {
            mean_first = f.as_raw().iter().map(|&v| v as f64).sum::<f64>() / f.len() as f64;
        }
        n += 1;
    }
    assert_eq!(n, 377);
    assert!(
        mean_first > 20.0,
        "first frame is not black: mean {mean_first}"
    );
}

#[test]
fn written_video_reads_back() {
    if common::shared().is_none() {
        return;
    }
    let d = common::tmp("video-write");
    let out = d.join("out.avi");
    let (w, h) = (161u32, 99u32); // odd sizes are padded to even by the encoder
    let mut wr = VideoWriter::create(&out, w, h, 10.0).unwrap();
    for i in 0..7u32 {
        let img = image::RgbImage::from_fn(w, h, |x, _| {
            image::Rgb([(i * 30) as u8, (x % 256) as u8, 128])
        });
        wr.write(&img).unwrap();
    }
    assert!(wr.write(&image::RgbImage::new(10, 10)).is_err());
    wr.finish().unwrap();
    let frames: Vec<_> = VideoReader::open(out.to_str().unwrap(), false)
        .unwrap()
        .map(|f| f.unwrap())
        .collect();
    assert_eq!(frames.len(), 7);
    assert_eq!(frames[0].dimensions(), (162, 100));
    // MJPG is lossy: the red channel that encodes the frame index survives within a few levels.
    for (i, f) in frames.iter().enumerate() {
        let r = f.get_pixel(40, 50)[0] as i32;
        assert!((r - i as i32 * 30).abs() <= 12, "frame {i}: red {r}");
    }
}

#[test]
fn a_missing_or_broken_video_is_a_clear_error() {
    if common::shared().is_none() {
        return;
    }
    let d = common::tmp("video-bad");
    let e = VideoReader::open(d.join("nope.mp4").to_str().unwrap(), false)
        .err()
        .unwrap();
    assert!(format!("{e:#}").contains("not found"), "{e:#}");
    let bad = d.join("bad.mp4");
    std::fs::write(&bad, b"not a video at all").unwrap();
    let e = VideoReader::open(bad.to_str().unwrap(), false)
        .err()
        .unwrap();
    assert!(format!("{e:#}").contains("bad.mp4"), "{e:#}");
}

#[test]
fn predict_video_streams_strided_frames() {
    let Some(shared) = common::shared() else {
        return;
    };
    let p = Predictor::load(
        shared
            .join("fixtures/ultralytics/bt_yolo11n_best.pt")
            .to_str()
            .unwrap(),
        320,
        Device::Cpu,
    )
    .unwrap();
    let src = shared.join("datasets/samples/car-detection.mp4");
    let frames: Vec<usize> = p
        .predict_video(src.to_str().unwrap(), 50, false)
        .unwrap()
        .map(|r| {
            let (n, img, pred) = r.unwrap();
            assert_eq!(img.dimensions(), (768, 432));
            assert_eq!(pred.letterbox.shape, (192, 320));
            n
        })
        .collect();
    assert_eq!(frames, vec![1, 51, 101, 151, 201, 251, 301, 351]);
}

#[test]
fn a_video_file_over_http_is_read_in_full() {
    let Some(shared) = common::shared() else {
        return;
    };
    // Serve the sample video over HTTP with the venv's Python (installed by scripts/setup.sh).
    let py = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    if !py.exists() {
        eprintln!("\n!!!!! SKIPPED: .venv/bin/python not found (run scripts/setup.sh) !!!!!\n");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(py)
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--directory")
        .arg(shared.join("datasets/samples"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}/car-detection.mp4");
    assert!(ryolo::data::video::is_stream(&url));
    assert!(!ryolo::data::video::is_live(&url));
    let n = VideoReader::open(&url, false).map(|r| r.count());
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(n.unwrap(), 377);
}

#[test]
fn a_live_udp_stream_delivers_frames() {
    let Some(shared) = common::shared() else {
        return;
    };
    let ffmpeg = ryolo::data::video::ffmpeg_path();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A real-time MPEG-TS stream (frequent key frames), as a camera or encoder would send it.
    let mut server = std::process::Command::new(&ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(shared.join("datasets/samples/car-detection.mp4"))
        .args([
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-g",
            "5",
            "-f",
            "mpegts",
            &format!("udp://127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("udp://127.0.0.1:{port}");
    assert!(ryolo::data::video::is_live(&url));
    let result = VideoReader::open(&url, false).map(|r| {
        r.take(8)
            .map(|f| f.map(|f| f.dimensions()))
            .collect::<Vec<_>>()
    });
    let _ = server.kill();
    let _ = server.wait();
    let frames = result.unwrap();
    assert_eq!(frames.len(), 8);
    for f in frames {
        assert_eq!(f.unwrap(), (768, 432));
    }
}
