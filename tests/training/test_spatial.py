"""Nets with convolutions in the batched engine: stacked by their convolutions' key, trained
as the loop trains them (float64 to rounding), padding that never reaches a real unit."""

import random

import numpy as np
import pytest
import torch
from helpers import A, B
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine import (
    assert_no_mixer_trains_a_stacked_net,
    assert_states_close,
    data,
    race_six,
)

from neuroevo.genome import graph as G
from neuroevo.genome import mutations
from neuroevo.genome.space import SearchSpace
from neuroevo.training import engine, kinds, mixer, network, spatial, stack

SPACE = SearchSpace(
    width_min=4, width_max=24, layers_min=0, layers_max=3, lr_min=1e-3, lr_max=3e-2,
    channels_min=2, channels_max=8, kernel_sizes=(1, 3, 5), strides=(1, 2), pools=(1, 2),
    conv_layers_min=1, conv_layers_max=3,
)  # fmt: skip
SHAPES = [[2, 9], [1, 7, 6], [3, 4, 4]]


def family(seed, shape, count, n_out=3):
    """Nets evolution makes from one conv parent (the drifted children share its
    convolutions' layout more often than not), a random conv net and a dense-only net."""
    rng = random.Random(seed)
    n_in = int(np.prod(shape))
    parent = G.random_genome(n_in, n_out, SPACE, rng, shape=shape)
    children = [mutations.drift(parent, rng, SPACE, rng.randint(0, 4)) for _ in range(count)]
    dense = SearchSpace(**{**SPACE.__dict__, "conv_layers_min": 0, "conv_layers_max": 0})
    return [
        parent,
        *children,
        G.random_genome(n_in, n_out, SPACE, rng, shape=shape),
        G.random_genome(n_in, n_out, dense, rng, shape=None),
    ]


