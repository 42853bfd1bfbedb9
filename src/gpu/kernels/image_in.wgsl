// RGBA8 pixels (one u32 each, red in the low byte) -> model input: quantized to n_bits,
// scaled to [-0.5, 0.5), plus the bin centre. One-channel models read red.

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= params.pixels) {
        return;
    }
    let v = rgba[i];
    let bins = f32(1u << params.n_bits);
    for (var k = 0u; k < params.channels; k++) {
        let byte = (v >> (8u * k)) & 255u;
        let q = f32(byte >> (8u - params.n_bits));
        x[i * params.channels + k] = q / bins - 0.5 + 0.5 / bins;
    }
}
