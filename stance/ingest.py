"""Ingest: read input files into one row per article, with boilerplate removed.

Inputs are folders (``.txt``, ``.md``, ``.html``/``.htm``, searched recursively) and tables
(``.csv``, ``.jsonl``/``.jsonl.gz``, ``.json``, ``.parquet``) with a ``text`` column and optional
``source``, ``title``, ``date``, ``url``. A page is cut into paragraphs; named boilerplate rules
(comment forms, share widgets, promos, credits, author footers, signature junk) drop paragraphs
and count what they dropped; pages that hold several articles are split at their headlines.
A bad file never costs a good one: inside a folder an unusable file is skipped, in a table a
bad row or line is skipped, each recorded with its reason (and line) in the report; only an input
named directly that yields nothing stops the run (``strict=True`` stops at every skip). Tables are
read row by row, articles are capped at ``MAX_ARTICLE_CHARS``, control characters are removed,
exact duplicates dropped, and dates that cannot be parsed named, all of it in the report.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import html
import itertools
import json
import logging
import os
import re
import sys
import unicodedata
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import regex

from stance.config import IngestSettings
from stance.schema import ARTICLE_COLUMNS, parse_dates

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
TABLE_SUFFIXES = (".csv", ".jsonl", ".jsonl.gz", ".json", ".parquet")

#: Longest article text kept, in characters; longer ones are cut at a space near the cap and
#: listed in the report's ``truncated``. The longest of 1,500 AllSides geopolitics articles has
#: 77,000 characters and long-form features run to ~20,000 words (~130,000 characters); 200,000
#: (~30,000 words) keeps any news article whole. Past it a "page" is a dump, a book or a log
#: with no line breaks, and reading all of it would make one file dominate the run (a 50 MB
#: single line is ~400,000 sentences, an hour of embedding): its head is kept, with a warning,
#: rather than dropping the file. The default of the ``ingest.max_article_chars`` setting.
MAX_ARTICLE_CHARS: int = IngestSettings.max_article_chars
#: How many examples a capped list in the report holds (unparsed dates; rows skipped per file).
MAX_LISTED = 20
#: Extra table columns kept on the articles (outlet metadata such as ``bias_text``); a table
#: with thousands of keys would otherwise cost memory and time out of proportion to its text.
MAX_EXTRA_COLUMNS = 50
#: An HTML page with more "<" that open no tag (another "<" comes before any ">") is read with
#: them as text: Python's parser takes time quadratic in their number.
MAX_UNCLOSED_LT = 1_000
_UNCLOSED_LT = re.compile(r"<(?=[^<>]*<)")
#: A JSONL line longer than this is skipped unread (a text is cut at ``MAX_ARTICLE_CHARS``
#: anyway; 16 MiB leaves room for JSON escapes and long metadata).
MAX_LINE_BYTES = 16 * 1024 * 1024
#: Rows read from a Parquet file at a time.
PARQUET_BATCH_ROWS = 256
# Values of table columns other than text (title, url, extra columns) are cut at this length:
# a 5 MB title per row made a 3 MB .gz cost 2.6 GB.
MAX_FIELD_CHARS = 10_000
# A file whose decoded text is more than this share control characters is binary, not text.
_BINARY_CONTROL_SHARE = 0.05
_MAGIC = (
    (b"%PDF", "PDF"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"PK\x03\x04", "ZIP archive (e.g. .docx)"),
    (b"\x1f\x8b", "gzip archive"),
    (b"\xd0\xcf\x11\xe0", "MS Office document"),
    (b"\x7fELF", "executable"),
)
# Control characters removed from text: C0 and C1 controls and DEL, except tab, line feed,
# carriage return, and the characters ``str.splitlines`` treats as line breaks (\v \f \x1c-\x1e
# \x85), which separate paragraphs.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")
# C1 controls in text are nearly always Windows-1252 punctuation decoded as Latin-1 upstream
# ("president\x92s"): those that cp1252 defines are given back their meaning, not deleted.
_C1_AS_CP1252 = {
    chr(b): bytes([b]).decode("cp1252")
    for b in range(0x80, 0xA0)
    if b != 0x85 and b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
_C1 = re.compile("[" + "".join(_C1_AS_CP1252) + "]")
_WHITESPACE = re.compile(r"\s+")
# Markdown emphasis and links, unwrapped to their text. No character class here can span the
# bracket that opens the next attempt, so a line of unclosed "[" or "(" is scanned once, not
# once per bracket (the old patterns took 70 s on 150 KB of "[").
_MD_EMPHASIS = re.compile(r"[*_]{1,2}([^*_]+)[*_]{1,2}")
_MD_LINK = re.compile(r"\[([^\[\]]+)\]\([^()]+\)")


class IngestError(ValueError):
    """An input that cannot be used at all (the message names the file and the problem)."""


class _Unusable(Exception):
    """A file that yields nothing: raised by the readers, turned into a skip or an error."""


@dataclass
class IngestReport:
    """What ingest did besides producing articles: skips, warnings, counts and clean-ups.

    Attributes:
        skipped: Inputs, rows and lines that yield no article: ``{"path", "reason"}`` plus
            ``"line"`` (JSONL, CSV: 1-based line in the file) or ``"row"`` (Parquet, JSON:
            0-based row), and ``"count"`` for a summary of further rows of one file.
        warnings: Problems that did not stop an input from being used.
        boilerplate: Paragraphs removed per boilerplate rule.
        files_read: Files opened.
        pages_split: Pages holding several articles, with their article counts.
        rows_skipped: Per table, how many of its rows or lines were skipped.
        duplicates: Articles dropped as exact duplicates of an earlier one:
            ``{"path", "duplicate_of", "source"}``.
        control_characters: Per file, control characters removed.
        control_characters_replaced: Per file, C1 control characters replaced by the Windows-1252
            punctuation they stand for (byte 0x92 read as Latin-1 becomes ``’``).
        combining_runs_cut: Per file, runs of more than ``MAX_COMBINING_RUN`` combining marks
            cut to that many.
        long_values_cut: Per column, table values (not ``text``) cut at ``MAX_FIELD_CHARS``.
        unparsed_dates: Article dates that do not parse, ``{"path", "value"}`` (at most
            ``MAX_LISTED``; ``unparsed_date_count`` counts them all).
        truncated: Articles cut at ``MAX_ARTICLE_CHARS``: ``{"path", "chars", "kept"}``.
        strict: Raise :class:`IngestError` at the first skip instead of recording it.
    """

    skipped: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    boilerplate: Counter[str] = field(default_factory=Counter)
    files_read: int = 0
    pages_split: dict[str, int] = field(default_factory=dict)
    rows_skipped: Counter[str] = field(default_factory=Counter)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    control_characters: Counter[str] = field(default_factory=Counter)
    control_characters_replaced: Counter[str] = field(default_factory=Counter)
    combining_runs_cut: Counter[str] = field(default_factory=Counter)
    long_values_cut: Counter[str] = field(default_factory=Counter)
    memo: dict[Any, Any] = field(default_factory=dict, repr=False)  # see _clean_cell
    unparsed_dates: list[dict[str, str]] = field(default_factory=list)
    unparsed_date_count: int = 0
    truncated: list[dict[str, Any]] = field(default_factory=list)
    max_article_chars: int = MAX_ARTICLE_CHARS
    strict: bool = False

    def skip(
        self,
        path: str,
        reason: str,
        *,
        line: int | None = None,
        row: int | None = None,
        count: int | None = None,
    ) -> None:
        """Record an input (or one of its lines or rows) that yields no article, and log it.

        Raises:
            IngestError: In strict mode, naming the file, the line or row and the reason.
        """
        at = f"line {line}" if line is not None else f"row {row}" if row is not None else ""
        if self.strict:
            where = f"{path}, {at}" if at else path
            raise IngestError(f"{where}: {reason} (strict mode: nothing may be skipped).")
        entry: dict[str, Any] = {"path": path}
        if line is not None:
            entry["line"] = line
        if row is not None:
            entry["row"] = row
        if count is not None:
            entry["count"] = count
        entry["reason"] = f"{at}: {reason}" if at else reason
        logger.warning("Skipping %s: %s", path, entry["reason"])
        self.skipped.append(entry)

    def warn(self, message: str) -> None:
        """Record a warning that did not stop the input from being used."""
        logger.warning("%s", message)
        self.warnings.append(message)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary for ``run.json``."""
        return {
            "files_read": self.files_read,
            "skipped": self.skipped,
            "rows_skipped": dict(self.rows_skipped),
            "warnings": self.warnings,
            "boilerplate_removed": dict(sorted(self.boilerplate.items())),
            "pages_split": self.pages_split,
            "duplicates": self.duplicates,
            "control_characters_removed": dict(self.control_characters),
            "control_characters_replaced": dict(self.control_characters_replaced),
            "combining_runs_cut": dict(self.combining_runs_cut),
            "unparsed_dates": {
                "count": self.unparsed_date_count,
                "examples": self.unparsed_dates,
            },
            "truncated": self.truncated,
            "max_article_chars": self.max_article_chars,
        }


# --- Paragraph-level boilerplate rules -----------------------------------------------------
# Each rule is a name and a predicate over one paragraph. "Anywhere" rules are precise enough
# to apply to every paragraph; "tail" rules (author footers, signature junk) only strip
# trailing paragraphs, where such text lives, so that "Putin lives in Moscow." in a body
# paragraph is never touched.

