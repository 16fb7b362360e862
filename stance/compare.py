"""Compare stance across sources: interval estimates, contrasts, evidence, aligned claims, trends.

The statistical unit is a *(article, sentence, target)* triple: several mentions of one target
in one sentence are averaged into one score, so a sentence that names Putin twice counts once.
Units are not independent — sentences of one article share an author and a slant — so every
interval comes from a cluster bootstrap that resamples *articles*, and every contrast from a
permutation test that shuffles source labels between *articles*. All randomness derives from
``config["run"]["seed"]`` and the key of the cell being estimated, so results do not depend on
which other cells exist or the order they are computed in, and two runs give identical tables.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from stance.batching import can_fork, fork_pool
from stance.config import CompareSettings, Settings, as_settings
from stance.schema import (
    ALL_TOPICS,
    MENTION_COLUMNS,
    SUMMARY_COLUMNS,
    dtype_of,
    parse_dates,
    require_columns,
)
from stance.spill import take

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

#: Columns of the ``summary`` table :func:`run_compare` returns (the DESIGN contract).
SUMMARY_OUT_COLUMNS: tuple[str, ...] = SUMMARY_COLUMNS
#: Cells (and contrasts) resting on fewer articles than this are marked in the reports and never
#: reported as findings (the ``compare.min_articles`` setting's default).
MIN_ARTICLES: int = CompareSettings.min_articles
CONTRAST_COLUMNS: tuple[str, ...] = (
    "target",
    "topic",
    "source_a",
    "source_b",
    "n_a",
    "n_b",
    "n_articles_a",
    "n_articles_b",
    "mean_a",
    "mean_b",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "effect_size",
    "cliffs_delta",
    "p_value",
    "p_adjusted",
    "significant",
)
EVIDENCE_COLUMNS: tuple[str, ...] = (
    "source",
    "target",
    "topic",
    "side",
    "rank",
    "article_id",
    "sentence_id",
    "sentence",
    "mentions",
    "voice",
    "stance",
    "stance_score",
    "model_score",
    "title",
    "date",
)
ALIGNED_SIDE_COLUMNS: tuple[str, ...] = (
    "source",
    "article_id",
    "sentence_id",
    "sentence",
    "topic",
    "voice",
    "stance",
    "stance_score",
    "title",
    "date",
)
ALIGNED_COLUMNS: tuple[str, ...] = (
    "rank",
    "target",
    "similarity",
    "disagreement",
    *(f"{c}_a" for c in ALIGNED_SIDE_COLUMNS),
    *(f"{c}_b" for c in ALIGNED_SIDE_COLUMNS),
)
TREND_COLUMNS: tuple[str, ...] = (
    "source",
    "target",
    "topic",
    "period",
    "period_start",
    "freq",
    "n",
    "n_articles",
    "mean",
    "ci_low",
    "ci_high",
)
UNIT_KEY: tuple[str, ...] = ("article_id", "sentence_id", "target")
Freq = Literal["auto", "week", "month", "quarter", "year"]
_FREQS = ("auto", "week", "month", "quarter", "year")
_PANDAS_FREQ = {"week": "W-MON", "month": "M", "quarter": "Q", "year": "Y"}


# --------------------------------------------------------------------------------------------
# Settings and seeding
# --------------------------------------------------------------------------------------------


def compare_settings(config: Settings | dict[str, Any] | None) -> dict[str, Any]:
    """Return the ``[compare]`` settings as a flat dict, plus ``seed``.

    The settings are declared in :class:`stance.config.CompareSettings`.

    Args:
        config: :class:`stance.config.Settings`, a configuration dict (whole, as from
            :func:`stance.config.load_config`, or a part of one) or ``None`` for the defaults.

    Raises:
        ValueError: When a setting is unknown, of the wrong type or out of range.
    """
    settings = as_settings(config)
    return {**asdict(settings.compare), "seed": settings.run.seed}


def _rng(seed: int, *key: Any) -> np.random.Generator:
    """Return a generator that depends only on the run seed and a cell key (stable across runs)."""
    import numpy as np

    words = [zlib.crc32(str(k).encode("utf-8")) for k in key]
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *words])


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


def stance_units(mentions: pd.DataFrame) -> pd.DataFrame:
    """Collapse mentions to one row per (article, sentence, target) — the statistical unit.

    When the mentions carry attribution (``voice``, ``author_score``, ``weight`` from
    :func:`stance.attribution.attribute`), a mention contributes ``author_score × weight``: the
    author's stance, with reported views shrunk towards neutral and disputed claims reversed;
    otherwise it contributes its model ``stance_score``. The unit's ``stance_score`` is the mean
    contribution of its mentions and ``model_score`` the mean model score; its ``stance`` label
    is the most frequent label among its mentions (reversed for disputed ones), ties broken
    towards the sign of the unit's score; ``voice`` is the most frequent voice (ties: author,
    disputed, reported); ``mentions`` joins the distinct surface forms and ``kind`` (when the
    mentions have one) their distinct kinds.

    Args:
        mentions: Requires ``article_id, source, sentence_id, sentence, target, mention, topic,
            stance, stance_score``; optionally ``voice, author_score, weight`` and ``kind``.

    Returns:
        One row per unit with ``article_id, source, sentence_id, sentence, target, topic,
        mentions, (kind,) n_mentions, voice, stance, stance_score, model_score``, sorted by the
        unit key.
    """
    import numpy as np
    import pandas as pd

    needed = [c for c in MENTION_COLUMNS if c not in ("start", "end")]
    require_columns(mentions, needed, "mentions")
    cols = [
        "article_id",
        "source",
        "sentence_id",
        "sentence",
        "target",
        "topic",
        "mentions",
        "n_mentions",
        "voice",
        "stance",
        "stance_score",
        "model_score",
    ]
    has_kind = "kind" in mentions.columns
    if has_kind:
        cols.insert(cols.index("n_mentions"), "kind")
    if mentions.empty:
        return pd.DataFrame({c: pd.Series(dtype=dtype_of(c)) for c in cols})
    attributed = {"voice", "author_score", "weight"} <= set(mentions.columns)
    optional = (["voice", "author_score", "weight"] if attributed else []) + (
        ["kind"] if has_kind else []
    )
    m = mentions.loc[:, needed + optional].copy()
    m["model_score"] = m["stance_score"].astype("float64")
    if attributed:
        m["stance_score"] = m["author_score"].astype("float64") * m["weight"].astype("float64")
        flip = {"negative": "positive", "positive": "negative", "neutral": "neutral"}
        disputed = m["voice"].eq("disputed")
        m.loc[disputed, "stance"] = m.loc[disputed, "stance"].map(flip)
    else:
        m["voice"] = "author"
    m["article_id"] = m["article_id"].astype(str)
    m["topic"] = m["topic"].fillna("noise").astype(str)
    key = list(UNIT_KEY)
    grouped = m.groupby(key, sort=True, dropna=False)
    units = grouped.agg(
        source=("source", "first"),
        sentence=("sentence", "first"),
        topic=("topic", "first"),
        n_mentions=("stance_score", "size"),
        stance_score=("stance_score", "mean"),
        model_score=("model_score", "mean"),
    ).reset_index()
    # Distinct surface forms in order of first appearance, deterministic given the input order.
    group = grouped.ngroup().to_numpy()  # each mention's unit: units' rows are in group order
    units["mentions"] = _joined_distinct(group, m["mention"], len(units))
    if has_kind:
        units["kind"] = _joined_distinct(group, m["kind"], len(units))
    units["voice"] = _top_voice(group, m["voice"], len(units))
    counts = (
        m.assign(_one=1)
        .pivot_table(index=key, columns="stance", values="_one", aggfunc="sum", fill_value=0)
        .reindex(columns=["negative", "neutral", "positive"], fill_value=0)
    )
    counts = counts.reindex(pd.MultiIndex.from_frame(units[key])).to_numpy()
    # Tie-break: +0.1 to the label that matches the sign of the mean score.
    sign_bonus = np.zeros_like(counts, dtype=float)
    score = units["stance_score"].to_numpy()
    sign_bonus[score < 0, 0] = 0.1
    sign_bonus[score == 0, 1] = 0.1
    sign_bonus[score > 0, 2] = 0.1
    labels = np.array(["negative", "neutral", "positive"], dtype=object)
    units["stance"] = labels[np.argmax(counts + sign_bonus, axis=1)]
    units["n_mentions"] = units["n_mentions"].astype("int64")
    return units.loc[:, cols].reset_index(drop=True)


#: The voice a unit takes when its mentions' voices are equally frequent: author, then disputed,
#: then reported (then any other).
_VOICE_TIES = {"author": 0.2, "disputed": 0.1, "reported": 0.0}


def _joined_distinct(group: np.ndarray, values: pd.Series, n: int) -> np.ndarray:
    """Per group, ``"; "``-joined distinct ``str`` values in order of first appearance.

    Vectorised: one Python join per group of several distinct values only (most units have one
    surface form), not one call per group.
    """
    import numpy as np
    import pandas as pd

    d = pd.DataFrame({"g": group, "v": values.map(str).to_numpy(dtype=object)})
    d = d.drop_duplicates().sort_values("g", kind="stable")  # first appearances, in order
    size = np.bincount(d["g"].to_numpy(), minlength=n)
    out = np.empty(n, dtype=object)
    single = size[d["g"].to_numpy()] == 1
    out[d["g"].to_numpy()[single]] = d["v"].to_numpy()[single]
    several = d[~single]
    if len(several):
        joined = several.groupby("g", sort=False)["v"].agg("; ".join)
        out[joined.index.to_numpy()] = joined.to_numpy()
    return out


def _top_voice(group: np.ndarray, voices: pd.Series, n: int) -> np.ndarray:
    """Per group, the most frequent voice; ties go to author, then disputed, then reported."""
    import numpy as np
    import pandas as pd

    table = pd.crosstab(group, voices.to_numpy(dtype=object)).reindex(range(n), fill_value=0)
    names = table.columns.to_numpy(dtype=object)
    bonus = np.array([_VOICE_TIES.get(v, -0.1) + 0.3 for v in names])  # in (0, 0.6): < one mention
    score = table.to_numpy(dtype=float) + np.where(table.to_numpy() > 0, bonus, 0.0)
    return names[np.argmax(score, axis=1)]


def _empty(columns: Iterable[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=dtype_of(c)) for c in columns})


# --------------------------------------------------------------------------------------------
# Cluster bootstrap
# --------------------------------------------------------------------------------------------


def _article_sums(scores: np.ndarray, articles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-article score sums and unit counts, articles in sorted order."""
    import numpy as np

    _, inverse = np.unique(articles, return_inverse=True)
    sums = np.bincount(inverse, weights=scores)
    counts = np.bincount(inverse).astype(float)
    return sums, counts


