//! The few layers the two face networks use, on HWC f32 tensors, written plainly. The
//! accumulation order follows tfjs's CPU kernels (taps row by row, then input channels),
//! in f32, so results agree with face-api to float rounding.

/// An activation map: `h` x `w` pixels of `c` channels, channels fastest.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(h: usize, w: usize, c: usize, data: Vec<f32>) -> Self {
        debug_assert_eq!(data.len(), h * w * c);
        Tensor { h, w, c, data }
    }
}

/// How a window layer pads, per TensorFlow: `Same` pads `max((out-1)*stride + k - in, 0)`
/// with the smaller half before (so at stride 2 on even sizes only after); `Fixed(p)` pads
/// `p` on every side and then runs 'valid' (what face-api does with `tf.pad` first).
#[derive(Debug, Clone, Copy)]
pub enum Pad {
    Same,
    Fixed(usize),
}

/// (output size, padding before) along one axis.
fn geometry(len: usize, k: usize, stride: usize, pad: Pad) -> (usize, usize) {
    match pad {
        Pad::Same => {
            let out = len.div_ceil(stride);
            let total = ((out - 1) * stride + k).saturating_sub(len);
            (out, total / 2)
        }
        Pad::Fixed(p) => ((len + 2 * p - k) / stride + 1, p),
    }
}

/// Input index for output `o`, tap `t`, or None in the padding.
#[inline]
fn src(o: usize, t: usize, stride: usize, before: usize, len: usize) -> Option<usize> {
    (o * stride + t).checked_sub(before).filter(|&i| i < len)
}

/// A full 3x3 convolution, weights HWIO `[3, 3, cin, cout]`, no bias.
pub fn conv3x3(x: &Tensor, w: &[f32], cout: usize, stride: usize, pad: Pad) -> Tensor {
    let (oh, top) = geometry(x.h, 3, stride, pad);
    let (ow, left) = geometry(x.w, 3, stride, pad);
    let cin = x.c;
    let mut out = vec![0f32; oh * ow * cout];
    for oy in 0..oh {
        for ox in 0..ow {
            let acc = &mut out[(oy * ow + ox) * cout..][..cout];
            for ky in 0..3 {
                let Some(iy) = src(oy, ky, stride, top, x.h) else { continue };
                for kx in 0..3 {
                    let Some(ix) = src(ox, kx, stride, left, x.w) else { continue };
                    let px = &x.data[(iy * x.w + ix) * cin..][..cin];
                    for (ci, &v) in px.iter().enumerate() {
                        let wr = &w[((ky * 3 + kx) * cin + ci) * cout..][..cout];
                        for (a, &wv) in acc.iter_mut().zip(wr) {
                            *a += v * wv;
                        }
                    }
                }
            }
        }
    }
    Tensor::new(oh, ow, cout, out)
}

/// A depthwise 3x3 convolution (channel multiplier 1), weights `[3, 3, c, 1]`, no bias.
pub fn depthwise3x3(x: &Tensor, w: &[f32], stride: usize, pad: Pad) -> Tensor {
    let (oh, top) = geometry(x.h, 3, stride, pad);
    let (ow, left) = geometry(x.w, 3, stride, pad);
    let c = x.c;
    let mut out = vec![0f32; oh * ow * c];
    for oy in 0..oh {
        for ox in 0..ow {
            let acc = &mut out[(oy * ow + ox) * c..][..c];
            for ky in 0..3 {
                let Some(iy) = src(oy, ky, stride, top, x.h) else { continue };
                for kx in 0..3 {
                    let Some(ix) = src(ox, kx, stride, left, x.w) else { continue };
                    let px = &x.data[(iy * x.w + ix) * c..][..c];
                    let wr = &w[(ky * 3 + kx) * c..][..c];
                    for ((a, &v), &wv) in acc.iter_mut().zip(px).zip(wr) {
                        *a += v * wv;
                    }
                }
            }
        }
    }
    Tensor::new(oh, ow, c, out)
}

/// A 1x1 convolution (a matrix product per pixel), weights `[cin, cout]`, no bias.
pub fn pointwise(x: &Tensor, w: &[f32], cout: usize) -> Tensor {
    let cin = x.c;
    let mut out = vec![0f32; x.h * x.w * cout];
    for (px, acc) in x.data.chunks_exact(cin).zip(out.chunks_exact_mut(cout)) {
        for (ci, &v) in px.iter().enumerate() {
            let wr = &w[ci * cout..][..cout];
            for (a, &wv) in acc.iter_mut().zip(wr) {
                *a += v * wv;
            }
        }
    }
    Tensor::new(x.h, x.w, cout, out)
}

