from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from stance.config import default_config_text, load_config


def test_config_defaults_have_targets_and_topics() -> None:
    cfg = load_config()
    assert set(cfg["targets"]) == {"russia", "us", "turkey", "iran"}
    assert set(cfg["topics"]["named"]) == {"libya", "lachin", "aegean", "catalonia", "afghanistan"}
    assert "US" in cfg["targets"]["us"]["aliases"] and "us" not in cfg["targets"]["us"]["aliases"]
    assert default_config_text().lstrip().startswith("#")  # commented for users


def test_config_user_file_merges(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        '[run]\nseed = 7\n[topics.named.syria]\ndescription = "The Syrian war."\nterms = ["Syria", "Aleppo"]\n[topics.named.catalonia]\nenabled = false\n'
    )
    cfg = load_config(f)
    assert cfg["run"]["seed"] == 7
    assert "syria" in cfg["topics"]["named"] and "catalonia" not in cfg["topics"]["named"]
    assert cfg["embed"]["model"] == "all-MiniLM-L6-v2"


def test_config_overrides_dict() -> None:
    assert (
        load_config(overrides={"compare": {"bootstrap_resamples": 10}})["compare"][
            "bootstrap_resamples"
        ]
        == 10
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[run\nseed=1", "not valid TOML"),
        ("[targets.x]\naliases = []\n", "non-empty list of strings 'aliases'"),
        ('[run]\nseed = "a"\n', "'run.seed' must be an integer"),
        ('[topics.named.all]\ndescription = "x"\n', "reserved"),
        ('[topics.named.x]\nterms = ["a"]\n', "needs a 'description'"),
    ],
)
def test_config_bad_file_raises(tmp_path: Path, content: str, match: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(content)
    with pytest.raises(ValueError, match=match):
        load_config(f)


def test_config_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "none.toml")


def test_config_default_text_is_valid_toml() -> None:
    assert tomllib.loads(default_config_text())["run"]["seed"] == 42


def test_config_stance_defaults() -> None:
    cfg = load_config()
    assert cfg["stance"] == {
        "model": "newsmtsc-minilm-l6-blind",
        "attribution": True,
        "reported_weight": 0.25,
    }


@pytest.mark.parametrize(
    ("stance", "match"),
    [
        ({"model": "nope"}, "'stance.model': No stance model 'nope'"),
        ({"reported_weight": 1.5}, "'stance.reported_weight' must be a number in"),
        ({"reported_weight": "half"}, "'stance.reported_weight' must be a number in"),
        ({"attribution": "yes"}, "'stance.attribution' must be true or false"),
    ],
)
def test_config_bad_stance_settings(stance: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_config(None, {"stance": stance})
