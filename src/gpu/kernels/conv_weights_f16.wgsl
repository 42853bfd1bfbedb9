// Weight reads of the conv kernels when weights are stored as f16: two halves per u32,
// the first in the low 16 bits (little-endian f16 pairs, as the host writes them), four per
// vec2<u32>. `unpack2x16float` is core WGSL, so this needs no `shader-f16` feature and runs
// on every adapter (SwiftShader in Chromium has none). The conversion to f32 is exact and
// all arithmetic stays f32; the per-output-channel factor divided out of the stored values
// is applied in the epilogue (SCALED, conv_store.wgsl and conv2d_vec4.wgsl).

// 4 consecutive weights starting at vec4 index i (weight index 4i).
fn weight4(i: u32) -> vec4<f32> {
    let p = weight[i];
    return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
}

// The weight at index i.
fn weight1(i: u32) -> f32 {
    let p = weight[i / 4u];
    return unpack2x16float(p[(i / 2u) % 2u])[i % 2u];
}
