//! Folding: everything data-independent is computed once at load, on the CPU, in f64.
//! Actnorm + invertible 1x1 conv become one per-pixel affine map per step (and its exact
//! inverse); actnorms after the coupling net's convs and `exp(3 * logs)` of the zero
//! convs go into those convs' weights and biases; OpenAI's edge channel becomes a bias
//! table per border class; the top prior, whose input is zero, becomes a constant.

use super::config::{LevelShape, ModelConfig};
use super::weights::Weights;
use crate::error::{GlowError, Result};

/// Log-scales in OpenAI's actnorm and zero convs are stored divided by this.
pub const LOGSCALE_FACTOR: f64 = 3.0;

/// Number of border classes: (top?, bottom?) x (left?, right?), as bits.
pub const EDGE_CLASSES: usize = 16;

/// Border class of a pixel: bit 0 top row, bit 1 bottom row, bit 2 left column,
/// bit 3 right column (a 1-pixel-high image is both top and bottom).
pub fn edge_class(y: usize, x: usize, h: usize, w: usize) -> usize {
    (y == 0) as usize | ((y + 1 == h) as usize) << 1 | ((x == 0) as usize) << 2 | ((x + 1 == w) as usize) << 3
}

/// A folded convolution: `out[p, co] = bias[co] + edge[class(p), co] + sum in · weight`,
/// with weight laid out as a `[ksize*ksize*cin, cout]` matrix (HWIO flattened).
#[derive(Debug, Clone)]
pub struct Conv {
    pub ksize: usize,
    pub cin: usize,
    pub cout: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    /// `[EDGE_CLASSES, cout]`, present for 3x3 convs with edge bias.
    pub edge: Option<Vec<f32>>,
    pub relu: bool,
    /// The per-output-channel factor folded into `weight` and `bias` (the `exp(logs)` of
    /// the actnorm after the conv, or `exp(3 logs)` of a zero conv), in f64 as the fold
    /// used it: `weight[k, co] = f32(stored[k, co] * out_scale[co])`. Dividing it back out
    /// recovers the weights as stored in the file, which lets the GPU keep f16 files' own
    /// values in f16 (`f16_split`). `None` for the step affine maps, whose factor scales
    /// input rows.
    pub out_scale: Option<Vec<f64>>,
}

/// The weights of a conv as f16 values with the per-output-channel factor kept apart,
/// for GPUs that store weights in f16 (`Conv::f16_split`).
#[derive(Debug, Clone)]
pub struct F16Split {
    /// `[ksize*ksize*cin, cout]`, each an f16 value (held in an f32, exactly).
    pub weight: Vec<f32>,
    /// `[cout]`: the output is `scale[co] * sum(in · weight) + bias[co] + edge`.
    pub scale: Vec<f32>,
}

/// How far storing a conv's weights in f16 (`Conv::f16_split`) is from its folded weights.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct F16Loss {
    /// Weights that are not f16 values once the factor is divided out (0 for models
    /// stored in f16: f16 storage then loses nothing).
    pub inexact: usize,
    /// The largest relative change rounding one of them makes (infinite: out of f16's range).
    pub max_rel_change: f64,
}

impl F16Loss {
    pub fn add(&mut self, o: F16Loss) {
        self.inexact += o.inexact;
        self.max_rel_change = self.max_rel_change.max(o.max_rel_change);
    }
}

impl Conv {
    fn factor(&self, co: usize) -> f64 {
        self.out_scale.as_ref().map_or(1.0, |s| s[co])
    }

    /// Weight `i` with its output channel's factor divided out, and the nearest f16 value.
    fn unscaled(&self, i: usize) -> (f64, f64) {
        let u = self.weight[i] as f64 / self.factor(i % self.cout);
        (u, half::f16::from_f64(u).to_f64())
    }

    /// Splits the folded weights into f16 values and a per-output-channel f32 factor.
    /// For weights that were f16 in the file this gives back exactly the file's values:
    /// `weight / out_scale` in f64 is within the fold's own f32 rounding (2^-24 relative)
    /// of an f16 value, and neighbouring f16 values are at least 2^-11 relative apart. So
    /// the GPU's `scale * sum(in · weight)` differs from the f32 path's
    /// `sum(in · folded)` only by f32 rounding, whereas rounding the folded weights
    /// themselves to f16 would change each by up to 2^-11 relative.
    pub fn f16_split(&self) -> F16Split {
        let weight = (0..self.weight.len()).map(|i| self.unscaled(i).1 as f32).collect();
        F16Split { weight, scale: (0..self.cout).map(|co| self.factor(co) as f32).collect() }
    }

