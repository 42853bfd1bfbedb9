// The conv2d kernel (see conv2d.wgsl) when output channels, strides and offsets are
// multiples of 4: inputs, weights and outputs move as vec4, so each step of the inner
// loop does 4 vec4 loads of input (one per output pixel), 8 of weights (two blocks of 4
// output channels), and 32 vec4 multiply-adds. Input channels need not be a multiple of 4: the weights hold
// ceil(cin/4)*4 rows per tap (zero padded) and the lanes past cin are masked out of the
// input reads (they belong to other data, such as z2 next to z1).
//
// Specialised by the const header: KSIZE (1 or 3), RELU, EDGE, COMBINE (0: store the
// result; 1 / -1: add it to / subtract it from what the output holds), SCALED (see conv2d.wgsl).

const TM: u32 = 4u;
const RADIUS: i32 = i32(KSIZE / 2u);

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let cout4 = params.cout / 4u;
    // Each thread computes two blocks of 4 output channels: co4 and co4 + 1 (when it exists).
    let pairs = (cout4 + 1u) / 2u;
    let tile = conv_tile(lid, wid, nwg, pairs);
    let co4 = tile.x * 2u;        // output channels co4*4 .. co4*4+7
    let co4b = min(co4 + 1u, cout4 - 1u);
    let m0 = tile.y * TM;
    if (tile.z == 0u || co4 >= cout4 || m0 >= params.m) {
        return;
    }
    let cin4 = (params.cin + 3u) / 4u;
    let in_stride4 = params.in_stride / 4u;
    let in_offset4 = params.in_offset / 4u;
    var pix: array<vec3<i32>, TM>;   // (image, row, column) of each pixel
    for (var r = 0u; r < TM; r++) {
        pix[r] = conv_pixel(m0 + r);
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var bcc0 = vec4<f32>(0.0);
    var bcc1 = vec4<f32>(0.0);
    var bcc2 = vec4<f32>(0.0);
    var bcc3 = vec4<f32>(0.0);
    for (var ky = 0; ky < i32(KSIZE); ky++) {
        for (var kx = 0; kx < i32(KSIZE); kx++) {
            var base: array<u32, 4>;
            var inside: array<bool, 4>;
            for (var r = 0u; r < TM; r++) {
                let yy = pix[r].y + ky - RADIUS;
                let xx = pix[r].z + kx - RADIUS;
                let ok = yy >= 0 && yy < i32(params.h) && xx >= 0 && xx < i32(params.w);
                inside[r] = ok;
                let q = (u32(pix[r].x) * params.h + u32(clamp(yy, 0, i32(params.h) - 1))) * params.w
                        + u32(clamp(xx, 0, i32(params.w) - 1));
                base[r] = q * in_stride4 + in_offset4;
            }
            let tap = u32(ky) * KSIZE + u32(kx);
            // Weight rows for (tap, ci) are `cout` floats = cout4 vec4s apart.
            var wi = (tap * cin4 * 4u) * cout4 + co4;
            let wb = co4b - co4;
            for (var c4 = 0u; c4 < cin4; c4++) {
                let lane = vec4<u32>(c4 * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.cin);
                let w0 = weight4(wi);
                let w1 = weight4(wi + cout4);
                let w2 = weight4(wi + 2u * cout4);
                let w3 = weight4(wi + 3u * cout4);
                let v0 = weight4(wi + wb);
                let v1 = weight4(wi + wb + cout4);
                let v2 = weight4(wi + wb + 2u * cout4);
                let v3 = weight4(wi + wb + 3u * cout4);
                wi += 4u * cout4;
                let a0 = select(vec4<f32>(0.0), input[base[0] + c4], lane & vec4<bool>(inside[0]));
                let a1 = select(vec4<f32>(0.0), input[base[1] + c4], lane & vec4<bool>(inside[1]));
                let a2 = select(vec4<f32>(0.0), input[base[2] + c4], lane & vec4<bool>(inside[2]));
                let a3 = select(vec4<f32>(0.0), input[base[3] + c4], lane & vec4<bool>(inside[3]));
                acc0 += a0.x * w0 + a0.y * w1 + a0.z * w2 + a0.w * w3;
                acc1 += a1.x * w0 + a1.y * w1 + a1.z * w2 + a1.w * w3;
                acc2 += a2.x * w0 + a2.y * w1 + a2.z * w2 + a2.w * w3;
                acc3 += a3.x * w0 + a3.y * w1 + a3.z * w2 + a3.w * w3;
                bcc0 += a0.x * v0 + a0.y * v1 + a0.z * v2 + a0.w * v3;
                bcc1 += a1.x * v0 + a1.y * v1 + a1.z * v2 + a1.w * v3;
                bcc2 += a2.x * v0 + a2.y * v1 + a2.z * v2 + a2.w * v3;
                bcc3 += a3.x * v0 + a3.y * v1 + a3.z * v2 + a3.w * v3;
            }
        }
    }
    store_tile(m0, co4, pix, array<vec4<f32>, 8>(acc0, acc1, acc2, acc3, bcc0, bcc1, bcc2, bcc3));
}

