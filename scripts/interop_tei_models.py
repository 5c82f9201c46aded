"""Interoperability check of TEI's clients against the model kinds beyond embedders and
rerankers, on a tiny model of the backend's tests and its `reference.json`: stubs generated from
tei.proto against aki-grpc (`EmbedSparse` and `EmbedSparseStream` on a SPLADE model, values
within 1e-4 of sentence-transformers' `SparseEncoder`; `Predict` on a classifier, every label's
probability within 1e-4 of the softmax of transformers' logits; `Rerank` on a cross-encoder,
order and scores within 1e-4 of `CrossEncoder`'s), and for a classifier huggingface_hub's
`InferenceClient.text_classification` against aki-rest.

Usage: python interop_tei_models.py GRPC_TARGET PROTO_ROOT MODEL_DIR REST_URL  (run by
`cargo xtask interop`).
"""

import json
import math
import sys

import grpc
from huggingface_hub import InferenceClient

from interop_common import Checks, stubs

MAX_ERROR = 1e-4


def sparse_error(got, want):
    """The largest value difference, or infinity when the active entries differ."""
    if [p.index for p in got] != [i for i, _ in want]:
        return math.inf
    return max((abs(p.value - v) for p, (_, v) in zip(got, want)), default=0.0)


def splade(channel, pb, rpc, reference, check):
    embed = rpc.EmbedStub(channel)
    texts, want = reference["inputs"], reference["sparse"]
    reply = embed.EmbedSparse(pb.EmbedSparseRequest(inputs=texts[0], truncate=True), timeout=30)
    error = sparse_error(reply.sparse_embeddings, want[0])
    check("tei.v1 EmbedSparse", error <= MAX_ERROR and reply.metadata.compute_tokens == reference["tokens"][0],
          f"error {error}, {reply.metadata}")
    answers = list(embed.EmbedSparseStream((pb.EmbedSparseRequest(inputs=t, truncate=True) for t in texts), timeout=60))
    worst = max(sparse_error(a.sparse_embeddings, w) for a, w in zip(answers, want))
    check(f"tei.v1 EmbedSparseStream, {len(texts)} messages in order", len(answers) == len(texts) and worst <= MAX_ERROR,
          f"{len(answers)} answers, worst error {worst}")


def softmax(logits):
    top = max(logits)
    exp = [math.exp(x - top) for x in logits]
    return [e / sum(exp) for e in exp]


def classifier(channel, pb, rpc, reference, check, rest_url):
    labels, texts = reference["labels"], reference["inputs"]
    predict = rpc.PredictStub(channel)
    worst = 0.0
    for text, logits in zip(texts[:6], reference["logits"]):
        want = dict(zip(labels, softmax(logits)))
        got = predict.Predict(pb.PredictRequest(inputs=text, truncate=True), timeout=30).predictions
        if sorted(p.label for p in got) != sorted(labels):
            worst = math.inf
        worst = max([worst] + [abs(p.score - want.get(p.label, math.inf)) for p in got])
    check(f"tei.v1 Predict, every one of {len(labels)} labels", worst <= MAX_ERROR, f"worst error {worst}")
    hub = InferenceClient(model=rest_url)
    want = dict(zip(labels, softmax(reference["logits"][1])))
    # TEI answers one text with every label, best first; the client hands back the first.
    predicted = hub.text_classification(texts[1])
    best = max(want, key=want.get)
    check("huggingface_hub text_classification on a classifier (POST /): the best label",
          predicted.label == best and abs(predicted.score - want[best]) <= MAX_ERROR, repr(predicted))


def reranker(channel, pb, rpc, reference, check):
    texts, scores = reference["inputs"], reference["scores"]
    ranked = rpc.RerankStub(channel).Rerank(pb.RerankRequest(query=reference["query"], texts=texts, truncate=True),
                                            timeout=30).ranks
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    error = max(abs(r.score - scores[r.index]) for r in ranked)
    check(f"tei.v1 Rerank, {len(texts)} texts best first", [r.index for r in ranked] == order and error <= MAX_ERROR,
          f"largest score error {error:.2e}")


def main():
    target, proto_root, model_dir, rest_url = sys.argv[1:5]
    stubs(proto_root)
    from tei.v1 import tei_pb2, tei_pb2_grpc  # noqa: E402  (generated above)

    with open(f"{model_dir}/reference.json", encoding="utf-8") as f:
        reference = json.load(f)
    checks = Checks(f"interop {reference['kind']}")
    channel = grpc.insecure_channel(target)
    if reference["kind"] == "splade":
        splade(channel, tei_pb2, tei_pb2_grpc, reference, checks.check)
    elif reference["kind"] == "reranker":
        reranker(channel, tei_pb2, tei_pb2_grpc, reference, checks.check)
    else:
        classifier(channel, tei_pb2, tei_pb2_grpc, reference, checks.check, rest_url)
    checks.finish()


if __name__ == "__main__":
    main()