    /// What `f16_split` loses (without making it).
    pub fn f16_loss(&self) -> F16Loss {
        let mut loss = F16Loss::default();
        for i in 0..self.weight.len() {
            let (u, h) = self.unscaled(i);
            let rel = if u == 0.0 { 0.0 } else { (h - u).abs() / u.abs() };
            // Up to 2^-20 is the fold's rounding of an f16 value, not a rounding to f16.
            // (Beyond f16's range `h` is infinite, and so is `rel`.)
            if rel > 1.0 / (1u64 << 20) as f64 {
                loss.inexact += 1;
                loss.max_rel_change = loss.max_rel_change.max(if h.is_finite() { rel } else { f64::INFINITY });
            }
        }
        loss
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    /// actnorm then invconv, as `y = x · A + c`.
    pub forward: Conv,
    /// its inverse, `x = y · A^-1 - c · A^-1`.
    pub inverse: Conv,
    pub f1: Conv,
    pub f2: Conv,
    pub f3: Conv,
    /// `sum(3 * actnorm logs) + ln|det W|`: the logdet of one pixel of this step.
    pub logdet_per_pixel: f64,
}

#[derive(Debug, Clone)]
pub struct Level {
    pub shape: LevelShape,
    pub steps: Vec<Step>,
    /// Split prior (absent on the last level): z1 -> interleaved (mean, logs).
    pub prior: Option<Conv>,
}

#[derive(Debug, Clone)]
pub struct FoldedModel {
    pub config: ModelConfig,
    pub levels: Vec<Level>,
    /// Top prior, constant: `[H_top * W_top, 2 * C_top]` with (mean, logs) interleaved
    /// per channel, the same layout the split priors produce.
    pub top: Vec<f32>,
    /// Data-independent part of the log-determinant, per image.
    pub logdet_const: f64,
}

impl FoldedModel {
    pub fn new(config: &ModelConfig, w: &Weights) -> Result<Self> {
        let shapes = config.level_shapes();
        let e = config.edge_bias;
        let width = config.width as usize;
        let mut levels = Vec::new();
        let mut logdet_const = 0.0;
        for (l, s) in shapes.iter().enumerate() {
            let c = s.c;
            let cf = config.coupling_out(l);
            let mut steps = Vec::new();
            for k in 0..config.steps as usize {
                let p = format!("L{l}.S{k}.");
                let g = |n: &str| w.get(&format!("{p}{n}"));
                let (forward, inverse, ld) =
                    fold_step_affine(&format!("{p}invconv.W"), g("actnorm.b"), g("actnorm.logs"), g("invconv.W"), c)?;
                logdet_const += ld * s.pixels() as f64;
                let f1 = fold_conv(3, c / 2, width, e, g("f.l1.W"), Some(g("f.l1.actnorm.b")), g("f.l1.actnorm.logs"), true);
                let f2 = fold_conv(1, width, width, false, g("f.l2.W"), Some(g("f.l2.actnorm.b")), g("f.l2.actnorm.logs"), true);
                let f3 = fold_conv(3, width, cf, e, g("f.last.W"), Some(g("f.last.b")), g("f.last.logs"), false);
                steps.push(Step { forward, inverse, f1, f2, f3, logdet_per_pixel: ld });
            }
            let prior = if l + 1 < shapes.len() {
                let g = |n: &str| w.get(&format!("L{l}.prior.{n}"));
                Some(fold_conv(3, c / 2, c, e, g("W"), Some(g("b")), g("logs"), false))
            } else {
                None
            };
            levels.push(Level { shape: *s, steps, prior });
        }
        let last = *shapes.last().ok_or_else(|| GlowError::Config("no levels".into()))?;
        let top = fold_top(config, w, last);
        Ok(FoldedModel { config: config.clone(), levels, top, logdet_const })
    }

