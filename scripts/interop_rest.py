"""Interoperability check of aki-rest with real clients: the official `openai` Python package
(float and base64), Hugging Face's `huggingface_hub.InferenceClient` pointed at the server's URL
(as TEI's documentation calls a deployment: `feature_extraction` and `sentence_similarity`
post to `/`) and `curl`, against a running server; vectors must match the reference fixtures
(cosine >= 0.9999).

Usage: python interop_rest.py BASE_URL FIXTURES_JSON  (run by `cargo xtask interop`).
"""

import array
import base64
import json
import subprocess
import sys

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
    # Against the server's own vectors: its default precision (bf16 on some CPUs) moves the
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

    checks.finish()


if __name__ == "__main__":
    main()
