//! Video files, webcams and network streams, decoded and encoded by an `ffmpeg` process (raw RGB
//! frames through pipes).
//!
//! `ffmpeg` is found from `FFMPEG_BINARY`, else the one `scripts/setup.sh` linked at `.venv/ffmpeg`
//! (the static build of the PyPI `imageio-ffmpeg` wheel), else `ffmpeg` on the `PATH`.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;

/// Video file extensions (Ultralytics' list).
pub const VID_FORMATS: &[&str] = &[
    "asf", "avi", "gif", "m4v", "mkv", "mov", "mp4", "mpeg", "mpg", "ts", "wmv", "webm",
];

/// True for a path with a video extension.
pub fn is_video(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VID_FORMATS.contains(&e.to_ascii_lowercase().as_str()))
}

/// True for a webcam index (`0`), a device (`/dev/video0`) or a stream URL.
pub fn is_stream(source: &str) -> bool {
    let s = source.to_ascii_lowercase();
    source.parse::<u32>().is_ok()
        || source.starts_with("/dev/video")
        || [
            "rtsp://", "rtmp://", "http://", "https://", "tcp://", "udp://",
        ]
        .iter()
        .any(|p| s.starts_with(p))
}

/// True for a live source (webcam, or a URL that is not a video file): frames arrive in real time
/// and stale ones are dropped unless `stream_buffer`. A URL to a video file is read in full, as
/// Ultralytics does.
pub fn is_live(source: &str) -> bool {
    let path = source.split(['?', '#']).next().unwrap_or(source);
    is_stream(source) && !is_video(Path::new(path))
}

/// The `ffmpeg` executable to run.
pub fn ffmpeg_path() -> PathBuf {
    crate::util::locate("FFMPEG_BINARY", option_env!("RYOLO_FFMPEG"), "ffmpeg")
}

fn ffmpeg() -> Command {
    let mut c = Command::new(ffmpeg_path());
    c.args(["-hide_banner", "-nostdin"]);
    c
}

fn missing(e: std::io::Error) -> anyhow::Error {
    anyhow!(
        "cannot run ffmpeg ({}): {e}; videos need it: run scripts/setup.sh, install ffmpeg, or set \
         FFMPEG_BINARY",
        ffmpeg_path().display()
    )
}

/// What ffmpeg reports about a source's first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second (30 when unknown).
    pub fps: f64,
    /// Estimated frame count (duration x fps), 0 for live streams.
    pub frames: usize,
}

/// Parses `ffmpeg -i` output: the first `Video:` stream's size and rate, and the duration.
pub fn parse_info(text: &str) -> Option<VideoInfo> {
    let line = text
        .lines()
        .find(|l| l.contains("Stream #") && l.contains("Video:"))?;
    let size = regex::Regex::new(r"[ ,](\d{2,5})x(\d{2,5})[ ,\[]").ok()?;
    let padded = format!("{line} ");
    let c = size.captures(&padded)?;
    let (width, height) = (c[1].parse().ok()?, c[2].parse().ok()?);
    let rate = |unit: &str| {
        regex::Regex::new(&format!(r"([\d.]+)(k?) {unit}"))
            .ok()?
            .captures(line)
            .and_then(|c| {
                let v: f64 = c[1].parse().ok()?;
                Some(if &c[2] == "k" { v * 1000.0 } else { v })
            })
    };
    let fps = rate("fps")
        .or_else(|| rate("tbr"))
        .filter(|f| *f > 0.0 && f.is_finite())
        .unwrap_or(30.0);
    let dur = regex::Regex::new(r"Duration: (\d+):(\d+):([\d.]+)")
        .ok()?
        .captures(text)
        .and_then(|c| {
            Some(
                c[1].parse::<f64>().ok()? * 3600.0
                    + c[2].parse::<f64>().ok()? * 60.0
                    + c[3].parse::<f64>().ok()?,
            )
        });
    let frames = dur.map(|d| (d * fps).round() as usize).unwrap_or(0);
    Some(VideoInfo {
        width,
        height,
        fps,
        frames,
    })
}

