#!/bin/bash
# Interleaved throughput of two aki-rest binaries on the same machine: for each round, each
# scenario runs on A then on B (a fresh server each time, 3 s of warm-up, then 20 s of wrk with
# scripts/load_embed.lua), so drift between runs falls on both alike.
#
# Usage: scripts/ab_load.sh BINARY_A BINARY_B [ROUNDS]   (model: the installed default)
# Prints one line per run: label, corpus, connections, requests/s, p50 and p99 in ms.
set -euo pipefail
a=$1 b=$2 rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
model=${AKI_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aki-embed/models}/sentence-transformers/all-MiniLM-L6-v2
port=18080
run() { # label binary corpus connections
  "$2" --port $port --model "$model" --device cpu >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do curl -sf "localhost:$port/ready" >/dev/null && break; sleep 0.2; done
  export AKI_LOAD_CORPUS=$root/benches/data/$3
  wrk -t 2 -c "$4" -d 3s -s "$root/scripts/load_embed.lua" "http://127.0.0.1:$port/" >/dev/null
  local result
  result=$(wrk -t 2 -c "$4" -d 20s --timeout 30s -s "$root/scripts/load_embed.lua" "http://127.0.0.1:$port/" | grep AKI_RESULT)
  kill -TERM $pid; wait $pid || true
  python3 -c 'import json,sys; d=json.loads(sys.argv[4]); print(sys.argv[1], sys.argv[2], "c=" + sys.argv[3],
    "%.1f/s" % (d["requests"] / (d["duration_us"] / 1e6)), "p50 %.0f ms" % (d["p50_us"] / 1e3),
    "p99 %.0f ms" % (d["p99_us"] / 1e3), "non-2xx %d" % d["non2xx"])' "$1" "$3" "$4" "${result#AKI_RESULT }"
}
for _ in $(seq 1 "$rounds"); do
  for scenario in "short_1024.txt 50" "medium_256.txt 10"; do
    read -r corpus connections <<<"$scenario"
    run A "$a" "$corpus" "$connections"
    run B "$b" "$corpus" "$connections"
  done
done
