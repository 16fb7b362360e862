"""Views: the tables, HTML snippets and readings the report notebooks show.

The notebooks stay free of definitions: everything they need to turn a run's tables into
something a reader can scan lives here (escaped HTML tables, evidence lists, aligned claims,
readings of the summary, provenance, topic and voice tables, the AllSides case-study sample).
Every string that comes from the corpus is HTML-escaped before it reaches a report.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stance.compare import MIN_ARTICLES
from stance.evaluation import stance_model_info
from stance.schema import ALL_TOPICS, NOISE_TOPIC

if TYPE_CHECKING:
    import pandas as pd
    from IPython.display import HTML


def _html(text: str) -> HTML:
    """Wrap report HTML so that MathJax leaves it alone.

    The exported page runs MathJax over everything; news text with two dollar signs ("$5
    billion ... $3 billion") would be typeset as mathematics. ``tex2jax_ignore`` is the class
    MathJax 2 and 3 skip by default.
    """
    from IPython.display import HTML

    return HTML(f"<div class='tex2jax_ignore'>{text}</div>")


def table_html(
    df: pd.DataFrame, *, max_rows: int = 50, float_format: str = "{:+.3f}", caption: str = ""
) -> HTML:
    """Build an escaped HTML table for a report (no truncated cells, at most ``max_rows`` rows).

    Args:
        df: Any table; every cell is HTML-escaped.
        max_rows: Rows shown; a note says how many were left out.
        float_format: Format of float cells.
        caption: Optional caption (escaped).

    Returns:
        An ``IPython.display.HTML`` object.
    """
    import pandas as pd

    shown = df.head(max_rows)
    # Signed format for scores and differences; p-values, shares and similarities unsigned.
    unsigned = {
        c
        for c in shown.columns
        if str(c).startswith("p_") or c in ("similarity", "precision", "recall", "f1")
    }
    formatters: dict[Any, Any] = {
        c: ("{:.4f}" if c in unsigned else float_format).format
        for c in shown.columns
        if pd.api.types.is_float_dtype(shown[c])
    }
    # A count column turns float when it has gaps (e.g. ``support`` next to macro rows); it
    # still prints as a count, never as "+346.000".
    for c in shown.columns:
        if c in formatters and _is_count(str(c)):
            values = shown[c].dropna()
            if (values == values.round()).all():
                formatters[c] = _format_count
    body = shown.to_html(
        index=False,
        escape=True,
        na_rep="",
        border=0,
        classes="stance-table",
        formatters=formatters,
    )
    if df.empty:
        body = "<p><em>None.</em></p>"
    note = ""
    if len(df) > max_rows:
        note = f"<p><em>{max_rows} of {len(df)} rows shown.</em></p>"
    cap = f"<p><strong>{html.escape(caption)}</strong></p>" if caption else ""
    return _html(_TABLE_STYLE + cap + body + note)


#: Columns that hold counts (printed as integers however pandas typed them).
COUNT_COLUMNS: frozenset[str] = frozenset(
    {"n", "support", "size", "count", "articles", "sentences", "mentions", "dated articles"}
)


def _is_count(column: str) -> bool:
    return column in COUNT_COLUMNS or column.startswith("n_")


def _format_count(value: Any) -> str:
    return "" if value != value else f"{int(value):d}"


_TABLE_STYLE = (
    "<style>.stance-table{border-collapse:collapse;font-size:12px;margin:4px 0}"
    ".stance-table td,.stance-table th{border-bottom:1px solid #ddd;padding:3px 6px;"
    "text-align:left;vertical-align:top;max-width:520px}"
    ".stance-ev{margin:2px 0 8px 0}.stance-neg{color:#b2182b}.stance-pos{color:#2166ac}"
    "details.stance-cell{margin:2px 0}details.stance-cell summary{cursor:pointer}</style>"
)


def _score_span(score: float) -> str:
    cls = "stance-neg" if score < 0 else "stance-pos"
    return f'<span class="{cls}">{score:+.2f}</span>'


def evidence_html(
    summary: pd.DataFrame,
    evidence: pd.DataFrame,
    *,
    topic: str = ALL_TOPICS,
    target: str | None = None,
    max_cells: int = 200,
) -> HTML:
    """Drill-down: one collapsible block per source × target cell with its evidence sentences.

    Args:
        summary: The summary table (for each cell's mean, interval and n).
        evidence: The evidence table.
        topic: Topic of the cells.
        target: Only this target (default: all).
        max_cells: Cap on cells shown.

    Returns:
        An ``IPython.display.HTML`` object of ``<details>`` blocks.
    """
    s = summary[summary["topic"] == topic]
    if target is not None:
        s = s[s["target"] == target]
    s = s.sort_values(["target", "source"]).head(max_cells)
    ev = evidence[evidence["topic"] == topic]
    groups = {k: g for k, g in ev.groupby(["source", "target"], sort=False)}
    parts = [_TABLE_STYLE]
    for r in s.itertuples(index=False):
        g = groups.get((r.source, r.target))
        head = (
            f"<strong>{html.escape(str(r.source))}</strong> → {html.escape(str(r.target))}: "
            f"mean {_score_span(r.mean)} [{r.ci_low:+.2f}, {r.ci_high:+.2f}], n = {r.n}"
        )
        items = []
        if g is not None:
            for e in g.sort_values(["side", "rank"]).itertuples(index=False):
                meta = ", ".join(
                    html.escape(str(x)) for x in (e.title, e.date) if isinstance(x, str) and x
                )
                voice = str(getattr(e, "voice", "author") or "author")
                model = getattr(e, "model_score", None)
                note = "" if voice == "author" else f" {html.escape(voice)}"
                if voice != "author" and model is not None and model == model:
                    note += f", model {float(model):+.2f}"
                items.append(
                    f"<li class='stance-ev'>{_score_span(e.stance_score)} "
                    f"“{html.escape(str(e.sentence))}” "
                    f"<small>[{html.escape(str(e.mentions))}{note}; {meta}]</small></li>"
                )
        body = "<ul>" + "".join(items) + "</ul>" if items else "<p>No evidence.</p>"
        parts.append(f"<details class='stance-cell'><summary>{head}</summary>{body}</details>")
    if len(parts) == 1:
        parts.append("<p>No cells for this selection.</p>")
    return _html("".join(parts))


#: Script of the evidence panel: a click on a heatmap cell (plotly's ``plotly_click`` event, whose
#: point carries the cell's anchor as ``customdata[1]``) or a link to ``#ev-…`` un-hides that
#: cell's pre-rendered block and hides the others. It only toggles ``hidden``: no corpus text
#: passes through JavaScript, so none can become markup.
_EVIDENCE_SCRIPT = """<script>
(function () {
  function show(id) {
    var el = id ? document.getElementById(id) : null;
    if (!el || !el.classList.contains("stance-evidence-cell")) { return false; }
    document.querySelectorAll(".stance-evidence-cell").forEach(function (c) {
      c.hidden = c !== el;
    });
    document.querySelectorAll(".stance-evidence-hint").forEach(function (h) { h.hidden = true; });
    if (el.scrollIntoView) { el.scrollIntoView({block: "nearest"}); }
    return true;
  }
  function onClick(ev) {
    var pt = ev && ev.points && ev.points[0];
    var cd = pt && pt.customdata;
    if (cd && typeof cd[1] === "string" && cd[1].indexOf("ev-") === 0) { show(cd[1]); }
  }
  function bind() {
    var pending = 0;
    document.querySelectorAll(".plotly-graph-div").forEach(function (gd) {
      if (gd.getAttribute("data-stance-click")) { return; }
      if (typeof gd.on !== "function") { pending += 1; return; }
      gd.setAttribute("data-stance-click", "1");
      gd.on("plotly_click", onClick);
    });
    return pending;
  }
  var tries = 0;
  (function poll() { if (bind() > 0 && tries++ < 120) { setTimeout(poll, 250); } })();
  window.addEventListener("load", bind);
  window.addEventListener("hashchange", function () { show(location.hash.slice(1)); });
  if (location.hash) { show(location.hash.slice(1)); }
})();
</script>"""

_PANEL_STYLE = (
    "<style>.stance-evidence{border:1px solid #ccc;border-radius:4px;padding:6px 10px;"
    "margin:8px 0;background:#fafafa}.stance-evidence-cell h4{margin:4px 0}"
    ".stance-evidence-cell mark{background:#fde68a;padding:0 1px}"
    ".stance-ev-meta{color:#555;font-size:11px}.stance-few{color:#8a5a00}</style>"
)


def _highlight(sentence: str, forms: str) -> str:
    """Escape ``sentence``, marking each whole-word occurrence of a surface form.

    ``forms`` joins the forms with ``"; "`` (``"Putin; Russia"``); matches are wrapped in
    ``<mark>``, and the text around and inside the marks stays escaped.
    """
    import re

    words = sorted({f for f in str(forms).split("; ") if f.strip()}, key=lambda f: (-len(f), f))
    if not words:
        return html.escape(sentence)
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)")
    out, pos = [], 0
    for m in pattern.finditer(sentence):
        out.append(html.escape(sentence[pos : m.start()]))
        out.append(f"<mark>{html.escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(html.escape(sentence[pos:]))
    return "".join(out)


def _signed(x: float) -> str:
    """``+0.42`` / ``−0.42`` (a real minus sign), as a reader expects in prose."""
    return f"{float(x):+.2f}".replace("-", "\u2212")


def _evidence_item(e: Any, source: str) -> str:
    voice = str(getattr(e, "voice", "author") or "author")
    model = getattr(e, "model_score", None)
    bits = [f"voice: {html.escape(voice)}", f"author's stance {_signed(e.stance_score)}"]
    if model is not None and model == model:
        bits.append(f"model {_signed(model)}")
    title = str(e.title) if isinstance(e.title, str) and e.title else "(untitled)"
    bits.append(f"<cite>{html.escape(title)}</cite>")
    bits.append(html.escape(source))
    if isinstance(e.date, str) and e.date:
        bits.append(html.escape(e.date))
    return (
        f"<li class='stance-ev'>{_score_span(e.stance_score)} "
        f"“{_highlight(str(e.sentence), str(e.mentions))}”"
        f"<div class='stance-ev-meta'>{' · '.join(bits)}</div></li>"
    )


def evidence_panel(
    summary: pd.DataFrame,
    evidence: pd.DataFrame,
    *,
    topics: Sequence[str] | None = None,
    target_labels: Mapping[str, str] | None = None,
    topic_labels: Mapping[str, str] | None = None,
    min_articles: int = MIN_ARTICLES,
) -> HTML:
    """Evidence one click away: a panel that shows the sentences of the heatmap cell clicked.

    Every summary cell (source × target × topic) of ``topics`` gets a hidden, pre-rendered
    block with the id :func:`stance.plots.cell_anchor` gives — the anchor each heatmap cell
    carries in its ``customdata`` and each finding links to. A small inline script shows the
    block of a clicked cell (plotly's ``plotly_click`` event) or of a followed ``#ev-…`` link;
    it works in the exported HTML without a server. A block lists the cell's most negative and
    most positive sentences with the mention highlighted, their voice, the author's and the
    model's score, the article's title, the source and the date. All corpus text is escaped.

    Args:
        summary: The summary table (each cell's mean, interval, ``n``; ``n_articles`` if present).
        evidence: The evidence table (:func:`stance.compare.evidence`).
        topics: Topics whose cells get a block (default: every topic of ``summary``).
        target_labels: Display names of targets.
        topic_labels: Display names of topics.
        min_articles: Cells with fewer articles say that they are an anecdote.

    Returns:
        An ``IPython.display.HTML`` object (blocks, then the script).
    """
    from stance.plots import cell_anchor

    tl = dict(target_labels or {})
    pl = dict(topic_labels or {})
    s = summary if topics is None else summary[summary["topic"].isin(list(topics))]
    s = s.sort_values(["topic", "target", "source"], kind="stable")
    groups = {k: g for k, g in evidence.groupby(["source", "target", "topic"], sort=False)}
    blocks = []
    for r in s.itertuples(index=False):
        arts = getattr(r, "n_articles", None)
        few = arts is not None and arts < min_articles
        counts = (
            f"{arts} article{'s' if arts != 1 else ''}, " if arts is not None else ""
        ) + f"{r.n} sentence{'s' if r.n != 1 else ''}"
        note = (
            f" <span class='stance-few'>— fewer than {min_articles} articles: an anecdote, "
            "not a pattern</span>"
            if few
            else ""
        )
        head = (
            f"<h4>{html.escape(str(r.source))} → {html.escape(tl.get(r.target, str(r.target)))}"
            + (
                " · all topics"
                if r.topic == ALL_TOPICS
                else f" · topic: {html.escape(pl.get(r.topic, str(r.topic)))}"
            )
            + "</h4>"
            f"<p>mean {_score_span(r.mean)} [{_signed(r.ci_low)}, {_signed(r.ci_high)}], "
            f"{counts}{note}</p>"
        )
        g = groups.get((r.source, r.target, r.topic))
        lists = []
        for side, label in (("negative", "Most negative"), ("positive", "Most positive")):
            rows = g[g["side"] == side].sort_values("rank") if g is not None else None
            if rows is None or rows.empty:
                continue
            items = "".join(_evidence_item(e, str(r.source)) for e in rows.itertuples())
            lists.append(f"<p><strong>{label}</strong></p><ol>{items}</ol>")
        body = "".join(lists) or "<p>Every sentence of this cell scores exactly 0.</p>"
        blocks.append(
            f"<section class='stance-evidence-cell' id='{cell_anchor(r.source, r.target, r.topic)}'"
            f" hidden>{head}{body}</section>"
        )
    hint = (
        "<p class='stance-evidence-hint'><em>Click a cell of a heatmap above (or a finding's "
        "evidence link) to see the sentences behind it here.</em></p>"
        if blocks
        else "<p><em>No cells to show evidence for.</em></p>"
    )
    return _html(
        f"{_TABLE_STYLE}{_PANEL_STYLE}<div class='stance-evidence' id='stance-evidence'>"
        f"{hint}{''.join(blocks)}</div>{_EVIDENCE_SCRIPT}"
    )


def findings(
    contrasts: pd.DataFrame, *, min_articles: int = MIN_ARTICLES
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Select the contrasts worth stating as findings, side ``a`` being the more hostile.

    A finding is a contrast that survives the Benjamini–Hochberg correction (``significant``)
    and rests on at least ``min_articles`` articles on each side. Rows are swapped where needed
    so that ``diff = mean_a − mean_b`` is negative (its interval swapped and negated with it),
    and ordered by adjusted p-value, then by the size of the difference.

    Args:
        contrasts: The contrasts table (:data:`stance.compare.CONTRAST_COLUMNS`).
        min_articles: Articles needed on each side.

    Returns:
        ``(table, counts)``: the findings, and ``{"tested", "significant", "few_articles"}``
        (all contrasts, those significant, those significant but resting on fewer articles).
    """
    import numpy as np

    sig = contrasts[contrasts["significant"].astype(bool)]
    enough = (sig["n_articles_a"] >= min_articles) & (sig["n_articles_b"] >= min_articles)
    f = sig[enough].copy()
    counts = {
        "tested": len(contrasts),
        "significant": len(sig),
        "few_articles": int((~enough).sum()),
    }
    flip = (f["diff"] > 0).to_numpy()
    for a, b in (
        ("source_a", "source_b"),
        ("mean_a", "mean_b"),
        ("n_a", "n_b"),
        ("n_articles_a", "n_articles_b"),
    ):
        # both columns read (as copies) before either is written: an in-place swap through
        # .loc could see the first column already overwritten (seen on the case study)
        va, vb = f[a].to_numpy(copy=True), f[b].to_numpy(copy=True)
        f[a] = np.where(flip, vb, va)
        f[b] = np.where(flip, va, vb)
    diff, low, high = (f[c].to_numpy(copy=True) for c in ("diff", "diff_ci_low", "diff_ci_high"))
    f["diff"] = np.where(flip, -diff, diff)
    f["diff_ci_low"] = np.where(flip, -high, low)
    f["diff_ci_high"] = np.where(flip, -low, high)
    f = f.assign(_abs=f["diff"].abs()).sort_values(
        ["p_adjusted", "_abs", "target", "topic", "source_a", "source_b"],
        ascending=[True, False, True, True, True, True],
        kind="stable",
    )
    return f.drop(columns="_abs").reset_index(drop=True), counts


def findings_html(
    contrasts: pd.DataFrame,
    *,
    target_labels: Mapping[str, str] | None = None,
    topic_labels: Mapping[str, str] | None = None,
    min_articles: int = MIN_ARTICLES,
    max_items: int = 12,
    link: bool = True,
    unit: str = "outlet",
) -> HTML:
    """State the findings of a run in words, each with its interval, counts and evidence links.

    "A portrays Russia more negatively than B on Libya: −0.42 vs +0.10, difference −0.52
    [−0.80, −0.21], 12 vs 9 articles" — see :func:`findings` for which contrasts qualify. When
    none does, an honest sentence says so and why.

    Args:
        contrasts: The contrasts table.
        target_labels: Display names of targets.
        topic_labels: Display names of topics.
        min_articles: Articles needed on each side.
        max_items: Findings listed (the rest are counted).
        link: Link each side to its cell's evidence block (:func:`evidence_panel`).
        unit: What the compared groups are, for the sentences ("outlet", "rating group").

    Returns:
        An ``IPython.display.HTML`` object.
    """
    from stance.plots import cell_anchor

    f, counts = findings(contrasts, min_articles=min_articles)
    tl = dict(target_labels or {})
    pl = dict(topic_labels or {})
    few = counts["few_articles"]
    few_note = (
        f" {few} more significant contrast{'s rest' if few != 1 else ' rests'} on fewer than "
        f"{min_articles} articles on a side and {'are' if few != 1 else 'is'} not counted."
        if few
        else ""
    )
    if f.empty:
        return _html(
            f"<p><strong>No finding.</strong> Of {counts['tested']} contrasts between two "
            f"{unit}s (per target and topic), none both survives the Benjamini–Hochberg "
            f"correction and rests on at least {min_articles} articles on each side.{few_note} "
            "The charts below describe this corpus; they do not show differences larger than "
            "chance.</p>"
        )
    items = []
    for r in f.head(max_items).itertuples(index=False):
        target = html.escape(tl.get(r.target, str(r.target)))
        if r.topic == ALL_TOPICS:
            where = "across all topics"
        elif r.topic == NOISE_TOPIC:
            where = "in sentences outside every topic"
        else:
            where = f"on {html.escape(pl.get(r.topic, str(r.topic)))}"
        a, b = html.escape(str(r.source_a)), html.escape(str(r.source_b))
        text = (
            f"<strong>{a}</strong> portrays <strong>{target}</strong> more negatively than "
            f"<strong>{b}</strong> {where}: {_signed(r.mean_a)} vs {_signed(r.mean_b)}, "
            f"difference {_signed(r.diff)} [{_signed(r.diff_ci_low)}, "
            f"{_signed(r.diff_ci_high)}], {r.n_articles_a} vs {r.n_articles_b} articles "
            f"({r.n_a} vs {r.n_b} sentences; adjusted p = {r.p_adjusted:.3g})"
        )
        if link:
            text += (
                f" — evidence: <a href='#{cell_anchor(r.source_a, r.target, r.topic)}'>{a}</a>, "
                f"<a href='#{cell_anchor(r.source_b, r.target, r.topic)}'>{b}</a>"
            )
        items.append(f"<li>{text}</li>")
    more = len(f) - len(items)
    return _html(
        f"<p>{len(f)} difference{'s' if len(f) != 1 else ''} between two {unit}s "
        f"survive{'s' if len(f) == 1 else ''} the Benjamini–Hochberg correction over all "
        f"{counts['tested']} contrasts and rest{'s' if len(f) == 1 else ''} on at least "
        f"{min_articles} articles on each side.{few_note}</p><ul>{''.join(items)}</ul>"
        + (f"<p><em>{more} more in report 04.</em></p>" if more > 0 else "")
    )


def mention_reading(mentions: pd.DataFrame, *, min_mentions: int = 5) -> HTML:
    """Read the stance labels of the mentions in words, computed from the run (report 01).

    Args:
        mentions: Requires ``source, target, stance``.
        min_mentions: Source × target pairs with fewer mentions are not named as extremes.

    Returns:
        An ``IPython.display.HTML`` paragraph.
    """
    if mentions.empty:
        return _html("<p>The run has no target mentions.</p>")
    total = len(mentions)
    share = mentions["stance"].value_counts(normalize=True)
    pct = {k: 100 * float(share.get(k, 0.0)) for k in ("negative", "neutral", "positive")}
    top = max(pct, key=lambda k: (pct[k], k == "neutral"))
    majority = "most" if pct[top] > 50 else "the largest share"
    text = (
        f"Of the {total} target mentions, {pct['negative']:.0f}% are labelled negative, "
        f"{pct['neutral']:.0f}% neutral and {pct['positive']:.0f}% positive by the stance model "
        f"(before attribution): {majority} of the mentions are {top}."
    )
    pairs = mentions.groupby(["source", "target"])["stance"].agg(
        n="size",
        neg=lambda s: float((s == "negative").mean()),
        pos=lambda s: float((s == "positive").mean()),
    )
    pairs = pairs[pairs["n"] >= min_mentions].reset_index()
    if len(pairs) >= 2:
        neg = pairs.sort_values(["neg", "n"], ascending=[False, False]).iloc[0]
        pos = pairs.sort_values(["pos", "n"], ascending=[False, False]).iloc[0]
        text += (
            f" The most negative mix among pairs with at least {min_mentions} mentions: "
            f"{html.escape(str(neg['source']))} about {html.escape(str(neg['target']))} "
            f"({100 * neg['neg']:.0f}% of {int(neg['n'])} negative); the most positive: "
            f"{html.escape(str(pos['source']))} about {html.escape(str(pos['target']))} "
            f"({100 * pos['pos']:.0f}% of {int(pos['n'])} positive)."
        )
    return _html(f"<p><strong>Reading.</strong> {text}</p>")


def aligned_html(aligned: pd.DataFrame, *, max_pairs: int = 15) -> HTML:
    """Aligned claims side by side: the negative sentence (a) next to the positive one (b).

    Args:
        aligned: The aligned table.
        max_pairs: Pairs shown (best ranked first).

    Returns:
        An ``IPython.display.HTML`` object.
    """
    if aligned.empty:
        return _html("<p>No aligned claims with opposite stance were found in this run.</p>")
    rows = []
    for r in aligned.sort_values("rank").head(max_pairs).itertuples(index=False):
        cells = []
        for side in ("a", "b"):
            src = html.escape(str(getattr(r, f"source_{side}")))
            sent = html.escape(str(getattr(r, f"sentence_{side}")))
            title = html.escape(str(getattr(r, f"title_{side}") or ""))
            date = html.escape(str(getattr(r, f"date_{side}") or ""))
            score = float(getattr(r, f"stance_score_{side}"))
            voice = str(getattr(r, f"voice_{side}", "author") or "author")
            tag = "" if voice == "author" else f" <small>({html.escape(voice)})</small>"
            cells.append(
                f"<td><strong>{src}</strong> {_score_span(score)}{tag}<br>“{sent}”"
                f"<br><small>{title} {date}</small></td>"
            )
        rows.append(
            f"<tr><td>{r.rank}</td><td>{html.escape(str(r.target))}</td>"
            f"<td>{r.similarity:.2f}</td>{cells[0]}{cells[1]}</tr>"
        )
    head = (
        "<tr><th>#</th><th>target</th><th>cosine</th><th>negative side</th>"
        "<th>positive side</th></tr>"
    )
    return _html(f"{_TABLE_STYLE}<table class='stance-table'>{head}{''.join(rows)}</table>")


def summary_reading(
    summary: pd.DataFrame,
    *,
    topic: str = ALL_TOPICS,
    min_n: int = 3,
    min_articles: int = MIN_ARTICLES,
) -> HTML:
    """Write a short reading of a summary: per target, the sources whose interval excludes zero.

    Hostile sources (interval below zero) and favourable ones (above zero), with numbers.

    Args:
        summary: The summary table.
        topic: Topic to read.
        min_n: Cells with fewer units are ignored.
        min_articles: Cells resting on fewer articles are ignored (when ``n_articles`` is
            there).

    Returns:
        An ``IPython.display.HTML`` bullet list.
    """
    keep = (summary["topic"] == topic) & (summary["n"] >= min_n)
    if "n_articles" in summary:
        keep &= summary["n_articles"] >= min_articles
    s = summary[keep]
    items = []
    for target, g in s.groupby("target", sort=True):
        neg = g[g["ci_high"] < 0].sort_values("mean")
        pos = g[g["ci_low"] > 0].sort_values("mean", ascending=False)
        bits = []
        for label, sel in (("hostile", neg), ("favourable", pos)):
            if sel.empty:
                continue
            names = ", ".join(
                f"{html.escape(str(r.source))} ({r.mean:+.2f} [{r.ci_low:+.2f}, "
                f"{r.ci_high:+.2f}], "
                + (f"{r.n_articles} articles, " if hasattr(r, "n_articles") else "")
                + f"{r.n} sentences)"
                for r in sel.head(3).itertuples(index=False)
            )
            bits.append(f"{label}: {names}")
        text = "; ".join(bits) if bits else "no source's interval excludes zero"
        items.append(f"<li><strong>{html.escape(str(target))}</strong> — {text}</li>")
    if not items:
        return _html(
            f"<p>No cell has at least {min_n} sentences from {min_articles} articles for topic "
            f"{html.escape(topic)}.</p>"
        )
    return _html("<ul>" + "".join(items) + "</ul>")


def provenance_html(
    run_info: Mapping[str, Any], *, parameters: Mapping[str, Any] | None = None
) -> HTML:
    """Build the provenance block every report ends with: versions, commit, model, seeds, config.

    Args:
        run_info: The parsed ``run.json``.
        parameters: The notebook's parameters, shown too.

    Returns:
        An ``IPython.display.HTML`` object; all values escaped.
    """
    import stance

    config = run_info.get("config", {}) or {}
    model = stance_model_info(run_info)
    versions = run_info.get("versions", {}) or {}
    facts = {
        "stance version (report)": getattr(stance, "__version__", "unknown"),
        "stance version (run)": run_info.get("stance_version")
        or run_info.get("package_version")
        or (versions.get("stance") if isinstance(versions, Mapping) else None),
        "git commit": run_info.get("git_commit") or run_info.get("commit"),
        "stance model": model.get("model_id") or model.get("name"),
        "embedding model": (config.get("embed", {}) or {}).get("model"),
        "seed": (config.get("run", {}) or {}).get("seed", run_info.get("seed")),
        "seeds": run_info.get("seeds"),
        "embedding model id": (run_info.get("models") or {}).get("embedding")
        if isinstance(run_info.get("models"), Mapping)
        else None,
        "created": run_info.get("started_utc") or run_info.get("created"),
    }
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_short(v))}</td></tr>"
        for k, v in facts.items()
        if v not in (None, "", {})
    )
    blocks = [f"{_TABLE_STYLE}<h3>Provenance</h3><table class='stance-table'>{rows}</table>"]
    for title, value in (
        ("Notebook parameters", parameters),
        ("Package versions", versions),
        ("Stance model", model),
        ("Configuration", config),
    ):
        if value:
            dump = json.dumps(value, indent=1, sort_keys=True, default=str)
            blocks.append(
                f"<details><summary>{html.escape(title)}</summary>"
                f"<pre>{html.escape(dump)}</pre></details>"
            )
    return _html("".join(blocks))


def _short(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def show_all(
    figures: Sequence[Any], *, empty_message: str = "Nothing to show for this run."
) -> None:
    """Display several figures (or HTML objects) in one notebook cell, in order.

    Args:
        figures: Figures or displayable objects.
        empty_message: Shown (escaped) when ``figures`` is empty.
    """
    from IPython.display import display

    if not figures:
        display(_html(f"<p><em>{html.escape(empty_message)}</em></p>"))
    for fig in figures:
        display(fig)


def parse_article_dates(articles: pd.DataFrame) -> pd.Series:
    """Parse the articles' dates leniently (NaT where missing or unparseable)."""
    import pandas as pd

    from stance.compare import parse_dates

    if "date" not in articles:
        return pd.Series(pd.NaT, index=articles.index, dtype="datetime64[ns]")
    return parse_dates(articles["date"]).set_axis(articles.index)


def skipped_inputs(run_info: Mapping[str, Any]) -> pd.DataFrame:
    """List the inputs ``run.json`` records as skipped, as a table (``path, reason``)."""
    import pandas as pd

    ingest_info = run_info.get("ingest")
    ingest: Mapping[str, Any] = ingest_info if isinstance(ingest_info, Mapping) else {}
    skipped = (
        run_info.get("skipped_inputs") or run_info.get("skipped") or ingest.get("skipped") or []
    )
    rows = []
    for item in skipped:
        if isinstance(item, Mapping):
            rows.append(
                {
                    "path": str(item.get("path", item.get("input", ""))),
                    "reason": str(item.get("reason", item.get("error", ""))),
                }
            )
        else:
            rows.append({"path": str(item), "reason": ""})
    if isinstance(skipped, Mapping):
        rows = [{"path": str(k), "reason": str(v)} for k, v in sorted(skipped.items())]
    return pd.DataFrame(rows, columns=["path", "reason"])


def topics_table(topics: pd.DataFrame) -> pd.DataFrame:
    """Topics with keywords and one representative sentence, largest first, for display."""
    import pandas as pd

    def join(v: Any, k: int) -> str:
        if v is None or isinstance(v, float):
            return ""
        if isinstance(v, str):
            return v
        return "; ".join(str(x) for x in list(v)[:k])

    t = topics.copy()
    out = pd.DataFrame(
        {
            "topic": t["topic"].astype(str),
            "label": t.get("label", t["topic"]).astype(str),
            "kind": t.get("kind", pd.Series("", index=t.index)).astype(str),
            "size": t.get("size", pd.Series(0, index=t.index)).fillna(0).astype(int),
            "keywords": [join(v, 8) for v in t.get("keywords", pd.Series(None, index=t.index))],
            "example": [
                join(v, 1)
                for v in t.get("representative_sentences", pd.Series(None, index=t.index))
            ],
        }
    )
    return out.sort_values(["size", "topic"], ascending=[False, True]).reset_index(drop=True)


def target_labels(run_info: Mapping[str, Any]) -> dict[str, str]:
    """``{target: label}`` from the run's configuration (e.g. ``us`` → ``United States``)."""
    targets = (run_info.get("config") or {}).get("targets") or {}
    return {k: str(v.get("label", k)) for k, v in targets.items() if isinstance(v, Mapping)}


def min_articles(run_info: Mapping[str, Any]) -> int:
    """Return the run's ``[compare] min_articles`` (the default where the run has none)."""
    compare = (run_info.get("config") or {}).get("compare") or {}
    value = compare.get("min_articles") if isinstance(compare, Mapping) else None
    return int(value) if value is not None else MIN_ARTICLES


def topic_labels(topics: pd.DataFrame | None) -> dict[str, str]:
    """Map topic ids to display labels (``{}`` without a topics table)."""
    if topics is None or topics.empty or "label" not in topics:
        return {}
    return dict(zip(topics["topic"].astype(str), topics["label"].astype(str), strict=False))


def topics_by_size(summary: pd.DataFrame, *, exclude: Sequence[str] = (ALL_TOPICS,)) -> list[str]:
    """Topics of a summary ordered by their number of units (largest first)."""
    s = summary[~summary["topic"].isin(list(exclude))]
    sizes = (
        s.groupby("topic")["n"]
        .sum()
        .reset_index()
        .sort_values(["n", "topic"], ascending=[False, True])
    )
    return list(sizes["topic"])


def voice_table(units: pd.DataFrame | None) -> pd.DataFrame:
    """Per source × target: how the units split by voice and what attribution changed.

    Columns: ``source, target, n, author, reported, disputed`` (shares of units, as "62%") and
    ``model_mean`` (mean sentence-level model score) next to ``author_mean`` (the mean the
    summary reports). Empty when the run has no ``units`` table.
    """
    import pandas as pd

    cols = ["source", "target", "n", "author", "reported", "disputed", "model_mean", "author_mean"]
    if units is None or units.empty or "voice" not in units:
        return pd.DataFrame(columns=cols)
    shares = (
        pd.crosstab([units["source"], units["target"]], units["voice"], normalize="index")
        .reindex(columns=["author", "reported", "disputed"], fill_value=0.0)
        .map(lambda x: f"{100 * x:.0f}%")
    )
    shares.columns.name = None
    g = units.groupby(["source", "target"])
    out = shares.assign(
        n=g.size(),
        model_mean=g["model_score"].mean().round(3),
        author_mean=g["stance_score"].mean().round(3),
    ).reset_index()
    return out.loc[:, cols].sort_values(["target", "source"], kind="stable").reset_index(drop=True)


def top_contrasts(contrasts: pd.DataFrame, *, n: int = 40) -> pd.DataFrame:
    """Pick the contrasts worth reading first: significant ones by |effect|, then smallest p."""
    from stance.compare import CONTRAST_COLUMNS

    hidden = ("diff_ci_low", "diff_ci_high")
    cols = [c for c in CONTRAST_COLUMNS if c not in hidden]
    c = contrasts.assign(_abs=contrasts["diff"].abs(), _ns=~contrasts["significant"])
    c = c.sort_values(
        ["_ns", "p_adjusted", "_abs", "target", "topic", "source_a", "source_b"],
        ascending=[True, True, False, True, True, True, True],
        kind="stable",
    )
    return c.loc[:, [x for x in cols if x in c.columns]].head(n).reset_index(drop=True)


ALLSIDES_TARGET_PATTERN = (
    r"\b(?:Russia|Russian|Moscow|Kremlin|Putin|Iran|Iranian|Tehran|Turkey|Turkish|Ankara|"
    r"Erdogan|United States|U\.S\.|Washington|Pentagon)\b"
)


def load_allsides_sample(
    path: str | Path,
    *,
    sample_size: int | None = 200,
    seed: int = 42,
    max_chars: int | None = 6000,
) -> pd.DataFrame:
    """Read AllSides articles: all of them, or a seeded sample of those naming a target.

    With ``sample_size=None`` every article of the file with a text is kept (undated ones
    too: they count everywhere but in the trends). Otherwise the sample is drawn from the
    dated articles that mention at least one target, balanced across the left / center /
    right ratings (as far as the data allows). Long texts are cut at ``max_chars``
    characters (at a paragraph break when possible) to bound the run time. The AllSides
    ``topic`` becomes ``allsides_topic`` so it does not collide with the pipeline's topics.

    Args:
        path: ``allsides_geopolitics.jsonl.gz`` (fields ``source, date, title, topic,
            bias_text, text``).
        sample_size: Number of articles, or ``None`` for all of them.
        seed: Sampling seed.
        max_chars: Truncation length of the text (``None``: whole texts).

    Returns:
        ``source, title, date, text, bias_text, allsides_topic`` sorted by source and date.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"AllSides data file {path} does not exist.")
    if sample_size is not None and sample_size < 1:
        raise ValueError(f"'sample_size' must be a positive number or None. Got {sample_size!r}.")
    df = pd.read_json(p, lines=True, dtype=False)
    order = ["id"] if "id" in df else ["source", "title"]
    if sample_size is None:
        out = df[df["text"].fillna("").astype(str).str.strip() != ""].copy()
        out = out.sort_values(order, kind="stable")
    else:
        df = df[df["text"].fillna("").str.contains(ALLSIDES_TARGET_PATTERN, regex=True)]
        df = df[pd.to_datetime(df["date"], errors="coerce").notna()].copy()
        df = df.sort_values(order, kind="stable")
        groups = sorted(df["bias_text"].fillna("unknown").unique())
        per = -(-sample_size // max(len(groups), 1))
        parts = []
        for i, g in enumerate(groups):
            rows = df[df["bias_text"].fillna("unknown") == g]
            parts.append(rows.sample(n=min(per, len(rows)), random_state=seed + i))
        out = pd.concat(parts).sort_values(order)
        out = out.head(sample_size)
    if max_chars is not None:
        out["text"] = [_cut(t, max_chars) for t in out["text"].astype(str)]
    out["date"] = pd.to_datetime(out["date"], errors="coerce").dt.strftime("%Y-%m-%d")
    out = out.rename(columns={"topic": "allsides_topic"})
    keep = ["source", "title", "date", "text", "bias_text", "allsides_topic"]
    return out.loc[:, keep].sort_values(["source", "date", "title"]).reset_index(drop=True)


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    cut = head.rfind("\n", int(max_chars * 0.6))
    return head[:cut] if cut > 0 else head


def with_column(
    units: pd.DataFrame, table: pd.DataFrame, column: str, *, on: str = "source"
) -> pd.DataFrame:
    """Add ``column`` to ``units`` from ``table`` joined on ``on`` (first value per key)."""
    mapping = table.drop_duplicates(on).set_index(on)[column]
    return units.assign(**{column: units[on].map(mapping).fillna("unknown").astype(str)})


def short_labels(names: Sequence[str], max_chars: int) -> dict[str, str]:
    """Return each name's axis label: cut to ``max_chars`` with "…", never two alike.

    A 5,000-character outlet name squeezed every chart to a sliver. Names that share their
    first characters get a number (``… (1)``, ``… (2)``), so two outlets never share a label.
    """
    import pandas as pd

    full = pd.Series(sorted(set(map(str, names))), dtype=object)
    cut = full.where(full.str.len() <= max_chars, full.str[: max_chars - 1] + "…")
    clash = cut.duplicated(keep=False)
    cut = cut.where(~clash, full.str[: max_chars - 8] + "… (" + clash.cumsum().astype(str) + ")")
    return dict(zip(full, cut, strict=True))


def left_out_html(left_out: Mapping[str, Any], group: str, *, compared: str | None) -> HTML:
    """Say how many pairs the comparison left out, and why (``counts.contrasts_left_out``).

    Args:
        left_out: ``{"pairs", "cells", "min_articles", "limit"}`` from ``run.json``.
        group: The compared column (``source`` unless ``--group-by``).
        compared: Where the compared pairs are shown ("above", "below"), or ``None`` when no
            pair was compared.
    """
    unit = "sources" if group == "source" else f"{html.escape(group)} values"
    tail = (
        f"The pairs {compared} have enough articles on at least one side."
        if compared
        else "No other pair was compared, so this run states no finding; pool the articles "
        "(e.g. <code>--group-by</code> a coarser column) to compare them."
    )
    return _html(
        f"<p><strong>{int(left_out['pairs']):,} pairs of {unit} were left out of the "
        f"contrasts</strong> (in {int(left_out['cells']):,} target × topic cells): in each, both "
        f"sides rest on fewer than {int(left_out['min_articles'])} articles "
        "(<code>compare.min_articles</code>), and a finding needs that many on both sides, so "
        "none of them could be one. A run lists such pairs only while there are at most "
        f"{int(left_out['limit']):,} of them. {tail}</p>"
    )
