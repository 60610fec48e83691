use rand::{Rng, SeedableRng};
use ryolo::data::augment::*;
use ryolo::ops::Rgb;
fn main() {
    let mk = |w: usize, h: usize| Rgb {
        w,
        h,
        data: (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect(),
    };
    let imgs = [mk(640, 640), mk(640, 480), mk(512, 640), mk(640, 640)];
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0);
    let cfg = AugConfig::default();
    let t = std::time::Instant::now();
    let n = 300;
    let mut acc = 0u64;
    for _ in 0..n {
        let refs: [(&Rgb, &[u32], &[[f32; 4]]); 4] =
            std::array::from_fn(|k| (&imgs[k], &[][..], &[][..]));
        let (c, cls, bx) = mosaic4_layout(refs, 640, &mut rng);
        let s = random_perspective_on(&c, &cls, &bx, &cfg, 640, 640, &mut rng);
        acc += s.img.data[1000] as u64;
    }
    let dt = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "mosaic+warp {:.3} ms/img ({:.2} ns/px) {acc}",
        dt * 1e3,
        dt * 1e9 / (640.0 * 640.0)
    );
    let mut img = mk(640, 640);
    let t = std::time::Instant::now();
    for _ in 0..n {
        random_hsv(&mut img, cfg.hsv, &mut rng);
    }
    let dt = t.elapsed().as_secs_f64() / n as f64;
    println!("hsv color {:.3} ms/img", dt * 1e3);
    let _ = rng.gen::<u8>();
}
