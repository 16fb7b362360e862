"""Build a folder of awkward inputs: good articles mixed with every kind of broken file.

Not part of the package: ``tests/test_awkward_inputs.py`` builds a small one per test module,
and the end-to-end measurement with the real models uses a full-size one (a 50 MB one-line file
of real articles glued together) built by
``python tests/awkward.py OUT --good allsides_geopolitics.jsonl.gz --big-mb 50``.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import pandas as pd

GOOD_SENTENCES = [
    "Russia blamed Turkey for the attack on the convoy near Tripoli.",
    "Officials in Ankara said the talks with Tehran had been useful.",
    "The US welcomed the ceasefire agreed in Libya on Sunday.",
    "Iran condemned the drills held close to its northern border.",
    "Putin and Erdogan discussed the Lachin corridor by phone.",
    "Washington accused Moscow of arming the militias in the south.",
]
#: What each awkward file is and what must happen to it: ``kept`` (articles it must yield),
#: ``skipped`` (reason pattern in ``report.skipped``) or another report entry.
CASES = {
    "empty.txt": "skipped: the file is empty",
    "binary.txt": "skipped: binary file",
    "latin1.txt": "kept, with a Windows-1252 warning",
    "utf16.txt": "kept (UTF-16 with BOM)",
    "script.html": "kept, without its script",
    "nul.txt": "kept, NUL bytes removed and counted",
    "good_00_copy.txt": "dropped as duplicate of good_00.txt",
    "boilerplate_only.txt": "skipped: no article text left",
    "no_punctuation.txt": "kept, cut into capped sentences",
    "one_line.txt": "kept, cut at the article cap",
    "no_text.csv": "skipped: no 'text' column",
    "broken.jsonl": "2 articles kept, line 2 skipped",
    "truncated.jsonl.gz": "the lines before the break kept",
    "null_text.parquet": "1 article kept, 2 rows skipped",
    "bad_dates.jsonl": "2 articles kept, 1 unparsed date named",
    "notes.docx": "skipped: unsupported file type",
}


def good_article(i: int) -> str:
    """Return a small distinct article: a headline and a few sentences."""
    body = " ".join(GOOD_SENTENCES[(i + k) % len(GOOD_SENTENCES)] for k in range(4))
    return f"Report number {i} on the region\n\n{body} This is report {i}.\n"


def no_punctuation_text(n_chars: int) -> str:
    """Return ``n_chars`` of text without sentence punctuation that names Russia very often."""
    words = "Russia said Moscow and the Kremlin would answer Russia again".split()
    out, size, k = [], 0, 0
    while size < n_chars:
        w = words[k % len(words)]
        out.append(w)
        size += len(w) + 1
        k += 1
    return " ".join(out)[:n_chars]


def build(root: Path, *, good: list[str] | None = None, big_chars: int = 300_000) -> Path:
    """Write the awkward folder into ``root`` and return it.

    Args:
        root: Folder to create.
        good: Texts of the good articles (default: 10 synthetic ones).
        big_chars: Size of the one-line file (50 MB for the full-size measurement).
    """
    root.mkdir(parents=True, exist_ok=True)
    good = good or [good_article(i) for i in range(10)]
    for i, text in enumerate(good):
        (root / f"good_{i:02d}.txt").write_text(text, encoding="utf-8")
    (root / "good_00_copy.txt").write_text(good[0].replace("\n\n", "\n\n\n"), encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    (root / "latin1.txt").write_bytes(
        "Café diplomacy in Zürich\n\nIran’s envoy met Turkish officials in Zürich.\n".encode(
            "cp1252"
        )
    )
    (root / "utf16.txt").write_text(
        "Ankara and Tehran\n\nTurkey and Iran agreed to reopen the border crossing.\n",
        encoding="utf-16",
    )
    (root / "script.html").write_text(
        "<html><head><title>Libya talks</title><script>var tracking = 'Russia';</script></head>"
        "<body><h1>Libya talks resume in Geneva</h1><p>Russia welcomed the new round of talks "
        "on Libya.</p><script>alert('Putin')</script></body></html>",
        encoding="utf-8",
    )
    (root / "nul.txt").write_bytes(
        b"Drills in the Caucasus\n\nAzerbaijan and Iran\x00 held drills\x00 near the border. "
        b"Russia urged calm.\n"
    )
    (root / "boilerplate_only.txt").write_text(
        "Share this:\n\nTwitter\n\nFacebook\n\nLike this:\n\nLeave a Reply\n", encoding="utf-8"
    )
    (root / "no_punctuation.txt").write_text(no_punctuation_text(76_000), encoding="utf-8")
    sentence = "Russia and Turkey traded accusations over the pipeline. "
    with (root / "one_line.txt").open("w", encoding="utf-8") as fh:
        written = 0
        while written < big_chars:
            piece = sentence[: big_chars - written]
            fh.write(piece)
            written += len(piece)
    (root / "no_text.csv").write_text("title,body\nA headline,Some body text.\n", encoding="utf-8")
    (root / "broken.jsonl").write_text(
        json.dumps({"text": "Iran warned the US over the strikes.", "source": "Wire"})
        + "\n{broken json\n"
        + json.dumps({"text": "Turkey praised Russia for the grain deal.", "source": "Wire"})
        + "\n",
        encoding="utf-8",
    )
    lines = [
        json.dumps({"text": f"Row {i}: the US and Iran resumed talks in Oman.", "source": "Gz"})
        for i in range(200)
    ]
    packed = gzip.compress(("\n".join(lines) + "\n").encode())
    (root / "truncated.jsonl.gz").write_bytes(packed[: len(packed) * 2 // 3])
    pd.DataFrame(
        {
            "text": ["Erdogan met Putin in Sochi.", None, "   "],
            "source": ["Table", "Table", "Table"],
        }
    ).to_parquet(root / "null_text.parquet")
    (root / "bad_dates.jsonl").write_text(
        json.dumps({"text": "Tehran rejected the claim.", "date": "2021-03-04", "source": "D"})
        + "\n"
        + json.dumps({"text": "Moscow denied it.", "date": "next Tuesday-ish", "source": "D"})
        + "\n",
        encoding="utf-8",
    )
    (root / "notes.docx").write_bytes(b"PK\x03\x04 not a text file")
    return root


def main() -> None:
    """Build a full-size folder from real articles (for the end-to-end measurement)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--good", type=Path, help="a JSONL(.gz) of articles with 'title' and 'text'")
    p.add_argument("--n-good", type=int, default=10)
    p.add_argument("--big-mb", type=float, default=50.0)
    args = p.parse_args()
    good = None
    big_text = ""
    if args.good:
        good = []
        with gzip.open(args.good, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if not row.get("text"):
                    continue
                if len(good) < args.n_good:
                    good.append(f"{row.get('title') or 'Untitled'}\n\n{row['text']}\n")
                else:
                    big_text += " ".join(row["text"].split()) + " "
                    if len(big_text) > 2_000_000:
                        break
    root = build(args.out, good=good, big_chars=int(args.big_mb * 1_000_000))
    if big_text:  # a real one-line file: real articles glued into one 50 MB line
        with (root / "one_line.txt").open("w", encoding="utf-8") as fh:
            written = 0
            while written < args.big_mb * 1_000_000:
                fh.write(big_text)
                written += len(big_text)
    print(root)


if __name__ == "__main__":
    main()
