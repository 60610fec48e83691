//! The split (per connected group) cost-limited assignment equals Ultralytics' dense extended `lapjv` call.

use ryolo::track::matching::{linear_assignment, linear_assignment_dense, CostMatrix};

fn rng(mut state: u64) -> impl FnMut() -> f64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn split_problem_equals_the_dense_one() {
    let mut rnd = rng(0x853c49e6748fea9b);
    for case in 0..300 {
        let rows = 1 + (rnd() * 60.0) as usize;
        let cols = 1 + (rnd() * 60.0) as usize;
        let thresh = [0.5, 0.7, 0.8][case % 3];
        // Mostly 1.0 (no overlap) with a few overlapping pairs, as in a crowded frame; every 5th case dense.
        let p = if case % 5 == 0 { 1.0 } else { 0.06 };
        let data = (0..rows * cols)
            .map(|_| if rnd() < p { rnd() as f32 } else { 1.0 })
            .collect();
        let c = CostMatrix { rows, cols, data };
        assert_eq!(
            linear_assignment(&c, thresh),
            linear_assignment_dense(&c, thresh),
            "case {case}"
        );
    }
}

#[test]
fn crowded_frame_of_200_objects() {
    // 200 tracks × 210 detections, each track overlapping its own detection and a neighbour's.
    let mut rnd = rng(7);
    let (rows, cols) = (200, 210);
    let mut c = CostMatrix::filled(rows, cols, 1.0);
    for i in 0..rows {
        c.set(i, i, 0.05 + 0.3 * rnd() as f32);
        c.set(i, (i + 1) % cols, 0.5 + 0.4 * rnd() as f32);
    }
    let a = linear_assignment(&c, 0.8);
    assert_eq!(a, linear_assignment_dense(&c, 0.8));
    assert_eq!(a.matches.len(), 200);
    assert_eq!(a.unmatched_cols, (200..210).collect::<Vec<_>>());
}
