from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from stance import compare, plots

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'


@pytest.fixture(scope="module")
def summary():
    return pd.DataFrame(
        {
            "source": ["A", "A", "B", EVIL, "A"],
            "target": ["russia", "us", "russia", "us", "russia"],
            "topic": ["all", "all", "all", "all", "libya"],
            "n": [10, 4, 7, 2, 5],
            "mean": [0.4, -0.3, -0.5, 0.1, 0.2],
            "ci_low": [0.1, -0.6, -0.7, 0.0, -0.1],
            "ci_high": [0.6, 0.0, -0.2, 0.3, 0.5],
            "n_articles": [3, 2, 2, 1, 2],
        }
    )


@pytest.fixture(scope="module")
def evaluation():
    per = {
        "negative": {"precision": 0.7, "recall": 0.6, "f1": 0.65, "support": 100},
        "neutral": {"precision": 0.8, "recall": 0.85, "f1": 0.82, "support": 300},
        "positive": {"precision": 0.6, "recall": 0.55, "f1": 0.57, "support": 80},
    }
    return {
        "rw/test": {
            "macro_f1": 0.68,
            "accuracy": 0.76,
            "per_class": per,
            "confusion": [[60, 35, 5], [20, 255, 25], [4, 32, 44]],
            "calibration": [
                {"confidence": 0.5, "accuracy": 0.45, "count": 10},
                {"confidence": 0.9, "accuracy": 0.85, "count": 50},
            ],
        },
        "mt/test": {"macro_f1": 0.6, "accuracy": 0.7, "per_class": per},
        "pairs_per_s": 120.0,
    }


def no_raw_markup(fig: go.Figure) -> bool:
    text = fig.to_json()
    return "<script" not in text and "<img" not in text and "<\\/script" not in text


def test_plots_esc_escapes_wraps_and_truncates():
    assert plots.esc(EVIL).startswith("&lt;script&gt;")
    assert plots.esc(None) == "" and plots.esc(float("nan")) == ""
    wrapped = plots.esc("a " * 50, width=20)
    assert "<br>" in wrapped
    assert plots.esc("x" * 1000, max_chars=10).endswith("…")


def test_plots_stance_heatmap_values_hover_and_escaping(summary):
    fig = plots.stance_heatmap(summary, "all", target_labels={"us": "United States"})
    assert isinstance(fig, go.Figure)
    hm, few = fig.data
    assert hm.type == "heatmap" and hm.zmin == -1 and hm.zmax == 1
    assert few.name == "few articles" and few.showscale is False
    assert list(hm.x) == ["russia", "United States"]
    assert "&lt;script&gt;" in hm.y[-1] or any("&lt;script&gt;" in y for y in hm.y)
    z = np.array(hm.z, dtype=float)
    ia, ir = list(hm.y).index("A"), list(hm.x).index("russia")
    assert z[ia, ir] == pytest.approx(0.4)
    hover, anchor = hm.customdata[ia][ir]
    assert "[+0.10, +0.60]" in hover and "3 articles, 10 sentences" in hover
    assert anchor == plots.cell_anchor("A", "russia", "all")
    assert hm.hovertemplate.startswith("%{customdata[0]}")
    assert "3 art. · 10 sent." in hm.text[ia][ir]
    assert np.isnan(z[list(hm.y).index("B"), list(hm.x).index("United States")])
    assert no_raw_markup(fig)


def test_plots_stance_heatmap_fades_cells_under_min_articles(summary):
    fig = plots.stance_heatmap(summary, "all")
    hm, few = fig.data
    z, zf = np.array(hm.z, dtype=float), np.array(few.z, dtype=float)
    ib, ir = list(hm.y).index("B"), list(hm.x).index("russia")
    # B → russia rests on 2 articles: only in the faded trace, marked in its hover and text.
    assert np.isnan(z[ib, ir]) and zf[ib, ir] == pytest.approx(-0.5)
    assert "fewer than 3 articles" in few.customdata[ib][ir][0]
    assert few.text[ib][ir].startswith("<i>")
    assert few.colorscale != hm.colorscale
    assert np.isnan(zf[list(hm.y).index("A"), ir])  # 3 articles: solid
    assert "fewer than 3 articles" in fig.layout.title.text
    # With a lower threshold every cell is solid and there is no second trace.
    assert len(plots.stance_heatmap(summary, "all", min_articles=1).data) == 1


