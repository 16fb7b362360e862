"""Tests for stance.topics: named and discovered topics, context, determinism, fit/assign."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stance import topics
from stance.config import load_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SEED_DIR = ROOT / "data" / "raw" / "seeds"
SEED_LABELS = Path(__file__).parent / "data" / "seed_topics.csv"
NAMED = ("afghanistan", "aegean", "catalonia", "lachin", "libya")

# --- seed-topic check (used by the slow test and by hand) -------------------------------------


def _anchors(seed_dir: Path) -> dict[str, list[tuple[int, str]]]:
    """Per seed file: (char offset, expected topic) of each hand-labelled section start."""
    out: dict[str, list[tuple[int, str]]] = {}
    with SEED_LABELS.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            text = (seed_dir / row["file"]).read_text(encoding="utf-8")
            prev = out.setdefault(row["file"], [])
            cursor = prev[-1][0] + 1 if prev else 0
            pos = text.find(row["anchor"], cursor)
            assert pos >= 0, f"anchor {row['anchor']!r} not found in {row['file']} after {cursor}"
            prev.append((pos, row["topic"]))
    return out


def score_seed_topics(
    sentences: pd.DataFrame, articles: pd.DataFrame, topic: pd.Series, seed_dir: Path = SEED_DIR
) -> dict:
    """Share of seed sentences whose topic matches the hand-labelled section.

    Each sentence is located in its raw seed file (by its text) and gets the label of the last
    anchor before it. ``a|b`` accepts either; ``discovered`` accepts any non-named topic
    (a discovered id or noise), ``skip`` (boilerplate) is not scored.
    """
    anchors = _anchors(seed_dir)
    paths = dict(zip(articles["article_id"], articles["path"], strict=True))
    raw = {f: (seed_dir / f).read_text(encoding="utf-8") for f in anchors}
    cursors: dict[str, int] = {}
    rows = []
    for i, (aid, sent) in enumerate(
        zip(sentences["article_id"], sentences["sentence"], strict=True)
    ):
        fname = Path(str(paths[aid]).split("#")[0]).name
        text = raw[fname]
        pos = text.find(sent, cursors.get(fname, 0))
        if pos < 0:
            pos = text.find(sent[:40], cursors.get(fname, 0))
        if pos < 0:
            pos = text.find(sent[:40])
        if pos >= 0:
            cursors[fname] = pos + 1
        expected = None
        for start, label in anchors[fname]:
            if pos >= start:
                expected = label
        got = str(topic.iloc[i])
        ok = False
        if expected not in (None, "skip"):
            for alt in expected.split("|"):
                ok = ok or got == alt or (alt == "discovered" and got not in NAMED)
        rows.append(
            {
                "file": fname,
                "pos": pos,
                "expected": expected,
                "topic": got,
                "sentence": sent,
                "scored": expected not in (None, "skip"),
                "correct": ok,
            }
        )
    df = pd.DataFrame(rows)
    scored = df[df["scored"]]
    strict = scored["expected"].map(lambda e: "discovered" not in e.split("|"))
    summary = {
        "n_sentences": len(df),
        "n_scored": len(scored),
        "n_unlocated": int((df["pos"] < 0).sum()),
        "accuracy": float(scored["correct"].mean()) if len(scored) else float("nan"),
        "accuracy_named_sections": float(scored.loc[strict, "correct"].mean()),
        "accuracy_discovered_sections": float(scored.loc[~strict, "correct"].mean()),
        "discovered_sections_in_discovered_topic": float(
            scored.loc[~strict, "topic"].str.match(r"d\d\d_").mean()
        ),
    }
    return {"summary": summary, "rows": df}


# --- fake data ---------------------------------------------------------------------------------


_FAKE_STOP = {
    "the",
    "and",
    "for",
    "with",
    "from",
    "over",
    "its",
    "has",
    "was",
    "that",
    "this",
    "their",
}


def fake_encode(texts: list[str], dim: int = 64) -> np.ndarray:
    """Deterministic bag-of-words embedder: a fixed random vector per lower-cased word."""
    out = np.zeros((len(texts), dim), dtype=np.float64)
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z]+", text.lower()):
            if len(word) < 3 or word in _FAKE_STOP:
                continue
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            out[i] += np.random.default_rng(seed).standard_normal(dim)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norms > 0, norms, 1)).astype(np.float32)


ARTICLES = {
    "a1": [
        "Haftar forces attacked Tripoli again.",
        "The Libyan National Army shelled the airport in Tripoli.",
        "The Government of National Accord called for help.",
        "Officials said the situation remained tense.",
        "Libya has been at war since 2011.",
    ],
    "a2": [
        "Greek and Turkish disputes over Aegean islands and maritime boundaries flared.",
        "Greek jets intercepted Turkish aircraft in Aegean airspace violations.",
        "The response was measured.",
        "Athens summoned the ambassador.",
    ],
    "a3": [
        "Catalan separatists marched in Barcelona.",
        "Spanish police used force against Catalan protesters in Barcelona.",
        "Madrid rejected the Catalonia referendum.",
    ],
}


# titles that are not the first sentence: they join the article's context
TITLES = {
    "a1": "Libya: Haftar's war on Tripoli",
    "a3": "Catalonia protests",
    "s1": "Aleppo shelled",
}


def _syria(k: int) -> list[str]:
    places = ["Aleppo", "Idlib", "Damascus", "Homs", "Raqqa", "Deraa"]
    return [
        f"Syrian government forces shelled {places[(k + j) % 6]} near Aleppo as Assad pressed on."
        for j in range(6)
    ]


def fake_corpus(n_syria: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sentences, articles) of a few named-topic articles plus Syria articles."""
    arts = dict(ARTICLES)
    for k in range(n_syria):
        arts[f"s{k}"] = _syria(k)
    rows, art_rows = [], []
    for aid, sents in arts.items():
        text, pos = "", 0
        for j, s in enumerate(sents):
            start = len(text)
            text += s + "\n\n"
            rows.append((aid, "src", j, s, start, start + len(s)))
            pos += 1
        art_rows.append((aid, "src", f"{aid}.txt", TITLES.get(aid, ""), "", text))
    sentences = pd.DataFrame(
        rows, columns=["article_id", "source", "sentence_id", "sentence", "start", "end"]
    )
    articles = pd.DataFrame(
        art_rows, columns=["article_id", "source", "path", "title", "date", "text"]
    )
    return sentences, articles


