//! The gRPC adapter of aki-embed (binary `aki-grpc`): the only crate that knows protobuf.
//! Filled by the gRPC issue; until then it holds no services.