def test_plots_cell_anchor_is_stable_and_distinct():
    a = plots.cell_anchor("A", "russia", "all")
    assert a == plots.cell_anchor("A", "russia", "all") and a.startswith("ev-")
    assert a != plots.cell_anchor("A", "russia", "libya") != plots.cell_anchor("B", "russia", "all")


def test_plots_stance_heatmap_min_n_and_empty_topic(summary):
    fig = plots.stance_heatmap(summary, "all", min_n=5)
    assert len(fig.data[0].y) == 2
    empty = plots.stance_heatmap(summary, "aegean")
    assert not empty.data and "No mentions" in empty.layout.annotations[0].text


def test_plots_interval_plot_error_bars(summary):
    fig = plots.interval_plot(summary, "all")
    assert [t.type for t in fig.data] == ["scatter", "scatter"]
    russia = fig.data[0]
    i = list(russia.y).index("A")
    assert russia.x[i] == pytest.approx(0.4)
    assert russia.error_x.array[i] == pytest.approx(0.2)
    assert russia.error_x.arrayminus[i] == pytest.approx(0.3)
    assert "3 articles, 10 sentences" in russia.customdata[i]
    assert no_raw_markup(fig)


def test_plots_interval_plot_any_group_column(summary):
    by = summary[summary["topic"] == "all"].rename(columns={"source": "bias_text"})
    by = by.drop(columns="topic")
    fig = plots.interval_plot(by, group="bias_text")
    assert len(fig.data) == 2


