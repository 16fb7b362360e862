from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from stance import ingest as ing
from stance.segment import segment

ALL_RULES = dict.fromkeys(ing.RULES, True)


def _page(text: str) -> list[ing.Paragraph]:
    return ing.paragraphs_from_text(text)


@pytest.mark.parametrize(
    ("rule", "line"),
    [
        ("comment_forms", "You are commenting using your Twitter account. Log Out / Change )"),
        ("comment_forms", "Leave a Reply"),
        ("login_share_widgets", "%d bloggers like this:"),
        ("login_share_widgets", "Blog at WordPress.com."),
        (
            "republishing_credits",
            "Exclusive Report of The Example Center – Any form of its republishing need credit of The Example Center.",
        ),
        ("republishing_credits", "Copyright 2018 The Associated Press. All rights reserved."),
        ("submission_promos", "Send your pitches to info (AT) example.org"),
        ("photo_credits", "date 2019-11 © Reuters / Jane Doe"),
        ("bylines", "by Jane Doe"),
    ],
)
def test_ingest_rule_removes_its_line(rule: str, line: str) -> None:
    counts: Counter[str] = Counter()
    paras = _page(f"Body sentence one about Russia.\n\n{line}\n\nBody sentence two about Iran.")
    kept, _ = ing.remove_boilerplate(paras, ALL_RULES, counts)
    assert [p.text for p in kept] == [
        "Body sentence one about Russia.",
        "Body sentence two about Iran.",
    ]
    assert counts[rule] >= 1


@pytest.mark.parametrize(
    ("rule", "tail"),
    [
        ("author_footers", "Jane Doe lives in Chicago. She can be reached at jane@example.org."),
        ("author_footers", "Visit her blog site at janedoe.blogspot.com."),
        ("signature_junk", "Do not judge me before u know me lol"),
    ],
)
def test_ingest_tail_rules_strip_only_the_end(rule: str, tail: str) -> None:
    counts: Counter[str] = Counter()
    kept, _ = ing.remove_boilerplate(
        _page(
            f"Putin lives in Moscow. He can be reached at the Kremlin.\n\nSecond body line.\n\n{tail}"
        ),
        ALL_RULES,
        counts,
    )
    assert [p.text for p in kept][-1] == "Second body line."
    assert kept[0].text.startswith("Putin lives in Moscow")
    assert counts[rule] == 1


def test_ingest_content_mentioning_republishing_is_kept() -> None:
    line = "Page is suing the parent company of the site for republishing these claims."
    kept, _ = ing.remove_boilerplate(_page(f"Intro.\n\n{line}\n\nMore."), ALL_RULES, Counter())
    assert line in [p.text for p in kept]


def test_ingest_rule_can_be_switched_off() -> None:
    rules = ALL_RULES | {"login_share_widgets": False}
    kept, _ = ing.remove_boilerplate(_page("Body.\n\nLike this:\n\nMore body."), rules, Counter())
    assert "Like this:" in [p.text for p in kept]


def test_ingest_promo_block_removed_until_next_heading() -> None:
    text = "Alpha Story Headline\n\nAlpha body text here.\n\nThe Example Center call for Submissions\n\nWe accept submissions from scholars on any issue worth a scholarly approach.\n\nThe world is passing through a sensitive era.\n\nBeta Story Headline\n\nBeta body text."
    kept, markers = ing.remove_boilerplate(_page(text), ALL_RULES, Counter())
    texts = [p.text for p in kept]
    assert "The world is passing through a sensitive era." not in texts
    assert "Beta Story Headline" in texts
    assert markers == [texts.index("Beta Story Headline")]


