"""Distillation on the gold set: the teacher's soft labels on the NewsMTSC training pairs.

The transfer set (``distill_transfer.py``) teaches the student how the teacher reads AllSides
mentions; this file gives it the teacher's reading of the NewsMTSC training pairs themselves,
so that a gold pair can contribute ``(1 - a)·CE(gold) + a·KL(teacher‖student)`` (Hinton et
al.'s knowledge distillation; ``stance train ... --gold-teacher FILE --gold-distill a``).

The output is one Parquet file with a row per training pair, in ``load_split(DATA, "train")``
order: the sentence's hash (``opinion.sentence_hash``, as in the opinion reference files) and its
mention offsets (so a file that does
not belong to the training file is refused, ``training.load_gold_teacher``) and the teacher's
three probabilities; a JSON file beside it records the teacher, its precision, the training
file's sha256 and the time taken. No sentence text is stored.

Usage::

    make accurate   # the teacher's base weights
    HF_HUB_OFFLINE=1 python benchmarks/distill_gold.py --data ../shared/data/newsmtsc \\
        --out data/transfer_gold/newsmtsc-train.parquet
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

TEACHER = "newsmtsc-mpnet-blind"


def main() -> None:
    import pandas as pd
    import torch

    from stance.opinion import sentence_hash
    from stance.scoring import file_sha256, load_model, resolve_model_dir
    from stance.training import _predict_pairs, load_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="NewsMTSC folder with train.jsonl")
    ap.add_argument("--out", required=True, type=Path, help="the Parquet file to write")
    ap.add_argument("--teacher", default=TEACHER, help="teacher model (name or folder)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    pairs = load_split(args.data, "train")
    scorer = load_model(resolve_model_dir(args.teacher))
    t0 = time.perf_counter()
    probs = _predict_pairs(scorer, pairs)
    seconds = time.perf_counter() - t0
    frame = pd.DataFrame(
        {
            "sha256": [sentence_hash(p.sentence) for p in pairs],
            "mention_start": [p.start for p in pairs],
            "mention_end": [p.end for p in pairs],
        }
    )
    frame[["p_negative", "p_neutral", "p_positive"]] = probs.astype("float32")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(args.out, index=False)
    meta = {
        "teacher": scorer.config.get("model_id"),
        "precision": scorer.precision,
        "train_file": "train.jsonl",
        "train_sha256": file_sha256(args.data / "train.jsonl"),
        "pairs": len(pairs),
        "seconds": round(seconds, 1),
        "pairs_per_s": round(len(pairs) / seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "teacher_accuracy_on_train": round(
            float((probs.argmax(axis=1) == [p.label for p in pairs]).mean()), 4
        ),
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
