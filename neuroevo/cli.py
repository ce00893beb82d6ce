"""The ``neuroevo`` command: parse arguments, call the library, return an exit code.

Exit codes: 0 success; 2 bad usage or bad input (one line ``neuroevo: error: ...``, no
traceback unless ``--debug``); 1 anything else; 130 interrupted.

The contract holds once the package is imported: ``neuroevo/__init__.py`` imports the public
API eagerly (PyTorch included, about a second), and only then does :func:`main` install its
SIGTERM handler. A Ctrl-C or SIGTERM within that first second ends the process as Python does
by default (a traceback, or killed), before anything has been read or written.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from neuroevo import __version__
from neuroevo.errors import printable


class UsageError(Exception):
    pass


def evolve(*args: Any, **kwargs: Any) -> Any:
    from neuroevo.runner import evolve as run

    return run(*args, **kwargs)


def resume(*args: Any, **kwargs: Any) -> Any:
    from neuroevo.runner import resume as run

    return run(*args, **kwargs)


class _Parser(argparse.ArgumentParser):
    #: builds ``description`` when the help is shown (it reads the library, which imports torch)
    describe: Callable[[], str] | None = None

    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        raise UsageError(message)

    def format_help(self) -> str:
        if self.describe is not None:
            self.description = self.describe()
        return super().format_help()


def _resume_description() -> str:
    """``resume --help``: the keys that may change on resume, as the recipe's schema says."""
    from neuroevo.recipe import EXTENDABLE

    keys = ", ".join(f"{s}.{k}" for s, k in sorted(EXTENDABLE) if (s, k) != ("run", "out"))
    return (
        "Continue a run from its last checkpoint, with the recipe in its directory. Only these "
        f"recipe keys may change (they extend the run, change only its end, or change no "
        f"result): {keys}."
    )


TENSORBOARD_HELP = (
    "also write TensorBoard logs to DIR (per-generation scalars, per-step scores; needs the "
    "tensorboard extra)"
)


def parser() -> argparse.ArgumentParser:
    """The command line, as `neuroevo --help` and the docs reference show it."""
    parser = _Parser(
        prog="neuroevo",
        description="Neural architecture search by evolution, each generation trained jointly "
        "in a weighted mixer.",
    )
    parser.add_argument("--version", action="version", version=f"neuroevo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (_evolve_parser, _resume_parser, _verify_parser, _report_parser):
        add(commands)
    for add in (_show_parser, _predict_parser, _export_parser):
        add(commands)
    return parser


def _evolve_parser(commands: Any) -> None:
    """``neuroevo evolve``'s arguments."""
    run = commands.add_parser("evolve", help="run a recipe", description="Run a recipe.")
    run.add_argument("recipe", help="a TOML recipe, e.g. recipes/logbits.toml")
    run.add_argument("--out", help="run directory (default: run.out, else runs/<recipe name>)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set evolution.generations=3 "
        "(TOML values; repeatable)",
    )
    again = run.add_mutually_exclusive_group()
    again.add_argument(
        "--overwrite", action="store_true", help="replace a run already in the output directory"
    )
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the output directory from its last checkpoint",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars, no generation lines")
    run.add_argument("--tensorboard", metavar="DIR", help=TENSORBOARD_HELP)
    run.add_argument("--debug", action="store_true", help="show tracebacks")


def _resume_parser(commands: Any) -> None:
    """``neuroevo resume``'s arguments."""
    cont = commands.add_parser(
        "resume",
        help="continue an interrupted run",
    )
    cont.describe = _resume_description
    cont.add_argument("run_dir", help="the run directory, e.g. runs/logbits")
    cont.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="e.g. --set evolution.generations=30",
    )
    cont.add_argument("--quiet", action="store_true", help="no progress bars, no generation lines")
    cont.add_argument("--tensorboard", metavar="DIR", help=TENSORBOARD_HELP)
    cont.add_argument("--debug", action="store_true", help="show tracebacks")


