"""Opinion: the opinion-writing evaluation set, rebuilt from the shared AllSides file and scored.

NewsMTSC is news reporting; most of what analysts compare is opinion and analysis. This module
holds the rule that picks opinion and analysis pieces from the AllSides corpus
(:func:`is_opinion`), the seeded, stratified draw of (sentence, target) candidates made with the
project's own segmenter and mention finder (:func:`draw_candidates`), the rebuild of the
hand-labelled pairs from references alone (:func:`rebuild_pairs`; the outlets' text never
enters the repository, only article ids, offsets and a hash of each sentence), and the
evaluation of a stance model or the VADER baseline on them (:func:`evaluate_opinion`,
:func:`opinion_table`).
"""

from __future__ import annotations

import gzip
import hashlib
import random
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

if TYPE_CHECKING:
    import pandas as pd

ALLSIDES_FILE = "allsides_articles_full.jsonl.gz"
PAIRS_RESOURCE = "opinion_pairs.csv"
#: Labelled pairs for training only, from articles outside the evaluation set (same columns,
#: split ``train``).
TRAIN_RESOURCE = "opinion_train_pairs.csv"
LABELS_WITH_NONE = ("negative", "neutral", "positive", "none")
STANCE_LABELS = ("negative", "neutral", "positive")
SPLITS = ("dev", "test")
TRAIN_SPLIT = "train"
PAIR_COLUMNS = (
    "pair_id",
    "article_id",
    "source",
    "bias_text",
    "sent_start",
    "sent_end",
    "mention_start",
    "mention_end",
    "target",
    "label",
    "confidence",
    "split",
    "sha256",
)
HASH_CHARS = 12

# --- Which pieces are opinion or analysis ------------------------------------------------------
# AllSides has no opinion flag. Three signals, any one suffices:
# 1. a URL path segment that outlets use for commentary sections;
_OPINION_SEGMENTS = frozenset(
    {
        "opinion",
        "opinions",
        "commentary",
        "op-ed",
        "op-eds",
        "oped",
        "analysis",
        "column",
        "columns",
        "columnists",
        "editorial",
        "editorials",
        "perspective",
        "perspectives",
        "ideas",
        "voices",
        "blog",
        "blogs",
    }
)
# ... except blogs that are breaking-news tickers rather than commentary or analysis;
_NEWS_BLOGS = frozenset({"thetwo-way", "blog-briefing-room", "the_slatest", "floor-action"})
# 2. a title prefix ("Opinion: ...", "Analysis | ...");
_TITLE_PREFIX = re.compile(
    r"^\s*(?:opinion|analysis|commentary|editorial|column|op-ed|perspective|news analysis)\s*[:|–—-]\s",
    re.IGNORECASE,
)
# 3. an AllSides source that is itself a commentary feed: "Guest Writer - Right",
#    "CNN - Editorial", "New York Times - Opinion", "Cato Institute (blog)", ...
_SOURCE_NAME = re.compile(r"opinion|editorial|guest writer|\bblog\b|commentary", re.IGNORECASE)


def is_opinion(url: str | None, title: str | None, source: str | None) -> bool:
    """Tell whether an AllSides article is an opinion or analysis piece.

    Any one signal suffices: a URL path segment of a commentary section (``/opinion/``,
    ``/opinions/``, ``/commentary/``, ``/op-ed/``, ``/analysis/``, ``/column(s)/``,
    ``/columnists/``, ``/editorial(s)/``, ``/perspective/``, ``/ideas/``, ``/voices/``, and
    ``/blog(s)/`` except breaking-news tickers such as NPR's "The Two-Way"); a title prefix
    ("Opinion:", "Analysis |", ...); or an AllSides source name that marks a commentary feed
    ("Guest Writer - Right", "CNN - Editorial", "Fox News Opinion", "Cato Institute (blog)").

    Args:
        url: The article's URL.
        title: The article's title.
        source: The AllSides source name.
    """
    segments = [s for s in urlparse(url or "").path.lower().split("/") if s]
    for i, seg in enumerate(segments):
        if seg in _OPINION_SEGMENTS:
            following = segments[i + 1] if i + 1 < len(segments) else ""
            if seg in ("blog", "blogs") and following in _NEWS_BLOGS:
                continue
            return True
    if title and _TITLE_PREFIX.match(title):
        return True
    return bool(source and _SOURCE_NAME.search(source))


