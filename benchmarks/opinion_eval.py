"""Opinion-writing evaluation: VADER, the default and the identity-aware model, dev and test.

Rebuilds the hand-labelled (sentence, target) pairs of ``stance/data/opinion_pairs.csv`` from
the shared AllSides file (see ``stance.opinion``) and evaluates each model on each split with
``stance.opinion.evaluate_opinion`` — the same function ``stance evaluate opinion`` calls — and
writes every result to one JSON file. Dev is for tuning, test for reporting.

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/opinion_eval.py --data ../shared/data/allsides \
        [--out benchmarks/results/opinion_eval.json] [--write]

``--write`` also stores each shipped model's figures (and VADER's, for comparison) as
``opinion.json`` in the model's folder, where the validation report finds them.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

# The accurate model and the cascade need the mpnet base weights: `make accurate`.
MODELS = (
    "vader",
    "newsmtsc-minilm-l6-blind",
    "newsmtsc-minilm-l6-blind-v2",
    "newsmtsc-minilm-l6-blind-v3",
    "newsmtsc-minilm-l6-blind-v6",
    "newsmtsc-minilm-l6",
    "newsmtsc-mpnet-blind",
    "newsmtsc-mpnet-blind-v2",
    "newsmtsc-blind-cascade",
)
SPLITS = ("dev", "test")


def main() -> None:
    from stance import __version__
    from stance.opinion import evaluate_opinion, load_pairs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="AllSides folder or .jsonl.gz")
    parser.add_argument("--out", default="benchmarks/results/opinion_eval.json")
    parser.add_argument(
        "--write", action="store_true", help="also write opinion.json into each model folder"
    )
    args = parser.parse_args()

    pairs = load_pairs()
    results = []
    for model in MODELS:
        for split in SPLITS:
            t0 = time.perf_counter()
            result = evaluate_opinion(
                args.data,
                split,
                model=None if model == "vader" else model,
                baseline=model == "vader",
                pairs=pairs,
            )
            result["seconds"] = round(time.perf_counter() - t0, 1)
            print(
                f"{model:26s} {split:4s} macro-F1 {result['macro_f1']:.3f} "
                f"acc {result['accuracy']:.3f} n={result['n_pairs']}"
            )
            results.append(result)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    out = {
        "produced_by": "benchmarks/opinion_eval.py (stance.opinion.evaluate_opinion)",
        "stance_version": __version__,
        "git_commit": commit,
        "python": platform.python_version(),
        "reference_file": "stance/data/opinion_pairs.csv",
        "n_references": len(pairs),
        "results": results,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    if args.write:
        from stance.scoring import resolve_model_dir

        by_model: dict[str, dict[str, dict]] = {}
        for r in results:
            by_model.setdefault(r["model"], {})[r["split"]] = r
        vader = next(v for k, v in by_model.items() if "vader" in k.lower())
        for name in MODELS[1:]:
            model_dir = resolve_model_dir(name)
            mine = next(v for k, v in by_model.items() if Path(str(k)).name == name)
            record = {
                "produced_by": out["produced_by"],
                "git_commit": commit,
                "reference_file": out["reference_file"],
                "model": name,
                "results": mine,
                "baseline_vader": vader,
            }
            (model_dir / "opinion.json").write_text(json.dumps(record, indent=2) + "\n")
            print(f"wrote {model_dir / 'opinion.json'}")


if __name__ == "__main__":
    main()
