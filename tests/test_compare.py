from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from stance import compare

FAST = {
    "run": {"seed": 7},
    "compare": {
        "bootstrap_resamples": 400,
        "permutation_resamples": 400,
        "confidence": 0.95,
        "aligned_similarity": 0.9,
        "evidence_per_cell": 2,
    },
}


def make_corpus(seed: int = 0, n_sources: int = 3, n_articles: int = 6, n_sentences: int = 6):
    """Mentions/articles/sentences/vectors where source i leans toward centres[i]."""
    rng = np.random.default_rng(seed)
    centres = [0.5, -0.5, 0.0]
    ments, arts, sents = [], [], []
    for si in range(n_sources):
        src = f"S{si}"
        for ai in range(n_articles):
            aid = f"{src}-a{ai}"
            arts.append(
                {
                    "article_id": aid,
                    "source": src,
                    "path": "",
                    "title": f"Title {aid}",
                    "date": f"2020-{1 + ai % 12:02d}-05" if ai != 0 else None,
                    "text": "",
                }
            )
            shift = rng.normal(0, 0.2)
            for j in range(n_sentences):
                topic = ("libya", "lachin")[j % 2]
                sent = f"sentence {aid} {j}"
                sents.append(
                    {
                        "article_id": aid,
                        "source": src,
                        "sentence_id": j,
                        "sentence": sent,
                        "start": 0,
                        "end": len(sent),
                        "topic": topic,
                    }
                )
                for target in ("russia", "us"):
                    score = float(np.clip(centres[si % 3] + shift + rng.normal(0, 0.3), -1, 1))
                    label = "positive" if score > 0.2 else "negative" if score < -0.2 else "neutral"
                    ments.append(
                        {
                            "article_id": aid,
                            "source": src,
                            "sentence_id": j,
                            "sentence": sent,
                            "target": target,
                            "mention": target,
                            "start": 0,
                            "end": 3,
                            "topic": topic,
                            "stance": label,
                            "stance_score": score,
                        }
                    )
    sentences = pd.DataFrame(sents)
    vectors = rng.normal(size=(len(sentences), 8))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return pd.DataFrame(ments), pd.DataFrame(arts), sentences, vectors


@pytest.fixture(scope="module")
def corpus():
    return make_corpus()


@pytest.fixture(scope="module")
def tables(corpus):
    mentions, articles, sentences, vectors = corpus
    return compare.run_compare(mentions, articles, sentences, vectors, FAST, progress=False)


def test_compare_run_compare_returns_every_table(tables):
    assert set(tables) == {"units", "summary", "contrasts", "evidence", "aligned", "trends"}
    assert list(tables["summary"].columns) == [
        "source",
        "target",
        "topic",
        "n",
        "n_articles",
        "mean",
        "ci_low",
        "ci_high",
    ]
    assert list(tables["contrasts"].columns) == list(compare.CONTRAST_COLUMNS)
    assert not tables["contrasts"].empty
    assert not tables["evidence"].empty


def test_compare_summary_has_all_topic_and_intervals_contain_means(tables):
    s = tables["summary"]
    assert set(s["topic"]) == {"all", "libya", "lachin"}
    assert (s["ci_low"] <= s["mean"]).all()
    assert (s["mean"] <= s["ci_high"]).all()
    # "all" pools the topics: its n is the sum of the per-topic n.
    per_topic = s[s["topic"] != "all"].groupby(["source", "target"])["n"].sum()
    pooled = s[s["topic"] == "all"].set_index(["source", "target"])["n"]
    pd.testing.assert_series_equal(per_topic.sort_index(), pooled.sort_index(), check_names=False)


def test_compare_units_average_mentions_of_one_target_in_one_sentence():
    m = pd.DataFrame(
        {
            "article_id": ["a", "a", "a"],
            "source": "S",
            "sentence_id": [0, 0, 0],
            "sentence": "Putin met Russia's allies.",
            "target": ["russia", "russia", "us"],
            "mention": ["Putin", "Russia", "US"],
            "topic": "libya",
            "stance": ["negative", "neutral", "positive"],
            "stance_score": [-0.8, -0.2, 0.6],
        }
    )
    u = compare.stance_units(m)
    assert len(u) == 2
    ru = u[u["target"] == "russia"].iloc[0]
    assert ru["stance_score"] == pytest.approx(-0.5)
    assert ru["n_mentions"] == 2
    assert ru["mentions"] == "Putin; Russia"
    assert ru["stance"] == "negative"  # tie between labels broken by the sign of the mean


