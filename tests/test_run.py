"""The run directory: layout in one place, written whole or not at all, --out checked early."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stance import run as run_dir
from stance.cli import main


def _result(tag: str) -> dict:
    return {
        "articles": pd.DataFrame({"article_id": [tag], "text": ["x"]}),
        "summary": pd.DataFrame({"source": [tag], "mean": [0.5]}),
        "vectors": np.zeros((1, 4), dtype=np.float32),
        "run": {"tag": tag},
    }


def test_run_write_and_load_round_trip(tmp_path: Path) -> None:
    out = run_dir.write_run(_result("a"), tmp_path / "run")
    loaded = run_dir.load_run(out, vectors=True)
    assert loaded["run"] == {"tag": "a"}
    assert list(loaded["articles"]["article_id"]) == ["a"]
    assert loaded["vectors"].shape == (1, 4)
    assert sorted(p.name for p in out.iterdir()) == [
        "articles.parquet",
        "run.json",
        "summary.parquet",
        "vectors.npy",
    ]
    # nothing left beside it: the temporary folder was renamed into place
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_run_replaces_an_old_run_whole(tmp_path: Path) -> None:
    out = tmp_path / "run"
    full = _result("old") | {"mentions": pd.DataFrame({"x": [1]})}
    run_dir.write_run(full, out)
    run_dir.write_run(_result("new"), out)
    assert not (out / "mentions.parquet").exists()  # no stale table from the old run
    assert json.loads((out / "run.json").read_text())["tag"] == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_run_failed_write_keeps_the_old_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_dir.write_run(_result("old"), out)
    bad = _result("new") | {"summary": "not a table"}
    with pytest.raises(AttributeError):
        run_dir.write_run(bad, out)
    assert json.loads((out / "run.json").read_text())["tag"] == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_run_unknown_table_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Unknown run table\(s\) \['sumary'\]"):
        run_dir.write_run({"sumary": pd.DataFrame(), "run": {}}, tmp_path / "run")


@pytest.mark.parametrize("case", ["file", "foreign", "unwritable"])
def test_run_check_out_rejects(tmp_path: Path, case: str) -> None:
    out = tmp_path / "out"
    if case == "file":
        out.write_text("x")
        match = "is a file, not a folder"
    elif case == "foreign":
        out.mkdir()
        (out / "thesis.docx").write_text("x")
        match = "holds files that are not a stance run"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes anywhere")
        tmp_path.chmod(0o500)
        match = "cannot write in"
    try:
        with pytest.raises(run_dir.RunDirError, match=match):
            run_dir.check_out(out)
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_run_check_out_probes_writing(tmp_path: Path) -> None:
    # root passes os.access everywhere; /proc takes no new folder, for root neither
    with pytest.raises(run_dir.RunDirError, match=r"^--out /proc/x/run: cannot write there \("):
        run_dir.check_out("/proc/x/run")
    run_dir.check_out(tmp_path / "a" / "run")
    assert list(tmp_path.iterdir()) == []  # the probe is removed, nothing is created


def test_run_check_out_accepts_new_empty_and_old_runs(tmp_path: Path) -> None:
    assert run_dir.check_out(tmp_path / "a" / "b") == (tmp_path / "a" / "b").absolute()
    (tmp_path / "empty").mkdir()
    run_dir.check_out(tmp_path / "empty")
    run_dir.write_run(_result("x"), tmp_path / "old")
    run_dir.check_out(tmp_path / "old")


@pytest.mark.parametrize(
    ("extra", "config", "match"),
    [
        (["--out", "OUTFILE"], None, r"--out .*OUTFILE: is a file, not a folder"),
        (
            ["--out", "run"],
            "[compare]\nbootstrap_resampels = 10\n",
            r"unknown key 'compare\.bootstrap_resampels'\. Did you mean "
            r"'compare\.bootstrap_resamples'",
        ),
        (
            ["--out", "run"],
            "[comapre]\nconfidence = 0.9\n",
            r"unknown table 'comapre'\. Did you mean 'compare'",
        ),
        (
            ["--out", "run"],
            "[compare]\nbootstrap_resamples = 'many'\n",
            r"'compare\.bootstrap_resamples' must be an integer\. Got 'many' \(a string\)",
        ),
        (["--out", "run"], "[run]\nseed = -1\n", r"'run\.seed' must be an integer in \[0, "),
        (
            ["--out", "run"],
            "[compare]\nbootstrap_resamples = 1000000000000\n",
            r"'compare\.bootstrap_resamples' must be an integer in \[1, 100000\]",
        ),
        (["--out", "run"], "[topics]\nmax_share = 0.0\n", r"'topics\.max_share' must be"),
        (["--out", "run"], "[topics]\nterm_weight = inf\n", r"must be a finite number"),
        (
            ["--out", "run"],
            '[embed]\ncache_dir = "TMP/OUTFILE"\n',
            r"'embed\.cache_dir' must be a folder this run can write\. Got '.*OUTFILE' instead "
            r"\(it is a file, not a folder\)",
        ),
        (
            ["--out", "run"],
            '[stance]\ncache_dir = "TMP/OUTFILE/scores"\n',
            r"'stance\.cache_dir' must be a folder this run can write\..*is a file, not a folder",
        ),
        (["--out", "run"], '[embed]\nmodel = "TMP"\n', r"'embed\.model' must be .*Got '"),
        (
            ["--out", "run"],
            '[targets.russia]\naliases = ["Russia", "Turkey"]\n',
            r"c\.toml': Alias 'Turkey' is given to both targets 'russia' and 'turkey'",
        ),
        (
            ["--out", "run"],
            '[topics.named.x]\ndescription = "x"\nterms = [" "]\n',
            r"'topics\.named\.x\.terms' must be a list of non-empty strings",
        ),
        (
            ["--out", "run"],
            '[topics.merge]\nlibya = "nowhere"\n',
            r"'topics\.merge\.libya' must be a topic id: .*Got 'nowhere' instead",
        ),
        (
            ["--out", "run", "--group-by", "date"],
            None,
            r"'group_by' column 'date' cannot be compared across",
        ),
        (["--out", "/proc/stance-x"], None, r"--out /proc/stance-x: cannot write there \("),
    ],
)
def test_run_bad_settings_stop_before_any_work(
    tmp_path: Path, fixture_corpus: Path, capsys, extra, config, match
) -> None:
    (tmp_path / "OUTFILE").write_text("not a folder")
    args = ["analyze", str(fixture_corpus)]
    if config is not None:
        (tmp_path / "c.toml").write_text(config.replace("TMP", str(tmp_path)))
        args += ["--config", str(tmp_path / "c.toml")]
    args += [str(tmp_path / a) if a in ("OUTFILE", "run") else a for a in extra]
    t0 = time.perf_counter()
    assert main(["-q", *args]) == 2
    assert time.perf_counter() - t0 < 5  # before ingest, embedding or any model loads
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("stance analyze: error: ")
    assert re.search(match, err), err
    assert not (tmp_path / "run").exists()


def test_run_cli_error_is_one_line_in_a_fresh_process(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[comapre]\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stance.cli",
            "analyze",
            str(tmp_path),
            "--config",
            str(tmp_path / "c.toml"),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.count("\n") == 1 and "c.toml" in proc.stderr and "Traceback" not in proc.stderr
    )


def test_run_tables_bytes_do_not_depend_on_column_chunks(tmp_path: Path) -> None:
    # gathered partitions leave string columns in several Arrow chunks; past the writer's
    # dictionary page limit, pandas' own to_parquet then wrote other bytes for the same table
    import pyarrow as pa

    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("abcdefgh "), 120)) for _ in range(20_000)]
    whole = pd.DataFrame({"sentence": pd.Series(texts, dtype="str"), "n": np.arange(20_000)})
    parts = pd.concat([whole.iloc[:7_000], whole.iloc[7_000:]], ignore_index=True)
    assert pa.Table.from_pandas(parts, preserve_index=False)["sentence"].num_chunks > 1
    whole.to_parquet(tmp_path / "a.parquet", index=False)
    parts.to_parquet(tmp_path / "b.parquet", index=False)
    assert (tmp_path / "a.parquet").read_bytes() != (tmp_path / "b.parquet").read_bytes()
    run_dir._write_table(whole, tmp_path / "c.parquet")
    run_dir._write_table(parts, tmp_path / "d.parquet")
    assert (tmp_path / "c.parquet").read_bytes() == (tmp_path / "d.parquet").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "d.parquet"), whole)
