"""PNG figures of a landscape run (matplotlib, Agg). Plots only: every number comes computed.

Contours are drawn with equal axis scales, so a descent arrow (``-grad``) meets the level
curves at a right angle on the page as it does in the plane's coordinates.
"""

from __future__ import annotations

import numpy as np

from .plots import plt, save_figure

__all__ = ["plot_restarts", "plot_interpolation", "plot_random_slice", "plot_path_slice",
           "plot_saddle"]

PATH_COLORS = ("C3", "C1", "C0", "C2", "C4")


def _levels(z: np.ndarray, n: int = 25) -> np.ndarray:
    """Contour levels spaced geometrically above the minimum: a basin spans decades of loss,
    and linear levels would leave its floor blank."""
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    if not hi > lo:
        return np.linspace(lo - 1, hi + 1, 3)
    eps = 1e-9 * (hi - lo)
    # The first level sits just below the minimum so the floor of the basin is filled too.
    return np.concatenate([[lo - eps], lo + np.geomspace(1e-3 * (hi - lo), hi - lo + eps, n)])


def _arrows(ax, at, vec, span) -> None:
    """Descent directions, drawn with a common length so small gradients stay visible."""
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    unit = np.divide(vec, norm, out=np.zeros_like(vec), where=norm > 0)
    length = 0.06 * span
    ax.quiver(at[:, 0], at[:, 1], unit[:, 0] * length, unit[:, 1] * length, angles="xy",
              scale_units="xy", scale=1, color="k", alpha=0.6, width=0.004)


def _contour(ax, sl, title: str):
    a, b, z = sl.alphas, sl.betas, sl.loss
    cs = ax.contourf(a, b, z, levels=_levels(z), cmap="viridis")
    ax.contour(a, b, z, levels=_levels(z, 12), colors="w", linewidths=0.5, alpha=0.6)
    _arrows(ax, sl.arrows_at, sl.arrows, max(a[-1] - a[0], b[-1] - b[0]))
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    return cs


def _surface(fig, pos, sl, title: str):
    ax = fig.add_subplot(*(pos if isinstance(pos, tuple) else (pos,)), projection="3d")
    A, B = np.meshgrid(sl.alphas, sl.betas)
    ax.plot_surface(A, B, sl.loss, cmap="viridis", linewidth=0, antialiased=True, alpha=0.85)
    ax.set_title(title, fontsize=9)
    ax.set_zlabel("loss")
    return ax


def plot_random_slice(sl, path, title: str = "") -> None:
    """Contour with descent arrows (left) and surface (right) of a random 2-D slice."""
    fig = plt.figure(figsize=(12, 5))
    ax = fig.add_subplot(1, 2, 1)
    cs = _contour(ax, sl, f"contours, {sl.normalize}-normalised directions")
    ax.plot([0], [0], "r*", ms=12, label="trained solution")
    ax.set_xlabel("a (direction 1)")
    ax.set_ylabel("b (direction 2)")
    ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(cs, ax=ax, shrink=0.8, label="training objective")
    _surface(fig, 122, sl, "surface")
    fig.suptitle(title or "loss around a solution")
    save_figure(fig, path)


def plot_path_slice(sl, path, title: str = "") -> None:
    """One contour panel per path (stochastic, mini-batch, full batch) on the common PCA plane,
    and a surface with every path drawn at its true objective."""
    labels = list(sl.paths)
    fig = plt.figure(figsize=(5 * (len(labels) + 1), 5))
    for i, label in enumerate(labels):
        ax = fig.add_subplot(1, len(labels) + 1, i + 1)
        lr = sl.paths[label].get("lr")
        _contour(ax, sl, label + (f", lr {lr:.3g}" if lr else ""))
        c = sl.paths[label]["coords"]
        color = PATH_COLORS[i % len(PATH_COLORS)]
        ax.plot(c[:, 0], c[:, 1], "-", color=color, lw=1.2, marker=".", ms=3)
        ax.plot(c[0, 0], c[0, 1], "o", color="w", mec="k", label="start")
        ax.plot(c[-1, 0], c[-1, 1], "*", color=color, mec="k", ms=12, label="end")
        ax.set_xlabel(f"PC 1 ({100 * sl.explained[0]:.0f}% of the path)")
        ax.set_ylabel(f"PC 2 ({100 * sl.explained[1]:.0f}%)")
        ax.legend(loc="upper right", fontsize=8)
    ax3 = _surface(fig, (1, len(labels) + 1, len(labels) + 1), sl, "paths at their true loss")
    for i, label in enumerate(labels):
        p = sl.paths[label]
        ax3.plot(p["coords"][:, 0], p["coords"][:, 1], p["loss"],
                 color=PATH_COLORS[i % len(PATH_COLORS)], lw=1.5, label=label)
    ax3.legend(fontsize=7, loc="upper left")
    fig.suptitle(title or "training paths on the plane of their principal directions")
    save_figure(fig, path)


