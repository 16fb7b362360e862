"""Configuration: the packaged defaults merged with an optional user TOML file.

The defaults live in ``default_config.toml`` beside this module and are commented for users.
A user file is merged over them table by table; a target or named topic with
``enabled = false`` is removed. The result is a plain ``dict`` that goes unchanged into
``run.json`` so every run records what it was configured with.
"""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_NAME = "default_config.toml"


def default_config_text() -> str:
    """Return the commented default configuration as TOML text."""
    return resources.files("stance").joinpath(DEFAULT_CONFIG_NAME).read_text(encoding="utf-8")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _drop_disabled(table: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in table.items() if not (isinstance(v, dict) and v.get("enabled") is False)
    }


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Load the default configuration, merged with a user file and in-code overrides.

    Targets and named topics in the user file replace the default of the same name wholesale
    (so a user's alias list is the alias list), other tables merge key by key.

    Args:
        path: A TOML file, or ``None`` for the defaults alone.
        overrides: A nested dict merged last, e.g. ``{"run": {"seed": 1}}``.

    Returns:
        The merged configuration.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When ``path`` is not valid TOML or a table is malformed.
    """
    config = tomllib.loads(default_config_text())
    user: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"Config file {str(p)!r} does not exist.")
        try:
            user = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"Config file {str(p)!r} is not valid TOML: {exc}") from None
    for extra in (user, overrides or {}):
        extra = copy.deepcopy(extra)
        targets = extra.pop("targets", None)
        named = (extra.get("topics") or {}).pop("named", None)
        config = _merge(config, extra)
        if targets is not None:
            config["targets"].update(targets)
        if named is not None:
            config["topics"]["named"].update(named)
    config["targets"] = _drop_disabled(config["targets"])
    config["topics"]["named"] = _drop_disabled(config["topics"]["named"])
    validate_config(config, source=str(path) if path else "the default config")
    return config


def validate_config(config: dict[str, Any], source: str = "config") -> None:
    """Check the parts of ``config`` that later stages rely on.

    Raises:
        ValueError: Naming the offending table and key.
    """
    targets = config.get("targets")
    if not isinstance(targets, dict) or not targets:
        raise ValueError(f"{source}: the 'targets' table must define at least one target.")
    for name, spec in targets.items():
        aliases = spec.get("aliases") if isinstance(spec, dict) else None
        if (
            not isinstance(aliases, list)
            or not aliases
            or not all(isinstance(a, str) and a.strip() for a in aliases)
        ):
            raise ValueError(
                f"{source}: target {name!r} must have a non-empty list of strings 'aliases'. "
                f"Got {aliases!r} instead."
            )
        people = spec.get("people", [])
        if not isinstance(people, list) or not set(people) <= set(aliases):
            raise ValueError(
                f"{source}: target {name!r} 'people' must be a list of some of its aliases. Got {people!r} instead."
            )
        exclude = spec.get("exclude", [])
        if not isinstance(exclude, list) or not all(isinstance(a, str) for a in exclude):
            raise ValueError(f"{source}: target {name!r} 'exclude' must be a list of strings.")
    for name, spec in config.get("topics", {}).get("named", {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("description"), str):
            raise ValueError(f"{source}: named topic {name!r} needs a 'description' string.")
        if not isinstance(spec.get("terms", []), list):
            raise ValueError(f"{source}: named topic {name!r} 'terms' must be a list of strings.")
        if name in ("all", "noise"):
            raise ValueError(f"{source}: {name!r} is reserved and cannot name a topic.")
    seed = config.get("run", {}).get("seed")
    if not isinstance(seed, int):
        raise ValueError(f"{source}: 'run.seed' must be an integer. Got {seed!r} instead.")
    stance_table = config.get("stance", {}) or {}
    weight = stance_table.get("reported_weight", 0.25)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise ValueError(
            f"{source}: 'stance.reported_weight' must be a number in [0, 1]. "
            f"Got {weight!r} instead."
        )
    if not isinstance(stance_table.get("attribution", True), bool):
        raise ValueError(f"{source}: 'stance.attribution' must be true or false.")
    model = stance_table.get("model")
    if model is not None:
        from stance.scoring import resolve_model_dir

        try:
            resolve_model_dir(model)
        except FileNotFoundError as exc:
            raise ValueError(f"{source}: 'stance.model': {exc}") from None
