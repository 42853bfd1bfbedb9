// The conv2d kernel (see conv2d.wgsl) for few output channels that are not a multiple
// of 4, such as the coupling net's last 3x3 conv (width -> C/2 = 6 at a face model's
// first level). The weights are stored transposed, [cout][tap][ceil(cin/4)*4] (zero
// padded), so both the input (channels contiguous in NHWC) and the weights are read as
// vec4 along the inner dimension: each thread computes 8 pixels x 3 output channels as
// 24 vec4 dot products per 11 vec4 loads. Threads are laid out by conv_tile (conv_common.wgsl).
// Three channels, not four: the face models' counts (6, 12, 24 at the first levels) are
// multiples of 3, and with 4 the 6-channel conv computed a quarter of its sums for nothing.
//
// Specialised by the const header: KSIZE (1 or 3), RELU, EDGE, COMBINE (0: store the
// result; 1 / -1: add it to / subtract it from what the output holds), SCALED (see conv2d.wgsl).

const TM: u32 = 8u;
const TN: u32 = 3u;
alias Acc = vec3<f32>;
const RADIUS: i32 = i32(KSIZE / 2u);

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let blocks = (params.cout + TN - 1u) / TN;
    let tile = conv_tile(lid, wid, nwg, blocks);
    let co0 = tile.x * TN;
    let m0 = tile.y * TM;
    if (tile.z == 0u || co0 >= params.cout || m0 >= params.m) {
        return;
    }
    let cin4 = (params.cin + 3u) / 4u;
    let k4 = KSIZE * KSIZE * cin4;
    let in_stride4 = params.in_stride / 4u;
    let in_offset4 = params.in_offset / 4u;
    // Output channels past cout read (and later drop) the last valid channel's weights.
    var wrow: array<u32, TN>;
    for (var c = 0u; c < TN; c++) {
        wrow[c] = min(co0 + c, params.cout - 1u) * k4;
    }
    var pix: array<vec3<i32>, TM>;   // (image, row, column) of each pixel
    for (var r = 0u; r < TM; r++) {
        pix[r] = conv_pixel(m0 + r);
    }
    var acc: array<Acc, TM>;   // acc[r][c]
    for (var ky = 0; ky < i32(KSIZE); ky++) {
        for (var kx = 0; kx < i32(KSIZE); kx++) {
            var base: array<u32, TM>;
            var inside: array<bool, TM>;
            for (var r = 0u; r < TM; r++) {
                let yy = pix[r].y + ky - RADIUS;
                let xx = pix[r].z + kx - RADIUS;
                inside[r] = yy >= 0 && yy < i32(params.h) && xx >= 0 && xx < i32(params.w);
                let q = (u32(pix[r].x) * params.h + u32(clamp(yy, 0, i32(params.h) - 1))) * params.w
                        + u32(clamp(xx, 0, i32(params.w) - 1));
                base[r] = q * in_stride4 + in_offset4;
            }
            let kbase = (u32(ky) * KSIZE + u32(kx)) * cin4;
            for (var c4 = 0u; c4 < cin4; c4++) {
                let lane = vec4<u32>(c4 * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.cin);
                let w0 = weight4(wrow[0] + kbase + c4);
                let w1 = weight4(wrow[1] + kbase + c4);
                let w2 = weight4(wrow[2] + kbase + c4);
                for (var r = 0u; r < TM; r++) {
                    let a = select(vec4<f32>(0.0), input[base[r] + c4], lane & vec4<bool>(inside[r]));
                    acc[r] += vec3<f32>(dot(a, w0), dot(a, w1), dot(a, w2));
                }
            }
        }
    }
    store_tile(m0, co0, pix, acc);
}
