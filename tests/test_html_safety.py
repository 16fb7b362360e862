"""Reports built from hostile article text render their charts and run none of its markup.

The synthetic run carries an article whose title and sentences contain ``<script>`` and
``<img onerror>`` payloads that set ``data-pwned`` on ``<body>`` (and the document title) if
they ever execute. Each rendered report is opened in headless Chromium: every plotly chart must
have been drawn by plotly.js and no payload may have run. A positive control shows that the
same payload, unescaped, is caught.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import support

from stance import report

CHROMIUM = support.find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install -y chromium chromium-driver)",
)
# Notebooks that show corpus text (titles, sentences, hover boxes, tables).
TEXT_REPORTS = [
    "01_corpus_overview",
    "02_topics",
    "03_stance_by_source_topic",
    "04_contrasts_aligned_claims",
]


@pytest.fixture(scope="module")
def hostile_reports(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile")
    run = support.write_synthetic_run(base / "run", hostile=True)
    paths = report.render_reports(run, base / "reports", notebooks=TEXT_REPORTS, progress=False)
    return {p.stem: p for p in paths}


def test_html_safety_positive_control_detects_an_executed_payload(tmp_path):
    page = tmp_path / "control.html"
    page.write_text(
        f"<html><head><title>ok</title></head><body><h1>{support.HOSTILE_TITLE}</h1>"
        f"<p>{support.HOSTILE_SENTENCE}</p></body></html>",
        encoding="utf-8",
    )
    facts = support.dom_report_check(support.browser_dom(page, budget_ms=3000))
    assert "data-pwned" in facts["body_attrs"]
    assert facts["title"] == "PWNED"


@pytest.mark.parametrize("name", TEXT_REPORTS)
def test_html_safety_charts_render_and_no_payload_runs(hostile_reports, name):
    path = hostile_reports[name]
    raw = path.read_text(encoding="utf-8")
    # The payload never appears as live markup in the file (only escaped).
    assert "<script>document" not in raw and "<img src=x onerror" not in raw
    facts = support.dom_report_check(support.browser_dom(path))
    assert facts["figures"] > 0, "no plotly figure in the report"
    assert facts["rendered"] == facts["figures"], facts
    assert "data-pwned" not in facts["body_attrs"], facts["body_attrs"]
    assert facts["title"] != "PWNED"


def test_html_safety_hostile_text_is_visible_as_text(hostile_reports):
    # The payload is shown to the reader as literal text, not dropped.
    raw = hostile_reports["03_stance_by_source_topic"].read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=" in raw


def _evidence_section(dom: str, anchor: str) -> str:
    import re

    m = re.search(
        rf"<section class=\"stance-evidence-cell\" id=\"{anchor}\"([^>]*)>(.*?)</section>",
        dom,
        re.S,
    )
    assert m is not None, f"no evidence block {anchor} in the DOM"
    assert "hidden" not in m.group(1), f"evidence block {anchor} is still hidden"
    return m.group(2)


def test_html_safety_heatmap_click_shows_that_cells_evidence(hostile_reports):
    """A mouse click on a heatmap cell (all topics, then one topic) shows that cell's sentences."""
    import html

    import pandas as pd

    from stance import plots

    path = hostile_reports["03_stance_by_source_topic"]
    run = path.parent.parent / "run"
    evidence = pd.read_parquet(run / "evidence.parquet")
    cells = [("Source A", "russia", "all", "topic: all"), ("Source B", "us", "libya", "Libya")]
    shown, errors, dom = support.click_heatmap_cells(
        path, [{"title": title, "y": s, "x": t} for s, t, _, title in cells]
    )
    assert errors == []
    assert shown == [[plots.cell_anchor(s, t, topic)] for s, t, topic, _ in cells]
    # The last click's block is visible and holds exactly that cell's evidence sentences.
    source, target, topic, _ = cells[-1]
    block = _evidence_section(dom, plots.cell_anchor(source, target, topic))
    ev = evidence[
        (evidence["source"] == source)
        & (evidence["target"] == target)
        & (evidence["topic"] == topic)
    ]
    assert len(ev) > 0
    assert block.count('class="stance-ev"') == len(ev)
    for sentence, title in zip(ev["sentence"], ev["title"], strict=True):
        assert html.escape(sentence.split("US")[-1], quote=False) in block
        assert html.escape(title, quote=False) in block
    assert "<mark>US</mark>" in block and "voice: author" in block and "model " in block
    # No payload ran, although Source A's evidence (first click) holds the hostile sentence.
    facts = support.dom_report_check(dom)
    assert "data-pwned" not in facts["body_attrs"] and facts["title"] != "PWNED"


def test_html_safety_evidence_link_opens_its_block(hostile_reports):
    """A finding's evidence link (``#ev-…``) shows that block, with no click on a chart."""
    import re

    path = hostile_reports["03_stance_by_source_topic"]
    raw = path.read_text(encoding="utf-8")
    links = re.findall(r"href=[\"']#(ev-[0-9a-f]{16})[\"']", raw)
    assert links, "the findings link to no evidence"
    anchor = links[-1]
    copy = path.with_name("03_link-test.html")
    copy.write_text(raw.replace("</head>", f"<script>location.hash = '{anchor}';</script></head>"))
    try:
        dom = support.browser_dom(copy)
    finally:
        copy.unlink()
    assert 'class="stance-ev"' in _evidence_section(dom, anchor)
