"""Interactive charts of a run: pure functions from tables to ``plotly.graph_objects.Figure``.

Nothing here calls ``.show()`` or writes files; notebooks display the figures and nbconvert
embeds them. Every piece of corpus text that reaches a title, tick label or hover box goes
through :func:`esc` first, because article titles and sentences are untrusted input (plotly
renders a subset of HTML in labels, and the figure JSON is embedded in a ``<script>`` tag).
Plotly is imported inside each function so that ``import stance`` stays fast.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stance.compare import MIN_ARTICLES
from stance.schema import ALL_TOPICS, STANCE_LABELS

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

#: Diverging scale for stance scores: red (negative) – light grey (neutral) – blue (positive).
STANCE_COLORSCALE: list[list[Any]] = [[0.0, "#b2182b"], [0.5, "#f2f2f2"], [1.0, "#2166ac"]]
STANCE_COLORS: dict[str, str] = {"negative": "#b2182b", "neutral": "#999999", "positive": "#2166ac"}
_TEMPLATE = "plotly_white"


def esc(value: Any, width: int | None = None, max_chars: int | None = 600) -> str:
    """HTML-escape any value for plotly text; optionally wrap to ``width`` with ``<br>``.

    Args:
        value: Anything; ``None``/NaN become an empty string.
        width: Wrap width in characters (``None``: no wrapping).
        max_chars: Truncate longer text with an ellipsis (``None``: keep all).

    Returns:
        Escaped text, safe to place in plotly titles, labels and hover templates.
    """
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = str(value)
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    if width:
        return "<br>".join(html.escape(line) for line in textwrap.wrap(text, width) or [""])
    return html.escape(text)


def _fig(title: str, **layout: Any) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(title=title, template=_TEMPLATE, **layout)
    return fig


def _empty_figure(title: str, message: str) -> go.Figure:
    fig = _fig(esc(title))
    fig.add_annotation(
        text=esc(message),
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 14},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _fmt(x: Any) -> str:
    try:
        return f"{float(x):+.2f}"
    except (TypeError, ValueError):
        return ""


# --------------------------------------------------------------------------------------------
# Stance by source
# --------------------------------------------------------------------------------------------


def cell_anchor(source: Any, target: Any, topic: Any) -> str:
    """Return the HTML id of a summary cell's evidence block (``ev-`` and a stable hash).

    The heatmaps carry it in each cell's ``customdata`` so that a click can show the cell's
    evidence, and the findings link to it; it depends only on the cell's key.
    """
    import hashlib
    import json

    key = json.dumps([str(source), str(target), str(topic)], ensure_ascii=False)
    return "ev-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def _faded(colorscale: list[list[Any]], amount: float = 0.6) -> list[list[Any]]:
    """Blend a colour scale towards white (for cells resting on few articles)."""
    out = []
    for pos, color in colorscale:
        rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
        mixed = [round(c + (255 - c) * amount) for c in rgb]
        out.append([pos, "#{:02x}{:02x}{:02x}".format(*mixed)])
    return out


def stance_heatmap(
    summary: pd.DataFrame,
    topic: str = ALL_TOPICS,
    *,
    target_labels: Mapping[str, str] | None = None,
    min_n: int = 1,
    topic_label: str | None = None,
    min_articles: int = MIN_ARTICLES,
) -> go.Figure:
    """Heatmap of mean stance, sources (rows) × targets (columns), for one topic.

    Each cell shows the mean and its counts of articles and sentences; the hover adds the
    interval. Cells resting on fewer than ``min_articles`` articles are drawn faded in a second
    trace (an anecdote should not look as certain as a pattern). Every cell's ``customdata`` is
    ``[hover text, evidence anchor]`` (see :func:`cell_anchor`): the report's evidence panel
    shows the cell's sentences when it is clicked.

    Args:
        summary: Requires ``source, target, topic, n, mean, ci_low, ci_high``; ``n_articles``
            when present (without it every cell counts as resting on enough articles).
        topic: Topic to show (``"all"`` pools every topic).
        target_labels: Display names of targets (e.g. ``{"us": "United States"}``).
        min_n: Cells with fewer units are left blank.
        topic_label: Display name of the topic in the title.
        min_articles: Cells with fewer articles are faded.

    Returns:
        A figure with one ``Heatmap`` trace (``z`` in [−1, 1]) of the cells with enough articles
        and, when there are any, a second faded one of the others (named ``"few articles"``).
    """
    import numpy as np
    import plotly.graph_objects as go

    data = summary[(summary["topic"] == topic) & (summary["n"] >= min_n)]
    title = f"Mean stance by source and target — topic: {topic_label or topic}"
    if data.empty:
        return _empty_figure(title, f"No mentions for topic {topic!r}.")
    labels = dict(target_labels or {})
    sources = sorted(data["source"].unique())
    targets = sorted(data["target"].unique())
    shape = (len(sources), len(targets))
    z = {True: np.full(shape, np.nan), False: np.full(shape, np.nan)}
    text = np.full(shape, "", dtype=object)
    custom = np.empty(shape, dtype=object)
    for i in range(shape[0]):
        for j in range(shape[1]):
            custom[i, j] = ["", ""]
    n_art = "n_articles" in data
    for r in data.itertuples(index=False):
        i, j = sources.index(r.source), targets.index(r.target)
        arts = int(r.n_articles) if n_art else None
        solid = arts is None or arts >= min_articles
        z[solid][i, j] = r.mean
        counts = f"{arts} art. · {r.n} sent." if arts is not None else f"n={r.n}"
        text[i, j] = f"{r.mean:+.2f}<br>{counts}" if solid else f"<i>{r.mean:+.2f}<br>{counts}</i>"
        hover = (
            f"<b>{esc(r.source)}</b> → {esc(labels.get(r.target, r.target))}<br>"
            f"mean {_fmt(r.mean)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]<br>"
            + (f"{arts} article{'s' if arts != 1 else ''}, " if arts is not None else "")
            + f"{r.n} sentence{'s' if r.n != 1 else ''}"
            + ("" if solid else f"<br><i>fewer than {min_articles} articles: an anecdote</i>")
            + "<br>click for the sentences"
        )
        custom[i, j] = [hover, cell_anchor(r.source, r.target, topic)]
    fig = _fig(esc(title))
    x = [esc(labels.get(t, t)) for t in targets]
    y = [esc(s) for s in sources]
    for solid in (True, False):
        if not solid and np.isnan(z[False]).all():
            continue
        fig.add_trace(
            go.Heatmap(
                z=z[solid],
                x=x,
                y=y,
                zmin=-1,
                zmax=1,
                zmid=0,
                colorscale=STANCE_COLORSCALE if solid else _faded(STANCE_COLORSCALE),
                showscale=solid,
                name="cells" if solid else "few articles",
                text=np.where(np.isnan(z[solid]), "", text),
                texttemplate="%{text}",
                customdata=custom,
                hovertemplate="%{customdata[0]}<extra></extra>",
                hoverongaps=False,
                colorbar={"title": "stance"},
                xgap=2,
                ygap=2,
            )
        )
    if len(fig.data) > 1:
        fig.update_layout(
            title=f"{esc(title)}<br><sup>faded, italic: fewer than {min_articles} articles</sup>"
        )
    fig.update_layout(
        height=max(300, 80 + 40 * len(sources)),
        yaxis={"autorange": "reversed"},
        clickmode="event",
    )
    return fig


def interval_plot(
    summary: pd.DataFrame,
    topic: str = ALL_TOPICS,
    *,
    targets: Sequence[str] | None = None,
    group: str = "source",
    target_labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """Forest plot: mean stance with its interval per group, one panel per target.

    Args:
        summary: Requires ``target, topic, n, mean, ci_low, ci_high`` and the ``group`` column.
        topic: Topic to show.
        targets: Targets to show (default: all in the table, sorted).
        group: Row variable, e.g. ``"source"`` or ``"bias_text"``.
        target_labels: Display names of targets.

    Returns:
        A figure with one ``Scatter`` trace (with ``error_x``) per target.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    data = summary[summary["topic"] == topic] if "topic" in summary else summary
    title = f"Mean stance with {group}-level intervals — topic: {topic}"
    if data.empty:
        return _empty_figure(title, f"No mentions for topic {topic!r}.")
    labels = dict(target_labels or {})
    targets = sorted(data["target"].unique()) if targets is None else list(targets)
    groups = sorted(data[group].astype(str).unique())
    fig = make_subplots(
        rows=1,
        cols=len(targets),
        shared_yaxes=True,
        horizontal_spacing=0.03,
        subplot_titles=[esc(labels.get(t, t)) for t in targets],
    )
    for col, target in enumerate(targets, start=1):
        d = data[data["target"] == target].copy()
        d["_g"] = d[group].astype(str)
        d = d.set_index("_g").reindex(groups).dropna(subset=["mean"]).reset_index()
        arts = d["n_articles"] if "n_articles" in d else [None] * len(d)
        hover = [
            f"<b>{esc(g)}</b> → {esc(labels.get(target, target))}<br>"
            f"mean {_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]<br>"
            + (f"{int(a)} articles, " if a is not None else "")
            + f"{int(n)} sentences"
            for g, m, lo, hi, n, a in zip(
                d["_g"], d["mean"], d["ci_low"], d["ci_high"], d["n"], arts, strict=True
            )
        ]
        fig.add_trace(
            go.Scatter(
                x=d["mean"],
                y=[esc(g) for g in d["_g"]],
                mode="markers",
                name=esc(target),
                marker={
                    "size": 9,
                    "color": d["mean"],
                    "cmin": -1,
                    "cmax": 1,
                    "colorscale": STANCE_COLORSCALE,
                    "line": {"width": 1, "color": "#333"},
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (d["ci_high"] - d["mean"]).to_numpy(),
                    "arrayminus": (d["mean"] - d["ci_low"]).to_numpy(),
                    "color": "#555",
                },
                customdata=hover,
                hovertemplate="%{customdata}<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        fig.add_vline(x=0, line={"color": "#aaa", "dash": "dot"}, row=1, col=col)
        fig.update_xaxes(range=[-1.05, 1.05], row=1, col=col)
    fig.update_layout(title=esc(title), template=_TEMPLATE, height=max(300, 80 + 28 * len(groups)))
    fig.update_yaxes(
        autorange="reversed", categoryorder="array", categoryarray=[esc(g) for g in groups]
    )
    return fig


def contrast_plot(
    contrasts: pd.DataFrame, target: str, topic: str = ALL_TOPICS, *, max_pairs: int = 40
) -> go.Figure:
    """Differences between sources for one target and topic, with intervals.

    Pairs are ordered by ``diff``; filled markers are significant after Benjamini–Hochberg,
    open markers are not. At most ``max_pairs`` pairs with the smallest adjusted p-values.

    Args:
        contrasts: From :func:`stance.compare.contrasts`.
        target: Target to show.
        topic: Topic to show.
        max_pairs: Cap on the number of pairs.

    Returns:
        A figure with a ``Scatter`` trace per significance class.
    """
    import plotly.graph_objects as go

    d = contrasts[(contrasts["target"] == target) & (contrasts["topic"] == topic)]
    title = f"Source differences in stance toward {target} — topic: {topic}"
    if d.empty:
        return _empty_figure(title, "No pair of sources has mentions of this target here.")
    d = d.sort_values(["p_adjusted", "source_a", "source_b"], kind="stable").head(max_pairs)
    d = d.sort_values(["diff", "source_a", "source_b"], kind="stable")
    d = d.assign(
        _pair=[f"{esc(a)} − {esc(b)}" for a, b in zip(d["source_a"], d["source_b"], strict=True)]
    )
    fig = _fig(esc(title), xaxis_title="difference of mean stance (a − b)")
    for sig, symbol, name in (
        (True, "circle", "significant (BH)"),
        (False, "circle-open", "not significant"),
    ):
        s = d[d["significant"] == sig]
        if s.empty:
            continue
        hover = [
            f"<b>{p}</b><br>diff {_fmt(r.diff)} [{_fmt(r.diff_ci_low)}, {_fmt(r.diff_ci_high)}]"
            f"<br>means {_fmt(r.mean_a)} vs {_fmt(r.mean_b)}"
            + (
                f" ({r.n_articles_a} / {r.n_articles_b} articles, {r.n_a} / {r.n_b} sentences)"
                if hasattr(r, "n_articles_a")
                else f" (n {r.n_a} / {r.n_b})"
            )
            + f"<br>Cohen's d {_fmt(r.effect_size)}, Cliff's δ {_fmt(r.cliffs_delta)}"
            f"<br>p = {r.p_value:.4f}, adjusted {r.p_adjusted:.4f}"
            for p, r in zip(s["_pair"], s.itertuples(index=False), strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=s["diff"],
                y=s["_pair"],
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": 10, "color": "#333"},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (s["diff_ci_high"] - s["diff"]).to_numpy(),
                    "arrayminus": (s["diff"] - s["diff_ci_low"]).to_numpy(),
                    "color": "#777",
                },
                customdata=hover,
                hovertemplate="%{customdata}<extra></extra>",
            )
        )
    fig.add_vline(x=0, line={"color": "#aaa", "dash": "dot"})
    fig.update_yaxes(categoryorder="array", categoryarray=list(d["_pair"]))
    fig.update_layout(height=max(300, 100 + 26 * len(d)))
    return fig


def trend_plot(
    trends: pd.DataFrame,
    target: str,
    *,
    group: str = "source",
    groups: Sequence[str] | None = None,
    min_articles: int = 2,
) -> go.Figure:
    """Mean stance over time per group for one target, with interval bands.

    A period resting on fewer than ``min_articles`` articles has no band (an interval drawn
    from the sentences of one article would look as certain as one over many articles): its
    point is an open marker and its hover says so. Bands are drawn over runs of consecutive
    periods that have one; every such period's point also carries its interval as an error bar,
    so an isolated period keeps its interval.

    Args:
        trends: From :func:`stance.compare.trends` (``period_start, mean, ci_low, ci_high, n``;
            ``n_articles`` when present).
        target: Target to show.
        group: Column that defines the lines (``"source"``, ``"bias_text"`` …).
        groups: Which groups to draw (default: all, sorted).
        min_articles: Periods with fewer articles get no band.

    Returns:
        A figure with, per group, a band trace (``fill="toself"``, one closed shape per run of
        periods with enough articles; absent when there is none) and a line trace.
    """
    import plotly.express as px
    import plotly.graph_objects as go

    d = trends[trends["target"] == target]
    title = f"Stance toward {target} over time, by {group}"
    if d.empty:
        return _empty_figure(title, "No dated articles mention this target.")
    names = sorted(d[group].astype(str).unique()) if groups is None else list(groups)
    palette = px.colors.qualitative.Plotly + px.colors.qualitative.D3
    fig = _fig(
        esc(title), yaxis={"range": [-1.05, 1.05], "title": "mean stance"}, xaxis_title="period"
    )
    for i, name in enumerate(names):
        g = d[d[group].astype(str) == name].sort_values("period_start")
        if g.empty:
            continue
        color = palette[i % len(palette)]
        x = list(g["period_start"])
        arts = list(g["n_articles"]) if "n_articles" in g else [None] * len(g)
        ok = [a is None or a >= min_articles for a in arts]
        band_x: list[Any] = []
        band_y: list[Any] = []
        k = 0
        while k < len(x):
            if not ok[k]:
                k += 1
                continue
            end = k
            while end + 1 < len(x) and ok[end + 1]:
                end += 1
            if end > k:  # a single period makes no area; its error bar shows the interval
                xs, hi, lo = x[k : end + 1], g["ci_high"].iloc[k : end + 1], g["ci_low"]
                band_x += [*xs, *xs[::-1], None]
                band_y += [*hi, *list(lo.iloc[k : end + 1])[::-1], None]
            k = end + 1
        if band_x:
            fig.add_trace(
                go.Scatter(
                    x=band_x[:-1],
                    y=band_y[:-1],
                    fill="toself",
                    fillcolor=color,
                    opacity=0.18,
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=esc(name),
                    name=esc(name) + " interval",
                )
            )
        hover = [
            f"<b>{esc(name)}</b> {esc(p)}<br>mean {_fmt(m)}"
            + (f" [{_fmt(lo)}, {_fmt(hi)}]" if good else "")
            + (f"<br>{a} article{'s' if a != 1 else ''}, " if a is not None else "<br>")
            + f"{n} sentence{'s' if n != 1 else ''}"
            + ("" if good else f"<br><i>fewer than {min_articles} articles: no interval</i>")
            for p, m, lo, hi, n, a, good in zip(
                g["period"], g["mean"], g["ci_low"], g["ci_high"], g["n"], arts, ok, strict=True
            )
        ]
        upper = [
            hi - m if good else 0.0 for hi, m, good in zip(g["ci_high"], g["mean"], ok, strict=True)
        ]
        lower = [
            m - lo if good else 0.0 for lo, m, good in zip(g["ci_low"], g["mean"], ok, strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=g["mean"],
                mode="lines+markers",
                name=esc(name),
                legendgroup=esc(name),
                line={"color": color},
                marker={
                    "symbol": ["circle" if good else "circle-open" for good in ok],
                    "size": [7 if good else 9 for good in ok],
                },
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": upper,
                    "arrayminus": lower,
                    "thickness": 1,
                    "width": 3,
                    "color": color,
                },
                customdata=hover,
                hovertemplate="%{customdata}<extra></extra>",
            )
        )
    fig.add_hline(y=0, line={"color": "#aaa", "dash": "dot"})
    if not all(
        a is None or a >= min_articles for a in (d["n_articles"] if "n_articles" in d else [None])
    ):
        fig.update_layout(
            title=f"{esc(title)}<br><sup>open markers: periods with fewer than {min_articles} "
            "articles (no interval)</sup>"
        )
    return fig


