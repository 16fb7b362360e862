"""Tests for stance.scoring: input validation, windowing, and the shipped model's behaviour."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from stance import scoring
from stance.scoring import LABELS, score_mentions

SEED_CHECK = Path(__file__).parent / "data" / "seed_stance_check.csv"


class FakeScorer:
    """Deterministic stand-in for a StanceScorer: probabilities from a hash of the pair."""

    def predict_proba(self, sentences, starts, ends, *, others=None, batch_size=64, progress=False):
        rows = []
        for s, a, b in zip(sentences, starts, ends, strict=True):
            h = hashlib.sha256(f"{s}|{a}|{b}".encode()).digest()
            w = np.array([h[0] + 1, h[1] + 1, h[2] + 1], dtype=float)
            rows.append(w / w.sum())
        return np.array(rows).reshape(-1, 3)


def _df(**kw):
    base = {"sentence": ["Russia praised Turkey."], "start": [0], "end": [6]}
    base.update(kw)
    return pd.DataFrame(base)


@pytest.mark.parametrize(
    ("df", "exc", "match"),
    [
        (pd.DataFrame({"sentence": ["a b"], "start": [0]}), ValueError, "missing required column"),
        (_df(sentence=[""]), ValueError, r"row 0 .*'sentence' is empty"),
        (_df(sentence=["   "]), ValueError, r"row 0 .*'sentence' is empty"),
        (_df(sentence=[None]), TypeError, r"row 0 .*must be a string"),
        (_df(sentence=[42]), TypeError, r"row 0 .*must be a string"),
        (_df(start=[6], end=[6]), ValueError, r"row 0 .*must be smaller than 'end'"),
        (_df(start=[3], end=[1]), ValueError, r"row 0 .*must be smaller than 'end'"),
        (_df(end=[100]), ValueError, r"row 0 .*outside the sentence"),
        (_df(start=[-1]), ValueError, r"row 0 .*outside the sentence"),
        (_df(start=["0"]), TypeError, r"row 0 .*'start' must be an integer"),
        (_df(end=[2.5]), TypeError, r"row 0 .*'end' must be an integer"),
    ],
)
def test_scoring_bad_input_raises(df, exc, match):
    with pytest.raises(exc, match=match):
        score_mentions(df, progress=False, model=FakeScorer())


def test_scoring_bad_input_names_row_label():
    df = pd.DataFrame(
        {"sentence": ["Russia praised Turkey.", ""], "start": [0, 0], "end": [6, 1]},
        index=["a", "b"],
    )
    with pytest.raises(ValueError, match=r"row 'b' \(position 1\)"):
        score_mentions(df, progress=False, model=FakeScorer())


def test_scoring_rejects_non_dataframe_and_bad_batch_size():
    with pytest.raises(TypeError, match="expects a pandas DataFrame"):
        score_mentions([("a", 0, 1)], progress=False, model=FakeScorer())
    with pytest.raises(ValueError, match="'batch_size' parameter must be a positive int"):
        score_mentions(_df(), batch_size=0, progress=False, model=FakeScorer())


def test_scoring_preserves_index_order_and_columns():
    df = pd.DataFrame(
        {
            "sentence": ["Russia praised Turkey while Iran objected."] * 3 + ["US aid arrived."],
            "start": [0, 15, 28, 0],
            "end": [6, 21, 32, 2],
            "target": ["russia", "turkey", "iran", "us"],
            "extra": [1, 2, 3, 4],
        },
        index=[10, 3, 7, 1],
    )
    out = score_mentions(df, progress=False, model=FakeScorer())
    assert list(out.index) == [10, 3, 7, 1]
    assert list(out["extra"]) == [1, 2, 3, 4]
    assert set(out["stance"]) <= set(LABELS)
    assert out["stance_score"].between(-1, 1).all()
    assert "stance" not in df.columns  # input is not modified


def test_scoring_empty_frame():
    df = pd.DataFrame({"sentence": [], "start": [], "end": []})
    out = score_mentions(df, progress=False, model=FakeScorer())
    assert len(out) == 0
    assert {"stance", "stance_score"} <= set(out.columns)


def test_scoring_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, stance.scoring; print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False False"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(scoring.base_encoder_dir()))


def test_scoring_encode_pairs_marks_span(tokenizer):
    ids, types, markers = scoring.encode_pairs(tokenizer, ["Russia praised Turkey."], [15], [21])
    toks = tokenizer.convert_ids_to_tokens(ids[0])
    a, b = markers[0]
    assert toks[a] == scoring.MARK_START and toks[b] == scoring.MARK_END
    assert toks[a + 1 : b] == ["turkey"]
    assert toks[0] == "[CLS]" and toks[-1] == "[SEP]"
    assert types[0][: toks.index("[SEP]") + 1] == [0] * (toks.index("[SEP]") + 1)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_scoring_long_sentence_window_keeps_target(tokenizer, where):
    filler = " ".join(f"word{i}" for i in range(400))
    sentence = {
        "start": f"Putin condemned it. {filler}",
        "middle": f"{filler} Putin condemned it. {filler}",
        "end": f"{filler} Putin condemned it.",
    }[where]
    a = sentence.index("Putin")
    ids, _, markers = scoring.encode_pairs(tokenizer, [sentence], [a], [a + 5], max_len=64)
    assert len(ids[0]) <= 64
    toks = tokenizer.convert_ids_to_tokens(ids[0])
    m1, m2 = markers[0]
    assert toks[m1] == scoring.MARK_START and toks[m2] == scoring.MARK_END
    assert toks[m1 + 1 : m2] == ["putin"]


def test_scoring_long_mention_is_truncated(tokenizer):
    mention = " ".join(["Ministry"] * 300)
    sentence = f"The {mention} spoke."
    ids, _, markers = scoring.encode_pairs(tokenizer, [sentence], [4], [4 + len(mention)])
    assert len(ids[0]) <= scoring.MAX_LEN
    assert markers[0][1] < len(ids[0])


# -------------------------------------------------------------------------------------------
# Real shipped model
# -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return scoring.load_model()


@pytest.mark.slow
def test_scoring_obvious_examples(model):
    df = pd.DataFrame(
        {
            "sentence": [
                "Critics accused Russia of war crimes and brutal attacks on civilians.",
                "Iran was praised for its generous humanitarian aid and wise leadership.",
                "Turkey's foreign minister will travel to Brussels on Tuesday.",
            ],
            "start": [16, 0, 0],
            "end": [22, 4, 6],
        }
    )
    out = score_mentions(df, progress=False, model=model)
    assert list(out["stance"]) == ["negative", "positive", "neutral"]
    assert out["stance_score"].iloc[0] < -0.3 < 0.3 < out["stance_score"].iloc[1]


@pytest.mark.slow
def test_scoring_multi_target_independent(model):
    s2 = "Russia praised Turkey for its mediation, while Iran was blamed for the violence."
    df = pd.DataFrame(
        {
            "sentence": [s2, s2, s2],
            "start": [0, s2.index("Turkey"), s2.index("Iran")],
            "end": [6, s2.index("Turkey") + 6, s2.index("Iran") + 4],
        }
    )
    out = score_mentions(df, progress=False, model=model)
    assert out["stance"].iloc[1] == "positive"
    assert out["stance"].iloc[2] == "negative"
    assert out["stance_score"].nunique() == 3
    # A pair's result does not depend on which other pairs are in the batch.
    alone = score_mentions(df.iloc[[2]], progress=False, model=model)
    assert alone["stance"].iloc[0] == out["stance"].iloc[2]
    assert alone["stance_score"].iloc[0] == pytest.approx(out["stance_score"].iloc[2], abs=0.05)


@pytest.mark.slow
def test_scoring_deterministic_and_in_range(model):
    df = pd.read_csv(SEED_CHECK)
    a = score_mentions(df, progress=False, model=model, batch_size=8)
    b = score_mentions(df, progress=False, model=model, batch_size=8)
    pd.testing.assert_frame_equal(a, b)
    assert a["stance_score"].between(-1, 1).all()
    assert a["stance"].isin(LABELS).all()


@pytest.mark.slow
def test_scoring_long_sentence_scored(model):
    filler = " ".join(["The meeting continued with routine procedural matters."] * 80)
    s = f"{filler} Observers condemned Russia for the brutal massacre. {filler}"
    a = s.index("Russia")
    out = score_mentions(
        pd.DataFrame({"sentence": [s], "start": [a], "end": [a + 6]}), progress=False, model=model
    )
    assert len(out) == 1
    assert out["stance"].iloc[0] == "negative"


@pytest.mark.slow
def test_scoring_seed_check_accuracy(model):
    df = pd.read_csv(SEED_CHECK)
    assert len(df) >= 40
    out = score_mentions(df, progress=False, model=model)
    accuracy = (out["stance"] == df["label"]).mean()
    assert accuracy >= 0.75


@pytest.mark.slow
def test_scoring_model_info():
    info = scoring.model_info()
    assert info["base_encoder"] == scoring.BASE_ENCODER
    assert all(len(h) == 64 for h in info["files"].values())
    assert info["dev_metrics"]["mean_macro_f1"] > 0.7


def test_scoring_missing_model_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="No stance model found"):
        scoring.load_model(tmp_path)


def test_scoring_bad_precision():
    with pytest.raises(ValueError, match="'precision' parameter must be one of"):
        scoring.load_model(None, "fp8")


def test_scoring_encode_pairs_hides_names(tokenizer):
    s = "Putin said Russia will help, and he thanked Moscow."
    mask = tokenizer.convert_tokens_to_ids(scoring.MASK_TOKEN)
    a = s.index("Russia")
    others = [[(0, 5), (s.index("he "), s.index("he ") + 2), (s.index("Moscow"), len(s) - 1)]]
    ids, _, markers = scoring.encode_pairs(
        tokenizer, [s], [a], [a + 6], mask_id=mask, others=others, names_only=True
    )
    toks = tokenizer.convert_ids_to_tokens(ids[0])
    m1, m2 = markers[0]
    assert toks[m1 + 1 : m2] == [scoring.MASK_TOKEN]
    assert toks[1] == scoring.MASK_TOKEN  # the mention segment
    # Names are hidden wherever they are; the pronoun stays.
    assert not {"putin", "russia", "moscow"} & set(toks)
    assert "he" in toks and toks.count(scoring.MASK_TOKEN) == 4
    # Without names_only every listed span is hidden, the pronoun too.
    ids, _, _ = scoring.encode_pairs(tokenizer, [s], [a], [a + 6], mask_id=mask, others=others)
    assert "he" not in tokenizer.convert_ids_to_tokens(ids[0])


def test_scoring_encode_pairs_pronoun_target_stays_visible_with_names_only(tokenizer):
    s = "Later he rejected the plan."
    mask = tokenizer.convert_tokens_to_ids(scoring.MASK_TOKEN)
    ids, _, markers = scoring.encode_pairs(tokenizer, [s], [6], [8], mask_id=mask, names_only=True)
    toks = tokenizer.convert_ids_to_tokens(ids[0])
    m1, m2 = markers[0]
    assert toks[m1 + 1 : m2] == ["he"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Russia", True), ("US", True), ("the Kremlin", False), ("he", False), ("'Iran'", True)],
)
def test_scoring_is_name(text, expected):
    assert scoring.is_name(text) is expected


def test_scoring_resolve_model_dir(tmp_path):
    assert scoring.resolve_model_dir(None) == scoring.DEFAULT_MODEL_DIR
    for name in scoring.available_models():
        assert scoring.resolve_model_dir(name) == scoring.MODELS_DIR / name
    assert {scoring.MODEL_NAME, scoring.IDENTITY_MODEL_NAME} <= set(scoring.available_models())
    with pytest.raises(FileNotFoundError, match="No stance model 'nope'"):
        scoring.resolve_model_dir("nope")
    (tmp_path / "config.json").write_text("{}")
    assert scoring.resolve_model_dir(tmp_path) == tmp_path


@pytest.mark.slow
def test_scoring_default_model_is_blind_to_the_targets_name(model):
    assert model.config.get("mask_target") == "names"
    rows = []
    for template in (
        "{x} and its allies alone fight the scourge of terrorism.",
        "Observers condemned {x} for the brutal massacre.",
        "{x} is the chief guarantor of peace between the two nations.",
    ):
        for name in ("Russia", "Canada", "Iran", "Washington"):
            s = template.format(x=name)
            rows.append({"sentence": s, "start": s.index(name), "end": s.index(name) + len(name)})
    out = score_mentions(pd.DataFrame(rows), progress=False, model=model)
    scores = out["stance_score"].to_numpy().reshape(3, 4)
    assert np.ptp(scores, axis=1).max() == 0.0
    # ... and the wording still decides: praise, condemnation, praise.
    assert list(out["stance"].iloc[::4]) == ["positive", "negative", "positive"]


@pytest.mark.slow
def test_scoring_other_mentions_of_the_target_are_hidden_too(model):
    s = "Russia said Russia would help."
    t = "Canada said Russia would help."
    df = pd.DataFrame(
        {"sentence": [s, s, t], "start": [12, 0, 12], "end": [18, 6, 18], "target": ["russia"] * 3}
    )
    out = score_mentions(df, progress=False, model=model)
    # Row 0's other mention (row 1) is hidden; in t the first name is another actor and stays.
    swapped = score_mentions(
        df.assign(sentence=[s.replace("Russia", "Turkey")] * 2 + [t]), progress=False, model=model
    )
    assert out["stance_score"].iloc[0] == swapped["stance_score"].iloc[0]
