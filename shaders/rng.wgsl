// Counter-based standard normal generator: eps[i] = normal(seed, i). The same integer
// hash (lowbias32) and Box-Muller transform as reference::ops::normal, so a seed gives
// the same eps natively and in the browser (up to the rounding of log and cos).

@group(0) @binding(0) var<storage, read_write> eps: array<f32>;
@group(1) @binding(0) var<uniform> call: Call;

fn hash32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= call.count) {
        return;
    }
    let n = call.base + i;
    let key = hash32(call.seed ^ 0x85ebca6bu);
    let a = hash32(key ^ hash32(n * 2u));
    let b = hash32(key ^ hash32(n * 2u + 1u));
    let u1 = f32((a >> 8u) + 1u) / 16777216.0;
    let u2 = f32(b >> 8u) / 16777216.0;
    eps[i] = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