def test_ingest_fixture_corpus(fixture_corpus: Path) -> None:
    df, report = ing.ingest([fixture_corpus])
    assert list(df.columns[:6]) == ["article_id", "source", "path", "title", "date", "text"]
    assert df["article_id"].is_unique
    titles = set(df["title"])
    # multi_page.txt: three articles, the sub-heading stays inside the first, the promo is gone.
    assert {
        "Iran and Russia Sign Energy Deal",
        "Turkey Opens New Drone Factory",
        "Washington Reviews Afghan Policy",
    } <= titles
    assert "Background to the Deal" not in titles
    assert report.pages_split[str(fixture_corpus / "multi_page.txt")] == 3
    assert (
        not df["text"]
        .str.contains("call for Submissions|pitches|Like this|Follow us", regex=True)
        .any()
    )
    # HTML: scripts, styles, nav and footer are not text; <h1> is the title.
    html = df[df["path"].str.endswith(".html")].iloc[0]
    assert html["title"] == "Iran warns Azerbaijan over border drills"
    assert (
        "tracking" not in html["text"]
        and "Home | World" not in html["text"]
        and "Copyright" not in html["text"]
    )
    # Markdown: headings lose their markers.
    md = df[df["path"].str.endswith(".md")].iloc[0]
    assert md["title"] == "Moscow Denies Sending Troops to Libya" and "#" not in md["text"]
    # Tables keep their source, title and date; files without a sources file are 'unknown'.
    wire = df[df["path"].str.contains("wire.jsonl")]
    assert set(wire["source"]) == {"Wire Service"} and set(wire["date"]) == {
        "2020-08-14",
        "2020-01-08",
    }
    assert (df.loc[df["path"].str.endswith(".txt"), "source"] == "unknown").all()
    assert any("No source known" in w for w in report.warnings)


def test_ingest_sources_file_assigns_outlets(tmp_path: Path, fixture_corpus: Path) -> None:
    sources = tmp_path / "sources.csv"
    sources.write_text("file,source\nankara_talks.txt,Outlet A\nmissing.txt,Outlet B\n")
    df, report = ing.ingest([fixture_corpus / "ankara_talks.txt"], sources=sources)
    assert df["source"].tolist() == ["Outlet A"]
    assert any("'missing.txt'" in w for w in report.warnings)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("undecodable.txt", "cannot decode"), ("empty.txt", "empty")],
)
def test_ingest_bad_file_is_skipped_and_recorded(tmp_path: Path, name: str, reason: str) -> None:
    bad = Path(__file__).parent / "data" / "bad" / name
    good = tmp_path / "good.txt"
    good.write_text("Russia and Iran signed a deal.\n")
    (tmp_path / name).write_bytes(bad.read_bytes())
    df, report = ing.ingest([tmp_path])
    assert len(df) == 1
    assert [s["path"] for s in report.skipped] == [str(tmp_path / name)]
    assert reason in report.skipped[0]["reason"]


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("no_text_column.csv", r"no 'text' column"),
        (
            "broken.jsonl",
            r"Input '.*broken\.jsonl' cannot be used: no usable line \(line 1: invalid JSON",
        ),
    ],
)
def test_ingest_unusable_table_raises(name: str, match: str) -> None:
    with pytest.raises(ing.IngestError, match=match):
        ing.ingest([Path(__file__).parent / "data" / "bad" / name])


def test_ingest_empty_corpus_raises(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ing.IngestError, match="the corpus is empty"):
        ing.ingest([tmp_path])


def test_ingest_missing_input_and_bad_sources_raise(tmp_path: Path, fixture_corpus: Path) -> None:
    with pytest.raises(ing.IngestError, match="does not exist"):
        ing.ingest([tmp_path / "nope"])
    bad = tmp_path / "sources.csv"
    bad.write_text("name,outlet\na,b\n")
    with pytest.raises(ing.IngestError, match="needs columns 'file' and 'source'"):
        ing.ingest([fixture_corpus], sources=bad)
    with pytest.raises(ing.IngestError, match="unsupported type"):
        (tmp_path / "x.docx").write_text("x")
        ing.ingest([tmp_path / "x.docx"])


def test_ingest_table_rows_with_empty_text_are_recorded(tmp_path: Path) -> None:
    table = tmp_path / "t.parquet"
    pd.DataFrame(
        {"text": ["Russia warned Turkey.", "", None], "source": ["A", "B", "C"]}
    ).to_parquet(table)
    df, report = ing.ingest([table])
    assert df["source"].tolist() == ["A"]
    assert len(report.skipped) == 2 and all("empty" in s["reason"] for s in report.skipped)


