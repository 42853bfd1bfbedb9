// Per-image sum: acc[b] += sum(terms[b * n .. (b + 1) * n]). One workgroup per image,
// a fixed summation order, so the result is deterministic.

struct ReduceParams {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> terms: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(1) @binding(0) var<uniform> params: ReduceParams;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wid.x;
    var s = 0.0;
    for (var j = lid; j < params.n; j += 256u) {
        s += terms[b * params.n + j];
    }
    partial[lid] = s;
    workgroupBarrier();
    for (var width = 128u; width > 0u; width /= 2u) {
        if (lid < width) {
            partial[lid] += partial[lid + width];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        acc[b] += partial[0];
    }
}
