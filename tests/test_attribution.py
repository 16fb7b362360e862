from __future__ import annotations

import pandas as pd
import pytest

from stance import attribution, compare


def _voice(sentence: str, mention: str, occurrence: int = 0) -> str:
    start = -1
    for _ in range(occurrence + 1):
        start = sentence.index(mention, start + 1)
    return attribution.voice(sentence, start, start + len(mention))


@pytest.mark.parametrize(
    ("sentence", "mention", "expected"),
    [
        # The author's own statements, and the party making a claim.
        ("Iran shelled the border town on Monday.", "Iran", "author"),
        ("Ankara accused Tehran of arming the rebels.", "Ankara", "author"),
        ("The Kremlin's objections to the new sanctions were ignored.", "Kremlin", "author"),
        ("I believe Turkey made a grave mistake.", "Turkey", "author"),
        ("We have long argued that Iran is isolated.", "Iran", "author"),
        ("Peace is near, Putin said on Friday.", "Putin", "author"),
        # Reported: after someone else's reporting verb, in quotes, "according to", tails.
        ("Ankara accused Tehran of arming the rebels.", "Tehran", "reported"),
        ("Officials said Russia moved troops to the border.", "Russia", "reported"),
        (
            "“We will never trust Washington,” the minister told reporters.",
            "Washington",
            "reported",
        ),
        ("Russia moved troops, according to satellite images.", "Russia", "reported"),
        ("The alleged Iranian plot was uncovered in May.", "Iranian", "reported"),
        ("Fears that Turkey might invade grew over the summer.", "Turkey", "reported"),
        ("Absolutely,” Erdogan said.", "Erdogan", "author"),
        # Disputed by the author: distancing modifiers, scare quotes, rejected claims.
        ("The supposed Russian threat kept the budget growing.", "Russian", "disputed"),
        ("This is hardly how “Iranians” behave.", "Iranians", "disputed"),
        ("There is no evidence that Iran hacked the election.", "Iran", "disputed"),
        ("They repeated baseless claims that Turkey bombed the convoy.", "Turkey", "disputed"),
    ],
)
def test_attribution_voice(sentence: str, mention: str, expected: str) -> None:
    assert _voice(sentence, mention) == expected


def test_attribution_rejection_by_someone_else_is_only_reported() -> None:
    # The minister rejects the claim, not the author.
    s = "The minister said there was no evidence that Russia was involved."
    assert _voice(s, "Russia") == "reported"
    s = "“There is no proof that Iran did it,” the spokesman said."
    assert _voice(s, "Iran") == "reported"


def test_attribution_rejection_is_local_to_the_claim() -> None:
    s = (
        "Washington sent aid to the region last spring, officials in the capital confirmed, "
        "and the committee later heard several more witnesses about the matter before the "
        "report found no evidence of fraud."
    )
    assert _voice(s, "Washington") != "disputed"


def test_attribution_quote_spans() -> None:
    assert attribution.quote_spans('He said "Iran is ready" and left.') == [(8, 22)]
    # A lone closing quote ends a quotation begun in the previous sentence.
    assert attribution.quote_spans('Absolutely," he said.') == [(-1, 11)]
    # A lone opening quote runs to the end of the sentence.
    assert attribution.quote_spans("“Turkey is ready") == [(0, 16)]
    assert attribution.quote_spans("No quotes here.") == []


def test_attribution_attribute_columns_and_weights() -> None:
    s1 = "Officials said Russia moved troops."
    s2 = "There is no evidence that Russia moved troops."
    s3 = "Russia moved troops."
    df = pd.DataFrame(
        {
            "sentence": [s1, s2, s3],
            "start": [s1.index("Russia"), s2.index("Russia"), 0],
            "end": [s1.index("Russia") + 6, s2.index("Russia") + 6, 6],
            "stance_score": [-0.8, -0.6, -0.4],
        }
    )
    out = attribution.attribute(df, reported_weight=0.25)
    assert list(out["voice"]) == ["reported", "disputed", "author"]
    assert list(out["author_score"]) == [-0.8, 0.6, -0.4]
    assert list(out["weight"]) == [0.25, 1.0, 1.0]
    assert list(df.columns) == ["sentence", "start", "end", "stance_score"]  # input untouched
    with pytest.raises(ValueError, match="reported_weight"):
        attribution.attribute(df, reported_weight=2.0)


def _mentions(voices: list[str] | None) -> pd.DataFrame:
    base = pd.DataFrame(
        {
            "article_id": ["a", "a", "b"],
            "source": ["S", "S", "S"],
            "sentence_id": [0, 1, 0],
            "sentence": ["x", "y", "z"],
            "target": ["russia"] * 3,
            "mention": ["Russia"] * 3,
            "start": [0, 0, 0],
            "end": [6, 6, 6],
            "topic": ["libya"] * 3,
            "stance": ["negative", "negative", "positive"],
            "stance_score": [-0.8, -0.6, 0.4],
        }
    )
    if voices is None:
        return base
    sign = [-1.0 if v == "disputed" else 1.0 for v in voices]
    return base.assign(
        voice=voices,
        author_score=base["stance_score"] * sign,
        weight=[0.25 if v == "reported" else 1.0 for v in voices],
    )


def test_attribution_units_use_the_author_stance() -> None:
    units = compare.stance_units(_mentions(["reported", "disputed", "author"]))
    assert list(units["voice"]) == ["reported", "disputed", "author"]
    assert units["stance_score"].tolist() == pytest.approx([-0.2, 0.6, 0.4])
    assert units["model_score"].tolist() == pytest.approx([-0.8, -0.6, 0.4])
    # A disputed negative portrayal counts as the author defending the target.
    assert list(units["stance"]) == ["negative", "positive", "positive"]


def test_attribution_units_without_attribution_keep_model_scores() -> None:
    units = compare.stance_units(_mentions(None))
    assert units["stance_score"].tolist() == pytest.approx([-0.8, -0.6, 0.4])
    assert set(units["voice"]) == {"author"}
