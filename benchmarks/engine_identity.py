"""Benchmark: `stance analyze` on one engine and on Dask give byte-identical files.

The 300-article seeded sample of the AllSides geopolitics file (the scale benchmark's, seed 42)
is analysed twice with the real models, each run with its own empty cache folder so that both
compute every vector and score themselves:

- ``--engine local`` with the default partitions (500 articles: one partition);
- ``--engine dask --workers 2`` on a ``distributed.LocalCluster``, with
  ``[run] partition_articles = 100`` (three partitions spread over the two workers).

The sha256 of every file the runs write (the Parquet tables and ``vectors.npy``; ``run.json``
differs by design: engine, timings) is compared, and the wall times recorded. The sample goes
to a temporary folder: the AllSides text never enters the repository. Run::

    python benchmarks/engine_identity.py --data ../shared/data/allsides \
        [--out benchmarks/results/engine_identity.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import _git_commit, _write, sample_input

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "engine_identity.json"


def _digests(run: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.iterdir())
        if p.is_file() and p.suffix in (".parquet", ".npy")
    }


def _analyze(inputs: Path, out: Path, cache: Path, extra: list[str]) -> float:
    env = dict(os.environ, STANCE_CACHE_DIR=str(cache))
    cli = [sys.executable, "-c", "import sys; from stance.cli import main; sys.exit(main())"]
    cmd = [*cli, "analyze", str(inputs), "--out", str(out), *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - t0, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of the AllSides files")
    parser.add_argument("--size", default="300")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument(
        "--keep", type=Path, help="write the two runs here (default: a temp folder)"
    )
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
    folder = nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory()
    with folder as name:
        tmp = Path(name)
        inputs = sample_input(args.data, args.size, args.seed, tmp)
        config = tmp / "partitions.toml"
        config.write_text("[run]\npartition_articles = 100\n", encoding="utf-8")
        runs: dict[str, Any] = {}
        for label, extra in (
            ("local", ["--engine", "local"]),
            ("dask", ["--engine", "dask", "--workers", "2", "--config", str(config)]),
        ):
            seconds = _analyze(inputs, tmp / label, tmp / f"cache-{label}", extra)
            meta = json.loads((tmp / label / "run.json").read_text(encoding="utf-8"))
            runs[label] = {
                "wall_s": seconds,
                "engine": meta.get("engine"),
                "workers": meta.get("workers"),
                "partitions": meta.get("partitions"),
                "sha256": _digests(tmp / label),
            }
    same = runs["local"]["sha256"] == runs["dask"]["sha256"]
    record = {
        "benchmark": "benchmarks/engine_identity.py",
        "git_commit": _git_commit(),
        "input": f"allsides_geo{args.size}_seed{args.seed}",
        "files": len(runs["local"]["sha256"]),
        "identical": same,
        "runs": runs,
    }
    _write(args.out, record)
    print(json.dumps({k: v for k, v in record.items() if k != "runs"}))
    for label, run in runs.items():
        print(
            f"{label}: {run['wall_s']} s, {run['workers']} workers, {run['partitions']} partitions"
        )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