    pub fn dim(&self) -> usize {
        self.config.dim()
    }
}

/// `y = ((x + b) * exp(3 logs)) · W = x · A + c`, `A = diag(s) W`, `c = (b*s) · W`.
fn fold_step_affine(name: &str, b: &[f32], logs: &[f32], w: &[f32], c: usize) -> Result<(Conv, Conv, f64)> {
    let s: Vec<f64> = logs.iter().map(|&l| (LOGSCALE_FACTOR * l as f64).exp()).collect();
    let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
    let (winv, logabsdet) = invert(&w64, c).ok_or_else(|| GlowError::tensor(name, "matrix is singular"))?;
    let mut a = vec![0f64; c * c];
    let mut bias = vec![0f64; c];
    for i in 0..c {
        for j in 0..c {
            a[i * c + j] = s[i] * w64[i * c + j];
            bias[j] += b[i] as f64 * s[i] * w64[i * c + j];
        }
    }
    // A^-1 = W^-1 diag(1/s); inverse bias = -c · A^-1.
    let mut ainv = vec![0f64; c * c];
    for i in 0..c {
        for j in 0..c {
            ainv[i * c + j] = winv[i * c + j] / s[j];
        }
    }
    let mut ibias = vec![0f64; c];
    for j in 0..c {
        ibias[j] = -(0..c).map(|i| bias[i] * ainv[i * c + j]).sum::<f64>();
    }
    let ld = logs.iter().map(|&l| LOGSCALE_FACTOR * l as f64).sum::<f64>() + logabsdet;
    let conv = |m: &[f64], bb: &[f64]| Conv {
        ksize: 1,
        cin: c,
        cout: c,
        weight: m.iter().map(|&v| v as f32).collect(),
        bias: bb.iter().map(|&v| v as f32).collect(),
        edge: None,
        relu: false,
        out_scale: None,
    };
    if !ld.is_finite() {
        return Err(GlowError::tensor(name, "log-determinant is not finite"));
    }
    Ok((conv(&a, &bias), conv(&ainv, &ibias), ld))
}

/// Folds `(conv(x) + b) * exp(3 logs)` (with the edge channel, when present, turned into
/// a per-border-class bias table). `bias = None` means the conv has none before scaling.
#[allow(clippy::too_many_arguments)]
fn fold_conv(ksize: usize, cin: usize, cout: usize, edge_bias: bool, w: &[f32], b: Option<&[f32]>, logs: &[f32], relu: bool) -> Conv {
    let has_edge = edge_bias && ksize == 3;
    let cin_stored = cin + has_edge as usize;
    let s: Vec<f64> = logs.iter().map(|&l| (LOGSCALE_FACTOR * l as f64).exp()).collect();
    let taps = ksize * ksize;
    let mut weight = vec![0f32; taps * cin * cout];
    for t in 0..taps {
        for ci in 0..cin {
            for co in 0..cout {
                weight[(t * cin + ci) * cout + co] = (w[(t * cin_stored + ci) * cout + co] as f64 * s[co]) as f32;
            }
        }
    }
    let bias: Vec<f32> = (0..cout).map(|co| (b.map_or(0.0, |b| b[co] as f64) * s[co]) as f32).collect();
    let edge = has_edge.then(|| {
        let mut table = vec![0f32; EDGE_CLASSES * cout];
        for class in 0..EDGE_CLASSES {
            for co in 0..cout {
                let mut acc = 0f64;
                for ky in 0..3 {
                    for kx in 0..3 {
                        let out = (ky == 0 && class & 1 != 0)
                            || (ky == 2 && class & 2 != 0)
                            || (kx == 0 && class & 4 != 0)
                            || (kx == 2 && class & 8 != 0);
                        if out {
                            acc += w[((ky * 3 + kx) * cin_stored + cin) * cout + co] as f64;
                        }
                    }
                }
                table[class * cout + co] = (acc * s[co]) as f32;
            }
        }
        table
    });
    // A factor of 0 or infinity (exp(3 logs) out of f64's range) cannot be divided back
    // out; such a conv keeps its folded weights (f16_split then rounds those).
    let out_scale = s.iter().all(|v| v.is_normal()).then_some(s);
    Conv { ksize, cin, cout, weight, bias, edge, relu, out_scale }
}

/// The top prior's conv sees only zeros (and the edge channel), so its output is a
/// constant per position. Re-laid out as interleaved (mean, logs) per channel.
fn fold_top(config: &ModelConfig, w: &Weights, last: LevelShape) -> Vec<f32> {
    let ct = last.c;
    let p = last.pixels();
    let mut out = vec![0f32; p * 2 * ct];
    if !config.learn_top {
        return out; // N(0, 1): mean 0, logs 0.
    }
    let conv = fold_conv(3, 2 * ct, 2 * ct, config.edge_bias, w.get("top.W"), Some(w.get("top.b")), w.get("top.logs"), false);
    for y in 0..last.h {
        for x in 0..last.w {
            let pix = y * last.w + x;
            let class = edge_class(y, x, last.h, last.w);
            for co in 0..2 * ct {
                let mut v = conv.bias[co];
                if let Some(t) = &conv.edge {
                    v += t[class * 2 * ct + co];
                }
                // channel co < ct is a mean, else a logs; interleave.
                let (ch, which) = if co < ct { (co, 0) } else { (co - ct, 1) };
                out[pix * 2 * ct + 2 * ch + which] = v;
            }
        }
    }
    out
}

/// Gauss-Jordan inverse with partial pivoting, and ln|det|. `None` if singular.
pub fn invert(m: &[f64], n: usize) -> Option<(Vec<f64>, f64)> {
    let mut a = m.to_vec();
    let mut inv = vec![0f64; n * n];
    for i in 0..n {
        inv[i * n + i] = 1.0;
    }
    let mut logdet = 0.0;
    let scale = m.iter().fold(0f64, |acc, v| acc.max(v.abs())).max(1e-300);
    for col in 0..n {
        let piv = (col..n).max_by(|&r1, &r2| a[r1 * n + col].abs().total_cmp(&a[r2 * n + col].abs()))?;
        let pv = a[piv * n + col];
        if pv.abs() <= scale * 1e-12 {
            return None;
        }
        if piv != col {
            for k in 0..n {
                a.swap(piv * n + k, col * n + k);
                inv.swap(piv * n + k, col * n + k);
            }
        }
        logdet += pv.abs().ln();
        for k in 0..n {
            a[col * n + k] /= pv;
            inv[col * n + k] /= pv;
        }
        for r in 0..n {
            if r != col {
                let f = a[r * n + col];
                if f != 0.0 {
                    for k in 0..n {
                        a[r * n + k] -= f * a[col * n + k];
                        inv[r * n + k] -= f * inv[col * n + k];
                    }
                }
            }
        }
    }
    Some((inv, logdet))
}


#[cfg(test)]
mod tests {
    use super::*;

