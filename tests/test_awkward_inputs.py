"""A folder of awkward inputs: what is kept, what is recorded, and what stops the run.

The folder is built by ``tests/awkward.py`` (no binaries are committed): ten good articles mixed
with empty, binary, Latin-1, UTF-16, HTML-with-script, NUL-byte, duplicate, boilerplate-only,
unpunctuated and one-line files, a table without ``text``, a JSONL file with a broken line, a
truncated ``.jsonl.gz``, a Parquet file with null text and a JSONL file with a garbage date.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import awkward
import pandas as pd
import pytest
from conftest import FakeEncoder, fake_scorer

from stance import ingest as ing
from stance import scoring
from stance.segment import MAX_SENTENCE_CHARS, segment, sentence_spans

BIG_CHARS = 300_000  # the one-line file, scaled down from 50 MB; the article cap is 200,000


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return awkward.build(tmp_path_factory.mktemp("awkward"), big_chars=BIG_CHARS)


@pytest.fixture(scope="module")
def ingested(folder: Path) -> tuple[pd.DataFrame, ing.IngestReport]:
    return ing.ingest([folder])


def _rows(df: pd.DataFrame, name: str) -> pd.DataFrame:
    return df[df["path"].map(lambda p: Path(p.split("#")[0]).name == name)]


def _skips(report: ing.IngestReport, name: str) -> list[dict]:
    return [s for s in report.skipped if Path(s["path"]).name == name]


def test_awkward_every_good_article_is_kept(ingested: tuple[pd.DataFrame, ing.IngestReport]):
    df, _ = ingested
    for i in range(10):
        assert len(_rows(df, f"good_{i:02d}.txt")) == 1
    assert df["article_id"].is_unique


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.txt", "the file is empty"),
        ("binary.txt", r"binary file \(PNG image\)"),
        ("boilerplate_only.txt", "no article text left after removing boilerplate"),
        ("no_text.csv", r"the table has no 'text' column; got columns \['title', 'body'\]"),
        ("notes.docx", "unsupported file type .docx"),
    ],
)
def test_awkward_unusable_file_is_skipped_with_its_reason(
    ingested: tuple[pd.DataFrame, ing.IngestReport], name: str, reason: str
) -> None:
    df, report = ingested
    assert _rows(df, name).empty
    (skip,) = _skips(report, name)
    assert pytest.importorskip("re").search(reason, skip["reason"]), skip


def test_awkward_encodings_and_html(ingested: tuple[pd.DataFrame, ing.IngestReport]) -> None:
    df, report = ingested
    (latin1,) = _rows(df, "latin1.txt")["text"]
    assert "Café diplomacy in Zürich" in latin1 and "Iran’s envoy" in latin1
    assert any("latin1.txt: not valid UTF-8; decoded as Windows-1252" in w for w in report.warnings)
    (utf16,) = _rows(df, "utf16.txt")["text"]
    assert utf16.startswith("Ankara and Tehran") and "reopen the border" in utf16
    (page,) = _rows(df, "script.html").itertuples()
    assert page.title == "Libya talks resume in Geneva"
    assert "Russia welcomed" in page.text and "tracking" not in page.text
    assert "alert" not in page.text


def test_awkward_control_characters_removed_and_counted(
    ingested: tuple[pd.DataFrame, ing.IngestReport], folder: Path
) -> None:
    df, report = ingested
    (text,) = _rows(df, "nul.txt")["text"]
    assert "Iran held drills near the border." in text
    assert not df["text"].str.contains("\x00").any()
    assert report.to_dict()["control_characters_removed"] == {str(folder / "nul.txt"): 2}


def test_ingest_c1_controls_become_cp1252_punctuation(tmp_path: Path) -> None:
    table = tmp_path / "t.jsonl"
    table.write_text(json.dumps({"text": "The president\x92s speech \x96 and\x81 more."}) + "\n")
    df, report = ing.ingest([table])
    assert df["text"].tolist() == ["The president’s speech – and more."]
    assert report.control_characters_replaced[str(table)] == 2
    assert report.control_characters[str(table)] == 1


def test_awkward_exact_duplicate_dropped_and_listed(
    ingested: tuple[pd.DataFrame, ing.IngestReport], folder: Path
) -> None:
    df, report = ingested
    assert _rows(df, "good_00_copy.txt").empty
    assert report.duplicates == [
        {
            "path": str(folder / "good_00_copy.txt"),
            "duplicate_of": str(folder / "good_00.txt"),
            "source": "unknown",
        }
    ]
    assert any("Dropped 1 exact duplicate" in w for w in report.warnings)


def test_ingest_same_text_under_two_sources_is_kept(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Russia warned Turkey.\n")
    (tmp_path / "b.txt").write_text("Russia  warned Turkey.\n")
    df, report = ing.ingest([tmp_path], sources={"a.txt": "A", "b.txt": "B"})
    assert sorted(df["source"]) == ["A", "B"] and report.duplicates == []
    assert any("more than one source" in w for w in report.warnings)


def test_awkward_unpunctuated_text_is_cut_into_capped_sentences(
    ingested: tuple[pd.DataFrame, ing.IngestReport],
) -> None:
    df, _ = ingested
    article = _rows(df, "no_punctuation.txt")
    sentences = segment(article, progress=False)
    assert len(article.iloc[0]["text"]) >= 75_000
    assert len(sentences) >= 75_000 // MAX_SENTENCE_CHARS
    assert sentences["sentence"].str.len().max() <= MAX_SENTENCE_CHARS
    # Cut at whitespace: every word survives whole.
    words = article.iloc[0]["text"].split()
    assert [w for s in sentences["sentence"] for w in s.split()] == words


def test_awkward_one_line_file_is_cut_at_the_article_cap(
    ingested: tuple[pd.DataFrame, ing.IngestReport], folder: Path
) -> None:
    df, report = ingested
    (text,) = _rows(df, "one_line.txt")["text"]
    assert ing.MAX_ARTICLE_CHARS * 0.9 <= len(text) <= ing.MAX_ARTICLE_CHARS
    original = (folder / "one_line.txt").read_text()
    assert original.startswith(text) and original[len(text)] == " "  # cut at a space
    assert report.truncated == [
        {"path": str(folder / "one_line.txt"), "chars": BIG_CHARS, "kept": len(text)}
    ]


def test_awkward_jsonl_bad_line_skipped_with_its_number(
    ingested: tuple[pd.DataFrame, ing.IngestReport], folder: Path
) -> None:
    df, report = ingested
    assert _rows(df, "broken.jsonl")["text"].tolist() == [
        "Iran warned the US over the strikes.",
        "Turkey praised Russia for the grain deal.",
    ]
    (skip,) = _skips(report, "broken.jsonl")
    assert skip["line"] == 2 and skip["reason"].startswith("line 2: invalid JSON")
    assert report.rows_skipped[str(folder / "broken.jsonl")] == 1


def test_awkward_truncated_gzip_keeps_what_was_readable(
    ingested: tuple[pd.DataFrame, ing.IngestReport],
) -> None:
    df, report = ingested
    kept = _rows(df, "truncated.jsonl.gz")
    assert 50 < len(kept) < 200
    assert kept["text"].tolist() == [
        f"Row {i}: the US and Iran resumed talks in Oman." for i in range(len(kept))
    ]
    (skip,) = _skips(report, "truncated.jsonl.gz")
    assert "the compressed data ends early or is corrupt" in skip["reason"]
    assert f"the {len(kept)} article(s) read" in skip["reason"]


def test_awkward_null_text_rows_skipped_and_counted(
    ingested: tuple[pd.DataFrame, ing.IngestReport], folder: Path
) -> None:
    df, report = ingested
    assert _rows(df, "null_text.parquet")["text"].tolist() == ["Erdogan met Putin in Sochi."]
    skips = _skips(report, "null_text.parquet")
    assert [(s["row"], s["reason"]) for s in skips] == [
        (1, "row 1: empty or missing 'text'"),
        (2, "row 2: empty or missing 'text'"),
    ]
    assert report.to_dict()["rows_skipped"][str(folder / "null_text.parquet")] == 2


def test_awkward_unparsed_date_is_named(
    ingested: tuple[pd.DataFrame, ing.IngestReport], folder: Path
) -> None:
    df, report = ingested
    assert len(_rows(df, "bad_dates.jsonl")) == 2  # the article is kept, only its date is bad
    assert report.to_dict()["unparsed_dates"] == {
        "count": 1,
        "examples": [{"path": f"{folder / 'bad_dates.jsonl'}#row1", "value": "next Tuesday-ish"}],
    }
    assert any("1 article date(s) cannot be read as dates" in w for w in report.warnings)


def test_awkward_report_is_json_ready(ingested: tuple[pd.DataFrame, ing.IngestReport]) -> None:
    _, report = ingested
    data = json.loads(json.dumps(report.to_dict()))
    assert {
        "skipped",
        "rows_skipped",
        "duplicates",
        "control_characters_removed",
        "unparsed_dates",
        "truncated",
        "max_article_chars",
    } <= set(data)
    assert all({"path", "reason"} <= set(s) for s in data["skipped"])


# --- Strict mode and inputs named directly --------------------------------------------------

STRICT_CASES = [
    ("empty.txt", r"empty\.txt: the file is empty \(strict mode"),
    ("binary.txt", r"binary\.txt: binary file"),
    ("no_text.csv", r"no_text\.csv: the table has no 'text' column"),
    ("broken.jsonl", r"broken\.jsonl, line 2: invalid JSON"),
    ("truncated.jsonl.gz", r"truncated\.jsonl\.gz, line \d+: the compressed data ends early"),
    ("null_text.parquet", r"null_text\.parquet, row 1: empty or missing 'text'"),
    ("notes.docx", r"notes\.docx: unsupported file type"),
    ("one_line.txt", r"one_line\.txt: the article has 300,000 characters, more than"),
]


@pytest.mark.parametrize(("name", "match"), STRICT_CASES)
def test_ingest_strict_turns_each_skip_into_an_error(
    folder: Path, tmp_path: Path, name: str, match: str
) -> None:
    (tmp_path / "good.txt").write_text(awkward.good_article(0))
    (tmp_path / name).write_bytes((folder / name).read_bytes())
    ing.ingest([tmp_path])  # without strict: recorded, not raised
    with pytest.raises(ing.IngestError, match=match):
        ing.ingest([tmp_path], strict=True)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("empty.txt", "cannot be used: the file is empty"),
        ("binary.txt", r"cannot be used: binary file \(PNG image\)"),
        ("boilerplate_only.txt", "cannot be used: no article text left"),
        ("no_text.csv", "cannot be used: the table has no 'text' column"),
        ("null_text.parquet", None),  # one good row: usable
        ("notes.docx", "has unsupported type .docx"),
    ],
)
def test_ingest_input_named_directly_that_yields_nothing_stops_the_run(
    folder: Path, name: str, match: str | None
) -> None:
    if match is None:
        df, report = ing.ingest([folder / name])
        assert len(df) == 1 and len(report.skipped) == 2
        return
    with pytest.raises(ing.IngestError, match=match):
        ing.ingest([folder / "good_00.txt", folder / name])


def test_ingest_direct_table_whose_lines_all_fail_names_the_first(tmp_path: Path) -> None:
    table = tmp_path / "t.jsonl"
    table.write_text('[1, 2]\n{"text": ""}\n{"title": "x", "text": null}\n')
    with pytest.raises(ing.IngestError, match=r"no usable line \(line 1: not a JSON object"):
        ing.ingest([table])
    other = tmp_path / "u.jsonl"
    other.write_text('{"title": "no text field"}\n')
    with pytest.raises(ing.IngestError, match="no line has a 'text' field"):
        ing.ingest([other])


def test_ingest_not_gzip_and_bad_parquet_are_unusable(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl.gz").write_bytes(b'{"text": "plain, not gzip"}\n')
    with pytest.raises(
        ing.IngestError, match=r"x\.jsonl\.gz' cannot be used: cannot read the file"
    ):
        ing.ingest([tmp_path / "x.jsonl.gz"])
    (tmp_path / "y.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ing.IngestError, match="cannot read the Parquet file"):
        ing.ingest([tmp_path / "y.parquet"])
    (tmp_path / "z.json").write_text("{not json")
    with pytest.raises(ing.IngestError, match=r"z\.json' cannot be used: invalid JSON"):
        ing.ingest([tmp_path / "z.json"])
    (tmp_path / "u.txt").write_bytes(b"\x81\x8d\x90 text \x9d\n")
    with pytest.raises(ing.IngestError, match="cannot decode the file as UTF-8 or Windows-1252"):
        ing.ingest([tmp_path / "u.txt"])


def test_ingest_max_article_chars_is_validated(folder: Path) -> None:
    with pytest.raises(ValueError, match="'max_article_chars' parameter must be a positive int"):
        ing.ingest([folder / "good_00.txt"], max_article_chars=0)


def test_ingest_csv_rows_stream_with_line_numbers(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_bytes(
        'title,text,source\nA,"Russia, Turkey and\nIran met.",X\nB,too,many,fields\n\n'
        'C,"",X\nD,Café talks with Iran.,Y\n'.encode("cp1252")
    )
    df, report = ing.ingest([table])
    assert df["text"].tolist() == ["Russia, Turkey and\n\nIran met.", "Café talks with Iran."]
    assert df["path"].tolist() == [f"{table}#row0", f"{table}#row3"]
    assert [s["line"] for s in report.skipped] == [4, 6]
    assert "3 fields where the header has 3" not in report.skipped[0]["reason"]
    assert "4 fields where the header has 3" in report.skipped[0]["reason"]


def test_ingest_many_bad_rows_are_listed_then_counted(tmp_path: Path) -> None:
    table = tmp_path / "t.jsonl"
    table.write_text('{"text": "Iran spoke."}\n' + '{"text": ""}\n' * 30)
    _, report = ing.ingest([table])
    assert len(report.skipped) == ing.MAX_LISTED + 1
    assert report.skipped[-1] == {
        "path": str(table),
        "count": 10,
        "reason": "10 more row(s): empty or missing 'text'",
    }
    assert report.rows_skipped[str(table)] == 30


# --- End to end --------------------------------------------------------------------------------


def test_awkward_cli_run_exits_0_and_names_every_skip(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stance.embed
    import stance.pipeline
    from stance.cli import main

    # A smaller folder (and cap) than the module's, so that the run is quick.
    folder = awkward.build(tmp_path / "in", big_chars=30_000)
    monkeypatch.setattr(ing, "MAX_ARTICLE_CHARS", 20_000)
    monkeypatch.setattr(stance.embed, "SentenceEncoder", lambda *a, **k: FakeEncoder())
    monkeypatch.setattr(
        stance.pipeline, "_model_scorer", lambda model, cache_dir=None, workers=1: (fake_scorer, {})
    )
    config = tmp_path / "fast.toml"
    config.write_text(
        "[compare]\nbootstrap_resamples = 200\npermutation_resamples = 200\n"
        f'[embed]\ncache_dir = "{tmp_path / "cache"}"\n'
    )
    out = tmp_path / "run"
    assert main(["-q", "analyze", str(folder), "--config", str(config), "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    skipped = {Path(s["path"]).name for s in run["ingest"]["skipped"]}
    assert skipped == {
        "empty.txt",
        "binary.txt",
        "boilerplate_only.txt",
        "no_text.csv",
        "notes.docx",
        "broken.jsonl",
        "truncated.jsonl.gz",
        "null_text.parquet",
    }
    assert {Path(t["path"]).name: t["chars"] for t in run["ingest"]["truncated"]} == {
        "no_punctuation.txt": 75_999,
        "one_line.txt": 30_000,
    }
    assert run["ingest"]["duplicates"][0]["path"].endswith("good_00_copy.txt")
    mentions = pd.read_parquet(out / "mentions.parquet")
    assert mentions["sentence"].str.len().max() <= MAX_SENTENCE_CHARS
    articles = pd.read_parquet(out / "articles.parquet")
    assert {f"good_{i:02d}.txt" for i in range(10)} <= {Path(p).name for p in articles["path"]}


def test_awkward_cli_direct_unusable_input_exits_2(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stance.cli import main

    args = ["-q", "analyze", str(folder / "good_00.txt"), str(folder / "binary.txt")]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "binary.txt' cannot be used: binary file (PNG image)" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


# --- Work proportional to size ---------------------------------------------------------------


def _ingest_and_segment(path: Path) -> tuple[float, int]:
    tracemalloc.start()
    t0 = time.perf_counter()
    df, _ = ing.ingest([path], max_article_chars=10**9)
    segment(df, progress=False)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak


@pytest.mark.parametrize(
    "kind",
    ["one_line", "no_punctuation", "giant_word", "markdown_brackets", "html_lt", "html_comments"],
)
def test_awkward_work_is_proportional_to_size(tmp_path: Path, kind: str) -> None:
    """Time and memory of ingest + segment grow linearly, even without the article cap."""
    unit = "Russia and Turkey traded accusations over the pipeline. "
    if kind == "no_punctuation":
        unit = awkward.no_punctuation_text(len(unit) * 4) + " "
    if kind == "markdown_brackets":  # unclosed link brackets: the old pattern was quadratic
        unit = "Russia and Turkey traded [[[[ accusations over the [pipeline]( again "
    if kind == "giant_word":  # one token without "@": the e-mail pattern was quadratic here
        unit = "x" * 999 + "Russia"
    if kind == "html_lt":  # "<" that opens no tag: Python's html.parser was quadratic here
        unit = "<p>Russia blamed Turkey for the raid.</p>" + "<a" * 40
    if kind == "html_comments":
        unit = "<p>Russia blamed Turkey for the raid.</p>" + "<!--<a " * 20
    suffix = {"markdown": ".md", "html": ".html"}.get(kind.split("_")[0], ".txt")
    sizes = (50_000, 200_000)
    results = []
    for size in sizes:
        path = tmp_path / f"{kind}_{size}{suffix}"
        path.write_text((unit * (size // len(unit) + 1))[:size])
        results.append(_ingest_and_segment(path))
    (t_small, m_small), (t_big, m_big) = results
    assert m_big < 6 * m_small, results  # 4× the input: about 4× the memory
    assert m_big < 40 * sizes[1], results  # a bounded factor of the file size
    assert t_big < 8 * t_small + 0.5, results


def test_scoring_window_cost_does_not_grow_with_the_sentence() -> None:
    """Each pair tokenizes a bounded window, however long its sentence and however many pairs."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(scoring.base_encoder_dir()))
    seen = []

    def counting(texts, **kwargs):
        seen.extend(len(t) for t in texts)
        return tokenizer(texts, **kwargs)

    counting.cls_token_id = tokenizer.cls_token_id
    counting.sep_token_id = tokenizer.sep_token_id
    counting.unk_token_id = tokenizer.unk_token_id
    counting.convert_tokens_to_ids = tokenizer.convert_tokens_to_ids
    sentence = awkward.no_punctuation_text(76_000)
    starts = [i for i in range(0, len(sentence) - 6) if sentence.startswith("Russia", i)][::40]
    ids, _, _ = scoring.encode_pairs(
        counting, [sentence] * len(starts), starts, [s + 6 for s in starts]
    )
    window = scoring.MAX_LEN * scoring.WINDOW_CHARS_PER_TOKEN + 256
    assert max(seen) <= window
    assert sum(seen) <= len(starts) * (2 * window + 10)
    assert all(len(x) <= scoring.MAX_LEN for x in ids)