def test_compare_units_voice_is_the_commonest_ties_to_author_then_disputed():
    voices = {  # sentence id: its russia mentions' voices, in order
        0: ["reported", "author"],
        1: ["reported", "reported", "author"],
        2: ["reported", "disputed"],
        3: ["disputed"],
    }
    rows = [(sid, v, i) for sid, vs in voices.items() for i, v in enumerate(vs)]
    m = pd.DataFrame(
        {
            "article_id": "a",
            "source": "S",
            "sentence_id": [sid for sid, _, _ in rows],
            "sentence": "Russia, Moscow and the Kremlin.",
            "target": "russia",
            "mention": [("Moscow", "Russia", "Moscow")[i] for _, _, i in rows],
            "kind": [("capital", "name", "capital")[i] for _, _, i in rows],
            "topic": "libya",
            "stance": "neutral",
            "stance_score": 0.0,
            "voice": [v for _, v, _ in rows],
            "author_score": 0.0,
            "weight": 1.0,
        }
    )
    u = compare.stance_units(m).set_index("sentence_id")
    assert u["voice"].to_dict() == {0: "author", 1: "reported", 2: "disputed", 3: "disputed"}
    assert u.loc[1, "mentions"] == "Moscow; Russia" and u.loc[1, "kind"] == "capital; name"
    assert u.loc[3, "mentions"] == "Moscow" and u.loc[3, "n_mentions"] == 1


def test_compare_bootstrap_resamples_articles_not_sentences():
    # Ten articles, each with 30 sentences at the article's own score: nearly all variation is
    # between articles. Resampling sentences would treat 300 points as independent and give a
    # far narrower interval than resampling the 10 articles.
    rng = np.random.default_rng(1)
    article_scores = rng.uniform(-0.8, 0.8, 10)
    scores = np.repeat(article_scores, 30) + rng.normal(0, 0.01, 300)
    articles = np.repeat([f"a{i}" for i in range(10)], 30)
    _, lo_c, hi_c = compare.bootstrap_interval(
        scores, articles, resamples=1000, rng=np.random.default_rng(0)
    )
    _, lo_s, hi_s = compare.bootstrap_interval(
        scores, np.arange(300), resamples=1000, rng=np.random.default_rng(0)
    )
    assert hi_c - lo_c > 3 * (hi_s - lo_s)


@pytest.mark.parametrize(
    ("scores", "articles"),
    [
        ([0.3], ["a"]),
        ([0.3, 0.3, 0.3], ["a", "b", "c"]),
    ],
)
def test_compare_bootstrap_degenerate_cells_give_zero_width_at_the_mean(scores, articles):
    mean, lo, hi = compare.bootstrap_interval(scores, articles, resamples=100)
    assert lo == hi == pytest.approx(mean)


def test_compare_bootstrap_single_article_falls_back_to_its_sentences():
    mean, lo, hi = compare.bootstrap_interval([-0.5, 0.1, 0.4, 0.9], ["a"] * 4, resamples=500)
    assert lo < mean < hi


