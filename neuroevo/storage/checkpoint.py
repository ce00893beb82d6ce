"""Checkpoints: everything a run needs to go on, written atomically and without pickle.

Layout inside the run directory::

    checkpoints/
        gen-0003/
            state.json            genomes, fitness, hall of fame, logbook, counters, RNG states
            tensors.safetensors   every weight tensor and the torch RNG state
            manifest.json         SHA-256 of the two files above
        LATEST                    {"checkpoint": "gen-0003", "manifest_sha256": "..."}

A checkpoint is first written under a temporary directory name, its files flushed to disk, and
published with one ``os.replace``; ``LATEST`` changes last. A crash at any instant leaves the
previous checkpoint intact and ``LATEST`` pointing at it. Loading verifies every checksum before
reading anything, reads JSON and safetensors only, and refuses a pickle outright: loading a
checkpoint can never run code. Every file is read as a regular file, without following links,
up to a size limit, and its checksum is computed on the very bytes that are then parsed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from neuroevo.errors import NeuroevoError
from neuroevo.storage import fileio

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

FORMAT = "neuroevo.checkpoint"
VERSION = 1
DIRECTORY = "checkpoints"
POINTER = "LATEST"
#: a checkpoint folder: ``gen-`` and its generation (counted from 0) in at most 9 digits
_NAME = re.compile(r"^gen-(\d{1,9})$")
#: the files neuroevo writes in a checkpoint folder: the only ones it ever removes
FILES = ("state.json", "tensors.safetensors", "manifest.json")
#: the most each file of a checkpoint may hold
LIMITS = {
    POINTER: 64 << 10,
    "manifest.json": 64 << 10,
    "state.json": 1 << 30,
    "tensors.safetensors": 16 << 30,
}


class CheckpointError(NeuroevoError):
    """A checkpoint that is missing, corrupt, or from another recipe."""


@dataclass
class Snapshot:
    """The state of a run after a complete generation, as plain data and tensors."""

    generation: int
    state: dict[str, Any]  # JSON-able: genomes, fitness, counters, RNG states, logbook, ...
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    fileio.fsync_write(path, data)


_fsync_dir = fileio.fsync_dir


def _read(path: Path) -> bytes:
    try:
        return fileio.read_bytes(path, limit=LIMITS[path.name], what="checkpoint file")
    except fileio.UnsafeFile as exc:
        raise CheckpointError(str(exc)) from None


def generation_of(name: str) -> int | None:
    """``"gen-0012"`` -> 12; None for any other name."""
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def save(run_dir: str | Path, snapshot: Snapshot, *, keep: int = 2) -> Path:
    """Write ``snapshot`` as the latest checkpoint; keep the ``keep`` newest."""
    root = Path(run_dir) / DIRECTORY
    root.mkdir(parents=True, exist_ok=True)
    name = f"gen-{snapshot.generation:04d}"
    final = root / name
    tmp = root / f".tmp-{name}"
    if tmp.exists():
        _remove(tmp)
    tmp.mkdir()
    state = {
        "format": FORMAT,
        "version": VERSION,
        "generation": snapshot.generation,
        **snapshot.state,
    }
    tensors = {k: v.detach().contiguous().cpu() for k, v in snapshot.tensors.items()}
    contents = {  # each file's bytes, written and hashed as they are
        "state.json": json.dumps(state, sort_keys=True, allow_nan=False).encode("utf-8"),
        "tensors.safetensors": save_tensors(tensors, metadata={"format": FORMAT}),
    }
    for file_name, data in contents.items():
        _fsync_write(tmp / file_name, data)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "files": {n: _sha256(data) for n, data in contents.items()},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode("utf-8")
    _fsync_write(tmp / "manifest.json", manifest_bytes)
    _fsync_dir(tmp)
    if final.exists():  # a checkpoint of this generation from an abandoned attempt
        _remove(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    pointer = {"checkpoint": name, "manifest_sha256": _sha256(manifest_bytes)}
    pointer_tmp = root / (POINTER + ".tmp")
    _fsync_write(pointer_tmp, json.dumps(pointer, sort_keys=True).encode("utf-8"))
    os.replace(pointer_tmp, root / POINTER)
    _fsync_dir(root)
    _prune(root, keep=max(1, keep), latest=snapshot.generation)
    return final


def _prune(root: Path, *, keep: int, latest: int) -> None:
    """Keep the ``keep`` newest checkpoints up to ``latest`` (by generation number, not by
    name: gen-10000 is newer than gen-9999); drop abandoned temporary and later ones."""
    folders = {
        generation_of(p.name): p
        for p in root.iterdir()
        if generation_of(p.name) is not None and p.is_dir() and not p.is_symlink()
    }
    complete = sorted(g for g in folders if g <= latest)
    for g in complete[:-keep]:
        _remove(folders[g], quiet=True)
    for g in folders:  # written after the latest by an abandoned attempt
        if g > latest:
            _remove(folders[g], quiet=True)
    for stale in root.glob(".tmp-gen-*"):
        if stale.is_dir() and not stale.is_symlink():
            _remove(stale, quiet=True)


def _remove(folder: Path, *, quiet: bool = False) -> None:
    """Remove a checkpoint folder: only the files neuroevo writes there (:data:`FILES`), then
    the folder if that emptied it. Anything else (a user's notes) is left, with its folder;
    ``os.rmdir`` then fails (raised unless ``quiet``), so nothing is published over it."""
    for name in FILES:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    try:
        folder.rmdir()
    except OSError as exc:
        if not quiet:
            left = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
            raise CheckpointError(
                f"{folder}: cannot replace this checkpoint folder ({exc.strerror}): it holds "
                f"files neuroevo did not write ({', '.join(left[:5]) or 'none'}); move them away"
            ) from None


def exists(run_dir: str | Path) -> bool:
    return os.path.lexists(Path(run_dir) / DIRECTORY / POINTER)


def _is_pickle(path: Path | bytes, *, safetensors: bool | None = None) -> bool:
    """A pickle begins with the PROTO opcode: 0x80, then the protocol number. So may a
    safetensors file, whose first 8 bytes are its header length (1152 is 80 04 ...), so a file
    laid out as safetensors is not taken for one. Takes a path or the bytes of a file."""
    if isinstance(path, Path):
        safetensors = path.suffix == ".safetensors" if safetensors is None else safetensors
        with open(path, "rb") as f:
            data = fileio.read_up_to(f, LIMITS.get(path.name, 16 << 30))
    else:
        data = path
    if safetensors and _is_safetensors(data):
        return False
    return len(data) >= 2 and data[0] == 0x80 and data[1] <= 5


def _is_safetensors(data: bytes) -> bool:
    """The safetensors layout: an 8-byte little-endian header length, then a JSON header."""
    if len(data) < 9:
        return False
    length = int.from_bytes(data[:8], "little")
    return data[8:9] == b"{" and 8 + length <= len(data)


def _refuse_pickle(path: Path, data: bytes) -> None:
    if _is_pickle(data, safetensors=path.suffix == ".safetensors"):
        raise CheckpointError(
            f"{path}: holds a pickle payload; refused without loading it "
            "(neuroevo checkpoints are JSON and safetensors only)"
        )


def kept(run_dir: str | Path) -> list[int]:
    """The generations whose checkpoint folders are in ``run_dir``, ascending."""
    root = Path(run_dir) / DIRECTORY
    if not root.is_dir():
        return []
    return sorted(
        g
        for p in root.iterdir()
        if (g := generation_of(p.name)) is not None and p.is_dir() and not p.is_symlink()
    )


def load_latest(run_dir: str | Path) -> Snapshot:
    """Verify and read the latest checkpoint; :class:`CheckpointError` names what is wrong.

    Nothing a checkpoint names is imported or built here: the caller checks the state's
    contents (:meth:`neuroevo.search.evolution.Evolution.load_state_dict`)."""
    root = Path(run_dir) / DIRECTORY
    pointer_path = root / POINTER
    if not os.path.lexists(pointer_path):
        raise CheckpointError(f"{run_dir}: no checkpoint to resume from ({pointer_path} missing)")
    pointer = _parse_json(pointer_path, _read(pointer_path))
    name = pointer.get("checkpoint") if isinstance(pointer, dict) else None
    if not isinstance(name, str) or generation_of(name) is None:
        raise CheckpointError(
            f"{pointer_path}: not a checkpoint pointer (its checkpoint must be gen- and a "
            "generation of at most 9 digits)"
        )
    return _load(root / name, pointer.get("manifest_sha256"))


def load(run_dir: str | Path, generation: int) -> Snapshot:
    """Verify and read the kept checkpoint of ``generation`` (its files against its manifest;
    the manifest itself against the pointer where it is the latest)."""
    latest = load_latest(run_dir)
    if latest.generation == generation:
        return latest
    if generation not in kept(run_dir):
        raise CheckpointError(
            f"{run_dir}: no checkpoint of generation {generation + 1} is kept "
            f"(kept: {', '.join(str(g + 1) for g in kept(run_dir)) or 'none'})"
        )
    return _load(Path(run_dir) / DIRECTORY / f"gen-{generation:04d}", None)


def _load(folder: Path, manifest_sha256: str | None) -> Snapshot:
    name = folder.name
    manifest_path = folder / "manifest.json"
    if not os.path.lexists(manifest_path):
        raise CheckpointError(f"{manifest_path}: missing")
    manifest_bytes = _read(manifest_path)
    if manifest_sha256 is not None and _sha256(manifest_bytes) != manifest_sha256:
        raise CheckpointError(f"{manifest_path}: checksum mismatch (the file was changed)")
    manifest = _parse_json(manifest_path, manifest_bytes)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{manifest_path}: not a neuroevo checkpoint manifest")
    contents = {}
    for file_name in ("state.json", "tensors.safetensors"):
        path = folder / file_name
        if not os.path.lexists(path):
            raise CheckpointError(f"{path}: missing")
        data = _read(path)
        _refuse_pickle(path, data)
        if _sha256(data) != files.get(file_name):
            raise CheckpointError(
                f"{path}: checksum mismatch (the file is truncated or was changed)"
            )
        contents[file_name] = data
    state_path = folder / "state.json"
    state = _parse_json(state_path, contents["state.json"])
    if (
        not isinstance(state, dict)
        or state.get("format") != FORMAT
        or state.get("version") != VERSION
    ):
        raise CheckpointError(f"{state_path}: unsupported checkpoint format")
    generation = state.pop("generation", None)
    if type(generation) is not int or generation != generation_of(name):
        raise CheckpointError(
            f"{state_path}: records generation {generation!r}, but its folder is {name}"
        )
    try:
        tensors = load_tensors(contents["tensors.safetensors"])
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{folder / 'tensors.safetensors'}: unreadable ({exc})") from None
    for key in ("format", "version"):
        state.pop(key)
    _check_counters(state, generation, str(state_path))
    return Snapshot(generation=generation, state=state, tensors=tensors)


#: the largest id a checkpoint may record: ids stay exact in JSON readers that hold numbers as
#: doubles, and the seeds made from them (run seed * 1,000,003 + id) within 64 bits
MAX_ID = 2**53


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_counters(state: dict[str, Any], generation: int, where: str) -> None:
    """The ids, generations and logbook of a checkpoint (of each island) within range, before
    anything uses them; the rest of each island's state is checked, field by field, by
    :meth:`~neuroevo.search.evolution.Evolution.load_state_dict`."""
    islands = state.get("islands")
    parts = islands if isinstance(islands, list) else [state]
    for k, part in enumerate(parts):
        if not isinstance(part, dict):
            continue  # named by Archipelago.load_state_dict
        at = f"{where}, island {k}" if isinstance(islands, list) else where
        next_id = part.get("next_id")
        if isinstance(next_id, int) and not 0 <= next_id < MAX_ID:
            raise CheckpointError(f"{at}: next_id {_short(next_id)} is not from 0 to 2**53")
        champions = part.get("hall_of_fame")
        for j, item in enumerate(champions if isinstance(champions, list) else []):
            born = item.get("generation") if isinstance(item, dict) else None
            if isinstance(born, int) and not 0 <= born <= generation:
                raise CheckpointError(
                    f"{at}: hall of fame {j} records generation {_short(born)}, not one of the "
                    f"{generation + 1} completed"
                )
        logbook = part.get("logbook")
        for record in logbook if isinstance(logbook, list) else []:
            values = record.values() if isinstance(record, dict) else []
            if not all(v is None or _is_number(v) for v in values):
                raise CheckpointError(f"{at}: a logbook record holds a value that is not a number")


#: the largest ``recipe.toml`` read (as :data:`neuroevo.recipe.MAX_RECIPE_BYTES`)
MAX_RECIPE_BYTES = 1 << 20


def check_named_modules(
    run_dir: str | Path, snapshot: Snapshot, overrides: Iterable[tuple[str, str, Any]] = ()
) -> None:
    """Refuse a run directory's ``recipe.toml`` (with ``overrides``: parsed ``--set`` values,
    ``(section, key, value)``) that names a task or a mutation the recipe its checkpoint was
    written by does not, before anything is imported: loading a recipe imports the modules it
    names (``"pkg.mod:fn"``). Call it before :func:`neuroevo.recipe.load`. A file that does
    not parse is left to that, which names the fault (and imports nothing)."""
    path = Path(run_dir)
    saved = snapshot.state.get("recipe")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: the checkpoint does not record its recipe")
    file = path / "recipe.toml"
    try:
        raw = tomllib.loads(fileio.read_text(file, limit=MAX_RECIPE_BYTES, what="recipe"))
    except (tomllib.TOMLDecodeError, RecursionError, NeuroevoError):
        return
    for section, key, value in overrides:
        if isinstance(raw.setdefault(section, {}), dict):
            raw[section][key] = value
    changes = []
    task, saved_task = raw.get("task"), saved.get("task")
    name = task.get("name") if isinstance(task, dict) else None
    was = saved_task.get("name") if isinstance(saved_task, dict) else None
    if name is not None and name != was:
        changes.append(f"task.name: {was!r} in the checkpoint, {name!r} now")
    mutations, known = raw.get("mutations"), saved.get("mutations")
    if isinstance(mutations, dict):
        known = known if isinstance(known, dict) else {}
        changes += [
            f"mutations.{json.dumps(str(m))}: not in the checkpoint, {w!r} now"
            for m, w in mutations.items()
            if m not in known
        ]
    if changes:
        raise CheckpointError(
            f"{path}: the checkpoint was written by a different recipe ({'; '.join(changes)}); "
            f"{file.name} was refused before anything it names was imported (restore it)"
        )


def _parse_json(path: Path, data: bytes) -> Any:
    _refuse_pickle(path, data)
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # a number of more than 4,300 digits too
        raise CheckpointError(f"{path}: not valid JSON ({type(exc).__name__})") from None
