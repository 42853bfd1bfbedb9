// The epilogue of the conv kernels that store scalars (conv2d, conv2d_skinny): bias, edge
// table, relu, and the fused additive coupling, for one output value.

fn store_scalar(m: u32, co: u32, border: u32, acc: f32) {
    var v = acc + bias[co];
    if (EDGE) {
        v += edge[border * params.cout + co];
    }
    if (RELU) {
        v = max(v, 0.0);
    }
    let o = m * params.out_stride + params.out_offset + co;
    if (COMBINE != 0) {
        v = output[o] + f32(COMBINE) * v;   // fused additive coupling: z2 +- NN(z1)
    }
    output[o] = v;
}
