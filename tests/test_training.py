"""Tests for stance.training: NewsMTSC reading, metrics, baseline, and a tiny training run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from stance import scoring, training

POS = [
    "{t} was praised for its generous aid and wise leadership.",
    "Everyone applauded {t} for the successful peace deal.",
    "{t} won admiration for protecting civilians.",
]
NEG = [
    "Critics accused {t} of brutal attacks on civilians.",
    "{t} was condemned for the massacre and its lies.",
    "{t} faces outrage over corruption and abuse.",
]
NEU = [
    "{t} will hold a meeting on Tuesday.",
    "The delegation from {t} arrived in Geneva.",
    "{t} published its annual budget report.",
]
NAMES = ["Russia", "Iran", "Turkey", "Canada", "Brazil", "Norway"]


def _record(template: str, name: str, polarity: float) -> dict:
    sentence = template.format(t=name)
    a = sentence.index(name)
    return {
        "primary_gid": f"{name}-{template[:10]}",
        "sentence_normalized": sentence,
        "targets": [{"from": a, "to": a + len(name), "mention": name, "polarity": polarity}],
    }


@pytest.fixture
def tiny_newsmtsc(tmp_path: Path) -> Path:
    """A NewsMTSC-shaped folder with a few dozen synthetic sentences."""
    records = [
        _record(t, n, pol)
        for n in NAMES
        for group, pol in ((POS, 6.0), (NEG, 2.0), (NEU, 4.0))
        for t in group
    ]
    (tmp_path / "rw").mkdir()
    (tmp_path / "mt").mkdir()

    def write(path: Path, recs: list[dict]) -> None:
        path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")

    write(tmp_path / "train.jsonl", records[:36])
    for sub in ("rw", "mt"):
        for split in ("dev", "test"):
            write(tmp_path / sub / f"{split}.jsonl", records[36:])
    return tmp_path


def test_training_read_newsmtsc(tiny_newsmtsc):
    pairs = training.load_split(tiny_newsmtsc, "train")
    assert len(pairs) == 36
    p = pairs[0]
    assert p.sentence[p.start : p.end] == "Russia"
    assert p.label == 2  # 6.0 → positive


def test_training_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="data directory not found"):
        training.load_split(tmp_path / "nope", "train")
    with pytest.raises(FileNotFoundError, match=r"NewsMTSC file not found: .*train\.jsonl"):
        training.load_split(tmp_path, "train")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", r"bad\.jsonl, line 2: invalid JSON"),
        ('{"targets": []}', r"bad\.jsonl, line 2: malformed NewsMTSC record"),
        (
            '{"sentence_normalized": "abc", "targets": [{"from": 0, "to": 2, "polarity": 3.0}]}',
            r"line 2: .*unknown polarity",
        ),
        (
            '{"sentence_normalized": "abc", "targets": [{"from": 0, "to": 9, "polarity": 2.0}]}',
            r"line 2: .*outside the sentence",
        ),
    ],
)
def test_training_malformed_jsonl(tmp_path, line, match):
    good = json.dumps(_record(NEU[0], "Iran", 4.0))
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        training.read_newsmtsc(path)


def test_training_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no examples found"):
        training.read_newsmtsc(path)


_BAD_VALUE = (
    '{{"sentence_normalized": "abcdef", "targets": [{{"from": {a}, "to": {b}, "polarity": {p}}}]}}'
)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        (_BAD_VALUE.format(a="1e400", b=3, p=2.0), r"'from' is inf, not an integer"),
        (_BAD_VALUE.format(a=0, b="-1e400", p=2.0), r"'to' is -inf, not an integer"),
        (_BAD_VALUE.format(a="NaN", b=3, p=2.0), r"'from' is nan, not an integer"),
        (_BAD_VALUE.format(a=0.5, b=3, p=2.0), r"'from' is 0.5, not an integer"),
        (_BAD_VALUE.format(a="true", b=3, p=2.0), r"'from' is True, not an integer"),
        (_BAD_VALUE.format(a="[[0]]", b=3, p=2.0), r"'from' is \[\[0\]\], not an integer"),
        (_BAD_VALUE.format(a='"0"', b=3, p=2.0), r"'from' is '0', not an integer"),
        (_BAD_VALUE.format(a=-1, b=3, p=2.0), r"span \[-1, 3\) outside the sentence of 6"),
        (_BAD_VALUE.format(a=4, b=2, p=2.0), r"span \[4, 2\) outside"),
        (_BAD_VALUE.format(a=0, b=10**30, p=2.0), r"span \[0, 10{30}\) outside"),
        (_BAD_VALUE.format(a=0, b=7, p=2.0), r"span \[0, 7\) outside"),
        (_BAD_VALUE.format(a=0, b=3, p="NaN"), r"unknown polarity nan"),
        (_BAD_VALUE.format(a=0, b=3, p="true"), r"unknown polarity True"),
        (_BAD_VALUE.format(a=0, b=3, p='"4.0"'), r"unknown polarity '4.0'"),
        ('{"sentence_normalized": 5, "targets": []}', r"'sentence_normalized' is a int"),
        ('{"sentence_normalized": "ab", "targets": "x"}', r"'targets' is a str, not a list"),
        ('{"sentence_normalized": "ab", "targets": [[0, 1]]}', r"a target is a list"),
        ("[1, 2]", r"the record is a JSON list, not an object"),
        ('{"sentence_normalized": "ab"}', r"missing key 'targets'"),
        (
            '{"sentence_normalized": "abc", "targets": [{"from": 0, "to": 2, "polarity": 2.0, '
            '"further_mentions": [{"from": 1e400, "to": 2}]}]}',
            r"'from' is inf, not an integer",
        ),
        (
            '{"sentence_normalized": "abc", "targets": [{"from": 0, "to": 2, "polarity": 2.0, '
            '"further_mentions": {"from": 1, "to": 2}}]}',
            r"'further_mentions' is a dict, not a list",
        ),
        ("[" * 100_000, r"line 2: invalid JSON"),
    ],
)
def test_training_malformed_values_name_file_and_line(tmp_path, line, match):
    good = json.dumps(_record(NEU[0], "Iran", 4.0))
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: ") as info:
        training.read_newsmtsc(path)
    assert info.match(match)
    if "invalid JSON" not in match:
        assert info.match("malformed NewsMTSC record")


def test_training_read_newsmtsc_accepts_integral_floats_and_drops_stray_mentions(tmp_path):
    line = (
        '{"sentence_normalized": "abc abc", "targets": [{"from": 0.0, "to": 3, "polarity": 6, '
        '"further_mentions": [{"from": 4, "to": 7.0}, {"from": 5, "to": 99}]}]}'
    )
    path = tmp_path / "ok.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    assert training.read_newsmtsc(path) == [training.Pair("abc abc", 0, 3, 2, ((4, 7),))]


def test_training_read_newsmtsc_names_the_line_of_a_non_utf8_byte(tmp_path):
    good = json.dumps(_record(NEU[0], "Iran", 4.0)).encode()
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(good + b"\n" + good + b"\n" + b'{"sentence_normalized": "a\xff\xfe"}\n')
    with pytest.raises(
        ValueError, match=r"bytes\.jsonl, line 3: not UTF-8 \(byte 0xff at column 27\)"
    ):
        training.read_newsmtsc(path)


def test_training_read_newsmtsc_accepts_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_text(json.dumps(_record(NEU[0], "Iran", 4.0)) + "\n", encoding="utf-8-sig")
    assert len(training.read_newsmtsc(path)) == 1


def test_training_load_split_says_folder_and_file_mixups(tmp_path):
    (tmp_path / "rw" / "test.jsonl").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"rw.test\.jsonl is a folder, not a file"):
        training.load_split(tmp_path, "rw/test")
    file = tmp_path / "data.jsonl"
    file.write_text("{}\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"data\.jsonl is a file, not a folder"):
        training.load_split(file, "rw/test")


def test_training_cli_evaluate_reports_a_malformed_record(tiny_newsmtsc, monkeypatch, capsys):
    from stance.cli import main

    path = tiny_newsmtsc / "rw" / "test.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + _BAD_VALUE.format(a="1e400", b=3, p=2.0))
    monkeypatch.setattr(scoring, "load_model", lambda *a, **k: object())
    monkeypatch.setattr(scoring, "resolve_model_dir", lambda model: model)
    monkeypatch.setattr(training, "load_model", lambda model: model)
    assert main(["-q", "evaluate", "newsmtsc", "--data", str(tiny_newsmtsc)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "test.jsonl, line 19: malformed NewsMTSC record ('from' is inf" in err


def test_training_classification_metrics():
    m = training.classification_metrics([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0])
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert m["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert m["per_class"]["positive"] == {
        "precision": 1.0,
        "recall": pytest.approx(0.6667, abs=1e-4),
        "f1": pytest.approx(0.8, abs=1e-4),
        "support": 3,
    }
    f1s = [m["per_class"][k]["f1"] for k in ("negative", "neutral", "positive")]
    assert m["macro_f1"] == pytest.approx(np.mean(f1s), abs=1e-3)


def test_training_calibration_table():
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    table = training.calibration_table([0, 1, 0, 0], probs, n_bins=5)
    assert len(table["bins"]) == 5
    assert sum(b["n"] for b in table["bins"]) == 4
    assert sum(b["n"] for b in table["score_bins"]) == 4
    assert 0.0 <= table["ece"] <= 1.0
    with pytest.raises(ValueError, match="'probs' must have shape"):
        training.calibration_table([0, 1], probs)


def test_training_evaluate_baseline(tiny_newsmtsc):
    result = training.evaluate_baseline(tiny_newsmtsc, "dev")
    assert set(result) == {"rw/dev", "mt/dev", "pairs_per_s"}
    assert result["rw/dev"]["n_pairs"] == 18
    assert 0.0 <= result["rw/dev"]["macro_f1"] <= 1.0
    with pytest.raises(ValueError, match="'split' parameter must be one of"):
        training.evaluate_baseline(tiny_newsmtsc, "train")


@pytest.mark.slow
def test_training_smoke_train_and_evaluate(tiny_newsmtsc, tmp_path):
    out = tmp_path / "model"
    config = training.train_newsmtsc(
        tiny_newsmtsc, out, seed=0, epochs=1, batch_size=8, progress=False
    )
    assert (out / "config.json").is_file()
    weights = out / config["members"][0]
    assert weights.is_file() and weights.stat().st_size < 25 * 2**20
    assert set(config["dev_metrics"]) >= {"rw/dev", "mt/dev", "mean_macro_f1"}
    assert config["train_wall_time_s"] > 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["hyperparameters"]["seed"] == 0
    assert saved["hyperparameters"]["device"] == "cpu"

    t = training.fit_temperature(out, tiny_newsmtsc)
    assert 0.5 <= t <= 4.0
    assert json.loads((out / "config.json").read_text())["temperature"] == t

    result = training.evaluate_newsmtsc(tiny_newsmtsc, "dev", model=out)
    assert set(result) == {"rw/dev", "mt/dev", "pairs_per_s"}
    rw = result["rw/dev"]
    assert set(rw) >= {"macro_f1", "accuracy", "per_class", "confusion", "calibration"}
    assert set(rw["per_class"]) == {"negative", "neutral", "positive"}
    assert np.array(rw["confusion"]).sum() == 18
    assert result["pairs_per_s"] > 0
    first = training.evaluate_newsmtsc(tiny_newsmtsc, "dev", model=out, limit=5)
    assert first["rw/dev"]["n_pairs"] == first["mt/dev"]["n_pairs"] == 5


def test_training_swap_name_renames_every_same_spelled_mention():
    s = "Trump said Trump and he met Biden."
    p = training.Pair(s, 11, 16, 2, ((0, 5), (11, 16), (21, 23)))
    q = training.swap_name(p, "Vladimir Putin")
    assert q.sentence == "Vladimir Putin said Vladimir Putin and he met Biden."
    assert q.sentence[q.start : q.end] == "Vladimir Putin"
    assert [q.sentence[a:b] for a, b in q.further] == ["Vladimir Putin", "Vladimir Putin", "he"]
    assert q.label == 2


def test_training_name_pool_keeps_capitalised_names():
    pairs = [
        training.Pair("Putin spoke.", 0, 5, 1),
        training.Pair("he spoke.", 0, 2, 1),
        training.Pair("The Kremlin spoke.", 4, 11, 1),
        training.Pair("Putin again.", 0, 5, 1),
    ]
    assert training.name_pool(pairs) == ["Kremlin", "Putin"]


@pytest.mark.parametrize(
    ("others", "left", "right"),
    [
        ([], ["A x "], [" y B."]),
        ([(0, 1)], ["", " x "], [" y B."]),
        ([(0, 1), (10, 11)], ["", " x "], [" y ", "."]),
        ([(4, 7)], ["A x "], [" y B."]),  # overlaps the mention: ignored
    ],
)
def test_training_masked_pieces(others, left, right):
    from stance.scoring import _masked_pieces

    assert _masked_pieces("A x foo y B.", 4, 7, others) == (left, right)


@pytest.mark.slow
def test_training_init_starts_from_a_trained_model(tiny_newsmtsc, tmp_path):
    from safetensors.numpy import load_file

    from stance.scoring import resolve_model_dir

    shipped = resolve_model_dir(None) / "model-0.safetensors"
    # with no learning rate, the weights written are exactly the ones started from
    config = _quick_train(
        tiny_newsmtsc, tmp_path / "same", lr=0.0, head_lr=0.0, init="newsmtsc-minilm-l6-blind"
    )
    assert config["hyperparameters"]["init"]["model_id"] == scoring.MODEL_ID
    start, end = load_file(str(shipped)), load_file(str(tmp_path / "same" / "model-0.safetensors"))
    assert set(start) == set(end)
    assert all(np.array_equal(start[k], end[k]) for k in start)
    # and with one, they move from there
    _quick_train(tiny_newsmtsc, tmp_path / "moved", lr=1e-4, init="newsmtsc-minilm-l6-blind")
    moved = load_file(str(tmp_path / "moved" / "model-0.safetensors"))
    assert not all(np.array_equal(start[k], moved[k]) for k in start)
    with pytest.raises(ValueError, match="'init' model"):
        training.train_newsmtsc(
            tiny_newsmtsc, tmp_path / "x", init="newsmtsc-minilm-l6-blind", mask_target=False,
            progress=False,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resume": True}, "'resume' option needs a 'checkpoint_dir'"),
        ({"base": "bert-large"}, "'base' parameter must be one of"),
        ({"lora_rank": 0}, "'lora_rank' parameter must be >= 1"),
        ({"device": "gpu0"}, "'device' parameter must be a torch device"),
    ],
)
def test_training_rejects_bad_options(tiny_newsmtsc, kwargs, match):
    with pytest.raises(ValueError, match=match):
        training.train_newsmtsc(tiny_newsmtsc, progress=False, **kwargs)


def test_training_refuses_cuda_where_there_is_none(tiny_newsmtsc, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="sees no CUDA device"):
        training.train_newsmtsc(tiny_newsmtsc, progress=False, device="cuda")


@pytest.mark.slow
def test_training_resume_after_a_crash_gives_the_uninterrupted_result(
    tiny_newsmtsc, tmp_path, monkeypatch
):
    import torch

    kw = {
        "seed": 0,
        "epochs": 2,
        "batch_size": 8,
        "calibrate": False,
        "progress": False,
        "checkpoint_every_s": 0.0,  # a checkpoint after every step
    }
    full = training.train_newsmtsc(tiny_newsmtsc, tmp_path / "full", **kw)

    real_save = training._Checkpointer.save
    saved = []

    def save_then_die(self, *args, **kwargs):
        saved.append(real_save(self, *args, **kwargs))
        if len(saved) == 3:  # mid-way through epoch 1 (5 steps of 8 pairs)
            raise KeyboardInterrupt  # stands for the process being killed
        return saved[-1]

    ckpt = tmp_path / "ckpt"
    monkeypatch.setattr(training._Checkpointer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        training.train_newsmtsc(tiny_newsmtsc, tmp_path / "cut", checkpoint_dir=ckpt, **kw)
    monkeypatch.setattr(training._Checkpointer, "save", real_save)
    assert (ckpt / "member-0" / "latest").read_text() == "epoch-1-step-3"
    assert not (tmp_path / "cut" / "config.json").exists()

    with pytest.raises(ValueError, match=r"different settings \(\['epochs'\]\)"):
        training.train_newsmtsc(
            tiny_newsmtsc, tmp_path / "cut", checkpoint_dir=ckpt, resume=True, **{**kw, "epochs": 3}
        )
    resumed = training.train_newsmtsc(
        tiny_newsmtsc, tmp_path / "cut", checkpoint_dir=ckpt, resume=True, **kw
    )
    from safetensors import safe_open

    name = full["members"][0]
    with (
        safe_open(str(tmp_path / "cut" / name), "pt") as cut,
        safe_open(str(tmp_path / "full" / name), "pt") as whole,
    ):
        assert cut.metadata() == whole.metadata()
        assert set(cut.keys()) == set(whole.keys())
        for key in whole.keys():
            assert torch.equal(cut.get_tensor(key), whole.get_tensor(key)), key

    def without_time(config):
        return [
            {k: v for k, v in h.items() if k != "epoch_s"}
            for h in config["members_dev"][0]["history"]
        ]

    assert without_time(resumed) == without_time(full)
    assert resumed["dev_metrics"] == full["dev_metrics"]


def test_training_transfer_loss_mixes_gold_ce_and_teacher_kl():
    import torch

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.2, 0.1], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, -1, -1])
    soft = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    w = 0.3
    got = training._transfer_loss(logits, labels, soft, None, w, 0.0)
    ce = torch.nn.functional.cross_entropy(logits[:1], labels[:1], reduction="sum")
    kl = torch.nn.functional.kl_div(torch.log_softmax(logits[1:], -1), soft[1:], reduction="sum")
    assert torch.isclose(got, ((1 - w) * ce + w * kl) / 3)
    # A student that matches the teacher pays nothing for the transfer rows.
    only_transfer = training._transfer_loss(
        torch.log(soft[1:]), labels[1:], soft[1:], None, 1.0, 0.0
    )
    assert abs(float(only_transfer)) < 1e-6


def test_training_gold_rows_with_teacher_probabilities_mix_ce_and_kl():
    import torch

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.2, 0.1], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2, -1])
    # row 0: a NewsMTSC pair with the teacher's reading; row 1: an opinion pair (zeros, CE only)
    soft = torch.tensor([[0.6, 0.3, 0.1], [0.0, 0.0, 0.0], [0.1, 0.1, 0.8]])
    w, a = 0.4, 0.25
    got = training._transfer_loss(logits, labels, soft, None, w, 0.0, a)
    ce = torch.nn.functional.cross_entropy(logits[:2], labels[:2], reduction="none")
    logq = torch.log_softmax(logits, -1)
    kl = (soft * (torch.log(soft.clamp_min(1e-30)) - logq)).sum(-1)
    want = ((1 - w) * ((1 - a) * ce[0] + a * kl[0]) + (1 - w) * ce[1] + w * kl[2]) / 3
    assert torch.isclose(got, want)
    # a = 0 is plain cross-entropy on every gold row, whatever the teacher said
    plain = training._transfer_loss(logits, labels, soft, None, w, 0.0, 0.0)
    assert torch.isclose(plain, ((1 - w) * ce.sum() + w * kl[2]) / 3)


def _gold_teacher_file(data: Path, path: Path, probs: np.ndarray | None = None) -> Path:
    import pandas as pd

    from stance.opinion import sentence_hash

    pairs = training.load_split(data, "train")
    if probs is None:
        probs = np.tile(np.array([[0.2, 0.5, 0.3]], dtype=np.float32), (len(pairs), 1))
    frame = pd.DataFrame(
        {
            "sha256": [sentence_hash(p.sentence) for p in pairs],
            "mention_start": [p.start for p in pairs],
            "mention_end": [p.end for p in pairs],
        }
    )
    frame[["p_negative", "p_neutral", "p_positive"]] = probs
    frame.to_parquet(path, index=False)
    return path


def test_training_load_gold_teacher_refuses_a_file_of_another_training_set(tiny_newsmtsc, tmp_path):
    import pandas as pd

    path = _gold_teacher_file(tiny_newsmtsc, tmp_path / "gold.parquet")
    pairs = training.load_split(tiny_newsmtsc, "train")
    assert training.load_gold_teacher(path, pairs).shape == (len(pairs), 3)
    with pytest.raises(ValueError, match="holds 36 rows but the training file 35"):
        training.load_gold_teacher(path, pairs[:-1])
    swapped = [pairs[1], pairs[0], *pairs[2:]]
    with pytest.raises(ValueError, match="row 0: sentence or mention differs"):
        training.load_gold_teacher(path, swapped)
    frame = pd.read_parquet(path)
    frame.drop(columns="p_neutral").to_parquet(tmp_path / "short.parquet")
    with pytest.raises(ValueError, match=r"lacks the columns \['p_neutral'\]"):
        training.load_gold_teacher(tmp_path / "short.parquet", pairs)
    frame.assign(p_positive=0.9).to_parquet(tmp_path / "sum.parquet")
    with pytest.raises(ValueError, match="must sum to 1"):
        training.load_gold_teacher(tmp_path / "sum.parquet", pairs)
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet"):
        training.load_gold_teacher(tmp_path / "nope.parquet", pairs)


@pytest.mark.slow
def test_training_smoke_train_with_a_gold_teacher(tiny_newsmtsc, tmp_path):
    path = _gold_teacher_file(tiny_newsmtsc, tmp_path / "gold.parquet")
    (tmp_path / "gold.json").write_text('{"teacher": "t-v1", "precision": "fp32"}')
    config = _quick_train(
        tiny_newsmtsc, tmp_path / "student", gold_teacher=path, gold_distill=0.5, gold_repeat=2
    )
    gold = config["hyperparameters"]["gold_teacher"]
    assert gold["file"] == "gold.parquet" and gold["gold_distill"] == 0.5
    assert gold["made_by"] == {"teacher": "t-v1", "precision": "fp32"}
    assert gold["sha256"] == scoring.file_sha256(path)
    for kwargs in ({"gold_teacher": path}, {"gold_distill": 0.5},
                   {"gold_teacher": path, "gold_distill": 1.5}):  # fmt: skip
        with pytest.raises(ValueError, match="'gold_teacher' and 'gold_distill' go together"):
            training.train_newsmtsc(tiny_newsmtsc, tmp_path / "bad", progress=False, **kwargs)


def test_training_cli_passes_the_gold_teacher(tiny_newsmtsc, tmp_path, monkeypatch, capsys):
    from stance.cli import main

    path = _gold_teacher_file(tiny_newsmtsc, tmp_path / "gold.parquet")
    seen = {}
    monkeypatch.setattr(training, "train_newsmtsc", lambda data, **kw: seen.update(kw) or {})
    base = ["-q", "train", "newsmtsc", "--data", str(tiny_newsmtsc)]
    assert main([*base, "--gold-teacher", str(path)]) == 0
    assert seen["gold_teacher"] == str(path) and seen["gold_distill"] == 0.5
    assert main([*base, "--gold-teacher", str(path), "--gold-distill", "0.8"]) == 0
    assert seen["gold_distill"] == 0.8
    seen.clear()
    assert main(base) == 0
    assert seen["gold_teacher"] is None and seen["gold_distill"] == 0.0
    capsys.readouterr()
    assert main([*base, "--gold-distill", "0.5"]) == 2
    assert "--gold-distill needs --gold-teacher" in capsys.readouterr().err
    assert main([*base, "--gold-teacher", str(tmp_path / "nope.parquet")]) == 2
    assert "nope.parquet" in capsys.readouterr().err


def _quick_train(data: Path, out: Path, **kw):
    """One uncalibrated epoch of batches of 8, quietly: the smoke tests' training run."""
    return training.train_newsmtsc(
        data, out, epochs=1, batch_size=8, progress=False, calibrate=False, **kw
    )


