// im2col for a 3x3 conv with few input channels (cin not a multiple of 4, such as z1 = 6
// channels at a face model's first level): writes each pixel's 3x3 x cin receptive field,
// zeros outside the image, as one dense row of `out_stride` = ceil(9 * cin / 4) * 4 floats
// (tap-major, then channel: the row order of the conv's weight matrix). The conv then runs
// as a 1x1 conv over those rows with whole vec4 reads, instead of reading cin = 6 as two
// vec4s of which a quarter is masked padding. One thread per row value.
// Uses Conv2dParams (conv_common.wgsl): cin, in_stride, in_offset of the input; out_stride
// is the row length; cout and out_offset are unused.

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    let row = params.out_stride;
    if (i >= params.m * row) {
        return;
    }
    let m = i / row;
    let j = i % row;
    let tap = j / params.cin;
    var v = 0.0;
    if (tap < 9u) {
        let hw = params.h * params.w;
        let rem = m % hw;
        let y = i32(rem / params.w) + i32(tap / 3u) - 1;
        let x = i32(rem % params.w) + i32(tap % 3u) - 1;
        if (y >= 0 && y < i32(params.h) && x >= 0 && x < i32(params.w)) {
            let pix = ((m / hw) * params.h + u32(y)) * params.w + u32(x);
            v = input[pix * params.in_stride + params.in_offset + j % params.cin];
        }
    }
    cols[i] = v;
}
