"""Interoperability check of aki-grpc with a client not written in Rust: Python `grpcio` stubs
generated from the repository's .proto, calling Embed, EmbedStream, TEI's tei.v1 methods and the
standard health check against a running server; vectors must match the reference fixtures (cosine >= 0.9999).
Also `grpcio-reflection`'s client (which speaks `grpc.reflection.v1alpha` only) lists the
services and finds the Embedder's methods without the .proto. A text of about 2,000 tokens
embedded in windows must equal its windows embedded one by one and pooled in numpy.

Usage: python interop_grpc.py HOST:PORT PROTO_ROOT FIXTURES_JSON  (run by `cargo xtask interop`).
"""

import json
import sys

import grpc
import numpy
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from interop_common import MIN_COSINE, Checks, cosine, stubs


def main():
    target, proto_root, fixtures = sys.argv[1], sys.argv[2], sys.argv[3]
    stubs(proto_root)
    from aki.embed.v1 import embed_pb2, embed_pb2_grpc  # noqa: E402  (generated above)
    from tei.v1 import tei_pb2, tei_pb2_grpc  # noqa: E402  (generated above)

    with open(fixtures, encoding="utf-8") as f:
        items = json.load(f)["items"]
    checks = Checks("interop-grpc")
    check = checks.check

    channel = grpc.insecure_channel(target)
    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service="aki.embed.v1.Embedder"), timeout=10).status
    check("grpc.health.v1 Check is SERVING", status == health_pb2.HealthCheckResponse.SERVING, str(status))

    stub = embed_pb2_grpc.EmbedderStub(channel)
    reply = stub.Embed(embed_pb2.EmbedRequest(texts=[item["text"] for item in items]), timeout=120)
    worst = min(cosine(e.values, item["embedding"]) for e, item in zip(reply.embeddings, items))
    check(f"Embed, {len(items)} fixtures", worst >= MIN_COSINE and len(reply.embeddings) == len(items), f"worst cosine {worst}")
    check("Embed usage", reply.usage.prompt_tokens == sum(item["tokens"] for item in items), str(reply.usage))

    requests = (embed_pb2.EmbedRequest(texts=[item["text"]]) for item in items)
    answers = list(stub.EmbedStream(requests, timeout=120))
    worst = min(cosine(a.embeddings[0].values, item["embedding"]) for a, item in zip(answers, items))
    check("EmbedStream answers each request in order", len(answers) == len(items) and worst >= MIN_COSINE,
          f"{len(answers)} answers, worst cosine {worst}")

    try:
        stub.Embed(embed_pb2.EmbedRequest(texts=[]), timeout=10)
        check("empty texts is INVALID_ARGUMENT", False, "call succeeded")
    except grpc.RpcError as error:
        check("empty texts is INVALID_ARGUMENT", error.code() == grpc.StatusCode.INVALID_ARGUMENT, str(error.code()))

    reflection = ProtoReflectionDescriptorDatabase(channel)
    services = set(reflection.get_services())
    check("reflection v1alpha lists the services",
          {"aki.embed.v1.Embedder", "grpc.health.v1.Health"} <= services, str(sorted(services)))
    embedder = DescriptorPool(reflection).FindServiceByName("aki.embed.v1.Embedder")
    methods = {m.name for m in embedder.methods}
    check("reflection v1alpha describes the Embedder", {"Embed", "EmbedStream", "Info", "Tokenize"} <= methods,
          str(sorted(methods)))

    dtype = stub.Info(embed_pb2.InfoRequest(), timeout=10).dtype
    tei(channel, tei_pb2, tei_pb2_grpc, items, dtype, check)
    long_document(stub, embed_pb2, items, check)
    checks.finish()


def long_document(stub, pb, items, check):
    """A text of about 2,000 tokens embedded in windows against the same windows embedded one
    by one (as token ids, not normalised) and pooled here in numpy, weighted by their tokens."""
    text = " ".join(item["text"] for item in items)
    ids = [t.id for t in stub.Tokenize(pb.TokenizeRequest(texts=[text]), timeout=60).texts[0].tokens]
    longest, overlap = stub.Info(pb.InfoRequest(), timeout=10).max_input_tokens, 32
    # The documented windows: [CLS] and [SEP] around at most `longest - 2` tokens of the text,
    # each window starting `overlap` tokens before the previous one ends.
    body, room, windows, start = ids[1:-1], longest - 2, [], 0
    while True:
        end = min(start + room, len(body))
        windows.append([ids[0]] + body[start:end] + [ids[-1]])
        if end == len(body):
            break
        start = end - overlap
    one_by_one = stub.Embed(pb.EmbedRequest(token_ids=[pb.TokenIds(ids=w) for w in windows], normalize=False), timeout=120)
    vectors = numpy.array([e.values for e in one_by_one.embeddings])
    sizes = numpy.array([len(w) for w in windows], dtype=numpy.float64)
    pooled = (vectors * (sizes / sizes.sum())[:, None]).sum(axis=0)
    pooled /= numpy.linalg.norm(pooled)
    reply = stub.Embed(pb.EmbedRequest(texts=[text], windows=True, window_overlap=overlap), timeout=120)
    similarity = cosine(reply.embeddings[0].values, pooled.tolist())
    check(f"Embed windows: a {len(ids)}-token text in {len(windows)} windows, pooled as numpy pools them",
          len(ids) >= 2000 and len(reply.embeddings) == 1 and similarity >= 0.99999, f"cosine {similarity}")
    check("Embed windows usage counts every window's tokens",
          reply.usage.prompt_tokens == int(sizes.sum()), f"{reply.usage.prompt_tokens} for windows of {int(sizes.sum())}")


