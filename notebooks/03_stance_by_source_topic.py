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
# sentences of one article are not independent. Below the charts, every cell opens to the
# sentences behind it.

# %% tags=["parameters"]
run_dir = "../runs/sample"
min_n = 1

# %%
from stance import plots, views
from stance.run import load_run

run = load_run(run_dir)
summary, evidence = run["summary"], run["evidence"]
labels = views.target_labels(run["run"])
topic_names = views.topic_labels(run.get("topics"))
plots.stance_heatmap(summary, "all", target_labels=labels, min_n=min_n)

# %% [markdown]
# **Reading.** Red cells are hostile, blue favourable; the number under each mean is the count
# of sentences. Hover for the 95% interval and the number of articles — a strong colour with
# few articles is an anecdote, not a pattern. In words, sources whose interval excludes zero:

# %%
views.summary_reading(summary, topic="all", min_n=3)

# %%
plots.interval_plot(summary, "all", target_labels=labels)

# %% [markdown]
# ## By topic
#
# The same heatmap within each topic that has mentions (largest first).

# %%
figures = [
    plots.stance_heatmap(
        summary, topic, target_labels=labels, min_n=min_n, topic_label=topic_names.get(topic)
    )
    for topic in views.topics_by_size(summary)
]
views.show_all(figures, empty_message="No topic has mentions of a target.")

# %% [markdown]
# ## Over time
#
# Mean stance per period for sources with dated articles (undated articles are left out);
# bands are article-bootstrap intervals.

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

# %% [markdown]
# ## Evidence: the sentences behind each cell
#
# Click a row to see the most negative and most positive sentences of that source about that
# target (all topics), with the article they come from; reported and disputed sentences are
# tagged with their voice and the model's own score.

# %%
views.evidence_html(summary, evidence, topic="all")

# %%
views.provenance_html(run["run"], parameters={"run_dir": run_dir, "min_n": min_n})