@pytest.fixture(scope="module")
def contrasts():
    base = np.linspace(-0.1, 0.1, 6)
    rows = []
    for a, b, sig in (("A", "B", True), ("A", EVIL, False)):
        units = pd.DataFrame(
            {
                "source": [a] * 6 + [b] * 6,
                "target": "russia",
                "topic": "libya",
                "article_id": [f"{a}{i}" for i in range(6)] + [f"{b}{i}" for i in range(6)],
                "stance_score": np.r_[base + (0.5 if sig else 0), base[::-1] - (0.5 if sig else 0)],
            }
        )
        rows.append(
            compare.contrasts(
                units,
                config={"compare": {"permutation_resamples": 200, "bootstrap_resamples": 200}},
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_plots_contrast_plot_marks_significance(contrasts):
    fig = plots.contrast_plot(contrasts, "russia", "all")
    names = {t.name for t in fig.data}
    assert names == {"significant (BH)", "not significant"}
    sig = next(t for t in fig.data if t.name == "significant (BH)")
    assert sig.marker.symbol == "circle" and sig.x[0] > 0.5
    assert "(6 / 6 articles, 6 / 6 sentences)" in sig.customdata[0]
    assert no_raw_markup(fig)
    assert not plots.contrast_plot(contrasts, "iran").data


def test_plots_trend_plot_has_band_and_line_per_group():
    trends = pd.DataFrame(
        {
            "source": ["A", "A", "A", "B"],
            "target": "russia",
            "topic": "all",
            "period": ["2020-01", "2020-02", "2020-03", "2020-01"],
            "period_start": pd.to_datetime(
                ["2020-01-01", "2020-02-01", "2020-03-01", "2020-01-01"]
            ),
            "freq": "month",
            "n": [3, 4, 6, 5],
            "n_articles": [1, 2, 3, 2],
            "mean": [0.1, 0.2, 0.3, -0.3],
            "ci_low": [0.05, 0.1, 0.2, -0.5],
            "ci_high": [0.15, 0.3, 0.4, -0.1],
        }
    )
    fig = plots.trend_plot(trends, "russia")
    # A: a band over its two periods with >= 2 articles and a line; B: one period, no band.
    assert [t.fill for t in fig.data] == ["toself", None, None]
    band, line = fig.data[0], fig.data[1]
    assert len(band.x) == 4 and list(band.y) == [0.3, 0.4, 0.2, 0.1]
    assert list(line.y) == [0.1, 0.2, 0.3]
    # The one-article period: open marker, no error bar, and the hover says why.
    assert list(line.marker.symbol) == ["circle-open", "circle", "circle"]
    assert line.error_y.array[0] == 0 and line.error_y.array[1] == pytest.approx(0.1)
    assert "no interval" in line.customdata[0] and "[" not in line.customdata[0]
    assert "2 articles, 4 sentences" in line.customdata[1]
    # B's single period keeps its interval as an error bar.
    assert fig.data[2].error_y.arrayminus[0] == pytest.approx(0.2)
    assert "open markers" in fig.layout.title.text
    assert not plots.trend_plot(trends, "iran").data


def test_plots_topic_map_and_share():
    sentences = pd.DataFrame(
        {
            "article_id": ["a", "a", "b"],
            "sentence_id": [0, 1, 0],
            "source": ["S", "S", "T"],
            "sentence": [EVIL, "ok", "fine"],
            "topic": ["libya", "noise", "libya"],
        }
    )
    tmap = pd.DataFrame(
        {
            "article_id": ["a", "a", "b"],
            "sentence_id": [0, 1, 0],
            "x": [0.0, 1.0, 2.0],
            "y": [1.0, 0.0, 1.0],
        }
    )
    topics = pd.DataFrame({"topic": ["libya", "noise"], "label": ["Libya", "noise"]})
    fig = plots.topic_map(tmap, sentences, topics)
    assert [t.name for t in fig.data] == ["Libya", "noise"]
    assert all(t.type == "scatter" for t in fig.data)  # SVG, not WebGL
    assert no_raw_markup(fig) and "&lt;script&gt;" in fig.data[0].customdata[0]
    share = plots.topic_share(sentences, topics)
    total = np.sum([np.array(t.x, dtype=float) for t in share.data], axis=0)
    np.testing.assert_allclose(total, 1.0)
    sampled = plots.topic_map(tmap, sentences, topics, max_points=2)
    assert sum(len(t.x) for t in sampled.data) == 2


def test_plots_corpus_overview_and_mention_counts():
    arts = pd.DataFrame({"source": ["A", "A", "B"]})
    sents = pd.DataFrame({"source": ["A"] * 5 + ["B"] * 2})
    ments = pd.DataFrame(
        {
            "source": ["A", "B", "B"],
            "target": ["russia", "us", "us"],
            "stance": ["negative", "positive", "neutral"],
        }
    )
    fig = plots.corpus_overview(arts, sents, ments)
    assert [t.name for t in fig.data] == ["articles", "sentences", "mentions"]
    assert list(fig.data[0].x) == [2, 1] and fig.layout.xaxis.type == "log"
    mc = plots.mention_counts(ments)
    assert [t.name for t in mc.data] == ["negative", "neutral", "positive"]


def test_plots_validation_figures(evaluation):
    f1 = plots.f1_bars(evaluation)
    assert len(f1.data) == 2 and list(f1.data[1].x) == ["negative", "neutral", "positive"]
    assert "macro-F1 0.68" in f1.data[1].name
    cm = plots.confusion_heatmap(evaluation)
    z = np.array(cm.data[0].z)
    np.testing.assert_allclose(z.sum(axis=1), 1.0)
    assert z[0, 0] == pytest.approx(0.6)
    cal = plots.calibration_curve(evaluation)
    assert len(cal.data) == 2 and list(cal.data[1].x) == [0.5, 0.9]


def test_plots_calibration_curve_reads_the_evaluation_format():
    # As ``stance evaluate`` writes it (stance.training.calibration_table): empty bins skipped.
    bins = [
        {"lo": 0.3, "hi": 0.4, "n": 0, "mean_confidence": None, "accuracy": None},
        {"lo": 0.5, "hi": 0.6, "n": 12, "mean_confidence": 0.55, "accuracy": 0.5},
        {"lo": 0.9, "hi": 1.0, "n": 80, "mean_confidence": 0.95, "accuracy": 0.93},
    ]
    ev = {"rw/test": {"macro_f1": 0.7, "calibration": {"ece": 0.0288, "bins": bins}}}
    cal = plots.calibration_curve(ev)
    assert len(cal.data) == 2 and not cal.layout.annotations
    assert list(cal.data[1].x) == [0.55, 0.95] and list(cal.data[1].y) == [0.5, 0.93]
    assert list(cal.data[1].customdata) == [12, 80] and "ECE 0.029" in cal.data[1].name


def test_plots_calibration_curve_draws_the_shipped_model():
    from stance import evaluation

    ev = evaluation.load_evaluation({})
    cal = plots.calibration_curve(ev)
    assert len(cal.data) >= 3 and all(len(t.x) >= 3 for t in cal.data[1:])


def test_plots_confusion_heatmap_rejects_unknown_split(evaluation):
    with pytest.raises(ValueError, match="'split' parameter"):
        plots.confusion_heatmap(evaluation, "dev")


def test_plots_validation_figures_tolerate_missing_metrics():
    assert not plots.f1_bars({}).data
    assert not plots.confusion_heatmap({"x": 1}).data
    assert len(plots.calibration_curve({}).data) == 1