    /// f16 weights folded with awkward per-channel factors come back exactly from
    /// `f16_split`; f32 weights are reported as rounded; values beyond f16's range as lost.
    #[test]
    fn f16_split_recovers_stored_f16_weights() {
        let (cin, cout) = (5, 3);
        let stored: Vec<f32> = (0..9 * (cin + 1) * cout).map(|i| half::f16::from_f32(((i * 37 % 101) as f32 - 50.0) * 0.0137).to_f32()).collect();
        let logs = [0.31f32, -0.77, 0.05];
        let conv = fold_conv(3, cin, cout, true, &stored, Some(&[0.1, 0.2, 0.3]), &logs, true);
        let split = conv.f16_split();
        assert_eq!(conv.f16_loss(), F16Loss::default());
        for t in 0..9 {
            for ci in 0..cin {
                for co in 0..cout {
                    // The edge channel (ci == cin in the file) went into the edge table.
                    assert_eq!(split.weight[(t * cin + ci) * cout + co], stored[(t * (cin + 1) + ci) * cout + co], "tap {t} ci {ci} co {co}");
                }
            }
        }
        for (co, l) in logs.iter().enumerate() {
            assert_eq!(split.scale[co], (LOGSCALE_FACTOR * *l as f64).exp() as f32);
        }
        // Weights that are not f16 values are rounded, and say so.
        let f32_weights: Vec<f32> = stored.iter().map(|w| w * 1.0001).collect();
        let loss = fold_conv(3, cin, cout, true, &f32_weights, None, &logs, false).f16_loss();
        assert!(loss.inexact > 0 && loss.max_rel_change > 0.0 && loss.max_rel_change <= 1.0 / 2048.0, "{loss:?}");
        let huge = fold_conv(1, 1, 1, false, &[1e6], None, &[0.0], false).f16_loss();
        assert_eq!((huge.inexact, huge.max_rel_change), (1, f64::INFINITY));
    }
}
