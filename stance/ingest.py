"""Ingest: read input files into one row per article, with boilerplate removed.

Inputs are folders (``.txt``, ``.md``, ``.html``/``.htm``, searched recursively) and tables
(``.csv``, ``.jsonl``/``.jsonl.gz``, ``.parquet``) with a ``text`` column and optional
``source``, ``title``, ``date``, ``url``. A page is cut into paragraphs; named boilerplate rules
(comment forms, share widgets, promos, credits, author footers, signature junk) drop paragraphs
and count what they dropped; pages that hold several articles are split at their headlines.
Problems with one input never stop the others: they become warnings and ``skipped`` records,
unless nothing at all can be read.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stance.schema import ARTICLE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
TABLE_SUFFIXES = (".csv", ".jsonl", ".jsonl.gz", ".json", ".parquet")


class IngestError(ValueError):
    """An input that cannot be used at all (the message names the file and the problem)."""


@dataclass
class IngestReport:
    """What ingest did besides producing articles: skips, warnings and boilerplate counts."""

    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    boilerplate: Counter[str] = field(default_factory=Counter)
    files_read: int = 0
    pages_split: dict[str, int] = field(default_factory=dict)

    def skip(self, path: str, reason: str) -> None:
        """Record an input that yields no article, and log it."""
        logger.warning("Skipping %s: %s", path, reason)
        self.skipped.append({"path": path, "reason": reason})

    def warn(self, message: str) -> None:
        """Record a warning that did not stop the input from being used."""
        logger.warning("%s", message)
        self.warnings.append(message)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary for ``run.json``."""
        return {
            "files_read": self.files_read,
            "skipped": self.skipped,
            "warnings": self.warnings,
            "boilerplate_removed": dict(sorted(self.boilerplate.items())),
            "pages_split": self.pages_split,
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
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
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
    "bylines",
    "duplicate_lines",
)


@dataclass
class Paragraph:
    """One block of a page: its text and whether a blank spacer line preceded it."""

    text: str
    spacer_before: bool = False
    heading_hint: bool = False  # a markup heading (<h2>, ``## ``) says so explicitly


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
    if enabled.get("login_share_widgets", True) and _WIDGET_LINES.match(t):
        return "login_share_widgets"
    if enabled.get("comment_forms", True) and _COMMENT_FORM.search(t):
        return "comment_forms"
    if enabled.get("republishing_credits", True) and _REPUBLISH.search(t) and _word_count(t) < 60:
        return "republishing_credits"
    if (
        enabled.get("submission_promos", True)
        and (_PROMO_HEADING.search(t) or _PROMO_BODY.search(t))
        and _word_count(t) < 80
    ):
        return "submission_promos"
    if enabled.get("photo_credits", True) and _PHOTO_CREDIT.search(t) and _word_count(t) < 20:
        return "photo_credits"
    if enabled.get("bylines", True) and _BYLINE.match(t):
        return "bylines"
    return None


def _tail_rule_for(text: str, enabled: dict[str, bool]) -> str | None:
    t = text.strip()
    if (
        enabled.get("author_footers", True)
        and (_AUTHOR_FOOTER.search(t) or _EMAIL.search(t))
        and _word_count(t) < 60
    ):
        return "author_footers"
    if enabled.get("signature_junk", True) and _SIGNATURE.search(t) and _word_count(t) < 40:
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


def paragraphs_from_text(text: str, *, markdown: bool = False) -> list[Paragraph]:
    """Cut plain text into paragraphs: one per non-blank line, noting blank spacer lines.

    A line holding only whitespace (often a non-breaking space from a web page) is a spacer, a
    layout break stronger than an empty line.
    """
    paragraphs: list[Paragraph] = []
    spacer = False
    for raw in text.splitlines():
        if not raw.strip():
            # An empty line separates paragraphs; a line of only spaces is a layout spacer.
            spacer = spacer or bool(raw)
            continue
        line = " ".join(raw.split())
        hint = False
        if markdown:
            m = re.match(r"^#{1,6}\s+(.*)$", line)
            if m:
                line, hint = m.group(1).strip(), True
            line = re.sub(r"[*_]{1,2}([^*_]+)[*_]{1,2}", r"\1", line)
            line = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", line)
        paragraphs.append(Paragraph(line, spacer_before=spacer, heading_hint=hint))
        spacer = False
    return paragraphs


