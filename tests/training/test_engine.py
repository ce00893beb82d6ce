"""The batched engine trains every net as the loop does (the reference), only faster."""

import random

import pytest
import torch
from helpers import A, B, linear_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroevo.cli import main
from neuroevo.genome import graph as G
from neuroevo.genome import mutations
from neuroevo.genome.space import ACTIVATIONS, SearchSpace
from neuroevo.storage import rundir
from neuroevo.training import adam, engine, kinds, mixer, network, stack
from neuroevo.training.alone import train_alone

ENGINES = ["loop", "batched"]
SPACE = SearchSpace(width_min=2, width_max=24, layers_min=0, layers_max=4, lr_min=1e-3, lr_max=3e-2)


def population(seed, count, n_in=5, n_out=3):
    """Random genomes after random mutations: skips, cuts, every activation, widths, depths
    and learning rates all differ."""
    rng = random.Random(seed)
    return [
        mutations.drift(G.random_genome(n_in, n_out, SPACE, rng), rng, SPACE, rng.randint(0, 6))
        for _ in range(count)
    ]


def data(kind, n, seed, n_in=5, n_out=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g)
    mix = torch.randn(n_in, n_out, generator=g)
    if kind == "bits":
        y = (x @ mix > 0).float()
    elif kind == "classes":
        y = (x @ mix).argmax(dim=1)
    else:
        y = torch.tanh(x @ mix)
    return x, y


def starting_states(genomes, seed=0):
    return [
        network.build(g, generator=torch.Generator().manual_seed(seed + i)).state_dict()
        for i, g in enumerate(genomes)
    ]


def assert_states_close(a, b, rtol=1e-5, atol=1e-6):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=rtol, atol=atol, msg=name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    count=st.integers(1, 9),
    kind=st.sampled_from(sorted(kinds.KINDS)),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_stack_and_loop_give_the_same_losses_and_weights_for_20_steps(seed, count, kind, dtype):
    """In float64 the two agree to rounding (1e-9). In float32 the losses agree to 1e-5 at
    every step; the weights to 1e-5 in all but rare elements (about 1 case in 150): where
    a gradient is near zero, Adam's normalisation turns last-bit differences into visible
    ones (in float64 the same cases agree to 1e-14), so weights get 1e-4."""
    genomes = population(seed, count)
    states = [{k: v.to(dtype) for k, v in s.items()} for s in starting_states(genomes, seed)]
    nets = [network.build(g).to(dtype) for g in genomes]
    for net, state in zip(nets, states):
        net.load_state_dict(state)
    loop = mixer.Modules(nets, [g.graph["lr"] for g in genomes], kind)
    stacked = stack.Stack(genomes, states, kind=kind, batch=16)
    live = list(range(count))
    x_all, y_all = data(kind, 16 * 20, seed)
    x_all = x_all.to(dtype)
    y_all = y_all.to(dtype) if y_all.is_floating_point() else y_all
    rtol = 1e-9 if dtype == torch.float64 else 1e-5
    for step in range(20):
        x, y = x_all[16 * step : 16 * (step + 1)], y_all[16 * step : 16 * (step + 1)]
        want, _ = loop.train_step(x, y, live, False)
        got, _ = stacked.train_step(x, y, live, False)
        torch.testing.assert_close(got, want, rtol=rtol, atol=rtol / 10)
    weights = 1e-9 if dtype == torch.float64 else 1e-4
    for i, net in enumerate(nets):
        assert_states_close(net.state_dict(), stacked.state(i), rtol=weights, atol=weights / 10)
    torch.testing.assert_close(
        stacked.predict(x_all, live), loop.predict(x_all, live), rtol=weights, atol=weights
    )


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), race=st.booleans())
def test_engines_give_the_same_fitness_order_and_weights(seed, race):
    genomes = population(seed, 8)
    members = [engine.Member(g, None, seed + i) for i, g in enumerate(genomes)]
    config = mixer.MixerConfig(batch_size=16, race=mixer.Race() if race else None)
    runs = {
        name: engine.ENGINES[name](
            members,
            kind="bits",
            train=data("bits", 400, seed),
            valid=data("bits", 200, seed + 1),
            steps=40,
            seed=seed,
            config=config,
        )
        for name in ENGINES
    }
    loop, batched = runs["loop"], runs["batched"]
    torch.testing.assert_close(
        torch.tensor(batched.mixer.fitness), torch.tensor(loop.mixer.fitness), rtol=0, atol=1e-4
    )
    fitness = loop.mixer.fitness
    for a in range(len(fitness)):  # the same order wherever the loop's is not a near tie
        for b in range(len(fitness)):
            if fitness[a] > fitness[b] + 1e-4:
                assert batched.mixer.fitness[a] > batched.mixer.fitness[b]
    assert [n.retired_at for n in batched.mixer.nets] == [n.retired_at for n in loop.mixer.nets]
    for want, got in zip(loop.states, batched.states):
        assert_states_close(want, got, rtol=1e-4, atol=1e-5)


