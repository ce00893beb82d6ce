"""The report's pictures, drawn with matplotlib from plain data (lists and NumPy arrays).

Every function returns the encoded file (PNG or GIF bytes); :mod:`neuroevo.results.report` gathers
the data from a run directory and writes them. Figures are built with the object-oriented API
(:class:`matplotlib.figure.Figure` on the Agg canvas), never ``pyplot``, so drawing touches no
global state and needs no display. Nothing here knows torch.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neuroevo.genome import graph as G

#: dots per inch of the PNGs; the GIF is drawn smaller to stay small on disk
DPI = 110
GIF_DPI = 72
#: milliseconds a frame of the race is shown, and the last frame
FRAME_MS = 120
LAST_FRAME_MS = 2000
RETIRED = "#b0b0b0"


def _plain(text: object) -> str:
    """``text`` drawn as it is: every ``$`` escaped, so matplotlib never reads a run
    directory's text (a metric's name, a net's signature) as mathtext."""
    return str(text).replace("$", r"\$")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


# --------------------------------------------------------------------------- the mixer run


def race_gif(
    frame_steps: Sequence[int],
    weights: np.ndarray,
    labels: Sequence[str],
    retired_at: Sequence[int | None],
    *,
    steps: int,
    title: str,
) -> bytes:
    """An animated GIF of the mixing weights over one mixer run: one bar group per net, one
    bar per output in it (``weights``: ``(frames, k, m)``), a net's bars turning grey, frozen
    at their last height, from the frame where it left the race."""
    from PIL import Image

    labels, title = [_plain(label) for label in labels], _plain(title)
    frames, k, m = weights.shape
    fig = _figure(max(6.0, 0.45 * k + 2), 3.6)
    fig.set_dpi(GIF_DPI)
    ax = fig.add_subplot()
    width = 0.84 / m
    x = np.arange(k)[:, None] + (np.arange(m)[None, :] - (m - 1) / 2) * width
    colors = _output_colors(m)
    bars = ax.bar(x.ravel(), np.zeros(k * m), width=width, color=np.tile(colors, (k, 1)))
    top = float(weights.max()) if weights.size else 1.0
    ax.set_ylim(0, max(top * 1.08, 1e-6))
    ax.set_xlim(-0.6, k - 0.4)
    ax.set_xticks(range(k), labels, rotation=90 if k > 12 else 0, fontsize=8)
    ax.set_ylabel("mixing weight" + (" (per output)" if m > 1 else ""))
    caption = ax.set_title(title, fontsize=10)
    last = np.zeros((k, m))
    images = []
    for f in range(frames):
        step = int(frame_steps[f])
        gone = [r is not None and step >= r for r in retired_at]
        for i in range(k):
            if not gone[i]:
                last[i] = weights[f, i]
            for j in range(m):
                bar = bars[i * m + j]
                bar.set_height(last[i, j])
                bar.set_color(RETIRED if gone[i] else colors[j])
        live = k - sum(gone)
        caption.set_text(f"{title}\nstep {step} of {steps}, {live} of {k} nets in the race")
        fig.canvas.draw()
        if f == 0:  # the layout of the first frame holds for all: no more work laying it out
            fig.set_layout_engine("none")
        rgba = np.asarray(fig.canvas.buffer_rgba())
        images.append(Image.fromarray(rgba).convert("RGB").quantize(colors=64))
    return _gif(images)


def _gif(images: list[Any]) -> bytes:
    """The GIF of ``images`` (PIL images), each shown ``FRAME_MS``, the last one longer."""
    out = io.BytesIO()
    if not images:
        raise ValueError("the mixer run recorded no frame")
    durations = [FRAME_MS] * (len(images) - 1) + [LAST_FRAME_MS]
    images[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=durations,
        loop=0,
        optimize=True,
    )
    return out.getvalue()


def _output_colors(m: int) -> np.ndarray:
    return (
        colormaps["viridis"](np.linspace(0.1, 0.9, m)) if m > 1 else np.array([[0.2, 0.4, 0.7, 1]])
    )


