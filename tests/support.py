"""Test support: a synthetic run directory and a headless-Chromium check of rendered reports.

Not part of the package: tests import it as ``support`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------
# A synthetic run, for tests and for trying the reports without the models
# --------------------------------------------------------------------------------------------

HOSTILE_TITLE = (
    'Breaking <script>document.title="PWNED";document.body.setAttribute("data-pwned","1")'
    "</script><img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">"
)
HOSTILE_SENTENCE = (
    "Russia <img src=x onerror=\"document.body.setAttribute('data-pwned','3')\"> lied, "
    'the US said <script>document.body.setAttribute("data-pwned","4")</script></script>.'
)


def write_synthetic_run(
    out_dir: str | Path,
    *,
    n_sources: int = 3,
    articles_per_source: int = 6,
    sentences_per_article: int = 8,
    hostile: bool = False,
    seed: int = 0,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write a small synthetic run directory with every file the reports read.

    Sources get different built-in stances toward ``russia`` and ``us`` so that the summary,
    contrasts and aligned claims have something to find. With ``hostile=True`` one article's
    title and sentences carry HTML/script payloads that set ``data-pwned`` on ``<body>`` if they
    ever run — for the HTML safety test.

    Args:
        out_dir: Directory to create.
        n_sources: Number of sources.
        articles_per_source: Articles per source.
        sentences_per_article: Sentences per article.
        hostile: Add the hostile article.
        seed: Seed of the synthetic data (and of the run config).
        config: Configuration for :func:`stance.compare.run_compare` (default: fast settings).

    Returns:
        The run directory.
    """
    import numpy as np
    import pandas as pd

    from stance.compare import run_compare
    from stance.run import write_run

    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    topics = ["libya", "lachin", "noise"]
    arts, sents, ments = [], [], []
    centre = np.array([[0.5, -0.5], [-0.5, 0.5], [0.0, -0.2]])
    for si in range(n_sources):
        source = f"Source {chr(65 + si)}"
        for ai in range(articles_per_source):
            aid = f"s{si}a{ai:02d}"
            title = f"{source} article {ai}"
            if hostile and si == 0 and ai == 0:
                title = HOSTILE_TITLE
            bias = centre[si % len(centre)] + rng.normal(0, 0.25, 2)
            texts = []
            for j in range(sentences_per_article):
                topic = topics[(ai + j) % len(topics)]
                if hostile and si == 0 and ai == 0:
                    sent = HOSTILE_SENTENCE
                else:
                    sent = f"Russia and the US clashed over {topic} in report {aid}-{j}."
                sents.append(
                    {
                        "article_id": aid,
                        "source": source,
                        "sentence_id": j,
                        "sentence": sent,
                        "start": 0,
                        "end": len(sent),
                        "topic": topic,
                    }
                )
                texts.append(sent)
                for t, (name, k) in enumerate((("russia", "Russia"), ("us", "US"))):
                    score = float(np.clip(bias[t] + rng.normal(0, 0.3), -1, 1))
                    label = "positive" if score > 0.2 else "negative" if score < -0.2 else "neutral"
                    pos = sent.find(k)
                    ments.append(
                        {
                            "article_id": aid,
                            "source": source,
                            "sentence_id": j,
                            "sentence": sent,
                            "target": name,
                            "mention": k,
                            "start": max(pos, 0),
                            "end": max(pos, 0) + len(k),
                            "topic": topic,
                            "stance": label,
                            "stance_score": score,
                        }
                    )
            month = 1 + (ai * 2) % 12
            arts.append(
                {
                    "article_id": aid,
                    "source": source,
                    "path": f"synthetic/{aid}.txt",
                    "title": title,
                    "date": f"2021-{month:02d}-15" if ai != 1 else None,
                    "text": " ".join(texts),
                }
            )
    articles = pd.DataFrame(arts)
    sentences = pd.DataFrame(sents)
    mentions = pd.DataFrame(ments)
    # Sentence vectors: a shared direction per (topic, sentence position) plus noise, so that
    # sentences in the same slot of different sources are near-duplicates (aligned claims).
    dim = 16
    base = {(t, j): rng.normal(size=dim) for t in topics for j in range(sentences_per_article)}
    vec = np.stack(
        [
            base[(r.topic, r.sentence_id)] + 0.15 * rng.normal(size=dim)
            for r in sentences.itertuples()
        ]
    )
    vec = (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)
    topic_table = pd.DataFrame(
        {
            "topic": topics,
            "label": ["Libya", "Lachin / Armenia–Azerbaijan", "noise"],
            "kind": ["named", "named", "noise"],
            "keywords": [["libya", "haftar"], ["lachin", "karabakh"], []],
            "size": [int((sentences["topic"] == t).sum()) for t in topics],
            "representative_sentences": [
                list(sentences.loc[sentences["topic"] == t, "sentence"].head(2)) for t in topics
            ],
        }
    )
    xy = vec[:, :2] * 3
    topic_map = pd.DataFrame(
        {
            "article_id": sentences["article_id"],
            "sentence_id": sentences["sentence_id"],
            "x": xy[:, 0].astype(float),
            "y": xy[:, 1].astype(float),
        }
    )
    config = config or {
        "run": {"seed": seed},
        "compare": {
            "bootstrap_resamples": 300,
            "permutation_resamples": 300,
            "confidence": 0.95,
            "aligned_similarity": 0.8,
            "evidence_per_cell": 2,
        },
    }
    tables = run_compare(mentions, articles, sentences, vec, config, progress=False)
    run_info = {
        "package_version": "synthetic",
        "git_commit": "0000000",
        "config": config,
        "seeds": {"run": seed},
        "model": {"model_id": "synthetic-scores"},
        "counts": {
            "articles": len(articles),
            "sentences": len(sentences),
            "mentions": len(mentions),
        },
    }
    write_run(
        {
            "articles": articles,
            "sentences": sentences,
            "mentions": mentions,
            "topics": topic_table,
            "topic_map": topic_map,
            **tables,
            "vectors": vec,
            "run": run_info,
        },
        out,
    )
    return out