# --------------------------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------------------------


def topic_map(
    topic_map: pd.DataFrame,
    sentences: pd.DataFrame,
    topics: pd.DataFrame | None = None,
    *,
    max_points: int = 4000,
    seed: int = 0,
) -> go.Figure:
    """2-D map of sentences coloured by topic, hover showing the (escaped) sentence.

    Uses SVG scatter traces (not WebGL) so the map renders in any browser, including headless
    ones; above ``max_points`` sentences a seeded sample is drawn.

    Args:
        topic_map: Requires ``article_id, sentence_id, x, y``.
        sentences: Requires ``article_id, sentence_id, source, sentence, topic``.
        topics: Optional ``topic, label`` for legend names.
        max_points: Sampling cap.
        seed: Seed of the sample.

    Returns:
        A figure with one ``Scatter`` trace per topic.
    """
    import plotly.graph_objects as go

    if topic_map.empty:
        return _empty_figure("Topic map", "The run has no topic map.")
    d = topic_map.merge(
        sentences.loc[:, ["article_id", "sentence_id", "source", "sentence", "topic"]],
        on=["article_id", "sentence_id"],
        how="left",
    )
    title = "Sentences in topic space"
    if len(d) > max_points:
        d = d.sample(n=max_points, random_state=seed).sort_index()
        title += f" (sample of {max_points})"
    labels = {}
    if topics is not None and not topics.empty:
        labels = dict(zip(topics["topic"].astype(str), topics["label"].astype(str), strict=False))
    fig = _fig(esc(title), xaxis={"visible": False}, yaxis={"visible": False}, height=600)
    for topic, g in d.groupby(d["topic"].fillna("noise").astype(str), sort=True):
        hover = [
            f"<b>{esc(labels.get(topic, topic))}</b> · {esc(s)}<br>{esc(t, 80, 300)}"
            for s, t in zip(g["source"], g["sentence"], strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=g["x"],
                y=g["y"],
                mode="markers",
                name=esc(labels.get(topic, topic)),
                marker={"size": 5, "opacity": 0.3 if topic == "noise" else 0.75},
                customdata=hover,
                hovertemplate="%{customdata}<extra></extra>",
            )
        )
    return fig


