# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Case study: AllSides — stance toward Russia, the US, Iran and Turkey
#
# AllSides rates US outlets as left, center or right. This case study runs the whole pipeline on
# its geopolitics articles — all 5,720 by default, each cut at `max_chars` characters — and asks:
# do outlets — and the three rating groups — portray the four states differently, and does that
# change over time? A number for `sample_size` analyses a seeded sample instead, balanced across
# ratings and drawn from the dated articles that name at least one target (quicker: 200
# articles take a few minutes). Article text stays outside the repository: it is read from
# `data_path` and the run is written to `case_run_dir` (under the git-ignored `runs/` in
# JupyterLab; a scratch folder when `stance report` renders it).

# %% tags=["parameters"]
data_path = "../data/external/allsides/allsides_geopolitics.jsonl.gz"
sample_size = None  # None: every article; a number: a seeded, rating-balanced sample
max_chars = 6000
seed = 42
case_run_dir = "../runs/allsides_case"
trend_freq = "year"
min_articles = None  # None: the case run's [compare] min_articles
run_dir = "../runs/sample"

# %%
import tempfile
from pathlib import Path

import stance
from stance import compare, plots, views
from stance.run import load_run

sample = views.load_allsides_sample(
    data_path, sample_size=sample_size, seed=seed, max_chars=max_chars
)
config = stance.load_config(overrides={"run": {"seed": seed}})
# The sample goes to a temporary file (never into the repository) for the pipeline to read.
sample_file = Path(tempfile.mkdtemp(prefix="allsides-")) / "allsides_sample.jsonl.gz"
sample.to_json(sample_file, orient="records", lines=True, force_ascii=False, compression="gzip")
stance.analyze([sample_file], config=config, out=case_run_dir, progress=False)
sample_file.unlink()
sample_file.parent.rmdir()
case = load_run(case_run_dir)
if min_articles is None:
    min_articles = views.min_articles(case["run"])
views.table_html(
    sample.groupby("bias_text")
    .agg(
        articles=("title", "size"),
        outlets=("source", "nunique"),
        first=("date", "min"),
        last=("date", "max"),
    )
    .reset_index(),
    caption="Articles by AllSides rating",
)

# %% [markdown]
# ## Findings
#
# Differences that survive the Benjamini–Hochberg correction and rest on at least
# `min_articles` articles on each side: first between outlets (each links to the sentences of
# both sides), then between the rating groups.

# %%
labels = views.target_labels(case["run"])
topic_names = views.topic_labels(case.get("topics"))
units = views.with_column(case["units"], sample, "bias_text")
rating_contrasts = compare.contrasts(units.assign(source=units["bias_text"]), config=config)
views.show_all(
    [
        views.findings_html(
            case["contrasts"],
            target_labels=labels,
            topic_labels=topic_names,
            min_articles=min_articles,
        ),
        views.findings_html(
            rating_contrasts,
            target_labels=labels,
            topic_labels=topic_names,
            min_articles=min_articles,
            link=False,
            unit="rating group",
        ),
    ]
)

# %% [markdown]
# ## By outlet
#
# Mean stance per outlet and target with article-bootstrap intervals (hover). Outlets with
# fewer than `min_articles` articles in the sample are faded: anecdotes, not patterns. Click a
# cell for its sentences (in the evidence panel at the end).

# %%
plots.stance_heatmap(case["summary"], "all", target_labels=labels, min_articles=min_articles)

# %% [markdown]
# ## By AllSides rating
#
# The same statistic pooled over the outlets of each rating. Intervals still resample
# *articles*, so an outlet with many articles cannot make a rating look more certain than the
# articles allow.

# %%
by_rating = compare.summarize(units, by=["bias_text", "target"], config=config, all_topics=False)
plots.interval_plot(by_rating, group="bias_text", target_labels=labels)

# %%
views.table_html(
    views.top_contrasts(rating_contrasts[rating_contrasts["topic"] == "all"], n=12),
    caption="Rating vs rating (all topics), permutation test over articles, BH-adjusted",
)

# %% [markdown]
# **Reading.** A negative `diff` means the first rating group is more hostile to the target
# than the second. Differences between rating groups are small relative to the variation
# between articles in a sample of this size; only filled/`True` rows survive the correction.

# %% [markdown]
# ## Over time
#
# Mean stance per period (`trend_freq`) and rating group; bands are article-bootstrap
# intervals. A period resting on one article has no band and an open marker.

# %%
rating_trends = compare.trends(
    units, case["articles"], by=["bias_text"], config=config, freq=trend_freq
)
views.show_all(
    [
        plots.trend_plot(rating_trends, target, group="bias_text")
        for target in sorted(rating_trends["target"].unique())
    ]
)

# %% [markdown]
# ## Evidence
#
# Click a cell of the outlet heatmap (or a finding's evidence link): its most negative and most
# positive sentences appear here, the mention highlighted, with voice, scores and article.

# %%
views.evidence_panel(
    case["summary"],
    case["evidence"],
    target_labels=labels,
    topic_labels=topic_names,
    min_articles=min_articles,
)

# %%
views.provenance_html(
    case["run"],
    parameters={
        "data_path": data_path,
        "sample_size": sample_size,
        "max_chars": max_chars,
        "seed": seed,
        "case_run_dir": case_run_dir,
        "trend_freq": trend_freq,
        "min_articles": min_articles,
    },
)