def test_scoring_window_cut_gives_the_ids_of_the_whole_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cutting at word breaks is exact, also where whitespace or dropped characters pile up."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(scoring.base_encoder_dir()))
    mask = tokenizer.convert_tokens_to_ids(scoring.MASK_TOKEN)
    filler = " ".join(awkward.GOOD_SENTENCES) + " "
    sentences = [
        filler * 8 + "Putin spoke. " + filler * 8,
        " " * 3000 + "Putin spoke. " + "\x00\x0b" * 2000 + filler * 3,
        filler * 6 + "Putin and Putin spoke " + "x" * 900 + " " + filler,
    ]
    starts = [s.index("Putin") for s in sentences]
    others = [
        [(m, m + 5) for m in range(len(s)) if s.startswith("Putin", m) and m != a]
        for s, a in zip(sentences, starts, strict=True)
    ]
    ends = [a + 5 for a in starts]
    for kwargs in ({}, {"mask_id": mask, "others": others}):
        monkeypatch.setattr(scoring, "WINDOW_CHARS_PER_TOKEN", 10**6)  # no cut at all
        whole = scoring.encode_pairs(tokenizer, sentences, starts, ends, **kwargs)
        monkeypatch.setattr(scoring, "WINDOW_CHARS_PER_TOKEN", 1)  # cuts and widens often
        assert scoring.encode_pairs(tokenizer, sentences, starts, ends, **kwargs) == whole


