"""The ONNX Runtime peer of `cargo xtask bench --peers`: the same all-MiniLM-L6-v2 weights exported
with `torch.onnx.export`, optimised with `onnxruntime.transformers.optimizer` (model_type "bert",
ORT's fused attention, GELU and layer norm), run by ONNX Runtime on the CPU with the same number
of threads, tokenised with the model's own tokenizer (padding to the longest in the batch), mean
pooling over the attention mask and L2 normalisation in numpy. Before timing, every reference
fixture must reach cosine >= 0.9999. Timed like aki's `throughput` bench: whole corpus per run, a
warm-up run, then repeats; one-call latency at batch 1.

With --int8, the same optimised export quantized as ONNX Runtime's CPU users quantize it
(`onnxruntime.quantization.quantize_dynamic`: int8 weights per output channel, `reduce_range`,
activations quantized per call): its vectors are not held to the f32 gate, but their worst and
mean cosine against the fixtures are measured and written beside its speed.

usage: peer_onnxruntime.py MODEL_DIR DATA_DIR FIXTURES_JSON THREADS REPEAT WORK_DIR OUT_JSON [--quick] [--int8]
       [--corpus short|medium] [--batch N[,N..]]

--corpus and --batch measure only that corpus and those batch sizes (for A/B runs beside aki's
`throughput` bench, which takes the same options).
"""

import argparse
import json
import statistics
import sys
import time

from peer_common import corpora, measure, row


def export(model_dir: str, work: str) -> str:
    """The model as an optimised ONNX file under `work` (made once)."""
    import os

    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    optimised = os.path.join(work, "model-optimised.onnx")
    if os.path.exists(optimised):
        return optimised
    raw = os.path.join(work, "model.onnx")
    model = AutoModel.from_pretrained(model_dir).eval()

    class Encoder(torch.nn.Module):
        """The model with its inputs by name and the last hidden state as its one output."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            Encoder(model),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            raw,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )
    config = model.config
    optimize_model(raw, model_type="bert", num_heads=config.num_attention_heads,
                   hidden_size=config.hidden_size).save_model_to_file(optimised)
    return optimised


def quantized(optimised: str, work: str) -> str:
    """The optimised export with dynamically quantized int8 weights under `work` (made once)."""
    import os

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = os.path.join(work, "model-optimised-int8.onnx")
    if not os.path.exists(path):
        # The fused operators (com.microsoft domain) defeat ONNX's shape inference: their
        # outputs are f32, as the quantizer's error message advises saying.
        quantize_dynamic(optimised, path, per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return path


def main() -> None:
    model_dir, data_dir, fixtures, threads, repeat, work, out = sys.argv[1:8]
    flags = argparse.ArgumentParser(prog="peer_onnxruntime.py MODEL_DIR .. OUT_JSON")
    flags.add_argument("--quick", action="store_true")
    flags.add_argument("--int8", action="store_true")
    flags.add_argument("--corpus", choices=["short", "medium"])
    flags.add_argument("--batch", type=lambda v: [int(b) for b in v.split(",")])
    args = flags.parse_args(sys.argv[8:])
    quick, int8, only_corpus, batches = args.quick, args.int8, args.corpus, args.batch
    import numpy as np
    import onnxruntime as ort
    from transformers import AutoTokenizer

    path = export(model_dir, work)
    if int8:
        path = quantized(path, work)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with open(f"{model_dir}/sentence_bert_config.json", encoding="utf-8") as f:
        max_length = json.load(f)["max_seq_length"]

    def embed(texts):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        feeds = {name: batch[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = session.run(["last_hidden_state"], feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    with open(fixtures, encoding="utf-8") as f:
        items = json.load(f)["items"]
    vectors = embed([item["text"] for item in items])
    cosines = [float(np.dot(v, np.asarray(item["embedding"]) / np.linalg.norm(item["embedding"])))
               for v, item in zip(vectors, items)]
    worst, mean = min(cosines), statistics.fmean(cosines)
    engine = "onnxruntime-int8" if int8 else "onnxruntime"
    print(f"{engine}: cosine worst {worst:.6f}, mean {mean:.6f} on {len(items)} fixtures", flush=True)
    # int8 is measured, not gated; a broken export (far below ORT's own int8 quality) still stops.
    if worst < (0.9 if int8 else 0.9999):
        sys.exit(f"{engine}'s vectors are off the reference (worst cosine {worst})")

    rows = []
    for corpus, texts in corpora(data_dir, quick):
        if only_corpus not in (None, corpus):
            continue
        for batch in batches or ([1, 8, 32] if quick else [1, 8, 32, 128]):
            calls = []

            def run() -> float:
                started = time.perf_counter()
                for i in range(0, len(texts), batch):
                    sent = time.perf_counter()
                    embed(texts[i:i + batch])
                    calls.append((time.perf_counter() - sent) * 1e3)
                return len(texts) / (time.perf_counter() - started)

            rates = measure(run, repeat, warmed=calls.clear)
            rows.append(row(corpus, batch, rates, call_p50_ms=statistics.median(calls)))
    import onnx
    import transformers
    # The shape of `aki_bench_report::ThroughputRun`, which reads it.
    run_info = {
        "engine": engine,
        "fixture_cosine": {"min": worst, "mean": mean},
        "versions": {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "transformers": transformers.__version__},
        "threads": int(threads),
        "rows": rows,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(run_info, f, indent=1)


if __name__ == "__main__":
    main()
