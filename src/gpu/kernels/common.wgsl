// Elementwise kernels run 256 threads per workgroup on a 2D grid of workgroups, so
// that more than 65535 * 256 elements fit in one dispatch.
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// Shared by every kernel (after the generated const header). The uniform structs
// (Call and each kernel's parameters) and the binding declarations are generated from
// their Rust definitions in src/gpu/kernels/ and prepended too.

// The temperature of `level` in the per-call values.
fn level_temperature(call: Call, level: u32) -> f32 {
    return call.temps[level / 4u][level % 4u];
}
