//! `EmbedService::predict`: a sequence classifier's labels for texts and pairs (TEI's
//! `predict`), with the same admission, limits, lanes, deadline and metrics as embeddings.

use std::time::Instant;

use aki_core::{ClassifierInput, EmbedError, Lane, Result};

use crate::requests::{PredictReply, PredictRequest, Prediction};
use crate::service::{EmbedService, tokenizing, within};

impl EmbedService {
    /// Classifies each input: every label of the model with its score, best first.
    ///
    /// # Errors
    /// As [`embed`](Self::embed), and [`EmbedError::Validation`] when the model is not a
    /// sequence classifier or a pair part is over the limits.
    pub async fn predict(&self, route: &str, request: PredictRequest) -> Result<PredictReply> {
        let started = Instant::now();
        let PredictRequest { model, inputs, encode, raw_scores, deadline, caller } = request;
        let work = async {
            let _admitted = self.admit()?;
            let longest = inputs.iter().map(ClassifierInput::chars).max().unwrap_or(0);
            self.limits().check(inputs.len(), longest, inputs.iter().map(ClassifierInput::chars).sum())?;
            let preparing = async {
                let model = self.model(model.as_deref()).await?;
                let prepared = tokenizing(model.prepare_classifier_inputs(inputs, encode)).await?;
                Ok((model, prepared))
            };
            let (model, prepared) = within(self.deadline(deadline, Lane::Interactive, started), preparing).await?;
            let (context, until) = self.schedule(&caller, prepared.tokens(), deadline, started)?;
            let lane = context.lane;
            let out = within(until, model.score_prepared(prepared, context)).await?;
            let info = model.info();
            let predictions = out
                .logits
                .iter()
                .map(|logits| labelled(logits, &info.labels, info.multi_label, raw_scores))
                .collect::<Result<_>>()?;
            Ok(PredictReply {
                model: info.model_id.clone(),
                predictions,
                tokens: out.tokens(),
                lane,
                timing: out.timing,
                total: started.elapsed(),
            })
        };
        let result = work.await;
        self.finish(route, started, &caller.tenant, &result, |reply| {
            (reply.tokens, Some((reply.lane, reply.timing.queue)))
        });
        result
    }
}

/// One input's labels with their scores, best first: the logits with `raw`, else a sigmoid
/// each for one label or independent labels, else the softmax over all of them.
fn labelled(logits: &[f32], labels: &[String], multi_label: bool, raw: bool) -> Result<Vec<Prediction>> {
    if logits.iter().any(|l| l.is_nan()) {
        return Err(EmbedError::Backend("the model returned a NaN score".into()));
    }
    let scores: Vec<f32> = if raw {
        logits.to_vec()
    } else if logits.len() == 1 || multi_label {
        logits.iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect()
    } else {
        let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - top).exp()).collect();
        let sum: f32 = exp.iter().sum();
        exp.into_iter().map(|e| e / sum).collect()
    };
    let mut predictions: Vec<Prediction> = scores
        .into_iter()
        .enumerate()
        .map(|(i, score)| Prediction { label: labels.get(i).cloned().unwrap_or_else(|| format!("LABEL_{i}")), score })
        .collect();
    predictions.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(predictions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("l{i}")).collect()
    }

    #[test]
    fn several_labels_take_a_softmax_best_first() {
        let out = labelled(&[0.0, 2.0, 1.0], &names(3), false, false).expect("scores");
        let order: Vec<&str> = out.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(order, ["l1", "l2", "l0"]);
        let total: f32 = out.iter().map(|p| p.score).sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        let e = [1.0f32, 2.0f32.exp(), 1.0f32.exp()];
        assert!((out[0].score - e[1] / e.iter().sum::<f32>()).abs() < 1e-6);
    }

    #[test]
    fn one_label_or_independent_labels_take_a_sigmoid_and_raw_keeps_logits() {
        let one = labelled(&[0.0], &names(1), false, false).expect("scores");
        assert!((one[0].score - 0.5).abs() < 1e-6);
        let multi = labelled(&[0.0, 0.0], &names(2), true, false).expect("scores");
        assert!(multi.iter().all(|p| (p.score - 0.5).abs() < 1e-6));
        let raw = labelled(&[-1.5, 3.0], &names(2), false, true).expect("scores");
        assert_eq!((raw[0].label.as_str(), raw[0].score, raw[1].score), ("l1", 3.0, -1.5));
    }

    #[test]
    fn a_nan_logit_is_a_backend_failure() {
        assert!(matches!(labelled(&[f32::NAN, 1.0], &names(2), false, false), Err(EmbedError::Backend(_))));
    }
}
