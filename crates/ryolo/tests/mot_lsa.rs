//! The MOT metrics' assignment solvers: optimal against brute force, forbidden pairs as py-motmetrics.

use ryolo::metrics::lsa::{assign_allowed, min_cost_assignment};

fn brute(rows: usize, cols: usize, c: &[f64]) -> f64 {
    // Best total over assignments of min(rows, cols) pairs.
    fn rec(i: usize, rows: usize, cols: usize, c: &[f64], used: &mut [bool], left: usize) -> f64 {
        if left == 0 {
            return 0.0;
        }
        if i == rows {
            return f64::INFINITY;
        }
        let mut best = if rows - i > left {
            rec(i + 1, rows, cols, c, used, left)
        } else {
            f64::INFINITY
        };
        for j in 0..cols {
            if !used[j] {
                used[j] = true;
                best = best.min(c[i * cols + j] + rec(i + 1, rows, cols, c, used, left - 1));
                used[j] = false;
            }
        }
        best
    }
    rec(0, rows, cols, c, &mut vec![false; cols], rows.min(cols))
}

#[test]
fn optimal_against_brute_force() {
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    for case in 0..400 {
        let rows = 1 + (rnd() * 6.0) as usize;
        let cols = 1 + (rnd() * 6.0) as usize;
        let c: Vec<f64> = (0..rows * cols)
            .map(|_| {
                if case % 4 == 0 {
                    (rnd() * 3.0).floor()
                } else {
                    rnd()
                }
            })
            .collect();
        let a = min_cost_assignment(rows, cols, &c);
        assert_eq!(a.len(), rows.min(cols), "case {case}");
        let got: f64 = a.iter().map(|&(i, j)| c[i * cols + j]).sum();
        assert!((got - brute(rows, cols, &c)).abs() < 1e-9, "case {case}");
        let mut rs: Vec<_> = a.iter().map(|p| p.0).collect();
        let mut cs: Vec<_> = a.iter().map(|p| p.1).collect();
        rs.dedup();
        cs.sort_unstable();
        cs.dedup();
        assert_eq!((rs.len(), cs.len()), (a.len(), a.len()));
    }
}

#[test]
fn forbidden_pairs_first_maximise_the_count() {
    // Taking (0,0) alone costs 0.1 but leaves row 1 unmatched; two pairs win.
    let nan = f64::NAN;
    let c = [0.1, 0.4, 0.3, nan];
    assert_eq!(assign_allowed(2, 2, &c), vec![(0, 1), (1, 0)]);
    assert!(assign_allowed(2, 2, &[nan; 4]).is_empty());
    assert_eq!(assign_allowed(1, 3, &[nan, 0.2, nan]), vec![(0, 1)]);
}