def test_segment_caps_sentences_at_whitespace() -> None:
    text = "word " * 1_000 + "x" * 2_500
    spans = sentence_spans(text, max_chars=300)
    assert all(b - a <= 300 for a, b in spans)
    pieces = [text[a:b] for a, b in spans]
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
    with pytest.raises(ValueError, match="'max_chars' parameter must be a positive int"):
        sentence_spans(text, max_chars=0)


def test_awkward_date_outside_the_timestamp_range_is_undated_not_a_crash(tmp_path: Path) -> None:
    # a scraped corpus held "0001-11-30": it parsed, then overflowed datetime64[ns] in compare
    import stance

    rows = [
        {"source": "A", "date": "0001-11-30", "text": "Russia blamed Turkey for the attack."},
        {"source": "B", "date": "2020-03-01", "text": "Turkey praised Russia for the peace."},
    ]
    path = tmp_path / "old_dates.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    _, report = ing.ingest([path])
    assert report.to_dict()["unparsed_dates"]["examples"] == [
        {"path": f"{path}#row0", "value": "0001-11-30"}
    ]
    cfg = {"compare": {"bootstrap_resamples": 50, "permutation_resamples": 50}}
    cfg |= {"embed": {"cache_dir": str(tmp_path / "cache")}}
    result = stance.analyze(
        [path], config=cfg, encoder=FakeEncoder(), scorer=fake_scorer, progress=False
    )
    assert len(result["mentions"]) == 4
    assert result["trends"].empty or result["trends"]["period_start"].notna().all()


