//! `BatchingProvider`: the inference port through one shared `Batcher`, so the model pipeline
//! sees the same port whether batching is on or off.

use std::sync::Arc;

use aki_core::{Batched, Batcher, EmbeddingProvider, Encoding, ModelTask, Pooled, Predictions, RequestContext, Result};
use async_trait::async_trait;

use crate::batcher::{BatchHandler, BatchObserver, Costing, DynamicBatcher};
use crate::config::BatchConfig;

/// One queued input and what the model computes from it: a pooled vector or a classifier's
/// logits. A model does one of the two, so a batch holds one kind in practice; the handler
/// still splits a mixed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInput {
    /// What to compute.
    pub task: ModelTask,
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
    async fn run_task(&self, task: ModelTask, batch: Vec<Encoding>) -> Result<Vec<Vec<f32>>> {
        let context = RequestContext::default();
        Ok(match task {
            ModelTask::Embed => self.0.embed(batch, context).await?.vectors,
            ModelTask::Rerank => self.0.predict(batch, context).await?.logits,
        })
    }
}

#[async_trait]
impl BatchHandler<ModelInput, Vec<f32>> for InnerModel {
    async fn run(&self, items: Vec<ModelInput>) -> Result<Vec<Vec<f32>>> {
        let mut outputs: Vec<Option<Vec<f32>>> = vec![None; items.len()];
        // Each task's inputs, with their positions in the batch.
        let mut by_task: [(Vec<usize>, Vec<Encoding>); 2] = Default::default();
        for (i, item) in items.into_iter().enumerate() {
            let (positions, batch) = &mut by_task[usize::from(item.task == ModelTask::Rerank)];
            positions.push(i);
            batch.push(item.encoding);
        }
        for (task, (positions, batch)) in [ModelTask::Embed, ModelTask::Rerank].into_iter().zip(by_task) {
            if batch.is_empty() {
                continue;
            }
            for (i, output) in positions.into_iter().zip(self.run_task(task, batch).await?) {
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
        task: ModelTask,
        batch: Vec<Encoding>,
        context: RequestContext,
    ) -> Result<Batched<Vec<f32>>> {
        let items = batch.into_iter().map(|encoding| ModelInput { task, encoding }).collect();
        self.batcher.submit(items, context).await
    }
}

#[async_trait]
impl EmbeddingProvider for BatchingProvider {
    async fn embed(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Pooled> {
        let batched = self.submit(ModelTask::Embed, batch, context).await?;
        Ok(Pooled { vectors: batched.outputs, timing: batched.timing })
    }

    async fn predict(&self, batch: Vec<Encoding>, context: RequestContext) -> Result<Predictions> {
        let batched = self.submit(ModelTask::Rerank, batch, context).await?;
        Ok(Predictions { logits: batched.outputs, timing: batched.timing })
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

    /// Embeds an input as `[its length]` and scores it `[minus its length]`.
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
    }

    #[tokio::test]
    async fn a_batch_of_both_tasks_is_split_and_answered_in_order() {
        let input = |task, n: usize| ModelInput { task, encoding: Encoding { ids: vec![1; n], type_ids: vec![0; n] } };
        let items = vec![input(ModelTask::Embed, 1), input(ModelTask::Rerank, 2), input(ModelTask::Embed, 3)];
        let outputs = InnerModel(Arc::new(Lengths)).run(items).await.expect("runs");
        assert_eq!(outputs, vec![vec![1.0], vec![-2.0], vec![3.0]]);
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
                items.len() == 1 && items[0].task == ModelTask::Embed && context.deadline == Some(given)
            })
            .times(1)
            .returning(move |_, _| Ok(Batched { outputs: vec![vec![3.0, 4.0]], timing }));
        queue
            .expect_submit()
            .withf(|items, context| items[0].task == ModelTask::Rerank && context.deadline.is_none())
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
