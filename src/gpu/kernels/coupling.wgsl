// Coupling combine on the second half (z2) of a dense state with C channels, given the
// coupling net's output h. Additive: z2 +/-= h. Affine: h holds interleaved
// (shift, raw scale); scale = sigmoid(raw + 2); forward z2 = (z2 + shift) * scale,
// reverse z2 = z2 / scale - shift; the forward pass also writes ln(scale) into
// `terms` for the log-determinant reduction.
//
// Specialised by the const header: AFFINE, REVERSE.

fn log_sigmoid(a: f32) -> f32 {
    if (a >= 0.0) {
        return -log(1.0 + exp(-a));
    }
    return a - log(1.0 + exp(a));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= params.count) {
        return;
    }
    let m = i / params.half;
    let j = i % params.half;
    let zi = m * params.c + params.half + j;
    let z = state[zi];
    if (AFFINE) {
        let shift = h[m * params.c + 2u * j];
        let a = h[m * params.c + 2u * j + 1u] + 2.0;
        let scale = 1.0 / (1.0 + exp(-a));
        if (REVERSE) {
            state[zi] = z / scale - shift;
        } else {
            state[zi] = (z + shift) * scale;
            terms[i] = log_sigmoid(a);
        }
    } else {
        let d = h[m * params.half + j];
        if (REVERSE) {
            state[zi] = z - d;
        } else {
            state[zi] = z + d;
        }
    }
}
