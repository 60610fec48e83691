//! Scan time of brain-tumor and coco128 (train + val), cold (fresh cache folder) then warm (cache
//! reused).
//! Ignored by default: run with `cargo test --test scan_time -- --ignored --nocapture`.

mod common;
use ryolo::data::{list_images, load_data_yaml, scan};
use std::time::Instant;

#[test]
#[ignore]
fn scan_time_cold_and_warm() {
    let Some(shared) = common::shared() else {
        return;
    };
    let cache = common::tmp("scan-time-cache");
    std::env::set_var("XDG_CACHE_HOME", &cache);
    for yaml in ["brain-tumor/brain-tumor.yaml", "coco128/coco128.yaml"] {
        let dc = load_data_yaml(&shared.join("datasets").join(yaml)).unwrap();
        for pass in ["cold", "warm"] {
            let t = Instant::now();
            let mut n = 0;
            for split in ["train", "val"] {
                let files = list_images(dc.split(split).unwrap()).unwrap();
                n += scan(split, &files, dc.nc(), false).entries.len();
            }
            let secs = t.elapsed().as_secs_f64();
            println!("SCAN {yaml} {pass}: {n} images in {secs:.3} s");
        }
    }
    let _ = std::fs::remove_dir_all(cache);
}
