// im2col for a 3x3 conv with few input channels (cin not a multiple of 4, such as z1 = 6
// channels at a face model's first level): writes each pixel's 3x3 x cin receptive field,
// zeros outside the image, as one dense row of `out_stride` = ceil(9 * cin / 4) * 4 floats
// (tap-major, then channel: the row order of the conv's weight matrix). The conv then runs
// as a 1x1 conv over those rows with whole vec4 reads, instead of reading cin = 6 as two
// vec4s of which a quarter is masked padding.
// One thread per pixel writes its whole row: the pixel's coordinates take divisions by
// run-time sizes, which a CPU adapter (lavapipe) runs one lane at a time, so they are
// computed once per row (per value at first, then per tap: see README, Speed).
// Uses Conv2dParams (conv_common.wgsl): cin, in_stride, in_offset of the input; out_stride
// is the row length; cout and out_offset are unused.

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = linear_id(gid, nwg);
    if (m >= params.m) {
        return;
    }
    let hw = params.h * params.w;
    let img = m / hw;
    let rem = m % hw;
    let y0 = i32(rem / params.w) - 1;
    let x0 = i32(rem % params.w) - 1;
    let row = m * params.out_stride;
    for (var tap = 0u; tap < 9u; tap++) {
        let y = y0 + i32(tap / 3u);
        let x = x0 + i32(tap % 3u);
        let dst = row + tap * params.cin;
        if (y >= 0 && y < i32(params.h) && x >= 0 && x < i32(params.w)) {
            let src = ((img * params.h + u32(y)) * params.w + u32(x)) * params.in_stride + params.in_offset;
            for (var c = 0u; c < params.cin; c++) {
                cols[dst + c] = input[src + c];
            }
        } else {
            for (var c = 0u; c < params.cin; c++) {
                cols[dst + c] = 0.0;
            }
        }
    }
    for (var j = 9u * params.cin; j < params.out_stride; j++) {
        cols[row + j] = 0.0;
    }
}
