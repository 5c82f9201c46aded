#!/usr/bin/env bash
# GPU check of aki-rest, in one call, under five minutes on a GPU machine: reference-fixture
# correctness in f32 and f16, every other model family and the cross-encoders on their tiny
# models against sentence-transformers (crates/backend-candle/tests/tiny), wrk at 10/50/100/200/400 connections with GPU utilisation, the
# medium corpus, one-sentence latency, and sentence-transformers on the same GPU when it is
# importable; prints one markdown table (also written to --out).
#
# A lent GPU machine has no internet and no Rust: build here (`cargo xtask build-cuda`) and carry
# the binary; the model directory and wrk come along too. Run from anywhere:
#
#   scripts/gpu-check.sh BINARY MODEL_DIR WRK [--device cuda|cpu] [--seconds N] [--out FILE]
#
# `--device cpu` is the dry run the test command makes on a machine without a GPU (f32 only,
# nvidia-smi and the peer skipped when absent). Needs python3 (standard library) and curl.
set -euo pipefail

usage() { echo "usage: $0 BINARY MODEL_DIR WRK [--device cuda|cpu] [--seconds N] [--out FILE]" >&2; exit 2; }
[ $# -ge 3 ] || usage
binary=$(realpath "$1"); model=$(realpath "$2"); wrk=$3; shift 3
device=cuda; seconds=8; out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) usage ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
fixtures="$root/crates/backend-candle/tests/fixtures/reference.json"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
pid=""
rows=()

cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# start_server DTYPE [MODEL]: the binary on $device with the device's defaults, DTYPE forced.
start_server() {
  AKI_BACKEND__DTYPE=$1 RUST_LOG=warn "$binary" --port "$port" --model "${2:-$model}" --device "$device" \
    > "$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    if curl -sf "$url/ready" > /dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "the server exited during start-up" >&2; exit 1; }
    sleep 0.2
  done
  echo "the server was not ready within 120 s" >&2; exit 1
}

stop_server() { kill -TERM "$pid"; wait "$pid" || true; pid=""; }

# fixtures DTYPE: cosine of every reference fixture, alone and in one batch, against the reference.
fixtures() {
  python3 - "$url" "$fixtures" "$1" <<'EOF'
import json, math, sys, urllib.request
url, path, dtype = sys.argv[1:4]
items = json.load(open(path, encoding="utf-8"))["items"]
def embed(texts):
    body = json.dumps({"texts": texts}).encode()
    request = urllib.request.Request(url + "/api/v1/embed", data=body, headers={"content-type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=120))["embeddings"]
def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
alone = [cosine(embed([i["text"]])[0], i["embedding"]) for i in items]
batch = [cosine(v, i["embedding"]) for v, i in zip(embed([i["text"] for i in items]), items)]
worst, mean = min(alone + batch), sum(alone + batch) / len(alone + batch)
need = 0.9999 if dtype == "f32" else 0.999
print(f"| fixtures, {dtype} | {len(items)} texts alone and in one batch | min cosine {worst:.6f}, mean {mean:.6f} | {'ok' if worst >= need else 'FAIL'} (>= {need}) | | | |")
sys.exit(0 if worst >= need else 1)
EOF
}

# family DTYPE DIR: one tiny model of another family (or a cross-encoder, a classifier, a SPLADE
# model) served on $device, its inputs in one batch against its reference.
family() {
  python3 - "$url" "$2/reference.json" "$1" "$(basename "$2")" <<'EOF'
import json, math, sys, urllib.request
url, path, dtype, name = sys.argv[1:5]
ref = json.load(open(path, encoding="utf-8"))
def post(route, body):
    request = urllib.request.Request(url + route, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=120))
def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
if ref["kind"] == "reranker":
    ranks = post("/rerank", {"query": ref["query"], "texts": ref["inputs"], "raw_scores": True, "truncate": True})
    error = max(abs(r["score"] - ref["raw_scores"][r["index"]]) for r in ranks)
    need = 1e-4 if dtype == "f32" else 2e-2
    ok = error <= need
    print(f"| {name}, {dtype} | {len(ranks)} pairs in one batch | largest score error {error:.2e} | {'ok' if ok else 'FAIL'} (<= {need:g}) | | | |")
elif ref["kind"] == "classifier":
    labels = post("/predict", {"inputs": [[t] for t in ref["inputs"]], "raw_scores": True, "truncate": True})
    error = max(abs(p["score"] - logits[ref["labels"].index(p["label"])])
                for got, logits in zip(labels, ref["logits"]) for p in got)
    need = 1e-4 if dtype == "f32" else 2e-2
    ok = error <= need
    print(f"| {name}, {dtype} | {len(labels)} texts in one batch | largest logit error {error:.2e} | {'ok' if ok else 'FAIL'} (<= {need:g}) | | | |")
elif ref["kind"] == "splade":
    sparse = post("/embed_sparse", {"inputs": ref["inputs"], "truncate": True})
    dense = lambda pairs: {int(i): v for i, v in pairs}
    error = max(abs(dense([(p["index"], p["value"]) for p in got]).get(i, 0.0) - dense(want).get(i, 0.0))
                for got, want in zip(sparse, ref["sparse"]) for i in range(ref["vocab_size"]))
    need = 1e-4 if dtype == "f32" else 5e-2
    ok = error <= need
    print(f"| {name}, {dtype} | {len(sparse)} texts in one batch | largest value error {error:.2e} | {'ok' if ok else 'FAIL'} (<= {need:g}) | | | |")
else:
    vectors = post("/api/v1/embed", {"texts": ref["inputs"], "prompt": ""})["embeddings"]
    worst = min(cosine(v, w) for v, w in zip(vectors, ref["alone"]))
    need = 0.9999 if dtype == "f32" else 0.99
    ok = worst >= need
    print(f"| {name}, {dtype} | {len(vectors)} texts in one batch | min cosine {worst:.6f} | {'ok' if ok else 'FAIL'} (>= {need}) | | | |")
sys.exit(0 if ok else 1)
EOF
}

# load CONNECTIONS CORPUS: wrk with GPU utilisation sampled meanwhile.
load() {
  local connections=$1 corpus=$2 util="-"
  local sampler=""
  if command -v nvidia-smi > /dev/null && [ "$device" != cpu ]; then
    nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 250 > "$work/util" 2>/dev/null &
    sampler=$!
  fi
  AKI_LOAD_CORPUS="$root/benches/data/$corpus" "$wrk" -t 4 -c "$connections" -d "${seconds}s" --timeout 30s \
    -s "$root/scripts/load_embed.lua" "$url/" > "$work/wrk" 2>&1 || { cat "$work/wrk" >&2; exit 1; }
  if [ -n "$sampler" ]; then
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    util=$(awk '{ s += $1; n++ } END { if (n) printf "%.0f%%", s / n; else print "-" }' "$work/util")
  fi
  python3 - "$work/wrk" "$connections" "$corpus" "$util" <<'EOF'
import json, sys
text, connections, corpus, util = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], sys.argv[4]
line = next(l for l in text.splitlines() if l.startswith("AKI_RESULT "))
r = json.loads(line[len("AKI_RESULT "):])
failed = r["non2xx"] + r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
rate = r["requests"] / (r["duration_us"] / 1e6)
name = "short" if corpus.startswith("short") else "medium"
print(f"| load, {name} | {connections} connections | {rate:,.0f} requests/s | p50 {r['p50_us']/1e3:.1f} ms | p95 {r['p95_us']/1e3:.1f} ms | p99 {r['p99_us']/1e3:.1f} ms | GPU {util}, {failed} failed |")
EOF
}