# --- The shared file ---------------------------------------------------------------------------


def allsides_path(data: str | Path) -> Path:
    """Resolve ``--data``: the AllSides folder or the ``.jsonl.gz`` file itself.

    Raises:
        FileNotFoundError: When the file does not exist; the message names the path tried.
    """
    path = Path(data)
    if path.is_dir() or path.suffix not in (".gz", ".jsonl"):
        path = path / ALLSIDES_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"The AllSides file {str(path)!r} does not exist. Pass --data the folder holding "
            f"{ALLSIDES_FILE} (e.g. ../shared/data/allsides) or the file itself."
        )
    return path


def iter_articles(path: str | Path, ids: set[str] | None = None) -> Iterator[dict[str, Any]]:
    """Stream the articles of an AllSides ``.jsonl(.gz)`` file, optionally only ``ids``.

    Raises:
        FileNotFoundError: When the file does not exist (see :func:`allsides_path`).
        ValueError: When the file is not gzip (or is truncated), a line is not UTF-8 or not
            JSON, or an article is not an object with an ``id`` and a string (or null)
            ``text``; the message names the file and the line.
    """
    file = allsides_path(path)
    lineno = 0
    try:
        # Bytes, decoded line by line, so that every error can name its line.
        with gzip.open(file) if file.suffix == ".gz" else file.open("rb") as handle:
            for lineno, raw in enumerate(handle, start=1):
                article = _parse_article(raw, f"{file}, line {lineno}")
                if article is not None and (ids is None or str(article["id"]) in ids):
                    yield article
    except (EOFError, zlib.error, OSError) as exc:
        # gzip.BadGzipFile (not gzip at all) is an OSError; EOFError is a truncated file.
        if isinstance(exc, gzip.BadGzipFile) and not lineno:
            problem = "is not a gzip file"
        elif isinstance(exc, EOFError):
            problem = "is truncated (the gzip stream ends early)"
        elif isinstance(exc, zlib.error | gzip.BadGzipFile):  # bad data, CRC or length
            problem = "is a damaged gzip file"
        else:
            problem = "cannot be read"
        after = f" after line {lineno}" if lineno else ""
        raise ValueError(
            f"The AllSides file {str(file)!r} {problem}{after} ({exc}). Pass --data the folder "
            f"holding an intact {ALLSIDES_FILE} or the file itself."
        ) from exc


def _parse_article(raw: bytes, where: str) -> dict[str, Any] | None:
    """One line of the AllSides file as an article (``None`` for a blank line)."""
    from stance.training import json_line

    article = json_line(raw, where)
    if article is None:
        return None
    if not isinstance(article, dict):
        raise ValueError(f"{where}: the article is a JSON {type(article).__name__}, not an object.")
    if article.get("id") is None:
        raise ValueError(f"{where}: the article has no 'id'.")
    text = article.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{where}: the article's 'text' is a {type(text).__name__}, not a string.")
    return article


def sentence_hash(sentence: str) -> str:
    """Short sha256 prefix of a sentence: detects drift of the shared file, reveals no text."""
    return hashlib.sha256(sentence.encode("utf-8")).hexdigest()[:HASH_CHARS]


# --- Drawing candidates ------------------------------------------------------------------------


#: Sentence cap in force when the reference set was drawn: none.
_DRAW_MAX_SENTENCE_CHARS = 10**9


