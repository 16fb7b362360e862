"""Column names, validators and the date parse for every table the pipeline passes between stages.

One place defines the columns of ``articles``, ``sentences``, ``mentions`` and ``summary``
(the user-facing contract of DESIGN.md) so stages never spell a column name twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

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
#: Columns mentions.parquet has after the contract's: what each mention names (see
#: ``stance.config.MENTION_KINDS``).
MENTION_EXTRA_COLUMNS: tuple[str, ...] = ("kind",)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "source",
    "target",
    "topic",
    "n",
    "n_articles",
    "mean",
    "ci_low",
    "ci_high",
)
TOPIC_COLUMNS: tuple[str, ...] = (
    "topic",
    "label",
    "kind",
    "keywords",
    "size",
    "representative_sentences",
)
STANCE_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
#: Who holds a mention's stance (see ``stance.attribution``).
VOICES: tuple[str, ...] = ("author", "reported", "disputed")

#: Data type of every numeric or boolean column any output table has; all others are strings.
COLUMN_DTYPES: dict[str, str] = {
    **dict.fromkeys(
        (
            "n",
            "n_a",
            "n_b",
            "n_articles",
            "n_articles_a",
            "n_articles_b",
            "n_mentions",
            "rank",
            "sentence_id",
            "start",
            "end",
            "size",
        ),
        "int64",
    ),
    **dict.fromkeys(
        (
            "mean",
            "ci_low",
            "ci_high",
            "stance_score",
            "model_score",
            "author_score",
            "weight",
            "mean_a",
            "mean_b",
            "diff",
            "diff_ci_low",
            "diff_ci_high",
            "effect_size",
            "cliffs_delta",
            "p_value",
            "p_adjusted",
            "similarity",
            "disagreement",
        ),
        "float64",
    ),
    "significant": "bool",
}


def dtype_of(column: str) -> str:
    """Return the pandas dtype of ``column`` in the output tables (``"object"`` for strings)."""
    return COLUMN_DTYPES.get(column, "object")


ALL_TOPICS = "all"
NOISE_TOPIC = "noise"


def text_values(column: pd.Series) -> Any:
    """Return a column's values for a new frame: a default-string column as it is.

    ``to_numpy`` would make a Python string per row (~70 MB a million rows), which pandas turns
    back into the same dtype; other dtypes go through ``to_numpy`` as before.
    """
    return column.array if column.dtype == "str" else column.to_numpy()


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


def parse_dates(values: pd.Series | Sequence[Any]) -> pd.Series:
    """Parse dates leniently to timezone-naive UTC timestamps; unparseable values become NaT.

    Accepts ISO strings, "March 3, 2020", timestamps, datetime objects and mixtures of them.
    The one date parse of the package: ingest names the dates it gives NaT for, and the
    comparison's evidence, aligned claims and trends read dates through it.
    """
    import pandas as pd

    s = pd.Series(values, copy=False)
    if pd.api.types.is_datetime64_any_dtype(s):
        parsed = pd.to_datetime(s, errors="coerce", utc=True)
    else:
        text = s.astype(object).where(s.notna(), None)
        text = text.map(lambda v: v if v is None else str(v).strip() or None)
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    parsed = parsed.dt.tz_localize(None)
    # a year outside datetime64[ns] (1677-2262; e.g. "0001-11-30" in a scraped corpus) is no
    # usable date either: NaT, like text that does not parse
    inside = (parsed >= pd.Timestamp.min) & (parsed <= pd.Timestamp.max)
    return parsed.where(inside).astype("datetime64[ns]")
