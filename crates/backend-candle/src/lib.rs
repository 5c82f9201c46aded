//! The Candle backend of aki-embed: sentence-embedding models (BERT, XLM-RoBERTa, ModernBERT,
//! Qwen3) and BERT/XLM-RoBERTa cross-encoders in Hugging Face layout, run with candle on CPU
//! (default), CUDA (`cuda` feature) or Metal (`metal` feature).
//!
//! [`CandleBackend`] implements the core inference port (`EmbeddingProvider`) and
//! [`HfTokenizer`] the `Tokenization` port. It reads `config.json`,
//! `tokenizer.json`, a memory-mapped `model.safetensors`, and the sentence-transformers files
//! (`modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`) so nothing
//! model-specific is hard-coded.

mod backend;
mod batch;
mod bert;
mod config;
mod layout;
mod mlm;
mod model;
mod modernbert;
mod packed;
mod qwen3;
mod safetensors;
pub mod source;
mod thread;
mod tokenizer;

pub use backend::CandleBackend;
pub use config::CandleConfig;
pub use layout::{Architecture, ModelLayout};
pub use tokenizer::HfTokenizer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tiny;
