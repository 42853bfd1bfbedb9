//! The fast CPU engine against the reference and the PyTorch goldens.

mod cases;
use glow_web::{reference, CpuGlow};

#[test]
fn fast_cpu_engine_matches_goldens_and_round_trips() {
    for f in cases::fixtures() {
        let model = f.model();
        let cpu = CpuGlow::new(&model);
        let (n, rgba) = f.rgba();
        let enc = cpu.encode(&rgba, n);
        cases::close(&format!("{} cpu eps", f.name), &enc.eps, &f.f32("eps"), 1e-4, 1e-4);
        for (got, want) in enc.bits_per_dim.iter().zip(f.f64("bpd")) {
            assert!((got - want).abs() < 2e-5, "{} cpu bpd {got} vs {want}", f.name);
        }
        let temps = vec![1.0; model.config.levels as usize];
        let back = cpu.decode_x(&enc.eps, n, &temps);
        cases::close(&format!("{} cpu round trip", f.name), &back, &f.f32("x"), 1e-4, 0.0);
        let eps = f.f32("sample_eps");
        let t = f.f32("sample_temperature")[0];
        let m = eps.len() / model.dim();
        let x = cpu.decode_x(&eps, m, &vec![t; model.config.levels as usize]);
        cases::close(&format!("{} cpu sample_x", f.name), &x, &f.f32("sample_x"), 2e-4, 2e-4);
        // And the same as the reference's decode of the same eps.
        let want = reference::decode(&model.folded, &eps, m, &vec![t; model.config.levels as usize]);
        cases::close(&format!("{} cpu vs reference", f.name), &x, &want, 2e-4, 2e-4);
    }
}
