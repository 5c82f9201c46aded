//! What a safetensors file holds, read from its header alone.

use std::path::Path;

use aki_core::{EmbedError, Result};

/// Elements of every tensor in a safetensors file, from its header (an 8-byte little-endian
/// length, then a JSON object of tensors with their shapes).
pub(crate) fn elements(path: &Path) -> Result<u64> {
    use std::io::Read;
    let err = |e: &dyn std::fmt::Display| EmbedError::Load(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(|e| err(&e))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| err(&e))?;
    let len = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
    if len > 100 << 20 {
        return Err(err(&"the safetensors header is larger than 100 MiB: not a safetensors file"));
    }
    let mut header = vec![0u8; len];
    file.read_exact(&mut header).map_err(|e| err(&e))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header).map_err(|e| err(&e))?;
    let elements = header
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(_, tensor)| tensor["shape"].as_array().map_or(0, |s| s.iter().filter_map(|d| d.as_u64()).product()))
        .sum();
    Ok(elements)
}
