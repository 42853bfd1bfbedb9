// The epilogue of the conv kernels that store scalars (conv2d, conv2d_skinny): bias, edge
// table, relu, and the fused additive coupling. Both kernels compute TM pixels x TN output
// channels per thread (acc[r][c]) and define TM, TN and Acc (a vector of TN floats).

fn store_scalar(m: u32, co: u32, border: u32, acc: f32) {
    var v = acc;
    if (SCALED) {
        v *= bias[params.cout + co];   // f16 weights: the factor kept out of them
    }
    v += bias[co];
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

fn store_tile(m0: u32, co0: u32, pix: array<vec3<i32>, TM>, acc: array<Acc, TM>) {
    for (var r = 0u; r < TM; r++) {
        let m = m0 + r;
        if (m >= params.m) {
            break;
        }
        var border = 0u;
        if (EDGE) {
            border = border_class(u32(pix[r].y), u32(pix[r].z), params.h, params.w);
        }
        for (var c = 0u; c < TN; c++) {
            if (co0 + c >= params.cout) {
                break;
            }
            store_scalar(m, co0 + c, border, acc[r][c]);
        }
    }
}
