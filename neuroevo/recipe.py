"""Recipes: a TOML file -> a validated :class:`Recipe`.

Every value has a default except ``task.name``. Every unknown key, wrong type or out-of-range
value is a :class:`RecipeError` naming the file (or ``--set``) and the dotted key, with the
nearest valid key where one is close. ``--set key=value`` overrides take a dotted key and a
TOML value (a bare word is taken as a string).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

from neuroevo import tasks
from neuroevo.errors import InvalidSetting, NeuroevoError
from neuroevo.errors import printable as show
from neuroevo.genome import graph as G
from neuroevo.genome import mutations
from neuroevo.genome.space import ACTIVATIONS, SearchSpace
from neuroevo.registry import did_you_mean
from neuroevo.storage import fileio
from neuroevo.training import engine
from neuroevo.training.mixer import MixerConfig, Race

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
#: a ``"package.module:function"`` reference, as ``mutations`` and ``task.name`` take one
_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

#: the largest recipe file read
MAX_RECIPE_BYTES = 1 << 20


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
        out = _plain(self)
        if not self.channels:
            for key in ("channels", "kernel", "strides", "pools"):
                del out[key]
        elif not self.pools:
            del out["pools"]  # as recipes written before pooling have it
        return out


@dataclass(frozen=True)
class TaskSection:
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PopulationSection:
    size: int = 18
    initial: tuple[InitialNet, ...] = ()


@dataclass(frozen=True)
class EvolutionSection:
    generations: int = 1000  # at most; the time budget ends a default search
    tournament_size: int = 3
    elites: int = 2
    time_budget: float = 60.0  # seconds for the search; 0: no limit
    final_steps: int = 20_000  # training steps of the best net, alone, after the search
    final: str = "best"  # or "ensemble": the best nets mixed, kept if better on validation
    ensemble_size: int = 3  # nets in an ensemble (at most the hall of fame's 5)
    refit: bool = True  # retrain the final model on training + validation rows
    folds: int = 5  # the refit is bagged over this many folds (0: never) ...
    folds_max_rows: int = 5_000  # ... where training + validation hold at most this many rows


_MIXER, _RACE = MixerConfig(), Race()


@dataclass(frozen=True)
class MixerSection:
    """``[mixer]``: the steps of a generation, and :class:`~neuroevo.training.mixer.MixerConfig` and
    :class:`~neuroevo.training.mixer.Race` flattened; their defaults and range checks are the only
    ones (:meth:`config` raises :class:`InvalidSetting` naming the key)."""

    steps: int = 1500
    engine: str = "auto"  # neuroevo.training.engine.CHOICES
    batch_size: int = _MIXER.batch_size
    rule: str = _MIXER.rule
    mix_lr: float = _MIXER.mix_lr
    mix_every: int = _MIXER.mix_every
    mix_on: str = _MIXER.mix_on
    smoothing: float = _MIXER.smoothing
    race_points: tuple[float, ...] = _RACE.points
    race_rule: str = _RACE.rule
    race_keep: float = _RACE.keep
    min_survivors: int = _RACE.min_survivors

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
            smoothing=self.smoothing,
            race=race,
            batch_size=self.batch_size,
        )


@dataclass(frozen=True)
class RunSection:
    seed: int = 0
    out: str = ""  # empty: runs/<recipe file stem>
    threads: int = 1  # torch threads; recorded, since results depend on it
    device: str = "auto"  # cpu, cuda, cuda:N, or auto (cuda where there is one)
    keep_checkpoints: int = 2  # complete checkpoints kept in <out>/checkpoints
    report: bool = True  # plots/ and report.html at the end of the run
    backend: str = "local"  # where islands run: "local" (this process) or "ray"
    ray_address: str = ""  # the Ray cluster for backend "ray"; empty: a local one


@dataclass(frozen=True)
class IslandsSection:
    """``[islands]``: several populations that evolve side by side and exchange their best
    nets (:mod:`neuroevo.search.islands`); ``count = 1`` is one population, as without the
    section."""

    count: int = 1
    migrate_every: int = 5  # generations between migrations
    migrants: int = 1  # nets each island sends per migration
    topology: str = "ring"  # island k sends to island k + 1 (DEAP's migRing)


#: where islands run (``run.backend``; :mod:`neuroevo.search.islands`)
BACKENDS = ("local", "ray")
#: how islands are connected (``islands.topology``)
TOPOLOGIES = ("ring",)


#: how a run ends (``evolution.final``; :mod:`neuroevo.search.final`)
FINAL_CHOICES = ("best", "ensemble")

DEFAULT_MUTATIONS: dict[str, float] = {name: 1.0 for name in mutations.BUILTINS}


@dataclass(frozen=True)
class Recipe:
    task: TaskSection
    space: SearchSpace = field(default_factory=SearchSpace)
    population: PopulationSection = field(default_factory=PopulationSection)
    evolution: EvolutionSection = field(default_factory=EvolutionSection)
    mutations: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MUTATIONS))
    mixer: MixerSection = field(default_factory=MixerSection)
    run: RunSection = field(default_factory=RunSection)
    islands: IslandsSection = field(default_factory=IslandsSection)
    source: str = "<recipe>"
    #: the dotted keys ``--set`` gave (an error about them names ``--set``, not the file)
    overridden: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def where(self, key: str) -> str:
        """Where ``key``'s value came from: ``--set`` or the recipe file."""
        return "--set" if key in self.overridden else self.source

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as the TOML file would hold it."""
        out: dict[str, Any] = {"task": {"name": self.task.name, **self.task.options}}
        for name in ("space", "population", "evolution"):
            out[name] = _plain(getattr(self, name))
        out["mutations"] = dict(self.mutations)
        out["mixer"] = _plain(self.mixer)
        out["run"] = _plain(self.run)
        out["islands"] = _plain(self.islands)
        if not self.population.initial:
            del out["population"]["initial"]
        else:
            out["population"]["initial"] = [net.plain() for net in self.population.initial]
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- loading


def load(path: str | Path, overrides: Sequence[str] = (), *, out: str | None = None) -> Recipe:
    """Read and validate a recipe file, with ``--set`` overrides applied."""
    path = Path(path)
    source = str(path)
    if not path.exists() and not path.is_symlink():
        raise RecipeError(f"{source}: no such recipe file")
    try:
        text = fileio.read_text(path, limit=MAX_RECIPE_BYTES, what="recipe", follow=True)
    except fileio.UnsafeFile as exc:
        raise RecipeError(str(exc)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{source}: not valid TOML ({exc})") from None
    except RecursionError:
        raise RecipeError(f"{source}: not a recipe (values nested too deeply)") from None
    recipe = from_dict(raw, source=source, overrides=overrides)
    if out is not None:
        recipe = recipe.replace(run=dataclasses.replace(recipe.run, out=out))
    if not recipe.run.out:
        recipe = recipe.replace(run=dataclasses.replace(recipe.run, out=f"runs/{path.stem}"))
    return recipe


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"mixer.steps=200"`` -> ``("mixer", "steps", 200)``. The key is a TOML key of two
    parts (quoted parts allowed: ``mutations."pkg.mod:fn"=1.0``); the value is TOML, else a
    string."""
    key, sep, value = text.partition("=")
    usage = f"--set {show(text)}: expected section.key=value, e.g. mixer.steps=500"
    if not sep:
        raise RecipeError(usage)
    section, dot, rest = key.strip().partition(".")
    if dot and _BARE_KEY.match(section) and _REFERENCE.match(rest):
        # mutations.pkg.mod:fn=1: a "module:function" reference, unquoted (a shell drops the
        # quotes of mutations."pkg.mod:fn" unless the whole setting is quoted too)
        key = f'{section}."{rest}"'
    elif dot and _BARE_KEY.match(section) and re.search(r"[^\w.-]", rest) and '"' not in rest:
        usage += (
            f"; a key holding characters other than letters, digits, _ and - is quoted (and "
            f'the whole setting, for the shell): --set \'{show(section)}."{show(rest)}"='
            f"{show(value.strip())}'"
        )
    try:
        parsed_key = tomllib.loads(f"{key.strip()} = 0")
    except (tomllib.TOMLDecodeError, RecursionError):
        raise RecipeError(usage) from None
    section = next(iter(parsed_key)) if len(parsed_key) == 1 else None
    inner = parsed_key.get(section)
    if (
        not isinstance(inner, dict)
        or len(inner) != 1
        or isinstance(next(iter(inner.values())), dict)
    ):
        raise RecipeError(usage)
    name = next(iter(inner))
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")
        parsed = parsed["v"] if set(parsed) == {"v"} else value.strip()
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    except RecursionError:
        raise RecipeError(f"--set {show(key.strip())}: value nested too deeply") from None
    return section, name, parsed


