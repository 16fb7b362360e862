"""Spill: a large corpus's sentence vectors kept in a temporary file instead of in memory.

A million sentences of all-MiniLM-L6-v2 vectors are 1.5 GB of float32. When a run has more
than one partition, each partition's vectors go to a file in the system's temporary folder
(``TMPDIR``) as soon as the partition is back (:class:`Spill`), and the gathered array is a
read-only memory map of one file, in partition order, unlinked at once (the mapping keeps it
alive; nothing is left behind, even after a crash). Code that reads the whole array does it
in blocks (:func:`blocks`) and hands the pages back to the kernel after each one
(:func:`release`), so resident memory holds a block, not the corpus; rows picked here and there
are gathered the same way (:func:`take`). The values are the same bytes as the in-memory array
would hold: the tables do not depend on where they live.
"""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Rows per block when a spilled array is read whole (about 24 MB of 384-d float32).
BLOCK_ROWS = 16_384


def _mapping(array: object) -> mmap.mmap | None:
    """Return the ``mmap`` behind a memory-mapped array or a view of one (``None``: in memory)."""
    seen = 0
    while array is not None and seen < 64:
        if isinstance(array, mmap.mmap):
            return array
        array = getattr(array, "base", None)
        seen += 1
    return None


def release(array: object) -> None:
    """Drop the resident pages of a memory-mapped array (no-op for an in-memory array).

    The data stay in the file (and the page cache); the next read maps them again.
    """
    mapped = _mapping(array)
    if mapped is not None and hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


def blocks(array: np.ndarray, rows: int = BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, block)`` over ``array``'s rows; spilled pages are released after each."""
    for lo in range(0, len(array), rows):
        yield lo, array[lo : lo + rows]
        release(array)


def take(array: np.ndarray, rows: np.ndarray, span: int = BLOCK_ROWS) -> np.ndarray:
    """Return ``array[rows]`` (a new in-memory array in ``array``'s dtype).

    A memory-mapped ``array`` is read in ascending row order, ``span`` rows of the file at a
    time, its pages released after each span, so resident memory holds the result and one
    span's pages (the whole file's when fancy-indexed at once).
    """
    import numpy as np

    rows = np.asarray(rows, dtype=np.int64)
    if _mapping(array) is None:
        return np.asarray(array[rows])
    out = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    order = np.argsort(rows, kind="stable")
    ranked = rows[order]
    cuts = np.flatnonzero(np.diff(ranked // span)) + 1
    for idx in np.split(order, cuts):
        out[idx] = array[rows[idx]]
        release(array)
    return out


class Spill:
    """Partition vectors written to temporary files as they arrive, joined into one map.

    Use as a context manager: the folder of per-partition pieces is removed on exit; the
    joined array (:meth:`join`) stays valid after it.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="stance-vectors-"))
        self.count = 0

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the pieces (maps of them stay readable until dropped)."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def put(self, vectors: np.ndarray) -> np.ndarray:
        """Write one partition's vectors to a piece; return a read-only map of it."""
        import numpy as np

        path = self.dir / f"part-{self.count:06d}.npy"
        self.count += 1
        np.save(path, np.ascontiguousarray(vectors), allow_pickle=False)
        return np.load(path, mmap_mode="r")

    def join(self, pieces: list[np.ndarray]) -> np.ndarray:
        """Concatenate ``pieces`` (maps from :meth:`put`, or arrays) into one read-only map.

        The file is unlinked once mapped; its disk space is freed with the last reference.
        """
        import numpy as np

        if not pieces:
            return np.zeros((0, 0), dtype=np.float32)
        dim, dtype = pieces[0].shape[1], pieces[0].dtype
        n = sum(len(p) for p in pieces)
        fd, name = tempfile.mkstemp(prefix="vectors-", suffix=".bin", dir=self.dir.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                for piece in pieces:
                    for _, block in blocks(piece):
                        f.write(np.ascontiguousarray(block, dtype=dtype).tobytes())
            if n == 0:
                return np.zeros((0, dim), dtype=dtype)
            return np.memmap(name, dtype=dtype, mode="r", shape=(n, dim))
        finally:
            try:
                Path(name).unlink(missing_ok=True)
            except OSError:  # a mapped file cannot be unlinked on Windows: the OS cleans up
                pass