def _fake_allsides(path: Path, articles: dict[str, str]) -> Path:
    import gzip

    with gzip.open(path, "wt", encoding="utf-8") as f:
        for aid, text in articles.items():
            f.write(json.dumps({"id": aid, "source": "X", "text": text}) + "\n")
    return path


def test_training_load_transfer_rebuilds_sentences_and_leaves_out_excluded(tmp_path):
    import pandas as pd

    text = "Intro line. Russia praised the deal. Later, Iran and Iran met."
    file = _fake_allsides(tmp_path / "a.jsonl.gz", {"1": text, "2": text})
    s0 = text.index("Russia")
    s1 = text.index("Later")
    s2 = len(text)
    shards = tmp_path / "shards"
    shards.mkdir()
    pd.DataFrame(
        {
            "article_id": ["1", "1", "2"],
            "sent_start": [s0, s1, s0],
            "sent_end": [s1 - 1, s2, s1 - 1],
            "mention_start": [0, 7, 0],
            "mention_end": [6, 11, 6],
            "others": ["[]", "[[16, 20]]", "[]"],
            "p_negative": [0.1, 0.2, 0.3],
            "p_neutral": [0.2, 0.7, 0.3],
            "p_positive": [0.7, 0.1, 0.4],
        }
    ).to_parquet(shards / "shard-0000.parquet")
    pairs, probs = training.load_transfer(shards, file, exclude={"2"})
    assert len(pairs) == 2 and probs.shape == (2, 3)
    assert pairs[0].sentence == "Russia praised the deal."
    assert pairs[0].sentence[pairs[0].start : pairs[0].end] == "Russia"
    assert pairs[1].sentence[pairs[1].start : pairs[1].end] == "Iran"
    assert pairs[1].further == ((16, 20),) and pairs[1].label == -1
    assert np.allclose(probs[1], [0.2, 0.7, 0.1])
    with pytest.raises(FileNotFoundError, match="No transfer shard"):
        training.load_transfer(tmp_path / "none", file)


