//! The CPU reference of the convolution: plain loops over NHWC buffers, f32 storage with
//! f64 accumulation, the same strides and offsets as the WGSL kernels, so the GPU tests
//! can compare them one to one. The elementwise steps (squeeze, coupling, priors) are the
//! model's own (`model::flow`), shared by every engine and by this reference.

use crate::model::fold::{edge_class, Conv};
pub use crate::model::flow::Geometry;

/// `out[p, co] = relu?(bias + edge[class(p)] + sum_{tap, ci} in[p + tap, ci] · W)`,
/// zero padding (the edge channel lives in the table).
pub fn conv2d(conv: &Conv, g: Geometry, input: &[f32], out: &mut [f32]) {
    let (h, w, k) = (g.h as isize, g.w as isize, conv.ksize as isize);
    let r = k / 2;
    let mut acc = vec![0f64; conv.cout];
    for b in 0..g.batch {
        for y in 0..h {
            for x in 0..w {
                for (co, a) in acc.iter_mut().enumerate() {
                    *a = conv.bias[co] as f64;
                    if let Some(t) = &conv.edge {
                        *a += t[edge_class(y as usize, x as usize, g.h, g.w) * conv.cout + co] as f64;
                    }
                }
                for ky in 0..k {
                    for kx in 0..k {
                        let (yy, xx) = (y + ky - r, x + kx - r);
                        if yy < 0 || yy >= h || xx < 0 || xx >= w {
                            continue;
                        }
                        let pix = (b * g.h + yy as usize) * g.w + xx as usize;
                        let tap = (ky * k + kx) as usize;
                        for ci in 0..conv.cin {
                            let v = input[pix * g.in_stride + g.in_offset + ci] as f64;
                            let row = &conv.weight[(tap * conv.cin + ci) * conv.cout..][..conv.cout];
                            for (a, wv) in acc.iter_mut().zip(row) {
                                *a += v * *wv as f64;
                            }
                        }
                    }
                }
                let pix = (b * g.h + y as usize) * g.w + x as usize;
                for (co, a) in acc.iter().enumerate() {
                    let v = if conv.relu { a.max(0.0) } else { *a };
                    out[pix * g.out_stride + g.out_offset + co] = v as f32;
                }
            }
        }
    }
}

