//! Test support: writes a tiny random BERT model (a few hundred KB) in Hugging Face layout,
//! with a WordPiece tokenizer built by the test, so unit tests need no download.

use std::path::Path;

use aki_core::Pooling;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::Config;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::bert::BertEmbedder;

/// Longest input of the tiny model, special tokens included.
pub const MAX_TOKENS: usize = 16;
/// Its vector length.
pub const HIDDEN: usize = 32;

/// Tokens in its vocabulary.
pub const VOCAB: usize = WORDS.len();

const WORDS: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "a",
    "man", "is", "eat", "##ing", "food", ".", ",", "hello", "world", "!", "cafe", "##s",
];

/// Writes the model into `dir` with the given pooling.
pub fn write(dir: &Path, pooling: Pooling) {
    let config = serde_json::json!({
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": WORDS.len(), "hidden_size": HIDDEN, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 48, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "max_position_embeddings": 64, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "classifier_dropout": null
    });
    write_json(&dir.join("config.json"), &config);
    write_json(
        &dir.join("modules.json"),
        &serde_json::json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        ]),
    );
    write_json(
        &dir.join("sentence_bert_config.json"),
        &serde_json::json!({"max_seq_length": MAX_TOKENS, "do_lower_case": false}),
    );
    std::fs::create_dir_all(dir.join("1_Pooling")).expect("pooling folder");
    write_json(
        &dir.join("1_Pooling/config.json"),
        &serde_json::json!({
            "word_embedding_dimension": HIDDEN,
            "pooling_mode_cls_token": pooling == Pooling::Cls,
            "pooling_mode_mean_tokens": pooling == Pooling::Mean,
            "pooling_mode_max_tokens": pooling == Pooling::Max
        }),
    );
    write_tokenizer(&dir.join("tokenizer.json"));
    write_weights(&dir.join("model.safetensors"), &config);
}

fn write_json(path: &Path, value: &serde_json::Value) {
    std::fs::write(path, value.to_string()).expect("write json");
}

fn write_tokenizer(path: &Path) {
    let vocab_file = path.with_file_name("vocab.txt");
    std::fs::write(&vocab_file, WORDS.join("\n")).expect("write vocab");
    let model = WordPiece::builder()
        .files(vocab_file.to_string_lossy().into_owned())
        .unk_token("[UNK]".into())
        .build()
        .expect("wordpiece");
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_normalizer(Some(BertNormalizer::default())).expect("normalizer");
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(("[SEP]".into(), 3), ("[CLS]".into(), 2))));
    let specials: Vec<AddedToken> = WORDS[..5].iter().map(|w| AddedToken::from(*w, true)).collect();
    tokenizer.add_special_tokens(specials).expect("special tokens");
    // Like all-MiniLM-L6-v2's file: a shorter built-in truncation and fixed-length padding,
    // which the backend must override.
    tokenizer.with_truncation(Some(TruncationParams { max_length: 8, ..Default::default() })).expect("truncation");
    tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::Fixed(12), ..Default::default() }));
    tokenizer.save(path, false).expect("save tokenizer");
}

fn write_weights(path: &Path, config: &serde_json::Value) {
    let config: Config = serde_json::from_value(config.clone()).expect("bert config");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BertEmbedder::load(vb, &config, crate::bert::Family::Bert, Pooling::Mean).expect("random init");
    varmap.save(path).expect("save weights");
}
