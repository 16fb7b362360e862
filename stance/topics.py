"""Topics: assign every sentence a named topic, a discovered topic, or ``noise``.

Named topics come from the config (a description plus seed terms each). A sentence is scored
against every named topic by the cosine similarity between its *context vector* (the sentence,
its neighbours, its section, and its article: lede-weighted, plus the title) and the topic's
description, by its margin over the next-best named topic, and with a penalty when few
sentences of its section name one of the topic's seed terms (full penalty at none, none at a
``term_support`` share). A Viterbi decoder per article
turns these scores into labels: a topic persists along the sentence sequence unless the
evidence for another one (or for none) outweighs a switching cost, and switching is cheaper at
paragraph breaks and headings. So a section about the Aegean stays ``aegean`` where a sentence
names no place, and a one-line aside does not flip its paragraph. What no named topic claims
forms *segments* (runs of unclaimed sentences in an article); segments are clustered with
seeded UMAP + scikit-learn's deterministic HDBSCAN into discovered topics named by c-TF-IDF
keywords (small corpora cluster the unclaimed sentences instead), and every segment joins its
nearest discovered topic (noise is what is left when nothing was discovered). ``fit`` produces its labels by calling the same
code as ``assign`` on the fitted state, and ``assign`` works article by article with no
corpus-wide statistics, so assigning sentences to a fitted model gives exactly the labels
the fit gave, whatever else is in the batch.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stance.config import RunSettings, Settings, TopicSettings, as_settings, user_cache_dir
from stance.schema import NOISE_TOPIC, TOPIC_COLUMNS
from stance.spill import release

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

NOISE = NOISE_TOPIC
TABLE_COLUMNS: tuple[str, ...] = TOPIC_COLUMNS
SENTENCE_COLUMNS: tuple[str, ...] = ("article_id", "sentence_id", "sentence", "start", "end")

#: The defaults of the ``[topics]`` settings (declared in :class:`stance.config.TopicSettings`).
_DEFAULTS = TopicSettings()

# Emission scale: one unit of evidence = a cosine margin of 1 / _SCALE over the threshold.
_SCALE = 10.0
# Switching cost multipliers: inside a paragraph, at a paragraph break, before a heading.
_BOUNDARY_FACTOR = {0: 1.0, 1: 0.5, 2: 0.1}
_MAX_DISCOVERED_THRESHOLD = 0.8
_LEDE_DECAY = 8.0
# Segments end at headings too when true (measured: more, smaller topics, lower AMI).
_SEGMENT_AT_HEADINGS = False
# A segment joins a discovered topic if it is at least as close as this quantile of the
# cluster's members (0 = the farthest member).
_DISC_Q = 0.0
# When true, every segment no named topic claims joins its nearest discovered topic (the
# thresholds above are kept in ``thresholds_`` but not applied); noise is then only what is
# left when nothing was discovered. Measured on AllSides (2,000 articles): NMI +0.01, less
# noise, seed accuracy unchanged.
_JOIN_NEAREST = True
# Rows per block when the articles outside the fit sample are labelled (whole articles).
_ASSIGN_BLOCK = 20_000
# Fitted rows that map positions outside the fit sample are placed against (a seeded,
# evenly spread subset of the fit sample when it is larger): the neighbour search costs
# rows × anchors, and with all 50,000 fitted rows it was most of a large corpus's topics time.
_PLACE_ANCHORS = 10_000
# Weight of the title vector added to an article's (or segment's) lede-weighted mean.
_TITLE_W = 1.0
_STOP_EXTRA = {"said", "says", "say", "would", "could", "also", "one", "two", "new", "like", "us"}


@dataclass
class TopicResult:
    """What :func:`run_topics` returns.

    Attributes:
        topic: Topic id per sentence, aligned to the input sentences' index.
        table: One row per topic: ``topic, label, kind, keywords, size,
            representative_sentences``.
        coords: ``article_id, sentence_id, x, y``: a seeded 2-D map of the sentences.
        model: The fitted :class:`TopicModel`; ``model.assign(...)`` labels new sentences
            (``None`` when the pipeline reused a stored result of the same inputs).
    """

    topic: pd.Series
    table: pd.DataFrame
    coords: pd.DataFrame
    model: TopicModel | None
    info: dict[str, Any] = field(default_factory=dict)


def numba_cache_dir(default: str | Path | None = None) -> None:
    """Point numba's on-disk cache at a persistent folder unless the user set one.

    UMAP's first fit in a fresh process compiles for ~40 s; a persistent cache avoids paying
    it every run. The default is the user cache folder (``stance.config.user_cache_dir``), never
    the working directory. Must run before ``umap`` is first imported.

    umap-learn and pynndescent mark only some of their numba functions ``cache=True``; the rest
    (the layout epoch, ``smooth_knn_dist``, the membership strengths, NN-descent's helpers)
    were measured to recompile in every new process even with a warm cache: ~15 s for 900
    points, ~45 s for 13,000 (where UMAP switches to NN-descent). With a cache folder set,
    caching is switched on for those too (same results); only pynndescent's ``nn_descent``
    itself cannot be cached (~15 s per process).
    """
    if "NUMBA_CACHE_DIR" not in os.environ:
        path = Path(default) if default is not None else user_cache_dir() / "numba"
        try:
            path.mkdir(parents=True, exist_ok=True)
            os.environ["NUMBA_CACHE_DIR"] = str(path.resolve())
        except OSError:  # read-only working directory: compile in memory as usual
            return
    _cache_umap_kernels()


#: pynndescent functions numba refuses to cache ("uses dynamic globals"): asking only warns.
_UNCACHEABLE = frozenset({"nn_descent", "nn_descent_internal"})


@functools.cache
def _cache_umap_kernels() -> int:
    """Switch on numba's disk cache for umap's and pynndescent's uncached jitted functions."""
    import sys

    import umap  # noqa: F401  (imports pynndescent too)

    n = 0
    try:  # numba internals: if they change, compile in memory as before
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher

        for name, module in list(sys.modules.items()):
            if module is None or name.split(".")[0] not in ("umap", "pynndescent"):
                continue
            for attr, obj in list(vars(module).items()):
                if (
                    isinstance(obj, Dispatcher)
                    and isinstance(getattr(obj, "_cache", None), NullCache)
                    and attr not in _UNCACHEABLE
                ):
                    obj.enable_caching()
                    n += 1
    except Exception as exc:
        logger.debug("numba caching not extended to umap: %s", exc)
    return n


def precompile(dim: int = 384) -> float:
    """Compile UMAP's numba kernels into the on-disk cache ahead of the first analysis.

    ``make setup`` calls this once, so that a machine's first ``stance analyze`` does not
    spend ~60 s compiling (measured: topics 85 s on a fresh cache against 26 s with it, 300
    AllSides articles). It fits both UMAP configurations the topics stage uses (the
    clustering one and the 2-D map) on seeded random unit vectors, once on fewer points than
    UMAP's exact-neighbour limit (4,096) and once on more, so both neighbour searches are
    compiled. Numba specialises on array types, not sizes, so the kernels serve every corpus.
    Results are thrown away; nothing else is written.

    Args:
        dim: Vector dimension of the synthetic points (the encoder's; any works).

    Returns:
        Seconds spent.
    """
    import time

    import numpy as np

    t0 = time.perf_counter()
    numba_cache_dir()
    import umap

    rng = np.random.default_rng(0)
    for n in (300, 4200):
        x = _normalize(rng.standard_normal((n, dim)).astype(np.float32))
        for components, min_dist in ((_DEFAULTS.umap_components, 0.0), (2, 0.1)):
            umap.UMAP(
                n_neighbors=_DEFAULTS.umap_neighbors,
                n_components=components,
                metric="cosine",
                min_dist=min_dist,
                random_state=0,
                n_jobs=1,
            ).fit_transform(x)
    return time.perf_counter() - t0


def topic_options(config: Settings | dict[str, Any] | None) -> dict[str, Any]:
    """Return the ``[topics]`` settings of ``config`` (checked by :mod:`stance.config`).

    Raises:
        ValueError: Naming the key on an unknown option or a value of the wrong type or range.
    """
    return asdict(as_settings(config).topics)


def named_topics(config: Settings | dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Return the named topics of ``config`` as ``{id: {label, description, terms}}``, sorted.

    Raises:
        ValueError: When a topic has neither a description nor terms, or a malformed field.
    """
    named = as_settings(config).named_topics_dict()
    if not isinstance(named, dict):
        raise ValueError(
            f"The 'topics.named' table must map topic ids to tables. Got {named!r} instead."
        )
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(named):
        spec = named[name]
        if not isinstance(spec, dict):
            raise ValueError(
                f"The named topic 'topics.named.{name}' must be a table. Got {spec!r} instead."
            )
        if (
            name in (NOISE, "all")
            or not re.fullmatch(r"[a-z][a-z0-9_]*", name)
            or re.match(r"d\d\d_", name)
        ):
            raise ValueError(
                f"The named topic id 'topics.named.{name}' must be lower-case letters, digits and "
                "'_', start with a letter, not look like a discovered id ('d01_...') and not be "
                "'noise' or 'all'."
            )
        description = spec.get("description", "")
        terms = spec.get("terms", [])
        if not isinstance(description, str):
            raise ValueError(
                f"'topics.named.{name}.description' must be a string. Got {description!r} instead."
            )
        if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
            raise ValueError(
                f"'topics.named.{name}.terms' must be a list of non-empty strings. Got {terms!r} instead."
            )
        if not description.strip() and not terms:
            raise ValueError(
                f"The named topic 'topics.named.{name}' needs a 'description' or 'terms'."
            )
        label = spec.get("label", name)
        out[name] = {
            "label": str(label),
            "description": description.strip(),
            "terms": [t.strip() for t in terms],
        }
    return out


# --- helpers ---------------------------------------------------------------------------------


def _normalize(x: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _term_pattern(terms: list[str]) -> re.Pattern[str] | None:
    """One regex for a topic's seed terms: whole words, as written or in capitals, plurals."""
    variants = sorted({v for t in terms for v in (t, t.upper())}, key=lambda s: (-len(s), s))
    if not variants:
        return None
    alternation = "|".join(re.escape(v) for v in variants)
    return re.compile(rf"(?<!\w)(?:{alternation})(?:s|es)?(?!\w)")


def _article_groups(article_ids: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) row ranges of consecutive runs of the same article id."""
    import numpy as np

    ids = np.asarray(article_ids)
    if not len(ids):
        return []
    cuts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist(), len(ids)]
    return list(itertools.pairwise(cuts))


def _boundaries(sentences: pd.DataFrame, texts: dict[str, str]) -> np.ndarray:
    """Boundary level before each sentence: 0 none, 1 paragraph break, 2 heading / new article.

    A heading is a sentence alone on its line, at most 14 words, not ending in a full stop.
    Without the article text, a gap of more than one character between two sentences counts
    as a paragraph break.
    """
    import numpy as np

    n = len(sentences)
    level = np.zeros(n, dtype=np.int8)
    aids = sentences["article_id"].to_numpy()
    starts = sentences["start"].to_numpy()
    ends = sentences["end"].to_numpy()
    sents = sentences["sentence"].to_numpy()
    for lo, hi in _article_groups(aids):
        level[lo] = 2
        text = texts.get(aids[lo])
        for i in range(lo, hi):
            if text is not None and 0 <= starts[i] <= ends[i] <= len(text):
                before = text[ends[i - 1] : starts[i]] if i > lo else text[: starts[i]]
                after = text[ends[i] : starts[i + 1]] if i + 1 < hi else text[ends[i] :]
                para_before = i == lo or "\n" in before
                own_line = ("\n" in before or i == lo) and ("\n" in after or i + 1 == hi)
                if i > lo and para_before:
                    level[i] = max(level[i], 1)
                s = str(sents[i]).strip()
                if (
                    own_line
                    and 0 < len(s.split()) <= 14
                    and not s.endswith((".", "”", '"', ";", ","))
                ):
                    level[i] = 2
            elif i > lo and starts[i] - ends[i - 1] > 1:
                level[i] = max(level[i], 1)
    return level


def _context_vectors(
    vectors: np.ndarray,
    article_ids: np.ndarray,
    level: np.ndarray,
    window: int,
    article_weight: float,
    section_weight: float,
    titles: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Sentence + decaying neighbour window + section mean + article vector, normalised.

    The article vector weighs the lede more (sentence j weighs ``1 / (1 + j / 8)``: news
    puts the topic first) and adds the title's vector when the title is not already the
    first sentence. Windows and sections stop at headings (level 2); all sums run in float64
    in a fixed order, per article, so a sentence's context does not depend on other articles.
    """
    import numpy as np

    # one float64 array (the result); each article's rows are converted and normalised on
    # their own (row-wise, so the same bits as converting and normalising all at once)
    out = np.empty(vectors.shape, dtype=np.float64)
    local_weight = 1.0 - article_weight - section_weight
    for lo, hi in _article_groups(article_ids):
        block = np.asarray(vectors[lo:hi], dtype=np.float64)
        m = hi - lo
        lede = 1.0 / (1.0 + np.arange(m) / _LEDE_DECAY)
        art = _normalize((block * lede[:, None]).sum(axis=0))
        title = (titles or {}).get(article_ids[lo])
        if title is not None:
            art = _normalize(art + title)
        section = np.cumsum(level[lo:hi] == 2) - 1  # heading-delimited sections
        sec_mean = np.zeros_like(block)
        for s in np.unique(section):
            idx = section == s
            sec_mean[idx] = _normalize(block[idx].mean(axis=0))
        local = block.copy()
        for d in range(1, window + 1):
            w = 0.5**d
            if d >= m:
                break
            same_prev = section[d:] == section[:-d]
            local[d:] += w * block[:-d] * same_prev[:, None]
            local[:-d] += w * block[d:] * same_prev[:, None]
        out[lo:hi] = _normalize(
            local_weight * _normalize(local) + section_weight * sec_mean + article_weight * art
        )
    return out


def _viterbi(emissions: np.ndarray, switch: np.ndarray) -> np.ndarray:
    """Best state path for one article: sum of emissions minus switching costs.

    Args:
        emissions: (n, k) scores per sentence and state.
        switch: (n,) cost of changing state between sentence i-1 and i (switch[0] unused).

    Ties go to the lowest state index, so the path is deterministic.
    """
    import numpy as np

    n, k = emissions.shape
    score = emissions[0].copy()
    back = np.zeros((n, k), dtype=np.int64)
    for i in range(1, n):
        best_prev = int(np.argmax(score))
        stay = score
        move = score[best_prev] - switch[i]
        take_move = move > stay
        back[i] = np.where(take_move, best_prev, np.arange(k))
        score = np.where(take_move, move, stay) + emissions[i]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def _stable_hash(text: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def _with_str_ids(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """Return ``frame`` with its ``article_id`` column as strings (``None`` stays ``None``)."""
    if frame is None or "article_id" not in frame.columns:
        return frame
    return frame.assign(article_id=frame["article_id"].astype(str))


def _articles_of(
    articles: pd.DataFrame | None, codes: np.ndarray, names: np.ndarray
) -> pd.DataFrame | None:
    """Return the rows of ``articles`` whose id is among ``names[codes]`` (``None`` stays ``None``)."""
    import numpy as np

    if articles is None or "article_id" not in articles.columns:
        return articles
    keep = articles["article_id"].astype(str).isin(set(names[np.unique(codes)].tolist()))
    return articles[keep.to_numpy()]


def _top_k_stable(sims: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` largest values, largest first, ties by lower index.

    The same as ``np.argsort(-sims, axis=1, kind="stable")[:, :k]`` without sorting whole rows:
    a partition finds the candidates, and rows where the k-th value is tied beyond the first
    k fall back to the full stable sort.
    """
    import numpy as np

    n = sims.shape[1]
    if k >= n:
        return np.argsort(-sims, axis=1, kind="stable")[:, :k]
    cols, cand = _top_k_candidates(sims, k)
    pick = np.argpartition(cand, -k, axis=1)[:, -k:]
    part = np.take_along_axis(cols, pick, axis=1)
    vals = np.take_along_axis(cand, pick, axis=1)
    kth = vals.min(axis=1, keepdims=True)
    order = np.lexsort((part, -vals), axis=-1)
    out = np.take_along_axis(part, order, axis=1)
    tied = np.flatnonzero((sims >= kth).sum(axis=1) > k)
    if len(tied):
        out[tied] = np.argsort(-sims[tied], axis=1, kind="stable")[:, :k]
    return out


#: Columns per block when :func:`_top_k_candidates` narrows a row down to a few blocks.
_TOP_K_BLOCK = 128


def _top_k_candidates(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices per row that hold the row's ``k`` largest values, and their values.

    A row's ``k`` largest values lie in the ``k`` blocks of :data:`_TOP_K_BLOCK` columns with
    the largest maxima: a block holding one of them has a maximum at least the ``k``-th value,
    and only ties at that value (which :func:`_top_k_stable` detects over the whole row) let a
    block without one compete. So a maximum per block and a partition of ``k`` blocks' columns
    replace partitioning whole rows (on the full corpus the top 5 of 10,000 anchors had taken a
    third of the topics stage). Columns past the last one (padding) come with ``-inf``.
    """
    import numpy as np

    rows, n = sims.shape
    blocks = -(-n // _TOP_K_BLOCK)
    if blocks <= k:
        return np.broadcast_to(np.arange(n), (rows, n)), sims
    padded = np.full((rows, blocks * _TOP_K_BLOCK), -np.inf, dtype=sims.dtype)
    padded[:, :n] = sims
    best = np.argpartition(padded.reshape(rows, blocks, _TOP_K_BLOCK).max(axis=2), -k, axis=1)
    cols = (best[:, -k:, None] * _TOP_K_BLOCK + np.arange(_TOP_K_BLOCK)).reshape(rows, -1)
    return cols, np.take_along_axis(padded, cols, axis=1)


def _place_anchors(n: int, cap: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``cap`` of ``n`` rows: all of them, or a seeded random subset."""
    import numpy as np

    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, n]).choice(n, size=cap, replace=False))


def _fit_sample(codes: np.ndarray, names: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Boolean mask of whole articles, picked by a seeded hash of their id, up to ``cap`` rows.

    ``codes`` gives each row's article as an index into ``names``, the article ids. The pick
    depends on the article ids alone, not on the row order or partitioning.
    """
    import numpy as np

    if len(codes) <= cap:
        return np.ones(len(codes), dtype=bool)
    groups = _article_groups(codes)
    order = sorted(
        range(len(groups)), key=lambda g: _stable_hash(str(names[codes[groups[g][0]]]), seed)
    )
    mask = np.zeros(len(codes), dtype=bool)
    total = 0
    for g in order:
        lo, hi = groups[g]
        if total + (hi - lo) > cap:
            continue
        mask[lo:hi] = True
        total += hi - lo
    return mask


#: Sentences counted per chunk by :func:`_ctfidf_keywords`.
_COUNT_CHUNK = 100_000


def _ctfidf_keywords(
    texts: Sequence[str], labels: Sequence[str] | np.ndarray, n_keywords: int
) -> dict[str, list[str]]:
    """Class-based TF-IDF (BERTopic's formula) keywords per label, over all labels at once."""
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    stop = sorted(ENGLISH_STOP_WORDS | _STOP_EXTRA)
    # Counted per sentence and summed per class: the same counts as one document per class
    # (a token never spans the space that joined them). A chunk of sentences at a time, its
    # class-by-term counts added into one table: never a whole corpus's tokens in memory.
    vocabulary: dict[str, int] = {}
    cls_parts: list[np.ndarray] = []
    term_parts: list[np.ndarray] = []
    count_parts: list[np.ndarray] = []
    for lo in range(0, len(texts), _COUNT_CHUNK):
        chunk = list(map(str, np.asarray(texts[lo : lo + _COUNT_CHUNK], dtype=object)))
        codes = np.array([index[c] for c in labels[lo : lo + _COUNT_CHUNK]], dtype=np.int64)
        vec = CountVectorizer(
            lowercase=True,
            stop_words=stop,
            token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z\-]{2,}\b",
            min_df=1,
        )
        try:
            per_text = vec.fit_transform(chunk)
        except ValueError:  # no word in this chunk
            continue
        member = sparse.csr_matrix(
            (np.ones(len(chunk)), (codes, np.arange(len(chunk)))), shape=(len(classes), len(chunk))
        )
        chunk_counts = (member @ per_text).tocoo()
        names = vec.get_feature_names_out()
        to_global = np.array([vocabulary.setdefault(str(w), len(vocabulary)) for w in names])
        cls_parts.append(chunk_counts.row.astype(np.int64))
        term_parts.append(to_global[chunk_counts.col])
        count_parts.append(chunk_counts.data)
    if not vocabulary:  # empty vocabulary
        return {c: [] for c in classes}
    # columns in alphabetical order, as one CountVectorizer over all texts would have them
    words = sorted(vocabulary)
    column = np.empty(len(words), dtype=np.int64)
    column[[vocabulary[w] for w in words]] = np.arange(len(words))
    counts = (
        sparse.coo_matrix(
            (
                np.concatenate(count_parts),
                (np.concatenate(cls_parts), column[np.concatenate(term_parts)]),
            ),
            shape=(len(classes), len(words)),
        )
        .toarray()
        .astype(np.float64)
    )
    vocab = np.array(words, dtype=object)
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    avg_words = counts.sum() / max(len(classes), 1)
    idf = np.log(1.0 + avg_words / np.maximum(counts.sum(axis=0), 1.0))
    scores = tf * idf
    out = {}
    for row, c in enumerate(classes):
        # sort by score desc, then alphabetically: deterministic ties
        order = np.lexsort((vocab, -np.round(scores[row], 12)))
        out[c] = [str(vocab[j]) for j in order[:n_keywords] if scores[row, j] > 0]
    return out


def topic_title(keywords: list[str], texts: Iterable[str], n: int = 3) -> str:
    """Return a short readable title from c-TF-IDF keywords, e.g. "Lavrov / Syria / Idlib".

    The first ``n`` keywords that are not part of an earlier one (so "syria" does not follow
    "syrian"), each written as it is most often written in the topic's sentences (proper
    nouns and acronyms keep their capitals) and capitalised.

    Args:
        keywords: Lower-case keywords, most distinctive first.
        texts: The topic's sentences.
        n: Keywords in the title.
    """
    from collections import Counter

    chosen: list[str] = []
    for word in keywords:
        if any(word in c or c in word for c in chosen):
            continue
        chosen.append(word)
        if len(chosen) == n:
            break
    if not chosen:
        return ""
    pattern = re.compile(
        r"(?<![\w-])(" + "|".join(re.escape(w) for w in chosen) + r")(?![\w-])", re.IGNORECASE
    )
    forms: dict[str, Counter[str]] = {w: Counter() for w in chosen}
    for text in texts:
        for m in pattern.finditer(text):
            forms[m.group(0).lower()][m.group(0)] += 1
    out = []
    for w in chosen:
        # most frequent written form; ties: the alphabetically first (capitals sort first)
        best = min(forms[w].items(), key=lambda kv: (-kv[1], kv[0]))[0] if forms[w] else w
        out.append(best[0].upper() + best[1:])
    return " / ".join(out)


# --- the estimator ---------------------------------------------------------------------------


class TopicModel:
    """Named + discovered sentence topics with context-aware, deterministic assignment.

    Parameters are stored unchanged; see :class:`stance.config.TopicSettings` (``stance config``)
    for their meaning. ``named`` maps topic ids to ``{label, description, terms}``.

    Learned attributes (after :meth:`fit`): ``named_ids_``, ``named_vectors_``,
    ``discovered_ids_``, ``centroids_``, ``thresholds_``, ``keywords_``, ``labels_`` (topic per
    fitted sentence), ``table_``, ``coords_`` and ``fit_mask_`` (which rows the clustering saw).
    """

    def __init__(
        self,
        named: dict[str, dict[str, Any]] | None = None,
        *,
        named_threshold: float = _DEFAULTS.named_threshold,
        context_window: int = _DEFAULTS.context_window,
        article_weight: float = _DEFAULTS.article_weight,
        section_weight: float = _DEFAULTS.section_weight,
        term_weight: float = _DEFAULTS.term_weight,
        switch_penalty: float = _DEFAULTS.switch_penalty,
        margin_weight: float = _DEFAULTS.margin_weight,
        term_gate: float = _DEFAULTS.term_gate,
        term_support: float = _DEFAULTS.term_support,
        use_titles: bool = _DEFAULTS.use_titles,
        discover: bool = _DEFAULTS.discover,
        min_cluster_size: int = _DEFAULTS.min_cluster_size,
        cluster_selection: str = _DEFAULTS.cluster_selection,
        umap_neighbors: int = _DEFAULTS.umap_neighbors,
        umap_components: int = _DEFAULTS.umap_components,
        max_fit_sentences: int = _DEFAULTS.max_fit_sentences,
        n_keywords: int = _DEFAULTS.n_keywords,
        n_representative: int = _DEFAULTS.n_representative,
        max_share: float = _DEFAULTS.max_share,
        rename: dict[str, str] | None = None,
        merge: dict[str, str] | None = None,
        seed: int = RunSettings.seed,
        coords: bool = True,
        progress: bool = False,
    ) -> None:
        self.named = named
        self.named_threshold = named_threshold
        self.context_window = context_window
        self.article_weight = article_weight
        self.section_weight = section_weight
        self.term_weight = term_weight
        self.switch_penalty = switch_penalty
        self.margin_weight = margin_weight
        self.term_gate = term_gate
        self.term_support = term_support
        self.use_titles = use_titles
        self.discover = discover
        self.min_cluster_size = min_cluster_size
        self.cluster_selection = cluster_selection
        self.umap_neighbors = umap_neighbors
        self.umap_components = umap_components
        self.max_fit_sentences = max_fit_sentences
        self.n_keywords = n_keywords
        self.n_representative = n_representative
        self.max_share = max_share
        self.rename = rename
        self.merge = merge
        self.seed = seed
        self.coords = coords
        self.progress = progress

    @classmethod
    def from_config(cls, config: Settings | dict[str, Any] | None, **kwargs: Any) -> TopicModel:
        """Build a model from settings (``topics``, ``topics.named``, ``run.seed``)."""
        settings = as_settings(config)
        return cls(
            named_topics(settings),
            seed=settings.run.seed,
            **{**asdict(settings.topics), **kwargs},
        )

    # -- features --

    def _log(self, msg: str, *args: Any) -> None:
        if self.progress:
            logger.info(msg, *args)

    def _title_vectors(
        self, sentences: pd.DataFrame, articles: pd.DataFrame | None
    ) -> dict[str, np.ndarray]:
        """Title vectors of articles whose title is not already their first sentence."""
        import numpy as np

        if articles is None or "title" not in articles.columns or self._encode is None:
            return {}
        first = sentences.groupby("article_id", sort=False)["sentence"].first()
        wanted: dict[str, str] = {}
        for aid, title in zip(articles["article_id"].astype(str), articles["title"], strict=True):
            t = str(title).strip() if isinstance(title, str) else ""
            if not t or t in ("None", "nan") or aid not in first.index:
                continue
            lead = str(first[aid]).strip()
            if lead.startswith(t[:40]) or t.startswith(lead[:40]):
                continue  # the headline is already the article's first sentence
            wanted[aid] = t
        new = sorted({t for t in wanted.values() if t not in self._title_cache})
        if new:
            vecs = _normalize(np.asarray(self._encode(new), dtype=np.float64))
            self._title_cache.update(zip(new, vecs, strict=True))
        return {aid: self._title_cache[t] for aid, t in wanted.items()}

    def _features(
        self, sentences: pd.DataFrame, vectors: np.ndarray, articles: pd.DataFrame | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Context vectors, boundary levels and article ids, after validating the inputs."""
        import numpy as np

        missing = [c for c in SENTENCE_COLUMNS if c not in sentences.columns]
        if missing:
            raise ValueError(
                f"The sentences table is missing column(s) {missing}. Got {list(sentences.columns)} instead."
            )
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(sentences):
            raise ValueError(
                f"The 'vectors' array must have one row per sentence ({len(sentences)}). "
                f"Got shape {vectors.shape} instead."
            )
        texts: dict[str, str] = {}
        if articles is not None and {"article_id", "text"} <= set(articles.columns):
            texts = {
                str(a): str(t)
                for a, t in zip(articles["article_id"], articles["text"], strict=True)
            }
        sentences = _with_str_ids(sentences)
        articles = _with_str_ids(articles)
        level = _boundaries(sentences, texts)
        aids = sentences["article_id"].to_numpy()
        titles = self._title_vectors(sentences, articles) if self.use_titles else {}
        self._titles_now = titles
        ctx = _context_vectors(
            vectors,
            aids,
            level,
            self.context_window,
            self.article_weight,
            self.section_weight,
            titles,
        )
        return ctx, level, aids

    def _term_hits(
        self, sentences: pd.DataFrame, level: np.ndarray, aids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Seed-term evidence per sentence and named topic.

        Returns the hits spread over the neighbour window, and the topic's *support*: the share
        of sentences in the sentence's section (heading-delimited span) that name one of its
        terms.
        """
        import numpy as np

        k = len(self.named_ids_)
        raw = np.zeros((len(sentences), k), dtype=np.float64)
        texts = sentences["sentence"].astype(str).tolist()
        for j, name in enumerate(self.named_ids_):
            pattern = self._patterns_[name]
            if pattern is None:
                continue
            raw[:, j] = [min(len(pattern.findall(t)), 2) for t in texts]
        out = raw.copy()
        support = np.zeros_like(raw)
        named = raw > 0
        for lo, hi in _article_groups(aids):
            section = np.cumsum(level[lo:hi] == 2)
            block = raw[lo:hi]
            for s in np.unique(section):
                idx = np.flatnonzero(section == s) + lo
                support[idx] = named[idx].mean(axis=0)
            for d in range(1, self.context_window + 1):
                if d >= hi - lo:
                    break
                w = 0.5**d
                same = (section[d:] == section[:-d])[:, None]
                out[lo + d : hi] += w * block[:-d] * same
                out[lo : hi - d] += w * block[d:] * same
        return out, support

    def _emissions(self, ctx: np.ndarray, hits: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Scores per sentence for [named..., other]; "other" scores 0.

        Named topic t: ``SCALE * (cos(context, description) - named_threshold
        + term_weight * window hits + margin_weight * (cos - best other named cos)
        - term_gate * shortfall)``, where the shortfall is 1 when no sentence of the section
        names a seed term of t, falling linearly to 0 at a support of ``term_support``.
        """
        import numpy as np

        parts = []
        k = len(self.named_ids_)
        if k:
            window_hits, support = hits
            sims = np.round(ctx @ self.named_vectors_.T, 10)
            score = sims - self.named_threshold + self.term_weight * window_hits
            if k > 1 and self.margin_weight:
                top2 = np.sort(sims, axis=1)[:, -2:]
                best_other = np.where(sims >= top2[:, [1]], top2[:, [0]], top2[:, [1]])
                score = score + self.margin_weight * (sims - best_other)
            if self.term_support > 0:
                shortfall = 1.0 - np.minimum(support / self.term_support, 1.0)
            else:
                shortfall = (support == 0).astype(np.float64)
            score = score - self.term_gate * shortfall
            parts.append(_SCALE * score)
        parts.append(np.zeros((len(ctx), 1)))
        return np.concatenate(parts, axis=1)

    def _decode(self, emissions: np.ndarray, level: np.ndarray, aids: np.ndarray) -> np.ndarray:
        import numpy as np

        factors = np.array([_BOUNDARY_FACTOR[k] for k in range(3)])
        switch = self.switch_penalty * _SCALE * factors[level.astype(np.int64)]
        path = np.empty(len(aids), dtype=np.int64)
        for lo, hi in _article_groups(aids):
            path[lo:hi] = _viterbi(emissions[lo:hi], switch[lo:hi])
        return path

    # -- public API --

    def fit(
        self,
        sentences: pd.DataFrame,
        vectors: np.ndarray,
        encode: Callable[[list[str]], np.ndarray],
        *,
        articles: pd.DataFrame | None = None,
    ) -> TopicModel:
        """Learn named-topic prototypes and discovered topics, and label ``sentences``.

        Args:
            sentences: Columns ``article_id, sentence_id, sentence, start, end`` in article
                order, then sentence order.
            vectors: One L2-normalised embedding per sentence row.
            encode: Embeds extra texts (the topic descriptions) with the same model.
            articles: Optional ``article_id, text``; enables paragraph and heading detection.

        Returns:
            self

        Raises:
            ValueError: When there are no named topics and discovery is off or impossible.
        """
        import numpy as np
        import pandas as pd

        named = self.named or {}
        self.named_ = named
        # kept to embed the titles of articles passed to assign() later
        self._encode: Callable[[list[str]], np.ndarray] | None = encode
        self._title_cache: dict[str, np.ndarray] = {}
        self.named_ids_ = list(named)
        n = len(sentences)
        if not self.named_ids_ and (not self.discover or n < 2 * self.min_cluster_size):
            raise ValueError(
                "The config's 'topics.named' table defines no topics and nothing can be discovered "
                f"('topics.discover' = {self.discover}, {n} sentences, 'topics.min_cluster_size' = "
                f"{self.min_cluster_size}). Define a named topic or enable discovery."
            )
        self._patterns_ = {k: _term_pattern(v.get("terms", [])) for k, v in named.items()}
        if self.named_ids_:
            desc = [
                named[k]["description"] or ", ".join(named[k]["terms"]) for k in self.named_ids_
            ]
            dvec = np.asarray(encode(desc), dtype=np.float64)
            self.named_vectors_ = _normalize(dvec)
        else:
            self.named_vectors_ = np.zeros((0, np.asarray(vectors).shape[1]))
        self.discovered_ids_: list[str] = []
        self.centroids_ = np.zeros((0, np.asarray(vectors).shape[1]))
        self.thresholds_ = np.zeros(0)
        self.keywords_: dict[str, list[str]] = {}

        from tqdm.auto import tqdm

        # A bar over the fit's stages (the clustering and the decoding passes take the time);
        # it only reports progress.
        steps = ["features", "named topics", "discovery", "assignment", "table", "map"]
        bar = tqdm(total=len(steps), desc="topics", disable=not self.progress, leave=False)
        bar.set_postfix_str(steps[0])

        vectors = np.asarray(vectors)
        # each row's article as a code into the ids: 8 bytes a row, where an array of the ids
        # held a Python string per row (114 MiB at the full corpus's size: benchmarks/topics_memory.py)
        codes, uniques = pd.factorize(sentences["article_id"].astype(str))
        names = np.asarray(uniques, dtype=object)
        fit_mask = _fit_sample(codes, names, self.max_fit_sentences, self.seed)
        whole = bool(fit_mask.all())
        if whole:
            fit_sentences, fit_vectors, fit_articles = sentences, vectors, articles
        else:
            # Fitted on the sample alone: every decision below reads only its rows (whole
            # articles), and every feature is computed per article, so the state is the one a
            # fit over all rows would reach. The other articles are labelled afterwards, a
            # block at a time (``_label_rest``): memory stays bounded by the sample and a block.
            if self.use_titles:  # every title embedded in one call, as in a single pass
                self._title_vectors(_with_str_ids(sentences), _with_str_ids(articles))
            rows = np.flatnonzero(fit_mask)
            fit_sentences, fit_vectors = sentences.iloc[rows], vectors[rows]
            release(vectors)  # vectors kept on disk (stance.spill): only the sample stays
            fit_articles = _articles_of(articles, codes[rows], names)
        self.fit_mask_ = np.ones(len(fit_sentences), dtype=bool)
        ctx, level, aids = self._features(fit_sentences, fit_vectors, fit_articles)
        hits = self._term_hits(fit_sentences, level, aids)
        _advance(bar, steps)

        # pass 1: named topics vs. "other" (exactly what assign() computes first)
        path = self._decode(self._emissions(ctx, hits), level, aids)
        other = (path == len(self.named_ids_)) & self.fit_mask_
        self._log(
            "topics: %d of %d sentences claimed by named topics",
            int((path < len(self.named_ids_)).sum()),
            n,
        )
        _advance(bar, steps)
        if self.discover and other.sum() >= 2 * self.min_cluster_size:
            self._discover(fit_vectors, level, aids, other)
        _advance(bar, steps)

        # the final labels are exactly what assign() gives. Discovered topics that (almost)
        # nobody joins are dropped and the labels recomputed until nothing changes.
        # A discovered topic holding more than max_share of the sentences is split first.
        min_size = max(2, self.min_cluster_size // 2)
        for _ in range(10):
            labels = self._assign_features(fit_vectors, ctx, hits, level, aids)
            sizes = [int((labels[self.fit_mask_] == d).sum()) for d in self.discovered_ids_]
            if self._split_largest(fit_vectors, level, aids, labels, sizes):
                continue
            keep = [i for i, size in enumerate(sizes) if size >= min_size]
            if len(keep) == len(self.discovered_ids_):
                break
            self.discovered_ids_ = [self.discovered_ids_[i] for i in keep]
            self.centroids_ = self.centroids_[keep]
            self.thresholds_ = self.thresholds_[keep]
        labels = self._name_discovered(fit_sentences, labels)
        labels = self._merged(labels)
        self.fit_mask_ = fit_mask
        xy = None
        if self.coords:
            xy = np.zeros((n, 2))
            xy[fit_mask] = self._map(ctx)
        if whole:
            own = self._own_similarity(ctx, labels)
        else:
            labels, own = self._label_rest(
                sentences, vectors, articles, labels, ctx, xy, codes, names
            )
        del ctx
        release(vectors)
        self.labels_ = pd.Series(labels, index=sentences.index, name="topic")
        _advance(bar, steps)
        self.table_ = self._table(sentences, labels, own)
        _advance(bar, steps)
        self.coords_ = self._coords_frame(sentences, xy) if xy is not None else None
        _advance(bar, steps)
        bar.close()
        return self

    def _label_rest(
        self,
        sentences: pd.DataFrame,
        vectors: np.ndarray,
        articles: pd.DataFrame | None,
        fit_labels: np.ndarray,
        fit_ctx: np.ndarray,
        xy: np.ndarray | None,
        codes: np.ndarray,
        names: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Label the articles outside the fit sample, a block of whole articles at a time.

        Each block goes through :meth:`assign`'s computation; its map positions (``xy``,
        filled in place) come from its nearest fitted neighbours. Returns the labels of all
        rows (the fit's own for the sample) and each row's similarity to its topic's vector.
        ``codes`` gives every row's article as an index into ``names``, the article ids.

        The labels are an object array whose rows share one string per topic: at the full
        corpus's 1.7 M rows 13 MiB, where a string per row and then a fixed-width text copy
        kept 119 MiB (237 MiB while built; ``benchmarks/topics_memory.py``).
        """
        import numpy as np

        mask = self.fit_mask_
        labels = np.empty(len(sentences), dtype=object)
        own = np.zeros(len(sentences))
        shared: dict[str, str] = {}

        def one_each(values: np.ndarray) -> list[str]:
            return [shared.setdefault(v, v) for v in values.tolist()]

        labels[mask] = one_each(fit_labels)
        own[mask] = self._own_similarity(fit_ctx, fit_labels)
        ref_xy = xy[mask] if xy is not None else None
        if ref_xy is not None:
            anchors = _place_anchors(len(fit_ctx), _PLACE_ANCHORS, self.seed)
            anchor_ctx = np.ascontiguousarray(fit_ctx[anchors], dtype=np.float32)
            anchor_xy = ref_xy[anchors]
        # blocks of whole articles of up to _ASSIGN_BLOCK rows (an article longer than that
        # is a block of its own)
        spans: list[tuple[int, int]] = []
        for lo, hi in _article_groups(codes):
            if spans and hi - spans[-1][0] <= _ASSIGN_BLOCK:
                spans[-1] = (spans[-1][0], hi)
            else:
                spans.append((lo, hi))
        for lo, hi in spans:
            rest = np.flatnonzero(~mask[lo:hi]) + lo
            if len(rest):
                part = sentences.iloc[rest]
                ctx, level, aids = self._features(
                    part, vectors[rest], _articles_of(articles, codes[rest], names)
                )
                hits = self._term_hits(part, level, aids)
                block = self._merged(
                    self._assign_features(np.asarray(vectors[rest]), ctx, hits, level, aids)
                )
                labels[rest] = one_each(block)
                own[rest] = self._own_similarity(ctx, block)
                if xy is not None and ref_xy is not None:
                    xy[rest] = self._place(ctx, anchor_ctx, anchor_xy)
                release(vectors)
        return labels, own

    def _topic_vectors(self) -> dict[str, np.ndarray]:
        """Each topic's vector: a named topic's description, a discovered topic's centroid."""
        vecs = {k: self.named_vectors_[i] for i, k in enumerate(self.named_ids_)}
        vecs.update({k: self.centroids_[i] for i, k in enumerate(self.discovered_ids_)})
        return vecs

    def _own_similarity(self, ctx: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Each row's cosine to its topic's vector (named description or centroid), rounded."""
        import numpy as np

        vecs = self._topic_vectors()
        out = np.zeros(len(labels))
        for t in sorted(set(labels.tolist()) & set(vecs)):
            idx = np.flatnonzero(labels == t)
            out[idx] = np.round(ctx[idx] @ vecs[t], 10)
        return out

    def _split_largest(
        self,
        vectors: np.ndarray,
        level: np.ndarray,
        aids: np.ndarray,
        labels: np.ndarray,
        sizes: list[int],
    ) -> bool:
        """Split the largest discovered topic if it holds more than ``max_share`` of the fit.

        Its segments are re-clustered by seeded k-means, ``k = ceil(share / max_share)``; the
        k centroids (and thresholds, as in :meth:`_discover`) take its place. Returns whether
        a topic was split.
        """
        import math

        import numpy as np
        from sklearn.cluster import KMeans

        n = int(self.fit_mask_.sum())
        if not sizes or n == 0 or self.max_share >= 1.0:
            return False
        i = int(np.argmax(sizes))
        share = sizes[i] / n
        if share <= self.max_share:
            return False
        d = self.discovered_ids_[i]
        _, _, seg_vectors = self._segments(vectors, (labels == d) & self.fit_mask_, level, aids)
        k = min(math.ceil(share / self.max_share), len(seg_vectors))
        if k < 2:
            return False
        clusters = KMeans(n_clusters=k, random_state=self.seed, n_init=4).fit_predict(
            seg_vectors.astype(np.float64)
        )
        ids = sorted(set(clusters.tolist()), key=lambda c: (-int((clusters == c).sum()), c))
        centroids, thresholds = [], []
        for c in ids:
            members = seg_vectors[clusters == c]
            centroid = _normalize(members.mean(axis=0))
            centroids.append(centroid)
            sims = np.round(members @ centroid, 10)
            thresholds.append(float(min(np.quantile(sims, _DISC_Q), _MAX_DISCOVERED_THRESHOLD)))
        self._log("topics: split %s (%.0f%% of the sentences) into %d", d, 100 * share, k)
        self.discovered_ids_ = [
            *self.discovered_ids_[:i],
            *(f"{d}s{j + 1}" for j in range(k)),
            *self.discovered_ids_[i + 1 :],
        ]
        self.centroids_ = np.vstack([self.centroids_[:i], *centroids, self.centroids_[i + 1 :]])
        self.thresholds_ = np.concatenate(
            [self.thresholds_[:i], thresholds, self.thresholds_[i + 1 :]]
        )
        return True

    def _merged(self, labels: np.ndarray) -> np.ndarray:
        """Labels with the ``merge`` setting applied (topic id → the topic it joins)."""
        import numpy as np

        if not self.merge:
            return labels
        return np.array([self.merge.get(t, t) for t in labels], dtype=object).astype(str)

    def _name_discovered(self, sentences: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
        """Rename discovered topics ``dNN_<keyword>_<keyword>`` from their final members.

        The state order (and so every assignment) is unchanged; only the names change.
        """
        import numpy as np

        texts = sentences["sentence"].astype(str).to_numpy()[self.fit_mask_]
        kw = _ctfidf_keywords(list(texts), list(labels[self.fit_mask_]), self.n_keywords)
        rename = {}
        for i, old in enumerate(self.discovered_ids_):
            words = kw.get(old, [])
            slug = "_".join(w for w in (re.sub(r"[^a-z0-9]+", "", w) for w in words[:2]) if w)
            rename[old] = f"d{i + 1:02d}_{slug}" if slug else f"d{i + 1:02d}"
            self.keywords_[rename[old]] = words
        self.discovered_ids_ = [rename[d] for d in self.discovered_ids_]
        self.keywords_ = {d: self.keywords_[d] for d in self.discovered_ids_}
        return np.array([rename.get(t, t) for t in labels], dtype=object).astype(str)

    def _segments(
        self, vectors: np.ndarray, mask: np.ndarray, level: np.ndarray, aids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Segments of the rows in ``mask`` and one vector per segment.

        A segment is a run of consecutive masked sentences of one article; it also ends at a
        heading. Its vector weighs the segment's first sentences more (``1 / (1 + j / 8)``)
        and adds the article title's vector when the title is not the first sentence.

        Returns:
            rows (indices of the masked rows), segment id per row, segment vectors.
        """
        import numpy as np

        rows = np.flatnonzero(mask)
        new_seg = np.ones(len(rows), dtype=bool)
        new_seg[1:] = (
            (rows[1:] != rows[:-1] + 1)
            | (aids[rows[1:]] != aids[rows[:-1]])
            | ((level[rows[1:]] == 2) if _SEGMENT_AT_HEADINGS else False)
        )
        seg = np.cumsum(new_seg) - 1
        starts = np.flatnonzero(new_seg)
        pos = np.arange(len(rows)) - starts[seg] if len(rows) else np.zeros(0)
        weights = 1.0 / (1.0 + pos / _LEDE_DECAY)
        out = np.zeros((len(starts), vectors.shape[1]))
        weighted = np.asarray(vectors[rows], dtype=np.float64)
        weighted *= weights[:, None]
        np.add.at(out, seg, weighted)
        out = _normalize(out)
        titles = self._titles_now
        if titles:
            for k, start in enumerate(starts):
                title = titles.get(aids[rows[start]])
                if title is not None:
                    out[k] = out[k] + _TITLE_W * title
            out = _normalize(out)
        return rows, seg, out

    def _discover(
        self, vectors: np.ndarray, level: np.ndarray, aids: np.ndarray, other: np.ndarray
    ) -> None:
        """Seeded UMAP + HDBSCAN over what no named topic claimed.

        The units clustered are *segments* (runs of unclaimed sentences, see
        :meth:`_segments`) when there are at least ``4 * min_cluster_size`` of them, so a
        discovered topic is a theme that recurs across articles, not one article's
        fingerprint. Smaller corpora cluster the unclaimed sentences by their local context
        (sentence and neighbours) instead. A cluster's centroid is the mean of its members;
        its threshold, how far its outer members lie from it.
        """
        import numpy as np
        from sklearn.cluster import HDBSCAN

        rows, _, seg_vectors = self._segments(vectors, other, level, aids)
        if len(seg_vectors) >= 4 * self.min_cluster_size:
            units = seg_vectors
            self._log("topics: clustering %d unclaimed segments", len(units))
        else:
            units = _context_vectors(vectors, aids, level, self.context_window, 0.0, 0.0)[rows]
            self._log("topics: clustering %d unclaimed sentences", len(units))
        m = len(units)
        if m < max(self.min_cluster_size, 3):
            return
        if m > self.umap_neighbors + 1 and m > self.umap_components + 1:
            numba_cache_dir()
            import umap

            reducer = umap.UMAP(
                n_neighbors=min(self.umap_neighbors, m - 1),
                n_components=self.umap_components,
                metric="cosine",
                min_dist=0.0,
                random_state=self.seed,
                n_jobs=1,
            )
            low = reducer.fit_transform(units.astype(np.float32))
        else:
            low = units
        clusters = HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            cluster_selection_method=self.cluster_selection,
            copy=True,
        ).fit_predict(low)
        ids = sorted(set(clusters.tolist()) - {-1})
        if not ids:
            return
        # order clusters by size (desc), then by their first member: independent of HDBSCAN ids
        first = {c: int(np.flatnonzero(clusters == c)[0]) for c in ids}
        ids.sort(key=lambda c: (-int((clusters == c).sum()), first[c]))
        centroids, thresholds = [], []
        for c in ids:
            members = units[clusters == c]
            centroid = _normalize(members.mean(axis=0))
            sims = np.round(members @ centroid, 10)
            centroids.append(centroid)
            # a segment joins if it is as close as the cluster's outer members; capped so a
            # very tight cluster still admits near-duplicates of its members
            thresholds.append(float(min(np.quantile(sims, _DISC_Q), _MAX_DISCOVERED_THRESHOLD)))
        # provisional ids, renamed from the final members' keywords
        self.discovered_ids_ = [f"d{i + 1:02d}" for i in range(len(ids))]
        self.centroids_ = np.vstack(centroids)
        self.thresholds_ = np.asarray(thresholds)
        self._log("topics: %d discovered topics", len(ids))

    def _assign_features(
        self,
        vectors: np.ndarray,
        ctx: np.ndarray,
        hits: tuple[np.ndarray, np.ndarray],
        level: np.ndarray,
        aids: np.ndarray,
    ) -> np.ndarray:
        """Topic per sentence.

        Named topics come from the Viterbi pass; each unclaimed segment then joins its
        nearest discovered topic (with ``_JOIN_NEAREST`` off: only when it is close enough,
        else it is noise).
        """
        import numpy as np

        k = len(self.named_ids_)
        path = self._decode(self._emissions(ctx, hits), level, aids)
        labels = np.array([*self.named_ids_, NOISE], dtype=object)[path]
        if self.discovered_ids_:
            rows, seg, seg_vectors = self._segments(vectors, path == k, level, aids)
            sims = np.round(seg_vectors @ self.centroids_.T, 10)
            best = np.argmax(sims, axis=1)
            if _JOIN_NEAREST:
                ok = np.ones(len(best), dtype=bool)
            else:
                ok = sims[np.arange(len(best)), best] >= self.thresholds_[best]
            names = np.array(self.discovered_ids_, dtype=object)
            seg_labels = np.where(ok, names[best], NOISE)
            labels[rows] = seg_labels[seg]
        return labels.astype(str)

    def assign(
        self, sentences: pd.DataFrame, vectors: np.ndarray, *, articles: pd.DataFrame | None = None
    ) -> pd.Series:
        """Topic id per sentence for (whole) articles, with the fitted topics.

        Sentences of one article must be passed together, in order: a sentence's topic
        depends on its article's other sentences, never on other articles.
        """
        import numpy as np
        import pandas as pd

        if not hasattr(self, "named_ids_"):
            raise ValueError("This TopicModel is not fitted yet. Call 'fit' first.")
        ctx, level, aids = self._features(sentences, vectors, articles)
        hits = self._term_hits(sentences, level, aids)
        labels = self._merged(self._assign_features(np.asarray(vectors), ctx, hits, level, aids))
        return pd.Series(labels, index=sentences.index, name="topic")

    transform = assign

    def _table(self, sentences: pd.DataFrame, labels: np.ndarray, own: np.ndarray) -> pd.DataFrame:
        """One row per topic, its representative sentences the members closest to its vector.

        ``own`` holds each row's similarity to its topic's vector (``_own_similarity``).
        """
        import numpy as np
        import pandas as pd

        # the column as it is (Arrow strings): a chunk or a topic's members become Python
        # strings when read, never the whole corpus at once
        texts = sentences["sentence"].astype(str).array
        kw = _ctfidf_keywords(texts, labels, self.n_keywords) if len(texts) else {}
        rows = []
        topics = [*self.named_ids_, *self.discovered_ids_, NOISE]
        vecs = self._topic_vectors()
        merged = set(self.merge or {})
        for t in topics:
            if t in merged:
                continue
            idx = np.flatnonzero(labels == t)
            if t in self.named_ids_:
                kind, label = "named", self.named_[t]["label"]
            elif t == NOISE:
                kind, label = "noise", "Noise (no topic)"
            else:
                kind = "discovered"
                words = self.keywords_.get(t) or kw.get(t, [])
                label = topic_title(words, texts[idx]) or t
            label = (self.rename or {}).get(t, label)
            reps: list[str] = []
            if len(idx) and t in vecs and self.n_representative:
                sims = own[idx]
                for j in idx[np.lexsort((idx, -sims))]:
                    s = texts[j]
                    if s not in reps:
                        reps.append(s)
                    if len(reps) == self.n_representative:
                        break
            rows.append(
                {
                    "topic": t,
                    "label": label,
                    "kind": kind,
                    "keywords": kw.get(t, []),
                    "size": len(idx),
                    "representative_sentences": reps,
                }
            )
        return pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).astype({"size": "int64"})

    def _map(self, ctx: np.ndarray) -> np.ndarray:
        """Seeded 2-D UMAP of the fit sample's context vectors.

        With too few rows for UMAP: their first two principal axes (kept for ``_place``).
        """
        import numpy as np

        m = len(ctx)
        if m > max(self.umap_neighbors, 4) + 1:
            numba_cache_dir()
            import umap
            from threadpoolctl import threadpool_limits

            reducer = umap.UMAP(
                n_neighbors=min(self.umap_neighbors, m - 1),
                n_components=2,
                metric="cosine",
                min_dist=0.1,
                random_state=self.seed,
                n_jobs=1,
            )
            # one BLAS / OpenMP thread: the layout's linear algebra rounds differently with
            # another thread count (measured: a different map on the 300-article sample with
            # OMP_NUM_THREADS=1), and the map must be the same on any machine and engine
            with threadpool_limits(limits=1):
                xy = reducer.fit_transform(ctx.astype(np.float32))
            return np.asarray(xy, dtype=np.float64)
        if m < 2:
            return np.zeros((m, 2))
        mean = ctx.mean(axis=0)
        centred = ctx - mean
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        self._axes = (mean, vt[:2]) if vt.shape[0] >= 2 else None
        return centred @ vt[:2].T if vt.shape[0] >= 2 else np.zeros((m, 2))

    def _place(self, ctx: np.ndarray, ref: np.ndarray, ref_xy: np.ndarray) -> np.ndarray:
        """Map positions of rows outside the fit sample.

        The similarity-weighted mean of their 5 nearest neighbours among the fitted rows
        ``ref`` (float32 similarities; deterministic, per row, no second numba compile); on
        the principal axes when the map is those.
        """
        import numpy as np

        out = np.zeros((len(ctx), 2))
        if len(ref) <= max(self.umap_neighbors, 4) + 1:
            axes = getattr(self, "_axes", None)
            if axes is not None:
                out = (ctx - axes[0]) @ axes[1].T
            return out
        # row blocks of at most ~16 M float32 similarities (64 MB), however large the fit
        step = max(1, 2**24 // len(ref))
        k = min(5, len(ref))
        ref = np.asarray(ref, dtype=np.float32)
        for lo in range(0, len(ctx), step):
            sims = np.asarray(ctx[lo : lo + step], dtype=np.float32) @ ref.T
            nn = _top_k_stable(sims, k)
            w = np.maximum(np.take_along_axis(sims, nn, axis=1), 1e-6)
            out[lo : lo + step] = (w[:, :, None] * ref_xy[nn]).sum(axis=1) / w.sum(
                axis=1, keepdims=True
            )
        return out

    def _coords_frame(self, sentences: pd.DataFrame, xy: np.ndarray) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        from stance.schema import text_values

        return pd.DataFrame(
            {
                "article_id": text_values(sentences["article_id"]),
                "sentence_id": sentences["sentence_id"].to_numpy(),
                "x": np.round(xy[:, 0], 6).astype(np.float64),
                "y": np.round(xy[:, 1], 6).astype(np.float64),
            }
        )


def _advance(bar: Any, steps: list[str]) -> None:
    """Mark one fit stage done on the progress bar and name the next."""
    bar.update(1)
    if bar.n < len(steps):
        bar.set_postfix_str(steps[bar.n])


def run_topics(
    sentences: pd.DataFrame,
    vectors: np.ndarray,
    config: Settings | dict[str, Any],
    encode: Callable[[list[str]], np.ndarray],
    *,
    articles: pd.DataFrame | None = None,
    progress: bool = True,
) -> TopicResult:
    """Assign every sentence a topic; the pipeline's topics stage.

    Args:
        sentences: Columns ``article_id, source, sentence_id, sentence, start, end``, rows in
            article order then sentence order.
        vectors: ``vectors[i]`` is the L2-normalised embedding of row ``i``.
        config: The full merged config (``topics``, ``topics.named``, ``run.seed``).
        encode: Embeds extra texts with the same model (normalised float32).
        articles: Optional ``article_id, text`` for paragraph and heading detection.
        progress: Log progress messages and show a progress bar over the fit's stages.

    Returns:
        A :class:`TopicResult`.

    Raises:
        ValueError: On an unknown or malformed ``topics`` option, or when there is nothing to
            assign (no named topics and nothing discoverable).
    """
    model = TopicModel.from_config(config, progress=progress).fit(
        sentences, vectors, encode, articles=articles
    )
    return TopicResult(
        topic=model.labels_,
        table=model.table_,
        coords=model.coords_,
        model=model,
        info={"n_discovered": len(model.discovered_ids_), "n_fit": int(model.fit_mask_.sum())},
    )
