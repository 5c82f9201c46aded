"""Helpers shared by the peer scripts of `cargo xtask bench --peers`: the benchmark corpora, and
one measured row (repeats after a warm-up run) in the shape `aki_bench_report` reads."""

import statistics


def corpora(data_dir: str, quick: bool):
    """(corpus name, its texts) for each benchmark corpus; 16 texts each with `quick`."""
    for corpus, name in [("short", "short_1024.txt"), ("medium", "medium_256.txt")]:
        with open(f"{data_dir}/{name}", encoding="utf-8") as f:
            texts = [line.rstrip("\n") for line in f if line.strip()]
        yield corpus, texts[:16] if quick else texts


def measure(run, repeat: str, warmed=None) -> list:
    """`run()` (sentences/s of one pass) once to warm up, then `warmed()` if given (to forget
    what the warm-up recorded), then `run()` `repeat` times; the rates sorted."""
    run()
    if warmed is not None:
        warmed()
    return sorted(run() for _ in range(int(repeat)))


def row(corpus: str, batch: int, rates: list, **extra) -> dict:
    """The JSON row for `rates`, printed as a markdown row on the way."""
    print(f"| {corpus} | {batch} | {statistics.median(rates):.1f} | {rates[0]:.1f} | {rates[-1]:.1f} |", flush=True)
    return {"corpus": corpus, "batch": batch, "sentences_per_s": rates, **extra}