def _bootstrap_means(
    sums: np.ndarray, counts: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Means of ``resamples`` cluster-bootstrap samples (clusters drawn with replacement)."""
    import numpy as np

    k = len(sums)
    out = np.empty(resamples)
    # Draw k cluster indices per resample and take the ratio of the gathered sums; chunked so
    # that a cell with many articles never needs more than ~32 MB of indices.
    step = max(1, 4_000_000 // max(k, 1))
    for lo in range(0, resamples, step):
        hi = min(resamples, lo + step)
        draws = rng.integers(0, k, size=(hi - lo, k))
        out[lo:hi] = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    return out


def _cluster_boot(
    scores: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Bootstrap means of one group's units (``sums``/``counts`` per article).

    One article: its units are resampled instead; one unit: its score every time.
    """
    import numpy as np

    if scores.size == 1:
        return np.full(resamples, scores[0])
    if len(sums) == 1:
        sums, counts = scores, np.ones_like(scores)
    return _bootstrap_means(sums, counts, resamples, rng)


def bootstrap_interval(
    scores: Sequence[float] | np.ndarray,
    articles: Sequence[Any] | np.ndarray,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """Mean of unit scores and its percentile interval from a cluster bootstrap over articles.

    Articles (clusters) are drawn with replacement and all their units come along. When the
    units come from a single article there is no between-article variation to resample, so the
    interval falls back to resampling that article's units; a single unit gives a zero-width
    interval at its score. The interval is widened, if needed, to contain the mean (a percentile
    interval of a ratio estimator can, rarely, miss it).

    Args:
        scores: One score per unit.
        articles: The article of each unit.
        resamples: Number of bootstrap samples.
        confidence: Coverage of the interval, e.g. 0.95.
        rng: Random generator; a fixed default when ``None``.

    Returns:
        ``(mean, ci_low, ci_high)``; all NaN for no units.
    """
    import numpy as np

    scores = np.asarray(scores, dtype=float)
    articles = np.asarray(articles)
    if scores.size == 0:
        return (float("nan"),) * 3
    mean = float(scores.mean())
    if scores.size == 1:
        return mean, mean, mean
    rng = rng if rng is not None else np.random.default_rng(0)
    boot = _cluster_boot(scores, *_article_sums(scores, articles), int(resamples), rng)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return mean, float(min(low, mean)), float(max(high, mean))


def summarize(
    units: pd.DataFrame,
    by: Sequence[str] = ("source", "target", "topic"),
    *,
    config: Settings | dict[str, Any] | None = None,
    all_topics: bool = True,
) -> pd.DataFrame:
    """Mean stance and cluster-bootstrap interval for every group of units.

    Args:
        units: From :func:`stance_units` (``article_id, stance_score`` and the ``by`` columns);
            extra grouping columns (e.g. an outlet's ``bias_text`` merged in) work the same way.
        by: Grouping columns. When it contains ``topic`` and ``all_topics`` is true, a group
            with topic ``"all"`` pooling every topic is added.
        config: Full configuration (for ``compare`` settings and ``run.seed``).
        all_topics: Add the ``"all"`` topic rows.

    Returns:
        The ``by`` columns, then ``n, n_articles, mean, ci_low, ci_high``, sorted by ``by``.
    """
    import pandas as pd

    settings = compare_settings(config)
    by = list(by)
    require_columns(units, [*by, "article_id", "stance_score"], "units")
    out_cols = [*by, "n", "n_articles", "mean", "ci_low", "ci_high"]
    if units.empty:
        return _empty(out_cols)
    frames = [units]
    if all_topics and "topic" in by:
        frames.append(units.assign(topic=ALL_TOPICS))
    data = pd.concat(frames, ignore_index=True)
    rows = []
    for key, group in data.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, low, high = bootstrap_interval(
            group["stance_score"].to_numpy(),
            group["article_id"].astype(str).to_numpy(),
            resamples=settings["bootstrap_resamples"],
            confidence=settings["confidence"],
            rng=_rng(settings["seed"], "summary", *key),
        )
        rows.append((*key, len(group), group["article_id"].nunique(), mean, low, high))
    out = pd.DataFrame(rows, columns=out_cols)
    return _typed(out).sort_values(by, kind="stable").reset_index(drop=True)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Fix column dtypes so that equal content always gives identical Parquet files."""
    for c in df.columns:
        dt = dtype_of(c)
        if dt in ("int64", "float64", "bool"):
            df[c] = df[c].astype(dt)
        elif df[c].dtype == object and df[c].map(lambda v: v is None or isinstance(v, str)).all():
            df[c] = df[c].astype("str")
    return df


# --------------------------------------------------------------------------------------------
# Contrasts
# --------------------------------------------------------------------------------------------


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (step-up, monotone, capped at 1; NaN kept).

    Args:
        p_values: Raw p-values.

    Returns:
        Adjusted p-values in the input order.
    """
    import numpy as np

    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    ranked = q[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(ranked, 1.0)
    out[ok] = adj
    return out


def cliffs_delta(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Cliff's delta: P(x > y) − P(x < y) over all pairs, in O(n log n).

    Args:
        x: Scores of the first group.
        y: Scores of the second group.

    Returns:
        A value in [−1, 1]; NaN when either group is empty.
    """
    import numpy as np

    x = np.asarray(x, dtype=float)
    y = np.sort(np.asarray(y, dtype=float))
    if x.size == 0 or y.size == 0:
        return float("nan")
    return _cliffs_sorted(x, y)


def cohens_d(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Cohen's d with the pooled standard deviation; NaN when it is undefined."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size == 0 or y.size == 0:
        return float("nan")
    return _cohens_d(*_moments(x), *_moments(y))


#: Below this many permuted statistics at least as extreme as the observed one, and with at
#: least _TAIL_MIN_ARTICLES articles on each side, the p-value comes from a normal tail fitted
#: to the permutation distribution instead of the resampling floor (``permutation_test``).
_TAIL_HITS = 10
_TAIL_MIN_ARTICLES = 20


def permutation_test(
    scores_a: np.ndarray,
    articles_a: np.ndarray,
    scores_b: np.ndarray,
    articles_b: np.ndarray,
    *,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> float:
    """Two-sided p-value for mean(a) − mean(b), shuffling group labels between *articles*.

    Each permutation keeps the number of articles per group and moves whole articles, so the
    null distribution respects the clustering. When there are no more distinct assignments of
    articles to groups than ``resamples`` (few articles), all of them are enumerated and the
    p-value is exact: the share of assignments at least as extreme as the observed one. Else
    ``p = (1 + #{|T*| ≥ |T|}) / (1 + resamples)`` over random permutations, except in the far
    tail (fewer than 10 permuted statistics as extreme, at least 20 articles on each side),
    where that estimate is mostly its floor ``1 / (1 + resamples)``: there ``p`` is the
    two-sided normal tail of the observed difference under the permutation distribution's
    mean and standard deviation, so p-values below the floor stay distinguishable for the
    Benjamini–Hochberg correction over thousands of contrasts.

    Args:
        scores_a: Unit scores of group a.
        articles_a: Article of each unit of group a.
        scores_b: Unit scores of group b.
        articles_b: Article of each unit of group b.
        resamples: Number of random permutations.
        rng: Random generator.

    Returns:
        The p-value, or NaN when either group is empty.
    """
    import numpy as np

    if len(scores_a) == 0 or len(scores_b) == 0:
        return float("nan")
    sa, ca = _article_sums(np.asarray(scores_a, float), np.asarray(articles_a))
    sb, cb = _article_sums(np.asarray(scores_b, float), np.asarray(articles_b))
    return _permutation_p(sa, ca, sb, cb, resamples, rng)


def _permutation_p(
    sa: np.ndarray,
    ca: np.ndarray,
    sb: np.ndarray,
    cb: np.ndarray,
    resamples: int,
    rng: np.random.Generator | None,
) -> float:
    """:func:`permutation_test` on per-article score sums and unit counts of both groups."""
    import itertools
    import math

    import numpy as np

    rng = rng if rng is not None else np.random.default_rng(0)
    sums = np.concatenate([sa, sb])
    counts = np.concatenate([ca, cb])
    ka, k = len(sa), len(sa) + len(sb)
    observed = sa.sum() / ca.sum() - sb.sum() / cb.sum()
    exact = math.comb(k, ka) <= int(resamples)
    if exact:
        groups = np.array(list(itertools.combinations(range(k), ka)), dtype=np.intp)
        sum_a, cnt_a = sums[groups].sum(axis=1), counts[groups].sum(axis=1)
    else:
        # a random subset of the smaller group's size per resample; the rest is the other group
        m = min(ka, k - ka)
        chosen = _random_subsets(k, m, int(resamples), rng)
        sum_m, cnt_m = sums[chosen].sum(axis=1), counts[chosen].sum(axis=1)
        if m == ka:
            sum_a, cnt_a = sum_m, cnt_m
        else:
            sum_a, cnt_a = sums.sum() - sum_m, counts.sum() - cnt_m
    sum_b, cnt_b = sums.sum() - sum_a, counts.sum() - cnt_a
    perm = sum_a / cnt_a - sum_b / cnt_b
    hits = np.count_nonzero(np.abs(perm) >= abs(observed) - 1e-12)
    if exact:
        return float(hits / len(groups))
    if hits < _TAIL_HITS and min(ka, k - ka) >= _TAIL_MIN_ARTICLES:
        # Too few permuted statistics reach the observed one to estimate so small a p-value
        # (the floor would be 1 / (1 + resamples): with thousands of contrasts, BH could then
        # never adjust a real difference below alpha). With this many articles per side the
        # permutation distribution is close to normal (a difference of means of clusters drawn
        # without replacement), so its tail comes from the resamples' mean and spread.
        from scipy.stats import norm

        spread = float(perm.std(ddof=1))
        if spread > 0:
            return float(2.0 * norm.sf(abs(observed - float(perm.mean())) / spread))
    return float((1 + hits) / (1 + int(resamples)))


def _random_subsets(k: int, m: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` uniform random ``m``-subsets of ``range(k)``, one per row (``rows × m``).

    A Fisher–Yates shuffle stopped after ``m`` swaps, all rows at once: it costs ``m`` vector
    steps instead of shuffling all ``k`` items of every row (1.4–3× faster than
    ``Generator.permuted`` on 2,000 rows of 60–5,000 articles).
    """
    import numpy as np

    idx = np.tile(np.arange(k, dtype=np.int32), (rows, 1))
    every = np.arange(rows)
    for i in range(m):
        j = rng.integers(i, k, size=rows)
        held = idx[:, i].copy()
        idx[:, i] = idx[every, j]
        idx[every, j] = held
    return idx[:, :m]


#: Pairs per task of the contrasts' worker processes, and the fewest pairs worth starting them
#: for (a process pool costs about a second; 20,000 pairs take ~10 s on one core).
_PAIRS_PER_TASK = 2_000
_PARALLEL_MIN_PAIRS = 20_000
#: A pair of groups that both rest on fewer than ``compare.min_articles`` articles in their cell
#: can never be a finding. Such pairs are listed (and tested, so that Benjamini–Hochberg sees the
#: same family as always) while the run has at most ``max(_FEW_PAIRS_MIN, _FEW_PAIRS_PER_UNIT ×
#: units)`` of them; past that (a table where every row names its own outlet has n²/2 of them per
#: cell: 3.4 million for 1,500 rows) they are all left out, so the work stays proportional to the
#: input. The 5,720 AllSides geopolitics articles have about 0.3 such pairs per unit.
_FEW_PAIRS_MIN = 20_000
_FEW_PAIRS_PER_UNIT = 10


def contrasts(
    units: pd.DataFrame,
    *,
    config: Settings | dict[str, Any] | None = None,
    by: str = "source",
    workers: int = 1,
    progress: bool = False,
) -> pd.DataFrame:
    """Pairwise source differences per target and topic (plus topic ``"all"``).

    For every target × topic and every pair of sources with at least one unit each: means,
    ``diff = mean_a − mean_b`` with a cluster-bootstrap interval, ``effect_size`` (Cohen's d
    over units), Cliff's delta, a permutation p-value over articles and Benjamini–Hochberg
    adjusted p-values over the whole table; ``significant`` is ``p_adjusted < 1 − confidence``.
    ``source_a`` sorts before ``source_b``.

    The interval is the percentile interval of ``boot_a − boot_b``, where ``boot_s`` are the
    cluster-bootstrap means (articles of that source resampled) behind the source's row of
    :func:`summarize` in that cell: the same seed key, so each source is resampled once per
    cell, not once per pair. The permutation test's generator is keyed by the pair.

    A pair whose two groups both rest on fewer than ``compare.min_articles`` articles in the cell
    can never be a finding; when a run would hold more such pairs than
    ``max(20,000, 10 × units)`` (e.g. a table in which every row has its own source), all of them
    are left out, with a logged warning, and the table's ``attrs["left_out"]`` says how many.

    Args:
        units: From :func:`stance_units`.
        config: Full configuration.
        by: The column compared (default ``source``; e.g. ``bias_text`` merged into the units);
            its pairs are named ``{by}_a, {by}_b`` in place of ``source_a, source_b``.
        workers: Processes computing the pairs (on Linux, forked from this one, for tables of
            at least 20,000 pairs); the table is the same whatever their number.
        progress: A tqdm bar over the pairs.

    Returns:
        A table with :data:`CONTRAST_COLUMNS`, sorted by target, topic, source_a, source_b.

    Raises:
        ValueError: When ``workers`` is not an integer >= 1.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"The 'workers' parameter must be an integer >= 1. Got {workers!r}.")
    settings = compare_settings(config)
    require_columns(units, [by, "target", "topic", "article_id", "stance_score"], "units")
    columns = _renamed(CONTRAST_COLUMNS, by)
    if units.empty:
        return _empty(columns)
    frame = units[[by, "target", "topic", "article_id", "stance_score"]]
    min_articles = int(settings["min_articles"])
    cells = _cell_groups(frame, by, min_articles)
    few_pairs = sum(_pairs(int(few.sum())) for few in cells.values())
    limit = max(_FEW_PAIRS_MIN, _FEW_PAIRS_PER_UNIT * len(frame))
    left_out = few_pairs if few_pairs > limit else 0
    if left_out:
        logger.warning(
            "contrasts: left out %d pairs of %s values that both rest on fewer than %d articles "
            "in their target and topic (compare.min_articles; none of them can be a finding): "
            "more than the %d such pairs a run of %d units lists.",
            left_out,
            by,
            min_articles,
            limit,
            len(frame),
        )
    tasks = _pair_tasks(cells, skip_few=bool(left_out))
    total = sum(n for *_, n in tasks)
    rows: list[tuple[Any, ...]] = []
    skip = min_articles if left_out else None
    with tqdm(total=total, desc="contrasts", unit="pair", disable=not progress) as bar:
        for part in _map_pair_tasks(frame, by, settings, tasks, workers, total, skip):
            rows.extend(part)
            bar.update(len(part))
    out = _empty(columns)
    if rows:
        alpha = 1.0 - settings["confidence"]
        out = pd.DataFrame(rows, columns=list(columns[:-2]))
        out["p_adjusted"] = benjamini_hochberg(out["p_value"].to_numpy())
        out["significant"] = out["p_adjusted"] < alpha
        out = _typed(out.loc[:, list(columns)])
        out = out.sort_values(["target", "topic", f"{by}_a", f"{by}_b"], kind="stable")
        out = out.reset_index(drop=True)
    if left_out:
        out.attrs["left_out"] = {
            "pairs": left_out,
            "cells": sum(1 for few in cells.values() if few.sum() > 1),
            "min_articles": min_articles,
            "limit": limit,
        }
    return out


def _renamed(columns: tuple[str, ...], by: str) -> tuple[str, ...]:
    """``columns`` with ``source`` (and ``source_a``/``source_b``) named after ``by``."""
    names = {"source": by, "source_a": f"{by}_a", "source_b": f"{by}_b"}
    return tuple(names.get(c, c) for c in columns)


def _pairs(n: int) -> int:
    """Return the number of unordered pairs of ``n`` things."""
    return n * (n - 1) // 2


def _cell_groups(frame: pd.DataFrame, by: str, min_articles: int) -> dict[tuple[str, str], Any]:
    """Each target × topic cell's groups, in :class:`_Cell`'s order, as "too few articles" flags.

    Returns:
        ``{(target, topic): bool array}``, ``True`` where a group has fewer than
        ``min_articles`` articles in the cell; topic :data:`ALL_TOPICS` pools every topic.
    """
    import numpy as np

    frame = frame.dropna(subset=["target", "topic", by])  # as groupby leaves them out
    per_cell = frame.drop_duplicates(["target", "topic", by, "article_id"])
    per_cell = per_cell.groupby(["target", "topic", by]).size()
    per_target = frame.drop_duplicates(["target", by, "article_id"]).groupby(["target", by]).size()
    articles: dict[tuple[str, str], dict[Any, int]] = {}
    for (t, c, g), n in per_cell.items():
        articles.setdefault((str(t), str(c)), {})[g] = int(n)
    for (t, g), n in per_target.items():
        articles.setdefault((str(t), ALL_TOPICS), {})[g] = int(n)
    return {
        key: np.array([counts[g] < min_articles for g in sorted(counts)], dtype=bool)
        for key, counts in articles.items()
    }


def _pair_tasks(
    cells: dict[tuple[str, str], Any], *, skip_few: bool = False
) -> list[tuple[str, str, int, int, int]]:
    """Cut the contrasts into tasks ``(target, topic, first_row, end_row, pairs)``, in order.

    A cell with sources ``s_0 < s_1 < …`` has the pairs ``(s_i, s_j), i < j``; a task takes the
    rows ``i`` in ``[first_row, end_row)``, about :data:`_PAIRS_PER_TASK` pairs in all. With
    ``skip_few``, a pair of two groups flagged in ``cells`` (see :func:`_cell_groups`) is none.
    """
    import numpy as np

    tasks = []
    for (target, topic), few in sorted(cells.items()):
        n = len(few)
        per_row = n - 1 - np.arange(n)
        if skip_few:
            enough = (~few).astype(np.int64)
            later_enough = np.cumsum(enough[::-1])[::-1] - enough
            per_row = np.where(few, later_enough, per_row)
        lo, pairs = 0, 0
        for i in range(n):
            pairs += int(per_row[i])
            if pairs >= _PAIRS_PER_TASK or i == n - 1:
                if pairs:
                    tasks.append((target, topic, lo, i + 1, pairs))
                lo, pairs = i + 1, 0
    return tasks


class _Cell:
    """One target × topic of the contrasts: each source's units, sums and bootstrap means.

    With ``skip_few``, the pairs of two sources that both have fewer than that many articles in
    the cell are left out (see :data:`_FEW_PAIRS_MIN`).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        by: str,
        target: str,
        topic: str,
        settings: dict[str, Any],
        skip_few: int | None = None,
    ) -> None:
        import numpy as np

        keep = frame["target"] == target
        if topic != ALL_TOPICS:
            keep &= frame["topic"] == topic
        self.key = (target, topic)
        self.settings = settings
        self.sides: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.moments: dict[str, tuple[int, float, float]] = {}
        self.sorted: dict[str, np.ndarray] = {}
        for s, g in frame[keep].groupby(by, sort=True):
            x = g["stance_score"].to_numpy(float)
            self.sides[s] = _side(x, g["article_id"].astype(str).to_numpy())
            self.moments[s] = _moments(x)
            self.sorted[s] = np.sort(x)
        self.names = sorted(self.sides)
        self._boot: dict[str, np.ndarray] = {}
        # rows of the sources with enough articles: the only partners of one with too few
        self.skip_few = skip_few
        self.enough = [
            i
            for i, s in enumerate(self.names)
            if skip_few is None or len(self.sides[s][1]) >= skip_few
        ]

    def boot(self, s: str) -> np.ndarray:
        """Return the source's bootstrap means, as :func:`summarize` draws them for its row."""
        if s not in self._boot:
            rng = _rng(self.settings["seed"], "summary", s, *self.key)
            resamples = self.settings["bootstrap_resamples"]
            self._boot[s] = _cluster_boot(*self.sides[s], resamples, rng)
        return self._boot[s]

    def rows(self, first: int, end: int) -> list[tuple[Any, ...]]:
        """Return the rows of the pairs ``(names[i], names[j])``: ``first <= i < end``, ``i < j``."""
        import bisect

        import numpy as np

        settings = self.settings
        q = (1.0 - settings["confidence"]) / 2
        out = []
        for i in range(first, end):
            a = self.names[i]
            xa, sa, ca = self.sides[a]
            mean_a = self.moments[a][1]
            if self.skip_few is not None and len(sa) < self.skip_few:
                later = self.enough[bisect.bisect_right(self.enough, i) :]
                partners = [self.names[j] for j in later]
            else:
                partners = self.names[i + 1 :]
            for b in partners:
                xb, sb, cb = self.sides[b]
                mean_b = self.moments[b][1]
                key = ("contrast", *self.key, a, b)
                p = _permutation_p(
                    sa, ca, sb, cb, settings["permutation_resamples"], _rng(settings["seed"], *key)
                )
                low, high = np.quantile(self.boot(a) - self.boot(b), [q, 1 - q])
                diff = mean_a - mean_b
                out.append(
                    (
                        *self.key,
                        a,
                        b,
                        len(xa),
                        len(xb),
                        len(sa),
                        len(sb),
                        mean_a,
                        mean_b,
                        diff,
                        min(float(low), diff),
                        max(float(high), diff),
                        _cohens_d(*self.moments[a], *self.moments[b]),
                        _cliffs_sorted(xa, self.sorted[b]),
                        p,
                    )
                )
        return out


#: The worker processes' table and settings (set before they fork) and their current cell.
_WORK: dict[str, Any] = {}


def _pair_rows(task: tuple[str, str, int, int, int]) -> list[tuple[Any, ...]]:
    """Rows of one task, in a worker (its cell kept for the next task of the same cell)."""
    target, topic, first, end, _ = task
    cell = _WORK.get("cell")
    if cell is None or cell.key != (target, topic):
        cell = _WORK["cell"] = _Cell(
            _WORK["frame"], _WORK["by"], target, topic, _WORK["settings"], _WORK["skip_few"]
        )
    return cell.rows(first, end)


def _map_pair_tasks(
    frame: pd.DataFrame,
    by: str,
    settings: dict[str, Any],
    tasks: list[tuple[str, str, int, int, int]],
    workers: int,
    total: int,
    skip_few: int | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """Each task's rows, in task order: in this process, or in ``workers`` forked processes."""
    if workers == 1 or total < _PARALLEL_MIN_PAIRS or not can_fork():
        cell = None
        for target, topic, first, end, _ in tasks:
            if cell is None or cell.key != (target, topic):
                cell = _Cell(frame, by, target, topic, settings, skip_few)
            yield cell.rows(first, end)
        return
    # Forked workers (batching.can_fork) inherit the table instead of unpickling a copy each.
    # They run only numpy and pandas, none of the parent's threads' libraries.
    _WORK.update(frame=frame, by=by, settings=settings, skip_few=skip_few)
    try:
        with fork_pool(workers) as pool:
            yield from pool.map(_pair_rows, tasks)
    finally:
        _WORK.clear()


def _moments(x: np.ndarray) -> tuple[int, float, float]:
    """Size, mean and variance (``ddof=1``; 0 for one value) of a non-empty array."""
    return x.size, float(x.mean()), float(x.var(ddof=1)) if x.size > 1 else 0.0


def _cohens_d(nx: int, mx: float, vx: float, ny: int, my: float, vy: float) -> float:
    """:func:`cohens_d` from each group's size, mean and variance (``ddof=1``; 0 for one)."""
    import numpy as np

    if nx + ny < 3 or nx == 0 or ny == 0:
        return float("nan")
    pooled = np.sqrt(((nx - 1) * vx + (ny - 1) * vy) / (nx + ny - 2))
    if pooled == 0:
        return float("nan")
    return float((mx - my) / pooled)


def _cliffs_sorted(x: np.ndarray, y_sorted: np.ndarray) -> float:
    """:func:`cliffs_delta` with ``y`` already sorted."""
    import numpy as np

    less = np.searchsorted(y_sorted, x, side="left")
    greater = y_sorted.size - np.searchsorted(y_sorted, x, side="right")
    return float((less.sum() - greater.sum()) / (x.size * y_sorted.size))


def _side(scores: np.ndarray, articles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One group of a contrast: its unit scores and their per-article sums and counts."""
    return (scores, *_article_sums(scores, articles))


# --------------------------------------------------------------------------------------------
# Evidence
# --------------------------------------------------------------------------------------------


def _article_meta(articles: pd.DataFrame) -> pd.DataFrame:
    """``article_id, title, date`` with dates as ISO strings (or empty when undated)."""
    import pandas as pd

    cols = {"article_id": articles["article_id"].astype(str)}
    cols["title"] = articles["title"].fillna("").astype(str) if "title" in articles else ""
    if "date" in articles:
        parsed = parse_dates(articles["date"])
        cols["date"] = parsed.dt.strftime("%Y-%m-%d").fillna("")
    else:
        cols["date"] = ""
    meta = pd.DataFrame(cols).drop_duplicates("article_id")
    meta["title"] = meta["title"].astype(object)
    meta["date"] = meta["date"].astype(object)
    return meta


def evidence(
    units: pd.DataFrame,
    articles: pd.DataFrame,
    *,
    config: Settings | dict[str, Any] | None = None,
    by: str = "source",
) -> pd.DataFrame:
    """Pick the strongest sentences behind every summary cell (source × target × topic, "all").

    For each cell, up to ``compare.evidence_per_cell`` units with a negative score (most negative
    first, ``side="negative"``) and as many with a positive score (most positive first,
    ``side="positive"``). Every cell with at least one unit of non-zero score gets evidence.

    Args:
        units: From :func:`stance_units`.
        articles: Requires ``article_id``; ``title`` and ``date`` are used when present.
        config: Full configuration.
        by: The column the cells are grouped by (default ``source``); another column takes
            the place of ``source``, and the outlet moves to the last column.

    Returns:
        A table with :data:`EVIDENCE_COLUMNS`.
    """
    import pandas as pd

    settings = compare_settings(config)
    k = int(settings["evidence_per_cell"])
    columns = EVIDENCE_COLUMNS if by == "source" else (*_renamed(EVIDENCE_COLUMNS, by), "source")
    if units.empty or k < 1:
        return _empty(columns)
    data = pd.concat([units, units.assign(topic=ALL_TOPICS)], ignore_index=True)
    data = data.merge(_article_meta(articles), on="article_id", how="left")
    data["title"] = data["title"].fillna("")
    data["date"] = data["date"].fillna("")
    keys = [by, "target", "topic"]
    tiebreak = ["article_id", "sentence_id"]
    neg = data[data["stance_score"] < 0].sort_values(
        [*keys, "stance_score", *tiebreak], kind="stable"
    )
    neg = neg.groupby(keys, sort=False).head(k).assign(side="negative")
    pos = data[data["stance_score"] > 0].assign(_neg=lambda d: -d["stance_score"])
    pos = pos.sort_values([*keys, "_neg", *tiebreak], kind="stable")
    pos = pos.groupby(keys, sort=False).head(k).assign(side="positive").drop(columns="_neg")
    out = pd.concat([neg, pos], ignore_index=True)
    if out.empty:
        return _empty(columns)
    out["rank"] = out.groupby([*keys, "side"], sort=False).cumcount() + 1
    out = _typed(out.loc[:, list(columns)])
    return out.sort_values([*keys, "side", "rank"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Aligned claims
# --------------------------------------------------------------------------------------------


# Capitalised words that name no one: titles, honorifics, calendar words, pronouns and the
# determiners and conjunctions that open clauses in headlines and quotes.
_NOT_NAMES = frozenset(
    """
    The A An And But Or If In On At Of For To By With From As It He She They We I You His Her
    Their Its Our This That These Those There Here What When Where Why How Who Which While
    Mr Mrs Ms Dr Sir President Prime Minister Secretary Foreign Defense Defence State Senator
    Sen Rep Representative Gov Governor General Gen Admiral Chancellor King Queen Prince
    Ambassador Spokesman Spokeswoman Spokesperson Chief Director Leader Deputy Vice Officials
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May
    June July August September October November December Jan Feb Mar Apr Jun Jul Aug Sep Sept
    Oct Nov Dec Today Yesterday Tomorrow Also However Still Yet So Now Then After Before But
    """.split()
)
_CAPITALISED = re.compile(r"\b[A-Z][\w'’.-]*[\w]")


def names(sentence: str, exclude: Iterable[str] = ()) -> frozenset[str]:
    """Return the names a sentence mentions: its capitalised words, for event overlap.

    Not counted: the sentence's first word, titles, honorifics, months, weekdays and function
    words (:data:`_NOT_NAMES`), and words of ``exclude`` (the target's own mentions, so that
    two sentences about Russia do not share an event by both saying "Russia"). A possessive
    "'s" is dropped, so "Assad's" and "Assad" are one name.

    Args:
        sentence: The sentence.
        exclude: Phrases whose words are no names here (e.g. the unit's ``mentions``).
    """
    skip = {w for phrase in exclude for w in re.findall(r"[\w.'’-]+", phrase)}
    out = set()
    for m in _CAPITALISED.finditer(sentence):
        if not sentence[: m.start()].strip(" \"“‘'([-—–"):
            continue  # the sentence's first word is capitalised whatever it is
        word = re.sub(r"[’']s$", "", m.group(0))
        if word in _NOT_NAMES or word in skip or len(word) < 2:
            continue
        out.add(word)
    return frozenset(out)


#: Negative units per block of :func:`aligned_claims` (a block × positive units of float32).
_ALIGNED_BLOCK = 512
#: The float32 screen's margin below the threshold (scaled by the vectors' norms when above 1):
#: a float32 dot product of two unit vectors of 384 dimensions is off by at most
#: 384 · 2⁻²⁴ ≈ 2.3e-5 (far less in practice).
_SCREEN = 1e-3


def aligned_claims(
    units: pd.DataFrame,
    sentences: pd.DataFrame,
    vectors: np.ndarray | None,
    articles: pd.DataFrame,
    *,
    config: Settings | dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Pairs of sentences from different sources about the same thing with opposite stance.

    A pair qualifies when both sentences mention the same target, come from different sources,
    their embedding cosine similarity is at least ``compare.aligned_similarity``, and one unit
    is labelled negative and the other positive. Similar wording about the same target is not
    yet the same event, so the pair must also share the event: the articles' dates are at most
    ``compare.aligned_max_days`` apart (when any article of the units is dated, an undated one
    is paired with none; a wholly undated corpus skips the check), and the sentences share at least
    ``compare.aligned_min_shared`` other names (see :func:`names`). Side ``a`` is the negative
    one. Pairs are
    ranked by ``similarity × disagreement`` (``disagreement = score_b − score_a``), at most
    ``compare.aligned_max_pairs`` kept.

    Args:
        units: From :func:`stance_units`.
        sentences: Requires ``article_id, sentence_id``; row ``i`` matches ``vectors[i]``.
        vectors: L2-normalised sentence embeddings, or ``None`` (gives an empty table).
        articles: For titles and dates.
        config: Full configuration.

    Returns:
        A table with :data:`ALIGNED_COLUMNS`.

    Raises:
        ValueError: When ``vectors`` does not have one row per sentence.
    """
    import numpy as np
    import pandas as pd

    settings = compare_settings(config)
    if vectors is None or units.empty:
        return _empty(ALIGNED_COLUMNS)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(sentences):
        raise ValueError(
            "The 'vectors' array must have one row per sentence "
            f"({len(sentences)} rows). Got shape {vectors.shape} instead."
        )
    row_of = pd.Series(
        np.arange(len(sentences)),
        index=pd.MultiIndex.from_arrays(
            [sentences["article_id"].astype(str), sentences["sentence_id"].astype("int64")]
        ),
    )
    row_of = row_of[~row_of.index.duplicated()]
    meta = _article_meta(articles).set_index("article_id")
    threshold = float(settings["aligned_similarity"])
    max_pairs = int(settings["aligned_max_pairs"])
    u = units[units["stance"].isin(["negative", "positive"])].copy()
    idx = pd.MultiIndex.from_arrays([u["article_id"].astype(str), u["sentence_id"].astype("int64")])
    u["_row"] = row_of.reindex(idx).to_numpy()
    u = u[u["_row"].notna()].reset_index(drop=True)
    max_days = int(settings["aligned_max_days"])
    min_shared = int(settings["aligned_min_shared"])
    dates = parse_dates(u["article_id"].astype(str).map(meta["date"]))
    day = ((dates - pd.Timestamp("1970-01-01")).dt.days).to_numpy(dtype=float)
    dated = max_days > 0 and bool(np.isfinite(day).any())
    name_cache: dict[int, frozenset[str]] = {}
    sentence_u = u["sentence"].astype(str).to_numpy()
    mentions_u = u["mentions"].astype(str).to_numpy()

    def names_of(i: int) -> frozenset[str]:
        if i not in name_cache:
            name_cache[i] = names(sentence_u[i], str(mentions_u[i]).split("; "))
        return name_cache[i]

    score = u["stance_score"].to_numpy(float)
    rows_u = u["_row"].astype(int).to_numpy()
    source_u = pd.factorize(u["source"].astype(str))[0]  # integers: compared per candidate
    cand_a: list[np.ndarray] = []
    cand_b: list[np.ndarray] = []
    cand_sim: list[np.ndarray] = []
    for _, tu in u.groupby("target", sort=True):
        neg = tu.index[tu["stance"] == "negative"].to_numpy()
        pos = tu.index[tu["stance"] == "positive"].to_numpy()
        if len(neg) == 0 or len(pos) == 0:
            continue
        # The positive side's vectors once per target, the negative side's a block at a time
        # (spill.take: a memory-mapped corpus leaves no pages resident). Similarities are
        # screened in float32 with a margin wider than its rounding error, then computed in
        # float64 on the few pairs that pass: the same pairs as a float64 product of all.
        vp = take(vectors, rows_u[pos])
        vp32 = vp.astype(np.float32, copy=False)
        vp_norm = float(np.sqrt(np.max(np.sum(vp32**2, axis=1))))
        for lo in range(0, len(neg), _ALIGNED_BLOCK):
            block = neg[lo : lo + _ALIGNED_BLOCK]
            vb = take(vectors, rows_u[block])
            vb32 = vb.astype(np.float32, copy=False)
            margin = _SCREEN * max(1.0, vp_norm * float(np.sqrt(np.max(np.sum(vb32**2, axis=1)))))
            ii, jj = np.nonzero(vb32 @ vp32.T >= threshold - margin)
            # the similar pairs first (few), then the other tests on those pairs only
            ok = source_u[block[ii]] != source_u[pos[jj]]
            if dated:
                # an undated article cannot show that it reports the same event
                ok &= np.abs(day[block[ii]] - day[pos[jj]]) <= max_days
            ii, jj = ii[ok], jj[ok]
            # float64 on the rows and columns that hold a candidate
            ui, ri = np.unique(ii, return_inverse=True)
            uj, rj = np.unique(jj, return_inverse=True)
            sim = (vb[ui].astype(np.float64) @ vp[uj].astype(np.float64).T)[ri, rj]
            ok = sim >= threshold
            ii, jj, sim = ii[ok], jj[ok], sim[ok]
            if min_shared > 0 and len(ii):
                shared = np.array(
                    [
                        len(names_of(int(block[i])) & names_of(int(pos[j]))) >= min_shared
                        for i, j in zip(ii, jj, strict=True)
                    ],
                    dtype=bool,
                )
                ii, jj, sim = ii[shared], jj[shared], sim[shared]
            cand_a.append(block[ii])
            cand_b.append(pos[jj])
            cand_sim.append(sim)
            # Bound memory on corpora full of near-duplicates: keep the best candidates (ties
            # included, so the final ranking does not depend on block boundaries).
            if sum(map(len, cand_a)) > 4 * max_pairs:
                a_, b_, s_ = (np.concatenate(x) for x in (cand_a, cand_b, cand_sim))
                rank_score = s_ * (score[b_] - score[a_])
                cut = np.sort(rank_score)[::-1][max_pairs - 1]
                keep = rank_score >= cut
                cand_a, cand_b, cand_sim = [a_[keep]], [b_[keep]], [s_[keep]]
    if not cand_a or sum(map(len, cand_a)) == 0:
        return _empty(ALIGNED_COLUMNS)
    ia, ib, sims = (np.concatenate(x) for x in (cand_a, cand_b, cand_sim))
    cols = [c for c in ALIGNED_SIDE_COLUMNS if c not in ("title", "date")]
    side_a = u.loc[ia, cols].reset_index(drop=True).add_suffix("_a")
    side_b = u.loc[ib, cols].reset_index(drop=True).add_suffix("_b")
    out = pd.concat([side_a, side_b], axis=1)
    out["target"] = u.loc[ia, "target"].to_numpy()
    out["similarity"] = sims
    out["disagreement"] = score[ib] - score[ia]
    for side in ("a", "b"):
        aid = out[f"article_id_{side}"].astype(str)
        out[f"title_{side}"] = aid.map(meta["title"]).fillna("").to_numpy()
        out[f"date_{side}"] = aid.map(meta["date"]).fillna("").to_numpy()
    out["_score"] = out["similarity"] * out["disagreement"]
    out = out.sort_values(
        ["_score", "target", "article_id_a", "sentence_id_a", "article_id_b", "sentence_id_b"],
        ascending=[False, True, True, True, True, True],
        kind="stable",
    ).head(max_pairs)
    out["rank"] = np.arange(1, len(out) + 1)
    return _typed(out.loc[:, list(ALIGNED_COLUMNS)].reset_index(drop=True))


# --------------------------------------------------------------------------------------------
# Trends
# --------------------------------------------------------------------------------------------


def choose_freq(dates: pd.Series) -> str:
    """Pick a trend bin from the span of the dates.

    Week up to 3 months, month up to 3 years, quarter up to 10 years, else year.
    """
    d = dates.dropna()
    if d.empty:
        return "month"
    # as Python datetimes: a span past 292 years overflows a nanosecond Timedelta
    days = (d.max().to_pydatetime() - d.min().to_pydatetime()).days
    if days <= 92:
        return "week"
    if days <= 3 * 366:
        return "month"
    if days <= 10 * 366:
        return "quarter"
    return "year"


def trends(
    units: pd.DataFrame,
    articles: pd.DataFrame,
    *,
    config: Settings | dict[str, Any] | None = None,
    by: Sequence[str] = ("source",),
    freq: Freq | None = None,
) -> pd.DataFrame:
    """Mean stance per group × target × period, with cluster-bootstrap intervals.

    Undated articles (or dates that do not parse) are skipped. The period length follows
    ``freq`` (default ``compare.trend_freq``; ``"auto"`` picks from the span of the dates).

    Args:
        units: From :func:`stance_units`.
        articles: Requires ``article_id, date`` plus any ``by`` column not in ``units``.
        config: Full configuration.
        by: Grouping columns besides ``target`` (e.g. ``("source",)`` or ``("bias_text",)``).
        freq: Period length, overriding the config.

    Returns:
        ``by`` columns, then ``target, topic`` (always ``"all"``), ``period`` (label),
        ``period_start``, ``freq``, ``n, n_articles, mean, ci_low, ci_high``.
    """
    import pandas as pd

    settings = compare_settings(config)
    freq = freq or settings["trend_freq"]
    if freq not in _FREQS:
        raise ValueError(
            f"The 'freq' parameter must be one of {set(_FREQS)}. Got {freq!r} instead."
        )
    by = list(by)
    out_cols = [*by, *TREND_COLUMNS[1:]]
    if units.empty or "date" not in articles:
        return _empty(out_cols)
    extra = [c for c in by if c not in units.columns]
    meta = articles.loc[:, ["article_id", "date", *extra]].copy()
    meta["article_id"] = meta["article_id"].astype(str)
    meta["_date"] = parse_dates(meta["date"])
    meta = meta.drop(columns="date").drop_duplicates("article_id")
    data = units.merge(meta, on="article_id", how="inner")
    data = data[data["_date"].notna()]
    if data.empty:
        return _empty(out_cols)
    bin_name: str = choose_freq(data["_date"]) if freq == "auto" else str(freq)
    periods = data["_date"].dt.to_period(_PANDAS_FREQ[bin_name])
    data = data.assign(_start=periods.dt.start_time.dt.normalize(), period=periods.astype(str))
    rows = []
    for key, group in data.groupby([*by, "target", "_start", "period"], sort=True):
        mean, low, high = bootstrap_interval(
            group["stance_score"].to_numpy(),
            group["article_id"].to_numpy(),
            resamples=settings["bootstrap_resamples"],
            confidence=settings["confidence"],
            rng=_rng(settings["seed"], "trend", *key),
        )
        *keys, target, start, period = key
        rows.append(
            (
                *keys,
                target,
                ALL_TOPICS,
                period,
                start,
                bin_name,
                len(group),
                group["article_id"].nunique(),
                mean,
                low,
                high,
            )
        )
    out = _typed(pd.DataFrame(rows, columns=out_cols))
    out["period_start"] = pd.to_datetime(out["period_start"]).astype("datetime64[ns]")
    return out.sort_values([*by, "target", "period_start"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def check_group_by(articles: pd.DataFrame | None, group_by: str) -> None:
    """Check that ``group_by`` names a column of the articles table the tables can group by.

    ``article_id`` and ``text`` name no groups, and the comparison tables' own columns cannot
    be the group's: evidence, aligned claims and trends carry each article's ``title`` and
    ``date`` (trends compare over dates), a unit its ``target``, ``topic``, ``sentence`` ….

    Args:
        articles: The articles table, or ``None`` to check only the name (before the ingest).
        group_by: The column compared across.

    Raises:
        ValueError: Naming the column and the columns that could be compared instead.
    """
    taken = (
        {"article_id", "text", "n_mentions", "kind"}
        | set(EVIDENCE_COLUMNS)
        | set(ALIGNED_SIDE_COLUMNS)
        | set(TREND_COLUMNS)
        | set(SUMMARY_OUT_COLUMNS)
    ) - {"source"}
    if group_by in taken:
        options = (
            "'source', 'path' or a column of the inputs or the --sources CSV"
            if articles is None
            else str([c for c in articles.columns if c not in taken])
        )
        hint = " (stance over time is the trends table)" if group_by == "date" else ""
        raise ValueError(
            f"The 'group_by' column {group_by!r} cannot be compared across: the comparison "
            f"tables use the name for a column of their own{hint}. Available: {options}."
        )
    if articles is not None and group_by not in articles.columns:
        options = str([c for c in articles.columns if c not in taken])
        raise ValueError(
            f"The 'group_by' column {group_by!r} is not an article column. Available: {options}."
        )
    if articles is not None and len(articles):
        values = articles[group_by]
        missing = int((values.isna() | (values.astype(str).str.strip() == "")).sum())
        if missing == len(articles):
            raise ValueError(
                f"The 'group_by' column {group_by!r} has no value in any of the "
                f"{len(articles):,} articles: there is nothing to compare across."
            )
        if missing:
            logger.warning(
                "%d of %d articles have no %r value; they are compared as one group ''.",
                missing,
                len(articles),
                group_by,
            )


def with_group(units: pd.DataFrame, articles: pd.DataFrame, group_by: str) -> pd.DataFrame:
    """Return ``units`` with the articles' ``group_by`` column (as strings; missing → ``""``).

    Args:
        units: From :func:`stance_units` (``article_id``).
        articles: Requires ``article_id`` and ``group_by``.
        group_by: An article column, e.g. ``bias_text``.
    """
    check_group_by(articles, group_by)
    if group_by in units.columns:
        return units
    values = articles.drop_duplicates("article_id").set_index(
        articles.drop_duplicates("article_id")["article_id"].astype(str)
    )[group_by]
    group = units["article_id"].astype(str).map(values)
    group = group.where(group.notna(), "").astype(str)
    return units.assign(**{group_by: group.to_numpy()})


def group_order(
    articles: pd.DataFrame, column: str = "source", *, group: str | None = None
) -> list[str]:
    """Return the values of an article column in display order.

    Ordered by their ``group`` (when given, e.g. ``bias_text`` for outlets: groups in order of
    their own volume), then by volume (number of articles, largest first), then by name.

    Args:
        articles: Requires ``article_id``, ``column`` and ``group`` when given.
        column: The column whose values are ordered, e.g. ``source``.
        group: A column that groups the values, e.g. ``bias_text``.

    Raises:
        ValueError: When a column is not in the articles table.
    """
    check_group_by(articles, column)
    a = articles.drop_duplicates("article_id")
    volume = a[column].astype(str).value_counts()
    if group is None:
        return sorted(volume.index, key=lambda v: (-volume[v], v))
    check_group_by(articles, group)
    g = a[group].fillna("").astype(str)
    group_volume = g.value_counts()
    # An outlet belongs to the group most of its articles have (ties: the first by name).
    first = (
        a.assign(_g=g, _v=a[column].astype(str))
        .groupby(["_v", "_g"], sort=True)
        .size()
        .reset_index(name="n")
        .sort_values(["_v", "n", "_g"], ascending=[True, False, True], kind="stable")
        .drop_duplicates("_v")
        .set_index("_v")["_g"]
    )
    return sorted(volume.index, key=lambda v: (-group_volume[first[v]], first[v], -volume[v], v))


def run_compare(
    mentions: pd.DataFrame,
    articles: pd.DataFrame,
    sentences: pd.DataFrame,
    vectors: np.ndarray | None,
    config: Settings | dict[str, Any] | None,
    *,
    progress: bool = True,
    group_by: str = "source",
    workers: int = 1,
) -> dict[str, pd.DataFrame]:
    """Compute every comparison table of a run.

    Args:
        mentions: Scored mentions (``MENTION_COLUMNS``; ``path``/``start``/``end`` unused; with
            a ``kind`` column, the kinds in ``mentions.exclude_kinds`` are left out).
        articles: Requires ``article_id``; ``title`` and ``date`` are used when present.
        sentences: Requires ``article_id, sentence_id``; row ``i`` matches ``vectors[i]``.
        vectors: L2-normalised sentence embeddings or ``None``.
        config: Full configuration (``run.seed`` and the ``compare`` table).
        progress: Show a tqdm bar over the steps.
        group_by: The article column compared (default ``source``): it takes the place of
            ``source`` in summary, contrasts (``{group_by}_a/_b``), evidence and trends, and is
            added to the units. Aligned claims always pair different sources.
        workers: Processes computing the contrasts (:func:`contrasts`); the tables are the
            same whatever their number.

    Returns:
        ``{"units", "summary", "contrasts", "evidence", "aligned", "trends"}`` → DataFrames, each
        sorted deterministically (``units``: see :func:`stance_units`; ``summary``: groups by
        volume, see :func:`group_order`, then target and topic).

    Raises:
        ValueError: When ``group_by`` is not an article column.
    """
    from tqdm.auto import tqdm

    needed = [c for c in MENTION_COLUMNS if c not in ("start", "end")]
    require_columns(mentions, needed, "mentions")
    require_columns(articles, ["article_id"], "articles")
    require_columns(sentences, ["article_id", "sentence_id"], "sentences")
    check_group_by(articles, group_by)
    config = as_settings(config)  # checked once, before any work
    excluded = config.mentions.exclude_kinds
    if excluded and "kind" in mentions.columns:
        mentions = mentions[~mentions["kind"].isin(excluded)].reset_index(drop=True)
    steps = ["units", "summary", "contrasts", "evidence", "aligned", "trends"]
    out: dict[str, pd.DataFrame] = {}
    with tqdm(steps, desc="compare", disable=not progress, leave=False) as bar:
        for step in bar:
            bar.set_postfix_str(step)
            if step == "units":
                units = stance_units(mentions)
                if group_by != "source":
                    units = with_group(units, articles, group_by)
                out["units"] = units
            elif step == "summary":
                s = summarize(units, by=(group_by, "target", "topic"), config=config)
                rank = {v: i for i, v in enumerate(group_order(articles, group_by))}
                s = s.assign(_rank=s[group_by].map(rank).fillna(len(rank)))
                s = s.sort_values(["_rank", group_by, "target", "topic"], kind="stable")
                cols = _renamed(SUMMARY_OUT_COLUMNS, group_by)
                out["summary"] = s.loc[:, list(cols)].reset_index(drop=True)
            elif step == "contrasts":
                out["contrasts"] = contrasts(
                    units, config=config, by=group_by, workers=workers, progress=progress
                )
            elif step == "evidence":
                out["evidence"] = evidence(units, articles, config=config, by=group_by)
            elif step == "aligned":
                out["aligned"] = aligned_claims(units, sentences, vectors, articles, config=config)
            elif step == "trends":
                out["trends"] = trends(units, articles, config=config, by=(group_by,))
    return out