def topic_share(
    sentences: pd.DataFrame, topics: pd.DataFrame | None = None, *, normalize: bool = True
) -> go.Figure:
    """Stacked bars: share (or count) of each source's sentences per topic.

    Args:
        sentences: Requires ``source, topic``.
        topics: Optional ``topic, label`` for legend names.
        normalize: Shares (True) or counts (False).

    Returns:
        A figure with one ``Bar`` trace per topic.
    """
    import plotly.graph_objects as go

    if sentences.empty:
        return _empty_figure("Topic share by source", "No sentences.")
    counts = (
        sentences.assign(topic=sentences["topic"].fillna("noise").astype(str), _one=1)
        .pivot_table(index="source", columns="topic", values="_one", aggfunc="sum", fill_value=0)
        .sort_index()
    )
    values = counts.div(counts.sum(axis=1), axis=0) if normalize else counts
    labels = {}
    if topics is not None and not topics.empty:
        labels = dict(zip(topics["topic"].astype(str), topics["label"].astype(str), strict=False))
    fig = _fig(
        "Topic share by source",
        barmode="stack",
        xaxis_title="share of sentences" if normalize else "sentences",
        height=max(300, 80 + 30 * len(values)),
    )
    for topic in sorted(values.columns):
        fig.add_trace(
            go.Bar(
                y=[esc(s) for s in values.index],
                x=values[topic],
                orientation="h",
                name=esc(labels.get(topic, topic)),
                customdata=counts[topic],
                hovertemplate=f"{esc(labels.get(topic, topic))}<br>%{{y}}: %{{x:.2f}} "
                "(%{customdata} sentences)<extra></extra>",
            )
        )
    fig.update_yaxes(autorange="reversed")
    return fig


