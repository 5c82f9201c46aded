//! The masked-LM head of a SPLADE model (`*ForMaskedLM`): where each family keeps its weights,
//! read once for both engines.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};

use crate::bert::Family;

/// `decoder · norm(act(dense · x + b)) + bias`: one logit per vocabulary entry for each token.
pub struct MlmHead {
    /// The transform's weight `(hidden, hidden)` and bias.
    pub dense: (Tensor, Tensor),
    /// The activation after the transform: the model's own for BERT, GELU for RoBERTa.
    pub activation: HiddenAct,
    /// The layer norm's gain and bias, and its epsilon.
    pub norm: (Tensor, Tensor, f64),
    /// The decoder's weight `(vocab, hidden)` (the word embeddings where the file ties them and
    /// so leaves it out) and its bias `(vocab)`.
    pub decoder: (Tensor, Tensor),
}

impl MlmHead {
    /// Reads the head from `root` (the file's root): BERT's `cls.predictions`, RoBERTa's
    /// `lm_head`.
    pub fn load(root: &VarBuilder, config: &Config, family: Family) -> Result<Self> {
        let (h, vocab) = (config.hidden_size, config.vocab_size);
        let (head, dense, norm, activation) = match family {
            Family::Bert => {
                let head = root.pp("cls.predictions");
                (head.clone(), head.pp("transform.dense"), head.pp("transform.LayerNorm"), config.hidden_act)
            }
            Family::XlmRoberta => {
                let head = root.pp("lm_head");
                (head.clone(), head.pp("dense"), head.pp("layer_norm"), HiddenAct::Gelu)
            }
        };
        let decoder_weight = if head.contains_tensor("decoder.weight") {
            head.get((vocab, h), "decoder.weight")?
        } else {
            family.encoder(root.clone()).get((vocab, h), "embeddings.word_embeddings.weight")?
        };
        let decoder_bias =
            if head.contains_tensor("bias") { head.get(vocab, "bias")? } else { head.get(vocab, "decoder.bias")? };
        Ok(Self {
            dense: (dense.get((h, h), "weight")?, dense.get(h, "bias")?),
            activation,
            norm: (norm.get(h, "weight")?, norm.get(h, "bias")?, config.layer_norm_eps),
            decoder: (decoder_weight, decoder_bias),
        })
    }
}
