"""A finished run's best net, ready for new data: ``neuroevo.load(RUN_DIR)``.

The weights in ``best/weights.safetensors`` expect standardised inputs (and give standardised
regression outputs); ``best/model.json`` records what undoes that: the feature names in order,
the training split's means and deviations, the target names, the class labels and the kind.
:class:`Model` takes raw features and answers in the data's own terms::

    model = neuroevo.load("runs/wine")
    model.predict([[13.2, 1.78, ...]])      # class labels, as the data named them
    model.predict_proba(x)                  # (n, classes) probabilities
    model(torch.tensor(x, dtype=torch.float32))   # an nn.Module: probabilities / values
    model.net                               # the bare network (standardised in and out)

``predict`` standardises in float64, exactly as the run prepared its splits, so it reproduces
the run's metrics; ``forward`` does the same arithmetic in float32 inside the module, so the
module exports whole (``neuroevo export``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch
from safetensors.torch import load as load_tensors
from torch import nn

from neuroevo.errors import NeuroevoError, printable
from neuroevo.genome import graph as G
from neuroevo.storage import fileio, rundir
from neuroevo.tasks.base import F32_MAX, F32_TINY
from neuroevo.training import ensemble, kinds, network

FILE = "model.json"
#: rows pushed through the network at once by :meth:`Model.predict`
CHUNK = 65_536
MAX_WEIGHTS_BYTES = 16 << 30
MAX_JSON_BYTES = 256 << 20
# the model computes in float32 (``forward``, the exports): its statistics must be normal
# float32 numbers, each deviation at least ``F32_TINY``, every statistic at most ``F32_MAX``
# (the range training keeps its columns' statistics in, :mod:`neuroevo.tasks.base`)


class BadRow(NeuroevoError):
    """A row of raw features the model cannot take; ``row`` (from 0) and ``feature`` say
    where, ``detail`` what (so a caller reading a file can name its line)."""

    def __init__(self, row: int, feature: str, detail: str) -> None:
        super().__init__(f"row {row}, feature {feature!r}: {detail}")
        self.row, self.feature, self.detail = row, feature, detail


class Model(nn.Module):
    """A genome's network with the preprocessing of its task around it (see the module); or
    an ensemble of several (``members``: more genomes and weights; ``mixing``: ``(nets,
    outputs)`` weights, :mod:`neuroevo.training.ensemble`), whose first net is the best."""

    def __init__(
        self,
        genome: nx.DiGraph,
        state: dict[str, torch.Tensor],
        card: dict,
        *,
        members: list[tuple[nx.DiGraph, dict[str, torch.Tensor]]] = (),
        mixing: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.genome = genome
        self.genomes = [genome, *(g for g, _ in members)]
        self.kind: str = card["kind"]
        self.metric: str = card["metric"]
        self.task: str = card.get("task", "")
        self.features: list[str] = list(card["features"])
        self.targets: list[str] = list(card["targets"])
        self.classes: list[str] = list(card["classes"])
        self.nets = nn.ModuleList()
        for g, st in [(genome, state), *members]:
            net = network.build(g, generator=torch.Generator())
            net.load_state_dict(st)
            self.nets.append(net.eval())
        self.net = self.nets[0]  # the best net, bare: standardised in and out
        self.register_buffer("mixing", None if mixing is None else mixing.to(torch.float64))
        self._x_mean = np.asarray(card["x_mean"], dtype=np.float64)
        self._x_std = np.asarray(card["x_std"], dtype=np.float64)
        self._y_mean = np.asarray(card["y_mean"], dtype=np.float64)
        self._y_std = np.asarray(card["y_std"], dtype=np.float64)
        self.register_buffer("x_mean", torch.tensor(self._x_mean, dtype=torch.float32))
        self.register_buffer("x_std", torch.tensor(self._x_std, dtype=torch.float32))
        self.register_buffer("y_mean", torch.tensor(self._y_mean, dtype=torch.float32))
        self.register_buffer("y_std", torch.tensor(self._y_std, dtype=torch.float32))
        self.requires_grad_(False)
        self.eval()

    @property
    def n_inputs(self) -> int:
        return len(self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features ``(n, n_inputs)`` float32 -> class probabilities (``classes``), bit
        probabilities (``bits``) or values in the targets' units (``regression``)."""
        kind = kinds.get(self.kind)
        z = (x - self.x_mean) / self.x_std
        if self.mixing is None:
            values = kind.mixable(self.net(z))
        else:
            outs = kind.mixable(torch.stack([net(z) for net in self.nets]))
            values = (outs * self.mixing.to(outs.dtype).unsqueeze(1)).sum(dim=0)
            if kind.labelled:  # per-class weights: the mixture sums to 1 once renormalised
                values = values / values.sum(dim=-1, keepdim=True)
        return values * self.y_std + self.y_mean if kind.standardised else values

    # ------------------------------------------------------------------ raw data in

    def rows(self, data: Any) -> np.ndarray:
        """Raw features as a float64 ``(n, n_inputs)`` array: a NumPy array, a torch tensor
        or a list of rows (one row alone is taken as one row; signals or images, one per row,
        are flattened as the task flattened them). Each value must be finite and near enough
        the training data's to standardise within float32, as training required of its data."""
        x = self._rows(data)
        self._standardise(x)
        return x

    def _rows(self, data: Any) -> np.ndarray:
        """:meth:`rows` before the check that the rows standardise."""
        if isinstance(data, torch.Tensor):
            data = data.detach().cpu().numpy()
        if np.iscomplexobj(data):
            raise NeuroevoError("the features are complex numbers; neuroevo takes real numbers")
        try:
            x = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise NeuroevoError(f"the features must be numbers ({exc})") from None
        if x.ndim == 1:
            x = x[None, :] if x.size == self.n_inputs else x
        if x.ndim >= 3 and x[0].size == self.n_inputs:  # signals or images, one per row
            x = x.reshape(len(x), -1)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            names = ", ".join(self.features[:8]) + (", ..." if self.n_inputs > 8 else "")
            raise NeuroevoError(
                f"expected rows of {self.n_inputs} features ({names}), got an array of shape "
                f"{tuple(x.shape)}"
            )
        bad = ~np.isfinite(x)
        if bad.any():
            row, col = (int(v) for v in np.argwhere(bad)[0])
            raise BadRow(row, self.features[col], f"{x[row, col]} is not a finite number")
        return x

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        """Finite raw rows standardised in float64, each value within float32's range (the
        network computes in float32; beyond it a value would become infinite, the outputs NaN)."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = (x - self._x_mean) / self._x_std
        bad = ~(np.abs(z) <= F32_MAX)
        if bad.any():
            row, col = (int(v) for v in np.argwhere(bad)[0])
            raise BadRow(
                row,
                self.features[col],
                f"{float(x[row, col])!r} is too far from the training data (mean "
                f"{self._x_mean[col]:.4g}, deviation {self._x_std[col]:.4g}) to standardise "
                "within float32's range",
            )
        return z

    def outputs(self, data: Any) -> torch.Tensor:
        """The network's raw outputs for raw features (standardised in float64 first, as the
        run prepared its splits)."""
        z = self._standardise(self._rows(data)).astype(np.float32)
        with torch.no_grad():
            parts = [self._raw(torch.from_numpy(z[i : i + CHUNK])) for i in range(0, len(z), CHUNK)]
        out = torch.cat(parts) if parts else torch.zeros(0, len(self._out_names()))
        bad = ~torch.isfinite(out)
        if bad.any():
            row = int(bad.nonzero()[0, 0])
            raise NeuroevoError(
                f"row {row}: the network's output is not a finite number (its weights or "
                "statistics may be damaged, or the row too far from the training data)"
            )
        return out

    def _raw(self, z: torch.Tensor) -> torch.Tensor:
        """Raw outputs of standardised rows; an ensemble's as :func:`ensemble.outputs` gives
        them (log-probabilities, log-odds or values), which predict reads alike."""
        if self.mixing is None:
            return self.net(z)
        return ensemble.outputs(torch.stack([net(z) for net in self.nets]), self.mixing, self.kind)

    def _out_names(self) -> list[str]:
        return self.classes if kinds.get(self.kind).labelled else self.targets

    # ------------------------------------------------------------------ predictions out

    def predict(self, data: Any) -> np.ndarray:
        """Predictions in the data's terms: class labels ``(n,)`` (strings, as the data named
        them), bits ``(n, outputs)`` of 0/1, or regression values (``(n,)`` for one target,
        else ``(n, targets)``) in the targets' units."""
        kind, out = kinds.get(self.kind), self.outputs(data)
        if kind.standardised:
            values = out.double().numpy() * self._y_std + self._y_mean
            return values[:, 0] if values.shape[1] == 1 else values
        decided = kind.decide(out).numpy()
        if kind.labelled:
            return np.asarray(self.classes, dtype=object)[decided]
        return decided.astype(np.int64)

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities ``(n, classes)``, or each bit's probability of 1."""
        kind = kinds.get(self.kind)
        if kind.standardised:
            raise NeuroevoError(f"a {self.kind} model has no probabilities; use predict")
        return kind.mixable(self.outputs(data).double()).numpy()

    def __repr__(self) -> str:
        nets = (
            G.signature(self.genome)
            if self.mixing is None
            else f"an ensemble of {len(self.nets)}, best {G.signature(self.genome)}"
        )
        what = "classes" if kinds.get(self.kind).labelled else "outputs"
        return (
            f"Model({self.kind}, {self.n_inputs} features -> "
            f"{len(self._out_names())} {what}: {nets})"
        )


