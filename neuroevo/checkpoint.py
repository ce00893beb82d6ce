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
checkpoint can never run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from neuroevo.errors import NeuroevoError

FORMAT = "neuroevo.checkpoint"
VERSION = 1
DIRECTORY = "checkpoints"
POINTER = "LATEST"


class CheckpointError(NeuroevoError):
    """A checkpoint that is missing, corrupt, or from another recipe."""


@dataclass
class Snapshot:
    """The state of a run after a complete generation, as plain data and tensors."""

    generation: int
    state: dict[str, Any]  # JSON-able: genomes, fitness, counters, RNG states, logbook, ...
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(run_dir: str | Path, snapshot: Snapshot, *, keep: int = 2) -> Path:
    """Write ``snapshot`` as the latest checkpoint; keep the ``keep`` newest."""
    root = Path(run_dir) / DIRECTORY
    root.mkdir(parents=True, exist_ok=True)
    name = f"gen-{snapshot.generation:04d}"
    final = root / name
    tmp = root / f".tmp-{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    state = {
        "format": FORMAT,
        "version": VERSION,
        "generation": snapshot.generation,
        **snapshot.state,
    }
    _fsync_write(
        tmp / "state.json",
        json.dumps(state, sort_keys=True, allow_nan=False).encode("utf-8"),
    )
    tensors = {k: v.detach().contiguous().cpu() for k, v in snapshot.tensors.items()}
    save_file(tensors, str(tmp / "tensors.safetensors"), metadata={"format": FORMAT})
    with open(tmp / "tensors.safetensors", "rb+") as f:
        os.fsync(f.fileno())
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "files": {n: _sha256(tmp / n) for n in ("state.json", "tensors.safetensors")},
    }
    _fsync_write(tmp / "manifest.json", json.dumps(manifest, sort_keys=True).encode("utf-8"))
    _fsync_dir(tmp)
    if final.exists():  # a checkpoint of this generation from an abandoned attempt
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    pointer = {"checkpoint": name, "manifest_sha256": _sha256(final / "manifest.json")}
    pointer_tmp = root / (POINTER + ".tmp")
    _fsync_write(pointer_tmp, json.dumps(pointer, sort_keys=True).encode("utf-8"))
    os.replace(pointer_tmp, root / POINTER)
    _fsync_dir(root)
    _prune(root, keep=max(1, keep), latest=name)
    return final


def _prune(root: Path, *, keep: int, latest: str) -> None:
    complete = sorted(p.name for p in root.glob("gen-*") if p.is_dir() and p.name <= latest)
    for name in complete[:-keep]:
        shutil.rmtree(root / name, ignore_errors=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in root.glob("gen-*"):  # written after the latest by an abandoned attempt
        if stale.name > latest:
            shutil.rmtree(stale, ignore_errors=True)


def exists(run_dir: str | Path) -> bool:
    return (Path(run_dir) / DIRECTORY / POINTER).exists()


def _is_pickle(path: Path) -> bool:
    """A pickle begins with the PROTO opcode: 0x80, then the protocol number. So may a
    safetensors file, whose first 8 bytes are its header length (1152 is 80 04 ...), so a file
    laid out as safetensors is not taken for one."""
    if path.suffix == ".safetensors" and _is_safetensors(path):
        return False
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and head[1] <= 5


def _is_safetensors(path: Path) -> bool:
    """The safetensors layout: an 8-byte little-endian header length, then a JSON header."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    length = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 8 + length <= path.stat().st_size


def load_latest(run_dir: str | Path) -> Snapshot:
    """Verify and read the latest checkpoint; :class:`CheckpointError` names what is wrong."""
    root = Path(run_dir) / DIRECTORY
    pointer_path = root / POINTER
    if not pointer_path.exists():
        raise CheckpointError(f"{run_dir}: no checkpoint to resume from ({pointer_path} missing)")
    pointer = _read_json(pointer_path)
    name = pointer.get("checkpoint") if isinstance(pointer, dict) else None
    if not isinstance(name, str) or not name.startswith("gen-") or "/" in name:
        raise CheckpointError(f"{pointer_path}: not a checkpoint pointer")
    folder = root / name
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise CheckpointError(f"{manifest_path}: missing")
    if _sha256(manifest_path) != pointer.get("manifest_sha256"):
        raise CheckpointError(f"{manifest_path}: checksum mismatch (the file was changed)")
    manifest = _read_json(manifest_path)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != FORMAT or not isinstance(files, dict):
        raise CheckpointError(f"{manifest_path}: not a neuroevo checkpoint manifest")
    for file_name in ("state.json", "tensors.safetensors"):
        path = folder / file_name
        if not path.exists():
            raise CheckpointError(f"{path}: missing")
        if _is_pickle(path):
            raise CheckpointError(
                f"{path}: holds a pickle payload; refused without loading it "
                "(neuroevo checkpoints are JSON and safetensors only)"
            )
        if _sha256(path) != files.get(file_name):
            raise CheckpointError(
                f"{path}: checksum mismatch (the file is truncated or was changed)"
            )
    state = _read_json(folder / "state.json")
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise CheckpointError(f"{folder / 'state.json'}: unsupported checkpoint format")
    try:
        tensors = load_file(str(folder / "tensors.safetensors"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{folder / 'tensors.safetensors'}: unreadable ({exc})") from None
    generation = state.pop("generation")
    for key in ("format", "version"):
        state.pop(key)
    return Snapshot(generation=generation, state=state, tensors=tensors)


def _read_json(path: Path) -> Any:
    if _is_pickle(path):
        raise CheckpointError(
            f"{path}: holds a pickle payload; refused without loading it "
            "(neuroevo checkpoints are JSON and safetensors only)"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