# --------------------------------------------------------------------------------------------
# Checking a report in a real browser
# --------------------------------------------------------------------------------------------

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or ``None`` (``apt-get install chromium``)."""
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def browser_dom(
    html_path: str | Path,
    *,
    chromium: str | None = None,
    budget_ms: int = 15000,
    timeout: int = 120,
) -> str:
    """Open an HTML file in headless Chromium, let its scripts run, return the resulting DOM.

    Used to check that the charts of a report really render (plotly adds
    ``.js-plotly-plot``/``svg.main-svg`` only when its JavaScript ran) and that nothing else
    executed. Network access is not needed: reports embed plotly.js.

    Args:
        html_path: The report.
        chromium: Browser executable (default: :func:`find_chromium`).
        budget_ms: Virtual time the page gets to run its scripts.
        timeout: Wall-clock limit in seconds.

    Returns:
        The serialised DOM (``--dump-dom``).

    Raises:
        FileNotFoundError: When no browser is found or ``html_path`` does not exist.
        RuntimeError: When the browser fails.
    """
    import subprocess

    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError(
            "No Chromium found; install it with `apt-get install -y chromium chromium-driver`."
        )
    page = Path(html_path).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"Report {html_path} does not exist.")
    with tempfile.TemporaryDirectory(prefix="stance-chromium-") as profile:
        proc = subprocess.run(
            [
                exe,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(
            f"Chromium failed on {page} (exit {proc.returncode}): {proc.stderr[-2000:]}"
        )
    return proc.stdout


def dom_report_check(dom: str) -> dict[str, Any]:
    """Facts about a rendered report DOM: figures, rendered figures, body attributes, title.

    Returns:
        ``{"figures": int, "rendered": int, "main_svgs": int, "body_attrs": dict,
        "title": str, "scripts_in_text": int}`` — ``rendered`` counts plotly divs that plotly.js
        turned into charts (class ``js-plotly-plot`` with an ``svg.main-svg`` inside).
    """
    from html.parser import HTMLParser

    class Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.figures = 0
            self.rendered = 0
            self.main_svgs = 0
            self.body_attrs: dict[str, str | None] = {}
            self.title = ""
            self._in_title = False
            self._stack: list[tuple[str, bool]] = []
            self._open_plot_divs: list[int] = []
            self._plot_has_svg: dict[int, bool] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            cls = (a.get("class") or "").split()
            if tag == "body":
                self.body_attrs = a
            if tag == "title" and not self.title:
                self._in_title = True
            is_plot = tag == "div" and "plotly-graph-div" in cls
            if is_plot:
                self.figures += 1
                if "js-plotly-plot" in cls:
                    self._plot_has_svg[self.figures] = False
                    self._open_plot_divs.append(self.figures)
            if tag == "svg" and "main-svg" in cls:
                self.main_svgs += 1
                for fid in self._open_plot_divs:
                    self._plot_has_svg[fid] = True
            if tag not in _VOID:
                self._stack.append((tag, is_plot and "js-plotly-plot" in cls))

        def handle_endtag(self, tag: str) -> None:
            if tag == "title":
                self._in_title = False
            while self._stack:
                t, plot = self._stack.pop()
                if plot:
                    self._open_plot_divs.pop()
                if t == tag:
                    break

        def handle_data(self, data: str) -> None:
            if self._in_title:
                self.title += data

    p = Parser()
    p.feed(dom)
    return {
        "figures": p.figures,
        "rendered": sum(p._plot_has_svg.values()),
        "main_svgs": p.main_svgs,
        "body_attrs": p.body_attrs,
        "title": p.title.strip(),
    }


_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "param",
    "source",
    "track",
    "wbr",
}


# --------------------------------------------------------------------------------------------
# Clicking a heatmap cell in a real browser
# --------------------------------------------------------------------------------------------

#: Injected into a copy of a report: once the charts are drawn, it clicks heatmap cells the way
#: a mouse does (``mousemove`` for plotly's hover, then ``mousedown``/``mouseup`` on the plot's
#: drag layer, which plotly turns into a ``plotly_click`` event) and records, after each click,
#: the ids of the evidence blocks that are visible in ``<body data-shown="…">`` (one ``|``-joined
#: group per click, ``;``-separated) and failures in ``data-click-errors``.
_CLICK_SCRIPT = """<script>
window.addEventListener("load", function () {
  var clicks = %s;
  var shown = [], errors = [];
  function figure(title) {
    var divs = document.querySelectorAll(".plotly-graph-div");
    for (var k = 0; k < divs.length; k++) {
      var gd = divs[k];
      var t = gd.layout && gd.layout.title && gd.layout.title.text;
      if (t && t.indexOf(title) >= 0 && gd._fullData && gd._fullData[0].type === "heatmap") {
        return gd;
      }
    }
    return null;
  }
  function click(c) {
    var gd = figure(c.title);
    if (!gd) { errors.push("no heatmap titled " + c.title); return; }
    var xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    var j = xa._categories.indexOf(c.x), i = ya._categories.indexOf(c.y);
    if (i < 0 || j < 0) { errors.push("no cell " + c.y + "/" + c.x); return; }
    var drag = gd.querySelector(".nsewdrag");
    var r = drag.getBoundingClientRect();
    var o = {bubbles: true, cancelable: true, view: window, button: 0, buttons: 1,
             clientX: r.left + xa.l2p(j), clientY: r.top + ya.l2p(i)};
    drag.dispatchEvent(new MouseEvent("mousemove", o));
    drag.dispatchEvent(new MouseEvent("mousedown", o));
    drag.dispatchEvent(new MouseEvent("mouseup", o));
  }
  var k = 0;
  function next() {
    if (k > 0) {
      var ids = [];
      document.querySelectorAll(".stance-evidence-cell").forEach(function (el) {
        if (!el.hidden) { ids.push(el.id); }
      });
      shown.push(ids.join("|"));
    }
    if (k < clicks.length) {
      try { click(clicks[k]); } catch (e) { errors.push(String(e)); }
      k += 1;
      setTimeout(next, 300);
      return;
    }
    document.body.setAttribute("data-shown", shown.join(";"));
    document.body.setAttribute("data-click-errors", errors.join(";"));
  }
  setTimeout(next, 500);
});
</script>"""


def click_heatmap_cells(
    html_path: str | Path, clicks: list[dict[str, str]], **browser: Any
) -> tuple[list[list[str]], list[str], str]:
    """Click heatmap cells of a rendered report in headless Chromium, as a mouse would.

    A copy of the report with :data:`_CLICK_SCRIPT` injected is written beside it (so that the
    shared ``plotly.min.js`` resolves) and opened with :func:`browser_dom`.

    Args:
        html_path: The report.
        clicks: Cells to click in order, each ``{"title": substring of the heatmap's title,
            "y": row label (source), "x": column label (target)}``, labels as displayed.
        **browser: Passed to :func:`browser_dom`.

    Returns:
        ``(shown, errors, dom)``: per click, the ids of the visible evidence blocks; errors of
        the injected script; the final DOM.
    """
    import json
    import re

    page = Path(html_path)
    text = page.read_text(encoding="utf-8")
    script = _CLICK_SCRIPT % json.dumps(clicks)
    copy = page.with_name(f"{page.stem}.click-test.html")
    copy.write_text(text.replace("</body>", script + "</body>", 1), encoding="utf-8")
    try:
        dom = browser_dom(copy, **browser)
    finally:
        copy.unlink()
    body = re.search(r"<body[^>]*>", dom)
    attrs = body.group(0) if body else ""
    shown_attr = re.search(r'data-shown="([^"]*)"', attrs)
    errors_attr = re.search(r'data-click-errors="([^"]*)"', attrs)
    if shown_attr is None:
        raise RuntimeError(f"The click script did not finish on {page}.")
    shown = [g.split("|") if g else [] for g in shown_attr.group(1).split(";")]
    errors = [e for e in (errors_attr.group(1) if errors_attr else "").split(";") if e]
    return shown, errors, dom
