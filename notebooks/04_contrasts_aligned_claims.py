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
# # Contrasts between sources and aligned claims
#
# Is outlet X really more hostile to Russia than outlet Y, or could the gap be chance? For
# every target and topic and every pair of sources this report shows the difference of mean
# stance, an article-bootstrap interval for it, effect sizes (Cohen's d, Cliff's δ) and a
# permutation test that shuffles whole articles between the two sources; p-values are
# adjusted for the many comparisons with Benjamini–Hochberg. Then: *aligned claims*, sentences
# from different sources that say nearly the same thing about the same target with opposite
# stance.

# %% tags=["parameters"]
run_dir = "../runs/sample"
max_rows = 40

# %%
from stance import plots, views
from stance.run import load_run

run = load_run(run_dir)
contrasts, aligned = run["contrasts"], run["aligned"]
views.show_all(
    [
        plots.contrast_plot(contrasts, target, "all")
        for target in sorted(contrasts["target"].unique())
    ],
    empty_message="No target is mentioned by two or more sources, so there is nothing to contrast.",
)

# %% [markdown]
# **Reading.** Each row is a pair of sources; the marker is mean(a) − mean(b), negative when
# source a is more hostile. Filled markers survive the Benjamini–Hochberg correction, open
# ones do not. With few articles per source, permutation tests are coarse: two single-article
# sources can never differ significantly, however different their sentences read.

# %%
views.table_html(
    views.top_contrasts(contrasts, n=max_rows),
    caption="Largest significant (or, failing that, smallest-p) contrasts",
    max_rows=max_rows,
)

# %% [markdown]
# ## Aligned claims
#
# Pairs ranked by similarity × stance gap. The left sentence is the negative one.

# %%
views.aligned_html(aligned, max_pairs=max_rows)

# %%
views.provenance_html(run["run"], parameters={"run_dir": run_dir, "max_rows": max_rows})
