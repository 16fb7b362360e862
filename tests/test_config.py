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
        ('[targets.x]\naliases = []\nlabel = "X"\n', "non-empty list of strings .aliases."),
        ('[run]\nseed = "a"\n', "'run.seed' must be an integer"),
        ("[run]\npartition_articles = 0\n", r"'run.partition_articles' must be a number >= 1"),
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
        "cache": True,
        "cache_dir": "",
    }


@pytest.mark.parametrize(
    ("stance", "match"),
    [
        (
            {"model": "nope"},
            r"'stance\.model' must be a shipped model \(newsmtsc-blind-cascade, newsmtsc-minilm-l6, ",
        ),
        ({"reported_weight": 1.5}, "'stance.reported_weight' must be a number in"),
        ({"reported_weight": "half"}, "'stance.reported_weight' must be a number. Got 'half'"),
        ({"attribution": "yes"}, "'stance.attribution' must be true or false"),
    ],
)
def test_config_bad_stance_settings(stance: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_config(None, {"stance": stance})


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            "[compare]\nbootstrap_resampels = 10\n",
            r"bad\.toml.*unknown key 'compare\.bootstrap_resampels'\. "
            r"Did you mean 'compare\.bootstrap_resamples'\?",
        ),
        ("[comapre]\nconfidence = 0.9\n", r"bad\.toml.*unknown table 'comapre'.*'compare'"),
        (
            "[compare]\nbootstrap_resamples = 'many'\n",
            r"bad\.toml.*'compare\.bootstrap_resamples' must be an integer\. "
            r"Got 'many' \(a string\)",
        ),
        ("[compare]\nconfidence = 2\n", r"'compare\.confidence' must be a number strictly"),
        ("[embed]\nbatch_size = 1.5\n", r"'embed\.batch_size' must be an integer"),
        ("[ingest.boilerplate]\nbylins = false\n", r"Did you mean 'ingest\.boilerplate\.bylines'"),
        ("[targets.russia]\nalias = ['Russia']\n", r"Did you mean 'targets\.russia\.aliases'"),
        ("[topics.named.libya]\ndescrption = 'x'\n", r"'topics\.named\.libya\.description'"),
        ("[stance]\nattribution = 1\n", r"'stance\.attribution' must be true or false"),
    ],
)
def test_config_names_file_key_and_fix(tmp_path: Path, content: str, match: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(content)
    with pytest.raises(ValueError, match=match):
        load_config(f)


def test_config_overrides_are_checked_too() -> None:
    with pytest.raises(ValueError, match=r"overrides: unknown key 'run\.sed'"):
        load_config(overrides={"run": {"sed": 1}})


def test_config_default_text_is_the_declaration() -> None:
    # The commented file is generated from the typed fields: reading it back gives the defaults.
    from stance.config import load_settings

    assert load_settings(overrides=tomllib.loads(default_config_text())) == load_settings()
    assert "# Cluster bootstrap resamples" in default_config_text()


def test_config_attribution_default_agrees_with_the_pipeline() -> None:
    import inspect

    from stance import attribution

    default = inspect.signature(attribution.attribute).parameters["reported_weight"].default
    assert default == load_config()["stance"]["reported_weight"] == 0.25


def test_config_cache_dirs_never_point_into_the_working_directory(monkeypatch, tmp_path) -> None:
    from stance.config import load_settings, user_cache_dir

    monkeypatch.delenv("STANCE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "stance"
    assert load_settings().embed.cache_path() == tmp_path / "xdg" / "stance" / "embeddings"
    assert load_settings().stance.cache_path() == tmp_path / "xdg" / "stance" / "stance-scores"
    assert load_settings(overrides={"stance": {"cache": False}}).stance.cache_path() is None
    monkeypatch.setenv("STANCE_CACHE_DIR", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"
