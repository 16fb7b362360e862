from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import SEEDS, FakeEncoder, fake_scorer

import stance
from stance import engine
from stance.cli import main

FAST = {"compare": {"bootstrap_resamples": 200, "permutation_resamples": 200}}


def _digests(run: Path) -> dict[str, str]:
    """sha256 of every table and of the vectors: what must not depend on the engine."""
    files = [*sorted(run.glob("*.parquet")), run / "vectors.npy"]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _fake_run(corpus: Path, out: Path, tmp_path: Path, partition_articles: int, **kw) -> dict:
    cfg = FAST | {
        "embed": {"cache_dir": str(tmp_path / f"cache-{out.name}")},
        "run": {"partition_articles": partition_articles},
    }
    return stance.analyze(
        [corpus],
        config=cfg,
        out=out,
        encoder=FakeEncoder(),
        scorer=fake_scorer,
        progress=False,
        **kw,
    )


@pytest.mark.parametrize("partition_articles", [1, 3])
def test_engine_local_tables_do_not_depend_on_partition_size(
    tmp_path: Path, fixture_corpus: Path, partition_articles: int, monkeypatch
) -> None:
    import tempfile

    import numpy as np

    from stance.spill import _mapping

    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))
    whole = _fake_run(fixture_corpus, tmp_path / "whole", tmp_path, 500)
    parts = _fake_run(fixture_corpus, tmp_path / "parts", tmp_path, partition_articles)
    assert whole["run"]["partitions"] == 1
    assert parts["run"]["partitions"] == -(-len(whole["articles"]) // partition_articles)
    assert _digests(tmp_path / "parts") == _digests(tmp_path / "whole")
    # several partitions: the vectors are a read-only map of a file already unlinked
    assert _mapping(whole["vectors"]) is None and _mapping(parts["vectors"]) is not None
    assert not parts["vectors"].flags.writeable
    assert np.array_equal(parts["vectors"], whole["vectors"])
    assert list(spill_root.iterdir()) == []


def test_engine_dask_tables_match_local(tmp_path: Path, fixture_corpus: Path) -> None:
    _fake_run(fixture_corpus, tmp_path / "local", tmp_path, 500)
    result = _fake_run(fixture_corpus, tmp_path / "dask", tmp_path, 3, engine="dask", workers=2)
    assert _digests(tmp_path / "dask") == _digests(tmp_path / "local")
    run = json.loads((tmp_path / "dask" / "run.json").read_text())
    assert (run["engine"], run["scheduler"], run["workers"], run["partitions"]) == (
        "dask",
        "LocalCluster",
        2,
        4,
    )
    assert run == json.loads(json.dumps(result["run"], default=str))


@pytest.mark.slow
def test_engine_dask_real_models_match_local(tmp_path: Path) -> None:
    corpus = tmp_path / "seeds"
    corpus.mkdir()
    for f in sorted(SEEDS.iterdir()):
        if not f.name.startswith("001_"):  # the multi-article page: 9 of the 12 articles
            shutil.copy(f, corpus / f.name)
    sources = SEEDS.parent.parent / "sources.csv"

    def run(out: str, partition_articles: int, **kw) -> dict:
        cfg = FAST | {
            "embed": {"cache_dir": str(tmp_path / f"cache-{out}")},
            "run": {"partition_articles": partition_articles},
        }
        return stance.analyze(
            [corpus], sources=sources, config=cfg, out=tmp_path / out, progress=False, **kw
        )

    local = run("local", 500)
    dask = run("dask", 1, engine="dask", workers=2)
    assert len(local["mentions"]) > 20
    assert dask["run"]["partitions"] == len(local["articles"]) == 3
    assert dask["run"]["models"]["stance"]["num_threads"] == 1
    assert _digests(tmp_path / "dask") == _digests(tmp_path / "local")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"engine": "spark"}, r"The 'engine' parameter must be one of \{.*\}. Got 'spark'"),
        ({"scheduler": "tcp://h:1"}, r"'scheduler' and 'workers' parameters apply only to"),
        ({"workers": 2}, r"apply only to engine='dask'"),
        ({"engine": "dask", "workers": 0}, r"'workers' parameter must be an integer >= 1"),
        ({"engine": "dask", "scheduler": " "}, r"'scheduler' parameter must be a scheduler"),
    ],
)
def test_engine_rejects_bad_options(
    tmp_path: Path, fixture_corpus: Path, kwargs: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        stance.analyze([fixture_corpus], encoder=FakeEncoder(), scorer=fake_scorer, **kwargs)


def test_engine_unreachable_scheduler_is_one_error_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fixture_corpus: Path
) -> None:
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(ValueError, match=r"'scheduler' parameter must be the address of a run"):
        with engine.open_engine("dask", "tcp://127.0.0.1:1"):
            pass
    args = ["-q", "analyze", str(fixture_corpus), "--out", "x", "--engine", "dask"]
    assert main([*args, "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("stance analyze: error: The 'scheduler' parameter")
    assert "Traceback" not in err[0]


def test_engine_runner_keeps_partition_order() -> None:
    parts = [3, 1, 2, 0]
    with engine.open_engine("dask", workers=2) as runner:
        out = runner.map(_slow_identity, parts, shared={"scale": 10}, progress=False)
    assert out == [30, 10, 20, 0]
    assert runner.info.partitions == 4


def _slow_identity(x: int, *, scale: int) -> int:
    import time

    time.sleep(0.2 * x)  # later partitions finish first
    return x * scale


def test_engine_runs_on_a_scheduler_address(
    tmp_path: Path, fixture_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import LocalCluster

    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 1.0)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        address = cluster.scheduler_address
        with pytest.raises(ValueError, match=r"has fewer than 2 worker\(s\)"):
            with engine.open_engine("dask", address, workers=2):
                pass
        _fake_run(fixture_corpus, tmp_path / "local", tmp_path, 500)
        result = _fake_run(
            fixture_corpus, tmp_path / "remote", tmp_path, 4, engine="dask", scheduler=address
        )
    assert (result["run"]["scheduler"], result["run"]["workers"]) == (address, 1)
    assert _digests(tmp_path / "remote") == _digests(tmp_path / "local")


def test_engine_local_cluster_leaves_this_process_environment_as_it_was() -> None:
    # the nannies set OMP_NUM_THREADS=1 and others here for their workers; left in place, they
    # changed what libraries loaded later do (the topic map moved with the thread count)
    import os

    before = dict(os.environ)
    with engine.dask_client(None, 1):
        pass
    assert dict(os.environ) == before
