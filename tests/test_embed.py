from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEncoder

from stance.embed import SentenceEncoder, bundled_model_path, embed_sentences


class CountingEncoder(FakeEncoder):
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return super().encode(texts)


def test_embed_cache_reuses_vectors(tmp_path: Path) -> None:
    enc = CountingEncoder()
    texts = ["Russia warned Turkey.", "Iran objected.", "Russia warned Turkey."]
    first = embed_sentences(texts, enc, cache_dir=tmp_path)
    assert len(enc.calls) == 1 and sorted(enc.calls[0]) == sorted(
        set(texts)
    )  # duplicates encoded once
    second = embed_sentences(list(reversed(texts)), enc, cache_dir=tmp_path)
    assert len(enc.calls) == 1  # all from cache
    np.testing.assert_array_equal(second, first[::-1])
    assert not list(tmp_path.rglob("*.pkl"))
    third = embed_sentences(["A new sentence.", "Iran objected."], enc, cache_dir=tmp_path)
    assert enc.calls[-1] == ["A new sentence."]
    np.testing.assert_array_equal(third[1], first[1])


def test_embed_cache_skips_damaged_shards_and_reads_only_wanted_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from stance.embed import EmbeddingCache, text_key

    enc = CountingEncoder()
    texts = [f"Sentence number {i} about Iran." for i in range(50)]
    first = embed_sentences(texts, enc, cache_dir=tmp_path)
    cache = EmbeddingCache(tmp_path, enc.model_id)
    found = cache.load([text_key(texts[7]), text_key("never embedded")])
    assert list(found) == [text_key(texts[7])]
    np.testing.assert_array_equal(found[text_key(texts[7])], first[7])
    assert found[text_key(texts[7])].base is None or not isinstance(
        found[text_key(texts[7])].base, np.memmap
    )  # a copy, not a view of the mapped file
    # a shard whose vectors file is cut short, and one whose index is garbage: both skipped
    (vec,) = cache.dir.glob("shard-*.npy")
    vec.write_bytes(vec.read_bytes()[:200])
    (cache.dir / "shard-bad.parquet").write_bytes(b"not parquet")
    again = embed_sentences(texts[:3], enc, cache_dir=tmp_path)
    assert enc.calls[-1] == sorted(texts[:3], key=lambda t: (len(t), text_key(t)))
    np.testing.assert_allclose(again, first[:3], atol=1e-6)
    assert "Ignoring unreadable embedding cache shard" in caplog.text


def test_embed_cache_leaves_no_partial_shard(tmp_path: Path, monkeypatch) -> None:
    import pandas as pd

    def crash(self, path, **kw):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash)
    with pytest.raises(OSError, match="disk full"):
        embed_sentences(["Iran objected."], CountingEncoder(), cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.parquet"))  # no index, so the vectors stay invisible
    assert not list(tmp_path.rglob(".tmp-*"))


def test_embed_unknown_bundled_model_raises() -> None:
    with pytest.raises(ValueError, match="No bundled model named 'bert-large'"):
        bundled_model_path("bert-large")


@pytest.mark.slow
def test_embed_real_model_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = SentenceEncoder(progress=False)
    vecs = enc.encode(
        [
            "Russia and Turkey discussed Libya.",
            "Moscow and Ankara talked about Tripoli.",
            "Catalan protesters filled Barcelona.",
        ]
    )
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert enc.model_id.startswith("all-MiniLM-L6-v2@")


def test_embed_uniform_batches_are_pure_and_unpadded() -> None:
    from stance.batching import uniform_batches as _uniform_batches

    lengths = [5, 3, 5, 7, 3, 5]
    batches = _uniform_batches(lengths, 2)
    assert batches == [[1, 4], [0, 2], [5], [3]]
    assert all(len({lengths[i] for i in b}) == 1 for b in batches)


@pytest.mark.slow
def test_embed_vector_does_not_depend_on_its_batch() -> None:
    texts = [
        "Russia and Turkey discussed Libya.",
        "Moscow and Ankara talked about Tripoli on Tuesday, officials said.",
        "Catalan protesters filled Barcelona.",
        "Iran's foreign minister met his Azerbaijani counterpart in Baku to discuss the corridor.",
        "The US said nothing.",
    ]
    enc = SentenceEncoder(progress=False, batch_size=2)
    together = enc.encode(texts)
    alone = np.concatenate([enc.encode([t]) for t in texts])
    shuffled = enc.encode(texts[::-1])[::-1]
    assert np.array_equal(together, alone)
    assert np.array_equal(together, shuffled)


@pytest.mark.slow
def test_embed_batch_workers_give_the_same_vectors() -> None:
    """Several one-thread batches at once (threads) give the bits of one batch at a time."""
    texts = [
        f"Sentence {i}: Russia and Turkey discussed Libya {'again ' * (i % 7)}." for i in range(200)
    ]
    one = SentenceEncoder(progress=False, batch_size=8, workers=1).encode(texts)
    three = SentenceEncoder(progress=False, batch_size=8, workers=3).encode(texts)
    assert np.array_equal(one, three)


def test_embed_precision_auto_takes_bf16_only_with_native_support() -> None:
    from stance.embed import choose_precision

    assert choose_precision("auto", flags=frozenset({"avx512f", "avx512_bf16"})) == "bf16"
    assert choose_precision("auto", flags=frozenset({"avx512f", "amx_bf16"})) == "bf16"
    assert choose_precision("auto", flags=frozenset({"avx512f", "avx2"})) == "fp32"
    assert choose_precision("fp32", flags=frozenset({"avx512_bf16"})) == "fp32"
    with pytest.raises(ValueError, match="precision"):
        SentenceEncoder(precision="fp16")


@pytest.mark.slow
def test_embed_bf16_vectors_are_unit_float32_close_to_fp32() -> None:
    texts = ["Russia and Turkey discussed Libya.", "Catalan protesters filled Barcelona.", "Hi."]
    fp32 = SentenceEncoder(progress=False, precision="fp32")
    bf16 = SentenceEncoder(progress=False, precision="bf16")
    a, b = fp32.encode(texts), bf16.encode(texts)
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) > 0.99
    # the precision is part of the cache key
    assert fp32.model_id != bf16.model_id and bf16.model_id.endswith("-bf16")
