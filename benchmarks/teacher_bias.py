"""Fit a prior shift for a stance model on the opinion set's dev split (never on test).

NewsMTSC-trained models call many neutral mentions in opinion writing negative. This script
scores the opinion pairs of ``--split dev`` with ``--model``, then searches offsets ``b`` added
to the log-probabilities (negative fixed at 0; neutral and positive on a grid) for the best
dev macro-F1, and prints them with the dev figure before and after. The offsets are meant for
``stance train newsmtsc --transfer-bias 0,NEU,POS``: they reshape the teacher's soft labels
on the transfer set, not the shipped model. The test split is scored only with ``--report-test``
(to report, never to choose).

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/teacher_bias.py --data ../shared/data/allsides \\
        --model newsmtsc-mpnet-blind [--report-test]
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main() -> None:
    from stance.opinion import STANCE_LABELS, load_pairs, rebuild_pairs
    from stance.scoring import load_model, resolve_model_dir
    from stance.training import classification_metrics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="AllSides folder or its .jsonl.gz")
    ap.add_argument("--model", default="newsmtsc-mpnet-blind")
    ap.add_argument("--step", type=float, default=0.25, help="grid step of the offsets")
    ap.add_argument("--report-test", action="store_true", help="also print the test figures")
    args = ap.parse_args()

    pairs = load_pairs()
    rebuilt = rebuild_pairs(args.data, pairs[pairs["label"] != "none"])
    scorer = load_model(resolve_model_dir(args.model))
    probs = scorer.predict_proba(
        rebuilt["sentence"].tolist(),
        rebuilt["mention_start"].astype(int).tolist(),
        rebuilt["mention_end"].astype(int).tolist(),
        others=[list(o) for o in rebuilt["others"]],
    )
    logp = np.log(np.clip(probs, 1e-9, None))
    y = np.array([STANCE_LABELS.index(label) for label in rebuilt["label"]])
    dev = (rebuilt["split"] == "dev").to_numpy()

    def f1(bias: np.ndarray, mask: np.ndarray) -> float:
        pred = (logp[mask] + bias).argmax(axis=1)
        return float(classification_metrics(y[mask].tolist(), pred.tolist())["macro_f1"])

    grid = np.round(np.arange(-2.0, 3.0 + 1e-9, args.step), 4)
    # Ties go to the smallest shift (ordered by |offsets|, then values): the least change.
    candidates = sorted(
        ((float(a), float(c)) for a in grid for c in grid), key=lambda t: (abs(t[0]) + abs(t[1]), t)
    )
    best = max(candidates, key=lambda t: f1(np.array([0.0, *t]), dev))
    bias = np.array([0.0, *best])
    out = {
        "model": args.model,
        "bias": [float(b) for b in bias],
        "dev_macro_f1": {
            "before": round(f1(np.zeros(3), dev), 4),
            "after": round(f1(bias, dev), 4),
        },
        "n_dev": int(dev.sum()),
    }
    if args.report_test:
        out["test_macro_f1"] = {
            "before": round(f1(np.zeros(3), ~dev), 4),
            "after": round(f1(bias, ~dev), 4),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
