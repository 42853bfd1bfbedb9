//! One folded conv on the CPU: im2col of a chunk of tiles, the GEMM micro-kernel against
//! weights packed once at load, then bias, edge-bias table and relu. Split by output pixels
//! over the engine's threads.

use super::gemm::{Kernel, MR, NR};
use super::threads::Threads;
use crate::model::flow::Geometry;
use crate::model::fold::{edge_class, Conv};

/// Below this many multiply-adds per part a conv is not split: the join would cost more
/// than the work (the smallest convs, at the top level, are about 1e5).
const MIN_MACS_PER_PART: usize = 1 << 15;

/// What every conv of an engine runs with.
pub struct Exec {
    pub threads: Threads,
    pub kernel: Kernel,
}

/// A conv with its weights packed as `[ceil(cout/8)][taps*cin][8]` (zero padded).
pub struct PackedConv {
    pub conv: Conv,
    packed: Vec<f32>,
}

impl PackedConv {
    pub fn new(conv: &Conv) -> Self {
        let k = conv.ksize * conv.ksize * conv.cin;
        let blocks = conv.cout.div_ceil(NR);
        let mut packed = vec![0f32; blocks * k * NR];
        for nb in 0..blocks {
            for kk in 0..k {
                for j in 0..NR {
                    let co = nb * NR + j;
                    if co < conv.cout {
                        packed[(nb * k + kk) * NR + j] = conv.weight[kk * conv.cout + co];
                    }
                }
            }
        }
        PackedConv { conv: conv.clone(), packed }
    }

    /// `out[p, out_offset + co]` for a `[batch, h, w, in_stride]` input (channels at
    /// `in_offset`), same semantics as `reference::ops::conv2d`. The pixels are split into
    /// up to one part per thread, in whole tiles.
    pub fn run(&self, x: &Exec, g: Geometry, input: &[f32], out: &mut [f32]) {
        let c = &self.conv;
        let total = g.batch * g.h * g.w;
        let tiles = total.div_ceil(MR);
        let macs = total * c.ksize * c.ksize * c.cin * c.cout;
        let parts = x.threads.count().min(macs / MIN_MACS_PER_PART).min(tiles).max(1);
        let rows = tiles.div_ceil(parts) * MR;
        x.threads.split_rows(&mut out[..total * g.out_stride], g.out_stride, rows, |first, part| {
            let end = (first + rows).min(total);
            self.run_part(x.kernel, g, input, first..end, part)
        });
    }

