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
# # Stance model validation
#
# Every number in the other reports is only as good as the stance model. This report shows how
# the shipped target-dependent model scores on the held-out NewsMTSC test sets (`rw/test`:
# real-world sentences; `mt/test`: sentences with several targets), per class and as a
# confusion matrix, and how well its confidence is calibrated where bins were recorded.

# %% tags=["parameters"]
run_dir = "../runs/sample"

# %%
from stance import evaluation, plots, views
from stance.run import load_run

run = load_run(run_dir)
metrics = evaluation.load_evaluation(run["run"])
views.show_all([evaluation.evaluation_note(metrics)])

# %%
views.table_html(evaluation.evaluation_table(metrics), caption="Test metrics", max_rows=40)

# %%
plots.f1_bars(metrics)

# %% [markdown]
# **Reading.** Neutral is the majority class in news and usually the easiest; F1 on the
# negative and positive classes is what matters for hostile/favourable readings. For scale:
# VADER sentence sentiment reaches macro-F1 0.513 / 0.481 on the same sets.

# %%
views.show_all(
    [plots.confusion_heatmap(metrics, split) for split in evaluation.confusion_splits(metrics)],
    empty_message="The model's evaluation has no confusion matrix.",
)

# %% [markdown]
# **Reading.** Rows are true labels and sum to 100%. The costly error for this analysis is the
# off-diagonal corner — negative read as positive or the reverse; confusions with neutral only
# shrink means toward zero.

# %%
plots.calibration_curve(metrics)

# %% [markdown]
# ## Does the target's name move the score?
#
# Every NewsMTSC dev pair scored again with its target replaced by each name below: the
# sentence is the same, only the name changes. A model that reads the portrayal gives every
# name the same mean; the identity-aware model (trained with names visible) learned a prior per
# name from the news it was trained on. The default model hides the target's name and scores
# every name alike (`benchmarks/stance_identity.py`).

# %%
views.table_html(
    evaluation.identity_table(run["run"]), caption="Mean stance_score by target name", max_rows=30
)

# %% [markdown]
# ## Opinion writing
#
# The sources analysts compare are mostly opinion writing, where NewsMTSC (news) is an
# optimistic guide. The project's own hand-labelled set — (sentence, target) pairs from AllSides
# opinion and analysis pieces of left, center and right outlets, labelled by the annotation
# guideline (`stance/data/opinion_pairs.csv`, references only; `stance evaluate opinion`) —
# scored by the shipped models and by VADER, on its dev and test splits.

# %%
views.table_html(
    evaluation.opinion_table(run["run"]),
    caption="Opinion-writing pairs: macro-F1 and per-class F1",
    max_rows=20,
)

# %%
views.provenance_html(run["run"], parameters={"run_dir": run_dir})
