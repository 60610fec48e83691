//! The launcher: `yolo train ... device=cpu,cpu` (or `device=0,1`) starts one `yolo` process
//! per listed device with torchrun's environment (`RANK`, `LOCAL_RANK`, `WORLD_SIZE`,
//! `MASTER_ADDR`, `MASTER_PORT`), forwards their output, and ends the whole run, naming the
//! rank, as soon as one rank fails.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the other ranks get to exit after SIGTERM once one rank failed.
const GRACE: Duration = Duration::from_secs(10);

/// The per-rank devices of a `device=` value that lists more than one (`cpu,cpu`, `0,1`,
/// `cuda:0,cuda:1`); None for a single device. Mixing CPU and CUDA is an error.
pub fn device_list(device: Option<&str>) -> Result<Option<Vec<String>>> {
    let Some(d) = device else { return Ok(None) };
    if d.contains('\n') {
        // A YAML list (`device=cpu,cpu` as the argument parser reads it): `- cpu\n- cpu`.
        let items: Vec<&str> = d
            .lines()
            .map(|l| l.trim().trim_start_matches('-').trim())
            .collect();
        return device_list(Some(&items.join(",")));
    }
    let items: Vec<String> = d
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|s| {
            s.trim()
                .trim_matches(|c| c == '\'' || c == '"')
                .to_ascii_lowercase()
        })
        .filter(|s| !s.is_empty())
        .collect();
    if items.len() <= 1 {
        return Ok(None);
    }
    let cpu = items.iter().filter(|s| *s == "cpu").count();
    if cpu != 0 && cpu != items.len() {
        bail!("device={d} mixes CPU and CUDA ranks; list only cpu (device=cpu,cpu) or only GPUs (device=0,1)");
    }
    if cpu == 0 {
        for s in &items {
            let idx = s.trim_start_matches("cuda:");
            if idx.parse::<usize>().is_err() {
                bail!("device={d}: {s:?} is not a GPU index; use device=0,1 or device=cpu,cpu");
            }
        }
    }
    Ok(Some(items))
}

/// `batch` is the global batch: a whole multiple of the ranks (as Ultralytics requires of the
/// GPU count), AutoBatch (batch<1) being one-process only.
pub fn check_batch(batch: f64, world: usize) -> Result<()> {
    if batch < 1.0 || batch.fract() != 0.0 || !(batch as usize).is_multiple_of(world) {
        let n = (batch.max(1.0) as usize).div_ceil(world) * world;
        bail!("batch={batch} must be a whole multiple of the {world} ranks (it is the global batch, split across them; AutoBatch is one-process only); try batch={n}");
    }
    Ok(())
}

/// The `device=` value of a command line (the last one wins, as in the argument parser).
pub fn device_arg(argv: &[String]) -> Option<String> {
    argv.iter()
        .filter_map(|a| a.strip_prefix("device="))
        .next_back()
        .map(str::to_string)
}

fn env_num(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| anyhow!("environment variable {name}={v:?} is not a number")),
        _ => Ok(default),
    }
}

