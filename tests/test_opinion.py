from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from stance import opinion
from stance.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "allsides"
TARGETS = ("russia", "us", "turkey", "iran")


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    return opinion.load_pairs()


# --- The reference file --------------------------------------------------------------------------


def test_opinion_reference_schema_and_values(pairs: pd.DataFrame) -> None:
    assert list(pairs.columns) == list(opinion.PAIR_COLUMNS)
    assert pairs["pair_id"].is_unique
    assert set(pairs["label"]) == set(opinion.LABELS_WITH_NONE)
    assert set(pairs["confidence"]) <= {1, 2, 3}
    assert set(pairs["split"]) == {"dev", "test"}
    assert set(pairs["target"]) == set(TARGETS)
    assert (pairs["sent_start"] < pairs["sent_end"]).all()
    assert (pairs["mention_start"] < pairs["mention_end"]).all()
    assert (pairs["mention_end"] <= pairs["sent_end"] - pairs["sent_start"]).all()
    assert pairs["sha256"].str.fullmatch(r"[0-9a-f]{12}").all()
    # One pair per (sentence, target).
    assert not pairs.duplicated(["article_id", "sent_start", "target"]).any()


def test_opinion_reference_holds_no_text() -> None:
    text = (Path(opinion.__file__).parent / "data" / opinion.PAIRS_RESOURCE).read_text()
    assert "sentence" not in text.splitlines()[0]
    # No field is longer than an outlet name: no sentence can hide in the file.
    assert max(len(field) for line in text.splitlines() for field in line.split(",")) < 40


def test_opinion_reference_size_and_coverage(pairs: pd.DataFrame) -> None:
    labelled = pairs[pairs["label"] != "none"]
    assert len(labelled) >= 400
    per_target = labelled["target"].value_counts()
    assert all(per_target[t] >= 60 for t in TARGETS), per_target.to_dict()
    assert set(labelled["bias_text"]) == {"left", "center", "right"}
    assert labelled["source"].nunique() >= 20
    assert pairs.groupby("article_id")["target"].size().max() <= 6


def test_opinion_splits_are_by_article(pairs: pd.DataFrame) -> None:
    assert pairs.groupby("article_id")["split"].nunique().max() == 1
    dev_share = (pairs.drop_duplicates("article_id")["split"] == "dev").mean()
    assert 0.3 < dev_share < 0.5


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("label", "mixed", "'label' column"),
        ("split", "train", "'split' column"),
        ("confidence", 4, "'confidence' column"),
    ],
)
def test_opinion_load_pairs_rejects_bad_values(
    tmp_path: Path, pairs: pd.DataFrame, column: str, value: object, match: str
) -> None:
    bad = pairs.head(3).copy()
    bad[column] = value
    bad.to_csv(tmp_path / "pairs.csv", index=False)
    with pytest.raises(ValueError, match=match):
        opinion.load_pairs(tmp_path / "pairs.csv")


def test_opinion_load_pairs_rejects_missing_columns(tmp_path: Path, pairs: pd.DataFrame) -> None:
    pairs.drop(columns="sha256").to_csv(tmp_path / "pairs.csv", index=False)
    with pytest.raises(ValueError, match="lacks the columns"):
        opinion.load_pairs(tmp_path / "pairs.csv")


# --- The selection rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "title", "source", "expected"),
    [
        ("https://www.cnn.com/2019/01/01/opinions/x/index.html", "T", "CNN (Web News)", True),
        ("https://www.npr.org/blogs/itsallpolitics/2012/x", "T", "NPR Online News", True),
        ("https://www.npr.org/blogs/thetwo-way/2012/x", "T", "NPR Online News", False),
        ("https://example.com/news/x", "Opinion: a title", "Outlet", True),
        ("https://example.com/news/x", "Analysis | a title", "Outlet", True),
        ("https://example.com/news/x", "A title", "Guest Writer - Right", True),
        ("https://example.com/news/x", "A title", "Fox News Opinion", True),
        ("https://example.com/news/opinionated-x", "An opinion poll", "Outlet", False),
        (None, None, None, False),
    ],
)
def test_opinion_is_opinion(url: str, title: str, source: str, expected: bool) -> None:
    assert opinion.is_opinion(url, title, source) is expected


