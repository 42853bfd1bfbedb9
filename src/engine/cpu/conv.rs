//! One folded conv on the CPU: an indirection list of input rows per tile of pixels, the
//! GEMM micro-kernel against weights packed once at load, then bias, edge-bias table and
//! relu; or, for convs with few output or few input channels on AVX2 / AVX-512, the `narrow`
//! kernel with pixels across the lanes (the same bits). Split by output pixels over the
//! engine's threads.

use super::gemm::{Kernel, MR, NR};
use super::narrow::{self, Planes};
use super::threads::Team;
use crate::model::flow::Geometry;
use crate::model::fold::{edge_class, Conv};

/// Below this many multiply-adds per part a conv is not split: the join would cost more
/// than the work (the smallest convs, at the top level, are about 1e5).
const MIN_MACS_PER_PART: usize = 1 << 15;
/// A conv is split into up to this many parts per thread, taken as threads come free: on a
/// shared machine one core can run at half speed for minutes (measured here), and with one
/// part per thread the whole conv would wait for its slow half. (2 threads, batch 1, median
/// of four alternating runs: 37.5 ms per decode with 1 part per thread, 31.9 with 4.)
const PARTS_PER_THREAD: usize = 4;
/// Convs with at most this many of the narrow kernel's channel groups of output channels run
/// with pixels across the vector lanes (`narrow`) where the kernel allows.
const NARROW_MAX_GROUPS: usize = 2;
/// 3x3 convs with fewer input channels than this (and output channels in 8s) too: their taps
/// are too short for the GEMM kernels' per-tap setup.
const NARROW_BELOW_CIN: usize = 16;

thread_local! {
    /// The input planes of the narrow convs, kept for the next call on this thread.
    static PLANES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What a conv runs with: the threads of the current call.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub team: &'a Team,
}

/// A conv with its weights packed for its micro-kernel (`Kernel::pack`), and its bias and edge
/// table padded to whole blocks of 8 channels (zeros), so the epilogue works on whole
/// vectors.
pub struct PackedConv {
    pub conv: Conv,
    /// The micro-kernel the weights are packed for.
    kernel: Kernel,
    packed: Vec<f32>,
    bias: Vec<f32>,
    edge: Option<Vec<f32>>,
    /// Run by `narrow` in calls of this shape (AVX2 or AVX-512, and few output channels or
    /// few input channels) where the image's shape fits.
    narrow: Option<narrow::Shape>,
}

impl PackedConv {
    /// `conv` with its weights packed for `kernel` (`Kernel::pack`), which runs it.
    pub fn new(conv: &Conv, kernel: Kernel) -> Self {
        let k = conv.ksize * conv.ksize * conv.cin;
        let blocks = conv.cout.div_ceil(NR);
        let packed = kernel.pack(&conv.weight, k, conv.cout);
        let pad = |v: &[f32]| -> Vec<f32> {
            v.chunks_exact(conv.cout).flat_map(|row| row.iter().copied().chain(std::iter::repeat(0.0)).take(blocks * NR)).collect()
        };
        let few_inputs = || narrow::few_inputs(kernel).filter(|s| conv.ksize > 1 && conv.cin < NARROW_BELOW_CIN && conv.cout.is_multiple_of(s.group));
        let narrow = narrow::few_outputs(kernel).filter(|s| conv.cout <= NARROW_MAX_GROUPS * s.group).or_else(few_inputs);
        PackedConv { conv: conv.clone(), kernel, packed, bias: pad(&conv.bias), edge: conv.edge.as_deref().map(pad), narrow }
    }

    /// `out[p, out_offset + co]` for a `[batch, h, w, in_stride]` input (channels at
    /// `in_offset`), same semantics as `reference::ops::conv2d`. The pixels are split into
    /// up to `PARTS_PER_THREAD` parts per thread, in whole tiles.
    pub fn run(&self, x: Ctx, g: Geometry, input: &[f32], out: &mut [f32]) {
        let c = &self.conv;
        let total = g.batch * g.h * g.w;
        let narrow = self.narrow.filter(|shape| shape.fits(g));
        // The unit a part is made of: a tile, or a call of the narrow kernel.
        let unit = narrow.map_or(MR, |shape| shape.pixels());
        let units = total.div_ceil(unit);
        let macs = total * c.ksize * c.ksize * c.cin * c.cout;
        let n = x.team.count();
        let wanted = if n > 1 { n * PARTS_PER_THREAD } else { 1 };
        let parts = wanted.min(macs / MIN_MACS_PER_PART).min(units).max(1);
        let rows = units.div_ceil(parts) * unit;
        let out = &mut out[..total * g.out_stride];
        let pixels = |first: usize| first..(first + rows).min(total);
        if let Some(shape) = narrow {
            PLANES.with_borrow_mut(|buf| {
                let planes = Planes::new(x.team, g, input, c.cin, c.ksize / 2, buf);
                x.team.split_rows(out, g.out_stride, rows, |first, part| self.run_narrow(shape, g, &planes, pixels(first), part));
            });
        } else {
            x.team.split_rows(out, g.out_stride, rows, |first, part| self.run_part(g, input, pixels(first), part));
        }
    }

