//! Integration tests of `aki-backend-candle` on the real all-MiniLM-L6-v2 weights, compared
//! with the sentence-transformers reference embeddings in `tests/fixtures/`.

mod families;
mod heads;
mod precision;
mod reference;
mod windows;
