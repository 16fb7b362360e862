"""Shared fixtures: a deterministic fake embedder and stance scorer for fast unit tests."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# Any accidental model-hub call must fail loudly.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SEEDS = ROOT / "data" / "raw" / "seeds"


class FakeEncoder:
    """Hashing bag-of-words vectors: similar wording gives similar vectors, no model needed."""

    model_id = "fake-hashing-384"
    dim = 384

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int(hashlib.md5(word.encode()).hexdigest()[:8], 16)
                out[i, h % self.dim] += 1.0 if (h >> 20) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        return out


_POS = re.compile(r"\b(praised?|welcomed?|support(?:ed|s)?|peace|helped?)\b", re.IGNORECASE)
_NEG = re.compile(
    r"\b(blamed?|accused?|condemned?|attack(?:ed|s)?|terror\w*|threat\w*)\b", re.IGNORECASE
)


def fake_scorer(df: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
    """Score by cue words in the clause around the mention (deterministic, instant)."""
    out = df.copy()
    scores = []
    for sentence, start, end in zip(out["sentence"], out["start"], out["end"], strict=True):
        window = sentence[max(0, start - 40) : end + 40]
        scores.append(0.6 * bool(_POS.search(window)) - 0.6 * bool(_NEG.search(window)))
    out["stance_score"] = np.asarray(scores, dtype="float64")
    out["stance"] = np.where(
        out["stance_score"] > 0.2,
        "positive",
        np.where(out["stance_score"] < -0.2, "negative", "neutral"),
    )
    return out


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    return SEEDS


@pytest.fixture
def fixture_corpus() -> Path:
    return DATA / "articles"
