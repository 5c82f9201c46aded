//! The gRPC adapter of aki-embed (binary `aki-grpc`), on tonic: service `aki.embed.v1.Embedder`
//! (`Embed`, `EmbedStream`, `Info`, `Tokenize`, `Rerank`), the standard `grpc.health.v1` health service,
//! server reflection (v1 and v1alpha), and Prometheus metrics on a separate HTTP port. The only
//! crate that knows protobuf; it converts messages by hand to and from the application
//! service's requests and replies, and logs every failed call in one place (`failure.rs`).

mod connection;
mod convert;
mod failure;
mod server;
mod service;
mod streams;
mod tei;

/// Code generated from `proto/aki/embed/v1/embed.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("aki.embed.v1");

    /// The encoded descriptor set of both packages, served by reflection.
    pub const DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("aki_embed_descriptor");
}

/// Code generated from `proto/tei/v1/tei.proto`, TEI's API.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod tei_pb {
    tonic::include_proto!("tei.v1");
}

pub use convert::grpc_deadline;
pub use failure::{failure_level, status_of};
pub use server::{KeyChecked, default_config, run, serve};
pub use service::EmbedderService;