    /// As `run_part`, by the `narrow` kernel in calls of `shape` from the input's `planes`;
    /// `pixels` starts and ends at a multiple of the shape's pixels.
    fn run_narrow(&self, shape: narrow::Shape, g: Geometry, planes: &Planes, pixels: std::ops::Range<usize>, out: &mut [f32]) {
        let c = &self.conv;
        let mut sums: narrow::Sums = [0.0; narrow::MAX_ACC * narrow::MAX_LANES];
        for m0 in pixels.clone().step_by(shape.pixels()) {
            let rows = &mut out[(m0 - pixels.start) * g.out_stride..];
            for co0 in (0..c.cout).step_by(shape.group) {
                let n = shape.group.min(c.cout - co0);
                narrow::sums(self.kernel, shape, planes, g, c.ksize, c.cin, &c.weight, c.cout, m0, co0, n, &mut sums);
                narrow::store(shape, &sums, n, rows, g.out_stride, g.out_offset + co0);
            }
        }
        self.epilogue(g, out, pixels.start, pixels);
    }

    /// Output pixels `pixels` (starting at a tile boundary) into `out`, which holds those
    /// pixels' rows only.
    fn run_part(&self, g: Geometry, input: &[f32], pixels: std::ops::Range<usize>, out: &mut [f32]) {
        let c = &self.conv;
        let (h, w) = (g.h, g.w);
        let ks = c.ksize;
        let rad = (ks / 2) as isize;
        let blocks = c.cout.div_ceil(NR);
        let total = pixels.end;
        let tiles = pixels.len().div_ceil(MR);
        // Tiles go in chunks of up to 64, and each block of NR output channels runs over the
        // whole chunk, so its packed weights stay in L1 while the activations stream from L2.
        let chunk = 64;
        let zeros = vec![0f32; c.cin];
        let mut rows: Vec<&[f32]> = Vec::with_capacity(chunk * ks * ks * MR);
        for t0 in (0..tiles).step_by(chunk) {
            let nt = chunk.min(tiles - t0);
            // rows[(t * taps + tap) * MR + r]: what tap `tap` of pixel r of tile t reads.
            rows.clear();
            for t in 0..nt {
                let m0 = pixels.start + (t0 + t) * MR;
                let pix: [Option<(usize, usize, usize)>; MR] = std::array::from_fn(|r| {
                    let m = m0 + r;
                    (m < total).then(|| (m / (h * w), (m / w) % h, m % w))
                });
                for ky in 0..ks {
                    for kx in 0..ks {
                        rows.extend(pix.iter().map(|p| {
                            let Some((b, y, x)) = *p else { return &zeros[..] };
                            let yy = y as isize + ky as isize - rad;
                            let xx = x as isize + kx as isize - rad;
                            if yy < 0 || yy >= h as isize || xx < 0 || xx >= w as isize {
                                &zeros[..]
                            } else {
                                let src = ((b * h + yy as usize) * w + xx as usize) * g.in_stride + g.in_offset;
                                &input[src..src + c.cin]
                            }
                        }));
                    }
                }
            }
            // The kernel's sums go straight to the output rows; the epilogue then runs over
            // each pixel's whole row at once (a loop the compiler vectorises), not per tile
            // and block: per tile it took a fifth of a decode.
            self.kernel.chunk(&rows, nt, c.cin, &self.packed, blocks, |t, nb, acc| {
                let m0 = pixels.start + (t0 + t) * MR;
                let (c0, c1) = (nb * NR, (nb * NR + NR).min(c.cout));
                for (r, accr) in acc.iter().enumerate().take(MR.min(total - m0)) {
                    let o = (m0 + r - pixels.start) * g.out_stride + g.out_offset;
                    match <&mut [f32; NR]>::try_from(&mut out[o + c0..o + c1]) {
                        Ok(dst) => *dst = *accr,
                        Err(_) => store_partial(&mut out[o + c0..o + c1], accr),
                    }
                }
            });
            let first = pixels.start + t0 * MR;
            self.epilogue(g, out, pixels.start, first..(first + nt * MR).min(total));
        }
    }

