"""The report: plots/ and report.html at the end of a run and from `neuroevo report`."""

import base64
import json
import logging
import re
import shutil

import pytest
import torch
from PIL import Image

from neuroevo import mixer, plots, report, rundir
from neuroevo.cli import main
from neuroevo.runner import evolve

PNGS = ["scores.png", "progress.png", "lineage.png", "architecture.png", "pareto.png"]
MIXER_STEPS = 40  # conftest's TINY: 40 steps, recorded every mixer.record_every = 10


@pytest.fixture
def run(tiny_recipe, tmp_path):
    out = tmp_path / "run"
    assert main(["evolve", str(tiny_recipe(report=True)), "--out", str(out), "--quiet"]) == 0
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
    result = mixer.MixerResult(
        nets=[],
        weights=None,
        steps=1000,
        rule="experts",
        metric_name="r2",
        trajectory_steps=list(range(10, 1001, 10)),
        wall_seconds=0.0,
        weight_trajectory=torch.rand(100, 0, 40),
    )
    kept = result.recording()
    assert kept["weights"].shape == (mixer.RECORD_FRAMES, 0, 1)
    assert kept["frame_steps"][0] == 10 and kept["frame_steps"][-1] == 1000


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
    assert (tmp_path / "run" / "summary.json").exists() and result.summary["best"]["test_metric"]
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
