//! Association costs (IoU distance, score fusion) and the cost-limited linear assignment.

/// A dense row-major cost matrix (`rows` tracks × `cols` detections).
#[derive(Clone, Debug, PartialEq)]
pub struct CostMatrix {
    /// Number of rows (tracks).
    pub rows: usize,
    /// Number of columns (detections).
    pub cols: usize,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl CostMatrix {
    /// A `rows × cols` matrix filled with `v`.
    pub fn filled(rows: usize, cols: usize, v: f32) -> Self {
        Self {
            rows,
            cols,
            data: vec![v; rows * cols],
        }
    }

    /// The value at `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.cols + j]
    }

    /// Sets the value at `(i, j)`.
    pub fn set(&mut self, i: usize, j: usize, v: f32) {
        self.data[i * self.cols + j] = v;
    }
}

/// IoU of two float32 `xyxy` boxes exactly as Ultralytics' `bbox_ioa(iou=True)` computes it in float32.
pub fn iou_f32(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let union = area_b + area_a - inter;
    inter / (union + 1e-7f32)
}

/// The IoU matrix of boxes `a` (rows) against boxes `b` (columns).
pub fn iou_matrix(a: &[[f32; 4]], b: &[[f32; 4]]) -> CostMatrix {
    let mut m = CostMatrix::filled(a.len(), b.len(), 0.0);
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            m.set(i, j, iou_f32(x, y));
        }
    }
    m
}

/// `1 − IoU` for track boxes `a` against detection boxes `b`.
pub fn iou_distance(a: &[[f32; 4]], b: &[[f32; 4]]) -> CostMatrix {
    let mut m = iou_matrix(a, b);
    for v in &mut m.data {
        *v = 1.0 - *v;
    }
    m
}

/// Fuses detection scores into an IoU distance: `1 − (1 − d) · score` (float32, as Ultralytics).
pub fn fuse_score(mut d: CostMatrix, scores: &[f32]) -> CostMatrix {
    if d.data.is_empty() {
        return d;
    }
    for i in 0..d.rows {
        for (j, s) in scores.iter().enumerate() {
            let sim = 1.0 - d.get(i, j);
            d.set(i, j, 1.0 - sim * s);
        }
    }
    d
}

/// The result of an assignment: matched `(row, col)` pairs and the unmatched rows and columns (ascending).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Matched `(row, col)` pairs in ascending row order.
    pub matches: Vec<(usize, usize)>,
    /// Unmatched rows, ascending.
    pub unmatched_rows: Vec<usize>,
    /// Unmatched columns, ascending.
    pub unmatched_cols: Vec<usize>,
}