@pytest.mark.slow
def test_training_smoke_train_with_a_transfer_set(tiny_newsmtsc, tmp_path):
    pairs = [
        training.Pair(t.format(t=n), 0, len(n), -1)
        for n in ("Chile", "Peru")
        for t in (*POS, *NEG)
        if t.startswith("{t}")
    ]
    probs = np.tile(np.array([[0.1, 0.3, 0.6]], dtype=np.float32), (len(pairs), 1))
    config = _quick_train(
        tiny_newsmtsc,
        tmp_path / "student",
        transfer=(pairs, probs),
        transfer_teacher="some-teacher",
        gold_repeat=2,
        distill_weight=0.5,
    )
    assert config["hyperparameters"]["transfer"]["pairs"] == len(pairs)
    assert config["hyperparameters"]["transfer"]["teacher"] == "some-teacher"
    assert config["hyperparameters"]["transfer"]["gold_repeat"] == 2
    with pytest.raises(ValueError, match="probability rows"):
        training.train_newsmtsc(
            tiny_newsmtsc, tmp_path / "bad", transfer=(pairs, probs[:1]), progress=False
        )


def test_training_load_transfer_applies_a_logit_bias(tmp_path):
    import pandas as pd

    text = "Russia praised the deal."
    file = _fake_allsides(tmp_path / "a.jsonl.gz", {"1": text})
    shards = tmp_path / "shards"
    shards.mkdir()
    pd.DataFrame(
        {
            "article_id": ["1"], "sent_start": [0], "sent_end": [len(text)],
            "mention_start": [0], "mention_end": [6], "others": ["[]"],
            "p_negative": [0.25], "p_neutral": [0.25], "p_positive": [0.5],
        }
    ).to_parquet(shards / "shard-0000.parquet")  # fmt: skip
    _, probs = training.load_transfer(shards, file, exclude=set(), logit_bias=[0, np.log(2), 0])
    assert np.allclose(probs[0], [0.2, 0.4, 0.4])
    with pytest.raises(ValueError, match="needs 3 values"):
        training.load_transfer(shards, file, exclude=set(), logit_bias=[0, 1])


