"""The run directory: what a run leaves behind, and the one place that keeps it safe.

``recipe.toml``       the resolved recipe (overrides applied)
``history.jsonl``     one JSON object per individual per generation
``summary.json``      the best net, its validation and test metrics, times, seed
``best/genome.json``  the best genome; ``best/weights.safetensors`` its weights;
                      ``best/model.json`` what turns raw rows into its inputs and its outputs
                      into predictions (see :mod:`neuroevo.results.model`)
``checkpoints/``      see :mod:`neuroevo.storage.checkpoint`
``verify.json``       what ``neuroevo verify`` found (see :mod:`neuroevo.search.verify`)
``mixing/gen-N.safetensors``  what the report draws of generation N's mixer run (scores and
                      mixing weights over the run, float16, with its plain data as metadata)
``plots/``, ``report.html``  the report (see :mod:`neuroevo.results.report`)

The contract:

* **No links.** A run directory whose files or folders (at the top, in ``best/``, in
  ``checkpoints/`` and its checkpoint folders) are symbolic links is refused before anything is
  read or written; files are opened without following links besides
  (:mod:`neuroevo.storage.fileio`).
  The run directory itself may be a link (``runs -> /scratch/runs`` is common).
* **One run at a time.** A run holds an exclusive lock on the directory (``flock``, released
  when the process ends, however it ends); a second ``evolve``/``resume`` is refused. Where
  Python has no ``fcntl`` (Windows), the package still imports, and taking the lock is one
  clear error: use WSL.
* **Never delete what neuroevo did not write.** ``--overwrite`` removes only the files named
  above (and its own temporary files); a foreign file in ``best/`` or ``checkpoints/`` makes it
  refuse, before anything is removed. Files of yours at the top level are left alone.
* Whole files are written under a temporary name and published with ``os.replace``; history
  lines are appended and flushed, so a reader (or a crash) never sees half a file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import networkx as nx
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from neuroevo.errors import NeuroevoError
from neuroevo.genome import graph as G
from neuroevo.storage import fileio
from neuroevo.storage.fileio import UnsafeFile

try:  # POSIX; without it (Windows) a run directory cannot be locked: see locked()
    import fcntl
except ImportError:
    fcntl = None  # type: ignore[assignment]

_OWN_TOP = {
    "recipe.toml",
    "history.jsonl",
    "summary.json",
    "best",
    "front",
    "checkpoints",
    "verify.json",
    "mixing",
    "plots",
    "report.html",
}
_OWN_TOP_TMP = {"recipe.toml.tmp", "summary.json.tmp", "verify.json.tmp", "report.html.tmp"}
_OWN_BEST = {
    "genome.json",
    "weights.safetensors",
    "model.json",
    "model.onnx",
    "model.pt",
    "ensemble.json",
    "ensemble.safetensors",
}
_MIXING_FILE = re.compile(r"^gen-(\d+)(?:\.island-(\d+))?\.safetensors(\.tmp)?$")
#: the files of ``plots/`` (:mod:`neuroevo.results.report` draws them)
PLOTS = (
    "race.gif",
    "scores.png",
    "progress.png",
    "lineage.png",
    "architecture.png",
    "pareto.png",
    "hypervolume.png",
    "verify.png",
)
_FOLDERS = ("best", "front", "checkpoints", "mixing", "plots")
_OWN_CHECKPOINT_FILES = {"LATEST", "LATEST.tmp"}
_CHECKPOINT_FOLDER = re.compile(r"^(\.tmp-)?gen-\d{1,9}$")  # as checkpoint.generation_of
_OWN_IN_CHECKPOINT = {"state.json", "tensors.safetensors", "manifest.json"}


MODEL_FORMAT = "neuroevo.model"
ENSEMBLE_FORMAT = "neuroevo.ensemble"

#: the largest history or summary file read back
MAX_READ_BYTES = 1 << 30


def _strict(constant: str) -> Any:
    raise ValueError(f"holds {constant}, which neuroevo never writes")


def json_object(text: str, where: str, what: str) -> dict[str, Any]:
    """One JSON object, strict about NaN and bounded in nesting (Python's parser raises
    RecursionError); else one error saying ``where`` is not ``what``."""
    try:
        data = json.loads(text, parse_constant=_strict)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise NeuroevoError(f"{where} is not {what} ({reason})") from None
    if not isinstance(data, dict):
        raise NeuroevoError(f"{where} is not {what}")
    return data


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The records of ``history.jsonl`` in a run directory (one per individual per
    generation), for reports, verify and tests. A line that is not a JSON object is an error
    naming the file and the line."""
    file = Path(path) / "history.jsonl"
    text = fileio.read_text(file, limit=MAX_READ_BYTES, what="history")
    return [
        json_object(line, f"{file}: line {number}", "a history record")
        for number, line in enumerate(text.splitlines(), start=1)
    ]


