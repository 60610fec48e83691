//! The CPU thread set-up: how many CPUs this process may run on (its affinity mask), the intra-op
//! thread count libtorch uses, and the OpenMP wait policy in force.

/// CPUs this process may run on (`sched_getaffinity`; `taskset` and container CPU sets shrink
/// it), at least 1.
pub fn available_cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let n = libc::CPU_COUNT(&set);
            if n > 0 {
                return n as usize;
            }
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The OpenMP wait policy libgomp was started with, as set in the environment (`yolo` sets
/// PASSIVE and a spin count of 1000 unless the user chose), or libgomp's default (spin for a
/// while, then sleep); with `GOMP_SPINCOUNT` when set.
pub fn wait_policy() -> String {
    let policy = match std::env::var("OMP_WAIT_POLICY") {
        Ok(v) if !v.is_empty() => v.to_ascii_uppercase(),
        _ => "unset (libgomp spins before sleeping)".into(),
    };
    match std::env::var("GOMP_SPINCOUNT") {
        Ok(n) if !n.is_empty() => format!("{policy}, GOMP_SPINCOUNT={n}"),
        _ => policy,
    }
}

/// Whether idle worker threads should sleep rather than spin: `OMP_WAIT_POLICY=PASSIVE` (what
/// `yolo` sets unless the user chose); ONNX Runtime's pool follows it too.
pub fn passive_wait() -> bool {
    std::env::var("OMP_WAIT_POLICY").is_ok_and(|v| v.eq_ignore_ascii_case("passive"))
}

/// One line for `yolo checks`: `CPU: 2 intra-op threads, 2 CPUs available, OMP_WAIT_POLICY=PASSIVE,
/// GOMP_SPINCOUNT=1000`.
pub fn summary() -> String {
    format!(
        "CPU: {} intra-op threads, {} CPUs available, OMP_WAIT_POLICY={}",
        tch::get_num_threads(),
        available_cpus(),
        wait_policy()
    )
}

/// CPU seconds this process has used so far (user + system, all threads).
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    s(u.ru_utime) + s(u.ru_stime)
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_least_one_cpu_is_available() {
        assert!(super::available_cpus() >= 1);
    }
}
