import hashlib
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import edit_state, latest, outputs, tree_digest

from neuroevo import Callback, evolve
from neuroevo import recipe as R
from neuroevo.cli import main
from neuroevo.storage import checkpoint, rundir

GENERATIONS = 4


@pytest.fixture(params=["batched", "loop"])
def reference(request, tiny_recipe, tmp_path):
    source = tmp_path / f"{request.param}.toml"  # tests load it again by recipe.source
    source.write_text(R.load(tiny_recipe(), [f'mixer.engine="{request.param}"']).to_toml())
    recipe = R.load(source, [f"evolution.generations={GENERATIONS}"])
    evolve(recipe, out=tmp_path / "reference")
    return recipe, outputs(tmp_path / "reference")


class Interrupt(Callback):
    def __init__(self, generation, hook):
        self.generation, self.hook = generation, hook

    def on_mixer_step(self, *, generation, step, **kwargs):
        if self.hook == "mid" and generation == self.generation and step == 10:
            raise KeyboardInterrupt

    def on_generation_end(self, *, summary, **kwargs):
        if self.hook == "end" and summary.generation == self.generation:
            raise KeyboardInterrupt


@pytest.mark.parametrize("generation, hook", [(0, "mid"), (1, "end"), (2, "mid"), (3, "end")])
def test_interrupted_then_resumed_equals_uninterrupted(reference, tmp_path, generation, hook):
    recipe, expected = reference
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        evolve(recipe, out=run, callbacks=[Interrupt(generation, hook)])
    evolve(recipe, out=run, resume=True)
    assert outputs(run) == expected


def test_extending_a_finished_run_equals_running_longer_from_the_start(reference, tmp_path):
    recipe, expected = reference
    run = tmp_path / "run"
    evolve(R.load(recipe.source, ["evolution.generations=2"]), out=run)
    longer = R.load(
        recipe.source, [f"evolution.generations={GENERATIONS}", "run.keep_checkpoints=3"]
    )  # changes no result: allowed
    evolve(longer, out=run, resume=True)
    assert outputs(run) == expected


def test_resume_neither_repeats_a_generation_nor_reuses_ids(reference, tmp_path):
    """DEAP's checkpoint tutorial restarts at the saved generation; neat-python once restored
    an id counter that handed out ids again."""
    recipe, _ = reference
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        evolve(recipe, out=run, callbacks=[Interrupt(1, "end")])
    evolve(recipe, out=run, resume=True)
    lines = rundir.read_history(run)
    assert [r["generation"] for r in lines] == sorted(r["generation"] for r in lines)
    assert {g: sum(r["generation"] == g for r in lines) for g in range(GENERATIONS)} == {
        g: 6 for g in range(GENERATIONS)
    }
    per_generation_ids = [(r["generation"], r["id"]) for r in lines]
    assert len(set(per_generation_ids)) == len(per_generation_ids)
    born = {}
    for r in lines:
        assert born.setdefault(r["id"], r["born"]) == r["born"], "an id named two individuals"


def test_resumed_run_draws_the_same_mutations(reference, tmp_path):
    """A sampler whose state is not saved repeats old proposals after resume (an Optuna
    pitfall): the children bred after resume must be the uninterrupted run's children."""
    recipe, expected = reference
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        evolve(recipe, out=run, callbacks=[Interrupt(1, "end")])
    evolve(recipe, out=run, resume=True)

    def children(history):
        return [
            (r["id"], r["parent"], r["mutation"], r["signature"])
            for r in map(json.loads, history.splitlines())
            if r["generation"] >= 2
        ]

    assert children((run / "history.jsonl").read_text()) == children(expected[1])


def test_checkpoints_are_pruned_and_hold_no_pickle(reference, tmp_path):
    recipe, _ = reference
    run = tmp_path / "run"
    evolve(
        R.load(recipe.source, [f"evolution.generations={GENERATIONS}", "run.keep_checkpoints=2"]),
        out=run,
    )
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == ["LATEST", "gen-0002", "gen-0003"]
    for path in (run / "checkpoints").rglob("*"):
        if path.is_file():
            assert not checkpoint._is_pickle(path), path


# --------------------------------------------------------------------------- bad checkpoints


@pytest.fixture
def finished_run(tiny_recipe, tmp_path):
    run = tmp_path / "run"
    assert main(["evolve", str(tiny_recipe()), "--out", str(run), "--quiet"]) == 0
    return run


def resume_fails(run, capsys, *extra):
    before = tree_digest(run)
    code = main(["resume", str(run), "--quiet", "--set", "evolution.generations=5", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("neuroevo: error: ") and err.count("\n") == 1, err
    assert tree_digest(run) == before, "a failed resume changed the run directory"
    return err


def test_truncated_weights_are_detected_and_named(finished_run, capsys):
    tensors = latest(finished_run) / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-100])
    err = resume_fails(finished_run, capsys)
    assert "tensors.safetensors: checksum mismatch" in err