def test_ingest_jsonl_lines_the_parser_cannot_take_are_skipped(tmp_path: Path) -> None:
    """Nesting past the recursion limit and over-long integers skip their line, not the run."""
    good = json.dumps({"text": "Iran warned the US over the strikes.", "source": "Wire"})
    deep = "[" * 100_000 + "]" * 100_000
    big = '{"text": "Turkey met Russia.", "n": ' + "9" * 5_000 + "}"
    (tmp_path / "odd.jsonl").write_text(
        "\n".join([deep, good, big, good.replace("Iran", "Russia")])
    )
    articles, report = ing.ingest([tmp_path])
    assert len(articles) == 2
    reasons = sorted(s["reason"] for s in report.skipped)
    assert reasons == [
        "line 1: unreadable JSON (RecursionError)",
        "line 3: unreadable JSON (ValueError)",
    ]


def test_ingest_jsonl_lone_surrogates_are_replaced_and_counted(tmp_path: Path) -> None:
    """Half a UTF-16 pair in a JSON escape is replaced, so the run can write its tables."""
    lines = [
        '{"text": "Russia blamed Turkey \\ud800 again.", "source": "Wire\\udc80", "x": "\\ud83d"}',
        json.dumps({"text": "Paired escapes stay: \U0001f600 Iran.", "source": "Wire"}),
    ]
    (tmp_path / "s.jsonl").write_text("\n".join(lines))
    articles, report = ing.ingest([tmp_path])
    assert articles["text"].tolist() == [
        "Russia blamed Turkey \ufffd again.",
        "Paired escapes stay: \U0001f600 Iran.",
    ]
    assert articles["source"].tolist() == ["Wire\ufffd", "Wire"]
    assert articles["x"].iloc[0] == "\ufffd"
    assert any("3 lone surrogate" in w for w in report.warnings)
    articles.to_parquet(tmp_path / "out.parquet")  # writable: no surrogate left
    json.dumps(report.to_dict(), ensure_ascii=False).encode("utf-8")


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
def test_ingest_pipe_in_a_folder_is_skipped_not_read(tmp_path: Path) -> None:
    """Reading a named pipe would wait for a writer forever: it is skipped and named."""
    import os

    (tmp_path / "good.txt").write_text("Russia blamed Turkey for the attack.")
    os.mkfifo(tmp_path / "pipe.txt")
    articles, report = ing.ingest([tmp_path])
    assert len(articles) == 1
    assert report.skipped == [
        {
            "path": str(tmp_path / "pipe.txt"),
            "reason": "not a regular file (a pipe, socket or device)",
        }
    ]


