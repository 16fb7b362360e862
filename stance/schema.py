"""Column names and validators for every table the pipeline passes between stages.

One place defines the columns of ``articles``, ``sentences``, ``mentions`` and ``summary``
(the user-facing contract of DESIGN.md) so stages never spell a column name twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

ARTICLE_COLUMNS: tuple[str, ...] = ("article_id", "source", "path", "title", "date", "text")
SENTENCE_COLUMNS: tuple[str, ...] = (
    "article_id",
    "source",
    "sentence_id",
    "sentence",
    "start",
    "end",
    "topic",
)
MENTION_COLUMNS: tuple[str, ...] = (
    "article_id",
    "source",
    "sentence_id",
    "sentence",
    "target",
    "mention",
    "start",
    "end",
    "topic",
    "stance",
    "stance_score",
)
SUMMARY_COLUMNS: tuple[str, ...] = ("source", "target", "topic", "n", "mean", "ci_low", "ci_high")
TOPIC_COLUMNS: tuple[str, ...] = (
    "topic",
    "label",
    "kind",
    "keywords",
    "size",
    "representative_sentences",
)
STANCE_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
ALL_TOPICS = "all"
NOISE_TOPIC = "noise"


def require_columns(df: pd.DataFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    """Raise a clear error when ``df`` lacks any of ``columns``.

    Args:
        df: The table to check.
        columns: Column names that must be present.
        what: A short name of the table for the message, e.g. ``"mentions"``.

    Raises:
        ValueError: Naming the missing columns and the ones that are there.
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"The {what} table is missing column(s) {missing}. "
            f"Got columns {list(df.columns)} instead."
        )
