// Shared by the conv kernels (conv2d, conv2d_vec4, conv2d_skinny) and im2col; their
// parameters (Conv2dParams) are generated from src/gpu/kernels/conv.rs.

// Border class of a pixel for the edge-bias table: bit 0 top row, bit 1 bottom row,
// bit 2 left column, bit 3 right column.
fn border_class(y: u32, x: u32, h: u32, w: u32) -> u32 {
    return select(0u, 1u, y == 0u) | select(0u, 2u, y + 1u == h)
         | select(0u, 4u, x == 0u) | select(0u, 8u, x + 1u == w);
}

// Which output-channel block and pixel block a thread of the vec4 and skinny kernels
// computes. A workgroup of 64 threads covers tx = min(blocks, 8) channel blocks x
// floor(64 / tx) pixel blocks: threads share weights along one axis and inputs along the
// other, and none idles when there are few channel blocks (a fixed 8 x 8 workgroup left
// 6 of every 8 threads without work for the 6-channel last conv of a face model).
// Consecutive threads take consecutive pixel blocks, so neighbouring lanes read the same
// weights (measured on lavapipe: the 1024^3 matmul 7.4 -> 8.0 GFLOP/s against lanes along
// channels). Returns (channel block, pixel block, 1 if the thread has a tile).
// Mirrored by `conv_tile_groups` in src/gpu/kernels/conv.rs.
fn conv_tile(lid: u32, wid: vec3<u32>, nwg: vec3<u32>, blocks: u32) -> vec3<u32> {
    let tx = min(blocks, 8u);
    let ty = 64u / tx;
    let wg = wid.x + wid.y * nwg.x;
    let tiles = (blocks + tx - 1u) / tx;
    let lx = lid / ty;
    let ly = lid % ty;
    return vec3<u32>((wg % tiles) * tx + lx, (wg / tiles) * ty + ly, select(0u, 1u, lx < tx && ly < ty));
}

// (image, row, column) of output pixel m, clamped to the last pixel: a tile that runs past
// the end computes duplicates it never stores. (`params` is each conv kernel's uniform.)
fn conv_pixel(m: u32) -> vec3<i32> {
    let mm = min(m, params.m - 1u);
    let hw = params.h * params.w;
    let rem = mm % hw;
    return vec3<i32>(i32(mm / hw), i32(rem / params.w), i32(rem % params.w));
}
