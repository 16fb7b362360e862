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
max_label = 60  # characters of a source's name on a chart's axis (hover shows it whole)

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
# A run made with `stance analyze --group-by COL` compares the values of COL instead of
# sources: its tables name COL (COL_a, COL_b) where the views expect `source`.
group = str(run["run"].get("group_by") or "source")
as_source = {group: "source", f"{group}_a": "source_a", f"{group}_b": "source_b"}
summary = run["summary"].rename(columns=as_source)
contrasts = run["contrasts"].rename(columns=as_source)
evidence = run["evidence"]
if group != "source":  # evidence keeps each sentence's outlet beside its group
    evidence = evidence.drop(columns="source", errors="ignore")
evidence = evidence.rename(columns=as_source)
labels = views.target_labels(run["run"])
topic_names = views.topic_labels(run.get("topics"))
axis_label = {
    plots.esc(n): plots.esc(c)
    for n, c in views.short_labels(summary["source"].unique(), max_label).items()
    if n != c
}
left_out = (run["run"].get("counts") or {}).get("contrasts_left_out") or {}
notes = []
if not contrasts.empty or not left_out:
    notes.append(
        views.findings_html(
            contrasts,
            target_labels=labels,
            topic_labels=topic_names,
            min_articles=min_articles,
            unit=group,
        )
    )
if left_out:
    notes.append(
        views.left_out_html(left_out, group, compared=None if contrasts.empty else "above")
    )
views.show_all(notes)

# %% [markdown]
# ## Stance by source

# %%
heatmaps = {
    topic: plots.stance_heatmap(
        summary,
        topic,
        target_labels=labels,
        min_n=min_n,
        topic_label=topic_names.get(topic),
        min_articles=min_articles,
    )
    for topic in ["all", *views.topics_by_size(summary)]
}
intervals = plots.interval_plot(run["summary"], "all", group=group, target_labels=labels)
for fig in [*heatmaps.values(), intervals]:
    fig.update_layout(
        title_text=fig.layout.title.text.replace("by source", f"by {plots.esc(group)}")
    )
    shown = list(dict.fromkeys(y for trace in fig.data for y in trace.y))
    if any(y in axis_label for y in shown):
        fig.update_yaxes(
            tickmode="array", tickvals=shown, ticktext=[axis_label.get(y, y) for y in shown]
        )
heatmaps["all"]

# %% [markdown]
# **Reading.** Red cells are hostile, blue favourable; under each mean are the numbers of
# articles and sentences it rests on. Cells resting on fewer than `min_articles` articles are
# faded and in italics: a strong colour from one article is an anecdote, not a pattern. Hover
# for the 95% interval; click a cell for its sentences. In words, sources whose interval
# excludes zero (cells with at least `min_articles` articles):

# %%
views.summary_reading(summary, topic="all", min_n=3, min_articles=min_articles)

# %%
intervals

# %% [markdown]
# ## By topic
#
# The same heatmap within each topic that has mentions (largest first).

# %%
views.show_all(
    [heatmaps[topic] for topic in heatmaps if topic != "all"],
    empty_message="No topic has mentions of a target.",
)

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
trend_figures = [
    plots.trend_plot(run["trends"], target, group=group)
    for target in sorted(run["trends"]["target"].unique())
]
for trace in (trace for fig in trend_figures for trace in fig.data):
    trace.name = axis_label.get(trace.name, trace.name)
views.show_all(
    trend_figures,
    empty_message="No dated articles mention a target, so there are no trends in this run.",
)

# %% [markdown]
# ## Whose stance: author, reported, disputed
#
# Share of each cell's sentences in each voice, and the mean before (`model_mean`, the
# sentence-level model) and after attribution (`author_mean`, the figure above). A large gap
# means the source mostly relays or rebuts others' views of the target.

# %%
units = run.get("units")
if units is not None and group != "source":
    units = units.drop(columns="source").rename(columns={group: "source"})
views.table_html(views.voice_table(units).rename(columns={"source": group}))

# %%
views.provenance_html(
    run["run"],
    parameters={
        "run_dir": run_dir,
        "min_n": min_n,
        "min_articles": min_articles,
        "max_label": max_label,
    },
)
