"""Pipeline: the one orchestrator that runs the stages in order and writes a run directory.

ingest (whole) → per partition of articles: segment → mentions (capped per article) → embed →
stance model scores (locally, the next partition is segmented in a worker process meanwhile) →
gathered in partition order: topics (fitted on the whole corpus) → attribution → compare.
Partitions run in this process or as Dask tasks (:mod:`stance.engine`);
every per-partition stage works article by article and the models score a text the same
whatever else is in its batch, so the tables do not depend on the engine or the partition
size. Stages never import each other; this module passes their tables along, times them and
records what happened in ``run.json`` (config, versions, seeds, engine, timings, counts,
skipped inputs).
"""

from __future__ import annotations

import logging
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stance.batching import can_fork, fork_pool, trim_heap, usable_cores
from stance.config import Settings, check_before_run, load_settings, write_cache_file
from stance.schema import (
    MENTION_COLUMNS,
    MENTION_EXTRA_COLUMNS,
    SENTENCE_COLUMNS,
    SUMMARY_COLUMNS,
    text_values,
)
from stance.spill import Spill, blocks

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import pandas as pd

    from stance.embed import Encoder
    from stance.engine import Engine

logger = logging.getLogger(__name__)

Scorer = Callable[..., "pd.DataFrame"]


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in (
        "stance",
        "torch",
        "sentence-transformers",
        "transformers",
        "scikit-learn",
        "umap-learn",
        "pandas",
        "pyarrow",
        "numpy",
        "syntok",
        "dask",
        "distributed",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """Return the commit of the source tree this package runs from, if it is a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _peak_rss_mib() -> float | None:
    """Return the peak resident memory of this process so far, in MiB (``None`` if unknown)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


class _Timer:
    """Seconds per stage, and the process's peak resident memory as each stage ends."""

    def __init__(self, log: bool = True) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_rss_mib: dict[str, float | None] = {}
        self.log = log

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.log:
            logger.info("stage %s ...", name)
        t0 = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - t0, 3)
        self.peak_rss_mib[name] = _peak_rss_mib()
        if self.log:
            logger.info(
                "stage %s done in %.1f s (peak RSS %s MiB)",
                name,
                self.seconds[name],
                self.peak_rss_mib[name],
            )


