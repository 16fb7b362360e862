"""Benchmark: memory of the topics stage's per-row arrays at full-corpus size, old way and new.

The full AllSides corpus has 1,732,055 sentences in 37,554 articles. Two per-row arrays of the
topics fit are built here on synthetic data of that shape, both the way the code used to build
them and the way it does now, under ``tracemalloc`` (kept = still allocated when built,
peak = the most allocated while building):

- *labels* of a sampled fit (``TopicModel._label_rest``): a per-row string, then a fixed-width
  text copy (old), against one shared string per topic (new, f6c8bb2);
- *article ids* of every row (``TopicModel.fit``): a Python string per row (old), against
  ``pd.factorize`` codes and the unique ids (new, 2bdba96).

Usage: ``python benchmarks/topics_memory.py [--out benchmarks/results/topics_memory.json]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import _write

RESULT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "topics_memory.json"

SENTENCES, ARTICLES, BLOCK = 1_732_055, 37_554, 20_000


def _measure(build: Callable[[], Any]) -> dict[str, float]:
    tracemalloc.start()
    out = build()
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del out
    return {"kept_mib": round(kept / 2**20, 1), "peak_mib": round(peak / 2**20, 1)}


def labels_case(rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """21 topic names of up to 18 characters, drawn per row as ``<U`` blocks of 20,000 rows."""
    names = [f"d{i:02d}_russia_ukraine"[: 8 + i] for i in range(20)] + ["noise"]
    src = np.array(names, dtype=str)[rng.integers(0, len(names), SENTENCES)]

    def old() -> np.ndarray:
        labels = np.empty(SENTENCES, dtype=object)
        for lo in range(0, SENTENCES, BLOCK):
            labels[lo : lo + BLOCK] = src[lo : lo + BLOCK]
        return labels.astype(str)

    def new() -> np.ndarray:
        labels = np.empty(SENTENCES, dtype=object)
        shared: dict[str, str] = {}
        for lo in range(0, SENTENCES, BLOCK):
            block = src[lo : lo + BLOCK].tolist()
            labels[lo : lo + BLOCK] = [shared.setdefault(v, v) for v in block]
        return labels

    return {"old": _measure(old), "new": _measure(new)}


def article_ids_case(rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """12-character hex ids (as ingest makes them), every article at least one sentence."""
    sizes = rng.multinomial(SENTENCES - ARTICLES, np.full(ARTICLES, 1 / ARTICLES)) + 1
    ids = [hashlib.sha256(str(i).encode()).hexdigest()[:12] for i in range(ARTICLES)]
    column = pd.Series(np.repeat(np.array(ids, dtype=object), sizes)).astype("str")
    return {
        "old": _measure(lambda: column.astype(str).to_numpy()),
        "new": _measure(lambda: pd.factorize(column.astype(str))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    result = {
        "benchmark": "benchmarks/topics_memory.py",
        "rows": SENTENCES,
        "articles": ARTICLES,
        "labels": labels_case(rng),
        "article_ids": article_ids_case(rng),
    }
    print(json.dumps(result, indent=2))
    _write(args.out, result)


if __name__ == "__main__":
    main()
