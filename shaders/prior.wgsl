// Split and top priors. `h` holds interleaved (mean, logs) for `cz` channels per pixel
// (h_image_stride = 0 for the constant top prior). Forward: eps = (z - mean) / exp(logs),
// and the Gaussian log-density term of each value goes to `terms`. Reverse:
// z = mean + exp(logs) * T * eps with the level's temperature from `call`.
//
// Specialised by the const header: REVERSE.

struct PriorParams {
    count: u32,  // batch * pixels * cz
    pixels: u32,
    cz: u32,
    z_stride: u32,
    z_offset: u32,
    h_image_stride: u32,
    eps_offset: u32,
    eps_image_stride: u32,
    level: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> state: array<f32>;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read_write> eps: array<f32>;
@group(0) @binding(3) var<storage, read_write> terms: array<f32>;
@group(1) @binding(0) var<uniform> params: PriorParams;
@group(1) @binding(1) var<uniform> call: Call;

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
