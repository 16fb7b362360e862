"""Segment: cut each article into sentences with character offsets into its text.

Lines (paragraphs, headlines) are segmented one by one, so a headline without
final punctuation never merges with the sentence after it. ``syntok`` does the splitting: it
knows abbreviations such as "U.S.", "Mr." and "Oct." and keeps quotations together. Scraped text
often glues sentences ("destabilizing."That was ...); those seams are split as well. A run of
text without sentence punctuation is cut into pieces of at most ``MAX_SENTENCE_CHARS``
characters (at a space where there is one), so that one unpunctuated page never becomes one
giant "sentence" whose every mention drags the whole page through the models.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

from stance.config import SegmentSettings
from stance.schema import ARTICLE_COLUMNS, require_columns

if TYPE_CHECKING:
    import pandas as pd

# A sentence end glued to the next sentence: "word.Next" or "word."Next" (no space).
_GLUED = re.compile(
    r"(?<=[a-z\d)]{2}[.!?])(?=[A-Z][a-z])"  # "point.Now"
    r"|(?<=[a-z\d]{2}[.!?][\"”’'])(?=[A-Z])"  # 'destabilizing."That'
    r"|(?<=[a-z]{3}[.!?])\s+(?=\d[\d,]*\s+[a-z])"  # "supporters. 2023 is" (syntok keeps it)
)
_PARAGRAPH = re.compile(r"[^\n]+")

#: Longest sentence kept whole, in characters. News sentences are far shorter (on 1,500 AllSides
#: geopolitics articles, 99.99% of 68,251 sentences are under 800 characters; 2 exceed 1,000),
#: and the models read little more: the embedder stops at 256 word pieces (~1,100 characters)
#: and the stance window at 128. Longer runs are cut at the last whitespace in the final quarter
#: before the cap, or at the cap itself when there is none. The default of the
#: ``segment.max_sentence_chars`` setting.
MAX_SENTENCE_CHARS: int = SegmentSettings.max_sentence_chars
_SPACE = re.compile(r"\s")


def _syntok_spans(text: str, offset: int) -> list[tuple[int, int]]:
    from syntok import segmenter

    spans = []
    for paragraph in segmenter.analyze(text):
        for sentence in paragraph:
            if not sentence:
                continue
            start = sentence[0].offset
            last = sentence[-1]
            spans.append((offset + start, offset + last.offset + len(last.value)))
    return spans


def _cap(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut the span ``[start, end)`` into pieces of at most ``max_chars``, at whitespace if any."""
    pieces = []
    while end - start > max_chars:
        limit = start + max_chars
        cut = limit  # a hard cut when no whitespace lies in the last quarter before the cap
        for m in _SPACE.finditer(text, start + max_chars * 3 // 4, limit + 1):
            cut = m.start()
        piece_end = cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end > start:
            pieces.append((start, piece_end))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


def sentence_spans(text: str, *, max_chars: int = MAX_SENTENCE_CHARS) -> list[tuple[int, int]]:
    """Return ``(start, end)`` character spans of the sentences in ``text``.

    Spans never cross a paragraph break, are stripped of surrounding whitespace and cover every
    non-blank character of the text that is part of a sentence. No span is longer than
    ``max_chars``: longer runs are cut (see ``MAX_SENTENCE_CHARS``).
    """
    if max_chars < 1:
        raise ValueError(f"The 'max_chars' parameter must be a positive int. Got {max_chars!r}.")
    spans: list[tuple[int, int]] = []
    for para in _PARAGRAPH.finditer(text):
        for start, end in _syntok_spans(para.group(0), para.start()):
            piece = text[start:end]
            cuts = [m.start() for m in _GLUED.finditer(piece)]
            bounds = [0, *cuts, len(piece)]
            for a, b in itertools.pairwise(bounds):
                chunk = piece[a:b]
                lead = len(chunk) - len(chunk.lstrip())
                trail = len(chunk.rstrip())
                if trail > lead:
                    spans.extend(_cap(text, start + a + lead, start + a + trail, max_chars))
    return spans


def segment(
    articles: pd.DataFrame, *, progress: bool = True, max_chars: int = MAX_SENTENCE_CHARS
) -> pd.DataFrame:
    """Split articles into one row per sentence.

    Args:
        articles: Columns ``article_id``, ``source``, ``text`` (as from ``ingest``).
        progress: Show a progress bar.
        max_chars: Longest sentence; longer runs of text are cut (see ``MAX_SENTENCE_CHARS``).

    Returns:
        A sentences table: ``article_id, source, sentence_id, sentence, start, end`` where
        ``text[start:end] == sentence`` and ``sentence_id`` counts from 0 within each article.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    require_columns(
        articles, [c for c in ARTICLE_COLUMNS if c in ("article_id", "source", "text")], "articles"
    )
    rows = []
    for article_id, source, text in tqdm(
        articles[["article_id", "source", "text"]].itertuples(index=False),
        total=len(articles),
        desc="segment",
        disable=not progress,
        unit="article",
    ):
        for i, (start, end) in enumerate(sentence_spans(text, max_chars=max_chars)):
            rows.append((article_id, source, i, text[start:end], start, end))
    return pd.DataFrame(
        rows, columns=["article_id", "source", "sentence_id", "sentence", "start", "end"]
    ).astype({"sentence_id": "int64", "start": "int64", "end": "int64"})
