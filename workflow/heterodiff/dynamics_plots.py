"""Figures of the dynamics: time scales, learning order, score errors, reverse-process times, copies."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from scipy import stats  # noqa: E402

from heterodiff.plots import SEED_BAND, _axes_of, _class_label, _facets, _finish, _with_run_columns, save_figure  # noqa: E402
from heterodiff.timescales import learning_order  # noqa: E402


def _message_figure(path: str | Path, message: str) -> None:
    """Write a figure that states why there is nothing to draw, so the report shows the reason too."""
    figure, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    save_figure(figure, path)


def _two_axes(runs: pd.DataFrame) -> tuple[str, str | None]:
    axes = _axes_of(runs)
    return (axes[0] if axes else "seed"), (axes[1] if len(axes) > 1 else None)


def plot_timescale_heatmaps(timescales: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Draw tau_gen and tau_mem per class (median over seeds) over the first two grid axes."""
    x_axis, y_axis = _two_axes(runs)
    frame = _with_run_columns(timescales, runs)
    if y_axis is None:
        frame["(none)"], y_axis = "", "(none)"
    classes = sorted(frame["class"].unique())
    figure, axes = plt.subplots(2, len(classes), figsize=(4.2 * len(classes), 7), squeeze=False)
    for row, tau in enumerate(("tau_gen", "tau_mem")):
        for column, k in enumerate(classes):
            # A seed that never reached tau counts as infinitely late, so the median is not flattered.
            of_class = frame[frame["class"] == k].assign(**{tau: lambda f: f[tau].astype(float).fillna(np.inf)})
            table = of_class.pivot_table(index=y_axis, columns=x_axis, values=tau, aggfunc="median", dropna=False)
            table = table.astype(float).replace(np.inf, np.nan)
            ax = axes[row, column]
            sns.heatmap(
                np.log10(table), ax=ax, cmap="viridis", annot=table.map(lambda v: "not reached" if np.isnan(v) else f"{v:.0f}"),
                fmt="", cbar_kws={"label": f"log10 {tau} (steps)"}, annot_kws={"fontsize": 8},
            )
            ax.set_title(f"{tau}, class {k}")
    figure.suptitle("Time scales per class (median over seeds, a seed that never reached it counting as late)")
    figure.tight_layout()
    save_figure(figure, path)


def fit_power_law(n: np.ndarray, tau: np.ndarray, level: float = 0.95) -> dict | None:
    """Fit log tau = slope * log n + c by least squares; return the slope with its t interval."""
    keep = np.isfinite(tau) & (tau > 0)
    n, tau = np.asarray(n, dtype=float)[keep], np.asarray(tau, dtype=float)[keep]
    if len(np.unique(n)) < 2 or len(n) < 3:
        return None
    fit = stats.linregress(np.log(n), np.log(tau))
    half_width = stats.t.ppf(0.5 + level / 2, len(n) - 2) * fit.stderr
    return {"slope": fit.slope, "low": fit.slope - half_width, "high": fit.slope + half_width, "intercept": fit.intercept, "points": len(n)}


