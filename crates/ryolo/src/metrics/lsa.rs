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
