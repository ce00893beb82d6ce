import copy
import itertools

import pytest
import torch
from helpers import A, B, linear_data
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neuroevo.errors import NeuroevoError
from neuroevo.training import mixer as X
from neuroevo.training.alone import train_alone

RULES = list(X.UPDATE_RULES)


# --------------------------------------------------------------------------- the simplex


def brute_force_projection(v):
    """min ||w - v|| over the simplex, by trying every support."""
    k = len(v)
    best, best_dist = None, float("inf")
    for size in range(1, k + 1):
        for support in itertools.combinations(range(k), size):
            shift = (sum(v[i] for i in support) - 1.0) / size
            w = [0.0] * k
            for i in support:
                w[i] = v[i] - shift
            if min(w) < -1e-12:
                continue
            dist = sum((a - b) ** 2 for a, b in zip(w, v))
            if dist < best_dist:
                best, best_dist = w, dist
    return best


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=1, max_size=6))
def test_projection_matches_brute_force(values):
    got = X.project_simplex(torch.tensor(values, dtype=torch.float64).unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(
        got, torch.tensor(brute_force_projection(values), dtype=torch.float64), atol=1e-9, rtol=0
    )


@settings(max_examples=150, deadline=None)
@given(
    rule=st.sampled_from(RULES),
    k=st.integers(1, 8),
    m=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    scale=st.floats(1e-3, 1e3),
    lr=st.floats(1e-4, 10.0),
)
def test_every_rule_keeps_columns_on_the_simplex(rule, k, m, seed, scale, lr):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(k, m, generator=g, dtype=torch.float64)
    w = w / w.sum(dim=0, keepdim=True)
    for _ in range(5):
        grad = torch.randn(k, m, generator=g, dtype=torch.float64) * scale
        w = X.UPDATE_RULES[rule](w, grad, lr)
        assert (w >= 0).all()
        torch.testing.assert_close(
            w.sum(dim=0), torch.ones(m, dtype=torch.float64), atol=1e-6, rtol=0
        )


# --------------------------------------------------------------------------- behaviour


def six_nets(seed=0):
    """Five small MLPs and, at index 3, a linear net that already is the target map."""
    torch.manual_seed(seed)
    nets = [nn.Sequential(nn.Linear(4, w), nn.Tanh(), nn.Linear(w, 2)) for w in (3, 6, 12, 24, 48)]
    planted = nn.Linear(4, 2)
    with torch.no_grad():
        planted.weight.copy_(A)
        planted.bias.copy_(B)
    nets.insert(3, planted)
    return nets


#: the settings the stepping rules were measured with (bench/fidelity.py)
STEPPING = {
    "mix_every": 1,
    "mix_rows": 0,
    "race": X.STEPPING_RACE,
}


@pytest.mark.parametrize("rule", X.RULES)
def test_planted_winner_has_the_highest_fitness_and_survives(rule):
    nets = six_nets()
    config = X.MixerConfig(rule=rule, **({} if rule == "metric" else STEPPING))
    result = X.run(
        nets,
        [1e-2] * 6,
        kind="regression",
        train=linear_data(1000, 1),
        valid=linear_data(300, 2),
        steps=120,
        seed=0,
        config=config,
    )
    assert result.ranking()[0] == 3
    planted = result.nets[3]
    assert planted.retired_at is None and planted.steps_trained == 120
    assert planted.round == len(config.race.points)  # survived every race point
    assert planted.validation_metric == pytest.approx(1.0)
    # the metric race retires every net clearly behind the planted one; halving thrice
    # leaves two; min_survivors keeps two either way
    assert sum(1 for n in result.nets if n.retired_at is None) == 2


@pytest.mark.parametrize("mix_on", ["validation", "train"])
def test_mixer_does_not_train_the_nets(mix_on):
    nets = six_nets(seed=1)
    alone = [copy.deepcopy(n) for n in nets]
    lrs = [1e-2, 3e-3, 1e-2, 1e-3, 2e-2, 5e-3]
    train_batches = [linear_data(32, s) for s in range(60)]
    valid_batches = [linear_data(32, 100 + s) for s in range(60)]
    X.run(
        nets,
        lrs,
        kind="regression",
        train=train_batches,
        valid=valid_batches,
        steps=60,
        config=X.MixerConfig(race=None, mix_on=mix_on),
    )
    for net, twin, lr in zip(nets, alone, lrs):
        train_alone(twin, lr, kind="regression", train=train_batches, steps=60)
        for a, b in zip(net.parameters(), twin.parameters()):
            assert torch.equal(a, b)


def test_training_alone_with_patience_stops_when_validation_stops_improving():
    train_batches = [linear_data(32, s) for s in range(200)]
    valid = linear_data(64, 999)
    learning = train_alone(six_nets(seed=3)[0], 1e-2, kind="regression", train=train_batches,
                           steps=200, valid=valid, checks=20, patience=3)  # fmt: skip
    assert learning.steps_trained == 200  # it improves at every check
    frozen = train_alone(six_nets(seed=3)[0], 0.0, kind="regression", train=train_batches,
                         steps=200, valid=valid, checks=20, patience=3)  # fmt: skip
    assert frozen.steps_trained == 30 and frozen.best_step == 0  # 3 checks without a gain


def test_retired_nets_stop_training_and_diverged_nets_rank_last():
    nets = six_nets(seed=2)
    lrs = [1e-2] * 6
    lrs[1] = 1e30  # weights overflow float32: the loss turns infinite
    snapshots = {}
    first = round(X.Race().points[0] * 120)  # the first race point's step

    def on_step(step, live):
        if step == first + 1:  # just after it
            snapshots.update({i: copy.deepcopy(n.state_dict()) for i, n in enumerate(nets)})

    result = X.run(
        nets,
        lrs,
        kind="regression",
        train=linear_data(1000, 1),
        valid=linear_data(300, 2),
        steps=120,
        seed=0,
        on_step=on_step,
    )
    diverged = result.nets[1]
    assert diverged.diverged and diverged.fitness == min(result.fitness) == -1.0
    assert result.ranking()[-1] == 1
    retired_early = [n for n in result.nets if n.retired_at == first and not n.diverged]
    assert retired_early, "the first race point retired nobody"
    for n in retired_early:
        assert n.steps_trained == first
        for key, tensor in nets[n.index].state_dict().items():
            assert torch.equal(tensor, snapshots[n.index][key])
    assert result.nets[3].retired_at is None  # the run went on to the end
    assert all(n.fitness > -1 for n in result.nets if not n.diverged)


def test_metric_fitness_ranks_as_each_nets_own_validation_metric():
    # the metric rule's fitness is the weight each net earned on the validation rows (here
    # every row): it orders the nets exactly as their metric there, retired nets as they left
    result = X.run(
        six_nets(3),
        [1e-2, 3e-3, 1e-2, 1e-3, 2e-2, 5e-3],
        kind="regression",
        train=linear_data(500, 1),
        valid=linear_data(200, 2),
        steps=80,
        seed=0,
        config=X.MixerConfig(race=X.Race(keep=0.5)),
    )
    assert any(n.retired_at is not None for n in result.nets)  # the race ran
    by_fitness = sorted(result.nets, key=lambda n: -n.fitness)
    metrics = [n.validation_metric for n in by_fitness]
    assert metrics == sorted(metrics, reverse=True)
    assert sum(n.fitness for n in result.nets) == pytest.approx(1.0)
    assert all(n.score == n.fitness for n in result.nets)


def test_stepping_rules_fitness_orders_by_round_then_score():
    result = X.run(
        six_nets(3),
        [1e-2] * 6,
        kind="regression",
        train=linear_data(500, 1),
        valid=linear_data(200, 2),
        steps=80,
        seed=0,
        config=X.MixerConfig(rule="experts", **STEPPING),
    )
    ordered = sorted(result.nets, key=lambda n: -n.fitness)
    keys = [(n.round, n.score) for n in ordered]
    assert keys == sorted(keys, reverse=True)
    live_scores = sum(n.score for n in result.nets if n.retired_at is None)
    assert live_scores == pytest.approx(1.0)
    final = result.weights
    torch.testing.assert_close(final.sum(dim=0), torch.ones(final.shape[1], dtype=final.dtype))


def test_threshold_race_drops_nets_far_behind_the_leader():
    result = X.run(
        six_nets(),
        [1e-2] * 6,
        kind="regression",
        train=linear_data(1000, 1),
        valid=linear_data(300, 2),
        steps=120,
        seed=0,
        config=X.MixerConfig(
            race=X.Race(points=(0.5,), rule="threshold", keep=0.2, min_survivors=1)
        ),
    )
    survivors = [n.index for n in result.nets if n.retired_at is None]
    assert 3 in survivors and len(survivors) < 6


def test_same_seed_same_result():
    def once():
        r = X.run(
            six_nets(4),
            [1e-2, 3e-3, 1e-2, 1e-3, 2e-2, 5e-3],
            kind="regression",
            train=linear_data(500, 1),
            valid=linear_data(2000, 2),  # more rows than mix_rows: a drawn subset
            steps=80,
            seed=3,
        )
        return (
            r.fitness,
            [n.retired_at for n in r.nets],
            [n.trajectory for n in r.nets],
            r.weights,
        )

    a, b = once(), once()
    assert any(step is not None for step in a[1])  # the race retired some
    assert a[:3] == b[:3] and torch.equal(a[3], b[3])


def test_metric_weights_stay_on_the_simplex():
    result = X.run(
        six_nets(5),
        [1e-2, 3e-3, 1e-2, 1e-3, 2e-2, 5e-3],
        kind="regression",
        train=linear_data(500, 1),
        valid=linear_data(300, 2),
        steps=100,
        seed=0,
        config=X.MixerConfig(mix_every=5, record_every=5),
    )
    frames = result.weight_trajectory
    assert frames.shape[0] == 20
    assert (frames >= 0).all()
    torch.testing.assert_close(frames.sum(dim=1), torch.ones(20, 2), atol=1e-5, rtol=0)
    for i, n in enumerate(result.nets):  # a retired net's row is empty from then on
        if n.retired_at is not None:
            later = [j for j, step in enumerate(result.trajectory_steps) if step > n.retired_at]
            assert later and (frames[later, i] == 0).all()


def scored(state, accuracies, step, rows=100):
    """One metric-rule update of ``state`` from nets whose accuracies on ``rows`` rows of two
    classes are ``accuracies`` (each right on its first rows)."""
    y = torch.zeros(rows, dtype=torch.long)
    out = torch.zeros(len(accuracies), rows, 2)
    for j, a in enumerate(accuracies):
        right = round(a * rows)
        out[j, :right, 0] = 1.0
        out[j, right:, 1] = 1.0
    state.by_metric(list(range(len(accuracies))), out, y, X.kinds.get("classes"), step)


def test_the_race_keeps_a_net_behind_but_rising_and_retires_one_as_far_behind_and_flat():
    race = X.Race(points=(0.4,), keep=0.05, min_survivors=1)
    state = X._RaceState(3, X.MixerConfig(race=race), steps=1000)
    # net 0 leads at 0.9; net 1 has sat at 0.7; net 2 climbs to 0.7 (6.7 standard errors
    # behind now, but rising): at 40% of the run the race looks ahead
    for step, rising in zip((100, 200, 300, 400), (0.4, 0.5, 0.6, 0.7)):
        scored(state, [0.9, 0.7, rising], step)
    assert state.shown == [0.9, 0.7, 0.7]
    assert state.score[1] == state.score[2]  # the weights are what the nets show now
    state.race_round(0, 400)
    assert state.live() == [0, 2]
    assert state.retired_at == [None, 400, None]
    fitness = state._earned()  # net 1 ranks by what it showed: level with net 2 now
    assert fitness[0] > fitness[1] == fitness[2] > 0


def bits_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (n, 6), generator=g).float()
    return x, x.flip(-1)  # target: the bits reversed