def starting(genomes, dtype, seed):
    nets = [
        network.build(g, generator=torch.Generator().manual_seed(seed + i)).to(dtype)
        for i, g in enumerate(genomes)
    ]
    return nets, [{k: v.detach().clone() for k, v in n.state_dict().items()} for n in nets]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    shape=st.sampled_from(SHAPES),
    count=st.integers(1, 6),
    kind=st.sampled_from(sorted(kinds.KINDS)),
)
def test_conv_populations_train_in_the_stack_as_in_the_loop_for_20_steps(seed, shape, count, kind):
    """Every kernel, stride and pool, skips into convolutions and from them into dense
    layers, mixed with a dense-only net: in float64 the per-net losses at every step, the
    weights after 20 steps and the predictions agree to 1e-9."""
    genomes = family(seed, shape, count)
    nets, states = starting(genomes, torch.float64, seed)
    loop = mixer.Modules(nets, [g.graph["lr"] for g in genomes], kind)
    stacked = stack.Stack(genomes, states, kind=kind, batch=16)
    live = list(range(len(genomes)))
    n_in = int(np.prod(shape))
    x_all, y_all = data(kind, 16 * 20, seed, n_in=n_in)
    x_all = x_all.double()
    y_all = y_all.double() if y_all.is_floating_point() else y_all
    for step in range(20):
        x, y = x_all[16 * step : 16 * (step + 1)], y_all[16 * step : 16 * (step + 1)]
        want, _ = loop.train_step(x, y, live, False)
        got, _ = stacked.train_step(x, y, live, False)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
    for i, net in enumerate(nets):
        assert_states_close(net.state_dict(), stacked.state(i), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(
        stacked.predict(x_all, live), loop.predict(x_all, live), rtol=1e-9, atol=1e-9
    )


def test_nets_whose_convolutions_line_up_share_a_group_and_others_do_not():
    base = G.mlp(2 * 36, 3, [8], "relu", shape=[2, 6, 6], convs=[(4, 3, 1, 2), (6, 3, 2)])
    wider = G.mlp(2 * 36, 3, [16, 5], "tanh", shape=[2, 6, 6], convs=[(7, 5, 1, 2), (3, 1, 2)])
    strided = G.mlp(2 * 36, 3, [8], "relu", shape=[2, 6, 6], convs=[(4, 3, 2, 2), (6, 3, 2)])
    dense = G.mlp(2 * 36, 3, [8], "relu")
    genomes = [base, dense, wider, strided]
    _, states = starting(genomes, torch.float32, 0)
    stacked = stack.Stack(genomes, states, kind="classes", batch=16)
    kinds_of = {tuple(grp.index): type(grp) for grp in stacked.groups}
    assert kinds_of == {
        (1,): stack._Group,
        (0, 2): spatial.SpatialGroup,
        (3,): spatial.SpatialGroup,
    }


def test_padding_in_a_conv_group_never_reaches_a_real_unit_and_stays_zero():
    """A narrow net with small kernels beside a wide one with larger kernels and a skip:
    the padded taps, channels and edges stay exactly zero, and the narrow net computes
    what it computes alone."""
    narrow = G.mlp(49, 3, [4], "sigmoid", lr=0.01, shape=[1, 7, 7], convs=[(2, 1, 1), (3, 3, 2)])
    wide = G.mlp(49, 3, [12], "gelu", lr=0.03, shape=[1, 7, 7], convs=[(6, 5, 1), (8, 5, 2)])
    wide.add_edge(G.IN, "h2")
    genomes = [narrow, wide]
    _, states = starting(genomes, torch.float32, 3)
    stacked = stack.Stack(genomes, states, kind="classes", batch=16)
    (group,) = stacked.groups
    assert isinstance(group, spatial.SpatialGroup)
    x, y = data("classes", 16 * 30, 1, n_in=49)
    for step in range(30):
        stacked.train_step(
            x[16 * step : 16 * (step + 1)], y[16 * step : 16 * (step + 1)], [0, 1], False
        )
    padded = 0
    for tensor, mask in zip(group.tensors, group.masks):
        if mask is not None:
            padded += int((mask == 0).sum())
            assert torch.equal(tensor[mask == 0], torch.zeros_like(tensor[mask == 0]))
    assert padded > 0
    alone = network.build(narrow)
    alone.load_state_dict(stacked.state(0))
    torch.testing.assert_close(stacked.predict(x, [0, 1])[0], alone(x).detach())
    moved = (stacked.state(1)["weight.in__h1"] - states[1]["weight.in__h1"]).abs().max()
    assert moved > 1e-3  # the wide net trained too


def test_retired_conv_nets_leave_the_stack_and_keep_their_weights():
    genomes = family(5, [1, 7, 6], 4)
    _, states = starting(genomes, torch.float32, 5)
    stacked = stack.Stack(genomes, states, kind="classes", batch=16)
    x, y = data("classes", 64, 2, n_in=42)
    stacked.train_step(x[:16], y[:16], list(range(len(genomes))), False)
    kept = {i: stacked.state(i) for i in (0, 2)}
    stacked.retire([0, 2])
    live = [i for i in range(len(genomes)) if i not in (0, 2)]
    assert stacked.live == live
    stacked.train_step(x[16:32], y[16:32], live, False)
    for i in (0, 2):
        assert_states_close(kept[i], stacked.state(i), rtol=0, atol=0)


# --------------------------------------------------------------------------- as the mixer's tests


def six_conv_members(lrs=(1e-2,) * 6):
    """Five nets reading the 4 inputs as a 1x4 signal through convolutions (kernels 1, 3
    and 5, 2 to 6 channels) and, at index 3, a conv net whose skip from the input already
    is the target map (its convolution's edges start at zero)."""
    members = []
    for i, (channels, kernel) in enumerate([(2, 1), (4, 3), (6, 5), (2, 1), (3, 3), (5, 5)]):
        hidden = [] if i == 3 else [6]
        g = G.mlp(4, 2, hidden, "tanh", lr=lrs[i], shape=[1, 4], convs=[(channels, kernel, 1)])
        start = None
        if i == 3:
            g.add_edge(G.IN, G.OUT)
            start = {"weight.in__out": A.clone(), "bias.out": B.clone(), "bias.h1": torch.zeros(2)}
        members.append(engine.Member(g, start, i))
    return members


def test_the_six_conv_nets_train_as_one_group():
    members = six_conv_members()
    nets = engine.start(members, torch.device("cpu"))
    stacked = stack.Stack(
        [m.genome for m in members], [n.state_dict() for n in nets], kind="regression", batch=64
    )
    assert [type(g) for g in stacked.groups] == [spatial.SpatialGroup]


@pytest.mark.parametrize("name", ["loop", "batched"])
def test_a_planted_conv_winner_has_the_highest_fitness_for_both_engines(name):
    result = race_six(name, members=six_conv_members)
    assert result.ranking()[0] == 3
    assert result.nets[3].retired_at is None and result.nets[3].steps_trained == 120
    assert result.nets[3].validation_metric == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["loop", "batched"])
def test_a_diverging_conv_net_ranks_last_and_the_others_go_on(name):
    result = race_six(name, (1e-2, 1e30, 1e-2, 1e-2, 1e-2, 1e-2), six_conv_members)
    assert result.nets[1].diverged and result.ranking()[-1] == 1
    assert result.ranking()[0] == 3
    assert all(n.fitness > -1 for n in result.nets if not n.diverged)


@pytest.mark.parametrize("mix_on", ["validation", "train"])
def test_the_batched_engine_lets_no_mixer_train_a_conv_net(mix_on):
    """After a mixer run, bit for bit, the same stack stepped alone on the same batches with
    no mixer at all (the same code path, so exact on any CPU)."""
    assert_no_mixer_trains_a_stacked_net(mix_on, six_conv_members)