@pytest.fixture(scope="module")
def config() -> dict:
    cfg = load_config()
    # the fake embedder is bag-of-words: its cosines run lower than a real model's
    cfg["topics"]["named_threshold"] = 0.15
    cfg["topics"]["min_cluster_size"] = 5
    return cfg


@pytest.fixture(scope="module")
def fitted(config):
    sentences, articles = fake_corpus()
    vectors = fake_encode(sentences["sentence"].tolist())
    result = topics.run_topics(
        sentences, vectors, config, fake_encode, articles=articles, progress=False
    )
    return sentences, articles, vectors, result


# --- unit tests --------------------------------------------------------------------------------


def test_topics_named_assignment(fitted):
    sentences, _, _, result = fitted
    by_article = result.topic.groupby(sentences["article_id"]).agg(lambda s: s.mode().iloc[0])
    assert by_article["a1"] == "libya"
    assert by_article["a2"] == "aegean"
    assert by_article["a3"] == "catalonia"


def test_topics_context_smoothing(fitted):
    sentences, _, _, result = fitted
    # sentences that name no place take the topic of their neighbours
    for text, expected in [
        ("The response was measured.", "aegean"),
        ("Officials said the situation remained tense.", "libya"),
    ]:
        assert result.topic[sentences["sentence"] == text].tolist() == [expected]