def classes_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


@pytest.mark.parametrize(
    "kind, data, n_in, n_out", [("bits", bits_data, 6, 6), ("classes", classes_data, 5, 3)]
)
def test_other_kinds_rank_a_capable_net_above_a_constant_one(kind, data, n_in, n_out):
    torch.manual_seed(0)
    capable = nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, n_out))
    crippled = nn.Sequential(nn.Linear(n_in, 1), nn.ReLU(), nn.Linear(1, n_out))
    with torch.no_grad():
        crippled[0].weight.zero_()  # sees nothing of its input: a constant net
    result = X.run(
        [crippled, capable],
        [1e-2, 1e-2],
        kind=kind,
        train=data(2000, 1),
        valid=data(500, 2),
        steps=150,
        config=X.MixerConfig(race=None),
    )
    assert result.ranking() == [1, 0]
    assert result.nets[1].validation_metric > result.nets[0].validation_metric


def test_bad_arguments_are_clear_errors():
    with pytest.raises(NeuroevoError, match="mixer.rule: must be one of .*, got 'sgd'"):
        X.MixerConfig(rule="sgd")
    with pytest.raises(NeuroevoError, match="2 nets but 1 learning rates"):
        X.run(
            six_nets()[:2],
            [1e-2],
            kind="regression",
            train=linear_data(10, 1),
            valid=linear_data(10, 2),
            steps=1,
        )
    with pytest.raises(NeuroevoError, match="unknown task kind"):
        X.run(
            six_nets()[:2],
            [1e-2] * 2,
            kind="ranking",
            train=linear_data(10, 1),
            valid=linear_data(10, 2),
            steps=1,
        )
    with pytest.raises(NeuroevoError, match=r"race_points: each must be above 0 and below 1"):
        X.Race(points=(0.5, 1.0))


def test_adam_falls_back_where_torch_has_no_fused_kernel(monkeypatch):
    real = torch.optim.Adam

    def no_fused(params, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be CUDA tensors")
        return real(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", no_fused)
    net = nn.Linear(3, 2)
    opt = X.adam(net.parameters(), lr=0.1)
    assert not opt.defaults.get("fused")
    assert len(opt.param_groups[0]["params"]) == 2  # the generator was not used up by the try
    monkeypatch.undo()
    assert X.adam(nn.Linear(3, 2).parameters(), lr=0.1).defaults["fused"]