    /// Bias, edge table and relu on the sums in the rows of output pixels `pixels` (`out`
    /// holds the rows from pixel `start` on).
    fn epilogue(&self, g: Geometry, out: &mut [f32], start: usize, pixels: std::ops::Range<usize>) {
        let c = &self.conv;
        let blocks = c.cout.div_ceil(NR);
        // (acc + bias) + edge, then relu, in that order (the bits the tests pin), in one
        // pass over each row. Not f32::max for relu: in wasm that is a call to libm's
        // fmaxf (NaN rules), which cost a quarter of the whole decode.
        let bias = &self.bias[..c.cout];
        let relu = |v: f32| if v > 0.0 { v } else { 0.0 };
        for m in pixels {
            let o = (m - start) * g.out_stride + g.out_offset;
            let row = &mut out[o..o + c.cout];
            let edge = self.edge.as_ref().map(|e| {
                let at = edge_class((m / g.w) % g.h, m % g.w, g.h, g.w) * blocks * NR;
                &e[at..at + c.cout]
            });
            match (edge, c.relu) {
                (Some(e), true) => row.iter_mut().zip(bias).zip(e).for_each(|((v, b), e)| *v = relu((*v + b) + e)),
                (Some(e), false) => row.iter_mut().zip(bias).zip(e).for_each(|((v, b), e)| *v = (*v + b) + e),
                (None, true) => row.iter_mut().zip(bias).for_each(|(v, b)| *v = relu(*v + b)),
                (None, false) => row.iter_mut().zip(bias).for_each(|(v, b)| *v += b),
            }
        }
    }
}

/// The first channels of a partial block. Out of line: where both stores were inline, LLVM
/// merged them into one call to memcpy of run-time length, which took 15% of the time.
#[cold]
#[inline(never)]
fn store_partial(dst: &mut [f32], v: &[f32; NR]) {
    dst.copy_from_slice(&v[..dst.len()]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cpu::threads::Threads;
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
            out_scale: None,
        };
        let p = PackedConv::new(&conv, Kernel::detect());
        let g = Geometry { batch: 1, h: 7, w: 5, in_stride: cin + 2, in_offset: 1, out_stride: cout + 3, out_offset: 2 };
        let input: Vec<f32> = (0..35 * g.in_stride).map(|i| val(i + 3)).collect();
        let run = |threads: usize| {
            let mut out = vec![7.5f32; 35 * g.out_stride];
            // `run` would not split a conv this small: split it as `run` splits big ones.
            let rows = 9usize.div_ceil(threads) * MR;
            Threads::new(threads).call(|team| {
                team.split_rows(&mut out, g.out_stride, rows, |first, part| p.run_part(g, &input, first..(first + rows).min(35), part))
            });
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
        Threads::new(1).call(|team| p.run(Ctx { team }, g, &input, &mut out));
        assert_eq!(out, one);
    }

    /// The narrow convs (pixels across the lanes, AVX2 and AVX-512) give the GEMM kernels'
    /// bits: a 3x3 conv with 11 output channels (two channel groups, the second partial),
    /// edge table and relu, a 1x1 conv with 6, and a 3x3 conv from 6 input channels to 24
    /// (the few-inputs shape: three groups of 8 through the transpose), on 2 images of 4 x 16
    /// with strided, offset input and output, on 1 and 2 threads, against the AVX2 GEMM kernel.
    #[test]
    fn narrow_convs_give_the_gemm_bits() {
        let narrowed: Vec<Kernel> = Kernel::available().into_iter().filter(|&k| narrow::few_outputs(k).is_some()).collect();
        let Some(&gemm) = narrowed.first() else {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        };
        let val = |i: usize| ((i * 7919 % 997) as f32 / 498.0 - 1.0) * 0.7;
        for (ksize, cin, cout, edge) in [(3, 13, 11, true), (1, 13, 6, false), (3, 6, 24, true)] {
            let conv = Conv {
                ksize,
                cin,
                cout,
                weight: (0..ksize * ksize * cin * cout).map(val).collect(),
                bias: (0..cout).map(|i| val(i + 5)).collect(),
                edge: edge.then(|| (0..EDGE_CLASSES * cout).map(|i| val(i + 11)).collect()),
                relu: edge,
                out_scale: None,
            };
            let g = Geometry { batch: 2, h: 4, w: 16, in_stride: cin + 2, in_offset: 1, out_stride: cout + 3, out_offset: 2 };
            let input: Vec<f32> = (0..128 * g.in_stride).map(|i| val(i + 3)).collect();
            let run = |kernel: Kernel, narrowed: bool, threads: usize| {
                let mut p = PackedConv::new(&conv, kernel);
                // The few-inputs shape is AVX-512's only.
                assert_eq!(p.narrow.is_some(), cout <= 12 || kernel.has_avx512(), "{}", kernel.name());
                assert!(p.narrow.is_none_or(|shape| shape.fits(g)));
                if !narrowed {
                    p.narrow = None;
                }
                let mut out = vec![7.5f32; 128 * g.out_stride];
                Threads::new(threads).call(|team| p.run(Ctx { team }, g, &input, &mut out));
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let want = run(gemm, false, 1);
            assert!(want.iter().filter(|&&b| b == 7.5f32.to_bits()).count() == 128 * 3, "only the output channels are written");
            for &kernel in &narrowed {
                for threads in [1, 2] {
                    assert_eq!(run(kernel, true, threads), want, "{}: {ksize}x{ksize} conv, {threads} threads", kernel.name());
                }
            }
        }
    }
}
