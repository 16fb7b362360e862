"""Attribution: whose view a mention's stance is — the author's, reported, or a disputed claim.

The stance model reads how a sentence portrays its target. In "Washington accused Russia of
meddling" the sentence portrays Russia badly, but the accusation is Washington's; in "the
supposed Russian presence" or "a claim for which he offered no evidence" the author distances
themselves from the claim. A source-level figure that should say what *the outlet* conveys has
to tell these apart, so each mention gets a ``voice``:

``author``
    The author's own statement; also the party who makes a claim ("Washington accused …" is
    the author's portrayal of Washington), and first-person claims ("I believe …").
``reported``
    Inside a quotation, after a reporting or accusing verb whose subject is someone else
    ("X said/claimed/accused/blamed …"), or in a sentence attributed with "according to" or a
    closing "…, X said".
``disputed``
    A claim the author distances themselves from: the mention is introduced by a distancing
    modifier ("supposed", "so-called", "purported"), is wrapped in scare quotes on its own, or
    sits in a claim the sentence rejects ("no evidence", "baseless", "unfounded" …) without
    being the claimant.

:func:`attribute` turns the model's score into the author's stance: ``author`` keeps it,
``disputed`` reverses it (rejecting a damning claim about a target defends it), and ``reported``
keeps it but with weight ``reported_weight`` in every mean (the author chose to relay it, but it
is someone else's view; an article that only reports still gets the mean of what it reports).
Everything is a pure function of the sentence and the mention's offsets; the cue lists are
ordinary English reporting and evidential vocabulary, not tuned to any corpus.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from stance.config import StanceSettings
from stance.schema import VOICES

__all__ = ["VOICES", "attribute", "quote_spans", "voice"]

if TYPE_CHECKING:
    import pandas as pd


#: Verbs that hand the rest of the clause to someone else's voice.
_REPORTING = (
    r"say|says|said|saying|tell|tells|told|claim|claims|claimed|claiming|allege|alleges|alleged|"
    r"alleging|accuse|accuses|accused|accusing|blame|blames|blamed|blaming|report|reports|"
    r"reported|warn|warns|warned|insist|insists|insisted|argue|argues|argued|assert|asserts|"
    r"asserted|charge|charges|charged|protest|protests|protested|protesting|denounce|denounces|"
    r"denounced|condemn|condemns|condemned|criticize|criticizes|criticized|criticise|"
    r"criticises|criticised|characterize|characterizes|characterized|portray|portrays|"
    r"portrayed|suggest|suggests|suggested|believe|believes|believed|deny|denies|denied|"
    r"announce|announces|announced|declare|declares|declared|suspect|suspects|suspected"
)
_REPORTING_RE = re.compile(rf"\b(?:{_REPORTING})\b|\baccording to\b|\bobjections? to\b", re.I)
#: Words that may stand between a first-person subject and its verb ("I have long argued").
_FIRST_PERSON_RE = re.compile(
    r"\b(?:I|we|We)\s+(?:(?:have|had|would|do|did|also|long|always|still|just|never)\s+){0,3}$"
)
#: A closing attribution: "…, the minister said." / "…, said Foreign Minister X."
_TAIL_RE = re.compile(
    r"[,\"”’]\s*(?:"
    r"(?:he|she|they|it|[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,5}|the\s+[\w\s-]{1,40}?)\s+"
    r"(?:said|says|added|told \w+|wrote|explained|noted)"
    r"|(?i:said|says|added|wrote)\s+(?:[A-Z]|the\s)"
    r")[^\"“”]{0,80}[.!?]?\s*$"
)
#: Modifiers that mark what follows as someone else's claim.
_DISTANCER_RE = re.compile(
    r"\b(?:supposed|supposedly|so-called|so called|purported|purportedly|self-styled|"
    r"self-proclaimed|would-be)\s+$",
    re.I,
)
#: Hedges that mark what follows as reported rather than established ("the alleged attack").
_HEDGE_RE = re.compile(
    r"\b(?:alleged|allegedly|reported|reportedly|claimed|presumed|suspected|accused)\s+"
    r"(?:[\w'-]+\s+)?$",
    re.I,
)
#: Phrases rejecting a claim made in the sentence.
_REJECTION_RE = re.compile(
    r"\b(?:no|without(?: any)?|zero|little|scant) (?:shred of |hard |credible |real )?"
    r"(?:evidence|proof)\b|\bbaseless\b|\bunfounded\b|\bunsubstantiated\b|\bgroundless\b|"
    r"\bfabricated\b|\bdebunked\b|\bfalse (?:claims?|accusations?|allegations?)\b",
    re.I,
)
#: A determiner or possessive right before a word makes it a noun ("a claim", "his report").
_DETERMINER_RE = re.compile(
    r"\b(?:a|an|the|this|that|these|those|his|her|their|its|our|my|your|such|any|no|every)\s+$",
    re.I,
)
#: Attitude nouns whose "that"-clause is someone's claim or fear, not the author's assertion.
_CONTENT_RE = re.compile(
    r"\b(?:claims?|allegations?|accusations?|fears?|suggestions?|notion|assertions?|"
    r"rumou?rs?|insinuations?|narratives?)\s+that\b",
    re.I,
)
#: How far (in words) a mention may lie after / before a rejection to be part of the rejected claim.
REJECTION_AFTER_WORDS = 12
REJECTION_BEFORE_WORDS = 16
_QUOTES = {"“": "”", '"': '"', "«": "»"}
_CLOSERS = {"”", "»"}
_WORD_RE = re.compile(r"[\w'’-]+")


def quote_spans(sentence: str) -> list[tuple[int, int]]:
    """Return the ``(open, close)`` offsets of the double-quoted passages in ``sentence``.

    A lone quote mark belongs to a quotation that crosses the sentence boundary: after a
    sentence-ending mark or comma (``Absolutely," Trump said.``) it closes one that began in an
    earlier sentence, otherwise it opens one that continues in the next.
    """
    marks = [i for i, ch in enumerate(sentence) if ch in _QUOTES or ch in _CLOSERS]
    spans, i = [], 0
    while i < len(marks):
        pos = marks[i]
        ch = sentence[pos]
        closer = _QUOTES.get(ch)
        j = next((k for k in range(i + 1, len(marks)) if sentence[marks[k]] == closer), None)
        if closer is not None and j is not None:
            spans.append((pos, marks[j]))
            i = j + 1
            continue
        if ch in _CLOSERS or sentence[:pos].rstrip()[-1:] in {",", ".", "!", "?"}:
            spans.append((-1, pos))
        else:
            spans.append((pos, len(sentence)))
        i += 1
    return spans


def _words_before(text: str, n: int) -> str:
    """Return the last ``n`` words of ``text`` (with what separates them)."""
    words = list(_WORD_RE.finditer(text))
    if len(words) <= n:
        return text
    return text[words[-n].start() :]


def _reporting_verbs(text: str) -> list[re.Match[str]]:
    """Return the reporting verbs in ``text``, not nouns spelled alike ("a claim", "his report")."""
    return [m for m in _REPORTING_RE.finditer(text) if not _DETERMINER_RE.search(text[: m.start()])]


def _reported_from(sentence: str, pos: int) -> bool:
    """Whether text at ``pos`` follows a reporting verb or attitude noun of someone else."""
    before = sentence[:pos]
    for m in _reporting_verbs(before):
        if not _FIRST_PERSON_RE.search(before[: m.start()]):
            return True
    return bool(_CONTENT_RE.search(before))


def voice(sentence: str, start: int, end: int) -> str:
    """Classify the mention at ``[start, end)`` of ``sentence`` as one of ``VOICES``."""
    before, after = sentence[:start], sentence[end:]
    quotes = quote_spans(sentence)
    inside = [(a, b) for a, b in quotes if a < start and end <= b]
    # Scare quotes: a complete quotation holding nothing but the mention ("Russians,").
    # (Not when the quotation is broken by an attribution: "“Trump,” said X, “is …”".)
    if any(
        a >= 0
        and b < len(sentence)
        and sentence[a + 1 : b].strip(" ,.;:!?") == sentence[start:end]
        and not _reporting_verbs(" ".join(_WORD_RE.findall(sentence[b + 1 : b + 40])[:2]))
        for a, b in inside
    ):
        return "disputed"
    tail = _TAIL_RE.search(sentence)
    if tail is not None and start >= tail.start():
        return "author"  # the speaker of a closing attribution ("…, said Lavrov.")
    # The claimant: a reporting verb follows the mention closely ("Washington accused …",
    # "Washington's objections to …").
    clause = re.split(r"[,;:()\"“”–—]| - ", after, maxsplit=1)[0]
    if not inside and _reporting_verbs(" ".join(_WORD_RE.findall(clause)[:5])):
        return "author"
    reported = (
        bool(inside)
        or bool(_HEDGE_RE.search(_words_before(before, 2) + " "))
        or _reported_from(sentence, start)
        or tail is not None
        or bool(re.search(r"\baccording to\b", sentence, re.I))
    )
    # A distancing modifier or a rejected claim is the author's doing unless it is itself
    # inside a quotation or someone else's reported speech.
    if _DISTANCER_RE.search(_words_before(before, 1) + " "):
        return "reported" if inside else "disputed"
    for rejection in _REJECTION_RE.finditer(sentence):
        in_quote = any(a < rejection.start() < b for a, b in quotes)
        if in_quote or _reported_from(sentence, rejection.start()):
            continue  # someone else rejects the claim
        # The rejected claim is near the rejection: "no evidence that X …" (after it) or
        # "X … — a claim for which he offered no evidence" (before it).
        if start >= rejection.end():
            gap = len(_WORD_RE.findall(sentence[rejection.end() : start]))
            if gap <= REJECTION_AFTER_WORDS:
                return "disputed"
        elif len(_WORD_RE.findall(sentence[end : rejection.start()])) <= REJECTION_BEFORE_WORDS:
            return "disputed"
    return "reported" if reported else "author"


def attribute(
    mentions: pd.DataFrame, *, reported_weight: float = StanceSettings.reported_weight
) -> pd.DataFrame:
    """Add ``voice``, ``author_score`` and ``weight`` to a table of scored mentions.

    Args:
        mentions: Columns ``sentence, start, end, stance_score``.
        reported_weight: Weight of ``reported`` mentions in means (``author`` and ``disputed``
            weigh 1).

    Returns:
        A copy with ``voice`` (one of ``VOICES``), ``author_score`` (``-stance_score`` for
        ``disputed``, else ``stance_score``) and ``weight``.
    """
    if not 0.0 <= reported_weight <= 1.0:
        raise ValueError(f"'reported_weight' must be in [0, 1]. Got {reported_weight!r}.")
    voices = [
        voice(s, int(a), int(b))
        for s, a, b in zip(mentions["sentence"], mentions["start"], mentions["end"], strict=True)
    ]
    scores = [
        -float(x) if v == "disputed" else float(x)
        for x, v in zip(mentions["stance_score"], voices, strict=True)
    ]
    weights = [reported_weight if v == "reported" else 1.0 for v in voices]
    return mentions.assign(voice=voices, author_score=scores, weight=weights)
