"""NewsMTSC benchmark of the shipped stance model (and the VADER sentence-level floor).

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/stance_newsmtsc.py --data /path/to/newsmtsc \
        [--split test] [--model-dir stance/models/newsmtsc-minilm-l6] [--precision auto] [--write]

Prints one JSON object: ``{"model": {...evaluate_newsmtsc...}, "vader": {...}, "info": {...}}``.
With ``--write`` the model's result is also stored as ``<model-dir>/evaluation.json`` (with the
VADER figures under ``"baseline_vader"``) so reports can show it without re-running.
``--precision auto`` (the default) uses the precision ``load_model`` picks for this CPU
(``scoring.choose_precision``); the result names the precision used and why.
``--as-no-native-bf16`` picks as a CPU without native bf16 would (int8 or fp32 per model).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path


def raw_encoder_speed(data: str, split: str, *, batch_size: int = 64) -> float:
    """Sentences per second of the raw all-MiniLM-L6-v2 encoder (sentence-transformers, fp32,
    torch's default threads) over the same evaluation sentences, model preloaded."""
    from stance import embed, training

    sentences = [
        p.sentence for s in training.EVAL_SUBSETS for p in training.load_split(data, f"{s}/{split}")
    ]
    encoder = embed.SentenceEncoder(batch_size=batch_size, progress=False, precision="fp32")
    encoder.encode(sentences[:batch_size])  # load and warm up
    t0 = time.perf_counter()
    encoder.encode(sentences)
    return round(len(sentences) / (time.perf_counter() - t0), 1)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; return (and print) the result dict."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from stance import scoring, training
    from stance.batching import usable_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="NewsMTSC folder (train.jsonl, rw/, mt/)")
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument("--model-dir", default=str(scoring.DEFAULT_MODEL_DIR))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="auto", choices=["auto", *scoring.PRECISIONS])
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="batches scored at once, one thread each (default: one per core, as `stance "
        "analyze` does; 0: the model's own thread choice, one batch at a time)",
    )
    parser.add_argument(
        "--as-no-native-bf16",
        action="store_true",
        help="choose precisions as on a CPU without native bf16 (int8 or fp32), to measure that "
        "case on a CPU that has it; not with --write",
    )
    parser.add_argument("--write", action="store_true", help="write <model-dir>/evaluation.json")
    args = parser.parse_args(argv)
    flags = scoring.NO_NATIVE_BF16 if args.as_no_native_bf16 else None
    if args.as_no_native_bf16:
        if args.write:
            parser.error("--as-no-native-bf16 measures another CPU's case: not with --write")

    import torch

    t0 = time.perf_counter()
    scorer = scoring.load_model(
        args.model_dir, None if args.precision == "auto" else args.precision, flags=flags
    )
    load_s = time.perf_counter() - t0
    workers = usable_cores() if args.workers is None else args.workers
    if workers > 0:  # as the pipeline scores: one-thread batches, one per worker
        scorer = dataclasses.replace(scorer, num_threads=1, workers=workers)
    result = training.evaluate_newsmtsc(
        args.data, args.split, model=scorer, batch_size=args.batch_size
    )
    vader = training.evaluate_baseline(args.data, args.split)
    raw = raw_encoder_speed(args.data, args.split, batch_size=args.batch_size)
    result["raw_encoder_sentences_per_s"] = raw
    result["speed_ratio_vs_raw_encoder"] = round(result["pairs_per_s"] / raw, 2)
    info = scoring.model_info(args.model_dir, flags=flags)
    env = {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "scoring_threads": scorer.num_threads,
        "scoring_batch_workers": scorer.workers,
        "precision": scorer.precision,
        "precision_reason": "given on the command line"
        if args.precision != "auto"
        else info["precision_reason"],
        "cpu_native_bf16": scoring.native_bf16(),
        "as_no_native_bf16": args.as_no_native_bf16,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "load_s": round(load_s, 2),
        "pairs_per_s_definition": (
            "pairs / wall time of scoring them (tokenization + length-sorted batching + "
            f"forward passes, batch_size={args.batch_size}, model preloaded); the raw encoder "
            "encodes the same sentences with sentence-transformers (fp32)"
        ),
    }
    out = {"model": result, "vader": vader, "info": info, "environment": env}
    if args.write:
        doc = {
            **result,
            "baseline_vader": vader,
            "model_id": info["model_id"],
            "files": info["files"],
            "environment": env,
        }
        path = Path(args.model_dir) / "evaluation.json"
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