def test_without_the_fused_adam_kernel_the_stack_still_trains_as_the_loop(monkeypatch):
    """Where torch has no fused Adam (before 2.4, or a device without the kernel), the stack
    writes the update out and still matches the loop's ``torch.optim.Adam``."""

    def no_kernel(*args, **kwargs):
        raise RuntimeError("_fused_adam_: no kernel for this device or dtype")

    monkeypatch.setattr(adam, "_fused_step", no_kernel)
    monkeypatch.setattr(adam, "_FUSED", True)  # found, but the first call has no kernel
    genomes = population(7, 5)
    states = starting_states(genomes, 7)
    nets = [network.build(g) for g in genomes]
    for net, state in zip(nets, states):
        net.load_state_dict(state)
    loop = mixer.Modules(nets, [g.graph["lr"] for g in genomes], "regression")
    stacked = stack.Stack(genomes, states, kind="regression", batch=16)
    x_all, y_all = data("regression", 16 * 20, 7)
    for step in range(20):
        x, y = x_all[16 * step : 16 * (step + 1)], y_all[16 * step : 16 * (step + 1)]
        loop.train_step(x, y, list(range(5)), False)
        stacked.train_step(x, y, list(range(5)), False)
    assert not adam._FUSED
    for i, net in enumerate(nets):
        assert_states_close(net.state_dict(), stacked.state(i), rtol=1e-4, atol=1e-5)
    moved = [
        (stacked.state(i)[k] - v).abs().max() for i, s in enumerate(states) for k, v in s.items()
    ]
    assert max(moved) > 1e-3  # the nets did train


def test_padding_never_reaches_a_real_unit_and_stays_zero():
    # one group holding a narrow net without a skip and a wide net with one
    narrow = G.mlp(5, 3, [2, 2], "sigmoid", lr=0.01)
    wide = G.mlp(5, 3, [12, 12], "gelu", lr=0.03)
    wide.add_edge(G.IN, "h2")
    genomes = [narrow, wide]
    states = starting_states(genomes)
    stacked = stack.Stack(genomes, states, kind="regression", batch=16, groups=[[0, 1]])
    (group,) = stacked.groups
    x, y = data("regression", 16 * 30, 1)
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
    # the narrow net computes what it computes alone
    alone = network.build(narrow)
    alone.load_state_dict(stacked.state(0))
    torch.testing.assert_close(stacked.predict(x, [0, 1])[0], alone(x).detach())


def test_retired_nets_leave_the_stack_and_keep_their_weights():
    genomes = population(3, 6)
    states = starting_states(genomes)
    stacked = stack.Stack(genomes, states, kind="bits", batch=16)
    x, y = data("bits", 64, 2)
    stacked.train_step(x[:16], y[:16], list(range(6)), False)
    kept = {i: stacked.state(i) for i in (1, 4)}
    stacked.retire([1, 4])
    assert stacked.live == [0, 2, 3, 5]
    assert sum(len(grp.index) for grp in stacked.groups) == 4
    stacked.train_step(x[16:32], y[16:32], [0, 2, 3, 5], False)
    for i in (1, 4):
        assert_states_close(kept[i], stacked.state(i), rtol=0, atol=0)


