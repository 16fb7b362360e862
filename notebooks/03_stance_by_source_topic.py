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
# # Stance by source and topic
#
# How each source portrays each target (Russia, the United States, Turkey, Iran), over all
# topics and within each topic. A cell's value is the mean stance the *authors* take toward the
# target in the sentences that mention it (−1 hostile … +1 favourable; several mentions in one
# sentence count once). The stance model scores each sentence; attribution then separates the
# author's own statements from views the author reports ("X said …", quotations — they count a
# quarter) and from claims the author disputes ("the supposed …", "no evidence that …" — their
# sign is reversed). Intervals come from a bootstrap that resamples whole *articles*, because
# sentences of one article are not independent. Click any cell of a heatmap to read the
# sentences behind it.

# %% tags=["parameters"]
run_dir = "../runs/sample"
min_n = 1
min_articles = None  # None: the run's [compare] min_articles

# %% [markdown]
# ## Findings
#
# Differences between two sources in how they portray a target that survive the
# Benjamini–Hochberg correction over every contrast of the run (report 04 has them all), and
# rest on at least `min_articles` articles on each side — fewer is an anecdote, however many
# sentences it holds. Each links to the sentences of both sides.

# %%
from stance import plots, views
from stance.run import load_run

run = load_run(run_dir)
if min_articles is None:
    min_articles = views.min_articles(run["run"])
summary, evidence = run["summary"], run["evidence"]
labels = views.target_labels(run["run"])
topic_names = views.topic_labels(run.get("topics"))
views.findings_html(
    run["contrasts"],
    target_labels=labels,
    topic_labels=topic_names,
    min_articles=min_articles,
    unit="source",
)

# %% [markdown]
# ## Stance by source

# %%
plots.stance_heatmap(summary, "all", target_labels=labels, min_n=min_n, min_articles=min_articles)

# %% [markdown]
# **Reading.** Red cells are hostile, blue favourable; under each mean are the numbers of
# articles and sentences it rests on. Cells resting on fewer than `min_articles` articles are
# faded and in italics: a strong colour from one article is an anecdote, not a pattern. Hover
# for the 95% interval; click a cell for its sentences. In words, sources whose interval
# excludes zero (cells with at least `min_articles` articles):

# %%
views.summary_reading(summary, topic="all", min_n=3, min_articles=min_articles)

# %%
plots.interval_plot(summary, "all", target_labels=labels)

# %% [markdown]
# ## By topic
#
# The same heatmap within each topic that has mentions (largest first).

# %%
figures = [
    plots.stance_heatmap(
        summary,
        topic,
        target_labels=labels,
        min_n=min_n,
        topic_label=topic_names.get(topic),
        min_articles=min_articles,
    )
    for topic in views.topics_by_size(summary)
]
views.show_all(figures, empty_message="No topic has mentions of a target.")

# %% [markdown]
# ## Evidence: the sentences behind a cell
#
# Click a cell of any heatmap above — all topics or one topic — and its most negative and most
# positive sentences appear here, the mention highlighted, with the sentence's voice (author,
# reported, disputed), the author's stance that the means use next to the model's own score,
# and the article's title, source and date.

# %%
views.evidence_panel(
    summary,
    evidence,
    target_labels=labels,
    topic_labels=topic_names,
    min_articles=min_articles,
)

# %% [markdown]
# ## Over time
#
# Mean stance per period for sources with dated articles (undated articles are left out);
# bands are article-bootstrap intervals. A period resting on one article gets no band and an
# open marker: resampling the sentences of one article would draw an interval far narrower
# than the evidence allows.

# %%
views.show_all(
    [
        plots.trend_plot(run["trends"], target)
        for target in sorted(run["trends"]["target"].unique())
    ],
    empty_message="No dated articles mention a target, so there are no trends in this run.",
)

# %% [markdown]
# ## Whose stance: author, reported, disputed
#
# Share of each cell's sentences in each voice, and the mean before (`model_mean`, the
# sentence-level model) and after attribution (`author_mean`, the figure above). A large gap
# means the source mostly relays or rebuts others' views of the target.

# %%
views.table_html(views.voice_table(run.get("units")))

# %%
views.provenance_html(
    run["run"], parameters={"run_dir": run_dir, "min_n": min_n, "min_articles": min_articles}
)