def _score_with_model(
    df: pd.DataFrame,
    *,
    model_dir: str,
    cache_dir: Path | None = None,
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Score with the stance model in ``model_dir``, loaded once per process.

    One intra-op thread per batch keeps a pair's score independent of the batch it is scored
    in (``stance.batching``); ``workers`` batches at once and partitions bring the parallelism.
    """
    import dataclasses

    from stance.scoring import load_model, score_mentions

    model = dataclasses.replace(load_model(model_dir), num_threads=1, workers=workers)
    return score_mentions(df, model=model, cache_dir=cache_dir, progress=progress)


def _model_scorer(
    model: str | None, cache_dir: Path | None = None, workers: int = 1
) -> tuple[Scorer, dict[str, Any]]:
    """Return the shipped (or configured) stance model as a scorer, and its provenance."""
    import functools

    from stance.scoring import model_info, resolve_model_dir

    model_dir = resolve_model_dir(model)
    info = dict(model_info(model_dir)) | {"num_threads": 1, "batch_workers": workers}
    scorer = functools.partial(
        _score_with_model, model_dir=str(model_dir), cache_dir=cache_dir, workers=workers
    )
    return scorer, info


def _vectors_digest(vectors: np.ndarray) -> bytes:
    """sha256 of the sentence vectors, block by block: spilled vectors are never all resident."""
    import hashlib

    import numpy as np

    h = hashlib.sha256(repr(vectors.shape).encode())
    for _, block in blocks(vectors):
        h.update(np.ascontiguousarray(block, dtype=np.float32).data)
    return h.digest()


def _code_and_libraries(modules: tuple[Any, ...], libraries: tuple[str, ...]) -> dict[str, Any]:
    """Return the package version, the source hash of ``modules`` and the ``libraries``' versions.

    Part of every result-cache key, so an upgrade or an edit never reuses an old result.
    """
    import hashlib
    from importlib import metadata

    import stance

    return {
        "stance": stance.__version__,
        "code": [hashlib.sha256(Path(m.__file__).read_bytes()).hexdigest() for m in modules],
        "libraries": {name: metadata.version(name) for name in libraries},
    }


#: Rows hashed at a time by :func:`_frames_digest`.
_HASH_ROWS = 100_000


def _frames_digest(h: Any, *frames: pd.DataFrame) -> None:
    """Feed the column names, dtypes and row hashes of ``frames`` into the hash ``h``.

    A row's hash depends on that row alone, so hashing a block of rows at a time feeds the
    same bytes as hashing the whole frame, without a whole string column's Python objects in
    memory at once (a gigabyte on the full AllSides corpus).
    """
    import pandas as pd

    for frame in frames:
        h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
        for lo in range(0, len(frame), _HASH_ROWS):
            rows = frame.iloc[lo : lo + _HASH_ROWS]
            h.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())


def _topics_key(
    sentences: pd.DataFrame,
    vectors_digest: bytes,
    settings: Settings,
    articles: pd.DataFrame | None,
    encoder_id: str,
) -> str:
    """sha256 of everything the topics stage reads: the same key means the same result."""
    import dataclasses
    import hashlib
    import json

    from stance import topics

    h = hashlib.sha256()
    libraries = ("numpy", "scikit-learn", "umap-learn", "pynndescent", "numba")
    spec = {
        **_code_and_libraries((topics,), libraries),
        "encoder": encoder_id,
        "seed": settings.run.seed,
        "topics": dataclasses.asdict(settings.topics),
        "named": settings.named_topics_dict(),
    }
    h.update(json.dumps(spec, sort_keys=True, default=str).encode())
    h.update(vectors_digest)
    _frames_digest(h, sentences[["article_id", "sentence_id", "sentence", "start", "end"]])
    if articles is not None:
        _frames_digest(h, articles[[c for c in ("article_id", "title", "text") if c in articles]])
    return h.hexdigest()


def _compare_key(
    mentions: pd.DataFrame,
    articles: pd.DataFrame,
    sentences: pd.DataFrame,
    vectors_digest: bytes,
    settings: Settings,
    group_by: str,
) -> str:
    """sha256 of everything the comparison reads: the same key means the same tables.

    That is the attributed mentions, every article column but the text, which the comparison
    never reads (the topics key hashes it already), the sentences' ids, the vectors and the
    whole settings.
    """
    import hashlib
    import json

    from stance import compare, config, schema

    h = hashlib.sha256()
    spec = {
        **_code_and_libraries((compare, config, schema), ("numpy", "pandas", "scipy")),
        "settings": settings.to_dict(),
        "group_by": group_by,
    }
    h.update(json.dumps(spec, sort_keys=True, default=str).encode())
    h.update(vectors_digest)
    meta = articles.drop(columns=["text"], errors="ignore")
    _frames_digest(h, mentions, meta, sentences[["article_id", "sentence_id"]])
    return h.hexdigest()


def _cached(path: Path, what: str, compute: Callable[[], Any]) -> Any:
    """Return the result pickled at ``path``, else ``compute()``, stored there atomically.

    ``path`` is named by a key of all the result's inputs. A damaged file is computed again and
    replaced; a read-only cache folder costs the recomputation, nothing else.
    """
    import pickle

    if path.is_file():
        try:
            with open(path, "rb") as fh:
                stored = pickle.load(fh)
            logger.info("%s: the same inputs were seen before; reusing %s", what, path.name)
            return stored
        except Exception as exc:
            logger.warning("%s: ignoring unreadable cache file %s (%s)", what, path, exc)
    result = compute()

    def dump(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_cache_file(path, dump)
    except OSError as exc:
        logger.warning("%s: could not store the result in %s (%s)", what, path.parent, exc)
    return result


def _topics_cached(
    sentences: pd.DataFrame,
    vectors: np.ndarray,
    settings: Settings,
    encode: Callable[[list[str]], np.ndarray],
    *,
    articles: pd.DataFrame | None,
    progress: bool,
    cache_dir: Path,
    key: str,
) -> Any:
    """``topics.run_topics``, or its stored result when the very same inputs were seen before.

    The result (topic per sentence, topic table, map, info; not the fitted model) is pickled
    under ``cache_dir`` by ``key`` (:func:`_topics_key`), so a warm re-run does not fit again.
    """
    from stance import topics

    def fit() -> dict[str, Any]:
        result = topics.run_topics(
            sentences, vectors, settings, encode, articles=articles, progress=progress
        )
        return {
            "topic": result.topic,
            "table": result.table,
            "coords": result.coords,
            "info": result.info,
        }

    return topics.TopicResult(model=None, **_cached(cache_dir / f"{key}.pkl", "topics", fit))


def _scorer_info(scorer: Scorer) -> dict[str, Any]:
    return {"name": getattr(scorer, "__qualname__", repr(scorer))}


def _cap_per_article(found: pd.DataFrame, cap: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep the first ``cap`` mentions of each article (in text order); count the rest."""
    if found.empty:
        return found, {}
    rank = found.groupby("article_id", sort=False).cumcount()
    over = found.loc[rank >= cap, "article_id"].value_counts().sort_index()
    if over.empty:
        return found, {}
    return found[rank < cap].reset_index(drop=True), {str(k): int(v) for k, v in over.items()}


@dataclass
class PartitionResult:
    """What one partition of articles gives: its sentences, their vectors, scored mentions.

    ``mentions`` has no ``topic`` yet (topics are fitted on the gathered sentences); ``empty``
    lists the partition's articles without a sentence, ``capped`` the mentions past
    ``mentions.max_per_article`` per article; ``seconds`` times the stages.
    """

    sentences: pd.DataFrame
    vectors: np.ndarray
    mentions: pd.DataFrame
    empty: list[str] = field(default_factory=list)
    capped: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class _Prepared:
    """A partition segmented and its mentions found (capped): what needs no model."""

    sentences: pd.DataFrame
    mentions: pd.DataFrame
    empty: list[str]
    capped: dict[str, int]
    seconds: dict[str, float]


def _prepare_partition(
    articles: pd.DataFrame, *, settings: Settings, progress: bool = False
) -> _Prepared:
    """Segment one partition and find its mentions, capped per article (no model involved)."""
    from stance import mentions, segment

    timer = _Timer(log=False)
    with timer.stage("segment"):
        sentences = segment.segment(
            articles, progress=progress, max_chars=settings.segment.max_sentence_chars
        )
    empty = sorted(set(articles["article_id"]) - set(sentences["article_id"]))
    with timer.stage("mentions"):
        found = mentions.extract_mentions(
            sentences,
            settings.targets_dict(),
            progress=progress,
            resolve=settings.mentions.resolve_references,
        )
        found, capped = _cap_per_article(found, settings.mentions.max_per_article)
    return _Prepared(sentences, found, empty, capped, timer.seconds)


def _finish_partition(
    prepared: _Prepared,
    *,
    encoder: Encoder,
    scorer: Scorer,
    cache_dir: str | Path | None,
    progress: bool = False,
) -> PartitionResult:
    """Embed a prepared partition's sentences and score its mentions."""
    from stance import embed

    timer = _Timer(log=False)
    with timer.stage("embed"):
        vectors = embed.embed_sentences(
            prepared.sentences["sentence"].tolist(), encoder, cache_dir=cache_dir
        )
    with timer.stage("stance"):
        found = prepared.mentions
        if len(found):
            scored = scorer(found, progress=progress)
        else:
            scored = found.assign(stance=[], stance_score=[])
    trim_heap()  # the batches' many shapes fragment the C heap: hand the free part back
    seconds = {**prepared.seconds, **timer.seconds}
    return PartitionResult(
        prepared.sentences, vectors, scored, prepared.empty, prepared.capped, seconds
    )


def analyze_partition(
    articles: pd.DataFrame,
    *,
    settings: Settings,
    encoder: Encoder,
    scorer: Scorer,
    cache_dir: str | Path | None,
    progress: bool = False,
) -> PartitionResult:
    """Segment, embed, find mentions and score them for one partition of whole articles.

    Args:
        articles: Columns ``article_id, source, text``; every article of the partition.
        settings: The run's settings (``segment``, ``mentions``, targets).
        encoder: The sentence embedder.
        scorer: A function like :func:`stance.score_mentions`.
        cache_dir: The embedding cache folder (``None``: no cache).
        progress: Show the stages' progress bars.

    Returns:
        A :class:`PartitionResult`; every row depends on its own article alone.
    """
    prepared = _prepare_partition(articles, settings=settings, progress=progress)
    return _finish_partition(
        prepared, encoder=encoder, scorer=scorer, cache_dir=cache_dir, progress=progress
    )


@contextmanager
def _preparing_worker(engine: Engine) -> Iterator[Any]:
    """Yield a one-process pool for :class:`_PreparedAhead`, forked at once (``None``: none).

    Forked (:func:`stance.batching.can_fork`) before the corpus is read or a model loaded:
    the worker's copy of this process is small, and it runs regular expressions and pandas
    only, none of the libraries whose threads a fork could leave locked. Forked after the
    ingest instead, the full corpus's worker held ~680 MB of private copies of pages.
    """
    from concurrent.futures.process import BrokenProcessPool

    if engine != "local" or not can_fork():
        yield None
        return
    pool = fork_pool(1)
    try:
        try:
            pool.submit(int).result()  # the worker is forked on the first task: now
        except (OSError, BrokenProcessPool) as exc:  # no process to spare: segment here
            logger.warning("No segmenting worker (%s); segmenting in this process.", exc)
            yield None
        else:
            yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _PreparedAhead:
    """The partitions prepared (:func:`_prepare_partition`), the next one in a worker process.

    Segmenting and finding mentions is single-threaded Python; embedding and scoring keep
    every core busy. In one process a core waits while a partition is segmented; here the
    worker (:func:`_preparing_worker`) prepares partition ``k + 1`` while this process embeds
    and scores partition ``k``. The results are the same (each depends on its own articles
    alone). Without a worker, partitions are prepared here, in turn. Iterating yields each
    partition's :class:`_Prepared`, in order.
    """

    def __init__(self, parts: list[pd.DataFrame], settings: Settings, pool: Any = None) -> None:
        self.parts = parts
        self.settings = settings
        self.pool = pool

    def __len__(self) -> int:
        return len(self.parts)

    def __iter__(self) -> Iterator[_Prepared]:
        parts, settings, pool = self.parts, self.settings, self.pool
        if pool is None or len(parts) < 2:
            for part in parts:
                yield _prepare_partition(part, settings=settings)
            return
        from concurrent.futures.process import BrokenProcessPool

        ahead = pool.submit(_prepare_partition, parts[0], settings=settings)
        for k in range(len(parts)):
            if ahead is None:
                current = _prepare_partition(parts[k], settings=settings)
            else:
                try:
                    current = ahead.result()
                except BrokenProcessPool:  # the worker died (killed, out of memory)
                    logger.warning("The segmenting worker stopped; segmenting in this process.")
                    pool = ahead = None
                    current = _prepare_partition(parts[k], settings=settings)
            if pool is not None and k + 1 < len(parts):
                ahead = pool.submit(_prepare_partition, parts[k + 1], settings=settings)
            yield current


def _gather(
    parts: list[PartitionResult], spill: Spill | None = None
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Concatenate the partitions' sentences, vectors and mentions, in partition order.

    With ``spill`` the partitions' vectors are already in its files and the gathered vectors
    are one read-only memory map (:mod:`stance.spill`); otherwise one array in memory.
    """
    import numpy as np
    import pandas as pd

    def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
        # an empty frame's columns have no real dtype: leave it out unless all are empty
        full = [f for f in frames if len(f)] or frames[:1]
        if len(full) == 1:
            return full[0].reset_index(drop=True)
        return pd.concat(full, ignore_index=True)

    sentences = concat([p.sentences for p in parts])
    mentions = concat([p.mentions for p in parts])
    full = [p for p in parts if len(p.vectors)]
    if not full:
        return sentences, np.zeros((0, 384), dtype=np.float32), mentions
    if spill is not None:
        vectors = spill.join([p.vectors for p in full])
        for p in full:
            p.vectors = vectors[:0]
        return sentences, vectors, mentions
    # copied block by block, each partition's block released once copied: never two copies
    dim, dtype = full[0].vectors.shape[1], full[0].vectors.dtype
    vectors = np.empty((sum(len(p.vectors) for p in full), dim), dtype=dtype)
    lo = 0
    for p in full:
        n = len(p.vectors)
        vectors[lo : lo + n] = p.vectors
        p.vectors = vectors[:0]
        lo += n
    return sentences, vectors, mentions


def analyze(
    inputs: list[str | Path] | str | Path,
    *,
    sources: str | Path | dict[str, str] | None = None,
    config: str | Path | dict[str, Any] | Settings | None = None,
    out: str | Path | None = None,
    strict: bool | None = None,
    encoder: Encoder | None = None,
    scorer: Scorer | None = None,
    progress: bool = True,
    group_by: str = "source",
    engine: Engine = "local",
    scheduler: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Run the whole analysis.

    Args:
        inputs: Folders of ``.txt``/``.md``/``.html`` pages and/or CSV, JSONL or Parquet tables
            with a ``text`` column (optional ``source``, ``title``, ``date``, ``url``).
        sources: A CSV with columns ``file,source`` naming each input file's outlet, or a dict.
        config: A TOML file, a dict of overrides (merged over the defaults), settings from
            :func:`stance.config.load_settings`, or ``None`` for the defaults.
        out: A run directory to write the tables and ``run.json`` into; ``None`` writes nothing.
            Checked before any work; written beside it first and renamed into place.
        strict: Make every skipped input an error (default: ``ingest.strict`` of the config).
        encoder: The sentence embedder (default: the bundled all-MiniLM-L6-v2).
        scorer: A function like :func:`stance.score_mentions` (default: the shipped model).
        progress: Show progress bars.
        group_by: The article column compared across (default ``source``; e.g. ``bias_text``
            from an AllSides table or a column of the sources CSV). It takes the place of
            ``source`` in ``summary``, ``evidence`` and ``trends`` and names the pairs of
            ``contrasts`` (``{group_by}_a``, ``{group_by}_b``).
        engine: Where the partitions (``run.partition_articles`` articles each) are segmented,
            embedded and scored: ``"local"`` (this process, one after another) or ``"dask"``
            (one task per partition on a ``distributed`` cluster). The tables are the same.
        scheduler: With ``engine="dask"``, a scheduler address (``tcp://host:8786``); ``None``
            starts a ``LocalCluster`` for the run and closes it after.
        workers: With ``engine="dask"``: worker processes of the ``LocalCluster`` (default:
            one per core), or how many workers to wait for at ``scheduler`` (default: one).

    Returns:
        A dict of DataFrames (``articles``, ``sentences``, ``mentions``, ``summary``, ``topics``,
        ``topic_map``, ``units``, ``contrasts``, ``evidence``, ``aligned``, ``trends``), the sentence
        ``vectors`` and the ``run`` record.
    """
    import pandas as pd

    from stance import attribution, compare, embed, ingest
    from stance import run as run_dir
    from stance.engine import open_engine

    timer = _Timer()
    started = time.time()
    # the code that runs: read now, since a long run may end after the checkout has moved on
    commit = git_commit()
    # Settings, the models and caches they name, the output folder and the group column's
    # name are checked before any work.
    config_path = None
    if isinstance(config, Settings):
        settings, given_by = config, "The settings"
    elif isinstance(config, dict):
        settings, given_by = load_settings(None, overrides=config), "The config overrides"
    else:
        settings = load_settings(config)
        config_path = str(config) if config else None
        given_by = f"Config file {config_path!r}" if config_path else "The default config"
    check_before_run(settings, given_by, embed_model=encoder is None, stance_model=scorer is None)
    if out is not None:
        run_dir.check_out(out)
    compare.check_group_by(None, group_by)
    strict = settings.ingest.strict if strict is None else bool(strict)
    seed = settings.run.seed
    input_list = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)

    # A Dask cluster starts (or a scheduler is reached) before any work and is closed
    # once the partitions are back; on the local engine the worker that segments the next
    # partition is forked now, while this process is small.
    with open_engine(engine, scheduler, workers) as runner, _preparing_worker(engine) as worker:
        with timer.stage("ingest"):
            articles, report = ingest.ingest(
                input_list,
                sources=sources,
                rules=settings.ingest.boilerplate,
                strict=strict,
                exclude=out,
            )
        # An unknown group column is an error before the heavy stages.
        compare.check_group_by(articles, group_by)
        size = settings.run.partition_articles
        columns = articles[["article_id", "source", "text"]]
        parts = [columns.iloc[lo : lo + size] for lo in range(0, max(len(articles), 1), size)]
        # one partition in this process shows the stages' bars; otherwise one bar over partitions
        inner = progress and engine == "local" and len(parts) == 1
        # In this process, several one-thread batches at once use the cores; a Dask worker is
        # one single-threaded process (the cluster brings the parallelism).
        batch_workers = usable_cores() if engine == "local" else 1
        enc: Encoder = (
            encoder
            if encoder is not None
            else embed.SentenceEncoder(
                settings.embed.model,
                batch_size=settings.embed.batch_size,
                progress=inner,
                workers=batch_workers,
                precision=settings.embed.precision,
            )
        )
        if scorer is None:
            scorer, scorer_info = _model_scorer(
                settings.stance.model, settings.stance.cache_path(), batch_workers
            )
        else:
            scorer_info = _scorer_info(scorer)
        cache_dir = settings.embed.cache_path()
        # With several partitions, each one's vectors go to a temporary file as it comes back
        # and the gathered vectors are a memory map of one file (stance.spill): a large
        # corpus's vectors never sit in memory. The values, and so the tables, are the same.
        with Spill() if len(parts) > 1 else nullcontext() as spill:

            def spilled(result: PartitionResult) -> PartitionResult:
                if spill is not None and len(result.vectors):
                    result.vectors = spill.put(result.vectors)
                return result

            with timer.stage("partitions"):
                shared: dict[str, Any] = {
                    "encoder": enc,
                    "scorer": scorer,
                    "cache_dir": cache_dir,
                    "progress": inner,
                }
                if engine == "local" and len(parts) > 1:
                    # the next partition is segmented while this one is embedded and scored
                    results = runner.map(
                        _finish_partition,
                        _PreparedAhead(parts, settings, worker),
                        shared=shared,
                        progress=progress,
                        on_result=spilled,
                    )
                else:
                    results = runner.map(
                        analyze_partition,
                        parts,
                        shared={"settings": settings, **shared},
                        progress=progress and not inner,
                        on_result=spilled,
                    )
            # the stages' time summed over partitions (on Dask: worker time, not wall time)
            for name in ("segment", "embed", "mentions", "stance"):
                timer.seconds[name] = round(sum(r.seconds.get(name, 0.0) for r in results), 3)
            empty = sorted(a for r in results for a in r.empty)
            capped = {k: v for r in results for k, v in r.capped.items()}
            capped = {k: capped[k] for k in sorted(capped)}
            sentences, vectors, scored = _gather(results, spill)
    del results, parts, columns
    for aid in empty:
        path = articles.loc[articles["article_id"] == aid, "path"].iloc[0]
        report.warn(f"{path}: the article has no sentence after segmentation.")
    for aid, n in capped.items():
        report.warn(
            f"Article {aid}: {n} mention(s) past the first "
            f"{settings.mentions.max_per_article} were not scored (mentions.max_per_article)."
        )

    def encode(texts: list[str]) -> np.ndarray:
        return embed.embed_sentences(list(texts), enc, cache_dir=cache_dir)

    with timer.stage("topics"):
        # on the gathered corpus: the topic table's keywords, representative sentences and map
        # are whole-corpus statistics (the clustering itself sees a seeded sample)
        vectors_digest = _vectors_digest(vectors)
        topic_result = _topics_cached(
            sentences,
            vectors,
            settings,
            encode,
            articles=articles,
            progress=progress,
            cache_dir=cache_dir / "topics",
            key=_topics_key(sentences, vectors_digest, settings, articles, enc.model_id),
        )
        sentences["topic"] = text_values(topic_result.topic.astype(str))
    with timer.stage("attribution"):
        row = pd.MultiIndex.from_frame(sentences[["article_id", "sentence_id"]]).get_indexer(
            pd.MultiIndex.from_frame(scored[["article_id", "sentence_id"]])
        )
        scored["topic"] = sentences["topic"].to_numpy()[row].tolist()
        scored = scored[[*MENTION_COLUMNS, *MENTION_EXTRA_COLUMNS]].reset_index(drop=True)
        scored["stance_score"] = scored["stance_score"].astype("float64")
        attributed = scored
        if settings.stance.attribution:
            attributed = attribution.attribute(
                scored, reported_weight=settings.stance.reported_weight
            )
    with timer.stage("compare"):
        # like the topics: stored by a key of everything it reads, so a warm re-run skips it
        key = _compare_key(attributed, articles, sentences, vectors_digest, settings, group_by)
        tables = _cached(
            cache_dir / "compare" / f"{key}.pkl",
            "compare",
            lambda: compare.run_compare(
                attributed,
                articles,
                sentences,
                vectors,
                settings,
                progress=progress,
                group_by=group_by,
                workers=usable_cores(),
            ),
        )

    result: dict[str, Any] = {
        "articles": articles,
        "sentences": sentences[list(SENTENCE_COLUMNS)],
        "mentions": scored,
        "topics": topic_result.table,
        "topic_map": topic_result.coords,
        **tables,
        "vectors": vectors,
    }
    result["summary"] = result["summary"][[group_by, *SUMMARY_COLUMNS[1:]]]
    run = {
        "stance_version": _versions().get("stance"),
        "git_commit": commit,
        "inputs": [str(i) for i in input_list],
        "sources": str(sources)
        if isinstance(sources, (str, Path))
        else ("dict" if sources else None),
        "config_file": config_path,
        "group_by": group_by,
        "config": settings.to_dict(),
        "seeds": {
            "run": seed,
            "topics (UMAP, HDBSCAN fit sample, topic map)": seed,
            "compare (bootstrap, permutations)": f"per cell: default_rng([{seed}, crc32(key)...])",
        },
        "strict": strict,
        "engine": runner.info.engine,
        "scheduler": runner.info.scheduler,
        "workers": runner.info.workers,
        "partitions": runner.info.partitions,
        "versions": _versions(),
        "models": {"embedding": enc.model_id, "stance": scorer_info},
        "counts": {
            "articles": len(articles),
            "sources": int(articles["source"].nunique()),
            "sentences": len(sentences),
            "mentions": len(scored),
            "mentions_by_target": {
                k: int(v) for k, v in sorted(scored["target"].value_counts().items())
            },
            "mentions_by_kind": {
                k: int(v) for k, v in sorted(scored["kind"].value_counts().items())
            },
            "mentions_by_voice": {
                k: int(v) for k, v in sorted(attributed["voice"].value_counts().items())
            }
            if "voice" in attributed
            else {},
            "mentions_not_scored_by_article": capped,
            "topics": len(topic_result.table),
            "summary_cells": len(result["summary"]),
            "contrasts": len(result["contrasts"]),
            # pairs that can never be findings, left out past a bound (compare.contrasts)
            "contrasts_left_out": result["contrasts"].attrs.get("left_out", {}),
        },
        "ingest": report.to_dict(),
        "timings_s": timer.seconds,
        # the running maximum as each stage ended (on Dask, this process only: not the workers)
        "peak_rss_mib_after": timer.peak_rss_mib,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
    }
    result["run"] = run
    if out is not None:
        run_dir.write_run(result, out)
    return result
