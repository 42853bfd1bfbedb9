//! Pixels <-> model values, both ways, and OpenAI's quantization of outputs.

/// RGBA8 pixels -> model input in [-0.5, 0.5]: quantized to `n_bits`, plus the bin
/// centre. One channel models read the red channel.
pub fn image_to_x(rgba: &[u8], channels: usize, n_bits: u32) -> Vec<f32> {
    let bins = (1u32 << n_bits) as f32;
    let shift = 8 - n_bits;
    let mut x = Vec::with_capacity(rgba.len() / 4 * channels);
    for px in rgba.chunks_exact(4) {
        for &v in &px[..channels] {
            let q = (v >> shift) as f32;
            x.push(q / bins - 0.5 + 0.5 / bins);
        }
    }
    x
}

/// Model output -> RGBA8. `quantize` floors to `n_bits` levels (OpenAI's bit-exact
/// output); otherwise the continuous value is scaled to 0..255 and rounded down.
pub fn x_to_rgba(x: &[f32], channels: usize, n_bits: u32, quantize: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / channels * 4);
    for px in x.chunks_exact(channels) {
        let mut rgb = [0u8; 3];
        for (k, v) in rgb.iter_mut().enumerate() {
            *v = to_u8(px[k.min(channels - 1)], n_bits, quantize);
        }
        out.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
    }
    out
}

/// One model value to a byte. `quantize` is OpenAI's postprocess exactly:
/// `clip(floor((x + 0.5) * n_bins) * (256 / n_bins), 0, 255)`, so the top bin (and
/// anything above it) shows as 255; otherwise the continuous value is scaled to 0..255
/// and floored.
pub fn to_u8(v: f32, n_bits: u32, quantize: bool) -> u8 {
    let u = v + 0.5;
    if quantize {
        let bins = (1u32 << n_bits) as f32;
        ((u * bins).floor() * (256.0 / bins)).clamp(0.0, 255.0) as u8
    } else {
        (u * 256.0).floor().clamp(0.0, 255.0) as u8
    }
}

/// RGBA8 pixels -> model input with OpenAI's uniform dequantization noise instead of the
/// bin centre: `x = q / n_bins - 0.5 + u`, `u ~ U(0, 1 / n_bins)`, drawn from the
/// counter-based generator (`draw` selects an independent noise image for the same
/// seed). The likelihood of such an x, averaged over draws, is the figure papers report.
pub fn image_to_x_dequantized(rgba: &[u8], channels: usize, n_bits: u32, seed: u32, draw: u32) -> Vec<f32> {
    let bins = (1u32 << n_bits) as f32;
    let shift = 8 - n_bits;
    let key = super::rng::hash32(seed ^ draw.wrapping_mul(0x9e37_79b9));
    let mut x = Vec::with_capacity(rgba.len() / 4 * channels);
    for px in rgba.chunks_exact(4) {
        for &v in &px[..channels] {
            let q = (v >> shift) as f32;
            let u = super::rng::uniform(key, x.len() as u32);
            x.push(q / bins - 0.5 + u / bins);
        }
    }
    x
}

/// What the model sees of an RGBA8 image: each colour value floored to `n_bits` and shown
/// at the centre of its bin (alpha 255).
pub fn quantize_input(rgba: &[u8], n_bits: u32) -> Vec<u8> {
    let shift = 8 - n_bits;
    let half = if shift == 0 { 0 } else { 1u32 << (shift - 1) };
    rgba.iter()
        .enumerate()
        .map(|(i, &v)| if i % 4 == 3 { 255 } else { ((((v >> shift) as u32) << shift) + half) as u8 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_is_openai_postprocess() {
        // 5 bits: bins of 1/32; OpenAI: clip(floor((x + 0.5) * 32) * 8, 0, 255).
        for (x, want) in [(-0.5f32, 0u8), (-0.6, 0), (0.0, 128), (0.49, 248), (0.5, 255), (0.7, 255), (-0.5 + 1.5 / 32.0, 8)] {
            assert_eq!(to_u8(x, 5, true), want, "x = {x}");
        }
        assert_eq!(to_u8(0.5 - 0.5 / 256.0, 8, true), 255);
        assert_eq!(to_u8(0.5, 8, false), 255);
    }

    #[test]
    fn dequantization_noise_stays_inside_the_bin() {
        let rgba: Vec<u8> = (0..=255u8).flat_map(|v| [v, 255 - v, v / 2, 255]).collect();
        let centre = image_to_x(&rgba, 3, 5);
        let a = image_to_x_dequantized(&rgba, 3, 5, 7, 0);
        let b = image_to_x_dequantized(&rgba, 3, 5, 7, 1);
        assert_ne!(a, b, "draws must differ");
        assert_eq!(a, image_to_x_dequantized(&rgba, 3, 5, 7, 0), "same seed and draw, same noise");
        for (c, v) in centre.iter().zip(&a) {
            let lo = c - 0.5 / 32.0;
            assert!(*v >= lo && *v < lo + 1.0 / 32.0, "{v} outside the bin of {c}");
        }
    }
}
