"""Distillation, step 1: the teacher's soft labels on a transfer set of AllSides mentions.

Issue 9 distils the mpnet teacher (``newsmtsc-mpnet-blind``) into the fast default model with
NewsMTSC plus a transfer set of unlabelled AllSides mentions from every outlet. This script
draws that set and labels it, resumably:

- Articles of the full corpus are ordered by a seeded shuffle within each outlet and then taken
  round-robin over outlets, so every outlet appears early; each contributes at most
  ``--per-article`` mentions (explicit aliases of the default targets, sentences of 6–80 words,
  found with the project's own segmenter and lexicon), until ``--n`` pairs.
- Pairs are scored in shards of ``--shard`` pairs; each shard is written as Parquet (references
  and the teacher's three probabilities, never the outlets' text) as soon as it is done, and a
  re-run skips the shards that exist, so an interrupted run continues where it stopped.

Usage::

    make accurate   # the teacher's base weights
    HF_HUB_OFFLINE=1 python benchmarks/distill_transfer.py --data ../shared/data/allsides \\
        --out data/transfer [--n 100000] [--per-article 6] [--seed 0] [--part K/N]

``--part K/N`` labels only the shards whose number is K modulo N, so N processes (one per core,
or one per machine sharing the folder) label one set together; each draws the same pairs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from collections import defaultdict
from pathlib import Path

from stance.training import FIRST_TEACHER, labelled_by

TEACHER = FIRST_TEACHER
FILE = "allsides_articles_full.jsonl.gz"


def draw(data: Path, n: int, per_article: int, seed: int) -> list[dict]:
    """Return the transfer pairs (references only) in a stable order."""
    from stance.config import load_settings
    from stance.mentions import build_lexicon, find_mentions
    from stance.segment import sentence_spans

    path = data / FILE if data.is_dir() else data
    by_source: dict[str, list[tuple[str, str]]] = defaultdict(list)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if isinstance(row.get("text"), str) and row["text"].strip():
                by_source[str(row.get("source"))].append((str(row["id"]), row["text"]))
    rng = random.Random(seed)
    queues = []
    for source in sorted(by_source):
        items = sorted(by_source[source])
        rng.shuffle(items)
        queues.append((source, items))
    lexicon = build_lexicon(load_settings().targets_dict())
    pairs: list[dict] = []
    depth = 0
    while len(pairs) < n and any(depth < len(items) for _, items in queues):
        for source, items in queues:
            if depth >= len(items) or len(pairs) >= n:
                continue
            aid, text = items[depth]
            taken = 0
            for s0, s1 in sentence_spans(text):
                sentence = text[s0:s1]
                if not 6 <= len(sentence.split()) <= 80:
                    continue
                found = find_mentions(sentence, lexicon)
                for target, _mention, m0, m1 in found:
                    others = [(a, b) for t, _, a, b in found if t == target and (a, b) != (m0, m1)]
                    pairs.append(
                        {
                            "article_id": aid,
                            "source": source,
                            "sent_start": s0,
                            "sent_end": s1,
                            "mention_start": m0,
                            "mention_end": m1,
                            "target": target,
                            "others": json.dumps(others),
                            "sentence": sentence,  # scoring only; never written
                        }
                    )
                    taken += 1
                    if taken >= per_article:
                        break
                if taken >= per_article:
                    break
        depth += 1
    return pairs[:n]


def main() -> None:
    import pandas as pd

    from stance.scoring import load_model, resolve_model_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="AllSides folder or the .jsonl.gz")
    ap.add_argument("--out", required=True, type=Path, help="folder for the label shards")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--per-article", type=int, default=6)
    ap.add_argument("--shard", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--teacher", default=TEACHER, help="a shipped model name or a folder")
    ap.add_argument("--part", default="0/1", help="K/N: label only the shards K, K+N, K+2N, ...")
    args = ap.parse_args()
    try:
        part, parts = (int(v) for v in args.part.split("/"))
    except ValueError:
        ap.error(f"--part must read K/N, e.g. 0/2, not {args.part!r}")
    if not 0 <= part < parts:
        ap.error(f"--part {args.part}: K must be in 0..N-1")
    # One teacher per folder: a resumed run must not mix two teachers' labels.
    record = args.out / "teacher.json"
    if record.is_file() or any(args.out.glob("shard-*.parquet")):
        earlier = labelled_by(args.out)
        if earlier != args.teacher:
            ap.error(f"{args.out} holds labels of {earlier!r}, not {args.teacher!r}")

    t0 = time.perf_counter()
    pairs = draw(args.data, args.n, args.per_article, args.seed)
    outlets = len({p["source"] for p in pairs})
    print(f"drew {len(pairs)} pairs from {outlets} outlets in {time.perf_counter() - t0:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    scorer = load_model(resolve_model_dir(args.teacher))
    record.write_text(
        json.dumps({"teacher": args.teacher, "model_id": scorer.config.get("model_id")}) + "\n",
        encoding="utf-8",
    )
    for k in range(0, len(pairs), args.shard):
        shard = args.out / f"shard-{k // args.shard:04d}.parquet"
        if shard.exists() or (k // args.shard) % parts != part:
            continue
        block = pairs[k : k + args.shard]
        t1 = time.perf_counter()
        probs = scorer.predict_proba(
            [p["sentence"] for p in block],
            [p["mention_start"] for p in block],
            [p["mention_end"] for p in block],
            others=[[tuple(o) for o in json.loads(p["others"])] for p in block],
            batch_size=64,
        )
        df = pd.DataFrame([{k2: v for k2, v in p.items() if k2 != "sentence"} for p in block])
        df[["p_negative", "p_neutral", "p_positive"]] = probs.astype("float32")
        tmp = shard.with_suffix(".tmp")
        df.to_parquet(tmp, index=False)
        tmp.rename(shard)
        rate = len(block) / (time.perf_counter() - t1)
        print(f"{shard.name}: {len(block)} pairs, {rate:.1f} pairs/s", flush=True)


if __name__ == "__main__":
    main()
