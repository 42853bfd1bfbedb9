// Split and top priors. `h` holds interleaved (mean, logs) for `cz` channels per pixel
// (h_image_stride = 0 for the constant top prior). Forward: eps = (z - mean) / exp(logs),
// and the Gaussian log-density term of each value goes to `terms`. Reverse:
// z = mean + exp(logs) * T * eps with the level's temperature from `call`.
//
// Specialised by the const header: REVERSE.

const LN_2PI: f32 = 1.8378770664093453;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= params.count) {
        return;
    }
    let per_image = params.pixels * params.cz;
    let b = i / per_image;
    let r = i % per_image;
    let p = r / params.cz;
    let j = r % params.cz;
    let hi = b * params.h_image_stride + p * 2u * params.cz + 2u * j;
    let mean = h[hi];
    let logs = h[hi + 1u];
    let zi = (b * params.pixels + p) * params.z_stride + params.z_offset + j;
    let ei = b * params.eps_image_stride + params.eps_offset + r;
    if (REVERSE) {
        let t = level_temperature(call, params.level);
        state[zi] = mean + exp(logs) * t * eps[ei];
    } else {
        let e = (state[zi] - mean) * exp(-logs);
        eps[ei] = e;
        terms[i] = -0.5 * (LN_2PI + e * e) - logs;
    }
}
