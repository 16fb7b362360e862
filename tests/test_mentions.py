from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stance.config import load_config
from stance.ingest import ingest
from stance.mentions import build_lexicon, extract_mentions, find_mentions
from stance.segment import segment

TARGETS = load_config()["targets"]
LEX = build_lexicon(TARGETS)


def _targets(sentence: str) -> list[tuple[str, str]]:
    return [(t, m) for t, m, _, _ in find_mentions(sentence, LEX)]


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        (
            "Let us hope the US and the U.S. and the USA agree.",
            [("us", "US"), ("us", "U.S."), ("us", "USA")],
        ),
        ("Tell us more.", []),
        ("RUSSIA WARNS TURKEY", [("russia", "RUSSIA"), ("turkey", "TURKEY")]),
        ("The Washington Post said Latin America and America differ.", [("us", "America")]),
        (
            "Russian Foreign Minister Sergey Lavrov met Amir-Abdollahian in Tehran.",
            [
                ("russia", "Russian"),
                ("russia", "Sergey Lavrov"),
                ("iran", "Amir-Abdollahian"),
                ("iran", "Tehran"),
            ],
        ),
        (
            "US-backed forces met Erdogan’s envoy in Ankara.",
            [("us", "US"), ("turkey", "Erdogan"), ("turkey", "Ankara")],
        ),
        (
            "The Russians and Iranians met Turks.",
            [("russia", "Russians"), ("iran", "Iranians"), ("turkey", "Turks")],
        ),
        ("A turkey dinner in moscow, idaho.", []),
        ("Prussia and Iranistan are not targets.", []),
        (
            "The Pentagon, the State Department and AFRICOM",
            [("us", "Pentagon"), ("us", "State Department"), ("us", "AFRICOM")],
        ),
    ],
)
def test_mentions_default_aliases(sentence: str, expected: list[tuple[str, str]]) -> None:
    assert _targets(sentence) == expected


def test_mentions_offsets_and_carry_columns() -> None:
    sentences = pd.DataFrame(
        {
            "article_id": ["a"],
            "source": ["s"],
            "sentence_id": [0],
            "sentence": ["Russia praised Turkey while Iran objected."],
            "topic": ["t1"],
        }
    )
    out = extract_mentions(sentences, TARGETS, progress=False)
    assert out["target"].tolist() == ["russia", "turkey", "iran"]
    assert (out["topic"] == "t1").all()
    for row in out.itertuples():
        assert row.sentence[row.start : row.end] == row.mention


