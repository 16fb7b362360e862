from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[=<>!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_packaging_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]} | {
        _name(r) for extra in project["optional-dependencies"].values() for r in extra
    }
    pip_lines = re.findall(
        r"^\s+-\s+([A-Za-z0-9_.\-\[\]]+==[^\s#]+)\s*$",
        (ROOT / "environment.yml").read_text(),
        re.MULTILINE,
    )
    assert {_name(r) for r in pip_lines} == wanted
    pinned = {_name(r): r.split("==")[1] for r in project["dependencies"]}
    for line in pip_lines:
        if _name(line) in pinned:
            assert line.split("==")[1] == pinned[_name(line)], line


def test_packaging_torch_first_in_makefile() -> None:
    make = (ROOT / "Makefile").read_text()
    assert make.index("torch==2.13.0") < make.index('-e ".[dev]"')
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_packaging_wheel_ships_the_report_notebooks(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("stance-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for nb in sorted((ROOT / "notebooks").glob("*.py")):
        assert f"stance/notebooks/{nb.name}" in names
    assert any(n.endswith(".safetensors") for n in names)
    assert "stance/default_targets.toml" in names  # the default targets and topics
    assert "stance/data/opinion_pairs.csv" in names
