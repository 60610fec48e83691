//! One robust HTTP(S) download: a hidden `.part` file beside the target, resumed with a `Range`
//! request after a broken transfer, checked against the announced size and by the caller's
//! content check, then renamed into place. Nothing half-written is ever left under the target's
//! name, and every error names the URL.

use anyhow::{anyhow, bail, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Attempts after the first one (Ultralytics' `retry=3`).
const RETRIES: usize = 3;

/// What a download is for: where it goes and how its bytes are judged.
pub struct Request<'a> {
    /// The URL.
    pub url: &'a str,
    /// The final file (written only once complete and checked).
    pub dest: &'a Path,
    /// A complete file smaller than this is refused (an error page, not the asset).
    pub min_bytes: u64,
    /// The content check of the complete file (e.g. "is a zip"); an error deletes it.
    pub verify: &'a dyn Fn(&Path) -> Result<()>,
    /// What to tell a user who must fetch the file by hand (ends the offline error).
    pub by_hand: &'a str,
}

/// How one attempt ended when it did not complete.
enum Failure {
    /// The host could not be reached at all (no DNS, refused, unreachable): likely offline.
    Unreachable(String),
    /// An answer that will not change on retry (a 4xx status).
    Final(String),
    /// The server is busy (5xx, 408, 429): worth another try after a pause.
    Busy(String),
    /// Worth another try at once (a dropped connection, a short body).
    Retry(String),
}

/// The client: proxies from the environment, no transparent decompression (so `Content-Length`
/// and `Range` describe the stored bytes), bounded connect and read stalls.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .user_agent(format!("ryolo/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The hidden partial file of a target: `.<name>.part` in the same folder (same filesystem, so
/// the final rename is atomic).
pub fn part_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "download".into());
    dest.with_file_name(format!(".{name}.part"))
}

/// Sorts a transport error: unreachable hosts, final answers and transient faults.
fn classify(e: ureq::Error) -> Failure {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::StatusCode(c) if c < 500 && ![408, 416, 429].contains(&c) => {
            Failure::Final(format!("HTTP {c}"))
        }
        ureq::Error::StatusCode(c) => Failure::Busy(format!("HTTP {c}")),
        ureq::Error::HostNotFound => Failure::Unreachable("host not found".into()),
        ureq::Error::ConnectionFailed => Failure::Unreachable("connection failed".into()),
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::NotConnected
                    | K::AddrNotAvailable
                    | K::NetworkUnreachable
                    | K::HostUnreachable
            ) =>
        {
            Failure::Unreachable(io.to_string())
        }
        ureq::Error::Timeout(t) if t.to_string().contains("connect") => {
            Failure::Unreachable(format!("timeout ({t})"))
        }
        other => Failure::Retry(other.to_string()),
    }
}

/// The total size a response announces: `Content-Range: bytes a-b/TOTAL` on a 206, else
/// `Content-Length`.
fn announced_total(resp: &ureq::http::Response<ureq::Body>, resume: u64) -> Option<u64> {
    let h = |k: &str| {
        resp.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if resp.status() == ureq::http::StatusCode::PARTIAL_CONTENT {
        let range = h("content-range")?;
        let total = range.rsplit('/').next()?.trim().parse().ok();
        let start: Option<u64> = range
            .trim_start_matches("bytes")
            .trim()
            .split('-')
            .next()
            .and_then(|s| s.trim().parse().ok());
        return (start == Some(resume)).then_some(total).flatten();
    }
    h("content-length").and_then(|v| v.trim().parse().ok())
}

/// One attempt: asks for the bytes after what `part` holds and appends them. Returns the total
/// size the server announced (0 when unknown).
fn attempt(agent: &ureq::Agent, url: &str, part: &Path, known_total: u64) -> Result<u64, Failure> {
    let resume = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent.get(url).header("Accept-Encoding", "identity");
    if resume > 0 {
        req = req.header("Range", format!("bytes={resume}-"));
    }
    let mut resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::StatusCode(416)) => {
            // Nothing left to resume from that offset: start over next time.
            let _ = std::fs::remove_file(part);
            return Err(Failure::Retry("HTTP 416 (range not satisfiable)".into()));
        }
        Err(e) => return Err(classify(e)),
    };
    let partial = resp.status() == ureq::http::StatusCode::PARTIAL_CONTENT;
    let total = announced_total(&resp, resume);
    if partial && total.is_none() {
        // A 206 for another offset (or without a total): restart from scratch.
        let _ = std::fs::remove_file(part);
        return Err(Failure::Retry(
            "the server answered another byte range".into(),
        ));
    }
    let total = total.unwrap_or(known_total);
    let append = partial && resume > 0;
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(|e| Failure::Final(format!("cannot write {}: {e}", part.display())))?;
    let start = if append { resume } else { 0 };
    let pb = progress(total, start, url);
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                pb.abandon();
                return Err(Failure::Retry(format!("transfer interrupted: {e}")));
            }
        };
        out.write_all(&buf[..n])
            .map_err(|e| Failure::Final(format!("cannot write {}: {e}", part.display())))?;
        pb.inc(n as u64);
    }
    pb.finish_and_clear();
    out.flush()
        .map_err(|e| Failure::Final(format!("cannot write {}: {e}", part.display())))?;
    Ok(total)
}