# --- Rebuild from a synthetic file -----------------------------------------------------------------

_ARTICLE = (
    "A synthetic headline\n"
    "Turkey mediated a ceasefire between the parties. "
    "Critics blamed Russia and the Kremlin for the attack.\n"
    "Nobody mentioned anything else."
)


def _synthetic(tmp_path: Path, text: str = _ARTICLE) -> tuple[Path, pd.DataFrame]:
    articles = [
        {"id": "a1", "source": "Outlet A", "bias_text": "left", "text": text},
        {"id": "a2", "source": "Outlet B", "bias_text": "right", "text": "Unrelated text."},
    ]
    path = tmp_path / opinion.ALLSIDES_FILE
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for a in articles:
            handle.write(json.dumps(a) + "\n")
    rows = []
    for i, (sentence, mention, label, target) in enumerate(
        [
            ("Turkey mediated a ceasefire between the parties.", "Turkey", "positive", "turkey"),
            (
                "Critics blamed Russia and the Kremlin for the attack.",
                "Russia",
                "negative",
                "russia",
            ),
            ("Nobody mentioned anything else.", "Nobody", "none", "us"),
        ]
    ):
        start = _ARTICLE.index(sentence)
        m = sentence.index(mention)
        rows.append(
            {
                "pair_id": f"t{i}",
                "article_id": "a1",
                "source": "Outlet A",
                "bias_text": "left",
                "sent_start": start,
                "sent_end": start + len(sentence),
                "mention_start": m,
                "mention_end": m + len(mention),
                "target": target,
                "label": label,
                "confidence": 2,
                "split": "dev",
                "sha256": opinion.sentence_hash(sentence),
            }
        )
    return path, pd.DataFrame(rows)


def test_opinion_rebuild_from_folder_and_file(tmp_path: Path) -> None:
    path, refs = _synthetic(tmp_path)
    for data in (tmp_path, path):
        rebuilt = opinion.rebuild_pairs(data, refs)
        assert rebuilt["mention"].tolist() == ["Turkey", "Russia", "Nobody"]
        assert rebuilt["sentence"][0] == "Turkey mediated a ceasefire between the parties."
    # "the Kremlin" is the same target's other mention, passed on to the model.
    kremlin = rebuilt["sentence"][1].index("Kremlin")
    assert rebuilt["others"][1] == [(kremlin, kremlin + len("Kremlin"))]
    assert rebuilt["others"][0] == []


def test_opinion_rebuild_detects_drift(tmp_path: Path) -> None:
    path, refs = _synthetic(tmp_path)
    refs.loc[1, "sha256"] = "0" * 12
    with pytest.raises(ValueError, match=r"1 of 3 opinion pairs do not match .*\['t1'\]"):
        opinion.rebuild_pairs(path, refs)
    kept = opinion.rebuild_pairs(path, refs, on_drift="drop")
    assert kept["pair_id"].tolist() == ["t0", "t2"]


def test_opinion_rebuild_detects_missing_article(tmp_path: Path) -> None:
    path, refs = _synthetic(tmp_path)
    refs.loc[0, "article_id"] = "gone"
    with pytest.raises(ValueError, match=r"\['t0'\]"):
        opinion.rebuild_pairs(path, refs)