# --------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------


def corpus_overview(
    articles: pd.DataFrame, sentences: pd.DataFrame, mentions: pd.DataFrame
) -> go.Figure:
    """Articles, sentences and target mentions per source, as grouped horizontal bars.

    Args:
        articles: Requires ``source``.
        sentences: Requires ``source``.
        mentions: Requires ``source``.

    Returns:
        A figure with three ``Bar`` traces (log-scaled x axis).
    """
    import pandas as pd
    import plotly.graph_objects as go

    table = (
        pd.DataFrame(
            {
                "articles": articles.groupby("source").size(),
                "sentences": sentences.groupby("source").size(),
                "mentions": mentions.groupby("source").size(),
            }
        )
        .fillna(0)
        .astype(int)
        .sort_index()
    )
    if table.empty:
        return _empty_figure("Corpus overview", "The run has no articles.")
    fig = _fig(
        "Articles, sentences and target mentions per source",
        barmode="group",
        xaxis={"type": "log", "title": "count (log scale)"},
        height=max(300, 80 + 45 * len(table)),
    )
    for col in ("articles", "sentences", "mentions"):
        fig.add_trace(
            go.Bar(
                y=[esc(s) for s in table.index],
                x=table[col],
                name=col,
                orientation="h",
                hovertemplate="%{y}: %{x} " + col + "<extra></extra>",
            )
        )
    fig.update_yaxes(autorange="reversed")
    return fig