def dotted(section: str, name: str) -> str:
    return f"{section}.{name}" if _BARE_KEY.match(name) else f'{section}."{show(name)}"'


def from_dict(
    raw: Mapping[str, Any], *, source: str = "<recipe>", overrides: Sequence[str] = ()
) -> Recipe:
    """Validate plain data (a parsed TOML file) into a :class:`Recipe`."""
    raw = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    if isinstance(overrides, str):  # one override, not its characters
        overrides = [overrides]
    overridden: set[str] = set()
    for text in overrides:
        section, name, value = parse_override(text)
        if section in raw and not isinstance(raw[section], dict):
            raise RecipeError(f"--set {show(text)}: {show(section)} is not a section")
        raw.setdefault(section, {})[name] = value
        overridden.add(dotted(section, name))
        overridden.add(section)

    def where(key: str) -> str:
        return "--set" if key in overridden or key.split("[")[0] in overridden else source

    sections = {
        "task",
        "space",
        "population",
        "evolution",
        "mutations",
        "mixer",
        "run",
        "islands",
    }
    for name, value in raw.items():
        if name not in sections:
            raise RecipeError(
                f"{where(name)}: {show(name)}: unknown section{_hint(name, sections)}"
            )
        if not isinstance(value, dict):
            raise RecipeError(f"{where(name)}: {name}: expected a [{name}] table")

    task = _task(raw.get("task"), where, source)
    space_values = _fields(SearchSpace, raw.get("space", {}), "space", where)
    try:
        space = SearchSpace(**space_values)
    except NeuroevoError as exc:
        named = re.search(r"space\.\w+", str(exc))
        raise RecipeError(f"{where(named.group(0) if named else 'space')}: {exc}") from None
    population = _population(raw.get("population", {}), space, where)
    evolution = EvolutionSection(
        **_fields(EvolutionSection, raw.get("evolution", {}), "evolution", where)
    )
    mixer = MixerSection(**_fields(MixerSection, raw.get("mixer", {}), "mixer", where))
    run = RunSection(**_fields(RunSection, raw.get("run", {}), "run", where))
    islands = IslandsSection(**_fields(IslandsSection, raw.get("islands", {}), "islands", where))
    muts = _mutations(raw.get("mutations"), where)

    try:
        mixer.config()
        engine.choose(mixer.engine)
        engine.check_device(run.device)
    except InvalidSetting as exc:
        raise RecipeError(f"{where(exc.key)}: {exc}") from None
    _check_ranges(population, evolution, mixer, run, where)
    _check_islands(islands, population, evolution, run, where)
    _check_initial(population, space, where)
    _check_size(space, population, islands, where, task.options.get("shape") or None)
    return Recipe(
        task=task,
        space=space,
        population=population,
        evolution=evolution,
        mutations=muts,
        mixer=mixer,
        run=run,
        islands=islands,
        source=source,
        overridden=frozenset(overridden),
    )


