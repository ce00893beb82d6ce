"""Convolutional genomes: inputs with a shape, convolution nodes, their operators, weight
inheritance, the engines, and a run end to end."""

import dataclasses
import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroevo import tasks
from neuroevo.errors import InvalidGenome, NeuroevoError
from neuroevo.genome import graph as G
from neuroevo.genome import mutations as M
from neuroevo.genome.space import SearchSpace
from neuroevo.recipe import RecipeError, load
from neuroevo.runner import evolve
from neuroevo.storage import rundir
from neuroevo.training import engine, mixer, network

SPACE = SearchSpace(
    width_min=4, width_max=32, layers_min=0, layers_max=3, lr_min=1e-3, lr_max=3e-2,
    channels_min=2, channels_max=12, kernel_sizes=(1, 3, 5), strides=(1, 2, 3), pools=(1, 2, 3),
)  # fmt: skip
SHAPES = [[2, 9], [1, 7, 6], [3, 4, 4]]


def conv_genome(shape, rng, space=SPACE):
    n_in = int(np.prod(shape))
    return G.random_genome(n_in, 3, space, rng, shape=shape)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), shape=st.sampled_from(SHAPES), steps=st.integers(1, 12))
def test_chains_of_mutations_keep_every_invariant_and_map_the_shape_to_the_outputs(
    seed, shape, steps
):
    rng = random.Random(seed)
    genome = conv_genome(shape, rng)
    genome.graph["id"] = 0
    net = network.build(genome, generator=torch.Generator().manual_seed(seed))
    for _ in range(steps):
        name = rng.choice(M.BUILTINS)
        try:
            child = M.resolve(name)(genome, rng, SPACE)
        except M.MutationNotApplicable:
            continue
        G.validate(child, SPACE)  # the wrapper checked it too; this is the test's own word
        for node, node_shape in G.node_shapes(child).items():
            assert all(size >= 1 for size in node_shape), (node, node_shape)
        for u, v in child.edges:
            assert not G.is_conv(child, v) or G.is_spatial(child, u)
        net = network.inherit(child, net.state_dict(), generator=torch.Generator())
        assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == network.shapes(child)
        x = torch.randn(5, int(np.prod(shape)))
        assert net(x).shape == (5, 3)
        assert sum(p.numel() for p in net.parameters()) == G.n_parameters(child)
        genome = child
        genome.graph["id"] = 0
    assert G.equal(G.from_json(G.to_json(genome)), genome)


def _two_convs():
    g = G.mlp(2 * 8 * 8, 4, [16], "relu", lr=1e-2, shape=[2, 8, 8], convs=[(6, 3, 1), (8, 3, 2)])
    g.graph["id"] = 1
    return g


def test_alter_channels_keeps_the_channels_both_have_and_draws_the_new_ones():
    parent = _two_convs()
    state = network.build(parent, generator=torch.Generator().manual_seed(0)).state_dict()
    child = G.copy(parent)
    child.nodes["h1"]["channels"] = 9  # 6 -> 9
    child.nodes["h2"]["channels"] = 5  # 8 -> 5
    net = network.inherit(child, state, generator=torch.Generator().manual_seed(1))
    new = net.state_dict()
    assert torch.equal(new["weight.in__h1"][:6], state["weight.in__h1"])
    assert torch.equal(new["bias.h1"][:6], state["bias.h1"])
    assert not torch.equal(new["weight.in__h1"][6:], torch.zeros(3, 2, 3, 3))  # drawn fresh
    assert torch.equal(new["weight.h1__h2"][:, :6], state["weight.h1__h2"][:5])
    # the dense layer after the convolutions: its weights per (channel, position) follow
    assert new["weight.h2__h3"].shape == (16, 5, 4, 4)
    assert torch.equal(new["weight.h2__h3"], state["weight.h2__h3"][:, :5])


def test_a_larger_kernel_keeps_its_centre_and_computes_what_the_parent_did():
    parent = _two_convs()
    net = network.build(parent, generator=torch.Generator().manual_seed(0))
    child = G.copy(parent)
    child.nodes["h1"]["kernel"] = 5
    grown = network.inherit(child, net.state_dict(), generator=torch.Generator())
    kernel = grown.state_dict()["weight.in__h1"]
    assert torch.equal(kernel[:, :, 1:4, 1:4], net.state_dict()["weight.in__h1"])
    assert kernel[:, :, 0].abs().sum() == 0 and kernel[:, :, :, 4].abs().sum() == 0
    x = torch.randn(7, 128)
    torch.testing.assert_close(grown(x), net(x))
    back = G.copy(child)
    back.nodes["h1"]["kernel"] = 3  # and back: the centre again
    again = network.inherit(back, grown.state_dict(), generator=torch.Generator())
    assert torch.equal(again.state_dict()["weight.in__h1"], net.state_dict()["weight.in__h1"])


