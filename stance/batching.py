"""Batching for the two encoders (sentence vectors, stance pairs): reproducible and parallel.

A row's result must not depend on what else is computed with it, or a corpus would give other
vectors and scores whole than in partitions, or on a warm cache than on a cold one. Two things
decide that in torch on a CPU: padding (a padded row runs through other matrix shapes) and the
number of intra-op threads (matrix products split their sums differently). So batches hold rows
of one token length only (:func:`uniform_batches`), and every batch runs on one intra-op thread.
The cores are used by running several such batches at once, each in its own thread
(:func:`map_batches`): torch releases the GIL inside its kernels, and a batch computed on one
thread gives the same bits whichever thread runs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

#: Compiled oneDNN primitives kept (torch's CPU kernels in bf16 and int8 keep one per matrix
#: shape; oneDNN's default is 1,024). Uniform batches come in hundreds of shapes (one per token
#: length and batch size), and a full default cache held ~0.7 GB more resident memory in a
#: 200-batch encoder run (1.9 GB instead of 1.2 GB peak), at no measurable speed difference.
ONEDNN_CACHE_CAPACITY = 64


def limit_kernel_cache() -> None:
    """Cap oneDNN's primitive cache (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``) unless the user set it.

    oneDNN reads the variable when it first compiles a primitive, so this works until the
    process's first bf16 or int8 product.
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE_CAPACITY))


def trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc's ``malloc_trim``; elsewhere nothing).

    Called after each partition: batches of many shapes leave the C heap fragmented, and
    without it resident memory kept the high-water mark of every partition before.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        return
    if trim is not None:
        trim(0)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    """Whether work may go to forked processes: Linux only (fork elsewhere is unsafe or absent).

    Forked workers inherit the parent's tables instead of unpickling copies, and a script
    without an ``if __name__ == "__main__"`` guard is not run again in them (as under spawn).
    """
    import multiprocessing
    import sys

    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def fork_pool(workers: int) -> Any:
    """Return a ``ProcessPoolExecutor`` of ``workers`` forked processes (where :func:`can_fork`).

    Python warns about forking a process with threads; the workers run numpy, pandas and
    regular expressions only, none of the libraries whose threads a fork could leave locked.
    """
    import multiprocessing
    import warnings
    from concurrent.futures import ProcessPoolExecutor

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))


def uniform_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Split row indices into batches of one length, at most ``batch_size`` rows each.

    Rows go in order of length (stable): the batches are a pure function of ``lengths``, and no
    batch needs padding.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and lengths[batches[-1][0]] == lengths[i]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def map_batches(
    fn: Callable[[list[int]], T],
    batches: Sequence[list[int]],
    *,
    workers: int = 1,
    num_threads: int | None = 1,
) -> Iterator[tuple[list[int], T]]:
    """Yield ``(batch, fn(batch))`` for every batch, in order, under ``torch.inference_mode``.

    Args:
        fn: Runs the model on one batch of row indices.
        batches: From :func:`uniform_batches`.
        workers: Batches computed at once, each on its own thread with one intra-op thread.
            Used only with ``num_threads == 1`` (results are then independent of ``workers``).
        num_threads: Intra-op threads per batch (torch's setting is restored afterwards);
            ``None`` keeps torch's setting.
    """
    import torch

    previous = torch.get_num_threads()

    def call(batch: list[int]) -> T:
        # torch's thread count and inference mode are per thread: set them in each worker
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        with torch.inference_mode():
            return fn(batch)

    try:
        if workers <= 1 or num_threads != 1 or len(batches) < 2:
            for batch in batches:
                yield batch, call(batch)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stance-batch") as pool:
            # at most 2 × workers batches in flight: bounded memory, steady progress
            window = 2 * workers
            pending: list[Any] = []
            it = iter(batches)
            for batch in it:
                pending.append((batch, pool.submit(call, batch)))
                if len(pending) >= window:
                    b, fut = pending.pop(0)
                    yield b, fut.result()
            for b, fut in pending:
                yield b, fut.result()
    finally:
        torch.set_num_threads(previous)