# one_sentence: 200 sequential single-sentence requests, the median and p95.
one_sentence() {
  python3 - "$url" "$root/benches/data/short_1024.txt" <<'EOF'
import json, sys, time, urllib.request
url, corpus = sys.argv[1:3]
lines = [l.strip() for l in open(corpus, encoding="utf-8") if l.strip()]
times = []
for i in range(200):
    body = json.dumps({"texts": [lines[i % len(lines)]]}).encode()
    request = urllib.request.Request(url + "/api/v1/embed", data=body, headers={"content-type": "application/json"})
    started = time.perf_counter()
    urllib.request.urlopen(request, timeout=30).read()
    times.append((time.perf_counter() - started) * 1e3)
times = sorted(times[20:])
print(f"| one sentence over HTTP | 180 requests after 20 warm-up | p50 {times[len(times)//2]:.2f} ms | p95 {times[int(len(times)*0.95)]:.2f} ms | | | |")
EOF
}

# peer: sentence-transformers on the same device, when importable.
peer() {
  python3 - "$model" "$root/benches/data/short_1024.txt" "$device" <<'EOF' || true
import sys, time
model_dir, corpus, device = sys.argv[1:4]
try:
    import torch
    from sentence_transformers import SentenceTransformer
except ImportError:
    print("| sentence-transformers | not importable here | | | | | |")
    sys.exit(0)
lines = [l.strip() for l in open(corpus, encoding="utf-8") if l.strip()]
target = "cuda" if device.startswith("cuda") else "cpu"
model = SentenceTransformer(model_dir, device=target)
if target == "cuda":
    model = model.half()
model.encode(lines[:256], batch_size=128)
started = time.perf_counter()
model.encode(lines, batch_size=128)
rate = len(lines) / (time.perf_counter() - started)
times = []
for line in lines[:100]:
    started = time.perf_counter()
    model.encode([line])
    times.append((time.perf_counter() - started) * 1e3)
times.sort()
print(f"| sentence-transformers {'fp16' if target == 'cuda' else 'fp32'} on {target} | short corpus, batch 128 | {rate:,.0f} sentences/s | one sentence p50 {times[50]:.2f} ms | | | |")
EOF
}

rows+=("| check | setup | result | | | | |")
rows+=("|---|---|---|---|---|---|---|")
status=0
start_server f32
rows+=("$(fixtures f32)") || status=1
rows+=("$(one_sentence)")
stop_server
if [ "$device" != cpu ]; then
  start_server f16
  rows+=("$(fixtures f16)") || status=1
  stop_server
fi
for dtype in f32 $([ "$device" = cpu ] || echo f16); do
  for dir in "$root"/crates/backend-candle/tests/tiny/*; do
    start_server "$dtype" "$dir"
    rows+=("$(family "$dtype" "$dir")") || status=1
    stop_server
  done
done
# The load runs on the device's defaults (f16 on a GPU).
start_server "$([ "$device" = cpu ] && echo f32 || echo f16)"
for connections in 10 50 100 200 400; do
  rows+=("$(load "$connections" short_1024.txt)")
done
rows+=("$(load 100 medium_256.txt)")
stop_server
rows+=("$(peer)")

header="GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), device $device, $("$binary" --version 2>/dev/null || echo aki-rest)"
if command -v nvidia-smi > /dev/null; then
  header="$header, $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
fi
table=$(printf '%s\n' "$header" "" "${rows[@]}")
echo "$table"
[ -n "$out" ] && echo "$table" > "$out"
exit $status
