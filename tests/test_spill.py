from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from stance import spill
from stance.run import _save_vectors


def _rss_file_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile line")


def test_spill_join_is_the_concatenation_read_only_and_leaves_no_file(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((n, 8)).astype(np.float32) for n in (5, 0, 7, 1)]
    with spill.Spill() as s:
        pieces = [s.put(p) for p in parts]
        assert all(spill._mapping(p) is not None for p in pieces)
        joined = s.join(pieces)
    assert np.array_equal(joined, np.concatenate(parts)) and joined.dtype == np.float32
    assert not joined.flags.writeable
    assert list(tmp_path.iterdir()) == []  # pieces removed, the joined file unlinked
    assert spill.Spill().join([]).shape == (0, 0)


def test_spill_blocks_cover_every_row_once():
    a = np.arange(50.0).reshape(25, 2)
    got = list(spill.blocks(a, rows=7))
    assert [lo for lo, _ in got] == [0, 7, 14, 21]
    assert np.array_equal(np.concatenate([b for _, b in got]), a)
    spill.release(a)  # in memory: nothing to do


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_spill_release_gives_the_pages_back(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with spill.Spill() as s:
        big = s.join([s.put(np.ones((16_384 * 4, 512), dtype=np.float32))])  # 128 MiB
    before = _rss_file_kib()
    assert float(big.sum(dtype=np.float64)) == big.size  # every page read
    touched = _rss_file_kib()
    assert touched - before > 100 * 1024
    spill.release(big[10:20])  # a view finds the mapping too
    assert _rss_file_kib() - before < 16 * 1024
    assert float(big[-1, -1]) == 1.0  # still readable after the release


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_spill_take_gathers_rows_and_leaves_few_pages(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rng = np.random.default_rng(2)
    a = rng.standard_normal((16_384 * 8, 256)).astype(np.float32)  # 128 MiB
    rows = rng.choice(len(a), size=20_000)  # unsorted, with repeats
    with spill.Spill() as s:
        mapped = s.join([s.put(a)])
    spill.release(mapped)
    before = _rss_file_kib()
    got = spill.take(mapped, rows)
    assert _rss_file_kib() - before < 24 * 1024  # a span's pages at most, not the file's
    assert got.dtype == np.float32 and np.array_equal(got, a[rows])
    assert np.array_equal(spill.take(a, rows), a[rows])  # in memory: plain indexing
    assert spill.take(mapped, np.zeros(0, dtype=int)).shape == (0, 256)


def test_save_vectors_writes_what_np_save_writes(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((40_000, 6)).astype(np.float32)
    np.save(tmp_path / "want.npy", a, allow_pickle=False)
    _save_vectors(tmp_path / "got.npy", a)
    assert (tmp_path / "got.npy").read_bytes() == (tmp_path / "want.npy").read_bytes()
    with spill.Spill() as s:
        mapped = s.join([s.put(a)])
    _save_vectors(tmp_path / "mapped.npy", mapped)
    assert (tmp_path / "mapped.npy").read_bytes() == (tmp_path / "want.npy").read_bytes()
    _save_vectors(tmp_path / "empty.npy", np.zeros((0, 384), dtype=np.float32))
    assert np.load(tmp_path / "empty.npy").shape == (0, 384)