/// ffmpeg input arguments for a source: a file, a webcam index / device, or a URL.
fn input_args(source: &str) -> Vec<String> {
    if let Ok(i) = source.parse::<u32>() {
        vec![
            "-f".into(),
            "v4l2".into(),
            "-i".into(),
            format!("/dev/video{i}"),
        ]
    } else if source.starts_with("/dev/video") {
        vec!["-f".into(), "v4l2".into(), "-i".into(), source.into()]
    } else if is_live(source) {
        // Live streams: start from what arrives now rather than analysing seconds of input.
        [
            "-fflags",
            "nobuffer",
            "-analyzeduration",
            "1000000",
            "-probesize",
            "1000000",
            "-i",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([source.to_string()])
        .collect()
    } else {
        vec!["-i".into(), source.into()]
    }
}

/// Reads a source's video stream properties.
pub fn probe(source: &str) -> Result<VideoInfo> {
    if !is_stream(source) && !Path::new(source).is_file() {
        bail!("video {source} not found");
    }
    let out = ffmpeg()
        .args(input_args(source))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(missing)?;
    let text = String::from_utf8_lossy(&out.stderr);
    parse_info(&text).ok_or_else(|| {
        let last = text.lines().last().unwrap_or("").trim();
        anyhow!("{source}: no video stream found by ffmpeg ({last})")
    })
}

/// Decoded RGB frames of a video file, webcam or stream, in order.
pub struct VideoReader {
    /// Stream properties.
    pub info: VideoInfo,
    /// The source as given.
    pub source: String,
    child: Child,
    frames: mpsc::Receiver<Result<Vec<u8>>>,
    /// Frames read so far (1-based number of the last one returned).
    pub frame: usize,
}

impl VideoReader {
    /// Starts decoding. Live sources (webcam, URL) keep only the newest frame unless
    /// `stream_buffer` (then up to 30 frames wait, as Ultralytics' buffer).
    pub fn open(source: &str, stream_buffer: bool) -> Result<Self> {
        let info = probe(source)?;
        let mut child = ffmpeg()
            .args(["-loglevel", "error"])
            .args(input_args(source))
            .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(missing)?;
        let mut out: ChildStdout = child.stdout.take().context("ffmpeg stdout")?;
        let size = info.width as usize * info.height as usize * 3;
        let live = is_live(source);
        // Files: a small queue keeps decoding ahead. Live: drop stale frames unless buffering.
        let cap = if live && !stream_buffer { 1 } else { 30 };
        let (tx, rx) = mpsc::sync_channel::<Result<Vec<u8>>>(cap);
        std::thread::spawn(move || loop {
            let mut buf = vec![0u8; size];
            match out.read_exact(&mut buf) {
                Ok(()) => {
                    if live && !stream_buffer {
                        // Newest frame wins: skip it when the consumer has not taken the last.
                        match tx.try_send(Ok(buf)) {
                            Ok(()) | Err(mpsc::TrySendError::Full(_)) => {}
                            Err(mpsc::TrySendError::Disconnected(_)) => return,
                        }
                    } else if tx.send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
                Err(e) => {
                    let _ = tx.send(Err(anyhow!("reading frames: {e}")));
                    return;
                }
            }
        });
        Ok(Self {
            info,
            source: source.into(),
            child,
            frames: rx,
            frame: 0,
        })
    }
}

impl Iterator for VideoReader {
    type Item = Result<image::RgbImage>;

    fn next(&mut self) -> Option<Self::Item> {
        let buf = match self.frames.recv().ok()? {
            Ok(b) => b,
            Err(e) => return Some(Err(e.context(format!("video {}", self.source)))),
        };
        self.frame += 1;
        image::RgbImage::from_raw(self.info.width, self.info.height, buf)
            .map(Ok)
            .or_else(|| Some(Err(anyhow!("frame of the wrong size"))))
    }
}

impl Drop for VideoReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes RGB frames to a video file (MJPG in `.avi`, as Ultralytics on Linux; H.264 for `.mp4`).
pub struct VideoWriter {
    child: Child,
    stdin: Option<ChildStdin>,
    size: (u32, u32),
    /// The file being written.
    pub path: PathBuf,
}

impl VideoWriter {
    /// Starts an encoder for `width x height` frames at `fps`.
    pub fn create(path: &Path, width: u32, height: u32, fps: f64) -> Result<Self> {
        // Encoders want even sizes; odd frames get one padded column/row.
        let codec: &[&str] = if path.extension().and_then(|e| e.to_str()) == Some("mp4") {
            &[
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            ]
        } else {
            &[
                "-c:v",
                "mjpeg",
                "-q:v",
                "3",
                "-pix_fmt",
                "yuvj420p",
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            ]
        };
        let mut child = ffmpeg()
            .args([
                "-loglevel",
                "error",
                "-y",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
            ])
            .args(["-s", &format!("{width}x{height}"), "-r", &format!("{fps}")])
            .args(["-i", "-"])
            .args(codec)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(missing)?;
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            size: (width, height),
            path: path.to_path_buf(),
        })
    }

    /// Appends a frame (must have the writer's size).
    pub fn write(&mut self, frame: &image::RgbImage) -> Result<()> {
        if frame.dimensions() != self.size {
            bail!(
                "frame {:?} does not match the video size {:?}",
                frame.dimensions(),
                self.size
            );
        }
        self.stdin
            .as_mut()
            .context("writer closed")?
            .write_all(frame.as_raw())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Flushes and waits for the encoder.
    pub fn finish(mut self) -> Result<()> {
        self.close()
    }

    fn close(&mut self) -> Result<()> {
        if let Some(s) = self.stdin.take() {
            drop(s);
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let st = self.child.wait()?;
            if !st.success() {
                bail!(
                    "ffmpeg failed writing {}: {}",
                    self.path.display(),
                    err.trim()
                );
            }
        }
        Ok(())
    }
}

impl Drop for VideoWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ffmpeg_stream_lines() {
        let t = "  Duration: 00:00:30.16, start: 0.000000, bitrate: 745 kb/s\n  Stream #0:0[0x1](eng): Video: h264 (Baseline) (avc1 / 0x31637661), yuv420p(tv, smpte170m, progressive), 768x432, 614 kb/s, 12.50 fps, 12.50 tbr, 25k tbn (default)\n";
        let i = parse_info(t).unwrap();
        assert_eq!((i.width, i.height, i.fps, i.frames), (768, 432, 12.5, 377));
        let t = "Stream #0:0: Video: rawvideo (YUY2 / 0x32595559), yuyv422, 640x480, 147456 kb/s, 30 fps, 30 tbr, 1000k tbn\n";
        let i = parse_info(t).unwrap();
        assert_eq!((i.width, i.height, i.fps, i.frames), (640, 480, 30.0, 0));
        assert!(parse_info("Stream #0:1: Audio: aac").is_none());
    }

    #[test]
    fn sources_are_classified() {
        assert!(is_stream("0") && is_stream("rtsp://cam/1") && is_stream("/dev/video2"));
        assert!(
            !is_stream("a.mp4") && is_video(Path::new("a.MP4")) && !is_video(Path::new("a.jpg"))
        );
        assert!(is_live("0") && is_live("rtsp://cam/1") && !is_live("https://x.org/v.mp4?t=1"));
    }
}
