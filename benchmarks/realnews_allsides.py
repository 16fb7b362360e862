"""Real-news checks on an AllSides sample: mention kinds, group means, topics, aligned claims.

Three steps (the AllSides text stays outside the repository: the sample and the run go to
``data/interim/``, which git ignores)::

    python benchmarks/realnews_allsides.py sample --n 400 --seed 42
    stance analyze data/interim/allsides_geo400_seed42.jsonl --group-by bias_text \
        --out data/interim/run_geo400
    python benchmarks/realnews_allsides.py measure --run data/interim/run_geo400

``measure`` writes ``benchmarks/results/realnews_allsides.json`` (figures only) and the seeded
sample of aligned pairs to hand-check, ``benchmarks/results/aligned_check.csv`` (pair ids and
empty verdict columns ``same_event``, ``same_event_opposite_slant`` (yes/no) and ``reason``
(one word: match, event, slant); the sentences are printed, never written). After filling in the
verdicts, ``python benchmarks/realnews_allsides.py precision`` writes
``benchmarks/results/aligned_check.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/allsides/allsides_geopolitics.jsonl.gz")
INTERIM = ROOT / "data" / "interim"
RESULTS = ROOT / "benchmarks" / "results"
CHECK_CSV = RESULTS / "aligned_check.csv"
CHECK_JSON = RESULTS / "aligned_check.json"


def make_sample(n: int, seed: int) -> Path:
    """Write a seeded sample of the geopolitics subset as JSONL (dates as ISO days)."""
    df = pd.read_json(DATA, lines=True)
    s = df.sample(n=n, random_state=seed).sort_index()
    s["date"] = pd.to_datetime(s["date"]).dt.strftime("%Y-%m-%d")
    out = INTERIM / f"allsides_geo{n}_seed{seed}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    s[["source", "date", "title", "topic", "bias_text", "text"]].to_json(
        out, orient="records", lines=True
    )
    return out


def group_means(mentions: pd.DataFrame, articles: pd.DataFrame, settings, exclude: list[str]):
    """US mean stance per bias_text, as the run computes it, leaving ``exclude`` kinds out."""
    from stance import attribution, compare

    m = mentions[~mentions["kind"].isin(exclude)].reset_index(drop=True)
    if settings.stance.attribution:
        m = attribution.attribute(m, reported_weight=settings.stance.reported_weight)
    units = compare.with_group(compare.stance_units(m), articles, "bias_text")
    s = compare.summarize(units, by=("bias_text", "target", "topic"), config=settings)
    s = s[(s["target"] == "us") & (s["topic"] == "all")]
    return {
        r.bias_text: {
            "n": int(r.n),
            "mean": round(float(r.mean), 4),
            "ci": [round(float(r.ci_low), 4), round(float(r.ci_high), 4)],
        }
        for r in s.itertuples()
    }


def topic_figures(sentences: pd.DataFrame, articles: pd.DataFrame, table: pd.DataFrame) -> dict:
    """Largest discovered topic share, and which topics articles about named topics get."""
    disc = table[table["kind"] == "discovered"]
    share = sentences["topic"].value_counts(normalize=True)
    majority = (
        sentences[sentences["topic"] != "noise"]
        .groupby("article_id")["topic"]
        .agg(lambda t: t.value_counts().index[0])
    )
    checks = {
        "afghanistan": r"\b(?:Afghan\w*|Taliban|Kabul)\b",
        "aegean": r"\b(?:Greece|Greek|Aegean|Cyprus)\b",
    }
    named = {}
    for topic, pattern in checks.items():
        about = articles[articles["title"].str.contains(pattern, regex=True)]["article_id"]
        got = majority.reindex(about).fillna("noise")
        named[topic] = {
            "articles_with_title_match": len(about),
            "majority_topic_counts": {k: int(v) for k, v in got.value_counts().items()},
        }
    turkey = articles[articles["title"].str.contains(r"\bTurk\w*|Erdogan", regex=True)]
    got = majority.reindex(turkey["article_id"]).fillna("noise")
    named["turkey_titles"] = {
        "articles_with_title_match": len(turkey),
        "majority_topic_counts": {k: int(v) for k, v in got.value_counts().items()},
    }
    return {
        "n_discovered": len(disc),
        "largest_discovered_share": round(float(share.reindex(disc["topic"]).max()), 4),
        "largest_discovered_label": str(
            disc.set_index("topic")["label"].get(share.reindex(disc["topic"]).idxmax())
        ),
        "share_named_sentences": round(
            float(sentences["topic"].isin(table.loc[table["kind"] == "named", "topic"]).mean()),
            4,
        ),
        "named_topic_checks": named,
        "labels_first_10": disc["label"].head(10).tolist(),
    }


def measure(run_dir: Path, n_check: int, top: int, seed: int) -> None:
    """Compute the figures of a finished run and draw the aligned pairs to hand-check."""
    sys.path.insert(0, str(ROOT))
    from stance import compare, embed, topics
    from stance.config import load_settings
    from stance.run import load_run

    run = load_run(run_dir, vectors=True)
    settings = load_settings(overrides={"run": {"seed": run["run"]["config"]["run"]["seed"]}})
    mentions, articles, sentences = run["mentions"], run["articles"], run["sentences"]
    us = mentions[mentions["target"] == "us"]
    kinds = us["kind"].value_counts()
    out: dict = {
        "run": str(run_dir),
        "n_articles": len(articles),
        "n_sentences": len(sentences),
        "n_mentions": len(mentions),
        "us_mentions": len(us),
        "us_kind_share": {k: round(v / len(us), 4) for k, v in kinds.items()},
        "us_kind_count": {k: int(v) for k, v in kinds.items()},
        "us_attributive_mentions": {
            m: {k: int(v) for k, v in g["kind"].value_counts().items()}
            for m, g in us[us["mention"].isin(["US", "U.S.", "U.S", "USA"])].groupby("mention")
        },
        "us_mean_by_bias_text_all_kinds": group_means(mentions, articles, settings, []),
        "us_mean_by_bias_text_without_demonym": group_means(
            mentions, articles, settings, ["demonym"]
        ),
        "topics_in_run": topic_figures(sentences, articles, run["topics"]),
    }
    # Topics refitted with this checkout's TopicModel (cap, titles) on the run's vectors.
    vectors = np.asarray(run["vectors"])
    enc = embed.SentenceEncoder(settings.embed.model, progress=False)

    def encode(texts: list[str]) -> np.ndarray:
        return embed.embed_sentences(list(texts), enc, cache_dir=settings.embed.cache_path())

    model = topics.TopicModel.from_config(settings, coords=False).fit(
        sentences.drop(columns="topic"), vectors, encode, articles=articles
    )
    refit_sentences = sentences.assign(topic=model.labels_.to_numpy())
    out["topics_refit"] = topic_figures(refit_sentences, articles, model.table_)
    # Aligned claims with this checkout's event check, from the run's own units.
    aligned = compare.aligned_claims(run["units"], sentences, vectors, articles, config=settings)
    out["aligned_pairs"] = len(aligned)
    pool = aligned.head(top)
    pick = pool.sample(n=min(n_check, len(pool)), random_state=seed).sort_values("rank")
    pd.DataFrame(
        {
            "rank": pick["rank"].to_numpy(),
            "article_id_a": pick["article_id_a"].to_numpy(),
            "sentence_id_a": pick["sentence_id_a"].to_numpy(),
            "article_id_b": pick["article_id_b"].to_numpy(),
            "sentence_id_b": pick["sentence_id_b"].to_numpy(),
            "target": pick["target"].to_numpy(),
            "same_event": "",
            "same_event_opposite_slant": "",
            "reason": "",
        }
    ).to_csv(CHECK_CSV, index=False)
    out["aligned_check"] = {
        "pairs": len(pick),
        "drawn_from_top": top,
        "sample": f"DataFrame.sample(n={n_check}, random_state={seed}) of the top {top} pairs",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "realnews_allsides.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    for r in pick.itertuples():  # to read, never written to a file
        print(f"\n[{r.rank}] {r.target} sim={r.similarity:.2f} {r.date_a} | {r.date_b}")
        print(f"  A ({r.source_a}, {r.stance_score_a:+.2f}): {r.sentence_a}")
        print(f"  B ({r.source_b}, {r.stance_score_b:+.2f}): {r.sentence_b}")


def precision(command: str) -> None:
    """Write the hand-checked precision of the aligned pairs."""
    check = pd.read_csv(CHECK_CSV)
    verdicts = check["same_event_opposite_slant"].astype(str).str.strip().str.lower()
    if not verdicts.isin(["yes", "no"]).all():
        raise SystemExit(f"{CHECK_CSV}: every verdict must be yes or no.")
    same = check["same_event"].astype(str).str.strip().str.lower()
    result = {
        "pairs_checked": len(check),
        "yes": int((verdicts == "yes").sum()),
        "precision": round(float((verdicts == "yes").mean()), 4),
        "question": "Do both sentences report the same event or claim, with opposite slant "
        "towards the target (one clearly negative, the other clearly positive)?",
        "precision_same_event_only": round(float((same == "yes").mean()), 4),
        "question_same_event_only": "Do both sentences report the same event or claim "
        "(whatever their slant)?",
        "reasons": {k: int(v) for k, v in check["reason"].value_counts().sort_index().items()},
        "command": command,
    }
    CHECK_JSON.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> None:
    """Command line of the three steps."""
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="step", required=True)
    a = sub.add_parser("sample")
    a.add_argument("--n", type=int, default=400)
    a.add_argument("--seed", type=int, default=42)
    b = sub.add_parser("measure")
    b.add_argument("--run", required=True)
    b.add_argument("--n-check", type=int, default=50)
    b.add_argument("--top", type=int, default=100)
    b.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("precision")
    c.add_argument("--command", required=True, help="the commands that produced the pairs")
    args = ap.parse_args(argv)
    if args.step == "sample":
        print(make_sample(args.n, args.seed))
    elif args.step == "measure":
        measure(Path(args.run), args.n_check, args.top, args.seed)
    else:
        precision(args.command)


if __name__ == "__main__":
    main()
