//! numpy's pairwise summation, so means and AUC sums round exactly like `np.sum`/`np.mean`.
//!
//! numpy reduces a contiguous float64 array with blocks of 8 partial sums below 128 elements
//! and recursive halving (split at a multiple of 8) above; a plain left fold differs in the last
//! bits, which matters when a report is compared digit by digit with a Python evaluator.

const BLOCK: usize = 128;

/// `np.sum(a)` for a contiguous float64 array.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        // numpy starts from -0.0 here (identity of add); a + (-0.0) == a for every a.
        let mut res = -0.0;
        for v in a {
            res += v;
        }
        res
    } else if n <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.mean(a)`: pairwise sum divided by the count (NaN for an empty slice, as numpy).
pub fn numpy_mean(a: &[f64]) -> f64 {
    pairwise_sum(a) / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_differs_from_left_fold_like_numpy() {
        // 0.1 repeated 10 times: numpy gives 1.0 (pairwise: blocks of 8 then 2 more),
        // a left fold gives 0.9999999999999999.
        let a = vec![0.1; 10];
        let fold: f64 = a.iter().fold(0.0, |s, v| s + v);
        assert_eq!(fold, 0.9999999999999999);
        // Hand: r[j]=0.1 (8 values); ((0.2+0.2)+(0.2+0.2)) = 0.8; +0.1 = 0.9; +0.1 = 1.0
        assert_eq!(pairwise_sum(&a), 1.0);
        assert_eq!(pairwise_sum(&[]), 0.0);
        assert!(numpy_mean(&[]).is_nan());
        assert_eq!(numpy_mean(&[1.0, 2.0, 4.0]), 7.0 / 3.0);
    }

    #[test]
    fn large_arrays_are_exact_on_integers() {
        let a: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(pairwise_sum(&a), 499500.0);
    }
}