def test_opinion_rebuild_missing_file_names_it(tmp_path: Path) -> None:
    _, refs = _synthetic(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nowhere.*allsides_articles_full\.jsonl\.gz"):
        opinion.rebuild_pairs(tmp_path / "nowhere", refs)


def test_opinion_rebuild_rejects_bad_on_drift(tmp_path: Path) -> None:
    path, refs = _synthetic(tmp_path)
    with pytest.raises(ValueError, match="'on_drift' parameter"):
        opinion.rebuild_pairs(path, refs, on_drift="ignore")  # type: ignore[arg-type]


# --- Evaluation with a fake scorer ------------------------------------------------------------------


def _cue_predictor(sentences, starts, ends, others):  # type: ignore[no-untyped-def]
    return [0 if "blamed" in s else 2 if "mediated" in s else 1 for s in sentences]


def test_opinion_evaluate_pairs_excludes_none_and_scores(tmp_path: Path) -> None:
    path, refs = _synthetic(tmp_path)
    rebuilt = opinion.rebuild_pairs(path, refs)
    result = opinion.evaluate_pairs(rebuilt, _cue_predictor, name="cues")
    assert result["model"] == "cues"
    assert result["n_none"] == 1
    assert result["n_pairs"] == 2
    assert result["label_counts"] == {"negative": 1, "neutral": 0, "positive": 1}
    assert result["accuracy"] == 1.0
    # Neutral has no support and no prediction: F1 0, so macro-F1 is 2/3.
    assert result["macro_f1"] == pytest.approx(0.6667, abs=1e-4)
    assert result["confusion"] == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert result["by_target"]["turkey"]["n_pairs"] == 1

    def wrong(sentences, starts, ends, others):  # type: ignore[no-untyped-def]
        return [2 if "blamed" in s else 0 for s in sentences]

    bad = opinion.evaluate_pairs(rebuilt, wrong)
    assert bad["accuracy"] == 0.0
    assert bad["per_class"]["positive"]["precision"] == 0.0


def test_opinion_evaluate_baseline_and_table(tmp_path: Path) -> None:
    path, refs = _synthetic(tmp_path)
    result = opinion.evaluate_opinion(path, "dev", baseline=True, pairs=refs)
    assert result["model"] == "vader"
    assert result["split"] == "dev"
    assert result["n_pairs"] == 2
    table = opinion.opinion_table([result])
    assert table["class"].tolist() == ["negative", "neutral", "positive"]
    assert set(table.columns) >= {"model", "split", "precision", "recall", "f1", "macro_f1"}
    with pytest.raises(ValueError, match="'split' parameter"):
        opinion.evaluate_opinion(path, "train", baseline=True, pairs=refs)  # type: ignore[arg-type]


# --- Damaged AllSides files ------------------------------------------------------------------------


def _gz(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / opinion.ALLSIDES_FILE
    with gzip.open(path, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))
    return path


_GOOD = b'{"id": "1", "text": "x"}'


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ([_GOOD, b"{not json"], r"jsonl\.gz, line 2: invalid JSON \(Expecting property name"),
        ([_GOOD, b"", b'{"text": "no id"}'], r"jsonl\.gz, line 3: the article has no 'id'"),
        ([_GOOD, b'{"id": null}'], r"line 2: the article has no 'id'"),
        ([_GOOD, b"[1, 2]"], r"line 2: the article is a JSON list, not an object"),
        ([_GOOD, b'{"id": "2", "text": 5}'], r"line 2: the article's 'text' is a int"),
        ([_GOOD, b'{"id": "2", "text": "\xff\xfe"}'], r"line 2: not UTF-8 \(byte 0xff at column"),
    ],
)
def test_opinion_iter_articles_names_file_and_line(
    tmp_path: Path, lines: list[bytes], match: str
) -> None:
    path = _gz(tmp_path, lines)
    with pytest.raises(ValueError, match=match):
        list(opinion.iter_articles(path))


def test_opinion_iter_articles_skips_blank_lines_and_reads_plain_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "articles.jsonl"
    path.write_bytes(_GOOD + b"\n\n" + b'{"id": 2, "text": null}\n')
    assert [a["id"] for a in opinion.iter_articles(path)] == ["1", 2]
    assert [a["id"] for a in opinion.iter_articles(path, {"2"})] == [2]


