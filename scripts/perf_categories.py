"""Groups a `perf report` by where the time goes, for docs/performance.md.

usage: perf report -i perf.data --no-children --sort symbol --stdio 2>/dev/null \
         | python3 scripts/perf_categories.py
"""

import re
import sys

# First match wins; patterns are searched in the symbol name.
CATEGORIES = [
    ("matmul (gemm crate: linear layers, attention products)", r"gemm"),
    ("matmul (few-rows kernel)", r"block_4x64|block_any|matmul_few_rows"),
    ("matmul (candle)", r"candle_core::cpu_backend::.*(MatMul|matmul)|sgemm"),
    ("attention softmax (exp)", r"softmax|expf|xflowf"),
    ("activation (GELU)", r"activate|gelu|erf"),
    ("layer norm", r"layer_norm|LayerNorm"),
    ("other element-wise and copies", r"add_rows|fill_rows|memmove|memcpy|memset|candle_core|candle_nn|candle_transformers|copy_strided|binary_map|unary_map"),
    ("thread pool wait and scheduling", r"BarrierPool|trampoline|__rust_begin_short_backtrace|rayon|crossbeam|sched|futex|spin|yield|finish_task_switch|schedule|wake|_raw_spin"),
    ("tokenization", r"tokenizers|onig|regex|fancy_regex|unicode|aho_corasick"),
    ("batching", r"aki_batching"),
    ("HTTP, JSON and async runtime", r"hyper|axum|tower|tokio|serde|h2|http|mio|epoll|tcp|sock|skb|net_|ip_|__sys_|recv|send|copy_user"),
    ("memory allocation", r"malloc|free|alloc|mmap|page_fault|clear_page|exc_page"),
]


def main() -> None:
    totals: dict[str, float] = {}
    for line in sys.stdin:
        m = re.match(r"\s*([\d.]+)%\s+(?:\S+\s+)?\[[.k]\]\s+(.*)", line)
        if not m:
            continue
        share, symbol = float(m.group(1)), m.group(2)
        name = next((c for c, pattern in CATEGORIES if re.search(pattern, symbol, re.I)), "other")
        totals[name] = totals.get(name, 0.0) + share
    print("| where | share of samples |\n|---|---:|")
    for name, share in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {share:.1f}% |")


if __name__ == "__main__":
    main()
