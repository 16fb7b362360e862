"""NewsMTSC benchmark of the shipped stance model (and the VADER sentence-level floor).

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/stance_newsmtsc.py --data /path/to/newsmtsc \
        [--split test] [--model-dir stance/models/newsmtsc-minilm-l6] [--write]

Prints one JSON object: ``{"model": {...evaluate_newsmtsc...}, "vader": {...}, "info": {...}}``.
With ``--write`` the model's result is also stored as ``<model-dir>/evaluation.json`` (with the
VADER figures under ``"baseline_vader"``) so reports can show it without re-running.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; return (and print) the result dict."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from stance import scoring, training

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="NewsMTSC folder (train.jsonl, rw/, mt/)")
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument("--model-dir", default=str(scoring.DEFAULT_MODEL_DIR))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--write", action="store_true", help="write <model-dir>/evaluation.json")
    args = parser.parse_args(argv)

    import torch

    t0 = time.perf_counter()
    scorer = scoring.load_model(args.model_dir)
    load_s = time.perf_counter() - t0
    result = training.evaluate_newsmtsc(
        args.data, args.split, model=scorer, batch_size=args.batch_size
    )
    vader = training.evaluate_baseline(args.data, args.split)
    info = scoring.model_info(args.model_dir)
    env = {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "scoring_threads": scorer.num_threads,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "load_s": round(load_s, 2),
        "pairs_per_s_definition": (
            "pairs / wall time of score_mentions (tokenization + length-sorted batching + "
            f"forward passes, batch_size={args.batch_size}, model preloaded)"
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
