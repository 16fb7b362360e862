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

from stance.evaluation import stance_model_info
from stance.schema import ALL_TOPICS

if TYPE_CHECKING:
    import pandas as pd
    from IPython.display import HTML


def _html(text: str) -> HTML:
    from IPython.display import HTML

    return HTML(text)


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
    formatters = {
        c: ("{:.4f}" if c in unsigned else float_format).format
        for c in shown.columns
        if pd.api.types.is_float_dtype(shown[c])
    }
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


def summary_reading(summary: pd.DataFrame, *, topic: str = ALL_TOPICS, min_n: int = 3) -> HTML:
    """Write a short reading of a summary: per target, the sources whose interval excludes zero.

    Hostile sources (interval below zero) and favourable ones (above zero), with numbers.

    Args:
        summary: The summary table.
        topic: Topic to read.
        min_n: Cells with fewer units are ignored.

    Returns:
        An ``IPython.display.HTML`` bullet list.
    """
    s = summary[(summary["topic"] == topic) & (summary["n"] >= min_n)]
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
                f"{r.ci_high:+.2f}], n={r.n})"
                for r in sel.head(3).itertuples(index=False)
            )
            bits.append(f"{label}: {names}")
        text = "; ".join(bits) if bits else "no source's interval excludes zero"
        items.append(f"<li><strong>{html.escape(str(target))}</strong> — {text}</li>")
    if not items:
        return _html(
            f"<p>No cell has at least {min_n} sentences for topic {html.escape(topic)}.</p>"
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

    hidden = ("n_articles_a", "n_articles_b", "diff_ci_low", "diff_ci_high")
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
    path: str | Path, *, sample_size: int = 200, seed: int = 42, max_chars: int = 6000
) -> pd.DataFrame:
    """Draw a seeded sample of AllSides articles that mention at least one target.

    Balanced across the left / center / right ratings (as far as the data allows), dated
    articles only, long texts cut at ``max_chars`` characters (at a paragraph break when
    possible) to bound the run time. The AllSides ``topic`` becomes ``allsides_topic`` so it
    does not collide with the pipeline's topics.

    Args:
        path: ``allsides_geopolitics.jsonl.gz`` (fields ``source, date, title, topic,
            bias_text, text``).
        sample_size: Number of articles.
        seed: Sampling seed.
        max_chars: Truncation length of the text.

    Returns:
        ``source, title, date, text, bias_text, allsides_topic`` sorted by source and date.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"AllSides data file {path} does not exist.")
    df = pd.read_json(p, lines=True, dtype=False)
    df = df[df["text"].fillna("").str.contains(ALLSIDES_TARGET_PATTERN, regex=True)]
    df = df[pd.to_datetime(df["date"], errors="coerce").notna()].copy()
    df = df.sort_values(["id"] if "id" in df else ["source", "title"], kind="stable")
    groups = sorted(df["bias_text"].fillna("unknown").unique())
    per = -(-sample_size // max(len(groups), 1))
    parts = []
    for i, g in enumerate(groups):
        rows = df[df["bias_text"].fillna("unknown") == g]
        parts.append(rows.sample(n=min(per, len(rows)), random_state=seed + i))
    out = pd.concat(parts).sort_values(["id"] if "id" in df else ["source", "title"])
    out = out.head(sample_size)
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
