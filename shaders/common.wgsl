// Shared by every kernel (prepended after the generated const header).

// Elementwise kernels run 256 threads per workgroup on a 2D grid of workgroups, so
// that more than 65535 * 256 elements fit in one dispatch.
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// Values the host writes once per call: the random seed, how many values to draw
// and from which index, whether output is quantized,
// and one temperature per level (up to 8 levels).
struct Call {
    seed: u32,
    count: u32,
    base: u32,  // index of the first value, so a batch split in chunks draws the same values
    quantize: u32,  // image_out: floor to n_bits levels
    temps: array<vec4<f32>, 2>,
}

fn level_temperature(call: Call, level: u32) -> f32 {
    return call.temps[level / 4u][level % 4u];
}