def mention_counts(mentions: pd.DataFrame) -> go.Figure:
    """Stance labels of target mentions per source × target, as stacked bars.

    Args:
        mentions: Requires ``source, target, stance``.

    Returns:
        A figure with one ``Bar`` trace per stance label.
    """
    import plotly.graph_objects as go

    if mentions.empty:
        return _empty_figure("Mentions by stance", "The run has no mentions.")
    counts = mentions.assign(_one=1).pivot_table(
        index=["source", "target"], columns="stance", values="_one", aggfunc="sum", fill_value=0
    )
    counts = counts.reindex(columns=list(STANCE_LABELS), fill_value=0).sort_index()
    y = [f"{esc(s)} · {esc(t)}" for s, t in counts.index]
    fig = _fig(
        "Mentions by stance label, per source and target",
        barmode="stack",
        height=max(300, 80 + 22 * len(counts)),
        xaxis_title="mentions",
    )
    for label in STANCE_LABELS:
        fig.add_trace(
            go.Bar(
                y=y,
                x=counts[label],
                name=label,
                orientation="h",
                marker_color=STANCE_COLORS[label],
                hovertemplate="%{y}: %{x} " + label + "<extra></extra>",
            )
        )
    fig.update_yaxes(autorange="reversed")
    return fig


# --------------------------------------------------------------------------------------------
# Stance-model validation
# --------------------------------------------------------------------------------------------


