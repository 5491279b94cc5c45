//! Reference maps for chance-level rows: a seeded uniform random map and a centred Gaussian.

use crate::map::Map;

/// splitmix64: small, seedable, and identical on every platform.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `h x w` map of independent uniform values in [0, 1) (53-bit mantissa), reproducible by seed.
pub fn random_map(seed: u64, h: usize, w: usize) -> Map {
    let mut state = seed;
    let data = (0..h * w)
        .map(|_| (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64)
        .collect();
    Map {
        height: h,
        width: w,
        data,
    }
}

/// Centred isotropic Gaussian `exp(−((x − cx)² + (y − cy)²) / (2σ²))`, `cx = (w − 1)/2`,
/// `cy = (h − 1)/2`, σ in pixels of this grid; peak 1 at the centre.
pub fn center_prior_map(h: usize, w: usize, sigma: f64) -> Map {
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let mut data = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            let d2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
            data.push((-d2 / (2.0 * sigma * sigma)).exp());
        }
    }
    Map {
        height: h,
        width: w,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_map_is_seeded_and_in_range() {
        let a = random_map(7, 7, 7);
        assert_eq!(a, random_map(7, 7, 7));
        assert_ne!(a, random_map(8, 7, 7));
        assert!(a.data.iter().all(|&v| (0.0..1.0).contains(&v)));
        // Mean of 10k uniforms within 4 standard errors (0.2887/100) of 0.5.
        let big = random_map(1, 100, 100);
        let mean: f64 = big.data.iter().sum::<f64>() / 1e4;
        assert!((mean - 0.5).abs() < 0.0116, "{mean}");
    }

    #[test]
    fn center_prior_values() {
        let g = center_prior_map(3, 3, 1.0);
        assert_eq!(g.at(1, 1), 1.0);
        assert_eq!(g.at(0, 1), (-0.5f64).exp());
        assert_eq!(g.at(0, 0), (-1.0f64).exp());
        // Even size: centre between pixels, four equal maxima.
        let e = center_prior_map(2, 2, 1.0);
        assert!(e.data.iter().all(|&v| v == (-0.25f64).exp()));
    }
}
