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
# # Topics
#
# Which conflicts the sentences are about. Named topics (Libya, Lachin / Armenia–Azerbaijan,
# Aegean, Catalonia, Afghanistan) come from short descriptions and seed terms; sentences far
# from all of them form discovered clusters labelled by keywords, or noise. Stance is later
# compared within each topic, so this report shows what each topic holds and how much of every
# source falls into it.

# %% tags=["parameters"]
run_dir = "../runs/sample"

# %%
from stance import plots, views
from stance.run import load_run

run = load_run(run_dir)
topics, sentences = run["topics"], run["sentences"]
views.table_html(views.topics_table(topics), caption="Topics", max_rows=60)

# %%
plots.topic_share(sentences, topics)

# %% [markdown]
# **Reading.** Each bar is one source's sentences split by topic. Sources that share a topic
# can be compared on it; a topic only one source covers appears in that source's row alone and
# gets no contrasts.

# %%
plots.topic_map(run["topic_map"], sentences, topics)

# %% [markdown]
# **Reading.** Each point is a sentence placed by its embedding (2-D projection); colours are
# topics. Hover to read a sentence. Named topics that form tight islands are well separated;
# points of one colour scattered across the map mean a topic absorbed loosely related sentences.

# %%
views.provenance_html(run["run"], parameters={"run_dir": run_dir})
