//! Static checks: every kernel variant parses and validates with naga, and each uniform
//! struct in WGSL has the size and member offsets of its Rust twin.
#![cfg(not(target_arch = "wasm32"))]

use glow_web::gpu::kernels::*;
use std::mem::{offset_of, size_of};

fn module(key: KernelKey) -> naga::Module {
    let src = key.source();
    let m = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}: {}", key.label(), e.emit_to_string(&src)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&m)
        .unwrap_or_else(|e| panic!("{}: {e:?}", key.label()));
    m
}

#[test]
fn every_kernel_variant_validates() {
    for key in KernelKey::all_variants() {
        module(key);
    }
}

/// (size, [(member name, offset)]) of a WGSL struct.
fn layout(m: &naga::Module, name: &str) -> (u32, Vec<(String, u32)>) {
    for (_, ty) in m.types.iter() {
        if ty.name.as_deref() == Some(name) {
            if let naga::TypeInner::Struct { members, span } = &ty.inner {
                return (*span, members.iter().map(|mm| (mm.name.clone().unwrap_or_default(), mm.offset)).collect());
            }
        }
    }
    panic!("no struct {name}");
}

fn check(key: KernelKey, name: &str, size: usize, fields: &[(&str, usize)]) {
    let (span, members) = layout(&module(key), name);
    assert_eq!(span as usize, size, "{name} size");
    for (f, off) in fields {
        let m = members.iter().find(|(n, _)| n == f).unwrap_or_else(|| panic!("{name}.{f} missing in WGSL"));
        assert_eq!(m.1 as usize, *off, "{name}.{f} offset");
    }
}

#[test]
fn uniform_structs_match_rust() {
    let conv = KernelKey::Conv2d { ksize: 3, relu: true, edge: true, combine: Combine::Store };
    check(conv, "Conv2dParams", size_of::<Conv2dParams>(), &[
        ("batch", offset_of!(Conv2dParams, batch)),
        ("cin", offset_of!(Conv2dParams, cin)),
        ("cout", offset_of!(Conv2dParams, cout)),
        ("in_stride", offset_of!(Conv2dParams, in_stride)),
        ("in_offset", offset_of!(Conv2dParams, in_offset)),
        ("out_stride", offset_of!(Conv2dParams, out_stride)),
        ("out_offset", offset_of!(Conv2dParams, out_offset)),
        ("m", offset_of!(Conv2dParams, m)),
    ]);
    check(KernelKey::Coupling { affine: true, reverse: false }, "CouplingParams", size_of::<CouplingParams>(), &[
        ("count", offset_of!(CouplingParams, count)),
        ("c", offset_of!(CouplingParams, c)),
        ("half", offset_of!(CouplingParams, half)),
    ]);
    check(KernelKey::Squeeze { unsqueeze: false }, "SqueezeParams", size_of::<SqueezeParams>(), &[
        ("count", offset_of!(SqueezeParams, count)),
        ("stride", offset_of!(SqueezeParams, stride)),
        ("offset", offset_of!(SqueezeParams, offset)),
    ]);
    let prior = KernelKey::Prior { reverse: true };
    check(prior, "PriorParams", size_of::<PriorParams>(), &[
        ("count", offset_of!(PriorParams, count)),
        ("h_image_stride", offset_of!(PriorParams, h_image_stride)),
        ("eps_offset", offset_of!(PriorParams, eps_offset)),
        ("eps_image_stride", offset_of!(PriorParams, eps_image_stride)),
        ("level", offset_of!(PriorParams, level)),
    ]);
    check(prior, "Call", size_of::<CallParams>(), &[
        ("seed", offset_of!(CallParams, seed)),
        ("count", offset_of!(CallParams, count)),
        ("base", offset_of!(CallParams, base)),
        ("quantize", offset_of!(CallParams, quantize)),
        ("temps", offset_of!(CallParams, temps)),
    ]);
    check(KernelKey::Reduce, "ReduceParams", size_of::<ReduceParams>(), &[("n", offset_of!(ReduceParams, n))]);
    check(KernelKey::ImageOut, "ImageParams", size_of::<ImageParams>(), &[
        ("pixels", offset_of!(ImageParams, pixels)),
        ("channels", offset_of!(ImageParams, channels)),
        ("n_bits", offset_of!(ImageParams, n_bits)),
    ]);
}