def test_opinion_iter_articles_rejects_a_file_that_is_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / opinion.ALLSIDES_FILE
    path.write_text("this is not gzip\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"jsonl\.gz' is not a gzip file"):
        list(opinion.iter_articles(tmp_path))


def test_opinion_iter_articles_rejects_a_truncated_gzip(tmp_path: Path) -> None:
    lines = [json.dumps({"id": str(i), "text": f"article {i} " * 50}).encode() for i in range(400)]
    path = _gz(tmp_path, lines)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"jsonl\.gz' is truncated .* after line \d+"):
        list(opinion.iter_articles(path))


@pytest.mark.parametrize("where", ["data", "crc"])
def test_opinion_iter_articles_rejects_damaged_gzip_data(tmp_path: Path, where: str) -> None:
    data = bytearray(gzip.compress(b"".join([_GOOD + b"\n"] * 50), mtime=0))
    if where == "data":
        data[12:16] = b"\xff" * 4  # inside the deflate stream, past the 10-byte header
    else:
        data[-8] ^= 0xFF  # the CRC-32 of the trailer
    path = tmp_path / "articles.jsonl.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"jsonl\.gz' is a damaged gzip file"):
        list(opinion.iter_articles(path))


def test_opinion_cli_damaged_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / opinion.ALLSIDES_FILE).write_bytes(b"garbage")
    assert main(["-q", "evaluate", "opinion", "--data", str(tmp_path), "--baseline"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "stance evaluate: error: The AllSides file" in err
    assert "is not a gzip file" in err


# --- CLI ---------------------------------------------------------------------------------------------


def test_opinion_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "evaluate", "opinion", "--data", str(tmp_path), "--baseline"]) == 2
    err = capsys.readouterr().err
    assert "stance evaluate: error:" in err
    assert "allsides_articles_full.jsonl.gz" in err


# --- The real shared file ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/allsides is absent")
def test_opinion_rebuild_real_file(pairs: pd.DataFrame) -> None:
    rebuilt = opinion.rebuild_pairs(SHARED, pairs)
    assert len(rebuilt) == len(pairs)
    aliases = rebuilt["mention"].str.len() > 0
    assert aliases.all()


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/allsides is absent")
def test_opinion_draw_reproduces_reference(pairs: pd.DataFrame) -> None:
    drawn = opinion.draw_candidates(SHARED, per_cell=42)
    keys = ["pair_id", "article_id", "sent_start", "sent_end", "mention_start", "target", "split"]
    pd.testing.assert_frame_equal(
        drawn[keys].reset_index(drop=True), pairs[keys].reset_index(drop=True)
    )


