"""Which int8 calibration keeps retrieval: each sentence of the short corpus searches all the
others, and the top 1 and top 10 found with int8 codes (their dot product, as a store that keeps
the codes computes it) are compared with those of the float vectors. Three calibrations, all
from the model's vectors of the server's calibration texts: sentence-transformers'
per-dimension ranges, the same ranges dequantized (what a store that keeps them could do), and
one range [-M, M] for every dimension (M the largest magnitude), which the server uses.

Usage: python quantization_retrieval.py MODEL_DIR CORPUS_TXT CALIBRATION_TXT (in the peer venv).
"""

import sys

import numpy as np
from sentence_transformers import SentenceTransformer


def neighbours(scores, k=10):
    np.fill_diagonal(scores, -np.inf)
    return np.argsort(-scores, axis=1)[:, :k]


def codes(vectors, low, high):
    """quantize_embeddings' int8 with `ranges = [low, high]`."""
    step = (high - low) / 255
    return np.clip(np.floor((vectors - low) / step), 0, 255) - 128


def main():
    model_dir, corpus, calibration = sys.argv[1:4]
    model = SentenceTransformer(model_dir, device="cpu")
    texts = [line.strip() for line in open(corpus, encoding="utf-8") if line.strip()]
    vectors = model.encode(texts, batch_size=64)
    calibrated = model.encode(open(calibration, encoding="utf-8").read().splitlines(), batch_size=64)
    want = neighbours(vectors @ vectors.T)
    low, high = calibrated.min(0), calibrated.max(0)
    per_dimension = codes(vectors, low, high)
    dequantized = (per_dimension + 128.5) * (high - low) / 255 + low
    magnitude = np.abs(calibrated).max()
    one_range = codes(vectors, np.full_like(low, -magnitude), np.full_like(high, magnitude))
    print(f"{len(texts)} sentences, calibrated on {len(calibrated)}; M = {magnitude:.4f}")
    for name, found in [
        ("per-dimension ranges, dot of codes", per_dimension),
        ("per-dimension ranges, dequantized", dequantized),
        ("one range [-M, M], dot of codes", one_range),
    ]:
        got = neighbours(found @ found.T)
        top1 = (got[:, 0] == want[:, 0]).mean()
        recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want)])
        print(f"{name:38s} top-1 kept {top1:.4f}   recall@10 {recall:.4f}")


if __name__ == "__main__":
    main()