def test_mentions_user_targets_from_config(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(
        '[targets.china]\naliases = ["China", "Beijing", "Xi Jinping"]\n[targets.iran]\nenabled = false\n'
    )
    targets = load_config(cfg_file)["targets"]
    assert "china" in targets and "iran" not in targets
    found = [t for t, *_ in find_mentions("Beijing and Tehran and Moscow", build_lexicon(targets))]
    assert found == ["china", "russia"]


def test_mentions_alias_given_twice_raises() -> None:
    with pytest.raises(ValueError, match="given to both targets"):
        build_lexicon({"a": {"aliases": ["Moscow"]}, "b": {"aliases": ["Moscow"]}})


def test_mentions_cover_hand_labelled_seed_pairs(seed_dir: Path) -> None:
    """A careful reader's (sentence, target) pairs in the seeds, labelled by hand."""
    labels = pd.read_csv(Path(__file__).parent / "data" / "seed_mentions.csv")
    articles, _ = ingest([seed_dir])
    sentences = segment(articles, progress=False)
    found = extract_mentions(sentences, TARGETS, progress=False, resolve=True)
    got = set(zip(found["sentence"], found["target"], strict=True))
    want = set(zip(labels["sentence"], labels["target"], strict=True))
    explicit = labels[labels["kind"] == "explicit"]
    want_explicit = set(zip(explicit["sentence"], explicit["target"], strict=True))
    assert len(want_explicit & got) / len(want_explicit) >= 0.99, sorted(want_explicit - got)[:10]
    assert len(want & got) / len(want) >= 0.95, sorted(want - got)[:10]
    assert len(want & got) / len(got) >= 0.95, sorted(got - want)[:10]


@pytest.mark.parametrize(
    ("sentences", "expected"),
    [
        (
            [
                "Russia is the broker of peace.",
                "It mediated the ceasefire.",
                "And until May, it patrolled the road.",
            ],
            [(1, "russia", "It"), (2, "russia", "it")],
        ),
        (["Russia warned Iran.", "It is not surprising that talks failed."], []),
        (["Russia warned Iran.", "It is the first time that this happened."], []),
        (["Lavrov met Zarif in Moscow.", "He said the talks went well."], [(1, "russia", "He")]),
        (
            ["Lavrov stressed the fight against terrorism.", "It must be smashed, he said."],
            [(1, "russia", "he")],
        ),
        (["The US and NATO left Afghanistan.", "The country slid into chaos."], []),
        (
            [
                "On the part of Russia, the challenge is old.",
                "Owing to history, the country has troops there.",
            ],
            [(1, "russia", "the country")],
        ),
        (["Russia warned Iran.", "Meanwhile in Paris it rained."], []),
    ],
)
def test_mentions_resolve_references(
    sentences: list[str], expected: list[tuple[int, str, str]]
) -> None:
    df = pd.DataFrame(
        {
            "article_id": "a",
            "source": "s",
            "sentence_id": range(len(sentences)),
            "sentence": sentences,
        }
    )
    found = extract_mentions(df, TARGETS, progress=False, resolve=True)
    refs = found[found["mention"].str.lower().isin(["it", "he", "she", "the country"])]
    assert list(zip(refs["sentence_id"], refs["target"], refs["mention"], strict=True)) == expected
    for row in refs.itertuples():
        assert row.sentence[row.start : row.end] == row.mention


@pytest.mark.parametrize(
    ("sentence", "mention", "kind"),
    [
        ("The United States warned Iran.", "United States", "name"),
        ("Russian diplomats left.", "Russian", "demonym"),
        ("Moscow denied it.", "Moscow", "capital"),
        ("Lavrov denied it.", "Lavrov", "leader"),
        ("The Pentagon denied it.", "Pentagon", "institution"),
        ("Senior U.S. officials met.", "U.S.", "demonym"),
        ("They lost U.S. jobs.", "U.S.", "demonym"),
        ("A U.S.-led coalition formed.", "U.S.", "demonym"),
        ("Then the U.S. said no.", "U.S.", "name"),
        ("Talks between the US and Iran.", "US", "name"),
        ("The talks ended in the U.S.", "U.S.", "name"),
        ("Trade with the U.S. Treasury grew.", "U.S.", "name"),
    ],
)
def test_mentions_record_their_kind(sentence: str, mention: str, kind: str) -> None:
    df = pd.DataFrame(
        {"article_id": ["a"], "source": ["s"], "sentence_id": [0], "sentence": [sentence]}
    )
    out = extract_mentions(df, TARGETS, progress=False)
    assert out.loc[out["mention"] == mention, "kind"].tolist() == [kind]
    assert list(out.columns[-1:]) == ["kind"]


def test_mentions_resolved_references_are_their_own_kind() -> None:
    df = pd.DataFrame(
        {
            "article_id": ["a", "a"],
            "source": ["s", "s"],
            "sentence_id": [0, 1],
            "sentence": ["Russia mediated the talks.", "It succeeded."],
        }
    )
    out = extract_mentions(df, TARGETS, progress=False, resolve=True)
    assert out[["mention", "kind"]].to_numpy().tolist() == [["Russia", "name"], ["It", "reference"]]


def test_mentions_kind_lists_must_be_aliases_of_one_kind() -> None:
    from stance.config import load_settings

    with pytest.raises(ValueError, match=r"'targets.x.capitals' must be a list of some of its"):
        load_settings(overrides={"targets": {"x": {"aliases": ["X"], "capitals": ["Y"]}}})
    with pytest.raises(ValueError, match=r"are in both 'people' and 'capitals'"):
        load_settings(
            overrides={"targets": {"x": {"aliases": ["X"], "people": ["X"], "capitals": ["X"]}}}
        )
    with pytest.raises(ValueError, match=r"'mentions.exclude_kinds' must be a list of mention"):
        load_settings(overrides={"mentions": {"exclude_kinds": ["adjective"]}})