# --------------------------------------------------------------------------- as the mixer's tests


def six_members(lrs=(1e-2,) * 6):
    """Five small tanh MLPs and, at index 3, a linear net that already is the target map."""
    members = []
    for i, width in enumerate((3, 6, 12, None, 24, 48)):
        if width is None:
            g = G.mlp(4, 2, [], lr=lrs[i])
            start = {"weight.in__out": A.clone(), "bias.out": B.clone()}
        else:
            g = G.mlp(4, 2, [width], "tanh", lr=lrs[i])
            start = None
        members.append(engine.Member(g, start, i))
    return members


def race_six(name, lrs=(1e-2,) * 6, members=six_members):
    """A 120-step mixer run of ``members(lrs)`` (six nets, the planted one at index 3)."""
    return engine.ENGINES[name](
        members(lrs),
        kind="regression",
        train=linear_data(1000, 1),
        valid=linear_data(300, 2),
        steps=120,
        seed=0,
        config=mixer.MixerConfig(),
    ).mixer


@pytest.mark.parametrize("name", ENGINES)
def test_planted_winner_has_the_highest_fitness_for_both_engines(name):
    result = race_six(name)
    assert result.ranking()[0] == 3
    assert result.nets[3].retired_at is None and result.nets[3].steps_trained == 120
    assert result.nets[3].validation_metric == pytest.approx(1.0)


def _six_after_a_mixer_run(run_engine, mix_on, members=six_members):
    """Six members (one planted at the target map), their training data, and one 60-step
    mixer run of them by ``run_engine`` on batches drawn from seed 4, with no race."""
    members = members(lrs=(1e-2, 3e-3, 1e-2, 1e-3, 2e-2, 5e-3))
    train = linear_data(640, 5)
    run = run_engine(
        members,
        kind="regression",
        train=train,
        valid=linear_data(320, 6),
        steps=60,
        seed=4,
        config=mixer.MixerConfig(race=None, mix_on=mix_on, batch_size=32),
    )
    return members, train, run


@pytest.mark.parametrize("mix_on", ["validation", "train"])
def test_the_loop_engine_lets_no_mixer_train_a_net(mix_on):
    """The loop's nets after a mixer run are, bit for bit, the nets trained alone on the same
    batches (the loop is the alone path, so exactness holds on any CPU)."""
    members, train, run = _six_after_a_mixer_run(engine.loop, mix_on)
    for member, state in zip(members, run.states):
        net = network.inherit(
            member.genome,
            member.start_from,
            generator=torch.Generator().manual_seed(member.init_seed),
        )
        batches = mixer.batches(*train, 32, torch.Generator().manual_seed(4))
        train_alone(net, member.genome.graph["lr"], kind="regression", train=batches, steps=60)
        assert_states_close(net.state_dict(), state, rtol=0, atol=0)


@pytest.mark.parametrize("mix_on", ["validation", "train"])
def test_the_batched_engine_lets_no_mixer_train_a_net(mix_on):
    """The batched engine's nets after a mixer run are, bit for bit, the same stack stepped
    alone on the same batches with no mixer at all (the same code path, so exact on any CPU;
    the stack against the loop is compared, within float rounding, by the tests above)."""
    assert_no_mixer_trains_a_stacked_net(mix_on, six_members)


def assert_no_mixer_trains_a_stacked_net(mix_on, members):
    members, train, run = _six_after_a_mixer_run(engine.batched, mix_on, members)
    alone = stack.Stack(
        [m.genome for m in members],
        [n.state_dict() for n in engine.start(members, torch.device("cpu"))],
        kind="regression",
        batch=32,
    )
    batches = mixer.batches(*train, 32, torch.Generator().manual_seed(4))
    for _ in range(60):
        alone.train_step(*next(batches), list(range(len(members))), False)
    for i, state in enumerate(run.states):
        assert_states_close(alone.state(i), state, rtol=0, atol=0)