def plot_tau_mem_against_n(timescales: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Draw tau_mem against training-set size on log-log axes with the fitted slope per class."""
    if "data.n_train" not in _axes_of(runs):
        _message_figure(path, "tau_mem against n needs data.n_train as a grid axis of the study.")
        return
    frame = _with_run_columns(timescales, runs)
    if frame["tau_mem"].notna().sum() == 0:
        _message_figure(path, "No run reached tau_mem: train longer or lower timescales.mem_threshold.")
        return
    figure, ax = plt.subplots(figsize=(6, 4.5))
    palette = sns.color_palette()
    for k, group in frame.groupby("class"):
        color = palette[int(k) % len(palette)]
        reached = group.dropna(subset=["tau_mem"])
        ax.scatter(reached["data.n_train"], reached["tau_mem"], color=color, alpha=0.7)
        fit = fit_power_law(group["data.n_train"].to_numpy(), group["tau_mem"].to_numpy(dtype=float))
        if fit is None:
            ax.plot([], [], color=color, label=f"class {k}: too few points reached tau_mem")
            continue
        grid = np.geomspace(group["data.n_train"].min(), group["data.n_train"].max(), 50)
        ax.plot(
            grid, np.exp(fit["intercept"]) * grid ** fit["slope"], color=color,
            label=f"class {k}: slope {fit['slope']:.2f} [{fit['low']:.2f}, {fit['high']:.2f}], {fit['points']} runs",
        )
    ax.set(xscale="log", yscale="log", xlabel="training-set size n", ylabel="tau_mem (steps)")
    sizes = sorted(frame["data.n_train"].unique())
    ax.set_xticks(sizes, [str(int(size)) for size in sizes])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_title("tau_mem against n (95% interval of the slope; unreached runs left out)")
    ax.legend(fontsize=8)
    save_figure(figure, path)


def plot_learning_order(timescales: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Draw, over the first two grid axes, which class reaches tau_gen first (the most frequent over seeds)."""
    x_axis, y_axis = _two_axes(runs)
    order = _with_run_columns(learning_order(timescales), runs)
    if y_axis is None:
        order["(none)"], y_axis = "", "(none)"
    majority = order.groupby([y_axis, x_axis])["first_class"].agg(lambda s: s.value_counts().index[0]).unstack(x_axis)
    labels = sorted(order["first_class"].unique())
    codes = majority.map(labels.index).astype(float)
    figure, ax = plt.subplots(figsize=(1.6 * majority.shape[1] + 2, 1.0 * majority.shape[0] + 1.5))
    colors = sns.color_palette("Set2", len(labels))
    sns.heatmap(codes, ax=ax, cmap=matplotlib.colors.ListedColormap(colors), annot=majority, fmt="", cbar=False, vmin=-0.5, vmax=len(labels) - 0.5)
    ax.set_title("Learning order: the class that reaches tau_gen first (majority over seeds)")
    save_figure(figure, path)


def plot_score_errors(metrics: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Draw the ratio of score errors (population / empirical) against step, one line per timestep."""
    selected = _with_run_columns(metrics[metrics["metric"] == "score_error_ratio"], runs)
    selected["timestep"] = selected["timestep"].astype(int)
    grid = sns.relplot(
        data=selected, x="step", y="value", hue="timestep", palette="viridis", kind="line", errorbar=SEED_BAND,
        height=3, aspect=1.2, facet_kws={"margin_titles": True}, **_facets(runs),
    )
    for ax in grid.axes.flat:
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    grid.set_axis_labels("training step", "error to population / to empirical")
    _finish(grid, path, "Score-error ratio by noise level: above 1 the network is closer to the empirical score", log_y=True)


def plot_reverse_times(trajectories: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Draw per-class speciation and collapse timesteps of the network and of both exact processes."""
    if trajectories.empty:
        _message_figure(path, "No reverse trajectories were run (trajectories.checkpoints is none).")
        return
    x_axis, _ = _two_axes(runs)
    frame = _with_run_columns(trajectories[trajectories["step"] == trajectories.groupby("run_id")["step"].transform("max")], runs)
    frame = _class_label(frame)
    frame[x_axis] = frame[x_axis].astype(str)
    grid = sns.catplot(
        data=frame, x=x_axis, y="timestep", hue="process", col="class", row="quantity", kind="point",
        dodge=0.3, errorbar=("pi", 100), height=3, aspect=1.2, margin_titles=True,
        hue_order=["network", "population", "empirical"],
    )
    grid.set_axis_labels(x_axis, "timestep t (larger: earlier in the reverse process)")
    grid.figure.suptitle("Speciation and collapse times at the last checkpoint (missing: never committed)", y=1.02)
    save_figure(grid.figure, path)


def plot_copy_order(copies: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Draw the cumulative share of each class's training points copied by some sample, against step."""
    counts = runs[["run_id", "class_counts_train"]].explode("class_counts_train")
    counts["class"] = counts.groupby("run_id").cumcount()
    steps = sorted(set(copies["first_step"])) if len(copies) else []
    rows = []
    for run_id, total in counts.groupby("run_id"):
        first = copies[copies["run_id"] == run_id]
        for _, entry in total.iterrows():
            of_class = first[first["train_class"] == entry["class"]]["first_step"].to_numpy()
            for step in steps:
                rows.append({"run_id": run_id, "class": entry["class"], "step": step, "share": (of_class <= step).sum() / int(entry["class_counts_train"])})
    if not rows:
        _message_figure(path, "No training point was copied at any checkpoint.")
        return
    frame = _class_label(_with_run_columns(pd.DataFrame(rows), runs))
    grid = sns.relplot(
        data=frame, x="step", y="share", hue="class", kind="line", errorbar=SEED_BAND, drawstyle="steps-post",
        height=3, aspect=1.2, facet_kws={"margin_titles": True}, **_facets(runs),
    )
    grid.set_axis_labels("training step", "share of the class's training points copied")
    _finish(grid, path, "Order of memorisation: training points first copied by a generated sample")
