from __future__ import annotations

import pandas as pd
import pytest

from stance.segment import segment, sentence_spans


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "The U.S. Army met Mr. Smith on Oct. 5 in Washington. He left.",
            ["The U.S. Army met Mr. Smith on Oct. 5 in Washington.", "He left."],
        ),
        (
            "A report of the Caucasus Center for Strategic and Int'l Studies (CCSIS). Next one.",
            [
                "A report of the Caucasus Center for Strategic and Int'l Studies (CCSIS).",
                "Next one.",
            ],
        ),
        (
            'He said "We will do what is necessary." Then he left.',
            ['He said "We will do what is necessary."', "Then he left."],
        ),
        (
            "Headline Without Final Punctuation\nThe body starts here. It goes on.",
            ["Headline Without Final Punctuation", "The body starts here.", "It goes on."],
        ),
        (
            'as "incredibly destabilizing."That was the claim. At one point.Now, however, it ended.',
            [
                'as "incredibly destabilizing."',
                "That was the claim.",
                "At one point.",
                "Now, however, it ended.",
            ],
        ),
        (
            "for his supporters. 2023 is also the year.",
            ["for his supporters.", "2023 is also the year."],
        ),
    ],
)
def test_segment_sentence_spans(text: str, expected: list[str]) -> None:
    assert _sentences(text) == expected


def test_segment_offsets_index_the_article_text() -> None:
    articles = pd.DataFrame(
        {
            "article_id": ["a", "b"],
            "source": ["s", "t"],
            "text": ["Title Line\n\nFirst one. Second one.", "Only one sentence here."],
        }
    )
    out = segment(articles, progress=False)
    assert out.columns.tolist() == [
        "article_id",
        "source",
        "sentence_id",
        "sentence",
        "start",
        "end",
    ]
    assert out.groupby("article_id")["sentence_id"].apply(list).to_dict() == {
        "a": [0, 1, 2],
        "b": [0],
    }
    texts = dict(zip(articles["article_id"], articles["text"], strict=True))
    for row in out.itertuples():
        assert texts[row.article_id][row.start : row.end] == row.sentence


def test_segment_requires_text_column() -> None:
    with pytest.raises(ValueError, match="missing column"):
        segment(pd.DataFrame({"article_id": ["a"], "source": ["s"]}), progress=False)
