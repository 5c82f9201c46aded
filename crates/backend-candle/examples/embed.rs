//! Embeds the texts given on the command line with the default model (or `--model DIR_OR_ID`)
//! and prints one JSON object per text: its token count and its vector.
//!
//! `cargo run --release -p aki-backend-candle --example embed -- "first text" "second text"`

use aki_backend_candle::{CandleBackend, CandleConfig};
use aki_core::{EmbedOptions, RequestContext};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = CandleConfig::default();
    if let Some(at) = args.iter().position(|a| a == "--model") {
        if at + 1 >= args.len() {
            return Err("--model needs a value".into());
        }
        config.model = args.remove(at + 1);
        args.remove(at);
    }
    if args.is_empty() {
        return Err("usage: embed [--model DIR_OR_ID] TEXT...".into());
    }
    let backend = tokio::task::spawn_blocking(move || CandleBackend::load(&config)).await??.into_pipeline();
    let started = std::time::Instant::now();
    let result = backend.embed(args.clone(), EmbedOptions::default(), RequestContext::default()).await?;
    let elapsed = started.elapsed();
    for (text, vector) in args.iter().zip(&result.vectors) {
        let line = serde_json::json!({ "text": text, "dimension": vector.len(), "embedding": vector });
        println!("{line}");
    }
    eprintln!("{} texts, {} tokens, {:.1} ms", args.len(), result.tokens(), elapsed.as_secs_f64() * 1e3);
    Ok(())
}