def _splits(evaluation: Mapping[str, Any]) -> list[str]:
    return sorted(k for k, v in evaluation.items() if isinstance(v, Mapping) and "macro_f1" in v)


def f1_bars(evaluation: Mapping[str, Any]) -> go.Figure:
    """Per-class F1 (and macro-F1 in the legend) for every test split of ``evaluation.json``.

    Args:
        evaluation: ``{"rw/test": {"macro_f1", "per_class": {label: {"f1", ...}}, ...}, ...}``.

    Returns:
        A figure with one ``Bar`` trace per split.
    """
    import plotly.graph_objects as go

    splits = _splits(evaluation)
    if not splits:
        return _empty_figure("Stance model: F1 per class", "No evaluation metrics found.")
    fig = _fig(
        "Stance model: F1 per class on held-out test sets",
        barmode="group",
        yaxis={"range": [0, 1], "title": "F1"},
    )
    for split in splits:
        ev = evaluation[split]
        per = ev.get("per_class", {}) or {}
        labels = [lbl for lbl in STANCE_LABELS if lbl in per] or sorted(per)
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[float(per[lbl].get("f1", float("nan"))) for lbl in labels],
                name=f"{esc(split)} (macro-F1 {float(ev['macro_f1']):.2f})",
                hovertemplate="%{x}: F1 %{y:.3f}<extra></extra>",
            )
        )
    return fig