@pytest.mark.parametrize("shape", SHAPES)
def test_add_skip_into_a_convolution_keeps_its_size_and_what_the_net_computes(shape):
    rng = random.Random(3)
    space = SearchSpace(**{**SPACE.__dict__, "conv_layers_min": 2, "conv_layers_max": 3})
    checked = 0
    for _ in range(40):
        parent = conv_genome(shape, rng, space)
        parent.graph["id"] = 0
        child = M.add_skip(parent, rng, space)
        (u, v), = set(child.edges) - set(parent.edges)  # fmt: skip
        if not G.is_conv(child, v):
            continue
        checked += 1
        assert G.node_shapes(child) == G.node_shapes(parent)
        net = network.build(parent, generator=torch.Generator().manual_seed(1))
        grown = network.inherit(child, net.state_dict(), generator=torch.Generator())
        assert grown.state_dict()[f"weight.{u}__{v}"].abs().sum() == 0  # a new edge starts at 0
        x = torch.randn(4, int(np.prod(shape)))
        torch.testing.assert_close(grown(x), net(x))
    assert checked >= 5


def test_a_skip_from_a_larger_node_is_pooled_to_the_convolutions_positions():
    g = _two_convs()
    g.add_edge("in", "h2")  # 8x8 into a stride-2 node whose other input is 8x8 too: 4x4
    assert G.node_shapes(g)["h2"] == (8, 4, 4)
    g.add_edge("in", "h3")  # and the raw input straight into the dense layer
    net = network.build(g, generator=torch.Generator().manual_seed(0))
    assert net(torch.randn(3, 128)).shape == (3, 4)
    g2 = G.mlp(16, 2, [4], shape=[1, 16], convs=[(3, 3, 2), (3, 3, 2)])
    g2.add_edge("in", "h2")  # 16 positions in, h2 has 4: the input's conv gives 8, pooled to 4
    net2 = network.build(g2, generator=torch.Generator().manual_seed(0))
    assert G.node_shapes(g2)["h2"] == (3, 4) and net2(torch.randn(2, 16)).shape == (2, 2)


def test_a_pooling_convolution_computes_conv_activation_then_max_pooling():
    g = G.mlp(42, 3, [5], "relu", shape=[1, 7, 6], convs=[(4, 3, 1, 2), (6, 3, 1, 3)])
    assert G.node_shapes(g)["h1"] == (4, 4, 3)  # 7x6 pooled by 2, the last windows partial
    assert G.node_shapes(g)["h2"] == (6, 2, 1)
    net = network.build(g, generator=torch.Generator().manual_seed(0))
    w = net.state_dict()
    x = torch.randn(5, 42)
    h = torch.nn.functional.conv2d(x.view(5, 1, 7, 6), w["weight.in__h1"], w["bias.h1"], padding=1)
    h = torch.nn.functional.max_pool2d(h.relu(), 2, ceil_mode=True)
    h = torch.nn.functional.conv2d(h, w["weight.h1__h2"], w["bias.h2"], padding=1)
    h = torch.nn.functional.max_pool2d(h.relu(), 3, ceil_mode=True)
    h = torch.nn.functional.linear(h.flatten(1), w["weight.h2__h3"].flatten(1), w["bias.h3"])
    want = torch.nn.functional.linear(h.relu(), w["weight.h3__out"], w["bias.out"])
    torch.testing.assert_close(net(x), want)
    assert G.signature(g).startswith("1x7x6-[c4 k3 s1 p2 relu]-[c6 k3 s1 p3 relu]")


def test_alter_pool_changes_one_window_within_the_space_and_keeps_the_kernels():
    space = SearchSpace(pools=(1, 2))
    parent = _two_convs()
    state = network.build(parent, generator=torch.Generator().manual_seed(0)).state_dict()
    child = M.alter_pool(parent, random.Random(0), space)
    changed = [n for n in ("h1", "h2") if child.nodes[n]["pool"] != parent.nodes[n]["pool"]]
    assert len(changed) == 1 and child.nodes[changed[0]]["pool"] == 2
    net = network.inherit(child, state, generator=torch.Generator())
    for name in ("weight.in__h1", "weight.h1__h2"):
        assert torch.equal(net.state_dict()[name], state[name])
    with pytest.raises(M.MutationNotApplicable, match="single pool"):
        M.alter_pool(parent, random.Random(0), SearchSpace(pools=(1,)))