def _hint(name: str, known) -> str:
    return did_you_mean(name, known, show=str)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _check_type(value: Any, expected: Any, key: str, where) -> Any:
    origin = typing.get_origin(expected)
    if origin is tuple:
        (item_type, _) = typing.get_args(expected)
        if not isinstance(value, list):
            raise RecipeError(
                f"{where(key)}: {key}: expected a list of {_TYPE_NAMES[item_type][2:]}s, "
                f"got {json.dumps(value, default=str)}"
            )
        return tuple(_check_type(v, item_type, key, where) for v in value)
    ok = (
        isinstance(value, bool)
        if expected is bool
        else not isinstance(value, bool)
        and (isinstance(value, (int, float)) if expected is float else isinstance(value, expected))
    )
    if expected is float and ok and not math.isfinite(value):
        ok = False
    if not ok:
        raise RecipeError(
            f"{where(key)}: {key}: expected {_TYPE_NAMES[expected]}, "
            f"got {json.dumps(value, default=str)}"
        )
    return float(value) if expected is float else value


def _fields(cls: type, raw: Mapping[str, Any], section: str, where) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    values = {}
    for key, value in raw.items():
        dotted = f"{section}.{key}"
        if key not in known:
            raise RecipeError(
                f"{where(dotted)}: {show(dotted)}: unknown key"
                f"{_hint(key, known).replace('mean ', f'mean {section}.')}"
            )
        values[key] = _check_type(value, hints[key], dotted, where)
    return values