def paragraphs_from_html(raw: str) -> tuple[list[Paragraph], str | None]:
    """Extract visible paragraphs (and the ``<title>``) from an HTML page."""
    parser = _HTMLText()
    parser.feed(raw)
    parser.close()
    parser._flush()
    paras = [Paragraph(html.unescape(t), heading_hint=h) for t, h in parser.blocks]
    return paras, parser.title


def _article_id(path: str, index: int, text: str) -> str:
    digest = hashlib.sha1(f"{path}\0{index}\0{text}".encode()).hexdigest()[:12]
    return digest


def _decode(path: Path, report: IngestReport) -> str | None:
    data = path.read_bytes()
    for encoding in (
        ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",)
    ):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        report.skip(str(path), "cannot decode the file as UTF-8 or Windows-1252 text")
        return None
    report.warn(f"{path}: not valid UTF-8; decoded as Windows-1252.")
    return text


def page_to_articles(
    paragraphs: list[Paragraph],
    *,
    path: str,
    page_title: str | None,
    rules: dict[str, bool],
    report: IngestReport,
) -> list[dict[str, Any]]:
    """Clean one page and split it into article records (``title`` and ``text``).

    The title is kept as the first paragraph of ``text``: headlines carry stance too.
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
            words = lines[0].split()
            title = " ".join(words[:12]) + (" …" if len(words) > 12 else "")
            text = "\n\n".join(lines)
        records.append({"title": title, "text": text})
    if len(records) > 1:
        report.pages_split[path] = len(records)
    return records


def _read_text_file(
    path: Path, rules: dict[str, bool], report: IngestReport
) -> list[dict[str, Any]]:
    raw = _decode(path, report)
    if raw is None:
        return []
    if not raw.strip():
        report.skip(str(path), "the file is empty")
        return []
    suffix = path.suffix.lower()
    page_title = None
    if suffix in (".html", ".htm"):
        paragraphs, page_title = paragraphs_from_html(raw)
    else:
        paragraphs = paragraphs_from_text(raw, markdown=suffix in (".md", ".markdown"))
    records = page_to_articles(
        paragraphs, path=str(path), page_title=page_title, rules=rules, report=report
    )
    if not records:
        report.skip(str(path), "no article text left after removing boilerplate")
    for r in records:
        r.update(path=str(path), source=None, date=None, url=None)
    return records


def _clean_table_text(text: str, rules: dict[str, bool], report: IngestReport) -> str:
    """Apply the boilerplate rules to one table row's text (rows are never split)."""
    counts: Counter[str] = Counter()
    kept, _ = remove_boilerplate(paragraphs_from_text(text), rules, counts)
    report.boilerplate.update(counts)
    return "\n\n".join(p.text for p in kept)


