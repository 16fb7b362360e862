"""Mentions: find every mention of a target actor in every sentence, from an alias lexicon.

Each target (Russia, the US, ...) has aliases in the config: names, demonyms, capitals used as
metonyms, leaders and institutions. Aliases match case-sensitively as written or in ALL CAPS,
as whole words, longest first, so "US" is found and "us" never is, and "Russian Foreign
Ministry" is not also counted as "Russian". Phrases in a target's ``exclude`` list ("Latin
America", "Washington Post") veto the matches they contain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stance.schema import require_columns

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


def _variants(alias: str) -> list[str]:
    return sorted({alias, alias.upper()})


def _alternation(phrases: list[str]) -> str:
    ordered = sorted(set(phrases), key=lambda s: (-len(s), s))
    return "|".join(re.escape(p) for p in ordered)


def build_lexicon(targets: dict[str, dict[str, Any]]) -> Lexicon:
    """Compile the target table of the config into a :class:`Lexicon`.

    Args:
        targets: ``config["targets"]``: name → ``{"aliases": [...], "exclude": [...]}``.

    Raises:
        ValueError: When one alias is given to two targets.
    """
    alias_target: dict[str, str] = {}
    exclude_target: dict[str, str] = {}
    for name, spec in targets.items():
        for alias in spec["aliases"]:
            for variant in _variants(alias.strip()):
                other = alias_target.get(variant)
                if other is not None and other != name:
                    raise ValueError(f"Alias {alias!r} is given to both targets {other!r} and {name!r}; give it to one.")
                alias_target[variant] = name
        for phrase in spec.get("exclude", []):
            for variant in _variants(phrase.strip()):
                exclude_target[variant] = name
    # Whole words: no word character may touch the match on either side. A trailing "." in an
    # alias ("U.S.") may double as the sentence's full stop, so nothing else is required after it.
    pattern = re.compile(rf"(?<!{_WORD})(?:{_alternation(list(alias_target))})(?!{_WORD})")
    exclude = re.compile(rf"(?<!{_WORD})(?:{_alternation(list(exclude_target))})(?!{_WORD})") if exclude_target else None
    return Lexicon(pattern, exclude, alias_target, exclude_target)


def find_mentions(sentence: str, lexicon: Lexicon) -> list[tuple[str, str, int, int]]:
    """Return ``(target, mention, start, end)`` for every alias match in ``sentence``."""
    vetoed: list[tuple[int, int, str]] = []
    if lexicon.exclude is not None:
        vetoed = [(m.start(), m.end(), lexicon.exclude_target[m.group(0)]) for m in lexicon.exclude.finditer(sentence)]
    found = []
    for m in lexicon.pattern.finditer(sentence):
        target = lexicon.alias_target[m.group(0)]
        if any(a <= m.start() and m.end() <= b and t == target for a, b, t in vetoed):
            continue
        found.append((target, m.group(0), m.start(), m.end()))
    return found


def extract_mentions(sentences: pd.DataFrame, targets: dict[str, dict[str, Any]], *, progress: bool = True) -> pd.DataFrame:
    """Find target mentions in every sentence.

    Args:
        sentences: Columns ``article_id, source, sentence_id, sentence`` (plus ``topic`` if
            assigned; it is carried over).
        targets: The config's target table.
        progress: Show a progress bar.

    Returns:
        One row per mention: ``article_id, source, sentence_id, sentence, target, mention,
        start, end`` (and ``topic``), where ``sentence[start:end] == mention``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    require_columns(sentences, ["article_id", "source", "sentence_id", "sentence"], "sentences")
    lexicon = build_lexicon(targets)
    carry = ["article_id", "source", "sentence_id", "sentence"] + (["topic"] if "topic" in sentences.columns else [])
    rows = []
    for rec in tqdm(sentences[carry].itertuples(index=False), total=len(sentences), desc="mentions", disable=not progress, unit="sent"):
        for target, mention, start, end in find_mentions(rec.sentence, lexicon):
            rows.append((*rec[:4], target, mention, start, end, *rec[4:]))
    columns = ["article_id", "source", "sentence_id", "sentence", "target", "mention", "start", "end"] + carry[4:]
    return pd.DataFrame(rows, columns=columns).astype({"sentence_id": "int64", "start": "int64", "end": "int64"})