# --------------------------------------------------------------------------- loading


def load(run_dir: str | Path, member: int | None = None) -> Model:
    """The best net of the finished run in ``run_dir``, with its preprocessing; with
    ``member``, that member of the front of a run with several objectives (``front/N``, the
    most accurate first, as ``summary.json``'s ``front`` lists them)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise NeuroevoError(f"{path}: no such run directory")
    rundir.check_no_links(path)
    best = path / "best" if member is None else _member(path, member)
    if not (best / "weights.safetensors").exists():
        if (path / "history.jsonl").exists():
            raise NeuroevoError(
                f"{path}: the run has not finished (no best/weights.safetensors): the best net "
                f"is written after the search; finish it with `neuroevo resume {path}`"
            )
        raise NeuroevoError(f"{path}: not a run directory (no history.jsonl, no best/)")
    if not (best / FILE).exists():
        raise NeuroevoError(
            f"{path}: has no best/{FILE}: the run was written by a neuroevo from before runs "
            "recorded how to read raw data (feature order, standardisation, class labels), "
            "and its weights expect standardised inputs; run its recipe again to get a model"
        )
    card = _card(best / FILE)
    genome, state = read_net(best)
    if G.n_inputs(genome) != len(card["features"]):
        raise NeuroevoError(
            f"{best / FILE}: names {len(card['features'])} features but the genome takes "
            f"{G.n_inputs(genome)} inputs"
        )
    labelled = kinds.get(card["kind"]).labelled
    expected = len(card["classes"]) if labelled else len(card["targets"])
    if G.n_outputs(genome) != expected:
        raise NeuroevoError(
            f"{best / FILE}: names {expected} outputs but the genome gives {G.n_outputs(genome)}"
        )
    if card.get("final", "best") == "ensemble":
        genomes, states, mixing = _ensemble(best, expected)
        if not G.equal(genomes[0], genome):
            raise NeuroevoError(f"{best / 'ensemble.json'}: its first net is not best/genome.json")
        members = list(zip(genomes[1:], states[1:]))
        return Model(genome, states[0], card, members=members, mixing=mixing)
    return Model(genome, state, card)


def _member(path: Path, member: int) -> Path:
    """The folder of front member ``member`` of the run in ``path``, checked."""
    front = path / rundir.FRONT
    held = (
        sorted(int(p.name) for p in front.iterdir() if p.name.isdigit()) if front.is_dir() else []
    )
    if not held:
        raise NeuroevoError(
            f"{path}: has no front/ (a run with several evolution.objectives writes one); "
            "leave out the member to use best/"
        )
    if isinstance(member, bool) or not isinstance(member, int) or member not in held:
        raise NeuroevoError(
            f"{path}: front/ holds members 0..{held[-1]}, not {printable(str(member))}"
        )
    return front / str(member)


def read_net(best: Path) -> tuple[nx.DiGraph, dict[str, torch.Tensor]]:
    """The genome and weights of the net in ``best`` (``genome.json``, ``weights.safetensors``),
    each checked: the genome's rules, the weights finite floats of the genome's shapes."""
    genome = G.from_dict(
        fileio.read_json(best / "genome.json", limit=MAX_JSON_BYTES, what="genome"),
        source=str(best / "genome.json"),
    )
    return genome, _weights(best / "weights.safetensors", genome)


def _ensemble(best: Path, n_outputs: int):
    """The genomes, weights and mixing weights of ``best/ensemble.*``, checked."""
    file = best / "ensemble.json"
    if not file.exists():
        raise NeuroevoError(f"{best / FILE}: names an ensemble but {file} is missing")
    try:
        data = fileio.read_json(file, limit=MAX_JSON_BYTES, what="ensemble")
        genomes = [G.from_dict(g, source=f"{file}: net {i}") for i, g in enumerate(data["genomes"])]
        mixing = torch.tensor(data["weights"], dtype=torch.float64)
    except NeuroevoError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise NeuroevoError(f"{file}: is not an ensemble description ({exc})") from None
    k = len(genomes)
    ok = (
        k >= 2
        and mixing.shape == (k, n_outputs)
        and bool(torch.isfinite(mixing).all() and (mixing >= 0).all())
        and bool(((mixing.sum(dim=0) - 1).abs() < 1e-6).all())
    )
    if not ok:
        raise NeuroevoError(
            f"{file}: weights must be {k} x {n_outputs} non-negative numbers whose columns sum to 1"
        )
    tensors = _weights(best / "ensemble.safetensors", None)
    states = []
    for i, genome in enumerate(genomes):
        prefix = f"{i}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        _check_shapes(best / "ensemble.safetensors", state, genome, f"net {i}")
        states.append(state)
    return genomes, states, mixing


def _card(file: Path) -> dict[str, Any]:
    card = fileio.read_json(file, limit=MAX_JSON_BYTES, what="model description")
    if not isinstance(card, dict) or card.get("format") != rundir.MODEL_FORMAT:
        raise NeuroevoError(f"{file}: is not a neuroevo model description")
    if card.get("version") != 1:
        raise NeuroevoError(
            f"{file}: format version {card.get('version')!r}; this neuroevo reads version 1"
        )

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise NeuroevoError(f"{file}: {what}")

    need(card.get("kind") in kinds.KINDS, f"kind must be one of {', '.join(kinds.KINDS)}")
    need(isinstance(card.get("metric"), str), "metric must be a string")
    for key in ("features", "targets", "classes"):
        value = card.get(key)
        need(
            isinstance(value, list) and all(isinstance(v, str) for v in value),
            f"{key} must be a list of strings",
        )
    n_in, n_targets = len(card["features"]), len(card["targets"])
    need(n_in > 0, "features: none named")
    regression = kinds.get(card["kind"]).standardised
    for key, n in (
        ("x_mean", n_in),
        ("x_std", n_in),
        ("y_mean", n_targets if regression else 0),
        ("y_std", n_targets if regression else 0),
    ):
        value = card.get(key)
        std = key.endswith("std")
        need(
            isinstance(value, list)
            and len(value) == n
            and all(_finite(v) and abs(v) <= F32_MAX for v in value)
            and (not std or all(v >= F32_TINY for v in value)),
            f"{key} must be {n} finite numbers"
            + (", each above 0 (from 1.2e-38 to 3.4e38" if std else " (at most 3.4e38 in size")
            + ": the model computes in float32)",
        )
    need(card["kind"] != "classes" or len(card["classes"]) >= 2, "classes: fewer than two")
    return card


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _weights(file: Path, genome: nx.DiGraph | None) -> dict[str, torch.Tensor]:
    if not file.exists():
        raise NeuroevoError(f"{file}: is missing")
    data = fileio.read_bytes(file, limit=MAX_WEIGHTS_BYTES, what="weights")
    try:
        state = load_tensors(data)
    except Exception as exc:  # noqa: BLE001 - any damage is the same one line
        raise NeuroevoError(f"{file}: is not a safetensors file ({exc})") from None
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            raise NeuroevoError(f"{file}: tensor {name!r} holds {tensor.dtype}, not floats")
        if not bool(torch.isfinite(tensor).all()):
            raise NeuroevoError(f"{file}: tensor {name!r} holds NaN or infinite weights")
    if genome is not None:
        _check_shapes(file, state, genome, "best/genome.json")
    return state


def _check_shapes(file: Path, state: dict, genome: nx.DiGraph, what: str) -> None:
    shapes = network.shapes(genome)
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != shapes:
        wrong = sorted(set(got) ^ set(shapes)) or sorted(k for k in got if got[k] != shapes[k])
        raise NeuroevoError(f"{file}: does not fit {what} (first difference: {wrong[0]})")