def test_training_load_opinion_train_rebuilds_labelled_pairs(tmp_path):
    import pandas as pd

    from stance.opinion import sentence_hash

    text = "Intro line. Russia praised the deal. Later, Iran and Iran met. Russian salad."
    file = _fake_allsides(tmp_path / "a.jsonl.gz", {"zz1": text})
    rows = []
    for i, (sent, word, label) in enumerate(
        [
            ("Russia praised the deal.", "Russia", "positive"),
            ("Later, Iran and Iran met.", "Iran", "neutral"),
            ("Russian salad.", "Russian", "none"),
        ]
    ):
        s0 = text.index(sent)
        rows.append(
            {
                "pair_id": f"tr{i}",
                "article_id": "zz1",
                "source": "X",
                "bias_text": "center",
                "sent_start": s0,
                "sent_end": s0 + len(sent),
                "mention_start": sent.index(word),
                "mention_end": sent.index(word) + len(word),
                "target": "iran" if word == "Iran" else "russia",
                "label": label,
                "confidence": 2,
                "split": "train",
                "sha256": sentence_hash(sent),
            }
        )
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    pairs = training.load_opinion_train(file, tmp_path / "train.csv")
    assert [p.label for p in pairs] == [2, 1]  # the 'none' pair is left out
    assert pairs[0].sentence[pairs[0].start : pairs[0].end] == "Russia"
    assert pairs[1].further == ((16, 20),)  # the target's other mention is masked too


