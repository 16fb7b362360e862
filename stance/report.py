"""Reports: execute the jupytext notebooks against a finished run and export them as HTML.

``notebooks/*.py`` (jupytext percent format) are the source of truth. :func:`render_reports`
converts each to a notebook, executes it with papermill (its ``parameters`` cell gets the run
directory), and exports it with nbconvert to one HTML file per notebook. The reports share one
copy of plotly.js, ``plotly.min.js``, written beside them and loaded by a relative
``<script src>``: the folder opens offline from disk, and six reports cost one copy of the
library (~4.8 MB) instead of six. Notebooks execute in a temporary working
folder, so a report writes nothing beside the notebooks or in the caller's working directory.
What the notebooks call lives elsewhere: :mod:`stance.run` reads the run, :mod:`stance.views`
turns its tables into what a reader scans, :mod:`stance.evaluation` reads the model's
validation.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stance.run import RUN_JSON, TABLES, RunDirError, table_file

if TYPE_CHECKING:
    pass

#: Report notebooks in order; the stem of ``notebooks/<name>.py``.
NOTEBOOKS: tuple[str, ...] = (
    "01_corpus_overview",
    "02_topics",
    "03_stance_by_source_topic",
    "04_contrasts_aligned_claims",
    "05_stance_model_validation",
    "06_case_study_allsides",
)
#: Tables of the run directory each notebook reads (besides ``run.json``, which all but the
#: case study read).
REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "01_corpus_overview": ("articles", "sentences", "mentions"),
    "02_topics": ("sentences", "topics", "topic_map"),
    "03_stance_by_source_topic": ("summary", "contrasts", "evidence", "mentions", "trends"),
    "04_contrasts_aligned_claims": ("contrasts", "aligned", "summary"),
    "05_stance_model_validation": (),
    "06_case_study_allsides": (),
}
#: Parameter of notebook 06 naming its input data; the notebook is skipped (with a warning)
#: from a default render when the file is missing.
CASE_STUDY = "06_case_study_allsides"
#: Seconds the case study's cells may run: its analysis covers all 5,720 AllSides geopolitics
#: articles by default.
CASE_STUDY_TIMEOUT = 4 * 3600
#: Notebook parameters that hold paths (made absolute before they reach the kernel).
PATH_PARAMETERS: frozenset[str] = frozenset({"run_dir", "data_path", "case_run_dir"})
#: The shared copy of plotly.js, written beside the reports.
PLOTLYJS_FILE = "plotly.min.js"


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def notebooks_dir() -> Path:
    """Return the folder holding the ``.py`` notebook sources.

    In a checkout (and an editable install) that is ``notebooks/`` beside the package; a built
    wheel carries a copy in ``stance/notebooks/`` (see ``setup.py``).
    """
    here = Path(__file__).resolve().parent
    checkout = here.parent / "notebooks"
    if (checkout / f"{NOTEBOOKS[0]}.py").is_file():
        return checkout
    return here / "notebooks"


def _select(notebooks: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    if notebooks is None:
        return list(available)
    if isinstance(notebooks, str):
        notebooks = [notebooks]
    chosen = []
    for name in notebooks:
        stem = Path(name).stem
        matches = [n for n in available if n == stem or n.startswith(f"{stem}_")]
        if len(matches) != 1:
            raise ValueError(
                f"The 'notebooks' parameter must name notebooks among {list(available)} "
                f"(or their number prefix, e.g. '03'). Got {name!r} instead."
            )
        chosen.append(matches[0])
    return list(dict.fromkeys(chosen))


def check_run_dir(run_dir: str | Path, notebooks: Sequence[str] = NOTEBOOKS) -> Path:
    """Check that ``run_dir`` holds every file the given notebooks read.

    Args:
        run_dir: The run directory.
        notebooks: Notebook names (stems).

    Returns:
        The run directory as an absolute path.

    Raises:
        FileNotFoundError: Naming the directory and the first missing file.
    """
    run = Path(run_dir).resolve()
    needed = [
        file
        for nb in notebooks
        if nb != CASE_STUDY
        for file in (*map(table_file, REQUIRED_TABLES.get(nb, ())), RUN_JSON)
    ]
    if not needed:
        return run
    if not run.is_dir():
        raise FileNotFoundError(
            f"run directory {run_dir} does not exist; run `stance analyze INPUT... --out "
            f"{run_dir}` first"
        )
    for name in dict.fromkeys(needed):
        if not (run / name).is_file():
            raise FileNotFoundError(
                f"run directory {run_dir} is missing {name}; run `stance analyze` first"
            )
    _check_run_files(run, run_dir, needed)
    return run


def _check_run_files(run: Path, run_dir: str | Path, needed: list[str]) -> None:
    """Check that ``run.json`` is a run's record and each table is Parquet with its columns.

    A damaged run (a file cut short, a table replaced) used to fail inside a notebook with a
    library's traceback, after the reports before it had been written.

    Raises:
        RunDirError: Naming the run directory, the file and the problem.
    """
    import json

    import pyarrow.parquet as pq

    try:
        record = json.loads((run / RUN_JSON).read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise RunDirError(
            f"run directory {run_dir}: {RUN_JSON} cannot be read ({type(exc).__name__}: "
            f"{str(exc)[:120]}); run `stance analyze` again"
        ) from None
    if not isinstance(record, dict):
        raise RunDirError(
            f"run directory {run_dir}: {RUN_JSON} holds a JSON {type(record).__name__}, not a "
            "run's record; run `stance analyze` again"
        )
    group = str(record.get("group_by") or "source")
    for name in needed:
        if name == RUN_JSON:
            continue
        try:
            columns = pq.read_schema(run / name).names
        except Exception as exc:
            raise RunDirError(
                f"run directory {run_dir}: {name} cannot be read as Parquet "
                f"({type(exc).__name__}: {str(exc)[:120]}); run `stance analyze` again"
            ) from None
        table = name.removesuffix(".parquet")
        fixed = TABLES.get(table, ())
        if table == "summary":
            fixed = tuple(group if c == "source" else c for c in fixed)
        missing = [c for c in fixed if c not in columns]
        if missing:
            raise RunDirError(
                f"run directory {run_dir}: {name} lacks the columns {missing}; run `stance "
                "analyze` again"
            )


def render_reports(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    notebooks: list[str] | None = None,
    progress: bool = True,
    parameters: Mapping[str, Any] | None = None,
    show_code: bool = False,
    timeout: int = 900,
    share_plotlyjs: bool = True,
) -> list[Path]:
    """Execute the report notebooks against a run and write one HTML file per notebook.

    Args:
        run_dir: A finished run directory (``stance analyze --out``).
        out_dir: Where ``<notebook>.html`` files go (created if needed).
        notebooks: Names or number prefixes (``["03", "04_contrasts_aligned_claims"]``);
            ``None`` renders all — the case study only when its data file exists.
        progress: Show a tqdm bar over notebooks.
        parameters: Extra papermill parameters for every notebook (e.g. ``data_path`` and
            ``sample_size`` of the case study).
        show_code: Keep code cells in the HTML (default: outputs and text only).
        timeout: Seconds one cell may run; the case study's analysis cell may run
            ``CASE_STUDY_TIMEOUT`` seconds or ``timeout``, whichever is longer (it analyses
            thousands of articles: 52 min measured on one core here with empty caches).
        share_plotlyjs: Load plotly.js from one ``plotly.min.js`` written into ``out_dir``
            (default) instead of embedding a copy in every report; a report copied elsewhere
            then needs that file beside it.

    Returns:
        Paths of the written HTML files, in notebook order.

    Raises:
        FileNotFoundError: When ``run_dir`` lacks a file a notebook needs, or a notebook source
            is missing.
        RunDirError: When a file of the run cannot be read or lacks its columns, or ``out_dir``
            is a file.
        ValueError: When ``notebooks`` names an unknown notebook, or ``parameters`` sets
            ``run_dir``.
        RuntimeError: When a notebook fails while executing (names the notebook and cell error).
    """
    from tqdm.auto import tqdm

    explicit = notebooks is not None
    names = _select(notebooks, NOTEBOOKS)
    # Paths the caller passes are relative to the caller's working directory, not to the
    # notebooks folder the kernel runs in.
    params = {
        k: str(Path(v).resolve()) if k in PATH_PARAMETERS and isinstance(v, (str, Path)) else v
        for k, v in (parameters or {}).items()
    }
    if CASE_STUDY in names and "data_path" not in params:
        # The notebook's own default is relative to notebooks/ (as in JupyterLab); the kernel
        # runs in a scratch folder, so it gets the default as an absolute path.
        default = _case_study_default_data()
        if default:
            params["data_path"] = str((notebooks_dir() / default).resolve())
    if CASE_STUDY in names and not explicit:
        data_path = params.get("data_path")
        path = Path(data_path) if data_path else None
        if path is None or not path.is_file():
            warnings.warn(
                f"Skipping {CASE_STUDY}: its data file {path} does not exist; pass "
                "parameters={'data_path': ...} to render it.",
                stacklevel=2,
            )
            names.remove(CASE_STUDY)
    if "run_dir" in params:  # it would bypass the check of the run below
        raise ValueError(
            "The parameter 'run_dir' is set by the report itself: name the run with --run."
        )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out_dir}: is a file, not a folder.")
    run = check_run_dir(run_dir, names)
    src_dir = notebooks_dir()
    for name in names:
        if not (src_dir / f"{name}.py").is_file():
            raise FileNotFoundError(f"Notebook source {src_dir / f'{name}.py'} does not exist.")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="stance-report-") as tmp:
        for name in tqdm(names, desc="reports", disable=not progress):
            # The case study's own run is scratch work: it lives and dies with the render.
            scratch = {"case_run_dir": str(Path(tmp) / "case_run")} if name == CASE_STUDY else {}
            html_text = _execute_and_export(
                src_dir / f"{name}.py",
                Path(tmp),
                {"run_dir": str(run), **scratch, **params},
                show_code=show_code,
                timeout=max(timeout, CASE_STUDY_TIMEOUT) if name == CASE_STUDY else timeout,
            )
            if share_plotlyjs:
                html_text, shared = share_plotly_js(html_text)
                if shared:
                    write_plotly_js(out)
            target = out / f"{name}.html"
            target.write_text(deterministic_html(html_text), encoding="utf-8")
            written.append(target)
    return written


def share_plotly_js(text: str) -> tuple[str, bool]:
    """Replace the copy of plotly.js a report embeds by a ``<script src>`` of the shared file.

    Args:
        text: A report's HTML, as exported.

    Returns:
        ``(html, replaced)``: the HTML loading :data:`PLOTLYJS_FILE` from its own folder, and
        whether the embedded copy was found (plotly embeds it once, before the first figure).
    """
    from plotly.offline import get_plotlyjs

    bundle = f"<script>{get_plotlyjs()}</script>"
    if bundle not in text:
        return text, False
    tag = f'<script src="{PLOTLYJS_FILE}" charset="utf-8"></script>'
    return text.replace(bundle, tag), True


def write_plotly_js(out_dir: str | Path) -> Path:
    """Write the shared ``plotly.min.js`` into ``out_dir`` (same bytes on every call)."""
    from plotly.offline import get_plotlyjs

    path = Path(out_dir) / PLOTLYJS_FILE
    data = get_plotlyjs().encode("utf-8")
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)
    return path


def _case_study_default_data() -> str | None:
    """Return the ``data_path`` default written in the case-study notebook's parameters cell."""
    src = notebooks_dir() / f"{CASE_STUDY}.py"
    if not src.is_file():
        return None
    m = re.search(r'^data_path\s*=\s*["\'](.+?)["\']', src.read_text(encoding="utf-8"), re.M)
    return m.group(1) if m else None


