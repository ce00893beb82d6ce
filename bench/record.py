"""A benchmark's results as files for the docs: ``bench/results/<script>.md`` and ``.json``.

Each script in ``bench/`` makes a :class:`Record` once its settings are known (the stamp is
taken then: when, on what machine, under what load, with which Python, torch and commit, from
which command), adds the tables it prints and its summary lines, and calls :meth:`Record.write`
at the end::

    record = Record(__file__, args)  # args from a parser given add_arguments
    table = record.table("Runs", ["case", ("test", ".4f"), ("wall s", ",.0f")])
    table.add("iris/0", 0.9667, 41.2)
    record.note("iris: median ...")
    record.write()

The markdown has no headings, so a docs page can include it under its own: an italic stamp
line, each table under its title in bold, then the notes. The JSON holds the same, the cells
as they were measured (unformatted).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: what the commit's ``-dirty`` looks at: the code, the benchmarks and the recipes, not the
#: results the benchmarks write
DIRTY_PATHS = ["neuroevo", "bench", "recipes", ":(exclude)bench/results"]

Format = str | Callable[[Any], str] | None


@contextlib.contextmanager
def busy_core(on: bool = True) -> Iterator[None]:
    """With ``on``, one more CPU-bound process (a Python busy loop) runs until the block ends:
    a user's machine where something else uses a core."""
    if not on:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--results DIR``: where the script writes its ``.md`` and ``.json``."""
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        metavar="DIR",
        help="folder for this script's <name>.md and <name>.json (default: bench/results)",
    )


class Table:
    """A titled table: cells kept raw for the JSON, formatted for the markdown."""

    def __init__(self, title: str, columns: Sequence[str | tuple[str, Format]], note: str = ""):
        self.title = title
        self.note = note
        self.columns: list[str] = []
        self.formats: list[Format] = []
        for column in columns:
            name, fmt = (column, None) if isinstance(column, str) else column
            self.columns.append(name)
            self.formats.append(fmt)
        self.rows: list[list[Any]] = []

    def add(self, *cells: Any) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def markdown(self) -> str:
        text = [[_cell(_format(v, f)) for v, f in zip(row, self.formats)] for row in self.rows]
        numeric = [
            bool(self.rows) and all(_number(row[i]) or row[i] is None for row in self.rows)
            for i in range(len(self.columns))
        ]
        lines = [
            f"**{_escape(self.title)}**",
            "",
            "| " + " | ".join(_cell(c) for c in self.columns) + " |",
            "| " + " | ".join("---:" if n else "---" for n in numeric) + " |",
            *("| " + " | ".join(row) + " |" for row in text),
        ]
        if self.note:
            lines += ["", _escape(self.note)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": self.columns,
            "rows": [[_plain(v) for v in row] for row in self.rows],
            **({"note": self.note} if self.note else {}),
        }


class Record:
    """One run of a benchmark script: its stamp (taken now), tables and notes."""

    def __init__(
        self,
        script_file: str,
        args_namespace_or_argv: argparse.Namespace | Sequence[str] | None = None,
        results_dir: str | Path | None = None,
    ):
        self.script = Path(script_file).resolve()
        options = None
        if isinstance(args_namespace_or_argv, argparse.Namespace):
            given = vars(args_namespace_or_argv).items()  # less --results: the files' own folder
            options = {k: _plain(v) for k, v in given if k != "results"}
            argv = sys.argv[1:]
            if results_dir is None:
                results_dir = getattr(args_namespace_or_argv, "results", None)
        elif args_namespace_or_argv is None:
            argv = sys.argv[1:]
        else:
            argv = list(args_namespace_or_argv)
        self.results_dir = Path(results_dir) if results_dir is not None else RESULTS
        self.stamp = _stamp(self.script, argv)
        if options is not None:
            self.stamp["options"] = options
        self.tables: list[Table] = []
        self.notes: list[str] = []
        #: headline figures by name, for the JSON (what a reader or a test looks up)
        self.figures: dict[str, Any] = {}

    def table(self, title: str, columns: Sequence[str | tuple[str, Format]], note: str = ""):
        """A new table, in the order made; a column is a name, or (name, format): a format
        spec such as ``".4f"`` or a function of the cell to its text."""
        table = Table(title, columns, note)
        self.tables.append(table)
        return table

    def note(self, text: str) -> None:
        """A paragraph after the tables (a median, a ratio, a remark the script prints)."""
        self.notes.append(text)

    def threads(self, n: int | None) -> None:
        """The torch threads the measured work ran on, where that is not this process's
        setting (a child process, a run under its own ``run.threads``); None leaves it."""
        if n is not None:
            self.stamp["torch_threads"] = n

    def markdown(self) -> str:
        parts = [f"_{_escape(stamp_line(self.stamp))}_"]
        parts += [t.markdown() for t in self.tables]
        parts += [_escape(n) for n in self.notes]
        return "\n\n".join(parts) + "\n"

    def to_dict(self) -> dict[str, Any]:
        figures = {k: _plain(v) for k, v in self.figures.items()}
        return {
            "stamp": self.stamp,
            "tables": [t.to_dict() for t in self.tables],
            "notes": list(self.notes),
            **({"figures": figures} if figures else {}),
        }

    def write(self) -> tuple[Path, Path]:
        """``<results_dir>/<script>.md`` and ``.json``, each replaced in one step."""
        self.results_dir.mkdir(parents=True, exist_ok=True)
        md = self.results_dir / f"{self.script.stem}.md"
        js = self.results_dir / f"{self.script.stem}.json"
        _replace(md, self.markdown())
        _replace(js, _json(self.to_dict()) + "\n")
        print(f"results written to {_shown(md)} and {js.suffix}", flush=True)
        return md, js


def stamp_line(stamp: dict[str, Any]) -> str:
    """The stamp as one sentence (before markdown escaping)."""
    when = datetime.datetime.fromisoformat(stamp["date"]).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{stamp['cpu']} ({stamp['cores']} cores"
    if stamp.get("load") is not None:
        machine += f", load {stamp['load']:.2f} at start"
    threads = stamp.get("torch_threads")
    torch = f"torch {stamp['torch']}" if stamp.get("torch") else "no torch"
    if threads is not None:
        torch += f" ({threads} thread{'' if threads == 1 else 's'})"
    commit = f"commit {stamp['commit']}" if stamp.get("commit") else "no git commit"
    return (
        f"Measured {when} on {machine}), Python {stamp['python']}, {torch}, {commit}; "
        f"command: `{stamp['command']}`"
    )


def _stamp(script: Path, argv: Sequence[str]) -> dict[str, Any]:
    try:
        import torch

        torch_version, threads = torch.__version__, torch.get_num_threads()
    except ImportError:
        torch_version, threads = None, None
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "load": load,
        "python": platform.python_version(),
        "torch": torch_version,
        "torch_threads": threads,
        "commit": _commit(),
        "command": shlex.join([_shown(Path(sys.executable), ROOT), _shown(script, ROOT)])
        + (" " + shlex.join(argv) if argv else ""),
    }


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _commit() -> str | None:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", *DIRTY_PATHS)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def _shown(path: Path, base: Path | None = None) -> str:
    """``path`` relative to ``base`` (else the working directory) where it lies inside it.
    Not resolved: a virtual environment's python is a link, and stays as typed."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(base or Path.cwd()))
    except ValueError:
        return str(path)