def _read_table(path: Path, rules: dict[str, bool], report: IngestReport) -> list[dict[str, Any]]:
    import pandas as pd

    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            df = pd.read_parquet(path)
        elif name.endswith(".csv"):
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            df = pd.read_json(
                path, lines=not name.endswith(".json") or name.endswith(".jsonl"), dtype=False
            )
    except Exception as exc:
        raise IngestError(
            f"Cannot read table {str(path)!r}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if "text" not in df.columns:
        raise IngestError(
            f"Table {str(path)!r} has no 'text' column. Got columns {list(df.columns)} instead."
        )
    records = []
    for i, row in enumerate(df.to_dict("records")):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            report.skip(f"{path}#row{i}", "empty or missing 'text'")
            continue
        text = _clean_table_text(text, rules, report)
        if not text:
            report.skip(f"{path}#row{i}", "no article text left after removing boilerplate")
            continue
        rec = {
            "path": f"{path}#row{i}",
            "title": str(row.get("title") or "").strip(),
            "text": text.strip(),
            "source": (str(row["source"]).strip() or None)
            if row.get("source") is not None
            else None,
            "date": str(row["date"]).strip() if row.get("date") not in (None, "") else None,
            "url": row.get("url"),
        }
        for extra in df.columns:
            if extra not in rec and extra not in ("text",):
                rec.setdefault("extra", {})[extra] = row.get(extra)
        records.append(rec)
    return records


def _collect_paths(inputs: list[str | Path], report: IngestReport) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise IngestError(f"Input {str(p)!r} does not exist.")
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            usable = [f for f in found if f.name.lower().endswith(TEXT_SUFFIXES + TABLE_SUFFIXES)]
            for f in found:
                if f not in usable:
                    report.skip(
                        str(f),
                        f"unsupported file type {f.suffix or '(none)'}; expected one of {', '.join(TEXT_SUFFIXES + TABLE_SUFFIXES)}",
                    )
            paths.extend(usable)
        else:
            if not p.name.lower().endswith(TEXT_SUFFIXES + TABLE_SUFFIXES):
                raise IngestError(
                    f"Input {str(p)!r} has unsupported type {p.suffix or '(none)'}; expected one of {', '.join(TEXT_SUFFIXES + TABLE_SUFFIXES)}."
                )
            paths.append(p)
    return paths


def read_sources(path: str | Path) -> dict[str, str]:
    """Read a sources file: CSV with columns ``file`` (or ``path``) and ``source``.

    Raises:
        IngestError: When the file is missing, unreadable, or lacks the columns.
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise IngestError(f"Sources file {str(p)!r} does not exist.")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, comment="#")
    except Exception as exc:
        raise IngestError(f"Cannot read sources file {str(p)!r}: {exc}") from None
    key = "file" if "file" in df.columns else "path" if "path" in df.columns else None
    if key is None or "source" not in df.columns:
        raise IngestError(
            f"Sources file {str(p)!r} needs columns 'file' and 'source'. Got {list(df.columns)} instead."
        )
    return {
        str(r[key]).strip(): str(r["source"]).strip() or "unknown"
        for r in df.to_dict("records")
        if str(r[key]).strip()
    }


def ingest(
    inputs: list[str | Path],
    *,
    sources: str | Path | dict[str, str] | None = None,
    rules: dict[str, bool] | None = None,
) -> tuple[pd.DataFrame, IngestReport]:
    """Read every input into an articles table.

    Args:
        inputs: Folders and files (text pages or tables).
        sources: A sources CSV (``file,source``) or a mapping from file name to outlet.
        rules: Boilerplate rules to switch on or off (all on by default).

    Returns:
        The articles table (columns of ``schema.ARTICLE_COLUMNS`` plus any extra table columns)
        and an :class:`IngestReport`.

    Raises:
        IngestError: When an input or the sources file cannot be used at all, or when no
            article is left.
    """
    import pandas as pd

    report = IngestReport()
    rules = {r: True for r in RULES} | dict(rules or {})
    source_map = read_sources(sources) if isinstance(sources, (str, Path)) else dict(sources or {})
    paths = _collect_paths(inputs, report)
    records: list[dict[str, Any]] = []
    used_keys: set[str] = set()
    for path in paths:
        report.files_read += 1
        if path.name.lower().endswith(TABLE_SUFFIXES):
            recs = _read_table(path, rules, report)
        else:
            recs = _read_text_file(path, rules, report)
        for key in (path.name, str(path), path.stem):
            if key in source_map:
                used_keys.add(key)
                for r in recs:
                    r["source"] = source_map[key]
                break
        records.extend(recs)
    for key in sorted(set(source_map) - used_keys):
        report.warn(f"Sources file names {key!r}, which is not among the inputs.")
    if not records:
        raise IngestError(
            f"No article text found in {[str(i) for i in inputs]}: the corpus is empty (see skipped inputs: {report.skipped})."
        )
    missing = sorted({r["path"].split("#row")[0] for r in records if not r.get("source")})
    if missing:
        report.warn(
            f"No source known for {len(missing)} input(s) (set to 'unknown'; pass --sources or a 'source' column): {missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    rows = []
    per_path: Counter[str] = Counter()
    for r in records:
        base = r["path"]
        idx = per_path[base]
        per_path[base] += 1
        row = {
            "article_id": _article_id(base, idx, r["text"]),
            "source": r.get("source") or "unknown",
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
            row[k] = v
        rows.append(row)
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
    import pandas as pd

    df = pd.read_csv(Path(path), dtype=str, keep_default_na=False, comment="#")
    key = "file" if "file" in df.columns else "path"
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