def plot_interpolation(it, path, title: str = "") -> None:
    """Objective (left) and accuracy (right) along ``(1 - t) w_a + t w_b``."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(it.t, it.train_loss, label="training objective")
    if it.val_loss is not None:
        ax1.plot(it.t, it.val_loss, label="validation loss")
    ax2.plot(it.t, 100 * it.train_accuracy, label="training accuracy")
    if it.val_accuracy is not None:
        ax2.plot(it.t, 100 * it.val_accuracy, label="validation accuracy")
    names = [f"seed {s}" for s in it.seeds] if len(it.seeds) == 2 else ["w_a", "w_b"]
    for ax in (ax1, ax2):
        for x, name in zip((0.0, 1.0), names):
            ax.axvline(x, color="grey", ls=":", lw=1)
            ax.annotate(name, (x, 1), xycoords=("data", "axes fraction"), ha="center",
                        va="bottom", fontsize=8)
        ax.set_xlabel("t in (1 - t) w_a + t w_b")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax1.set_ylabel("loss")
    ax2.set_ylabel("accuracy (%)")
    ax1.set_title(f"barrier {it.barrier:.3g} ({100 * it.barrier_relative:.3g}% of the end "
                  "loss)", fontsize=9, pad=16)
    fig.suptitle(title or "linear interpolation between two solutions", y=1.04)
    save_figure(fig, path)


def plot_restarts(rep, path, title: str = "") -> None:
    """Pairwise relative distances (left) and validation accuracy per seed (right)."""
    k = len(rep.seeds)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    im = ax1.imshow(rep.distances, cmap="magma", vmin=0, vmax=max(rep.distances.max(), 1e-12))
    for i in range(k):
        for j in range(k):
            ax1.text(j, i, f"{rep.distances[i, j]:.2g}", ha="center", va="center", fontsize=7,
                     color="w" if rep.distances[i, j] < 0.6 * rep.distances.max() else "k")
    ax1.set_xticks(range(k), [str(s) for s in rep.seeds])
    ax1.set_yticks(range(k), [str(s) for s in rep.seeds])
    ax1.set_xlabel("seed")
    ax1.set_title("|w_a - w_b| / (|w_a| + |w_b|)", fontsize=9)
    fig.colorbar(im, ax=ax1, shrink=0.8)
    x = np.arange(k)
    ax2.bar(x, 100 * rep.val_accuracy, color="C2")
    lo = 100 * np.nanmin(rep.val_accuracy)
    ax2.set_ylim(max(0, lo - 5), min(100, 100 * np.nanmax(rep.val_accuracy) + 2))
    ax2.set_xticks(x, [str(s) for s in rep.seeds])
    ax2.set_xlabel("seed")
    ax2.set_ylabel("validation accuracy (%)")
    ax3 = ax2.twinx()
    ax3.plot(x, rep.val_loss, "ko-", ms=4, label="validation loss")
    ax3.set_ylabel("validation loss")
    ax3.legend(fontsize=8, loc="lower right")
    ax2.set_title(f"accuracy spread {rep.accuracy_spread_points:.2f} points", fontsize=9)
    fig.suptitle(title or rep.kind)
    save_figure(fig, path)


def plot_saddle(demo, path) -> None:
    """Descent paths on the demo surface (left) and the gradient norm per step (right)."""
    xs, ys, z = demo.grid
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    cs = ax1.contourf(xs, ys, z, levels=30, cmap="coolwarm")
    ax1.contour(xs, ys, z, levels=15, colors="k", linewidths=0.4, alpha=0.5)
    fig.colorbar(cs, ax=ax1, shrink=0.8, label="f(x, y)")
    for i, (p, g) in enumerate(zip(demo.paths, demo.grad_norms)):
        color = PATH_COLORS[i % len(PATH_COLORS)]
        ax1.plot(p[:, 0], p[:, 1], ".-", color=color, ms=3, lw=1)
        ax1.plot(p[0, 0], p[0, 1], "o", color=color, mec="k")
        ax2.semilogy(np.arange(len(g)), np.maximum(g, 1e-12), color=color,
                     label=f"start ({demo.starts[i][0]:g}, {demo.starts[i][1]:g})")
    ax1.plot(*demo.critical_point, "k*", ms=14, label=f"critical point: {demo.kind}")
    ax1.set_aspect("equal")
    ax1.set_xlim(xs[0], xs[-1])
    ax1.set_ylim(ys[0], ys[-1])
    ax1.legend(fontsize=8, loc="upper right")
    ax1.set_title(f"f = {demo.formula}, gradient descent, lr {demo.lr:g}", fontsize=9)
    ax2.set_xlabel("step")
    ax2.set_ylabel("|grad f|")
    ax2.set_title("the plateau: tiny gradients near the critical point", fontsize=9)
    ax2.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=7)
    eig = ", ".join(f"{v:+.3g}" for v in demo.eigenvalues)
    fig.suptitle(f"{demo.name}: Hessian eigenvalues at the critical point [{eig}]")
    save_figure(fig, path)