def test_compare_bootstrap_interval_contains_mean_property():
    rng = np.random.default_rng(3)
    for i in range(50):
        n = int(rng.integers(1, 15))
        scores = rng.uniform(-1, 1, n) ** 3  # skewed
        arts = rng.integers(0, max(1, n // 2), n).astype(str)
        mean, lo, hi = compare.bootstrap_interval(
            scores, arts, resamples=200, rng=np.random.default_rng(i)
        )
        assert lo <= mean <= hi


def test_compare_run_compare_is_deterministic(corpus, tables):
    mentions, articles, sentences, vectors = corpus
    # Shuffled input rows must not change anything either.
    again = compare.run_compare(
        mentions.sample(frac=1, random_state=1), articles, sentences, vectors, FAST, progress=False
    )
    for name, df in tables.items():
        pd.testing.assert_frame_equal(df, again[name], check_exact=True)
        a, b = io.BytesIO(), io.BytesIO()
        df.to_parquet(a, index=False)
        again[name].to_parquet(b, index=False)
        assert a.getvalue() == b.getvalue(), name


def test_compare_seed_changes_intervals_but_not_means(corpus, tables):
    mentions, _articles, _sentences, _vectors = corpus
    other = compare.summarize(compare.stance_units(mentions), config={**FAST, "run": {"seed": 8}})
    s = tables["summary"]
    np.testing.assert_allclose(other["mean"], s["mean"])
    assert not np.allclose(other["ci_low"], s["ci_low"])


def test_compare_benjamini_hochberg_matches_hand_computation():
    p = [0.01, 0.04, 0.03, 0.20]
    # sorted: 0.01, 0.03, 0.04, 0.20 → ×4/rank: 0.04, 0.06, 0.0533, 0.20 → step-up minimum:
    # 0.04, 0.0533, 0.0533, 0.20; back in input order:
    expected = [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.20]
    np.testing.assert_allclose(compare.benjamini_hochberg(p), expected)
    assert np.isnan(compare.benjamini_hochberg([np.nan, 0.5])[0])
    assert compare.benjamini_hochberg([0.9, 0.95]).max() <= 1.0


def test_compare_benjamini_hochberg_agrees_with_scipy():
    from scipy.stats import false_discovery_control

    p = np.random.default_rng(0).uniform(0, 0.2, 40)
    np.testing.assert_allclose(compare.benjamini_hochberg(p), false_discovery_control(p))


def test_compare_contrasts_detect_a_real_difference_and_adjust(tables):
    c = tables["contrasts"]
    row = c[
        (c["target"] == "russia")
        & (c["topic"] == "all")
        & (c["source_a"] == "S0")
        & (c["source_b"] == "S1")
    ].iloc[0]
    assert row["diff"] == pytest.approx(row["mean_a"] - row["mean_b"])
    assert row["diff"] > 0.5 and row["effect_size"] > 1 and row["cliffs_delta"] > 0.5
    assert row["p_value"] < 0.01 and row["significant"]
    assert row["diff_ci_low"] <= row["diff"] <= row["diff_ci_high"]
    assert (c["p_adjusted"] >= c["p_value"] - 1e-12).all()
    assert (c["source_a"] < c["source_b"]).all()


def test_compare_contrasts_in_worker_processes_equal_one_process(corpus, tables, monkeypatch):
    units = compare.stance_units(corpus[0])
    # five sources: two cells of ten pairs each per target and topic, several tasks per cell
    more = pd.concat(
        [
            units,
            *(
                units.assign(source=f"{s}x", stance_score=units["stance_score"] * k)
                for s, k in (("S0", 0.5), ("S1", -0.7))
            ),
        ],
        ignore_index=True,
    )
    monkeypatch.setattr(compare, "_PARALLEL_MIN_PAIRS", 0)
    monkeypatch.setattr(compare, "_PAIRS_PER_TASK", 3)
    one = compare.contrasts(more, config=FAST, workers=1)
    two = compare.contrasts(more, config=FAST, workers=2)
    assert len(one) == 2 * 3 * 10 and one.equals(two)  # 2 targets x 3 topics x 10 pairs


def test_compare_contrast_figures_are_the_public_functions_of_its_two_sides(corpus, tables):
    units = compare.stance_units(corpus[0])
    row = tables["contrasts"].iloc[0]
    side = {
        s: units[(units["source"] == s) & (units["target"] == row["target"])]
        for s in (row["source_a"], row["source_b"])
    }
    if row["topic"] != "all":
        side = {s: g[g["topic"] == row["topic"]] for s, g in side.items()}
    a, b = side[row["source_a"]], side[row["source_b"]]
    xa, xb = a["stance_score"].to_numpy(), b["stance_score"].to_numpy()
    assert row["effect_size"] == compare.cohens_d(xa, xb)
    assert row["cliffs_delta"] == compare.cliffs_delta(xa, xb)
    key = ("contrast", row["target"], row["topic"], row["source_a"], row["source_b"])
    p = compare.permutation_test(
        xa,
        a["article_id"].to_numpy(),
        xb,
        b["article_id"].to_numpy(),
        resamples=FAST["compare"]["permutation_resamples"],
        rng=compare._rng(FAST["run"]["seed"], *key),
    )
    assert row["p_value"] == p
    # the interval: the difference of the two sources' bootstrap means behind their summary rows
    summary = tables["summary"].set_index(["source", "target", "topic"])
    for s in (row["source_a"], row["source_b"]):
        assert summary.loc[(s, row["target"], row["topic"]), "n"] == len(side[s])
    assert row["diff_ci_low"] < row["diff"] < row["diff_ci_high"]


def _many_small_sources(n_small: int) -> pd.DataFrame:
    """Units of ``n_small`` one-article sources and two sources of four articles (one topic)."""
    rng = np.random.default_rng(3)
    rows = [(f"one{i:04d}", f"one{i:04d}-a", 0) for i in range(n_small)]
    rows += [(s, f"{s}-a{k}", j) for s in ("big1", "big2") for k in range(4) for j in range(2)]
    units = pd.DataFrame(rows, columns=["source", "article_id", "sentence_id"])
    return units.assign(target="russia", topic="libya", stance_score=rng.uniform(-1, 1, len(units)))


@pytest.mark.parametrize("n_small", [60, 120])
def test_compare_contrasts_leave_out_pairs_of_sources_with_too_few_articles(
    n_small, monkeypatch, caplog
):
    # A table whose every row names its own source made n²/2 pairs per cell, none of which can
    # be a finding (fewer than compare.min_articles on both sides): past the limit they are left
    # out, and the work (permutation tests) grows linearly with the number of such sources.
    units = _many_small_sources(n_small)
    tested = []
    permutation_p = compare._permutation_p
    monkeypatch.setattr(compare, "_permutation_p", lambda *a: tested.append(1) or permutation_p(*a))
    full = compare.contrasts(units, config=FAST)  # below the default limit: every pair
    assert len(full) == len(tested) == 2 * (n_small + 2) * (n_small + 1) // 2
    assert "left_out" not in full.attrs

    tested.clear()
    monkeypatch.setattr(compare, "_FEW_PAIRS_MIN", 100, raising=False)
    monkeypatch.setattr(compare, "_FEW_PAIRS_PER_UNIT", 1, raising=False)
    with caplog.at_level("WARNING", logger="stance.compare"):
        some = compare.contrasts(units, config=FAST)
    kept = 2 * (1 + 2 * n_small)  # per cell (libya, all): big1–big2 and each small with each big
    assert len(some) == len(tested) == kept
    few = 2 * n_small * (n_small - 1) // 2
    assert some.attrs["left_out"] == {
        "pairs": few,
        "cells": 2,
        "min_articles": 3,
        "limit": max(100, len(units)),
    }
    assert f"left out {few} pairs of source values" in caplog.text
    # the pairs kept are the full table's, figures unchanged but for the multiple-test correction
    assert ((some["n_articles_a"] >= 3) | (some["n_articles_b"] >= 3)).all()
    key = ["target", "topic", "source_a", "source_b"]
    same = full.merge(some[key], on=key).drop(columns=["p_adjusted", "significant"])
    pd.testing.assert_frame_equal(same, some.drop(columns=["p_adjusted", "significant"]))
    # and worker processes, with several tasks per cell, give the same table
    monkeypatch.setattr(compare, "_PARALLEL_MIN_PAIRS", 0)
    monkeypatch.setattr(compare, "_PAIRS_PER_TASK", 7)
    assert compare.contrasts(units, config=FAST, workers=2).equals(some)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_compare_contrasts_reject_bad_workers(corpus, workers):
    with pytest.raises(ValueError, match="'workers' parameter must be an integer >= 1"):
        compare.contrasts(compare.stance_units(corpus[0]), config=FAST, workers=workers)


def test_compare_random_subsets_are_uniform_subsets():
    rows = compare._random_subsets(6, 2, 30_000, np.random.default_rng(1))
    assert rows.shape == (30_000, 2) and (rows[:, 0] != rows[:, 1]).all()
    # every one of the C(6, 2) = 15 subsets equally likely
    pairs = np.sort(rows, axis=1)
    freq = np.unique(pairs[:, 0] * 6 + pairs[:, 1], return_counts=True)[1] / len(rows)
    assert len(freq) == 15 and np.abs(freq - 1 / 15).max() < 0.01


def test_compare_permutation_test_moves_whole_articles():
    # Two articles per source: only C(4,2)=6 label assignments exist, so the p-value can never
    # be below 2/6 however many sentences the articles have — unlike a sentence-level test.
    a = np.repeat([0.9, 0.8], 50)
    b = np.repeat([-0.8, -0.9], 50)
    p = compare.permutation_test(
        a,
        np.repeat(["a1", "a2"], 50),
        b,
        np.repeat(["b1", "b2"], 50),
        resamples=2000,
        rng=np.random.default_rng(0),
    )
    assert 0.25 < p < 0.45


def test_compare_permutation_test_is_exact_for_few_articles():
    # 2 + 1 articles: C(3, 2) = 3 assignments; T* for {a1,a2} is +1.5 (observed), for {a1,b1}
    # and {a2,b1} it is -0.75 → exactly one of three assignments is as extreme.
    a, arts_a = np.array([1.0, 1.0]), np.array(["a1", "a2"])
    b, arts_b = np.array([-0.5]), np.array(["b1"])
    assert compare.permutation_test(a, arts_a, b, arts_b, resamples=100) == pytest.approx(1 / 3)
    # One article per side: swapping them gives the same |T|, so p = 1.
    assert compare.permutation_test(a[:1], arts_a[:1], b, arts_b) == 1.0


def test_compare_permutation_test_far_tail_goes_below_the_resampling_floor():
    rng = np.random.default_rng(1)
    arts_a, arts_b = [f"a{i}" for i in range(60)], [f"b{i}" for i in range(60)]
    b = rng.normal(0.0, 1.0, 60)
    floor = 1 / 201

    def p(shift: float, resamples: int = 200) -> float:
        a = rng_a.normal(shift, 1.0, 60)
        return compare.permutation_test(
            a, np.array(arts_a), b, np.array(arts_b), resamples=resamples,
            rng=np.random.default_rng(0),
        )  # fmt: skip

    rng_a = np.random.default_rng(2)
    strong = p(1.5)
    rng_a = np.random.default_rng(2)
    stronger = p(2.5)
    # far beyond every permuted statistic: a normal tail, not the floor, and ordered by effect
    assert 0 < stronger < strong < floor
    # the normal tail agrees with a plain permutation estimate where both can be read: a
    # moderate difference, and 20,000 resamples
    rng_a = np.random.default_rng(3)
    a = rng_a.normal(0.55, 1.0, 60)
    plain = compare.permutation_test(
        a, np.array(arts_a), b, np.array(arts_b), resamples=20_000, rng=np.random.default_rng(0)
    )
    tail = compare._TAIL_HITS
    try:
        compare._TAIL_HITS = 10**9  # force the normal tail
        approx = compare.permutation_test(
            a, np.array(arts_a), b, np.array(arts_b), resamples=20_000,
            rng=np.random.default_rng(0),
        )  # fmt: skip
    finally:
        compare._TAIL_HITS = tail
    assert 0.0005 < plain < 0.05 and approx == pytest.approx(plain, rel=0.35)
    # few articles per side keep the resampling estimate and its floor
    few = compare.permutation_test(
        np.full(10, 2.0) + rng.normal(0, 0.01, 10), np.array(arts_a[:10]),
        np.zeros(10), np.array(arts_b[:10]), resamples=200, rng=np.random.default_rng(0),
    )  # fmt: skip
    assert floor <= few < 0.05


def test_compare_cliffs_delta_matches_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.integers(-3, 4, 40).astype(float), rng.integers(-3, 4, 30).astype(float)
    brute = np.sign(x[:, None] - y[None, :]).mean()
    assert compare.cliffs_delta(x, y) == pytest.approx(brute)


def test_compare_evidence_filled_for_every_cell(tables):
    s, e = tables["summary"], tables["evidence"]
    cells = set(map(tuple, s[["source", "target", "topic"]].to_numpy()))
    with_evidence = set(map(tuple, e[["source", "target", "topic"]].to_numpy()))
    assert cells == with_evidence
    assert e.groupby(["source", "target", "topic", "side"]).size().max() <= 2
    neg = e[e["side"] == "negative"]
    assert (neg["stance_score"] < 0).all() and (
        e[e["side"] == "positive"]["stance_score"] > 0
    ).all()
    first = neg[neg["rank"] == 1].set_index(["source", "target", "topic"])["stance_score"]
    second = neg[neg["rank"] == 2].set_index(["source", "target", "topic"])["stance_score"]
    assert (first.reindex(second.index) <= second).all()
    assert e["title"].str.startswith("Title ").all()


def test_compare_aligned_claims_found_on_a_constructed_pair():
    sents = pd.DataFrame(
        {
            "article_id": ["a1", "b1", "b2", "a2"],
            "sentence_id": [0, 0, 0, 0],
            "source": ["A", "B", "B", "A"],
            "sentence": [
                "Russia saved Libya.",
                "Russia wrecked Libya.",
                "Cats.",
                "Russia hurt Libya.",
            ],
        }
    )
    v = np.array([[1, 0, 0], [0.99, 0.141, 0], [0, 0, 1], [0.98, 0.199, 0]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    m = sents.assign(
        target="russia",
        mention="Russia",
        start=0,
        end=6,
        topic="libya",
        stance=["positive", "negative", "negative", "negative"],
        stance_score=[0.8, -0.7, -0.9, -0.6],
    )
    arts = pd.DataFrame(
        {
            "article_id": ["a1", "b1", "b2", "a2"],
            "title": ["TA", "TB", "TC", "TD"],
            "date": ["2020-01-01", "2020-01-02", None, "bad date"],
        }
    )
    out = compare.aligned_claims(compare.stance_units(m), sents, v, arts, config=FAST)
    # b1 (B, negative) vs a1 (A, positive) qualifies; a2 vs a1 is the same source; b2 is far.
    assert len(out) == 1
    row = out.iloc[0]
    assert (row["source_a"], row["source_b"]) == ("B", "A")
    assert row["sentence_a"] == "Russia wrecked Libya." and row["title_b"] == "TA"
    assert row["similarity"] >= 0.9 and row["disagreement"] == pytest.approx(1.5)
    assert row["rank"] == 1


def test_compare_aligned_claims_keep_every_pair_a_float64_product_keeps(tmp_path, monkeypatch):
    """The float32 screen loses no pair: a pair exactly at the threshold is kept; same on a map."""
    import tempfile

    from stance import spill

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(compare, "_ALIGNED_BLOCK", 5)  # several negative blocks per target
    mentions, articles, sentences, vectors = make_corpus(seed=3, n_articles=10, n_sentences=8)
    units = compare.stance_units(mentions)
    u = units[units["stance"].isin(["negative", "positive"])].reset_index(drop=True)
    ids = zip(sentences.article_id, sentences.sentence_id, strict=True)
    row = {(a, s): i for i, (a, s) in enumerate(ids)}
    v64 = vectors.astype(np.float64)
    pairs = {}
    for i in np.flatnonzero(u["stance"] == "negative"):
        for j in np.flatnonzero(u["stance"] == "positive"):
            a, b = u.iloc[i], u.iloc[j]
            if a["target"] == b["target"] and a["source"] != b["source"]:
                va, vb = (
                    v64[row[a.article_id, a.sentence_id]],
                    v64[row[b.article_id, b.sentence_id]],
                )
                sim = float(va @ vb)
                pairs[(a.article_id, a.sentence_id, b.article_id, b.sentence_id, a.target)] = sim
    threshold = sorted(pairs.values())[-40]  # a realised similarity: one pair sits on it
    want = {k for k, sim in pairs.items() if sim >= threshold}
    cfg = {
        "compare": {
            "aligned_similarity": threshold,
            "aligned_max_days": 0,
            "aligned_min_shared": 0,
            "aligned_max_pairs": 10_000,
        }
    }
    out = compare.aligned_claims(units, sentences, vectors, articles, config=cfg)
    got = set(
        zip(
            out.article_id_a,
            out.sentence_id_a,
            out.article_id_b,
            out.sentence_id_b,
            out.target,
            strict=True,
        )
    )
    assert len(want) >= 40 and got == want
    assert out["similarity"].min() == threshold
    with spill.Spill() as s:
        mapped = s.join([s.put(vectors)])
    assert spill._mapping(mapped) is not None
    pd.testing.assert_frame_equal(
        compare.aligned_claims(units, sentences, mapped, articles, config=cfg), out
    )


def test_compare_aligned_claims_rejects_misaligned_vectors(corpus):
    mentions, articles, sentences, vectors = corpus
    with pytest.raises(ValueError, match="one row per sentence"):
        compare.aligned_claims(compare.stance_units(mentions), sentences, vectors[:-1], articles)


def test_compare_trends_skip_undated_and_bound_means(corpus, tables):
    t = tables["trends"]
    assert not t.empty
    assert (t["ci_low"] <= t["mean"]).all() and (t["mean"] <= t["ci_high"]).all()
    # Article 0 of every source is undated: its units must not be counted.
    mentions = corpus[0]
    dated_units = compare.stance_units(mentions[~mentions["article_id"].str.endswith("-a0")])
    assert t["n"].sum() == len(dated_units)
    assert set(t["freq"]) == {"month"}


@pytest.mark.parametrize(
    ("days", "freq"), [(30, "week"), (300, "month"), (2000, "quarter"), (5000, "year")]
)
def test_compare_choose_freq_by_span(days, freq):
    start = pd.Timestamp("2010-01-01")
    dates = pd.Series([start, start + pd.Timedelta(days=days)])
    assert compare.choose_freq(dates) == freq


def test_compare_parse_dates_is_lenient():
    parsed = compare.parse_dates(
        ["2020-03-01", "March 5, 2021", None, "", "not a date", "2019-01-01T10:00:00+02:00"]
    )
    assert parsed.isna().tolist() == [False, False, True, True, True, False]
    assert parsed.iloc[1] == pd.Timestamp("2021-03-05")


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"bootstrap_resamples": 0}, "compare.bootstrap_resamples"),
        ({"confidence": 1.5}, "compare.confidence"),
        ({"aligned_similarity": 2}, "compare.aligned_similarity"),
        ({"trend_freq": "decade"}, "compare.trend_freq"),
    ],
)
def test_compare_settings_reject_bad_values(section, match):
    with pytest.raises(ValueError, match=match):
        compare.compare_settings({"compare": section})