#: the task a data file's suffix implies where a recipe gives ``task.path`` and no name
FILE_TASKS = {".csv": "csv", ".npz": "npz"}


def _task(raw: Any, where, source: str) -> TaskSection:
    path = raw.get("path") if isinstance(raw, Mapping) else None
    implied = FILE_TASKS.get(Path(path).suffix.lower()) if isinstance(path, str) else None
    if raw and "name" not in raw and implied is not None:
        raw = {"name": implied, **raw}  # [task] path = "data.csv" is a csv task
    if not raw or "name" not in raw:
        raise RecipeError(
            f"{where('task.name')}: task.name: missing; every recipe names its task "
            f"(known: {', '.join(tasks.names())}), or gives task.path to a .csv or .npz file"
        )
    name = _check_type(raw["name"], str, "task.name", where)
    options = {k: v for k, v in raw.items() if k != "name"}
    for key, value in options.items():
        _check_plain(value, dotted("task", key), where)
    try:
        accepted = tasks.options(name)
    except NeuroevoError as exc:
        raise RecipeError(f"{where('task.name')}: task.name: {show(str(exc))}") from None
    for key, value in options.items():
        key_name = dotted("task", key)
        if accepted is not None and key not in accepted:
            raise RecipeError(
                f"{where(key_name)}: {key_name}: the {name} task has no such option"
                f"{_hint(key, accepted).replace('mean ', 'mean task.')}; "
                f"its options: {', '.join(accepted) or 'none'}"
            )
        default = accepted.get(key) if accepted is not None else None
        if default is not None and type(default) in _TYPE_NAMES:
            options[key] = _check_type(value, type(default), key_name, where)
        if isinstance(default, list) and not isinstance(value, list):
            raise RecipeError(
                f"{where(key_name)}: {key_name}: expected a list such as "
                f"{json.dumps(default)}, got {json.dumps(value, default=str)}"
            )
        if key == "path" and isinstance(value, str) and value:
            # a data file named in a recipe is found beside the recipe, wherever one runs it;
            # one named by --set, from the working directory; either is recorded absolute
            base = Path.cwd() if where(key_name) == "--set" else Path(source).parent
            options[key] = str((base / value).resolve())
    return TaskSection(name=name, options=options)


