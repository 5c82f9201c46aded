"""Writes the reference of the quantized output types: sentence-transformers'
`quantize_embeddings` of the 48 fixtures' embeddings (all-MiniLM-L6-v2, as sentence-transformers
computes them) in int8, uint8, binary and ubinary; int8 and uint8 with the server's range, one
`[-M, M]` for every dimension, M the largest magnitude of the model's embeddings of the
server's calibration texts (`crates/core/src/calibration.txt`).

Usage: python make_quantized_reference.py MODEL_DIR CALIBRATION_TXT FIXTURES_JSON OUT_JSON (in the
peer venv of `cargo xtask bench --peers`).
"""

import json
import sys

import numpy as np

from sentence_transformers import SentenceTransformer
from sentence_transformers.util.quantization import quantize_embeddings


def main():
    model_dir, calibration, fixtures, out = sys.argv[1:5]
    model = SentenceTransformer(model_dir, device="cpu")
    texts = [item["text"] for item in json.load(open(fixtures, encoding="utf-8"))["items"]]
    calibration = [line for line in open(calibration, encoding="utf-8").read().splitlines()]
    embeddings = model.encode(texts, batch_size=16)
    calibrated = model.encode(calibration, batch_size=64)
    magnitude = float(np.abs(calibrated).max())
    ranges = np.array([[-magnitude] * embeddings.shape[1], [magnitude] * embeddings.shape[1]], dtype=np.float32)
    record = {"texts": texts, "calibration_texts": len(calibration), "magnitude": magnitude}
    for precision in ["int8", "uint8", "binary", "ubinary"]:
        quantized = quantize_embeddings(embeddings, precision=precision, ranges=ranges)
        record[precision] = quantized.astype(int).tolist()
    with open(out, "w", encoding="utf-8") as f:
        json.dump(record, f)
        f.write("\n")


if __name__ == "__main__":
    main()
