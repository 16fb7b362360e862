"""The run directory: which files a run holds, and how they are written and read back.

One place knows the layout: the pipeline writes with :func:`write_run`, the reports and the
tests read with :func:`load_run`. A run is written into a temporary folder beside ``--out`` and
renamed into place at the end, so a run killed while writing leaves the previous run (or
nothing) — never a mix of old and new files. :func:`check_out` checks ``--out`` before any work.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stance.schema import ARTICLE_COLUMNS, MENTION_COLUMNS, SENTENCE_COLUMNS, SUMMARY_COLUMNS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

RUN_JSON = "run.json"
VECTORS = "vectors.npy"

#: Tables of a run, in writing order: name → the columns the contract fixes (a prefix of the
#: file's columns; empty where only the README documents them).
TABLES: dict[str, tuple[str, ...]] = {
    "articles": ARTICLE_COLUMNS,
    "sentences": SENTENCE_COLUMNS,
    "mentions": MENTION_COLUMNS,
    "summary": SUMMARY_COLUMNS,
    "topics": (),
    "topic_map": (),
    "units": (),
    "contrasts": (),
    "evidence": (),
    "aligned": (),
    "trends": (),
}


class RunDirError(ValueError):
    """A run directory that cannot be written or read (the message names the path)."""


def table_file(name: str) -> str:
    """Return the file name of table ``name`` (one of :data:`TABLES`)."""
    if name not in TABLES:
        raise ValueError(f"The table name must be one of {list(TABLES)}. Got {name!r} instead.")
    return f"{name}.parquet"


def is_run_dir(path: str | Path) -> bool:
    """Return whether ``path`` is a folder written by :func:`write_run`."""
    return (Path(path) / RUN_JSON).is_file()


def check_out(out: str | Path) -> Path:
    """Check that a run can be written to ``out``, before any work starts.

    ``out`` may be missing (it is created), or a run directory (it is replaced), or an empty
    folder; its parent must be writable, since the run is written beside it first.

    Returns:
        ``out`` as an absolute path.

    Raises:
        RunDirError: When ``out`` is a file, a folder holding other files, or not writable.
    """
    path = Path(out).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--out {out}: is a file, not a folder.")
    if path.is_dir() and any(path.iterdir()) and not is_run_dir(path):
        raise RunDirError(
            f"--out {out}: the folder holds files that are not a stance run; "
            "name a new or empty folder (a run is replaced as a whole)."
        )
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"--out {out}: cannot write in {parent}.")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise RunDirError(f"--out {out}: the folder is not writable.")
    # what write_run will do there: a folder beside the run
    if (problem := writable_problem(parent)) is not None:
        raise RunDirError(f"--out {out}: cannot write there ({problem}).")
    return path


def writable_problem(path: Path) -> str | None:
    """Say why ``path`` cannot be (made) a folder this process writes in, or ``None``.

    Probed by creating and removing a folder in it (or in its nearest existing ancestor, where
    it would be created): permission bits pass root everywhere, and say nothing of read-only
    mounts, /proc or /sys.
    """
    here = path
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir():
        return (
            "it is a file, not a folder"
            if here == path
            else f"{str(here)!r} is a file, not a folder"
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".stance-probe-", dir=here))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _write_table(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` as Parquet, the same bytes however its columns were chunked.

    Gathered partitions leave Arrow string columns in several chunks, and the Parquet writer
    falls back from dictionary to plain pages at a chunk-dependent point (seen on the 300-article
    sample: the same sentences table, other bytes with 3 partitions than with 1); one chunk per
    column makes the file depend on the values alone.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(table, preserve_index=False).combine_chunks(), path)


def _save_vectors(path: Path, vectors: np.ndarray) -> None:
    """``np.save`` (the same bytes), written block by block: spilled vectors stay on disk."""
    import numpy as np

    from stance.spill import blocks

    vectors = np.asarray(vectors)
    header = {
        "descr": np.lib.format.dtype_to_descr(vectors.dtype),
        "fortran_order": False,
        "shape": vectors.shape,
    }
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for _, block in blocks(vectors):
            f.write(np.ascontiguousarray(block).tobytes())


def write_run(result: Mapping[str, Any], out: str | Path) -> Path:
    """Write a run's tables (Parquet), vectors (``.npy``) and ``run.json`` into ``out``.

    Args:
        result: ``{table name: DataFrame, ..., "vectors": array, "run": dict}``; tables not
            in :data:`TABLES` are an error, missing ones are not written.
        out: The run directory; replaced as a whole when it holds a run already.

    Returns:
        The run directory.

    Raises:
        RunDirError: When ``out`` cannot hold a run (see :func:`check_out`).
    """
    path = check_out(out)
    unknown = sorted(set(result) - set(TABLES) - {"run", "vectors"})
    if unknown:
        raise ValueError(f"Unknown run table(s) {unknown}; known: {list(TABLES)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.writing-", dir=path.parent))
    try:
        for name in TABLES:
            if name in result:
                _write_table(result[name], tmp / table_file(name))
        if "vectors" in result:
            _save_vectors(tmp / VECTORS, result["vectors"])
        (tmp / RUN_JSON).write_text(
            json.dumps(result.get("run", {}), indent=2, ensure_ascii=False, default=str) + "\n",
            encoding="utf-8",
        )
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            path.rename(old / path.name)
        tmp.rename(path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Wrote run to %s", path)
    return path


def load_run(
    run_dir: str | Path, *, vectors: bool = False, tables: list[str] | None = None
) -> dict[str, Any]:
    """Read the tables of a run directory (those that exist) and ``run.json``.

    Args:
        run_dir: The run directory.
        vectors: Also load ``vectors.npy`` (memory-mapped).
        tables: Only these tables (default: every table of :data:`TABLES` that exists).

    Returns:
        ``{"articles": DataFrame, ..., "run": dict}``; missing tables are absent, a missing
        ``run.json`` gives ``{}``.

    Raises:
        FileNotFoundError: When ``run_dir`` does not exist.
    """
    import pandas as pd

    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(
            f"run directory {run_dir} does not exist; run `stance analyze` first"
        )
    out: dict[str, Any] = {}
    for name in tables if tables is not None else TABLES:
        file = run / table_file(name)
        if file.is_file():
            out[name] = pd.read_parquet(file)
    info = run / RUN_JSON
    out["run"] = json.loads(info.read_text(encoding="utf-8")) if info.is_file() else {}
    if vectors and (run / VECTORS).is_file():
        import numpy as np

        out["vectors"] = np.load(run / VECTORS, mmap_mode="r")
    return out
