"""Engine: where the per-partition work runs — in this process, or as tasks on a Dask cluster.

The pipeline cuts a corpus into partitions of whole articles and applies one function to each
through the :class:`Runner` that :func:`open_engine` yields. ``"local"`` applies it in order in
this process; ``"dask"`` submits one task per partition to a ``distributed`` cluster (a
``LocalCluster`` of single-threaded worker processes, or the scheduler at an address) and
gathers the results in partition order, so the caller gets the same list either way. This
module knows nothing of the stages.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from stance.batching import usable_cores


class Partitions(Protocol):
    """What :meth:`Runner.map` needs of its partitions: a length and an order."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...


logger = logging.getLogger(__name__)

Engine = Literal["local", "dask"]
ENGINES: tuple[str, ...] = ("local", "dask")
#: Seconds to wait for a scheduler at ``--scheduler ADDRESS`` (and for its workers).
CONNECT_TIMEOUT_S = 10.0


@dataclass
class EngineInfo:
    """What ran the partitions (``run.json``): engine, scheduler, workers, partitions."""

    engine: str = "local"
    scheduler: str | None = None
    workers: int = 1
    partitions: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def check_engine(engine: str, scheduler: str | None, workers: int | None) -> None:
    """Check the engine options before any work.

    Raises:
        ValueError: Naming the parameter, what was expected and what was received.
    """
    if engine not in ENGINES:
        raise ValueError(
            f"The 'engine' parameter must be one of {set(ENGINES)}. Got {engine!r} instead."
        )
    if engine == "local" and (scheduler is not None or workers is not None):
        raise ValueError(
            "The 'scheduler' and 'workers' parameters apply only to engine='dask'. "
            f"Got scheduler={scheduler!r}, workers={workers!r} with engine='local'."
        )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(
            f"The 'workers' parameter must be an integer >= 1. Got {workers!r} instead."
        )
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ValueError(
            f"The 'scheduler' parameter must be a scheduler address such as "
            f"'tcp://host:8786'. Got {scheduler!r} instead."
        )


def default_workers() -> int:
    """Worker processes of a ``LocalCluster`` when none are asked for: one per usable core."""
    return usable_cores()


@contextmanager
def _log_levels(levels: dict[str, int]) -> Iterator[None]:
    """Raise the level of some loggers for a while (never lowers one)."""
    loggers = {name: logging.getLogger(name) for name in levels}
    old = {name: lg.level for name, lg in loggers.items()}
    for name, lg in loggers.items():
        if lg.getEffectiveLevel() < levels[name]:
            lg.setLevel(levels[name])
    try:
        yield
    finally:
        for name, lg in loggers.items():
            lg.setLevel(old[name])


@contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[tuple[Any, EngineInfo]]:
    """Yield a ``distributed.Client`` (and what it is), closing whatever this call created.

    Without ``scheduler``: a ``LocalCluster`` of ``workers`` single-threaded worker processes.
    With one: a client of that scheduler; ``workers`` then means "wait until that many workers
    are connected" (default: one).

    Raises:
        ValueError: When the scheduler cannot be reached or has too few workers in time.
    """
    from distributed import Client, LocalCluster

    if scheduler is None:
        n = workers or default_workers()
        # Worker processes with one thread each: each loads the models once (see `shared`).
        # The scheduler's HTTP server takes a free port, so that runs side by side don't clash.
        # The nannies set OMP_NUM_THREADS=1 and the like in this process's environment for the
        # workers they spawn (distributed's "pre-spawn-environ") and leave them there; put this
        # process's environment back, so the user's process and what it loads later (threads
        # read by libraries at load time) are as without the cluster.
        environ = dict(os.environ)
        try:
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.WARNING,
            )
        finally:
            os.environ.clear()
            os.environ.update(environ)
        try:
            client = Client(cluster)
            try:
                yield client, EngineInfo("dask", "LocalCluster", n)
            finally:
                client.close()
        finally:
            # the results are gathered by now: a worker still tearing down its models after
            # 4 s (a loaded machine) is killed by its nanny, which needs no warning
            with _log_levels({"distributed.nanny": logging.ERROR}):
                cluster.close()
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(
            "The 'scheduler' parameter must be the address of a running Dask scheduler. "
            f"Got {scheduler!r}, which did not answer within {CONNECT_TIMEOUT_S:g} s ({why})."
        ) from None
    try:
        wanted = workers or 1
        try:
            client.wait_for_workers(wanted, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise ValueError(
                f"The Dask scheduler at {scheduler!r} has fewer than {wanted} worker(s) "
                f"(the 'workers' parameter) after {CONNECT_TIMEOUT_S:g} s."
            ) from None
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        yield client, EngineInfo("dask", scheduler, n)
    finally:
        client.close()


class Runner:
    """Applies a function to partitions: in this process, or on a Dask client.

    Made by :func:`open_engine`; ``info`` says what runs the partitions (``run.json``).
    """

    def __init__(self, info: EngineInfo, client: Any = None) -> None:
        self.info = info
        self.client = client

    def map(
        self,
        fn: Callable[..., Any],
        parts: Partitions,
        *,
        shared: dict[str, Any] | None = None,
        progress: bool = True,
        desc: str = "partitions",
        on_result: Callable[[Any], Any] | None = None,
    ) -> list[Any]:
        """Return ``[fn(part, **shared) for part in parts]``, in partition order.

        Args:
            fn: A module-level function (Dask workers import it by name).
            parts: The partitions, in order (in this process, any sized iterable of them).
            shared: Keyword arguments of every call. On Dask they are sent to each worker
                once and stay in its memory while the tasks run, so an object that loads a
                model on first use loads it once per worker.
            progress: A progress bar over completed partitions.
            desc: The bar's label.
            on_result: Applied in this process to each result as soon as it is back (in
                completion order); its return value is kept instead (e.g. a result whose
                large arrays went to disk).

        Returns:
            The results in partition order, whatever order they completed in.
        """
        from tqdm.auto import tqdm

        shared = dict(shared or {})
        self.info.partitions += len(parts)
        bar = tqdm(total=len(parts), desc=desc, unit="partition", disable=not progress)
        if self.client is None:
            results = []
            with bar:
                for part in parts:
                    result = fn(part, **shared)
                    results.append(on_result(result) if on_result else result)
                    bar.update(1)
            return results

        from distributed import as_completed

        client = self.client
        # a one-element list, so that a dict or list argument is sent whole
        sent = {
            k: None if v is None else client.scatter([v], broadcast=True, hash=False)[0]
            for k, v in shared.items()
        }
        futures = client.map(fn, list(parts), pure=False, **sent)
        index = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(futures)
        try:
            with bar:
                for future in as_completed(futures):
                    result = future.result()
                    out[index[future.key]] = on_result(result) if on_result else result
                    future.release()
                    bar.update(1)
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            del sent
        return out


@contextmanager
def open_engine(
    engine: Engine = "local", scheduler: str | None = None, workers: int | None = None
) -> Iterator[Runner]:
    """Yield a :class:`Runner` for ``engine``; a Dask cluster or client made here is closed after.

    Args:
        engine: ``"local"`` (this process, partitions in order) or ``"dask"``.
        scheduler: A Dask scheduler address; ``None`` starts a ``LocalCluster``.
        workers: Worker processes of the ``LocalCluster`` (default: one per core), or how many
            workers to wait for at ``scheduler`` (default: one).

    Raises:
        ValueError: On bad engine options or an unreachable scheduler.
    """
    check_engine(engine, scheduler, workers)
    if engine == "local":
        yield Runner(EngineInfo("local", None, 1, 0))
        return
    import distributed  # noqa: F401  (importing it sets its loggers' levels: do that first)

    # the scheduler's and workers' INFO lines would drown the run's own log
    with (
        _log_levels({"distributed": logging.WARNING}),
        dask_client(scheduler, workers) as (
            client,
            info,
        ),
    ):
        yield Runner(info, client)


def map_partitions(
    fn: Callable[..., Any],
    parts: Sequence[Any],
    *,
    engine: Engine = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    shared: dict[str, Any] | None = None,
    progress: bool = True,
) -> tuple[list[Any], EngineInfo]:
    """Open an engine, apply ``fn`` to every partition (:meth:`Runner.map`) and close it.

    Returns:
        The results in partition order and an :class:`EngineInfo`.
    """
    with open_engine(engine, scheduler, workers) as runner:
        return runner.map(fn, parts, shared=shared, progress=progress), runner.info
