"""Embedding benchmark: torch vs ONNX Runtime fp32 vs ONNX int8, each in a fresh process, on the same texts.

Run from the repository root (after `tapewatch model prepare --all`, or the first run prepares the graphs):

    .venv/bin/python bench/embeddings.py              # 512 texts
    .venv/bin/python bench/embeddings.py --n 128      # a quick run
    .venv/bin/python bench/embeddings.py --threads 1  # memory.embed_threads = 1 for every path

Per path: peak RSS of a process that imports, loads the model and embeds the texts (ru_maxrss), load time,
embed-only throughput (texts/s, after one warm-up batch), and the minimum cosine of its vectors against the
torch path's; ratios are to the torch path measured in the same run. No network is used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.dont_write_bytecode = True  # importing the project below must write nothing into the source tree
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PATHS = ("minilm-torch", "minilm", "minilm-int8")


def corpus(n: int) -> list[str]:
    """``n`` texts like ingest's: the bundled sample items and their titles, numbered to keep them distinct."""
    from sources.rss import parse_feed
    from sources.samples import SAMPLE_FEEDS, sample_body
    from sources.tickers import Watchlist
    from tapewatch.settings import DEFAULT_WATCHLIST

    base: list[str] = []
    for feed, filename in SAMPLE_FEEDS:
        parsed = parse_feed(sample_body(filename), feed, Watchlist(DEFAULT_WATCHLIST), fetched_at=datetime.now(UTC))
        base += [item.embedding_text() for item in parsed.items] + [item.title for item in parsed.items]
    return [f"{base[i % len(base)]} (desk note {i // len(base)})" for i in range(n)]


def child(path: str, n: int, threads: int | None, out: Path) -> None:
    """Load one path's embedder, embed the corpus, write the vectors and the figures."""
    import numpy as np

    from tapewatch.clients import embedder
    from tapewatch.settings import load_settings

    texts = corpus(n)
    settings = load_settings(None).model_copy(deep=True)
    settings.memory.embedder = path  # type: ignore[assignment]
    settings.memory.embed_threads = threads
    started = time.perf_counter()
    model = embedder(settings)
    model.embed(texts[:8])  # load (and, for ONNX, the probe check) plus one warm-up batch
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    vectors = model.embed(texts)
    took = time.perf_counter() - started
    np.save(out / f"{path}.npy", vectors)
    figures = {"load_s": loaded, "texts_per_s": n / took, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF)
               .ru_maxrss / 1024, "torch_imported": "torch" in sys.modules, "name": model.name}
    (out / f"{path}.json").write_text(json.dumps(figures))


def main() -> None:
    """Run each path in its own process and print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n, args.threads, args.out)
        return

    import numpy as np

    print(f"bench/embeddings.py: {args.n} texts, threads={args.threads or 'default'}, {platform.processor() or ''} "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="tapewatch-bench-emb-") as tmp:
        out = Path(tmp)
        for path in PATHS:
            command = [sys.executable, __file__, "--child", path, "--n", str(args.n), "--out", str(out)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            subprocess.run(command, check=True)
        figures = {p: json.loads((out / f"{p}.json").read_text()) for p in PATHS}
        reference = np.load(out / "minilm-torch.npy")
        base = figures["minilm-torch"]
        print(f"{'embedder':<14}{'name':<28}{'peak RSS MB':>12}{'x torch':>9}{'load s':>8}{'texts/s':>10}"
              f"{'x torch':>9}{'min cos':>11}{'torch?':>8}")
        for path in PATHS:
            f = figures[path]
            cosine = float(np.min(np.sum(np.load(out / f"{path}.npy") * reference, axis=1)))
            print(f"{path:<14}{f['name']:<28}{f['peak_rss_mb']:>12.0f}{f['peak_rss_mb'] / base['peak_rss_mb']:>9.2f}"
                  f"{f['load_s']:>8.1f}{f['texts_per_s']:>10.1f}{f['texts_per_s'] / base['texts_per_s']:>9.2f}"
                  f"{cosine:>11.7f}{'yes' if f['torch_imported'] else 'no':>8}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