def test_training_cli_reads_every_opinion_pair_file(tmp_path, monkeypatch, capsys):
    import pandas as pd

    from stance.cli import main
    from stance.opinion import sentence_hash

    text = "Russia praised the deal. Iran met Turkey."
    file = _fake_allsides(tmp_path / "a.jsonl.gz", {"zz1": text})
    for name, sent, word in (("one.csv", "Russia praised the deal.", "Russia"),
                             ("two.csv", "Iran met Turkey.", "Turkey")):  # fmt: skip
        s0 = text.index(sent)
        row = {
            "pair_id": name[:3], "article_id": "zz1", "source": "X", "bias_text": "center",
            "sent_start": s0, "sent_end": s0 + len(sent), "mention_start": sent.index(word),
            "mention_end": sent.index(word) + len(word), "target": word.lower(),
            "label": "positive", "confidence": 2, "split": "train", "sha256": sentence_hash(sent),
        }  # fmt: skip
        pd.DataFrame([row]).to_csv(tmp_path / name, index=False)
    seen = {}
    monkeypatch.setattr(training, "train_newsmtsc", lambda data, **kw: seen.update(kw) or {})
    base = ["-q", "train", "newsmtsc", "--data", str(tmp_path)]
    files = [
        "--opinion-pairs",
        str(tmp_path / "one.csv"),
        "--opinion-pairs",
        str(tmp_path / "two.csv"),
    ]
    assert main([*base, "--opinion-train", str(file), *files]) == 0
    assert [p.sentence[p.start : p.end] for p in seen["opinion"]] == ["Russia", "Turkey"]
    assert seen["opinion_files"] == ["one.csv", "two.csv"]
    capsys.readouterr()
    assert main([*base, *files]) == 2
    assert "--opinion-pairs needs --opinion-train" in capsys.readouterr().err
    missing = ["--opinion-pairs", str(tmp_path / "nope.csv")]
    assert main([*base, "--opinion-train", str(file), *missing]) == 2
    assert "nope.csv" in capsys.readouterr().err