@pytest.mark.parametrize("name", ENGINES)
def test_a_diverging_net_ranks_last_and_the_others_go_on(name):
    result = race_six(name, lrs=(1e-2, 1e30, 1e-2, 1e-2, 1e-2, 1e-2))
    assert result.nets[1].diverged and result.ranking()[-1] == 1
    assert result.ranking()[0] == 3
    assert all(n.fitness > -1 for n in result.nets if not n.diverged)


# --------------------------------------------------------------------------- choosing


def test_engine_and_device_settings_are_checked():
    assert engine.choose("auto") is engine.batched
    assert engine.choose("loop") is engine.loop
    with pytest.raises(Exception, match="unknown engine 'fast'"):
        engine.choose("fast")
    assert engine.device("cpu") == torch.device("cpu")
    with pytest.raises(Exception, match="run.device"):
        engine.check_device("gpu")
    if not torch.cuda.is_available():
        assert engine.device("auto") == torch.device("cpu")
        with pytest.raises(Exception, match="no CUDA device"):
            engine.device("cuda")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_backward_matches_autograd(activation):
    z = torch.randn(3, 7, 5, requires_grad=True)
    h = network.ACTIVATION_FUNCTIONS[activation](z)
    grad = torch.randn_like(h)
    (want,) = torch.autograd.grad(h, z, grad)
    got = stack._BACKWARD[activation](grad, h.detach(), z.detach())
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", sorted(kinds.KINDS))
def test_each_kind_gives_the_gradients_autograd_gives(name):
    kind = kinds.get(name)
    out = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    y = data(name, 6, 0, n_in=2, n_out=3)[1]
    y = y.double() if y.is_floating_point() else y
    losses = kind.losses(out, y)
    for i in range(4):
        torch.testing.assert_close(losses[i], kind.loss(out[i], y))
    (want,) = torch.autograd.grad(losses.sum(), out)
    torch.testing.assert_close(kind.losses_grad(out.detach(), y), want)
    p = kind.mixable(out[0].detach()).requires_grad_(True)
    if name == "bits":
        p = p.detach().clone()
        p[0, 0], p[1, 1] = 0.0, 1.0  # clamped: no gradient there
        p.requires_grad_(True)
    (want,) = torch.autograd.grad(kind.mixed_loss(p, y), p)
    torch.testing.assert_close(kind.mixed_grad(p.detach(), y), want)


@pytest.mark.parametrize(
    "setting, message",
    [
        ('mixer.engine="fast"', "mixer.engine"),
        ('run.device="gpu"', "run.device"),
        ('run.device="cuda:7"', "run.device"),
    ],
)
def test_a_bad_engine_or_missing_device_is_one_line_and_exit_2(
    setting, message, tiny_recipe, tmp_path, capsys
):
    if "cuda" in setting and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a CUDA device 7")
    out = tmp_path / "run"
    code = main(["evolve", str(tiny_recipe()), "--out", str(out), "--quiet", "--set", setting])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_summary_records_the_engine_and_device(tiny_recipe, tmp_path):
    out = tmp_path / "run"
    assert main(["evolve", str(tiny_recipe()), "--out", str(out), "--quiet"]) == 0
    summary = rundir.read_summary(out)
    assert summary["engine"] == "batched"  # auto
    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", sorted(kinds.KINDS))
def test_each_kind_gives_each_nets_own_loss_per_output(name):
    kind = kinds.get(name)
    out = torch.randn(4, 6, 3, dtype=torch.float64)
    y = data(name, 6, 1, n_in=2, n_out=3)[1]
    y = y.double() if y.is_floating_point() else y
    p = kind.mixable(out)
    own = kind.own_losses(p, y)
    assert own.shape == (4, 3)
    for i in range(4):  # averaged over outputs, a net's own loss is the mixed loss of it alone
        torch.testing.assert_close(own[i].mean(), kind.mixed_loss(p[i], y))
