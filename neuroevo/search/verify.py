"""``neuroevo verify``: does the mixer rank a generation as training every net alone would?

A generation is taken with the weights it started from (children from their parent's trained
weights, elites from their own, fresh nets from their seeds) and trained twice on the same
batches for the same number of steps: (a) in one mixer run with the run's settings (engine,
race and all), (b) every net alone (:func:`neuroevo.training.alone.train_alone`, no race). The
report compares the mixer's fitness, and each net's own validation metric at the end of the
mixer run, with the validation metric each net reaches alone: Kendall tau-b and Spearman rho,
whether the winners agree, the top-3 overlap, the regret (the best alone metric minus the alone
metric of the mixer's pick) and the wall-time ratio alone / mixer.

Two yardsticks come with it. The **noise ceiling**: every net trained alone a second time, on
another order of the same batches; the tau between the two alone rankings is what any proxy can
hope for (two runs of full training agree only that far), and where it is low the alone ranking
itself is noise. The **parameter-count baseline**: the tau of ranking the nets by their size
(more parameters first) against the alone ranking, the proxy that costs nothing. Without the
ceiling (``ceiling=False``, ``neuroevo verify --no-ceiling``) the nets train alone once.

Which generations: a recipe's generation 0; in a run directory, generation ``N`` where the
checkpoint of generation ``N - 1`` is kept (the last completed one by default: the run keeps
two), since breeding from it gives back exactly the generation the run trained. Of a run with
islands, island 0's generation, with the immigrants it received.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from neuroevo import schema, tasks
from neuroevo.errors import NeuroevoError
from neuroevo.genome import graph as G
from neuroevo.recipe import Recipe, check_size, load
from neuroevo.results.records import noise_note
from neuroevo.search.evolution import Evolution
from neuroevo.search.islands import Archipelago, Local
from neuroevo.search.snapshot import finite
from neuroevo.search.stats import kendall_tau_b, spearman_rho
from neuroevo.storage import checkpoint, rundir
from neuroevo.storage.checkpoint import CheckpointError
from neuroevo.training import engine, mixer
from neuroevo.training.alone import train_alone

log = logging.getLogger("neuroevo")

FILE = "verify.json"
FORMAT = "neuroevo.verify"

#: ``progress(stage, done, total)``: stage ``"mixer"`` (steps), ``"alone"`` or ``"alone again"``
#: (nets)
Progress = Callable[[str, int, int], None]


@dataclass
class NetReport:
    id: int
    signature: str
    mixer_fitness: float
    mixer_metric: float | None  # its own validation metric at the end of the mixer run
    alone_metric: float | None  # the validation metric it reaches trained alone
    params: int = 0
    again_metric: float | None = None  # alone again, on another batch order (the ceiling)
    round: int = 0  # race points it survived in the mixer run


@dataclass
class Report:
    source: str
    generation: int  # counted from 0, as in history.jsonl
    steps: int
    metric: str
    engine: str
    device: str
    nets: list[NetReport]
    kendall_fitness: float
    spearman_fitness: float
    kendall_metric: float
    spearman_metric: float
    mixer_pick: int  # id
    alone_best: int  # id
    same_winner: bool
    top3_overlap: int
    regret: float | None
    mixer_seconds: float
    alone_seconds: float
    kendall_params: float = 0.0  # the parameter-count baseline against alone
    kendall_ceiling: float | None = None  # alone against alone again (the noise ceiling)
    spearman_ceiling: float | None = None
    valid_rows: int = 0  # the validation split's rows, every metric's

    @property
    def time_ratio(self) -> float:
        return self.alone_seconds / self.mixer_seconds if self.mixer_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self), "time_ratio": self.time_ratio}

    def table(self) -> str:
        """The short table ``neuroevo verify`` prints."""
        lines = [
            f"{self.source}, generation {self.generation + 1}: {len(self.nets)} nets, "
            f"{self.steps} steps each way ({self.engine} engine, {self.device})",
            f"{'id':>6} {'mixer fitness':>13} {'mixer ' + self.metric:>22} "
            f"{'alone ' + self.metric:>22}  net",
        ]
        for n in sorted(self.nets, key=lambda n: -n.mixer_fitness):
            lines.append(
                f"{n.id:>6} {n.mixer_fitness:>13.4f} {_show(n.mixer_metric):>22} "
                f"{_show(n.alone_metric):>22}  {n.signature}"
            )
        lines += [
            f"Kendall tau-b   fitness vs alone {self.kendall_fitness:+.3f}   "
            f"mixer metric vs alone {self.kendall_metric:+.3f}",
            f"Spearman rho    fitness vs alone {self.spearman_fitness:+.3f}   "
            f"mixer metric vs alone {self.spearman_metric:+.3f}",
            f"yardsticks      parameter count vs alone {self.kendall_params:+.3f} (tau)   "
            + (
                "noise ceiling, alone vs alone again: n/a (--no-ceiling)"
                if self.kendall_ceiling is None
                else f"noise ceiling, alone vs alone again {self.kendall_ceiling:+.3f} "
                f"(tau), {self.spearman_ceiling:+.3f} (rho)"
            ),
            f"validation rows {self.valid_rows}: "
            + noise_note(self.valid_rows, self.kendall_ceiling),
            f"winner: mixer's pick {self.mixer_pick}, best alone {self.alone_best} "
            f"({'the same' if self.same_winner else 'different'}); top-3 overlap "
            f"{self.top3_overlap}/3; regret {_show(self.regret)}",
            f"time: mixer {self.mixer_seconds:.1f} s, alone {self.alone_seconds:.1f} s "
            f"(alone / mixer {self.time_ratio:.2f}x)",
        ]
        return "\n".join(lines)


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# --------------------------------------------------------------------------- the comparison


def compare(
    evo: Evolution,
    *,
    steps: int,
    source: str,
    progress: Progress | None = None,
    ceiling: bool = True,
) -> Report:
    """Train ``evo``'s current (not yet trained) generation both ways and compare (with
    ``ceiling``, alone a second time on another batch order: the noise ceiling)."""
    result, mixer_seconds = replay_mixer(evo, steps=steps, progress=progress)
    alone, alone_seconds = train_each_alone(evo, steps=steps, progress=progress)
    again = None
    if ceiling:
        again, _ = train_each_alone(evo, steps=steps, progress=progress, order=1)
    return report(evo, result, alone, steps, source, mixer_seconds, alone_seconds, again)


def replay_mixer(
    evo: Evolution,
    *,
    steps: int,
    config: mixer.MixerConfig | None = None,
    progress: Progress | None = None,
) -> tuple[mixer.MixerResult, float]:
    """The generation's mixer run (the run's settings, or ``config``) and its seconds."""
    task = evo.task
    started = time.perf_counter()
    trained = evo.engine(
        evo.members(),
        kind=task.kind,
        train=task.train,
        valid=task.valid,
        steps=steps,
        seed=evo.mixer_seed(),
        config=config or evo.recipe.mixer.config(),
        on_step=(lambda step, live: progress("mixer", step, steps)) if progress else None,
        device=evo.device,
    )
    return trained.mixer, time.perf_counter() - started


def train_each_alone(
    evo: Evolution, *, steps: int, progress: Progress | None = None, order: int = 0
) -> tuple[list[float | None], float]:
    """Every net of the generation trained alone from its start weights on the mixer's
    batches (``order`` > 0: the same rows in another order, the noise ceiling's); their
    validation metrics and the seconds it took."""
    task = evo.task
    started = time.perf_counter()
    train_data = engine.on(evo.device, task.train)
    valid_data = engine.on(evo.device, task.valid)
    members = evo.members()
    metrics: list[float | None] = []
    for done, (m, net) in enumerate(zip(members, engine.start(members, evo.device))):
        batches = mixer.batches(
            *train_data,
            evo.recipe.mixer.batch_size,
            torch.Generator().manual_seed(evo.mixer_seed() + order),
        )
        result = train_alone(
            net, m.genome.graph["lr"], kind=task.kind, train=batches, steps=steps, valid=valid_data
        )
        metrics.append(finite(result.validation_metric))
        if progress:
            progress("alone" if order == 0 else "alone again", done + 1, len(members))
    return metrics, time.perf_counter() - started


def _ranked(values: list[float | None]) -> list[float]:
    """Metrics for rank statistics: a net with none (it diverged) ranks below every other."""
    floor = min((v for v in values if v is not None), default=0.0) - 1.0
    return [floor if v is None else v for v in values]


def report(
    evo: Evolution,
    result: mixer.MixerResult,
    alone: list[float | None],
    steps: int,
    source: str,
    mixer_seconds: float,
    alone_seconds: float,
    again: list[float | None] | None = None,
) -> Report:
    """The comparison of a mixer run with the alone metrics of the same nets (``again``: the
    same nets alone on another batch order, the noise ceiling)."""
    nets = [
        NetReport(
            id=m.genome.graph["id"],
            signature=G.signature(m.genome),
            mixer_fitness=r.fitness,
            mixer_metric=finite(r.validation_metric),
            alone_metric=a,
            params=G.n_parameters(m.genome),
            again_metric=None if again is None else again[i],
            round=r.round,
        )
        for i, (m, r, a) in enumerate(zip(evo.members(), result.nets, alone))
    ]
    fitness = [n.mixer_fitness for n in nets]
    alone = _ranked([n.alone_metric for n in nets])
    own = _ranked([n.mixer_metric for n in nets])
    by_fitness = sorted(range(len(nets)), key=lambda i: -fitness[i])
    by_alone = sorted(range(len(nets)), key=lambda i: -alone[i])
    pick, best = by_fitness[0], by_alone[0]
    best_alone, picked_alone = nets[best].alone_metric, nets[pick].alone_metric
    return Report(
        source=source,
        generation=evo.generation,
        steps=steps,
        metric=evo.task.metric_name,
        engine=evo.engine.__name__,
        device=str(evo.device),
        nets=nets,
        kendall_fitness=kendall_tau_b(fitness, alone),
        spearman_fitness=spearman_rho(fitness, alone),
        kendall_metric=kendall_tau_b(own, alone),
        spearman_metric=spearman_rho(own, alone),
        mixer_pick=nets[pick].id,
        alone_best=nets[best].id,
        same_winner=alone[pick] == alone[best],
        top3_overlap=len(set(by_fitness[:3]) & set(by_alone[:3])),
        regret=(None if best_alone is None or picked_alone is None else best_alone - picked_alone),
        mixer_seconds=mixer_seconds,
        alone_seconds=alone_seconds,
        kendall_params=kendall_tau_b([float(n.params) for n in nets], alone),
        valid_rows=int(evo.task.valid[0].shape[0]),
        kendall_ceiling=None if again is None else kendall_tau_b(_ranked(again), alone),
        spearman_ceiling=None if again is None else spearman_rho(_ranked(again), alone),
    )


# --------------------------------------------------------------------------- entry points


def verify(
    target: str | Path,
    *,
    generation: int | None = None,
    steps: int | None = None,
    progress: Progress | None = None,
    ceiling: bool = True,
) -> Report:
    """Verify a recipe's generation 0, or a run directory's generation ``generation``
    (counted from 0; default the last completed one). A run directory gets ``verify.json``,
    written at the end in one atomic step: an interrupt leaves it as it was. ``ceiling``:
    measure the noise ceiling (every net alone a second time)."""
    path = Path(target)
    if not path.exists():
        raise NeuroevoError(f"{path}: no such run directory or recipe file")
    if path.is_dir():
        return _verify_run(path, generation, steps, progress, ceiling)
    if generation not in (None, 0):
        raise NeuroevoError(f"{path}: a recipe has only generation 1 to verify")
    recipe = load(path)
    with engine.threads(recipe.run.threads):
        evo = _evolution(recipe)
        return compare(
            evo, steps=_steps(steps, recipe), source=str(path), progress=progress, ceiling=ceiling
        )


def _steps(steps: int | None, recipe: Recipe) -> int:
    """``--steps`` as given (``mixer.steps``'s bounds), else the recipe's (checked at load)."""
    if steps is None:
        return recipe.mixer.steps
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise NeuroevoError(f"--steps: expected a whole number, got {steps!r}")
    schema.check("--steps", steps, mixer.STEPS)
    return steps


def _evolution(recipe: Recipe) -> Evolution:
    task = tasks.build(recipe.task.name, recipe.run.seed, **recipe.task.options)
    check_size(recipe, task)
    return Evolution(recipe, task, device=engine.device(recipe.run.device))


def _verify_run(
    path: Path,
    generation: int | None,
    steps: int | None,
    progress: Progress | None,
    ceiling: bool = True,
) -> Report:
    rundir.check_no_links(path)
    if not (path / "recipe.toml").exists():
        raise NeuroevoError(f"{path}: not a run directory (no recipe.toml)")
    with rundir.locked(path):
        latest = checkpoint.load_latest(path)  # verified first: nothing is imported before
        checkpoint.check_named_modules(path, latest)  # and compared: nothing new imported
        recipe = load(path / "recipe.toml", out=str(path))
        generation = latest.generation if generation is None else generation
        if not 0 <= generation <= latest.generation + 1:
            raise NeuroevoError(
                f"{path}: generation {generation + 1} does not exist (the run has completed "
                f"{latest.generation + 1}; the next would be {latest.generation + 2})"
            )
        with engine.threads(recipe.run.threads):  # as the run had them: the same fitness
            evo = _generation(path, recipe, generation)
            report = compare(
                evo, steps=_steps(steps, recipe), source=str(path), progress=progress,
                ceiling=ceiling,
            )  # fmt: skip
        rundir.write_json(path / FILE, report.to_dict())
        _plot(path, report)
    return report


def _plot(path: Path, report: Report) -> None:
    """``plots/verify.png``: a failure to draw is a warning (verify.json is written)."""
    try:
        from neuroevo.results import plots

        fitness = [n.mixer_fitness for n in report.nets]
        data = plots.verify_png(
            fitness,
            [n.alone_metric for n in report.nets],
            [n.round for n in report.nets],
            metric=report.metric,
            title=f"generation {report.generation + 1}: Kendall tau "
            f"{report.kendall_fitness:+.3f}, regret {_show(report.regret)}",
        )
        rundir.write_plot(path, "verify.png", data)
    except Exception as exc:  # noqa: BLE001 - the figures are written; drawing is extra
        log.warning("no verify plot: %s", exc)


def _generation(path: Path, recipe: Recipe, generation: int) -> Evolution:
    """The run's ``generation`` as it started: bred from the checkpoint before it."""
    evo = _evolution(recipe)
    if generation == 0:
        return evo
    try:
        snapshot = checkpoint.load(path, generation - 1)
    except CheckpointError as exc:
        raise NeuroevoError(
            f"{exc}; generation {generation + 1} is rebuilt from the checkpoint before it"
        ) from None
    recorded = snapshot.state.get("data_sha256")
    if recorded is not None and recorded != evo.task.fingerprint():
        raise NeuroevoError(f"{path}: the data changed since the run trained on it")
    if recipe.islands.count == 1:
        evo.load_state_dict(snapshot)
        evo.next_population()
        return evo
    # a run with islands: island 0's generation, its immigrants included where one arrived
    archipelago = Archipelago(recipe, evo.task, device=evo.device, backend=Local())
    archipelago.load_state_dict(snapshot)
    immigrants = archipelago.immigrants()[0]
    archipelago.islands[0].next_population(immigrants)
    return archipelago.islands[0]
