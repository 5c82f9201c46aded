//! BERT and XLM-RoBERTa encoders on candle: embeddings and an attention mask that are safe in
//! half precision, candle-transformers' encoder layers (the two families share them), then
//! masked pooling, a cross-encoder's classifier or a SPLADE model's masked-LM head.

use aki_core::{Encoding, Pooling};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder, embedding, layer_norm, linear};
use candle_transformers::models::bert::{BertEncoder, Config, HiddenAct};

use crate::batch::{Output, Padded, additive_mask, finish, token_rows};
use crate::mlm::MlmHead;

/// Word, position and token-type embeddings followed by LayerNorm.
struct Embeddings {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    norm: LayerNorm,
    /// Position of the first token: 0 for BERT, the padding index + 1 for XLM-RoBERTa.
    first_position: u32,
}

impl Embeddings {
    fn load(vb: VarBuilder, config: &Config, first_position: u32) -> Result<Self> {
        Ok(Self {
            words: embedding(config.vocab_size, config.hidden_size, vb.pp("word_embeddings"))?,
            positions: embedding(config.max_position_embeddings, config.hidden_size, vb.pp("position_embeddings"))?,
            token_types: embedding(config.type_vocab_size, config.hidden_size, vb.pp("token_type_embeddings"))?,
            norm: layer_norm(config.hidden_size, config.layer_norm_eps, vb.pp("LayerNorm"))?,
            first_position,
        })
    }

    fn forward(&self, ids: &Tensor, type_ids: &Tensor) -> Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let positions = Tensor::arange(self.first_position, self.first_position + len as u32, ids.device())?;
        let x = (self.words.forward(ids)? + self.token_types.forward(type_ids)?)?;
        let x = x.broadcast_add(&self.positions.forward(&positions)?)?;
        self.norm.forward(&x)
    }
}

/// What turns the token vectors into the model's output.
enum Head {
    /// A sentence embedder's pooling.
    Pool(Pooling),
    /// A cross-encoder's classifier: dense + tanh on the first token, then a linear layer to the
    /// labels (BERT's pooler + classifier, RoBERTa's classifier.dense + out_proj).
    Classifier { dense: Linear, out: Linear },
    /// A SPLADE model's masked-LM head (logits per vocabulary entry), then SPLADE pooling.
    Splade { dense: Linear, activation: HiddenAct, norm: LayerNorm, decoder: Linear },
}

/// The BERT-layer families this module runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// BERT: positions from 0, weights under `bert.` or at the top.
    Bert,
    /// XLM-RoBERTa / RoBERTa: positions from the padding index + 1, weights under `roberta.`.
    XlmRoberta,
}

impl Family {
    /// `vb` at the encoder's weights: under the family's prefix when the file has one.
    pub fn encoder<'a>(self, vb: VarBuilder<'a>) -> VarBuilder<'a> {
        let prefix = match self {
            Self::Bert => "bert",
            Self::XlmRoberta => "roberta",
        };
        if vb.contains_tensor(&format!("{prefix}.embeddings.word_embeddings.weight")) { vb.pp(prefix) } else { vb }
    }

    /// Where a cross-encoder's classifier keeps its two layers, from the file's root: BERT's
    /// pooler (with the encoder) and `classifier`; RoBERTa's `classifier.dense` and
    /// `classifier.out_proj`.
    pub fn classifier<'a>(self, root: &VarBuilder<'a>) -> (VarBuilder<'a>, VarBuilder<'a>) {
        match self {
            Self::Bert => (self.encoder(root.clone()).pp("pooler.dense"), root.pp("classifier")),
            Self::XlmRoberta => (root.pp("classifier.dense"), root.pp("classifier.out_proj")),
        }
    }

    /// The position of an input's first token.
    pub fn first_position(self, pad_token_id: usize) -> usize {
        match self {
            Self::Bert => 0,
            Self::XlmRoberta => pad_token_id + 1,
        }
    }
}

/// A BERT-layer encoder with its pooling or classifier.
pub struct BertEmbedder {
    embeddings: Embeddings,
    encoder: BertEncoder,
    head: Head,
    pad_id: u32,
    device: Device,
    dtype: DType,
}

impl BertEmbedder {
    /// Builds a sentence embedder from `vb`, accepting weights with or without the family's
    /// prefix.
    pub fn load(vb: VarBuilder, config: &Config, family: Family, pooling: Pooling) -> Result<Self> {
        Self::build(vb, config, family, Head::Pool(pooling))
    }

    /// Builds a cross-encoder with `labels` outputs (`*ForSequenceClassification` weights).
    pub fn load_classifier(vb: VarBuilder, config: &Config, family: Family, labels: usize) -> Result<Self> {
        let hidden = config.hidden_size;
        let (dense, out) = family.classifier(&vb);
        let head = Head::Classifier { dense: linear(hidden, hidden, dense)?, out: linear(hidden, labels, out)? };
        Self::build(vb, config, family, head)
    }

    /// Builds a SPLADE model (`*ForMaskedLM` weights): the encoder and its masked-LM head.
    pub fn load_splade(vb: VarBuilder, config: &Config, family: Family) -> Result<Self> {
        let head = MlmHead::load(&vb, config, family)?;
        let (gain, bias, eps) = head.norm;
        let head = Head::Splade {
            dense: Linear::new(head.dense.0, Some(head.dense.1)),
            activation: head.activation,
            norm: LayerNorm::new(gain, bias, eps),
            decoder: Linear::new(head.decoder.0, Some(head.decoder.1)),
        };
        Self::build(vb, config, family, head)
    }

    fn build(vb: VarBuilder, config: &Config, family: Family, head: Head) -> Result<Self> {
        let body = family.encoder(vb);
        let first_position = family.first_position(config.pad_token_id) as u32;
        Ok(Self {
            embeddings: Embeddings::load(body.pp("embeddings"), config, first_position)?,
            encoder: BertEncoder::load(body.pp("encoder"), config)?,
            head,
            pad_id: config.pad_token_id as u32,
            device: body.device().clone(),
            dtype: body.dtype(),
        })
    }

    /// Runs one padded batch and returns one f32 output per input: the pooled (not
    /// normalised) vector, a cross-encoder's logits or a SPLADE vector; or its token vectors.
    pub fn forward(&self, batch: &[&Encoding], output: Output) -> Result<Vec<Vec<f32>>> {
        let Some(padded) = Padded::new(batch, self.pad_id, &self.device)? else {
            return Ok(Vec::new());
        };
        let hidden = self.embeddings.forward(&padded.ids, &padded.type_ids)?;
        let hidden = self.encoder.forward(&hidden, &additive_mask(&padded.mask, self.dtype)?)?;
        match (&self.head, output) {
            (_, Output::Tokens) => token_rows(&hidden, &padded),
            (Head::Pool(pooling), Output::Head) => finish(&hidden, &padded, *pooling, output),
            (Head::Classifier { dense, out }, Output::Head) => {
                let first = hidden.narrow(1, 0, 1)?.squeeze(1)?;
                out.forward(&dense.forward(&first)?.tanh()?)?.to_dtype(DType::F32)?.to_vec2()
            }
            (Head::Splade { dense, activation, norm, decoder }, Output::Head) => {
                let x = dense.forward(&hidden)?;
                let x = match activation {
                    HiddenAct::Gelu => x.gelu_erf()?,
                    HiddenAct::GeluApproximate => x.gelu()?,
                    HiddenAct::Relu => x.relu()?,
                };
                let logits = decoder.forward(&norm.forward(&x)?)?;
                finish(&logits, &padded, Pooling::Splade, output)
            }
        }
    }
}
