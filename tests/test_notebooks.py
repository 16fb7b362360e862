"""Execute every report notebook against a real run on the bundled sample corpus.

The run uses the real embedding and stance models (``stance.analyze`` on ``data/raw/seeds``);
the case study runs the pipeline itself on a small AllSides sample. Each report is opened in
headless Chromium when it is installed, to check that its charts were really drawn.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import support

from stance import report
from stance.run import load_run

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "data" / "raw" / "seeds"
SOURCES = ROOT / "data" / "sources.csv"
RUN_REPORTS = [n for n in report.NOTEBOOKS if n != report.CASE_STUDY]


def allsides_data() -> Path | None:
    """The AllSides file: $STANCE_ALLSIDES_DATA, the repository's data/external link, or the
    shared copy on the project machines."""
    candidates = [
        os.environ.get("STANCE_ALLSIDES_DATA"),
        ROOT / "data" / "external" / "allsides" / "allsides_geopolitics.jsonl.gz",
        "/work/shared/data/allsides/allsides_geopolitics.jsonl.gz",
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Path:
    import stance

    out = tmp_path_factory.mktemp("sample") / "run"
    stance.analyze([SEEDS], sources=SOURCES, out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def sample_reports(sample_run, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("reports")
    paths = report.render_reports(sample_run, out, notebooks=RUN_REPORTS, progress=False)
    return {p.stem: p for p in paths}


def check_rendered(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "plotly-graph-div" in text, f"{path.name} has no chart"
    assert "Provenance" in text, f"{path.name} lacks the provenance block"
    assert "Traceback" not in text
    assert "IProgress not found" not in text  # no tqdm widget warning leaks into reports
    if support.find_chromium() is None:
        return
    facts = support.dom_report_check(support.browser_dom(path))
    assert facts["figures"] > 0 and facts["rendered"] == facts["figures"], (path.name, facts)


@pytest.mark.parametrize("name", RUN_REPORTS)
def test_notebooks_render_on_the_sample_run(sample_reports, name):
    path = sample_reports[name]
    # One shared plotly.js beside the reports, loaded by a relative <script src>: the folder
    # works offline from disk (check_rendered opens it from a file:// URL).
    assert '<script src="plotly.min.js" charset="utf-8"></script>' in path.read_text("utf-8")
    assert (path.parent / report.PLOTLYJS_FILE).stat().st_size > 1_000_000
    check_rendered(path)


def test_notebooks_reports_share_one_plotly_js(sample_reports):
    from plotly.offline import get_plotlyjs

    bundle = get_plotlyjs()
    folder = next(iter(sample_reports.values())).parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [report.PLOTLYJS_FILE, *(f"{n}.html" for n in RUN_REPORTS)]
    )
    for path in sample_reports.values():
        assert bundle[:2000] not in path.read_text("utf-8")
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total < 10_000_000, total


def test_notebooks_heatmap_click_shows_evidence_on_the_sample_run(sample_run, sample_reports):
    """Click the largest cell of the largest topic's heatmap in report 03: its sentences show."""
    if support.find_chromium() is None:
        pytest.skip("headless Chromium not installed")
    from stance import plots, views

    run = load_run(sample_run)
    s = run["summary"]
    topic = views.topics_by_size(s)[0]
    cell = s[s["topic"] == topic].sort_values(["n", "source", "target"]).iloc[-1]
    labels = views.target_labels(run["run"])
    title = views.topic_labels(run["topics"]).get(topic, topic)
    shown, errors, dom = support.click_heatmap_cells(
        sample_reports["03_stance_by_source_topic"],
        [
            {
                "title": f"topic: {title}",
                "y": cell["source"],
                "x": labels.get(cell.target, cell.target),
            }
        ],
    )
    anchor = plots.cell_anchor(cell["source"], cell["target"], topic)
    assert errors == [] and shown == [[anchor]]
    assert f'id="{anchor}">' in dom  # no longer hidden


def test_notebooks_render_is_deterministic(sample_run, sample_reports, tmp_path):
    again = report.render_reports(
        sample_run, tmp_path, notebooks=["01_corpus_overview"], progress=False
    )[0]
    assert again.read_bytes() == sample_reports["01_corpus_overview"].read_bytes()


def test_notebooks_sample_run_tables_are_filled(sample_run):
    run = load_run(sample_run)
    s = run["summary"]
    assert not s.empty and not run["contrasts"].empty and not run["evidence"].empty
    assert (s["ci_low"] <= s["mean"]).all() and (s["mean"] <= s["ci_high"]).all()


def test_notebooks_case_study_runs_on_a_small_sample(tmp_path):
    data = allsides_data()
    if data is None:
        pytest.skip(
            "AllSides data not found: set STANCE_ALLSIDES_DATA or link data/external/allsides/"
        )
    paths = report.render_reports(
        tmp_path / "unused-run",
        tmp_path / "reports",
        notebooks=[report.CASE_STUDY],
        progress=False,
        parameters={
            "data_path": str(data),
            "sample_size": 24,
            "max_chars": 2500,
            "case_run_dir": str(tmp_path / "case_run"),
        },
    )
    check_rendered(paths[0])
    case = load_run(tmp_path / "case_run")
    assert 18 <= len(case["articles"]) <= 24
    assert {"russia", "us"} <= set(case["summary"]["target"])


