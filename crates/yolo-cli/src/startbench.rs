//! `yolo bench start`: whole commands (`yolo version`, `yolo help`, a `yolo predict`, an anchor
//! command) timed as fresh processes, wall time and peak memory over several runs. It runs in the
//! launcher: a child's peak memory counts its parent's at spawn, so the parent must be small.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The arguments after `bench start`, when the command line is one.
pub fn command(argv: &[String]) -> Option<&[String]> {
    match argv {
        [b, s, rest @ ..] if b == "bench" && s == "start" => Some(rest),
        _ => None,
    }
}

/// What `bench start` was asked: `model=`, `source=`, `anchor=` and `n=` (runs, default 5).
#[derive(Debug, Default, PartialEq)]
pub struct StartArgs {
    pub model: Option<String>,
    pub source: Option<String>,
    pub anchor: Option<String>,
    pub runs: usize,
}

impl StartArgs {
    /// Reads `key=value` words; other keys are named in a warning, a bad `n` is an error.
    pub fn parse(words: &[String]) -> Result<Self> {
        let mut a = StartArgs {
            runs: 5,
            ..Default::default()
        };
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                bail!("bench start: '{w}' is not key=value (keys: model, source, anchor, n)");
            };
            let v = v.trim_matches(|c| c == '\'' || c == '"').to_string();
            match k {
                "model" => a.model = Some(v),
                "source" => a.source = Some(v),
                "anchor" => a.anchor = Some(v),
                "n" => {
                    a.runs = v
                        .parse()
                        .ok()
                        .filter(|&n| (1..=1000).contains(&n))
                        .ok_or_else(|| {
                            anyhow::anyhow!("bench start: n={v} is not a run count in 1..=1000")
                        })?
                }
                _ => eprintln!(
                    "WARNING bench start: '{k}' is not used (keys: model, source, anchor, n)"
                ),
            }
        }
        if a.model.is_some() != a.source.is_some() {
            bail!("bench start: the predict row needs both model= and source=");
        }
        Ok(a)
    }
}

/// Times `yolo version`, `yolo help`, with a model and source a whole `yolo predict` (its results
/// in a temporary folder), then the anchor through `sh -c`; prints one line each.
pub fn run(words: &[String]) -> Result<()> {
    let a = StartArgs::parse(words)?;
    let me = std::env::current_exe().context("bench start: locating this `yolo`")?;
    let yolo = std::fs::canonicalize(&me)
        .unwrap_or(me)
        .display()
        .to_string();
    let mut rows: Vec<(String, Vec<String>)> = ["version", "help"]
        .iter()
        .map(|c| (format!("yolo {c}"), vec![yolo.clone(), c.to_string()]))
        .collect();
    let out: PathBuf =
        std::env::temp_dir().join(format!("ryolo-bench-start-{}", std::process::id()));
    if let (Some(m), Some(s)) = (&a.model, &a.source) {
        rows.push((
            format!("yolo predict model={m} source={s}"),
            vec![
                yolo.clone(),
                "predict".into(),
                format!("model={m}"),
                format!("source={s}"),
                format!("project={}", out.display()),
                "exist_ok=True".into(),
            ],
        ));
    }
    if let Some(anchor) = &a.anchor {
        rows.push((
            format!("anchor: {anchor}"),
            vec!["sh".into(), "-c".into(), anchor.clone()],
        ));
    }
    let result = rows.iter().try_for_each(|(label, argv)| {
        println!("{}", time_command(label, argv, a.runs)?.line());
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&out);
    result
}

/// The figures of one command over its runs.
#[derive(Debug, Clone)]
pub struct Timing {
    /// What was run, for the report.
    pub label: String,
    /// Wall time of each run, ms.
    pub walls_ms: Vec<f64>,
    /// The largest peak resident memory of any run, MB.
    pub max_rss_mb: f64,
}

impl Timing {
    /// `(min, median, max)` wall time, ms.
    pub fn spread(&self) -> (f64, f64, f64) {
        let mut v = self.walls_ms.clone();
        v.sort_by(f64::total_cmp);
        match v.as_slice() {
            [] => (0.0, 0.0, 0.0),
            s => (s[0], s[s.len() / 2], s[s.len() - 1]),
        }
    }

    /// One report line: `bench start [label]: wall min/median/max ... ms, peak RSS ... MB (n runs)`.
    pub fn line(&self) -> String {
        let (lo, mid, hi) = self.spread();
        let runs: Vec<String> = self.walls_ms.iter().map(|w| format!("{w:.0}")).collect();
        format!(
            "bench start [{}]: wall min {lo:.0} / median {mid:.0} / max {hi:.0} ms, peak RSS {:.1} MB ({} runs: {} ms)",
            self.label,
            self.max_rss_mb,
            self.walls_ms.len(),
            runs.join(" ")
        )
    }
}

/// Runs `argv` once unmeasured (page cache, first-run files), then `runs` times measured: each a
/// fresh process with its output discarded; a run that fails is an error naming the command.
pub fn time_command(label: &str, argv: &[String], runs: usize) -> Result<Timing> {
    let Some((prog, args)) = argv.split_first() else {
        bail!("bench start: empty command for {label}");
    };
    let mut walls_ms = Vec::with_capacity(runs);
    let mut max_rss_kb = 0i64;
    for i in 0..=runs {
        let t = Instant::now();
        let child = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("bench start: cannot run {}", argv.join(" ")))?;
        let (status, rss_kb, stderr) = wait_with_rusage(child)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if !status.success() {
            bail!(
                "bench start: `{}` failed ({status}): {}",
                argv.join(" "),
                stderr.trim()
            );
        }
        if i > 0 {
            walls_ms.push(ms);
            max_rss_kb = max_rss_kb.max(rss_kb);
        }
    }
    Ok(Timing {
        label: label.to_string(),
        walls_ms,
        max_rss_mb: max_rss_kb as f64 / 1024.0,
    })
}