def test_topics_context_smoothing_needs_context(config):
    # alone, the same sentence has no named topic
    sentences, articles = fake_corpus()
    lone = sentences[sentences["sentence"] == "The response was measured."].assign(
        article_id="lone"
    )
    all_s = pd.concat([sentences, lone], ignore_index=True)
    arts = pd.concat(
        [articles, pd.DataFrame([{"article_id": "lone", "text": "The response was measured."}])],
        ignore_index=True,
    )
    all_s.loc[all_s.index[-1], ["start", "end"]] = [0, len("The response was measured.")]
    result = topics.run_topics(
        all_s,
        fake_encode(all_s["sentence"].tolist()),
        config,
        fake_encode,
        articles=arts,
        progress=False,
    )
    assert result.topic.iloc[-1] not in NAMED


def test_topics_discovered_topic_has_keywords(fitted):
    sentences, _, _, result = fitted
    syria = result.topic[sentences["article_id"].str.startswith("s")]
    assert syria.str.match(r"d\d\d_").all(), syria.tolist()
    row = result.table.set_index("topic").loc[syria.iloc[0]]
    assert row["kind"] == "discovered"
    assert {"aleppo", "assad", "syrian"} & set(row["keywords"])
    assert 1 <= len(row["representative_sentences"]) <= 3


def test_topics_table_columns(fitted):
    _, _, _, result = fitted
    table = result.table
    assert tuple(table.columns) == topics.TABLE_COLUMNS
    assert set(table["kind"]) <= {"named", "discovered", "noise"}
    assert set(NAMED) <= set(table["topic"])
    assert "noise" in set(table["topic"])
    assert table["size"].sum() == len(result.topic)
    assert all(isinstance(k, list) for k in table["keywords"])
    assert all(isinstance(r, list) and len(r) <= 3 for r in table["representative_sentences"])
    assert set(result.topic) <= set(table["topic"])
    assert list(result.coords.columns) == ["article_id", "sentence_id", "x", "y"]
    assert len(result.coords) == len(result.topic)
    assert result.topic.index.equals(fitted[0].index)


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def test_topics_deterministic(fitted, config):
    sentences, articles, vectors, first = fitted
    second = topics.run_topics(
        sentences, vectors, config, fake_encode, articles=articles, progress=False
    )
    assert first.topic.equals(second.topic)
    assert _parquet_bytes(first.table) == _parquet_bytes(second.table)
    assert _parquet_bytes(first.coords) == _parquet_bytes(second.coords)


def test_topics_assign_matches_fit(fitted):
    sentences, articles, vectors, result = fitted
    assert result.model.assign(sentences, vectors, articles=articles).equals(result.topic)
    # any subset of whole articles, in any order, gets the labels the fit gave
    keep = sentences["article_id"].isin(["s2", "a2", "s0"])
    sub = pd.concat([sentences[keep & (sentences["article_id"] == a)] for a in ["s2", "a2", "s0"]])
    got = result.model.assign(sub, vectors[sub.index.to_numpy()], articles=articles)
    assert got.equals(result.topic.loc[sub.index])


def test_topics_fit_on_sample_then_assign(config, monkeypatch):
    sentences, articles = fake_corpus(n_syria=8)
    vectors = fake_encode(sentences["sentence"].tolist())
    cfg = copy.deepcopy(config)
    cfg["topics"]["max_fit_sentences"] = 40
    result = topics.run_topics(
        sentences, vectors, cfg, fake_encode, articles=articles, progress=False
    )
    mask = result.model.fit_mask_
    assert 0 < mask.sum() <= 40 < len(sentences)
    assert result.model.assign(sentences, vectors, articles=articles).equals(result.topic)
    assert result.topic.dtype == "str" and result.coords["article_id"].dtype == "str"
    assert int(result.table["size"].sum()) == len(sentences)
    assert np.isfinite(result.coords[["x", "y"]].to_numpy()).all()
    # the articles outside the sample are labelled a block at a time: the block size changes
    # nothing
    monkeypatch.setattr(topics, "_ASSIGN_BLOCK", 7)
    again = topics.run_topics(
        sentences, vectors, cfg, fake_encode, articles=articles, progress=False
    )
    assert again.topic.equals(result.topic)
    pd.testing.assert_frame_equal(again.table, result.table)
    pd.testing.assert_frame_equal(again.coords, result.coords)
    # placed against fewer anchors than fitted rows: the fitted rows' positions and every
    # label stay; the others move, to finite positions, the same on every run
    monkeypatch.setattr(topics, "_PLACE_ANCHORS", 10)
    few = [
        topics.run_topics(sentences, vectors, cfg, fake_encode, articles=articles, progress=False)
        for _ in range(2)
    ]
    pd.testing.assert_frame_equal(few[0].coords, few[1].coords)
    assert few[0].topic.equals(result.topic)
    xy, xy_all = few[0].coords[["x", "y"]].to_numpy(), result.coords[["x", "y"]].to_numpy()
    assert np.array_equal(xy[mask], xy_all[mask]) and np.isfinite(xy).all()
    assert not np.array_equal(xy[~mask], xy_all[~mask])