/// `lap.lapjv(C, extend_cost=True, cost_limit=thresh)`: the optimal matching of the square problem
/// `[[C, thresh/2], [thresh/2, 0]]` of size `rows + cols`, so a pair with cost above `thresh` is never
/// matched. A pair above the limit can never be in the optimum, so the rows and columns split into
/// independent groups (connected through pairs within the limit) that are solved one by one with the same
/// extended Jonker-Volgenant problem: crowded frames, where each track overlaps a few detections, cost a
/// few small problems instead of one `(rows + cols)³` one. Rows and columns that no pair within the limit
/// reaches are unmatched.
pub fn linear_assignment(c: &CostMatrix, thresh: f64) -> Assignment {
    let allowed = |v: f32| {
        let v = f64::from(v);
        v.is_finite() && v <= thresh
    };
    // Union-find over rows (0..rows) and columns (rows..rows+cols).
    let n = c.rows + c.cols;
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut any = false;
    for i in 0..c.rows {
        for j in 0..c.cols {
            if allowed(c.get(i, j)) {
                any = true;
                let (a, b) = (find(&mut parent, i), find(&mut parent, c.rows + j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    if !any {
        return Assignment {
            matches: vec![],
            unmatched_rows: (0..c.rows).collect(),
            unmatched_cols: (0..c.cols).collect(),
        };
    }
    let mut groups: std::collections::BTreeMap<usize, (Vec<usize>, Vec<usize>)> =
        std::collections::BTreeMap::new();
    for i in 0..c.rows {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().0.push(i);
    }
    for j in 0..c.cols {
        let r = find(&mut parent, c.rows + j);
        groups.entry(r).or_default().1.push(j);
    }
    if groups.len() == 1 {
        return linear_assignment_dense(c, thresh);
    }
    let mut out = Assignment::default();
    let mut matched_cols = vec![false; c.cols];
    let mut matched_rows = vec![false; c.rows];
    for (rows, cols) in groups.values() {
        if rows.is_empty() || cols.is_empty() {
            continue;
        }
        let mut sub = CostMatrix::filled(rows.len(), cols.len(), 0.0);
        for (a, &i) in rows.iter().enumerate() {
            for (b, &j) in cols.iter().enumerate() {
                sub.set(a, b, c.get(i, j));
            }
        }
        for (a, b) in linear_assignment_dense(&sub, thresh).matches {
            out.matches.push((rows[a], cols[b]));
            matched_rows[rows[a]] = true;
            matched_cols[cols[b]] = true;
        }
    }
    out.matches.sort_unstable();
    out.unmatched_rows = (0..c.rows).filter(|&i| !matched_rows[i]).collect();
    out.unmatched_cols = (0..c.cols).filter(|&j| !matched_cols[j]).collect();
    out
}

/// [`linear_assignment`] as one dense extended problem (Ultralytics' exact call).
pub fn linear_assignment_dense(c: &CostMatrix, thresh: f64) -> Assignment {
    if c.rows == 0 || c.cols == 0 {
        return Assignment {
            matches: vec![],
            unmatched_rows: (0..c.rows).collect(),
            unmatched_cols: (0..c.cols).collect(),
        };
    }
    let n = c.rows + c.cols;
    let mut ext = vec![thresh / 2.0; n * n];
    for i in c.rows..n {
        for j in c.cols..n {
            ext[i * n + j] = 0.0;
        }
    }
    for i in 0..c.rows {
        for j in 0..c.cols {
            // A non-finite cost (degenerate input boxes) can never be matched.
            let v = f64::from(c.get(i, j));
            ext[i * n + j] = if v.is_finite() { v } else { thresh + 1.0 };
        }
    }
    let m = lapjv::Matrix::from_shape_vec((n, n), ext).expect("square matrix of n·n values");
    let (row_to_col, col_to_row) = match lapjv::lapjv(&m) {
        Ok(r) => r,
        // The dense solver only fails on a non-square matrix, which cannot happen here.
        Err(_) => (vec![usize::MAX; n], vec![usize::MAX; n]),
    };
    let mut out = Assignment::default();
    for (i, &j) in row_to_col.iter().take(c.rows).enumerate() {
        if j < c.cols {
            out.matches.push((i, j));
        } else {
            out.unmatched_rows.push(i);
        }
    }
    for (j, &i) in col_to_row.iter().take(c.cols).enumerate() {
        if i >= c.rows {
            out.unmatched_cols.push(j);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: the best total of `Σ (thresh − C_ij)` over matchings using only pairs with `C_ij ≤ thresh`.
    fn brute(c: &CostMatrix, thresh: f64, row: usize, used: &mut Vec<bool>) -> f64 {
        if row == c.rows {
            return 0.0;
        }
        let mut best = brute(c, thresh, row + 1, used);
        for j in 0..c.cols {
            let v = f64::from(c.get(row, j));
            if !used[j] && v <= thresh {
                used[j] = true;
                best = best.max(thresh - v + brute(c, thresh, row + 1, used));
                used[j] = false;
            }
        }
        best
    }

    #[test]
    fn lapjv_with_cost_limit_is_optimal_against_brute_force() {
        let mut state = 0x2545f4914f6cdd1du64;
        let mut rnd = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for case in 0..300 {
            let rows = 1 + (rnd() * 6.0) as usize;
            let cols = 1 + (rnd() * 6.0) as usize;
            let thresh = [0.5, 0.7, 0.8][case % 3];
            let data = (0..rows * cols).map(|_| rnd() as f32).collect();
            let c = CostMatrix { rows, cols, data };
            let a = linear_assignment(&c, thresh);
            let got: f64 = a
                .matches
                .iter()
                .map(|&(i, j)| thresh - f64::from(c.get(i, j)))
                .sum();
            let want = brute(&c, thresh, 0, &mut vec![false; cols]);
            assert!(
                (got - want).abs() < 1e-9,
                "case {case}: {got} vs {want} for {c:?}"
            );
            assert!(a
                .matches
                .iter()
                .all(|&(i, j)| f64::from(c.get(i, j)) <= thresh));
            assert_eq!(a.matches.len() + a.unmatched_rows.len(), rows);
            assert_eq!(a.matches.len() + a.unmatched_cols.len(), cols);
        }
    }

    #[test]
    fn non_finite_costs_are_never_matched() {
        let c = CostMatrix {
            rows: 2,
            cols: 2,
            data: vec![f32::NAN, 0.1, f32::INFINITY, 0.3],
        };
        let a = linear_assignment(&c, 0.8);
        assert_eq!(a.matches, vec![(0, 1)]);
        assert_eq!((a.unmatched_rows, a.unmatched_cols), (vec![1], vec![0]));
    }

    #[test]
    fn empty_matrix_leaves_everything_unmatched() {
        let a = linear_assignment(&CostMatrix::filled(3, 0, 0.0), 0.8);
        assert_eq!(a.unmatched_rows, vec![0, 1, 2]);
        assert!(a.matches.is_empty() && a.unmatched_cols.is_empty());
    }

    #[test]
    fn iou_matches_hand_values() {
        let a = [0.0, 0.0, 10.0, 10.0];
        let b = [5.0, 0.0, 15.0, 10.0];
        assert!((iou_f32(&a, &b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(iou_f32(&a, &[20.0, 20.0, 30.0, 30.0]), 0.0);
    }
}
