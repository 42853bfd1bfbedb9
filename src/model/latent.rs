//! Latent math that belongs to the model, not to an engine, written once and used by
//! the engines, the CLI and the page (through wasm): the layout of eps, temperatures,
//! seeded sampling, checks on given latents, attribute edits, interpolation and
//! directions taught from examples.

use super::config::ModelConfig;
use super::rng;
use super::weights::Directions;
use crate::error::{GlowError, Result};

/// The largest |eps| value accepted for decoding. eps is standard normal (a value past 10
/// has probability below 1e-22), and edits add a few direction lengths; 1e3 leaves room
/// for any sensible edit while refusing overflowing junk (1e30 decodes to a black image).
pub const MAX_ABS_LATENT: f32 = 1e3;

/// Where each level's latent lives in one image's eps: `(offset, length)` per level, in
/// level order (the splits, then the top).
pub fn layout(config: &ModelConfig) -> Vec<(usize, usize)> {
    config.level_shapes().iter().map(|s| (s.eps_offset, s.eps_len)).collect()
}

/// One temperature per level from a global one and an optional per-level list (empty
/// means "all equal to `t`"). Every value must be finite and >= 0.
pub fn temperatures(config: &ModelConfig, t: f32, per_level: &[f32]) -> Result<Vec<f32>> {
    let l = config.levels as usize;
    if !t.is_finite() || t < 0.0 {
        return Err(GlowError::Input(format!("temperature {t} must be a finite number >= 0")));
    }
    if per_level.is_empty() {
        return Ok(vec![t; l]);
    }
    if per_level.len() != l {
        return Err(GlowError::Input(format!("{} per-level temperatures given, the model has {l} levels", per_level.len())));
    }
    if let Some(bad) = per_level.iter().find(|v| !v.is_finite() || **v < 0.0) {
        return Err(GlowError::Input(format!("per-level temperature {bad} must be a finite number >= 0")));
    }
    Ok(per_level.to_vec())
}

/// Multiplies each level's part of `n` eps vectors by that level's temperature, so that
/// decoding the result at temperature 1 shows the sample at those temperatures.
pub fn scale_levels(config: &ModelConfig, eps: &mut [f32], temps: &[f32]) {
    let d = config.dim();
    let lay = layout(config);
    for img in eps.chunks_exact_mut(d) {
        for (&(off, len), t) in lay.iter().zip(temps) {
            img[off..off + len].iter_mut().for_each(|v| *v *= t);
        }
    }
}

/// eps for `n` images drawn from `seed` (the GPU generator's CPU twin), scaled per level.
pub fn sample(config: &ModelConfig, n: usize, seed: u32, temps: &[f32]) -> Vec<f32> {
    let mut eps = rng::random_eps(seed, n, config.dim());
    scale_levels(config, &mut eps, temps);
    eps
}

/// Checks latents given for decoding: `n` whole vectors, finite, and not absurdly large.
pub fn check(eps: &[f32], n: usize, dim: usize) -> Result<()> {
    if n == 0 {
        return Err(GlowError::Input("no latents given".into()));
    }
    if eps.len() != n * dim {
        return Err(GlowError::Input(format!("eps has {} values, expected {n} x {dim}", eps.len())));
    }
    if let Some(i) = eps.iter().position(|v| !v.is_finite()) {
        return Err(GlowError::Input(format!("eps value {} at index {i} is not finite", eps[i])));
    }
    if let Some(i) = eps.iter().position(|v| v.abs() > MAX_ABS_LATENT) {
        return Err(GlowError::Input(format!(
            "eps value {} at index {i} is absurdly large (|eps| <= {MAX_ABS_LATENT} is accepted; eps is standard normal)",
            eps[i]
        )));
    }
    Ok(())
}

/// `eps + sum_i amounts[i] * direction_i` for one image's eps.
pub fn manipulate(dirs: &Directions, eps: &[f32], amounts: &[f32]) -> Result<Vec<f32>> {
    if eps.len() != dirs.dim {
        return Err(GlowError::Input(format!("eps has {} values, expected {}", eps.len(), dirs.dim)));
    }
    if amounts.len() != dirs.names.len() {
        return Err(GlowError::Input(format!("{} amounts for {} attributes", amounts.len(), dirs.names.len())));
    }
    if let Some(a) = amounts.iter().find(|a| !a.is_finite()) {
        return Err(GlowError::Input(format!("amount {a} is not finite")));
    }
    let mut out = eps.to_vec();
    for (i, a) in amounts.iter().enumerate().filter(|(_, a)| **a != 0.0) {
        out.iter_mut().zip(dirs.row(i)).for_each(|(o, d)| *o += a * d);
    }
    Ok(out)
}

/// How to go from one latent to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Straight line: the midpoint of two samples has a smaller norm than either, so it
    /// decodes smoother (lower effective temperature) than its ends.
    Linear,
    /// Great circle (slerp): keeps the norm of Gaussian latents, so every frame looks
    /// like a sample at the ends' temperature.
    Spherical,
}

impl Path {
    pub fn parse(s: &str) -> Result<Path> {
        match s {
            "linear" | "" => Ok(Path::Linear),
            "spherical" | "slerp" => Ok(Path::Spherical),
            other => Err(GlowError::Input(format!("unknown interpolation '{other}': use linear or spherical"))),
        }
    }
}

