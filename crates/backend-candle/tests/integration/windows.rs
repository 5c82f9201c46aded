//! A long document on the real model with `LongInputs::Windows`: over 2,000 tokens become
//! windows of the model's 256, each [CLS] + its part + [SEP] and `overlap` tokens into the one
//! before, the windows worked out here from the whole text's ids; its usage counts every
//! window's tokens, and its vector is the token-weighted mean of those windows embedded one by
//! one, normalised as the model normalises.

use aki_core::vector::cosine;
use aki_core::{EmbedOptions, LongInputs, RequestContext};

use crate::reference::backend;

const OVERLAP: usize = 32;

#[tokio::test]
async fn a_long_document_is_the_token_weighted_mean_of_its_windows() {
    let pipeline = backend(true);
    let corpus = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../benches/data/medium_256.txt"))
        .expect("corpus");
    let text: String = corpus.lines().take(24).collect::<Vec<_>>().join(" ");
    let ids: Vec<u32> =
        pipeline.tokenize(vec![text.clone()], true).await.expect("tokens")[0].iter().map(|t| t.id).collect();
    assert!(ids.len() > 2000, "a document of {} tokens", ids.len());
    assert_eq!((ids[0], ids[ids.len() - 1]), (101, 102), "[CLS] ... [SEP]");

    // Windows of 256: [CLS], 254 of the text's tokens, [SEP]; each starts 32 before the last ended.
    let body = &ids[1..ids.len() - 1];
    let mut windows: Vec<Vec<u32>> = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + 254).min(body.len());
        windows.push([101].iter().chain(&body[start..end]).chain(&[102]).copied().collect());
        if end == body.len() {
            break;
        }
        start = end - OVERLAP;
    }
    assert!(windows.len() >= 9, "{} windows", windows.len());

    let context = RequestContext::default();
    let raw =
        EmbedOptions { normalize: Some(false), long: LongInputs::Windows { overlap: OVERLAP }, ..Default::default() };
    let got = pipeline.embed(vec![text.clone(), "short".into()], raw, context.clone()).await.expect("windows");
    let tokens: Vec<usize> = windows.iter().map(Vec::len).collect();
    assert_eq!(got.token_counts[0], tokens.iter().sum::<usize>(), "usage counts every window's tokens");
    assert_eq!(got.token_counts[1], 3, "a short text is one window");

    let plain = EmbedOptions { normalize: Some(false), ..Default::default() };
    let alone = pipeline.embed_tokens(windows.clone(), plain, context.clone()).await.expect("windows one by one");
    let total: usize = tokens.iter().sum();
    let mut want = vec![0.0f32; alone.vectors[0].len()];
    for (v, n) in alone.vectors.iter().zip(&tokens) {
        want.iter_mut().zip(v).for_each(|(w, x)| *w += x * *n as f32 / total as f32);
    }
    assert!(cosine(&got.vectors[0], &want) >= 0.99999, "the token-weighted mean of the windows");
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm(&got.vectors[0]) - norm(&want)).abs() <= 1e-4 * norm(&want), "not normalised when asked not to be");

    let unit = EmbedOptions { long: LongInputs::Windows { overlap: OVERLAP }, ..Default::default() };
    let normalised = pipeline.embed(vec![text.clone()], unit, context.clone()).await.expect("normalised");
    assert!((norm(&normalised.vectors[0]) - 1.0).abs() < 1e-5, "normalised after pooling, as the model does");
    let cut = pipeline.embed(vec![text], EmbedOptions::default(), context).await.expect("cut");
    assert_eq!(cut.token_counts[0], 256, "without windows, cut at the maximum");
}