def test_compare_trends_reject_bad_freq(corpus):
    mentions, articles, *_ = corpus
    with pytest.raises(ValueError, match="'freq' parameter"):
        compare.trends(compare.stance_units(mentions), articles, freq="fortnight")


def test_compare_empty_mentions_give_empty_tables(corpus):
    mentions, articles, sentences, vectors = corpus
    out = compare.run_compare(mentions.iloc[:0], articles, sentences, vectors, FAST, progress=False)
    assert all(df.empty for df in out.values())
    assert list(out["summary"].columns) == [
        "source",
        "target",
        "topic",
        "n",
        "n_articles",
        "mean",
        "ci_low",
        "ci_high",
    ]


def test_compare_missing_columns_are_named():
    with pytest.raises(ValueError, match="stance_score"):
        compare.stance_units(pd.DataFrame({"article_id": ["a"]}))


def _grouped_corpus(corpus):
    mentions, articles, sentences, vectors = corpus
    lean = {"S0": "left", "S1": "right", "S2": "left"}
    return mentions, articles.assign(bias_text=articles["source"].map(lean)), sentences, vectors


def test_compare_group_by_takes_the_place_of_source(corpus):
    mentions, articles, sentences, vectors = _grouped_corpus(corpus)
    out = compare.run_compare(
        mentions, articles, sentences, vectors, FAST, progress=False, group_by="bias_text"
    )
    s = out["summary"]
    assert list(s.columns[:3]) == ["bias_text", "target", "topic"] and "source" not in s
    # left has twice the articles of right, so it comes first
    assert s["bias_text"].drop_duplicates().tolist() == ["left", "right"]
    left = s[(s["bias_text"] == "left") & (s["target"] == "us") & (s["topic"] == "all")].iloc[0]
    units = out["units"]
    expected = units.loc[(units["bias_text"] == "left") & (units["target"] == "us")]
    assert left["n"] == len(expected)
    assert left["mean"] == pytest.approx(expected["stance_score"].mean())
    assert {"bias_text_a", "bias_text_b"} <= set(out["contrasts"].columns)
    assert set(out["contrasts"]["bias_text_a"]) == {"left"}
    assert out["evidence"].columns[0] == "bias_text" and "source" in out["evidence"]
    assert out["trends"].columns[0] == "bias_text"


