"""Helpers several test modules share (imported as ``helpers``; pytest puts tests/ on the
path): run outputs to compare, checkpoint forgery, the planted linear map."""

import hashlib
import json
from pathlib import Path

import torch

from neuroevo.storage import rundir

# --------------------------------------------------------------------------- runs


def without_times(summary):
    """``summary.json``'s data without what the clock measured (the plan it led to is kept)."""
    for key in ("wall_seconds", "search_seconds", "final_seconds"):
        summary.pop(key)
    if summary.get("time"):
        summary["time"].pop("seconds_per_step")
        summary["time"].pop("end_reserved")
    return summary


def outputs(run):
    """What must be identical between an interrupted-and-resumed run and an uninterrupted one
    (or two runs of one recipe): the summary (times left out), the history, the best weights
    and every island's mixing records."""
    summary = without_times(rundir.read_summary(run))
    mixing = {}
    for island in range(summary.get("islands", 1)):
        for generation in rundir.mixing_generations(run, island):
            tensors, meta = rundir.read_mixing(run, generation, island)
            meta.pop("seconds")
            mixing[generation, island] = (
                meta,
                {k: v.numpy().tobytes() for k, v in tensors.items()},
            )
    return (
        summary,
        (run / "history.jsonl").read_text(),
        (run / "best" / "weights.safetensors").read_bytes(),
        mixing,
    )


def tree_digest(path):
    """One digest of every path and file content under ``path``."""
    digest = hashlib.sha256()
    for p in sorted(Path(path).rglob("*")):
        digest.update(str(p.relative_to(path)).encode())
        if p.is_file():
            digest.update(p.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- checkpoints


def latest(run):
    """The folder of the run's latest checkpoint."""
    pointer = json.loads((run / "checkpoints" / "LATEST").read_text())
    return run / "checkpoints" / pointer["checkpoint"]


def edit_state(run, edit):
    """Edit the latest checkpoint's state.json in place (``edit`` changes the dict) and
    recompute every checksum, as a careful forger would."""
    folder = latest(run)
    state = json.loads((folder / "state.json").read_text())
    edit(state)
    rewrite(run, "state.json", json.dumps(state).encode())


def rewrite(run, name, data):
    """Replace a checkpoint file and recompute every checksum, as a careful forger would."""
    folder = latest(run)
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    for n in ("state.json", "tensors.safetensors"):
        manifest["files"][n] = hashlib.sha256((folder / n).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    pointer_path = run / "checkpoints" / "LATEST"
    pointer = json.loads(pointer_path.read_text())
    pointer["manifest_sha256"] = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    pointer_path.write_text(json.dumps(pointer))


# --------------------------------------------------------------------------- planted nets

#: a linear map a net with no hidden layer can be planted at
A = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.5, 0.3, -0.7, 1.0]])
B = torch.tensor([0.2, -0.4])


def linear_data(n, seed):
    """``n`` rows of 4 inputs and their 2 outputs under ``x @ A.T + B``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, x @ A.T + B