    /// Output pixels `pixels` (starting at a tile boundary) into `out`, which holds those
    /// pixels' rows only.
    fn run_part(&self, kernel: Kernel, g: Geometry, input: &[f32], pixels: std::ops::Range<usize>, out: &mut [f32]) {
        let c = &self.conv;
        let (h, w) = (g.h, g.w);
        let ks = c.ksize;
        let rad = (ks / 2) as isize;
        let k = ks * ks * c.cin;
        let blocks = c.cout.div_ceil(NR);
        // im2col of MR pixels per tile, interleaved: a[kk * MR + r], so the micro-kernel
        // reads MR inputs and NR weights contiguously for each kk. Tiles are packed in
        // chunks of about 64 KB, and each block of NR output channels runs over the whole
        // chunk, so its packed weights stay in L1 while the chunk streams from L2.
        let total = pixels.end;
        let tiles = pixels.len().div_ceil(MR);
        let chunk = (16384 / (MR * k)).clamp(1, 64);
        let mut a = vec![0f32; chunk * MR * k];
        let mut row = vec![0f32; k];
        let mut classes = vec![0usize; chunk * MR];
        for t0 in (0..tiles).step_by(chunk) {
            let nt = chunk.min(tiles - t0);
            for t in 0..nt {
                let m0 = pixels.start + (t0 + t) * MR;
                let at = &mut a[t * MR * k..(t + 1) * MR * k];
                for r in 0..MR {
                    let m = m0 + r;
                    if m >= total {
                        row.fill(0.0);
                    } else {
                        let (b, y, x) = (m / (h * w), (m / w) % h, m % w);
                        classes[t * MR + r] = edge_class(y, x, h, w);
                        // Gather the pixel's receptive field (zeros outside the image).
                        for ky in 0..ks {
                            for kx in 0..ks {
                                let tap = (ky * ks + kx) * c.cin;
                                let yy = y as isize + ky as isize - rad;
                                let xx = x as isize + kx as isize - rad;
                                let dst = &mut row[tap..tap + c.cin];
                                if yy < 0 || yy >= h as isize || xx < 0 || xx >= w as isize {
                                    dst.fill(0.0);
                                } else {
                                    let pix = (b * h + yy as usize) * w + xx as usize;
                                    let src = pix * g.in_stride + g.in_offset;
                                    dst.copy_from_slice(&input[src..src + c.cin]);
                                }
                            }
                        }
                    }
                    for (kk, v) in row.iter().enumerate() {
                        at[kk * MR + r] = *v;
                    }
                }
            }
            kernel.chunk(&a, nt, k, &self.packed, blocks, |t, nb, acc| {
                let m0 = pixels.start + (t0 + t) * MR;
                let (c0, c1) = (nb * NR, (nb * NR + NR).min(c.cout));
                for (r, accr) in acc.iter().enumerate().take(MR.min(total - m0)) {
                    let o = (m0 + r - pixels.start) * g.out_stride + g.out_offset;
                    let dst = &mut out[o + c0..o + c1];
                    for ((d, v), b) in dst.iter_mut().zip(accr).zip(&c.bias[c0..c1]) {
                        *d = v + b;
                    }
                    if let Some(e) = &c.edge {
                        let row = classes[t * MR + r] * c.cout;
                        dst.iter_mut().zip(&e[row + c0..row + c1]).for_each(|(d, e)| *d += e);
                    }
                    if c.relu {
                        // Not f32::max: in wasm that is a call to libm's fmaxf (NaN
                        // rules), which cost a quarter of the whole decode.
                        dst.iter_mut().for_each(|d| *d = if *d > 0.0 { *d } else { 0.0 });
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fold::EDGE_CLASSES;

    /// One conv on awkward shapes (7x5 pixels: a partial last tile; 11 output channels: an
    /// odd, partial block; strided, offset input and output) gives the same bits on 1, 2
    /// and 3 threads, where 3 threads split 9 tiles unevenly, and the values outside the
    /// output's channels are left alone.
    #[test]
    fn threads_give_identical_bits() {
        let val = |i: usize| ((i * 7919 % 997) as f32 / 498.0 - 1.0) * 0.7;
        let (cin, cout) = (13, 11);
        let conv = Conv {
            ksize: 3,
            cin,
            cout,
            weight: (0..9 * cin * cout).map(val).collect(),
            bias: (0..cout).map(|i| val(i + 5)).collect(),
            edge: Some((0..EDGE_CLASSES * cout).map(|i| val(i + 11)).collect()),
            relu: true,
        };
        let p = PackedConv::new(&conv);
        let g = Geometry { batch: 1, h: 7, w: 5, in_stride: cin + 2, in_offset: 1, out_stride: cout + 3, out_offset: 2 };
        let input: Vec<f32> = (0..35 * g.in_stride).map(|i| val(i + 3)).collect();
        let run = |threads: usize| {
            let mut out = vec![7.5f32; 35 * g.out_stride];
            let x = Exec { threads: Threads::new(threads), kernel: Kernel::detect() };
            // `run` would not split a conv this small: split it as `run` splits big ones.
            let rows = 9usize.div_ceil(threads) * MR;
            x.threads.split_rows(&mut out, g.out_stride, rows, |first, part| p.run_part(x.kernel, g, &input, first..(first + rows).min(35), part));
            out
        };
        let one = run(1);
        assert!(one.iter().enumerate().all(|(i, v)| (i % g.out_stride >= 2 && i % g.out_stride < 13) != (*v == 7.5)), "only the output channels are written");
        assert!(one.contains(&0.0), "relu clipped something");
        for n in [2, 3] {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&run(n)), bits(&one), "{n} threads");
        }
        // And `run` itself on one thread gives the same.
        let mut out = vec![7.5f32; 35 * g.out_stride];
        p.run(&Exec { threads: Threads::new(1), kernel: Kernel::detect() }, g, &input, &mut out);
        assert_eq!(out, one);
    }
}