/// Runs `exe argv...` once per device as ranks of one data-parallel run and waits for them.
/// Multi-node: set `NNODES`, `NODE_RANK`, `MASTER_ADDR` and `MASTER_PORT` on every machine; a
/// machine's ranks are `NODE_RANK * len(devices) + local rank`.
pub fn launch(exe: &Path, argv: &[String], devices: &[String], batch: f64) -> Result<()> {
    if std::env::var_os("RANK").is_some() && std::env::var_os("WORLD_SIZE").is_some() {
        bail!("device={} lists several devices but RANK/WORLD_SIZE are already set (this process is one rank of a launched run): give each rank one device", devices.join(","));
    }
    let nlocal = devices.len();
    let nnodes = env_num("NNODES", 1)?.max(1);
    let node = env_num("NODE_RANK", 0)?;
    if node >= nnodes {
        bail!("NODE_RANK={node} is not below NNODES={nnodes}");
    }
    let world = nnodes * nlocal;
    check_batch(batch, world)?;
    if devices[0] != "cpu" {
        let n = crate::util::cuda::visible_devices();
        for d in devices {
            let i: usize = d.trim_start_matches("cuda:").parse().unwrap_or(usize::MAX);
            if i >= n {
                bail!("device={}: GPU {d} is not visible ({n} CUDA devices); use device=cpu,cpu for CPU ranks", devices.join(","));
            }
        }
    }
    let addr = std::env::var("MASTER_ADDR")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1".into());
    // One machine: rank 0's store takes over a socket bound here on a free port (no race for
    // the port); several machines: MASTER_PORT must be given and is bound by rank 0.
    let listener = if nnodes == 1 && std::env::var_os("MASTER_PORT").is_none() {
        Some(
            std::net::TcpListener::bind((addr.as_str(), 0)).with_context(|| {
                format!("binding a free port on MASTER_ADDR={addr} for the rank-0 store")
            })?,
        )
    } else {
        if nnodes > 1 && std::env::var_os("MASTER_PORT").is_none() {
            bail!("NNODES={nnodes}: set MASTER_ADDR and MASTER_PORT (the rank-0 machine's address and a free port) on every machine");
        }
        None
    };
    let port: u16 = match &listener {
        Some(l) => l.local_addr()?.port(),
        None => env_num("MASTER_PORT", 29500)? as u16,
    };
    let listen_fd = listener.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    println!(
        "DDP: starting {nlocal} ranks ({}) of {world}, rendezvous at {addr}:{port} ({})",
        devices.join(","),
        if devices[0] == "cpu" {
            "Gloo"
        } else {
            "NCCL when available, else Gloo"
        }
    );
    // As torchrun: the ranks share this machine's cores instead of each taking all of them.
    let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / nlocal).max(1);
    let set_threads = std::env::var_os("OMP_NUM_THREADS").is_none();
    if set_threads {
        println!("DDP: OMP_NUM_THREADS={threads} per rank (set OMP_NUM_THREADS to choose)");
    }
    let mut children: Vec<(usize, Child)> = Vec::new();
    let mut forwarders = Vec::new();
    for (local, dev) in devices.iter().enumerate() {
        let rank = node * nlocal + local;
        let args: Vec<String> = argv
            .iter()
            .filter(|a| !a.starts_with("device="))
            .cloned()
            .chain(std::iter::once(format!("device={dev}")))
            .collect();
        let mut cmd = Command::new(exe);
        cmd.args(&args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", local.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("MASTER_ADDR", &addr)
            .env("MASTER_PORT", port.to_string())
            .env_remove("RYOLO_DDP_LISTEN_FD");
        if set_threads {
            cmd.env("OMP_NUM_THREADS", threads.to_string());
        }
        let fd = if rank == 0 { listen_fd } else { None };
        if let Some(fd) = fd {
            cmd.env("RYOLO_DDP_LISTEN_FD", fd.to_string());
        }
        if rank != 0 {
            // Rank 0 alone reports; the others' stdout is dropped, their error lines forwarded.
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // A rank dies with its launcher.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if let Some(fd) = fd {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting rank {rank} ({})", exe.display()))?;
        if let Some(err) = child.stderr.take() {
            forwarders.push(std::thread::spawn(move || {
                for line in BufReader::new(err)
                    .lines()
                    .map_while(std::result::Result::ok)
                {
                    // Only this rank's errors: its other messages repeat rank 0's.
                    let l = line.to_ascii_lowercase();
                    if l.contains("error") || l.contains("panicked") || l.contains("fatal") {
                        eprintln!("rank {rank}: {line}");
                    }
                }
            }));
        }
        eprintln!("DDP: rank {rank} is pid {}", child.id());
        children.push((rank, child));
    }
    drop(listener);
    let res = supervise(&mut children);
    for f in forwarders {
        let _ = f.join();
    }
    res
}

/// Describes how a rank ended.
fn ended(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!(
            "was killed by signal {s}{}",
            if s == 9 { " (SIGKILL)" } else { "" }
        ),
        _ => "ended".into(),
    }
}

/// Waits for every rank; on the first failure stops the others (SIGTERM, then SIGKILL after
/// [`GRACE`]) and returns an error naming the failed rank (one killed by a signal before one
/// that exited with an error, which is usually a peer's consequence).
fn supervise(children: &mut [(usize, Child)]) -> Result<()> {
    let mut done = vec![false; children.len()];
    let mut failed: Vec<(bool, String)> = Vec::new();
    while done.iter().any(|d| !d) && failed.is_empty() {
        for (k, (rank, child)) in children.iter_mut().enumerate() {
            if done[k] {
                continue;
            }
            if let Some(st) = child.try_wait()? {
                done[k] = true;
                if !st.success() {
                    failed.push((
                        st.signal().is_some(),
                        format!("rank {rank} (pid {}) {}", child.id(), ended(st)),
                    ));
                }
            }
        }
        if failed.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    failed.sort_by_key(|(signalled, _)| !signalled);
    let msg = failed
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    eprintln!("DDP: {msg}; stopping the other ranks");
    for (k, (_, child)) in children.iter_mut().enumerate() {
        if !done[k] {
            // SAFETY: signalling our own children by pid (SIGCONT wakes a stopped one so that
            // it receives the SIGTERM).
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
                libc::kill(child.id() as i32, libc::SIGCONT);
            }
        }
    }
    let t0 = Instant::now();
    for (k, (rank, child)) in children.iter_mut().enumerate() {
        if done[k] {
            continue;
        }
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if t0.elapsed() > GRACE {
                eprintln!(
                    "DDP: rank {rank} did not stop within {}s of SIGTERM; killing it",
                    GRACE.as_secs()
                );
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    bail!("data-parallel training failed: {msg}; the run's weights/last.safetensors (written after each finished epoch) resumes it")
}