def scores_png(
    steps: Sequence[int],
    scores: np.ndarray,
    labels: Sequence[str],
    retired_at: Sequence[int | None],
    race_steps: Sequence[int],
    *,
    title: str,
) -> bytes:
    """Each net's score (its mixing weight, ``scores``: ``(len(steps), k)``) over
    the run, ended with a cross where it left the race; race points as dashed lines."""
    labels, title = [_plain(label) for label in labels], _plain(title)
    fig = _figure(7.5, 4.2)
    ax = fig.add_subplot()
    steps = np.asarray(steps)
    order = np.argsort(
        [-(r if r is not None else steps[-1] + 1) for r in retired_at], kind="stable"
    )
    for i in order:
        end = retired_at[i]
        keep = steps <= end if end is not None else np.ones(len(steps), bool)
        keep[0] = True
        line = ax.plot(steps[keep], scores[keep, i], lw=1.4 if end is None else 0.9)[0]
        if end is None:
            line.set_label(labels[i])
        else:
            ax.plot(steps[keep][-1], scores[keep, i][-1], "x", color=line.get_color(), ms=5)
    for s in race_steps:
        ax.axvline(s, color="k", ls="--", lw=0.8, alpha=0.5)
    ax.set_xlabel("mixer step (dashed: race points; x: a net leaves)")
    ax.set_ylabel("score (mixing weight)")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, steps[-1] if len(steps) else 1)
    ax.set_ylim(bottom=0)
    finishers = len(ax.get_legend_handles_labels()[0])
    if finishers:  # ten rows a column at most, so that the legend never squeezes the axes
        ax.legend(
            title="to the end",
            fontsize=8,
            title_fontsize=8,
            loc="upper left",
            ncols=-(-finishers // 10),
        )
    return _png(fig)


# --------------------------------------------------------------------------- the search


def progress_png(
    generations: Sequence[int],
    best: Sequence[float | None],
    mean: Sequence[float | None],
    seconds: Sequence[float | None],
    *,
    metric: str,
    test: float | None,
    final_validation: float | None,
    refit: bool = False,
) -> bytes:
    """Best and mean validation metric per generation (1-based), the final test point, and
    each generation's wall time underneath."""
    metric = _plain(metric)
    fig = _figure(7.5, 5.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    gens = np.asarray(generations) + 1
    top.plot(gens, _nan(best), "o-", ms=3, label="best validation")
    top.plot(gens, _nan(mean), "-", color="grey", alpha=0.8, label="mean validation")
    end = gens[-1] if len(gens) else 1
    if final_validation is not None:
        top.plot([end], [final_validation], "s", color="C2", label="validation, final training")
    if test is not None:
        label = f"test {test:.4f}" + (" (refit on training + validation)" if refit else "")
        top.plot([end], [test], "*", ms=12, color="C3", label=label)
    top.set_ylabel(metric)
    top.legend(fontsize=8, loc="lower right")
    top.grid(alpha=0.3)
    top.set_title("the search, generation by generation", fontsize=10)
    bottom.bar(gens, _nan(seconds), color="C0", alpha=0.7)
    total = sum(s for s in seconds if s is not None)
    bottom.set_ylabel("seconds")
    bottom.set_xlabel(f"generation ({total:.0f} s of mixer runs in all)")
    return _png(fig)


def _nan(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def lineage_png(chain: Sequence[Mapping[str, Any]], *, metric: str) -> bytes:
    """The best net's ancestors from generation 1: each one's validation metric when it was
    first trained, at the generation it was born, marked by the operator that made it."""
    fig = _figure(8.0, 4.6)
    ax = fig.add_subplot()
    born = np.array([c["born"] + 1 for c in chain])
    values = _nan([c["validation_metric"] for c in chain])
    ax.plot(born, values, "-", color="#999999", zorder=1)
    operators = sorted({_plain(c["mutation"] or "generation 1") for c in chain})
    markers = "osD^v<>ph*"
    for n, name in enumerate(operators):
        at = [i for i, c in enumerate(chain) if _plain(c["mutation"] or "generation 1") == name]
        ax.plot(
            born[at],
            values[at],
            markers[n % len(markers)],
            ms=7,
            color=f"C{n % 10}",
            label=f"{name} ({len(at)})",
            zorder=2,
        )
    ax.set_xlabel("generation born")
    ax.set_ylabel(_plain(f"{metric} when first trained"))
    first, last = chain[0], chain[-1]
    ax.set_title(
        _plain(
            f"lineage of the best net ({len(chain) - 1} mutations)\n"
            f"from #{first['id']} {first['signature']}\nto #{last['id']} {last['signature']}"
        ),
        fontsize=8,
    )
    ax.legend(fontsize=7, loc="lower right", title="made by", title_fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)


def architecture_png(genome: nx.DiGraph) -> bytes:
    """The genome drawn left to right by depth: boxes with width and activation, the chain
    of layers in black, skip connections curved in colour."""
    depth, layers, pos = _layout(genome)
    fig = _figure(
        max(5.0, 1.6 * len(layers) + 1), max(2.6, 1.0 * max(map(len, layers.values())) + 1.6)
    )
    ax = fig.add_subplot()
    ax.set_axis_off()
    chain = {(u, v) for u, v in genome.edges if depth[v] == depth[u] + 1}
    skips = [e for e in genome.edges if e not in chain]
    nx.draw_networkx_edges(genome, pos, edgelist=sorted(chain), ax=ax, arrows=True, node_size=2600)
    nx.draw_networkx_edges(
        genome,
        pos,
        edgelist=skips,
        ax=ax,
        arrows=True,
        node_size=2600,
        edge_color="C1",
        connectionstyle="arc3,rad=-0.35",
    )
    for node, (x, y) in pos.items():
        text, color = _box(genome, node)
        ax.text(
            x,
            y,
            _plain(text),
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.5", "fc": color, "ec": "#555555"},
        )
    ax.set_xlim(-0.6, max(layers) + 0.6)
    ys = [y for _, y in pos.values()]
    ax.set_ylim(min(ys) - 0.9, max(ys) + 0.9)
    lr = genome.graph.get("lr")
    ax.set_title(
        f"{G.n_parameters(genome):,} parameters, learning rate {lr:.2g}"
        + (f", {len(skips)} skip connection(s) in orange" if skips else ""),
        fontsize=9,
    )
    return _png(fig)


def _layout(
    genome: nx.DiGraph,
) -> tuple[dict[str, int], dict[int, list[str]], dict[str, tuple[float, float]]]:
    """Each node's depth (the longest path from ``in``), the nodes at each depth, and each
    node's position: its depth across, centred on the others at its depth."""
    order = G.topological_order(genome)
    depth: dict[str, int] = {}
    for node in order:
        depth[node] = max((depth[p] + 1 for p in genome.predecessors(node)), default=0)
    layers: dict[int, list[str]] = {}
    for node in order:
        layers.setdefault(depth[node], []).append(node)
    pos = {}
    for d, nodes in layers.items():
        for j, node in enumerate(nodes):
            pos[node] = (d, j - (len(nodes) - 1) / 2)
    return depth, layers, pos


def _box(genome: nx.DiGraph, node: str) -> tuple[str, str]:
    """The text and colour of ``node``'s box."""
    data = genome.nodes[node]
    if node == G.IN:
        shape = genome.graph.get("shape")
        size = "x".join(map(str, shape)) if shape is not None else data["width"]
        text, color = f"in\n{size}", "#dde8f5"
    elif node == G.OUT:
        text, color = f"out\n{data['width']}", "#f5e3dd"
    elif G.is_conv(genome, node):
        pool = f" p{data['pool']}" if data["pool"] > 1 else ""
        text = f"conv {data['channels']}\nk{data['kernel']} s{data['stride']}{pool}\n"
        text, color = text + data["activation"], "#e3f0dd"
    else:
        text, color = f"{data['width']}\n{data['activation']}", "#eeeeee"
    return text, color


def pareto_png(
    params: Sequence[int],
    metrics: Sequence[float],
    generations: Sequence[int],
    front: Sequence[int],
    best: int,
    *,
    metric: str,
    fronts: Sequence[tuple[int, Sequence[int], Sequence[float]]] = (),
) -> bytes:
    """Every individual's parameter count against its validation metric, coloured by the
    generation it was born in; the Pareto front (no net both smaller and better) joined, the
    best net circled; ``fronts``: (generation, parameters, metrics) of the front as it stood
    after earlier generations, drawn thin (a run with several objectives)."""
    fig = _figure(7.5, 4.6)
    ax = fig.add_subplot()
    for k, (generation, ex, ey) in enumerate(fronts):
        shade = plt_colors(len(fronts))[k]
        ax.step(ex, ey, where="post", color=shade, lw=0.9, alpha=0.8)
        ax.annotate(f"gen {generation + 1}", (ex[-1], ey[-1]), fontsize=7, color=shade)
    shown = ax.scatter(
        params, metrics, c=np.asarray(generations) + 1, s=12, cmap="viridis", alpha=0.8
    )
    fig.colorbar(shown, ax=ax, label="generation born")
    fx = [params[i] for i in front]
    fy = [metrics[i] for i in front]
    ax.step(fx, fy, where="post", color="C3", lw=1.2, label="Pareto front")
    ax.plot(fx, fy, "o", mfc="none", mec="C3", ms=7)
    ax.plot([params[best]], [metrics[best]], "*", color="C3", ms=14, label="best")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(_plain(f"validation {metric}"))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    ax.set_title("size against quality, every net evaluated", fontsize=10)
    return _png(fig)


def plt_colors(n: int) -> np.ndarray:
    """``n`` shades from light to dark grey-blue (earlier fronts lighter)."""
    from matplotlib import colormaps

    return colormaps["Blues"](np.linspace(0.35, 0.85, n))


def hypervolume_png(generations: Sequence[int], volumes: Sequence[float]) -> bytes:
    """The front's hypervolume per generation (1-based)."""
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    ax.plot(np.asarray(generations) + 1, volumes, "o-", ms=3, color="C0")
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume")
    ax.grid(alpha=0.3)
    ax.set_title(
        "the front's hypervolume (reference: metric 0, each cost at its bound)", fontsize=10
    )
    return _png(fig)


def pareto_front(params: Sequence[int], metrics: Sequence[float]) -> list[int]:
    """Indices of the nets no other net beats on both counts (fewer or equal parameters and a
    higher metric, or fewer parameters and an equal one), by parameters ascending."""
    order = sorted(range(len(params)), key=lambda i: (params[i], -metrics[i]))
    front, best = [], -np.inf
    for i in order:
        if metrics[i] > best:
            front.append(i)
            best = metrics[i]
    return front


def verify_png(
    fitness: Sequence[float],
    alone: Sequence[float | None],
    rounds: Sequence[int],
    *,
    metric: str,
    title: str,
) -> bytes:
    """``neuroevo verify``: each net's mixer fitness against its validation metric trained
    alone, coloured by the race round it reached."""
    fig = _figure(6.5, 4.6)
    ax = fig.add_subplot()
    shown = ax.scatter(fitness, _nan(alone), c=rounds, cmap="viridis", s=28)
    if len(set(rounds)) > 1:
        fig.colorbar(shown, ax=ax, label="race rounds survived")
    ax.set_xlabel("mixer fitness")
    ax.set_ylabel(_plain(f"validation {metric}, trained alone"))
    ax.grid(alpha=0.3)
    ax.set_title(_plain(title), fontsize=9)
    return _png(fig)
