//! `BatchingProvider`: the inference port through one shared `Batcher`, so the model pipeline
//! sees the same port whether batching is on or off.

use std::sync::Arc;

use aki_core::{
    Batched, Batcher, EmbeddingProvider, Encoding, Pooled, Predictions, RequestContext, Result, TokenVectors,
};
use async_trait::async_trait;

use crate::batcher::{BatchHandler, BatchObserver, Costing, DynamicBatcher};
use crate::config::BatchConfig;

/// What the model computes from a queued input: one of the inference port's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compute {
    /// A pooled vector ([`EmbeddingProvider::embed`]).
    Pooled = 0,
    /// A classifier's logits ([`EmbeddingProvider::predict`]).
    Logits = 1,
    /// The vector of every token ([`EmbeddingProvider::token_vectors`]), row after row.
    TokenVectors = 2,
}

impl Compute {
    /// Every kind, in the order of their discriminants.
    const ALL: [Self; 3] = [Self::Pooled, Self::Logits, Self::TokenVectors];
}

/// One queued input and what the model computes from it. A batch of mixed kinds is split by
/// the handler into one call per kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInput {
    /// What to compute.
    pub compute: Compute,
    /// The checked model input.
    pub encoding: Encoding,
}

impl ModelInput {
    fn tokens(&self) -> usize {
        self.encoding.len()
    }
}

/// Runs batches on the wrapped provider. The batch as a whole has no deadline: each item's
/// own deadline was checked when the batch was formed.
struct InnerModel(Arc<dyn EmbeddingProvider>);

impl InnerModel {
    async fn compute(&self, compute: Compute, batch: Vec<Encoding>) -> Result<Vec<Vec<f32>>> {
        let context = RequestContext::default();
        Ok(match compute {
            Compute::Pooled => self.0.embed(batch, context).await?.vectors,
            Compute::Logits => self.0.predict(batch, context).await?.logits,
            Compute::TokenVectors => self.0.token_vectors(batch, context).await?.vectors,
        })
    }
}

#[async_trait]
impl BatchHandler<ModelInput, Vec<f32>> for InnerModel {
    async fn run(&self, items: Vec<ModelInput>) -> Result<Vec<Vec<f32>>> {
        let mut outputs: Vec<Option<Vec<f32>>> = vec![None; items.len()];
        // Each kind's inputs, with their positions in the batch.
        let mut by_kind: [(Vec<usize>, Vec<Encoding>); 3] = Default::default();
        for (i, item) in items.into_iter().enumerate() {
            let (positions, batch) = &mut by_kind[item.compute as usize];
            positions.push(i);
            batch.push(item.encoding);
        }
        for (compute, (positions, batch)) in Compute::ALL.into_iter().zip(by_kind) {
            if batch.is_empty() {
                continue;
            }
            for (i, output) in positions.into_iter().zip(self.compute(compute, batch).await?) {
                outputs[i] = Some(output);
            }
        }
        Ok(outputs.into_iter().flatten().collect())
    }
}

/// Batches the inference of many concurrent requests to an inner provider.
pub struct BatchingProvider {
    batcher: Arc<dyn Batcher<ModelInput, Vec<f32>>>,
}

impl BatchingProvider {
    /// Routes inference through `batcher`.
    pub fn new(batcher: Arc<dyn Batcher<ModelInput, Vec<f32>>>) -> Self {
        Self { batcher }
    }

    /// A [`DynamicBatcher`] whose batches run on `inner`, costed by token count (`padded`: a
    /// batch costs `longest x items`, as the model's `is_padded` says); must be called inside a
    /// tokio runtime (it starts the worker).
    pub fn dynamic_batcher(
        inner: Arc<dyn EmbeddingProvider>,
        padded: bool,
        config: &BatchConfig,
        observer: Arc<dyn BatchObserver>,
    ) -> DynamicBatcher<ModelInput, Vec<f32>> {
        let costing = Costing { cost: ModelInput::tokens, padded };
        DynamicBatcher::new(config.clone(), costing, Arc::new(InnerModel(inner)), observer)
    }

    async fn submit(
        &self,
        compute: Compute,
        batch: Vec<Encoding>,
        context: RequestContext,
    ) -> Result<Batched<Vec<f32>>> {
        let items = batch.into_iter().map(|encoding| ModelInput { compute, encoding }).collect();
        self.batcher.submit(items, context).await
    }
}

