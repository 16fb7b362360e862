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
