//! Minimal `.npy` (NumPy format 1.0) reading and writing of little-endian f32 arrays,
//! for eps files the CLI writes and reads.

use crate::error::{GlowError, Result};

/// Serialises `data` with `shape` as a `<f4` C-order array.
pub fn write_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_s}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.div_ceil(64) * 64 - total));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Parses a `<f4` C-order `.npy` file into (shape, values).
pub fn read_f32(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>)> {
    let bad = |m: &str| GlowError::Input(format!("npy: {m}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        _ => return Err(bad("unsupported .npy version")),
    };
    let header = bytes.get(start..start + hlen).ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    if !header.contains("'descr': '<f4'") {
        return Err(bad("only little-endian float32 ('<f4') arrays are supported"));
    }
    if header.contains("'fortran_order': True") {
        return Err(bad("Fortran-order arrays are not supported"));
    }
    let open = header.find("'shape': (").ok_or_else(|| bad("no shape"))? + 10;
    let close = header[open..].find(')').ok_or_else(|| bad("bad shape"))? + open;
    let shape: Vec<usize> = header[open..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_>>()?;
    let n: usize = shape.iter().product();
    let data = &bytes[start + hlen..];
    if data.len() != n * 4 {
        return Err(bad(&format!("expected {} data bytes for shape {shape:?}, found {}", n * 4, data.len())));
    }
    Ok((shape, data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_refuses_garbage() {
        let v = vec![1.5f32, -2.0, 3.25, 0.0, 7.0, 8.0];
        let bytes = super::write_f32(&[2, 3], &v);
        assert_eq!((bytes.len() - 6 * 4) % 64, 0);
        assert_eq!(super::read_f32(&bytes).unwrap(), (vec![2, 3], v));
        assert!(super::read_f32(b"hello world").is_err());
        assert!(super::read_f32(&bytes[..bytes.len() - 1]).unwrap_err().to_string().contains("expected"));
    }
}
