// Weight reads of the conv kernels when weights are stored as f32 (`weight` is
// array<vec4<f32>> for every variant; the scalar kernel's buffer is padded to whole vec4s).
// The other storage format is conv_weights_f16.wgsl; conv.rs picks one.

// 4 consecutive weights starting at vec4 index i.
fn weight4(i: u32) -> vec4<f32> {
    return weight[i];
}

// The weight at float index i.
fn weight1(i: u32) -> f32 {
    return weight[i / 4u][i % 4u];
}