def test_topics_sampled_labels_hold_one_string_per_topic(config, monkeypatch):
    # a million rows' labels must not cost a string each (hundreds of MB at full scale)
    sentences, articles = fake_corpus(n_syria=8)
    vectors = fake_encode(sentences["sentence"].tolist())
    cfg = copy.deepcopy(config)
    cfg["topics"]["max_fit_sentences"] = 40
    seen = []
    label_rest = topics.TopicModel._label_rest

    def spy(self, *args, **kwargs):
        labels, own = label_rest(self, *args, **kwargs)
        seen.append(labels)
        return labels, own

    monkeypatch.setattr(topics.TopicModel, "_label_rest", spy)
    result = topics.run_topics(
        sentences, vectors, cfg, fake_encode, articles=articles, progress=False
    )
    (labels,) = seen
    assert labels.dtype == object and len(labels) == len(sentences)
    assert len({id(x) for x in labels}) == len(set(labels.tolist())) > 1
    assert list(labels) == result.topic.tolist()


def test_topics_article_groups_and_fit_sample_read_codes_like_ids():
    ids = np.array(["b", "b", "a", "a", "a", "c", "b"], dtype=object)
    codes, uniques = pd.factorize(pd.Series(ids))
    names = np.asarray(uniques, dtype=object)
    groups = [(0, 2), (2, 5), (5, 6), (6, 7)]
    assert topics._article_groups(ids) == topics._article_groups(codes) == groups
    assert topics._article_groups(np.array([], dtype=object)) == []
    # the pick hashes the ids, not the codes: renumbering the articles changes nothing
    mask = topics._fit_sample(codes, names, 4, 0)
    flipped = topics._fit_sample(len(names) - 1 - codes, names[::-1].copy(), 4, 0)
    assert 0 < mask.sum() <= 4 and np.array_equal(mask, flipped)
    assert topics._fit_sample(codes, names, 7, 0).all()


def test_topics_place_anchors_are_a_seeded_sorted_subset():
    assert np.array_equal(topics._place_anchors(5, 10, 0), np.arange(5))
    a = topics._place_anchors(1000, 100, 7)
    assert len(a) == len(set(a.tolist())) == 100 and np.all(np.diff(a) > 0) and a[-1] < 1000
    assert np.array_equal(a, topics._place_anchors(1000, 100, 7))
    assert not np.array_equal(a, topics._place_anchors(1000, 100, 8))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"topics": {"colour": 1}}, r"topics\.colour"),
        ({"topics": {"min_cluster_size": 1}}, r"topics\.min_cluster_size"),
        ({"topics": {"named_threshold": "high"}}, r"topics\.named_threshold"),
        ({"topics": {"discover": "yes"}}, r"topics\.discover"),
        ({"topics": {"article_weight": 0.8, "section_weight": 0.3}}, r"topics\.article_weight"),
        ({"topics": {"named": {"x": {"description": "", "terms": []}}}}, r"topics\.named\.x"),
        ({"topics": {"named": {"bad id": {"description": "a"}}}}, r"topics\.named\.bad id"),
        (
            {"topics": {"named": {"y": {"description": "a", "terms": "Libya"}}}},
            r"topics\.named\.y\.terms",
        ),
    ],
)
def test_topics_bad_config(config, change, match):
    cfg = copy.deepcopy(config)
    for key, value in change["topics"].items():
        if key == "named":
            cfg["topics"]["named"] = value
        else:
            cfg["topics"][key] = value
    sentences, articles = fake_corpus()
    vectors = fake_encode(sentences["sentence"].tolist())
    with pytest.raises(ValueError, match=match):
        topics.run_topics(sentences, vectors, cfg, fake_encode, articles=articles, progress=False)


