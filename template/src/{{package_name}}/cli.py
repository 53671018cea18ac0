"""Command line: `<package> fit | tune | validate | test | predict | export | check`, also `python -m <package>`.

Torch is imported only once a command runs, so `--help` and config errors answer at once.
A user mistake prints one `error:` line naming the field, file or option, and exits with 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from . import PROGRAM, tables
from .config import Config
from .config_sources import load_config, parse_overrides
from .errors import ConfigError, RunStoppedError, unwritten
from .paths import existing_file, outside, writable_folder
from .quiet import silence_known_noise

COMMANDS = {
    "fit": "train a model (on the built-in synthetic data unless data.root is set)",
    "tune": "search hyper-parameters (the config's tune section): each trial a fit, the study in a database",
    "validate": "validation metrics of a checkpoint",
    "test": "test metrics of a checkpoint",
    "predict": "predict every image in a folder; the predictions go below --output",
    "export": "write the trained network as ONNX or a torch.export program (.pt2), checked against the checkpoint",
    "check": "check the environment, the trainer settings and every file of the data, without training",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    console = Console()
    writes_to: Path | None = None
    try:
        config, checkpoint = _resolve_config(args, parse_overrides(extra))
        silence_known_noise()
        from . import checking, export_gate, runner

        writes_to = None if args.command == "check" else _writable_destination(args, config, checkpoint)
        if args.command == "fit":
            run_dir = runner.fit(config, resume=checkpoint)
            if run_dir is not None:  # None in DDP worker processes: the launching process reports
                metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
                for split in ("val", "test"):
                    if split in metrics:
                        console.print(tables.metrics_table(f"{split} metrics", metrics[split]))
                console.print(f"Run directory: {run_dir}", highlight=False, soft_wrap=True)
        elif args.command == "tune":
            from . import study_results, tuning

            study = tuning.open_study(config, create=False)[0] if args.summary else tuning.tune(config)
            found = study_results.summarize(study, config)
            console.print(tables.trials_table(found))
            console.print(f"Study: {found.folder}", highlight=False, soft_wrap=True)
        elif args.command == "check":
            report = checking.check(config)
            tables.print_check(console, report)
            for problem in report.problems:
                print(f"{parser.prog}: error: {problem}", file=sys.stderr)
            return 2 if report.problems else 0
        elif args.command == "predict":
            assert checkpoint is not None  # argparse requires --checkpoint here
            done = runner.predict(config, checkpoint, args.input, args.output, visualize=args.visualize)
            speed = done.images / done.seconds if done.seconds > 0 else float("inf")
            console.print(
                f"Predicted {done.images} images in {done.seconds:.1f} s ({speed:.1f} images/s)", highlight=False
            )
            console.print(f"Predictions: {done.destination}", highlight=False, soft_wrap=True)
        elif args.command == "export":
            assert checkpoint is not None
            assert writes_to is not None
            parity, model_file = export_gate.export_model(config, checkpoint, args.format, writes_to)
            console.print(tables.parity_table(parity))
            console.print(f"Exported: {model_file}", highlight=False, soft_wrap=True)
        else:
            assert checkpoint is not None
            assert writes_to is not None
            results, report_folder = runner.evaluate(args.command, config, checkpoint, writes_to)
            console.print(tables.metrics_table(f"{args.command} metrics", results))
            console.print(f"Report: {report_folder}", highlight=False, soft_wrap=True)
    except ConfigError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except RunStoppedError as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return error.exit_code
    except Exception as error:  # looked through for a file that could not be written; others go on
        failed = unwritten(error, writes_to)
        if failed is None:
            raise
        print(f"{parser.prog}: error: {failed}", file=sys.stderr)
        return failed.exit_code
    return 0


def _resolve_config(args: argparse.Namespace, overrides: list[tuple[str, Any]]) -> tuple[Config, Path | None]:
    """The config (defaults < checkpoint's config < --config files < overrides, validated once) and
    the checkpoint it is based on, if any: `--checkpoint`, or for `fit` `--resume PATH | last`."""
    option = "--resume" if args.command == "fit" else "--checkpoint"
    given = getattr(args, option.lstrip("-"), None)
    if given is None:
        return load_config(args.config, overrides), None  # checked before torch is even imported
    from .checkpoints import checkpoint_config
    from .rundirs import last_checkpoint

    if given == "last":
        checkpoint = last_checkpoint(load_config(args.config, overrides).output_dir)
    else:
        checkpoint = _user_path(given)
        existing_file(checkpoint, option)
    base = checkpoint_config(checkpoint, option)
    return load_config(args.config, overrides, base=base), checkpoint


def _writable_destination(args: argparse.Namespace, config: Config, checkpoint: Path | None) -> Path:
    """The folder the command writes in, refused before any work when it cannot be written in: a
    fit's `output_dir` or the run directory it resumes in; `--output`, else for `export` and
    `validate`/`test` their folder beside the checkpoint (its run directory, else its folder)."""
    from .rundirs import run_dir_of

    checkpoint_run = run_dir_of(checkpoint)
    if args.command in ("fit", "tune"):
        folder = checkpoint_run or config.output_dir
        writable_folder(folder, f"--resume {checkpoint}" if checkpoint_run else "output_dir")
        return folder
    assert checkpoint is not None  # argparse requires --checkpoint for every other command
    if args.command == "predict":
        outside(args.output, args.input)
        writable_folder(args.output, "--output")
        return Path(args.output)
    home = checkpoint_run or checkpoint.resolve().parent
    if args.command == "export":
        folder = args.output or home / "export"
        writable_folder(folder, "--output")
    else:
        folder = args.output or home
        writable_folder(folder / "report" / ("val" if args.command == "validate" else "test"), "--output")
    return Path(folder)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=f"Train and use the {PROGRAM} model.", allow_abbrev=False
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in COMMANDS.items():
        command = commands.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=_overrides_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        command.add_argument(
            "--config",
            action="append",
            type=_user_path,
            default=[],
            metavar="FILE",
            help="YAML config file (repeatable)",
        )
        if name == "fit":
            command.add_argument(
                "--resume",
                metavar="PATH|last",
                help="continue from a checkpoint, in its run directory; `last`: the newest run's last.ckpt",
            )
        elif name == "tune":
            command.add_argument(
                "--summary",
                action="store_true",
                help="write and show the study's results so far, without running trials",
            )
        elif name != "check":
            command.add_argument(
                "--checkpoint",
                type=_user_path,
                required=True,
                metavar="PATH",
                help="checkpoint to use; its config is the base",
            )
        if name == "predict":
            command.add_argument("--input", type=_user_path, required=True, metavar="DIR", help="folder of images")
            command.add_argument("--output", type=_user_path, required=True, metavar="DIR", help="where predictions go")
            command.add_argument(
                "--visualize",
                action="store_true",
                help="also write each image with its prediction drawn on it, to <output>/annotated/",
            )
        elif name == "export":
            command.add_argument(
                "--format", choices=["onnx", "pt2"], default="onnx", help="file format (default: onnx)"
            )
            command.add_argument(
                "--output",
                type=_user_path,
                metavar="DIR",
                help="where the model file and its parity figures go (default: export/ in the checkpoint's run folder)",
            )
        elif name in ("validate", "test"):
            command.add_argument(
                "--output",
                type=_user_path,
                metavar="DIR",
                help="where report/<split>/ goes (default: the checkpoint's run directory)",
            )
    return parser


def _user_path(text: str) -> Path:
    """A path option's value, `~` expanded as a shell does, also where the shell leaves it (`--output=~/x`)."""
    return Path(text).expanduser()


def _overrides_help() -> str:
    """Every config key with its default, so `--help` documents the whole config."""
    lines = [
        "config keys (override any with --key VALUE; later sources win:",
        "defaults < checkpoint < --config files < overrides):",
    ]
    lines += [f"  --{key} {json.dumps(value)}" for key, value in Config().flat().items()]
    return "\n".join(lines)