#[async_trait]
impl EmbeddingProvider for BatchingProvider {
    async fn embed(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Pooled> {
        let batched = self.submit(Compute::Pooled, batch, context).await?;
        Ok(Pooled { vectors: batched.outputs, timing: batched.timing })
    }

    async fn predict(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Predictions> {
        let batched = self.submit(Compute::Logits, batch, context).await?;
        Ok(Predictions { logits: batched.outputs, timing: batched.timing })
    }

    async fn token_vectors(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<TokenVectors> {
        let batched = self.submit(Compute::TokenVectors, batch, context).await?;
        Ok(TokenVectors { vectors: batched.outputs, timing: batched.timing })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use aki_core::Timing;

    use super::*;

    mockall::mock! {
        Queue {}
        #[async_trait]
        impl Batcher<ModelInput, Vec<f32>> for Queue {
            async fn submit(&self, items: Vec<ModelInput>, context: RequestContext) -> Result<Batched<Vec<f32>>>;
        }
    }

    fn enc() -> Encoding {
        Encoding { ids: vec![1, 2], type_ids: vec![0, 0] }
    }

    /// Embeds an input as `[its length]`, scores it `[minus its length]` and gives each of its
    /// tokens the vector `[its id]`.
    struct Lengths;

    #[async_trait]
    impl EmbeddingProvider for Lengths {
        async fn embed(&self, batch: Vec<Encoding>, _: RequestContext) -> Result<Pooled> {
            Ok(Pooled { vectors: batch.iter().map(|e| vec![e.len() as f32]).collect(), ..Pooled::default() })
        }

        async fn predict(&self, batch: Vec<Encoding>, _: RequestContext) -> Result<Predictions> {
            Ok(Predictions {
                logits: batch.iter().map(|e| vec![-(e.len() as f32)]).collect(),
                ..Predictions::default()
            })
        }

        async fn token_vectors(&self, batch: Vec<Encoding>, _: RequestContext) -> Result<TokenVectors> {
            Ok(TokenVectors {
                vectors: batch.iter().map(|e| e.ids.iter().map(|&id| id as f32).collect()).collect(),
                ..TokenVectors::default()
            })
        }
    }

    #[tokio::test]
    async fn a_batch_of_every_kind_is_split_and_answered_in_order() {
        let input = |compute, n: usize| ModelInput {
            compute,
            encoding: Encoding { ids: (1..=n as u32).collect(), type_ids: vec![0; n] },
        };
        let items = vec![
            input(Compute::Pooled, 1),
            input(Compute::Logits, 2),
            input(Compute::TokenVectors, 3),
            input(Compute::Pooled, 3),
        ];
        let outputs = InnerModel(Arc::new(Lengths)).run(items).await.expect("runs");
        assert_eq!(outputs, vec![vec![1.0], vec![-2.0], vec![1.0, 2.0, 3.0], vec![3.0]]);
    }

    #[tokio::test]
    async fn inference_goes_through_the_batcher_port_with_the_requests_deadline_and_task() {
        let timing =
            Timing { queue: Duration::from_millis(3), inference: Duration::from_millis(7), ..Timing::default() };
        let mut queue = MockQueue::new();
        let given = Instant::now() + Duration::from_secs(5);
        queue
            .expect_submit()
            .withf(move |items, context| {
                items.len() == 1 && items[0].compute == Compute::Pooled && context.deadline == Some(given)
            })
            .times(1)
            .returning(move |_, _| Ok(Batched { outputs: vec![vec![3.0, 4.0]], timing }));
        queue
            .expect_submit()
            .withf(|items, context| items[0].compute == Compute::Logits && context.deadline.is_none())
            .times(1)
            .returning(move |_, _| Ok(Batched { outputs: vec![vec![1.5]], timing }));
        let provider = BatchingProvider::new(Arc::new(queue));
        let out = provider.embed(vec![enc()], RequestContext::until(given)).await.expect("ok");
        assert_eq!(
            (out.vectors, out.timing.queue, out.timing.inference),
            (vec![vec![3.0, 4.0]], timing.queue, timing.inference)
        );
        let scored = provider.predict(vec![enc()], RequestContext::default()).await.expect("ok");
        assert_eq!(scored.logits, vec![vec![1.5]]);
    }
}