def test_ingest_file_name_that_is_not_utf8_is_skipped_and_named(tmp_path: Path) -> None:
    import os

    (tmp_path / "good.txt").write_text("Russia blamed Turkey for the attack.")
    bad = os.fsencode(tmp_path) + b"/bad\xff.txt"
    try:
        with open(bad, "wb") as fh:
            fh.write(b"Iran warned the US.")
    except OSError:
        pytest.skip("the file system refuses the name")
    articles, report = ing.ingest([tmp_path])
    assert len(articles) == 1
    assert report.skipped == [
        {"path": f"{tmp_path}/bad\\xff.txt", "reason": "the file name is not valid UTF-8"}
    ]
    with pytest.raises(ing.IngestError, match="not valid UTF-8"):
        ing.ingest([os.fsdecode(bad)])


def test_ingest_jsonl_line_past_the_limit_is_skipped_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line longer than MAX_LINE_BYTES (a gzip bomb of one line) is skipped in chunks."""
    monkeypatch.setattr(ing, "MAX_LINE_BYTES", 1_000)
    good = json.dumps({"text": "Iran warned the US over the strikes.", "source": "Wire"})
    huge = json.dumps({"text": "Russia " * 2_000, "source": "Wire"})
    (tmp_path / "t.jsonl").write_text("\n".join([good, huge, good.replace("Iran", "Turkey")]))
    articles, report = ing.ingest([tmp_path])
    assert articles["text"].str[:4].tolist() == ["Iran", "Turk"]
    assert report.skipped == [
        {
            "path": str(tmp_path / "t.jsonl"),
            "line": 2,
            "reason": "line 2: line longer than 1,000 bytes",
        }
    ]


def test_ingest_extra_columns_are_capped_with_a_warning(tmp_path: Path) -> None:
    """Thousands of keys cost memory out of proportion: the first MAX_EXTRA_COLUMNS are kept."""
    rows = [
        {"text": f"Russia blamed Turkey, report {i}.", "source": "W", f"k{i}": "v"}
        for i in range(80)
    ]
    (tmp_path / "k.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    articles, report = ing.ingest([tmp_path])
    assert len(articles) == 80
    kept = [c for c in articles.columns if c.startswith("k")]
    assert kept == [f"k{i}" for i in range(ing.MAX_EXTRA_COLUMNS)]
    assert any("50 are kept and 30 dropped" in w for w in report.warnings)


def test_ingest_table_column_named_like_a_run_column_is_ignored(tmp_path: Path) -> None:
    """An 'article_id' column must not merge distinct rows into one article."""
    rows = [{"text": f"Russia blamed Turkey, report {i}.", "article_id": "same"} for i in range(5)]
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    articles, report = ing.ingest([tmp_path])
    assert len(articles) == 5 and articles["article_id"].nunique() == 5
    assert any("['article_id'] are named like columns stance makes" in w for w in report.warnings)


@pytest.mark.parametrize(
    ("kind", "column"),
    [("invalid_utf8", "text"), ("year_10000", "date"), ("date32_max", "date")],
)
def test_ingest_parquet_bad_cell_costs_only_itself(tmp_path: Path, kind: str, column: str) -> None:
    """One cell without a Python value used to lose its whole 1,024-row batch (or the file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [f"Russia blamed Turkey for the raid, report {i}." for i in range(5)]
    text = pa.array(texts)
    date = pa.array([0] * 5, pa.timestamp("ms"))
    if kind == "invalid_utf8":
        raw = [t.encode() for t in texts]
        raw[2] = b"Iran \xff\xfe warned the US."
        text = pa.array(raw, pa.binary()).view(pa.string())
    elif kind == "year_10000":
        date = pa.array([0, 0, 253402300800000, 0, 0], pa.timestamp("ms"))
    else:
        date = pa.array([1, 1, 2**31 - 1, 1, 1], pa.date32())
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": text, "date": date}), path)
    articles, report = ing.ingest([path])  # named directly: it used to stop the run
    assert len(articles) == 5
    assert not report.skipped
    assert any(
        "1 cell(s) not readable as they are" in w and f"{column} 1" in w for w in report.warnings
    )
    if kind == "invalid_utf8":
        assert articles["text"].iloc[2] == "Iran \ufffd\ufffd warned the US."
    else:  # kept as Arrow writes it, and named as a date that does not parse
        assert report.to_dict()["unparsed_dates"]["examples"] == [
            {"path": f"{path}#row2", "value": articles["date"].iloc[2]}
        ]


def test_ingest_repeated_text_column_reads_the_first_non_empty(tmp_path: Path) -> None:
    """Two 'text' columns (one left empty): reading only the last one lost every row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "d.csv").write_text(
        "text,source,text\nRussia blamed Turkey.,A,\n,B,Iran warned the US.\n"
    )
    table = pa.Table.from_arrays(
        [pa.array(["Turkey praised Russia.", ""]), pa.array(["", "The US met Iran."])],
        names=["text", "text"],
    )
    pq.write_table(table, tmp_path / "d.parquet")
    articles, report = ing.ingest([tmp_path])
    assert sorted(articles["text"]) == [
        "Iran warned the US.",
        "Russia blamed Turkey.",
        "The US met Iran.",
        "Turkey praised Russia.",
    ]
    assert sum("appear more than once" in w for w in report.warnings) == 2


def test_ingest_csv_unterminated_quote_skips_its_row_only(tmp_path: Path) -> None:
    """An opened quote that never closes swallowed every later row into one field, silently."""
    path = tmp_path / "q.csv"
    path.write_text(
        'text,source\nRussia blamed Turkey.,A\n"Iran warned the US.,B\n'
        'Turkey praised Russia.,C\n"Fine, quoted.",D\nNo newline at the end,E'
    )
    articles, report = ing.ingest([path])
    assert articles["source"].tolist() == ["A", "C", "D", "E"]
    assert articles["text"].tolist()[2] == "Fine, quoted."
    assert report.skipped == [
        {
            "path": str(path),
            "line": 3,
            "reason": "line 3: a quote opened in this row runs on over 3 lines; the lines after it are read again",
        }
    ]
    # a legitimate multi-line quoted field is not mistaken for one
    path.write_text('text,source\n"Russia blamed Turkey.\n\nIran agreed.",A\nThe US met Iran.,B\n')
    articles, report = ing.ingest([path])
    assert articles["text"].tolist() == [
        "Russia blamed Turkey.\n\nIran agreed.",
        "The US met Iran.",
    ]
    assert not report.skipped


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        ("text;source\nRussia blamed Turkey.;A\n", "utf-8"),  # a European-locale spreadsheet
        ("text\tsource\nRussia blamed Turkey.\tA\n", "utf-8"),  # tab-separated, named .csv
        ("text,source\nRussia blamed Turkey.,A\n", "utf-16-le"),  # UTF-16 without a BOM
        ("text,source\nRussia blamed Turkey.,A\n", "utf-16-be"),
    ],
)
def test_ingest_csv_dialects_and_encodings(tmp_path: Path, content: str, encoding: str) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(content.encode(encoding))
    articles, report = ing.ingest([path])
    assert articles[["text", "source"]].to_numpy().tolist() == [["Russia blamed Turkey.", "A"]]
    assert not report.warnings or all("No source" not in w for w in report.warnings)


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_ingest_stray_byte_in_utf8_text_is_replaced_not_cp1252(tmp_path: Path, suffix: str) -> None:
    """One bad byte used to turn the whole file into Windows-1252 (’ became â€™, and its ©
    read as a photo credit) or lose the file."""
    text = "Russia’s envoy met Turkish officials in the café; “talks went well”. Iran\xff agreed."
    data = text.encode("utf-8").replace("\xff".encode(), b"\xff")
    if suffix == ".csv":
        data = b'text,source\n"' + data + b'",A\n'
    path = tmp_path / f"s{suffix}"
    path.write_bytes(data)
    articles, report = ing.ingest([path])
    assert (
        articles["text"]
        .iloc[-1]
        .endswith(
            "Russia’s envoy met Turkish officials in the café; “talks went well”. Iran\ufffd agreed."
        )
    )
    assert any("1 byte(s) are not valid UTF-8" in w for w in report.warnings)
    # text with no valid UTF-8 at all is still read as Windows-1252
    path.write_bytes(
        data.replace("’".encode(), b"\x92")
        .replace("é".encode(), b"\xe9")
        .replace("“".encode(), b"\x93")
        .replace("”".encode(), b"\x94")
    )
    articles, report = ing.ingest([path])
    assert "café" in articles["text"].iloc[-1] and "Iran\xff agreed" in articles["text"].iloc[-1]
    assert any("decoded as Windows-1252" in w for w in report.warnings)


def test_ingest_csv_bom_with_a_stray_byte_keeps_the_header(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_bytes(
        b"\xef\xbb\xbftext,source\nRussia blamed Turkey.,A\nCaf\xe9 talks: Iran met Turkey.,B\n"
    )
    articles, _ = ing.ingest([path])
    assert articles["text"].tolist() == [
        "Russia blamed Turkey.",
        "Caf\ufffd talks: Iran met Turkey.",
    ]


def test_ingest_links_that_lead_nowhere_are_named(tmp_path: Path) -> None:
    """Dangling links, link loops and links to folders were left out without a word."""
    import os

    (tmp_path / "good.txt").write_text("Russia blamed Turkey for the attack.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.txt").write_text("Iran warned the US over the strikes.")
    try:
        os.symlink("missing.txt", tmp_path / "dangling.txt")
        os.symlink("loop_b.txt", tmp_path / "loop_a.txt")
        os.symlink("loop_a.txt", tmp_path / "loop_b.txt")
        os.symlink("..", tmp_path / "sub" / "up")
    except OSError:
        pytest.skip("the file system refuses links")
    articles, report = ing.ingest([tmp_path])
    assert sorted(Path(p).name for p in articles["path"]) == ["good.txt", "inner.txt"]
    reasons = {Path(s["path"]).name: s["reason"] for s in report.skipped}
    assert reasons == {
        "up": "a link to a folder, not followed (name the folder itself to read it)",
        "dangling.txt": "a link whose target does not exist (or a link loop)",
        "loop_a.txt": "a link whose target does not exist (or a link loop)",
        "loop_b.txt": "a link whose target does not exist (or a link loop)",
    }


def test_ingest_unreadable_folder_and_file_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subfolder that cannot be listed was dropped silently; an unreadable file raised."""
    import os

    (tmp_path / "good.txt").write_text("Russia blamed Turkey for the attack.")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "inner.txt").write_text("Iran warned the US.")
    (tmp_path / "secret.txt").write_text("Turkey praised Russia.")
    real_scandir, real_read_bytes = os.scandir, Path.read_bytes

    def scandir(path):  # root ignores permissions: simulate them
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    def read_bytes(self):
        if self.name == "secret.txt":
            raise PermissionError(13, "Permission denied")
        return real_read_bytes(self)

    monkeypatch.setattr(ing.os, "scandir", scandir)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    articles, report = ing.ingest([tmp_path])
    assert [Path(p).name for p in articles["path"]] == ["good.txt"]
    assert sorted((Path(s["path"]).name, s["reason"]) for s in report.skipped) == [
        ("locked", "cannot list the folder (Permission denied)"),
        ("secret.txt", "cannot read the file (Permission denied)"),
    ]
    with pytest.raises(ing.IngestError, match=r"secret\.txt.*cannot read the file"):
        ing.ingest([tmp_path / "secret.txt"])