def test_opinion_draw_focused_stratifies_by_target_and_convention(tmp_path: Path) -> None:
    sentences = {
        "victim": "Iran said its citizens were detained by the border guards last week.",
        "mediator": "Russia acted as a mediator between the two sides at the talks.",
        "concern": "Officials in Turkey voiced concern about the new pipeline plan.",
        "plain": "Russia held a routine meeting with its neighbours on trade today.",
    }
    articles = [
        {"id": f"a{i}", "source": f"Outlet {i % 3}", "bias_text": "left", "text": text}
        for i, text in enumerate(
            [
                sentences["victim"] + " " + sentences["mediator"],
                sentences["mediator"],
                sentences["concern"] + " " + sentences["plain"],
                sentences["victim"],
                sentences["plain"],
                sentences["mediator"] + " It also said the detained men were freed.",
            ]
        )
    ]
    path = tmp_path / opinion.ALLSIDES_FILE
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for a in articles:
            handle.write(json.dumps(a) + "\n")
    drawn = opinion.draw_focused(tmp_path, per_cell=5, exclude_articles=["a3"])
    assert list(drawn.columns) == [*opinion.PAIR_COLUMNS, "convention", "sentence", "mention"]
    assert drawn["article_id"].is_unique  # one pair per article
    assert "a3" not in set(drawn["article_id"])  # excluded
    assert "a4" not in set(drawn["article_id"])  # no convention's wording
    assert set(drawn["split"]) == {opinion.TRAIN_SPLIT}
    cells = set(zip(drawn["target"], drawn["convention"], strict=True))
    assert cells == {("iran", "victim"), ("russia", "mediator"), ("turkey", "concern")}
    # a sentence belongs to the first convention it matches: a5's mediator sentence is
    # 'mediator' although the article also holds a 'victim' sentence without a target
    assert drawn.set_index("article_id").loc["a5", "convention"] == "mediator"
    for row in drawn.itertuples():
        assert row.sentence[row.mention_start : row.mention_end] == row.mention
        assert row.sha256 == opinion.sentence_hash(row.sentence)
    again = opinion.draw_focused(tmp_path, per_cell=5, exclude_articles=["a3"])
    pd.testing.assert_frame_equal(drawn, again)
    one = opinion.draw_focused(tmp_path, per_cell=1, exclude_articles=[])
    assert one.groupby(["target", "convention"]).size().max() == 1


# --- The training references ---------------------------------------------------------------------


def test_opinion_training_references_are_apart_from_the_evaluation_set(
    pairs: pd.DataFrame,
) -> None:
    train = opinion.load_train_pairs()
    assert list(train.columns) == list(opinion.PAIR_COLUMNS)
    assert train["pair_id"].is_unique and not set(train["pair_id"]) & set(pairs["pair_id"])
    assert set(train["split"]) == {opinion.TRAIN_SPLIT}
    assert not set(train["article_id"]) & set(pairs["article_id"])
    assert set(train["label"]) <= set(opinion.LABELS_WITH_NONE)
    assert len(train[train["label"] != "none"]) >= 800
    assert not train.duplicated(["article_id", "sent_start", "target"]).any()
    text = (Path(opinion.__file__).parent / "data" / opinion.TRAIN_RESOURCE).read_text()
    assert max(len(field) for line in text.splitlines() for field in line.split(",")) < 40


def test_opinion_focus_references_are_apart_and_hold_no_text(pairs: pd.DataFrame) -> None:
    path = Path(opinion.__file__).parent / "data" / "opinion_focus_pairs.csv"
    focus = opinion.load_train_pairs(path)  # refuses an evaluation article
    assert list(focus.columns) == [*opinion.PAIR_COLUMNS, "convention"]
    assert focus["pair_id"].str.fullmatch(r"fo\d{4}").all() and focus["pair_id"].is_unique
    assert focus["article_id"].is_unique  # one pair per article
    assert not set(focus["article_id"]) & set(opinion.load_train_pairs()["article_id"])
    assert set(focus["convention"]) == set(opinion.FOCUS_CONVENTIONS)
    assert set(focus["target"]) == set(TARGETS)
    assert len(focus[focus["label"] != "none"]) >= 250
    text = path.read_text()
    assert max(len(field) for line in text.splitlines() for field in line.split(",")) < 40


def test_opinion_training_references_refuse_an_evaluation_article(
    pairs: pd.DataFrame, tmp_path: Path
) -> None:
    train = opinion.load_train_pairs().head(3).copy()
    leaky = train.copy()
    leaky.loc[0, "article_id"] = pairs["article_id"].iloc[0]
    leaky.to_csv(tmp_path / "leaky.csv", index=False)
    with pytest.raises(ValueError, match="leak into dev or test"):
        opinion.load_train_pairs(tmp_path / "leaky.csv")
    train.loc[0, "split"] = "dev"
    train.to_csv(tmp_path / "dev.csv", index=False)
    with pytest.raises(ValueError, match="'split' column"):
        opinion.load_train_pairs(tmp_path / "dev.csv")
