"""Train several distilled students at once (one process each) and score them on every split.

The recipe is the shipped v2's (README, "Distillation"): NewsMTSC twice per epoch plus the
teacher-labelled transfer set with the teacher bias, ``w = 0.5``; each named variant changes
the epochs, the seed or adds the hand-labelled opinion pairs. Every student is scored in fp32
on NewsMTSC rw/mt dev and test and on the opinion set's dev and test splits; ``select`` is the
dev-only choice rule used for v2 (mean NewsMTSC dev macro-F1 plus opinion dev macro-F1). The
figures go to ``--out`` as JSON, the students to ``--runs``.

Made for a lent GPU (``--device cuda``: four students of three epochs took 431 s on one H200),
but it runs the same on CPU (about an hour per student-epoch on one core here). Where the
AllSides file or the base encoder's package cannot travel, ``--prebuild FILE`` rebuilds the
transfer and opinion pairs once into a small gzip pickle that ``--prebuilt FILE`` reads
instead, and ``--base-dir`` names a folder holding the base encoder.

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/distill_sweep.py --newsmtsc ../shared/data/newsmtsc \\
        --allsides ../shared/data/allsides --device cuda --runs /tmp/runs \\
        --out benchmarks/results/distill_sweep.json [--variants A_v2x3_s4,C_v2op2x3_s4]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: name -> what differs from the v2 recipe (``opinion_repeat`` 0: no opinion pairs)
VARIANTS: dict[str, dict[str, Any]] = {
    "A_v2x3_s4": {"seed": 4, "epochs": 3},
    "B_v2x3_s6": {"seed": 6, "epochs": 3},
    "C_v2op2x3_s4": {"seed": 4, "epochs": 3, "opinion_repeat": 2},
    "D_v2op4x3_s4": {"seed": 4, "epochs": 3, "opinion_repeat": 4},
}
TRANSFER_BIAS = (0.0, 0.75, -0.25)


def _use_base(base_dir: str | None) -> None:
    if base_dir:
        import stance.scoring

        path = Path(base_dir).resolve()
        stance.scoring.base_encoder_dir = lambda: path  # type: ignore[assignment]


def _pairs(args: argparse.Namespace) -> dict[str, Any]:
    """The transfer set, the opinion training pairs and the rebuilt opinion evaluation pairs."""
    if args.prebuilt:
        with gzip.open(args.prebuilt, "rb") as handle:
            return pickle.load(handle)  # a file this script wrote (--prebuild)
    from stance.opinion import load_pairs, rebuild_pairs
    from stance.training import load_opinion_train, load_transfer

    return {
        "transfer": load_transfer(args.transfer, args.allsides, logit_bias=TRANSFER_BIAS),
        "opinion_train": load_opinion_train(args.allsides),
        "opinion_eval": rebuild_pairs(args.allsides, load_pairs()),
    }


def _write_pairs(path: str | Path, pairs: dict[str, Any]) -> None:
    with gzip.open(path, "wb", compresslevel=9) as handle:
        pickle.dump(pairs, handle)


def train_one(args: argparse.Namespace, name: str) -> None:
    from stance.training import train_newsmtsc

    pairs = _pairs(args)
    variant = dict(VARIANTS[name])
    repeat = variant.pop("opinion_repeat", 0)
    if args.limit:
        variant["epochs"] = 1
    train_newsmtsc(
        args.newsmtsc,
        Path(args.runs) / name,
        transfer=pairs["transfer"],
        transfer_bias=TRANSFER_BIAS,
        distill_weight=0.5,
        gold_repeat=2,
        opinion=pairs["opinion_train"] if repeat else None,
        opinion_repeat=max(repeat, 1),
        calibrate=False,
        num_threads=args.threads,
        progress=False,
        device=args.device,
        checkpoint_dir=Path(args.runs) / f"{name}.ckpt",
        resume=True,
        limit=args.limit,
        **variant,
    )


def split_scores(
    scorer: Any, newsmtsc: str, opinion_eval: Any, splits: tuple[str, ...], limit: int | None = None
) -> dict[str, float]:
    """NewsMTSC rw/mt and opinion macro-F1 for each split; with dev, the dev rule's ``select``."""
    from stance.opinion import evaluate_pairs, model_predictor
    from stance.training import evaluate_newsmtsc

    out: dict[str, float] = {}
    if limit:  # smoke run: the first pairs of each set
        opinion_eval = opinion_eval.groupby("split").head(limit)
    for split in splits:
        news = evaluate_newsmtsc(newsmtsc, split, model=scorer, limit=limit)
        for subset in ("rw", "mt"):
            out[f"{subset}/{split}"] = news[f"{subset}/{split}"]["macro_f1"]
        rows = opinion_eval[opinion_eval["split"] == split]
        out[f"opinion/{split}"] = evaluate_pairs(rows, model_predictor(scorer), name="m")[
            "macro_f1"
        ]
    if "dev" in splits:
        out["select"] = round((out["rw/dev"] + out["mt/dev"]) / 2 + out["opinion/dev"], 4)
    return out