def confusion_heatmap(evaluation: Mapping[str, Any], split: str | None = None) -> go.Figure:
    """Confusion matrix (rows = true label, columns = predicted), counts and row shares.

    Args:
        evaluation: As for :func:`f1_bars`; the split needs ``confusion`` (a 3×3 list).
        split: Which split (default: the first with a confusion matrix).

    Returns:
        A figure with one ``Heatmap`` trace of row-normalised shares.

    Raises:
        ValueError: When ``split`` is not in ``evaluation``.
    """
    import numpy as np
    import plotly.graph_objects as go

    splits = [s for s in _splits(evaluation) if "confusion" in evaluation[s]]
    if split is None:
        if not splits:
            return _empty_figure("Confusion matrix", "No confusion matrix in the evaluation.")
        split = splits[0]
    elif split not in splits:
        raise ValueError(f"The 'split' parameter must be one of {splits}. Got {split!r} instead.")
    ev = evaluation[split]
    cm = np.asarray(ev["confusion"], dtype=float)
    labels = list(ev.get("labels", STANCE_LABELS))[: cm.shape[0]]
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    text = [
        [f"{int(cm[i, j])}<br>{share[i, j]:.0%}" for j in range(cm.shape[1])]
        for i in range(cm.shape[0])
    ]
    fig = _fig(
        f"Confusion matrix — {esc(split)}",
        xaxis_title="predicted",
        yaxis={"title": "true", "autorange": "reversed"},
    )
    fig.add_trace(
        go.Heatmap(
            z=share,
            x=labels,
            y=labels,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>",
        )
    )
    return fig


