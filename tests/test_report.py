from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import support

from stance import evaluation, plots, report, views
from stance.run import load_run

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    return support.write_synthetic_run(tmp_path_factory.mktemp("run") / "run", hostile=True)


def test_report_render_reports_names_a_missing_run_dir(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(
        FileNotFoundError, match=r"run directory .*nope does not exist; run `stance analyze"
    ):
        report.render_reports(missing, tmp_path / "out", notebooks=["01"], progress=False)


def test_report_render_reports_names_the_missing_file(synthetic_run, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("articles.parquet", "sentences.parquet", "run.json"):
        (partial / name).write_bytes((synthetic_run / name).read_bytes())
    with pytest.raises(
        FileNotFoundError, match=r"is missing mentions\.parquet; run `stance analyze` first"
    ):
        report.render_reports(
            partial, tmp_path / "out", notebooks=["01_corpus_overview"], progress=False
        )
    assert not (tmp_path / "out").exists()


def test_report_render_reports_rejects_unknown_notebook(synthetic_run, tmp_path):
    with pytest.raises(ValueError, match=r"'notebooks' parameter .* Got '99_nothing' instead"):
        report.render_reports(synthetic_run, tmp_path, notebooks=["99_nothing"], progress=False)


def test_report_notebook_sources_exist_for_every_report():
    for name in report.NOTEBOOKS:
        src = report.notebooks_dir() / f"{name}.py"
        assert src.is_file(), src
        text = src.read_text(encoding="utf-8")
        assert 'tags=["parameters"]' in text
        # Style contract: no definitions, no absolute paths, no installs in notebooks.
        assert "\ndef " not in text and "\nclass " not in text
        assert "pip install" not in text and '"/' not in text and "'/" not in text
        assert "provenance_html" in text


def test_report_select_accepts_prefixes():
    assert report._select(["03", "01_corpus_overview"], report.NOTEBOOKS) == [
        "03_stance_by_source_topic",
        "01_corpus_overview",
    ]


def test_report_load_run_reads_tables_and_run_json(synthetic_run):
    run = load_run(synthetic_run, vectors=True)
    assert {
        "articles",
        "mentions",
        "summary",
        "contrasts",
        "evidence",
        "aligned",
        "trends",
        "topics",
        "topic_map",
        "run",
        "vectors",
    } <= set(run)
    assert run["run"]["git_commit"] == "0000000"
    assert run["vectors"].shape[0] == len(run["sentences"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run(synthetic_run / "missing")


def test_report_synthetic_run_has_findings(synthetic_run):
    run = load_run(synthetic_run)
    assert (run["summary"]["ci_low"] <= run["summary"]["mean"]).all()
    assert run["contrasts"]["significant"].any()
    assert not run["aligned"].empty and not run["evidence"].empty


def test_report_table_html_escapes_every_cell():
    out = views.table_html(pd.DataFrame({"title": [EVIL], "x": [0.5]}), caption=EVIL).data
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;" in out


def test_report_evidence_and_aligned_html_escape(synthetic_run):
    run = load_run(synthetic_run)
    ev = views.evidence_html(run["summary"], run["evidence"]).data
    assert "<details" in ev and "&lt;img" in ev
    assert "<script>" not in ev and "<img" not in ev
    al = views.aligned_html(run["aligned"]).data
    assert "<script>" not in al and "<img" not in al
    assert "No aligned claims" in views.aligned_html(run["aligned"].iloc[:0]).data


def test_report_summary_reading_names_sources(synthetic_run):
    run = load_run(synthetic_run)
    text = views.summary_reading(run["summary"]).data
    assert "<li><strong>russia</strong>" in text and "Source B" in text


def test_report_provenance_lists_version_commit_model_config(synthetic_run):
    info = json.loads((synthetic_run / "run.json").read_text())
    info["config"]["evil"] = EVIL
    out = views.provenance_html(info, parameters={"run_dir": EVIL}).data
    for fact in (
        "stance version",
        "git commit",
        "0000000",
        "synthetic-scores",
        "Configuration",
        "seed",
    ):
        assert fact in out
    assert "<script>" not in out


def test_report_evaluation_helpers_read_defensively(tmp_path):
    ev = {
        "rw/test": {
            "macro_f1": 0.7,
            "accuracy": 0.8,
            "per_class": {"negative": {"precision": 1, "recall": 0.5, "f1": 0.66, "support": 3}},
            "confusion": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        },
        "pairs_per_s": 3.0,
    }
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "evaluation.json").write_text(json.dumps(ev))
    assert evaluation.load_evaluation({"models": {"stance": {"model_dir": str(model_dir)}}}) == ev
    table = evaluation.evaluation_table(ev)
    assert list(table["class"]) == ["negative", "macro avg", "accuracy"]
    assert evaluation.confusion_splits(ev) == ["rw/test"]
    assert isinstance(
        evaluation.load_evaluation({"models": {"stance": {"model_dir": "/nope"}}}), dict
    )


def test_report_skipped_inputs_from_ingest_record():
    info = {"ingest": {"skipped": [{"path": "x.pdf", "reason": "unsupported"}]}}
    assert views.skipped_inputs(info).to_dict("records") == [
        {"path": "x.pdf", "reason": "unsupported"}
    ]
    assert views.skipped_inputs({}).empty


def test_report_deterministic_html_renumbers_plotly_ids():
    a = 'id="1b4c2d3e-1111-4222-8333-444455556666" x="1b4c2d3e-1111-4222-8333-444455556666"'
    b = 'id="99999999-1111-4222-8333-444455556666" x="99999999-1111-4222-8333-444455556666"'
    assert report.deterministic_html(a) == report.deterministic_html(b)


def test_report_load_allsides_sample_balances_ratings(tmp_path):
    rows = []
    for i in range(30):
        rows.append(
            {
                "id": f"x{i:02d}",
                "source": f"Outlet {i % 5}",
                "title": f"T{i}",
                "date": f"2019-0{1 + i % 9}-01",
                "topic": "world",
                "bias_text": ("left", "center", "right")[i % 3],
                "bias": i % 3,
                "text": ("Russia and Iran talked. " if i % 4 else "Nothing here. ") * 50,
            }
        )
    path = tmp_path / "allsides.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    s = views.load_allsides_sample(path, sample_size=9, seed=1, max_chars=100)
    assert len(s) == 9
    assert s["bias_text"].value_counts().to_dict() == {"center": 3, "left": 3, "right": 3}
    assert s["text"].str.contains("Russia").all() and (s["text"].str.len() <= 100).all()
    assert list(s.columns) == ["source", "title", "date", "text", "bias_text", "allsides_topic"]
    pd.testing.assert_frame_equal(
        s, views.load_allsides_sample(path, sample_size=9, seed=1, max_chars=100)
    )
    with pytest.raises(FileNotFoundError, match="AllSides data file"):
        views.load_allsides_sample(tmp_path / "missing.jsonl.gz")
    # None (the case study's default): every article, those naming no target too, uncut
    whole = views.load_allsides_sample(path, sample_size=None, max_chars=None)
    assert len(whole) == len(rows)
    assert sorted(whole["title"]) == sorted(r["title"] for r in rows)
    assert (~whole["text"].str.contains("Russia")).sum() == sum(
        "Russia" not in r["text"] for r in rows
    )
    assert whole["text"].str.len().max() > 100
    with pytest.raises(ValueError, match="sample_size"):
        views.load_allsides_sample(path, sample_size=0)


def test_report_dom_report_check_counts_rendered_figures():
    dom = (
        '<html><head><title>T</title></head><body data-x="1">'
        '<div class="plotly-graph-div js-plotly-plot"><div><svg class="main-svg"></svg></div>'
        '</div><div class="plotly-graph-div"></div></body></html>'
    )
    facts = support.dom_report_check(dom)
    assert facts["figures"] == 2 and facts["rendered"] == 1 and facts["main_svgs"] == 1
    assert facts["body_attrs"] == {"data-x": "1"} and facts["title"] == "T"


def test_report_browser_dom_needs_a_browser(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        support.browser_dom(tmp_path / "missing.html", chromium="/bin/true")


def test_report_render_reports_skips_case_study_without_data(synthetic_run, tmp_path, monkeypatch):
    calls = []

    def fake(source, tmp, parameters, *, show_code, timeout):
        calls.append((source.stem, parameters))
        return f"<html>{source.stem}</html>"

    monkeypatch.setattr(report, "_execute_and_export", fake)
    with pytest.warns(UserWarning, match="Skipping 06_case_study_allsides"):
        paths = report.render_reports(
            synthetic_run,
            tmp_path / "out",
            progress=False,
            parameters={"data_path": "missing.jsonl.gz"},
        )
    assert [p.stem for p in paths] == list(report.NOTEBOOKS[:5])
    assert paths[0].read_text() == "<html>01_corpus_overview</html>"
    _stem, params = calls[0]
    assert Path(params["run_dir"]).is_absolute() and Path(params["data_path"]).is_absolute()


def test_report_render_reports_names_the_failing_notebook(synthetic_run, tmp_path, monkeypatch):
    import papermill

    def boom(*args, **kwargs):
        raise papermill.PapermillExecutionError(
            cell_index=3,
            exec_count=4,
            source="x",
            ename="KeyError",
            evalue="'summary'",
            traceback=[],
        )

    monkeypatch.setattr(papermill, "execute_notebook", boom)
    with pytest.raises(
        RuntimeError,
        match=r"Notebook 03_stance_by_source_topic failed in cell 4: "
        r"KeyError",
    ):
        report.render_reports(synthetic_run, tmp_path, notebooks=["03"], progress=False)


def test_report_browser_dom_without_chromium(tmp_path, monkeypatch):
    monkeypatch.setattr(support, "find_chromium", lambda: None)
    with pytest.raises(FileNotFoundError, match="apt-get install -y chromium"):
        support.browser_dom(tmp_path / "x.html")


def test_report_voice_table() -> None:
    units = pd.DataFrame(
        {
            "source": ["A", "A", "A", "B"],
            "target": ["russia"] * 4,
            "voice": ["author", "reported", "disputed", "author"],
            "model_score": [-0.5, -0.8, -0.6, 0.2],
            "stance_score": [-0.5, -0.2, 0.6, 0.2],
        }
    )
    t = views.voice_table(units)
    assert list(t.columns) == [
        "source",
        "target",
        "n",
        "author",
        "reported",
        "disputed",
        "model_mean",
        "author_mean",
    ]
    a = t.set_index("source").loc["A"]
    assert (a["n"], a["author"], a["reported"], a["disputed"]) == (3, "33%", "33%", "33%")
    assert a["model_mean"] == pytest.approx(-0.633, abs=1e-3)
    assert a["author_mean"] == pytest.approx(-0.033, abs=1e-3)
    assert views.voice_table(None).empty


def test_report_opinion_table_reads_the_model_folder(tmp_path):
    per_class = {c: {"f1": 0.5} for c in ("negative", "neutral", "positive")}
    result = {"macro_f1": 0.61, "accuracy": 0.7, "per_class": per_class, "n_pairs": 10}
    vader = {"test": {**result, "macro_f1": 0.3}}
    (tmp_path / "opinion.json").write_text(
        json.dumps({"model": "mine", "results": {"test": result}, "baseline_vader": vader})
    )
    table = evaluation.opinion_table({"models": {"stance": {"model_dir": str(tmp_path)}}})
    mine = table[table["model"] == "mine"].iloc[0]
    assert mine["split"] == "test" and mine["macro_f1"] == 0.61 and mine["f1_neutral"] == 0.5
    assert table[table["model"].str.startswith("VADER")]["macro_f1"].iloc[0] == 0.3
    assert list(table.columns)[:3] == ["model", "split", "macro_f1"]


def _contrast(a, b, diff, sig, arts=(5, 4), topic="libya", p=0.01):
    mean_b = 0.10
    return {
        "target": "russia",
        "topic": topic,
        "source_a": a,
        "source_b": b,
        "n_a": 20,
        "n_b": 15,
        "n_articles_a": arts[0],
        "n_articles_b": arts[1],
        "mean_a": mean_b + diff,
        "mean_b": mean_b,
        "diff": diff,
        "diff_ci_low": diff - 0.2,
        "diff_ci_high": diff + 0.1,
        "effect_size": 0.5,
        "cliffs_delta": 0.3,
        "p_value": p,
        "p_adjusted": p,
        "significant": sig,
    }


def test_report_findings_keep_significant_contrasts_with_enough_articles():
    c = pd.DataFrame(
        [
            _contrast("A", "B", +0.52, True, p=0.01),  # a more favourable: sides swapped
            _contrast("C", "D", -0.30, True, arts=(2, 9), p=0.001),  # too few articles
            _contrast("E", "F", -0.90, False, p=0.2),  # not significant
            _contrast("G", EVIL, -0.40, True, topic="all", p=0.02),
            _contrast("H", "I", -0.20, True, topic="noise", p=0.03),
        ]
    )
    f, counts = views.findings(c)
    assert counts == {"tested": 5, "significant": 4, "few_articles": 1}
    assert list(f["source_a"]) == ["B", "G", "H"] and list(f["source_b"]) == ["A", EVIL, "I"]
    first = f.iloc[0]
    assert first["diff"] == pytest.approx(-0.52)
    assert (first["diff_ci_low"], first["diff_ci_high"]) == pytest.approx((-0.62, -0.32))
    assert (first["mean_a"], first["mean_b"]) == pytest.approx((0.10, 0.62))
    assert (first["n_articles_a"], first["n_articles_b"]) == (4, 5)
    out = views.findings_html(
        c, target_labels={"russia": "Russia"}, topic_labels={"libya": "Libya"}
    ).data
    assert (
        "<strong>B</strong> portrays <strong>Russia</strong> more negatively than "
        "<strong>A</strong> on Libya: +0.10 vs +0.62, difference −0.52 [−0.62, −0.32], "
        "4 vs 5 articles" in out
    )
    assert "across all topics" in out and "&lt;script&gt;" in out and "<script>" not in out
    assert "in sentences outside every topic" in out
    assert f"href='#{plots.cell_anchor('B', 'russia', 'libya')}'" in out
    assert "1 more significant contrast rests on fewer than 3 articles" in out
    assert "C</strong>" not in out and "E</strong>" not in out
    assert "href" not in views.findings_html(c, link=False).data


def test_report_findings_html_says_when_nothing_survives():
    c = pd.DataFrame(
        [_contrast("C", "D", -0.3, True, arts=(1, 9)), _contrast("E", "F", 0.2, False)]
    )
    out = views.findings_html(c, unit="rating group").data
    assert "No finding" in out and "Of 2 contrasts between two rating groups" in out
    assert "1 more significant contrast rests on fewer than 3 articles" in out
    assert "<li>" not in out


def test_report_evidence_panel_has_a_hidden_escaped_block_per_cell_of_every_topic(synthetic_run):
    run = load_run(synthetic_run)
    summary, evidence = run["summary"], run["evidence"]
    assert set(summary["topic"]) > {"all"}  # per-topic cells too
    out = views.evidence_panel(summary, evidence, target_labels={"us": "United States"}).data
    for r in summary.itertuples():
        anchor = plots.cell_anchor(r.source, r.target, r.topic)
        assert out.count(f"id='{anchor}' hidden>") == 1, (r.source, r.target, r.topic)
    assert out.count("class='stance-ev'") == len(evidence)
    assert "<mark>Russia</mark>" in out and "<mark>US</mark>" in out
    assert "&lt;img src=x" in out and "<img" not in out
    # The only script is the panel's own; it toggles `hidden` and never writes markup.
    assert out.count("<script>") == 1 and "innerHTML" not in out and "plotly_click" in out
    few = summary[summary["n_articles"] < 3]
    assert out.count("fewer than 3 articles") == len(few)
    libya = views.evidence_panel(summary, evidence, topics=["libya"]).data
    assert libya.count("<section") == int((summary["topic"] == "libya").sum())


def test_report_highlight_marks_whole_words_and_escapes():
    out = views._highlight("US <b>USA</b> said: US & Putin", "US; Putin")
    assert out == (
        "<mark>US</mark> &lt;b&gt;USA&lt;/b&gt; said: <mark>US</mark> &amp; <mark>Putin</mark>"
    )


def test_report_mention_reading_is_computed_from_the_mentions():
    mentions = pd.DataFrame(
        {
            "source": ["A"] * 6 + ["B"] * 6,
            "target": "russia",
            "stance": ["negative"] * 5 + ["neutral"] + ["positive"] * 3 + ["neutral"] * 3,
        }
    )
    out = views.mention_reading(mentions).data
    assert (
        "Of the 12 target mentions, 42% are labelled negative, 33% neutral and 25% positive" in out
    )
    assert "the largest share of the mentions are negative" in out
    assert (
        "A about russia (83% of 6 negative)" in out and "B about russia (50% of 6 positive)" in out
    )
    neutral = mentions.assign(stance="neutral")
    assert "most of the mentions are neutral" in views.mention_reading(neutral).data


def test_report_table_html_prints_counts_as_integers():
    t = pd.DataFrame(
        {"class": ["negative", "macro avg"], "mean": [0.8, -0.7], "support": [346, None]}
    )
    out = views.table_html(t).data
    assert "<td>346</td>" in out and "346.0" not in out and "<td>+0.800</td>" in out


def test_report_share_plotly_js_replaces_the_embedded_copy(tmp_path):
    from plotly.offline import get_plotlyjs

    page = f"<html><body><script>{get_plotlyjs()}</script><div>x</div></body></html>"
    out, replaced = report.share_plotly_js(page)
    assert replaced and get_plotlyjs() not in out
    assert '<script src="plotly.min.js" charset="utf-8"></script><div>x</div>' in out
    assert report.share_plotly_js("<html></html>") == ("<html></html>", False)
    path = report.write_plotly_js(tmp_path)
    assert path.name == "plotly.min.js" and path.read_text(encoding="utf-8") == get_plotlyjs()


@pytest.mark.parametrize("share", [True, False])
def test_report_render_reports_writes_one_shared_plotly_js(
    synthetic_run, tmp_path, monkeypatch, share
):
    from plotly.offline import get_plotlyjs

    def fake(source, tmp, parameters, *, show_code, timeout):
        return f"<html><script>{get_plotlyjs()}</script>{source.stem}</html>"

    monkeypatch.setattr(report, "_execute_and_export", fake)
    out = tmp_path / "out"
    paths = report.render_reports(
        synthetic_run, out, notebooks=["01", "02"], progress=False, share_plotlyjs=share
    )
    js = out / report.PLOTLYJS_FILE
    assert js.is_file() == share
    for p in paths:
        text = p.read_text(encoding="utf-8")
        assert ('<script src="plotly.min.js"' in text) == share
        assert (get_plotlyjs()[:1000] in text) != share


def test_report_findings_swap_keeps_both_sides_apart():
    # a contrast with a positive diff is turned round: each side keeps its own figures
    c = pd.DataFrame(
        {
            "target": ["iran", "us"],
            "topic": ["all", "all"],
            "source_a": ["center", "left"],
            "source_b": ["right", "right"],
            "n_a": [3864, 10],
            "n_b": [3206, 12],
            "n_articles_a": [431, 5],
            "n_articles_b": [435, 6],
            "mean_a": [-0.159, -0.5],
            "mean_b": [-0.202, 0.1],
            "diff": [0.043, -0.6],
            "diff_ci_low": [0.02, -0.8],
            "diff_ci_high": [0.06, -0.4],
            "effect_size": [0.13, -1.0],
            "cliffs_delta": [0.08, -0.5],
            "p_value": [0.0001, 0.001],
            "p_adjusted": [0.02, 0.01],
            "significant": [True, True],
        }
    )
    f, _ = views.findings(c, min_articles=3)
    row = f[f["target"] == "iran"].iloc[0]
    assert (row["source_a"], row["source_b"]) == ("right", "center")
    assert (row["mean_a"], row["mean_b"]) == (-0.202, -0.159)
    assert (row["n_a"], row["n_b"], row["n_articles_a"], row["n_articles_b"]) == (
        3206,
        3864,
        435,
        431,
    )
    assert (row["diff"], row["diff_ci_low"], row["diff_ci_high"]) == (-0.043, -0.06, -0.02)
    kept = f[f["target"] == "us"].iloc[0]
    assert (kept["source_a"], kept["mean_a"], kept["n_b"]) == ("left", -0.5, 12)
    # every row turned round (the case that overwrote one side with the other)
    f, _ = views.findings(c.iloc[:1], min_articles=3)
    assert (f.loc[0, "mean_a"], f.loc[0, "mean_b"]) == (-0.202, -0.159)
    assert (f.loc[0, "n_articles_a"], f.loc[0, "n_articles_b"]) == (435, 431)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("run.json", r"run\.json cannot be read \(JSONDecodeError"),
        ("run.json list", r"run\.json holds a JSON list, not a run's record"),
        ("mentions.parquet", r"mentions\.parquet cannot be read as Parquet"),
        ("summary.parquet", r"summary\.parquet lacks the columns \['source', 'target'"),
    ],
)
def test_report_a_damaged_run_is_named_before_any_notebook_runs(
    synthetic_run, tmp_path, damage, match
):
    """A damaged run failed inside a notebook, with a library's traceback, reports half done."""
    import shutil

    from stance.run import RunDirError

    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    if damage == "run.json":
        (run / "run.json").write_text((run / "run.json").read_text()[:200])
    elif damage == "run.json list":
        (run / "run.json").write_text("[]")
    elif damage == "mentions.parquet":
        (run / "mentions.parquet").write_bytes(b"not parquet")
    else:
        pd.DataFrame({"foo": [1]}).to_parquet(run / "summary.parquet")
    out = tmp_path / "out"
    with pytest.raises(RunDirError, match=match):
        report.render_reports(run, out, notebooks=["01", "03"], progress=False)
    assert not out.exists()  # checked before anything was written


def test_report_out_that_is_a_file_and_reserved_parameters_are_refused(synthetic_run, tmp_path):
    from stance.run import RunDirError

    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(RunDirError, match="is a file, not a folder"):
        report.render_reports(synthetic_run, afile, notebooks=["01"], progress=False)
    with pytest.raises(ValueError, match=r"'run_dir' is set by the report itself"):
        report.render_reports(
            synthetic_run,
            tmp_path / "out",
            notebooks=["01"],
            progress=False,
            parameters={"run_dir": "/elsewhere"},
        )


def test_report_short_labels_cut_long_names_and_keep_them_apart():
    long_a, long_b = "A" * 100 + "x", "A" * 100 + "y"
    labels = views.short_labels(["TASS", long_a, long_b, "TASS"], 60)
    assert labels["TASS"] == "TASS"
    assert labels[long_a] != labels[long_b]
    assert all(len(v) <= 60 for v in labels.values())


def test_report_html_is_kept_from_mathjax():
    """The exported page typesets $...$: news text with two dollar signs must not become maths."""
    out = views.table_html(
        pd.DataFrame({"sentence": ["The US gave $5 billion, Russia $3 billion."]})
    )
    assert out.data.startswith("<div class='tex2jax_ignore'>") and out.data.endswith("</div>")