_WIDGET_LINES = re.compile(
    r"""^(?:
        (?:WordPress\.com|Google|Twitter|Facebook|LinkedIn)\s+(?:Logo|photo|picture|account)
      | Share\s+this:?|Like\s+this:?|Like\s+Loading\.*|Loading\.*|Related
      | %d\s+bloggers\s+like\s+this:?
      | Blog\s+at\s+WordPress\.com\.?|Create\s+(?:your|a\s+free)\s+website.*|Get\s+started
      | Up\s*↑|Back\s+to\s+top|Skip\s+to\s+content|Follow|Subscribe(?:\s+now)?|Sign\s+(?:in|up)
      | Log\s*in|Log\s*out|Print|Email|Tweet|Share(?:\s+on\s+\w+)?|Click\s+to\s+share\s+on\s+.*
      | Twitter|Facebook|LinkedIn|WhatsApp|Telegram|Reddit|Pinterest|Tumblr|Pocket|Comments?
      | Follow\s+us\s+on\s+.*|Share\s+on\s+(?:Facebook|Twitter|WhatsApp|Telegram).*
      | Advertisement|Story\s+continues\s+below(?:\s+advertisement)?|Scroll\s+to\s+continue.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_COMMENT_FORM = re.compile(
    r"""(?:^Leave\s+a\s+(?:Reply|Comment)\b
      | ^Post\s+a\s+comment\b
      | Fill\s+in\s+your\s+details\s+below
      | You\s+are\s+commenting\s+using\s+your
      | ^Connecting\s+to\s+%s
      | ^Notify\s+me\s+of\s+(?:new|follow-up)\s+(?:comments|posts)
      | ^Your\s+email\s+address\s+will\s+not\s+be\s+published
      | ^Required\s+fields\s+are\s+marked
      | ^\d+\s+(?:comments?|responses?)\s*$
      | ^Cancel\s+reply\s*$
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_PROMO_HEADING = re.compile(
    r"call\s+for\s+(?:submissions|papers|contributions)|write\s+for\s+us|submit\s+your\s+(?:article|work)",
    re.IGNORECASE,
)
_PROMO_BODY = re.compile(
    r"accepts?\s+submissions|send\s+(?:you|your|us)\s+(?:your\s+)?(?:pitch|pitches|submissions?)"
    r"|[(\[](?:AT|at)[)\]]\s*[\w-]+\.(?:org|com|net|info)\b|we\s+have\s+a\s+global\s+audience",
    re.IGNORECASE,
)
_REPUBLISH = re.compile(
    r"(?:republish|reprint|reproduc)\w*\b.*\b(?:credit|permission|prohibited|rights)"
    r"|\b(?:credit|permission)\b.*\b(?:republish|reprint|reproduc)\w*"
    r"|reprinted\s+with\s+permission|all\s+rights\s+reserved|^(?:copyright\b|©\s*(?:copyright\s*)?\d{4})"
    r"|originally\s+(?:published|appeared)\s+(?:in|on|at)\b|may\s+not\s+be\s+(?:reproduced|republished)",
    re.IGNORECASE,
)
# The lookbehind starts a match only where a token starts: without it a long token holding no
# "@" was rescanned from each of its characters (quadratic; 100 s on one 200 KB "word").
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+\.[\w.]+")
_AUTHOR_FOOTER = re.compile(
    r"""(?:can\s+be\s+reached\s+at
      | \b(?:his|her|their)\s+(?:new\s+)?book\b
      | ^visit\s+(?:his|her|their|my|our)\s+(?:blog|web\s*site|site)
      | ^listen\s+to\s+.*\b(?:radio|podcast)\b
      | ^follow\s+(?:him|her|them|me)\s+on
      | ^\w+(?:\s+\w+){0,3}\s+(?:lives|is\s+based)\s+in\s+[A-Z]\w+\.\s
      | ^\w+(?:\s+\w+){0,3}\s+is\s+(?:a|an)\s+(?:freelance|independent|contributing)\b
      | \b(?:blogspot|substack|wordpress)\.com\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# Text-speak tokens ("u", "ur", "plz") and first-person taunts mark a commenter's signature.
_SIGNATURE = re.compile(
    r"(?:^|\s)(?:u|ur|r|plz|pls|lol|lmao|thx|gr8|b4)(?=[\s,.!?]|$)|\bjudge\s+me\b|\bu\s+know\s+me\b"
)
_PHOTO_CREDIT = re.compile(
    r"(?:©|\(c\)\s|\bphoto(?:graph)?\s*(?:credit|:)|\bimage\s*(?:credit|:)|getty\s+images|\bAP\s+Photo\b"
    r"|\bfile\s+photo\b|^\s*(?:source|credit)\s*:)",
    re.IGNORECASE,
)
# Photo captions of the common news formats: an image widget's caption toggle ("Enlarge this
# image toggle caption CREDIT", "hide caption"), a gallery's numbered captions ("Hide Caption
# 3 of 12 Photos: ..."), and caption credits ("(Photo: X/Getty Images)", "Image caption ...",
# "Image copyright ...", "Caption: ..."). A paragraph holding a gallery marker is the gallery.
_CAPTION_WIDGET = re.compile(
    r"\b(?:hide|toggle)\s+caption\b|\benlarge\s+this\s+image\b|^\s*(?:image|photo)\s+"
    r"(?:caption|copyright)\b|^\s*caption\s*:",
    re.IGNORECASE,
)
_GALLERY = re.compile(r"\bhide\s+caption\s+\d+\s+of\s+\d+\b", re.IGNORECASE)
_BYLINE = re.compile(
    r"^(?:[Bb]y|BY|[Ww]ritten\s+by|[Pp]osted\s+by)\s+[A-Z][a-z][\w.'-]*(?:\s+(?:[A-Z][\w.'-]+|de|van|von|al-\w+)){0,3}\s*$"
)

RULES: tuple[str, ...] = (
    "comment_forms",
    "login_share_widgets",
    "submission_promos",
    "republishing_credits",
    "author_footers",
    "signature_junk",
    "photo_credits",
    "photo_captions",
    "bylines",
    "duplicate_lines",
)


@dataclass
class Paragraph:
    """One block of a page: its text and whether a blank spacer line preceded it."""

    text: str
    spacer_before: bool = False
    heading_hint: bool = False  # a markup heading (<h2>, ``## ``) says so explicitly
    chars_cut: int = 0  # characters cut off a line longer than the article cap


def _word_count(text: str) -> int:
    return len(text.split())


def is_heading(text: str) -> bool:
    """Return whether a paragraph reads as a headline or sub-heading.

    A heading is short, starts with a capital or digit, and ends without sentence punctuation
    (a question or exclamation mark is allowed: "Electoral Pandering?").
    """
    t = text.strip()
    if not t or len(t) > 160 or _word_count(t) > 20:
        return False
    if not (t[0].isupper() or t[0].isdigit() or t[0] in "\"'“‘"):
        return False
    if t[-1] in ".,;:…" or t.endswith((".”", '."', ".'", ".’")):
        return False
    # Two sentences in one line are body text, not a heading.
    return re.search(r"[a-z]{2}[.!?]\s+[A-Z]", t) is None


def _rule_for(text: str, enabled: dict[str, bool]) -> str | None:
    """Name the anywhere-rule that removes this paragraph, or ``None``."""
    t = text.strip()
    # Word counts are tested before the searches: ``_REPUBLISH`` backtracks over the rest of the
    # paragraph at every "reprint", which on a megabyte-long paragraph never ends.
    words = _word_count(t)
    if enabled.get("login_share_widgets", True) and _WIDGET_LINES.match(t):
        return "login_share_widgets"
    if enabled.get("comment_forms", True) and _COMMENT_FORM.search(t):
        return "comment_forms"
    if enabled.get("republishing_credits", True) and words < 60 and _REPUBLISH.search(t):
        return "republishing_credits"
    if (
        enabled.get("submission_promos", True)
        and words < 80
        and (_PROMO_HEADING.search(t) or _PROMO_BODY.search(t))
    ):
        return "submission_promos"
    if enabled.get("photo_credits", True) and words < 20 and _PHOTO_CREDIT.search(t):
        return "photo_credits"
    if enabled.get("photo_captions", True) and (
        (words < 60 and _CAPTION_WIDGET.search(t)) or _GALLERY.search(t)
    ):
        return "photo_captions"
    if enabled.get("bylines", True) and _BYLINE.match(t):
        return "bylines"
    return None


def _tail_rule_for(text: str, enabled: dict[str, bool]) -> str | None:
    t = text.strip()
    words = _word_count(t)
    if (
        enabled.get("author_footers", True)
        and words < 60
        and (_AUTHOR_FOOTER.search(t) or _EMAIL.search(t))
    ):
        return "author_footers"
    if enabled.get("signature_junk", True) and words < 40 and _SIGNATURE.search(t):
        return "signature_junk"
    return None


def remove_boilerplate(
    paragraphs: list[Paragraph], enabled: dict[str, bool], counts: Counter[str]
) -> tuple[list[Paragraph], list[int]]:
    """Drop boilerplate paragraphs, counting removals per rule in ``counts``.

    Besides single-paragraph rules, two block rules apply: a promo heading ("... call for
    Submissions") removes the paragraphs under it up to the next heading, and a photo credit
    takes the caption line right after it (a heading-like line with no final punctuation).
    Trailing author footers and signatures are stripped from the end of the page.

    Returns:
        The kept paragraphs, and the indices (into them) of paragraphs that directly follow a
        removed end-of-article marker (a republishing credit or a promo block).
    """
    out: list[Paragraph] = []
    markers: list[int] = []
    in_promo = False
    after_credit = False
    previous_text = None
    for para in paragraphs:
        text = para.text.strip()
        rule = _rule_for(text, enabled)
        if in_promo:
            if rule is None and is_heading(text) and not _PROMO_BODY.search(text):
                in_promo = False
            else:
                counts["submission_promos"] += 1
                continue
        if rule == "submission_promos" and _PROMO_HEADING.search(text) and is_heading(text):
            in_promo = True
        if rule is not None:
            counts[rule] += 1
            after_credit = rule == "photo_credits"
            if rule in ("republishing_credits", "submission_promos"):
                markers.append(len(out))
            continue
        if after_credit and is_heading(text) and _word_count(text) >= 6:
            # A photo caption: an unpunctuated descriptive line right under the credit.
            counts["photo_credits"] += 1
            after_credit = False
            continue
        after_credit = False
        normalized = " ".join(text.split())
        if enabled.get("duplicate_lines", True) and normalized == previous_text:
            counts["duplicate_lines"] += 1
            continue
        previous_text = normalized
        out.append(para)
    # Author footers and signatures sit at the end of a page: strip them from the tail only.
    while out:
        rule = _tail_rule_for(out[-1].text, enabled)
        if rule is None:
            break
        counts[rule] += 1
        out.pop()
    return out, sorted({m for m in markers if m < len(out)})


# --- Multi-article pages -------------------------------------------------------------------

_STOPWORDS = frozenset(
    """a an the and or but of to in on at for with by from as is are was were be been has have
    had it its this that these those which who whom whose what when where why how not no than
    then so such into over under about after before between against during while also would
    could should may might will can shall do does did their there they them he she his her we
    our you your i me my more most other some any all both each few many much very just only""".split()
)


def _content_words(text: str) -> Counter[str]:
    words = re.findall(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'-]+", text.lower())
    return Counter(w.strip("'-") for w in words if w not in _STOPWORDS and len(w) > 2)


def _cosine(a: Counter[str], b: Counter[str], idf: dict[str, float]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(a[w] * b[w] * idf.get(w, 1.0) ** 2 for w in a.keys() & b.keys())
    na = sum((c * idf.get(w, 1.0)) ** 2 for w, c in a.items()) ** 0.5
    nb = sum((c * idf.get(w, 1.0)) ** 2 for w, c in b.items()) ** 0.5
    return dot / (na * nb) if na and nb else 0.0


@dataclass
class Section:
    """A heading (or ``None`` for text before any heading) and the paragraphs under it."""

    heading: Paragraph | None
    body: list[Paragraph]
    after_end_marker: bool = False


def split_articles(
    paragraphs: list[Paragraph],
    *,
    cohesion_threshold: float = 0.25,
    long_run: int = 5,
    end_markers: list[int] | None = None,
) -> list[tuple[str | None, list[Paragraph]]]:
    """Split a page into articles at the headings that start a new article.

    A page is cut into sections at headings. A heading opens a new article, rather than a
    sub-section of the current one, when the layout says so (a blank spacer block around it, or
    a removed end-of-article marker such as a republishing credit or promo right before it), or
    when, on a page the layout already shows to hold several articles, it follows a long run of
    paragraphs without any heading (``long_run`` or more) and the section under it shares little
    vocabulary with the article so far (tf-idf cosine below ``cohesion_threshold``): pages that
    use sub-headings use them every few paragraphs, and a new article changes the subject. The
    first heading of a page is its title.

    Args:
        paragraphs: The page's paragraphs after boilerplate removal.
        cohesion_threshold: Lexical similarity below which a headed section starts a new article.
        long_run: Paragraphs without a heading after which a heading may start a new article.
        end_markers: Indices in ``paragraphs`` before which boilerplate marking an article's end
            was removed.

    Returns:
        ``(title, paragraphs)`` per article; ``title`` is ``None`` for a page without headline.
    """
    if not paragraphs:
        return []
    markers = set(end_markers or [])
    sections: list[Section] = []
    current = Section(heading=None, body=[])
    for i, para in enumerate(paragraphs):
        next_is_body = i + 1 < len(paragraphs) and not is_heading(paragraphs[i + 1].text)
        if (para.heading_hint or is_heading(para.text)) and next_is_body:
            if current.heading is not None or current.body:
                sections.append(current)
            current = Section(heading=para, body=[], after_end_marker=i in markers)
        else:
            current.body.append(para)
    sections.append(current)

    # Document frequencies over sections, so shared words that are everywhere count little.
    bags = [
        _content_words(" ".join(p.text for p in ([s.heading] if s.heading else []) + s.body))
        for s in sections
    ]
    n = len(bags)
    df: Counter[str] = Counter()
    for bag in bags:
        df.update(bag.keys())
    import math

    idf = {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}

    def strong_break(section: Section) -> bool:
        heading = section.heading
        if heading is None:
            return False
        spacer = heading.spacer_before or any(p.spacer_before for p in section.body[:1])
        return spacer or section.after_end_marker

    # Weak evidence (a long run, then a change of subject) only counts on a page that the layout
    # already shows to hold several articles; single articles with sub-headings are never cut.
    multi_article_page = any(strong_break(s) for s in sections[1:])
    articles: list[tuple[str | None, list[Paragraph]]] = []
    article_bag: Counter[str] = Counter()
    run = 0  # body paragraphs since the last heading of any kind
    for section, bag in zip(sections, bags, strict=True):
        heading = section.heading
        starts_new = not articles
        if articles and heading is not None:
            if strong_break(section):
                starts_new = True
            elif (
                multi_article_page
                and run >= long_run
                and _cosine(bag, article_bag, idf) < cohesion_threshold
            ):
                # Articles that use sub-headings use them every few paragraphs; a heading after
                # a long unbroken run, on a different subject, is the next article's headline.
                starts_new = True
        if starts_new:
            title = heading.text.strip() if heading is not None else None
            articles.append((title, list(section.body)))
            article_bag = Counter(bag)
        else:
            assert heading is not None
            articles[-1][1].extend([heading, *section.body])
            article_bag.update(bag)
        run = len(section.body)
    return articles


# --- Reading pages -------------------------------------------------------------------------

_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "tr",
    "section",
    "article",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "title",
    "figcaption",
    "pre",
    "table",
    "ul",
    "ol",
    "header",
}
_SKIP_TAGS = {
    "script",
    "style",
    "nav",
    "footer",
    "aside",
    "form",
    "noscript",
    "svg",
    "iframe",
    "button",
    "select",
    "template",
}


class _HTMLText(HTMLParser):
    """Collect visible block text from HTML, marking headings; skips scripts, navs and forms."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, bool]] = []
        self._buf: list[str] = []
        self._skip = 0
        self._heading = False
        self.title: str | None = None
        self._in_title = False

    def _flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._buf)).strip()
        if text:
            self.blocks.append((text, self._heading))
        self._buf = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _BLOCK_TAGS:
            self._flush()
            self._heading = tag in {"h1", "h2", "h3", "h4", "h5", "h6"}

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in _BLOCK_TAGS:
            self._flush()
            self._heading = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = (self.title or "") + data.strip()
        elif not self._skip:
            self._buf.append(data)


def _cut_at_space(text: str, limit: int) -> int:
    """Return where to cut ``text`` to at most ``limit`` characters: at a space near the limit.

    The cut lies at the last space, tab or line break in the final tenth before ``limit``, or at
    ``limit`` itself when there is none (a text without spaces).
    """
    if len(text) <= limit:
        return len(text)
    floor = limit - limit // 10
    best = max(text.rfind(ch, floor, limit + 1) for ch in " \n\t")
    return best if best > 0 else limit


def paragraphs_from_text(
    text: str, *, markdown: bool = False, max_chars: int | None = None
) -> list[Paragraph]:
    """Cut plain text into paragraphs: one per non-blank line, noting blank spacer lines.

    A line holding only whitespace (often a non-breaking space from a web page) is a spacer, a
    layout break stronger than an empty line. A line longer than ``max_chars`` is cut there (at
    a space near it); the paragraph's ``chars_cut`` says how much was cut.
    """
    paragraphs: list[Paragraph] = []
    spacer = False
    for raw in text.splitlines():
        if not raw or raw.isspace():
            # An empty line separates paragraphs; a line of only spaces is a layout spacer.
            spacer = spacer or bool(raw)
            continue
        cut = 0
        if max_chars is not None and len(raw) > max_chars:
            end = _cut_at_space(raw, max_chars)
            cut, raw = len(raw) - end, raw[:end]
        # One regex pass, not " ".join(raw.split()) (same result): no list of every word.
        line = _WHITESPACE.sub(" ", raw).strip()
        hint = False
        if markdown:
            m = re.match(r"^#{1,6}\s+(.*)$", line)
            if m:
                line, hint = m.group(1).strip(), True
            line = _MD_EMPHASIS.sub(r"\1", line)
            line = _MD_LINK.sub(r"\1", line)
        paragraphs.append(Paragraph(line, spacer_before=spacer, heading_hint=hint, chars_cut=cut))
        spacer = False
    return paragraphs


def paragraphs_from_html(
    raw: str, *, max_chars: int | None = None
) -> tuple[list[Paragraph], str | None]:
    """Extract visible paragraphs (and the ``<title>``) from an HTML page.

    A block longer than ``max_chars`` is cut there, as in :func:`paragraphs_from_text`.
    """
    # A marked section ("<![CDATA[", "<![if") is a bogus comment up to the next ">" in HTML,
    # as browsers read it; Python's html.parser instead asserts on a malformed one (one
    # "<![ x ]>" stopped the run) and rescans the rest of the page for each unclosed one.
    raw = raw.replace("<![", "<!_[")
    last_close = raw.rfind("-->")
    if raw.find("<!--", last_close + 1 if last_close >= 0 else 0) >= 0:
        # A comment opened after the last "-->" never closes; html.parser rescans the rest of
        # the page for each one (quadratic: 136 s for 1 MB of "<!-- a>"). It reads them as
        # text in the end anyway, so they are made text at once.
        start = last_close + 3 if last_close >= 0 else 0
        raw = raw[:start] + raw[start:].replace("<!--", "&lt;!--")
    if next(itertools.islice(_UNCLOSED_LT.finditer(raw), MAX_UNCLOSED_LT, None), None):
        # Python's html.parser rescans the rest of the page for each "<" that opens no
        # complete tag, so thousands of them take minutes (quadratic); on such a page they are
        # read as text. A normal page has few (an attribute value or a script holding "<").
        raw = _UNCLOSED_LT.sub("&lt;", raw)
    parser = _HTMLText()
    try:
        parser.feed(raw)
        parser.close()
    except Exception as exc:  # html.parser asserts on some malformed markup
        raise _Unusable(f"cannot parse the HTML ({type(exc).__name__}: {str(exc)[:100]})") from None
    parser._flush()
    paras = []
    for text, heading in parser.blocks:
        cut = 0
        if max_chars is not None and len(text) > max_chars:
            end = _cut_at_space(text, max_chars)
            cut, text = len(text) - end, text[:end]
        paras.append(Paragraph(html.unescape(text), heading_hint=heading, chars_cut=cut))
    return paras, parser.title


def _article_id(path: str, index: int, text: str) -> str:
    digest = hashlib.sha1(f"{path}\0{index}\0{text}".encode()).hexdigest()[:12]
    return digest


def _utf16(data: bytes) -> str | None:
    """Name the codec of UTF-16 text (by its BOM, or every other byte zero), else ``None``."""
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    sample = data[:4096]
    half = len(sample) // 2
    if half < 8:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_NON_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")


class _Utf8Count:
    """Count, over a byte stream, the bytes that are not UTF-8 and the characters that are.

    Decides the encoding of text that does not decode as UTF-8: one stray byte in a UTF-8
    file (more valid non-ASCII characters than invalid bytes) is replaced with U+FFFD, not
    taken as a sign that the whole file is Windows-1252, which would garble every other
    non-ASCII character (and can drop the article: a ``©`` from ``’`` looks like a photo
    credit).
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.invalid = 0
        self.valid_non_ascii = 0

    def update(self, data: bytes, final: bool = False) -> None:
        text = self._decoder.decode(data, final=final)
        if text.isascii():
            return
        self.invalid += sum(1 for _ in _ESCAPED_BYTE.finditer(text))
        self.valid_non_ascii += sum(1 for _ in _NON_ASCII.finditer(text))

    def mostly_utf8(self, bom: bool) -> bool:
        """Whether the text is UTF-8 with a few bad bytes (a UTF-8 BOM says so on its own)."""
        return bom or self.valid_non_ascii > self.invalid

    def warn(self, path: Path, report: IngestReport) -> None:
        report.warn(
            f"{path}: {self.invalid} byte(s) are not valid UTF-8 in otherwise UTF-8 text; "
            "replaced with U+FFFD."
        )


def _decode(data: bytes, path: Path, report: IngestReport) -> str:
    """Decode a text file: UTF-8, UTF-16 (with or without BOM), else Windows-1252 with a warning.

    UTF-8 text holding a few bytes that are not UTF-8 keeps UTF-8, those bytes replaced (see
    :class:`_Utf8Count`).

    Raises:
        _Unusable: For a known binary format or bytes that no encoding accepts.
    """
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            raise _Unusable(f"binary file ({kind}), not text")
    for encoding in (_utf16(data), "utf-8-sig"):
        if encoding is None:
            continue
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    count = _Utf8Count()
    count.update(data, final=True)
    if count.mostly_utf8(bom=data.startswith(codecs.BOM_UTF8)):
        count.warn(path, report)
        return data.decode("utf-8-sig", "replace")
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise _Unusable("cannot decode the file as UTF-8 or Windows-1252 text") from None
    report.warn(f"{path}: not valid UTF-8; decoded as Windows-1252.")
    return text


# Unicode's stream-safe limit (UAX #15): no more than 30 combining marks in a row. Longer runs
# ("Zalgo" text) only make normalisation quadratic: 200,000 alternating marks took minutes.
MAX_COMBINING_RUN = 30
_COMBINING_RUN = regex.compile(rf"\p{{Mn}}{{{MAX_COMBINING_RUN + 1},}}")


def _remove_controls(text: str, path: str, report: IngestReport) -> str:
    """Remove control characters (not tabs or line breaks), counting them per file.

    C1 controls that stand for Windows-1252 punctuation are replaced by it (counted apart).
    Runs of more than ``MAX_COMBINING_RUN`` combining marks are cut to that many (counted).
    """
    text, n = _C1.subn(lambda m: _C1_AS_CP1252[m.group(0)], text)
    if n:
        report.control_characters_replaced[path] += n
    text, n = _CONTROL.subn("", text)
    if n:
        report.control_characters[path] += n
    if not text.isascii():
        text, n = _COMBINING_RUN.subn(lambda m: m.group(0)[:MAX_COMBINING_RUN], text)
        if n:
            report.combining_runs_cut[path] += n
    return text


def page_to_articles(
    paragraphs: list[Paragraph],
    *,
    path: str,
    page_title: str | None,
    rules: dict[str, bool],
    report: IngestReport,
    max_chars: int = MAX_ARTICLE_CHARS,
) -> list[dict[str, Any]]:
    """Clean one page and split it into article records (``title`` and ``text``).

    The title is kept as the first paragraph of ``text``: headlines carry stance too. A text
    longer than ``max_chars`` is cut there (at a space near it); such a record holds the
    uncut length in ``truncated_from``.
    """
    counts: Counter[str] = Counter()
    cleaned, markers = remove_boilerplate(paragraphs, rules, counts)
    report.boilerplate.update(counts)
    records = []
    for title, body in split_articles(cleaned, end_markers=markers):
        lines = [p.text.strip() for p in body if p.text.strip()]
        if not lines:
            continue
        title = title or page_title
        if title:
            text = "\n\n".join([title, *lines])
        else:
            # No headline on the page: show the opening words as the title, keep text as is.
            words = lines[0].split(maxsplit=12)
            title = " ".join(words[:12]) + (" …" if len(words) > 12 else "")
            text = "\n\n".join(lines)
        record: dict[str, Any] = {"title": title, "text": text}
        cut = sum(p.chars_cut for p in body)
        if cut or len(text) > max_chars:
            record["truncated_from"] = len(text) + cut
            record["text"] = text[: _cut_at_space(text, max_chars)].rstrip()
        records.append(record)
    if len(records) > 1:
        report.pages_split[path] = len(records)
    return records


def _read_text_file(
    path: Path, rules: dict[str, bool], report: IngestReport, max_chars: int
) -> list[dict[str, Any]]:
    """Read one page into article records.

    Raises:
        _Unusable: When the file is binary, undecodable, empty or all boilerplate.
    """
    data = path.read_bytes()
    if not data.strip():
        raise _Unusable("the file is empty")
    raw = _decode(data, path, report)
    del data
    size = len(raw)
    n_controls = len(_CONTROL.findall(raw)) if _CONTROL.search(raw) else 0
    if n_controls > _BINARY_CONTROL_SHARE * size:
        raise _Unusable(
            f"binary file, not text: {n_controls / size:.0%} of its characters are control "
            "characters"
        )
    raw = _remove_controls(raw, str(path), report)
    if not raw or raw.isspace():
        raise _Unusable("the file is empty")
    suffix = path.suffix.lower()
    page_title = None
    if suffix in (".html", ".htm"):
        paragraphs, page_title = paragraphs_from_html(raw, max_chars=max_chars)
    else:
        paragraphs = paragraphs_from_text(
            raw, markdown=suffix in (".md", ".markdown"), max_chars=max_chars
        )
    del raw
    records = page_to_articles(
        paragraphs,
        path=str(path),
        page_title=page_title,
        rules=rules,
        report=report,
        max_chars=max_chars,
    )
    if not records:
        raise _Unusable("no article text left after removing boilerplate")
    for r in records:
        r.update(path=str(path), source=None, date=None, url=None)
    return records


def _clean_table_text(text: str, rules: dict[str, bool], report: IngestReport) -> str:
    """Apply the boilerplate rules to one table row's text (rows are never split)."""
    counts: Counter[str] = Counter()
    kept, _ = remove_boilerplate(paragraphs_from_text(text), rules, counts)
    report.boilerplate.update(counts)
    return "\n\n".join(p.text for p in kept)


def _present(value: Any) -> bool:
    """Whether a table cell holds a value (not ``None``, NaN or an empty string)."""
    if value is None or (isinstance(value, float) and value != value):
        return False
    if isinstance(value, str):
        return value != ""
    return type(value).__name__ not in ("NAType", "NaTType")  # pandas' missing values


class _RowProblems:
    """The skipped rows of one table: recorded when the table is done, at most ``MAX_LISTED``.

    Buffered so that a table none of whose rows has a ``text`` field is reported once, as a
    table without ``text``, rather than once per row.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: list[tuple[str, dict[str, int]]] = []
        self.more: Counter[str] = Counter()

    def __call__(self, reason: str, **where: int) -> None:
        if len(self.entries) < MAX_LISTED:
            self.entries.append((reason, where))
        else:
            self.more[reason] += 1

    @property
    def count(self) -> int:
        return len(self.entries) + sum(self.more.values())

    def first(self) -> str:
        reason, where = self.entries[0]
        return " ".join(f"{k} {v}:" for k, v in where.items()) + f" {reason}"

    def flush(self, report: IngestReport) -> None:
        if not self.entries:
            return
        report.rows_skipped[self.path] += self.count
        for reason, where in self.entries:
            report.skip(self.path, reason, **where)
        for reason, n in self.more.items():
            report.skip(self.path, f"{n} more row(s): {reason}", count=n)


_SURROGATE = re.compile("[\ud800-\udfff]")
# The JSON escape of a surrogate: only a line holding one can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _replace_surrogates(obj: dict[str, Any]) -> tuple[dict[str, Any], int]:
    r"""Replace lone surrogates in a JSON object's keys and string values with U+FFFD.

    JSON may escape half of a UTF-16 pair (``"\ud800"``); Python decodes it to a string that
    cannot be written as UTF-8 (hashing, Parquet), so it would stop the run far from the file.
    Nested values are kept as they are: they reach the tables only as their ``repr``.
    """
    n = 0

    def fix(value: Any) -> Any:
        nonlocal n
        if isinstance(value, str):
            value, k = _SURROGATE.subn("\ufffd", value)
            n += k
        return value

    fixed = {fix(k): fix(v) for k, v in obj.items()}
    return fixed, n


def _warn_surrogates(path: Path, n: int, report: IngestReport) -> None:
    """Say how many lone surrogates :func:`_replace_surrogates` replaced in a file."""
    if n:
        report.warn(
            f"{str(path)!r}: {n} lone surrogate escape(s) (\\ud800-\\udfff, half of a "
            "UTF-16 pair) replaced with U+FFFD"
        )


def _table_record(
    path: Path,
    index: int,
    row: dict[str, Any],
    *,
    rules: dict[str, bool],
    report: IngestReport,
    problems: _RowProblems,
    where: dict[str, int],
    max_chars: int,
    stored_chars: int | None = None,
) -> dict[str, Any] | None:
    """Turn one table row into an article record, or note why it yields none.

    ``stored_chars`` is the length of a text that the reader has already cut (to twice
    ``max_chars``); a text that long is cut before it is cleaned, so that the work per row does
    not grow with what is thrown away.
    """
    text = row.get("text")
    if not _present(text) or (isinstance(text, str) and not text.strip()):
        problems("empty or missing 'text'", **where)
        return None
    if not isinstance(text, str):
        problems(f"'text' is not a string (got {type(text).__name__})", **where)
        return None
    if stored_chars is None and len(text) > 2 * max_chars:
        stored_chars = len(text)
    if stored_chars is not None:
        text = text[: 2 * max_chars]
    text, uncut = _clean_cell(text, str(path), rules, report, max_chars, stored_chars)
    if not text:
        problems("no article text left after removing boilerplate", **where)
        return None
    row = {k: _capped(k, v, report) for k, v in row.items() if k != "text"}
    title = row.get("title")
    source = row.get("source")
    date = row.get("date")
    rec: dict[str, Any] = {
        "path": f"{path}#row{index}",
        "title": _remove_controls(str(title).strip(), str(path), report) if _present(title) else "",
        "text": text.strip(),
        "source": (str(source).strip() or None) if _present(source) else None,
        "date": (str(date).strip() or None) if _present(date) else None,
        "url": row.get("url"),
    }
    if uncut > max_chars:
        rec["truncated_from"] = uncut
    extra = {k: v for k, v in row.items() if k not in rec}
    if extra:
        rec["extra"] = extra
    return rec


_MEMO_MIN_CHARS = 10_000  # texts at least this long are cleaned once per file and repeat
_MEMO_SIZE = 8
_CELL_COUNTS = ("control_characters", "control_characters_replaced", "combining_runs_cut")


def _clean_cell(
    text: str,
    path: str,
    rules: dict[str, bool],
    report: IngestReport,
    max_chars: int,
    stored_chars: int | None,
) -> tuple[str, int]:
    """Remove controls, cut and clean one row's text; return it and its length before the cut.

    A long text repeated in one table (a Parquet dictionary holds one value for many rows) is
    cleaned once: the result and its counts are replayed, so the report is as if each row had
    been cleaned.
    """
    key = (path, text, stored_chars) if len(text) >= _MEMO_MIN_CHARS else None
    if key is not None and key in report.memo:
        cleaned, uncut, replay = report.memo[key]
        report.boilerplate.update(replay["boilerplate"])
        for name in _CELL_COUNTS:
            if replay[name]:
                getattr(report, name)[path] += replay[name]
        return cleaned, uncut
    boilerplate_before = report.boilerplate.copy()
    before = {name: getattr(report, name)[path] for name in _CELL_COUNTS}
    cleaned = _remove_controls(text, path, report)
    uncut = len(cleaned) if stored_chars is None else stored_chars
    if uncut > max_chars:
        cleaned = cleaned[: _cut_at_space(cleaned, max_chars)]
    cleaned = _clean_table_text(cleaned, rules, report)
    if key is not None:
        counts: dict[str, Any] = {
            name: getattr(report, name)[path] - before[name] for name in _CELL_COUNTS
        }
        counts["boilerplate"] = report.boilerplate - boilerplate_before
        if len(report.memo) >= _MEMO_SIZE:
            report.memo.pop(next(iter(report.memo)))
        report.memo[key] = (cleaned, uncut, counts)
    return cleaned, uncut


def _capped(column: str, value: Any, report: IngestReport) -> Any:
    """Cut a string value of a column other than ``text`` at ``MAX_FIELD_CHARS``, counted."""
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
        report.long_values_cut[column] += 1
        return value[:MAX_FIELD_CHARS]
    return value


def _check_columns(path: Path, columns: list[str]) -> None:
    if "text" not in columns:
        raise _Unusable(f"the table has no 'text' column; got columns {columns}")


def _warn_duplicate_columns(path: Path, columns: list[str], report: IngestReport) -> None:
    repeated = sorted(name for name, n in Counter(columns).items() if n > 1)
    if repeated:
        report.warn(
            f"{path}: column(s) {repeated} appear more than once; in each row the first "
            "non-empty value is read."
        )


def _bounded_lines(fh: Any) -> Iterator[bytes | None]:
    """Yield a binary file's lines, or ``None`` for a line longer than ``MAX_LINE_BYTES``.

    A long line is read past in chunks and never held whole, so a small gzip file that
    expands to one endless line costs bounded memory.
    """
    while True:
        line = fh.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = fh.readline(MAX_LINE_BYTES)
        yield None


def _read_jsonl(
    path: Path, rules: dict[str, bool], report: IngestReport, max_chars: int
) -> list[dict[str, Any]]:
    """Read a JSONL (or gzipped JSONL) table line by line; bad lines are skipped.

    A gzip stream that ends early (a truncated download) keeps the lines read before the break.
    """
    problems = _RowProblems(str(path))
    records: list[dict[str, Any]] = []
    index = lineno = objects = surrogates = 0
    has_text = False
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    broken: str | None = None
    try:
        with opener(path, "rb") as fh:
            if utf16 := _utf16(fh.peek(4096)[:4096]):
                fh = codecs.EncodedFile(fh, "utf-8", utf16, errors="replace")  # UTF-8 lines
            for lineno, raw in enumerate(_bounded_lines(fh), start=1):
                if raw is None:
                    index += 1
                    problems(f"line longer than {MAX_LINE_BYTES:,} bytes", line=lineno)
                    continue
                if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                if not raw.strip():
                    continue
                where = {"line": lineno}
                i, index = index, index + 1
                try:
                    obj = json.loads(raw)
                except json.JSONDecodeError as exc:
                    problems(f"invalid JSON ({exc.msg} at column {exc.colno})", **where)
                    continue
                except UnicodeDecodeError:
                    problems("the line is not UTF-8 text", **where)
                    continue
                except (ValueError, RecursionError) as exc:
                    # Nesting deeper than the parser's recursion limit, or an integer longer
                    # than Python converts (sys.get_int_max_str_digits).
                    problems(f"unreadable JSON ({type(exc).__name__})", **where)
                    continue
                if not isinstance(obj, dict):
                    problems(f"not a JSON object (got {type(obj).__name__})", **where)
                    continue
                objects += 1
                if _SURROGATE_ESCAPE.search(raw):
                    obj, n_surrogates = _replace_surrogates(obj)
                    surrogates += n_surrogates
                has_text = has_text or "text" in obj
                rec = _table_record(
                    path,
                    i,
                    obj,
                    rules=rules,
                    report=report,
                    problems=problems,
                    where=where,
                    max_chars=max_chars,
                )
                if rec is not None:
                    records.append(rec)
    except (EOFError, OSError, zlib.error) as exc:
        if not index:
            raise _Unusable(f"cannot read the file ({type(exc).__name__}: {exc})") from None
        broken = f"{type(exc).__name__}: {exc}"
    if objects and not has_text:
        raise _Unusable("no line has a 'text' field")
    problems.flush(report)
    _warn_surrogates(path, surrogates, report)
    if broken is not None:
        report.skip(
            str(path),
            f"the compressed data ends early or is corrupt ({broken}); the {len(records)} "
            f"article(s) read from the {lineno} lines before the break are kept",
            line=lineno + 1,
        )
    if not records:
        raise _Unusable(
            f"no usable line ({problems.first()})" if problems.count else "no line holds data"
        )
    return records


def _text_encoding(path: Path, report: IngestReport) -> tuple[str, str]:
    """Find a CSV's encoding and decoding error handler in streaming passes.

    UTF-16 by BOM or by its zero bytes; else UTF-8; else UTF-8 with a few bad bytes replaced
    (see :class:`_Utf8Count`); else Windows-1252.

    Raises:
        _Unusable: When neither UTF-8 nor Windows-1252 decodes the file.
    """
    with path.open("rb") as fh:
        head = fh.read(4096)
    if utf16 := _utf16(head):
        return utf16, "strict"
    if _decodes(path, "utf-8"):
        return "utf-8-sig", "strict"
    count = _Utf8Count()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            count.update(chunk)
    count.update(b"", final=True)
    if count.mostly_utf8(bom=head.startswith(codecs.BOM_UTF8)):
        count.warn(path, report)
        return "utf-8-sig", "replace"
    if _decodes(path, "cp1252"):
        report.warn(f"{path}: not valid UTF-8; decoded as Windows-1252.")
        return "cp1252", "strict"
    raise _Unusable("cannot decode the file as UTF-8 or Windows-1252 text")


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


# Fed to the CSV reader after the last line: it comes back as a record of its own, or at the
# end of a field when a quote opened earlier never closes (the reader then reads to the end).
_CSV_END = "\x1f\x1e end of file \x1e\x1f"


def _delimiter(first_line: str) -> str:
    """Return the delimiter that makes a ``text`` header column: ``,``, ``;``, tab or ``|``.

    Spreadsheets set to a European locale write ``;``; tab-separated tables are often named
    ``.csv``.
    """
    for delimiter in (",", ";", "\t", "|"):
        try:
            fields = next(csv.reader([first_line], delimiter=delimiter), [])
        except csv.Error:
            continue
        if "text" in fields:
            return delimiter
    return ","


def _csv_records(
    lines: Iterator[str], delimiter: str = ","
) -> Iterator[tuple[int, list[str] | None, str]]:
    """Yield ``(line, fields, problem)`` for each CSV record: fields, or ``None`` and why not.

    A stray quote at the start of a field makes Python's reader run on to the next quote:
    to the end of the file (silently merging every later row into one field: caught by the
    end marker landing inside it) or into a later row (caught when the record spans lines
    and has more fields than the header). The record's first line is reported and the
    lines after it are read again.
    """
    first_line = 1
    width = 0  # the header's number of fields
    again: deque[str] = deque()  # lines to read again, before the rest of the file
    while True:
        pending: list[str] = []  # the raw lines of the record being read

        def feed(pending: list[str] = pending) -> Iterator[str]:
            while again:
                pending.append(again.popleft())
                yield pending[-1]
            for line in lines:
                pending.append(line)
                yield line
            yield _CSV_END + "\n"

        reader = csv.reader(feed(), delimiter=delimiter)
        while True:
            before = reader.line_num
            line = first_line + before
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, None, f"malformed CSV ({exc})"
                if reader.line_num == before:
                    return  # nothing consumed: the rest of the file cannot be read
                pending.clear()
                continue
            if fields and fields[-1].rstrip("\r\n").endswith(_CSV_END):
                if len(fields) == 1 and fields[0].rstrip("\r\n") == _CSV_END:
                    return
                problem = "a quote opened in this row never closes"
            elif width and len(fields) > width and len(pending) > 1:
                problem = f"a quote opened in this row runs on over {len(pending)} lines"
            else:
                width = width or len(fields)
                yield line, fields, ""
                pending.clear()
                continue
            yield line, None, f"{problem}; the lines after it are read again"
            again.extendleft(reversed(pending[1:]))
            first_line = line + 1
            break


def _read_csv(
    path: Path, rules: dict[str, bool], report: IngestReport, max_chars: int
) -> list[dict[str, Any]]:
    """Read a CSV table row by row; a row with more fields than the header is skipped."""
    encoding, errors = _text_encoding(path, report)
    problems = _RowProblems(str(path))
    records: list[dict[str, Any]] = []
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a long article is not a broken row
    try:
        with path.open(newline="", encoding=encoding, errors=errors) as fh:
            delimiter = _delimiter(fh.readline(1 << 20))
            fh.seek(0)
            rows = _csv_records(iter(fh), delimiter)
            _, header, problem = next(rows, (1, None, "the file is empty"))
            if header is None:
                raise _Unusable(
                    problem
                    if problem == "the file is empty"
                    else f"cannot read the header ({problem})"
                )
            _check_columns(path, header)
            _warn_duplicate_columns(path, header, report)
            repeated = len(set(header)) < len(header)
            index = 0
            for line, fields, problem in rows:
                if fields is None:
                    problems(problem, line=line)
                    index += 1
                    continue
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # a blank line
                i, index = index, index + 1
                if len(fields) > len(header):
                    problems(f"{len(fields)} fields where the header has {len(header)}", line=line)
                    continue
                padded = [*fields, *[""] * (len(header) - len(fields))]
                rec = _table_record(
                    path,
                    i,
                    _row_of(header, padded, repeated=repeated),
                    rules=rules,
                    report=report,
                    problems=problems,
                    where={"line": line},
                    max_chars=max_chars,
                )
                if rec is not None:
                    records.append(rec)
    finally:
        csv.field_size_limit(previous_limit)
    problems.flush(report)
    return _usable(records, problems)


def _usable(records: list[dict[str, Any]], problems: _RowProblems) -> list[dict[str, Any]]:
    """Return a table's records, or say why it has none."""
    if not records:
        raise _Unusable(
            f"no usable row ({problems.first()})" if problems.count else "the table has no rows"
        )
    return records


def _read_parquet(
    path: Path, rules: dict[str, bool], report: IngestReport, max_chars: int
) -> list[dict[str, Any]]:
    """Read a Parquet table in batches of ``PARQUET_BATCH_ROWS`` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        # String columns are read as dictionaries, as most writers store them: a 1 KB file
        # can hold one 3 MB string a thousand times, and decoding each batch in full cost
        # gigabytes before the text was cut (see _arrow_cut).
        strings = [
            f.name
            for f in pf.schema_arrow
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        ]
        if strings:
            pf = pq.ParquetFile(path, read_dictionary=strings)
    except Exception as exc:
        raise _Unusable(
            f"cannot read the Parquet file ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    _check_columns(path, names)
    _warn_duplicate_columns(path, names, report)
    problems = _RowProblems(str(path))
    records: list[dict[str, Any]] = []
    index = 0
    columns = list(dict.fromkeys(c for c in names if not c.startswith("__index_level_")))
    broken = None
    unreadable: Counter[str] = Counter()
    try:
        for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            rows, stored = _arrow_rows(batch, unreadable, text_limit=2 * max_chars)
            for row, chars in zip(rows, stored, strict=True):
                i, index = index, index + 1
                rec = _table_record(
                    path,
                    i,
                    row,
                    rules=rules,
                    report=report,
                    problems=problems,
                    where={"row": i},
                    max_chars=max_chars,
                    stored_chars=chars,
                )
                if rec is not None:
                    records.append(rec)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        broken = f"{type(exc).__name__}: {str(exc)[:200]}"
    problems.flush(report)
    if unreadable:
        report.warn(
            f"{path}: {sum(unreadable.values())} cell(s) not readable as they are, read as "
            "text (invalid UTF-8 replaced with U+FFFD; dates out of range as written): "
            + ", ".join(f"{c} {n}" for c, n in sorted(unreadable.items()))
        )
    if broken is not None:
        if not records and not problems.count:
            raise _Unusable(f"the file is damaged at row {index} ({broken})")
        report.skip(
            str(path),
            f"the file is damaged after row {index} ({broken}); the rows before it are kept",
            row=index,
        )
    return _usable(records, problems)


def _arrow_cut(col: Any, limit: int) -> tuple[Any, list[int | None] | None]:
    """Cut the strings of an Arrow column (plain or dictionary) at ``limit`` characters.

    Returns the column and, if any string was cut, the stored lengths (``None`` for the values
    left whole); a dictionary column is cut once per distinct value.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    is_dict = pa.types.is_dictionary(col.type)
    values = col.dictionary if is_dict else col
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return col, None
    try:
        lengths = pc.utf8_length(values)
        longest = pc.max(lengths).as_py()
    except Exception:  # bytes that are not UTF-8: converted cell by cell in _arrow_rows
        return col, None
    if longest is None or longest <= limit:
        return col, None
    cut = pc.utf8_slice_codeunits(values, 0, limit)
    if is_dict:
        lengths = pc.take(lengths, col.indices)
        col = pa.DictionaryArray.from_arrays(col.indices, cut)
    else:
        col = cut
    return col, [n if n is not None and n > limit else None for n in lengths.to_pylist()]


def _arrow_rows(
    batch: Any, unreadable: Counter[str], *, text_limit: int
) -> tuple[list[dict[str, Any]], list[int | None]]:
    """Convert an Arrow record batch to Python rows, one bad cell costing only itself.

    ``to_pylist`` fails for a whole batch on one cell that has no Python value: a string that
    is not UTF-8, a date or timestamp past year 9999, a duration past the C range. Such a
    column is converted cell by cell instead; a bad cell is read as text (invalid bytes
    replaced with U+FFFD, a date written by Arrow) or, failing that, left empty. The cells
    read so are counted per column in ``unreadable``.

    Strings longer than ``text_limit`` (``text``) or ``MAX_FIELD_CHARS`` (other columns) are
    cut before they become Python strings; the second list holds each row's stored ``text``
    length where it was cut (else ``None``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns: list[tuple[str, list[Any]]] = []
    stored: list[int | None] = [None] * batch.num_rows
    for name, whole in zip(batch.schema.names, batch.columns, strict=True):
        col, lengths = _arrow_cut(whole, text_limit if name == "text" else MAX_FIELD_CHARS)
        if lengths is not None and name == "text":
            stored = [a if a is not None else b for a, b in zip(lengths, stored, strict=True)]
        try:
            columns.append((name, col.to_pylist()))
            continue
        except Exception:  # pyarrow raises several types: convert cell by cell below
            pass
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        values = []
        for i in range(len(col)):
            try:
                values.append(col[i].as_py())
                continue
            except Exception:
                unreadable[name] += 1
            cell = col.slice(i, 1)
            try:
                if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                    binary = (
                        pa.large_binary() if pa.types.is_large_string(col.type) else pa.binary()
                    )
                    value = cell.view(binary)[0].as_py().decode("utf-8", "replace")
                else:
                    value = pc.cast(cell, pa.string())[0].as_py()
            except Exception:
                value = None
            values.append(value)
        columns.append((name, values))
    return _merge_duplicates(columns), stored


def _merge_duplicates(columns: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """Build rows from named columns (see :func:`_row_of` for repeated names)."""
    names = [name for name, _ in columns]
    repeated = len(set(names)) < len(names)
    return [
        _row_of(names, values, repeated=repeated)
        for values in zip(*(v for _, v in columns), strict=True)
    ]


def _row_of(names: list[str], values: Any, *, repeated: bool) -> dict[str, Any]:
    """One row as a dict; of columns sharing a name, the first present value wins.

    A table can hold two ``text`` columns (an export that appended one); reading only the last
    would lose every row whose text is in the first.
    """
    if not repeated:
        return dict(zip(names, values, strict=True))
    row: dict[str, Any] = {}
    for name, value in zip(names, values, strict=True):
        if name not in row or (not _present(row[name]) and _present(value)):
            row[name] = value
    return row


def _read_json(
    path: Path, rules: dict[str, bool], report: IngestReport, max_chars: int
) -> list[dict[str, Any]]:
    """Read a ``.json`` table: an array of objects, or an object of columns (read whole).

    UTF-8 (with or without BOM) or UTF-16; parsed by Python's ``json``, as JSONL is, so values
    read the same in both (pandas' parser refused integers past 64 bits and a BOM).
    """
    import pandas as pd

    data = path.read_bytes()
    try:
        doc = json.loads(data.decode(_utf16(data) or "utf-8-sig"))
    except UnicodeDecodeError:
        raise _Unusable("the file is not UTF-8 or UTF-16 text") from None
    except json.JSONDecodeError as exc:
        raise _Unusable(
            f"invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise _Unusable(f"unreadable JSON ({type(exc).__name__})") from None
    del data
    if isinstance(doc, dict):  # columns: {"text": [...], ...} or {"text": {"0": ...}, ...}
        try:
            doc = pd.DataFrame(doc).to_dict("records")
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else ""
            raise _Unusable(f"cannot read the table ({type(exc).__name__}: {message})") from None
    if not isinstance(doc, list):
        raise _Unusable(f"expected an array of objects, got a JSON {type(doc).__name__}")
    _check_columns(
        path, list(dict.fromkeys(k for row in doc if isinstance(row, dict) for k in row))
    )
    problems = _RowProblems(str(path))
    records = []
    surrogates = 0
    for i, row in enumerate(doc):
        if not isinstance(row, dict):
            problems(f"not a JSON object (got {type(row).__name__})", row=i)
            continue
        row, n = _replace_surrogates(row)
        surrogates += n
        rec = _table_record(
            path,
            i,
            row,
            rules=rules,
            report=report,
            problems=problems,
            where={"row": i},
            max_chars=max_chars,
        )
        if rec is not None:
            records.append(rec)
    problems.flush(report)
    _warn_surrogates(path, surrogates, report)
    return _usable(records, problems)


def _read_table(
    path: Path, rules: dict[str, bool], report: IngestReport, max_chars: int
) -> list[dict[str, Any]]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return _read_parquet(path, rules, report, max_chars)
    if name.endswith(".csv"):
        return _read_csv(path, rules, report, max_chars)
    if name.endswith(".json"):
        return _read_json(path, rules, report, max_chars)
    return _read_jsonl(path, rules, report, max_chars)


def _readable_path(path: Path) -> str:
    r"""Return a path whose undecodable bytes are written as ``\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _folder_files(
    folder: Path, report: IngestReport, *, exclude: str | Path | None = None
) -> list[Path]:
    """List a folder's entries that are not folders, at any depth, in path order.

    Hidden entries (a name starting with ``.``: ``.DS_Store``, ``.git``) and the folder
    ``exclude`` (the run's own output, when it lies inside an input folder) are left out,
    named in a warning. Links to folders are not followed (a link can loop back to its parent), and a
    subfolder that cannot be listed is not silently dropped: both are skipped and named.
    """
    found: list[Path] = []
    skip_folder = Path(exclude).resolve() if exclude is not None else None
    hidden: list[str] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(Path(e.path) for e in it)
        except OSError as exc:
            report.skip(_readable_path(current), f"cannot list the folder ({exc.strerror})")
            continue
        subfolders = []
        for entry in entries:
            try:
                entry.lstat()
            except OSError as exc:  # a path past PATH_MAX, a file gone since listing
                report.skip(_readable_path(entry), f"cannot read the entry ({exc.strerror})")
                continue
            if entry.name.startswith("."):
                hidden.append(_readable_path(entry))
            elif skip_folder is not None and entry.is_dir() and entry.resolve() == skip_folder:
                report.warn(f"{_readable_path(entry)}: the run's own output folder, not read.")
            elif entry.is_symlink() and entry.is_dir():
                report.skip(
                    _readable_path(entry),
                    "a link to a folder, not followed (name the folder itself to read it)",
                )
            elif entry.is_dir():
                subfolders.append(entry)
            else:
                found.append(entry)
        pending.extend(reversed(subfolders))  # depth first, in path order
    if hidden:
        report.warn(
            f"{len(hidden)} hidden entr{'y' if len(hidden) == 1 else 'ies'} (name starting with "
            f"'.') not read: {hidden[:5]}{' ...' if len(hidden) > 5 else ''}"
        )
    return sorted(found)


def _collect_paths(
    inputs: list[str | Path], report: IngestReport, *, exclude: str | Path | None = None
) -> list[tuple[Path, bool]]:
    """List the files to read, each with whether it was named directly (not found in a folder).

    Raises:
        IngestError: For an input that does not exist or a file named with an unsupported type.
    """
    paths: list[tuple[Path, bool]] = []
    expected = ", ".join(TEXT_SUFFIXES + TABLE_SUFFIXES)
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise IngestError(f"Input {str(p)!r} does not exist.")
        if _SURROGATE.search(str(p)):
            raise IngestError(f"Input {_readable_path(p)!r}: the path is not valid UTF-8.")
        if p.is_dir():
            for f in _folder_files(p, report, exclude=exclude):
                if not f.exists():
                    report.skip(
                        _readable_path(f), "a link whose target does not exist (or a link loop)"
                    )
                elif not f.is_file():
                    # A named pipe or socket: reading it would wait for a writer forever.
                    report.skip(_readable_path(f), "not a regular file (a pipe, socket or device)")
                elif _SURROGATE.search(str(f)):
                    # Bytes the file system's encoding cannot decode: the name could not be
                    # written to the run's tables, so the file is skipped, named readably.
                    report.skip(_readable_path(f), "the file name is not valid UTF-8")
                elif f.name.lower().endswith(TEXT_SUFFIXES + TABLE_SUFFIXES):
                    paths.append((f, False))
                else:
                    report.skip(
                        str(f),
                        f"unsupported file type {f.suffix or '(none)'}; expected one of {expected}",
                    )
        else:
            if not p.is_file():
                # /dev/zero would fill memory, a pipe would wait for a writer forever
                raise IngestError(
                    f"Input {str(p)!r} is not a regular file (a pipe, socket or device)."
                )
            if not p.name.lower().endswith(TEXT_SUFFIXES + TABLE_SUFFIXES):
                raise IngestError(
                    f"Input {str(p)!r} has unsupported type {p.suffix or '(none)'}; expected one "
                    f"of {expected}."
                )
            paths.append((p, True))
    return paths


def _sources_table(p: Path) -> tuple[pd.DataFrame, str]:
    """Read a sources CSV as strings: the table and its key column (``file`` or ``path``).

    A line whose first cell starts with ``#`` is a comment; a ``#`` inside a value is kept
    (``C# Weekly`` used to become ``C``).

    Raises:
        IngestError: When the file is missing, unreadable, or lacks the columns.
    """
    import pandas as pd

    if not p.is_file():
        raise IngestError(f"Sources file {str(p)!r} does not exist or is not a file.")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise IngestError(f"Cannot read sources file {str(p)!r}: {exc}") from None
    key = "file" if "file" in df.columns else "path" if "path" in df.columns else None
    if key is None or "source" not in df.columns:
        raise IngestError(
            f"Sources file {str(p)!r} needs columns 'file' and 'source'. Got {list(df.columns)} instead."
        )
    df.index = df.index + 2  # the line numbers (after the header) of rows without line breaks
    df = df[~df.iloc[:, 0].str.lstrip().str.startswith("#")]
    df = df[df[key].str.strip() != ""]
    return df, key


def read_sources(path: str | Path) -> dict[str, str]:
    """Read a sources file: CSV with columns ``file`` (or ``path``) and ``source``.

    Raises:
        IngestError: When the file is missing, unreadable, lacks the columns, or gives one file
            two different sources.
    """
    p = Path(path)
    df, key = _sources_table(p)
    mapping: dict[str, str] = {}
    line_of: dict[str, int] = {}
    for line, file, source in zip(df.index, df[key], df["source"], strict=True):
        file, source = file.strip(), source.strip() or "unknown"
        if file in mapping and mapping[file] != source:
            raise IngestError(
                f"Sources file {str(p)!r} gives {file!r} two sources: {mapping[file]!r} (line "
                f"{line_of[file]}) and {source!r} (line {line})."
            )
        mapping[file], line_of[file] = source, line
    return mapping


# Characters that change how a name shows (bidi overrides reverse what follows them) or do not
# show at all (zero-width): a source named by them alone looked blank, or like another source.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def _source_name(name: Any) -> str:
    """Return an outlet's name as the tables hold it: NFC, visible characters, else ``unknown``.

    ``Café`` typed with a combining accent and with a precomposed one is one outlet.
    """
    if not name:
        return "unknown"
    name = _INVISIBLE.sub("", unicodedata.normalize("NFC", str(name))).strip()
    return name or "unknown"


def normalise_text(text: str) -> str:
    """Return the form in which two articles count as the same text (NFC, single spaces).

    Case, punctuation and words are kept: only exact duplicates (the same file twice, the same
    row exported twice, a page re-saved with other line breaks) compare equal.
    """
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _drop_duplicates(rows: list[dict[str, Any]], report: IngestReport) -> list[dict[str, Any]]:
    """Keep the first of articles with the same source and normalised text (input order).

    The same text under two sources is kept for both: a syndicated wire story is each outlet's
    choice to run it, and comparing outlets is the point.
    """
    first: dict[tuple[str, bytes], str] = {}
    texts: dict[bytes, set[str]] = {}
    kept = []
    digests: dict[str, bytes] = {}  # a text repeated verbatim is normalised once
    for row in rows:
        digest = digests.get(row["text"])
        if digest is None:
            digest = hashlib.sha1(normalise_text(row["text"]).encode()).digest()
            digests[row["text"]] = digest
        key = (row["source"], digest)
        if key in first:
            report.duplicates.append(
                {"path": row["path"], "duplicate_of": first[key], "source": row["source"]}
            )
            continue
        first[key] = row["path"]
        texts.setdefault(digest, set()).add(row["source"])
        kept.append(row)
    if report.duplicates:
        listed = [d["path"] for d in report.duplicates[:5]]
        report.warn(
            f"Dropped {len(report.duplicates)} exact duplicate article(s) (same source and the "
            f"same text up to whitespace), keeping the first: {listed}"
            f"{' ...' if len(report.duplicates) > 5 else ''}"
        )
    shared = sum(1 for s in texts.values() if len(s) > 1)
    if shared:
        report.warn(
            f"{shared} article text(s) appear under more than one source; each source keeps its "
            "copy."
        )
    return kept


def _check_dates(rows: list[dict[str, Any]], report: IngestReport) -> None:
    """Count and name the article dates that do not parse (they drop out of the trends).

    The parse is :func:`stance.schema.parse_dates`, the one the comparison's trends use, so a
    date named here is exactly one the trends skip.
    """
    dated = [(row["path"], row["date"]) for row in rows if row.get("date") is not None]
    if not dated:
        return
    values = list(dict.fromkeys(str(v) for _, v in dated))
    usable = parse_dates(values).notna()
    bad = {v for v, ok in zip(values, usable, strict=True) if not ok}
    if not bad:
        return
    misses = [(p, str(v)) for p, v in dated if str(v) in bad]
    report.unparsed_date_count = len(misses)
    report.unparsed_dates = [{"path": p, "value": v} for p, v in misses[:MAX_LISTED]]
    examples = ", ".join(f"{p}: {v!r}" for p, v in misses[:5])
    report.warn(
        f"{len(misses)} article date(s) cannot be read as dates and will be missing from the "
        f"trends (the articles are kept): {examples}{' ...' if len(misses) > 5 else ''}"
    )


def ingest(
    inputs: list[str | Path],
    *,
    sources: str | Path | dict[str, str] | None = None,
    rules: dict[str, bool] | None = None,
    strict: bool = False,
    max_article_chars: int | None = None,
    exclude: str | Path | None = None,
) -> tuple[pd.DataFrame, IngestReport]:
    """Read every input into an articles table.

    Problems cost only what they touch. Inside a folder an unusable file (binary, undecodable,
    empty, a table without ``text``) is skipped; in a table a bad line or row (invalid JSON,
    too many CSV fields, empty ``text``) is skipped; a truncated ``.jsonl.gz`` keeps the lines
    before the break. Each skip is recorded with its reason and line in ``report.skipped``.
    Control characters are removed (counted per file), articles longer than
    ``max_article_chars`` are cut (listed), exact duplicates with the same source are dropped
    (listed), and dates that do not parse are counted and named.

    Args:
        inputs: Folders and files (text pages or tables).
        sources: A sources CSV (``file,source``) or a mapping from file name to outlet.
        rules: Boilerplate rules to switch on or off (all on by default).
        strict: Raise at the first skip (a file, row or line that yields no article, or the
            lost end of a truncated file) or truncated article, instead of recording it.
        max_article_chars: Longest article text kept; ``None`` means ``MAX_ARTICLE_CHARS``.
        exclude: A folder not to read inside the input folders (the run's own ``--out``).

    Returns:
        The articles table (columns of ``schema.ARTICLE_COLUMNS`` plus any extra table columns)
        and an :class:`IngestReport`.

    Raises:
        IngestError: When the sources file or an input named directly cannot be used at all
            (missing, unsupported, unreadable, or yielding no article), when no article is left,
            or in strict mode at the first skip or truncation.
        ValueError: When ``max_article_chars`` is not a positive int.
    """
    import pandas as pd

    if max_article_chars is None:
        max_article_chars = MAX_ARTICLE_CHARS
    if (
        isinstance(max_article_chars, bool)
        or not isinstance(max_article_chars, int)
        or (max_article_chars < 1)
    ):
        raise ValueError(
            "The 'max_article_chars' parameter must be a positive int. Got "
            f"{max_article_chars!r} instead."
        )
    report = IngestReport(strict=strict, max_article_chars=max_article_chars)
    rules = {r: True for r in RULES} | dict(rules or {})
    source_map = read_sources(sources) if isinstance(sources, (str, Path)) else dict(sources or {})
    paths = _collect_paths(inputs, report, exclude=exclude)
    records: list[dict[str, Any]] = []
    used_keys: set[str] = set()
    for path, direct in paths:
        report.files_read += 1
        try:
            try:
                if path.name.lower().endswith(TABLE_SUFFIXES):
                    recs = _read_table(path, rules, report, max_article_chars)
                else:
                    recs = _read_text_file(path, rules, report, max_article_chars)
            except OSError as exc:  # no permission, an I/O error, a file gone since listing
                raise _Unusable(f"cannot read the file ({exc.strerror or exc})") from None
        except _Unusable as exc:
            if direct:
                raise IngestError(f"Input {str(path)!r} cannot be used: {exc}.") from None
            report.skip(str(path), str(exc))
            continue
        for key in (path.name, str(path), path.stem):
            if key in source_map:
                used_keys.add(key)
                for r in recs:
                    r["source"] = source_map[key]
                break
        records.extend(recs)
    if report.long_values_cut:
        report.warn(
            f"{sum(report.long_values_cut.values())} table value(s) longer than "
            f"{MAX_FIELD_CHARS:,} characters were cut there: "
            + ", ".join(f"{c} {n}" for c, n in sorted(report.long_values_cut.items()))
        )
    for key in sorted(set(source_map) - used_keys):
        report.warn(f"Sources file names {key!r}, which is not among the inputs.")
    if not records:
        raise IngestError(
            f"No article text found in {[str(i) for i in inputs]}: the corpus is empty (see skipped inputs: {report.skipped})."
        )
    for r in records:
        r["source"] = _source_name(r.get("source"))
    missing = sorted({r["path"].split("#row")[0] for r in records if r["source"] == "unknown"})
    if missing:
        report.warn(
            f"No source known for {len(missing)} input(s) (set to 'unknown'; pass --sources or a 'source' column): {missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    rows = []
    per_path: Counter[str] = Counter()
    extra_columns: dict[str, None] = {}
    dropped_columns: dict[str, None] = {}
    reserved_columns: dict[str, None] = {}
    for r in records:
        base = r["path"]
        idx = per_path[base]
        per_path[base] += 1
        row = {
            "article_id": _article_id(base, idx, r["text"]),
            "source": r["source"],
            "path": base
            if idx == 0 and base not in report.pages_split
            else f"{base}#{idx}"
            if "#row" not in base
            else base,
            "title": r.get("title") or "",
            "date": r.get("date"),
            "text": r["text"],
        }
        for k, v in (r.get("extra") or {}).items():
            if k in row:
                # A table column named like one the run makes (article_id): the run's own wins.
                reserved_columns.setdefault(k, None)
            elif k in extra_columns or len(extra_columns) < MAX_EXTRA_COLUMNS:
                extra_columns.setdefault(k, None)
                row[k] = v
            else:
                dropped_columns.setdefault(k, None)
        if "truncated_from" in r:
            if strict:
                raise IngestError(
                    f"{row['path']}: the article has {r['truncated_from']:,} characters, more "
                    f"than max_article_chars={max_article_chars:,} (strict mode: nothing may be "
                    "cut)."
                )
            report.truncated.append(
                {"path": row["path"], "chars": r["truncated_from"], "kept": len(r["text"])}
            )
        rows.append(row)
    if reserved_columns:
        report.warn(
            f"Table columns {list(reserved_columns)} are named like columns stance makes; "
            "they are ignored"
        )
    if dropped_columns:
        names = list(dropped_columns)
        report.warn(
            f"The tables hold more than {MAX_EXTRA_COLUMNS} extra columns; the first "
            f"{MAX_EXTRA_COLUMNS} are kept and {len(names):,} dropped: {names[:5]}"
            f"{' ...' if len(names) > 5 else ''}"
        )
    if report.truncated:
        report.warn(
            f"{len(report.truncated)} article(s) longer than {max_article_chars:,} characters "
            f"were cut to that length: {[t['path'] for t in report.truncated[:5]]}"
        )
    rows = _drop_duplicates(rows, report)
    _check_dates(rows, report)
    df = pd.DataFrame(rows)
    df = df[[*ARTICLE_COLUMNS, *[c for c in df.columns if c not in ARTICLE_COLUMNS]]]
    df = carry_columns(df, sources)
    if df["article_id"].duplicated().any():
        dups = df.loc[df["article_id"].duplicated(), "path"].tolist()
        report.warn(f"Duplicate articles (same file, position and text) kept once: {dups[:5]}")
        df = df.drop_duplicates("article_id").reset_index(drop=True)
    return df, report


_PART = re.compile(r"#(?:row)?\d+$")


def read_source_columns(path: str | Path) -> dict[str, dict[str, str]]:
    """Read the columns of a sources CSV beyond ``file`` (or ``path``) and ``source``.

    Returns:
        File key → ``{column: value}`` (values as strings, as written), for every row with a
        file; empty when the CSV has no further column. The file is checked by
        :func:`read_sources`.
    """
    df, key = _sources_table(Path(path))
    extra = [c for c in df.columns if c not in (key, "source", *ARTICLE_COLUMNS)]
    return {
        str(r[key]).strip(): {c: str(r[c]).strip() for c in extra}
        for r in df.to_dict("records")
        if str(r[key]).strip() and extra
    }


def carry_columns(
    articles: pd.DataFrame, sources: str | Path | dict[str, str] | None = None
) -> pd.DataFrame:
    """Keep outlet metadata on the articles: extra columns as strings, plus the sources CSV's.

    Every column after the contract's (``schema.ARTICLE_COLUMNS``) becomes a string column
    (missing values stay missing), so ``bias_text`` or a numeric ``year`` compare as labels.
    A sources CSV's columns beyond ``file,source`` (e.g. ``rating,country,owner``) are added to
    the articles of the file they name (matched like the ``source``: by file name, path or
    stem), after the table's own extra columns; a value in the CSV overrides the table's.

    Args:
        articles: The articles table (``path`` is ``FILE``, ``FILE#rowN`` or ``FILE#N``).
        sources: What :func:`ingest` was given as ``sources``.

    Returns:
        The articles with the contract columns first and the extra ones after them.
    """
    import pandas as pd

    out = articles.copy()
    if isinstance(sources, (str, Path)):
        by_file = read_source_columns(sources)
        if by_file:
            files = out["path"].astype(str).str.replace(_PART, "", regex=True)
            for col in dict.fromkeys(c for cols in by_file.values() for c in cols):
                values = []
                for f in files:
                    p = Path(f)
                    key = next((k for k in (p.name, f, p.stem) if k in by_file), None)
                    values.append(by_file[key].get(col) if key is not None else None)
                given = pd.Series(values, index=out.index, dtype=object)
                out[col] = given.where(given.notna(), out[col]) if col in out.columns else given
    for col in out.columns:
        if col not in ARTICLE_COLUMNS:
            out[col] = pd.Series([_as_text(v) for v in out[col]], index=out.index, dtype=object)
    return out


def _as_text(value: Any) -> str | None:
    """Return a table value as a string; missing stays ``None``.

    A whole number that pandas widened to float (a column with gaps) reads as written: "2".
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
