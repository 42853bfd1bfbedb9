// Convolution as implicit GEMM: rows are output pixels (batch * h * w), columns are
// output channels, the inner dimension is (tap, input channel). Each thread keeps a
// 4 x 4 block of outputs in registers (register tiling wins on CPU adapters, where
// barrier-heavy shared-memory tiling loses), so a workgroup of 8 x 8 threads covers
// 32 pixels x 32 channels. Zero padding; OpenAI's edge channel is folded into a bias
// table indexed by the pixel's border class. Bias, edge table and relu are fused.
//
// Specialised by the const header: KSIZE (1 or 3), RELU, EDGE, COMBINE (0: store the
// result; 1 / -1: add it to / subtract it from what the output holds), SCALED (f16 weights
// with a per-output-channel factor after bias[cout]). Weights are read through weight1 /
// weight4 (conv_weights_f32.wgsl or conv_weights_f16.wgsl).

const TM: u32 = 4u;
const TN: u32 = 4u;
alias Acc = vec4<f32>;
const RADIUS: i32 = i32(KSIZE / 2u);

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let co0 = gid.x * TN;
    let m0 = gid.y * TM;
    if (co0 >= params.cout || m0 >= params.m) {
        return;
    }
    var pix: array<vec3<i32>, TM>;   // (image, row, column) of each pixel
    for (var r = 0u; r < TM; r++) {
        pix[r] = conv_pixel(m0 + r);
    }
    var acc: array<Acc, TM>;
    for (var ky = 0; ky < i32(KSIZE); ky++) {
        for (var kx = 0; kx < i32(KSIZE); kx++) {
            // Where each of the 4 rows reads this tap, and whether it is inside.
            var base: array<u32, 4>;
            var inside: array<bool, 4>;
            for (var r = 0u; r < TM; r++) {
                let yy = pix[r].y + ky - RADIUS;
                let xx = pix[r].z + kx - RADIUS;
                inside[r] = yy >= 0 && yy < i32(params.h) && xx >= 0 && xx < i32(params.w);
                let q = (u32(pix[r].x) * params.h + u32(max(yy, 0))) * params.w + u32(max(xx, 0));
                base[r] = q * params.in_stride + params.in_offset;
            }
            let tap = u32(ky) * KSIZE + u32(kx);
            for (var ci = 0u; ci < params.cin; ci++) {
                let wrow = (tap * params.cin + ci) * params.cout + co0;
                var wv = vec4<f32>(0.0);
                for (var c = 0u; c < TN; c++) {
                    if (co0 + c < params.cout) {
                        wv[c] = weight1(wrow + c);
                    }
                }
                for (var r = 0u; r < TM; r++) {
                    if (inside[r]) {
                        acc[r] += input[base[r] + ci] * wv;
                    }
                }
            }
        }
    }
    store_tile(m0, co0, pix, acc);
}
