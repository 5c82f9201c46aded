"""Reranking speed of aki-rest on the CPU, packed path against candle-transformers, over HTTP.

A cross-encoder the size of cross-encoder/ms-marco-MiniLM-L6-v2 is made from the installed
all-MiniLM-L6-v2 encoder with a random classifier (the hub is out of reach here; the speed does
not depend on the classifier's values), then each engine serves it in turn, twice: 40 timed
`/rerank` calls of 32 short-corpus texts after 5 warm-up calls, f32, the median reported. Run
with the peer venv's Python (transformers):

    target/peer-venv/bin/python scripts/bench_rerank.py target/release/aki-rest
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import torch
import transformers

QUERY = "how do embedding servers batch requests?"


def cross_encoder(target: Path) -> None:
    source = Path(os.environ.get("AKI_MODELS_DIR", Path.home() / ".cache/aki-embed/models"))
    source = source / "sentence-transformers/all-MiniLM-L6-v2"
    torch.manual_seed(0)
    transformers.BertForSequenceClassification.from_pretrained(str(source), num_labels=1).save_pretrained(target)
    shutil.copy(source / "tokenizer.json", target / "tokenizer.json")


def post(url: str, body: dict):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=120))


def serve(binary: str, model: Path, packed: bool, lines: list[str]) -> tuple[float, list[float]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, AKI_BACKEND__PACKED=str(packed).lower(), AKI_BACKEND__DTYPE="f32", RUST_LOG="warn")
    server = subprocess.Popen([binary, "--port", str(port), "--model", str(model), "--device", "cpu"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        first = post(url + "/rerank", {"query": QUERY, "texts": lines[:32], "raw_scores": True})
        scores = [r["score"] for r in sorted(first, key=lambda r: r["index"])]
        times = []
        for i in range(45):
            texts = lines[i * 32 % 992:][:32]
            started = time.perf_counter()
            post(url + "/rerank", {"query": QUERY, "texts": texts, "raw_scores": True})
            times.append(time.perf_counter() - started)
        return statistics.median(times[5:]), scores
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    binary = sys.argv[1]
    root = Path(__file__).resolve().parent.parent
    lines = [l.strip() for l in (root / "benches/data/short_1024.txt").read_text().splitlines() if l.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp)
        cross_encoder(model)
        reference = None
        for round_ in (1, 2):
            for packed in (True, False):
                median, scores = serve(binary, model, packed, lines)
                reference = reference or scores
                drift = max(abs(a - b) for a, b in zip(scores, reference))
                engine = "packed" if packed else "candle-transformers"
                print(f"round {round_}, {engine}: 32 pairs a call, median {median * 1e3:.1f} ms, "
                      f"{32 / median:.0f} pairs/s; largest score difference from the packed path {drift:.1e}")


if __name__ == "__main__":
    main()
