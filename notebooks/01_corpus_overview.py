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
# # Corpus overview
#
# What went into this run: how many articles, sentences and target mentions each source
# contributes, how the stance labels of the mentions are distributed, and which inputs were
# skipped. Every later report rests on these counts — a source with a handful of mentions cannot
# carry a confident comparison.

# %% tags=["parameters"]
run_dir = "../runs/sample"

# %%
import pandas as pd

from stance import plots, views
from stance.run import load_run

run = load_run(run_dir)
articles, sentences, mentions = run["articles"], run["sentences"], run["mentions"]
counts = (
    pd.DataFrame(
        {
            "articles": articles.groupby("source").size(),
            "sentences": sentences.groupby("source").size(),
            "mentions": mentions.groupby("source").size(),
            "dated articles": articles.assign(dated=views.parse_article_dates(articles).notna())
            .groupby("source")["dated"]
            .sum(),
        }
    )
    .fillna(0)
    .astype(int)
    .reset_index(names="source")
)
views.table_html(counts, caption="Counts per source")

# %%
plots.corpus_overview(articles, sentences, mentions)

# %% [markdown]
# Bars are on a log scale: sources differ by orders of magnitude in size. Mentions are
# (sentence, target) matches of the alias lexicon; a sentence naming two targets counts twice.

# %%
plots.mention_counts(mentions)

# %% [markdown]
# The stacked bars show, per source and target, how many mentions the stance model labelled
# negative, neutral or positive; the next reports turn them into means with intervals. What
# this run's bars show, computed from its mentions:

# %%
views.mention_reading(mentions)

# %%
views.table_html(views.skipped_inputs(run["run"]), caption="Inputs skipped by the pipeline")

# %%
views.provenance_html(run["run"], parameters={"run_dir": run_dir})