// The epilogue: bias, edge table, relu and the fused additive coupling for the 4 pixels x
// 2 blocks of 4 output channels of one thread (accs[j * 4 + r]), written out as 8 calls
// rather than loops: on lavapipe a loop over the tile with early exits (pixels past the end,
// a missing second block) kept the accumulators in an indexed array and took 45% of the
// level-0 f1 conv's time; unrolled, with each block's bias and factor read once, f1 ran
// 1.5x faster and f2 1.25x (README, Speed). Functions of their own, as in conv_store.wgsl.
fn store_tile(m0: u32, co4: u32, pix: array<vec3<i32>, TM>, accs: array<vec4<f32>, 8>) {
    let cout4 = params.cout / 4u;
    let co4b = min(co4 + 1u, cout4 - 1u);   // a block that does not exist is not stored
    var scale_a = vec4<f32>(1.0);
    var scale_b = vec4<f32>(1.0);
    if (SCALED) {
        scale_a = bias[cout4 + co4];   // f16 weights: the factor kept out of them
        scale_b = bias[cout4 + co4b];
    }
    let bias_a = bias[co4];
    let bias_b = bias[co4b];
    let b0 = pixel_border(pix[0]);
    let b1 = pixel_border(pix[1]);
    let b2 = pixel_border(pix[2]);
    let b3 = pixel_border(pix[3]);
    store4(m0, co4, b0, accs[0], scale_a, bias_a);
    store4(m0 + 1u, co4, b1, accs[1], scale_a, bias_a);
    store4(m0 + 2u, co4, b2, accs[2], scale_a, bias_a);
    store4(m0 + 3u, co4, b3, accs[3], scale_a, bias_a);
    store4(m0, co4 + 1u, b0, accs[4], scale_b, bias_b);
    store4(m0 + 1u, co4 + 1u, b1, accs[5], scale_b, bias_b);
    store4(m0 + 2u, co4 + 1u, b2, accs[6], scale_b, bias_b);
    store4(m0 + 3u, co4 + 1u, b3, accs[7], scale_b, bias_b);
}

// The border class of a pixel for the edge table (0 when the conv has none).
fn pixel_border(p: vec3<i32>) -> u32 {
    if (EDGE) {
        return border_class(u32(p.y), u32(p.z), params.h, params.w);
    }
    return 0u;
}

// One pixel's block of 4 output channels c4, unless the pixel or the block is past the end.
fn store4(m: u32, c4: u32, border: u32, acc: vec4<f32>, scale: vec4<f32>, b: vec4<f32>) {
    let cout4 = params.cout / 4u;
    if (m >= params.m || c4 >= cout4) {
        return;
    }
    var v = acc;
    if (SCALED) {
        v *= scale;
    }
    v += b;
    if (EDGE) {
        v += edge[border * cout4 + c4];
    }
    if (RELU) {
        v = max(v, vec4<f32>(0.0));
    }
    let o = m * (params.out_stride / 4u) + params.out_offset / 4u + c4;
    if (COMBINE != 0) {
        v = output[o] + f32(COMBINE) * v;   // fused additive coupling: z2 +- NN(z1)
    }
    output[o] = v;
}
