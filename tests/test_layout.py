"""Imports flow one way: a module may import only modules of lower layers."""

import ast
from pathlib import Path

import pytest

import neuroevo

PACKAGE = Path(neuroevo.__file__).parent

# lower number = lower layer; a module may import its own layer's peers only where listed
LAYERS = {
    "errors": 0,
    "fileio": 1,
    "stats": 1,
    "registry": 1,
    "space": 1,
    "genome": 2,
    "mutations": 3,
    "kinds": 3,
    "plots": 3,
    "testing": 4,
    "network": 4,
    "mixer": 5,
    "ensemble": 6,
    "stack": 5,
    "tasks": 5,
    "rundir": 6,
    "checkpoint": 6,
    "training": 6,
    "engine": 6,
    "recipe": 7,
    "model": 7,
    "evolution": 8,
    "report": 8,
    "predict": 8,
    "export": 8,
    "final": 9,
    "islands": 9,
    "runner": 10,
    "verify": 10,
    "tensorboard": 10,
    "cli": 11,
    "__init__": 11,
}
NO_TORCH = {
    "errors",
    "fileio",
    "stats",
    "registry",
    "space",
    "genome",
    "mutations",
    "testing",
    "plots",
}  # recipe is not among them: it validates [mixer] and task options with their own modules


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            if node.module == "neuroevo":  # from neuroevo import genome (modules only)
                yield from (
                    f"neuroevo.{a.name}"
                    for a in node.names
                    if (PACKAGE / f"{a.name}.py").exists() or (PACKAGE / a.name).is_dir()
                )


def _module_name(path):
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def test_every_module_has_a_layer():
    for path in PACKAGE.rglob("*.py"):
        assert _module_name(path) in LAYERS, f"{path.name}: add it to LAYERS in this test"


def test_imports_flow_downwards():
    for path in PACKAGE.rglob("*.py"):
        me = _module_name(path)
        for name in _imports(path):
            if name.startswith("neuroevo."):
                other = name.split(".")[1]
                if other == me:
                    continue
                assert LAYERS[other] < LAYERS[me] or (me == "__init__"), (
                    f"{path.relative_to(PACKAGE)} imports {name}: {other} is not below {me}"
                )
            if me in NO_TORCH:
                assert not name.startswith("torch"), f"{me} must not depend on torch"


@pytest.mark.slow
def test_at_run_time_a_module_loads_only_lower_layers_and_no_torch_where_promised():
    """What importing a module really loads (its imports' imports too), in a fresh interpreter:
    a direct-import check misses a lower module that pulls in a higher one."""
    import json
    import subprocess
    import sys

    for me in sorted(m for m in LAYERS if m != "__init__"):
        code = (
            f"import json, sys, neuroevo.{me}; "
            "print(json.dumps(sorted(k for k in sys.modules if k == 'torch' "
            "or k.startswith('neuroevo.'))))"
        )
        loaded = json.loads(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for name in loaded:
            if name.startswith("neuroevo."):
                other = name.split(".")[1]
                assert other == me or LAYERS[other] < LAYERS[me], f"{me} loads {name}"
        if me in NO_TORCH:
            assert "torch" not in loaded, f"importing neuroevo.{me} loads torch"