def test_compare_unknown_group_column_names_the_options(corpus):
    mentions, articles, sentences, vectors = corpus
    with pytest.raises(ValueError, match=r"'group_by' column 'rating' is not an article column"):
        compare.run_compare(
            mentions, articles, sentences, vectors, FAST, progress=False, group_by="rating"
        )


def test_compare_group_order_by_group_then_volume():
    arts = pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(7)],
            "source": ["Z", "Z", "Y", "X", "X", "X", "W"],
            "bias_text": ["left", "left", "right", "right", "right", "right", "left"],
        }
    )
    assert compare.group_order(arts) == ["X", "Z", "W", "Y"]
    # right has 4 articles, left 3: right's outlets first, each group by volume
    assert compare.group_order(arts, "source", group="bias_text") == ["X", "Y", "Z", "W"]


def test_compare_exclude_kinds_leaves_mentions_out(corpus):
    mentions, articles, sentences, vectors = corpus
    kinds = np.where(mentions["sentence_id"] % 3 == 0, "demonym", "name")
    m = mentions.assign(kind=kinds)
    config = {**FAST, "mentions": {"exclude_kinds": ["demonym"]}}
    out = compare.run_compare(m, articles, sentences, vectors, config, progress=False)
    assert set(out["units"]["kind"]) == {"name"}
    assert out["units"]["n_mentions"].sum() == int((kinds == "name").sum())


