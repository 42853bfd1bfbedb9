// Per-image sum: acc[b] += sum(terms[b * n .. (b + 1) * n]). One workgroup per image,
// a fixed summation order, so the result is deterministic.

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
