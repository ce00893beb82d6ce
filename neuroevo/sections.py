"""The sections of a recipe, each key with its :func:`~neuroevo.schema.setting`: its type (the
annotation), default, bounds, help and whether it may change on resume, written here once.
:mod:`neuroevo.recipe` reads a TOML file into them; :func:`schema` lists every key for the docs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from neuroevo import schema as S
from neuroevo.errors import NeuroevoError
from neuroevo.genome import graph as G
from neuroevo.genome import mutations
from neuroevo.genome.space import SearchSpace
from neuroevo.training.mixer import STEPS, MixerConfig, Race

setting = S.setting


class RecipeError(NeuroevoError):
    """A recipe that cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class InitialNet:
    """One architecture of the initial population: an MLP, after a chain of convolutions
    where ``channels`` lists them (the task's input has a shape)."""

    hidden: tuple[int, ...]
    activation: str = "relu"
    lr: float = 1e-3
    channels: tuple[int, ...] = ()  # one convolution per entry, before the dense layers
    kernel: int = 3  # every convolution's
    strides: tuple[int, ...] = ()  # one per convolution; empty: 1 each
    pools: tuple[int, ...] = ()  # max-pooling window, one per convolution; empty: 1 (none) each

    def convs(self) -> list[tuple[int, int, int, int]]:
        """``(channels, kernel, stride, pool)`` of each convolution."""
        strides = self.strides or (1,) * len(self.channels)
        pools = self.pools or (1,) * len(self.channels)
        return [(c, self.kernel, s, p) for c, s, p in zip(self.channels, strides, pools)]

    def plain(self) -> dict[str, Any]:
        """As a recipe writes it (the convolution keys only where there are convolutions)."""
        out = plain(self)
        if not self.channels:
            for key in ("channels", "kernel", "strides", "pools"):
                del out[key]
        elif not self.pools:
            del out["pools"]  # as recipes written before pooling have it
        return out


