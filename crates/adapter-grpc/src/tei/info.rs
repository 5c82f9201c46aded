//! `tei.v1.Info/Info`: the served model and the server's limits, as TEI reports them.

use aki_core::ModelTask;
use tonic::{Request, Response, Status};

use super::{TeiService, small};
use crate::tei_pb;

const INFO: &str = "/tei.v1.Info/Info";

#[tonic::async_trait]
impl tei_pb::info_server::Info for TeiService {
    async fn info(&self, _request: Request<tei_pb::InfoRequest>) -> Result<Response<tei_pb::InfoResponse>, Status> {
        let info = self.engine.service.info(INFO).await.map_err(Self::failed(INFO))?;
        let model = &info.model;
        let model_type = match model.task {
            ModelTask::Embed => tei_pb::ModelType::Embedding,
            ModelTask::Rerank if model.is_reranker() => tei_pb::ModelType::Reranker,
            ModelTask::Rerank => tei_pb::ModelType::Classifier,
        };
        Ok(Response::new(tei_pb::InfoResponse {
            version: info.version.to_string(),
            sha: None,
            docker_label: None,
            model_id: model.model_id.clone(),
            model_sha: None,
            model_dtype: model.torch_dtype().to_string(),
            model_type: model_type.into(),
            max_concurrent_requests: small(info.max_concurrent_requests),
            max_input_length: small(model.max_input_tokens),
            max_batch_tokens: small(info.batching.max_batch_tokens),
            max_batch_requests: Some(small(info.batching.max_batch_size)),
            max_client_batch_size: small(info.max_client_batch_size),
            tokenization_workers: small(info.tokenization_workers),
        }))
    }
}