def _replace(path: Path, text: str) -> None:
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)


def _json(value: Any, indent: str = "") -> str:
    """Indented JSON with each list of plain values (a table's row, its columns) on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = (f"{inner}{json.dumps(k)}: {_json(v, inner)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        if all(isinstance(v, list) and not any(isinstance(w, dict) for w in v) for v in value):
            items = (inner + json.dumps(v, ensure_ascii=False) for v in value)
        else:
            items = (inner + _json(v, inner) for v in value)
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _format(value: Any, fmt: Format) -> str:
    if value is None:
        return "n/a"
    if callable(fmt):
        return fmt(value)
    if fmt is not None:
        return format(value, fmt)
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def _plain(value: Any) -> Any:
    """``value`` as JSON holds it: non-finite floats as null, tuples and paths plainly."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _escape(text: str, cell: bool = False) -> str:
    """``text`` as markdown shows it: backslash, ``*``, ``|`` and ``_`` (but inside a word)
    escaped outside code spans (whose ``|`` the docs' tables leave alone); a cell on one line."""
    text = text.replace("\n", " ") if cell else text
    out, code = [], False
    for i, ch in enumerate(text):
        if ch == "`":
            code = not code
        elif not code and ch in "_*|\\" and not (ch == "_" and _inside_word(text, i)):
            ch = "\\" + ch
        out.append(ch)
    return "".join(out)


def _inside_word(text: str, i: int) -> bool:
    """Whether ``text[i]`` has a letter or digit each side (an ``_`` there is no emphasis)."""
    return 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()


def _cell(text: str) -> str:
    return _escape(text, cell=True)