def test_topics_nothing_to_assign(config):
    cfg = copy.deepcopy(config)
    cfg["topics"]["named"] = {}
    cfg["topics"]["discover"] = False
    sentences, articles = fake_corpus()
    vectors = fake_encode(sentences["sentence"].tolist())
    with pytest.raises(ValueError, match=r"topics\.named.*topics\.discover"):
        topics.run_topics(sentences, vectors, cfg, fake_encode, articles=articles, progress=False)


def test_topics_discovery_only(config):
    cfg = copy.deepcopy(config)
    cfg["topics"]["named"] = {}
    sentences, articles = fake_corpus()
    vectors = fake_encode(sentences["sentence"].tolist())
    result = topics.run_topics(
        sentences, vectors, cfg, fake_encode, articles=articles, progress=False
    )
    assert set(result.table["kind"]) <= {"discovered", "noise"}
    assert result.topic[sentences["article_id"].str.startswith("s")].str.match(r"d\d\d_").all()


@pytest.mark.parametrize("n", [0, 1])
def test_topics_tiny_corpus(config, n):
    sentences, articles = fake_corpus()
    sub = sentences.iloc[:n]
    result = topics.run_topics(
        sub,
        fake_encode(sub["sentence"].tolist()),
        config,
        fake_encode,
        articles=articles,
        progress=False,
    )
    assert len(result.topic) == len(result.coords) == n
    assert tuple(result.table.columns) == topics.TABLE_COLUMNS


def test_topics_assign_before_fit_raises():
    sentences, _ = fake_corpus()
    with pytest.raises(ValueError, match="not fitted"):
        topics.TopicModel().assign(sentences, fake_encode(sentences["sentence"].tolist()))


def test_topics_bad_vectors_raise(config):
    sentences, articles = fake_corpus()
    with pytest.raises(ValueError, match="vectors"):
        topics.run_topics(
            sentences, np.zeros((3, 64)), config, fake_encode, articles=articles, progress=False
        )


def test_topics_user_term_changes_assignment(config):
    # a user adds a topic by editing the config: its terms and description claim sentences
    cfg = copy.deepcopy(config)
    cfg["topics"]["named"]["syria"] = {
        "label": "Syria",
        "description": "The Syrian war: Assad's forces, Aleppo and Idlib.",
        "terms": ["Syria", "Syrian", "Aleppo", "Assad", "Idlib"],
    }
    sentences, articles = fake_corpus()
    vectors = fake_encode(sentences["sentence"].tolist())
    result = topics.run_topics(
        sentences, vectors, cfg, fake_encode, articles=articles, progress=False
    )
    assert (result.topic[sentences["article_id"].str.startswith("s")] == "syria").all()


def test_topics_defaults_match_packaged_config():
    import inspect
    from dataclasses import asdict

    from stance.config import TopicSettings

    table = load_config()["topics"]
    declared = asdict(TopicSettings())
    assert set(table) - {"named"} == set(declared)
    params = inspect.signature(topics.TopicModel.__init__).parameters
    for key, value in declared.items():
        # table settings default to None (no mutable default) and mean an empty table
        default = {} if params[key].default is None else params[key].default
        assert table[key] == value and default == value, key


def test_topics_term_support_scales_gate(fitted):
    # one passing mention in ten sentences earns half the support a 0.2 share would
    model = copy.copy(fitted[3].model)
    texts = ["Officials met in the capital on Monday."] * 9 + ["Tripoli was quiet."]
    sentences = pd.DataFrame({"article_id": "x", "sentence": texts})
    aids = sentences["article_id"].to_numpy()
    level = np.zeros(len(texts), dtype=np.int64)
    hits = model._term_hits(sentences, level, aids)
    j = model.named_ids_.index("libya")
    assert np.allclose(hits[1][:, j], 0.1)
    ctx = fake_encode(texts).astype(np.float64)
    model.term_support = 0.0
    full = model._emissions(ctx, hits)
    model.term_support = 0.2
    half = model._emissions(ctx, hits)
    gap = full[:, j] - half[:, j]
    assert np.allclose(gap, topics._SCALE * model.term_gate * 0.5)
    assert topics.TopicSettings().term_support == 0.2


