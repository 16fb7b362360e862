"""Command line: ``stance analyze``, ``stance report``, ``stance train``, ``stance evaluate``.

Errors a user can fix (a missing file, a table without ``text``, a bad config) print one line
naming the file and the problem and exit with status 2; they never show a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stance", description="Cross-article comparative stance analysis."
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars"
    )
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="run the analysis on articles and write a run directory")
    a.add_argument(
        "inputs",
        nargs="+",
        help="folders of .txt/.md/.html pages, or CSV/JSONL/Parquet tables with a 'text' column",
    )
    a.add_argument(
        "--sources",
        help="CSV with columns file,source[,more columns] naming each input file's outlet; "
        "more columns are kept on the articles",
    )
    a.add_argument("--config", help="TOML config merged over the defaults (see `stance config`)")
    a.add_argument(
        "--group-by",
        default="source",
        metavar="COLUMN",
        help="article column to compare across (default: source), e.g. bias_text; extra "
        "columns of table inputs and of the --sources CSV are article columns",
    )
    a.add_argument("--out", required=True, help="run directory to write")
    a.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first unusable file, table or line instead of skipping it",
    )
    a.add_argument(
        "--engine",
        choices=["local", "dask"],
        default="local",
        help="where partitions of articles are segmented, embedded and scored: this process "
        "(local, default) or Dask tasks (dask); the tables are the same",
    )
    a.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: a running Dask scheduler, e.g. tcp://host:8786 "
        "(default: a LocalCluster for this run)",
    )
    a.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="with --engine dask: worker processes of the LocalCluster (default: one per "
        "core), or how many workers to wait for at --scheduler (default: 1)",
    )

    r = sub.add_parser("report", help="render the HTML reports of a finished run")
    r.add_argument("--run", required=True, help="run directory written by `stance analyze`")
    r.add_argument(
        "--out", default="reports", help="folder for the HTML reports (default: reports)"
    )
    r.add_argument(
        "--notebook",
        action="append",
        help="render only this notebook (repeatable), e.g. 03_stance_by_source_topic",
    )
    r.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="notebook parameter (repeatable), e.g. data_path=/data/allsides.jsonl.gz or sample_size=500",
    )

    t = sub.add_parser("train", help="train the stance model")
    t.add_argument("dataset", choices=["newsmtsc"])
    t.add_argument("--data", required=True, help="NewsMTSC folder with train.jsonl, rw/ and mt/")
    t.add_argument("--out", help="model folder to write (default: the shipped model's folder)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument(
        "--names-visible",
        action="store_true",
        help="train with the target's name visible (the identity-aware model) instead of hidden",
    )
    t.add_argument(
        "--base",
        default="minilm",
        choices=["minilm", "mpnet"],
        help="base encoder: minilm (default models) or mpnet (the accurate model / teacher)",
    )
    t.add_argument(
        "--lora-rank", type=int, help="train LoRA updates of this rank instead of all weights"
    )
    t.add_argument("--lora-alpha", type=float, default=16.0, help="LoRA scale numerator")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=5e-5, help="peak learning rate of the encoder")
    t.add_argument("--head-lr", type=float, default=5e-4, help="peak learning rate of the head")
    t.add_argument("--max-len", type=int, default=128, help="maximum tokens per pair")
    t.add_argument("--threads", type=int, default=1, help="torch threads while training")
    t.add_argument("--checkpoint-dir", help="folder for resumable checkpoints")
    t.add_argument(
        "--checkpoint-every", type=float, default=900.0, help="seconds between checkpoints"
    )
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    t.add_argument(
        "--transfer",
        metavar="SHARDS",
        help="distil: folder of teacher soft-label shards (benchmarks/distill_transfer.py)",
    )
    t.add_argument(
        "--transfer-data",
        metavar="ALLSIDES",
        help="the AllSides folder or .jsonl.gz the transfer shards point into",
    )
    t.add_argument(
        "--transfer-bias",
        metavar="NEG,NEU,POS",
        help="offsets added to the teacher's log-probabilities (benchmarks/teacher_bias.py)",
    )
    t.add_argument(
        "--distill-weight", type=float, default=0.5, help="weight of the KL term on transfer pairs"
    )
    t.add_argument(
        "--gold-repeat", type=int, default=1, help="passes over NewsMTSC train per epoch"
    )
    t.add_argument(
        "--gold-teacher",
        metavar="FILE",
        help="distil on the gold pairs too: the teacher's probabilities on NewsMTSC train "
        "(benchmarks/distill_gold.py)",
    )
    t.add_argument(
        "--gold-distill",
        type=float,
        default=None,
        help="with --gold-teacher: weight a of KL(teacher||student) against (1 - a) CE on "
        "NewsMTSC pairs (default 0.5)",
    )
    t.add_argument(
        "--opinion-train",
        metavar="ALLSIDES",
        help="also train on the hand-labelled opinion pairs, rebuilt from this AllSides folder",
    )
    t.add_argument(
        "--opinion-pairs",
        action="append",
        metavar="CSV",
        help="with --opinion-train: a reference file of labelled training pairs to rebuild "
        "(repeatable; default: the shipped stance/data/opinion_train_pairs.csv)",
    )
    t.add_argument(
        "--opinion-repeat", type=int, default=1, help="passes over the opinion pairs per epoch"
    )
    t.add_argument(
        "--init",
        metavar="MODEL",
        help="start from a trained stance model (a name or folder) instead of the base encoder",
    )
    t.add_argument(
        "--device",
        default="cpu",
        help="where to train: cpu (default) or a torch device such as cuda; same recipe",
    )

    w = sub.add_parser(
        "average", help="average the weights of fine-tuned stance models into one (a model soup)"
    )
    w.add_argument("models", nargs="+", metavar="MODEL", help="shipped model names or folders")
    w.add_argument("--data", required=True, help="NewsMTSC folder (temperature and dev figures)")
    w.add_argument("--out", required=True, help="model folder to write")
    w.add_argument("--model-id", required=True, help="the new model's id (score-cache key)")

    e = sub.add_parser("evaluate", help="evaluate the stance model")
    e.add_argument("dataset", choices=["newsmtsc", "opinion"])
    e.add_argument(
        "--data",
        required=True,
        help="NewsMTSC folder with rw/ and mt/; for opinion, the AllSides folder or its .jsonl.gz",
    )
    e.add_argument("--split", default="test", choices=["dev", "test"])
    e.add_argument(
        "--model", help="shipped model name or model folder (default: the default model)"
    )
    e.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "int8"],
        default="auto",
        help="inference precision (default: chosen for this CPU, see the model's config.json)",
    )
    e.add_argument(
        "--baseline", action="store_true", help="evaluate the VADER sentence-level baseline instead"
    )
    e.add_argument("--json", action="store_true", help="print one JSON object")

    sub.add_parser("config", help="print the commented default config")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    progress = not args.quiet
    from stance.ingest import IngestError
    from stance.run import RunDirError

    try:
        if args.command == "config":
            from stance.config import default_config_text

            sys.stdout.write(default_config_text())
        elif args.command == "analyze":
            from stance.pipeline import analyze

            result = analyze(
                args.inputs,
                sources=args.sources,
                config=args.config,
                out=args.out,
                strict=True if args.strict else None,
                progress=progress,
                group_by=args.group_by,
                engine=args.engine,
                scheduler=args.scheduler,
                workers=args.workers,
            )
            counts = result["run"]["counts"]
            print(
                f"Wrote {args.out}: {counts['articles']} articles, {counts['sentences']} sentences, {counts['mentions']} mentions, {counts['summary_cells']} summary cells."
            )
            skipped = result["run"]["ingest"]["skipped"]
            if skipped:
                print(
                    f"Skipped {len(skipped)} input(s); see {Path(args.out) / 'run.json'}.",
                    file=sys.stderr,
                )
        elif args.command == "report":
            from stance.report import render_reports

            params: dict[str, object] = {}
            for item in args.param:
                key, sep, value = item.partition("=")
                if not sep or not key:
                    raise ValueError(
                        f"The '--param' option must look like KEY=VALUE. Got {item!r} instead."
                    )
                params[key] = int(value) if value.lstrip("-").isdigit() else value
            try:
                paths = render_reports(
                    args.run,
                    args.out,
                    notebooks=args.notebook,
                    progress=progress,
                    parameters=params or None,
                )
            except RuntimeError as exc:  # a notebook failed: its message names it and the cell
                print(f"stance report: error: {exc}", file=sys.stderr)
                return 1
            for path in paths:
                print(path)
        elif args.command == "train":
            from stance.training import (
                labelled_by,
                load_opinion_train,
                load_transfer,
                train_newsmtsc,
            )

            if bool(args.transfer) != bool(args.transfer_data):
                raise ValueError("--transfer and --transfer-data go together.")
            bias = [float(x) for x in args.transfer_bias.split(",")] if args.transfer_bias else None
            if args.gold_distill is not None and not args.gold_teacher:
                raise ValueError("--gold-distill needs --gold-teacher FILE.")
            if args.gold_teacher and not Path(args.gold_teacher).is_file():
                raise FileNotFoundError(f"No gold-teacher file {args.gold_teacher}.")
            if args.opinion_pairs and not args.opinion_train:
                raise ValueError("--opinion-pairs needs --opinion-train ALLSIDES.")
            for path in args.opinion_pairs or []:
                if not Path(path).is_file():
                    raise FileNotFoundError(f"No opinion pair file {path}.")
            # read before the (long) load, so a bad teacher.json stops the run at once
            transfer_teacher = labelled_by(args.transfer) if args.transfer else None
            transfer = (
                load_transfer(args.transfer, args.transfer_data, logit_bias=bias)
                if args.transfer
                else None
            )
            opinion = None
            if args.opinion_train:
                opinion = [
                    pair
                    for path in args.opinion_pairs or [None]
                    for pair in load_opinion_train(args.opinion_train, path)
                ]
            kwargs = {
                "seed": args.seed,
                "epochs": args.epochs,
                "mask_target": False if args.names_visible else "names",
                "base": args.base,
                "lora_rank": args.lora_rank,
                "lora_alpha": args.lora_alpha,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "head_lr": args.head_lr,
                "max_len": args.max_len,
                "num_threads": args.threads,
                "checkpoint_dir": args.checkpoint_dir,
                "checkpoint_every_s": args.checkpoint_every,
                "resume": args.resume,
                "progress": progress,
                "transfer": transfer,
                "distill_weight": args.distill_weight,
                "transfer_bias": bias,
                "transfer_teacher": transfer_teacher,
                "gold_repeat": args.gold_repeat,
                "opinion": opinion,
                "opinion_files": [Path(f).name for f in args.opinion_pairs or []] or None,
                "opinion_repeat": args.opinion_repeat,
                "gold_teacher": args.gold_teacher,
                "gold_distill": (
                    0.0
                    if not args.gold_teacher
                    else 0.5
                    if args.gold_distill is None
                    else args.gold_distill
                ),
                "init": args.init,
                "device": args.device,
            } | ({"out_dir": args.out} if args.out else {})
            print(json.dumps(train_newsmtsc(args.data, **kwargs), indent=2, default=str))
        elif args.command == "average":
            from stance.training import average_weights

            config = average_weights(args.models, args.out, args.data, model_id=args.model_id)
            print(json.dumps(config["dev_metrics"], indent=2))
        elif args.command == "evaluate":
            from stance import training

            if args.dataset == "opinion":
                from stance.opinion import evaluate_opinion

                result = evaluate_opinion(
                    args.data, args.split, model=args.model, baseline=args.baseline
                )
            elif args.baseline:
                result = training.evaluate_baseline(args.data, split=args.split)
            else:
                from stance.scoring import load_model, resolve_model_dir

                # the data is checked first: loading a model costs seconds and hundreds of MB
                for subset in training.EVAL_SUBSETS:
                    training.load_split(args.data, f"{subset}/{args.split}")
                precision = None if args.precision == "auto" else args.precision
                result = training.evaluate_newsmtsc(
                    args.data,
                    split=args.split,
                    model=load_model(resolve_model_dir(args.model), precision),
                )
            print(
                json.dumps(result, default=str)
                if args.json
                else json.dumps(result, indent=2, default=str)
            )
    except (IngestError, RunDirError, ValueError, FileNotFoundError, TypeError) as exc:
        print(f"stance {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