def _first_mentions(
    art: dict[str, Any], start: int, end: int, sentence: str, lexicon: Any
) -> list[dict[str, Any]]:
    """One candidate per target named in ``sentence`` (its first mention), as the draws keep."""
    from stance.mentions import find_mentions

    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for target, mention, m_start, m_end in find_mentions(sentence, lexicon):
        if target in seen:
            continue
        seen.add(target)
        out.append(
            {
                "article_id": str(art["id"]),
                "source": art["source"],
                "bias_text": art["bias_text"],
                "sent_start": start,
                "sent_end": end,
                "mention_start": m_start,
                "mention_end": m_end,
                "target": target,
                "sentence": sentence,
                "mention": mention,
            }
        )
    return out


def _fill_cell(
    pool: list[dict[str, Any]],
    per_cell: int,
    passes: Sequence[tuple[int, int]],
    per_article: dict[str, int],
) -> list[dict[str, Any]]:
    """Take up to ``per_cell`` candidates of ``pool`` in order, pass by pass.

    Each pass is (most pairs from one source in the cell, most pairs from one article in the
    whole draw); a later pass only adds what the earlier ones left out. ``per_article`` counts
    across cells and is updated.
    """
    taken: list[dict[str, Any]] = []
    for source_cap, article_cap in passes:
        per_source: dict[str, int] = {}
        for c in taken:
            per_source[c["source"]] = per_source.get(c["source"], 0) + 1
        for c in pool:
            if len(taken) >= per_cell:
                break
            if c in taken or per_article.get(c["article_id"], 0) >= article_cap:
                continue
            if per_source.get(c["source"], 0) >= source_cap:
                continue
            taken.append(c)
            per_article[c["article_id"]] = per_article.get(c["article_id"], 0) + 1
            per_source[c["source"]] = per_source.get(c["source"], 0) + 1
    return taken