def test_compare_names_skip_first_word_titles_and_the_target():
    got = compare.names("Russia's President Putin met Erdogan in Sochi's port.", ["Putin"])
    assert got == {"Erdogan", "Sochi"}


@pytest.mark.parametrize(
    ("date_b", "sentence_b", "found"),
    [
        ("2020-01-10", "Russia wrecked Libya near Sirte.", True),
        ("2020-03-10", "Russia wrecked Libya near Sirte.", False),  # weeks apart
        ("2020-01-10", "Russia wrecked the trade talks.", False),  # no shared name
        (None, "Russia wrecked Libya near Sirte.", False),  # undated among dated articles
    ],
)
def test_compare_aligned_claims_need_the_same_event(date_b, sentence_b, found):
    sents = pd.DataFrame(
        {
            "article_id": ["a1", "b1"],
            "sentence_id": [0, 0],
            "source": ["A", "B"],
            "sentence": ["Russia saved Libya at Sirte.", sentence_b],
        }
    )
    v = np.array([[1, 0], [0.99, 0.141]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    m = sents.assign(
        target="russia",
        mention="Russia",
        start=0,
        end=6,
        topic="libya",
        stance=["positive", "negative"],
        stance_score=[0.8, -0.7],
    )
    arts = pd.DataFrame(
        {"article_id": ["a1", "b1"], "title": ["TA", "TB"], "date": ["2020-01-01", date_b]}
    )
    out = compare.aligned_claims(compare.stance_units(m), sents, v, arts, config=FAST)
    assert (len(out) == 1) is found


def test_compare_aligned_claims_in_an_undated_corpus_skip_the_date_check():
    sents = pd.DataFrame(
        {
            "article_id": ["a1", "b1"],
            "sentence_id": [0, 0],
            "source": ["A", "B"],
            "sentence": ["Russia saved Libya at Sirte.", "Russia wrecked Libya near Sirte."],
        }
    )
    v = np.array([[1, 0], [0.99, 0.141]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    m = sents.assign(
        target="russia",
        mention="Russia",
        start=0,
        end=6,
        topic="libya",
        stance=["positive", "negative"],
        stance_score=[0.8, -0.7],
    )
    arts = pd.DataFrame({"article_id": ["a1", "b1"], "title": ["TA", "TB"], "date": [None, None]})
    out = compare.aligned_claims(compare.stance_units(m), sents, v, arts, config=FAST)
    assert len(out) == 1


def test_compare_choose_freq_takes_spans_past_292_years() -> None:
    """A nanosecond Timedelta overflows past 292 years: the run died after all its work."""
    import pandas as pd

    dates = pd.Series(pd.to_datetime(["1700-03-01", "1999-06-01", None]))
    assert compare.choose_freq(dates) == "year"


def test_compare_check_group_by_refuses_a_column_without_values() -> None:
    """Grouping by an all-empty column compared one group '' with itself, silently."""
    import pandas as pd

    articles = pd.DataFrame({"article_id": ["a", "b"], "source": ["S", "T"], "region": [None, " "]})
    with pytest.raises(ValueError, match="'region' has no value in any of the 2 articles"):
        compare.check_group_by(articles, "region")
    compare.check_group_by(articles.assign(region=["west", None]), "region")  # a warning only