def _execute_and_export(
    source: Path, tmp: Path, parameters: dict[str, Any], *, show_code: bool, timeout: int
) -> str:
    import jupytext
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    name = source.stem
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    workdir = tmp / f"{name}.cwd"
    workdir.mkdir()
    src_nb = tmp / f"{name}.ipynb"
    out_nb = tmp / f"{name}.out.ipynb"
    nbformat.write(nb, src_nb)
    env_backup = {
        k: os.environ.get(k)
        for k in (
            "PLOTLY_RENDERER",
            "PYTHONHASHSEED",
            "TQDM_DISABLE",
            "PYTHONPATH",
            "PYTHONWARNINGS",
            "PYTHONDONTWRITEBYTECODE",
        )
    }
    # The kernel inherits the environment: plotly then embeds plotly.js in the output (charts
    # work offline in the HTML), and the kernel imports this very copy of `stance`.
    os.environ["PLOTLY_RENDERER"] = "notebook"
    os.environ["PYTHONHASHSEED"] = "0"
    os.environ["TQDM_DISABLE"] = "1"
    # The kernel writes no bytecode into the installed package or the checkout.
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    # tqdm.auto warns inside a kernel without ipywidgets (bars are disabled anyway); the
    # warning would print a site-packages path into the report.
    os.environ["PYTHONWARNINGS"] = ",".join(
        w for w in ("ignore:IProgress not found", env_backup["PYTHONWARNINGS"]) if w
    )
    pkg_root = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env_backup["PYTHONPATH"]) if p)
    try:
        papermill.execute_notebook(
            str(src_nb),
            str(out_nb),
            parameters=parameters,
            kernel_name=_kernel_name(),
            # A scratch folder, never notebooks/ or the caller's folder: whatever a notebook or
            # a library writes to its working directory is thrown away with it.
            cwd=str(workdir),
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
        )
    except papermill.PapermillExecutionError as exc:
        raise RuntimeError(
            f"Notebook {name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
        ) from None
    finally:
        for k, v in env_backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    executed = nbformat.read(out_nb, as_version=4)
    # Cell ids are random (jupytext, papermill's injected cell); number them for stable HTML.
    for i, cell in enumerate(executed.cells):
        cell["id"] = f"cell-{i:03d}"
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(executed, resources={"metadata": {"name": _title(name)}})
    # Ids are made deterministic after the shared plotly.js is swapped in (render_reports):
    # the library's own text must stay byte-identical to be found.
    return body


def _kernel_name() -> str:
    """Return a kernel running this interpreter: ``python3`` when it is ours, else a spec we write."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        exe = spec.argv[0]
        if (
            exe in ("python", "python3", "{python}")
            or Path(exe).resolve() == Path(sys.executable).resolve()
        ):
            return "python3"
    except NoSuchKernel:
        pass
    # Another environment's python3 kernel is first on the Jupyter path; install one that runs
    # this interpreter into this environment's prefix and use it.
    from ipykernel.kernelspec import install

    install(kernel_name="stance-python3", display_name="Python 3 (stance)", prefix=sys.prefix)
    return "stance-python3"


def _title(name: str) -> str:
    return name.split("_", 1)[-1].replace("_", " ").capitalize()


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def deterministic_html(text: str) -> str:
    """Replace the random element ids plotly puts in figure divs with sequential ones."""
    mapping: dict[str, str] = {}

    def sub(m: re.Match[str]) -> str:
        return mapping.setdefault(m.group(0), f"00000000-0000-4000-8000-{len(mapping):012d}")

    return _UUID.sub(sub, text)


# --------------------------------------------------------------------------------------------
# Helpers the notebooks call
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Small table helpers for the notebooks
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Case study: AllSides
# --------------------------------------------------------------------------------------------