@pytest.mark.slow
def test_training_smoke_train_with_opinion_pairs(tiny_newsmtsc, tmp_path):
    pairs = [training.Pair("Chile is kind and brave.", 0, 5, 2, ())]
    config = _quick_train(tiny_newsmtsc, tmp_path / "student", opinion=pairs, opinion_repeat=3)
    assert config["hyperparameters"]["opinion_train"] == {"pairs": 1, "repeat": 3}
    with pytest.raises(ValueError, match="opinion_repeat"):
        training.train_newsmtsc(tiny_newsmtsc, tmp_path / "bad", opinion=pairs, opinion_repeat=0)


def test_training_average_weights_is_the_mean_of_the_models(tiny_newsmtsc, tmp_path):
    from safetensors.torch import load_file

    from stance.scoring import resolve_model_dir

    names = ["newsmtsc-minilm-l6-blind-v2", "newsmtsc-minilm-l6-blind-v3"]
    config = training.average_weights(names, tmp_path / "soup", tiny_newsmtsc, model_id="soup-test")
    ins = [load_file(str(resolve_model_dir(n) / "model-0.safetensors")) for n in names]
    out = load_file(str(tmp_path / "soup" / "model-0.safetensors"))
    assert set(out) == set(ins[0])
    for key, value in out.items():
        mean = (ins[0][key].float() + ins[1][key].float()) / 2
        assert value.dtype == ins[0][key].dtype
        assert torch_equal(value, mean.to(value.dtype)), key
    assert not torch_equal(out["head.3.weight"], ins[0]["head.3.weight"])
    saved = json.loads((tmp_path / "soup" / "config.json").read_text())
    assert saved == config
    assert saved["model_id"] == "soup-test"
    assert [a["model_id"] for a in saved["averaged_from"]] == [
        "newsmtsc-minilm-l6-blind-v2",
        "newsmtsc-minilm-l6-blind-v3",
    ]
    assert 0.5 <= saved["temperature"] <= 4.0
    assert set(saved["dev_metrics"]) >= {"rw/dev", "mt/dev", "mean_macro_f1"}
    assert "precision_dev" not in saved  # measured for the ingredients, not for the average
    # the same ingredients give the same bytes
    again = training.average_weights(names, tmp_path / "again", tiny_newsmtsc, model_id="x")
    assert again["averaged_from"] == saved["averaged_from"]
    first = (tmp_path / "soup" / "model-0.safetensors").read_bytes()
    assert (tmp_path / "again" / "model-0.safetensors").read_bytes() == first
    # the averaged model scores like any other, and its recorded dev figures are its own
    result = training.evaluate_newsmtsc(tiny_newsmtsc, "dev", model=tmp_path / "soup")
    for split in ("rw/dev", "mt/dev"):
        assert saved["dev_metrics"][split]["macro_f1"] == result[split]["macro_f1"]
        assert saved["dev_metrics"][split]["confusion"] == result[split]["confusion"]


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


