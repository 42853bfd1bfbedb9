//! The seeded random numbers of sampling: a counter-based generator whose GPU twin is
//! src/gpu/kernels/rng.wgsl, so a seed gives the same eps natively, in the browser and on the CPU.

/// The counter-based generator shared with `src/gpu/kernels/rng.wgsl`: a 32-bit integer hash
/// (lowbias32) of (seed, index), two uniforms, Box-Muller. Integer-exact on every
/// platform, so a seed gives the same eps natively and in the browser up to the
/// rounding of `log` and `cos`.
pub fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

pub fn normal(seed: u32, index: u32) -> f32 {
    let key = hash32(seed ^ 0x85eb_ca6b);
    let a = hash32(key ^ hash32(index.wrapping_mul(2)));
    let b = hash32(key ^ hash32(index.wrapping_mul(2).wrapping_add(1)));
    let u1 = ((a >> 8) + 1) as f32 / 16_777_216.0; // (0, 1]
    let u2 = (b >> 8) as f32 / 16_777_216.0; // [0, 1)
    (-2.0 * ln_poly(u1)).sqrt() * cos_2pi_poly(u2)
}

/// ln(u) for u in (0, 1] with plain f32 operations, the twin of `ln_poly` in rng.wgsl.
pub fn ln_poly(u: f32) -> f32 {
    let bits = u.to_bits();
    let e = (((bits >> 23) & 255) as i32 - 127) as f32;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0))))));
    e * std::f32::consts::LN_2 + 2.0 * s * series
}

/// cos(2 pi u) for u in [0, 1) with plain f32 operations, the twin of `cos_2pi_poly`.
pub fn cos_2pi_poly(u: f32) -> f32 {
    let t = u - (u + 0.5).floor();
    let a = t.abs();
    let flip = a > 0.25;
    let r = if flip { 0.5 - a } else { a };
    let x = std::f32::consts::TAU * r;
    let x2 = x * x;
    let c = 1.0 - x2 * (1.0 / 2.0 - x2 * (1.0 / 24.0 - x2 * (1.0 / 720.0 - x2 * (1.0 / 40320.0 - x2 * (1.0 / 3628800.0 - x2 * (1.0 / 479001600.0))))));
    if flip {
        -c
    } else {
        c
    }
}


/// Uniform in [0, 1) from (key, index): 24 bits of the same hash.
pub fn uniform(key: u32, index: u32) -> f32 {
    (hash32(key ^ hash32(index)) >> 8) as f32 / 16_777_216.0
}

/// Standard normal eps for `batch` images from `seed` (the GPU generator's twin).
pub fn random_eps(seed: u32, batch: usize, dim: usize) -> Vec<f32> {
    (0..batch * dim).map(|i| normal(seed, i as u32)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn polynomial_log_and_cos_are_accurate() {
        for i in 1..=4096u32 {
            let u = i as f32 / 4096.0;
            assert!((super::ln_poly(u) as f64 - (u as f64).ln()).abs() < 2e-6, "ln {u}");
            let v = (i - 1) as f32 / 4096.0;
            assert!((super::cos_2pi_poly(v) as f64 - (std::f64::consts::TAU * v as f64).cos()).abs() < 2e-6, "cos {v}");
        }
        assert!((super::ln_poly(1.0 / 16_777_216.0) as f64 - (1.0f64 / 16_777_216.0).ln()).abs() < 1e-5);
    }
}