@pytest.mark.parametrize(
    "page",
    [
        "<p>Iran objected <![ if x ]> to the plan.</p>",  # html.parser asserted: the run stopped
        "<p>Iran objected <![0x]> to the plan.</p>",
        "<p>Iran objected <![> to the plan.</p>",
    ],
)
def test_ingest_html_malformed_marked_section_is_read(tmp_path: Path, page: str) -> None:
    (tmp_path / "good.txt").write_text("Russia blamed Turkey for the attack.")
    (tmp_path / "m.html").write_text(page)
    articles, report = ing.ingest([tmp_path])
    texts = dict(zip(articles["path"].map(lambda p: Path(p).name), articles["text"], strict=True))
    assert texts["good.txt"] == "Russia blamed Turkey for the attack."
    assert texts["m.html"].startswith("Iran objected") and texts["m.html"].endswith("the plan.")
    assert not report.skipped


@pytest.mark.parametrize("unit", ["<!-- a> ", "<![CDATA[ a>b ", "<!--x-->y<!-- z> "])
def test_ingest_html_unclosed_comments_and_sections_are_linear(tmp_path: Path, unit: str) -> None:
    """Each unclosed comment or marked section made html.parser rescan the rest of the page."""
    seconds = []
    for size in (50_000, 200_000):
        raw = "<p>Russia blamed Turkey.</p>" + unit * (size // len(unit))
        t0 = time.perf_counter()
        paras, _ = ing.paragraphs_from_html(raw)
        seconds.append(time.perf_counter() - t0)
        assert paras[0].text == "Russia blamed Turkey."
    assert seconds[1] < 8 * seconds[0] + 0.5, seconds  # quadratic: 16×; 200 KB took 5.7 s


def test_ingest_long_runs_of_combining_marks_are_cut(tmp_path: Path) -> None:
    """Unicode normalisation is quadratic in a run of combining marks (minutes for 2.6 KB .gz)."""
    text = "Russia\u0301 blamed Turkey " + "R" + "\u0301\u0316" * 20_000 + " again."
    (tmp_path / "z.jsonl").write_text(json.dumps({"text": text, "source": "W"}))
    t0 = time.perf_counter()
    articles, report = ing.ingest([tmp_path])
    assert time.perf_counter() - t0 < 5
    kept = articles["text"].iloc[0]
    assert kept.startswith("Russia\u0301 blamed Turkey R") and kept.endswith(" again.")
    assert len(kept) == len("Russia\u0301 blamed Turkey R again.") + ing.MAX_COMBINING_RUN
    assert report.to_dict()["combining_runs_cut"] == {str(tmp_path / "z.jsonl"): 1}


def test_ingest_parquet_repeated_long_text_costs_what_is_kept(tmp_path: Path) -> None:
    """A 2 KB Parquet file of 600 rows holding one 1 MB string cost gigabytes and minutes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    big = "Russia blamed Turkey for the raid. " * 30_000  # about 1 MB
    texts = [big] * 600 + ["Iran warned the US over the strikes."]
    path = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"text": texts, "source": ["S"] * 601}), path, compression="zstd")
    assert path.stat().st_size < 100_000
    tracemalloc.start()
    t0 = time.perf_counter()
    articles, report = ing.ingest([path], max_article_chars=10_000)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(articles) == 2  # the 599 repeats are exact duplicates
    assert len(articles["text"].iloc[0]) <= 10_000
    assert report.truncated[0]["chars"] == len(big)
    assert peak < 200e6, peak  # 601 MB of text if each row were decoded whole
    assert seconds < 20, seconds


def test_ingest_long_values_beside_text_are_cut(tmp_path: Path) -> None:
    """Only text had a cap: a 5 MB title per row made a 3 MB .gz cost 2.6 GB."""
    rows = [
        {"text": f"Russia blamed Turkey, report {i}.", "title": "T" * 50_000, "note": "n" * 20_000}
        for i in range(3)
    ]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    articles, report = ing.ingest([tmp_path])
    assert articles["title"].str.len().max() == ing.MAX_FIELD_CHARS
    assert articles["note"].str.len().max() == ing.MAX_FIELD_CHARS
    assert any("6 table value(s) longer than 10,000" in w for w in report.warnings)


def test_ingest_entries_that_cannot_be_stat_are_named(tmp_path: Path) -> None:
    """A path past PATH_MAX raised from deep inside pathlib and lost the run."""
    (tmp_path / "good.txt").write_text("Russia blamed Turkey for the attack.")
    deep = tmp_path
    try:
        for i in range(300):
            deep = deep / f"level_{i:03d}_xxxxxxxxxx"
            deep.mkdir()
    except OSError:
        pass  # the file system stopped us: the path is as long as it gets
    articles, _ = ing.ingest([tmp_path])
    assert [Path(p).name for p in articles["path"]] == ["good.txt"]


def test_ingest_named_input_that_is_not_a_regular_file_stops_at_once(tmp_path: Path) -> None:
    """/dev/zero named (or linked) directly filled memory; a pipe waited forever."""
    import os

    link = tmp_path / "zero.txt"
    try:
        os.symlink("/dev/zero", link)
    except OSError:
        pytest.skip("the file system refuses links")
    with pytest.raises(ing.IngestError, match="not a regular file"):
        ing.ingest([link])
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.jsonl")
        with pytest.raises(ing.IngestError, match="not a regular file"):
            ing.ingest([tmp_path / "pipe.jsonl"])


@pytest.mark.parametrize("kind", ["bom", "utf-16", "bigint"])
def test_ingest_json_reads_like_jsonl(tmp_path: Path, kind: str) -> None:
    """A .json with a BOM, in UTF-16 or with a 21-digit id was lost whole (pandas' parser)."""
    rows = [
        {"text": "Russia blamed Turkey.", "source": "A", "id": 1},
        {"text": "Iran warned the US.", "source": "B", "id": 2},
    ]
    raw = json.dumps(rows)
    if kind == "bigint":
        raw = raw.replace('"id": 1', '"id": 100000000000000000000')
    data = raw.encode("utf-16") if kind == "utf-16" else raw.encode("utf-8-sig")
    (tmp_path / "t.json").write_bytes(data)
    other = [r | {"source": r["source"] + "2"} for r in rows]  # not duplicates of the above
    (tmp_path / "t16.jsonl").write_bytes("\n".join(json.dumps(r) for r in other).encode("utf-16"))
    articles, report = ing.ingest([tmp_path])
    assert sorted(articles["text"]) == sorted([r["text"] for r in rows] * 2)
    assert not report.skipped


def test_ingest_sources_file_keeps_hashes_and_refuses_conflicts(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Russia blamed Turkey for the attack.")
    (tmp_path / "issue#3.txt").write_text("Iran warned the US over the strikes.")
    sources = tmp_path / "sources.csv"
    sources.write_text("file,source\n# a comment line\na.txt,C# Weekly\nissue#3.txt,Le #1\n")
    articles, _ = ing.ingest([tmp_path / "a.txt", tmp_path / "issue#3.txt"], sources=sources)
    assert articles["source"].tolist() == ["C# Weekly", "Le #1"]
    sources.write_text("file,source\na.txt,Reuters\nissue#3.txt,X\na.txt,TASS\n")
    with pytest.raises(
        ing.IngestError,
        match=r"gives 'a.txt' two sources: 'Reuters' \(line 2\) and 'TASS' \(line 4\)",
    ):
        ing.ingest([tmp_path / "a.txt"], sources=sources)


def test_ingest_hidden_entries_and_the_output_folder_are_named_not_read(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Russia blamed Turkey for the attack.")
    (tmp_path / ".draft.txt").write_text("Iran warned the US.")
    (tmp_path / ".archive").mkdir()
    (tmp_path / ".archive" / "old.txt").write_text("Turkey praised Russia.")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.csv").write_text("text\nTurkey praised Iran.\n")
    articles, report = ing.ingest([tmp_path], exclude=tmp_path / "run")
    assert [Path(p).name for p in articles["path"]] == ["good.txt"]
    assert any("2 hidden entries" in w and ".draft.txt" in w for w in report.warnings)
    assert any("the run's own output folder" in w for w in report.warnings)
    assert not report.skipped
    ing.ingest([tmp_path], exclude=tmp_path / "run", strict=True)  # not skips: strict runs on


def test_ingest_source_names_are_nfc_and_visible(tmp_path: Path) -> None:
    """NFC and NFD 'Café' were two outlets; a zero-width name a blank row; U+202E reversed text."""
    rows = [
        {"text": "Russia blamed Turkey.", "source": "Cafe\u0301"},
        {"text": "Iran warned the US.", "source": "Caf\u00e9"},
        {"text": "Turkey praised Russia.", "source": "\u200b"},
        {"text": "The US met Iran.", "source": "\u202eevil"},
    ]
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    articles, report = ing.ingest([tmp_path])
    assert articles["source"].tolist() == ["Caf\u00e9", "Caf\u00e9", "unknown", "evil"]
    assert any("No source known for 1 input" in w for w in report.warnings)
