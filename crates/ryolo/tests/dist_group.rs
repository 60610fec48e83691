//! The c10d Gloo process group across two ranks (two threads of this test, loopback): sum,
//! broadcast, barrier, store keys, the flat gradient bucket, and a collective that one rank
//! never joins failing within the timeout with the missing rank named.

use ryolo::engine::dist::{GradBucket, ProcessGroup};
use std::net::TcpListener;
use std::os::fd::IntoRawFd;
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

/// The groups of this file one at a time: each test's two ranks own a store that takes over a
/// listening socket's descriptor, and one run crashed (SIGSEGV) while three tests' groups were
/// being built and torn down at once in this process.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f(rank, group)` on two ranks; rank 0's store takes over a socket bound here.
fn two_ranks<T: Send + 'static>(
    timeout: Duration,
    f: impl Fn(usize, &mut ProcessGroup) -> T + Send + Sync + Copy + 'static,
) -> Vec<T> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // The store takes the socket over (and closes it).
    let fd = l.into_raw_fd();
    let hs: Vec<_> = (0..2)
        .map(|rank| {
            std::thread::spawn(move || {
                let lfd = (rank == 0).then_some(fd);
                let mut g = ProcessGroup::new(rank, 2, "127.0.0.1", port, lfd, timeout).unwrap();
                f(rank, &mut g)
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn sum_broadcast_barrier_store() {
    let got = two_ranks(Duration::from_secs(30), |rank, g| {
        assert_eq!((g.rank(), g.world()), (rank, 2));
        let mut t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]) * (rank as f64 + 1.0);
        g.all_reduce_sum(&mut t).unwrap();
        let sum = Vec::<f32>::try_from(&t).unwrap();
        // Broadcast from rank 1; a non-contiguous tensor is staged and written back.
        let base = Tensor::from_slice(&[10.0f64, 20.0, 30.0, 40.0]).view([2, 2]) * (rank as f64);
        let mut tr = base.tr();
        assert!(!tr.is_contiguous());
        g.broadcast(&mut tr, 1).unwrap();
        let bc = Vec::<f64>::try_from(tr.contiguous().view([-1])).unwrap();
        g.barrier().unwrap();
        if rank == 0 {
            g.store_set("hello", b"from rank 0").unwrap();
        }
        let v = g.store_get("hello", Duration::from_secs(10)).unwrap();
        (sum, bc, v)
    });
    for (sum, bc, v) in got {
        assert_eq!(sum, vec![3.0, 6.0, 9.0]);
        assert_eq!(bc, vec![10.0, 30.0, 20.0, 40.0]);
        assert_eq!(v, b"from rank 0");
    }
}

#[test]
fn bucket_averages_gradients_in_place() {
    let got = two_ranks(Duration::from_secs(30), |rank, g| {
        let w = Tensor::from_slice(&[1.0f32, -2.0, 0.5, 4.0])
            .view([2, 2])
            .set_requires_grad(true);
        let b = Tensor::from_slice(&[0.25f32, 0.75]).set_requires_grad(true);
        let frozen = Tensor::from_slice(&[9.0f32]);
        let vars = vec![
            ("b".to_string(), b.shallow_clone()),
            ("frozen".to_string(), frozen),
            ("w".to_string(), w.shallow_clone()),
        ];
        let mut bucket = GradBucket::attach(&vars).unwrap();
        assert_eq!(bucket.len(), 6, "only the 6 trainable values");
        let x = Tensor::from_slice(&[1.0f32, 2.0]) * (rank as f64 + 1.0);
        let loss = (w.mv(&x) + &b).square().sum(Kind::Float);
        loss.backward();
        // Backward accumulated into the bucket (the grads are views of it).
        let local = Vec::<f32>::try_from(bucket.flat()).unwrap();
        bucket.all_reduce_mean(g).unwrap();
        let mean = Vec::<f32>::try_from(bucket.flat()).unwrap();
        let gw = Vec::<f32>::try_from(w.grad().view([-1])).unwrap();
        // Zeroing in place keeps the views.
        let _ = w.grad().zero_();
        let _ = b.grad().zero_();
        let zero = Vec::<f32>::try_from(bucket.flat()).unwrap();
        (local, mean, gw, zero)
    });
    let (l0, l1) = (&got[0].0, &got[1].0);
    assert!(
        l0.iter().zip(l1).any(|(a, b)| a != b),
        "ranks saw different data"
    );
    let want: Vec<f32> = l0.iter().zip(l1).map(|(a, b)| (a + b) / 2.0).collect();
    for (_, mean, gw, zero) in &got {
        assert_eq!(mean, &want);
        // Order: b (2 values) then w (4 values), frozen skipped.
        assert_eq!(gw.as_slice(), &want[2..]);
        assert!(zero.iter().all(|&z| z == 0.0));
    }
}

#[test]
fn missing_rank_times_out_and_is_named() {
    let got = two_ranks(Duration::from_secs(3), |rank, g| {
        if rank == 1 {
            // Rank 1 joins the group but never reaches the all-reduce.
            std::thread::sleep(Duration::from_secs(6));
            return (Duration::ZERO, String::new());
        }
        let t0 = Instant::now();
        let mut t = Tensor::ones([4], (Kind::Float, tch::Device::Cpu));
        let err = g.all_reduce_sum(&mut t).unwrap_err();
        (t0.elapsed(), format!("{err:#}"))
    });
    let (took, msg) = &got[0];
    assert!(*took < Duration::from_secs(10), "failed after {took:?}");
    assert!(msg.contains("rank 0 of 2: all-reduce #1 failed"), "{msg}");
    assert!(msg.contains("not arrived: rank 1"), "{msg}");
}

/// The all-reduce of a YOLO11n-sized gradient set (2,624,080 floats in one buffer) on two
/// ranks; prints the median of 15 runs. `cargo test -p ryolo --test dist_group -- --ignored`.
#[test]
#[ignore]
fn bench_all_reduce_yolo11n_bucket() {
    let got = two_ranks(Duration::from_secs(120), |_, g| {
        let mut t = Tensor::ones([2_624_080], (Kind::Float, tch::Device::Cpu));
        g.all_reduce_sum(&mut t).unwrap();
        let mut ms: Vec<f64> = (0..15)
            .map(|_| {
                g.barrier().unwrap();
                let t0 = Instant::now();
                g.all_reduce_sum(&mut t).unwrap();
                t0.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        ms
    });
    for (rank, ms) in got.iter().enumerate() {
        println!(
            "rank {rank}: all-reduce of 2,624,080 f32: median {:.1} ms (min {:.1}, max {:.1}) over {} runs",
            ms[ms.len() / 2],
            ms[0],
            ms[ms.len() - 1],
            ms.len()
        );
    }
}

#[test]
fn device_lists_batches_and_shards() {
    use ryolo::engine::dist::launch::{check_batch, device_list};
    use ryolo::engine::dist::shard;
    let l = |s: &str| device_list(Some(s)).unwrap();
    assert_eq!(l("cpu"), None);
    assert_eq!(l("0"), None);
    assert_eq!(l("cpu,cpu"), Some(vec!["cpu".to_string(), "cpu".into()]));
    assert_eq!(l("- cpu\n- cpu\n- cpu"), Some(vec!["cpu".to_string(); 3]));
    assert_eq!(l("0,1"), Some(vec!["0".to_string(), "1".into()]));
    assert_eq!(l("[0, 1]"), Some(vec!["0".to_string(), "1".into()]));
    let e = device_list(Some("cpu,0")).unwrap_err().to_string();
    assert!(e.contains("mixes CPU and CUDA"), "{e}");
    assert!(device_list(Some("0,gpu")).is_err());
    assert!(check_batch(8.0, 2).is_ok());
    let e = check_batch(9.0, 2).unwrap_err().to_string();
    assert!(
        e.contains("batch=9 must be a whole multiple of the 2 ranks") && e.contains("try batch=10"),
        "{e}"
    );
    assert!(
        check_batch(-1.0, 2).is_err(),
        "AutoBatch is one-process only"
    );
    // The slices of every rank cover a batch once, in order, for any size.
    for world in 1..5 {
        for n in 0..20 {
            let mut next = 0;
            for r in 0..world {
                let (a, b) = shard(n, r, world);
                assert_eq!(a, next);
                assert!(b >= a);
                next = b;
            }
            assert_eq!(next, n);
        }
    }
    assert_eq!(shard(8, 1, 2), (4, 8));
}

#[test]
fn a_device_list_outside_the_launcher_is_refused() {
    // The library's train() is one process: a device list needs the `yolo` launcher.
    let a = ryolo::cfg::Args::new(
        &ryolo::cfg::parse_args(&[
            "train".into(),
            "data=x.yaml".into(),
            "device=cpu,cpu".into(),
        ])
        .unwrap()
        .overrides,
    );
    let e = ryolo::engine::train::train(&a, &mut Default::default()).expect_err("refused");
    let msg = format!("{e:#}");
    assert!(
        msg.contains("device=cpu,cpu starts one training process per device"),
        "{msg}"
    );
}

/// Rank 0 of a one-rank NCCL group on GPU 0 (its store on a free loopback port).
fn nccl_world_one() -> anyhow::Result<ProcessGroup> {
    use ryolo::engine::dist::Backend;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let fd = l.into_raw_fd();
    ProcessGroup::with_backend(
        0,
        1,
        "127.0.0.1",
        port,
        Some(fd),
        Duration::from_secs(60),
        Backend::Nccl { device: 0 },
    )
}

#[test]
fn backends_follow_the_device() {
    use ryolo::engine::dist::{rank::backend_for, Backend};
    if std::env::var_os("RYOLO_DDP_BACKEND").is_some() {
        eprintln!("\n!!!!! SKIPPED: RYOLO_DDP_BACKEND is set in this environment !!!!!\n");
        return;
    }
    assert_eq!(backend_for("cpu").unwrap(), Backend::Gloo);
    assert!(backend_for("gpu").is_err());
    // A GPU rank takes NCCL when it loads, else Gloo (with a warning), never an error.
    let b = backend_for("cuda:1").unwrap();
    assert!(
        b == Backend::Nccl { device: 1 } || b == Backend::Gloo,
        "{b:?}"
    );
    assert_eq!(b.name(), if b == Backend::Gloo { "gloo" } else { "nccl" });
}

#[test]
fn nccl_refuses_cleanly_without_a_gpu() {
    if ryolo::util::cuda::is_available() {
        eprintln!("\n!!!!! SKIPPED: a GPU is present (the GPU test checks NCCL instead) !!!!!\n");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = match nccl_world_one() {
        Ok(_) => panic!("an NCCL group formed without a GPU"),
        Err(e) => format!("{e:#}"),
    };
    println!("{e}");
    assert!(e.contains("rank 0 of 1"), "{e}");
    assert!(
        e.contains("NCCL is not available") || e.contains("(NCCL) failed"),
        "{e}"
    );
}

#[test]
fn nccl_one_rank_on_gpu() {
    if std::env::var_os("RYOLO_GPU_TESTS").is_none() {
        eprintln!("\n!!!!! SKIPPED: GPU tests are opt-in (RYOLO_GPU_TESTS=1) !!!!!\n");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut g = nccl_world_one().expect("NCCL group of one rank on GPU 0");
    assert_eq!(g.backend().name(), "nccl");
    let dev = tch::Device::Cuda(0);
    // On the GPU in place, a CPU tensor staged, f64 values, broadcast and barrier.
    let mut t = Tensor::arange(1000, (Kind::Float, dev)) * 0.5;
    let want = t.to_device(tch::Device::Cpu);
    g.all_reduce_sum(&mut t).unwrap();
    assert_eq!(t.device(), dev);
    assert!(t.to_device(tch::Device::Cpu).equal(&want));
    let mut c = Tensor::from_slice(&[1.5f64, -2.0, 3.25]);
    g.all_reduce_sum(&mut c).unwrap();
    assert_eq!(Vec::<f64>::try_from(&c).unwrap(), vec![1.5, -2.0, 3.25]);
    g.broadcast(&mut t, 0).unwrap();
    g.barrier().unwrap();
    // The bucket path training uses: gradients as views, averaged in place on the GPU.
    let w = Tensor::randn([64, 32], (Kind::Float, dev)).set_requires_grad(true);
    let vars = vec![("w".to_string(), w.shallow_clone())];
    let mut b = GradBucket::attach(&vars).unwrap();
    (&w * 3.0).sum(Kind::Float).backward();
    b.all_reduce_mean(&mut g).unwrap();
    let gsum = w.grad().sum(Kind::Float).double_value(&[]);
    assert!((gsum - 3.0 * 64.0 * 32.0).abs() < 1e-3, "{gsum}");
    // Time the YOLO11n-sized bucket (2,624,080 floats) on one rank: NCCL's fixed cost.
    let mut big = Tensor::ones([2_624_080], (Kind::Float, dev));
    for _ in 0..3 {
        g.all_reduce_sum(&mut big).unwrap();
    }
    tch::Cuda::synchronize(0);
    let t0 = Instant::now();
    for _ in 0..20 {
        g.all_reduce_sum(&mut big).unwrap();
    }
    tch::Cuda::synchronize(0);
    println!(
        "NCCL one rank: all-reduce of 2,624,080 floats {:.3} ms (mean of 20)",
        t0.elapsed().as_secs_f64() * 1e3 / 20.0
    );
}
