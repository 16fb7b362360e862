"""Dev macro-F1 and speed of a stance model in each inference precision (fp32, int8, bf16).

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/stance_precision.py --data /path/to/newsmtsc \
        [--model-dir stance/models/newsmtsc-minilm-l6-blind] [--write]

Scores ``rw/dev`` and ``mt/dev`` with the model converted to each precision (``to_precision``)
and prints one JSON object with macro-F1 and pairs/s per precision, plus the CPU it ran on.
With ``--write`` the figures go into the model's ``config.json`` (``"precision": "auto"``,
``"precision_dev"``, ``"precision_measurement"``), where ``scoring.choose_precision`` reads
them: a reduced precision is chosen at run time only if its dev macro-F1 is within
``PRECISION_TOLERANCE`` of fp32 on both dev sets. Test data is never read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    """Run the measurement; return (and print) the result dict."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from stance import scoring, training

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="NewsMTSC folder (rw/, mt/)")
    parser.add_argument("--model-dir", default=str(scoring.DEFAULT_MODEL_DIR))
    parser.add_argument("--precisions", nargs="+", default=list(scoring.PRECISIONS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--write", action="store_true", help="store the figures in config.json")
    args = parser.parse_args(argv)

    import torch

    model_dir = Path(args.model_dir)
    f1: dict[str, dict[str, float]] = {}
    speed: dict[str, float] = {}
    threads = scoring.choose_threads()
    for precision in args.precisions:
        scoring.load_model.cache_clear()
        scorer = scoring.load_model(model_dir, precision)
        result = training.evaluate_newsmtsc(
            args.data, "dev", model=scorer, batch_size=args.batch_size
        )
        f1[precision] = {name: result[name]["macro_f1"] for name in result if name.endswith("/dev")}
        speed[precision] = result["pairs_per_s"]
        threads = scorer.num_threads
        print(
            json.dumps({"precision": precision, **f1[precision], "pairs_per_s": speed[precision]})
        )
    scoring.load_model.cache_clear()
    flags = scoring.cpu_flags()
    measurement = {
        "date": dt.date.today().isoformat(),
        "split": "dev",
        "processor": platform.processor() or platform.machine(),
        "cpu_native_bf16": scoring.native_bf16(flags),
        "cpu_bf16_flags": sorted(f for f in flags if f in scoring.BF16_CPU_FLAGS),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "scoring_threads": threads,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "pairs_per_s": speed,
        "note": "pairs/s depend on the CPU and its load; the run-time choice uses the macro-F1 "
        "figures, which do not",
    }
    out = {"precision_dev": f1, "precision_measurement": measurement}
    if args.write:
        path = model_dir / "config.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        config.update(precision="auto", **out)
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        out["chosen_here"] = scoring.choose_precision(config)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