def plain(obj: Any) -> Any:
    """A dataclass (and its lists) as plain data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


@dataclass(frozen=True)
class TaskSection:
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PopulationSection:
    size: int = setting(18, low=2, high=10_000, help="nets per generation")
    initial: tuple[InitialNet, ...] = setting(
        (), help='starting architectures, e.g. { hidden = [56, 56], activation = "sigmoid" }'
    )


#: what ``evolution.objectives`` may name: the validation metric (higher is better), the
#: parameters, the multiply-accumulates of one forward pass and its batch-1 time on the run's
#: device (less is better)
OBJECTIVES = ("metric", "params", "macs", "latency_ms")


@dataclass(frozen=True)
class EvolutionSection:
    generations: int = setting(
        1000, low=1, high=1_000_000, resume=True,
        help="generations at most (a default search ends on its time budget)",
    )  # fmt: skip
    tournament_size: int = setting(3, low=1, help="DEAP tournament size (at most population.size)")
    elites: int = setting(2, low=0, help="best nets that survive unchanged (below population.size)")
    time_budget: float = setting(
        0.0, low=0, high=1e9, resume=True,
        help="seconds for the search alone (0: no limit; run.time_limit bounds the whole run)",
    )  # fmt: skip
    objectives: tuple[str, ...] = setting(
        ("metric",), choices=OBJECTIVES, min_items=1,
        help='what the search optimises: "metric" alone, or with "params", "macs" and '
        '"latency_ms" (less is better) a Pareto front of the trade-off',
    )  # fmt: skip


@dataclass(frozen=True)
class ConstraintsSection:
    """``[constraints]``: bounds that no net of the population and no member of the front
    breaks (:mod:`neuroevo.search.objectives`); 0 is no bound."""

    max_params: int = setting(
        0, low=0, high=10**12, help="the most parameters a net may have (0: no bound)"
    )
    max_macs: int = setting(
        0, low=0, high=10**15,
        help="the most multiply-accumulates of one sample's forward pass (0: no bound)",
    )  # fmt: skip
    max_latency_ms: float = setting(
        0.0, low=0, high=1e6,
        help="the most milliseconds of one sample's forward pass on the run's device, as "
        "measured (0: no bound)",
    )  # fmt: skip


#: how a run ends (``final.final``; :mod:`neuroevo.search.final`)
FINAL_CHOICES = ("best", "ensemble")
#: how long a refit from the search weights trains (``final.refit_steps``)
REFIT_STEPS = ("best", "settled")


@dataclass(frozen=True)
class FinalSection:
    """``[final]``: the end of a run (final training, ensemble, refit, bagging); these keys
    were under ``[evolution]`` before, and a recipe may still give them there."""

    final_steps: int = setting(
        20_000, low=0, high=10_000_000, was="evolution",
        help="training steps of the best net, alone, after the search",
    )  # fmt: skip
    patience: int = setting(
        5, low=0, high=1000, resume=True,
        help="final training stops a net after this many of its 20 validation checks in a row "
        "without a better metric (0: never)",
    )  # fmt: skip
    final: str = setting(
        "best", choices=FINAL_CHOICES, resume=True, was="evolution",
        help="best: the best net; ensemble: the best nets mixed, kept if better on validation",
    )  # fmt: skip
    ensemble_size: int = setting(
        3, low=2, high=5, resume=True, was="evolution",
        help="nets in an ensemble (the hall of fame keeps 5)",
    )  # fmt: skip
    refit: bool = setting(
        True, resume=True, was="evolution",
        help="train the kept model again on the training and validation rows",
    )  # fmt: skip
    refit_steps: str = setting(
        "settled", choices=REFIT_STEPS, resume=True,
        help="a refit from the search weights trains for the steps of final training's best "
        "validation check (best), or of its last check within one standard error of the best "
        "(settled)",
    )  # fmt: skip
    folds: int = setting(
        5, low=0, high=20, resume=True, was="evolution",
        help="the refit is bagged over this many folds (0: never; not 1)",
    )  # fmt: skip
    folds_max_rows: int = setting(
        5_000, low=0, high=10**9, resume=True, was="evolution",
        help="bag only where training and validation hold at most this many rows",
    )  # fmt: skip
    pick: str = setting(
        "metric", choices=OBJECTIVES, resume=True,
        help="with several objectives, best/ is the front member best on this one (metric: "
        "the most accurate within the constraints)",
    )  # fmt: skip
    time_share: float = setting(
        0.3, above=0, below=1, resume=True,
        help="the most of run.time_limit the end of the run takes (less where it measures "
        "that it needs less); its trainings are shortened to fit",
    )  # fmt: skip


_MIXER, _RACE = S.settings(MixerConfig), S.settings(Race)


@dataclass(frozen=True)
class MixerSection:
    """``[mixer]``: the steps of a generation, and :class:`~neuroevo.training.mixer.MixerConfig` and
    :class:`~neuroevo.training.mixer.Race` flattened: each key's default, bounds and help are
    theirs (``like=``), written once there."""

    steps: int = setting(1500, like=STEPS)
    engine: str = setting(
        "auto", checked_by="batched, loop, auto", help="how a generation's nets train together"
    )
    batch_size: int = setting(MixerConfig.batch_size, like=_MIXER["batch_size"])
    rule: str = setting(MixerConfig.rule, like=_MIXER["rule"])
    mix_lr: float = setting(MixerConfig.mix_lr, like=_MIXER["mix_lr"])
    mix_every: int = setting(MixerConfig.mix_every, like=_MIXER["mix_every"])
    mix_on: str = setting(MixerConfig.mix_on, like=_MIXER["mix_on"])
    mix_rows: int = setting(MixerConfig.mix_rows, like=_MIXER["mix_rows"])
    smoothing: float = setting(MixerConfig.smoothing, like=_MIXER["smoothing"])
    race_points: tuple[float, ...] = setting(Race.points, like=_RACE["points"])
    race_rule: str = setting(Race.rule, like=_RACE["rule"])
    race_keep: float = setting(Race.keep, like=_RACE["keep"])
    min_survivors: int = setting(Race.min_survivors, like=_RACE["min_survivors"])

    def config(self) -> MixerConfig:
        race = (
            Race(
                points=self.race_points,
                rule=self.race_rule,
                keep=self.race_keep,
                min_survivors=self.min_survivors,
            )
            if self.race_points
            else None
        )
        return MixerConfig(
            rule=self.rule,
            mix_lr=self.mix_lr,
            mix_every=self.mix_every,
            mix_on=self.mix_on,
            mix_rows=self.mix_rows,
            smoothing=self.smoothing,
            race=race,
            batch_size=self.batch_size,
        )


#: where islands run (``run.backend``; :mod:`neuroevo.search.islands`)
BACKENDS = ("local", "ray")
#: how islands are connected (``islands.topology``)
TOPOLOGIES = ("ring",)


@dataclass(frozen=True)
class RunSection:
    seed: int = setting(0, low=0, high=2**32 - 1, help="seeds every random draw")
    time_limit: float = setting(
        120.0, low=0, high=1e9, resume=True,
        help="seconds for the whole run: search, end of run, results (0: no limit; the "
        "report is drawn after it)",
    )  # fmt: skip
    out: str = setting("", resume=True, help="the run directory; empty: runs/<recipe file stem>")
    threads: int = setting(
        1, low=1, high=256, help="torch threads; recorded, since results depend on it"
    )
    device: str = setting("auto", checked_by="cpu, cuda, cuda:N, auto", help="where the nets train")
    keep_checkpoints: int = setting(
        2, low=1, high=1_000, resume=True, help="complete checkpoints kept"
    )
    report: bool = setting(True, resume=True, help="plots/ and report.html at the end of the run")
    backend: str = setting(
        "local", choices=BACKENDS, resume=True,
        help="where islands run: local (this process) or ray",
    )  # fmt: skip
    ray_address: str = setting(
        "", resume=True, help="the Ray cluster for backend ray; empty: a local one"
    )


@dataclass(frozen=True)
class IslandsSection:
    """``[islands]``: several populations that evolve side by side and exchange their best
    nets (:mod:`neuroevo.search.islands`); ``count = 1`` is one population, as without the
    section."""

    # at most 1,000: derived seeds stay within 64 bits (neuroevo.search.seeds)
    count: int = setting(1, low=1, high=1_000, help="populations evolving side by side")
    migrate_every: int = setting(5, low=1, high=1_000_000, help="generations between migrations")
    migrants: int = setting(
        1, low=0, help="nets each island sends per migration (at most size - elites)"
    )
    topology: str = setting(
        "ring", choices=TOPOLOGIES, help="island k sends to island k + 1 (DEAP's migRing)"
    )


DEFAULT_MUTATIONS: dict[str, float] = {name: 1.0 for name in mutations.BUILTINS}

#: the sections whose keys carry their :class:`~neuroevo.schema.Setting`, as a recipe names them
SECTIONS: dict[str, type] = {
    "population": PopulationSection,
    "evolution": EvolutionSection,
    "final": FinalSection,
    "mixer": MixerSection,
    "run": RunSection,
    "islands": IslandsSection,
    "constraints": ConstraintsSection,
}

#: ``(section, key)`` of the keys that may change when a run is resumed
EXTENDABLE = S.resumable(SECTIONS)
#: ``(old section, key)`` -> the section that holds the key now
MOVED = S.moved(SECTIONS)


def upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """A recipe's plain data (:meth:`Recipe.to_dict`, as a checkpoint records it) with every
    key that moved in its section of now: a checkpoint written with ``final_steps`` and the
    other ``[final]`` keys under ``evolution`` compares equal to the recipe of now."""
    data = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    for (old, name), new in MOVED.items():
        part, target = data.get(old), data.setdefault(new, {})
        if isinstance(part, dict) and name in part and isinstance(target, dict):
            target.setdefault(name, part.pop(name))
    return data


def schema() -> list[S.Row]:
    """Every recipe key with its type, default, bounds and help: the reference a docs page
    lists (``[space]``'s keys are :class:`~neuroevo.genome.space.SearchSpace`'s, which checks
    them)."""
    return S.rows({"space": SearchSpace, **SECTIONS})


# --------------------------------------------------------------------------- across keys


#: bounds on what the settings ask for together, each within its own bound (a space of
#: 65,536-wide layers is within space.width_max's, yet one such net holds 4 billion numbers):
#: the parameters of the largest net the space allows (:func:`neuroevo.genome.largest_parameters`),
#: and of population.size x islands.count such nets, 4 bytes each before gradients
MAX_NET_PARAMETERS = 100_000_000
MAX_RUN_PARAMETERS = 1_000_000_000


def check_size(space, population, islands, where, shape, task=None) -> None:
    """:func:`neuroevo.recipe.check_size`; without ``task`` (a recipe being loaded) with the
    fewest inputs its ``task.shape`` allows and one output: the least any task asks of the
    space."""
    n_in, n_out, what = task or (1, 1, None)
    if task is None and shape is not None:
        shape = shape if G.shape_problem(shape, G.features(shape)) is None else None
        n_in = G.features(shape) if shape is not None else 1
    count = G.largest_parameters(space, n_in, n_out, shape)
    keys = ["space.width_max", "space.layers_max"]
    if shape is not None and space.conv_layers_max > 0:
        keys += ["space.channels_max", "space.conv_layers_max", "space.kernel_sizes"]
    # at load the task is unknown: what the space asks of any task, at least
    of = f" for {what} ({n_in:,} inputs, {n_out:,} outputs)" if what else ""
    least = "" if what else "at least "
    nets = population.size * islands.count
    if count > MAX_NET_PARAMETERS:
        problem = (
            f"the largest net these allow{of} has {least}{count:,} parameters, above the "
            f"limit of {MAX_NET_PARAMETERS:,} per net"
        )
    elif nets * count > MAX_RUN_PARAMETERS:
        keys = ["population.size", *(["islands.count"] if islands.count > 1 else []), *keys]
        problem = (
            f"{nets:,} nets as large as the space allows{of} hold {least}"
            f"{nets * count:,} parameters ({count:,} each), above the limit of "
            f"{MAX_RUN_PARAMETERS:,} in a run"
        )
    else:
        return
    came = next((where(k) for k in keys if where(k) == "--set"), where(keys[0]))
    raise RecipeError(f"{came}: {', '.join(keys)}: {problem}; lower one of these")


def check_initial(population: PopulationSection, space: SearchSpace, where) -> None:
    """Each architecture of ``population.initial`` lies inside the search space."""
    for i, net in enumerate(population.initial):
        key = f"population.initial[{i}]"
        w = where("population.initial")
        if not space.layers_min <= len(net.hidden) <= space.layers_max:
            raise RecipeError(
                f"{w}: {key}.hidden: {len(net.hidden)} layers, outside space.layers_min.."
                f"space.layers_max [{space.layers_min}, {space.layers_max}]"
            )
        for width in net.hidden:
            if not space.width_min <= width <= space.width_max:
                raise RecipeError(
                    f"{w}: {key}.hidden: width {width} is outside space.width_min.."
                    f"space.width_max [{space.width_min}, {space.width_max}]"
                )
        if not space.lr_min <= net.lr <= space.lr_max:
            raise RecipeError(
                f"{w}: {key}.lr: {net.lr:g} is outside space.lr_min..space.lr_max "
                f"[{space.lr_min:g}, {space.lr_max:g}]"
            )
        if net.activation not in space.activations:
            raise RecipeError(
                f"{w}: {key}.activation: {net.activation!r} is not in space.activations "
                f"({', '.join(space.activations)})"
            )
        for name in ("strides", "pools"):
            values = getattr(net, name)
            if values and len(values) != len(net.channels):
                raise RecipeError(
                    f"{w}: {key}.{name}: {len(values)} {name} for {len(net.channels)} "
                    "convolutions (channels)"
                )
        for channels, kernel, stride, pool in net.convs():
            given = {"channels": channels, "kernel": kernel, "strides": stride, "pools": pool}
            for name, ok, allowed in (
                ("channels", space.channels_min <= channels <= space.channels_max,
                 f"[{space.channels_min}, {space.channels_max}]"),
                ("kernel", kernel in space.kernel_sizes, str(list(space.kernel_sizes))),
                ("strides", stride in space.strides, str(list(space.strides))),
                ("pools", pool in space.pools, str(list(space.pools))),
            ):  # fmt: skip
                if not ok:
                    raise RecipeError(
                        f"{w}: {key}.{name}: {given[name]} is outside the space ({allowed})"
                    )
        if len(net.channels) > space.conv_layers_max:
            raise RecipeError(
                f"{w}: {key}.channels: {len(net.channels)} convolutions, above "
                f"space.conv_layers_max ({space.conv_layers_max})"
            )


def check_together(recipe: Any, where: Any) -> None:
    """The bounds one key's value sets another's."""
    population, evolution, final = recipe.population, recipe.evolution, recipe.final
    if final.folds == 1:
        key = where.name("final.folds")
        raise RecipeError(
            f"{where('final.folds')}: {key}: must be 0 (no bagged refit) or 2 or more, got 1"
        )
    for key, value, limit, most in (
        ("evolution.elites", evolution.elites, population.size - 1, "below"),
        ("evolution.tournament_size", evolution.tournament_size, population.size, "at most"),
    ):
        if value > limit:
            raise RecipeError(
                f"{where(key)}: {key}: must be {most} population.size ({population.size}), "
                f"got {value}"
            )
    _check_objectives(recipe, where)
    if len(population.initial) > population.size:
        raise RecipeError(
            f"{where('population.initial')}: population.initial lists "
            f"{len(population.initial)} architectures but population.size is {population.size}"
        )
    children = population.size - evolution.elites
    if recipe.islands.migrants > children:
        raise RecipeError(
            f"{where('islands.migrants')}: islands.migrants: must be at most population.size - "
            f"evolution.elites ({children}: migrants take the places of children), got "
            f"{recipe.islands.migrants}"
        )


def _check_objectives(recipe: Any, where: Any) -> None:
    """``evolution.objectives`` names the metric and each objective once; ``final.pick`` is
    one of them; an ensemble needs the metric alone."""
    objectives, final = recipe.evolution.objectives, recipe.final
    problem = None
    if "metric" not in objectives:
        problem = 'must hold "metric" (the front trades it against the others)'
    elif len(set(objectives)) != len(objectives):
        problem = "names an objective twice"
    if problem:
        key = "evolution.objectives"
        raise RecipeError(f"{where(key)}: {key}: {problem}, got {list(objectives)}")
    if final.pick not in objectives:
        raise RecipeError(
            f"{where('final.pick')}: final.pick: {final.pick!r} is not one of "
            f"evolution.objectives ({', '.join(objectives)})"
        )
    if len(objectives) > 1 and recipe.population.size < 4:
        raise RecipeError(
            f"{where('population.size')}: population.size: several evolution.objectives "
            "need at least 4 nets (tournaments pick by dominance in fours), got "
            f"{recipe.population.size}"
        )
    if len(objectives) > 1 and final.final == "ensemble":
        raise RecipeError(
            f"{where('final.final')}: final.final: 'ensemble' mixes the best nets by metric; "
            "with several evolution.objectives the run ends with the front (use 'best')"
        )
