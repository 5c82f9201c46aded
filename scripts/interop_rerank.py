"""Interoperability check of aki-rest's rerank routes with Cohere's official Python SDK (the
client LangChain's and LlamaIndex's Cohere rerankers call): `Client.rerank` (`/v1/rerank`) and
`ClientV2.rerank` (`/v2/rerank`) against a server running a cross-encoder; order and scores must
match the sentence-transformers reference (within 1e-4). Then Hugging Face's
`InferenceClient.text_classification`, which posts to `/` (TEI's predict for a classifier): the
label and the probability of one text.

Usage: python interop_rerank.py BASE_URL MODEL_DIR  (run by `cargo xtask interop`).
"""

import json
import sys

import cohere
from huggingface_hub import InferenceClient

from interop_common import Checks


def main():
    base_url, model_dir = sys.argv[1], sys.argv[2]
    with open(f"{model_dir}/reference.json", encoding="utf-8") as f:
        reference = json.load(f)
    documents, query = reference["inputs"], reference["query"]
    best = sorted(range(len(documents)), key=lambda i: -reference["scores"][i])[:5]
    checks = Checks("interop rerank")
    check = checks.check

    v1 = cohere.Client(base_url=base_url, api_key="unused")
    v2 = cohere.ClientV2(base_url=base_url, api_key="unused")
    model = model_dir
    answers = {
        "cohere Client.rerank (v1)": v1.rerank(model=model, query=query, documents=documents, top_n=5, return_documents=True),
        "cohere ClientV2.rerank (v2)": v2.rerank(model=model, query=query, documents=documents, top_n=5),
    }
    for name, answer in answers.items():
        indices = [r.index for r in answer.results]
        error = max(abs(r.relevance_score - reference["scores"][r.index]) for r in answer.results)
        check(f"{name}, top 5 of {len(documents)}", indices == best and error <= 1e-4,
              f"order {indices} (want {best}), largest score error {error:.2e}")
    with_text = answers["cohere Client.rerank (v1)"].results
    check("v1 return_documents", all(r.document.text == documents[r.index] for r in with_text), "documents returned")
    hub = InferenceClient(model=base_url)
    predicted = hub.text_classification(documents[1])
    # TEI answers one text with its labels, best first; the client hands back the first.
    check("huggingface_hub text_classification (POST /)",
          getattr(predicted, "label", None) == "LABEL_0" and 0.0 < getattr(predicted, "score", -1.0) < 1.0,
          repr(predicted))

    checks.finish()


if __name__ == "__main__":
    main()
