"""Evaluation readers: the stance model's recorded validation, for reports and notebooks.

The figures themselves are produced by ``stance evaluate`` and the benchmarks (NewsMTSC test
metrics in a model folder's ``evaluation.json``, dev metrics in its ``config.json``, the
name-swap benchmark's ``identity.json``); these functions find and tabulate them defensively,
so a validation report renders whatever the model folder holds.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from IPython.display import HTML


def load_evaluation(run_info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read the stance model's ``evaluation.json`` (NewsMTSC test metrics), defensively.

    Looks in the model directory recorded in ``run.json`` (``models.stance.model_dir``), then
    the packaged default model. When no test evaluation exists, the development-set metrics
    recorded at training time are returned instead (their split names, e.g. ``rw/dev``, say
    so; :func:`evaluation_note` words it for a report).

    Args:
        run_info: The parsed ``run.json`` (or ``None``).

    Returns:
        ``{split: {"macro_f1", "accuracy", "per_class", "confusion", ...}, ...}``, or ``{}``.
    """
    model = stance_model_info(run_info or {})
    dirs: list[Path] = []
    if model.get("model_dir"):
        dirs.append(Path(str(model["model_dir"])))
    try:
        from stance import scoring

        dirs.append(Path(scoring.DEFAULT_MODEL_DIR))
    except Exception:  # the validation report must render even without the scoring module
        pass
    for d in dirs:
        for name in ("evaluation.json", "config.json"):
            data = _read_json(d / name)
            if name == "config.json":
                data = data.get("dev_metrics") or {}
            metrics = {k: v for k, v in data.items() if isinstance(v, Mapping) and "macro_f1" in v}
            if metrics:
                return dict(data)
    return dict(model.get("test_metrics") or model.get("dev_metrics") or {})


