"""Interoperability check of aki-rest with real clients: the official `openai` Python package
(float and base64), Hugging Face's `huggingface_hub.InferenceClient` pointed at the server's URL
(as TEI's documentation calls a deployment: `feature_extraction` and `sentence_similarity`
post to `/`), Cohere's SDK (`ClientV2.embed` with every embedding type and input type, and
`Client.embed`) and `curl`, against a running server; vectors must match the reference fixtures
(cosine >= 0.9999), int8 and uint8 `quantize_embeddings`' (`quantized.json`) within one step.

Usage: python interop_rest.py BASE_URL FIXTURES_JSON  (run by `cargo xtask interop`).
"""

import array
import base64
import json
import struct
import subprocess
import sys

import cohere
import openai
from huggingface_hub import InferenceClient

from interop_common import MIN_COSINE, Checks, cosine


def floats(embedding):
    """The vector of an embedding: a list of floats, or base64 of little-endian f32."""
    if isinstance(embedding, str):
        return array.array("f", base64.b64decode(embedding)).tolist()
    return embedding


def main():
    base_url, fixtures = sys.argv[1], sys.argv[2]
    with open(fixtures, encoding="utf-8") as f:
        items = json.load(f)["items"]
    texts = [item["text"] for item in items]
    checks = Checks("interop")
    check = checks.check

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused")
    model = client.models.list().data[0].id
    for encoding in ("float", "base64"):
        response = client.embeddings.create(model=model, input=texts, encoding_format=encoding)
        worst = min(cosine(floats(d.embedding), item["embedding"]) for d, item in zip(response.data, items))
        check(f"openai embeddings.create ({encoding}), {len(texts)} fixtures", worst >= MIN_COSINE, f"worst cosine {worst}")
        check(
            f"openai usage ({encoding})",
            response.usage.prompt_tokens == sum(item["tokens"] for item in items),
            str(response.usage),
        )
    single = client.embeddings.create(model=model, input=texts[0])
    check("openai single string", cosine(single.data[0].embedding, items[0]["embedding"]) >= MIN_COSINE)

    hub = InferenceClient(model=base_url)
    vectors = hub.feature_extraction(texts[4])
    check("huggingface_hub feature_extraction (POST /)",
          vectors.shape == (1, 384) and cosine(vectors[0].tolist(), items[4]["embedding"]) >= MIN_COSINE,
          f"shape {vectors.shape}")
    scores = hub.sentence_similarity(texts[0], other_sentences=texts[1:4])
    # Against the server's own vectors: its default precision (bf16 or f16 on some CPUs) moves the
    # similarities by more than the fixtures' tolerance allows.
    own = [hub.feature_extraction(text)[0].tolist() for text in texts[:4]]
    want = [cosine(own[0], vector) for vector in own[1:]]
    check("huggingface_hub sentence_similarity (POST /)",
          len(scores) == 3 and all(abs(s - w) < 1e-4 for s, w in zip(scores, want)), f"{scores} vs {want}")

    body = json.dumps({"texts": texts[:3]})
    out = subprocess.run(
        ["curl", "-sS", "-f", "-X", "POST", f"{base_url}/api/v1/embed", "-H", "Content-Type: application/json", "-d", body],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    reply = json.loads(out)
    worst = min(cosine(v, item["embedding"]) for v, item in zip(reply["embeddings"], items[:3]))
    check("curl POST /api/v1/embed", worst >= MIN_COSINE and reply["dimension"] == 384, f"worst cosine {worst}")
    tei = json.loads(
        subprocess.run(
            ["curl", "-sS", "-f", "-X", "POST", f"{base_url}/embed", "-H", "Content-Type: application/json",
             "-d", json.dumps({"inputs": texts[5]})],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    check("curl POST /embed (TEI)", cosine(tei[0], items[5]["embedding"]) >= MIN_COSINE)
    status = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", f"{base_url}/v1/embeddings",
         "-H", "Content-Type: application/json", "-d", "{\"input\": []}"],
        capture_output=True, text=True,
    ).stdout
    check("curl empty input is 400", status == "400", status)

    cohere_embed(base_url, model, texts, items, fixtures.replace("reference.json", "quantized.json"), check)
    checks.finish()


def packbits(vector):
    """numpy's packbits of `vector > 0`: eight values a byte, most significant bit first."""
    bits = [1 if x > 0 else 0 for x in vector] + [0] * (-len(vector) % 8)
    return [sum(b << (7 - i) for i, b in enumerate(bits[j:j + 8])) for j in range(0, len(bits), 8)]


def cohere_embed(base_url, model, texts, items, quantized, check):
    """Cohere's SDK: `ClientV2.embed` with every embedding type and input type, `Client.embed`."""
    with open(quantized, encoding="utf-8") as f:
        want = json.load(f)
    v2 = cohere.ClientV2(base_url=base_url, api_key="unused")
    types = ["float", "int8", "uint8", "binary", "ubinary", "base64"]
    for input_type in ["search_document", "search_query", "classification", "clustering"]:
        reply = v2.embed(model=model, texts=texts, input_type=input_type, embedding_types=types)
        got = reply.embeddings
        worst = min(cosine(v, item["embedding"]) for v, item in zip(got.float_, items))
        check(f"cohere ClientV2.embed float ({input_type})", worst >= MIN_COSINE, f"worst cosine {worst}")
    bits = all(packbits(v) == u and [b - 128 for b in u] == s for v, u, s in zip(got.float_, got.ubinary, got.binary))
    check("cohere ClientV2.embed ubinary and binary: the float vectors' bits", bits and len(got.ubinary[0]) == 48)
    for kind in ["int8", "uint8"]:
        values = [(g, w) for gv, wv in zip(getattr(got, kind), want[kind]) for g, w in zip(gv, wv)]
        near = sum(abs(g - w) <= 1 for g, w in values) / len(values)
        check(f"cohere ClientV2.embed {kind}: within one step of quantize_embeddings", near >= 0.99,
              f"{near:.4f} of values within one step")
    decoded = [list(struct.unpack(f"<{len(v)}f", base64.b64decode(b))) for v, b in zip(got.float_, got.base64)]
    # JSON carries each f32 as its shortest decimal, which parses to a nearby double.
    error = max(abs(a - b) for d, v in zip(decoded, got.float_) for a, b in zip(d, v))
    check("cohere ClientV2.embed base64: the float vectors' bytes", error < 1e-7, f"largest difference {error}")
    tokens = reply.meta.billed_units.input_tokens
    check("cohere ClientV2.embed billed input tokens", tokens == sum(item["tokens"] for item in items), str(tokens))
    v1 = cohere.Client(base_url=base_url, api_key="unused").embed(model=model, texts=texts[:4], input_type="search_query")
    worst = min(cosine(v, item["embedding"]) for v, item in zip(v1.embeddings, items))
    check("cohere Client.embed (v1) floats", v1.response_type == "embeddings_floats" and worst >= MIN_COSINE,
          f"worst cosine {worst}")


if __name__ == "__main__":
    main()
