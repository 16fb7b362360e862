from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stance.cli import main


def test_cli_config_prints_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0
    assert "[targets.russia]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["analyze", "does/not/exist", "--out", "x"], "Input 'does/not/exist' does not exist"),
        (["analyze", "tests/data/bad/no_text_column.csv", "--out", "x"], "has no 'text' column"),
        (
            ["analyze", "tests/data/articles", "--sources", "nope.csv", "--out", "x"],
            "Sources file 'nope.csv' does not exist",
        ),
        (
            ["analyze", "tests/data/articles", "--config", "nope.toml", "--out", "x"],
            "Config file 'nope.toml' does not exist",
        ),
        (["report", "--run", "does/not/exist", "--out", "x"], "does/not/exist"),
        (
            ["analyze", "tests/data/articles", "--group-by", "rating", "--out", "x"],
            "'group_by' column 'rating' is not an article column. Available: ['source', 'path'",
        ),
        # refused before the ingest: the missing input is never reached
        (
            ["analyze", "does/not/exist", "--group-by", "date", "--out", "x"],
            "'group_by' column 'date' cannot be compared across: the comparison tables use the "
            "name for a column of their own (stance over time is the trends table). Available: "
            "'source', 'path' or a column of the inputs or the --sources CSV.",
        ),
        (
            ["analyze", "does/not/exist", "--group-by", "title", "--out", "x"],
            "'group_by' column 'title' cannot be compared across",
        ),
    ],
)
def test_cli_user_errors_exit_2_without_traceback(
    args: list[str], match: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    assert main(["-q", *args]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_cli_import_is_fast_and_silent() -> None:
    code = "import time; t=time.perf_counter(); import stance; print(time.perf_counter()-t)"
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stderr == ""
    assert float(out.stdout) < 1.0
    mods = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, stance; print(sorted(m for m in ('torch','pandas','plotly','umap','sklearn') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert mods.stdout.strip() == "[]"