def test_edited_genome_is_detected_and_named(finished_run, capsys):
    state = latest(finished_run) / "state.json"
    data = json.loads(state.read_text())
    data["population"][0]["genome"]["nodes"][0]["width"] += 1
    state.write_text(json.dumps(data))
    err = resume_fails(finished_run, capsys)
    assert "state.json: checksum mismatch" in err


def test_checkpoint_of_another_recipe_is_refused(finished_run, tiny_recipe, capsys):
    before = tree_digest(finished_run)
    other = tiny_recipe("", name="other.toml")
    other.write_text(other.read_text().replace("steps = 40", "steps = 41"))
    code = main(["evolve", str(other), "--out", str(finished_run), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "different recipe" in err and "mixer.steps: 40 in the checkpoint" in err
    assert tree_digest(finished_run) == before
    err = resume_fails(finished_run, capsys, "--set", "mixer.batch_size=16")
    assert "mixer.batch_size" in err


def test_pickle_payload_is_refused_without_being_unpickled(finished_run, tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps(Exploit())
    folder = latest(finished_run)
    (folder / "tensors.safetensors").write_bytes(payload)
    # even with checksums forged to match, the payload is refused
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["tensors.safetensors"] = hashlib.sha256(payload).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest, sort_keys=True))
    pointer = json.loads((finished_run / "checkpoints" / "LATEST").read_text())
    pointer["manifest_sha256"] = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    (finished_run / "checkpoints" / "LATEST").write_text(json.dumps(pointer))
    err = resume_fails(finished_run, capsys)
    assert "holds a pickle payload; refused" in err
    assert not marker.exists()


def test_a_safetensors_header_that_starts_like_a_pickle_is_not_refused(tmp_path):
    """A header of 1152 bytes makes the file begin 80 04, the opening of a protocol-4 pickle."""
    import struct

    import torch
    from safetensors.torch import load_file

    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
    header = header.ljust(1152).encode()
    path = tmp_path / "tensors.safetensors"
    path.write_bytes(struct.pack("<Q", 1152) + header + struct.pack("<2f", 1.0, 2.0))
    assert path.read_bytes()[:2] == b"\x80\x04"
    assert not checkpoint._is_pickle(path)
    assert torch.equal(load_file(str(path))["w"], torch.tensor([1.0, 2.0]))
    path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    assert checkpoint._is_pickle(path)


def test_resume_of_a_complete_run_says_how_to_extend_it(finished_run, capsys):
    code = main(["resume", str(finished_run), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "already complete" in err and "--set evolution.generations=" in err


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


# --------------------------------------------------------------------------- real kills

LAUNCHER = textwrap.dedent("""
    import os, signal, sys
    from neuroevo.storage import checkpoint
    from neuroevo.cli import main

    mode, at = sys.argv[1], int(sys.argv[2])
    calls = [0]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if mode == "step":  # killed inside mixer step `at % 1000` of generation `at // 1000`
        from neuroevo import cli
        from neuroevo.callbacks.base import Callback

        class Kill(Callback):
            def on_mixer_step(self, *, generation, step, **kwargs):
                if (generation, step) == divmod(at, 1000):
                    die()
                if (generation, step) == divmod(-at, 1000):  # a negative `at`: SIGTERM
                    os.kill(os.getpid(), signal.SIGTERM)

        real_evolve = cli.evolve
        def evolve(*args, callbacks=(), **kwargs):
            return real_evolve(*args, callbacks=[*callbacks, Kill()], **kwargs)
        cli.evolve = evolve
    elif mode == "history":  # killed after generation `at`'s history lines, before its checkpoint
        from neuroevo.storage.rundir import RunDir
        real_append = RunDir.append_history
        def append_history(self, records):
            real_append(self, records)
            calls[0] += 1
            if calls[0] == at + 1:
                die()
        RunDir.append_history = append_history
    elif mode == "tensors":  # killed inside the checkpoint write, its tensors on disk
        real_write = checkpoint._fsync_write
        def fsync_write(path, data):
            real_write(path, data)
            if path.name == "tensors.safetensors":
                calls[0] += 1
                if calls[0] == at:
                    die()
        checkpoint._fsync_write = fsync_write
    elif mode == "pointer":  # killed while the LATEST pointer is half written
        real_write = checkpoint._fsync_write
        def fsync_write(path, data):
            if path.name == "LATEST.tmp":
                calls[0] += 1
                if calls[0] == at:
                    path.write_bytes(data[:7])
                    die()
            real_write(path, data)
        checkpoint._fsync_write = fsync_write
    sys.exit(main(sys.argv[3:]))
""")


def _cli(tmp_path, *args, mode="none", at=0):
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    return subprocess.Popen(
        [sys.executable, str(launcher), mode, str(at), *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(reference, tmp_path):
    """Killed at points fixed by hooks, not by the clock: a random mixer step of generations
    1-3, just after a generation's history lines are written, inside a checkpoint's write."""
    recipe, expected = reference
    rng = random.Random(2024)
    steps = recipe.mixer.steps
    scenarios = [("step", 1000 * k + rng.randint(1, steps)) for k in (1, 2, 3)]
    scenarios += [("history", 1), ("tensors", 2), ("pointer", 3)]
    for i, (mode, at) in enumerate(scenarios):
        run = tmp_path / f"run{i}"
        args = ["evolve", recipe.source, "--out", run, "--quiet"]
        args += ["--set", f"evolution.generations={GENERATIONS}"]
        proc = _cli(tmp_path, *args, mode=mode, at=at)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, f"{mode} {at}: not killed: {err.decode()}"
        assert not (run / "summary.json").exists()
        resumed = _cli(tmp_path, "resume", run, "--quiet")
        _, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err.decode()
        assert outputs(run) == expected, f"{mode} at {at} differs after resume"


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_says_how_to_resume(tiny_recipe, tmp_path):
    run = tmp_path / "run"
    args = ["evolve", tiny_recipe(), "--out", run, "--quiet", "--set", "evolution.generations=5"]
    proc = _cli(tmp_path, *args, mode="step", at=-2010)  # SIGTERM at step 10 of generation 2
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert f"Continue with: neuroevo resume {run}" in err.decode()
    assert "holds 2 generation(s)" in err.decode()
    assert checkpoint.load_latest(run).generation == 1


def test_a_run_checkpointed_before_engines_existed_resumes_with_the_loop(tiny_recipe, tmp_path):
    """Recipes gained mixer.engine, run.device and space.pools; a checkpoint whose recipe
    lacks them was trained by the loop on the CPU, without pooling, and resumes so, bit for
    bit."""

    old = ['mixer.engine="loop"', 'run.device="cpu"', "space.pools=[1]"]
    reference = tmp_path / "reference"
    evolve(R.load(tiny_recipe(), [f"evolution.generations={GENERATIONS}", *old]), out=reference)
    run = tmp_path / "run"
    evolve(R.load(tiny_recipe(), ["evolution.generations=2", *old]), out=run)

    def forget(state):
        del state["recipe"]["mixer"]["engine"]
        del state["recipe"]["run"]["device"]
        del state["recipe"]["space"]["pools"]

    edit_state(run, forget)
    text = (run / "recipe.toml").read_text()
    text = text.replace('engine = "loop"\n', "").replace('device = "cpu"\n', "")
    text = text.replace("pools = [\n    1,\n]\n", "")
    assert "pools" not in text
    (run / "recipe.toml").write_text(text)
    assert (
        main(["resume", str(run), "--quiet", "--set", f"evolution.generations={GENERATIONS}"]) == 0
    )
    assert outputs(run) == outputs(reference)


def test_a_checkpoint_folder_holding_a_foreign_file_is_one_error_naming_it(tmp_path):
    """Saving over a checkpoint folder where a user left a file: the file stays, and the
    refusal says which file (not a bare OSError)."""
    folder = tmp_path / "gen-0003"
    folder.mkdir()
    for name in checkpoint.FILES:
        (folder / name).write_text("{}")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(checkpoint.CheckpointError, match=r"gen-0003: .*notes\.txt"):
        checkpoint._remove(folder)
    assert (folder / "notes.txt").read_text() == "mine"


LEGACY = Path(__file__).parent.parent / "data" / "run-0.1.0"


@pytest.mark.slow
def test_a_run_written_by_0_1_0_resumes_and_where_the_kernels_match_bit_for_bit(tmp_path):
    """A run directory kept from before the package's modules moved into wings: it resumes,
    keeps its generations byte for byte, and, on a CPU whose kernels wrote it, gives the very
    search the old code gave and the final weights recorded (float32 results differ in the last
    bits between SIMD kernels, so elsewhere only the resume itself is checked)."""
    import hashlib
    import shutil

    import torch

    expected = json.loads((LEGACY.parent / f"{LEGACY.name}.json").read_text())
    runs = []
    for name in ("a", "b"):
        run = tmp_path / name
        shutil.copytree(LEGACY, run)
        assert main(["resume", str(run), "--quiet", "--set", "evolution.generations=3"]) == 0
        runs.append(run)
    kept = (LEGACY / "history.jsonl").read_text()
    history = (runs[0] / "history.jsonl").read_text()
    assert history.startswith(kept) and len(history.splitlines()) == 18
    assert outputs(runs[0]) == outputs(runs[1])
    if torch.backends.cpu.get_cpu_capability() == expected["cpu_capability"]:
        for name, digest in expected["resumed"].items():
            assert hashlib.sha256((runs[0] / name).read_bytes()).hexdigest() == digest, name