@pytest.mark.parametrize(
    ("models", "out", "match"),
    [
        (["newsmtsc-minilm-l6-blind"], "soup", "at least two models"),
        (["newsmtsc-minilm-l6-blind", "newsmtsc-minilm-l6"], "soup", "differs .* mask_target"),
        (["newsmtsc-minilm-l6-blind", "newsmtsc-mpnet-blind"], "soup", "LoRA"),
        (["newsmtsc-minilm-l6-blind", "x"], "x", "is one of the models being averaged"),
        (["newsmtsc-minilm-l6-blind", "newsmtsc-minilm-l6-blind-v2"], "soup", "No rw/dev.jsonl"),
    ],
)
def test_training_average_weights_refuses_what_cannot_be_averaged(
    tiny_newsmtsc, tmp_path, models, out, match
):
    import shutil

    from stance.scoring import resolve_model_dir

    if "x" in models:  # a copy of a shipped model as both an ingredient and the output
        shutil.copytree(resolve_model_dir("newsmtsc-minilm-l6-blind-v3"), tmp_path / "x")
    models = [str(tmp_path / m) if m == "x" else m for m in models]
    if match.startswith("No "):
        (tiny_newsmtsc / "rw" / "dev.jsonl").unlink()
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        training.average_weights(models, tmp_path / out, tiny_newsmtsc, model_id="m")
    assert not (tmp_path / "soup").exists()