def identity_table(run_info: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Identity bias of the run's stance model next to the identity-aware model, per name.

    Reads ``identity.json`` (written by ``benchmarks/stance_identity.py --write``) from the
    run's model folder and from the shipped identity-aware model. Columns: ``name`` and, per
    model, the mean ``stance_score`` over the same NewsMTSC sentences with that name as target;
    a final row ``spread`` (max − min). Empty when no model has the file.
    """
    import pandas as pd

    dirs: list[Path] = []
    model_dir = stance_model_info(run_info or {}).get("model_dir")
    if model_dir:
        dirs.append(Path(str(model_dir)))
    try:
        from stance import scoring

        dirs.append(scoring.DEFAULT_MODEL_DIR)
        dirs.append(scoring.MODELS_DIR / scoring.IDENTITY_MODEL_NAME)
    except Exception:  # the validation report must render even without the scoring module
        pass
    columns: dict[str, dict[str, float]] = {}
    for d in dict.fromkeys(dirs):
        data = _read_json(d / "identity.json")
        if not data.get("per_name"):
            continue
        col = str(data.get("model_id") or d.name)
        columns[col] = {n: float(v["mean_score"]) for n, v in data["per_name"].items()}
        columns[col]["spread"] = float(data.get("spread", float("nan")))
    if not columns:
        return pd.DataFrame(columns=["name"])
    return pd.DataFrame(columns).rename_axis("name").reset_index()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def evaluation_note(evaluation: Mapping[str, Any]) -> HTML:
    """Say which evaluation splits a validation report shows (test, or dev as a fallback)."""
    from IPython.display import HTML

    splits = sorted(k for k, v in evaluation.items() if isinstance(v, Mapping) and "macro_f1" in v)
    if not splits:
        return HTML("<p><em>No evaluation metrics were found for the stance model.</em></p>")
    names = ", ".join(f"<code>{html.escape(k)}</code>" for k in splits)
    if any("test" in k for k in splits):
        return HTML(f"<p>Held-out test splits shown: {names}.</p>")
    return HTML(
        f"<p><strong>No test evaluation found</strong> (<code>evaluation.json</code>); showing "
        f"the development-set metrics recorded at training time: {names}. Dev metrics were "
        "used for model selection and overstate test performance somewhat.</p>"
    )


def stance_model_info(run_info: Mapping[str, Any]) -> dict[str, Any]:
    """Return the stance model's provenance recorded in ``run.json`` (``{}`` when absent)."""
    for key in ("model", "stance_model", "model_info"):
        v = run_info.get(key)
        if isinstance(v, Mapping):
            return dict(v)
    models = run_info.get("models")
    if isinstance(models, Mapping):
        for key in ("stance", "stance_model"):
            if isinstance(models.get(key), Mapping):
                return dict(models[key])
    return {}


def evaluation_table(evaluation: Mapping[str, Any]) -> pd.DataFrame:
    """Per split and class: precision, recall, F1, support; plus macro-F1 and accuracy rows."""
    import pandas as pd

    rows = []
    for split, ev in sorted(evaluation.items()):
        if not isinstance(ev, Mapping) or "macro_f1" not in ev:
            continue
        for label, m in (ev.get("per_class") or {}).items():
            rows.append(
                {
                    "split": split,
                    "class": label,
                    "precision": m.get("precision"),
                    "recall": m.get("recall"),
                    "f1": m.get("f1"),
                    "support": m.get("support"),
                }
            )
        rows.append(
            {
                "split": split,
                "class": "macro avg",
                "f1": ev.get("macro_f1"),
                "precision": None,
                "recall": None,
                "support": None,
            }
        )
        rows.append(
            {
                "split": split,
                "class": "accuracy",
                "f1": ev.get("accuracy"),
                "precision": None,
                "recall": None,
                "support": None,
            }
        )
    return pd.DataFrame(rows, columns=["split", "class", "precision", "recall", "f1", "support"])


def confusion_splits(evaluation: Mapping[str, Any]) -> list[str]:
    """List the evaluation splits that carry a confusion matrix."""
    return sorted(
        k
        for k, v in evaluation.items()
        if isinstance(v, Mapping) and "confusion" in v and "macro_f1" in v
    )


def opinion_table(run_info: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Tabulate the opinion-writing evaluation of the shipped models and VADER, per split.

    Reads ``opinion.json`` (written by ``benchmarks/opinion_eval.py --write``: the hand-labelled
    AllSides opinion pairs of ``stance/data/opinion_pairs.csv``) from the run's model folder and
    the shipped models' folders. Columns: ``model, split, macro_f1, accuracy, f1_negative,
    f1_neutral, f1_positive, n_pairs``; empty when no model has the file.
    """
    import pandas as pd

    dirs: list[Path] = []
    model_dir = stance_model_info(run_info or {}).get("model_dir")
    if model_dir:
        dirs.append(Path(str(model_dir)))
    try:
        from stance import scoring

        dirs += [scoring.MODELS_DIR / name for name in scoring.available_models()]
    except Exception:  # the validation report must render even without the scoring module
        pass
    records: dict[str, Mapping[str, Any]] = {}
    for d in dict.fromkeys(dirs):
        data = _read_json(d / "opinion.json")
        if isinstance(data.get("results"), Mapping):
            records.setdefault("VADER (sentence-level baseline)", data.get("baseline_vader", {}))
            records[str(data.get("model") or d.name)] = data["results"]
    rows = []
    for model, by_split in records.items():
        for split in ("dev", "test"):
            ev = by_split.get(split) if isinstance(by_split, Mapping) else None
            if not isinstance(ev, Mapping) or "macro_f1" not in ev:
                continue
            per_class = ev.get("per_class") or {}
            rows.append(
                {
                    "model": model,
                    "split": split,
                    "macro_f1": ev.get("macro_f1"),
                    "accuracy": ev.get("accuracy"),
                    **{
                        f"f1_{label}": (per_class.get(label) or {}).get("f1")
                        for label in ("negative", "neutral", "positive")
                    },
                    "n_pairs": ev.get("n_pairs"),
                }
            )
    columns = [
        "model",
        "split",
        "macro_f1",
        "accuracy",
        "f1_negative",
        "f1_neutral",
        "f1_positive",
        "n_pairs",
    ]
    return pd.DataFrame(rows, columns=columns)
