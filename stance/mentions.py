"""Mentions: find every mention of a target actor in every sentence, from an alias lexicon.

Each target (Russia, the US, ...) has aliases in the config: names, demonyms, capitals used as
metonyms, leaders and institutions. Aliases match case-sensitively as written or in ALL CAPS,
as whole words, longest first, so "US" is found and "us" never is, and "Russian Foreign
Ministry" is not also counted as "Russian". Phrases in a target's ``exclude`` list ("Latin
America", "Washington Post") veto the matches they contain. Every mention records its kind
(:data:`stance.config.MENTION_KINDS`): a name, a demonym or adjectival use of a name, the capital
as metonym, a leader or official, an institution, or a resolved reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stance.schema import MENTION_COLUMNS, require_columns

if TYPE_CHECKING:
    import pandas as pd

_WORD = r"[\w\u00C0-\u024F]"


@dataclass(frozen=True)
class Lexicon:
    """Compiled alias patterns: one regex for all aliases, one for all excluded phrases."""

    pattern: re.Pattern[str]
    exclude: re.Pattern[str] | None
    alias_target: dict[str, str]
    exclude_target: dict[str, str]
    alias_kind: dict[str, str] = field(default_factory=dict)
    attributive: frozenset[str] = frozenset()


def _variants(alias: str) -> list[str]:
    return sorted({alias, alias.upper()})


def _alternation(phrases: list[str]) -> str:
    ordered = sorted(set(phrases), key=lambda s: (-len(s), s))
    return "|".join(re.escape(p) for p in ordered)


_KIND_LISTS = (
    ("people", "leader"),
    ("demonyms", "demonym"),
    ("capitals", "capital"),
    ("institutions", "institution"),
)


def build_lexicon(targets: dict[str, dict[str, Any]]) -> Lexicon:
    """Compile the target table of the config into a :class:`Lexicon`.

    Args:
        targets: ``config["targets"]``: name → ``{"aliases": [...], "exclude": [...]}`` and
            optionally the kind lists ``people``, ``demonyms``, ``capitals``, ``institutions``
            and ``attributive`` (aliases in none of the first four are names).

    Raises:
        ValueError: When one alias is given to two targets.
    """
    alias_target: dict[str, str] = {}
    exclude_target: dict[str, str] = {}
    alias_kind: dict[str, str] = {}
    attributive: set[str] = set()
    for name, spec in targets.items():
        kinds = {a.strip(): kind for key, kind in _KIND_LISTS for a in spec.get(key, [])}
        for alias in spec.get("attributive", []):
            attributive.update(_variants(alias.strip()))
        for alias in spec["aliases"]:
            for variant in _variants(alias.strip()):
                alias_kind.setdefault(variant, kinds.get(alias.strip(), "name"))
                other = alias_target.get(variant)
                if other is not None and other != name:
                    raise ValueError(
                        f"Alias {alias!r} is given to both targets {other!r} and {name!r}; give it to one."
                    )
                alias_target[variant] = name
        for phrase in spec.get("exclude", []):
            for variant in _variants(phrase.strip()):
                exclude_target[variant] = name
    # Whole words: no word character may touch the match on either side. A trailing "." in an
    # alias ("U.S.") may double as the sentence's full stop, so nothing else is required after it.
    pattern = re.compile(rf"(?<!{_WORD})(?:{_alternation(list(alias_target))})(?!{_WORD})")
    exclude = (
        re.compile(rf"(?<!{_WORD})(?:{_alternation(list(exclude_target))})(?!{_WORD})")
        if exclude_target
        else None
    )
    return Lexicon(
        pattern, exclude, alias_target, exclude_target, alias_kind, frozenset(attributive)
    )


# Lowercase words after an attributive name ("the U.S. said") that show it is the subject or
# object, not a modifier: verbs, auxiliaries, conjunctions, prepositions, pronouns, adverbs.
_NOT_A_NOUN = frozenset(
    """
    a an the and or but nor so yet if as than then that which who whom whose what when where
    while because since until unless though although whether to of in on at for with by from
    into onto over under about against between among through during before after above below
    up down out off near via per is are was were be been being am has have had having do does
    did done will would shall should can could may might must ought says said say saying tells
    told asks asked wants wanted needs needed plans planned seeks sought tries tried hopes
    hoped insists insisted warns warned claims claimed accuses accused blames blamed denies
    denied rejects rejected refuses refused agrees agreed announced announces condemned
    condemns imposed imposes launched launches sent sends made makes took takes gave gives
    struck strikes killed kills withdrew withdraws pulled pulls remains remained became becomes
    continues continued believes believed considers considered urged urges called calls
    responded responds supported supports backed backs also still not never already now again
    too just only even once first last really however therefore instead alone itself
    themselves he she it they we you i him her them us me this these those there here
    """.split()
)
_NEXT_WORD = re.compile(r"(-)?\s*([A-Za-z][\w'’-]*)?")


def mention_kind(sentence: str, mention: str, end: int, lexicon: Lexicon) -> str:
    """Return the kind of the alias ``mention`` that ends at ``end`` in ``sentence``.

    The kind declared in the targets table (see :func:`build_lexicon`), except that an
    ``attributive`` name ("US", "U.S.") modifying what follows is a ``demonym``: the next word
    is joined to it by a hyphen ("U.S.-led"), or is a lowercase word that is not a verb,
    auxiliary, pronoun or function word from a closed list ("U.S. officials", "U.S. military
    aid"; but "the U.S. said", "the U.S. and Russia" stay names).
    """
    kind = lexicon.alias_kind.get(mention, "name")
    if mention not in lexicon.attributive:
        return kind
    m = _NEXT_WORD.match(sentence, end)
    hyphen, word = (m.group(1), m.group(2)) if m else (None, None)
    if word is None:
        return kind
    if hyphen:
        return "demonym"
    if word[0].islower() and word.split("-")[0].lower() not in _NOT_A_NOUN:
        return "demonym"
    return kind


def find_mentions(sentence: str, lexicon: Lexicon) -> list[tuple[str, str, int, int]]:
    """Return ``(target, mention, start, end)`` for every alias match in ``sentence``."""
    vetoed: list[tuple[int, int, str]] = []
    if lexicon.exclude is not None:
        vetoed = [
            (m.start(), m.end(), lexicon.exclude_target[m.group(0)])
            for m in lexicon.exclude.finditer(sentence)
        ]
    found = []
    for m in lexicon.pattern.finditer(sentence):
        target = lexicon.alias_target[m.group(0)]
        if any(a <= m.start() and m.end() <= b and t == target for a, b, t in vetoed):
            continue
        found.append((target, m.group(0), m.start(), m.end()))
    return found


# A sentence-initial reference: optional conjunction, optional fronted clause ending in a comma,
# then the pronoun or "the country" as the subject.
_REFERENCE = re.compile(
    r"^(?:(?:And|But|While|Although|Though|Hence|Thus|So|Yet|Still|Now)\s+)?"
    r"(?:[^,;:\"“”]{1,60},\s+)?"
    r"(?P<ref>It|it|He|he|She|she|The country|the country)(?![\w-])"
)
# "It is not surprising that ...", "It's time ...": no referent.
_EXPLETIVE = re.compile(
    r"^(?:[’']s|\s+(?:is|was|seems|appears|remains|would\s+be|will\s+be|has\s+been))\s+(?:not\s+)?(?:[\w-]+\s+){0,3}?"
    r"(?:that|to|then|when|time|whether|clear|unlikely|likely|possible|impossible|surprising|true|reality|"
    r"matter|important|necessary|difficult|easy|hard|known|said|reported|believed|expected|worth)\b"
    r"|^\s+(?:seems|appears)\b"
)
_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}(?:[-’'][A-Za-z]+)?\b")


def _reference(sentence: str) -> tuple[str, int, int] | None:
    m = _REFERENCE.match(sentence)
    if m is None:
        return None
    ref = m.group("ref")
    if ref.lower() == "it" and _EXPLETIVE.match(sentence[m.end("ref") :]):
        return None
    return ref, m.start("ref"), m.end("ref")


def resolve_references(
    sentences: pd.DataFrame, mentions: pd.DataFrame, targets: dict[str, dict[str, Any]]
) -> pd.DataFrame:
    """Add mentions for sentence-initial "it", "he"/"she" and "the country".

    The referent is the first target mentioned in the previous sentence of the same article,
    if it sits in that sentence's first half (the subject, usually). "he"/"she" link only to a
    target's ``people``, "it" never does; "the country" only when the previous sentence names no other proper
    noun that could be the country meant. Links chain: "Russia mediated. It succeeded. And it
    stayed." gives two references.

    Args:
        sentences: Columns ``article_id, source, sentence_id, sentence`` (+ ``topic``), in
            article order.
        mentions: The explicit mentions (from :func:`extract_mentions`).
        targets: The config's target table (``people`` lists are optional).

    Returns:
        The reference rows, with the columns of ``mentions``.
    """
    import pandas as pd

    people = {name: set(spec.get("people", [])) for name, spec in targets.items()}
    known_aliases = {a for spec in targets.values() for a in spec["aliases"]}
    by_sentence: dict[tuple[str, int], list[tuple[str, str, int, int]]] = {}
    for row in mentions[
        ["article_id", "sentence_id", "target", "mention", "start", "end"]
    ].itertuples(index=False):
        by_sentence.setdefault((row.article_id, row.sentence_id), []).append(
            (row.target, row.mention, row.start, row.end)
        )
    columns = list(mentions.columns)
    added = []
    previous: tuple[str, int, str] | None = None
    for rec in sentences.itertuples(index=False):
        key = (rec.article_id, rec.sentence_id)
        own = by_sentence.get(key, [])
        prev_mentions = (
            by_sentence.get((previous[0], previous[1]), [])
            if previous and previous[0] == rec.article_id
            else []
        )
        ref = _reference(rec.sentence) if prev_mentions else None
        if ref is not None:
            text, start, end = ref
            prev_sentence = previous[2] if previous else ""
            first = min(prev_mentions, key=lambda m: m[2])
            target = None
            if text.lower() in ("he", "she"):
                persons = sorted(
                    (m for m in prev_mentions if m[1] in people.get(m[0], set())),
                    key=lambda m: m[2],
                )
                target = persons[0][0] if persons else None
            elif first[2] <= len(prev_sentence) / 2 and first[1] not in people.get(first[0], set()):
                # "it" and "the country" stand for a state, never for one of its people.
                target = first[0]
                if text.lower() == "the country":
                    others = [
                        w
                        for w in _PROPER.findall(prev_sentence)
                        if not any(w in a or a in w for a in known_aliases)
                    ]
                    target = None if others else target
            if target is not None and target not in {m[0] for m in own}:
                values = {
                    "article_id": rec.article_id,
                    "source": rec.source,
                    "sentence_id": rec.sentence_id,
                    "sentence": rec.sentence,
                    "target": target,
                    "mention": text,
                    "start": start,
                    "end": end,
                }
                if "topic" in columns:
                    values["topic"] = getattr(rec, "topic", None)
                values["kind"] = "reference"
                added.append([values[c] for c in columns])
                by_sentence.setdefault(key, []).append((target, text, start, end))
        previous = (rec.article_id, rec.sentence_id, rec.sentence)
    return pd.DataFrame(added, columns=columns)


def extract_mentions(
    sentences: pd.DataFrame,
    targets: dict[str, dict[str, Any]],
    *,
    progress: bool = True,
    resolve: bool = False,
) -> pd.DataFrame:
    """Find target mentions in every sentence.

    Args:
        sentences: Columns ``article_id, source, sentence_id, sentence`` (plus ``topic`` if
            assigned; it is carried over).
        targets: The config's target table.
        progress: Show a progress bar.
        resolve: Also add references ("it", "he", "the country"); see :func:`resolve_references`.

    Returns:
        One row per mention: ``article_id, source, sentence_id, sentence, target, mention,
        start, end`` (and ``topic``), then ``kind`` (see :func:`mention_kind`; ``"reference"``
        for resolved references), where ``sentence[start:end] == mention``, in sentence order.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    require_columns(sentences, ["article_id", "source", "sentence_id", "sentence"], "sentences")
    lexicon = build_lexicon(targets)
    carry = ["article_id", "source", "sentence_id", "sentence"] + (
        ["topic"] if "topic" in sentences.columns else []
    )
    rows = []
    for rec in tqdm(
        sentences[carry].itertuples(index=False),
        total=len(sentences),
        desc="mentions",
        disable=not progress,
        unit="sent",
    ):
        for target, mention, start, end in find_mentions(rec.sentence, lexicon):
            kind = mention_kind(rec.sentence, mention, end, lexicon)
            rows.append((*rec[:4], target, mention, start, end, *rec[4:], kind))
    columns = [*MENTION_COLUMNS[: MENTION_COLUMNS.index("end") + 1], *carry[4:], "kind"]
    out = pd.DataFrame(rows, columns=columns)
    if resolve and len(out):
        refs = resolve_references(sentences[carry], out, targets)
        if len(refs):
            order = {aid: i for i, aid in enumerate(dict.fromkeys(sentences["article_id"]))}
            out = pd.concat([out, refs], ignore_index=True)
            out = (
                out.assign(_a=out["article_id"].map(order))
                .sort_values(["_a", "sentence_id", "start", "end"], kind="stable")
                .drop(columns="_a")
                .reset_index(drop=True)
            )
    return out.astype({"sentence_id": "int64", "start": "int64", "end": "int64"})
