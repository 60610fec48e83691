//! Minimum-cost rectangular assignment (Hungarian / shortest augmenting path, f64) with forbidden pairs,
//! as py-motmetrics' `linear_sum_assignment` treats NaN/inf costs.

/// The minimum-cost assignment of a `rows × cols` row-major matrix: every row (or every column, whichever
/// is fewer) is assigned. Returns `(row, col)` pairs in ascending row order. Costs must be finite.
pub fn min_cost_assignment(rows: usize, cols: usize, cost: &[f64]) -> Vec<(usize, usize)> {
    if rows == 0 || cols == 0 {
        return vec![];
    }
    if rows > cols {
        // Solve the transpose (the algorithm needs rows <= cols).
        let mut t = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = cost[i * cols + j];
            }
        }
        let mut out: Vec<(usize, usize)> = min_cost_assignment(cols, rows, &t)
            .into_iter()
            .map(|(j, i)| (i, j))
            .collect();
        out.sort_unstable();
        return out;
    }
    let (n, m) = (rows, cols);
    // Potentials u (rows, 1-based), v (columns, 1-based); p[j]: row assigned to column j (0: none).
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; m + 1];
    let mut p = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    let mut minv = vec![0.0f64; m + 1];
    let mut used = vec![false; m + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0usize;
        minv.iter_mut().for_each(|x| *x = f64::INFINITY);
        used.iter_mut().for_each(|x| *x = false);
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            let row = &cost[(i0 - 1) * m..i0 * m];
            for j in 1..=m {
                if !used[j] {
                    let cur = row[j - 1] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            if j1 == 0 {
                // Only reachable with non-finite costs; callers pass finite ones.
                break;
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out: Vec<(usize, usize)> = (1..=m)
        .filter(|&j| p[j] != 0)
        .map(|j| (p[j] - 1, j - 1))
        .collect();
    out.sort_unstable();
    out
}

/// py-motmetrics' `linear_sum_assignment` on a matrix whose non-finite entries are forbidden pairs: they are
/// replaced by a constant so large that the solution first maximises the number of allowed pairs, then
/// minimises their cost; forbidden pairs are dropped from the answer.
pub fn assign_allowed(rows: usize, cols: usize, cost: &[f64]) -> Vec<(usize, usize)> {
    let valid = cost.iter().filter(|c| c.is_finite()).count();
    if valid == 0 {
        return vec![];
    }
    let c = cost
        .iter()
        .filter(|c| c.is_finite())
        .fold(0.0f64, |a, &b| a.max(b.abs()))
        + 1.0;
    let large = 2.0 * rows.min(cols) as f64 * c + 1.0;
    let filled: Vec<f64> = cost
        .iter()
        .map(|&x| if x.is_finite() { x } else { large })
        .collect();
    min_cost_assignment(rows, cols, &filled)
        .into_iter()
        .filter(|&(i, j)| cost[i * cols + j].is_finite())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(rows: usize, cols: usize, c: &[f64]) -> f64 {
        // Best total over assignments of min(rows, cols) pairs.
        fn rec(
            i: usize,
            rows: usize,
            cols: usize,
            c: &[f64],
            used: &mut [bool],
            left: usize,
        ) -> f64 {
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
}