def test_a_genome_saved_before_convolutions_could_pool_loads_without_pooling():
    data = G.to_dict(_two_convs())
    for node in data["nodes"]:
        node.pop("pool", None)
    loaded = G.from_dict(data)
    assert [loaded.nodes[n]["pool"] for n in ("h1", "h2")] == [1, 1]
    assert G.equal(loaded, _two_convs())


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda g: g.graph.update(shape=None), "no shape"),
        (lambda g: g.nodes["h1"].update(kernel=4), "even kernel"),
        (lambda g: g.nodes["h1"].update(stride=0), "stride 0"),
        (lambda g: g.nodes["h1"].update(pool=0), "pool 0"),
        (
            lambda g: g.add_edge("h3", "h2") or g.remove_edge("h1", "h2"),
            "cycle|convolution's inputs",
        ),
        (lambda g: g.graph.update(shape=[2, 8, 9]), "holds 144 values"),
        (lambda g: g.nodes["h1"].update(kind="pool"), "kind 'pool'"),
    ],
)
def test_broken_conv_genomes_are_refused_naming_the_problem(edit, message):
    g = _two_convs()
    edit(g)
    with pytest.raises(InvalidGenome, match=message):
        G.validate(g)


def test_the_space_bounds_channels_kernels_strides_and_convolutions():
    g = _two_convs()
    G.validate(g, SearchSpace(channels_min=4, channels_max=8, kernel_sizes=(3,), strides=(1, 2)))
    for space, message in [
        (SearchSpace(channels_max=7), "8 channels, outside"),
        (SearchSpace(kernel_sizes=(5,)), "kernel 3, not in"),
        (SearchSpace(strides=(1,)), "stride 2, not in"),
        (SearchSpace(pools=(2,)), "pool 1, not in"),
        (SearchSpace(conv_layers_max=1), "2 convolutions, outside"),
    ]:
        with pytest.raises(InvalidGenome, match=message):
            G.validate(g, space)
    with pytest.raises(NeuroevoError, match="kernel_sizes: 4 is even"):
        SearchSpace(kernel_sizes=(3, 4))


# --------------------------------------------------------------------------- engines


def test_the_batched_engine_trains_a_population_with_convolutions_as_the_loop_does():
    rng = random.Random(7)
    with_convs = SearchSpace(**{**SPACE.__dict__, "conv_layers_min": 1})
    genomes = [conv_genome([2, 9], rng, with_convs) for _ in range(5)]
    genomes += [G.random_genome(18, 3, SPACE, rng, shape=None) for _ in range(3)]
    members = [engine.Member(g, None, 10 + i) for i, g in enumerate(genomes)]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 18, generator=gen)
    y = (x[:, :9].sum(dim=1) > x[:, 9:].sum(dim=1)).long()
    runs = {
        name: engine.ENGINES[name](
            members,
            kind="classes",
            train=(x[:200], y[:200]),
            valid=(x[200:], y[200:]),
            steps=30,
            seed=1,
            config=mixer.MixerConfig(batch_size=16),
        )
        for name in ("loop", "batched")
    }
    loop, batched = runs["loop"], runs["batched"]
    torch.testing.assert_close(
        torch.tensor(batched.mixer.fitness), torch.tensor(loop.mixer.fitness), rtol=0, atol=1e-4
    )
    assert [n.retired_at for n in batched.mixer.nets] == [n.retired_at for n in loop.mixer.nets]
    for want, got in zip(loop.states, batched.states):
        assert want.keys() == got.keys()
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- tasks and runs


def test_an_npz_of_signals_gives_the_task_its_shape(tmp_path):
    x = np.random.default_rng(0).normal(size=(90, 2, 16)).astype(np.float32)
    np.savez(tmp_path / "signals.npz", x=x, y=(x[:, 0, :4].sum(axis=1) > 0).astype(int))
    task = tasks.build("npz", 0, path=str(tmp_path / "signals.npz"))
    assert task.shape == (2, 16) and task.n_inputs == 32


def test_a_recipe_writes_initial_convolutions_back_only_where_there_are_some(tmp_path):
    (tmp_path / "conv.toml").write_text(CONV)
    recipe = load(tmp_path / "conv.toml")
    (tmp_path / "again.toml").write_text(recipe.to_toml())
    assert load(tmp_path / "again.toml").population == recipe.population
    assert recipe.population.initial[0].convs() == [(4, 3, 1, 1), (8, 3, 2, 1)]
    assert "pools" not in recipe.to_dict()["population"]["initial"][0]  # as written before
    (tmp_path / "pooled.toml").write_text(with_pools(CONV, "[2, 1]"))
    pooled = load(tmp_path / "pooled.toml")
    assert pooled.population.initial[0].convs() == [(4, 3, 1, 2), (8, 3, 2, 1)]
    (tmp_path / "again.toml").write_text(pooled.to_toml())
    assert load(tmp_path / "again.toml").population == pooled.population
    plain = load("recipes/logbits.toml").to_dict()["population"]["initial"][0]
    assert set(plain) == {"hidden", "activation", "lr"}  # as checkpoints recorded it before


