// Shared by the conv kernels (conv2d, conv2d_vec4, conv2d_skinny): their parameters,
// mirrored by Conv2dParams in src/gpu/kernels.rs.

struct Conv2dParams {
    batch: u32,
    h: u32,
    w: u32,
    cin: u32,
    cout: u32,
    in_stride: u32,
    in_offset: u32,
    out_stride: u32,
    out_offset: u32,
    m: u32,
    _pad0: u32,
    _pad1: u32,
}

// Border class of a pixel for the edge-bias table: bit 0 top row, bit 1 bottom row,
// bit 2 left column, bit 3 right column.
fn border_class(y: u32, x: u32, h: u32, w: u32) -> u32 {
    return select(0u, 1u, y == 0u) | select(0u, 2u, y + 1u == h)
         | select(0u, 4u, x == 0u) | select(0u, 8u, x + 1u == w);
}
