// Squeeze and its exact inverse. The "small" side is dense [b, h, w, 4c] with channel
// c*4 + dy*2 + dx; the "big" side is [b, 2h, 2w, stride] holding the c channels at
// `offset`. One thread per small-side value.
//
// Specialised by the const header: UNSQUEEZE (false: big -> small).

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= params.count) {
        return;
    }
    let c4 = 4u * params.c;
    let k = i % c4;
    let pix = i / c4;
    let x = pix % params.w;
    let y = (pix / params.w) % params.h;
    let b = pix / (params.w * params.h);
    let ch = k / 4u;
    let dy = (k % 4u) / 2u;
    let dx = k % 2u;
    let big = ((b * 2u * params.h + 2u * y + dy) * 2u * params.w + 2u * x + dx) * params.stride
            + params.offset + ch;
    if (UNSQUEEZE) {
        dst[big] = src[i];
    } else {
        dst[i] = src[big];
    }
}
