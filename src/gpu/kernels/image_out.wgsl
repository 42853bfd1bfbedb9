// Model output -> RGBA8 (one u32 per pixel, red in the low byte, alpha 255). With
// `call.quantize`, values are floored to n_bits levels (OpenAI's bit-exact output);
// otherwise the continuous value is scaled to 0..255 and floored. One-channel models
// write grey.

fn to_u8(v: f32) -> u32 {
    let u = v + 0.5;
    if (call.quantize != 0u) {
        let bins = f32(1u << params.n_bits);
        // OpenAI's postprocess: clip(floor((x + 0.5) * n_bins) * (256 / n_bins), 0, 255).
        return u32(clamp(floor(u * bins) * (256.0 / bins), 0.0, 255.0));
    }
    return u32(clamp(floor(u * 256.0), 0.0, 255.0));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= params.pixels) {
        return;
    }
    var out = 0xff000000u;
    for (var k = 0u; k < 3u; k++) {
        let src = i * params.channels + min(k, params.channels - 1u);
        out |= to_u8(x[src]) << (8u * k);
    }
    rgba[i] = out;
}
