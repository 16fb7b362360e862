"""Choose the stance cascade's threshold on dev: the fast student, and the teacher where it is unsure.

A cascade scores every pair with the student (``newsmtsc-minilm-l6-blind``); a pair whose
highest class probability is below ``defer_below`` is also scored by the teacher
(``newsmtsc-mpnet-blind``, ~10x slower per pair) and gets the mean of the two models'
probabilities (``stance.scoring.StanceScorer``; a model folder whose ``config.json`` has a
``"cascade"`` entry loads as one).

Both models score NewsMTSC ``rw/dev`` and ``mt/dev`` and the opinion set's dev split once, in
the precision ``load_model`` picks here; the cascade's figures for every threshold on a grid
follow from those probabilities. The rule: the dev rule used for v2, v3 and v5 (mean NewsMTSC dev
macro-F1 plus opinion dev macro-F1), and among the thresholds within ``--tolerance`` of the best,
the smallest (the fewest teacher calls: speed). No test figure is read here; ``stance evaluate
... --model newsmtsc-blind-cascade`` and ``benchmarks/stance_newsmtsc.py`` read them after.

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/cascade.py --newsmtsc ../shared/data/newsmtsc \\
        --allsides ../shared/data/allsides [--out benchmarks/results/cascade.json] [--write]

``--min-speed R`` puts speed in the rule: the cascade is timed on the dev pairs at every
threshold, beside the raw all-MiniLM-L6-v2 fp32 encoder on the same sentences in the same run,
once in the precisions this CPU gets and once in those of a CPU without native bf16 (int8 or
fp32 per model, ``choose_precision``); among the thresholds at least ``R`` times as fast as the
raw encoder in both, the best dev rule wins.

``--teacher`` (repeatable: a shipped name or a folder) compares teachers: each gets its
threshold by the rule, and the teacher whose cascade has the larger dev rule is chosen.
``--write`` stores the choice in ``stance/models/newsmtsc-blind-cascade/config.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import _git_commit, _write

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CASCADE_DIR = ROOT / "stance" / "models" / "newsmtsc-blind-cascade"
STUDENT = "newsmtsc-minilm-l6-blind"
TEACHER = "newsmtsc-mpnet-blind"
GRID = tuple(round(0.34 + 0.01 * i, 2) for i in range(37))  # 0.34 ... 0.70


def dev_data(newsmtsc: str, allsides: str) -> dict[str, Any]:
    """rw/dev and mt/dev pairs and the rebuilt opinion dev rows (read once, for every model)."""
    from stance.opinion import load_pairs, rebuild_pairs
    from stance.training import load_split

    data: dict[str, Any] = {f"{s}/dev": load_split(newsmtsc, f"{s}/dev") for s in ("rw", "mt")}
    rebuilt = rebuild_pairs(allsides, load_pairs())
    data["opinion/dev"] = rebuilt[(rebuilt["split"] == "dev") & (rebuilt["label"] != "none")]
    return data


def dev_probabilities(data: dict[str, Any], model: str) -> dict[str, Any]:
    """Labels and class probabilities of ``model`` on rw/dev, mt/dev and opinion dev."""
    from stance.opinion import STANCE_LABELS
    from stance.scoring import load_model, resolve_model_dir
    from stance.training import _predict_pairs

    scorer = load_model(resolve_model_dir(model))
    out: dict[str, Any] = {"precision": scorer.precision}
    for split in ("rw/dev", "mt/dev"):
        pairs = data[split]
        out[split] = ([p.label for p in pairs], _predict_pairs(scorer, pairs))
    rows = data["opinion/dev"]
    probs = scorer.predict_proba(
        rows["sentence"].tolist(),
        rows["mention_start"].astype(int).tolist(),
        rows["mention_end"].astype(int).tolist(),
        others=[list(o) for o in rows["others"]],
    )
    out["opinion/dev"] = ([STANCE_LABELS.index(v) for v in rows["label"]], probs)
    return out


def cascade_probs(student: np.ndarray, teacher: np.ndarray, defer_below: float) -> np.ndarray:
    """The cascade's probabilities: the mean of both models where the student is unsure."""
    from stance.scoring import unsure

    hard = unsure(student, defer_below)
    out = student.copy()
    out[hard] = (student[hard] + teacher[hard]) / 2
    return out


