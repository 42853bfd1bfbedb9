// Counter-based standard normal generator: eps[i] = normal(seed, i). The same integer
// hash (lowbias32) and Box-Muller transform as reference::ops::normal. WGSL lets `log`
// and `cos` be quite inexact (cos to 2^-11 absolute; SwiftShader uses that freedom), so
// both are computed here with the same plain f32 polynomials as the CPU twin: a seed
// gives the same eps natively, in the browser and on the CPU to a few ulp.

fn hash32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

// ln(u) for u in (0, 1]: u = m * 2^e with m in [1, 2), ln m = 2 atanh((m-1)/(m+1)).
fn ln_poly(u: f32) -> f32 {
    let bits = bitcast<u32>(u);
    let e = f32(i32((bits >> 23u) & 255u) - 127);
    let m = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0))))));
    return e * 0.6931471805599453 + 2.0 * s * series;
}

// cos(2 pi u) for u in [0, 1): reduce to x in [-pi/2, pi/2] and a sign, Taylor to x^12.
fn cos_2pi_poly(u: f32) -> f32 {
    let t = u - floor(u + 0.5);            // [-0.5, 0.5)
    let a = abs(t);                        // cos is even
    let flip = a > 0.25;                   // cos(2 pi a) = -cos(2 pi (0.5 - a))
    let r = select(a, 0.5 - a, flip);      // [0, 0.25]
    let x = 6.283185307179586 * r;
    let x2 = x * x;
    let c = 1.0 - x2 * (1.0 / 2.0 - x2 * (1.0 / 24.0 - x2 * (1.0 / 720.0 - x2 * (1.0 / 40320.0 - x2 * (1.0 / 3628800.0 - x2 * (1.0 / 479001600.0))))));
    return select(c, -c, flip);
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
    eps[i] = sqrt(-2.0 * ln_poly(u1)) * cos_2pi_poly(u2);
}
