"""The report: plots/ and report.html at the end of a run and from `neuroevo report`."""

import base64
import html
import json
import logging
import re
import shutil
import time

import pytest
import torch
from conftest import TINY
from helpers import edit_state
from PIL import Image

from neuroevo.cli import main
from neuroevo.results import plots, report
from neuroevo.results.summary import read as read_summary
from neuroevo.runner import evolve
from neuroevo.storage import rundir
from neuroevo.training import mixer

PNGS = ["scores.png", "progress.png", "lineage.png", "architecture.png", "pareto.png"]
MIXER_STEPS = 40  # conftest's TINY: 40 steps, recorded every mixer.record_every = 10


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished run (with its report) for the whole module; tests change copies of it."""
    folder = tmp_path_factory.mktemp("finished")
    (folder / "tiny.toml").write_text(TINY)
    out = folder / "run"
    assert main(["evolve", str(folder / "tiny.toml"), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def run(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def _embedded(page):
    return re.findall(r"src='data:image/(png|gif);base64,([A-Za-z0-9+/=]+)'", page)


def test_a_run_ends_with_every_plot_and_a_page_that_embeds_them(run):
    for name in PNGS:
        with Image.open(run / "plots" / name) as image:
            assert image.format == "PNG" and image.size[0] > 300
    with Image.open(run / "plots" / "race.gif") as gif:
        # one frame per recorded step of the last generation's mixer run
        assert gif.format == "GIF" and gif.n_frames == MIXER_STEPS // 10
    page = (run / "report.html").read_text()
    images = _embedded(page)
    assert sorted(kind for kind, _ in images) == ["gif"] + ["png"] * len(PNGS)
    embedded = {base64.b64decode(data) for _, data in images}
    for name in PNGS + ["race.gif"]:
        assert (run / "plots" / name).read_bytes() in embedded
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best"]["signature"] in page
    assert f"{summary['best']['test_metric']:.4f}" in page
    assert "src='http" not in page and "<script" not in page  # readable offline


def test_each_generation_keeps_a_small_mixing_record(run):
    history = rundir.read_history(run)
    assert rundir.mixing_generations(run) == [0, 1]
    tensors, meta = rundir.read_mixing(run, 1)
    ids = [r["id"] for r in history if r["generation"] == 1]
    assert meta["ids"] == ids and meta["steps"] == MIXER_STEPS
    assert tensors["score_steps"].tolist() == [10, 20, 30, 40]
    assert tensors["weights"].shape == (4, len(ids), 16)  # logbits: 16 outputs, one by one
    live = [i for i, r in enumerate(meta["retired_at"]) if r is None]
    # the last frame: the mixing weights of the nets still racing sum to one per output
    assert tensors["weights"][-1, live].sum(dim=0).sub(1).abs().max() < 1e-2
    assert (run / "mixing" / "gen-1.safetensors").stat().st_size < 20_000


def test_the_recording_keeps_at_most_its_frames_and_means_many_outputs():
    k, frames, outputs = 3, 100, 40  # more frames and outputs than a recording keeps
    g = torch.Generator().manual_seed(0)
    trajectory = torch.rand(frames, k, outputs, generator=g)
    nets = [
        mixer.NetResult(
            index=i,
            fitness=0.5,
            score=0.3,
            round=0,
            diverged=False,
            steps_trained=1000,
            retired_at=None,
            n_parameters=10,
            validation_metric=0.5,
            trajectory=torch.rand(frames, generator=g).tolist(),
        )
        for i in range(k)
    ]
    result = mixer.MixerResult(
        nets=nets,
        weights=trajectory[-1],
        steps=1000,
        rule="experts",
        metric_name="r2",
        trajectory_steps=list(range(10, 1001, 10)),
        wall_seconds=0.0,
        weight_trajectory=trajectory,
    )
    kept = result.recording()
    assert kept["weights"].shape == (mixer.RECORD_FRAMES, k, 1)
    assert kept["frame_steps"][0] == 10 and kept["frame_steps"][-1] == 1000
    # each kept frame is each net's mean weight over the outputs at that step (float16)
    for frame, step in zip(kept["weights"], kept["frame_steps"].tolist()):
        want = trajectory[step // 10 - 1].mean(dim=-1, keepdim=True)
        torch.testing.assert_close(frame.float(), want, atol=1e-3, rtol=0)
    # every net's score at every step is kept
    assert kept["scores"].shape == (frames, k)
    for i, net in enumerate(nets):
        torch.testing.assert_close(
            kept["scores"][:, i].float(), torch.tensor(net.trajectory), atol=1e-3, rtol=0
        )


def test_report_command_redraws_another_generation(run, capsys):
    (run / "report.html").unlink()
    assert main(["report", str(run), "--generation", "1"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(run / "report.html") in printed and str(run / "plots" / "race.gif") in printed
    assert "(generation 1)" in (run / "report.html").read_text()


def test_report_of_a_generation_not_recorded_is_one_line(run, capsys):
    assert main(["report", str(run), "--generation", "7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "generation 7 has no mixing record (recorded: 1-2)" in err


def test_report_of_an_older_run_directory_is_one_line(run, capsys):
    shutil.rmtree(run / "mixing")
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no mixing records" in err and "older" in err


def test_report_without_a_history_is_one_line(run, capsys):
    (run / "history.jsonl").unlink()
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no history.jsonl" in err


def test_a_damaged_mixing_record_is_one_line(run, capsys):
    record = run / "mixing" / "gen-1.safetensors"
    record.write_bytes(record.read_bytes()[:100])
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gen-1.safetensors: is not a mixing record" in err


def test_a_failure_to_draw_is_a_warning_after_the_results(
    tiny_recipe, tmp_path, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("no fonts today")

    monkeypatch.setattr(plots, "race_gif", broken)
    with caplog.at_level(logging.WARNING, logger="neuroevo"):
        result = evolve(tiny_recipe(report=True), out=tmp_path / "run")
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written == result.summary.to_dict() and 0 <= written["best"]["test_metric"] <= 1
    typed = read_summary(tmp_path / "run")  # read back checked, and as it was written
    assert typed.to_dict() == written and typed.best.id == written["best"]["id"]
    assert (tmp_path / "run" / "best" / "weights.safetensors").exists()
    assert any("no report: no fonts today" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "run" / "report.html").exists()


def test_report_can_be_switched_off(tiny_recipe, tmp_path):
    evolve(tiny_recipe(report=False), out=tmp_path / "off")  # run.report = false
    assert not (tmp_path / "off" / "plots").exists()
    assert not (tmp_path / "off" / "report.html").exists()
    assert rundir.mixing_generations(tmp_path / "off") == [0, 1]  # recorded all the same


def test_overwrite_removes_the_report_and_a_foreign_plot_stops_it(run, tiny_recipe, capsys):
    (run / "plots" / "mine.png").write_bytes(b"x")
    recipe = str(tiny_recipe(report=True))
    assert main(["evolve", recipe, "--out", str(run), "--overwrite", "--quiet"]) == 2
    assert "mine.png: was not written by neuroevo" in capsys.readouterr().err
    (run / "plots" / "mine.png").unlink()
    (run / "mixing" / "gen-9.safetensors").write_bytes(b"old")
    assert main(["evolve", recipe, "--out", str(run), "--overwrite", "--quiet"]) == 0
    assert rundir.mixing_generations(run) == [0, 1]


def test_the_pareto_front_keeps_only_nets_nothing_smaller_beats():
    params = [100, 50, 200, 50, 300]
    metrics = [0.8, 0.7, 0.9, 0.6, 0.85]
    assert plots.pareto_front(params, metrics) == [1, 0, 2]


def test_lineage_follows_parents_back_to_generation_one():
    first = {
        1: {"id": 1, "parent": None},
        5: {"id": 5, "parent": 1},
        9: {"id": 9, "parent": 5},
        7: {"id": 7, "parent": 1},
    }
    assert [r["id"] for r in report._lineage(first, 9)] == [1, 5, 9]


def test_tensorboard_logs_generations_and_mixer_steps(tiny_recipe, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = tmp_path / "tb"
    assert (
        main(
            [
                "evolve",
                str(tiny_recipe()),
                "--out",
                str(tmp_path / "run"),
                "--quiet",
                "--tensorboard",
                str(logs),
            ]
        )
        == 0
    )
    events = EventAccumulator(str(logs)).Reload()
    best = [e.value for e in events.Scalars("search/best_metric")]
    history = rundir.read_history(tmp_path / "run")
    assert best == pytest.approx(
        [max(r["validation_metric"] for r in history if r["generation"] == g) for g in (0, 1)],
        abs=1e-6,
    )
    # four recorded steps per mixer run, generation 2's after generation 1's
    assert [e.step for e in events.Scalars("mixer/live_nets")] == [10, 20, 30, 40, 50, 60, 70, 80]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    [test] = events.Scalars("final/test_metric")
    assert test.value == pytest.approx(summary["best"]["test_metric"], abs=1e-6)


# ------------------------------------------------------------------- a hostile run directory

HOSTILE = "<script>alert(1)</script>"
#: JSON nested deeper than any parser recursion allows
DEEP = "[" * 100_000 + "]" * 100_000


def _dump(data):
    """``data`` as JSON, each string ``"@RAW:...@"`` in it replaced by the raw text after the
    colon (deep nesting, a number too large for a float)."""
    text = json.dumps(data)
    return re.sub(r'"@RAW:(.*?)@"', lambda m: {"DEEP": DEEP}.get(m[1], m[1]), text)


def _set(data, dotted, value):
    *parents, key = dotted.split(".")
    for name in parents:
        data = data[name]
    if value is _GONE:
        del data[key]
    else:
        data[key] = value


_GONE = object()


def _edit_summary(run, dotted, value):
    summary = json.loads((run / "summary.json").read_text())
    _set(summary, dotted, value)
    (run / "summary.json").write_text(_dump(summary))


def _edit_history(run, dotted, value, line=2):
    lines = (run / "history.jsonl").read_text().splitlines()
    record = json.loads(lines[line - 1])
    _set(record, dotted, value)
    lines[line - 1] = _dump(record)
    (run / "history.jsonl").write_text("\n".join(lines) + "\n")


def _write_mixing(run, generation, tensors, meta_text):
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in tensors.items()},
        str(rundir.mixing_path(run, generation)),
        metadata={"neuroevo": meta_text},
    )


def _edit_mixing(run, dotted, value, generation=1):
    tensors, meta = rundir.read_mixing(run, generation)
    _set(meta, dotted, value)
    _write_mixing(run, generation, tensors, _dump(meta))


# (file, what is changed, the value; None: the whole file), the words the error must hold
CORRUPTIONS = [
    ("summary.json", "metric", 3, "metric must be text"),
    ("summary.json", "metric", "@RAW:DEEP@", "nested"),
    ("summary.json", "metric", [[[["deep"]]]], "metric must be text"),
    ("summary.json", "task", ["logbits"], "task must be text"),
    ("summary.json", "seed", HOSTILE, "seed must be a whole number"),
    ("summary.json", "best", _GONE, "lacks best"),
    ("summary.json", "best", [], "best must be an object"),
    ("summary.json", "best.id", "9", "best.id must be a whole number"),
    ("summary.json", "best.signature", 5, "best.signature must be text"),
    ("summary.json", "best.params", -1, "best.params must be a whole number >= 0"),
    ("summary.json", "best.generation", None, "best.generation must be"),
    ("summary.json", "best.test_metric", "high", "best.test_metric must be a finite number"),
    ("summary.json", "best.island", HOSTILE, "best.island must be a whole number"),
    ("summary.json", "generations_completed", 2.5, "generations_completed must be"),
    ("summary.json", "stopped_by", {}, "stopped_by must be text"),
    ("summary.json", "wall_seconds", "@RAW:1e400@", "wall_seconds must be a finite number"),
    ("summary.json", "search_seconds", "1", "search_seconds must be a finite number"),
    ("summary.json", "islands", "2", "islands must be a whole number"),
    ("summary.json", "final", 3, "final must be an object"),
    ("summary.json", "final.members", "9", "final.members must be a list"),
    ("summary.json", "final.refit.rows", "many", "final.refit.rows must be"),
    ("summary.json", "final.refit.steps", [1, "x"], "final.refit.steps must be a list"),
    ("summary.json", None, "@RAW:DEEP@", "nested"),
    ("summary.json", None, [], "is not a run summary"),
    ("history.jsonl", "generation", "1", "line 2: generation must be a whole number"),
    ("history.jsonl", "id", None, "line 2: id must be a whole number"),
    ("history.jsonl", "id", _GONE, "line 2 lacks id"),
    ("history.jsonl", "parent", "x", "line 2: parent must be"),
    ("history.jsonl", "mutation", 5, "line 2: mutation must be text or null"),
    ("history.jsonl", "born", -1, "line 2: born must be a whole number >= 0"),
    ("history.jsonl", "generation", 10**30, "line 2: generation must be a whole number"),
    ("history.jsonl", "signature", ["x"], "line 2: signature must be text"),
    ("history.jsonl", "params", "544", "line 2: params must be"),
    ("history.jsonl", "lr", "fast", "line 2: lr must be a finite number"),
    ("history.jsonl", "validation_metric", "good", "line 2: validation_metric must be"),
    ("history.jsonl", "island", HOSTILE, "line 2: island must be a whole number"),
    ("history.jsonl", "signature", "@RAW:DEEP@", "line 2"),
    ("history.jsonl", None, "@RAW:DEEP@", "line 2"),
    ("verify.json", "generation", "1", "generation must be a whole number"),
    ("verify.json", "kendall_fitness", HOSTILE, "kendall_fitness must be a finite number"),
    ("verify.json", "regret", [0.1], "regret must be a finite number"),
    ("verify.json", None, [], "is not a verify report"),
    ("verify.json", None, "@RAW:DEEP@", "nested too deeply"),
    ("verify.json", None, "@RAW:{not json@", "is not a verify report"),
    ("mixing", "ids", ["$\\frac{$"] * 6, "ids must be a list of whole numbers"),
    ("mixing", "ids", "@RAW:DEEP@", "is not a mixing record"),
    ("mixing", "retired_at", ["x"] * 6, "retired_at must be a list"),
    ("mixing", "ids", 5, "must be lists"),
    ("mixing", "retired_at", 5, "must be lists"),
    ("mixing", "diverged", {"a": 1}, "must be lists"),
    ("mixing", "race_steps", "10", "race_steps must be a list"),
    ("mixing", "steps", "40", "steps must be a whole number"),
    ("mixing", "rule", 5, "rule must be text"),
    ("mixing", "metric", [], "metric must be text"),
    ("mixing", "seconds", "slow", "seconds must be a finite number"),
    ("mixing", "rule", _GONE, "lacks rule"),
    ("mixing", None, "@RAW:DEEP@", "is not a mixing record"),
    ("genome.json", None, "@RAW:DEEP@", "genome.json"),
    ("genome.json", None, {"nodes": 3}, "genome.json"),
]


def _corrupt(run, file, dotted, value):
    if file == "summary.json" and dotted is None:
        (run / "summary.json").write_text(_dump(value))
    elif file == "summary.json":
        if dotted.startswith("best.island"):
            _edit_summary(run, "islands", 2)
        _edit_summary(run, dotted, value)
    elif file == "history.jsonl" and dotted is None:
        _edit_history(run, "id", 0)  # the line stays; then replaced whole
        lines = (run / "history.jsonl").read_text().splitlines()
        lines[1] = _dump(value)
        (run / "history.jsonl").write_text("\n".join(lines) + "\n")
    elif file == "history.jsonl":
        _edit_history(run, dotted, value)
    elif file == "verify.json":
        data = {"generation": 1, "kendall_fitness": 0.5, "regret": 0.0, "time_ratio": 3.0}
        if dotted is None:
            data = value
        else:
            data[dotted] = value
        (run / "verify.json").write_text(_dump(data))
    elif file == "mixing":
        # an unfinished run: `show` reads its mixing record too (for the metric's name)
        (run / "summary.json").unlink()
        if dotted is None:
            tensors, _ = rundir.read_mixing(run, 1)
            _write_mixing(run, 1, tensors, _dump(value))
        else:
            _edit_mixing(run, dotted, value)
    else:
        (run / "best" / "genome.json").write_text(_dump(value))


@pytest.mark.parametrize(
    ("file", "dotted", "value", "words"),
    CORRUPTIONS,
    ids=[
        f"{c[0]}:{c[1] or 'whole'}:{'missing' if c[2] is _GONE else str(c[2])[:20]}"
        for c in CORRUPTIONS
    ],
)
def test_a_hand_edited_run_directory_is_one_located_line_for_report_and_show(
    run, capsys, file, dotted, value, words
):
    _corrupt(run, file, dotted, value)
    where = "gen-1.safetensors" if file == "mixing" else file
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroevo: error: ") and err.count("\n") == 1, err[:500]
    assert where in err and words in err, err[:500]
    assert len(err) < 1000
    if file in ("verify.json", "genome.json"):  # `show` reads neither
        assert main(["show", str(run)]) == 0
        return
    assert main(["show", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroevo: error: ") and err.count("\n") == 1, err[:500]
    assert where in err and words in err, err[:500]


def test_report_escapes_every_value_from_the_run_directory(run):
    for key in ("metric", "task", "stopped_by", "engine", "device", "best.signature"):
        _edit_summary(run, key, HOSTILE)
    _edit_summary(run, "islands", 2)
    _edit_summary(run, "best.island", 1)
    lines = (run / "history.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for r in records:
        r.update(signature=HOSTILE, island=r["id"] % 2)
        if r["mutation"]:
            r["mutation"] = HOSTILE
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    _edit_mixing(run, "rule", HOSTILE)
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "<script" not in page and "alert(1)</" not in page
    assert html.escape(HOSTILE) in page
    # every table cell holds text, never markup from the run directory
    assert page.count("&lt;script&gt;") >= 8


def test_text_from_the_run_directory_is_drawn_never_read_as_mathtext(run):
    _edit_summary(run, "metric", "$\\frac{$")
    _edit_mixing(run, "rule", "$\\frac{$")
    _edit_history(run, "signature", "$\\frac{$ $x^{$", line=1)
    assert main(["report", str(run)]) == 0
    assert "$\\frac{$" in (run / "report.html").read_text()


def _large_record(run, frames, nets, outputs=16, race_points=3):
    steps = torch.arange(1, frames + 1) * 10
    ids = list(range(100, 100 + nets))
    tensors = {
        "frame_steps": steps,
        "score_steps": steps.clone(),
        "weights": torch.rand(frames, nets, outputs, dtype=torch.float16),
        "scores": torch.rand(frames, nets, dtype=torch.float16),
    }
    meta = {
        "generation": 1,
        "ids": ids,
        "retired_at": [None if i % 3 else 10 for i in range(nets)],
        "diverged": [False] * nets,
        "race_steps": list(range(10, 10 * frames, max(1, frames // race_points)))[:race_points],
        "steps": int(steps[-1]),
        "rule": "experts",
        "metric": "bit_accuracy",
        "seconds": 1.0,
    }
    _write_mixing(run, 1, tensors, json.dumps(meta))


@pytest.mark.parametrize(
    ("frames", "nets", "outputs", "race_points"),
    [(20_000, 6, 16, 3), (4, 30_000, 1, 3), (4, 6, 30_000, 3), (40, 6, 1, 30_000)],
    ids=["20000-frames", "30000-nets", "30000-outputs", "30000-race-points"],
)
def test_a_huge_mixing_record_draws_a_bounded_report_in_seconds(
    run, frames, nets, outputs, race_points
):
    _large_record(run, frames, nets, outputs, race_points)
    started = time.perf_counter()
    assert main(["report", str(run)]) == 0
    assert time.perf_counter() - started < 60
    with Image.open(run / "plots" / "race.gif") as gif:
        assert gif.n_frames <= report.DRAWN_FRAMES
        assert gif.size[0] < 2000  # at most DRAWN_NETS bar groups


ESCAPE = "\x1b[2J\x1b]0;owned\x07"


def test_show_escapes_every_string_from_the_run_directory(run, capsys):
    for key in ("task", "metric", "stopped_by", "engine", "device", "best.signature"):
        _edit_summary(run, key, ESCAPE)
    _edit_history(run, "signature", ESCAPE, line=1)
    _edit_history(run, "mutation", ESCAPE, line=1)
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out and out.count("\\x1b[2J") >= 6


def test_show_of_an_unfinished_run_escapes_its_mixing_record(run, capsys):
    (run / "summary.json").unlink()
    _edit_mixing(run, "metric", ESCAPE)
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2J" in out


def test_resume_warns_of_another_device_with_its_name_escaped(run, caplog):
    edit_state(run, lambda state: state.update(device=ESCAPE))  # checksums recomputed
    with caplog.at_level(logging.WARNING, logger="neuroevo"):
        code = main(
            ["resume", str(run), "--quiet", "--set", "evolution.generations=3", "--set",
             "run.report=false"]
        )  # fmt: skip
    assert code == 0
    [warning] = [r.getMessage() for r in caplog.records if "resumes on" in r.getMessage()]
    assert "\x1b" not in warning and "\\x1b[2J" in warning