def draw_candidates(
    data: str | Path,
    *,
    per_cell: int = 42,
    max_per_article: int = 2,
    max_source_share: float = 0.25,
    min_words: int = 6,
    max_words: int = 80,
    dev_share: float = 0.4,
    seed: int = 9,
    targets: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Draw unlabelled (sentence, target) candidates from the opinion pieces of the corpus.

    Sentences come from :func:`stance.segment.sentence_spans` over each article's ``text``,
    mentions from :func:`stance.mentions.find_mentions` with the config's targets (explicit
    aliases only, no pronoun references); a sentence with several mentions of one target gives
    one pair (its first mention). The draw is stratified by target × ``bias_text``: candidates
    are shuffled with ``seed`` and taken in that order, at most ``max_per_article`` pairs per
    article and, while the cell can still be filled otherwise, at most ``max_source_share`` of a
    cell from one source. Nothing looks at any model output. Articles are then split dev/test
    with the same seed.

    Args:
        data: The AllSides folder or ``.jsonl.gz`` file.
        per_cell: Pairs per (target, bias_text) cell.
        max_per_article: Most pairs from one article (one more where a cell runs short).
        max_source_share: Soft cap on one source's share of a cell.
        min_words: Shortest sentence (in whitespace tokens) to draw.
        max_words: Longest sentence to draw.
        dev_share: Share of articles in the dev split.
        seed: Seed of the shuffle and the split.
        targets: The target table (default: the default config's).

    Returns:
        The pair table with ``PAIR_COLUMNS`` plus ``sentence`` and ``mention`` (for labelling
        only; never write those to the repository), ``label`` and ``confidence`` empty.
    """
    import pandas as pd

    from stance.config import load_config
    from stance.mentions import build_lexicon
    from stance.segment import sentence_spans

    targets = targets if targets is not None else load_config()["targets"]
    lexicon = build_lexicon(targets)
    cands: list[dict[str, Any]] = []
    for art in iter_articles(data):
        if not is_opinion(art.get("url"), art.get("title"), art.get("source")):
            continue
        text = art.get("text") or ""
        # The draw is frozen as it was made: without the sentence cap segment gained later
        # (cut pieces of an over-long sentence would join the pool and move the seeded draw).
        for start, end in sentence_spans(text, max_chars=_DRAW_MAX_SENTENCE_CHARS):
            sentence = text[start:end]
            if not min_words <= len(sentence.split()) <= max_words:
                continue
            cands.extend(_first_mentions(art, start, end, sentence, lexicon))
    rng = random.Random(seed)
    rng.shuffle(cands)
    per_article: dict[str, int] = {}
    chosen: list[dict[str, Any]] = []
    cells = sorted({(c["target"], c["bias_text"]) for c in cands})
    for cell in cells:
        pool = [c for c in cands if (c["target"], c["bias_text"]) == cell]
        cap = max(1, int(per_cell * max_source_share))
        # Three passes, each run only if the cell is still short: all caps; no source cap;
        # one more pair per article (Turkey is rare in opinion writing).
        passes = (
            (cap, max_per_article),
            (per_cell, max_per_article),
            (per_cell, max_per_article + 1),
        )
        taken = _fill_cell(pool, per_cell, passes, per_article)
        chosen.extend(taken)
    articles = sorted({c["article_id"] for c in chosen})
    random.Random(seed).shuffle(articles)
    dev = set(articles[: round(dev_share * len(articles))])
    out = pd.DataFrame(chosen)
    out["split"] = ["dev" if a in dev else "test" for a in out["article_id"]]
    out["sha256"] = [sentence_hash(s) for s in out["sentence"]]
    out["label"] = ""
    out["confidence"] = 0
    out = out.sort_values(["target", "bias_text", "article_id", "sent_start"]).reset_index(
        drop=True
    )
    out.insert(0, "pair_id", [f"op{i:04d}" for i in range(len(out))])
    return out[[*PAIR_COLUMNS, "sentence", "mention"]]


#: The guideline's conventions (``ANNOTATION.md``) that a random draw rarely reaches, each as the
#: wording that signals it; :func:`draw_focused` stratifies by target x convention.
#: A sentence belongs to the first convention it matches, in this order.
FOCUS_CONVENTIONS: dict[str, str] = {
    "victim": r"\b(detain\w*|arrest\w*|imprison\w*|jail\w*|hostages?|kidnap\w*|expel\w*|"
    r"harass\w*|attack(ed|s)? on|was attacked|were attacked|killed|seized|shot down|bombed|"
    r"targeted)\b",
    "mediator": r"\b(mediat\w*|guarantor\w*|broker\w*|peace ?keep\w*|ceasefire|truce|"
    r"peace talks|peace deal)\b",
    "accusation": r"\b(accus\w*|alleg\w*|blam\w*|so-called|supposed(ly)?|no evidence|"
    r"scapegoat\w*)\b",
    "rebuttal": r"\b(reject\w*|den(y|ied|ies)|dismiss\w*|refut\w*|rebuff\w*)\b",
    "power": r"\b(powerful|superpower|great power|strength|capabilit\w*|might|superior\w*|"
    r"dominan\w*|leading power)\b",
    "concern": r"\b(concern\w*|anxious|anxiety|worr\w*|wary|fear\w*|threaten\w*|alarm\w*)\b",
}


def draw_focused(
    data: str | Path,
    *,
    per_cell: int = 15,
    max_source_share: float = 0.25,
    min_words: int = 6,
    max_words: int = 80,
    seed: int = 41,
    exclude_articles: Iterable[str] | None = None,
    conventions: dict[str, str] | None = None,
    targets: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Draw training candidates whose wording touches one of the guideline's conventions.

    A random draw from opinion writing holds few sentences about victims, mediators, rebutted
    accusations or admired power, which the guideline labels differently from NewsMTSC's
    news-reporting habits. This draw takes sentences of *every* article (news and opinion)
    whose text matches a convention's wording (:data:`FOCUS_CONVENTIONS`), stratified by
    target x convention: candidates (first mention of each target per sentence, as in
    :func:`draw_candidates`) are put in a canonical order, shuffled with ``seed`` and taken
    in that order, one pair per article, and in a first pass at most ``max_source_share`` of
    a cell from one source. The wording only chooses what is labelled; the label is a
    person's, by the guideline, so a matched word says nothing about the answer. Nothing
    looks at a model output.

    Args:
        data: The AllSides folder or ``.jsonl.gz`` file.
        per_cell: Pairs per (target, convention) cell.
        max_source_share: Soft cap on one source's share of a cell.
        min_words: Shortest sentence (in whitespace tokens) to draw.
        max_words: Longest sentence to draw.
        seed: Seed of the shuffle.
        exclude_articles: Article ids to leave out (default: those of the evaluation set and
            of the shipped training pairs, so nothing leaks into dev or test).
        conventions: Name -> regular expression (default :data:`FOCUS_CONVENTIONS`).
        targets: The target table (default: the default config's).

    Returns:
        The pair table with ``PAIR_COLUMNS`` (split ``train``), ``convention``, and
        ``sentence`` and ``mention`` for labelling only (never write those to the repository).
    """
    import pandas as pd

    from stance.config import load_config
    from stance.mentions import build_lexicon
    from stance.segment import sentence_spans

    if exclude_articles is None:
        exclude_articles = set(load_pairs()["article_id"]) | set(load_train_pairs()["article_id"])
    excluded = {str(a) for a in exclude_articles}
    patterns = {
        name: re.compile(rx, re.IGNORECASE)
        for name, rx in (conventions if conventions is not None else FOCUS_CONVENTIONS).items()
    }
    targets = targets if targets is not None else load_config()["targets"]
    lexicon = build_lexicon(targets)
    cands: list[dict[str, Any]] = []
    for art in iter_articles(data):
        if str(art["id"]) in excluded:
            continue
        text = art.get("text") or ""
        for start, end in sentence_spans(text, max_chars=_DRAW_MAX_SENTENCE_CHARS):
            sentence = text[start:end]
            if not min_words <= len(sentence.split()) <= max_words:
                continue
            convention = next((n for n, rx in patterns.items() if rx.search(sentence)), None)
            if convention is None:
                continue
            for cand in _first_mentions(art, start, end, sentence, lexicon):
                cands.append(cand | {"convention": convention})
    cands.sort(key=lambda c: (c["article_id"], c["sent_start"], c["target"]))
    random.Random(seed).shuffle(cands)
    per_article: dict[str, int] = {}
    chosen: list[dict[str, Any]] = []
    for target in sorted({c["target"] for c in cands}):
        for convention in patterns:
            pool = [c for c in cands if c["target"] == target and c["convention"] == convention]
            cap = max(1, int(per_cell * max_source_share))
            taken = _fill_cell(pool, per_cell, ((cap, 1), (per_cell, 1)), per_article)
            chosen.extend(taken)
    out = pd.DataFrame(chosen)
    out["split"] = TRAIN_SPLIT
    out["sha256"] = [sentence_hash(s) for s in out["sentence"]]
    out["label"] = ""
    out["confidence"] = 0
    out.insert(0, "pair_id", [f"fo{i:04d}" for i in range(len(out))])
    return out[[*PAIR_COLUMNS, "convention", "sentence", "mention"]]


# --- The reference file ------------------------------------------------------------------------


def load_pairs(path: str | Path | None = None, *, resource: str = PAIRS_RESOURCE) -> pd.DataFrame:
    """Read the labelled references (no text): the shipped ``stance/data/opinion_pairs.csv``.

    Args:
        path: Another reference file with ``PAIR_COLUMNS``; ``None`` for a shipped one.
        resource: Which shipped file, and so which splits are valid: ``PAIRS_RESOURCE`` (the
            evaluation set, dev and test) or ``TRAIN_RESOURCE`` (training pairs, all ``train``;
            see :func:`load_train_pairs`).

    Raises:
        ValueError: When a column is missing or a label, split or confidence is invalid.
    """
    import pandas as pd

    if path is None:
        with resources.files("stance").joinpath("data", resource).open("rb") as handle:
            pairs = pd.read_csv(handle, dtype={"article_id": str, "sha256": str})
    else:
        pairs = pd.read_csv(path, dtype={"article_id": str, "sha256": str})
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"The opinion reference file lacks the columns {missing}.")
    splits = (TRAIN_SPLIT,) if resource == TRAIN_RESOURCE else SPLITS
    for column, allowed in (("label", LABELS_WITH_NONE), ("split", splits)):
        bad = sorted(set(pairs[column]) - set(allowed))
        if bad:
            raise ValueError(
                f"The opinion reference file's {column!r} column must hold values from "
                f"{allowed}. Got {bad} instead."
            )
    if not pairs["confidence"].isin([1, 2, 3]).all():
        raise ValueError("The opinion reference file's 'confidence' column must be 1, 2 or 3.")
    return pairs