def _check_plain(value: Any, key: str, where, depth: int = 0) -> None:
    """Task options are plain data (JSON can hold them; a checkpoint records them): strings,
    booleans, finite numbers, and lists and tables of these."""
    if isinstance(value, bool) or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) >= 2**63:
            raise RecipeError(f"{where(key)}: {key}: {value} is out of range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecipeError(f"{where(key)}: {key}: expected a finite number, got {value}")
        return
    if isinstance(value, (list, dict)) and depth < 8:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            _check_plain(v, f"{key}[{show(str(k))}]", where, depth + 1)
        return
    what = "nested too deeply" if isinstance(value, (list, dict)) else type(value).__name__
    raise RecipeError(
        f"{where(key)}: {key}: not a supported value ({what}); task options are strings, "
        "booleans, numbers, and lists and tables of these"
    )


def _population(raw: Mapping[str, Any], space: SearchSpace, where) -> PopulationSection:
    raw = dict(raw)
    initial_raw = raw.pop("initial", [])
    values = _fields(PopulationSection, raw, "population", where)
    if not isinstance(initial_raw, list):
        raise RecipeError(
            f"{where('population.initial')}: population.initial: expected a "
            'list of tables such as { hidden = [32, 32], activation = "relu" }'
        )
    initial = []
    for i, item in enumerate(initial_raw):
        key = f"population.initial[{i}]"
        if not isinstance(item, dict):
            raise RecipeError(
                f"{where('population.initial')}: {key}: expected a table such as "
                '{ hidden = [32, 32], activation = "relu", lr = 0.003 }'
            )
        try:
            net = InitialNet(
                **_fields(InitialNet, item, key, lambda _: where("population.initial"))
            )
        except TypeError:
            raise RecipeError(
                f"{where('population.initial')}: {key}: 'hidden' (a list of widths) is required"
            ) from None
        if net.activation not in ACTIVATIONS:
            raise RecipeError(
                f"{where('population.initial')}: {key}.activation: unknown "
                f"activation {net.activation!r} (known: {', '.join(ACTIVATIONS)})"
            )
        initial.append(net)
    return PopulationSection(initial=tuple(initial), **values)


def _mutations(raw: Mapping[str, Any] | None, where) -> dict[str, float]:
    if raw is None:
        return dict(DEFAULT_MUTATIONS)
    weights = {}
    for name, weight in raw.items():
        key = dotted("mutations", name)
        weight = _check_type(weight, float, key, where)
        if weight < 0:
            raise RecipeError(f"{where(key)}: {key}: a weight cannot be negative, got {weight}")
        try:
            mutations.resolve(name)
        except NeuroevoError as exc:
            raise RecipeError(f"{where(key)}: {key}: {show(str(exc))}") from None
        weights[name] = weight
    if not any(w > 0 for w in weights.values()):
        raise RecipeError(f"{where('mutations')}: mutations: at least one weight must be positive")
    return weights


#: (key, lowest, highest) of every numeric setting; the highest keep one mistyped number from
#: exhausting the machine (threads, memory, days of compute)
BOUNDS = [
    ("population.size", 2, 10_000),
    ("evolution.generations", 1, 1_000_000),
    ("evolution.tournament_size", 1, None),  # at most population.size
    ("evolution.elites", 0, None),  # below population.size
    ("evolution.time_budget", 0, 1e9),
    ("evolution.final_steps", 0, 10_000_000),
    ("mixer.steps", 1, 10_000_000),  # the rest of [mixer]: MixerConfig and Race check it
    ("run.seed", 0, 2**32 - 1),
    ("run.threads", 1, 256),
    ("run.keep_checkpoints", 1, 1_000),
    ("evolution.ensemble_size", 2, 5),
    ("evolution.folds", 0, 20),
    ("evolution.folds_max_rows", 0, 10**9),
]


def _check_ranges(population, evolution, mixer, run, where) -> None:
    sections = {"population": population, "evolution": evolution, "mixer": mixer, "run": run}
    for key, low, high in BOUNDS:
        section, name = key.split(".")
        value = getattr(sections[section], name)
        if value < low:
            raise RecipeError(f"{where(key)}: {key}: must be at least {low}, got {value}")
        if high is not None and value > high:
            raise RecipeError(f"{where(key)}: {key}: must be at most {high:g}, got {value:g}")
    if evolution.final not in FINAL_CHOICES:
        raise RecipeError(
            f'{where("evolution.final")}: evolution.final: must be "best" or "ensemble", '
            f"got {evolution.final!r}"
        )
    if evolution.folds == 1:
        raise RecipeError(
            f"{where('evolution.folds')}: evolution.folds: must be 0 (no bagged refit) or "
            "2 or more, got 1"
        )
    if evolution.elites >= population.size:
        raise RecipeError(
            f"{where('evolution.elites')}: evolution.elites: must be below population.size "
            f"({population.size}), got {evolution.elites}"
        )
    if evolution.tournament_size > population.size:
        raise RecipeError(
            f"{where('evolution.tournament_size')}: evolution.tournament_size: must be at most "
            f"population.size ({population.size}), got {evolution.tournament_size}"
        )
    if len(population.initial) > population.size:
        raise RecipeError(
            f"{where('population.initial')}: population.initial lists "
            f"{len(population.initial)} architectures but population.size is {population.size}"
        )


#: bounds on what the settings ask for together, each within its own bound (a space of
#: 65,536-wide layers is within space.width_max's, yet one such net holds 4 billion numbers):
#: the parameters of the largest net the space allows (:func:`neuroevo.genome.largest_parameters`),
#: and of population.size x islands.count such nets, 4 bytes each before gradients
MAX_NET_PARAMETERS = 100_000_000
MAX_RUN_PARAMETERS = 1_000_000_000


def check_size(recipe: Recipe, task: tasks.Task) -> None:
    """Raise :class:`RecipeError` where the largest net ``recipe.space`` allows between
    ``task``'s inputs and outputs, or a run's population of them, is above
    :data:`MAX_NET_PARAMETERS` or :data:`MAX_RUN_PARAMETERS`. Counts a graph, allocates
    nothing: call it once the task is built, before a net is."""
    _check_size(
        recipe.space,
        recipe.population,
        recipe.islands,
        recipe.where,
        task.shape,
        (task.n_inputs, task.n_outputs, f"task {show(task.name)!r}"),
    )


def _check_size(space, population, islands, where, shape, task=None) -> None:
    """:func:`check_size`; without ``task`` (a recipe being loaded) with the fewest inputs
    its ``task.shape`` allows and one output: the least any task asks of the space."""
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


def _check_islands(islands, population, evolution, run, where) -> None:
    for key, low, high in (
        ("islands.count", 1, 1_000),  # derived seeds stay within 64 bits (island_seed)
        ("islands.migrate_every", 1, 1_000_000),
        ("islands.migrants", 0, None),
    ):
        value = getattr(islands, key.split(".")[1])
        if value < low or (high is not None and value > high):
            limit = f"at least {low}" if value < low else f"at most {high}"
            raise RecipeError(f"{where(key)}: {key}: must be {limit}, got {value}")
    children = population.size - evolution.elites
    if islands.migrants > children:
        raise RecipeError(
            f"{where('islands.migrants')}: islands.migrants: must be at most population.size - "
            f"evolution.elites ({children}: migrants take the places of children), got "
            f"{islands.migrants}"
        )
    for key, value, choices in (
        ("islands.topology", islands.topology, TOPOLOGIES),
        ("run.backend", run.backend, BACKENDS),
    ):
        if value not in choices:
            raise RecipeError(
                f"{where(key)}: {key}: must be one of {', '.join(map(repr, choices))}, "
                f"got {value!r}{_hint(value, choices)}"
            )


def _check_initial(population: PopulationSection, space: SearchSpace, where) -> None:
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
