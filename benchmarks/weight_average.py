"""Choose a weight average ("model soup") of stance models on dev, then read its test figures.

Every candidate is a uniform average of some of the named models (``stance average``,
``stance.training.average_weights``), or one model alone. Each is scored in fp32 on:

- NewsMTSC ``rw/dev`` and ``mt/dev`` (macro-F1);
- the opinion set's dev split (``stance/data/opinion_pairs.csv``, rebuilt from AllSides);
- the 40 hand-labelled seed pairs (``tests/data/seed_stance_check.csv``), whose gate in the
  test suite is at least 30 right.

The choice is the one made for v2 and v3: the largest mean NewsMTSC dev macro-F1 plus opinion
dev macro-F1, among the candidates that pass the seed gate. Test (NewsMTSC rw/mt and opinion) is
read only for the chosen candidate and for the reference models given with ``--reference``.

``--dev-only`` reads no test figure at all: a look at new ingredients before the round that
chooses.

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/weight_average.py --newsmtsc ../shared/data/newsmtsc \\
        --allsides ../shared/data/allsides --model A=/path/to/A \\
        --model v2=newsmtsc-minilm-l6-blind-v2 --model v3=newsmtsc-minilm-l6-blind-v3 \\
        --candidates A,v2,A+v2,A+v3,A+v2+v3 --reference v2 --runs /tmp/soups \\
        [--out FILE (default: benchmarks/results/weight_average.json)]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill_sweep import split_scores
from scale import _git_commit, _write

SEED_PAIRS = Path(__file__).resolve().parent.parent / "tests" / "data" / "seed_stance_check.csv"
SEED_GATE = 30
RESULTS = Path(__file__).resolve().parent / "results"


def score(model_dir: Path, args: argparse.Namespace, opinion: Any, splits: tuple[str, ...]) -> dict:
    from stance.scoring import load_model, score_mentions

    scorer = load_model(model_dir, "fp32")
    out: dict[str, Any] = split_scores(scorer, args.newsmtsc, opinion, splits)
    if "dev" not in splits:
        return out
    seeds = pd.read_csv(SEED_PAIRS)
    scored = score_mentions(seeds, progress=False, model=scorer)
    out["seed_pairs_right"] = int((scored["stance"] == seeds["label"]).sum())
    return out


def main() -> None:
    from stance.opinion import load_pairs, rebuild_pairs
    from stance.scoring import file_sha256, resolve_model_dir
    from stance.training import average_weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--newsmtsc", required=True, help="NewsMTSC folder")
    ap.add_argument("--allsides", required=True, help="AllSides folder (opinion pairs)")
    ap.add_argument("--model", action="append", required=True, metavar="NAME=MODEL")
    ap.add_argument("--candidates", required=True, help="comma-separated; + joins ingredients")
    ap.add_argument("--reference", default="", help="comma-separated names also read on test")
    ap.add_argument("--runs", required=True, help="folder for the averaged models")
    ap.add_argument("--out", default=str(RESULTS / "weight_average.json"))
    ap.add_argument(
        "--dev-only",
        action="store_true",
        help="score the candidates on dev and name the rule's choice, but read no test figure "
        "(a look at new ingredients before the round that chooses)",
    )
    args = ap.parse_args()

    models = {}
    for item in args.model:
        name, sep, model = item.partition("=")
        if not sep:
            ap.error(f"--model must look like NAME=MODEL. Got {item!r}.")
        models[name] = resolve_model_dir(model)
    candidates = [c for c in args.candidates.split(",") if c]
    references = [r for r in args.reference.split(",") if r]
    unknown = {p for c in candidates + references for p in c.split("+")} - set(models)
    if unknown:
        ap.error(f"unknown model names {sorted(unknown)}; named: {sorted(models)}")
    started = time.time()
    opinion = rebuild_pairs(args.allsides, load_pairs())
    runs = Path(args.runs)
    dirs: dict[str, Path] = {}
    results: dict[str, dict[str, Any]] = {}
    for cand in candidates:
        parts = cand.split("+")
        if len(parts) == 1:
            dirs[cand] = models[cand]
        else:
            dirs[cand] = runs / cand.replace("+", "_")
            average_weights(
                [models[p] for p in parts], dirs[cand], args.newsmtsc, model_id=f"soup-{cand}"
            )
        results[cand] = score(dirs[cand], args, opinion, ("dev",))
        print(cand, json.dumps(results[cand]), flush=True)
    eligible = [c for c in candidates if results[c]["seed_pairs_right"] >= SEED_GATE]
    chosen = max(eligible, key=lambda c: results[c]["select"]) if eligible else None
    for name in [] if args.dev_only else ([chosen] if chosen else []) + references:
        target = Path(dirs.get(name, models.get(name)))
        if name not in results:  # a reference that was not a candidate
            results[name] = score(target, args, opinion, ("dev",))
        results[name].update(score(target, args, opinion, ("test",)))
        print(name, "(test read)", json.dumps(results[name]), flush=True)
    record = {
        "produced_by": "benchmarks/weight_average.py",
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "rule": "max (rw/dev + mt/dev) / 2 + opinion/dev among candidates with "
        f">= {SEED_GATE} of 40 seed pairs right; test read for the chosen one and references",
        "test_read": not args.dev_only,
        "models": {
            name: {"dir": str(d), "sha256": file_sha256(Path(d) / "model-0.safetensors")}
            for name, d in models.items()
        },
        "chosen": chosen,
        "wall_s": round(time.time() - started, 1),
        "results": results,
    }
    _write(Path(args.out), record)
    print(json.dumps({"chosen": chosen, **(results.get(chosen) or {})}))


if __name__ == "__main__":
    main()
