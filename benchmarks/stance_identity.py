"""Identity bias of a stance model: does the *name* of the target move the score?

Every NewsMTSC pair of the chosen split is scored again with its target mention replaced by
each name of a panel (the four default targets by country, capital and leader, spelled as the alias lexicon finds them, and five control
countries). The sentence is the same each time, so a model that reads how the sentence portrays
its target gives every name the same score; differences are a prior about the name, learned from
whichever actors the training news happened to cover. Reported per model:

- ``per_name``: mean ``stance_score`` and share of ``negative`` labels for each name;
- ``spread``: largest minus smallest per-name mean;
- ``mean_pair_range``: mean over pairs of (max − min score across names) — how far one
  sentence's score moves when only the name changes.

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/stance_identity.py --data /path/to/newsmtsc \
        [--split dev] [--model-dir DIR ...] [--limit N] [--out FILE] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

PANEL: tuple[str, ...] = (
    "Russia",
    "Moscow",
    "Putin",
    "United States",
    "Washington",
    "Turkey",
    "Ankara",
    "Erdogan",
    "Iran",
    "Tehran",
    "Canada",
    "France",
    "Japan",
    "Brazil",
    "Germany",
)


def substituted(pairs: list, names: tuple[str, ...]) -> tuple[list[str], list[int], list[int]]:
    """Return sentences with each pair's mention replaced by each name (pair-major order)."""
    sentences, starts, ends = [], [], []
    for p in pairs:
        for name in names:
            sentences.append(p.sentence[: p.start] + name + p.sentence[p.end :])
            starts.append(p.start)
            ends.append(p.start + len(name))
    return sentences, starts, ends


def identity_bias(scorer, pairs: list, names: tuple[str, ...] = PANEL) -> dict:
    """Score every pair under every name and summarise how much the name alone matters."""
    import numpy as np

    sentences, starts, ends = substituted(pairs, names)
    probs = scorer.predict_proba(sentences, starts, ends, progress=True)
    score = (probs[:, 2] - probs[:, 0]).reshape(len(pairs), len(names))
    negative = (probs.argmax(axis=1) == 0).reshape(len(pairs), len(names))
    means = score.mean(axis=0)
    return {
        "n_pairs": len(pairs),
        "per_name": {
            name: {
                "mean_score": round(float(means[j]), 4),
                "share_negative": round(float(negative[:, j].mean()), 4),
            }
            for j, name in enumerate(names)
        },
        "spread": round(float(means.max() - means.min()), 4),
        "mean_pair_range": round(float(np.mean(score.max(axis=1) - score.min(axis=1))), 4),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; return (and print) the result dict."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from stance import scoring, training

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="NewsMTSC folder (rw/, mt/)")
    parser.add_argument("--split", default="dev", choices=["dev", "test"])
    parser.add_argument("--model-dir", action="append", help="model folder(s); default: shipped")
    parser.add_argument("--limit", type=int, help="use the first N pairs of each subset")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument(
        "--write",
        action="store_true",
        help="write each model's result to <model-dir>/identity.json",
    )
    args = parser.parse_args(argv)

    pairs = []
    for subset in training.EVAL_SUBSETS:
        pairs.extend(training.load_split(args.data, f"{subset}/{args.split}")[: args.limit])
    result: dict = {"split": args.split, "panel": list(PANEL), "models": {}}
    for model_dir in [str(scoring.resolve_model_dir(m)) for m in args.model_dir or [None]]:
        t0 = time.perf_counter()
        scorer = scoring.load_model(model_dir)
        bias = identity_bias(scorer, pairs)
        bias["model_id"] = scorer.config.get("model_id")
        bias["mask_target"] = bool(scorer.config.get("mask_target"))
        bias["seconds"] = round(time.perf_counter() - t0, 1)
        result["models"][Path(model_dir).name] = bias
        if args.write:
            doc = {"split": args.split, **bias}
            path = Path(model_dir) / "identity.json"
            path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return result


if __name__ == "__main__":
    main()
