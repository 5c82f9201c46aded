//! `ModelPipeline::ranges`: the range `int8` and `uint8` vectors are cut by
//! ([`Ranges::symmetric`]), from the model's own vectors of the calibration texts
//! ([`CALIBRATION_TEXTS`](crate::quantize::CALIBRATION_TEXTS)), embedded once, when a request
//! first asks for either type, and finished as each request finishes its own vectors.

use crate::quantize::{CALIBRATION_TEXTS, Ranges};
use crate::{EmbedError, EmbedOptions, LongInputs, ModelPipeline, RequestContext, Result, vector};

impl ModelPipeline {
    /// The range of the calibration vectors under `options` (their normalisation and
    /// `dimensions`), computing those vectors on first use.
    ///
    /// # Errors
    /// [`EmbedError::Validation`] when the model is not a dense embedder, and the errors of
    /// embedding the calibration texts.
    pub async fn ranges(&self, options: &EmbedOptions) -> Result<Ranges> {
        self.check_embed(options)?;
        self.check_quantized()?;
        let pooled = match self.calibration.get() {
            Some(pooled) => pooled,
            None => {
                let texts: Vec<String> = CALIBRATION_TEXTS.lines().map(str::to_string).collect();
                let raw = EmbedOptions { normalize: Some(false), long: LongInputs::Cut, ..EmbedOptions::default() };
                let prepared = self.prepare_texts(texts, &raw).await?;
                let vectors = self.embed_prepared(prepared, &raw, RequestContext::default()).await?.vectors;
                self.calibration.get_or_init(|| vectors)
            }
        };
        let finished: Vec<Vec<f32>> = pooled.iter().map(|v| vector::finish(v.clone(), options, self.info())).collect();
        Ok(Ranges::symmetric(finished.iter().map(Vec::as_slice)))
    }

    /// Refuses quantized vectors of a SPLADE model, whose vectors are sparse.
    ///
    /// # Errors
    /// [`EmbedError::Validation`] for a SPLADE model.
    pub fn check_quantized(&self) -> Result<()> {
        if self.info().is_splade() {
            return Err(EmbedError::Validation(format!(
                "model `{}` is a SPLADE model: its vectors are sparse, not quantized",
                self.info().model_id
            )));
        }
        Ok(())
    }
}