def _verify_parser(commands: Any) -> None:
    """``neuroevo verify``'s arguments."""
    check = commands.add_parser(
        "verify",
        help="check the mixer's ranking against nets trained alone",
        description="Train one generation twice from the weights it started from, in one "
        "mixer run and every net alone, on the same batches, and compare the rankings. A run "
        "directory gets verify.json.",
    )
    check.add_argument(
        "target", help="a run directory (its generations) or a recipe (generation 1)"
    )
    check.add_argument(
        "--generation",
        type=int,
        metavar="N",
        help="which generation, counted from 1 as the run prints them (default: the last "
        "completed one)",
    )
    check.add_argument("--steps", type=int, help="training steps each way (default: mixer.steps)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument(
        "--no-ceiling",
        action="store_true",
        help="train every net alone once, not twice (no noise ceiling; half the alone time)",
    )
    check.add_argument("--quiet", action="store_true", help="no progress bars")
    check.add_argument("--debug", action="store_true", help="show tracebacks")


def _report_parser(commands: Any) -> None:
    """``neuroevo report``'s arguments."""
    draw = commands.add_parser(
        "report",
        help="draw a run's plots and report.html",
        description="Draw the plots of a run (plots/) and one self-contained report.html in "
        "its directory; evolve and resume do this at the end of a run unless "
        "run.report = false.",
    )
    draw.add_argument("run_dir", help="the run directory, e.g. runs/logbits")
    draw.add_argument(
        "--generation",
        type=int,
        metavar="N",
        help="whose mixer run to animate, counted from 1 (default: the last)",
    )
    draw.add_argument("--debug", action="store_true", help="show tracebacks")


def _show_parser(commands: Any) -> None:
    """``neuroevo show``'s arguments."""
    show = commands.add_parser(
        "show", help="summarise a run", description="A run, finished or not, in a few lines."
    )
    show.add_argument("run_dir", help="the run directory, e.g. runs/logbits")
    show.add_argument("--top", type=int, default=10, metavar="N", help="nets listed (10)")
    show.add_argument("--debug", action="store_true", help="show tracebacks")


def _predict_parser(commands: Any) -> None:
    """``neuroevo predict``'s arguments."""
    use = commands.add_parser(
        "predict",
        help="predict new data with a run's best net",
        description="Predict every row of a CSV file (the training features as named "
        "columns, in any order; others ignored) or a .npz file (array x) with the run's best "
        "net. Prints CSV: the prediction in the data's own terms (and each class's "
        "probability).",
    )
    use.add_argument("run_dir", help="a finished run directory")
    use.add_argument("data", help="a .csv or .npz file of raw features")
    use.add_argument("--out", metavar="FILE", help="write the CSV here instead of printing it")
    use.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="COLUMN",
        help="copy this input column to the output, before the predictions (repeatable)",
    )
    use.add_argument(
        "--member",
        type=int,
        metavar="N",
        help="member N of the front of a run with several objectives (neuroevo show lists "
        "them) instead of the best net",
    )
    use.add_argument("--debug", action="store_true", help="show tracebacks")


def _export_parser(commands: Any) -> None:
    """``neuroevo export``'s arguments."""
    ship = commands.add_parser(
        "export",
        help="write the best net as ONNX or TorchScript",
        description="The best net with its standardisation, as one file: raw features in, "
        "probabilities or values in the data's units out.",
    )
    ship.add_argument("run_dir", help="a finished run directory")
    ship.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    ship.add_argument(
        "--out", metavar="FILE", help="default: best/model.onnx or best/model.pt in the run"
    )
    ship.add_argument(
        "--member",
        type=int,
        metavar="N",
        help="member N of the front of a run with several objectives (neuroevo show lists "
        "them) instead of the best net",
    )
    ship.add_argument("--debug", action="store_true", help="show tracebacks")


def _print_run_end(result: Any) -> None:
    """The run's last lines on stdout: its best net, the final model and their metrics."""
    from neuroevo.results.show import final_model

    s = result.summary
    best = s.best
    print(f"best: {best.signature} (id {best.id}, generation {best.generation + 1})")
    print(f"final model: {final_model(s.final)}")
    print(
        f"{s.metric}: validation {_metric(best.validation_metric)}, "
        f"test {_metric(best.test_metric)}; {s.generations_completed} generations, "
        f"{s.wall_seconds:.0f} s; written to {result.out}",
        flush=True,
    )


def _metric(value: float | None) -> str:
    return "n/a (not a finite number)" if value is None else f"{value:.4f}"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def _run(out: str, args: argparse.Namespace, start: Callable[..., Any]) -> int:
    """``start(callbacks=...)`` runs the search into ``out``; an interrupt says how to go on."""
    from neuroevo.callbacks.progress import Progress

    callbacks: list[Any] = [Progress(quiet=args.quiet, finish=_print_run_end)]
    if args.tensorboard:
        from neuroevo.callbacks.tensorboard import TensorBoard

        callbacks.append(TensorBoard(args.tensorboard))
    try:
        start(callbacks=callbacks)
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        done = _completed(out)
        if done:
            print(
                f"\nneuroevo: {what}; the last complete checkpoint holds {done} "
                f"generation(s). Continue with: neuroevo resume {out}",
                file=sys.stderr,
            )
        else:
            print(
                f"\nneuroevo: {what} before the first generation completed; nothing to resume",
                file=sys.stderr,
            )
        return 130
    return 0