/// The point at `t` (0 = a, 1 = b) on the path from `a` to `b`.
pub fn mix(a: &[f32], b: &[f32], t: f32, path: Path) -> Vec<f32> {
    let (wa, wb) = match path {
        Path::Linear => (1.0 - t as f64, t as f64),
        Path::Spherical => {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let na = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let nb = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let cos = if na > 0.0 && nb > 0.0 { (dot / (na * nb)).clamp(-1.0, 1.0) } else { 1.0 };
            let omega = cos.acos();
            if omega.sin().abs() < 1e-6 {
                (1.0 - t as f64, t as f64) // (anti)parallel: no unique great circle
            } else {
                let s = omega.sin();
                (((1.0 - t as f64) * omega).sin() / s, (t as f64 * omega).sin() / s)
            }
        }
    };
    a.iter().zip(b).map(|(x, y)| (wa * *x as f64 + wb * *y as f64) as f32).collect()
}

/// `steps` latents evenly spaced from `a` to `b`, both ends included.
pub fn interpolate(a: &[f32], b: &[f32], steps: usize, path: Path) -> Result<Vec<f32>> {
    if a.len() != b.len() || a.is_empty() {
        return Err(GlowError::Input(format!("interpolate needs two eps of the same length (got {} and {})", a.len(), b.len())));
    }
    if !(2..=256).contains(&steps) {
        return Err(GlowError::Input(format!("{steps} interpolation steps: ask for 2 to 256")));
    }
    Ok((0..steps).flat_map(|s| mix(a, b, s as f32 / (steps - 1) as f32, path)).collect())
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}

/// The length every attribute direction is given (`normalise`): the median length of the
/// model's shipped directions, or, for a model without any, 1% of a sample's expected
/// length sqrt(dim) (about what the face model's directions measure).
pub fn direction_length(dirs: Option<&Directions>, dim: usize) -> f64 {
    match dirs {
        Some(d) if !d.names.is_empty() => {
            let mut n: Vec<f64> = (0..d.names.len()).map(|i| norm(d.row(i))).collect();
            n.sort_by(f64::total_cmp);
            n[n.len() / 2]
        }
        _ => 0.01 * (dim as f64).sqrt(),
    }
}

/// Scales `v` to `length` (a zero vector stays zero).
pub fn normalise(v: &mut [f32], length: f64) {
    let n = norm(v);
    if n > 0.0 {
        let k = length / n;
        v.iter_mut().for_each(|x| *x = (*x as f64 * k) as f32);
    }
}

/// A direction taught from examples: the mean eps of `with` minus the mean eps of
/// `without` (each a concatenation of whole eps vectors), OpenAI's attribute method,
/// scaled to `length` so that a slider's amount means the same for a taught direction
/// as for a shipped one (from a few examples the raw difference is mostly the examples'
/// own noise, many times longer than a shipped direction).
pub fn teach(with: &[f32], without: &[f32], dim: usize, length: f64) -> Result<Vec<f32>> {
    if with.is_empty() || without.is_empty() || !with.len().is_multiple_of(dim) || !without.len().is_multiple_of(dim) {
        return Err(GlowError::Input(format!(
            "a direction needs at least one whole eps ({dim} values) with and one without the attribute"
        )));
    }
    let mean = |v: &[f32]| {
        let n = (v.len() / dim) as f64;
        let mut m = vec![0f64; dim];
        for row in v.chunks_exact(dim) {
            m.iter_mut().zip(row).for_each(|(a, b)| *a += *b as f64 / n);
        }
        m
    };
    let (a, b) = (mean(with), mean(without));
    let mut d: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x - y) as f32).collect();
    normalise(&mut d, length);
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slerp_keeps_the_norm_and_lerp_does_not() {
        let a = rng::random_eps(1, 1, 4096);
        let b = rng::random_eps(2, 1, 4096);
        let (na, nb) = (norm(&a), norm(&b));
        let mid_s = mix(&a, &b, 0.5, Path::Spherical);
        let mid_l = mix(&a, &b, 0.5, Path::Linear);
        // Two independent Gaussian vectors are nearly orthogonal: the lerp midpoint is
        // ~1/sqrt(2) as long, the slerp midpoint as long as the ends.
        assert!((norm(&mid_s) / ((na + nb) / 2.0) - 1.0).abs() < 0.01, "slerp norm {}", norm(&mid_s));
        assert!(norm(&mid_l) / ((na + nb) / 2.0) < 0.75, "lerp norm {}", norm(&mid_l));
        let path = interpolate(&a, &b, 5, Path::Spherical).unwrap();
        assert_eq!(&path[..4096], &a[..]);
        for (x, y) in path[4 * 4096..].iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
        assert!(interpolate(&a, &b[..10], 5, Path::Linear).is_err());
        assert!(interpolate(&a, &b, 1, Path::Linear).is_err());
    }

    #[test]
    fn taught_direction_has_the_asked_length_and_sign() {
        let dim = 64;
        let with: Vec<f32> = (0..3 * dim).map(|i| if i % dim == 5 { 3.0 } else { 0.1 }).collect();
        let without: Vec<f32> = vec![0.1; 2 * dim];
        let d = teach(&with, &without, dim, 2.0).unwrap();
        assert!((norm(&d) - 2.0).abs() < 1e-6);
        assert!(d[5] > 1.99 && d.iter().enumerate().all(|(i, v)| i == 5 || v.abs() < 1e-6));
        assert!(teach(&with[..10], &without, dim, 1.0).is_err());
    }

    #[test]
    fn latent_checks_refuse_junk() {
        assert!(check(&[0.0; 8], 2, 4).is_ok());
        assert!(check(&[0.0; 8], 1, 4).is_err());
        assert!(check(&[1e30; 4], 1, 4).is_err());
        assert!(check(&[f32::NAN, 0.0, 0.0, 0.0], 1, 4).is_err());
        assert!(check(&[], 0, 4).is_err());
    }
}
