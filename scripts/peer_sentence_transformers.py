"""The peer side of `cargo xtask bench --peers`: sentence-transformers (PyTorch, CPU) encoding
the benchmark corpora at batch sizes 1, 8, 32 and 128 with a fixed thread count, timed the same
way as aki's `throughput` bench (whole corpus per run, a warm-up run, then repeats); also
PyTorch's matrix multiply rate, for the compute ceiling.

usage: peer_sentence_transformers.py MODEL_DIR DATA_DIR THREADS REPEAT OUT_JSON [--quick]
"""

import json
import sys
import time

from peer_common import corpora, measure, row


def sgemm_gflops(torch, quick: bool) -> float:
    """PyTorch's f32 matrix multiply rate at the shape of the model's feed-forward layer for a
    batch of short sentences (672 x 384 times 384 x 1536), in GFLOP/s."""
    a, b = torch.rand(672, 384), torch.rand(384, 1536)
    a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < (0.2 if quick else 3.0):
        a @ b
        count += 1
    return 2 * 672 * 384 * 1536 * count / (time.perf_counter() - started) / 1e9


def main() -> None:
    model_dir, data_dir, threads, repeat, out = sys.argv[1:6]
    quick = "--quick" in sys.argv[6:]
    import torch

    torch.set_num_threads(int(threads))
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    rows = []
    for corpus, texts in corpora(data_dir, quick):
        for batch in [1, 8] if quick else [1, 8, 32, 128]:
            def run() -> float:
                started = time.perf_counter()
                model.encode(texts, batch_size=batch, normalize_embeddings=True, show_progress_bar=False)
                return len(texts) / (time.perf_counter() - started)

            rows.append(row(corpus, batch, measure(run, repeat)))
    # The shape of `aki_bench_report::ThroughputRun`, which reads it.
    run = {
        "engine": "sentence-transformers",
        "versions": {"sentence-transformers": sentence_transformers.__version__, "torch": torch.__version__},
        "threads": torch.get_num_threads(),
        "sgemm_gflops": sgemm_gflops(torch, quick),
        "rows": rows,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(run, f, indent=1)


if __name__ == "__main__":
    main()