SEED_001_TITLES = [
    "Lachin Corridor Blocked: Azerbaijan Blames Russian Peacekeepers",
    "Armenia and Iran Amplify Diplomatic and Military Relations Against Common Threats",
    "Can Timely Diplomacy Avert a Second Armenia-Azerbaijan Conflict?",
    "Simmering Tensions in the Aegean Sea Call for Sagacious Diplomacy",
    "The European Political Community: Another New Front Against Russia?",
    "Why the US Wants an Unstable and Volatile Afghanistan?",
    "South Caucasus: Tension Rising between Azerbaijan and Iran borders",
    "Russian led trilateral drills imply a show of power",
    "Western Media Biased Reporting, Double Standards on Catalonia",
]

# Boilerplate in the seeds (hand-listed): none of it may survive as a sentence.
SEED_BOILERPLATE = [
    "Do not judge me before u know me",
    "call for Submissions",
    "accepts submissions",
    "Send you pitches",
    "The world is passing through a very sensitive era",
    "Any form of its republishing",
    "© Reuters",
    "by Stephen Lendman",
    "can be reached at",
    "His new book",
    "Visit his blog site",
    "Progressive Radio",
    "Leave a Reply",
    "Fill in your details",
    "You are commenting using",
    "WordPress.com",
    "Google photo",
    "Twitter picture",
    "Facebook photo",
    "Connecting to %s",
    "Up ↑",
    "Get started",
    "bloggers like this",
]


def test_ingest_seeds_split_and_clean(seed_dir: Path) -> None:
    df, report = ing.ingest([seed_dir], sources=seed_dir.parent.parent / "sources.csv")
    page = df[df["path"].str.contains("001_")]
    assert page["title"].tolist() == SEED_001_TITLES
    assert len(df) == 12
    assert set(df["source"]) == {
        "unknown",
        "The Caucasus Center (CCSIS)",
        "RT",
        "Stephen Lendman (blog)",
    }
    sentences = segment(df, progress=False)["sentence"]
    for junk in SEED_BOILERPLATE:
        assert not sentences.str.contains(junk, regex=False).any(), junk
    # The repeated headline of 003 is kept once.
    assert (
        sentences == "West Combats Terrorism with Words, Russia with Deeds, Says Lavrov"
    ).sum() == 1
    assert report.boilerplate["comment_forms"] >= 5


def test_ingest_keeps_extra_columns_as_strings(tmp_path: Path, fixture_corpus: Path) -> None:
    table = tmp_path / "t.jsonl"
    pd.DataFrame(
        {
            # distinct texts: an exact duplicate would be dropped
            "text": ["Russia and Turkey met in Ankara.", "Iran and Turkey met in Tehran."],
            "bias_text": ["left", None],
            "year": [1, 2],
        }
    ).to_json(table, orient="records", lines=True)
    sources = tmp_path / "sources.csv"
    sources.write_text(
        "file,source,rating,country\nankara_talks.txt,Outlet A,center,TR\nt.jsonl,Outlet B,left,\n"
    )
    df, _ = ing.ingest([fixture_corpus / "ankara_talks.txt", table], sources=sources)
    assert list(df.columns[:6]) == ["article_id", "source", "path", "title", "date", "text"]
    assert list(df.columns[6:]) == ["bias_text", "year", "rating", "country"]
    assert df["year"].tolist() == [None, "1", "2"]
    assert df["bias_text"].tolist() == [None, "left", None]
    assert df["rating"].tolist() == ["center", "left", "left"]
    assert df["country"].tolist() == ["TR", "", ""]


@pytest.mark.parametrize(
    "caption",
    [
        "Enlarge this image toggle caption Jane Doe/AP Jane Doe/AP",
        "Hide caption Officials gather outside the ministry on Monday.",
        "Image copyright Reuters Image caption The minister spoke to reporters in the capital",
        "Photos: A week in pictures – Crowds gather. Hide Caption 2 of 14 Photos: A week in "
        "pictures – A parade passes the square.",
    ],
)
def test_ingest_photo_captions_rule(caption: str) -> None:
    en = dict.fromkeys(ing.RULES, True)
    assert ing._rule_for(caption, en) == "photo_captions"
    assert ing._rule_for(caption, en | {"photo_captions": False}) != "photo_captions"


def test_ingest_photo_captions_rule_spares_prose() -> None:
    en = dict.fromkeys(ing.RULES, True)
    prose = "The minister said the caption on the official photo had been changed overnight."
    assert ing._rule_for(prose, en) is None