def read_summary(path: str | Path) -> dict[str, Any]:
    """``summary.json`` of a finished run."""
    file = Path(path) / "summary.json"
    return json_object(
        fileio.read_text(file, limit=MAX_READ_BYTES, what="summary"), str(file), "a run summary"
    )


class RunDirExists(NeuroevoError):
    """The output directory already holds a run."""


class RunDirBusy(NeuroevoError):
    """Another process holds the run directory's lock."""


def _lexists(path: Path) -> bool:
    return os.path.lexists(path)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """One JSON object, atomically (no NaN: JSON holds none)."""
    fileio.write_atomic(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def holds_run(path: Path) -> list[str]:
    """The names of a run's own files present in ``path`` (empty: no run there)."""
    marks = ["recipe.toml", "history.jsonl", "summary.json", "checkpoints/LATEST"]
    return [name for name in marks if _lexists(path / name)]


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def check_no_links(path: Path) -> None:
    """Refuse a run directory holding a symbolic link where neuroevo reads or writes."""

    def refuse(entry: os.DirEntry) -> None:
        raise UnsafeFile(
            f"{entry.path}: is a symbolic link; a run directory must hold no links "
            "(neuroevo never reads or writes through one); remove it"
        )

    for entry in _entries(path):
        if entry.is_symlink():
            refuse(entry)
    for sub in _FOLDERS:
        for entry in _entries(path / sub):
            if entry.is_symlink():
                refuse(entry)
            if sub in ("checkpoints", "front") and entry.is_dir(follow_symlinks=False):
                for inner in _entries(Path(entry.path)):
                    if inner.is_symlink():
                        refuse(inner)


def foreign_files(path: Path) -> list[Path]:
    """Files in ``best/``, ``front/``, ``checkpoints/``, ``mixing/`` and ``plots/`` that
    neuroevo did not write."""
    foreign = []
    for entry in _entries(path / "best"):
        if entry.name.removesuffix(".tmp") not in _OWN_BEST or entry.is_dir():
            foreign.append(Path(entry.path))
    for entry in _entries(path / "front"):  # front/N, each as best/ is
        if not entry.name.isdigit() or not entry.is_dir(follow_symlinks=False):
            foreign.append(Path(entry.path))
            continue
        for inner in _entries(Path(entry.path)):
            if inner.name.removesuffix(".tmp") not in _OWN_BEST or inner.is_dir():
                foreign.append(Path(inner.path))
    for entry in _entries(path / "mixing"):
        if not _MIXING_FILE.match(entry.name) or entry.is_dir():
            foreign.append(Path(entry.path))
    for entry in _entries(path / "plots"):
        if entry.name.removesuffix(".tmp") not in PLOTS or entry.is_dir():
            foreign.append(Path(entry.path))
    for entry in _entries(path / "checkpoints"):
        if entry.name in _OWN_CHECKPOINT_FILES and entry.is_file(follow_symlinks=False):
            continue
        if _CHECKPOINT_FOLDER.match(entry.name) and entry.is_dir(follow_symlinks=False):
            for inner in _entries(Path(entry.path)):
                if inner.name not in _OWN_IN_CHECKPOINT or not inner.is_file(follow_symlinks=False):
                    foreign.append(Path(inner.path))
            continue
        foreign.append(Path(entry.path))
    for name in _FOLDERS:
        if _lexists(path / name) and not (path / name).is_dir():
            foreign.append(path / name)
    return foreign


@contextmanager
def locked(path: str | Path, *, shared: bool = False, create: bool = False) -> Iterator[Path]:
    """Hold a lock on the run directory ``path`` (exclusive unless ``shared``) for a ``with``
    block; with ``create`` the directory is made first if missing (and removed again, if it
    is still empty, when the block fails). :class:`RunDirBusy` if another process holds it."""
    path = Path(path)
    made = False
    if fcntl is None:
        raise NeuroevoError(
            f"{path}: run-directory locking is unavailable on this platform (no fcntl module), "
            "so neuroevo cannot keep two processes from writing one run; run it on Linux or "
            "macOS (Windows: under WSL)"
        )
    if _lexists(path) and not path.is_dir():
        raise NeuroevoError(f"{path}: exists and is not a directory")
    if create and not path.exists():
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            raise NeuroevoError(
                f"{path}: cannot create the run directory ({exc.strerror})"
            ) from None
        made = True
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise NeuroevoError(f"{path}: cannot open the run directory ({exc.strerror})") from None
    ok = False
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirBusy(
                    f"{path}: another neuroevo process is using this run directory; "
                    "wait for it to finish or stop it first"
                ) from None
            raise
        yield path
        ok = True
    finally:
        os.close(fd)  # releases the lock
        if made and not ok:
            try:
                path.rmdir()  # only if nothing was written into it
            except OSError:
                pass


class RunDir:
    """A run's output folder. Refuses one that already holds a run unless ``overwrite`` (start
    afresh, removing only neuroevo's own files) or ``existing`` (go on with it). Callers hold
    :func:`locked` around its life."""

    def __init__(
        self, path: str | Path, *, overwrite: bool = False, existing: bool = False
    ) -> None:
        self.path = Path(path)
        if _lexists(self.path) and not self.path.is_dir():
            raise NeuroevoError(f"{self.path}: exists and is not a directory")
        check_no_links(self.path)
        if existing:  # going on prunes checkpoints/: refuse, as --overwrite does, a foreign file
            checkpoints = self.path / "checkpoints"
            foreign = [f for f in foreign_files(self.path) if checkpoints in f.parents]
            if foreign:
                raise RunDirExists(
                    f"{foreign[0]}: was not written by neuroevo; resuming removes old "
                    "checkpoints and neuroevo removes only its own files, so move it away first"
                )
            return
        present = holds_run(self.path)
        if present and not overwrite:
            raise RunDirExists(
                f"{self.path}: already holds a run ({', '.join(present)}); "
                "continue it with --resume (or neuroevo resume), choose another --out, "
                "or pass --overwrite to replace it"
            )
        foreign = foreign_files(self.path)
        if foreign:
            raise RunDirExists(
                f"{foreign[0]}: was not written by neuroevo; neuroevo removes only its own "
                "files, so move it away or choose another --out"
            )
        for name in sorted(_OWN_TOP | _OWN_TOP_TMP):
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target)
            elif _lexists(target):
                target.unlink()
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def history_path(self) -> Path:
        return self.path / "history.jsonl"

    def history_size(self) -> int:
        return self.history_path.stat().st_size if self.history_path.exists() else 0

    def truncate_history(self, n_bytes: int) -> None:
        """Drop history lines written after the checkpoint being resumed from; refuse a
        history shorter than the checkpoint records (deleted or cut: generations lost)."""
        size = self.history_size()
        if size < n_bytes:
            raise NeuroevoError(
                f"{self.history_path}: holds {size} bytes but the checkpoint records {n_bytes}; "
                "it was deleted or cut, and resuming would lose the generations it held "
                "(restore it, or start afresh with --overwrite)"
            )
        if size > n_bytes:
            fd = os.open(self.history_path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
            try:
                os.ftruncate(fd, n_bytes)
                os.fsync(fd)
            finally:
                os.close(fd)

    def write_recipe(self, toml_text: str) -> None:
        fileio.write_atomic(self.path / "recipe.toml", toml_text)

    def append_history(self, records: Iterable[Mapping[str, Any]]) -> None:
        lines = "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in records)
        fileio.append(self.history_path, lines.encode("utf-8"))

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_json(self.path / "summary.json", summary)

    def write_best(
        self,
        genome: nx.DiGraph,
        state: Mapping[str, torch.Tensor],
        data_format: Mapping[str, Any],
        folder: str = "best",
    ) -> None:
        """The best net (or, in ``folder`` ``front/N``, a member of the front): its genome,
        its weights, and ``model.json`` (``data_format``: the task's
        :meth:`~neuroevo.tasks.Task.data_format`); ``model.json`` last, so a folder with one
        holds a complete model."""
        best = self.path / folder
        best.mkdir(parents=True, exist_ok=True)
        fileio.write_atomic(best / "genome.json", G.to_json(genome, indent=2) + "\n")
        data = save_tensors(
            {k: v.detach().contiguous().cpu() for k, v in state.items()},
            # one key: safetensors writes metadata in hash-map order, so several keys would
            # make the bytes of the file differ from run to run
            metadata={"neuroevo": json.dumps({"signature": G.signature(genome)})},
        )
        fileio.write_atomic(best / "weights.safetensors", data)
        if data_format.get("final") != "ensemble":  # left by an earlier end of this run
            for name in ("ensemble.json", "ensemble.safetensors"):
                if _lexists(best / name):
                    (best / name).unlink()
        write_json(best / "model.json", {"format": MODEL_FORMAT, "version": 1, **data_format})
        fileio.fsync_dir(best)

    def write_ensemble(
        self,
        genomes: list[nx.DiGraph],
        states: list[Mapping[str, torch.Tensor]],
        weights: torch.Tensor,
        folder: str = "best",
    ) -> None:
        """An ensemble's nets (``best/ensemble.json``: their genomes and the mixing weights,
        ``(nets, outputs)``; ``best/ensemble.safetensors``: net ``i``'s weights as ``i.name``);
        ``folder`` as :meth:`write_best` takes it."""
        best = self.path / folder
        best.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"{i}.{k}": v.detach().contiguous().cpu()
            for i, state in enumerate(states)
            for k, v in state.items()
        }
        fileio.write_atomic(
            best / "ensemble.safetensors",
            save_tensors(tensors, metadata={"neuroevo": json.dumps({"nets": len(states)})}),
        )
        write_json(
            best / "ensemble.json",
            {
                "format": ENSEMBLE_FORMAT,
                "version": 1,
                "genomes": [G.to_dict(g) for g in genomes],
                "weights": weights.tolist(),
            },
        )

    def prune_front(self, members: int) -> None:
        """Remove ``front/N`` for ``N`` from ``members`` on (left by an earlier end of this
        run whose front was longer); the whole ``front/`` where there are none."""
        front = self.path / FRONT
        if members == 0:
            if front.is_dir():
                shutil.rmtree(front)
            return
        for entry in _entries(front):
            if entry.name.isdigit() and int(entry.name) >= members and entry.is_dir():
                shutil.rmtree(entry.path)

    def write_mixing(self, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
        write_mixing(self.path, tensors, meta)


#: the folder of a run with several objectives that holds its front, one model per member
FRONT = "front"

# --------------------------------------------------------------------------- the report's files

#: the largest mixing record read back (a generation's is tens of kilobytes)
MAX_MIXING_BYTES = 256 << 20
MIXING_KEYS = {"score_steps": 1, "scores": 2, "frame_steps": 1, "weights": 3}


def mixing_path(path: str | Path, generation: int, island: int = 0) -> Path:
    """``mixing/gen-N.safetensors``; island K's of a run with islands: ``gen-N.island-K...``."""
    name = f"gen-{generation}" + (f".island-{island}" if island else "")
    return Path(path) / "mixing" / f"{name}.safetensors"


def write_mixing(
    path: str | Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> None:
    """Generation ``meta["generation"]``'s mixing record (see :meth:`MixerResult.recording`),
    of island ``meta["island"]`` (0 where absent)."""
    folder = Path(path) / "mixing"
    folder.mkdir(exist_ok=True)
    data = save_tensors(
        {k: v.detach().contiguous().cpu() for k, v in tensors.items()},
        metadata={"neuroevo": json.dumps(dict(meta), sort_keys=True, allow_nan=False)},
    )
    where = mixing_path(path, int(meta["generation"]), int(meta.get("island", 0)))
    fileio.write_atomic(where, data)


def mixing_generations(path: str | Path, island: int = 0) -> list[int]:
    """The generations with a mixing record (of ``island``), ascending."""
    found = (_MIXING_FILE.match(e.name) for e in _entries(Path(path) / "mixing"))
    return sorted(
        int(m.group(1)) for m in found if m and int(m.group(2) or 0) == island and not m.group(3)
    )


def read_mixing(
    path: str | Path, generation: int, island: int = 0
) -> tuple[dict[str, torch.Tensor], dict]:
    """Generation ``generation``'s mixing record (of ``island``): its tensors (float32 and
    int64) and its plain data; checked, so a damaged file is one error naming it."""
    file = mixing_path(path, generation, island)
    data = fileio.read_bytes(file, limit=MAX_MIXING_BYTES, what="mixing record")
    bad = f"{file}: is not a mixing record"
    try:
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + length], parse_constant=_strict)
        meta = json.loads(header["__metadata__"]["neuroevo"], parse_constant=_strict)
        tensors = load_tensors(data)
    except Exception as exc:  # noqa: BLE001 - any damage is the same one line
        raise NeuroevoError(f"{bad} ({type(exc).__name__}: {exc})") from None
    for key, dims in MIXING_KEYS.items():
        if key not in tensors or tensors[key].dim() != dims:
            raise NeuroevoError(f"{bad} ({key}: missing or not {dims}-dimensional)")
    lists = ("ids", "retired_at", "diverged")
    if not isinstance(meta, dict) or not all(isinstance(meta.get(n, []), list) for n in lists):
        raise NeuroevoError(f"{bad} (its ids, retired_at and diverged must be lists)")
    k = len(meta.get("ids", []))
    shapes_agree = (
        tensors["scores"].shape == (len(tensors["score_steps"]), k)
        and tensors["weights"].shape[:2] == (len(tensors["frame_steps"]), k)
        and all(len(meta.get(name, [])) == k for name in ("retired_at", "diverged"))
    )
    if not shapes_agree:
        raise NeuroevoError(f"{bad} (its shapes and its list of nets disagree)")
    out = {
        key: t.to(torch.int64) if key.endswith("steps") else t.to(torch.float32)
        for key, t in tensors.items()
    }
    return out, meta


def write_plot(path: str | Path, name: str, data: bytes) -> Path:
    """One of :data:`PLOTS` into ``plots/``."""
    if name not in PLOTS:
        raise ValueError(f"{name}: not one of the report's plots")
    folder = Path(path) / "plots"
    folder.mkdir(exist_ok=True)
    fileio.write_atomic(folder / name, data)
    return folder / name


def write_report(path: str | Path, html: str) -> Path:
    fileio.write_atomic(Path(path) / "report.html", html)
    return Path(path) / "report.html"