/// A byte progress bar (drawn only on a terminal) in the shared style.
fn progress(total: u64, start: u64, url: &str) -> indicatif::ProgressBar {
    let name = url.rsplit('/').next().unwrap_or(url);
    let pb = crate::util::progress_bar(total as usize, &format!("Downloading {name}"));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix}: {percent:>3}% {bar:20} {bytes}/{total_bytes} {binary_bytes_per_sec} [{elapsed}<{eta}]",
    ) {
        pb.set_style(style.progress_chars("━━─"));
    }
    pb.set_position(start);
    pb
}

/// Downloads `req.url` to `req.dest`: retries (resuming with `Range`) after a broken transfer or
/// a 5xx, checks the size against what the server announced and `min_bytes`, runs `verify`, then
/// renames into place. An unreachable host fails at once with one line that names the URL, the
/// likely cause (offline) and what to do by hand.
pub fn download(req: &Request) -> Result<()> {
    let url = req.url;
    if let Some(dir) = req.dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow!("cannot create {} for {url}: {e}", dir.display()))?;
    }
    let part = part_path(req.dest);
    eprintln!("Downloading {url} to '{}'...", req.dest.display());
    let agent = agent();
    let mut total = 0u64;
    let mut last = String::new();
    let mut busy = false;
    for i in 0..=RETRIES {
        match attempt(&agent, url, &part, total) {
            Ok(t) => {
                total = t.max(total);
                let size = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
                if total > 0 && size > total {
                    let _ = std::fs::remove_file(&part);
                    last = format!("got {size} bytes, more than the {total} announced");
                } else if total > 0 && size < total {
                    last = format!("partial download: {size} of {total} bytes");
                } else if size < req.min_bytes {
                    let _ = std::fs::remove_file(&part);
                    bail!("Download failure for {url}: got {size} bytes, expected at least {} (not the file asked for?)", req.min_bytes);
                } else {
                    return finish(req, &part);
                }
            }
            Err(Failure::Unreachable(why)) if i == 0 => {
                // A partial file from an earlier run stays for a later resume.
                bail!(
                    "Download failure for {url} ({why}); the environment may be offline. {}",
                    req.by_hand
                );
            }
            Err(Failure::Final(why)) => {
                let _ = std::fs::remove_file(&part);
                bail!("Download failure for {url}: {why}. {}", req.by_hand);
            }
            Err(Failure::Busy(why)) => {
                last = why;
                busy = true;
            }
            Err(Failure::Unreachable(why) | Failure::Retry(why)) => last = why,
        }
        if i < RETRIES {
            eprintln!(
                "WARNING Download failure, retrying {}/{RETRIES} {url}: {last}",
                i + 1
            );
            if std::mem::take(&mut busy) {
                // The server asked for patience: back off (2, 4, 8 s) before asking again.
                std::thread::sleep(Duration::from_secs(2 << i));
            }
        }
    }
    let _ = std::fs::remove_file(&part);
    bail!(
        "Download failure for {url}: retry limit reached ({last}). {}",
        req.by_hand
    )
}

/// Checks the complete `.part` file and renames it onto the target; a failed check deletes it.
fn finish(req: &Request, part: &Path) -> Result<()> {
    if let Err(e) = (req.verify)(part) {
        let _ = std::fs::remove_file(part);
        bail!(
            "Download failure for {}: the file is damaged ({e:#}); nothing was saved. {}",
            req.url,
            req.by_hand
        );
    }
    std::fs::rename(part, req.dest).map_err(|e| {
        let _ = std::fs::remove_file(part);
        anyhow!(
            "renaming {} to {} after downloading {}: {e}",
            part.display(),
            req.dest.display(),
            req.url
        )
    })
}

/// Whether a file is a readable zip archive (the container of a PyTorch `.pt` and of dataset
/// archives): the central directory parses.
pub fn is_zip(path: &Path) -> Result<()> {
    let f = File::open(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    zip::ZipArchive::new(f).map_err(|e| anyhow!("not a zip archive ({e})"))?;
    Ok(())
}
