//! Per-request post-processing of pooled vectors: Matryoshka truncation, then L2 normalisation.

use crate::{EmbedError, EmbedOptions, ModelInfo, Result};

/// Checks `dimensions` against the model before any work is done.
///
/// # Errors
/// [`EmbedError::Validation`] when `dimensions` is zero or larger than the model's dimension.
pub fn check_dimensions(options: &EmbedOptions, info: &ModelInfo) -> Result<()> {
    match options.dimensions {
        Some(0) => Err(EmbedError::Validation("`dimensions` must be at least 1".into())),
        Some(d) if d > info.dimension => Err(EmbedError::Validation(format!(
            "`dimensions` must be at most {} for model {}, got {d}",
            info.dimension, info.model_id
        ))),
        _ => Ok(()),
    }
}

/// Scales `v` to unit Euclidean length in place; a zero vector stays zero.
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        let inv = 1.0 / norm;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

/// Applies the request's options to a pooled vector: keep the first `dimensions`
/// values, then normalise when asked (or when the model normalises by default).
pub fn finish(mut v: Vec<f32>, options: &EmbedOptions, info: &ModelInfo) -> Vec<f32> {
    if let Some(d) = options.dimensions {
        v.truncate(d);
    }
    if options.normalize.unwrap_or(info.normalize_default) {
        l2_normalize(&mut v);
    }
    v
}

/// The non-zero values of a vector with their positions (a SPLADE vector as TEI's
/// `embed_sparse` returns it: vocabulary index and weight).
pub fn sparse(v: &[f32]) -> Vec<(usize, f32)> {
    v.iter().enumerate().filter(|(_, x)| **x != 0.0).map(|(i, x)| (i, *x)).collect()
}

/// Cosine similarity of two vectors of the same length (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        dot += f64::from(*x) * f64::from(*y);
        na += f64::from(*x) * f64::from(*x);
        nb += f64::from(*y) * f64::from(*y);
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { (dot / (na.sqrt() * nb.sqrt())) as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ModelInfo {
        crate::types::sample_info()
    }

    #[test]
    fn truncates_before_normalising() {
        let opts = EmbedOptions { dimensions: Some(2), ..Default::default() };
        let v = finish(vec![3.0, 4.0, 100.0, 100.0], &opts, &info());
        assert_eq!(v.len(), 2);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn sparse_keeps_the_non_zero_values_with_their_positions() {
        assert_eq!(sparse(&[0.0, 1.5, 0.0, -0.0, 0.25]), vec![(1, 1.5), (4, 0.25)]);
    }

    #[test]
    fn normalize_false_keeps_raw_values() {
        let opts = EmbedOptions { normalize: Some(false), ..Default::default() };
        assert_eq!(finish(vec![3.0, 4.0], &opts, &info()), vec![3.0, 4.0]);
    }

    #[test]
    fn zero_vector_stays_zero() {
        let mut v = vec![0.0; 3];
        l2_normalize(&mut v);
        assert_eq!(v, vec![0.0; 3]);
    }

    #[test]
    fn dimensions_are_checked() {
        let i = info();
        let bad = |d| EmbedOptions { dimensions: Some(d), ..Default::default() };
        assert!(check_dimensions(&bad(0), &i).is_err());
        assert!(check_dimensions(&bad(5), &i).is_err());
        assert!(check_dimensions(&bad(4), &i).is_ok());
    }

    #[test]
    fn cosine_of_parallel_and_orthogonal() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-6);
    }
}