def test_topics_titles_join_context(fitted, config):
    sentences, articles, vectors, result = fitted
    assert set(result.model._title_cache) == {t for t in TITLES.values()}
    # without titles the context vectors differ, but the labels here stay the same
    cfg = copy.deepcopy(config)
    cfg["topics"]["use_titles"] = False
    plain = topics.run_topics(
        sentences, vectors, cfg, fake_encode, articles=articles, progress=False
    )
    assert plain.model._title_cache == {}
    assert (plain.topic[sentences["article_id"] == "a1"] == "libya").all()


def test_topics_import_is_light():
    import subprocess
    import sys

    code = "import sys, stance.topics; print(any(m in sys.modules for m in ('umap', 'sklearn', 'torch')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_topics_numba_cache_covers_umaps_uncached_kernels(tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "import os; from stance.topics import numba_cache_dir; numba_cache_dir()\n"
        "import umap.layouts as L, umap.umap_ as U, pynndescent.utils as P\n"
        "import pynndescent.pynndescent_ as N; from numba.core.caching import NullCache\n"
        "print(os.environ['NUMBA_CACHE_DIR'])\n"
        "print(any(isinstance(f._cache, NullCache) for f in "
        "(L._nb_optimize_layout_euclidean_single_epoch, U.smooth_knn_dist, P.deheap_sort)))\n"
        "print(isinstance(N.nn_descent._cache, NullCache))"  # uncacheable: left alone
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["STANCE_CACHE_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == [str((tmp_path / "numba").resolve()), "False", "True"]


# --- real model ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_topics_seed_accuracy():
    from stance.embed import SentenceEncoder
    from stance.ingest import ingest
    from stance.segment import segment

    articles, _ = ingest([SEED_DIR])
    sentences = segment(articles, progress=False)
    encoder = SentenceEncoder(progress=False)
    vectors = encoder.encode(sentences["sentence"].tolist())
    cfg = load_config()
    result = topics.run_topics(
        sentences, vectors, cfg, encoder.encode, articles=articles, progress=False
    )
    score = score_seed_topics(sentences, articles, result.topic)
    summary = score["summary"]
    assert summary["n_unlocated"] == 0
    assert summary["n_scored"] >= 200
    assert summary["accuracy"] >= 0.9, summary
    again = topics.run_topics(
        sentences, vectors, cfg, encoder.encode, articles=articles, progress=False
    )
    assert again.topic.equals(result.topic)
    assert _parquet_bytes(again.table) == _parquet_bytes(result.table)
    assert _parquet_bytes(again.coords) == _parquet_bytes(result.coords)
    assert result.model.assign(sentences, vectors, articles=articles).equals(result.topic)
    # the Syria/Aleppo blog post has no named topic: it gets a discovered one
    syria = result.topic[sentences["sentence"].str.contains("Aleppo")]
    assert syria.str.match(r"d\d\d_").all(), syria.tolist()


def test_topics_progress_bar_changes_nothing(fitted, config, capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    sentences, articles, vectors, first = fitted
    shown = topics.run_topics(
        sentences, vectors, config, fake_encode, articles=articles, progress=True
    )
    err = capsys.readouterr().err
    assert "topics:" in err and "/6 [" in err  # the bar ran (leave=False may hide 6/6)
    assert first.topic.equals(shown.topic)
    assert _parquet_bytes(first.table) == _parquet_bytes(shown.table)


def test_topics_largest_discovered_topic_is_split(config):
    sentences, articles = fake_corpus(n_syria=6)
    vectors = fake_encode(sentences["sentence"].tolist())
    shares = {}
    for cap in (1.0, 0.3):
        cfg = copy.deepcopy(config)
        cfg["topics"]["max_share"] = cap
        result = topics.run_topics(
            sentences, vectors, cfg, fake_encode, articles=articles, progress=False
        )
        disc = result.table[result.table["kind"] == "discovered"]
        shares[cap] = (len(disc), disc["size"].max() / len(sentences))
    assert shares[1.0][1] > 0.3  # without the cap, one topic holds most Syria articles
    assert shares[0.3][0] >= 2 and shares[0.3][1] <= 0.3


def test_topics_rename_and_merge(fitted, config):
    sentences, articles, vectors, result = fitted
    disc = result.table.loc[result.table["kind"] == "discovered", "topic"].tolist()
    cfg = copy.deepcopy(config)
    cfg["topics"]["rename"] = {"libya": "War in Libya", disc[0]: "Syria"}
    cfg["topics"]["merge"] = {"catalonia": "aegean"}
    out = topics.run_topics(sentences, vectors, cfg, fake_encode, articles=articles, progress=False)
    table = out.table.set_index("topic")
    assert table.loc["libya", "label"] == "War in Libya" and table.loc[disc[0], "label"] == "Syria"
    assert "catalonia" not in table.index and "catalonia" not in set(out.topic)
    before = result.table.set_index("topic")["size"]
    assert table.loc["aegean", "size"] == before["aegean"] + before["catalonia"]


def test_topics_title_is_readable():
    texts = ["Lavrov met the Syrian envoy.", "Syrian rebels of Hayat Tahrir al-Sham left Idlib."]
    title = topics.topic_title(["lavrov", "syrian", "syria", "al-sham", "idlib"], texts)
    assert title == "Lavrov / Syrian / Al-Sham"
    assert topics.topic_title(["nato"], ["NATO met.", "nato"]) == "NATO"
    assert topics.topic_title([], texts) == ""


def test_topics_rename_must_be_strings(config):
    with pytest.raises(ValueError, match=r"'topics.rename' must be a table of strings"):
        topics.TopicModel.from_config({"topics": {"rename": {"d01": 3}}})


@pytest.mark.parametrize("block", [7, 128])
def test_topics_top_k_stable_matches_a_full_stable_sort(monkeypatch, block):
    # blocks of 7 columns: most rows go through the block maxima, with a padded last block
    monkeypatch.setattr(topics, "_TOP_K_BLOCK", block)
    rng = np.random.default_rng(0)
    for sims in (
        rng.standard_normal((50, 400)),
        rng.standard_normal((50, 2000)).astype(np.float32),
        np.round(rng.standard_normal((50, 400)), 1),  # many ties, at the k-th value too
        np.round(rng.standard_normal((50, 403)), 2),
        np.zeros((3, 8)),
    ):
        for k in (1, 5, 8):
            want = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            assert np.array_equal(topics._top_k_stable(sims, k), want)


def test_topics_ctfidf_counts_chunk_by_chunk_as_one_pass(monkeypatch):
    """Counting a chunk of sentences at a time gives the keywords of one pass over all."""
    rng = np.random.default_rng(5)
    words = ["Libya", "Haftar", "Tripoli", "Aegean", "Greece", "drills", "Kabul", "Taliban"]
    words += ["ceasefire", "talks", "oil", "navy", "the", "a", "x-ray", "co-op", "42"]
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 9))) for _ in range(500)]
    labels = np.array([f"t{k}" for k in rng.integers(0, 6, len(texts))], dtype=object)
    as_arrow = pd.array(texts, dtype="str")
    monkeypatch.setattr(topics, "_COUNT_CHUNK", 10**9)
    whole = topics._ctfidf_keywords(texts, labels, 5)
    assert any(whole.values()) and set(whole) == set(labels)
    for chunk in (1, 7, 128):
        monkeypatch.setattr(topics, "_COUNT_CHUNK", chunk)
        assert topics._ctfidf_keywords(as_arrow, labels, 5) == whole
    assert topics._ctfidf_keywords(["", "a b"], np.array(["x", "y"]), 3) == {"x": [], "y": []}