def _completed(out: str) -> int:
    """Generations the last complete checkpoint holds (0: none), for the interrupt message."""
    from neuroevo.storage import checkpoint

    try:
        pointer = json.loads((Path(out) / checkpoint.DIRECTORY / checkpoint.POINTER).read_text())
        return (checkpoint.generation_of(pointer["checkpoint"]) or 0) + 1
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return 0


def _evolve(args: argparse.Namespace) -> int:
    from neuroevo.errors import NeuroevoError
    from neuroevo.recipe import load

    if args.out is not None and not args.out.strip():
        raise NeuroevoError("--out: an empty path; name the run directory")
    recipe = load(args.recipe, args.overrides, out=args.out)
    return _run(
        recipe.run.out,
        args,
        lambda callbacks: evolve(
            recipe, overwrite=args.overwrite, resume=args.resume, callbacks=callbacks
        ),
    )


def _resume(args: argparse.Namespace) -> int:
    return _run(
        args.run_dir,
        args,
        lambda callbacks: resume(args.run_dir, args.overrides, callbacks=callbacks),
    )


def _verify(args: argparse.Namespace) -> int:
    from neuroevo.errors import NeuroevoError
    from neuroevo.search.verify import verify

    if args.generation is not None and args.generation < 1:
        raise NeuroevoError(f"--generation counts from 1, got {args.generation}")
    bars = {}

    def progress(stage: str, done: int, total: int) -> None:
        if args.quiet or not sys.stderr.isatty():
            return
        if stage not in bars:
            from tqdm import tqdm

            unit = "step" if stage == "mixer" else "net"
            bars[stage] = tqdm(total=total, desc=stage, unit=unit, file=sys.stderr, leave=False)
        bars[stage].update(done - bars[stage].n)
        if done == total:
            bars[stage].close()

    report = verify(
        args.target,
        generation=None if args.generation is None else args.generation - 1,
        steps=args.steps,
        progress=progress,
        ceiling=not args.no_ceiling,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0


def _report(args: argparse.Namespace) -> int:
    from neuroevo.errors import NeuroevoError
    from neuroevo.results.report import make

    if args.generation is not None and args.generation < 1:
        raise NeuroevoError(f"--generation counts from 1, got {args.generation}")
    files = make(args.run_dir, generation=None if args.generation is None else args.generation - 1)
    for file in files:
        print(file)
    return 0


def _show(args: argparse.Namespace) -> int:
    from neuroevo.results.show import describe

    print(describe(args.run_dir, top=max(0, args.top)))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from neuroevo.results.predict import predict_file

    text = predict_file(args.run_dir, args.data, out=args.out, keep=args.keep, member=args.member)
    if args.out is None:
        sys.stdout.write(text)
    return 0


def _export(args: argparse.Namespace) -> int:
    from neuroevo.results.export import export

    print(export(args.run_dir, args.format, args.out, args.member))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    previous = signal.signal(signal.SIGTERM, _on_sigterm)  # before anything slow is imported
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        try:
            return _main(argv)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        print(f"neuroevo: {what}", file=sys.stderr)
        return 130
    except Exception as exc:
        from neuroevo.errors import NeuroevoError

        if isinstance(exc, (UsageError, NeuroevoError, OSError)):
            if debug:
                traceback.print_exc()
            if isinstance(exc, OSError) and exc.strerror:  # a full disk, a path not allowed
                where = f"{exc.filename}: " if exc.filename else ""
                message = f"{where}{exc.strerror}"
            else:
                message = str(exc)
            print(f"neuroevo: error: {printable(message)}", file=sys.stderr)
            return 2
        if debug:
            traceback.print_exc()
        print(
            f"neuroevo: internal error: {printable(f'{type(exc).__name__}: {exc}')} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return 2
    commands = {
        "evolve": _evolve,
        "resume": _resume,
        "verify": _verify,
        "report": _report,
        "show": _show,
        "predict": _predict,
        "export": _export,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
