"""Study figures, drawn with seaborn from the aggregated tables only."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

# Spread over seeds: the band spans the lowest to the highest seed (a 100% percentile interval).
SEED_BAND = ("pi", 100)


def _axes_of(runs: pd.DataFrame) -> list[str]:
    return list(runs["grid_axes"].iloc[0]) if len(runs) else []


def _facets(runs: pd.DataFrame) -> dict:
    """Map the first grid axis to columns and the second to rows; more axes are joined into the rows."""
    axes = _axes_of(runs)
    facets = {}
    if axes:
        facets["col"] = axes[0]
    if len(axes) == 2:
        facets["row"] = axes[1]
    elif len(axes) > 2:
        facets["row"] = "other axes"
    return facets


def _with_run_columns(frame: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    axes = _axes_of(runs)
    columns = runs[["run_id", "seed", *axes]].copy()
    if len(axes) > 2:
        columns["other axes"] = columns[axes[1:]].astype(str).agg(", ".join, axis=1)
    return frame.merge(columns, on="run_id", how="left")


def _class_label(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["class"] = frame["class"].map(lambda c: "all" if pd.isna(c) else f"class {int(c)}")
    return frame


def _finish(grid: sns.FacetGrid, path: str | Path, title: str, log_y: bool = False) -> None:
    grid.set(xscale="log")
    if log_y:
        grid.set(yscale="log")
    grid.figure.suptitle(title, y=1.02)
    save_figure(grid.figure, path)


def save_figure(figure, path: str | Path) -> None:
    """Draw into a temporary name and rename, so a killed job never leaves half a PNG behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    figure.savefig(temporary, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    os.replace(temporary, path)


def plot_memorisation(metrics: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Plot the memorised fraction per class against step, against the training and the held-out set."""
    selected = metrics[metrics["metric"].isin(["memorised_fraction", "memorised_fraction_heldout"])]
    selected = _class_label(_with_run_columns(selected, runs))
    selected["reference"] = selected["metric"].map(
        {"memorised_fraction": "training set", "memorised_fraction_heldout": "held-out set (control)"}
    )
    grid = sns.relplot(
        data=selected, x="step", y="value", hue="class", style="reference", kind="line",
        errorbar=SEED_BAND, height=3, aspect=1.2, facet_kws={"margin_titles": True}, **_facets(runs),
    )
    grid.set_axis_labels("training step", "memorised fraction (d1/d2 < 1/3)")
    _finish(grid, path, "Memorised fraction by class (class of the nearest reference sample)")


def plot_class_share(metrics: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Plot each class's share of generated samples against step, with its true weight dashed."""
    selected = _class_label(_with_run_columns(metrics[metrics["metric"] == "class_share"], runs))
    facets = _facets(runs)
    grid = sns.relplot(
        data=selected, x="step", y="value", hue="class", kind="line", errorbar=SEED_BAND,
        height=3, aspect=1.2, facet_kws={"margin_titles": True}, **facets,
    )
    weights = runs[["run_id", "class_weights"]].explode("class_weights")
    weights["class"] = weights.groupby("run_id").cumcount().map(lambda c: f"class {c}")
    weights = _with_run_columns(weights.rename(columns={"class_weights": "weight"}), runs)
    palette = dict(zip(sorted(selected["class"].unique()), sns.color_palette()))
    for keys, ax in grid.axes_dict.items() if facets else [((), grid.ax)]:
        keys = keys if isinstance(keys, tuple) else (keys,)
        subset = weights
        for facet, value in zip([facets.get("row"), facets.get("col")] if "row" in facets else [facets.get("col")], keys):
            if facet is not None:
                subset = subset[subset[facet] == value]
        for label, weight in subset.groupby("class")["weight"].first().items():
            ax.axhline(float(weight), color=palette.get(label, "grey"), linestyle="--", linewidth=1)
    grid.set_axis_labels("training step", "class share (exact posterior)")
    _finish(grid, path, "Class share of generated samples; dashed: true class weight")


def plot_mean_error(metrics: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    selected = _class_label(_with_run_columns(metrics[metrics["metric"] == "mean_error"], runs))
    grid = sns.relplot(
        data=selected, x="step", y="value", hue="class", kind="line", errorbar=SEED_BAND,
        height=3, aspect=1.2, facet_kws={"margin_titles": True}, **_facets(runs),
    )
    grid.set_axis_labels("training step", "|generated mean - true mean| / sqrt(dim)")
    _finish(grid, path, "Error of the generated class mean", log_y=True)


def plot_loss(train_log: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Plot the training loss per noise-level bucket against step."""
    selected = _with_run_columns(train_log, runs)
    selected["timesteps"] = selected.apply(
        lambda row: "all" if pd.isna(row["bucket"]) else f"{int(row['t_min'])}-{int(row['t_max'])}", axis=1
    )
    order = ["all", *sorted(selected.loc[selected["bucket"].notna(), "timesteps"].unique(), key=lambda s: int(s.split("-")[0]))]
    palette = {"all": "black", **dict(zip(order[1:], sns.color_palette("viridis", len(order) - 1)))}
    grid = sns.relplot(
        data=selected, x="step", y="loss", hue="timesteps", hue_order=order, palette=palette, kind="line",
        errorbar=SEED_BAND, height=3, aspect=1.2, facet_kws={"margin_titles": True}, **_facets(runs),
    )
    grid.set_axis_labels("training step", "epsilon MSE")
    _finish(grid, path, "Training loss by timestep bucket (black: all timesteps)", log_y=True)
