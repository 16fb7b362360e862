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
max_label = 60  # characters of a source's name on a chart's axis (hover shows it whole)

# %%


from stance import plots, views
from stance.run import load_run

run = load_run(run_dir)
# A run made with `stance analyze --group-by COL` compares the values of COL instead of
# sources: its contrasts name them COL_a, COL_b where the views expect source_a, source_b.
group = str(run["run"].get("group_by") or "source")
as_source = {f"{group}_a": "source_a", f"{group}_b": "source_b"}
as_group = {v: k for k, v in as_source.items()}
contrasts, aligned = run["contrasts"].rename(columns=as_source), run["aligned"]
short = views.short_labels(
    [*contrasts["source_a"].astype(str), *contrasts["source_b"].astype(str)], max_label
)
left_out = (run["run"].get("counts") or {}).get("contrasts_left_out") or {}
notes = []
if left_out:
    notes.append(
        views.left_out_html(left_out, group, compared=None if contrasts.empty else "below")
    )
targets = sorted(contrasts["target"].unique())
figures = [plots.contrast_plot(contrasts, target, "all") for target in targets]
for target, fig in zip(targets, figures, strict=True):
    if group != "source":
        fig.update_layout(
            title_text=fig.layout.title.text.replace(
                "Source differences", f"Differences between {plots.esc(group)} values"
            )
        )
    pairs = contrasts[(contrasts["target"] == target) & (contrasts["topic"] == "all")]
    pair_label = {
        f"{plots.esc(a)} − {plots.esc(b)}": f"{plots.esc(short[a])} − {plots.esc(short[b])}"
        for a, b in zip(pairs["source_a"].astype(str), pairs["source_b"].astype(str), strict=True)
        if short[a] != a or short[b] != b
    }
    shown = list(dict.fromkeys(y for trace in fig.data for y in trace.y))
    if any(y in pair_label for y in shown):
        fig.update_yaxes(
            tickmode="array", tickvals=shown, ticktext=[pair_label.get(y, y) for y in shown]
        )
views.show_all(
    notes + figures,
    empty_message="No target is mentioned by two or more sources, so there is nothing to contrast.",
)

# %% [markdown]
# **Reading.** Each row is a pair of sources; the marker is mean(a) − mean(b), negative when
# source a is more hostile. Filled markers survive the Benjamini–Hochberg correction, open
# ones do not. With few articles per source, permutation tests are coarse: two single-article
# sources can never differ significantly, however different their sentences read.

# %%
views.table_html(
    views.top_contrasts(contrasts, n=max_rows).rename(columns=as_group),
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
views.provenance_html(
    run["run"], parameters={"run_dir": run_dir, "max_rows": max_rows, "max_label": max_label}
)
