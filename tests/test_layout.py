"""The house's plan: one wing (subpackage) per concern, imports flowing one way between wings,
no cycles inside a wing, and the rules each wing promises (genome imports no torch; results
never imports search; the CLI only calls the library)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import neuroevo

PACKAGE = Path(neuroevo.__file__).parent

# lower number = lower layer: a wing may import only wings of lower layers (and itself)
WINGS = {
    "errors": 0,
    "registry": 1,
    "schema": 2,  # a recipe key's setting: what genome, training, sections and recipe check against
    "genome": 3,
    "storage": 4,
    "training": 4,
    "tasks": 5,
    "sections": 5,  # the recipe's sections, each key with its setting
    "recipe": 6,
    "results": 6,
    "callbacks": 6,
    "search": 7,
    "runner": 8,
    "cli": 9,
    "estimators": 9,  # scikit-learn's face: a run from arrays
    "__init__": 10,
}
#: modules whose imports, and their imports' imports, never load torch
NO_TORCH = {
    "errors",
    "registry",
    "schema",
    "genome.graph",
    "genome.space",
    "genome.mutations",
    "genome.testing",
    "storage.fileio",
    "search.stats",
    "results.plots",
    "callbacks.base",
}
#: wing -> wings it must never import, whatever the layers say
NEVER = {"results": {"search", "runner", "cli"}, "genome": {"training", "tasks"}}


def _module(path):
    """``genome.graph`` for neuroevo/genome/graph.py; ``genome`` for its __init__.py."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def _wing(module):
    return module.split(".")[0]


def _imports(path):
    """The neuroevo modules (as :func:`_module` names them) and the other top-level packages
    that ``path`` imports."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for name in names:
            if name == "neuroevo" or name.startswith("neuroevo."):
                module = name.removeprefix("neuroevo").removeprefix(".")
                while module and module not in MODULES:
                    module = module.rpartition(".")[0]
                if module:
                    yield module
            else:
                yield name.split(".")[0]


def test_every_module_belongs_to_a_wing_and_at_least_five_wings_are_packages():
    for module in MODULES:
        assert _wing(module) in WINGS, f"{module}: add its wing to WINGS in this test"
    packages = [w for w in WINGS if (PACKAGE / w / "__init__.py").exists()]
    assert len(packages) >= 5, packages


def test_imports_flow_down_between_wings_and_never_in_a_circle_inside_one():
    inside = nx.DiGraph()
    for me, path in MODULES.items():
        for other in _imports(path):
            if other not in MODULES or other == me:
                continue
            a, b = _wing(me), _wing(other)
            if a == b:
                inside.add_edge(me, other)
                continue
            assert b not in NEVER.get(a, ()), f"{me} imports {other}: {a} never imports {b}"
            assert WINGS[b] < WINGS[a], f"{me} imports {other}: wing {b} is not below {a}"
    cycles = list(nx.simple_cycles(inside))
    assert not cycles, f"imports in a circle: {cycles}"


def test_no_torch_where_promised_by_what_the_modules_import():
    for me in NO_TORCH:
        assert "torch" not in set(_imports(MODULES[me])), f"{me} imports torch"


def test_the_public_api_is_imported_eagerly_and_listed():
    """Every name of ``__all__`` is imported eagerly; the one lazy door is the scikit-learn
    estimators' (an optional extra: importing neuroevo must not need scikit-learn), and it
    serves those names only."""
    text = (PACKAGE / "__init__.py").read_text()
    tree = ast.parse(text)
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == ["__getattr__"]
    for name in neuroevo.__all__:
        assert name in vars(neuroevo), name  # there without __getattr__'s help
    assert neuroevo._ESTIMATORS == ("NeuroevoClassifier", "NeuroevoRegressor")
    assert not set(neuroevo._ESTIMATORS) & set(neuroevo.__all__)
    with pytest.raises(AttributeError):
        neuroevo.NoSuchThing  # noqa: B018
    assert (PACKAGE / "py.typed").exists()


def test_importing_neuroevo_does_not_import_scikit_learn():
    code = "import sys, neuroevo; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# What importing a module really loads (its imports' imports too), in a fresh interpreter
# whose `neuroevo` package is an empty shell: the eager public API in neuroevo/__init__.py
# loads everything, so each module is imported without it, as its own dependencies see it.
SHELL = (
    "import importlib, json, sys, types; "
    "p = types.ModuleType('neuroevo'); p.__path__ = [{path!r}]; p.__version__ = '0'; "
    "sys.modules['neuroevo'] = p; "
    "importlib.import_module('neuroevo.{me}'); "
    "print(json.dumps(sorted(k for k in sys.modules if k == 'torch' "
    "or k.startswith('neuroevo.'))))"
)


@pytest.mark.slow
def test_at_run_time_a_module_loads_only_lower_wings_and_no_torch_where_promised():
    """A direct-import check misses a lower module that pulls in a higher one."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def load(me):
        code = SHELL.format(path=str(PACKAGE), me=me)
        return me, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    names = sorted(m for m in MODULES if m != "__init__")
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # one interpreter per module
        runs = list(pool.map(load, names))
    for me, done in runs:
        assert done.returncode == 0, done.stderr
        loaded = json.loads(done.stdout)
        for name in loaded:
            if name.startswith("neuroevo."):
                other = _wing(name.removeprefix("neuroevo."))
                mine = _wing(me)
                assert other == mine or WINGS[other] < WINGS[mine], f"{me} loads {name}"
        if me in NO_TORCH:
            assert "torch" not in loaded, f"importing neuroevo.{me} loads torch"