def test_notebooks_report_writes_nothing_into_the_checkout(sample_run, tmp_path):
    import subprocess

    def status() -> str:
        proc = subprocess.run(
            ["git", "status", "--porcelain", "--ignored"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            pytest.skip("not a git checkout")
        # Files inside the ignored virtual environment change with any Python run.
        return "\n".join(line for line in proc.stdout.splitlines() if ".venv" not in line)

    before = status()
    report.render_reports(sample_run, tmp_path / "reports", notebooks=["01", "02"], progress=False)
    assert status() == before


# --------------------------------------------------------------------------------------------
# Reports 03 and 04 on awkward synthetic runs (fast: no model)
# --------------------------------------------------------------------------------------------

#: Two names longer than any axis label, alike in their first 100 characters.
LONG_A = "Agence " + "x" * 93 + " Alpha" + "a" * 4900
LONG_B = "Agence " + "x" * 93 + " Beta" + "b" * 4900


def synthetic_variant(tmp_path: Path, *, group_by: str | None = None, names=None) -> Path:
    """A synthetic run recomputed with the sources renamed and/or grouped by ``region``."""
    from support import write_synthetic_run

    from stance.compare import run_compare
    from stance.run import write_run

    base = write_synthetic_run(tmp_path / "base", n_sources=3, articles_per_source=4)
    run = load_run(base, vectors=True)
    rename = dict(names or {})
    articles, sentences, mentions = (
        run[t].assign(source=run[t]["source"].map(lambda s: rename.get(s, s)))
        for t in ("articles", "sentences", "mentions")
    )
    if group_by:
        # Source A has a region of its own, B and C share one; both names are long
        articles = articles.assign(
            region=articles["source"].map(
                lambda s: LONG_A if s in (rename.get("Source A"), "Source A") else LONG_B
            )
        )
    config = run["run"]["config"]
    tables = run_compare(
        mentions,
        articles,
        sentences,
        run["vectors"],
        config,
        progress=False,
        **({"group_by": group_by} if group_by else {}),
    )
    info = {**run["run"], **({"group_by": group_by} if group_by else {})}
    out = tmp_path / "run"
    write_run(
        {
            **{k: run[k] for k in ("topics", "topic_map")},
            "articles": articles,
            "sentences": sentences,
            "mentions": mentions,
            **tables,
            "vectors": np.asarray(run["vectors"]),
            "run": info,
        },
        out,
    )
    return out


def render_03_04(run_dir: Path, out: Path) -> dict[str, str]:
    paths = report.render_reports(run_dir, out, notebooks=["03", "04"], progress=False)
    texts = {p.stem[:2]: p.read_text(encoding="utf-8") for p in paths}
    for text in texts.values():
        assert "Traceback" not in text
    return texts


def test_notebooks_03_04_render_a_group_by_run_with_long_names(tmp_path):
    """--group-by region failed with KeyError 'source_a'; long names squeezed the charts."""
    run = synthetic_variant(tmp_path, group_by="region")
    assert "region_a" in load_run(run)["contrasts"]
    texts = render_03_04(run, tmp_path / "reports")
    assert "Mean stance by region and target" in texts["03"]
    assert "region-level intervals" in texts["03"]
    assert "between two regions" in texts["03"]
    assert "Differences between region values" in texts["04"]
    assert "region_a" in texts["04"] and "source_a" not in texts["04"]
    # axis labels of about 60 characters, told apart although their first 52 agree
    label_a, label_b = (
        json.dumps(n[:52] + f"… ({k})")[1:-1] for k, n in ((1, LONG_A), (2, LONG_B))
    )
    for text in texts.values():
        assert "plotly-graph-div" in text
        assert '"ticktext"' in text and label_a in text and label_b in text
    # the hover keeps the name (as far as plots.esc lets it: 600 characters)
    assert LONG_A[:599] in texts["03"] and LONG_B[:599] in texts["03"]


def test_notebooks_03_04_long_source_names_get_distinct_short_labels(tmp_path):
    run = synthetic_variant(tmp_path, names={"Source A": LONG_A, "Source B": LONG_B})
    texts = render_03_04(run, tmp_path / "reports")
    label_a, label_b = (
        json.dumps(n[:52] + f"… ({k})")[1:-1] for k, n in ((1, LONG_A), (2, LONG_B))
    )
    for text in texts.values():
        assert label_a in text and label_b in text
    assert "Mean stance by source and target" in texts["03"]


def test_notebooks_03_04_say_which_pairs_were_left_out(tmp_path):
    """Pairs left out for want of articles were reported as "nothing to contrast"."""
    import pandas as pd
    from support import write_synthetic_run

    run = write_synthetic_run(tmp_path / "run", n_sources=3, articles_per_source=4)
    pd.read_parquet(run / "contrasts.parquet").head(0).to_parquet(run / "contrasts.parquet")
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    left_out = {"pairs": 286360, "cells": 34, "min_articles": 3, "limit": 21770}
    info["counts"]["contrasts_left_out"] = left_out
    (run / "run.json").write_text(json.dumps(info), encoding="utf-8")
    texts = render_03_04(run, tmp_path / "reports")
    for text in texts.values():
        assert "286,360 pairs of sources were left out" in text
        assert "fewer than 3 articles" in text and "21,770" in text
    assert "Of 0 contrasts" not in texts["03"]
    assert "nothing to contrast" not in texts["04"]