def calibration_curve(evaluation: Mapping[str, Any]) -> go.Figure:
    """Reliability diagram from calibration bins, when the evaluation has them.

    Accepts, per split, ``calibration`` as written by ``stance evaluate``
    (``{"ece", "bins": [{"lo", "hi", "n", "mean_confidence", "accuracy"}, ...]}``, empty bins
    skipped, the ECE shown in the legend), as a list of ``{"confidence", "accuracy", "count"}``
    bins, or as ``{"confidence": [...], "accuracy": [...], "count": [...]}``.

    Args:
        evaluation: As for :func:`f1_bars`.

    Returns:
        A figure with the diagonal and one line per split with bins.
    """
    import plotly.graph_objects as go

    fig = _fig(
        "Stance model calibration (top-label confidence vs accuracy)",
        xaxis={"range": [0, 1], "title": "mean confidence"},
        yaxis={"range": [0, 1], "title": "accuracy"},
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line={"dash": "dot", "color": "#999"},
        )
    )
    found = False
    for split in _splits(evaluation):
        bins = _calibration_bins(evaluation[split].get("calibration"))
        if bins is None:
            continue
        found = True
        conf, acc, count = bins
        cal = evaluation[split].get("calibration")
        ece = cal.get("ece") if isinstance(cal, Mapping) else None
        fig.add_trace(
            go.Scatter(
                x=conf,
                y=acc,
                mode="lines+markers",
                name=esc(split) + (f" (ECE {float(ece):.3f})" if ece is not None else ""),
                customdata=count,
                hovertemplate="confidence %{x:.2f}: accuracy %{y:.2f} "
                "(%{customdata} examples)<extra></extra>",
            )
        )
    if not found:
        fig.add_annotation(
            text="No calibration bins in the evaluation.",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
    return fig


def _calibration_bins(cal: Any) -> tuple[list[float], list[float], list[int]] | None:
    try:
        if isinstance(cal, Mapping) and isinstance(cal.get("bins"), Sequence):
            # What ``stance evaluate`` writes (stance.training.calibration_table): ten fixed
            # bins of top-label confidence, empty ones with ``n == 0`` and no values.
            used = [
                b
                for b in cal["bins"]
                if isinstance(b, Mapping)
                and b.get("n")
                and b.get("mean_confidence") is not None
                and b.get("accuracy") is not None
            ]
            if not used:
                return None
            conf = [float(b["mean_confidence"]) for b in used]
            acc = [float(b["accuracy"]) for b in used]
            count = [int(b["n"]) for b in used]
        elif isinstance(cal, Mapping):
            conf = [float(x) for x in cal["confidence"]]
            acc = [float(x) for x in cal["accuracy"]]
            count = [int(x) for x in cal.get("count", [0] * len(conf))]
        elif isinstance(cal, Sequence) and cal and isinstance(cal[0], Mapping):
            conf = [float(b["confidence"]) for b in cal]
            acc = [float(b["accuracy"]) for b in cal]
            count = [int(b.get("count", 0)) for b in cal]
        else:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return conf, acc, count
