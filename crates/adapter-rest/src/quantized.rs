//! The vector types a REST request may ask for (`embedding_types`: Cohere's names, taken by the
//! native and Cohere routes) and the per-type columns of an answer.

use aki_core::quantize::{OutputType, Quantized};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::openai::base64_f32;

/// A type of vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingType {
    /// f32 values.
    Float,
    /// Signed bytes: each value's step in the calibrated range, minus 128.
    Int8,
    /// Unsigned bytes: each value's step in the calibrated range.
    Uint8,
    /// Packed bits (value above zero), signed bytes.
    Binary,
    /// Packed bits, unsigned bytes.
    Ubinary,
    /// base64 of the little-endian f32 bytes.
    Base64,
}

impl EmbeddingType {
    /// What the service computes for it (`base64` is the float vector's bytes).
    pub fn output(self) -> OutputType {
        match self {
            Self::Float | Self::Base64 => OutputType::Float,
            Self::Int8 => OutputType::Int8,
            Self::Uint8 => OutputType::Uint8,
            Self::Binary => OutputType::Binary,
            Self::Ubinary => OutputType::Ubinary,
        }
    }

    /// What the service computes for `asked`, each once.
    pub fn outputs(asked: &[Self]) -> Vec<OutputType> {
        let mut types: Vec<OutputType> = asked.iter().map(|t| t.output()).collect();
        types.sort();
        types.dedup();
        types
    }
}

/// Vectors by type, each in input order; a type not asked for is absent.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct EmbeddingsByType {
    /// f32 values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float: Option<Vec<Vec<f32>>>,
    /// Signed bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8: Option<Vec<Vec<i8>>>,
    /// Unsigned bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uint8: Option<Vec<Vec<u8>>>,
    /// Packed bits, signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<Vec<Vec<i8>>>,
    /// Packed bits, unsigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ubinary: Option<Vec<Vec<u8>>>,
    /// base64 of the f32 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<Vec<String>>,
}

impl EmbeddingsByType {
    /// The columns of `vectors` for the types `asked`.
    pub fn new(vectors: &[Quantized], asked: &[EmbeddingType]) -> Self {
        let wants = |t: EmbeddingType| asked.contains(&t);
        // A column is there when every vector has its type (none, when it was not asked for).
        Self {
            base64: wants(EmbeddingType::Base64)
                .then(|| vectors.iter().map(|q| q.float.as_deref().map(base64_f32)).collect())
                .flatten(),
            int8: vectors.iter().map(|q| q.int8.clone()).collect(),
            uint8: vectors.iter().map(|q| q.uint8.clone()).collect(),
            binary: vectors.iter().map(|q| q.binary.clone()).collect(),
            ubinary: vectors.iter().map(|q| q.ubinary.clone()).collect(),
            float: wants(EmbeddingType::Float).then(|| vectors.iter().map(|q| q.float.clone()).collect()).flatten(),
        }
    }
}