/// Adds a per-channel bias in place.
pub fn add_bias(x: &mut Tensor, b: &[f32]) {
    for px in x.data.chunks_exact_mut(x.c) {
        for (v, &bv) in px.iter_mut().zip(b) {
            *v += bv;
        }
    }
}

/// face-api's leaky relu, as it computes it: `relu(x - 0.1x) + 0.1x`.
pub fn leaky(x: &mut Tensor) {
    for v in &mut x.data {
        let m = *v * 0.1;
        *v = if *v - m > 0.0 { *v - m + m } else { m };
    }
}

pub fn relu(x: &mut Tensor) {
    for v in &mut x.data {
        if *v < 0.0 {
            *v = 0.0;
        }
    }
}

/// 2x2 max pooling with TensorFlow's 'same' padding (padded cells are ignored).
pub fn max_pool2(x: &Tensor, stride: usize) -> Tensor {
    let (oh, top) = geometry(x.h, 2, stride, Pad::Same);
    let (ow, left) = geometry(x.w, 2, stride, Pad::Same);
    let c = x.c;
    let mut out = vec![f32::NEG_INFINITY; oh * ow * c];
    for oy in 0..oh {
        for ox in 0..ow {
            let acc = &mut out[(oy * ow + ox) * c..][..c];
            for ky in 0..2 {
                let Some(iy) = src(oy, ky, stride, top, x.h) else { continue };
                for kx in 0..2 {
                    let Some(ix) = src(ox, kx, stride, left, x.w) else { continue };
                    for (a, &v) in acc.iter_mut().zip(&x.data[(iy * x.w + ix) * c..][..c]) {
                        if v > *a {
                            *a = v;
                        }
                    }
                }
            }
        }
    }
    Tensor::new(oh, ow, c, out)
}

/// The mean over all pixels, per channel (face-api's 14x14 'valid' average pool on a 14x14
/// map), summed in f64 as tfjs's CPU pool does.
pub fn global_mean(x: &Tensor) -> Vec<f32> {
    let mut sum = vec![0f64; x.c];
    for px in x.data.chunks_exact(x.c) {
        for (s, &v) in sum.iter_mut().zip(px) {
            *s += v as f64;
        }
    }
    let n = (x.h * x.w) as f64;
    sum.into_iter().map(|s| (s / n) as f32).collect()
}

/// `y = x W + b`, `W` `[x.len(), b.len()]`.
pub fn dense(x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let n = b.len();
    let mut y = vec![0f32; n];
    for (i, &v) in x.iter().enumerate() {
        for (a, &wv) in y.iter_mut().zip(&w[i * n..][..n]) {
            *a += v * wv;
        }
    }
    y.iter_mut().zip(b).for_each(|(a, &bv)| *a += bv);
    y
}

/// Elementwise `a += b`.
pub fn add_into(a: &mut Tensor, b: &Tensor) {
    debug_assert_eq!(a.data.len(), b.data.len());
    a.data.iter_mut().zip(&b.data).for_each(|(x, &y)| *x += y);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_follows_tensorflow() {
        // Stride 2 on an even size pads only after; on an odd size nothing is needed for 3x3.
        assert_eq!(geometry(112, 3, 2, Pad::Same), (56, 0));
        assert_eq!(geometry(113, 3, 2, Pad::Same), (57, 1));
        assert_eq!(geometry(56, 3, 1, Pad::Same), (56, 1));
        assert_eq!(geometry(207, 2, 2, Pad::Same), (104, 0));
        assert_eq!(geometry(13, 2, 1, Pad::Same), (13, 0));
        assert_eq!(geometry(416, 3, 1, Pad::Fixed(0)), (414, 0));
    }

    #[test]
    fn conv_matches_a_hand_computed_value() {
        // One input channel of ones, weights 1..9, 'same' padding: the centre output sums all
        // taps, a corner only four.
        let x = Tensor::new(3, 3, 1, vec![1.0; 9]);
        let w: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let y = conv3x3(&x, &w, 1, 1, Pad::Same);
        assert_eq!(y.data[4], 45.0);
        assert_eq!(y.data[0], 5.0 + 6.0 + 8.0 + 9.0);
        let d = depthwise3x3(&x, &w, 1, Pad::Same);
        assert_eq!(d.data, y.data);
        let p = max_pool2(&Tensor::new(2, 3, 1, vec![1., 5., 2., 3., 4., 9.]), 2);
        assert_eq!((p.h, p.w, p.data.clone()), (1, 2, vec![5.0, 9.0]));
    }
}