/// Waits for `child` through `wait4` (its own peak RSS, KB) after reading its standard error.
fn wait_with_rusage(
    mut child: std::process::Child,
) -> Result<(std::process::ExitStatus, i64, String)> {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data filled by the kernel; `pid` is our own unwaited child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        bail!(
            "bench start: waiting for process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok((
        std::process::ExitStatus::from_raw(status),
        ru.ru_maxrss,
        stderr,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_a_command_and_reports_its_failures() {
        let t = time_command("true", &["true".to_string()], 3).unwrap();
        assert_eq!(t.walls_ms.len(), 3);
        let (lo, mid, hi) = t.spread();
        assert!(lo <= mid && mid <= hi && lo >= 0.0);
        assert!(t.max_rss_mb > 0.0, "wait4 reports the child's peak memory");
        assert!(t.line().starts_with("bench start [true]: wall min "));
        let e = time_command("false", &["false".to_string()], 1).unwrap_err();
        assert!(format!("{e}").contains("`false` failed"), "{e}");
        let e = time_command("none", &["/nonexistent/ryolo-bench".to_string()], 1).unwrap_err();
        assert!(format!("{e:#}").contains("cannot run"), "{e:#}");
    }

    #[test]
    fn arguments_are_read_and_checked() {
        let w = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let a = StartArgs::parse(&w("model=best.pt source=bus.jpg n=3")).unwrap();
        assert_eq!(
            (a.model.as_deref(), a.source.as_deref(), a.runs),
            (Some("best.pt"), Some("bus.jpg"), 3)
        );
        assert_eq!(StartArgs::parse(&[]).unwrap().runs, 5);
        assert!(StartArgs::parse(&w("model=best.pt")).is_err());
        assert!(StartArgs::parse(&w("n=0")).is_err());
        assert!(StartArgs::parse(&w("n=x")).is_err());
        assert!(StartArgs::parse(&w("model")).is_err());
        assert_eq!(command(&w("bench start n=2")), Some(&w("n=2")[..]));
        assert_eq!(command(&w("bench start")), Some(&[][..]));
        assert_eq!(command(&w("bench predict")), None);
        assert_eq!(command(&w("start bench")), None);
    }
}