def test_a_task_takes_a_shape_that_holds_its_inputs():
    task = tasks.build("digits", 0, shape=[1, 8, 8])
    assert task.shape == (1, 8, 8)
    with pytest.raises(
        NeuroevoError, match=r"task.shape: \[1, 8, 9\] holds 72 values, but the data has 64"
    ):
        tasks.build("digits", 0, shape=[1, 8, 9])
    with pytest.raises(NeuroevoError, match="task.shape: expected"):
        tasks.build("digits", 0, shape=[64])
    x = np.random.default_rng(0).normal(size=(60, 12))
    made = tasks.from_arrays("signal", "bits", x, x[:, :2] > 0, seed=0, shape=[3, 4])
    assert made.shape == (3, 4)


def with_pools(recipe: str, pools: str) -> str:
    """``recipe`` with its initial net's convolutions pooling by ``pools``."""
    return recipe.replace("strides = [1, 2]", f"strides = [1, 2], pools = {pools}")


CONV = """
[task]
name = "digits"
shape = [1, 8, 8]

[space]
width_min = 8
width_max = 32
layers_max = 2
channels_max = 8

[population]
size = 6
initial = [{ hidden = [16], channels = [4, 8], strides = [1, 2], lr = 3e-3 }]

[evolution]
generations = 3
elites = 1

[final]
final_steps = 60

[mixer]
steps = 40
batch_size = 32

[mutations]
insert_conv = 1.0
alter_channels = 1.0
alter_kernel = 1.0
alter_stride = 1.0
add_skip = 1.0
insert_layer = 1.0

[run]
seed = 2
report = false
"""


@pytest.mark.slow
def test_a_conv_run_ends_with_a_model_that_loads_predicts_and_resumes_bit_for_bit(tmp_path):
    (tmp_path / "conv.toml").write_text(CONV)
    recipe = load(tmp_path / "conv.toml")
    result = evolve(recipe, out=tmp_path / "run")
    history = rundir.read_history(tmp_path / "run")
    assert history[0]["signature"].startswith("1x8x8-[c4 k3 s1 relu]-[c8 k3 s2 relu]-[16 relu]")
    assert any("[c" in r["signature"] for r in history if r["generation"] == 2)
    assert result.summary.best.test_metric > 0.3  # ten classes: well above chance
    genome = G.from_json((tmp_path / "run" / "best" / "genome.json").read_text())
    assert genome.graph["shape"] == [1, 8, 8]

    import neuroevo

    model = neuroevo.load(tmp_path / "run")
    task = tasks.build("digits", 2)
    rows = task.x_test.numpy() * np.array(task.preprocessing.x_std) + task.preprocessing.x_mean
    predicted = model.predict(rows)
    accuracy = float(np.mean(np.asarray(predicted) == np.array(task.classes)[task.y_test.numpy()]))
    assert accuracy == pytest.approx(result.summary.best.test_metric, abs=1e-6)
    images = rows.reshape(-1, 1, 8, 8)  # images, one per row, read as the task flattened them
    assert list(model.predict(images)) == list(predicted)

    evolve(
        recipe.replace(evolution=dataclasses.replace(recipe.evolution, generations=2)),
        out=tmp_path / "short",
    )
    again = evolve(load(tmp_path / "conv.toml"), out=tmp_path / "short", resume=True)
    assert rundir.read_history(tmp_path / "short") == history
    assert again.summary.best == result.summary.best


def test_initial_convolutions_outside_the_space_or_without_a_shape_are_one_line(tmp_path):
    bad = CONV.replace("strides = [1, 2]", "strides = [1, 4]")
    (tmp_path / "bad.toml").write_text(bad)
    with pytest.raises(RecipeError, match=r"population.initial\[0\].strides: 4 is outside"):
        load(tmp_path / "bad.toml")
    (tmp_path / "bad.toml").write_text(with_pools(CONV, "[1, 4]"))
    with pytest.raises(RecipeError, match=r"population.initial\[0\].pools: 4 is outside"):
        load(tmp_path / "bad.toml")
    (tmp_path / "bad.toml").write_text(with_pools(CONV, "[1]"))
    with pytest.raises(RecipeError, match=r"initial\[0\].pools: 1 pools for 2 convolutions"):
        load(tmp_path / "bad.toml")
    flat = CONV.replace("shape = [1, 8, 8]\n", "")
    (tmp_path / "flat.toml").write_text(flat)
    with pytest.raises(NeuroevoError, match="convolutions need the input's shape"):
        evolve(load(tmp_path / "flat.toml"), out=tmp_path / "run")
