"""stance: cross-article comparative stance analysis.

``stance.analyze(inputs, ...)`` runs the whole pipeline and returns its tables;
``stance.score_mentions(df)`` scores the stance a sentence takes toward a marked target.
Importing the package is cheap: heavy libraries load when a function needs them.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = metadata.version("stance")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from stance.config import load_config
    from stance.pipeline import analyze
    from stance.scoring import score_mentions

__all__ = ["__version__", "analyze", "load_config", "score_mentions"]

_LAZY = {
    "analyze": ("stance.pipeline", "analyze"),
    "score_mentions": ("stance.scoring", "score_mentions"),
    "load_config": ("stance.config", "load_config"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'stance' has no attribute {name!r}")