def tei(channel, pb, rpc, items, dtype, check):
    """TEI's own clients: stubs generated from tei.proto, one input per message. `dtype` is the
    precision aki.embed.v1 Info reports (f32, f16 or bf16, as this CPU defaults)."""
    embed = rpc.EmbedStub(channel)
    reply = embed.Embed(pb.EmbedRequest(inputs=items[0]["text"]), timeout=60)
    check("tei.v1 Embed", cosine(reply.embeddings, items[0]["embedding"]) >= MIN_COSINE
          and reply.metadata.compute_tokens == items[0]["tokens"], str(reply.metadata))
    answers = list(embed.EmbedStream((pb.EmbedRequest(inputs=item["text"]) for item in items[:8]), timeout=60))
    worst = min(cosine(a.embeddings, item["embedding"]) for a, item in zip(answers, items))
    check("tei.v1 EmbedStream answers each message in order", len(answers) == 8 and worst >= MIN_COSINE,
          f"{len(answers)} answers, worst cosine {worst}")
    # The mean of a sentence's token vectors, normalised, is its all-MiniLM-L6-v2 embedding.
    tokens = embed.EmbedAll(pb.EmbedAllRequest(inputs=items[0]["text"]), timeout=60).token_embeddings
    width = len(tokens[0].embeddings)
    mean = [sum(t.embeddings[i] for t in tokens) / len(tokens) for i in range(width)]
    check("tei.v1 EmbedAll: one vector per token, their mean the sentence's",
          len(tokens) == items[0]["tokens"] and width == 384 and cosine(mean, items[0]["embedding"]) >= MIN_COSINE,
          f"{len(tokens)} tokens of {width}")
    try:
        embed.EmbedSparse(pb.EmbedSparseRequest(inputs="a"), timeout=10)
        check("tei.v1 EmbedSparse on a dense model is INVALID_ARGUMENT", False, "call succeeded")
    except grpc.RpcError as error:
        check("tei.v1 EmbedSparse on a dense model is INVALID_ARGUMENT",
              error.code() == grpc.StatusCode.INVALID_ARGUMENT, str(error.code()))
    try:
        rpc.PredictStub(channel).Predict(pb.PredictRequest(inputs="a"), timeout=10)
        check("tei.v1 Predict on an embedder is INVALID_ARGUMENT", False, "call succeeded")
    except grpc.RpcError as error:
        check("tei.v1 Predict on an embedder is INVALID_ARGUMENT", error.code() == grpc.StatusCode.INVALID_ARGUMENT,
              str(error.code()))
    tokenize = rpc.TokenizeStub(channel)
    tokens = tokenize.Tokenize(pb.EncodeRequest(inputs="Hello world", add_special_tokens=True), timeout=10).tokens
    check("tei.v1 Tokenize", [t.id for t in tokens] == [101, 7592, 2088, 102] and not tokens[0].HasField("start")
          and (tokens[1].start, tokens[1].stop) == (0, 5), str(tokens))
    text = tokenize.Decode(pb.DecodeRequest(ids=[t.id for t in tokens], skip_special_tokens=True), timeout=10).text
    check("tei.v1 Decode", text == "hello world", text)
    info = rpc.InfoStub(channel).Info(pb.InfoRequest(), timeout=10)
    check("tei.v1 Info", info.model_type == pb.MODEL_TYPE_EMBEDDING and info.max_input_length == 256
          and info.model_dtype == {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype], str(info))
    reflection = ProtoReflectionDescriptorDatabase(channel)
    services = set(reflection.get_services())
    wanted = {"tei.v1.Info", "tei.v1.Embed", "tei.v1.Predict", "tei.v1.Rerank", "tei.v1.Tokenize"}
    check("reflection lists the tei.v1 services", wanted <= services, str(sorted(services)))


if __name__ == "__main__":
    main()