def grid(student: dict[str, Any], teacher: dict[str, Any]) -> list[dict[str, Any]]:
    """The cascade's dev figures and deferred fractions for every threshold of ``GRID``."""
    from stance.scoring import unsure
    from stance.training import classification_metrics

    rows = []
    for below in GRID:
        row: dict[str, Any] = {"defer_below": below}
        for split in ("rw/dev", "mt/dev", "opinion/dev"):
            y, s = student[split]
            probs = cascade_probs(s, teacher[split][1], below)
            row[split] = classification_metrics(y, probs.argmax(axis=1))["macro_f1"]
            row[f"deferred {split}"] = round(float(unsure(s, below).mean()), 4)
        row["dev_rule"] = round((row["rw/dev"] + row["mt/dev"]) / 2 + row["opinion/dev"], 4)
        rows.append(row)
    return rows


def choose(rows: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """The smallest threshold whose dev rule is within ``tolerance`` of the best."""
    best = max(r["dev_rule"] for r in rows)
    return min(
        (r for r in rows if r["dev_rule"] >= best - tolerance), key=lambda r: r["defer_below"]
    )


def speed_ratios(
    newsmtsc: str, pairs: list[Any], student: str, teacher: str
) -> dict[str, list[float]]:
    """Cascade pairs/s over raw-encoder sentences/s on the dev pairs, per ``GRID`` threshold.

    Two regimes, each in one run: ``native`` (this CPU's precision choice) and ``no_bf16`` (the
    choice of a CPU without native bf16). The student's time is the faster of two passes; the
    teacher is timed on the pairs each threshold defers. Scored as ``stance analyze`` scores:
    one-thread batches, one per core.
    """
    import dataclasses

    from stance_newsmtsc import raw_encoder_speed

    from stance.batching import usable_cores
    from stance.scoring import (
        NO_NATIVE_BF16,
        load_model,
        resolve_model_dir,
        unsure,
    )
    from stance.training import _others

    args = ([p.sentence for p in pairs], [p.start for p in pairs], [p.end for p in pairs])
    others = _others(pairs)
    out: dict[str, list[float]] = {}
    for regime, flags in (("native", None), ("no_bf16", NO_NATIVE_BF16)):
        scorers = []
        for name in (student, teacher):
            folder = resolve_model_dir(name)
            # the native regime reuses the models dev_probabilities loaded (same cache key)
            scorer = load_model(folder) if flags is None else load_model(folder, flags=flags)
            scorer = dataclasses.replace(scorer, num_threads=1, workers=usable_cores())
            scorer.predict_proba(*(a[:32] for a in args), others=others[:32])  # warm up
            scorers.append(scorer)
        raw = raw_encoder_speed(newsmtsc, "dev")
        times, probs = [], None
        for _ in range(2):
            t0 = time.perf_counter()
            probs = scorers[0].predict_proba(*args, others=others)
            times.append(time.perf_counter() - t0)
        assert probs is not None
        ratios = []
        for below in GRID:
            hard = np.flatnonzero(unsure(probs, below))
            t0 = time.perf_counter()
            scorers[1].predict_proba(
                *([a[i] for i in hard] for a in args), others=[others[i] for i in hard]
            )
            seconds = min(times) + time.perf_counter() - t0
            ratios.append(round(len(pairs) / seconds / raw, 3))
        out[regime] = ratios
    return out


def main() -> None:
    from stance.training import classification_metrics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--newsmtsc", required=True, help="NewsMTSC folder")
    ap.add_argument("--allsides", required=True, help="AllSides folder (opinion pairs)")
    ap.add_argument("--student", default=STUDENT, help="a shipped model name or a folder")
    ap.add_argument("--teacher", action="append", help=f"repeatable (default: {TEACHER})")
    ap.add_argument("--tolerance", type=float, default=0.005)
    ap.add_argument(
        "--min-speed",
        type=float,
        help="keep only thresholds this many times as fast as the raw encoder (see above)",
    )
    ap.add_argument("--out", default=str(RESULTS / "cascade.json"))
    ap.add_argument("--write", action="store_true", help="store the choice in the cascade's folder")
    args = ap.parse_args()

    t0 = time.perf_counter()
    rule = (
        "the dev rule (mean of rw/dev and mt/dev macro-F1, plus opinion dev macro-F1); the "
        f"smallest defer_below within {args.tolerance} of the best on the grid; among teachers, "
        "the larger dev rule at its threshold"
    )
    if args.min_speed:
        rule = (
            "the best dev rule (mean of rw/dev and mt/dev macro-F1, plus opinion dev macro-F1) "
            f"among the thresholds at least {args.min_speed}x as fast as the raw encoder on the "
            "dev pairs, with this CPU's precisions and with those of a CPU without native bf16; "
            "among teachers, the larger dev rule at its threshold"
        )
    data = dev_data(args.newsmtsc, args.allsides)
    probs = {args.student: dev_probabilities(data, args.student)}
    teachers: dict[str, Any] = {}
    for teacher in args.teacher or [TEACHER]:
        probs[teacher] = dev_probabilities(data, teacher)
        rows = grid(probs[args.student], probs[teacher])
        if args.min_speed:
            speed = speed_ratios(
                args.newsmtsc, data["rw/dev"] + data["mt/dev"], args.student, teacher
            )
            for row, native, no_bf16 in zip(rows, speed["native"], speed["no_bf16"], strict=True):
                row["speed_ratio"] = {"native": native, "no_bf16": no_bf16}
            fast = [r for r in rows if min(r["speed_ratio"].values()) >= args.min_speed]
            if not fast:
                raise SystemExit(f"No threshold is {args.min_speed}x as fast as the raw encoder.")
            best = max(fast, key=lambda r: (r["dev_rule"], -r["defer_below"]))
        else:
            best = choose(rows, args.tolerance)
        teachers[teacher] = {"chosen": best, "grid": rows}
    winner = max(teachers, key=lambda t: teachers[t]["chosen"]["dev_rule"])
    chosen = {"teacher": winner, **teachers[winner]["chosen"]}
    alone = {
        name: {
            split: classification_metrics(p[split][0], p[split][1].argmax(axis=1))["macro_f1"]
            for split in ("rw/dev", "mt/dev", "opinion/dev")
        }
        for name, p in probs.items()
    }
    record = {
        "rule": rule,
        "student": args.student,
        "chosen": chosen,
        "alone": alone,
        "precision": {name: p["precision"] for name, p in probs.items()},
        "teachers": teachers,
        "seconds": round(time.perf_counter() - t0, 1),
        "git_commit": _git_commit(),
        "machine": platform.machine(),
    }
    _write(Path(args.out), record)
    print(json.dumps({k: record[k] for k in ("chosen", "alone", "precision")}, indent=2))
    if args.write:
        path = CASCADE_DIR / "config.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        config["cascade"] |= {
            "student": args.student,
            "teacher": winner,
            "defer_below": chosen["defer_below"],
        }
        config["dev_metrics"] = {
            split: {"macro_f1": chosen[split]} for split in ("rw/dev", "mt/dev", "opinion/dev")
        }
        config["choice"] = {
            "rule": rule,
            "dev_rule": chosen["dev_rule"],
            "deferred": {k: v for k, v in chosen.items() if k.startswith("deferred")},
            "speed_ratio_dev": chosen.get("speed_ratio"),
            "benchmark": "benchmarks/cascade.py -> benchmarks/results/cascade.json",
        }
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