def test_training_average_weights_from_the_command_line(tiny_newsmtsc, tmp_path, capsys):
    from stance.cli import main

    args = ["average", "newsmtsc-minilm-l6-blind-v2", "newsmtsc-minilm-l6-blind-v3"]
    args += ["--data", str(tiny_newsmtsc), "--model-id", "m", "--out", str(tmp_path / "soup")]
    assert main(args) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"rw/dev", "mt/dev"}
    assert main(args[:2] + args[3:]) == 2
    assert "at least two models" in capsys.readouterr().err


def test_training_shipped_default_names_the_shipped_models_it_averages():
    from stance.scoring import file_sha256, resolve_model_dir

    config = json.loads((resolve_model_dir(None) / "config.json").read_text())
    assert config["model_id"] == scoring.MODEL_ID
    recorded = {a["model_id"]: a["sha256"] for a in config["averaged_from"]}
    for name in ("newsmtsc-minilm-l6-blind-v2", "newsmtsc-minilm-l6-blind-v3"):
        assert recorded[name] == file_sha256(resolve_model_dir(name) / "model-0.safetensors")


def test_training_labelled_by_reads_the_shards_teacher_record(tmp_path):
    assert training.labelled_by(tmp_path) == training.FIRST_TEACHER  # before the record existed
    (tmp_path / "teacher.json").write_text('{"teacher": "newsmtsc-mpnet-blind-v2"}')
    assert training.labelled_by(tmp_path) == "newsmtsc-mpnet-blind-v2"
    (tmp_path / "teacher.json").write_text('["newsmtsc-mpnet-blind-v2"]')
    with pytest.raises(ValueError, match=r"teacher\.json"):
        training.labelled_by(tmp_path)