def load_train_pairs(path: str | Path | None = None) -> pd.DataFrame:
    """Read the labelled training references: ``stance/data/opinion_train_pairs.csv``.

    They were drawn like the evaluation set (:func:`draw_candidates`, another seed) from
    opinion pieces that hold no evaluation pair, and labelled by the same guideline; every row
    is split ``train``.

    Args:
        path: Another reference file with ``PAIR_COLUMNS``; ``None`` for the shipped one.

    Raises:
        ValueError: As :func:`load_pairs` (a row not split ``train`` too), or when an article
            also holds evaluation pairs (training on it would leak into dev or test).
    """
    pairs = load_pairs(path, resource=TRAIN_RESOURCE)  # every row split 'train', or an error
    shared = sorted(set(pairs["article_id"]) & set(load_pairs()["article_id"]))
    if shared:
        raise ValueError(
            f"{len(shared)} article(s) hold both opinion training and evaluation pairs, "
            f"e.g. {shared[:3]}: training on them would leak into dev or test."
        )
    return pairs


def rebuild_pairs(
    data: str | Path,
    pairs: pd.DataFrame | None = None,
    *,
    on_drift: Literal["raise", "drop"] = "raise",
    targets: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Rebuild the sentences of the reference pairs from the shared AllSides file.

    The file is streamed once; only the referenced articles are kept. Each sentence is
    ``text[sent_start:sent_end]`` and must hash to the stored ``sha256`` prefix.

    Args:
        data: The AllSides folder or ``.jsonl.gz`` file.
        pairs: References with ``PAIR_COLUMNS`` (default: :func:`load_pairs`).
        on_drift: ``"raise"`` when an article is missing or a sentence's hash differs;
            ``"drop"`` to leave such pairs out (with a logged warning).
        targets: Target table used to find the target's other mentions in each sentence
            (default: the default config's), passed to the model as the pipeline does.

    Returns:
        ``pairs`` plus ``sentence``, ``mention`` and ``others`` (the spans of the target's other
        mentions in the sentence).

    Raises:
        FileNotFoundError: The AllSides file does not exist (the message names it).
        ValueError: With ``on_drift="raise"``, when articles are missing or hashes differ.
    """
    import logging

    from stance.config import load_config
    from stance.mentions import build_lexicon, find_mentions

    if on_drift not in ("raise", "drop"):
        raise ValueError(
            f"The 'on_drift' parameter must be one of {{'raise', 'drop'}}. Got {on_drift!r} instead."
        )
    pairs = load_pairs() if pairs is None else pairs
    file = allsides_path(data)
    wanted = set(pairs["article_id"].astype(str))
    texts = {str(a["id"]): a.get("text") or "" for a in iter_articles(file, wanted)}
    lexicon = build_lexicon(targets if targets is not None else load_config()["targets"])
    sentences, mentions, others, ok = [], [], [], []
    for row in pairs.itertuples(index=False):
        text = texts.get(str(row.article_id))
        sentence = "" if text is None else text[int(row.sent_start) : int(row.sent_end)]
        good = text is not None and sentence_hash(sentence) == row.sha256
        span = (int(row.mention_start), int(row.mention_end))
        sentences.append(sentence)
        mentions.append(sentence[span[0] : span[1]])
        others.append(
            [
                (a, b)
                for t, _, a, b in find_mentions(sentence, lexicon)
                if t == row.target and (a, b) != span
            ]
            if good
            else []
        )
        ok.append(good)
    out = pairs.copy()
    out["sentence"] = sentences
    out["mention"] = mentions
    out["others"] = others
    bad = out.loc[[not g for g in ok], "pair_id"].tolist()
    if bad:
        message = (
            f"{len(bad)} of {len(out)} opinion pairs do not match {str(file)!r} (article missing "
            f"or sentence hash differs), e.g. {bad[:5]}. Is this the AllSides release the "
            "references were drawn from?"
        )
        if on_drift == "raise":
            raise ValueError(message)
        logging.getLogger(__name__).warning(message)
        out = out[ok]
    return out.reset_index(drop=True)


# --- Evaluation ----------------------------------------------------------------------------------

#: A scorer: ``(sentences, starts, ends, others) -> predicted labels`` (indices into
#: ``STANCE_LABELS``).
Predictor = Callable[
    [Sequence[str], Sequence[int], Sequence[int], Sequence[Sequence[tuple[int, int]]]],
    Sequence[int],
]


def model_predictor(model: Any = None, *, batch_size: int = 64) -> Predictor:
    """Return a :data:`Predictor` for a stance model.

    Args:
        model: A ``StanceScorer``, a shipped model name, a model folder, or ``None`` (default
            model).
        batch_size: Pairs per forward pass.
    """
    from stance.scoring import StanceScorer, load_model, resolve_model_dir

    scorer = model if isinstance(model, StanceScorer) else load_model(resolve_model_dir(model))

    def predict(
        sentences: Sequence[str],
        starts: Sequence[int],
        ends: Sequence[int],
        others: Sequence[Sequence[tuple[int, int]]],
    ) -> list[int]:
        probs = scorer.predict_proba(sentences, starts, ends, others=others, batch_size=batch_size)
        return probs.argmax(axis=1).tolist()

    return predict


def vader_predictor() -> Predictor:
    """Return a :data:`Predictor` for the sentence-level VADER baseline (ignores the target)."""
    from stance.training import vader_labels

    def predict(
        sentences: Sequence[str],
        starts: Sequence[int],
        ends: Sequence[int],
        others: Sequence[Sequence[tuple[int, int]]],
    ) -> list[int]:
        return vader_labels(sentences)

    return predict


def _metrics(frame: pd.DataFrame, pred: Sequence[int]) -> dict[str, Any]:
    from stance.training import classification_metrics

    y = [STANCE_LABELS.index(label) for label in frame["label"]]
    metrics = classification_metrics(y, list(pred))
    metrics["n_pairs"] = len(y)
    return metrics


def evaluate_pairs(
    rebuilt: pd.DataFrame, predictor: Predictor, *, name: str = "model"
) -> dict[str, Any]:
    """Score rebuilt pairs with ``predictor`` and compare with the labels.

    ``none`` pairs (no reference to the target) are left out of every figure and counted.

    Args:
        rebuilt: Pairs with ``sentence``, ``mention_start``, ``mention_end``, ``others``,
            ``label``, ``target`` and ``bias_text`` (from :func:`rebuild_pairs`).
        predictor: See :data:`Predictor`.
        name: The model's name, copied into the result.

    Returns:
        ``macro_f1``, ``accuracy``, ``per_class`` (precision, recall, F1, support),
        ``confusion`` (rows true, columns predicted, in ``STANCE_LABELS`` order), ``n_pairs``,
        ``n_none``, ``label_counts``, ``confidence_counts``, ``by_target`` and ``by_bias``
        (macro-F1, accuracy and pair count per group), and ``model``.
    """
    import numpy as np

    scored = rebuilt[rebuilt["label"] != "none"].reset_index(drop=True)
    pred = np.asarray(
        predictor(
            scored["sentence"].tolist(),
            scored["mention_start"].astype(int).tolist(),
            scored["mention_end"].astype(int).tolist(),
            [list(o) for o in scored["others"]],
        ),
        dtype=int,
    )
    result: dict[str, Any] = {"model": name, **_metrics(scored, pred.tolist())}
    result["n_none"] = int((rebuilt["label"] == "none").sum())
    result["label_counts"] = {k: int((scored["label"] == k).sum()) for k in STANCE_LABELS}
    result["confidence_counts"] = {
        str(k): int((scored["confidence"] == k).sum()) for k in (1, 2, 3)
    }
    for column, key in (("target", "by_target"), ("bias_text", "by_bias")):
        groups = {}
        for value in sorted(scored[column].unique()):
            mask = (scored[column] == value).to_numpy()
            m = _metrics(scored[mask], pred[mask].tolist())
            groups[str(value)] = {k: m[k] for k in ("macro_f1", "accuracy", "n_pairs")}
        result[key] = groups
    return result


def evaluate_opinion(
    data: str | Path,
    split: Literal["dev", "test", "all"] = "test",
    *,
    model: Any = None,
    baseline: bool = False,
    pairs: pd.DataFrame | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Evaluate a stance model (or VADER) on the opinion-writing set.

    Args:
        data: The AllSides folder or ``.jsonl.gz`` file the references point into.
        split: ``"dev"`` (for tuning), ``"test"`` (for reporting) or ``"all"``.
        model: A ``StanceScorer``, shipped model name or model folder; ``None`` for the default.
        baseline: Evaluate the sentence-level VADER baseline instead of a model.
        pairs: References (default: the shipped file).
        batch_size: Pairs per forward pass.

    Returns:
        The figures of :func:`evaluate_pairs` plus ``dataset`` and ``split``.

    Raises:
        ValueError: An unknown ``split``, or references that no longer match the file.
        FileNotFoundError: The AllSides file does not exist.
    """
    if split not in ("dev", "test", "all"):
        raise ValueError(
            f"The 'split' parameter must be one of {{'dev', 'test', 'all'}}. Got {split!r} instead."
        )
    pairs = load_pairs() if pairs is None else pairs
    if split != "all":
        pairs = pairs[pairs["split"] == split]
    rebuilt = rebuild_pairs(data, pairs)
    if baseline:
        predictor, name = vader_predictor(), "vader"
    else:
        from stance.scoring import StanceScorer, resolve_model_dir

        predictor = model_predictor(model, batch_size=batch_size)
        name = (
            str(model.config.get("name", "scorer"))
            if isinstance(model, StanceScorer)
            else resolve_model_dir(model).name
        )
    return {"dataset": "opinion", "split": split, **evaluate_pairs(rebuilt, predictor, name=name)}


def opinion_table(results: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Tidy table of opinion-set results for reports: one row per model, split and class.

    Args:
        results: Dicts from :func:`evaluate_opinion` (e.g. the ``results`` list of
            ``benchmarks/results/opinion_eval.json``).

    Returns:
        Columns ``model, split, class, precision, recall, f1, support, macro_f1, accuracy,
        n_pairs, n_none``; ``class`` is ``"negative"``, ``"neutral"`` or ``"positive"``.
    """
    import pandas as pd

    rows = []
    for r in results:
        for cls in STANCE_LABELS:
            pc = r["per_class"][cls]
            rows.append(
                {
                    "model": r["model"],
                    "split": r["split"],
                    "class": cls,
                    **{k: pc[k] for k in ("precision", "recall", "f1", "support")},
                    "macro_f1": r["macro_f1"],
                    "accuracy": r["accuracy"],
                    "n_pairs": r["n_pairs"],
                    "n_none": r["n_none"],
                }
            )
    return pd.DataFrame(rows)