def evaluate(args: argparse.Namespace, name: str, opinion_eval: Any) -> dict[str, Any]:
    from stance.scoring import load_model

    scorer = load_model(str(Path(args.runs) / name), "fp32")
    scorer.members = [m.to(args.device) for m in scorer.members]
    out: dict[str, Any] = split_scores(
        scorer, args.newsmtsc, opinion_eval, ("dev", "test"), args.limit
    )
    config = json.loads((Path(args.runs) / name / "config.json").read_text(encoding="utf-8"))
    out["history"] = config["members_dev"][0]["history"]
    out["train_wall_time_s"] = config["train_wall_time_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--newsmtsc", required=True, help="NewsMTSC folder")
    ap.add_argument("--allsides", help="AllSides folder (not needed with --prebuilt)")
    ap.add_argument("--transfer", default="data/transfer", help="teacher soft-label shards")
    ap.add_argument("--prebuild", metavar="FILE", help="only write the rebuilt pairs to FILE")
    ap.add_argument("--prebuilt", metavar="FILE", help="read the rebuilt pairs from FILE")
    ap.add_argument("--base-dir", help="folder of the base encoder (default: its pip package)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per student")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    ap.add_argument("--runs", default="distill-runs", help="where the students are written")
    ap.add_argument("--out", default="benchmarks/results/distill_sweep.json")
    ap.add_argument("--limit", type=int, help="smoke run: this many pairs of every set, 1 epoch")
    ap.add_argument("--train-one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    _use_base(args.base_dir)
    if not args.prebuilt and not args.allsides:
        ap.error("--allsides is needed unless --prebuilt names the rebuilt pairs")
    if args.prebuild:
        _write_pairs(args.prebuild, _pairs(args))
        return
    if args.train_one:
        train_one(args, args.train_one)
        return
    names = [n for n in args.variants.split(",") if n]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    started = time.time()
    # rebuilt once, here: every student's process reads the file instead of the AllSides corpus
    pairs = _pairs(args)
    if not args.prebuilt:
        args.prebuilt = str(Path(args.runs) / "pairs.pkl.gz")
        _write_pairs(args.prebuilt, pairs)
    procs = {}
    for name in names:  # one process per student: on a GPU they share the device
        log = open(Path(args.runs) / f"{name}.log", "w", encoding="utf-8")
        cmd = [sys.executable, __file__, *sys.argv[1:], "--prebuilt", args.prebuilt]
        cmd += ["--train-one", name]
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    failed = [n for n, p in procs.items() if p.wait() != 0]
    results = {
        name: evaluate(args, name, pairs["opinion_eval"]) for name in names if name not in failed
    }
    record = {
        "recipe": "v2: NewsMTSC x2 + transfer (teacher bias 0,0.75,-0.25), w = 0.5, fp32 scores",
        "device": args.device,
        "wall_s": round(time.time() - started, 1),
        "failed": failed,
        "results": results,
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
